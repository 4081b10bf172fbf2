/* TensorDict memory: share_memory_ (fork), memmap_ / load_memmap (.npy
 * folders with meta.json). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "test_util.h"

/* ---- temporary folders ------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

typedef struct {
  char path[64];
} tmpdir;

static tmpdir tmp_new(void) {
  tmpdir d;
  snprintf(d.path, sizeof d.path, "/tmp/crl_td_memmap_XXXXXX");
  if (!mkdtemp(d.path)) fail_msg("mkdtemp: %s", strerror(errno));
  return d;
}

static void tmp_free(tmpdir *d) {
  nftw(d->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *pjoin(const tmpdir *d, const char *rel) {
  static char buf[4][256];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, 256, "%s/%s", d->path, rel);
  return b;
}

/* ---- a TensorDict holding every dtype ---------------------------------- */

static crl_tensor *filled(crl_dtype dt, int ndim, const int64_t *shape,
                          double scale, double shift) {
  crl_tensor *t = crl_empty(dt, ndim, shape);
  for (int64_t i = 0; i < t->numel; i++) {
    double v = dt == CRL_BOOL ? (double)((i * 7 + (int)shift) % 3 == 0)
                              : i * scale + shift;
    crl_tensor_set_flat(t, i, v);
  }
  return t;
}

static const char *const KEYS[] = {
    "f32",           "f64",    "i64",   "next/i32", "next/obs/u8",
    "next/obs/flag", "scalar", "empty", "wide/w",
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

static crl_td *make_td(void) {
  crl_td *td = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(
      crl_td_set(td, "f32", filled(CRL_FLOAT32, CRL_SHAPE(3, 2), 0.5, -1)));
  CRL_CHECK_OK(
      crl_td_set(td, "f64", filled(CRL_FLOAT64, CRL_SHAPE(3), 1e-3, 1e10)));
  CRL_CHECK_OK(
      crl_td_set(td, "i64", filled(CRL_INT64, CRL_SHAPE(3, 1), 1e12, -5e12)));
  CRL_CHECK_OK(crl_td_set(td, "next/i32",
                          filled(CRL_INT32, CRL_SHAPE(3, 2, 2), -3, 100)));
  CRL_CHECK_OK(
      crl_td_set(td, "next/obs/u8", filled(CRL_UINT8, CRL_SHAPE(3, 4), 17, 1)));
  CRL_CHECK_OK(
      crl_td_set(td, "next/obs/flag", filled(CRL_BOOL, CRL_SHAPE(3, 5), 0, 1)));
  CRL_CHECK_OK(
      crl_td_set(td, "scalar", filled(CRL_FLOAT32, CRL_SHAPE(3), 1, 0.25)));
  CRL_CHECK_OK(
      crl_td_set(td, "empty", crl_empty(CRL_FLOAT32, CRL_SHAPE(3, 0))));
  crl_td *wide = crl_td_new(CRL_SHAPE(3, 2));
  CRL_CHECK_OK(
      crl_td_set(wide, "w", filled(CRL_FLOAT64, CRL_SHAPE(3, 2), 2, 0)));
  CRL_CHECK_OK(crl_td_set_td(td, "wide", wide));
  crl_td *none = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(crl_td_set_td(td, "nothing", none)); /* empty nested */
  return td;
}

static void assert_same_tensor(const crl_tensor *a, const crl_tensor *b,
                               const char *key) {
  if (a->dtype != b->dtype)
    fail_msg("%s: dtype %s vs %s", key, crl_dtype_name(a->dtype),
             crl_dtype_name(b->dtype));
  assert_shape(a, b->ndim, b->shape);
  for (int64_t i = 0; i < a->numel; i++) {
    double x = crl_tensor_get_flat(a, i), y = crl_tensor_get_flat(b, i);
    if (x != y) fail_msg("%s[%lld]: %.17g vs %.17g", key, (long long)i, x, y);
  }
}

static void assert_same_td(const crl_td *a, const crl_td *b) {
  crl_td_keys ka, kb;
  CRL_CHECK_OK(crl_td_keys_get(a, true, false, &ka));
  CRL_CHECK_OK(crl_td_keys_get(b, true, false, &kb));
  assert_int_equal(ka.n, kb.n);
  for (int i = 0; i < ka.n; i++) {
    assert_string_equal(ka.keys[i], kb.keys[i]); /* same order */
    crl_tensor *ta = crl_td_find(a, ka.keys[i]),
               *tb = crl_td_find(b, kb.keys[i]);
    if (ta || tb) {
      assert_non_null(ta);
      assert_non_null(tb);
      assert_same_tensor(ta, tb, ka.keys[i]);
    } else {
      crl_td *sa = crl_td_get_td(a, ka.keys[i]),
             *sb = crl_td_get_td(b, kb.keys[i]);
      assert_int_equal(crl_td_batch_ndim(sa), crl_td_batch_ndim(sb));
      for (int d = 0; d < crl_td_batch_ndim(sa); d++)
        assert_int_equal(crl_td_batch_size(sa)[d], crl_td_batch_size(sb)[d]);
    }
  }
  crl_td_keys_free(&ka);
  crl_td_keys_free(&kb);
  assert_int_equal(crl_td_batch_ndim(a), crl_td_batch_ndim(b));
  for (int d = 0; d < crl_td_batch_ndim(a); d++)
    assert_int_equal(crl_td_batch_size(a)[d], crl_td_batch_size(b)[d]);
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  crl_td *ref = crl_td_new(CRL_SHAPE(3)); /* heap copies to compare */
  for (int i = 0; i < NKEYS; i++) {
    crl_tensor *t = crl_td_get(td, KEYS[i]);
    crl_tensor *c = crl_empty_like(t);
    CRL_CHECK_OK(crl_copy_(c, t));
    CRL_CHECK_OK(crl_td_set(ref, KEYS[i], c));
  }
  crl_tensor *before = crl_td_get(td, "f32");
  char folder[300];
  snprintf(folder, sizeof folder, "%s/sub/dir", d.path); /* created */
  CRL_CHECK_OK(crl_td_memmap_(td, folder));
  /* entries are now memory-mapped views of the files */
  for (int i = 0; i < NKEYS; i++) {
    crl_tensor *t = crl_td_get(td, KEYS[i]);
    assert_int_equal(t->storage->kind, CRL_STORAGE_MMAP);
    char want[400];
    snprintf(want, sizeof want, "%s/%s.npy", folder, KEYS[i]);
    assert_string_equal(t->storage->path, want);
    assert_same_tensor(t, crl_td_get(ref, KEYS[i]), KEYS[i]);
  }
  assert_ptr_not_equal(crl_td_get(td, "f32"), before);
  assert_true(crl_td_contains(td, "nothing"));

  crl_td *back = crl_td_load_memmap(folder, false);
  CRL_CHECK_PTR(back);
  assert_same_td(back, td);
  crl_td *bw = crl_td_get_td(back, "wide");
  assert_int_equal(crl_td_batch_ndim(bw), 2);
  assert_int_equal(crl_td_batch_size(bw)[1], 2);
  assert_int_equal(crl_td_len(crl_td_get_td(back, "nothing")), 0);
  /* read-only: writes refused, nothing written */
  crl_tensor *f = crl_td_get(back, "f32");
  assert_false(f->storage->writable);
  assert_int_equal(crl_tensor_set_flat(f, 0, 9), CRL_EIO);
  ASSERT_NEAR(crl_tensor_get_flat(f, 0), -1, 0);
  tmp_free(&d);
}

static void test_batch_scalar_td(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = crl_td_new(CRL_SCALAR); /* batch [] */
  CRL_CHECK_OK(crl_td_set(td, "s", crl_scalar(CRL_FLOAT64, 3.25)));
  CRL_CHECK_OK(crl_td_set(td, "v", crl_arange(CRL_INT32, 0, 5, 1)));
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  crl_td *back = crl_td_load_memmap(d.path, true);
  CRL_CHECK_PTR(back);
  assert_int_equal(crl_td_batch_ndim(back), 0);
  ASSERT_NEAR(crl_item(crl_td_get(back, "s")), 3.25, 0);
  assert_int_equal(crl_td_get(back, "s")->ndim, 0);
  assert_same_td(back, td);
  tmp_free(&d);
}

/* ---- NumPy's .npy rules, checked on the bytes ---------------------------- */

static void check_npy(const char *path, const char *descr, const char *shape,
                      const crl_tensor *vals) {
  size_t len;
  unsigned char *b = read_file_bytes(path, &len);
  assert_true(len >= 10);
  assert_memory_equal(b, "\x93NUMPY", 6); /* magic */
  assert_int_equal(b[6], 1);              /* version 1.0 */
  assert_int_equal(b[7], 0);
  size_t hlen = (size_t)b[8] | (size_t)b[9] << 8; /* little-endian u16 */
  size_t data = 10 + hlen;
  assert_int_equal(data % 64, 0); /* data aligned to 64 bytes */
  assert_true(data <= len);
  assert_int_equal(b[data - 1], '\n'); /* header ends with a newline */
  char *h = malloc(hlen + 1);
  memcpy(h, b + 10, hlen);
  h[hlen] = 0;
  /* the dict literal NumPy writes, then space padding */
  char want[200];
  snprintf(want, sizeof want,
           "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
           shape);
  if (strncmp(h, want, strlen(want)) != 0)
    fail_msg("%s: header '%s', expected it to start with '%s'", path, h, want);
  for (size_t i = strlen(want); i + 1 < hlen; i++)
    assert_int_equal(h[i], ' ');
  /* C-order data, exactly numel * itemsize bytes */
  size_t nbytes = (size_t)vals->numel * crl_dtype_size(vals->dtype);
  assert_int_equal(len - data, nbytes);
  crl_tensor *c = crl_contiguous(crl_detach((crl_tensor *)vals));
  if (nbytes) assert_memory_equal(b + data, c->data, nbytes);
  free(h);
  free(b);
}

static void test_npy_files(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  /* a non-contiguous leaf is written in C (logical) order */
  crl_tensor *m = filled(CRL_FLOAT32, CRL_SHAPE(2, 3), 1, 0);
  crl_td *td2 = crl_td_new(CRL_SHAPE(3));
  CRL_CHECK_OK(crl_td_set(td2, "t", crl_permute(m, 2, (int[]){1, 0})));
  crl_tensor *tref = crl_contiguous(crl_permute(m, 2, (int[]){1, 0}));
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  check_npy(pjoin(&d, "f32.npy"), "<f4", "(3, 2)", crl_td_get(td, "f32"));
  check_npy(pjoin(&d, "f64.npy"), "<f8", "(3,)", crl_td_get(td, "f64"));
  check_npy(pjoin(&d, "i64.npy"), "<i8", "(3, 1)", crl_td_get(td, "i64"));
  check_npy(pjoin(&d, "next/i32.npy"), "<i4", "(3, 2, 2)",
            crl_td_get(td, "next/i32"));
  check_npy(pjoin(&d, "next/obs/u8.npy"), "|u1", "(3, 4)",
            crl_td_get(td, "next/obs/u8"));
  check_npy(pjoin(&d, "next/obs/flag.npy"), "|b1", "(3, 5)",
            crl_td_get(td, "next/obs/flag"));
  check_npy(pjoin(&d, "empty.npy"), "<f4", "(3, 0)", crl_td_get(td, "empty"));
  check_npy(pjoin(&d, "wide/w.npy"), "<f8", "(3, 2)", crl_td_get(td, "wide/w"));
  tmpdir d2 = tmp_new();
  CRL_CHECK_OK(crl_td_memmap_(td2, d2.path));
  check_npy(pjoin(&d2, "t.npy"), "<f4", "(3, 2)", tref);
  tmpdir d3 = tmp_new();
  crl_td *td3 = crl_td_new(CRL_SCALAR);
  CRL_CHECK_OK(crl_td_set(td3, "s", crl_scalar(CRL_INT64, -42)));
  CRL_CHECK_OK(crl_td_memmap_(td3, d3.path));
  check_npy(pjoin(&d3, "s.npy"), "<i8", "()", crl_td_get(td3, "s"));
  tmp_free(&d);
  tmp_free(&d2);
  tmp_free(&d3);
}

static void test_meta_json(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  json_error_t e;
  json_t *m = json_load_file(pjoin(&d, "meta.json"), 0, &e);
  if (!m) fail_msg("meta.json: %s", e.text);
  assert_string_equal(json_string_value(json_object_get(m, "format")),
                      "crl.td.memmap");
  assert_int_equal(json_integer_value(json_object_get(m, "version")), 1);
  assert_string_equal(json_string_value(json_object_get(m, "device")), "cpu");
  json_t *bs = json_object_get(m, "batch_size");
  assert_int_equal(json_array_size(bs), 1);
  assert_int_equal(json_integer_value(json_array_get(bs, 0)), 3);
  json_t *ents = json_object_get(m, "entries");
  const char *order[] = {"f32",    "f64",   "i64",  "next",
                         "scalar", "empty", "wide", "nothing"};
  assert_int_equal(json_array_size(ents), 8);
  for (int i = 0; i < 8; i++)
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(ents, i), "key")),
        order[i]);
  json_t *f32 = json_array_get(ents, 0);
  assert_string_equal(json_string_value(json_object_get(f32, "type")),
                      "tensor");
  assert_string_equal(json_string_value(json_object_get(f32, "dtype")),
                      "float32");
  assert_int_equal(json_array_size(json_object_get(f32, "shape")), 2);
  json_t *next = json_array_get(ents, 3);
  assert_string_equal(json_string_value(json_object_get(next, "type")),
                      "tensordict");
  json_t *ne = json_object_get(next, "entries");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(ne, 1), "key")), "obs");
  json_decref(m);
  tmp_free(&d);
}

/* ---- corrupted folders --------------------------------------------------- */

/* Rewrite meta.json with a jansson edit applied. */
typedef void (*meta_edit)(json_t *m);

static void edit_meta(const tmpdir *d, meta_edit fn) {
  json_error_t e;
  json_t *m = json_load_file(pjoin(d, "meta.json"), 0, &e);
  if (!m) fail_msg("meta.json: %s", e.text);
  fn(m);
  json_dump_file(m, pjoin(d, "meta.json"), JSON_INDENT(1));
  json_decref(m);
}

static json_t *entry(json_t *m, int i) {
  return json_array_get(json_object_get(m, "entries"), (size_t)i);
}
static void drop_batch(json_t *m) { json_object_del(m, "batch_size"); }
static void batch_string(json_t *m) {
  json_object_set_new(m, "batch_size", json_string("3"));
}
static void batch_negative(json_t *m) {
  json_array_set_new(json_object_get(m, "batch_size"), 0, json_integer(-3));
}
static void drop_entries(json_t *m) { json_object_del(m, "entries"); }
static void shape_string(json_t *m) {
  json_object_set_new(entry(m, 0), "shape", json_string("abc"));
}
static void dtype_int(json_t *m) {
  json_object_set_new(entry(m, 0), "dtype", json_integer(4));
}
static void dtype_unknown(json_t *m) {
  json_object_set_new(entry(m, 0), "dtype", json_string("complex64"));
}
static void key_dotdot(json_t *m) {
  json_object_set_new(entry(m, 0), "key", json_string(".."));
}
static void key_slash(json_t *m) {
  json_object_set_new(entry(m, 0), "key", json_string("../f32"));
}
static void key_missing(json_t *m) { json_object_del(entry(m, 1), "key"); }
static void key_repeat(json_t *m) {
  json_object_set_new(entry(m, 1), "key", json_string("f32"));
}
static void type_bad(json_t *m) {
  json_object_set_new(entry(m, 0), "type", json_string("list"));
}
static void version_2(json_t *m) {
  json_object_set_new(m, "version", json_integer(2));
}
static void format_bad(json_t *m) {
  json_object_set_new(m, "format", json_string("tensordict"));
}
static void device_cuda(json_t *m) {
  json_object_set_new(m, "device", json_string("cuda:0"));
}
static void entries_object(json_t *m) {
  json_object_set_new(m, "entries", json_object());
}
static void meta_shape_wrong(json_t *m) { /* meta says [3, 3], file [3, 2] */
  json_array_set_new(json_object_get(entry(m, 0), "shape"), 1, json_integer(3));
}
static void batch_not_prefix(json_t *m) {
  json_array_set_new(json_object_get(entry(m, 0), "shape"), 0, json_integer(4));
}
static void sub_batch_bad(json_t *m) { /* nested "next" with batch [5] */
  json_array_set_new(json_object_get(entry(m, 3), "batch_size"), 0,
                     json_integer(5));
}

static void expect_refused(const tmpdir *d, meta_edit fn, int code,
                           const char *msg1, const char *msg2) {
  crl_td *td = make_td();
  CRL_CHECK_OK(crl_td_memmap_(td, d->path));
  if (fn) edit_meta(d, fn);
  crl_clear_error();
  crl_td *back = crl_td_load_memmap(d->path, false);
  if (back) fail_msg("load succeeded, expected '%s'", msg1);
  if (crl_last_error_code() != code)
    fail_msg("code %d, expected %d: %s", crl_last_error_code(), code,
             crl_last_error());
  CRL_ASSERT_ERR_HAS("td_load_memmap");
  if (msg1) CRL_ASSERT_ERR_HAS(msg1);
  if (msg2) CRL_ASSERT_ERR_HAS(msg2);
}

static void test_corrupt_meta(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  char meta[300];
  snprintf(meta, sizeof meta, "%s/meta.json", d.path);
  expect_refused(&d, drop_batch, CRL_EFORMAT, meta, "no 'batch_size' field");
  expect_refused(&d, batch_string, CRL_EFORMAT, "'batch_size' of the root",
                 "must be an array of integers, not a string");
  expect_refused(&d, batch_negative, CRL_EFORMAT,
                 "dim 0 is not a "
                 "non-negative integer",
                 NULL);
  expect_refused(&d, drop_entries, CRL_EFORMAT, "no 'entries' field", NULL);
  expect_refused(&d, entries_object, CRL_EFORMAT,
                 "'entries' of the root must be an array", NULL);
  expect_refused(&d, shape_string, CRL_EFORMAT, "'shape' of 'f32'",
                 "must be an array");
  expect_refused(&d, dtype_int, CRL_EFORMAT,
                 "'dtype' of 'f32' must be a "
                 "string",
                 NULL);
  expect_refused(&d, dtype_unknown, CRL_EFORMAT, "unknown dtype 'complex64'",
                 NULL);
  expect_refused(&d, key_dotdot, CRL_EFORMAT, "invalid key '..'", NULL);
  expect_refused(&d, key_slash, CRL_EFORMAT, "invalid key '../f32'", NULL);
  expect_refused(&d, key_missing, CRL_EFORMAT,
                 "entry 1 of the root has no 'key'", NULL);
  expect_refused(&d, key_repeat, CRL_EFORMAT, "repeats the key 'f32'", NULL);
  expect_refused(&d, type_bad, CRL_EFORMAT, "type 'list'", NULL);
  expect_refused(&d, version_2, CRL_EFORMAT, "version 2 is not supported",
                 NULL);
  expect_refused(&d, format_bad, CRL_EFORMAT, "'format' is 'tensordict'", NULL);
  expect_refused(&d, device_cuda, CRL_EUNSUPPORTED, "device 'cuda:0'", NULL);
  expect_refused(&d, batch_not_prefix, CRL_EFORMAT,
                 "entry 'f32' has shape [4, 2]", "batch size [3]");
  expect_refused(&d, sub_batch_bad, CRL_EFORMAT,
                 "nested 'next' has batch size [5]", NULL);
  /* a dtype/shape that disagrees with the file: names key, both shapes */
  expect_refused(&d, meta_shape_wrong, CRL_EFORMAT, "entry 'f32'",
                 "float32 of shape [3, 2] but");
  CRL_ASSERT_ERR_HAS("says float32 of shape [3, 3]");

  /* invalid JSON: cut the file in half; and not JSON at all */
  crl_td *td = make_td();
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  size_t len;
  char *text = read_file_bytes(meta, &len);
  write_file_bytes(meta, text, len / 2);
  assert_null(crl_td_load_memmap(d.path, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(meta);
  CRL_ASSERT_ERR_HAS("not valid JSON");
  CRL_ASSERT_ERR_HAS("line");
  write_file_bytes(meta, "[1, 2]", 6);
  assert_null(crl_td_load_memmap(d.path, false));
  CRL_ASSERT_ERR_HAS("top level is not an object");
  write_file_bytes(meta, "", 0);
  assert_null(crl_td_load_memmap(d.path, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  free(text);
  /* no folder at all */
  assert_null(crl_td_load_memmap("/nonexistent/crl/folder", false));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS("/nonexistent/crl/folder/meta.json");
  assert_null(crl_td_load_memmap(NULL, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  tmp_free(&d);
}

static void test_corrupt_npy(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  crl_td_keys before;
  CRL_CHECK_OK(crl_td_keys_get(td, true, false, &before));

  /* a missing .npy */
  char *u8 = pjoin(&d, "next/obs/u8.npy");
  size_t len;
  unsigned char *orig = read_file_bytes(u8, &len);
  assert_int_equal(unlink(u8), 0);
  assert_null(crl_td_load_memmap(d.path, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(u8);
  CRL_ASSERT_ERR_HAS("entry 'next/obs/u8'");
  CRL_ASSERT_ERR_HAS("is missing");

  /* truncated data, truncated header, empty file, garbage */
  size_t cuts[] = {len - 1, 64, 9, 3, 0};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    write_file_bytes(u8, orig, cuts[i]);
    crl_clear_error();
    assert_null(crl_td_load_memmap(d.path, false));
    assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
    CRL_ASSERT_ERR_HAS(u8);
    CRL_ASSERT_ERR_HAS("entry 'next/obs/u8'");
  }
  write_file_bytes(u8, orig, len - 1);
  assert_null(crl_td_load_memmap(d.path, true));
  CRL_ASSERT_ERR_HAS("truncated");
  /* a header that claims more than the file holds */
  unsigned char *bad = malloc(len);
  memcpy(bad, orig, len);
  bad[8] = 0xff;
  bad[9] = 0x7f;
  write_file_bytes(u8, bad, len);
  assert_null(crl_td_load_memmap(d.path, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  /* a valid .npy of another shape or dtype in place of the right one */
  CRL_CHECK_OK(crl_tensor_save_npy(crl_zeros(CRL_UINT8, CRL_SHAPE(3, 5)), u8));
  assert_null(crl_td_load_memmap(d.path, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS("entry 'next/obs/u8'");
  CRL_ASSERT_ERR_HAS("uint8 of shape [3, 5]");
  CRL_ASSERT_ERR_HAS("says uint8 of shape [3, 4]");
  CRL_CHECK_OK(crl_tensor_save_npy(crl_zeros(CRL_INT32, CRL_SHAPE(3, 4)), u8));
  assert_null(crl_td_load_memmap(d.path, false));
  CRL_ASSERT_ERR_HAS("int32 of shape [3, 4] but");
  /* restored: loads again */
  write_file_bytes(u8, orig, len);
  crl_td *back = crl_td_load_memmap(d.path, false);
  CRL_CHECK_PTR(back);
  assert_same_td(back, td);
  /* the TensorDict that was memory-mapped is untouched by all of this */
  crl_td_keys after;
  CRL_CHECK_OK(crl_td_keys_get(td, true, false, &after));
  assert_int_equal(before.n, after.n);
  crl_td_keys_free(&before);
  crl_td_keys_free(&after);
  free(bad);
  free(orig);
  tmp_free(&d);
}

/* ---- writes land in the files ------------------------------------------- */

static void test_write_through(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  /* writes into the memory-mapped TensorDict */
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(td, "f32"), 3, 123.5));
  CRL_CHECK_OK(
      crl_td_set_(td, "next/i32", crl_full(CRL_INT32, CRL_SHAPE(3, 2, 2), -9)));
  crl_td *a = crl_td_load_memmap(d.path, true);
  CRL_CHECK_PTR(a);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(a, "f32"), 3), 123.5, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(a, "next/i32"), 11), -9, 0);
  /* writes into a loaded writable TensorDict, seen after reloading */
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(a, "wide/w"), 5, -0.125));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(a, "next/obs/flag"), 0, 0));
  CRL_CHECK_OK(crl_tensor_set_flat(crl_td_get(a, "i64"), 2, 1e15));
  crl_td *b = crl_td_load_memmap(d.path, false);
  CRL_CHECK_PTR(b);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(b, "wide/w"), 5), -0.125, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(b, "next/obs/flag"), 0), 0, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(b, "i64"), 2), 1e15, 0);
  /* the first TensorDict maps the same files: it sees them too */
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "wide/w"), 5), -0.125, 0);
  /* and a plain .npy load (a copy) agrees */
  crl_tensor *w = crl_tensor_load_npy(pjoin(&d, "wide/w.npy"));
  CRL_CHECK_PTR(w);
  ASSERT_NEAR(crl_tensor_get_flat(w, 5), -0.125, 0);
  /* memmap_ again into the same folder, over live mappings */
  CRL_CHECK_OK(crl_td_memmap_(a, d.path));
  crl_td *c = crl_td_load_memmap(d.path, false);
  CRL_CHECK_PTR(c);
  assert_same_td(c, b);
  tmp_free(&d);
}

static void test_memmap_errors(void **state) {
  (void)state;
  tmpdir d = tmp_new();
  crl_td *td = make_td();
  crl_tensor *f32 = crl_td_get(td, "f32");
  /* the folder is a file */
  write_file_bytes(pjoin(&d, "file"), "x", 1);
  assert_int_equal(crl_td_memmap_(td, pjoin(&d, "file")), CRL_EIO);
  CRL_ASSERT_ERR_HAS("td_memmap_");
  CRL_ASSERT_ERR_HAS("file");
  assert_ptr_equal(crl_td_get(td, "f32"), f32); /* unchanged */
  assert_int_equal(f32->storage->kind, CRL_STORAGE_HEAP);
  /* a key that cannot be a file name */
  CRL_CHECK_OK(crl_td_set(td, "next/..", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  assert_int_equal(crl_td_memmap_(td, d.path), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'next/..'");
  assert_ptr_equal(crl_td_get(td, "f32"), f32);
  CRL_CHECK_OK(crl_td_del(td, "next/.."));
  /* a nested TensorDict whose folder would be a leaf's file, or meta.json */
  CRL_CHECK_OK(
      crl_td_set(td, "f32.npy/x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  assert_int_equal(crl_td_memmap_(td, d.path), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("nested key 'f32.npy'");
  CRL_CHECK_OK(crl_td_del(td, "f32.npy"));
  CRL_CHECK_OK(
      crl_td_set(td, "meta.json/x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  assert_int_equal(crl_td_memmap_(td, d.path), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("nested key 'meta.json'");
  assert_ptr_equal(crl_td_get(td, "f32"), f32);
  /* deeper down, meta.json is an ordinary name */
  CRL_CHECK_OK(crl_td_del(td, "meta.json"));
  CRL_CHECK_OK(
      crl_td_set(td, "next/meta.json/x", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  CRL_CHECK_OK(crl_td_memmap_(td, d.path));
  crl_td *back = crl_td_load_memmap(d.path, false);
  CRL_CHECK_PTR(back);
  assert_same_td(back, td);
  assert_int_equal(crl_td_memmap_(td, ""), CRL_EINVAL);
  assert_int_equal(crl_td_memmap_(NULL, d.path), CRL_EINVAL);
  tmp_free(&d);
}

/* ---- shared memory ------------------------------------------------------- */

static void test_share_memory_fork(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(4));
  crl_tensor *x = filled(CRL_FLOAT32, CRL_SHAPE(4, 3), 1, 0);
  crl_tensor *p = filled(CRL_FLOAT64, CRL_SHAPE(4), 1, 0);
  CRL_CHECK_OK(crl_set_requires_grad(p, true));
  CRL_CHECK_OK(crl_td_set(td, "obs", x));
  CRL_CHECK_OK(crl_td_set(td, "next/obs", x)); /* one tensor, two keys */
  CRL_CHECK_OK(
      crl_td_set(td, "next/count", crl_zeros(CRL_INT64, CRL_SHAPE(4))));
  CRL_CHECK_OK(crl_td_set(td, "param", p));
  CRL_CHECK_OK(crl_td_share_memory_(td));
  crl_tensor *s = crl_td_get(td, "obs");
  assert_ptr_not_equal(s, x);
  assert_int_equal(s->storage->kind, CRL_STORAGE_SHM);
  assert_ptr_equal(crl_td_get(td, "next/obs"), s); /* still one tensor */
  assert_same_tensor(s, x, "obs");
  assert_int_equal(crl_td_get(td, "next/count")->storage->kind,
                   CRL_STORAGE_SHM);
  assert_true(crl_td_get(td, "param")->requires_grad);
  /* already shared: a no-op */
  CRL_CHECK_OK(crl_td_share_memory_(td));
  assert_ptr_equal(crl_td_get(td, "obs"), s);

  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    crl_tensor *o = crl_td_find(td, "obs");
    crl_tensor *c = crl_td_find(td, "next/count");
    int bad = 0;
    for (int64_t i = 0; i < o->numel; i++)
      bad |= crl_tensor_set_flat(o, i, 100.0 + (double)i);
    for (int64_t i = 0; i < 4; i++)
      bad |= crl_tensor_set_flat(c, i, (double)(i * i));
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (int64_t i = 0; i < 12; i++)
    ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "next/obs"), i),
                100.0 + (double)i, 0);
  for (int64_t i = 0; i < 4; i++)
    ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "next/count"), i),
                (double)(i * i), 0);
  /* the original heap tensor was not written */
  ASSERT_NEAR(crl_tensor_get_flat(x, 5), 5, 0);
  assert_int_equal(crl_td_share_memory_(NULL), CRL_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_roundtrip),         CRL_TEST(test_batch_scalar_td),
      CRL_TEST(test_npy_files),         CRL_TEST(test_meta_json),
      CRL_TEST(test_corrupt_meta),      CRL_TEST(test_corrupt_npy),
      CRL_TEST(test_write_through),     CRL_TEST(test_memmap_errors),
      CRL_TEST(test_share_memory_fork),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
