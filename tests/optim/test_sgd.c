/* SGD against torch's update written out as a plain double loop: plain,
 * momentum with dampening, nesterov, weight decay, float32 and float64,
 * long parameters (vector body + tail); the shared optimizer object:
 * zero_grad, NULL grads skipped (and their step count kept), lr and step
 * accessors, state access, and creation/step errors. */
#include "optim_test_util.h"

/* ---- helpers ------------------------------------------------------------ */

/* torch.optim.SGD, one step, in double. buf is the momentum buffer; t the
 * parameter's step count (1 first). */
static void sgd_ref(double *p, const double *grad, double *buf, int64_t n,
                    int t, double lr, crl_sgd_options o) {
  for (int64_t i = 0; i < n; i++) {
    double g = grad[i];
    if (o.weight_decay != 0) g = g + o.weight_decay * p[i];
    if (o.momentum != 0) {
      if (t == 1)
        buf[i] = g;
      else
        buf[i] = o.momentum * buf[i] + (1 - o.dampening) * g;
      g = o.nesterov ? g + o.momentum * buf[i] : buf[i];
    }
    p[i] = p[i] - lr * g;
  }
}

/* Run `steps` steps of SGD on a parameter of n elements with gradients
 * that change every step, comparing with the reference after each. */
static void run_case(crl_dtype dt, int64_t n, crl_sgd_options o, int steps,
                     double tol) {
  double p[1100], buf[1100] = {0}, g[1100];
  assert_true(n <= 1100);
  for (int64_t i = 0; i < n; i++)
    p[i] = 0.5 - 0.01 * (double)(i % 97);
  crl_tensor *tp = param(dt, n, p);
  crl_optimizer *opt = crl_sgd_new(&tp, 1, o);
  CRL_CHECK_PTR(opt);
  if (dt == CRL_FLOAT32) /* the reference starts from the stored values */
    for (int64_t i = 0; i < n; i++)
      p[i] = crl_tensor_get_flat(tp, i);
  for (int t = 1; t <= steps; t++) {
    for (int64_t i = 0; i < n; i++)
      g[i] = (dt == CRL_FLOAT32 ? (double)(float)(0.3 * t - 0.002 * (double)i)
                                : 0.3 * t - 0.002 * (double)i);
    set_grad(tp, g);
    CRL_CHECK_OK(crl_optimizer_step(opt));
    sgd_ref(p, g, buf, n, t, o.lr, o);
    assert_close(tp, p, tol);
    if (o.momentum != 0)
      assert_close(crl_optimizer_state(opt, 0, "momentum_buffer"), buf, tol);
  }
  assert_int_equal(crl_optimizer_steps(opt), steps);
  crl_optimizer_free(opt);
}

/* ---- tests -------------------------------------------------------------- */

static void test_plain_hand_computed(void **state) {
  (void)state;
  /* p = [1, -2], g = [0.5, 1], lr 0.1: p - 0.1 g each step */
  crl_tensor *p = param(CRL_FLOAT64, 2, (double[]){1, -2});
  crl_optimizer *o = crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 0.1});
  CRL_CHECK_PTR(o);
  set_grad(p, (double[]){0.5, 1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(p, (double[]){0.95, -2.1}, 2, 1e-15);
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(p, (double[]){0.9, -2.2}, 2, 1e-15);
  assert_null(crl_optimizer_state(o, 0, "momentum_buffer")); /* no momentum */
  assert_int_equal(p->version >= 2, 1);
  crl_optimizer_free(o);
}

static void test_momentum_hand_computed(void **state) {
  (void)state;
  /* momentum 0.9, dampening 0.5, constant g = 1, lr 1:
   * b1 = 1, p = -1; b2 = 0.9 + 0.5 = 1.4, p = -2.4; b3 = 1.26 + .5 = 1.76 */
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){0});
  crl_optimizer *o = crl_sgd_new(
      &p, 1, (crl_sgd_options){.lr = 1, .momentum = 0.9, .dampening = 0.5});
  set_grad(p, (double[]){1});
  double expect[3] = {-1, -2.4, -4.16}, bufs[3] = {1, 1.4, 1.76};
  for (int t = 0; t < 3; t++) {
    CRL_CHECK_OK(crl_optimizer_step(o));
    ASSERT_NEAR(crl_item(p), expect[t], 1e-14);
    ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "momentum_buffer")), bufs[t],
                1e-14);
  }
  crl_optimizer_free(o);
  /* nesterov, momentum 0.5, g = 1, lr 1: b1 = 1, step g + .5 b = 1.5;
   * b2 = 1.5, step 1 + .75 = 1.75 */
  p = param(CRL_FLOAT64, 1, (double[]){0});
  o = crl_sgd_new(&p, 1,
                  (crl_sgd_options){.lr = 1, .momentum = 0.5, .nesterov = 1});
  set_grad(p, (double[]){1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(p), -1.5, 1e-15);
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(p), -3.25, 1e-15);
  crl_optimizer_free(o);
}

static void test_against_reference(void **state) {
  (void)state;
  crl_sgd_options cases[] = {
      {.lr = 0.1},
      {.lr = 0.05, .weight_decay = 0.1},
      {.lr = 0.1, .momentum = 0.9},
      {.lr = 0.1, .momentum = 0.9, .dampening = 0.3, .weight_decay = 0.01},
      {.lr = 0.02, .momentum = 0.8, .nesterov = true},
      {.lr = 0.02, .momentum = 0.8, .nesterov = true, .weight_decay = 0.2},
  };
  int64_t sizes[] = {1, 3, 7, 8, 17, 1003};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      run_case(CRL_FLOAT64, sizes[s], cases[c], 3, 1e-13);
      run_case(CRL_FLOAT32, sizes[s], cases[c], 3, 1e-6);
    }
}

static void test_zero_grad_and_null_grads(void **state) {
  (void)state;
  crl_tensor *a = param(CRL_FLOAT64, 2, (double[]){1, 2});
  crl_tensor *b = param(CRL_FLOAT32, 1, (double[]){5});
  crl_tensor *ps[2] = {a, b};
  crl_optimizer *o =
      crl_sgd_new(ps, 2, (crl_sgd_options){.lr = 1, .momentum = 0.5});
  CRL_CHECK_PTR(o);
  assert_int_equal(crl_optimizer_num_params(o), 2);
  /* only a has a grad: b is skipped */
  set_grad(a, (double[]){1, 1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(a, (double[]){0, 1}, 2, 0);
  assert_tensor_values(b, (double[]){5}, 1, 0);
  CRL_CHECK_OK(crl_optimizer_step(o)); /* a: b = .5 + 1 = 1.5 */
  assert_tensor_values(a, (double[]){-1.5, -0.5}, 2, 1e-15);
  assert_tensor_values(b, (double[]){5}, 1, 0);
  /* b's first update (its own step 1): buffer = grad, as in torch */
  set_grad(b, (double[]){2});
  crl_optimizer_zero_grad(o);
  assert_null(a->grad);
  assert_null(b->grad);
  CRL_CHECK_OK(crl_optimizer_step(o)); /* nothing has a grad: no change */
  assert_tensor_values(a, (double[]){-1.5, -0.5}, 2, 1e-15);
  set_grad(b, (double[]){2});
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(b, (double[]){3}, 1, 1e-6);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 1, "momentum_buffer")), 2, 0);
  assert_int_equal(crl_optimizer_steps(o), 4);
  crl_optimizer_free(o);
}

static void test_accessors(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){0});
  crl_optimizer *o = crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 0.5});
  assert_string_equal(crl_optimizer_name(o), "sgd");
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.5, 0);
  crl_optimizer_set_lr(o, 0.25);
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.25, 0);
  crl_optimizer_set_lr(o, -1); /* refused, lr kept */
  CRL_ASSERT_ERR_HAS("lr must be finite and >= 0");
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.25, 0);
  set_grad(p, (double[]){1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(p), -0.25, 0);
  assert_int_equal(crl_optimizer_steps(o), 1);
  crl_optimizer_set_steps(o, 10);
  assert_int_equal(crl_optimizer_steps(o), 10);
  /* state errors */
  assert_null(crl_optimizer_state(o, 0, "exp_avg"));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("sgd has no state 'exp_avg'");
  assert_null(crl_optimizer_state(o, 1, "momentum_buffer"));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("parameter index 1 out of range for 1 parameters");
  crl_optimizer_free(o);
  crl_optimizer_free(NULL);
  /* a retained parameter outlives the caller's reference */
  crl_tensor *q = crl_tensor_retain(param(CRL_FLOAT64, 1, (double[]){1}));
  o = crl_sgd_new(&q, 1, (crl_sgd_options){.lr = 1});
  assert_int_equal(q->refcount, 3); /* scope, ours, optimizer's */
  crl_tensor_release(q);
  crl_optimizer_free(o);
}

static void test_creation_errors(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT64, 2, (double[]){1, 2});
  crl_tensor *nonleaf = crl_mul_scalar(p, 2); /* its node retains p */
  CRL_CHECK_PTR(nonleaf);
  int refs = p->refcount;
  crl_sgd_options ok = {.lr = 0.1};
  assert_null(crl_sgd_new(&p, 1, (crl_sgd_options){.lr = -1}));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("sgd: lr must be finite and >= 0, got -1");
  assert_null(crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 1, .nesterov = 1}));
  CRL_ASSERT_ERR_HAS("nesterov needs momentum > 0 and dampening 0");
  assert_null(crl_sgd_new(
      &p, 1,
      (crl_sgd_options){
          .lr = 1, .momentum = 0.9, .dampening = 0.1, .nesterov = 1}));
  CRL_ASSERT_ERR_HAS("dampening 0.1");
  assert_null(crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 1, .momentum = -1}));
  CRL_ASSERT_ERR_HAS("momentum must be finite and >= 0");
  assert_null(crl_sgd_new(&p, 0, ok));
  CRL_ASSERT_ERR_HAS("got 0 parameters");
  assert_null(crl_sgd_new(NULL, 1, ok));
  CRL_ASSERT_ERR_HAS("params is NULL");
  crl_tensor *i64 = crl_zeros(CRL_INT64, CRL_SHAPE(2));
  crl_tensor *two[2] = {p, i64};
  assert_null(crl_sgd_new(two, 2, ok));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("parameter 1 has dtype int64");
  assert_null(crl_sgd_new(&nonleaf, 1, ok));
  CRL_ASSERT_ERR_HAS("parameter 0 (shape [2]) is not a leaf");
  crl_tensor *m = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *mt = crl_transpose(m, 0, 1);
  two[0] = p;
  two[1] = mt;
  assert_null(crl_sgd_new(two, 2, ok));
  CRL_ASSERT_ERR_HAS("parameter 1 (shape [3, 2]) is not contiguous");
  two[1] = p;
  assert_null(crl_sgd_new(two, 2, ok));
  CRL_ASSERT_ERR_HAS("parameter 1 is the same tensor as parameter 0");
  two[1] = NULL;
  assert_null(crl_sgd_new(two, 2, ok));
  CRL_ASSERT_ERR_HAS("parameter 1 is NULL");
  /* failed creations retained nothing */
  assert_int_equal(p->refcount, refs);
}

static void test_step_errors_leave_params(void **state) {
  (void)state;
  crl_tensor *a = param(CRL_FLOAT64, 2, (double[]){1, 2});
  crl_tensor *b = param(CRL_FLOAT64, 2, (double[]){3, 4});
  crl_tensor *ps[2] = {a, b};
  crl_optimizer *o =
      crl_sgd_new(ps, 2, (crl_sgd_options){.lr = 1, .momentum = 0.9});
  set_grad(a, (double[]){1, 1});
  crl_tensor *bad = crl_ones(CRL_FLOAT64, CRL_SHAPE(3));
  b->grad = crl_tensor_retain(bad);
  assert_int_equal(crl_optimizer_step(o), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS(
      "grad of parameter 1 has shape [3] but the parameter has shape [2]");
  /* nothing was updated, not even parameter 0 */
  assert_tensor_values(a, (double[]){1, 2}, 2, 0);
  assert_tensor_values(b, (double[]){3, 4}, 2, 0);
  assert_tensor_values(crl_optimizer_state(o, 0, "momentum_buffer"),
                       (double[]){0, 0}, 2, 0);
  assert_int_equal(crl_optimizer_steps(o), 0);
  /* wrong dtype, non-contiguous grads */
  crl_zero_grad(b);
  b->grad = crl_tensor_retain(crl_ones(CRL_FLOAT32, CRL_SHAPE(2)));
  assert_int_equal(crl_optimizer_step(o), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("grad of parameter 1 has dtype float32");
  crl_zero_grad(b);
  crl_tensor *wide = crl_ones(CRL_FLOAT64, CRL_SHAPE(4));
  b->grad = crl_tensor_retain(crl_slice(wide, 0, 0, 4, 2));
  assert_int_equal(crl_optimizer_step(o), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("grad of parameter 1 (shape [2]) is not contiguous");
  assert_tensor_values(a, (double[]){1, 2}, 2, 0);
  assert_int_equal(crl_optimizer_step(NULL), CRL_EINVAL);
  /* after fixing the grad it steps */
  crl_zero_grad(b);
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(a, (double[]){0, 1}, 2, 0);
  crl_optimizer_free(o);
}

/* Gradients from autograd: minimise sum((p - t)^2) with momentum SGD. */
static void test_with_autograd(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT32, 3, (double[]){0, 0, 0});
  crl_tensor *target =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){1, -2, 3});
  crl_optimizer *o =
      crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 0.05, .momentum = 0.9});
  for (int it = 0; it < 300; it++) {
    crl_scope_begin();
    crl_tensor *d = crl_sub(p, target);
    crl_tensor *loss = crl_sum(crl_mul(d, d), 0, NULL, false);
    CRL_CHECK_PTR(loss);
    crl_optimizer_zero_grad(o);
    CRL_CHECK_OK(crl_backward(loss, NULL));
    CRL_CHECK_OK(crl_optimizer_step(o));
    crl_scope_end();
  }
  assert_tensor_values(p, (double[]){1, -2, 3}, 3, 1e-4);
  crl_optimizer_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_plain_hand_computed),
      CRL_TEST(test_momentum_hand_computed),
      CRL_TEST(test_against_reference),
      CRL_TEST(test_zero_grad_and_null_grads),
      CRL_TEST(test_accessors),
      CRL_TEST(test_creation_errors),
      CRL_TEST(test_step_errors_leave_params),
      CRL_TEST(test_with_autograd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
