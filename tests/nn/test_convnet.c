/* TorchRL's ConvNet: defaults and keys, values by hand, leading batch dims,
 * squashing, lazy in_channels, gradients through float64 parameters. */
#include "test_util.h"

static void test_convnet_defaults(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_convnet_options o = {.in_channels = 3};
  crl_module *m = crl_convnet_new(&o, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "ConvNet");
  /* 3 layers of 32 channels, kernel 3, stride 1, ELU after each */
  const char *names[] = {"Conv2d", "ELU", "Conv2d", "ELU", "Conv2d", "ELU"};
  for (int i = 0; i < 6; i++)
    assert_string_equal(crl_module_name(crl_sequential_get(m, i)), names[i]);
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(crl_module_params(m), true, true, &k));
  assert_int_equal(k.n, 6);
  assert_string_equal(k.keys[0], "0/weight");
  assert_string_equal(k.keys[2], "2/weight");
  assert_string_equal(k.keys[5], "4/bias");
  crl_td_keys_free(&k);
  int64_t w0[] = {32, 3, 3, 3}, w2[] = {32, 32, 3, 3};
  assert_shape(crl_td_get(crl_module_params(m), "0/weight"), 4, w0);
  assert_shape(crl_td_get(crl_module_params(m), "2/weight"), 4, w2);
  /* [2, 3, 10, 10] -> 32 x 4 x 4 = 512 features */
  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, 3, 10, 10));
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  int64_t ys[] = {2, 512};
  assert_shape(y, 2, ys);
  /* ELU output is > -1 */
  for (int64_t i = 0; i < y->numel; i++)
    assert_true(crl_tensor_get_flat(y, i) > -1);

  /* leading batch dims [2, 1, ...] and none give the same rows */
  crl_tensor *x5 = crl_reshape(x, CRL_SHAPE(2, 1, 3, 10, 10));
  crl_tensor *y5 = crl_module_call(m, NULL, x5);
  CRL_CHECK_PTR(y5);
  int64_t s5[] = {2, 1, 512};
  assert_shape(y5, 3, s5);
  assert_true(crl_allclose(crl_reshape(y5, CRL_SHAPE(2, 512)), y, 1e-6, 1e-6));
  crl_tensor *y3 = crl_module_call(m, NULL, crl_select(x, 0, 1));
  CRL_CHECK_PTR(y3);
  int64_t s3[] = {512};
  assert_shape(y3, 1, s3);
  assert_true(crl_allclose(y3, crl_select(y, 0, 1), 1e-6, 1e-6));

  /* no_squash keeps [N, C, H, W] */
  crl_convnet_options o2 = {.in_channels = 3, .n_layers = 1, .no_squash = true};
  crl_module *m2 = crl_convnet_new(&o2, &g);
  crl_tensor *y2 = crl_module_call(m2, NULL, x5);
  int64_t s2[] = {2, 1, 32, 8, 8};
  assert_shape(y2, 5, s2);
}

static void test_convnet_values(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 2);
  /* one layer, 1 -> 2 channels, kernel 2, stride 1, padding 0, ReLU */
  crl_convnet_options o = {.in_channels = 1,
                           .n_layers = 1,
                           .num_cells = (int64_t[]){2},
                           .kernel_sizes = (int[]){2},
                           .activation = CRL_ACT_RELU};
  crl_module *m = crl_convnet_new(&o, &g);
  CRL_CHECK_PTR(m);
  crl_td *p = crl_module_params(m);
  set_values(crl_td_get(p, "0/weight"), (double[]){1, 1, 1, 1, 1, 0, 0, -1});
  set_values(crl_td_get(p, "0/bias"), (double[]){0, -5});
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1, 3, 3),
                                 (float[]){1, 2, 3, 4, 5, 9, 7, 8, 9});
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  /* channel 0: window sums; channel 1: x[i][j] - x[i+1][j+1] - 5, ReLU */
  assert_tensor_values(y, (double[]){12, 19, 24, 31, 0, 0, 0, 0}, 8, 1e-5);
  /* strides and paddings per layer: 5x5 -> (k3 s2 p1) 3x3 -> (k2 s1 p0) 2x2 */
  crl_convnet_options o2 = {.in_channels = 1,
                            .n_layers = 2,
                            .num_cells = (int64_t[]){4, 3},
                            .kernel_sizes = (int[]){3, 2},
                            .strides = (int[]){2, 1},
                            .paddings = (int[]){1, 0}};
  crl_module *m2 = crl_convnet_new(&o2, &g);
  crl_tensor *y2 =
      crl_module_call(m2, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 1, 5, 5)));
  CRL_CHECK_PTR(y2);
  int64_t s2[] = {4, 12};
  assert_shape(y2, 2, s2);
  /* errors */
  assert_null(crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 3))));
  CRL_ASSERT_ERR_HAS("ConvNet");
  CRL_ASSERT_ERR_HAS("[3, 3]");
  assert_null(
      crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 2, 3, 3))));
  crl_convnet_options bad = {
      .in_channels = 1, .n_layers = 2, .strides = (int[]){1, 0}};
  assert_null(crl_convnet_new(&bad, &g));
  CRL_ASSERT_ERR_HAS("layer 1");
}

static void test_convnet_lazy(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_convnet_options o = {.n_layers = 2, .num_cells = (int64_t[]){4, 8}};
  crl_module *m = crl_convnet_new(&o, &g);
  CRL_CHECK_PTR(m);
  assert_false(crl_td_contains(crl_module_params(m), "0/weight"));
  crl_scope_begin();
  crl_tensor *y =
      crl_module_call(m, NULL, crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3, 6, 6, 6)));
  CRL_CHECK_PTR(y);
  int64_t ys[] = {2, 3, 8 * 2 * 2};
  assert_shape(y, 3, ys);
  crl_scope_end();
  int64_t w0[] = {4, 6, 3, 3};
  assert_shape(crl_td_get(crl_module_params(m), "0/weight"), 4, w0);
}

typedef struct {
  crl_module *m;
  int n;
  char keys[8][32];
} gctx;

static crl_tensor *run_net(crl_tensor **in, void *vctx) {
  gctx *c = vctx;
  crl_td *p = crl_td_new(0, NULL);
  for (int i = 0; i < c->n; i++)
    crl_td_set(p, c->keys[i], in[1 + i]);
  return crl_module_call(c->m, p, in[0]);
}

static void test_convnet_gradcheck(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 4);
  crl_convnet_options o = {.in_channels = 2,
                           .n_layers = 2,
                           .num_cells = (int64_t[]){3, 2},
                           .kernel_sizes = (int[]){2, 2},
                           .strides = (int[]){1, 2},
                           .paddings = (int[]){1, 0},
                           .activation = CRL_ACT_TANH};
  crl_module *m = crl_convnet_new(&o, &g);
  gctx c = {m, 0, {{0}}};
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(crl_module_params(m), true, true, &k));
  crl_tensor *in[9] = {randn_leaf64(1, CRL_SHAPE(2, 1, 2, 4, 4))};
  for (int i = 0; i < k.n; i++) {
    snprintf(c.keys[i], sizeof c.keys[i], "%s", k.keys[i]);
    crl_tensor *t = crl_td_get(crl_module_params(m), k.keys[i]);
    in[1 + i] = crl_detach(crl_cast(t, CRL_FLOAT64));
    CRL_CHECK_OK(crl_set_requires_grad(in[1 + i], true));
  }
  c.n = k.n;
  crl_td_keys_free(&k);
  CRL_CHECK_OK(crl_gradcheck(run_net, in, 1 + c.n, &c, 1e-6, 1e-6, 1e-4));
}

/* created and freed outside scopes, with a backward pass */
static void test_convnet_lifetime(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_convnet_options o = {.n_layers = 1, .num_cells = (int64_t[]){2}};
  crl_module *m = crl_convnet_new(&o, &g);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 1, 4, 4));
  crl_tensor *y = crl_module_call(m, NULL, x);
  assert_non_null(y);
  crl_tensor *l = crl_sum(y, 0, NULL, false);
  assert_int_equal(crl_backward(l, NULL), 0);
  assert_non_null(crl_td_get(crl_module_params(m), "0/weight")->grad);
  crl_tensor_release(l);
  crl_tensor_release(y);
  crl_tensor_release(x);
  crl_module_release(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_convnet_defaults),
      CRL_TEST(test_convnet_values),
      CRL_TEST(test_convnet_lazy),
      CRL_TEST(test_convnet_gradcheck),
      cmocka_unit_test(test_convnet_lifetime),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
