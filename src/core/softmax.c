/* Softmax and log-softmax along one dim, with their own backward:
 *   softmax:     dx = y * (g - sum(g * y))
 *   log_softmax: dx = g - exp(y) * sum(g)
 * The forward subtracts the slice max before exponentiating (a NaN anywhere
 * in a slice makes the whole slice NaN; a slice of all -inf gives NaN, as
 * torch). float32 uses crl__expf (vectorized, within 1.5 ulp of expf; values
 * below e^-86 flush to 0) and sums in double; float64 uses libm exp and
 * double. Integer and bool inputs are computed in float32 (crl's rule for
 * float-only math). Every slice is computed serially and slices are split
 * over threads, so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define SM_CW 256      /* columns handled together when the dim is not last */
#define SM_BLOCK 4096  /* elements of rows exponentiated in one flat pass */
#define SM_GRAIN 65536 /* elements per work item */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define VLOOP CRL_VLOOP

typedef struct {
  const void *x; /* forward: input; backward: y */
  const void *g; /* backward: gradient */
  void *out;
  int64_t O, R, I, G;
  bool log;
} sm_job;

static inline double exp_f64(double x) { return exp(x); }

#define DEF_SM(S, T, EXP)                                                      \
  static double rowsum_##S(const T *restrict x, int64_t n) {                   \
    double l[16] = {0}, s = 0;                                                 \
    int64_t i = 0;                                                             \
    for (; i + 16 <= n; i += 16)                                               \
      for (int k = 0; k < 16; k++)                                             \
        l[k] += (double)x[i + k];                                              \
    for (int k = 0; k < 16; k++)                                               \
      s += l[k];                                                               \
    for (; i < n; i++)                                                         \
      s += (double)x[i];                                                       \
    return s;                                                                  \
  }                                                                            \
  static double rowdot_##S(const T *restrict x, const T *restrict y,           \
                           int64_t n) {                                        \
    double l[16] = {0}, s = 0;                                                 \
    int64_t i = 0;                                                             \
    for (; i + 16 <= n; i += 16)                                               \
      for (int k = 0; k < 16; k++)                                             \
        l[k] += (double)x[i + k] * (double)y[i + k];                           \
    for (int k = 0; k < 16; k++)                                               \
      s += l[k];                                                               \
    for (; i < n; i++)                                                         \
      s += (double)x[i] * (double)y[i];                                        \
    return s;                                                                  \
  }                                                                            \
  /* rows [o0, o1) of an I == 1 block */                                       \
  static void smrows_##S(const sm_job *j, int64_t o0, int64_t o1) {            \
    int64_t R = j->R;                                                          \
    T mx[256];                                                                 \
    int64_t nb = SM_BLOCK / R > 256 ? 256 : (SM_BLOCK / R ? SM_BLOCK / R : 1); \
    for (int64_t b0 = o0; b0 < o1; b0 += nb) {                                 \
      int64_t b1 = min64(b0 + nb, o1);                                         \
      const T *restrict x = (const T *)j->x + b0 * R;                          \
      T *restrict y = (T *)j->out + b0 * R;                                    \
      for (int64_t o = 0; o < b1 - b0; o++) {                                  \
        const T *restrict xr = x + o * R;                                      \
        T *restrict yr = y + o * R;                                            \
        T m = mx[o] = crl__rowmax_##S(xr, R);                                  \
        VLOOP(R, yr[i] = xr[i] - m);                                           \
      }                                                                        \
      VLOOP((b1 - b0) * R, y[i] = EXP(y[i]));                                  \
      for (int64_t o = 0; o < b1 - b0; o++) {                                  \
        const T *restrict xr = x + o * R;                                      \
        T *restrict yr = y + o * R;                                            \
        double s = rowsum_##S(yr, R);                                          \
        if (j->log) {                                                          \
          T m = mx[o], ls = (T)log(s);                                         \
          VLOOP(R, yr[i] = (xr[i] - m) - ls);                                  \
        } else {                                                               \
          T inv = (T)(1.0 / s);                                                \
          VLOOP(R, yr[i] *= inv);                                              \
        }                                                                      \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* slabs [o0, o1) of an I > 1 block: column vectors */                       \
  static void smcols_##S(const sm_job *j, int64_t o0, int64_t o1) {            \
    int64_t R = j->R, I = j->I;                                                \
    T m[SM_CW], t[SM_CW];                                                      \
    double s[SM_CW];                                                           \
    for (int64_t o = o0; o < o1; o++)                                          \
      for (int64_t c0 = 0; c0 < I; c0 += SM_CW) {                              \
        int64_t w = min64(SM_CW, I - c0);                                      \
        const T *x = (const T *)j->x + o * R * I + c0;                         \
        T *y = (T *)j->out + o * R * I + c0;                                   \
        for (int64_t k = 0; k < w; k++) {                                      \
          m[k] = x[k];                                                         \
          s[k] = 0;                                                            \
        }                                                                      \
        for (int64_t r = 1; r < R; r++) {                                      \
          const T *restrict xr = x + r * I;                                    \
          VLOOP(w, m[i] = xr[i] > m[i] ? xr[i] : m[i]);                        \
        }                                                                      \
        for (int64_t r = 0; r < R; r++) {                                      \
          const T *restrict xr = x + r * I;                                    \
          T *restrict yr = y + r * I;                                          \
          VLOOP(w, yr[i] = EXP(xr[i] - m[i]));                                 \
          VLOOP(w, s[i] += (double)yr[i]);                                     \
        }                                                                      \
        if (j->log) {                                                          \
          for (int64_t k = 0; k < w; k++)                                      \
            t[k] = (T)log(s[k]);                                               \
          for (int64_t r = 0; r < R; r++) {                                    \
            const T *restrict xr = x + r * I;                                  \
            T *restrict yr = y + r * I;                                        \
            VLOOP(w, yr[i] = (xr[i] - m[i]) - t[i]);                           \
          }                                                                    \
        } else {                                                               \
          for (int64_t k = 0; k < w; k++)                                      \
            t[k] = (T)(1.0 / s[k]);                                            \
          for (int64_t r = 0; r < R; r++) {                                    \
            T *restrict yr = y + r * I;                                        \
            VLOOP(w, yr[i] *= t[i]);                                           \
          }                                                                    \
        }                                                                      \
      }                                                                        \
  }                                                                            \
  static void sm_##S(void *vj, int64_t it) {                                   \
    const sm_job *j = vj;                                                      \
    int64_t o0 = it * j->G, o1 = min64(o0 + j->G, j->O);                       \
    if (j->I == 1)                                                             \
      smrows_##S(j, o0, o1);                                                   \
    else                                                                       \
      smcols_##S(j, o0, o1);                                                   \
  }                                                                            \
  static void smb_##S(void *vj, int64_t it) {                                  \
    const sm_job *j = vj;                                                      \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    double s[SM_CW];                                                           \
    T t[SM_CW];                                                                \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      const T *y = (const T *)j->x + o * R * I;                                \
      const T *g = (const T *)j->g + o * R * I;                                \
      T *d = (T *)j->out + o * R * I;                                          \
      if (I == 1) {                                                            \
        const T *restrict yr = y, *restrict gr = g;                            \
        T *restrict dr = d;                                                    \
        if (j->log) {                                                          \
          T sg = (T)rowsum_##S(gr, R);                                         \
          VLOOP(R, dr[i] = gr[i] - EXP(yr[i]) * sg);                           \
        } else {                                                               \
          T sg = (T)rowdot_##S(gr, yr, R);                                     \
          VLOOP(R, dr[i] = yr[i] * (gr[i] - sg));                              \
        }                                                                      \
        continue;                                                              \
      }                                                                        \
      for (int64_t c0 = 0; c0 < I; c0 += SM_CW) {                              \
        int64_t w = min64(SM_CW, I - c0);                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          s[k] = 0;                                                            \
        for (int64_t r = 0; r < R; r++) {                                      \
          const T *restrict yr = y + r * I + c0, *restrict gr =                \
                                                     g + r * I + c0;           \
          if (j->log)                                                          \
            VLOOP(w, s[i] += (double)gr[i]);                                   \
          else                                                                 \
            VLOOP(w, s[i] += (double)gr[i] * (double)yr[i]);                   \
        }                                                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          t[k] = (T)s[k];                                                      \
        for (int64_t r = 0; r < R; r++) {                                      \
          const T *restrict yr = y + r * I + c0, *restrict gr =                \
                                                     g + r * I + c0;           \
          T *restrict dr = d + r * I + c0;                                     \
          if (j->log)                                                          \
            VLOOP(w, dr[i] = gr[i] - EXP(yr[i]) * t[i]);                       \
          else                                                                 \
            VLOOP(w, dr[i] = yr[i] * (gr[i] - t[i]));                          \
        }                                                                      \
      }                                                                        \
    }                                                                          \
  }

DEF_SM(f32, float, crl__expf)
DEF_SM(f64, double, exp_f64)

static void sm_run(sm_job *j, crl_dtype dt, bool backward) {
  crl__item_fn fn;
  if (dt == CRL_FLOAT32)
    fn = backward ? smb_f32 : sm_f32;
  else
    fn = backward ? smb_f64 : sm_f64;
  crl__run_slabs(j->O, j->R, j->I, SM_GRAIN, &j->G, fn, j);
}

static int sm_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *y = n->saved[0]; /* the contiguous output */
  crl_dtype dt = y->dtype;
  crl_tensor *gc = g;
  if (g->dtype != dt || !crl_tensor_is_contiguous(g))
    gc = crl__to_contig_dtype(g, dt);
  crl_tensor *d = gc ? crl_empty(dt, y->ndim, y->shape) : NULL;
  if (!d) return crl_last_error_code();
  sm_job j = {.x = y->data, .g = gc->data, .out = d->data, .log = n->i[1]};
  crl__shape_ori(y->ndim, y->shape, (int)n->i[0], &j.O, &j.R, &j.I);
  if (d->numel) sm_run(&j, dt, true);
  gin[0] = d;
  if (dt != e->dtype) gin[0] = crl__to_contig_dtype(d, e->dtype);
  return gin[0] ? 0 : crl_last_error_code();
}

static crl_tensor *softmax_impl(const char *op, crl_tensor *a, int dim,
                                bool log) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make(op, a, 1, &dim, false, &p)) return NULL;
  int d = a->ndim ? (dim < 0 ? dim + a->ndim : dim) : 0;
  crl_dtype dt = crl_dtype_is_float(a->dtype) ? a->dtype : CRL_FLOAT32;
  crl_scope_begin();
  crl_tensor *x = a;
  if (a->dtype != dt || !crl_tensor_is_contiguous(a))
    x = crl__to_contig_dtype(a, dt);
  crl_tensor *out = x ? crl_empty(dt, a->ndim, a->shape) : NULL;
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  sm_job j = {.x = x->data, .out = out->data, .log = log};
  crl__shape_ori(a->ndim, a->shape, d, &j.O, &j.R, &j.I);
  if (out->numel) sm_run(&j, dt, false);
  out = crl_scope_end_keep(out);
  if (crl_dtype_is_float(a->dtype) && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, op, sm_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = d;
    n->i[1] = log;
    crl__save(n, 0, out);
  }
  return out;
}

crl_tensor *crl_softmax(crl_tensor *a, int dim) {
  return softmax_impl("softmax", a, dim, false);
}

crl_tensor *crl_log_softmax(crl_tensor *a, int dim) {
  return softmax_impl("log_softmax", a, dim, true);
}
