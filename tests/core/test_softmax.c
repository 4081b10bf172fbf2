/* Softmax and log-softmax: values against closed forms along every dim
 * (last dim, leading dim, middle dim, strided input), numerical stability,
 * infinities, dtypes, empty and 0-dim tensors, errors, thread-count
 * independence, gradients. */
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

static crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  return crl_from_array(CRL_FLOAT32, ndim, shape, v);
}

static void test_softmax_values(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(2, 3), (const float[]){1, 2, 3, 0, 0, 0});
  double s = exp(1) + exp(2) + exp(3);
  crl_tensor *y = crl_softmax(a, 1);
  CRL_CHECK_PTR(y);
  assert_int_equal(y->dtype, CRL_FLOAT32);
  assert_shape(y, CRL_SHAPE(2, 3));
  assert_tensor_values(
      y,
      (double[]){exp(1) / s, exp(2) / s, exp(3) / s, 1.0 / 3, 1.0 / 3, 1.0 / 3},
      6, 1e-7);
  crl_tensor *ly = crl_log_softmax(a, -1);
  assert_tensor_values(
      ly,
      (double[]){1 - log(s), 2 - log(s), 3 - log(s), -log(3), -log(3), -log(3)},
      6, 1e-6);
  /* along dim 0: columns (1, 0), (2, 0), (3, 0) */
  crl_tensor *y0 = crl_softmax(a, 0);
  for (int c = 0; c < 3; c++) {
    double e = exp(c + 1);
    ASSERT_NEAR(crl_tensor_get_flat(y0, c), e / (e + 1), 1e-7);
    ASSERT_NEAR(crl_tensor_get_flat(y0, 3 + c), 1 / (e + 1), 1e-7);
  }
  crl_tensor *l0 = crl_log_softmax(a, 0);
  ASSERT_NEAR(crl_tensor_get_flat(l0, 5), -log(exp(3) + 1), 1e-6);
}

/* reference along dim d of a [2, 3, 4] float64 tensor */
static void check_dim(crl_tensor *x, int d) {
  crl_tensor *y = crl_softmax(x, d), *ly = crl_log_softmax(x, d);
  CRL_CHECK_PTR(y);
  CRL_CHECK_PTR(ly);
  int64_t idx[3];
  for (idx[0] = 0; idx[0] < 2; idx[0]++)
    for (idx[1] = 0; idx[1] < 3; idx[1]++)
      for (idx[2] = 0; idx[2] < 4; idx[2]++) {
        int64_t j[3] = {idx[0], idx[1], idx[2]};
        double den = 0;
        for (j[d] = 0; j[d] < x->shape[d]; j[d]++)
          den += exp(crl_tensor_get(x, j));
        double v = crl_tensor_get(x, idx);
        ASSERT_NEAR(crl_tensor_get(y, idx), exp(v) / den, 1e-14);
        ASSERT_NEAR(crl_tensor_get(ly, idx), v - log(den), 1e-13);
      }
}

static void test_softmax_dims_strided(void **state) {
  (void)state;
  crl_tensor *x = randn_leaf64(11, CRL_SHAPE(2, 3, 4));
  for (int d = 0; d < 3; d++)
    check_dim(x, d);
  /* a strided view with the same logical shape */
  crl_tensor *t = crl_contiguous(crl_permute(x, 3, (int[]){2, 0, 1}));
  crl_tensor *v = crl_permute(t, 3, (int[]){1, 2, 0});
  assert_false(crl_tensor_is_contiguous(v));
  for (int d = 0; d < 3; d++)
    check_dim(v, d);
}

static void test_softmax_stability(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(3), (const float[]){1000, 1001, -INFINITY});
  crl_tensor *y = crl_softmax(a, 0);
  double e = exp(1);
  assert_tensor_values(y, (double[]){1 / (1 + e), e / (1 + e), 0}, 3, 1e-6);
  crl_tensor *ly = crl_log_softmax(a, 0);
  ASSERT_NEAR(crl_tensor_get_flat(ly, 0), -log(1 + e), 1e-5);
  assert_true(isinf(crl_tensor_get_flat(ly, 2)));
  /* a slice of all -inf gives NaN, as torch */
  crl_tensor *n = f32(CRL_SHAPE(2), (const float[]){-INFINITY, -INFINITY});
  assert_true(isnan(crl_tensor_get_flat(crl_softmax(n, 0), 0)));
  /* float64 tail probabilities */
  crl_tensor *d =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (const double[]){0, -700});
  ASSERT_NEAR(crl_tensor_get_flat(crl_log_softmax(d, 0), 1), -700, 1e-9);
}

static void test_softmax_dtypes_shapes(void **state) {
  (void)state;
  crl_tensor *i = crl_arange(CRL_INT64, 0, 2, 1);
  crl_tensor *y = crl_softmax(i, 0);
  assert_int_equal(y->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_tensor_get_flat(y, 1), exp(1) / (1 + exp(1)), 1e-7);
  crl_tensor *s = crl_softmax(crl_scalar(CRL_FLOAT64, 3), 0);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->ndim, 0);
  ASSERT_NEAR(crl_item(s), 1, 0);
  ASSERT_NEAR(crl_item(crl_log_softmax(crl_scalar(CRL_FLOAT32, 3), -1)), 0, 0);
  crl_tensor *e = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 3));
  assert_shape(crl_softmax(e, 1), CRL_SHAPE(0, 3));
  assert_shape(crl_log_softmax(e, 0), CRL_SHAPE(0, 3));
  /* size-1 dim */
  crl_tensor *o = crl_full(CRL_FLOAT32, CRL_SHAPE(2, 1), 5);
  assert_tensor_values(crl_softmax(o, 1), (double[]){1, 1}, 2, 0);
}

static void test_softmax_errors(void **state) {
  (void)state;
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  assert_null(crl_softmax(a, 2));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("softmax");
  CRL_ASSERT_ERR_HAS("dim 2");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_null(crl_log_softmax(a, -3));
  CRL_ASSERT_ERR_HAS("log_softmax");
  assert_null(crl_softmax(NULL, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_softmax(crl_scalar(CRL_FLOAT32, 1), 1));
  assert_tensor_values(a, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
}

static void test_softmax_threads(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_tensor *a = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(700, 300));
  int prev = crl_get_num_threads();
  for (int d = 0; d < 2; d++)
    for (int lg = 0; lg < 2; lg++) {
      crl_set_num_threads(1);
      crl_tensor *x1 = lg ? crl_log_softmax(a, d) : crl_softmax(a, d);
      crl_set_num_threads(2);
      crl_tensor *x2 = lg ? crl_log_softmax(a, d) : crl_softmax(a, d);
      CRL_CHECK_PTR(x1);
      CRL_CHECK_PTR(x2);
      assert_memory_equal(x1->data, x2->data, (size_t)x1->numel * 4);
    }
  crl_set_num_threads(prev);
  /* rows sum to one */
  crl_tensor *s = crl_sum(crl_softmax(a, 1), 1, (int[]){1}, false);
  for (int64_t k = 0; k < 700; k++)
    ASSERT_NEAR(crl_tensor_get_flat(s, k), 1, 1e-5);
}

typedef struct {
  int dim;
  bool log;
} sctx;

static crl_tensor *sfn(crl_tensor **in, void *vc) {
  const sctx *c = vc;
  return c->log ? crl_log_softmax(in[0], c->dim) : crl_softmax(in[0], c->dim);
}

static void test_softmax_grads(void **state) {
  (void)state;
  crl_tensor *x = randn_leaf64(21, CRL_SHAPE(3, 4, 5));
  for (int d = -1; d < 3; d++)
    for (int lg = 0; lg < 2; lg++) {
      sctx c = {d, lg};
      if (crl_gradcheck(sfn, &x, 1, &c, GC_TOL))
        fail_msg("dim %d log %d: %s", d, lg, crl_last_error());
    }
  /* closed form: d softmax_i / d x_j = y_i (delta_ij - y_j) */
  crl_tensor *v = leaf64(CRL_SHAPE(3), (double[]){0.5, -1, 2});
  crl_tensor *y = crl_softmax(v, 0);
  crl_tensor *g =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (const double[]){1, 0, 0});
  CRL_CHECK_OK(crl_backward(y, g));
  double y0 = crl_tensor_get_flat(y, 0), y1 = crl_tensor_get_flat(y, 1),
         y2 = crl_tensor_get_flat(y, 2);
  assert_tensor_values(v->grad, (double[]){y0 * (1 - y0), -y0 * y1, -y0 * y2},
                       3, 1e-15);
  /* log_softmax with g = 1 everywhere: g - exp(y) * 3 */
  crl_zero_grad(v);
  crl_tensor *ly = crl_log_softmax(v, 0);
  CRL_CHECK_OK(crl_backward(ly, crl_ones(CRL_FLOAT64, CRL_SHAPE(3))));
  assert_tensor_values(v->grad, (double[]){1 - 3 * y0, 1 - 3 * y1, 1 - 3 * y2},
                       3, 1e-14);
  /* float32 backward runs and keeps the dtype */
  crl_tensor *f = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 2));
  CRL_CHECK_OK(crl_set_requires_grad(f, true));
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_log_softmax(f, 0), 0, NULL, false), NULL));
  assert_int_equal(f->grad->dtype, CRL_FLOAT32);
  assert_tensor_values(f->grad, (double[]){0, 0, 0, 0}, 4, 1e-7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_softmax_values),    CRL_TEST(test_softmax_dims_strided),
      CRL_TEST(test_softmax_stability), CRL_TEST(test_softmax_dtypes_shapes),
      CRL_TEST(test_softmax_errors),    CRL_TEST(test_softmax_threads),
      CRL_TEST(test_softmax_grads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
