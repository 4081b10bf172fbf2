/* crl_matmul (torch.matmul semantics) and crl_linear: values against naive
 * loops, shape rules, strided/transposed/broadcast operands, errors, and
 * gradients. */
#include "test_util.h"

/* Reference: element (batch index bi..., i, j) of matmul computed with
 * crl_tensor_get on broadcast indices. a and b are >= 2-D here. */
static double ref_elem(const crl_tensor *a, const crl_tensor *b, int nbo,
                       const int64_t *bidx, int64_t i, int64_t j) {
  int64_t ia[CRL_MAX_DIMS], ib[CRL_MAX_DIMS];
  int nba = a->ndim - 2, nbb = b->ndim - 2;
  for (int d = 0; d < nba; d++) {
    int64_t v = bidx[nbo - nba + d];
    ia[d] = a->shape[d] == 1 ? 0 : v;
  }
  for (int d = 0; d < nbb; d++) {
    int64_t v = bidx[nbo - nbb + d];
    ib[d] = b->shape[d] == 1 ? 0 : v;
  }
  double s = 0;
  int64_t K = a->shape[a->ndim - 1];
  for (int64_t k = 0; k < K; k++) {
    ia[nba] = i, ia[nba + 1] = k;
    ib[nbb] = k, ib[nbb + 1] = j;
    s += crl_tensor_get(a, ia) * crl_tensor_get(b, ib);
  }
  return s;
}

/* Check c = a @ b for a, b >= 2-D (any strides). */
static void check_matmul_nd(crl_tensor *a, crl_tensor *b, double tol) {
  crl_tensor *c = crl_matmul(a, b);
  CRL_CHECK_PTR(c);
  int nbo = c->ndim - 2;
  int64_t n = c->shape[nbo], m = c->shape[nbo + 1];
  int64_t nb = 1, bidx[CRL_MAX_DIMS] = {0}, ci[CRL_MAX_DIMS];
  for (int d = 0; d < nbo; d++)
    nb *= c->shape[d];
  for (int64_t q = 0; q < nb; q++) {
    int64_t r = q;
    for (int d = nbo - 1; d >= 0; d--) {
      bidx[d] = r % c->shape[d];
      r /= c->shape[d];
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) {
        memcpy(ci, bidx, sizeof(int64_t) * (size_t)nbo);
        ci[nbo] = i, ci[nbo + 1] = j;
        ASSERT_NEAR(crl_tensor_get(c, ci), ref_elem(a, b, nbo, bidx, i, j),
                    tol);
      }
  }
}

static void test_matmul_2d_values(void **state) {
  (void)state;
  const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
  crl_tensor *a = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), av);
  crl_tensor *b = crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 2), bv);
  crl_tensor *c = crl_matmul(a, b);
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(2, 2));
  assert_int_equal(c->dtype, CRL_FLOAT32);
  const double want[] = {58, 64, 139, 154};
  assert_tensor_values(c, want, 4, 0);
}

static void test_matmul_1d_cases(void **state) {
  (void)state;
  const double av[] = {1, 2, 3}, mv[] = {1, 2, 3, 4, 5, 6};
  crl_tensor *v = crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), av);
  crl_tensor *m32 = crl_from_array(CRL_FLOAT64, CRL_SHAPE(3, 2), mv);
  crl_tensor *m23 = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 3), mv);
  /* [3] @ [3, 2] -> [2] */
  crl_tensor *r = crl_matmul(v, m32);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(2));
  assert_tensor_values(r, (const double[]){22, 28}, 2, 0);
  /* [2, 3] @ [3] -> [2] */
  r = crl_matmul(m23, v);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(2));
  assert_tensor_values(r, (const double[]){14, 32}, 2, 0);
  /* [3] @ [3] -> [] */
  r = crl_matmul(v, v);
  CRL_CHECK_PTR(r);
  assert_int_equal(r->ndim, 0);
  ASSERT_NEAR(crl_item(r), 14, 0);
  /* [3] @ [4, 3, 2] -> [4, 2]; [4, 2, 3] @ [3] -> [4, 2] */
  crl_tensor *b3 = seeded_randn(1, CRL_FLOAT64, CRL_SHAPE(4, 3, 2));
  r = crl_matmul(v, b3);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(4, 2));
  for (int64_t q = 0; q < 4; q++)
    for (int64_t j = 0; j < 2; j++) {
      double s = 0;
      for (int64_t k = 0; k < 3; k++)
        s += av[k] * crl_tensor_get(b3, (const int64_t[]){q, k, j});
      ASSERT_NEAR(crl_tensor_get(r, (const int64_t[]){q, j}), s, 1e-12);
    }
  crl_tensor *a3 = seeded_randn(2, CRL_FLOAT64, CRL_SHAPE(4, 2, 3));
  r = crl_matmul(a3, v);
  CRL_CHECK_PTR(r);
  assert_shape(r, CRL_SHAPE(4, 2));
  for (int64_t q = 0; q < 4; q++)
    for (int64_t i = 0; i < 2; i++) {
      double s = 0;
      for (int64_t k = 0; k < 3; k++)
        s += crl_tensor_get(a3, (const int64_t[]){q, i, k}) * av[k];
      ASSERT_NEAR(crl_tensor_get(r, (const int64_t[]){q, i}), s, 1e-12);
    }
}

static void test_matmul_batched_broadcast(void **state) {
  (void)state;
  /* [2, 1, 3, 4] @ [5, 4, 2] -> [2, 5, 3, 2] */
  crl_tensor *a = seeded_randn(3, CRL_FLOAT32, CRL_SHAPE(2, 1, 3, 4));
  crl_tensor *b = seeded_randn(4, CRL_FLOAT32, CRL_SHAPE(5, 4, 2));
  crl_tensor *c = crl_matmul(a, b);
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(2, 5, 3, 2));
  check_matmul_nd(a, b, 1e-5);
  /* folded: [4, 3, 5] @ [5, 6] and [3, 5] @ [4, 5, 6], and both batched */
  check_matmul_nd(seeded_randn(5, CRL_FLOAT32, CRL_SHAPE(4, 3, 5)),
                  seeded_randn(6, CRL_FLOAT32, CRL_SHAPE(5, 6)), 1e-5);
  check_matmul_nd(seeded_randn(7, CRL_FLOAT64, CRL_SHAPE(3, 5)),
                  seeded_randn(8, CRL_FLOAT64, CRL_SHAPE(4, 5, 6)), 1e-12);
  check_matmul_nd(seeded_randn(9, CRL_FLOAT64, CRL_SHAPE(2, 3, 7, 5)),
                  seeded_randn(10, CRL_FLOAT64, CRL_SHAPE(2, 3, 5, 33)), 1e-12);
  /* b with a size-1 batch: [1, 4, 2] against [3, 3, 4] */
  check_matmul_nd(seeded_randn(11, CRL_FLOAT64, CRL_SHAPE(3, 3, 4)),
                  seeded_randn(12, CRL_FLOAT64, CRL_SHAPE(1, 4, 2)), 1e-12);
}

static void test_matmul_strided_operands(void **state) {
  (void)state;
  crl_tensor *a = seeded_randn(20, CRL_FLOAT64, CRL_SHAPE(6, 5));
  crl_tensor *b = seeded_randn(21, CRL_FLOAT64, CRL_SHAPE(7, 6));
  /* transposed views: trans flags, no copies */
  check_matmul_nd(crl_transpose(a, 0, 1), crl_transpose(b, 0, 1), 1e-12);
  check_matmul_nd(b, a, 1e-12);
  check_matmul_nd(
      b, crl_transpose(seeded_randn(28, CRL_FLOAT64, CRL_SHAPE(5, 6)), 0, 1),
      1e-12);
  /* every second row / column: strided rows (ld > cols) and a layout GEMM
   * cannot take (no unit stride) */
  crl_tensor *big = seeded_randn(22, CRL_FLOAT64, CRL_SHAPE(10, 12));
  crl_tensor *rows = crl_slice(big, 0, 0, 10, 2);  /* [5, 12], ld 24 */
  crl_tensor *both = crl_slice(rows, 1, 0, 12, 2); /* [5, 6], no unit */
  CRL_CHECK_PTR(both);
  check_matmul_nd(crl_transpose(rows, 0, 1), rows, 1e-12);
  check_matmul_nd(both, crl_transpose(both, 0, 1), 1e-12);
  /* broadcast operand: expanded batch (stride 0) and an expanded matrix */
  crl_tensor *m = seeded_randn(23, CRL_FLOAT64, CRL_SHAPE(1, 4, 3));
  crl_tensor *e = crl_expand(m, CRL_SHAPE(5, 4, 3));
  check_matmul_nd(e, seeded_randn(24, CRL_FLOAT64, CRL_SHAPE(5, 3, 2)), 1e-12);
  crl_tensor *row = seeded_randn(25, CRL_FLOAT64, CRL_SHAPE(1, 3));
  check_matmul_nd(crl_expand(row, CRL_SHAPE(4, 3)),
                  seeded_randn(26, CRL_FLOAT64, CRL_SHAPE(3, 2)), 1e-12);
  /* a batched transposed view: [2, 3, 4] -> [2, 4, 3] */
  crl_tensor *t3 = seeded_randn(27, CRL_FLOAT32, CRL_SHAPE(2, 3, 4));
  check_matmul_nd(crl_transpose(t3, 1, 2), t3, 1e-5);
  check_matmul_nd(t3, crl_transpose(t3, 1, 2), 1e-5);
}

static void test_matmul_empty(void **state) {
  (void)state;
  crl_tensor *a = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 0));
  crl_tensor *b = crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 2));
  crl_tensor *c = crl_matmul(a, b); /* K = 0: zeros */
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(3, 2));
  assert_tensor_values(c, (const double[]){0, 0, 0, 0, 0, 0}, 6, 0);
  c = crl_matmul(b, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 4)));
  CRL_CHECK_PTR(c);
  assert_shape(c, CRL_SHAPE(0, 4));
}

static void test_matmul_errors(void **state) {
  (void)state;
  crl_tensor *a = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  crl_tensor *b = crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 5));
  assert_null(crl_matmul(a, b));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("matmul");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  CRL_ASSERT_ERR_HAS("[4, 5]");
  /* batch dims that do not broadcast */
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3, 4, 5));
  crl_tensor *y = crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 5, 6));
  assert_null(crl_matmul(x, y));
  CRL_ASSERT_ERR_HAS("[2, 3, 4, 5]");
  CRL_ASSERT_ERR_HAS("[4, 5, 6]");
  CRL_ASSERT_ERR_HAS("broadcast");
  /* 0-dim, dtypes, NULL */
  assert_null(crl_matmul(crl_scalar(CRL_FLOAT32, 1), a));
  CRL_ASSERT_ERR_HAS("at least 1 dim");
  crl_tensor *d = crl_ones(CRL_FLOAT64, CRL_SHAPE(3, 2));
  assert_null(crl_matmul(a, d));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float32");
  CRL_ASSERT_ERR_HAS("float64");
  crl_tensor *i = crl_ones(CRL_INT64, CRL_SHAPE(3, 2));
  assert_null(crl_matmul(crl_ones(CRL_INT64, CRL_SHAPE(2, 3)), i));
  CRL_ASSERT_ERR_HAS("int64");
  assert_null(crl_matmul(NULL, a));
  CRL_ASSERT_ERR_HAS("matmul");
  /* inputs unchanged */
  assert_tensor_values(a, (const double[]){1, 1, 1, 1, 1, 1}, 6, 0);
}

/* ---- linear ----------------------------------------------------------------
 */

static void check_linear(crl_tensor *x, crl_tensor *w, crl_tensor *bias,
                         double tol) {
  crl_tensor *y = crl_linear(x, w, bias);
  CRL_CHECK_PTR(y);
  int64_t in = w->shape[1], out = w->shape[0];
  assert_int_equal(y->ndim, x->ndim);
  for (int d = 0; d < x->ndim - 1; d++)
    assert_int_equal(y->shape[d], x->shape[d]);
  assert_int_equal(y->shape[y->ndim - 1], out);
  int64_t rows = y->numel / (out ? out : 1);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < out; j++) {
      double s = bias ? crl_tensor_get(bias, (const int64_t[]){j}) : 0;
      for (int64_t k = 0; k < in; k++)
        s += crl_tensor_get_flat(x, r * in + k) *
             crl_tensor_get(w, (const int64_t[]){j, k});
      ASSERT_NEAR(crl_tensor_get_flat(y, r * out + j), s, tol);
    }
}

static void test_linear_values(void **state) {
  (void)state;
  const float xv[] = {1, 2, 3, 4, 5, 6}, wv[] = {1, 0, -1, 2, 1, 0},
              bv[] = {0.5f, -1};
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), xv);
  crl_tensor *w = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), wv);
  crl_tensor *b = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), bv);
  crl_tensor *y = crl_linear(x, w, b);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(2, 2));
  /* [1 2 3].[1 0 -1] = -2, [1 2 3].[2 1 0] = 4, [4 5 6] -> -2, 13 */
  assert_tensor_values(y, (const double[]){-1.5, 3, -1.5, 12}, 4, 1e-6);
  y = crl_linear(x, w, NULL);
  CRL_CHECK_PTR(y);
  assert_tensor_values(y, (const double[]){-2, 4, -2, 13}, 4, 1e-6);
  /* 1-D input */
  y = crl_linear(crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), xv), w, b);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(2));
  assert_tensor_values(y, (const double[]){-1.5, 3}, 2, 1e-6);
}

static void test_linear_shapes_layouts(void **state) {
  (void)state;
  /* 3-D input, shapes hitting several kernel paths */
  check_linear(seeded_randn(30, CRL_FLOAT32, CRL_SHAPE(2, 5, 7)),
               seeded_randn(31, CRL_FLOAT32, CRL_SHAPE(3, 7)),
               seeded_randn(32, CRL_FLOAT32, CRL_SHAPE(3)), 1e-5);
  check_linear(seeded_randn(33, CRL_FLOAT32, CRL_SHAPE(64, 64)),
               seeded_randn(34, CRL_FLOAT32, CRL_SHAPE(64, 64)),
               seeded_randn(35, CRL_FLOAT32, CRL_SHAPE(64)), 1e-4);
  check_linear(seeded_randn(36, CRL_FLOAT64, CRL_SHAPE(1, 64)),
               seeded_randn(37, CRL_FLOAT64, CRL_SHAPE(2, 64)), NULL, 1e-12);
  /* transposed weight view, strided input rows, strided bias */
  crl_tensor *wt = seeded_randn(38, CRL_FLOAT64, CRL_SHAPE(5, 4));
  crl_tensor *xs =
      crl_slice(seeded_randn(39, CRL_FLOAT64, CRL_SHAPE(6, 5)), 0, 0, 6, 2);
  crl_tensor *bs =
      crl_slice(seeded_randn(40, CRL_FLOAT64, CRL_SHAPE(8)), 0, 0, 8, 2);
  check_linear(xs, crl_transpose(wt, 0, 1), bs, 1e-12);
  /* a non-contiguous 3-D input (transposed leading dims) */
  crl_tensor *x3 =
      crl_transpose(seeded_randn(41, CRL_FLOAT64, CRL_SHAPE(3, 2, 5)), 0, 1);
  check_linear(x3, seeded_randn(42, CRL_FLOAT64, CRL_SHAPE(4, 5)), NULL, 1e-12);
  /* zero in_features: output is the bias */
  crl_tensor *y = crl_linear(
      crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 0)),
      crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 0)),
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (const float[]){1, 2, 3}));
  CRL_CHECK_PTR(y);
  assert_tensor_values(y, (const double[]){1, 2, 3, 1, 2, 3}, 6, 0);
}

static void test_linear_errors(void **state) {
  (void)state;
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 3));
  crl_tensor *w = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 5));
  assert_null(crl_linear(x, w, NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("linear");
  CRL_ASSERT_ERR_HAS("[4, 3]");
  CRL_ASSERT_ERR_HAS("[2, 5]");
  crl_tensor *w2 = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3));
  assert_null(crl_linear(x, w2, crl_ones(CRL_FLOAT32, CRL_SHAPE(3))));
  CRL_ASSERT_ERR_HAS("bias shape [3]");
  assert_null(crl_linear(x, w2, crl_ones(CRL_FLOAT64, CRL_SHAPE(2))));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_linear(x, crl_ones(CRL_FLOAT64, CRL_SHAPE(2, 3)), NULL));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_linear(crl_scalar(CRL_FLOAT32, 1), w2, NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_linear(x, NULL, NULL));
  assert_tensor_values(x, (const double[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                       12, 0);
}

/* ---- gradients ------------------------------------------------------------
 */

static crl_tensor *mm_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_matmul(in[0], in[1]);
}
static crl_tensor *mm_tt_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_matmul(crl_transpose(in[0], -1, -2), crl_transpose(in[1], -1, -2));
}
static crl_tensor *lin_fn(crl_tensor **in, void *ctx) {
  (void)ctx;
  return crl_linear(in[0], in[1], in[2]);
}

static void gradcheck2(crl_gradcheck_fn fn, crl_tensor *a, crl_tensor *b) {
  crl_tensor *in[2] = {a, b};
  CRL_CHECK_OK(crl_gradcheck(fn, in, 2, NULL, 1e-6, 1e-6, 1e-4));
}

static void test_matmul_grad(void **state) {
  (void)state;
  gradcheck2(mm_fn, randn_leaf64(50, CRL_SHAPE(3, 4)),
             randn_leaf64(51, CRL_SHAPE(4, 2)));
  gradcheck2(mm_fn, randn_leaf64(52, CRL_SHAPE(4)),
             randn_leaf64(53, CRL_SHAPE(4, 3)));
  gradcheck2(mm_fn, randn_leaf64(54, CRL_SHAPE(3, 4)),
             randn_leaf64(55, CRL_SHAPE(4)));
  gradcheck2(mm_fn, randn_leaf64(56, CRL_SHAPE(5)),
             randn_leaf64(57, CRL_SHAPE(5)));
  gradcheck2(mm_fn, randn_leaf64(58, CRL_SHAPE(2, 1, 3, 4)),
             randn_leaf64(59, CRL_SHAPE(5, 4, 2)));
  gradcheck2(mm_fn, randn_leaf64(60, CRL_SHAPE(2, 3, 4)),
             randn_leaf64(61, CRL_SHAPE(4, 2)));
  gradcheck2(mm_fn, randn_leaf64(62, CRL_SHAPE(3, 4)),
             randn_leaf64(63, CRL_SHAPE(2, 4, 2)));
  gradcheck2(mm_fn, randn_leaf64(64, CRL_SHAPE(4)),
             randn_leaf64(65, CRL_SHAPE(2, 4, 3)));
  gradcheck2(mm_fn, randn_leaf64(66, CRL_SHAPE(2, 3, 4)),
             randn_leaf64(67, CRL_SHAPE(4)));
  gradcheck2(mm_tt_fn, randn_leaf64(68, CRL_SHAPE(2, 4, 3)),
             randn_leaf64(69, CRL_SHAPE(2, 5, 4)));
  /* only one input requires grad */
  crl_tensor *c = crl_ones(CRL_FLOAT64, CRL_SHAPE(4, 2));
  gradcheck2(mm_fn, randn_leaf64(70, CRL_SHAPE(3, 4)), c);
}

static void test_linear_grad(void **state) {
  (void)state;
  crl_tensor *in[3] = {randn_leaf64(80, CRL_SHAPE(5, 4)),
                       randn_leaf64(81, CRL_SHAPE(3, 4)),
                       randn_leaf64(82, CRL_SHAPE(3))};
  CRL_CHECK_OK(crl_gradcheck(lin_fn, in, 3, NULL, 1e-6, 1e-6, 1e-4));
  in[2] = NULL; /* no bias */
  CRL_CHECK_OK(crl_gradcheck(lin_fn, in, 3, NULL, 1e-6, 1e-6, 1e-4));
  /* 3-D input */
  crl_tensor *in3[3] = {randn_leaf64(83, CRL_SHAPE(2, 3, 4)),
                        randn_leaf64(84, CRL_SHAPE(5, 4)),
                        randn_leaf64(85, CRL_SHAPE(5))};
  CRL_CHECK_OK(crl_gradcheck(lin_fn, in3, 3, NULL, 1e-6, 1e-6, 1e-4));
  /* 1-D input, and a weight that does not require grad */
  crl_tensor *in1[3] = {randn_leaf64(86, CRL_SHAPE(4)),
                        crl_ones(CRL_FLOAT64, CRL_SHAPE(2, 4)),
                        randn_leaf64(87, CRL_SHAPE(2))};
  CRL_CHECK_OK(crl_gradcheck(lin_fn, in1, 3, NULL, 1e-6, 1e-6, 1e-4));
}

/* Backward values by hand: y = x W^T + b, L = sum(y). dL/dx = 1 W (column
 * sums of W per input), dL/dW = 1^T x, dL/db = rows. */
static void test_linear_backward_values(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2, 3), (const double[]){1, 2, 3, 4, 5, 6});
  crl_tensor *w = leaf64(CRL_SHAPE(2, 3), (const double[]){1, 0, -1, 2, 1, 0});
  crl_tensor *b = leaf64(CRL_SHAPE(2), (const double[]){0.5, -1});
  crl_tensor *y = crl_linear(x, w, b);
  CRL_CHECK_PTR(y);
  CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
  assert_tensor_values(x->grad, (const double[]){3, 1, -1, 3, 1, -1}, 6, 0);
  assert_tensor_values(w->grad, (const double[]){5, 7, 9, 5, 7, 9}, 6, 0);
  assert_tensor_values(b->grad, (const double[]){2, 2}, 2, 0);
  crl_zero_grad(x);
  crl_zero_grad(w);
  crl_zero_grad(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_matmul_2d_values),
      CRL_TEST(test_matmul_1d_cases),
      CRL_TEST(test_matmul_batched_broadcast),
      CRL_TEST(test_matmul_strided_operands),
      CRL_TEST(test_matmul_empty),
      CRL_TEST(test_matmul_errors),
      CRL_TEST(test_linear_values),
      CRL_TEST(test_linear_shapes_layouts),
      CRL_TEST(test_linear_errors),
      CRL_TEST(test_matmul_grad),
      CRL_TEST(test_linear_grad),
      CRL_TEST(test_linear_backward_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
