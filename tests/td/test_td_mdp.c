/* step_mdp (TorchRL semantics) and flatten_keys / unflatten_keys. */
#include <stdlib.h>

#include "td_test_util.h"

/* The example of torchrl.envs.utils.step_mdp's docstring, with batch [3]:
 * root: done, reward, extra, next{done, reward, obs}, obs, action. */
typedef struct {
  crl_td *td;
  crl_tensor *done, *reward, *extra, *obs, *action;
  crl_tensor *ndone, *nreward, *nobs;
} mdp_fixture;

static crl_tensor *vals(crl_dtype dt, double base) {
  double v[3] = {base, base + 1, base + 2};
  crl_tensor *t = crl_empty(dt, CRL_SHAPE(3));
  for (int i = 0; i < 3; i++)
    crl_tensor_set_flat(t, i, v[i]);
  return t;
}

static mdp_fixture make_fixture(void) {
  mdp_fixture f;
  f.td = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_PTR(f.td);
  f.done = crl_zeros(CRL_BOOL, CRL_SHAPE(3));
  f.reward = vals(CRL_FLOAT32, 10);
  f.extra = vals(CRL_FLOAT32, 20);
  f.obs = vals(CRL_FLOAT32, 30);
  f.action = vals(CRL_FLOAT32, 40);
  f.ndone = crl_ones(CRL_BOOL, CRL_SHAPE(3));
  f.nreward = vals(CRL_FLOAT32, 50);
  f.nobs = vals(CRL_FLOAT32, 60);
  CRL_CHECK_OK(crl_td_set(f.td, "done", f.done));
  CRL_CHECK_OK(crl_td_set(f.td, "reward", f.reward));
  CRL_CHECK_OK(crl_td_set(f.td, "extra", f.extra));
  CRL_CHECK_OK(crl_td_set(f.td, "next/done", f.ndone));
  CRL_CHECK_OK(crl_td_set(f.td, "next/reward", f.nreward));
  CRL_CHECK_OK(crl_td_set(f.td, "next/obs", f.nobs));
  CRL_CHECK_OK(crl_td_set(f.td, "obs", f.obs));
  CRL_CHECK_OK(crl_td_set(f.td, "action", f.action));
  return f;
}

static void test_defaults(void **state) {
  (void)state;
  mdp_fixture f = make_fixture();
  crl_td *out = crl_td_step_mdp(f.td, NULL);
  CRL_CHECK_PTR(out);
  /* TorchRL: done, extra, obs (reward and action dropped; done/obs from
   * next). Root order first, then new keys of next. */
  td_keys_are(out, true, true, "done,extra,obs");
  assert_int_equal(crl_td_batch_ndim(out), 1);
  assert_int_equal(crl_td_batch_size(out)[0], 3);
  /* views: the very tensors of the input */
  assert_ptr_equal(crl_td_get(out, "done"), f.ndone);
  assert_ptr_equal(crl_td_get(out, "obs"), f.nobs);
  assert_ptr_equal(crl_td_get(out, "extra"), f.extra);
  /* writes through the result land in the input */
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(out, "obs"), 1, -7));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(f.td, "next/obs"), 1), -7, 0);
  /* the input is unchanged structurally */
  td_keys_are(f.td, true, true,
              "done,reward,extra,next/done,next/reward,next/obs,"
              "obs,action");
}

static void test_options(void **state) {
  (void)state;
  mdp_fixture f = make_fixture();
  crl_step_mdp_options o = {.keep_other = true,
                            .exclude_reward = true,
                            .exclude_done = true,
                            .exclude_action = true};
  crl_td *out = crl_td_step_mdp(f.td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "extra,obs");

  o = (crl_step_mdp_options){.keep_other = true,
                             .exclude_reward = false,
                             .exclude_done = false,
                             .exclude_action = true};
  out = crl_td_step_mdp(f.td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "done,reward,extra,obs");
  assert_ptr_equal(crl_td_get(out, "reward"), f.nreward); /* from next */

  o = (crl_step_mdp_options){.keep_other = true,
                             .exclude_reward = true,
                             .exclude_done = false,
                             .exclude_action = false};
  out = crl_td_step_mdp(f.td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "done,extra,obs,action");
  assert_ptr_equal(crl_td_get(out, "action"), f.action);

  o = (crl_step_mdp_options){.keep_other = false,
                             .exclude_reward = true,
                             .exclude_done = false,
                             .exclude_action = true};
  out = crl_td_step_mdp(f.td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "done,obs");

  /* keep_other false but action kept: only the action of the root */
  o = (crl_step_mdp_options){.keep_other = false,
                             .exclude_reward = false,
                             .exclude_done = false,
                             .exclude_action = false};
  out = crl_td_step_mdp(f.td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "action,done,reward,obs");
  assert_ptr_equal(crl_td_get(out, "reward"), f.nreward);
}

static void test_terminated_truncated(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *b = crl_zeros(CRL_BOOL, CRL_SHAPE(2, 1));
  crl_tensor *x = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4));
  CRL_CHECK_OK(crl_td_set(td, "observation", x));
  CRL_CHECK_OK(crl_td_set(td, "terminated", b));
  CRL_CHECK_OK(crl_td_set(td, "next/observation", x));
  CRL_CHECK_OK(crl_td_set(td, "next/done", b));
  CRL_CHECK_OK(crl_td_set(td, "next/terminated", b));
  CRL_CHECK_OK(crl_td_set(td, "next/truncated", b));
  CRL_CHECK_OK(crl_td_set(td, "next/reward", x));
  crl_td *out = crl_td_step_mdp(td, NULL);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "observation,terminated,done,truncated");
  crl_step_mdp_options o = {.keep_other = true,
                            .exclude_reward = true,
                            .exclude_done = true,
                            .exclude_action = true};
  out = crl_td_step_mdp(td, &o);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "observation");
}

/* Nested entries are merged key by key into new nested TensorDicts; empty
 * nested TensorDicts are dropped (TorchRL's _set). */
static void test_nested(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *na = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *h = crl_full(CRL_FLOAT32, CRL_SHAPE(2, 5), 2);
  CRL_CHECK_OK(crl_td_set(td, "agents/obs", a));
  CRL_CHECK_OK(crl_td_set(td, "agents/hidden", h));
  CRL_CHECK_OK(crl_td_set(td, "next/agents/obs", na));
  crl_td *empty = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set_td(td, "scratch", empty));
  /* a nested TensorDict with an extra batch dim keeps its batch size */
  crl_td *wide = crl_td_new(CRL_SHAPE(2, 4));
  CRL_CHECK_OK(crl_td_set(wide, "w", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4))));
  CRL_CHECK_OK(crl_td_set_td(td, "next/wide", wide));
  crl_td *out = crl_td_step_mdp(td, NULL);
  CRL_CHECK_PTR(out);
  td_keys_are(out, true, true, "agents/obs,agents/hidden,wide/w");
  assert_ptr_equal(crl_td_get(out, "agents/obs"), na);
  assert_ptr_equal(crl_td_get(out, "agents/hidden"), h);
  assert_false(crl_td_contains(out, "scratch"));
  /* the result's nested TensorDicts are new objects */
  assert_ptr_not_equal(crl_td_get_td(out, "agents"),
                       crl_td_get_td(td, "agents"));
  crl_td *ow = crl_td_get_td(out, "wide");
  assert_ptr_not_equal(ow, wide);
  assert_int_equal(crl_td_batch_ndim(ow), 2);
  assert_int_equal(crl_td_batch_size(ow)[1], 4);
  /* the input's nested TensorDict was not modified by the merge */
  td_keys_are(crl_td_get_td(td, "agents"), false, true, "obs,hidden");
  assert_ptr_equal(crl_td_get(td, "agents/obs"), a);
}

/* A rollout loop's step_mdp: the result of step t feeds step t+1. */
static void test_chain(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(1));
  CRL_CHECK_OK(crl_td_set(td, "x", crl_zeros(CRL_FLOAT64, CRL_SHAPE(1))));
  for (int t = 0; t < 5; t++) {
    crl_tensor *x = crl_td_get(td, "x");
    crl_tensor *nx =
        crl_full(CRL_FLOAT64, CRL_SHAPE(1), crl_tensor_get_flat(x, 0) + 1.5);
    CRL_CHECK_OK(crl_td_set(td, "action", nx));
    CRL_CHECK_OK(crl_td_set(td, "next/x", nx));
    CRL_CHECK_OK(crl_td_set(td, "next/reward", nx));
    td = crl_td_step_mdp(td, NULL);
    CRL_CHECK_PTR(td);
    td_keys_are(td, true, true, "x");
  }
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "x"), 0), 7.5, 0);
}

static void test_errors(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "obs", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_null(crl_td_step_mdp(td, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("step_mdp: no 'next'");
  CRL_ASSERT_ERR_HAS("'obs'");
  CRL_CHECK_OK(crl_td_set(td, "next", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_null(crl_td_step_mdp(td, NULL));
  CRL_ASSERT_ERR_HAS("'next' is a tensor");
  assert_null(crl_td_step_mdp(NULL, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  /* merging next/sub (batch [2]) into the root's sub of batch [2, 3]: the
   * leaf does not fit, refused with both shapes */
  crl_td *td2 = crl_td_new(CRL_SHAPE(2));
  crl_td *s = crl_td_new(CRL_SHAPE(2, 3));
  CRL_CHECK_OK(crl_td_set(s, "a", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  CRL_CHECK_OK(crl_td_set_td(td2, "sub", s));
  CRL_CHECK_OK(
      crl_td_set(td2, "next/sub/b", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_null(crl_td_step_mdp(td2, NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'b' of shape [2]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  td_keys_are(td2, true, true, "sub/a,next/sub/b");
}

/* ---- flatten / unflatten ------------------------------------------------- */

static void test_flatten_roundtrip(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(4));
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4, 2));
  crl_tensor *b = crl_ones(CRL_INT64, CRL_SHAPE(4));
  crl_tensor *c = crl_zeros(CRL_BOOL, CRL_SHAPE(4, 1));
  crl_tensor *d = crl_zeros(CRL_FLOAT64, CRL_SHAPE(4, 3, 2));
  CRL_CHECK_OK(crl_td_set(td, "a", a));
  CRL_CHECK_OK(crl_td_set(td, "next/obs/pos", b));
  CRL_CHECK_OK(crl_td_set(td, "next/done", c));
  crl_td *wide = crl_td_new(CRL_SHAPE(4, 3));
  CRL_CHECK_OK(crl_td_set(wide, "d", d));
  CRL_CHECK_OK(crl_td_set_td(td, "wide", wide));

  crl_td *flat = crl_td_flatten_keys(td, NULL); /* default "." */
  CRL_CHECK_PTR(flat);
  td_keys_are(flat, false, true, "a,next.obs.pos,next.done,wide.d");
  assert_ptr_equal(crl_td_get(flat, "next.obs.pos"), b); /* no copy */
  assert_ptr_equal(crl_td_get(flat, "wide.d"), d);

  crl_td *back = crl_td_unflatten_keys(flat, ".");
  CRL_CHECK_PTR(back);
  td_keys_are(back, true, true, "a,next/obs/pos,next/done,wide/d");
  assert_ptr_equal(crl_td_get(back, "next/obs/pos"), b);
  assert_ptr_equal(crl_td_get(back, "a"), a);

  /* a multi-character separator */
  flat = crl_td_flatten_keys(td, "__");
  CRL_CHECK_PTR(flat);
  td_keys_are(flat, false, true, "a,next__obs__pos,next__done,wide__d");
  back = crl_td_unflatten_keys(flat, "__");
  CRL_CHECK_PTR(back);
  td_keys_are(back, true, true, "a,next/obs/pos,next/done,wide/d");

  /* unflatten merges split keys with existing nested TensorDicts and keeps
   * a nested TensorDict's own batch size */
  crl_td *mixed = crl_td_new(CRL_SHAPE(4));
  CRL_CHECK_OK(crl_td_set(mixed, "next.x", a));
  CRL_CHECK_OK(crl_td_set(mixed, "next/y.z", b));
  CRL_CHECK_OK(crl_td_set_td(mixed, "w.v", wide));
  back = crl_td_unflatten_keys(mixed, ".");
  CRL_CHECK_PTR(back);
  td_keys_are(back, true, true, "next/x,next/y/z,w/v/d");
  crl_td *v = crl_td_get_td(back, "w/v");
  CRL_CHECK_PTR(v);
  assert_int_equal(crl_td_batch_ndim(v), 2);
  assert_ptr_not_equal(v, wide);
  /* input untouched */
  td_keys_are(mixed, true, true, "next.x,next/y.z,w.v/d");
}

static void test_flatten_errors(void **state) {
  (void)state;
  crl_tensor *x = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_td *td = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(td, "a.b", x));
  CRL_CHECK_OK(crl_td_set(td, "a/b", x));
  assert_null(crl_td_flatten_keys(td, "."));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("keys 'a.b' and 'a/b' both flatten to 'a.b'");
  /* another separator has no collision */
  CRL_CHECK_PTR(crl_td_flatten_keys(td, "_"));

  assert_null(crl_td_flatten_keys(td, ""));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_td_flatten_keys(td, "/"));
  CRL_ASSERT_ERR_HAS("contains '/'");
  assert_null(crl_td_unflatten_keys(td, "a/"));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);

  /* unflatten: a tensor and a nested entry under one name */
  crl_td *u = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(u, "a", x));
  CRL_CHECK_OK(crl_td_set(u, "a.b", x));
  assert_null(crl_td_unflatten_keys(u, "."));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("keys 'a' and 'a.b' collide");
  /* the same target twice */
  crl_td *u2 = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(u2, "a.b", x));
  CRL_CHECK_OK(crl_td_set(u2, "a/b", x));
  assert_null(crl_td_unflatten_keys(u2, "."));
  CRL_ASSERT_ERR_HAS("keys 'a.b' and 'a/b' both unflatten to 'a/b'");
  /* tensor first, then a key that needs it to be nested */
  crl_td *u3 = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(u3, "a.b", x));
  CRL_CHECK_OK(crl_td_set(u3, "a.b.c", x));
  assert_null(crl_td_unflatten_keys(u3, "."));
  CRL_ASSERT_ERR_HAS("keys 'a.b' and 'a.b.c' collide: 'a/b'");
  /* empty components */
  crl_td *u4 = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(u4, "a..b", x));
  assert_null(crl_td_unflatten_keys(u4, "."));
  CRL_ASSERT_ERR_HAS("'a..b' has an empty component");
  crl_td *u5 = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(u5, ".a", x));
  assert_null(crl_td_unflatten_keys(u5, "."));
  CRL_ASSERT_ERR_HAS("empty component");
  /* inputs unchanged */
  td_keys_are(u, false, true, "a,a.b");
  td_keys_are(td, true, true, "a.b,a/b");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_defaults),
      CRL_TEST(test_options),
      CRL_TEST(test_terminated_truncated),
      CRL_TEST(test_nested),
      CRL_TEST(test_chain),
      CRL_TEST(test_errors),
      CRL_TEST(test_flatten_roundtrip),
      CRL_TEST(test_flatten_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
