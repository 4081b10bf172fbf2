/* The internal GEMM: own kernel, BLAS and the dispatcher against a naive
 * triple loop, for many shapes, every transpose combination, alpha/beta,
 * padded leading dimensions, in float32 and float64. */
#include <stdlib.h>

#include "core/gemm.h"
#include "test_util.h"

typedef int (*sgemm_fn)(bool, bool, int64_t, int64_t, int64_t, float,
                        const float *, int64_t, const float *, int64_t, float,
                        float *, int64_t);
typedef int (*dgemm_fn)(bool, bool, int64_t, int64_t, int64_t, double,
                        const double *, int64_t, const double *, int64_t,
                        double, double *, int64_t);

static uint64_t lcg_state = 88172645463325252ull;
static double rnd(void) {
  lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* op(X)(i, k) of a row-major matrix stored with leading dimension ld */
static double at(const double *x, bool tr, int64_t ld, int64_t i, int64_t k) {
  return tr ? x[k * ld + i] : x[i * ld + k];
}

typedef struct {
  int64_t M, N, K;
} shape3;

/* Runs one case through a float and a double GEMM and checks every
 * element of C (including the padding between rows, which must be left
 * alone) against a double-precision reference. */
static void check_case(sgemm_fn sf, dgemm_fn df, const char *name, bool ta,
                       bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                       double beta, int64_t pad) {
  int64_t ra = ta ? K : M, ca = ta ? M : K; /* stored shape of A */
  int64_t rb = tb ? N : K, cb = tb ? K : N;
  int64_t lda = ca + pad, ldb = cb + pad, ldc = N + pad;
  size_t na = (size_t)(ra * lda + 1), nb = (size_t)(rb * ldb + 1),
         nc = (size_t)(M * ldc + 1);
  double *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
  double *C0 = malloc(nc * sizeof *C0), *ref = malloc(nc * sizeof *ref);
  float *Af = malloc(na * sizeof *Af), *Bf = malloc(nb * sizeof *Bf);
  float *Cf = malloc(nc * sizeof *Cf);
  double *Cd = malloc(nc * sizeof *Cd);
  assert_non_null(A);
  assert_non_null(B);
  assert_non_null(C0);
  assert_non_null(ref);
  assert_non_null(Af);
  assert_non_null(Bf);
  assert_non_null(Cf);
  assert_non_null(Cd);
  for (size_t i = 0; i < na; i++)
    Af[i] = (float)(A[i] = rnd());
  for (size_t i = 0; i < nb; i++)
    Bf[i] = (float)(B[i] = rnd());
  for (size_t i = 0; i < nc; i++)
    C0[i] = rnd();
  /* beta == 0: C is write-only, garbage (NaN) must not leak through */
  if (beta == 0)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++)
        C0[i * ldc + j] = NAN;
  for (size_t i = 0; i < nc; i++)
    ref[i] = C0[i];
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += (double)(float)at(A, ta, lda, i, k) *
             (double)(float)at(B, tb, ldb, k, j);
      double c = beta == 0 ? 0 : beta * C0[i * ldc + j];
      ref[i * ldc + j] = alpha * s + c;
    }
  /* float */
  for (size_t i = 0; i < nc; i++)
    Cf[i] = (float)C0[i];
  CRL_CHECK_OK(sf(ta, tb, M, N, K, (float)alpha, Af, lda, Bf, ldb, (float)beta,
                  Cf, ldc));
  double tol = 1e-5 * (double)(K + 1) * (fabs(alpha) + 1) + 1e-5 * fabs(beta);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      double got = Cf[i * ldc + j],
             want = j < N ? ref[i * ldc + j] : (double)(float)C0[i * ldc + j];
      if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("%s f32 ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g "
                 "pad=%lld: C[%lld,%lld] = %.9g, expected %.9g",
                 name, ta, tb, (long long)M, (long long)N, (long long)K, alpha,
                 beta, (long long)pad, (long long)i, (long long)j, got, want);
    }
  /* double: same inputs rounded to float so one reference serves both */
  for (size_t i = 0; i < na; i++)
    A[i] = Af[i];
  for (size_t i = 0; i < nb; i++)
    B[i] = Bf[i];
  for (size_t i = 0; i < nc; i++)
    Cd[i] = C0[i];
  CRL_CHECK_OK(df(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cd, ldc));
  double dtol = 1e-12 * (double)(K + 1) * (fabs(alpha) + 1) + 1e-12;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      double got = Cd[i * ldc + j],
             want = j < N ? ref[i * ldc + j] : C0[i * ldc + j];
      if (!(fabs(got - want) <= dtol * (1 + fabs(want))))
        fail_msg("%s f64 ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g "
                 "pad=%lld: C[%lld,%lld] = %.17g, expected %.17g",
                 name, ta, tb, (long long)M, (long long)N, (long long)K, alpha,
                 beta, (long long)pad, (long long)i, (long long)j, got, want);
    }
  free(A);
  free(B);
  free(C0);
  free(ref);
  free(Af);
  free(Bf);
  free(Cf);
  free(Cd);
}

static void check_all_trans(sgemm_fn sf, dgemm_fn df, const char *name,
                            int64_t M, int64_t N, int64_t K, double alpha,
                            double beta, int64_t pad) {
  for (int t = 0; t < 4; t++)
    check_case(sf, df, name, t & 2, t & 1, M, N, K, alpha, beta, pad);
}

/* Small and odd shapes: every tile width, row remainder and kernel path
 * (axpy, transposed-output axpy, dot products, gathers, packing). */
static const shape3 small_shapes[] = {
    {1, 1, 1},    {1, 64, 4},   {1, 64, 64},  {1, 2, 64},   {1, 33, 17},
    {2, 3, 1},    {3, 5, 7},    {4, 4, 4},    {5, 1, 9},    {7, 13, 1},
    {8, 8, 8},    {9, 31, 5},   {16, 16, 16}, {17, 33, 65}, {33, 2, 40},
    {64, 2, 64},  {64, 4, 64},  {64, 64, 2},  {2, 64, 64},  {64, 64, 4},
    {63, 65, 31}, {40, 7, 100}, {6, 100, 3},  {3, 100, 40}, {100, 3, 3},
};

static void test_own_kernel_shapes(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof small_shapes / sizeof *small_shapes; s++) {
    const shape3 *x = &small_shapes[s];
    check_all_trans(crl__gemm_small, crl__dgemm_small, "small", x->M, x->N,
                    x->K, 1, 0, 0);
  }
}

static void test_own_kernel_alpha_beta_ld(void **state) {
  (void)state;
  static const double ab[][2] = {{1, 1}, {0.5, 2}, {-1.5, 0}, {2, -0.25}};
  for (size_t s = 0; s < sizeof small_shapes / sizeof *small_shapes; s += 2)
    for (size_t k = 0; k < 4; k++) {
      const shape3 *x = &small_shapes[s];
      check_all_trans(crl__gemm_small, crl__dgemm_small, "small", x->M, x->N,
                      x->K, ab[k][0], ab[k][1], (int64_t)(k + s % 3));
    }
}

/* Larger shapes: several packing panels and K blocks. */
static void test_own_kernel_blocked(void **state) {
  (void)state;
  check_all_trans(crl__gemm_small, crl__dgemm_small, "small", 5, 70, 600, 1, 0,
                  0);
  check_all_trans(crl__gemm_small, crl__dgemm_small, "small", 37, 300, 300, 0.5,
                  1, 3);
  check_all_trans(crl__gemm_small, crl__dgemm_small, "small", 130, 9, 520, 1,
                  0.5, 1);
}

static void test_blas_shapes(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof small_shapes / sizeof *small_shapes; s += 3) {
    const shape3 *x = &small_shapes[s];
    check_all_trans(crl__gemm_blas, crl__dgemm_blas, "blas", x->M, x->N, x->K,
                    0.5, 2, (int64_t)(s % 2));
  }
}

static void test_dispatch(void **state) {
  (void)state;
  for (size_t s = 0; s < sizeof small_shapes / sizeof *small_shapes; s += 4) {
    const shape3 *x = &small_shapes[s];
    check_all_trans(crl__gemm, crl__dgemm, "gemm", x->M, x->N, x->K, 1, 1, 0);
  }
  /* a streaming vector-matrix product (BLAS) */
  check_all_trans(crl__gemm, crl__dgemm, "gemm", 2, 1100, 1000, 1, 0, 0);
  /* a large product with many BLAS threads (BLAS) */
  CRL_CHECK_OK(crl_set_blas_threads(8));
  check_case(crl__gemm, crl__dgemm, "gemm", false, true, 260, 260, 260, 1, 0,
             0);
  CRL_CHECK_OK(crl_set_blas_threads(1));
}

/* Degenerate sizes: M or N zero touch nothing; K zero or alpha zero scale
 * C by beta (and never read A or B). */
static void test_degenerate(void **state) {
  (void)state;
  float C[6] = {1, 2, 3, 4, 5, 6};
  sgemm_fn fns[3] = {crl__gemm, crl__gemm_small, crl__gemm_blas};
  for (int f = 0; f < 3; f++) {
    float c[6];
    memcpy(c, C, sizeof c);
    CRL_CHECK_OK(fns[f](false, false, 0, 3, 4, 1, NULL, 4, NULL, 3, 0, c, 3));
    CRL_CHECK_OK(fns[f](false, false, 2, 0, 4, 1, NULL, 4, NULL, 3, 0, c, 3));
    for (int i = 0; i < 6; i++)
      assert_true(c[i] == C[i]);
    CRL_CHECK_OK(fns[f](false, false, 2, 3, 0, 1, NULL, 1, NULL, 3, 2, c, 3));
    for (int i = 0; i < 6; i++)
      assert_true(c[i] == 2 * C[i]);
    CRL_CHECK_OK(fns[f](true, true, 2, 3, 5, 0, NULL, 2, NULL, 5, 0, c, 3));
    for (int i = 0; i < 6; i++)
      assert_true(c[i] == 0);
  }
  double d[2] = {1, NAN};
  CRL_CHECK_OK(crl__dgemm(false, false, 1, 2, 0, 1, NULL, 1, NULL, 2, 0, d, 2));
  assert_true(d[0] == 0 && d[1] == 0);
}

/* Hand-computed 2x2 products in every transpose combination. */
static void test_known_values(void **state) {
  (void)state;
  const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
  /* A*B = [19 22; 43 50], A^T*B = [26 30; 38 44], A*B^T = [17 23; 39 53],
   * A^T*B^T = [23 31; 34 46] */
  const float want[4][4] = {
      {19, 22, 43, 50}, {17, 23, 39, 53}, {26, 30, 38, 44}, {23, 31, 34, 46}};
  for (int t = 0; t < 4; t++) {
    float c[4];
    CRL_CHECK_OK(crl__gemm(t & 2, t & 1, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2));
    for (int i = 0; i < 4; i++)
      assert_true(c[i] == want[t][i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_known_values),
      CRL_TEST(test_own_kernel_shapes),
      CRL_TEST(test_own_kernel_alpha_beta_ld),
      CRL_TEST(test_own_kernel_blocked),
      CRL_TEST(test_blas_shapes),
      CRL_TEST(test_dispatch),
      CRL_TEST(test_degenerate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
