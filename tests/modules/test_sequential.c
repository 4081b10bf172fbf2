/* TensorDictSequential: derived keys, forward, nested parameters,
 * functional calls, select_subsequence. */
#include "modules/modules_internal.h"
#include "modules_test_util.h"

/* obs [B, 2] -> hidden [B, 2] -> action [B, 1]; (hidden) -> value [B, 1] */
static crl_tdmodule *tdm(crl_module *net, const char *in, const char *out) {
  const char *i[1] = {in}, *o[1] = {out};
  crl_tdmodule *m = crl_td_module_new(net, 1, i, 1, o);
  if (!m) fail_msg("td_module_new: %s", crl_last_error());
  return m;
}

typedef struct {
  crl_module *l0, *l1, *l2;
  crl_tdmodule *common, *policy, *value;
} parts;

static parts make_parts(void) {
  parts p;
  p.l0 = linear_with(2, 2, (float[]){1, 0, 0, 2}, (float[]){0, 1});
  p.l1 = linear_with(2, 1, (float[]){1, 1}, (float[]){0});
  p.l2 = linear_with(2, 1, (float[]){1, -1}, (float[]){3});
  p.common = tdm(p.l0, "observation", "hidden");
  p.policy = tdm(p.l1, "hidden", "action");
  p.value = tdm(p.l2, "hidden", "state_value");
  return p;
}

static void assert_keys(const crl_tdmodule *m, int nin, const char *const *in,
                        int nout, const char *const *out) {
  assert_int_equal(crl_tdmodule_num_in_keys(m), nin);
  assert_int_equal(crl_tdmodule_num_out_keys(m), nout);
  for (int i = 0; i < nin; i++)
    assert_string_equal(crl_tdmodule_in_key(m, i), in[i]);
  for (int i = 0; i < nout; i++)
    assert_string_equal(crl_tdmodule_out_key(m, i), out[i]);
}

static void test_forward_and_keys(void **state) {
  (void)state;
  parts p = make_parts();
  crl_tdmodule *seq =
      crl_td_sequential_new(3, (crl_tdmodule *[]){p.common, p.policy, p.value});
  CRL_CHECK_PTR(seq);
  assert_string_equal(crl_tdmodule_name(seq), "TensorDictSequential");
  assert_keys(seq, 1, (const char *[]){"observation"}, 3,
              (const char *[]){"hidden", "action", "state_value"});
  assert_ptr_equal(crl_td_sequential_get(seq, 1), p.policy);
  assert_null(crl_td_sequential_get(seq, 3));
  CRL_ASSERT_ERR_HAS("index 3");
  assert_null(crl_td_sequential_get(p.policy, 0));
  CRL_ASSERT_ERR_HAS("not a sequence");

  crl_td *td =
      td_with(2, "observation", f32(CRL_SHAPE(2, 2), (float[]){1, 2, -1, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, NULL));
  /* hidden = {x0, 2 x1 + 1}: {1, 5}, {-1, 1} */
  assert_tensor_values(crl_td_get(td, "hidden"), (double[]){1, 5, -1, 1}, 4,
                       1e-6);
  assert_tensor_values(crl_td_get(td, "action"), (double[]){6, 0}, 2, 1e-6);
  assert_tensor_values(crl_td_get(td, "state_value"), (double[]){-1, 1}, 2,
                       1e-6);
}

static void test_key_derivation(void **state) {
  (void)state;
  parts p = make_parts();
  /* a module reading what an earlier one wrote and something new, and a
   * key written twice (listed at its last writer) */
  const char *qi[1] = {"extra"}, *qo[1] = {"hidden"};
  crl_tdmodule *rewrite = crl_td_module_new(
      linear_with(2, 2, (float[]){1, 0, 0, 1}, (float[]){0, 0}), 1, qi, 1, qo);
  crl_tdmodule *seq =
      crl_td_sequential_new(3, (crl_tdmodule *[]){p.common, rewrite, p.policy});
  CRL_CHECK_PTR(seq);
  assert_keys(seq, 2, (const char *[]){"observation", "extra"}, 2,
              (const char *[]){"hidden", "action"});
  /* nested sequences */
  crl_tdmodule *inner =
      crl_td_sequential_new(2, (crl_tdmodule *[]){p.common, p.policy});
  crl_tdmodule *outer =
      crl_td_sequential_new(2, (crl_tdmodule *[]){inner, p.value});
  assert_keys(outer, 1, (const char *[]){"observation"}, 3,
              (const char *[]){"hidden", "action", "state_value"});
  crl_td *pr = crl_tdmodule_params(outer);
  assert_ptr_equal(crl_td_get(pr, "0/1/weight"),
                   crl_td_get(crl_module_params(p.l1), "weight"));
  assert_null(crl_td_sequential_new(0, NULL));
  assert_null(crl_td_sequential_new(2, (crl_tdmodule *[]){p.common, NULL}));
  CRL_ASSERT_ERR_HAS("module 1 is NULL");
}

static const crl_tdmodule_ops opt_ops = {"Opt", crl__td_module_forward, NULL};

static void test_optional_keys(void **state) {
  (void)state;
  parts p = make_parts();
  /* a part reading an optional key: the sequence's in_key is optional, and
   * a missing optional key does not stop the forward */
  const char *in[2] = {"hidden", "maybe"}, *out[1] = {"z"};
  bool opt[2] = {false, true};
  crl_tdmodule *o =
      crl__tdm_new("test", &opt_ops, NULL, 2, in, opt, 1, out, NULL, 0, NULL);
  CRL_CHECK_PTR(o);
  crl_tdmodule *seq = crl_td_sequential_new(2, (crl_tdmodule *[]){p.common, o});
  assert_keys(seq, 2, (const char *[]){"observation", "maybe"}, 2,
              (const char *[]){"hidden", "z"});
  assert_false(seq->in_optional[0]);
  assert_true(seq->in_optional[1]);
  /* a later part requiring it makes it required */
  const char *in2[1] = {"maybe"}, *out2[1] = {"w"};
  crl_tdmodule *req = crl_td_module_new(
      linear_with(2, 1, (float[]){1, 1}, (float[]){0}), 1, in2, 1, out2);
  crl_tdmodule *seq2 =
      crl_td_sequential_new(3, (crl_tdmodule *[]){p.common, o, req});
  assert_false(seq2->in_optional[1]);
}

static void test_missing_input(void **state) {
  (void)state;
  parts p = make_parts();
  /* value reads "obs2" which nobody writes */
  crl_tdmodule *v2 = tdm(p.l2, "obs2", "state_value");
  crl_tdmodule *seq =
      crl_td_sequential_new(3, (crl_tdmodule *[]){p.common, p.policy, v2});
  assert_keys(seq, 2, (const char *[]){"observation", "obs2"}, 3,
              (const char *[]){"hidden", "action", "state_value"});
  crl_td *td =
      td_with(2, "observation", f32(CRL_SHAPE(2, 2), (float[]){1, 2, -1, 0}));
  assert_int_equal(crl_tdmodule_forward(seq, td, NULL), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'obs2'");
  /* nothing ran */
  assert_int_equal(crl_td_len(td), 1);
}

static void test_params_and_functional(void **state) {
  (void)state;
  parts p = make_parts();
  /* a part without parameters in the middle */
  const char *ri[1] = {"hidden"}, *ro[1] = {"hidden"};
  crl_tdmodule *act =
      crl_td_module_new(crl_activation_module_new(CRL_ACT_RELU), 1, ri, 1, ro);
  crl_tdmodule *seq = crl_td_sequential_new(
      4, (crl_tdmodule *[]){p.common, act, p.policy, p.value});
  crl_td *pr = crl_tdmodule_params(seq);
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(pr, true, true, &k));
  assert_int_equal(k.n, 6);
  assert_string_equal(k.keys[0], "0/weight");
  assert_string_equal(k.keys[1], "0/bias");
  assert_string_equal(k.keys[2], "2/weight");
  assert_string_equal(k.keys[5], "3/bias");
  crl_td_keys_free(&k);
  /* the same tensors, not copies */
  assert_ptr_equal(crl_td_get(pr, "0/weight"),
                   crl_td_get(crl_module_params(p.l0), "weight"));
  assert_ptr_equal(crl_td_get_td(pr, "2"), crl_module_params(p.l1));

  crl_td *td =
      td_with(2, "observation", f32(CRL_SHAPE(2, 2), (float[]){1, 2, -1, 0}));
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, NULL));
  /* relu(hidden) = {1, 5}, {0, 1} */
  assert_tensor_values(crl_td_get(td, "action"), (double[]){6, 1}, 2, 1e-6);
  /* a substitute: clone the leaves, change the policy's bias */
  crl_no_grad_begin();
  crl_td *sub = crl_td_clone(pr); /* detached copies */
  CRL_CHECK_PTR(sub);
  CRL_CHECK_OK(crl_td_del(sub, "1")); /* parameterless parts may be absent */
  CRL_CHECK_OK(crl_td_fill_(sub, "2/bias", 100));
  crl_no_grad_end();
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, sub));
  assert_tensor_values(crl_td_get(td, "action"), (double[]){106, 101}, 2, 1e-5);
  /* own parameters unchanged */
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), (double[]){6, 1}, 2, 1e-6);
  /* a part with parameters missing from the substitute */
  CRL_CHECK_OK(crl_td_del(sub, "3"));
  assert_int_equal(crl_tdmodule_forward(seq, td, sub), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'3/...'");
  /* gradients through the sequence reach every part */
  CRL_CHECK_OK(crl_tdmodule_forward(seq, td, NULL));
  crl_tensor *l =
      crl_add(crl_sum(crl_td_get(td, "action"), 0, NULL, false),
              crl_sum(crl_td_get(td, "state_value"), 0, NULL, false));
  CRL_CHECK_OK(crl_backward(l, NULL));
  assert_non_null(crl_td_get(pr, "0/weight")->grad);
  assert_non_null(crl_td_get(pr, "2/weight")->grad);
  assert_non_null(crl_td_get(pr, "3/bias")->grad);
  for (int i = 0; i < 4; i++) {
    static const char *keys[4] = {"0/weight", "0/bias", "2/weight", "2/bias"};
    crl_zero_grad(crl_td_get(pr, keys[i]));
  }
  crl_zero_grad(crl_td_get(pr, "3/weight"));
  crl_zero_grad(crl_td_get(pr, "3/bias"));
}

static void test_select_subsequence(void **state) {
  (void)state;
  parts p = make_parts();
  crl_tdmodule *seq =
      crl_td_sequential_new(3, (crl_tdmodule *[]){p.common, p.policy, p.value});
  /* the value: common + value */
  crl_tdmodule *v = crl_td_sequential_select(seq, 0, NULL, 1,
                                             (const char *[]){"state_value"});
  CRL_CHECK_PTR(v);
  assert_int_equal(v->nchildren, 2);
  assert_ptr_equal(crl_td_sequential_get(v, 0), p.common);
  assert_ptr_equal(crl_td_sequential_get(v, 1), p.value);
  assert_keys(v, 1, (const char *[]){"observation"}, 2,
              (const char *[]){"hidden", "state_value"});
  /* from the hidden state: the two heads */
  crl_tdmodule *h =
      crl_td_sequential_select(seq, 1, (const char *[]){"hidden"}, 0, NULL);
  CRL_CHECK_PTR(h);
  assert_int_equal(h->nchildren, 2);
  assert_ptr_equal(crl_td_sequential_get(h, 0), p.policy);
  assert_keys(h, 1, (const char *[]){"hidden"}, 2,
              (const char *[]){"action", "state_value"});
  /* from hidden to action: the policy head only */
  crl_tdmodule *a = crl_td_sequential_select(seq, 1, (const char *[]){"hidden"},
                                             1, (const char *[]){"action"});
  assert_int_equal(a->nchildren, 1);
  crl_td *td =
      td_with(2, "hidden", f32(CRL_SHAPE(2, 2), (float[]){1, 5, 0, 1}));
  CRL_CHECK_OK(crl_tdmodule_forward(a, td, NULL));
  assert_tensor_values(crl_td_get(td, "action"), (double[]){6, 1}, 2, 1e-6);
  assert_false(crl_td_contains(td, "state_value"));
  /* its parameters are the policy's, nested at "0" */
  assert_ptr_equal(crl_td_get(crl_tdmodule_params(a), "0/weight"),
                   crl_td_get(crl_module_params(p.l1), "weight"));
  /* everything */
  crl_tdmodule *all = crl_td_sequential_select(seq, 0, NULL, 0, NULL);
  assert_int_equal(all->nchildren, 3);
  /* impossible */
  assert_null(
      crl_td_sequential_select(seq, 1, (const char *[]){"pixels"}, 0, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'pixels'");
  assert_null(
      crl_td_sequential_select(seq, 0, NULL, 1, (const char *[]){"nothing"}));
  assert_null(crl_td_sequential_select(p.common, 0, NULL, 0, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_forward_and_keys),      CRL_TEST(test_key_derivation),
      CRL_TEST(test_optional_keys),         CRL_TEST(test_missing_input),
      CRL_TEST(test_params_and_functional), CRL_TEST(test_select_subsequence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
