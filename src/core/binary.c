/* Binary elementwise ops: arithmetic, min/max, comparisons, logic, where.
 * Broadcasting as NumPy, dtype promotion as torch. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

enum {
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_POW,
  OP_MIN,
  OP_MAX,
  OP_ADDS, /* a + alpha * b */
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_AND,
  OP_OR,
};

static const char *op_names[] = {
    "add", "sub", "mul", "div", "pow", "minimum", "maximum",     "add_scaled",
    "eq",  "ne",  "lt",  "le",  "gt",  "ge",      "logical_and", "logical_or"};

typedef struct {
  int op;
  double alpha;
} bctx;

#define LOOP2(TI, TO, EXPR)                                                    \
  {                                                                            \
    char *po = p[0], *pa = p[1], *pb = p[2];                                   \
    int64_t so = s[0], sa = s[1], sb = s[2];                                   \
    if (so == sizeof(TO) && sa == sizeof(TI) && sb == sizeof(TI)) {            \
      TO *o = (TO *)po;                                                        \
      const TI *A = (const TI *)pa, *B = (const TI *)pb;                       \
      for (int64_t i = 0; i < n; i++) {                                        \
        TI x = A[i], y = B[i];                                                 \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (so == sizeof(TO) && sa == sizeof(TI) && sb == 0) {              \
      TO *o = (TO *)po;                                                        \
      const TI *A = (const TI *)pa;                                            \
      const TI y = *(const TI *)pb;                                            \
      for (int64_t i = 0; i < n; i++) {                                        \
        TI x = A[i];                                                           \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (so == sizeof(TO) && sa == 0 && sb == sizeof(TI)) {              \
      TO *o = (TO *)po;                                                        \
      const TI *B = (const TI *)pb;                                            \
      const TI x = *(const TI *)pa;                                            \
      for (int64_t i = 0; i < n; i++) {                                        \
        TI y = B[i];                                                           \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        TI x = *(const TI *)(pa + i * sa), y = *(const TI *)(pb + i * sb);     \
        *(TO *)(po + i * so) = (TO)(EXPR);                                     \
      }                                                                        \
    }                                                                          \
  }

static inline int64_t ipow(int64_t b, int64_t e) {
  if (e < 0) return b == 1 ? 1 : (b == -1 ? (e & 1 ? -1 : 1) : 0);
  uint64_t r = 1, ub = (uint64_t)b; /* wraps on overflow, as torch's */
  while (e) {
    if (e & 1) r *= ub;
    e >>= 1;
    if (e) ub *= ub;
  }
  return (int64_t)r;
}

/* NaN-propagating min/max as torch.minimum/maximum */
#define FMINP(x, y)                                                            \
  ((x) != (x) ? (x) : ((y) != (y) ? (y) : ((x) < (y) ? (x) : (y))))
#define FMAXP(x, y)                                                            \
  ((x) != (x) ? (x) : ((y) != (y) ? (y) : ((x) > (y) ? (x) : (y))))

/* clang-format off */
#define CMP_CASES(T)                                                           \
  case OP_EQ: LOOP2(T, uint8_t, x == y) break;                                 \
  case OP_NE: LOOP2(T, uint8_t, x != y) break;                                 \
  case OP_LT: LOOP2(T, uint8_t, x < y) break;                                  \
  case OP_LE: LOOP2(T, uint8_t, x <= y) break;                                 \
  case OP_GT: LOOP2(T, uint8_t, x > y) break;                                  \
  case OP_GE: LOOP2(T, uint8_t, x >= y) break;

#define FLOAT_CASES(T, POW)                                              \
  case OP_ADD: LOOP2(T, T, x + y) break;                                       \
  case OP_SUB: LOOP2(T, T, x - y) break;                                       \
  case OP_MUL: LOOP2(T, T, x *y) break;                                        \
  case OP_DIV: LOOP2(T, T, x / y) break;                                       \
  case OP_POW: LOOP2(T, T, POW(x, y)) break;                                   \
  case OP_MIN: LOOP2(T, T, FMINP(x, y)) break;                                 \
  case OP_MAX: LOOP2(T, T, FMAXP(x, y)) break;                                 \
  case OP_ADDS: {                                                              \
    const T al = (T)c->alpha;                                                  \
    LOOP2(T, T, x + al * y) break;                                             \
  }                                                                            \
    CMP_CASES(T)

/* integer arithmetic wraps (as torch's) — computed in uint64_t so that
 * overflow is defined */
#define WRAP(T, E) (T)(uint64_t)(E)
#define INT_CASES(T)                                                           \
  case OP_ADD: LOOP2(T, T, WRAP(T, (uint64_t)x + (uint64_t)y)) break;          \
  case OP_SUB: LOOP2(T, T, WRAP(T, (uint64_t)x - (uint64_t)y)) break;          \
  case OP_MUL: LOOP2(T, T, WRAP(T, (uint64_t)x *(uint64_t)y)) break;           \
  case OP_POW: LOOP2(T, T, ipow(x, y)) break;                                  \
  case OP_MIN: LOOP2(T, T, x < y ? x : y) break;                               \
  case OP_MAX: LOOP2(T, T, x > y ? x : y) break;                               \
  case OP_ADDS: {                                                              \
    const uint64_t al = (uint64_t)(int64_t)c->alpha;                           \
    LOOP2(T, T, WRAP(T, (uint64_t)x + al * (uint64_t)y)) break;                \
  }                                                                            \
    CMP_CASES(T)

/* clang-format on */

typedef struct {
  bctx c;
  crl_dtype dt;
} kctx;

static void binary_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const kctx *k = vctx;
  const bctx *c = &k->c;
  switch (k->dt) {
  case CRL_FLOAT32:
    switch (c->op) { FLOAT_CASES(float, powf) default : break; }
    break;
  case CRL_FLOAT64:
    switch (c->op) { FLOAT_CASES(double, pow) default : break; }
    break;
  case CRL_INT64:
    switch (c->op) { INT_CASES(int64_t) default : break; }
    break;
  case CRL_INT32:
    switch (c->op) { INT_CASES(int32_t) default : break; }
    break;
  case CRL_UINT8:
    switch (c->op) { INT_CASES(uint8_t) default : break; }
    break;
  case CRL_BOOL:
    switch (c->op) {
    case OP_AND: LOOP2(uint8_t, uint8_t, x && y) break;
    case OP_OR: LOOP2(uint8_t, uint8_t, x || y) break; CMP_CASES(uint8_t)
    default: break;
    }
    break;
  default: break;
  }
}

/* ---- backward ----------------------------------------------------------- */

static crl_tensor *to_in(crl_node *n, int i, crl_tensor *g) {
  if (!g) return NULL;
  crl_tensor *r = crl__sum_to(g, n->edges[i].ndim, n->edges[i].shape);
  if (r && r->dtype != n->edges[i].dtype) r = crl_cast(r, n->edges[i].dtype);
  return r;
}

static int binary_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *a = n->saved[0], *b = n->saved[1], *y = n->saved[2];
  bool na = n->edges[0].needs_grad, nb = n->edges[1].needs_grad;
  switch (n->i[0]) {
  case OP_ADD:
    if (na) gin[0] = to_in(n, 0, g);
    if (nb) gin[1] = to_in(n, 1, g);
    break;
  case OP_ADDS:
    if (na) gin[0] = to_in(n, 0, g);
    if (nb) gin[1] = to_in(n, 1, crl_mul_scalar(g, n->f[0]));
    break;
  case OP_SUB:
    if (na) gin[0] = to_in(n, 0, g);
    if (nb) gin[1] = to_in(n, 1, crl_neg(g));
    break;
  case OP_MUL:
    if (na) gin[0] = to_in(n, 0, crl_mul(g, b));
    if (nb) gin[1] = to_in(n, 1, crl_mul(g, a));
    break;
  case OP_DIV:
    if (na) gin[0] = to_in(n, 0, crl_div(g, b));
    /* d(a/b)/db = -y / b */
    if (nb) gin[1] = to_in(n, 1, crl_neg(crl_div(crl_mul(g, y), b)));
    break;
  case OP_POW:
    /* d/da = b * a^(b-1); d/db = y * log(a) (0 where a == 0, as torch) */
    if (na)
      gin[0] = to_in(
          n, 0, crl_mul(g, crl_mul(b, crl_pow(a, crl_sub_scalar(b, 1.0)))));
    if (nb) {
      crl_tensor *la = crl_log(a);
      crl_tensor *zero = crl_eq_scalar(a, 0.0);
      if (!la || !zero) return crl_last_error_code();
      crl_tensor *t = crl_masked_fill(crl_mul(y, la), zero, 0.0);
      gin[1] = to_in(n, 1, crl_mul(g, t));
    }
    break;
  case OP_MIN:
  case OP_MAX: {
    /* gradient to the chosen input; ties split evenly (torch's) */
    crl_tensor *wa = crl_cast(crl_eq(a, y), g->dtype);
    crl_tensor *wb = crl_cast(crl_eq(b, y), g->dtype);
    if (!wa || !wb) return crl_last_error_code();
    crl_tensor *tot = crl_add(wa, wb);
    if (na) gin[0] = to_in(n, 0, crl_div(crl_mul(g, wa), tot));
    if (nb) gin[1] = to_in(n, 1, crl_div(crl_mul(g, wb), tot));
    break;
  }
  default: return crl__err(CRL_EAUTOGRAD, "binary backward: bad op");
  }
  if ((na && !gin[0]) || (nb && !gin[1])) return crl_last_error_code();
  return 0;
}

/* ---- forward ------------------------------------------------------------ */

static bool is_cmp(int op) { return op >= OP_EQ && op <= OP_GE; }

static crl_tensor *binary(int op, crl_tensor *a, crl_tensor *b, double alpha) {
  const char *name = op_names[op];
  if (!a || !b) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", name);
  if (crl__check_cpu(name, a) || crl__check_cpu(name, b)) return NULL;
  crl_dtype cdt, odt;
  if (op == OP_AND || op == OP_OR) {
    cdt = odt = CRL_BOOL;
  } else {
    cdt = crl_promote_types(a->dtype, b->dtype);
    if (op == OP_DIV && !crl_dtype_is_float(cdt)) cdt = CRL_FLOAT32;
    if (cdt == CRL_BOOL && !is_cmp(op))
      return CRL_ERR_NULL(
          CRL_EDTYPE, "%s: not defined for bool tensors (cast first)", name);
    odt = is_cmp(op) ? CRL_BOOL : cdt;
  }
  int nd;
  int64_t shape[CRL_MAX_DIMS];
  if (crl__broadcast_shapes(name, a->ndim, a->shape, b->ndim, b->shape, &nd,
                            shape))
    return NULL;
  crl_tensor *out = crl_empty(odt, nd, shape);
  if (!out) return NULL;
  kctx k = {{op, alpha}, cdt};
  if (a->dtype == cdt && b->dtype == cdt && a->numel == out->numel &&
      b->numel == out->numel && crl_tensor_is_contiguous(a) &&
      crl_tensor_is_contiguous(b) && out->numel < 2 * CRL_PARALLEL_GRAIN) {
    /* fast path: same shape, contiguous, small */
    char *p[3] = {out->data, a->data, b->data};
    int64_t es = (int64_t)crl_dtype_size(cdt);
    int64_t s[3] = {(int64_t)crl_dtype_size(odt), es, es};
    binary_loop(p, s, out->numel, &k);
  } else {
    crl_tensor *ca = a, *cb = b;
    if (a->dtype != cdt) ca = crl__to_contig_dtype(a, cdt);
    if (b->dtype != cdt) cb = crl__to_contig_dtype(b, cdt);
    if (!ca || !cb) {
      if (ca != a) crl__discard(ca);
      if (cb != b) crl__discard(cb);
      crl__discard(out);
      return NULL;
    }
    crl_tensor *srcs[2] = {ca, cb};
    crl__iterate_tensors(out, 2, srcs, binary_loop, &k, true);
    if (cb != b) crl__discard(cb);
    if (ca != a) crl__discard(ca);
  }
  if (op <= OP_ADDS && crl_dtype_is_float(cdt)) {
    crl_tensor *in[2] = {a, b};
    if (crl__any_requires_grad(2, in)) {
      crl_node *n = crl__record(out, name, binary_backward, 2, in);
      if (!n) {
        crl__discard(out);
        return NULL;
      }
      n->i[0] = op;
      n->f[0] = alpha;
      if (op != OP_ADD && op != OP_SUB && op != OP_ADDS) {
        crl__save(n, 0, a);
        crl__save(n, 1, b);
      }
      if (op == OP_DIV || op == OP_POW || op == OP_MIN || op == OP_MAX)
        crl__save(n, 2, out);
    }
  }
  return out;
}

crl_tensor *crl_add(crl_tensor *a, crl_tensor *b) {
  return binary(OP_ADD, a, b, 1);
}
crl_tensor *crl_sub(crl_tensor *a, crl_tensor *b) {
  return binary(OP_SUB, a, b, 1);
}
crl_tensor *crl_mul(crl_tensor *a, crl_tensor *b) {
  return binary(OP_MUL, a, b, 1);
}
crl_tensor *crl_div(crl_tensor *a, crl_tensor *b) {
  return binary(OP_DIV, a, b, 1);
}
crl_tensor *crl_pow(crl_tensor *a, crl_tensor *b) {
  return binary(OP_POW, a, b, 1);
}
crl_tensor *crl_minimum(crl_tensor *a, crl_tensor *b) {
  return binary(OP_MIN, a, b, 1);
}
crl_tensor *crl_maximum(crl_tensor *a, crl_tensor *b) {
  return binary(OP_MAX, a, b, 1);
}
crl_tensor *crl_add_scaled(crl_tensor *a, crl_tensor *b, double alpha) {
  return binary(OP_ADDS, a, b, alpha);
}
crl_tensor *crl_eq(crl_tensor *a, crl_tensor *b) {
  return binary(OP_EQ, a, b, 1);
}
crl_tensor *crl_ne(crl_tensor *a, crl_tensor *b) {
  return binary(OP_NE, a, b, 1);
}
crl_tensor *crl_lt(crl_tensor *a, crl_tensor *b) {
  return binary(OP_LT, a, b, 1);
}
crl_tensor *crl_le(crl_tensor *a, crl_tensor *b) {
  return binary(OP_LE, a, b, 1);
}
crl_tensor *crl_gt(crl_tensor *a, crl_tensor *b) {
  return binary(OP_GT, a, b, 1);
}
crl_tensor *crl_ge(crl_tensor *a, crl_tensor *b) {
  return binary(OP_GE, a, b, 1);
}
crl_tensor *crl_logical_and(crl_tensor *a, crl_tensor *b) {
  return binary(OP_AND, a, b, 1);
}
crl_tensor *crl_logical_or(crl_tensor *a, crl_tensor *b) {
  return binary(OP_OR, a, b, 1);
}

/* ---- scalar forms -------------------------------------------------------
 * The scalar becomes a 0-dim tensor of the result dtype: a float tensor
 * keeps its dtype; an integer tensor keeps it for integral scalars and
 * becomes float32 otherwise. */

/* Can integer dtype dt hold s exactly? */
static bool int_holds(crl_dtype dt, double s) {
  if (s != floor(s)) return false;
  switch (dt) {
  case CRL_UINT8: return s >= 0 && s <= 255;
  case CRL_INT32: return s >= -2147483648.0 && s <= 2147483647.0;
  default: return fabs(s) < 9e15;
  }
}

static crl_dtype scalar_dtype(int op, const crl_tensor *a, double s) {
  if (crl_dtype_is_float(a->dtype)) return a->dtype;
  if (is_cmp(op)) {
    /* compare exactly: a scalar the integer dtype cannot hold (2.5, -1 for
     * uint8, 1e10 for int32) is compared in float64 */
    crl_dtype dt = a->dtype == CRL_BOOL ? CRL_INT64 : a->dtype;
    return int_holds(dt, s) ? dt : CRL_FLOAT64;
  }
  if (s == floor(s) && fabs(s) < 9e15)
    return a->dtype == CRL_BOOL ? CRL_INT64 : a->dtype;
  return CRL_FLOAT32;
}

static crl_tensor *with_scalar(int op, crl_tensor *a, double s, bool rev) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op_names[op]);
  crl_dtype dt = scalar_dtype(op, a, s);
  crl_scope_begin();
  crl_tensor *st = crl_scalar(dt, s);
  crl_tensor *x = a;
  if (st && a->dtype != dt && !is_cmp(op)) x = crl_cast(a, dt);
  crl_tensor *r =
      (st && x) ? (rev ? binary(op, st, x, 1) : binary(op, x, st, 1)) : NULL;
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(r);
}

crl_tensor *crl_add_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_ADD, a, s, false);
}
crl_tensor *crl_sub_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_SUB, a, s, false);
}
crl_tensor *crl_mul_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_MUL, a, s, false);
}
crl_tensor *crl_div_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_DIV, a, s, false);
}
crl_tensor *crl_pow_scalar(crl_tensor *a, double e) {
  return with_scalar(OP_POW, a, e, false);
}
crl_tensor *crl_rsub_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_SUB, a, s, true);
}
crl_tensor *crl_rdiv_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_DIV, a, s, true);
}
crl_tensor *crl_rpow_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_POW, a, s, true);
}
crl_tensor *crl_eq_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_EQ, a, s, false);
}
crl_tensor *crl_lt_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_LT, a, s, false);
}
crl_tensor *crl_gt_scalar(crl_tensor *a, double s) {
  return with_scalar(OP_GT, a, s, false);
}

/* ---- where -----------------------------------------------------------------
 */

static int where_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *cond = n->saved[0];
  if (n->edges[1].needs_grad) {
    gin[1] = to_in(n, 1, crl_where(cond, g, crl_zeros_like(g)));
    if (!gin[1]) return crl_last_error_code();
  }
  if (n->edges[2].needs_grad) {
    gin[2] = to_in(n, 2, crl_where(cond, crl_zeros_like(g), g));
    if (!gin[2]) return crl_last_error_code();
  }
  return 0;
}

#define WHERE_LOOP(T)                                                          \
  for (int64_t i = 0; i < n; i++)                                              \
    *(T *)(p[0] + i * s[0]) = *(const uint8_t *)(p[1] + i * s[1])              \
                                  ? *(const T *)(p[2] + i * s[2])              \
                                  : *(const T *)(p[3] + i * s[3]);

static void where_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  switch (*(crl_dtype *)ctx) {
  case CRL_FLOAT32: WHERE_LOOP(float) break;
  case CRL_FLOAT64: WHERE_LOOP(double) break;
  case CRL_INT64: WHERE_LOOP(int64_t) break;
  case CRL_INT32: WHERE_LOOP(int32_t) break;
  default: WHERE_LOOP(uint8_t) break;
  }
}

crl_tensor *crl_where(crl_tensor *cond, crl_tensor *a, crl_tensor *b) {
  if (!cond || !a || !b)
    return CRL_ERR_NULL(CRL_EINVAL, "where: tensor is NULL");
  if (cond->dtype != CRL_BOOL)
    return CRL_ERR_NULL(CRL_EDTYPE, "where: condition must be bool, not %s",
                        crl_dtype_name(cond->dtype));
  int nd, nd2;
  int64_t s1[CRL_MAX_DIMS], shape[CRL_MAX_DIMS];
  if (crl__broadcast_shapes("where", a->ndim, a->shape, b->ndim, b->shape, &nd,
                            s1) ||
      crl__broadcast_shapes("where", cond->ndim, cond->shape, nd, s1, &nd2,
                            shape))
    return NULL;
  crl_dtype dt = crl_promote_types(a->dtype, b->dtype);
  crl_scope_begin();
  crl_tensor *ca = a->dtype == dt ? a : crl__to_contig_dtype(a, dt);
  crl_tensor *cb = b->dtype == dt ? b : crl__to_contig_dtype(b, dt);
  crl_tensor *out = (ca && cb) ? crl_empty(dt, nd2, shape) : NULL;
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  crl_tensor *srcs[3] = {cond, ca, cb};
  crl__iterate_tensors(out, 3, srcs, where_loop, &dt, true);
  out = crl_scope_end_keep(out);
  if (crl_dtype_is_float(dt)) {
    crl_tensor *in[3] = {cond, a, b};
    if (crl__any_requires_grad(3, in)) {
      crl_node *n = crl__record(out, "where", where_backward, 3, in);
      if (!n) {
        crl__discard(out);
        return NULL;
      }
      crl__save(n, 0, cond);
    }
  }
  return out;
}

crl_tensor *crl_clamp_tensor(crl_tensor *a, crl_tensor *lo, crl_tensor *hi) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "clamp: tensor is NULL");
  crl_scope_begin();
  crl_tensor *r = a;
  if (lo) r = crl_maximum(r, lo);
  if (r && hi) r = crl_minimum(r, hi);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  if (r == a) r = crl_clone(a);
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(r);
}
