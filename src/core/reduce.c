/* Reductions: sum, mean, prod, any, all, sum_value, and the layout helpers
 * shared by every reduction (max/min and argmax/argmin are in
 * reduce_minmax.c, logsumexp/var/std/norm in reduce_composite.c).
 *
 * Layout. A reduction sees its input as a contiguous block [O][R][I]: O =
 * kept dims before the reduced ones, R = reduced dims, I = kept dims after.
 * A contiguous input whose reduced dims form one run (size-1 dims ignored) is
 * used in place: reducing inner dims is I = 1 (row sums), reducing outer dims
 * is O = 1 (column sums: rows are accumulated into the output vector; the
 * bias gradient of a Linear layer). Other patterns, non-contiguous inputs and
 * dtype conversions go through one copy in [kept..., reduced...] order.
 *
 * Accuracy. float32 sums add into independent float32 lanes (32 lanes for
 * row sums, one per column for column sums), each taking at most L1_STEPS
 * (16) terms before it is added into a double lane; double lanes are
 * combined by a fixed tree and pieces in order, and the result is rounded to
 * float32 once. The float32 stage bounds the relative error by about 16
 * float32 roundings whatever n is (4M copies of 0.1f land within 2 ulp);
 * rows shorter than 32 are summed in one double chain. float64 sums use
 * double lanes. Integer and bool sums wrap in uint64 (exact modulo 2^64)
 * and return int64. mean multiplies the double sum by 1/count.
 *
 * Determinism. Work is split into fixed-size pieces (RED_CHUNK elements, set
 * by the shape alone) whose partial results are combined in piece order, so
 * results are bit-identical with 1 or N threads (crl_set_num_threads). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define LANES 32        /* independent accumulators of a row sum */
#define L1_STEPS 16     /* terms per float32 lane before widening */
#define RED_CHUNK 65536 /* elements per work piece (fixed, not per thread) */
#define COL_CW 2048     /* column sums: columns per work piece */
#define COL_MINR 256    /* column sums: rows per work piece, at least */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- plan and layout ----------------------------------------------------- */

int crl__red_plan_make(const char *op, const crl_tensor *a, int ndims,
                       const int *dims, bool keepdim, crl__red_plan *p) {
  int nd = a->ndim, lim = nd ? nd : 1;
  char b[160];
  if (ndims < 0 || ndims > CRL_MAX_DIMS)
    return crl__err(CRL_EINVAL, "%s: %d dims given, expected 0 to %d", op,
                    ndims, CRL_MAX_DIMS);
  if (ndims > 0 && !dims)
    return crl__err(CRL_EINVAL, "%s: dims is NULL but ndims is %d", op, ndims);
  unsigned mask = ndims == 0 && nd ? (1u << nd) - 1u : 0u;
  for (int k = 0; k < ndims; k++) {
    int d = dims[k] < 0 ? dims[k] + lim : dims[k];
    if (d < 0 || d >= lim)
      return crl__err(CRL_EINDEX,
                      "%s: dim %d out of range for a tensor of shape %s (%d "
                      "dims)",
                      op, dims[k], CRL_SHAPE_STR(a, b), nd);
    if (nd == 0) continue;
    if (mask >> d & 1u)
      return crl__err(CRL_EINVAL,
                      "%s: dim %d appears more than once in dims (shape %s)",
                      op, d, CRL_SHAPE_STR(a, b));
    mask |= 1u << d;
  }
  p->mask = mask;
  p->in_ndim = nd;
  p->out_ndim = 0;
  p->count = 1;
  for (int d = 0; d < nd; d++) {
    bool r = mask >> d & 1u;
    p->keep_shape[d] = r ? 1 : a->shape[d];
    if (r) p->count *= a->shape[d];
    if (!r || keepdim) p->out_shape[p->out_ndim++] = p->keep_shape[d];
  }
  return 0;
}

crl_tensor *crl__red_layout(crl_tensor *a, unsigned mask, crl_dtype dt,
                            int64_t *O, int64_t *R, int64_t *I,
                            bool *permuted) {
  int nd = a->ndim, phase = 0; /* 0: before the reduced run, 1: in, 2: after */
  int64_t o = 1, r = 1, i = 1;
  bool simple = true;
  for (int d = 0; d < nd; d++) {
    int64_t s = a->shape[d];
    if (mask >> d & 1u) {
      r *= s;
      if (s != 1) {
        if (phase == 2) simple = false;
        phase = 1;
      }
    } else if (s != 1) {
      if (phase == 1) phase = 2;
      if (phase == 2)
        i *= s;
      else
        o *= s;
    }
  }
  *permuted = false;
  if (simple) {
    *O = o;
    *R = r;
    *I = i;
    if (a->dtype == dt && crl_tensor_is_contiguous(a)) {
      crl_tensor_retain(a);
      crl__scope_adopt(a);
      return a;
    }
    return crl__to_contig_dtype(a, dt);
  }
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < nd; d++)
      if ((int)(mask >> d & 1u) == pass) {
        shape[k] = a->shape[d];
        st[k++] = a->stride[d];
      }
  crl_tensor *v = crl__alias(a, nd, shape, st, a->offset);
  if (!v) return NULL;
  crl_tensor *c = crl__to_contig_dtype(v, dt);
  crl__discard(v);
  if (!c) return NULL;
  *O = o * i;
  *R = r;
  *I = 1;
  *permuted = true;
  return c;
}

crl_tensor *crl__red_unlayout(crl_tensor *buf, int nd, const int64_t *shape,
                              unsigned mask, bool permuted) {
  if (!permuted) return crl__alias(buf, nd, shape, NULL, buf->offset);
  int64_t pshape[CRL_MAX_DIMS] = {0}, pst[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  int perm[CRL_MAX_DIMS] = {0}, k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < nd; d++)
      if ((int)(mask >> d & 1u) == pass) perm[k++] = d;
  for (k = 0; k < nd; k++)
    pshape[k] = shape[perm[k]];
  crl__contig_strides(nd, pshape, pst);
  for (k = 0; k < nd; k++)
    st[perm[k]] = pst[k];
  crl_tensor *v = crl__alias(buf, nd, shape, st, buf->offset);
  if (!v) return NULL;
  crl_tensor *c = crl__to_contig_dtype(v, buf->dtype);
  crl__discard(v);
  return c;
}

crl_tensor *crl__red_keepdim_view(crl_tensor *t, int in_ndim, unsigned mask) {
  int64_t shape[CRL_MAX_DIMS], st[CRL_MAX_DIMS];
  bool keep = t->ndim == in_ndim;
  for (int d = 0, j = 0; d < in_ndim; d++) {
    if (mask >> d & 1u) {
      shape[d] = 1;
      st[d] = 0;
      if (keep) j++;
    } else {
      shape[d] = t->shape[j];
      st[d] = t->stride[j];
      j++;
    }
  }
  return crl__alias(t, in_ndim, shape, st, t->offset);
}

/* ---- sum kernels --------------------------------------------------------- */

typedef struct {
  const void *x; /* [O][R][I] */
  void *out;     /* [O][I] or NULL */
  void *part;    /* partial sums [O][nch][len] */
  int64_t O, R, I;
  int64_t G;   /* rows per item (whole-row path) */
  int64_t nch; /* pieces per reduced slice */
  int64_t rc;  /* column path: rows per piece */
  int64_t m;   /* column path: rows per lane step (small I) */
  int64_t L;   /* column path: lanes (m * I) */
  int64_t ncw; /* column path: column ranges */
  double scale;
} sum_job;

#define FIN_F32(v, sc) ((float)((v) * (sc)))
#define FIN_F64(v, sc) ((v) * (sc))
#define FIN_I64(v, sc) ((int64_t)(v))
#define TOD_F(v) ((double)(v))
#define TOD_I(v) ((double)(int64_t)(v))

/* a[0] = sum of a[0..32) by a fixed tree (fixed-length loops vectorize) */
#define FOLD32(a)                                                              \
  do {                                                                         \
    for (int k_ = 0; k_ < 16; k_++)                                            \
      a[k_] += a[k_ + 16];                                                     \
    for (int k_ = 0; k_ < 8; k_++)                                             \
      a[k_] += a[k_ + 8];                                                      \
    for (int k_ = 0; k_ < 4; k_++)                                             \
      a[k_] += a[k_ + 4];                                                      \
    for (int k_ = 0; k_ < 2; k_++)                                             \
      a[k_] += a[k_ + 2];                                                      \
    a[0] += a[1];                                                              \
  } while (0)

/* S: suffix; TIN: element; TL: lane type; TACC: accumulator; TOUT: result.
 * Lanes of TL take at most L1_STEPS terms, then are added into lanes of
 * TACC; loops over a fixed 16 or LANES elements are what GCC vectorizes at
 * -O2. */
#define DEF_SUM(S, TIN, TL, TACC, TOUT, FIN, TOD)                              \
  static TACC rowsum_##S(const TIN *restrict x, int64_t n) {                   \
    if (n < LANES) { /* short rows: one chain (rows overlap in the CPU) */     \
      TACC s = 0;                                                              \
      for (int64_t i = 0; i < n; i++)                                          \
        s += (TACC)x[i];                                                       \
      return s;                                                                \
    }                                                                          \
    TACC dl[LANES] = {0};                                                      \
    int64_t i = 0;                                                             \
    while (i + LANES <= n) {                                                   \
      TL acc[LANES] = {0};                                                     \
      int64_t e = min64(n, i + L1_STEPS * LANES);                              \
      for (; i + LANES <= e; i += LANES)                                       \
        for (int k = 0; k < LANES; k++)                                        \
          acc[k] += (TL)x[i + k];                                              \
      for (int k = 0; k < LANES; k++)                                          \
        dl[k] += (TACC)acc[k];                                                 \
    }                                                                          \
    for (int k = 0; i + k < n; k++)                                            \
      dl[k] += (TACC)x[i + k];                                                 \
    FOLD32(dl);                                                                \
    return dl[0];                                                              \
  }                                                                            \
  static void rows_##S(void *vj, int64_t it) {                                 \
    const sum_job *j = vj;                                                     \
    const TIN *x = j->x;                                                       \
    TOUT *out = j->out;                                                        \
    int64_t o1 = min64((it + 1) * j->G, j->O);                                 \
    for (int64_t o = it * j->G; o < o1; o++)                                   \
      out[o] = FIN(rowsum_##S(x + o * j->R, j->R), j->scale);                  \
  }                                                                            \
  static void rowch_##S(void *vj, int64_t it) {                                \
    const sum_job *j = vj;                                                     \
    int64_t o = it / j->nch, s = (it % j->nch) * RED_CHUNK;                    \
    ((TACC *)j->part)[it] = rowsum_##S((const TIN *)j->x + o * j->R + s,       \
                                       min64(RED_CHUNK, j->R - s));            \
  }                                                                            \
  static inline void vadd_##S(TL *restrict acc, const TIN *restrict x,         \
                              int64_t n) {                                     \
    int64_t i = 0;                                                             \
    for (; i + 16 <= n; i += 16)                                               \
      for (int k = 0; k < 16; k++)                                             \
        acc[i + k] += (TL)x[i + k];                                            \
    for (; i < n; i++)                                                         \
      acc[i] += (TL)x[i];                                                      \
  }                                                                            \
  static inline void vwiden_##S(TACC *restrict d, const TL *restrict a,        \
                                int64_t n) {                                   \
    int64_t i = 0;                                                             \
    for (; i + 16 <= n; i += 16)                                               \
      for (int k = 0; k < 16; k++)                                             \
        d[i + k] += (TACC)a[i + k];                                            \
    for (; i < n; i++)                                                         \
      d[i] += (TACC)a[i];                                                      \
  }                                                                            \
  static void cols_##S(void *vj, int64_t it) {                                 \
    const sum_job *j = vj;                                                     \
    int64_t I = j->I, m = j->m, w = it % j->ncw, oc = it / j->ncw;             \
    int64_t r0 = (oc % j->nch) * j->rc, r1 = min64(r0 + j->rc, j->R);          \
    int64_t c0 = m > 1 ? 0 : w * COL_CW;                                       \
    int64_t c1 = m > 1 ? I : min64(c0 + COL_CW, I);                            \
    int64_t width = m > 1 ? j->L : c1 - c0;                                    \
    const TIN *x = (const TIN *)j->x + (oc / j->nch) * j->R * I;               \
    TACC *dst = (TACC *)j->part + oc * I;                                      \
    TL acc[COL_CW];                                                            \
    TACC dacc[COL_CW];                                                         \
    memset(dacc, 0, sizeof(TACC) * (size_t)width);                             \
    for (int64_t b0 = r0; b0 < r1; b0 += L1_STEPS * m) {                       \
      int64_t b1 = min64(b0 + L1_STEPS * m, r1), r = b0;                       \
      memset(acc, 0, sizeof(TL) * (size_t)width);                              \
      if (m > 1)                                                               \
        for (; r + m <= b1; r += m)                                            \
          vadd_##S(acc, x + r * I, width);                                     \
      for (; r < b1; r++)                                                      \
        vadd_##S(acc, x + r * I + c0, c1 - c0);                                \
      vwiden_##S(dacc, acc, width);                                            \
    }                                                                          \
    if (m > 1) {                                                               \
      for (int64_t c = 0; c < I; c++)                                          \
        dst[c] = 0;                                                            \
      for (int64_t k = 0; k < width; k++)                                      \
        dst[k % I] += dacc[k];                                                 \
    } else {                                                                   \
      memcpy(dst + c0, dacc, sizeof(TACC) * (size_t)width);                    \
    }                                                                          \
  }                                                                            \
  static void fin_##S(const sum_job *j, int64_t len, double *total) {          \
    TOUT *out = j->out;                                                        \
    for (int64_t o = 0; o < j->O; o++) {                                       \
      TACC *restrict p0 = (TACC *)j->part + o * j->nch * len;                  \
      for (int64_t c = 1; c < j->nch; c++) {                                   \
        const TACC *restrict pc = p0 + c * len;                                \
        int64_t i = 0;                                                         \
        for (; i + 16 <= len; i += 16)                                         \
          for (int k = 0; k < 16; k++)                                         \
            p0[i + k] += pc[i + k];                                            \
        for (; i < len; i++)                                                   \
          p0[i] += pc[i];                                                      \
      }                                                                        \
      if (out) {                                                               \
        TOUT *restrict d = out + o * len;                                      \
        double sc = j->scale;                                                  \
        (void)sc;                                                              \
        int64_t i = 0;                                                         \
        for (; i + 16 <= len; i += 16)                                         \
          for (int k = 0; k < 16; k++)                                         \
            d[i + k] = FIN(p0[i + k], sc);                                     \
        for (; i < len; i++)                                                   \
          d[i] = FIN(p0[i], sc);                                               \
      }                                                                        \
      if (total) *total = TOD(p0[0]);                                          \
    }                                                                          \
  }

DEF_SUM(f32, float, float, double, float, FIN_F32, TOD_F)
DEF_SUM(f64, double, double, double, double, FIN_F64, TOD_F)
DEF_SUM(i64, int64_t, uint64_t, uint64_t, int64_t, FIN_I64, TOD_I)

typedef struct {
  void (*rows)(void *, int64_t);
  void (*rowch)(void *, int64_t);
  void (*cols)(void *, int64_t);
  void (*fin)(const sum_job *, int64_t, double *);
  size_t acc_size;
} sum_impl;

static const sum_impl sum_impls[3] = {
    {rows_f32, rowch_f32, cols_f32, fin_f32, sizeof(double)},
    {rows_f64, rowch_f64, cols_f64, fin_f64, sizeof(double)},
    {rows_i64, rowch_i64, cols_i64, fin_i64, sizeof(uint64_t)},
};

static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* Sum a contiguous [O][R][I] block x (float32, float64 or int64; R >= 1)
 * into out ([O][I] of float32, float64, int64; may be NULL when `total` is
 * given for O = I = 1), times `scale` (floats). */
static int sum_kernel(const crl_tensor *x, void *out, int64_t O, int64_t R,
                      int64_t I, double scale, double *total) {
  const sum_impl *im = &sum_impls[x->dtype == CRL_FLOAT32   ? 0
                                  : x->dtype == CRL_FLOAT64 ? 1
                                                            : 2];
  sum_job j = {.x = x->data, .out = out, .O = O, .R = R, .I = I};
  j.scale = scale;
  int64_t work = O * R * I;
  if (I == 1 && R < RED_CHUNK && !total) {
    j.G = RED_CHUNK / R;
    crl__run_items((O + j.G - 1) / j.G, work, im->rows, &j);
    return 0;
  }
  int64_t len, nitems;
  void (*fn)(void *, int64_t);
  if (I == 1) {
    j.nch = (R + RED_CHUNK - 1) / RED_CHUNK;
    len = 1;
    nitems = O * j.nch;
    fn = im->rowch;
  } else {
    j.m = I >= 64 ? 1 : 16 / gcd64(I, 16);
    j.L = j.m * I;
    /* rows per piece: a multiple of the lane block, at least COL_MINR rows
     * and RED_CHUNK elements of one column range */
    int64_t br = L1_STEPS * j.m, w = j.m > 1 ? I : min64(I, COL_CW);
    int64_t want = RED_CHUNK / w > COL_MINR ? RED_CHUNK / w : COL_MINR;
    j.rc = br * ((want + br - 1) / br);
    j.nch = (R + j.rc - 1) / j.rc;
    j.ncw = j.m > 1 ? 1 : (I + COL_CW - 1) / COL_CW;
    len = I;
    nitems = O * j.nch * j.ncw;
    fn = im->cols;
  }
  j.part = malloc((size_t)(O * j.nch * len) * im->acc_size);
  if (!j.part)
    return crl__err(CRL_ENOMEM, "sum: out of memory for %lld partial sums",
                    (long long)(O * j.nch * len));
  crl__run_items(nitems, work, fn, &j);
  im->fin(&j, len, total);
  free(j.part);
  return 0;
}

/* ---- sum / mean ---------------------------------------------------------- */

typedef struct {
  crl_dtype dt;
  double s;
} scale_ctx;

/* dst = src * s (src broadcast); float32 / float64 */
static void scale_loop(char **p, const int64_t *st, int64_t n, void *vctx) {
  const scale_ctx *c = vctx;
  if (c->dt == CRL_FLOAT32) {
    float k = (float)c->s;
    if (st[0] == 4 && st[1] == 4) {
      float *restrict d = (float *)p[0];
      const float *restrict x = (const float *)p[1];
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
          d[i + q] = x[i + q] * k;
      for (; i < n; i++)
        d[i] = x[i] * k;
    } else if (st[0] == 4 && st[1] == 0) {
      float *restrict d = (float *)p[0], v = *(const float *)p[1] * k;
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
          d[i + q] = v;
      for (; i < n; i++)
        d[i] = v;
    } else {
      for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * st[0]) = *(const float *)(p[1] + i * st[1]) * k;
    }
  } else {
    double k = c->s;
    for (int64_t i = 0; i < n; i++)
      *(double *)(p[0] + i * st[0]) = *(const double *)(p[1] + i * st[1]) * k;
  }
}

/* gradient of sum/mean: g (result shape) broadcast back, times f[0] */
static int sum_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  if (g->dtype != e->dtype) g = crl__to_contig_dtype(g, e->dtype);
  crl_tensor *gv =
      g ? crl__red_keepdim_view(g, e->ndim, (unsigned)n->i[0]) : NULL;
  crl_tensor *r = gv ? crl_empty(e->dtype, e->ndim, e->shape) : NULL;
  if (!r) return crl_last_error_code();
  scale_ctx c = {e->dtype, n->f[0]};
  crl__iterate_tensors(r, 1, &gv, scale_loop, &c, true);
  gin[0] = r;
  return 0;
}

static crl_tensor *sum_mean(const char *op, crl_tensor *a, int ndims,
                            const int *dims, bool keepdim, bool mean) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  bool fl = crl_dtype_is_float(a->dtype);
  if (mean && !fl)
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "mean: input dtype %s is not a float dtype (cast to "
                        "float32 or float64 first)",
                        crl_dtype_name(a->dtype));
  crl__red_plan p;
  if (crl__red_plan_make(op, a, ndims, dims, keepdim, &p)) return NULL;
  crl_dtype dt = fl ? a->dtype : CRL_INT64;
  double scale = mean && p.count ? 1.0 / (double)p.count : 1.0;
  crl_scope_begin();
  crl_tensor *out = crl_empty(dt, p.out_ndim, p.out_shape);
  int rc = out ? 0 : -1;
  if (out && out->numel) {
    if (p.count == 0) {
      rc = crl_fill_(out, mean ? NAN : 0.0);
    } else {
      int64_t O, R, I;
      bool perm;
      crl_tensor *x = crl__red_layout(a, p.mask, dt, &O, &R, &I, &perm);
      rc = x ? sum_kernel(x, out->data, O, R, I, scale, NULL) : -1;
    }
  }
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  out = crl_scope_end_keep(out);
  if (fl && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, op, sum_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = p.mask;
    n->f[0] = scale;
  }
  return out;
}

crl_tensor *crl_sum(crl_tensor *a, int ndims, const int *dims, bool keepdim) {
  return sum_mean("sum", a, ndims, dims, keepdim, false);
}

crl_tensor *crl_mean(crl_tensor *a, int ndims, const int *dims, bool keepdim) {
  return sum_mean("mean", a, ndims, dims, keepdim, true);
}

double crl_sum_value(crl_tensor *a) {
  if (!a) return crl__err(CRL_EINVAL, "sum_value: tensor is NULL"), NAN;
  if (crl__check_cpu("sum_value", a)) return NAN;
  if (a->numel == 0) return 0.0;
  crl_dtype dt = crl_dtype_is_float(a->dtype) ? a->dtype : CRL_INT64;
  unsigned mask = a->ndim ? (1u << a->ndim) - 1u : 0u;
  double total = NAN;
  int64_t O, R, I;
  bool perm;
  crl_scope_begin();
  crl_tensor *x = crl__red_layout(a, mask, dt, &O, &R, &I, &perm);
  if (x) sum_kernel(x, NULL, 1, a->numel, 1, 1.0, &total);
  crl_scope_end();
  return total;
}

/* ---- prod ---------------------------------------------------------------- */

typedef struct {
  const void *x;
  void *out;
  int64_t O, R, I, G;
} red_job;

/* products in double (floats) or wrapping uint64 (integers); each result is
 * accumulated serially over R, so the thread count does not matter */
#define DEF_PROD(S, TIN, TACC, TOUT)                                           \
  static void prod_##S(void *vj, int64_t it) {                                 \
    const red_job *j = vj;                                                     \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      const TIN *x = (const TIN *)j->x + o * R * I;                            \
      TOUT *out = (TOUT *)j->out + o * I;                                      \
      TACC buf[256];                                                           \
      for (int64_t c0 = 0; c0 < I; c0 += 256) {                                \
        int64_t w = min64(256, I - c0);                                        \
        for (int64_t k = 0; k < w; k++)                                        \
          buf[k] = 1;                                                          \
        for (int64_t r = 0; r < R; r++)                                        \
          for (int64_t k = 0; k < w; k++)                                      \
            buf[k] *= (TACC)x[r * I + c0 + k];                                 \
        for (int64_t k = 0; k < w; k++)                                        \
          out[c0 + k] = (TOUT)buf[k];                                          \
      }                                                                        \
    }                                                                          \
  }
DEF_PROD(f32, float, double, float)
DEF_PROD(f64, double, double, double)
DEF_PROD(i64, int64_t, uint64_t, int64_t)

/* d prod / d x_r = product of the others: exclusive prefix times exclusive
 * suffix products (no division, so zeros are handled exactly). */
#define DEF_PROD_BW(S, T)                                                      \
  static void prod_bw_##S(const T *x, const T *g, T *gx, int64_t O, int64_t R, \
                          int64_t I, double *acc) {                            \
    for (int64_t o = 0; o < O; o++) {                                          \
      const T *xs = x + o * R * I;                                             \
      T *gs = gx + o * R * I;                                                  \
      for (int64_t i = 0; i < I; i++)                                          \
        acc[i] = 1;                                                            \
      for (int64_t r = 0; r < R; r++)                                          \
        for (int64_t i = 0; i < I; i++) {                                      \
          gs[r * I + i] = (T)acc[i];                                           \
          acc[i] *= (double)xs[r * I + i];                                     \
        }                                                                      \
      for (int64_t i = 0; i < I; i++)                                          \
        acc[i] = (double)g[o * I + i];                                         \
      for (int64_t r = R - 1; r >= 0; r--)                                     \
        for (int64_t i = 0; i < I; i++) {                                      \
          gs[r * I + i] = (T)((double)gs[r * I + i] * acc[i]);                 \
          acc[i] *= (double)xs[r * I + i];                                     \
        }                                                                      \
    }                                                                          \
  }
DEF_PROD_BW(f32, float)
DEF_PROD_BW(f64, double)

static int prod_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_edge *e = &n->edges[0];
  if (!e->needs_grad) return 0;
  unsigned mask = (unsigned)n->i[0];
  int64_t O, R, I;
  bool perm;
  crl_tensor *x =
      crl__red_layout(n->saved[0], mask, e->dtype, &O, &R, &I, &perm);
  crl_tensor *gc = x ? crl__to_contig_dtype(g, e->dtype) : NULL;
  crl_tensor *buf = gc ? crl_empty(e->dtype, 1, &x->numel) : NULL;
  double *acc = buf ? malloc(sizeof(double) * (size_t)(I ? I : 1)) : NULL;
  if (!acc) {
    if (buf) return crl__err(CRL_ENOMEM, "prod backward: out of memory");
    return crl_last_error_code();
  }
  if (e->dtype == CRL_FLOAT32)
    prod_bw_f32(x->data, gc->data, buf->data, O, R, I, acc);
  else
    prod_bw_f64(x->data, gc->data, buf->data, O, R, I, acc);
  free(acc);
  gin[0] = crl__red_unlayout(buf, e->ndim, e->shape, mask, perm);
  return gin[0] ? 0 : crl_last_error_code();
}

crl_tensor *crl_prod(crl_tensor *a, int ndims, const int *dims, bool keepdim) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "prod: tensor is NULL");
  if (crl__check_cpu("prod", a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make("prod", a, ndims, dims, keepdim, &p)) return NULL;
  bool fl = crl_dtype_is_float(a->dtype);
  crl_dtype dt = fl ? a->dtype : CRL_INT64;
  crl_scope_begin();
  crl_tensor *out = crl_empty(dt, p.out_ndim, p.out_shape);
  int rc = out ? 0 : -1;
  if (out && out->numel) {
    if (p.count == 0) {
      rc = crl_fill_(out, 1.0);
    } else {
      red_job j;
      bool perm;
      crl_tensor *x = crl__red_layout(a, p.mask, dt, &j.O, &j.R, &j.I, &perm);
      if (x) {
        j.x = x->data;
        j.out = out->data;
        crl__item_fn fn = dt == CRL_FLOAT32   ? prod_f32
                          : dt == CRL_FLOAT64 ? prod_f64
                                              : prod_i64;
        crl__run_slabs(j.O, j.R, j.I, RED_CHUNK, &j.G, fn, &j);
      } else {
        rc = -1;
      }
    }
  }
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  out = crl_scope_end_keep(out);
  if (fl && crl__any_requires_grad(1, &a)) {
    crl_node *n = crl__record(out, "prod", prod_backward, 1, &a);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = p.mask;
    crl__save(n, 0, a);
  }
  return out;
}

/* ---- any / all ----------------------------------------------------------- */

typedef struct {
  red_job j;
  bool all;
} anyall_job;

#define DEF_ANYALL(S, T)                                                       \
  static void anyall_##S(void *vj, int64_t it) {                               \
    const anyall_job *aj = vj;                                                 \
    const red_job *j = &aj->j;                                                 \
    int64_t R = j->R, I = j->I, o1 = min64((it + 1) * j->G, j->O);             \
    uint8_t all = aj->all;                                                     \
    for (int64_t o = it * j->G; o < o1; o++) {                                 \
      const T *x = (const T *)j->x + o * R * I;                                \
      uint8_t *out = (uint8_t *)j->out + o * I;                                \
      if (I == 1) {                                                            \
        uint8_t v = all;                                                       \
        for (int64_t r = 0; r < R; r++)                                        \
          if ((x[r] != 0) != all) {                                            \
            v = !all;                                                          \
            break;                                                             \
          }                                                                    \
        out[0] = v;                                                            \
        continue;                                                              \
      }                                                                        \
      for (int64_t i = 0; i < I; i++)                                          \
        out[i] = all;                                                          \
      for (int64_t r = 0; r < R; r++)                                          \
        if (all)                                                               \
          for (int64_t i = 0; i < I; i++)                                      \
            out[i] &= x[r * I + i] != 0;                                       \
        else                                                                   \
          for (int64_t i = 0; i < I; i++)                                      \
            out[i] |= x[r * I + i] != 0;                                       \
    }                                                                          \
  }
DEF_ANYALL(f32, float)
DEF_ANYALL(f64, double)
DEF_ANYALL(i64, int64_t)
DEF_ANYALL(i32, int32_t)
DEF_ANYALL(u8, uint8_t)

static crl_tensor *anyall(const char *op, crl_tensor *a, int ndims,
                          const int *dims, bool keepdim, bool all) {
  if (!a) return CRL_ERR_NULL(CRL_EINVAL, "%s: tensor is NULL", op);
  if (crl__check_cpu(op, a)) return NULL;
  crl__red_plan p;
  if (crl__red_plan_make(op, a, ndims, dims, keepdim, &p)) return NULL;
  crl_scope_begin();
  crl_tensor *out = crl_empty(CRL_BOOL, p.out_ndim, p.out_shape);
  int rc = out ? 0 : -1;
  if (out && out->numel) {
    if (p.count == 0) {
      memset(out->data, all, (size_t)out->numel);
    } else {
      anyall_job aj;
      bool perm;
      crl_tensor *x = crl__red_layout(a, p.mask, a->dtype, &aj.j.O, &aj.j.R,
                                      &aj.j.I, &perm);
      if (x) {
        aj.all = all;
        aj.j.x = x->data;
        aj.j.out = out->data;
        crl__item_fn fn;
        switch (a->dtype) {
        case CRL_FLOAT32: fn = anyall_f32; break;
        case CRL_FLOAT64: fn = anyall_f64; break;
        case CRL_INT64: fn = anyall_i64; break;
        case CRL_INT32: fn = anyall_i32; break;
        default: fn = anyall_u8; break;
        }
        crl__run_slabs(aj.j.O, aj.j.R, aj.j.I, RED_CHUNK, &aj.j.G, fn, &aj);
      } else {
        rc = -1;
      }
    }
  }
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  return crl_scope_end_keep(out);
}

crl_tensor *crl_any(crl_tensor *a, int ndims, const int *dims, bool keepdim) {
  return anyall("any", a, ndims, dims, keepdim, false);
}

crl_tensor *crl_all(crl_tensor *a, int ndims, const int *dims, bool keepdim) {
  return anyall("all", a, ndims, dims, keepdim, true);
}
