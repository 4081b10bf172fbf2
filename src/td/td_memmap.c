/* TensorDict memory: shared memory (share_memory_) and memory-mapped
 * folders of .npy files (memmap_ / load_memmap).
 *
 * Folder format (crl's own, NumPy-readable):
 *
 *   folder/meta.json          batch size, device, ordered structure
 *   folder/<key>.npy          one leaf per file (np.load(mmap_mode='r'))
 *   folder/<sub>/<key>.npy    nested keys become sub-folders
 *
 * meta.json:
 *   {"format": "crl.td.memmap", "version": 1, "batch_size": [N],
 *    "device": "cpu",
 *    "entries": [
 *      {"key": "obs", "type": "tensor", "dtype": "float32", "shape": [N, 3]},
 *      {"key": "next", "type": "tensordict", "batch_size": [N],
 *       "entries": [...]}]}
 *
 * File names are derived from the keys (never read from the file), and keys
 * are checked to be plain names, so a hostile meta.json cannot point
 * outside the folder. Every .npy is checked against meta.json. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "td_internal.h"

#define MEMMAP_FORMAT "crl.td.memmap"
#define MEMMAP_VERSION 1

/* ---- leaves of a TensorDict tree ----------------------------------------- */

typedef struct {
  crl_td *holder;  /* the (nested) TensorDict holding the entry */
  int idx;         /* entry index in holder */
  char *key;       /* full nested key, '/'-joined */
  crl_tensor *neu; /* replacement (scope-owned until swapped in) */
} leaf_ref;

typedef struct {
  leaf_ref *v;
  int n, cap;
} leaf_list;

static void leaves_free(leaf_list *l) {
  for (int i = 0; i < l->n; i++)
    free(l->v[i].key);
  free(l->v);
}

static char *join_key(const char *prefix, const char *key) {
  size_t lp = prefix ? strlen(prefix) : 0, lk = strlen(key);
  char *s = malloc(lp + lk + 2);
  if (!s) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory");
  if (prefix) {
    memcpy(s, prefix, lp);
    s[lp++] = '/';
  }
  memcpy(s + lp, key, lk + 1);
  return s;
}

static int leaves_collect(crl_td *td, const char *prefix, leaf_list *l) {
  for (int i = 0; i < td->n; i++) {
    char *key = join_key(prefix, td->e[i].key);
    if (!key) return crl_last_error_code();
    if (td->e[i].sub) {
      int rc = leaves_collect(td->e[i].sub, key, l);
      free(key);
      if (rc) return rc;
      continue;
    }
    if (l->n == l->cap) {
      int nc = l->cap ? 2 * l->cap : 16;
      leaf_ref *nv = realloc(l->v, sizeof *nv * (size_t)nc);
      if (!nv) {
        free(key);
        return crl__err(CRL_ENOMEM, "out of memory");
      }
      l->v = nv;
      l->cap = nc;
    }
    l->v[l->n++] = (leaf_ref){td, i, key, NULL};
  }
  return 0;
}

static crl_tensor *leaf_tensor(const leaf_ref *r) {
  return r->holder->e[r->idx].t;
}

/* Make a replacement carry the old tensor's requires_grad (leaves only:
 * the copy has no history, like a detached tensor). */
static int carry_grad_flag(crl_tensor *neu, const crl_tensor *old) {
  if (old->requires_grad && !old->grad_fn)
    return crl_set_requires_grad(neu, true);
  return 0;
}

/* Put every prepared replacement in place (cannot fail). */
static void leaves_swap(leaf_list *l) {
  for (int i = 0; i < l->n; i++) {
    leaf_ref *r = &l->v[i];
    if (!r->neu) continue;
    td_entry *e = &r->holder->e[r->idx];
    crl_tensor_retain(r->neu);
    crl_tensor_release(e->t);
    e->t = r->neu;
    r->holder->version++;
  }
}

static int check_leaves_cpu(const char *op, const leaf_list *l) {
  for (int i = 0; i < l->n; i++) {
    const crl_tensor *t = leaf_tensor(&l->v[i]);
    if (t->device.type != CRL_CPU)
      return crl__err(CRL_EDEVICE,
                      "%s: entry '%s' is on %s; only CPU "
                      "tensors can be shared or memory-mapped",
                      op, l->v[i].key, crl_device_name(t->device));
  }
  return 0;
}

/* ---- share_memory_ ------------------------------------------------------- */

int crl_td_share_memory_(crl_td *td) {
  const char *op = "td_share_memory_";
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  leaf_list l = {0};
  int rc = leaves_collect(td, NULL, &l);
  if (!rc) rc = check_leaves_cpu(op, &l);
  crl_scope_begin();
  for (int i = 0; !rc && i < l.n; i++) {
    crl_tensor *old = leaf_tensor(&l.v[i]);
    if (old->storage && old->storage->kind == CRL_STORAGE_SHM) continue;
    /* the same tensor at several keys stays one tensor */
    for (int j = 0; j < i && !l.v[i].neu; j++)
      if (leaf_tensor(&l.v[j]) == old) l.v[i].neu = l.v[j].neu;
    if (l.v[i].neu) continue;
    crl_tensor *neu = crl_empty_shared(old->dtype, old->ndim, old->shape);
    if (!neu) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", crl_last_error());
      rc = crl__err(crl_last_error_code(), "%s: entry '%s': %s", op, l.v[i].key,
                    msg);
      break;
    }
    crl__copy_into(neu, old);
    rc = carry_grad_flag(neu, old);
    l.v[i].neu = neu;
  }
  if (!rc) leaves_swap(&l);
  crl_scope_end();
  leaves_free(&l);
  return rc;
}

/* ---- paths --------------------------------------------------------------- */

/* dir + "/" + rel + ext in new memory */
static char *path_join(const char *dir, const char *rel, const char *ext) {
  size_t ld = strlen(dir), lr = strlen(rel), le = strlen(ext);
  char *s = malloc(ld + lr + le + 2);
  if (!s) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory");
  memcpy(s, dir, ld);
  s[ld] = '/';
  memcpy(s + ld + 1, rel, lr);
  memcpy(s + ld + 1 + lr, ext, le + 1);
  return s;
}

/* mkdir -p path[0..len) */
static int mkdir_p(const char *op, const char *path, size_t len) {
  char *p = malloc(len + 1);
  if (!p) return crl__err(CRL_ENOMEM, "out of memory");
  memcpy(p, path, len);
  p[len] = 0;
  int rc = 0;
  for (size_t i = 1; i <= len && !rc; i++) {
    if (i < len && p[i] != '/') continue;
    char ch = p[i];
    p[i] = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      rc = crl__err(CRL_EIO, "%s: cannot create folder '%s': %s", op, p,
                    strerror(errno));
    else if (i == len) {
      struct stat st;
      if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = crl__err(CRL_EIO, "%s: '%s' is not a folder", op, p);
    }
    p[i] = ch;
  }
  free(p);
  return rc;
}

/* A key component usable as a file name. */
static bool plain_name(const char *k) {
  return *k && !strchr(k, '/') && strcmp(k, ".") != 0 && strcmp(k, "..") != 0;
}

static int check_names(const char *op, const crl_td *td, const char *prefix) {
  for (int i = 0; i < td->n; i++) {
    const char *k = td->e[i].key;
    if (!plain_name(k))
      return crl__err(CRL_EKEY,
                      "%s: key '%s%s%s' cannot be used as a file name", op,
                      prefix ? prefix : "", prefix ? "/" : "", k);
    if (td->e[i].sub) {
      /* its folder must not be the file of a sibling leaf, nor meta.json */
      size_t l = strlen(k);
      bool clash = !prefix && strcmp(k, "meta.json") == 0;
      for (int j = 0; !clash && l > 4 && j < td->n; j++)
        clash = td->e[j].t && strncmp(k, td->e[j].key, l - 4) == 0 &&
                td->e[j].key[l - 4] == 0 && strcmp(k + l - 4, ".npy") == 0;
      if (clash)
        return crl__err(CRL_EKEY,
                        "%s: nested key '%s%s%s' would be a folder with the "
                        "name of a file of the memmap folder",
                        op, prefix ? prefix : "", prefix ? "/" : "", k);
      char *key = join_key(prefix, k);
      if (!key) return crl_last_error_code();
      int rc = check_names(op, td->e[i].sub, key);
      free(key);
      if (rc) return rc;
    }
  }
  return 0;
}

/* ---- meta.json: writing -------------------------------------------------- */

static json_t *shape_json(int n, const int64_t *s) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++)
    if (json_array_append_new(a, json_integer((json_int_t)s[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

/* o[k] = v, stealing v; false if v is NULL or the set failed */
static bool jset(json_t *o, const char *k, json_t *v) {
  return v && o && json_object_set_new(o, k, v) == 0;
}

static json_t *meta_entries(const crl_td *td) {
  json_t *a = json_array();
  for (int i = 0; a && i < td->n; i++) {
    const td_entry *e = &td->e[i];
    json_t *o = json_object();
    bool ok = jset(o, "key", json_string(e->key));
    if (e->t) {
      ok = ok && jset(o, "type", json_string("tensor")) &&
           jset(o, "dtype", json_string(crl_dtype_name(e->t->dtype))) &&
           jset(o, "shape", shape_json(e->t->ndim, e->t->shape));
    } else {
      ok = ok && jset(o, "type", json_string("tensordict")) &&
           jset(o, "batch_size", shape_json(e->sub->bnd, e->sub->batch)) &&
           jset(o, "entries", meta_entries(e->sub));
    }
    if (!ok || json_array_append_new(a, o) != 0) {
      if (!ok) json_decref(o);
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static int write_meta(const char *op, const crl_td *td, const char *folder) {
  json_t *root = json_object();
  bool ok = jset(root, "format", json_string(MEMMAP_FORMAT)) &&
            jset(root, "version", json_integer(MEMMAP_VERSION)) &&
            jset(root, "batch_size", shape_json(td->bnd, td->batch)) &&
            jset(root, "device", json_string(crl_device_name(td->device))) &&
            jset(root, "entries", meta_entries(td));
  char *text =
      ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  if (!text) return crl__err(CRL_ENOMEM, "%s: out of memory (meta.json)", op);
  char *path = path_join(folder, "meta.json", "");
  char *tmp = path ? malloc(strlen(path) + 32) : NULL;
  if (!tmp) {
    free(text);
    free(path);
    return crl__err(CRL_ENOMEM, "out of memory");
  }
  snprintf(tmp, strlen(path) + 32, "%s.tmp.%d", path, (int)getpid());
  int rc = 0;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    rc = crl__err(CRL_EIO, "%s: cannot create '%s': %s", op, tmp,
                  strerror(errno));
  } else {
    size_t len = strlen(text);
    bool w = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    int e = errno;
    if (fclose(f) != 0 && w) {
      w = false;
      e = errno;
    }
    if (!w || rename(tmp, path) != 0) {
      if (w) e = errno;
      unlink(tmp);
      rc =
          crl__err(CRL_EIO, "%s: cannot write '%s': %s", op, path, strerror(e));
    }
  }
  free(text);
  free(path);
  free(tmp);
  return rc;
}

/* ---- memmap_ ------------------------------------------------------------- */

int crl_td_memmap_(crl_td *td, const char *folder) {
  const char *op = "td_memmap_";
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  if (!folder || !*folder)
    return crl__err(CRL_EINVAL, "%s: folder is NULL or empty", op);
  if (td->device.type != CRL_CPU)
    return crl__err(CRL_EDEVICE,
                    "%s: TensorDict is on %s; only CPU "
                    "TensorDicts can be memory-mapped",
                    op, crl_device_name(td->device));
  leaf_list l = {0};
  int rc = check_names(op, td, NULL);
  if (!rc) rc = leaves_collect(td, NULL, &l);
  if (!rc) rc = check_leaves_cpu(op, &l);
  if (!rc) rc = mkdir_p(op, folder, strlen(folder));
  crl_scope_begin();
  for (int i = 0; !rc && i < l.n; i++) {
    const char *key = l.v[i].key;
    const char *slash = strrchr(key, '/');
    char *path = path_join(folder, key, ".npy");
    if (!path) {
      rc = crl_last_error_code();
      break;
    }
    if (slash) /* the sub-folders of a nested key */
      rc = mkdir_p(op, path, strlen(folder) + 1 + (size_t)(slash - key));
    crl_tensor *old = leaf_tensor(&l.v[i]);
    crl_tensor *neu =
        rc ? NULL
           : crl_tensor_create_npy(path, old->dtype, old->ndim, old->shape);
    if (!rc && !neu) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", crl_last_error());
      rc = crl__err(crl_last_error_code(), "%s: entry '%s': %s", op, key, msg);
    }
    free(path);
    if (rc) break;
    crl__copy_into(neu, old);
    rc = carry_grad_flag(neu, old);
    l.v[i].neu = neu;
  }
  if (!rc) rc = write_meta(op, td, folder);
  if (!rc) leaves_swap(&l);
  crl_scope_end();
  leaves_free(&l);
  return rc;
}

/* ---- meta.json: reading -------------------------------------------------- */

typedef struct {
  const char *op;
  const char *meta; /* path of meta.json, for messages */
  bool writable;
} loader;

static int meta_err(const loader *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int meta_err(const loader *c, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return crl__err(CRL_EFORMAT, "%s: '%s': %s", c->op, c->meta, msg);
}

/* "the root" or "'next/obs'" for messages */
static const char *where(const char *key, char *buf, size_t size) {
  if (!key) return "the root";
  snprintf(buf, size, "'%s'", key);
  return buf;
}

/* A shape/batch array: at most CRL_MAX_DIMS non-negative integers. */
static int read_shape(const loader *c, const json_t *o, const char *field,
                      const char *key, int *nd, int64_t *shape) {
  char w[300];
  const json_t *a = json_object_get(o, field);
  if (!a)
    return meta_err(c, "%s has no '%s' field", where(key, w, sizeof w), field);
  if (!json_is_array(a))
    return meta_err(c, "'%s' of %s must be an array of integers, not %s", field,
                    where(key, w, sizeof w),
                    json_is_object(a)   ? "an object"
                    : json_is_string(a) ? "a string"
                                        : "a scalar");
  size_t n = json_array_size(a);
  if (n > CRL_MAX_DIMS)
    return meta_err(c, "'%s' of %s has %zu dims, at most %d are supported",
                    field, where(key, w, sizeof w), n, CRL_MAX_DIMS);
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(a, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return meta_err(c, "'%s' of %s: dim %zu is not a non-negative integer",
                      field, where(key, w, sizeof w), i);
    shape[i] = (int64_t)json_integer_value(v);
  }
  int64_t total = 1;
  for (size_t i = 0; i < n; i++) {
    if (shape[i] && total > (INT64_MAX / 16) / shape[i])
      return meta_err(c, "'%s' of %s is too large", field,
                      where(key, w, sizeof w));
    total *= shape[i];
  }
  *nd = (int)n;
  return 0;
}

static const char *read_string(const loader *c, const json_t *o,
                               const char *field, const char *key, int *rc) {
  char w[300];
  const json_t *v = json_object_get(o, field);
  if (!v) {
    *rc = meta_err(c, "%s has no '%s' field", where(key, w, sizeof w), field);
    return NULL;
  }
  if (!json_is_string(v)) {
    *rc = meta_err(c, "'%s' of %s must be a string", field,
                   where(key, w, sizeof w));
    return NULL;
  }
  if (strlen(json_string_value(v)) != json_string_length(v)) {
    *rc = meta_err(c, "'%s' of %s contains a NUL character", field,
                   where(key, w, sizeof w));
    return NULL;
  }
  return json_string_value(v);
}

static bool prefix_of(int np, const int64_t *p, int n, const int64_t *s) {
  if (n < np) return false;
  for (int i = 0; i < np; i++)
    if (p[i] != s[i]) return false;
  return true;
}

/* Open one leaf file and check it against the meta. New reference. */
static crl_tensor *open_leaf(const loader *c, const char *dir, const char *name,
                             const char *key, crl_dtype dt, int nd,
                             const int64_t *shape) {
  char *path = path_join(dir, name, ".npy");
  if (!path) return NULL;
  crl_tensor *t = NULL;
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    crl__err(CRL_EFORMAT, "%s: '%s' (entry '%s' of '%s') is missing", c->op,
             path, key, c->meta);
    goto done;
  }
  t = crl_tensor_mmap_npy(path, c->writable);
  if (!t) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", crl_last_error());
    crl__err(crl_last_error_code(), "%s: entry '%s': %s", c->op, key, msg);
    goto done;
  }
  bool same = t->dtype == dt && t->ndim == nd;
  for (int i = 0; same && i < nd; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    char b1[160], b2[160];
    crl__err(CRL_EFORMAT,
             "%s: entry '%s': '%s' holds %s of shape %s but '%s' says %s of "
             "shape %s",
             c->op, key, path, crl_dtype_name(t->dtype), CRL_SHAPE_STR(t, b1),
             c->meta, crl_dtype_name(dt), crl_shape_str(nd, shape, b2, 160));
    crl__discard(t);
    t = NULL;
  }
done:
  free(path);
  return t;
}

/* Fill td (batch already set) from the "entries" of object o; td's files
 * live in dir; key is td's nested key (NULL at the root). */
static int load_entries(const loader *c, crl_td *td, const json_t *o,
                        const char *dir, const char *key) {
  char w[300];
  const json_t *ents = json_object_get(o, "entries");
  if (!ents)
    return meta_err(c, "%s has no 'entries' field", where(key, w, 300));
  if (!json_is_array(ents))
    return meta_err(c, "'entries' of %s must be an array",
                    where(key, w, sizeof w));
  for (size_t i = 0; i < json_array_size(ents); i++) {
    const json_t *e = json_array_get(ents, i);
    if (!json_is_object(e))
      return meta_err(c, "entry %zu of %s is not an object", i,
                      where(key, w, sizeof w));
    int rc = 0;
    char ctx[400];
    snprintf(ctx, sizeof ctx, "entry %zu of %s", i, where(key, w, sizeof w));
    const json_t *kv = json_object_get(e, "key");
    if (!kv || !json_is_string(kv))
      return meta_err(c, "%s has %s 'key'", ctx, kv ? "a non-string" : "no");
    const char *name = json_string_value(kv);
    if (strlen(name) != json_string_length(kv) || !plain_name(name))
      return meta_err(c,
                      "%s has an invalid key '%s' (empty, '.', '..' or "
                      "containing '/')",
                      ctx, name);
    if (crl__td_find_local(td, name, strlen(name)) >= 0)
      return meta_err(c, "%s repeats the key '%s'", ctx, name);
    char *full = join_key(key, name);
    if (!full) return crl_last_error_code();
    const char *type = read_string(c, e, "type", full, &rc);
    int nd = 0;
    int64_t shape[CRL_MAX_DIMS];
    char b1[160], b2[160];
    if (!type) {
      /* rc set */
    } else if (strcmp(type, "tensor") == 0) {
      const char *dts = read_string(c, e, "dtype", full, &rc);
      int dt = dts ? crl_dtype_from_name(dts) : -1;
      if (dts && dt < 0)
        rc = meta_err(c, "'%s' has unknown dtype '%s'", full, dts);
      if (!rc) rc = read_shape(c, e, "shape", full, &nd, shape);
      if (!rc && !prefix_of(td->bnd, td->batch, nd, shape))
        rc = meta_err(c,
                      "entry '%s' has shape %s, whose leading dims are "
                      "not the batch size %s",
                      full, crl_shape_str(nd, shape, b1, sizeof b1),
                      crl_shape_str(td->bnd, td->batch, b2, sizeof b2));
      if (!rc) {
        crl_tensor *t = open_leaf(c, dir, name, full, (crl_dtype)dt, nd, shape);
        rc = t ? crl__td_append(td, name, strlen(name), t, NULL)
               : crl_last_error_code();
      }
    } else if (strcmp(type, "tensordict") == 0) {
      rc = read_shape(c, e, "batch_size", full, &nd, shape);
      if (!rc && !prefix_of(td->bnd, td->batch, nd, shape))
        rc = meta_err(c,
                      "nested '%s' has batch size %s, which does not start "
                      "with its parent's %s",
                      full, crl_shape_str(nd, shape, b1, sizeof b1),
                      crl_shape_str(td->bnd, td->batch, b2, sizeof b2));
      crl_td *sub = rc ? NULL : crl__td_new_raw(nd, shape, td->device);
      if (!rc && !sub) rc = crl_last_error_code();
      char *subdir = rc ? NULL : path_join(dir, name, "");
      if (!rc && !subdir) rc = crl_last_error_code();
      if (!rc) rc = load_entries(c, sub, e, subdir, full);
      if (!rc) rc = crl__td_append(td, name, strlen(name), NULL, sub);
      free(subdir);
    } else {
      rc = meta_err(c,
                    "'%s' has type '%s' (expected 'tensor' or "
                    "'tensordict')",
                    full, type);
    }
    free(full);
    if (rc) return rc;
  }
  return 0;
}

/* The root's format, version and device. */
static int check_root(const loader *c, const json_t *root) {
  int rc = 0;
  if (!json_is_object(root))
    return meta_err(c, "the top level is not an object");
  const char *fmt = read_string(c, root, "format", NULL, &rc);
  if (!fmt) return rc;
  if (strcmp(fmt, MEMMAP_FORMAT) != 0)
    return meta_err(c, "'format' is '%s', expected '%s'", fmt, MEMMAP_FORMAT);
  const json_t *ver = json_object_get(root, "version");
  if (!ver) return meta_err(c, "the root has no 'version' field");
  if (!json_is_integer(ver)) return meta_err(c, "'version' must be an integer");
  if (json_integer_value(ver) != MEMMAP_VERSION)
    return meta_err(c, "version %lld is not supported (this build reads %d)",
                    (long long)json_integer_value(ver), MEMMAP_VERSION);
  const char *dev = read_string(c, root, "device", NULL, &rc);
  if (!dev) return rc;
  if (strcmp(dev, "cpu") != 0)
    return crl__err(CRL_EUNSUPPORTED,
                    "%s: '%s': device '%s' is not available in this build "
                    "(only cpu)",
                    c->op, c->meta, dev);
  return 0;
}

crl_td *crl_td_load_memmap(const char *folder, bool writable) {
  const char *op = "td_load_memmap";
  if (!folder || !*folder)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: folder is NULL or empty", op);
  char *meta = path_join(folder, "meta.json", "");
  if (!meta) return NULL;
  loader c = {op, meta, writable};
  json_error_t jerr;
  json_t *root = json_load_file(meta, JSON_REJECT_DUPLICATES, &jerr);
  crl_td *td = NULL;
  int rc = 0;
  if (!root) {
    if (json_error_code(&jerr) == json_error_cannot_open_file)
      crl__err(CRL_EIO, "%s: cannot read '%s': %s", op, meta, jerr.text);
    else
      meta_err(&c, "not valid JSON: %s (line %d, column %d)", jerr.text,
               jerr.line, jerr.column);
    free(meta);
    return NULL;
  }
  crl_scope_begin();
  rc = check_root(&c, root);
  int nd = 0;
  int64_t batch[CRL_MAX_DIMS];
  if (!rc) rc = read_shape(&c, root, "batch_size", NULL, &nd, batch);
  if (!rc) {
    td = crl__td_new_raw(nd, batch, CRL_DEVICE_CPU);
    rc = td ? load_entries(&c, td, root, folder, NULL) : crl_last_error_code();
  }
  json_decref(root);
  free(meta);
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(td);
}
