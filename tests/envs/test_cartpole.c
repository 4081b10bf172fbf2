/* CartPole-v1 against a reference implementation of Gymnasium's equations
 * (classic_control/cartpole.py), specs, termination, truncation, partial
 * reset, seeding and action validation. */
#include "classic_test_util.h"

/* ---- reference: Gymnasium's CartPoleEnv.step in double precision -------- */

typedef struct {
  double x, x_dot, theta, theta_dot;
} cp_state;

static bool ref_step(cp_state *s, int action) {
  const double gravity = 9.8, masscart = 1.0, masspole = 0.1;
  const double total_mass = masspole + masscart, length = 0.5;
  const double polemass_length = masspole * length, force_mag = 10.0;
  const double tau = 0.02, theta_threshold = 12 * 2 * M_PI / 360;
  double force = action == 1 ? force_mag : -force_mag;
  double costheta = cos(s->theta), sintheta = sin(s->theta);
  double temp =
      (force + polemass_length * pow(s->theta_dot, 2) * sintheta) / total_mass;
  double thetaacc =
      (gravity * sintheta - costheta * temp) /
      (length * (4.0 / 3.0 - masspole * pow(costheta, 2) / total_mass));
  double xacc = temp - polemass_length * thetaacc * costheta / total_mass;
  s->x = s->x + tau * s->x_dot;
  s->x_dot = s->x_dot + tau * xacc;
  s->theta = s->theta + tau * s->theta_dot;
  s->theta_dot = s->theta_dot + tau * thetaacc;
  return s->x < -2.4 || s->x > 2.4 || s->theta < -theta_threshold ||
         s->theta > theta_threshold;
}

static void assert_state_close(const double *got, const cp_state *want) {
  const double w[4] = {want->x, want->x_dot, want->theta, want->theta_dot};
  for (int k = 0; k < 4; k++)
    ASSERT_NEAR(got[k], w[k], 1e-12 * (1 + fabs(w[k])));
}

static crl_env *make(int64_t n, int64_t max_steps) {
  crl_classic_options o = {.num_envs = n, .max_episode_steps = max_steps};
  crl_env *env = crl_cartpole_new(&o);
  CRL_CHECK_PTR(env);
  return env;
}

/* ---- tests --------------------------------------------------------------- */

static void test_specs(void **state) {
  (void)state;
  crl_env *env = make(4, 0);
  assert_string_equal(crl_env_name(env), "CartPole-v1");
  crl_spec *obs = crl_spec_get(crl_env_observation_spec(env), "observation");
  CRL_CHECK_PTR(obs);
  assert_int_equal(crl_spec_ndim(obs), 2);
  assert_int_equal(crl_spec_shape(obs)[0], 4);
  assert_int_equal(crl_spec_shape(obs)[1], 4);
  assert_int_equal(crl_spec_dtype(obs), CRL_FLOAT32);
  crl_tensor *hi = crl_spec_high(obs);
  CRL_CHECK_PTR(hi);
  ASSERT_NEAR(crl_tensor_get_flat(hi, 0), 4.8, 1e-6);
  ASSERT_NEAR(crl_tensor_get_flat(hi, 2), 24 * M_PI / 180, 1e-6);
  crl_spec *act = crl_env_action_spec(env);
  assert_int_equal(crl_spec_kind_of(act), CRL_SPEC_ONE_HOT);
  assert_int_equal(crl_spec_n(act), 2);
  assert_int_equal(crl_spec_dtype(act), CRL_INT64);
  assert_int_equal(crl_spec_shape(act)[0], 4);
  assert_int_equal(crl_spec_shape(act)[1], 2);
  crl_spec *rew = crl_env_reward_spec(env);
  assert_int_equal(crl_spec_dtype(rew), CRL_FLOAT32);
  assert_int_equal(crl_spec_ndim(rew), 2);
  assert_true(crl_spec_contains(crl_env_done_spec(env), "terminated"));
  CRL_CHECK_OK(crl_check_env_specs(env, 50, 1));
  /* a single env has batch [] */
  crl_env *one = make(0, 0);
  assert_int_equal(crl_env_batch_ndim(one), 0);
  assert_int_equal(crl_spec_ndim(crl_env_action_spec(one)), 1);
  CRL_CHECK_OK(crl_check_env_specs(one, 50, 2));
  crl_td *td = crl_env_reset(one, NULL);
  CRL_CHECK_PTR(td);
  assert_int_equal(crl_td_get(td, "observation")->ndim, 1);
}

static void test_bad_options(void **state) {
  (void)state;
  crl_classic_options o = {.num_envs = -1};
  assert_null(crl_cartpole_new(&o));
  CRL_ASSERT_ERR_HAS("num_envs -1");
  o = (crl_classic_options){.render_width = 5000};
  assert_null(crl_cartpole_new(&o));
  CRL_ASSERT_ERR_HAS("render size");
  o = (crl_classic_options){.pixels_only = true};
  assert_null(crl_cartpole_new(&o));
  CRL_ASSERT_ERR_HAS("pixels_only requires from_pixels");
  o = (crl_classic_options){.max_episode_steps = -2};
  assert_null(crl_cartpole_new(&o));
  CRL_ASSERT_ERR_HAS("max_episode_steps");
  assert_null(crl_classic_make("CartPole-v0", NULL));
  CRL_ASSERT_ERR_HAS("CartPole-v1");
  crl_env *env = crl_classic_make("CartPole-v1", NULL);
  CRL_CHECK_PTR(env);
  assert_int_equal(crl__classic_of(env)->max_steps, 500);
}

/* Trajectories from fixed states under fixed action sequences: every step
 * matches the reference one-step map from the env's own state (to double
 * precision) and a free-running reference (to float precision). */
static void test_reference_trajectory(void **state) {
  (void)state;
  enum { N = 3, T = 300 };
  crl_env *env = make(N, -1);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  const cp_state init[N] = {{0.01, -0.02, 0.03, 0.01},
                            {-1.0, 0.5, -0.05, 0.2},
                            {0.5, 0.0, 0.1, -0.3}};
  cp_state ref[N];
  for (int i = 0; i < N; i++) {
    ref[i] = init[i];
    CRL_CHECK_OK(crl__classic_set_state(env, i, (const double *)&init[i], 0));
  }
  int episodes = 0, terminations = 0;
  for (int t = 0; t < T; t++) {
    int64_t a[N];
    /* env 0: a balancing controller (long episodes); 1, 2: patterns */
    a[0] = ref[0].theta + 0.5 * ref[0].theta_dot > 0;
    a[1] = (t * 7 + 3) % 5 < 2;
    a[2] = (t / 3) % 2;
    double before[N][4];
    for (int i = 0; i < N; i++)
      CRL_CHECK_OK(crl__classic_get_state(env, i, before[i], NULL));
    set_onehot(env, td, 2, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const float *obs = f32(td, "next/observation");
    const float *rew = f32(td, "next/reward");
    const uint8_t *term = u8(td, "next/terminated");
    const uint8_t *done = u8(td, "next/done");
    const uint8_t *trunc = u8(td, "next/truncated");
    for (int i = 0; i < N; i++) {
      cp_state one = {before[i][0], before[i][1], before[i][2], before[i][3]};
      bool want_term = ref_step(&one, (int)a[i]);
      double after[4];
      CRL_CHECK_OK(crl__classic_get_state(env, i, after, NULL));
      assert_state_close(after, &one);
      assert_int_equal(term[i], want_term);
      assert_int_equal(done[i], want_term);
      assert_int_equal(trunc[i], 0);
      assert_true(rew[i] == 1.0f);
      ref_step(&ref[i], (int)a[i]);
      ASSERT_F32(obs[4 * i + 0], ref[i].x);
      ASSERT_F32(obs[4 * i + 1], ref[i].x_dot);
      ASSERT_F32(obs[4 * i + 2], ref[i].theta);
      ASSERT_F32(obs[4 * i + 3], ref[i].theta_dot);
      assert_true(obs[4 * i] == (float)after[0]);
      if (want_term) { /* start a new episode from a fixed state */
        terminations++;
        ref[i] = (cp_state){0.02 * (i + 1), 0.0, -0.01 * i, 0.05};
        CRL_CHECK_OK(
            crl__classic_set_state(env, i, (const double *)&ref[i], 0));
        episodes++;
      }
    }
    crl_td *nxt = crl_td_step_mdp(td, NULL);
    CRL_CHECK_PTR(nxt);
    td = nxt;
  }
  assert_true(terminations >= 5); /* the patterns fall over */
  double s0[4];
  CRL_CHECK_OK(crl__classic_get_state(env, 0, s0, NULL));
  (void)episodes;
}

static void test_termination_reward(void **state) {
  (void)state;
  crl_env *env = make(2, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  /* env 0 leaves the track (x 2.39 + 0.02 * 1), env 1 tips over (theta
   * 0.2094 + 0.02 * 0.1 > 12 degrees) */
  double s0[4] = {2.39, 1.0, 0.0, 0.0}, s1[4] = {0.0, 0.0, 0.2094, 0.1};
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s0, 0));
  CRL_CHECK_OK(crl__classic_set_state(env, 1, s1, 0));
  int64_t a[2] = {1, 0}; /* push each further out */
  set_onehot(env, td, 2, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  const uint8_t *term = u8(td, "next/terminated");
  const float *rew = f32(td, "next/reward");
  assert_int_equal(term[0], 1);
  assert_int_equal(term[1], 1);
  assert_true(rew[0] == 1.0f && rew[1] == 1.0f); /* the falling step pays 1 */
  /* stepping on without a reset pays 0 (Gymnasium's steps_beyond) */
  CRL_CHECK_OK(crl_env_step(env, td));
  term = u8(td, "next/terminated");
  rew = f32(td, "next/reward");
  assert_int_equal(term[0], 1);
  assert_true(rew[0] == 0.0f && rew[1] == 0.0f);
  /* just inside the bounds: not terminated */
  double s2[4] = {2.37, 1.0, 0.0, 0.0}; /* x = 2.39 */
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s2, 0));
  CRL_CHECK_OK(crl_env_step(env, td));
  assert_int_equal(u8(td, "next/terminated")[0], 0);
  assert_true(f32(td, "next/reward")[0] == 1.0f);
}

static void test_truncation(void **state) {
  (void)state;
  crl_env *env = make(2, 5);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  double z[4] = {0, 0, 0, 0};
  for (int i = 0; i < 2; i++)
    CRL_CHECK_OK(crl__classic_set_state(env, i, z, 0));
  for (int t = 1; t <= 5; t++) {
    int64_t a[2] = {t % 2, (t + 1) % 2};
    set_onehot(env, td, 2, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    const uint8_t *tr = u8(td, "next/truncated");
    const uint8_t *dn = u8(td, "next/done");
    const uint8_t *te = u8(td, "next/terminated");
    for (int i = 0; i < 2; i++) {
      assert_int_equal(te[i], 0);
      assert_int_equal(tr[i], t == 5);
      assert_int_equal(dn[i], t == 5);
    }
  }
  /* a reset starts a new count */
  crl_td *td2 = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td2);
  int64_t steps;
  CRL_CHECK_OK(crl__classic_get_state(env, 1, NULL, &steps));
  assert_int_equal(steps, 0);
  /* the default limit is Gymnasium's 500 */
  crl_env *d = make(1, 0);
  assert_int_equal(crl__classic_of(d)->max_steps, 500);
}

static void test_partial_reset(void **state) {
  (void)state;
  enum { N = 4 };
  crl_env *env = make(N, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  for (int t = 0; t < 3; t++) {
    int64_t a[N] = {0, 1, 0, 1};
    set_onehot(env, td, 2, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    td = crl_td_step_mdp(td, NULL);
    CRL_CHECK_PTR(td);
  }
  state_snap before, after;
  snap(env, &before);
  float obs_before[N * 4];
  memcpy(obs_before, f32(td, "observation"), sizeof obs_before);
  bool m[N] = {true, false, true, false};
  set_reset_mask(td, N, m);
  CRL_CHECK_PTR(crl_env_reset(env, td));
  assert_false(crl_td_contains(td, "_reset"));
  snap(env, &after);
  const float *obs = f32(td, "observation");
  for (int i = 0; i < N; i++) {
    if (m[i]) {
      assert_int_equal(after.steps[i], 0);
      for (int k = 0; k < 4; k++) {
        assert_true(after.s[i][k] >= -0.05 && after.s[i][k] < 0.05);
        assert_true(after.s[i][k] != before.s[i][k]);
        assert_true(obs[4 * i + k] == (float)after.s[i][k]);
      }
    } else {
      assert_int_equal(after.steps[i], 3);
      assert_memory_equal(after.s[i], before.s[i], sizeof after.s[i]);
      assert_memory_equal(obs + 4 * i, obs_before + 4 * i, 4 * sizeof(float));
    }
  }
}

static void test_seeding(void **state) {
  (void)state;
  crl_classic_options o = {.num_envs = 4, .seed = 7};
  crl_env *a = crl_cartpole_new(&o);
  crl_env *b = crl_cartpole_new(&o);
  o.num_envs = 8;
  crl_env *c = crl_cartpole_new(&o);
  o.seed = 8;
  crl_env *d = crl_cartpole_new(&o);
  CRL_CHECK_PTR(a);
  CRL_CHECK_PTR(b);
  CRL_CHECK_PTR(c);
  CRL_CHECK_PTR(d);
  crl_td *ta = crl_env_reset(a, NULL), *tb = crl_env_reset(b, NULL);
  crl_td *tc = crl_env_reset(c, NULL), *tdd = crl_env_reset(d, NULL);
  assert_memory_equal(f32(ta, "observation"), f32(tb, "observation"), 64);
  /* envs 0..3 of a batch of 8 reset as a batch of 4 does */
  assert_memory_equal(f32(ta, "observation"), f32(tc, "observation"), 64);
  assert_memory_not_equal(f32(tc, "observation"), f32(tdd, "observation"), 128);
  /* reseeding replays; a second reset draws new states */
  crl_td *t2 = crl_env_reset(a, NULL);
  assert_memory_not_equal(f32(ta, "observation"), f32(t2, "observation"), 64);
  CRL_CHECK_OK(crl_env_seed(a, 7));
  crl_td *t3 = crl_env_reset(a, NULL);
  assert_memory_equal(f32(ta, "observation"), f32(t3, "observation"), 64);
  /* rollouts with random actions replay bit for bit */
  crl_rollout_options ro = {.max_steps = 60, .auto_reset = true};
  CRL_CHECK_OK(crl_env_seed(a, 3));
  CRL_CHECK_OK(crl_env_seed(b, 3));
  crl_td *ra = crl_env_rollout(a, &ro), *rb = crl_env_rollout(b, &ro);
  CRL_CHECK_PTR(ra);
  CRL_CHECK_PTR(rb);
  assert_true(crl_td_equal(ra, rb));
}

static void test_bad_actions(void **state) {
  (void)state;
  enum { N = 3 };
  crl_env *env = make(N, 0);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  int64_t a[N] = {0, 1, 1};
  set_onehot(env, td, 2, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  float next_obs[N * 4];
  memcpy(next_obs, f32(td, "next/observation"), sizeof next_obs);
  state_snap before, after;
  snap(env, &before);
  /* not one-hot (an index out of range, as two ones or none) */
  crl_tensor *bad = crl_zeros(CRL_INT64, CRL_SHAPE(N, 2));
  crl_tensor_set_flat(bad, 0, 1);
  crl_tensor_set_flat(bad, 1, 1); /* env 0: two ones */
  crl_tensor_set_flat(bad, 3, 1);
  crl_tensor_set_flat(bad, 5, 2); /* env 2: value 2 */
  CRL_CHECK_OK(crl_td_set(td, "action", bad));
  assert_int_not_equal(crl_env_step(env, td), 0);
  CRL_ASSERT_ERR_HAS("action");
  snap(env, &after);
  assert_same_snap(&before, &after);
  assert_memory_equal(f32(td, "next/observation"), next_obs, sizeof next_obs);
  /* wrong shape: [N, 3] */
  CRL_CHECK_OK(crl_td_set(td, "action", crl_zeros(CRL_INT64, CRL_SHAPE(N, 3))));
  assert_int_equal(crl_env_step(env, td), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3, 3]");
  CRL_ASSERT_ERR_HAS("[3, 2]");
  /* wrong dtype: float one-hot */
  crl_tensor *fa = crl_zeros(CRL_FLOAT32, CRL_SHAPE(N, 2));
  for (int i = 0; i < N; i++)
    crl_tensor_set_flat(fa, 2 * i, 1);
  CRL_CHECK_OK(crl_td_set(td, "action", fa));
  assert_int_equal(crl_env_step(env, td), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float32");
  /* missing action */
  CRL_CHECK_OK(crl_td_del(td, "action"));
  assert_int_equal(crl_env_step(env, td), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'action'");
  snap(env, &after);
  assert_same_snap(&before, &after);
  assert_memory_equal(f32(td, "next/observation"), next_obs, sizeof next_obs);
  /* and the env still steps afterwards */
  set_onehot(env, td, 2, a);
  CRL_CHECK_OK(crl_env_step(env, td));
}

/* Large angles (a pole spinning after termination) use libm's sin/cos and
 * still match the reference. */
static void test_large_angle(void **state) {
  (void)state;
  crl_env *env = make(2, -1);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  cp_state s[2] = {{0, 0, 3.0e6, 1.0}, {0, 0, 123.4, -2.0}};
  for (int i = 0; i < 2; i++)
    CRL_CHECK_OK(crl__classic_set_state(env, i, (const double *)&s[i], 0));
  int64_t a[2] = {1, 0};
  set_onehot(env, td, 2, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  for (int i = 0; i < 2; i++) {
    ref_step(&s[i], (int)a[i]);
    double got[4];
    CRL_CHECK_OK(crl__classic_get_state(env, i, got, NULL));
    assert_state_close(got, &s[i]);
  }
}

/* The inline sincos used by the step loops against libm. */
static void test_sincos(void **state) {
  (void)state;
  double worst = 0;
  for (int k = -200000; k <= 200000; k++) {
    double x = k * 0.000731 + (k % 7) * 1e-9;
    double s, c;
    crl__sincos(x, &s, &c);
    worst = fmax(worst, fabs(s - sin(x)));
    worst = fmax(worst, fabs(c - cos(x)));
  }
  for (int k = 0; k < 2000; k++) {
    double x = (k - 1000) * 1047.19755; /* up to ~1e6, near multiples */
    double s, c;
    crl__sincos(x, &s, &c);
    worst = fmax(worst, fabs(s - sin(x)));
    worst = fmax(worst, fabs(c - cos(x)));
  }
  assert_true(worst < 5e-16);
  double s, c;
  crl__sincos(0.0, &s, &c);
  assert_true(s == 0.0 && c == 1.0);
  crl__sincos(NAN, &s, &c);
  assert_true(isnan(s) && isnan(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_specs),
      CRL_TEST(test_bad_options),
      CRL_TEST(test_reference_trajectory),
      CRL_TEST(test_termination_reward),
      CRL_TEST(test_truncation),
      CRL_TEST(test_partial_reset),
      CRL_TEST(test_seeding),
      CRL_TEST(test_bad_actions),
      CRL_TEST(test_large_angle),
      CRL_TEST(test_sincos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
