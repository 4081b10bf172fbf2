/* Composite specs (TorchRL's CompositeSpec): nested keys, rand_td /
 * zero_td, check_td, expand, equal, clone, print. */
#include "test_util.h"

/* observation [3] float in [-1, 1], nested "agent/pos" [2] unbounded and
 * "agent/id" discrete(4), all under a composite of `shape` */
static crl_spec *obs_spec(int nb, const int64_t *batch) {
  crl_spec *c = crl_spec_composite(nb, batch);
  int64_t s3[CRL_MAX_DIMS], s2[CRL_MAX_DIMS];
  for (int i = 0; i < nb; i++)
    s3[i] = s2[i] = batch[i];
  s3[nb] = 3;
  s2[nb] = 2;
  CRL_CHECK_OK(crl_spec_set(c, "observation",
                            crl_spec_bounded(CRL_FLOAT32, nb + 1, s3, -1, 1)));
  CRL_CHECK_OK(crl_spec_set(c, "agent/pos",
                            crl_spec_unbounded(CRL_FLOAT64, nb + 1, s2)));
  CRL_CHECK_OK(
      crl_spec_set(c, "agent/id", crl_spec_discrete(4, CRL_INT64, nb, batch)));
  return c;
}

static void assert_keys(const crl_spec *c, int n, const char *const *expect) {
  crl_td_keys k;
  CRL_CHECK_OK(crl_spec_keys(c, &k));
  assert_int_equal(k.n, n);
  for (int i = 0; i < n; i++)
    assert_string_equal(k.keys[i], expect[i]);
  crl_td_keys_free(&k);
}

static void test_set_get(void **state) {
  (void)state;
  crl_spec *c = obs_spec(0, NULL);
  assert_int_equal(crl_spec_kind_of(c), CRL_SPEC_COMPOSITE);
  assert_keys(c, 3, (const char *[]){"observation", "agent/pos", "agent/id"});
  crl_spec *pos = crl_spec_get(c, "agent/pos");
  CRL_CHECK_PTR(pos);
  assert_int_equal(crl_spec_kind_of(pos), CRL_SPEC_UNBOUNDED);
  crl_spec *agent = crl_spec_get(c, "agent");
  CRL_CHECK_PTR(agent);
  assert_int_equal(crl_spec_kind_of(agent), CRL_SPEC_COMPOSITE);
  assert_ptr_equal(crl_spec_get(agent, "id"), crl_spec_get(c, "agent/id"));
  assert_true(crl_spec_contains(c, "agent/id"));
  assert_true(crl_spec_contains(c, "agent"));
  assert_false(crl_spec_contains(c, "agent/vel"));
  assert_false(crl_spec_contains(c, "observation/x"));

  assert_null(crl_spec_get(c, "agent/vel"));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("spec_get: key 'agent/vel' not found; keys present: "
                     "'observation', 'agent/pos', 'agent/id'");
  assert_null(crl_spec_get(c, "a//b"));
  CRL_ASSERT_ERR_HAS("empty component");

  /* replace an entry */
  crl_spec *d6 = crl_spec_discrete(6, CRL_INT64, CRL_SCALAR);
  CRL_CHECK_OK(crl_spec_set(c, "agent/id", d6));
  assert_ptr_equal(crl_spec_get(c, "agent/id"), d6);
  assert_keys(c, 3, (const char *[]){"observation", "agent/pos", "agent/id"});

  /* del */
  CRL_CHECK_OK(crl_spec_del(c, "agent/pos"));
  assert_keys(c, 2, (const char *[]){"observation", "agent/id"});
  assert_int_equal(crl_spec_del(c, "agent/pos"), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("spec_del: key 'agent/pos' not found");
  CRL_CHECK_OK(crl_spec_del(c, "agent"));
  assert_keys(c, 1, (const char *[]){"observation"});

  /* a leaf is not a composite */
  crl_spec *leaf = crl_spec_get(c, "observation");
  assert_null(crl_spec_get(leaf, "x"));
  CRL_ASSERT_ERR_HAS("BoundedTensorSpec is not a CompositeSpec");
  crl_td_keys k;
  assert_int_equal(crl_spec_keys(leaf, &k), CRL_EINVAL);
  assert_int_equal(k.n, 0);
}

static void test_set_errors(void **state) {
  (void)state;
  crl_spec *c = crl_spec_composite(CRL_SHAPE(2));
  crl_spec *ok = crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(2, 3));
  CRL_CHECK_OK(crl_spec_set(c, "obs", ok));
  /* the child's shape must start with the composite's */
  crl_spec *bad = crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(3));
  assert_int_equal(crl_spec_set(c, "a/b/x", bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("spec_set: the spec for key 'a/b/x' has shape [3], which "
                     "does not start with the composite's shape [2]");
  assert_false(crl_spec_contains(c, "a")); /* no intermediate left behind */
  /* under a leaf */
  assert_int_equal(crl_spec_set(c, "obs/x", ok), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("cannot set 'obs/x': 'obs' is a leaf spec");
  assert_int_equal(crl_spec_set(c, "", ok), CRL_EKEY);
  assert_int_equal(crl_spec_set(c, "x/", ok), CRL_EKEY);
  assert_int_equal(crl_spec_set(c, "x", NULL), CRL_EINVAL);
  /* cycles */
  assert_int_equal(crl_spec_set(c, "self", c), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("contains the composite");
  crl_spec *inner = crl_spec_composite(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_spec_set(c, "inner", inner));
  assert_int_equal(crl_spec_set(inner, "up", c), CRL_EINVAL);
  assert_int_equal(crl_spec_set(c, "inner/deep/x", inner), CRL_EINVAL);
  assert_keys(c, 1, (const char *[]){"obs"}); /* "inner" has no leaves */
  /* a leaf as the composite */
  assert_int_equal(crl_spec_set(ok, "x", ok), CRL_EINVAL);
  /* a nested composite with a longer shape is fine, and its children must
   * start with its own shape */
  crl_spec *wide = crl_spec_composite(CRL_SHAPE(2, 5));
  CRL_CHECK_OK(crl_spec_set(c, "wide", wide));
  assert_int_equal(crl_spec_set(c, "wide/v", ok), CRL_ESHAPE);
  CRL_CHECK_OK(crl_spec_set(
      c, "wide/v", crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(2, 5, 1))));
  assert_int_equal(crl_spec_ndim(crl_spec_get(c, "wide/v")), 3);
}

static void test_rand_zero_td(void **state) {
  (void)state;
  crl_spec *c = obs_spec(1, (int64_t[]){4});
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_td *td = crl_spec_rand_td(c, &g, 1, (int64_t[]){2});
  CRL_CHECK_PTR(td);
  assert_int_equal(crl_td_batch_ndim(td), 2);
  assert_int_equal(crl_td_batch_size(td)[0], 2);
  assert_int_equal(crl_td_batch_size(td)[1], 4);
  crl_tensor *o = crl_td_get(td, "observation");
  CRL_CHECK_PTR(o);
  assert_shape(o, CRL_SHAPE(2, 4, 3));
  assert_true(crl_spec_is_in(crl_spec_get(c, "observation"), o));
  crl_tensor *id = crl_td_get(td, "agent/id");
  CRL_CHECK_PTR(id);
  assert_shape(id, CRL_SHAPE(2, 4));
  assert_int_equal(id->dtype, CRL_INT64);
  crl_td *agent = crl_td_get_td(td, "agent");
  CRL_CHECK_PTR(agent);
  assert_int_equal(crl_td_batch_ndim(agent), 2);
  CRL_CHECK_OK(crl_spec_check_td(c, td));

  /* reproducible from the generator */
  crl_rng g2;
  crl_rng_seed(&g2, 3);
  crl_td *td2 = crl_spec_rand_td(c, &g2, 1, (int64_t[]){2});
  assert_true(crl_td_equal(td, td2));
  crl_rng_seed(&g2, 4);
  assert_false(crl_td_equal(td, crl_spec_rand_td(c, &g2, 1, (int64_t[]){2})));

  crl_td *z = crl_spec_zero_td(c, 0, NULL);
  CRL_CHECK_PTR(z);
  assert_int_equal(crl_td_batch_ndim(z), 1);
  assert_shape(crl_td_get(z, "agent/pos"), CRL_SHAPE(4, 2));
  CRL_CHECK_OK(crl_spec_check_td(c, z));
  ASSERT_NEAR(crl_sum_value(crl_td_get(z, "agent/pos")), 0, 0);

  /* an empty nested composite gives an empty nested TensorDict */
  CRL_CHECK_OK(crl_spec_set(c, "empty", crl_spec_composite(CRL_SHAPE(4))));
  crl_td *ze = crl_spec_zero_td(c, 0, NULL);
  CRL_CHECK_PTR(crl_td_get_td(ze, "empty"));

  assert_null(crl_spec_rand_td(crl_spec_get(c, "observation"), &g, 0, NULL));
  CRL_ASSERT_ERR_HAS("spec_rand_td: BoundedTensorSpec is not a CompositeSpec");
  assert_null(crl_spec_rand_td(c, NULL, 0, NULL));
  assert_null(crl_spec_zero_td(c, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}));
  CRL_ASSERT_ERR_HAS("7 batch dims + a spec of 2 dims exceed 8");
}

static void test_check_td(void **state) {
  (void)state;
  crl_spec *c = obs_spec(0, NULL);
  crl_td *td = crl_spec_zero_td(c, 0, NULL);
  CRL_CHECK_OK(crl_spec_check_td(c, td));

  /* leading batch dims are fine */
  crl_rng g;
  crl_rng_seed(&g, 1);
  CRL_CHECK_OK(
      crl_spec_check_td(c, crl_spec_rand_td(c, &g, 2, (int64_t[]){3, 2})));

  /* value out of the domain: the value and the bounds */
  crl_tensor *o = crl_td_get(td, "observation");
  CRL_CHECK_OK(crl_tensor_set_flat(o, 2, 1.5));
  assert_int_equal(crl_spec_check_td(c, td), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("check_td: key 'observation': value 1.5 at index [2] is "
                     "outside the bounds [-1, 1] (BoundedTensorSpec)");
  CRL_CHECK_OK(crl_tensor_set_flat(o, 2, 0));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "agent/id"), 0, 4));
  assert_int_equal(crl_spec_check_td(c, td), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("check_td: key 'agent/id': value 4 at index [] is not a "
                     "category in [0, 4)");
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "agent/id"), 0, 1));
  CRL_CHECK_OK(crl_spec_check_td(c, td));

  /* wrong trailing shape: both shapes */
  CRL_CHECK_OK(
      crl_td_set(td, "observation", crl_zeros(CRL_FLOAT32, CRL_SHAPE(4))));
  assert_int_equal(crl_spec_check_td(c, td), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("check_td: key 'observation': shape [4] does not end "
                     "with the spec's shape [3]");
  /* wrong dtype: both dtypes */
  CRL_CHECK_OK(
      crl_td_set(td, "observation", crl_zeros(CRL_FLOAT64, CRL_SHAPE(3))));
  assert_int_equal(crl_spec_check_td(c, td), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("check_td: key 'observation': dtype float64, the spec "
                     "expects float32");
  CRL_CHECK_OK(
      crl_td_set(td, "observation", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  /* missing key: lists the keys present */
  CRL_CHECK_OK(crl_td_del(td, "agent/pos"));
  assert_int_equal(crl_spec_check_td(c, td), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("check_td: key 'agent/pos' is missing from the "
                     "TensorDict; keys present: 'observation', 'agent/id'");
  /* a nested TensorDict where a tensor is expected */
  crl_td *sub = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set_td(td, "agent/pos", sub));
  assert_int_equal(crl_spec_check_td(c, td), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("key 'agent/pos' is a nested TensorDict");
  /* an empty TensorDict */
  assert_int_equal(crl_spec_check_td(c, crl_td_new(CRL_SCALAR)), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("keys present: none");
  assert_int_equal(crl_spec_check_td(c, NULL), CRL_EINVAL);
}

static void test_expand_equal_clone(void **state) {
  (void)state;
  crl_spec *c = obs_spec(0, NULL);
  crl_spec *x = crl_spec_expand(c, 2, (int64_t[]){5, 2});
  CRL_CHECK_PTR(x);
  assert_int_equal(crl_spec_ndim(x), 2);
  crl_spec *xo = crl_spec_get(x, "observation");
  assert_int_equal(crl_spec_ndim(xo), 3);
  assert_int_equal(crl_spec_shape(xo)[0], 5);
  assert_int_equal(crl_spec_ndim(crl_spec_get(x, "agent")), 2);
  assert_int_equal(crl_spec_ndim(crl_spec_get(x, "agent/id")), 2);
  assert_true(crl_spec_equal(x, obs_spec(2, (int64_t[]){5, 2})));
  assert_false(crl_spec_equal(x, c));
  crl_rng g;
  crl_rng_seed(&g, 9);
  crl_td *td = crl_spec_rand_td(x, &g, 0, NULL);
  CRL_CHECK_OK(crl_spec_check_td(x, td));
  assert_int_equal(crl_td_batch_ndim(td), 2);
  /* a spec with too many dims */
  assert_null(crl_spec_expand(c, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}));
  CRL_ASSERT_ERR_HAS("spec_expand");

  /* equality ignores insertion order, not keys or children */
  crl_spec *a = crl_spec_composite(CRL_SCALAR);
  crl_spec *b = crl_spec_composite(CRL_SCALAR);
  crl_spec *u = crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(1));
  crl_spec *d = crl_spec_discrete(2, CRL_INT64, CRL_SCALAR);
  CRL_CHECK_OK(crl_spec_set(a, "x", u));
  CRL_CHECK_OK(crl_spec_set(a, "n/y", d));
  CRL_CHECK_OK(crl_spec_set(b, "n/y", d));
  assert_false(crl_spec_equal(a, b));
  CRL_CHECK_OK(crl_spec_set(b, "x", u));
  assert_true(crl_spec_equal(a, b));
  CRL_CHECK_OK(
      crl_spec_set(b, "n/y", crl_spec_discrete(3, CRL_INT64, CRL_SCALAR)));
  assert_false(crl_spec_equal(a, b));
  assert_false(crl_spec_equal(a, crl_spec_composite(CRL_SHAPE(1))));

  /* clone copies the structure: changing it leaves the original alone */
  crl_spec *cl = crl_spec_clone(c);
  CRL_CHECK_PTR(cl);
  assert_true(crl_spec_equal(cl, c));
  assert_ptr_not_equal(crl_spec_get(cl, "agent"), crl_spec_get(c, "agent"));
  CRL_CHECK_OK(crl_spec_del(cl, "agent/id"));
  CRL_CHECK_OK(crl_spec_set(cl, "extra", u));
  assert_keys(c, 3, (const char *[]){"observation", "agent/pos", "agent/id"});
  assert_false(crl_spec_equal(cl, c));
}

static void test_lifetime(void **state) {
  (void)state;
  crl_spec *kept;
  crl_scope_begin();
  {
    crl_spec *c = obs_spec(0, NULL);
    kept = crl_spec_retain(c);
  }
  crl_scope_end();
  /* children are held by the composite, not by the scope */
  crl_spec *o = crl_spec_get(kept, "observation");
  CRL_CHECK_PTR(o);
  assert_int_equal(crl_spec_kind_of(o), CRL_SPEC_BOUNDED);
  crl_spec_release(kept);
}

static void test_print(void **state) {
  (void)state;
  crl_spec *c = crl_spec_composite(CRL_SCALAR);
  CRL_CHECK_OK(crl_spec_set(
      c, "observation", crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(1), -2, 2)));
  char buf[1000];
  crl_spec_to_string(c, buf, sizeof buf);
  assert_string_equal(buf, "CompositeSpec(\n"
                           "    observation: BoundedTensorSpec(shape=[1], "
                           "space=ContinuousBox(low=-2.0, high=2.0), "
                           "device=cpu, dtype=float32, domain=continuous), "
                           "device=cpu, shape=[])");
  CRL_CHECK_OK(crl_spec_set(c, "next/done",
                            crl_spec_discrete(2, CRL_BOOL, CRL_SHAPE(1))));
  int n = crl_spec_to_string(c, buf, sizeof buf);
  const char *expect =
      "CompositeSpec(\n"
      "    observation: BoundedTensorSpec(shape=[1], "
      "space=ContinuousBox(low=-2.0, high=2.0), device=cpu, dtype=float32, "
      "domain=continuous),\n"
      "    next: CompositeSpec(\n"
      "        done: DiscreteTensorSpec(shape=[1], space=DiscreteBox(n=2), "
      "device=cpu, dtype=bool, domain=discrete), device=cpu, shape=[]), "
      "device=cpu, shape=[])";
  assert_string_equal(buf, expect);
  assert_int_equal(n, (int)strlen(expect));
  crl_spec_to_string(crl_spec_composite(CRL_SHAPE(3)), buf, sizeof buf);
  assert_string_equal(buf, "CompositeSpec(device=cpu, shape=[3])");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_set_get),
      CRL_TEST(test_set_errors),
      CRL_TEST(test_rand_zero_td),
      CRL_TEST(test_check_td),
      CRL_TEST(test_expand_equal_clone),
      CRL_TEST(test_lifetime),
      CRL_TEST(test_print),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
