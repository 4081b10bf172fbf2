/* NumPy .npy files: save, load, memory-map, create.
 *
 * Format (numpy/lib/format.py, NEP 1): the magic "\x93NUMPY", a major and
 * minor version byte, the header length (uint16 LE for 1.0, uint32 LE for
 * 2.0 and 3.0), then that many bytes of a Python dict literal with the keys
 * 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n'
 * so the data starts on a 64-byte boundary; then the raw C-order data.
 *
 * Reading is strict and bounds-checked: every byte is read through a length
 * that was checked first, and anything unexpected is CRL_EFORMAT with a
 * message saying what is wrong. Writing mimics NumPy byte for byte (including
 * the spare spaces NumPy >= 1.23 leaves to let the first dim grow). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21
/* Largest header we read: NumPy itself refuses more than 10000 bytes
 * without an explicit opt-in; ours are < 256. */
#define NPY_MAX_HEADER (1u << 20)

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define NPY_BIG_ENDIAN_HOST 1
#else
#define NPY_BIG_ENDIAN_HOST 0
#endif

static const struct {
  const char *descr;
  crl_dtype dt;
} npy_types[] = {
    {"<f4", CRL_FLOAT32}, {"<f8", CRL_FLOAT64}, {"<i8", CRL_INT64},
    {"<i4", CRL_INT32},   {"|u1", CRL_UINT8},   {"|b1", CRL_BOOL},
};

static const char *descr_of(crl_dtype dt) {
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (npy_types[i].dt == dt) return npy_types[i].descr;
  return NULL;
}

/* ---- header parsing --------------------------------------------------------
 */

typedef struct {
  const char *s;
  size_t i, n;
} cursor;

static void skip_ws(cursor *c) {
  while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
                         c->s[c->i] == '\n' || c->s[c->i] == '\r'))
    c->i++;
}

static bool eat(cursor *c, char ch) {
  if (c->i < c->n && c->s[c->i] == ch) {
    c->i++;
    return true;
  }
  return false;
}

/* A quoted Python string without escapes into out (NUL-terminated).
 * Returns 0, or an error message. */
static const char *parse_str(cursor *c, char *out, size_t cap) {
  if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"'))
    return "expected a quoted string";
  char q = c->s[c->i++];
  size_t len = 0;
  while (c->i < c->n && c->s[c->i] != q) {
    char ch = c->s[c->i++];
    if (ch == '\\') return "escape sequences in strings are not supported";
    if (ch == '\n') return "unterminated string";
    if (len + 1 >= cap) return "string too long";
    out[len++] = ch;
  }
  if (c->i >= c->n) return "unterminated string";
  c->i++;
  out[len] = 0;
  return NULL;
}

static bool match_word(cursor *c, const char *w) {
  size_t l = strlen(w);
  if (c->n - c->i < l || memcmp(c->s + c->i, w, l) != 0) return false;
  /* not followed by an identifier character */
  if (c->i + l < c->n) {
    char ch = c->s[c->i + l];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || ch == '_')
      return false;
  }
  c->i += l;
  return true;
}

/* Parse the header dict. On failure returns CRL_EFORMAT with the message. */
static int parse_dict(cursor *c, crl_dtype *dt, int *ndim, int64_t *shape) {
  bool have_descr = false, have_fortran = false, have_shape = false;
  bool fortran = false;
  crl_dtype d = CRL_FLOAT32;
  int nd = 0;
  int64_t sh[CRL_MAX_DIMS];
  skip_ws(c);
  if (!eat(c, '{'))
    return crl__err(CRL_EFORMAT,
                    "npy: header is not a dict (no '{' at "
                    "offset %zu)",
                    c->i);
  for (;;) {
    skip_ws(c);
    if (eat(c, '}')) break;
    char key[32];
    size_t at = c->i;
    const char *e = parse_str(c, key, sizeof key);
    if (e)
      return crl__err(CRL_EFORMAT,
                      "npy: bad key at offset %zu of the "
                      "header: %s",
                      at, e);
    skip_ws(c);
    if (!eat(c, ':'))
      return crl__err(CRL_EFORMAT, "npy: expected ':' after key '%s'", key);
    skip_ws(c);
    if (strcmp(key, "descr") == 0) {
      if (have_descr)
        return crl__err(CRL_EFORMAT, "npy: duplicate key 'descr'");
      have_descr = true;
      if (c->i < c->n && c->s[c->i] == '[')
        return crl__err(CRL_EFORMAT,
                        "npy: structured dtypes (descr is a list) are not "
                        "supported");
      char ds[32];
      if ((e = parse_str(c, ds, sizeof ds)))
        return crl__err(CRL_EFORMAT, "npy: bad 'descr' value: %s", e);
      bool found = false;
      for (size_t k = 0; k < sizeof npy_types / sizeof npy_types[0]; k++)
        if (strcmp(ds, npy_types[k].descr) == 0) {
          d = npy_types[k].dt;
          found = true;
        }
      if (!found) {
        if (ds[0] == '>')
          return crl__err(CRL_EFORMAT,
                          "npy: big-endian descr '%s' is not supported", ds);
        return crl__err(CRL_EFORMAT,
                        "npy: unsupported descr '%s' (supported: <f4 <f8 "
                        "<i8 <i4 |u1 |b1)",
                        ds);
      }
    } else if (strcmp(key, "fortran_order") == 0) {
      if (have_fortran)
        return crl__err(CRL_EFORMAT, "npy: duplicate key 'fortran_order'");
      have_fortran = true;
      if (match_word(c, "True"))
        fortran = true;
      else if (match_word(c, "False"))
        fortran = false;
      else
        return crl__err(CRL_EFORMAT,
                        "npy: 'fortran_order' must be True or False");
    } else if (strcmp(key, "shape") == 0) {
      if (have_shape)
        return crl__err(CRL_EFORMAT, "npy: duplicate key 'shape'");
      have_shape = true;
      if (!eat(c, '('))
        return crl__err(CRL_EFORMAT, "npy: 'shape' must be a tuple");
      for (;;) {
        skip_ws(c);
        if (eat(c, ')')) break;
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
          return crl__err(CRL_EFORMAT,
                          "npy: bad 'shape' entry at offset %zu of the "
                          "header (expected a non-negative integer)",
                          c->i);
        if (nd == CRL_MAX_DIMS)
          return crl__err(CRL_EFORMAT, "npy: 'shape' has more than %d dims",
                          CRL_MAX_DIMS);
        int64_t v = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
          int dgt = c->s[c->i++] - '0';
          if (v > (INT64_MAX - dgt) / 10)
            return crl__err(CRL_EFORMAT, "npy: 'shape' entry is too large");
          v = v * 10 + dgt;
        }
        eat(c, 'L'); /* Python 2 longs */
        sh[nd++] = v;
        skip_ws(c);
        if (eat(c, ')')) break;
        if (!eat(c, ','))
          return crl__err(CRL_EFORMAT,
                          "npy: expected ',' or ')' in 'shape' at offset "
                          "%zu of the header",
                          c->i);
      }
    } else {
      return crl__err(CRL_EFORMAT, "npy: unexpected key '%s' in the header",
                      key);
    }
    skip_ws(c);
    if (eat(c, ',')) continue;
    skip_ws(c);
    if (eat(c, '}')) break;
    return crl__err(CRL_EFORMAT,
                    "npy: expected ',' or '}' at offset %zu of the header",
                    c->i);
  }
  skip_ws(c);
  if (c->i != c->n)
    return crl__err(CRL_EFORMAT,
                    "npy: unexpected characters after the header dict (offset "
                    "%zu)",
                    c->i);
  if (!have_descr)
    return crl__err(CRL_EFORMAT, "npy: header has no 'descr' key");
  if (!have_fortran)
    return crl__err(CRL_EFORMAT, "npy: header has no 'fortran_order' key");
  if (!have_shape)
    return crl__err(CRL_EFORMAT, "npy: header has no 'shape' key");
  if (fortran)
    return crl__err(CRL_EFORMAT,
                    "npy: fortran_order True (column-major data) is not "
                    "supported");
  /* the byte count must fit comfortably */
  int64_t n = 1;
  for (int i = 0; i < nd; i++) {
    if (sh[i] && n > INT64_MAX / 16 / sh[i]) {
      char b[200];
      return crl__err(CRL_EFORMAT, "npy: shape %s is too large",
                      crl_shape_str(nd, sh, b, sizeof b));
    }
    n *= sh[i];
  }
  *dt = d;
  *ndim = nd;
  memcpy(shape, sh, sizeof(int64_t) * (size_t)nd);
  return 0;
}

int crl_npy_parse_header(const void *buf, size_t len, crl_dtype *dt, int *ndim,
                         int64_t *shape, size_t *data_offset) {
  if (!buf || !dt || !ndim || !shape || !data_offset)
    return crl__err(CRL_EINVAL, "npy: parse_header got a NULL argument");
  const unsigned char *b = buf;
  if (len < NPY_MAGIC_LEN || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
    return crl__err(CRL_EFORMAT, "npy: bad magic string (not a .npy file)");
  if (len < 8)
    return crl__err(CRL_EFORMAT, "npy: file ends inside the version bytes");
  int major = b[6], minor = b[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    return crl__err(CRL_EFORMAT,
                    "npy: unsupported format version %d.%d (supported: 1.0, "
                    "2.0, 3.0)",
                    major, minor);
  size_t pre = major == 1 ? 10 : 12, hlen;
  if (len < pre)
    return crl__err(CRL_EFORMAT,
                    "npy: file ends inside the header length (%zu bytes)", len);
  if (major == 1)
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
  else
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
           (size_t)b[11] << 24;
  if (hlen > len - pre)
    return crl__err(CRL_EFORMAT,
                    "npy: header length %zu runs past the end of the data "
                    "(%zu bytes after the %zu-byte prefix)",
                    hlen, len - pre, pre);
  cursor c = {(const char *)b + pre, 0, hlen};
  int rc = parse_dict(&c, dt, ndim, shape);
  if (rc) return rc;
  *data_offset = pre + hlen;
  return 0;
}

/* ---- header writing --------------------------------------------------------
 */

/* Build NumPy's header for (dt, shape) into out (>= 512 bytes); returns its
 * total length (prefix + dict + padding), a multiple of 64. */
static size_t build_header(crl_dtype dt, int ndim, const int64_t *shape,
                           char *out, size_t cap) {
  char dict[400];
  int l = snprintf(dict, sizeof dict,
                   "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr_of(dt));
  for (int i = 0; i < ndim; i++)
    l += snprintf(dict + l, sizeof dict - (size_t)l, i ? ", %lld" : "%lld",
                  (long long)shape[i]);
  l += snprintf(dict + l, sizeof dict - (size_t)l, "%s), }",
                ndim == 1 ? "," : "");
  if (ndim > 0) {
    /* NumPy >= 1.23: room for the first dim to grow in place */
    char d0[24];
    int g = NPY_GROWTH_DIGITS -
            snprintf(d0, sizeof d0, "%lld", (long long)shape[0]);
    while (g-- > 0)
      dict[l++] = ' ';
  }
  /* prefix (10) + dict + padding + '\n' is a multiple of 64 */
  size_t hl = (size_t)l + 1;
  size_t pad = NPY_ALIGN - (10 + hl) % NPY_ALIGN; /* 1..64, as NumPy */
  size_t total = 10 + hl + pad;
  if (total > cap) return 0;
  memcpy(out, NPY_MAGIC, NPY_MAGIC_LEN);
  out[6] = 1;
  out[7] = 0;
  size_t h = total - 10;
  out[8] = (char)(h & 0xff);
  out[9] = (char)(h >> 8);
  memcpy(out + 10, dict, (size_t)l);
  memset(out + 10 + l, ' ', pad);
  out[total - 1] = '\n';
  return total;
}

/* ---- file helpers
 * ------------------------------------------------------------ */

int crl__write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    size_t chunk = n > (1u << 30) ? (1u << 30) : n;
    ssize_t w = write(fd, c, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int crl__pread_all(int fd, void *p, size_t n, int64_t offset) {
  char *c = p;
  off_t off = (off_t)offset;
  while (n > 0) {
    size_t chunk = n > (1u << 30) ? (1u << 30) : n;
    ssize_t r = pread(fd, c, chunk, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      errno = EIO; /* file shrank under us */
      return -1;
    }
    c += r;
    n -= (size_t)r;
    off += r;
  }
  return 0;
}

static _Atomic unsigned tmp_counter;

int crl__open_tmp(const char *op, const char *path, char *tmp, size_t cap) {
  for (int tries = 0; tries < 100; tries++) {
    snprintf(tmp, cap, "%s.tmp.%d.%u", path, (int)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno != EEXIST)
      return crl__err(CRL_EIO, "%s: cannot create '%s': %s", op, tmp,
                      strerror(errno));
  }
  return crl__err(CRL_EIO, "%s: cannot create a temporary file for '%s'", op,
                  path);
}

static int fail_tmp(int fd, const char *tmp, const char *op, const char *what,
                    const char *path, int e) {
  close(fd);
  unlink(tmp);
  return crl__err(CRL_EIO, "%s: cannot %s '%s': %s", op, what, path,
                  strerror(e));
}

static int check_dtype_cpu(const char *op, const crl_tensor *t) {
  if (!t) return crl__err(CRL_EINVAL, "%s: tensor is NULL", op);
  int rc = crl__check_cpu(op, t);
  if (rc) return rc;
  if (!descr_of(t->dtype))
    return crl__err(CRL_EDTYPE, "%s: invalid dtype %d", op, (int)t->dtype);
  if (NPY_BIG_ENDIAN_HOST)
    return crl__err(CRL_EUNSUPPORTED, "%s: big-endian hosts are not supported",
                    op);
  return 0;
}

/* ---- save ---------------------------------------------------------------- */

int crl_tensor_save_npy(const crl_tensor *t, const char *path) {
  const char *op = "save_npy";
  int rc = check_dtype_cpu(op, t);
  if (rc) return rc;
  if (!path) return crl__err(CRL_EINVAL, "%s: path is NULL", op);
  char hdr[512];
  size_t hl = build_header(t->dtype, t->ndim, t->shape, hdr, sizeof hdr);
  size_t nbytes = (size_t)t->numel * crl_dtype_size(t->dtype);
  /* non-contiguous: write a C-order copy */
  crl_tensor *src = (crl_tensor *)t, *tmpt = NULL;
  if (!crl_tensor_is_contiguous(t)) {
    tmpt = crl__to_contig_dtype(src, t->dtype);
    if (!tmpt) return crl_last_error_code();
    src = tmpt;
  }
  /* write a temporary file and rename it over path: a failed save leaves
   * an existing file intact, and live mappings of it stay valid */
  char tmp[4096 + 64];
  int fd = crl__open_tmp(op, path, tmp, sizeof tmp);
  if (fd < 0) {
    crl__discard(tmpt);
    return fd;
  }
  if (crl__write_all(fd, hdr, hl) || crl__write_all(fd, src->data, nbytes)) {
    int e = errno;
    crl__discard(tmpt);
    return fail_tmp(fd, tmp, op, "write", path, e);
  }
  crl__discard(tmpt);
  if (close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return crl__err(CRL_EIO, "%s: cannot write '%s': %s", op, path,
                    strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return crl__err(CRL_EIO, "%s: cannot write '%s': %s", op, path,
                    strerror(e));
  }
  return 0;
}

/* ---- load / mmap ------------------------------------------------------------
 */

/* Open path and parse its header; checks the data size against the file
 * size. Returns the fd (caller closes) or a negative code. */
static int open_npy(const char *op, const char *path, int flags, crl_dtype *dt,
                    int *ndim, int64_t *shape, size_t *offset, size_t *nbytes) {
  if (!path) return crl__err(CRL_EINVAL, "%s: path is NULL", op);
  if (NPY_BIG_ENDIAN_HOST)
    return crl__err(CRL_EUNSUPPORTED, "%s: big-endian hosts are not supported",
                    op);
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0)
    return crl__err(CRL_EIO, "%s: cannot open '%s': %s", op, path,
                    strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return crl__err(CRL_EIO, "%s: cannot stat '%s': %s", op, path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return crl__err(CRL_EIO, "%s: '%s' is not a regular file", op, path);
  }
  size_t fsize = (size_t)st.st_size;
  /* read the fixed prefix, then exactly the header it announces */
  unsigned char pre[12];
  size_t npre = fsize < sizeof pre ? fsize : sizeof pre;
  char msg[1024];
  int rc = 0;
  unsigned char *hbuf = NULL;
  if (crl__pread_all(fd, pre, npre, 0) != 0) {
    rc = crl__err(CRL_EIO, "%s: cannot read '%s': %s", op, path,
                  strerror(errno));
    goto fail;
  }
  size_t want = npre;
  int ver = npre >= 8 ? pre[6] : 0;
  size_t plen = ver == 1 ? 10 : 12;
  if (npre >= plen && memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) == 0 && ver >= 1 &&
      ver <= 3) {
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (ver > 1) hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    if (hlen > NPY_MAX_HEADER) {
      rc = crl__err(CRL_EFORMAT,
                    "%s: '%s': header length %zu is larger than the %u bytes "
                    "allowed",
                    op, path, hlen, NPY_MAX_HEADER);
      goto fail;
    }
    want = plen + hlen;
    if (want > fsize) want = fsize; /* the parser reports the overrun */
  }
  hbuf = malloc(want ? want : 1);
  if (!hbuf) {
    rc = crl__err(CRL_ENOMEM, "%s: out of memory", op);
    goto fail;
  }
  if (crl__pread_all(fd, hbuf, want, 0) != 0) {
    rc = crl__err(CRL_EIO, "%s: cannot read '%s': %s", op, path,
                  strerror(errno));
    goto fail;
  }
  rc = crl_npy_parse_header(hbuf, want, dt, ndim, shape, offset);
  if (rc) {
    snprintf(msg, sizeof msg, "%s", crl_last_error());
    rc = crl__err(rc, "%s: '%s': %s", op, path, msg);
    goto fail;
  }
  *nbytes = (size_t)crl__numel(*ndim, shape) * crl_dtype_size(*dt);
  if (fsize - *offset != *nbytes) {
    char b[200];
    crl_shape_str(*ndim, shape, b, sizeof b);
    if (fsize - *offset < *nbytes)
      rc = crl__err(CRL_EFORMAT,
                    "%s: '%s' is truncated: shape %s of %s needs %zu bytes "
                    "of data after the %zu-byte header, the file has %zu",
                    op, path, b, crl_dtype_name(*dt), *nbytes, *offset,
                    fsize - *offset);
    else
      rc = crl__err(CRL_EFORMAT,
                    "%s: '%s' has %zu bytes of data after the %zu-byte "
                    "header, but shape %s of %s needs %zu",
                    op, path, fsize - *offset, *offset, b, crl_dtype_name(*dt),
                    *nbytes);
    goto fail;
  }
  free(hbuf);
  return fd;
fail:
  free(hbuf);
  close(fd);
  return rc;
}

crl_tensor *crl_tensor_load_npy(const char *path) {
  const char *op = "load_npy";
  crl_dtype dt;
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  size_t off, nbytes;
  int fd = open_npy(op, path, O_RDONLY, &dt, &ndim, shape, &off, &nbytes);
  if (fd < 0) return NULL;
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (!t) {
    close(fd);
    return NULL;
  }
  if (crl__pread_all(fd, t->data, nbytes, (int64_t)off) != 0) {
    int e = errno;
    close(fd);
    crl__discard(t);
    return CRL_ERR_NULL(CRL_EIO, "%s: cannot read '%s': %s", op, path,
                        strerror(e));
  }
  close(fd);
  if (dt == CRL_BOOL) { /* NumPy treats any non-zero byte as True */
    uint8_t *p = t->data;
    for (size_t i = 0; i < nbytes; i++)
      p[i] = p[i] != 0;
  }
  return t;
}

crl_tensor *crl_tensor_mmap_npy(const char *path, bool writable) {
  const char *op = "mmap_npy";
  crl_dtype dt;
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  size_t off, nbytes;
  int fd = open_npy(op, path, writable ? O_RDWR : O_RDONLY, &dt, &ndim, shape,
                    &off, &nbytes);
  if (fd < 0) return NULL;
  close(fd);
  crl_storage *s = crl_storage_new_mmap(path, off, nbytes, false, writable);
  if (!s) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", crl_last_error());
    return CRL_ERR_NULL(crl_last_error_code(), "%s: %s", op, msg);
  }
  crl_tensor *t = crl__view_of(s, dt, 0, ndim, shape, NULL);
  crl_storage_release(s);
  return t;
}

crl_tensor *crl_tensor_create_npy(const char *path, crl_dtype dt, int ndim,
                                  const int64_t *shape) {
  const char *op = "create_npy";
  if (!path) return CRL_ERR_NULL(CRL_EINVAL, "%s: path is NULL", op);
  if (!descr_of(dt))
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: invalid dtype %d", op, (int)dt);
  if (NPY_BIG_ENDIAN_HOST)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "%s: big-endian hosts are not supported", op);
  if (crl__check_shape(op, ndim, shape)) return NULL;
  char hdr[512];
  size_t hl = build_header(dt, ndim, shape, hdr, sizeof hdr);
  size_t nbytes = (size_t)crl__numel(ndim, shape) * crl_dtype_size(dt);
  char tmp[4096 + 64];
  int fd = crl__open_tmp(op, path, tmp, sizeof tmp);
  if (fd < 0) return NULL;
  if (crl__write_all(fd, hdr, hl) != 0) {
    fail_tmp(fd, tmp, op, "write", path, errno);
    return NULL;
  }
  if (ftruncate(fd, (off_t)(hl + nbytes)) != 0) {
    fail_tmp(fd, tmp, op, "size", path, errno);
    return NULL;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return CRL_ERR_NULL(CRL_EIO, "%s: cannot write '%s': %s", op, path,
                        strerror(e));
  }
  crl_storage *s = crl_storage_new_mmap(path, hl, nbytes, false, true);
  if (!s) return NULL;
  crl_tensor *t = crl__view_of(s, dt, 0, ndim, shape, NULL);
  crl_storage_release(s);
  return t;
}
