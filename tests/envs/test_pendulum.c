/* Pendulum-v1 against a reference implementation of Gymnasium's equations
 * (classic_control/pendulum.py): dynamics, clipping, rewards, truncation,
 * specs, partial reset, seeding and action validation. */
#include "classic_test_util.h"

/* ---- reference: Gymnasium's PendulumEnv.step in double precision --------- */

static double angle_normalize(double x) {
  double r = fmod(x + M_PI, 2 * M_PI); /* Python's floored % */
  if (r < 0) r += 2 * M_PI;
  return r - M_PI;
}

/* returns the reward; u is the float32 action before clipping */
static double ref_step(double *th, double *thdot, float uf, double g) {
  const double max_speed = 8, max_torque = 2.0, dt = 0.05, m = 1.0, l = 1.0;
  double u = fmin(fmax((double)uf, -max_torque), max_torque);
  double costs =
      pow(angle_normalize(*th), 2) + 0.1 * pow(*thdot, 2) + 0.001 * (u * u);
  double newthdot =
      *thdot + (3 * g / (2 * l) * sin(*th) + 3.0 / (m * pow(l, 2)) * u) * dt;
  newthdot = fmin(fmax(newthdot, -max_speed), max_speed);
  *th = *th + newthdot * dt;
  *thdot = newthdot;
  return -costs;
}

static crl_env *make(int64_t n, double g) {
  crl_classic_options o = {.num_envs = n, .g = g};
  crl_env *env = crl_pendulum_new(&o);
  CRL_CHECK_PTR(env);
  return env;
}

static void test_specs(void **state) {
  (void)state;
  crl_env *env = make(5, 0);
  assert_string_equal(crl_env_name(env), "Pendulum-v1");
  crl_spec *act = crl_env_action_spec(env);
  assert_int_equal(crl_spec_kind_of(act), CRL_SPEC_BOUNDED);
  assert_int_equal(crl_spec_dtype(act), CRL_FLOAT32);
  assert_int_equal(crl_spec_ndim(act), 2);
  assert_int_equal(crl_spec_shape(act)[1], 1);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_low(act), 0), -2.0, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(act), 0), 2.0, 0);
  crl_spec *obs = crl_spec_get(crl_env_observation_spec(env), "observation");
  CRL_CHECK_PTR(obs);
  assert_int_equal(crl_spec_shape(obs)[1], 3);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(obs), 2), 8.0, 0);
  CRL_CHECK_OK(crl_check_env_specs(env, 300, 4));
  crl_env *one = make(0, 0);
  CRL_CHECK_OK(crl_check_env_specs(one, 30, 5));
  assert_null(crl_classic_make("Pendulum-v0", NULL));
}

/* Fixed states, actions inside and beyond [-2, 2]: observations, rewards
 * against the reference (free-running, float precision) and the one-step
 * map from the env's own state (double precision). */
static void test_reference_trajectory(void **state) {
  (void)state;
  enum { N = 4, T = 200 };
  const double g[2] = {10.0, 9.81};
  for (int gi = 0; gi < 2; gi++) {
    crl_env *env = make(N, gi ? g[1] : 0);
    crl_td *td = crl_env_reset(env, NULL);
    CRL_CHECK_PTR(td);
    double th[N] = {3.0, -0.5, 0.0, 1.5}, thd[N] = {0.0, 0.7, -1.0, 7.9};
    for (int i = 0; i < N; i++) {
      double s[2] = {th[i], thd[i]};
      CRL_CHECK_OK(crl__classic_set_state(env, i, s, 0));
    }
    for (int t = 0; t < T; t++) {
      double u[N] = {2.0 * sin(0.1 * t), 3.5 * cos(0.07 * t), -5.0,
                     0.37 * (t % 11) - 1.8};
      double before[N][2];
      for (int i = 0; i < N; i++)
        CRL_CHECK_OK(crl__classic_get_state(env, i, before[i], NULL));
      set_cont(env, td, u);
      CRL_CHECK_OK(crl_env_step(env, td));
      const float *obs = f32(td, "next/observation");
      const float *rew = f32(td, "next/reward");
      const uint8_t *term = u8(td, "next/terminated");
      const uint8_t *trunc = u8(td, "next/truncated");
      const uint8_t *done = u8(td, "next/done");
      for (int i = 0; i < N; i++) {
        double a = before[i][0], b = before[i][1];
        double r1 = ref_step(&a, &b, (float)u[i], g[gi]);
        double after[2];
        CRL_CHECK_OK(crl__classic_get_state(env, i, after, NULL));
        ASSERT_NEAR(after[0], a, 1e-12 * (1 + fabs(a)));
        ASSERT_NEAR(after[1], b, 1e-12 * (1 + fabs(b)));
        ASSERT_F32(rew[i], r1);
        double r = ref_step(&th[i], &thd[i], (float)u[i], g[gi]);
        ASSERT_F32(rew[i], r);
        ASSERT_F32(obs[3 * i + 0], cos(th[i]));
        ASSERT_F32(obs[3 * i + 1], sin(th[i]));
        ASSERT_F32(obs[3 * i + 2], thd[i]);
        assert_true(fabs(obs[3 * i + 2]) <= 8.0f);
        assert_int_equal(term[i], 0);
        assert_int_equal(trunc[i], t == T - 1); /* Gymnasium's 200 */
        assert_int_equal(done[i], t == T - 1);
      }
      td = crl_td_step_mdp(td, NULL);
      CRL_CHECK_PTR(td);
    }
  }
}

/* Hand-computed values: the reward uses the clipped torque and the state
 * before the step; the speed is clipped to 8. */
static void test_values(void **state) {
  (void)state;
  crl_env *env = make(2, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double s0[2] = {M_PI, 0.0}, s1[2] = {0.5, 7.9};
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s0, 0));
  CRL_CHECK_OK(crl__classic_set_state(env, 1, s1, 0));
  double u[2] = {10.0, -2.0}; /* 10 is clipped to 2 */
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  const float *rew = f32(td, "next/reward");
  /* env 0: angle_normalize(pi) = -pi: cost pi^2 + 0 + 0.001 * 4 */
  ASSERT_F32(rew[0], -(M_PI * M_PI + 0.004));
  /* env 1: 0.25 + 0.1 * 62.41 + 0.004 */
  ASSERT_F32(rew[1], -(0.25 + 6.241 + 0.004));
  const float *obs = f32(td, "next/observation");
  /* env 0: thdot = (15 sin(pi) + 3 * 2) * 0.05 = 0.3 */
  ASSERT_F32(obs[2], 0.3);
  ASSERT_F32(obs[0], cos(M_PI + 0.3 * 0.05));
  /* env 1: 7.9 + (15 sin 0.5 - 6) * 0.05 = 7.959..., then the next step
   * with +2 saturates at 8 */
  ASSERT_F32(obs[5], 7.9 + (15 * sin(0.5) - 6) * 0.05);
  double u2[2] = {0.0, 2.0};
  set_cont(env, td, u2);
  CRL_CHECK_OK(crl_env_step(env, td));
  assert_true(f32(td, "next/observation")[5] == 8.0f);
}

static void test_partial_reset_seed(void **state) {
  (void)state;
  enum { N = 6 };
  crl_classic_options o = {.num_envs = N, .seed = 11};
  crl_env *env = crl_pendulum_new(&o);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  float first[N * 3];
  memcpy(first, f32(td, "observation"), sizeof first);
  for (int i = 0; i < N; i++) {
    double s[2];
    CRL_CHECK_OK(crl__classic_get_state(env, i, s, NULL));
    assert_true(s[0] >= -M_PI && s[0] < M_PI);
    assert_true(s[1] >= -1 && s[1] < 1);
    ASSERT_F32(first[3 * i], cos(s[0]));
  }
  double u[N] = {1, 1, 1, 1, 1, 1};
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  td = crl_td_step_mdp(td, NULL);
  state_snap before, after;
  snap(env, &before);
  float obs_before[N * 3];
  memcpy(obs_before, f32(td, "observation"), sizeof obs_before);
  bool m[N] = {false, true, false, false, true, true};
  set_reset_mask(td, N, m);
  CRL_CHECK_PTR(crl_env_reset(env, td));
  snap(env, &after);
  const float *obs = f32(td, "observation");
  for (int i = 0; i < N; i++) {
    if (m[i]) {
      assert_int_equal(after.steps[i], 0);
      assert_true(after.s[i][0] != before.s[i][0]);
    } else {
      assert_int_equal(after.steps[i], 1);
      assert_memory_equal(after.s[i], before.s[i], sizeof after.s[i]);
      assert_memory_equal(obs + 3 * i, obs_before + 3 * i, 3 * sizeof(float));
    }
  }
  /* same seed, same first reset */
  crl_env *env2 = crl_pendulum_new(&o);
  crl_td *td2 = crl_env_reset(env2, NULL);
  assert_memory_equal(f32(td2, "observation"), first, sizeof first);
}

static void test_bad_actions(void **state) {
  (void)state;
  enum { N = 3 };
  crl_env *env = make(N, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double u[N] = {0.5, -0.5, 1};
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  float obs[N * 3];
  memcpy(obs, f32(td, "next/observation"), sizeof obs);
  state_snap before, after;
  snap(env, &before);
  double bad[N] = {0.5, NAN, 1};
  set_cont(env, td, bad);
  assert_int_equal(crl_env_step(env, td), CRL_ENOTFINITE);
  CRL_ASSERT_ERR_HAS("NaN");
  CRL_ASSERT_ERR_HAS("element 1");
  CRL_CHECK_OK(
      crl_td_set(td, "action", crl_zeros(CRL_FLOAT32, CRL_SHAPE(N, 2))));
  assert_int_equal(crl_env_step(env, td), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3, 2]");
  CRL_CHECK_OK(
      crl_td_set(td, "action", crl_zeros(CRL_FLOAT64, CRL_SHAPE(N, 1))));
  assert_int_equal(crl_env_step(env, td), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float64");
  CRL_CHECK_OK(crl_td_del(td, "action"));
  assert_int_equal(crl_env_step(env, td), CRL_EKEY);
  snap(env, &after);
  assert_same_snap(&before, &after);
  assert_memory_equal(f32(td, "next/observation"), obs, sizeof obs);
  /* with validation off the env's own checks still refuse a wrong shape */
  crl_env_set_validate(env, false);
  CRL_CHECK_OK(
      crl_td_set(td, "action", crl_zeros(CRL_FLOAT32, CRL_SHAPE(N, 2))));
  assert_int_equal(crl_env_step(env, td), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("Pendulum-v1");
  snap(env, &after);
  assert_same_snap(&before, &after);
}

/* A spinning pendulum far from 0 (past the inline sincos's range) still
 * follows the reference. */
static void test_large_angle(void **state) {
  (void)state;
  crl_env *env = make(2, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double s[2][2] = {{5.0e6, 3.0}, {-1234.5, -8.0}};
  for (int i = 0; i < 2; i++)
    CRL_CHECK_OK(crl__classic_set_state(env, i, s[i], 0));
  double u[2] = {1.0, -1.0};
  set_cont(env, td, u);
  CRL_CHECK_OK(crl_env_step(env, td));
  const float *rew = f32(td, "next/reward");
  for (int i = 0; i < 2; i++) {
    double r = ref_step(&s[i][0], &s[i][1], (float)u[i], 10.0);
    ASSERT_F32(rew[i], r);
    double got[2];
    CRL_CHECK_OK(crl__classic_get_state(env, i, got, NULL));
    ASSERT_NEAR(got[0], s[i][0], 1e-12 * fabs(s[i][0]));
    ASSERT_NEAR(got[1], s[i][1], 1e-12);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_specs),       CRL_TEST(test_reference_trajectory),
      CRL_TEST(test_values),      CRL_TEST(test_partial_reset_seed),
      CRL_TEST(test_bad_actions), CRL_TEST(test_large_angle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
