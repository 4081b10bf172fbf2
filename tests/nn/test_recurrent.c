/* GRU and LSTM cells: torch's parameter names, shapes and initialisation,
 * forward values against the gate equations (by hand and with a
 * double-precision reference), gradients of the fused gate kernels (through
 * inputs, states, parameters and several time steps), functional calls. */
#include "test_util.h"

#include "nn_ref.h"

static void expect_param(crl_td *p, const char *key, int nd,
                         const int64_t *shape, double bound) {
  crl_tensor *t = crl_td_find(p, key);
  if (!t) fail_msg("no parameter '%s'", key);
  assert_shape(t, nd, shape);
  assert_true(t->requires_grad);
  double mx = 0, sum = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = crl_tensor_get_flat(t, i);
    mx = fmax(mx, fabs(v));
    sum += v;
  }
  if (mx > bound || mx < 0.5 * bound)
    fail_msg("'%s': max |v| %g, bound %g", key, mx, bound);
  if (fabs(sum / (double)t->numel) > 0.5 * bound)
    fail_msg("'%s': mean %g is not near 0", key, sum / (double)t->numel);
}

/* Reference cells, from torch's equations. x [B, I], h, c [B, H]. */
static void ref_gru(crl_td *p, const double *x, const double *h, int64_t B,
                    int64_t H, double *out) {
  crl_tensor *wi = ref_param(p, "weight_ih"), *wh = ref_param(p, "weight_hh");
  crl_tensor *bi = ref_param(p, "bias_ih"), *bh = ref_param(p, "bias_hh");
  double *gi = malloc(sizeof(double) * (size_t)(B * 3 * H));
  double *gh = malloc(sizeof(double) * (size_t)(B * 3 * H));
  ref_linear(x, B, wi, bi, gi);
  ref_linear(h, B, wh, bh, gh);
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < H; j++) {
      const double *a = gi + b * 3 * H, *c = gh + b * 3 * H;
      double r = ref_sigmoid(a[j] + c[j]);
      double z = ref_sigmoid(a[H + j] + c[H + j]);
      double n = tanh(a[2 * H + j] + r * c[2 * H + j]);
      out[b * H + j] = (1 - z) * n + z * h[b * H + j];
    }
  free(gi);
  free(gh);
}

static void ref_lstm(crl_td *p, const double *x, const double *h,
                     const double *c, int64_t B, int64_t H, double *h2,
                     double *c2) {
  crl_tensor *wi = ref_param(p, "weight_ih"), *wh = ref_param(p, "weight_hh");
  crl_tensor *bi = ref_param(p, "bias_ih"), *bh = ref_param(p, "bias_hh");
  double *gi = malloc(sizeof(double) * (size_t)(B * 4 * H));
  double *gh = malloc(sizeof(double) * (size_t)(B * 4 * H));
  ref_linear(x, B, wi, bi, gi);
  ref_linear(h, B, wh, bh, gh);
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < H; j++) {
      const double *a = gi + b * 4 * H, *e = gh + b * 4 * H;
      double i = ref_sigmoid(a[j] + e[j]);
      double f = ref_sigmoid(a[H + j] + e[H + j]);
      double g = tanh(a[2 * H + j] + e[2 * H + j]);
      double o = ref_sigmoid(a[3 * H + j] + e[3 * H + j]);
      double cn = f * c[b * H + j] + i * g;
      c2[b * H + j] = cn;
      h2[b * H + j] = o * tanh(cn);
    }
  free(gi);
  free(gh);
}

static crl_tensor *gru(crl_module *m, crl_td *p, crl_tensor *x, crl_tensor *h) {
  crl_tensor *in[2] = {x, h}, *out = NULL;
  if (crl_module_forward(m, p, 2, in, 1, &out)) return NULL;
  return out;
}

static int lstm(crl_module *m, crl_td *p, crl_tensor *x, crl_tensor *h,
                crl_tensor *c, crl_tensor **h2, crl_tensor **c2) {
  crl_tensor *in[3] = {x, h, c}, *out[2] = {NULL, NULL};
  int rc = crl_module_forward(m, p, 3, in, 2, out);
  *h2 = out[0];
  *c2 = out[1];
  return rc;
}

/* ---- GRU
 * ---------------------------------------------------------------------- */

static void test_gru_params(void **state) {
  (void)state;
  crl_rng g = seeded_rng(1);
  crl_module *m = crl_gru_cell_new(5, 16, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "GRUCell");
  assert_int_equal(crl_module_num_inputs(m), 2);
  assert_int_equal(crl_module_num_outputs(m), 1);
  crl_td *p = crl_module_params(m);
  double k = 0.25; /* 1/sqrt(16) */
  expect_param(p, "weight_ih", CRL_SHAPE(48, 5), k);
  expect_param(p, "weight_hh", CRL_SHAPE(48, 16), k);
  expect_param(p, "bias_ih", CRL_SHAPE(48), k);
  expect_param(p, "bias_hh", CRL_SHAPE(48), k);
  assert_int_equal(crl_td_len(p), 4);
  /* torch's order of the keys */
  crl_tensor *t;
  crl_td *s;
  assert_string_equal(crl_td_key_at(p, 0, &t, &s), "weight_ih");
  assert_string_equal(crl_td_key_at(p, 3, &t, &s), "bias_hh");
  assert_null(crl_gru_cell_new(0, 4, &g));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_gru_cell_new(3, -1, &g));
}

/* Zero weights: the gates come from the biases alone. */
static void test_gru_hand(void **state) {
  (void)state;
  crl_rng g = seeded_rng(2);
  crl_module *m = crl_gru_cell_new(2, 1, &g);
  crl_td *p = crl_module_params(m);
  set_values(crl_td_get(p, "weight_ih"), (double[]){0, 0, 0, 0, 0, 0});
  set_values(crl_td_get(p, "weight_hh"), (double[]){0, 0, 0});
  set_values(crl_td_get(p, "bias_ih"), (double[]){0.5, -1, 0.25});
  set_values(crl_td_get(p, "bias_hh"), (double[]){0.5, 0, 2});
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 2), (float[]){3, -7});
  crl_tensor *h = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1), (float[]){0.8f});
  crl_tensor *y = gru(m, NULL, x, h);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(1, 1));
  double r = 1 / (1 + exp(-1.0)); /* σ(0.5 + 0.5) */
  double z = 1 / (1 + exp(1.0));  /* σ(-1 + 0) */
  double n = tanh(0.25 + r * 2);  /* tanh(b_in + r b_hn) */
  double e = (1 - z) * n + z * 0.8;
  assert_tensor_values(y, &e, 1, 1e-6);
  /* the hidden path: W_hn scales h inside r ⊙ (...) */
  set_values(crl_td_get(p, "weight_hh"), (double[]){0, 0, 1.5});
  y = gru(m, NULL, x, h);
  n = tanh(0.25 + r * (1.5 * 0.8 + 2));
  e = (1 - z) * n + z * 0.8;
  assert_tensor_values(y, &e, 1, 1e-6);
  /* the input path: W_iz feeds the update gate */
  set_values(crl_td_get(p, "weight_ih"), (double[]){0, 0, 0.1, 0, 0, 0});
  y = gru(m, NULL, x, h);
  z = 1 / (1 + exp(-(0.3 - 1)));
  e = (1 - z) * n + z * 0.8;
  assert_tensor_values(y, &e, 1, 1e-6);
}

static void test_gru_reference(void **state) {
  (void)state;
  crl_rng g = seeded_rng(3);
  crl_module *m = crl_gru_cell_new(3, 4, &g);
  crl_td *p = crl_module_params(m);
  ref_fill_params(p, 1.0, 4);
  crl_rng gx = seeded_rng(5);
  /* batch dims [2, 3] */
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 3, 3));
  crl_tensor *h = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 3, 4));
  crl_tensor *y = gru(m, NULL, x, h);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(2, 3, 4));
  double *xv = ref_values(x), *hv = ref_values(h), e[24];
  ref_gru(p, xv, hv, 6, 4, e);
  assert_tensor_values(y, e, 24, 2e-6);
  /* unbatched */
  crl_tensor *y1 = gru(m, NULL, crl_select(crl_select(x, 0, 1), 0, 2),
                       crl_select(crl_select(h, 0, 1), 0, 2));
  CRL_CHECK_PTR(y1);
  assert_shape(y1, CRL_SHAPE(4));
  assert_tensor_values(y1, e + 20, 4, 2e-6);
  /* a non-contiguous hidden state (a transposed view) */
  crl_tensor *ht = crl_transpose(crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(4, 5)),
                                 0, 1); /* [5, 4] */
  crl_tensor *x5 = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(5, 3));
  crl_tensor *y5 = gru(m, NULL, x5, ht);
  CRL_CHECK_PTR(y5);
  double *x5v = ref_values(x5), *h5v = ref_values(ht), e5[20];
  ref_gru(p, x5v, h5v, 5, 4, e5);
  assert_tensor_values(y5, e5, 20, 2e-6);
  /* saturated gates stay finite */
  crl_tensor *big = crl_full(CRL_FLOAT32, CRL_SHAPE(1, 3), 1e4);
  crl_tensor *yb = gru(m, NULL, big, crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 4)));
  for (int j = 0; j < 4; j++)
    assert_true(isfinite(crl_tensor_get_flat(yb, j)));
  free(xv);
  free(hv);
  free(x5v);
  free(h5v);
}

static void test_gru_errors(void **state) {
  (void)state;
  crl_rng g = seeded_rng(6);
  crl_module *m = crl_gru_cell_new(3, 4, &g);
  crl_tensor *x = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  assert_null(gru(m, NULL, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 5)),
                  crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4))));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("GRUCell: input shape [2, 5]");
  assert_null(gru(m, NULL, x, crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 4))));
  CRL_ASSERT_ERR_HAS("hidden state h has shape [3, 4]");
  assert_null(gru(m, NULL, x, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 5))));
  CRL_ASSERT_ERR_HAS("[2, 5]");
  assert_null(gru(m, NULL, x, crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 4))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  /* functional call without a parameter */
  crl_td *p = crl_module_params_clone(m, false);
  CRL_CHECK_OK(crl_td_del(p, "bias_hh"));
  assert_null(gru(m, p, x, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4))));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("bias_hh");
  assert_null(crl_module_call(m, NULL, x)); /* two inputs needed */
}

static crl_td *g_params;
static crl_tensor *gru_fn(crl_tensor **in, void *ctx) {
  return gru(ctx, g_params, in[0], in[1]);
}
/* three steps h1 = f(x0, h0), h2 = f(x1, h1), h3 = f(x2, h2) */
static crl_tensor *gru_unroll_fn(crl_tensor **in, void *ctx) {
  crl_tensor *h = in[1];
  for (int t = 0; t < 3; t++) {
    h = gru(ctx, g_params, crl_select(in[0], 0, t), h);
    if (!h) return NULL;
  }
  return h;
}

static const char *const all_params[] = {"weight_ih", "weight_hh", "bias_ih",
                                         "bias_hh", NULL};

static void test_gru_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(7);
  crl_module *m = crl_gru_cell_new(3, 2, &g);
  ref_fill_params(crl_module_params(m), 0.9, 8);
  g_params = ref_params64(m, all_params);
  crl_tensor *in[6] = {randn_leaf64(9, CRL_SHAPE(2, 3)),
                       randn_leaf64(10, CRL_SHAPE(2, 2))};
  for (int i = 0; i < 4; i++)
    in[i + 2] = crl_td_find(g_params, all_params[i]);
  CRL_CHECK_OK(crl_gradcheck(gru_fn, in, 6, m, 1e-6, 1e-6, 1e-4));
  /* through time, and with only some inputs requiring grad */
  crl_tensor *xs = randn_leaf64(11, CRL_SHAPE(3, 2, 3));
  crl_tensor *h0 = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 2),
                                  (double[]){0.1, -0.2, 0.3, 0.9});
  crl_tensor *un[6] = {xs, h0, in[2], in[3], in[4], in[5]};
  CRL_CHECK_OK(crl_gradcheck(gru_unroll_fn, un, 6, m, 1e-6, 1e-6, 1e-4));
  /* float32 gradients agree with float64 ones */
  crl_tensor *x32 = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *h32 = crl_full(CRL_FLOAT32, CRL_SHAPE(2, 2), 0.5);
  crl_tensor *y = gru(m, NULL, x32, h32);
  CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
  crl_tensor *wg = crl_td_get(crl_module_params(m), "weight_hh")->grad;
  CRL_CHECK_PTR(wg);
  crl_td *p64 = ref_params64(m, all_params);
  crl_tensor *y64 =
      gru(m, p64, crl_cast(x32, CRL_FLOAT64), crl_cast(h32, CRL_FLOAT64));
  CRL_CHECK_OK(crl_backward(crl_sum(y64, 0, NULL, false), NULL));
  crl_tensor *wg64 = crl_td_get(p64, "weight_hh")->grad;
  for (int64_t i = 0; i < wg->numel; i++)
    ASSERT_NEAR(crl_tensor_get_flat(wg, i), crl_tensor_get_flat(wg64, i), 1e-5);
  crl_zero_grad(crl_td_get(crl_module_params(m), "weight_hh"));
}

/* ---- LSTM
 * --------------------------------------------------------------------- */

static void test_lstm_params(void **state) {
  (void)state;
  crl_rng g = seeded_rng(20);
  crl_module *m = crl_lstm_cell_new(3, 9, &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "LSTMCell");
  assert_int_equal(crl_module_num_inputs(m), 3);
  assert_int_equal(crl_module_num_outputs(m), 2);
  crl_td *p = crl_module_params(m);
  double k = 1.0 / 3;
  expect_param(p, "weight_ih", CRL_SHAPE(36, 3), k);
  expect_param(p, "weight_hh", CRL_SHAPE(36, 9), k);
  expect_param(p, "bias_ih", CRL_SHAPE(36), k);
  expect_param(p, "bias_hh", CRL_SHAPE(36), k);
  assert_int_equal(crl_module_num_params(m), 36 * 3 + 36 * 9 + 72);
}

static void test_lstm_hand(void **state) {
  (void)state;
  crl_rng g = seeded_rng(21);
  crl_module *m = crl_lstm_cell_new(1, 1, &g);
  crl_td *p = crl_module_params(m);
  /* gates i, f, g, o */
  set_values(crl_td_get(p, "weight_ih"), (double[]){0, 0, 0.5, 0});
  set_values(crl_td_get(p, "weight_hh"), (double[]){0, 0, 0, 0});
  set_values(crl_td_get(p, "bias_ih"), (double[]){1, -1, 0, 2});
  set_values(crl_td_get(p, "bias_hh"), (double[]){0, 0.5, 0.1, 0});
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1), (float[]){2});
  crl_tensor *h = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1), (float[]){-3});
  crl_tensor *c = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1), (float[]){0.7f});
  crl_tensor *h2, *c2;
  CRL_CHECK_OK(lstm(m, NULL, x, h, c, &h2, &c2));
  double i = 1 / (1 + exp(-1.0)), f = 1 / (1 + exp(0.5));
  double gg = tanh(0.5 * 2 + 0.1), o = 1 / (1 + exp(-2.0));
  double ce = f * 0.7 + i * gg, he = o * tanh(ce);
  assert_tensor_values(c2, &ce, 1, 1e-6);
  assert_tensor_values(h2, &he, 1, 1e-6);
}

static void test_lstm_reference(void **state) {
  (void)state;
  crl_rng g = seeded_rng(22);
  crl_module *m = crl_lstm_cell_new(4, 3, &g);
  crl_td *p = crl_module_params(m);
  ref_fill_params(p, 1.0, 23);
  crl_rng gx = seeded_rng(24);
  crl_tensor *x = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 4));
  crl_tensor *h = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 3));
  crl_tensor *c = crl_randn(&gx, CRL_FLOAT32, CRL_SHAPE(2, 2, 3));
  crl_tensor *h2, *c2;
  CRL_CHECK_OK(lstm(m, NULL, x, h, c, &h2, &c2));
  assert_shape(h2, CRL_SHAPE(2, 2, 3));
  assert_shape(c2, CRL_SHAPE(2, 2, 3));
  double *xv = ref_values(x), *hv = ref_values(h), *cv = ref_values(c);
  double he[12], ce[12];
  ref_lstm(p, xv, hv, cv, 4, 3, he, ce);
  assert_tensor_values(h2, he, 12, 2e-6);
  assert_tensor_values(c2, ce, 12, 2e-6);
  free(xv);
  free(hv);
  free(cv);
  /* the cell state must have the hidden state's shape */
  assert_int_equal(
      lstm(m, NULL, x, h, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)), &h2, &c2),
      CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("cell state c has shape [2, 3]");
  /* functional call with other parameters equals a module holding them */
  crl_module *m2 = crl_lstm_cell_new(4, 3, &g);
  crl_td *other = crl_module_params_clone(m2, false);
  crl_tensor *ho, *co, *h2b, *c2b;
  CRL_CHECK_OK(lstm(m, other, x, h, c, &ho, &co));
  CRL_CHECK_OK(lstm(m2, NULL, x, h, c, &h2b, &c2b));
  assert_true(crl_allclose(ho, h2b, 0, 0));
  assert_true(crl_allclose(co, c2b, 0, 0));
  CRL_CHECK_OK(lstm(m, NULL, x, h, c, &h2b, &c2b));
  assert_false(crl_allclose(ho, h2b, 1e-4, 0));
}

static crl_tensor *lstm_fn(crl_tensor **in, void *ctx) {
  crl_tensor *h2, *c2;
  if (lstm(ctx, g_params, in[0], in[1], in[2], &h2, &c2)) return NULL;
  crl_tensor *ts[2] = {h2, c2};
  return crl_cat(2, ts, -1);
}
static crl_tensor *lstm_h_only_fn(crl_tensor **in, void *ctx) {
  crl_tensor *h2, *c2;
  if (lstm(ctx, g_params, in[0], in[1], in[2], &h2, &c2)) return NULL;
  return h2;
}
static crl_tensor *lstm_unroll_fn(crl_tensor **in, void *ctx) {
  crl_tensor *h = in[1], *c = in[2];
  for (int t = 0; t < 3; t++)
    if (lstm(ctx, g_params, crl_select(in[0], 0, t), h, c, &h, &c)) return NULL;
  return crl_mul(h, c);
}

static void test_lstm_gradcheck(void **state) {
  (void)state;
  crl_rng g = seeded_rng(25);
  crl_module *m = crl_lstm_cell_new(2, 3, &g);
  ref_fill_params(crl_module_params(m), 0.9, 26);
  g_params = ref_params64(m, all_params);
  crl_tensor *in[7] = {randn_leaf64(27, CRL_SHAPE(2, 2)),
                       randn_leaf64(28, CRL_SHAPE(2, 3)),
                       randn_leaf64(29, CRL_SHAPE(2, 3))};
  for (int i = 0; i < 4; i++)
    in[i + 3] = crl_td_find(g_params, all_params[i]);
  CRL_CHECK_OK(crl_gradcheck(lstm_fn, in, 7, m, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(lstm_h_only_fn, in, 7, m, 1e-6, 1e-6, 1e-4));
  crl_tensor *xs = randn_leaf64(30, CRL_SHAPE(3, 2, 2));
  crl_tensor *un[7] = {xs, in[1], in[2], in[3], in[4], in[5], in[6]};
  CRL_CHECK_OK(crl_gradcheck(lstm_unroll_fn, un, 7, m, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_gru_params),     CRL_TEST(test_gru_hand),
      CRL_TEST(test_gru_reference),  CRL_TEST(test_gru_errors),
      CRL_TEST(test_gru_gradcheck),  CRL_TEST(test_lstm_params),
      CRL_TEST(test_lstm_hand),      CRL_TEST(test_lstm_reference),
      CRL_TEST(test_lstm_gradcheck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
