/* The intra-op pool: crl_parallel_for covers every index exactly once (any
 * thread count, nested, from concurrent callers, across pool resizes), and
 * elementwise results on a 1e6-element non-contiguous tensor are identical
 * with 1 and 2 threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "test_util.h"

typedef struct {
  _Atomic int *hits;
  int64_t n;
  _Atomic int nested_calls;
} cover_ctx;

static void mark(void *vctx, int64_t i) {
  cover_ctx *c = vctx;
  atomic_fetch_add(&c->hits[i], 1);
}

static void check_cover(int64_t n) {
  cover_ctx c = {calloc((size_t)(n ? n : 1), sizeof(_Atomic int)), n, 0};
  crl_parallel_for(n, mark, &c);
  for (int64_t i = 0; i < n; i++)
    if (atomic_load(&c.hits[i]) != 1)
      fail_msg("n = %lld, %d threads: index %lld visited %d times",
               (long long)n, crl_get_num_threads(), (long long)i,
               atomic_load(&c.hits[i]));
  free(c.hits);
}

static void test_settings(void **state) {
  (void)state;
  int n0 = crl_get_num_threads();
  assert_true(n0 >= 1);
  CRL_CHECK_OK(crl_set_num_threads(3));
  assert_int_equal(crl_get_num_threads(), 3);
  assert_int_equal(crl_set_num_threads(0), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("set_num_threads");
  CRL_ASSERT_ERR_HAS("0");
  assert_int_equal(crl_set_num_threads(257), CRL_EINVAL);
  assert_int_equal(crl_get_num_threads(), 3); /* unchanged by failures */
  CRL_CHECK_OK(crl_set_num_threads(n0));
  int b0 = crl_get_blas_threads();
  CRL_CHECK_OK(crl_set_blas_threads(2));
  assert_int_equal(crl_get_blas_threads(), 2);
  assert_int_equal(crl_set_blas_threads(-1), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("set_blas_threads");
  assert_int_equal(crl_get_blas_threads(), 2);
  CRL_CHECK_OK(crl_set_blas_threads(b0));
  const char *be = crl_blas_backend();
  assert_true(strcmp(be, "blis") == 0 || strcmp(be, "openblas") == 0);
}

static void test_cover(void **state) {
  (void)state;
  int counts[] = {1, 2, 4, 3, 2, 8, 1};
  int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 100003};
  for (size_t t = 0; t < sizeof counts / sizeof counts[0]; t++) {
    CRL_CHECK_OK(crl_set_num_threads(counts[t]));
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      check_cover(sizes[s]);
    /* many small jobs in a row on the same pool */
    for (int rep = 0; rep < 200; rep++)
      check_cover(5);
  }
  crl_parallel_for(-5, mark, NULL); /* no calls, no crash */
  CRL_CHECK_OK(crl_set_num_threads(1));
}

/* nested parallel_for runs serially inside a task and still covers */
static void outer_item(void *vctx, int64_t i) {
  cover_ctx *c = vctx;
  cover_ctx inner = {c->hits + i * 10, 10, 0};
  crl_parallel_for(10, mark, &inner);
  atomic_fetch_add(&c->nested_calls, 1);
}

static void test_nested(void **state) {
  (void)state;
  CRL_CHECK_OK(crl_set_num_threads(4));
  cover_ctx c = {calloc(500, sizeof(_Atomic int)), 50, 0};
  crl_parallel_for(50, outer_item, &c);
  assert_int_equal(atomic_load(&c.nested_calls), 50);
  for (int i = 0; i < 500; i++)
    assert_int_equal(atomic_load(&c.hits[i]), 1);
  free(c.hits);
  CRL_CHECK_OK(crl_set_num_threads(1));
}

/* two caller threads at once: one gets the pool, the other runs serially */
static void *caller(void *arg) {
  (void)arg;
  for (int rep = 0; rep < 50; rep++) {
    cover_ctx c = {calloc(3000, sizeof(_Atomic int)), 3000, 0};
    crl_parallel_for(3000, mark, &c);
    for (int i = 0; i < 3000; i++)
      if (atomic_load(&c.hits[i]) != 1) {
        free(c.hits);
        return (void *)1;
      }
    free(c.hits);
  }
  return NULL;
}

static void test_concurrent_callers(void **state) {
  (void)state;
  CRL_CHECK_OK(crl_set_num_threads(3));
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, caller, NULL), 0);
  void *r = caller(NULL);
  assert_null(r);
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], &r);
    assert_null(r);
  }
  CRL_CHECK_OK(crl_set_num_threads(1));
}

/* ---- thread-count independence of results
 * ------------------------------------ */

static void run_ops(crl_tensor *x, crl_tensor *y, crl_tensor **out, int n) {
  int k = 0;
  out[k++] = crl_add(x, y);
  out[k++] = crl_mul(x, crl_scalar(CRL_FLOAT32, 1.5));
  out[k++] = crl_maximum(x, y);
  out[k++] = crl_where(crl_gt(x, y), x, y);
  out[k++] = crl_exp(x);
  out[k++] = crl_tanh(x);
  out[k++] = crl_sigmoid(x);
  out[k++] = crl_cast(x, CRL_FLOAT64);
  out[k++] = crl_clone(x);
  out[k++] = crl_isnan(x);
  out[k++] = crl_add(crl_cast(x, CRL_INT32), crl_cast(y, CRL_INT64));
  crl_tensor *d = crl_zeros(CRL_FLOAT32, x->ndim, x->shape);
  crl_copy_(d, x);
  crl_add_(d, y, 0.25);
  crl_mul_scalar_(d, 3);
  out[k++] = d;
  crl_tensor *s = crl_sum(x, 0, NULL, false);
  out[k++] = s;
  assert_int_equal(k, n);
}
#define NOPS 13

static void test_thread_count_independence(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 11);
  /* 1e6 elements, non-contiguous: the transpose of [1000, 1000] */
  crl_tensor *base = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(1000, 1000));
  crl_tensor *x = crl_transpose(base, 0, 1);
  assert_false(crl_tensor_is_contiguous(x));
  assert_int_equal(x->numel, 1000000);
  /* a broadcast [1000] row with stride 0 on dim 0 */
  crl_tensor *y = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(1000));
  crl_tensor *r1[NOPS], *r2[NOPS], *r3[NOPS];
  CRL_CHECK_OK(crl_set_num_threads(1));
  run_ops(x, y, r1, NOPS);
  CRL_CHECK_OK(crl_set_num_threads(2));
  run_ops(x, y, r2, NOPS);
  CRL_CHECK_OK(crl_set_num_threads(3)); /* a pool resize after jobs */
  run_ops(x, y, r3, NOPS);
  CRL_CHECK_OK(crl_set_num_threads(1));
  for (int k = 0; k < NOPS; k++) {
    CRL_CHECK_PTR(r1[k]);
    CRL_CHECK_PTR(r2[k]);
    CRL_CHECK_PTR(r3[k]);
    assert_true(crl_same_shape(r1[k], r2[k]));
    assert_int_equal(r1[k]->dtype, r2[k]->dtype);
    assert_true(crl_tensor_is_contiguous(r1[k]));
    size_t nb = (size_t)r1[k]->numel * crl_dtype_size(r1[k]->dtype);
    if (memcmp(r1[k]->data, r2[k]->data, nb) != 0)
      fail_msg("op %d differs between 1 and 2 threads", k);
    if (memcmp(r1[k]->data, r3[k]->data, nb) != 0)
      fail_msg("op %d differs between 1 and 3 threads", k);
  }
  /* spot-check values so identical-but-wrong cannot pass */
  for (int64_t i = 0; i < 1000; i += 97)
    for (int64_t j = 0; j < 1000; j += 89) {
      double xv = crl_tensor_get(base, (int64_t[]){j, i});
      double yv = crl_tensor_get_flat(y, j);
      ASSERT_NEAR(crl_tensor_get(r2[0], (int64_t[]){i, j}),
                  (float)((float)xv + (float)yv), 0);
      /* crl's float32 exp is within 1.5 ulp of libm's */
      ASSERT_NEAR(crl_tensor_get(r2[4], (int64_t[]){i, j}), expf((float)xv),
                  3e-7 * expf((float)xv));
      ASSERT_NEAR(crl_tensor_get(r2[11], (int64_t[]){i, j}),
                  (float)((float)xv + 0.25f * (float)yv) * 3.0f, 1e-5);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_settings),
      CRL_TEST(test_cover),
      CRL_TEST(test_nested),
      CRL_TEST(test_concurrent_callers),
      CRL_TEST(test_thread_count_independence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
