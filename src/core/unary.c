/* Unary elementwise ops (math and activations) with fused backward kernels. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

enum {
  U_NEG,
  U_ABS,
  U_EXP,
  U_LOG,
  U_LOG1P,
  U_EXPM1,
  U_SQRT,
  U_RSQRT,
  U_SQUARE,
  U_RECIP,
  U_TANH,
  U_SIGMOID,
  U_RELU,
  U_ELU,
  U_LEAKY,
  U_SOFTPLUS,
  U_SILU,
  U_SIN,
  U_COS,
  U_CLAMP,
  U_SIGN,
  U_ISNAN,
  U_ISFINITE,
  U_NOT,
};

static const char *unames[] = {
    "neg",  "abs",   "exp",        "log",        "log1p",    "expm1",
    "sqrt", "rsqrt", "square",     "reciprocal", "tanh",     "sigmoid",
    "relu", "elu",   "leaky_relu", "softplus",   "silu",     "sin",
    "cos",  "clamp", "sign",       "isnan",      "isfinite", "logical_not"};

typedef struct {
  int op;
  double p0, p1; /* op parameters (alpha, slope, beta/threshold, lo/hi) */
} uctx;

/* value of op at x, for float type T with libm suffix F */
#define UNARY_EXPR(T, F)                                                       \
  switch (op) {                                                                \
  case U_NEG: return -x;                                                       \
  case U_ABS: return x < 0 ? -x : x;                                           \
  case U_EXP: return exp##F(x);                                                \
  case U_LOG: return log##F(x);                                                \
  case U_LOG1P: return log1p##F(x);                                            \
  case U_EXPM1: return expm1##F(x);                                            \
  case U_SQRT: return sqrt##F(x);                                              \
  case U_RSQRT: return (T)1 / sqrt##F(x);                                      \
  case U_SQUARE: return x * x;                                                 \
  case U_RECIP: return (T)1 / x;                                               \
  case U_TANH: return tanh##F(x);                                              \
  case U_SIGMOID: return (T)1 / ((T)1 + exp##F(-x));                           \
  case U_RELU: return x > 0 ? x : (x != x ? x : (T)0);                         \
  case U_ELU: return x > 0 ? x : (T)p0 * expm1##F(x);                          \
  case U_LEAKY: return x > 0 ? x : (T)p0 * x;                                  \
  case U_SOFTPLUS:                                                             \
    return x * (T)p0 > (T)p1 ? x : log1p##F(exp##F(x * (T)p0)) / (T)p0;        \
  case U_SILU: return x / ((T)1 + exp##F(-x));                                 \
  case U_SIN: return sin##F(x);                                                \
  case U_COS: return cos##F(x);                                                \
  case U_CLAMP: return x < (T)p0 ? (T)p0 : (x > (T)p1 ? (T)p1 : x);            \
  case U_SIGN: return (T)((x > 0) - (x < 0));                                  \
  default: return x;                                                           \
  }

static inline float uf32(int op, float x, double p0, double p1) {
  /* float32 exp/tanh/sigmoid/silu without libm calls, so loops vectorize */
  switch (op) {
  case U_EXP: return crl__expf(x);
  case U_TANH: return crl__tanhf(x);
  case U_SIGMOID: return 1.0f / (1.0f + crl__expf(-x));
  case U_SILU: return x / (1.0f + crl__expf(-x));
  case U_LOG: return crl__logf(x);
  case U_LOG1P: return crl__log1pf(x);
  case U_SOFTPLUS: {
    float z = x * (float)p0;
    return z > (float)p1 ? x : crl__log1pf(crl__expf(z)) / (float)p0;
  }
  default: break;
  }
  UNARY_EXPR(float, f)
}
static inline double uf64(int op, double x, double p0, double p1) {
  UNARY_EXPR(double, )
}

/* The switch is hoisted out of the loop by specialising on a constant op:
 * each case instantiates a loop GCC vectorizes where libm allows. */
#define ULOOP(T, FN, OPC)                                                      \
  {                                                                            \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                              \
      T *o = (T *)p[0];                                                        \
      const T *a = (const T *)p[1];                                            \
      for (int64_t i = 0; i < n; i++)                                          \
        o[i] = FN(OPC, a[i], p0, p1);                                          \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++)                                          \
        *(T *)(p[0] + i * s[0]) =                                              \
            FN(OPC, *(const T *)(p[1] + i * s[1]), p0, p1);                    \
    }                                                                          \
  }

#define UCASES(T, FN)                                                          \
  switch (c->op) {                                                             \
  case U_NEG: ULOOP(T, FN, U_NEG) break;                                       \
  case U_ABS: ULOOP(T, FN, U_ABS) break;                                       \
  case U_EXP: ULOOP(T, FN, U_EXP) break;                                       \
  case U_LOG: ULOOP(T, FN, U_LOG) break;                                       \
  case U_LOG1P: ULOOP(T, FN, U_LOG1P) break;                                   \
  case U_EXPM1: ULOOP(T, FN, U_EXPM1) break;                                   \
  case U_SQRT: ULOOP(T, FN, U_SQRT) break;                                     \
  case U_RSQRT: ULOOP(T, FN, U_RSQRT) break;                                   \
  case U_SQUARE: ULOOP(T, FN, U_SQUARE) break;                                 \
  case U_RECIP: ULOOP(T, FN, U_RECIP) break;                                   \
  case U_TANH: ULOOP(T, FN, U_TANH) break;                                     \
  case U_SIGMOID: ULOOP(T, FN, U_SIGMOID) break;                               \
  case U_RELU: ULOOP(T, FN, U_RELU) break;                                     \
  case U_ELU: ULOOP(T, FN, U_ELU) break;                                       \
  case U_LEAKY: ULOOP(T, FN, U_LEAKY) break;                                   \
  case U_SOFTPLUS: ULOOP(T, FN, U_SOFTPLUS) break;                             \
  case U_SILU: ULOOP(T, FN, U_SILU) break;                                     \
  case U_SIN: ULOOP(T, FN, U_SIN) break;                                       \
  case U_COS: ULOOP(T, FN, U_COS) break;                                       \
  case U_CLAMP: ULOOP(T, FN, U_CLAMP) break;                                   \
  case U_SIGN: ULOOP(T, FN, U_SIGN) break;                                     \
  default: break;                                                              \
  }

/* a function, so GCC does not warn on unsigned instantiations */
static inline int is_neg(int64_t v) { return v < 0; }

#define ILOOP(T, EXPR)                                                         \
  for (int64_t i = 0; i < n; i++) {                                            \
    T x = *(const T *)(p[1] + i * s[1]);                                       \
    *(T *)(p[0] + i * s[0]) = (T)(EXPR);                                       \
  }

#define ICASES(T)                                                              \
  switch (c->op) {                                                             \
  case U_NEG: ILOOP(T, -x) break;                                              \
  case U_ABS: ILOOP(T, is_neg(x) ? -x : x) break;                              \
  case U_SQUARE: ILOOP(T, x *x) break;                                         \
  case U_RELU: ILOOP(T, x > 0 ? x : 0) break;                                  \
  case U_SIGN: ILOOP(T, (x > 0) - is_neg(x)) break;                            \
  case U_CLAMP: ILOOP(T, x < p0 ? (T)p0 : (x > p1 ? (T)p1 : x)) break;         \
  default: break;                                                              \
  }

typedef struct {
  uctx c;
  crl_dtype dt;
} ukctx;

static void unary_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const ukctx *k = vctx;
  const uctx *c = &k->c;
  double p0 = c->p0, p1 = c->p1;
  switch (k->dt) {
  case CRL_FLOAT32: UCASES(float, uf32) break;
  case CRL_FLOAT64: UCASES(double, uf64) break;
  case CRL_INT64: ICASES(int64_t) break;
  case CRL_INT32: ICASES(int32_t) break;
  case CRL_UINT8: ICASES(uint8_t) break;
  default: break;
  }
}

/* ---- backward: gin = g * f'(x) computed from x and/or y = f(x) ---------- */

#define DERIV_EXPR(T, F)                                                       \
  switch (op) {                                                                \
  case U_NEG: return -g;                                                       \
  case U_ABS: return x > 0 ? g : (x < 0 ? -g : (T)0);                          \
  case U_EXP: return g * y;                                                    \
  case U_LOG: return g / x;                                                    \
  case U_LOG1P: return g / ((T)1 + x);                                         \
  case U_EXPM1: return g * (y + (T)1);                                         \
  case U_SQRT: return g * (T)0.5 / y;                                          \
  case U_RSQRT: return g * (T)-0.5 * y * y * y;                                \
  case U_SQUARE: return g * (T)2 * x;                                          \
  case U_RECIP: return -g * y * y;                                             \
  case U_TANH: return g * ((T)1 - y * y);                                      \
  case U_SIGMOID: return g * y * ((T)1 - y);                                   \
  case U_RELU: return x > 0 ? g : (T)0;                                        \
  case U_ELU: return x > 0 ? g : g * (y + (T)p0);                              \
  case U_LEAKY: return x > 0 ? g : g * (T)p0;                                  \
  case U_SOFTPLUS: {                                                           \
    T z = x * (T)p0;                                                           \
    return z > (T)p1 ? g : g / ((T)1 + exp##F(-z));                            \
  }                                                                            \
  case U_SILU: {                                                               \
    T sg = (T)1 / ((T)1 + exp##F(-x));                                         \
    return g * (sg + x * sg * ((T)1 - sg));                                    \
  }                                                                            \
  case U_SIN: return g * cos##F(x);                                            \
  case U_COS: return -g * sin##F(x);                                           \
  case U_CLAMP: return (x >= (T)p0 && x <= (T)p1) ? g : (T)0;                  \
  default: return (T)0;                                                        \
  }

static inline float df32(int op, float g, float x, float y, double p0,
                         double p1) {
  switch (op) {
  case U_SOFTPLUS: {
    float z = x * (float)p0;
    return z > (float)p1 ? g : g / (1.0f + crl__expf(-z));
  }
  case U_SILU: {
    float sg = 1.0f / (1.0f + crl__expf(-x));
    return g * (sg + x * sg * (1.0f - sg));
  }
  default: break;
  }
  DERIV_EXPR(float, f)
}
static inline double df64(int op, double g, double x, double y, double p0,
                          double p1) {
  DERIV_EXPR(double, )
}

#define DLOOP(T, FN)                                                           \
  for (int64_t i = 0; i < n; i++) {                                            \
    T g = *(const T *)(p[1] + i * s[1]);                                       \
    T x = *(const T *)(p[2] + i * s[2]);                                       \
    T y = *(const T *)(p[3] + i * s[3]);                                       \
    *(T *)(p[0] + i * s[0]) = FN(op, g, x, y, p0, p1);                         \
  }

#define DCASE(T, FN, OPC)                                                      \
  case OPC: {                                                                  \
    const int op = OPC;                                                        \
    DLOOP(T, FN) break;                                                        \
  }
#define DCASES(T, FN)                                                          \
  switch (k->c.op) {                                                           \
    DCASE(T, FN, U_NEG)                                                        \
    DCASE(T, FN, U_ABS)                                                        \
    DCASE(T, FN, U_EXP)                                                        \
    DCASE(T, FN, U_LOG)                                                        \
    DCASE(T, FN, U_LOG1P)                                                      \
    DCASE(T, FN, U_EXPM1)                                                      \
    DCASE(T, FN, U_SQRT)                                                       \
    DCASE(T, FN, U_RSQRT)                                                      \
    DCASE(T, FN, U_SQUARE)                                                     \
    DCASE(T, FN, U_RECIP)                                                      \
    DCASE(T, FN, U_TANH)                                                       \
    DCASE(T, FN, U_SIGMOID)                                                    \
    DCASE(T, FN, U_RELU)                                                       \
    DCASE(T, FN, U_ELU)                                                        \
    DCASE(T, FN, U_LEAKY)                                                      \
    DCASE(T, FN, U_SOFTPLUS)                                                   \
    DCASE(T, FN, U_SILU)                                                       \
    DCASE(T, FN, U_SIN)                                                        \
    DCASE(T, FN, U_COS)                                                        \
    DCASE(T, FN, U_CLAMP)                                                      \
  default: break;                                                              \
  }

static void deriv_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const ukctx *k = vctx;
  double p0 = k->c.p0, p1 = k->c.p1;
  if (k->dt == CRL_FLOAT32) {
    DCASES(float, df32)
  } else {
    DCASES(double, df64)
  }
}

static int unary_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  int op = (int)n->i[0];
  if (op == U_SIGN) return 0; /* zero gradient */
  if (op == U_NEG) {          /* saves nothing: -g */
    crl_dtype edt = n->edges[0].dtype;
    gin[0] = crl_neg(g->dtype == edt ? g : crl_cast(g, edt));
    return gin[0] ? 0 : crl_last_error_code();
  }
  crl_tensor *x = n->saved[0] ? n->saved[0] : n->saved[1];
  crl_tensor *y = n->saved[1] ? n->saved[1] : n->saved[0];
  crl_dtype dt = x->dtype;
  crl_tensor *gg = g->dtype == dt ? g : crl_cast(g, dt);
  crl_tensor *r = gg ? crl_empty(dt, g->ndim, g->shape) : NULL;
  if (!r) return crl_last_error_code();
  ukctx k = {{op, n->f[0], n->f[1]}, dt};
  crl_tensor *srcs[3] = {gg, x, y};
  crl__iterate_tensors(r, 3, srcs, deriv_loop, &k, true);
  gin[0] = r;
  return 0;
}

/* which of x (input) and y (output) the derivative reads */
static bool needs_x(int op) {
  return op != U_EXP && op != U_EXPM1 && op != U_SQRT && op != U_RSQRT &&
         op != U_RECIP && op != U_TANH && op != U_SIGMOID && op != U_NEG;
}
static bool needs_y(int op) {
  return op == U_EXP || op == U_EXPM1 || op == U_SQRT || op == U_RSQRT ||
         op == U_RECIP || op == U_TANH || op == U_SIGMOID || op == U_ELU;
}

/* ops defined on integers (keep dtype); others compute in float32 */
static bool int_ok(int op) {
  return op == U_NEG || op == U_ABS || op == U_SQUARE || op == U_RELU ||
         op == U_SIGN || op == U_CLAMP;
}

static crl_tensor *unary(int op, crl_tensor *a, double p0, double p1) {
  const char *name = unames[op];
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", name);
  if (crl__check_cpu(name, a)) return NULL;
  crl_dtype dt = a->dtype;
  if (dt == CRL_BOOL)
    return CRL_ERR_NULL(CRL_EDTYPE, "%s: not defined for bool tensors", name);
  crl_tensor *x = a;
  if (!crl_dtype_is_float(dt) && !int_ok(op)) {
    dt = CRL_FLOAT32;
    x = crl__to_contig_dtype(a, dt);
    if (!x) return NULL;
  }
  crl_tensor *out = crl_empty(dt, x->ndim, x->shape);
  if (!out) {
    if (x != a) crl__discard(x);
    return NULL;
  }
  ukctx k = {{op, p0, p1}, dt};
  if (crl_tensor_is_contiguous(x) && x->numel < 2 * CRL_PARALLEL_GRAIN) {
    char *p[2] = {out->data, x->data};
    int64_t es = (int64_t)crl_dtype_size(dt);
    int64_t s[2] = {es, es};
    unary_loop(p, s, out->numel, &k);
  } else {
    crl__iterate_tensors(out, 1, &x, unary_loop, &k, true);
  }
  if (x != a) crl__discard(x);
  if (crl_dtype_is_float(dt) && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, name, unary_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = op;
    n->f[0] = p0;
    n->f[1] = p1;
    if (needs_x(op)) crl__save(n, 0, a);
    if (needs_y(op)) crl__save(n, 1, out);
  }
  return out;
}

crl_tensor *crl_neg(crl_tensor *a) { return unary(U_NEG, a, 0, 0); }
crl_tensor *crl_abs(crl_tensor *a) { return unary(U_ABS, a, 0, 0); }
crl_tensor *crl_exp(crl_tensor *a) { return unary(U_EXP, a, 0, 0); }
crl_tensor *crl_log(crl_tensor *a) { return unary(U_LOG, a, 0, 0); }
crl_tensor *crl_log1p(crl_tensor *a) { return unary(U_LOG1P, a, 0, 0); }
crl_tensor *crl_expm1(crl_tensor *a) { return unary(U_EXPM1, a, 0, 0); }
crl_tensor *crl_sqrt(crl_tensor *a) { return unary(U_SQRT, a, 0, 0); }
crl_tensor *crl_rsqrt(crl_tensor *a) { return unary(U_RSQRT, a, 0, 0); }
crl_tensor *crl_square(crl_tensor *a) { return unary(U_SQUARE, a, 0, 0); }
crl_tensor *crl_reciprocal(crl_tensor *a) { return unary(U_RECIP, a, 0, 0); }
crl_tensor *crl_tanh(crl_tensor *a) { return unary(U_TANH, a, 0, 0); }
crl_tensor *crl_sigmoid(crl_tensor *a) { return unary(U_SIGMOID, a, 0, 0); }
crl_tensor *crl_relu(crl_tensor *a) { return unary(U_RELU, a, 0, 0); }
crl_tensor *crl_elu(crl_tensor *a, double alpha) {
  return unary(U_ELU, a, alpha, 0);
}
crl_tensor *crl_leaky_relu(crl_tensor *a, double slope) {
  return unary(U_LEAKY, a, slope, 0);
}
crl_tensor *crl_softplus(crl_tensor *a, double beta, double threshold) {
  if (!(beta > 0))
    return CRL_ERR_NULL(CRL_EINVAL, "softplus: beta %g must be > 0", beta);
  return unary(U_SOFTPLUS, a, beta, threshold);
}
crl_tensor *crl_silu(crl_tensor *a) { return unary(U_SILU, a, 0, 0); }
crl_tensor *crl_sin(crl_tensor *a) { return unary(U_SIN, a, 0, 0); }
crl_tensor *crl_cos(crl_tensor *a) { return unary(U_COS, a, 0, 0); }
crl_tensor *crl_sign(crl_tensor *a) {
  crl_tensor *r = unary(U_SIGN, a, 0, 0);
  return r;
}
crl_tensor *crl_clamp(crl_tensor *a, double lo, double hi) {
  if (isnan(lo) || isnan(hi) || lo > hi)
    return CRL_ERR_NULL(CRL_EINVAL, "clamp: bounds [%g, %g] are invalid", lo,
                        hi);
  if (a && !crl_dtype_is_float(a->dtype) && a->dtype != CRL_BOOL) {
    /* integer clamp with fractional or infinite bounds: round inward */
    lo = isinf(lo) ? -9.2e18 : ceil(lo);
    hi = isinf(hi) ? 9.2e18 : floor(hi);
  }
  return unary(U_CLAMP, a, lo, hi);
}

/* ---- predicates (bool results) ---------------------------------------------
 */

static void pred_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const ukctx *k = vctx;
  bool nan = k->c.op == U_ISNAN;
  if (k->dt == CRL_FLOAT32) {
    for (int64_t i = 0; i < n; i++) {
      float x = *(const float *)(p[1] + i * s[1]);
      *(uint8_t *)(p[0] + i * s[0]) = nan ? isnan(x) : isfinite(x);
    }
  } else if (k->dt == CRL_FLOAT64) {
    for (int64_t i = 0; i < n; i++) {
      double x = *(const double *)(p[1] + i * s[1]);
      *(uint8_t *)(p[0] + i * s[0]) = nan ? isnan(x) : isfinite(x);
    }
  } else {
    size_t es = crl_dtype_size(k->dt);
    for (int64_t i = 0; i < n; i++) {
      const uint8_t *x = (const uint8_t *)(p[1] + i * s[1]);
      uint8_t nz = 0;
      for (size_t b = 0; b < es; b++)
        nz |= x[b];
      /* integers: isnan false, isfinite true; logical_not: !x */
      *(uint8_t *)(p[0] + i * s[0]) =
          k->c.op == U_NOT ? !nz : (k->c.op == U_ISFINITE);
    }
  }
}

static crl_tensor *predicate(int op, crl_tensor *a) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", unames[op]);
  crl_tensor *out = crl_empty(CRL_BOOL, a->ndim, a->shape);
  if (!out) return NULL;
  crl_tensor *x = a;
  if (op == U_NOT && crl_dtype_is_float(a->dtype)) {
    x = crl__to_contig_dtype(a, CRL_BOOL);
    if (!x) {
      crl__discard(out);
      return NULL;
    }
  }
  ukctx k = {{op, 0, 0}, x->dtype};
  crl__iterate_tensors(out, 1, &x, pred_loop, &k, true);
  if (x != a) crl__discard(x);
  return out;
}

crl_tensor *crl_isnan(crl_tensor *a) { return predicate(U_ISNAN, a); }
crl_tensor *crl_isfinite(crl_tensor *a) { return predicate(U_ISFINITE, a); }
crl_tensor *crl_logical_not(crl_tensor *a) { return predicate(U_NOT, a); }
