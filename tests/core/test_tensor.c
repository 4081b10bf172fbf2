/* The tensor object: creation, dtypes, geometry, element access,
 * from_storage bounds, scopes (end_keep, discard, nesting, growth) and
 * errors. Run under ASan with detect_leaks=1: that run is the leak check
 * for the scope tests. */
#include <pthread.h>

#include "core/internal.h"
#include "test_util.h"

/* ---- dtypes and errors --------------------------------------------------- */

static void test_dtypes(void **state) {
  (void)state;
  assert_int_equal(crl_dtype_size(CRL_FLOAT32), 4);
  assert_int_equal(crl_dtype_size(CRL_FLOAT64), 8);
  assert_int_equal(crl_dtype_size(CRL_INT64), 8);
  assert_int_equal(crl_dtype_size(CRL_INT32), 4);
  assert_int_equal(crl_dtype_size(CRL_UINT8), 1);
  assert_int_equal(crl_dtype_size(CRL_BOOL), 1);
  assert_int_equal(crl_dtype_size((crl_dtype)99), 0);
  const char *names[] = {"float32", "float64", "int64",
                         "int32",   "uint8",   "bool"};
  for (int i = 0; i < CRL_NUM_DTYPES; i++) {
    assert_string_equal(crl_dtype_name((crl_dtype)i), names[i]);
    assert_int_equal(crl_dtype_from_name(names[i]), i);
  }
  assert_int_equal(crl_dtype_from_name("float16"), -1);
  assert_int_equal(crl_dtype_from_name(NULL), -1);
  assert_true(crl_dtype_is_float(CRL_FLOAT32));
  assert_true(crl_dtype_is_float(CRL_FLOAT64));
  assert_false(crl_dtype_is_float(CRL_INT64));
  assert_false(crl_dtype_is_float(CRL_BOOL));
  /* bool < uint8 < int32 < int64 < float32 < float64, symmetric */
  crl_dtype order[] = {CRL_BOOL,  CRL_UINT8,   CRL_INT32,
                       CRL_INT64, CRL_FLOAT32, CRL_FLOAT64};
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      crl_dtype want = order[i > j ? i : j];
      assert_int_equal(crl_promote_types(order[i], order[j]), want);
    }
  assert_string_equal(crl_device_name(CRL_DEVICE_CPU), "cpu");
  assert_string_equal(crl_device_name((crl_device){CRL_CUDA, 1}), "cuda:1");
}

static void test_error_state(void **state) {
  (void)state;
  crl_clear_error();
  assert_int_equal(crl_last_error_code(), CRL_OK);
  assert_string_equal(crl_last_error(), "");
  assert_int_equal(crl_error(CRL_EKEY, "missing key '%s'", "obs"), CRL_EKEY);
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  assert_string_equal(crl_last_error(), "missing key 'obs'");
  assert_string_equal(crl_strerror(CRL_ESHAPE), "shape mismatch");
  assert_string_equal(crl_strerror(CRL_EAUTOGRAD), "autograd error");
  assert_string_equal(crl_strerror(12345), "unknown error");
  crl_clear_error();
  assert_int_equal(crl_last_error_code(), CRL_OK);
}

static void test_shape_str(void **state) {
  (void)state;
  char b[64];
  assert_string_equal(crl_shape_str(2, (int64_t[]){3, 4}, b, sizeof b),
                      "[3, 4]");
  assert_string_equal(crl_shape_str(0, NULL, b, sizeof b), "[]");
  assert_string_equal(crl_shape_str(1, (int64_t[]){0}, b, sizeof b), "[0]");
  /* truncation keeps the buffer NUL-terminated */
  char s[6];
  memset(s, 'x', sizeof s);
  crl_shape_str(3, (int64_t[]){1000, 2000, 3000}, s, sizeof s);
  assert_int_equal(strlen(s), 5);
  assert_memory_equal(s, "[1000", 5);
}

/* ---- creation ------------------------------------------------------------ */

static void test_create_basic(void **state) {
  (void)state;
  for (int dt = 0; dt < CRL_NUM_DTYPES; dt++) {
    crl_tensor *z = crl_zeros((crl_dtype)dt, CRL_SHAPE(2, 3));
    crl_tensor *o = crl_ones((crl_dtype)dt, CRL_SHAPE(2, 3));
    CRL_CHECK_PTR(z);
    CRL_CHECK_PTR(o);
    assert_int_equal(z->dtype, dt);
    assert_int_equal(z->numel, 6);
    assert_shape(z, CRL_SHAPE(2, 3));
    assert_int_equal(z->stride[0], 3);
    assert_int_equal(z->stride[1], 1);
    assert_true(crl_tensor_is_contiguous(z));
    assert_false(z->requires_grad);
    assert_null(z->grad);
    assert_null(z->grad_fn);
    assert_int_equal(z->refcount, 1);
    assert_int_equal(((uintptr_t)z->data) % 64, 0);
    for (int i = 0; i < 6; i++) {
      ASSERT_NEAR(crl_tensor_get_flat(z, i), 0, 0);
      ASSERT_NEAR(crl_tensor_get_flat(o, i), 1, 0);
    }
  }
  crl_tensor *f = crl_full(CRL_FLOAT64, CRL_SHAPE(4), -2.5);
  assert_tensor_values(f, (double[]){-2.5, -2.5, -2.5, -2.5}, 4, 0);
  crl_tensor *fi = crl_full(CRL_INT32, CRL_SHAPE(2), 7.9);
  assert_tensor_values(fi, (double[]){7, 7}, 2, 0); /* truncation */
  crl_tensor *fb = crl_full(CRL_BOOL, CRL_SHAPE(2), 0.5);
  assert_tensor_values(fb, (double[]){1, 1}, 2, 0);
  crl_tensor *fu = crl_full(CRL_UINT8, CRL_SHAPE(1), 200);
  assert_tensor_values(fu, (double[]){200}, 1, 0);

  crl_tensor *s = crl_scalar(CRL_FLOAT32, 3.5);
  assert_int_equal(s->ndim, 0);
  assert_int_equal(s->numel, 1);
  ASSERT_NEAR(crl_item(s), 3.5, 0);

  crl_tensor *e = crl_empty(CRL_FLOAT32, CRL_SHAPE(0, 5));
  CRL_CHECK_PTR(e);
  assert_int_equal(e->numel, 0);

  crl_tensor *base = crl_full(CRL_INT64, CRL_SHAPE(2, 2), 9);
  crl_tensor *l1 = crl_zeros_like(base), *l2 = crl_ones_like(base);
  crl_tensor *l3 = crl_full_like(base, 4), *l4 = crl_empty_like(base);
  crl_tensor *ls[] = {l1, l2, l3, l4};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(ls[i]->dtype, CRL_INT64);
    assert_shape(ls[i], CRL_SHAPE(2, 2));
  }
  assert_tensor_values(l1, (double[]){0, 0, 0, 0}, 4, 0);
  assert_tensor_values(l2, (double[]){1, 1, 1, 1}, 4, 0);
  assert_tensor_values(l3, (double[]){4, 4, 4, 4}, 4, 0);
}

static void test_create_errors(void **state) {
  (void)state;
  int64_t big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  assert_null(crl_empty(CRL_FLOAT32, 9, big));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("empty");
  CRL_ASSERT_ERR_HAS("9 dims");
  assert_null(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, -2)));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("negative size -2");
  CRL_ASSERT_ERR_HAS("[3, -2]");
  assert_null(crl_ones((crl_dtype)42, CRL_SHAPE(2)));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("invalid dtype 42");
  assert_null(crl_empty(CRL_FLOAT32, 2, NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  /* absurdly large shapes are refused before allocating */
  assert_null(crl_empty(CRL_FLOAT64, CRL_SHAPE(1LL << 40, 1LL << 40)));
  assert_int_equal(crl_last_error_code(), CRL_ENOMEM);
  CRL_ASSERT_ERR_HAS("too large");
}

static void test_arange_linspace_eye(void **state) {
  (void)state;
  crl_tensor *a = crl_arange(CRL_FLOAT32, 0, 5, 1);
  assert_tensor_values(a, (double[]){0, 1, 2, 3, 4}, 5, 0);
  crl_tensor *b = crl_arange(CRL_FLOAT64, 1, 2, 0.25);
  assert_tensor_values(b, (double[]){1, 1.25, 1.5, 1.75}, 4, 0);
  crl_tensor *c = crl_arange(CRL_INT64, 5, 0, -2);
  assert_int_equal(c->dtype, CRL_INT64);
  assert_tensor_values(c, (double[]){5, 3, 1}, 3, 0);
  crl_tensor *d = crl_arange(CRL_FLOAT32, 3, 3, 1);
  CRL_CHECK_PTR(d);
  assert_int_equal(d->numel, 0);
  crl_tensor *e = crl_arange(CRL_FLOAT32, 3, 0, 1); /* empty, not negative */
  CRL_CHECK_PTR(e);
  assert_int_equal(e->numel, 0);
  assert_null(crl_arange(CRL_FLOAT32, 0, 1, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("arange");
  assert_null(crl_arange(CRL_FLOAT32, 0, INFINITY, 1));
  CRL_ASSERT_ERR_HAS("arange");

  crl_tensor *l = crl_linspace(CRL_FLOAT64, 0, 1, 5);
  assert_tensor_values(l, (double[]){0, 0.25, 0.5, 0.75, 1}, 5, 1e-15);
  crl_tensor *l2 = crl_linspace(CRL_FLOAT64, -1, 2, 4);
  assert_tensor_values(l2, (double[]){-1, 0, 1, 2}, 4, 1e-15);
  /* end points exact */
  crl_tensor *l3 = crl_linspace(CRL_FLOAT64, 0.1, 0.7, 7);
  ASSERT_NEAR(crl_tensor_get_flat(l3, 0), 0.1, 0);
  ASSERT_NEAR(crl_tensor_get_flat(l3, 6), 0.7, 0);
  /* one point: torch.linspace(2, 5, 1) == [2] */
  crl_tensor *l1 = crl_linspace(CRL_FLOAT32, 2, 5, 1);
  assert_tensor_values(l1, (double[]){2}, 1, 0);
  crl_tensor *l0 = crl_linspace(CRL_FLOAT32, 2, 5, 0);
  CRL_CHECK_PTR(l0);
  assert_int_equal(l0->numel, 0);
  assert_null(crl_linspace(CRL_FLOAT32, 0, 1, -1));
  CRL_ASSERT_ERR_HAS("linspace");

  crl_tensor *i3 = crl_eye(CRL_INT32, 3);
  assert_shape(i3, CRL_SHAPE(3, 3));
  assert_tensor_values(i3, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1}, 9, 0);
  assert_null(crl_eye(CRL_FLOAT32, -1));
}

static void test_from_array(void **state) {
  (void)state;
  float v[6] = {1, 2, 3, 4, 5, 6};
  crl_tensor *t = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), v);
  CRL_CHECK_PTR(t);
  v[0] = 100; /* a copy: later changes to the array do not show */
  assert_tensor_values(t, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
  int64_t iv[3] = {-5, 0, 1LL << 40};
  crl_tensor *ti = crl_from_array(CRL_INT64, CRL_SHAPE(3), iv);
  ASSERT_NEAR(crl_tensor_get_flat(ti, 2), (double)(1LL << 40), 0);
  /* NULL data is an error (inside a scope: must not double free) */
  assert_null(crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("from_array");
  /* ... and outside any scope (must not leak) */
  int depth = crl_scope_depth();
  for (int i = 0; i < depth; i++)
    crl_scope_end();
  assert_int_equal(crl_scope_depth(), 0);
  assert_null(crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), NULL));
  for (int i = 0; i < depth; i++)
    crl_scope_begin();
  /* empty arrays accept NULL */
  crl_tensor *e = crl_from_array(CRL_FLOAT32, CRL_SHAPE(0), NULL);
  CRL_CHECK_PTR(e);
}

/* ---- from_storage -------------------------------------------------------- */

static void test_from_storage(void **state) {
  (void)state;
  crl_storage *s = crl_storage_new(10 * sizeof(float), true);
  CRL_CHECK_PTR(s);
  float *d = s->data;
  for (int i = 0; i < 10; i++)
    d[i] = (float)i;
  /* contiguous at an offset */
  crl_tensor *a =
      crl_tensor_from_storage(s, CRL_FLOAT32, 2, CRL_SHAPE(2, 3), NULL);
  CRL_CHECK_PTR(a);
  assert_int_equal(s->refcount, 2);
  assert_ptr_equal(a->data, d + 2);
  assert_tensor_values(a, (double[]){2, 3, 4, 5, 6, 7}, 6, 0);
  /* strided: column-major [3, 2] view of elements 0..5 */
  crl_tensor *b = crl_tensor_from_storage(s, CRL_FLOAT32, 0, CRL_SHAPE(3, 2),
                                          (int64_t[]){1, 3});
  CRL_CHECK_PTR(b);
  assert_false(crl_tensor_is_contiguous(b));
  assert_tensor_values(b, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
  /* negative stride: reversed */
  crl_tensor *r = crl_tensor_from_storage(s, CRL_FLOAT32, 9, CRL_SHAPE(10),
                                          (int64_t[]){-1});
  CRL_CHECK_PTR(r);
  ASSERT_NEAR(crl_tensor_get_flat(r, 0), 9, 0);
  ASSERT_NEAR(crl_tensor_get_flat(r, 9), 0, 0);
  /* stride 0: broadcast */
  crl_tensor *z =
      crl_tensor_from_storage(s, CRL_FLOAT32, 4, CRL_SHAPE(3), (int64_t[]){0});
  assert_tensor_values(z, (double[]){4, 4, 4}, 3, 0);
  /* the last element exactly */
  CRL_CHECK_PTR(crl_tensor_from_storage(s, CRL_FLOAT32, 9, CRL_SHAPE(1), NULL));
  /* a float64 view of the same 40 bytes has 5 elements */
  CRL_CHECK_PTR(crl_tensor_from_storage(s, CRL_FLOAT64, 0, CRL_SHAPE(5), NULL));

  /* errors: one past the end, negative reach, negative offset */
  assert_null(
      crl_tensor_from_storage(s, CRL_FLOAT32, 5, CRL_SHAPE(2, 3), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("from_storage");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  CRL_ASSERT_ERR_HAS("element 10");
  CRL_ASSERT_ERR_HAS("10 elements");
  assert_null(crl_tensor_from_storage(s, CRL_FLOAT64, 0, CRL_SHAPE(6), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  assert_null(crl_tensor_from_storage(s, CRL_FLOAT32, 2, CRL_SHAPE(4),
                                      (int64_t[]){-1}));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("element -1");
  assert_null(crl_tensor_from_storage(s, CRL_FLOAT32, -1, CRL_SHAPE(1), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("negative offset");
  assert_null(
      crl_tensor_from_storage(NULL, CRL_FLOAT32, 0, CRL_SHAPE(1), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_tensor_from_storage(s, (crl_dtype)9, 0, CRL_SHAPE(1), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  /* failures took no reference */
  crl_storage_release(s);
  assert_int_equal(s->refcount, 6); /* a, b, r, z and the two views */
}

/* ---- element access ------------------------------------------------------ */

static void test_element_access(void **state) {
  (void)state;
  crl_tensor *t = crl_arange(CRL_FLOAT64, 0, 12, 1);
  crl_storage *s = t->storage;
  /* a [4, 3] view with strides [1, 4]: element (i, j) = i + 4 j */
  crl_tensor *v = crl_tensor_from_storage(s, CRL_FLOAT64, 0, CRL_SHAPE(4, 3),
                                          (int64_t[]){1, 4});
  ASSERT_NEAR(crl_tensor_get(v, (int64_t[]){3, 2}), 11, 0);
  ASSERT_NEAR(crl_tensor_get(v, (int64_t[]){1, 1}), 5, 0);
  ASSERT_NEAR(crl_tensor_get_flat(v, 4), 5, 0); /* (1, 1) */
  unsigned ver = v->version;
  CRL_CHECK_OK(crl_tensor_set(v, (int64_t[]){2, 1}, -1));
  assert_true(v->version > ver);
  ASSERT_NEAR(crl_tensor_get_flat(t, 6), -1, 0);
  CRL_CHECK_OK(crl_tensor_set_flat(v, 11, 99)); /* (3, 2) */
  ASSERT_NEAR(crl_tensor_get_flat(t, 11), 99, 0);

  /* out of range: NAN + CRL_EINDEX, nothing written */
  crl_clear_error();
  assert_true(isnan(crl_tensor_get(v, (int64_t[]){4, 0})));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("dim 0 of size 4");
  CRL_ASSERT_ERR_HAS("[4, 3]");
  assert_true(isnan(crl_tensor_get(v, (int64_t[]){0, -1})));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  assert_true(isnan(crl_tensor_get_flat(v, 12)));
  CRL_ASSERT_ERR_HAS("12");
  assert_true(isnan(crl_tensor_get_flat(v, -1)));
  crl_tensor *before = crl_clone(t);
  assert_int_equal(crl_tensor_set(v, (int64_t[]){0, 3}, 5), CRL_EINDEX);
  assert_int_equal(crl_tensor_set_flat(v, 12, 5), CRL_EINDEX);
  assert_int_equal(crl_tensor_set_flat(v, -1, 5), CRL_EINDEX);
  assert_true(crl_equal(before, t));

  /* dtype conversion on set: int32 truncates, bool is != 0, uint8 */
  crl_tensor *i = crl_zeros(CRL_INT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_tensor_set_flat(i, 0, -3.7));
  ASSERT_NEAR(crl_tensor_get_flat(i, 0), -3, 0);
  crl_tensor *b = crl_zeros(CRL_BOOL, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_tensor_set_flat(b, 1, 0.25));
  ASSERT_NEAR(crl_tensor_get_flat(b, 1), 1, 0);
  crl_tensor *u = crl_zeros(CRL_UINT8, CRL_SHAPE(1));
  CRL_CHECK_OK(crl_tensor_set_flat(u, 0, 255));
  ASSERT_NEAR(crl_item(u), 255, 0);

  /* 0-dim get/set */
  crl_tensor *sc = crl_scalar(CRL_INT64, 4);
  ASSERT_NEAR(crl_tensor_get(sc, NULL), 4, 0);
  CRL_CHECK_OK(crl_tensor_set(sc, NULL, 8));
  ASSERT_NEAR(crl_item(sc), 8, 0);

  /* item on a non-scalar */
  crl_clear_error();
  assert_true(isnan(crl_item(t)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("item");
  CRL_ASSERT_ERR_HAS("[12]");
  /* a [1, 1] tensor is fine */
  ASSERT_NEAR(crl_item(crl_full(CRL_FLOAT32, CRL_SHAPE(1, 1), 2)), 2, 0);
}

static void test_to_array(void **state) {
  (void)state;
  crl_tensor *t = crl_arange(CRL_FLOAT32, 0, 6, 1);
  crl_tensor *v = crl_tensor_from_storage(t->storage, CRL_FLOAT32, 0,
                                          CRL_SHAPE(3, 2), (int64_t[]){1, 3});
  float f[6];
  CRL_CHECK_OK(crl_tensor_to_array(t, CRL_FLOAT32, f, 6));
  for (int i = 0; i < 6; i++)
    ASSERT_NEAR(f[i], i, 0);
  /* strided + conversion, logical order */
  int64_t out[8] = {0};
  CRL_CHECK_OK(crl_tensor_to_array(v, CRL_INT64, out, 8));
  int64_t expect[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++)
    assert_int_equal(out[i], expect[i]);
  assert_int_equal(out[6], 0); /* nothing beyond numel written */
  double dd[6];
  CRL_CHECK_OK(crl_tensor_to_array(v, CRL_FLOAT64, dd, 6));
  for (int i = 0; i < 6; i++)
    ASSERT_NEAR(dd[i], expect[i], 0);
  /* buffer too small */
  assert_int_equal(crl_tensor_to_array(t, CRL_FLOAT32, f, 5), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("5 elements");
  assert_int_equal(crl_tensor_to_array(t, (crl_dtype)17, f, 6), CRL_EDTYPE);
}

static void test_contiguity(void **state) {
  (void)state;
  crl_tensor *t = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 1, 3));
  assert_true(crl_tensor_is_contiguous(t));
  /* size-1 dims may have any stride */
  crl_tensor *u = crl_tensor_from_storage(
      t->storage, CRL_FLOAT32, 0, CRL_SHAPE(2, 1, 3), (int64_t[]){3, 77, 1});
  assert_true(crl_tensor_is_contiguous(u));
  crl_tensor *w = crl_tensor_from_storage(t->storage, CRL_FLOAT32, 0,
                                          CRL_SHAPE(3, 2), (int64_t[]){1, 3});
  assert_false(crl_tensor_is_contiguous(w));
  assert_true(crl_same_shape(t, u));
  assert_false(crl_same_shape(t, w));
  crl_tensor *x = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3));
  assert_false(crl_same_shape(t, x)); /* same numel, other ndim */
  crl_tensor *e = crl_empty_shared(CRL_FLOAT64, CRL_SHAPE(4));
  CRL_CHECK_PTR(e);
  assert_int_equal(e->storage->kind, CRL_STORAGE_SHM);
  assert_true(crl_tensor_is_contiguous(e));
  assert_null(crl_empty_shared(CRL_FLOAT64, CRL_SHAPE(-4)));
  CRL_ASSERT_ERR_HAS("empty_shared");
}

/* ---- scopes -------------------------------------------------------------- */

static void test_scope_basic(void **state) {
  (void)state;
  int d0 = crl_scope_depth();
  crl_scope_begin();
  assert_int_equal(crl_scope_depth(), d0 + 1);
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(100));
  crl_tensor *kept = crl_tensor_retain(crl_ones(CRL_FLOAT32, CRL_SHAPE(3)));
  /* temporaries of ops are freed too (checked by the ASan leak run) */
  for (int i = 0; i < 10; i++)
    a = crl_add(a, crl_ones_like(a));
  ASSERT_NEAR(crl_tensor_get_flat(a, 99), 10, 0);
  assert_int_equal(kept->refcount, 2);
  crl_scope_end();
  assert_int_equal(crl_scope_depth(), d0);
  /* the retained tensor survived its scope with one reference */
  assert_int_equal(kept->refcount, 1);
  ASSERT_NEAR(crl_tensor_get_flat(kept, 2), 1, 0);
  crl_tensor_release(kept);
  /* ending with no scope open is harmless */
  for (int i = 0; i < d0; i++)
    crl_scope_end();
  assert_int_equal(crl_scope_depth(), 0);
  crl_scope_end();
  assert_int_equal(crl_scope_depth(), 0);
  /* no scope: the caller owns the result */
  crl_tensor *own = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  assert_int_equal(own->refcount, 1);
  crl_tensor_release(own);
  crl_tensor_release(NULL);
  assert_null(crl_tensor_retain(NULL));
  for (int i = 0; i < d0; i++)
    crl_scope_begin();
}

static crl_tensor *composite(crl_tensor *x) {
  crl_scope_begin();
  crl_tensor *y = crl_mul(x, x);
  crl_tensor *z = crl_add_scalar(y, 1);
  return crl_scope_end_keep(z);
}

static void test_scope_end_keep(void **state) {
  (void)state;
  /* into the enclosing scope */
  crl_scope_begin();
  crl_tensor *x = crl_full(CRL_FLOAT32, CRL_SHAPE(2), 3);
  crl_tensor *r = composite(x);
  CRL_CHECK_PTR(r);
  assert_int_equal(r->refcount, 1); /* only the enclosing scope holds it */
  assert_tensor_values(r, (double[]){10, 10}, 2, 0);
  crl_tensor_retain(r);
  crl_scope_end();
  assert_int_equal(r->refcount, 1);
  crl_tensor_release(r);

  /* with no enclosing scope the caller owns the result */
  int d0 = crl_scope_depth();
  for (int i = 0; i < d0; i++)
    crl_scope_end();
  crl_tensor *x2 = crl_full(CRL_FLOAT64, CRL_SHAPE(1), 2);
  crl_tensor *r2 = composite(x2);
  assert_int_equal(r2->refcount, 1);
  ASSERT_NEAR(crl_item(r2), 5, 0);
  crl_tensor_release(r2);
  crl_tensor_release(x2);
  assert_null(crl_scope_end_keep(NULL)); /* no scope, NULL: harmless */
  for (int i = 0; i < d0; i++)
    crl_scope_begin();

  /* keeping a tensor owned by an outer scope: it stays valid */
  crl_scope_begin();
  crl_tensor *outer = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_scope_begin();
  crl_tensor *same = crl_scope_end_keep(outer);
  assert_ptr_equal(same, outer);
  ASSERT_NEAR(crl_tensor_get_flat(outer, 1), 1, 0);
  crl_scope_end();

  /* keep NULL (a failed op) */
  crl_scope_begin();
  assert_null(crl_scope_end_keep(NULL));
}

static void test_scope_discard(void **state) {
  (void)state;
  /* discard a tensor of the current scope: freed now, not at scope end */
  crl_scope_begin();
  crl_tensor *keep = crl_tensor_retain(crl_zeros(CRL_FLOAT32, CRL_SHAPE(1)));
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4));
  crl_tensor *b = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4));
  crl_tensor_retain(a);
  crl__discard(a); /* drops the scope's reference only */
  assert_int_equal(a->refcount, 1);
  crl_scope_end(); /* must not release a a second time */
  assert_int_equal(a->refcount, 1);
  crl_tensor_release(a);
  (void)b;
  assert_int_equal(keep->refcount, 1);
  crl_tensor_release(keep);

  /* owned by an outer scope: discard leaves it to that scope */
  crl_scope_begin();
  crl_tensor *o = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_scope_begin();
  crl__discard(o);
  crl_scope_end();
  ASSERT_NEAR(crl_tensor_get_flat(o, 1), 0, 0); /* still alive */
  assert_int_equal(o->refcount, 1);
  crl_scope_end();

  /* no scope: discard releases */
  int d0 = crl_scope_depth();
  for (int i = 0; i < d0; i++)
    crl_scope_end();
  crl__discard(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)));
  crl__discard(NULL);
  for (int i = 0; i < d0; i++)
    crl_scope_begin();
}

static void test_scope_growth_and_depth(void **state) {
  (void)state;
  /* more temporaries than the inline slots (512): the heap array grows,
   * and discarding from the middle still works */
  crl_scope_begin();
  crl_tensor *mid = NULL, *last = NULL;
  for (int i = 0; i < 3000; i++) {
    last = crl_full(CRL_FLOAT32, CRL_SHAPE(1), i);
    if (i == 1500) mid = last;
  }
  crl__discard(mid);
  ASSERT_NEAR(crl_item(last), 2999, 0);
  crl_scope_end();

  /* nesting deeper than the tracked depth (64) still balances */
  int d0 = crl_scope_depth();
  crl_tensor *at[100];
  for (int i = 0; i < 100; i++) {
    crl_scope_begin();
    at[i] = crl_full(CRL_INT32, CRL_SHAPE(1), i);
  }
  assert_int_equal(crl_scope_depth(), d0 + 100);
  for (int i = 0; i < 100; i++)
    ASSERT_NEAR(crl_item(at[i]), i, 0);
  crl__discard(at[99]); /* deep: left to an outer scope */
  for (int i = 99; i >= 0; i--) {
    crl_scope_end();
    /* tensors of scopes below the 64th live until scope 64 ends */
    if (i > 0) ASSERT_NEAR(crl_item(at[i - 1]), i - 1, 0);
  }
  assert_int_equal(crl_scope_depth(), d0);
}

static void *thread_scope(void *arg) {
  (void)arg;
  /* scopes are per thread: a fresh thread has none */
  if (crl_scope_depth() != 0) return (void *)1;
  crl_scope_begin();
  for (int i = 0; i < 600; i++)
    crl_zeros(CRL_FLOAT32, CRL_SHAPE(8));
  crl_scope_end();
  return NULL;
}

static void test_scope_threads(void **state) {
  (void)state;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, thread_scope, NULL), 0);
  void *ret;
  pthread_join(th, &ret);
  assert_null(ret);
  assert_true(crl_scope_depth() >= 1); /* ours is untouched */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_dtypes),
      CRL_TEST(test_error_state),
      CRL_TEST(test_shape_str),
      CRL_TEST(test_create_basic),
      CRL_TEST(test_create_errors),
      CRL_TEST(test_arange_linspace_eye),
      CRL_TEST(test_from_array),
      CRL_TEST(test_from_storage),
      CRL_TEST(test_element_access),
      CRL_TEST(test_to_array),
      CRL_TEST(test_contiguity),
      CRL_TEST(test_scope_basic),
      CRL_TEST(test_scope_end_keep),
      CRL_TEST(test_scope_discard),
      CRL_TEST(test_scope_growth_and_depth),
      CRL_TEST(test_scope_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
