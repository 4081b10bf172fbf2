/* Batch-shape operations on TensorDicts (src/td/td_shape.c). */
#include <stdlib.h>
#include <time.h>

#include "td_test_util.h"

/* batch [2, 3]: a [2,3] f32 (base), b [2,3,4] f32 (base+100),
 * n/c [2,3,5] i64 (base+1000) where n has batch [2, 3, 5]. */
static crl_td *fixture(double base) {
  crl_td *td = crl_td_new(CRL_SHAPE(2, 3));
  crl_td *n = crl_td_new(CRL_SHAPE(2, 3, 5));
  CRL_CHECK_OK(crl_td_set(td, "a", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), base)));
  CRL_CHECK_OK(
      crl_td_set(td, "b", seq(CRL_FLOAT32, CRL_SHAPE(2, 3, 4), base + 100)));
  CRL_CHECK_OK(
      crl_td_set(n, "c", seq(CRL_INT64, CRL_SHAPE(2, 3, 5), base + 1000)));
  CRL_CHECK_OK(crl_td_set_td(td, "n", n));
  return td;
}

/* ---- stack --------------------------------------------------------------- */

static void test_stack_dim0(void **state) {
  (void)state;
  crl_td *t[3] = {fixture(0), fixture(10), fixture(20)};
  crl_td *s = crl_td_stack(3, t, 0);
  CRL_CHECK_PTR(s);
  batch_is(s, CRL_SHAPE(3, 2, 3));
  td_keys_are(s, true, false, "a,b,n,n/c");
  batch_is(crl_td_get_td(s, "n"), CRL_SHAPE(3, 2, 3, 5));
  crl_tensor *a = crl_td_get(s, "a");
  assert_shape(a, CRL_SHAPE(3, 2, 3));
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 6; i++)
      ASSERT_NEAR(crl_tensor_get_flat(a, k * 6 + i), 10 * k + i, 0);
  crl_tensor *c = crl_td_get(s, "n/c");
  assert_shape(c, CRL_SHAPE(3, 2, 3, 5));
  assert_int_equal(c->dtype, CRL_INT64);
  ASSERT_NEAR(crl_tensor_get_flat(c, 2 * 30 + 7), 1020 + 7, 0);
  /* a copy: the sources are untouched by writes to the result */
  crl_tensor_set_flat(a, 0, 5);
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(t[0], "a"), 0), 0, 0);
}

static void test_stack_other_dims(void **state) {
  (void)state;
  crl_td *t[2] = {fixture(0), fixture(10)};
  /* -1: a new last batch dim, before the feature dims */
  crl_td *s = crl_td_stack(2, t, -1);
  CRL_CHECK_PTR(s);
  batch_is(s, CRL_SHAPE(2, 3, 2));
  crl_tensor *b = crl_td_get(s, "b");
  assert_shape(b, CRL_SHAPE(2, 3, 2, 4));
  /* b[i][j][k][l] = base_k + 100 + (i*3 + j)*4 + l */
  int64_t ix[4] = {1, 2, 1, 3};
  ASSERT_NEAR(crl_tensor_get(b, ix), 10 + 100 + (1 * 3 + 2) * 4 + 3, 0);
  batch_is(crl_td_get_td(s, "n"), CRL_SHAPE(2, 3, 2, 5));
  crl_tensor *c = crl_td_get(s, "n/c");
  int64_t jx[4] = {0, 1, 1, 4};
  ASSERT_NEAR(crl_tensor_get(c, jx), 1010 + (0 * 3 + 1) * 5 + 4, 0);
  crl_td *s1 = crl_td_stack(2, t, 1);
  batch_is(s1, CRL_SHAPE(2, 2, 3));
  int64_t kx[3] = {1, 1, 2};
  ASSERT_NEAR(crl_tensor_get(crl_td_get(s1, "a"), kx), 10 + 5, 0);
  assert_null(crl_td_stack(2, t, 3));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  assert_null(crl_td_stack(2, t, -4));
}

static void test_stack_noncontiguous_and_order(void **state) {
  (void)state;
  /* keys in another order and a transposed (strided) leaf */
  crl_td *x = crl_td_new(CRL_SHAPE(2));
  crl_td *y = crl_td_new(CRL_SHAPE(2));
  CRL_CHECK_OK(crl_td_set(x, "p", seq(CRL_FLOAT32, CRL_SHAPE(2, 3), 0)));
  CRL_CHECK_OK(crl_td_set(x, "q", seq(CRL_FLOAT64, CRL_SHAPE(2), 50)));
  crl_tensor *base = seq(CRL_FLOAT32, CRL_SHAPE(3, 2), 10);
  CRL_CHECK_OK(crl_td_set(y, "q", seq(CRL_FLOAT64, CRL_SHAPE(2), 60)));
  CRL_CHECK_OK(crl_td_set(y, "p", crl_transpose(base, 0, 1)));
  crl_td *t[2] = {x, y};
  crl_td *s = crl_td_stack(2, t, 0);
  CRL_CHECK_PTR(s);
  td_keys_are(s, true, false, "p,q");
  double w[12] = {0, 1, 2, 3, 4, 5, 10, 12, 14, 11, 13, 15};
  assert_tensor_values(crl_td_get(s, "p"), w, 12, 0);
  double q[4] = {50, 51, 60, 61};
  assert_tensor_values(crl_td_get(s, "q"), q, 4, 0);
  crl_td *s1 = crl_td_stack(2, t, 1);
  double w1[12] = {0, 1, 2, 10, 12, 14, 3, 4, 5, 11, 13, 15};
  assert_tensor_values(crl_td_get(s1, "p"), w1, 12, 0);
}

static void test_stack_errors(void **state) {
  (void)state;
  crl_td *x = fixture(0), *y = fixture(0);
  CRL_CHECK_OK(crl_td_del(y, "b"));
  CRL_CHECK_OK(
      crl_td_set(y, "n/extra", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3, 5))));
  crl_td *t[3] = {x, x, y};
  assert_null(crl_td_stack(3, t, 0));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("td_stack");
  CRL_ASSERT_ERR_HAS("only in 0: 'b'");
  CRL_ASSERT_ERR_HAS("only in 2: 'n/extra'");
  assert_null(crl_td_cat(3, t, 0));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("td_cat");
  CRL_ASSERT_ERR_HAS("'n/extra'");
  /* batch sizes */
  crl_td *z = crl_td_new(CRL_SHAPE(3, 2));
  crl_td *u[2] = {x, z};
  assert_null(crl_td_stack(2, u, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3, 2]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  /* a leaf shape: names the key */
  crl_td *w = fixture(0);
  CRL_CHECK_OK(crl_td_set(w, "b", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3, 7))));
  crl_td *v[2] = {x, w};
  assert_null(crl_td_stack(2, v, 0));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("'b'");
  CRL_ASSERT_ERR_HAS("[2, 3, 7]");
  CRL_ASSERT_ERR_HAS("[2, 3, 4]");
  /* dtype */
  crl_td *d = fixture(0);
  CRL_CHECK_OK(crl_td_set(d, "a", crl_zeros(CRL_FLOAT64, CRL_SHAPE(2, 3))));
  crl_td *dd[2] = {x, d};
  assert_null(crl_td_stack(2, dd, 0));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("'a'");
  /* kind */
  crl_td *k = crl_td_new(CRL_SHAPE(2, 3));
  crl_td *k2 = crl_td_new(CRL_SHAPE(2, 3));
  CRL_CHECK_OK(crl_td_set(k, "m", crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 3))));
  CRL_CHECK_OK(crl_td_set_td(k2, "m", crl_td_new(CRL_SHAPE(2, 3))));
  crl_td *kk[2] = {k, k2};
  assert_null(crl_td_stack(2, kk, 0));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'m'");
  assert_null(crl_td_stack(0, kk, 0));
  /* a nested TensorDict already at the maximum number of batch dims */
  crl_td *deep = crl_td_new(CRL_SHAPE(1));
  CRL_CHECK_OK(
      crl_td_set_td(deep, "m", crl_td_new(CRL_SHAPE(1, 1, 1, 1, 1, 1, 1, 1))));
  crl_td *dp[2] = {deep, deep};
  assert_null(crl_td_stack(2, dp, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("'m'");
  assert_null(crl_td_unsqueeze(deep, 0));
  CRL_ASSERT_ERR_HAS("'m'");
  batch_is(crl_td_cat(2, dp, 0), CRL_SHAPE(2));
  crl_td *nul[2] = {k, NULL};
  assert_null(crl_td_stack(2, nul, 0));
}

typedef struct {
  int n;
} stack_gc;

static crl_tensor *stack_fn(crl_tensor **in, void *vctx) {
  (void)vctx;
  crl_td *a = crl_td_new(CRL_SHAPE(2));
  crl_td *b = crl_td_new(CRL_SHAPE(2));
  crl_td_set(a, "x", in[0]);
  crl_td_set(b, "x", in[1]);
  crl_td *t[2] = {a, b};
  crl_td *s = crl_td_stack(2, t, 0);
  crl_td *c = crl_td_cat(2, t, 0);
  crl_tensor *r = crl_mul(crl_td_get(s, "x"),
                          crl_view(crl_td_get(c, "x"), CRL_SHAPE(2, 2, 3)));
  return r;
}

static void test_stack_cat_grad(void **state) {
  (void)state;
  crl_tensor *in[2] = {randn_leaf64(1, CRL_SHAPE(2, 3)),
                       randn_leaf64(2, CRL_SHAPE(2, 3))};
  CRL_CHECK_OK(crl_gradcheck(stack_fn, in, 2, NULL, 1e-6, 1e-6, 1e-4));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1000 TensorDicts of batch [8] with 5 keys into [1000, 8] */
static void test_stack_speed(void **state) {
  (void)state;
  enum { N = 1000 };
  crl_td **t = malloc(sizeof *t * N);
  for (int k = 0; k < N; k++) {
    t[k] = crl_td_new(CRL_SHAPE(8));
    crl_td_set(t[k], "observation", crl_full(CRL_FLOAT32, CRL_SHAPE(8, 4), k));
    crl_td_set(t[k], "action", crl_full(CRL_FLOAT32, CRL_SHAPE(8, 2), k));
    crl_td_set(t[k], "reward", crl_full(CRL_FLOAT32, CRL_SHAPE(8, 1), k));
    crl_td_set(t[k], "done", crl_zeros(CRL_BOOL, CRL_SHAPE(8, 1)));
    crl_td_set(t[k], "step", crl_full(CRL_INT64, CRL_SHAPE(8), k));
  }
  double best = 1e9;
  for (int rep = 0; rep < 20; rep++) {
    crl_scope_begin();
    double t0 = now_s();
    crl_td *s = crl_td_stack(N, t, 0);
    double dt = now_s() - t0;
    CRL_CHECK_PTR(s);
    batch_is(s, CRL_SHAPE(N, 8));
    ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(s, "observation"), 999 * 32),
                999, 0);
    crl_scope_end();
    if (dt < best) best = dt;
  }
  /* cat of 10 TensorDicts of batch [256] */
  crl_td *c[10];
  for (int k = 0; k < 10; k++) {
    c[k] = crl_td_new(CRL_SHAPE(256));
    crl_td_set(c[k], "observation",
               crl_full(CRL_FLOAT32, CRL_SHAPE(256, 4), k));
    crl_td_set(c[k], "action", crl_full(CRL_FLOAT32, CRL_SHAPE(256, 2), k));
    crl_td_set(c[k], "reward", crl_full(CRL_FLOAT32, CRL_SHAPE(256, 1), k));
    crl_td_set(c[k], "done", crl_zeros(CRL_BOOL, CRL_SHAPE(256, 1)));
    crl_td_set(c[k], "step", crl_full(CRL_INT64, CRL_SHAPE(256), k));
  }
  double best_cat = 1e9;
  for (int rep = 0; rep < 20; rep++) {
    crl_scope_begin();
    double t0 = now_s();
    crl_td *s = crl_td_cat(10, c, 0);
    double dt = now_s() - t0;
    CRL_CHECK_PTR(s);
    batch_is(s, CRL_SHAPE(2560));
    ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(s, "step"), 2559), 9, 0);
    crl_scope_end();
    if (dt < best_cat) best_cat = dt;
  }
  printf("td_stack 1000 x [8] x 5 keys: %.1f us; td_cat 10 x [256]: %.1f us\n",
         best * 1e6, best_cat * 1e6);
  /* generous bounds (sanitizer builds are slower); Release is far below */
  assert_true(best < 0.02);
  assert_true(best_cat < 0.01);
  free(t);
}

/* ---- cat
 * -----------------------------------------------------------------------------
 */

static void test_cat(void **state) {
  (void)state;
  crl_td *t[2] = {fixture(0), fixture(10)};
  crl_td *c = crl_td_cat(2, t, 0);
  CRL_CHECK_PTR(c);
  batch_is(c, CRL_SHAPE(4, 3));
  batch_is(crl_td_get_td(c, "n"), CRL_SHAPE(4, 3, 5));
  double w[12] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15};
  assert_tensor_values(crl_td_get(c, "a"), w, 12, 0);
  crl_td *c1 = crl_td_cat(2, t, -1);
  batch_is(c1, CRL_SHAPE(2, 6));
  double w1[12] = {0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15};
  assert_tensor_values(crl_td_get(c1, "a"), w1, 12, 0);
  assert_shape(crl_td_get(c1, "n/c"), CRL_SHAPE(2, 6, 5));
  /* sizes may differ on the dim */
  crl_td *s = crl_td_new(CRL_SHAPE(1, 3));
  crl_td *sn = crl_td_new(CRL_SHAPE(1, 3, 5));
  CRL_CHECK_OK(crl_td_set(s, "a", crl_full(CRL_FLOAT32, CRL_SHAPE(1, 3), 9)));
  CRL_CHECK_OK(crl_td_set(s, "b", crl_zeros(CRL_FLOAT32, CRL_SHAPE(1, 3, 4))));
  CRL_CHECK_OK(crl_td_set(sn, "c", crl_zeros(CRL_INT64, CRL_SHAPE(1, 3, 5))));
  CRL_CHECK_OK(crl_td_set_td(s, "n", sn));
  crl_td *u[2] = {t[0], s};
  crl_td *c2 = crl_td_cat(2, u, 0);
  CRL_CHECK_PTR(c2);
  batch_is(c2, CRL_SHAPE(3, 3));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(c2, "a"), 8), 9, 0);
  /* but not elsewhere */
  assert_null(crl_td_cat(2, u, 1));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[1, 3]");
  crl_td *e = crl_td_new(CRL_SCALAR);
  crl_td *ee[1] = {e};
  assert_null(crl_td_cat(1, ee, 0));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

/* ---- split / unbind ------------------------------------------------------ */

static void test_split_unbind(void **state) {
  (void)state;
  crl_td *td = fixture(0);
  crl_td *p[4];
  assert_int_equal(crl_td_split(td, 2, 1, p, 4), 2);
  batch_is(p[0], CRL_SHAPE(2, 2));
  batch_is(p[1], CRL_SHAPE(2, 1));
  batch_is(crl_td_get_td(p[1], "n"), CRL_SHAPE(2, 1, 5));
  assert_shape(crl_td_get(p[1], "b"), CRL_SHAPE(2, 1, 4));
  double w[2] = {2, 5};
  assert_tensor_values(crl_td_get(p[1], "a"), w, 2, 0);
  shares(crl_td_get(p[1], "a"), crl_td_get(td, "a"), 1, 5);
  shares(crl_td_get(p[1], "n/c"), crl_td_get(td, "n/c"), 0, 10);
  assert_int_equal(crl_td_split(td, 1, 0, p, 1), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("2 pieces");
  assert_int_equal(crl_td_split(td, 0, 0, p, 4), CRL_EINVAL);
  assert_int_equal(crl_td_split(td, 1, 2, p, 4), CRL_EINDEX);
  assert_int_equal(crl_td_unbind(td, -1, p, 4), 3);
  batch_is(p[2], CRL_SHAPE(2));
  batch_is(crl_td_get_td(p[2], "n"), CRL_SHAPE(2, 5));
  assert_shape(crl_td_get(p[2], "b"), CRL_SHAPE(2, 4));
  double a2[2] = {2, -777};
  assert_tensor_values(crl_td_get(p[2], "a"), a2, 2, 0);
  shares(crl_td_get(p[0], "b"), crl_td_get(td, "b"), 5, 12 + 1);
  assert_int_equal(crl_td_unbind(td, 0, p, 1), CRL_EINVAL);
}

/* ---- view / reshape / permute / ... -------------------------------------- */

static void test_view_reshape(void **state) {
  (void)state;
  crl_td *td = fixture(0);
  crl_td *v = crl_td_view(td, CRL_SHAPE(-1));
  CRL_CHECK_PTR(v);
  batch_is(v, CRL_SHAPE(6));
  assert_shape(crl_td_get(v, "b"), CRL_SHAPE(6, 4));
  batch_is(crl_td_get_td(v, "n"), CRL_SHAPE(6, 5));
  assert_shape(crl_td_get(v, "n/c"), CRL_SHAPE(6, 5));
  shares(crl_td_get(v, "b"), crl_td_get(td, "b"), 9, 9);
  shares(crl_td_get(v, "n/c"), crl_td_get(td, "n/c"), 29, 29);
  crl_td *v2 = crl_td_view(td, CRL_SHAPE(3, 1, 2));
  batch_is(v2, CRL_SHAPE(3, 1, 2));
  assert_null(crl_td_view(td, CRL_SHAPE(4, -1)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[4, -1]");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  assert_null(crl_td_view(td, CRL_SHAPE(-1, -1)));
  /* a permuted TensorDict cannot be viewed flat; reshape copies */
  int perm[2] = {1, 0};
  crl_td *p = crl_td_permute(td, 2, perm);
  assert_null(crl_td_view(p, CRL_SHAPE(6)));
  CRL_ASSERT_ERR_HAS("td_view: entry 'a'");
  crl_td *r = crl_td_reshape(p, CRL_SHAPE(6));
  CRL_CHECK_PTR(r);
  double w[6] = {0, 3, 1, 4, 2, 5};
  assert_tensor_values(crl_td_get(r, "a"), w, 6, 0);
  assert_ptr_not_equal(crl_td_get(r, "a")->storage,
                       crl_td_get(td, "a")->storage);
  /* reshape of a contiguous TensorDict is a view */
  crl_td *r2 = crl_td_reshape(td, CRL_SHAPE(6));
  shares(crl_td_get(r2, "a"), crl_td_get(td, "a"), 4, 4);
}

static void test_permute(void **state) {
  (void)state;
  crl_td *td = fixture(0);
  int perm[2] = {-1, 0};
  crl_td *p = crl_td_permute(td, 2, perm);
  CRL_CHECK_PTR(p);
  batch_is(p, CRL_SHAPE(3, 2));
  assert_shape(crl_td_get(p, "b"), CRL_SHAPE(3, 2, 4));
  batch_is(crl_td_get_td(p, "n"), CRL_SHAPE(3, 2, 5));
  int64_t ix[3] = {2, 1, 3}; /* b'[2][1][3] = b[1][2][3] */
  ASSERT_NEAR(crl_tensor_get(crl_td_get(p, "b"), ix), 100 + 5 * 4 + 3, 0);
  shares(crl_td_get(p, "a"), crl_td_get(td, "a"), 1, 3);
  int bad[2] = {0, 0};
  assert_null(crl_td_permute(td, 2, bad));
  CRL_ASSERT_ERR_HAS("repeated");
  assert_null(crl_td_permute(td, 1, perm));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

static void test_unsqueeze_squeeze(void **state) {
  (void)state;
  crl_td *td = fixture(0);
  crl_td *u = crl_td_unsqueeze(td, -1);
  CRL_CHECK_PTR(u);
  batch_is(u, CRL_SHAPE(2, 3, 1));
  assert_shape(crl_td_get(u, "b"), CRL_SHAPE(2, 3, 1, 4));
  batch_is(crl_td_get_td(u, "n"), CRL_SHAPE(2, 3, 1, 5));
  assert_shape(crl_td_get(u, "n/c"), CRL_SHAPE(2, 3, 1, 5));
  shares(crl_td_get(u, "b"), crl_td_get(td, "b"), 7, 7);
  crl_td *u0 = crl_td_unsqueeze(td, 0);
  batch_is(u0, CRL_SHAPE(1, 2, 3));
  assert_null(crl_td_unsqueeze(td, 3));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  crl_td *s = crl_td_squeeze(u, 2);
  batch_is(s, CRL_SHAPE(2, 3));
  assert_shape(crl_td_get(s, "b"), CRL_SHAPE(2, 3, 4));
  crl_td *s2 = crl_td_squeeze(u0, CRL_ALL_DIMS);
  batch_is(s2, CRL_SHAPE(2, 3));
  crl_td *uu = crl_td_unsqueeze(u, 0);
  crl_td *s3 = crl_td_squeeze(uu, CRL_ALL_DIMS);
  batch_is(s3, CRL_SHAPE(2, 3));
  assert_shape(crl_td_get(s3, "n/c"), CRL_SHAPE(2, 3, 5));
  shares(crl_td_get(s3, "n/c"), crl_td_get(td, "n/c"), 3, 3);
  /* squeezing a dim whose size is not 1 changes nothing (as torch) */
  crl_td *same = crl_td_squeeze(td, 0);
  batch_is(same, CRL_SHAPE(2, 3));
  assert_ptr_equal(crl_td_get(same, "a"), crl_td_get(td, "a"));
  assert_null(crl_td_squeeze(td, 2));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
}

static void test_expand(void **state) {
  (void)state;
  crl_td *td = crl_td_new(CRL_SHAPE(1, 3));
  CRL_CHECK_OK(crl_td_set(td, "x", seq(CRL_FLOAT32, CRL_SHAPE(1, 3, 2), 0)));
  CRL_CHECK_OK(crl_td_set(td, "n/y", seq(CRL_FLOAT32, CRL_SHAPE(1, 3), 0)));
  crl_td *e = crl_td_expand(td, CRL_SHAPE(5, 4, -1));
  CRL_CHECK_PTR(e);
  batch_is(e, CRL_SHAPE(5, 4, 3));
  batch_is(crl_td_get_td(e, "n"), CRL_SHAPE(5, 4, 3));
  crl_tensor *x = crl_td_get(e, "x");
  assert_shape(x, CRL_SHAPE(5, 4, 3, 2));
  assert_ptr_equal(x->storage, crl_td_get(td, "x")->storage);
  int64_t ix[4] = {4, 3, 2, 1};
  ASSERT_NEAR(crl_tensor_get(x, ix), 5, 0);
  assert_null(crl_td_expand(td, CRL_SHAPE(2, 2)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[1, 3]");
  CRL_ASSERT_ERR_HAS("[2, 2]");
  assert_null(crl_td_expand(td, CRL_SHAPE(3)));
}

static void test_flatten_unflatten(void **state) {
  (void)state;
  crl_td *td = fixture(0);
  crl_td *f = crl_td_flatten(td, 0, -1);
  CRL_CHECK_PTR(f);
  batch_is(f, CRL_SHAPE(6));
  assert_shape(crl_td_get(f, "b"), CRL_SHAPE(6, 4));
  batch_is(crl_td_get_td(f, "n"), CRL_SHAPE(6, 5));
  shares(crl_td_get(f, "n/c"), crl_td_get(td, "n/c"), 12, 12);
  crl_td *u = crl_td_unflatten(f, 0, CRL_SHAPE(3, -1));
  CRL_CHECK_PTR(u);
  batch_is(u, CRL_SHAPE(3, 2));
  assert_shape(crl_td_get(u, "b"), CRL_SHAPE(3, 2, 4));
  batch_is(crl_td_get_td(u, "n"), CRL_SHAPE(3, 2, 5));
  shares(crl_td_get(u, "a"), crl_td_get(td, "a"), 5, 5);
  crl_td *u2 = crl_td_unflatten(td, -1, CRL_SHAPE(1, 3, 1));
  batch_is(u2, CRL_SHAPE(2, 1, 3, 1));
  assert_shape(crl_td_get(u2, "n/c"), CRL_SHAPE(2, 1, 3, 1, 5));
  assert_null(crl_td_unflatten(td, 1, CRL_SHAPE(2, 2)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("size 3");
  assert_null(crl_td_flatten(td, 1, 0));
  assert_null(crl_td_flatten(crl_td_new(CRL_SCALAR), 0, 0));
  crl_td *f1 = crl_td_flatten(td, 1, 1);
  batch_is(f1, CRL_SHAPE(2, 3));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_stack_dim0),
      CRL_TEST(test_stack_other_dims),
      CRL_TEST(test_stack_noncontiguous_and_order),
      CRL_TEST(test_stack_errors),
      CRL_TEST(test_stack_cat_grad),
      CRL_TEST(test_stack_speed),
      CRL_TEST(test_cat),
      CRL_TEST(test_split_unbind),
      CRL_TEST(test_view_reshape),
      CRL_TEST(test_permute),
      CRL_TEST(test_unsqueeze_squeeze),
      CRL_TEST(test_expand),
      CRL_TEST(test_flatten_unflatten),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
