/* Joining and splitting: cat, stack (copies) and split, chunk, unbind
 * (views). Differentiable: the gradient of cat is narrowed per input, of
 * stack selected per input; the pieces of split/chunk/unbind are
 * narrow/select views with their own backward. */
#include <stdlib.h>

#include "internal.h"

/* ---- the copy kernel shared by cat and stack ----------------------------- */

/* Copy n inputs (same ndim as out, matching out except on dim) one after
 * another along dim of the contiguous out. Contiguous inputs go by memcpy
 * (one call per input when every dim before `dim` has size 1); others
 * through the strided copy. */
static void cat_copy(crl_tensor *out, int n, const crl_tensor *const *ts,
                     int dim) {
  int64_t es = (int64_t)crl_dtype_size(out->dtype);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; i++)
    outer *= out->shape[i];
  for (int i = dim + 1; i < out->ndim; i++)
    inner *= out->shape[i];
  int64_t out_row = out->shape[dim] * inner * es;
  char *base = out->data;
  int64_t off = 0; /* bytes into an out row */
  for (int k = 0; k < n; k++) {
    const crl_tensor *t = ts[k];
    int64_t chunk = t->shape[dim] * inner * es;
    if (chunk == 0 || outer == 0) continue;
    if (crl_tensor_is_contiguous(t)) {
      const char *src = t->data;
      if (outer == 1) {
        memcpy(base + off, src, (size_t)chunk);
      } else if (chunk == 4) {
        for (int64_t o = 0; o < outer; o++)
          memcpy(base + o * out_row + off, src + o * 4, 4);
      } else if (chunk == 8) {
        for (int64_t o = 0; o < outer; o++)
          memcpy(base + o * out_row + off, src + o * 8, 8);
      } else {
        for (int64_t o = 0; o < outer; o++)
          memcpy(base + o * out_row + off, src + o * chunk, (size_t)chunk);
      }
    } else {
      crl_tensor v = *out;
      v.data = base + off;
      v.shape[dim] = t->shape[dim];
      v.numel = crl__numel(v.ndim, v.shape);
      crl__copy_into(&v, t);
    }
    off += chunk;
  }
}

static int check_list(const char *op, int n, crl_tensor *const *ts) {
  if (n <= 0 || !ts)
    return crl__err(CRL_EINVAL, "%s: no tensors given (n = %d)", op, n);
  for (int k = 0; k < n; k++) {
    if (!ts[k]) return crl__err(CRL_EINVAL, "%s: tensor %d is NULL", op, k);
    int rc = crl__check_cpu(op, ts[k]);
    if (rc) return rc;
    if (ts[k]->dtype != ts[0]->dtype)
      return crl__err(CRL_EDTYPE,
                      "%s: tensor %d has dtype %s but tensor 0 has %s (all "
                      "must have the same dtype)",
                      op, k, crl_dtype_name(ts[k]->dtype),
                      crl_dtype_name(ts[0]->dtype));
  }
  return 0;
}

/* ---- cat -------------------------------------------------------------------
 */

static int cat_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  int dim = (int)n->i[0];
  int64_t start = 0;
  for (int k = 0; k < n->ninputs; k++) {
    crl_edge *e = &n->edges[k];
    int64_t len = e->shape[dim];
    if (e->needs_grad) {
      int64_t st[CRL_MAX_DIMS];
      memcpy(st, g->stride, sizeof st);
      gin[k] = crl__alias(g, e->ndim, e->shape, st,
                          g->offset + (len ? start * g->stride[dim] : 0));
      if (!gin[k]) return crl_last_error_code();
    }
    start += len;
  }
  return 0;
}

crl_tensor *crl_cat(int n, crl_tensor *const *ts, int dim) {
  if (check_list("cat", n, ts)) return NULL;
  const crl_tensor *t0 = ts[0];
  if (t0->ndim == 0)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "cat: tensor 0 is 0-dim and cannot be concatenated");
  int d;
  if (crl__wrap_dim("cat", dim, t0->ndim, &d)) return NULL;
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, t0->shape, sizeof shape);
  shape[d] = 0;
  for (int k = 0; k < n; k++) {
    const crl_tensor *t = ts[k];
    bool ok = t->ndim == t0->ndim;
    for (int i = 0; ok && i < t->ndim; i++)
      if (i != d && t->shape[i] != t0->shape[i]) ok = false;
    if (!ok) {
      char b1[160], b2[160];
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "cat: tensor %d has shape %s but tensor 0 has %s "
                          "(shapes must match except on dim %d)",
                          k, CRL_SHAPE_STR(t, b1), CRL_SHAPE_STR(t0, b2), d);
    }
    shape[d] += t->shape[d];
  }
  if (crl__check_shape("cat", t0->ndim, shape)) return NULL;
  crl_tensor *out = crl_empty(t0->dtype, t0->ndim, shape);
  if (!out) return NULL;
  cat_copy(out, n, (const crl_tensor *const *)ts, d);
  if (crl__any_requires_grad(n, ts)) {
    crl_node *node = crl__record(out, "cat", cat_backward, n, ts);
    if (!node) {
      crl__discard(out);
      return NULL;
    }
    node->i[0] = d;
  }
  return out;
}

/* ---- stack ------------------------------------------------------------------
 */

static int stack_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  int dim = (int)n->i[0];
  for (int k = 0; k < n->ninputs; k++) {
    if (!n->edges[k].needs_grad) continue;
    int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < g->ndim; i++) {
      if (i == dim) continue;
      shape[nd] = g->shape[i];
      st[nd++] = g->stride[i];
    }
    gin[k] = crl__alias(g, nd, shape, st, g->offset + k * g->stride[dim]);
    if (!gin[k]) return crl_last_error_code();
  }
  return 0;
}

crl_tensor *crl_stack(int n, crl_tensor *const *ts, int dim) {
  if (check_list("stack", n, ts)) return NULL;
  const crl_tensor *t0 = ts[0];
  if (t0->ndim >= CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "stack: tensors already have %d dims (the maximum)",
                        t0->ndim);
  int d;
  if (crl__wrap_dim("stack", dim, t0->ndim + 1, &d)) return NULL;
  for (int k = 1; k < n; k++) {
    if (!crl_same_shape(ts[k], t0)) {
      char b1[160], b2[160];
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "stack: tensor %d has shape %s but tensor 0 has %s "
                          "(all must match)",
                          k, CRL_SHAPE_STR(ts[k], b1), CRL_SHAPE_STR(t0, b2));
    }
  }
  int64_t shape[CRL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i <= t0->ndim; i++) {
    if (i == d) shape[nd++] = n;
    if (i < t0->ndim) shape[nd++] = t0->shape[i];
  }
  if (crl__check_shape("stack", nd, shape)) return NULL;
  /* unsqueezed geometry of each input, as stack-local structs */
  crl_tensor local[16];
  crl_tensor *u = n <= 16 ? local : malloc(sizeof(crl_tensor) * (size_t)n);
  const crl_tensor **up = malloc(sizeof(*up) * (size_t)n);
  if (!u || !up) {
    if (u != local) free(u);
    free(up);
    return CRL_ERR_NULL(CRL_ENOMEM, "stack: out of memory");
  }
  for (int k = 0; k < n; k++) {
    const crl_tensor *t = ts[k];
    crl_tensor *v = &u[k];
    *v = *t;
    v->ndim = t->ndim + 1;
    for (int i = 0, j = 0; i <= t->ndim; i++) {
      if (i == d) {
        v->shape[j] = 1;
        v->stride[j++] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
      }
      if (i < t->ndim) {
        v->shape[j] = t->shape[i];
        v->stride[j++] = t->stride[i];
      }
    }
    up[k] = v;
  }
  crl_tensor *out = crl_empty(t0->dtype, nd, shape);
  if (out) cat_copy(out, n, up, d);
  if (u != local) free(u);
  free(up);
  if (!out) return NULL;
  if (crl__any_requires_grad(n, ts)) {
    crl_node *node = crl__record(out, "stack", stack_backward, n, ts);
    if (!node) {
      crl__discard(out);
      return NULL;
    }
    node->i[0] = d;
  }
  return out;
}

/* ---- split / chunk / unbind
 * --------------------------------------------------- */

/* `count` narrow views of size `size_each` (the last one what is left), or
 * select views when select is set. Nothing is written to out on failure. */
static int make_pieces(const char *op, crl_tensor *a, int dim, int64_t each,
                       int64_t count, bool select, crl_tensor **out, int cap) {
  if (count > cap || (count > 0 && !out))
    return crl__err(CRL_EINVAL,
                    "%s: %lld pieces are needed but the output array holds "
                    "%d",
                    op, (long long)count, out ? cap : 0);
  int64_t size = a->shape[dim];
  crl_tensor *local[64];
  crl_tensor **tmp =
      count <= 64 ? local : malloc(sizeof(crl_tensor *) * (size_t)count);
  if (!tmp) return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  int64_t k = 0;
  for (; k < count; k++) {
    int64_t start = k * each;
    if (start > size) start = size;
    int64_t len = size - start < each ? size - start : each;
    tmp[k] = select ? crl__select_unchecked(a, dim, k)
                    : crl__narrow_unchecked(a, dim, start, len);
    if (!tmp[k]) break;
  }
  if (k < count) {
    int rc = crl_last_error_code();
    while (k > 0)
      crl__discard(tmp[--k]);
    if (tmp != local) free(tmp);
    return rc ? rc : CRL_ENOMEM;
  }
  for (k = 0; k < count; k++)
    out[k] = tmp[k];
  if (tmp != local) free(tmp);
  return (int)count;
}

int crl_split(crl_tensor *a, int64_t split_size, int dim, crl_tensor **out,
              int cap) {
  if (!a) return crl__err(CRL_EINVAL, "split: tensor is NULL");
  int d, rc;
  if ((rc = crl__wrap_dim("split", dim, a->ndim, &d))) return rc;
  int64_t size = a->shape[d];
  if (split_size < 0 || (split_size == 0 && size != 0))
    return crl__err(CRL_EINVAL,
                    "split: split_size %lld must be positive (dim %d has "
                    "size %lld)",
                    (long long)split_size, dim, (long long)size);
  int64_t count = size == 0 ? 1 : (size + split_size - 1) / split_size;
  if (count > INT32_MAX)
    return crl__err(CRL_EINVAL, "split: %lld pieces is too many",
                    (long long)count);
  return make_pieces("split", a, d, split_size, count, false, out, cap);
}

int crl_chunk(crl_tensor *a, int chunks, int dim, crl_tensor **out, int cap) {
  if (!a) return crl__err(CRL_EINVAL, "chunk: tensor is NULL");
  int d, rc;
  if ((rc = crl__wrap_dim("chunk", dim, a->ndim, &d))) return rc;
  if (chunks <= 0)
    return crl__err(CRL_EINVAL, "chunk: chunks must be positive, got %d",
                    chunks);
  int64_t size = a->shape[d];
  if (size == 0) /* torch: `chunks` empty pieces */
    return make_pieces("chunk", a, d, 0, chunks, false, out, cap);
  int64_t each = (size + chunks - 1) / chunks;
  return make_pieces("chunk", a, d, each, (size + each - 1) / each, false, out,
                     cap);
}

int crl_unbind(crl_tensor *a, int dim, crl_tensor **out, int cap) {
  if (!a) return crl__err(CRL_EINVAL, "unbind: tensor is NULL");
  int d, rc;
  if ((rc = crl__wrap_dim("unbind", dim, a->ndim, &d))) return rc;
  if (a->shape[d] > INT32_MAX)
    return crl__err(CRL_EINVAL, "unbind: %lld pieces is too many",
                    (long long)a->shape[d]);
  return make_pieces("unbind", a, d, 1, a->shape[d], true, out, cap);
}
