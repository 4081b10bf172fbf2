/* safetensors: round trips, the exact bytes written, a file written by hand
 * from the specification, every rejection of the loader, fuzzed files
 * (truncations and byte flips; run under ASan), and module loading. */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

#include "nn/nn_internal.h"

static char dir[64];

static const char *tpath(const char *name) {
  static char buf[4][128];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* A file: 8-byte length of the header padded with spaces to `pad` bytes
 * (0: no padding), the header, then data. */
static void write_st(const char *path, const char *hdr, size_t pad,
                     const void *data, size_t ndata) {
  size_t hl = strlen(hdr), n = pad > hl ? pad : hl;
  unsigned char *b = calloc(8 + n + ndata + 1, 1);
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, hdr, hl);
  memset(b + 8 + hl, ' ', n - hl);
  if (ndata) memcpy(b + 8 + n, data, ndata);
  write_file_bytes(path, b, 8 + n + ndata);
  free(b);
}

static crl_td *sample_td(void) {
  crl_td *td = crl_td_new(0, NULL);
  float w[6] = {1, -2, 3.5f, 4, 5, -6};
  double s = 2.25;
  int64_t l[4] = {1, -2, 1LL << 40, 7};
  int32_t i32[4] = {-1, 2, -3, 4};
  uint8_t u8[3] = {0, 128, 255};
  bool b[2] = {true, false};
  CRL_CHECK_OK(
      crl_td_set(td, "w", crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), w)));
  CRL_CHECK_OK(
      crl_td_set(td, "u8", crl_from_array(CRL_UINT8, CRL_SHAPE(3), u8)));
  CRL_CHECK_OK(crl_td_set(td, "s", crl_from_array(CRL_FLOAT64, 0, NULL, &s)));
  CRL_CHECK_OK(
      crl_td_set(td, "sub/l", crl_from_array(CRL_INT64, CRL_SHAPE(4), l)));
  CRL_CHECK_OK(crl_td_set(td, "sub/deep/i",
                          crl_from_array(CRL_INT32, CRL_SHAPE(2, 2), i32)));
  CRL_CHECK_OK(crl_td_set(td, "b", crl_from_array(CRL_BOOL, CRL_SHAPE(2), b)));
  CRL_CHECK_OK(
      crl_td_set(td, "empty", crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 3))));
  return td;
}

static void test_roundtrip(void **state) {
  (void)state;
  crl_td *td = sample_td();
  CRL_CHECK_OK(crl_td_save_safetensors(td, tpath("a.safetensors")));
  crl_td *back = crl_td_load_safetensors(tpath("a.safetensors"));
  CRL_CHECK_PTR(back);
  assert_int_equal(crl_td_batch_ndim(back), 0);
  assert_true(crl_td_equal(td, back));
  /* nested keys come back as nested TensorDicts, in the original order */
  crl_td *deep = crl_td_get_td(back, "sub/deep");
  CRL_CHECK_PTR(deep);
  crl_tensor *i = crl_td_get(deep, "i");
  CRL_CHECK_PTR(i);
  assert_int_equal(i->dtype, CRL_INT32);
  assert_shape(i, CRL_SHAPE(2, 2));
  crl_td_keys k;
  CRL_CHECK_OK(crl_td_keys_get(back, true, true, &k));
  const char *want[] = {"w", "u8", "s", "sub/l", "sub/deep/i", "b", "empty"};
  assert_int_equal(k.n, 7);
  for (int j = 0; j < 7; j++)
    assert_string_equal(k.keys[j], want[j]);
  crl_td_keys_free(&k);
  crl_tensor *s = crl_td_get(back, "s");
  assert_int_equal(s->ndim, 0);
  ASSERT_NEAR(crl_item(s), 2.25, 0);
  crl_tensor *l = crl_td_get(back, "sub/l");
  ASSERT_NEAR(crl_tensor_get_flat(l, 2), (double)(1LL << 40), 0);
  assert_shape(crl_td_get(back, "empty"), CRL_SHAPE(0, 3));
}

static void test_noncontiguous_and_grad(void **state) {
  (void)state;
  crl_td *td = crl_td_new(0, NULL);
  crl_tensor *a = crl_arange(CRL_FLOAT32, 0, 6, 1);
  crl_tensor *m = crl_reshape(a, CRL_SHAPE(2, 3));
  crl_tensor *t = crl_permute(m, 2, (const int[]){1, 0}); /* [3, 2] view */
  assert_false(crl_tensor_is_contiguous(t));
  crl_tensor *p = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_set_requires_grad(p, true);
  CRL_CHECK_OK(crl_td_set(td, "t", t));
  CRL_CHECK_OK(crl_td_set(td, "p", p));
  CRL_CHECK_OK(crl_td_save_safetensors(td, tpath("nc.safetensors")));
  crl_td *back = crl_td_load_safetensors(tpath("nc.safetensors"));
  CRL_CHECK_PTR(back);
  crl_tensor *tb = crl_td_get(back, "t");
  assert_shape(tb, CRL_SHAPE(3, 2));
  double e[6] = {0, 3, 1, 4, 2, 5};
  assert_tensor_values(tb, e, 6, 0);
  assert_false(crl_td_get(back, "p")->requires_grad);
  /* an empty TensorDict round-trips too */
  CRL_CHECK_OK(
      crl_td_save_safetensors(crl_td_new(0, NULL), tpath("e.safetensors")));
  crl_td *eb = crl_td_load_safetensors(tpath("e.safetensors"));
  CRL_CHECK_PTR(eb);
  assert_int_equal(crl_td_len(eb), 0);
}

/* The bytes the writer produces: header padded with spaces to a multiple of
 * 8, 8-byte data first (alignment), then 4-byte, then 1-byte elements. */
static void test_writer_bytes(void **state) {
  (void)state;
  crl_td *td = crl_td_new(0, NULL);
  float w[2] = {1.0f, 2.0f};
  uint8_t u = 7;
  int64_t l = -3;
  CRL_CHECK_OK(
      crl_td_set(td, "n/b", crl_from_array(CRL_UINT8, CRL_SHAPE(1), &u)));
  CRL_CHECK_OK(
      crl_td_set(td, "w", crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), w)));
  CRL_CHECK_OK(crl_td_set(td, "l", crl_from_array(CRL_INT64, 0, NULL, &l)));
  CRL_CHECK_OK(crl_td_save_safetensors(td, tpath("w.safetensors")));
  size_t n;
  unsigned char *b = read_file_bytes(tpath("w.safetensors"), &n);
  const char *hdr =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"n/b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[16,17]},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"l\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}";
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  assert_int_equal(n, 8 + padded + 17);
  uint64_t got = 0;
  for (int i = 7; i >= 0; i--)
    got = got << 8 | b[i];
  assert_int_equal(got, padded);
  assert_memory_equal(b + 8, hdr, hl);
  for (size_t i = hl; i < padded; i++)
    assert_int_equal(b[8 + i], ' ');
  const unsigned char data[17] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0x00, 0x00, 0x80, 0x3f,
                                  0x00, 0x00, 0x00, 0x40, 0x07};
  assert_memory_equal(b + 8 + padded, data, 17);
  free(b);
}

/* A file written by hand from the specification: data in a different order
 * than the header, BOOL data, metadata last, padding. */
static void test_handmade_file(void **state) {
  (void)state;
  static const unsigned char file[] = {
      /* header length 208 = 0xD0, u64 little endian */
      0xD0, 0, 0, 0, 0, 0, 0, 0,
      /* 201 bytes of JSON + 7 spaces */
      '{', '"', 'b', '/', 'c', '"', ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"',
      ':', '"', 'I', '6', '4', '"', ',', '"', 's', 'h', 'a', 'p', 'e', '"', ':',
      '[', '2', ']', ',', '"', 'd', 'a', 't', 'a', '_', 'o', 'f', 'f', 's', 'e',
      't', 's', '"', ':', '[', '0', ',', '1', '6', ']', '}', ',', '"', 'a', '"',
      ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"', ':', '"', 'F', '3', '2', '"',
      ',', '"', 's', 'h', 'a', 'p', 'e', '"', ':', '[', '2', ',', '1', ']', ',',
      '"', 'd', 'a', 't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':',
      '[', '1', '6', ',', '2', '4', ']', '}', ',', '"', 'z', '"', ':', '{', '"',
      'd', 't', 'y', 'p', 'e', '"', ':', '"', 'B', 'O', 'O', 'L', '"', ',', '"',
      's', 'h', 'a', 'p', 'e', '"', ':', '[', '3', ']', ',', '"', 'd', 'a', 't',
      'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '[', '2', '4', ',',
      '2', '7', ']', '}', ',', '"', '_', '_', 'm', 'e', 't', 'a', 'd', 'a', 't',
      'a', '_', '_', '"', ':', '{', '"', 'f', 'o', 'r', 'm', 'a', 't', '"', ':',
      '"', 'p', 't', '"', '}', '}', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
      /* byte buffer: I64 [5, -3], F32 [1.5, -2.0], BOOL [1, 0, 1] */
      0x05, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 1, 0, 1};
  assert_int_equal(sizeof file, 8 + 208 + 27);
  write_file_bytes(tpath("hand.safetensors"), file, sizeof file);
  crl_td *td = crl_td_load_safetensors(tpath("hand.safetensors"));
  CRL_CHECK_PTR(td);
  crl_tensor *c = crl_td_get(td, "b/c"), *a = crl_td_get(td, "a"),
             *z = crl_td_get(td, "z");
  CRL_CHECK_PTR(c);
  CRL_CHECK_PTR(a);
  CRL_CHECK_PTR(z);
  CRL_CHECK_PTR(crl_td_get_td(td, "b"));
  assert_int_equal(c->dtype, CRL_INT64);
  assert_int_equal(a->dtype, CRL_FLOAT32);
  assert_int_equal(z->dtype, CRL_BOOL);
  assert_shape(a, CRL_SHAPE(2, 1));
  assert_tensor_values(c, (double[]){5, -3}, 2, 0);
  assert_tensor_values(a, (double[]){1.5, -2.0}, 2, 0);
  assert_tensor_values(z, (double[]){1, 0, 1}, 3, 0);
  /* header order is kept: b, a, z */
  assert_string_equal(crl_td_key_at(td, 0, &(crl_tensor *){0}, &(crl_td *){0}),
                      "b");
}

typedef struct {
  const char *hdr;
  size_t pad;
  size_t ndata;
  const char *msg;
} bad_case;

static void test_rejections(void **state) {
  (void)state;
  unsigned char data[64];
  for (int i = 0; i < 64; i++)
    data[i] = (unsigned char)(i & 1);
#define E(shape, offs)                                                         \
  "{\"x\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}}"
  const bad_case cases[] = {
      {"", 0, 0, "does not start with '{'"},
      {" {}", 0, 0, "does not start with '{'"},
      {"{\"x\":", 0, 0, "not valid JSON"},
      {"{}garbage", 0, 0, "not valid JSON"},
      {"{\"x\":1,\"x\":2}", 0, 0, "not valid JSON"}, /* duplicate key */
      {"{\"x\":[]}", 0, 0, "'x' is not an object"},
      {"{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4,
       "'x' lacks \"dtype\""},
      {"{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 0, 4,
       "'x' lacks \"shape\""},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4,
       "'x' lacks \"data_offsets\""},
      {"{\"x\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4,
       "\"dtype\" is not a string"},
      {"{\"x\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 0, 2,
       "unsupported dtype 'F16'"},
      {E("3", "[0,4]"), 0, 4, "\"shape\" is not an array"},
      {E("[-1]", "[0,4]"), 0, 4, "shape[0] is not a non-negative integer"},
      {E("[1.5]", "[0,4]"), 0, 4, "shape[0] is not a non-negative integer"},
      {E("[1,1,1,1,1,1,1,1,1]", "[0,4]"), 0, 4, "has 9 dims"},
      {E("[4611686018427387904,4]", "[0,4]"), 0, 4, "shape is too large"},
      {E("[1]", "[0]"), 0, 4, "not a pair"},
      {E("[1]", "[0,4,8]"), 0, 4, "not a pair"},
      {E("[1]", "[-4,0]"), 0, 4, "not a pair"},
      {E("[1]", "[4,0]"), 0, 4, "end before they begin"},
      {E("[2]", "[0,4]"), 0, 4, "hold 4 bytes but F32 shape [2] needs 8"},
      {E("[1]", "[4,8]"), 0, 4, "run past the end of the 4-byte data buffer"},
      {E("[1]", "[0,4]"), 0, 6, "2 trailing bytes"},
      {E("[1]", "[2,6]"), 0, 6,
       "bytes [0, 2) of the data buffer belong to "
       "no tensor"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       0, 8, "overlaps"},
      {"{\"__metadata__\":{\"a\":1}}", 0, 0, "value of 'a' is not a string"},
      {"{\"__metadata__\":[]}", 0, 0, "\"__metadata__\" is not an object"},
      {"{\"x\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", 0,
       3, "BOOL element"}, /* data[2] is 0 ... see below */
      {"{\"a//b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0,
       1, "not a valid key"},
      {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
       "\"a/b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
       0, 2, "cannot be placed"},
      {"[1, 2]", 0, 0, "does not start with '{'"},
  };
#undef E
  data[2] = 2; /* an invalid BOOL byte */
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_st(tpath("bad.safetensors"), cases[i].hdr, cases[i].pad, data,
             cases[i].ndata);
    crl_clear_error();
    crl_td *td = crl_td_load_safetensors(tpath("bad.safetensors"));
    if (td) fail_msg("case %zu (%s) loaded", i, cases[i].hdr);
    if (crl_last_error_code() != CRL_EFORMAT)
      fail_msg("case %zu: code %d: %s", i, crl_last_error_code(),
               crl_last_error());
    if (!strstr(crl_last_error(), cases[i].msg))
      fail_msg("case %zu: '%s' lacks '%s'", i, crl_last_error(), cases[i].msg);
    assert_non_null(strstr(crl_last_error(), "load_safetensors"));
  }
  /* header length: absurd, past the end, file too short */
  unsigned char b[16] = {0};
  b[0] = 0x01;
  b[4] = 0x01; /* 2^32 + 1 */
  write_file_bytes(tpath("bad.safetensors"), b, 16);
  assert_null(crl_td_load_safetensors(tpath("bad.safetensors")));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS("exceeds the 100 MB limit");
  memset(b, 0, sizeof b);
  b[0] = 9; /* 9 bytes of header, 8 present */
  memcpy(b + 8, "{}      ", 8);
  write_file_bytes(tpath("bad.safetensors"), b, 16);
  assert_null(crl_td_load_safetensors(tpath("bad.safetensors")));
  CRL_ASSERT_ERR_HAS("header length 9 runs past the end of the file (16 "
                     "bytes)");
  write_file_bytes(tpath("bad.safetensors"), b, 5);
  assert_null(crl_td_load_safetensors(tpath("bad.safetensors")));
  CRL_ASSERT_ERR_HAS("the file is 5 bytes, shorter than the 8-byte header");
  /* a missing file is an I/O error naming it */
  assert_null(crl_td_load_safetensors(tpath("missing.safetensors")));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS("missing.safetensors");
  assert_null(crl_td_load_safetensors(dir));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  /* a header that is only metadata, padded: an empty TensorDict */
  write_st(tpath("ok.safetensors"), "{\"__metadata__\":{\"k\":\"v\"}}", 40,
           NULL, 0);
  crl_td *td = crl_td_load_safetensors(tpath("ok.safetensors"));
  CRL_CHECK_PTR(td);
  assert_int_equal(crl_td_len(td), 0);
}

/* Every truncation of a valid file fails cleanly; byte flips anywhere never
 * read out of bounds (ASan) and fail with CRL_EFORMAT when they fail. */
static void test_fuzz(void **state) {
  (void)state;
  crl_td *td = sample_td();
  CRL_CHECK_OK(crl_td_save_safetensors(td, tpath("f.safetensors")));
  size_t n;
  unsigned char *good = read_file_bytes(tpath("f.safetensors"), &n);
  unsigned char *b = malloc(n);
  for (size_t len = 0; len < n; len++) {
    write_file_bytes(tpath("g.safetensors"), good, len);
    crl_scope_begin();
    crl_td *t = crl_td_load_safetensors(tpath("g.safetensors"));
    if (t) fail_msg("truncation to %zu bytes loaded", len);
    if (crl_last_error_code() != CRL_EFORMAT)
      fail_msg("truncation to %zu: %s", len, crl_last_error());
    crl_scope_end();
  }
  const unsigned char flips[] = {0x01, 0x02, 0x10, 0x80, 0xff};
  int ok = 0, bad = 0;
  for (size_t pos = 0; pos < n; pos++)
    for (size_t f = 0; f < sizeof flips; f++) {
      memcpy(b, good, n);
      b[pos] ^= flips[f];
      write_file_bytes(tpath("g.safetensors"), b, n);
      crl_scope_begin();
      crl_td *t = crl_td_load_safetensors(tpath("g.safetensors"));
      if (t) {
        ok++;
      } else {
        bad++;
        if (crl_last_error_code() != CRL_EFORMAT)
          fail_msg("flip %02x at %zu: %s", flips[f], pos, crl_last_error());
      }
      crl_scope_end();
    }
  /* flips inside tensor data load; flips of structure fail */
  assert_true(ok > 0);
  assert_true(bad > 0);
  /* appending bytes is trailing garbage */
  unsigned char *c = malloc(n + 3);
  memcpy(c, good, n);
  memset(c + n, 0, 3);
  write_file_bytes(tpath("g.safetensors"), c, n + 3);
  assert_null(crl_td_load_safetensors(tpath("g.safetensors")));
  CRL_ASSERT_ERR_HAS("3 trailing bytes");
  free(c);
  free(b);
  free(good);
}

static void test_save_errors(void **state) {
  (void)state;
  crl_td *td = sample_td();
  CRL_CHECK_OK(crl_td_save_safetensors(td, tpath("keep.safetensors")));
  size_t n0;
  unsigned char *before = read_file_bytes(tpath("keep.safetensors"), &n0);
  /* a reserved key: rejected before anything is written */
  crl_td *bad = crl_td_new(0, NULL);
  CRL_CHECK_OK(
      crl_td_set(bad, "__metadata__", crl_zeros(CRL_FLOAT32, CRL_SHAPE(1))));
  assert_int_equal(crl_td_save_safetensors(bad, tpath("keep.safetensors")),
                   CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'__metadata__' is reserved");
  /* a key that is not UTF-8 */
  crl_td *bad2 = crl_td_new(0, NULL);
  CRL_CHECK_OK(
      crl_td_set(bad2, "\xff\xfe", crl_zeros(CRL_FLOAT32, CRL_SHAPE(1))));
  assert_int_equal(crl_td_save_safetensors(bad2, tpath("keep.safetensors")),
                   CRL_EKEY);
  CRL_ASSERT_ERR_HAS("not valid UTF-8");
  size_t n1;
  unsigned char *after = read_file_bytes(tpath("keep.safetensors"), &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0);
  free(before);
  free(after);
  /* a folder that does not exist: I/O error naming the path */
  assert_int_equal(crl_td_save_safetensors(td, tpath("no/such/x.safetensors")),
                   CRL_EIO);
  CRL_ASSERT_ERR_HAS("no/such/x.safetensors");
  /* overwriting replaces the file, and no temporary files remain */
  crl_td *small = crl_td_new(0, NULL);
  CRL_CHECK_OK(crl_td_set(small, "z", crl_ones(CRL_FLOAT64, CRL_SHAPE(1))));
  CRL_CHECK_OK(crl_td_save_safetensors(small, tpath("keep.safetensors")));
  crl_td *back = crl_td_load_safetensors(tpath("keep.safetensors"));
  CRL_CHECK_PTR(back);
  assert_true(crl_td_equal(back, small));
  DIR *d = opendir(dir);
  struct dirent *ent;
  while ((ent = readdir(d)))
    if (strstr(ent->d_name, ".tmp.")) fail_msg("left over: %s", ent->d_name);
  closedir(d);
  assert_int_equal(crl_td_save_safetensors(NULL, "x"), CRL_EINVAL);
}

/* ---- modules ---------------------------------------------------------------
 */

static int fwd_none(crl_module *m, crl_td *p, int nin, crl_tensor *const *in,
                    int nout, crl_tensor **out) {
  (void)m, (void)p, (void)nin, (void)nout;
  out[0] = crl_clone(in[0]);
  return out[0] ? 0 : -1;
}
static const crl_module_ops two_ops = {"two", fwd_none, NULL};

/* A module with parameters "w" [2, 3] and "sub/b" [3]. */
static crl_module *two_module(double fill) {
  crl_module *m = crl_module_new(&two_ops, NULL, 1, 1);
  crl_tensor *w = crl__module_add_param(m, "w", CRL_SHAPE(2, 3));
  crl_tensor *b = crl__module_add_param(m, "sub/b", CRL_SHAPE(3));
  CRL_CHECK_PTR(w);
  CRL_CHECK_PTR(b);
  crl_init_constant_(w, fill);
  crl_init_constant_(b, -fill);
  return m;
}

static void test_module_load(void **state) {
  (void)state;
  crl_module *src = two_module(1.5), *dst = two_module(0);
  CRL_CHECK_OK(
      crl_td_save_safetensors(crl_module_params(src), tpath("m.safetensors")));
  CRL_CHECK_OK(crl_module_load_safetensors(dst, tpath("m.safetensors")));
  assert_true(crl_td_equal(crl_module_params(src), crl_module_params(dst)));
  crl_tensor *w = crl_td_get(crl_module_params(dst), "w");
  assert_true(w->requires_grad);
  assert_null(w->grad_fn);

  crl_td *snap = crl_td_clone(crl_module_params(dst));
  /* a wrong shape: names the key and both shapes; nothing changes */
  crl_td *t = crl_td_new(0, NULL);
  CRL_CHECK_OK(crl_td_set(t, "w", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3, 2))));
  CRL_CHECK_OK(crl_td_set(t, "sub/b", crl_zeros(CRL_FLOAT32, CRL_SHAPE(3))));
  CRL_CHECK_OK(crl_td_save_safetensors(t, tpath("m2.safetensors")));
  assert_int_equal(crl_module_load_safetensors(dst, tpath("m2.safetensors")),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'w' has shape [3, 2] in the file but [2, 3]");
  assert_true(crl_td_equal(snap, crl_module_params(dst)));
  /* a wrong dtype */
  CRL_CHECK_OK(crl_td_set(t, "w", crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 3))));
  CRL_CHECK_OK(crl_td_save_safetensors(t, tpath("m2.safetensors")));
  assert_int_equal(crl_module_load_safetensors(dst, tpath("m2.safetensors")),
                   CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("'w' (shape [2, 3]) is float64 in the file but float32");
  /* a key the module lacks */
  CRL_CHECK_OK(crl_td_set(t, "w", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  CRL_CHECK_OK(crl_td_set(t, "extra", crl_zeros(CRL_FLOAT32, CRL_SHAPE(1))));
  CRL_CHECK_OK(crl_td_save_safetensors(t, tpath("m2.safetensors")));
  assert_int_equal(crl_module_load_safetensors(dst, tpath("m2.safetensors")),
                   CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'extra'");
  /* a parameter the file lacks */
  CRL_CHECK_OK(crl_td_del(t, "extra"));
  CRL_CHECK_OK(crl_td_del(t, "sub"));
  CRL_CHECK_OK(crl_td_save_safetensors(t, tpath("m2.safetensors")));
  assert_int_equal(crl_module_load_safetensors(dst, tpath("m2.safetensors")),
                   CRL_EKEY);
  CRL_ASSERT_ERR_HAS("no entry for parameter 'sub/b' (shape [3])");
  assert_true(crl_td_equal(snap, crl_module_params(dst)));
  /* a corrupt file */
  write_file_bytes(tpath("m3.safetensors"), "xx", 2);
  assert_int_equal(crl_module_load_safetensors(dst, tpath("m3.safetensors")),
                   CRL_EFORMAT);
  assert_true(crl_td_equal(snap, crl_module_params(dst)));
  /* loading works inside a grad-recording step */
  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(1));
  crl_set_requires_grad(x, true);
  CRL_CHECK_OK(crl_module_load_safetensors(dst, tpath("m.safetensors")));
  assert_true(crl_td_equal(crl_module_params(src), crl_module_params(dst)));
}

static int setup_dir(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/crl_st_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  (void)state;
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_roundtrip),    CRL_TEST(test_noncontiguous_and_grad),
      CRL_TEST(test_writer_bytes), CRL_TEST(test_handmade_file),
      CRL_TEST(test_rejections),   CRL_TEST(test_fuzz),
      CRL_TEST(test_save_errors),  CRL_TEST(test_module_load),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
