/* Finite-difference gradient check used across the test suite. */
#include <math.h>
#include <stdlib.h>

#include "../core/internal.h"

static double weighted_sum(crl_tensor *out, const double *w) {
  double s = 0;
  for (int64_t k = 0; k < out->numel; k++)
    s += crl_tensor_get_flat(out, k) * w[k];
  return s;
}

static int64_t flat_offset(const crl_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return off;
}

int crl_gradcheck(crl_gradcheck_fn fn, crl_tensor **inputs, int n, void *ctx,
                  double eps, double atol, double rtol) {
  int rc = 0;
  double *w = NULL;
  crl_scope_begin();
  /* analytic */
  for (int i = 0; i < n; i++)
    if (inputs[i]) crl_zero_grad(inputs[i]);
  crl_tensor *out = fn(inputs, ctx);
  if (!out) {
    rc = crl_last_error_code() ? crl_last_error_code() : CRL_EINVAL;
    goto done;
  }
  w = malloc(sizeof(double) * (size_t)(out->numel ? out->numel : 1));
  if (!w) {
    rc = crl__err(CRL_ENOMEM, "gradcheck: out of memory");
    goto done;
  }
  crl_rng g;
  crl_rng_seed(&g, 1234);
  for (int64_t k = 0; k < out->numel; k++)
    w[k] = crl_rng_uniform(&g) + 0.5;
  if (!out->requires_grad) {
    rc = crl__err(CRL_EAUTOGRAD,
                  "gradcheck: output does not require grad (op recorded no "
                  "graph)");
    goto done;
  }
  crl_tensor *wt = crl_empty(out->dtype, out->ndim, out->shape);
  if (!wt) {
    rc = crl_last_error_code();
    goto done;
  }
  for (int64_t k = 0; k < out->numel; k++)
    crl__store(wt->dtype, wt->data, k, w[k]);
  crl_tensor *loss = crl_sum(crl_mul(out, wt), 0, NULL, false);
  if (!loss || (rc = crl_backward(loss, NULL))) {
    rc = rc ? rc : crl_last_error_code();
    goto done;
  }
  /* numeric */
  crl_no_grad_begin();
  for (int i = 0; i < n && !rc; i++) {
    crl_tensor *x = inputs[i];
    if (!x || !x->requires_grad) continue;
    for (int64_t j = 0; j < x->numel && !rc; j++) {
      int64_t off = flat_offset(x, j);
      double x0 = crl__load(x->dtype, x->data, off);
      /* evaluate each output before moving x again: fn may return a view
       * of its input */
      crl_scope_begin();
      crl__store(x->dtype, x->data, off, x0 + eps);
      crl_tensor *op = fn(inputs, ctx);
      double lp = op ? weighted_sum(op, w) : 0;
      crl__store(x->dtype, x->data, off, x0 - eps);
      crl_tensor *om = op ? fn(inputs, ctx) : NULL;
      double lm = om ? weighted_sum(om, w) : 0;
      crl__store(x->dtype, x->data, off, x0);
      if (!op || !om) {
        rc = crl_last_error_code() ? crl_last_error_code() : CRL_EINVAL;
        crl_scope_end();
        break;
      }
      double num = (lp - lm) / (2 * eps);
      double ana = x->grad ? crl_tensor_get_flat(x->grad, j) : 0.0;
      crl_scope_end();
      if (!(fabs(ana - num) <= atol + rtol * fabs(num))) {
        char b[160];
        rc = crl__err(CRL_EINVAL,
                      "gradcheck: input %d (shape %s) element %lld: analytic "
                      "%.8g vs numeric %.8g",
                      i, CRL_SHAPE_STR(x, b), (long long)j, ana, num);
      }
    }
  }
  crl_no_grad_end();
done:
  free(w);
  crl_scope_end();
  return rc;
}
