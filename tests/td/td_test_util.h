/* Helpers shared by the TensorDict tests (tests/td/test_td_*.c). */
#ifndef CRL_TD_TEST_UTIL_H
#define CRL_TD_TEST_UTIL_H

#include "test_util.h"

/* A tensor of dtype dt and the given shape holding base, base + 1, ... */
static inline crl_tensor *seq(crl_dtype dt, int ndim, const int64_t *shape,
                              double base) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  for (int64_t i = 0; i < t->numel; i++)
    crl_tensor_set_flat(t, i, base + (double)i);
  return t;
}

/* Assert view shares orig's storage: write element vflat of the view, read
 * it back as element oflat of the original. */
static inline void shares(crl_tensor *view, crl_tensor *orig, int64_t vflat,
                          int64_t oflat) {
  assert_ptr_equal(view->storage, orig->storage);
  crl_tensor_set_flat(view, vflat, -777);
  ASSERT_NEAR(crl_tensor_get_flat(orig, oflat), -777, 0);
}

/* Assert td's batch size is b[0..ndim). */
static inline void batch_is(const crl_td *td, int ndim, const int64_t *b) {
  char x[160], y[160];
  bool ok = crl_td_batch_ndim(td) == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = crl_td_batch_size(td)[i] == b[i];
  if (!ok)
    fail_msg("batch size %s, expected %s",
             crl_shape_str(crl_td_batch_ndim(td), crl_td_batch_size(td), x,
                           sizeof x),
             crl_shape_str(ndim, b, y, sizeof y));
}

/* Assert the keys crl_td_keys_get(td, nested, leaves_only) lists are
 * exactly `want` (joined with ',', in order). */
static inline void td_keys_are(const crl_td *td, bool nested, bool leaves_only,
                               const char *want) {
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(td, nested, leaves_only, &k));
  char got[512] = "";
  for (int i = 0; i < k.n; i++) {
    if (i) strcat(got, ",");
    strcat(got, k.keys[i]);
  }
  crl_td_keys_free(&k);
  if (strcmp(got, want) != 0) fail_msg("keys '%s', expected '%s'", got, want);
}

#endif
