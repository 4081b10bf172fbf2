/* cat, stack, split, chunk, unbind: values, strided/expanded inputs, views,
 * errors, gradients. */
#include "test_util.h"

#define GC_EPS 1e-6, 1e-6, 1e-4

static crl_tensor *ar2(int64_t r, int64_t c, double start) {
  return crl_view(crl_arange(CRL_FLOAT32, start, start + r * c, 1),
                  CRL_SHAPE(r, c));
}

static void test_cat_values(void **state) {
  (void)state;
  crl_tensor *a = ar2(2, 3, 0), *b = ar2(1, 3, 10);
  crl_tensor *c = crl_cat(2, (crl_tensor *[]){a, b}, 0);
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(3, 3));
  assert_tensor_values(c, (double[]){0, 1, 2, 3, 4, 5, 10, 11, 12}, 9, 0);
  crl_tensor *d = ar2(2, 1, 20);
  crl_tensor *e = crl_cat(3, (crl_tensor *[]){d, a, d}, -1);
  CRL_CHECK_PTR(e);
  assert_shape(e, CRL_SHAPE(2, 5));
  assert_tensor_values(e, (double[]){20, 0, 1, 2, 20, 21, 3, 4, 5, 21}, 10, 0);
  /* one tensor: a copy */
  crl_tensor *one = crl_cat(1, &a, 0);
  assert_true(crl_equal(one, a));
  assert_ptr_not_equal(one->storage, a->storage);
  /* empty pieces */
  crl_tensor *z = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 3));
  crl_tensor *f = crl_cat(3, (crl_tensor *[]){z, b, z}, 0);
  assert_tensor_values(f, (double[]){10, 11, 12}, 3, 0);
  /* int64 and bool */
  crl_tensor *i1 = crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){1, 2});
  crl_tensor *i2 = crl_from_array(CRL_INT64, CRL_SHAPE(1), (int64_t[]){-3});
  assert_tensor_values(crl_cat(2, (crl_tensor *[]){i2, i1}, 0),
                       (double[]){-3, 1, 2}, 3, 0);
  crl_tensor *bo = crl_from_array(CRL_BOOL, CRL_SHAPE(2, 1), (uint8_t[]){1, 0});
  assert_tensor_values(crl_cat(2, (crl_tensor *[]){bo, bo}, 1),
                       (double[]){1, 1, 0, 0}, 4, 0);
}

static void test_cat_strided(void **state) {
  (void)state;
  crl_tensor *a = ar2(2, 3, 0);
  crl_tensor *t = crl_transpose(a, 0, 1); /* [3, 2] strided */
  crl_tensor *x =
      crl_expand(crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 2), (float[]){7, 8}),
                 CRL_SHAPE(2, 2)); /* stride 0 */
  crl_tensor *c = crl_cat(2, (crl_tensor *[]){t, x}, 0);
  CRL_CHECK_PTR(c);
  assert_tensor_values(c, (double[]){0, 3, 1, 4, 2, 5, 7, 8, 7, 8}, 10, 0);
  crl_tensor *c1 = crl_cat(2, (crl_tensor *[]){x, crl_slice(t, 0, 0, 2, 1)}, 1);
  assert_tensor_values(c1, (double[]){7, 8, 0, 3, 7, 8, 1, 4}, 8, 0);
  /* 3-D cat in the middle dim */
  crl_tensor *p =
      crl_view(crl_arange(CRL_FLOAT64, 0, 8, 1), CRL_SHAPE(2, 2, 2));
  crl_tensor *q = crl_permute(p, 3, (int[]){0, 2, 1});
  crl_tensor *r = crl_cat(2, (crl_tensor *[]){p, q}, 1);
  assert_shape(r, CRL_SHAPE(2, 4, 2));
  assert_tensor_values(
      r, (double[]){0, 1, 2, 3, 0, 2, 1, 3, 4, 5, 6, 7, 4, 6, 5, 7}, 16, 0);
}

static void test_cat_errors(void **state) {
  (void)state;
  crl_tensor *a = ar2(2, 3, 0), *b = ar2(2, 4, 0);
  assert_null(crl_cat(2, (crl_tensor *[]){a, b}, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("tensor 1");
  CRL_ASSERT_ERR_HAS("[2, 4]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_non_null(crl_cat(2, (crl_tensor *[]){a, b}, 1));
  crl_tensor *d = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 3));
  assert_null(crl_cat(3, (crl_tensor *[]){a, a, d}, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("tensor 2");
  CRL_ASSERT_ERR_HAS("float64");
  CRL_ASSERT_ERR_HAS("float32");
  crl_tensor *v = crl_zeros(CRL_FLOAT32, CRL_SHAPE(6));
  assert_null(crl_cat(2, (crl_tensor *[]){a, v}, 0));
  CRL_ASSERT_ERR_HAS("[6]");
  assert_null(crl_cat(2, (crl_tensor *[]){a, NULL}, 0));
  CRL_ASSERT_ERR_HAS("tensor 1 is NULL");
  assert_null(crl_cat(0, NULL, 0));
  assert_null(crl_cat(2, (crl_tensor *[]){a, a}, 2));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  crl_tensor *s = crl_scalar(CRL_FLOAT32, 1);
  assert_null(crl_cat(2, (crl_tensor *[]){s, s}, 0));
  CRL_ASSERT_ERR_HAS("0-dim");
}

static void test_stack(void **state) {
  (void)state;
  crl_tensor *a = ar2(2, 2, 0), *b = ar2(2, 2, 10);
  crl_tensor *s0 = crl_stack(2, (crl_tensor *[]){a, b}, 0);
  assert_shape(s0, CRL_SHAPE(2, 2, 2));
  assert_tensor_values(s0, (double[]){0, 1, 2, 3, 10, 11, 12, 13}, 8, 0);
  crl_tensor *s1 = crl_stack(2, (crl_tensor *[]){a, b}, 1);
  assert_shape(s1, CRL_SHAPE(2, 2, 2));
  assert_tensor_values(s1, (double[]){0, 1, 10, 11, 2, 3, 12, 13}, 8, 0);
  crl_tensor *s2 = crl_stack(2, (crl_tensor *[]){a, b}, -1);
  assert_tensor_values(s2, (double[]){0, 10, 1, 11, 2, 12, 3, 13}, 8, 0);
  /* strided and expanded inputs */
  crl_tensor *t = crl_transpose(a, 0, 1);
  crl_tensor *e = crl_expand(crl_scalar(CRL_FLOAT32, 9), CRL_SHAPE(2, 2));
  crl_tensor *s3 = crl_stack(3, (crl_tensor *[]){t, e, a}, 1);
  assert_shape(s3, CRL_SHAPE(2, 3, 2));
  assert_tensor_values(s3, (double[]){0, 2, 9, 9, 0, 1, 1, 3, 9, 9, 2, 3}, 12,
                       0);
  /* scalars stack into a vector; many inputs */
  crl_tensor *sc[40];
  for (int i = 0; i < 40; i++)
    sc[i] = crl_scalar(CRL_INT64, i * i);
  crl_tensor *v = crl_stack(40, sc, 0);
  assert_shape(v, CRL_SHAPE(40));
  ASSERT_NEAR(crl_tensor_get_flat(v, 39), 39 * 39, 0);
  /* errors */
  assert_null(crl_stack(2, (crl_tensor *[]){a, ar2(1, 4, 0)}, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[1, 4]");
  CRL_ASSERT_ERR_HAS("[2, 2]");
  assert_null(crl_stack(2, (crl_tensor *[]){a, crl_cast(b, CRL_INT32)}, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int32");
  assert_null(crl_stack(2, (crl_tensor *[]){a, b}, 3));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

static void test_split_chunk_unbind(void **state) {
  (void)state;
  crl_tensor *a = crl_arange(CRL_FLOAT32, 0, 5, 1);
  crl_tensor *p[8] = {NULL};
  assert_int_equal(crl_split(a, 2, 0, p, 8), 3);
  assert_tensor_values(p[0], (double[]){0, 1}, 2, 0);
  assert_tensor_values(p[2], (double[]){4}, 1, 0);
  assert_ptr_equal(p[1]->storage, a->storage); /* views */
  ASSERT_NEAR(*(float *)p[1]->data, 2, 0);
  assert_int_equal(crl_split(a, 7, 0, p, 8), 1);
  assert_int_equal(p[0]->numel, 5);
  /* too small an output array: error, nothing written */
  crl_tensor *q[2] = {NULL, NULL};
  assert_true(crl_split(a, 2, 0, q, 2) < 0);
  CRL_ASSERT_ERR_HAS("3 pieces");
  assert_null(q[0]);
  assert_true(crl_split(a, 0, 0, p, 8) < 0);
  assert_true(crl_split(a, 2, 1, p, 8) == CRL_EINDEX);
  /* chunk: 5 into 3 -> sizes 2, 2, 1; 6 into 4 -> 3 pieces of 2 */
  assert_int_equal(crl_chunk(a, 3, 0, p, 8), 3);
  assert_int_equal(p[2]->numel, 1);
  crl_tensor *b = crl_view(crl_arange(CRL_FLOAT32, 0, 12, 1), CRL_SHAPE(2, 6));
  assert_int_equal(crl_chunk(b, 4, 1, p, 8), 3);
  assert_shape(p[1], CRL_SHAPE(2, 2));
  assert_tensor_values(p[1], (double[]){2, 3, 8, 9}, 4, 0);
  assert_true(crl_chunk(b, 0, 1, p, 8) < 0);
  crl_tensor *z = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 2));
  assert_int_equal(crl_chunk(z, 3, 0, p, 8), 3);
  assert_int_equal(p[2]->numel, 0);
  /* unbind */
  assert_int_equal(crl_unbind(b, 1, p, 8), 6);
  assert_shape(p[4], CRL_SHAPE(2));
  assert_tensor_values(p[4], (double[]){4, 10}, 2, 0);
  assert_int_equal(crl_unbind(b, 0, p, 8), 2);
  assert_tensor_values(p[1], (double[]){6, 7, 8, 9, 10, 11}, 6, 0);
  assert_true(crl_unbind(b, 1, p, 3) < 0);
  CRL_ASSERT_ERR_HAS("6 pieces");
  assert_int_equal(crl_unbind(z, 0, p, 0), 0);
  /* pieces of an expanded tensor */
  crl_tensor *e = crl_expand(crl_arange(CRL_FLOAT32, 0, 3, 1), CRL_SHAPE(4, 3));
  assert_int_equal(crl_split(e, 3, 0, p, 8), 2);
  assert_tensor_values(p[1], (double[]){0, 1, 2}, 3, 0);
}

/* ---- gradients ----------------------------------------------------------- */

static crl_tensor *f_cat(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *t = crl_transpose(x[1], 0, 1); /* [3, 2] */
  return crl_cat(3, (crl_tensor *[]){x[0], t, x[0]}, 1);
}
static crl_tensor *f_cat0(crl_tensor **x, void *c) {
  (void)c;
  return crl_cat(2, (crl_tensor *[]){x[0], crl_transpose(x[1], 0, 1)}, 0);
}
static crl_tensor *f_stack(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *t = crl_transpose(x[1], 0, 1);
  return crl_stack(3, (crl_tensor *[]){x[0], crl_mul(t, t), x[0]}, 1);
}
static crl_tensor *f_split(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *p[4];
  if (crl_split(x[0], 2, 1, p, 4) != 2) return NULL;
  /* only pieces 1 and 0, reversed: an unused range gets no gradient */
  return crl_cat(2, (crl_tensor *[]){p[1], crl_slice(p[0], 1, 1, 2, 1)}, 1);
}
static crl_tensor *f_chunk_unbind(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *p[4], *u[4];
  if (crl_chunk(x[0], 2, 0, p, 4) != 2) return NULL;
  if (crl_unbind(x[1], 1, u, 4) != 2) return NULL;
  return crl_stack(
      3, (crl_tensor *[]){u[1], crl_sum(p[1], 1, (int[]){0}, false), u[1]}, 0);
}

static void test_gradcheck(void **state) {
  (void)state;
  crl_tensor *x[2] = {randn_leaf64(1, CRL_SHAPE(3, 4)),
                      randn_leaf64(2, CRL_SHAPE(2, 3))};
  CRL_CHECK_OK(crl_gradcheck(f_cat, x, 2, NULL, GC_EPS));
  crl_tensor *y[2] = {randn_leaf64(3, CRL_SHAPE(1, 2)),
                      randn_leaf64(4, CRL_SHAPE(2, 3))};
  CRL_CHECK_OK(crl_gradcheck(f_cat0, y, 2, NULL, GC_EPS));
  crl_tensor *z[2] = {randn_leaf64(5, CRL_SHAPE(3, 2)),
                      randn_leaf64(6, CRL_SHAPE(2, 3))};
  CRL_CHECK_OK(crl_gradcheck(f_stack, z, 2, NULL, GC_EPS));
  CRL_CHECK_OK(crl_gradcheck(f_split, x, 1, NULL, GC_EPS));
  crl_tensor *w[2] = {randn_leaf64(7, CRL_SHAPE(4, 3)),
                      randn_leaf64(8, CRL_SHAPE(3, 2))};
  CRL_CHECK_OK(crl_gradcheck(f_chunk_unbind, w, 2, NULL, GC_EPS));
  /* an input that does not require grad gets none */
  crl_tensor *k = crl_ones(CRL_FLOAT64, CRL_SHAPE(3, 4));
  crl_tensor *s =
      crl_sum(crl_cat(2, (crl_tensor *[]){k, x[0]}, 0), 0, NULL, false);
  crl_zero_grad(x[0]);
  CRL_CHECK_OK(crl_backward(s, NULL));
  assert_null(k->grad);
  assert_tensor_values(x[0]->grad,
                       (double[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 12, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_cat_values),         CRL_TEST(test_cat_strided),
      CRL_TEST(test_cat_errors),         CRL_TEST(test_stack),
      CRL_TEST(test_split_chunk_unbind), CRL_TEST(test_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
