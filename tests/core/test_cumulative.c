/* Cumulative sum and product: values forward and reversed along every dim
 * (strided input too), dtypes, empty and 0-dim tensors, errors, float32
 * accumulation, thread-count independence, gradients (cumprod with zeros). */
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

static crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  return crl_from_array(CRL_FLOAT32, ndim, shape, v);
}

static void test_cum_values(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(4), (const float[]){1, 2, 3, 4});
  crl_tensor *c = crl_cumsum(a, 0, false);
  CRL_CHECK_PTR(c);
  assert_int_equal(c->dtype, CRL_FLOAT32);
  assert_tensor_values(c, (double[]){1, 3, 6, 10}, 4, 0);
  assert_tensor_values(crl_cumsum(a, -1, true), (double[]){10, 9, 7, 4}, 4, 0);
  assert_tensor_values(crl_cumprod(a, 0, false), (double[]){1, 2, 6, 24}, 4, 0);
  assert_tensor_values(crl_cumprod(a, 0, true), (double[]){24, 24, 12, 4}, 4,
                       0);
  /* [[1, 2, 3], [4, 5, 6]] along both dims */
  crl_tensor *m = f32(CRL_SHAPE(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
  assert_tensor_values(crl_cumsum(m, 0, false), (double[]){1, 2, 3, 5, 7, 9}, 6,
                       0);
  assert_tensor_values(crl_cumsum(m, 1, false), (double[]){1, 3, 6, 4, 9, 15},
                       6, 0);
  assert_tensor_values(crl_cumsum(m, 0, true), (double[]){5, 7, 9, 4, 5, 6}, 6,
                       0);
  assert_tensor_values(crl_cumprod(m, 1, true), (double[]){6, 6, 3, 120, 30, 6},
                       6, 0);
  assert_tensor_values(crl_cumprod(m, 0, false), (double[]){1, 2, 3, 4, 10, 18},
                       6, 0);
  /* strided input: the transpose [3, 2] */
  crl_tensor *t = crl_transpose(m, 0, 1);
  assert_tensor_values(crl_cumsum(t, 0, false), (double[]){1, 4, 3, 9, 6, 15},
                       6, 0);
  assert_tensor_values(crl_cumprod(t, 1, true), (double[]){4, 4, 10, 5, 18, 6},
                       6, 0);
  /* middle dim of a 3-d tensor */
  crl_tensor *x =
      crl_reshape(crl_arange(CRL_FLOAT64, 0, 12, 1), CRL_SHAPE(2, 3, 2));
  assert_tensor_values(crl_cumsum(x, 1, false),
                       (double[]){0, 1, 2, 4, 6, 9, 6, 7, 14, 16, 24, 27}, 12,
                       0);
}

static void test_cum_dtypes_shapes(void **state) {
  (void)state;
  crl_tensor *i = crl_from_array(CRL_INT32, CRL_SHAPE(3),
                                 (const int32_t[]){2000000000, 2000000000, -5});
  crl_tensor *c = crl_cumsum(i, 0, false);
  assert_int_equal(c->dtype, CRL_INT64);
  assert_tensor_values(c, (double[]){2e9, 4e9, 4e9 - 5}, 3, 0);
  crl_tensor *p = crl_cumprod(i, 0, true);
  assert_int_equal(p->dtype, CRL_INT64);
  ASSERT_NEAR(crl_tensor_get_flat(p, 1), -1e10, 0);
  crl_tensor *b =
      crl_from_array(CRL_BOOL, CRL_SHAPE(4), (const uint8_t[]){1, 0, 1, 1});
  crl_tensor *cb = crl_cumsum(b, 0, false);
  assert_int_equal(cb->dtype, CRL_INT64);
  assert_tensor_values(cb, (double[]){1, 1, 2, 3}, 4, 0);
  crl_tensor *d = crl_cumprod(crl_scalar(CRL_FLOAT64, 3), 0, false);
  CRL_CHECK_PTR(d);
  assert_int_equal(d->ndim, 0);
  ASSERT_NEAR(crl_item(d), 3, 0);
  crl_tensor *e = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 4));
  assert_shape(crl_cumsum(e, 0, false), CRL_SHAPE(0, 4));
  assert_shape(crl_cumprod(e, 1, true), CRL_SHAPE(0, 4));
}

static void test_cum_errors(void **state) {
  (void)state;
  crl_tensor *a = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  assert_null(crl_cumsum(a, 2, false));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("cumsum");
  CRL_ASSERT_ERR_HAS("dim 2");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_null(crl_cumprod(a, -3, true));
  CRL_ASSERT_ERR_HAS("cumprod");
  assert_null(crl_cumsum(NULL, 0, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_tensor_values(a, (double[]){1, 1, 1, 1, 1, 1}, 6, 0);
}

static void test_cum_accuracy_threads(void **state) {
  (void)state;
  /* float32 accumulates in double: the running sum of 1M 0.1f stays within
   * one float32 rounding of the exact value */
  int64_t n = 1000000;
  crl_tensor *a = crl_full(CRL_FLOAT32, CRL_SHAPE(n), 0.1);
  crl_tensor *c = crl_cumsum(a, 0, false);
  double exact = (double)n * (double)0.1f;
  ASSERT_NEAR(crl_tensor_get_flat(c, n - 1), exact, exact * 6e-8);
  crl_rng g;
  crl_rng_seed(&g, 9);
  crl_tensor *r = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(500, 400));
  int prev = crl_get_num_threads();
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 2; k++) {
      crl_set_num_threads(1);
      crl_tensor *x1 = k ? crl_cumprod(r, d, d) : crl_cumsum(r, d, !d);
      crl_set_num_threads(2);
      crl_tensor *x2 = k ? crl_cumprod(r, d, d) : crl_cumsum(r, d, !d);
      CRL_CHECK_PTR(x1);
      CRL_CHECK_PTR(x2);
      assert_memory_equal(x1->data, x2->data, (size_t)x1->numel * 4);
    }
  crl_set_num_threads(prev);
}

typedef struct {
  int dim;
  bool rev, prod;
} cctx;

static crl_tensor *cfn(crl_tensor **in, void *vc) {
  const cctx *c = vc;
  return c->prod ? crl_cumprod(in[0], c->dim, c->rev)
                 : crl_cumsum(in[0], c->dim, c->rev);
}

static void test_cum_grads(void **state) {
  (void)state;
  crl_tensor *x = randn_leaf64(4, CRL_SHAPE(3, 4, 5));
  for (int d = -1; d < 3; d++)
    for (int rev = 0; rev < 2; rev++)
      for (int pr = 0; pr < 2; pr++) {
        cctx c = {d, rev, pr};
        if (crl_gradcheck(cfn, &x, 1, &c, GC_TOL))
          fail_msg("dim %d rev %d prod %d: %s", d, rev, pr, crl_last_error());
      }
  /* cumprod with zeros: exact products, no division */
  crl_tensor *z = leaf64(CRL_SHAPE(3), (double[]){2, 0, 3});
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_cumprod(z, 0, false), 0, NULL, false), NULL));
  assert_tensor_values(z->grad, (double[]){1, 8, 0}, 3, 0);
  crl_zero_grad(z);
  /* reversed: y = [0, 0, 3]; d/dx0 = 0, d/dx1 = x0 x2 + x2 = 9, d/dx2 = 1 */
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_cumprod(z, 0, true), 0, NULL, false), NULL));
  assert_tensor_values(z->grad, (double[]){0, 9, 1}, 3, 0);
  crl_tensor *zz =
      leaf64(CRL_SHAPE(2, 4), (double[]){0, 1.5, 0, 2, 1, -2, 0.5, 0});
  for (int rev = 0; rev < 2; rev++)
    for (int d = 0; d < 2; d++) {
      cctx c = {d, rev, true};
      if (crl_gradcheck(cfn, &zz, 1, &c, GC_TOL))
        fail_msg("zeros dim %d rev %d: %s", d, rev, crl_last_error());
    }
  /* cumsum backward: reversed cumsum of the gradient */
  crl_tensor *s = leaf64(CRL_SHAPE(3), (double[]){1, 1, 1});
  crl_tensor *g =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (const double[]){1, 2, 3});
  CRL_CHECK_OK(crl_backward(crl_cumsum(s, 0, false), g));
  assert_tensor_values(s->grad, (double[]){6, 5, 3}, 3, 0);
  /* float32 */
  crl_tensor *f = crl_ones(CRL_FLOAT32, CRL_SHAPE(3));
  CRL_CHECK_OK(crl_set_requires_grad(f, true));
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_cumprod(f, 0, false), 0, NULL, false), NULL));
  assert_int_equal(f->grad->dtype, CRL_FLOAT32);
  assert_tensor_values(f->grad, (double[]){3, 2, 1}, 3, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_cum_values), CRL_TEST(test_cum_dtypes_shapes),
      CRL_TEST(test_cum_errors), CRL_TEST(test_cum_accuracy_threads),
      CRL_TEST(test_cum_grads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
