/* Tensor specs (torchrl.data.tensor_specs): lifetime, construction of leaf
 * specs, inspection, equality, clone, expand and printing. Values (rand,
 * zero, is_in, project, encode) are in specs_values.c, composites in
 * specs_composite.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "specs_internal.h"

/* ---- lifetime ------------------------------------------------------------ */

static void release_spec(void *s) { crl_spec_release(s); }

crl_spec *crl__spec_new_raw(crl_spec_kind kind, crl_dtype dt, int ndim,
                            const int64_t *shape) {
  crl_spec *s = calloc(1, sizeof *s);
  if (!s) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (spec)");
  s->refcount = 1;
  s->kind = kind;
  s->dtype = dt;
  s->device = CRL_DEVICE_CPU;
  s->ndim = ndim;
  if (ndim) memcpy(s->shape, shape, sizeof(int64_t) * (size_t)ndim);
  s->numel = crl__numel(ndim, s->shape);
  crl__scope_adopt_obj(s, release_spec);
  return s;
}

void crl__spec_discard(crl_spec *s) { crl__discard_obj(s, release_spec); }

crl_spec *crl__spec_scope_end_keep(crl_spec *keep) {
  crl_spec_retain(keep);
  crl_scope_end();
  crl__scope_adopt_obj(keep, release_spec);
  return keep;
}

crl_spec *crl_spec_retain(crl_spec *s) {
  if (s)
    atomic_fetch_add_explicit((_Atomic int *)&s->refcount, 1,
                              memory_order_relaxed);
  return s;
}

void crl_spec_release(crl_spec *s) {
  if (!s) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&s->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  crl_tensor_release(s->low);
  crl_tensor_release(s->high);
  free(s->nvec);
  if (s->kind == CRL_SPEC_COMPOSITE) crl__spec_comp_free(s);
  free(s);
}

int crl__spec_check_batch(const char *op, int bnd, const int64_t *batch,
                          int ndim) {
  if (bnd < 0 || bnd + ndim > CRL_MAX_DIMS)
    return crl__err(CRL_EINVAL,
                    "%s: %d batch dims + a spec of %d dims exceed %d dims", op,
                    bnd, ndim, CRL_MAX_DIMS);
  if (bnd && !batch)
    return crl__err(CRL_EINVAL, "%s: batch is NULL for %d batch dims", op, bnd);
  for (int i = 0; i < bnd; i++)
    if (batch[i] < 0) {
      char b[160];
      return crl__err(
          CRL_EINVAL, "%s: negative size %lld at dim %d of batch %s", op,
          (long long)batch[i], i, crl_shape_str(bnd, batch, b, sizeof b));
    }
  return 0;
}

/* ---- construction -------------------------------------------------------- */

static int check_dtype(const char *op, crl_dtype dt) {
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return crl__err(CRL_EDTYPE, "%s: invalid dtype %d", op, (int)dt);
  return 0;
}

/* The values an integer dtype holds, as doubles that convert back exactly
 * (the int64 maximum is the largest double below 2^63). */
static void int_range(crl_dtype dt, double *mn, double *mx) {
  switch (dt) {
  case CRL_INT64:
    *mn = -9223372036854775808.0, *mx = 9223372036854774784.0;
    break;
  case CRL_INT32: *mn = INT32_MIN, *mx = INT32_MAX; break;
  case CRL_UINT8: *mn = 0, *mx = 255; break;
  case CRL_BOOL: *mn = 0, *mx = 1; break;
  default: *mn = -INFINITY, *mx = INFINITY; break;
  }
}

/* Bound tensors owned by the spec (not by a scope). */
static int set_bounds(crl_spec *s, crl_tensor *low, crl_tensor *high) {
  if (!low || !high) return crl_last_error_code();
  s->low = crl_tensor_retain(low);
  s->high = crl_tensor_retain(high);
  return 0;
}

crl_spec *crl_spec_unbounded(crl_dtype dt, int ndim, const int64_t *shape) {
  if (check_dtype("spec_unbounded", dt) ||
      crl__check_shape("spec_unbounded", ndim, shape))
    return NULL;
  return crl__spec_new_raw(CRL_SPEC_UNBOUNDED, dt, ndim, shape);
}

crl_spec *crl_spec_bounded(crl_dtype dt, int ndim, const int64_t *shape,
                           double low, double high) {
  const char *op = "spec_bounded";
  if (check_dtype(op, dt) || crl__check_shape(op, ndim, shape)) return NULL;
  if (isnan(low) || isnan(high))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: bounds must not be NaN (low %g, high %g)", op, low,
                        high);
  if (low > high)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: low %g is greater than high %g", op,
                        low, high);
  double lo = low, hi = high;
  if (crl_dtype_is_float(dt)) {
    if (dt == CRL_FLOAT32) lo = (float)lo, hi = (float)hi;
  } else {
    double mn, mx;
    int_range(dt, &mn, &mx);
    lo = ceil(low), hi = floor(high);
    if (lo > hi)
      return CRL_ERR_NULL(CRL_EINVAL, "%s: no %s value lies in [%g, %g]", op,
                          crl_dtype_name(dt), low, high);
    if (lo < mn || hi > mx)
      return CRL_ERR_NULL(CRL_EINVAL,
                          "%s: bounds [%g, %g] do not fit dtype %s (range "
                          "[%.0f, %.0f])",
                          op, low, high, crl_dtype_name(dt), mn, mx);
  }
  crl_scope_begin();
  crl_spec *s = crl__spec_new_raw(CRL_SPEC_BOUNDED, dt, ndim, shape);
  if (!s || set_bounds(s, crl_full(dt, ndim, shape, lo),
                       crl_full(dt, ndim, shape, hi))) {
    crl_scope_end();
    return NULL;
  }
  s->scalar = true;
  s->lo = lo;
  s->hi = hi;
  return crl__spec_scope_end_keep(s);
}

crl_spec *crl_spec_bounded_tensor(crl_tensor *low, crl_tensor *high) {
  const char *op = "spec_bounded_tensor";
  char b1[160], b2[160];
  if (!low || !high)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: low or high is NULL", op);
  if (!crl_same_shape(low, high))
    return CRL_ERR_NULL(CRL_ESHAPE, "%s: low has shape %s but high has %s", op,
                        CRL_SHAPE_STR(low, b1), CRL_SHAPE_STR(high, b2));
  if (low->dtype != high->dtype)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: low is %s but high is %s", op,
                        crl_dtype_name(low->dtype),
                        crl_dtype_name(high->dtype));
  if (crl__check_cpu(op, low) || crl__check_cpu(op, high)) return NULL;
  crl_scope_begin();
  crl_tensor *lo = crl__to_contig_dtype(low, low->dtype);
  crl_tensor *hi = crl__to_contig_dtype(high, high->dtype);
  if (!lo || !hi) {
    crl_scope_end();
    return NULL;
  }
  bool scalar = true;
  double l0 = 0, h0 = 0;
  for (int64_t i = 0; i < lo->numel; i++) {
    double l = crl__load(lo->dtype, lo->data, i);
    double h = crl__load(hi->dtype, hi->data, i);
    if (isnan(l) || isnan(h) || l > h) {
      crl_scope_end();
      return CRL_ERR_NULL(CRL_EINVAL,
                          "%s: element %lld has low %g and high %g (needs "
                          "low <= high, no NaN)",
                          op, (long long)i, l, h);
    }
    if (i == 0) l0 = l, h0 = h;
    if (l != l0 || h != h0) scalar = false;
  }
  crl_spec *s =
      crl__spec_new_raw(CRL_SPEC_BOUNDED, low->dtype, low->ndim, low->shape);
  if (!s || set_bounds(s, lo, hi)) {
    crl_scope_end();
    return NULL;
  }
  s->scalar = scalar && lo->numel > 0;
  s->lo = l0;
  s->hi = h0;
  return crl__spec_scope_end_keep(s);
}

crl_spec *crl_spec_one_hot(int64_t n, crl_dtype dt, int ndim,
                           const int64_t *shape) {
  const char *op = "spec_one_hot";
  if (check_dtype(op, dt)) return NULL;
  if (n <= 0)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: n must be positive, got %lld", op,
                        (long long)n);
  int64_t def[1] = {n};
  if (ndim == 0) ndim = 1, shape = def;
  if (crl__check_shape(op, ndim, shape)) return NULL;
  if (shape[ndim - 1] != n) {
    char b[160];
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: the last dim of shape %s must be n = %lld", op,
                        crl_shape_str(ndim, shape, b, sizeof b), (long long)n);
  }
  crl_spec *s = crl__spec_new_raw(CRL_SPEC_ONE_HOT, dt, ndim, shape);
  if (s) s->n = n;
  return s;
}

crl_spec *crl_spec_discrete(int64_t n, crl_dtype dt, int ndim,
                            const int64_t *shape) {
  const char *op = "spec_discrete";
  if (check_dtype(op, dt) || crl__check_shape(op, ndim, shape)) return NULL;
  if (n <= 0)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: n must be positive, got %lld", op,
                        (long long)n);
  if (crl_dtype_is_float(dt))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "%s: dtype %s is not an integer dtype (use int64)", op,
                        crl_dtype_name(dt));
  double mn, mx;
  int_range(dt, &mn, &mx);
  if ((double)(n - 1) > mx)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: dtype %s cannot hold %lld categories",
                        op, crl_dtype_name(dt), (long long)n);
  crl_spec *s = crl__spec_new_raw(CRL_SPEC_DISCRETE, dt, ndim, shape);
  if (s) s->n = n;
  return s;
}

crl_spec *crl_spec_multi_one_hot(int k, const int64_t *nvec, crl_dtype dt,
                                 int ndim, const int64_t *shape) {
  const char *op = "spec_multi_one_hot";
  if (check_dtype(op, dt)) return NULL;
  if (k <= 0 || !nvec)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: needs at least one group (k = %d)", op,
                        k);
  int64_t sum = 0;
  for (int i = 0; i < k; i++) {
    if (nvec[i] <= 0 || nvec[i] > INT64_MAX / 16 - sum)
      return CRL_ERR_NULL(CRL_EINVAL,
                          "%s: nvec[%d] = %lld must be a positive size", op, i,
                          (long long)nvec[i]);
    sum += nvec[i];
  }
  int64_t def[1] = {sum};
  if (ndim == 0) ndim = 1, shape = def;
  if (crl__check_shape(op, ndim, shape)) return NULL;
  if (shape[ndim - 1] != sum) {
    char b[160];
    return CRL_ERR_NULL(
        CRL_EINVAL, "%s: the last dim of shape %s must be sum(nvec) = %lld", op,
        crl_shape_str(ndim, shape, b, sizeof b), (long long)sum);
  }
  int64_t *nv = malloc(sizeof *nv * (size_t)k);
  if (!nv) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (spec)");
  crl_spec *s = crl__spec_new_raw(CRL_SPEC_MULTI_ONE_HOT, dt, ndim, shape);
  if (!s) {
    free(nv);
    return NULL;
  }
  memcpy(nv, nvec, sizeof *nv * (size_t)k);
  s->nvec = nv;
  s->k = k;
  s->n = sum;
  return s;
}

crl_spec *crl_spec_binary(crl_dtype dt, int ndim, const int64_t *shape) {
  const char *op = "spec_binary";
  if (check_dtype(op, dt) || crl__check_shape(op, ndim, shape)) return NULL;
  if (ndim < 1)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: the shape needs at least one dim (the n binary "
                        "values)",
                        op);
  if (shape[ndim - 1] <= 0) {
    char b[160];
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: the last dim of shape %s (n) must be positive", op,
                        crl_shape_str(ndim, shape, b, sizeof b));
  }
  crl_spec *s = crl__spec_new_raw(CRL_SPEC_BINARY, dt, ndim, shape);
  if (s) s->n = shape[ndim - 1];
  return s;
}

/* ---- inspection ---------------------------------------------------------- */

crl_spec_kind crl_spec_kind_of(const crl_spec *s) { return s->kind; }

const char *crl_spec_kind_name(crl_spec_kind k) {
  switch (k) {
  case CRL_SPEC_UNBOUNDED: return "UnboundedContinuousTensorSpec";
  case CRL_SPEC_BOUNDED: return "BoundedTensorSpec";
  case CRL_SPEC_ONE_HOT: return "OneHotDiscreteTensorSpec";
  case CRL_SPEC_DISCRETE: return "DiscreteTensorSpec";
  case CRL_SPEC_MULTI_ONE_HOT: return "MultiOneHotDiscreteTensorSpec";
  case CRL_SPEC_BINARY: return "BinaryDiscreteTensorSpec";
  case CRL_SPEC_COMPOSITE: return "CompositeSpec";
  }
  return "?";
}

crl_dtype crl_spec_dtype(const crl_spec *s) { return s->dtype; }
crl_device crl_spec_device(const crl_spec *s) { return s->device; }
int crl_spec_ndim(const crl_spec *s) { return s->ndim; }
const int64_t *crl_spec_shape(const crl_spec *s) { return s->shape; }

int64_t crl_spec_n(const crl_spec *s) {
  if (!s) return 0;
  switch (s->kind) {
  case CRL_SPEC_ONE_HOT:
  case CRL_SPEC_DISCRETE:
  case CRL_SPEC_BINARY: return s->n;
  default: return 0;
  }
}

const int64_t *crl_spec_nvec(const crl_spec *s, int *k) {
  bool multi = s && s->kind == CRL_SPEC_MULTI_ONE_HOT;
  if (k) *k = multi ? s->k : 0;
  return multi ? s->nvec : NULL;
}

crl_tensor *crl_spec_low(const crl_spec *s) { return s ? s->low : NULL; }
crl_tensor *crl_spec_high(const crl_spec *s) { return s ? s->high : NULL; }

bool crl_spec_equal(const crl_spec *a, const crl_spec *b) {
  if (!a || !b) return a == b;
  if (a == b) return true;
  if (a->kind != b->kind || a->dtype != b->dtype || a->ndim != b->ndim ||
      a->device.type != b->device.type || a->device.index != b->device.index)
    return false;
  if (memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim))
    return false;
  switch (a->kind) {
  case CRL_SPEC_BOUNDED:
    return crl_equal(a->low, b->low) && crl_equal(a->high, b->high);
  case CRL_SPEC_ONE_HOT:
  case CRL_SPEC_DISCRETE:
  case CRL_SPEC_BINARY: return a->n == b->n;
  case CRL_SPEC_MULTI_ONE_HOT:
    return a->k == b->k &&
           !memcmp(a->nvec, b->nvec, sizeof(int64_t) * (size_t)a->k);
  case CRL_SPEC_COMPOSITE: return crl__spec_comp_equal(a, b);
  default: return true;
  }
}

crl_spec *crl_spec_clone(crl_spec *s) {
  if (!s) return CRL_ERR_NULL(CRL_EINVAL, "spec_clone: spec is NULL");
  if (s->kind == CRL_SPEC_COMPOSITE) return crl__spec_comp_clone(s);
  /* leaves are immutable: share them */
  crl_spec_retain(s);
  crl__scope_adopt_obj(s, release_spec);
  return s;
}

/* ---- expand -------------------------------------------------------------- */

crl_spec *crl_spec_expand(const crl_spec *s, int bnd, const int64_t *batch) {
  const char *op = "spec_expand";
  if (!s) return CRL_ERR_NULL(CRL_EINVAL, "%s: spec is NULL", op);
  if (crl__spec_check_batch(op, bnd, batch, s->ndim)) return NULL;
  if (s->kind == CRL_SPEC_COMPOSITE)
    return crl__spec_comp_expand(s, bnd, batch);
  int nd = bnd + s->ndim;
  int64_t shape[CRL_MAX_DIMS];
  if (bnd) memcpy(shape, batch, sizeof(int64_t) * (size_t)bnd);
  if (s->ndim) memcpy(shape + bnd, s->shape, sizeof(int64_t) * (size_t)s->ndim);
  crl_scope_begin();
  crl_spec *r = crl__spec_new_raw(s->kind, s->dtype, nd, shape);
  if (!r) goto fail;
  r->n = s->n;
  r->scalar = s->scalar;
  r->lo = s->lo;
  r->hi = s->hi;
  if (s->k) {
    r->nvec = malloc(sizeof(int64_t) * (size_t)s->k);
    if (!r->nvec) {
      crl__err(CRL_ENOMEM, "out of memory (spec)");
      goto fail;
    }
    memcpy(r->nvec, s->nvec, sizeof(int64_t) * (size_t)s->k);
    r->k = s->k;
  }
  if (s->kind == CRL_SPEC_BOUNDED) {
    crl_tensor *le = crl_expand(s->low, nd, shape);
    crl_tensor *he = crl_expand(s->high, nd, shape);
    if (!le || !he ||
        set_bounds(r, crl__to_contig_dtype(le, s->dtype),
                   crl__to_contig_dtype(he, s->dtype)))
      goto fail;
  }
  return crl__spec_scope_end_keep(r);
fail:
  crl_scope_end();
  return NULL;
}

/* ---- printing ------------------------------------------------------------ */

void crl__sb_printf(crl__sbuf *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = s->buf && s->len < s->size ? s->size - s->len : 0;
  int n = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) s->len += (size_t)n;
}

/* A value as Python prints it: floats always with a '.', "inf", "nan";
 * bools as False/True. */
static void num_repr(crl__sbuf *sb, double v, crl_dtype dt) {
  if (dt == CRL_BOOL) {
    crl__sb_printf(sb, "%s", v != 0 ? "True" : "False");
  } else if (!crl_dtype_is_float(dt)) {
    crl__sb_printf(sb, "%lld", (long long)v);
  } else {
    char b[40];
    snprintf(b, sizeof b, "%g", v);
    bool plain = !strpbrk(b, ".eni");
    crl__sb_printf(sb, "%s%s", b, plain ? ".0" : "");
  }
}

static void bound_repr(crl__sbuf *sb, const crl_spec *s, const crl_tensor *t,
                       double scalar) {
  if (s->scalar) {
    num_repr(sb, scalar, s->dtype);
  } else if (t->numel <= 8) {
    crl__sb_printf(sb, "[");
    for (int64_t i = 0; i < t->numel; i++) {
      if (i) crl__sb_printf(sb, ", ");
      num_repr(sb, crl__load(t->dtype, t->data, i), t->dtype);
    }
    crl__sb_printf(sb, "]");
  } else {
    char b[160];
    crl__sb_printf(sb, "Tensor(shape=%s, dtype=%s)", CRL_SHAPE_STR(t, b),
                   crl_dtype_name(t->dtype));
  }
}

void crl__spec_leaf_repr(crl__sbuf *sb, const crl_spec *s) {
  char b[160];
  bool fl = crl_dtype_is_float(s->dtype);
  const char *name = crl_spec_kind_name(s->kind);
  if (s->kind == CRL_SPEC_UNBOUNDED && !fl)
    name = "UnboundedDiscreteTensorSpec";
  crl__sb_printf(sb, "%s(shape=%s, space=", name,
                 crl_shape_str(s->ndim, s->shape, b, sizeof b));
  switch (s->kind) {
  case CRL_SPEC_BOUNDED:
    crl__sb_printf(sb, "ContinuousBox(low=");
    bound_repr(sb, s, s->low, s->lo);
    crl__sb_printf(sb, ", high=");
    bound_repr(sb, s, s->high, s->hi);
    crl__sb_printf(sb, ")");
    break;
  case CRL_SPEC_ONE_HOT:
  case CRL_SPEC_DISCRETE:
    crl__sb_printf(sb, "DiscreteBox(n=%lld)", (long long)s->n);
    break;
  case CRL_SPEC_MULTI_ONE_HOT:
    crl__sb_printf(sb, "BoxList(boxes=[");
    for (int i = 0; i < s->k; i++)
      crl__sb_printf(sb, "%sDiscreteBox(n=%lld)", i ? ", " : "",
                     (long long)s->nvec[i]);
    crl__sb_printf(sb, "])");
    break;
  case CRL_SPEC_BINARY:
    crl__sb_printf(sb, "BinaryBox(n=%lld)", (long long)s->n);
    break;
  default: crl__sb_printf(sb, "None"); break;
  }
  bool continuous =
      fl && (s->kind == CRL_SPEC_UNBOUNDED || s->kind == CRL_SPEC_BOUNDED);
  crl__sb_printf(sb, ", device=%s, dtype=%s, domain=%s)",
                 crl_device_name(s->device), crl_dtype_name(s->dtype),
                 continuous ? "continuous" : "discrete");
}

int crl_spec_to_string(const crl_spec *s, char *buf, size_t size) {
  if (!s) return crl__err(CRL_EINVAL, "spec_to_string: spec is NULL");
  crl__sbuf sb = {buf, size, 0};
  if (buf && size) buf[0] = 0;
  if (s->kind == CRL_SPEC_COMPOSITE)
    crl__spec_comp_repr(&sb, s, 0);
  else
    crl__spec_leaf_repr(&sb, s);
  return (int)sb.len;
}

int crl_spec_print(const crl_spec *s, FILE *f) {
  if (!s || !f) return crl__err(CRL_EINVAL, "spec_print: NULL argument");
  int n = crl_spec_to_string(s, NULL, 0);
  char *buf = malloc((size_t)n + 1);
  if (!buf) return crl__err(CRL_ENOMEM, "out of memory");
  crl_spec_to_string(s, buf, (size_t)n + 1);
  int rc = fprintf(f, "%s\n", buf) < 0
               ? crl__err(CRL_EIO, "spec_print: write failed")
               : 0;
  free(buf);
  return rc;
}
