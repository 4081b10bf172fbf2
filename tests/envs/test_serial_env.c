/* SerialEnv: batch and specs, equality with standalone copies, partial
 * reset, rollouts, errors, async send/recv, pass_observations, render. */
#include "batched_test_util.h"

static classic_ctx cartpole3 = {"CartPole-v1", {.num_envs = 3}};

/* one-hot int64 [N..., 2] action from indices */
static crl_tensor *onehot(int ndim, const int64_t *batch, const int *idx) {
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, batch, sizeof(int64_t) * (size_t)ndim);
  shape[ndim] = 2;
  crl_tensor *a = crl_zeros(CRL_INT64, ndim + 1, shape);
  int64_t *p = a->data;
  for (int64_t i = 0; i < a->numel / 2; i++)
    p[i * 2 + idx[i]] = 1;
  return a;
}

static void test_batch_and_specs(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(4, classic_factory, &cartpole3, NULL);
  CRL_CHECK_PTR(env);
  assert_string_equal(crl_env_name(env), "SerialEnv");
  assert_true(crl_env_is_batched(env));
  assert_int_equal(crl_batched_env_num_envs(env), 4);
  assert_int_equal(crl_batched_env_num_workers(env), 0);
  assert_int_equal(crl_env_batch_ndim(env), 2);
  assert_int_equal(crl_env_batch_size(env)[0], 4);
  assert_int_equal(crl_env_batch_size(env)[1], 3);
  assert_int_equal(crl_env_numel(env), 12);
  crl_spec *os = crl_spec_get(crl_env_observation_spec(env), "observation");
  CRL_CHECK_PTR(os);
  assert_int_equal(crl_spec_ndim(os), 3);
  assert_int_equal(crl_spec_shape(os)[2], 4);
  crl_spec *as = crl_env_action_spec(env);
  assert_int_equal(crl_spec_kind_of(as), CRL_SPEC_ONE_HOT);
  assert_int_equal(crl_spec_shape(as)[0], 4);
  CRL_CHECK_OK(crl_check_env_specs(env, 20, 3));
  crl_env *sub = crl_batched_env_get(env, 2);
  CRL_CHECK_PTR(sub);
  assert_int_equal(crl_env_numel(sub), 3);
  assert_null(crl_batched_env_get(env, 4));
  CRL_ASSERT_ERR_HAS("index 4 out of range [0, 4)");
  assert_int_equal(crl_batched_env_num_envs(sub), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("is not a SerialEnv or ParallelEnv");
}

/* copy i seeded s + i behaves as a standalone env seeded s + i */
static void test_matches_standalone_copies(void **state) {
  (void)state;
  enum { N = 3, M = 2 };
  crl_env *env = crl_serial_env_new(
      N, classic_factory, &(classic_ctx){"CartPole-v1", {.num_envs = M}}, NULL);
  CRL_CHECK_PTR(env);
  crl_env *solo[N];
  for (int i = 0; i < N; i++) {
    solo[i] = crl_cartpole_new(
        &(crl_classic_options){.num_envs = M, .seed = 5 + (uint64_t)i});
    CRL_CHECK_PTR(solo[i]);
  }
  CRL_CHECK_OK(crl_env_seed(env, 5));
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  crl_td *std[N];
  for (int i = 0; i < N; i++)
    CRL_CHECK_PTR(std[i] = crl_env_reset(solo[i], NULL));
  for (int t = 0; t < 40; t++) {
    int idx[N * M];
    for (int k = 0; k < N * M; k++)
      idx[k] = (t * 7 + k * 3) % 5 < 2;
    CRL_CHECK_OK(crl_td_set(td, "action", onehot(2, (int64_t[]){N, M}, idx)));
    CRL_CHECK_OK(crl_env_step(env, td));
    for (int i = 0; i < N; i++) {
      CRL_CHECK_OK(
          crl_td_set(std[i], "action", onehot(1, (int64_t[]){M}, idx + i * M)));
      CRL_CHECK_OK(crl_env_step(solo[i], std[i]));
    }
    const char *keys[] = {"next/observation", "next/reward", "next/done",
                          "next/terminated", "next/truncated"};
    for (int q = 0; q < 5; q++) {
      crl_tensor *big = crl_td_get(td, keys[q]);
      size_t row = (size_t)(big->numel / N) * crl_dtype_size(big->dtype);
      for (int i = 0; i < N; i++) {
        crl_tensor *s = crl_td_get(std[i], keys[q]);
        if (memcmp((char *)big->data + row * (size_t)i, s->data, row))
          fail_msg("step %d, '%s' of copy %d differs", t, keys[q], i);
      }
    }
    /* next step: step_mdp and reset the done envs (partial reset) */
    crl_tensor *done = crl_td_get(td, "next/done");
    bool any = false;
    for (int k = 0; k < N * M; k++)
      any |= ((uint8_t *)done->data)[k] != 0;
    td = crl_td_step_mdp(td, NULL);
    for (int i = 0; i < N; i++)
      std[i] = crl_td_step_mdp(std[i], NULL);
    if (any) {
      CRL_CHECK_OK(crl_td_set(td, "_reset", crl_td_get(td, "done")));
      CRL_CHECK_PTR(crl_env_reset(env, td));
      for (int i = 0; i < N; i++) {
        CRL_CHECK_OK(crl_td_set(std[i], "_reset", crl_td_get(std[i], "done")));
        CRL_CHECK_PTR(crl_env_reset(solo[i], std[i]));
      }
      crl_tensor *o = crl_td_get(td, "observation");
      size_t row = (size_t)(o->numel / N) * 4;
      for (int i = 0; i < N; i++)
        assert_memory_equal((char *)o->data + row * (size_t)i,
                            crl_td_get(std[i], "observation")->data, row);
    }
  }
}

static void test_partial_reset_only_masked(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(2, classic_factory, &cartpole3, NULL);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  CRL_CHECK_OK(crl_env_rand_step(env, td));
  td = crl_td_step_mdp(td, NULL);
  crl_tensor *before = crl_clone(crl_td_get(td, "observation"));
  uint8_t m[6] = {0, 1, 0, 0, 0, 1};
  CRL_CHECK_OK(crl_td_set(td, "_reset",
                          crl_from_array(CRL_BOOL, 2, (int64_t[]){2, 3}, m)));
  CRL_CHECK_PTR(crl_env_reset(env, td));
  assert_false(crl_td_contains(td, "_reset"));
  const float *a = before->data, *b = crl_td_get(td, "observation")->data;
  for (int k = 0; k < 6; k++) {
    bool same = !memcmp(a + 4 * k, b + 4 * k, 16);
    if (m[k]) {
      assert_false(same);
      for (int j = 0; j < 4; j++)
        assert_true(fabsf(b[4 * k + j]) <= 0.05f);
    } else {
      assert_true(same);
    }
  }
}

static void test_rollout_shape(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(2, classic_factory, &cartpole3, NULL);
  CRL_CHECK_PTR(env);
  CRL_CHECK_OK(crl_env_seed(env, 1));
  crl_td *r = crl_env_rollout(
      env, &(crl_rollout_options){.max_steps = 30, .auto_reset = true});
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_td_batch_ndim(r), 3);
  assert_shape(crl_td_get(r, "next/observation"), 4, (int64_t[]){2, 3, 30, 4});
  assert_shape(crl_td_get(r, "action"), 4, (int64_t[]){2, 3, 30, 2});
}

static void test_copy_error_names_env(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(3, tiny_factory, NULL, NULL);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  crl_td_update(td, tiny_action_td(3, 1.0f));
  CRL_CHECK_OK(crl_env_step(env, td));
  crl_tensor *before = crl_clone(crl_td_get(td, "next/observation"));
  float *a = crl_td_get(td, "action")->data;
  a[1] = 7.0f;
  a[2] = 7.0f;
  assert_int_equal(crl_env_step(env, td), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("SerialEnv: env 1: tiny env 1: boom (action 7)");
  assert_true(crl_equal(before, crl_td_get(td, "next/observation")));
  /* still usable */
  a[1] = a[2] = 0;
  CRL_CHECK_OK(crl_env_step(env, td));
}

static void test_relink_env_replacing_entries(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(2, tiny_factory, NULL, NULL);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  crl_td_update(td, tiny_action_td(2, 6.0f));
  for (int t = 1; t <= 3; t++) {
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *o = crl_td_get(td, "next/observation")->data;
    assert_true(o[0] == 6.0f * t && o[2] == 6.0f * t);
  }
}

static void test_construction_errors(void **state) {
  (void)state;
  assert_null(crl_serial_env_new(0, tiny_factory, NULL, NULL));
  CRL_ASSERT_ERR_HAS("SerialEnv: n 0 must be >= 1");
  assert_null(crl_serial_env_new(2, NULL, NULL, NULL));
  CRL_ASSERT_ERR_HAS("factory is NULL");
  int bad = 2;
  assert_null(crl_serial_env_new(3, failing_factory, &bad, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS("failed to make env 2: factory: no simulator license "
                     "for env 2");
  assert_null(crl_serial_env_new(2, classic_factory,
                                 &(classic_ctx){"Nope-v0", {0}}, NULL));
  CRL_ASSERT_ERR_HAS("unknown env 'Nope-v0'");
}

static int mixed_i;
static crl_env *mixed_factory(void *ctx, int i) {
  (void)ctx;
  if (i == mixed_i) return crl_pendulum_new(NULL);
  return crl_cartpole_new(NULL);
}
static crl_env *same_factory(void *ctx, int i) {
  (void)i;
  return crl_env_retain(ctx);
}

static void test_spec_mismatch(void **state) {
  (void)state;
  mixed_i = 1;
  assert_null(crl_serial_env_new(3, mixed_factory, NULL, NULL));
  CRL_ASSERT_ERR_HAS("SerialEnv: env 1 made by the factory has another "
                     "observation spec than env 0");
  crl_env *one = crl_cartpole_new(NULL);
  assert_null(crl_serial_env_new(2, same_factory, one, NULL));
  CRL_ASSERT_ERR_HAS("the same env twice");
  /* same_factory's references were not scope-owned: drop them */
  crl_env_release(one);
  crl_env_release(one);
}

static void test_async_serial(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(4, classic_factory, &cartpole3, NULL);
  CRL_CHECK_PTR(env);
  assert_null(crl_batched_env_recv(env, 1));
  CRL_ASSERT_ERR_HAS("no request is outstanding");
  CRL_CHECK_OK(crl_env_seed(env, 11));
  crl_td *ref = crl_env_reset(env, NULL); /* sync reference */
  crl_tensor *ref_obs = crl_clone(crl_td_get(ref, "observation"));
  CRL_CHECK_OK(crl_env_seed(env, 11));
  CRL_CHECK_OK(crl_batched_env_reset_send(env, NULL));
  assert_int_equal(crl_batched_env_pending(env), 4);
  /* synchronous calls are refused meanwhile */
  assert_null(crl_env_reset(env, NULL));
  CRL_ASSERT_ERR_HAS("4 async requests are outstanding");
  assert_int_equal(crl_batched_env_reset_send(env, NULL), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("env 0 has a request in flight");
  crl_td *r = crl_batched_env_recv(env, 4);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_batched_env_pending(env), 0);
  assert_int_equal(crl_td_batch_size(r)[0], 4);
  double ids[4] = {0, 1, 2, 3};
  assert_tensor_values(crl_td_get(r, "env_index"), ids, 4, 0);
  assert_true(crl_equal(crl_td_get(r, "observation"), ref_obs));
  assert_shape(crl_td_get(r, "reward"), 3, (int64_t[]){4, 3, 1});
  /* step envs 2 and 0 */
  crl_td *s = crl_td_new(1, (int64_t[]){2});
  CRL_CHECK_OK(crl_td_set(
      s, "env_index",
      crl_from_array(CRL_INT64, 1, (int64_t[]){2}, (int64_t[]){2, 0})));
  int idx[6] = {1, 1, 1, 0, 0, 0};
  CRL_CHECK_OK(crl_td_set(s, "action", onehot(2, (int64_t[]){2, 3}, idx)));
  CRL_CHECK_OK(crl_batched_env_step_send(env, s));
  assert_int_equal(crl_batched_env_step_send(env, s), CRL_ESTATE);
  r = crl_batched_env_recv(env, 0);
  CRL_CHECK_PTR(r);
  double ids2[2] = {0, 2};
  assert_tensor_values(crl_td_get(r, "env_index"), ids2, 2, 0);
  const float *o = crl_td_get(r, "observation")->data;
  const float *o0 = ref_obs->data;
  /* env 0 pushed left: x velocity (obs[1]) decreases from the reset value */
  assert_true(o[1] < o0[1]);
  assert_true(o[3 * 4 + 1] > o0[2 * 12 + 1]); /* env 2 pushed right */
  double rew[6] = {1, 1, 1, 1, 1, 1};
  assert_tensor_values(crl_td_get(r, "reward"), rew, 6, 0);
  /* bad requests */
  CRL_CHECK_OK(crl_td_set(
      s, "env_index",
      crl_from_array(CRL_INT64, 1, (int64_t[]){2}, (int64_t[]){1, 1})));
  assert_int_equal(crl_batched_env_step_send(env, s), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("env_index 1 appears twice");
  CRL_CHECK_OK(crl_td_set(
      s, "env_index",
      crl_from_array(CRL_INT64, 1, (int64_t[]){2}, (int64_t[]){1, 4})));
  assert_int_equal(crl_batched_env_step_send(env, s), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("env_index 4 (row 1) out of range [0, 4)");
  CRL_CHECK_OK(crl_td_set(
      s, "env_index",
      crl_from_array(CRL_INT64, 1, (int64_t[]){2}, (int64_t[]){1, 3})));
  int bad[6] = {0};
  crl_tensor *ba = onehot(2, (int64_t[]){2, 3}, bad);
  ((int64_t *)ba->data)[1] = 1; /* two hot */
  CRL_CHECK_OK(crl_td_set(s, "action", ba));
  assert_int_equal(crl_batched_env_step_send(env, s), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("action is not in the action spec");
  assert_int_equal(crl_batched_env_pending(env), 0);
  /* partial async reset of env 3's inner env 1 */
  crl_td *rs = crl_td_new(1, (int64_t[]){1});
  CRL_CHECK_OK(
      crl_td_set(rs, "env_index",
                 crl_from_array(CRL_INT64, 1, (int64_t[]){1}, (int64_t[]){3})));
  CRL_CHECK_OK(crl_td_set(
      rs, "_reset",
      crl_from_array(CRL_BOOL, 2, (int64_t[]){1, 3}, (uint8_t[]){0, 1, 0})));
  CRL_CHECK_OK(crl_batched_env_reset_send(env, rs));
  r = crl_batched_env_recv(env, 1);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_td_batch_size(r)[0], 1);
  double rr[3] = {0, 0, 0}; /* reset results: reward 0 */
  assert_tensor_values(crl_td_get(r, "reward"), rr, 3, 0);
  /* a failing async request is reported by recv */
  crl_env *tiny = crl_serial_env_new(2, tiny_factory, NULL, NULL);
  CRL_CHECK_OK(crl_batched_env_reset_send(tiny, NULL));
  CRL_CHECK_PTR(crl_batched_env_recv(tiny, 2));
  crl_td *ta = tiny_action_td(2, 7.0f);
  CRL_CHECK_OK(crl_td_set(
      ta, "env_index",
      crl_from_array(CRL_INT64, 1, (int64_t[]){2}, (int64_t[]){0, 1})));
  CRL_CHECK_OK(crl_batched_env_step_send(tiny, ta));
  assert_null(crl_batched_env_recv(tiny, 2));
  CRL_ASSERT_ERR_HAS("SerialEnv: env 0: tiny env 0: boom");
  assert_null(crl_batched_env_recv(tiny, 1));
  CRL_ASSERT_ERR_HAS("SerialEnv: env 1: tiny env 1: boom");
  assert_int_equal(crl_batched_env_pending(tiny), 0);
}

/* stateless Pendulum reads its state from the TensorDict */
static void test_pass_observations(void **state) {
  (void)state;
  classic_ctx c = {"PendulumStateless", {0}};
  crl_batched_options o = {.pass_observations = true};
  crl_env *env = crl_serial_env_new(2, classic_factory, &c, &o);
  CRL_CHECK_PTR(env);
  crl_env *solo = crl_pendulum_stateless_new(NULL);
  CRL_CHECK_OK(crl_env_seed(env, 4));
  CRL_CHECK_OK(crl_env_seed(solo, 5)); /* copy 1 gets 4 + 1 */
  crl_td *td = crl_env_reset(env, NULL);
  crl_td *sd = crl_env_reset(solo, NULL);
  CRL_CHECK_PTR(td);
  CRL_CHECK_PTR(sd);
  for (int t = 0; t < 5; t++) {
    float u[2] = {0.5f, -1.5f};
    CRL_CHECK_OK(crl_td_set(
        td, "action", crl_from_array(CRL_FLOAT32, 2, (int64_t[]){2, 1}, u)));
    CRL_CHECK_OK(crl_td_set(
        sd, "action", crl_from_array(CRL_FLOAT32, 1, (int64_t[]){1}, u + 1)));
    CRL_CHECK_OK(crl_env_step(env, td));
    CRL_CHECK_OK(crl_env_step(solo, sd));
    assert_true(((float *)crl_td_get(td, "next/th")->data)[1] ==
                *(float *)crl_td_get(sd, "next/th")->data);
    assert_true(((float *)crl_td_get(td, "next/thdot")->data)[1] ==
                *(float *)crl_td_get(sd, "next/thdot")->data);
    td = crl_td_step_mdp(td, NULL);
    sd = crl_td_step_mdp(sd, NULL);
  }
  /* without the state at the root the step is refused */
  float u0[2] = {0, 0};
  CRL_CHECK_OK(crl_td_set(
      td, "action", crl_from_array(CRL_FLOAT32, 2, (int64_t[]){2, 1}, u0)));
  CRL_CHECK_OK(crl_td_del(td, "th"));
  assert_int_equal(crl_env_step(env, td), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("pass_observations needs 'th'");
}

static void test_render_and_pixels(void **state) {
  (void)state;
  classic_ctx c = {
      "Pendulum-v1",
      {.from_pixels = true, .render_width = 16, .render_height = 12}};
  crl_env *env = crl_serial_env_new(2, classic_factory, &c, NULL);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  CRL_CHECK_OK(crl_env_rand_step(env, td));
  crl_tensor *px = crl_td_get(td, "next/pixels");
  assert_shape(px, 4, (int64_t[]){2, 12, 16, 3});
  crl_tensor *r = crl_env_render(env);
  CRL_CHECK_PTR(r);
  assert_true(crl_equal(r, px));
  crl_tensor *r1 = crl_env_render(crl_batched_env_get(env, 1));
  assert_memory_equal(r1->data, (uint8_t *)r->data + 12 * 16 * 3, 12 * 16 * 3);
}

static void test_close(void **state) {
  (void)state;
  crl_env *env = crl_serial_env_new(2, classic_factory, &cartpole3, NULL);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_OK(crl_batched_env_close(env));
  CRL_CHECK_OK(crl_batched_env_close(env));
  assert_int_equal(crl_env_rand_step(env, td), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("SerialEnv step: the env is closed");
  assert_null(crl_batched_env_get(env, 0));
}

int main(void) {
  alarm(120);
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_batch_and_specs),
      CRL_TEST(test_matches_standalone_copies),
      CRL_TEST(test_partial_reset_only_masked),
      CRL_TEST(test_rollout_shape),
      CRL_TEST(test_copy_error_names_env),
      CRL_TEST(test_relink_env_replacing_entries),
      CRL_TEST(test_construction_errors),
      CRL_TEST(test_spec_mismatch),
      CRL_TEST(test_async_serial),
      CRL_TEST(test_pass_observations),
      CRL_TEST(test_render_and_pixels),
      CRL_TEST(test_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
