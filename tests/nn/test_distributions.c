/* Distributions: the object, Normal, Delta, Categorical, OneHotCategorical.
 * Values against closed forms computed here in double precision, sample
 * statistics, gradients by finite differences, errors. */
#include "test_util.h"

static const double LOG_SQRT_2PI = 0.91893853320467274178;

static double normal_lp(double x, double m, double s) {
  double z = (x - m) / s;
  return -0.5 * z * z - log(s) - LOG_SQRT_2PI;
}

/* ---- Normal ---------------------------------------------------------------
 */

static void check_normal_values(crl_dtype dt, int event_dims, double tol) {
  /* loc [2, 3], scale [3] (broadcast), value [2, 3] */
  const double loc[6] = {0.0, 1.5, -2.0, 0.3, -0.7, 4.0};
  const double scale[3] = {1.0, 0.25, 3.0};
  const double val[6] = {0.5, 1.0, 1.0, -0.3, -0.7, 10.0};
  crl_tensor *l = tensor_from_doubles(dt, CRL_SHAPE(2, 3), loc);
  crl_tensor *s = tensor_from_doubles(dt, CRL_SHAPE(3), scale);
  crl_tensor *v = tensor_from_doubles(dt, CRL_SHAPE(2, 3), val);
  crl_dist *d = crl_normal_new(l, s, event_dims);
  CRL_CHECK_PTR(d);
  int nd;
  const int64_t *sh = crl_dist_shape(d, &nd);
  assert_int_equal(nd, 2);
  assert_int_equal(sh[0], 2);
  assert_int_equal(sh[1], 3);
  assert_int_equal(crl_dist_event_ndim(d), event_dims);
  crl_tensor *lp = crl_dist_log_prob(d, v);
  crl_tensor *h = crl_dist_entropy(d, NULL, 0);
  CRL_CHECK_PTR(lp);
  CRL_CHECK_PTR(h);
  assert_int_equal(lp->dtype, dt);
  double elp[6], eh[6];
  for (int i = 0; i < 6; i++) {
    elp[i] = normal_lp(val[i], loc[i], scale[i % 3]);
    eh[i] = 0.5 + LOG_SQRT_2PI + log(scale[i % 3]);
  }
  if (event_dims) {
    for (int r = 0; r < 2; r++) {
      elp[r] = elp[3 * r] + elp[3 * r + 1] + elp[3 * r + 2];
      eh[r] = eh[3 * r] + eh[3 * r + 1] + eh[3 * r + 2];
    }
    assert_shape(lp, CRL_SHAPE(2));
    assert_tensor_values(lp, elp, 2, tol);
    assert_tensor_values(h, eh, 2, tol);
  } else {
    assert_shape(lp, CRL_SHAPE(2, 3));
    assert_tensor_values(lp, elp, 6, tol);
    assert_tensor_values(h, eh, 6, tol);
  }
  /* mode = mean = loc, with the sample shape */
  crl_tensor *m = crl_dist_mode(d), *mu = crl_dist_mean(d);
  CRL_CHECK_PTR(m);
  CRL_CHECK_PTR(mu);
  assert_tensor_values(m, loc, 6, 1e-7);
  assert_tensor_values(mu, loc, 6, 1e-7);
  assert_string_equal(crl_dist_name(d), "Normal");
  assert_int_equal(crl_dist_kind_of(d), CRL_DIST_NORMAL);
}

static void test_normal_closed_forms(void **state) {
  (void)state;
  check_normal_values(CRL_FLOAT64, 0, 1e-12);
  check_normal_values(CRL_FLOAT64, 1, 1e-12);
  check_normal_values(CRL_FLOAT32, 0, 2e-5);
  check_normal_values(CRL_FLOAT32, 1, 5e-5);
}

static void test_normal_log_prob_broadcast_value(void **state) {
  (void)state;
  /* value [4, 1, 2] against a [3, 2] distribution: result [4, 3] with
   * event_dims 1 */
  crl_tensor *l = crl_zeros(CRL_FLOAT64, CRL_SHAPE(3, 2));
  crl_tensor *s = crl_full(CRL_FLOAT64, CRL_SHAPE(1), 2.0);
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_tensor *v = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(4, 1, 2));
  crl_dist *d = crl_normal_new(l, s, 1);
  CRL_CHECK_PTR(d);
  crl_tensor *lp = crl_dist_log_prob(d, v);
  CRL_CHECK_PTR(lp);
  assert_shape(lp, CRL_SHAPE(4, 3));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) {
      double e = normal_lp(crl_tensor_get_flat(v, 2 * i), 0, 2) +
                 normal_lp(crl_tensor_get_flat(v, 2 * i + 1), 0, 2);
      ASSERT_NEAR(crl_tensor_get(lp, (int64_t[]){i, j}), e, 1e-12);
    }
  /* mixed dtypes promote: float32 loc, float64 scale */
  crl_tensor *l32 = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_dist *d2 = crl_normal_new(l32, s, 0);
  CRL_CHECK_PTR(d2);
  crl_rng_seed(&g, 1);
  crl_tensor *x = crl_dist_sample(d2, &g);
  CRL_CHECK_PTR(x);
  assert_int_equal(x->dtype, CRL_FLOAT64);
}

static void test_normal_sample_stats(void **state) {
  (void)state;
  const int64_t N = 40000;
  const double loc[2] = {1.5, -2.0}, scale[2] = {0.5, 3.0};
  crl_tensor *l =
      crl_expand(tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(2), loc), 2,
                 (int64_t[]){N, 2});
  crl_tensor *s = tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(2), scale);
  crl_dist *d = crl_normal_new(l, s, 1);
  CRL_CHECK_PTR(d);
  crl_rng g;
  crl_rng_seed(&g, 42);
  crl_tensor *x = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(x);
  assert_shape(x, CRL_SHAPE(N, 2));
  assert_false(x->requires_grad);
  for (int c = 0; c < 2; c++) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < N; i++)
      m += crl_tensor_get_flat(x, 2 * i + c);
    m /= (double)N;
    for (int64_t i = 0; i < N; i++) {
      double e = crl_tensor_get_flat(x, 2 * i + c) - m;
      v += e * e;
    }
    v /= (double)(N - 1);
    double se = scale[c] / sqrt((double)N);
    ASSERT_NEAR(m, loc[c], 5 * se);
    /* var of the sample variance ~ 2 sigma^4 / N */
    ASSERT_NEAR(v, scale[c] * scale[c],
                5 * sqrt(2.0 / (double)N) * scale[c] * scale[c]);
  }
  /* the same seed gives the same draws; sample does not record a graph
   * even when the parameters require grad */
  crl_tensor *lg = leaf64(CRL_SHAPE(2), loc);
  crl_tensor *sg = leaf64(CRL_SHAPE(2), scale);
  crl_dist *d2 = crl_normal_new(lg, sg, 0);
  crl_rng_seed(&g, 5);
  crl_tensor *a = crl_dist_sample(d2, &g);
  crl_rng_seed(&g, 5);
  crl_tensor *b = crl_dist_rsample(d2, &g);
  CRL_CHECK_PTR(a);
  CRL_CHECK_PTR(b);
  assert_false(a->requires_grad);
  assert_true(b->requires_grad);
  assert_true(crl_equal(a, b));
  /* rsample = loc + scale * randn(same generator state) */
  crl_rng_seed(&g, 5);
  crl_tensor *eps = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(2));
  for (int i = 0; i < 2; i++)
    ASSERT_NEAR(crl_tensor_get_flat(b, i),
                loc[i] + scale[i] * crl_tensor_get_flat(eps, i), 1e-15);
}

static crl_tensor *normal_rsample_fn(crl_tensor **in, void *ctx) {
  int ev = *(int *)ctx;
  crl_rng g;
  crl_rng_seed(&g, 99); /* the same noise at every evaluation */
  crl_dist *d = crl_normal_new(in[0], in[1], ev);
  return d ? crl_dist_rsample(d, &g) : NULL;
}

static crl_tensor *normal_log_prob_fn(crl_tensor **in, void *ctx) {
  int ev = *(int *)ctx;
  crl_dist *d = crl_normal_new(in[0], in[1], ev);
  return d ? crl_dist_log_prob(d, in[2]) : NULL;
}

static crl_tensor *normal_entropy_fn(crl_tensor **in, void *ctx) {
  int ev = *(int *)ctx;
  crl_dist *d = crl_normal_new(in[0], in[1], ev);
  return d ? crl_dist_entropy(d, NULL, 0) : NULL;
}

static void test_normal_gradients(void **state) {
  (void)state;
  for (int ev = 0; ev < 2; ev++) {
    crl_tensor *in[3] = {randn_leaf64(1, CRL_SHAPE(2, 3)),
                         leaf64(CRL_SHAPE(3), (double[]){0.5, 1.2, 2.0}),
                         randn_leaf64(2, CRL_SHAPE(2, 3))};
    CRL_CHECK_OK(
        crl_gradcheck(normal_rsample_fn, in, 2, &ev, 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(
        crl_gradcheck(normal_log_prob_fn, in, 3, &ev, 1e-6, 1e-6, 1e-4));
    CRL_CHECK_OK(
        crl_gradcheck(normal_entropy_fn, in, 2, &ev, 1e-6, 1e-6, 1e-4));
  }
}

static void test_normal_errors(void **state) {
  (void)state;
  crl_tensor *l = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *s = crl_full(CRL_FLOAT32, CRL_SHAPE(2, 3), 1.0);
  /* non-positive scale (0, negative, NaN), naming the element */
  crl_tensor_set_flat(s, 4, 0.0);
  assert_null(crl_normal_new(l, s, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("normal_new: scale must be > 0");
  CRL_ASSERT_ERR_HAS("element 4");
  crl_tensor_set_flat(s, 4, -1.0);
  assert_null(crl_tanh_normal_new(l, s, -1, 1, 1));
  CRL_ASSERT_ERR_HAS("scale must be > 0");
  crl_tensor_set_flat(s, 4, NAN);
  assert_null(crl_truncated_normal_new(l, s, -1, 1, 1));
  CRL_ASSERT_ERR_HAS("scale must be > 0");
  /* a non-contiguous scale is scanned too */
  crl_tensor_set_flat(s, 4, 1.0);
  crl_tensor_set_flat(s, 1, -2.0);
  crl_tensor *st = crl_transpose(s, 0, 1);
  crl_tensor *lt = crl_transpose(l, 0, 1);
  assert_null(crl_normal_new(lt, st, 0));
  CRL_ASSERT_ERR_HAS("element 2");
  crl_tensor_set_flat(s, 1, 1.0);
  /* shapes that do not broadcast: both named */
  crl_tensor *s4 = crl_ones(CRL_FLOAT32, CRL_SHAPE(4));
  assert_null(crl_normal_new(l, s4, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("loc shape [2, 3]");
  CRL_ASSERT_ERR_HAS("scale shape [4]");
  /* event_dims */
  assert_null(crl_normal_new(l, s, 2));
  CRL_ASSERT_ERR_HAS("event_dims 2 must be 0 or 1");
  crl_tensor *l0 = crl_scalar(CRL_FLOAT32, 0), *s0 = crl_scalar(CRL_FLOAT32, 1);
  assert_null(crl_normal_new(l0, s0, 1));
  CRL_ASSERT_ERR_HAS("event_dims 1 needs parameters with at least 1 dim");
  CRL_CHECK_PTR(crl_normal_new(l0, s0, 0));
  /* dtypes and NULLs */
  crl_tensor *li = crl_zeros(CRL_INT64, CRL_SHAPE(2, 3));
  assert_null(crl_normal_new(li, s, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("loc must be float32 or float64 (got int64)");
  assert_null(crl_normal_new(NULL, s, 0));
  CRL_ASSERT_ERR_HAS("normal_new: loc is NULL");
  /* method errors */
  crl_dist *d = crl_normal_new(l, s, 0);
  CRL_CHECK_PTR(d);
  crl_tensor *v = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4));
  assert_null(crl_dist_log_prob(d, v));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("dist_log_prob(Normal): value shape [4]");
  CRL_ASSERT_ERR_HAS("shape [2, 3]");
  assert_null(crl_dist_log_prob(d, NULL));
  CRL_ASSERT_ERR_HAS("value is NULL");
  assert_null(crl_dist_sample(d, NULL));
  CRL_ASSERT_ERR_HAS("dist_sample(Normal): generator is NULL");
  assert_null(crl_dist_rsample(NULL, NULL));
  CRL_ASSERT_ERR_HAS("dist_rsample: distribution is NULL");
  /* failed calls leave the inputs alone */
  assert_int_equal(l->refcount, 2);
  ASSERT_NEAR(crl_tensor_get_flat(s, 1), 1.0, 0);
}

/* ---- lifetime ---------------------------------------------------------- */

static void test_dist_lifetime(void **state) {
  (void)state;
  crl_tensor *l = crl_zeros(CRL_FLOAT64, CRL_SHAPE(3));
  crl_tensor *s = crl_ones(CRL_FLOAT64, CRL_SHAPE(3));
  int rc0 = l->refcount;
  crl_scope_begin();
  crl_dist *d = crl_normal_new(l, s, 0);
  CRL_CHECK_PTR(d);
  assert_int_equal(l->refcount, rc0 + 1); /* retained by the distribution */
  crl_dist_retain(d);
  crl_scope_end(); /* the scope's reference goes, ours stays */
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_tensor *x = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(x);
  crl_dist_release(d);
  assert_int_equal(l->refcount, rc0);
}

/* ---- Delta ----------------------------------------------------------------
 */

static crl_tensor *delta_rsample_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_dist *d = crl_delta_new(in[0], 1);
  return d ? crl_dist_rsample(d, &g) : NULL;
}

static void test_delta(void **state) {
  (void)state;
  const double p[6] = {0.5, -1.0, 2.0, 3.0, 0.0, -4.0};
  crl_tensor *param = tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2, 3), p);
  crl_dist *d = crl_delta_new(param, 1);
  CRL_CHECK_PTR(d);
  assert_string_equal(crl_dist_name(d), "Delta");
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_tensor *x = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(x);
  assert_tensor_values(x, p, 6, 0);
  assert_true(x->data != param->data); /* a copy, not the parameter */
  /* log_prob: 0 where the whole event matches, -inf elsewhere */
  double v[6] = {0.5, -1.0, 2.0 + 1e-9, 3.0, 0.0, -4.1};
  crl_tensor *lp = crl_dist_log_prob(
      d, tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2, 3), v));
  CRL_CHECK_PTR(lp);
  assert_shape(lp, CRL_SHAPE(2));
  assert_tensor_values(lp, (double[]){0.0, -INFINITY}, 2, 0);
  crl_dist *d0 = crl_delta_new(param, 0);
  lp = crl_dist_log_prob(d0,
                         tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(2, 3), v));
  assert_tensor_values(lp, (double[]){0, 0, 0, 0, 0, -INFINITY}, 6, 0);
  crl_tensor *h = crl_dist_entropy(d, NULL, 0);
  assert_shape(h, CRL_SHAPE(2));
  assert_tensor_values(h, (double[]){0, 0}, 2, 0);
  assert_tensor_values(crl_dist_mode(d), p, 6, 0);
  assert_tensor_values(crl_dist_mean(d), p, 6, 0);
  /* rsample is the parameter itself (gradient 1) */
  crl_tensor *in[1] = {leaf64(CRL_SHAPE(2, 3), p)};
  CRL_CHECK_OK(crl_gradcheck(delta_rsample_fn, in, 1, NULL, 1e-6, 1e-6, 1e-4));
  /* errors */
  assert_null(crl_delta_new(crl_scalar(CRL_FLOAT32, 1), 1));
  CRL_ASSERT_ERR_HAS("delta_new: event_dims 1 needs a param");
  assert_null(crl_delta_new(crl_zeros(CRL_INT32, CRL_SHAPE(2)), 0));
  CRL_ASSERT_ERR_HAS("param must be float32 or float64 (got int32)");
}

/* ---- Categorical ----------------------------------------------------------
 */

/* log-softmax of a row in double */
static void ref_log_softmax(const double *x, int k, double *out) {
  double m = -INFINITY, s = 0;
  for (int i = 0; i < k; i++)
    m = x[i] > m ? x[i] : m;
  for (int i = 0; i < k; i++)
    s += exp(x[i] - m);
  for (int i = 0; i < k; i++)
    out[i] = x[i] - m - log(s);
}

static void test_categorical_closed_forms(void **state) {
  (void)state;
  const double lg[8] = {0.1, -0.5, 2.0, 0.0, 1.0, 1.0, -INFINITY, 3.0};
  for (int dti = 0; dti < 2; dti++) {
    crl_dtype dt = dti ? CRL_FLOAT32 : CRL_FLOAT64;
    double tol = dti ? 1e-5 : 1e-12;
    crl_tensor *logits = tensor_from_doubles(dt, CRL_SHAPE(2, 4), lg);
    crl_dist *d = crl_categorical_new(logits);
    CRL_CHECK_PTR(d);
    int nd;
    crl_dist_shape(d, &nd);
    assert_int_equal(nd, 1);
    double ls[8];
    ref_log_softmax(lg, 4, ls);
    ref_log_softmax(lg + 4, 4, ls + 4);
    /* value [3, 2] broadcast against batch [2] */
    const double vi[6] = {0, 3, 2, 1, 3, 0};
    crl_tensor *v = tensor_from_doubles(CRL_INT64, CRL_SHAPE(3, 2), vi);
    crl_tensor *lp = crl_dist_log_prob(d, v);
    CRL_CHECK_PTR(lp);
    assert_shape(lp, CRL_SHAPE(3, 2));
    double e[6];
    for (int i = 0; i < 6; i++)
      e[i] = ls[(i % 2) * 4 + (int)vi[i]];
    assert_tensor_values(lp, e, 6, tol);
    /* a masked category has log-prob -inf */
    crl_tensor *v2 =
        tensor_from_doubles(CRL_INT32, CRL_SHAPE(2), (double[]){1, 2});
    lp = crl_dist_log_prob(d, v2);
    CRL_CHECK_PTR(lp);
    assert_tensor_values(lp, (double[]){ls[1], -INFINITY}, 2, tol);
    /* entropy -sum p log p, 0 log 0 = 0 */
    double he[2] = {0, 0};
    for (int r = 0; r < 2; r++)
      for (int i = 0; i < 4; i++)
        if (isfinite(ls[4 * r + i]))
          he[r] -= exp(ls[4 * r + i]) * ls[4 * r + i];
    crl_tensor *h = crl_dist_entropy(d, NULL, 0);
    CRL_CHECK_PTR(h);
    assert_tensor_values(h, he, 2, tol);
    crl_tensor *m = crl_dist_mode(d);
    assert_int_equal(m->dtype, CRL_INT64);
    assert_tensor_values(m, (double[]){2, 3}, 2, 0);
  }
}

static void chi_square_check(const int64_t *counts, const double *p, int k,
                             int64_t n, double crit) {
  double chi = 0;
  for (int i = 0; i < k; i++) {
    double e = p[i] * (double)n;
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  if (!(chi < crit)) fail_msg("chi-square %.3f >= %.3f", chi, crit);
}

static void test_categorical_sampling(void **state) {
  (void)state;
  const int64_t N = 50000;
  const double lg[4] = {0.3, -1.0, 1.2, 0.0};
  double p[4];
  ref_log_softmax(lg, 4, p);
  for (int i = 0; i < 4; i++)
    p[i] = exp(p[i]);
  crl_tensor *logits = crl_expand(
      tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(4), lg), 2, (int64_t[]){N, 4});
  crl_rng g;
  crl_rng_seed(&g, 11);
  /* Categorical: indices */
  crl_dist *d = crl_categorical_new(logits);
  crl_tensor *x = crl_dist_sample(d, &g);
  CRL_CHECK_PTR(x);
  assert_shape(x, CRL_SHAPE(N));
  assert_int_equal(x->dtype, CRL_INT64);
  int64_t c[4] = {0};
  for (int64_t i = 0; i < N; i++)
    c[(int)crl_tensor_get_flat(x, i)]++;
  /* 3 degrees of freedom: P(chi2 > 21.1) = 1e-4 */
  chi_square_check(c, p, 4, N, 21.1);
  /* OneHotCategorical: one-hot rows of the logits' dtype */
  crl_dist *o = crl_one_hot_categorical_new(logits);
  crl_tensor *y = crl_dist_sample(o, &g);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(N, 4));
  assert_int_equal(y->dtype, CRL_FLOAT32);
  int64_t c2[4] = {0};
  for (int64_t i = 0; i < N; i++) {
    double row = 0;
    for (int k = 0; k < 4; k++) {
      double e = crl_tensor_get_flat(y, 4 * i + k);
      assert_true(e == 0.0 || e == 1.0);
      row += e;
      if (e == 1.0) c2[k]++;
    }
    ASSERT_NEAR(row, 1.0, 0);
  }
  chi_square_check(c2, p, 4, N, 21.1);
  /* a masked category is never drawn */
  crl_tensor *ml = tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(3),
                                       (double[]){0, -INFINITY, 0});
  crl_tensor *mx = crl_dist_sample(
      crl_categorical_new(crl_expand(ml, 2, (int64_t[]){1000, 3})), &g);
  CRL_CHECK_PTR(mx);
  for (int64_t i = 0; i < 1000; i++)
    assert_true(crl_tensor_get_flat(mx, i) != 1);
}

static crl_tensor *cat_log_prob_fn(crl_tensor **in, void *ctx) {
  crl_dist *d = crl_categorical_new(in[0]);
  return d ? crl_dist_log_prob(d, ctx) : NULL;
}
static crl_tensor *cat_entropy_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_dist *d = crl_categorical_new(in[0]);
  return d ? crl_dist_entropy(d, NULL, 0) : NULL;
}
static crl_tensor *onehot_log_prob_fn(crl_tensor **in, void *ctx) {
  crl_dist *d = crl_one_hot_categorical_new(in[0]);
  return d ? crl_dist_log_prob(d, ctx) : NULL;
}
static crl_tensor *onehot_entropy_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_dist *d = crl_one_hot_categorical_new(in[0]);
  return d ? crl_dist_entropy(d, NULL, 0) : NULL;
}
static crl_tensor *onehot_mean_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_dist *d = crl_one_hot_categorical_new(in[0]);
  return d ? crl_dist_mean(d) : NULL;
}

static void test_categorical_gradients(void **state) {
  (void)state;
  crl_tensor *in[1] = {randn_leaf64(7, CRL_SHAPE(3, 4))};
  crl_tensor *v = tensor_from_doubles(CRL_INT64, CRL_SHAPE(2, 3),
                                      (double[]){0, 3, 2, 1, 1, 0});
  CRL_CHECK_OK(crl_gradcheck(cat_log_prob_fn, in, 1, v, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(cat_entropy_fn, in, 1, NULL, 1e-6, 1e-6, 1e-4));
  double oh[12] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1};
  crl_tensor *ov = tensor_from_doubles(CRL_FLOAT64, CRL_SHAPE(3, 4), oh);
  CRL_CHECK_OK(crl_gradcheck(onehot_log_prob_fn, in, 1, ov, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(onehot_entropy_fn, in, 1, NULL, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(onehot_mean_fn, in, 1, NULL, 1e-6, 1e-6, 1e-4));
}

static void test_one_hot_categorical(void **state) {
  (void)state;
  const double lg[6] = {0.2, 1.5, -0.3, 2.0, 2.0, -1.0};
  crl_tensor *logits = leaf64(CRL_SHAPE(2, 3), lg);
  crl_dist *o = crl_one_hot_categorical_new(logits);
  crl_dist *c = crl_categorical_new(logits);
  CRL_CHECK_PTR(o);
  assert_string_equal(crl_dist_name(o), "OneHotCategorical");
  assert_int_equal(crl_dist_event_ndim(o), 1);
  /* log_prob(one-hot) = Categorical log_prob(index) */
  crl_tensor *ov = tensor_from_doubles(CRL_FLOAT32, CRL_SHAPE(2, 3),
                                       (double[]){0, 1, 0, 0, 0, 1});
  crl_tensor *lp = crl_dist_log_prob(o, ov);
  crl_tensor *lc = crl_dist_log_prob(
      c, tensor_from_doubles(CRL_INT64, CRL_SHAPE(2), (double[]){1, 2}));
  CRL_CHECK_PTR(lp);
  CRL_CHECK_PTR(lc);
  assert_shape(lp, CRL_SHAPE(2));
  assert_true(crl_allclose(lp, lc, 0, 1e-15));
  assert_true(crl_allclose(crl_dist_entropy(o, NULL, 0),
                           crl_dist_entropy(c, NULL, 0), 0, 1e-15));
  /* mode: one-hot argmax (first of ties), mean: the probabilities */
  assert_tensor_values(crl_dist_mode(o), (double[]){0, 1, 0, 1, 0, 0}, 6, 0);
  double ls[6];
  ref_log_softmax(lg, 3, ls);
  ref_log_softmax(lg + 3, 3, ls + 3);
  for (int i = 0; i < 6; i++)
    ls[i] = exp(ls[i]);
  assert_tensor_values(crl_dist_mean(o), ls, 6, 1e-12);
  /* rsample: exact one-hot values, the softmax's gradient */
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_tensor *r = crl_dist_rsample(o, &g);
  CRL_CHECK_PTR(r);
  assert_true(r->requires_grad);
  for (int i = 0; i < 6; i++) {
    double e = crl_tensor_get_flat(r, i);
    assert_true(e == 0.0 || e == 1.0);
  }
  crl_rng_seed(&g, 3);
  assert_true(crl_equal(r, crl_dist_sample(o, &g)));
  crl_tensor *w = tensor_from_doubles(
      CRL_FLOAT64, CRL_SHAPE(2, 3), (double[]){0.3, -1.0, 2.0, 0.5, 1.5, -0.7});
  CRL_CHECK_OK(crl_backward(crl_sum(crl_mul(r, w), 0, NULL, false), NULL));
  crl_tensor *g1 = crl_clone(logits->grad);
  crl_zero_grad(logits);
  CRL_CHECK_OK(crl_backward(
      crl_sum(crl_mul(crl_softmax(logits, -1), w), 0, NULL, false), NULL));
  assert_true(crl_allclose(g1, logits->grad, 0, 1e-15));
  /* errors */
  assert_null(crl_dist_log_prob(o, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4))));
  assert_null(crl_dist_log_prob(o, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 1))));
  CRL_ASSERT_ERR_HAS("value shape [2, 1] must end with the 3 categories");
}

static void test_categorical_errors(void **state) {
  (void)state;
  crl_tensor *logits = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_dist *d = crl_categorical_new(logits);
  CRL_CHECK_PTR(d);
  crl_tensor *v =
      tensor_from_doubles(CRL_INT64, CRL_SHAPE(2), (double[]){0, 3});
  assert_null(crl_dist_log_prob(d, v));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("dist_log_prob(Categorical): value 3 (element 1) is "
                     "out of range for 3 categories");
  crl_tensor_set_flat(v, 1, -1);
  assert_null(crl_dist_log_prob(d, v));
  CRL_ASSERT_ERR_HAS("value -1 (element 1) is out of range");
  assert_null(crl_dist_log_prob(d, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("value must be an integer tensor");
  assert_null(crl_dist_log_prob(d, crl_zeros(CRL_INT64, CRL_SHAPE(3))));
  CRL_ASSERT_ERR_HAS("value shape [3] does not broadcast");
  crl_rng g;
  crl_rng_seed(&g, 0);
  assert_null(crl_dist_rsample(d, &g));
  assert_int_equal(crl_last_error_code(), CRL_EUNSUPPORTED);
  CRL_ASSERT_ERR_HAS("dist_rsample(Categorical): not reparameterisable");
  assert_null(crl_dist_mean(d));
  assert_int_equal(crl_last_error_code(), CRL_EUNSUPPORTED);
  assert_null(crl_categorical_new(crl_scalar(CRL_FLOAT32, 0)));
  CRL_ASSERT_ERR_HAS("categorical_new: logits of shape []");
  assert_null(crl_categorical_new(crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 0))));
  CRL_ASSERT_ERR_HAS("logits of shape [2, 0]");
  assert_null(crl_one_hot_categorical_new(crl_zeros(CRL_INT64, CRL_SHAPE(3))));
  CRL_ASSERT_ERR_HAS("one_hot_categorical_new: logits must be float32");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_normal_closed_forms),
      CRL_TEST(test_normal_log_prob_broadcast_value),
      CRL_TEST(test_normal_sample_stats),
      CRL_TEST(test_normal_gradients),
      CRL_TEST(test_normal_errors),
      CRL_TEST(test_dist_lifetime),
      CRL_TEST(test_delta),
      CRL_TEST(test_categorical_closed_forms),
      CRL_TEST(test_categorical_sampling),
      CRL_TEST(test_categorical_gradients),
      CRL_TEST(test_one_hot_categorical),
      CRL_TEST(test_categorical_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
