/* MountainCar-v0 and MountainCarContinuous-v0 against reference
 * implementations of Gymnasium's equations (classic_control/mountain_car.py,
 * continuous_mountain_car.py): dynamics, walls, goal, rewards, time limits,
 * specs, partial reset, seeding, validation. */
#include "classic_test_util.h"

/* ---- references (double precision) --------------------------------------- */

static bool ref_step(double *pos, double *vel, int action) {
  double position = *pos, velocity = *vel;
  velocity += (action - 1) * 0.001 + cos(3 * position) * (-0.0025);
  velocity = fmin(fmax(velocity, -0.07), 0.07);
  position += velocity;
  position = fmin(fmax(position, -1.2), 0.6);
  if (position == -1.2 && velocity < 0) velocity = 0;
  *pos = position;
  *vel = velocity;
  return position >= 0.5 && velocity >= 0;
}

/* returns the reward; the state is stored as float32 as Gymnasium does */
static double ref_step_cont(double *pos, double *vel, float action,
                            bool *terminated) {
  double position = *pos, velocity = *vel;
  double force = fmin(fmax((double)action, -1.0), 1.0);
  velocity += force * 0.0015 - 0.0025 * cos(3 * position);
  if (velocity > 0.07) velocity = 0.07;
  if (velocity < -0.07) velocity = -0.07;
  position += velocity;
  if (position > 0.6) position = 0.6;
  if (position < -1.2) position = -1.2;
  if (position == -1.2 && velocity < 0) velocity = 0;
  *terminated = position >= 0.45 && velocity >= 0;
  double reward = *terminated ? 100.0 : 0;
  reward -= pow((double)action, 2) * 0.1;
  *pos = (float)position;
  *vel = (float)velocity;
  return reward;
}

static crl_env *make(bool cont, int64_t n, int64_t max_steps) {
  crl_classic_options o = {.num_envs = n, .max_episode_steps = max_steps};
  crl_env *env =
      cont ? crl_mountain_car_continuous_new(&o) : crl_mountain_car_new(&o);
  CRL_CHECK_PTR(env);
  return env;
}

static void test_specs(void **state) {
  (void)state;
  crl_env *env = make(false, 3, 0);
  assert_string_equal(crl_env_name(env), "MountainCar-v0");
  crl_spec *act = crl_env_action_spec(env);
  assert_int_equal(crl_spec_kind_of(act), CRL_SPEC_ONE_HOT);
  assert_int_equal(crl_spec_n(act), 3);
  crl_spec *obs = crl_spec_get(crl_env_observation_spec(env), "observation");
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_low(obs), 0), -1.2, 1e-6);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(obs), 1), 0.07, 1e-6);
  assert_int_equal(crl__classic_of(env)->max_steps, 200);
  CRL_CHECK_OK(crl_check_env_specs(env, 250, 3));
  crl_env *c = make(true, 3, 0);
  assert_string_equal(crl_env_name(c), "MountainCarContinuous-v0");
  act = crl_env_action_spec(c);
  assert_int_equal(crl_spec_kind_of(act), CRL_SPEC_BOUNDED);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_low(act), 0), -1.0, 0);
  assert_int_equal(crl__classic_of(c)->max_steps, 999);
  CRL_CHECK_OK(crl_check_env_specs(c, 250, 3));
  CRL_CHECK_OK(crl_check_env_specs(make(false, 0, 0), 20, 1));
  CRL_CHECK_OK(crl_check_env_specs(make(true, 0, 0), 20, 1));
}

static void test_reference_discrete(void **state) {
  (void)state;
  enum { N = 4, T = 200 };
  crl_env *env = make(false, N, -1);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double pos[N] = {-0.5, -1.1, 0.3, -0.52}, vel[N] = {0, -0.06, 0.05, 0.0};
  for (int i = 0; i < N; i++) {
    double s[2] = {pos[i], vel[i]};
    CRL_CHECK_OK(crl__classic_set_state(env, i, s, 0));
  }
  int terms = 0, walls = 0;
  for (int t = 0; t < T; t++) {
    int64_t a[N];
    a[0] = (t / 20) % 2 ? 2 : 0; /* swing */
    a[1] = 0;                    /* push into the left wall */
    a[2] = 2;
    a[3] = vel[3] >= 0 ? 2 : 0; /* energy pumping: reaches the goal */
    double before[N][2];
    for (int i = 0; i < N; i++)
      CRL_CHECK_OK(crl__classic_get_state(env, i, before[i], NULL));
    set_onehot(env, td, 3, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *obs = f32(td, "next/observation");
    const float *rew = f32(td, "next/reward");
    const uint8_t *term = u8(td, "next/terminated");
    for (int i = 0; i < N; i++) {
      double p = before[i][0], v = before[i][1];
      bool tm = ref_step(&p, &v, (int)a[i]);
      double after[2];
      CRL_CHECK_OK(crl__classic_get_state(env, i, after, NULL));
      ASSERT_NEAR(after[0], p, 1e-13);
      ASSERT_NEAR(after[1], v, 1e-13);
      assert_int_equal(term[i], tm);
      assert_true(rew[i] == -1.0f);
      ref_step(&pos[i], &vel[i], (int)a[i]);
      ASSERT_F32(obs[2 * i], pos[i]);
      ASSERT_F32(obs[2 * i + 1], vel[i]);
      if (after[0] == -1.2) {
        walls++;
        assert_true(after[1] >= 0); /* inelastic wall */
      }
      if (tm) { /* new episode from a fixed state */
        terms++;
        pos[i] = -0.45;
        vel[i] = 0;
        double s[2] = {pos[i], vel[i]};
        CRL_CHECK_OK(crl__classic_set_state(env, i, s, 0));
      }
    }
    td = crl_td_step_mdp(td, NULL);
  }
  assert_true(terms >= 2);
  assert_true(walls >= 1);
}

static void test_reference_continuous(void **state) {
  (void)state;
  enum { N = 3, T = 300 };
  crl_env *env = make(true, N, -1);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double pos[N], vel[N];
  for (int i = 0; i < N; i++) { /* the reset state itself is float64 */
    double s[2];
    CRL_CHECK_OK(crl__classic_get_state(env, i, s, NULL));
    assert_true(s[0] >= -0.6 && s[0] < -0.4 && s[1] == 0);
    assert_true(f32(td, "observation")[2 * i] == (float)s[0]);
    pos[i] = s[0];
    vel[i] = s[1];
  }
  int terms = 0;
  for (int t = 0; t < T; t++) {
    /* beyond the bounds too: clipped force, unclipped reward */
    double u[N] = {vel[0] >= 0 ? 1.7 : -1.7, 0.9 * sin(0.05 * t),
                   vel[2] >= 0 ? 1.0 : -0.25};
    set_cont(env, td, u);
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *obs = f32(td, "next/observation");
    const float *rew = f32(td, "next/reward");
    const uint8_t *term = u8(td, "next/terminated");
    for (int i = 0; i < N; i++) {
      bool tm;
      double r = ref_step_cont(&pos[i], &vel[i], (float)u[i], &tm);
      ASSERT_F32(rew[i], r);
      assert_int_equal(term[i], tm);
      /* float32 state: exact */
      ASSERT_NEAR(obs[2 * i], pos[i], 1e-7);
      ASSERT_NEAR(obs[2 * i + 1], vel[i], 1e-8);
      if (tm) {
        terms++;
        pos[i] = -0.5;
        vel[i] = 0;
        double s[2] = {pos[i], vel[i]};
        CRL_CHECK_OK(crl__classic_set_state(env, i, s, 0));
      }
    }
    td = crl_td_step_mdp(td, NULL);
  }
  assert_true(terms >= 2);
}

static void test_goal_wall_values(void **state) {
  (void)state;
  crl_env *env = make(false, 2, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double s0[2] = {0.49, 0.02}, s1[2] = {-1.19, -0.05};
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s0, 0));
  CRL_CHECK_OK(crl__classic_set_state(env, 1, s1, 0));
  int64_t a[2] = {2, 0};
  set_onehot(env, td, 3, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  const uint8_t *term = u8(td, "next/terminated");
  const float *obs = f32(td, "next/observation");
  assert_int_equal(term[0], 1);
  assert_int_equal(term[1], 0);
  assert_true(obs[2] == -1.2f && obs[3] == 0.0f); /* wall: velocity zeroed */
  /* continuous: the goal pays 100 minus 0.1 a^2 of the raw action */
  crl_env *c = make(true, 1, 0);
  crl_td *tc = crl_env_reset(c, NULL);
  double sc[2] = {0.44, 0.03};
  CRL_CHECK_OK(crl__classic_set_state(c, 0, sc, 0));
  double u[1] = {3.0};
  set_cont(c, tc, u);
  CRL_CHECK_OK(crl_env_step(c, tc));
  assert_int_equal(u8(tc, "next/terminated")[0], 1);
  ASSERT_F32(f32(tc, "next/reward")[0], 100.0 - 0.9);
}

static void test_truncation_partial_reset(void **state) {
  (void)state;
  enum { N = 4 };
  crl_env *env = make(false, N, 200);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  for (int t = 1; t <= 200; t++) {
    int64_t a[N] = {1, 1, 1, 1}; /* never reaches the goal */
    set_onehot(env, td, 3, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const uint8_t *tr = u8(td, "next/truncated");
    const uint8_t *dn = u8(td, "next/done");
    for (int i = 0; i < N; i++) {
      assert_int_equal(tr[i], t == 200);
      assert_int_equal(dn[i], t == 200);
    }
    if (t == 100) { /* reset envs 0 and 3 halfway */
      td = crl_td_step_mdp(td, NULL);
      state_snap before, after;
      snap(env, &before);
      bool m[N] = {true, false, false, true};
      set_reset_mask(td, N, m);
      CRL_CHECK_PTR(crl_env_reset(env, td));
      snap(env, &after);
      for (int i = 0; i < N; i++) {
        if (m[i]) {
          assert_int_equal(after.steps[i], 0);
          assert_true(after.s[i][0] >= -0.6 && after.s[i][0] < -0.4);
          assert_true(after.s[i][1] == 0);
        } else {
          assert_memory_equal(after.s[i], before.s[i], sizeof after.s[i]);
          assert_int_equal(after.steps[i], 100);
        }
      }
      /* run the reset envs to their own limit later: 100 more steps for
       * envs 1, 2; set the counters of 0, 3 back to 100 to keep going */
      for (int i = 0; i < N; i += 3)
        CRL_CHECK_OK(crl__classic_set_state(env, i, after.s[i], 100));
    }
  }
}

static void test_seeding_and_errors(void **state) {
  (void)state;
  crl_classic_options o = {.num_envs = 3, .seed = 5};
  crl_env *a = crl_mountain_car_continuous_new(&o);
  o.num_envs = 5;
  crl_env *b = crl_mountain_car_continuous_new(&o);
  crl_td *ta = crl_env_reset(a, NULL), *tb = crl_env_reset(b, NULL);
  assert_memory_equal(f32(ta, "observation"), f32(tb, "observation"),
                      3 * 2 * sizeof(float));
  state_snap before, after;
  snap(a, &before);
  double bad[3] = {0.1, NAN, 0.2};
  set_cont(a, ta, bad);
  assert_int_equal(crl_env_step(a, ta), CRL_ENOTFINITE);
  snap(a, &after);
  assert_same_snap(&before, &after);
  /* discrete: index out of range */
  crl_env *d = make(false, 2, 0);
  crl_td *td = crl_env_reset(d, NULL);
  snap(d, &before);
  crl_tensor *x = crl_zeros(CRL_INT64, CRL_SHAPE(2, 3));
  crl_tensor_set_flat(x, 0, 1);
  crl_tensor_set_flat(x, 4, 3);
  CRL_CHECK_OK(crl_td_set(td, "action", x));
  assert_int_not_equal(crl_env_step(d, td), 0);
  CRL_ASSERT_ERR_HAS("action");
  snap(d, &after);
  assert_same_snap(&before, &after);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_specs),
      CRL_TEST(test_reference_discrete),
      CRL_TEST(test_reference_continuous),
      CRL_TEST(test_goal_wall_values),
      CRL_TEST(test_truncation_partial_reset),
      CRL_TEST(test_seeding_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
