/* TanhNormal, TanhDelta and TruncatedNormal (torchrl.modules.distributions).
 *
 * Mostly composed of crl's differentiable ops. Four elementwise ops have
 * their own backward because composing them is numerically poor:
 *   - tanh_scale: mid + half * clamp(tanh(x), -lim, lim), with tanh's
 *     gradient (TorchRL's SafeTanhTransform: the clamp keeps samples
 *     invertible, the gradient is not cut by it);
 *   - atanh_scale: atanh(clamp((y - mid) / half, -lim, lim)), gradient
 *     1 / (half (1 - t^2)) (TorchRL's safeatanh);
 *   - tn_log_z: log(Phi(b) - Phi(a)) without cancellation or underflow;
 *   - tn_icdf: the inverse CDF of the standard normal truncated to [a, b],
 *     computed from log-CDFs so either tail stays accurate. */
#include <float.h>
#include <math.h>

#include "dist_internal.h"

/* ---- scalar numerics ------------------------------------------------------
 */

static inline double log_phi(double x) { return -0.5 * x * x - LOG_SQRT_2PI; }

double crl__log_ndtr(double x) {
  if (x > 0) return log1p(-0.5 * erfc(x * M_SQRT1_2));
  if (x > -37.0) return log(0.5 * erfc(-x * M_SQRT1_2));
  /* Phi(x) = phi(x) / -x * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 - ...):
   * the next term is below 3e-13 here (erfc would underflow) */
  double r = 1.0 / (x * x);
  return log_phi(x) - log(-x) +
         log1p(r * (-1.0 + r * (3.0 + r * (-15.0 + r * 105.0))));
}

double crl__ndtri_log(double lp) {
  if (isnan(lp)) return lp;
  if (lp == -INFINITY) return -INFINITY;
  if (lp >= 0) return INFINITY;
  /* Acklam's rational approximation (relative error < 1.2e-9) ... */
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                              -2.759285104469687e+02, 1.383577518672690e+02,
                              -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                              -1.556989798598866e+02, 6.680131188771972e+01,
                              -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                              -2.400758277161838e+00, -2.549732539343734e+00,
                              4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                              2.445134137142996e+00, 3.754408661907416e+00};
  double p = exp(lp), x;
  if (p < 0.02425) {
    double q = sqrt(-2.0 * lp); /* from lp: no underflow however deep */
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) *
        q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  /* ... refined by Newton steps on log Phi(x) = lp (concave: the iterates
   * approach the root monotonically; quadratic from 1e-9: one step) */
  for (int it = 0; it < 8; it++) {
    double lc = crl__log_ndtr(x);
    double dx = (lc - lp) / exp(log_phi(x) - lc);
    if (!isfinite(dx)) break;
    x -= dx;
    /* the error after a step is about |dx|^2 f''/(2 f') <= |dx|^2 */
    if (fabs(dx) <= 1e-8 * (1.0 + fabs(x))) break;
  }
  return x;
}

/* log(1 - exp(t)) for t <= 0 (Maechler's split). */
static inline double log1mexp(double t) {
  return t > -M_LN2 ? log(-expm1(t)) : log1p(-exp(t));
}

static inline double logaddexp(double x, double y) {
  double m = x > y ? x : y;
  if (m == -INFINITY) return m;
  return m + log1p(exp(-fabs(x - y)));
}

double crl__tn_log_z(double a, double b) {
  if (a < 0 && b > 0) /* two positive halves: no cancellation */
    return log(0.5 * (erf(b * M_SQRT1_2) + erf(-a * M_SQRT1_2)));
  if (b <= 0) { /* mirror onto 0 <= a < b */
    double t = a;
    a = -b;
    b = -t;
  }
  /* Z = (erf(b/sqrt2) - erf(a/sqrt2)) / 2 = Q(a) - Q(b), Q(x) = Phi(-x):
   * the difference of the smaller pair loses the least */
  double eb = erf(b * M_SQRT1_2), ca = erfc(a * M_SQRT1_2);
  if (eb < ca) return log(0.5 * (eb - erf(a * M_SQRT1_2)));
  double qa = crl__log_ndtr(-a), qb = crl__log_ndtr(-b);
  return qa + log1mexp(qb - qa);
}

double crl__tn_icdf(double a, double b, double u) {
  /* Phi(x) = Phi(a) + u Z and 1 - Phi(x) = Phi(-b) + (1 - u) Z are both sums
   * of non-negative terms; invert whichever is below 1/2. */
  double lz = crl__tn_log_z(a, b);
  double lo = logaddexp(crl__log_ndtr(a), log(u) + lz);
  double hi = logaddexp(crl__log_ndtr(-b), log1p(-u) + lz);
  double x = lo <= hi ? crl__ndtri_log(lo) : -crl__ndtri_log(hi);
  if (x < a) x = a;
  if (x > b) x = b;
  return x;
}

double crl__safe_tanh_lim(crl_dtype dt) {
  return dt == CRL_FLOAT64 ? 1.0 - 1e-15 : 1.0 - 1e-6;
}

/* ---- elementwise ops with their own backward ----------------------------
 * Inputs are float32/float64 (callers guarantee it); outputs take the first
 * input's dtype and shape; further inputs have that shape (any layout). */

static inline double ld(const crl_tensor *t, int64_t i) {
  return t->dtype == CRL_FLOAT32 ? (double)((const float *)t->data)[i]
                                 : ((const double *)t->data)[i];
}
static inline void st(crl_tensor *t, int64_t i, double v) {
  if (t->dtype == CRL_FLOAT32)
    ((float *)t->data)[i] = (float)v;
  else
    ((double *)t->data)[i] = v;
}

/* A contiguous version of t in dtype dt (t itself when it already is). */
static crl_tensor *contig(crl_tensor *t, crl_dtype dt) {
  if (t->dtype == dt) return crl_contiguous(t);
  return crl__to_contig_dtype(t, dt);
}

/* Record node `name` on out with inputs in[0..n) if any requires grad;
 * returns false on allocation failure. *node is NULL when nothing was
 * recorded. */
static bool record(crl_tensor *out, const char *name, crl_backward_fn fn, int n,
                   crl_tensor **in, crl_node **node) {
  *node = NULL;
  if (!crl__any_requires_grad(n, in)) return true;
  *node = crl__record(out, name, fn, n, in);
  return *node != NULL;
}

/* The end of tanh_scale / atanh_scale: record fn for out (input in) with
 * the contiguous input and (half, mid, lim) saved. out, or NULL. */
static crl_tensor *record_scale(crl_tensor *out, const char *name,
                                crl_backward_fn fn, crl_tensor *in,
                                crl_tensor *in_contig, double half, double mid,
                                double lim) {
  crl_node *n;
  if (!record(out, name, fn, 1, &in, &n)) return NULL;
  if (n) {
    crl__save(n, 0, in_contig);
    n->f[0] = half;
    n->f[1] = mid;
    n->f[2] = lim;
  }
  return out;
}

/* tanh_scale ----------------------------------------------------------------
 */

static int tanh_scale_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  crl_tensor *x = n->saved[0];
  double half = n->f[0], lim = n->f[2];
  crl_tensor *gc = contig(g, x->dtype);
  crl_tensor *out = gc ? crl_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (!out) return crl_last_error_code();
  int64_t N = x->numel;
  if (x->dtype == CRL_FLOAT32) {
    const float *restrict xp = x->data, *restrict gp = gc->data;
    float *restrict o = out->data;
    float h = (float)half, l = (float)lim;
    CRL_VLOOP(N, {
      float t = crl__tanhf(xp[i]);
      t = t > l ? l : (t < -l ? -l : t);
      o[i] = gp[i] * h * (1.0f - t * t);
    });
  } else {
    const double *xp = x->data, *gp = gc->data;
    double *o = out->data;
    for (int64_t i = 0; i < N; i++) {
      double t = tanh(xp[i]);
      t = t > lim ? lim : (t < -lim ? -lim : t);
      o[i] = gp[i] * half * (1.0 - t * t);
    }
  }
  gin[0] = out;
  return 0;
}

static crl_tensor *tanh_scale(crl_tensor *x, double low, double high) {
  double half = 0.5 * (high - low), mid = 0.5 * (high + low);
  double lim = crl__safe_tanh_lim(x->dtype);
  crl_tensor *xc = TRY(crl_contiguous(x));
  crl_tensor *out = TRY(crl_empty(x->dtype, x->ndim, x->shape));
  int64_t N = x->numel;
  if (x->dtype == CRL_FLOAT32) {
    const float *restrict xp = xc->data;
    float *restrict o = out->data;
    float h = (float)half, m = (float)mid, l = (float)lim;
    CRL_VLOOP(N, {
      float t = crl__tanhf(xp[i]);
      t = t > l ? l : (t < -l ? -l : t);
      o[i] = m + h * t;
    });
  } else {
    const double *xp = xc->data;
    double *o = out->data;
    for (int64_t i = 0; i < N; i++) {
      double t = tanh(xp[i]);
      t = t > lim ? lim : (t < -lim ? -lim : t);
      o[i] = mid + half * t;
    }
  }
  return record_scale(out, "tanh_scale", tanh_scale_backward, x, xc, half, mid,
                      lim);
fail:
  return NULL;
}

/* atanh_scale ---------------------------------------------------------------
 */

static int atanh_scale_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  crl_tensor *y = n->saved[0];
  double half = n->f[0], mid = n->f[1], lim = n->f[2];
  crl_tensor *gc = contig(g, y->dtype);
  crl_tensor *out = gc ? crl_empty(y->dtype, y->ndim, y->shape) : NULL;
  if (!out) return crl_last_error_code();
  for (int64_t i = 0; i < y->numel; i++) {
    double t = (ld(y, i) - mid) / half;
    t = t > lim ? lim : (t < -lim ? -lim : t);
    st(out, i, ld(gc, i) / (half * (1.0 - t * t)));
  }
  gin[0] = out;
  return 0;
}

static crl_tensor *atanh_scale(crl_tensor *y, double low, double high) {
  double half = 0.5 * (high - low), mid = 0.5 * (high + low);
  double lim = crl__safe_tanh_lim(y->dtype);
  crl_tensor *yc = TRY(crl_contiguous(y));
  crl_tensor *out = TRY(crl_empty(y->dtype, y->ndim, y->shape));
  for (int64_t i = 0; i < y->numel; i++) {
    double t = (ld(yc, i) - mid) / half;
    t = t > lim ? lim : (t < -lim ? -lim : t);
    st(out, i, 0.5 * log1p(2.0 * t / (1.0 - t))); /* atanh, no cancellation */
  }
  return record_scale(out, "atanh_scale", atanh_scale_backward, y, yc, half,
                      mid, lim);
fail:
  return NULL;
}

/* tn_log_z ------------------------------------------------------------------
 */

/* d/da log Z = -phi(a) / Z, d/db log Z = phi(b) / Z (ratios in log space) */
static int tn_log_z_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *a = n->saved[0], *b = n->saved[1], *lz = n->saved[2];
  crl_tensor *gc = contig(g, a->dtype);
  if (!gc) return crl_last_error_code();
  for (int k = 0; k < 2; k++) {
    if (!n->edges[k].needs_grad) continue;
    crl_tensor *x = k ? b : a;
    crl_tensor *out = crl_empty(a->dtype, a->ndim, a->shape);
    if (!out) return crl_last_error_code();
    double sgn = k ? 1.0 : -1.0;
    for (int64_t i = 0; i < a->numel; i++)
      st(out, i, sgn * ld(gc, i) * exp(log_phi(ld(x, i)) - ld(lz, i)));
    gin[k] = out;
  }
  return 0;
}

static crl_tensor *tn_log_z(crl_tensor *a, crl_tensor *b) {
  crl_tensor *ac = TRY(crl_contiguous(a));
  crl_tensor *bc = TRY(contig(b, a->dtype));
  crl_tensor *out = TRY(crl_empty(a->dtype, a->ndim, a->shape));
  for (int64_t i = 0; i < a->numel; i++)
    st(out, i, crl__tn_log_z(ld(ac, i), ld(bc, i)));
  crl_tensor *in[2] = {a, b};
  crl_node *n;
  if (!record(out, "tn_log_z", tn_log_z_backward, 2, in, &n)) goto fail;
  if (n) {
    crl__save(n, 0, ac);
    crl__save(n, 1, bc);
    crl__save(n, 2, out);
  }
  return out;
fail:
  return NULL;
}

/* tn_icdf -------------------------------------------------------------------
 */

/* Phi(x) = (1 - u) Phi(a) + u Phi(b):
 * dx/da = (1 - u) phi(a) / phi(x), dx/db = u phi(b) / phi(x) */
static int tn_icdf_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *a = n->saved[0], *b = n->saved[1], *u = n->saved[2],
             *x = n->saved[3];
  crl_tensor *gc = contig(g, a->dtype);
  if (!gc) return crl_last_error_code();
  for (int k = 0; k < 2; k++) {
    if (!n->edges[k].needs_grad) continue;
    crl_tensor *e = k ? b : a;
    crl_tensor *out = crl_empty(a->dtype, a->ndim, a->shape);
    if (!out) return crl_last_error_code();
    for (int64_t i = 0; i < a->numel; i++) {
      double w = k ? ld(u, i) : 1.0 - ld(u, i);
      double r = w == 0 ? 0 : w * exp(log_phi(ld(e, i)) - log_phi(ld(x, i)));
      st(out, i, ld(gc, i) * r);
    }
    gin[k] = out;
  }
  return 0;
}

static crl_tensor *tn_icdf(crl_tensor *a, crl_tensor *b, crl_tensor *u) {
  crl_tensor *ac = TRY(crl_contiguous(a));
  crl_tensor *bc = TRY(contig(b, a->dtype));
  crl_tensor *uc = TRY(contig(u, a->dtype));
  crl_tensor *out = TRY(crl_empty(a->dtype, a->ndim, a->shape));
  for (int64_t i = 0; i < a->numel; i++)
    st(out, i, crl__tn_icdf(ld(ac, i), ld(bc, i), ld(uc, i)));
  crl_tensor *in[2] = {a, b};
  crl_node *n;
  if (!record(out, "tn_icdf", tn_icdf_backward, 2, in, &n)) goto fail;
  if (n) {
    crl__save(n, 0, ac);
    crl__save(n, 1, bc);
    crl__save(n, 2, uc);
    crl__save(n, 3, out);
  }
  return out;
fail:
  return NULL;
}

/* ---- TanhNormal ------------------------------------------------------------
 */

static void set_cache(crl_dist *d, crl_tensor *y, crl_tensor *x) {
  crl_tensor_release(d->cache_y);
  crl_tensor_release(d->cache_x);
  d->cache_y = crl_tensor_retain(y);
  d->cache_x = crl_tensor_retain(x);
  d->cache_version = y->version;
}

static crl_tensor *tanh_normal_rsample(crl_dist *d, crl_rng *g) {
  crl_tensor *x = TRY(crl__normal_draw(d, g));
  crl_tensor *y = TRY(tanh_scale(x, d->low, d->high));
  set_cache(d, y, x);
  return y;
fail:
  return NULL;
}

/* log p(y) from the pre-tanh x: Normal.log_prob(x) - log((high - low) / 2)
 * - 2 (log 2 - x - softplus(-2x)), summed over the event. */
static crl_tensor *tanh_normal_lp_x(crl_dist *d, crl_tensor *x) {
  crl_tensor *lp = TRY(crl__normal_log_density(d, x));
  crl_tensor *sp = TRY(crl_softplus(TRY(crl_mul_scalar(x, -2.0)), 1.0, 20.0));
  lp = TRY(crl_add_scaled(lp, x, 2.0));
  lp = TRY(crl_add_scaled(lp, sp, 2.0));
  lp = TRY(crl_add_scalar(lp, -(2.0 * M_LN2 + log(0.5 * (d->high - d->low)))));
  return crl__dist_event_sum(d, lp);
fail:
  return NULL;
}

static crl_tensor *tanh_normal_log_prob(crl_dist *d, crl_tensor *value) {
  crl_tensor *x;
  if (value == d->cache_y && value->version == d->cache_version) {
    x = d->cache_x;
  } else {
    if (!crl_dtype_is_float(value->dtype))
      value = TRY(crl_cast(value, d->dtype));
    x = TRY(atanh_scale(value, d->low, d->high));
  }
  return tanh_normal_lp_x(d, x);
fail:
  return NULL;
}

static crl_tensor *tanh_normal_entropy(crl_dist *d, crl_rng *g, int samples) {
  if (!g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "dist_entropy(TanhNormal): no closed form; the "
                        "Monte-Carlo estimate needs a generator (got NULL)");
  if (samples < 1)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "dist_entropy(TanhNormal): samples %d must be >= 1 "
                        "for the Monte-Carlo estimate",
                        samples);
  if (d->ndim + 1 > CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "dist_entropy(TanhNormal): %d dims plus a sample dim "
                        "exceed %d",
                        d->ndim, CRL_MAX_DIMS);
  int64_t sh[CRL_MAX_DIMS];
  sh[0] = samples;
  memcpy(sh + 1, d->shape, sizeof(int64_t) * (size_t)d->ndim);
  crl_tensor *eps = TRY(crl_randn(g, d->dtype, d->ndim + 1, sh));
  crl_tensor *x = TRY(crl_add(d->loc, TRY(crl_mul(eps, d->scale))));
  int dim = 0;
  crl_tensor *m = TRY(crl_mean(TRY(tanh_normal_lp_x(d, x)), 1, &dim, false));
  return crl_neg(m);
fail:
  return NULL;
}

static crl_tensor *tanh_loc_mode(crl_dist *d) {
  crl_tensor *m = TRY(tanh_scale(d->loc, d->low, d->high));
  return crl_expand(m, d->ndim, d->shape);
fail:
  return NULL;
}

static const crl__dist_vt tanh_normal_vt = {
    .name = "TanhNormal",
    .rsample = tanh_normal_rsample,
    .log_prob = tanh_normal_log_prob,
    .entropy = tanh_normal_entropy,
    .mode = tanh_loc_mode,
    .mean = tanh_loc_mode,
};

static crl_dist *loc_scale_new(const char *op, crl_dist_kind kind,
                               const crl__dist_vt *vt, crl_tensor *loc,
                               crl_tensor *scale, double low, double high,
                               int event_dims) {
  crl_tensor *l, *s;
  int n;
  int64_t sh[CRL_MAX_DIMS];
  crl_scope_begin();
  crl_dist *d = NULL;
  if (!crl__dist_check_loc_scale(op, loc, scale, event_dims, true, low, high,
                                 &l, &s, &n, sh))
    d = crl__dist_alloc(kind, vt, l, s, n, sh, event_dims);
  crl_scope_end();
  if (d) {
    d->low = low;
    d->high = high;
  }
  return crl__dist_publish(d);
}

crl_dist *crl_tanh_normal_new(crl_tensor *loc, crl_tensor *scale, double low,
                              double high, int event_dims) {
  return loc_scale_new("tanh_normal_new", CRL_DIST_TANH_NORMAL, &tanh_normal_vt,
                       loc, scale, low, high, event_dims);
}

/* ---- TanhDelta ------------------------------------------------------------
 */

static crl_tensor *tanh_delta_rsample(crl_dist *d, crl_rng *g) {
  (void)g;
  return tanh_scale(d->loc, d->low, d->high);
}

static crl_tensor *tanh_delta_log_prob(crl_dist *d, crl_tensor *value) {
  crl_no_grad_begin();
  crl_tensor *point = tanh_scale(d->loc, d->low, d->high);
  crl_no_grad_end();
  return point ? crl__dist_delta_log_prob(d, value, point) : NULL;
}

static crl_tensor *tanh_delta_entropy(crl_dist *d, crl_rng *g, int samples) {
  (void)g, (void)samples;
  return crl__dist_zeros_batch(d);
}

static const crl__dist_vt tanh_delta_vt = {
    .name = "TanhDelta",
    .rsample = tanh_delta_rsample,
    .log_prob = tanh_delta_log_prob,
    .entropy = tanh_delta_entropy,
    .mode = tanh_loc_mode,
    .mean = tanh_loc_mode,
};

crl_dist *crl_tanh_delta_new(crl_tensor *param, double low, double high,
                             int event_dims) {
  const char *op = "tanh_delta_new";
  if (crl__dist_check_param(op, "param", param, event_dims) ||
      crl__dist_check_bounds(op, low, high))
    return NULL;
  if (event_dims == 1 && param->ndim == 0)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: event_dims 1 needs a param with at least 1 dim "
                        "(shape [])",
                        op);
  crl_dist *d = crl__dist_alloc(CRL_DIST_TANH_DELTA, &tanh_delta_vt, param,
                                NULL, param->ndim, param->shape, event_dims);
  if (d) {
    d->low = low;
    d->high = high;
  }
  return crl__dist_publish(d);
}

/* ---- TruncatedNormal -------------------------------------------------------
 */

/* The standardised bounds a = (low - loc) / scale, b = (high - loc) / scale
 * (both of the sample shape). */
static int std_bounds(crl_dist *d, crl_tensor **a, crl_tensor **b) {
  *a = crl_div(TRY(crl_rsub_scalar(d->loc, d->low)), d->scale);
  *b = crl_div(TRY(crl_rsub_scalar(d->loc, d->high)), d->scale);
  if (*a && *b) return 0;
fail:
  return crl_last_error_code();
}

static crl_tensor *trunc_rsample(crl_dist *d, crl_rng *g) {
  crl_tensor *a, *b;
  if (std_bounds(d, &a, &b)) return NULL;
  crl_tensor *u = TRY(crl_rand(g, d->dtype, d->ndim, d->shape));
  crl_tensor *x = TRY(tn_icdf(a, b, u));
  crl_tensor *y = TRY(crl_add(d->loc, TRY(crl_mul(d->scale, x))));
  /* loc + scale * a may round one ulp past low */
  return crl_clamp(y, d->low, d->high);
fail:
  return NULL;
}

static crl_tensor *trunc_log_prob(crl_dist *d, crl_tensor *value) {
  crl_tensor *a, *b;
  if (std_bounds(d, &a, &b)) return NULL;
  crl_tensor *lp =
      TRY(crl_sub(TRY(crl__normal_log_density(d, value)), TRY(tn_log_z(a, b))));
  crl_tensor *out = TRY(crl_logical_or(TRY(crl_lt_scalar(value, d->low)),
                                       TRY(crl_gt_scalar(value, d->high))));
  lp = TRY(crl_masked_fill(lp, out, -INFINITY));
  return crl__dist_event_sum(d, lp);
fail:
  return NULL;
}

/* r(t) = phi(t) / Z, from log phi(t) - log Z */
static crl_tensor *phi_over_z(crl_tensor *t, crl_tensor *lz) {
  crl_tensor *lp = TRY(crl_rsub_scalar(
      TRY(crl_mul_scalar(TRY(crl_square(t)), 0.5)), -LOG_SQRT_2PI));
  return crl_exp(TRY(crl_sub(lp, lz)));
fail:
  return NULL;
}

static crl_tensor *trunc_entropy(crl_dist *d, crl_rng *g, int samples) {
  (void)g, (void)samples;
  /* log(sqrt(2 pi e) scale Z) + (a phi(a) - b phi(b)) / (2 Z) */
  crl_tensor *a, *b;
  if (std_bounds(d, &a, &b)) return NULL;
  crl_tensor *lz = TRY(tn_log_z(a, b));
  crl_tensor *ra = TRY(phi_over_z(a, lz)), *rb = TRY(phi_over_z(b, lz));
  crl_tensor *t = TRY(crl_sub(TRY(crl_mul(a, ra)), TRY(crl_mul(b, rb))));
  crl_tensor *h = TRY(crl_add(TRY(crl_add_scalar(lz, 0.5 + LOG_SQRT_2PI)),
                              TRY(crl_log(d->scale))));
  return crl__dist_event_sum(d, TRY(crl_add_scaled(h, t, 0.5)));
fail:
  return NULL;
}

static crl_tensor *trunc_mean(crl_dist *d) {
  /* loc + scale (phi(a) - phi(b)) / Z */
  crl_tensor *a, *b;
  if (std_bounds(d, &a, &b)) return NULL;
  crl_tensor *lz = TRY(tn_log_z(a, b));
  crl_tensor *r = TRY(crl_sub(TRY(phi_over_z(a, lz)), TRY(phi_over_z(b, lz))));
  return crl_add(d->loc, TRY(crl_mul(d->scale, r)));
fail:
  return NULL;
}

static crl_tensor *trunc_mode(crl_dist *d) {
  /* loc clamped into the bounds, eps inside them (TorchRL's) */
  double eps = d->dtype == CRL_FLOAT64 ? DBL_EPSILON : FLT_EPSILON;
  crl_tensor *m = TRY(crl_clamp(d->loc, d->low + eps, d->high - eps));
  return crl_expand(m, d->ndim, d->shape);
fail:
  return NULL;
}

static const crl__dist_vt truncated_normal_vt = {
    .name = "TruncatedNormal",
    .rsample = trunc_rsample,
    .log_prob = trunc_log_prob,
    .entropy = trunc_entropy,
    .mode = trunc_mode,
    .mean = trunc_mean,
};

crl_dist *crl_truncated_normal_new(crl_tensor *loc, crl_tensor *scale,
                                   double low, double high, int event_dims) {
  return loc_scale_new("truncated_normal_new", CRL_DIST_TRUNCATED_NORMAL,
                       &truncated_normal_vt, loc, scale, low, high, event_dims);
}
