/* Cumulative sum and product along one dim, forward or reversed (`reverse`
 * accumulates from the end), with backward.
 *
 * float32 accumulates in double (torch's CPU rule) and rounds each output;
 * float64 in double; integer and bool inputs give int64 (wrapping).
 *
 * Backward. cumsum: the gradient's cumsum in the opposite direction.
 * cumprod: with y_s = x_0 ... x_s, dL/dx_r = P_r * T_r where P_r is the
 * product of the elements before r (exclusive prefix) and
 * T_r = g_r + x_{r+1} * T_{r+1} (T_last = g_last). This is O(n), divides by
 * nothing, and is exact when inputs contain zeros (torch's formula g*y/x is
 * not). Each slice is scanned serially, so results do not depend on the
 * thread count. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define CUM_CW 256
#define CUM_GRAIN 65536

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define VLOOP CRL_VLOOP

typedef struct {
  const void *x, *g;
  void *out;
  int64_t O, R, I, G;
  bool prod, rev;
} cum_job;

/* position of scan step t along the dim */
#define POS(t) (j->rev ? R - 1 - (t) : (t))

#define CUM_ADD(a, v) a += v
#define CUM_MUL(a, v) a *= v

/* rows (I == 1): eight rows scanned together (independent chains); columns:
 * a vector of column accumulators */
#define CUM_SCAN(OP, TIN, TACC, TOUT)                                          \
  if (I == 1) {                                                                \
    int64_t o = o0;                                                            \
    for (; o + 8 <= o1; o += 8) {                                              \
      const TIN *restrict x = (const TIN *)j->x + o * R;                       \
      TOUT *restrict y = (TOUT *)j->out + o * R;                               \
      TACC a[8];                                                               \
      for (int k = 0; k < 8; k++)                                              \
        a[k] = init;                                                           \
      for (int64_t t = 0; t < R; t++) {                                        \
        int64_t q = POS(t);                                                    \
        for (int k = 0; k < 8; k++) {                                          \
          OP(a[k], (TACC)x[k * R + q]);                                        \
          y[k * R + q] = (TOUT)a[k];                                           \
        }                                                                      \
      }                                                                        \
    }                                                                          \
    for (; o < o1; o++) {                                                      \
      const TIN *restrict x = (const TIN *)j->x + o * R;                       \
      TOUT *restrict y = (TOUT *)j->out + o * R;                               \
      TACC a = init;                                                           \
      for (int64_t t = 0; t < R; t++) {                                        \
        int64_t q = POS(t);                                                    \
        OP(a, (TACC)x[q]);                                                     \
        y[q] = (TOUT)a;                                                        \
      }                                                                        \
    }                                                                          \
  } else {                                                                     \
    for (int64_t o = o0; o < o1; o++)                                          \
      for (int64_t c0 = 0; c0 < I; c0 += CUM_CW) {                             \
        int64_t w = min64(CUM_CW, I - c0);                                     \
        for (int64_t k = 0; k < w; k++)                                        \
          acc[k] = init;                                                       \
        for (int64_t t = 0; t < R; t++) {                                      \
          const TIN *restrict xr =                                             \
              (const TIN *)j->x + (o * R + POS(t)) * I + c0;                   \
          TOUT *restrict yr = (TOUT *)j->out + (o * R + POS(t)) * I + c0;      \
          VLOOP(w, OP(acc[i], (TACC)xr[i]); yr[i] = (TOUT)acc[i]);             \
        }                                                                      \
      }                                                                        \
  }

#define DEF_CUM(S, TIN, TACC, TOUT)                                            \
  static void cum_##S(void *vj, int64_t it) {                                  \
    const cum_job *j = vj;                                                     \
    int64_t R = j->R, I = j->I, o0 = it * j->G, o1 = min64(o0 + j->G, j->O);   \
    TACC acc[CUM_CW], init = j->prod ? 1 : 0;                                  \
    if (j->prod) {                                                             \
      CUM_SCAN(CUM_MUL, TIN, TACC, TOUT)                                       \
    } else {                                                                   \
      CUM_SCAN(CUM_ADD, TIN, TACC, TOUT)                                       \
    }                                                                          \
  }
DEF_CUM(f32, float, double, float)
DEF_CUM(f64, double, double, double)
DEF_CUM(i64, int64_t, uint64_t, int64_t)

#define DEF_CUMPROD_BW(S, T)                                                   \
  static void cpb_##S(void *vj, int64_t it) {                                  \
    const cum_job *j = vj;                                                     \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    double acc[CUM_CW];                                                        \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      const T *x = (const T *)j->x + o * R * I;                                \
      const T *g = (const T *)j->g + o * R * I;                                \
      T *d = (T *)j->out + o * R * I;                                          \
      for (int64_t c0 = 0; c0 < I; c0 += CUM_CW) {                             \
        int64_t w = min64(CUM_CW, I - c0);                                     \
        for (int64_t k = 0; k < w; k++)                                        \
          acc[k] = 1;                                                          \
        for (int64_t t = 0; t < R; t++) { /* exclusive prefix products */      \
          int64_t q = POS(t) * I + c0;                                         \
          for (int64_t k = 0; k < w; k++) {                                    \
            d[q + k] = (T)acc[k];                                              \
            acc[k] *= (double)x[q + k];                                        \
          }                                                                    \
        }                                                                      \
        for (int64_t t = R - 1; t >= 0; t--) { /* T_r, times the prefix */     \
          int64_t q = POS(t) * I + c0, qn = POS(t + 1) * I + c0;               \
          for (int64_t k = 0; k < w; k++) {                                    \
            acc[k] = t == R - 1                                                \
                         ? (double)g[q + k]                                    \
                         : (double)g[q + k] + (double)x[qn + k] * acc[k];      \
            d[q + k] = (T)((double)d[q + k] * acc[k]);                         \
          }                                                                    \
        }                                                                      \
      }                                                                        \
    }                                                                          \
  }
DEF_CUMPROD_BW(f32, float)
DEF_CUMPROD_BW(f64, double)

static void cum_run(cum_job *j, crl__item_fn fn) {
  crl__run_slabs(j->O, j->R, j->I, CUM_GRAIN, &j->G, fn, j);
}

static int cumsum_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  gin[0] = crl_cumsum(g, (int)n->i[0], !n->i[1]);
  return gin[0] ? 0 : crl_last_error_code();
}

static int cumprod_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_dtype dt = e->dtype;
  crl_tensor *x = crl__to_contig_dtype(n->saved[0], dt);
  crl_tensor *gc = x ? crl__to_contig_dtype(g, dt) : NULL;
  crl_tensor *d = gc ? crl_empty(dt, e->ndim, e->shape) : NULL;
  if (!d) return crl_last_error_code();
  cum_job j = {.x = x->data, .g = gc->data, .out = d->data, .rev = n->i[1]};
  crl__shape_ori(e->ndim, e->shape, (int)n->i[0], &j.O, &j.R, &j.I);
  if (d->numel) cum_run(&j, dt == CRL_FLOAT32 ? cpb_f32 : cpb_f64);
  gin[0] = d;
  return 0;
}

static crl_tensor *cum_impl(const char *op, crl_tensor *a, int dim,
                            bool reverse, bool prod) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make(op, a, 1, &dim, false, &p)) return NULL;
  int d = a->ndim ? (dim < 0 ? dim + a->ndim : dim) : 0;
  bool fl = crl_dtype_is_float(a->dtype);
  crl_dtype dt = fl ? a->dtype : CRL_INT64;
  crl_scope_begin();
  crl_tensor *x = a;
  if (a->dtype != dt || !crl_tensor_is_contiguous(a))
    x = crl__to_contig_dtype(a, dt);
  crl_tensor *out = x ? crl_empty(dt, a->ndim, a->shape) : NULL;
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  cum_job j = {.x = x->data, .out = out->data, .prod = prod, .rev = reverse};
  crl__shape_ori(a->ndim, a->shape, d, &j.O, &j.R, &j.I);
  if (out->numel)
    cum_run(&j, dt == CRL_FLOAT32   ? cum_f32
                : dt == CRL_FLOAT64 ? cum_f64
                                    : cum_i64);
  out = crl_scope_end_keep(out);
  if (fl && crl__any_requires_grad(1, &a)) {
    crl_node *n =
        crl__record(out, op, prod ? cumprod_backward : cumsum_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = d;
    n->i[1] = reverse;
    if (prod) crl__save(n, 0, a);
  }
  return out;
}

crl_tensor *crl_cumsum(crl_tensor *a, int dim, bool reverse) {
  return cum_impl("cumsum", a, dim, reverse, false);
}

crl_tensor *crl_cumprod(crl_tensor *a, int dim, bool reverse) {
  return cum_impl("cumprod", a, dim, reverse, true);
}
