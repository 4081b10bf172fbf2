/* Indexing TensorDicts over their batch dims (tensordict's td[i],
 * td[a:b:c], td[idx], td[mask], td[idx] = other, td[a:b:c] = other).
 *
 * td[i] and slices are views sharing the entries' storage; an int64 index
 * tensor or a bool mask gathers copies. Every leaf, nested ones included,
 * is indexed on the same (root) batch dims. Out-of-range indices are
 * CRL_EINDEX naming the index and the size; the in-place forms validate
 * every key, shape and index before the first write. */
#include <stdio.h>
#include <stdlib.h>

#include "td_internal.h"

static int need_batch(const char *op, const crl_td *td) {
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  if (td->bnd == 0)
    return crl__err(CRL_ESHAPE,
                    "%s: the TensorDict has no batch dims to index (batch "
                    "size [])",
                    op);
  return 0;
}

static int check_index(const char *op, int64_t i, int64_t size) {
  if (i < -size || i >= size)
    return crl__err(CRL_EINDEX,
                    "%s: index %lld out of range for batch dim 0 of size %lld",
                    op, (long long)i, (long long)size);
  return 0;
}

typedef struct {
  int d;
  int64_t start, stop, step;
  crl_tensor *idx;
  int k; /* mask dims */
  int64_t kn;
} index_ctx;

/* ---- td[i] / td[start:stop:step] ----------------------------------------- */

static crl_tensor *select_leaf(crl_tensor *t, void *vctx) {
  index_ctx *c = vctx;
  return crl__select_unchecked(t, 0, c->start);
}

crl_td *crl_td_index(crl_td *td, int64_t i) {
  const char *op = "td_index";
  if (need_batch(op, td) || check_index(op, i, td->batch[0])) return NULL;
  index_ctx c = {.start = i < 0 ? i + td->batch[0] : i};
  return crl__td_map(op, td, td->bnd - 1, td->batch + 1, select_leaf, &c);
}

static crl_tensor *slice_leaf(crl_tensor *t, void *vctx) {
  index_ctx *c = vctx;
  return crl_slice(t, c->d, c->start, c->stop, c->step);
}

static int64_t clamp_pos(int64_t v, int64_t size) {
  if (v < 0) return v < -size ? 0 : v + size;
  return v > size ? size : v;
}

static int slice_args(const char *op, const crl_td *td, int dim, int64_t step,
                      int *d) {
  int n = td->bnd;
  if (dim < -n || dim >= n)
    return crl__err(CRL_EINDEX,
                    "%s: dim %d out of range for %d batch dims (valid: %d to "
                    "%d)",
                    op, dim, n, -n, n - 1);
  *d = dim < 0 ? dim + n : dim;
  if (step <= 0)
    return crl__err(CRL_EINVAL, "%s: step must be positive, got %lld", op,
                    (long long)step);
  return 0;
}

crl_td *crl_td_slice(crl_td *td, int dim, int64_t start, int64_t stop,
                     int64_t step) {
  const char *op = "td_slice";
  index_ctx c = {.start = start, .stop = stop, .step = step};
  if (need_batch(op, td) || slice_args(op, td, dim, step, &c.d)) return NULL;
  int64_t nb[CRL_MAX_DIMS], size = td->batch[c.d];
  memcpy(nb, td->batch, sizeof(int64_t) * (size_t)td->bnd);
  int64_t s = clamp_pos(start, size), e = clamp_pos(stop, size);
  nb[c.d] = e > s ? (e - s - 1) / step + 1 : 0;
  return crl__td_map(op, td, td->bnd, nb, slice_leaf, &c);
}

/* ---- td[idx] ------------------------------------------------------------- */

static crl_tensor *index_leaf(crl_tensor *t, void *vctx) {
  return crl_index(t, ((index_ctx *)vctx)->idx);
}

/* Validate an index tensor against batch dim 0 of td; the new batch size
 * idx.shape + batch[1:] goes to nb. */
static int check_index_tensor(const char *op, const crl_td *td, crl_tensor *idx,
                              int *nbnd, int64_t *nb) {
  int rc;
  if ((rc = need_batch(op, td))) return rc;
  if (!idx) return crl__err(CRL_EINVAL, "%s: index tensor is NULL", op);
  if (idx->dtype != CRL_INT64)
    return crl__err(CRL_EDTYPE, "%s: index tensor must be int64, got %s", op,
                    crl_dtype_name(idx->dtype));
  if ((rc = crl__check_cpu(op, idx))) return rc;
  *nbnd = idx->ndim + td->bnd - 1;
  if (*nbnd > CRL_MAX_DIMS) {
    char b[160];
    return crl__err(CRL_EINVAL,
                    "%s: index of shape %s gives more than %d batch dims", op,
                    CRL_SHAPE_STR(idx, b), CRL_MAX_DIMS);
  }
  memcpy(nb, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
  memcpy(nb + idx->ndim, td->batch + 1,
         sizeof(int64_t) * (size_t)(td->bnd - 1));
  int64_t size = td->batch[0];
  crl_scope_begin();
  crl_tensor *c = crl_contiguous(idx);
  rc = c ? 0 : crl_last_error_code();
  const int64_t *ix = c ? c->data : NULL;
  for (int64_t i = 0; !rc && i < idx->numel; i++)
    rc = check_index(op, ix[i], size);
  crl_scope_end();
  return rc;
}

crl_td *crl_td_index_tensor(crl_td *td, crl_tensor *idx) {
  const char *op = "td_index_tensor";
  int nbnd;
  int64_t nb[CRL_MAX_DIMS];
  if (check_index_tensor(op, td, idx, &nbnd, nb)) return NULL;
  index_ctx c = {.idx = idx};
  return crl__td_map(op, td, nbnd, nb, index_leaf, &c);
}

/* ---- td[mask] ------------------------------------------------------------ */

static crl_tensor *mask_leaf(crl_tensor *t, void *vctx) {
  index_ctx *c = vctx;
  crl_tensor *flat = t;
  if (c->k > 1) {
    int64_t s[CRL_MAX_DIMS];
    int nd = t->ndim - c->k + 1;
    s[0] = c->kn;
    memcpy(s + 1, t->shape + c->k, sizeof(int64_t) * (size_t)(nd - 1));
    flat = crl_reshape(t, nd, s);
    if (!flat) return NULL;
  }
  return crl_index(flat, c->idx);
}

crl_td *crl_td_masked_select(crl_td *td, crl_tensor *mask) {
  const char *op = "td_masked_select";
  if (need_batch(op, td)) return NULL;
  if (!mask) return CRL_ERR_NULL(CRL_EINVAL, "%s: mask is NULL", op);
  if (mask->dtype != CRL_BOOL)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: mask must be bool, got %s", op,
                        crl_dtype_name(mask->dtype));
  if (crl__check_cpu(op, mask)) return NULL;
  bool ok = mask->ndim >= 1 && mask->ndim <= td->bnd;
  for (int i = 0; ok && i < mask->ndim; i++)
    ok = mask->shape[i] == td->batch[i];
  if (!ok) {
    char b1[160], b2[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: mask of shape %s does not match the leading "
                        "dims of the batch size %s",
                        op, CRL_SHAPE_STR(mask, b1),
                        crl_shape_str(td->bnd, td->batch, b2, sizeof b2));
  }
  crl_scope_begin();
  crl_tensor *m = crl_contiguous(mask);
  index_ctx c = {.k = mask->ndim, .kn = mask->numel};
  int64_t count = 0;
  const uint8_t *mp = m ? m->data : NULL;
  for (int64_t i = 0; mp && i < c.kn; i++)
    count += mp[i] != 0;
  c.idx = mp ? crl_empty(CRL_INT64, 1, &count) : NULL;
  if (!c.idx) {
    crl_scope_end();
    return NULL;
  }
  int64_t *ix = c.idx->data, w = 0;
  for (int64_t i = 0; i < c.kn; i++)
    if (mp[i]) ix[w++] = i;
  int64_t nb[CRL_MAX_DIMS];
  int nbnd = td->bnd - c.k + 1;
  nb[0] = count;
  memcpy(nb + 1, td->batch + c.k, sizeof(int64_t) * (size_t)(nbnd - 1));
  crl_td *r = crl__td_map(op, td, nbnd, nb, mask_leaf, &c);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(r);
}

/* ---- td[idx] = src / td[start:stop:step] = src --------------------------- */

int crl_td_index_put_(crl_td *td, crl_tensor *idx, crl_td *src) {
  const char *op = "td_index_put_";
  int nbnd, rc;
  int64_t nb[CRL_MAX_DIMS];
  if ((rc = check_index_tensor(op, td, idx, &nbnd, nb))) return rc;
  if (!src) return crl__err(CRL_EINVAL, "%s: source TensorDict is NULL", op);
  crl__td_pair *p;
  int n;
  if ((rc = crl__td_pairs(op, td, src, &p, &n))) return rc;
  char b1[160], b2[160];
  for (int i = 0; i < n && !rc; i++) {
    crl_tensor *d = p[i].dst, *s = p[i].src;
    if ((rc = crl__td_check_writable(op, p[i].key, d))) break;
    for (int j = 0; j < d->ndim && !rc; j++)
      if (d->stride[j] == 0 && d->shape[j] > 1)
        rc = crl__err(CRL_EINVAL,
                      "%s: entry '%s' of shape %s is expanded (several "
                      "elements share memory); clone it first",
                      op, p[i].key, CRL_SHAPE_STR(d, b1));
    if (rc) break;
    /* target shape: idx.shape + d.shape[1:] */
    int64_t ts[CRL_MAX_DIMS];
    int tn = idx->ndim + d->ndim - 1;
    if (tn > CRL_MAX_DIMS) {
      rc = crl__err(CRL_EINVAL, "%s: entry '%s': too many dims", op, p[i].key);
      break;
    }
    memcpy(ts, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    memcpy(ts + idx->ndim, d->shape + 1,
           sizeof(int64_t) * (size_t)(d->ndim - 1));
    bool ok = s->ndim <= tn;
    for (int j = 0; ok && j < s->ndim; j++) {
      int64_t v = s->shape[s->ndim - 1 - j];
      ok = v == 1 || v == ts[tn - 1 - j];
    }
    if (!ok)
      rc = crl__err(CRL_ESHAPE,
                    "%s: entry '%s': source of shape %s does not fit the "
                    "indexed destination of shape %s",
                    op, p[i].key, CRL_SHAPE_STR(s, b1),
                    crl_shape_str(tn, ts, b2, sizeof b2));
  }
  for (int i = 0; i < n && !rc; i++)
    rc = crl_index_put_(p[i].dst, idx, p[i].src, false);
  crl__td_pairs_free(p, n);
  return rc;
}

int crl_td_slice_put_(crl_td *td, int64_t start, int64_t stop, int64_t step,
                      crl_td *src) {
  const char *op = "td_slice_put_";
  index_ctx c = {.start = start, .stop = stop, .step = step};
  int rc;
  if ((rc = need_batch(op, td)) || (rc = slice_args(op, td, 0, step, &c.d)))
    return rc;
  return crl__td_assign(op, td, src, slice_leaf, &c);
}
