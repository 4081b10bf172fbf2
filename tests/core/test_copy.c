/* Copies and casts: cast, clone, contiguous, copy_, fill_, zero_, add_,
 * mul_scalar_, equal, allclose — values across dtypes and layouts, in-place
 * rules (autograd, read-only, errors leave the target unchanged) and
 * gradients. */
#include "core/internal.h"
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

/* a [3, 2] strided view (transpose) of 0..5 in dtype dt: logical values
 * 0 3 1 4 2 5 */
static crl_tensor *strided(crl_dtype dt) {
  crl_tensor *a = crl_reshape(crl_arange(dt, 0, 6, 1), CRL_SHAPE(2, 3));
  return crl_transpose(a, 0, 1);
}

static void test_cast(void **state) {
  (void)state;
  crl_tensor *f = crl_from_array(CRL_FLOAT32, CRL_SHAPE(5),
                                 (float[]){-1.7f, -0.2f, 0, 2.9f, 300.5f});
  crl_tensor *r = crl_cast(f, CRL_INT32);
  assert_int_equal(r->dtype, CRL_INT32);
  assert_tensor_values(r, (double[]){-1, 0, 0, 2, 300}, 5, 0); /* trunc */
  r = crl_cast(f, CRL_INT64);
  assert_tensor_values(r, (double[]){-1, 0, 0, 2, 300}, 5, 0);
  r = crl_cast(f, CRL_BOOL);
  assert_int_equal(r->dtype, CRL_BOOL);
  assert_tensor_values(r, (double[]){1, 1, 0, 1, 1}, 5, 0);
  assert_int_equal(((uint8_t *)r->data)[0], 1); /* canonical true */
  r = crl_cast(f, CRL_FLOAT64);
  assert_int_equal(r->dtype, CRL_FLOAT64);
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), (double)-1.7f, 0);
  crl_tensor *d =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){0.1, 1e300});
  r = crl_cast(d, CRL_FLOAT32);
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), (double)0.1f, 0);
  assert_true(isinf(crl_tensor_get_flat(r, 1)));
  crl_tensor *b = crl_from_array(CRL_BOOL, CRL_SHAPE(3), (uint8_t[]){1, 0, 1});
  r = crl_cast(b, CRL_FLOAT32);
  assert_tensor_values(r, (double[]){1, 0, 1}, 3, 0);
  crl_tensor *u = crl_from_array(CRL_UINT8, CRL_SHAPE(2), (uint8_t[]){255, 7});
  r = crl_cast(u, CRL_INT64);
  assert_tensor_values(r, (double[]){255, 7}, 2, 0);
  crl_tensor *i =
      crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){(1LL << 53) + 1, -3});
  r = crl_cast(i, CRL_INT32);
  ASSERT_NEAR(crl_tensor_get_flat(r, 1), -3, 0);
  r = crl_cast(i, CRL_INT64); /* same dtype: still a copy */
  assert_ptr_not_equal(r->data, i->data);
  assert_int_equal(((int64_t *)r->data)[0], (1LL << 53) + 1);
  /* strided input: a contiguous result in logical order */
  for (int dt = 0; dt < CRL_NUM_DTYPES - 1; dt++) {
    crl_tensor *s = strided((crl_dtype)dt);
    for (int to = 0; to < CRL_NUM_DTYPES - 1; to++) {
      crl_tensor *c = crl_cast(s, (crl_dtype)to);
      CRL_CHECK_PTR(c);
      assert_true(crl_tensor_is_contiguous(c));
      assert_shape(c, CRL_SHAPE(3, 2));
      assert_tensor_values(c, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
    }
  }
  /* errors */
  assert_null(crl_cast(f, (crl_dtype)77));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("cast");
  assert_null(crl_cast(NULL, CRL_FLOAT32));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

static void test_clone_contiguous(void **state) {
  (void)state;
  crl_tensor *a =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 2), (double[]){1, 2, 3, 4});
  crl_tensor *c = crl_clone(a);
  assert_ptr_not_equal(c, a);
  assert_ptr_not_equal(c->storage, a->storage);
  assert_int_equal(c->dtype, CRL_FLOAT64);
  assert_true(crl_equal(c, a));
  CRL_CHECK_OK(crl_tensor_set_flat(c, 0, 100)); /* independent */
  ASSERT_NEAR(crl_tensor_get_flat(a, 0), 1, 0);
  crl_tensor *s = strided(CRL_INT32);
  crl_tensor *sc = crl_clone(s);
  assert_int_equal(sc->dtype, CRL_INT32);
  assert_true(crl_tensor_is_contiguous(sc));
  assert_tensor_values(sc, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
  /* contiguous: the same tensor when already contiguous, else a copy */
  crl_tensor *k = crl_contiguous(a);
  assert_ptr_equal(k, a);
  assert_int_equal(a->refcount, 2); /* the scope holds the extra ref */
  crl_tensor *k2 = crl_contiguous(s);
  assert_ptr_not_equal(k2, s);
  assert_true(crl_tensor_is_contiguous(k2));
  assert_tensor_values(k2, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
  /* 0-dim and empty */
  crl_tensor *z = crl_clone(crl_scalar(CRL_UINT8, 9));
  assert_int_equal(z->ndim, 0);
  ASSERT_NEAR(crl_item(z), 9, 0);
  crl_tensor *e = crl_clone(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 0)));
  assert_shape(e, CRL_SHAPE(3, 0));
  assert_null(crl_clone(NULL));
  CRL_ASSERT_ERR_HAS("clone");
  assert_null(crl_contiguous(NULL));
  CRL_ASSERT_ERR_HAS("contiguous");
}

/* ---- in place
 * ------------------------------------------------------------------ */

static void test_copy_(void **state) {
  (void)state;
  crl_tensor *dst = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 2));
  unsigned v0 = dst->version;
  CRL_CHECK_OK(crl_copy_(dst, strided(CRL_INT64)));
  assert_true(dst->version > v0);
  assert_tensor_values(dst, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
  /* broadcast source [2] and 0-dim */
  CRL_CHECK_OK(crl_copy_(
      dst, crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){-1, 1})));
  assert_tensor_values(dst, (double[]){-1, 1, -1, 1, -1, 1}, 6, 0);
  CRL_CHECK_OK(crl_copy_(dst, crl_scalar(CRL_INT32, 7)));
  assert_tensor_values(dst, (double[]){7, 7, 7, 7, 7, 7}, 6, 0);
  /* into a strided destination: writes land in the base tensor */
  crl_tensor *base = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 3));
  crl_tensor *t = crl_transpose(base, 0, 1); /* [3, 2] */
  CRL_CHECK_OK(crl_copy_(
      t, crl_reshape(crl_arange(CRL_FLOAT64, 0, 6, 1), CRL_SHAPE(3, 2))));
  assert_tensor_values(base, (double[]){0, 2, 4, 1, 3, 5}, 6, 0);
  /* to bool */
  crl_tensor *bd = crl_zeros(CRL_BOOL, CRL_SHAPE(3));
  CRL_CHECK_OK(crl_copy_(
      bd, crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){0, -2, 0.5f})));
  assert_tensor_values(bd, (double[]){0, 1, 1}, 3, 0);

  /* errors: shapes named, dst unchanged */
  crl_tensor *before = crl_clone(dst);
  assert_int_equal(crl_copy_(dst, crl_ones(CRL_FLOAT32, CRL_SHAPE(3))),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("copy_");
  CRL_ASSERT_ERR_HAS("[3]");
  CRL_ASSERT_ERR_HAS("[3, 2]");
  /* a source with more dims does not fit even if it broadcasts */
  assert_int_equal(crl_copy_(dst, crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3, 2))),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 3, 2]");
  assert_true(crl_equal(dst, before));
  assert_int_equal(crl_copy_(NULL, dst), CRL_EINVAL);
  assert_int_equal(crl_copy_(dst, NULL), CRL_EINVAL);
}

static void test_fill_zero(void **state) {
  (void)state;
  for (int dt = 0; dt < CRL_NUM_DTYPES; dt++) {
    crl_tensor *t = crl_empty((crl_dtype)dt, CRL_SHAPE(3, 4));
    CRL_CHECK_OK(crl_fill_(t, 1));
    for (int i = 0; i < 12; i++)
      ASSERT_NEAR(crl_tensor_get_flat(t, i), 1, 0);
    CRL_CHECK_OK(crl_zero_(t));
    for (int i = 0; i < 12; i++)
      ASSERT_NEAR(crl_tensor_get_flat(t, i), 0, 0);
    /* a strided column: only it changes */
    crl_tensor *col = crl_select(t, 1, 2);
    CRL_CHECK_OK(crl_fill_(col, 1));
    for (int i = 0; i < 12; i++)
      ASSERT_NEAR(crl_tensor_get_flat(t, i), i % 4 == 2 ? 1 : 0, 0);
    CRL_CHECK_OK(crl_fill_(t, 1));
    CRL_CHECK_OK(crl_zero_(col)); /* zero_ on a strided view */
    for (int i = 0; i < 12; i++)
      ASSERT_NEAR(crl_tensor_get_flat(t, i), i % 4 == 2 ? 0 : 1, 0);
  }
  crl_tensor *f = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_fill_(f, -2.25));
  assert_tensor_values(f, (double[]){-2.25, -2.25}, 2, 0);
  crl_tensor *i = crl_zeros(CRL_INT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_fill_(i, 3.9));
  assert_tensor_values(i, (double[]){3, 3}, 2, 0);
  crl_tensor *s = crl_scalar(CRL_FLOAT32, 0);
  CRL_CHECK_OK(crl_fill_(s, 5));
  ASSERT_NEAR(crl_item(s), 5, 0);
  CRL_CHECK_OK(crl_fill_(crl_zeros(CRL_FLOAT32, CRL_SHAPE(0)), 1));
  assert_int_equal(crl_fill_(NULL, 1), CRL_EINVAL);
  assert_int_equal(crl_zero_(NULL), CRL_EINVAL);
}

static void test_add_mul_inplace(void **state) {
  (void)state;
  crl_tensor *d =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
  CRL_CHECK_OK(crl_add_(
      d, crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){1, 0, -1}), 2));
  assert_tensor_values(d, (double[]){3, 2, 1, 6, 5, 4}, 6, 0);
  /* other dtype source, strided destination */
  crl_tensor *dt = crl_transpose(d, 0, 1); /* [3, 2] */
  CRL_CHECK_OK(crl_add_(dt, strided(CRL_INT64), -1));
  /* dt[i][j] -= 3j + i  ->  d[j][i] -= 3j + i */
  assert_tensor_values(d, (double[]){3, 1, -1, 3, 1, -1}, 6, 0);
  CRL_CHECK_OK(crl_mul_scalar_(d, -0.5));
  assert_tensor_values(d, (double[]){-1.5, -0.5, 0.5, -1.5, -0.5, 0.5}, 6, 0);
  CRL_CHECK_OK(crl_mul_scalar_(dt, 2)); /* strided */
  assert_tensor_values(d, (double[]){-3, -1, 1, -3, -1, 1}, 6, 0);
  /* float64 and integers */
  crl_tensor *f = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){1, 2});
  CRL_CHECK_OK(crl_add_(f, crl_scalar(CRL_FLOAT64, 0.5), 3));
  assert_tensor_values(f, (double[]){2.5, 3.5}, 2, 0);
  CRL_CHECK_OK(crl_mul_scalar_(f, 2));
  assert_tensor_values(f, (double[]){5, 7}, 2, 0);
  crl_tensor *i = crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){1, 2});
  CRL_CHECK_OK(crl_add_(
      i, crl_from_array(CRL_INT64, CRL_SHAPE(2), (int64_t[]){10, 20}), 1));
  assert_tensor_values(i, (double[]){11, 22}, 2, 0);
  CRL_CHECK_OK(crl_mul_scalar_(i, 3));
  assert_tensor_values(i, (double[]){33, 66}, 2, 0);
  /* src aliasing dst */
  CRL_CHECK_OK(crl_add_(f, f, 1));
  assert_tensor_values(f, (double[]){10, 14}, 2, 0);
  /* large, contiguous float32 (vector path and pool path) */
  crl_tensor *big = crl_ones(CRL_FLOAT32, CRL_SHAPE(200000));
  crl_tensor *inc = crl_arange(CRL_FLOAT32, 0, 200000, 1);
  CRL_CHECK_OK(crl_add_(big, inc, 0.5));
  for (int64_t k = 0; k < 200000; k += 4999)
    ASSERT_NEAR(crl_tensor_get_flat(big, k), 1 + 0.5 * (double)k, 0);
  /* errors leave dst unchanged */
  crl_tensor *before = crl_clone(d);
  assert_int_equal(crl_add_(d, crl_ones(CRL_FLOAT32, CRL_SHAPE(2)), 1),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("add_");
  CRL_ASSERT_ERR_HAS("[2]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_true(crl_equal(d, before));
  assert_int_equal(crl_add_(NULL, d, 1), CRL_EINVAL);
  assert_int_equal(crl_mul_scalar_(NULL, 1), CRL_EINVAL);
}

static void test_inplace_rules(void **state) {
  (void)state;
  /* a leaf requiring grad refuses in-place writes while grad mode is on */
  crl_tensor *w = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *one = crl_ones(CRL_FLOAT64, CRL_SHAPE(3));
  assert_int_equal(crl_fill_(w, 0), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("fill_");
  CRL_ASSERT_ERR_HAS("requires grad");
  assert_int_equal(crl_zero_(w), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("zero_");
  assert_int_equal(crl_copy_(w, one), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("copy_");
  assert_int_equal(crl_add_(w, one, 1), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("add_");
  assert_int_equal(crl_mul_scalar_(w, 2), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("mul_scalar_");
  assert_int_equal(crl_tensor_set_flat(w, 0, 9), CRL_EAUTOGRAD);
  assert_tensor_values(w, (double[]){1, 2, 3}, 3, 0);
  /* ... and so does a graph tensor */
  crl_tensor *y = crl_mul(w, w);
  assert_int_equal(crl_fill_(y, 0), CRL_EAUTOGRAD);
  assert_tensor_values(y, (double[]){1, 4, 9}, 3, 0);
  /* in a no-grad scope (an optimizer step) it is allowed */
  unsigned v = w->version;
  crl_no_grad_begin();
  CRL_CHECK_OK(crl_add_(w, one, -0.5));
  CRL_CHECK_OK(crl_mul_scalar_(w, 2));
  crl_no_grad_end();
  assert_true(w->version >= v + 2);
  assert_tensor_values(w, (double[]){1, 3, 5}, 3, 0);
  /* a detached alias can be written (it shares the storage) */
  crl_tensor *dw = crl_detach(w);
  CRL_CHECK_OK(crl_fill_(dw, 4));
  assert_tensor_values(w, (double[]){4, 4, 4}, 3, 0);
}

/* ---- equal / allclose
 * ------------------------------------------------------------ */

static void test_equal_allclose(void **state) {
  (void)state;
  crl_tensor *a =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 2), (float[]){1, 2, 3, 4});
  crl_tensor *b =
      crl_from_array(CRL_INT64, CRL_SHAPE(2, 2), (int64_t[]){1, 2, 3, 4});
  assert_true(crl_equal(a, a));
  assert_true(crl_equal(a, b)); /* values, whatever the dtype */
  assert_false(crl_equal(a, crl_reshape(b, CRL_SHAPE(4))));
  assert_false(crl_equal(a, crl_add_scalar(a, 1e-6)));
  crl_tensor *at = crl_transpose(crl_transpose(a, 0, 1), 0, 1);
  assert_true(crl_equal(a, at));
  assert_false(crl_equal(a, crl_transpose(a, 0, 1)));
  crl_tensor *n = crl_from_array(CRL_FLOAT64, CRL_SHAPE(1), (double[]){NAN});
  assert_false(crl_equal(n, n)); /* NaN != NaN */
  assert_false(crl_equal(NULL, a));
  assert_true(crl_equal(crl_zeros(CRL_FLOAT32, CRL_SHAPE(0)),
                        crl_zeros(CRL_INT32, CRL_SHAPE(0))));

  crl_tensor *x =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){1, 100, -5});
  crl_tensor *y = crl_from_array(CRL_FLOAT64, CRL_SHAPE(3),
                                 (double[]){1 + 1e-9, 100.001, -5});
  assert_true(crl_allclose(x, y, 1e-5, 1e-8));
  assert_false(crl_allclose(x, y, 1e-6, 1e-8)); /* 100 vs 100.001 */
  assert_true(crl_allclose(x, y, 0, 1e-2));
  assert_false(crl_allclose(x, y, 0, 0));
  assert_true(crl_allclose(x, x, 0, 0));
  /* broadcasting, mixed dtypes */
  crl_tensor *row =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 3), (float[]){1, 100, -5});
  crl_tensor *rows = crl_expand(row, CRL_SHAPE(4, 3));
  assert_true(crl_allclose(rows, x, 1e-6, 0));
  /* infinities equal themselves; NaN is never close */
  crl_tensor *inf = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2),
                                   (double[]){INFINITY, -INFINITY});
  assert_true(crl_allclose(inf, inf, 1e-5, 1e-8));
  assert_false(crl_allclose(inf, crl_neg(inf), 1e-5, 1e-8));
  assert_false(crl_allclose(n, n, 1, 1));
  /* shapes that do not broadcast: false, with the reason */
  crl_clear_error();
  assert_false(crl_allclose(x, crl_ones(CRL_FLOAT64, CRL_SHAPE(2)), 1, 1));
  CRL_ASSERT_ERR_HAS("allclose");
  CRL_ASSERT_ERR_HAS("[3]");
  assert_false(crl_allclose(NULL, x, 1, 1));
}

/* ---- gradients
 * ------------------------------------------------------------------- */

enum { C_CLONE, C_CONTIG_T, C_CAST64, C_CAST_ROUNDTRIP };

static crl_tensor *cfn(crl_tensor **in, void *ctx) {
  switch (*(int *)ctx) {
  case C_CLONE: return crl_clone(in[0]);
  case C_CONTIG_T: return crl_contiguous(crl_transpose(in[0], 0, 1));
  case C_CAST64: return crl_mul(crl_cast(in[0], CRL_FLOAT64), in[0]);
  default: return NULL;
  }
}

static void test_gradients(void **state) {
  (void)state;
  for (int op = C_CLONE; op <= C_CAST64; op++) {
    crl_tensor *x =
        leaf64(CRL_SHAPE(2, 3), (double[]){0.5, -1, 2, 0.25, 3, -0.75});
    crl_tensor *in[1] = {x};
    crl_clear_error();
    if (crl_gradcheck(cfn, in, 1, &op, GC_TOL))
      fail_msg("op %d: %s", op, crl_last_error());
  }
  /* float32 -> float64 -> loss: the gradient comes back as float32 */
  crl_tensor *f = crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){1, 2, 3});
  CRL_CHECK_OK(crl_set_requires_grad(f, true));
  crl_tensor *d = crl_cast(f, CRL_FLOAT64);
  assert_true(d->requires_grad);
  assert_string_equal(d->grad_fn->name, "cast");
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_mul_scalar(d, 2), 0, NULL, false), NULL));
  assert_int_equal(f->grad->dtype, CRL_FLOAT32);
  assert_tensor_values(f->grad, (double[]){2, 2, 2}, 3, 0);
  /* a cast to an integer dtype cuts the graph */
  crl_tensor *i = crl_cast(f, CRL_INT32);
  assert_false(i->requires_grad);
  assert_null(i->grad_fn);
  /* clone of a leaf is a graph node, contiguous of a contiguous leaf is the
   * leaf itself */
  crl_tensor *c = crl_clone(f);
  assert_true(c->requires_grad);
  assert_non_null(c->grad_fn);
  assert_ptr_equal(crl_contiguous(f), f);
  /* no-grad: no node */
  crl_no_grad_begin();
  crl_tensor *c2 = crl_clone(f);
  crl_no_grad_end();
  assert_false(c2->requires_grad);
  assert_null(c2->grad_fn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_cast),
      CRL_TEST(test_clone_contiguous),
      CRL_TEST(test_copy_),
      CRL_TEST(test_fill_zero),
      CRL_TEST(test_add_mul_inplace),
      CRL_TEST(test_inplace_rules),
      CRL_TEST(test_equal_allclose),
      CRL_TEST(test_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
