/* The generic module: lifetime, parameters, children, functional calls,
 * params_clone, load_params, Sequential. */
#include <stdlib.h>

#include "test_util.h"

/* ---- a custom module: y = x * scale (+ a "shift" parameter) ----------------
 */

static int freed_count;

typedef struct {
  double scale;
} scale_impl;

static int scale_forward(crl_module *m, crl_td *params, int nin,
                         crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  scale_impl *s = crl_module_impl(m);
  crl_tensor *shift = crl_td_get(params, "shift");
  if (!shift) return crl_last_error_code();
  crl_scope_begin();
  crl_tensor *y = crl_add(crl_mul_scalar(in[0], s->scale), shift);
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static void scale_free(crl_module *m) {
  free(crl_module_impl(m));
  freed_count++;
}

static const crl_module_ops scale_ops = {"Scale", scale_forward, scale_free};

static crl_module *scale_new(double scale, double shift) {
  scale_impl *s = malloc(sizeof *s);
  s->scale = scale;
  crl_module *m = crl_module_new(&scale_ops, s, 1, 1);
  if (!m) return NULL;
  /* parameters live outside scopes: the TensorDict owns them */
  crl_scope_begin();
  crl_tensor *p = crl_full(CRL_FLOAT32, CRL_SHAPE(2), shift);
  crl_set_requires_grad(p, true);
  crl_td_set(crl_module_params(m), "shift", p);
  crl_scope_end();
  return m;
}

static void test_custom_module(void **state) {
  (void)state;
  crl_module *m = scale_new(3.0, 0.5);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_module_name(m), "Scale");
  assert_int_equal(crl_module_num_inputs(m), 1);
  assert_int_equal(crl_module_num_outputs(m), 1);
  assert_int_equal(crl_module_num_params(m), 2);
  assert_non_null(crl_module_buffers(m));
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){1.0f, -2.0f});
  crl_tensor *y = crl_module_call(m, NULL, x);
  CRL_CHECK_PTR(y);
  assert_tensor_values(y, (double[]){3.5, -5.5}, 2, 1e-6);
  /* wrong input count */
  crl_tensor *outs[2];
  assert_int_equal(
      crl_module_forward(m, NULL, 2, (crl_tensor *[]){x, x}, 1, outs),
      CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("Scale takes 1 input(s)");
}

static void test_module_freed_with_scope(void **state) {
  (void)state;
  freed_count = 0;
  crl_scope_begin();
  crl_module *m = scale_new(1.0, 0.0);
  CRL_CHECK_PTR(m);
  crl_scope_end();
  assert_int_equal(freed_count, 1);
  /* retained beyond the scope */
  crl_scope_begin();
  m = crl_module_retain(scale_new(1.0, 0.0));
  crl_scope_end();
  assert_int_equal(freed_count, 1);
  /* parameters survive a training-step scope */
  for (int step = 0; step < 3; step++) {
    crl_scope_begin();
    crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
    crl_tensor *y = crl_module_call(m, NULL, x);
    CRL_CHECK_PTR(y);
    CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
    crl_scope_end();
  }
  crl_tensor *shift = crl_td_get(crl_module_params(m), "shift");
  assert_non_null(shift->grad);
  assert_tensor_values(shift->grad, (double[]){3, 3}, 2, 0);
  crl_module_release(m);
  assert_int_equal(freed_count, 2);
}

static void test_module_new_errors(void **state) {
  (void)state;
  assert_null(crl_module_new(NULL, NULL, 1, 1));
  CRL_ASSERT_ERR_HAS("module_new");
  freed_count = 0;
  /* a failing constructor frees impl through ops->free */
  assert_null(crl_module_new(&scale_ops, malloc(8), -1, 1));
  assert_int_equal(freed_count, 1);
}

/* ---- functional calls -------------------------------------------------------
 */

static crl_module *make_linear(uint64_t seed, int64_t in, int64_t out) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  return crl_linear_new(in, out, true, &g);
}

static void test_functional_call(void **state) {
  (void)state;
  crl_module *a = make_linear(1, 3, 2), *b = make_linear(2, 3, 2);
  CRL_CHECK_PTR(a);
  CRL_CHECK_PTR(b);
  crl_rng g;
  crl_rng_seed(&g, 9);
  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(4, 3));
  crl_tensor *yb = crl_module_call(b, NULL, x);
  /* a run with b's parameters gives b's output */
  crl_tensor *ya = crl_module_call(a, crl_module_params(b), x);
  CRL_CHECK_PTR(ya);
  assert_true(crl_allclose(ya, yb, 0, 0));
  /* ... and the gradient goes to b's parameters, not a's */
  CRL_CHECK_OK(crl_backward(crl_sum(ya, 0, NULL, false), NULL));
  crl_tensor *wb = crl_td_get(crl_module_params(b), "weight");
  crl_tensor *wa = crl_td_get(crl_module_params(a), "weight");
  assert_non_null(wb->grad);
  assert_null(wa->grad);
  /* grad of sum over batch of x W^T: column sums of x, per output row */
  for (int64_t j = 0; j < 3; j++) {
    double s = 0;
    for (int64_t i = 0; i < 4; i++)
      s += crl_tensor_get(x, (int64_t[]){i, j});
    ASSERT_NEAR(crl_tensor_get(wb->grad, (int64_t[]){1, j}), s, 1e-5);
  }
  /* a params TensorDict missing a key: CRL_EKEY naming it */
  crl_td *p = crl_td_new(0, NULL);
  crl_td_set(p, "weight", wb);
  assert_null(crl_module_call(a, p, x));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'bias'");
}

static void test_params_clone(void **state) {
  (void)state;
  crl_module *a = make_linear(3, 2, 2);
  crl_td *c = crl_module_params_clone(a, false);
  CRL_CHECK_PTR(c);
  crl_tensor *w = crl_td_get(crl_module_params(a), "weight");
  crl_tensor *cw = crl_td_get(c, "weight");
  assert_true(crl_equal(w, cw));
  assert_false(cw->requires_grad);
  assert_null(cw->grad_fn);
  assert_true(cw->data != w->data);
  /* detached: writing the clone leaves the module alone */
  double before = crl_tensor_get_flat(w, 0);
  CRL_CHECK_OK(crl_fill_(cw, 7.0));
  ASSERT_NEAR(crl_tensor_get_flat(w, 0), before, 0);
  /* target-network use: forward with the clone builds no graph */
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 2));
  crl_tensor *y = crl_module_call(a, c, x);
  CRL_CHECK_PTR(y);
  assert_false(y->requires_grad);
  ASSERT_NEAR(crl_tensor_get_flat(y, 0),
              14.0 + crl_tensor_get_flat(crl_td_get(c, "bias"), 0), 1e-5);
  crl_td *c2 = crl_module_params_clone(a, true);
  assert_true(crl_td_get(c2, "weight")->requires_grad);
}

static void test_load_params(void **state) {
  (void)state;
  crl_module *a = make_linear(4, 3, 2), *b = make_linear(5, 3, 2);
  CRL_CHECK_OK(crl_module_load_params(a, crl_module_params(b)));
  assert_true(crl_td_equal(crl_module_params(a), crl_module_params(b)));
  /* a's tensors are still its own (copied, not shared) */
  assert_true(crl_td_get(crl_module_params(a), "weight")->data !=
              crl_td_get(crl_module_params(b), "weight")->data);
  assert_true(crl_td_get(crl_module_params(a), "weight")->requires_grad);

  /* shape mismatch: names the key and both shapes; nothing changes */
  crl_module *c = make_linear(6, 4, 2);
  crl_td *before = crl_td_clone(crl_module_params(a));
  crl_td *bad = crl_td_clone(crl_module_params(c));
  crl_td_set(bad, "bias", crl_td_get(crl_module_params(a), "bias"));
  assert_int_equal(crl_module_load_params(a, bad), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'weight'");
  CRL_ASSERT_ERR_HAS("[2, 4]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_true(crl_td_equal(crl_module_params(a), before));

  /* unknown key */
  crl_td *extra = crl_td_clone(crl_module_params(b));
  crl_td_set(extra, "scale", crl_ones(CRL_FLOAT32, CRL_SHAPE(1)));
  assert_int_equal(crl_module_load_params(a, extra), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("scale");
  /* missing key */
  crl_td *missing = crl_td_clone(crl_module_params(b));
  crl_td_del(missing, "bias");
  assert_int_equal(crl_module_load_params(a, missing), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'bias'");
  assert_true(crl_td_equal(crl_module_params(a), before));
  /* float64 values are converted */
  crl_td *p64 = crl_td_to_dtype(crl_module_params(c), CRL_FLOAT64, true);
  crl_module *d = make_linear(7, 4, 2);
  CRL_CHECK_OK(crl_module_load_params(d, p64));
  assert_true(
      crl_td_allclose(crl_module_params(d), crl_module_params(c), 0, 1e-7));
  assert_int_equal(crl_td_get(crl_module_params(d), "weight")->dtype,
                   CRL_FLOAT32);
}

/* ---- Sequential
 * -------------------------------------------------------------- */

static void test_sequential(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 11);
  crl_module *mods[3] = {crl_linear_new(3, 4, true, &g),
                         crl_activation_module_new(CRL_ACT_RELU),
                         crl_linear_new(4, 2, false, &g)};
  crl_module *seq = crl_sequential_new(3, mods);
  CRL_CHECK_PTR(seq);
  assert_string_equal(crl_module_name(seq), "Sequential");
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(crl_module_params(seq), true, true, &k));
  assert_int_equal(k.n, 3);
  assert_string_equal(k.keys[0], "0/weight");
  assert_string_equal(k.keys[1], "0/bias");
  assert_string_equal(k.keys[2], "2/weight");
  crl_td_keys_free(&k);
  assert_int_equal(crl_module_num_params(seq), 4 * 3 + 4 + 2 * 4);
  assert_ptr_equal(crl_sequential_get(seq, 1), mods[1]);
  assert_null(crl_sequential_get(seq, 3));
  CRL_ASSERT_ERR_HAS("index 3");
  /* the nested parameters are the layers' own tensors */
  assert_ptr_equal(crl_td_get(crl_module_params(seq), "2/weight"),
                   crl_td_get(crl_module_params(mods[2]), "weight"));

  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(5, 3));
  crl_tensor *y = crl_module_call(seq, NULL, x);
  CRL_CHECK_PTR(y);
  crl_tensor *h = crl_relu(crl_module_call(mods[0], NULL, x));
  crl_tensor *y2 = crl_module_call(mods[2], NULL, h);
  assert_true(crl_allclose(y, y2, 1e-6, 1e-6));
  /* functional call with a clone changed in one place */
  crl_td *p = crl_module_params_clone(seq, false);
  crl_zero_(crl_td_get(p, "2/weight"));
  crl_tensor *yz = crl_module_call(seq, p, x);
  assert_tensor_values(yz, (double[10]){0}, 10, 0);
  /* missing sub-module entries */
  crl_td *p2 = crl_td_new(0, NULL);
  crl_td_set_td(p2, "0", crl_td_get_td(p, "0"));
  assert_null(crl_module_call(seq, p2, x));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'2/...'");
  /* wrong arity */
  assert_null(crl_sequential_new(1, (crl_module *[]){NULL}));
  CRL_ASSERT_ERR_HAS("module 0 is NULL");
}

static void test_sequential_empty(void **state) {
  (void)state;
  crl_module *seq = crl_sequential_new(0, NULL);
  CRL_CHECK_PTR(seq);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_tensor *y = crl_module_call(seq, NULL, x);
  assert_ptr_equal(y, x);
  assert_int_equal(crl_module_num_params(seq), 0);
}

/* Modules built and freed outside any scope: nothing leaks (ASan). */
static void test_no_scope_lifetime(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 12);
  crl_module *l1 = crl_linear_new(2, 3, true, &g);
  crl_module *act = crl_activation_module_new(CRL_ACT_TANH);
  crl_module *seq = crl_sequential_new(2, (crl_module *[]){l1, act});
  crl_module_release(l1); /* the sequence keeps its own references */
  crl_module_release(act);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 2));
  crl_tensor *y = crl_module_call(seq, NULL, x);
  assert_non_null(y);
  assert_false(crl_module_call(seq, NULL, NULL));
  crl_tensor *loss = crl_sum(y, 0, NULL, false);
  assert_int_equal(crl_backward(loss, NULL), 0);
  crl_td *c = crl_module_params_clone(seq, false);
  crl_td_release(c);
  crl_tensor_release(loss);
  crl_tensor_release(y);
  crl_tensor_release(x);
  crl_module_release(seq);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_custom_module),
      cmocka_unit_test(test_module_freed_with_scope),
      CRL_TEST(test_module_new_errors),
      CRL_TEST(test_functional_call),
      CRL_TEST(test_params_clone),
      CRL_TEST(test_load_params),
      CRL_TEST(test_sequential),
      CRL_TEST(test_sequential_empty),
      cmocka_unit_test(test_no_scope_lifetime),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
