/* core.* workloads: the tensor engine (issue: foundation). */
/* BLIS's cblas.h defines static functions it does not use */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <cblas.h>
#pragma GCC diagnostic pop
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gemm.h"
#include "crl/crl.h"
#include "harness.h"

/* ---- core.a: add of two [64] float32 including the result's allocation -- */

typedef struct {
  crl_tensor *a, *b;
} add_ctx;

static void add_body(void *vctx) {
  add_ctx *c = vctx;
  crl_tensor *r = crl_add(c->a, c->b);
  bench_sink(((float *)r->data)[7]);
  crl_tensor_release(r);
}

BENCH("core.a", bench_core_a) {
  crl_rng g;
  crl_rng_seed(&g, 1);
  add_ctx c = {crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(64)),
               crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(64))};
  double ns = bench_ns(add_body, &c);
  bench_emit("core.a", "ns/op", ns,
             "\"op\":\"add\",\"shape\":[64],"
             "\"dtype\":\"float32\",\"target_max\":150");
  crl_tensor_release(c.a);
  crl_tensor_release(c.b);
}

/* ---- core.b: sgemm 256^3 via crl_matmul vs direct cblas_sgemm ----------- */

typedef struct {
  crl_tensor *a, *b, *c;
  int n;
} mm_ctx;

static void mm_crl(void *vctx) {
  mm_ctx *c = vctx;
  crl_tensor *r = crl_matmul(c->a, c->b);
  bench_sink(((float *)r->data)[3]);
  crl_tensor_release(r);
}

static void mm_blas(void *vctx) {
  mm_ctx *c = vctx;
  int n = c->n;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
              c->a->data, n, c->b->data, n, 0.0f, c->c->data, n);
  bench_sink(((float *)c->c->data)[3]);
}

BENCH("core.b", bench_core_b) {
  crl_rng g;
  crl_rng_seed(&g, 2);
  int n = 256;
  mm_ctx c = {crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(n, n)),
              crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(n, n)),
              crl_zeros(CRL_FLOAT32, CRL_SHAPE(n, n)), n};
  double t_crl = bench_ns(mm_crl, &c);
  double t_blas = bench_ns(mm_blas, &c);
  double flops = 2.0 * n * n * n;
  char p[200];
  snprintf(p, sizeof p,
           "\"m\":256,\"n\":256,\"k\":256,\"backend\":\"%s\",\"threads\":1,"
           "\"crl_ns\":%.0f,\"cblas_ns\":%.0f,\"target_min\":0.95",
           crl_blas_backend(), t_crl, t_blas);
  bench_emit("core.b.ratio", "cblas_time/crl_time", t_blas / t_crl, p);
  snprintf(p, sizeof p,
           "\"m\":256,\"n\":256,\"k\":256,\"backend\":\"%s\",\"threads\":1,"
           "\"cblas_gflops\":%.2f,\"target_min\":30",
           crl_blas_backend(), flops / t_blas);
  bench_emit("core.b.gflops", "GFLOP/s", flops / t_crl, p);
  crl_tensor_release(c.a);
  crl_tensor_release(c.b);
  crl_tensor_release(c.c);
}

/* ---- core.c / core.d: MLP training steps -----------------------------------
 */

typedef struct {
  int nl;
  crl_tensor *w[4], *b[4];
  crl_tensor *x, *y;
  crl_optimizer *opt;
  bool relu;
} mlp;

static void mlp_init(mlp *m, const int *sizes, int nl, int batch, bool relu,
                     uint64_t seed) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  m->nl = nl;
  m->relu = relu;
  crl_tensor *params[8];
  for (int i = 0; i < nl; i++) {
    double bound = 1.0 / sqrt((double)sizes[i]);
    m->w[i] = crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(sizes[i + 1], sizes[i]));
    m->b[i] = crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(sizes[i + 1]));
    crl_no_grad_begin();
    crl_uniform_(m->w[i], &g, -bound, bound);
    crl_uniform_(m->b[i], &g, -bound, bound);
    crl_no_grad_end();
    crl_set_requires_grad(m->w[i], true);
    crl_set_requires_grad(m->b[i], true);
    params[2 * i] = m->w[i];
    params[2 * i + 1] = m->b[i];
  }
  m->x = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(batch, sizes[0]));
  m->y = crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(batch, sizes[nl]));
  m->opt = crl_adam_new(params, 2 * nl, (crl_adam_options){.lr = 1e-3});
}

static void mlp_step(void *vctx) {
  mlp *m = vctx;
  crl_scope_begin();
  crl_tensor *h = m->x;
  for (int i = 0; i < m->nl; i++) {
    h = crl_linear(h, m->w[i], m->b[i]);
    if (i < m->nl - 1) h = m->relu ? crl_relu(h) : crl_tanh(h);
  }
  crl_tensor *loss = crl_mean(crl_square(crl_sub(h, m->y)), 0, NULL, false);
  crl_optimizer_zero_grad(m->opt);
  crl_backward(loss, NULL);
  crl_optimizer_step(m->opt);
  bench_sink(crl_item(loss));
  crl_scope_end();
}

static void mlp_free(mlp *m) {
  crl_optimizer_free(m->opt);
  for (int i = 0; i < m->nl; i++) {
    crl_tensor_release(m->w[i]);
    crl_tensor_release(m->b[i]);
  }
  crl_tensor_release(m->x);
  crl_tensor_release(m->y);
}

BENCH("core.c", bench_core_c) {
  mlp m;
  int sizes[] = {4, 64, 64, 2};
  mlp_init(&m, sizes, 3, 64, false, 3);
  double ns = bench_ns(mlp_step, &m);
  bench_emit("core.c", "us/step", ns / 1e3,
             "\"mlp\":\"4-64-64-2\",\"activation\":\"tanh\",\"batch\":64,"
             "\"optimizer\":\"adam\",\"loss\":\"mse\",\"target_max\":40");
  mlp_free(&m);
}

/* The GEMMs of one training step of MLP 23-256-256-1, batch 256, called
 * directly: forward x·Wᵀ for 3 layers, backward dW = dYᵀ·X for 3 layers and
 * dX = dY·W for the 2 upper layers. `own` uses crl's GEMM dispatcher (the
 * kernels the step itself runs), otherwise cblas_sgemm. */
typedef struct {
  float *x, *w[3], *h[3], *dw[3], *dh[3];
  int sizes[4], batch;
  bool own;
} gemm_ctx;

static float *bench_buf(size_t n) {
  float *p = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
  for (size_t i = 0; p && i < n; i++)
    p[i] = (float)(i * 7 % 13) * 0.01f;
  return p;
}

static void gemm_call(bool own, bool ta, bool tb, int m, int n, int k,
                      const float *a, int lda, const float *b, int ldb,
                      float *c, int ldc) {
  if (own)
    crl__gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
                0.0f, c, ldc);
}

static void gemms_only(void *vctx) {
  gemm_ctx *c = vctx;
  int B = c->batch;
  const float *in = c->x;
  for (int i = 0; i < 3; i++) {
    int k = c->sizes[i], n = c->sizes[i + 1];
    gemm_call(c->own, false, true, B, n, k, in, k, c->w[i], k, c->h[i], n);
    in = c->h[i];
  }
  for (int i = 2; i >= 0; i--) {
    int k = c->sizes[i], n = c->sizes[i + 1];
    const float *xin = i ? c->h[i - 1] : c->x;
    gemm_call(c->own, true, false, n, k, B, c->dh[i], n, xin, k, c->dw[i], k);
    if (i > 0)
      gemm_call(c->own, false, false, B, k, n, c->dh[i], n, c->w[i], k,
                c->dh[i - 1], k);
  }
  bench_sink(c->dw[0][1]);
}

BENCH("core.d", bench_core_d) {
  mlp m;
  int sizes[] = {23, 256, 256, 1};
  int B = 256;
  mlp_init(&m, sizes, 3, B, true, 4);
  double ns = bench_ns(mlp_step, &m);
  gemm_ctx g = {.batch = B, .own = true};
  memcpy(g.sizes, sizes, sizeof sizes);
  /* 64-byte aligned, non-zero buffers, as the step's tensors are */
  g.x = bench_buf((size_t)B * 23);
  for (int i = 0; i < 3; i++) {
    g.w[i] = bench_buf((size_t)sizes[i] * sizes[i + 1]);
    g.dw[i] = bench_buf((size_t)sizes[i] * sizes[i + 1]);
    g.h[i] = bench_buf((size_t)B * sizes[i + 1]);
    g.dh[i] = bench_buf((size_t)B * sizes[i + 1]);
  }
  double ns_own = bench_ns(gemms_only, &g);
  g.own = false;
  double ns_blas = bench_ns(gemms_only, &g);
  char p[400];
  snprintf(p, sizeof p,
           "\"mlp\":\"23-256-256-1\",\"activation\":\"relu\",\"batch\":256,"
           "\"optimizer\":\"adam\",\"gemm_us\":%.1f,\"cblas_gemm_us\":%.1f",
           ns_own / 1e3, ns_blas / 1e3);
  bench_emit("core.d", "us/step", ns / 1e3, p);
  snprintf(p, sizeof p,
           "\"step_us\":%.1f,\"gemm_us\":%.1f,\"gemm\":\"crl dispatcher "
           "(same kernels as the step)\",\"ratio_to_cblas_gemms\":%.3f,"
           "\"target_max\":1.3",
           ns / 1e3, ns_own / 1e3, ns / ns_blas);
  bench_emit("core.d.gemm_ratio", "step_time/gemm_time", ns / ns_own, p);
  free(g.x);
  for (int i = 0; i < 3; i++) {
    free(g.w[i]);
    free(g.dw[i]);
    free(g.h[i]);
    free(g.dh[i]);
  }
  mlp_free(&m);
}

/* ---- core.e: conv2d forward + backward -------------------------------------
 */

typedef struct {
  crl_tensor *x, *w, *b;
} conv_ctx;

static void conv_step(void *vctx) {
  conv_ctx *c = vctx;
  crl_scope_begin();
  crl_zero_grad(c->w);
  crl_zero_grad(c->b);
  crl_tensor *y = crl_conv2d(c->x, c->w, c->b, 4, 4, 0, 0);
  crl_tensor *l = crl_sum(y, 0, NULL, false);
  crl_backward(l, NULL);
  bench_sink(crl_item(l));
  crl_scope_end();
}

BENCH("core.e", bench_core_e) {
  crl_rng g;
  crl_rng_seed(&g, 5);
  conv_ctx c = {crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(32, 4, 84, 84)),
                crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(32, 4, 8, 8)),
                crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(32))};
  crl_set_requires_grad(c.w, true);
  crl_set_requires_grad(c.b, true);
  double ns = bench_ns(conv_step, &c);
  bench_emit("core.e", "ms/step", ns / 1e6,
             "\"input\":[32,4,84,84],\"filters\":32,\"kernel\":8,"
             "\"stride\":4,\"pass\":\"forward+backward (weights, bias)\"");
  crl_tensor_release(c.x);
  crl_tensor_release(c.w);
  crl_tensor_release(c.b);
}
