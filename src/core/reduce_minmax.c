/* Max/min reductions: max/min along one dim with int64 first-occurrence
 * indices, argmax/argmin, max_all/min_all.
 *
 * NaN propagates: a slice holding a NaN reduces to NaN and its index is the
 * first NaN's (torch's behaviour). Max and min are exact, and pieces of long
 * rows are combined in order with strict comparisons, so values and indices
 * never depend on the thread count.
 *
 * Gradients: max/min along a dim send the gradient to the chosen index;
 * max_all/min_all share it evenly among all elements equal to the result
 * (torch's rule for the full reduction). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define MM_CHUNK 65536

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct {
  const void *x; /* [O][R][I] */
  void *val;     /* [O][I] */
  int64_t *idx;  /* [O][I] */
  void *pv;      /* long rows: piece results [O][nch] */
  int64_t *pi;
  int64_t O, R, I, G, nch;
} mm_job;

#define NONAN(v) 0
#define ISNAN_F(v) ((v) != (v))
#define MM_CW 256 /* columns handled together */

/* lanes m[0..2w) -> m[0..w) (values) and q (NaN flags); fixed lengths */
#define MM_FOLD(w, CMP)                                                        \
  for (int k = 0; k < (w); k++) {                                              \
    m[k] = (m[k + (w)] CMP m[k]) ? m[k + (w)] : m[k];                          \
    q[k] |= q[k + (w)];                                                        \
  }
/* k0 = first position where HIT holds (one exists): blocks of 16 tested
 * with a vectorized OR, then the block scanned */
#define MM_FIND(HITU, HIT0)                                                    \
  do {                                                                         \
    for (; k0 + 16 <= n; k0 += 16) {                                           \
      int h = 0;                                                               \
      for (int u = 0; u < 16; u++)                                             \
        h |= (HITU);                                                           \
      if (h) break;                                                            \
    }                                                                          \
    while (!(HIT0))                                                            \
      k0++;                                                                    \
  } while (0)

/* column k not found yet and v is its best (or its first NaN) */
#define MM_HIT(v, k, MT, ISN)                                                  \
  ((MT)(q[k] ? (MT)ISN(v) : (MT)((v) == m[k])) & (MT)~fd[k])

/* better(v, b): v replaces the current best b (first occurrence kept, a NaN
 * replaces a number). Long rows and columns take two passes: a lane-wise
 * best value plus a NaN flag (fixed-length loops: vectorized), then a scan
 * for the first position holding it. */
#define DEF_MM(S, T, MT, ISN, CMP)                                             \
  static void mmrow_##S(const T *restrict x, int64_t n, T *bv, int64_t *bi) {  \
    int64_t k0 = 0;                                                            \
    if (n >= 64) {                                                             \
      T m[32];                                                                 \
      MT q[32];                                                                \
      for (int k = 0; k < 32; k++) {                                           \
        m[k] = x[k];                                                           \
        q[k] = (MT)ISN(x[k]);                                                  \
      }                                                                        \
      T ma[16], mb[16];                                                        \
      MT qa[16], qb[16];                                                       \
      for (int k = 0; k < 16; k++) {                                           \
        ma[k] = m[k];                                                          \
        mb[k] = m[k + 16];                                                     \
        qa[k] = q[k];                                                          \
        qb[k] = q[k + 16];                                                     \
      }                                                                        \
      int64_t i = 32;                                                          \
      for (; i + 32 <= n; i += 32) {                                           \
        for (int k = 0; k < 16; k++) {                                         \
          T v = x[i + k];                                                      \
          ma[k] = (v CMP ma[k]) ? v : ma[k];                                   \
          qa[k] |= (MT)ISN(v);                                                 \
        }                                                                      \
        for (int k = 0; k < 16; k++) {                                         \
          T v = x[i + 16 + k];                                                 \
          mb[k] = (v CMP mb[k]) ? v : mb[k];                                   \
          qb[k] |= (MT)ISN(v);                                                 \
        }                                                                      \
      }                                                                        \
      for (int k = 0; k < 16; k++) {                                           \
        m[k] = ma[k];                                                          \
        m[k + 16] = mb[k];                                                     \
        q[k] = qa[k];                                                          \
        q[k + 16] = qb[k];                                                     \
      }                                                                        \
      for (; i < n; i++) {                                                     \
        T v = x[i];                                                            \
        m[0] = (v CMP m[0]) ? v : m[0];                                        \
        q[0] |= (MT)ISN(v);                                                    \
      }                                                                        \
      MM_FOLD(16, CMP);                                                        \
      MM_FOLD(8, CMP);                                                         \
      MM_FOLD(4, CMP);                                                         \
      MM_FOLD(2, CMP);                                                         \
      MM_FOLD(1, CMP);                                                         \
      T b = m[0];                                                              \
      if (q[0])                                                                \
        MM_FIND(ISN(x[k0 + u]), ISN(x[k0]));                                   \
      else                                                                     \
        MM_FIND(x[k0 + u] == b, x[k0] == b);                                   \
    } else {                                                                   \
      for (int64_t r = 1; r < n; r++)                                          \
        if ((x[r] CMP x[k0]) || (ISN(x[r]) && !ISN(x[k0]))) k0 = r;            \
    }                                                                          \
    *bv = x[k0];                                                               \
    *bi = k0;                                                                  \
  }                                                                            \
  static void mmrows_##S(void *vj, int64_t it) {                               \
    const mm_job *j = vj;                                                      \
    int64_t o1 = min64((it + 1) * j->G, j->O);                                 \
    for (int64_t o = it * j->G; o < o1; o++)                                   \
      mmrow_##S((const T *)j->x + o * j->R, j->R, (T *)j->val + o,             \
                j->idx + o);                                                   \
  }                                                                            \
  static void mmpiece_##S(void *vj, int64_t it) {                              \
    const mm_job *j = vj;                                                      \
    int64_t o = it / j->nch, s = (it % j->nch) * MM_CHUNK;                     \
    mmrow_##S((const T *)j->x + o * j->R + s, min64(MM_CHUNK, j->R - s),       \
              (T *)j->pv + it, j->pi + it);                                    \
    j->pi[it] += s;                                                            \
  }                                                                            \
  static void mmcomb_##S(const mm_job *j) {                                    \
    for (int64_t o = 0; o < j->O; o++) {                                       \
      const T *pv = (const T *)j->pv + o * j->nch;                             \
      const int64_t *pi = j->pi + o * j->nch;                                  \
      T b = pv[0];                                                             \
      int64_t k = pi[0];                                                       \
      for (int64_t c = 1; c < j->nch; c++)                                     \
        if ((pv[c] CMP b) || (ISN(pv[c]) && !ISN(b))) {                        \
          b = pv[c];                                                           \
          k = pi[c];                                                           \
        }                                                                      \
      ((T *)j->val)[o] = b;                                                    \
      j->idx[o] = k;                                                           \
    }                                                                          \
  }                                                                            \
  static void mmcols_##S(void *vj, int64_t it) {                               \
    const mm_job *j = vj;                                                      \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    T m[MM_CW];                                                                \
    MT q[MM_CW], fd[MM_CW];                                                    \
    for (int64_t o = it * j->G; o < o1; o++)                                   \
      for (int64_t c0 = 0; c0 < I; c0 += MM_CW) {                              \
        const T *x = (const T *)j->x + o * R * I + c0;                         \
        int64_t w = min64(MM_CW, I - c0), left = w;                            \
        T *bv = (T *)j->val + o * I + c0;                                      \
        int64_t *bi = j->idx + o * I + c0;                                     \
        for (int64_t k = 0; k < w; k++) {                                      \
          m[k] = x[k];                                                         \
          q[k] = (MT)ISN(x[k]);                                                \
          bi[k] = -1;                                                          \
        }                                                                      \
        for (int64_t r = 1; r < R; r++) {                                      \
          const T *restrict xr = x + r * I;                                    \
          int64_t k = 0;                                                       \
          for (; k + 16 <= w; k += 16)                                         \
            for (int u = 0; u < 16; u++) {                                     \
              T v = xr[k + u];                                                 \
              m[k + u] = (v CMP m[k + u]) ? v : m[k + u];                      \
              q[k + u] |= (MT)ISN(v);                                          \
            }                                                                  \
          for (; k < w; k++) {                                                 \
            T v = xr[k];                                                       \
            m[k] = (v CMP m[k]) ? v : m[k];                                    \
            q[k] |= (MT)ISN(v);                                                \
          }                                                                    \
        }                                                                      \
        for (int64_t k = 0; k < w; k++)                                        \
          fd[k] = 0;                                                           \
        for (int64_t r = 0; r < R && left; r++) {                              \
          const T *restrict xr = x + r * I;                                    \
          MT h = 0;                                                            \
          int64_t k = 0;                                                       \
          for (; k + 16 <= w; k += 16)                                         \
            for (int u = 0; u < 16; u++)                                       \
              h |= MM_HIT(xr[k + u], k + u, MT, ISN);                          \
          for (; k < w; k++)                                                   \
            h |= MM_HIT(xr[k], k, MT, ISN);                                    \
          if (!h) continue;                                                    \
          for (k = 0; k < w; k++)                                              \
            if (MM_HIT(xr[k], k, MT, ISN)) {                                   \
              fd[k] = (MT) ~(MT)0;                                             \
              bi[k] = r;                                                       \
              bv[k] = xr[k];                                                   \
              left--;                                                          \
            }                                                                  \
        }                                                                      \
      }                                                                        \
  }

DEF_MM(maxf32, float, uint32_t, ISNAN_F, >)
DEF_MM(minf32, float, uint32_t, ISNAN_F, <)
DEF_MM(maxf64, double, uint64_t, ISNAN_F, >)
DEF_MM(minf64, double, uint64_t, ISNAN_F, <)
DEF_MM(maxi64, int64_t, uint64_t, NONAN, >)
DEF_MM(mini64, int64_t, uint64_t, NONAN, <)
DEF_MM(maxi32, int32_t, uint32_t, NONAN, >)
DEF_MM(mini32, int32_t, uint32_t, NONAN, <)
DEF_MM(maxu8, uint8_t, uint8_t, NONAN, >)
DEF_MM(minu8, uint8_t, uint8_t, NONAN, <)

typedef struct {
  void (*rows)(void *, int64_t);
  void (*piece)(void *, int64_t);
  void (*comb)(const mm_job *);
  void (*cols)(void *, int64_t);
} mm_impl;

#define MM_IMPL(S)                                                             \
  { mmrows_##S, mmpiece_##S, mmcomb_##S, mmcols_##S }
static const mm_impl mm_impls[5][2] = {
    {MM_IMPL(maxf32), MM_IMPL(minf32)}, {MM_IMPL(maxf64), MM_IMPL(minf64)},
    {MM_IMPL(maxi64), MM_IMPL(mini64)}, {MM_IMPL(maxi32), MM_IMPL(mini32)},
    {MM_IMPL(maxu8), MM_IMPL(minu8)},
};

static const mm_impl *mm_pick(crl_dtype dt, bool mn) {
  int k = dt == CRL_FLOAT32   ? 0
          : dt == CRL_FLOAT64 ? 1
          : dt == CRL_INT64   ? 2
          : dt == CRL_INT32   ? 3
                              : 4;
  return &mm_impls[k][mn];
}

/* Best value and index of every [O][I] slice of a contiguous [O][R][I]
 * block (R >= 1, O * I >= 1) into val/idx. */
static int mm_kernel(const crl_tensor *x, bool mn, int64_t O, int64_t R,
                     int64_t I, void *val, int64_t *idx) {
  const mm_impl *im = mm_pick(x->dtype, mn);
  mm_job j = {.x = x->data, .val = val, .idx = idx, .O = O, .R = R, .I = I};
  if (I > 1 || R < MM_CHUNK) {
    crl__run_slabs(O, R, I, MM_CHUNK, &j.G, I > 1 ? im->cols : im->rows, &j);
  } else {
    j.nch = (R + MM_CHUNK - 1) / MM_CHUNK;
    size_t np = (size_t)(O * j.nch);
    j.pv = malloc(np * crl_dtype_size(x->dtype));
    j.pi = malloc(np * sizeof(int64_t));
    if (!j.pv || !j.pi) {
      free(j.pv);
      free(j.pi);
      return crl__err(CRL_ENOMEM, "max/min: out of memory");
    }
    crl__run_items(O * j.nch, O * R * I, im->piece, &j);
    im->comb(&j);
    free(j.pv);
    free(j.pi);
  }
  return 0;
}

/* ---- max / min / argmax / argmin along a dim ----------------------------- */

static int mm_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  int dim = (int)n->i[0];
  int64_t O = 1, R = 1, I = 1;
  for (int d = 0; d < e->ndim; d++) {
    if (d < dim) O *= e->shape[d];
    if (d == dim) R = e->shape[d];
    if (d > dim) I *= e->shape[d];
  }
  crl_tensor *gc = crl__to_contig_dtype(g, e->dtype);
  crl_tensor *r = gc ? crl_zeros(e->dtype, e->ndim, e->shape) : NULL;
  if (!r) return crl_last_error_code();
  const int64_t *idx = n->saved[0]->data;
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++) {
      int64_t src = o * I + i, dst = (o * R + idx[src]) * I + i;
      if (e->dtype == CRL_FLOAT32)
        ((float *)r->data)[dst] = ((const float *)gc->data)[src];
      else
        ((double *)r->data)[dst] = ((const double *)gc->data)[src];
    }
  gin[0] = r;
  return 0;
}

/* values (want_vals) and/or indices along dim */
static crl_tensor *minmax_dim(const char *op, crl_tensor *a, int dim,
                              bool keepdim, bool mn, bool want_vals,
                              crl_tensor **indices) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make(op, a, 1, &dim, keepdim, &p)) return NULL;
  int d = a->ndim ? (dim < 0 ? dim + a->ndim : dim) : 0;
  if (a->ndim && a->shape[d] == 0) {
    char b[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: cannot reduce dim %d of size 0 (shape %s)", op,
                        dim, CRL_SHAPE_STR(a, b));
  }
  crl_tensor *val = crl_empty(a->dtype, p.out_ndim, p.out_shape);
  crl_tensor *idx = val ? crl_empty(CRL_INT64, p.out_ndim, p.out_shape) : NULL;
  int rc = idx ? 0 : -1;
  if (!rc && val->numel) {
    int64_t O, R, I;
    bool perm;
    crl_tensor *x = crl__red_layout(a, p.mask, a->dtype, &O, &R, &I, &perm);
    rc = x ? mm_kernel(x, mn, O, R, I, val->data, idx->data) : -1;
    crl__discard(x);
  }
  if (!rc && want_vals && crl_dtype_is_float(a->dtype) &&
      crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(val, op, mm_backward, 1, &a);
    if (n) {
      n->i[0] = d;
      crl__save(n, 0, idx);
    } else {
      rc = -1;
    }
  }
  if (rc) {
    crl__discard(idx);
    crl__discard(val);
    return NULL;
  }
  if (!want_vals) {
    crl__discard(val);
    return idx;
  }
  if (indices)
    *indices = idx;
  else
    crl__discard(idx);
  return val;
}

crl_tensor *crl_max(crl_tensor *a, int dim, bool keepdim,
                    crl_tensor **indices) {
  return minmax_dim("max", a, dim, keepdim, false, true, indices);
}

crl_tensor *crl_min(crl_tensor *a, int dim, bool keepdim,
                    crl_tensor **indices) {
  return minmax_dim("min", a, dim, keepdim, true, true, indices);
}

crl_tensor *crl_argmax(crl_tensor *a, int dim, bool keepdim) {
  return minmax_dim("argmax", a, dim, keepdim, false, false, NULL);
}

crl_tensor *crl_argmin(crl_tensor *a, int dim, bool keepdim) {
  return minmax_dim("argmin", a, dim, keepdim, true, false, NULL);
}

/* ---- max_all / min_all --------------------------------------------------- */

/* the gradient is shared evenly among the elements equal to the result */
#define DEF_TIES(S, T)                                                         \
  static void ties_##S(const T *x, int64_t n, T y, double g, T *out) {         \
    bool yn = y != y;                                                          \
    int64_t cnt = 0;                                                           \
    for (int64_t i = 0; i < n; i++)                                            \
      cnt += yn ? x[i] != x[i] : x[i] == y;                                    \
    T share = (T)(g / (double)(cnt ? cnt : 1));                                \
    for (int64_t i = 0; i < n; i++)                                            \
      out[i] = (yn ? x[i] != x[i] : x[i] == y) ? share : (T)0;                 \
  }
DEF_TIES(f32, float)
DEF_TIES(f64, double)

static int mm_all_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  crl_tensor *x = crl__to_contig_dtype(n->saved[0], e->dtype);
  crl_tensor *r = x ? crl_empty(e->dtype, e->ndim, e->shape) : NULL;
  if (!r) return crl_last_error_code();
  double gv = crl_item(g), y = crl_item(n->saved[1]);
  if (e->dtype == CRL_FLOAT32)
    ties_f32(x->data, x->numel, (float)y, gv, r->data);
  else
    ties_f64(x->data, x->numel, y, gv, r->data);
  gin[0] = r;
  return 0;
}

static crl_tensor *minmax_all(const char *op, crl_tensor *a, bool mn) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  if (a->numel == 0) {
    char b[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: cannot reduce an empty tensor (shape %s)", op,
                        CRL_SHAPE_STR(a, b));
  }
  crl_tensor *val = crl_empty(a->dtype, 0, NULL);
  if (!val) return NULL;
  int64_t O, R, I, idx;
  bool perm;
  unsigned mask = a->ndim ? (1u << a->ndim) - 1u : 0u;
  crl_tensor *x = crl__red_layout(a, mask, a->dtype, &O, &R, &I, &perm);
  int rc = x ? mm_kernel(x, mn, 1, a->numel, 1, val->data, &idx) : -1;
  crl__discard(x);
  if (!rc && crl_dtype_is_float(a->dtype) && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(val, op, mm_all_backward, 1, &a);
    if (n) {
      crl__save(n, 0, a);
      crl__save(n, 1, val);
    } else {
      rc = -1;
    }
  }
  if (rc) {
    crl__discard(val);
    return NULL;
  }
  return val;
}

crl_tensor *crl_max_all(crl_tensor *a) {
  return minmax_all("max_all", a, false);
}

crl_tensor *crl_min_all(crl_tensor *a) {
  return minmax_all("min_all", a, true);
}
