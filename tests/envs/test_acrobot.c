/* Acrobot-v1 against a reference implementation of Gymnasium's equations
 * (classic_control/acrobot.py: book dynamics, one RK4 step of 0.2 s, wrap
 * and bound), termination, reward, truncation, specs, reset distribution,
 * partial reset, seeding, validation. */
#include "classic_test_util.h"

/* ---- reference: AcrobotEnv in double precision --------------------------- */

static void dsdt(const double *s, double *ds) {
  const double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5;
  const double I1 = 1.0, I2 = 1.0, g = 9.8;
  double a = s[4], theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
  double d1 = m1 * pow(lc1, 2) +
              m2 * (pow(l1, 2) + pow(lc2, 2) + 2 * l1 * lc2 * cos(theta2)) +
              I1 + I2;
  double d2 = m2 * (pow(lc2, 2) + l1 * lc2 * cos(theta2)) + I2;
  double phi2 = m2 * lc2 * g * cos(theta1 + theta2 - M_PI / 2.0);
  double phi1 = -m2 * l1 * lc2 * pow(dtheta2, 2) * sin(theta2) -
                2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2) +
                (m1 * lc1 + m2 * l1) * g * cos(theta1 - M_PI / 2) + phi2;
  double ddtheta2 = (a + d2 / d1 * phi1 -
                     m2 * l1 * lc2 * pow(dtheta1, 2) * sin(theta2) - phi2) /
                    (m2 * pow(lc2, 2) + I2 - pow(d2, 2) / d1);
  double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  ds[0] = dtheta1;
  ds[1] = dtheta2;
  ds[2] = ddtheta1;
  ds[3] = ddtheta2;
  ds[4] = 0.0;
}

static double wrap(double x, double m, double M) {
  double diff = M - m;
  while (x > M)
    x = x - diff;
  while (x < m)
    x = x + diff;
  return x;
}

/* one env step; returns terminated */
static bool ref_step(double *s, int action) {
  const double torque[3] = {-1.0, 0.0, 1.0};
  double y0[5] = {s[0], s[1], s[2], s[3], torque[action]};
  double k1[5], k2[5], k3[5], k4[5], y[5];
  double dt = 0.2, dt2 = dt / 2.0;
  dsdt(y0, k1);
  for (int j = 0; j < 5; j++)
    y[j] = y0[j] + dt2 * k1[j];
  dsdt(y, k2);
  for (int j = 0; j < 5; j++)
    y[j] = y0[j] + dt2 * k2[j];
  dsdt(y, k3);
  for (int j = 0; j < 5; j++)
    y[j] = y0[j] + dt * k3[j];
  dsdt(y, k4);
  for (int j = 0; j < 4; j++)
    s[j] = y0[j] + dt / 6.0 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
  s[0] = wrap(s[0], -M_PI, M_PI);
  s[1] = wrap(s[1], -M_PI, M_PI);
  s[2] = fmin(fmax(s[2], -4 * M_PI), 4 * M_PI);
  s[3] = fmin(fmax(s[3], -9 * M_PI), 9 * M_PI);
  return -cos(s[0]) - cos(s[1] + s[0]) > 1.0;
}

static void ref_obs(const double *s, double *o) {
  o[0] = cos(s[0]);
  o[1] = sin(s[0]);
  o[2] = cos(s[1]);
  o[3] = sin(s[1]);
  o[4] = s[2];
  o[5] = s[3];
}

static crl_env *make(int64_t n, int64_t max_steps) {
  crl_classic_options o = {.num_envs = n, .max_episode_steps = max_steps};
  crl_env *env = crl_acrobot_new(&o);
  CRL_CHECK_PTR(env);
  return env;
}

static void test_specs_reset(void **state) {
  (void)state;
  crl_env *env = make(8, 0);
  assert_string_equal(crl_env_name(env), "Acrobot-v1");
  assert_int_equal(crl_spec_n(crl_env_action_spec(env)), 3);
  crl_spec *obs = crl_spec_get(crl_env_observation_spec(env), "observation");
  assert_int_equal(crl_spec_shape(obs)[1], 6);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(obs), 4), 4 * M_PI, 1e-5);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(obs), 5), 9 * M_PI, 1e-5);
  assert_int_equal(crl__classic_of(env)->max_steps, 500);
  CRL_CHECK_OK(crl_check_env_specs(env, 200, 9));
  CRL_CHECK_OK(crl_check_env_specs(make(0, 0), 20, 9));
  crl_td *td = crl_env_reset(env, NULL);
  const float *o = f32(td, "observation");
  for (int i = 0; i < 8; i++) {
    double s[4], ob[6];
    CRL_CHECK_OK(crl__classic_get_state(env, i, s, NULL));
    for (int k = 0; k < 4; k++) {
      assert_true(s[k] >= -0.1 && s[k] <= 0.1);
      assert_true(s[k] == (double)(float)s[k]); /* float32, as Gymnasium */
    }
    ref_obs(s, ob);
    for (int k = 0; k < 6; k++)
      ASSERT_F32(o[6 * i + k], ob[k]);
  }
}

/* From reset-like and energetic states under fixed action sequences: each
 * step against the reference one-step map from the env's own state (to
 * double precision, so chaos does not matter), and a free-running
 * reference for the first 150 steps (to float precision). */
static void test_reference_trajectory(void **state) {
  (void)state;
  enum { N = 4, T = 500, FREE = 150 };
  crl_env *env = make(N, -1);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double ref[N][4] = {{0.05, -0.03, 0.01, 0.08},
                      {0.0, 0.0, 0.0, 0.0},
                      {2.5, -1.0, 3.0, -6.0},
                      {-3.1, 3.1, 12.0, -27.0}};
  for (int i = 0; i < N; i++)
    CRL_CHECK_OK(crl__classic_set_state(env, i, ref[i], 0));
  int terms = 0;
  bool free_run = true;
  for (int t = 0; t < T; t++) {
    int64_t a[N];
    a[0] = ref[0][2] >= 0 ? 2 : 0; /* pump energy: terminates */
    a[1] = (t / 7) % 3;
    a[2] = (t * 5 + 1) % 3;
    a[3] = 1;
    double before[N][4];
    for (int i = 0; i < N; i++)
      CRL_CHECK_OK(crl__classic_get_state(env, i, before[i], NULL));
    set_onehot(env, td, 3, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *obs = f32(td, "next/observation");
    const float *rew = f32(td, "next/reward");
    const uint8_t *term = u8(td, "next/terminated");
    const uint8_t *done = u8(td, "next/done");
    if (t == FREE) free_run = false;
    for (int i = 0; i < N; i++) {
      double one[4];
      memcpy(one, before[i], sizeof one);
      bool tm = ref_step(one, (int)a[i]);
      double after[4], ob[6];
      CRL_CHECK_OK(crl__classic_get_state(env, i, after, NULL));
      for (int k = 0; k < 4; k++)
        ASSERT_NEAR(after[k], one[k], 1e-11 * (1 + fabs(one[k])));
      assert_int_equal(term[i], tm);
      assert_int_equal(done[i], tm);
      assert_true(rew[i] == (tm ? 0.0f : -1.0f));
      ref_obs(after, ob);
      for (int k = 0; k < 6; k++)
        ASSERT_F32(obs[6 * i + k], ob[k]);
      if (free_run) {
        bool ft = ref_step(ref[i], (int)a[i]);
        ref_obs(ref[i], ob);
        for (int k = 0; k < 6; k++)
          ASSERT_F32(obs[6 * i + k], ob[k]);
        assert_int_equal(term[i], ft);
      } else {
        memcpy(ref[i], after, sizeof after);
      }
      if (tm) {
        terms++;
        double s[4] = {0.01 * i, -0.02, 0.0, 0.01};
        memcpy(ref[i], s, sizeof s);
        CRL_CHECK_OK(crl__classic_set_state(env, i, s, 0));
      }
    }
    td = crl_td_step_mdp(td, NULL);
  }
  assert_true(terms >= 2);
}

/* Wrapping angles several turns away and bounding the velocities. */
static void test_wrap_bound(void **state) {
  (void)state;
  crl_env *env = make(3, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double s[3][4] = {
      {40.0, -33.0, 0.0, 0.0}, {0.5, 0.2, 30.0, -100.0}, {M_PI, 0.0, 0.0, 0.0}};
  for (int i = 0; i < 3; i++)
    CRL_CHECK_OK(crl__classic_set_state(env, i, s[i], 0));
  int64_t a[3] = {1, 2, 1};
  set_onehot(env, td, 3, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  for (int i = 0; i < 3; i++) {
    double got[4];
    bool tm = ref_step(s[i], (int)a[i]);
    CRL_CHECK_OK(crl__classic_get_state(env, i, got, NULL));
    for (int k = 0; k < 4; k++)
      ASSERT_NEAR(got[k], s[i][k], 1e-9 * (1 + fabs(s[i][k])));
    assert_true(got[0] >= -M_PI && got[0] <= M_PI);
    assert_true(got[1] >= -M_PI && got[1] <= M_PI);
    assert_true(fabs(got[2]) <= 4 * M_PI && fabs(got[3]) <= 9 * M_PI);
    assert_int_equal(u8(td, "next/terminated")[i], tm);
  }
  /* env 2 starts pointing up: the tip is above the line */
  assert_int_equal(u8(td, "next/terminated")[2], 1);
  assert_true(f32(td, "next/reward")[2] == 0.0f);
}

static void test_truncation_reset_seed(void **state) {
  (void)state;
  enum { N = 3 };
  crl_classic_options o = {.num_envs = N, .seed = 21};
  crl_env *env = crl_acrobot_new(&o);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  float first[N * 6];
  memcpy(first, f32(td, "observation"), sizeof first);
  for (int t = 1; t <= 500; t++) {
    int64_t a[N] = {1, 1, 1}; /* no torque: hangs, never terminates */
    set_onehot(env, td, 3, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const uint8_t *tr = u8(td, "next/truncated");
    for (int i = 0; i < N; i++) {
      assert_int_equal(u8(td, "next/terminated")[i], 0);
      assert_int_equal(tr[i], t == 500);
    }
    td = crl_td_step_mdp(td, NULL);
  }
  state_snap before, after;
  snap(env, &before);
  bool m[N] = {false, true, false};
  set_reset_mask(td, N, m);
  CRL_CHECK_PTR(crl_env_reset(env, td));
  snap(env, &after);
  assert_memory_equal(after.s[0], before.s[0], sizeof after.s[0]);
  assert_memory_equal(after.s[2], before.s[2], sizeof after.s[2]);
  assert_int_equal(after.steps[0], 500);
  assert_int_equal(after.steps[1], 0);
  /* reseeding replays the first reset */
  CRL_CHECK_OK(crl_env_seed(env, 21));
  crl_td *again = crl_env_reset(env, NULL);
  assert_memory_equal(f32(again, "observation"), first, sizeof first);
  /* bad actions leave the state alone */
  snap(env, &before);
  CRL_CHECK_OK(
      crl_td_set(again, "action", crl_zeros(CRL_INT64, CRL_SHAPE(N, 3))));
  assert_int_not_equal(crl_env_step(env, again), 0);
  CRL_CHECK_OK(
      crl_td_set(again, "action", crl_zeros(CRL_INT64, CRL_SHAPE(N, 2))));
  assert_int_equal(crl_env_step(env, again), CRL_ESHAPE);
  snap(env, &after);
  assert_same_snap(&before, &after);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_specs_reset),
      CRL_TEST(test_reference_trajectory),
      CRL_TEST(test_wrap_bound),
      CRL_TEST(test_truncation_reset_seed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
