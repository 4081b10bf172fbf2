/* crl/thread.h — the intra-op thread pool and BLAS threads.
 *
 * Large elementwise, reduction and convolution work is split into chunks of
 * a fixed size (independent of the thread count) and run on a small pool, so
 * results are bit-identical with 1 or N threads. */
#ifndef CRL_THREAD_H
#define CRL_THREAD_H

#include "crl/error.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Threads used by crl's own kernels (default: 1; CRL_NUM_THREADS env var).
 * Errors: CRL_EINVAL if n < 1 or n > 256. */
CRL_API int crl_set_num_threads(int n);
CRL_API int crl_get_num_threads(void);
/* Threads used inside BLAS calls (default 1). */
CRL_API int crl_set_blas_threads(int n);
CRL_API int crl_get_blas_threads(void);
/* "blis", "openblas" — the GEMM backend this build uses. */
CRL_API const char *crl_blas_backend(void);

/* Run fn(ctx, i) for i in [0, n) on the pool (the caller takes part).
 * Calls from inside a pool task run serially. */
CRL_API void crl_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t i),
                              void *ctx);

#ifdef __cplusplus
}
#endif
#endif
