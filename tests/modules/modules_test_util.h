/* Helpers shared by the tests of src/modules. */
#ifndef CRL_MODULES_TEST_UTIL_H
#define CRL_MODULES_TEST_UTIL_H

#include "test_util.h"

/* A float32 tensor from a C array. */
static inline crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  return crl_from_array(CRL_FLOAT32, ndim, shape, v);
}

/* Overwrite a parameter in place (no autograd). */
static inline void set_param(crl_td *params, const char *key,
                             crl_tensor *value) {
  crl_tensor *p = crl_td_get(params, key);
  if (!p) fail_msg("no parameter '%s': %s", key, crl_last_error());
  crl_no_grad_begin();
  int rc = crl_copy_(p, value);
  crl_no_grad_end();
  if (rc) fail_msg("copy into '%s': %s", key, crl_last_error());
}

/* Linear(in -> out) with weight w [out, in] and bias b [out]. */
static inline crl_module *linear_with(int64_t in, int64_t out, const float *w,
                                      const float *b) {
  crl_rng g;
  crl_rng_seed(&g, 1);
  crl_module *l = crl_linear_new(in, out, true, &g);
  if (!l) fail_msg("linear_new: %s", crl_last_error());
  set_param(crl_module_params(l), "weight", f32(CRL_SHAPE(out, in), w));
  set_param(crl_module_params(l), "bias", f32(CRL_SHAPE(out), b));
  return l;
}

/* A random Linear(in -> out). */
static inline crl_module *linear_rand(int64_t in, int64_t out, uint64_t seed) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  crl_module *l = crl_linear_new(in, out, true, &g);
  if (!l) fail_msg("linear_new: %s", crl_last_error());
  return l;
}

/* A TensorDict of batch [n] (or [] when n == 0) with one entry. */
static inline crl_td *td_with(int64_t n, const char *key, crl_tensor *t) {
  crl_td *td = n ? crl_td_new(CRL_SHAPE(n)) : crl_td_new(CRL_SCALAR);
  if (!td || crl_td_set(td, key, t))
    fail_msg("td_with '%s': %s", key, crl_last_error());
  return td;
}

/* Element-wise equality within tol of two tensors of the same shape. */
static inline void assert_close(crl_tensor *a, crl_tensor *b, double tol) {
  if (!a || !b) fail_msg("NULL tensor: %s", crl_last_error());
  if (!crl_same_shape(a, b)) {
    char x[160], y[160];
    fail_msg("shapes %s and %s differ",
             crl_shape_str(a->ndim, a->shape, x, 160),
             crl_shape_str(b->ndim, b->shape, y, 160));
  }
  for (int64_t i = 0; i < a->numel; i++) {
    double u = crl_tensor_get_flat(a, i), v = crl_tensor_get_flat(b, i);
    if (!(fabs(u - v) <= tol))
      fail_msg("element %lld: %.9g vs %.9g", (long long)i, u, v);
  }
}

#endif
