/* TanhNormal, TanhDelta, TruncatedNormal and their scalar numerics. Values
 * against formulas and numerical integrals computed here in double
 * precision, sample statistics, gradients by finite differences, errors. */
#include <stdlib.h>

#include "nn/dist_internal.h"
#include "test_util.h"

static double normal_lp(double x, double m, double s) {
  double z = (x - m) / s;
  return -0.5 * z * z - log(s) - LOG_SQRT_2PI;
}
static double phi(double z) { return exp(-0.5 * z * z - LOG_SQRT_2PI); }
static double Phi(double z) { return 0.5 * erfc(-z * M_SQRT1_2); }
static double softplus(double x) { return x > 30 ? x : log1p(exp(x)); }
/* log(1 - tanh(x)^2), stable */
static double log_sech2(double x) {
  return 2.0 * (M_LN2 - x - softplus(-2.0 * x));
}

/* Composite Simpson rule of f over [a, b] with n (even) intervals. */
static double simpson(double (*f)(double, const double *), const double *p,
                      double a, double b, int n) {
  double h = (b - a) / n, s = f(a, p) + f(b, p);
  for (int i = 1; i < n; i++)
    s += f(a + i * h, p) * (i % 2 ? 4 : 2);
  return s * h / 3;
}

/* ---- scalar numerics ------------------------------------------------------
 */

static void test_ndtri_log_ndtr(void **state) {
  (void)state;
  /* known quantiles */
  ASSERT_NEAR(crl__ndtri_log(log(0.025)), -1.959963984540054, 1e-14);
  ASSERT_NEAR(crl__ndtri_log(log(1e-10)), -6.361340902404056, 1e-13);
  ASSERT_NEAR(crl__ndtri_log(log(0.5)), 0.0, 1e-15);
  ASSERT_NEAR(crl__ndtri_log(log(0.3)), -0.5244005127080407, 1e-14);
  /* log Phi against erfc where erfc is accurate, both tails */
  for (double x = -36; x <= 8; x += 0.37)
    ASSERT_NEAR(crl__log_ndtr(x), log(Phi(x)),
                1e-13 * fabs(log(Phi(x))) + 1e-16);
  ASSERT_NEAR(crl__log_ndtr(10.0), -7.6198530241605269e-24, 1e-36);
  /* the asymptotic branch joins continuously at -37 */
  double l1 = crl__log_ndtr(-37.0 + 1e-9), l2 = crl__log_ndtr(-37.0 - 1e-9);
  ASSERT_NEAR(l1, l2, 1e-7);
  ASSERT_NEAR(crl__log_ndtr(-37.0), log(Phi(-37.0)), 1e-12 * 690);
  /* round trips from log(1/2) down to deep tails */
  for (double lp = -M_LN2; lp > -1e5; lp *= 1.7) {
    double x = crl__ndtri_log(lp);
    ASSERT_NEAR(crl__log_ndtr(x), lp, 1e-14 * fabs(lp) + 1e-16);
    assert_true(x <= 0);
  }
  assert_true(crl__ndtri_log(-INFINITY) == -INFINITY);
  /* log Z: symmetric, no cancellation for narrow or far intervals */
  ASSERT_NEAR(crl__tn_log_z(-1, 1), log(Phi(1) - Phi(-1)), 1e-15);
  ASSERT_NEAR(crl__tn_log_z(8, 9), crl__tn_log_z(-9, -8), 1e-12);
  ASSERT_NEAR(exp(crl__tn_log_z(-1e-9, 1e-9)), 2e-9 * phi(0), 1e-22);
  ASSERT_NEAR(exp(crl__tn_log_z(3e-9, 5e-9)), 2e-9 * phi(4e-9), 1e-22);
  ASSERT_NEAR(crl__tn_log_z(-1, -0.5), log(Phi(-0.5) - Phi(-1)), 1e-14);
  /* icdf hits the bounds at u = 0 and stays in [a, b] */
  ASSERT_NEAR(crl__tn_icdf(-1, 2, 0), -1, 0);
  ASSERT_NEAR(crl__tn_icdf(-1, 2, 1), 2, 0);
  ASSERT_NEAR(crl__tn_icdf(-1, 1, 0.5), 0, 1e-15);
  for (double u = 0.01; u < 1; u += 0.07) {
    double x = crl__tn_icdf(8, 9, u);
    assert_true(x >= 8 && x <= 9);
    /* Phi(x) - Phi(a) = u Z, checked by integrating phi */
    double z = exp(crl__tn_log_z(8, 9));
    double left = exp(crl__tn_log_z(8, x));
    ASSERT_NEAR(left / z, u, 1e-12);
    x = crl__tn_icdf(-0.3, 40, u);
    ASSERT_NEAR((Phi(x) - Phi(-0.3)) / (1 - Phi(-0.3)), u, 1e-14);
  }
}

/* ---- TanhNormal -----------------------------------------------------------
 */

static double tanh_lp_ref(double y, double m, double s, double lo, double hi) {
  double half = 0.5 * (hi - lo), mid = 0.5 * (hi + lo), t = (y - mid) / half;
  return normal_lp(atanh(t), m, s) - log(half) - log1p(-t * t);
}

static void check_tanh_values(crl_dtype dt, int ev, double lo, double hi,
                              double tol) {
  const double loc[6] = {0.0, 0.7, -1.2, 2.0, -0.3, 0.1};
  const double scale[3] = {1.0, 0.3, 2.5};
  const double tv[6] = {-0.9, -0.2, 0.0, 0.5, 0.95, 0.999};
  double half = 0.5 * (hi - lo), mid = 0.5 * (hi + lo), yv[6], e[6];
  for (int i = 0; i < 6; i++) {
    yv[i] = mid + half * tv[i];
    e[i] = tanh_lp_ref(yv[i], loc[i], scale[i % 3], lo, hi);
  }
  crl_dist *d = crl_tanh_normal_new(
      tensor_from_doubles(dt, CRL_SHAPE(2, 3), loc),
      tensor_from_doubles(dt, CRL_SHAPE(3), scale), lo, hi, ev);
  CRL_CHECK_PTR(d);
  assert_string_equal(crl_dist_name(d), "TanhNormal");
  crl_tensor *lp =
      crl_dist_log_prob(d, tensor_from_doubles(dt, CRL_SHAPE(2, 3), yv));
  CRL_CHECK_PTR(lp);
  if (ev) {
    e[0] = e[0] + e[1] + e[2];
    e[1] = e[3] + e[4] + e[5];
    assert_shape(lp, CRL_SHAPE(2));
    assert_tensor_values(lp, e, 2, tol);
  } else {
    assert_tensor_values(lp, e, 6, tol);
  }
  /* mode = mean = tanh(loc) scaled */
  double m[6];
  for (int i = 0; i < 6; i++)
    m[i] = mid + half * tanh(loc[i]);
  assert_tensor_values(crl_dist_mode(d), m, 6, tol);
  assert_tensor_values(crl_dist_mean(d), m, 6, tol);
}

static void test_tanh_normal_closed_form(void **state) {
  (void)state;
  for (int ev = 0; ev < 2; ev++) {
    check_tanh_values(CRL_FLOAT64, ev, -1, 1, 1e-9);
    check_tanh_values(CRL_FLOAT64, ev, -2, 0.5, 1e-9);
    check_tanh_values(CRL_FLOAT32, ev, -1, 1, 2e-3);
    check_tanh_values(CRL_FLOAT32, ev, 0, 10, 2e-3);
  }
}

static void test_tanh_normal_near_bounds(void **state) {
  (void)state;
  /* float64: values at, within 1e-13 of, and beyond the bounds */
  crl_tensor *l = crl_zeros(CRL_FLOAT64, CRL_SHAPE(6));
  crl_tensor *s = crl_full(CRL_FLOAT64, CRL_SHAPE(6), 0.5);
  crl_dist *d = crl_tanh_normal_new(l, s, -2, 3, 0);
  CRL_CHECK_PTR(d);
  const double y[6] = {3 - 1e-13, 3, -2, -2 + 1e-13, 4, -7};
  crl_tensor *lp =
      crl_dist_log_prob(d, tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(6), y));
  CRL_CHECK_PTR(lp);
  for (int i = 0; i < 6; i++)
    if (!isfinite(crl_tensor_get_flat(lp, i)))
      fail_msg("log_prob at %.17g is %g", y[i], crl_tensor_get_flat(lp, i));
  /* at the bound: the clamped point 1 - 1e-15 */
  double lim = 1 - 1e-15, x = atanh(lim);
  ASSERT_NEAR(crl_tensor_get_flat(lp, 1),
              normal_lp(x, 0, 0.5) - log(2.5) - log_sech2(x), 1e-6);
  ASSERT_NEAR(crl_tensor_get_flat(lp, 4), crl_tensor_get_flat(lp, 1), 0);
  /* float32 at exactly 1 and one ulp below */
  crl_dist *d32 =
      crl_tanh_normal_new(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)),
                          crl_ones(CRL_FLOAT32, CRL_SHAPE(3)), -1, 1, 1);
  crl_tensor *lp32 = crl_dist_log_prob(
      d32, tensor_from_doubles(
               CRL_FLOAT32, CRL_SHAPE(3),
               (double[]){1.0, (double)nextafterf(1.0f, 0.0f), -1.0}));
  CRL_CHECK_PTR(lp32);
  assert_true(isfinite(crl_tensor_get_flat(lp32, 0)));
  /* integer values are converted */
  crl_tensor *lpi = crl_dist_log_prob(
      d32, tensor_from_doubles(CRL_INT64, CRL_SHAPE(3), (double[]){0, 1, 0}));
  CRL_CHECK_PTR(lpi);
  assert_true(isfinite(crl_tensor_get_flat(lpi, 0)));
}

static void test_tanh_normal_rsample_cache(void **state) {
  (void)state;
  /* rsample = mid + half * clamp(tanh(loc + scale * eps)); log_prob of that
   * very tensor uses the pre-tanh x (exact even where tanh saturates) */
  const double loc[3] = {0.1, 20.0, -20.0}, scale[3] = {0.5, 0.1, 0.1};
  double lo = -1, hi = 3, half = 2, mid = 1;
  crl_dist *d = crl_tanh_normal_new(
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(3), loc),
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(3), scale), lo, hi, 0);
  crl_rng g;
  crl_rng_seed(&g, 17);
  crl_tensor *y = crl_dist_rsample(d, &g);
  CRL_CHECK_PTR(y);
  crl_rng_seed(&g, 17);
  crl_tensor *eps = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(3));
  crl_tensor *lp = crl_dist_log_prob(d, y);
  CRL_CHECK_PTR(lp);
  double lim = 1 - 1e-15;
  for (int i = 0; i < 3; i++) {
    double x = loc[i] + scale[i] * crl_tensor_get_flat(eps, i);
    double t = tanh(x);
    t = t > lim ? lim : (t < -lim ? -lim : t);
    ASSERT_NEAR(crl_tensor_get_flat(y, i), mid + half * t, 1e-15);
    assert_true(crl_tensor_get_flat(y, i) < hi);
    assert_true(crl_tensor_get_flat(y, i) > lo);
    double e = normal_lp(x, loc[i], scale[i]) - log(half) - log_sech2(x);
    ASSERT_NEAR(crl_tensor_get_flat(lp, i), e, 1e-9 * fabs(e));
  }
  /* another tensor with the same values goes through atanh: finite, and
   * different where tanh saturated */
  crl_tensor *lp2 = crl_dist_log_prob(d, crl_clone(y));
  CRL_CHECK_PTR(lp2);
  ASSERT_NEAR(crl_tensor_get_flat(lp2, 0), crl_tensor_get_flat(lp, 0), 1e-9);
  assert_true(isfinite(crl_tensor_get_flat(lp2, 1)));
  assert_true(fabs(crl_tensor_get_flat(lp2, 1) - crl_tensor_get_flat(lp, 1)) >
              1);
  /* an in-place change of the sample invalidates the cache */
  CRL_CHECK_OK(crl_fill_(y, 0.5));
  crl_tensor *lp3 = crl_dist_log_prob(d, y);
  ASSERT_NEAR(crl_tensor_get_flat(lp3, 0), tanh_lp_ref(0.5, 0.1, 0.5, lo, hi),
              1e-12);
}

static double tanh_mean_f(double x, const double *p) {
  return phi((x - p[0]) / p[1]) / p[1] * (p[3] + p[2] * tanh(x));
}
static double tanh_ent_f(double x, const double *p) {
  return phi((x - p[0]) / p[1]) / p[1] * log_sech2(x);
}

static void test_tanh_normal_sampling_entropy(void **state) {
  (void)state;
  const int64_t N = 40000;
  const double loc[2] = {0.5, -1.0}, scale[2] = {0.8, 1.5};
  double lo = -2, hi = 3, half = 2.5, mid = 0.5;
  crl_tensor *l =
      crl_expand(tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(2), loc), 2,
                 (int64_t[]){N, 2});
  crl_dist *d = crl_tanh_normal_new(
      l, tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(2), scale), lo, hi, 1);
  crl_rng g;
  crl_rng_seed(&g, 8);
  crl_tensor *y = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(y);
  assert_false(y->requires_grad);
  for (int c = 0; c < 2; c++) {
    double p[4] = {loc[c], scale[c], half, mid};
    double ref = simpson(tanh_mean_f, p, loc[c] - 12 * scale[c],
                         loc[c] + 12 * scale[c], 4000);
    double m = 0, v = 0;
    for (int64_t i = 0; i < N; i++) {
      double e = crl_tensor_get_flat(y, 2 * i + c);
      assert_true(e > lo && e < hi);
      m += e;
      v += e * e;
    }
    m /= (double)N;
    v = v / (double)N - m * m;
    ASSERT_NEAR(m, ref, 5 * sqrt(v / (double)N));
  }
  /* Monte-Carlo entropy (event_dims 0) against the integral
   * H = H(Normal) + log(half) + E[log(1 - tanh(x)^2)] */
  crl_dist *d0 = crl_tanh_normal_new(
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2), loc),
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2), scale), lo, hi, 0);
  crl_tensor *h = crl_dist_entropy(d0, &g, 50000);
  CRL_CHECK_PTR(h);
  assert_shape(h, CRL_SHAPE(2));
  for (int c = 0; c < 2; c++) {
    double p[4] = {loc[c], scale[c], half, mid};
    double ref = 0.5 + LOG_SQRT_2PI + log(scale[c]) + log(half) +
                 simpson(tanh_ent_f, p, loc[c] - 12 * scale[c],
                         loc[c] + 12 * scale[c], 4000);
    ASSERT_NEAR(crl_tensor_get_flat(h, c), ref, 0.02);
  }
  /* with event_dims 1 it sums over the event */
  crl_dist *d1 = crl_tanh_normal_new(
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2), loc),
      tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2), scale), lo, hi, 1);
  crl_tensor *h1 = crl_dist_entropy(d1, &g, 50000);
  assert_int_equal(h1->ndim, 0);
  ASSERT_NEAR(crl_item(h1),
              crl_tensor_get_flat(h, 0) + crl_tensor_get_flat(h, 1), 0.04);
}

typedef struct {
  double lo, hi;
  int ev;
} tctx;

static crl_tensor *tanh_rsample_fn(crl_tensor **in, void *vctx) {
  tctx *c = vctx;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_dist *d = crl_tanh_normal_new(in[0], in[1], c->lo, c->hi, c->ev);
  return d ? crl_dist_rsample(d, &g) : NULL;
}
static crl_tensor *tanh_log_prob_fn(crl_tensor **in, void *vctx) {
  tctx *c = vctx;
  crl_dist *d = crl_tanh_normal_new(in[0], in[1], c->lo, c->hi, c->ev);
  return d ? crl_dist_log_prob(d, in[2]) : NULL;
}
/* SAC's pattern: the log-prob of a reparameterised sample */
static crl_tensor *tanh_rsample_log_prob_fn(crl_tensor **in, void *vctx) {
  tctx *c = vctx;
  crl_rng g;
  crl_rng_seed(&g, 6);
  crl_dist *d = crl_tanh_normal_new(in[0], in[1], c->lo, c->hi, c->ev);
  crl_tensor *y = d ? crl_dist_rsample(d, &g) : NULL;
  return y ? crl_dist_log_prob(d, y) : NULL;
}
static crl_tensor *tanh_entropy_fn(crl_tensor **in, void *vctx) {
  tctx *c = vctx;
  crl_rng g;
  crl_rng_seed(&g, 7);
  crl_dist *d = crl_tanh_normal_new(in[0], in[1], c->lo, c->hi, c->ev);
  return d ? crl_dist_entropy(d, &g, 3) : NULL;
}
static crl_tensor *tanh_mode_fn(crl_tensor **in, void *vctx) {
  tctx *c = vctx;
  crl_dist *d = crl_tanh_normal_new(in[0], in[1], c->lo, c->hi, c->ev);
  return d ? crl_dist_mode(d) : NULL;
}

static void test_tanh_normal_gradients(void **state) {
  (void)state;
  tctx cs[2] = {{-1, 1, 1}, {-2, 0.5, 0}};
  for (int k = 0; k < 2; k++) {
    double half = 0.5 * (cs[k].hi - cs[k].lo),
           mid = 0.5 * (cs[k].hi + cs[k].lo);
    double yv[6] = {-0.8, -0.1, 0.3, 0.6, 0.9, 0.0};
    for (int i = 0; i < 6; i++)
      yv[i] = mid + half * yv[i];
    crl_tensor *in[3] = {randn_leaf64(3, CRL_SHAPE(2, 3)),
                         leaf64(CRL_SHAPE(3), (double[]){0.4, 1.0, 1.7}),
                         leaf64(CRL_SHAPE(2, 3), yv)};
    CRL_CHECK_OK(
        crl_gradcheck(tanh_rsample_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(
        crl_gradcheck(tanh_log_prob_fn, in, 3, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(crl_gradcheck(tanh_rsample_log_prob_fn, in, 2, &cs[k], 1e-6,
                               1e-6, 1e-4));
    CRL_CHECK_OK(
        crl_gradcheck(tanh_entropy_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(crl_gradcheck(tanh_mode_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
  }
}

/* The float32 kernels' gradients agree with float64's. */
static void test_tanh_normal_float32_gradients(void **state) {
  (void)state;
  const double loc[4] = {0.3, -1.2, 2.5, 0.0}, scale[4] = {0.5, 1.0, 0.2, 2.0};
  const double y[4] = {0.1, -0.7, 1.9, 0.999};
  double grads[2][3][4];
  for (int k = 0; k < 2; k++) {
    crl_dtype dt = k ? CRL_FLOAT32 : CRL_FLOAT64;
    crl_tensor *l = tensor_from_doubles(dt, CRL_SHAPE(4), loc),
               *s = tensor_from_doubles(dt, CRL_SHAPE(4), scale);
    crl_tensor *v = tensor_from_doubles(dt, CRL_SHAPE(4), y);
    crl_set_requires_grad(l, true);
    crl_set_requires_grad(s, true);
    crl_set_requires_grad(v, true);
    crl_dist *d = crl_tanh_normal_new(l, s, -1, 2, 0);
    crl_tensor *r = crl_dist_mode(d); /* the rsample kernel at eps = 0 */
    crl_tensor *lp = crl_dist_log_prob(d, v);
    CRL_CHECK_PTR(r);
    CRL_CHECK_PTR(lp);
    CRL_CHECK_OK(crl_backward(crl_sum(crl_add(r, lp), 0, NULL, false), NULL));
    for (int i = 0; i < 4; i++) {
      grads[k][0][i] = crl_tensor_get_flat(l->grad, i);
      grads[k][1][i] = crl_tensor_get_flat(s->grad, i);
      grads[k][2][i] = crl_tensor_get_flat(v->grad, i);
    }
  }
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 4; i++)
      ASSERT_NEAR(grads[1][j][i], grads[0][j][i],
                  2e-3 * (1 + fabs(grads[0][j][i])));
}

static void test_tanh_normal_errors(void **state) {
  (void)state;
  crl_tensor *l = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3));
  crl_tensor *s = crl_ones(CRL_FLOAT32, CRL_SHAPE(3));
  assert_null(crl_tanh_normal_new(l, s, 1, 1, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("tanh_normal_new: bounds low 1 and high 1 must be finite "
                     "with low < high");
  assert_null(crl_tanh_normal_new(l, s, 2, -1, 1));
  CRL_ASSERT_ERR_HAS("low 2 and high -1");
  assert_null(crl_tanh_normal_new(l, s, -INFINITY, 1, 1));
  CRL_ASSERT_ERR_HAS("must be finite");
  assert_null(crl_tanh_normal_new(l, s, NAN, 1, 1));
  CRL_ASSERT_ERR_HAS("must be finite");
  assert_null(crl_truncated_normal_new(l, s, 0, -1, 1));
  CRL_ASSERT_ERR_HAS("truncated_normal_new: bounds low 0 and high -1");
  assert_null(crl_tanh_delta_new(l, 3, 3, 1));
  CRL_ASSERT_ERR_HAS("tanh_delta_new: bounds low 3 and high 3");
  assert_null(crl_tanh_normal_new(crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 2)), s,
                                  -1, 1, 1));
  CRL_ASSERT_ERR_HAS("loc shape [2, 2] and scale shape [3]");
  crl_dist *d = crl_tanh_normal_new(l, s, -1, 1, 1);
  CRL_CHECK_PTR(d);
  assert_null(crl_dist_entropy(d, NULL, 4));
  CRL_ASSERT_ERR_HAS("dist_entropy(TanhNormal): no closed form");
  crl_rng g;
  crl_rng_seed(&g, 1);
  assert_null(crl_dist_entropy(d, &g, 0));
  CRL_ASSERT_ERR_HAS("samples 0 must be >= 1");
  assert_null(crl_dist_log_prob(d, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  CRL_ASSERT_ERR_HAS("dist_log_prob(TanhNormal): value shape [2]");
}

/* ---- TanhDelta --------------------------------------------------------------
 */

static crl_tensor *tanh_delta_rsample_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_dist *d = crl_tanh_delta_new(in[0], -3, 1, 1);
  return d ? crl_dist_rsample(d, &g) : NULL;
}

static void test_tanh_delta(void **state) {
  (void)state;
  const double p[4] = {0.3, -2.0, 40.0, 0.0};
  crl_tensor *param = tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2, 2), p);
  crl_dist *d = crl_tanh_delta_new(param, -3, 1, 1);
  CRL_CHECK_PTR(d);
  assert_string_equal(crl_dist_name(d), "TanhDelta");
  double e[4], lim = 1 - 1e-15;
  for (int i = 0; i < 4; i++) {
    double t = tanh(p[i]);
    e[i] = -1 + 2 * (t > lim ? lim : t);
  }
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_tensor *x = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(x);
  assert_tensor_values(x, e, 4, 1e-15);
  assert_true(crl_tensor_get_flat(x, 2) < 1); /* strictly inside */
  assert_tensor_values(crl_dist_mode(d), e, 4, 1e-15);
  assert_tensor_values(crl_dist_mean(d), e, 4, 1e-15);
  crl_tensor *lp = crl_dist_log_prob(d, x);
  assert_tensor_values(lp, (double[]){0, 0}, 2, 0);
  crl_tensor_set_flat(x, 3, e[3] + 1e-3);
  lp = crl_dist_log_prob(d, x);
  assert_tensor_values(lp, (double[]){0, -INFINITY}, 2, 0);
  assert_tensor_values(crl_dist_entropy(d, NULL, 0), (double[]){0, 0}, 2, 0);
  crl_tensor *in[1] = {leaf64(CRL_SHAPE(2, 2), (double[]){0.3, -2, 1.5, 0})};
  CRL_CHECK_OK(
      crl_gradcheck(tanh_delta_rsample_fn, in, 1, NULL, 1e-6, 1e-6, 1e-4));
}

/* ---- TruncatedNormal -------------------------------------------------------
 */

typedef struct {
  double loc, scale, lo, hi;
} tn_case;

static const tn_case TN_CASES[] = {
    {0.3, 0.7, -1, 1},     /* ordinary */
    {2.5, 0.5, -1, 1},     /* loc beyond the upper bound */
    {0.0, 1.0, 8, 9},      /* far upper tail (Z ~ 6e-16) */
    {0.0, 1.0, -9, -8},    /* its mirror */
    {-0.2, 3.0, -0.5, 0.1} /* wide scale, narrow interval */
};

static double tn_pdf(double v, const double *p) {
  return phi((v - p[0]) / p[1]) / p[1];
}
static double tn_m1(double v, const double *p) { return v * tn_pdf(v, p); }
static double tn_m2(double v, const double *p) { return v * v * tn_pdf(v, p); }
static double tn_plogp(double v, const double *p) {
  /* p(v) log p(v) for the truncated density; p[4] = log Z */
  double lq = normal_lp(v, p[0], p[1]) - p[4];
  return exp(lq) * lq;
}

static void tn_refs(const tn_case *c, double *logz, double *mean, double *var,
                    double *ent) {
  double p[5] = {c->loc, c->scale, 0, 0, 0};
  int n = 20000;
  double z = simpson(tn_pdf, p, c->lo, c->hi, n);
  *logz = log(z);
  p[4] = *logz;
  *mean = simpson(tn_m1, p, c->lo, c->hi, n) / z;
  *var = simpson(tn_m2, p, c->lo, c->hi, n) / z - *mean * *mean;
  *ent = -simpson(tn_plogp, p, c->lo, c->hi, n);
}

static void test_truncated_normal_closed_forms(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof TN_CASES / sizeof *TN_CASES; k++) {
    const tn_case *c = &TN_CASES[k];
    double logz, mean, var, ent;
    tn_refs(c, &logz, &mean, &var, &ent);
    crl_dist *d = crl_truncated_normal_new(
        crl_full(CRL_FLOAT64, CRL_SHAPE(2), c->loc),
        crl_full(CRL_FLOAT64, CRL_SHAPE(2), c->scale), c->lo, c->hi, 0);
    CRL_CHECK_PTR(d);
    assert_string_equal(crl_dist_name(d), "TruncatedNormal");
    double w = c->hi - c->lo;
    double v[2] = {c->lo + 0.3 * w, c->lo + 0.9 * w};
    crl_tensor *lp =
        crl_dist_log_prob(d, tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2), v));
    CRL_CHECK_PTR(lp);
    for (int i = 0; i < 2; i++)
      ASSERT_NEAR(crl_tensor_get_flat(lp, i),
                  normal_lp(v[i], c->loc, c->scale) - logz,
                  1e-9 * fabs(logz) + 1e-10);
    crl_tensor *h = crl_dist_entropy(d, NULL, 0);
    CRL_CHECK_PTR(h);
    ASSERT_NEAR(crl_tensor_get_flat(h, 0), ent, 1e-7 * (1 + fabs(ent)));
    crl_tensor *mu = crl_dist_mean(d);
    CRL_CHECK_PTR(mu);
    ASSERT_NEAR(crl_tensor_get_flat(mu, 1), mean, 1e-9 * (1 + fabs(mean)));
    /* mode: loc clamped into the bounds */
    double mo = c->loc < c->lo ? c->lo : (c->loc > c->hi ? c->hi : c->loc);
    ASSERT_NEAR(crl_tensor_get_flat(crl_dist_mode(d), 0), mo, 1e-15);
    /* outside the support: -inf */
    lp = crl_dist_log_prob(
        d, tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2),
                               (double[]){c->lo - 1e-9, c->hi}));
    assert_true(crl_tensor_get_flat(lp, 0) == -INFINITY);
    assert_true(isfinite(crl_tensor_get_flat(lp, 1)));
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_truncated_normal_sampling(void **state) {
  (void)state;
  const int64_t N = 20000;
  double *xs = malloc(sizeof(double) * (size_t)N);
  assert_non_null(xs);
  crl_rng g;
  crl_rng_seed(&g, 21);
  for (size_t k = 0; k < sizeof TN_CASES / sizeof *TN_CASES; k++) {
    const tn_case *c = &TN_CASES[k];
    double logz, mean, var, ent;
    tn_refs(c, &logz, &mean, &var, &ent);
    for (int dti = 0; dti < 2; dti++) {
      crl_dtype dt = dti ? CRL_FLOAT32 : CRL_FLOAT64;
      crl_tensor *l = crl_full(dt, CRL_SHAPE(N), c->loc);
      crl_dist *d = crl_truncated_normal_new(
          l, crl_full(dt, CRL_SHAPE(1), c->scale), c->lo, c->hi, 1);
      CRL_CHECK_PTR(d);
      crl_tensor *x = crl_dist_sample(d, &g);
      CRL_CHECK_PTR(x);
      assert_int_equal(x->dtype, dt);
      double m = 0, v = 0;
      for (int64_t i = 0; i < N; i++) {
        xs[i] = crl_tensor_get_flat(x, i);
        if (!(xs[i] >= c->lo && xs[i] <= c->hi))
          fail_msg("case %zu: sample %.17g outside [%g, %g]", k, xs[i], c->lo,
                   c->hi);
        m += xs[i];
      }
      m /= (double)N;
      for (int64_t i = 0; i < N; i++)
        v += (xs[i] - m) * (xs[i] - m);
      v /= (double)(N - 1);
      ASSERT_NEAR(m, mean, 5 * sqrt(var / (double)N) + 1e-6);
      ASSERT_NEAR(v, var, 0.1 * var + 1e-6);
      /* Kolmogorov-Smirnov against the CDF (1.95 / sqrt(N): p = 0.001) */
      if (k == 0 || k == 1 || k == 4) {
        qsort(xs, (size_t)N, sizeof *xs, cmp_double);
        double a = (c->lo - c->loc) / c->scale, ks = 0;
        for (int64_t i = 0; i < N; i++) {
          double F = (Phi((xs[i] - c->loc) / c->scale) - Phi(a)) / exp(logz);
          double d1 = fabs(F - (double)i / N), d2 = fabs(F - (i + 1.0) / N);
          ks = fmax(ks, fmax(d1, d2));
        }
        if (!(ks < 1.95 / sqrt((double)N)))
          fail_msg("case %zu: KS statistic %.4f", k, ks);
      }
    }
  }
  free(xs);
}

typedef struct {
  double lo, hi;
} bctx;

static crl_tensor *tn_rsample_fn(crl_tensor **in, void *vctx) {
  bctx *c = vctx;
  crl_rng g;
  crl_rng_seed(&g, 12);
  crl_dist *d = crl_truncated_normal_new(in[0], in[1], c->lo, c->hi, 1);
  return d ? crl_dist_rsample(d, &g) : NULL;
}
static crl_tensor *tn_log_prob_fn(crl_tensor **in, void *vctx) {
  bctx *c = vctx;
  crl_dist *d = crl_truncated_normal_new(in[0], in[1], c->lo, c->hi, 1);
  return d ? crl_dist_log_prob(d, in[2]) : NULL;
}
static crl_tensor *tn_entropy_fn(crl_tensor **in, void *vctx) {
  bctx *c = vctx;
  crl_dist *d = crl_truncated_normal_new(in[0], in[1], c->lo, c->hi, 0);
  return d ? crl_dist_entropy(d, NULL, 0) : NULL;
}
static crl_tensor *tn_mean_fn(crl_tensor **in, void *vctx) {
  bctx *c = vctx;
  crl_dist *d = crl_truncated_normal_new(in[0], in[1], c->lo, c->hi, 0);
  return d ? crl_dist_mean(d) : NULL;
}

static void test_truncated_normal_gradients(void **state) {
  (void)state;
  bctx cs[2] = {{-1, 1}, {8, 9}};
  for (int k = 0; k < 2; k++) {
    double base = 0, w = cs[k].hi - cs[k].lo;
    double v[3] = {cs[k].lo + 0.2 * w, cs[k].lo + 0.5 * w, cs[k].lo + 0.85 * w};
    crl_tensor *in[3] = {
        leaf64(CRL_SHAPE(3), (double[]){base + 0.3, base + 1.6, base - 0.7}),
        leaf64(CRL_SHAPE(3), (double[]){0.7, 0.4, 2.0}),
        leaf64(CRL_SHAPE(3), v)};
    CRL_CHECK_OK(crl_gradcheck(tn_rsample_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(
        crl_gradcheck(tn_log_prob_fn, in, 3, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(crl_gradcheck(tn_entropy_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(crl_gradcheck(tn_mean_fn, in, 2, &cs[k], 1e-6, 1e-6, 1e-4));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_ndtri_log_ndtr),
      CRL_TEST(test_tanh_normal_closed_form),
      CRL_TEST(test_tanh_normal_near_bounds),
      CRL_TEST(test_tanh_normal_rsample_cache),
      CRL_TEST(test_tanh_normal_sampling_entropy),
      CRL_TEST(test_tanh_normal_gradients),
      CRL_TEST(test_tanh_normal_float32_gradients),
      CRL_TEST(test_tanh_normal_errors),
      CRL_TEST(test_tanh_delta),
      CRL_TEST(test_truncated_normal_closed_forms),
      CRL_TEST(test_truncated_normal_sampling),
      CRL_TEST(test_truncated_normal_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
