/* Strided N-d iteration shared by elementwise kernels, plus copy/cast and
 * the work splitting of the [O][R][I] kernels. */
#include <stdlib.h>

#include "internal.h"

typedef struct {
  int nops, ndim;
  int64_t shape[CRL_MAX_DIMS];
  int64_t st[CRL_ITER_MAX_OPS][CRL_MAX_DIMS];
  char *base[CRL_ITER_MAX_OPS];
  crl__loop_fn fn;
  void *ctx;
  int64_t total, chunk;
} iter_plan;

/* Process flat logical elements [start, end). */
static void run_range(const iter_plan *p, int64_t start, int64_t end) {
  int nd = p->ndim, no = p->nops;
  int64_t idx[CRL_MAX_DIMS];
  int64_t rem = start;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = rem % p->shape[d];
    rem /= p->shape[d];
  }
  char *ptr[CRL_ITER_MAX_OPS];
  int64_t inner[CRL_ITER_MAX_OPS];
  for (int o = 0; o < no; o++) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++)
      off += idx[d] * p->st[o][d];
    ptr[o] = p->base[o] + off;
    inner[o] = p->st[o][nd - 1];
  }
  int64_t cur = start, ninner = p->shape[nd - 1];
  while (cur < end) {
    int64_t run = ninner - idx[nd - 1];
    if (run > end - cur) run = end - cur;
    p->fn(ptr, inner, run, p->ctx);
    cur += run;
    if (cur >= end) break;
    /* the row is finished (else cur == end): back to its start, then carry
     * into the outer dims */
    for (int o = 0; o < no; o++)
      ptr[o] -= idx[nd - 1] * inner[o];
    idx[nd - 1] = 0;
    for (int d = nd - 2; d >= 0; d--) {
      idx[d]++;
      for (int o = 0; o < no; o++)
        ptr[o] += p->st[o][d];
      if (idx[d] < p->shape[d]) break;
      for (int o = 0; o < no; o++)
        ptr[o] -= p->st[o][d] * p->shape[d];
      idx[d] = 0;
    }
  }
}

static void run_chunk(void *ctx, int64_t i) {
  const iter_plan *p = ctx;
  int64_t s = i * p->chunk, e = s + p->chunk;
  if (e > p->total) e = p->total;
  run_range(p, s, e);
}

void crl__iterate(int nops, char *const *base, int ndim, const int64_t *shape,
                  const int64_t (*bs)[CRL_MAX_DIMS], crl__loop_fn fn, void *ctx,
                  bool parallel) {
  iter_plan p;
  p.nops = nops;
  p.fn = fn;
  p.ctx = ctx;
  for (int o = 0; o < nops; o++)
    p.base[o] = base[o];
  /* drop size-1 dims, then merge adjacent dims contiguous for all ops */
  int nd = 0;
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) {
    total *= shape[d];
    if (shape[d] == 1) continue;
    p.shape[nd] = shape[d];
    for (int o = 0; o < nops; o++)
      p.st[o][nd] = bs[o][d];
    nd++;
  }
  if (total == 0) return;
  if (nd == 0) {
    int64_t z[CRL_ITER_MAX_OPS] = {0};
    char *ptr[CRL_ITER_MAX_OPS];
    for (int o = 0; o < nops; o++)
      ptr[o] = p.base[o];
    fn(ptr, z, 1, ctx);
    return;
  }
  int m = 0;
  for (int d = 1; d < nd; d++) {
    bool merge = true;
    for (int o = 0; o < nops; o++)
      if (p.st[o][m] != p.st[o][d] * p.shape[d]) {
        merge = false;
        break;
      }
    if (merge) {
      p.shape[m] *= p.shape[d];
      for (int o = 0; o < nops; o++)
        p.st[o][m] = p.st[o][d];
    } else {
      m++;
      p.shape[m] = p.shape[d];
      for (int o = 0; o < nops; o++)
        p.st[o][m] = p.st[o][d];
    }
  }
  p.ndim = m + 1;
  p.total = total;
  if (parallel && total >= 2 * CRL_PARALLEL_GRAIN &&
      crl_get_num_threads() > 1) {
    p.chunk = CRL_PARALLEL_GRAIN;
    crl_parallel_for((total + p.chunk - 1) / p.chunk, run_chunk, &p);
  } else {
    run_range(&p, 0, total);
  }
}

void crl__iterate_tensors(crl_tensor *dst, int nsrc, crl_tensor *const *srcs,
                          crl__loop_fn fn, void *ctx, bool parallel) {
  char *base[CRL_ITER_MAX_OPS];
  int64_t bs[CRL_ITER_MAX_OPS][CRL_MAX_DIMS];
  base[0] = dst->data;
  int64_t es = (int64_t)crl_dtype_size(dst->dtype);
  for (int d = 0; d < dst->ndim; d++)
    bs[0][d] = dst->stride[d] * es;
  for (int k = 0; k < nsrc; k++) {
    const crl_tensor *s = srcs[k];
    base[k + 1] = s->data;
    crl__broadcast_strides(s, dst->ndim, dst->shape, bs[k + 1]);
    int64_t ss = (int64_t)crl_dtype_size(s->dtype);
    for (int d = 0; d < dst->ndim; d++)
      bs[k + 1][d] *= ss;
  }
  crl__iterate(nsrc + 1, base, dst->ndim, dst->shape,
               (const int64_t(*)[CRL_MAX_DIMS])bs, fn, ctx, parallel);
}

/* ---- copy with conversion ---------------------------------------------- */

#define CONV_LOOP(TD, TS, EXPR)                                                \
  {                                                                            \
    char *d = ptrs[0], *s = ptrs[1];                                           \
    int64_t sd = st[0], ss = st[1];                                            \
    for (int64_t i = 0; i < n; i++) {                                          \
      TS v = *(const TS *)(s + i * ss);                                        \
      *(TD *)(d + i * sd) = (TD)(EXPR);                                        \
    }                                                                          \
  }

#define SRC_SWITCH(TD, TOBOOL)                                                 \
  switch (sdt) {                                                               \
  case CRL_FLOAT32: CONV_LOOP(TD, float, TOBOOL) break;                        \
  case CRL_FLOAT64: CONV_LOOP(TD, double, TOBOOL) break;                       \
  case CRL_INT64: CONV_LOOP(TD, int64_t, TOBOOL) break;                        \
  case CRL_INT32: CONV_LOOP(TD, int32_t, TOBOOL) break;                        \
  case CRL_UINT8: CONV_LOOP(TD, uint8_t, TOBOOL) break;                        \
  case CRL_BOOL: CONV_LOOP(TD, uint8_t, TOBOOL) break;                         \
  default: break;                                                              \
  }

typedef struct {
  crl_dtype ddt, sdt;
} conv_ctx;

static void conv_loop(char **ptrs, const int64_t *st, int64_t n, void *vctx) {
  const conv_ctx *c = vctx;
  crl_dtype sdt = c->sdt;
  if (c->ddt == sdt) {
    size_t es = crl_dtype_size(sdt);
    if (st[0] == (int64_t)es && st[1] == (int64_t)es) {
      memcpy(ptrs[0], ptrs[1], (size_t)n * es);
      return;
    }
  }
  switch (c->ddt) {
  case CRL_FLOAT32: SRC_SWITCH(float, v) break;
  case CRL_FLOAT64: SRC_SWITCH(double, v) break;
  case CRL_INT64: SRC_SWITCH(int64_t, v) break;
  case CRL_INT32: SRC_SWITCH(int32_t, v) break;
  case CRL_UINT8: SRC_SWITCH(uint8_t, v) break;
  case CRL_BOOL: SRC_SWITCH(uint8_t, v != 0) break;
  default: break;
  }
}

void crl__copy_into(crl_tensor *dst, const crl_tensor *src) {
  if (dst->dtype == src->dtype && crl_same_shape(dst, src) &&
      crl_tensor_is_contiguous(dst) && crl_tensor_is_contiguous(src)) {
    memcpy(dst->data, src->data,
           (size_t)dst->numel * crl_dtype_size(dst->dtype));
    return;
  }
  conv_ctx c = {dst->dtype, src->dtype};
  crl_tensor *s = (crl_tensor *)src;
  crl__iterate_tensors(dst, 1, &s, conv_loop, &c, true);
}

crl_tensor *crl__to_contig_dtype(crl_tensor *a, crl_dtype dt) {
  crl_tensor *r = crl_empty(dt, a->ndim, a->shape);
  if (r) crl__copy_into(r, a);
  return r;
}

/* ---- work splitting of the [O][R][I] kernels (reductions, softmax, ...) - */

void crl__run_items(int64_t n, int64_t work, crl__item_fn fn, void *ctx) {
  if (work >= 2 * CRL_PARALLEL_GRAIN && n > 1 && crl_get_num_threads() > 1) {
    crl_parallel_for(n, fn, ctx);
  } else {
    for (int64_t i = 0; i < n; i++)
      fn(ctx, i);
  }
}

void crl__run_slabs(int64_t O, int64_t R, int64_t I, int64_t grain, int64_t *G,
                    crl__item_fn fn, void *ctx) {
  int64_t slab = R * I;
  *G = grain / (slab ? slab : 1) + 1;
  crl__run_items((O + *G - 1) / *G, O * slab, fn, ctx);
}

void crl__shape_ori(int ndim, const int64_t *shape, int d, int64_t *O,
                    int64_t *R, int64_t *I) {
  *O = *R = *I = 1;
  for (int k = 0; k < ndim; k++) {
    if (k < d) *O *= shape[k];
    if (k == d) *R = shape[k];
    if (k > d) *I *= shape[k];
  }
}
