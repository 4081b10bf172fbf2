/* Helpers shared by the optimizer tests (test_sgd.c, test_adam.c,
 * test_rmsprop.c): parameters and gradients from doubles, and a relative
 * comparison against a double-precision reference. */
#ifndef CRL_OPTIM_TEST_UTIL_H
#define CRL_OPTIM_TEST_UTIL_H

#include "test_util.h"

/* A 1-d parameter of dtype dt holding v[0..n), requiring grad. */
static inline crl_tensor *param(crl_dtype dt, int64_t n, const double *v) {
  crl_tensor *p = crl_zeros(dt, CRL_SHAPE(n));
  for (int64_t i = 0; i < n; i++)
    crl_tensor_set_flat(p, i, v[i]);
  crl_set_requires_grad(p, true);
  return p;
}

/* Give p a gradient (replacing any). */
static inline void set_grad(crl_tensor *p, const double *g) {
  crl_tensor *t = crl_zeros(p->dtype, p->ndim, p->shape);
  for (int64_t i = 0; i < p->numel; i++)
    crl_tensor_set_flat(t, i, g[i]);
  crl_tensor_release(p->grad);
  p->grad = crl_tensor_retain(t);
}

/* Every element of t within tol * (1 + |ref|) of ref. */
static inline void assert_close(const crl_tensor *t, const double *ref,
                                double tol) {
  for (int64_t i = 0; i < t->numel; i++) {
    double v = crl_tensor_get_flat(t, i);
    if (!(fabs(v - ref[i]) <= tol * (1 + fabs(ref[i]))))
      fail_msg("element %lld = %.12g, expected %.12g", (long long)i, v, ref[i]);
  }
}

#endif
