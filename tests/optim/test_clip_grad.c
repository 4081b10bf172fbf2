/* crl_clip_grad_norm: the total 2-norm over all gradients is returned,
 * gradients are scaled by max_norm / (norm + 1e-6) when that is below 1
 * (torch's rule) and left bit-for-bit unchanged otherwise; NULL grads are
 * skipped; float32 and float64, long gradients; errors. */
#include "test_util.h"

static crl_tensor *with_grad(crl_dtype dt, int64_t n, const double *g) {
  crl_tensor *p = crl_zeros(dt, CRL_SHAPE(n));
  crl_set_requires_grad(p, true);
  crl_tensor *t = crl_zeros(dt, CRL_SHAPE(n));
  for (int64_t i = 0; i < n; i++)
    crl_tensor_set_flat(t, i, g[i]);
  p->grad = crl_tensor_retain(t);
  return p;
}

static void test_clip(void **state) {
  (void)state;
  /* grads [3, 4] and [12]: total norm 13 */
  for (int d = 0; d < 2; d++) {
    crl_dtype dt = d ? CRL_FLOAT64 : CRL_FLOAT32;
    crl_tensor *ps[3] = {with_grad(dt, 2, (double[]){3, 4}),
                         crl_zeros(dt, CRL_SHAPE(5)), /* no grad: skipped */
                         with_grad(CRL_FLOAT64, 1, (double[]){12})};
    double norm = crl_clip_grad_norm(ps, 3, 6.5);
    ASSERT_NEAR(norm, 13, 1e-12);
    double c = 6.5 / (13 + 1e-6);
    double tol = d ? 1e-15 : 1e-6;
    assert_tensor_values(ps[0]->grad, (double[]){3 * c, 4 * c}, 2, tol);
    assert_tensor_values(ps[2]->grad, (double[]){12 * c}, 1, 1e-15);
    assert_null(ps[1]->grad);
    /* now the norm is (about) 6.5 */
    ASSERT_NEAR(crl_clip_grad_norm(ps, 3, 100), 6.5, 1e-5);
  }
}

static void test_no_clip_when_below(void **state) {
  (void)state;
  crl_tensor *ps[2] = {with_grad(CRL_FLOAT32, 3, (double[]){0.1, -0.2, 0.3}),
                       with_grad(CRL_FLOAT64, 2, (double[]){1e-3, 2})};
  float before0[3];
  memcpy(before0, ps[0]->grad->data, sizeof before0);
  double before1[2];
  memcpy(before1, ps[1]->grad->data, sizeof before1);
  double norm = crl_clip_grad_norm(ps, 2, 10);
  double expect = sqrt((double)0.1f * 0.1f + (double)0.2f * 0.2f +
                       (double)0.3f * 0.3f + 1e-6 + 4);
  ASSERT_NEAR(norm, expect, 1e-7);
  assert_memory_equal(ps[0]->grad->data, before0, sizeof before0);
  assert_memory_equal(ps[1]->grad->data, before1, sizeof before1);
  /* max_norm just below the norm: clipped, the norm before is returned */
  ASSERT_NEAR(crl_clip_grad_norm(&ps[1], 1, 2.0), sqrt(4 + 1e-6), 1e-15);
  /* no gradients at all: norm 0 */
  crl_tensor *bare = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  ASSERT_NEAR(crl_clip_grad_norm(&bare, 1, 1), 0, 0);
  ASSERT_NEAR(crl_clip_grad_norm(NULL, 0, 1), 0, 0);
}

static void test_long(void **state) {
  (void)state;
  /* 10001 float32 ones (vector body, blocks and tail): norm sqrt(10001) */
  int64_t n = 10001;
  crl_tensor *p = crl_zeros(CRL_FLOAT32, CRL_SHAPE(n));
  crl_set_requires_grad(p, true);
  p->grad = crl_tensor_retain(crl_ones(CRL_FLOAT32, CRL_SHAPE(n)));
  double norm = crl_clip_grad_norm(&p, 1, 1.0);
  ASSERT_NEAR(norm, sqrt((double)n), 1e-9);
  double c = 1.0 / (sqrt((double)n) + 1e-6);
  const float *g = p->grad->data;
  for (int64_t i = 0; i < n; i++)
    if (g[i] != (float)c) fail_msg("grad[%lld] = %g", (long long)i, g[i]);
  crl_tensor *q = crl_zeros(CRL_FLOAT64, CRL_SHAPE(1001));
  crl_set_requires_grad(q, true);
  q->grad = crl_tensor_retain(crl_full(CRL_FLOAT64, CRL_SHAPE(1001), 2));
  ASSERT_NEAR(crl_clip_grad_norm(&q, 1, 1e9), 2 * sqrt(1001.0), 1e-12);
}

static void test_nonfinite_and_errors(void **state) {
  (void)state;
  crl_tensor *p = with_grad(CRL_FLOAT32, 2, (double[]){INFINITY, 1});
  double norm = crl_clip_grad_norm(&p, 1, 1);
  assert_true(isinf(norm));
  assert_tensor_values(p->grad, (double[]){INFINITY, 1}, 2, 0); /* kept */
  crl_tensor *q = with_grad(CRL_FLOAT64, 2, (double[]){3, 4});
  assert_true(crl_clip_grad_norm(&q, 1, -1) < 0);
  CRL_ASSERT_ERR_HAS("clip_grad_norm: max_norm must be >= 0, got -1");
  assert_true(crl_clip_grad_norm(NULL, 1, 1) < 0);
  CRL_ASSERT_ERR_HAS("params is NULL");
  crl_tensor *ps[2] = {q, NULL};
  assert_true(crl_clip_grad_norm(ps, 2, 1) < 0);
  CRL_ASSERT_ERR_HAS("parameter 1 is NULL");
  /* a non-contiguous grad is refused before anything is scaled */
  crl_tensor *r = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2));
  crl_tensor *wide = crl_ones(CRL_FLOAT64, CRL_SHAPE(4));
  r->grad = crl_tensor_retain(crl_slice(wide, 0, 0, 4, 2));
  ps[1] = r;
  assert_int_equal((int)crl_clip_grad_norm(ps, 2, 1), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("grad of parameter 1 (shape [2]) is not contiguous");
  assert_tensor_values(q->grad, (double[]){3, 4}, 2, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_clip),
      CRL_TEST(test_no_clip_when_below),
      CRL_TEST(test_long),
      CRL_TEST(test_nonfinite_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
