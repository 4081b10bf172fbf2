/* Internal declarations shared by the distribution sources
 * (distributions.c: the object, Normal, Delta, Categorical, OneHot;
 * tanh_normal.c: TanhNormal, TanhDelta, TruncatedNormal). Not installed. */
#ifndef CRL_DIST_INTERNAL_H
#define CRL_DIST_INTERNAL_H

#include "../core/internal.h"

static const double LOG_SQRT_2PI = 0.91893853320467274178; /* log sqrt(2 pi) */

/* Evaluate a tensor expression inside a method; on NULL jump to `fail` (the
 * error is already set; the enclosing scope frees the temporaries). */
#define TRY(expr)                                                              \
  ({                                                                           \
    crl_tensor *t__ = (expr);                                                  \
    if (!t__) goto fail;                                                       \
    t__;                                                                       \
  })

/* Per-kind methods. Called after the public wrappers checked d, g and
 * value (non-NULL, CPU, value shape broadcastable). rsample runs with grad
 * mode as the caller has it; sample calls it under no-grad unless the kind
 * has its own `sample`. NULL entries: CRL_EUNSUPPORTED. */
typedef struct crl__dist_vt {
  const char *name;
  crl_tensor *(*sample)(crl_dist *d, crl_rng *g);
  crl_tensor *(*rsample)(crl_dist *d, crl_rng *g);
  crl_tensor *(*log_prob)(crl_dist *d, crl_tensor *value);
  crl_tensor *(*entropy)(crl_dist *d, crl_rng *g, int samples);
  crl_tensor *(*mode)(crl_dist *d);
  crl_tensor *(*mean)(crl_dist *d);
} crl__dist_vt;

struct crl_dist {
  int refcount; /* atomic */
  crl_dist_kind kind;
  const crl__dist_vt *vt;
  crl_tensor *loc;   /* loc / param / logits (retained) */
  crl_tensor *scale; /* scale; Categorical kinds: log_softmax(logits) */
  double low, high;  /* bounds (Tanh*, TruncatedNormal) */
  int event_dims;    /* 0 or 1 */
  crl_dtype dtype;   /* of the float parameters */
  int ndim;          /* sample shape */
  int64_t shape[CRL_MAX_DIMS];
  /* TanhNormal: the last sample y and its pre-tanh x (retained) */
  crl_tensor *cache_y, *cache_x;
  unsigned cache_version;
};

/* A new distribution (refcount 1, not yet owned by any scope: pass it to
 * crl__dist_publish once built) holding new references to loc and scale
 * (either may be NULL). No checks. */
CRL_INTERNAL crl_dist *crl__dist_alloc(crl_dist_kind kind,
                                       const crl__dist_vt *vt, crl_tensor *loc,
                                       crl_tensor *scale, int ndim,
                                       const int64_t *shape, int event_dims);
/* Validate and prepare (loc, scale) for a location-scale kind: non-NULL,
 * CPU, float, broadcastable (message names both shapes), event_dims 0/1,
 * scale > 0 everywhere, and (when check_bounds) low < high finite. On
 * success *loc_out / *scale_out are loc and scale in their promoted dtype
 * (new references of the current scope) and shape/ndim the broadcast. */
CRL_INTERNAL int crl__dist_check_loc_scale(const char *op, crl_tensor *loc,
                                           crl_tensor *scale, int event_dims,
                                           bool check_bounds, double low,
                                           double high, crl_tensor **loc_out,
                                           crl_tensor **scale_out, int *ndim,
                                           int64_t *shape);
/* Validate a float parameter tensor (non-NULL, CPU, float) and event_dims. */
CRL_INTERNAL int crl__dist_check_param(const char *op, const char *what,
                                       crl_tensor *p, int event_dims);
/* Validate finite bounds low < high. */
CRL_INTERNAL int crl__dist_check_bounds(const char *op, double low,
                                        double high);
/* Sum t over its last dim when the distribution has an event dim, else t
 * itself (new reference either way). */
CRL_INTERNAL crl_tensor *crl__dist_event_sum(const crl_dist *d, crl_tensor *t);
/* Normal log-density of x under (d->loc, d->scale), elementwise. */
CRL_INTERNAL crl_tensor *crl__normal_log_density(const crl_dist *d,
                                                 crl_tensor *x);
/* loc + scale * eps with eps ~ N(0, 1) of d's sample shape. */
CRL_INTERNAL crl_tensor *crl__normal_draw(const crl_dist *d, crl_rng *g);
/* Delta log-prob of value against `point` (a tensor of the sample shape):
 * 0 where |value - point| < 1e-6 + 1e-6 |point| over the event, else -inf. */
CRL_INTERNAL crl_tensor *crl__dist_delta_log_prob(const crl_dist *d,
                                                  crl_tensor *value,
                                                  crl_tensor *point);
/* Zeros of d's batch shape and dtype. */
CRL_INTERNAL crl_tensor *crl__dist_zeros_batch(const crl_dist *d);
/* Hand a new distribution to the current scope (or the caller); NULL-safe. */
CRL_INTERNAL crl_dist *crl__dist_publish(crl_dist *d);
/* The clamp limit 1 - eps of the safe tanh for a dtype. */
CRL_INTERNAL double crl__safe_tanh_lim(crl_dtype dt);

/* Scalar numerics (tanh_normal.c), exposed for tests.
 * log Phi(x) of the standard normal CDF, accurate in both tails. */
CRL_INTERNAL double crl__log_ndtr(double x);
/* The x <= 0 with log Phi(x) = lp, for lp <= log(1/2) (any lp, however
 * negative): Acklam's rational approximation refined by Newton steps. */
CRL_INTERNAL double crl__ndtri_log(double lp);
/* log(Phi(b) - Phi(a)) for a < b, without cancellation. */
CRL_INTERNAL double crl__tn_log_z(double a, double b);
/* The standard normal truncated to [a, b] at CDF level u in [0, 1]. */
CRL_INTERNAL double crl__tn_icdf(double a, double b, double u);

#endif
