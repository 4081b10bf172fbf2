/* Binary elementwise ops: values, broadcasting, dtype promotion, scalar
 * forms, comparisons, logic, where, clamp_tensor, NaN handling, strided and
 * large inputs, errors (naming op, shapes, dtype; inputs unchanged) and
 * gradients (crl_gradcheck on float64). */
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

static crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  return crl_from_array(CRL_FLOAT32, ndim, shape, v);
}
static crl_tensor *f64(int ndim, const int64_t *shape, const double *v) {
  return crl_from_array(CRL_FLOAT64, ndim, shape, v);
}

/* ---- arithmetic values --------------------------------------------------- */

static void test_arith_values(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(4), (float[]){1, -2, 3.5f, 0});
  crl_tensor *b = f32(CRL_SHAPE(4), (float[]){2, 4, -0.5f, 3});
  assert_tensor_values(crl_add(a, b), (double[]){3, 2, 3, 3}, 4, 0);
  assert_tensor_values(crl_sub(a, b), (double[]){-1, -6, 4, -3}, 4, 0);
  assert_tensor_values(crl_mul(a, b), (double[]){2, -8, -1.75, 0}, 4, 0);
  assert_tensor_values(crl_div(a, b), (double[]){0.5, -0.5, -7, 0}, 4, 0);
  assert_tensor_values(crl_add_scaled(a, b, -2), (double[]){-3, -10, 4.5, -6},
                       4, 0);
  crl_tensor *p = crl_pow(f32(CRL_SHAPE(3), (float[]){2, 9, 4}),
                          f32(CRL_SHAPE(3), (float[]){3, 0.5f, -1}));
  assert_tensor_values(p, (double[]){8, 3, 0.25}, 3, 1e-6);
  assert_tensor_values(crl_minimum(a, b), (double[]){1, -2, -0.5, 0}, 4, 0);
  assert_tensor_values(crl_maximum(a, b), (double[]){2, 4, 3.5, 3}, 4, 0);
  crl_tensor *r = crl_add(a, b);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_false(r->requires_grad);
  assert_null(r->grad_fn);
  /* float64 keeps full precision */
  crl_tensor *x = f64(CRL_SHAPE(2), (double[]){1e-17, 1});
  crl_tensor *y = f64(CRL_SHAPE(2), (double[]){1, 3});
  crl_tensor *s = crl_add(x, y);
  assert_int_equal(s->dtype, CRL_FLOAT64);
  ASSERT_NEAR(crl_tensor_get_flat(s, 0) - 1, 0, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_div(x, y), 1), 1.0 / 3.0, 0);
  /* 0-dim with 0-dim */
  crl_tensor *z =
      crl_mul(crl_scalar(CRL_FLOAT32, 3), crl_scalar(CRL_FLOAT32, 4));
  assert_int_equal(z->ndim, 0);
  ASSERT_NEAR(crl_item(z), 12, 0);
  /* division by zero follows IEEE */
  crl_tensor *dz = crl_div(f32(CRL_SHAPE(3), (float[]){1, -1, 0}),
                           crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)));
  assert_true(isinf(crl_tensor_get_flat(dz, 0)) &&
              crl_tensor_get_flat(dz, 0) > 0);
  assert_true(isinf(crl_tensor_get_flat(dz, 1)) &&
              crl_tensor_get_flat(dz, 1) < 0);
  assert_true(isnan(crl_tensor_get_flat(dz, 2)));
  /* empty tensors */
  crl_tensor *e = crl_add(crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 3)),
                          crl_ones(CRL_FLOAT32, CRL_SHAPE(3)));
  CRL_CHECK_PTR(e);
  assert_shape(e, CRL_SHAPE(0, 3));
}

static void test_broadcasting(void **state) {
  (void)state;
  /* [3, 1] + [4] -> [3, 4] */
  crl_tensor *a = f32(CRL_SHAPE(3, 1), (float[]){0, 10, 20});
  crl_tensor *b = f32(CRL_SHAPE(4), (float[]){1, 2, 3, 4});
  crl_tensor *c = crl_add(a, b);
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(3, 4));
  assert_tensor_values(
      c, (double[]){1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24}, 12, 0);
  /* the other way round, and sub is not symmetric */
  crl_tensor *d = crl_sub(b, a);
  assert_shape(d, CRL_SHAPE(3, 4));
  assert_tensor_values(
      d, (double[]){1, 2, 3, 4, -9, -8, -7, -6, -19, -18, -17, -16}, 12, 0);
  /* [2, 1, 3] * [4, 1] -> [2, 4, 3] */
  crl_tensor *x =
      crl_reshape(crl_arange(CRL_FLOAT64, 0, 6, 1), CRL_SHAPE(2, 1, 3));
  crl_tensor *y = f64(CRL_SHAPE(4, 1), (double[]){1, 2, 3, 4});
  crl_tensor *m = crl_mul(x, y);
  assert_shape(m, CRL_SHAPE(2, 4, 3));
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++)
        ASSERT_NEAR(crl_tensor_get(m, (int64_t[]){i, j, k}),
                    (3 * i + k) * (j + 1), 0);
  /* 0-dim broadcasts against anything */
  crl_tensor *s = crl_add(crl_scalar(CRL_FLOAT32, 100), a);
  assert_shape(s, CRL_SHAPE(3, 1));
  assert_tensor_values(s, (double[]){100, 110, 120}, 3, 0);
  /* [1] with [0] -> [0] */
  crl_tensor *e = crl_add(crl_ones(CRL_FLOAT32, CRL_SHAPE(1)),
                          crl_ones(CRL_FLOAT32, CRL_SHAPE(0)));
  assert_shape(e, CRL_SHAPE(0));
}

static void test_promotion(void **state) {
  (void)state;
  crl_tensor *i32 =
      crl_from_array(CRL_INT32, CRL_SHAPE(3), (int32_t[]){1, -2, 7});
  crl_tensor *i64 =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){2, 2, 2});
  crl_tensor *u8 =
      crl_from_array(CRL_UINT8, CRL_SHAPE(3), (uint8_t[]){200, 1, 3});
  crl_tensor *fl = f32(CRL_SHAPE(3), (float[]){0.5f, 0.25f, 0.125f});
  crl_tensor *db = f64(CRL_SHAPE(3), (double[]){0.1, 0.2, 0.3});
  crl_tensor *bl = crl_from_array(CRL_BOOL, CRL_SHAPE(3), (uint8_t[]){1, 0, 1});

  crl_tensor *r = crl_add(i32, fl); /* int32 + float32 -> float32 */
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){1.5, -1.75, 7.125}, 3, 0);
  r = crl_mul(fl, db); /* float32 * float64 -> float64 */
  assert_int_equal(r->dtype, CRL_FLOAT64);
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), 0.05, 1e-15);
  r = crl_add(i32, i64); /* int32 + int64 -> int64 */
  assert_int_equal(r->dtype, CRL_INT64);
  assert_tensor_values(r, (double[]){3, 0, 9}, 3, 0);
  r = crl_sub(u8, i32); /* uint8 - int32 -> int32 */
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){199, 3, -4}, 3, 0);
  r = crl_add(bl, i32); /* bool + int32 -> int32 */
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){2, -2, 8}, 3, 0);
  r = crl_mul(i64, i64);
  assert_int_equal(r->dtype, CRL_INT64);
  assert_tensor_values(r, (double[]){4, 4, 4}, 3, 0);
  r = crl_add(u8, u8); /* uint8 wraps like torch */
  assert_int_equal(r->dtype, CRL_UINT8);
  assert_tensor_values(r, (double[]){144, 2, 6}, 3, 0);
  /* true division of integers is float32 */
  crl_tensor *n =
      crl_from_array(CRL_INT64, CRL_SHAPE(4), (int64_t[]){7, -7, 1, 0});
  crl_tensor *dd =
      crl_from_array(CRL_INT64, CRL_SHAPE(4), (int64_t[]){2, 2, 3, 5});
  r = crl_div(n, dd);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){3.5, -3.5, 1.0f / 3.0f, 0}, 4, 1e-7);
  r = crl_div(i32, i32);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){1, 1, 1}, 3, 0);
  r = crl_div(i32, db); /* int / float64 -> float64 */
  assert_int_equal(r->dtype, CRL_FLOAT64);
  /* integer pow and min/max keep the dtype */
  crl_tensor *base =
      crl_from_array(CRL_INT64, CRL_SHAPE(4), (int64_t[]){2, 3, -2, 10});
  crl_tensor *ex =
      crl_from_array(CRL_INT64, CRL_SHAPE(4), (int64_t[]){32, 4, 3, 0});
  r = crl_pow(base, ex);
  assert_int_equal(r->dtype, CRL_INT64);
  assert_tensor_values(r, (double[]){4294967296.0, 81, -8, 1}, 4, 0);
  r = crl_pow(crl_full(CRL_INT64, CRL_SHAPE(1), 3),
              crl_full(CRL_INT64, CRL_SHAPE(1), 39));
  ASSERT_NEAR(crl_item(r), 4052555153018976267.0, 0);
  r = crl_minimum(i32, crl_full(CRL_INT32, CRL_SHAPE(1), 0));
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){0, -2, 0}, 3, 0);
  r = crl_maximum(u8, crl_full(CRL_UINT8, CRL_SHAPE(1), 2));
  assert_tensor_values(r, (double[]){200, 2, 3}, 3, 0);
}

static void test_nan_min_max(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(4), (float[]){NAN, 1, NAN, -INFINITY});
  crl_tensor *b = f32(CRL_SHAPE(4), (float[]){1, NAN, NAN, 5});
  crl_tensor *mn = crl_minimum(a, b), *mx = crl_maximum(a, b);
  assert_tensor_values(mn, (double[]){NAN, NAN, NAN, -INFINITY}, 4, 0);
  assert_tensor_values(mx, (double[]){NAN, NAN, NAN, 5}, 4, 0);
  for (int i = 0; i < 3; i++) {
    assert_true(isnan(crl_tensor_get_flat(mn, i)));
    assert_true(isnan(crl_tensor_get_flat(mx, i)));
  }
  /* float64 and broadcast: NaN in a scalar spreads */
  crl_tensor *c = f64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *n = crl_scalar(CRL_FLOAT64, NAN);
  crl_tensor *m2 = crl_maximum(c, n);
  for (int i = 0; i < 3; i++)
    assert_true(isnan(crl_tensor_get_flat(m2, i)));
  m2 = crl_minimum(n, c);
  for (int i = 0; i < 3; i++)
    assert_true(isnan(crl_tensor_get_flat(m2, i)));
  /* arithmetic propagates NaN */
  crl_tensor *s = crl_add(a, crl_ones(CRL_FLOAT32, CRL_SHAPE(4)));
  assert_true(isnan(crl_tensor_get_flat(s, 0)));
}

/* ---- comparisons and logic
 * ---------------------------------------------------- */

static void test_comparisons(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(4), (float[]){1, 2, 3, NAN});
  crl_tensor *b = f32(CRL_SHAPE(4), (float[]){2, 2, 2, NAN});
  struct {
    crl_tensor *(*fn)(crl_tensor *, crl_tensor *);
    double expect[4];
  } cases[] = {
      {crl_eq, {0, 1, 0, 0}}, {crl_ne, {1, 0, 1, 1}}, {crl_lt, {1, 0, 0, 0}},
      {crl_le, {1, 1, 0, 0}}, {crl_gt, {0, 0, 1, 0}}, {crl_ge, {0, 1, 1, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    crl_tensor *r = cases[i].fn(a, b);
    CRL_CHECK_PTR(r);
    assert_int_equal(r->dtype, CRL_BOOL);
    assert_tensor_values(r, cases[i].expect, 4, 0);
  }
  /* mixed dtypes compare values: int 2 vs float 2.5 */
  crl_tensor *i =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){2, 3, -1});
  crl_tensor *f = f32(CRL_SHAPE(3), (float[]){2.5f, 3, -1.5f});
  assert_tensor_values(crl_lt(i, f), (double[]){1, 0, 0}, 3, 0);
  assert_tensor_values(crl_eq(i, f), (double[]){0, 1, 0}, 3, 0);
  /* broadcasting [3, 1] vs [2] */
  crl_tensor *c = f32(CRL_SHAPE(3, 1), (float[]){0, 1, 2});
  crl_tensor *d = f32(CRL_SHAPE(2), (float[]){1, 2});
  crl_tensor *g = crl_ge(c, d);
  assert_shape(g, CRL_SHAPE(3, 2));
  assert_tensor_values(g, (double[]){0, 0, 1, 0, 1, 1}, 6, 0);
  /* bool vs bool */
  crl_tensor *t = crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0});
  assert_tensor_values(crl_eq(t, t), (double[]){1, 1}, 2, 0);
  assert_tensor_values(crl_gt(t, crl_logical_not(t)), (double[]){1, 0}, 2, 0);
  /* scalar forms */
  assert_tensor_values(crl_eq_scalar(a, 2), (double[]){0, 1, 0, 0}, 4, 0);
  assert_tensor_values(crl_lt_scalar(a, 2.5), (double[]){1, 1, 0, 0}, 4, 0);
  assert_tensor_values(crl_gt_scalar(a, 1), (double[]){0, 1, 1, 0}, 4, 0);
  assert_int_equal(crl_gt_scalar(a, 1)->dtype, CRL_BOOL);
  /* integer tensor with a fractional scalar compares exactly */
  assert_tensor_values(crl_lt_scalar(i, 2.5), (double[]){1, 0, 1}, 3, 0);
  assert_tensor_values(crl_gt_scalar(i, -0.5), (double[]){1, 1, 0}, 3, 0);
  assert_tensor_values(crl_eq_scalar(i, 3), (double[]){0, 1, 0}, 3, 0);
  /* out-of-range scalars for small integer dtypes */
  crl_tensor *u =
      crl_from_array(CRL_UINT8, CRL_SHAPE(3), (uint8_t[]){0, 5, 255});
  assert_tensor_values(crl_lt_scalar(u, -1), (double[]){0, 0, 0}, 3, 0);
  assert_tensor_values(crl_gt_scalar(u, 300), (double[]){0, 0, 0}, 3, 0);
  assert_tensor_values(crl_eq_scalar(u, 256), (double[]){0, 0, 0}, 3, 0);
  assert_tensor_values(crl_gt_scalar(u, -3), (double[]){1, 1, 1}, 3, 0);
  crl_tensor *i3 =
      crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){-5, 2147483647});
  assert_tensor_values(crl_lt_scalar(i3, 1e10), (double[]){1, 1}, 2, 0);
  /* comparisons record no graph */
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_tensor *cmp = crl_lt(x, x);
  assert_false(cmp->requires_grad);
  assert_null(cmp->grad_fn);
}

static void test_logic(void **state) {
  (void)state;
  crl_tensor *a =
      crl_from_array(CRL_BOOL, CRL_SHAPE(4), (uint8_t[]){0, 0, 1, 1});
  crl_tensor *b =
      crl_from_array(CRL_BOOL, CRL_SHAPE(4), (uint8_t[]){0, 1, 0, 1});
  crl_tensor *r = crl_logical_and(a, b);
  assert_int_equal(r->dtype, CRL_BOOL);
  assert_tensor_values(r, (double[]){0, 0, 0, 1}, 4, 0);
  assert_tensor_values(crl_logical_or(a, b), (double[]){0, 1, 1, 1}, 4, 0);
  /* non-bool inputs: non-zero is true */
  crl_tensor *f = f32(CRL_SHAPE(4), (float[]){0, 2, -0.5f, 0});
  crl_tensor *i =
      crl_from_array(CRL_INT64, CRL_SHAPE(4), (int64_t[]){3, 0, 256, 0});
  assert_tensor_values(crl_logical_and(f, i), (double[]){0, 0, 1, 0}, 4, 0);
  assert_tensor_values(crl_logical_or(f, i), (double[]){1, 1, 1, 0}, 4, 0);
  assert_int_equal(crl_logical_or(f, i)->dtype, CRL_BOOL);
  /* broadcast */
  crl_tensor *one = crl_from_array(CRL_BOOL, CRL_SHAPE(1), (uint8_t[]){1});
  assert_tensor_values(crl_logical_and(a, one), (double[]){0, 0, 1, 1}, 4, 0);
}

/* ---- scalar forms
 * ------------------------------------------------------------- */

static void test_scalar_forms(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(3), (float[]){1, 2, 4});
  assert_tensor_values(crl_add_scalar(a, 1.5), (double[]){2.5, 3.5, 5.5}, 3, 0);
  assert_tensor_values(crl_sub_scalar(a, 1), (double[]){0, 1, 3}, 3, 0);
  assert_tensor_values(crl_mul_scalar(a, -2), (double[]){-2, -4, -8}, 3, 0);
  assert_tensor_values(crl_div_scalar(a, 4), (double[]){0.25, 0.5, 1}, 3, 0);
  assert_tensor_values(crl_pow_scalar(a, 2), (double[]){1, 4, 16}, 3, 0);
  assert_tensor_values(crl_pow_scalar(a, 0.5), (double[]){1, sqrt(2), 2}, 3,
                       1e-6);
  assert_tensor_values(crl_rsub_scalar(a, 10), (double[]){9, 8, 6}, 3, 0);
  assert_tensor_values(crl_rdiv_scalar(a, 8), (double[]){8, 4, 2}, 3, 0);
  assert_tensor_values(crl_rpow_scalar(a, 3), (double[]){3, 9, 81}, 3, 1e-5);
  crl_tensor *r = crl_mul_scalar(a, 0.1);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  crl_tensor *d = f64(CRL_SHAPE(1), (double[]){1});
  r = crl_add_scalar(d, 1e-12);
  assert_int_equal(r->dtype, CRL_FLOAT64);
  ASSERT_NEAR(crl_item(r), 1 + 1e-12, 0);

  /* integer tensors: integral scalars keep the dtype */
  crl_tensor *i =
      crl_from_array(CRL_INT32, CRL_SHAPE(3), (int32_t[]){1, -2, 7});
  r = crl_add_scalar(i, 3);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){4, 1, 10}, 3, 0);
  r = crl_mul_scalar(i, -1);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-1, 2, -7}, 3, 0);
  r = crl_rsub_scalar(i, 0);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-1, 2, -7}, 3, 0);
  /* ... fractional ones give float32 */
  r = crl_add_scalar(i, 0.5);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){1.5, -1.5, 7.5}, 3, 0);
  /* division is always true division */
  r = crl_div_scalar(i, 2);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){0.5, -1, 3.5}, 3, 0);
  r = crl_rdiv_scalar(i, 1);
  assert_int_equal(r->dtype, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){1, -0.5, 1.0f / 7.0f}, 3, 1e-7);
  r = crl_pow_scalar(
      crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){3, -2}), 3);
  assert_int_equal(r->dtype, CRL_INT64);
  assert_tensor_values(r, (double[]){27, -8}, 2, 0);
  /* bool with an integral scalar becomes int64 */
  crl_tensor *b = crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0});
  r = crl_add_scalar(b, 2);
  assert_int_equal(r->dtype, CRL_INT64);
  assert_tensor_values(r, (double[]){3, 2}, 2, 0);
  /* NULL */
  assert_null(crl_add_scalar(NULL, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("add");
  /* a scalar op in a scope leaves only its result behind */
  crl_tensor *keep;
  crl_scope_begin();
  keep = crl_tensor_retain(crl_mul_scalar(a, 3));
  crl_scope_end();
  assert_int_equal(keep->refcount, 1);
  crl_tensor_release(keep);
}

/* ---- where / clamp_tensor
 * -------------------------------------------------------- */

static void test_where(void **state) {
  (void)state;
  crl_tensor *cond =
      crl_from_array(CRL_BOOL, CRL_SHAPE(3, 1), (uint8_t[]){1, 0, 1});
  crl_tensor *a = f32(CRL_SHAPE(2), (float[]){1, 2});
  crl_tensor *b = crl_scalar(CRL_FLOAT32, -1);
  crl_tensor *r = crl_where(cond, a, b);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(3, 2));
  assert_tensor_values(r, (double[]){1, 2, -1, -1, 1, 2}, 6, 0);
  /* promotion: int64 and float64 */
  crl_tensor *ia =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){1, 2, 3});
  crl_tensor *fb = f64(CRL_SHAPE(3), (double[]){0.5, 0.25, 0.125});
  crl_tensor *c2 = crl_from_array(CRL_BOOL, CRL_SHAPE(3), (uint8_t[]){0, 1, 0});
  r = crl_where(c2, ia, fb);
  assert_int_equal(r->dtype, CRL_FLOAT64);
  assert_tensor_values(r, (double[]){0.5, 2, 0.125}, 3, 0);
  r = crl_where(c2, ia, ia);
  assert_int_equal(r->dtype, CRL_INT64);
  /* NaN in the branch not taken does not leak */
  crl_tensor *n = f32(CRL_SHAPE(3), (float[]){NAN, NAN, NAN});
  r = crl_where(c2, n, crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)));
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), 0, 0);
  assert_true(isnan(crl_tensor_get_flat(r, 1)));
  /* cond from a comparison */
  crl_tensor *x = f32(CRL_SHAPE(4), (float[]){-2, 3, -1, 5});
  r = crl_where(crl_gt_scalar(x, 0), x, crl_zeros_like(x));
  assert_tensor_values(r, (double[]){0, 3, 0, 5}, 4, 0);
  /* errors */
  assert_null(crl_where(x, x, x));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("where");
  CRL_ASSERT_ERR_HAS("float32");
  assert_null(crl_where(c2, x, x)); /* [3] vs [4] */
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("where");
  CRL_ASSERT_ERR_HAS("[3]");
  CRL_ASSERT_ERR_HAS("[4]");
  assert_null(crl_where(c2, a, crl_ones(CRL_FLOAT32, CRL_SHAPE(3))));
  CRL_ASSERT_ERR_HAS("[2]");
  CRL_ASSERT_ERR_HAS("[3]");
  assert_null(crl_where(NULL, x, x));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

static void test_clamp_tensor(void **state) {
  (void)state;
  crl_tensor *x = f32(CRL_SHAPE(2, 3), (float[]){-5, 0, 5, -1, 2, 9});
  crl_tensor *lo = f32(CRL_SHAPE(3), (float[]){-2, 1, 0});
  crl_tensor *hi = f32(CRL_SHAPE(2, 1), (float[]){3, 4});
  assert_tensor_values(crl_clamp_tensor(x, lo, hi),
                       (double[]){-2, 1, 3, -1, 2, 4}, 6, 0);
  assert_tensor_values(crl_clamp_tensor(x, lo, NULL),
                       (double[]){-2, 1, 5, -1, 2, 9}, 6, 0);
  assert_tensor_values(crl_clamp_tensor(x, NULL, hi),
                       (double[]){-5, 0, 3, -1, 2, 4}, 6, 0);
  crl_tensor *c = crl_clamp_tensor(x, NULL, NULL); /* a copy */
  assert_ptr_not_equal(c, x);
  assert_ptr_not_equal(c->data, x->data);
  assert_true(crl_equal(c, x));
  /* integer input with integer bounds */
  crl_tensor *i =
      crl_from_array(CRL_INT32, CRL_SHAPE(3), (int32_t[]){-7, 0, 7});
  crl_tensor *r = crl_clamp_tensor(i, crl_full(CRL_INT32, CRL_SHAPE(1), -1),
                                   crl_full(CRL_INT32, CRL_SHAPE(1), 1));
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-1, 0, 1}, 3, 0);
  /* errors name the shapes; x unchanged */
  assert_null(crl_clamp_tensor(x, f32(CRL_SHAPE(2), (float[]){0, 0}), NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 3]");
  CRL_ASSERT_ERR_HAS("[2]");
  assert_tensor_values(x, (double[]){-5, 0, 5, -1, 2, 9}, 6, 0);
  assert_null(crl_clamp_tensor(NULL, lo, hi));
  CRL_ASSERT_ERR_HAS("clamp");
}

/* ---- strided and large inputs
 * ----------------------------------------------------- */

static void test_strided_and_large(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 7);
  /* [300, 400]^T + [300]: 120000 elements, strided, broadcast */
  crl_tensor *a = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(300, 400));
  crl_tensor *at = crl_transpose(a, 0, 1);
  crl_tensor *b = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(300));
  crl_tensor *r = crl_add(at, b);
  assert_shape(r, CRL_SHAPE(400, 300));
  assert_true(crl_tensor_is_contiguous(r));
  for (int64_t i = 0; i < 400; i += 7)
    for (int64_t j = 0; j < 300; j += 3) {
      float want = (float)crl_tensor_get(a, (int64_t[]){j, i}) +
                   (float)crl_tensor_get_flat(b, j);
      ASSERT_NEAR(crl_tensor_get(r, (int64_t[]){i, j}), want, 0);
    }
  /* large contiguous same-shape (beyond the small fast path) and mixed
   * dtypes on strided input */
  crl_tensor *c = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(400, 300));
  crl_tensor *m = crl_mul(at, c);
  crl_tensor *ad = crl_cast(at, CRL_FLOAT64);
  crl_tensor *md = crl_mul(ad, c); /* float64 result */
  assert_int_equal(md->dtype, CRL_FLOAT64);
  for (int64_t k = 0; k < m->numel; k += 997) {
    double x = crl_tensor_get_flat(at, k), y = crl_tensor_get_flat(c, k);
    ASSERT_NEAR(crl_tensor_get_flat(m, k), (float)x * (float)y, 0);
    ASSERT_NEAR(crl_tensor_get_flat(md, k), x * y, 0);
  }
  crl_tensor *big = crl_maximum(c, crl_scalar(CRL_FLOAT32, 0));
  for (int64_t k = 0; k < big->numel; k += 1013)
    ASSERT_NEAR(crl_tensor_get_flat(big, k), fmax(crl_tensor_get_flat(c, k), 0),
                0);
  crl_tensor *cmp = crl_gt(at, c);
  for (int64_t k = 0; k < cmp->numel; k += 1009)
    ASSERT_NEAR(crl_tensor_get_flat(cmp, k),
                crl_tensor_get_flat(at, k) > crl_tensor_get_flat(c, k), 0);
  /* where on large strided inputs */
  crl_tensor *w = crl_where(cmp, at, c);
  for (int64_t k = 0; k < w->numel; k += 1019)
    ASSERT_NEAR(crl_tensor_get_flat(w, k),
                fmax(crl_tensor_get_flat(at, k), crl_tensor_get_flat(c, k)), 0);
}

/* ---- errors
 * -------------------------------------------------------------------- */

typedef crl_tensor *(*binfn)(crl_tensor *, crl_tensor *);

static void test_errors(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
  crl_tensor *b = f32(CRL_SHAPE(4), (float[]){1, 2, 3, 4});
  crl_tensor *a0 = crl_clone(a), *b0 = crl_clone(b);
  struct {
    binfn fn;
    const char *name;
  } ops[] = {{crl_add, "add"},
             {crl_sub, "sub"},
             {crl_mul, "mul"},
             {crl_div, "div"},
             {crl_pow, "pow"},
             {crl_minimum, "minimum"},
             {crl_maximum, "maximum"},
             {crl_eq, "eq"},
             {crl_ne, "ne"},
             {crl_lt, "lt"},
             {crl_le, "le"},
             {crl_gt, "gt"},
             {crl_ge, "ge"},
             {crl_logical_and, "logical_and"},
             {crl_logical_or, "logical_or"}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    crl_clear_error();
    assert_null(ops[i].fn(a, b));
    assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
    CRL_ASSERT_ERR_HAS(ops[i].name);
    CRL_ASSERT_ERR_HAS("[2, 3]");
    CRL_ASSERT_ERR_HAS("[4]");
    assert_null(ops[i].fn(NULL, b));
    assert_int_equal(crl_last_error_code(), CRL_EINVAL);
    CRL_ASSERT_ERR_HAS(ops[i].name);
  }
  assert_null(crl_add_scaled(a, b, 2));
  CRL_ASSERT_ERR_HAS("add_scaled");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  /* inputs unchanged */
  assert_true(crl_equal(a, a0));
  assert_true(crl_equal(b, b0));
  assert_false(a->requires_grad);

  /* bool arithmetic is refused, naming op and dtype */
  crl_tensor *t = crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0});
  binfn arith[] = {crl_add, crl_sub,     crl_mul,
                   crl_pow, crl_minimum, crl_maximum};
  const char *anames[] = {"add", "sub", "mul", "pow", "minimum", "maximum"};
  for (int i = 0; i < 6; i++) {
    assert_null(arith[i](t, t));
    assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
    CRL_ASSERT_ERR_HAS(anames[i]);
    CRL_ASSERT_ERR_HAS("bool");
  }
  assert_tensor_values(t, (double[]){1, 0}, 2, 0);
  /* bool / bool is true division in float32 (like torch) */
  crl_tensor *q =
      crl_div(t, crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 1}));
  CRL_CHECK_PTR(q);
  assert_int_equal(q->dtype, CRL_FLOAT32);
  assert_tensor_values(q, (double[]){1, 0}, 2, 0);
  /* broadcast errors leave an autograd input unchanged too */
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  assert_null(crl_mul(x, f64(CRL_SHAPE(2), (double[]){1, 2})));
  assert_null(x->grad_fn);
  assert_null(x->grad);
  assert_tensor_values(x, (double[]){1, 2, 3}, 3, 0);
}

/* ---- gradients
 * ---------------------------------------------------------------- */

enum {
  G_ADD,
  G_SUB,
  G_MUL,
  G_DIV,
  G_POW,
  G_MIN,
  G_MAX,
  G_ADDS,
  G_ADD_S,
  G_SUB_S,
  G_MUL_S,
  G_DIV_S,
  G_POW_S,
  G_RSUB_S,
  G_RDIV_S,
  G_RPOW_S,
  G_WHERE,
  G_CLAMP_T,
  G_SQUARE_SELF, /* x * x: one tensor used twice */
};

static crl_tensor *gfn(crl_tensor **in, void *ctx) {
  int op = *(int *)ctx;
  /* scalar forms and x * x take one input */
  bool two = op < G_ADD_S || op == G_WHERE || op == G_CLAMP_T;
  crl_tensor *a = in[0], *b = two ? in[1] : NULL;
  switch (op) {
  case G_ADD: return crl_add(a, b);
  case G_SUB: return crl_sub(a, b);
  case G_MUL: return crl_mul(a, b);
  case G_DIV: return crl_div(a, b);
  case G_POW: return crl_pow(a, b);
  case G_MIN: return crl_minimum(a, b);
  case G_MAX: return crl_maximum(a, b);
  case G_ADDS: return crl_add_scaled(a, b, -1.5);
  case G_ADD_S: return crl_add_scalar(a, 2.5);
  case G_SUB_S: return crl_sub_scalar(a, 0.5);
  case G_MUL_S: return crl_mul_scalar(a, -3);
  case G_DIV_S: return crl_div_scalar(a, 4);
  case G_POW_S: return crl_pow_scalar(a, 2.5);
  case G_RSUB_S: return crl_rsub_scalar(a, 1);
  case G_RDIV_S: return crl_rdiv_scalar(a, 2);
  case G_RPOW_S: return crl_rpow_scalar(a, 1.7);
  case G_WHERE: return crl_where(crl_gt(a, b), a, crl_mul(b, b));
  case G_CLAMP_T: return crl_clamp_tensor(a, b, in[2]);
  case G_SQUARE_SELF: return crl_mul(a, a);
  default: return NULL;
  }
}

static void check_grad(int op, crl_tensor **in, int n) {
  crl_clear_error();
  int rc = crl_gradcheck(gfn, in, n, &op, GC_TOL);
  if (rc) fail_msg("op %d: %s", op, crl_last_error());
}

static void test_gradcheck_binary(void **state) {
  (void)state;
  const double av[6] = {0.7, -1.3, 2.1, 0.4, -0.6, 1.9};
  const double bv[6] = {1.1, 0.5, -1.7, 2.3, 0.9, -0.8};
  const double pa[6] = {0.7, 1.3, 2.1, 0.4, 0.6, 1.9}; /* positive base */
  for (int op = G_ADD; op <= G_ADDS; op++) {
    crl_tensor *a = leaf64(CRL_SHAPE(2, 3), op == G_POW ? pa : av);
    crl_tensor *b = leaf64(CRL_SHAPE(2, 3), bv);
    crl_tensor *in[2] = {a, b};
    check_grad(op, in, 2);
    /* broadcasting: [3, 1] with [4] and [2, 3] with 0-dim */
    crl_tensor *c = leaf64(CRL_SHAPE(3, 1), op == G_POW ? pa : av);
    crl_tensor *d = leaf64(CRL_SHAPE(4), (double[]){1.2, -0.35, 0.8, -2.2});
    crl_tensor *in2[2] = {c, d};
    check_grad(op, in2, 2);
    crl_tensor *s = leaf64(CRL_SCALAR, (double[]){0.45});
    crl_tensor *in3[2] = {a, s};
    check_grad(op, in3, 2);
    crl_tensor *in4[2] = {s, b};
    check_grad(op, in4, 2);
    /* only one input requires grad */
    crl_tensor *nb = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 3), bv);
    crl_tensor *in5[2] = {a, nb};
    check_grad(op, in5, 2);
    assert_null(nb->grad);
  }
  /* pow with a base containing 0: d/db is 0 there (not NaN) */
  crl_tensor *z = leaf64(CRL_SHAPE(3), (double[]){0, 1.5, 2});
  crl_tensor *e = leaf64(CRL_SHAPE(3), (double[]){2, 1.5, -0.5});
  crl_tensor *p = crl_pow(z, e);
  CRL_CHECK_OK(crl_backward(crl_sum(p, 0, NULL, false), NULL));
  ASSERT_NEAR(crl_tensor_get_flat(e->grad, 0), 0, 0);
  ASSERT_NEAR(crl_tensor_get_flat(e->grad, 1), pow(1.5, 1.5) * log(1.5), 1e-12);
  ASSERT_NEAR(crl_tensor_get_flat(z->grad, 0), 0, 0);

  for (int op = G_ADD_S; op <= G_RPOW_S; op++) {
    crl_tensor *a = leaf64(CRL_SHAPE(2, 3), op == G_POW_S ? pa : av);
    crl_tensor *in[1] = {a};
    check_grad(op, in, 1);
  }
  /* where: both branches, broadcast */
  {
    crl_tensor *a = leaf64(CRL_SHAPE(2, 3), av);
    crl_tensor *b = leaf64(CRL_SHAPE(3), (double[]){0.1, 0.2, -0.3});
    crl_tensor *in[2] = {a, b};
    check_grad(G_WHERE, in, 2);
  }
  /* clamp_tensor away from the bounds, some clamped, some not */
  {
    crl_tensor *x = leaf64(CRL_SHAPE(2, 3), av);
    crl_tensor *lo = leaf64(CRL_SHAPE(3), (double[]){-1, -0.5, 0});
    crl_tensor *hi = leaf64(CRL_SHAPE(2, 1), (double[]){1.5, 1});
    crl_tensor *in[3] = {x, lo, hi};
    check_grad(G_CLAMP_T, in, 3);
  }
  /* x * x */
  {
    crl_tensor *x = leaf64(CRL_SHAPE(2, 3), av);
    crl_tensor *in[1] = {x};
    check_grad(G_SQUARE_SELF, in, 1);
  }
}

static void test_grad_values(void **state) {
  (void)state;
  /* min/max ties split the gradient evenly (torch) */
  crl_tensor *a = leaf64(CRL_SHAPE(3), (double[]){1, 2, 5});
  crl_tensor *b = leaf64(CRL_SHAPE(3), (double[]){1, 3, 4});
  CRL_CHECK_OK(crl_backward(crl_sum(crl_minimum(a, b), 0, NULL, false), NULL));
  assert_tensor_values(a->grad, (double[]){0.5, 1, 0}, 3, 0);
  assert_tensor_values(b->grad, (double[]){0.5, 0, 1}, 3, 0);
  crl_zero_grad(a);
  crl_zero_grad(b);
  CRL_CHECK_OK(crl_backward(crl_sum(crl_maximum(a, b), 0, NULL, false), NULL));
  assert_tensor_values(a->grad, (double[]){0.5, 0, 1}, 3, 0);
  assert_tensor_values(b->grad, (double[]){0.5, 1, 0}, 3, 0);

  /* mixed float32 / float64: each gradient has its input's dtype */
  crl_tensor *x =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){1.5f, -2});
  CRL_CHECK_OK(crl_set_requires_grad(x, true));
  crl_tensor *y = leaf64(CRL_SHAPE(2), (double[]){3, 4});
  crl_tensor *m = crl_mul(x, y);
  assert_int_equal(m->dtype, CRL_FLOAT64);
  assert_true(m->requires_grad);
  assert_non_null(m->grad_fn);
  CRL_CHECK_OK(crl_backward(crl_sum(m, 0, NULL, false), NULL));
  assert_int_equal(x->grad->dtype, CRL_FLOAT32);
  assert_int_equal(y->grad->dtype, CRL_FLOAT64);
  assert_tensor_values(x->grad, (double[]){3, 4}, 2, 0);
  assert_tensor_values(y->grad, (double[]){1.5, -2}, 2, 0);

  /* int tensor with a float leaf: only the leaf gets a gradient */
  crl_tensor *i = crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){2, 5});
  crl_tensor *w = leaf64(CRL_SHAPE(2), (double[]){1, 1});
  CRL_CHECK_OK(crl_backward(crl_sum(crl_div(i, w), 0, NULL, false), NULL));
  assert_tensor_values(w->grad, (double[]){-2, -5}, 2, 0);
  assert_null(i->grad);

  /* a broadcast [3, 1] + [4] gives summed gradients */
  crl_tensor *c = leaf64(CRL_SHAPE(3, 1), (double[]){1, 2, 3});
  crl_tensor *d = leaf64(CRL_SHAPE(4), (double[]){1, 2, 3, 4});
  CRL_CHECK_OK(crl_backward(crl_sum(crl_add(c, d), 0, NULL, false), NULL));
  assert_shape(c->grad, CRL_SHAPE(3, 1));
  assert_shape(d->grad, CRL_SHAPE(4));
  assert_tensor_values(c->grad, (double[]){4, 4, 4}, 3, 0);
  assert_tensor_values(d->grad, (double[]){3, 3, 3, 3}, 4, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_arith_values), CRL_TEST(test_broadcasting),
      CRL_TEST(test_promotion),    CRL_TEST(test_nan_min_max),
      CRL_TEST(test_comparisons),  CRL_TEST(test_logic),
      CRL_TEST(test_scalar_forms), CRL_TEST(test_where),
      CRL_TEST(test_clamp_tensor), CRL_TEST(test_strided_and_large),
      CRL_TEST(test_errors),       CRL_TEST(test_gradcheck_binary),
      CRL_TEST(test_grad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
