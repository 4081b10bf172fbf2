/* Reductions built on others or with their own backward: logsumexp, var,
 * std, norm.
 *
 * logsumexp: own kernel (max-shifted; an infinite max shifts by 0, so all
 *   -inf gives -inf and +inf gives +inf, as torch) and own backward
 *   dx = g * exp(x - y), i.e. softmax times g.
 * var / std: own kernel (two passes in double: mean, then squared
 *   deviations) and backward (var: 2 g (x - mean) / div; std: g (x - mean) /
 *   (div std), NaN where std is 0 as torch). Divisor max(0, N - correction),
 *   so N <= correction gives inf/nan as torch.
 * norm: own kernel and backward. p = 2: g x / y; p = 1: g sign(x);
 *   p = +-inf: g sign(x) shared among the elements where |x| == y;
 *   p = 0: zero; other p: g sign(x) |x|^(p-1) / y^(p-1). The gradient is 0
 *   where y == 0 (torch's subgradient choice). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define RC_CW 256
#define RC_GRAIN 65536

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define VLOOP CRL_VLOOP

typedef struct {
  const void *x;
  void *out;
  int64_t O, R, I, G;
  int kind;
  double p;
  void *mean; /* var/std: the slice means */
} rc_job;

static void rc_run(rc_job *j, crl__item_fn fn) {
  crl__run_slabs(j->O, j->R, j->I, RC_GRAIN, &j->G, fn, j);
}

/* Forward of logsumexp and norm: a new tensor of the plan's shape (dtype
 * dt) computed by f32 / f64 over a's [O][R][I] layout (j: the op's
 * parameters). */
static crl_tensor *rc_forward(crl_tensor *a, const crl__red_plan *p,
                              crl_dtype dt, rc_job *j, crl__item_fn f32,
                              crl__item_fn f64) {
  crl_scope_begin();
  crl_tensor *out = crl_empty(dt, p->out_ndim, p->out_shape);
  crl_tensor *x = NULL;
  bool perm;
  if (out && out->numel)
    x = crl__red_layout(a, p->mask, dt, &j->O, &j->R, &j->I, &perm);
  if (!out || (out->numel && !x)) {
    crl_scope_end();
    return NULL;
  }
  if (out->numel) {
    j->x = x->data;
    j->out = out->data;
    rc_run(j, dt == CRL_FLOAT32 ? f32 : f64);
  }
  return crl_scope_end_keep(out);
}

static void mask_dims(unsigned mask, int ndim, int *nd, int *dims) {
  *nd = 0;
  for (int d = 0; d < ndim; d++)
    if (mask >> d & 1u) dims[(*nd)++] = d;
}

/* ---- logsumexp ----------------------------------------------------------- */

static inline double exp_f64(double x) { return exp(x); }

/* Rows (I == 1) use 16 lanes; columns use a vector of column states. */
#define DEF_LSE(S, T, EXP)                                                     \
  static T lse_row_##S(const T *restrict x, int64_t n) {                       \
    if (n == 0) return (T)-INFINITY;                                           \
    T m = crl__rowmax_##S(x, n);                                               \
    if (isinf(m)) m = 0;                                                       \
    double l[16] = {0}, s = 0;                                                 \
    int64_t i = 0;                                                             \
    for (; i + 16 <= n; i += 16) {                                             \
      T t[16];                                                                 \
      for (int k = 0; k < 16; k++)                                             \
        t[k] = EXP(x[i + k] - m);                                              \
      for (int k = 0; k < 16; k++)                                             \
        l[k] += (double)t[k];                                                  \
    }                                                                          \
    for (int k = 0; k < 16; k++)                                               \
      s += l[k];                                                               \
    for (; i < n; i++)                                                         \
      s += (double)EXP(x[i] - m);                                              \
    return (T)((double)m + log(s));                                            \
  }                                                                            \
  static void lse_##S(void *vj, int64_t it) {                                  \
    const rc_job *j = vj;                                                      \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    T m[RC_CW];                                                                \
    double s[RC_CW];                                                           \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      const T *x = (const T *)j->x + o * R * I;                                \
      T *y = (T *)j->out + o * I;                                              \
      if (I == 1) {                                                            \
        y[0] = lse_row_##S(x, R);                                              \
        continue;                                                              \
      }                                                                        \
      for (int64_t c0 = 0; c0 < I; c0 += RC_CW) {                              \
        int64_t w = min64(RC_CW, I - c0);                                      \
        for (int64_t k = 0; k < w; k++) {                                      \
          m[k] = R ? x[c0 + k] : (T)0;                                         \
          s[k] = 0;                                                            \
        }                                                                      \
        for (int64_t r = 1; r < R; r++) {                                      \
          const T *restrict xr = x + r * I + c0;                               \
          VLOOP(w, m[i] = xr[i] > m[i] ? xr[i] : m[i]);                        \
        }                                                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          if (isinf(m[k])) m[k] = 0;                                           \
        for (int64_t r = 0; r < R; r++) {                                      \
          const T *restrict xr = x + r * I + c0;                               \
          VLOOP(w, s[i] += (double)EXP(xr[i] - m[i]));                         \
        }                                                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          y[c0 + k] = (T)((double)m[k] + log(s[k]));                           \
      }                                                                        \
    }                                                                          \
  }
DEF_LSE(f32, float, crl__expf)
DEF_LSE(f64, double, exp_f64)

/* d = g * exp(x - y) (y, g broadcast) */
static void lse_bw_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  if (*(const crl_dtype *)ctx == CRL_FLOAT32) {
    if (s[0] == 4 && s[1] == 4 && s[2] == 0 && s[3] == 0) {
      float *restrict d = (float *)p[0];
      const float *restrict x = (const float *)p[1];
      float y = *(const float *)p[2], g = *(const float *)p[3];
      VLOOP(n, d[i] = g * crl__expf(x[i] - y));
      return;
    }
    for (int64_t i = 0; i < n; i++) {
      float x = *(const float *)(p[1] + i * s[1]);
      float y = *(const float *)(p[2] + i * s[2]);
      float g = *(const float *)(p[3] + i * s[3]);
      *(float *)(p[0] + i * s[0]) = g * crl__expf(x - y);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      double x = *(const double *)(p[1] + i * s[1]);
      double y = *(const double *)(p[2] + i * s[2]);
      double g = *(const double *)(p[3] + i * s[3]);
      *(double *)(p[0] + i * s[0]) = g * exp(x - y);
    }
  }
}

static int lse_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  unsigned mask = (unsigned)n->i[0];
  crl_dtype dt = e->dtype;
  if (g->dtype != dt) g = crl__to_contig_dtype(g, dt);
  crl_tensor *gv = g ? crl__red_keepdim_view(g, e->ndim, mask) : NULL;
  crl_tensor *yv =
      gv ? crl__red_keepdim_view(n->saved[1], e->ndim, mask) : NULL;
  crl_tensor *d = yv ? crl_empty(dt, e->ndim, e->shape) : NULL;
  if (!d) return crl_last_error_code();
  crl_tensor *src[3] = {n->saved[0], yv, gv};
  crl__iterate_tensors(d, 3, src, lse_bw_loop, &dt, true);
  gin[0] = d;
  return 0;
}

crl_tensor *crl_logsumexp(crl_tensor *a, int ndims, const int *dims,
                          bool keepdim) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "logsumexp: tensor is NULL");
  if (crl__check_cpu("logsumexp", a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make("logsumexp", a, ndims, dims, keepdim, &p)) return NULL;
  bool fl = crl_dtype_is_float(a->dtype);
  crl_dtype dt = fl ? a->dtype : CRL_FLOAT32;
  rc_job j = {0};
  crl_tensor *out = rc_forward(a, &p, dt, &j, lse_f32, lse_f64);
  if (!out) return NULL;
  if (fl && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, "logsumexp", lse_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = p.mask;
    crl__save(n, 0, a);
    crl__save(n, 1, out);
  }
  return out;
}

/* ---- var / std ----------------------------------------------------------- */

/* two passes per slice in double: the mean, then the squared deviations
 * (no cancellation); out = M2 / div (var) or its square root (std) */
#define DEF_VAR(S, T)                                                          \
  static void var_##S(void *vj, int64_t it) {                                  \
    const rc_job *j = vj;                                                      \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    double mu[RC_CW], q[RC_CW], inv = 1.0 / (double)R;                         \
    for (int64_t o = it * j->G; o < o1; o++)                                   \
      for (int64_t c0 = 0; c0 < I; c0 += RC_CW) {                              \
        int64_t w = min64(RC_CW, I - c0);                                      \
        const T *restrict x = (const T *)j->x + o * R * I + c0;                \
        if (I == 1) {                                                          \
          double l[16] = {0}, s = 0, m;                                        \
          int64_t i = 0;                                                       \
          for (; i + 16 <= R; i += 16)                                         \
            for (int k = 0; k < 16; k++)                                       \
              l[k] += (double)x[i + k];                                        \
          for (int k = 0; k < 16; k++)                                         \
            s += l[k];                                                         \
          for (; i < R; i++)                                                   \
            s += (double)x[i];                                                 \
          m = mu[0] = s * inv;                                                 \
          for (int k = 0; k < 16; k++)                                         \
            l[k] = 0;                                                          \
          s = 0;                                                               \
          for (i = 0; i + 16 <= R; i += 16)                                    \
            for (int k = 0; k < 16; k++) {                                     \
              double d = (double)x[i + k] - m;                                 \
              l[k] += d * d;                                                   \
            }                                                                  \
          for (int k = 0; k < 16; k++)                                         \
            s += l[k];                                                         \
          for (; i < R; i++)                                                   \
            s += ((double)x[i] - m) * ((double)x[i] - m);                      \
          q[0] = s;                                                            \
        } else {                                                               \
          for (int64_t k = 0; k < w; k++)                                      \
            mu[k] = q[k] = 0;                                                  \
          for (int64_t r = 0; r < R; r++) {                                    \
            const T *restrict xr = x + r * I;                                  \
            VLOOP(w, mu[i] += (double)xr[i]);                                  \
          }                                                                    \
          for (int64_t k = 0; k < w; k++)                                      \
            mu[k] *= inv;                                                      \
          for (int64_t r = 0; r < R; r++) {                                    \
            const T *restrict xr = x + r * I;                                  \
            VLOOP(w, double d = (double)xr[i] - mu[i]; q[i] += d * d);         \
          }                                                                    \
        }                                                                      \
        T *y = (T *)j->out + o * I + c0, *mo = (T *)j->mean + o * I + c0;      \
        for (int64_t k = 0; k < w; k++) {                                      \
          double v = q[k] / j->p;                                              \
          y[k] = (T)(j->kind ? sqrt(v) : v);                                   \
          mo[k] = (T)mu[k];                                                    \
        }                                                                      \
      }                                                                        \
  }
DEF_VAR(f32, float)
DEF_VAR(f64, double)

/* d = coef * (x - mean), coef and mean broadcast */
static void var_bw_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  if (*(const crl_dtype *)ctx == CRL_FLOAT32) {
    if (s[0] == 4 && s[1] == 4 && s[2] == 0 && s[3] == 0) {
      float *restrict d = (float *)p[0];
      const float *restrict x = (const float *)p[1];
      float m = *(const float *)p[2], c = *(const float *)p[3];
      VLOOP(n, d[i] = c * (x[i] - m));
      return;
    }
    for (int64_t i = 0; i < n; i++)
      *(float *)(p[0] + i * s[0]) = *(const float *)(p[3] + i * s[3]) *
                                    (*(const float *)(p[1] + i * s[1]) -
                                     *(const float *)(p[2] + i * s[2]));
  } else {
    for (int64_t i = 0; i < n; i++)
      *(double *)(p[0] + i * s[0]) = *(const double *)(p[3] + i * s[3]) *
                                     (*(const double *)(p[1] + i * s[1]) -
                                      *(const double *)(p[2] + i * s[2]));
  }
}

/* var: dx = g * 2 (x - mean) / div; std: dx = g * (x - mean) / (div * y)
 * (NaN where std is 0, as torch) */
static int var_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  unsigned mask = (unsigned)n->i[0];
  crl_dtype dt = e->dtype;
  double div = n->f[0];
  crl_tensor *coef = n->i[1] ? crl_div(g, crl_mul_scalar(n->saved[2], div))
                             : crl_mul_scalar(g, 2.0 / div);
  if (coef && coef->dtype != dt) coef = crl__to_contig_dtype(coef, dt);
  crl_tensor *cv = coef ? crl__red_keepdim_view(coef, e->ndim, mask) : NULL;
  crl_tensor *mv =
      cv ? crl__red_keepdim_view(n->saved[1], e->ndim, mask) : NULL;
  crl_tensor *d = mv ? crl_empty(dt, e->ndim, e->shape) : NULL;
  if (!d) return crl_last_error_code();
  crl_tensor *src[3] = {n->saved[0], mv, cv};
  crl__iterate_tensors(d, 3, src, var_bw_loop, &dt, true);
  gin[0] = d;
  return 0;
}

static crl_tensor *var_impl(const char *op, crl_tensor *a, int ndims,
                            const int *dims, int correction, bool keepdim,
                            bool sd) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  if (!crl_dtype_is_float(a->dtype))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "%s: input dtype %s is not a float dtype (cast to "
                        "float32 or float64 first)",
                        op, crl_dtype_name(a->dtype));
  crl__red_plan pl;
  if (crl__red_plan_make(op, a, ndims, dims, keepdim, &pl)) return NULL;
  double div = (double)pl.count - (double)correction;
  if (div < 0) div = 0;
  crl_dtype dt = a->dtype;
  crl_scope_begin();
  crl_tensor *out = crl_empty(dt, pl.out_ndim, pl.out_shape);
  crl_tensor *mean = out ? crl_empty(dt, pl.out_ndim, pl.out_shape) : NULL;
  crl_tensor *x = NULL;
  rc_job j = {.kind = sd, .p = div};
  bool perm;
  if (mean && out->numel)
    x = crl__red_layout(a, pl.mask, dt, &j.O, &j.R, &j.I, &perm);
  if (!mean || (out->numel && !x)) {
    crl_scope_end();
    return NULL;
  }
  if (out->numel && pl.count == 0) {
    crl_fill_(out, NAN);
    crl_fill_(mean, NAN);
  } else if (out->numel) {
    j.x = x->data;
    j.out = out->data;
    j.mean = mean->data;
    rc_run(&j, dt == CRL_FLOAT32 ? var_f32 : var_f64);
  }
  crl_tensor_retain(mean);
  out = crl_scope_end_keep(out);
  if (crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, op, var_backward, 1, &a);
    if (!n) {
      crl_tensor_release(mean);
      crl__discard(out);
      return NULL;
    }
    n->i[0] = pl.mask;
    n->i[1] = sd;
    n->f[0] = div;
    crl__save(n, 0, a);
    crl__save(n, 1, mean);
    crl__save(n, 2, out);
  }
  crl_tensor_release(mean);
  return out;
}

crl_tensor *crl_var(crl_tensor *a, int ndims, const int *dims, int correction,
                    bool keepdim) {
  return var_impl("var", a, ndims, dims, correction, keepdim, false);
}

crl_tensor *crl_std(crl_tensor *a, int ndims, const int *dims, int correction,
                    bool keepdim) {
  return var_impl("std", a, ndims, dims, correction, keepdim, true);
}

/* ---- norm ---------------------------------------------------------------- */

enum { P_INF, P_NINF, P_ZERO, P_ONE, P_TWO, P_GEN };

static int p_kind(double p) {
  if (p == INFINITY) return P_INF;
  if (p == -INFINITY) return P_NINF;
  if (p == 0) return P_ZERO;
  if (p == 1) return P_ONE;
  if (p == 2) return P_TWO;
  return P_GEN;
}

/* one |x| term into a (double) for each norm kind */
#define UPD_INF(a, v) a = (fabs(v) > a || v != v) ? fabs(v) : a
#define UPD_NINF(a, v) a = (fabs(v) < a || v != v) ? fabs(v) : a
#define UPD_ZERO(a, v) a += (double)(v != 0)
#define UPD_ONE(a, v) a += fabs(v)
#define UPD_TWO(a, v) a += v * v
#define UPD_GEN(a, v) a += pow(fabs(v), p)

/* rows: 16 lanes over the row, then the lanes folded with the same update
 * (a lane value is itself a |x|-like term for max/min, a partial for sums);
 * columns: one accumulator per column */
#define NORM_ROW(UPD, FOLD)                                                    \
  do {                                                                         \
    int64_t i = 0;                                                             \
    for (; i + 16 <= R; i += 16)                                               \
      for (int k = 0; k < 16; k++) {                                           \
        double v = (double)x[i + k];                                           \
        UPD(l[k], v);                                                          \
      }                                                                        \
    for (int k = 0; i + k < R; k++) {                                          \
      double v = (double)x[i + k];                                             \
      UPD(l[k], v);                                                            \
    }                                                                          \
    acc = l[0];                                                                \
    for (int k = 1; k < 16; k++)                                               \
      FOLD;                                                                    \
  } while (0)
#define NORM_COLS(UPD, T)                                                      \
  for (int64_t r = 0; r < R; r++) {                                            \
    const T *restrict xr = x + r * I + c0;                                     \
    VLOOP(w, double v = (double)xr[i]; UPD(cacc[i], v));                       \
  }

#define DEF_NORM(S, T)                                                         \
  static void norm_##S(void *vj, int64_t it) {                                 \
    const rc_job *j = vj;                                                      \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    double cacc[RC_CW], p = j->p, init = j->kind == P_NINF ? INFINITY : 0;     \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      T *y = (T *)j->out + o * I;                                              \
      for (int64_t c0 = 0; c0 < I; c0 += RC_CW) {                              \
        int64_t w = min64(RC_CW, I - c0);                                      \
        const T *restrict x = (const T *)j->x + o * R * I;                     \
        if (I == 1) {                                                          \
          double l[16], acc;                                                   \
          for (int k = 0; k < 16; k++)                                         \
            l[k] = init;                                                       \
          switch (j->kind) {                                                   \
          case P_INF: NORM_ROW(UPD_INF, UPD_INF(acc, l[k])); break;            \
          case P_NINF: NORM_ROW(UPD_NINF, UPD_NINF(acc, l[k])); break;         \
          case P_ZERO: NORM_ROW(UPD_ZERO, acc += l[k]); break;                 \
          case P_ONE: NORM_ROW(UPD_ONE, acc += l[k]); break;                   \
          case P_TWO: NORM_ROW(UPD_TWO, acc += l[k]); break;                   \
          default: NORM_ROW(UPD_GEN, acc += l[k]); break;                      \
          }                                                                    \
          cacc[0] = acc;                                                       \
        } else {                                                               \
          for (int64_t k = 0; k < w; k++)                                      \
            cacc[k] = init;                                                    \
          switch (j->kind) {                                                   \
          case P_INF: NORM_COLS(UPD_INF, T) break;                             \
          case P_NINF: NORM_COLS(UPD_NINF, T) break;                           \
          case P_ZERO: NORM_COLS(UPD_ZERO, T) break;                           \
          case P_ONE: NORM_COLS(UPD_ONE, T) break;                             \
          case P_TWO: NORM_COLS(UPD_TWO, T) break;                             \
          default: NORM_COLS(UPD_GEN, T) break;                                \
          }                                                                    \
        }                                                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          y[c0 + k] = (T)(j->kind == P_TWO   ? sqrt(cacc[k])                   \
                          : j->kind == P_GEN ? pow(cacc[k], 1.0 / p)           \
                                             : cacc[k]);                       \
      }                                                                        \
    }                                                                          \
  }
DEF_NORM(f32, float)
DEF_NORM(f64, double)

typedef struct {
  crl_dtype dt;
  int kind;
  double p;
} nb_ctx;

/* d/dx of the norm at one element (x, y = norm, g = upstream gradient) */
static inline double norm_grad(int kind, double p, double x, double y,
                               double g) {
  double sg = (double)((x > 0) - (x < 0));
  switch (kind) {
  case P_TWO: return y == 0 ? 0 : g * x / y;
  case P_ONE: return g * sg;
  case P_INF:
  case P_NINF: return fabs(x) == y ? g * sg : 0; /* g pre-divided by ties */
  case P_ZERO: return 0;
  default: return (y == 0 || x == 0) ? 0 : g * sg * pow(fabs(x) / y, p - 1);
  }
}

static void norm_bw_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  const nb_ctx *c = vctx;
  if (c->dt == CRL_FLOAT32) {
    for (int64_t i = 0; i < n; i++)
      *(float *)(p[0] + i * s[0]) = (float)norm_grad(
          c->kind, c->p, *(const float *)(p[1] + i * s[1]),
          *(const float *)(p[2] + i * s[2]), *(const float *)(p[3] + i * s[3]));
  } else {
    for (int64_t i = 0; i < n; i++)
      *(double *)(p[0] + i * s[0]) =
          norm_grad(c->kind, c->p, *(const double *)(p[1] + i * s[1]),
                    *(const double *)(p[2] + i * s[2]),
                    *(const double *)(p[3] + i * s[3]));
  }
}

static int norm_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  unsigned mask = (unsigned)n->i[0];
  crl_dtype dt = e->dtype;
  nb_ctx c = {dt, (int)n->i[1], n->f[0]};
  crl_tensor *x = n->saved[0];
  if (g->dtype != dt) g = crl__to_contig_dtype(g, dt);
  crl_tensor *gv = g ? crl__red_keepdim_view(g, e->ndim, mask) : NULL;
  crl_tensor *yv =
      gv ? crl__red_keepdim_view(n->saved[1], e->ndim, mask) : NULL;
  if (yv && (c.kind == P_INF || c.kind == P_NINF)) {
    /* share among ties: g / count(|x| == y) per slice */
    int nd, dims[CRL_MAX_DIMS];
    mask_dims(mask, e->ndim, &nd, dims);
    crl_tensor *ties = crl_eq(crl_abs(x), yv);
    crl_tensor *cnt = ties ? crl_sum(ties, nd, dims, true) : NULL;
    crl_tensor *gd = cnt ? crl_div(gv, cnt) : NULL;
    gv = gd ? crl__to_contig_dtype(gd, dt) : NULL;
  }
  crl_tensor *d = gv ? crl_empty(dt, e->ndim, e->shape) : NULL;
  if (!d) return crl_last_error_code();
  crl_tensor *src[3] = {x, yv, gv};
  crl__iterate_tensors(d, 3, src, norm_bw_loop, &c, true);
  gin[0] = d;
  return 0;
}

crl_tensor *crl_norm(crl_tensor *a, double p, int ndims, const int *dims,
                     bool keepdim) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "norm: tensor is NULL");
  if (crl__check_cpu("norm", a)) return NULL;
  if (!crl_dtype_is_float(a->dtype))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "norm: input dtype %s is not a float dtype (cast to "
                        "float32 or float64 first)",
                        crl_dtype_name(a->dtype));
  if (isnan(p)) return CRL_ERR_NULL(CRL_EINVAL, "norm: p is NaN");
  crl__red_plan pl;
  if (crl__red_plan_make("norm", a, ndims, dims, keepdim, &pl)) return NULL;
  rc_job j = {.kind = p_kind(p), .p = p};
  crl_tensor *out = rc_forward(a, &pl, a->dtype, &j, norm_f32, norm_f64);
  if (!out) return NULL;
  if (crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, "norm", norm_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = pl.mask;
    n->i[1] = j.kind;
    n->f[0] = p;
    crl__save(n, 0, a);
    crl__save(n, 1, out);
  }
  return out;
}
