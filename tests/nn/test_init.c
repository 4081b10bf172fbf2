/* Initialisers: torch's formulas (bounds and standard deviations),
 * orthogonality, errors, determinism. */
#include "test_util.h"

static void stats(const crl_tensor *t, double *mean, double *std, double *lo,
                  double *hi) {
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = crl_tensor_get_flat(t, i);
    s += v;
    s2 += v * v;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
  }
  *mean = s / (double)t->numel;
  *std = sqrt(s2 / (double)t->numel - *mean * *mean);
}

/* |WᵀW - I| (columns orthonormal) or |WWᵀ - I| (rows) for W [rows, cols]
 * scaled by 1/gain. */
static double ortho_err(const crl_tensor *w, int64_t rows, int64_t cols,
                        double gain) {
  bool by_cols = rows >= cols;
  int64_t n = by_cols ? cols : rows, len = by_cols ? rows : cols;
  double err = 0;
  for (int64_t a = 0; a < n; a++)
    for (int64_t b = 0; b < n; b++) {
      double d = 0;
      for (int64_t k = 0; k < len; k++) {
        int64_t ia = by_cols ? k * cols + a : a * cols + k;
        int64_t ib = by_cols ? k * cols + b : b * cols + k;
        d += crl_tensor_get_flat(w, ia) * crl_tensor_get_flat(w, ib);
      }
      d /= gain * gain;
      err = fmax(err, fabs(d - (a == b)));
    }
  return err;
}

static void test_orthogonal(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  int64_t shapes[3][2] = {{64, 16}, {16, 64}, {32, 32}};
  for (int s = 0; s < 3; s++) {
    crl_tensor *w = crl_empty(CRL_FLOAT64, 2, shapes[s]);
    CRL_CHECK_OK(crl_init_orthogonal_(w, 1.0, &g));
    assert_true(ortho_err(w, shapes[s][0], shapes[s][1], 1.0) < 1e-12);
  }
  /* gain and float32 */
  crl_tensor *w = crl_empty(CRL_FLOAT32, CRL_SHAPE(8, 5));
  CRL_CHECK_OK(crl_init_orthogonal_(w, 2.0, &g));
  assert_true(ortho_err(w, 8, 5, 2.0) < 1e-6);
  /* conv weight [4, 2, 3, 3] is flattened to [4, 18]: orthonormal rows */
  crl_tensor *c = crl_empty(CRL_FLOAT64, CRL_SHAPE(4, 2, 3, 3));
  CRL_CHECK_OK(crl_init_orthogonal_(c, 1.0, &g));
  assert_true(ortho_err(c, 4, 18, 1.0) < 1e-12);
  /* a parameter that requires grad, non-contiguous */
  crl_tensor *big = crl_zeros(CRL_FLOAT64, CRL_SHAPE(6, 6));
  crl_set_requires_grad(big, true);
  crl_tensor *tv = crl_transpose(big, 0, 1);
  CRL_CHECK_OK(crl_init_orthogonal_(big, 1.0, &g));
  assert_true(ortho_err(big, 6, 6, 1.0) < 1e-12);
  (void)tv;
  /* same seed, same matrix */
  crl_rng g1, g2;
  crl_rng_seed(&g1, 5);
  crl_rng_seed(&g2, 5);
  crl_tensor *a = crl_empty(CRL_FLOAT32, CRL_SHAPE(3, 4));
  crl_tensor *b = crl_empty(CRL_FLOAT32, CRL_SHAPE(3, 4));
  crl_init_orthogonal_(a, 1, &g1);
  crl_init_orthogonal_(b, 1, &g2);
  assert_true(crl_equal(a, b));
}

static void test_orthogonal_errors(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_tensor *v = crl_zeros(CRL_FLOAT32, CRL_SHAPE(5));
  assert_int_equal(crl_init_orthogonal_(v, 1, &g), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("init_orthogonal_");
  CRL_ASSERT_ERR_HAS("[5]");
  crl_tensor *i = crl_zeros(CRL_INT64, CRL_SHAPE(2, 2));
  assert_int_equal(crl_init_orthogonal_(i, 1, &g), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int64");
  assert_tensor_values(i, (double[]){0, 0, 0, 0}, 4, 0);
}

static void test_xavier(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 2);
  /* fan_in = 200, fan_out = 300 */
  crl_tensor *w = crl_empty(CRL_FLOAT32, CRL_SHAPE(300, 200));
  double mean, std, lo, hi;
  CRL_CHECK_OK(crl_init_xavier_uniform_(w, 1.5, &g));
  double a = 1.5 * sqrt(6.0 / 500.0);
  stats(w, &mean, &std, &lo, &hi);
  assert_true(lo >= -a && hi <= a);
  assert_true(lo < -0.99 * a && hi > 0.99 * a);
  ASSERT_NEAR(std, a / sqrt(3.0), 0.01 * a);
  ASSERT_NEAR(mean, 0, 0.01 * a);
  CRL_CHECK_OK(crl_init_xavier_normal_(w, 1.5, &g));
  stats(w, &mean, &std, &lo, &hi);
  ASSERT_NEAR(std, 1.5 * sqrt(2.0 / 500.0), 0.01 * 1.5 * sqrt(2.0 / 500.0));
  ASSERT_NEAR(mean, 0, 0.01 * std);
  /* conv fans: [16, 8, 3, 3] -> fan_in 72, fan_out 144 */
  crl_tensor *c = crl_empty(CRL_FLOAT64, CRL_SHAPE(16, 8, 3, 3));
  CRL_CHECK_OK(crl_init_xavier_uniform_(c, 1.0, &g));
  stats(c, &mean, &std, &lo, &hi);
  a = sqrt(6.0 / 216.0);
  assert_true(lo >= -a && hi <= a && hi > 0.9 * a);
  crl_tensor *v = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4));
  assert_int_equal(crl_init_xavier_uniform_(v, 1, &g), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("init_xavier_uniform_");
}

static void test_kaiming(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_tensor *w = crl_empty(CRL_FLOAT32, CRL_SHAPE(400, 100));
  double mean, std, lo, hi;
  /* default a = sqrt(5): bound 1/sqrt(fan_in) (torch's nn.Linear) */
  CRL_CHECK_OK(crl_init_kaiming_uniform_(w, -1, &g));
  stats(w, &mean, &std, &lo, &hi);
  double b = 1.0 / sqrt(100.0);
  assert_true(lo >= -b && hi <= b && lo < -0.99 * b && hi > 0.99 * b);
  ASSERT_NEAR(std, b / sqrt(3.0), 0.01 * b);
  /* a = 0 (ReLU): bound sqrt(6 / fan_in) */
  CRL_CHECK_OK(crl_init_kaiming_uniform_(w, 0, &g));
  stats(w, &mean, &std, &lo, &hi);
  b = sqrt(6.0 / 100.0);
  assert_true(lo >= -b && hi <= b && hi > 0.99 * b);
  /* normal: std sqrt(2 / fan_in) for a = 0, sqrt(2/(1+a^2)/fan_in) */
  CRL_CHECK_OK(crl_init_kaiming_normal_(w, -1, &g));
  stats(w, &mean, &std, &lo, &hi);
  ASSERT_NEAR(std, sqrt(2.0 / 100.0), 0.01 * sqrt(2.0 / 100.0));
  CRL_CHECK_OK(crl_init_kaiming_normal_(w, 1.0, &g));
  stats(w, &mean, &std, &lo, &hi);
  ASSERT_NEAR(std, sqrt(1.0 / 100.0), 0.01 * sqrt(1.0 / 100.0));
  ASSERT_NEAR(mean, 0, 0.01 * std);
  /* conv: fan_in = C * k * k */
  crl_tensor *c = crl_empty(CRL_FLOAT32, CRL_SHAPE(8, 4, 5, 5));
  CRL_CHECK_OK(crl_init_kaiming_uniform_(c, -1, &g));
  stats(c, &mean, &std, &lo, &hi);
  assert_true(hi <= 1.0 / 10.0 && hi > 0.9 / 10.0);
  /* a leaf that requires grad is fine; a 1-D tensor is not */
  crl_set_requires_grad(w, true);
  CRL_CHECK_OK(crl_init_kaiming_uniform_(w, -1, &g));
  crl_tensor *v = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3));
  assert_int_equal(crl_init_kaiming_normal_(v, 0, &g), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("init_kaiming_normal_");
  /* empty tensors are left alone */
  crl_tensor *e = crl_empty(CRL_FLOAT32, CRL_SHAPE(0, 3));
  CRL_CHECK_OK(crl_init_kaiming_uniform_(e, -1, &g));
}

static void test_constant(void **state) {
  (void)state;
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 2));
  crl_set_requires_grad(t, true);
  unsigned v = t->version;
  CRL_CHECK_OK(crl_init_constant_(t, 0.25));
  assert_tensor_values(t, (double[]){0.25, 0.25, 0.25, 0.25}, 4, 0);
  assert_true(t->version != v);
  assert_true(t->requires_grad);
  assert_int_equal(crl_init_constant_(NULL, 1), CRL_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_orthogonal), CRL_TEST(test_orthogonal_errors),
      CRL_TEST(test_xavier),     CRL_TEST(test_kaiming),
      CRL_TEST(test_constant),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
