/* TensorDict core (src/td/td.c): set/get, nested keys, del, contains, key
 * order, errors, printing. */
#include <stdlib.h>

#include "td_test_util.h"

static void test_new_and_batch(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(4, 3));
  CRL_CHECK_PTR(td);
  assert_int_equal(crl_td_batch_ndim(td), 2);
  assert_int_equal(crl_td_batch_size(td)[0], 4);
  assert_int_equal(crl_td_batch_size(td)[1], 3);
  assert_int_equal(crl_td_device(td).type, CRL_CPU);
  assert_int_equal(crl_td_len(td), 0);
  crl_td *e = crl_td_new(CRL_SCALAR);
  CRL_CHECK_PTR(e);
  assert_int_equal(crl_td_batch_ndim(e), 0);
  assert_null(crl_td_new(CRL_SHAPE(-1)));
}

static void test_set_get(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(3));
  crl_tensor *a = seq(CRL_FLOAT32, CRL_SHAPE(3, 2), 0);
  crl_tensor *b = seq(CRL_INT64, CRL_SHAPE(3), 10);
  CRL_CHECK_OK(crl_td_set(td, "a", a));
  CRL_CHECK_OK(crl_td_set(td, "b", b));
  assert_ptr_equal(crl_td_get(td, "a"), a); /* stored, not copied */
  assert_ptr_equal(crl_td_get(td, "b"), b);
  assert_int_equal(a->refcount, 2); /* scope + TensorDict */
  assert_int_equal(crl_td_len(td), 2);
  /* replacing keeps the position */
  crl_tensor *a2 = seq(CRL_FLOAT32, CRL_SHAPE(3), 5);
  CRL_CHECK_OK(crl_td_set(td, "a", a2));
  assert_ptr_equal(crl_td_get(td, "a"), a2);
  assert_int_equal(a->refcount, 1);
  td_keys_are(td, false, false, "a,b");
  /* find does not set an error */
  crl_clear_error();
  assert_null(crl_td_find(td, "zz"));
  assert_int_equal(crl_last_error_code(), 0);
}

static void test_nested(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *o = seq(CRL_FLOAT32, CRL_SHAPE(2, 4), 0);
  crl_tensor *r = seq(CRL_FLOAT32, CRL_SHAPE(2), 0);
  crl_tensor *x = seq(CRL_FLOAT32, CRL_SHAPE(2), 0);
  CRL_CHECK_OK(crl_td_set(td, "obs", o));
  CRL_CHECK_OK(crl_td_set(td, "next/obs", o));
  CRL_CHECK_OK(crl_td_set(td, "next/reward", r));
  CRL_CHECK_OK(crl_td_set(td, "next/deep/x", x));
  assert_ptr_equal(crl_td_get(td, "next/obs"), o);
  assert_ptr_equal(crl_td_get(td, "next/deep/x"), x);
  crl_td *next = crl_td_get_td(td, "next");
  CRL_CHECK_PTR(next);
  assert_int_equal(crl_td_batch_ndim(next), 1);
  assert_int_equal(crl_td_batch_size(next)[0], 2);
  assert_ptr_equal(crl_td_get(next, "reward"), r);
  assert_true(crl_td_contains(td, "next"));
  assert_true(crl_td_contains(td, "next/deep"));
  assert_true(crl_td_contains(td, "next/deep/x"));
  assert_false(crl_td_contains(td, "next/deep/y"));
  assert_false(crl_td_contains(td, "obs/x"));
  td_keys_are(td, false, false, "obs,next");
  td_keys_are(td, true, false,
              "obs,next,next/obs,next/reward,next/deep,"
              "next/deep/x");
  td_keys_are(td, true, true, "obs,next/obs,next/reward,next/deep/x");
  /* key_at */
  crl_tensor *t;
  crl_td *sub;
  assert_string_equal(crl_td_key_at(td, 1, &t, &sub), "next");
  assert_null(t);
  assert_ptr_equal(sub, next);
  assert_null(crl_td_key_at(td, 2, &t, &sub));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  /* get on a nested TensorDict key */
  assert_null(crl_td_get(td, "next"));
  CRL_ASSERT_ERR_HAS("nested TensorDict");
  /* set_td with a sub of a longer batch */
  crl_td *s2 = crl_td_new(CRL_SHAPE(2, 5));
  CRL_CHECK_OK(crl_td_set_td(td, "agents", s2));
  assert_ptr_equal(crl_td_get_td(td, "agents"), s2);
  crl_td *bad = crl_td_new(CRL_SHAPE(3));
  assert_int_equal(crl_td_set_td(td, "bad", bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("bad");
  assert_int_equal(crl_td_set_td(td, "self", td), CRL_EINVAL);
}

/* nesting that would make a cycle is refused (directly or through a chain)
 * and leaves both TensorDicts unchanged */
static void test_nesting_cycle_refused(void **state) {
  (void)state;
  crl_td *a = crl_td_new(CRL_SHAPE(2)), *b = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set_td(a, "b", b));
  assert_int_equal(crl_td_set_td(b, "a", a), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("cycle");
  assert_int_equal(crl_td_len(b), 0);
  assert_int_equal(crl_td_set_td(a, "self", a), CRL_EINVAL);
  assert_int_equal(crl_td_len(a), 1);
  crl_td *c = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set_td(b, "c", c));
  assert_int_equal(crl_td_set_td(c, "x/a", a), CRL_EINVAL);
  assert_false(crl_td_contains(c, "x"));
}

static void test_nested_batch_checked(void **state) {
  (void)state;
  /* a value set under a nested TensorDict must fit that one's batch */
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_td *ag = crl_td_new(CRL_SHAPE(2, 3));
  CRL_CHECK_OK(crl_td_set_td(td, "agents", ag));
  crl_tensor *ok = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3, 4));
  crl_tensor *bad = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4));
  CRL_CHECK_OK(crl_td_set(td, "agents/obs", ok));
  assert_int_equal(crl_td_set(td, "agents/x", bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("agents/x");
  CRL_ASSERT_ERR_HAS("[2, 4]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_false(crl_td_contains(td, "agents/x"));
  /* a new intermediate takes the deepest existing batch */
  CRL_CHECK_OK(crl_td_set(td, "agents/more/y", ok));
  assert_int_equal(crl_td_batch_ndim(crl_td_get_td(td, "agents/more")), 2);
}

static void test_set_errors(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(3, 2));
  crl_tensor *good = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 2, 5));
  crl_tensor *bad = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *shortt = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3));
  CRL_CHECK_OK(crl_td_set(td, "obs", good));
  /* leading dims mismatch: key and both shapes */
  assert_int_equal(crl_td_set(td, "action", bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("td_set");
  CRL_ASSERT_ERR_HAS("'action'");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  CRL_ASSERT_ERR_HAS("[3, 2]");
  assert_int_equal(crl_td_set(td, "action", shortt), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3]");
  assert_false(crl_td_contains(td, "action"));
  /* setting through a tensor path */
  assert_int_equal(crl_td_set(td, "obs/x", good), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'obs' is a tensor");
  assert_ptr_equal(crl_td_get(td, "obs"), good);
  /* setting a tensor over a nested TensorDict */
  CRL_CHECK_OK(crl_td_set(td, "next/obs", good));
  assert_int_equal(crl_td_set(td, "next", good), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("nested TensorDict");
  crl_td *sub = crl_td_new(CRL_SHAPE(3, 2));
  assert_int_equal(crl_td_set_td(td, "obs", sub), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("holds a tensor");
  /* malformed keys */
  assert_int_equal(crl_td_set(td, "", good), CRL_EKEY);
  assert_int_equal(crl_td_set(td, "a//b", good), CRL_EKEY);
  assert_int_equal(crl_td_set(td, "/a", good), CRL_EKEY);
  assert_int_equal(crl_td_set(td, "a/", good), CRL_EKEY);
  assert_int_equal(crl_td_set(NULL, "a", good), CRL_EINVAL);
  td_keys_are(td, true, false, "obs,next,next/obs");
}

static void test_missing_key_lists_present(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "obs", t));
  CRL_CHECK_OK(crl_td_set(td, "next/reward", t));
  assert_null(crl_td_get(td, "action"));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'action' not found");
  CRL_ASSERT_ERR_HAS("'obs', 'next/reward'");
  assert_null(crl_td_get_td(td, "obs"));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  assert_int_equal(crl_td_del(td, "nope"), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'nope'");
  CRL_ASSERT_ERR_HAS("'obs'");
  crl_td *e = crl_td_new(CRL_SCALAR);
  assert_null(crl_td_get(e, "x"));
  CRL_ASSERT_ERR_HAS("none");
}

static void test_set_inplace(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  void *data = t->data;
  CRL_CHECK_OK(crl_td_set(td, "x", t));
  crl_tensor *v = seq(CRL_FLOAT64, CRL_SHAPE(2, 3), 1);
  CRL_CHECK_OK(crl_td_set_(td, "x", v));
  assert_ptr_equal(crl_td_get(td, "x")->data, data);
  double want[6] = {1, 2, 3, 4, 5, 6};
  assert_tensor_values(t, want, 6, 0);
  /* broadcast */
  crl_tensor *row = seq(CRL_FLOAT32, CRL_SHAPE(3), 7);
  CRL_CHECK_OK(crl_td_set_(td, "x", row));
  double want2[6] = {7, 8, 9, 7, 8, 9};
  assert_tensor_values(t, want2, 6, 0);
  crl_tensor *bad = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4));
  assert_int_equal(crl_td_set_(td, "x", bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'x'");
  CRL_ASSERT_ERR_HAS("[4]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_tensor_values(t, want2, 6, 0);
  assert_int_equal(crl_td_set_(td, "y", row), CRL_EKEY);
}

static void test_del(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "a", t));
  CRL_CHECK_OK(crl_td_set(td, "b", t));
  CRL_CHECK_OK(crl_td_set(td, "c", t));
  CRL_CHECK_OK(crl_td_set(td, "n/x", t));
  CRL_CHECK_OK(crl_td_set(td, "n/y", t));
  CRL_CHECK_OK(crl_td_del(td, "b"));
  td_keys_are(td, true, false, "a,c,n,n/x,n/y");
  CRL_CHECK_OK(crl_td_del(td, "n/x"));
  td_keys_are(td, true, false, "a,c,n,n/y");
  CRL_CHECK_OK(crl_td_del(td, "n"));
  td_keys_are(td, true, false, "a,c");
  CRL_CHECK_OK(crl_td_set(td, "b", t));
  td_keys_are(td, false, false, "a,c,b");
  assert_int_equal(t->refcount, 4); /* scope + a, c, b */
}

static void test_refcounts_without_scope(void **state) {
  (void)state;
  crl_scope_end(); /* run this one with no scope open */
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "a", t));
  CRL_CHECK_OK(crl_td_set(td, "n/b", t));
  crl_td *n = crl_td_retain(crl_td_get_td(td, "n"));
  crl_td_release(td);
  assert_ptr_equal(crl_td_get(n, "b"), t);
  assert_int_equal(t->refcount, 2);
  crl_td_release(n);
  assert_int_equal(t->refcount, 1);
  crl_tensor_release(t);
  crl_scope_begin();
}

static void test_print(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(crl_td_set(td, "obs", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 4))));
  CRL_CHECK_OK(crl_td_set(td, "next/done", crl_zeros(CRL_BOOL, CRL_SHAPE(3))));
  char buf[1024];
  int n = crl_td_to_string(td, buf, sizeof buf);
  const char *want =
      "TensorDict(\n"
      "    fields={\n"
      "        obs: Tensor(shape=[3, 4], device=cpu, dtype=float32, "
      "is_shared=False),\n"
      "        next: TensorDict(\n"
      "            fields={\n"
      "                done: Tensor(shape=[3], device=cpu, dtype=bool, "
      "is_shared=False),\n"
      "            },\n"
      "            batch_size=[3],\n"
      "            device=cpu),\n"
      "    },\n"
      "    batch_size=[3],\n"
      "    device=cpu)";
  assert_string_equal(buf, want);
  assert_int_equal(n, (int)strlen(want));
  /* truncation: returns the length needed, stays terminated */
  char small[16];
  assert_int_equal(crl_td_to_string(td, small, sizeof small), n);
  assert_int_equal(strlen(small), 15);
  assert_int_equal(crl_td_to_string(td, NULL, 0), n);
  /* print writes the same text plus a newline */
  FILE *f = tmpfile();
  CRL_CHECK_OK(crl_td_print(td, f));
  rewind(f);
  char rb[1024] = "";
  size_t got = fread(rb, 1, sizeof rb - 1, f);
  fclose(f);
  assert_int_equal(got, (size_t)n + 1);
  assert_memory_equal(rb, want, (size_t)n);
  assert_int_equal(rb[n], '\n');
  crl_td *empty = crl_td_new(CRL_SCALAR);
  crl_td_to_string(empty, buf, sizeof buf);
  assert_string_equal(buf, "TensorDict(\n    fields={\n    },\n    "
                           "batch_size=[],\n    device=cpu)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_new_and_batch),
      CRL_TEST(test_set_get),
      CRL_TEST(test_nested),
      CRL_TEST(test_nested_batch_checked),
      CRL_TEST(test_nesting_cycle_refused),
      CRL_TEST(test_set_errors),
      CRL_TEST(test_missing_key_lists_present),
      CRL_TEST(test_set_inplace),
      CRL_TEST(test_del),
      CRL_TEST(test_refcounts_without_scope),
      CRL_TEST(test_print),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
