/* RMSprop against torch's update written out as a plain double loop
 * (alpha, eps, weight decay, centered, momentum and their combinations),
 * a hand-computed first step, defaults, state and errors. */
#include "optim_test_util.h"

/* torch.optim.RMSprop, one step, in double. */
static void rms_ref(double *p, const double *grad, double *sq, double *buf,
                    double *ga, int64_t n, crl_rmsprop_options o) {
  for (int64_t i = 0; i < n; i++) {
    double g = grad[i];
    if (o.weight_decay != 0) g = g + o.weight_decay * p[i];
    sq[i] = o.alpha * sq[i] + (1 - o.alpha) * g * g;
    double avg;
    if (o.centered) {
      ga[i] = o.alpha * ga[i] + (1 - o.alpha) * g;
      avg = sqrt(sq[i] - ga[i] * ga[i]) + o.eps;
    } else {
      avg = sqrt(sq[i]) + o.eps;
    }
    if (o.momentum > 0) {
      buf[i] = o.momentum * buf[i] + g / avg;
      p[i] = p[i] - o.lr * buf[i];
    } else {
      p[i] = p[i] - o.lr * g / avg;
    }
  }
}

static void run_case(crl_dtype dt, int64_t n, crl_rmsprop_options o, int steps,
                     double tol) {
  enum { N = 1100 };
  double p[N], g[N], sq[N] = {0}, buf[N] = {0}, ga[N] = {0};
  assert_true(n <= N);
  for (int64_t i = 0; i < n; i++)
    p[i] = 0.5 - 0.01 * (double)(i % 97);
  crl_tensor *tp = param(dt, n, p);
  crl_optimizer *opt = crl_rmsprop_new(&tp, 1, o);
  CRL_CHECK_PTR(opt);
  for (int64_t i = 0; i < n; i++)
    p[i] = crl_tensor_get_flat(tp, i);
  double scale[4] = {1, -0.3, 0.5, 2};
  for (int t = 1; t <= steps; t++) {
    for (int64_t i = 0; i < n; i++) {
      double x = scale[(t - 1) % 4] * (1 + 0.02 * (double)(i % 11));
      g[i] = dt == CRL_FLOAT32 ? (double)(float)x : x;
    }
    set_grad(tp, g);
    CRL_CHECK_OK(crl_optimizer_step(opt));
    rms_ref(p, g, sq, buf, ga, n, o);
    assert_close(tp, p, tol);
    assert_close(crl_optimizer_state(opt, 0, "square_avg"), sq, tol);
    if (o.momentum > 0)
      assert_close(crl_optimizer_state(opt, 0, "momentum_buffer"), buf, tol);
    else
      assert_null(crl_optimizer_state(opt, 0, "momentum_buffer"));
    if (o.centered)
      assert_close(crl_optimizer_state(opt, 0, "grad_avg"), ga, tol);
    else
      assert_null(crl_optimizer_state(opt, 0, "grad_avg"));
  }
  crl_optimizer_free(opt);
}

static void test_hand_computed(void **state) {
  (void)state;
  /* alpha 0.9, g = 2: sq = 0.1 * 4 = 0.4, p -= lr * 2 / (sqrt(.4) + eps) */
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){1});
  crl_optimizer *o = crl_rmsprop_new(
      &p, 1, (crl_rmsprop_options){.lr = 0.01, .alpha = 0.9, .eps = 1e-8});
  set_grad(p, (double[]){2});
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(p), 1 - 0.01 * 2 / (sqrt(0.4) + 1e-8), 1e-15);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "square_avg")), 0.4, 1e-15);
  crl_optimizer_free(o);
  /* centered, alpha 0.5, g = 2: sq = 2, ga = 1, avg = sqrt(2 - 1) = 1 */
  p = param(CRL_FLOAT64, 1, (double[]){1});
  o = crl_rmsprop_new(
      &p, 1,
      (crl_rmsprop_options){
          .lr = 0.1, .alpha = 0.5, .eps = 1e-8, .centered = true});
  set_grad(p, (double[]){2});
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(p), 1 - 0.1 * 2 / (1 + 1e-8), 1e-15);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "grad_avg")), 1, 0);
  crl_optimizer_free(o);
}

static void test_defaults(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){0});
  crl_optimizer *o = crl_rmsprop_new(&p, 1, (crl_rmsprop_options){0});
  CRL_CHECK_PTR(o);
  assert_string_equal(crl_optimizer_name(o), "rmsprop");
  ASSERT_NEAR(crl_optimizer_get_lr(o), 1e-2, 0);
  set_grad(p, (double[]){1});
  CRL_CHECK_OK(crl_optimizer_step(o)); /* alpha .99: sq = .01, avg = .1 */
  ASSERT_NEAR(crl_item(p), -1e-2 / (0.1 + 1e-8), 1e-15);
  crl_optimizer_free(o);
}

static void test_against_reference(void **state) {
  (void)state;
  crl_rmsprop_options cases[] = {
      {.lr = 0.01, .alpha = 0.99, .eps = 1e-8},
      {.lr = 0.01, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.1},
      {.lr = 0.01, .alpha = 0.9, .eps = 1e-8, .centered = true},
      {.lr = 0.01, .alpha = 0.95, .eps = 1e-8, .momentum = 0.9},
      {.lr = 0.005,
       .alpha = 0.8,
       .eps = 1e-4,
       .weight_decay = 0.05,
       .momentum = 0.5,
       .centered = true},
  };
  int64_t sizes[] = {1, 4, 8, 13, 1003};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      run_case(CRL_FLOAT64, sizes[s], cases[c], 5, 1e-12);
      run_case(CRL_FLOAT32, sizes[s], cases[c], 5, 2e-5);
    }
}

static void test_errors(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT64, 2, (double[]){1, 2});
  assert_null(crl_rmsprop_new(&p, 1, (crl_rmsprop_options){.lr = -1}));
  CRL_ASSERT_ERR_HAS("rmsprop: lr must be finite and >= 0, got -1");
  assert_null(crl_rmsprop_new(&p, 1, (crl_rmsprop_options){.alpha = 1.5}));
  CRL_ASSERT_ERR_HAS("rmsprop: alpha must be in (0, 1], got 1.5");
  assert_null(crl_rmsprop_new(&p, 1, (crl_rmsprop_options){.momentum = -1}));
  CRL_ASSERT_ERR_HAS("momentum must be finite and >= 0");
  crl_tensor *i32 = crl_zeros(CRL_INT32, CRL_SHAPE(1));
  crl_tensor *ps[2] = {p, i32};
  assert_null(crl_rmsprop_new(ps, 2, (crl_rmsprop_options){0}));
  CRL_ASSERT_ERR_HAS("rmsprop: parameter 1 has dtype int32");
  crl_optimizer *o = crl_rmsprop_new(&p, 1, (crl_rmsprop_options){0});
  p->grad = crl_tensor_retain(crl_ones(CRL_FLOAT64, CRL_SHAPE(3)));
  assert_int_equal(crl_optimizer_step(o), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("optimizer_step (rmsprop): grad of parameter 0 has "
                     "shape [3] but the parameter has shape [2]");
  assert_tensor_values(p, (double[]){1, 2}, 2, 0);
  assert_tensor_values(crl_optimizer_state(o, 0, "square_avg"),
                       (double[]){0, 0}, 2, 0);
  crl_optimizer_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_hand_computed),
      CRL_TEST(test_defaults),
      CRL_TEST(test_against_reference),
      CRL_TEST(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
