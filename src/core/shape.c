/* Shape ops: view, reshape, permute, transpose, expand, squeeze, unsqueeze,
 * flatten, slice, select, narrow. All of them are zero-copy views that
 * share the input's storage (reshape copies only when no view exists), and
 * all are differentiable:
 *   view/reshape/squeeze/unsqueeze/flatten: reshape the gradient back;
 *   permute/transpose: permute the gradient by the inverse permutation;
 *   expand: sum over the expanded dims (crl__sum_to);
 *   slice/select/narrow: zeros of the input's shape with the gradient
 *   written into the corresponding view. */
#include <stdlib.h>

#include "internal.h"

/* A view of a with new geometry; records a node with `bw` when a requires
 * grad. *node (if given) receives the node or NULL. */
static crl_tensor *make_view(const char *name, crl_tensor *a, int ndim,
                             const int64_t *shape, const int64_t *stride,
                             int64_t offset, crl_backward_fn bw,
                             crl_node **node) {
  if (node) *node = NULL;
  crl_tensor *out = crl__alias(a, ndim, shape, stride, offset);
  if (!out) return NULL;
  if (bw && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, name, bw, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    if (node) *node = n;
  }
  return out;
}

static int check_input(const char *op, const crl_tensor *a) {
  if (!a) return crl__err(CRL_EINVAL, "%s: tensor is NULL", op);
  return 0;
}

/* ---- view / reshape ---------------------------------------------------- */

static int reshape_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  gin[0] = crl_reshape(g, e->ndim, e->shape);
  return gin[0] ? 0 : crl_last_error_code();
}

/* Resolve a requested shape (one -1 allowed) against numel. */
static int infer_shape(const char *op, const crl_tensor *a, int ndim,
                       const int64_t *shape, int64_t *out) {
  char b1[160], b2[160];
  if (ndim < 0 || ndim > CRL_MAX_DIMS)
    return crl__err(CRL_EINVAL, "%s: %d dims requested, at most %d allowed", op,
                    ndim, CRL_MAX_DIMS);
  if (ndim > 0 && !shape)
    return crl__err(CRL_EINVAL, "%s: shape is NULL for %d dims", op, ndim);
  int infer = -1;
  int64_t known = 1;
  bool bad = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0)
        return crl__err(CRL_EINVAL, "%s: shape %s has more than one -1", op,
                        crl_shape_str(ndim, shape, b1, sizeof b1));
      infer = i;
    } else if (shape[i] < 0) {
      return crl__err(CRL_EINVAL, "%s: negative size %lld in shape %s", op,
                      (long long)shape[i],
                      crl_shape_str(ndim, shape, b1, sizeof b1));
    } else {
      if (shape[i] && known > INT64_MAX / shape[i]) bad = true;
      known *= shape[i];
    }
    out[i] = shape[i];
  }
  if (infer >= 0) {
    if (known == 0 || a->numel % known != 0)
      bad = true;
    else
      out[infer] = a->numel / known;
  } else if (known != a->numel) {
    bad = true;
  }
  if (bad)
    return crl__err(CRL_ESHAPE,
                    "%s: shape %s is invalid for a tensor of shape %s (%lld "
                    "elements)",
                    op, crl_shape_str(ndim, shape, b1, sizeof b1),
                    CRL_SHAPE_STR(a, b2), (long long)a->numel);
  return 0;
}

/* torch's computeStride: strides for viewing (oshape, ostride) as nshape
 * without copying; false when impossible. numel(oshape) == numel(nshape). */
static bool compute_stride(int ond, const int64_t *oshape,
                           const int64_t *ostride, int nnd,
                           const int64_t *nshape, int64_t *nstride) {
  if (ond == 0) {
    for (int i = 0; i < nnd; i++)
      nstride[i] = 1;
    return true;
  }
  int64_t numel = crl__numel(ond, oshape);
  if (numel == 0) {
    bool same = ond == nnd;
    for (int i = 0; same && i < ond; i++)
      same = oshape[i] == nshape[i];
    if (same) {
      memcpy(nstride, ostride, sizeof(int64_t) * (size_t)nnd);
      return true;
    }
    for (int d = nnd - 1; d >= 0; d--)
      nstride[d] = d == nnd - 1 ? 1
                                : (nshape[d + 1] > 1 ? nshape[d + 1] : 1) *
                                      nstride[d + 1];
    return true;
  }
  int vd = nnd - 1;
  int64_t chunk_base = ostride[ond - 1], tnumel = 1, vnumel = 1;
  for (int td = ond - 1; td >= 0; td--) {
    tnumel *= oshape[td];
    if (td == 0 ||
        (oshape[td - 1] != 1 && ostride[td - 1] != tnumel * chunk_base)) {
      while (vd >= 0 && (vnumel < tnumel || nshape[vd] == 1)) {
        nstride[vd] = vnumel * chunk_base;
        vnumel *= nshape[vd];
        vd--;
      }
      if (vnumel != tnumel) return false;
      if (td > 0) {
        chunk_base = ostride[td - 1];
        tnumel = 1;
        vnumel = 1;
      }
    }
  }
  return vd == -1;
}

/* View (or with allow_copy, reshape) a to an already validated shape. */
static crl_tensor *reshape_to(const char *op, crl_tensor *a, int ndim,
                              const int64_t *shape, bool allow_copy) {
  int64_t st[CRL_MAX_DIMS];
  if (compute_stride(a->ndim, a->shape, a->stride, ndim, shape, st))
    return make_view(op, a, ndim, shape, st, a->offset, reshape_backward, NULL);
  if (!allow_copy) {
    char b1[160], b2[160], b3[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: a tensor of shape %s with strides %s cannot be "
                        "viewed as %s without a copy (use crl_reshape)",
                        op, CRL_SHAPE_STR(a, b1),
                        crl_shape_str(a->ndim, a->stride, b2, sizeof b2),
                        crl_shape_str(ndim, shape, b3, sizeof b3));
  }
  crl_scope_begin();
  crl_tensor *c = crl_contiguous(a);
  crl_tensor *r = NULL;
  if (c) {
    crl__contig_strides(ndim, shape, st);
    r = make_view(op, c, ndim, shape, st, c->offset, reshape_backward, NULL);
  }
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(r);
}

crl_tensor *crl_view(crl_tensor *a, int ndim, const int64_t *shape) {
  int64_t s[CRL_MAX_DIMS];
  if (check_input("view", a) || infer_shape("view", a, ndim, shape, s))
    return NULL;
  return reshape_to("view", a, ndim, s, false);
}

crl_tensor *crl_reshape(crl_tensor *a, int ndim, const int64_t *shape) {
  int64_t s[CRL_MAX_DIMS];
  if (check_input("reshape", a) || infer_shape("reshape", a, ndim, shape, s))
    return NULL;
  return reshape_to("reshape", a, ndim, s, true);
}

crl_tensor *crl_flatten(crl_tensor *a, int start, int end) {
  if (check_input("flatten", a)) return NULL;
  if (a->ndim == 0) {
    int d;
    if (crl__wrap_dim("flatten", start, 1, &d) ||
        crl__wrap_dim("flatten", end, 1, &d))
      return NULL;
    int64_t one = 1;
    return reshape_to("flatten", a, 1, &one, true);
  }
  int s, e;
  if (crl__wrap_dim("flatten", start, a->ndim, &s) ||
      crl__wrap_dim("flatten", end, a->ndim, &e))
    return NULL;
  if (s > e)
    return CRL_ERR_NULL(
        CRL_EINVAL, "flatten: start dim %d comes after end dim %d", start, end);
  int64_t shape[CRL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < s; i++)
    shape[nd++] = a->shape[i];
  int64_t m = 1;
  for (int i = s; i <= e; i++)
    m *= a->shape[i];
  shape[nd++] = m;
  for (int i = e + 1; i < a->ndim; i++)
    shape[nd++] = a->shape[i];
  return reshape_to("flatten", a, nd, shape, true);
}

/* ---- squeeze / unsqueeze ------------------------------------------------ */

crl_tensor *crl_squeeze(crl_tensor *a, int dim) {
  if (check_input("squeeze", a)) return NULL;
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int nd = 0, d = -1;
  if (dim != CRL_ALL_DIMS) {
    if (a->ndim == 0) {
      if (crl__wrap_dim("squeeze", dim, 1, &d)) return NULL;
      d = -1;
    } else if (crl__wrap_dim("squeeze", dim, a->ndim, &d)) {
      return NULL;
    }
  }
  for (int i = 0; i < a->ndim; i++) {
    bool drop = a->shape[i] == 1 && (dim == CRL_ALL_DIMS || i == d);
    if (drop) continue;
    shape[nd] = a->shape[i];
    st[nd++] = a->stride[i];
  }
  return make_view("squeeze", a, nd, shape, st, a->offset, reshape_backward,
                   NULL);
}

crl_tensor *crl_unsqueeze(crl_tensor *a, int dim) {
  if (check_input("unsqueeze", a)) return NULL;
  if (a->ndim >= CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "unsqueeze: tensor already has %d dims (the maximum)",
                        a->ndim);
  int d;
  if (crl__wrap_dim("unsqueeze", dim, a->ndim + 1, &d)) return NULL;
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i <= a->ndim; i++) {
    if (i == d) {
      shape[nd] = 1;
      st[nd++] = d < a->ndim ? a->shape[d] * a->stride[d] : 1;
    }
    if (i < a->ndim) {
      shape[nd] = a->shape[i];
      st[nd++] = a->stride[i];
    }
  }
  return make_view("unsqueeze", a, nd, shape, st, a->offset, reshape_backward,
                   NULL);
}

/* ---- permute / transpose --------------------------------------------------
 */

static int permute_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  int inv[CRL_MAX_DIMS], nd = n->edges[0].ndim;
  for (int i = 0; i < nd; i++)
    inv[i] = (int)n->i[i];
  gin[0] = crl_permute(g, nd, inv);
  return gin[0] ? 0 : crl_last_error_code();
}

static crl_tensor *permute_impl(const char *op, crl_tensor *a,
                                const int *perm) {
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  for (int i = 0; i < a->ndim; i++) {
    shape[i] = a->shape[perm[i]];
    st[i] = a->stride[perm[i]];
  }
  crl_node *n;
  crl_tensor *out =
      make_view(op, a, a->ndim, shape, st, a->offset, permute_backward, &n);
  if (n)
    for (int i = 0; i < a->ndim; i++)
      n->i[perm[i]] = i;
  return out;
}

crl_tensor *crl_permute(crl_tensor *a, int ndim, const int *dims) {
  if (check_input("permute", a)) return NULL;
  if (ndim != a->ndim) {
    char b[160];
    return CRL_ERR_NULL(CRL_EINVAL,
                        "permute: %d dims given for a tensor of shape %s (%d "
                        "dims)",
                        ndim, CRL_SHAPE_STR(a, b), a->ndim);
  }
  if (ndim > 0 && !dims)
    return CRL_ERR_NULL(CRL_EINVAL, "permute: dims is NULL");
  int perm[CRL_MAX_DIMS];
  bool seen[CRL_MAX_DIMS] = {false};
  for (int i = 0; i < ndim; i++) {
    if (crl__wrap_dim("permute", dims[i], ndim, &perm[i])) return NULL;
    if (seen[perm[i]])
      return CRL_ERR_NULL(CRL_EINVAL, "permute: dim %d appears more than once",
                          dims[i]);
    seen[perm[i]] = true;
  }
  return permute_impl("permute", a, perm);
}

crl_tensor *crl_transpose(crl_tensor *a, int d0, int d1) {
  if (check_input("transpose", a)) return NULL;
  int perm[CRL_MAX_DIMS] = {0}, x, y;
  if (a->ndim == 0) { /* torch allows dims 0/-1 on a scalar */
    if (crl__wrap_dim("transpose", d0, 1, &x) ||
        crl__wrap_dim("transpose", d1, 1, &y))
      return NULL;
    return permute_impl("transpose", a, perm);
  }
  if (crl__wrap_dim("transpose", d0, a->ndim, &x) ||
      crl__wrap_dim("transpose", d1, a->ndim, &y))
    return NULL;
  for (int i = 0; i < a->ndim; i++)
    perm[i] = i;
  perm[x] = y;
  perm[y] = x;
  return permute_impl("transpose", a, perm);
}

/* ---- expand
 * ------------------------------------------------------------------ */

static int expand_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  gin[0] = crl__sum_to(g, e->ndim, e->shape);
  return gin[0] ? 0 : crl_last_error_code();
}

crl_tensor *crl_expand(crl_tensor *a, int ndim, const int64_t *shape) {
  if (check_input("expand", a)) return NULL;
  char b1[160], b2[160];
  if (ndim < a->ndim || ndim > CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "expand: cannot expand shape %s to %d dims (needs "
                        "%d to %d)",
                        CRL_SHAPE_STR(a, b1), ndim, a->ndim, CRL_MAX_DIMS);
  if (ndim > 0 && !shape)
    return CRL_ERR_NULL(CRL_EINVAL, "expand: shape is NULL");
  int64_t out[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int lead = ndim - a->ndim;
  for (int i = 0; i < ndim; i++) {
    int j = i - lead;
    int64_t s = shape[i];
    bool ok;
    if (j < 0) {
      ok = s >= 0;
      st[i] = 0;
    } else {
      if (s == -1) s = a->shape[j];
      if (s == a->shape[j]) {
        ok = true;
        st[i] = a->stride[j];
      } else {
        ok = a->shape[j] == 1 && s >= 0;
        st[i] = 0;
      }
    }
    if (!ok)
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "expand: cannot expand shape %s to %s (dim %d: "
                          "%lld)",
                          CRL_SHAPE_STR(a, b1),
                          crl_shape_str(ndim, shape, b2, sizeof b2), i,
                          (long long)shape[i]);
    out[i] = s;
  }
  if (crl__check_shape("expand", ndim, out)) return NULL;
  return make_view("expand", a, ndim, out, st, a->offset, expand_backward,
                   NULL);
}

/* ---- slice / select / narrow ----------------------------------------------
 */

/* n->i: [0] dim, [1] start, [2] step, [3] length, [4] 1 if dim is dropped
 * (select). The gradient is written into that view of a zeros tensor. */
static int sub_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *z = crl_zeros(g->dtype, e->ndim, e->shape);
  if (!z) return crl_last_error_code();
  int dim = (int)n->i[0];
  crl_tensor v = *z;
  v.data = (char *)z->data +
           n->i[1] * z->stride[dim] * (int64_t)crl_dtype_size(z->dtype);
  if (n->i[4]) {
    for (int i = dim; i < z->ndim - 1; i++) {
      v.shape[i] = z->shape[i + 1];
      v.stride[i] = z->stride[i + 1];
    }
    v.ndim--;
  } else {
    v.shape[dim] = n->i[3];
    v.stride[dim] = z->stride[dim] * n->i[2];
  }
  v.numel = crl__numel(v.ndim, v.shape);
  crl__copy_into(&v, g);
  gin[0] = z;
  return 0;
}

/* The view a[..., start : start + len*step : step, ...] (drop: select). */
static crl_tensor *sub_view(const char *op, crl_tensor *a, int dim,
                            int64_t start, int64_t step, int64_t len,
                            bool drop) {
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (i == dim) {
      if (drop) continue;
      shape[nd] = len;
      st[nd++] = a->stride[i] * step;
    } else {
      shape[nd] = a->shape[i];
      st[nd++] = a->stride[i];
    }
  }
  /* an empty view keeps the input's offset so it never points past it */
  int64_t off = a->offset + (len > 0 ? start * a->stride[dim] : 0);
  crl_node *n;
  crl_tensor *out = make_view(op, a, nd, shape, st, off, sub_backward, &n);
  if (n) {
    n->i[0] = dim;
    n->i[1] = len > 0 ? start : 0;
    n->i[2] = step;
    n->i[3] = len;
    n->i[4] = drop;
  }
  return out;
}

static int64_t clamp_pos(int64_t v, int64_t size) {
  if (v < 0) {
    v = v < -size ? 0 : v + size;
  } else if (v > size) {
    v = size;
  }
  return v;
}

crl_tensor *crl_slice(crl_tensor *a, int dim, int64_t start, int64_t stop,
                      int64_t step) {
  if (check_input("slice", a)) return NULL;
  int d;
  if (crl__wrap_dim("slice", dim, a->ndim, &d)) return NULL;
  if (step <= 0)
    return CRL_ERR_NULL(CRL_EINVAL, "slice: step must be positive, got %lld",
                        (long long)step);
  int64_t size = a->shape[d];
  int64_t s = clamp_pos(start, size), e = clamp_pos(stop, size);
  int64_t len = e > s ? (e - s - 1) / step + 1 : 0;
  return sub_view("slice", a, d, s, step, len, false);
}

crl_tensor *crl_select(crl_tensor *a, int dim, int64_t index) {
  if (check_input("select", a)) return NULL;
  int d;
  if (crl__wrap_dim("select", dim, a->ndim, &d)) return NULL;
  int64_t size = a->shape[d];
  if (index < -size || index >= size) {
    char b[160];
    return CRL_ERR_NULL(CRL_EINDEX,
                        "select: index %lld out of range for dim %d of size "
                        "%lld (shape %s)",
                        (long long)index, dim, (long long)size,
                        CRL_SHAPE_STR(a, b));
  }
  if (index < 0) index += size;
  return sub_view("select", a, d, index, 1, 1, true);
}

crl_tensor *crl_narrow(crl_tensor *a, int dim, int64_t start, int64_t length) {
  if (check_input("narrow", a)) return NULL;
  int d;
  if (crl__wrap_dim("narrow", dim, a->ndim, &d)) return NULL;
  int64_t size = a->shape[d];
  int64_t s = start < 0 && start >= -size ? start + size : start;
  if (s < 0 || s > size || length < 0 || length > size - s) {
    char b[160];
    return CRL_ERR_NULL(CRL_EINDEX,
                        "narrow: start %lld with length %lld out of range "
                        "for dim %d of size %lld (shape %s)",
                        (long long)start, (long long)length, dim,
                        (long long)size, CRL_SHAPE_STR(a, b));
  }
  return sub_view("narrow", a, d, s, 1, length, false);
}

/* Internal for concat.c: narrow without validation (dim normalised). */
crl_tensor *crl__narrow_unchecked(crl_tensor *a, int dim, int64_t start,
                                  int64_t length) {
  return sub_view("narrow", a, dim, start, 1, length, false);
}
crl_tensor *crl__select_unchecked(crl_tensor *a, int dim, int64_t index) {
  return sub_view("select", a, dim, index, 1, 1, true);
}
