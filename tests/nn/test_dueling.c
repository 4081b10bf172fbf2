/* Dueling DQN heads: structure and defaults as TorchRL's, forward values
 * against hand computation and a double-precision reference, gradients, and
 * functional calls with another parameter TensorDict. */
#include "test_util.h"

#include "nn_ref.h"

static void expect_shape(crl_td *p, const char *key, int nd,
                         const int64_t *shape) {
  crl_tensor *t = crl_td_find(p, key);
  if (!t) fail_msg("no parameter '%s'", key);
  assert_shape(t, nd, shape);
  assert_int_equal(t->dtype, CRL_FLOAT32);
  assert_true(t->requires_grad);
}

static bool all_zero(crl_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++)
    if (crl_tensor_get_flat(t, i) != 0) return false;
  return true;
}

/* Reference Q of the MLP variant: x [B, in] -> [B, A]. */
static double *ref_dueling(crl_td *p, const double *features, int64_t B,
                           int64_t *A) {
  int64_t na, nv;
  double *a = ref_mlp_elu(p, "advantage", 2, false, features, B, &na);
  double *v = ref_mlp_elu(p, "value", 2, false, features, B, &nv);
  assert_int_equal(nv, 1);
  for (int64_t b = 0; b < B; b++) {
    double m = 0;
    for (int64_t j = 0; j < na; j++)
      m += a[b * na + j];
    m /= (double)na;
    for (int64_t j = 0; j < na; j++)
      a[b * na + j] += v[b] - m;
  }
  free(v);
  *A = na;
  return a;
}

static void test_mlp_defaults(void **state) {
  (void)state;
  crl_rng g = seeded_rng(1);
  crl_module *m = crl_dueling_mlp_dqnet_new(4, 6, 0, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DuelingMlpDQNet");
  crl_td *p = crl_module_params(m);
  expect_shape(p, "features/0/weight", CRL_SHAPE(256, 4));
  expect_shape(p, "features/2/weight", CRL_SHAPE(256, 256));
  expect_shape(p, "features/4/weight", CRL_SHAPE(256, 256));
  expect_shape(p, "features/4/bias", CRL_SHAPE(256));
  expect_shape(p, "advantage/0/weight", CRL_SHAPE(512, 256));
  expect_shape(p, "advantage/2/weight", CRL_SHAPE(6, 512));
  expect_shape(p, "value/0/weight", CRL_SHAPE(512, 256));
  expect_shape(p, "value/2/weight", CRL_SHAPE(1, 512));
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(p, true, true, &k));
  assert_int_equal(k.n, 14);
  for (int i = 0; i < k.n; i++) {
    crl_tensor *t = crl_td_find(p, k.keys[i]);
    size_t l = strlen(k.keys[i]);
    if (l >= 4 && strcmp(k.keys[i] + l - 4, "bias") == 0) {
      if (!all_zero(t)) fail_msg("bias '%s' is not zero", k.keys[i]);
    } else {
      /* torch's default Linear init: |w| <= 1/sqrt(fan_in) */
      double bound = 1 / sqrt((double)t->shape[1]), mx = 0;
      for (int64_t j = 0; j < t->numel; j++)
        mx = fmax(mx, fabs(crl_tensor_get_flat(t, j)));
      if (mx > bound || mx < 0.5 * bound)
        fail_msg("'%s': max |w| %g, bound %g", k.keys[i], mx, bound);
    }
  }
  crl_td_keys_free(&k);
  /* the same generator state gives the same network */
  crl_rng g2 = seeded_rng(1);
  crl_module *m2 = crl_dueling_mlp_dqnet_new(4, 6, 0, &g2);
  assert_true(crl_td_equal(p, crl_module_params(m2)));
}

/* All weights zero: Q = value bias + advantage bias - mean(advantage
 * bias), whatever the input. */
static void test_mlp_hand(void **state) {
  (void)state;
  crl_rng g = seeded_rng(2);
  crl_module *m = crl_dueling_mlp_dqnet_new(2, 3, 2, &g);
  CRL_CHECK_PTR(m);
  crl_td *p = crl_module_params(m);
  crl_no_grad_begin(); /* parameters are edited in place */
  CRL_CHECK_OK(crl_td_zero_(p));
  crl_tensor *ab = crl_td_get(p, "advantage/2/bias");
  crl_tensor *vb = crl_td_get(p, "value/2/bias");
  crl_tensor_set_flat(ab, 0, 1);
  crl_tensor_set_flat(ab, 1, 2);
  crl_tensor_set_flat(ab, 2, 6);
  crl_tensor_set_flat(vb, 0, 5);
  crl_no_grad_end();
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 2), (float[]){1, -2, 0.5f, 3});
  crl_tensor *q = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(2, 3));
  /* 5 + [1, 2, 6] - 3 */
  assert_tensor_values(q, (double[]){3, 4, 8, 3, 4, 8}, 6, 1e-6);
  /* one path on: value hidden unit 0 = elu(w * feature); features are
   * elu(...) of zero weights plus a bias we set */
  crl_no_grad_begin();
  crl_tensor_set_flat(crl_td_get(p, "features/4/bias"), 0, 2);   /* f0 = 2 */
  crl_tensor_set_flat(crl_td_get(p, "value/0/weight"), 0, -1.5); /* h = -3 */
  crl_tensor_set_flat(crl_td_get(p, "value/2/weight"), 0, 2);
  crl_no_grad_end();
  q = crl_module_call(m, NULL, x);
  double v = 5 + 2 * (exp(-3.0) - 1); /* value = 5 + 2 elu(-3) */
  assert_tensor_values(q, (double[]){v - 2, v - 1, v + 3, v - 2, v - 1, v + 3},
                       6, 1e-6);
}

static void test_mlp_reference(void **state) {
  (void)state;
  crl_rng g = seeded_rng(3);
  crl_module *m = crl_dueling_mlp_dqnet_new(3, 4, 5, &g);
  CRL_CHECK_PTR(m);
  crl_td *p = crl_module_params(m);
  ref_fill_params(p, 0.8, 7); /* biases non-zero too */
  /* leading batch dims [2, 3] */
  crl_rng gx = seeded_rng(4);
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 3, 3));
  crl_tensor *q = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(2, 3, 4));
  double *xv = ref_values(x);
  int64_t nf, A;
  double *f = ref_mlp_elu(p, "features", 3, true, xv, 6, &nf);
  assert_int_equal(nf, 5);
  double *e = ref_dueling(p, f, 6, &A);
  assert_int_equal(A, 4);
  assert_tensor_values(q, e, 24, 1e-5);
  /* unbatched input */
  crl_tensor *x1 = crl_select(x, 0, 1);
  x1 = crl_select(x1, 0, 2);
  crl_tensor *q1 = crl_module_call(m, NULL, x1);
  assert_shape(q1, CRL_SHAPE(4));
  assert_tensor_values(q1, e + 5 * 4, 4, 1e-5);
  free(xv);
  free(f);
  free(e);
}

static crl_td *g_params; /* the float64 params of the gradient checks */
static crl_tensor *func_fn(crl_tensor **in, void *ctx) {
  return crl_module_call(ctx, g_params, in[0]);
}

static void test_mlp_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(5);
  crl_module *m = crl_dueling_mlp_dqnet_new(3, 3, 4, &g);
  ref_fill_params(crl_module_params(m), 0.7, 9);
  const char *grad[] = {"features/0/weight",  "features/4/bias",
                        "advantage/0/weight", "advantage/2/bias",
                        "value/2/weight",     NULL};
  g_params = ref_params64(m, grad);
  crl_tensor *in[6] = {randn_leaf64(6, CRL_SHAPE(2, 3))};
  for (int i = 0; grad[i]; i++)
    in[i + 1] = crl_td_find(g_params, grad[i]);
  CRL_CHECK_OK(crl_gradcheck(func_fn, in, 6, m, 1e-6, 1e-6, 1e-4));
  /* the module's own float32 parameters get gradients too */
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *loss = crl_sum(crl_module_call(m, NULL, x), 0, NULL, false);
  CRL_CHECK_OK(crl_backward(loss, NULL));
  crl_tensor *w = crl_td_get(crl_module_params(m), "value/0/weight");
  CRL_CHECK_PTR(w->grad);
  crl_zero_grad(w);
}

static void test_functional(void **state) {
  (void)state;
  crl_rng g = seeded_rng(7);
  crl_module *m = crl_dueling_mlp_dqnet_new(3, 2, 4, &g);
  crl_module *m2 = crl_dueling_mlp_dqnet_new(3, 2, 4, &g);
  crl_td *own = crl_td_clone(crl_module_params(m));
  crl_td *other = crl_module_params_clone(m2, false);
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 3), (float[]){0.1f, -0.4f, 2});
  crl_tensor *q_own = crl_module_call(m, NULL, x);
  crl_tensor *q_other = crl_module_call(m, other, x);
  crl_tensor *q_m2 = crl_module_call(m2, NULL, x);
  CRL_CHECK_PTR(q_other);
  assert_true(crl_allclose(q_other, q_m2, 0, 0));
  assert_false(crl_allclose(q_own, q_other, 1e-3, 0));
  /* the module's own parameters are untouched */
  assert_true(crl_td_equal(own, crl_module_params(m)));
  /* loading the other parameters makes the calls agree */
  CRL_CHECK_OK(crl_module_load_params(m, other));
  assert_true(crl_allclose(crl_module_call(m, NULL, x), q_m2, 0, 0));
  /* a params TensorDict missing an entry fails naming it */
  CRL_CHECK_OK(crl_td_del(other, "value/2/bias"));
  assert_null(crl_module_call(m, other, x));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("bias");
  /* wrong input width */
  crl_tensor *bad = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 4));
  assert_null(crl_module_call(m, NULL, bad));
  CRL_ASSERT_ERR_HAS("[1, 4]");
  assert_null(crl_dueling_mlp_dqnet_new(3, 0, 4, &g));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

/* ---- CNN variant
 * --------------------------------------------------------------- */

static void test_cnn(void **state) {
  (void)state;
  crl_rng g = seeded_rng(11);
  crl_module *m = crl_dueling_cnn_dqnet_new(1, 3, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "DuelingCnnDQNet");
  crl_td *p = crl_module_params(m);
  expect_shape(p, "features/0/weight", CRL_SHAPE(32, 1, 8, 8));
  expect_shape(p, "features/2/weight", CRL_SHAPE(64, 32, 4, 4));
  expect_shape(p, "features/4/weight", CRL_SHAPE(64, 64, 3, 3));
  assert_true(all_zero(crl_td_get(p, "features/0/bias")));
  assert_true(all_zero(crl_td_get(p, "features/4/bias")));
  /* heads are lazy until the image size is known */
  assert_null(crl_td_find(p, "advantage/0/weight"));
  /* [3, 2] leading dims, 1 x 44 x 40 images: 64 x 2 x 1 features */
  crl_rng gx = seeded_rng(12);
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(3, 2, 1, 44, 40));
  crl_tensor *q = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(q);
  assert_shape(q, CRL_SHAPE(3, 2, 3));
  expect_shape(p, "advantage/0/weight", CRL_SHAPE(512, 128));
  expect_shape(p, "advantage/2/weight", CRL_SHAPE(3, 512));
  expect_shape(p, "value/0/weight", CRL_SHAPE(512, 128));
  expect_shape(p, "value/2/weight", CRL_SHAPE(1, 512));
  assert_int_equal(crl_module_num_params(m),
                   32 * 64 + 32 + 64 * 32 * 16 + 64 + 64 * 64 * 9 + 64 +
                       2 * (512 * 128 + 512) + 3 * 512 + 3 + 512 + 1);
  ref_fill_params(p, 0.1, 13);
  q = crl_module_call(m, NULL, x);
  double *xv = ref_values(x);
  int64_t c3, h3, w3, A;
  /* TorchRL's default dueling ConvNet: kernels 8-4-3, strides 4-2-1 */
  double *f =
      ref_convnet_elu(p, "features", 3, (const int[]){4, 2, 1},
                      (const int[]){0, 0, 0}, xv, 6, 1, 44, 40, &c3, &h3, &w3);
  assert_int_equal(c3 * h3 * w3, 128);
  double *e = ref_dueling(p, f, 6, &A);
  assert_tensor_values(q, e, 18, 1e-4);
  free(xv);
  free(f);
  free(e);
  /* a single image without batch dims */
  crl_tensor *x1 = crl_select(crl_select(x, 0, 0), 0, 0);
  crl_tensor *q1 = crl_module_call(m, NULL, x1);
  CRL_CHECK_PTR(q1);
  assert_shape(q1, CRL_SHAPE(3));
  /* an image too small for the kernels fails cleanly */
  crl_tensor *tiny = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 1, 10, 10));
  assert_null(crl_module_call(m, NULL, tiny));
}

static void test_cnn_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(14);
  crl_module *m = crl_dueling_cnn_dqnet_new(1, 2, &g);
  crl_tensor *x0 = crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 1, 36, 36));
  CRL_CHECK_PTR(crl_module_call(m, NULL, x0)); /* materialise the heads */
  ref_fill_params(crl_module_params(m), 0.2, 15);
  const char *grad[] = {"features/4/bias", "advantage/2/bias", "value/0/bias",
                        NULL};
  g_params = ref_params64(m, grad);
  crl_tensor *in[4] = {randn_leaf64(16, CRL_SHAPE(1, 1, 36, 36))};
  for (int i = 0; grad[i]; i++)
    in[i + 1] = crl_td_find(g_params, grad[i]);
  CRL_CHECK_OK(crl_gradcheck(func_fn, in, 4, m, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_mlp_defaults),  CRL_TEST(test_mlp_hand),
      CRL_TEST(test_mlp_reference), CRL_TEST(test_mlp_gradcheck),
      CRL_TEST(test_functional),    CRL_TEST(test_cnn),
      CRL_TEST(test_cnn_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
