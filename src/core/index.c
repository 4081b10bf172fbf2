/* Indexing: index_select, gather, scatter, scatter_add, masked_fill,
 * masked_select, index (a[idx] along dim 0) and index_put_.
 *
 * Index tensors are int64 (any layout). Negative indices count from the end
 * in crl_index, crl_index_select and crl_index_put_ (as Python indexing);
 * crl_gather, crl_scatter and crl_scatter_add require 0 <= idx < size (as
 * torch). Every index is checked before anything is written.
 *
 * Backward: index_select / index / gather accumulate the gradient into
 * zeros at the indexed places (duplicates add up); scatter sends the
 * gathered gradient to src and the gradient with the overwritten places
 * zeroed to a; scatter_add sends the gradient to a unchanged; masked_fill
 * zeroes the gradient where masked; masked_select scatters it back. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* ---- shared checks ------------------------------------------------------- */

static int check_tensor(const char *op, const char *what, const crl_tensor *t) {
  if (!t) return crl__err(CRL_EINVAL, "%s: %s is NULL", op, what);
  return crl__check_cpu(op, t);
}

static int check_index_tensor(const char *op, const crl_tensor *idx) {
  int rc = check_tensor(op, "index tensor", idx);
  if (rc) return rc;
  if (idx->dtype != CRL_INT64)
    return crl__err(CRL_EDTYPE, "%s: index tensor must be int64, got %s", op,
                    crl_dtype_name(idx->dtype));
  return 0;
}

/* Contiguous int64 data of idx; *tmp receives a copy to crl__discard when
 * idx is strided (NULL otherwise). NULL on allocation failure. */
static const int64_t *index_data(crl_tensor *idx, crl_tensor **tmp) {
  *tmp = NULL;
  if (crl_tensor_is_contiguous(idx)) return idx->data;
  *tmp = crl__to_contig_dtype(idx, CRL_INT64);
  return *tmp ? (*tmp)->data : NULL;
}

/* The common end of the ops that take an index (or mask) tensor: when out
 * is set and any of in[0..nin) requires grad, record bw on out with
 * i[0] = dim, i[1] = i1 and the index saved (tmp, its contiguous copy, when
 * there is one); then drop tmp. out, or NULL (out discarded) when recording
 * fails. */
static crl_tensor *index_op_end(const char *op, crl_tensor *out,
                                crl_backward_fn bw, int nin,
                                crl_tensor *const *in, int dim, int64_t i1,
                                crl_tensor *index, crl_tensor *tmp) {
  if (out && crl__any_requires_grad(nin, in)) {
    crl_node *n = crl__record(out, op, bw, nin, in);
    if (n) {
      n->i[0] = dim;
      n->i[1] = i1;
      crl__save(n, 0, tmp ? tmp : index);
    } else {
      crl__discard(out);
      out = NULL;
    }
  }
  crl__discard(tmp);
  return out;
}

/* Every ix[i] in [-size, size) (neg) or [0, size). */
static int check_range(const char *op, const int64_t *ix, int64_t n,
                       int64_t size, bool neg, int dim) {
  int64_t lo = neg ? -size : 0;
  uint64_t span = (uint64_t)(size - lo);
  bool bad = false;
  for (int64_t i = 0; i < n; i++)
    bad |= (uint64_t)ix[i] - (uint64_t)lo >= span;
  if (!bad) return 0;
  for (int64_t i = 0; i < n; i++)
    if (ix[i] < lo || ix[i] >= size)
      return crl__err(CRL_EINDEX,
                      "%s: index %lld out of range for dim %d of size %lld%s",
                      op, (long long)ix[i], dim, (long long)size,
                      neg ? "" : " (needs 0 <= index < size)");
  return 0;
}

/* v with dimension `dim` removed (data pointer unchanged). */
static void drop_dim(crl_tensor *v, int dim) {
  for (int i = dim; i < v->ndim - 1; i++) {
    v->shape[i] = v->shape[i + 1];
    v->stride[i] = v->stride[i + 1];
  }
  v->ndim--;
  v->numel = crl__numel(v->ndim, v->shape);
}

/* ---- row kernels -----------------------------------------------------------
 */

/* out[o, k, :] = src[o, ix[k], :] for contiguous src and out, rows of rb
 * bytes, over flat rows [r0, r1) of the [outer, nidx] grid. */
typedef struct {
  char *out;
  const char *src;
  const int64_t *ix;
  int64_t nidx, size, rb, total, chunk;
} take_ctx;

#define TAKE_LOOP(COPY)                                                        \
  for (int64_t k = k0; k < k1; k++) {                                          \
    int64_t r = ix[k];                                                         \
    r += r < 0 ? size : 0;                                                     \
    COPY;                                                                      \
    out += rb;                                                                 \
  }

static void take_range(const take_ctx *c, int64_t r0, int64_t r1) {
  const int64_t *ix = c->ix;
  int64_t size = c->size, rb = c->rb, nidx = c->nidx;
  while (r0 < r1) {
    int64_t o = r0 / nidx, k0 = r0 - o * nidx;
    int64_t k1 = nidx < k0 + (r1 - r0) ? nidx : k0 + (r1 - r0);
    const char *src = c->src + o * size * rb;
    char *out = c->out + r0 * rb;
    switch (rb) {
    case 4: TAKE_LOOP(memcpy(out, src + r * 4, 4)) break;
    case 8: TAKE_LOOP(memcpy(out, src + r * 8, 8)) break;
    case 16: TAKE_LOOP(memcpy(out, src + r * 16, 16)) break;
    default: TAKE_LOOP(memcpy(out, src + r * rb, (size_t)rb)) break;
    }
    r0 += k1 - k0;
  }
}

static void take_chunk(void *ctx, int64_t i) {
  const take_ctx *c = ctx;
  int64_t r0 = i * c->chunk, r1 = r0 + c->chunk;
  take_range(c, r0, r1 < c->total ? r1 : c->total);
}

#define TAKE_PARALLEL_BYTES ((int64_t)1 << 22)
#define TAKE_CHUNK_BYTES ((int64_t)1 << 18)

static void take_rows(char *out, const char *src, int64_t outer, int64_t size,
                      const int64_t *ix, int64_t nidx, int64_t rb) {
  take_ctx c = {out, src, ix, nidx, size, rb, outer * nidx, 0};
  if (c.total == 0 || rb == 0) return;
  if (c.total * rb >= TAKE_PARALLEL_BYTES && crl_get_num_threads() > 1) {
    c.chunk = TAKE_CHUNK_BYTES / rb > 0 ? TAKE_CHUNK_BYTES / rb : 1;
    crl_parallel_for((c.total + c.chunk - 1) / c.chunk, take_chunk, &c);
  } else {
    take_range(&c, 0, c.total);
  }
}

/* out.select(dim, k) = a.select(dim, ix[k]) for any geometry. */
static void take_strided(const crl_tensor *out, const crl_tensor *a, int dim,
                         const int64_t *ix, int64_t nidx) {
  crl_tensor vo = *out, va = *a;
  drop_dim(&vo, dim);
  drop_dim(&va, dim);
  int64_t eo = (int64_t)crl_dtype_size(out->dtype);
  int64_t ea = (int64_t)crl_dtype_size(a->dtype);
  int64_t size = a->shape[dim];
  for (int64_t k = 0; k < nidx; k++) {
    int64_t r = ix[k] < 0 ? ix[k] + size : ix[k];
    vo.data = (char *)out->data + k * out->stride[dim] * eo;
    va.data = (char *)a->data + r * a->stride[dim] * ea;
    crl__copy_into(&vo, &va);
  }
}

/* dst[i] += src[i] (strided, same dtype; bool: or). A crl__loop_fn. */
#define ADD_LOOP(T, EXPR)                                                      \
  {                                                                            \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                              \
      T *d = (T *)p[0];                                                        \
      const T *x = (const T *)p[1];                                            \
      for (int64_t i = 0; i < n; i++)                                          \
        d[i] = (T)(EXPR(d[i], x[i]));                                          \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        T *d = (T *)(p[0] + i * s[0]);                                         \
        *d = (T)(EXPR(*d, *(const T *)(p[1] + i * s[1])));                     \
      }                                                                        \
    }                                                                          \
  }
#define PLUS(x, y) ((x) + (y))
#define OR(x, y) ((x) || (y))

static void add_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  switch (*(const crl_dtype *)ctx) {
  case CRL_FLOAT32: ADD_LOOP(float, PLUS) break;
  case CRL_FLOAT64: ADD_LOOP(double, PLUS) break;
  case CRL_INT64: ADD_LOOP(int64_t, PLUS) break;
  case CRL_INT32: ADD_LOOP(int32_t, PLUS) break;
  case CRL_UINT8: ADD_LOOP(uint8_t, PLUS) break;
  case CRL_BOOL: ADD_LOOP(uint8_t, OR) break;
  default: break;
  }
}

static void add_elems(crl_dtype dt, char *d, const char *x, int64_t n) {
  int64_t es = (int64_t)crl_dtype_size(dt);
  char *p[2] = {d, (char *)x};
  int64_t s[2] = {es, es};
  add_loop(p, s, n, &dt);
}

/* z[o, ix[k], :] += g[o, k, :] for contiguous z, g of dtype dt. */
static void add_rows(crl_dtype dt, char *z, const char *g, int64_t outer,
                     int64_t size, const int64_t *ix, int64_t nidx,
                     int64_t inner) {
  int64_t rb = inner * (int64_t)crl_dtype_size(dt);
  for (int64_t o = 0; o < outer; o++) {
    char *zo = z + o * size * rb;
    const char *go = g + o * nidx * rb;
    for (int64_t k = 0; k < nidx; k++) {
      int64_t r = ix[k] < 0 ? ix[k] + size : ix[k];
      add_elems(dt, zo + r * rb, go + k * rb, inner);
    }
  }
}

/* Gradient accumulated at the indexed places of zeros(shape) along dim. */
static crl_tensor *index_add_grad(crl_edge *e, int dim, crl_tensor *g,
                                  crl_tensor *index) {
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  crl_tensor *z = crl_zeros(g->dtype, e->ndim, e->shape);
  crl_tensor *gc = crl_contiguous(g);
  if (!ix || !z || !gc) return NULL;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; i++)
    outer *= e->shape[i];
  for (int i = dim + 1; i < e->ndim; i++)
    inner *= e->shape[i];
  add_rows(g->dtype, z->data, gc->data, outer, e->shape[dim], ix, index->numel,
           inner);
  return z;
}

/* ---- index_select
 * ------------------------------------------------------------- */

static int index_select_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  gin[0] = index_add_grad(&n->edges[0], (int)n->i[0], g, n->saved[0]);
  return gin[0] ? 0 : crl_last_error_code();
}

crl_tensor *crl_index_select(crl_tensor *a, int dim, crl_tensor *index) {
  const char *op = "index_select";
  int d;
  if (check_tensor(op, "input", a) || check_index_tensor(op, index))
    return NULL;
  if (a->ndim == 0)
    return CRL_ERR_NULL(CRL_ESHAPE, "%s: cannot index a 0-dim tensor", op);
  if (crl__wrap_dim(op, dim, a->ndim, &d)) return NULL;
  if (index->ndim > 1) {
    char b[160];
    return CRL_ERR_NULL(CRL_ESHAPE, "%s: index must be 1-D, got shape %s", op,
                        CRL_SHAPE_STR(index, b));
  }
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  if (!ix) return NULL;
  int64_t nidx = index->numel, size = a->shape[d];
  crl_tensor *out = NULL;
  if (check_range(op, ix, nidx, size, true, d)) goto done;
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[d] = nidx;
  out = crl_empty(a->dtype, a->ndim, shape);
  if (!out) goto done;
  if (crl_tensor_is_contiguous(a)) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++)
      outer *= a->shape[i];
    for (int i = d + 1; i < a->ndim; i++)
      inner *= a->shape[i];
    take_rows(out->data, a->data, outer, size, ix, nidx,
              inner * (int64_t)crl_dtype_size(a->dtype));
  } else {
    take_strided(out, a, d, ix, nidx);
  }
done:
  return index_op_end(op, out, index_select_backward, 1, &a, d, 0, index, tmp);
}

/* ---- index / index_put_
 * -------------------------------------------------------- */

static int index_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  gin[0] = index_add_grad(&n->edges[0], 0, g, n->saved[0]);
  return gin[0] ? 0 : crl_last_error_code();
}

/* Validate a and index for a[index] / a[index] = v; fills the result shape
 * index.shape + a.shape[1:]. */
static int check_index_op(const char *op, const crl_tensor *a,
                          const crl_tensor *index, int *nd, int64_t *shape) {
  int rc;
  if ((rc = check_tensor(op, "input", a)) ||
      (rc = check_index_tensor(op, index)))
    return rc;
  if (a->ndim == 0)
    return crl__err(CRL_ESHAPE, "%s: cannot index a 0-dim tensor", op);
  if (index->ndim + a->ndim - 1 > CRL_MAX_DIMS) {
    char b1[160], b2[160];
    return crl__err(CRL_EINVAL,
                    "%s: index of shape %s into a tensor of shape %s gives "
                    "more than %d dims",
                    op, CRL_SHAPE_STR(index, b1), CRL_SHAPE_STR(a, b2),
                    CRL_MAX_DIMS);
  }
  *nd = 0;
  for (int i = 0; i < index->ndim; i++)
    shape[(*nd)++] = index->shape[i];
  for (int i = 1; i < a->ndim; i++)
    shape[(*nd)++] = a->shape[i];
  return 0;
}

crl_tensor *crl_index(crl_tensor *a, crl_tensor *index) {
  const char *op = "index";
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  if (check_index_op(op, a, index, &nd, shape)) return NULL;
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  if (!ix) return NULL;
  int64_t nidx = index->numel, size = a->shape[0];
  crl_tensor *out = NULL;
  if (check_range(op, ix, nidx, size, true, 0)) goto done;
  out = crl_empty(a->dtype, nd, shape);
  if (!out) goto done;
  if (crl_tensor_is_contiguous(a)) {
    int64_t inner = crl__numel(a->ndim - 1, a->shape + 1);
    take_rows(out->data, a->data, 1, size, ix, nidx,
              inner * (int64_t)crl_dtype_size(a->dtype));
  } else {
    crl_tensor o2 = *out; /* out seen as [nidx, a.shape[1:]] */
    o2.ndim = a->ndim;
    o2.shape[0] = nidx;
    for (int i = 1; i < a->ndim; i++)
      o2.shape[i] = a->shape[i];
    crl__contig_strides(o2.ndim, o2.shape, o2.stride);
    take_strided(&o2, a, 0, ix, nidx);
  }
done:
  return index_op_end(op, out, index_backward, 1, &a, 0, 0, index, tmp);
}

int crl_index_put_(crl_tensor *a, crl_tensor *index, crl_tensor *values,
                   bool accumulate) {
  const char *op = "index_put_";
  int nd, rc;
  int64_t shape[CRL_MAX_DIMS];
  if ((rc = check_index_op(op, a, index, &nd, shape)) ||
      (rc = check_tensor(op, "values", values)))
    return rc;
  /* values must broadcast to index.shape + a.shape[1:] */
  bool ok = values->ndim <= nd;
  for (int i = 0; ok && i < values->ndim; i++) {
    int64_t s = values->shape[values->ndim - 1 - i];
    if (s != 1 && s != shape[nd - 1 - i]) ok = false;
  }
  if (!ok) {
    char b1[160], b2[160], b3[160];
    return crl__err(CRL_ESHAPE,
                    "%s: values of shape %s do not broadcast to %s (index "
                    "shape + input shape %s without dim 0)",
                    op, CRL_SHAPE_STR(values, b1),
                    crl_shape_str(nd, shape, b2, sizeof b2),
                    CRL_SHAPE_STR(a, b3));
  }
  for (int i = 0; i < a->ndim; i++)
    if (a->stride[i] == 0 && a->shape[i] > 1) {
      char b[160];
      return crl__err(CRL_EINVAL,
                      "%s: the input of shape %s is expanded (stride 0 on "
                      "dim %d): several elements share memory; clone it "
                      "first",
                      op, CRL_SHAPE_STR(a, b), i);
    }
  crl_scope_begin();
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  int64_t nidx = index->numel, size = a->shape[0];
  rc = ix ? 0 : crl_last_error_code();
  if (!rc) rc = check_range(op, ix, nidx, size, true, 0);
  /* values as a contiguous [nidx, a.shape[1:]] block in a's dtype */
  crl_tensor *v = values;
  int64_t total = crl__numel(nd, shape);
  if (!rc && (v->dtype != a->dtype || !crl_tensor_is_contiguous(v) ||
              v->numel != total || v->storage == a->storage)) {
    v = crl_empty(a->dtype, nd, shape);
    if (v)
      crl__copy_into(v, values);
    else
      rc = crl_last_error_code();
  }
  if (!rc) rc = crl__check_inplace(op, a);
  if (rc) {
    crl_scope_end();
    return rc;
  }
  /* write */
  int64_t es = (int64_t)crl_dtype_size(a->dtype);
  int64_t inner = crl__numel(a->ndim - 1, a->shape + 1), rb = inner * es;
  crl_dtype dt = a->dtype;
  if (crl_tensor_is_contiguous(a)) {
    char *dst = a->data;
    const char *src = v->data;
    for (int64_t k = 0; k < nidx; k++) {
      int64_t r = ix[k] < 0 ? ix[k] + size : ix[k];
      if (accumulate)
        add_elems(dt, dst + r * rb, src + k * rb, inner);
      else
        memcpy(dst + r * rb, src + k * rb, (size_t)rb);
    }
  } else {
    crl_tensor vd = *a, vs = *a;
    drop_dim(&vd, 0);
    drop_dim(&vs, 0);
    crl__contig_strides(vs.ndim, vs.shape, vs.stride);
    for (int64_t k = 0; k < nidx; k++) {
      int64_t r = ix[k] < 0 ? ix[k] + size : ix[k];
      vd.data = (char *)a->data + r * a->stride[0] * es;
      vs.data = (char *)v->data + k * rb;
      if (accumulate) {
        crl_tensor *src = &vs;
        crl__iterate_tensors(&vd, 1, &src, add_loop, &dt, false);
      } else {
        crl__copy_into(&vd, &vs);
      }
    }
  }
  crl_scope_end();
  return 0;
}

/* ---- gather / scatter
 * ------------------------------------------------------------ */

enum { W_GATHER, W_SCATTER, W_ADD, W_ZERO };

/* Walk the index tensor's positions p (shape `shape`): t is the indexed
 * tensor (its element at p with coordinate dim replaced by ix[p]); s the
 * companion (src for scatter, out for gather) at p. Strides in elements. */
typedef struct {
  int ndim, dim;
  crl_dtype dt;
  int64_t shape[CRL_MAX_DIMS];
  int64_t ist[CRL_MAX_DIMS], tst[CRL_MAX_DIMS], sst[CRL_MAX_DIMS];
  const int64_t *ix;
  char *t, *s;
} walk_t;

#define WLOOP(T, STMT)                                                         \
  {                                                                            \
    T *tb = (T *)tp;                                                           \
    T *sb = (T *)sp;                                                           \
    for (int64_t j = 0; j < n; j++) {                                          \
      T *A = tb + j * ts + ip[j * is] * tdim;                                  \
      T *S = sb + j * ss;                                                      \
      (void)S;                                                                 \
      STMT;                                                                    \
    }                                                                          \
  }
#define WCOPY(STMT_T)                                                          \
  switch (es) {                                                                \
  case 1: WLOOP(uint8_t, STMT_T) break;                                        \
  case 4: WLOOP(uint32_t, STMT_T) break;                                       \
  case 8: WLOOP(uint64_t, STMT_T) break;                                       \
  default: break;                                                              \
  }

static void walk(const walk_t *w, int mode) {
  int nd = w->ndim, last = nd - 1;
  int64_t numel = crl__numel(nd, w->shape);
  if (numel == 0) return;
  int64_t es = (int64_t)crl_dtype_size(w->dt);
  int64_t tdim = w->tst[w->dim];
  int64_t tst[CRL_MAX_DIMS];
  for (int d = 0; d < nd; d++)
    tst[d] = d == w->dim ? 0 : w->tst[d];
  int64_t n = w->shape[last], is = w->ist[last], ts = tst[last],
          ss = w->sst[last];
  int64_t cnt[CRL_MAX_DIMS] = {0};
  int64_t io = 0, to = 0, so = 0;
  for (int64_t r = 0, rows = numel / n; r < rows; r++) {
    const int64_t *ip = w->ix + io;
    char *tp = w->t + to * es, *sp = w->s + so * es;
    switch (mode) {
    case W_GATHER: WCOPY(*S = *A) break;
    case W_SCATTER: WCOPY(*A = *S) break;
    case W_ZERO: WCOPY(*A = 0) break;
    case W_ADD:
      switch (w->dt) {
      case CRL_FLOAT32: WLOOP(float, *A += *S) break;
      case CRL_FLOAT64: WLOOP(double, *A += *S) break;
      case CRL_INT64: WLOOP(int64_t, *A += *S) break;
      case CRL_INT32: WLOOP(int32_t, *A += *S) break;
      case CRL_UINT8: WLOOP(uint8_t, *A += *S) break;
      case CRL_BOOL: WLOOP(uint8_t, *A = *A || *S) break;
      default: break;
      }
      break;
    default: break;
    }
    for (int d = last - 1; d >= 0; d--) {
      cnt[d]++;
      io += w->ist[d];
      to += tst[d];
      so += w->sst[d];
      if (cnt[d] < w->shape[d]) break;
      io -= w->ist[d] * w->shape[d];
      to -= tst[d] * w->shape[d];
      so -= w->sst[d] * w->shape[d];
      cnt[d] = 0;
    }
  }
}

/* Set up a walk over index positions; 0-dim tensors walk as [1]. */
static void walk_init(walk_t *w, int dim, const crl_tensor *index,
                      const int64_t *ix, const crl_tensor *t,
                      const crl_tensor *s) {
  w->dim = dim;
  w->dt = t->dtype;
  w->ix = ix;
  w->t = t->data;
  w->s = s->data;
  if (index->ndim == 0) {
    w->ndim = 1;
    w->shape[0] = 1;
    w->ist[0] = w->tst[0] = w->sst[0] = 0;
    return;
  }
  w->ndim = index->ndim;
  memcpy(w->shape, index->shape, sizeof w->shape);
  crl__contig_strides(index->ndim, index->shape, w->ist);
  memcpy(w->tst, t->stride, sizeof w->tst);
  memcpy(w->sst, s->stride, sizeof w->sst);
}

/* index.ndim == a.ndim and index.shape[d] <= a.shape[d] (d != dim, or all
 * d when `all`). */
static int check_fits(const char *op, const crl_tensor *index,
                      const crl_tensor *t, const char *what, int dim,
                      bool all) {
  char b1[160], b2[160];
  if (index->ndim != t->ndim)
    return crl__err(CRL_ESHAPE,
                    "%s: index of shape %s must have as many dims as the %s "
                    "of shape %s",
                    op, CRL_SHAPE_STR(index, b1), what, CRL_SHAPE_STR(t, b2));
  for (int d = 0; d < t->ndim; d++)
    if ((all || d != dim) && index->shape[d] > t->shape[d])
      return crl__err(CRL_ESHAPE,
                      "%s: index of shape %s is larger than the %s of shape "
                      "%s at dim %d",
                      op, CRL_SHAPE_STR(index, b1), what, CRL_SHAPE_STR(t, b2),
                      d);
  return 0;
}

static int gather_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *index = n->saved[0], *tmp;
  const int64_t *ix = index_data(index, &tmp);
  crl_tensor *z = crl_zeros(g->dtype, e->ndim, e->shape);
  if (!ix || !z) return crl_last_error_code();
  walk_t w;
  walk_init(&w, (int)n->i[0], index, ix, z, g);
  walk(&w, W_ADD);
  gin[0] = z;
  return 0;
}

crl_tensor *crl_gather(crl_tensor *a, int dim, crl_tensor *index) {
  const char *op = "gather";
  int d;
  if (check_tensor(op, "input", a) || check_index_tensor(op, index))
    return NULL;
  if (crl__wrap_dim(op, dim, a->ndim ? a->ndim : 1, &d) ||
      check_fits(op, index, a, "input", d, false))
    return NULL;
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  if (!ix) return NULL;
  crl_tensor *out = NULL;
  if (check_range(op, ix, index->numel, a->ndim ? a->shape[d] : 1, false, d))
    goto done;
  out = crl_empty(a->dtype, index->ndim, index->shape);
  if (!out) goto done;
  walk_t w;
  walk_init(&w, d, index, ix, a, out);
  walk(&w, W_GATHER);
done:
  return index_op_end(op, out, gather_backward, 1, &a, d, 0, index, tmp);
}

/* n->i: [0] dim, [1] 1 for scatter_add. saved[0] the index. */
static int scatter_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  int dim = (int)n->i[0];
  crl_tensor *index = n->saved[0], *tmp;
  const int64_t *ix = index_data(index, &tmp);
  if (!ix) return crl_last_error_code();
  if (n->edges[0].needs_grad) {
    if (n->i[1]) {
      gin[0] = g;
    } else { /* overwritten places get no gradient */
      crl_tensor *gc = crl__to_contig_dtype(g, g->dtype);
      if (!gc) return crl_last_error_code();
      walk_t w;
      walk_init(&w, dim, index, ix, gc, gc);
      for (int d = 0; d < CRL_MAX_DIMS; d++)
        w.sst[d] = 0;
      walk(&w, W_ZERO);
      gin[0] = gc;
    }
  }
  crl_edge *e = &n->edges[2];
  if (e->needs_grad) { /* gather g at index, placed in zeros(src shape) */
    crl_tensor *z = crl_zeros(g->dtype, e->ndim, e->shape);
    if (!z) return crl_last_error_code();
    crl_tensor zv = *z; /* the leading index-shaped block of z */
    for (int d = 0; d < index->ndim; d++)
      zv.shape[d] = index->shape[d];
    zv.numel = index->numel;
    walk_t w;
    walk_init(&w, dim, index, ix, g, &zv);
    walk(&w, W_GATHER);
    gin[2] = z;
  }
  return 0;
}

static crl_tensor *scatter_impl(const char *op, crl_tensor *a, int dim,
                                crl_tensor *index, crl_tensor *src, bool add) {
  int d;
  if (check_tensor(op, "input", a) || check_index_tensor(op, index) ||
      check_tensor(op, "src", src))
    return NULL;
  if (src->dtype != a->dtype)
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "%s: src has dtype %s but the input has %s (they "
                        "must match)",
                        op, crl_dtype_name(src->dtype),
                        crl_dtype_name(a->dtype));
  if (crl__wrap_dim(op, dim, a->ndim ? a->ndim : 1, &d) ||
      check_fits(op, index, a, "input", d, false) ||
      check_fits(op, index, src, "src", d, true))
    return NULL;
  crl_tensor *tmp;
  const int64_t *ix = index_data(index, &tmp);
  if (!ix) return NULL;
  crl_tensor *out = NULL;
  if (check_range(op, ix, index->numel, a->ndim ? a->shape[d] : 1, false, d))
    goto done;
  out = crl__to_contig_dtype(a, a->dtype);
  if (!out) goto done;
  walk_t w;
  walk_init(&w, d, index, ix, out, src);
  walk(&w, add ? W_ADD : W_SCATTER);
done:;
  crl_tensor *in[3] = {a, NULL, src};
  return index_op_end(op, out, scatter_backward, 3, in, d, add, index, tmp);
}

crl_tensor *crl_scatter(crl_tensor *a, int dim, crl_tensor *index,
                        crl_tensor *src) {
  return scatter_impl("scatter", a, dim, index, src, false);
}

crl_tensor *crl_scatter_add(crl_tensor *a, int dim, crl_tensor *index,
                            crl_tensor *src) {
  return scatter_impl("scatter_add", a, dim, index, src, true);
}

/* ---- masked_fill / masked_select
 * ------------------------------------------------- */

static int check_mask(const char *op, const crl_tensor *a,
                      const crl_tensor *mask, int *nd, int64_t *shape) {
  int rc;
  if ((rc = check_tensor(op, "input", a)) ||
      (rc = check_tensor(op, "mask", mask)))
    return rc;
  if (mask->dtype != CRL_BOOL)
    return crl__err(CRL_EDTYPE, "%s: mask must be bool, got %s", op,
                    crl_dtype_name(mask->dtype));
  return crl__broadcast_shapes(op, a->ndim, a->shape, mask->ndim, mask->shape,
                               nd, shape);
}

typedef struct {
  crl_dtype dt;
  double v;
} mfill_ctx;

#define MFILL(T, VAL)                                                          \
  {                                                                            \
    const T v = (T)(VAL);                                                      \
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 1) {                 \
      T *o = (T *)p[0];                                                        \
      const T *x = (const T *)p[1];                                            \
      const uint8_t *m = (const uint8_t *)p[2];                                \
      for (int64_t i = 0; i < n; i++)                                          \
        o[i] = m[i] ? v : x[i];                                                \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++)                                          \
        *(T *)(p[0] + i * s[0]) =                                              \
            p[2][i * s[2]] ? v : *(const T *)(p[1] + i * s[1]);                \
    }                                                                          \
  }

static void mfill_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const mfill_ctx *c = vctx;
  switch (c->dt) {
  case CRL_FLOAT32: MFILL(float, c->v) break;
  case CRL_FLOAT64: MFILL(double, c->v) break;
  case CRL_INT64: MFILL(int64_t, c->v) break;
  case CRL_INT32: MFILL(int32_t, c->v) break;
  case CRL_UINT8: MFILL(uint8_t, c->v) break;
  case CRL_BOOL: MFILL(uint8_t, c->v != 0) break;
  default: break;
  }
}

static int masked_fill_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *m = crl_masked_fill(g, n->saved[0], 0.0);
  gin[0] = m ? crl__sum_to(m, e->ndim, e->shape) : NULL;
  return gin[0] ? 0 : crl_last_error_code();
}

crl_tensor *crl_masked_fill(crl_tensor *a, crl_tensor *mask, double value) {
  const char *op = "masked_fill";
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  if (check_mask(op, a, mask, &nd, shape)) return NULL;
  if (!crl_dtype_is_float(a->dtype) && a->dtype != CRL_BOOL) {
    static const double lim[] = {[CRL_INT64] = 9223372036854775808.0,
                                 [CRL_INT32] = 2147483648.0,
                                 [CRL_UINT8] = 256.0};
    double lo = a->dtype == CRL_UINT8 ? 0 : -lim[a->dtype];
    if (!(value >= lo && value < lim[a->dtype]))
      return CRL_ERR_NULL(CRL_EINVAL, "%s: value %g does not fit in dtype %s",
                          op, value, crl_dtype_name(a->dtype));
  }
  crl_tensor *out = crl_empty(a->dtype, nd, shape);
  if (!out) return NULL;
  mfill_ctx c = {a->dtype, value};
  crl_tensor *srcs[2] = {a, mask};
  crl__iterate_tensors(out, 2, srcs, mfill_loop, &c, true);
  return index_op_end(op, out, masked_fill_backward, 1, &a, 0, 0, mask, NULL);
}

/* Sequential walks over (x, mask) broadcast to one shape. */
typedef struct {
  int64_t es, count;
  char *w; /* packed side: written (select) or read (scatter back) */
  bool back;
} msel_ctx;

static void mcount_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  msel_ctx *c = vctx;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++)
    k += p[1][i * s[1]] != 0;
  c->count += k;
}

#define MSEL(T)                                                                \
  for (int64_t i = 0; i < n; i++) {                                            \
    if (!p[1][i * s[1]]) continue;                                             \
    if (c->back)                                                               \
      memcpy(p[0] + i * s[0], c->w, sizeof(T));                                \
    else                                                                       \
      memcpy(c->w, p[0] + i * s[0], sizeof(T));                                \
    c->w += sizeof(T);                                                         \
  }

static void msel_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  msel_ctx *c = vctx;
  switch (c->es) {
  case 1: MSEL(uint8_t) break;
  case 4: MSEL(uint32_t) break;
  case 8: MSEL(uint64_t) break;
  default: break;
  }
}

/* Iterate x (op 0) and mask (op 1), both broadcast to shape, in order. */
static void mask_walk(crl_tensor *x, crl_tensor *mask, int nd,
                      const int64_t *shape, crl__loop_fn fn, msel_ctx *c) {
  char *base[2] = {x->data, mask->data};
  int64_t bs[2][CRL_MAX_DIMS];
  crl__broadcast_strides(x, nd, shape, bs[0]);
  crl__broadcast_strides(mask, nd, shape, bs[1]);
  for (int d = 0; d < nd; d++)
    bs[0][d] *= c->es;
  crl__iterate(2, base, nd, shape, (const int64_t(*)[CRL_MAX_DIMS])bs, fn, c,
               false);
}

static int masked_select_backward(crl_node *n, crl_tensor *g,
                                  crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *mask = n->saved[0];
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  int rc = crl__broadcast_shapes("masked_select", e->ndim, e->shape, mask->ndim,
                                 mask->shape, &nd, shape);
  if (rc) return rc;
  crl_tensor *z = crl_zeros(g->dtype, nd, shape);
  crl_tensor *gc = crl_contiguous(g);
  if (!z || !gc) return crl_last_error_code();
  msel_ctx c = {(int64_t)crl_dtype_size(g->dtype), 0, gc->data, true};
  mask_walk(z, mask, nd, shape, msel_loop, &c);
  gin[0] = crl__sum_to(z, e->ndim, e->shape);
  return gin[0] ? 0 : crl_last_error_code();
}

crl_tensor *crl_masked_select(crl_tensor *a, crl_tensor *mask) {
  const char *op = "masked_select";
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  if (check_mask(op, a, mask, &nd, shape)) return NULL;
  msel_ctx c = {(int64_t)crl_dtype_size(a->dtype), 0, NULL, false};
  mask_walk(a, mask, nd, shape, mcount_loop, &c);
  crl_tensor *out = crl_empty(a->dtype, 1, &c.count);
  if (!out) return NULL;
  c.w = out->data;
  mask_walk(a, mask, nd, shape, msel_loop, &c);
  return index_op_end(op, out, masked_select_backward, 1, &a, 0, 0, mask, NULL);
}
