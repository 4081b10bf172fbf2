/* Batch-shape operations on TensorDicts: stack, cat, split, unbind, view,
 * reshape, permute, unsqueeze, squeeze, expand, flatten, unflatten.
 *
 * Each applies the tensor op to the batch dims of every leaf, recursively
 * into nested TensorDicts (whose batch sizes start with the parent's: their
 * extra batch dims follow the new ones), and sets the new batch size. Dims
 * are batch dims: negative ones count from the end of the root's batch
 * dims (for stack and unsqueeze from the end of the result's). Everything
 * but stack, cat and reshape (when no view exists) is a view sharing the
 * entries' storage.
 *
 * stack / cat need the same key set (in any order) in every TensorDict:
 * otherwise CRL_EKEY lists the keys that differ. stack goes key by key:
 * one allocation per key and one memcpy per contiguous source (torch.stack
 * through crl_stack only when autograd must record it). */
#include <stdio.h>
#include <stdlib.h>

#include "td_internal.h"

static int wrap_dim(const char *op, int dim, int n, int *out) {
  if (dim < -n || dim >= n || n == 0)
    return crl__err(CRL_EINDEX,
                    "%s: dim %d out of range for %d batch dim%s (valid: %d "
                    "to %d)",
                    op, dim, n, n == 1 ? "" : "s", -n, n - 1);
  *out = dim < 0 ? dim + n : dim;
  return 0;
}

static char *bstr(const crl_td *td, char *buf, size_t size) {
  return crl_shape_str(td->bnd, td->batch, buf, size);
}

static crl_td *shallow_map(const char *op, crl_td *td);

/* ---- the per-leaf shape ops ---------------------------------------------- */

typedef struct {
  int R;    /* root batch dims */
  int nbnd; /* new root batch dims */
  int64_t nb[CRL_MAX_DIMS];
  int perm[CRL_MAX_DIMS];
  int d, e;
  int64_t start, len;
  bool reshape;
} shape_ctx;

/* nb + t's feature dims (the dims after the root batch dims) */
static int leaf_shape(const shape_ctx *c, const crl_tensor *t, int64_t *out) {
  int nd = c->nbnd + t->ndim - c->R;
  if (nd > CRL_MAX_DIMS) {
    char b[160];
    return crl__err(CRL_EINVAL, "shape %s would need %d dims (at most %d)",
                    CRL_SHAPE_STR(t, b), nd, CRL_MAX_DIMS);
  }
  memcpy(out, c->nb, sizeof(int64_t) * (size_t)c->nbnd);
  memcpy(out + c->nbnd, t->shape + c->R,
         sizeof(int64_t) * (size_t)(t->ndim - c->R));
  return nd;
}

static crl_tensor *view_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  int64_t s[CRL_MAX_DIMS];
  int nd = leaf_shape(c, t, s);
  if (nd < 0) return NULL;
  return c->reshape ? crl_reshape(t, nd, s) : crl_view(t, nd, s);
}

static crl_tensor *expand_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  int64_t s[CRL_MAX_DIMS];
  int nd = leaf_shape(c, t, s);
  return nd < 0 ? NULL : crl_expand(t, nd, s);
}

static crl_tensor *permute_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  int p[CRL_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++)
    p[i] = i < c->R ? c->perm[i] : i;
  return crl_permute(t, t->ndim, p);
}

static crl_tensor *unsqueeze_leaf(crl_tensor *t, void *vctx) {
  return crl_unsqueeze(t, ((shape_ctx *)vctx)->d);
}

static crl_tensor *squeeze_leaf(crl_tensor *t, void *vctx) {
  return crl_squeeze(t, ((shape_ctx *)vctx)->d);
}

/* squeeze every size-1 root batch dim (listed in perm[0..e), descending) */
static crl_tensor *squeeze_all_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  crl_tensor *r = t;
  for (int i = 0; i < c->e && r; i++)
    r = crl_squeeze(r, c->perm[i]);
  return r;
}

static crl_tensor *flatten_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  return crl_flatten(t, c->d, c->e);
}

static crl_tensor *narrow_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  return crl__narrow_unchecked(t, c->d, c->start, c->len);
}

static crl_tensor *select_leaf(crl_tensor *t, void *vctx) {
  shape_ctx *c = vctx;
  return crl__select_unchecked(t, c->d, c->start);
}

static crl_tensor *same_leaf(crl_tensor *t, void *vctx) {
  (void)vctx;
  crl_tensor_retain(t);
  crl__scope_adopt(t);
  return t;
}

static crl_td *shallow_map(const char *op, crl_td *td) {
  return crl__td_map(op, td, 0, NULL, same_leaf, NULL);
}

/* ---- view / reshape ------------------------------------------------------ */

/* Resolve a requested batch size (one -1) against td's batch numel. */
static int infer_batch(const char *op, const crl_td *td, int ndim,
                       const int64_t *batch, int64_t *out) {
  char b1[160], b2[160];
  if (ndim < 0 || ndim > CRL_MAX_DIMS || (ndim > 0 && !batch))
    return crl__err(CRL_EINVAL, "%s: invalid batch size (%d dims)", op, ndim);
  int64_t numel = crl__numel(td->bnd, td->batch), known = 1;
  int infer = -1;
  bool bad = false;
  for (int i = 0; i < ndim; i++) {
    out[i] = batch[i];
    if (batch[i] == -1 && infer < 0)
      infer = i;
    else if (batch[i] < 0)
      bad = true;
    else
      known *= batch[i];
  }
  if (!bad && infer >= 0) {
    if (known == 0 || numel % known)
      bad = true;
    else
      out[infer] = numel / known;
  }
  if (bad || crl__numel(ndim, out) != numel)
    return crl__err(CRL_ESHAPE,
                    "%s: batch size %s is invalid for a TensorDict of batch "
                    "size %s",
                    op, crl_shape_str(ndim, batch, b1, sizeof b1),
                    bstr(td, b2, sizeof b2));
  return 0;
}

static crl_td *view_impl(const char *op, crl_td *td, int ndim,
                         const int64_t *batch, bool reshape) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict is NULL", op);
  shape_ctx c = {.R = td->bnd, .nbnd = ndim, .reshape = reshape};
  if (infer_batch(op, td, ndim, batch, c.nb)) return NULL;
  return crl__td_map(op, td, c.nbnd, c.nb, view_leaf, &c);
}

crl_td *crl_td_view(crl_td *td, int ndim, const int64_t *batch) {
  return view_impl("td_view", td, ndim, batch, false);
}

crl_td *crl_td_reshape(crl_td *td, int ndim, const int64_t *batch) {
  return view_impl("td_reshape", td, ndim, batch, true);
}

/* ---- permute / unsqueeze / squeeze / expand ------------------------------ */

crl_td *crl_td_permute(crl_td *td, int ndim, const int *dims) {
  const char *op = "td_permute";
  if (!td || (ndim > 0 && !dims))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: NULL argument", op);
  char b[160];
  if (ndim != td->bnd)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: %d dims given for a batch size %s of %d dims", op,
                        ndim, bstr(td, b, sizeof b), td->bnd);
  shape_ctx c = {.R = td->bnd, .nbnd = td->bnd};
  bool seen[CRL_MAX_DIMS] = {false};
  for (int i = 0; i < ndim; i++) {
    int d = 0;
    if (wrap_dim(op, dims[i], ndim, &d)) return NULL;
    if (seen[d])
      return CRL_ERR_NULL(CRL_EINVAL, "%s: dim %d repeated", op, dims[i]);
    seen[d] = true;
    c.perm[i] = d;
    c.nb[i] = td->batch[d];
  }
  return crl__td_map(op, td, c.nbnd, c.nb, permute_leaf, &c);
}

crl_td *crl_td_unsqueeze(crl_td *td, int dim) {
  const char *op = "td_unsqueeze";
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict is NULL", op);
  if (td->bnd >= CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: the TensorDict already has %d batch "
                        "dims (the maximum)",
                        op, td->bnd);
  shape_ctx c = {.R = td->bnd, .nbnd = td->bnd + 1};
  if (wrap_dim(op, dim, td->bnd + 1, &c.d)) return NULL;
  for (int i = 0, j = 0; i < c.nbnd; i++)
    c.nb[i] = i == c.d ? 1 : td->batch[j++];
  return crl__td_map(op, td, c.nbnd, c.nb, unsqueeze_leaf, &c);
}

crl_td *crl_td_squeeze(crl_td *td, int dim) {
  const char *op = "td_squeeze";
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict is NULL", op);
  shape_ctx c = {.R = td->bnd};
  if (dim == CRL_ALL_DIMS) {
    for (int i = td->bnd - 1; i >= 0; i--)
      if (td->batch[i] == 1) c.perm[c.e++] = i;
    for (int i = 0; i < td->bnd; i++)
      if (td->batch[i] != 1) c.nb[c.nbnd++] = td->batch[i];
    if (c.e == 0) return shallow_map(op, td);
    return crl__td_map(op, td, c.nbnd, c.nb, squeeze_all_leaf, &c);
  }
  if (wrap_dim(op, dim, td->bnd, &c.d)) return NULL;
  if (td->batch[c.d] != 1) return shallow_map(op, td); /* as torch: no-op */
  for (int i = 0; i < td->bnd; i++)
    if (i != c.d) c.nb[c.nbnd++] = td->batch[i];
  return crl__td_map(op, td, c.nbnd, c.nb, squeeze_leaf, &c);
}

crl_td *crl_td_expand(crl_td *td, int ndim, const int64_t *batch) {
  const char *op = "td_expand";
  if (!td || (ndim > 0 && !batch))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: NULL argument", op);
  char b1[160], b2[160];
  shape_ctx c = {.R = td->bnd, .nbnd = ndim};
  bool ok = ndim >= td->bnd && ndim <= CRL_MAX_DIMS;
  int lead = ndim - td->bnd;
  for (int i = 0; ok && i < ndim; i++) {
    int j = i - lead;
    int64_t s = batch[i];
    if (j >= 0 && s == -1) s = td->batch[j];
    ok = s >= 0 && (j < 0 || s == td->batch[j] || td->batch[j] == 1);
    c.nb[i] = s;
  }
  if (!ok)
    return CRL_ERR_NULL(CRL_ESHAPE, "%s: cannot expand batch size %s to %s", op,
                        bstr(td, b1, sizeof b1),
                        crl_shape_str(ndim, batch, b2, sizeof b2));
  return crl__td_map(op, td, c.nbnd, c.nb, expand_leaf, &c);
}

/* ---- flatten / unflatten ------------------------------------------------- */

crl_td *crl_td_flatten(crl_td *td, int start, int end) {
  const char *op = "td_flatten";
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict is NULL", op);
  shape_ctx c = {.R = td->bnd};
  if (wrap_dim(op, start, td->bnd, &c.d) || wrap_dim(op, end, td->bnd, &c.e))
    return NULL;
  if (c.d > c.e)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: start dim %d comes after end dim %d",
                        op, start, end);
  int64_t m = 1;
  for (int i = 0; i < td->bnd; i++) {
    if (i < c.d || i > c.e)
      c.nb[c.nbnd++] = td->batch[i];
    else
      m *= td->batch[i];
    if (i == c.e) c.nb[c.nbnd++] = m;
  }
  return crl__td_map(op, td, c.nbnd, c.nb, flatten_leaf, &c);
}

crl_td *crl_td_unflatten(crl_td *td, int dim, int ndim, const int64_t *sizes) {
  const char *op = "td_unflatten";
  if (!td || ndim < 1 || !sizes)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: invalid arguments", op);
  shape_ctx c = {.R = td->bnd, .reshape = true};
  int d;
  if (wrap_dim(op, dim, td->bnd, &d)) return NULL;
  char b1[160], b2[160];
  c.nbnd = td->bnd - 1 + ndim;
  if (c.nbnd > CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: %d batch dims (at most %d)", op,
                        c.nbnd, CRL_MAX_DIMS);
  int64_t known = 1, size = td->batch[d];
  int infer = -1;
  bool bad = false;
  for (int i = 0; i < ndim; i++) {
    if (sizes[i] == -1 && infer < 0)
      infer = i;
    else if (sizes[i] < 0)
      bad = true;
    else
      known *= sizes[i];
  }
  int64_t inferred = infer >= 0 && known > 0 ? size / known : 0;
  if (bad ||
      (infer >= 0 ? known == 0 || inferred * known != size : known != size))
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: sizes %s do not multiply to batch dim %d of size "
                        "%lld (batch size %s)",
                        op, crl_shape_str(ndim, sizes, b1, sizeof b1), dim,
                        (long long)size, bstr(td, b2, sizeof b2));
  int k = 0;
  for (int i = 0; i < td->bnd; i++) {
    if (i != d) {
      c.nb[k++] = td->batch[i];
      continue;
    }
    for (int j = 0; j < ndim; j++)
      c.nb[k++] = j == infer ? inferred : sizes[j];
  }
  return crl__td_map(op, td, c.nbnd, c.nb, view_leaf, &c);
}

/* ---- split / unbind ------------------------------------------------------ */

/* `count` pieces: narrow(d, k*each, len) or select(d, k); nothing is
 * written to out on failure. */
static int pieces(const char *op, crl_td *td, int d, int64_t each,
                  int64_t count, bool sel, crl_td **out, int cap) {
  if (count > cap || (count > 0 && !out))
    return crl__err(CRL_EINVAL,
                    "%s: %lld pieces are needed but the output array holds "
                    "%d",
                    op, (long long)count, out ? cap : 0);
  shape_ctx c = {.R = td->bnd, .d = d};
  int64_t size = td->batch[d];
  crl_td *local[64];
  crl_td **tmp = count <= 64 ? local : malloc(sizeof *tmp * (size_t)count);
  if (!tmp) return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  int64_t k = 0;
  for (; k < count; k++) {
    c.nbnd = 0;
    if (sel) {
      c.start = k;
    } else {
      c.start = k * each < size ? k * each : size;
      c.len = size - c.start < each ? size - c.start : each;
    }
    for (int i = 0; i < td->bnd; i++) {
      if (i == d && sel) continue;
      c.nb[c.nbnd++] = i == d ? c.len : td->batch[i];
    }
    tmp[k] =
        crl__td_map(op, td, c.nbnd, c.nb, sel ? select_leaf : narrow_leaf, &c);
    if (!tmp[k]) break;
  }
  if (k < count) {
    while (k > 0)
      crl__td_discard(tmp[--k]);
    if (tmp != local) free(tmp);
    return crl_last_error_code() ? crl_last_error_code() : CRL_ENOMEM;
  }
  memcpy(out, tmp, sizeof *tmp * (size_t)count);
  if (tmp != local) free(tmp);
  return (int)count;
}

int crl_td_split(crl_td *td, int64_t split_size, int dim, crl_td **out,
                 int cap) {
  const char *op = "td_split";
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  int d, rc;
  if ((rc = wrap_dim(op, dim, td->bnd, &d))) return rc;
  int64_t size = td->batch[d];
  if (split_size < 0 || (split_size == 0 && size != 0))
    return crl__err(CRL_EINVAL,
                    "%s: split_size %lld must be positive (batch dim %d has "
                    "size %lld)",
                    op, (long long)split_size, dim, (long long)size);
  int64_t count = size == 0 ? 1 : (size + split_size - 1) / split_size;
  if (count > INT32_MAX)
    return crl__err(CRL_EINVAL, "%s: %lld pieces is too many", op,
                    (long long)count);
  return pieces(op, td, d, split_size, count, false, out, cap);
}

int crl_td_unbind(crl_td *td, int dim, crl_td **out, int cap) {
  const char *op = "td_unbind";
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  int d, rc;
  if ((rc = wrap_dim(op, dim, td->bnd, &d))) return rc;
  if (td->batch[d] > INT32_MAX)
    return crl__err(CRL_EINVAL, "%s: %lld pieces is too many", op,
                    (long long)td->batch[d]);
  return pieces(op, td, d, 1, td->batch[d], true, out, cap);
}

/* ---- stack / cat --------------------------------------------------------- */

typedef struct {
  const char *op;
  int n, d;
  bool stack;
  crl_td *const *roots;
  char key[512];
} join_state;

/* CRL_EKEY listing the nested keys only in one of roots[0] / roots[k]. */
static int keys_differ(join_state *s, int k) {
  crl_td_keys a, b;
  if (crl_td_keys_get(s->roots[0], true, false, &a)) return CRL_ENOMEM;
  if (crl_td_keys_get(s->roots[k], true, false, &b)) {
    crl_td_keys_free(&a);
    return CRL_ENOMEM;
  }
  char only0[400] = "", onlyk[400] = "";
  size_t o0 = 0, ok = 0;
  for (int pass = 0; pass < 2; pass++) {
    crl_td_keys *x = pass ? &b : &a, *y = pass ? &a : &b;
    char *dst = pass ? onlyk : only0;
    size_t *o = pass ? &ok : &o0;
    for (int i = 0; i < x->n; i++) {
      bool found = false;
      for (int j = 0; j < y->n && !found; j++)
        found = strcmp(x->keys[i], y->keys[j]) == 0;
      if (found || *o + 8 >= sizeof only0) continue;
      int w = snprintf(dst + *o, sizeof only0 - *o, "%s'%s'", *o ? ", " : "",
                       x->keys[i]);
      if (w > 0) *o += (size_t)w;
    }
  }
  crl_td_keys_free(&a);
  crl_td_keys_free(&b);
  return crl__err(CRL_EKEY,
                  "%s: TensorDicts 0 and %d have different keys: only in 0: "
                  "%s; only in %d: %s",
                  s->op, k, o0 ? only0 : "none", k, ok ? onlyk : "none");
}

/* index in td of entry `key` (i: its likely position), or -1 */
static int find_entry(const crl_td *td, const char *key, int i) {
  if (i < td->n && strcmp(td->e[i].key, key) == 0) return i;
  return crl__td_find_local(td, key, strlen(key));
}

/* One allocation, then per source one memcpy (contiguous) or a strided
 * copy into its slot; crl_stack when autograd records the op. */
static crl_tensor *stack_tensors(int n, crl_tensor *const *ts, int d) {
  if (d > ts[0]->ndim || ts[0]->ndim >= CRL_MAX_DIMS ||
      crl__any_requires_grad(n, ts))
    return crl_stack(n, ts, d);
  const crl_tensor *t0 = ts[0];
  int64_t shape[CRL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i <= t0->ndim; i++) {
    if (i == d) shape[nd++] = n;
    if (i < t0->ndim) shape[nd++] = t0->shape[i];
  }
  crl_tensor *out = crl_empty(t0->dtype, nd, shape);
  if (!out || out->numel == 0) return out;
  size_t es = crl_dtype_size(t0->dtype);
  int64_t outer = crl__numel(d, t0->shape);
  size_t chunk = (size_t)crl__numel(t0->ndim - d, t0->shape + d) * es;
  char *o = out->data;
  for (int k = 0; k < n; k++) {
    const crl_tensor *t = ts[k];
    if (crl_tensor_is_contiguous(t)) {
      const char *src = t->data;
      if (outer == 1) {
        memcpy(o + (size_t)k * chunk, src, chunk);
      } else {
        for (int64_t j = 0; j < outer; j++)
          memcpy(o + ((size_t)j * (size_t)n + (size_t)k) * chunk,
                 src + (size_t)j * chunk, chunk);
      }
    } else {
      crl_tensor v = *t; /* out's slot k, shaped like t */
      v.storage = out->storage;
      for (int i = 0, j = 0; i < out->ndim; i++)
        if (i != d) v.stride[j++] = out->stride[i];
      v.data = o + (size_t)k * (size_t)out->stride[d] * es;
      crl__copy_into(&v, t);
    }
  }
  return out;
}

static bool shapes_match(const crl_tensor *a, const crl_tensor *b, int skip) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (i != skip && a->shape[i] != b->shape[i]) return false;
  return true;
}

static crl_td *join_rec(join_state *s, crl_td *const *tds, size_t klen) {
  const crl_td *t0 = tds[0];
  int n = s->n, d = s->d;
  int64_t nb[CRL_MAX_DIMS];
  int nbnd = 0;
  if (s->stack && t0->bnd >= CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: nested TensorDict '%s' already has %d batch "
                        "dims (the maximum)",
                        s->op, s->key, t0->bnd);
  for (int i = 0; i <= t0->bnd; i++) {
    if (s->stack && i == d) nb[nbnd++] = n;
    if (i == t0->bnd) break;
    nb[nbnd] = t0->batch[i];
    if (!s->stack && i == d)
      for (int k = 1; k < n; k++)
        nb[nbnd] += tds[k]->batch[i];
    nbnd++;
  }
  crl_td *out = crl__td_new_raw(nbnd, nb, t0->device);
  if (!out) return NULL;
  void **buf = malloc(sizeof(void *) * (size_t)n);
  if (!buf) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", s->op);
  for (int i = 0; i < t0->n; i++) {
    const td_entry *e = &t0->e[i];
    /* the key path, for messages (memcpy: this runs per entry) */
    size_t nl = klen, kl = strlen(e->key);
    if (nl && nl < sizeof s->key - 1) s->key[nl++] = '/';
    if (kl > sizeof s->key - 1 - nl) kl = sizeof s->key - 1 - nl;
    memcpy(s->key + nl, e->key, kl);
    nl += kl;
    s->key[nl] = 0;
    crl_tensor *r = NULL;
    crl_td *sub = NULL;
    char b1[160], b2[160];
    for (int k = 0; k < n; k++) {
      const td_entry *f = &tds[k]->e[find_entry(tds[k], e->key, i)];
      if (!e->t != !f->t) {
        crl__err(CRL_EKEY,
                 "%s: key '%s' is %s in TensorDict 0 but %s in TensorDict %d",
                 s->op, s->key, e->t ? "a tensor" : "a TensorDict",
                 f->t ? "a tensor" : "a TensorDict", k);
        goto fail;
      }
      if (f->sub) {
        buf[k] = f->sub;
        const crl_td *a = f->sub, *b0 = e->sub;
        bool ok = a->bnd == b0->bnd;
        for (int j = 0; ok && j < a->bnd; j++)
          ok = j == d && !s->stack ? true : a->batch[j] == b0->batch[j];
        if (!ok) {
          crl__err(CRL_ESHAPE,
                   "%s: nested TensorDict '%s' has batch size %s in "
                   "TensorDict %d but %s in TensorDict 0",
                   s->op, s->key, bstr(a, b1, sizeof b1), k,
                   bstr(b0, b2, sizeof b2));
          goto fail;
        }
        continue;
      }
      crl_tensor *t = f->t;
      buf[k] = t;
      if (!shapes_match(t, e->t, s->stack ? -1 : d)) {
        crl__err(CRL_ESHAPE,
                 "%s: entry '%s' has shape %s in TensorDict %d but %s in "
                 "TensorDict 0%s",
                 s->op, s->key, CRL_SHAPE_STR(t, b1), k,
                 CRL_SHAPE_STR(e->t, b2),
                 s->stack ? "" : " (shapes must match except on dim)");
        goto fail;
      }
      if (t->dtype != e->t->dtype) {
        crl__err(CRL_EDTYPE,
                 "%s: entry '%s' has dtype %s in TensorDict %d but %s in "
                 "TensorDict 0",
                 s->op, s->key, crl_dtype_name(t->dtype), k,
                 crl_dtype_name(e->t->dtype));
        goto fail;
      }
      if (t->device.type != CRL_CPU) {
        crl__err(CRL_EDEVICE, "%s: entry '%s' of TensorDict %d is on %s", s->op,
                 s->key, k, crl_device_name(t->device));
        goto fail;
      }
    }
    if (e->t) {
      r = s->stack ? stack_tensors(n, (crl_tensor *const *)buf, d)
                   : crl_cat(n, (crl_tensor *const *)buf, d);
      if (!r) {
        char msg[800];
        snprintf(msg, sizeof msg, "%s", crl_last_error());
        crl__err(crl_last_error_code(), "%s: entry '%s': %s", s->op, s->key,
                 msg);
        goto fail;
      }
    } else {
      crl_td **subs = malloc(sizeof *subs * (size_t)n);
      if (!subs) {
        crl__err(CRL_ENOMEM, "%s: out of memory", s->op);
        goto fail;
      }
      memcpy(subs, buf, sizeof *subs * (size_t)n);
      sub = join_rec(s, subs, nl);
      free(subs);
      if (!sub) goto fail;
    }
    if (crl__td_append_entry(out, e, r, sub)) goto fail;
    s->key[klen] = 0;
  }
  free(buf);
  return out;
fail:
  free(buf);
  return NULL;
}

/* Same key sets, level by level (positions first: usually in order). */
static bool same_keys(const crl_td *a, const crl_td *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++) {
    int j = find_entry(b, a->e[i].key, i);
    if (j < 0) return false;
    const td_entry *e = &a->e[i], *f = &b->e[j];
    if (e->sub && f->sub && !same_keys(e->sub, f->sub)) return false;
  }
  return true;
}

static crl_td *join(const char *op, int n, crl_td *const *tds, int dim,
                    bool stack) {
  if (n <= 0 || !tds)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: no TensorDicts given (n = %d)", op, n);
  for (int k = 0; k < n; k++)
    if (!tds[k])
      return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict %d is NULL", op, k);
  const crl_td *t0 = tds[0];
  join_state s = {.op = op, .n = n, .stack = stack, .roots = tds};
  if (stack && t0->bnd >= CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: batch size already has %d dims", op,
                        t0->bnd);
  if (wrap_dim(op, dim, t0->bnd + (stack ? 1 : 0), &s.d)) return NULL;
  char b1[160], b2[160];
  for (int k = 1; k < n; k++) {
    const crl_td *t = tds[k];
    bool ok = t->bnd == t0->bnd;
    for (int i = 0; ok && i < t->bnd; i++)
      ok = (!stack && i == s.d) || t->batch[i] == t0->batch[i];
    if (!ok)
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "%s: TensorDict %d has batch size %s but "
                          "TensorDict 0 has %s%s",
                          op, k, bstr(t, b1, sizeof b1),
                          bstr(t0, b2, sizeof b2),
                          stack ? "" : " (must match except on dim)");
    if (!same_keys(t0, t)) return keys_differ(&s, k), NULL;
  }
  crl_scope_begin();
  crl_td *r = join_rec(&s, tds, 0);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(r);
}

crl_td *crl_td_stack(int n, crl_td *const *tds, int dim) {
  return join("td_stack", n, tds, dim, true);
}

crl_td *crl_td_cat(int n, crl_td *const *tds, int dim) {
  return join("td_cat", n, tds, dim, false);
}
