/* TorchRL's MLP: structure and keys, values, functional calls, gradients
 * (float64 parameters through a functional call), lazy in_features, speed. */
#include <time.h>

#include "test_util.h"

static void assert_keys(crl_module *m, int n, const char *const *expect) {
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(crl_module_params(m), true, true, &k));
  if (k.n != n) fail_msg("%d keys, expected %d", k.n, n);
  for (int i = 0; i < n; i++)
    assert_string_equal(k.keys[i], expect[i]);
  crl_td_keys_free(&k);
}

static void test_mlp_structure(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_mlp_options o = {.in_features = 4,
                       .out_features = 2,
                       .num_cells = (int64_t[]){8, 6},
                       .n_cells = 2};
  crl_module *m = crl_mlp_new(&o, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "MLP");
  const char *keys[] = {"0/weight", "0/bias",   "2/weight",
                        "2/bias",   "4/weight", "4/bias"};
  assert_keys(m, 6, keys);
  const char *names[] = {"Linear", "Tanh", "Linear", "Tanh", "Linear"};
  for (int i = 0; i < 5; i++)
    assert_string_equal(crl_module_name(crl_sequential_get(m, i)), names[i]);
  assert_null(crl_sequential_get(m, 5));
  int64_t s0[] = {8, 4}, s2[] = {6, 8}, s4[] = {2, 6};
  assert_shape(crl_td_get(crl_module_params(m), "0/weight"), 2, s0);
  assert_shape(crl_td_get(crl_module_params(m), "2/weight"), 2, s2);
  assert_shape(crl_td_get(crl_module_params(m), "4/weight"), 2, s4);
  assert_int_equal(crl_module_num_params(m), 8 * 4 + 8 + 6 * 8 + 6 + 2 * 6 + 2);

  /* depth x width, default width 32, relu, activate_last_layer */
  crl_mlp_options o2 = {.in_features = 3,
                        .out_features = 5,
                        .depth = 2,
                        .activation = CRL_ACT_RELU,
                        .activate_last_layer = true};
  crl_module *m2 = crl_mlp_new(&o2, &g);
  CRL_CHECK_PTR(m2);
  assert_string_equal(crl_module_name(crl_sequential_get(m2, 5)), "ReLU");
  assert_null(crl_sequential_get(m2, 6));
  int64_t w2[] = {32, 32};
  assert_shape(crl_td_get(crl_module_params(m2), "2/weight"), 2, w2);
  crl_tensor *y =
      crl_module_call(m2, NULL, crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(7, 3)));
  CRL_CHECK_PTR(y);
  for (int64_t i = 0; i < y->numel; i++)
    assert_true(crl_tensor_get_flat(y, i) >= 0);

  /* depth 0: one Linear */
  crl_mlp_options o3 = {.in_features = 3, .out_features = 1};
  crl_module *m3 = crl_mlp_new(&o3, &g);
  const char *k3[] = {"0/weight", "0/bias"};
  assert_keys(m3, 2, k3);

  /* layer norm: Linear, LayerNorm, activation per hidden block */
  crl_mlp_options o4 = {.in_features = 3,
                        .out_features = 2,
                        .depth = 1,
                        .width = 4,
                        .layer_norm = true};
  crl_module *m4 = crl_mlp_new(&o4, &g);
  CRL_CHECK_PTR(m4);
  const char *k4[] = {"0/weight", "0/bias",   "1/weight",
                      "1/bias",   "3/weight", "3/bias"};
  assert_keys(m4, 6, k4);
  assert_string_equal(crl_module_name(crl_sequential_get(m4, 1)), "LayerNorm");
  assert_string_equal(crl_module_name(crl_sequential_get(m4, 2)), "Tanh");

  /* errors */
  crl_mlp_options bad = {.in_features = 3, .out_features = 0};
  assert_null(crl_mlp_new(&bad, &g));
  CRL_ASSERT_ERR_HAS("out_features");
  crl_mlp_options bad2 = {.in_features = 3,
                          .out_features = 1,
                          .num_cells = (int64_t[]){4, 0},
                          .n_cells = 2};
  assert_null(crl_mlp_new(&bad2, &g));
  CRL_ASSERT_ERR_HAS("num_cells[1]");
  crl_mlp_options bad3 = {
      .in_features = 3, .out_features = 1, .activation = (crl_activation)42};
  assert_null(crl_mlp_new(&bad3, &g));
  CRL_ASSERT_ERR_HAS("activation 42");
}

static crl_module *tiny_mlp(void) {
  crl_rng g;
  crl_rng_seed(&g, 2);
  crl_mlp_options o = {.in_features = 1,
                       .out_features = 1,
                       .num_cells = (int64_t[]){2},
                       .n_cells = 1};
  crl_module *m = crl_mlp_new(&o, &g);
  crl_td *p = crl_module_params(m);
  set_values(crl_td_get(p, "0/weight"), (double[]){1, -1});
  set_values(crl_td_get(p, "0/bias"), (double[]){0, 0.5});
  set_values(crl_td_get(p, "2/weight"), (double[]){2, 3});
  set_values(crl_td_get(p, "2/bias"), (double[]){0.1});
  return m;
}

static void test_mlp_values(void **state) {
  (void)state;
  crl_module *m = tiny_mlp();
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 1), (float[]){1, -2});
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  double e[2] = {2 * tanh(1.0) + 3 * tanh(-0.5) + 0.1,
                 2 * tanh(-2.0) + 3 * tanh(2.5) + 0.1};
  assert_tensor_values(y, e, 2, 1e-6);
  /* the generic path (a params TensorDict that is not the module's own)
   * gives the same numbers */
  crl_td *c = crl_module_params_clone(m, false);
  assert_tensor_values(crl_module_call(m, c, x), e, 2, 1e-6);
  /* leading batch dims */
  crl_tensor *xb = crl_reshape(x, CRL_SHAPE(2, 1, 1));
  crl_tensor *yb = crl_module_call(m, NULL, xb);
  int64_t s[] = {2, 1, 1};
  assert_shape(yb, 3, s);
  assert_tensor_values(yb, e, 2, 1e-6);
  /* gradient of y[0] w.r.t. the last bias and weight */
  CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
  crl_td *p = crl_module_params(m);
  assert_tensor_values(crl_td_get(p, "2/bias")->grad, (double[]){2}, 1, 1e-6);
  assert_tensor_values(
      crl_td_get(p, "2/weight")->grad,
      (double[]){tanh(1.0) + tanh(-2.0), tanh(-0.5) + tanh(2.5)}, 2, 1e-6);
}

static void test_mlp_functional(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_mlp_options o = {
      .in_features = 4, .out_features = 2, .depth = 2, .width = 16};
  crl_module *a = crl_mlp_new(&o, &g), *b = crl_mlp_new(&o, &g);
  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(3, 4));
  crl_tensor *ya = crl_module_call(a, crl_module_params(b), x);
  crl_tensor *yb = crl_module_call(b, NULL, x);
  assert_true(crl_equal(ya, yb));
  assert_false(crl_allclose(ya, crl_module_call(a, NULL, x), 1e-4, 1e-4));
  CRL_CHECK_OK(crl_backward(crl_sum(ya, 0, NULL, false), NULL));
  assert_non_null(crl_td_get(crl_module_params(b), "0/weight")->grad);
  assert_null(crl_td_get(crl_module_params(a), "0/weight")->grad);
  /* target network: load b into a, outputs agree */
  CRL_CHECK_OK(crl_module_load_params(a, crl_module_params(b)));
  assert_true(crl_equal(crl_module_call(a, NULL, x), yb));
  /* a params TensorDict without "4/..." */
  crl_td *p = crl_module_params_clone(b, false);
  crl_td_del(p, "4");
  assert_null(crl_module_call(a, p, x));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("4/");
}

/* gradcheck through the MLP with float64 parameters given functionally */
typedef struct {
  crl_module *m;
  int n;
  char keys[16][32];
} gctx;

static crl_tensor *run_mlp(crl_tensor **in, void *vctx) {
  gctx *c = vctx;
  crl_td *p = crl_td_new(0, NULL);
  for (int i = 0; i < c->n; i++)
    crl_td_set(p, c->keys[i], in[1 + i]);
  return crl_module_call(c->m, p, in[0]);
}

static void gradcheck_module(crl_module *m, crl_tensor *x) {
  gctx c = {m, 0, {{0}}};
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(crl_module_params(m), true, true, &k));
  crl_tensor *in[17] = {x};
  for (int i = 0; i < k.n; i++) {
    snprintf(c.keys[i], sizeof c.keys[i], "%s", k.keys[i]);
    crl_tensor *t = crl_td_get(crl_module_params(m), k.keys[i]);
    in[1 + i] = crl_detach(crl_cast(t, CRL_FLOAT64)); /* a float64 leaf */
    CRL_CHECK_OK(crl_set_requires_grad(in[1 + i], true));
  }
  c.n = k.n;
  crl_td_keys_free(&k);
  CRL_CHECK_OK(crl_gradcheck(run_mlp, in, 1 + c.n, &c, 1e-6, 1e-6, 1e-4));
}

static void test_mlp_gradcheck(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 4);
  crl_mlp_options o = {.in_features = 3,
                       .out_features = 2,
                       .num_cells = (int64_t[]){4, 5},
                       .n_cells = 2,
                       .activation = CRL_ACT_ELU,
                       .activate_last_layer = true};
  gradcheck_module(crl_mlp_new(&o, &g), randn_leaf64(1, CRL_SHAPE(2, 3)));
  crl_mlp_options o2 = {.in_features = 3,
                        .out_features = 2,
                        .depth = 1,
                        .width = 4,
                        .layer_norm = true};
  gradcheck_module(crl_mlp_new(&o2, &g), randn_leaf64(2, CRL_SHAPE(2, 2, 3)));
}

static void test_mlp_lazy(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_mlp_options o = {.out_features = 2, .depth = 1, .width = 8};
  crl_module *m = crl_mlp_new(&o, &g);
  CRL_CHECK_PTR(m);
  assert_false(crl_td_contains(crl_module_params(m), "0/weight"));
  assert_true(crl_td_contains(crl_module_params(m), "2/weight"));
  crl_scope_begin();
  crl_tensor *y =
      crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 6)));
  CRL_CHECK_PTR(y);
  crl_scope_end();
  int64_t s[] = {8, 6};
  assert_shape(crl_td_get(crl_module_params(m), "0/weight"), 2, s);
  const char *keys[] = {"0/weight", "0/bias", "2/weight", "2/bias"};
  assert_keys(m, 4, keys);
  /* the fast path runs on the materialized layer */
  crl_tensor *y2 =
      crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(6)));
  CRL_CHECK_PTR(y2);
  assert_null(crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(5))));
}

/* Modules freed inside and outside scopes, with graphs alive. */
static void test_mlp_lifetime(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 6);
  crl_mlp_options o = {.out_features = 2, .depth = 2, .width = 8};
  crl_module *m = crl_mlp_new(&o, &g);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *y = crl_module_call(m, NULL, x);
  crl_module_release(m); /* y's graph keeps the parameters alive */
  crl_tensor *l = crl_sum(y, 0, NULL, false);
  CRL_CHECK_OK(crl_backward(l, NULL));
  crl_tensor_release(l);
  crl_tensor_release(y);
  crl_tensor_release(x);
  crl_scope_begin();
  m = crl_mlp_new(&o, &g);
  crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(3)));
  crl_scope_end();
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* batch-1 inference 4 -> 64 -> 64 -> 2: report the cost per call */
static void test_mlp_speed(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 7);
  crl_mlp_options o = {
      .in_features = 4, .out_features = 2, .depth = 2, .width = 64};
  crl_module *m = crl_mlp_new(&o, &g);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 4));
  double best = INFINITY;
  crl_no_grad_begin();
  for (int rep = 0; rep < 5; rep++) {
    int n = 20000;
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
      crl_scope_begin();
      crl_tensor *y = crl_module_call(m, NULL, x);
      (void)y;
      crl_scope_end();
    }
    best = fmin(best, (now_ns() - t0) / n);
  }
  double best_grad = INFINITY;
  crl_no_grad_end();
  for (int rep = 0; rep < 3; rep++) {
    int n = 5000;
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
      crl_scope_begin();
      crl_module_call(m, NULL, x);
      crl_scope_end();
    }
    best_grad = fmin(best_grad, (now_ns() - t0) / n);
  }
  printf("    MLP 4-64-64-2 batch 1: %.0f ns/call (no grad), %.0f ns/call "
         "(grad mode, graph recorded)\n",
         best, best_grad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_mlp_structure),  CRL_TEST(test_mlp_values),
      CRL_TEST(test_mlp_functional), CRL_TEST(test_mlp_gradcheck),
      CRL_TEST(test_mlp_lazy),       cmocka_unit_test(test_mlp_lifetime),
      CRL_TEST(test_mlp_speed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
