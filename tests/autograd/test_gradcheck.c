/* crl_gradcheck itself: it passes correct ops and FAILS wrong ones — a
 * custom op recorded with crl__record whose backward is off by a factor,
 * one that drops a gradient, one that gets only the second input wrong —
 * and reports input, element and both values. */
#include "core/internal.h"
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

/* ---- custom op y = c x^2, its backward scaled by n->f[0] ---------------- */

static int scaled_square_backward(crl_node *n, crl_tensor *g,
                                  crl_tensor **gin) {
  /* correct gradient: 2 c x g; multiplied by the factor under test */
  if (!n->edges[0].needs_grad) return 0;
  crl_tensor *x = n->saved[0];
  gin[0] = crl_mul(g, crl_mul_scalar(x, 2 * n->f[1] * n->f[0]));
  return gin[0] ? 0 : crl_last_error_code();
}

static crl_tensor *scaled_square(crl_tensor *x, double c, double factor) {
  crl_tensor *y;
  crl_no_grad_begin();
  y = crl_mul_scalar(crl_square(x), c);
  crl_no_grad_end();
  if (!y) return NULL;
  if (crl__any_requires_grad(1, &x)) {
    crl_node *n =
        crl__record(y, "scaled_square", scaled_square_backward, 1, &x);
    if (!n) return NULL;
    n->f[0] = factor;
    n->f[1] = c;
    crl__save(n, 0, x);
  }
  return y;
}

static crl_tensor *fn_custom(crl_tensor **in, void *ctx) {
  return scaled_square(in[0], 1.5, *(double *)ctx);
}

/* ---- a two-input op a * b whose gradient for b is wrong ------------------ */

static int bad_mul_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *a = n->saved[0], *b = n->saved[1];
  if (n->edges[0].needs_grad) gin[0] = crl_mul(g, b);
  if (n->edges[1].needs_grad) gin[1] = crl_mul(g, crl_add_scalar(a, 0.01));
  return 0;
}

static crl_tensor *fn_bad_mul(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_tensor *y;
  crl_no_grad_begin();
  y = crl_mul(in[0], in[1]);
  crl_no_grad_end();
  if (crl__any_requires_grad(2, in)) {
    crl_node *n = crl__record(y, "bad_mul", bad_mul_backward, 2, in);
    crl__save(n, 0, in[0]);
    crl__save(n, 1, in[1]);
  }
  return y;
}

/* ---- an op whose backward forgets its input ------------------------------ */

static int no_grad_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  (void)n;
  (void)g;
  (void)gin;
  return 0;
}

static crl_tensor *fn_dropped(crl_tensor **in, void *ctx) {
  (void)ctx;
  crl_tensor *y;
  crl_no_grad_begin();
  y = crl_exp(in[0]);
  crl_no_grad_end();
  crl__record(y, "dropped", no_grad_backward, 1, in);
  return y;
}

/* ---- ordinary composite functions ---------------------------------------- */

static crl_tensor *fn_good(crl_tensor **in, void *ctx) {
  (void)ctx;
  /* tanh(a * b) + exp(a) / (1 + b^2), broadcasting b [3] over a [2, 3] */
  crl_tensor *a = in[0], *b = in[1];
  return crl_add(crl_tanh(crl_mul(a, b)),
                 crl_div(crl_exp(a), crl_add_scalar(crl_square(b), 1)));
}

static crl_tensor *fn_view(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_transpose(in[0], 0, 1); /* a view of the input */
}

static crl_tensor *fn_detached(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_detach(crl_exp(in[0]));
}

static crl_tensor *fn_null(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_add(in[0], crl_ones(CRL_FLOAT64, CRL_SHAPE(7)));
}

static int calls;
static crl_tensor *fn_counting(crl_tensor **in, void *ctx) {
  (void)ctx;
  calls++;
  return crl_sin(in[0]);
}

/* ---- tests
 * -------------------------------------------------------------------- */

static const double xv[6] = {0.3, -1.2, 0.8, 2.0, -0.5, 1.1};

static void test_passes_correct(void **state) {
  (void)state;
  crl_tensor *a = leaf64(CRL_SHAPE(2, 3), xv);
  crl_tensor *b = leaf64(CRL_SHAPE(3), (double[]){0.4, -0.9, 1.3});
  crl_tensor *in[2] = {a, b};
  crl_clear_error();
  CRL_CHECK_OK(crl_gradcheck(fn_good, in, 2, NULL, GC_TOL));
  /* the analytic gradients are left in .grad */
  assert_non_null(a->grad);
  assert_non_null(b->grad);
  /* the custom op with the right factor passes */
  double one = 1;
  crl_tensor *x = leaf64(CRL_SHAPE(2, 3), xv);
  crl_tensor *in1[1] = {x};
  CRL_CHECK_OK(crl_gradcheck(fn_custom, in1, 1, &one, GC_TOL));
  /* inputs are restored exactly after the perturbations */
  assert_tensor_values(x, xv, 6, 0);
  /* a function that returns a view of its input */
  crl_tensor *v = leaf64(CRL_SHAPE(2, 3), xv);
  crl_tensor *inv[1] = {v};
  CRL_CHECK_OK(crl_gradcheck(fn_view, inv, 1, NULL, GC_TOL));
  /* a strided (non-contiguous) input */
  crl_tensor *base = leaf64(CRL_SHAPE(2, 3), xv);
  crl_no_grad_begin();
  crl_tensor *t = crl_transpose(base, 0, 1);
  crl_no_grad_end();
  crl_tensor *tl = crl_detach(t);
  CRL_CHECK_OK(crl_set_requires_grad(tl, true));
  assert_false(crl_tensor_is_contiguous(tl));
  crl_tensor *in2[1] = {tl};
  CRL_CHECK_OK(crl_gradcheck(fn_custom, in2, 1, &one, GC_TOL));
  assert_tensor_values(base, xv, 6, 0);
  /* an input that does not require grad is skipped (not perturbed) */
  crl_tensor *c =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){0.4, -0.9, 1.3});
  crl_tensor *in3[2] = {a, c};
  calls = 0;
  CRL_CHECK_OK(crl_gradcheck(fn_good, in3, 2, NULL, GC_TOL));
  assert_null(c->grad);
  crl_tensor *in4[1] = {a};
  CRL_CHECK_OK(crl_gradcheck(fn_counting, in4, 1, NULL, GC_TOL));
  assert_int_equal(calls, 1 + 2 * 6); /* analytic + two per element */
}

static void test_fails_wrong_factor(void **state) {
  (void)state;
  double factors[] = {2, 0.5, -1, 1.001};
  for (int i = 0; i < 4; i++) {
    crl_tensor *x = leaf64(CRL_SHAPE(2, 3), xv);
    crl_tensor *in[1] = {x};
    crl_clear_error();
    int rc = crl_gradcheck(fn_custom, in, 1, &factors[i], GC_TOL);
    if (rc != CRL_EINVAL)
      fail_msg("factor %g: gradcheck returned %d (%s), expected a failure",
               factors[i], rc, crl_last_error());
    CRL_ASSERT_ERR_HAS("gradcheck");
    CRL_ASSERT_ERR_HAS("input 0");
    CRL_ASSERT_ERR_HAS("[2, 3]");
    CRL_ASSERT_ERR_HAS("element 0");
    CRL_ASSERT_ERR_HAS("analytic");
    CRL_ASSERT_ERR_HAS("numeric");
    /* the reported numbers: analytic = factor * 2 * 1.5 * x0, numeric =
     * 3 * x0 (times the weight w0 of the check) */
    double ana, num;
    const char *p = strstr(crl_last_error(), "analytic");
    assert_int_equal(sscanf(p, "analytic %lf vs numeric %lf", &ana, &num), 2);
    ASSERT_NEAR(ana / num, factors[i], 1e-6);
    assert_tensor_values(x, xv, 6, 0); /* restored after failing */
    assert_true(crl_is_grad_enabled());
  }
  /* a looser tolerance accepts the 0.1% error, a tight one does not */
  double f = 1.001;
  crl_tensor *x = leaf64(CRL_SHAPE(2, 3), xv);
  crl_tensor *in[1] = {x};
  CRL_CHECK_OK(crl_gradcheck(fn_custom, in, 1, &f, 1e-6, 1e-6, 1e-2));
}

static void test_fails_second_input(void **state) {
  (void)state;
  crl_tensor *a = leaf64(CRL_SHAPE(3), (double[]){0.5, 1, -2});
  crl_tensor *b = leaf64(CRL_SHAPE(3), (double[]){1.5, -1, 0.25});
  crl_tensor *in[2] = {a, b};
  assert_int_equal(crl_gradcheck(fn_bad_mul, in, 2, NULL, GC_TOL), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("input 1");
  CRL_ASSERT_ERR_HAS("[3]");
  /* with b constant, only a is checked: it passes */
  crl_tensor *bc =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){1.5, -1, 0.25});
  crl_tensor *in2[2] = {a, bc};
  CRL_CHECK_OK(crl_gradcheck(fn_bad_mul, in2, 2, NULL, GC_TOL));
}

static void test_fails_missing_gradient(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){0.1, 0.2});
  crl_tensor *in[1] = {x};
  assert_int_equal(crl_gradcheck(fn_dropped, in, 1, NULL, GC_TOL), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("analytic 0 ");
}

static void test_errors(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){0.1, 0.2});
  crl_tensor *in[1] = {x};
  /* an output outside the graph cannot be checked */
  assert_int_equal(crl_gradcheck(fn_detached, in, 1, NULL, GC_TOL),
                   CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("gradcheck");
  /* fn failing: its error comes back */
  int rc = crl_gradcheck(fn_null, in, 1, NULL, GC_TOL);
  assert_int_equal(rc, CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[7]");
  assert_true(crl_is_grad_enabled());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_passes_correct),
      CRL_TEST(test_fails_wrong_factor),
      CRL_TEST(test_fails_second_input),
      CRL_TEST(test_fails_missing_gradient),
      CRL_TEST(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
