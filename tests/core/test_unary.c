/* Unary elementwise ops: math, activations, clamp/sign, predicates —
 * values against libm / closed forms on float32 and float64, integer
 * behaviour, NaN handling, strided and large inputs, errors and gradients
 * (crl_gradcheck on float64, inputs away from kinks). */
#include "core/internal.h"
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

typedef crl_tensor *(*ufn)(crl_tensor *);

static crl_tensor *elu1(crl_tensor *a) { return crl_elu(a, 1.3); }
static crl_tensor *leaky(crl_tensor *a) { return crl_leaky_relu(a, 0.1); }
static crl_tensor *softplus_std(crl_tensor *a) {
  return crl_softplus(a, 1, 20);
}
static crl_tensor *softplus_b2(crl_tensor *a) {
  return crl_softplus(a, 2, 1); /* linear above x = 0.5 */
}
static crl_tensor *clamp_pm1(crl_tensor *a) { return crl_clamp(a, -1, 1); }

static double r_neg(double x) { return -x; }
static double r_abs(double x) { return fabs(x); }
static double r_rsqrt(double x) { return 1 / sqrt(x); }
static double r_square(double x) { return x * x; }
static double r_recip(double x) { return 1 / x; }
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_elu1(double x) { return x > 0 ? x : 1.3 * expm1(x); }
static double r_leaky(double x) { return x > 0 ? x : 0.1 * x; }
static double r_softplus_std(double x) { return x > 20 ? x : log1p(exp(x)); }
static double r_softplus_b2(double x) {
  return 2 * x > 1 ? x : log1p(exp(2 * x)) / 2;
}
static double r_silu(double x) { return x / (1 + exp(-x)); }
static double r_clamp(double x) { return x < -1 ? -1 : (x > 1 ? 1 : x); }
static double r_sign(double x) { return (x > 0) - (x < 0); }

typedef struct {
  const char *name;
  ufn fn;
  double (*ref)(double);
  int domain; /* 0: any, 1: positive, 2: > -1, 3: nonzero */
} ucase;

static const ucase cases[] = {
    {"neg", crl_neg, r_neg, 0},
    {"abs", crl_abs, r_abs, 0},
    {"exp", crl_exp, exp, 0},
    {"log", crl_log, log, 1},
    {"log1p", crl_log1p, log1p, 2},
    {"expm1", crl_expm1, expm1, 0},
    {"sqrt", crl_sqrt, sqrt, 1},
    {"rsqrt", crl_rsqrt, r_rsqrt, 1},
    {"square", crl_square, r_square, 0},
    {"reciprocal", crl_reciprocal, r_recip, 3},
    {"tanh", crl_tanh, tanh, 0},
    {"sigmoid", crl_sigmoid, r_sigmoid, 0},
    {"relu", crl_relu, r_relu, 3},
    {"elu", elu1, r_elu1, 3},
    {"leaky_relu", leaky, r_leaky, 3},
    {"softplus", softplus_std, r_softplus_std, 0},
    {"softplus", softplus_b2, r_softplus_b2, 0},
    {"silu", crl_silu, r_silu, 0},
    {"sin", crl_sin, sin, 0},
    {"cos", crl_cos, cos, 0},
    {"clamp", clamp_pm1, r_clamp, 0},
    {"sign", crl_sign, r_sign, 0},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* inputs in the op's domain, away from kinks (0, +-1, softplus threshold
 * 0.5) by much more than gradcheck's step */
static const double any_v[8] = {-2.3, -1.4, -0.7, -0.2, 0.3, 0.8, 1.6, 2.4};
static const double pos_v[8] = {0.2, 0.45, 0.7, 1.1, 1.6, 2.4, 3.3, 5.0};
static const double gtm1_v[8] = {-0.8, -0.5, -0.2, 0.1, 0.6, 1.2, 2.5, 4.0};

static const double *domain_vals(int d) {
  return d == 1 ? pos_v : (d == 2 ? gtm1_v : any_v);
}

static void test_values(void **state) {
  (void)state;
  for (int c = 0; c < NCASES; c++) {
    const double *v = domain_vals(cases[c].domain);
    float fv[8];
    for (int i = 0; i < 8; i++)
      fv[i] = (float)v[i];
    crl_tensor *x64 = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 4), v);
    crl_tensor *x32 = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 4), fv);
    crl_tensor *y64 = cases[c].fn(x64), *y32 = cases[c].fn(x32);
    if (!y64 || !y32) fail_msg("%s: %s", cases[c].name, crl_last_error());
    assert_int_equal(y64->dtype, CRL_FLOAT64);
    assert_int_equal(y32->dtype, CRL_FLOAT32);
    assert_shape(y64, CRL_SHAPE(2, 4));
    for (int i = 0; i < 8; i++) {
      double want = cases[c].ref(v[i]);
      double w32 = cases[c].ref(fv[i]);
      double g64 = crl_tensor_get_flat(y64, i),
             g32 = crl_tensor_get_flat(y32, i);
      if (!(fabs(g64 - want) <= 1e-14 * (1 + fabs(want))))
        fail_msg("%s(%g) float64 = %.17g, expected %.17g", cases[c].name, v[i],
                 g64, want);
      if (!(fabs(g32 - w32) <= 2e-6 * (1 + fabs(w32))))
        fail_msg("%s(%g) float32 = %.9g, expected %.9g", cases[c].name, fv[i],
                 g32, w32);
    }
    /* the input is untouched */
    assert_tensor_values(x64, v, 8, 0);
  }
}

static void test_special_values(void **state) {
  (void)state;
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(4),
                                 (float[]){NAN, -INFINITY, INFINITY, 0});
  /* relu and clamp propagate NaN */
  crl_tensor *r = crl_relu(x);
  assert_true(isnan(crl_tensor_get_flat(r, 0)));
  assert_tensor_values(r, (double[]){NAN, 0, INFINITY, 0}, 4, 0);
  crl_tensor *c = crl_clamp(x, -1, 1);
  assert_true(isnan(crl_tensor_get_flat(c, 0)));
  assert_tensor_values(c, (double[]){NAN, -1, 1, 0}, 4, 0);
  /* one-sided clamps */
  assert_tensor_values(crl_clamp(x, 0, INFINITY),
                       (double[]){NAN, 0, INFINITY, 0}, 4, 0);
  assert_tensor_values(crl_clamp(x, -INFINITY, -2),
                       (double[]){NAN, -INFINITY, -2, -2}, 4, 0);
  assert_tensor_values(crl_exp(x), (double[]){NAN, 0, INFINITY, 1}, 4, 0);
  assert_tensor_values(crl_tanh(x), (double[]){NAN, -1, 1, 0}, 4, 0);
  assert_tensor_values(crl_sigmoid(x), (double[]){NAN, 0, 1, 0.5}, 4, 0);
  assert_tensor_values(crl_abs(x), (double[]){NAN, INFINITY, INFINITY, 0}, 4,
                       0);
  /* log of 0 / negative */
  crl_tensor *l =
      crl_log(crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){0, -1}));
  assert_true(isinf(crl_tensor_get_flat(l, 0)) &&
              crl_tensor_get_flat(l, 0) < 0);
  assert_true(isnan(crl_tensor_get_flat(l, 1)));
  /* softplus is linear far above its threshold, no overflow */
  crl_tensor *sp = crl_softplus(crl_scalar(CRL_FLOAT32, 1000), 1, 20);
  ASSERT_NEAR(crl_item(sp), 1000, 0);
  sp = crl_softplus(crl_scalar(CRL_FLOAT64, -1000), 1, 20);
  ASSERT_NEAR(crl_item(sp), 0, 1e-300);
  /* 0-dim */
  crl_tensor *s = crl_sqrt(crl_scalar(CRL_FLOAT64, 16));
  assert_int_equal(s->ndim, 0);
  ASSERT_NEAR(crl_item(s), 4, 0);
  /* empty */
  crl_tensor *e = crl_exp(crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 2)));
  CRL_CHECK_PTR(e);
  assert_shape(e, CRL_SHAPE(0, 2));
}

static void test_integer_inputs(void **state) {
  (void)state;
  crl_tensor *i =
      crl_from_array(CRL_INT32, CRL_SHAPE(5), (int32_t[]){-7, -1, 0, 3, 12});
  crl_tensor *r = crl_abs(i);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){7, 1, 0, 3, 12}, 5, 0);
  r = crl_neg(i);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){7, 1, 0, -3, -12}, 5, 0);
  r = crl_square(i);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){49, 1, 0, 9, 144}, 5, 0);
  r = crl_relu(i);
  assert_tensor_values(r, (double[]){0, 0, 0, 3, 12}, 5, 0);
  r = crl_sign(i);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-1, -1, 0, 1, 1}, 5, 0);
  r = crl_clamp(i, -2, 5);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-2, -1, 0, 3, 5}, 5, 0);
  /* fractional bounds round inward; infinite bounds are one-sided */
  r = crl_clamp(i, -1.5, 4.7);
  assert_tensor_values(r, (double[]){-1, -1, 0, 3, 4}, 5, 0);
  r = crl_clamp(i, 0, INFINITY);
  assert_tensor_values(r, (double[]){0, 0, 0, 3, 12}, 5, 0);
  r = crl_clamp(i, -INFINITY, 2);
  assert_tensor_values(r, (double[]){-7, -1, 0, 2, 2}, 5, 0);
  /* int64 beyond float precision is kept exactly */
  int64_t big = (1LL << 60) + 1;
  crl_tensor *b =
      crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){-big, big});
  r = crl_abs(b);
  assert_int_equal(r->dtype, CRL_INT64);
  assert_int_equal(((int64_t *)r->data)[0], big);
  r = crl_neg(b);
  assert_int_equal(((int64_t *)r->data)[1], -big);
  r = crl_clamp(b, -INFINITY, INFINITY);
  assert_int_equal(((int64_t *)r->data)[0], -big);
  assert_int_equal(((int64_t *)r->data)[1], big);
  /* uint8 */
  crl_tensor *u =
      crl_from_array(CRL_UINT8, CRL_SHAPE(3), (uint8_t[]){0, 100, 255});
  assert_tensor_values(crl_abs(u), (double[]){0, 100, 255}, 3, 0);
  assert_tensor_values(crl_clamp(u, 10, 200), (double[]){10, 100, 200}, 3, 0);
  assert_tensor_values(crl_sign(u), (double[]){0, 1, 1}, 3, 0);
  /* float-only math on integers computes in float32 */
  r = crl_exp(i);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_tensor_get_flat(r, 3), expf(3), 1e-4);
  r = crl_sqrt(crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){4, 9}));
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){2, 3}, 2, 0);
  r = crl_sigmoid(u);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), 0.5, 0);
}

static void test_predicates(void **state) {
  (void)state;
  crl_tensor *x = crl_from_array(CRL_FLOAT64, CRL_SHAPE(5),
                                 (double[]){1, NAN, INFINITY, -INFINITY, 0});
  crl_tensor *r = crl_isnan(x);
  assert_int_equal(r->dtype, CRL_BOOL);
  assert_tensor_values(r, (double[]){0, 1, 0, 0, 0}, 5, 0);
  assert_tensor_values(crl_isfinite(x), (double[]){1, 0, 0, 0, 1}, 5, 0);
  assert_tensor_values(crl_logical_not(x), (double[]){0, 0, 0, 0, 1}, 5, 0);
  crl_tensor *f =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){NAN, -0.0f, 2});
  assert_tensor_values(crl_isnan(f), (double[]){1, 0, 0}, 3, 0);
  assert_tensor_values(crl_isfinite(f), (double[]){0, 1, 1}, 3, 0);
  assert_tensor_values(crl_logical_not(f), (double[]){0, 1, 0}, 3, 0);
  /* integers: never NaN, always finite; logical_not on any bytes */
  crl_tensor *i =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){0, 256, -1});
  assert_tensor_values(crl_isnan(i), (double[]){0, 0, 0}, 3, 0);
  assert_tensor_values(crl_isfinite(i), (double[]){1, 1, 1}, 3, 0);
  assert_tensor_values(crl_logical_not(i), (double[]){1, 0, 0}, 3, 0);
  crl_tensor *b = crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0});
  r = crl_logical_not(b);
  assert_int_equal(r->dtype, CRL_BOOL);
  assert_tensor_values(r, (double[]){0, 1}, 2, 0);
  /* strided input */
  crl_tensor *m =
      crl_transpose(crl_reshape(crl_from_array(CRL_FLOAT32, CRL_SHAPE(6),
                                               (float[]){NAN, 1, 2, NAN, 4, 5}),
                                CRL_SHAPE(2, 3)),
                    0, 1);
  assert_tensor_values(crl_isnan(m), (double[]){1, 1, 0, 0, 0, 0}, 6, 0);
  /* no graph */
  crl_tensor *l = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  assert_null(crl_isnan(l)->grad_fn);
  assert_null(crl_isnan(NULL));
  CRL_ASSERT_ERR_HAS("isnan");
}

static void test_strided_and_large(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  /* [300, 400]^T: 120000 strided elements (the pooled iterator path) */
  crl_tensor *a = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(300, 400));
  crl_tensor *at = crl_transpose(a, 0, 1);
  crl_tensor *a64 = crl_cast(a, CRL_FLOAT64);
  crl_tensor *at64 = crl_transpose(a64, 0, 1);
  for (int c = 0; c < NCASES; c++) {
    if (cases[c].domain) continue; /* randn inputs: unrestricted ops only */
    crl_tensor *y = cases[c].fn(at), *y64 = cases[c].fn(at64);
    CRL_CHECK_PTR(y);
    CRL_CHECK_PTR(y64);
    assert_shape(y, CRL_SHAPE(400, 300));
    assert_true(crl_tensor_is_contiguous(y));
    for (int64_t i = 0; i < 400; i += 13)
      for (int64_t j = 0; j < 300; j += 11) {
        double x = crl_tensor_get(a, (int64_t[]){j, i});
        double want = cases[c].ref(x);
        ASSERT_NEAR(crl_tensor_get(y64, (int64_t[]){i, j}), want,
                    1e-14 * (1 + fabs(want)));
        ASSERT_NEAR(crl_tensor_get(y, (int64_t[]){i, j}), want,
                    3e-6 * (1 + fabs(want)));
      }
  }
  /* a large contiguous input gives the same as its small pieces */
  crl_tensor *big = crl_exp(a);
  crl_tensor *piece = crl_exp(crl_narrow(a, 0, 100, 1));
  for (int64_t j = 0; j < 400; j++)
    ASSERT_NEAR(crl_tensor_get(big, (int64_t[]){100, j}),
                crl_tensor_get_flat(piece, j), 0);
}

static void test_errors(void **state) {
  (void)state;
  crl_tensor *b = crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0});
  for (int c = 0; c < NCASES; c++) {
    crl_clear_error();
    assert_null(cases[c].fn(b));
    assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
    CRL_ASSERT_ERR_HAS(cases[c].name);
    CRL_ASSERT_ERR_HAS("bool");
    assert_null(cases[c].fn(NULL));
    assert_int_equal(crl_last_error_code(), CRL_EINVAL);
    CRL_ASSERT_ERR_HAS(cases[c].name);
  }
  assert_tensor_values(b, (double[]){1, 0}, 2, 0);
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  assert_null(crl_softplus(x, 0, 20));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("softplus");
  assert_null(crl_softplus(x, NAN, 20));
  assert_null(crl_clamp(x, 2, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("clamp");
  assert_null(crl_clamp(x, NAN, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_tensor_values(x, (double[]){1, 1}, 2, 0);
}

/* ---- gradients
 * ---------------------------------------------------------------- */

static crl_tensor *gfn(crl_tensor **in, void *ctx) {
  return ((const ucase *)ctx)->fn(in[0]);
}

static void test_gradcheck_unary(void **state) {
  (void)state;
  for (int c = 0; c < NCASES; c++) {
    const double *v = domain_vals(cases[c].domain);
    crl_tensor *x = leaf64(CRL_SHAPE(2, 4), v);
    crl_tensor *in[1] = {x};
    crl_clear_error();
    if (crl_gradcheck(gfn, in, 1, (void *)&cases[c], GC_TOL))
      fail_msg("%s: %s", cases[c].name, crl_last_error());
    /* a 0-dim input */
    crl_tensor *s = leaf64(CRL_SCALAR, &v[5]);
    crl_tensor *in3[1] = {s};
    if (crl_gradcheck(gfn, in3, 1, (void *)&cases[c], GC_TOL))
      fail_msg("%s (0-dim): %s", cases[c].name, crl_last_error());
  }
}

static crl_tensor *on_transposed(crl_tensor **in, void *ctx) {
  return ((const ucase *)ctx)->fn(crl_transpose(in[0], 0, 1));
}

static void test_grad_values(void **state) {
  (void)state;
  /* gradient through a strided view lands in the right places */
  for (int c = 0; c < NCASES; c++) {
    const double *v = domain_vals(cases[c].domain);
    crl_tensor *x = leaf64(CRL_SHAPE(4, 2), v);
    crl_tensor *in[1] = {x};
    if (crl_gradcheck(on_transposed, in, 1, (void *)&cases[c], GC_TOL))
      fail_msg("%s (transposed): %s", cases[c].name, crl_last_error());
  }
  /* relu / abs / clamp / leaky_relu at the kinks: torch's conventions */
  crl_tensor *x = leaf64(CRL_SHAPE(5), (double[]){-1, 0, 1, 2, -3});
  CRL_CHECK_OK(crl_backward(crl_sum(crl_relu(x), 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){0, 0, 1, 1, 0}, 5, 0);
  crl_zero_grad(x);
  CRL_CHECK_OK(crl_backward(crl_sum(crl_abs(x), 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){-1, 0, 1, 1, -1}, 5, 0);
  crl_zero_grad(x);
  /* clamp: 1 inside the closed interval, 0 outside */
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_clamp(x, -1, 1), 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){1, 1, 1, 0, 0}, 5, 0);
  crl_zero_grad(x);
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_leaky_relu(x, 0.2), 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){0.2, 0.2, 1, 1, 0.2}, 5, 1e-15);
  crl_zero_grad(x);
  /* sign has a zero gradient */
  CRL_CHECK_OK(crl_backward(crl_sum(crl_sign(x), 0, NULL, false), NULL));
  if (x->grad) assert_tensor_values(x->grad, (double[]){0, 0, 0, 0, 0}, 5, 0);
  crl_zero_grad(x);
  /* float32 leaf: float32 gradient with the right values */
  crl_tensor *f =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){0.5f, -1});
  CRL_CHECK_OK(crl_set_requires_grad(f, true));
  CRL_CHECK_OK(crl_backward(crl_sum(crl_tanh(f), 0, NULL, false), NULL));
  assert_int_equal(f->grad->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_tensor_get_flat(f->grad, 0), 1 - pow(tanh(0.5), 2), 1e-6);
  ASSERT_NEAR(crl_tensor_get_flat(f->grad, 1), 1 - pow(tanh(-1), 2), 1e-6);
  /* ops on integer tensors never record */
  crl_tensor *i = crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){1, 2});
  assert_null(crl_neg(i)->grad_fn);
  assert_null(crl_exp(i)->grad_fn);
  /* neg alone (it saves nothing for its backward) */
  crl_tensor *n = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_tensor *nn = crl_neg(n);
  assert_string_equal(nn->grad_fn->name, "neg");
  CRL_CHECK_OK(crl_backward(nn, crl_full(CRL_FLOAT64, CRL_SHAPE(2), 3)));
  assert_tensor_values(n->grad, (double[]){-3, -3}, 2, 0);
}

/* The libm-free float32 kernels (crl__expf, crl__tanhf) against libm over
 * a dense grid, tiny values and the extremes. */
static void test_fast_float_math(void **state) {
  (void)state;
  double max_rel_tanh = 0, max_rel_exp = 0;
  for (int i = -400000; i <= 400000; i++) {
    float x = (float)i * 5e-5f;
    double rt = tanh((double)x), re = exp((double)x);
    double et = fabs(crl__tanhf(x) - rt) / (fabs(rt) + 1e-30);
    double ee = fabs(crl__expf(x) - re) / re;
    if (x != 0 && et > max_rel_tanh) max_rel_tanh = et;
    if (ee > max_rel_exp) max_rel_exp = ee;
  }
  for (float x = 1e-30f; x < 1.0f; x *= 1.07f) {
    double et = fabs(crl__tanhf(x) - tanh((double)x)) / tanh((double)x);
    if (et > max_rel_tanh) max_rel_tanh = et;
    assert_true(crl__tanhf(-x) == -crl__tanhf(x));
  }
  if (max_rel_tanh > 3e-7) fail_msg("tanhf rel error %g", max_rel_tanh);
  if (max_rel_exp > 3e-7) fail_msg("expf rel error %g", max_rel_exp);
  assert_true(crl__tanhf(INFINITY) == 1.0f);
  assert_true(crl__tanhf(-50.0f) == -1.0f);
  assert_true(isnan(crl__tanhf(NAN)));
  assert_true(crl__expf(-100.0f) == 0.0f);
  /* log / log1p: within ~1.5 ulp of libm over the whole float range */
  double max_log = 0, max_log1p = 0;
  for (float x = 1e-38f; x < 3e38f; x *= 1.0013f) {
    double r = log((double)x), ae = fabs(crl__logf(x) - r);
    double e = fabs(r) < 1 ? ae : ae / fabs(r);
    if (e > max_log) max_log = e;
  }
  for (float x = 1e-30f; x < 1e6f; x *= 1.0013f) {
    double r = log1p((double)x);
    double e = fabs(crl__log1pf(x) - r) / r;
    float xn = -x * 0.999f; /* in (-1, 0): the reference from this float */
    double r2 = log1p((double)xn);
    double e2 = x < 1 ? fabs(crl__log1pf(xn) - r2) / fabs(r2) : 0;
    if (e > max_log1p) max_log1p = e;
    if (e2 > max_log1p) max_log1p = e2;
  }
  if (max_log > 2e-7) fail_msg("logf error %g", max_log);
  if (max_log1p > 3e-7) fail_msg("log1pf rel error %g", max_log1p);
  assert_true(isinf(crl__logf(0.0f)) && crl__logf(0.0f) < 0);
  assert_true(isnan(crl__logf(-1.0f)) && isnan(crl__logf(NAN)));
  assert_true(crl__logf(INFINITY) == INFINITY);
  ASSERT_NEAR(crl__logf(1e-45f), log((double)1e-45f), 1e-5); /* denormal */
  assert_true(isinf(crl__expf(100.0f)));
  /* the tensor ops use them: values agree with libm to float precision */
  crl_tensor *x = crl_linspace(CRL_FLOAT32, -10, 10, 1001);
  crl_tensor *t = crl_tanh(x), *s = crl_sigmoid(x), *e = crl_exp(x);
  CRL_CHECK_PTR(t);
  for (int64_t i = 0; i < 1001; i++) {
    double v = crl_tensor_get_flat(x, i);
    ASSERT_NEAR(crl_tensor_get_flat(t, i), tanh(v), 2e-7);
    ASSERT_NEAR(crl_tensor_get_flat(s, i), 1 / (1 + exp(-v)), 2e-7);
    ASSERT_NEAR(crl_tensor_get_flat(e, i) / exp(v), 1.0, 3e-7);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_values),
      CRL_TEST(test_special_values),
      CRL_TEST(test_integer_inputs),
      CRL_TEST(test_predicates),
      CRL_TEST(test_strided_and_large),
      CRL_TEST(test_errors),
      CRL_TEST(test_gradcheck_unary),
      CRL_TEST(test_grad_values),
      CRL_TEST(test_fast_float_math),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
