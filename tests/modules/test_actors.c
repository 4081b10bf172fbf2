/* Actor, ValueOperator, QValueActor, ActorValueOperator (and its standalone
 * operators), ActorCriticOperator, ActorCriticWrapper; modules as policies
 * of crl_env_rollout. */
#include "modules/modules_internal.h"
#include "modules_test_util.h"

static void test_actor(void **state) {
  (void)state;
  crl_module *lin = linear_with(2, 2, (float[]){1, 0, 0, 1}, (float[]){0, 0});
  crl_tdmodule *a = crl_actor_new(lin, 0, NULL, NULL);
  CRL_CHECK_PTR(a);
  assert_string_equal(crl_tdmodule_name(a), "Actor");
  assert_string_equal(crl_tdmodule_in_key(a, 0), "observation");
  assert_string_equal(crl_tdmodule_out_key(a, 0), "action");
  crl_td *td = td_with(2, "observation",
                       f32(CRL_SHAPE(2, 2), (float[]){0.5f, 3, -4, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(a, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), (double[]){0.5, 3, -4, 0}, 4,
                       0);
  /* with a spec: projected (differentiably) */
  crl_spec *spec = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1, 1);
  crl_tdmodule *b =
      crl_actor_new(lin, 1, (const char *[]){"observation"}, spec);
  CRL_CHECK_OK(crl_tdmodule_forward(b, td, NULL));
  crl_tensor *act = crl_td_get(td, "action");
  assert_tensor_values(act, (double[]){0.5, 1, -1, 0}, 4, 0);
  CRL_CHECK_OK(crl_backward(crl_sum(act, 0, NULL, false), NULL));
  crl_tensor *w = crl_td_get(crl_module_params(lin), "weight");
  /* only in-bound outputs pass a gradient: dW[o] = x[b] for the row b
   * where output o is inside [-1, 1] */
  assert_tensor_values(w->grad, (double[]){0.5, 3, -4, 0}, 4, 1e-6);
  crl_zero_grad(w);
  crl_zero_grad(crl_td_get(crl_module_params(lin), "bias"));
  /* per-element bounds */
  crl_tensor *lo = f32(CRL_SHAPE(2), (float[]){0, -10});
  crl_tensor *hi = f32(CRL_SHAPE(2), (float[]){0.25f, 10});
  crl_spec *box = crl_spec_bounded_tensor(lo, hi);
  crl_tdmodule *c = crl_actor_new(lin, 0, NULL, box);
  CRL_CHECK_OK(crl_tdmodule_forward(c, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), (double[]){0.25, 3, 0, 0}, 4,
                       0);
}

static void test_value_operator(void **state) {
  (void)state;
  crl_module *v = linear_with(2, 1, (float[]){1, 1}, (float[]){0});
  crl_tdmodule *sv = crl_value_operator_new(v, 0, NULL, NULL);
  assert_string_equal(crl_tdmodule_name(sv), "ValueOperator");
  assert_string_equal(crl_tdmodule_out_key(sv, 0), "state_value");
  /* with the action among the inputs: Q(s, a) */
  crl_rng g;
  crl_rng_seed(&g, 2);
  crl_module *qnet = crl_ddpg_mlp_qnet_new(3, 1, &g);
  const char *in[2] = {"observation", "action"};
  crl_tdmodule *qv = crl_value_operator_new(qnet, 2, in, NULL);
  CRL_CHECK_PTR(qv);
  assert_string_equal(crl_tdmodule_out_key(qv, 0), "state_action_value");
  crl_td *td =
      td_with(4, "observation", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(4, 3)));
  crl_td_set(td, "action", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(4, 1)));
  CRL_CHECK_OK(crl_tdmodule_forward(qv, td, NULL));
  assert_shape(crl_td_get(td, "state_action_value"), 2, (int64_t[]){4, 1});
  /* explicit out key */
  crl_tdmodule *o = crl_value_operator_new(v, 0, NULL, "v");
  assert_string_equal(crl_tdmodule_out_key(o, 0), "v");
  /* a net with the wrong number of inputs */
  assert_null(crl_value_operator_new(qnet, 1, in, NULL));
}

static void test_qvalue_actor(void **state) {
  (void)state;
  crl_module *net =
      linear_with(2, 3, (float[]){1, 0, 0, 1, 1, 1}, (float[]){0, 0, 0});
  crl_spec *oh = crl_spec_one_hot(3, CRL_INT64, CRL_SHAPE(3));
  crl_tdmodule *q = crl_qvalue_actor_new(net, 0, NULL, oh);
  CRL_CHECK_PTR(q);
  assert_string_equal(crl_tdmodule_name(q), "QValueActor");
  assert_int_equal(crl_tdmodule_num_out_keys(q), 3);
  assert_string_equal(crl_tdmodule_out_key(q, 0), "action");
  assert_string_equal(crl_tdmodule_out_key(q, 1), "action_value");
  assert_string_equal(crl_tdmodule_out_key(q, 2), "chosen_action_value");
  assert_ptr_equal(crl_td_get(crl_tdmodule_params(q), "0/weight"),
                   crl_td_get(crl_module_params(net), "weight"));
  /* Q = {x0, x1, x0 + x1} */
  crl_td *td = td_with(3, "observation",
                       f32(CRL_SHAPE(3, 2), (float[]){2, -1, -1, 3, 1, 1}));
  CRL_CHECK_OK(crl_tdmodule_forward(q, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_int_equal(a->dtype, CRL_INT64);
  assert_tensor_values(a, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1}, 9, 0);
  assert_tensor_values(crl_td_get(td, "chosen_action_value"),
                       (double[]){2, 3, 2}, 3, 1e-6);
  assert_shape(crl_td_get(td, "chosen_action_value"), 2, (int64_t[]){3, 1});
  assert_true(crl_spec_is_in(oh, a));
  /* chosen_action_value is differentiable */
  CRL_CHECK_OK(crl_backward(
      crl_sum(crl_td_get(td, "chosen_action_value"), 0, NULL, false), NULL));
  crl_tensor *w = crl_td_get(crl_module_params(net), "weight");
  /* dW[a] = x[b] for the action a chosen in row b */
  assert_tensor_values(w->grad, (double[]){2, -1, -1, 3, 1, 1}, 6, 1e-6);
  crl_zero_grad(w);
  crl_zero_grad(crl_td_get(crl_module_params(net), "bias"));

  /* categorical: an index of the spec's dtype */
  crl_spec *cat = crl_spec_discrete(3, CRL_INT32, CRL_SCALAR);
  crl_tdmodule *qc = crl_qvalue_actor_new(net, 0, NULL, cat);
  CRL_CHECK_OK(crl_tdmodule_forward(qc, td, NULL));
  crl_tensor *ac = crl_td_get(td, "action");
  assert_int_equal(ac->dtype, CRL_INT32);
  assert_shape(ac, 1, (int64_t[]){3});
  assert_tensor_values(ac, (double[]){0, 1, 2}, 3, 0);
  /* a discrete spec of shape [1] keeps the dim */
  crl_spec *cat1 = crl_spec_discrete(3, CRL_INT64, CRL_SHAPE(1));
  crl_tdmodule *q1 = crl_qvalue_actor_new(net, 0, NULL, cat1);
  CRL_CHECK_OK(crl_tdmodule_forward(q1, td, NULL));
  assert_shape(crl_td_get(td, "action"), 2, (int64_t[]){3, 1});
  assert_true(crl_spec_is_in(cat1, crl_td_get(td, "action")));
  /* no spec: one-hot int64; ties take the first */
  crl_tdmodule *qn = crl_qvalue_actor_new(net, 0, NULL, NULL);
  crl_td *tie =
      td_with(1, "observation", f32(CRL_SHAPE(1, 2), (float[]){0, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(qn, tie, NULL));
  assert_tensor_values(crl_td_get(tie, "action"), (double[]){1, 0, 0}, 3, 0);
  /* a spec of the wrong size or kind */
  crl_spec *oh4 = crl_spec_one_hot(4, CRL_INT64, CRL_SHAPE(4));
  crl_tdmodule *q4 = crl_qvalue_actor_new(net, 0, NULL, oh4);
  assert_int_equal(crl_tdmodule_forward(q4, td, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("(4)");
  crl_spec *box = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), -1, 1);
  assert_null(crl_qvalue_actor_new(net, 0, NULL, box));
  assert_int_equal(crl_last_error_code(), CRL_EUNSUPPORTED);
}

/* ---- actor-value operators ----------------------------------------------- */

typedef struct {
  crl_module *trunk, *pnet, *vnet;
  crl_tdmodule *common, *policy, *value;
} avo_parts;

static avo_parts make_avo_parts(void) {
  avo_parts p;
  p.trunk = linear_rand(4, 8, 1);
  p.pnet = linear_rand(8, 4, 2);
  p.vnet = linear_rand(8, 1, 3);
  const char *o[1] = {"observation"}, *h[1] = {"hidden"}, *pr[1] = {"param"};
  p.common = crl_td_module_new(p.trunk, 1, o, 1, h);
  crl_tdmodule *body = crl_td_module_new(p.pnet, 1, h, 1, pr);
  crl_tdmodule *ext =
      crl_normal_param_extractor_new("param", NULL, NULL, NULL, 0);
  crl_tdmodule *pseq = crl_td_sequential_new(2, (crl_tdmodule *[]){body, ext});
  crl_prob_options opt = {.dist = CRL_DIST_TANH_NORMAL,
                          .return_log_prob = true};
  p.policy = crl_prob_actor_new(pseq, &opt);
  p.value = crl_value_operator_new(p.vnet, 1, h, NULL);
  if (!p.common || !p.policy || !p.value)
    fail_msg("parts: %s", crl_last_error());
  return p;
}

static void test_actor_value_operator(void **state) {
  (void)state;
  avo_parts p = make_avo_parts();
  crl_tdmodule *avo = crl_actor_value_operator_new(p.common, p.policy, p.value);
  CRL_CHECK_PTR(avo);
  assert_string_equal(crl_tdmodule_name(avo), "ActorValueOperator");
  assert_int_equal(crl_tdmodule_num_in_keys(avo), 1);
  crl_td *pa = crl_tdmodule_params(avo);
  crl_tdmodule *pol = crl_avo_get_policy_operator(avo);
  crl_tdmodule *val = crl_avo_get_value_operator(avo);
  CRL_CHECK_PTR(pol);
  CRL_CHECK_PTR(val);
  assert_string_equal(crl_tdmodule_name(pol),
                      "ProbabilisticTensorDictSequential");
  crl_td *pp = crl_tdmodule_params(pol), *pv = crl_tdmodule_params(val);
  /* the same parameter tensors everywhere */
  crl_tensor *tw = crl_td_get(crl_module_params(p.trunk), "weight");
  assert_ptr_equal(crl_td_get(pa, "0/weight"), tw);
  assert_ptr_equal(crl_td_get(pp, "0/weight"), tw);
  assert_ptr_equal(crl_td_get(pv, "0/weight"), tw);
  assert_ptr_equal(crl_td_get(pa, "1/0/0/weight"),
                   crl_td_get(pp, "1/0/0/weight"));
  assert_ptr_equal(crl_td_get(pa, "2/weight"), crl_td_get(pv, "1/weight"));
  assert_ptr_equal(crl_td_get(pv, "1/weight"),
                   crl_td_get(crl_module_params(p.vnet), "weight"));
  /* keys */
  assert_int_equal(crl_tdmodule_num_out_keys(pol), 6);
  assert_string_equal(crl_tdmodule_out_key(val, 1), "state_value");

  crl_rng g;
  crl_rng_seed(&g, 8);
  crl_tensor *obs = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(5, 4));
  crl_td *t1 = td_with(5, "observation", obs);
  crl_td *t2 = td_with(5, "observation", obs);
  crl_td *t3 = td_with(5, "observation", obs);
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(avo, t1, NULL));
  CRL_CHECK_OK(crl_tdmodule_forward(pol, t2, NULL));
  CRL_CHECK_OK(crl_tdmodule_forward(val, t3, NULL));
  crl_exploration_end();
  assert_close(crl_td_get(t1, "action"), crl_td_get(t2, "action"), 0);
  assert_close(crl_td_get(t1, "state_value"), crl_td_get(t3, "state_value"), 0);
  assert_false(crl_td_contains(t2, "state_value"));
  assert_false(crl_td_contains(t3, "action"));
  /* a change to the shared parameters is seen by the standalone operator */
  double old_bias = crl_tensor_get_flat(crl_td_get(pa, "2/bias"), 0);
  crl_no_grad_begin();
  CRL_CHECK_OK(crl_fill_(crl_td_get(pa, "2/bias"), 10));
  crl_no_grad_end();
  CRL_CHECK_OK(crl_tdmodule_forward(val, t3, NULL));
  assert_close(crl_td_get(t3, "state_value"),
               crl_add_scalar(crl_td_get(t1, "state_value"), 10 - old_bias),
               1e-5);
  assert_null(crl_avo_get_policy_operator(p.common));
  CRL_ASSERT_ERR_HAS("is not an ActorValueOperator");
}

static void test_actor_critic(void **state) {
  (void)state;
  avo_parts p = make_avo_parts();
  crl_rng g;
  crl_rng_seed(&g, 4);
  /* critic: Q(hidden, action) */
  crl_module *qnet = crl_ddpg_mlp_qnet_new(8, 2, &g);
  const char *qin[2] = {"hidden", "action"};
  crl_tdmodule *critic = crl_value_operator_new(qnet, 2, qin, NULL);
  crl_tdmodule *aco = crl_actor_critic_operator_new(p.common, p.policy, critic);
  CRL_CHECK_PTR(aco);
  assert_string_equal(crl_tdmodule_name(aco), "ActorCriticOperator");
  crl_tdmodule *pol = crl_avo_get_policy_operator(aco);
  crl_tdmodule *crit = crl_avo_get_value_operator(aco);
  assert_ptr_equal(crit, aco); /* TorchRL's get_critic_operator */
  crl_td *td =
      td_with(3, "observation", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(3, 4)));
  CRL_CHECK_OK(crl_tdmodule_forward(aco, td, NULL));
  assert_shape(crl_td_get(td, "state_action_value"), 2, (int64_t[]){3, 1});
  assert_shape(crl_td_get(td, "action"), 2, (int64_t[]){3, 2});
  assert_int_equal(pol->nchildren, 2);

  /* ActorCriticWrapper: no shared trunk */
  crl_tdmodule *pfull =
      crl_td_sequential_new(2, (crl_tdmodule *[]){p.common, p.policy});
  crl_tdmodule *vfull =
      crl_td_sequential_new(2, (crl_tdmodule *[]){p.common, p.value});
  crl_tdmodule *acw = crl_actor_critic_wrapper_new(pfull, vfull);
  CRL_CHECK_PTR(acw);
  assert_ptr_equal(crl_avo_get_policy_operator(acw), pfull);
  assert_ptr_equal(crl_avo_get_value_operator(acw), vfull);
  crl_td *t2 =
      td_with(3, "observation", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(3, 4)));
  CRL_CHECK_OK(crl_tdmodule_forward(acw, t2, NULL));
  assert_true(crl_td_contains(t2, "action") &&
              crl_td_contains(t2, "state_value"));
  assert_null(crl_actor_critic_wrapper_new(pfull, NULL));
  assert_null(crl_actor_value_operator_new(p.common, NULL, p.value));
}

/* ---- modules as policies of a rollout ------------------------------------ */

static void test_rollout_cartpole(void **state) {
  (void)state;
  crl_classic_options eo = {.num_envs = 4, .seed = 3};
  crl_env *env = crl_classic_make("CartPole-v1", &eo);
  CRL_CHECK_PTR(env);
  crl_rng g;
  crl_rng_seed(&g, 6);
  crl_mlp_options mo = {
      .in_features = 4, .out_features = 2, .depth = 1, .width = 16};
  crl_module *net = crl_mlp_new(&mo, &g);
  crl_tdmodule *q =
      crl_qvalue_actor_new(net, 0, NULL, crl_env_action_spec(env));
  CRL_CHECK_PTR(q);
  crl_tdmodule *pol =
      crl_egreedy_wrapper_new(q, 0.5, 0.05, 100, crl_env_action_spec(env));
  CRL_CHECK_PTR(pol);
  crl_rollout_options ro = {.max_steps = 20,
                            .policy = crl_tdmodule_policy,
                            .policy_ctx = pol,
                            .auto_reset = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_td_batch_ndim(r), 2);
  assert_int_equal(crl_td_batch_size(r)[1], 20);
  crl_tensor *a = crl_td_get(r, "action");
  assert_shape(a, 3, (int64_t[]){4, 20, 2});
  crl_spec *oh = crl_spec_one_hot(2, CRL_INT64, CRL_SHAPE(2));
  assert_true(crl_spec_is_in(oh, a));
  assert_true(crl_td_contains(r, "action_value"));
  assert_true(crl_td_contains(r, "chosen_action_value"));
  assert_false(crl_td_get(r, "action_value")->requires_grad);
  assert_true(crl_td_contains(r, "next/reward"));
}

static void test_rollout_pendulum(void **state) {
  (void)state;
  crl_classic_options eo = {.num_envs = 3, .seed = 5};
  crl_env *env = crl_classic_make("Pendulum-v1", &eo);
  crl_rng g;
  crl_rng_seed(&g, 7);
  crl_mlp_options mo = {
      .in_features = 3, .out_features = 2, .depth = 1, .width = 16};
  const char *o[1] = {"observation"}, *pr[1] = {"param"};
  crl_tdmodule *body = crl_td_module_new(crl_mlp_new(&mo, &g), 1, o, 1, pr);
  crl_tdmodule *ext =
      crl_normal_param_extractor_new("param", NULL, NULL, NULL, 0);
  crl_tdmodule *seq = crl_td_sequential_new(2, (crl_tdmodule *[]){body, ext});
  crl_prob_options po = {.dist = CRL_DIST_TANH_NORMAL,
                         .spec = crl_env_action_spec(env),
                         .return_log_prob = true};
  crl_tdmodule *actor = crl_prob_actor_new(seq, &po);
  CRL_CHECK_PTR(actor);
  crl_tdmodule *noisy =
      crl_additive_gaussian_wrapper_new(actor, 0.5, 0.1, 10, NULL);
  CRL_CHECK_PTR(noisy);
  crl_rollout_options ro = {.max_steps = 15,
                            .policy = crl_tdmodule_policy,
                            .policy_ctx = noisy,
                            .auto_reset = true};
  crl_td *r = crl_env_rollout(env, &ro);
  CRL_CHECK_PTR(r);
  crl_tensor *a = crl_td_get(r, "action");
  assert_shape(a, 3, (int64_t[]){3, 15, 1});
  for (int64_t i = 0; i < a->numel; i++) {
    double v = crl_tensor_get_flat(a, i);
    assert_true(v >= -2 && v <= 2);
  }
  assert_shape(crl_td_get(r, "sample_log_prob"), 2, (int64_t[]){3, 15});
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_actor),
      CRL_TEST(test_value_operator),
      CRL_TEST(test_qvalue_actor),
      CRL_TEST(test_actor_value_operator),
      CRL_TEST(test_actor_critic),
      CRL_TEST(test_rollout_cartpole),
      CRL_TEST(test_rollout_pendulum),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
