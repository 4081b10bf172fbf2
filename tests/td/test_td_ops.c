/* Whole-TensorDict operations (src/td/td_ops.c). */
#include <stdlib.h>

#include "td_test_util.h"

/* batch [2]: obs [2,3] f32 (0..5), action [2] i64 (10,11),
 * next/obs [2,3] f32 (20..25), next/reward [2,1] f64 (30,31) */
static crl_td *fixture(void) {
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "obs", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), 0)));
  CRL_CHECK_OK(crl_td_set(td, "action", seq(CRL_INT64, CRL_SHAPE(2), 10)));
  CRL_CHECK_OK(
      crl_td_set(td, "next/obs", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), 20)));
  CRL_CHECK_OK(
      crl_td_set(td, "next/reward", seq(CRL_FLOAT64, CRL_SHAPE(2, 1), 30)));
  return td;
}

static void test_clone(void **state) {
  (void)state;
  crl_td *td = fixture();
  crl_td *c = crl_td_clone(td);
  CRL_CHECK_PTR(c);
  td_keys_are(c, true, false, "obs,action,next,next/obs,next/reward");
  assert_true(crl_td_equal(td, c));
  assert_ptr_not_equal(crl_td_get(c, "next/obs")->storage,
                       crl_td_get(td, "next/obs")->storage);
  assert_ptr_not_equal(crl_td_get_td(c, "next"), crl_td_get_td(td, "next"));
  assert_int_equal(crl_td_get(c, "action")->dtype, CRL_INT64);
  crl_tensor_set_flat(crl_td_get(c, "next/obs"), 0, 99);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "next/obs"), 0), 20, 0);
  assert_false(crl_td_equal(td, c));
  /* clone of a non-contiguous leaf is contiguous with the same values */
  crl_td *t2 = crl_td_new(CRL_SHAPE(3));
  crl_tensor *base = seq(CRL_FLOAT32, CRL_SHAPE(4, 3), 0);
  CRL_CHECK_OK(crl_td_set(t2, "x", crl_transpose(base, 0, 1)));
  crl_td *c2 = crl_td_clone(t2);
  assert_true(crl_tensor_is_contiguous(crl_td_get(c2, "x")));
  assert_true(crl_td_equal(t2, c2));
  assert_null(crl_td_clone(NULL));
}

static void test_update(void **state) {
  (void)state;
  crl_td *dst = fixture();
  crl_td *src = crl_td_new(CRL_SHAPE(2));
  crl_tensor *a = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_tensor *r = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 1));
  crl_tensor *h = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 5));
  CRL_CHECK_OK(crl_td_set(src, "action", a));
  CRL_CHECK_OK(crl_td_set(src, "next/reward", r));
  CRL_CHECK_OK(crl_td_set(src, "next/done", a));
  CRL_CHECK_OK(crl_td_set(src, "hidden/h", h));
  crl_tensor *old_nobs = crl_td_get(dst, "next/obs");
  CRL_CHECK_OK(crl_td_update(dst, src));
  td_keys_are(dst, true, false,
              "obs,action,next,next/obs,next/reward,next/done,hidden,"
              "hidden/h");
  assert_ptr_equal(crl_td_get(dst, "action"), a); /* shared, replaced */
  assert_ptr_equal(crl_td_get(dst, "next/reward"), r);
  assert_ptr_equal(crl_td_get(dst, "next/obs"), old_nobs); /* merged */
  assert_ptr_equal(crl_td_get(dst, "hidden/h"), h);
  /* a nested TensorDict dst lacked is a new structure */
  assert_ptr_not_equal(crl_td_get_td(dst, "hidden"),
                       crl_td_get_td(src, "hidden"));
  /* errors leave dst unchanged */
  crl_td *bad = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set(bad, "zzz", a));
  CRL_CHECK_OK(crl_td_set(bad, "www", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  assert_int_equal(crl_td_update(dst, bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'www'");
  CRL_ASSERT_ERR_HAS("[3]");
  CRL_ASSERT_ERR_HAS("[2]");
  assert_false(crl_td_contains(dst, "zzz"));
  crl_td *kind = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(kind, "aaa", a));
  CRL_CHECK_OK(crl_td_set(kind, "next", a));
  assert_int_equal(crl_td_update(dst, kind), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'next'");
  assert_false(crl_td_contains(dst, "aaa"));
  crl_td *kind2 = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(kind2, "obs/x", a));
  assert_int_equal(crl_td_update(dst, kind2), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'obs'");
  /* update with itself is a no-op */
  CRL_CHECK_OK(crl_td_update(dst, dst));
  td_keys_are(dst, true, false,
              "obs,action,next,next/obs,next/reward,next/done,hidden,"
              "hidden/h");
}

static void test_copy_(void **state) {
  (void)state;
  crl_td *dst = fixture();
  crl_tensor *obs = crl_td_get(dst, "obs");
  void *data = obs->data;
  crl_td *src = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(src, "obs", seq(CRL_FLOAT64, CRL_SHAPE(2, 3), 100)));
  CRL_CHECK_OK(
      crl_td_set(src, "next/reward", crl_full(CRL_FLOAT32, CRL_SHAPE(2), 7)));
  /* next/reward [2,1] <- [2]? [2] broadcasts to [2,1] only if it fits:
   * trailing 2 vs 1 does not, so this is an error naming both shapes */
  unsigned v0 = obs->version;
  assert_int_equal(crl_td_copy_(dst, src), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'next/reward'");
  CRL_ASSERT_ERR_HAS("[2]");
  CRL_ASSERT_ERR_HAS("[2, 1]");
  /* nothing written, not even obs (validated first) */
  ASSERT_NEAR(crl_tensor_get_flat(obs, 0), 0, 0);
  assert_int_equal(obs->version, v0);
  CRL_CHECK_OK(crl_td_del(src, "next/reward"));
  CRL_CHECK_OK(crl_td_set(src, "next/reward",
                          crl_full(CRL_FLOAT32, CRL_SHAPE(2, 1), 7)));
  CRL_CHECK_OK(crl_td_set(src, "action", crl_full(CRL_INT64, CRL_SHAPE(2), 3)));
  CRL_CHECK_OK(crl_td_copy_(dst, src));
  assert_ptr_equal(crl_td_get(dst, "obs"), obs);
  assert_ptr_equal(obs->data, data);
  double w[6] = {100, 101, 102, 103, 104, 105};
  assert_tensor_values(obs, w, 6, 0);
  double r[2] = {7, 7};
  assert_tensor_values(crl_td_get(dst, "next/reward"), r, 2, 0);
  double a[2] = {3, 3};
  assert_tensor_values(crl_td_get(dst, "action"), a, 2, 0);
  assert_true(obs->version > v0);
  /* missing key: named, with the keys present */
  crl_td *m = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(m, "nope", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_int_equal(crl_td_copy_(dst, m), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'nope'");
  CRL_ASSERT_ERR_HAS("'next/obs'");
  /* a leaf requiring grad cannot be written */
  crl_td *g = crl_td_new(CRL_SHAPE(2));
  crl_tensor *p = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_set_requires_grad(p, true);
  CRL_CHECK_OK(crl_td_set(g, "p", p));
  crl_td *gs = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(gs, "p", crl_ones(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_int_equal(crl_td_copy_(g, gs), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("'p'");
}

static void test_copy_at_(void **state) {
  (void)state;
  crl_td *dst = fixture();
  crl_td *row = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set(row, "obs", crl_full(CRL_FLOAT32, CRL_SHAPE(3), -1)));
  CRL_CHECK_OK(
      crl_td_set(row, "next/reward", crl_full(CRL_FLOAT64, CRL_SHAPE(1), -2)));
  CRL_CHECK_OK(crl_td_copy_at_(dst, row, -1));
  double w[6] = {0, 1, 2, -1, -1, -1};
  assert_tensor_values(crl_td_get(dst, "obs"), w, 6, 0);
  double r[2] = {30, -2};
  assert_tensor_values(crl_td_get(dst, "next/reward"), r, 2, 0);
  assert_int_equal(crl_td_copy_at_(dst, row, 2), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 2");
  CRL_ASSERT_ERR_HAS("size 2");
  assert_int_equal(crl_td_copy_at_(dst, row, -3), CRL_EINDEX);
  /* shape error after a valid key: nothing written */
  crl_td *bad = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set(bad, "obs", crl_full(CRL_FLOAT32, CRL_SHAPE(3), 5)));
  CRL_CHECK_OK(crl_td_set(bad, "action", crl_zeros(CRL_INT64, CRL_SHAPE(2))));
  assert_int_equal(crl_td_copy_at_(dst, bad, 0), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'action'");
  assert_tensor_values(crl_td_get(dst, "obs"), w, 6, 0);
  crl_td *nob = crl_td_new(CRL_SCALAR);
  assert_int_equal(crl_td_copy_at_(nob, row, 0), CRL_ESHAPE);
}

static void test_select_exclude(void **state) {
  (void)state;
  crl_td *td = fixture();
  const char *k1[] = {"next/reward", "obs"};
  crl_td *s = crl_td_select(td, 2, k1);
  CRL_CHECK_PTR(s);
  td_keys_are(s, true, false, "obs,next,next/reward"); /* the input's order */
  assert_ptr_equal(crl_td_get(s, "obs"), crl_td_get(td, "obs"));
  assert_ptr_equal(crl_td_get(s, "next/reward"), crl_td_get(td, "next/reward"));
  assert_int_equal(crl_td_batch_size(crl_td_get_td(s, "next"))[0], 2);
  /* the key of a nested TensorDict keeps all its entries */
  const char *k2[] = {"next"};
  crl_td *s2 = crl_td_select(td, 1, k2);
  td_keys_are(s2, true, false, "next,next/obs,next/reward");
  /* changing the result's structure leaves the input alone */
  CRL_CHECK_OK(crl_td_del(s2, "next/obs"));
  assert_true(crl_td_contains(td, "next/obs"));
  /* writes through a selected tensor show in the input */
  crl_tensor_set_flat(crl_td_get(s, "obs"), 0, 42);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "obs"), 0), 42, 0);
  /* missing key */
  const char *k3[] = {"obs", "next/nope"};
  assert_null(crl_td_select(td, 2, k3));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'next/nope'");
  CRL_ASSERT_ERR_HAS("'next/reward'");
  /* exclude */
  const char *k4[] = {"next/obs", "action", "missing"};
  crl_td *e = crl_td_exclude(td, 3, k4);
  CRL_CHECK_PTR(e);
  td_keys_are(e, true, false, "obs,next,next/reward");
  assert_ptr_equal(crl_td_get(e, "next/reward"), crl_td_get(td, "next/reward"));
  const char *k5[] = {"next"};
  td_keys_are(crl_td_exclude(td, 1, k5), true, false, "obs,action");
  td_keys_are(crl_td_exclude(td, 0, NULL), true, false,
              "obs,action,next,next/obs,"
              "next/reward");
  td_keys_are(td, true, false, "obs,action,next,next/obs,next/reward");
}

static void test_rename(void **state) {
  (void)state;
  crl_td *td = fixture();
  crl_tensor *obs = crl_td_get(td, "obs");
  CRL_CHECK_OK(crl_td_rename(td, "obs", "observation"));
  td_keys_are(td, true, false, "action,next,next/obs,next/reward,observation");
  assert_ptr_equal(crl_td_get(td, "observation"), obs);
  CRL_CHECK_OK(crl_td_rename(td, "next/obs", "next/observation"));
  td_keys_are(td, true, false,
              "action,next,next/reward,next/observation,observation");
  CRL_CHECK_OK(crl_td_rename(td, "action", "agent/action"));
  td_keys_are(td, true, false,
              "next,next/reward,next/observation,observation,agent,"
              "agent/action");
  CRL_CHECK_OK(crl_td_rename(td, "next", "nxt"));
  td_keys_are(td, true, false,
              "observation,agent,agent/action,nxt,nxt/reward,"
              "nxt/observation");
  /* errors: missing, existing target, into itself, through a tensor */
  assert_int_equal(crl_td_rename(td, "nope", "x"), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'nope'");
  assert_int_equal(crl_td_rename(td, "observation", "nxt/reward"), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("exists");
  assert_int_equal(crl_td_rename(td, "nxt", "nxt/inner"), CRL_EKEY);
  assert_int_equal(crl_td_rename(td, "nxt/reward", "observation/r"), CRL_EKEY);
  td_keys_are(td, true, false,
              "observation,agent,agent/action,nxt,nxt/reward,"
              "nxt/observation");
  CRL_CHECK_OK(crl_td_rename(td, "observation", "observation"));
}

static crl_tensor *times2(crl_tensor *t, void *ctx) {
  int *calls = ctx;
  (*calls)++;
  return crl_mul_scalar(t, 2);
}

static crl_tensor *fail_on_int(crl_tensor *t, void *ctx) {
  (void)ctx;
  if (t->dtype == CRL_INT64) {
    crl_error(CRL_EDTYPE, "no ints here");
    return NULL;
  }
  return crl_clone(t);
}

static crl_tensor *sum_all(crl_tensor *t, void *ctx) {
  (void)ctx;
  return crl_sum(t, 0, NULL, false);
}

static void test_apply(void **state) {
  (void)state;
  crl_td *td = fixture();
  int calls = 0;
  crl_td *r = crl_td_apply(td, times2, &calls);
  CRL_CHECK_PTR(r);
  assert_int_equal(calls, 4);
  td_keys_are(r, true, false, "obs,action,next,next/obs,next/reward");
  double w[6] = {40, 42, 44, 46, 48, 50};
  assert_tensor_values(crl_td_get(r, "next/obs"), w, 6, 0);
  assert_null(crl_td_apply(td, fail_on_int, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("'action'");
  CRL_ASSERT_ERR_HAS("no ints here");
  assert_null(crl_td_apply(td, sum_all, NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'obs'");
  /* apply on a batch-[] TensorDict may change shapes freely */
  crl_td *s = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set(s, "x", seq(CRL_FLOAT32, CRL_SHAPE(3), 1)));
  crl_td *rs = crl_td_apply(s, sum_all, NULL);
  ASSERT_NEAR(crl_item(crl_td_get(rs, "x")), 6, 0);
}

static void test_to_dtype_device(void **state) {
  (void)state;
  crl_td *td = fixture();
  crl_td *a = crl_td_to_dtype(td, CRL_FLOAT64, false);
  CRL_CHECK_PTR(a);
  assert_int_equal(crl_td_get(a, "obs")->dtype, CRL_FLOAT64);
  assert_int_equal(crl_td_get(a, "action")->dtype, CRL_FLOAT64);
  assert_int_equal(crl_td_get(a, "next/obs")->dtype, CRL_FLOAT64);
  double w[2] = {10, 11};
  assert_tensor_values(crl_td_get(a, "action"), w, 2, 0);
  crl_td *f = crl_td_to_dtype(td, CRL_FLOAT64, true);
  assert_int_equal(crl_td_get(f, "obs")->dtype, CRL_FLOAT64);
  assert_ptr_equal(crl_td_get(f, "action"), crl_td_get(td, "action"));
  assert_null(crl_td_to_dtype(td, (crl_dtype)99, false));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  crl_td *c = crl_td_to_device(td, CRL_DEVICE_CPU);
  assert_true(crl_td_equal(c, td));
  assert_ptr_not_equal(crl_td_get(c, "obs")->storage,
                       crl_td_get(td, "obs")->storage);
  assert_null(crl_td_to_device(td, (crl_device){CRL_CUDA, 0}));
  assert_int_equal(crl_last_error_code(), CRL_EUNSUPPORTED);
  CRL_ASSERT_ERR_HAS("cuda");
}

static void test_zero_fill(void **state) {
  (void)state;
  crl_td *td = fixture();
  CRL_CHECK_OK(crl_td_fill_(td, "obs", 2.5));
  double w[6] = {2.5, 2.5, 2.5, 2.5, 2.5, 2.5};
  assert_tensor_values(crl_td_get(td, "obs"), w, 6, 0);
  CRL_CHECK_OK(crl_td_fill_(td, "next", -1));
  double m[6] = {-1, -1, -1, -1, -1, -1};
  assert_tensor_values(crl_td_get(td, "next/obs"), m, 6, 0);
  assert_tensor_values(crl_td_get(td, "next/reward"), m, 2, 0);
  double a[2] = {10, 11};
  assert_tensor_values(crl_td_get(td, "action"), a, 2, 0);
  assert_int_equal(crl_td_fill_(td, "nope", 1), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'nope'");
  CRL_CHECK_OK(crl_td_zero_(td));
  double z[6] = {0};
  assert_tensor_values(crl_td_get(td, "obs"), z, 6, 0);
  assert_tensor_values(crl_td_get(td, "action"), z, 2, 0);
  assert_tensor_values(crl_td_get(td, "next/reward"), z, 2, 0);
  /* a leaf requiring grad: error, nothing zeroed */
  crl_td *g = fixture();
  crl_tensor *p = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_set_requires_grad(p, true);
  CRL_CHECK_OK(crl_td_set(g, "next/p", p));
  assert_int_equal(crl_td_zero_(g), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("'next/p'");
  assert_tensor_values(crl_td_get(g, "action"), a, 2, 0);
  bool prev = crl_set_grad_enabled(false);
  CRL_CHECK_OK(crl_td_zero_(g));
  crl_set_grad_enabled(prev);
  assert_tensor_values(p, z, 2, 0);
}

static void test_equal_allclose(void **state) {
  (void)state;
  crl_td *a = fixture();
  /* same keys in another order, other storage */
  crl_td *b = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(
      crl_td_set(b, "next/reward", seq(CRL_FLOAT64, CRL_SHAPE(2, 1), 30)));
  CRL_CHECK_OK(
      crl_td_set(b, "next/obs", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), 20)));
  CRL_CHECK_OK(crl_td_set(b, "action", seq(CRL_INT64, CRL_SHAPE(2), 10)));
  CRL_CHECK_OK(crl_td_set(b, "obs", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), 0)));
  assert_true(crl_td_equal(a, b));
  assert_true(crl_td_equal(b, a));
  assert_true(crl_td_allclose(a, b, 0, 0));
  crl_tensor_set_flat(crl_td_get(b, "next/obs"), 5, 25 + 1e-6);
  assert_false(crl_td_equal(a, b));
  assert_true(crl_td_allclose(a, b, 1e-5, 1e-5));
  assert_false(crl_td_allclose(a, b, 0, 1e-9));
  crl_tensor_set_flat(crl_td_get(b, "next/obs"), 5, 25);
  /* an extra key, a missing key, a kind change, a shape change */
  CRL_CHECK_OK(crl_td_set(b, "extra", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_false(crl_td_equal(a, b));
  assert_false(crl_td_equal(b, a));
  CRL_CHECK_OK(crl_td_del(b, "extra"));
  assert_true(crl_td_equal(a, b));
  CRL_CHECK_OK(crl_td_del(b, "next/reward"));
  assert_false(crl_td_equal(a, b));
  CRL_CHECK_OK(
      crl_td_set(b, "next/reward", seq(CRL_FLOAT64, CRL_SHAPE(2), 30)));
  assert_false(crl_td_equal(a, b));
  assert_false(crl_td_allclose(a, b, 1, 1));
  crl_td *c = crl_td_new(CRL_SCALAR);
  crl_td *d = crl_td_new(CRL_SHAPE(1));
  assert_false(crl_td_equal(c, d));
  assert_true(crl_td_equal(c, crl_td_new(CRL_SCALAR)));
  assert_false(crl_td_equal(NULL, c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_clone),          CRL_TEST(test_update),
      CRL_TEST(test_copy_),          CRL_TEST(test_copy_at_),
      CRL_TEST(test_select_exclude), CRL_TEST(test_rename),
      CRL_TEST(test_apply),          CRL_TEST(test_to_dtype_device),
      CRL_TEST(test_zero_fill),      CRL_TEST(test_equal_allclose),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
