/* Learning-rate schedules: linear warmup/decay and cosine annealing values
 * at several steps (closed forms), the optimizer's lr following them, the
 * hold after the last step, and errors. */
#include "test_util.h"

static crl_optimizer *make_opt(double lr) {
  crl_tensor *p = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_set_requires_grad(p, true);
  return crl_sgd_new(&p, 1, (crl_sgd_options){.lr = lr});
}

static void test_linear(void **state) {
  (void)state;
  /* base 0.1, factors 0.25 -> 1 over 4 steps: lr(t) = .1 (.25 + .75 t/4) */
  crl_optimizer *o = make_opt(0.1);
  crl_lr_scheduler *s = crl_linear_lr_new(o, 0.25, 1.0, 4);
  CRL_CHECK_PTR(s);
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.025, 1e-17); /* t = 0 at creation */
  double expect[] = {0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.1};
  for (int t = 0; t < 6; t++) {
    double lr = crl_lr_scheduler_step(s);
    ASSERT_NEAR(lr, expect[t], 1e-16);
    ASSERT_NEAR(crl_optimizer_get_lr(o), expect[t], 1e-16);
  }
  crl_lr_scheduler_free(s);
  /* decay: 1 -> 0 over 2 steps from the optimizer's current lr */
  crl_optimizer_set_lr(o, 0.5);
  s = crl_linear_lr_new(o, 1.0, 0.0, 2);
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.5, 0);
  ASSERT_NEAR(crl_lr_scheduler_step(s), 0.25, 0);
  ASSERT_NEAR(crl_lr_scheduler_step(s), 0.0, 0);
  ASSERT_NEAR(crl_lr_scheduler_step(s), 0.0, 0);
  crl_lr_scheduler_free(s);
  crl_optimizer_free(o);
}

static void test_cosine(void **state) {
  (void)state;
  /* base 1, eta_min 0.1, T = 8:
   * lr(t) = 0.1 + 0.9 (1 + cos(pi t / 8)) / 2 */
  crl_optimizer *o = make_opt(1.0);
  crl_lr_scheduler *s = crl_cosine_lr_new(o, 8, 0.1);
  CRL_CHECK_PTR(s);
  ASSERT_NEAR(crl_optimizer_get_lr(o), 1.0, 1e-16);
  for (int t = 1; t <= 10; t++) {
    int tc = t < 8 ? t : 8;
    double expect = 0.1 + 0.9 * (1 + cos(M_PI * tc / 8.0)) / 2;
    ASSERT_NEAR(crl_lr_scheduler_step(s), expect, 1e-15);
    ASSERT_NEAR(crl_optimizer_get_lr(o), expect, 1e-15);
  }
  /* exact landmarks: the middle is the average, the end eta_min */
  crl_lr_scheduler_free(s);
  crl_optimizer_set_lr(o, 1.0);
  s = crl_cosine_lr_new(o, 4, 0.0);
  ASSERT_NEAR(crl_lr_scheduler_step(s), (1 + cos(M_PI / 4)) / 2, 1e-15);
  ASSERT_NEAR(crl_lr_scheduler_step(s), 0.5, 1e-15);
  crl_lr_scheduler_step(s);
  ASSERT_NEAR(crl_lr_scheduler_step(s), 0.0, 1e-15);
  crl_lr_scheduler_free(s);
  crl_optimizer_free(o);
}

/* The optimizer's updates use the scheduled lr. */
static void test_drives_updates(void **state) {
  (void)state;
  crl_tensor *p = crl_zeros(CRL_FLOAT64, CRL_SHAPE(1));
  crl_set_requires_grad(p, true);
  crl_optimizer *o = crl_sgd_new(&p, 1, (crl_sgd_options){.lr = 1});
  crl_lr_scheduler *s = crl_linear_lr_new(o, 0.5, 1.0, 2);
  p->grad = crl_tensor_retain(crl_ones(CRL_FLOAT64, CRL_SHAPE(1)));
  double x = 0;
  for (int t = 0; t < 3; t++) {
    CRL_CHECK_OK(crl_optimizer_step(o));
    x -= crl_optimizer_get_lr(o);
    crl_lr_scheduler_step(s);
  }
  ASSERT_NEAR(crl_item(p), -(0.5 + 0.75 + 1.0), 1e-15);
  ASSERT_NEAR(x, crl_item(p), 1e-15);
  crl_lr_scheduler_free(s);
  crl_optimizer_free(o);
}

static void test_errors(void **state) {
  (void)state;
  crl_optimizer *o = make_opt(0.1);
  assert_null(crl_linear_lr_new(NULL, 0.5, 1, 10));
  CRL_ASSERT_ERR_HAS("linear_lr: optimizer is NULL");
  assert_null(crl_linear_lr_new(o, 0, 1, 10));
  CRL_ASSERT_ERR_HAS("linear_lr: start_factor must be in (0, 1], got 0");
  assert_null(crl_linear_lr_new(o, 0.5, 1.5, 10));
  CRL_ASSERT_ERR_HAS("end_factor must be in [0, 1], got 1.5");
  assert_null(crl_linear_lr_new(o, 0.5, 1, 0));
  CRL_ASSERT_ERR_HAS("total_iters must be >= 1, got 0");
  assert_null(crl_cosine_lr_new(o, 0, 0));
  CRL_ASSERT_ERR_HAS("cosine_lr: t_max must be >= 1, got 0");
  assert_null(crl_cosine_lr_new(o, 10, -1));
  CRL_ASSERT_ERR_HAS("eta_min must be finite and >= 0");
  /* failed creations left the lr alone */
  ASSERT_NEAR(crl_optimizer_get_lr(o), 0.1, 0);
  assert_true(crl_lr_scheduler_step(NULL) < 0);
  crl_lr_scheduler_free(NULL);
  crl_optimizer_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_linear),
      CRL_TEST(test_cosine),
      CRL_TEST(test_drives_updates),
      CRL_TEST(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
