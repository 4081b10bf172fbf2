/* 2-D convolution (im2col + GEMM) and max pooling, with backward.
 *
 * conv2d lowers each image to a patch matrix in "im2row" order, rows
 * [P = OH*OW, K = C*kh*kw] (row p holds the input patch under output
 * position p, each (c, ki) a contiguous run of kw input elements, so the
 * lowering is short contiguous copies rather than strided gathers):
 *   forward   Y[n]^T [P, O] = rows [P, K] W^T, transposed into y[n]
 *             [O, P] with the bias added;
 *   backward  dW += dY[n] [O, P] rows [P, K] (rows recomputed, not stored),
 *             drows = dY[n]^T W scattered back onto dx (row2im),
 *             db = sums of dY.
 * Images are processed in fixed chunks of CHUNK on the thread pool; per-chunk
 * partial dW/db are added in chunk order, so results do not depend on the
 * thread count. A 1x1 convolution with stride 1 and no padding needs no
 * lowering: each image is its own [K, P] column matrix (y = W x).
 *
 * max_pool2d keeps the argmax of each window (flat index in its H x W
 * plane) for the backward scatter.
 *
 * The typed kernels are a template at the end of this file, included twice
 * (float, double). */
#ifndef CONV_T

#include <math.h>
#include <stdlib.h>

#include "gemm.h"
#include "internal.h"

#define CHUNK 4        /* images per conv2d pool task */
#define POOL_PLANES 64 /* (n, c) planes per max_pool2d pool task */

typedef struct {
  int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW;
  int64_t K, P; /* C * kh * kw, OH * OW */
  bool direct;  /* 1x1 kernel, stride 1, no padding */
} geom;

typedef struct {
  geom g;
  crl_dtype dt;
  const void *x, *w, *gy, *bias;
  int64_t bias_stride;
  void *y, *gx, *gw_part, *gb_part;
  bool need_x, need_w, need_b;
  bool wt; /* partial dW held transposed ([K, O]), 1x1 direct path only */
  _Atomic int fail;
} conv_job;

typedef struct {
  int64_t NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
  crl_dtype dt;
  const void *x, *gy;
  void *y, *gx;
  int64_t *idx;
} pool_job;

static inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Output positions [lo, hi) along one axis whose input index o * s - p + q
 * falls inside [0, n). */
static inline void valid_range(int64_t n, int64_t s, int64_t p, int64_t q,
                               int64_t on, int64_t *lo, int64_t *hi) {
  int64_t a = p - q; /* o * s >= a */
  *lo = a > 0 ? ceil_div(a, s) : 0;
  int64_t b = n - 1 + p - q; /* o * s <= b */
  *hi = b < 0 ? 0 : b / s + 1;
  if (*hi > on) *hi = on;
  if (*lo > *hi) *lo = *hi;
}

#define CONV_T float
#define CONV_S f32
#define CONV_GEMM crl__gemm
#include "conv.c"
#undef CONV_T
#undef CONV_S
#undef CONV_GEMM

#define CONV_T double
#define CONV_S f64
#define CONV_GEMM crl__dgemm
#include "conv.c"
#undef CONV_T
#undef CONV_S
#undef CONV_GEMM

static void fwd_task(void *ctx, int64_t i) {
  conv_job *j = ctx;
  if (j->dt == CRL_FLOAT32)
    conv_fwd_f32(j, i);
  else
    conv_fwd_f64(j, i);
}

static void bwd_task(void *ctx, int64_t i) {
  conv_job *j = ctx;
  if (j->dt == CRL_FLOAT32)
    conv_bwd_f32(j, i);
  else
    conv_bwd_f64(j, i);
}

/* ---- conv2d ------------------------------------------------------------- */

static void geom_from(geom *g, const crl_tensor *x, const crl_tensor *w,
                      const int64_t *sp) {
  g->N = x->shape[0], g->C = x->shape[1], g->H = x->shape[2];
  g->W = x->shape[3], g->O = w->shape[0], g->kh = w->shape[2];
  g->kw = w->shape[3], g->sh = sp[0], g->sw = sp[1], g->ph = sp[2];
  g->pw = sp[3];
  g->OH = (g->H + 2 * g->ph - g->kh) / g->sh + 1;
  g->OW = (g->W + 2 * g->pw - g->kw) / g->sw + 1;
  g->K = g->C * g->kh * g->kw;
  g->P = g->OH * g->OW;
  g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
              g->ph == 0 && g->pw == 0;
}

/* a itself if contiguous, else a contiguous copy (no autograd) */
static crl_tensor *contig(crl_tensor *a) {
  return crl_tensor_is_contiguous(a) ? a : crl__to_contig_dtype(a, a->dtype);
}

static void drop(crl_tensor *copy, crl_tensor *orig) {
  if (copy && copy != orig) crl__discard(copy);
}

static int conv_backward(crl_node *n, crl_tensor *gy, crl_tensor **gin) {
  crl_tensor *x = n->saved[0], *w = n->saved[1];
  conv_job j = {.dt = x->dtype};
  geom_from(&j.g, x, w, n->i);
  const geom *g = &j.g;
  const size_t es = crl_dtype_size(j.dt);
  j.need_x = n->edges[0].needs_grad;
  j.need_w = n->edges[1].needs_grad;
  j.need_b = n->ninputs > 2 && n->edges[2].needs_grad;
  if (gy->dtype != j.dt) gy = crl__to_contig_dtype(gy, j.dt);
  crl_tensor *xc = gy ? contig(x) : NULL, *wc = xc ? contig(w) : NULL;
  crl_tensor *gyc = wc ? contig(gy) : NULL;
  if (!gyc) return crl_last_error_code();
  j.x = xc->data, j.w = wc->data, j.gy = gyc->data;
  crl_tensor *gx = NULL, *gw = NULL, *gb = NULL;
  if (j.need_x) {
    if (!(gx = crl_zeros(j.dt, 4, x->shape))) return crl_last_error_code();
    j.gx = gx->data;
  }
  const int64_t nchunks = ceil_div(g->N, CHUNK);
  /* 1x1 direct path: pack the smaller operand in the dW GEMM */
  j.wt = g->direct && g->O <= g->K;
  void *part = NULL;
  if (j.need_w || j.need_b) {
    size_t per = (size_t)(g->O * g->K + g->O);
    part = calloc((size_t)nchunks * per + 1, es);
    if (!part) return crl__err(CRL_ENOMEM, "conv2d backward: out of memory");
    j.gw_part = part;
    j.gb_part = (char *)part + (size_t)nchunks * (size_t)(g->O * g->K) * es;
  }
  crl_parallel_for(nchunks, bwd_task, &j);
  int rc = 0;
  if (j.fail) {
    rc = crl__err(CRL_ENOMEM, "conv2d backward: out of memory");
    goto out;
  }
  if (j.need_w) {
    if (!(gw = crl_empty(j.dt, 4, w->shape))) {
      rc = crl_last_error_code();
      goto out;
    }
    if (j.dt == CRL_FLOAT32)
      reduce_dw_f32(&j, nchunks, gw->data);
    else
      reduce_dw_f64(&j, nchunks, gw->data);
  }
  if (j.need_b) {
    if (!(gb = crl_empty(j.dt, 1, &g->O))) {
      rc = crl_last_error_code();
      goto out;
    }
    if (j.dt == CRL_FLOAT32)
      reduce_db_f32(&j, nchunks, gb->data);
    else
      reduce_db_f64(&j, nchunks, gb->data);
  }
  gin[0] = gx;
  gin[1] = gw;
  if (n->ninputs > 2) gin[2] = gb;
out:
  free(part);
  return rc;
}

crl_tensor *crl_conv2d(crl_tensor *x, crl_tensor *w, crl_tensor *bias,
                       int stride_h, int stride_w, int pad_h, int pad_w) {
  char s1[160], s2[160];
  if (!x || !w) return CRL_ERR_NULL(CRL_EINVAL, "conv2d: tensor is NULL");
  if (crl__check_cpu("conv2d", x) || crl__check_cpu("conv2d", w) ||
      (bias && crl__check_cpu("conv2d", bias)))
    return NULL;
  if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "conv2d: input %s and weight %s do not match "
                        "(expected input [N, C, H, W] and weight "
                        "[out_channels, C, kh, kw] with the same C)",
                        CRL_SHAPE_STR(x, s1), CRL_SHAPE_STR(w, s2));
  if (!crl_dtype_is_float(x->dtype) || x->dtype != w->dtype ||
      (bias && bias->dtype != x->dtype))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "conv2d: input, weight and bias need one float dtype, "
                        "got %s, %s and %s",
                        crl_dtype_name(x->dtype), crl_dtype_name(w->dtype),
                        bias ? crl_dtype_name(bias->dtype) : "no bias");
  if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "conv2d: bias shape %s does not match weight %s "
                        "(expected [%lld])",
                        CRL_SHAPE_STR(bias, s1), CRL_SHAPE_STR(w, s2),
                        (long long)w->shape[0]);
  if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "conv2d: stride (%d, %d) must be >= 1 and padding "
                        "(%d, %d) >= 0",
                        stride_h, stride_w, pad_h, pad_w);
  if (x->shape[2] + 2 * pad_h < w->shape[2] ||
      x->shape[3] + 2 * pad_w < w->shape[3] || w->shape[2] < 1 ||
      w->shape[3] < 1)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "conv2d: input %s with padding (%d, %d) is smaller "
                        "than the kernel of weight %s",
                        CRL_SHAPE_STR(x, s1), pad_h, pad_w,
                        CRL_SHAPE_STR(w, s2));
  const int64_t sp[4] = {stride_h, stride_w, pad_h, pad_w};
  conv_job j = {.dt = x->dtype};
  geom_from(&j.g, x, w, sp);
  const geom *g = &j.g;
  crl_tensor *y = crl_empty(j.dt, CRL_SHAPE(g->N, g->O, g->OH, g->OW));
  if (!y) return NULL;
  if (y->numel) {
    crl_tensor *xc = contig(x), *wc = xc ? contig(w) : NULL;
    if (!wc) {
      drop(xc, x);
      crl__discard(y);
      return NULL;
    }
    j.x = xc->data, j.w = wc->data, j.y = y->data;
    if (bias) j.bias = bias->data, j.bias_stride = bias->stride[0];
    crl_parallel_for(ceil_div(g->N, CHUNK), fwd_task, &j);
    drop(wc, w);
    drop(xc, x);
    if (j.fail) {
      crl__discard(y);
      return CRL_ERR_NULL(CRL_ENOMEM, "conv2d: out of memory");
    }
  }
  crl_tensor *in[3] = {x, w, bias};
  if (crl__any_requires_grad(3, in)) {
    crl_node *nd = crl__record(y, "conv2d", conv_backward, bias ? 3 : 2, in);
    if (!nd) {
      crl__discard(y);
      return NULL;
    }
    memcpy(nd->i, sp, sizeof sp);
    crl__save(nd, 0, x);
    crl__save(nd, 1, w);
  }
  return y;
}

/* ---- max_pool2d ---------------------------------------------------------- */

static void pool_fwd_task(void *ctx, int64_t i) {
  pool_job *j = ctx;
  if (j->dt == CRL_FLOAT32)
    pool_fwd_f32(j, i);
  else
    pool_fwd_f64(j, i);
}

static void pool_bwd_task(void *ctx, int64_t i) {
  pool_job *j = ctx;
  if (j->dt == CRL_FLOAT32)
    pool_bwd_f32(j, i);
  else
    pool_bwd_f64(j, i);
}

static int pool_backward(crl_node *n, crl_tensor *gy, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  crl_tensor *idx = n->saved[0];
  pool_job j = {.dt = n->edges[0].dtype};
  j.NC = n->i[0], j.H = n->i[1], j.W = n->i[2], j.OH = n->i[3];
  j.OW = n->i[4];
  if (gy->dtype != j.dt) gy = crl__to_contig_dtype(gy, j.dt);
  crl_tensor *gyc = gy ? contig(gy) : NULL;
  crl_tensor *gx =
      gyc ? crl_zeros(j.dt, n->edges[0].ndim, n->edges[0].shape) : NULL;
  if (!gx) return crl_last_error_code();
  j.gy = gyc->data, j.gx = gx->data, j.idx = idx->data;
  crl_parallel_for(ceil_div(j.NC, POOL_PLANES), pool_bwd_task, &j);
  gin[0] = gx;
  return 0;
}

crl_tensor *crl_max_pool2d(crl_tensor *x, int kh, int kw, int stride_h,
                           int stride_w, int pad_h, int pad_w) {
  char s1[160];
  if (!x) return CRL_ERR_NULL(CRL_EINVAL, "max_pool2d: tensor is NULL");
  if (crl__check_cpu("max_pool2d", x)) return NULL;
  if (x->ndim != 4)
    return CRL_ERR_NULL(CRL_ESHAPE, "max_pool2d: input %s must be [N, C, H, W]",
                        CRL_SHAPE_STR(x, s1));
  if (!crl_dtype_is_float(x->dtype))
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "max_pool2d: needs a float32 or float64 input, got %s",
                        crl_dtype_name(x->dtype));
  if (kh < 1 || kw < 1 || stride_h < 1 || stride_w < 1 || pad_h < 0 ||
      pad_w < 0 || 2 * pad_h > kh || 2 * pad_w > kw)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "max_pool2d: kernel (%d, %d) and stride (%d, %d) must "
                        "be >= 1, padding (%d, %d) between 0 and half the "
                        "kernel",
                        kh, kw, stride_h, stride_w, pad_h, pad_w);
  if (x->shape[2] + 2 * pad_h < kh || x->shape[3] + 2 * pad_w < kw)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "max_pool2d: input %s with padding (%d, %d) is smaller "
                        "than the kernel (%d, %d)",
                        CRL_SHAPE_STR(x, s1), pad_h, pad_w, kh, kw);
  pool_job j = {.dt = x->dtype,
                .kh = kh,
                .kw = kw,
                .sh = stride_h,
                .sw = stride_w,
                .ph = pad_h,
                .pw = pad_w};
  j.NC = x->shape[0] * x->shape[1], j.H = x->shape[2], j.W = x->shape[3];
  j.OH = (j.H + 2 * pad_h - kh) / stride_h + 1;
  j.OW = (j.W + 2 * pad_w - kw) / stride_w + 1;
  crl_tensor *y =
      crl_empty(j.dt, CRL_SHAPE(x->shape[0], x->shape[1], j.OH, j.OW));
  if (!y) return NULL;
  bool grad = crl__any_requires_grad(1, &x);
  crl_tensor *idx = grad ? crl_empty(CRL_INT64, 4, y->shape) : NULL;
  crl_tensor *xc = (!grad || idx) ? contig(x) : NULL;
  if (!xc) {
    crl__discard(idx);
    crl__discard(y);
    return NULL;
  }
  j.x = xc->data, j.y = y->data, j.idx = idx ? idx->data : NULL;
  crl_parallel_for(ceil_div(j.NC, POOL_PLANES), pool_fwd_task, &j);
  drop(xc, x);
  if (grad) {
    crl_node *nd = crl__record(y, "max_pool2d", pool_backward, 1, &x);
    if (!nd) {
      crl__discard(idx);
      crl__discard(y);
      return NULL;
    }
    const int64_t geo[5] = {j.NC, j.H, j.W, j.OH, j.OW};
    memcpy(nd->i, geo, sizeof geo);
    crl__save(nd, 0, idx);
    crl__discard(idx);
  }
  return y;
}

#else /* ---- template: CONV_T, CONV_S (name suffix), CONV_GEMM ---- */

#define T CONV_T
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, CONV_S)

/* r[0..n) = v and sum of r[0..n), in blocks GCC vectorizes at -O2 */
static void FN(fill_)(T *restrict r, int64_t n, T v) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
#pragma GCC unroll 16
    for (int l = 0; l < 16; l++)
      r[i + l] = v;
  for (; i < n; i++)
    r[i] = v;
}

static T FN(sum_)(const T *restrict r, int64_t n) {
  T acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
#pragma GCC unroll 16
    for (int l = 0; l < 16; l++)
      acc[l] += r[i + l];
  T s = 0;
  for (int l = 0; l < 16; l++)
    s += acc[l];
  for (; i < n; i++)
    s += r[i];
  return s;
}

/* d[0..n) = s[0..n), d[0..n) = 0, d[0..n) += s[0..n) for the short runs of
 * im2row (n <= kw). Runs up to 16 elements use constant-size copies that
 * compile to a few vector moves (a loop would be turned into a call to
 * memcpy/memset, whose fixed cost dominates at these sizes). */
#define RUN_CASES(X)                                                           \
  X(1)                                                                         \
  X(2)                                                                         \
  X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
static inline __attribute__((always_inline)) void
FN(copy_run_)(T *restrict d, const T *restrict s, int64_t n) {
  switch (n) {
#define COPY_CASE(k)                                                           \
  case k:                                                                      \
    memcpy(d, s, k * sizeof(T));                                               \
    return;
    RUN_CASES(COPY_CASE)
#undef COPY_CASE
  default:
    if (n > 0) memcpy(d, s, (size_t)n * sizeof(T));
  }
}

static inline void FN(zero_run_)(T *restrict d, int64_t n) {
  switch (n) {
#define ZERO_CASE(k)                                                           \
  case k:                                                                      \
    memset(d, 0, k * sizeof(T));                                               \
    return;
    RUN_CASES(ZERO_CASE)
#undef ZERO_CASE
  default:
    if (n > 0) memset(d, 0, (size_t)n * sizeof(T));
  }
}
#undef RUN_CASES

static inline void FN(add_run_)(T *restrict d, const T *restrict s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++)
      d[i + l] += s[i + l];
  for (; i < n; i++)
    d[i] += s[i];
}

/* rows [P, K] of one image x [C, H, W]: row p = (oh, ow) holds the input
 * patch in (c, ki, kj) order, so each (c, ki) is a contiguous run of kw
 * input elements (zeros where the patch leaves the image). KW is kw as a
 * compile-time constant (0: read it from g) so interior runs are a fixed
 * number of vector moves. */
static inline __attribute__((always_inline)) void
FN(im2row_k_)(const int KW, const geom *g, const T *restrict x,
              T *restrict rows) {
  const int64_t kw = KW ? KW : g->kw, kh = g->kh;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const int64_t ih0 = oh * g->sh - g->ph; /* ki valid in [klo, khi) */
    const int64_t klo = ih0 >= 0 ? 0 : (-ih0 < kh ? -ih0 : kh);
    const int64_t khi =
        g->H - ih0 < klo ? klo : (g->H - ih0 < kh ? g->H - ih0 : kh);
    for (int64_t ow = 0; ow < g->OW; ow++) {
      T *r = rows + (oh * g->OW + ow) * g->K;
      const int64_t iw0 = ow * g->sw - g->pw;
      const int64_t lo = iw0 < 0 ? -iw0 : 0;
      const int64_t hi = g->W - iw0 < kw ? g->W - iw0 : kw;
      const bool full = lo == 0 && hi == kw;
      for (int64_t c = 0; c < g->C; c++, r += kh * kw) {
        const T *src = x + (c * g->H + ih0) * g->W + iw0;
        if (klo > 0) FN(zero_run_)(r, klo * kw);
        for (int64_t ki = klo; ki < khi; ki++) {
          T *d = r + ki * kw;
          const T *sk = src + ki * g->W;
          if (KW && full) {
            memcpy(d, sk, KW * sizeof(T));
          } else if (lo >= hi) {
            FN(zero_run_)(d, kw);
          } else {
            FN(zero_run_)(d, lo);
            FN(copy_run_)(d + lo, sk + lo, hi - lo);
            FN(zero_run_)(d + hi, kw - hi);
          }
        }
        if (khi < kh) FN(zero_run_)(r + khi * kw, (kh - khi) * kw);
      }
    }
  }
}

/* dx [C, H, W] += the inverse of im2row for drows [P, K] */
static inline __attribute__((always_inline)) void
FN(row2im_k_)(const int KW, const geom *g, const T *restrict drows,
              T *restrict dx) {
  const int64_t kw = KW ? KW : g->kw, kh = g->kh;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const int64_t ih0 = oh * g->sh - g->ph;
    const int64_t klo = ih0 >= 0 ? 0 : (-ih0 < kh ? -ih0 : kh);
    const int64_t khi =
        g->H - ih0 < klo ? klo : (g->H - ih0 < kh ? g->H - ih0 : kh);
    for (int64_t ow = 0; ow < g->OW; ow++) {
      const T *r = drows + (oh * g->OW + ow) * g->K;
      const int64_t iw0 = ow * g->sw - g->pw;
      const int64_t lo = iw0 < 0 ? -iw0 : 0;
      const int64_t hi = g->W - iw0 < kw ? g->W - iw0 : kw;
      if (lo >= hi) continue;
      const bool full = lo == 0 && hi == kw;
      for (int64_t c = 0; c < g->C; c++, r += kh * kw) {
        T *dst = dx + (c * g->H + ih0) * g->W + iw0;
        for (int64_t ki = klo; ki < khi; ki++) {
          T *d = dst + ki * g->W;
          const T *sk = r + ki * kw;
          if (KW && full) {
#pragma GCC unroll 16
            for (int l = 0; l < KW; l++)
              d[l] += sk[l];
          } else {
            FN(add_run_)(d + lo, sk + lo, hi - lo);
          }
        }
      }
    }
  }
}

#define KW_DISPATCH(fn, ...)                                                   \
  switch (g->kw) {                                                             \
  case 1: fn(1, __VA_ARGS__); break;                                           \
  case 2: fn(2, __VA_ARGS__); break;                                           \
  case 3: fn(3, __VA_ARGS__); break;                                           \
  case 4: fn(4, __VA_ARGS__); break;                                           \
  case 5: fn(5, __VA_ARGS__); break;                                           \
  case 7: fn(7, __VA_ARGS__); break;                                           \
  case 8: fn(8, __VA_ARGS__); break;                                           \
  default: fn(0, __VA_ARGS__); break;                                          \
  }

static void FN(im2row_)(const geom *g, const T *restrict x, T *restrict rows) {
  KW_DISPATCH(FN(im2row_k_), g, x, rows)
}

static void FN(row2im_)(const geom *g, const T *restrict drows,
                        T *restrict dx) {
  KW_DISPATCH(FN(row2im_k_), g, drows, dx)
}
#undef KW_DISPATCH

/* forward for the images of chunk ci. im2row: per image, rows [P, K] times
 * W^T in one GEMM, then the [P, O] result is transposed into y [O, P] with
 * the bias added. 1x1 direct: y = W x. */
static void FN(conv_fwd_)(conv_job *j, int64_t ci) {
  const geom *g = &j->g;
  const int64_t n0 = ci * CHUNK, n1 = n0 + CHUNK < g->N ? n0 + CHUNK : g->N;
  const int64_t xs = g->C * g->H * g->W, ys = g->O * g->P;
  const T *bias = j->bias;
  if (g->direct) {
    for (int64_t n = n0; n < n1; n++) {
      T *y = (T *)j->y + n * ys;
      if (bias)
        for (int64_t o = 0; o < g->O; o++)
          FN(fill_)(y + o * g->P, g->P, bias[o * j->bias_stride]);
      CONV_GEMM(false, false, g->O, g->P, g->K, 1, j->w, g->K,
                (const T *)j->x + n * xs, g->P, bias ? 1 : 0, y, g->P);
    }
    return;
  }
  /* one image at a time: its rows (P x K) stay in L2 for the GEMM */
  T *rows = crl__aligned_alloc(sizeof(T) * (size_t)(g->P * g->K + 1));
  T *t = crl__aligned_alloc(sizeof(T) * (size_t)(g->P * g->O + 1));
  if (!rows || !t) {
    j->fail = 1;
    crl__aligned_free(rows);
    crl__aligned_free(t);
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    FN(im2row_)(g, (const T *)j->x + n * xs, rows);
    CONV_GEMM(false, true, g->P, g->O, g->K, 1, rows, g->K, j->w, g->K, 0, t,
              g->O);
    T *y = (T *)j->y + n * ys;
    for (int64_t o = 0; o < g->O; o++) {
      const T b = bias ? bias[o * j->bias_stride] : 0;
      T *yo = y + o * g->P;
      for (int64_t p = 0; p < g->P; p++)
        yo[p] = t[p * g->O + o] + b;
    }
  }
  crl__aligned_free(rows);
  crl__aligned_free(t);
}

/* backward for the images of chunk ci: dx directly, dW/db into the chunk's
 * partial slots. im2row: dW += dY [O, P] rows [P, K] (rows recomputed),
 * drows [P, K] = dY^T W scattered back by row2im. 1x1 direct: the image
 * is its own [K, P] column matrix. */
static void FN(conv_bwd_)(conv_job *j, int64_t ci) {
  const geom *g = &j->g;
  const int64_t n0 = ci * CHUNK, n1 = n0 + CHUNK < g->N ? n0 + CHUNK : g->N;
  const int64_t xs = g->C * g->H * g->W, ys = g->O * g->P;
  T *buf = NULL;
  if (!g->direct && (j->need_w || j->need_x) &&
      !(buf = crl__aligned_alloc(sizeof(T) * (size_t)(g->K * g->P + 1)))) {
    j->fail = 1;
    return;
  }
  T *gw = j->need_w ? (T *)j->gw_part + ci * g->O * g->K : NULL;
  T *gb = j->need_b ? (T *)j->gb_part + ci * g->O : NULL;
  for (int64_t n = n0; n < n1; n++) {
    const T *x = (const T *)j->x + n * xs;
    const T *gy = (const T *)j->gy + n * ys;
    T *gx = j->need_x ? (T *)j->gx + n * xs : NULL;
    const T beta = n > n0 ? 1 : 0;
    if (j->need_b)
      for (int64_t o = 0; o < g->O; o++)
        gb[o] += FN(sum_)(gy + o * g->P, g->P);
    if (g->direct) {
      if (j->need_w) {
        if (j->wt) /* dW^T [K, O] += x [K, P] * dY^T */
          CONV_GEMM(false, true, g->K, g->O, g->P, 1, x, g->P, gy, g->P, beta,
                    gw, g->O);
        else /* dW [O, K] += dY [O, P] * x^T */
          CONV_GEMM(false, true, g->O, g->K, g->P, 1, gy, g->P, x, g->P, beta,
                    gw, g->K);
      }
      if (j->need_x) /* dx [K, P] = W^T [K, O] * dY [O, P] */
        CONV_GEMM(true, false, g->K, g->P, g->O, 1, j->w, g->K, gy, g->P, 0, gx,
                  g->P);
      continue;
    }
    if (j->need_w) { /* dW [O, K] += dY [O, P] * rows [P, K] */
      FN(im2row_)(g, x, buf);
      CONV_GEMM(false, false, g->O, g->K, g->P, 1, gy, g->P, buf, g->K, beta,
                gw, g->K);
    }
    if (j->need_x) { /* drows [P, K] = dY^T [P, O] * W [O, K] */
      CONV_GEMM(true, false, g->P, g->K, g->O, 1, gy, g->P, j->w, g->K, 0, buf,
                g->K);
      FN(row2im_)(g, buf, gx);
    }
  }
  crl__aligned_free(buf);
}

/* dW = sum of the chunks' partials, in chunk order */
static void FN(reduce_dw_)(const conv_job *j, int64_t nchunks, T *dw) {
  const geom *g = &j->g;
  const int64_t sz = g->O * g->K;
  const T *part = j->gw_part;
  if (j->wt) { /* partials are [K, O] */
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t k = 0; k < g->K; k++) {
        T s = 0;
        for (int64_t c = 0; c < nchunks; c++)
          s += part[c * sz + k * g->O + o];
        dw[o * g->K + k] = s;
      }
  } else {
    for (int64_t i = 0; i < sz; i++)
      dw[i] = part[i];
    for (int64_t c = 1; c < nchunks; c++)
      for (int64_t i = 0; i < sz; i++)
        dw[i] += part[c * sz + i];
  }
}

static void FN(reduce_db_)(const conv_job *j, int64_t nchunks, T *db) {
  const T *part = j->gb_part;
  for (int64_t o = 0; o < j->g.O; o++) {
    T s = 0;
    for (int64_t c = 0; c < nchunks; c++)
      s += part[c * j->g.O + o];
    db[o] = s;
  }
}

/* max pooling of planes [ci * POOL_PLANES, ...) with argmax (flat index in
 * the H x W plane; first maximum wins, NaN propagates) */
static void FN(pool_fwd_)(pool_job *j, int64_t ci) {
  const int64_t p0 = ci * POOL_PLANES;
  const int64_t p1 = p0 + POOL_PLANES < j->NC ? p0 + POOL_PLANES : j->NC;
  for (int64_t p = p0; p < p1; p++) {
    const T *x = (const T *)j->x + p * j->H * j->W;
    T *y = (T *)j->y + p * j->OH * j->OW;
    int64_t *ix = j->idx ? j->idx + p * j->OH * j->OW : NULL;
    for (int64_t oh = 0; oh < j->OH; oh++) {
      int64_t h0 = oh * j->sh - j->ph, h1 = h0 + j->kh;
      if (h0 < 0) h0 = 0;
      if (h1 > j->H) h1 = j->H;
      for (int64_t ow = 0; ow < j->OW; ow++) {
        int64_t w0 = ow * j->sw - j->pw, w1 = w0 + j->kw;
        if (w0 < 0) w0 = 0;
        if (w1 > j->W) w1 = j->W;
        int64_t best_i = h0 * j->W + w0;
        T best = x[best_i];
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            const T v = x[h * j->W + w];
            if (v > best || (v != v && best == best)) {
              best = v;
              best_i = h * j->W + w;
            }
          }
        y[oh * j->OW + ow] = best;
        if (ix) ix[oh * j->OW + ow] = best_i;
      }
    }
  }
}

static void FN(pool_bwd_)(pool_job *j, int64_t ci) {
  const int64_t p0 = ci * POOL_PLANES;
  const int64_t p1 = p0 + POOL_PLANES < j->NC ? p0 + POOL_PLANES : j->NC;
  const int64_t P = j->OH * j->OW;
  for (int64_t p = p0; p < p1; p++) {
    const T *gy = (const T *)j->gy + p * P;
    const int64_t *ix = j->idx + p * P;
    T *gx = (T *)j->gx + p * j->H * j->W;
    for (int64_t q = 0; q < P; q++)
      gx[ix[q]] += gy[q];
  }
}

#undef T
#undef CAT_
#undef CAT
#undef FN

#endif
