/* The shared optimizer object: creation and validation of parameters,
 * step (validate every gradient, then update in place), zero_grad, lr and
 * step counters, state access, and gradient-norm clipping. */
#include <stdlib.h>

#include "internal.h"

int crl__optim_check_nonneg(const char *op, const char *what, double v) {
  if (!(v >= 0) || isinf(v))
    return crl__err(CRL_EINVAL, "%s: %s must be finite and >= 0, got %g", op,
                    what, v);
  return 0;
}

/* A parameter (or gradient) the update kernels can work on directly. */
static int check_param(const char *op, crl_tensor *const *params, int i) {
  const crl_tensor *p = params[i];
  char b[160];
  if (!p) return crl__err(CRL_EINVAL, "%s: parameter %d is NULL", op, i);
  if (p->dtype != CRL_FLOAT32 && p->dtype != CRL_FLOAT64)
    return crl__err(CRL_EDTYPE,
                    "%s: parameter %d has dtype %s; parameters must be "
                    "float32 or float64",
                    op, i, crl_dtype_name(p->dtype));
  if (crl__check_cpu(op, p)) return CRL_EDEVICE;
  if (p->grad_fn)
    return crl__err(CRL_EINVAL,
                    "%s: parameter %d (shape %s) is not a leaf (made by %s); "
                    "optimize leaf tensors",
                    op, i, CRL_SHAPE_STR(p, b), p->grad_fn->name);
  if (!crl_tensor_is_contiguous(p))
    return crl__err(CRL_EINVAL,
                    "%s: parameter %d (shape %s) is not contiguous; the "
                    "optimizer updates parameter data in place and needs "
                    "contiguous parameters",
                    op, i, CRL_SHAPE_STR(p, b));
  for (int j = 0; j < i; j++)
    if (params[j] == p)
      return crl__err(CRL_EINVAL,
                      "%s: parameter %d is the same tensor as parameter %d", op,
                      i, j);
  return 0;
}

/* A new zero tensor like p that belongs to the optimizer (not to a scope). */
static crl_tensor *owned_zeros_like(const crl_tensor *p) {
  crl_scope_begin();
  crl_tensor *t = crl_tensor_retain(crl_zeros_like(p));
  crl_scope_end();
  return t;
}

crl_optimizer *crl__optim_create(const char *op, const crl__optim_kind *kind,
                                 crl_tensor *const *params, int n, double lr,
                                 const bool *use_state, const void *opt,
                                 size_t size) {
  if (crl__optim_check_nonneg(op, "lr", lr)) return NULL;
  if (n <= 0)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: got %d parameters; need at least 1",
                        op, n);
  if (!params) return CRL_ERR_NULL(CRL_EINVAL, "%s: params is NULL", op);
  for (int i = 0; i < n; i++)
    if (check_param(op, params, i)) return NULL;

  crl_optimizer *o = calloc(1, sizeof *o);
  if (!o) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  o->kind = kind;
  o->n = n;
  o->lr = lr;
  memcpy(&o->opt, opt, size);
  o->params = calloc((size_t)n, sizeof *o->params);
  o->state = calloc((size_t)n * CRL__OPT_NSTATE, sizeof *o->state);
  o->param_steps = calloc((size_t)n, sizeof *o->param_steps);
  if (!o->params || !o->state || !o->param_steps) goto oom;
  for (int i = 0; i < n; i++) {
    o->params[i] = crl_tensor_retain(params[i]);
    for (int k = 0; k < CRL__OPT_NSTATE; k++) {
      if (!use_state[k]) continue;
      crl_tensor *s = owned_zeros_like(params[i]);
      if (!s) goto oom;
      o->state[i * CRL__OPT_NSTATE + k] = s;
    }
  }
  return o;
oom:
  crl_optimizer_free(o);
  return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory for optimizer state", op);
}

void crl_optimizer_free(crl_optimizer *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++) {
    if (o->params) crl_tensor_release(o->params[i]);
    if (o->state)
      for (int k = 0; k < CRL__OPT_NSTATE; k++)
        crl_tensor_release(o->state[i * CRL__OPT_NSTATE + k]);
  }
  free(o->params);
  free(o->state);
  free(o->param_steps);
  free(o);
}

/* Every gradient present must match its parameter; checked for all
 * parameters before any is updated. */
static int check_grads(const crl_optimizer *o) {
  for (int i = 0; i < o->n; i++) {
    const crl_tensor *p = o->params[i], *g = p->grad;
    char b1[160], b2[160];
    if (!g) continue;
    if (!crl_same_shape(g, p))
      return crl__err(CRL_ESHAPE,
                      "optimizer_step (%s): grad of parameter %d has shape "
                      "%s but the parameter has shape %s",
                      o->kind->name, i, CRL_SHAPE_STR(g, b1),
                      CRL_SHAPE_STR(p, b2));
    if (g->dtype != p->dtype)
      return crl__err(CRL_EDTYPE,
                      "optimizer_step (%s): grad of parameter %d has dtype "
                      "%s but the parameter has dtype %s",
                      o->kind->name, i, crl_dtype_name(g->dtype),
                      crl_dtype_name(p->dtype));
    if (!crl_tensor_is_contiguous(g))
      return crl__err(CRL_EINVAL,
                      "optimizer_step (%s): grad of parameter %d (shape %s) "
                      "is not contiguous",
                      o->kind->name, i, CRL_SHAPE_STR(g, b1));
    if (g->device.type != CRL_CPU)
      return crl__err(CRL_EDEVICE,
                      "optimizer_step (%s): grad of parameter %d is on %s, "
                      "not the cpu",
                      o->kind->name, i, crl_device_name(g->device));
    if (p->storage && !p->storage->writable)
      return crl__err(CRL_EIO,
                      "optimizer_step (%s): parameter %d (shape %s) has "
                      "read-only storage",
                      o->kind->name, i, CRL_SHAPE_STR(p, b1));
  }
  return 0;
}

int crl_optimizer_step(crl_optimizer *o) {
  if (!o) return crl__err(CRL_EINVAL, "optimizer_step: optimizer is NULL");
  int rc = check_grads(o);
  if (rc) return rc;
  for (int i = 0; i < o->n; i++) {
    crl_tensor *p = o->params[i];
    if (!p->grad) continue;
    int64_t step = ++o->param_steps[i];
    o->kind->update(o, p, p->grad, &o->state[i * CRL__OPT_NSTATE], step);
    p->version++;
  }
  o->steps++;
  return 0;
}

void crl_optimizer_zero_grad(crl_optimizer *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++)
    crl_zero_grad(o->params[i]);
}

double crl_optimizer_get_lr(const crl_optimizer *o) {
  if (!o) {
    crl__err(CRL_EINVAL, "optimizer_get_lr: optimizer is NULL");
    return NAN;
  }
  return o->lr;
}

void crl_optimizer_set_lr(crl_optimizer *o, double lr) {
  if (!o) {
    crl__err(CRL_EINVAL, "optimizer_set_lr: optimizer is NULL");
    return;
  }
  if (crl__optim_check_nonneg("optimizer_set_lr", "lr", lr)) return;
  o->lr = lr;
}

int64_t crl_optimizer_steps(const crl_optimizer *o) { return o ? o->steps : 0; }

void crl_optimizer_set_steps(crl_optimizer *o, int64_t steps) {
  if (!o) return;
  if (steps < 0) {
    crl__err(CRL_EINVAL, "optimizer_set_steps: steps must be >= 0, got %lld",
             (long long)steps);
    return;
  }
  o->steps = steps;
  for (int i = 0; i < o->n; i++)
    o->param_steps[i] = steps;
}

const char *crl_optimizer_name(const crl_optimizer *o) {
  return o ? o->kind->name : "";
}

int crl_optimizer_num_params(const crl_optimizer *o) { return o ? o->n : 0; }

crl_tensor *crl_optimizer_state(crl_optimizer *o, int i, const char *name) {
  if (!o || !name)
    return CRL_ERR_NULL(CRL_EINVAL, "optimizer_state: %s is NULL",
                        o ? "name" : "optimizer");
  if (i < 0 || i >= o->n)
    return CRL_ERR_NULL(CRL_EINDEX,
                        "optimizer_state: parameter index %d out of range "
                        "for %d parameters",
                        i, o->n);
  for (int k = 0; k < CRL__OPT_NSTATE; k++) {
    const char *s = o->kind->state_names[k];
    if (s && !strcmp(s, name)) {
      crl_tensor *t = o->state[i * CRL__OPT_NSTATE + k];
      if (!t)
        crl__err(CRL_EKEY,
                 "optimizer_state: %s keeps no '%s' with these options",
                 o->kind->name, name);
      return t;
    }
  }
  return CRL_ERR_NULL(CRL_EKEY, "optimizer_state: %s has no state '%s'",
                      o->kind->name, name);
}

/* ---- gradient clipping -------------------------------------------------- */

/* Sum of squares, in float vectors per block of 4096 elements and in double
 * across blocks (accurate and vectorised). */
static double sumsq_f32(const float *x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 4096) {
    int64_t e = b + 4096 < n ? b + 4096 : n, i = b;
    crl__vf acc0 = {0}, acc1 = {0};
    for (; i + 2 * CRL__VF <= e; i += 2 * CRL__VF) {
      crl__vf a = CRL__VLOAD(crl__vf, x + i);
      crl__vf c = CRL__VLOAD(crl__vf, x + i + CRL__VF);
      acc0 += a * a;
      acc1 += c * c;
    }
    acc0 += acc1;
    float s = 0;
    for (int k = 0; k < CRL__VF; k++)
      s += acc0[k];
    for (; i < e; i++)
      s += x[i] * x[i];
    total += s;
  }
  return total;
}

static double sumsq_f64(const double *x, int64_t n) {
  crl__vd acc0 = {0}, acc1 = {0};
  int64_t i = 0;
  for (; i + 2 * CRL__VD <= n; i += 2 * CRL__VD) {
    crl__vd a = CRL__VLOAD(crl__vd, x + i);
    crl__vd c = CRL__VLOAD(crl__vd, x + i + CRL__VD);
    acc0 += a * a;
    acc1 += c * c;
  }
  acc0 += acc1;
  double s = 0;
  for (int k = 0; k < CRL__VD; k++)
    s += acc0[k];
  for (; i < n; i++)
    s += x[i] * x[i];
  return s;
}

double crl_clip_grad_norm(crl_tensor *const *params, int n, double max_norm) {
  if (n < 0 || (n > 0 && !params))
    return crl__err(CRL_EINVAL, "clip_grad_norm: %s",
                    n < 0 ? "negative parameter count" : "params is NULL");
  if (!(max_norm >= 0))
    return crl__err(CRL_EINVAL, "clip_grad_norm: max_norm must be >= 0, got %g",
                    max_norm);
  for (int i = 0; i < n; i++) {
    const crl_tensor *p = params[i];
    char b[160];
    if (!p)
      return crl__err(CRL_EINVAL, "clip_grad_norm: parameter %d is NULL", i);
    const crl_tensor *g = p->grad;
    if (!g) continue;
    if (g->dtype != CRL_FLOAT32 && g->dtype != CRL_FLOAT64)
      return crl__err(CRL_EDTYPE,
                      "clip_grad_norm: grad of parameter %d has dtype %s; "
                      "float32 or float64 expected",
                      i, crl_dtype_name(g->dtype));
    if (!crl_tensor_is_contiguous(g))
      return crl__err(CRL_EINVAL,
                      "clip_grad_norm: grad of parameter %d (shape %s) is "
                      "not contiguous",
                      i, CRL_SHAPE_STR(g, b));
    if (crl__check_cpu("clip_grad_norm", g)) return CRL_EDEVICE;
  }
  double ss = 0;
  for (int i = 0; i < n; i++) {
    const crl_tensor *g = params[i]->grad;
    if (!g) continue;
    ss += g->dtype == CRL_FLOAT32 ? sumsq_f32(g->data, g->numel)
                                  : sumsq_f64(g->data, g->numel);
  }
  double total = sqrt(ss);
  /* torch: coef = max_norm / (total + 1e-6), applied when below 1. A
   * non-finite norm leaves the gradients alone (the caller sees it). */
  double coef = max_norm / (total + 1e-6);
  if (!isfinite(total) || coef >= 1) return total;
  for (int i = 0; i < n; i++) {
    crl_tensor *g = params[i]->grad;
    if (!g) continue;
    int64_t j = 0, m = g->numel;
    if (g->dtype == CRL_FLOAT32) {
      float *x = g->data, c = (float)coef;
      for (; j + CRL__VF <= m; j += CRL__VF) {
        crl__vf v = CRL__VLOAD(crl__vf, x + j) * c;
        CRL__VSTORE(x + j, v);
      }
      for (; j < m; j++)
        x[j] *= c;
    } else {
      double *x = g->data;
      for (; j + CRL__VD <= m; j += CRL__VD) {
        crl__vd v = CRL__VLOAD(crl__vd, x + j) * coef;
        CRL__VSTORE(x + j, v);
      }
      for (; j < m; j++)
        x[j] *= coef;
    }
    g->version++;
  }
  return total;
}
