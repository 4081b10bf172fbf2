/* Probability distributions: the refcounted object and its public methods,
 * Normal, Delta, Categorical and OneHotCategorical (torch.distributions and
 * torchrl.modules.distributions). Everything is composed of crl's
 * differentiable tensor ops, so autograd needs nothing of its own here. The
 * tanh-squashed and truncated kinds are in tanh_normal.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "dist_internal.h"

/* ---- lifetime ------------------------------------------------------------ */

static void release_dist(void *d) { crl_dist_release(d); }

crl_dist *crl__dist_alloc(crl_dist_kind kind, const crl__dist_vt *vt,
                          crl_tensor *loc, crl_tensor *scale, int ndim,
                          const int64_t *shape, int event_dims) {
  crl_dist *d = calloc(1, sizeof *d);
  if (!d) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", vt->name);
  d->refcount = 1;
  d->kind = kind;
  d->vt = vt;
  d->loc = crl_tensor_retain(loc);
  d->scale = crl_tensor_retain(scale);
  d->dtype = loc ? loc->dtype : CRL_FLOAT32;
  d->low = -1.0;
  d->high = 1.0;
  d->event_dims = event_dims;
  d->ndim = ndim;
  if (ndim) memcpy(d->shape, shape, sizeof(int64_t) * (size_t)ndim);
  return d;
}

/* Hand a finished distribution to the current scope (or to the caller). */
crl_dist *crl__dist_publish(crl_dist *d) {
  if (d) crl__scope_adopt_obj(d, release_dist);
  return d;
}

crl_dist *crl_dist_retain(crl_dist *d) {
  if (d)
    atomic_fetch_add_explicit((_Atomic int *)&d->refcount, 1,
                              memory_order_relaxed);
  return d;
}

void crl_dist_release(crl_dist *d) {
  if (!d) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&d->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  crl_tensor_release(d->loc);
  crl_tensor_release(d->scale);
  crl_tensor_release(d->cache_y);
  crl_tensor_release(d->cache_x);
  free(d);
}

crl_dist_kind crl_dist_kind_of(const crl_dist *d) {
  return d ? d->kind : (crl_dist_kind)-1;
}
const char *crl_dist_name(const crl_dist *d) {
  return d ? d->vt->name : "(null)";
}
const int64_t *crl_dist_shape(const crl_dist *d, int *ndim) {
  if (ndim) *ndim = d ? d->ndim : 0;
  return d ? d->shape : NULL;
}
int crl_dist_event_ndim(const crl_dist *d) { return d ? d->event_dims : 0; }

/* ---- validation ---------------------------------------------------------- */

int crl__dist_check_param(const char *op, const char *what, crl_tensor *p,
                          int event_dims) {
  if (!p) return crl__err(CRL_EINVAL, "%s: %s is NULL", op, what);
  if (crl__check_cpu(op, p)) return crl_last_error_code();
  if (!crl_dtype_is_float(p->dtype))
    return crl__err(CRL_EDTYPE, "%s: %s must be float32 or float64 (got %s)",
                    op, what, crl_dtype_name(p->dtype));
  if (event_dims != 0 && event_dims != 1)
    return crl__err(CRL_EINVAL, "%s: event_dims %d must be 0 or 1", op,
                    event_dims);
  return 0;
}

int crl__dist_check_bounds(const char *op, double low, double high) {
  if (!isfinite(low) || !isfinite(high) || !(low < high))
    return crl__err(CRL_EINVAL,
                    "%s: bounds low %g and high %g must be finite with low < "
                    "high",
                    op, low, high);
  return 0;
}

/* First element of s that is not > 0 (NaN included), or -1. */
static int64_t first_not_positive(const crl_tensor *s) {
  if (crl_tensor_is_contiguous(s)) {
    int bad = 0;
    if (s->dtype == CRL_FLOAT32) {
      const float *restrict p = s->data;
      CRL_VLOOP(s->numel, bad |= !(p[i] > 0.0f));
    } else {
      const double *restrict p = s->data;
      CRL_VLOOP(s->numel, bad |= !(p[i] > 0.0));
    }
    if (!bad) return -1;
  }
  for (int64_t i = 0; i < s->numel; i++)
    if (!(crl_tensor_get_flat(s, i) > 0)) return i;
  return -1;
}

int crl__dist_check_loc_scale(const char *op, crl_tensor *loc,
                              crl_tensor *scale, int event_dims,
                              bool check_bounds, double low, double high,
                              crl_tensor **loc_out, crl_tensor **scale_out,
                              int *ndim, int64_t *shape) {
  int rc;
  if ((rc = crl__dist_check_param(op, "loc", loc, event_dims)) ||
      (rc = crl__dist_check_param(op, "scale", scale, event_dims)))
    return rc;
  char b1[160], b2[160];
  if (crl__broadcast_shapes(op, loc->ndim, loc->shape, scale->ndim,
                            scale->shape, ndim, shape))
    return crl__err(CRL_ESHAPE,
                    "%s: loc shape %s and scale shape %s cannot be broadcast",
                    op, CRL_SHAPE_STR(loc, b1), CRL_SHAPE_STR(scale, b2));
  if (event_dims == 1 && *ndim == 0)
    return crl__err(CRL_ESHAPE,
                    "%s: event_dims 1 needs parameters with at least 1 dim "
                    "(loc %s, scale %s)",
                    op, CRL_SHAPE_STR(loc, b1), CRL_SHAPE_STR(scale, b2));
  if (check_bounds && (rc = crl__dist_check_bounds(op, low, high))) return rc;
  int64_t bad = first_not_positive(scale);
  if (bad >= 0)
    return crl__err(CRL_EINVAL,
                    "%s: scale must be > 0 (element %lld of shape %s is %g)",
                    op, (long long)bad, CRL_SHAPE_STR(scale, b1),
                    crl_tensor_get_flat(scale, bad));
  crl_dtype dt = crl_promote_types(loc->dtype, scale->dtype);
  *loc_out = loc->dtype == dt ? loc : crl_cast(loc, dt);
  *scale_out = scale->dtype == dt ? scale : crl_cast(scale, dt);
  if (!*loc_out || !*scale_out) return crl_last_error_code();
  return 0;
}

/* ---- shared pieces --------------------------------------------------------
 */

crl_tensor *crl__dist_event_sum(const crl_dist *d, crl_tensor *t) {
  if (!t) return NULL;
  if (d->event_dims == 0) {
    crl_tensor_retain(t);
    crl__scope_adopt(t);
    return t;
  }
  int dim = -1;
  return crl_sum(t, 1, &dim, false);
}

crl_tensor *crl__normal_log_density(const crl_dist *d, crl_tensor *x) {
  /* -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi)) */
  crl_tensor *z = TRY(crl_div(TRY(crl_sub(x, d->loc)), d->scale));
  crl_tensor *t =
      TRY(crl_add_scaled(TRY(crl_log(d->scale)), TRY(crl_square(z)), 0.5));
  return crl_rsub_scalar(t, -LOG_SQRT_2PI);
fail:
  return NULL;
}

crl_tensor *crl__normal_draw(const crl_dist *d, crl_rng *g) {
  crl_tensor *eps = TRY(crl_randn(g, d->dtype, d->ndim, d->shape));
  return crl_add(d->loc, TRY(crl_mul(eps, d->scale)));
fail:
  return NULL;
}

/* Zeros of the batch shape (the entropy of the deltas). */
static crl_tensor *zeros_batch(const crl_dist *d) {
  return crl_zeros(d->dtype, d->ndim - d->event_dims, d->shape);
}

/* Delta log-prob against `point` (the sample shape): 0 where value matches
 * within 1e-6 + 1e-6 |point| over the event, -inf elsewhere. */
static crl_tensor *delta_log_prob(const crl_dist *d, crl_tensor *value,
                                  crl_tensor *point) {
  crl_no_grad_begin();
  crl_tensor *diff = TRY(crl_abs(TRY(crl_sub(value, point))));
  crl_tensor *tol = TRY(crl_add_scalar(TRY(crl_abs(point)), 1.0));
  tol = TRY(crl_mul_scalar(tol, 1e-6));
  crl_tensor *eq = TRY(crl_lt(diff, tol));
  if (d->event_dims) {
    int dim = -1;
    eq = TRY(crl_all(eq, 1, &dim, false));
  }
  crl_tensor *lp = TRY(crl_log(TRY(crl_cast(eq, d->dtype))));
  crl_no_grad_end();
  return lp;
fail:
  crl_no_grad_end();
  return NULL;
}

/* ---- public methods ------------------------------------------------------ */

static int check_dist(const char *op, const crl_dist *d) {
  return d ? 0 : crl__err(CRL_EINVAL, "%s: distribution is NULL", op);
}

static int check_rng(const char *op, const crl_dist *d, const crl_rng *g) {
  return g ? 0
           : crl__err(CRL_EINVAL, "%s(%s): generator is NULL", op, d->vt->name);
}

static crl_tensor *unsupported(const char *op, const crl_dist *d,
                               const char *why) {
  return CRL_ERR_NULL(CRL_EUNSUPPORTED, "%s(%s): %s", op, d->vt->name, why);
}

/* Close the method's scope, keeping r (NULL: error already set). */
static crl_tensor *finish(crl_tensor *r) {
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(r);
}

crl_tensor *crl_dist_sample(crl_dist *d, crl_rng *g) {
  if (check_dist("dist_sample", d) || check_rng("dist_sample", d, g))
    return NULL;
  crl_no_grad_begin();
  crl_scope_begin();
  crl_tensor *r =
      finish(d->vt->sample ? d->vt->sample(d, g) : d->vt->rsample(d, g));
  crl_no_grad_end();
  return r;
}

crl_tensor *crl_dist_rsample(crl_dist *d, crl_rng *g) {
  if (check_dist("dist_rsample", d) || check_rng("dist_rsample", d, g))
    return NULL;
  if (!d->vt->rsample)
    return unsupported("dist_rsample", d,
                       "not reparameterisable (use dist_sample, or a "
                       "OneHotCategorical for the pass-through estimator)");
  crl_scope_begin();
  return finish(d->vt->rsample(d, g));
}

crl_tensor *crl_dist_log_prob(crl_dist *d, crl_tensor *value) {
  if (check_dist("dist_log_prob", d)) return NULL;
  if (!value)
    return CRL_ERR_NULL(CRL_EINVAL, "dist_log_prob(%s): value is NULL",
                        d->vt->name);
  if (crl__check_cpu("dist_log_prob", value)) return NULL;
  int n;
  int64_t sh[CRL_MAX_DIMS];
  if (crl__broadcast_shapes("dist_log_prob", value->ndim, value->shape, d->ndim,
                            d->shape, &n, sh)) {
    char b1[160], b2[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "dist_log_prob(%s): value shape %s does not "
                        "broadcast with the distribution's shape %s",
                        d->vt->name, CRL_SHAPE_STR(value, b1),
                        crl_shape_str(d->ndim, d->shape, b2, sizeof b2));
  }
  crl_scope_begin();
  return finish(d->vt->log_prob(d, value));
}

crl_tensor *crl_dist_entropy(crl_dist *d, crl_rng *g, int samples) {
  if (check_dist("dist_entropy", d)) return NULL;
  crl_scope_begin();
  return finish(d->vt->entropy(d, g, samples));
}

crl_tensor *crl_dist_mode(crl_dist *d) {
  if (check_dist("dist_mode", d)) return NULL;
  crl_scope_begin();
  return finish(d->vt->mode(d));
}

crl_tensor *crl_dist_mean(crl_dist *d) {
  if (check_dist("dist_mean", d)) return NULL;
  if (!d->vt->mean)
    return unsupported("dist_mean", d,
                       "the mean is undefined (torch returns NaN); use "
                       "dist_mode");
  crl_scope_begin();
  return finish(d->vt->mean(d));
}

/* ---- Normal ---------------------------------------------------------------
 */

static crl_tensor *normal_rsample(crl_dist *d, crl_rng *g) {
  return crl__normal_draw(d, g);
}

static crl_tensor *normal_log_prob(crl_dist *d, crl_tensor *value) {
  return crl__dist_event_sum(d, crl__normal_log_density(d, value));
}

static crl_tensor *normal_entropy(crl_dist *d, crl_rng *g, int samples) {
  (void)g, (void)samples;
  /* 0.5 + log(sqrt(2 pi)) + log(scale), over the sample shape */
  crl_tensor *h =
      TRY(crl_add_scalar(TRY(crl_log(d->scale)), 0.5 + LOG_SQRT_2PI));
  return crl__dist_event_sum(d, TRY(crl_expand(h, d->ndim, d->shape)));
fail:
  return NULL;
}

static crl_tensor *loc_expanded(crl_dist *d) {
  return crl_expand(d->loc, d->ndim, d->shape);
}

static const crl__dist_vt normal_vt = {
    .name = "Normal",
    .rsample = normal_rsample,
    .log_prob = normal_log_prob,
    .entropy = normal_entropy,
    .mode = loc_expanded,
    .mean = loc_expanded,
};

crl_dist *crl_normal_new(crl_tensor *loc, crl_tensor *scale, int event_dims) {
  crl_tensor *l, *s;
  int n;
  int64_t sh[CRL_MAX_DIMS];
  crl_scope_begin();
  crl_dist *d = NULL;
  if (!crl__dist_check_loc_scale("normal_new", loc, scale, event_dims, false, 0,
                                 0, &l, &s, &n, sh))
    d = crl__dist_alloc(CRL_DIST_NORMAL, &normal_vt, l, s, n, sh, event_dims);
  crl_scope_end();
  return crl__dist_publish(d);
}

/* ---- Delta ----------------------------------------------------------------
 */

static crl_tensor *delta_rsample(crl_dist *d, crl_rng *g) {
  (void)g;
  return crl_clone(d->loc);
}

static crl_tensor *delta_lp(crl_dist *d, crl_tensor *value) {
  return delta_log_prob(d, value, d->loc);
}

static crl_tensor *delta_entropy(crl_dist *d, crl_rng *g, int samples) {
  (void)g, (void)samples;
  return zeros_batch(d);
}

static const crl__dist_vt delta_vt = {
    .name = "Delta",
    .rsample = delta_rsample,
    .log_prob = delta_lp,
    .entropy = delta_entropy,
    .mode = loc_expanded,
    .mean = loc_expanded,
};

crl_dist *crl_delta_new(crl_tensor *param, int event_dims) {
  if (crl__dist_check_param("delta_new", "param", param, event_dims))
    return NULL;
  if (event_dims == 1 && param->ndim == 0)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "delta_new: event_dims 1 needs a param with at least "
                        "1 dim (shape [])");
  return crl__dist_publish(crl__dist_alloc(CRL_DIST_DELTA, &delta_vt, param,
                                           NULL, param->ndim, param->shape,
                                           event_dims));
}

/* Shared with tanh_normal.c through these two wrappers. */
crl_tensor *crl__dist_delta_log_prob(const crl_dist *d, crl_tensor *value,
                                     crl_tensor *point) {
  return delta_log_prob(d, value, point);
}
crl_tensor *crl__dist_zeros_batch(const crl_dist *d) { return zeros_batch(d); }

/* ---- Categorical and OneHotCategorical ----------------------------------- */

/* logp (the normalised logits) lives in d->scale. */
#define LOGP(d) ((d)->scale)

static crl_tensor *one_hot(crl_tensor *idx, int64_t K, crl_dtype dt) {
  int64_t sh[CRL_MAX_DIMS];
  memcpy(sh, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
  sh[idx->ndim] = K;
  crl_tensor *c = TRY(crl_contiguous(idx));
  crl_tensor *out = TRY(crl_zeros(dt, idx->ndim + 1, sh));
  const int64_t *restrict ix = c->data;
  if (dt == CRL_FLOAT32) {
    float *restrict o = out->data;
    for (int64_t r = 0; r < c->numel; r++)
      o[r * K + ix[r]] = 1.0f;
  } else {
    double *restrict o = out->data;
    for (int64_t r = 0; r < c->numel; r++)
      o[r * K + ix[r]] = 1.0;
  }
  return out;
fail:
  return NULL;
}

static int64_t ncat(const crl_dist *d) {
  return LOGP(d)->shape[LOGP(d)->ndim - 1];
}

static crl_tensor *cat_sample(crl_dist *d, crl_rng *g) {
  return crl_categorical(g, TRY(crl_exp(LOGP(d))));
fail:
  return NULL;
}

static crl_tensor *onehot_sample(crl_dist *d, crl_rng *g) {
  return one_hot(TRY(cat_sample(d, g)), ncat(d), d->dtype);
fail:
  return NULL;
}

/* Pass-through: the one-hot sample's values, the probabilities' gradient
 * (p - detach(p) is exactly 0, so the values stay exactly one-hot). */
static crl_tensor *onehot_rsample(crl_dist *d, crl_rng *g) {
  crl_no_grad_begin();
  crl_tensor *s = onehot_sample(d, g);
  crl_no_grad_end();
  if (!s) return NULL;
  crl_tensor *p = TRY(crl_exp(LOGP(d)));
  crl_tensor *zero = TRY(crl_sub(p, TRY(crl_detach(p))));
  return crl_add(s, zero);
fail:
  return NULL;
}

/* log p[value] for int64-able indices broadcast against the batch shape. */
static crl_tensor *cat_gather(crl_dist *d, const char *name,
                              crl_tensor *value) {
  if (crl_dtype_is_float(value->dtype))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "dist_log_prob(%s): value must be an integer tensor "
                        "of category indices (got %s)",
                        name, crl_dtype_name(value->dtype));
  int64_t K = ncat(d);
  crl_tensor *idx = value->dtype == CRL_INT64 && crl_tensor_is_contiguous(value)
                        ? value
                        : TRY(crl__to_contig_dtype(value, CRL_INT64));
  const int64_t *ix = idx->data;
  int bad = 0;
  CRL_VLOOP(idx->numel, bad |= (ix[i] < 0) | (ix[i] >= K));
  if (bad)
    for (int64_t i = 0; i < idx->numel; i++)
      if (ix[i] < 0 || ix[i] >= K)
        return CRL_ERR_NULL(CRL_EINDEX,
                            "dist_log_prob(%s): value %lld (element %lld) is "
                            "out of range for %lld categories",
                            name, (long long)ix[i], (long long)i, (long long)K);
  int bn = LOGP(d)->ndim - 1, on;
  int64_t osh[CRL_MAX_DIMS + 1];
  if (crl__broadcast_shapes("dist_log_prob", idx->ndim, idx->shape, bn,
                            LOGP(d)->shape, &on, osh))
    return NULL;
  if (on >= CRL_MAX_DIMS) {
    char b[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "dist_log_prob(%s): value shape %s has too many dims",
                        name, CRL_SHAPE_STR(value, b));
  }
  crl_tensor *lp = LOGP(d);
  osh[on] = K;
  if (on != bn || memcmp(osh, lp->shape, sizeof(int64_t) * (size_t)bn))
    lp = TRY(crl_expand(lp, on + 1, osh));
  if (on != idx->ndim || memcmp(osh, idx->shape, sizeof(int64_t) * (size_t)on))
    idx = TRY(crl_expand(idx, on, osh));
  idx = TRY(crl_unsqueeze(idx, -1));
  return crl_squeeze(TRY(crl_gather(lp, -1, idx)), -1);
fail:
  return NULL;
}

static crl_tensor *cat_log_prob(crl_dist *d, crl_tensor *value) {
  return cat_gather(d, "Categorical", value);
}

static crl_tensor *onehot_log_prob(crl_dist *d, crl_tensor *value) {
  int64_t K = ncat(d);
  if (value->ndim < 1 || value->shape[value->ndim - 1] != K) {
    char b1[160], b2[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "dist_log_prob(OneHotCategorical): value shape %s "
                        "must end with the %lld categories of shape %s",
                        CRL_SHAPE_STR(value, b1), (long long)K,
                        crl_shape_str(d->ndim, d->shape, b2, sizeof b2));
  }
  return cat_gather(d, "OneHotCategorical", TRY(crl_argmax(value, -1, false)));
fail:
  return NULL;
}

static crl_tensor *cat_entropy(crl_dist *d, crl_rng *g, int samples) {
  (void)g, (void)samples;
  /* -sum p log p, with log p clamped to the dtype's lowest finite value so
   * a masked category (-inf) contributes 0 * finite = 0 (torch's). */
  double lowest = d->dtype == CRL_FLOAT32 ? -(double)FLT_MAX : -DBL_MAX;
  crl_tensor *lp = TRY(crl_clamp(LOGP(d), lowest, INFINITY));
  crl_tensor *plp = TRY(crl_mul(TRY(crl_exp(LOGP(d))), lp));
  int dim = -1;
  return crl_neg(TRY(crl_sum(plp, 1, &dim, false)));
fail:
  return NULL;
}

static crl_tensor *cat_mode(crl_dist *d) {
  return crl_argmax(LOGP(d), -1, false);
}

static crl_tensor *onehot_mode(crl_dist *d) {
  return one_hot(TRY(cat_mode(d)), ncat(d), d->dtype);
fail:
  return NULL;
}

static crl_tensor *onehot_mean(crl_dist *d) { return crl_exp(LOGP(d)); }

static const crl__dist_vt categorical_vt = {
    .name = "Categorical",
    .sample = cat_sample,
    .log_prob = cat_log_prob,
    .entropy = cat_entropy,
    .mode = cat_mode,
};

static const crl__dist_vt one_hot_vt = {
    .name = "OneHotCategorical",
    .sample = onehot_sample,
    .rsample = onehot_rsample,
    .log_prob = onehot_log_prob,
    .entropy = cat_entropy,
    .mode = onehot_mode,
    .mean = onehot_mean,
};

static crl_dist *categorical_new(const char *op, crl_dist_kind kind,
                                 const crl__dist_vt *vt, crl_tensor *logits) {
  if (crl__dist_check_param(op, "logits", logits, 0)) return NULL;
  char b[160];
  if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: logits of shape %s need a last (category) dim "
                        "of size >= 1",
                        op, CRL_SHAPE_STR(logits, b));
  bool onehot = kind == CRL_DIST_ONE_HOT_CATEGORICAL;
  crl_scope_begin();
  crl_dist *d = NULL;
  crl_tensor *lp = crl_log_softmax(logits, -1);
  if (lp)
    d = crl__dist_alloc(kind, vt, logits, lp,
                        onehot ? logits->ndim : logits->ndim - 1, logits->shape,
                        onehot ? 1 : 0);
  crl_scope_end();
  return crl__dist_publish(d);
}

crl_dist *crl_categorical_new(crl_tensor *logits) {
  return categorical_new("categorical_new", CRL_DIST_CATEGORICAL,
                         &categorical_vt, logits);
}

crl_dist *crl_one_hot_categorical_new(crl_tensor *logits) {
  return categorical_new("one_hot_categorical_new",
                         CRL_DIST_ONE_HOT_CATEGORICAL, &one_hot_vt, logits);
}
