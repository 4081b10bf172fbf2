/* The stateless Pendulum of TorchRL's tutorial: the state and parameters
 * travel in the TensorDict; dynamics against the tutorial's _step. */
#include "classic_test_util.h"

static const char *const keys[6] = {"params/max_speed", "params/max_torque",
                                    "params/dt",        "params/g",
                                    "params/m",         "params/l"};

static double angle_normalize(double x) {
  double r = fmod(x + M_PI, 2 * M_PI);
  if (r < 0) r += 2 * M_PI;
  return r - M_PI;
}

/* the tutorial's _step for one env; returns the reward */
static double ref_step(double *th, double *thdot, double u, const double *p) {
  double max_speed = p[0], max_torque = p[1], dt = p[2], g = p[3], m = p[4],
         l = p[5];
  u = fmin(fmax(u, -max_torque), max_torque);
  double costs =
      pow(angle_normalize(*th), 2) + 0.1 * pow(*thdot, 2) + 0.001 * pow(u, 2);
  double new_thdot =
      *thdot + (3 * g / (2 * l) * sin(*th) + 3.0 / (m * pow(l, 2)) * u) * dt;
  new_thdot = fmin(fmax(new_thdot, -max_speed), max_speed);
  *th = *th + new_thdot * dt;
  *thdot = new_thdot;
  return -costs;
}

static void test_gen_params(void **state) {
  (void)state;
  crl_td *p = crl_pendulum_gen_params(0, CRL_SHAPE(4));
  CRL_CHECK_PTR(p);
  const double want[6] = {8, 2, 0.05, 10, 1, 1};
  for (int k = 0; k < 6; k++) {
    crl_tensor *t = crl_td_get(p, keys[k]);
    CRL_CHECK_PTR(t);
    int64_t shape[1] = {4};
    assert_shape(t, 1, shape);
    assert_int_equal(t->dtype, CRL_FLOAT32);
    ASSERT_NEAR(crl_tensor_get_flat(t, 3), want[k], 1e-7);
  }
  crl_td *s = crl_pendulum_gen_params(9.81, 0, NULL);
  CRL_CHECK_PTR(s);
  ASSERT_NEAR(crl_item(crl_td_get(s, "params/g")), 9.81, 1e-6);
}

static void test_specs_and_check(void **state) {
  (void)state;
  crl_classic_options o = {.num_envs = 5};
  crl_env *env = crl_pendulum_stateless_new(&o);
  CRL_CHECK_PTR(env);
  crl_spec *obs = crl_env_observation_spec(env);
  assert_true(crl_spec_contains(obs, "th"));
  assert_true(crl_spec_contains(obs, "thdot"));
  for (int k = 0; k < 6; k++)
    assert_true(crl_spec_contains(obs, keys[k]));
  crl_spec *act = crl_env_action_spec(env);
  assert_int_equal(crl_spec_shape(act)[1], 1);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(act), 0), 2.0, 0);
  CRL_CHECK_OK(crl_check_env_specs(env, 100, 3));
  crl_env *one = crl_pendulum_stateless_new(NULL);
  CRL_CHECK_PTR(one);
  CRL_CHECK_OK(crl_check_env_specs(one, 20, 3));
  assert_string_equal(crl_env_name(one), "PendulumStateless");
  /* unsupported options */
  o.from_pixels = true;
  assert_null(crl_pendulum_stateless_new(&o));
  CRL_ASSERT_ERR_HAS("from_pixels");
  o = (crl_classic_options){.max_episode_steps = 200};
  assert_null(crl_pendulum_stateless_new(&o));
  CRL_ASSERT_ERR_HAS("max_episode_steps");
  CRL_CHECK_PTR(crl_classic_make("PendulumStateless", NULL));
}

/* The state is read from the TensorDict: a trajectory matches the
 * tutorial's _step, next/params carries the params on, and the env can be
 * driven from any state a user writes (model-based use). */
static void test_trajectory(void **state) {
  (void)state;
  enum { N = 3, T = 150 };
  crl_classic_options o = {.num_envs = N, .seed = 1};
  crl_env *env = crl_pendulum_stateless_new(&o);
  CRL_CHECK_PTR(env);
  /* custom params for env 2 (g 9.81, l 1.5), defaults for the others */
  crl_td *td = crl_pendulum_gen_params(0, CRL_SHAPE(N));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "params/g"), 2, 9.81));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "params/l"), 2, 1.5));
  CRL_CHECK_PTR(crl_env_reset(env, td));
  double th[N], thd[N], p[N][6];
  for (int i = 0; i < N; i++) {
    th[i] = crl_tensor_get_flat(crl_td_get(td, "th"), i);
    thd[i] = crl_tensor_get_flat(crl_td_get(td, "thdot"), i);
    assert_true(th[i] >= -M_PI && th[i] <= M_PI);
    assert_true(thd[i] >= -1 && thd[i] <= 1);
    for (int k = 0; k < 6; k++)
      p[i][k] = crl_tensor_get_flat(crl_td_get(td, keys[k]), i);
  }
  ASSERT_NEAR(p[2][3], 9.81, 1e-6);
  ASSERT_NEAR(p[2][5], 1.5, 0);
  ASSERT_NEAR(p[0][3], 10.0, 0);
  for (int t = 0; t < T; t++) {
    double u[N] = {2.5 * sin(0.1 * t), -1.0, t % 2 ? 2.0 : -2.0};
    set_cont(env, td, u);
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *nth = f32(td, "next/th"), *nthd = f32(td, "next/thdot");
    const float *rew = f32(td, "next/reward");
    const uint8_t *done = u8(td, "next/done");
    for (int i = 0; i < N; i++) {
      /* the env reads float32 state: start the reference from it */
      double a = (float)th[i], b = (float)thd[i];
      double r = ref_step(&a, &b, (float)u[i], p[i]);
      ASSERT_F32(rew[i], r);
      ASSERT_F32(nth[i], a);
      ASSERT_F32(nthd[i], b);
      assert_int_equal(done[i], 0);
      th[i] = nth[i];
      thd[i] = nthd[i];
      for (int k = 0; k < 6; k++) {
        char key[64];
        snprintf(key, sizeof key, "next/%s", keys[k]);
        assert_true(crl_tensor_get_flat(crl_td_get(td, key), i) ==
                    (float)p[i][k]);
      }
    }
    td = crl_td_step_mdp(td, NULL);
    CRL_CHECK_PTR(td);
  }
  /* model-based: write any state and step from it */
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "th"), 0, 0.0));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "thdot"), 0, 0.0));
  double u[N] = {0, 0, 0};
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  assert_true(f32(td, "next/th")[0] == 0.0f);
  assert_true(f32(td, "next/reward")[0] == 0.0f);
}

static void test_rollout_and_errors(void **state) {
  (void)state;
  crl_classic_options o = {.num_envs = 2, .seed = 3};
  crl_env *env = crl_pendulum_stateless_new(&o);
  CRL_CHECK_PTR(env);
  crl_rollout_options ro = {.max_steps = 20, .auto_reset = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  crl_tensor *g = crl_td_get(r, "next/params/g");
  CRL_CHECK_PTR(g);
  int64_t shape[2] = {2, 20};
  assert_shape(g, 2, shape);
  ASSERT_NEAR(crl_tensor_get_flat(g, 39), 10.0, 0);
  /* reseeding replays */
  CRL_CHECK_OK(crl_env_seed(env, 3));
  crl_td *r2 = crl_env_rollout(env, &ro);
  assert_true(crl_td_equal(r, r2));
  /* missing state: a clear error naming the key, nothing written */
  crl_td *td = crl_env_reset(env, NULL);
  double u[2] = {0.1, 0.2};
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  float before[2];
  memcpy(before, f32(td, "next/th"), sizeof before);
  CRL_CHECK_OK(crl_td_del(td, "thdot"));
  assert_int_equal(crl_env_step(env, td), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'thdot'");
  assert_memory_equal(f32(td, "next/th"), before, sizeof before);
  /* wrong dtype / shape of a state entry */
  CRL_CHECK_OK(crl_td_set(td, "thdot", crl_zeros(CRL_FLOAT64, CRL_SHAPE(2))));
  assert_int_equal(crl_env_step(env, td), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float64");
  CRL_CHECK_OK(
      crl_td_set(td, "thdot", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 2))));
  assert_int_equal(crl_env_step(env, td), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 2]");
  /* invalid params */
  CRL_CHECK_OK(crl_td_set(td, "thdot", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2))));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "params/l"), 1, 0.0));
  assert_int_equal(crl_env_step(env, td), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("params/l");
  assert_memory_equal(f32(td, "next/th"), before, sizeof before);
  /* a strided (non-contiguous) state entry is read correctly */
  crl_tensor *wide = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 2));
  CRL_CHECK_OK(crl_tensor_set_flat(wide, 0, 0.5));
  CRL_CHECK_OK(crl_tensor_set_flat(wide, 2, -0.5));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "params/l"), 1, 1.0));
  crl_tensor *col = crl_select(wide, 1, 0);
  CRL_CHECK_PTR(col);
  assert_false(crl_tensor_is_contiguous(col));
  CRL_CHECK_OK(crl_td_set(td, "th", col));
  CRL_CHECK_OK(crl_env_step(env, td));
  double p[6] = {8, 2, 0.05, 10, 1, 1};
  double a = 0.5, b = 0;
  ref_step(&a, &b, (float)0.1, p);
  ASSERT_F32(f32(td, "next/th")[0], a);
  a = -0.5, b = 0;
  ref_step(&a, &b, (float)0.2, p);
  ASSERT_F32(f32(td, "next/th")[1], a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_gen_params),
      CRL_TEST(test_specs_and_check),
      CRL_TEST(test_trajectory),
      CRL_TEST(test_rollout_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
