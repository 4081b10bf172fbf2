/* Adam and AdamW against torch's update written out as a plain double loop
 * (bias correction, L2 weight decay in the gradient, decoupled decay,
 * amsgrad with its max of raw second moments), hand-computed first steps,
 * defaults, state access for checkpoints, errors, and an integration test
 * that minimises (x - 3)^2 through autograd. */
#include "optim_test_util.h"

/* torch.optim.Adam / AdamW, one step at the parameter's step t, in double.
 * m, v, vmax are the state. */
static void adam_ref(double *p, const double *grad, double *m, double *v,
                     double *vmax, int64_t n, int t, crl_adam_options o,
                     bool adamw) {
  double bc1 = 1 - pow(o.beta1, t), bc2 = 1 - pow(o.beta2, t);
  for (int64_t i = 0; i < n; i++) {
    double g = grad[i];
    if (adamw)
      p[i] = p[i] * (1 - o.lr * o.weight_decay);
    else if (o.weight_decay != 0)
      g = g + o.weight_decay * p[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
    double vv = v[i];
    if (o.amsgrad) {
      vmax[i] = fmax(vmax[i], v[i]);
      vv = vmax[i];
    }
    double denom = sqrt(vv) / sqrt(bc2) + o.eps;
    p[i] = p[i] - (o.lr / bc1) * m[i] / denom;
  }
}

/* `steps` steps with gradients that shrink and flip sign (so amsgrad's max
 * differs from v), compared with the reference after every step. */
static void run_case(crl_dtype dt, int64_t n, crl_adam_options o, bool adamw,
                     int steps, double tol) {
  enum { N = 1100 };
  double p[N], g[N], m[N] = {0}, v[N] = {0}, vm[N] = {0};
  assert_true(n <= N);
  for (int64_t i = 0; i < n; i++)
    p[i] = 0.5 - 0.01 * (double)(i % 97);
  crl_tensor *tp = param(dt, n, p);
  crl_optimizer *opt =
      adamw ? crl_adamw_new(&tp, 1, o) : crl_adam_new(&tp, 1, o);
  CRL_CHECK_PTR(opt);
  for (int64_t i = 0; i < n; i++)
    p[i] = crl_tensor_get_flat(tp, i);
  double scale[4] = {1, -0.1, 0.5, -0.01};
  for (int t = 1; t <= steps; t++) {
    for (int64_t i = 0; i < n; i++) {
      double x = scale[(t - 1) % 4] * (1 + 0.01 * (double)(i % 13));
      g[i] = dt == CRL_FLOAT32 ? (double)(float)x : x;
    }
    set_grad(tp, g);
    CRL_CHECK_OK(crl_optimizer_step(opt));
    adam_ref(p, g, m, v, vm, n, t, o, adamw);
    assert_close(tp, p, tol);
    assert_close(crl_optimizer_state(opt, 0, "exp_avg"), m, tol);
    assert_close(crl_optimizer_state(opt, 0, "exp_avg_sq"), v, tol);
    if (o.amsgrad)
      assert_close(crl_optimizer_state(opt, 0, "max_exp_avg_sq"), vm, tol);
  }
  crl_optimizer_free(opt);
}

static void test_hand_computed_first_steps(void **state) {
  (void)state;
  /* Step 1 of Adam moves every coordinate by lr * g / (|g| + eps') ~ lr:
   * m = 0.1 g, v = 0.001 g^2, m/bc1 = g, sqrt(v/bc2) = |g|. */
  crl_tensor *p = param(CRL_FLOAT64, 3, (double[]){1, 2, 3});
  crl_optimizer *o = crl_adam_new(
      &p, 1, (crl_adam_options){.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999});
  set_grad(p, (double[]){2, -0.5, 1e-3});
  CRL_CHECK_OK(crl_optimizer_step(o));
  double eps = 1e-8;
  assert_tensor_values(p,
                       (double[]){1 - 0.1 * 2 / (2 + eps),
                                  2 + 0.1 * 0.5 / (0.5 + eps),
                                  3 - 0.1 * 1e-3 / (1e-3 + eps)},
                       3, 1e-15);
  assert_tensor_values(crl_optimizer_state(o, 0, "exp_avg"),
                       (double[]){0.2, -0.05, 1e-4}, 3, 1e-16);
  assert_tensor_values(crl_optimizer_state(o, 0, "exp_avg_sq"),
                       (double[]){0.004, 0.00025, 1e-9}, 3, 1e-16);
  /* Step 2 with the same gradient: m = 0.19 g, v = 0.001999 g^2, bias
   * corrections 0.19 and 0.001999: again a move of lr * g/(|g| + eps). */
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_tensor_get_flat(p, 0), 1 - 0.2 * 2 / (2 + eps), 1e-14);
  assert_null(crl_optimizer_state(o, 0, "max_exp_avg_sq")); /* no amsgrad */
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  crl_optimizer_free(o);
}

static void test_defaults(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){0});
  crl_optimizer *o = crl_adam_new(&p, 1, (crl_adam_options){0});
  CRL_CHECK_PTR(o);
  assert_string_equal(crl_optimizer_name(o), "adam");
  ASSERT_NEAR(crl_optimizer_get_lr(o), 1e-3, 0);
  set_grad(p, (double[]){4});
  CRL_CHECK_OK(crl_optimizer_step(o));
  /* beta1 = .9, beta2 = .999, eps = 1e-8 */
  ASSERT_NEAR(crl_item(p), -1e-3 * 4 / (4 + 1e-8), 1e-17);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "exp_avg")), 0.4, 1e-15);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "exp_avg_sq")), 0.016, 1e-16);
  crl_optimizer_free(o);
  o = crl_adamw_new(&p, 1, (crl_adam_options){.weight_decay = 0.01});
  assert_string_equal(crl_optimizer_name(o), "adamw");
  crl_optimizer_free(o);
}

static void test_against_reference(void **state) {
  (void)state;
  crl_adam_options cases[] = {
      {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
      {.lr = 0.05,
       .beta1 = 0.8,
       .beta2 = 0.99,
       .eps = 1e-6,
       .weight_decay = 0.1},
      {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .amsgrad = true},
      {.lr = 0.02,
       .beta1 = 0.5,
       .beta2 = 0.9,
       .eps = 1e-3,
       .weight_decay = 0.05,
       .amsgrad = true},
      {.lr = 0.01, .beta1 = 0, .beta2 = 0.9, .eps = 1e-8}, /* beta1 = 0 */
  };
  int64_t sizes[] = {1, 5, 8, 9, 1003};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (int w = 0; w < 2; w++) {
        run_case(CRL_FLOAT64, sizes[s], cases[c], w, 5, 1e-12);
        run_case(CRL_FLOAT32, sizes[s], cases[c], w, 5, 2e-5);
      }
}

static void test_amsgrad_keeps_max(void **state) {
  (void)state;
  /* g = 1 then 0: v1 = .001, v2 = .000999 < v1, so amsgrad divides by
   * sqrt(v1) (raw max, as torch) at step 2. */
  crl_tensor *p = param(CRL_FLOAT64, 1, (double[]){0});
  crl_adam_options ao = {
      .lr = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .amsgrad = true};
  crl_optimizer *o = crl_adam_new(&p, 1, ao);
  set_grad(p, (double[]){1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  double x = -1 / (1 + 1e-8);
  ASSERT_NEAR(crl_item(p), x, 1e-15);
  set_grad(p, (double[]){0});
  CRL_CHECK_OK(crl_optimizer_step(o));
  double m = 0.09, bc1 = 1 - 0.81, bc2 = 1 - 0.999 * 0.999;
  x -= (1 / bc1) * m / (sqrt(0.001) / sqrt(bc2) + 1e-8);
  ASSERT_NEAR(crl_item(p), x, 1e-13);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "max_exp_avg_sq")), 0.001,
              1e-18);
  ASSERT_NEAR(crl_item(crl_optimizer_state(o, 0, "exp_avg_sq")), 0.000999,
              1e-18);
  crl_optimizer_free(o);
}

static void test_adamw_decoupled(void **state) {
  (void)state;
  /* zero gradient: Adam's step is 0/(0+eps) = 0 and only the decay acts:
   * p *= 1 - lr * wd each step (Adam with L2 would instead move by ~lr) */
  crl_tensor *p = param(CRL_FLOAT64, 2, (double[]){2, -4});
  crl_optimizer *o =
      crl_adamw_new(&p, 1, (crl_adam_options){.lr = 0.1, .weight_decay = 0.5});
  set_grad(p, (double[]){0, 0});
  CRL_CHECK_OK(crl_optimizer_step(o));
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(p, (double[]){2 * 0.95 * 0.95, -4 * 0.95 * 0.95}, 2,
                       1e-15);
  crl_optimizer_free(o);
  p = param(CRL_FLOAT64, 1, (double[]){2});
  o = crl_adam_new(&p, 1, (crl_adam_options){.lr = 0.1, .weight_decay = 0.5});
  set_grad(p, (double[]){0});
  CRL_CHECK_OK(crl_optimizer_step(o)); /* g = 0.5 * 2 = 1: moves by ~lr */
  ASSERT_NEAR(crl_item(p), 1.9, 1e-7);
  crl_optimizer_free(o);
}

/* Per-parameter step counts: a parameter first updated at the optimizer's
 * third step gets step-1 bias correction. Restoring a checkpoint: state
 * tensors copied in and set_steps continue the trajectory exactly. */
static void test_steps_and_checkpoint(void **state) {
  (void)state;
  crl_tensor *a = param(CRL_FLOAT64, 1, (double[]){0});
  crl_tensor *b = param(CRL_FLOAT64, 1, (double[]){0});
  crl_tensor *ps[2] = {a, b};
  crl_adam_options ao = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999};
  crl_optimizer *o = crl_adam_new(ps, 2, ao);
  set_grad(a, (double[]){1});
  CRL_CHECK_OK(crl_optimizer_step(o));
  CRL_CHECK_OK(crl_optimizer_step(o));
  assert_tensor_values(b, (double[]){0}, 1, 0);
  set_grad(b, (double[]){3});
  CRL_CHECK_OK(crl_optimizer_step(o));
  ASSERT_NEAR(crl_item(b), -0.1 * 3 / (3 + 1e-8), 1e-15); /* its step 1 */
  assert_int_equal(crl_optimizer_steps(o), 3);

  /* checkpoint a: copy state, continue two more steps in both */
  crl_tensor *pa = param(CRL_FLOAT64, 1, (double[]){crl_item(a)});
  crl_optimizer *o2 = crl_adam_new(&pa, 1, ao);
  CRL_CHECK_OK(crl_copy_(crl_optimizer_state(o2, 0, "exp_avg"),
                         crl_optimizer_state(o, 0, "exp_avg")));
  CRL_CHECK_OK(crl_copy_(crl_optimizer_state(o2, 0, "exp_avg_sq"),
                         crl_optimizer_state(o, 0, "exp_avg_sq")));
  crl_optimizer_set_steps(o2, 3);
  set_grad(pa, (double[]){1});
  for (int k = 0; k < 2; k++) {
    CRL_CHECK_OK(crl_optimizer_step(o));
    CRL_CHECK_OK(crl_optimizer_step(o2));
  }
  ASSERT_NEAR(crl_item(pa), crl_item(a), 0);
  crl_optimizer_free(o);
  crl_optimizer_free(o2);
}

static void test_errors(void **state) {
  (void)state;
  crl_tensor *p = param(CRL_FLOAT32, 2, (double[]){1, 2});
  assert_null(crl_adam_new(&p, 1, (crl_adam_options){.lr = -0.1}));
  CRL_ASSERT_ERR_HAS("adam: lr must be finite and >= 0, got -0.1");
  assert_null(
      crl_adamw_new(&p, 1, (crl_adam_options){.beta1 = 1, .beta2 = 0.9}));
  CRL_ASSERT_ERR_HAS("adamw: beta1 must be in [0, 1), got 1");
  assert_null(
      crl_adam_new(&p, 1, (crl_adam_options){.beta1 = 0.9, .beta2 = -1}));
  CRL_ASSERT_ERR_HAS("beta2 must be in [0, 1)");
  assert_null(crl_adam_new(&p, 1, (crl_adam_options){.eps = -1}));
  CRL_ASSERT_ERR_HAS("eps must be finite and >= 0");
  assert_null(crl_adam_new(&p, 1, (crl_adam_options){.weight_decay = NAN}));
  CRL_ASSERT_ERR_HAS("weight_decay must be finite and >= 0");
  crl_optimizer *o = crl_adam_new(&p, 1, (crl_adam_options){.lr = 0.1});
  crl_tensor *g = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 2));
  p->grad = crl_tensor_retain(g);
  assert_int_equal(crl_optimizer_step(o), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("optimizer_step (adam): grad of parameter 0 has shape "
                     "[1, 2] but the parameter has shape [2]");
  assert_tensor_values(p, (double[]){1, 2}, 2, 0);
  assert_tensor_values(crl_optimizer_state(o, 0, "exp_avg"), (double[]){0, 0},
                       2, 0);
  crl_optimizer_free(o);
}

/* Minimise (x - 3)^2 with Adam through autograd: crl_sub, crl_mul,
 * crl_sum, crl_backward. */
static void test_quadratic_with_autograd(void **state) {
  (void)state;
  crl_tensor *x = param(CRL_FLOAT32, 1, (double[]){0});
  crl_tensor *three = crl_scalar(CRL_FLOAT32, 3);
  crl_optimizer *o = crl_adam_new(&x, 1, (crl_adam_options){.lr = 0.1});
  double loss_v = 0;
  for (int it = 0; it < 500; it++) {
    crl_scope_begin();
    crl_tensor *d = crl_sub(x, three);
    crl_tensor *loss = crl_sum(crl_mul(d, d), 0, NULL, false);
    CRL_CHECK_PTR(loss);
    loss_v = crl_item(loss);
    crl_optimizer_zero_grad(o);
    CRL_CHECK_OK(crl_backward(loss, NULL));
    CRL_CHECK_OK(crl_optimizer_step(o));
    crl_scope_end();
  }
  ASSERT_NEAR(crl_item(x), 3, 1e-3);
  assert_true(loss_v < 1e-5);
  crl_optimizer_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_hand_computed_first_steps),
      CRL_TEST(test_defaults),
      CRL_TEST(test_against_reference),
      CRL_TEST(test_amsgrad_keeps_max),
      CRL_TEST(test_adamw_decoupled),
      CRL_TEST(test_steps_and_checkpoint),
      CRL_TEST(test_errors),
      CRL_TEST(test_quadratic_with_autograd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
