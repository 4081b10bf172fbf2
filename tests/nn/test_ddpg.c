/* DDPG actor and critic nets (TorchRL's DdpgMlpActor, DdpgMlpQNet,
 * DdpgCnnActor, DdpgCnnQNet): structure, default sizes and initialisation,
 * forward values against hand computation and a double-precision
 * reference, the action entering the critic, gradients, functional calls. */
#include "test_util.h"

#include "nn_ref.h"

static void expect_shape(crl_td *p, const char *key, int nd,
                         const int64_t *shape) {
  crl_tensor *t = crl_td_find(p, key);
  if (!t) fail_msg("no parameter '%s'", key);
  assert_shape(t, nd, shape);
}

static double max_abs(crl_tensor *t) {
  double m = 0;
  for (int64_t i = 0; i < t->numel; i++)
    m = fmax(m, fabs(crl_tensor_get_flat(t, i)));
  return m;
}

/* ddpg_init_last_layer: uniform(-scale/2, scale/2), filling the range */
static void expect_last_layer(crl_td *p, const char *w, const char *b,
                              double scale) {
  double mw = max_abs(crl_td_get(p, w)), mb = max_abs(crl_td_get(p, b));
  if (mw > scale / 2 || mw < 0.3 * scale / 2)
    fail_msg("'%s': max |w| %g for scale %g", w, mw, scale);
  if (mb > scale / 2) fail_msg("'%s': max |b| %g for scale %g", b, mb, scale);
}

static crl_tensor *qcall(crl_module *m, crl_td *p, crl_tensor *obs,
                         crl_tensor *act) {
  crl_tensor *y = NULL;
  crl_tensor *xs[2] = {obs, act};
  if (crl_module_forward(m, p, 2, xs, 1, &y)) return NULL;
  return y;
}

static crl_td *g_params;
static crl_tensor *actor_fn(crl_tensor **in, void *ctx) {
  return crl_module_call(ctx, g_params, in[0]);
}
static crl_tensor *qnet_fn(crl_tensor **in, void *ctx) {
  return qcall(ctx, g_params, in[0], in[1]);
}
static crl_tensor *cnn_actor_fn(crl_tensor **in, void *ctx) {
  crl_tensor *y[2] = {NULL, NULL};
  if (crl_module_forward(ctx, g_params, 1, in, 2, y)) return NULL;
  crl_tensor *h = crl_sum(y[1], 1, (const int[]){-1}, true);
  crl_tensor *ts[2] = {y[0], h};
  return crl_cat(2, ts, -1); /* both outputs */
}

/* ---- MLP actor
 * ---------------------------------------------------------------- */

static void test_mlp_actor(void **state) {
  (void)state;
  crl_rng g = seeded_rng(1);
  crl_module *m = crl_ddpg_mlp_actor_new(3, 2, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DdpgMlpActor");
  assert_int_equal(crl_module_num_inputs(m), 1);
  assert_int_equal(crl_module_num_outputs(m), 1);
  crl_td *p = crl_module_params(m);
  expect_shape(p, "mlp/0/weight", CRL_SHAPE(400, 3));
  expect_shape(p, "mlp/2/weight", CRL_SHAPE(300, 400));
  expect_shape(p, "mlp/4/weight", CRL_SHAPE(2, 300));
  expect_shape(p, "mlp/4/bias", CRL_SHAPE(2));
  assert_int_equal(crl_module_num_params(m),
                   400 * 3 + 400 + 300 * 400 + 300 + 2 * 300 + 2);
  expect_last_layer(p, "mlp/4/weight", "mlp/4/bias", 6e-3);
  /* the first layers keep torch's default init (bound 1/sqrt(fan_in)) */
  double m0 = max_abs(crl_td_get(p, "mlp/0/weight"));
  assert_true(m0 <= 1 / sqrt(3.0) && m0 > 0.5 / sqrt(3.0));
  /* forward: batch dims [2, 3] against the reference */
  crl_rng gx = seeded_rng(2);
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 3, 3));
  crl_tensor *a = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(a);
  assert_shape(a, CRL_SHAPE(2, 3, 2));
  double *xv = ref_values(x);
  int64_t na;
  double *e = ref_mlp_elu(p, "mlp", 3, false, xv, 6, &na);
  assert_int_equal(na, 2);
  assert_tensor_values(a, e, 12, 1e-5);
  /* not squashed, as TorchRL's: a large last layer gives |a| > 1 */
  crl_no_grad_begin();
  crl_fill_(crl_td_get(p, "mlp/4/bias"), 3.0);
  crl_no_grad_end();
  a = crl_module_call(m, NULL, x);
  assert_true(crl_tensor_get_flat(a, 0) > 2.9);
  free(xv);
  free(e);
}

static void test_mlp_actor_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(3);
  crl_module *m = crl_ddpg_mlp_actor_new(2, 2, &g);
  ref_fill_params(crl_module_params(m), 0.1, 4);
  const char *grad[] = {"mlp/0/weight", "mlp/2/bias", "mlp/4/weight", NULL};
  g_params = ref_params64(m, grad);
  crl_tensor *in[4] = {randn_leaf64(5, CRL_SHAPE(2, 2))};
  for (int i = 0; grad[i]; i++)
    in[i + 1] = crl_td_find(g_params, grad[i]);
  CRL_CHECK_OK(crl_gradcheck(actor_fn, in, 4, m, 1e-6, 1e-6, 1e-4));
}

/* ---- MLP Q-net
 * ---------------------------------------------------------------- */

static void test_mlp_qnet(void **state) {
  (void)state;
  crl_rng g = seeded_rng(5);
  crl_module *m = crl_ddpg_mlp_qnet_new(3, 2, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DdpgMlpQNet");
  assert_int_equal(crl_module_num_inputs(m), 2);
  assert_int_equal(crl_module_num_outputs(m), 1);
  crl_td *p = crl_module_params(m);
  expect_shape(p, "mlp1/0/weight", CRL_SHAPE(400, 3));
  expect_shape(p, "mlp2/0/weight", CRL_SHAPE(300, 402));
  expect_shape(p, "mlp2/2/weight", CRL_SHAPE(1, 300));
  assert_null(crl_td_find(p, "mlp1/2/weight"));
  expect_last_layer(p, "mlp2/2/weight", "mlp2/2/bias", 6e-3);
  /* hand computation: everything zero but one path from the action:
   * Q = b + w2 * elu(w1 * a0) */
  crl_no_grad_begin();
  CRL_CHECK_OK(crl_td_zero_(p));
  crl_tensor_set_flat(crl_td_get(p, "mlp2/2/bias"), 0, 0.5);
  crl_tensor_set_flat(crl_td_get(p, "mlp2/2/weight"), 0, 1);
  /* row 0, column 400: the first action component (after 400 obs
   * features) */
  crl_tensor_set_flat(crl_td_get(p, "mlp2/0/weight"), 400, 2);
  crl_no_grad_end();
  crl_tensor *obs = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3),
                                   (float[]){1, 2, 3, -1, 0, 4});
  crl_tensor *act =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 2), (float[]){0.3f, 9, -1, 9});
  crl_tensor *q = qcall(m, NULL, obs, act);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(2, 1));
  assert_tensor_values(q, (double[]){0.5 + 0.6, 0.5 + exp(-2.0) - 1}, 2, 1e-6);
  /* the observation path: obs feature 0 = elu(w . obs + b) */
  crl_no_grad_begin();
  crl_tensor *w1 = crl_td_get(p, "mlp1/0/weight");
  crl_tensor_set_flat(w1, 0, 1); /* feature 0 = elu(obs0 - 2) */
  crl_tensor_set_flat(crl_td_get(p, "mlp1/0/bias"), 0, -2);
  crl_tensor_set_flat(crl_td_get(p, "mlp2/0/weight"), 0, 1); /* h0 += f0 */
  crl_no_grad_end();
  q = qcall(m, NULL, obs, act);
  double f0 = exp(-1.0) - 1, f1 = exp(-3.0) - 1; /* elu(1-2), elu(-1-2) */
  double h0 = f0 + 0.6, h1 = f1 - 2;
  assert_tensor_values(q,
                       (double[]){0.5 + (h0 > 0 ? h0 : exp(h0) - 1),
                                  0.5 + (h1 > 0 ? h1 : exp(h1) - 1)},
                       2, 1e-6);
  /* random parameters against the reference, batch dims [2, 2] */
  ref_fill_params(p, 0.2, 6);
  crl_rng gx = seeded_rng(7);
  obs = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 3));
  act = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 2));
  q = qcall(m, NULL, obs, act);
  assert_shape(q, CRL_SHAPE(2, 2, 1));
  double *ov = ref_values(obs), *av = ref_values(act);
  int64_t n1, n2;
  double *h = ref_mlp_elu(p, "mlp1", 1, true, ov, 4, &n1);
  assert_int_equal(n1, 400);
  double *cat = malloc(sizeof(double) * 4 * 402);
  for (int b = 0; b < 4; b++) {
    memcpy(cat + b * 402, h + b * 400, sizeof(double) * 400);
    memcpy(cat + b * 402 + 400, av + b * 2, sizeof(double) * 2);
  }
  double *e = ref_mlp_elu(p, "mlp2", 2, false, cat, 4, &n2);
  assert_tensor_values(q, e, 4, 1e-4);
  free(ov);
  free(av);
  free(h);
  free(cat);
  free(e);
  /* mismatched batch dims of observation and action */
  crl_tensor *act3 = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 2));
  assert_null(qcall(m, NULL, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)), act3));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("DdpgMlpQNet");
  CRL_ASSERT_ERR_HAS("[3, 2]");
  /* one input is not enough */
  assert_null(crl_module_call(m, NULL, obs));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

static void test_mlp_qnet_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(8);
  crl_module *m = crl_ddpg_mlp_qnet_new(2, 2, &g);
  ref_fill_params(crl_module_params(m), 0.1, 9);
  const char *grad[] = {"mlp1/0/bias", "mlp2/0/bias", "mlp2/2/weight", NULL};
  g_params = ref_params64(m, grad);
  crl_tensor *in[5] = {randn_leaf64(10, CRL_SHAPE(3, 2)),
                       randn_leaf64(11, CRL_SHAPE(3, 2))};
  for (int i = 0; grad[i]; i++)
    in[i + 2] = crl_td_find(g_params, grad[i]);
  CRL_CHECK_OK(crl_gradcheck(qnet_fn, in, 5, m, 1e-6, 1e-6, 1e-4));
}

static void test_functional(void **state) {
  (void)state;
  crl_rng g = seeded_rng(12);
  crl_module *m = crl_ddpg_mlp_qnet_new(3, 1, &g);
  crl_module *m2 = crl_ddpg_mlp_qnet_new(3, 1, &g);
  crl_td *own = crl_td_clone(crl_module_params(m));
  crl_td *target = crl_module_params_clone(m2, false);
  crl_tensor *obs = crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 3));
  crl_tensor *act = crl_full(CRL_FLOAT32, CRL_SHAPE(4, 1), -0.5);
  crl_tensor *q_t = qcall(m, target, obs, act);
  crl_tensor *q_2 = qcall(m2, NULL, obs, act);
  CRL_CHECK_PTR(q_t);
  assert_true(crl_allclose(q_t, q_2, 0, 0));
  assert_false(crl_allclose(q_t, qcall(m, NULL, obs, act), 1e-6, 0));
  assert_true(crl_td_equal(own, crl_module_params(m)));
  /* target params do not require grad: the functional call records no
   * graph on them */
  assert_false(q_t->requires_grad);
  CRL_CHECK_OK(crl_td_del(target, "mlp2"));
  assert_null(qcall(m, target, obs, act));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("mlp2");
  assert_null(crl_ddpg_mlp_qnet_new(3, 0, &g));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

/* ---- CNN nets
 * ---------------------------------------------------------------- */

/* The DDPG CNN nets' ConvNet ("convnet"): kernels 8-4-3, strides 4-2-1,
 * paddings 0-0-1, ELU. */
static const int cnn_strides[3] = {4, 2, 1}, cnn_pads[3] = {0, 0, 1};

static void test_cnn_actor(void **state) {
  (void)state;
  crl_rng g = seeded_rng(20);
  crl_module *m = crl_ddpg_cnn_actor_new(2, 3, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DdpgCnnActor");
  assert_int_equal(crl_module_num_outputs(m), 2);
  crl_td *p = crl_module_params(m);
  expect_shape(p, "convnet/0/weight", CRL_SHAPE(32, 2, 8, 8));
  expect_shape(p, "convnet/2/weight", CRL_SHAPE(64, 32, 4, 4));
  expect_shape(p, "convnet/4/weight", CRL_SHAPE(64, 64, 3, 3));
  expect_shape(p, "mlp/2/weight", CRL_SHAPE(200, 200));
  expect_shape(p, "mlp/4/weight", CRL_SHAPE(3, 200));
  expect_last_layer(p, "mlp/4/weight", "mlp/4/bias", 6e-4);
  assert_null(crl_td_find(p, "mlp/0/weight")); /* lazy */
  /* 28 x 24 images: 6 x 5 -> 2 x 1 -> 2 x 1 (padding 1): 128 features */
  crl_rng gx = seeded_rng(21);
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 28, 24));
  crl_tensor *y[2] = {NULL, NULL};
  CRL_CHECK_OK(crl_module_forward(m, NULL, 1, &x, 2, y));
  assert_shape(y[0], CRL_SHAPE(2, 3));
  assert_shape(y[1], CRL_SHAPE(2, 128));
  expect_shape(p, "mlp/0/weight", CRL_SHAPE(200, 128));
  ref_fill_params(p, 0.1, 22);
  CRL_CHECK_OK(crl_module_forward(m, NULL, 1, &x, 2, y));
  double *xv = ref_values(x);
  int64_t c3, h3, w3, na;
  double *hid = ref_convnet_elu(p, "convnet", 3, cnn_strides, cnn_pads, xv, 2,
                                2, 28, 24, &c3, &h3, &w3);
  assert_int_equal(c3 * h3 * w3, 128);
  assert_tensor_values(y[1], hid, 256, 1e-5);
  double *e = ref_mlp_elu(p, "mlp", 3, false, hid, 2, &na);
  assert_tensor_values(y[0], e, 6, 1e-5);
  free(xv);
  free(hid);
  free(e);
  /* leading batch dims [3, 1] */
  crl_tensor *x5 = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(3, 1, 2, 28, 24));
  CRL_CHECK_OK(crl_module_forward(m, NULL, 1, &x5, 2, y));
  assert_shape(y[0], CRL_SHAPE(3, 1, 3));
  assert_shape(y[1], CRL_SHAPE(3, 1, 128));
  /* one-output convenience call is refused (two outputs) */
  assert_null(crl_module_call(m, NULL, x));
}

static void test_cnn_qnet(void **state) {
  (void)state;
  crl_rng g = seeded_rng(30);
  crl_module *m = crl_ddpg_cnn_qnet_new(1, 2, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DdpgCnnQNet");
  crl_td *p = crl_module_params(m);
  expect_shape(p, "convnet/0/weight", CRL_SHAPE(32, 1, 8, 8));
  expect_shape(p, "convnet/2/weight", CRL_SHAPE(64, 32, 4, 4));
  expect_shape(p, "convnet/4/weight", CRL_SHAPE(128, 64, 3, 3));
  expect_shape(p, "mlp/0/weight", CRL_SHAPE(200, 130)); /* 128 + action */
  expect_shape(p, "mlp/4/weight", CRL_SHAPE(1, 200));
  expect_last_layer(p, "mlp/4/weight", "mlp/4/bias", 6e-4);
  ref_fill_params(p, 0.1, 31);
  /* 36 x 28: 8 x 6 -> 3 x 2 -> 3 x 2, averaged to 128 features */
  crl_rng gx = seeded_rng(32);
  crl_tensor *obs = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 1, 36, 28));
  crl_tensor *act = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2));
  crl_tensor *q = qcall(m, NULL, obs, act);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(2, 1));
  double *ov = ref_values(obs), *av = ref_values(act);
  int64_t c3, h3, w3, n;
  double *f = ref_convnet_elu(p, "convnet", 3, cnn_strides, cnn_pads, ov, 2, 1,
                              36, 28, &c3, &h3, &w3);
  assert_int_equal(c3, 128);
  assert_int_equal(h3 * w3, 6);
  double cat[2 * 130];
  for (int b = 0; b < 2; b++) {
    for (int c = 0; c < 128; c++) {
      double s = 0;
      for (int k = 0; k < 6; k++)
        s += f[(b * 128 + c) * 6 + k];
      cat[b * 130 + c] = s / 6;
    }
    cat[b * 130 + 128] = av[b * 2];
    cat[b * 130 + 129] = av[b * 2 + 1];
  }
  double *e = ref_mlp_elu(p, "mlp", 3, false, cat, 2, &n);
  assert_tensor_values(q, e, 2, 1e-5);
  free(ov);
  free(av);
  free(f);
  free(e);
  /* leading batch dims [2, 2] */
  crl_tensor *o4 = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 1, 36, 28));
  crl_tensor *a4 = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 2));
  q = qcall(m, NULL, o4, a4);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(2, 2, 1));
}

static void test_cnn_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(40);
  crl_module *a = crl_ddpg_cnn_actor_new(1, 2, &g);
  crl_tensor *x0 = crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 1, 20, 20));
  crl_tensor *y[2];
  CRL_CHECK_OK(crl_module_forward(a, NULL, 1, &x0, 2, y)); /* materialise */
  ref_fill_params(crl_module_params(a), 0.2, 41);
  const char *ga[] = {"convnet/4/bias", "mlp/0/bias", "mlp/4/weight", NULL};
  g_params = ref_params64(a, ga);
  crl_tensor *in[4] = {randn_leaf64(42, CRL_SHAPE(1, 1, 20, 20))};
  for (int i = 0; ga[i]; i++)
    in[i + 1] = crl_td_find(g_params, ga[i]);
  CRL_CHECK_OK(crl_gradcheck(cnn_actor_fn, in, 4, a, 1e-6, 1e-6, 1e-4));

  crl_module *q = crl_ddpg_cnn_qnet_new(1, 2, &g);
  ref_fill_params(crl_module_params(q), 0.2, 43);
  const char *gq[] = {"convnet/4/bias", "mlp/0/bias", NULL};
  g_params = ref_params64(q, gq);
  crl_tensor *qin[4] = {randn_leaf64(44, CRL_SHAPE(2, 1, 20, 20)),
                        randn_leaf64(45, CRL_SHAPE(2, 2))};
  for (int i = 0; gq[i]; i++)
    qin[i + 2] = crl_td_find(g_params, gq[i]);
  CRL_CHECK_OK(crl_gradcheck(qnet_fn, qin, 4, q, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_mlp_actor),  CRL_TEST(test_mlp_actor_gradcheck),
      CRL_TEST(test_mlp_qnet),   CRL_TEST(test_mlp_qnet_gradcheck),
      CRL_TEST(test_functional), CRL_TEST(test_cnn_actor),
      CRL_TEST(test_cnn_qnet),   CRL_TEST(test_cnn_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
