/* Shared helpers for crl's cmocka tests. */
#ifndef CRL_TEST_UTIL_H
#define CRL_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crl/crl.h"

/* Fail with crl's message when an expression returns NULL / non-zero. */
#define CRL_CHECK_PTR(p)                                                       \
  do {                                                                         \
    if (!(p)) fail_msg("%s returned NULL: %s", #p, crl_last_error());          \
  } while (0)
#define CRL_CHECK_OK(rc)                                                       \
  do {                                                                         \
    int rc__ = (rc);                                                           \
    if (rc__) fail_msg("%s returned %d: %s", #rc, rc__, crl_last_error());     \
  } while (0)
/* Assert that the last error message contains a substring. */
#define CRL_ASSERT_ERR_HAS(sub)                                                \
  do {                                                                         \
    if (!strstr(crl_last_error(), (sub)))                                      \
      fail_msg("error '%s' does not contain '%s'", crl_last_error(), (sub));   \
  } while (0)
#define ASSERT_NEAR(a, b, tol)                                                 \
  do {                                                                         \
    double a__ = (a), b__ = (b);                                               \
    if (!(fabs(a__ - b__) <= (tol)))                                           \
      fail_msg("%s = %.9g, expected %.9g (tol %g)", #a, a__, b__,              \
               (double)(tol));                                                 \
  } while (0)

/* Compare every element of t (any dtype/layout) with a double array. */
static inline void assert_tensor_values(const crl_tensor *t,
                                        const double *expect, int64_t n,
                                        double tol) {
  if (t->numel != n)
    fail_msg("tensor has %lld elements, expected %lld", (long long)t->numel,
             (long long)n);
  for (int64_t i = 0; i < n; i++) {
    double v = crl_tensor_get_flat(t, i);
    if (!(fabs(v - expect[i]) <= tol) && !(isnan(v) && isnan(expect[i])) &&
        !(v == expect[i]))
      fail_msg("element %lld = %.9g, expected %.9g", (long long)i, v,
               expect[i]);
  }
}

static inline void assert_shape(const crl_tensor *t, int ndim,
                                const int64_t *shape) {
  char a[160], b[160];
  if (t->ndim != ndim) goto bad;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != shape[i]) goto bad;
  return;
bad:
  fail_msg("shape %s, expected %s", crl_shape_str(t->ndim, t->shape, a, 160),
           crl_shape_str(ndim, shape, b, 160));
}

/* The bytes of the file at path, malloc'ed with a NUL after them (*n: their
 * count); fails the test when the file cannot be read. */
static inline void *read_file_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  if (fread(b, 1, (size_t)len, f) != (size_t)len)
    fail_msg("short read %s", path);
  fclose(f);
  b[len] = 0;
  *n = (size_t)len;
  return b;
}

/* Write n bytes to path (created or truncated); fails the test on error. */
static inline void write_file_bytes(const char *path, const void *data,
                                    size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) fail_msg("cannot create %s", path);
  if (fwrite(data, 1, n, f) != n) fail_msg("short write %s", path);
  if (fclose(f) != 0) fail_msg("cannot close %s", path);
}

/* A generator seeded with seed. */
static inline crl_rng seeded_rng(uint64_t seed) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  return g;
}

/* A tensor of normal(0, 1) values of dtype dt from a generator seeded with
 * seed (fails the test on error). */
static inline crl_tensor *seeded_randn(uint64_t seed, crl_dtype dt, int ndim,
                                       const int64_t *shape) {
  crl_rng g = seeded_rng(seed);
  crl_tensor *t = crl_randn(&g, dt, ndim, shape);
  CRL_CHECK_PTR(t);
  return t;
}

/* A tensor of dtype dt holding the doubles v (converted). */
static inline crl_tensor *tensor_from_doubles(crl_dtype dt, int ndim,
                                              const int64_t *shape,
                                              const double *v) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->numel; i++)
    crl_tensor_set_flat(t, i, v[i]);
  return t;
}

/* Overwrite t's elements (a parameter, say) with v, grad mode off. */
static inline void set_values(crl_tensor *t, const double *v) {
  crl_no_grad_begin();
  for (int64_t i = 0; i < t->numel; i++)
    crl_tensor_set_flat(t, i, v[i]);
  crl_no_grad_end();
}

/* A float64 tensor from values, requiring grad (for gradient checks). */
static inline crl_tensor *leaf64(int ndim, const int64_t *shape,
                                 const double *vals) {
  crl_tensor *t = crl_from_array(CRL_FLOAT64, ndim, shape, vals);
  if (t) crl_set_requires_grad(t, true);
  return t;
}

/* A float64 tensor of normal(0,1) values (seeded), requiring grad. */
static inline crl_tensor *randn_leaf64(uint64_t seed, int ndim,
                                       const int64_t *shape) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  crl_tensor *t = crl_randn(&g, CRL_FLOAT64, ndim, shape);
  if (t) crl_set_requires_grad(t, true);
  return t;
}

/* Run a group, wrapping each test in a scope so temporaries are freed. */
static inline int crl_test_setup(void **state) {
  (void)state;
  crl_clear_error();
  crl_scope_begin();
  return 0;
}
static inline int crl_test_teardown(void **state) {
  (void)state;
  crl_scope_end();
  return 0;
}
#define CRL_TEST(f)                                                            \
  cmocka_unit_test_setup_teardown(f, crl_test_setup, crl_test_teardown)

#endif
