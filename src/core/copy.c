/* Copies, casts, in-place fills and updates, equality. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* ---- cast / clone / contiguous (differentiable) ---------------------------
 */

static int cast_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  crl_dtype dt = n->edges[0].dtype;
  gin[0] = g->dtype == dt ? g : crl__to_contig_dtype(g, dt);
  return gin[0] ? 0 : crl_last_error_code();
}

static crl_tensor *copy_op(const char *name, crl_tensor *a, crl_dtype dt) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", name);
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: invalid dtype %d", name, (int)dt);
  if (crl__check_cpu(name, a)) return NULL;
  crl_tensor *out = crl__to_contig_dtype(a, dt);
  if (!out) return NULL;
  if (crl_dtype_is_float(dt) && crl__any_requires_grad(1, &a)) {
    if (!crl__record(out, name, cast_backward, 1, &a)) {
      crl__discard(out);
      return NULL;
    }
  }
  return out;
}

crl_tensor *crl_cast(crl_tensor *a, crl_dtype dt) {
  return copy_op("cast", a, dt);
}

crl_tensor *crl_clone(crl_tensor *a) {
  return a ? copy_op("clone", a, a->dtype)
           : CRL_ERR_NULL(CRL_EINVAL, "clone: tensor is NULL");
}

crl_tensor *crl_contiguous(crl_tensor *a) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "contiguous: tensor is NULL");
  if (crl_tensor_is_contiguous(a)) {
    crl_tensor_retain(a);
    crl__scope_adopt(a);
    return a;
  }
  return copy_op("contiguous", a, a->dtype);
}

/* ---- in place
 * ---------------------------------------------------------------- */

static int check_broadcast_to(const char *op, const crl_tensor *dst,
                              const crl_tensor *src) {
  bool ok = src->ndim <= dst->ndim;
  for (int i = 0; ok && i < src->ndim; i++) {
    int64_t s = src->shape[src->ndim - 1 - i];
    if (s != 1 && s != dst->shape[dst->ndim - 1 - i]) ok = false;
  }
  if (!ok) {
    char b1[160], b2[160];
    return crl__err(CRL_ESHAPE, "%s: source shape %s does not broadcast to %s",
                    op, CRL_SHAPE_STR(src, b1), CRL_SHAPE_STR(dst, b2));
  }
  return 0;
}

int crl_copy_(crl_tensor *dst, crl_tensor *src) {
  if (!dst || !src) return crl__err(CRL_EINVAL, "copy_: tensor is NULL");
  int rc;
  if ((rc = crl__check_cpu("copy_", dst)) ||
      (rc = crl__check_cpu("copy_", src)))
    return rc;
  if ((rc = check_broadcast_to("copy_", dst, src))) return rc;
  if ((rc = crl__check_inplace("copy_", dst))) return rc;
  crl__copy_into(dst, src);
  return 0;
}

typedef struct {
  crl_dtype dt;
  double v;
} fill_ctx;

static void fill_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const fill_ctx *c = vctx;
  switch (c->dt) {
  case CRL_FLOAT32: {
    float v = (float)c->v;
    if (s[0] == 4)
      for (int64_t i = 0; i < n; i++)
        ((float *)p[0])[i] = v;
    else
      for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * s[0]) = v;
    break;
  }
  default:
    for (int64_t i = 0; i < n; i++)
      crl__store(c->dt, p[0] + i * s[0], 0, c->v);
    break;
  }
}

int crl_fill_(crl_tensor *t, double value) {
  if (!t) return crl__err(CRL_EINVAL, "fill_: tensor is NULL");
  int rc;
  if ((rc = crl__check_cpu("fill_", t)) ||
      (rc = crl__check_inplace("fill_", t)))
    return rc;
  fill_ctx c = {t->dtype, value};
  crl__iterate_tensors(t, 0, NULL, fill_loop, &c, true);
  return 0;
}

int crl_zero_(crl_tensor *t) {
  if (t && crl_tensor_is_contiguous(t) && t->device.type == CRL_CPU) {
    int rc = crl__check_inplace("zero_", t);
    if (rc) return rc;
    memset(t->data, 0, (size_t)t->numel * crl_dtype_size(t->dtype));
    return 0;
  }
  return crl_fill_(t, 0.0);
}

typedef struct {
  crl_dtype dt;
  double alpha;
} axpy_ctx;

static void axpy_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const axpy_ctx *c = vctx;
  if (c->dt == CRL_FLOAT32) {
    float al = (float)c->alpha;
    if (s[0] == 4 && s[1] == 4) {
      float *d = (float *)p[0];
      const float *x = (const float *)p[1];
      for (int64_t i = 0; i < n; i++)
        d[i] += al * x[i];
    } else {
      for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * s[0]) += al * *(const float *)(p[1] + i * s[1]);
    }
  } else if (c->dt == CRL_FLOAT64) {
    for (int64_t i = 0; i < n; i++)
      *(double *)(p[0] + i * s[0]) +=
          c->alpha * *(const double *)(p[1] + i * s[1]);
  } else {
    for (int64_t i = 0; i < n; i++) {
      double v = crl__load(c->dt, p[0] + i * s[0], 0) +
                 c->alpha * crl__load(c->dt, p[1] + i * s[1], 0);
      crl__store(c->dt, p[0] + i * s[0], 0, v);
    }
  }
}

int crl_add_(crl_tensor *dst, crl_tensor *src, double alpha) {
  if (!dst || !src) return crl__err(CRL_EINVAL, "add_: tensor is NULL");
  int rc;
  if ((rc = crl__check_cpu("add_", dst)) || (rc = crl__check_cpu("add_", src)))
    return rc;
  if ((rc = check_broadcast_to("add_", dst, src))) return rc;
  if ((rc = crl__check_inplace("add_", dst))) return rc;
  crl_tensor *s = src;
  crl_scope_begin();
  if (src->dtype != dst->dtype) s = crl__to_contig_dtype(src, dst->dtype);
  if (!s) {
    crl_scope_end();
    return crl_last_error_code();
  }
  axpy_ctx c = {dst->dtype, alpha};
  crl__iterate_tensors(dst, 1, &s, axpy_loop, &c, true);
  crl_scope_end();
  return 0;
}

static void scale_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const axpy_ctx *c = vctx;
  if (c->dt == CRL_FLOAT32) {
    float al = (float)c->alpha;
    for (int64_t i = 0; i < n; i++)
      *(float *)(p[0] + i * s[0]) *= al;
  } else {
    for (int64_t i = 0; i < n; i++)
      crl__store(c->dt, p[0] + i * s[0], 0,
                 crl__load(c->dt, p[0] + i * s[0], 0) * c->alpha);
  }
}

int crl_mul_scalar_(crl_tensor *dst, double s) {
  if (!dst) return crl__err(CRL_EINVAL, "mul_scalar_: tensor is NULL");
  int rc;
  if ((rc = crl__check_cpu("mul_scalar_", dst)) ||
      (rc = crl__check_inplace("mul_scalar_", dst)))
    return rc;
  axpy_ctx c = {dst->dtype, s};
  crl__iterate_tensors(dst, 0, NULL, scale_loop, &c, true);
  return 0;
}

/* ---- comparisons of whole tensors ------------------------------------------
 */

#define EQ_LOOP(T)                                                             \
  {                                                                            \
    const T *x = a->data, *y = b->data;                                        \
    for (int64_t i = 0; i < n; i++)                                            \
      if (!(x[i] == y[i])) return false;                                       \
    return true;                                                               \
  }

bool crl_equal(crl_tensor *a, crl_tensor *b) {
  if (!a || !b || !crl_same_shape(a, b)) return false;
  int64_t n = a->numel;
  if (a->dtype == b->dtype && crl_tensor_is_contiguous(a) &&
      crl_tensor_is_contiguous(b)) {
    switch (a->dtype) { /* typed compares: NaN != NaN, -0 == +0 */
    case CRL_FLOAT32: EQ_LOOP(float)
    case CRL_FLOAT64: EQ_LOOP(double)
    case CRL_INT64: EQ_LOOP(int64_t)
    case CRL_INT32: EQ_LOOP(int32_t)
    case CRL_UINT8: EQ_LOOP(uint8_t)
    default: break;
    }
  }
  for (int64_t i = 0; i < n; i++)
    if (crl_tensor_get_flat(a, i) != crl_tensor_get_flat(b, i)) return false;
  return true;
}

bool crl_allclose(crl_tensor *a, crl_tensor *b, double rtol, double atol) {
  if (!a || !b) return false;
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  if (crl__broadcast_shapes("allclose", a->ndim, a->shape, b->ndim, b->shape,
                            &nd, shape))
    return false;
  bool ok = true;
  crl_scope_begin();
  crl_tensor *ea = crl_expand(a, nd, shape), *eb = crl_expand(b, nd, shape);
  if (!ea || !eb) {
    ok = false;
  } else {
    for (int64_t i = 0; i < ea->numel && ok; i++) {
      double x = crl_tensor_get_flat(ea, i), y = crl_tensor_get_flat(eb, i);
      /* equal (incl. same-sign infinities) or finite and within tolerance;
       * inf vs -inf is not close although inf <= atol + rtol * inf */
      if (x != y &&
          !(isfinite(x) && isfinite(y) && fabs(x - y) <= atol + rtol * fabs(y)))
        ok = false;
    }
  }
  crl_scope_end();
  return ok;
}
