/* .npy files: round trips, NumPy's exact bytes, mmap, and malformed input. */
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static const char *tpath(const char *name) {
  static char buf[4][512];
  static int k;
  char *p = buf[k++ & 3];
  snprintf(p, 512, "%s/%s", g_dir, name);
  return p;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/crl_test_npy_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  DIR *d = opendir(g_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[600];
      snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(g_dir);
  return 0;
}

/* Bytes of np.save('x.npy', np.array([[1.5, -2], [3, 4.25], [0, 7]],
 * dtype='<f4')) with NumPy 1.24. */
static const unsigned char numpy_f32[] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27,
    0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34,
    0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f,
    0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
    0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20,
    0x28, 0x33, 0x2c, 0x20, 0x32, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0xc0, 0x3f,
    0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x88, 0x40,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x40,
};

/* np.save('x.npy', np.array([True, False, True])) */
static const unsigned char numpy_b1[] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27,
    0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x7c, 0x62, 0x31,
    0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f,
    0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
    0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20,
    0x28, 0x33, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x01, 0x00, 0x01,
};

static void assert_same_tensor(const crl_tensor *a, const crl_tensor *b) {
  assert_int_equal(a->dtype, b->dtype);
  assert_shape(b, a->ndim, a->shape);
  for (int64_t i = 0; i < a->numel; i++) {
    double x = crl_tensor_get_flat(a, i), y = crl_tensor_get_flat(b, i);
    if (!(x == y || (isnan(x) && isnan(y))))
      fail_msg("element %lld: %g vs %g", (long long)i, x, y);
  }
}

/* ---- round trips ----------------------------------------------------------
 */

static void test_roundtrip_all_dtypes(void **state) {
  (void)state;
  static const int64_t shapes[][CRL_MAX_DIMS] = {
      {3, 4}, {0}, {7}, {0, 3}, {1, 2, 1, 2, 1, 2, 1, 2}, {2, 3, 5}};
  static const int ndims[] = {2, 0, 1, 2, 8, 3};
  for (int dt = 0; dt < CRL_NUM_DTYPES; dt++) {
    for (size_t s = 0; s < sizeof ndims / sizeof ndims[0]; s++) {
      crl_tensor *t = crl_empty((crl_dtype)dt, ndims[s], shapes[s]);
      CRL_CHECK_PTR(t);
      for (int64_t i = 0; i < t->numel; i++) {
        double v = dt == CRL_BOOL    ? (double)(i % 3 == 0)
                   : dt == CRL_UINT8 ? (double)((i * 37) % 256)
                   : dt == CRL_FLOAT32 || dt == CRL_FLOAT64
                       ? (i - 3.25) * 1.5e-3
                       : (double)(i * 1000003 - 5000);
        crl_tensor_set_flat(t, i, v);
      }
      if (dt == CRL_FLOAT64 && t->numel > 2) {
        ((double *)t->data)[0] = NAN;
        ((double *)t->data)[1] = -INFINITY;
      }
      if (dt == CRL_INT64 && t->numel > 1) ((int64_t *)t->data)[1] = INT64_MIN;
      const char *p = tpath("rt.npy");
      CRL_CHECK_OK(crl_tensor_save_npy(t, p));
      /* header aligned as NumPy writes it */
      size_t n;
      unsigned char *bytes = read_file_bytes(p, &n);
      size_t off = 10 + (size_t)(bytes[8] | bytes[9] << 8);
      assert_int_equal(off % 64, 0);
      assert_int_equal(bytes[off - 1], '\n');
      assert_int_equal(n - off, t->numel * crl_dtype_size((crl_dtype)dt));
      free(bytes);
      crl_tensor *u = crl_tensor_load_npy(p);
      CRL_CHECK_PTR(u);
      assert_same_tensor(t, u);
      assert_int_equal(u->storage->kind, CRL_STORAGE_HEAP);
      crl_tensor *m = crl_tensor_mmap_npy(p, false);
      CRL_CHECK_PTR(m);
      assert_same_tensor(t, m);
      assert_int_equal(m->storage->kind, CRL_STORAGE_MMAP);
      /* the bytes are exactly the tensor's */
      if (t->numel)
        assert_memory_equal(t->data, u->data,
                            (size_t)t->numel * crl_dtype_size(t->dtype));
    }
  }
}

/* crl writes the same bytes as NumPy, and reads NumPy's. */
static void test_numpy_bytes(void **state) {
  (void)state;
  float v[6] = {1.5f, -2, 3, 4.25f, 0, 7};
  crl_tensor *t = crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 2), v);
  const char *p = tpath("np_f32.npy");
  CRL_CHECK_OK(crl_tensor_save_npy(t, p));
  size_t n;
  unsigned char *b = read_file_bytes(p, &n);
  assert_int_equal(n, sizeof numpy_f32);
  assert_memory_equal(b, numpy_f32, n);
  free(b);
  uint8_t bv[3] = {1, 0, 1};
  crl_tensor *tb = crl_from_array(CRL_BOOL, CRL_SHAPE(3), bv);
  p = tpath("np_b1.npy");
  CRL_CHECK_OK(crl_tensor_save_npy(tb, p));
  b = read_file_bytes(p, &n);
  assert_int_equal(n, sizeof numpy_b1);
  assert_memory_equal(b, numpy_b1, n);
  free(b);
  /* read NumPy's files */
  p = tpath("from_numpy.npy");
  write_file_bytes(p, numpy_f32, sizeof numpy_f32);
  crl_tensor *u = crl_tensor_load_npy(p);
  CRL_CHECK_PTR(u);
  assert_same_tensor(t, u);
  write_file_bytes(p, numpy_b1, sizeof numpy_b1);
  u = crl_tensor_load_npy(p);
  CRL_CHECK_PTR(u);
  assert_same_tensor(tb, u);
  /* parse_header on the in-memory bytes */
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  size_t off;
  CRL_CHECK_OK(
      crl_npy_parse_header(numpy_f32, sizeof numpy_f32, &dt, &nd, sh, &off));
  assert_int_equal(dt, CRL_FLOAT32);
  assert_int_equal(nd, 2);
  assert_int_equal(sh[0], 3);
  assert_int_equal(sh[1], 2);
  assert_int_equal(off, 128);
}

static void test_noncontiguous_save(void **state) {
  (void)state;
  double v[6] = {1, 2, 3, 4, 5, 6};
  crl_tensor *a = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 3), v);
  /* transpose [3, 2] and a strided column */
  crl_tensor *tr = crl_tensor_from_storage(a->storage, CRL_FLOAT64, 0,
                                           CRL_SHAPE(3, 2), (int64_t[]){1, 3});
  CRL_CHECK_PTR(tr);
  const char *p = tpath("tr.npy");
  CRL_CHECK_OK(crl_tensor_save_npy(tr, p));
  crl_tensor *u = crl_tensor_load_npy(p);
  double e[6] = {1, 4, 2, 5, 3, 6};
  assert_shape(u, CRL_SHAPE(3, 2));
  assert_tensor_values(u, e, 6, 0);
  crl_tensor *col = crl_tensor_from_storage(a->storage, CRL_FLOAT64, 1,
                                            CRL_SHAPE(2), (int64_t[]){3});
  CRL_CHECK_OK(crl_tensor_save_npy(col, p));
  u = crl_tensor_load_npy(p);
  double e2[2] = {2, 5};
  assert_tensor_values(u, e2, 2, 0);
  /* the source is untouched */
  assert_tensor_values(a, v, 6, 0);
}

/* ---- memory mapping ---------------------------------------------------- */

static void test_mmap_write_through(void **state) {
  (void)state;
  const char *p = tpath("mm.npy");
  crl_tensor *c = crl_tensor_create_npy(p, CRL_FLOAT32, CRL_SHAPE(4, 5));
  CRL_CHECK_PTR(c);
  assert_int_equal(c->storage->kind, CRL_STORAGE_MMAP);
  for (int64_t i = 0; i < 20; i++)
    assert_true(crl_tensor_get_flat(c, i) == 0);
  CRL_CHECK_OK(crl_tensor_set(c, (int64_t[]){2, 3}, 42.5));
  /* visible to a fresh load while the mapping is alive */
  crl_tensor *u = crl_tensor_load_npy(p);
  CRL_CHECK_PTR(u);
  assert_true(crl_tensor_get(u, (int64_t[]){2, 3}) == 42.5);
  /* a writable mapping of the existing file */
  crl_tensor *m = crl_tensor_mmap_npy(p, true);
  CRL_CHECK_PTR(m);
  assert_true(crl_tensor_get(m, (int64_t[]){2, 3}) == 42.5);
  ((float *)m->data)[0] = -1;
  assert_true(crl_tensor_get_flat(c, 0) == -1); /* same file, shared */
  u = crl_tensor_load_npy(p);
  assert_true(crl_tensor_get_flat(u, 0) == -1);
  /* read-only mappings refuse writes */
  crl_tensor *r = crl_tensor_mmap_npy(p, false);
  CRL_CHECK_PTR(r);
  assert_int_equal(crl_tensor_set_flat(r, 0, 3), CRL_EIO);
  CRL_ASSERT_ERR_HAS("read-only");
  assert_true(crl_tensor_get_flat(r, 0) == -1);
  /* saving over a mapped file replaces it atomically: old mappings stay
   * valid and keep the old data */
  crl_tensor *other = crl_full(CRL_INT32, CRL_SHAPE(3), 9);
  CRL_CHECK_OK(crl_tensor_save_npy(other, p));
  assert_true(crl_tensor_get_flat(r, 0) == -1);
  u = crl_tensor_load_npy(p);
  assert_int_equal(u->dtype, CRL_INT32);
  /* create_npy of a 0-d and an empty tensor */
  crl_tensor *s = crl_tensor_create_npy(tpath("s.npy"), CRL_INT64, CRL_SCALAR);
  CRL_CHECK_PTR(s);
  CRL_CHECK_OK(crl_tensor_set_flat(s, 0, -12345678901ll));
  u = crl_tensor_load_npy(tpath("s.npy"));
  assert_int_equal(u->ndim, 0);
  assert_true(crl_item(u) == -12345678901.0);
  crl_tensor *z =
      crl_tensor_create_npy(tpath("z.npy"), CRL_UINT8, CRL_SHAPE(0, 4));
  CRL_CHECK_PTR(z);
  u = crl_tensor_mmap_npy(tpath("z.npy"), false);
  CRL_CHECK_PTR(u);
  assert_shape(u, CRL_SHAPE(0, 4));
}

/* ---- header parsing
 * ---------------------------------------------------------- */

/* A .npy image: prefix for version (maj, 0), the header text padded as
 * given, then `data` bytes of zeros. Returns its length. */
static size_t make_npy(unsigned char *buf, int maj, const char *hdr,
                       size_t data) {
  size_t pre = maj == 1 ? 10 : 12, hl = strlen(hdr);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)maj;
  buf[7] = 0;
  buf[8] = (unsigned char)(hl & 0xff);
  buf[9] = (unsigned char)(hl >> 8);
  if (maj != 1) {
    buf[10] = 0;
    buf[11] = 0;
  }
  memcpy(buf + pre, hdr, hl);
  memset(buf + pre + hl, 0, data);
  return pre + hl + data;
}

static int parse(const unsigned char *buf, size_t len, crl_dtype *dt, int *nd,
                 int64_t *sh) {
  /* an exact-size heap copy: ASan catches any read past len */
  unsigned char *c = malloc(len ? len : 1);
  memcpy(c, buf, len);
  size_t off;
  int rc = crl_npy_parse_header(c, len, dt, nd, sh, &off);
  free(c);
  return rc;
}

static void test_header_variants(void **state) {
  (void)state;
  unsigned char buf[1024];
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  static const struct {
    const char *hdr;
    crl_dtype dt;
    int nd;
    int64_t s0, s1;
  } ok[] = {
      {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}\n",
       CRL_FLOAT64, 2, 2, 3},
      {"{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(5,)}", CRL_INT32,
       1, 5, 0},
      {"{ 'fortran_order' : False ,\n 'descr' : '|u1' , 'shape' : ( 4 , 1 "
       ", ) , }   \n",
       CRL_UINT8, 2, 4, 1},
      {"{'descr': '<i8', 'fortran_order': False, 'shape': (3L, 2L), }\n",
       CRL_INT64, 2, 3, 2},
      {"{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", CRL_BOOL, 0,
       0, 0},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (7)}\t\r\n",
       CRL_FLOAT32, 1, 7, 0},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    size_t n = make_npy(buf, 1, ok[i].hdr, 0);
    int rc = parse(buf, n, &dt, &nd, sh);
    if (rc) fail_msg("header %zu: %s", i, crl_last_error());
    assert_int_equal(dt, ok[i].dt);
    assert_int_equal(nd, ok[i].nd);
    if (nd > 0) assert_int_equal(sh[0], ok[i].s0);
    if (nd > 1) assert_int_equal(sh[1], ok[i].s1);
  }
  /* versions 2.0 and 3.0: 4-byte header length */
  const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n";
  for (int maj = 2; maj <= 3; maj++) {
    size_t n = make_npy(buf, maj, h, 8);
    size_t off;
    CRL_CHECK_OK(crl_npy_parse_header(buf, n, &dt, &nd, sh, &off));
    assert_int_equal(off, 12 + strlen(h));
    const char *p = tpath("v2.npy");
    write_file_bytes(p, buf, n);
    crl_tensor *t = crl_tensor_load_npy(p);
    CRL_CHECK_PTR(t);
    assert_shape(t, CRL_SHAPE(2));
  }
  /* NULL arguments */
  size_t off;
  assert_int_equal(crl_npy_parse_header(NULL, 10, &dt, &nd, sh, &off),
                   CRL_EINVAL);
}

/* Each malformed header is rejected with CRL_EFORMAT and a message naming
 * the problem, from memory and from a file (load and mmap). */
static void test_malformed_headers(void **state) {
  (void)state;
  static const struct {
    const char *hdr;
    const char *msg;
  } bad[] = {
      {"{'descr': '<f4', 'fortran_order': False}\n", "no 'shape' key"},
      {"{'fortran_order': False, 'shape': (2,)}\n", "no 'descr' key"},
      {"{'descr': '<f4', 'shape': (2,)}\n", "no 'fortran_order' key"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}\n",
       "fortran_order True"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}\n",
       "big-endian descr '>f4'"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}\n",
       "unsupported descr '<f2'"},
      {"{'descr': '<u1', 'fortran_order': False, 'shape': (2,)}\n",
       "unsupported descr '<u1'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}\n",
       "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n",
       "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': "
       "(2,)}\n",
       "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}\n",
       "bad 'shape' entry"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}"
       "\n",
       "more than 8 dims"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(99999999999999999999,)}\n",
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
       "4294967296)}\n",
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}\n",
       "must be a tuple"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}\n",
       "True or False"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}\n",
       "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n",
       "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}\n",
       "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x\n",
       "unexpected characters"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}\n",
       "expected ':'"},
      {"{'descr': '<f4\n", "unterminated string"},
      {"{'de\\scr': '<f4'}\n", "escape"},
      {"['descr', '<f4']\n", "not a dict"},
      {"", "not a dict"},
  };
  unsigned char buf[1024];
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = make_npy(buf, 1, bad[i].hdr, 8);
    crl_clear_error();
    int rc = parse(buf, n, &dt, &nd, sh);
    if (rc != CRL_EFORMAT)
      fail_msg("header %zu (%s): rc %d", i, bad[i].hdr, rc);
    CRL_ASSERT_ERR_HAS(bad[i].msg);
    const char *p = tpath("bad.npy");
    write_file_bytes(p, buf, n);
    assert_null(crl_tensor_load_npy(p));
    assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
    CRL_ASSERT_ERR_HAS(bad[i].msg);
    CRL_ASSERT_ERR_HAS(p);
    assert_null(crl_tensor_mmap_npy(p, false));
    assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
    CRL_ASSERT_ERR_HAS(bad[i].msg);
  }
}

static void expect_format_error(const unsigned char *b, size_t n,
                                const char *msg) {
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  crl_clear_error();
  assert_int_equal(parse(b, n, &dt, &nd, sh), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(msg);
  const char *p = tpath("bad2.npy");
  write_file_bytes(p, b, n);
  assert_null(crl_tensor_load_npy(p));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(msg);
  assert_null(crl_tensor_mmap_npy(p, true));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(msg);
}

static void test_malformed_prefix(void **state) {
  (void)state;
  unsigned char buf[1024];
  const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}\n";
  size_t n = make_npy(buf, 1, h, 16);
  /* bad magic */
  buf[3] = 'X';
  expect_format_error(buf, n, "bad magic");
  buf[3] = 'M';
  expect_format_error(buf, 0, "bad magic");     /* empty file */
  expect_format_error(buf, 4, "bad magic");     /* shorter than the magic */
  expect_format_error(buf, 7, "version");       /* inside the version */
  expect_format_error(buf, 9, "header length"); /* inside the length */
  /* wrong versions */
  buf[6] = 4;
  expect_format_error(buf, n, "version 4.0");
  buf[6] = 1;
  buf[7] = 1;
  expect_format_error(buf, n, "version 1.1");
  buf[7] = 0;
  buf[6] = 0;
  expect_format_error(buf, n, "version 0.0");
  buf[6] = 1;
  /* header length past the end */
  buf[8] = 0xff;
  buf[9] = 0x7f;
  expect_format_error(buf, n, "runs past the end");
  size_t hl = strlen(h);
  buf[8] = (unsigned char)(hl + 17);
  buf[9] = 0;
  expect_format_error(buf, n, "runs past the end");
  /* version 2 with a huge length */
  unsigned char b2[256];
  size_t n2 = make_npy(b2, 2, h, 16);
  b2[11] = 0x80;
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  assert_int_equal(parse(b2, n2, &dt, &nd, sh), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS("runs past the end");
  const char *p = tpath("huge.npy");
  write_file_bytes(p, b2, n2);
  assert_null(crl_tensor_load_npy(p));
  CRL_ASSERT_ERR_HAS("header length");
}

/* Header fine, data of the wrong size. */
static void test_data_size(void **state) {
  (void)state;
  unsigned char buf[1024];
  const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}\n";
  /* truncated: 12 of 16 bytes */
  size_t n = make_npy(buf, 1, h, 12);
  const char *p = tpath("trunc.npy");
  write_file_bytes(p, buf, n);
  assert_null(crl_tensor_load_npy(p));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS("truncated");
  CRL_ASSERT_ERR_HAS("16 bytes");
  assert_null(crl_tensor_mmap_npy(p, false));
  CRL_ASSERT_ERR_HAS("truncated");
  /* header only */
  n = make_npy(buf, 1, h, 0);
  write_file_bytes(p, buf, n);
  assert_null(crl_tensor_load_npy(p));
  CRL_ASSERT_ERR_HAS("truncated");
  /* more data than the shape says */
  n = make_npy(buf, 1, h, 20);
  write_file_bytes(p, buf, n);
  assert_null(crl_tensor_load_npy(p));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS("20 bytes of data");
  CRL_ASSERT_ERR_HAS("[2, 2]");
  assert_null(crl_tensor_mmap_npy(p, true));
  CRL_ASSERT_ERR_HAS("needs 16");
  /* a truncated NumPy file */
  write_file_bytes(p, numpy_f32, sizeof numpy_f32 - 1);
  assert_null(crl_tensor_load_npy(p));
  CRL_ASSERT_ERR_HAS("truncated");
}

/* Every prefix of a valid file, and random corruptions of it, are parsed
 * from exact-size buffers without reading out of bounds (ASan checks). */
static void test_parse_never_overreads(void **state) {
  (void)state;
  crl_dtype dt;
  int nd;
  int64_t sh[CRL_MAX_DIMS];
  for (size_t l = 0; l < 128; l++)
    assert_int_equal(parse(numpy_f32, l, &dt, &nd, sh), CRL_EFORMAT);
  assert_int_equal(parse(numpy_f32, 128, &dt, &nd, sh), 0);
  crl_rng g;
  crl_rng_seed(&g, 1);
  unsigned char b[sizeof numpy_f32];
  int ok = 0;
  for (int rep = 0; rep < 20000; rep++) {
    memcpy(b, numpy_f32, sizeof b);
    int k = 1 + (int)crl_rng_below(&g, 4);
    for (int j = 0; j < k; j++) {
      size_t at = (size_t)crl_rng_below(&g, 128);
      static const char alphabet[] = "{}()[],:'\" \n0123456789-LTrueFalse<|>"
                                     "f4i8b1u\x93\x01\x02\x00\xff";
      b[at] =
          crl_rng_below(&g, 2)
              ? (unsigned char)crl_rng_u32(&g)
              : (unsigned char)alphabet[crl_rng_below(&g, sizeof alphabet - 1)];
    }
    size_t len = (size_t)crl_rng_below(&g, sizeof b + 1);
    int rc = parse(b, len, &dt, &nd, sh);
    if (rc == 0) {
      ok++;
      assert_true(nd >= 0 && nd <= CRL_MAX_DIMS);
    } else {
      assert_int_equal(rc, CRL_EFORMAT);
      assert_true(strlen(crl_last_error()) > 5);
    }
  }
  assert_true(ok > 0); /* some corruptions (in padding) are harmless */
}

static void test_io_errors(void **state) {
  (void)state;
  crl_tensor *t = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  assert_int_equal(crl_tensor_save_npy(t, "/nonexistent-dir/x.npy"), CRL_EIO);
  CRL_ASSERT_ERR_HAS("/nonexistent-dir/x.npy");
  assert_null(crl_tensor_load_npy(tpath("missing.npy")));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS("missing.npy");
  assert_null(crl_tensor_mmap_npy(tpath("missing.npy"), false));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  assert_null(crl_tensor_load_npy(g_dir)); /* a directory */
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  assert_int_equal(crl_tensor_save_npy(NULL, tpath("x.npy")), CRL_EINVAL);
  assert_int_equal(crl_tensor_save_npy(t, NULL), CRL_EINVAL);
  assert_null(crl_tensor_load_npy(NULL));
  assert_null(
      crl_tensor_create_npy(tpath("c.npy"), CRL_FLOAT32, CRL_SHAPE(2, -1)));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("create_npy");
  assert_null(
      crl_tensor_create_npy(tpath("c.npy"), (crl_dtype)77, CRL_SHAPE(2)));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  assert_null(crl_tensor_create_npy("/nonexistent-dir/c.npy", CRL_FLOAT32,
                                    CRL_SHAPE(2)));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  /* a failed save leaves the existing file as it was, and no temporaries */
  const char *p = tpath("keep.npy");
  CRL_CHECK_OK(crl_tensor_save_npy(t, p));
  assert_int_equal(crl_tensor_save_npy(NULL, p), CRL_EINVAL);
  crl_tensor *u = crl_tensor_load_npy(p);
  CRL_CHECK_PTR(u);
  assert_same_tensor(t, u);
  DIR *d = opendir(g_dir);
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) fail_msg("temporary left: %s", e->d_name);
  closedir(d);
  /* bool bytes other than 0/1 read as true */
  unsigned char b1[sizeof numpy_b1];
  memcpy(b1, numpy_b1, sizeof b1);
  b1[sizeof b1 - 1] = 7;
  write_file_bytes(p, b1, sizeof b1);
  u = crl_tensor_load_npy(p);
  assert_int_equal(((uint8_t *)u->data)[2], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_roundtrip_all_dtypes),  CRL_TEST(test_numpy_bytes),
      CRL_TEST(test_noncontiguous_save),    CRL_TEST(test_mmap_write_through),
      CRL_TEST(test_header_variants),       CRL_TEST(test_malformed_headers),
      CRL_TEST(test_malformed_prefix),      CRL_TEST(test_data_size),
      CRL_TEST(test_parse_never_overreads), CRL_TEST(test_io_errors),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
