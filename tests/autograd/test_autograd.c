/* The autograd engine: grad mode and no-grad scopes, recording rules,
 * backward (accumulation, tensors used twice, diamonds, explicit upstream
 * gradients, leaves as roots), freed graphs and backward_retain, detach,
 * in-place refusal, requires_grad rules and a 2000-op chain. */
#include <pthread.h>

#include "core/internal.h"
#include "test_util.h"

static crl_tensor *sum_all(crl_tensor *t) { return crl_sum(t, 0, NULL, false); }

/* ---- grad mode
 * ---------------------------------------------------------------- */

static void test_grad_mode(void **state) {
  (void)state;
  assert_true(crl_is_grad_enabled());
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_no_grad_begin();
  assert_false(crl_is_grad_enabled());
  crl_tensor *y = crl_mul(x, x);
  assert_false(y->requires_grad);
  assert_null(y->grad_fn);
  /* nested no-grad restores no-grad, not grad */
  crl_no_grad_begin();
  crl_no_grad_end();
  assert_false(crl_is_grad_enabled());
  /* set_grad_enabled inside a no-grad scope is undone by its end */
  assert_false(crl_set_grad_enabled(true));
  assert_true(crl_is_grad_enabled());
  crl_tensor *z = crl_mul(x, x);
  assert_true(z->requires_grad);
  crl_no_grad_end();
  assert_true(crl_is_grad_enabled());
  /* a no-grad scope opened while grad is off returns to off */
  assert_true(crl_set_grad_enabled(false));
  crl_no_grad_begin();
  crl_no_grad_end();
  assert_false(crl_is_grad_enabled());
  assert_false(crl_set_grad_enabled(true));
  /* an unmatched end is harmless */
  crl_no_grad_end();
  assert_true(crl_is_grad_enabled());
  /* deep nesting */
  for (int i = 0; i < 100; i++)
    crl_no_grad_begin();
  for (int i = 0; i < 100; i++)
    crl_no_grad_end();
  assert_true(crl_is_grad_enabled());
}

static void *other_thread(void *arg) {
  crl_tensor *x = arg;
  /* grad mode is per thread: on here although the main thread is off */
  if (!crl_is_grad_enabled()) return (void *)1;
  crl_tensor *y = crl_mul(x, x);
  void *r = y->grad_fn ? NULL : (void *)2;
  crl_tensor_release(y);
  return r;
}

static void test_grad_mode_thread_local(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_no_grad_begin();
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, other_thread, x), 0);
  void *r;
  pthread_join(th, &r);
  crl_no_grad_end();
  assert_null(r);
}

/* ---- recording rules
 * ------------------------------------------------------------- */

static void test_requires_grad_rules(void **state) {
  (void)state;
  crl_tensor *i = crl_zeros(CRL_INT64, CRL_SHAPE(2));
  assert_int_equal(crl_set_requires_grad(i, true), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int64");
  assert_false(i->requires_grad);
  crl_tensor *b = crl_zeros(CRL_BOOL, CRL_SHAPE(2));
  assert_int_equal(crl_set_requires_grad(b, true), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("bool");
  CRL_CHECK_OK(crl_set_requires_grad(i, false)); /* turning off is fine */
  assert_int_equal(crl_set_requires_grad(NULL, true), CRL_EINVAL);

  crl_tensor *x = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  CRL_CHECK_OK(crl_set_requires_grad(x, true));
  assert_true(x->requires_grad);
  assert_null(x->grad_fn);
  crl_tensor *y = crl_add(x, x);
  assert_true(y->requires_grad);
  assert_non_null(y->grad_fn);
  assert_string_equal(y->grad_fn->name, "add");
  /* a non-leaf cannot change its flag */
  assert_int_equal(crl_set_requires_grad(y, false), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("add");
  assert_true(y->requires_grad);
  /* ops on tensors that do not require grad record nothing */
  crl_tensor *c = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  crl_tensor *d = crl_mul(c, c);
  assert_false(d->requires_grad);
  assert_null(d->grad_fn);
  /* one input requiring grad is enough */
  assert_true(crl_mul(c, x)->requires_grad);
  /* a leaf can be switched off again */
  CRL_CHECK_OK(crl_set_requires_grad(x, false));
  assert_null(crl_mul(x, x)->grad_fn);
}

/* ---- backward
 * ----------------------------------------------------------------- */

static void test_accumulation(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul_scalar(x, 3)), NULL));
  assert_tensor_values(x->grad, (double[]){3, 3, 3}, 3, 0);
  assert_int_equal(x->grad->dtype, CRL_FLOAT64);
  assert_shape(x->grad, CRL_SHAPE(3));
  assert_false(x->grad->requires_grad);
  /* a second graph: gradients add up */
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(x, x)), NULL));
  assert_tensor_values(x->grad, (double[]){5, 7, 9}, 3, 0);
  /* zero_grad drops it */
  crl_zero_grad(x);
  assert_null(x->grad);
  CRL_CHECK_OK(crl_backward(sum_all(x), NULL));
  assert_tensor_values(x->grad, (double[]){1, 1, 1}, 3, 0);
  crl_zero_grad(NULL);
  /* the gradient outlives the scope that computed it */
  crl_zero_grad(x);
  crl_scope_begin();
  CRL_CHECK_OK(crl_backward(sum_all(crl_exp(x)), NULL));
  crl_scope_end();
  assert_tensor_values(x->grad, (double[]){exp(1), exp(2), exp(3)}, 3, 1e-12);
  /* intermediate tensors get no .grad */
  crl_tensor *h = crl_mul_scalar(x, 2);
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(h, h)), NULL));
  assert_null(h->grad);
}

static void test_used_twice_and_diamond(void **state) {
  (void)state;
  /* x * x */
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, -2, 3});
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(x, x)), NULL));
  assert_tensor_values(x->grad, (double[]){2, -4, 6}, 3, 0);
  crl_zero_grad(x);
  /* x + x + x */
  CRL_CHECK_OK(crl_backward(sum_all(crl_add(crl_add(x, x), x)), NULL));
  assert_tensor_values(x->grad, (double[]){3, 3, 3}, 3, 0);
  crl_zero_grad(x);
  /* diamond: a = 2x, b = x^2, y = a * b = 2x^3 -> dy/dx = 6x^2 */
  crl_tensor *a = crl_mul_scalar(x, 2);
  crl_tensor *b = crl_square(x);
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(a, b)), NULL));
  assert_tensor_values(x->grad, (double[]){6, 24, 54}, 3, 1e-12);
  crl_zero_grad(x);
  /* a shared intermediate used by two branches: h = exp(x),
   * y = h * 3 + h * h -> dy/dx = 3h + 2h^2 */
  crl_tensor *h = crl_exp(x);
  crl_tensor *y = crl_add(crl_mul_scalar(h, 3), crl_mul(h, h));
  CRL_CHECK_OK(crl_backward(sum_all(y), NULL));
  for (int i = 0; i < 3; i++) {
    double hv = exp(crl_tensor_get_flat(x, i));
    ASSERT_NEAR(crl_tensor_get_flat(x->grad, i), 3 * hv + 2 * hv * hv,
                1e-9 * hv * hv);
  }
  crl_zero_grad(x);
  /* two leaves, a leaf reached along paths of different lengths:
   * y = (x*w + x) * x */
  crl_tensor *w = leaf64(CRL_SHAPE(3), (double[]){0.5, 2, -1});
  crl_tensor *t = crl_add(crl_mul(x, w), x);
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(t, x)), NULL));
  for (int i = 0; i < 3; i++) {
    double xv = crl_tensor_get_flat(x, i), wv = crl_tensor_get_flat(w, i);
    ASSERT_NEAR(crl_tensor_get_flat(x->grad, i), 2 * xv * (wv + 1), 1e-12);
    ASSERT_NEAR(crl_tensor_get_flat(w->grad, i), xv * xv, 1e-12);
  }
}

/* A gradient that a leaf takes over must not be shared with a pending node
 * gradient: s = x + m (both get the same upstream tensor), m = 2x, and x
 * gets a second contribution (from n = 3x) before m's backward runs. */
static void test_shared_gradient_buffers(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  {
    /* processing order: S (x takes the upstream sum, m's pending gradient
     * is the same tensor), then N (adds into x's gradient), then Q (adds
     * to m's pending gradient), then M. r = 2(x + 2x) + (2x + 3x) */
    crl_tensor *m = crl_mul_scalar(x, 2);
    crl_tensor *s = crl_add(x, m);
    crl_tensor *ss = crl_add(s, s);
    crl_tensor *q = crl_mul_scalar(m, 1);
    crl_tensor *n = crl_mul_scalar(x, 3);
    crl_tensor *nq = crl_add(q, n);
    crl_tensor *r = crl_add(nq, ss);
    CRL_CHECK_OK(crl_backward(sum_all(r), NULL));
    assert_tensor_values(x->grad, (double[]){11, 11}, 2, 0);
  }
  for (int order = 0; order < 2; order++) {
    crl_zero_grad(x);
    crl_tensor *m = crl_mul_scalar(x, 2);
    crl_tensor *n = crl_mul_scalar(x, 3);
    crl_tensor *s = order ? crl_add(m, x) : crl_add(x, m);
    /* r = s + s makes s's gradient an owned sum (2 per element) */
    crl_tensor *r = crl_add(crl_add(s, s), n);
    CRL_CHECK_OK(crl_backward(sum_all(r), NULL));
    /* d/dx [2(x + 2x) + 3x] = 9 */
    assert_tensor_values(x->grad, (double[]){9, 9}, 2, 0);
  }
  /* the same with other processing orders: r = n + (s + s) */
  for (int order = 0; order < 2; order++) {
    crl_zero_grad(x);
    crl_tensor *m = crl_mul_scalar(x, 2);
    crl_tensor *s = order ? crl_add(m, x) : crl_add(x, m);
    crl_tensor *ss = crl_add(s, s);
    crl_tensor *n = crl_mul_scalar(x, 3);
    crl_tensor *r = crl_add(n, ss);
    CRL_CHECK_OK(crl_backward(sum_all(r), NULL));
    assert_tensor_values(x->grad, (double[]){9, 9}, 2, 0);
  }
  /* identity-like chains that pass the upstream tensor along: the leaf's
   * gradient must not alias the caller's upstream gradient */
  crl_zero_grad(x);
  crl_tensor *g = crl_full(CRL_FLOAT64, CRL_SHAPE(2), 2);
  crl_tensor *y = crl_add(x, crl_zeros(CRL_FLOAT64, CRL_SHAPE(2)));
  CRL_CHECK_OK(crl_backward(y, g));
  CRL_CHECK_OK(crl_fill_(g, 100));
  assert_tensor_values(x->grad, (double[]){2, 2}, 2, 0);
}

static void test_explicit_upstream(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *y = crl_mul_scalar(x, 2);
  crl_tensor *g =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){1, 10, 100});
  CRL_CHECK_OK(crl_backward(y, g));
  assert_tensor_values(x->grad, (double[]){2, 20, 200}, 3, 0);
  assert_tensor_values(g, (double[]){1, 10, 100}, 3, 0); /* untouched */
  /* upstream gradient on a [2, 3] root through broadcasting */
  crl_tensor *c = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *r = crl_mul(
      c, crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 1), (double[]){1, -1}));
  CRL_CHECK_OK(crl_backward(r, crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 3),
                                              (double[]){1, 2, 3, 4, 5, 6})));
  assert_tensor_values(c->grad, (double[]){-3, -3, -3}, 3, 0);
  /* a leaf as the root, with and without an explicit gradient */
  crl_tensor *l = leaf64(CRL_SHAPE(2), (double[]){5, 6});
  crl_tensor *lg = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){7, 8});
  CRL_CHECK_OK(crl_backward(l, lg));
  assert_tensor_values(l->grad, (double[]){7, 8}, 2, 0);
  assert_ptr_not_equal(l->grad, lg); /* a copy, not the caller's tensor */
  CRL_CHECK_OK(crl_fill_(lg, -1));
  assert_tensor_values(l->grad, (double[]){7, 8}, 2, 0);
  CRL_CHECK_OK(crl_backward(l, lg));
  assert_tensor_values(l->grad, (double[]){6, 7}, 2, 0);
  assert_tensor_values(lg, (double[]){-1, -1}, 2, 0);
  crl_tensor *l1 = leaf64(CRL_SHAPE(1), (double[]){5});
  CRL_CHECK_OK(crl_backward(l1, NULL));
  assert_tensor_values(l1->grad, (double[]){1}, 1, 0);
  /* a float32 upstream gradient into a float64 graph */
  crl_zero_grad(x);
  CRL_CHECK_OK(
      crl_backward(crl_mul_scalar(x, 2), crl_ones(CRL_FLOAT32, CRL_SHAPE(3))));
  assert_int_equal(x->grad->dtype, CRL_FLOAT64);
  assert_tensor_values(x->grad, (double[]){2, 2, 2}, 3, 0);
}

static void test_backward_errors(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *y = crl_mul_scalar(x, 2);
  /* non-scalar root without a gradient */
  assert_int_equal(crl_backward(y, NULL), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[3]");
  CRL_ASSERT_ERR_HAS("scalar");
  /* gradient of the wrong shape */
  assert_int_equal(crl_backward(y, crl_ones(CRL_FLOAT64, CRL_SHAPE(4))),
                   CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("[4]");
  CRL_ASSERT_ERR_HAS("[3]");
  assert_null(x->grad); /* nothing accumulated */
  /* the graph is still usable after those refusals */
  CRL_CHECK_OK(crl_backward(y, crl_ones(CRL_FLOAT64, CRL_SHAPE(3))));
  assert_tensor_values(x->grad, (double[]){2, 2, 2}, 3, 0);
  /* a tensor outside any graph */
  crl_tensor *c = crl_ones(CRL_FLOAT64, CRL_SCALAR);
  assert_int_equal(crl_backward(c, NULL), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("does not require grad");
  crl_no_grad_begin();
  crl_tensor *ng = sum_all(crl_mul(x, x));
  crl_no_grad_end();
  assert_int_equal(crl_backward(ng, NULL), CRL_EAUTOGRAD);
  assert_int_equal(crl_backward(NULL, NULL), CRL_EINVAL);
  /* grad mode is restored after a failed backward */
  assert_true(crl_is_grad_enabled());
}

static void test_freed_graph_and_retain(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_tensor *loss = sum_all(crl_mul(x, crl_exp(x)));
  CRL_CHECK_OK(crl_backward(loss, NULL));
  crl_tensor *g1 = crl_clone(x->grad);
  /* second backward through the freed graph is refused, grads unchanged */
  assert_int_equal(crl_backward(loss, NULL), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("freed");
  CRL_ASSERT_ERR_HAS("crl_backward_retain");
  assert_true(crl_equal(x->grad, g1));
  assert_int_equal(crl_backward_retain(loss, NULL), CRL_EAUTOGRAD);
  /* a graph built on a freed part is refused too */
  crl_tensor *mid = crl_exp(x);
  crl_tensor *l1 = sum_all(mid);
  CRL_CHECK_OK(crl_backward(l1, NULL));
  crl_tensor *l2 = sum_all(crl_mul_scalar(mid, 2));
  assert_int_equal(crl_backward(l2, NULL), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("freed");

  /* retain: backward twice accumulates twice, then a plain backward frees */
  crl_tensor *z = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_tensor *lz = sum_all(crl_mul(z, crl_exp(z)));
  CRL_CHECK_OK(crl_backward_retain(lz, NULL));
  crl_tensor *once = crl_clone(z->grad);
  CRL_CHECK_OK(crl_backward_retain(lz, NULL));
  assert_true(crl_allclose(z->grad, crl_mul_scalar(once, 2), 1e-15, 0));
  CRL_CHECK_OK(crl_backward(lz, NULL));
  assert_true(crl_allclose(z->grad, crl_mul_scalar(once, 3), 1e-15, 0));
  assert_int_equal(crl_backward(lz, NULL), CRL_EAUTOGRAD);
  /* (1 + x) e^x */
  for (int i = 0; i < 2; i++) {
    double v = crl_tensor_get_flat(z, i);
    ASSERT_NEAR(crl_tensor_get_flat(once, i), (1 + v) * exp(v), 1e-12);
  }
}

static void test_detach(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(3), (double[]){1, 2, 3});
  crl_tensor *y = crl_mul(x, x);
  crl_tensor *d = crl_detach(y);
  CRL_CHECK_PTR(d);
  assert_false(d->requires_grad);
  assert_null(d->grad_fn);
  assert_ptr_equal(d->storage, y->storage); /* shares data */
  assert_ptr_equal(d->data, y->data);
  assert_tensor_values(d, (double[]){1, 4, 9}, 3, 0);
  /* no gradient flows through the detached part: z = x * detach(x * x) */
  crl_tensor *z = crl_mul(x, d);
  CRL_CHECK_OK(crl_backward(sum_all(z), NULL));
  assert_tensor_values(x->grad, (double[]){1, 4, 9}, 3, 0);
  /* a detached leaf is a plain tensor; it can be made a new leaf */
  crl_tensor *dx = crl_detach(x);
  assert_false(dx->requires_grad);
  CRL_CHECK_OK(crl_set_requires_grad(dx, true));
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul_scalar(dx, 5)), NULL));
  assert_tensor_values(dx->grad, (double[]){5, 5, 5}, 3, 0);
  assert_tensor_values(x->grad, (double[]){1, 4, 9}, 3, 0);
  /* strided views detach with their geometry */
  crl_tensor *m = leaf64(CRL_SHAPE(2, 2), (double[]){1, 2, 3, 4});
  crl_tensor *mt = crl_detach(crl_transpose(m, 0, 1));
  assert_tensor_values(mt, (double[]){1, 3, 2, 4}, 4, 0);
  assert_null(crl_detach(NULL));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
}

static void test_inplace_on_leaf(void **state) {
  (void)state;
  crl_tensor *w = leaf64(CRL_SHAPE(2), (double[]){1, 2});
  crl_tensor *one = crl_ones(CRL_FLOAT64, CRL_SHAPE(2));
  assert_int_equal(crl_add_(w, one, 1), CRL_EAUTOGRAD);
  CRL_ASSERT_ERR_HAS("add_");
  assert_int_equal(crl_copy_(w, one), CRL_EAUTOGRAD);
  assert_int_equal(crl_fill_(w, 0), CRL_EAUTOGRAD);
  assert_int_equal(crl_tensor_set(w, (int64_t[]){0}, 3), CRL_EAUTOGRAD);
  assert_tensor_values(w, (double[]){1, 2}, 2, 0);
  unsigned v = w->version;
  /* an optimizer step under no-grad works and bumps the version */
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(w, w)), NULL));
  crl_no_grad_begin();
  CRL_CHECK_OK(crl_add_(w, w->grad, -0.25));
  crl_no_grad_end();
  assert_true(w->version > v);
  assert_tensor_values(w, (double[]){0.5, 1}, 2, 0);
  /* the gradient itself is a plain tensor that can be updated in place */
  CRL_CHECK_OK(crl_zero_(w->grad));
  assert_tensor_values(w->grad, (double[]){0, 0}, 2, 0);
}

static crl_tensor *chain(crl_tensor *x, int n) {
  crl_tensor *y = x;
  for (int i = 0; i < n / 2; i++) {
    y = crl_mul_scalar(y, 1.001);
    if (!y) fail_msg("chain op %d: %s", 2 * i, crl_last_error());
    y = crl_add_scalar(y, 0.5);
    if (!y) fail_msg("chain op %d: %s", 2 * i + 1, crl_last_error());
  }
  return y;
}

static void test_long_chain(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(4), (double[]){1, 2, 3, 4});
  /* 2000 recorded ops (each scalar op is one node) */
  crl_scope_begin();
  crl_tensor *y = chain(x, 2000);
  CRL_CHECK_OK(crl_backward(sum_all(y), NULL));
  crl_scope_end();
  double want = pow(1.001, 1000);
  for (int i = 0; i < 4; i++)
    ASSERT_NEAR(crl_tensor_get_flat(x->grad, i), want, 1e-12 * want);
  /* a long chain freed without backward, no scope open (no recursion
   * blow-up, no leak) */
  int d0 = crl_scope_depth();
  crl_tensor_retain(x); /* x belongs to the test's scope, closed here */
  for (int i = 0; i < d0; i++)
    crl_scope_end();
  crl_tensor *z = crl_tensor_retain(x);
  for (int i = 0; i < 20000; i++) {
    crl_tensor *n = crl_mul_scalar(z, 1.0);
    crl_tensor_release(z);
    z = n;
  }
  crl_tensor_release(z); /* drops the whole 20000-node graph */
  assert_int_equal(x->refcount, 1);
  for (int i = 0; i < d0; i++)
    crl_scope_begin();
  crl__scope_adopt(x); /* back to the test's scope */
  /* a long chain with retain then backward */
  crl_zero_grad(x);
  crl_tensor *ch = chain(x, 4000);
  CRL_CHECK_PTR(ch);
  crl_tensor *r = sum_all(ch);
  CRL_CHECK_OK(crl_backward_retain(r, NULL));
  CRL_CHECK_OK(crl_backward(r, NULL));
  double w2 = 2 * pow(1.001, 2000);
  ASSERT_NEAR(crl_tensor_get_flat(x->grad, 0), w2, 1e-12 * w2);
}

static void test_no_grad_results(void **state) {
  (void)state;
  crl_tensor *x = leaf64(CRL_SHAPE(2, 2), (double[]){1, 2, 3, 4});
  crl_no_grad_begin();
  crl_tensor *outs[] = {
      crl_add(x, x),
      crl_exp(x),
      crl_clone(x),
      crl_cast(x, CRL_FLOAT32),
      crl_where(crl_gt_scalar(x, 2), x, x),
      crl_sum(x, 0, NULL, false),
      crl_reshape(x, CRL_SHAPE(4)),
      crl_transpose(x, 0, 1),
      crl_mul_scalar(x, 2),
  };
  crl_no_grad_end();
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
    CRL_CHECK_PTR(outs[i]);
    if (outs[i] == x) continue;
    assert_false(outs[i]->requires_grad);
    assert_null(outs[i]->grad_fn);
  }
  /* a backward fed by a no-grad part sees it as a constant */
  crl_tensor *c = outs[1]; /* exp(x), constant */
  CRL_CHECK_OK(crl_backward(sum_all(crl_mul(c, x)), NULL));
  for (int i = 0; i < 4; i++)
    ASSERT_NEAR(crl_tensor_get_flat(x->grad, i), exp(i + 1), 1e-12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_grad_mode),
      CRL_TEST(test_grad_mode_thread_local),
      CRL_TEST(test_requires_grad_rules),
      CRL_TEST(test_accumulation),
      CRL_TEST(test_used_twice_and_diamond),
      CRL_TEST(test_shared_gradient_buffers),
      CRL_TEST(test_explicit_upstream),
      CRL_TEST(test_backward_errors),
      CRL_TEST(test_freed_graph_and_retain),
      CRL_TEST(test_detach),
      CRL_TEST(test_inplace_on_leaf),
      CRL_TEST(test_long_chain),
      CRL_TEST(test_no_grad_results),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
