/* Exploration wrappers: EGreedy, AdditiveGaussian, Ornstein-Uhlenbeck. */
#include "modules_test_util.h"

/* a deterministic policy writing the constant action `value` [n, k] */
typedef struct {
  double value;
  int k;
  crl_dtype dt;
} const_ctx;

static int const_action(void *ctx, int nin, crl_tensor *const *in, int nout,
                        crl_tensor **out) {
  (void)nin, (void)nout;
  const_ctx *c = ctx;
  out[0] = crl_full(c->dt, CRL_SHAPE(in[0]->shape[0], c->k), c->value);
  return out[0] ? 0 : -1;
}

static crl_tdmodule *const_policy(const_ctx *c) {
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_td_module_fn_new(const_action, c, 1, in, 1, out);
  if (!m) fail_msg("fn_new: %s", crl_last_error());
  return m;
}

static crl_td *obs_td(int64_t n) {
  return td_with(n, "observation", crl_zeros(CRL_FLOAT32, CRL_SHAPE(n, 3)));
}

/* ---- EGreedy ------------------------------------------------------------- */

static void test_egreedy_one_hot(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  /* a QValueActor whose greedy action is always 0 */
  crl_module *net =
      linear_with(3, 4, (float[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                  (float[]){5, 0, 0, 0});
  crl_spec *spec = crl_spec_one_hot(4, CRL_INT64, CRL_SHAPE(4));
  crl_tdmodule *q = crl_qvalue_actor_new(net, 0, NULL, spec);
  crl_tdmodule *e = crl_egreedy_wrapper_new(q, 0.4, 0.1, 100, spec);
  CRL_CHECK_PTR(e);
  assert_string_equal(crl_tdmodule_name(e), "EGreedyWrapper");
  /* the policy's keys and parameters */
  assert_int_equal(crl_tdmodule_num_out_keys(e), 3);
  assert_ptr_equal(crl_tdmodule_params(e), crl_tdmodule_params(q));
  ASSERT_NEAR(crl_exploration_value(e), 0.4, 1e-12);
  int64_t n = 20000;
  crl_td *td = obs_td(n);
  /* MODE: the greedy action everywhere */
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(e, td, NULL));
  crl_exploration_end();
  crl_tensor *a = crl_td_get(td, "action");
  crl_tensor *greedy = crl_clone(a);
  assert_int_equal((int64_t)crl_sum_value(crl_select(a, 1, 0)), n);
  /* RANDOM: about eps * (n - 1) / n of the rows change */
  crl_tdmodule_seed(e, 5);
  CRL_CHECK_OK(crl_tdmodule_forward(e, td, NULL));
  a = crl_td_get(td, "action");
  assert_int_equal(a->dtype, CRL_INT64);
  assert_true(crl_spec_is_in(spec, a));
  double changed = 1.0 - crl_sum_value(crl_select(a, 1, 0)) / (double)n;
  ASSERT_NEAR(changed, 0.4 * 3 / 4, 0.015);
  /* each random category about equally often */
  for (int c = 1; c < 4; c++)
    ASSERT_NEAR(crl_sum_value(crl_select(a, 1, c)) / (double)n, 0.1, 0.012);
  (void)greedy;
  /* annealing */
  CRL_CHECK_OK(crl_exploration_step(e, 50));
  ASSERT_NEAR(crl_exploration_value(e), 0.25, 1e-12);
  CRL_CHECK_OK(crl_exploration_step(e, 25));
  ASSERT_NEAR(crl_exploration_value(e), 0.175, 1e-12);
  CRL_CHECK_OK(crl_exploration_step(e, 1000));
  ASSERT_NEAR(crl_exploration_value(e), 0.1, 1e-12);
  CRL_CHECK_OK(crl_tdmodule_forward(e, td, NULL));
  changed = 1.0 - crl_sum_value(crl_select(crl_td_get(td, "action"), 1, 0)) /
                      (double)n;
  ASSERT_NEAR(changed, 0.1 * 3 / 4, 0.01);
  /* eps 0: the policy's action */
  CRL_CHECK_OK(crl_exploration_set_annealing(e, 0, 0, 0));
  CRL_CHECK_OK(crl_tdmodule_forward(e, td, NULL));
  assert_true(crl_equal(crl_td_get(td, "action"), greedy));
}

static void test_egreedy_categorical_and_batch(void **state) {
  (void)state;
  /* batch [] env-style TensorDict with a discrete spec */
  crl_module *net = linear_with(3, 3, (float[]){0, 0, 0, 0, 0, 0, 0, 0, 0},
                                (float[]){0, 0, 1});
  crl_spec *spec = crl_spec_discrete(3, CRL_INT64, CRL_SCALAR);
  crl_tdmodule *q = crl_qvalue_actor_new(net, 0, NULL, spec);
  crl_tdmodule *e = crl_egreedy_wrapper_new(q, 1.0, 1.0, 0, spec);
  crl_td *td = td_with(0, "observation", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)));
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 600; i++) {
    CRL_CHECK_OK(crl_tdmodule_forward(e, td, NULL));
    crl_tensor *a = crl_td_get(td, "action");
    assert_int_equal(a->ndim, 0);
    int v = (int)crl_item(a);
    assert_true(v >= 0 && v < 3);
    counts[v]++;
  }
  for (int c = 0; c < 3; c++)
    assert_true(counts[c] > 140 && counts[c] < 260);
  /* no annealing: eps stays */
  crl_exploration_step(e, 1000);
  ASSERT_NEAR(crl_exploration_value(e), 1.0, 0);
  /* errors */
  assert_null(crl_egreedy_wrapper_new(q, 0.1, 0.5, 10, spec));
  CRL_ASSERT_ERR_HAS("decrease");
  assert_null(crl_egreedy_wrapper_new(q, 1.5, 0.5, 10, spec));
  assert_null(crl_egreedy_wrapper_new(q, 0.5, 0.1, -1, spec));
  assert_null(crl_egreedy_wrapper_new(q, 0.5, 0.1, 10, NULL));
  CRL_ASSERT_ERR_HAS("spec is required");
  crl_tdmodule *vo = crl_value_operator_new(
      linear_with(3, 1, (float[]){1, 1, 1}, (float[]){0}), 0, NULL, NULL);
  assert_null(crl_egreedy_wrapper_new(vo, 0.5, 0.1, 10, spec));
  CRL_ASSERT_ERR_HAS("does not write 'action'");
  assert_int_equal(crl_exploration_step(q, 1), CRL_EINVAL);
  assert_true(isnan(crl_exploration_value(q)));
  assert_int_equal(crl_exploration_step(e, -1), CRL_EINVAL);
  /* an actor's spec is used when none is given */
  crl_spec *box = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1, 1);
  crl_tdmodule *actor = crl_actor_new(
      linear_with(3, 2, (float[]){0, 0, 0, 0, 0, 0}, (float[]){0, 0}), 0, NULL,
      box);
  crl_tdmodule *ea = crl_egreedy_wrapper_new(actor, 1.0, 1.0, 0, NULL);
  CRL_CHECK_PTR(ea);
  crl_td *t2 = obs_td(500);
  CRL_CHECK_OK(crl_tdmodule_forward(ea, t2, NULL));
  crl_tensor *aa = crl_td_get(t2, "action");
  assert_true(crl_spec_is_in(box, aa));
  ASSERT_NEAR(crl_sum_value(crl_abs(aa)) / 1000, 0.5, 0.05);
}

/* ---- AdditiveGaussian ---------------------------------------------------- */

static void test_additive_gaussian(void **state) {
  (void)state;
  const_ctx c = {0.5, 2, CRL_FLOAT32};
  crl_tdmodule *pol = const_policy(&c);
  crl_spec *spec = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1, 1);
  crl_tdmodule *w = crl_additive_gaussian_wrapper_new(pol, 0.3, 0.1, 10, spec);
  CRL_CHECK_PTR(w);
  assert_string_equal(crl_tdmodule_name(w), "AdditiveGaussianWrapper");
  int64_t n = 20000;
  crl_td *td = obs_td(n);
  crl_exploration_begin(CRL_EXPLORATION_MEAN);
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_exploration_end();
  assert_true(crl_equal(crl_td_get(td, "action"),
                        crl_full(CRL_FLOAT32, CRL_SHAPE(n, 2), 0.5)));
  crl_tdmodule_seed(w, 3);
  crl_rng g = *crl_tdmodule_rng(w);
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  /* exactly clamp(0.5 + 0.3 * N(0, 1)) with the wrapper's draws */
  crl_tensor *noise = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(n, 2));
  crl_tensor *e =
      crl_clamp(crl_add_scalar(crl_mul_scalar(noise, 0.3), 0.5), -1, 1);
  assert_close(a, e, 1e-6);
  assert_true(crl_spec_is_in(spec, a));
  /* sample std of the unclipped part about sigma */
  crl_tensor *d = crl_sub_scalar(a, 0.5);
  double var = crl_sum_value(crl_mul(d, d)) / (2.0 * n);
  ASSERT_NEAR(sqrt(var), 0.3, 0.02);
  /* annealing 0.3 -> 0.1 over 10 steps */
  crl_exploration_step(w, 5);
  ASSERT_NEAR(crl_exploration_value(w), 0.2, 1e-12);
  crl_exploration_step(w, 5);
  ASSERT_NEAR(crl_exploration_value(w), 0.1, 1e-12);
  /* without spec: no projection */
  crl_tdmodule *w2 = crl_additive_gaussian_wrapper_new(pol, 5, 5, 0, NULL);
  CRL_CHECK_OK(crl_tdmodule_forward(w2, td, NULL));
  double mx = crl_item(crl_max_all(crl_td_get(td, "action")));
  assert_true(mx > 1);
  /* integer actions cannot take Gaussian noise */
  const_ctx ci = {1, 2, CRL_INT64};
  crl_tdmodule *w3 =
      crl_additive_gaussian_wrapper_new(const_policy(&ci), 1, 1, 0, NULL);
  assert_int_equal(crl_tdmodule_forward(w3, td, NULL), CRL_EDTYPE);
  /* a spec of the wrong shape */
  crl_spec *s3 = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), -1, 1);
  crl_tdmodule *w4 = crl_additive_gaussian_wrapper_new(pol, 1, 1, 0, s3);
  assert_int_equal(crl_tdmodule_forward(w4, td, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("spec's shape [3]");
}

/* ---- Ornstein-Uhlenbeck -------------------------------------------------- */

static void test_ou(void **state) {
  (void)state;
  const_ctx c = {0.25, 2, CRL_FLOAT64};
  crl_tdmodule *pol = const_policy(&c);
  crl_tdmodule *w = crl_ou_wrapper_new(pol, 0, 0, 0, NULL); /* defaults */
  CRL_CHECK_PTR(w);
  assert_string_equal(crl_tdmodule_name(w), "OrnsteinUhlenbeckProcessWrapper");
  assert_int_equal(crl_tdmodule_num_out_keys(w), 3);
  assert_string_equal(crl_tdmodule_out_key(w, 1), "_ou_prev_noise");
  assert_string_equal(crl_tdmodule_out_key(w, 2), "_ou_steps");
  ASSERT_NEAR(crl_exploration_value(w), 1.0, 0);
  double theta = 0.15, sigma = 0.2, dt = 0.01, sq = sqrt(dt);
  crl_td *td = obs_td(3);
  /* MODE: no noise, no state */
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_exploration_end();
  assert_false(crl_td_contains(td, "_ou_steps"));
  crl_tdmodule_seed(w, 11);
  crl_rng g = *crl_tdmodule_rng(w);
  /* step 1: noise = sigma sqrt(dt) w1 */
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_tensor *w1 = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(3, 2));
  crl_tensor *n1 = crl_mul_scalar(w1, sigma * sq);
  assert_close(crl_td_get(td, "_ou_prev_noise"), n1, 1e-12);
  assert_close(crl_td_get(td, "action"), crl_add_scalar(n1, 0.25), 1e-12);
  assert_tensor_values(crl_td_get(td, "_ou_steps"), (double[]){1, 1, 1}, 3, 0);
  assert_int_equal(crl_td_get(td, "_ou_steps")->dtype, CRL_INT64);
  /* step 2 with eps annealed to 0.5 (1.0 -> 0.1 over 1000: 500 steps... of
   * 0.9 / 1000 each) */
  crl_exploration_step(w, 500);
  double eps = 1.0 - 0.9 * 0.5;
  ASSERT_NEAR(crl_exploration_value(w), eps, 1e-12);
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_tensor *w2 = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(3, 2));
  crl_tensor *n2 = crl_add(crl_mul_scalar(n1, 1 - theta * dt),
                           crl_mul_scalar(w2, sigma * sq));
  assert_close(crl_td_get(td, "_ou_prev_noise"), n2, 1e-12);
  assert_close(crl_td_get(td, "action"),
               crl_add_scalar(crl_mul_scalar(n2, eps), 0.25), 1e-12);
  assert_tensor_values(crl_td_get(td, "_ou_steps"), (double[]){2, 2, 2}, 3, 0);
  /* is_init on row 1 ([batch, 1] as InitTracker writes it): that row
   * restarts from zero noise */
  crl_td_set(td, "is_init",
             crl_from_array(CRL_BOOL, CRL_SHAPE(3, 1), (uint8_t[]){0, 1, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(w, td, NULL));
  crl_tensor *w3 = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(3, 2));
  crl_tensor *n3 = crl_add(crl_mul_scalar(n2, 1 - theta * dt),
                           crl_mul_scalar(w3, sigma * sq));
  crl_tensor *fresh = crl_mul_scalar(w3, sigma * sq);
  crl_tensor *noise = crl_td_get(td, "_ou_prev_noise");
  for (int j = 0; j < 2; j++) {
    ASSERT_NEAR(crl_tensor_get_flat(noise, j), crl_tensor_get_flat(n3, j),
                1e-12);
    ASSERT_NEAR(crl_tensor_get_flat(noise, 2 + j),
                crl_tensor_get_flat(fresh, 2 + j), 1e-12);
    ASSERT_NEAR(crl_tensor_get_flat(noise, 4 + j),
                crl_tensor_get_flat(n3, 4 + j), 1e-12);
  }
  assert_tensor_values(crl_td_get(td, "_ou_steps"), (double[]){3, 1, 3}, 3, 0);
  /* the state survives step_mdp (kept at the root) */
  crl_td_set(td, "next/observation", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 3)));
  crl_td *nx = crl_td_step_mdp(td, NULL);
  CRL_CHECK_OK(crl_td_del(nx, "is_init"));
  CRL_CHECK_OK(crl_tdmodule_forward(w, nx, NULL));
  assert_tensor_values(crl_td_get(nx, "_ou_steps"), (double[]){4, 2, 4}, 3, 0);
  /* errors */
  crl_td_set(nx, "is_init", crl_zeros(CRL_BOOL, CRL_SHAPE(3, 2, 2)));
  CRL_CHECK_OK(crl_tdmodule_forward(w, nx, NULL)); /* reduced per row */
  crl_td *bad = obs_td(3);
  crl_td_set(bad, "_ou_steps", crl_zeros(CRL_INT64, CRL_SHAPE(3, 4)));
  crl_td_set(bad, "_ou_prev_noise", crl_zeros(CRL_FLOAT64, CRL_SHAPE(3, 2)));
  assert_int_equal(crl_tdmodule_forward(w, bad, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("_ou_steps");
  assert_null(crl_ou_wrapper_new(pol, 0.15, 0.2, -1, NULL));
  CRL_ASSERT_ERR_HAS("dt");
  /* projected into a spec */
  crl_spec *spec = crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(2), 0.2, 0.3);
  crl_tdmodule *ws = crl_ou_wrapper_new(pol, 0.15, 50, 0.01, spec);
  CRL_CHECK_OK(crl_exploration_set_annealing(ws, 1, 1, 0));
  crl_td *t4 = obs_td(50);
  CRL_CHECK_OK(crl_tdmodule_forward(ws, t4, NULL));
  assert_true(crl_spec_is_in(spec, crl_td_get(t4, "action")));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_egreedy_one_hot),
      CRL_TEST(test_egreedy_categorical_and_batch),
      CRL_TEST(test_additive_gaussian),
      CRL_TEST(test_ou),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
