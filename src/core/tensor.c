/* The tensor object: lifetime, scopes, creation and element access. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---- scopes ----------------------------------------------------------
 * One thread-local array of owned references (object + its release
 * function, so TensorDicts and other refcounted objects can live in scopes
 * too) and a stack of start marks. The first SCOPE_INLINE slots live in TLS;
 * a heap array is used beyond and freed when the outermost scope ends, so
 * nothing outlives the last scope. */
#define SCOPE_INLINE 512
#define SCOPE_MAX_DEPTH 64
typedef struct {
  void *obj;
  void (*release)(void *);
} scope_item;
static _Thread_local scope_item tl_inline[SCOPE_INLINE];
static _Thread_local scope_item *tl_items;
static _Thread_local int64_t tl_count, tl_cap;
static _Thread_local int64_t tl_marks[SCOPE_MAX_DEPTH];
static _Thread_local int tl_depth;

void crl_scope_begin(void) {
  if (tl_depth >= SCOPE_MAX_DEPTH) {
    /* too deep: count it but do not mark; crl_scope_end mirrors this */
    tl_depth++;
    return;
  }
  if (!tl_items) {
    tl_items = tl_inline;
    tl_cap = SCOPE_INLINE;
  }
  tl_marks[tl_depth++] = tl_count;
}

int crl_scope_depth(void) { return tl_depth; }

void crl__scope_adopt_obj(void *obj, void (*release)(void *)) {
  if (tl_depth == 0 || !obj) return;
  if (tl_count == tl_cap) {
    int64_t ncap = tl_cap * 2;
    scope_item *n;
    if (tl_items == tl_inline) {
      n = malloc((size_t)ncap * sizeof *n);
      if (n) memcpy(n, tl_inline, sizeof tl_inline);
    } else {
      n = realloc(tl_items, (size_t)ncap * sizeof *n);
    }
    if (!n) return; /* out of memory: the reference leaks to the caller */
    tl_items = n;
    tl_cap = ncap;
  }
  tl_items[tl_count++] = (scope_item){obj, release};
}

static void release_tensor(void *t) { crl_tensor_release(t); }

void crl__scope_adopt(crl_tensor *t) {
  crl__scope_adopt_obj(t, release_tensor);
}

void crl_scope_end(void) {
  if (tl_depth == 0) return;
  tl_depth--;
  if (tl_depth >= SCOPE_MAX_DEPTH) return;
  int64_t start = tl_marks[tl_depth];
  /* release in reverse creation order */
  while (tl_count > start) {
    scope_item it = tl_items[--tl_count];
    it.release(it.obj);
  }
  if (tl_depth == 0 && tl_items != tl_inline) {
    free(tl_items);
    tl_items = tl_inline;
    tl_cap = SCOPE_INLINE;
  }
}

void crl__discard_obj(void *obj, void (*release)(void *)) {
  if (!obj) return;
  if (tl_depth == 0) {
    release(obj);
    return;
  }
  int64_t start =
      tl_depth <= SCOPE_MAX_DEPTH ? tl_marks[tl_depth - 1] : tl_count;
  for (int64_t i = tl_count - 1; i >= start; i--) {
    if (tl_items[i].obj != obj) continue;
    memmove(&tl_items[i], &tl_items[i + 1],
            sizeof *tl_items * (size_t)(tl_count - i - 1));
    tl_count--;
    release(obj);
    return;
  }
  /* owned by an outer scope: it is freed when that scope ends */
}

void crl__discard(crl_tensor *t) { crl__discard_obj(t, release_tensor); }

crl_tensor *crl_scope_end_keep(crl_tensor *keep) {
  crl_tensor_retain(keep);
  crl_scope_end();
  crl__scope_adopt(keep);
  return keep;
}

/* ---- tensor struct cache --------------------------------------------------
 * Views, temporaries and results are created and freed by the million; a
 * small per-thread stack of freed structs saves a malloc/free pair each
 * (~30 ns). The stack is emptied when its thread exits. */
#define TCACHE_MAX 256
typedef struct {
  crl_tensor *items[TCACHE_MAX];
  int n;
} tcache_t;
static _Thread_local tcache_t tl_tcache;
static _Thread_local bool tl_tcache_registered;
static pthread_key_t tcache_key;
static pthread_once_t tcache_once = PTHREAD_ONCE_INIT;

static void tcache_drain(void *arg) {
  tcache_t *c = arg;
  while (c && c->n)
    free(c->items[--c->n]);
}
static void tcache_init(void) { pthread_key_create(&tcache_key, tcache_drain); }
__attribute__((destructor)) static void tcache_main_exit(void) {
  tcache_drain(&tl_tcache);
}

static crl_tensor *tensor_alloc(void) {
  tcache_t *c = &tl_tcache;
  if (c->n) return c->items[--c->n];
  if (!tl_tcache_registered) {
    /* first allocation on this thread: have the stack freed at its exit */
    pthread_once(&tcache_once, tcache_init);
    tl_tcache_registered = pthread_setspecific(tcache_key, c) == 0;
  }
  return malloc(sizeof(crl_tensor));
}

void crl__tensor_free_struct(crl_tensor *t) {
  tcache_t *c = &tl_tcache;
  if (c->n < TCACHE_MAX && tl_tcache_registered) {
    c->items[c->n++] = t;
    return;
  }
  free(t);
}

/* ---- lifetime ---------------------------------------------------------- */

crl_tensor *crl_tensor_retain(crl_tensor *t) {
  if (t)
    atomic_fetch_add_explicit((_Atomic int *)&t->refcount, 1,
                              memory_order_relaxed);
  return t;
}

void crl_tensor_release(crl_tensor *t) {
  if (!t) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&t->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  crl_storage_release(t->storage);
  crl_tensor_release(t->grad);
  if (t->grad_fn) crl__node_release(t->grad_fn);
  crl__tensor_free_struct(t);
}

/* ---- geometry helpers ------------------------------------------------- */

int64_t crl__numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

int64_t crl__contig_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t n = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = n;
    n *= shape[i];
  }
  return n;
}

char *crl_shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
  if (!size) return buf;
  size_t o = 0;
  o += (size_t)snprintf(buf + o, size - o, "[");
  for (int i = 0; i < ndim && o < size; i++)
    o += (size_t)snprintf(buf + o, size - o, i ? ", %lld" : "%lld",
                          (long long)shape[i]);
  if (o < size) snprintf(buf + o, size - o, "]");
  return buf;
}

int crl__check_shape(const char *op, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > CRL_MAX_DIMS)
    return crl__err(CRL_EINVAL, "%s: %d dims requested, at most %d allowed", op,
                    ndim, CRL_MAX_DIMS);
  if (ndim > 0 && !shape)
    return crl__err(CRL_EINVAL, "%s: shape is NULL for %d dims", op, ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      char b[160];
      return crl__err(CRL_EINVAL, "%s: negative size %lld at dim %d of %s", op,
                      (long long)shape[i], i,
                      crl_shape_str(ndim, shape, b, sizeof b));
    }
    if (shape[i] && n > INT64_MAX / 16 / shape[i]) {
      char b[160];
      return crl__err(CRL_ENOMEM, "%s: shape %s is too large", op,
                      crl_shape_str(ndim, shape, b, sizeof b));
    }
    n *= shape[i];
  }
  return 0;
}

int crl__wrap_dim(const char *op, int dim, int ndim, int *out) {
  int d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    return crl__err(CRL_EINDEX,
                    "%s: dim %d out of range for a tensor of %d dims", op, dim,
                    ndim);
  *out = d;
  return 0;
}

int crl__broadcast_shapes(const char *op, int na, const int64_t *sa, int nb,
                          const int64_t *sb, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
    if (a != b && a != 1 && b != 1) {
      char b1[160], b2[160];
      return crl__err(CRL_ESHAPE,
                      "%s: shapes %s and %s cannot be broadcast (dim %d: %lld "
                      "vs %lld)",
                      op, crl_shape_str(na, sa, b1, sizeof b1),
                      crl_shape_str(nb, sb, b2, sizeof b2), i, (long long)a,
                      (long long)b);
    }
    out[i] = a == 1 ? b : a;
  }
  *nout = n;
  return 0;
}

void crl__broadcast_strides(const crl_tensor *t, int ndim, const int64_t *shape,
                            int64_t *strides) {
  for (int i = 0; i < ndim; i++) {
    int it = t->ndim - ndim + i;
    if (it < 0 || (t->shape[it] == 1 && shape[i] != 1))
      strides[i] = 0;
    else
      strides[i] = t->stride[it];
  }
}

int crl__check_cpu(const char *op, const crl_tensor *t) {
  if (t->device.type != CRL_CPU)
    return crl__err(CRL_EDEVICE, "%s: tensor is on %s, this op runs on cpu", op,
                    crl_device_name(t->device));
  return 0;
}

int crl__check_inplace(const char *op, crl_tensor *t) {
  if (crl_is_grad_enabled() && (t->requires_grad || t->grad_fn))
    return crl__err(CRL_EAUTOGRAD,
                    "%s: in-place write to a tensor that requires grad "
                    "(use a no-grad scope or crl_detach)",
                    op);
  if (t->storage && !t->storage->writable)
    return crl__err(CRL_EIO, "%s: tensor storage is read-only", op);
  t->version++;
  return 0;
}

/* ---- element access --------------------------------------------------- */

double crl__load(crl_dtype dt, const void *base, int64_t off) {
  switch (dt) {
  case CRL_FLOAT32: return ((const float *)base)[off];
  case CRL_FLOAT64: return ((const double *)base)[off];
  case CRL_INT64: return (double)((const int64_t *)base)[off];
  case CRL_INT32: return ((const int32_t *)base)[off];
  case CRL_UINT8: return ((const uint8_t *)base)[off];
  case CRL_BOOL: return ((const uint8_t *)base)[off] ? 1.0 : 0.0;
  default: return NAN;
  }
}

void crl__store(crl_dtype dt, void *base, int64_t off, double v) {
  switch (dt) {
  case CRL_FLOAT32: ((float *)base)[off] = (float)v; break;
  case CRL_FLOAT64: ((double *)base)[off] = v; break;
  case CRL_INT64: ((int64_t *)base)[off] = (int64_t)v; break;
  case CRL_INT32: ((int32_t *)base)[off] = (int32_t)v; break;
  case CRL_UINT8: ((uint8_t *)base)[off] = (uint8_t)(int64_t)v; break;
  case CRL_BOOL: ((uint8_t *)base)[off] = v != 0.0; break;
  default: break;
  }
}

/* ---- construction ------------------------------------------------------ */

crl_tensor *crl__view_of(crl_storage *s, crl_dtype dt, int64_t offset, int ndim,
                         const int64_t *shape, const int64_t *strides) {
  crl_tensor *t = tensor_alloc();
  if (!t) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory");
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = ndim;
  t->device = s->device;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  if (strides)
    for (int i = 0; i < ndim; i++)
      t->stride[i] = strides[i];
  else
    crl__contig_strides(ndim, shape, t->stride);
  t->numel = crl__numel(ndim, shape);
  t->offset = offset;
  t->data = (char *)s->data + offset * (int64_t)crl_dtype_size(dt);
  t->storage = crl_storage_retain(s);
  t->requires_grad = false;
  t->grad = NULL;
  t->grad_fn = NULL;
  t->version = 0;
  crl__scope_adopt(t);
  return t;
}

crl_tensor *crl__alias(const crl_tensor *a, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset) {
  return crl__view_of(a->storage, a->dtype, offset, ndim, shape, strides);
}

crl_tensor *crl_empty(crl_dtype dt, int ndim, const int64_t *shape) {
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "empty: invalid dtype %d", (int)dt);
  if (crl__check_shape("empty", ndim, shape)) return NULL;
  int64_t n = crl__numel(ndim, shape);
  crl_storage *s = crl_storage_new((size_t)n * crl_dtype_size(dt), false);
  if (!s) return NULL;
  crl_tensor *t = crl__view_of(s, dt, 0, ndim, shape, NULL);
  crl_storage_release(s);
  return t;
}

crl_tensor *crl_zeros(crl_dtype dt, int ndim, const int64_t *shape) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (t) memset(t->data, 0, (size_t)t->numel * crl_dtype_size(dt));
  return t;
}

static void fill_contig(crl_tensor *t, double v) {
  int64_t n = t->numel;
  switch (t->dtype) {
  case CRL_FLOAT32: {
    float *p = t->data, f = (float)v;
    for (int64_t i = 0; i < n; i++)
      p[i] = f;
    break;
  }
  case CRL_FLOAT64: {
    double *p = t->data;
    for (int64_t i = 0; i < n; i++)
      p[i] = v;
    break;
  }
  case CRL_INT64: {
    int64_t *p = t->data, f = (int64_t)v;
    for (int64_t i = 0; i < n; i++)
      p[i] = f;
    break;
  }
  case CRL_INT32: {
    int32_t *p = t->data, f = (int32_t)v;
    for (int64_t i = 0; i < n; i++)
      p[i] = f;
    break;
  }
  case CRL_UINT8: memset(t->data, (uint8_t)(int64_t)v, (size_t)n); break;
  case CRL_BOOL: memset(t->data, v != 0.0, (size_t)n); break;
  default: break;
  }
}

crl_tensor *crl_full(crl_dtype dt, int ndim, const int64_t *shape,
                     double value) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (t) fill_contig(t, value);
  return t;
}

crl_tensor *crl_ones(crl_dtype dt, int ndim, const int64_t *shape) {
  return crl_full(dt, ndim, shape, 1.0);
}

crl_tensor *crl_empty_like(const crl_tensor *t) {
  return crl_empty(t->dtype, t->ndim, t->shape);
}
crl_tensor *crl_zeros_like(const crl_tensor *t) {
  return crl_zeros(t->dtype, t->ndim, t->shape);
}
crl_tensor *crl_ones_like(const crl_tensor *t) {
  return crl_full(t->dtype, t->ndim, t->shape, 1.0);
}
crl_tensor *crl_full_like(const crl_tensor *t, double value) {
  return crl_full(t->dtype, t->ndim, t->shape, value);
}

crl_tensor *crl_scalar(crl_dtype dt, double value) {
  return crl_full(dt, 0, NULL, value);
}

crl_tensor *crl_arange(crl_dtype dt, double start, double end, double step) {
  if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(end))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "arange: start %g, end %g, step %g must be finite "
                        "with step != 0",
                        start, end, step);
  double len = ceil((end - start) / step);
  int64_t n = len > 0 ? (int64_t)len : 0;
  crl_tensor *t = crl_empty(dt, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++)
    crl__store(dt, t->data, i, start + i * step);
  return t;
}

crl_tensor *crl_linspace(crl_dtype dt, double start, double end, int64_t n) {
  if (n < 0)
    return CRL_ERR_NULL(CRL_EINVAL, "linspace: negative count %lld",
                        (long long)n);
  crl_tensor *t = crl_empty(dt, 1, &n);
  if (!t) return NULL;
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  for (int64_t i = 0; i < n; i++) {
    /* symmetric formula as torch: exact end points */
    double v = n == 1      ? start
               : i < n / 2 ? start + step * i
                           : end - step * (n - 1 - i);
    crl__store(dt, t->data, i, v);
  }
  return t;
}

crl_tensor *crl_eye(crl_dtype dt, int64_t n) {
  crl_tensor *t = crl_zeros(dt, CRL_SHAPE(n, n));
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++)
    crl__store(dt, t->data, i * n + i, 1.0);
  return t;
}

crl_tensor *crl_from_array(crl_dtype dt, int ndim, const int64_t *shape,
                           const void *data) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (!t) return NULL;
  if (t->numel && !data) {
    crl__discard(t);
    return CRL_ERR_NULL(CRL_EINVAL, "from_array: data is NULL");
  }
  if (t->numel) memcpy(t->data, data, (size_t)t->numel * crl_dtype_size(dt));
  return t;
}

crl_tensor *crl_tensor_from_storage(crl_storage *s, crl_dtype dt,
                                    int64_t offset, int ndim,
                                    const int64_t *shape,
                                    const int64_t *strides) {
  if (!s) return CRL_ERR_NULL(CRL_EINVAL, "from_storage: storage is NULL");
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "from_storage: invalid dtype %d", (int)dt);
  if (crl__check_shape("from_storage", ndim, shape)) return NULL;
  int64_t st[CRL_MAX_DIMS];
  if (strides)
    memcpy(st, strides, sizeof(int64_t) * (size_t)ndim);
  else
    crl__contig_strides(ndim, shape, st);
  /* extent check */
  int64_t lo = offset, hi = offset, numel = crl__numel(ndim, shape);
  if (offset < 0)
    return CRL_ERR_NULL(CRL_EINDEX, "from_storage: negative offset %lld",
                        (long long)offset);
  if (numel > 0) {
    for (int i = 0; i < ndim; i++) {
      int64_t e = (shape[i] - 1) * st[i];
      if (e < 0)
        lo += e;
      else
        hi += e;
    }
    int64_t cap = (int64_t)(s->nbytes / crl_dtype_size(dt));
    if (lo < 0 || hi >= cap) {
      char b[160];
      return CRL_ERR_NULL(CRL_EINDEX,
                          "from_storage: view %s at offset %lld reaches "
                          "element %lld of a storage of %lld elements",
                          crl_shape_str(ndim, shape, b, sizeof b),
                          (long long)offset, (long long)(lo < 0 ? lo : hi),
                          (long long)cap);
    }
  }
  return crl__view_of(s, dt, offset, ndim, shape, st);
}

crl_tensor *crl_empty_shared(crl_dtype dt, int ndim, const int64_t *shape) {
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "empty_shared: invalid dtype %d", (int)dt);
  if (crl__check_shape("empty_shared", ndim, shape)) return NULL;
  crl_storage *s =
      crl_storage_new_shm((size_t)crl__numel(ndim, shape) * crl_dtype_size(dt));
  if (!s) return NULL;
  crl_tensor *t = crl__view_of(s, dt, 0, ndim, shape, NULL);
  crl_storage_release(s);
  return t;
}

/* ---- inspection --------------------------------------------------------- */

bool crl_tensor_is_contiguous(const crl_tensor *t) {
  int64_t n = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != n) return false;
    n *= t->shape[i];
  }
  return true;
}

bool crl_same_shape(const crl_tensor *a, const crl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

static int64_t flat_to_offset(const crl_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    int64_t s = t->shape[d];
    off += (i % s) * t->stride[d];
    i /= s;
  }
  return off;
}

static int index_offset(const crl_tensor *t, const int64_t *index,
                        int64_t *off) {
  int64_t o = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (index[d] < 0 || index[d] >= t->shape[d]) {
      char b[160];
      return crl__err(CRL_EINDEX,
                      "index %lld out of range for dim %d of size %lld "
                      "(shape %s)",
                      (long long)index[d], d, (long long)t->shape[d],
                      CRL_SHAPE_STR(t, b));
    }
    o += index[d] * t->stride[d];
  }
  *off = o;
  return 0;
}

double crl_tensor_get(const crl_tensor *t, const int64_t *index) {
  int64_t off;
  if (index_offset(t, index, &off)) return NAN;
  return crl__load(t->dtype, t->data, off);
}

double crl_tensor_get_flat(const crl_tensor *t, int64_t i) {
  if (i < 0 || i >= t->numel) {
    crl__err(CRL_EINDEX, "flat index %lld out of range for %lld elements",
             (long long)i, (long long)t->numel);
    return NAN;
  }
  return crl__load(t->dtype, t->data, flat_to_offset(t, i));
}

int crl_tensor_set(crl_tensor *t, const int64_t *index, double v) {
  int64_t off;
  int rc = index_offset(t, index, &off);
  if (rc) return rc;
  if ((rc = crl__check_inplace("tensor_set", t))) return rc;
  crl__store(t->dtype, t->data, off, v);
  return 0;
}

int crl_tensor_set_flat(crl_tensor *t, int64_t i, double v) {
  if (i < 0 || i >= t->numel)
    return crl__err(CRL_EINDEX,
                    "flat index %lld out of range for %lld elements",
                    (long long)i, (long long)t->numel);
  int rc = crl__check_inplace("tensor_set_flat", t);
  if (rc) return rc;
  crl__store(t->dtype, t->data, flat_to_offset(t, i), v);
  return 0;
}

double crl_item(const crl_tensor *t) {
  if (t->numel != 1) {
    char b[160];
    crl__err(CRL_ESHAPE, "item: tensor of shape %s has %lld elements, not 1",
             CRL_SHAPE_STR(t, b), (long long)t->numel);
    return NAN;
  }
  return crl__load(t->dtype, t->data, flat_to_offset(t, 0));
}

int crl_tensor_to_array(const crl_tensor *t, crl_dtype dt, void *out,
                        int64_t n) {
  if (n < t->numel)
    return crl__err(CRL_EINVAL,
                    "to_array: buffer holds %lld elements, tensor has %lld",
                    (long long)n, (long long)t->numel);
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return crl__err(CRL_EDTYPE, "to_array: invalid dtype %d", (int)dt);
  if (dt == t->dtype && crl_tensor_is_contiguous(t)) {
    memcpy(out, t->data, (size_t)t->numel * crl_dtype_size(dt));
    return 0;
  }
  crl_storage *s =
      crl_storage_wrap(out, (size_t)n * crl_dtype_size(dt), NULL, NULL);
  if (!s) return CRL_ENOMEM;
  int depth = crl_scope_depth();
  (void)depth;
  crl_tensor tmp = {0};
  tmp.refcount = 1;
  tmp.dtype = dt;
  tmp.ndim = t->ndim;
  memcpy(tmp.shape, t->shape, sizeof tmp.shape);
  tmp.numel = crl__contig_strides(t->ndim, t->shape, tmp.stride);
  tmp.data = out;
  tmp.storage = s;
  crl__copy_into(&tmp, t);
  crl_storage_release(s);
  return 0;
}
