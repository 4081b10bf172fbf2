/* Storage: heap (aligned, zeroed), memory-mapped files (write-through,
 * offsets, read-only, errors), POSIX shared memory (visible to a fork()ed
 * child, opened by name, unlinked on free) and wrapped caller memory with a
 * deleter. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* A fresh temporary folder per test (removed with its files at the end). */
static char tmpdir[256];

static int make_tmp(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/crl-test-storage-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  crl_clear_error();
  crl_scope_begin();
  return 0;
}

static int remove_tmp(void **state) {
  (void)state;
  crl_scope_end();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}
#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, make_tmp, remove_tmp)

static void path_in_tmp(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void read_file(const char *path, long offset, void *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, offset, SEEK_SET), 0);
  assert_int_equal(fread(buf, 1, n, f), n);
  fclose(f);
}

/* ---- heap ---------------------------------------------------------------- */

static void test_heap(void **state) {
  (void)state;
  crl_storage *s = crl_storage_new(1000, true);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->kind, CRL_STORAGE_HEAP);
  assert_int_equal(s->nbytes, 1000);
  assert_int_equal(s->refcount, 1);
  assert_true(s->writable);
  assert_null(s->path);
  assert_int_equal(s->device.type, CRL_CPU);
  assert_int_equal((uintptr_t)s->data % 64, 0);
  const unsigned char *b = s->data;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(b[i], 0);
  memset(s->data, 0xab, 1000); /* the whole size is writable (ASan) */
  assert_ptr_equal(crl_storage_retain(s), s);
  assert_int_equal(s->refcount, 2);
  crl_storage_release(s);
  assert_int_equal(s->refcount, 1);
  crl_storage_release(s);
  crl_storage_release(NULL);
  assert_null(crl_storage_retain(NULL));

  crl_storage *z = crl_storage_new(0, false);
  CRL_CHECK_PTR(z);
  assert_int_equal(z->nbytes, 0);
  crl_storage_release(z);
  assert_null(crl_storage_new(SIZE_MAX / 2, false));
  assert_int_equal(crl_last_error_code(), CRL_ENOMEM);

  /* a tensor keeps its storage alive */
  crl_storage *s2 = crl_storage_new(16, true);
  crl_tensor *t =
      crl_tensor_from_storage(s2, CRL_FLOAT32, 0, CRL_SHAPE(4), NULL);
  crl_storage_release(s2);
  assert_int_equal(t->storage->refcount, 1);
  ASSERT_NEAR(crl_tensor_get_flat(t, 3), 0, 0);
}

/* ---- mmap ---------------------------------------------------------------- */

static void test_mmap_write_through(void **state) {
  (void)state;
  char path[300];
  path_in_tmp(path, sizeof path, "data.bin");
  crl_storage *s = crl_storage_new_mmap(path, 0, 6 * sizeof(float), true, true);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->kind, CRL_STORAGE_MMAP);
  assert_string_equal(s->path, path);
  assert_int_equal(file_size(path), 24);
  crl_tensor *t =
      crl_tensor_from_storage(s, CRL_FLOAT32, 0, CRL_SHAPE(2, 3), NULL);
  crl_storage_release(s);
  CRL_CHECK_PTR(t);
  for (int i = 0; i < 6; i++)
    ASSERT_NEAR(crl_tensor_get_flat(t, i), 0, 0);
  /* write through ops */
  CRL_CHECK_OK(crl_copy_(
      t, crl_reshape(crl_arange(CRL_FLOAT32, 1, 7, 1), CRL_SHAPE(2, 3))));
  /* visible in the file (MAP_SHARED) while still mapped */
  float f[6];
  read_file(path, 0, f, sizeof f);
  for (int i = 0; i < 6; i++)
    ASSERT_NEAR(f[i], i + 1, 0);

  /* reopen read-only in a fresh mapping: same values; writes are refused */
  crl_storage *r = crl_storage_new_mmap(path, 0, 24, false, false);
  CRL_CHECK_PTR(r);
  assert_false(r->writable);
  crl_tensor *rt =
      crl_tensor_from_storage(r, CRL_FLOAT32, 0, CRL_SHAPE(6), NULL);
  crl_storage_release(r);
  assert_tensor_values(rt, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
  assert_int_equal(crl_fill_(rt, 0), CRL_EIO);
  CRL_ASSERT_ERR_HAS("read-only");
  assert_int_equal(crl_tensor_set_flat(rt, 0, 5), CRL_EIO);
  assert_tensor_values(rt, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
  /* a write through the writable mapping shows in the other one */
  CRL_CHECK_OK(crl_tensor_set_flat(t, 5, -8));
  ASSERT_NEAR(crl_tensor_get_flat(rt, 5), -8, 0);
}

static void test_mmap_offset(void **state) {
  (void)state;
  char path[300];
  path_in_tmp(path, sizeof path, "off.bin");
  /* an existing file of 5000 bytes with known contents */
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  for (int i = 0; i < 5000; i++)
    fputc(i % 251, fp);
  fclose(fp);
  /* map 8 doubles from byte 4200 (not page-aligned) */
  crl_storage *s = crl_storage_new_mmap(path, 4200, 64, false, true);
  CRL_CHECK_PTR(s);
  const unsigned char *b = s->data;
  for (int i = 0; i < 64; i++)
    assert_int_equal(b[i], (4200 + i) % 251);
  crl_tensor *t =
      crl_tensor_from_storage(s, CRL_FLOAT64, 0, CRL_SHAPE(8), NULL);
  CRL_CHECK_OK(crl_fill_(t, 2.5));
  crl_storage_release(s);
  crl_scope_end(); /* unmaps (the only reference was t) */
  crl_scope_begin();
  double d[8];
  read_file(path, 4200, d, sizeof d);
  for (int i = 0; i < 8; i++)
    ASSERT_NEAR(d[i], 2.5, 0);
  unsigned char around[2];
  read_file(path, 4199, around, 1);
  read_file(path, 4264, around + 1, 1);
  assert_int_equal(around[0], 4199 % 251);
  assert_int_equal(around[1], 4264 % 251);
  assert_int_equal(file_size(path), 5000);

  /* create extends an existing file */
  crl_storage *e = crl_storage_new_mmap(path, 6000, 100, true, true);
  CRL_CHECK_PTR(e);
  assert_int_equal(file_size(path), 6100);
  memset(e->data, 7, 100);
  crl_storage_release(e);
  unsigned char c;
  read_file(path, 6099, &c, 1);
  assert_int_equal(c, 7);
}

static void test_mmap_errors(void **state) {
  (void)state;
  char path[300], missing[300];
  path_in_tmp(path, sizeof path, "small.bin");
  path_in_tmp(missing, sizeof missing, "nope/none.bin");
  FILE *fp = fopen(path, "wb");
  fwrite("0123456789", 1, 10, fp);
  fclose(fp);
  assert_null(crl_storage_new_mmap(missing, 0, 8, false, false));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS(missing);
  /* not created, too short: truncated */
  assert_null(crl_storage_new_mmap(path, 4, 8, false, false));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(path);
  CRL_ASSERT_ERR_HAS("truncated");
  assert_int_equal(file_size(path), 10); /* untouched */
  assert_null(crl_storage_new_mmap(path, 0, 8, true, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  assert_null(crl_storage_new_mmap(NULL, 0, 8, false, false));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  /* zero bytes at the end of the file: fine, nothing mapped */
  crl_storage *z = crl_storage_new_mmap(path, 10, 0, false, false);
  CRL_CHECK_PTR(z);
  assert_int_equal(z->nbytes, 0);
  crl_storage_release(z);
}

/* ---- shared memory ------------------------------------------------------- */

static void test_shm_fork(void **state) {
  (void)state;
  crl_storage *s = crl_storage_new_shm(1024);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->kind, CRL_STORAGE_SHM);
  assert_non_null(s->path);
  assert_int_equal(strncmp(s->path, "/crl-", 5), 0);
  assert_true(s->unlink_on_free);
  crl_tensor *t =
      crl_tensor_from_storage(s, CRL_INT64, 0, CRL_SHAPE(128), NULL);
  CRL_CHECK_OK(crl_zero_(t));
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* child: write through the inherited mapping, exit without cleanup */
    int64_t *d = s->data;
    d[17] = 4242;
    d[127] = -7;
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  ASSERT_NEAR(crl_tensor_get_flat(t, 17), 4242, 0);
  ASSERT_NEAR(crl_tensor_get_flat(t, 127), -7, 0);
  ASSERT_NEAR(crl_tensor_get_flat(t, 16), 0, 0);
  crl_storage_release(s);

  /* the same with crl_empty_shared and a child that opens it by name */
  crl_tensor *e = crl_empty_shared(CRL_FLOAT32, CRL_SHAPE(4));
  CRL_CHECK_PTR(e);
  CRL_CHECK_OK(crl_fill_(e, 1));
  char name[64];
  snprintf(name, sizeof name, "%s", e->storage->path);
  fflush(NULL);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    crl_storage *o = crl_storage_open_shm(name, 16);
    if (!o) _exit(3);
    ((float *)o->data)[2] = 9.5f;
    _exit(o->unlink_on_free ? 4 : 0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_tensor_values(e, (double[]){1, 1, 9.5, 1}, 4, 0);
}

static void test_shm_by_name(void **state) {
  (void)state;
  crl_storage *a = crl_storage_new_shm(256);
  CRL_CHECK_PTR(a);
  char name[64];
  snprintf(name, sizeof name, "%s", a->path);
  crl_storage *b = crl_storage_open_shm(name, 256);
  CRL_CHECK_PTR(b);
  assert_false(b->unlink_on_free);
  assert_ptr_not_equal(a->data, b->data); /* two mappings ... */
  ((double *)a->data)[3] = 1.25;          /* ... of one segment */
  assert_true(((double *)b->data)[3] == 1.25);
  ((double *)b->data)[0] = -4;
  assert_true(((double *)a->data)[0] == -4);
  /* smaller sizes may be opened; larger ones are refused */
  crl_storage *c = crl_storage_open_shm(name, 64);
  CRL_CHECK_PTR(c);
  crl_storage_release(c);
  assert_null(crl_storage_open_shm(name, 100000));
  assert_int_equal(crl_last_error_code(), CRL_EFORMAT);
  CRL_ASSERT_ERR_HAS(name);
  /* releasing the opener does not unlink; releasing the creator does */
  crl_storage_release(b);
  crl_storage *d = crl_storage_open_shm(name, 256);
  CRL_CHECK_PTR(d);
  assert_true(((double *)d->data)[3] == 1.25);
  crl_storage_release(d);
  crl_storage_release(a);
  assert_null(crl_storage_open_shm(name, 256));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS(name);
  assert_null(crl_storage_open_shm("/crl-no-such-segment", 8));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  assert_null(crl_storage_open_shm(NULL, 8));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  /* names are unique */
  crl_storage *x = crl_storage_new_shm(8), *y = crl_storage_new_shm(8);
  assert_string_not_equal(x->path, y->path);
  crl_storage_release(x);
  crl_storage_release(y);
}

/* ---- wrapped memory ------------------------------------------------------ */

typedef struct {
  int calls;
  void *data;
} del_log;

static void deleter(void *data, void *ctx) {
  del_log *l = ctx;
  l->calls++;
  l->data = data;
  free(data);
}

static void test_wrap(void **state) {
  (void)state;
  float *mem = malloc(4 * sizeof(float));
  for (int i = 0; i < 4; i++)
    mem[i] = (float)(i * 10);
  del_log log = {0, NULL};
  crl_storage *s = crl_storage_wrap(mem, 4 * sizeof(float), deleter, &log);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->kind, CRL_STORAGE_EXTERNAL);
  assert_ptr_equal(s->data, mem);
  crl_scope_begin();
  crl_tensor *t =
      crl_tensor_from_storage(s, CRL_FLOAT32, 1, CRL_SHAPE(3), NULL);
  crl_tensor *v =
      crl_tensor_from_storage(s, CRL_FLOAT32, 0, CRL_SHAPE(2), (int64_t[]){2});
  assert_tensor_values(t, (double[]){10, 20, 30}, 3, 0);
  assert_tensor_values(v, (double[]){0, 20}, 2, 0);
  CRL_CHECK_OK(crl_tensor_set_flat(t, 0, -1)); /* zero-copy */
  ASSERT_NEAR(mem[1], -1, 0);
  assert_null(crl_tensor_from_storage(s, CRL_FLOAT32, 2, CRL_SHAPE(3), NULL));
  crl_storage_release(s); /* the tensors still hold it */
  assert_int_equal(log.calls, 0);
  crl_scope_end();
  /* the last tensor went: deleter called exactly once with data and ctx */
  assert_int_equal(log.calls, 1);
  assert_ptr_equal(log.data, mem);

  /* no deleter: caller memory is left alone */
  double local[2] = {1, 2};
  crl_storage *w = crl_storage_wrap(local, sizeof local, NULL, NULL);
  CRL_CHECK_PTR(w);
  crl_tensor *lt =
      crl_tensor_from_storage(w, CRL_FLOAT64, 0, CRL_SHAPE(2), NULL);
  crl_storage_release(w);
  CRL_CHECK_OK(crl_mul_scalar_(lt, 3));
  ASSERT_NEAR(local[1], 6, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_heap),        TMP_TEST(test_mmap_write_through),
      TMP_TEST(test_mmap_offset), TMP_TEST(test_mmap_errors),
      CRL_TEST(test_shm_fork),    CRL_TEST(test_shm_by_name),
      CRL_TEST(test_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
