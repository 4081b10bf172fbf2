/* Layers: Linear (lazy too), Conv2d, LayerNorm, NoisyLinear, activations.
 * Values against hand computation; gradients by finite differences through
 * functional calls with float64 parameters (the module's float32
 * parameters are replaced by a params TensorDict of float64 leaves, so
 * crl_gradcheck sees the whole forward in double precision). */
#include "test_util.h"

/* A params TensorDict with the given keys bound to tensors. */
static crl_td *td_of(int n, const char *const *keys, crl_tensor **ts) {
  crl_td *p = crl_td_new(0, NULL);
  for (int i = 0; i < n; i++)
    crl_td_set(p, keys[i], ts[i]);
  return p;
}

/* gradcheck context: a module, the parameter keys in inputs[1..] */
typedef struct {
  crl_module *m;
  int nkeys;
  const char *const *keys;
} fctx;

static crl_tensor *run_functional(crl_tensor **in, void *vctx) {
  fctx *c = vctx;
  crl_td *p = td_of(c->nkeys, c->keys, in + 1);
  crl_tensor *y = crl_module_call(c->m, p, in[0]);
  return y;
}

/* ---- activations
 * --------------------------------------------------------------- */

static void test_activations(void **state) {
  (void)state;
  crl_tensor *x =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){-2.0, 0.0, 1.5});
  struct {
    crl_activation a;
    double v[3];
  } cases[] = {
      {CRL_ACT_NONE, {-2, 0, 1.5}},
      {CRL_ACT_RELU, {0, 0, 1.5}},
      {CRL_ACT_TANH, {tanh(-2), 0, tanh(1.5)}},
      {CRL_ACT_ELU, {exp(-2) - 1, 0, 1.5}},
      {CRL_ACT_LEAKY_RELU, {-0.02, 0, 1.5}},
      {CRL_ACT_SILU, {-2 / (1 + exp(2)), 0, 1.5 / (1 + exp(-1.5))}},
      {CRL_ACT_SOFTPLUS, {log1p(exp(-2)), log(2), log1p(exp(1.5))}},
      {CRL_ACT_SIGMOID, {1 / (1 + exp(2)), 0.5, 1 / (1 + exp(-1.5))}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    crl_tensor *y = crl_activation_apply(cases[i].a, x);
    CRL_CHECK_PTR(y);
    assert_tensor_values(y, cases[i].v, 3, 1e-12);
    const char *name = crl_activation_name(cases[i].a);
    assert_int_equal(crl_activation_from_name(name), (int)cases[i].a);
    crl_module *m = crl_activation_module_new(cases[i].a);
    CRL_CHECK_PTR(m);
    assert_int_equal(crl_module_num_params(m), 0);
    crl_tensor *ym = crl_module_call(m, NULL, x);
    assert_tensor_values(ym, cases[i].v, 3, 1e-12);
  }
  assert_string_equal(crl_activation_name(CRL_ACT_LEAKY_RELU), "leaky_relu");
  assert_int_equal(crl_activation_from_name("ReLU"), CRL_ACT_RELU);
  assert_int_equal(crl_activation_from_name("Tanh"), CRL_ACT_TANH);
  assert_int_equal(crl_activation_from_name("gelu"), -1);
  assert_int_equal(crl_activation_from_name(NULL), -1);
  assert_string_equal(crl_module_name(crl_activation_module_new(CRL_ACT_ELU)),
                      "ELU");
  assert_null(crl_activation_apply((crl_activation)99, x));
  CRL_ASSERT_ERR_HAS("unknown activation 99");
  assert_null(crl_activation_module_new((crl_activation)99));
}

/* ---- Linear -----------------------------------------------------------------
 */

static void test_linear_values(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_module *m = crl_linear_new(2, 3, true, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "Linear");
  crl_tensor *w = crl_td_get(crl_module_params(m), "weight");
  crl_tensor *b = crl_td_get(crl_module_params(m), "bias");
  int64_t ws[] = {3, 2};
  assert_shape(w, 2, ws);
  assert_true(w->requires_grad && b->requires_grad);
  assert_int_equal(w->dtype, CRL_FLOAT32);
  /* torch's default init: |w|, |b| <= 1/sqrt(in) */
  for (int64_t i = 0; i < 6; i++)
    assert_true(fabs(crl_tensor_get_flat(w, i)) <= 1 / sqrt(2.0));
  for (int64_t i = 0; i < 3; i++)
    assert_true(fabs(crl_tensor_get_flat(b, i)) <= 1 / sqrt(2.0));
  set_values(w, (double[]){1, 2, 3, 4, 5, 6});
  set_values(b, (double[]){0.5, -0.5, 1});
  /* leading batch dims [2, 1, 2] */
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 1, 2),
                                 (float[]){1, -1, 2, 0.5f});
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  int64_t ys[] = {2, 1, 3};
  assert_shape(y, 3, ys);
  assert_tensor_values(y, (double[]){-0.5, -1.5, 0, 3.5, 7.5, 14}, 6, 1e-6);
  /* no bias */
  crl_module *nb = crl_linear_new(2, 1, false, &g);
  assert_int_equal(crl_td_len(crl_module_params(nb)), 1);
  assert_false(crl_td_contains(crl_module_params(nb), "bias"));
  /* a wrong input size is the linear op's error */
  crl_tensor *x3 = crl_ones(CRL_FLOAT32, CRL_SHAPE(3));
  assert_null(crl_module_call(m, NULL, x3));
  CRL_ASSERT_ERR_HAS("[3]");
  assert_null(crl_linear_new(2, 3, true, NULL));
  assert_null(crl_linear_new(2, -3, true, &g));
  CRL_ASSERT_ERR_HAS("-3");
}

static void test_linear_gradcheck(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 2);
  crl_module *m = crl_linear_new(3, 2, true, &g);
  crl_tensor *in[3] = {randn_leaf64(1, CRL_SHAPE(4, 3)),
                       randn_leaf64(2, CRL_SHAPE(2, 3)),
                       randn_leaf64(3, CRL_SHAPE(2))};
  const char *keys[] = {"weight", "bias"};
  fctx c = {m, 2, keys};
  CRL_CHECK_OK(crl_gradcheck(run_functional, in, 3, &c, 1e-6, 1e-6, 1e-4));
}

static void test_linear_lazy(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_module *m = crl_linear_new(-1, 4, true, &g);
  CRL_CHECK_PTR(m);
  assert_int_equal(crl_module_num_params(m), 0);
  /* inside a sequence, the parameters show up in the parent once made */
  crl_module *seq = crl_sequential_new(
      2, (crl_module *[]){m, crl_activation_module_new(CRL_ACT_TANH)});
  crl_scope_begin(); /* the first call inside a scope that then ends */
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(5, 7));
  crl_tensor *y = crl_module_call(seq, NULL, x);
  CRL_CHECK_PTR(y);
  int64_t ys[] = {5, 4};
  assert_shape(y, 2, ys);
  crl_scope_end();
  crl_tensor *w = crl_td_get(crl_module_params(seq), "0/weight");
  CRL_CHECK_PTR(w);
  int64_t ws[] = {4, 7};
  assert_shape(w, 2, ws);
  assert_true(w->requires_grad);
  assert_int_equal(crl_module_num_params(seq), 4 * 7 + 4);
  for (int64_t i = 0; i < w->numel; i++)
    assert_true(fabs(crl_tensor_get_flat(w, i)) <= 1 / sqrt(7.0));
  /* sized now: another input size fails */
  crl_tensor *x2 = crl_ones(CRL_FLOAT32, CRL_SHAPE(5, 6));
  assert_null(crl_module_call(seq, NULL, x2));
  CRL_ASSERT_ERR_HAS("[5, 6]");
  /* lazy modules from one generator get different weights */
  x = crl_ones(CRL_FLOAT32, CRL_SHAPE(5, 7));
  crl_module *a = crl_linear_new(-1, 3, true, &g);
  crl_module *b = crl_linear_new(-1, 3, true, &g);
  crl_module_call(a, NULL, x);
  crl_module_call(b, NULL, x);
  assert_false(crl_equal(crl_td_get(crl_module_params(a), "weight"),
                         crl_td_get(crl_module_params(b), "weight")));
  /* functional call on a lazy module that has not run: missing key */
  crl_module *c = crl_linear_new(-1, 3, true, &g);
  crl_tensor *yc = crl_module_call(c, crl_module_params(a), x);
  CRL_CHECK_PTR(yc); /* a's params are complete: fine */
  assert_int_equal(crl_module_num_params(c), 0);
}

/* ---- Conv2d
 * --------------------------------------------------------------------- */

static void test_conv2d_values(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 4);
  crl_module *m = crl_conv2d_new(1, 2, 2, 1, 0, true, &g);
  CRL_CHECK_PTR(m);
  crl_tensor *w = crl_td_get(crl_module_params(m), "weight");
  int64_t ws[] = {2, 1, 2, 2};
  assert_shape(w, 4, ws);
  /* bound 1/sqrt(fan_in = 4) */
  for (int64_t i = 0; i < w->numel; i++)
    assert_true(fabs(crl_tensor_get_flat(w, i)) <= 0.5);
  set_values(w, (double[]){1, 1, 1, 1, 1, 0, 0, -1});
  set_values(crl_td_get(crl_module_params(m), "bias"), (double[]){0, 10});
  float xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  /* unbatched [C, H, W] */
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 3, 3), xv);
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  int64_t s3[] = {2, 2, 2};
  assert_shape(y, 3, s3);
  double expect[8] = {12, 16, 24, 28, 6, 6, 6, 6};
  assert_tensor_values(y, expect, 8, 1e-5);
  /* two leading batch dims */
  crl_tensor *xb = crl_expand(crl_reshape(x, CRL_SHAPE(1, 1, 1, 3, 3)),
                              CRL_SHAPE(2, 3, 1, 3, 3));
  crl_tensor *yb = crl_module_call(m, NULL, xb);
  CRL_CHECK_PTR(yb);
  int64_t s5[] = {2, 3, 2, 2, 2};
  assert_shape(yb, 5, s5);
  for (int k = 0; k < 6; k++)
    for (int j = 0; j < 8; j++)
      ASSERT_NEAR(crl_tensor_get_flat(yb, k * 8 + j), expect[j], 1e-5);
  /* stride and padding */
  crl_module *sp = crl_conv2d_new(1, 1, 3, 2, 1, false, &g);
  crl_tensor *ysp =
      crl_module_call(sp, NULL, crl_reshape(x, CRL_SHAPE(1, 1, 3, 3)));
  int64_t s4[] = {1, 1, 2, 2};
  assert_shape(ysp, 4, s4);
  /* errors */
  assert_null(crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 3))));
  CRL_ASSERT_ERR_HAS("Conv2d");
  CRL_ASSERT_ERR_HAS("[3, 3]");
  assert_null(crl_conv2d_new(1, 2, 0, 1, 0, true, &g));
  CRL_ASSERT_ERR_HAS("kernel 0");
}

static void test_conv2d_gradcheck(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_module *m = crl_conv2d_new(2, 3, 2, 2, 1, true, &g);
  crl_tensor *in[3] = {randn_leaf64(1, CRL_SHAPE(2, 1, 2, 4, 4)),
                       randn_leaf64(2, CRL_SHAPE(3, 2, 2, 2)),
                       randn_leaf64(3, CRL_SHAPE(3))};
  const char *keys[] = {"weight", "bias"};
  fctx c = {m, 2, keys};
  CRL_CHECK_OK(crl_gradcheck(run_functional, in, 3, &c, 1e-6, 1e-6, 1e-4));
}

static void test_conv2d_lazy(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 6);
  crl_module *m = crl_conv2d_new(-1, 4, 3, 1, 1, true, &g);
  assert_int_equal(crl_module_num_params(m), 0);
  crl_tensor *y =
      crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 5, 6, 6)));
  CRL_CHECK_PTR(y);
  int64_t ys[] = {2, 4, 6, 6};
  assert_shape(y, 4, ys);
  int64_t ws[] = {4, 5, 3, 3};
  assert_shape(crl_td_get(crl_module_params(m), "weight"), 4, ws);
}

/* ---- LayerNorm
 * ------------------------------------------------------------------ */

static void test_layer_norm_values(void **state) {
  (void)state;
  crl_module *m = crl_layer_norm_new(CRL_SHAPE(4), true);
  CRL_CHECK_PTR(m);
  assert_int_equal(crl_module_num_params(m), 8);
  assert_tensor_values(crl_td_get(crl_module_params(m), "weight"),
                       (double[]){1, 1, 1, 1}, 4, 0);
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 4),
                                 (float[]){1, 2, 3, 4, 2, 2, 2, 6});
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  double s1 = sqrt(1.25 + 1e-5), s2 = sqrt(3.0 + 1e-5);
  double e[8] = {-1.5 / s1, -0.5 / s1, 0.5 / s1, 1.5 / s1,
                 -1 / s2,   -1 / s2,   -1 / s2,  3 / s2};
  assert_tensor_values(y, e, 8, 1e-5);
  /* affine: y * w + b */
  set_values(crl_td_get(crl_module_params(m), "weight"),
             (double[]){2, 2, 2, 2});
  set_values(crl_td_get(crl_module_params(m), "bias"), (double[]){1, 1, 1, 1});
  y = crl_module_call(m, NULL, x);
  ASSERT_NEAR(crl_tensor_get_flat(y, 0), 2 * e[0] + 1, 1e-5);
  /* normalized shape over two dims, no affine */
  crl_module *m2 = crl_layer_norm_new(CRL_SHAPE(2, 2), false);
  assert_int_equal(crl_module_num_params(m2), 0);
  crl_tensor *y2 =
      crl_module_call(m2, NULL, crl_reshape(x, CRL_SHAPE(2, 2, 2)));
  assert_tensor_values(y2, e, 8, 1e-5);
  /* a mismatched input names both shapes */
  assert_null(crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  CRL_ASSERT_ERR_HAS("[2, 3]");
  CRL_ASSERT_ERR_HAS("[4]");
  assert_null(crl_layer_norm_new(0, NULL, true));
}

static void test_layer_norm_gradcheck(void **state) {
  (void)state;
  crl_module *m = crl_layer_norm_new(CRL_SHAPE(2, 3), true);
  crl_tensor *in[3] = {randn_leaf64(1, CRL_SHAPE(4, 2, 3)),
                       randn_leaf64(2, CRL_SHAPE(2, 3)),
                       randn_leaf64(3, CRL_SHAPE(2, 3))};
  const char *keys[] = {"weight", "bias"};
  fctx c = {m, 2, keys};
  CRL_CHECK_OK(crl_gradcheck(run_functional, in, 3, &c, 1e-6, 1e-6, 1e-4));
  crl_module *m2 = crl_layer_norm_new(CRL_SHAPE(5), false);
  crl_tensor *x[1] = {randn_leaf64(4, CRL_SHAPE(3, 5))};
  fctx c2 = {m2, 0, NULL};
  CRL_CHECK_OK(crl_gradcheck(run_functional, x, 1, &c2, 1e-6, 1e-6, 1e-4));
}

/* ---- NoisyLinear
 * ------------------------------------------------------------------ */

static void test_noisy_linear(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 7);
  crl_module *m = crl_noisy_linear_new(4, 3, 0, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "NoisyLinear");
  crl_td *p = crl_module_params(m), *b = crl_module_buffers(m);
  crl_td_keys k;
  crl_td_keys_get(p, true, true, &k);
  assert_int_equal(k.n, 4);
  assert_string_equal(k.keys[0], "weight_mu");
  assert_string_equal(k.keys[3], "bias_sigma");
  crl_td_keys_free(&k);
  assert_true(crl_td_contains(b, "weight_epsilon"));
  assert_false(crl_td_get(b, "weight_epsilon")->requires_grad);
  /* sigma init: std_init / sqrt(in), std_init / sqrt(out); std_init 0.1 */
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(p, "weight_sigma"), 5), 0.05,
              1e-7);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(p, "bias_sigma"), 1),
              0.1 / sqrt(3.0), 1e-7);
  for (int64_t i = 0; i < 12; i++)
    assert_true(fabs(crl_tensor_get_flat(crl_td_get(p, "weight_mu"), i)) <=
                0.5);
  /* factorised noise: weight_eps[o][i] = f(e_out[o]) f(e_in[i]), bias_eps =
   * f(e_out): the ratio weight_eps / bias_eps is the same for every row */
  crl_tensor *we = crl_td_get(b, "weight_epsilon");
  crl_tensor *be = crl_td_get(b, "bias_epsilon");
  for (int64_t i = 0; i < 4; i++) {
    double r0 =
        crl_tensor_get(we, (int64_t[]){0, i}) / crl_tensor_get_flat(be, 0);
    for (int64_t o = 1; o < 3; o++)
      ASSERT_NEAR(crl_tensor_get(we, (int64_t[]){o, i}) /
                      crl_tensor_get_flat(be, o),
                  r0, 1e-5 * (1 + fabs(r0)));
  }
  /* output = x (mu + sigma eps)ᵀ + ...: fixed until reset_noise */
  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, 4));
  crl_tensor *y1 = crl_module_call(m, NULL, x);
  crl_tensor *y2 = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y1);
  assert_true(crl_equal(y1, y2));
  crl_tensor *w = crl_add(crl_td_get(p, "weight_mu"),
                          crl_mul(crl_td_get(p, "weight_sigma"), we));
  crl_tensor *bb = crl_add(crl_td_get(p, "bias_mu"),
                           crl_mul(crl_td_get(p, "bias_sigma"), be));
  assert_true(crl_allclose(y1, crl_linear(x, w, bb), 1e-6, 1e-6));
  CRL_CHECK_OK(crl_noisy_linear_reset_noise(m, &g));
  crl_tensor *y3 = crl_module_call(m, NULL, x);
  assert_false(crl_allclose(y1, y3, 1e-6, 1e-6));
  assert_true(crl_equal(y3, crl_module_call(m, NULL, x)));
  /* gradients reach mu and sigma */
  CRL_CHECK_OK(crl_backward(crl_sum(y3, 0, NULL, false), NULL));
  assert_non_null(crl_td_get(p, "weight_sigma")->grad);
  assert_non_null(crl_td_get(p, "bias_mu")->grad);
  /* errors */
  assert_int_equal(
      crl_noisy_linear_reset_noise(crl_linear_new(1, 1, true, &g), &g),
      CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("Linear");
  assert_null(crl_noisy_linear_new(0, 3, 0.1, &g));
}

static void test_noisy_linear_gradcheck(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 8);
  crl_module *m = crl_noisy_linear_new(3, 2, 0.5, &g);
  crl_tensor *in[5] = {
      randn_leaf64(1, CRL_SHAPE(4, 3)), randn_leaf64(2, CRL_SHAPE(2, 3)),
      randn_leaf64(3, CRL_SHAPE(2, 3)), randn_leaf64(4, CRL_SHAPE(2)),
      randn_leaf64(5, CRL_SHAPE(2))};
  /* the float32 noise buffers promote to float64 in the products */
  const char *keys[] = {"weight_mu", "weight_sigma", "bias_mu", "bias_sigma"};
  fctx c = {m, 4, keys};
  CRL_CHECK_OK(crl_gradcheck(run_functional, in, 5, &c, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_activations),
      CRL_TEST(test_linear_values),
      CRL_TEST(test_linear_gradcheck),
      CRL_TEST(test_linear_lazy),
      CRL_TEST(test_conv2d_values),
      CRL_TEST(test_conv2d_gradcheck),
      CRL_TEST(test_conv2d_lazy),
      CRL_TEST(test_layer_norm_values),
      CRL_TEST(test_layer_norm_gradcheck),
      CRL_TEST(test_noisy_linear),
      CRL_TEST(test_noisy_linear_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
