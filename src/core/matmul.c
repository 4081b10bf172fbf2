/* Matrix products on the internal GEMM (gemm.h): crl_matmul with
 * torch.matmul semantics and crl_linear (x W^T + b), with their backward.
 *
 * Operands are used in place whenever each matrix has one unit stride: a
 * transposed view becomes a GEMM trans flag, and leading (batch) dims that
 * are evenly spaced fold into the row count so a batched product against
 * one matrix is a single GEMM call. Only layouts GEMM cannot express
 * (stride 0 inside a matrix, neither stride 1) are copied. */
#include <stdlib.h>

#include "gemm.h"
#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

static int check_float_pair(const char *op, const crl_tensor *a,
                            const crl_tensor *b) {
  if (!crl_dtype_is_float(a->dtype) || a->dtype != b->dtype)
    return crl__err(CRL_EDTYPE,
                    "%s: needs two float32 or two float64 tensors, got %s and "
                    "%s (cast first)",
                    op, crl_dtype_name(a->dtype), crl_dtype_name(b->dtype));
  return 0;
}

/* C = alpha * op(A) * op(B) + beta * C in the tensor dtype. */
static void gemm_dt(crl_dtype dt, bool ta, bool tb, int64_t M, int64_t N,
                    int64_t K, const void *A, int64_t lda, const void *B,
                    int64_t ldb, double beta, void *C, int64_t ldc) {
  if (dt == CRL_FLOAT32)
    crl__gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, (float)beta, C, ldc);
  else
    crl__dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}

/* A rows x cols matrix with element strides (rs, cs) as a GEMM operand:
 * row-major (cs == 1) or transposed (rs == 1) with a leading dimension that
 * keeps rows apart. Strides of size-1 dims do not matter. */
static bool gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                        bool *trans, int64_t *ld) {
  if (rows == 0 || cols == 0) { /* nothing is read */
    *trans = false;
    *ld = cols > 1 ? cols : 1;
    return true;
  }
  if (cols == 1) cs = 1;
  if (rows == 1) rs = cols > 1 ? cols : 1;
  if (cs == 1 && rs >= cols && rs >= 1) {
    *trans = false;
    *ld = rs;
    return true;
  }
  if (rs == 1 && cs >= rows && cs >= 1) {
    *trans = true;
    *ld = cs;
    return true;
  }
  return false;
}

/* Dims [0, last] (shape/stride arrays) fold into one run of rows spaced by
 * the stride of the innermost one of size > 1; size-1 dims are ignored.
 * Sets *rs to that spacing, or `dflt` when all those dims have size 1. */
static bool rows_fold(int last, const int64_t *shape, const int64_t *stride,
                      int64_t dflt, int64_t *rs) {
  int64_t span = 0;
  bool first = true;
  for (int d = last; d >= 0; d--) {
    if (shape[d] == 1) continue;
    if (first) {
      *rs = stride[d];
      span = stride[d] * shape[d];
      first = false;
    } else {
      if (stride[d] != span) return false;
      span *= shape[d];
    }
  }
  if (first) *rs = dflt;
  return true;
}

/* t (any dims) as a rows x cols matrix, cols = last dim: row-major with
 * evenly spaced rows, in place, or a contiguous copy (*owned set). */
static crl_tensor *as_rows(crl_tensor *t, int64_t *ld, bool *owned) {
  int nd = t->ndim;
  int64_t cols = nd ? t->shape[nd - 1] : 1, rs;
  *owned = false;
  if (nd && (cols <= 1 || t->stride[nd - 1] == 1) &&
      rows_fold(nd - 2, t->shape, t->stride, cols, &rs) &&
      (rs >= cols || t->numel <= cols)) {
    *ld = rs >= cols && rs >= 1 ? rs : (cols > 1 ? cols : 1);
    return t;
  }
  crl_tensor *c = crl__to_contig_dtype(t, t->dtype);
  if (!c) return NULL;
  *owned = true;
  *ld = cols > 1 ? cols : 1;
  return c;
}

/* ---- matmul ---------------------------------------------------------------
 * Operands are viewed as a' = [batch_a..., n, k] (a 1-D a as [1, k]) and
 * b' = [batch_b..., k, m] (a 1-D b as [k, 1]); batch dims broadcast. */
typedef struct {
  int ndim; /* ndim of a' / b' */
  int64_t shape[CRL_MAX_DIMS + 1], stride[CRL_MAX_DIMS + 1];
} mat_view;

static void make_view(const crl_tensor *t, bool is_b, mat_view *v) {
  if (t->ndim == 1) {
    v->ndim = 2;
    int64_t k = t->shape[0], s = t->stride[0];
    if (is_b) {
      v->shape[0] = k, v->stride[0] = s; /* [k, 1] */
      v->shape[1] = 1, v->stride[1] = 1;
    } else {
      v->shape[0] = 1, v->stride[0] = k; /* [1, k] */
      v->shape[1] = k, v->stride[1] = s;
    }
    return;
  }
  v->ndim = t->ndim;
  memcpy(v->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  memcpy(v->stride, t->stride, sizeof(int64_t) * (size_t)t->ndim);
}

static crl_tensor *matmul_fwd(crl_tensor *a, crl_tensor *b);

static int matmul_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *a = n->saved[0], *b = n->saved[1];
  crl_tensor *a2 = a, *b2 = b, *g2 = g;
  int64_t k = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (a->ndim == 1) a2 = crl_reshape(a, CRL_SHAPE(1, k));
  if (b->ndim == 1) b2 = crl_reshape(b, CRL_SHAPE(k, 1));
  if (!a2 || !b2) return crl_last_error_code();
  if (g->dtype != a->dtype) g = crl__to_contig_dtype(g, a->dtype);
  if (!g) return crl_last_error_code();
  /* g as batch + [n, m] */
  int64_t gs[CRL_MAX_DIMS + 2];
  int gnd = 0, nb = (a2->ndim > b2->ndim ? a2->ndim : b2->ndim) - 2;
  for (int d = 0; d < nb; d++)
    gs[gnd++] = g->shape[d];
  gs[gnd++] = a2->shape[a2->ndim - 2];
  gs[gnd++] = b2->shape[b2->ndim - 1];
  g2 = crl_reshape(g, gnd, gs);
  if (!g2) return crl_last_error_code();
  if (n->edges[0].needs_grad) {
    crl_tensor *bt = crl_transpose(b2, -1, -2);
    crl_tensor *ga = bt ? matmul_fwd(g2, bt) : NULL;
    if (ga) ga = crl__sum_to(ga, a2->ndim, a2->shape);
    if (ga && a->ndim == 1) ga = crl_reshape(ga, 1, a->shape);
    if (!ga) return crl_last_error_code();
    gin[0] = ga;
  }
  if (n->edges[1].needs_grad) {
    crl_tensor *gb;
    if (b2->ndim == 2 && a2->ndim > 2) {
      /* sum over the batch of a_i^T g_i = (stacked a)^T (stacked g) */
      int64_t m = b2->shape[1];
      crl_tensor *af = crl_reshape(a2, CRL_SHAPE(-1, k));
      crl_tensor *gf = crl_reshape(g2, CRL_SHAPE(-1, m));
      crl_tensor *at = af ? crl_transpose(af, 0, 1) : NULL;
      gb = at && gf ? matmul_fwd(at, gf) : NULL;
    } else {
      crl_tensor *at = crl_transpose(a2, -1, -2);
      gb = at ? matmul_fwd(at, g2) : NULL;
      if (gb) gb = crl__sum_to(gb, b2->ndim, b2->shape);
    }
    if (gb && b->ndim == 1) gb = crl_reshape(gb, 1, b->shape);
    if (!gb) return crl_last_error_code();
    gin[1] = gb;
  }
  return 0;
}

static crl_tensor *matmul_fwd(crl_tensor *a, crl_tensor *b) {
  char s1[160], s2[160];
  mat_view va, vb;
  make_view(a, false, &va);
  make_view(b, true, &vb);
  const int64_t n = va.shape[va.ndim - 2], k = va.shape[va.ndim - 1];
  const int64_t m = vb.shape[vb.ndim - 1];
  if (k != vb.shape[vb.ndim - 2])
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "matmul: shapes %s and %s cannot be multiplied "
                        "(%lld != %lld)",
                        CRL_SHAPE_STR(a, s1), CRL_SHAPE_STR(b, s2),
                        (long long)k, (long long)vb.shape[vb.ndim - 2]);
  /* broadcast batch dims */
  int nba = va.ndim - 2, nbb = vb.ndim - 2, nbo = nba > nbb ? nba : nbb;
  int64_t bshape[CRL_MAX_DIMS], sta[CRL_MAX_DIMS], stb[CRL_MAX_DIMS];
  for (int d = 0; d < nbo; d++) {
    int ia = d - (nbo - nba), ib = d - (nbo - nbb);
    int64_t xa = ia >= 0 ? va.shape[ia] : 1, xb = ib >= 0 ? vb.shape[ib] : 1;
    if (xa != xb && xa != 1 && xb != 1)
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "matmul: batch dims of shapes %s and %s cannot be "
                          "broadcast (batch dim %d: %lld vs %lld)",
                          CRL_SHAPE_STR(a, s1), CRL_SHAPE_STR(b, s2), d,
                          (long long)xa, (long long)xb);
    bshape[d] = xa == 1 ? xb : xa;
    sta[d] = xa == 1 ? 0 : va.stride[ia];
    stb[d] = xb == 1 ? 0 : vb.stride[ib];
  }
  int64_t oshape[CRL_MAX_DIMS];
  int ond = 0;
  for (int d = 0; d < nbo; d++)
    oshape[ond++] = bshape[d];
  if (a->ndim > 1) oshape[ond++] = n;
  if (b->ndim > 1) oshape[ond++] = m;
  crl_tensor *out = crl_empty(a->dtype, ond, oshape);
  if (!out || out->numel == 0) return out;
  const crl_dtype dt = a->dtype;
  const int64_t es = (int64_t)crl_dtype_size(dt);
  crl_tensor *ca = NULL, *cb = NULL; /* copies, if a layout needs one */
  bool ta = false, tb = false;
  int64_t lda = 1, ldb = 1;
  if (!gemm_layout(n, k, va.stride[va.ndim - 2], va.stride[va.ndim - 1], &ta,
                   &lda)) {
    if (!(ca = crl__to_contig_dtype(a, dt))) goto fail;
    make_view(ca, false, &va);
    for (int d = 0; d < nbo; d++) {
      int ia = d - (nbo - nba);
      sta[d] = ia < 0 || va.shape[ia] == 1 ? 0 : va.stride[ia];
    }
    gemm_layout(n, k, va.stride[va.ndim - 2], va.stride[va.ndim - 1], &ta,
                &lda);
  }
  if (!gemm_layout(k, m, vb.stride[vb.ndim - 2], vb.stride[vb.ndim - 1], &tb,
                   &ldb)) {
    if (!(cb = crl__to_contig_dtype(b, dt))) goto fail;
    make_view(cb, true, &vb);
    for (int d = 0; d < nbo; d++) {
      int ib = d - (nbo - nbb);
      stb[d] = ib < 0 || vb.shape[ib] == 1 ? 0 : vb.stride[ib];
    }
    gemm_layout(k, m, vb.stride[vb.ndim - 2], vb.stride[vb.ndim - 1], &tb,
                &ldb);
  }
  const char *pa = ca ? ca->data : a->data, *pb = cb ? cb->data : b->data;
  char *pc = out->data;
  /* one matrix on the right (b has no batch stride) and a's batch rows
   * evenly spaced: a single GEMM over all of them */
  bool bbatch = false;
  for (int d = 0; d < nbo; d++)
    bbatch |= stb[d] != 0;
  int64_t frs;
  if (!bbatch && !ta && nba == nbo &&
      rows_fold(va.ndim - 2, va.shape, va.stride, lda, &frs) &&
      (frs >= k || out->numel == m)) {
    gemm_dt(dt, false, tb, out->numel / m, m, k, pa, frs >= k ? frs : lda, pb,
            ldb, 0.0, pc, m);
    goto done;
  }
  {
    int64_t nbatch = 1, idx[CRL_MAX_DIMS] = {0};
    for (int d = 0; d < nbo; d++)
      nbatch *= bshape[d];
    int64_t oa = 0, ob = 0;
    for (int64_t i = 0; i < nbatch; i++) {
      gemm_dt(dt, ta, tb, n, m, k, pa + oa * es, lda, pb + ob * es, ldb, 0.0,
              pc + i * n * m * es, m);
      for (int d = nbo - 1; d >= 0; d--) { /* next batch index */
        oa += sta[d];
        ob += stb[d];
        if (++idx[d] < bshape[d]) break;
        oa -= sta[d] * bshape[d];
        ob -= stb[d] * bshape[d];
        idx[d] = 0;
      }
    }
  }
done:
  if (ca) crl__discard(ca);
  if (cb) crl__discard(cb);
  return out;
fail:
  crl__discard(out);
  return NULL;
}

crl_tensor *crl_matmul(crl_tensor *a, crl_tensor *b) {
  if (!a || !b) return CRL_ERR_NULL(CRL_EINVAL, "matmul: tensor is NULL");
  if (crl__check_cpu("matmul", a) || crl__check_cpu("matmul", b)) return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    char s1[160], s2[160];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "matmul: both arguments need at least 1 dim, got "
                        "shapes %s and %s",
                        CRL_SHAPE_STR(a, s1), CRL_SHAPE_STR(b, s2));
  }
  if (check_float_pair("matmul", a, b)) return NULL;
  crl_tensor *out = matmul_fwd(a, b);
  if (!out) return NULL;
  crl_tensor *in[2] = {a, b};
  if (crl__any_requires_grad(2, in)) {
    crl_node *nd = crl__record(out, "matmul", matmul_backward, 2, in);
    if (!nd) {
      crl__discard(out);
      return NULL;
    }
    crl__save(nd, 0, a);
    crl__save(nd, 1, b);
  }
  return out;
}

/* ---- linear ----------------------------------------------------------------
 * y = x W^T + b over x [..., in]: the leading dims of x fold into the GEMM's
 * rows, W [out, in] is read through the trans flag, and the bias is copied
 * into every output row first so the GEMM adds onto it (beta = 1). */

/* W [out, in] as op(B) = W^T of a GEMM: *tb and *ld, or false when W needs
 * a contiguous copy. */
static bool weight_layout(const crl_tensor *w, bool *tb, int64_t *ld) {
  bool tr;
  if (!gemm_layout(w->shape[0], w->shape[1], w->stride[0], w->stride[1], &tr,
                   ld))
    return false;
  *tb = !tr; /* row-major W: op(B) = W^T is a transposed read */
  return true;
}

/* sum over rows: db[j] = sum_i g[i * ldg + j] (blocks of 16 columns so GCC
 * vectorizes at -O2) */
#define COLSUM(T)                                                              \
  static void colsum_##T(int64_t M, int64_t N, const T *restrict g,            \
                         int64_t ldg, T *restrict db) {                        \
    int64_t j = 0;                                                             \
    for (; j + 16 <= N; j += 16) {                                             \
      T acc[16] = {0};                                                         \
      for (int64_t i = 0; i < M; i++)                                          \
        _Pragma("GCC unroll 16") for (int l = 0; l < 16; l++) acc[l] +=        \
            g[i * ldg + j + l];                                                \
      _Pragma("GCC unroll 16") for (int l = 0; l < 16; l++) db[j + l] =        \
          acc[l];                                                              \
    }                                                                          \
    for (; j < N; j++) {                                                       \
      T s = 0;                                                                 \
      for (int64_t i = 0; i < M; i++)                                          \
        s += g[i * ldg + j];                                                   \
      db[j] = s;                                                               \
    }                                                                          \
  }
COLSUM(float)
COLSUM(double)
#undef COLSUM

static int linear_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  crl_tensor *x = n->saved[0], *w = n->saved[1];
  const crl_dtype dt = x->dtype;
  const int64_t out_f = w->shape[0], in_f = w->shape[1];
  if (g->dtype != dt && !(g = crl__to_contig_dtype(g, dt)))
    return crl_last_error_code();
  int64_t ldg, ldx, ldw = 1;
  bool og, ox, tw = true;
  crl_tensor *gm = as_rows(g, &ldg, &og);
  if (!gm) return crl_last_error_code();
  const int64_t M =
      out_f ? g->numel / out_f : crl__numel(x->ndim - 1, x->shape);
  if (n->edges[0].needs_grad) { /* dX [M, in] = dY [M, out] W [out, in] */
    crl_tensor *gx = crl_empty(dt, x->ndim, x->shape);
    if (!gx) return crl_last_error_code();
    crl_tensor *wc = w;
    if (!weight_layout(w, &tw, &ldw)) {
      if (!(wc = crl__to_contig_dtype(w, dt))) return crl_last_error_code();
      weight_layout(wc, &tw, &ldw);
    }
    /* op(B) = W: a row-major W is read as is (tw says W^T is transposed) */
    gemm_dt(dt, false, !tw, M, in_f, out_f, gm->data, ldg, wc->data, ldw, 0.0,
            gx->data, in_f ? in_f : 1);
    gin[0] = gx;
  }
  if (n->edges[1].needs_grad) { /* dW [out, in] = dY^T [out, M] X [M, in] */
    crl_tensor *xm = as_rows(x, &ldx, &ox);
    crl_tensor *gw = crl_empty(dt, 2, w->shape);
    if (!xm || !gw) return crl_last_error_code();
    gemm_dt(dt, true, false, out_f, in_f, M, gm->data, ldg, xm->data, ldx, 0.0,
            gw->data, in_f ? in_f : 1);
    gin[1] = gw;
  }
  if (n->ninputs > 2 && n->edges[2].needs_grad) { /* db = sum of dY rows */
    crl_tensor *gb = crl_empty(dt, 1, &out_f);
    if (!gb) return crl_last_error_code();
    if (dt == CRL_FLOAT32)
      colsum_float(M, out_f, gm->data, ldg, gb->data);
    else
      colsum_double(M, out_f, gm->data, ldg, gb->data);
    gin[2] = gb;
  }
  return 0;
}

crl_tensor *crl_linear(crl_tensor *x, crl_tensor *w, crl_tensor *bias) {
  char s1[160], s2[160];
  if (!x || !w) return CRL_ERR_NULL(CRL_EINVAL, "linear: tensor is NULL");
  if (crl__check_cpu("linear", x) || crl__check_cpu("linear", w) ||
      (bias && crl__check_cpu("linear", bias)))
    return NULL;
  if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "linear: input shape %s does not match weight shape "
                        "%s (expected input [..., %lld] and weight "
                        "[out_features, in_features])",
                        CRL_SHAPE_STR(x, s1), CRL_SHAPE_STR(w, s2),
                        (long long)(w->ndim == 2 ? w->shape[1] : -1));
  if (check_float_pair("linear", x, w)) return NULL;
  const int64_t out_f = w->shape[0], in_f = w->shape[1];
  if (bias) {
    if (bias->ndim != 1 || bias->shape[0] != out_f)
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "linear: bias shape %s does not match weight shape "
                          "%s (expected [%lld])",
                          CRL_SHAPE_STR(bias, s1), CRL_SHAPE_STR(w, s2),
                          (long long)out_f);
    if (bias->dtype != x->dtype)
      return CRL_ERR_NULL(
          CRL_EDTYPE, "linear: bias dtype %s differs from input dtype %s",
          crl_dtype_name(bias->dtype), crl_dtype_name(x->dtype));
  }
  const crl_dtype dt = x->dtype;
  const size_t es = crl_dtype_size(dt);
  int64_t oshape[CRL_MAX_DIMS];
  memcpy(oshape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  oshape[x->ndim - 1] = out_f;
  crl_tensor *out = crl_empty(dt, x->ndim, oshape);
  if (!out) return NULL;
  const int64_t M = out_f ? out->numel / out_f : 0;
  if (out->numel) {
    int64_t ldx, ldw = 1;
    bool ox, tw = true;
    crl_tensor *xm = as_rows(x, &ldx, &ox), *wc = w;
    if (xm && !weight_layout(w, &tw, &ldw)) {
      wc = crl__to_contig_dtype(w, dt);
      if (wc) weight_layout(wc, &tw, &ldw);
    }
    if (!xm || !wc) {
      if (ox) crl__discard(xm);
      crl__discard(out);
      return NULL;
    }
    char *o = out->data;
    if (bias) {
      /* every output row starts as the bias */
      if (bias->stride[0] == 1 || out_f == 1) {
        for (int64_t i = 0; i < M; i++)
          memcpy(o + (size_t)(i * out_f) * es, bias->data, (size_t)out_f * es);
      } else {
        for (int64_t j = 0; j < out_f; j++)
          crl__store(dt, o, j, crl__load(dt, bias->data, j * bias->stride[0]));
        for (int64_t i = 1; i < M; i++)
          memcpy(o + (size_t)(i * out_f) * es, o, (size_t)out_f * es);
      }
    }
    gemm_dt(dt, false, tw, M, out_f, in_f, xm->data, ldx, wc->data, ldw,
            bias ? 1.0 : 0.0, o, out_f);
    if (wc != w) crl__discard(wc);
    if (ox) crl__discard(xm);
  }
  crl_tensor *in[3] = {x, w, bias};
  if (crl__any_requires_grad(3, in)) {
    crl_node *nd =
        crl__record(out, "linear", linear_backward, bias ? 3 : 2, in);
    if (!nd) {
      crl__discard(out);
      return NULL;
    }
    crl__save(nd, 0, x);
    crl__save(nd, 1, w);
  }
  return out;
}
