/* Helpers shared by the classic-control env tests (tests/envs/test_*.c). */
#ifndef CRL_CLASSIC_TEST_UTIL_H
#define CRL_CLASSIC_TEST_UTIL_H

#include "test_util.h"

#include "crl/envs_classic.h"
#include "envs/classic_internal.h"

/* A one-hot int64 [N, n] (or [n] when single) action from indices. */
static inline void set_onehot(crl_env *env, crl_td *td, int64_t n,
                              const int64_t *idx) {
  int bnd = crl_env_batch_ndim(env);
  int64_t N = crl_env_numel(env);
  int64_t shape[2] = {N, n};
  crl_tensor *a =
      bnd ? crl_zeros(CRL_INT64, 2, shape) : crl_zeros(CRL_INT64, 1, &n);
  CRL_CHECK_PTR(a);
  int64_t *p = a->data;
  for (int64_t i = 0; i < N; i++)
    p[i * n + idx[i]] = 1;
  CRL_CHECK_OK(crl_td_set(td, "action", a));
}

/* A float32 [N, 1] (or [1]) action from the N values of u. */
#define set_cont(env, td, u) set_cont_n(env, td, u, sizeof(u) / sizeof(double))
static inline void set_cont_n(crl_env *env, crl_td *td, const double *u,
                              size_t count) {
  int bnd = crl_env_batch_ndim(env);
  int64_t N = (int64_t)count;
  assert_int_equal(N, crl_env_numel(env));
  int64_t shape[2] = {N, 1};
  crl_tensor *a = crl_empty(CRL_FLOAT32, bnd ? 2 : 1, bnd ? shape : shape + 1);
  CRL_CHECK_PTR(a);
  float *p = a->data;
  for (int64_t i = 0; i < N; i++)
    p[i] = (float)u[i];
  CRL_CHECK_OK(crl_td_set(td, "action", a));
}

static inline const float *f32(crl_td *td, const char *key) {
  crl_tensor *t = crl_td_get(td, key);
  CRL_CHECK_PTR(t);
  assert_int_equal(t->dtype, CRL_FLOAT32);
  assert_true(crl_tensor_is_contiguous(t));
  return t->data;
}

static inline const uint8_t *u8(crl_td *td, const char *key) {
  crl_tensor *t = crl_td_get(td, key);
  CRL_CHECK_PTR(t);
  assert_true(t->dtype == CRL_BOOL || t->dtype == CRL_UINT8);
  assert_true(crl_tensor_is_contiguous(t));
  return t->data;
}

/* |got - want| within float precision of want */
#define ASSERT_F32(got, want)                                                  \
  do {                                                                         \
    double w__ = (want);                                                       \
    ASSERT_NEAR((got), w__, 2e-6 * (1.0 + fabs(w__)));                         \
  } while (0)

/* A bool _reset mask entry [N] from flags. */
static inline void set_reset_mask(crl_td *td, int64_t n, const bool *m) {
  crl_tensor *t = crl_zeros(CRL_BOOL, 1, &n);
  CRL_CHECK_PTR(t);
  uint8_t *p = t->data;
  for (int64_t i = 0; i < n; i++)
    p[i] = m[i];
  CRL_CHECK_OK(crl_td_set(td, "_reset", t));
}

/* Snapshot of every env's state and step count. */
typedef struct {
  double s[64][CRL__CLASSIC_MAX_STATE];
  int64_t steps[64];
} state_snap;

static inline void snap(crl_env *env, state_snap *out) {
  int64_t n = crl_env_numel(env);
  assert_true(n <= 64);
  memset(out, 0, sizeof *out);
  for (int64_t i = 0; i < n; i++)
    CRL_CHECK_OK(crl__classic_get_state(env, i, out->s[i], &out->steps[i]));
}

static inline void assert_same_snap(const state_snap *a, const state_snap *b) {
  assert_memory_equal(a, b, sizeof *a);
}

#endif
