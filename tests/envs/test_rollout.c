/* Rollouts (crl_env_rollout) and check_env_specs of the generic env layer. */
#include "test_util.h"

static crl_env *cartpole(int64_t n, uint64_t seed) {
  crl_classic_options o = {0};
  o.num_envs = n;
  crl_env *e = crl_cartpole_new(&o);
  if (e) crl_env_seed(e, seed);
  return e;
}

/* [N, T] shapes, next/ entries, and the step_mdp chaining between steps */
static void test_rollout_shapes_and_chaining(void **state) {
  (void)state;
  crl_env *env = cartpole(4, 1);
  CRL_CHECK_PTR(env);
  crl_rollout_options ro = {.max_steps = 30, .auto_reset = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_td_batch_ndim(r), 2);
  assert_int_equal(crl_td_batch_size(r)[0], 4);
  assert_int_equal(crl_td_batch_size(r)[1], 30);
  assert_shape(crl_td_get(r, "observation"), CRL_SHAPE(4, 30, 4));
  assert_shape(crl_td_get(r, "action"), CRL_SHAPE(4, 30, 2));
  assert_shape(crl_td_get(r, "next/observation"), CRL_SHAPE(4, 30, 4));
  assert_shape(crl_td_get(r, "next/reward"), CRL_SHAPE(4, 30, 1));
  assert_shape(crl_td_get(r, "next/done"), CRL_SHAPE(4, 30, 1));
  assert_shape(crl_td_get(r, "next/terminated"), CRL_SHAPE(4, 30, 1));
  assert_shape(crl_td_get(r, "next/truncated"), CRL_SHAPE(4, 30, 1));
  /* observation at t+1 is next/observation at t unless the env was reset */
  crl_tensor *obs = crl_td_get(r, "observation");
  crl_tensor *nobs = crl_td_get(r, "next/observation");
  crl_tensor *done = crl_td_get(r, "next/done");
  int resets = 0;
  for (int64_t e = 0; e < 4; e++)
    for (int64_t t = 0; t + 1 < 30; t++) {
      bool d = crl_tensor_get(done, (int64_t[]){e, t, 0}) != 0;
      resets += d;
      for (int64_t k = 0; k < 4; k++) {
        double a = crl_tensor_get(nobs, (int64_t[]){e, t, k});
        double b = crl_tensor_get(obs, (int64_t[]){e, t + 1, k});
        if (!d) ASSERT_NEAR(b, a, 0);
      }
    }
  (void)resets;
  /* every action is one-hot */
  crl_tensor *act = crl_td_get(r, "action");
  for (int64_t i = 0; i < act->numel; i += 2)
    assert_true(crl_tensor_get_flat(act, i) + crl_tensor_get_flat(act, i + 1) ==
                1.0);
}

/* done envs are reset in the middle of a rollout (not broken off) */
static void test_rollout_resets_done_envs(void **state) {
  (void)state;
  crl_env *env = cartpole(2, 3);
  crl_rollout_options ro = {.max_steps = 200, .auto_reset = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  crl_tensor *done = crl_td_get(r, "next/done");
  crl_tensor *obs = crl_td_get(r, "observation");
  int checked = 0;
  for (int64_t e = 0; e < 2; e++)
    for (int64_t t = 0; t + 1 < 200; t++) {
      if (crl_tensor_get(done, (int64_t[]){e, t, 0}) == 0) continue;
      /* a fresh CartPole state: every component within +-0.05 */
      for (int64_t k = 0; k < 4; k++)
        assert_true(fabs(crl_tensor_get(obs, (int64_t[]){e, t + 1, k})) <=
                    0.05);
      checked++;
    }
  assert_true(checked > 0); /* a random CartPole falls within 200 steps */
}

/* break_when_any_done stops right after the first done step */
static void test_rollout_break_when_any_done(void **state) {
  (void)state;
  crl_env *env = cartpole(3, 5);
  crl_rollout_options ro = {
      .max_steps = 500, .auto_reset = true, .break_when_any_done = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  int64_t T = crl_td_batch_size(r)[1];
  assert_true(T < 500);
  crl_tensor *done = crl_td_get(r, "next/done");
  bool any_last = false;
  for (int64_t e = 0; e < 3; e++) {
    for (int64_t t = 0; t + 1 < T; t++)
      assert_true(crl_tensor_get(done, (int64_t[]){e, t, 0}) == 0);
    any_last |= crl_tensor_get(done, (int64_t[]){e, T - 1, 0}) != 0;
  }
  assert_true(any_last);
}

typedef struct {
  int calls;
  int fail_at;
} policy_ctx;

/* always push left (action 0), fail on request */
static int left_policy(void *vctx, crl_td *td) {
  policy_ctx *c = vctx;
  if (c->calls++ == c->fail_at)
    return crl_error(CRL_EINVAL, "policy refuses at call %d", c->fail_at);
  crl_tensor *obs = crl_td_get(td, "observation");
  if (!obs) return crl_last_error_code();
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, obs->shape, sizeof shape);
  shape[obs->ndim - 1] = 2;
  crl_tensor *a = crl_zeros(CRL_INT64, obs->ndim, shape);
  for (int64_t i = 0; i < a->numel; i += 2)
    crl_tensor_set_flat(a, i, 1);
  return crl_td_set(td, "action", a);
}

static void test_rollout_policy_and_single_env(void **state) {
  (void)state;
  crl_env *env = cartpole(0, 7); /* a single env: batch [] */
  assert_int_equal(crl_env_batch_ndim(env), 0);
  policy_ctx c = {0, -1};
  crl_rollout_options ro = {.max_steps = 20,
                            .auto_reset = true,
                            .policy = left_policy,
                            .policy_ctx = &c};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_td_batch_ndim(r), 1);
  assert_int_equal(c.calls, 20);
  crl_tensor *act = crl_td_get(r, "action");
  assert_shape(act, CRL_SHAPE(20, 2));
  for (int64_t t = 0; t < 20; t++)
    assert_true(crl_tensor_get(act, (int64_t[]){t, 0}) == 1);
  /* a failing policy stops the rollout with its message */
  policy_ctx f = {0, 3};
  ro.policy_ctx = &f;
  assert_null(crl_env_rollout(env, &ro));
  CRL_ASSERT_ERR_HAS("policy refuses at call 3");
  /* bad options */
  crl_rollout_options bad = {.max_steps = 0, .auto_reset = true};
  assert_null(crl_env_rollout(env, &bad));
  CRL_ASSERT_ERR_HAS("max_steps");
  crl_rollout_options no_td = {.max_steps = 5};
  assert_null(crl_env_rollout(env, &no_td));
  CRL_ASSERT_ERR_HAS("auto_reset");
}

/* without auto_reset the rollout continues from the given TensorDict */
static void test_rollout_from_td(void **state) {
  (void)state;
  crl_env *env = cartpole(2, 9);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  crl_tensor *start = crl_clone(crl_td_get(td, "observation"));
  crl_rollout_options ro = {.max_steps = 5, .td = td};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  crl_tensor *o0 = crl_select(crl_td_get(r, "observation"), 1, 0);
  assert_true(crl_equal(o0, start));
}

/* ---- a deliberately broken env: check_env_specs must name the key ------ */

typedef struct {
  int mode; /* 0: obs out of its bounds, 1: reward of the wrong shape */
} broken;

static int broken_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  (void)env, (void)mask;
  return crl_fill_(crl_td_get(td, "observation"), 0.5);
}

static int broken_step(crl_env *env, crl_td *td, crl_td *next) {
  (void)td;
  broken *b = crl_env_impl(env);
  crl_fill_(crl_td_get(next, "observation"), b->mode == 0 ? 3.0 : 0.5);
  if (b->mode == 1) {
    crl_tensor *r = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
    crl_td_del(next, "reward");
    crl_td_set(next, "reward", r);
  }
  return 0;
}

static const crl_env_ops broken_ops = {
    .name = "Broken", .reset = broken_reset, .step = broken_step};

static crl_env *broken_env(broken *b) {
  crl_env *env = crl_env_new(&broken_ops, b, 0, NULL);
  crl_spec *obs = crl_spec_composite(CRL_SCALAR);
  crl_spec_set(obs, "observation",
               crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1.0, 1.0));
  crl_env_set_observation_spec(env, obs);
  crl_env_set_action_spec(
      env, crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(1), -1.0, 1.0));
  crl_env_set_reward_spec(env, crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(1)));
  crl_spec *done = crl_spec_composite(CRL_SCALAR);
  crl_spec_set(done, "done", crl_spec_discrete(2, CRL_BOOL, CRL_SHAPE(1)));
  crl_spec_set(done, "terminated",
               crl_spec_discrete(2, CRL_BOOL, CRL_SHAPE(1)));
  crl_spec_set(done, "truncated", crl_spec_discrete(2, CRL_BOOL, CRL_SHAPE(1)));
  crl_env_set_done_spec(env, done);
  return env;
}

static void test_check_env_specs_names_the_key(void **state) {
  (void)state;
  broken b0 = {0};
  crl_env *e0 = broken_env(&b0);
  CRL_CHECK_PTR(e0);
  assert_int_not_equal(crl_check_env_specs(e0, 3, 0), 0);
  CRL_ASSERT_ERR_HAS("next/observation");
  broken b1 = {1};
  crl_env *e1 = broken_env(&b1);
  assert_int_not_equal(crl_check_env_specs(e1, 3, 0), 0);
  CRL_ASSERT_ERR_HAS("next/reward");
  /* and the real envs pass */
  const char *names[] = {"CartPole-v1", "Pendulum-v1", "MountainCar-v0",
                         "MountainCarContinuous-v0", "Acrobot-v1"};
  for (int i = 0; i < 5; i++) {
    crl_env *e = crl_env_make(names[i], "num_envs=3");
    CRL_CHECK_PTR(e);
    CRL_CHECK_OK(crl_check_env_specs(e, 20, 1));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_rollout_shapes_and_chaining),
      CRL_TEST(test_rollout_resets_done_envs),
      CRL_TEST(test_rollout_break_when_any_done),
      CRL_TEST(test_rollout_policy_and_single_env),
      CRL_TEST(test_rollout_from_td),
      CRL_TEST(test_check_env_specs_names_the_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
