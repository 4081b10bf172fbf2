/* crl_conv2d against a direct convolution, crl_max_pool2d against a naive
 * pooling loop, thread-count independence, errors and gradients. */
#include <stdlib.h>

#include "test_util.h"

static double *values(const crl_tensor *t) {
  double *v = malloc(sizeof(double) * (size_t)(t->numel + 1));
  assert_non_null(v);
  CRL_CHECK_OK(crl_tensor_to_array(t, CRL_FLOAT64, v, t->numel));
  return v;
}

/* y = conv2d(x, w, b) computed directly and compared with crl_conv2d */
static void check_conv(crl_tensor *x, crl_tensor *w, crl_tensor *b, int sh,
                       int sw, int ph, int pw, double tol) {
  crl_tensor *y = crl_conv2d(x, w, b, sh, sw, ph, pw);
  CRL_CHECK_PTR(y);
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2],
                W = x->shape[3], O = w->shape[0], kh = w->shape[2],
                kw = w->shape[3];
  const int64_t OH = (H + 2 * ph - kh) / sh + 1,
                OW = (W + 2 * pw - kw) / sw + 1;
  assert_shape(y, CRL_SHAPE(N, O, OH, OW));
  double *xv = values(x), *wv = values(w), *yv = values(y);
  double *bv = b ? values(b) : NULL;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double s = bv ? bv[o] : 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < kh; i++)
              for (int64_t j = 0; j < kw; j++) {
                int64_t ih = oh * sh - ph + i, iw = ow * sw - pw + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += xv[((n * C + c) * H + ih) * W + iw] *
                     wv[((o * C + c) * kh + i) * kw + j];
              }
          double got = yv[((n * O + o) * OH + oh) * OW + ow];
          if (!(fabs(got - s) <= tol * (1 + fabs(s))))
            fail_msg("conv2d y[%lld,%lld,%lld,%lld] = %.9g, expected %.9g",
                     (long long)n, (long long)o, (long long)oh, (long long)ow,
                     got, s);
        }
  free(xv);
  free(wv);
  free(yv);
  free(bv);
}

static void test_conv_values(void **state) {
  (void)state;
  /* hand-computed: 1 channel 3x3 input, 2x2 ones kernel, bias 1 */
  const float xv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1, 3, 3), xv);
  crl_tensor *w = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 1, 2, 2));
  crl_tensor *b = crl_ones(CRL_FLOAT32, CRL_SHAPE(1));
  crl_tensor *y = crl_conv2d(x, w, b, 1, 1, 0, 0);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(1, 1, 2, 2));
  assert_tensor_values(y, (const double[]){13, 17, 25, 29}, 4, 0);
  /* stride 2, padding 1: windows centred on the corners */
  y = crl_conv2d(x, w, NULL, 2, 2, 1, 1);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(1, 1, 2, 2));
  assert_tensor_values(y, (const double[]){1, 5, 11, 28}, 4, 0);
}

static void test_conv_against_direct(void **state) {
  (void)state;
  const crl_dtype dts[2] = {CRL_FLOAT32, CRL_FLOAT64};
  for (int d = 0; d < 2; d++) {
    crl_dtype dt = dts[d];
    double tol = dt == CRL_FLOAT32 ? 1e-5 : 1e-12;
    check_conv(seeded_randn(1, dt, CRL_SHAPE(2, 3, 7, 6)),
               seeded_randn(2, dt, CRL_SHAPE(4, 3, 3, 2)),
               seeded_randn(3, dt, CRL_SHAPE(4)), 1, 1, 0, 0, tol);
    check_conv(seeded_randn(4, dt, CRL_SHAPE(3, 2, 9, 8)),
               seeded_randn(5, dt, CRL_SHAPE(5, 2, 3, 3)), NULL, 2, 2, 1, 1,
               tol);
    /* the Atari-style layer in small: 8x8 kernels, stride 4 */
    check_conv(seeded_randn(6, dt, CRL_SHAPE(2, 4, 20, 20)),
               seeded_randn(7, dt, CRL_SHAPE(3, 4, 8, 8)),
               seeded_randn(8, dt, CRL_SHAPE(3)), 4, 4, 0, 0, tol);
    /* 1x1 (no im2col), asymmetric stride/padding, padding > kernel/2 */
    check_conv(seeded_randn(9, dt, CRL_SHAPE(9, 5, 4, 3)),
               seeded_randn(10, dt, CRL_SHAPE(6, 5, 1, 1)),
               seeded_randn(11, dt, CRL_SHAPE(6)), 1, 1, 0, 0, tol);
    check_conv(seeded_randn(12, dt, CRL_SHAPE(1, 2, 6, 11)),
               seeded_randn(13, dt, CRL_SHAPE(3, 2, 2, 4)), NULL, 1, 3, 2, 0,
               tol);
    check_conv(seeded_randn(14, dt, CRL_SHAPE(2, 1, 5, 5)),
               seeded_randn(15, dt, CRL_SHAPE(2, 1, 3, 3)), NULL, 3, 1, 3, 3,
               tol);
    /* padding larger than the kernel: whole patches in the padding */
    check_conv(seeded_randn(21, dt, CRL_SHAPE(1, 2, 3, 4)),
               seeded_randn(22, dt, CRL_SHAPE(2, 2, 2, 3)), NULL, 1, 2, 4, 5,
               tol);
    /* 1x1 kernel but strided: im2row path */
    check_conv(seeded_randn(16, dt, CRL_SHAPE(2, 3, 5, 5)),
               seeded_randn(17, dt, CRL_SHAPE(2, 3, 1, 1)), NULL, 2, 2, 0, 0,
               tol);
  }
  /* non-contiguous input and weight, strided bias */
  crl_tensor *xt =
      crl_transpose(seeded_randn(18, CRL_FLOAT64, CRL_SHAPE(2, 3, 6, 5)), 2, 3);
  crl_tensor *wt =
      crl_transpose(seeded_randn(19, CRL_FLOAT64, CRL_SHAPE(3, 4, 2, 3)), 0, 1);
  crl_tensor *bs =
      crl_slice(seeded_randn(20, CRL_FLOAT64, CRL_SHAPE(8)), 0, 0, 8, 2);
  check_conv(xt, wt, bs, 1, 2, 1, 0, 1e-12);
}

/* Results are bit-identical with 1 and 3 pool threads (fixed chunks). */
static void test_conv_thread_independent(void **state) {
  (void)state;
  crl_tensor *x = seeded_randn(30, CRL_FLOAT32, CRL_SHAPE(11, 3, 12, 12));
  crl_tensor *w = seeded_randn(31, CRL_FLOAT32, CRL_SHAPE(4, 3, 4, 4));
  crl_tensor *b = seeded_randn(32, CRL_FLOAT32, CRL_SHAPE(4));
  CRL_CHECK_OK(crl_set_requires_grad(x, true));
  CRL_CHECK_OK(crl_set_requires_grad(w, true));
  CRL_CHECK_OK(crl_set_requires_grad(b, true));
  crl_tensor *res[2][4];
  int prev = crl_get_num_threads();
  for (int r = 0; r < 2; r++) {
    CRL_CHECK_OK(crl_set_num_threads(r ? 3 : 1));
    crl_zero_grad(x);
    crl_zero_grad(w);
    crl_zero_grad(b);
    crl_tensor *y = crl_conv2d(x, w, b, 2, 2, 1, 1);
    CRL_CHECK_PTR(y);
    crl_tensor *p = crl_max_pool2d(y, 2, 2, 2, 2, 0, 0);
    CRL_CHECK_PTR(p);
    CRL_CHECK_OK(crl_backward(crl_sum(crl_mul(p, p), 0, NULL, false), NULL));
    res[r][0] = p, res[r][1] = x->grad, res[r][2] = w->grad;
    res[r][3] = b->grad;
    for (int i = 1; i < 4; i++)
      crl_tensor_retain(res[r][i]);
  }
  CRL_CHECK_OK(crl_set_num_threads(prev));
  for (int i = 0; i < 4; i++) {
    assert_true(crl_equal(res[0][i], res[1][i]));
    if (i) {
      crl_tensor_release(res[0][i]);
      crl_tensor_release(res[1][i]);
    }
  }
  crl_zero_grad(x);
  crl_zero_grad(w);
  crl_zero_grad(b);
}

static void test_conv_errors(void **state) {
  (void)state;
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 3, 5, 5));
  crl_tensor *w = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 4, 3, 3));
  assert_null(crl_conv2d(x, w, NULL, 1, 1, 0, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("conv2d");
  CRL_ASSERT_ERR_HAS("[1, 3, 5, 5]");
  CRL_ASSERT_ERR_HAS("[2, 4, 3, 3]");
  crl_tensor *w3 = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3, 3, 3));
  assert_null(crl_conv2d(x, w3, NULL, 0, 1, 0, 0));
  CRL_ASSERT_ERR_HAS("stride");
  assert_null(crl_conv2d(x, w3, NULL, 1, 1, -1, 0));
  CRL_ASSERT_ERR_HAS("padding");
  crl_tensor *big = crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 3, 8, 8));
  assert_null(crl_conv2d(x, big, NULL, 1, 1, 1, 1));
  CRL_ASSERT_ERR_HAS("smaller than the kernel");
  assert_null(
      crl_conv2d(x, w3, crl_ones(CRL_FLOAT32, CRL_SHAPE(3)), 1, 1, 0, 0));
  CRL_ASSERT_ERR_HAS("bias shape [3]");
  assert_null(crl_conv2d(x, crl_ones(CRL_FLOAT64, CRL_SHAPE(2, 3, 3, 3)), NULL,
                         1, 1, 0, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_conv2d(crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 5, 5)), w3, NULL, 1,
                         1, 0, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_conv2d(NULL, w3, NULL, 1, 1, 0, 0));
  double ones[75];
  for (int i = 0; i < 75; i++)
    ones[i] = 1;
  assert_tensor_values(x, ones, 75, 0);
}

/* ---- max_pool2d -----------------------------------------------------------
 */

static void check_pool(crl_tensor *x, int kh, int kw, int sh, int sw, int ph,
                       int pw) {
  crl_tensor *y = crl_max_pool2d(x, kh, kw, sh, sw, ph, pw);
  CRL_CHECK_PTR(y);
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2],
                W = x->shape[3];
  const int64_t OH = (H + 2 * ph - kh) / sh + 1,
                OW = (W + 2 * pw - kw) / sw + 1;
  assert_shape(y, CRL_SHAPE(N, C, OH, OW));
  double *xv = values(x), *yv = values(y);
  for (int64_t p = 0; p < N * C; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double m = -INFINITY;
        for (int64_t i = 0; i < kh; i++)
          for (int64_t j = 0; j < kw; j++) {
            int64_t ih = oh * sh - ph + i, iw = ow * sw - pw + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            double v = xv[(p * H + ih) * W + iw];
            if (v > m) m = v;
          }
        ASSERT_NEAR(yv[(p * OH + oh) * OW + ow], m, 0);
      }
  free(xv);
  free(yv);
}

static void test_pool_values(void **state) {
  (void)state;
  const float xv[] = {1, 5, 2, 0, 3, 4, 8, 1, 0, 0, 1, 2, 9, 1, 3, 7};
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(1, 1, 4, 4), xv);
  crl_tensor *y = crl_max_pool2d(x, 2, 2, 2, 2, 0, 0);
  CRL_CHECK_PTR(y);
  assert_shape(y, CRL_SHAPE(1, 1, 2, 2));
  assert_tensor_values(y, (const double[]){5, 8, 9, 7}, 4, 0);
  check_pool(seeded_randn(40, CRL_FLOAT32, CRL_SHAPE(2, 3, 9, 7)), 3, 3, 2, 2,
             1, 1);
  check_pool(seeded_randn(41, CRL_FLOAT64, CRL_SHAPE(3, 2, 8, 8)), 2, 3, 1, 2,
             1, 0);
  check_pool(seeded_randn(42, CRL_FLOAT64, CRL_SHAPE(70, 1, 5, 6)), 5, 2, 5, 2,
             2, 1);
  /* non-contiguous input */
  check_pool(
      crl_transpose(seeded_randn(43, CRL_FLOAT32, CRL_SHAPE(2, 2, 6, 5)), 2, 3),
      2, 2, 2, 2, 0, 0);
  /* NaN propagates */
  const double nv[] = {1, NAN, 3, 4};
  crl_tensor *xn = crl_from_array(CRL_FLOAT64, CRL_SHAPE(1, 1, 2, 2), nv);
  y = crl_max_pool2d(xn, 2, 2, 2, 2, 0, 0);
  CRL_CHECK_PTR(y);
  assert_true(isnan(crl_item(y)));
}

static void test_pool_backward_values(void **state) {
  (void)state;
  const double xv[] = {1, 5, 2, 0, 3, 4, 8, 1, 0, 0, 1, 2, 9, 1, 3, 7};
  crl_tensor *x = leaf64(CRL_SHAPE(1, 1, 4, 4), xv);
  /* overlapping windows (3x3, stride 1): the 8 and the 9 win several */
  crl_tensor *y = crl_max_pool2d(x, 3, 3, 1, 1, 0, 0);
  CRL_CHECK_PTR(y);
  assert_tensor_values(y, (const double[]){8, 8, 9, 8}, 4, 0);
  CRL_CHECK_OK(crl_backward(crl_sum(y, 0, NULL, false), NULL));
  const double want[] = {0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  assert_tensor_values(x->grad, want, 16, 0);
  crl_zero_grad(x);
}

static void test_pool_errors(void **state) {
  (void)state;
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1, 1, 4, 4));
  assert_null(crl_max_pool2d(x, 0, 2, 1, 1, 0, 0));
  CRL_ASSERT_ERR_HAS("max_pool2d");
  assert_null(crl_max_pool2d(x, 2, 2, 1, 1, 2, 0));
  CRL_ASSERT_ERR_HAS("padding (2, 0)");
  assert_null(crl_max_pool2d(x, 5, 5, 1, 1, 0, 0));
  CRL_ASSERT_ERR_HAS("[1, 1, 4, 4]");
  assert_null(
      crl_max_pool2d(crl_ones(CRL_FLOAT32, CRL_SHAPE(4, 4)), 2, 2, 1, 1, 0, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_max_pool2d(crl_ones(CRL_INT64, CRL_SHAPE(1, 1, 4, 4)), 2, 2,
                             1, 1, 0, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_max_pool2d(NULL, 2, 2, 1, 1, 0, 0));
}

/* ---- gradients ------------------------------------------------------------
 */

typedef struct {
  int sh, sw, ph, pw;
} conv_args;

static crl_tensor *conv_fn(crl_tensor **in, void *ctx) {
  const conv_args *a = ctx;
  return crl_conv2d(in[0], in[1], in[2], a->sh, a->sw, a->ph, a->pw);
}

static crl_tensor *pool_fn(crl_tensor **in, void *ctx) {
  const int *k = ctx;
  return crl_max_pool2d(in[0], k[0], k[1], k[2], k[3], k[4], k[5]);
}

static void test_conv_grad(void **state) {
  (void)state;
  conv_args s2p1 = {2, 2, 1, 1}, s1 = {1, 1, 0, 0}, mixed = {1, 2, 0, 1},
            bigpad = {2, 1, 3, 4};
  crl_tensor *in[3] = {randn_leaf64(50, CRL_SHAPE(2, 3, 6, 5)),
                       randn_leaf64(51, CRL_SHAPE(4, 3, 3, 3)),
                       randn_leaf64(52, CRL_SHAPE(4))};
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in, 3, &s2p1, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in, 3, &mixed, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in, 3, &bigpad, 1e-6, 1e-6, 1e-4));
  in[2] = NULL;
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in, 3, &s2p1, 1e-6, 1e-6, 1e-4));
  /* 1x1 direct path, several chunks of images */
  crl_tensor *in1[3] = {randn_leaf64(53, CRL_SHAPE(6, 3, 3, 2)),
                        randn_leaf64(54, CRL_SHAPE(2, 3, 1, 1)),
                        randn_leaf64(55, CRL_SHAPE(2))};
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in1, 3, &s1, 1e-6, 1e-6, 1e-4));
  /* more output channels than C*kh*kw (dW accumulated untransposed) */
  crl_tensor *in2[3] = {randn_leaf64(56, CRL_SHAPE(5, 1, 4, 4)),
                        randn_leaf64(57, CRL_SHAPE(6, 1, 2, 2)), NULL};
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in2, 3, &s2p1, 1e-6, 1e-6, 1e-4));
  /* only the weight requires grad */
  crl_tensor *in3[3] = {seeded_randn(58, CRL_FLOAT64, CRL_SHAPE(1, 2, 5, 5)),
                        randn_leaf64(59, CRL_SHAPE(3, 2, 3, 3)), NULL};
  CRL_CHECK_OK(crl_gradcheck(conv_fn, in3, 3, &s2p1, 1e-6, 1e-6, 1e-4));
}

static void test_pool_grad(void **state) {
  (void)state;
  int k1[6] = {2, 2, 2, 2, 0, 0}, k2[6] = {3, 3, 2, 1, 1, 1};
  crl_tensor *in[1] = {randn_leaf64(60, CRL_SHAPE(2, 3, 6, 5))};
  CRL_CHECK_OK(crl_gradcheck(pool_fn, in, 1, k1, 1e-6, 1e-6, 1e-4));
  CRL_CHECK_OK(crl_gradcheck(pool_fn, in, 1, k2, 1e-6, 1e-6, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_conv_values),
      CRL_TEST(test_conv_against_direct),
      CRL_TEST(test_conv_thread_independent),
      CRL_TEST(test_conv_errors),
      CRL_TEST(test_pool_values),
      CRL_TEST(test_pool_backward_values),
      CRL_TEST(test_pool_errors),
      CRL_TEST(test_conv_grad),
      CRL_TEST(test_pool_grad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
