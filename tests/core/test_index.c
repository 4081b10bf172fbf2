/* Indexing: index_select, index, index_put_, gather, scatter, scatter_add,
 * masked_fill, masked_select — values, negative indices, strided and
 * expanded inputs, errors (inputs left unchanged), gradients. */
#include "test_util.h"

#define GC_EPS 1e-6, 1e-6, 1e-4

static crl_tensor *ar2(int64_t r, int64_t c) {
  return crl_view(crl_arange(CRL_FLOAT32, 0, r * c, 1), CRL_SHAPE(r, c));
}
#define I64(...)                                                               \
  crl_from_array(CRL_INT64,                                                    \
                 CRL_SHAPE((int64_t)(sizeof((int64_t[]){__VA_ARGS__}) / 8)),   \
                 (int64_t[]){__VA_ARGS__})

/* ---- index_select ----------------------------------------------------------
 */

static void test_index_select(void **state) {
  (void)state;
  crl_tensor *a = ar2(3, 4);
  crl_tensor *r = crl_index_select(a, 0, I64(2, 0, -1));
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(3, 4));
  assert_tensor_values(r, (double[]){8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11},
                       12, 0);
  crl_tensor *c = crl_index_select(a, 1, I64(3, 1));
  assert_shape(c, CRL_SHAPE(3, 2));
  assert_tensor_values(c, (double[]){3, 1, 7, 5, 11, 9}, 6, 0);
  /* strided input, expanded input, strided index */
  crl_tensor *t = crl_transpose(a, 0, 1); /* [4, 3] */
  assert_tensor_values(crl_index_select(t, 0, I64(1, 3)),
                       (double[]){1, 5, 9, 3, 7, 11}, 6, 0);
  crl_tensor *e = crl_expand(crl_arange(CRL_FLOAT64, 0, 3, 1), CRL_SHAPE(2, 3));
  assert_tensor_values(crl_index_select(e, 1, I64(2, 2, 0)),
                       (double[]){2, 2, 0, 2, 2, 0}, 6, 0);
  crl_tensor *si = crl_slice(I64(0, 9, 2, 9, 1), 0, 0, 5, 2); /* 0, 2, 1 */
  assert_tensor_values(crl_index_select(a, 0, si),
                       (double[]){0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7}, 12, 0);
  assert_int_equal(crl_index_select(a, 0, I64())->numel, 0);
  assert_shape(crl_index_select(a, 0, crl_scalar(CRL_INT64, 1)),
               CRL_SHAPE(1, 4));
  /* errors */
  assert_null(crl_index_select(a, 0, I64(0, 3)));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 3");
  CRL_ASSERT_ERR_HAS("size 3");
  assert_null(crl_index_select(a, 1, I64(-5)));
  CRL_ASSERT_ERR_HAS("-5");
  crl_tensor *i32 = crl_from_array(CRL_INT32, CRL_SHAPE(1), (int32_t[]){0});
  assert_null(crl_index_select(a, 0, i32));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int32");
  assert_null(crl_index_select(a, 0, crl_zeros(CRL_INT64, CRL_SHAPE(1, 1))));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_index_select(a, 2, I64(0)));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

/* ---- index / index_put_
 * ------------------------------------------------------ */

static void test_index(void **state) {
  (void)state;
  crl_tensor *a = ar2(4, 3);
  crl_tensor *idx = crl_view(I64(3, 0, -4, 1), CRL_SHAPE(2, 2));
  crl_tensor *r = crl_index(a, idx);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(2, 2, 3));
  assert_tensor_values(r, (double[]){9, 10, 11, 0, 1, 2, 0, 1, 2, 3, 4, 5}, 12,
                       0);
  /* row sizes 1, 8 and odd bytes */
  crl_tensor *v = crl_arange(CRL_FLOAT32, 10, 15, 1);
  assert_tensor_values(crl_index(v, I64(4, 4, 0)), (double[]){14, 14, 10}, 3,
                       0);
  crl_tensor *l = crl_arange(CRL_INT64, 0, 5, 1);
  assert_tensor_values(crl_index(l, I64(-1, 2)), (double[]){4, 2}, 2, 0);
  crl_tensor *u = crl_view(crl_cast(crl_arange(CRL_INT64, 0, 15, 1), CRL_UINT8),
                           CRL_SHAPE(5, 3));
  assert_tensor_values(crl_index(u, I64(1)), (double[]){3, 4, 5}, 3, 0);
  crl_tensor *d = crl_view(crl_arange(CRL_FLOAT64, 0, 8, 1), CRL_SHAPE(4, 2));
  assert_tensor_values(crl_index(d, I64(3, 1)), (double[]){6, 7, 2, 3}, 4, 0);
  /* strided and expanded sources */
  crl_tensor *t = crl_transpose(a, 0, 1); /* [3, 4] */
  assert_tensor_values(crl_index(t, I64(2, 0)),
                       (double[]){2, 5, 8, 11, 0, 3, 6, 9}, 8, 0);
  crl_tensor *e = crl_expand(crl_view(v, CRL_SHAPE(5, 1)), CRL_SHAPE(5, 2));
  assert_tensor_values(crl_index(e, I64(1, 3)), (double[]){11, 11, 13, 13}, 4,
                       0);
  /* 0-dim index */
  assert_shape(crl_index(a, crl_scalar(CRL_INT64, 2)), CRL_SHAPE(3));
  /* errors */
  assert_null(crl_index(a, I64(0, 4)));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_null(crl_index(a, crl_zeros(CRL_FLOAT32, CRL_SHAPE(1))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float32");
  assert_null(crl_index(crl_scalar(CRL_FLOAT32, 1), I64(0)));
  assert_null(crl_index(a, NULL));
}

static void test_index_large_parallel(void **state) {
  (void)state;
  /* big enough for the threaded path; must equal the serial result */
  int64_t rows = 1 << 16, cols = 24, n = 1 << 16;
  crl_rng g;
  crl_rng_seed(&g, 5);
  crl_tensor *a = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(rows, cols));
  crl_tensor *idx = crl_empty(CRL_INT64, CRL_SHAPE(n));
  int64_t *ip = idx->data;
  for (int64_t i = 0; i < n; i++)
    ip[i] = (int64_t)crl_rng_below(&g, (uint64_t)rows) - (i % 3 ? 0 : rows);
  int prev = crl_get_num_threads();
  CRL_CHECK_OK(crl_set_num_threads(4));
  crl_tensor *r4 = crl_index(a, idx);
  CRL_CHECK_OK(crl_set_num_threads(1));
  crl_tensor *r1 = crl_index(a, idx);
  crl_set_num_threads(prev);
  assert_true(crl_equal(r1, r4));
  const float *pa = a->data, *pr = r1->data;
  for (int64_t i = 0; i < n; i += 997) {
    int64_t row = ip[i] < 0 ? ip[i] + rows : ip[i];
    for (int64_t j = 0; j < cols; j++)
      assert_true(pr[i * cols + j] == pa[row * cols + j]);
  }
}

static void test_index_put(void **state) {
  (void)state;
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4, 2));
  crl_tensor *v =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 2), (float[]){1, 2, 3, 4, 5, 6});
  CRL_CHECK_OK(crl_index_put_(a, I64(0, -1, 0), v, false));
  /* duplicates without accumulate: the last write wins */
  assert_tensor_values(a, (double[]){5, 6, 0, 0, 0, 0, 3, 4}, 8, 0);
  CRL_CHECK_OK(crl_index_put_(a, I64(0, -1, 0), v, true));
  assert_tensor_values(a, (double[]){11, 14, 0, 0, 0, 0, 6, 8}, 8, 0);
  /* broadcast values, other dtype converted, 2-D index */
  CRL_CHECK_OK(crl_index_put_(a, crl_view(I64(1, 2), CRL_SHAPE(2, 1)),
                              crl_scalar(CRL_INT64, 7), false));
  assert_tensor_values(a, (double[]){11, 14, 7, 7, 7, 7, 6, 8}, 8, 0);
  CRL_CHECK_OK(crl_index_put_(
      a, I64(3), crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){-1, -2}),
      true));
  assert_tensor_values(a, (double[]){11, 14, 7, 7, 7, 7, 5, 6}, 8, 0);
  /* a failing call changes nothing: one bad index among good ones */
  double before[8] = {11, 14, 7, 7, 7, 7, 5, 6};
  assert_int_equal(
      crl_index_put_(a, I64(0, 1, 4, 2), crl_scalar(CRL_FLOAT32, 0), false),
      CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_tensor_values(a, before, 8, 0);
  assert_int_equal(
      crl_index_put_(a, I64(0, -5), crl_scalar(CRL_FLOAT32, 0), true),
      CRL_EINDEX);
  assert_tensor_values(a, before, 8, 0);
  assert_int_equal(crl_index_put_(a, I64(0, 1), v, false), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3, 2]");
  CRL_ASSERT_ERR_HAS("[2, 2]");
  assert_tensor_values(a, before, 8, 0);
  assert_int_equal(
      crl_index_put_(a, crl_zeros(CRL_INT32, CRL_SHAPE(1)), v, false),
      CRL_EDTYPE);
  /* strided destination: the columns of a transposed view */
  crl_tensor *b = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 3));
  crl_tensor *bt = crl_transpose(b, 0, 1); /* [3, 2] */
  CRL_CHECK_OK(crl_index_put_(bt, I64(2, 0, 2),
                              crl_from_array(CRL_FLOAT64, CRL_SHAPE(3, 2),
                                             (double[]){1, 2, 3, 4, 5, 6}),
                              true));
  assert_tensor_values(b, (double[]){3, 0, 6, 4, 0, 8}, 6, 0);
  CRL_CHECK_OK(crl_index_put_(bt, I64(1), crl_scalar(CRL_FLOAT64, 9), false));
  assert_tensor_values(b, (double[]){3, 9, 6, 4, 9, 8}, 6, 0);
  /* values that alias the destination */
  crl_tensor *c = crl_arange(CRL_FLOAT32, 0, 4, 1);
  CRL_CHECK_OK(
      crl_index_put_(c, I64(1, 2, 3), crl_slice(c, 0, 0, 3, 1), false));
  assert_tensor_values(c, (double[]){0, 0, 1, 2}, 4, 0);
  /* expanded destination, grad-requiring destination */
  crl_tensor *e =
      crl_expand(crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 2)), CRL_SHAPE(3, 2));
  assert_int_equal(crl_index_put_(e, I64(0), crl_scalar(CRL_FLOAT32, 1), false),
                   CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("expanded");
  crl_tensor *w = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  assert_int_equal(crl_index_put_(w, I64(0), crl_scalar(CRL_FLOAT64, 0), false),
                   CRL_EAUTOGRAD);
  assert_tensor_values(w, (double[]){1, 2}, 2, 0);
  /* bool accumulate is a logical or; int64 accumulate adds */
  crl_tensor *m = crl_zeros(CRL_BOOL, CRL_SHAPE(3));
  CRL_CHECK_OK(
      crl_index_put_(m, I64(1, 1), crl_ones(CRL_BOOL, CRL_SHAPE(1)), true));
  assert_tensor_values(m, (double[]){0, 1, 0}, 3, 0);
  crl_tensor *k = crl_zeros(CRL_INT64, CRL_SHAPE(3));
  CRL_CHECK_OK(crl_index_put_(k, I64(2, 2, 0), crl_scalar(CRL_INT64, 5), true));
  assert_tensor_values(k, (double[]){5, 0, 10}, 3, 0);
}

/* ---- gather / scatter
 * ---------------------------------------------------------- */

static void test_gather(void **state) {
  (void)state;
  crl_tensor *a = ar2(3, 4);
  crl_tensor *i1 = crl_view(I64(3, 0, 1, 1, 2, 0), CRL_SHAPE(3, 2));
  crl_tensor *g = crl_gather(a, 1, i1);
  CRL_CHECK_PTR(g);
  assert_shape(g, CRL_SHAPE(3, 2));
  assert_tensor_values(g, (double[]){3, 0, 5, 5, 10, 8}, 6, 0);
  /* dim 0, index smaller than a */
  crl_tensor *i0 = crl_view(I64(2, 0, 1), CRL_SHAPE(1, 3));
  assert_tensor_values(crl_gather(a, 0, i0), (double[]){8, 1, 6}, 3, 0);
  assert_tensor_values(crl_gather(a, -2, i0), (double[]){8, 1, 6}, 3, 0);
  /* the Q-learning pattern: q [B, A] gathered at actions [B, 1] */
  crl_tensor *act = crl_view(I64(1, 3, 0), CRL_SHAPE(3, 1));
  assert_tensor_values(crl_gather(a, 1, act), (double[]){1, 7, 8}, 3, 0);
  /* strided and expanded input, strided index */
  crl_tensor *t = crl_transpose(a, 0, 1); /* [4, 3] */
  assert_tensor_values(crl_gather(t, 1, crl_view(I64(2, 0), CRL_SHAPE(2, 1))),
                       (double[]){8, 1}, 2, 0);
  crl_tensor *e = crl_expand(crl_arange(CRL_INT64, 0, 3, 1), CRL_SHAPE(2, 3));
  crl_tensor *it =
      crl_transpose(crl_view(I64(2, 1, 0, 0), CRL_SHAPE(2, 2)), 0, 1);
  assert_tensor_values(crl_gather(e, 1, it), (double[]){2, 0, 1, 0}, 4, 0);
  /* errors */
  assert_null(crl_gather(a, 1, crl_view(I64(4), CRL_SHAPE(1, 1))));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 4");
  CRL_ASSERT_ERR_HAS("size 4");
  assert_null(crl_gather(a, 1, crl_view(I64(-1), CRL_SHAPE(1, 1))));
  CRL_ASSERT_ERR_HAS("-1");
  assert_null(crl_gather(a, 1, crl_zeros(CRL_INT64, CRL_SHAPE(4, 1))));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[4, 1]");
  CRL_ASSERT_ERR_HAS("[3, 4]");
  assert_null(crl_gather(a, 1, I64(0)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_gather(a, 1, crl_zeros(CRL_UINT8, CRL_SHAPE(1, 1))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("uint8");
}

static void test_scatter(void **state) {
  (void)state;
  /* torch's documentation example */
  crl_tensor *src =
      crl_view(crl_arange(CRL_FLOAT32, 1, 11, 1), CRL_SHAPE(2, 5));
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 5));
  crl_tensor *idx = crl_view(I64(0, 1, 2, 0), CRL_SHAPE(1, 4));
  crl_tensor *r = crl_scatter(a, 0, idx, src);
  CRL_CHECK_PTR(r);
  assert_tensor_values(
      r, (double[]){1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0}, 15, 0);
  assert_tensor_values(a,
                       (double[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                       15, 0); /* out of place */
  crl_tensor *i2 = crl_view(I64(0, 1, 2, 0, 3, 4), CRL_SHAPE(2, 3));
  crl_tensor *r2 = crl_scatter(a, 1, i2, src);
  assert_tensor_values(
      r2, (double[]){1, 2, 3, 0, 0, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0}, 15, 0);
  /* scatter_add accumulates duplicates */
  crl_tensor *ones = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 5));
  crl_tensor *i3 = crl_view(I64(0, 1, 2, 0, 0, 2, 0, 0, 0, 2), CRL_SHAPE(2, 5));
  crl_tensor *r3 =
      crl_scatter_add(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 5)), 0, i3, ones);
  assert_tensor_values(
      r3, (double[]){1, 1, 1, 2, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1}, 15, 0);
  /* int64, strided a and src */
  crl_tensor *ia = crl_transpose(crl_zeros(CRL_INT64, CRL_SHAPE(2, 2)), 0, 1);
  crl_tensor *is = crl_expand(crl_scalar(CRL_INT64, 5), CRL_SHAPE(2, 2));
  crl_tensor *r4 =
      crl_scatter_add(ia, 1, crl_view(I64(1, 1, 0, 1), CRL_SHAPE(2, 2)), is);
  assert_tensor_values(r4, (double[]){0, 10, 5, 5}, 4, 0);
  /* errors */
  assert_null(crl_scatter(a, 0, idx, crl_cast(src, CRL_FLOAT64)));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float64");
  assert_null(crl_scatter(a, 0, crl_view(I64(3), CRL_SHAPE(1, 1)), src));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 3");
  CRL_ASSERT_ERR_HAS("size 3");
  assert_null(crl_scatter(a, 0, crl_zeros(CRL_INT64, CRL_SHAPE(3, 1)), src));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("src");
  assert_null(crl_scatter(a, 1, crl_zeros(CRL_INT64, CRL_SHAPE(4, 1)),
                          crl_zeros(CRL_FLOAT32, CRL_SHAPE(4, 1))));
  CRL_ASSERT_ERR_HAS("input");
}

/* ---- masked
 * ------------------------------------------------------------------------ */

static void test_masked(void **state) {
  (void)state;
  crl_tensor *a = ar2(2, 3);
  crl_tensor *m = crl_from_array(CRL_BOOL, CRL_SHAPE(3), (uint8_t[]){1, 0, 1});
  crl_tensor *f = crl_masked_fill(a, m, -1);
  CRL_CHECK_PTR(f);
  assert_tensor_values(f, (double[]){-1, 1, -1, -1, 4, -1}, 6, 0);
  /* mask broadcasting a up */
  crl_tensor *m2 = crl_from_array(CRL_BOOL, CRL_SHAPE(2, 1, 3),
                                  (uint8_t[]){0, 0, 0, 1, 1, 1});
  assert_shape(crl_masked_fill(a, m2, 9), CRL_SHAPE(2, 2, 3));
  crl_tensor *i = crl_arange(CRL_INT32, 0, 3, 1);
  assert_tensor_values(crl_masked_fill(i, m, 7), (double[]){7, 1, 7}, 3, 0);
  crl_tensor *t = crl_transpose(ar2(3, 2), 0, 1); /* [2, 3] strided */
  assert_tensor_values(crl_masked_fill(t, m, 0), (double[]){0, 2, 0, 0, 3, 0},
                       6, 0);
  assert_null(crl_masked_fill(a, crl_ones(CRL_UINT8, CRL_SHAPE(3)), 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("uint8");
  assert_null(crl_masked_fill(a, crl_ones(CRL_BOOL, CRL_SHAPE(4)), 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_masked_fill(i, m, NAN));
  CRL_ASSERT_ERR_HAS("int32");
  assert_null(crl_masked_fill(crl_zeros(CRL_UINT8, CRL_SHAPE(1)), m, 256));
  /* masked_select */
  crl_tensor *s = crl_masked_select(a, m);
  assert_shape(s, CRL_SHAPE(4));
  assert_tensor_values(s, (double[]){0, 2, 3, 5}, 4, 0);
  crl_tensor *s2 = crl_masked_select(crl_arange(CRL_INT64, 0, 3, 1), m2);
  assert_tensor_values(s2, (double[]){0, 1, 2}, 3, 0);
  assert_int_equal(
      crl_masked_select(a, crl_zeros(CRL_BOOL, CRL_SHAPE(1)))->numel, 0);
  assert_tensor_values(crl_masked_select(t, m), (double[]){0, 4, 1, 5}, 4, 0);
  assert_null(crl_masked_select(a, crl_ones(CRL_FLOAT32, CRL_SHAPE(3))));
  CRL_ASSERT_ERR_HAS("float32");
}

/* ---- gradients
 * ------------------------------------------------------------------------- */

static crl_tensor *f_index_select(crl_tensor **x, void *c) {
  (void)c;
  return crl_index_select(x[0], 1, I64(3, 0, 3, -1));
}
static crl_tensor *f_index(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *t = crl_transpose(x[0], 0, 1); /* strided source */
  return crl_add(crl_index(x[0], crl_view(I64(2, 0, 2, -1), CRL_SHAPE(2, 2))),
                 crl_sum(crl_index(t, I64(1, 1)), 0, NULL, false));
}
static crl_tensor *f_gather(crl_tensor **x, void *c) {
  (void)c;
  return crl_gather(x[0], 1, crl_view(I64(3, 0, 3, 1, 1, 2), CRL_SHAPE(3, 2)));
}
static crl_tensor *f_scatter(crl_tensor **x, void *c) {
  (void)c; /* unique places; index smaller than src */
  crl_tensor *idx = crl_view(I64(0, 1, 2, 0, 2, 0, 1, 1), CRL_SHAPE(2, 4));
  return crl_scatter(x[0], 0, idx, x[1]);
}
static crl_tensor *f_scatter_add(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *idx = crl_view(I64(0, 0, 2, 0, 0, 1, 0, 3), CRL_SHAPE(2, 4));
  return crl_scatter_add(x[0], 1, idx, crl_transpose(x[1], 0, 1));
}
static crl_tensor *f_masked(crl_tensor **x, void *c) {
  (void)c;
  crl_tensor *m = crl_from_array(CRL_BOOL, CRL_SHAPE(2, 1, 4),
                                 (uint8_t[]){1, 0, 0, 1, 0, 1, 1, 0});
  crl_tensor *row = crl_slice(x[0], 0, 1, 2, 1); /* [1, 4], broadcast */
  return crl_cat(
      2,
      (crl_tensor *[]){crl_flatten(crl_masked_fill(row, m, 3), 0, -1),
                       crl_masked_select(x[0], m)},
      0);
}

static void test_gradcheck(void **state) {
  (void)state;
  crl_tensor *x[2] = {randn_leaf64(1, CRL_SHAPE(3, 4)),
                      randn_leaf64(2, CRL_SHAPE(4, 3))};
  CRL_CHECK_OK(crl_gradcheck(f_index_select, x, 1, NULL, GC_EPS));
  CRL_CHECK_OK(crl_gradcheck(f_index, x, 1, NULL, GC_EPS));
  CRL_CHECK_OK(crl_gradcheck(f_gather, x, 1, NULL, GC_EPS));
  crl_tensor *z[2] = {randn_leaf64(5, CRL_SHAPE(3, 4)),
                      randn_leaf64(6, CRL_SHAPE(3, 5))};
  CRL_CHECK_OK(crl_gradcheck(f_scatter, z, 2, NULL, GC_EPS));
  crl_tensor *y[2] = {randn_leaf64(3, CRL_SHAPE(2, 4)),
                      randn_leaf64(4, CRL_SHAPE(5, 3))};
  CRL_CHECK_OK(crl_gradcheck(f_scatter_add, y, 2, NULL, GC_EPS));
  CRL_CHECK_OK(crl_gradcheck(f_masked, x, 1, NULL, GC_EPS));
}

static void test_grad_values(void **state) {
  (void)state;
  /* duplicate indices accumulate; scatter's overwritten places get none */
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *y = crl_index(x, I64(2, 2, 0, 2));
  CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){1, 0, 3}, 3, 0);
  crl_zero_grad(x);
  crl_tensor *s = leaf64(CRL_SHAPE(2), (double[]){5, 6});
  crl_tensor *z = crl_scatter(x, 0, I64(1), s);
  assert_tensor_values(z, (double[]){1, 5, 3}, 3, 0);
  CRL_CHECK_OK(crl_backward(crl_sum(z, 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){1, 0, 1}, 3, 0);
  assert_tensor_values(s->grad, (double[]){1, 0}, 2, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_index_select),
      CRL_TEST(test_index),
      CRL_TEST(test_index_large_parallel),
      CRL_TEST(test_index_put),
      CRL_TEST(test_gather),
      CRL_TEST(test_scatter),
      CRL_TEST(test_masked),
      CRL_TEST(test_gradcheck),
      CRL_TEST(test_grad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
