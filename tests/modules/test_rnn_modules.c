/* LSTM / GRU modules carrying their hidden state through TensorDict keys. */
#include "modules_test_util.h"

/* a cell with the module's parameters, for reference values */
static crl_module *ref_cell(crl_tdmodule *m, bool lstm, int64_t in, int64_t h) {
  crl_rng g;
  crl_rng_seed(&g, 99);
  crl_module *c =
      lstm ? crl_lstm_cell_new(in, h, &g) : crl_gru_cell_new(in, h, &g);
  CRL_CHECK_OK(crl_module_load_params(c, crl_tdmodule_params(m)));
  return c;
}

static crl_tensor *gru_ref(crl_module *c, crl_tensor *x, crl_tensor *h) {
  crl_tensor *in[2] = {x, h}, *out[1];
  if (crl_module_forward(c, NULL, 2, in, 1, out)) return NULL;
  return out[0];
}

static void test_gru_carries_state(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_tdmodule *m = crl_gru_module_new(3, 4, "embed", "features", &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "GRUModule");
  assert_int_equal(crl_tdmodule_num_in_keys(m), 3);
  assert_string_equal(crl_tdmodule_in_key(m, 1), "recurrent_state");
  assert_string_equal(crl_tdmodule_in_key(m, 2), "is_init");
  assert_string_equal(crl_tdmodule_out_key(m, 1), "next/recurrent_state");
  assert_true(crl_td_contains(crl_tdmodule_params(m), "weight_ih"));
  crl_module *cell = ref_cell(m, false, 3, 4);

  crl_tensor *x1 = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *x2 = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *zero = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4));
  /* step 1: no state yet -> zeros */
  crl_td *td = td_with(2, "embed", x1);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *h1 = gru_ref(cell, x1, zero);
  assert_close(crl_td_get(td, "features"), h1, 1e-6);
  crl_tensor *s = crl_td_get(td, "next/recurrent_state");
  assert_shape(s, 3, (int64_t[]){2, 1, 4});
  /* step 2 after step_mdp: the state is carried */
  crl_td *t2 = crl_td_step_mdp(td, NULL);
  CRL_CHECK_OK(crl_td_set(t2, "embed", x2));
  CRL_CHECK_OK(crl_tdmodule_forward(m, t2, NULL));
  crl_tensor *h2 = gru_ref(cell, x2, h1);
  assert_close(crl_td_get(t2, "features"), h2, 1e-6);
  /* is_init on row 0 restarts it from zero */
  crl_td *t3 = crl_td_step_mdp(t2, NULL);
  CRL_CHECK_OK(crl_td_set(t3, "embed", x2));
  CRL_CHECK_OK(
      crl_td_set(t3, "is_init",
                 crl_from_array(CRL_BOOL, CRL_SHAPE(2, 1), (uint8_t[]){1, 0})));
  CRL_CHECK_OK(crl_tdmodule_forward(m, t3, NULL));
  crl_tensor *f = crl_td_get(t3, "features");
  crl_tensor *fresh = gru_ref(cell, x2, zero);
  crl_tensor *carried = gru_ref(cell, x2, h2);
  assert_close(crl_select(f, 0, 0), crl_select(fresh, 0, 0), 1e-6);
  assert_close(crl_select(f, 0, 1), crl_select(carried, 0, 1), 1e-6);
  /* is_init of shape [batch] works too; a state without the layer dim */
  crl_td *t4 = td_with(2, "embed", x1);
  crl_td_set(t4, "recurrent_state", h2);
  crl_td_set(t4, "is_init",
             crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){0, 1}));
  CRL_CHECK_OK(crl_tdmodule_forward(m, t4, NULL));
  crl_tensor *f4 = crl_td_get(t4, "features");
  assert_close(crl_select(f4, 0, 0), crl_select(gru_ref(cell, x1, h2), 0, 0),
               1e-6);
  assert_close(crl_select(f4, 0, 1), crl_select(gru_ref(cell, x1, zero), 0, 1),
               1e-6);
}

static void test_lstm(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 2);
  crl_tdmodule *m = crl_lstm_module_new(3, 5, "observation", "embed", &g);
  CRL_CHECK_PTR(m);
  assert_string_equal(crl_tdmodule_name(m), "LSTMModule");
  assert_string_equal(crl_tdmodule_in_key(m, 2), "recurrent_state_c");
  assert_string_equal(crl_tdmodule_out_key(m, 2), "next/recurrent_state_c");
  crl_module *cell = ref_cell(m, true, 3, 5);
  /* batch [2, 3] (several leading dims) */
  crl_tensor *x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, 3, 3));
  crl_td *td = crl_td_new(CRL_SHAPE(2, 3));
  crl_td_set(td, "observation", x);
  CRL_CHECK_OK(crl_tdmodule_forward(m, td, NULL));
  crl_tensor *z = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3, 5));
  crl_tensor *in[3] = {x, z, z}, *out[2];
  CRL_CHECK_OK(crl_module_forward(cell, NULL, 3, in, 2, out));
  assert_close(crl_td_get(td, "embed"), out[0], 1e-6);
  assert_shape(crl_td_get(td, "next/recurrent_state_h"), 4,
               (int64_t[]){2, 3, 1, 5});
  assert_close(crl_squeeze(crl_td_get(td, "next/recurrent_state_c"), 2), out[1],
               1e-6);
  /* second step */
  crl_td *t2 = crl_td_step_mdp(td, NULL);
  CRL_CHECK_OK(crl_tdmodule_forward(m, t2, NULL));
  crl_tensor *in2[3] = {x, out[0], out[1]}, *out2[2];
  CRL_CHECK_OK(crl_module_forward(cell, NULL, 3, in2, 2, out2));
  assert_close(crl_td_get(t2, "embed"), out2[0], 1e-6);
  /* gradients reach the parameters */
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_td_get(t2, "embed"), 0, NULL, false), NULL));
  crl_tensor *w = crl_td_get(crl_tdmodule_params(m), "weight_hh");
  CRL_CHECK_PTR(w->grad);
  assert_true(crl_sum_value(crl_abs(w->grad)) > 0);
  crl_td_keys k;
  crl_td_keys_get(crl_tdmodule_params(m), true, true, &k);
  for (int i = 0; i < k.n; i++)
    crl_zero_grad(crl_td_get(crl_tdmodule_params(m), k.keys[i]));
  crl_td_keys_free(&k);
}

static void test_errors(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_tdmodule *m = crl_gru_module_new(3, 4, "x", "y", &g);
  crl_td *td = td_with(2, "x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 5)));
  assert_int_equal(crl_tdmodule_forward(m, td, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 5]");
  assert_int_equal(crl_td_len(td), 1);
  crl_td *t2 = td_with(2, "x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)));
  crl_td_set(t2, "recurrent_state", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 7)));
  assert_int_equal(crl_tdmodule_forward(m, t2, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'recurrent_state' has shape [2, 7]");
  crl_td *t3 = td_with(2, "x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3)));
  crl_td_set(t3, "is_init", crl_zeros(CRL_BOOL, CRL_SHAPE(2, 2)));
  assert_int_equal(crl_tdmodule_forward(m, t3, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("is_init");
  assert_null(crl_gru_module_new(3, 4, NULL, "y", &g));
  assert_null(crl_lstm_module_new(0, 4, "x", "y", &g));
}

static void test_in_sequence(void **state) {
  (void)state;
  /* obs -> MLP -> GRU -> Linear action, the recurrent state optional */
  crl_rng g;
  crl_rng_seed(&g, 4);
  const char *o[1] = {"observation"}, *e[1] = {"embed"}, *f[1] = {"features"},
             *a[1] = {"action"};
  crl_tdmodule *enc = crl_td_module_new(linear_rand(4, 6, 1), 1, o, 1, e);
  crl_tdmodule *rnn = crl_gru_module_new(6, 8, "embed", "features", &g);
  crl_tdmodule *head = crl_td_module_new(linear_rand(8, 2, 2), 1, f, 1, a);
  crl_tdmodule *seq =
      crl_td_sequential_new(3, (crl_tdmodule *[]){enc, rnn, head});
  CRL_CHECK_PTR(seq);
  assert_int_equal(crl_tdmodule_num_in_keys(seq), 3);
  crl_td *td =
      td_with(5, "observation", crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(5, 4)));
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, NULL));
  assert_shape(crl_td_get(td, "action"), 2, (int64_t[]){5, 2});
  crl_td *t2 = crl_td_step_mdp(td, NULL);
  crl_tensor *a1 = crl_clone(crl_td_get(td, "action"));
  CRL_CHECK_OK(crl_tdmodule_forward(seq, t2, NULL));
  /* same observation, different state: a different action */
  assert_false(crl_allclose(crl_td_get(t2, "action"), a1, 0, 1e-7));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_gru_carries_state),
      CRL_TEST(test_lstm),
      CRL_TEST(test_errors),
      CRL_TEST(test_in_sequence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
