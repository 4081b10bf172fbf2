/* TensorDict core: structure, nested keys, set/get/del, keys, printing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "td_internal.h"

/* ---- lifetime --------------------------------------------------------------
 */

static void release_td(void *td) { crl_td_release(td); }

crl_td *crl__td_new_raw(int bnd, const int64_t *batch, crl_device dev) {
  crl_td *td = calloc(1, sizeof *td);
  if (!td) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (TensorDict)");
  td->refcount = 1;
  td->bnd = bnd;
  if (bnd) memcpy(td->batch, batch, sizeof(int64_t) * (size_t)bnd);
  td->device = dev;
  crl__scope_adopt_obj(td, release_td);
  return td;
}

crl_td *crl_td_new(int batch_ndim, const int64_t *batch) {
  if (crl__check_shape("td_new", batch_ndim, batch)) return NULL;
  return crl__td_new_raw(batch_ndim, batch, CRL_DEVICE_CPU);
}

crl_td *crl_td_retain(crl_td *td) {
  if (td)
    atomic_fetch_add_explicit((_Atomic int *)&td->refcount, 1,
                              memory_order_relaxed);
  return td;
}

void crl_td_release(crl_td *td) {
  if (!td) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&td->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  for (int i = 0; i < td->n; i++) {
    crl__td_key_free(td->e[i].key);
    crl_tensor_release(td->e[i].t);
    crl_td_release(td->e[i].sub);
  }
  free(td->e);
  free(td);
}

void crl__td_discard(crl_td *td) { crl__discard_obj(td, release_td); }

crl_td *crl__td_scope_end_keep(crl_td *keep) {
  crl_td_retain(keep);
  crl_scope_end();
  crl__scope_adopt_obj(keep, release_td);
  return keep;
}

int crl_td_batch_ndim(const crl_td *td) { return td->bnd; }
const int64_t *crl_td_batch_size(const crl_td *td) { return td->batch; }
crl_device crl_td_device(const crl_td *td) { return td->device; }
int crl_td_len(const crl_td *td) { return td->n; }

/* ---- keys
 * ---------------------------------------------------------------------- */

int crl__td_check_key(const char *op, const char *key) {
  if (!key || !*key) return crl__err(CRL_EKEY, "%s: empty key", op);
  size_t len = strlen(key);
  if (key[0] == '/' || key[len - 1] == '/' || strstr(key, "//"))
    return crl__err(CRL_EKEY, "%s: key '%s' has an empty component", op, key);
  return 0;
}

/* index of the top-level entry named by key[0..len) or -1 */
int crl__td_find_local(const crl_td *td, const char *key, size_t len) {
  for (int i = 0; i < td->n; i++) {
    const char *k = td->e[i].key;
    if (strncmp(k, key, len) == 0 && k[len] == 0) return i;
  }
  return -1;
}

/* Walk the nested path of key: returns the TensorDict holding the last
 * component and sets *leaf to it; NULL (no error set) if an intermediate is
 * missing or is a tensor. */
static crl_td *walk(const crl_td *td, const char *key, const char **leaf) {
  for (;;) {
    const char *slash = strchr(key, '/');
    if (!slash) {
      *leaf = key;
      return (crl_td *)td;
    }
    int i = crl__td_find_local(td, key, (size_t)(slash - key));
    if (i < 0 || !td->e[i].sub) return NULL;
    td = td->e[i].sub;
    key = slash + 1;
  }
}

/* "'a', 'b', 'next/c'" — the keys present, for error messages */
static void keys_list(const crl_td *td, char *buf, size_t size) {
  crl_td_keys k;
  buf[0] = 0;
  if (crl_td_keys_get(td, true, true, &k)) return;
  size_t o = 0;
  for (int i = 0; i < k.n && o + 8 < size; i++)
    o +=
        (size_t)snprintf(buf + o, size - o, "%s'%s'", i ? ", " : "", k.keys[i]);
  if (k.n == 0) snprintf(buf, size, "none");
  crl_td_keys_free(&k);
}

static int missing(const crl_td *td, const char *op, const char *key) {
  char b[800];
  keys_list(td, b, sizeof b);
  return crl__err(CRL_EKEY, "%s: key '%s' not found; keys present: %s", op, key,
                  b);
}

crl_tensor *crl_td_find(const crl_td *td, const char *key) {
  if (!td || !key) return NULL;
  const char *leaf;
  crl_td *h = walk(td, key, &leaf);
  if (!h) return NULL;
  int i = crl__td_find_local(h, leaf, strlen(leaf));
  return i >= 0 ? h->e[i].t : NULL;
}

crl_tensor *crl_td_get(const crl_td *td, const char *key) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "td_get: TensorDict is NULL");
  crl_tensor *t = crl_td_find(td, key);
  if (!t) {
    if (crl__td_get_sub(td, key))
      return CRL_ERR_NULL(CRL_EKEY,
                          "td_get: key '%s' is a nested TensorDict, not a "
                          "tensor",
                          key);
    missing(td, "td_get", key ? key : "(null)");
  }
  return t;
}

crl_td *crl__td_get_sub(const crl_td *td, const char *key) {
  if (!td || !key) return NULL;
  const char *leaf;
  crl_td *h = walk(td, key, &leaf);
  if (!h) return NULL;
  int i = crl__td_find_local(h, leaf, strlen(leaf));
  return i >= 0 ? h->e[i].sub : NULL;
}

crl_td *crl_td_get_td(const crl_td *td, const char *key) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "td_get_td: TensorDict is NULL");
  crl_td *s = crl__td_get_sub(td, key);
  if (!s) missing(td, "td_get_td", key ? key : "(null)");
  return s;
}

bool crl_td_contains(const crl_td *td, const char *key) {
  return crl_td_find(td, key) || crl__td_get_sub(td, key);
}

/* ---- set
 * ---------------------------------------------------------------------- */

static int reserve(crl_td *td) {
  if (td->n < td->cap) return 0;
  int nc = td->cap ? td->cap * 2 : 8;
  td_entry *ne = realloc(td->e, sizeof *ne * (size_t)nc);
  if (!ne) return crl__err(CRL_ENOMEM, "out of memory (TensorDict)");
  td->e = ne;
  td->cap = nc;
  return 0;
}

/* Entry keys are refcounted strings (a count before the characters), so
 * the many operations that build a TensorDict with the same keys as another
 * (views, clones, index, step_mdp) share them instead of copying. */
typedef struct {
  int rc; /* atomic */
  char s[];
} td_key;

static td_key *key_header(char *k) {
  return (td_key *)(k - offsetof(td_key, s));
}

void crl__td_key_free(char *k) {
  if (!k) return;
  td_key *h = key_header(k);
  if (atomic_fetch_sub_explicit((_Atomic int *)&h->rc, 1,
                                memory_order_acq_rel) == 1)
    free(h);
}

int crl__td_append(crl_td *td, const char *key, size_t len, crl_tensor *t,
                   crl_td *sub) {
  int rc = reserve(td);
  if (rc) return rc;
  td_key *h = malloc(sizeof *h + len + 1);
  if (!h) return crl__err(CRL_ENOMEM, "out of memory (TensorDict)");
  h->rc = 1;
  memcpy(h->s, key, len);
  h->s[len] = 0;
  td->e[td->n++] = (td_entry){h->s, crl_tensor_retain(t), crl_td_retain(sub)};
  td->version++;
  return 0;
}

int crl__td_append_entry(crl_td *td, const td_entry *src, crl_tensor *t,
                         crl_td *sub) {
  int rc = reserve(td);
  if (rc) return rc;
  atomic_fetch_add_explicit((_Atomic int *)&key_header(src->key)->rc, 1,
                            memory_order_relaxed);
  td->e[td->n++] =
      (td_entry){src->key, crl_tensor_retain(t), crl_td_retain(sub)};
  td->version++;
  return 0;
}

static int check_batch(const char *op, const crl_td *td, const char *key,
                       int ndim, const int64_t *shape) {
  bool ok = ndim >= td->bnd;
  for (int i = 0; ok && i < td->bnd; i++)
    if (shape[i] != td->batch[i]) ok = false;
  if (!ok) {
    char b1[160], b2[160];
    return crl__err(CRL_ESHAPE,
                    "%s: entry '%s' has shape %s whose leading dims do not "
                    "match the batch size %s",
                    op, key, crl_shape_str(ndim, shape, b1, sizeof b1),
                    crl_shape_str(td->bnd, td->batch, b2, sizeof b2));
  }
  return 0;
}

/* The deepest existing TensorDict on key's path: the one whose batch size a
 * value set at key must start with (intermediates created later copy it). */
static const crl_td *deepest(const crl_td *td, const char *key) {
  for (;;) {
    const char *slash = strchr(key, '/');
    if (!slash) return td;
    int i = crl__td_find_local(td, key, (size_t)(slash - key));
    if (i < 0 || !td->e[i].sub) return td;
    td = td->e[i].sub;
    key = slash + 1;
  }
}

/* Resolve the holder of key, creating intermediate TensorDicts when
 * `create`. Validation happens before any creation, so a failing call leaves
 * td unchanged. */
static crl_td *holder(const char *op, crl_td *td, const char *key, bool create,
                      const char **leaf) {
  /* first pass: check that no intermediate is a tensor */
  const crl_td *h = td;
  const char *k = key;
  for (;;) {
    const char *slash = strchr(k, '/');
    if (!slash) break;
    int i = crl__td_find_local(h, k, (size_t)(slash - k));
    if (i < 0) break;
    if (!h->e[i].sub)
      return CRL_ERR_NULL(CRL_EKEY,
                          "%s: cannot set '%s': '%.*s' is a tensor, not a "
                          "nested TensorDict",
                          op, key, (int)(slash - key), key);
    h = h->e[i].sub;
    k = slash + 1;
  }
  if (!create) {
    crl_td *r = walk(td, key, leaf);
    return r;
  }
  /* second pass: create what is missing */
  crl_td *cur = td;
  k = key;
  for (;;) {
    const char *slash = strchr(k, '/');
    if (!slash) {
      *leaf = k;
      return cur;
    }
    size_t len = (size_t)(slash - k);
    int i = crl__td_find_local(cur, k, len);
    if (i < 0) {
      crl_scope_begin();
      crl_td *sub = crl__td_new_raw(cur->bnd, cur->batch, cur->device);
      int rc = sub ? crl__td_append(cur, k, len, NULL, sub) : CRL_ENOMEM;
      crl_scope_end();
      if (rc) return NULL;
      i = cur->n - 1;
    }
    cur = cur->e[i].sub;
    k = slash + 1;
  }
}

int crl_td_set(crl_td *td, const char *key, crl_tensor *t) {
  int rc;
  if (!td || !t) return crl__err(CRL_EINVAL, "td_set: NULL argument");
  if ((rc = crl__td_check_key("td_set", key))) return rc;
  if ((rc = check_batch("td_set", deepest(td, key), key, t->ndim, t->shape)))
    return rc;
  if (t->device.type != td->device.type)
    return crl__err(CRL_EDEVICE,
                    "td_set: entry '%s' is on %s, TensorDict on %s", key,
                    crl_device_name(t->device), crl_device_name(td->device));
  /* an existing nested TensorDict at this key? */
  if (crl__td_get_sub(td, key))
    return crl__err(CRL_EKEY,
                    "td_set: key '%s' holds a nested TensorDict; delete it "
                    "first",
                    key);
  const char *leaf;
  crl_td *h = holder("td_set", td, key, true, &leaf);
  if (!h) return crl_last_error_code();
  int i = crl__td_find_local(h, leaf, strlen(leaf));
  if (i >= 0) {
    crl_tensor_retain(t);
    crl_tensor_release(h->e[i].t);
    h->e[i].t = t;
    h->version++;
    return 0;
  }
  return crl__td_append(h, leaf, strlen(leaf), t, NULL);
}

/* does `from` contain `target` at any depth? */
static bool reaches(const crl_td *from, const crl_td *target) {
  for (int i = 0; i < from->n; i++) {
    const crl_td *s = from->e[i].sub;
    if (s && (s == target || reaches(s, target))) return true;
  }
  return false;
}

int crl_td_set_td(crl_td *td, const char *key, crl_td *sub) {
  int rc;
  if (!td || !sub) return crl__err(CRL_EINVAL, "td_set_td: NULL argument");
  if ((rc = crl__td_check_key("td_set_td", key))) return rc;
  if ((rc = check_batch("td_set_td", deepest(td, key), key, sub->bnd,
                        sub->batch)))
    return rc;
  if (sub == td || reaches(sub, td))
    return crl__err(CRL_EINVAL,
                    "td_set_td: nesting at '%s' would make a "
                    "cycle (the TensorDict would contain itself)",
                    key);
  if (crl_td_find(td, key))
    return crl__err(CRL_EKEY,
                    "td_set_td: key '%s' holds a tensor; delete it first", key);
  const char *leaf;
  crl_td *h = holder("td_set_td", td, key, true, &leaf);
  if (!h) return crl_last_error_code();
  int i = crl__td_find_local(h, leaf, strlen(leaf));
  if (i >= 0) {
    crl_td_retain(sub);
    crl_td_release(h->e[i].sub);
    h->e[i].sub = sub;
    h->version++;
    return 0;
  }
  return crl__td_append(h, leaf, strlen(leaf), NULL, sub);
}

int crl_td_set_(crl_td *td, const char *key, crl_tensor *t) {
  if (!td || !t) return crl__err(CRL_EINVAL, "td_set_: NULL argument");
  crl_tensor *dst = crl_td_find(td, key);
  if (!dst) return missing(td, "td_set_", key ? key : "(null)");
  int rc = crl_copy_(dst, t);
  if (rc) {
    char b1[160], b2[160];
    if (rc == CRL_ESHAPE)
      crl__err(rc,
               "td_set_: value of shape %s does not fit entry '%s' of "
               "shape %s",
               CRL_SHAPE_STR(t, b1), key, CRL_SHAPE_STR(dst, b2));
  }
  return rc;
}

int crl_td_del(crl_td *td, const char *key) {
  if (!td || !key) return crl__err(CRL_EINVAL, "td_del: NULL argument");
  const char *leaf;
  crl_td *h = walk(td, key, &leaf);
  int i = h ? crl__td_find_local(h, leaf, strlen(leaf)) : -1;
  if (i < 0) return missing(td, "td_del", key);
  crl__td_key_free(h->e[i].key);
  crl_tensor_release(h->e[i].t);
  crl_td_release(h->e[i].sub);
  memmove(&h->e[i], &h->e[i + 1], sizeof *h->e * (size_t)(h->n - i - 1));
  h->n--;
  h->version++;
  return 0;
}

/* ---- key listing
 * ------------------------------------------------------------------ */

char *crl__td_key_join(const char *prefix, const char *key) {
  size_t lp = prefix ? strlen(prefix) : 0, lk = strlen(key);
  char *s = malloc(lp + lk + 2);
  if (!s) {
    crl__err(CRL_ENOMEM, "out of memory");
    return NULL;
  }
  if (lp) {
    memcpy(s, prefix, lp);
    s[lp] = '/';
    memcpy(s + lp + 1, key, lk + 1);
  } else {
    memcpy(s, key, lk + 1);
  }
  return s;
}

int crl__td_keys_push(crl_td_keys *k, int *cap, const char *prefix,
                      const char *key) {
  if (k->n == *cap) {
    int nc = *cap ? *cap * 2 : 16;
    char **nk = realloc(k->keys, sizeof *nk * (size_t)nc);
    if (!nk) return crl__err(CRL_ENOMEM, "out of memory");
    k->keys = nk;
    *cap = nc;
  }
  char *s = crl__td_key_join(prefix, key);
  if (!s) return CRL_ENOMEM;
  k->keys[k->n++] = s;
  return 0;
}

void crl__td_keys_list(const crl_td_keys *k, char *buf, size_t size) {
  if (!size) return;
  size_t o = 0;
  buf[0] = 0;
  for (int i = 0; i < k->n && o + 8 < size; i++) {
    int w = snprintf(buf + o, size - o, "%s'%s'", i ? ", " : "", k->keys[i]);
    if (w > 0) o += (size_t)w;
  }
  if (k->n == 0) snprintf(buf, size, "none");
}

static int collect(const crl_td *td, const char *prefix, bool nested,
                   bool leaves_only, crl_td_keys *k, int *cap) {
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    int rc;
    if (e->t || !leaves_only)
      if ((rc = crl__td_keys_push(k, cap, prefix, e->key))) return rc;
    if (e->sub && nested) {
      char *np = crl__td_key_join(prefix, e->key);
      if (!np) return CRL_ENOMEM;
      rc = collect(e->sub, np, nested, leaves_only, k, cap);
      free(np);
      if (rc) return rc;
    }
  }
  return 0;
}

int crl_td_keys_get(const crl_td *td, bool nested, bool leaves_only,
                    crl_td_keys *out) {
  out->n = 0;
  out->keys = NULL;
  if (!td) return crl__err(CRL_EINVAL, "td_keys: TensorDict is NULL");
  int cap = 0;
  int rc = collect(td, NULL, nested, leaves_only, out, &cap);
  if (rc) crl_td_keys_free(out);
  return rc;
}

void crl_td_keys_free(crl_td_keys *k) {
  if (!k) return;
  for (int i = 0; i < k->n; i++)
    free(k->keys[i]);
  free(k->keys);
  k->keys = NULL;
  k->n = 0;
}

const char *crl_td_key_at(const crl_td *td, int i, crl_tensor **t,
                          crl_td **sub) {
  if (!td || i < 0 || i >= td->n) {
    if (t) *t = NULL;
    if (sub) *sub = NULL;
    crl__err(CRL_EINDEX, "td_key_at: entry %d out of range for %d entries", i,
             td ? td->n : 0);
    return NULL;
  }
  if (t) *t = td->e[i].t;
  if (sub) *sub = td->e[i].sub;
  return td->e[i].key;
}

/* ---- printing ---------------------------------------------------------------
 */

typedef struct {
  char *buf;
  size_t size, len;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = s->len < s->size ? s->size - s->len : 0;
  int n = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) s->len += (size_t)n;
}

static void print_td(sbuf *s, const crl_td *td, int indent) {
  char b[160];
  sb_printf(s, "TensorDict(\n%*sfields={\n", indent + 4, "");
  for (int i = 0; i < td->n; i++) {
    const td_entry *e = &td->e[i];
    sb_printf(s, "%*s%s: ", indent + 8, "", e->key);
    if (e->t) {
      sb_printf(s, "Tensor(shape=%s, device=%s, dtype=%s, is_shared=%s)",
                CRL_SHAPE_STR(e->t, b), crl_device_name(e->t->device),
                crl_dtype_name(e->t->dtype),
                e->t->storage && e->t->storage->kind != CRL_STORAGE_HEAP
                    ? "True"
                    : "False");
    } else {
      print_td(s, e->sub, indent + 8);
    }
    sb_printf(s, ",\n");
  }
  sb_printf(s, "%*s},\n%*sbatch_size=%s,\n%*sdevice=%s)", indent + 4, "",
            indent + 4, "", crl_shape_str(td->bnd, td->batch, b, sizeof b),
            indent + 4, "", crl_device_name(td->device));
}

int crl_td_to_string(const crl_td *td, char *buf, size_t size) {
  if (!td) return crl__err(CRL_EINVAL, "td_to_string: TensorDict is NULL");
  sbuf s = {buf, size, 0};
  if (size) buf[0] = 0;
  print_td(&s, td, 0);
  return (int)s.len;
}

int crl_td_print(const crl_td *td, FILE *f) {
  if (!td) return crl__err(CRL_EINVAL, "td_print: TensorDict is NULL");
  int n = crl_td_to_string(td, NULL, 0);
  char *buf = malloc((size_t)n + 1);
  if (!buf) return crl__err(CRL_ENOMEM, "out of memory");
  crl_td_to_string(td, buf, (size_t)n + 1);
  fprintf(f, "%s\n", buf);
  free(buf);
  return 0;
}
