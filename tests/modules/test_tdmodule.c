/* The generic TensorDict module, TensorDictModule, the C-function module,
 * the exploration mode stack, functional calls and the policy adapter. */
#include <stdlib.h>

#include "modules/modules_internal.h"
#include "modules_test_util.h"

static const float W[6] = {1, 2, 3, -1, 0, 1}; /* [2, 3] */
static const float B[2] = {0.5f, -0.5f};

/* y = x W^T + b for x [2, 3] = {{1, 0, 2}, {0, 1, -1}} */
static const double Y[4] = {1 + 6 + 0.5, -1 + 2 - 0.5, 2 - 3 + 0.5,
                            0 - 1 - 0.5};
static const float X[6] = {1, 0, 2, 0, 1, -1};

static void test_td_module_forward(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_td_module_new(lin, 1, in, 1, out);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "TensorDictModule");
  assert_int_equal(crl_tdmodule_num_in_keys(m), 1);
  assert_int_equal(crl_tdmodule_num_out_keys(m), 1);
  assert_string_equal(crl_tdmodule_in_key(m, 0), "observation");
  assert_string_equal(crl_tdmodule_out_key(m, 0), "action");
  assert_null(crl_tdmodule_in_key(m, 1));
  /* the parameters are the network's TensorDict itself */
  assert_ptr_equal(crl_tdmodule_params(m), crl_module_params(lin));
  crl_td *td = td_with(2, "observation", f32(CRL_SHAPE(2, 3), X));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  CRL_CHECK_PTR(a);
  assert_shape(a, 2, (int64_t[]){2, 2});
  assert_tensor_values(a, Y, 4, 1e-6);
  /* a second call replaces the entry */
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_int_equal(crl_td_len(td), 2);
  assert_tensor_values(crl_td_get(td, "action"), Y, 4, 1e-6);
}

static void test_nested_keys(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"agent/obs"}, *out[1] = {"next/agent/act"};
  crl_tdmodule *m = crl_td_module_new(lin, 1, in, 1, out);
  CRL_CHECK_PTR(m);
  crl_td *td = td_with(2, "agent/obs", f32(CRL_SHAPE(2, 3), X));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "next/agent/act"), Y, 4, 1e-6);
  /* and an output key that exists already, nested */
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "next/agent/act"), Y, 4, 1e-6);
}

static void test_missing_key(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_td_module_new(lin, 1, in, 1, out);
  crl_td *td = td_with(2, "obs", f32(CRL_SHAPE(2, 3), X));
  assert_int_equal(crl_tdmodule_forward(m, td, NULL), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("TensorDictModule");
  CRL_ASSERT_ERR_HAS("'observation'");
  CRL_ASSERT_ERR_HAS("keys present: 'obs'");
  assert_int_equal(crl_td_len(td), 1);
  /* a wrong input shape: the network's error, td unchanged */
  crl_td *td2 = td_with(2, "observation", f32(CRL_SHAPE(2, 2), X));
  assert_int_not_equal(crl_tdmodule_forward(m, td2, NULL), 0);
  CRL_ASSERT_ERR_HAS("[2, 2]");
  assert_int_equal(crl_td_len(td2), 1);
  assert_int_equal(crl_tdmodule_forward(NULL, td, NULL), CRL_EINVAL);
  assert_int_equal(crl_tdmodule_forward(m, NULL, NULL), CRL_EINVAL);
}

static void test_constructor_errors(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out2[2] = {"a", "b"};
  assert_null(crl_td_module_new(lin, 1, in, 2, out2));
  CRL_ASSERT_ERR_HAS("1 input(s) and gives 1 output(s)");
  assert_null(crl_td_module_new(NULL, 1, in, 1, out2));
  const char *bad[1] = {"a//b"};
  assert_null(crl_td_module_new(lin, 1, bad, 1, out2));
  CRL_ASSERT_ERR_HAS("empty component");
  const char *empty[1] = {""};
  assert_null(crl_td_module_new(lin, 1, in, 1, empty));
  CRL_ASSERT_ERR_HAS("out_keys 0");
}

/* ---- the C-function module ----------------------------------------------- */

static int sum_diff(void *ctx, int nin, crl_tensor *const *in, int nout,
                    crl_tensor **out) {
  (void)nin, (void)nout;
  int *calls = ctx;
  ++*calls;
  out[0] = crl_add(in[0], in[1]);
  out[1] = crl_sub(in[0], in[1]);
  return out[0] && out[1] ? 0 : -1;
}

static int bad_shape(void *ctx, int nin, crl_tensor *const *in, int nout,
                     crl_tensor **out) {
  (void)ctx, (void)nin, (void)nout, (void)in;
  out[0] = crl_zeros(CRL_FLOAT32, CRL_SHAPE(5));
  return 0;
}

static int fails(void *ctx, int nin, crl_tensor *const *in, int nout,
                 crl_tensor **out) {
  (void)ctx, (void)nin, (void)nout, (void)in, (void)out;
  return CRL_EINVAL;
}

static void test_fn_module(void **state) {
  (void)state;
  int calls = 0;
  const char *in[2] = {"a", "b"}, *out[2] = {"sum", "diff"};
  crl_tdmodule *m = crl_td_module_fn_new(sum_diff, &calls, 2, in, 2, out);
  CRL_CHECK_PTR(m);
  assert_int_equal(crl_td_len(crl_tdmodule_params(m)), 0);
  crl_td *td = td_with(2, "a", f32(CRL_SHAPE(2), (float[]){1, 2}));
  crl_td_set(td, "b", f32(CRL_SHAPE(2), (float[]){10, 20}));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_int_equal(calls, 1);
  assert_tensor_values(crl_td_get(td, "sum"), (double[]){11, 22}, 2, 0);
  assert_tensor_values(crl_td_get(td, "diff"), (double[]){-9, -18}, 2, 0);

  const char *o1[1] = {"x"};
  crl_tdmodule *bs = crl_td_module_fn_new(bad_shape, NULL, 1, in, 1, o1);
  assert_int_equal(crl_tdmodule_forward(bs, td, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("output 'x' has shape [5]");
  CRL_ASSERT_ERR_HAS("[2]");
  assert_false(crl_td_contains(td, "x"));

  crl_tdmodule *f = crl_td_module_fn_new(fails, NULL, 1, in, 1, o1);
  crl_clear_error();
  assert_int_equal(crl_tdmodule_forward(f, td, NULL), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("failed with code");
  assert_null(crl_td_module_fn_new(NULL, NULL, 1, in, 1, o1));
}

/* ---- custom modules, lifetime -------------------------------------------- */

static int freed;
static void count_free(crl_tdmodule *m) {
  free(crl_tdmodule_impl(m));
  freed++;
}
static int const_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  (void)params;
  double *v = crl_tdmodule_impl(m);
  crl_tensor *t =
      crl_full(CRL_FLOAT32, crl_td_batch_ndim(td), crl_td_batch_size(td), *v);
  return t ? crl_td_set(td, crl_tdmodule_out_key(m, 0), t) : -1;
}
static const crl_tdmodule_ops const_ops = {"Const", const_forward, count_free};

static void test_custom_module_lifetime(void **state) {
  (void)state;
  freed = 0;
  const char *out[1] = {"c"};
  crl_scope_begin();
  double *v = malloc(sizeof *v);
  *v = 4;
  crl_tdmodule *m = crl_tdmodule_new(&const_ops, v, 0, NULL, 1, out, NULL);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "Const");
  crl_tdmodule_retain(m); /* keep it past the scope */
  crl_scope_end();
  assert_int_equal(freed, 0);
  crl_td *td = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "c"), (double[]){4, 4, 4}, 3, 0);
  crl_tdmodule_release(m);
  assert_int_equal(freed, 1);
  /* a failing constructor frees impl */
  v = malloc(sizeof *v);
  const char *dup[2] = {"c", "c"};
  assert_null(crl_tdmodule_new(&const_ops, v, 0, NULL, 2, dup, NULL));
  CRL_ASSERT_ERR_HAS("out_key 'c' is given twice");
  assert_int_equal(freed, 2);
  assert_null(crl_tdmodule_new(NULL, NULL, 0, NULL, 0, NULL, NULL));
}

static void test_module_outlives_net(void **state) {
  (void)state;
  crl_scope_begin();
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_tdmodule_retain(crl_td_module_new(lin, 1, in, 1, out));
  crl_scope_end(); /* the net's own reference is gone; m holds one */
  crl_td *td = td_with(2, "observation", f32(CRL_SHAPE(2, 3), X));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), Y, 4, 1e-6);
  crl_tdmodule_release(m);
  /* the TensorDict keeps its outputs */
  assert_tensor_values(crl_td_get(td, "action"), Y, 4, 1e-6);
}

/* ---- functional calls, gradients, policy adapter ------------------------- */

static void test_functional_call(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_td_module_new(lin, 1, in, 1, out);
  crl_td *p2 = crl_module_params_clone(lin, false);
  CRL_CHECK_PTR(p2);
  set_param(p2, "bias", f32(CRL_SHAPE(2), (float[]){10, 20}));
  crl_td *td = td_with(2, "observation", f32(CRL_SHAPE(2, 3), X));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, p2));
  double e[4] = {Y[0] - 0.5 + 10, Y[1] + 0.5 + 20, Y[2] - 0.5 + 10,
                 Y[3] + 0.5 + 20};
  assert_tensor_values(crl_td_get(td, "action"), e, 4, 1e-5);
  /* own parameters untouched */
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), Y, 4, 1e-6);
  /* a substitute missing a key */
  crl_td *p3 = crl_td_new(CRL_SCALAR);
  crl_td_set(p3, "weight", crl_td_get(p2, "weight"));
  assert_int_equal(crl_tdmodule_forward(m, td, p3), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("bias");
}

static void test_gradients(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *m = crl_td_module_new(lin, 1, in, 1, out);
  crl_td *td = td_with(2, "observation", f32(CRL_SHAPE(2, 3), X));
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *a = crl_td_get(td, "action");
  assert_true(a->requires_grad);
  CRL_CHECK_OK(crl_backward(crl_sum(a, 0, NULL, false), NULL));
  crl_tensor *w = crl_td_get(crl_module_params(lin), "weight");
  CRL_CHECK_PTR(w->grad);
  /* d sum / d W[o][i] = sum_b x[b][i] */
  assert_tensor_values(w->grad, (double[]){1, 1, 1, 1, 1, 1}, 6, 1e-6);
  crl_zero_grad(w);
  crl_zero_grad(crl_td_get(crl_module_params(lin), "bias"));

  /* the policy adapter runs without a graph */
  CRL_CHECK_OK(crl_tdmodule_policy(m, td));
  assert_false(crl_td_get(td, "action")->requires_grad);
  assert_true(crl_is_grad_enabled());
  assert_tensor_values(crl_td_get(td, "action"), Y, 4, 1e-6);
}

/* ---- exploration mode ---------------------------------------------------- */

static void test_exploration_mode(void **state) {
  (void)state;
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_RANDOM);
  crl_exploration_begin(CRL_EXPLORATION_MODE);
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_MODE);
  crl_exploration_begin(CRL_EXPLORATION_MEAN);
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_MEAN);
  crl_exploration_begin(CRL_EXPLORATION_RANDOM);
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_RANDOM);
  crl_exploration_end();
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_MEAN);
  crl_exploration_end();
  crl_exploration_end();
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_RANDOM);
  crl_exploration_end(); /* unbalanced: harmless */
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_RANDOM);
  /* deep nesting */
  for (int i = 0; i < 100; i++)
    crl_exploration_begin(i % 2 ? CRL_EXPLORATION_MODE : CRL_EXPLORATION_MEAN);
  for (int i = 0; i < 100; i++)
    crl_exploration_end();
  assert_int_equal(crl_exploration_mode_get(), CRL_EXPLORATION_RANDOM);
}

static void test_seed(void **state) {
  (void)state;
  crl_module *lin = linear_with(3, 2, W, B);
  const char *in[1] = {"observation"}, *out[1] = {"action"};
  crl_tdmodule *a = crl_td_module_new(lin, 1, in, 1, out);
  crl_tdmodule *b = crl_td_module_new(lin, 1, in, 1, out);
  /* distinct default streams */
  assert_true(crl_tdmodule_rng(a)->seed != crl_tdmodule_rng(b)->seed);
  crl_tdmodule_seed(a, 42);
  crl_tdmodule_seed(b, 42);
  assert_true(crl_tdmodule_rng(a)->seed == crl_tdmodule_rng(b)->seed);
  assert_true(crl_tdmodule_rng(a)->counter == 0);
  assert_null(crl_tdmodule_rng(NULL));
}

/* ---- fast set path (internal) -------------------------------------------- */

static void test_fast_set(void **state) {
  (void)state;
  crl_td *td = td_with(2, "a", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)));
  crl_tensor *t = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 4));
  CRL_CHECK_OK(crl__tdm_set(td, "a", t));
  assert_ptr_equal(crl_td_get(td, "a"), t);
  /* wrong batch: the error of crl_td_set, entry kept */
  crl_tensor *bad = crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 4));
  assert_int_equal(crl__tdm_set(td, "a", bad), CRL_ESHAPE);
  assert_ptr_equal(crl_td_get(td, "a"), t);
  /* new key */
  CRL_CHECK_OK(crl__tdm_set(td, "b", t));
  assert_int_equal(crl_td_len(td), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_td_module_forward),
      CRL_TEST(test_nested_keys),
      CRL_TEST(test_missing_key),
      CRL_TEST(test_constructor_errors),
      CRL_TEST(test_fn_module),
      CRL_TEST(test_custom_module_lifetime),
      CRL_TEST(test_module_outlives_net),
      CRL_TEST(test_functional_call),
      CRL_TEST(test_gradients),
      CRL_TEST(test_exploration_mode),
      CRL_TEST(test_seed),
      CRL_TEST(test_fast_set),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
