/* Values of leaf specs: rand, zero, is_in / assert_is_in (with the reason a
 * value is not in a spec), project and encode. */
#include <math.h>
#include <stdlib.h>

#include "specs_internal.h"

/* Run the statements with T the C type of dtype dt (bool as uint8_t). */
#define SPEC_TYPED(dt, T, ...)                                                 \
  switch (dt) {                                                                \
  case CRL_FLOAT32: {                                                          \
    typedef float T;                                                           \
    __VA_ARGS__                                                                \
  } break;                                                                     \
  case CRL_FLOAT64: {                                                          \
    typedef double T;                                                          \
    __VA_ARGS__                                                                \
  } break;                                                                     \
  case CRL_INT64: {                                                            \
    typedef int64_t T;                                                         \
    __VA_ARGS__                                                                \
  } break;                                                                     \
  case CRL_INT32: {                                                            \
    typedef int32_t T;                                                         \
    __VA_ARGS__                                                                \
  } break;                                                                     \
  case CRL_UINT8:                                                              \
  case CRL_BOOL: {                                                             \
    typedef uint8_t T;                                                         \
    __VA_ARGS__                                                                \
  } break;                                                                     \
  default: break;                                                              \
  }

/* batch ++ spec shape */
static int full_shape(const crl_spec *s, int bnd, const int64_t *batch,
                      int64_t *shape) {
  if (bnd) memcpy(shape, batch, sizeof(int64_t) * (size_t)bnd);
  if (s->ndim) memcpy(shape + bnd, s->shape, sizeof(int64_t) * (size_t)s->ndim);
  return bnd + s->ndim;
}

static int leaf_args(const char *op, const crl_spec *s, int bnd,
                     const int64_t *batch) {
  if (!s) return crl__err(CRL_EINVAL, "%s: spec is NULL", op);
  if (s->kind == CRL_SPEC_COMPOSITE)
    return crl__err(CRL_EINVAL,
                    "%s: a CompositeSpec has no single value (use the _td "
                    "version)",
                    op);
  return crl__spec_check_batch(op, bnd, batch, s->ndim);
}

/* v converted to an integer dtype: rounded half to even, clamped to the
 * dtype's range, NaN -> 0. */
static double to_int_value(crl_dtype dt, double v) {
  if (isnan(v)) return 0;
  v = nearbyint(v);
  switch (dt) {
  case CRL_INT64:
    return v < -9223372036854775808.0  ? -9223372036854775808.0
           : v > 9223372036854774784.0 ? 9223372036854774784.0
                                       : v;
  case CRL_INT32:
    return v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v;
  case CRL_UINT8: return v < 0 ? 0 : v > 255 ? 255 : v;
  default: return v;
  }
}

/* ---- rand ---------------------------------------------------------------- */

/* Bounded float values: uniform where both bounds are finite, low + |z| /
 * high - |z| / z where one or both are infinite. */
static crl_tensor *rand_bounded_float(const crl_spec *s, crl_rng *g, int nd,
                                      const int64_t *shape) {
  int64_t S = s->numel;
  bool finite = true;
  for (int64_t j = 0; j < S && finite; j++)
    finite = isfinite(crl__load(s->dtype, s->low->data, j)) &&
             isfinite(crl__load(s->dtype, s->high->data, j));
  crl_tensor *out = crl_empty(s->dtype, nd, shape);
  if (!out || crl_uniform_(out, g, 0.0, 1.0)) return NULL;
  int64_t R = S ? out->numel / S : 0;
  if (finite) {
    SPEC_TYPED(s->dtype, T, {
      T *restrict o = out->data;
      const T *restrict L = s->low->data, *restrict H = s->high->data;
      for (int64_t r = 0; r < R; r++, o += S)
        for (int64_t j = 0; j < S; j++) {
          double u = o[j], l = L[j], h = H[j];
          double v = l * (1.0 - u) + h * u; /* never overflows */
          v = v < l ? l : v;
          o[j] = (T)(v > h ? h : v);
        }
    });
    return out;
  }
  crl_tensor *z = crl_randn(g, CRL_FLOAT64, nd, shape);
  if (!z) return NULL;
  const double *zd = z->data;
  for (int64_t i = 0; i < out->numel; i++) {
    double l = crl__load(s->dtype, s->low->data, i % S);
    double h = crl__load(s->dtype, s->high->data, i % S);
    double u = crl__load(s->dtype, out->data, i), v;
    if (isfinite(l) && isfinite(h))
      v = l * (1.0 - u) + h * u;
    else if (isfinite(l))
      v = l + fabs(zd[i]);
    else if (isfinite(h))
      v = h - fabs(zd[i]);
    else
      v = zd[i];
    v = v < l ? l : v > h ? h : v;
    crl__store(s->dtype, out->data, i, v);
  }
  return out;
}

/* Bounded integer values, uniform on [low, high]. */
static crl_tensor *rand_bounded_int(const crl_spec *s, crl_rng *g, int nd,
                                    const int64_t *shape) {
  if (s->scalar)
    return crl_randint(g, (int64_t)s->lo, (int64_t)s->hi + 1, s->dtype, nd,
                       shape);
  crl_tensor *u = crl_rand(g, CRL_FLOAT64, nd, shape);
  crl_tensor *out = u ? crl_empty(s->dtype, nd, shape) : NULL;
  if (!out) return NULL;
  const double *ud = u->data;
  int64_t S = s->numel;
  for (int64_t i = 0; i < out->numel; i++) {
    double l = crl__load(s->dtype, s->low->data, i % S);
    double h = crl__load(s->dtype, s->high->data, i % S);
    double v = l + floor(ud[i] * (h - l + 1));
    crl__store(s->dtype, out->data, i, v > h ? h : v);
  }
  return out;
}

static crl_tensor *rand_leaf(const crl_spec *s, crl_rng *g, int nd,
                             const int64_t *shape) {
  crl_dtype dt = s->dtype;
  int64_t rows = s->n ? crl__numel(nd, shape) / s->n : 0;
  switch (s->kind) {
  case CRL_SPEC_UNBOUNDED: {
    if (crl_dtype_is_float(dt)) {
      crl_tensor *out = crl_empty(dt, nd, shape);
      return out && !crl_normal_(out, g, 0.0, 1.0) ? out : NULL;
    }
    int64_t hi = dt == CRL_INT64   ? INT64_MAX
                 : dt == CRL_INT32 ? (int64_t)INT32_MAX + 1
                 : dt == CRL_UINT8 ? 256
                                   : 2;
    return crl_randint(g, 0, hi, dt, nd, shape);
  }
  case CRL_SPEC_BOUNDED:
    return crl_dtype_is_float(dt) ? rand_bounded_float(s, g, nd, shape)
                                  : rand_bounded_int(s, g, nd, shape);
  case CRL_SPEC_DISCRETE: return crl_randint(g, 0, s->n, dt, nd, shape);
  case CRL_SPEC_BINARY: return crl_randint(g, 0, 2, dt, nd, shape);
  case CRL_SPEC_ONE_HOT: {
    crl_tensor *idx = crl_randint(g, 0, s->n, CRL_INT64, 1, &rows);
    crl_tensor *out = idx ? crl_zeros(dt, nd, shape) : NULL;
    if (!out) return NULL;
    const int64_t *id = idx->data;
    for (int64_t r = 0; r < rows; r++)
      crl__store(dt, out->data, r * s->n + id[r], 1.0);
    return out;
  }
  case CRL_SPEC_MULTI_ONE_HOT: {
    int64_t us[2] = {rows, s->k};
    crl_tensor *u = crl_rand(g, CRL_FLOAT64, 2, us);
    crl_tensor *out = u ? crl_zeros(dt, nd, shape) : NULL;
    if (!out) return NULL;
    const double *ud = u->data;
    for (int64_t r = 0; r < rows; r++) {
      int64_t off = r * s->n;
      for (int j = 0; j < s->k; off += s->nvec[j], j++) {
        int64_t c = (int64_t)(ud[r * s->k + j] * (double)s->nvec[j]);
        if (c >= s->nvec[j]) c = s->nvec[j] - 1;
        crl__store(dt, out->data, off + c, 1.0);
      }
    }
    return out;
  }
  default: return CRL_ERR_NULL(CRL_EINVAL, "spec_rand: unknown spec kind");
  }
}

crl_tensor *crl_spec_rand(const crl_spec *s, crl_rng *g, int bnd,
                          const int64_t *batch) {
  if (leaf_args("spec_rand", s, bnd, batch)) return NULL;
  if (!g) return CRL_ERR_NULL(CRL_EINVAL, "spec_rand: generator is NULL");
  int64_t shape[CRL_MAX_DIMS];
  int nd = full_shape(s, bnd, batch, shape);
  crl_scope_begin();
  crl_tensor *out = rand_leaf(s, g, nd, shape);
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(out);
}

/* ---- zero ---------------------------------------------------------------- */

crl_tensor *crl_spec_zero(const crl_spec *s, int bnd, const int64_t *batch) {
  if (leaf_args("spec_zero", s, bnd, batch)) return NULL;
  int64_t shape[CRL_MAX_DIMS];
  int nd = full_shape(s, bnd, batch, shape);
  crl_tensor *out = crl_zeros(s->dtype, nd, shape);
  if (!out) return NULL;
  int64_t rows = s->n ? out->numel / s->n : 0;
  if (s->kind == CRL_SPEC_BOUNDED) {
    int64_t S = s->numel;
    for (int64_t i = 0; i < out->numel; i++) {
      double l = crl__load(s->dtype, s->low->data, i % S);
      double h = crl__load(s->dtype, s->high->data, i % S);
      if (l > 0 || h < 0) crl__store(s->dtype, out->data, i, l > 0 ? l : h);
    }
  } else if (s->kind == CRL_SPEC_ONE_HOT) {
    for (int64_t r = 0; r < rows; r++)
      crl__store(s->dtype, out->data, r * s->n, 1.0);
  } else if (s->kind == CRL_SPEC_MULTI_ONE_HOT) {
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0, off = r * s->n; j < s->k; off += s->nvec[j++])
        crl__store(s->dtype, out->data, off, 1.0);
  }
  return out;
}

/* ---- is_in --------------------------------------------------------------- */

/* "[1, 2]": the multi-index of flat element i of a tensor of shape */
static const char *index_str(int ndim, const int64_t *shape, int64_t i,
                             char *buf, size_t size) {
  int64_t idx[CRL_MAX_DIMS];
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return crl_shape_str(ndim, idx, buf, size);
}

/* a value as text, in the style of the print functions */
static const char *val_str(double v, crl_dtype dt, char *buf, size_t size) {
  crl__sbuf sb = {buf, size, 0};
  buf[0] = 0;
  if (crl_dtype_is_float(dt) || isnan(v))
    crl__sb_printf(&sb, "%g", v);
  else
    crl__sb_printf(&sb, "%lld", (long long)v);
  return buf;
}

/* First element of a one-hot group of `n` values at x[off..] (stride 1)
 * that is not 0/1, or -1 with *ones set to the count of 1s. */
static int64_t group_check(const crl_tensor *c, int64_t off, int64_t n,
                           int64_t *ones) {
  *ones = 0;
  for (int64_t j = 0; j < n; j++) {
    double v = crl__load(c->dtype, c->data, off + j);
    if (v == 1)
      ++*ones;
    else if (v != 0)
      return off + j;
  }
  return -1;
}

/* The domain part of explain on contiguous c: 0, or CRL_EINVAL with the
 * reason in why. */
static int domain_check(const crl_spec *s, const crl_tensor *c, char *why,
                        size_t size) {
  int64_t N = c->numel, bad = -1;
  char ib[160], vb[64], lb[64], hb[64];
#define WHY(...) (why ? (void)snprintf(why, size, __VA_ARGS__) : (void)0)
#define AT(i) index_str(c->ndim, c->shape, (i), ib, sizeof ib)
#define VAL(i)                                                                 \
  val_str(crl__load(c->dtype, c->data, (i)), c->dtype, vb, sizeof vb)
  switch (s->kind) {
  case CRL_SPEC_UNBOUNDED: {
    bool ok = true;
    if (c->dtype == CRL_FLOAT32 || c->dtype == CRL_FLOAT64) {
      SPEC_TYPED(c->dtype, T, {
        const T *x = c->data;
        for (int64_t i = 0; i < N; i++)
          ok &= x[i] == x[i];
        for (int64_t i = 0; !ok && bad < 0; i++)
          if (x[i] != x[i]) bad = i;
      });
    }
    if (ok) return 0;
    WHY("value nan at index %s is in no spec", AT(bad));
    return CRL_EINVAL;
  }
  case CRL_SPEC_BOUNDED: {
    int64_t S = s->numel, R = S ? N / S : 0;
    bool ok = true;
    SPEC_TYPED(c->dtype, T, {
      const T *x = c->data, *L = s->low->data, *H = s->high->data;
      for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < S; j++) {
          T v = x[r * S + j];
          ok &= (v >= L[j]) & (v <= H[j]);
        }
      for (int64_t i = 0; !ok && bad < 0; i++)
        if (!(x[i] >= L[i % S] && x[i] <= H[i % S])) bad = i;
    });
    if (ok) return 0;
    WHY("value %s at index %s is outside the bounds [%s, %s]", VAL(bad),
        AT(bad),
        val_str(crl__load(s->dtype, s->low->data, bad % S), s->dtype, lb,
                sizeof lb),
        val_str(crl__load(s->dtype, s->high->data, bad % S), s->dtype, hb,
                sizeof hb));
    return CRL_EINVAL;
  }
  case CRL_SPEC_DISCRETE:
  case CRL_SPEC_BINARY: {
    double n = s->kind == CRL_SPEC_DISCRETE ? (double)s->n : 2.0;
    bool ok = true;
    SPEC_TYPED(c->dtype, T, {
      const T *x = c->data;
      for (int64_t i = 0; i < N; i++) {
        double v = (double)x[i];
        ok &= (v >= 0) & (v < n) & (v == floor(v));
      }
      for (int64_t i = 0; !ok && bad < 0; i++) {
        double v = (double)x[i];
        if (!(v >= 0 && v < n && v == floor(v))) bad = i;
      }
    });
    if (ok) return 0;
    if (s->kind == CRL_SPEC_BINARY)
      WHY("value %s at index %s is not 0 or 1", VAL(bad), AT(bad));
    else
      WHY("value %s at index %s is not a category in [0, %lld)", VAL(bad),
          AT(bad), (long long)s->n);
    return CRL_EINVAL;
  }
  case CRL_SPEC_ONE_HOT:
  case CRL_SPEC_MULTI_ONE_HOT: {
    int64_t rows = N / s->n, ones;
    int k = s->kind == CRL_SPEC_ONE_HOT ? 1 : s->k;
    const int64_t *nv = s->kind == CRL_SPEC_ONE_HOT ? &s->n : s->nvec;
    for (int64_t r = 0; r < rows; r++) {
      int64_t off = r * s->n;
      for (int j = 0; j < k; off += nv[j], j++) {
        bad = group_check(c, off, nv[j], &ones);
        char grp[64] = "";
        if (k > 1)
          snprintf(grp, sizeof grp, " (group %d of size %lld)", j,
                   (long long)nv[j]);
        if (bad >= 0) {
          WHY("value %s at index %s is not 0 or 1%s", VAL(bad), AT(bad), grp);
          return CRL_EINVAL;
        }
        if (ones != 1) {
          WHY("the one-hot entries starting at index %s%s have %lld ones "
              "(needs exactly one)",
              AT(off), grp, (long long)ones);
          return CRL_EINVAL;
        }
      }
    }
    return 0;
  }
  default: return 0;
  }
#undef WHY
#undef AT
#undef VAL
}

int crl__spec_explain(const crl_spec *s, const crl_tensor *t, char *why,
                      size_t size) {
  char b1[160], b2[160];
  if (!s || !t) {
    if (why) snprintf(why, size, "spec or value is NULL");
    return CRL_EINVAL;
  }
  if (s->kind == CRL_SPEC_COMPOSITE) {
    if (why)
      snprintf(why, size, "a CompositeSpec takes a TensorDict (use check_td)");
    return CRL_EINVAL;
  }
  int lead = t->ndim - s->ndim;
  if (lead < 0 || memcmp(t->shape + (lead > 0 ? lead : 0), s->shape,
                         sizeof(int64_t) * (size_t)s->ndim)) {
    if (why)
      snprintf(why, size, "shape %s does not end with the spec's shape %s",
               CRL_SHAPE_STR(t, b1),
               crl_shape_str(s->ndim, s->shape, b2, sizeof b2));
    return CRL_ESHAPE;
  }
  if (t->dtype != s->dtype) {
    if (why)
      snprintf(why, size, "dtype %s, the spec expects %s",
               crl_dtype_name(t->dtype), crl_dtype_name(s->dtype));
    return CRL_EDTYPE;
  }
  if (t->device.type != s->device.type) {
    if (why)
      snprintf(why, size, "device %s, the spec is on %s",
               crl_device_name(t->device), crl_device_name(s->device));
    return CRL_EDEVICE;
  }
  if (t->numel == 0) return 0;
  if (crl_tensor_is_contiguous(t)) return domain_check(s, t, why, size);
  crl_scope_begin();
  crl_tensor *c = crl__to_contig_dtype((crl_tensor *)t, t->dtype);
  int rc = c ? domain_check(s, c, why, size) : crl_last_error_code();
  crl_scope_end();
  return rc;
}

bool crl_spec_is_in(const crl_spec *s, crl_tensor *t) {
  return crl__spec_explain(s, t, NULL, 0) == 0;
}

int crl_spec_assert_is_in(const crl_spec *s, crl_tensor *t) {
  char why[600];
  int rc = crl__spec_explain(s, t, why, sizeof why);
  if (!rc) return 0;
  return crl__err(rc, "spec_assert_is_in: %s (%s)", why,
                  s ? crl_spec_kind_name(s->kind) : "NULL spec");
}

/* ---- project ------------------------------------------------------------- */

/* argmax of a group of n values (first on ties, NaN never wins) */
static int64_t group_argmax(const crl_tensor *c, int64_t off, int64_t n) {
  int64_t best = 0;
  double bv = -INFINITY;
  bool any = false;
  for (int64_t j = 0; j < n; j++) {
    double v = crl__load(c->dtype, c->data, off + j);
    if (!isnan(v) && (!any || v > bv)) bv = v, best = j, any = true;
  }
  return best;
}

static void project_into(const crl_spec *s, const crl_tensor *c,
                         crl_tensor *out) {
  crl_dtype dt = s->dtype, st = c->dtype;
  bool to_int = !crl_dtype_is_float(dt);
  int64_t N = c->numel, S = s->numel;
  switch (s->kind) {
  case CRL_SPEC_BOUNDED:
    if (st == dt) { /* same dtype: a typed clamp */
      SPEC_TYPED(dt, T, {
        const T *x = c->data, *L = s->low->data, *H = s->high->data;
        T *o = out->data;
        for (int64_t i = 0; i < N; i++) {
          T v = x[i], l = L[i % S], h = H[i % S];
          o[i] = v >= l ? (v <= h ? v : h) : l; /* NaN -> low */
        }
      });
      return;
    }
    for (int64_t i = 0; i < N; i++) {
      double v = crl__load(st, c->data, i);
      double l = crl__load(dt, s->low->data, i % S);
      double h = crl__load(dt, s->high->data, i % S);
      if (to_int && !isnan(v)) v = nearbyint(v);
      v = v >= l ? (v <= h ? v : h) : l;
      crl__store(dt, out->data, i, v);
    }
    return;
  case CRL_SPEC_DISCRETE:
    for (int64_t i = 0; i < N; i++) {
      double v = crl__load(st, c->data, i);
      v = isnan(v) ? 0 : nearbyint(v);
      v = v < 0 ? 0 : v > (double)(s->n - 1) ? (double)(s->n - 1) : v;
      crl__store(dt, out->data, i, v);
    }
    return;
  case CRL_SPEC_BINARY:
    for (int64_t i = 0; i < N; i++)
      crl__store(dt, out->data, i, crl__load(st, c->data, i) > 0.5 ? 1 : 0);
    return;
  case CRL_SPEC_ONE_HOT:
  case CRL_SPEC_MULTI_ONE_HOT: {
    int k = s->kind == CRL_SPEC_ONE_HOT ? 1 : s->k;
    const int64_t *nv = s->kind == CRL_SPEC_ONE_HOT ? &s->n : s->nvec;
    memset(out->data, 0, (size_t)N * crl_dtype_size(dt));
    for (int64_t off = 0; off < N;)
      for (int j = 0; j < k; off += nv[j], j++)
        crl__store(dt, out->data, off + group_argmax(c, off, nv[j]), 1.0);
    return;
  }
  default: /* unbounded: dtype conversion */
    for (int64_t i = 0; i < N; i++) {
      double v = crl__load(st, c->data, i);
      if (to_int && dt != CRL_BOOL) v = to_int_value(dt, v);
      crl__store(dt, out->data, i, v);
    }
    return;
  }
}

crl_tensor *crl_spec_project(const crl_spec *s, crl_tensor *t) {
  const char *op = "spec_project";
  char b1[160], b2[160];
  if (!s || !t) return CRL_ERR_NULL(CRL_EINVAL, "%s: NULL argument", op);
  if (s->kind == CRL_SPEC_COMPOSITE)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: a CompositeSpec cannot project a "
                        "tensor",
                        op);
  if (crl__check_cpu(op, t)) return NULL;
  int lead = t->ndim - s->ndim;
  if (lead < 0 ||
      memcmp(t->shape + lead, s->shape, sizeof(int64_t) * (size_t)s->ndim))
    return CRL_ERR_NULL(
        CRL_ESHAPE, "%s: shape %s does not end with the spec's shape %s", op,
        CRL_SHAPE_STR(t, b1), crl_shape_str(s->ndim, s->shape, b2, sizeof b2));
  crl_scope_begin();
  crl_tensor *c =
      crl_tensor_is_contiguous(t) ? t : crl__to_contig_dtype(t, t->dtype);
  crl_tensor *out = c ? crl_empty(s->dtype, t->ndim, t->shape) : NULL;
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  project_into(s, c, out);
  return crl_scope_end_keep(out);
}

/* ---- encode -------------------------------------------------------------- */

/* One-hot (multi-one-hot) tensor from k category indices per row. */
static crl_tensor *encode_indices(const crl_spec *s, const void *data,
                                  crl_dtype src_dt, int64_t rows) {
  int k = s->kind == CRL_SPEC_ONE_HOT ? 1 : s->k;
  const int64_t *nv = s->kind == CRL_SPEC_ONE_HOT ? &s->n : s->nvec;
  for (int64_t r = 0, i = 0; r < rows; r++)
    for (int j = 0; j < k; j++, i++) {
      double v = crl__load(src_dt, data, i);
      if (!(v >= 0 && v < (double)nv[j] && v == floor(v)))
        return CRL_ERR_NULL(CRL_EINDEX,
                            "spec_encode: index %g at position %lld is not a "
                            "category of a group of size %lld",
                            v, (long long)i, (long long)nv[j]);
    }
  crl_tensor *out = crl_zeros(s->dtype, s->ndim, s->shape);
  if (!out) return NULL;
  for (int64_t r = 0, i = 0; r < rows; r++) {
    int64_t off = r * s->n;
    for (int j = 0; j < k; off += nv[j], j++, i++)
      crl__store(s->dtype, out->data, off + (int64_t)crl__load(src_dt, data, i),
                 1.0);
  }
  return out;
}

crl_tensor *crl_spec_encode(const crl_spec *s, const void *data,
                            crl_dtype src_dt, int64_t n) {
  const char *op = "spec_encode";
  char b[160];
  if (!s) return CRL_ERR_NULL(CRL_EINVAL, "%s: spec is NULL", op);
  if (s->kind == CRL_SPEC_COMPOSITE)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: a CompositeSpec cannot encode an "
                        "array",
                        op);
  if ((unsigned)src_dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: invalid source dtype %d", op,
                        (int)src_dt);
  if (n > 0 && !data)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: data is NULL for %lld values", op,
                        (long long)n);
  bool hot = s->kind == CRL_SPEC_ONE_HOT || s->kind == CRL_SPEC_MULTI_ONE_HOT;
  int64_t rows = hot ? s->numel / s->n : 0;
  int64_t nidx = s->kind == CRL_SPEC_ONE_HOT ? rows : rows * s->k;
  if (n != s->numel && !(hot && n == nidx)) {
    if (hot)
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "%s: %lld values fit neither the spec's shape %s "
                          "(%lld values) nor its %lld category indices",
                          op, (long long)n,
                          crl_shape_str(s->ndim, s->shape, b, sizeof b),
                          (long long)s->numel, (long long)nidx);
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: %lld values do not fill the spec's shape %s "
                        "(%lld values)",
                        op, (long long)n,
                        crl_shape_str(s->ndim, s->shape, b, sizeof b),
                        (long long)s->numel);
  }
  if (n != s->numel) return encode_indices(s, data, src_dt, rows);
  crl_scope_begin();
  crl_tensor *raw = crl_from_array(src_dt, s->ndim, s->shape, data);
  crl_tensor *out = !raw                 ? NULL
                    : src_dt == s->dtype ? raw
                                         : crl_cast(raw, s->dtype);
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(out);
}
