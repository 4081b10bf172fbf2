/* GEMM behind one internal function: CBLAS for large shapes, crl's own
 * register-tiled kernel for tiny ones (see gemm.h).
 *
 * The kernels are written once as a template (the second half of this file,
 * which includes itself for float and for double) in plain C that GCC
 * vectorizes at -O2: every hot loop has a compile-time trip count (tiles of
 * C are R rows x W columns held in registers across the whole K loop), the
 * innermost loop runs over N contiguous, and -ffp-contract=fast turns the
 * multiply-adds into FMAs.
 *
 * Two kernel shapes:
 *  - "axpy" tiles (kern_r): C[i, j..j+W) += A(i, k) * B[k, j..j+W), which needs
 *    op(B) rows contiguous; a transposed B is first packed into a stack buffer.
 *  - "dot" tiles (kern_d): C[i, j] = A[i, :] . B[j, :] with both contiguous
 *    along k (A plain, B transposed), vectorized over k; used for one-row
 *    inference (no packing cost) and very narrow outputs. */
#ifndef GEMM_T

#include <limits.h>

#include "gemm.h"

#if defined(CRL_BLAS_BLIS) || defined(CRL_BLAS_OPENBLAS)
/* BLIS's cblas.h defines static inline helpers it does not use */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <cblas.h>
#pragma GCC diagnostic pop
#define HAVE_CBLAS 1
#else
#define HAVE_CBLAS 0
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Bytes of the stack buffer a transposed B is packed into. */
#define PACK_BYTES 32768

/* Lanes per vector register: the tiles hold 8 accumulator vectors. */
#if defined(__AVX512F__)
#define VL_F32 16
#elif defined(__AVX__)
#define VL_F32 8
#else
#define VL_F32 4
#endif

#define GEMM_T float
#define GEMM_S f32
#define GEMM_VL VL_F32
#define GEMM_BLAS cblas_sgemm
#include "gemm.c"
#undef GEMM_T
#undef GEMM_S
#undef GEMM_VL
#undef GEMM_BLAS

#define GEMM_T double
#define GEMM_S f64
#define GEMM_VL (VL_F32 / 2)
#define GEMM_BLAS cblas_dgemm
#include "gemm.c"
#undef GEMM_T
#undef GEMM_S
#undef GEMM_VL
#undef GEMM_BLAS

int crl__gemm_small(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                    float alpha, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc) {
  small_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

int crl__dgemm_small(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                     double alpha, const double *A, int64_t lda,
                     const double *B, int64_t ldb, double beta, double *C,
                     int64_t ldc) {
  small_f64(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

int crl__gemm_blas(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float beta, float *C, int64_t ldc) {
  blas_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

int crl__dgemm_blas(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                    double alpha, const double *A, int64_t lda, const double *B,
                    int64_t ldb, double beta, double *C, int64_t ldc) {
  blas_f64(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

/* ---- backend choice --------------------------------------------------------
 * Measured on the project's machine (AMD EPYC Zen 5, one core, BLIS 0.9
 * pthread build; single precision, ns per call, own kernel vs cblas_sgemm):
 *
 *   shape M x N x K (trans)    own AVX-512   own AVX2     BLIS
 *   1 x 64 x 64 (x W^T)                130        109      290
 *   8 x 8 x 8                           21         27     2140
 *   64 x 64 x 64 (NN / NT)       3400/3700  6200/7200    16100
 *   256 x 256 x 256 (NN)          200000     386000   800000
 *   512 x 512 x 512 (NN)         2.1e6      3.4e6    6.4e6
 *   1024 x 1024 x 1024 (NN / TN) 2.3e7/3.5e7  4.0e7/5.6e7  5.1e7
 *   1 x 4096 x 1024 (NN)         4.7e5      4.2e5    2.8e5
 *
 * A BLAS call costs ~0.1-2 us before any arithmetic, and this BLIS build
 * runs at ~40 GFLOP/s where the own kernel's register tiles reach ~150
 * (AVX-512) / ~85 (AVX2). So the own kernel takes everything up to
 * OWN_MAX_WORK multiply-adds (~645^3), where its lack of cache blocking
 * for a transposed A starts to lose; BLAS takes larger products, streaming
 * vector-matrix products over a B larger than L2, and large products when
 * crl_set_blas_threads gave BLAS enough threads to beat one own core. */
#define OWN_MAX_WORK ((double)(1 << 28))
/* elements of a plain B above which a product with M <= 4 goes to BLAS */
#define STREAM_MAX_B (1 << 20)
#if defined(__AVX512F__)
#define BLAS_THREADS_TO_BEAT 4
#else
#define BLAS_THREADS_TO_BEAT 2
#endif

static inline bool use_own(bool transB, int64_t M, int64_t N, int64_t K) {
  if (!HAVE_CBLAS) return true;
  const double work = (double)M * (double)N * (double)K;
  if (work > OWN_MAX_WORK) return false;
  if (!transB && M <= 4 && (double)K * (double)N > STREAM_MAX_B) return false;
  if (work > (double)(1 << 24) && crl_get_blas_threads() > BLAS_THREADS_TO_BEAT)
    return false;
  return true;
}

int crl__gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B,
              int64_t ldb, float beta, float *C, int64_t ldc) {
  if (use_own(transB, M, N, K))
    small_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    blas_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

int crl__dgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
               double alpha, const double *A, int64_t lda, const double *B,
               int64_t ldb, double beta, double *C, int64_t ldc) {
  if (use_own(transB, M, N, K))
    small_f64(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    blas_f64(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

#else /* ---- template: GEMM_T, GEMM_S (name suffix), GEMM_VL (lanes) ---- */

#define T GEMM_T
#define VL GEMM_VL
#define FN(name) CAT(name, GEMM_S)
#define PACK_MAX ((int64_t)(PACK_BYTES / sizeof(T)))
/* Plain names for this instantiation's functions (tile_r -> tile_r_f32). */
#define tile_r FN(tile_r_)
#define rows_r FN(rows_r_)
#define kern_r FN(kern_r_)
#define kern_n FN(kern_n_)
#define kern_m FN(kern_m_)
#define vload FN(vload_)
#define hsum FN(hsum_)
#define tile_d FN(tile_d_)
#define kern_d FN(kern_d_)
#define scale FN(scale_)
#define transpose FN(transpose_)
#define packed FN(packed_)
#define gather_dot FN(gather_dot_)
#define small FN(small_)
#define blas FN(blas_)

/* ---- axpy tiles -----------------------------------------------------------
 * An R x W tile of a logical output D (R <= 4, W <= 4 * VL) accumulated in
 * registers over all of K: D(r, l) += A(r, k) * B[k * ldb + l], A(r, k) =
 * A[r * ars + k * acs] a broadcast scalar, B rows contiguous. D(r, l) lives
 * at C[r * ldc + l] or, with TR (the tile computes C^T), at C[l * ldc + r]. */
ALWAYS_INLINE void tile_r(const bool TR, const int R, const int W, int64_t K,
                          T alpha, const T *restrict A, int64_t ars,
                          int64_t acs, const T *restrict B, int64_t ldb, T beta,
                          T *restrict C, int64_t ldc) {
  T acc[4][4 * VL];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 64
    for (int l = 0; l < W; l++)
      acc[r][l] = 0;
  for (int64_t k = 0; k < K; k++) {
    const T *restrict b = B + k * ldb;
    const T *restrict a = A + k * acs;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const T ar = a[r * ars];
#pragma GCC unroll 64
      for (int l = 0; l < W; l++)
        acc[r][l] += ar * b[l];
    }
  }
  const int64_t rs = TR ? 1 : ldc, ls = TR ? ldc : 1;
  if (beta == 0) {
    for (int r = 0; r < R; r++)
      for (int l = 0; l < W; l++)
        C[r * rs + l * ls] = alpha * acc[r][l];
  } else {
    for (int r = 0; r < R; r++)
      for (int l = 0; l < W; l++)
        C[r * rs + l * ls] = alpha * acc[r][l] + beta * C[r * rs + l * ls];
  }
}

/* R rows of D, all N columns: wide tiles (8 accumulator vectors), then
 * narrower ones for the tail columns. */
ALWAYS_INLINE void rows_r(const bool TR, const int R, int64_t N, int64_t K,
                          T alpha, const T *A, int64_t ars, int64_t acs,
                          const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {
  const int WM = R >= 4 ? 2 * VL : 4 * VL;
  const int64_t cs = TR ? ldc : 1;
  int64_t j = 0;
  for (; j + WM <= N; j += WM)
    tile_r(TR, R, WM, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs, ldc);
  if (WM > 2 * VL && j + 2 * VL <= N) {
    tile_r(TR, R, 2 * VL, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs,
           ldc);
    j += 2 * VL;
  }
  if (j + VL <= N) {
    tile_r(TR, R, VL, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs, ldc);
    j += VL;
  }
  if (VL >= 4 && j + VL / 2 <= N) {
    tile_r(TR, R, VL / 2, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs,
           ldc);
    j += VL / 2;
  }
  if (VL >= 8 && j + VL / 4 <= N) {
    tile_r(TR, R, VL / 4, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs,
           ldc);
    j += VL / 4;
  }
  for (; j < N; j++)
    tile_r(TR, R, 1, K, alpha, A, ars, acs, B + j, ldb, beta, C + j * cs, ldc);
}

ALWAYS_INLINE void kern_r(const bool TR, int64_t M, int64_t N, int64_t K,
                          T alpha, const T *A, int64_t ars, int64_t acs,
                          const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {
  const int64_t rs = TR ? 1 : ldc;
  int64_t i = 0;
  for (; i + 4 <= M; i += 4)
    rows_r(TR, 4, N, K, alpha, A + i * ars, ars, acs, B, ldb, beta, C + i * rs,
           ldc);
  if (i + 2 <= M) {
    rows_r(TR, 2, N, K, alpha, A + i * ars, ars, acs, B, ldb, beta, C + i * rs,
           ldc);
    i += 2;
  }
  if (i < M)
    rows_r(TR, 1, N, K, alpha, A + i * ars, ars, acs, B, ldb, beta, C + i * rs,
           ldc);
}

/* C = alpha * op(A) * B + beta * C, vectors along N. */
static void kern_n(int64_t M, int64_t N, int64_t K, T alpha, const T *A,
                   int64_t ars, int64_t acs, const T *B, int64_t ldb, T beta,
                   T *C, int64_t ldc) {
  kern_r(false, M, N, K, alpha, A, ars, acs, B, ldb, beta, C, ldc);
}

/* The same computed as C^T = op(B)^T * A^T with vectors along M: A^T rows
 * are the rows of a transposed (K x M) A; op(B)^T(j, k) = B[j * brs + k *
 * bcs]. */
static void kern_m(int64_t M, int64_t N, int64_t K, T alpha, const T *A,
                   int64_t lda, const T *B, int64_t brs, int64_t bcs, T beta,
                   T *C, int64_t ldc) {
  kern_r(true, N, M, K, alpha, B, brs, bcs, A, lda, beta, C, ldc);
}

/* ---- dot tiles -------------------------------------------------------------
 * CD dot products C[c] = alpha * a . B[c * ldb, :] + beta * C[c] (CD <= 4),
 * over k in vectors of VL lanes with two partial sums per column, folded by
 * halving. Written with GCC vector types: the auto-vectorizer would turn the
 * final horizontal sum into scalar code. */
typedef T FN(v_) __attribute__((vector_size(VL * sizeof(T))));
typedef T FN(v2_) __attribute__((vector_size(2 * sizeof(T))));
#if GEMM_VL >= 8
typedef T FN(v4_) __attribute__((vector_size(4 * sizeof(T))));
#endif
#if GEMM_VL >= 16
typedef T FN(v8_) __attribute__((vector_size(8 * sizeof(T))));
#endif

ALWAYS_INLINE FN(v_) vload(const T *p) {
  FN(v_) v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* y = low half of x + high half of x */
#define HALVE(x, y)                                                            \
  do {                                                                         \
    __typeof__(y) lo_, hi_;                                                    \
    memcpy(&lo_, &(x), sizeof lo_);                                            \
    memcpy(&hi_, (char *)&(x) + sizeof lo_, sizeof hi_);                       \
    (y) = lo_ + hi_;                                                           \
  } while (0)

ALWAYS_INLINE T hsum(FN(v_) v) {
  FN(v2_) x2;
#if GEMM_VL >= 16
  FN(v8_) x8;
  FN(v4_) x4;
  HALVE(v, x8);
  HALVE(x8, x4);
  HALVE(x4, x2);
#elif GEMM_VL >= 8
  FN(v4_) x4;
  HALVE(v, x4);
  HALVE(x4, x2);
#elif GEMM_VL >= 4
  HALVE(v, x2);
#else
  x2 = v;
#endif
  return x2[0] + x2[1];
}
#undef HALVE

ALWAYS_INLINE void tile_d(const int CD, int64_t K, T alpha, const T *restrict a,
                          const T *restrict B, int64_t ldb, T beta,
                          T *restrict C) {
  FN(v_) acc[4][2];
  const FN(v_) zero = {0};
#pragma GCC unroll 4
  for (int c = 0; c < CD; c++)
    acc[c][0] = acc[c][1] = zero;
  int64_t k = 0;
  for (; k + 2 * VL <= K; k += 2 * VL) {
    const FN(v_) a0 = vload(a + k), a1 = vload(a + k + VL);
#pragma GCC unroll 4
    for (int c = 0; c < CD; c++) {
      acc[c][0] += a0 * vload(B + c * ldb + k);
      acc[c][1] += a1 * vload(B + c * ldb + k + VL);
    }
  }
  if (k + VL <= K) {
    const FN(v_) a0 = vload(a + k);
#pragma GCC unroll 4
    for (int c = 0; c < CD; c++)
      acc[c][0] += a0 * vload(B + c * ldb + k);
    k += VL;
  }
#pragma GCC unroll 4
  for (int c = 0; c < CD; c++) {
    T s = k ? hsum(acc[c][0] + acc[c][1]) : 0;
    for (int64_t kk = k; kk < K; kk++)
      s += a[kk] * B[c * ldb + kk];
    C[c] = beta == 0 ? alpha * s : alpha * s + beta * C[c];
  }
}

/* C = alpha * A * B^T + beta * C with A rows and B rows contiguous. */
static void kern_d(int64_t M, int64_t N, int64_t K, T alpha, const T *A,
                   int64_t lda, const T *B, int64_t ldb, T beta, T *C,
                   int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    const T *a = A + i * lda;
    T *c = C + i * ldc;
    int64_t j = 0;
    for (; j + 4 <= N; j += 4)
      tile_d(4, K, alpha, a, B + j * ldb, ldb, beta, c + j);
    if (j + 2 <= N) {
      tile_d(2, K, alpha, a, B + j * ldb, ldb, beta, c + j);
      j += 2;
    }
    if (j < N) tile_d(1, K, alpha, a, B + j * ldb, ldb, beta, c + j);
  }
}

/* ---- dispatch ----------------------------------------------------------- */

static void scale(int64_t M, int64_t N, T beta, T *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    T *c = C + i * ldc;
    if (beta == 0)
      for (int64_t j = 0; j < N; j++)
        c[j] = 0;
    else if (beta != 1)
      for (int64_t j = 0; j < N; j++)
        c[j] *= beta;
  }
}

/* dst[c * R + r] = src[r * ld + c]: the transpose of an R x CN block. */
static void transpose(int64_t R, int64_t CN, const T *restrict src, int64_t ld,
                      T *restrict dst) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) {
    const T *s0 = src + r * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
    for (int64_t c = 0; c < CN; c++) {
      T *d = dst + c * R + r;
      d[0] = s0[c];
      d[1] = s1[c];
      d[2] = s2[c];
      d[3] = s3[c];
    }
  }
  for (; r < R; r++)
    for (int64_t c = 0; c < CN; c++)
      dst[c * R + r] = src[r * ld + c];
}

/* C = alpha * op(A) * op(B) + beta * C with op(B) copied block by block
 * (at most KB x NP, on the stack) into contiguous rows for the axpy kernel:
 * transposes B when tb, and keeps the block in L1 for large shapes. */
__attribute__((noinline)) static void packed(bool tb, int64_t M, int64_t N,
                                             int64_t K, T alpha, const T *A,
                                             int64_t ars, int64_t acs,
                                             const T *B, int64_t ldb, T beta,
                                             T *C, int64_t ldc) {
  T pack[PACK_MAX] __attribute__((aligned(64)));
  const int64_t KB = K < PACK_MAX / (2 * VL) ? K : PACK_MAX / (2 * VL);
  int64_t NP = PACK_MAX / KB;
  if (NP > N) NP = N;
  if (NP > 2 * VL) NP -= NP % (2 * VL);
  for (int64_t j0 = 0; j0 < N; j0 += NP) {
    const int64_t nb = N - j0 < NP ? N - j0 : NP;
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t kb = K - k0 < KB ? K - k0 : KB;
      if (tb)
        transpose(nb, kb, B + j0 * ldb + k0, ldb, pack);
      else
        for (int64_t k = 0; k < kb; k++)
          memcpy(pack + k * nb, B + (k0 + k) * ldb + j0, sizeof(T) * nb);
      kern_n(M, nb, kb, alpha, A + k0 * acs, ars, acs, pack, nb, k0 ? 1 : beta,
             C + j0, ldc);
    }
  }
}

/* Dot products with one operand transposed into contiguous rows first:
 * op(A) = A^T (ta, M * K <= PACK_MAX) or op(B) = B (!tb, N * K <= PACK_MAX). */
__attribute__((noinline)) static void
gather_dot(bool ta, int64_t M, int64_t N, int64_t K, T alpha, const T *A,
           int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {
  T pk[PACK_MAX] __attribute__((aligned(64)));
  if (ta) {
    transpose(K, M, A, lda, pk);
    kern_d(M, N, K, alpha, pk, K, B, ldb, beta, C, ldc);
  } else {
    transpose(K, N, B, ldb, pk);
    kern_d(M, N, K, alpha, A, lda, pk, K, beta, C, ldc);
  }
}

/* The own kernel: picks a tile shape from the transposes and the sizes. */
static void small(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
                  const T *A, int64_t lda, const T *B, int64_t ldb, T beta,
                  T *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0) {
    scale(M, N, beta, C, ldc);
    return;
  }
  const int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1;
  if (!tb) {
    /* op(B) rows are contiguous: vectors along N, unless N is narrow and M
     * offers longer vectors (A transposed) or dot products pay off */
    if (ta && N < 2 * VL && M > N)
      kern_m(M, N, K, alpha, A, lda, B, 1, ldb, beta, C, ldc);
    else if (!ta && N < VL / 2 && M > N && K >= VL && N * K <= PACK_MAX)
      gather_dot(false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      kern_n(M, N, K, alpha, A, ars, acs, B, ldb, beta, C, ldc);
    return;
  }
  if (ta) {
    /* both transposed: a few rows of A gathered for dot products; B^T
     * packed when K is short (cheap); else C^T = B * A^T, vectors along M */
    if (M < 4 && M * K <= PACK_MAX && K >= VL)
      gather_dot(true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (K < M)
      packed(true, M, N, K, alpha, A, ars, acs, B, ldb, beta, C, ldc);
    else
      kern_m(M, N, K, alpha, A, lda, B, ldb, 1, beta, C, ldc);
    return;
  }
  /* A plain, B transposed (x * W^T): dot products for a few rows or very
   * narrow outputs, else B^T packed for the axpy kernel */
  if (M < 4 || N < VL / 2)
    kern_d(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    packed(true, M, N, K, alpha, A, ars, acs, B, ldb, beta, C, ldc);
}

static void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
                 const T *A, int64_t lda, const T *B, int64_t ldb, T beta, T *C,
                 int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0) {
    scale(M, N, beta, C, ldc);
    return;
  }
#if HAVE_CBLAS
  /* BLAS wants ld >= max(1, stored columns) and 32-bit sizes; a matrix with
   * a single stored row may come with any ld */
  if ((ta ? K : M) == 1 && lda < (ta ? M : K)) lda = ta ? M : K;
  if ((tb ? N : K) == 1 && ldb < (tb ? K : N)) ldb = tb ? K : N;
  if (M == 1 && ldc < N) ldc = N;
  if (M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX &&
      ldb <= INT_MAX && ldc <= INT_MAX) {
    GEMM_BLAS(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
              (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return;
  }
#endif
  small(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#undef T
#undef VL
#undef FN
#undef PACK_MAX
#undef tile_r
#undef rows_r
#undef kern_r
#undef kern_n
#undef kern_m
#undef vload
#undef hsum
#undef tile_d
#undef kern_d
#undef scale
#undef transpose
#undef packed
#undef gather_dot
#undef small
#undef blas

#endif
