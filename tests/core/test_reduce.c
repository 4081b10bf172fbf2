/* Reductions: sum, mean, prod, any, all, max/min with indices, argmax/argmin,
 * max_all/min_all, logsumexp, var, std, norm, sum_value — values against
 * hand-computed numbers and naive loops, every layout path (row sums, column
 * sums, mixed dims, strided input), dtypes, empty and 0-dim tensors, errors,
 * thread-count independence, accuracy, gradients. */
#include <stdlib.h>

#include "core/internal.h"
#include "test_util.h"

#define GC_TOL 1e-6, 1e-6, 1e-4

static crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  return crl_from_array(CRL_FLOAT32, ndim, shape, v);
}

/* [[1, 2, 3], [4, 5, 6]] */
static crl_tensor *m23(void) {
  return f32(CRL_SHAPE(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
}

/* float32 arange(n) viewed with a shape */
static crl_tensor *arange_shaped(int ndim, const int64_t *shape) {
  crl_tensor *a =
      crl_arange(CRL_FLOAT32, 0, (double)crl__numel(ndim, shape), 1);
  return crl_reshape(a, ndim, shape);
}

/* ---- sum / mean values --------------------------------------------------- */

static void test_sum_basic(void **state) {
  (void)state;
  crl_tensor *a = m23();
  crl_tensor *s = crl_sum(a, 0, NULL, false);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->ndim, 0);
  assert_int_equal(s->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_item(s), 21, 0);
  crl_tensor *s0 = crl_sum(a, 1, (int[]){0}, false);
  assert_shape(s0, CRL_SHAPE(3));
  assert_tensor_values(s0, (double[]){5, 7, 9}, 3, 0);
  crl_tensor *s1 = crl_sum(a, 1, (int[]){-1}, true);
  assert_shape(s1, CRL_SHAPE(2, 1));
  assert_tensor_values(s1, (double[]){6, 15}, 2, 0);
  crl_tensor *s01 = crl_sum(a, 2, (int[]){1, 0}, true);
  assert_shape(s01, CRL_SHAPE(1, 1));
  ASSERT_NEAR(crl_item(s01), 21, 0);
  crl_tensor *m = crl_mean(a, 1, (int[]){1}, false);
  assert_tensor_values(m, (double[]){2, 5}, 2, 1e-7);
  crl_tensor *m0 = crl_mean(a, 0, NULL, false);
  ASSERT_NEAR(crl_item(m0), 3.5, 1e-7);
}

/* naive reference: sum of a [d0, d1, d2] float32 tensor over mask */
static void naive_sum3(const crl_tensor *a, unsigned mask, double *out) {
  int64_t s0 = a->shape[0], s1 = a->shape[1], s2 = a->shape[2];
  int64_t o0 = mask & 1 ? 1 : s0, o1 = mask & 2 ? 1 : s1,
          o2 = mask & 4 ? 1 : s2;
  for (int64_t k = 0; k < o0 * o1 * o2; k++)
    out[k] = 0;
  for (int64_t i = 0; i < s0; i++)
    for (int64_t j = 0; j < s1; j++)
      for (int64_t k = 0; k < s2; k++) {
        int64_t oi = mask & 1 ? 0 : i, oj = mask & 2 ? 0 : j,
                ok = mask & 4 ? 0 : k;
        out[(oi * o1 + oj) * o2 + ok] +=
            crl_tensor_get(a, (int64_t[]){i, j, k});
      }
}

static void test_sum_all_patterns(void **state) {
  (void)state;
  /* every subset of dims of a 3-d tensor: inner (KR), outer (RK), middle
   * (KRK), mixed (RKR: permuted copy), all; exact on integer data */
  crl_tensor *a = arange_shaped(CRL_SHAPE(5, 6, 7));
  crl_tensor *t = crl_transpose(a, 0, 2); /* strided [7, 6, 5] */
  crl_tensor *srcs[2] = {a, t};
  double ref[256];
  for (int w = 0; w < 2; w++) {
    crl_tensor *x = srcs[w];
    for (unsigned mask = 1; mask < 8; mask++) {
      int dims[3], nd = 0;
      for (int d = 0; d < 3; d++)
        if (mask >> d & 1) dims[nd++] = d;
      crl_tensor *s = crl_sum(x, nd, dims, true);
      CRL_CHECK_PTR(s);
      naive_sum3(x, mask, ref);
      assert_tensor_values(s, ref, s->numel, 0);
      crl_tensor *m = crl_mean(x, nd, dims, false);
      int64_t cnt = x->numel / s->numel;
      for (int64_t k = 0; k < s->numel; k++)
        ref[k] /= (double)cnt;
      assert_tensor_values(m, ref, m->numel, 1e-5);
    }
  }
}

static void test_sum_column_row_sizes(void **state) {
  (void)state;
  /* column sums over many widths (lane layouts) and heights (blocks,
   * pieces); row sums around block boundaries; exact on small integers */
  const int64_t widths[] = {2, 3, 5, 8, 15, 16, 17, 24, 33, 63, 64, 65, 4097};
  const int64_t heights[] = {1, 7, 129, 2100};
  for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
    for (size_t hi = 0; hi < sizeof heights / sizeof *heights; hi++) {
      int64_t R = heights[hi], I = widths[wi];
      if (R * I > 3000000) continue;
      crl_scope_begin();
      crl_tensor *a = crl_empty(CRL_FLOAT32, CRL_SHAPE(R, I));
      crl_tensor *ai = crl_empty(CRL_INT64, CRL_SHAPE(R, I));
      float *p = a->data;
      int64_t *pi = ai->data;
      double *ref = calloc((size_t)I, sizeof(double));
      for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < I; i++) {
          int64_t v = (r * 7 + i * 3) % 11 - 5;
          p[r * I + i] = (float)v;
          pi[r * I + i] = v;
          ref[i] += (double)v;
        }
      crl_tensor *s = crl_sum(a, 1, (int[]){0}, false);
      CRL_CHECK_PTR(s);
      assert_tensor_values(s, ref, I, 0);
      crl_tensor *si = crl_sum(ai, 1, (int[]){0}, false);
      assert_int_equal(si->dtype, CRL_INT64);
      assert_tensor_values(si, ref, I, 0);
      free(ref);
      crl_scope_end();
    }
  const int64_t rows[] = {1,    31,   32,    33,    4095,
                          4096, 4097, 65535, 65537, 140000};
  for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
    crl_scope_begin();
    int64_t n = rows[k];
    crl_tensor *a = crl_empty(CRL_FLOAT64, CRL_SHAPE(3, n));
    double *p = a->data, ref[3] = {0, 0, 0};
    for (int64_t i = 0; i < 3 * n; i++) {
      p[i] = (double)(i % 13) - 6;
      ref[i / n] += p[i];
    }
    crl_tensor *s = crl_sum(a, 1, (int[]){1}, false);
    assert_tensor_values(s, ref, 3, 0);
    ASSERT_NEAR(crl_sum_value(a), ref[0] + ref[1] + ref[2], 0);
    crl_scope_end();
  }
}

static void test_sum_dtypes(void **state) {
  (void)state;
  crl_tensor *i = crl_from_array(CRL_INT32, CRL_SHAPE(2, 2),
                                 (const int32_t[]){1, -2, 3, 2000000000});
  crl_tensor *s = crl_sum(i, 0, NULL, false);
  assert_int_equal(s->dtype, CRL_INT64);
  ASSERT_NEAR(crl_item(s), 2000000002.0, 0);
  crl_tensor *b =
      crl_from_array(CRL_BOOL, CRL_SHAPE(4), (const uint8_t[]){1, 0, 1, 1});
  crl_tensor *sb = crl_sum(b, 0, NULL, false);
  assert_int_equal(sb->dtype, CRL_INT64);
  ASSERT_NEAR(crl_item(sb), 3, 0);
  crl_tensor *u =
      crl_from_array(CRL_UINT8, CRL_SHAPE(3), (const uint8_t[]){200, 100, 50});
  ASSERT_NEAR(crl_item(crl_sum(u, 0, NULL, false)), 350, 0);
  crl_tensor *d =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (const double[]){0.5, 0.25});
  crl_tensor *sd = crl_sum(d, 0, NULL, false);
  assert_int_equal(sd->dtype, CRL_FLOAT64);
  ASSERT_NEAR(crl_item(sd), 0.75, 0);
  /* mean of an integer tensor is an error naming the dtype (torch's) */
  crl_tensor *li = crl_arange(CRL_INT64, 0, 4, 1);
  assert_null(crl_mean(li, 0, NULL, false));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("mean");
  CRL_ASSERT_ERR_HAS("int64");
  ASSERT_NEAR(crl_sum_value(li), 6, 0);
  ASSERT_NEAR(crl_sum_value(b), 3, 0);
}

static void test_sum_empty_and_scalar(void **state) {
  (void)state;
  crl_tensor *e = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 0, 3));
  crl_tensor *s = crl_sum(e, 1, (int[]){1}, false);
  assert_shape(s, CRL_SHAPE(2, 3));
  assert_tensor_values(s, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
  crl_tensor *s2 = crl_sum(e, 1, (int[]){2}, false);
  assert_shape(s2, CRL_SHAPE(2, 0));
  crl_tensor *m = crl_mean(e, 0, NULL, false);
  assert_true(isnan(crl_item(m)));
  crl_tensor *p = crl_prod(e, 1, (int[]){1}, true);
  assert_shape(p, CRL_SHAPE(2, 1, 3));
  ASSERT_NEAR(crl_tensor_get_flat(p, 4), 1, 0);
  assert_int_equal(crl_tensor_get_flat(crl_any(e, 0, NULL, false), 0), 0);
  assert_int_equal(crl_tensor_get_flat(crl_all(e, 0, NULL, false), 0), 1);
  ASSERT_NEAR(crl_sum_value(e), 0, 0);
  /* 0-dim: dims 0 and -1 are accepted */
  crl_tensor *c = crl_scalar(CRL_FLOAT32, 2.5);
  crl_tensor *c0 = crl_sum(c, 1, (int[]){0}, false);
  CRL_CHECK_PTR(c0);
  assert_int_equal(c0->ndim, 0);
  ASSERT_NEAR(crl_item(c0), 2.5, 0);
  CRL_CHECK_PTR(crl_mean(c, 1, (int[]){-1}, true));
  assert_null(crl_sum(c, 1, (int[]){1}, false));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  crl_tensor *idx = NULL;
  crl_tensor *mx = crl_max(c, 0, false, &idx);
  CRL_CHECK_PTR(mx);
  ASSERT_NEAR(crl_item(mx), 2.5, 0);
  ASSERT_NEAR(crl_item(idx), 0, 0);
}

static void test_reduce_errors(void **state) {
  (void)state;
  crl_tensor *a = m23();
  assert_null(crl_sum(a, 1, (int[]){2}, false));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("sum");
  CRL_ASSERT_ERR_HAS("dim 2");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_null(crl_mean(a, 2, (int[]){1, -1}, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("more than once");
  assert_null(crl_prod(a, -1, NULL, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_sum(a, 1, NULL, false));
  CRL_ASSERT_ERR_HAS("NULL");
  assert_null(crl_sum(NULL, 0, NULL, false));
  crl_tensor *e = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 0));
  crl_tensor *idx = (crl_tensor *)&idx; /* sentinel: must stay untouched */
  assert_null(crl_max(e, 1, false, &idx));
  assert_ptr_equal(idx, (crl_tensor *)&idx);
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[2, 0]");
  assert_null(crl_max_all(e));
  CRL_ASSERT_ERR_HAS("max_all");
  assert_null(crl_argmin(a, -3, false));
  CRL_ASSERT_ERR_HAS("argmin");
  assert_null(crl_var(crl_arange(CRL_INT64, 0, 3, 1), 0, NULL, 1, false));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int64");
  assert_null(crl_norm(crl_arange(CRL_INT32, 0, 3, 1), 2, 0, NULL, false));
  CRL_ASSERT_ERR_HAS("int32");
  assert_true(isnan(crl_sum_value(NULL)));
  /* inputs are unchanged by all of this */
  assert_tensor_values(a, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
}

/* ---- prod / any / all ---------------------------------------------------- */

static void test_prod(void **state) {
  (void)state;
  crl_tensor *a = m23();
  assert_tensor_values(crl_prod(a, 1, (int[]){0}, false), (double[]){4, 10, 18},
                       3, 0);
  assert_tensor_values(crl_prod(a, 1, (int[]){1}, false), (double[]){6, 120}, 2,
                       0);
  ASSERT_NEAR(crl_item(crl_prod(a, 0, NULL, false)), 720, 0);
  crl_tensor *i =
      crl_from_array(CRL_INT32, CRL_SHAPE(3), (const int32_t[]){-3, 4, 100000});
  crl_tensor *pi = crl_prod(i, 0, NULL, false);
  assert_int_equal(pi->dtype, CRL_INT64);
  ASSERT_NEAR(crl_item(pi), -1200000, 0);
  /* mixed dims */
  crl_tensor *b = crl_add_scalar(arange_shaped(CRL_SHAPE(2, 2, 2)), 1);
  assert_tensor_values(crl_prod(b, 2, (int[]){0, 2}, false),
                       (double[]){1 * 2 * 5 * 6, 3 * 4 * 7 * 8}, 2, 0);
}

static void test_any_all(void **state) {
  (void)state;
  crl_tensor *b = crl_from_array(CRL_BOOL, CRL_SHAPE(2, 3),
                                 (const uint8_t[]){0, 1, 0, 0, 1, 1});
  crl_tensor *any1 = crl_any(b, 1, (int[]){1}, false);
  assert_int_equal(any1->dtype, CRL_BOOL);
  assert_tensor_values(any1, (double[]){1, 1}, 2, 0);
  assert_tensor_values(crl_all(b, 1, (int[]){1}, false), (double[]){0, 0}, 2,
                       0);
  assert_tensor_values(crl_all(b, 1, (int[]){0}, true), (double[]){0, 1, 0}, 3,
                       0);
  assert_tensor_values(crl_any(b, 1, (int[]){0}, false), (double[]){0, 1, 1}, 3,
                       0);
  crl_tensor *f = f32(CRL_SHAPE(3), (const float[]){0, NAN, 2});
  ASSERT_NEAR(crl_item(crl_any(f, 0, NULL, false)), 1, 0);
  ASSERT_NEAR(crl_item(crl_all(f, 0, NULL, false)), 0, 0);
  crl_tensor *z = crl_zeros(CRL_INT64, CRL_SHAPE(4));
  ASSERT_NEAR(crl_item(crl_any(z, 0, NULL, false)), 0, 0);
  crl_tensor *o = crl_ones(CRL_INT32, CRL_SHAPE(2, 2));
  ASSERT_NEAR(crl_item(crl_all(o, 0, NULL, false)), 1, 0);
}

/* ---- max / min ----------------------------------------------------------- */

static void test_max_min(void **state) {
  (void)state;
  crl_tensor *a = f32(CRL_SHAPE(2, 3), (const float[]){1, 3, 3, 5, 5, 2});
  crl_tensor *idx = NULL;
  crl_tensor *mx = crl_max(a, 1, false, &idx);
  CRL_CHECK_PTR(mx);
  assert_tensor_values(mx, (double[]){3, 5}, 2, 0);
  assert_int_equal(idx->dtype, CRL_INT64);
  assert_tensor_values(idx, (double[]){1, 0}, 2, 0); /* first occurrence */
  crl_tensor *mn = crl_min(a, 0, true, &idx);
  assert_shape(mn, CRL_SHAPE(1, 3));
  assert_shape(idx, CRL_SHAPE(1, 3));
  assert_tensor_values(mn, (double[]){1, 3, 2}, 3, 0);
  assert_tensor_values(idx, (double[]){0, 0, 1}, 3, 0);
  assert_tensor_values(crl_argmax(a, 0, false), (double[]){1, 1, 0}, 3, 0);
  assert_tensor_values(crl_argmin(a, -1, false), (double[]){0, 2}, 2, 0);
  assert_shape(crl_argmax(a, 1, true), CRL_SHAPE(2, 1));
  ASSERT_NEAR(crl_item(crl_max_all(a)), 5, 0);
  ASSERT_NEAR(crl_item(crl_min_all(a)), 1, 0);
  CRL_CHECK_PTR(crl_max(a, 0, false, NULL));
  /* NaN propagates and its index is the first NaN */
  crl_tensor *n = f32(CRL_SHAPE(5), (const float[]){1, NAN, 7, NAN, 0});
  crl_tensor *nv = crl_max(n, 0, false, &idx);
  assert_true(isnan(crl_item(nv)));
  ASSERT_NEAR(crl_item(idx), 1, 0);
  assert_true(isnan(crl_item(crl_min_all(n))));
  ASSERT_NEAR(crl_item(crl_argmin(n, 0, false)), 1, 0);
  /* integer and bool dtypes keep their dtype */
  crl_tensor *i = crl_from_array(CRL_INT64, CRL_SHAPE(2, 2),
                                 (const int64_t[]){-5, 9, 9, -7});
  crl_tensor *iv = crl_max(i, 0, false, &idx);
  assert_int_equal(iv->dtype, CRL_INT64);
  assert_tensor_values(iv, (double[]){9, 9}, 2, 0);
  assert_tensor_values(idx, (double[]){1, 0}, 2, 0);
  ASSERT_NEAR(crl_item(crl_min_all(i)), -7, 0);
  crl_tensor *b =
      crl_from_array(CRL_BOOL, CRL_SHAPE(3), (const uint8_t[]){0, 1, 1});
  crl_tensor *bv = crl_max_all(b);
  assert_int_equal(bv->dtype, CRL_BOOL);
  ASSERT_NEAR(crl_item(bv), 1, 0);
  ASSERT_NEAR(crl_item(crl_argmax(b, 0, false)), 1, 0);
  /* middle dim of a 3-d tensor (column path) and strided input */
  crl_tensor *c = arange_shaped(CRL_SHAPE(2, 3, 4));
  crl_tensor *cv = crl_max(c, 1, false, &idx);
  assert_tensor_values(cv, (double[]){8, 9, 10, 11, 20, 21, 22, 23}, 8, 0);
  assert_tensor_values(idx, (double[]){2, 2, 2, 2, 2, 2, 2, 2}, 8, 0);
  crl_tensor *ct = crl_transpose(c, 0, 2); /* [4, 3, 2] */
  assert_tensor_values(crl_argmin(ct, 2, false),
                       (double[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12, 0);
  assert_tensor_values(crl_min(ct, 0, false, NULL),
                       (double[]){0, 12, 4, 16, 8, 20}, 6, 0);
}

static void test_max_long_rows(void **state) {
  (void)state;
  /* rows split into pieces: the first occurrence of the max still wins */
  int64_t n = 300000;
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, n));
  float *p = a->data;
  p[70000] = 5;
  p[200000] = 5;
  p[n + 65536] = -1;
  p[n + 65537] = -1;
  crl_tensor *idx;
  crl_tensor *v = crl_max(a, 1, false, &idx);
  assert_tensor_values(v, (double[]){5, 0}, 2, 0);
  assert_tensor_values(idx, (double[]){70000, 0}, 2, 0);
  assert_tensor_values(crl_argmin(a, 1, false), (double[]){0, 65536}, 2, 0);
  ASSERT_NEAR(crl_item(crl_argmax(crl_reshape(a, CRL_SHAPE(-1)), 0, false)),
              70000, 0);
}

/* ---- composite ----------------------------------------------------------- */

static void test_logsumexp_var_std_norm(void **state) {
  (void)state;
  crl_tensor *a = m23();
  crl_tensor *l = crl_logsumexp(a, 1, (int[]){1}, false);
  ASSERT_NEAR(crl_tensor_get_flat(l, 0), log(exp(1) + exp(2) + exp(3)), 1e-6);
  ASSERT_NEAR(crl_tensor_get_flat(l, 1), log(exp(4) + exp(5) + exp(6)), 1e-5);
  /* large values do not overflow; -inf slices give -inf, +inf gives +inf */
  crl_tensor *big =
      f32(CRL_SHAPE(2, 2), (const float[]){1000, 1000, -INFINITY, -INFINITY});
  crl_tensor *lb = crl_logsumexp(big, 1, (int[]){1}, false);
  ASSERT_NEAR(crl_tensor_get_flat(lb, 0), 1000 + log(2), 1e-3);
  assert_true(isinf(crl_tensor_get_flat(lb, 1)) &&
              crl_tensor_get_flat(lb, 1) < 0);
  crl_tensor *pinf = f32(CRL_SHAPE(2), (const float[]){INFINITY, 1});
  assert_true(isinf(crl_item(crl_logsumexp(pinf, 0, NULL, false))));
  crl_tensor *li =
      crl_logsumexp(crl_arange(CRL_INT64, 0, 3, 1), 0, NULL, false);
  assert_int_equal(li->dtype, CRL_FLOAT32);
  ASSERT_NEAR(crl_item(li), log(1 + exp(1) + exp(2)), 1e-6);
  /* var / std: rows [1,2,3] and [4,5,6] have unbiased var 1 */
  assert_tensor_values(crl_var(a, 1, (int[]){1}, 1, false), (double[]){1, 1}, 2,
                       1e-6);
  ASSERT_NEAR(crl_item(crl_var(a, 0, NULL, 0, false)), 17.5 / 6, 1e-6);
  assert_tensor_values(crl_std(a, 1, (int[]){0}, 1, true),
                       (double[]){sqrt(4.5), sqrt(4.5), sqrt(4.5)}, 3, 1e-6);
  assert_shape(crl_std(a, 1, (int[]){0}, 1, true), CRL_SHAPE(1, 3));
  /* var of one element with correction 1 is 0/0; empty slices are NaN */
  crl_tensor *one = f32(CRL_SHAPE(1), (const float[]){3});
  assert_true(isnan(crl_item(crl_var(one, 0, NULL, 1, false))));
  ASSERT_NEAR(crl_item(crl_std(one, 0, NULL, 0, false)), 0, 0);
  crl_tensor *e = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 0));
  assert_true(isnan(crl_tensor_get_flat(crl_var(e, 1, (int[]){1}, 1, 0), 1)));
  assert_true(isinf(crl_item(crl_logsumexp(e, 0, NULL, false))));
  /* norms of [3, -4] */
  crl_tensor *v = f32(CRL_SHAPE(2), (const float[]){3, -4});
  ASSERT_NEAR(crl_item(crl_norm(v, 2, 0, NULL, false)), 5, 1e-6);
  ASSERT_NEAR(crl_item(crl_norm(v, 1, 0, NULL, false)), 7, 1e-6);
  ASSERT_NEAR(crl_item(crl_norm(v, INFINITY, 0, NULL, false)), 4, 0);
  ASSERT_NEAR(crl_item(crl_norm(v, -INFINITY, 0, NULL, false)), 3, 0);
  ASSERT_NEAR(crl_item(crl_norm(v, 0, 0, NULL, false)), 2, 0);
  ASSERT_NEAR(crl_item(crl_norm(v, 3, 0, NULL, false)), cbrt(27 + 64), 1e-5);
  assert_tensor_values(crl_norm(a, 2, 1, (int[]){1}, false),
                       (double[]){sqrt(14), sqrt(77)}, 2, 1e-5);
}

/* ---- determinism and accuracy -------------------------------------------- */

static void same_bits(crl_tensor *x, crl_tensor *y) {
  assert_true(crl_same_shape(x, y));
  assert_int_equal(x->dtype, y->dtype);
  assert_memory_equal(x->data, y->data,
                      (size_t)x->numel * crl_dtype_size(x->dtype));
}

typedef crl_tensor *(*red_fn)(crl_tensor *a);
static crl_tensor *r_sum_all(crl_tensor *a) { return crl_sum(a, 0, NULL, 0); }
static crl_tensor *r_sum0(crl_tensor *a) {
  return crl_sum(a, 1, (int[]){0}, 0);
}
static crl_tensor *r_sum1(crl_tensor *a) {
  return crl_sum(a, 1, (int[]){1}, 0);
}
static crl_tensor *r_mean0(crl_tensor *a) {
  return crl_mean(a, 1, (int[]){0}, 0);
}
static crl_tensor *r_max_all(crl_tensor *a) { return crl_max_all(a); }
static crl_tensor *r_argmax1(crl_tensor *a) { return crl_argmax(a, 1, false); }
static crl_tensor *r_argmin0(crl_tensor *a) { return crl_argmin(a, 0, false); }
static crl_tensor *r_lse1(crl_tensor *a) {
  return crl_logsumexp(a, 1, (int[]){1}, 0);
}
static crl_tensor *r_norm(crl_tensor *a) { return crl_norm(a, 2, 0, NULL, 0); }
static crl_tensor *r_mixed(crl_tensor *a) {
  crl_tensor *v = crl_reshape(a, CRL_SHAPE(40, 50, 1000));
  return crl_sum(v, 2, (int[]){0, 2}, 0);
}

static void test_threads_bit_identical(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 7);
  crl_tensor *a = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2000, 1000));
  crl_tensor *d = crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(1000, 2000));
  crl_tensor *ci =
      crl_randint(&g, -1000, 1000, CRL_INT64, CRL_SHAPE(2000, 1000));
  red_fn fns[] = {r_sum_all, r_sum0,    r_sum1, r_mean0, r_max_all,
                  r_argmax1, r_argmin0, r_lse1, r_norm,  r_mixed};
  crl_tensor *ins[] = {a, d, ci};
  int prev = crl_get_num_threads();
  for (size_t f = 0; f < sizeof fns / sizeof *fns; f++)
    for (int k = 0; k < 3; k++) {
      if (k == 2 && (fns[f] == r_mean0 || fns[f] == r_lse1 || fns[f] == r_norm))
        continue;
      CRL_CHECK_OK(crl_set_num_threads(1));
      crl_tensor *x1 = fns[f](ins[k]);
      CRL_CHECK_OK(crl_set_num_threads(2));
      crl_tensor *x2 = fns[f](ins[k]);
      CRL_CHECK_OK(crl_set_num_threads(3));
      crl_tensor *x3 = fns[f](ins[k]);
      CRL_CHECK_PTR(x1);
      CRL_CHECK_PTR(x2);
      same_bits(x1, x2);
      same_bits(x1, x3);
    }
  CRL_CHECK_OK(crl_set_num_threads(1));
  double v1 = crl_sum_value(a);
  CRL_CHECK_OK(crl_set_num_threads(2));
  double v2 = crl_sum_value(a);
  assert_memory_equal(&v1, &v2, sizeof v1);
  CRL_CHECK_OK(crl_set_num_threads(prev));
}

static void test_sum_accuracy(void **state) {
  (void)state;
  /* 4M copies of 0.1f: naive float32 accumulation is off by percents;
   * float32 lanes of 16 terms widened to double stay within a few ulp */
  int64_t n = 1 << 22;
  crl_tensor *a = crl_full(CRL_FLOAT32, CRL_SHAPE(n), 0.1);
  double exact = (double)n * (double)0.1f;
  ASSERT_NEAR(crl_item(crl_sum(a, 0, NULL, false)), exact, exact * 3e-7);
  ASSERT_NEAR(crl_sum_value(a), exact, exact * 3e-7);
  ASSERT_NEAR(crl_item(crl_mean(a, 0, NULL, false)), 0.1f, 3e-8);
  crl_tensor *c = crl_full(CRL_FLOAT32, CRL_SHAPE(n / 4, 4), 0.1);
  crl_tensor *cs = crl_sum(c, 1, (int[]){0}, false);
  for (int k = 0; k < 4; k++)
    ASSERT_NEAR(crl_tensor_get_flat(cs, k), exact / 4, exact / 4 * 3e-7);
}

/* ---- random shapes against a naive reference --------------------------- */

enum {
  N_SUM,
  N_MEAN,
  N_PROD,
  N_LSE,
  N_VAR,
  N_STD,
  N_NORM2,
  N_NORMINF,
  N_ANY,
  N_COUNT
};

/* out[o] over the kept dims of mask, from logical element values */
static void naive_reduce(const crl_tensor *x, unsigned mask, int op,
                         double *out, int64_t nout) {
  double m[64], s[64];
  int64_t cnt[64] = {0};
  for (int64_t o = 0; o < nout; o++)
    out[o] = op == N_PROD ? 1 : 0;
  for (int pass = 0; pass < 2; pass++)
    for (int64_t f = 0; f < x->numel; f++) {
      int64_t rem = f, o = 0, mul = 1;
      for (int d = x->ndim - 1; d >= 0; d--) {
        int64_t i = rem % x->shape[d];
        rem /= x->shape[d];
        if (!(mask >> d & 1)) {
          o += i * mul;
          mul *= x->shape[d];
        }
      }
      double v = crl_tensor_get_flat(x, f);
      if (pass == 0) {
        if (!cnt[o]) s[o] = 0;
        if (!cnt[o] || v > m[o]) m[o] = v;
        cnt[o]++;
        s[o] += v;
        continue;
      }
      double mu = s[o] / (double)cnt[o];
      switch (op) {
      case N_LSE: out[o] += exp(v - m[o]); break;
      case N_VAR:
      case N_STD: out[o] += (v - mu) * (v - mu); break;
      case N_PROD: out[o] *= v; break;
      case N_NORM2: out[o] += v * v; break;
      case N_NORMINF: out[o] = fabs(v) > out[o] ? fabs(v) : out[o]; break;
      case N_ANY: out[o] = v > 0.5 ? 1 : out[o]; break;
      default: out[o] += v; break;
      }
    }
  for (int64_t o = 0; o < nout; o++) {
    double n = (double)cnt[o];
    if (op == N_MEAN) out[o] /= n;
    if (op == N_LSE) out[o] = m[o] + log(out[o]);
    if (op == N_VAR) out[o] /= n - 1;
    if (op == N_STD) out[o] = sqrt(out[o] / (n - 1));
    if (op == N_NORM2) out[o] = sqrt(out[o]);
  }
}

static crl_tensor *run_op(int op, crl_tensor *x, int nd, const int *dims,
                          bool keep) {
  switch (op) {
  case N_SUM: return crl_sum(x, nd, dims, keep);
  case N_MEAN: return crl_mean(x, nd, dims, keep);
  case N_PROD: return crl_prod(x, nd, dims, keep);
  case N_LSE: return crl_logsumexp(x, nd, dims, keep);
  case N_VAR: return crl_var(x, nd, dims, 1, keep);
  case N_STD: return crl_std(x, nd, dims, 1, keep);
  case N_NORM2: return crl_norm(x, 2, nd, dims, keep);
  case N_NORMINF: return crl_norm(x, INFINITY, nd, dims, keep);
  default: return crl_any(crl_gt_scalar(x, 0.5), nd, dims, keep);
  }
}

static void test_random_vs_naive(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 99);
  for (int trial = 0; trial < 90; trial++) {
    crl_scope_begin();
    int nd = 1 + (int)crl_rng_below(&g, 4);
    int64_t shape[4];
    for (int d = 0; d < nd; d++)
      shape[d] = 2 + (int64_t)crl_rng_below(&g, 3);
    crl_tensor *x =
        crl_randn(&g, trial % 3 == 2 ? CRL_FLOAT32 : CRL_FLOAT64, nd, shape);
    if (trial % 3 != 0) x = crl_transpose(x, 0, nd - 1); /* strided */
    unsigned mask = 1 + (unsigned)crl_rng_below(&g, (1u << nd) - 1);
    int dims[4], k = 0;
    for (int d = 0; d < nd; d++)
      if (mask >> d & 1) dims[k++] = crl_rng_below(&g, 2) ? d : d - nd;
    bool keep = crl_rng_below(&g, 2);
    int64_t nout = 1;
    for (int d = 0; d < nd; d++)
      if (!(mask >> d & 1)) nout *= x->shape[d];
    double tol = x->dtype == CRL_FLOAT32 ? 2e-5 : 1e-12;
    for (int op = 0; op < N_COUNT; op++) {
      double ref[64];
      naive_reduce(x, mask, op, ref, nout);
      crl_tensor *r = run_op(op, x, k, dims, keep);
      CRL_CHECK_PTR(r);
      assert_int_equal(r->ndim, keep ? nd : nd - k);
      for (int64_t o = 0; o < nout; o++) {
        double v = crl_tensor_get_flat(r, o);
        if (!(fabs(v - ref[o]) <= tol * (1 + fabs(ref[o]))))
          fail_msg("trial %d op %d mask %u out %lld: %.17g vs %.17g", trial, op,
                   mask, (long long)o, v, ref[o]);
      }
    }
    crl_scope_end();
  }
}

/* ---- gradients ----------------------------------------------------------- */

typedef struct {
  int nd;
  int dims[3];
  bool keep;
  int which;
  double p;
} gctx;

enum {
  G_SUM,
  G_MEAN,
  G_PROD,
  G_MAX,
  G_MIN,
  G_MAXALL,
  G_MINALL,
  G_LSE,
  G_VAR,
  G_STD,
  G_NORM
};

static crl_tensor *gfn(crl_tensor **in, void *vc) {
  const gctx *c = vc;
  crl_tensor *x = in[0];
  switch (c->which) {
  case G_SUM: return crl_sum(x, c->nd, c->dims, c->keep);
  case G_MEAN: return crl_mean(x, c->nd, c->dims, c->keep);
  case G_PROD: return crl_prod(x, c->nd, c->dims, c->keep);
  case G_MAX: return crl_max(x, c->dims[0], c->keep, NULL);
  case G_MIN: return crl_min(x, c->dims[0], c->keep, NULL);
  case G_MAXALL: return crl_max_all(x);
  case G_MINALL: return crl_min_all(x);
  case G_LSE: return crl_logsumexp(x, c->nd, c->dims, c->keep);
  case G_VAR: return crl_var(x, c->nd, c->dims, 1, c->keep);
  case G_STD: return crl_std(x, c->nd, c->dims, 1, c->keep);
  default: return crl_norm(x, c->p, c->nd, c->dims, c->keep);
  }
}

static void check_grad(int which, crl_tensor *x, int nd, const int *dims,
                       bool keep, double p) {
  gctx c = {.nd = nd, .keep = keep, .which = which, .p = p};
  for (int k = 0; k < nd; k++)
    c.dims[k] = dims[k];
  if (crl_gradcheck(gfn, &x, 1, &c, GC_TOL))
    fail_msg("op %d nd %d keep %d p %g: %s", which, nd, keep, p,
             crl_last_error());
}

static void test_grads(void **state) {
  (void)state;
  crl_tensor *x = randn_leaf64(3, CRL_SHAPE(3, 4, 5));
  const int all_ops[] = {G_SUM, G_MEAN, G_PROD, G_LSE, G_VAR, G_STD};
  const int dsets[][3] = {{0}, {1}, {2}, {0, 2}, {-1, 0}, {1, 2}};
  const int dn[] = {1, 1, 1, 2, 2, 2};
  for (size_t o = 0; o < sizeof all_ops / sizeof *all_ops; o++) {
    check_grad(all_ops[o], x, 0, NULL, false, 0);
    for (size_t s = 0; s < sizeof dn / sizeof *dn; s++)
      for (int keep = 0; keep < 2; keep++)
        check_grad(all_ops[o], x, dn[s], dsets[s], keep, 0);
  }
  for (int d = -1; d < 3; d++)
    for (int keep = 0; keep < 2; keep++) {
      check_grad(G_MAX, x, 1, (int[]){d}, keep, 0);
      check_grad(G_MIN, x, 1, (int[]){d}, keep, 0);
    }
  check_grad(G_MAXALL, x, 0, NULL, false, 0);
  check_grad(G_MINALL, x, 0, NULL, false, 0);
  const double ps[] = {2, 1, 3, 1.5, INFINITY, -INFINITY};
  for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
    check_grad(G_NORM, x, 0, NULL, false, ps[k]);
    check_grad(G_NORM, x, 1, (int[]){1}, true, ps[k]);
    check_grad(G_NORM, x, 2, (int[]){0, 2}, false, ps[k]);
  }
  /* strided input */
  crl_tensor *t = crl_transpose(x, 0, 2);
  crl_tensor *xs = crl_contiguous(t); /* a leaf with another layout */
  crl_tensor *leaf = crl_detach(crl_transpose(xs, 0, 2));
  CRL_CHECK_OK(crl_set_requires_grad(leaf, true));
  check_grad(G_SUM, leaf, 1, (int[]){1}, false, 0);
  check_grad(G_PROD, leaf, 2, (int[]){0, 2}, true, 0);
  check_grad(G_LSE, leaf, 1, (int[]){2}, false, 0);
}

static void test_grad_values(void **state) {
  (void)state;
  /* prod with zeros: exact products of the others */
  crl_tensor *x = leaf64(CRL_SHAPE(2, 3), (double[]){2, 0, 3, 0, 5, 0});
  CRL_CHECK_OK(crl_backward(
      crl_sum(crl_prod(x, 1, (int[]){1}, false), 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (double[]){0, 6, 0, 0, 0, 0}, 6, 0);
  check_grad(G_PROD, x, 1, (int[]){1}, false, 0);
  check_grad(G_PROD, x, 0, NULL, false, 0);
  /* max_all shares among ties; max(dim) goes to the first index */
  crl_tensor *y = leaf64(CRL_SHAPE(2, 2), (double[]){4, 1, 4, 4});
  CRL_CHECK_OK(crl_backward(crl_max_all(y), NULL));
  assert_tensor_values(y->grad, (double[]){1.0 / 3, 0, 1.0 / 3, 1.0 / 3}, 4,
                       1e-15);
  crl_zero_grad(y);
  CRL_CHECK_OK(
      crl_backward(crl_sum(crl_max(y, 1, false, NULL), 0, NULL, false), NULL));
  assert_tensor_values(y->grad, (double[]){1, 0, 1, 0}, 4, 0);
  /* mean / sum broadcast back (float32 path) */
  crl_tensor *f = crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 3));
  CRL_CHECK_OK(crl_set_requires_grad(f, true));
  CRL_CHECK_OK(crl_backward(
      crl_sum(crl_mean(f, 1, (int[]){0}, true), 0, NULL, false), NULL));
  assert_int_equal(f->grad->dtype, CRL_FLOAT32);
  for (int k = 0; k < 12; k++)
    ASSERT_NEAR(crl_tensor_get_flat(f->grad, k), 0.25, 0);
  /* norm at zero: gradient 0 rather than NaN */
  crl_tensor *z = leaf64(CRL_SHAPE(3), (double[]){0, 0, 0});
  CRL_CHECK_OK(crl_backward(crl_norm(z, 2, 0, NULL, false), NULL));
  assert_tensor_values(z->grad, (double[]){0, 0, 0}, 3, 0);
  /* logsumexp gradient is the softmax */
  crl_tensor *l = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  CRL_CHECK_OK(crl_backward(crl_logsumexp(l, 0, NULL, false), NULL));
  double s = exp(1) + exp(2) + exp(3);
  assert_tensor_values(l->grad, (double[]){exp(1) / s, exp(2) / s, exp(3) / s},
                       3, 1e-15);
  /* no graph without requires_grad / in no-grad mode */
  crl_tensor *q = crl_sum(crl_ones(CRL_FLOAT32, CRL_SHAPE(2)), 0, NULL, 0);
  assert_false(q->requires_grad);
  crl_no_grad_begin();
  assert_false(crl_sum(l, 0, NULL, false)->requires_grad);
  crl_no_grad_end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_sum_basic),
      CRL_TEST(test_sum_all_patterns),
      CRL_TEST(test_sum_column_row_sizes),
      CRL_TEST(test_sum_dtypes),
      CRL_TEST(test_sum_empty_and_scalar),
      CRL_TEST(test_reduce_errors),
      CRL_TEST(test_prod),
      CRL_TEST(test_any_all),
      CRL_TEST(test_max_min),
      CRL_TEST(test_max_long_rows),
      CRL_TEST(test_logsumexp_var_std_norm),
      CRL_TEST(test_threads_bit_identical),
      CRL_TEST(test_sum_accuracy),
      CRL_TEST(test_random_vs_naive),
      CRL_TEST(test_grads),
      CRL_TEST(test_grad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
