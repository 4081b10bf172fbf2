/* Whole-TensorDict operations (tensordict's clone, update, update_/copy_,
 * select, exclude, rename_key_, apply, to, zero_, fill_, ==/allclose), and
 * the helpers the other files of src/td build on: crl__td_map (a new
 * TensorDict of transformed leaves), crl__td_pairs / crl__td_assign
 * (validated in-place writes).
 *
 * Semantics (tensordict):
 * - select keeps the listed keys (a nested key keeps one entry of a nested
 *   TensorDict, the key of a nested TensorDict keeps all its entries); a
 *   missing key is CRL_EKEY. exclude ignores missing keys. Both keep the
 *   input's key order and share the tensors; nested TensorDicts of the
 *   result are new objects (changing the result's structure never changes
 *   the input's).
 * - update merges nested TensorDicts recursively; a nested TensorDict that
 *   dst lacks is added as a new structure sharing src's tensors.
 * - rename moves the entry to new_key (appended last, as tensordict's
 *   rename_key_ does); new_key must not exist.
 * - to_dtype with only_float shares the non-float leaves.
 * - equal / allclose: same batch size, same key set in any order, same
 *   kinds (tensor / nested), same shapes, equal (close) values.
 * Every in-place operation validates all entries before writing one. */
#include <stdio.h>
#include <stdlib.h>

#include "td_internal.h"

#define KEY_MAX 512

/* ---- key paths for messages ------------------------------------------------
 */

typedef struct {
  char s[KEY_MAX];
  size_t len;
} keypath;

/* Append "/k" (or "k"); returns the length to restore with kp_pop. */
static size_t kp_push(keypath *p, const char *k) {
  /* memcpy, not snprintf: this runs for every entry of every map */
  size_t old = p->len, o = old, kl = strlen(k);
  if (o && o < KEY_MAX - 1) p->s[o++] = '/';
  if (kl > KEY_MAX - 1 - o) kl = KEY_MAX - 1 - o;
  memcpy(p->s + o, k, kl);
  p->len = o + kl;
  p->s[p->len] = 0;
  return old;
}
static void kp_pop(keypath *p, size_t old) {
  p->len = old;
  p->s[old] = 0;
}

/* Prefix the current error with "op: entry 'key': ". */
static int wrap_err(const char *op, const char *key) {
  int code = crl_last_error_code();
  char msg[900];
  snprintf(msg, sizeof msg, "%s", crl_last_error());
  if (!code) {
    code = CRL_EINVAL;
    snprintf(msg, sizeof msg, "the function returned NULL without an error");
  }
  return crl__err(code, "%s: entry '%s': %s", op, key, msg);
}

void crl__td_keys_str(const crl_td *td, char *buf, size_t size) {
  crl_td_keys k;
  if (!size) return;
  buf[0] = 0;
  if (crl_td_keys_get(td, true, false, &k)) return;
  crl__td_keys_list(&k, buf, size);
  crl_td_keys_free(&k);
}

static int missing_key(const char *op, const crl_td *td, const char *key) {
  char b[700];
  crl__td_keys_str(td, b, sizeof b);
  return crl__err(CRL_EKEY, "%s: key '%s' not found; keys present: %s", op, key,
                  b);
}

int crl__td_check_writable(const char *op, const char *key,
                           const crl_tensor *t) {
  if (t->device.type != CRL_CPU)
    return crl__err(CRL_EDEVICE, "%s: entry '%s' is on %s", op, key,
                    crl_device_name(t->device));
  if (crl_is_grad_enabled() && (t->requires_grad || t->grad_fn))
    return crl__err(CRL_EAUTOGRAD,
                    "%s: entry '%s' requires grad; in-place writes need grad "
                    "mode off",
                    op, key);
  if (t->storage && !t->storage->writable)
    return crl__err(CRL_EIO, "%s: entry '%s' is read-only", op, key);
  return 0;
}

/* ---- map: a new TensorDict of transformed leaves ------------------------- */

typedef struct {
  const char *op;
  crl_td_apply_fn fn;
  void *ctx;
  int rbnd, nbnd;
  const int64_t *nbatch;
  keypath kp;
} map_state;

static crl_td *map_rec(map_state *s, crl_td *td) {
  int64_t b[CRL_MAX_DIMS];
  int extra = td->bnd - s->rbnd, nb = s->nbnd + extra;
  if (nb > CRL_MAX_DIMS) {
    char b1[160];
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: nested TensorDict '%s' of batch size %s would "
                        "have more than %d batch dims",
                        s->op, s->kp.s,
                        crl_shape_str(td->bnd, td->batch, b1, sizeof b1),
                        CRL_MAX_DIMS);
  }
  if (s->nbnd) memcpy(b, s->nbatch, sizeof(int64_t) * (size_t)s->nbnd);
  if (extra)
    memcpy(b + s->nbnd, td->batch + s->rbnd, sizeof(int64_t) * (size_t)extra);
  crl_td *out = crl__td_new_raw(nb, b, td->device);
  if (!out) return NULL;
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    size_t mark = kp_push(&s->kp, e->key);
    int rc = 0;
    if (e->t) {
      crl_tensor *r = s->fn(e->t, s->ctx);
      if (!r) return wrap_err(s->op, s->kp.s), NULL;
      bool ok = r->ndim >= nb;
      for (int j = 0; ok && j < nb; j++)
        ok = r->shape[j] == b[j];
      if (!ok) {
        char b1[160], b2[160];
        return CRL_ERR_NULL(CRL_ESHAPE,
                            "%s: entry '%s' became shape %s whose leading "
                            "dims do not match the batch size %s",
                            s->op, s->kp.s, CRL_SHAPE_STR(r, b1),
                            crl_shape_str(nb, b, b2, sizeof b2));
      }
      rc = crl__td_append_entry(out, e, r, NULL);
    } else {
      crl_td *sub = map_rec(s, e->sub);
      if (!sub) return NULL;
      rc = crl__td_append_entry(out, e, NULL, sub);
    }
    if (rc) return NULL;
    kp_pop(&s->kp, mark);
  }
  return out;
}

crl_td *crl__td_map(const char *op, crl_td *td, int nbnd, const int64_t *nbatch,
                    crl_td_apply_fn fn, void *ctx) {
  map_state s = {op, fn, ctx, td->bnd, nbnd, nbatch, {{0}, 0}};
  if (!nbatch) {
    s.nbnd = td->bnd;
    s.nbatch = td->batch;
  }
  crl_scope_begin();
  crl_td *r = map_rec(&s, td);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(r);
}

/* A new structure sharing td's tensors (nested TensorDicts are new). */
static crl_td *shallow(const crl_td *td) {
  crl_td *out = crl__td_new_raw(td->bnd, td->batch, td->device);
  if (!out) return NULL;
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    crl_td *sub = NULL;
    if (e->sub && !(sub = shallow(e->sub))) return NULL;
    if (crl__td_append_entry(out, e, e->t, sub)) return NULL;
  }
  return out;
}

/* ---- pairs and validated assignment ----------------------------------------
 */

typedef struct {
  const char *op;
  crl_td *root;
  crl__td_pair *p;
  int n, cap;
  keypath kp;
} pair_state;

static int pairs_rec(pair_state *s, crl_td *dst, crl_td *src) {
  for (int i = 0; i < src->n; i++) {
    const td_entry *e = &src->e[i];
    size_t mark = kp_push(&s->kp, e->key);
    int j = crl__td_find_local(dst, e->key, strlen(e->key));
    if (j < 0) return missing_key(s->op, s->root, s->kp.s);
    const td_entry *d = &dst->e[j];
    if (!e->t != !d->t)
      return crl__err(CRL_EKEY,
                      "%s: key '%s' is %s in the source but %s in the "
                      "destination",
                      s->op, s->kp.s, e->t ? "a tensor" : "a TensorDict",
                      d->t ? "a tensor" : "a TensorDict");
    int rc;
    if (e->t) {
      if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 16;
        crl__td_pair *np = realloc(s->p, sizeof *np * (size_t)nc);
        if (!np) return crl__err(CRL_ENOMEM, "%s: out of memory", s->op);
        s->p = np;
        s->cap = nc;
      }
      char *k = malloc(s->kp.len + 1);
      if (!k) return crl__err(CRL_ENOMEM, "%s: out of memory", s->op);
      memcpy(k, s->kp.s, s->kp.len + 1);
      s->p[s->n++] = (crl__td_pair){d->t, e->t, k};
    } else if ((rc = pairs_rec(s, d->sub, e->sub))) {
      return rc;
    }
    kp_pop(&s->kp, mark);
  }
  return 0;
}

int crl__td_pairs(const char *op, crl_td *dst, crl_td *src,
                  crl__td_pair **pairs, int *n) {
  pair_state s = {op, dst, NULL, 0, 0, {{0}, 0}};
  int rc = pairs_rec(&s, dst, src);
  if (rc) {
    crl__td_pairs_free(s.p, s.n);
    s.p = NULL;
    s.n = 0;
  }
  *pairs = s.p;
  *n = s.n;
  return rc;
}

void crl__td_pairs_free(crl__td_pair *pairs, int n) {
  for (int i = 0; i < n; i++)
    free(pairs[i].key);
  free(pairs);
}

/* src broadcasts to dst's shape (trailing alignment, as copy_). */
static int check_fits(const char *op, const char *key, const crl_tensor *src,
                      const crl_tensor *dst) {
  bool ok = src->ndim <= dst->ndim;
  for (int i = 0; ok && i < src->ndim; i++) {
    int64_t s = src->shape[src->ndim - 1 - i];
    ok = s == 1 || s == dst->shape[dst->ndim - 1 - i];
  }
  if (ok) return 0;
  char b1[160], b2[160];
  return crl__err(CRL_ESHAPE,
                  "%s: entry '%s': source of shape %s does not fit the "
                  "destination of shape %s",
                  op, key, CRL_SHAPE_STR(src, b1), CRL_SHAPE_STR(dst, b2));
}

int crl__td_assign(const char *op, crl_td *dst, crl_td *src,
                   crl_td_apply_fn view, void *ctx) {
  if (!dst || !src) return crl__err(CRL_EINVAL, "%s: NULL TensorDict", op);
  crl__td_pair *p;
  int n, rc = crl__td_pairs(op, dst, src, &p, &n);
  if (rc) return rc;
  crl_tensor *local[32];
  crl_tensor **v = n <= 32 ? local : malloc(sizeof *v * (size_t)n);
  if (!v) {
    crl__td_pairs_free(p, n);
    return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  }
  crl_scope_begin();
  for (int i = 0; i < n && !rc; i++) {
    if ((rc = crl__td_check_writable(op, p[i].key, p[i].dst))) break;
    v[i] = view ? view(p[i].dst, ctx) : p[i].dst;
    if (!v[i]) {
      rc = wrap_err(op, p[i].key);
      break;
    }
    rc = check_fits(op, p[i].key, p[i].src, v[i]);
  }
  for (int i = 0; i < n && !rc; i++) {
    if ((rc = crl__check_inplace(op, p[i].dst))) break;
    crl__copy_into(v[i], p[i].src);
  }
  crl_scope_end();
  if (v != local) free(v);
  crl__td_pairs_free(p, n);
  return rc;
}

/* ---- clone / apply / to -------------------------------------------------- */

static crl_tensor *clone_leaf(crl_tensor *t, void *ctx) {
  (void)ctx;
  return crl_clone(t);
}

crl_td *crl_td_clone(crl_td *td) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "td_clone: TensorDict is NULL");
  return crl__td_map("td_clone", td, 0, NULL, clone_leaf, NULL);
}

typedef struct {
  crl_td_apply_fn fn;
  void *ctx;
} apply_ctx;

static crl_tensor *apply_leaf(crl_tensor *t, void *vctx) {
  apply_ctx *c = vctx;
  crl_clear_error();
  return c->fn(t, c->ctx);
}

crl_td *crl_td_apply(crl_td *td, crl_td_apply_fn fn, void *ctx) {
  if (!td || !fn) return CRL_ERR_NULL(CRL_EINVAL, "td_apply: NULL argument");
  apply_ctx c = {fn, ctx};
  return crl__td_map("td_apply", td, 0, NULL, apply_leaf, &c);
}

typedef struct {
  crl_dtype dt;
  bool only_float;
} dtype_ctx;

static crl_tensor *dtype_leaf(crl_tensor *t, void *vctx) {
  dtype_ctx *c = vctx;
  if (c->only_float && !crl_dtype_is_float(t->dtype)) {
    crl_tensor_retain(t);
    crl__scope_adopt(t);
    return t;
  }
  return crl_cast(t, c->dt);
}

crl_td *crl_td_to_dtype(crl_td *td, crl_dtype dt, bool only_float) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "td_to_dtype: TensorDict is NULL");
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "td_to_dtype: invalid dtype %d", (int)dt);
  dtype_ctx c = {dt, only_float};
  return crl__td_map("td_to_dtype", td, 0, NULL, dtype_leaf, &c);
}

crl_td *crl_td_to_device(crl_td *td, crl_device device) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "td_to_device: TensorDict is NULL");
  if (device.type != CRL_CPU)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "td_to_device: device %s is not available in this "
                        "build (CPU only)",
                        crl_device_name(device));
  return crl__td_map("td_to_device", td, 0, NULL, clone_leaf, NULL);
}

/* ---- update ----------------------------------------------------------------
 */

static int fits_batch(const char *op, const char *key, const crl_td *h,
                      int ndim, const int64_t *shape) {
  bool ok = ndim >= h->bnd;
  for (int i = 0; ok && i < h->bnd; i++)
    ok = shape[i] == h->batch[i];
  if (ok) return 0;
  char b1[160], b2[160];
  return crl__err(CRL_ESHAPE,
                  "%s: entry '%s' has shape %s whose leading dims do not "
                  "match the batch size %s",
                  op, key, crl_shape_str(ndim, shape, b1, sizeof b1),
                  crl_shape_str(h->bnd, h->batch, b2, sizeof b2));
}

static int update_check(crl_td *dst, crl_td *src, keypath *kp) {
  for (int i = 0; i < src->n; i++) {
    const td_entry *e = &src->e[i];
    size_t mark = kp_push(kp, e->key);
    int j = crl__td_find_local(dst, e->key, strlen(e->key));
    const td_entry *d = j >= 0 ? &dst->e[j] : NULL;
    int rc;
    if (d && !d->t != !e->t)
      return crl__err(CRL_EKEY,
                      "td_update: key '%s' is %s in the destination but %s "
                      "in the source",
                      kp->s, d->t ? "a tensor" : "a TensorDict",
                      e->t ? "a tensor" : "a TensorDict");
    if (e->t)
      rc = fits_batch("td_update", kp->s, dst, e->t->ndim, e->t->shape);
    else if (d)
      rc = update_check(d->sub, e->sub, kp);
    else
      rc = fits_batch("td_update", kp->s, dst, e->sub->bnd, e->sub->batch);
    if (rc) return rc;
    if (e->t && e->t->device.type != dst->device.type)
      return crl__err(CRL_EDEVICE, "td_update: entry '%s' is on %s", kp->s,
                      crl_device_name(e->t->device));
    kp_pop(kp, mark);
  }
  return 0;
}

static int update_apply(crl_td *dst, crl_td *src) {
  for (int i = 0; i < src->n; i++) {
    const td_entry *e = &src->e[i];
    size_t len = strlen(e->key);
    int j = crl__td_find_local(dst, e->key, len), rc = 0;
    if (j >= 0 && e->t) {
      crl_tensor_retain(e->t);
      crl_tensor_release(dst->e[j].t);
      dst->e[j].t = e->t;
      dst->version++;
    } else if (j >= 0) {
      rc = update_apply(dst->e[j].sub, e->sub);
    } else if (e->t) {
      rc = crl__td_append(dst, e->key, len, e->t, NULL);
    } else {
      crl_td *sub = shallow(e->sub);
      rc = sub ? crl__td_append(dst, e->key, len, NULL, sub)
               : crl_last_error_code();
    }
    if (rc) return rc;
  }
  return 0;
}

int crl_td_update(crl_td *dst, crl_td *src) {
  if (!dst || !src) return crl__err(CRL_EINVAL, "td_update: NULL argument");
  keypath kp = {{0}, 0};
  int rc = update_check(dst, src, &kp);
  if (rc || dst == src) return rc;
  crl_scope_begin();
  rc = update_apply(dst, src);
  crl_scope_end();
  return rc;
}

/* ---- copy_ / copy_at_ ---------------------------------------------------- */

int crl_td_copy_(crl_td *dst, crl_td *src) {
  return crl__td_assign("td_copy_", dst, src, NULL, NULL);
}

static crl_tensor *select_leaf(crl_tensor *t, void *ctx) {
  return crl__select_unchecked(t, 0, *(int64_t *)ctx);
}

int crl_td_copy_at_(crl_td *dst, crl_td *src, int64_t index) {
  if (!dst || !src) return crl__err(CRL_EINVAL, "td_copy_at_: NULL argument");
  if (dst->bnd == 0)
    return crl__err(CRL_ESHAPE,
                    "td_copy_at_: the destination has no batch dims to index");
  int64_t size = dst->batch[0];
  if (index < -size || index >= size)
    return crl__err(CRL_EINDEX,
                    "td_copy_at_: index %lld out of range for batch dim 0 of "
                    "size %lld",
                    (long long)index, (long long)size);
  if (index < 0) index += size;
  return crl__td_assign("td_copy_at_", dst, src, select_leaf, &index);
}

/* ---- select / exclude ---------------------------------------------------- */

/* Entries of td (at path kp) kept by the key list. */
static crl_td *select_rec(crl_td *td, int nkeys, const char *const *keys,
                          bool exclude, keypath *kp) {
  crl_td *out = crl__td_new_raw(td->bnd, td->batch, td->device);
  if (!out) return NULL;
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    size_t mark = kp_push(kp, e->key);
    bool exact = false, prefix = false;
    for (int k = 0; k < nkeys; k++) {
      if (strcmp(keys[k], kp->s) == 0) exact = true;
      if (strncmp(keys[k], kp->s, kp->len) == 0 && keys[k][kp->len] == '/')
        prefix = true;
    }
    crl_td *sub = NULL;
    crl_tensor *t = NULL;
    if (exact) {
      if (!exclude) {
        t = e->t;
        if (e->sub && !(sub = shallow(e->sub))) return NULL;
      }
    } else if (prefix && e->sub) {
      if (!(sub = select_rec(e->sub, nkeys, keys, exclude, kp))) return NULL;
    } else if (exclude) {
      t = e->t;
      if (e->sub && !(sub = shallow(e->sub))) return NULL;
    }
    if ((t || sub) && crl__td_append_entry(out, e, t, sub)) return NULL;
    kp_pop(kp, mark);
  }
  return out;
}

static crl_td *select_impl(const char *op, crl_td *td, int nkeys,
                           const char *const *keys, bool exclude) {
  if (!td || nkeys < 0 || (nkeys > 0 && !keys))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: invalid arguments", op);
  for (int k = 0; k < nkeys; k++) {
    if (crl__td_check_key(op, keys[k])) return NULL;
    if (!exclude && !crl_td_contains(td, keys[k]))
      return missing_key(op, td, keys[k]), NULL;
  }
  keypath kp = {{0}, 0};
  crl_scope_begin();
  crl_td *r = select_rec(td, nkeys, keys, exclude, &kp);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(r);
}

crl_td *crl_td_select(crl_td *td, int nkeys, const char *const *keys) {
  return select_impl("td_select", td, nkeys, keys, false);
}

crl_td *crl_td_exclude(crl_td *td, int nkeys, const char *const *keys) {
  return select_impl("td_exclude", td, nkeys, keys, true);
}

/* ---- rename -------------------------------------------------------------- */

int crl_td_rename(crl_td *td, const char *old_key, const char *new_key) {
  const char *op = "td_rename";
  int rc;
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  if ((rc = crl__td_check_key(op, old_key)) ||
      (rc = crl__td_check_key(op, new_key)))
    return rc;
  crl_tensor *t = crl_td_find(td, old_key);
  crl_td *sub = t ? NULL : crl__td_get_sub(td, old_key);
  if (!t && !sub) return missing_key(op, td, old_key);
  if (strcmp(old_key, new_key) == 0) return 0;
  if (crl_td_contains(td, new_key))
    return crl__err(CRL_EKEY, "%s: cannot rename '%s' to '%s': '%s' exists", op,
                    old_key, new_key, new_key);
  size_t lo = strlen(old_key);
  if (sub && strncmp(new_key, old_key, lo) == 0 && new_key[lo] == '/')
    return crl__err(CRL_EKEY,
                    "%s: cannot move the nested TensorDict '%s' into itself "
                    "('%s')",
                    op, old_key, new_key);
  /* hold the value while it moves */
  crl_tensor_retain(t);
  crl_td_retain(sub);
  rc = t ? crl_td_set(td, new_key, t) : crl_td_set_td(td, new_key, sub);
  if (!rc) rc = crl_td_del(td, old_key);
  crl_tensor_release(t);
  crl_td_release(sub);
  if (rc) {
    char msg[900];
    snprintf(msg, sizeof msg, "%s", crl_last_error());
    crl__err(rc, "%s: %s", op, msg);
  }
  return rc;
}

/* ---- zero_ / fill_ ------------------------------------------------------- */

/* mode 0: check every leaf is writable; 1: fill it with v. */
static int fill_rec(const char *op, crl_td *td, keypath *kp, int mode,
                    double v) {
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    size_t mark = kp_push(kp, e->key);
    int rc;
    if (e->sub)
      rc = fill_rec(op, e->sub, kp, mode, v);
    else if (mode == 0)
      rc = crl__td_check_writable(op, kp->s, e->t);
    else
      rc = v == 0 ? crl_zero_(e->t) : crl_fill_(e->t, v);
    if (rc) return rc;
    kp_pop(kp, mark);
  }
  return 0;
}

int crl_td_zero_(crl_td *td) {
  if (!td) return crl__err(CRL_EINVAL, "td_zero_: TensorDict is NULL");
  keypath kp = {{0}, 0};
  int rc = fill_rec("td_zero_", td, &kp, 0, 0);
  return rc ? rc : fill_rec("td_zero_", td, &kp, 1, 0);
}

int crl_td_fill_(crl_td *td, const char *key, double value) {
  const char *op = "td_fill_";
  if (!td || !key) return crl__err(CRL_EINVAL, "%s: NULL argument", op);
  crl_tensor *t = crl_td_find(td, key);
  if (t) {
    int rc = crl__td_check_writable(op, key, t);
    return rc ? rc : crl_fill_(t, value);
  }
  crl_td *sub = crl__td_get_sub(td, key);
  if (!sub) return missing_key(op, td, key);
  keypath kp = {{0}, 0};
  kp_push(&kp, key);
  int rc = fill_rec(op, sub, &kp, 0, value);
  return rc ? rc : fill_rec(op, sub, &kp, 1, value);
}

/* ---- equal / allclose ---------------------------------------------------- */

static bool same_batch(const crl_td *a, const crl_td *b) {
  if (a->bnd != b->bnd) return false;
  for (int i = 0; i < a->bnd; i++)
    if (a->batch[i] != b->batch[i]) return false;
  return true;
}

static bool compare_rec(crl_td *a, crl_td *b, bool close, double rtol,
                        double atol) {
  if (!same_batch(a, b) || a->n != b->n) return false;
  for (int i = 0; i < a->n; i++) {
    const td_entry *e = &a->e[i];
    int j = i < b->n && strcmp(b->e[i].key, e->key) == 0
                ? i
                : crl__td_find_local(b, e->key, strlen(e->key));
    if (j < 0) return false;
    const td_entry *f = &b->e[j];
    if (!e->t != !f->t) return false;
    if (e->sub) {
      if (!compare_rec(e->sub, f->sub, close, rtol, atol)) return false;
      continue;
    }
    if (!crl_same_shape(e->t, f->t)) return false;
    bool eq =
        close ? crl_allclose(e->t, f->t, rtol, atol) : crl_equal(e->t, f->t);
    if (!eq) return false;
  }
  return true;
}

bool crl_td_equal(crl_td *a, crl_td *b) {
  if (!a || !b) return false;
  return compare_rec(a, b, false, 0, 0);
}

bool crl_td_allclose(crl_td *a, crl_td *b, double rtol, double atol) {
  if (!a || !b) return false;
  return compare_rec(a, b, true, rtol, atol);
}
