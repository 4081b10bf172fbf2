/* Indexing TensorDicts over batch dims (src/td/td_index.c). */
#include <stdlib.h>

#include "td_test_util.h"

static crl_tensor *i64(int ndim, const int64_t *shape, const int64_t *v) {
  return crl_from_array(CRL_INT64, ndim, shape, v);
}

/* batch [4, 3]: a [4,3] f32 = 0..11, b [4,3,2] f64 = 100.., n/c [4,3,2] i64
 * = 1000.. with n of batch [4, 3, 2]. */
static crl_td *fixture(void) {
  crl_td *td = crl_td_new(CRL_SHAPE(4, 3));
  crl_td *n = crl_td_new(CRL_SHAPE(4, 3, 2));
  CRL_CHECK_OK(crl_td_set(td, "a", seq(CRL_FLOAT32, CRL_SHAPE(4, 3), 0)));
  CRL_CHECK_OK(crl_td_set(td, "b", seq(CRL_FLOAT64, CRL_SHAPE(4, 3, 2), 100)));
  CRL_CHECK_OK(crl_td_set(n, "c", seq(CRL_INT64, CRL_SHAPE(4, 3, 2), 1000)));
  CRL_CHECK_OK(crl_td_set_td(td, "n", n));
  return td;
}

static void test_index_int(void **state) {
  (void)state;
  crl_td *td = fixture();
  crl_td *r = crl_td_index(td, 2);
  CRL_CHECK_PTR(r);
  batch_is(r, CRL_SHAPE(3));
  batch_is(crl_td_get_td(r, "n"), CRL_SHAPE(3, 2));
  double a[3] = {6, 7, 8};
  assert_tensor_values(crl_td_get(r, "a"), a, 3, 0);
  assert_shape(crl_td_get(r, "n/c"), CRL_SHAPE(3, 2));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(r, "n/c"), 5), 1000 + 12 + 5, 0);
  shares(crl_td_get(r, "b"), crl_td_get(td, "b"), 1, 13);
  shares(crl_td_get(r, "n/c"), crl_td_get(td, "n/c"), 0, 12);
  crl_td *last = crl_td_index(td, -1);
  double a3[3] = {9, 10, 11};
  assert_tensor_values(crl_td_get(last, "a"), a3, 3, 0);
  /* index of an index */
  crl_td *rr = crl_td_index(r, 1);
  batch_is(rr, CRL_SCALAR);
  ASSERT_NEAR(crl_item(crl_td_get(rr, "a")), 7, 0);
  assert_null(crl_td_index(rr, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_td_index(td, 4));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_null(crl_td_index(td, -5));
  CRL_ASSERT_ERR_HAS("index -5");
}

static void test_slice(void **state) {
  (void)state;
  crl_td *td = fixture();
  crl_td *s = crl_td_slice(td, 0, 1, 3, 1);
  CRL_CHECK_PTR(s);
  batch_is(s, CRL_SHAPE(2, 3));
  batch_is(crl_td_get_td(s, "n"), CRL_SHAPE(2, 3, 2));
  double a[6] = {3, 4, 5, 6, 7, 8};
  assert_tensor_values(crl_td_get(s, "a"), a, 6, 0);
  shares(crl_td_get(s, "a"), crl_td_get(td, "a"), 5, 8);
  /* dim -1 with a step; negative start; clamped stop */
  crl_td *s2 = crl_td_slice(td, -1, -3, 100, 2);
  batch_is(s2, CRL_SHAPE(4, 2));
  double a2[8] = {0, 2, 3, 5, 6, -777, 9, 11};
  assert_tensor_values(crl_td_get(s2, "a"), a2, 8, 0);
  assert_shape(crl_td_get(s2, "n/c"), CRL_SHAPE(4, 2, 2));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(s2, "n/c"), 3), 1000 + 5, 0);
  shares(crl_td_get(s2, "n/c"), crl_td_get(td, "n/c"), 3, 5);
  /* empty */
  crl_td *e = crl_td_slice(td, 0, 3, 1, 1);
  batch_is(e, CRL_SHAPE(0, 3));
  assert_int_equal(crl_td_get(e, "b")->numel, 0);
  assert_null(crl_td_slice(td, 0, 0, 2, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_td_slice(td, 2, 0, 2, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

static void test_index_tensor(void **state) {
  (void)state;
  crl_td *td = fixture();
  int64_t iv[3] = {3, 0, -1};
  crl_tensor *idx = i64(CRL_SHAPE(3), iv);
  crl_td *r = crl_td_index_tensor(td, idx);
  CRL_CHECK_PTR(r);
  batch_is(r, CRL_SHAPE(3, 3));
  batch_is(crl_td_get_td(r, "n"), CRL_SHAPE(3, 3, 2));
  double a[9] = {9, 10, 11, 0, 1, 2, 9, 10, 11};
  assert_tensor_values(crl_td_get(r, "a"), a, 9, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(r, "n/c"), 6), 1000, 0);
  /* a copy */
  crl_tensor_set_flat(crl_td_get(r, "a"), 3, 55);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 0), 0, 0);
  /* 2-D index: batch idx.shape + batch[1:] */
  int64_t jv[4] = {1, 2, 2, 1};
  crl_td *r2 = crl_td_index_tensor(td, i64(CRL_SHAPE(2, 2), jv));
  batch_is(r2, CRL_SHAPE(2, 2, 3));
  assert_shape(crl_td_get(r2, "b"), CRL_SHAPE(2, 2, 3, 2));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(r2, "b"), 6), 100 + 12, 0);
  /* errors */
  int64_t bad[2] = {0, 4};
  assert_null(crl_td_index_tensor(td, i64(CRL_SHAPE(2), bad)));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  int64_t bad2[1] = {-5};
  assert_null(crl_td_index_tensor(td, i64(CRL_SHAPE(1), bad2)));
  CRL_ASSERT_ERR_HAS("index -5");
  assert_null(crl_td_index_tensor(td, crl_zeros(CRL_INT32, CRL_SHAPE(2))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_td_index_tensor(td, NULL));
  /* strided index */
  int64_t kv[4] = {3, 9, 1, 9};
  crl_tensor *k = i64(CRL_SHAPE(2, 2), kv);
  crl_td *r3 = crl_td_index_tensor(td, crl_select(k, 1, 0));
  CRL_CHECK_PTR(r3);
  double a3[6] = {9, 10, 11, 3, 4, 5};
  assert_tensor_values(crl_td_get(r3, "a"), a3, 6, 0);
}

static crl_tensor *index_fn(crl_tensor **in, void *ctx) {
  crl_td *td = crl_td_new(CRL_SHAPE(3));
  crl_td_set(td, "x", in[0]);
  crl_td *r = crl_td_index_tensor(td, ctx);
  crl_td *m = crl_td_index(r, 1);
  crl_td *s = crl_td_slice(r, 0, 0, 2, 1);
  return crl_add(crl_td_get(m, "x"), crl_td_get(s, "x"));
}

static void test_index_grad(void **state) {
  (void)state;
  int64_t iv[3] = {2, 0, 2};
  crl_tensor *idx = i64(CRL_SHAPE(3), iv);
  crl_tensor *in[1] = {randn_leaf64(3, CRL_SHAPE(3, 2))};
  CRL_CHECK_OK(crl_gradcheck(index_fn, in, 1, idx, 1e-6, 1e-6, 1e-4));
}

static void test_masked_select(void **state) {
  (void)state;
  crl_td *td = fixture();
  uint8_t mv[4] = {1, 0, 1, 1};
  crl_tensor *m = crl_from_array(CRL_BOOL, CRL_SHAPE(4), mv);
  crl_td *r = crl_td_masked_select(td, m);
  CRL_CHECK_PTR(r);
  batch_is(r, CRL_SHAPE(3, 3));
  batch_is(crl_td_get_td(r, "n"), CRL_SHAPE(3, 3, 2));
  double a[9] = {0, 1, 2, 6, 7, 8, 9, 10, 11};
  assert_tensor_values(crl_td_get(r, "a"), a, 9, 0);
  /* a mask over both batch dims */
  uint8_t mv2[12] = {0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0};
  crl_td *r2 =
      crl_td_masked_select(td, crl_from_array(CRL_BOOL, CRL_SHAPE(4, 3), mv2));
  CRL_CHECK_PTR(r2);
  batch_is(r2, CRL_SHAPE(3));
  batch_is(crl_td_get_td(r2, "n"), CRL_SHAPE(3, 2));
  double a2[3] = {1, 6, 8};
  assert_tensor_values(crl_td_get(r2, "a"), a2, 3, 0);
  double b2[6] = {102, 103, 112, 113, 116, 117};
  assert_tensor_values(crl_td_get(r2, "b"), b2, 6, 0);
  double c2[6] = {1002, 1003, 1012, 1013, 1016, 1017};
  assert_tensor_values(crl_td_get(r2, "n/c"), c2, 6, 0);
  /* mask over a permuted (strided) TensorDict */
  int perm[2] = {1, 0};
  crl_td *p = crl_td_permute(td, 2, perm);
  uint8_t mv3[3] = {0, 0, 1};
  crl_td *r3 =
      crl_td_masked_select(p, crl_from_array(CRL_BOOL, CRL_SHAPE(3), mv3));
  batch_is(r3, CRL_SHAPE(1, 4));
  double a3[4] = {2, 5, 8, 11};
  assert_tensor_values(crl_td_get(r3, "a"), a3, 4, 0);
  /* nothing selected */
  uint8_t none[4] = {0};
  crl_td *r4 =
      crl_td_masked_select(td, crl_from_array(CRL_BOOL, CRL_SHAPE(4), none));
  batch_is(r4, CRL_SHAPE(0, 3));
  /* errors */
  assert_null(crl_td_masked_select(td, crl_ones(CRL_BOOL, CRL_SHAPE(3))));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3]");
  CRL_ASSERT_ERR_HAS("[4, 3]");
  assert_null(crl_td_masked_select(td, crl_ones(CRL_BOOL, CRL_SHAPE(4, 3, 2))));
  assert_null(crl_td_masked_select(td, crl_ones(CRL_UINT8, CRL_SHAPE(4))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
}

static crl_td *source(int64_t rows, double v) {
  crl_td *s = crl_td_new(CRL_SHAPE(rows, 3));
  CRL_CHECK_OK(
      crl_td_set(s, "a", crl_full(CRL_FLOAT32, CRL_SHAPE(rows, 3), v)));
  CRL_CHECK_OK(
      crl_td_set(s, "n/c", crl_full(CRL_INT64, CRL_SHAPE(rows, 3, 2), v)));
  return s;
}

static void test_index_put_(void **state) {
  (void)state;
  crl_td *td = fixture();
  int64_t iv[2] = {3, -4};
  crl_tensor *idx = i64(CRL_SHAPE(2), iv);
  CRL_CHECK_OK(crl_td_index_put_(td, idx, source(2, -1)));
  double a[12] = {-1, -1, -1, 3, 4, 5, 6, 7, 8, -1, -1, -1};
  assert_tensor_values(crl_td_get(td, "a"), a, 12, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "n/c"), 18), -1, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "n/c"), 6), 1006, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "b"), 0), 100, 0);
  /* broadcast source: a row of batch [3] */
  crl_td *row = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(crl_td_set(row, "a", seq(CRL_FLOAT32, CRL_SHAPE(3), 50)));
  int64_t one[1] = {1};
  CRL_CHECK_OK(crl_td_index_put_(td, i64(CRL_SHAPE(1), one), row));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 5), 52, 0);
  /* out of range: nothing written */
  int64_t bad[2] = {0, 4};
  assert_int_equal(crl_td_index_put_(td, i64(CRL_SHAPE(2), bad), source(2, 9)),
                   CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 0), -1, 0);
  /* a shape error on a later key: nothing written */
  crl_td *s = source(2, 9);
  CRL_CHECK_OK(crl_td_del(s, "n/c"));
  CRL_CHECK_OK(crl_td_set(s, "n/c", crl_zeros(CRL_INT64, CRL_SHAPE(2, 3, 3))));
  int64_t ok2[2] = {0, 1};
  assert_int_equal(crl_td_index_put_(td, i64(CRL_SHAPE(2), ok2), s),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'n/c'");
  CRL_ASSERT_ERR_HAS("[2, 3, 3]");
  CRL_ASSERT_ERR_HAS("[2, 3, 2]");
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 0), -1, 0);
  /* a key the destination lacks */
  crl_td *m = crl_td_new(CRL_SHAPE(2, 3));
  CRL_CHECK_OK(crl_td_set(m, "a", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  CRL_CHECK_OK(crl_td_set(m, "zz", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  assert_int_equal(crl_td_index_put_(td, i64(CRL_SHAPE(2), ok2), m), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'zz'");
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 0), -1, 0);
  /* an expanded destination entry */
  crl_td *ex = crl_td_new(CRL_SHAPE(4));
  crl_tensor *one_row = crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 2));
  CRL_CHECK_OK(crl_td_set(ex, "e", crl_expand(one_row, CRL_SHAPE(4, 2))));
  crl_td *es = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(es, "e", crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 2))));
  assert_int_equal(crl_td_index_put_(ex, i64(CRL_SHAPE(2), ok2), es),
                   CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("'e'");
}

static void test_slice_put_(void **state) {
  (void)state;
  crl_td *td = fixture();
  CRL_CHECK_OK(crl_td_slice_put_(td, 0, 4, 2, source(2, -3)));
  double a[12] = {-3, -3, -3, 3, 4, 5, -3, -3, -3, 9, 10, 11};
  assert_tensor_values(crl_td_get(td, "a"), a, 12, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "n/c"), 12), -3, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "n/c"), 11), 1011, 0);
  crl_tensor *before = crl_clone(crl_td_get(td, "a"));
  /* wrong row count: the 2 selected rows cannot take 3 */
  assert_int_equal(crl_td_slice_put_(td, -2, 100, 1, source(3, 7)), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'a'");
  CRL_ASSERT_ERR_HAS("[3, 3]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_true(crl_equal(before, crl_td_get(td, "a")));
  CRL_CHECK_OK(crl_td_slice_put_(td, -2, 100, 1, source(2, 7)));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 11), 7, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "a"), 5), 5, 0);
  assert_int_equal(crl_td_slice_put_(td, 0, 1, 0, source(1, 0)), CRL_EINVAL);
  crl_td *nob = crl_td_new(CRL_SCALAR);
  assert_int_equal(crl_td_slice_put_(nob, 0, 1, 1, nob), CRL_ESHAPE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_index_int),     CRL_TEST(test_slice),
      CRL_TEST(test_index_tensor),  CRL_TEST(test_index_grad),
      CRL_TEST(test_masked_select), CRL_TEST(test_index_put_),
      CRL_TEST(test_slice_put_),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
