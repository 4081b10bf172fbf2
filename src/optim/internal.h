/* Private declarations of the optimizers (src/optim/). Not installed.
 *
 * Every optimizer is one crl_optimizer: the shared part (parameters, lr,
 * step counters, state tensors) lives in optimizer.c; each algorithm file
 * supplies a kind (name, state names, one update function) and a creation
 * function. Update kernels work on the contiguous float32/float64 data
 * directly, one fused pass per parameter, written with GCC vector types so
 * they are vectorised whatever the optimisation flags (GCC keeps sqrtf
 * scalar under the default -fmath-errno, and -O2's cost model skips loops
 * of unknown length). */
#ifndef CRL_OPTIM_INTERNAL_H
#define CRL_OPTIM_INTERNAL_H

#include <math.h>
#include <string.h>

#include "../core/internal.h"

/* ---- the optimizer object ---------------------------------------------- */

#define CRL__OPT_NSTATE 3 /* state tensors per parameter, at most */

typedef struct crl__optim_kind {
  const char *name; /* "sgd", "adam", ... */
  const char *state_names[CRL__OPT_NSTATE];
  /* Update parameter p (contiguous, grad g contiguous with p's shape and
   * dtype) in place; `st` are its state tensors (NULL where unused), `step`
   * its step count including this one (1 on its first update). */
  void (*update)(const crl_optimizer *o, crl_tensor *p, const crl_tensor *g,
                 crl_tensor *const *st, int64_t step);
} crl__optim_kind;

struct crl_optimizer {
  const crl__optim_kind *kind;
  int n;
  crl_tensor **params;  /* retained */
  crl_tensor **state;   /* n * CRL__OPT_NSTATE, retained, NULL if unused */
  int64_t *param_steps; /* updates each parameter received (torch's
                           per-parameter state['step']) */
  int64_t steps;        /* successful crl_optimizer_step calls */
  double lr;
  union {
    crl_sgd_options sgd;
    crl_adam_options adam;
    crl_rmsprop_options rms;
  } opt;
};

/* Validate params (non-NULL, float, CPU, contiguous, leaf, no duplicates;
 * errors name `op` and the position), then build an optimizer holding them
 * with zero-filled state tensors for the slots where use_state[k] is set.
 * opt is copied from `opt` (size bytes). */
CRL_INTERNAL crl_optimizer *crl__optim_create(const char *op,
                                              const crl__optim_kind *kind,
                                              crl_tensor *const *params, int n,
                                              double lr, const bool *use_state,
                                              const void *opt, size_t size);
/* A finite, non-negative hyper-parameter, else CRL_EINVAL naming it. */
CRL_INTERNAL int crl__optim_check_nonneg(const char *op, const char *what,
                                         double v);

/* ---- vector helpers ------------------------------------------------------
 * crl__vf / crl__vd: GCC vectors of float / double, CRL__VF / CRL__VD lanes.
 * Arithmetic uses the ordinary operators (a scalar operand is broadcast);
 * sqrt and max go through the helpers below. */
#if defined(__AVX__)
#include <immintrin.h>
#define CRL__VBYTES 32
#elif defined(__SSE2__) || defined(__aarch64__)
#define CRL__VBYTES 16
#if defined(__SSE2__)
#include <emmintrin.h>
#else
#include <arm_neon.h>
#endif
#else
#define CRL__VBYTES 16
#endif
#define CRL__VF (CRL__VBYTES / 4)
#define CRL__VD (CRL__VBYTES / 8)
typedef float crl__vf __attribute__((vector_size(CRL__VBYTES)));
typedef double crl__vd __attribute__((vector_size(CRL__VBYTES)));
typedef int32_t crl__vfi __attribute__((vector_size(CRL__VBYTES)));
typedef int64_t crl__vdi __attribute__((vector_size(CRL__VBYTES)));

static inline crl__vf crl__vsqrt_f(crl__vf x) {
#if defined(__AVX__)
  return (crl__vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE2__)
  return (crl__vf)_mm_sqrt_ps((__m128)x);
#elif defined(__aarch64__)
  return (crl__vf)vsqrtq_f32((float32x4_t)x);
#else
  for (int k = 0; k < CRL__VF; k++)
    x[k] = sqrtf(x[k]);
  return x;
#endif
}
static inline crl__vd crl__vsqrt_d(crl__vd x) {
#if defined(__AVX__)
  return (crl__vd)_mm256_sqrt_pd((__m256d)x);
#elif defined(__SSE2__)
  return (crl__vd)_mm_sqrt_pd((__m128d)x);
#elif defined(__aarch64__)
  return (crl__vd)vsqrtq_f64((float64x2_t)x);
#else
  for (int k = 0; k < CRL__VD; k++)
    x[k] = sqrt(x[k]);
  return x;
#endif
}
/* Lane-wise max; NaN in either operand gives NaN (torch.maximum). */
static inline crl__vf crl__vmax_f(crl__vf a, crl__vf b) {
  crl__vfi take_a = (a > b) | (a != a);
  return (crl__vf)(((crl__vfi)a & take_a) | ((crl__vfi)b & ~take_a));
}
static inline crl__vd crl__vmax_d(crl__vd a, crl__vd b) {
  crl__vdi take_a = (a > b) | (a != a);
  return (crl__vd)(((crl__vdi)a & take_a) | ((crl__vdi)b & ~take_a));
}
static inline crl__vf crl__vclamp0_f(crl__vf a) { /* max(a, 0), NaN kept */
  crl__vfi neg = a < 0;
  return (crl__vf)((crl__vfi)a & ~neg);
}
static inline crl__vd crl__vclamp0_d(crl__vd a) {
  crl__vdi neg = a < 0;
  return (crl__vd)((crl__vdi)a & ~neg);
}

/* Unaligned loads/stores of a whole vector, or of the first `k` lanes
 * (the rest read as 0) for the tail of an array. */
#define CRL__VLOAD(V, ptr)                                                     \
  ({                                                                           \
    V v__;                                                                     \
    memcpy(&v__, (ptr), sizeof v__);                                           \
    v__;                                                                       \
  })
#define CRL__VSTORE(ptr, v) memcpy((ptr), &(v), sizeof(v))
#define CRL__VLOADN(V, ptr, k)                                                 \
  ({                                                                           \
    V v__ = {0};                                                               \
    memcpy(&v__, (ptr), (size_t)(k) * sizeof(v__[0]));                         \
    v__;                                                                       \
  })
#define CRL__VSTOREN(ptr, v, k)                                                \
  memcpy((ptr), &(v), (size_t)(k) * sizeof((v)[0]))

/* Chunk k of an array at ptr, W lanes wide: a whole vector when k == W (the
 * main loop; the test folds away once inlined), else the k-lane tail. */
#define CRL__VLD(V, W, ptr, k)                                                 \
  ((k) == (W) ? CRL__VLOAD(V, ptr) : CRL__VLOADN(V, ptr, k))
#define CRL__VST(W, ptr, val, k)                                               \
  do {                                                                         \
    if ((k) == (W))                                                            \
      CRL__VSTORE(ptr, val);                                                   \
    else                                                                       \
      CRL__VSTOREN(ptr, val, k);                                               \
  } while (0)

#endif
