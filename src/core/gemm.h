/* Internal GEMM: C = alpha * op(A) * op(B) + beta * C, row-major.
 *
 * op(A) is M x K (A is stored K x M when transA), op(B) is K x N (B is stored
 * N x K when transB); lda/ldb/ldc are the row strides in elements. With
 * beta == 0, C is only written (never read: it may hold garbage or NaN).
 *
 * crl__gemm / crl__dgemm pick the backend per call: crl's own register-tiled
 * kernel for tiny shapes (batch-1 inference, small MLP layers), where a BLAS
 * call's fixed overhead dominates, and CBLAS (BLIS or OpenBLAS, chosen at
 * configure time) for everything else. Both return 0 (the arguments are
 * trusted: callers validate shapes). The _small and _blas variants force one
 * backend (tests and benchmarks). */
#ifndef CRL_GEMM_H
#define CRL_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

CRL_INTERNAL int crl__gemm(bool transA, bool transB, int64_t M, int64_t N,
                           int64_t K, float alpha, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float beta, float *C,
                           int64_t ldc);
CRL_INTERNAL int crl__dgemm(bool transA, bool transB, int64_t M, int64_t N,
                            int64_t K, double alpha, const double *A,
                            int64_t lda, const double *B, int64_t ldb,
                            double beta, double *C, int64_t ldc);

CRL_INTERNAL int crl__gemm_small(bool transA, bool transB, int64_t M, int64_t N,
                                 int64_t K, float alpha, const float *A,
                                 int64_t lda, const float *B, int64_t ldb,
                                 float beta, float *C, int64_t ldc);
CRL_INTERNAL int crl__dgemm_small(bool transA, bool transB, int64_t M,
                                  int64_t N, int64_t K, double alpha,
                                  const double *A, int64_t lda, const double *B,
                                  int64_t ldb, double beta, double *C,
                                  int64_t ldc);
CRL_INTERNAL int crl__gemm_blas(bool transA, bool transB, int64_t M, int64_t N,
                                int64_t K, float alpha, const float *A,
                                int64_t lda, const float *B, int64_t ldb,
                                float beta, float *C, int64_t ldc);
CRL_INTERNAL int crl__dgemm_blas(bool transA, bool transB, int64_t M, int64_t N,
                                 int64_t K, double alpha, const double *A,
                                 int64_t lda, const double *B, int64_t ldb,
                                 double beta, double *C, int64_t ldc);

#endif
