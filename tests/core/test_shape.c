/* Shape ops: view, reshape, permute, transpose, expand, squeeze, unsqueeze,
 * flatten, slice, select, narrow — values, view semantics (shared storage),
 * strided and expanded inputs, errors, gradients. */
#include "test_util.h"

#define GC_EPS 1e-6, 1e-6, 1e-4
/* gradcheck functions return a copy: a view would alias the input that
 * crl_gradcheck perturbs and restores before it reads the outputs. */
#define GC_RET(expr) return crl_clone(expr)

static crl_tensor *ar(int64_t n) { return crl_arange(CRL_FLOAT32, 0, n, 1); }

static crl_tensor *ar2(int64_t r, int64_t c) {
  return crl_view(ar(r * c), CRL_SHAPE(r, c));
}

static void assert_strides(const crl_tensor *t, const int64_t *st) {
  for (int i = 0; i < t->ndim; i++)
    if (t->stride[i] != st[i])
      fail_msg("stride[%d] = %lld, expected %lld", i, (long long)t->stride[i],
               (long long)st[i]);
}

/* ---- view / reshape --------------------------------------------------------
 */

static void test_view_basic(void **state) {
  (void)state;
  crl_tensor *a = ar(12);
  crl_tensor *v = crl_view(a, CRL_SHAPE(3, 4));
  CRL_CHECK_PTR(v);
  assert_shape(v, CRL_SHAPE(3, 4));
  assert_ptr_equal(v->storage, a->storage);
  assert_ptr_equal(v->data, a->data);
  ASSERT_NEAR(crl_tensor_get(v, (int64_t[]){2, 1}), 9, 0);
  crl_tensor *w = crl_view(a, CRL_SHAPE(2, -1, 2));
  CRL_CHECK_PTR(w);
  assert_shape(w, CRL_SHAPE(2, 3, 2));
  /* writes through the view land in a */
  CRL_CHECK_OK(crl_tensor_set(w, (int64_t[]){1, 0, 1}, 100));
  ASSERT_NEAR(crl_tensor_get_flat(a, 7), 100, 0);
  /* scalar <-> [1] */
  crl_tensor *s = crl_scalar(CRL_FLOAT32, 5);
  crl_tensor *s1 = crl_view(s, CRL_SHAPE(1, 1));
  CRL_CHECK_PTR(s1);
  crl_tensor *s0 = crl_view(s1, CRL_SCALAR);
  CRL_CHECK_PTR(s0);
  assert_int_equal(s0->ndim, 0);
  ASSERT_NEAR(crl_item(s0), 5, 0);
}

static void test_view_errors(void **state) {
  (void)state;
  crl_tensor *a = ar(12);
  assert_null(crl_view(a, CRL_SHAPE(5, 3)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("view");
  CRL_ASSERT_ERR_HAS("[5, 3]");
  CRL_ASSERT_ERR_HAS("[12]");
  assert_null(crl_view(a, CRL_SHAPE(-1, -1)));
  CRL_ASSERT_ERR_HAS("more than one -1");
  assert_null(crl_view(a, CRL_SHAPE(5, -1)));
  CRL_ASSERT_ERR_HAS("[5, -1]");
  assert_null(crl_view(a, CRL_SHAPE(-2, 6)));
  CRL_ASSERT_ERR_HAS("negative");
  assert_null(crl_view(NULL, CRL_SHAPE(12)));
  /* strided: a transposed [3, 4] cannot be flattened without a copy */
  crl_tensor *t = crl_transpose(ar2(3, 4), 0, 1);
  assert_null(crl_view(t, CRL_SHAPE(12)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[4, 3]");
  CRL_ASSERT_ERR_HAS("crl_reshape");
}

static void test_view_strided(void **state) {
  (void)state;
  /* t = [3,4]^T: shape [4, 3], strides [1, 4] */
  crl_tensor *t = crl_transpose(ar2(3, 4), 0, 1);
  crl_tensor *v = crl_view(t, CRL_SHAPE(2, 2, 3));
  CRL_CHECK_PTR(v);
  assert_strides(v, (int64_t[]){2, 1, 4});
  assert_ptr_equal(v->storage, t->storage);
  crl_tensor *c = crl_reshape(crl_contiguous(t), CRL_SHAPE(2, 2, 3));
  assert_true(crl_equal(v, c));
  /* a column slice [3, 2] of [3, 4] (strides [4, 1]) views as [3, 2, 1] */
  crl_tensor *s = crl_slice(ar2(3, 4), 1, 1, 3, 1);
  crl_tensor *u = crl_view(s, CRL_SHAPE(3, 2, 1));
  CRL_CHECK_PTR(u);
  assert_true(crl_equal(crl_view(u, CRL_SHAPE(3, 2)), s));
  /* split a strided dim: [4] with stride 3 -> [2, 2] strides [6, 3] */
  crl_tensor *e = crl_slice(ar(12), 0, 0, 12, 3);
  crl_tensor *e2 = crl_view(e, CRL_SHAPE(2, 2));
  CRL_CHECK_PTR(e2);
  assert_strides(e2, (int64_t[]){6, 3});
  assert_tensor_values(e2, (double[]){0, 3, 6, 9}, 4, 0);
  /* empty tensors */
  crl_tensor *z = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 4));
  crl_tensor *z2 = crl_view(z, CRL_SHAPE(2, 0, 2));
  CRL_CHECK_PTR(z2);
  assert_shape(z2, CRL_SHAPE(2, 0, 2));
  assert_null(crl_view(z, CRL_SHAPE(0, -1))); /* -1 is ambiguous (torch) */
  CRL_ASSERT_ERR_HAS("[0, -1]");
}

static void test_view_expanded(void **state) {
  (void)state;
  crl_tensor *a =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 1), (float[]){1, 2, 3});
  crl_tensor *e = crl_expand(a, CRL_SHAPE(3, 4));
  CRL_CHECK_PTR(e);
  crl_tensor *v = crl_view(e, CRL_SHAPE(3, 2, 2));
  CRL_CHECK_PTR(v);
  assert_strides(v, (int64_t[]){1, 0, 0});
  assert_null(crl_view(e, CRL_SHAPE(12)));
  crl_tensor *r = crl_reshape(e, CRL_SHAPE(12));
  CRL_CHECK_PTR(r);
  assert_true(crl_tensor_is_contiguous(r));
  assert_tensor_values(r, (double[]){1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 12,
                       0);
  /* new leading dim of an expand views as merged */
  crl_tensor *b = crl_expand(ar(3), CRL_SHAPE(2, 3));
  crl_tensor *b2 = crl_view(crl_unsqueeze(b, 0), CRL_SHAPE(2, 3));
  CRL_CHECK_PTR(b2);
  assert_strides(b2, (int64_t[]){0, 1});
}

static void test_reshape(void **state) {
  (void)state;
  crl_tensor *a = ar(6);
  crl_tensor *r = crl_reshape(a, CRL_SHAPE(3, -1));
  CRL_CHECK_PTR(r);
  assert_ptr_equal(r->storage, a->storage); /* a view when possible */
  crl_tensor *t = crl_transpose(r, 0, 1);   /* [2, 3] strided */
  crl_tensor *f = crl_reshape(t, CRL_SHAPE(-1));
  CRL_CHECK_PTR(f);
  assert_ptr_not_equal(f->storage, a->storage); /* a copy */
  assert_tensor_values(f, (double[]){0, 2, 4, 1, 3, 5}, 6, 0);
  assert_null(crl_reshape(a, CRL_SHAPE(4, 2)));
  CRL_ASSERT_ERR_HAS("reshape");
  CRL_ASSERT_ERR_HAS("[4, 2]");
  CRL_ASSERT_ERR_HAS("[6]");
}

static void test_flatten(void **state) {
  (void)state;
  crl_tensor *a = crl_view(ar(24), CRL_SHAPE(2, 3, 4));
  crl_tensor *f = crl_flatten(a, 1, -1);
  assert_shape(f, CRL_SHAPE(2, 12));
  assert_ptr_equal(f->storage, a->storage);
  assert_shape(crl_flatten(a, 0, 1), CRL_SHAPE(6, 4));
  assert_shape(crl_flatten(a, 0, -1), CRL_SHAPE(24));
  assert_shape(crl_flatten(a, 1, 1), CRL_SHAPE(2, 3, 4));
  assert_shape(crl_flatten(crl_scalar(CRL_FLOAT32, 1), 0, -1), CRL_SHAPE(1));
  crl_tensor *p = crl_flatten(crl_permute(a, 3, (int[]){2, 0, 1}), 0, 1);
  CRL_CHECK_PTR(p); /* copies: [4, 2, 3] permuted */
  assert_shape(p, CRL_SHAPE(8, 3));
  ASSERT_NEAR(crl_tensor_get(p, (int64_t[]){1, 2}), 20, 0); /* a[1,2,0] */
  assert_null(crl_flatten(a, 2, 1));
  CRL_ASSERT_ERR_HAS("flatten");
  assert_null(crl_flatten(a, 0, 3));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

/* ---- permute / transpose / expand
 * ----------------------------------------------- */

static void test_permute(void **state) {
  (void)state;
  crl_tensor *a = crl_view(ar(24), CRL_SHAPE(2, 3, 4));
  crl_tensor *p = crl_permute(a, 3, (int[]){2, 0, -2});
  CRL_CHECK_PTR(p);
  assert_shape(p, CRL_SHAPE(4, 2, 3));
  assert_strides(p, (int64_t[]){1, 12, 4});
  assert_ptr_equal(p->data, a->data);
  /* p[k, i, j] = a[i, j, k] = 12 i + 4 j + k */
  ASSERT_NEAR(crl_tensor_get(p, (int64_t[]){3, 1, 2}), 12 + 8 + 3, 0);
  assert_null(crl_permute(a, 2, (int[]){0, 1}));
  CRL_ASSERT_ERR_HAS("[2, 3, 4]");
  assert_null(crl_permute(a, 3, (int[]){0, 1, 1}));
  CRL_ASSERT_ERR_HAS("more than once");
  assert_null(crl_permute(a, 3, (int[]){0, 1, 3}));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  crl_tensor *t = crl_transpose(a, -1, 0);
  assert_shape(t, CRL_SHAPE(4, 3, 2));
  ASSERT_NEAR(crl_tensor_get(t, (int64_t[]){3, 2, 1}), 12 + 8 + 3, 0);
  assert_null(crl_transpose(a, 0, 5));
  assert_int_equal(crl_transpose(crl_scalar(CRL_FLOAT32, 2), 0, -1)->ndim, 0);
}

static void test_expand(void **state) {
  (void)state;
  crl_tensor *a =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 1), (float[]){1, 2, 3});
  crl_tensor *e = crl_expand(a, CRL_SHAPE(2, 3, 4));
  CRL_CHECK_PTR(e);
  assert_shape(e, CRL_SHAPE(2, 3, 4));
  assert_strides(e, (int64_t[]){0, 1, 0});
  ASSERT_NEAR(crl_tensor_get(e, (int64_t[]){1, 2, 3}), 3, 0);
  crl_tensor *k = crl_expand(a, CRL_SHAPE(-1, 5));
  assert_shape(k, CRL_SHAPE(3, 5));
  /* expanding an expanded view, views of stride-0 dims */
  crl_tensor *ee = crl_expand(crl_unsqueeze(e, 0), CRL_SHAPE(2, 2, 3, 4));
  CRL_CHECK_PTR(ee);
  assert_strides(ee, (int64_t[]){0, 0, 1, 0});
  crl_tensor *s = crl_select(crl_slice(ee, 3, 1, 4, 2), 2, -1);
  assert_shape(s, CRL_SHAPE(2, 2, 2));
  assert_tensor_values(s, (double[]){3, 3, 3, 3, 3, 3, 3, 3}, 8, 0);
  crl_tensor *pt = crl_permute(e, 3, (int[]){2, 1, 0});
  assert_tensor_values(crl_select(crl_select(pt, 0, 3), 1, 0),
                       (double[]){1, 2, 3}, 3, 0);
  /* errors */
  assert_null(crl_expand(a, CRL_SHAPE(4, 4)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3, 1]");
  CRL_ASSERT_ERR_HAS("[4, 4]");
  assert_null(crl_expand(a, CRL_SHAPE(3)));
  CRL_ASSERT_ERR_HAS("[3, 1]");
  assert_null(crl_expand(a, CRL_SHAPE(-1, 3, 1)));
  CRL_ASSERT_ERR_HAS("expand");
  /* expand to size 0 from 1 is allowed */
  assert_shape(crl_expand(a, CRL_SHAPE(3, 0)), CRL_SHAPE(3, 0));
}

static void test_squeeze_unsqueeze(void **state) {
  (void)state;
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 3, 1, 2));
  assert_shape(crl_squeeze(a, CRL_ALL_DIMS), CRL_SHAPE(3, 2));
  assert_shape(crl_squeeze(a, 0), CRL_SHAPE(3, 1, 2));
  assert_shape(crl_squeeze(a, -2), CRL_SHAPE(1, 3, 2));
  assert_shape(crl_squeeze(a, 1), CRL_SHAPE(1, 3, 1, 2)); /* not size 1 */
  assert_null(crl_squeeze(a, 4));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  crl_tensor *b = ar2(2, 3);
  crl_tensor *u0 = crl_unsqueeze(b, 0), *u2 = crl_unsqueeze(b, 2),
             *un = crl_unsqueeze(b, -1), *u1 = crl_unsqueeze(b, 1);
  assert_shape(u0, CRL_SHAPE(1, 2, 3));
  assert_shape(u2, CRL_SHAPE(2, 3, 1));
  assert_shape(un, CRL_SHAPE(2, 3, 1));
  assert_shape(u1, CRL_SHAPE(2, 1, 3));
  assert_true(crl_tensor_is_contiguous(u1));
  assert_ptr_equal(u1->data, b->data);
  assert_null(crl_unsqueeze(b, 3));
  assert_null(crl_unsqueeze(b, -4));
  crl_tensor *s = crl_unsqueeze(crl_scalar(CRL_FLOAT32, 7), 0);
  assert_shape(s, CRL_SHAPE(1));
  assert_int_equal(crl_squeeze(s, 0)->ndim, 0);
  crl_tensor *m = crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 1, 1, 1, 1, 1, 1, 1));
  assert_null(crl_unsqueeze(m, 0));
  CRL_ASSERT_ERR_HAS("unsqueeze");
}

/* ---- slice / select / narrow
 * ------------------------------------------------------ */

static void test_slice(void **state) {
  (void)state;
  crl_tensor *a = ar(10);
  assert_tensor_values(crl_slice(a, 0, 2, 8, 3), (double[]){2, 5}, 2, 0);
  assert_tensor_values(crl_slice(a, 0, -3, INT64_MAX, 1), (double[]){7, 8, 9},
                       3, 0);
  assert_tensor_values(crl_slice(a, 0, 1, -6, 1), (double[]){1, 2, 3}, 3, 0);
  assert_int_equal(crl_slice(a, 0, -100, 100, 1)->numel, 10);
  assert_int_equal(crl_slice(a, 0, 7, 3, 1)->numel, 0);
  assert_int_equal(crl_slice(a, 0, 20, 30, 1)->numel, 0);
  assert_tensor_values(crl_slice(a, 0, 0, 10, 4), (double[]){0, 4, 8}, 3, 0);
  assert_tensor_values(crl_slice(a, 0, 9, 10, 100), (double[]){9}, 1, 0);
  assert_null(crl_slice(a, 0, 0, 10, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("step");
  assert_null(crl_slice(a, 0, 0, 10, -1));
  assert_null(crl_slice(a, 1, 0, 10, 1));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  /* 2-D, columns; shares storage, writes go through */
  crl_tensor *m = ar2(3, 4);
  crl_tensor *c = crl_slice(m, -1, 1, 4, 2);
  assert_shape(c, CRL_SHAPE(3, 2));
  assert_tensor_values(c, (double[]){1, 3, 5, 7, 9, 11}, 6, 0);
  CRL_CHECK_OK(crl_fill_(c, -1));
  assert_tensor_values(m, (double[]){0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1},
                       12, 0);
}

static void test_select_narrow(void **state) {
  (void)state;
  crl_tensor *m = ar2(3, 4);
  assert_tensor_values(crl_select(m, 0, 1), (double[]){4, 5, 6, 7}, 4, 0);
  assert_tensor_values(crl_select(m, 1, -1), (double[]){3, 7, 11}, 3, 0);
  assert_shape(crl_select(m, 1, 0), CRL_SHAPE(3));
  assert_null(crl_select(m, 0, 3));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 3");
  CRL_ASSERT_ERR_HAS("size 3");
  assert_null(crl_select(m, 1, -5));
  CRL_ASSERT_ERR_HAS("-5");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_null(crl_select(crl_scalar(CRL_FLOAT32, 1), 0, 0));
  crl_tensor *n = crl_narrow(m, 1, 1, 2);
  assert_shape(n, CRL_SHAPE(3, 2));
  assert_tensor_values(n, (double[]){1, 2, 5, 6, 9, 10}, 6, 0);
  assert_tensor_values(crl_narrow(m, 0, -1, 1), (double[]){8, 9, 10, 11}, 4, 0);
  assert_int_equal(crl_narrow(m, 0, 3, 0)->numel, 0);
  assert_null(crl_narrow(m, 1, 3, 2));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("start 3");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_null(crl_narrow(m, 1, 0, -1));
  assert_null(crl_narrow(m, 1, 5, 0));
}

/* ---- gradients
 * ----------------------------------------------------------------------- */

static crl_tensor *f_view(crl_tensor **x, void *c) {
  (void)c;
  GC_RET(crl_view(x[0], CRL_SHAPE(2, -1, 2)));
}
static crl_tensor *f_reshape_copy(crl_tensor **x, void *c) {
  (void)c; /* transposed -> not viewable -> copy path */
  GC_RET(crl_reshape(crl_transpose(x[0], 0, 1), CRL_SHAPE(-1)));
}
static crl_tensor *f_permute(crl_tensor **x, void *c) {
  (void)c;
  GC_RET(crl_permute(crl_view(x[0], CRL_SHAPE(2, 3, 2)), 3, (int[]){1, 2, 0}));
}
static crl_tensor *f_transpose(crl_tensor **x, void *c) {
  (void)c;
  GC_RET(crl_mul(crl_transpose(x[0], 0, 1), crl_transpose(x[0], 1, 0)));
}
static crl_tensor *f_expand(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *col = crl_slice(x[0], 1, 0, 1, 1); /* [3, 1] */
  GC_RET(crl_expand(col, CRL_SHAPE(2, 3, 4)));
}
static crl_tensor *f_squeeze(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *u = crl_unsqueeze(crl_unsqueeze(x[0], 1), 0);
  GC_RET(crl_squeeze(crl_flatten(u, 2, 3), CRL_ALL_DIMS));
}
static crl_tensor *f_slice(crl_tensor **x, void *c) {
  (void)c;
  GC_RET(crl_slice(x[0], 1, 1, 4, 2));
}
static crl_tensor *f_select_narrow(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *s = crl_select(x[0], 0, -1);
  crl_tensor *n = crl_narrow(x[0], 1, 1, 2);
  GC_RET(crl_add(crl_mul(s, s), crl_sum(n, 0, NULL, false)));
}
static crl_tensor *f_expanded_views(crl_tensor **x, void *c) {
  (void)c; /* views over a stride-0 tensor */
  crl_tensor *e = crl_expand(crl_unsqueeze(x[0], 0), CRL_SHAPE(3, 3, 4));
  crl_tensor *s = crl_slice(crl_transpose(e, 0, 2), 0, 0, 4, 3);
  GC_RET(crl_reshape(crl_select(s, 1, 2), CRL_SHAPE(-1)));
}

static void test_gradcheck(void **state) {
  (void)state;
  crl_tensor *x = randn_leaf64(1, CRL_SHAPE(3, 4));
  crl_gradcheck_fn fns[] = {f_view,      f_reshape_copy,  f_permute,
                            f_transpose, f_expand,        f_squeeze,
                            f_slice,     f_select_narrow, f_expanded_views};
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    int rc = crl_gradcheck(fns[i], &x, 1, NULL, GC_EPS);
    if (rc) fail_msg("gradcheck %zu: %s", i, crl_last_error());
  }
}

static void test_slice_grad_values(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(5), (double[]){1, 2, 3, 4, 5});
  crl_tensor *y = crl_sum(crl_slice(x, 0, 1, 5, 2), 0, NULL, false);
  CRL_CHECK_OK(crl_backward(y, NULL));
  assert_tensor_values(x->grad, (double[]){0, 1, 0, 1, 0}, 5, 0);
  crl_zero_grad(x);
  crl_tensor *e = crl_expand(crl_view(x, CRL_SHAPE(5, 1)), CRL_SHAPE(2, 5, 3));
  CRL_CHECK_OK(crl_backward(crl_sum(e, 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){6, 6, 6, 6, 6}, 5, 0);
  /* no graph in no-grad mode */
  crl_no_grad_begin();
  assert_false(crl_view(x, CRL_SHAPE(5, 1))->requires_grad);
  crl_no_grad_end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_view_basic),        CRL_TEST(test_view_errors),
      CRL_TEST(test_view_strided),      CRL_TEST(test_view_expanded),
      CRL_TEST(test_reshape),           CRL_TEST(test_flatten),
      CRL_TEST(test_permute),           CRL_TEST(test_expand),
      CRL_TEST(test_squeeze_unsqueeze), CRL_TEST(test_slice),
      CRL_TEST(test_select_narrow),     CRL_TEST(test_gradcheck),
      CRL_TEST(test_slice_grad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
