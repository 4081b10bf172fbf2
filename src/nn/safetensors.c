/* Parameter files in the safetensors format (Hugging Face):
 *
 *   8 bytes   N, the header length, unsigned 64-bit little endian
 *   N bytes   UTF-8 JSON object, starting with '{', optionally padded with
 *             spaces: {"__metadata__": {str: str, ...},          (optional)
 *                      "name": {"dtype": "F32", "shape": [2, 3],
 *                               "data_offsets": [BEGIN, END]}, ...}
 *   the rest  the byte buffer; data_offsets are relative to its start and
 *             the tensors' ranges cover it exactly (no holes, no overlap,
 *             nothing after the last one). Little endian, C order.
 *
 * Nested TensorDict keys are stored as names with '/' ("0/weight") and
 * rebuilt as nested TensorDicts on load. The writer pads the header with
 * spaces to a multiple of 8 bytes and lays the data out by decreasing
 * element size, so every tensor is aligned for zero-copy readers; the header
 * lists the tensors in the TensorDict's order, which the loader keeps.
 *
 * The loader treats the file as hostile: every number is checked (header
 * length against the file and a 100 MB cap, shapes against offsets with
 * overflow checks, offsets against the buffer and each other) before
 * anything is allocated from it, and nothing is read out of bounds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../td/td_internal.h"
#include "nn_internal.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* as the reference */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ST_BIG_ENDIAN_HOST 1
#else
#define ST_BIG_ENDIAN_HOST 0
#endif

static const char *const st_names[CRL_NUM_DTYPES] = {
    [CRL_FLOAT32] = "F32", [CRL_FLOAT64] = "F64", [CRL_INT64] = "I64",
    [CRL_INT32] = "I32",   [CRL_UINT8] = "U8",    [CRL_BOOL] = "BOOL",
};

static int st_dtype(const char *s) {
  for (int i = 0; i < CRL_NUM_DTYPES; i++)
    if (strcmp(s, st_names[i]) == 0) return i;
  return -1;
}

/* ---- save ---------------------------------------------------------------- */

typedef struct {
  const char *key; /* borrowed from the key list */
  crl_tensor *t;   /* borrowed (or a scope-owned contiguous copy) */
  size_t nbytes;
  uint64_t begin;
} st_out;

/* Stable order of decreasing element size (alignment), as the reference
 * writer does, so each tensor starts aligned when the header is padded. */
static void layout(st_out *v, int n) {
  uint64_t off = 0;
  static const size_t sizes[] = {8, 4, 2, 1};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (int i = 0; i < n; i++)
      if (crl_dtype_size(v[i].t->dtype) == sizes[s]) {
        v[i].begin = off;
        off += v[i].nbytes;
      }
}

static json_t *header_json(const char *op, st_out *v, int n) {
  json_t *root = json_object(), *meta = json_object();
  int bad = json_object_set_new(root, "__metadata__", meta);
  if (!bad) bad = json_object_set_new(meta, "format", json_string("pt"));
  if (bad) {
    json_decref(root);
    return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  }
  for (int i = 0; i < n; i++) {
    crl_tensor *t = v[i].t;
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    /* set_new steals (and frees on failure) what it is given */
    bad = json_object_set_new(e, "dtype", json_string(st_names[t->dtype]));
    bad = json_object_set_new(e, "shape", shape) || bad;
    bad = json_object_set_new(e, "data_offsets", offs) || bad;
    for (int d = 0; !bad && d < t->ndim; d++)
      bad = json_array_append_new(shape, json_integer(t->shape[d]));
    bad = bad ||
          json_array_append_new(offs, json_integer((json_int_t)v[i].begin)) ||
          json_array_append_new(
              offs, json_integer((json_int_t)(v[i].begin + v[i].nbytes)));
    if (!bad)
      bad = json_object_set_new(root, v[i].key, e);
    else
      json_decref(e);
    if (bad) {
      json_decref(root);
      return CRL_ERR_NULL(CRL_ENOMEM, "%s: cannot build the header for '%s'",
                          op, v[i].key);
    }
  }
  return root;
}

static int save_impl(const char *op, crl_td *td, const char *path,
                     crl_td_keys *k, st_out **pv) {
  int rc = crl_td_keys_get(td, true, true, k);
  if (rc) return rc;
  st_out *v = calloc((size_t)(k->n ? k->n : 1), sizeof *v);
  *pv = v;
  if (!v) return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  /* validate every entry before writing anything */
  for (int i = 0; i < k->n; i++) {
    crl_tensor *t = crl_td_find(td, k->keys[i]);
    if (!t)
      return crl__err(CRL_EKEY, "%s: entry '%s' vanished", op, k->keys[i]);
    if (strcmp(k->keys[i], "__metadata__") == 0)
      return crl__err(CRL_EKEY,
                      "%s: the key '__metadata__' is reserved by the "
                      "safetensors format",
                      op);
    json_t *js = json_string(k->keys[i]); /* NULL unless valid UTF-8 */
    if (!js)
      return crl__err(CRL_EKEY, "%s: key '%s' is not valid UTF-8", op,
                      k->keys[i]);
    json_decref(js);
    if ((rc = crl__check_cpu(op, t))) return rc;
    if ((int)t->dtype < 0 || t->dtype >= CRL_NUM_DTYPES)
      return crl__err(CRL_EDTYPE, "%s: entry '%s' has an invalid dtype %d", op,
                      k->keys[i], (int)t->dtype);
    v[i] =
        (st_out){k->keys[i], t, (size_t)t->numel * crl_dtype_size(t->dtype), 0};
  }
  if (ST_BIG_ENDIAN_HOST)
    return crl__err(CRL_EUNSUPPORTED, "%s: big-endian hosts are not supported",
                    op);
  layout(v, k->n);
  json_t *root = header_json(op, v, k->n);
  if (!root) return crl_last_error_code();
  char *hdr = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  if (!hdr) return crl__err(CRL_ENOMEM, "%s: cannot serialise the header", op);
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  char *buf = malloc(8 + padded);
  if (!buf) {
    free(hdr);
    return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  }
  for (int b = 0; b < 8; b++)
    buf[b] = (char)((uint64_t)padded >> (8 * b));
  memcpy(buf + 8, hdr, hl);
  memset(buf + 8 + hl, ' ', padded - hl);
  free(hdr);
  /* non-contiguous tensors are written from C-order copies */
  for (int i = 0; i < k->n; i++)
    if (!crl_tensor_is_contiguous(v[i].t)) {
      v[i].t = crl__to_contig_dtype(v[i].t, v[i].t->dtype);
      if (!v[i].t) {
        free(buf);
        return crl_last_error_code();
      }
    }
  char tmp[4096 + 64];
  int fd = crl__open_tmp(op, path, tmp, sizeof tmp);
  if (fd < 0) {
    free(buf);
    return fd;
  }
  int bad = crl__write_all(fd, buf, 8 + padded);
  free(buf);
  static const size_t sizes[] = {8, 4, 2, 1};
  for (size_t s = 0; !bad && s < sizeof sizes / sizeof *sizes; s++)
    for (int i = 0; !bad && i < k->n; i++)
      if (crl_dtype_size(v[i].t->dtype) == sizes[s] && v[i].nbytes)
        bad = crl__write_all(fd, v[i].t->data, v[i].nbytes);
  int e = errno;
  if (close(fd) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (!bad && rename(tmp, path) != 0) {
    bad = 1;
    e = errno;
  }
  if (bad) {
    unlink(tmp);
    return crl__err(CRL_EIO, "%s: cannot write '%s': %s", op, path,
                    strerror(e));
  }
  return 0;
}

int crl_td_save_safetensors(crl_td *td, const char *path) {
  const char *op = "save_safetensors";
  if (!td || !path)
    return crl__err(CRL_EINVAL, "%s: TensorDict and path are required", op);
  crl_td_keys k = {0};
  st_out *v = NULL;
  crl_scope_begin();
  int rc = save_impl(op, td, path, &k, &v);
  crl_scope_end();
  free(v);
  crl_td_keys_free(&k);
  return rc;
}

/* ---- load ---------------------------------------------------------------- */

typedef struct {
  const char *key; /* borrowed from the JSON */
  crl_dtype dt;
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  uint64_t begin, end;
} st_in;

static int fmt_err(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fmt_err(const char *path, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return crl__err(CRL_EFORMAT, "load_safetensors: '%s': %s", path, msg);
}

static int cmp_range(const void *a, const void *b) {
  const st_in *x = *(st_in *const *)a, *y = *(st_in *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* A non-negative JSON integer into *out. */
static bool json_u64(const json_t *j, uint64_t *out) {
  if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
  *out = (uint64_t)json_integer_value(j);
  return true;
}

/* Parse and check one tensor's description. */
static int parse_entry(const char *path, const char *key, json_t *val,
                       uint64_t bufsize, st_in *e) {
  if (!json_is_object(val))
    return fmt_err(path, "entry '%s' is not an object", key);
  json_t *dt = json_object_get(val, "dtype");
  json_t *shape = json_object_get(val, "shape");
  json_t *offs = json_object_get(val, "data_offsets");
  if (!dt || !shape || !offs)
    return fmt_err(path, "entry '%s' lacks \"%s\"", key,
                   !dt      ? "dtype"
                   : !shape ? "shape"
                            : "data_offsets");
  if (!json_is_string(dt))
    return fmt_err(path, "entry '%s': \"dtype\" is not a string", key);
  int d = st_dtype(json_string_value(dt));
  if (d < 0)
    return fmt_err(path,
                   "entry '%s': unsupported dtype '%.32s' (crl reads F32, "
                   "F64, I64, I32, U8, BOOL)",
                   key, json_string_value(dt));
  e->key = key;
  e->dt = (crl_dtype)d;
  if (!json_is_array(shape))
    return fmt_err(path, "entry '%s': \"shape\" is not an array", key);
  size_t nd = json_array_size(shape);
  if (nd > CRL_MAX_DIMS)
    return fmt_err(path, "entry '%s' has %zu dims; crl supports at most %d",
                   key, nd, CRL_MAX_DIMS);
  e->ndim = (int)nd;
  /* numel * element size, with every non-zero dim's product bounded so the
   * tensor's strides cannot overflow either */
  uint64_t esz = crl_dtype_size(e->dt), prod = 1, limit = (uint64_t)INT64_MAX;
  bool zero = false;
  for (size_t i = 0; i < nd; i++) {
    uint64_t s;
    if (!json_u64(json_array_get(shape, i), &s))
      return fmt_err(
          path, "entry '%s': shape[%zu] is not a non-negative integer", key, i);
    e->shape[i] = (int64_t)s;
    if (s == 0) {
      zero = true;
      continue;
    }
    if (prod > limit / esz / s)
      return fmt_err(path, "entry '%s': shape is too large", key);
    prod *= s;
  }
  uint64_t nbytes = zero ? 0 : prod * esz;
  if (!json_is_array(offs) || json_array_size(offs) != 2 ||
      !json_u64(json_array_get(offs, 0), &e->begin) ||
      !json_u64(json_array_get(offs, 1), &e->end))
    return fmt_err(path,
                   "entry '%s': \"data_offsets\" is not a pair of "
                   "non-negative integers",
                   key);
  if (e->end < e->begin)
    return fmt_err(path,
                   "entry '%s': data_offsets [%llu, %llu] end before "
                   "they begin",
                   key, (unsigned long long)e->begin,
                   (unsigned long long)e->end);
  char sb[128];
  if (e->end - e->begin != nbytes)
    return fmt_err(path,
                   "entry '%s': data_offsets [%llu, %llu] hold %llu bytes "
                   "but %s shape %s needs %llu",
                   key, (unsigned long long)e->begin,
                   (unsigned long long)e->end,
                   (unsigned long long)(e->end - e->begin), st_names[e->dt],
                   crl_shape_str(e->ndim, e->shape, sb, sizeof sb),
                   (unsigned long long)nbytes);
  if (e->end > bufsize)
    return fmt_err(path,
                   "entry '%s': data_offsets [%llu, %llu] run past the end of "
                   "the %llu-byte data buffer (truncated file?)",
                   key, (unsigned long long)e->begin,
                   (unsigned long long)e->end, (unsigned long long)bufsize);
  if (crl__td_check_key("load_safetensors", key))
    return fmt_err(path,
                   "tensor name '%s' is not a valid key (empty "
                   "component)",
                   key);
  return 0;
}

/* The ranges must tile [0, bufsize) exactly. */
static int check_tiling(const char *path, st_in *v, int n, uint64_t bufsize) {
  st_in **s = malloc(sizeof *s * (size_t)(n ? n : 1));
  if (!s) return crl__err(CRL_ENOMEM, "load_safetensors: out of memory");
  for (int i = 0; i < n; i++)
    s[i] = &v[i];
  qsort(s, (size_t)n, sizeof *s, cmp_range);
  uint64_t at = 0;
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    if (s[i]->begin < at)
      rc = fmt_err(path,
                   "the data of '%s' [%llu, %llu] overlaps that of '%s' "
                   "(ends at %llu)",
                   s[i]->key, (unsigned long long)s[i]->begin,
                   (unsigned long long)s[i]->end, s[i - 1]->key,
                   (unsigned long long)at);
    else if (s[i]->begin > at)
      rc = fmt_err(path,
                   "bytes [%llu, %llu) of the data buffer belong to no "
                   "tensor (a hole before '%s')",
                   (unsigned long long)at, (unsigned long long)s[i]->begin,
                   s[i]->key);
    at = s[i]->end;
  }
  free(s);
  if (!rc && at != bufsize)
    rc = fmt_err(path,
                 "%llu trailing bytes after the last tensor's data (the data "
                 "buffer is %llu bytes, the tensors cover %llu)",
                 (unsigned long long)(bufsize - at),
                 (unsigned long long)bufsize, (unsigned long long)at);
  return rc;
}

static int check_metadata(const char *path, json_t *meta) {
  if (!json_is_object(meta))
    return fmt_err(path, "\"__metadata__\" is not an object");
  const char *k;
  json_t *val;
  json_object_foreach(meta, k, val) {
    if (!json_is_string(val))
      return fmt_err(path, "\"__metadata__\" value of '%s' is not a string", k);
  }
  return 0;
}

/* Parse the header and read the data; returns the TensorDict (scope-owned
 * by the caller's scope) or NULL. */
static crl_td *load_impl(const char *path, int fd, json_t **proot, st_in **pv) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return CRL_ERR_NULL(CRL_EIO, "load_safetensors: cannot stat '%s': %s", path,
                        strerror(errno));
  if (!S_ISREG(st.st_mode))
    return CRL_ERR_NULL(CRL_EIO, "load_safetensors: '%s' is not a file", path);
  uint64_t fsize = (uint64_t)st.st_size;
  unsigned char lb[8];
  if (fsize < 8)
    return fmt_err(path,
                   "the file is %llu bytes, shorter than the 8-byte header "
                   "length",
                   (unsigned long long)fsize),
           NULL;
  if (crl__pread_all(fd, lb, 8, 0))
    return CRL_ERR_NULL(CRL_EIO, "load_safetensors: cannot read '%s': %s", path,
                        strerror(errno));
  uint64_t hl = 0;
  for (int b = 7; b >= 0; b--)
    hl = hl << 8 | lb[b];
  if (hl > ST_MAX_HEADER)
    return fmt_err(path, "header length %llu exceeds the 100 MB limit",
                   (unsigned long long)hl),
           NULL;
  if (hl > fsize - 8)
    return fmt_err(path,
                   "header length %llu runs past the end of the file (%llu "
                   "bytes)",
                   (unsigned long long)hl, (unsigned long long)fsize),
           NULL;
  uint64_t bufsize = fsize - 8 - hl;
  char *hdr = malloc(hl ? hl : 1);
  if (!hdr) return CRL_ERR_NULL(CRL_ENOMEM, "load_safetensors: out of memory");
  if (crl__pread_all(fd, hdr, hl, 8)) {
    free(hdr);
    return CRL_ERR_NULL(CRL_EIO, "load_safetensors: cannot read '%s': %s", path,
                        strerror(errno));
  }
  if (hl == 0 || hdr[0] != '{') {
    free(hdr);
    return fmt_err(path, "the header does not start with '{'"), NULL;
  }
  json_error_t jerr;
  json_t *root = json_loadb(hdr, hl, JSON_REJECT_DUPLICATES, &jerr);
  free(hdr);
  *proot = root;
  if (!root)
    return fmt_err(path, "the header is not valid JSON: %s (byte %d)",
                   jerr.text, jerr.position),
           NULL;
  if (!json_is_object(root))
    return fmt_err(path, "the header is not a JSON object"), NULL;
  size_t n = json_object_size(root);
  st_in *v = calloc(n ? n : 1, sizeof *v);
  *pv = v;
  if (!v) return CRL_ERR_NULL(CRL_ENOMEM, "load_safetensors: out of memory");
  int cnt = 0;
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    int rc = strcmp(key, "__metadata__") == 0
                 ? check_metadata(path, val)
                 : parse_entry(path, key, val, bufsize, &v[cnt++]);
    if (rc) return NULL;
  }
  if (check_tiling(path, v, cnt, bufsize)) return NULL;
  /* the header is sound: build the TensorDict */
  crl_td *td = crl_td_new(0, NULL);
  if (!td) return NULL;
  for (int i = 0; i < cnt; i++) {
    st_in *e = &v[i];
    crl_tensor *t = crl_empty(e->dt, e->ndim, e->shape);
    if (!t) return NULL;
    size_t nb = (size_t)(e->end - e->begin);
    if (nb && crl__pread_all(fd, t->data, nb, (int64_t)(8 + hl + e->begin)))
      return CRL_ERR_NULL(CRL_EIO, "load_safetensors: cannot read '%s': %s",
                          path, strerror(errno));
    if (e->dt == CRL_BOOL) {
      const unsigned char *b = t->data;
      for (size_t j = 0; j < nb; j++)
        if (b[j] > 1)
          return fmt_err(path,
                         "entry '%s': BOOL element %zu is %u, not 0 "
                         "or 1",
                         e->key, j, (unsigned)b[j]),
                 NULL;
    }
    if (crl_td_set(td, e->key, t)) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", crl_last_error());
      return fmt_err(path, "tensor '%s' cannot be placed: %s", e->key, msg),
             NULL;
    }
  }
  return td;
}

crl_td *crl_td_load_safetensors(const char *path) {
  if (!path) return CRL_ERR_NULL(CRL_EINVAL, "load_safetensors: path is NULL");
  if (ST_BIG_ENDIAN_HOST)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "load_safetensors: big-endian hosts are not supported");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return CRL_ERR_NULL(CRL_EIO, "load_safetensors: cannot open '%s': %s", path,
                        strerror(errno));
  json_t *root = NULL;
  st_in *v = NULL;
  crl_scope_begin();
  crl_td *td = load_impl(path, fd, &root, &v);
  close(fd);
  free(v);
  json_decref(root);
  if (!td) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(td);
}

/* ---- modules ------------------------------------------------------------- */

int crl_module_load_safetensors(crl_module *m, const char *path) {
  const char *op = "module_load_safetensors";
  if (!m || !path)
    return crl__err(CRL_EINVAL, "%s: module and path are required", op);
  crl_scope_begin();
  crl_td *td = crl_td_load_safetensors(path);
  crl_td_keys fk = {0}, mk = {0};
  int rc = td ? crl_td_keys_get(td, true, true, &fk) : crl_last_error_code();
  if (!rc) rc = crl_td_keys_get(m->params, true, true, &mk);
  /* every key of the file is a parameter of the same shape and dtype */
  for (int i = 0; i < fk.n && !rc; i++) {
    crl_tensor *s = crl_td_find(td, fk.keys[i]);
    crl_tensor *d = crl_td_find(m->params, fk.keys[i]);
    char a[128], b[128], keys[256];
    if (!d) {
      crl__td_keys_str(m->params, keys, sizeof keys);
      rc = crl__err(CRL_EKEY,
                    "%s: '%s' holds '%s' (shape %s), which %s has no "
                    "parameter for (parameters: %s)",
                    op, path, fk.keys[i], CRL_SHAPE_STR(s, a),
                    crl_module_name(m), keys);
    } else if (!crl_same_shape(s, d)) {
      rc = crl__err(CRL_ESHAPE,
                    "%s: '%s': key '%s' has shape %s in the file but %s in "
                    "%s",
                    op, path, fk.keys[i], CRL_SHAPE_STR(s, a),
                    CRL_SHAPE_STR(d, b), crl_module_name(m));
    } else if (s->dtype != d->dtype) {
      rc = crl__err(CRL_EDTYPE,
                    "%s: '%s': key '%s' (shape %s) is %s in the file but %s "
                    "in %s",
                    op, path, fk.keys[i], CRL_SHAPE_STR(s, a),
                    crl_dtype_name(s->dtype), crl_dtype_name(d->dtype),
                    crl_module_name(m));
    }
  }
  /* and every parameter is in the file */
  for (int i = 0; i < mk.n && !rc; i++)
    if (!crl_td_find(td, mk.keys[i])) {
      char a[128];
      rc = crl__err(CRL_EKEY,
                    "%s: '%s' has no entry for parameter '%s' (shape %s) of "
                    "%s",
                    op, path, mk.keys[i],
                    CRL_SHAPE_STR(crl_td_find(m->params, mk.keys[i]), a),
                    crl_module_name(m));
    }
  crl_td_keys_free(&fk);
  crl_td_keys_free(&mk);
  if (!rc) rc = crl_module_load_params(m, td);
  crl_scope_end();
  return rc;
}
