/* ProbabilisticTensorDictModule, ProbabilisticActor, NormalParamExtractor. */
#include <stdlib.h>

#include "modules/modules_internal.h"
#include "modules_test_util.h"

static crl_td *loc_scale_td(int64_t b, int64_t k, uint64_t seed) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  crl_td *td = td_with(b, "loc", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(b, k)));
  crl_tensor *s =
      crl_add_scalar(crl_abs(crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(b, k))), 0.1);
  crl_td_set(td, "scale", s);
  return td;
}

static void test_normal_modes(void **state) {
  (void)state;
  crl_prob_options o = {.dist = CRL_DIST_NORMAL, .return_log_prob = true};
  crl_tdmodule *m = crl_prob_module_new(&o);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "ProbabilisticTensorDictModule");
  assert_int_equal(crl_tdmodule_num_in_keys(m), 2);
  assert_string_equal(crl_tdmodule_in_key(m, 0), "loc");
  assert_string_equal(crl_tdmodule_in_key(m, 1), "scale");
  assert_string_equal(crl_tdmodule_out_key(m, 0), "action");
  assert_string_equal(crl_tdmodule_out_key(m, 1), "sample_log_prob");
  crl_td *td = loc_scale_td(4, 3, 1);
  crl_tensor *loc = crl_td_get(td, "loc"), *scale = crl_td_get(td, "scale");

  /* RANDOM: the sample the distribution draws from the module's stream */
  crl_tdmodule_seed(m, 9);
  crl_rng g = *crl_tdmodule_rng(m);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_dist *d = crl_normal_new(loc, scale, 0);
  crl_tensor *expect = crl_dist_rsample(d, &g);
  crl_tensor *a = crl_td_get(td, "action");
  assert_close(a, expect, 0);
  assert_false(crl_equal(a, loc));
  /* elementwise log-prob of what was written */
  assert_close(crl_td_get(td, "sample_log_prob"), crl_dist_log_prob(d, a),
               1e-6);
  /* the stream advanced: the next sample differs */
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_false(crl_equal(crl_td_get(td, "action"), expect));
  /* reseeding reproduces */
  crl_tdmodule_seed(m, 9);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_close(crl_td_get(td, "action"), expect, 0);

  /* MODE and MEAN: loc */
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_exploration_end();
  assert_close(crl_td_get(td, "action"), loc, 0);
  assert_close(crl_td_get(td, "sample_log_prob"), crl_dist_log_prob(d, loc),
               1e-6);
  crl_exploration_begin(CRL_EXPLORATION_MEAN);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_exploration_end();
  assert_close(crl_td_get(td, "action"), loc, 0);
}

static void test_tanh_normal_defaults(void **state) {
  (void)state;
  crl_prob_options o = {.dist = CRL_DIST_TANH_NORMAL,
                        .return_log_prob = true,
                        .low = -2,
                        .high = 2};
  crl_tdmodule *m = crl_prob_module_new(&o);
  CRL_CHECK_PTR(m);
  crl_td *td = loc_scale_td(5, 2, 2);
  crl_tensor *loc = crl_td_get(td, "loc"), *scale = crl_td_get(td, "scale");
  crl_dist *d = crl_tanh_normal_new(loc, scale, -2, 2, 1);
  /* MODE: the distribution's mode */
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_exploration_end();
  assert_close(crl_td_get(td, "action"), crl_dist_mode(d), 1e-6);
  /* event_dims 1 by default: the log-prob has the batch shape */
  assert_shape(crl_td_get(td, "sample_log_prob"), 1, (int64_t[]){5});
  /* RANDOM: inside the bounds, equal to the distribution's sample */
  crl_tdmodule_seed(m, 3);
  crl_rng g = *crl_tdmodule_rng(m);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_close(a, crl_dist_rsample(d, &g), 1e-6);
  for (int64_t i = 0; i < a->numel; i++) {
    double v = crl_tensor_get_flat(a, i);
    assert_true(v > -2 && v < 2);
  }
  assert_close(crl_td_get(td, "sample_log_prob"), crl_dist_log_prob(d, a),
               1e-4);

  /* bounds from a bounded spec when low == high == 0 */
  crl_spec *spec = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -3, 3);
  crl_prob_options o2 = {.dist = CRL_DIST_TANH_NORMAL, .spec = spec};
  crl_tdmodule *m2 = crl_prob_module_new(&o2);
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(m2, td, NULL));
  crl_exploration_end();
  crl_dist *d3 = crl_tanh_normal_new(loc, scale, -3, 3, 1);
  assert_close(crl_td_get(td, "action"), crl_dist_mode(d3), 1e-6);
  /* no spec, no bounds: TorchRL's [-1, 1] */
  crl_prob_options o3 = {.dist = CRL_DIST_TANH_NORMAL};
  crl_tdmodule *m3 = crl_prob_module_new(&o3);
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(m3, td, NULL));
  crl_exploration_end();
  crl_dist *d1 = crl_tanh_normal_new(loc, scale, -1, 1, 1);
  assert_close(crl_td_get(td, "action"), crl_dist_mode(d1), 1e-6);
  /* event_dims -1: elementwise log-prob */
  crl_prob_options o4 = {.dist = CRL_DIST_TANH_NORMAL,
                         .return_log_prob = true,
                         .event_dims = -1,
                         .log_prob_key = "lp"};
  crl_tdmodule *m4 = crl_prob_module_new(&o4);
  CRL_CHECK_OK(crl_tdmodule_forward(m4, td, NULL));
  assert_shape(crl_td_get(td, "lp"), 2, (int64_t[]){5, 2});
}

static void test_projection(void **state) {
  (void)state;
  /* a Normal clamped into a bounded spec */
  crl_spec *spec = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), -0.1, 0.1);
  crl_prob_options o = {.dist = CRL_DIST_NORMAL, .spec = spec};
  crl_tdmodule *m = crl_prob_module_new(&o);
  crl_td *td = loc_scale_td(50, 3, 3);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_true(crl_spec_is_in(spec, a));
  bool at_bound = false;
  for (int64_t i = 0; i < a->numel; i++)
    at_bound |= fabs(fabs(crl_tensor_get_flat(a, i)) - 0.1) < 1e-7;
  assert_true(at_bound);
  /* a OneHotCategorical projected into an int64 one-hot spec */
  crl_spec *oh = crl_spec_one_hot(4, CRL_INT64, CRL_SHAPE(4));
  crl_prob_options oc = {.dist = CRL_DIST_ONE_HOT_CATEGORICAL, .spec = oh};
  crl_tdmodule *mc = crl_prob_module_new(&oc);
  crl_rng g;
  crl_rng_seed(&g, 4);
  crl_td *tl =
      td_with(6, "logits", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(6, 4)));
  CRL_CHECK_OK(crl_tdmodule_forward(mc, tl, NULL));
  crl_tensor *ac = crl_td_get(tl, "action");
  assert_int_equal(ac->dtype, CRL_INT64);
  assert_true(crl_spec_is_in(oh, ac));
  /* composite specs are refused */
  crl_spec *comp = crl_spec_composite(CRL_SCALAR);
  crl_prob_options bad = {.dist = CRL_DIST_NORMAL, .spec = comp};
  assert_null(crl_prob_module_new(&bad));
  CRL_ASSERT_ERR_HAS("CompositeSpec");
}

static void test_categorical(void **state) {
  (void)state;
  crl_prob_options o = {.dist = CRL_DIST_CATEGORICAL, .return_log_prob = true};
  crl_tdmodule *m = crl_prob_module_new(&o);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_in_key(m, 0), "logits");
  crl_tensor *logits =
      f32(CRL_SHAPE(3, 4), (float[]){0, 5, 0, 0, 9, 0, 0, 0, 0, 0, 0, 7});
  crl_td *td = td_with(3, "logits", logits);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_int_equal(a->dtype, CRL_INT64);
  assert_shape(a, 1, (int64_t[]){3});
  for (int i = 0; i < 3; i++) {
    double v = crl_tensor_get_flat(a, i);
    assert_true(v >= 0 && v < 4);
  }
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_exploration_end();
  assert_tensor_values(crl_td_get(td, "action"), (double[]){1, 0, 3}, 3, 0);
  /* MEAN falls back to the mode for a Categorical */
  crl_exploration_begin(CRL_EXPLORATION_MEAN);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_exploration_end();
  assert_tensor_values(crl_td_get(td, "action"), (double[]){1, 0, 3}, 3, 0);
  /* sampling frequencies follow the probabilities */
  crl_tensor *lg = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4000, 2));
  crl_no_grad_begin();
  crl_tensor *col = crl_select(lg, 1, 1);
  crl_fill_(col, log(3.0)); /* p = {1/4, 3/4} */
  crl_no_grad_end();
  crl_td *big = td_with(4000, "logits", lg);
  CRL_CHECK_OK(crl_tdmodule_forward(m, big, NULL));
  double ones = crl_sum_value(crl_td_get(big, "action")) / 4000;
  ASSERT_NEAR(ones, 0.75, 0.03);
}

static void test_custom_keys_and_errors(void **state) {
  (void)state;
  crl_prob_options o = {.dist = CRL_DIST_DELTA,
                        .nparams = 1,
                        .param_keys = {"mu"},
                        .out_key = "act"};
  crl_tdmodule *m = crl_prob_module_new(&o);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_in_key(m, 0), "mu");
  crl_td *td = td_with(2, "mu", f32(CRL_SHAPE(2), (float[]){1, -1}));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "act"), (double[]){1, -1}, 2, 0);
  /* missing parameter key */
  crl_td *td2 = td_with(2, "loc", f32(CRL_SHAPE(2), (float[]){1, -1}));
  assert_int_equal(crl_tdmodule_forward(m, td2, NULL), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'mu'");
  assert_int_equal(crl_td_len(td2), 1);
  /* a non-positive scale: the distribution's error, td unchanged */
  crl_prob_options on = {.dist = CRL_DIST_NORMAL};
  crl_tdmodule *mn = crl_prob_module_new(&on);
  crl_td *td3 = td_with(2, "loc", f32(CRL_SHAPE(2), (float[]){1, -1}));
  crl_td_set(td3, "scale", f32(CRL_SHAPE(2), (float[]){1, -1}));
  assert_int_not_equal(crl_tdmodule_forward(mn, td3, NULL), 0);
  assert_false(crl_td_contains(td3, "action"));
  /* constructor errors */
  crl_prob_options b1 = {.dist = CRL_DIST_NORMAL, .nparams = 1};
  assert_null(crl_prob_module_new(&b1));
  CRL_ASSERT_ERR_HAS("takes 2 parameter key(s), 1 given");
  crl_prob_options b2 = {.dist = CRL_DIST_TANH_NORMAL, .low = 1, .high = -1};
  assert_null(crl_prob_module_new(&b2));
  CRL_ASSERT_ERR_HAS("bounds [1, -1]");
  crl_prob_options b3 = {.dist = CRL_DIST_NORMAL, .event_dims = 2};
  assert_null(crl_prob_module_new(&b3));
  crl_prob_options b4 = {.dist = (crl_dist_kind)42};
  assert_null(crl_prob_module_new(&b4));
  assert_null(crl_prob_module_new(NULL));
}

/* ---- NormalParamExtractor ------------------------------------------------ */

static void test_normal_param_extractor(void **state) {
  (void)state;
  crl_tdmodule *m =
      crl_normal_param_extractor_new("param", NULL, NULL, NULL, 0);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "NormalParamExtractor");
  assert_string_equal(crl_tdmodule_out_key(m, 0), "loc");
  assert_string_equal(crl_tdmodule_out_key(m, 1), "scale");
  crl_td *td = td_with(
      2, "param", f32(CRL_SHAPE(2, 4), (float[]){1, 2, 0, -30, 3, 4, 5, 1}));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "loc"), (double[]){1, 2, 3, 4}, 4, 0);
  /* biased softplus: softplus(x + log(expm1(0.99))) + 0.01; 0 -> 1 */
  double bias = log(expm1(0.99));
  double e[4] = {1.0, 1e-4, log1p(exp(5 + bias)) + 0.01,
                 log1p(exp(1 + bias)) + 0.01};
  e[1] = fmax(log1p(exp(-30 + bias)) + 0.01, 1e-4);
  assert_tensor_values(crl_td_get(td, "scale"), e, 4, 1e-6);

  /* exp with a floor */
  crl_tdmodule *mx =
      crl_normal_param_extractor_new("param", "mu", "sigma", "exp", 0.5);
  CRL_CHECK_OK(crl_tdmodule_forward(mx, td, NULL));
  assert_tensor_values(crl_td_get(td, "sigma"),
                       (double[]){1, 0.5, exp(5), exp(1)}, 4, 1e-4);
  /* biased_softplus_B_M */
  crl_tdmodule *mb = crl_normal_param_extractor_new(
      "param", NULL, NULL, "biased_softplus_2.0_0.5", 0);
  CRL_CHECK_OK(crl_tdmodule_forward(mb, td, NULL));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "scale"), 0), 2.0, 1e-6);
  /* batch [] with a 1-d input, and leading dims > 1 */
  crl_td *t0 = td_with(0, "param", f32(CRL_SHAPE(2), (float[]){0.5f, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(m, t0, NULL));
  assert_tensor_values(crl_td_get(t0, "scale"), (double[]){1}, 1, 1e-6);
  /* errors */
  crl_td *odd = td_with(2, "param", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)));
  assert_int_equal(crl_tdmodule_forward(m, odd, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_null(crl_normal_param_extractor_new("p", NULL, NULL, "cubic", 0));
  CRL_ASSERT_ERR_HAS("'cubic'");
  assert_null(
      crl_normal_param_extractor_new("p", NULL, NULL, "biased_softplus_x", 0));
  assert_null(crl_normal_param_extractor_new(NULL, NULL, NULL, NULL, 0));
}

static const char *const gc_maps[] = {
    "biased_softplus_1.0", "softplus", "exp", "relu", "expln", "none"};

static crl_tensor *extract_scale(crl_tensor **in, void *ctx) {
  const char *map = ctx;
  crl_tdmodule *m = crl_normal_param_extractor_new("p", NULL, NULL, map, 0.05);
  crl_td *td = td_with(3, "p", in[0]);
  if (crl_tdmodule_forward(m, td, NULL)) return NULL;
  crl_tensor *s = crl_td_get(td, "scale"), *l = crl_td_get(td, "loc");
  return crl_cat(2, (crl_tensor *[]){l, s}, -1);
}

static void test_extractor_gradcheck(void **state) {
  (void)state;
  /* values away from the kinks of relu / expln / the floor */
  double v[24];
  for (int i = 0; i < 24; i++)
    v[i] = (i % 2 ? 0.37 : -0.61) * (1 + i % 5) + 0.013 * i;
  for (size_t k = 0; k < sizeof gc_maps / sizeof gc_maps[0]; k++) {
    crl_tensor *x = leaf64(CRL_SHAPE(3, 8), v);
    crl_tensor *in[1] = {x};
    int rc = crl_gradcheck(extract_scale, in, 1, (void *)gc_maps[k], 1e-6, 1e-6,
                           1e-4);
    if (rc) fail_msg("%s: %s", gc_maps[k], crl_last_error());
  }
}

static crl_tensor *extract_t(crl_tensor **in, void *ctx) {
  crl_tensor *xt = crl_transpose(in[0], 0, 1);
  return extract_scale(&xt, ctx);
}

static void test_extractor_strided(void **state) {
  (void)state;
  double v[24];
  for (int i = 0; i < 24; i++)
    v[i] = 0.1 * i - 1.1;
  crl_tensor *x = leaf64(CRL_SHAPE(8, 3), v);
  crl_tensor *in[1] = {x};
  CRL_CHECK_OK(
      crl_gradcheck(extract_t, in, 1, (void *)gc_maps[0], 1e-6, 1e-6, 1e-4));
}

/* ---- ProbabilisticActor -------------------------------------------------- */

static crl_tdmodule *make_actor(crl_module **net_out, bool log_prob) {
  crl_module *net = linear_rand(3, 4, 11);
  const char *in[1] = {"observation"}, *out[1] = {"param"};
  crl_tdmodule *body = crl_td_module_new(net, 1, in, 1, out);
  crl_tdmodule *ext =
      crl_normal_param_extractor_new("param", NULL, NULL, NULL, 0);
  crl_tdmodule *seq = crl_td_sequential_new(2, (crl_tdmodule *[]){body, ext});
  crl_prob_options o = {.dist = CRL_DIST_TANH_NORMAL,
                        .return_log_prob = log_prob};
  crl_tdmodule *actor = crl_prob_actor_new(seq, &o);
  if (!actor) fail_msg("prob_actor_new: %s", crl_last_error());
  *net_out = net;
  return actor;
}

static void test_prob_actor(void **state) {
  (void)state;
  crl_module *net;
  crl_tdmodule *actor = make_actor(&net, true);
  assert_string_equal(crl_tdmodule_name(actor), "ProbabilisticActor");
  assert_int_equal(crl_tdmodule_num_in_keys(actor), 1);
  assert_string_equal(crl_tdmodule_in_key(actor, 0), "observation");
  assert_ptr_equal(crl_td_get(crl_tdmodule_params(actor), "0/0/weight"),
                   crl_td_get(crl_module_params(net), "weight"));
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_td *td =
      td_with(6, "observation", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(6, 3)));
  CRL_CHECK_OK(crl_tdmodule_forward(actor, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_shape(a, 2, (int64_t[]){6, 2});
  assert_true(crl_td_contains(td, "loc") && crl_td_contains(td, "scale") &&
              crl_td_contains(td, "sample_log_prob"));
  /* gradients flow from the action to the network (rsample) */
  assert_true(a->requires_grad);
  CRL_CHECK_OK(crl_backward(crl_sum(a, 0, NULL, false), NULL));
  crl_tensor *w = crl_td_get(crl_module_params(net), "weight");
  CRL_CHECK_PTR(w->grad);
  assert_true(crl_sum_value(crl_abs(w->grad)) > 0);
  crl_zero_grad(w);
  crl_zero_grad(crl_td_get(crl_module_params(net), "bias"));

  /* the distribution of the actor for td */
  crl_dist *d = crl_prob_module_dist(actor, td, NULL);
  CRL_CHECK_PTR(d);
  assert_int_equal(crl_dist_kind_of(d), CRL_DIST_TANH_NORMAL);
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  CRL_CHECK_OK(crl_tdmodule_forward(actor, td, NULL));
  crl_exploration_end();
  assert_close(crl_td_get(td, "action"), crl_dist_mode(d), 1e-6);
  assert_null(crl_prob_module_dist(crl_td_sequential_get(actor, 0), td, NULL));
  CRL_ASSERT_ERR_HAS("not probabilistic");

  /* seeded actors reproduce */
  crl_tdmodule_seed(actor, 77);
  CRL_CHECK_OK(crl_tdmodule_forward(actor, td, NULL));
  crl_tensor *a1 = crl_clone(crl_td_get(td, "action"));
  crl_tdmodule_seed(actor, 77);
  CRL_CHECK_OK(crl_tdmodule_forward(actor, td, NULL));
  assert_close(crl_td_get(td, "action"), a1, 0);

  /* a module that does not write the parameters */
  crl_tdmodule *ext = crl_normal_param_extractor_new("p", "mu", NULL, NULL, 0);
  crl_prob_options o = {.dist = CRL_DIST_NORMAL};
  assert_null(crl_prob_actor_new(ext, &o));
  CRL_ASSERT_ERR_HAS("reads 'loc'");
}

static crl_tensor *actor_action(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_prob_options o = {.dist = CRL_DIST_TANH_NORMAL, .low = -2, .high = 3};
  crl_tdmodule *m = crl_prob_module_new(&o);
  crl_tdmodule_seed(m, 1234); /* the same noise at every evaluation */
  crl_td *td = td_with(2, "loc", in[0]);
  crl_td_set(td, "scale", in[1]);
  if (crl_tdmodule_forward(m, td, NULL)) return NULL;
  return crl_td_get(td, "action");
}

static void test_rsample_gradcheck(void **state) {
  (void)state;
  crl_tensor *loc =
      leaf64(CRL_SHAPE(2, 3), (double[]){0.1, -0.4, 0.8, 1.2, -0.3, 0.05});
  crl_tensor *scale =
      leaf64(CRL_SHAPE(2, 3), (double[]){0.5, 0.3, 0.9, 0.2, 1.1, 0.7});
  crl_tensor *in[2] = {loc, scale};
  CRL_CHECK_OK(crl_gradcheck(actor_action, in, 2, NULL, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_normal_modes),
      CRL_TEST(test_tanh_normal_defaults),
      CRL_TEST(test_projection),
      CRL_TEST(test_categorical),
      CRL_TEST(test_custom_keys_and_errors),
      CRL_TEST(test_normal_param_extractor),
      CRL_TEST(test_extractor_gradcheck),
      CRL_TEST(test_extractor_strided),
      CRL_TEST(test_prob_actor),
      CRL_TEST(test_rsample_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
