/* RMSprop as torch.optim.RMSprop computes it:
 *
 *   g   = grad + wd * p
 *   sq  = alpha * sq + (1 - alpha) * g * g
 *   if centered: ga = ga + (1 - alpha) * (g - ga)   (torch's lerp_)
 *                avg = sqrt(sq - ga * ga) + eps
 *   else:        avg = sqrt(sq) + eps
 *   if momentum > 0: b = mu * b + g / avg;  p = p - lr * b
 *   else:            p = p - lr * g / avg
 *
 * One difference: in the centered form sq - ga^2 is clamped at 0 before the
 * square root (rounding can make it slightly negative, where torch gives
 * NaN). State: square_avg, momentum_buffer (momentum > 0), grad_avg
 * (centered). */
#include "internal.h"

enum { S_SQUARE_AVG, S_MOMENTUM_BUFFER, S_GRAD_AVG };

#define RMS_KERNEL(SUF, T, V, W, VSQRT, VCLAMP0)                               \
  typedef struct {                                                             \
    T lr, wd, alpha, alpha_c, eps, mu;                                         \
    bool has_wd, centered, has_mom;                                            \
  } rms_k_##SUF;                                                               \
  static inline __attribute__((always_inline)) void rms_chunk_##SUF(           \
      T *p, const T *g, T *sq, T *b, T *ga, int64_t i, int64_t k,              \
      const rms_k_##SUF *c) {                                                  \
    V pv = CRL__VLD(V, W, p + i, k), gv = CRL__VLD(V, W, g + i, k);            \
    if (c->has_wd) gv = gv + c->wd * pv;                                       \
    V sv = c->alpha * CRL__VLD(V, W, sq + i, k) + c->alpha_c * gv * gv;        \
    CRL__VST(W, sq + i, sv, k);                                                \
    V avg;                                                                     \
    if (c->centered) {                                                         \
      V gav = CRL__VLD(V, W, ga + i, k);                                       \
      gav = gav + c->alpha_c * (gv - gav);                                     \
      CRL__VST(W, ga + i, gav, k);                                             \
      avg = VSQRT(VCLAMP0(sv - gav * gav)) + c->eps;                           \
    } else {                                                                   \
      avg = VSQRT(sv) + c->eps;                                                \
    }                                                                          \
    if (c->has_mom) {                                                          \
      V bv = c->mu * CRL__VLD(V, W, b + i, k) + gv / avg;                      \
      CRL__VST(W, b + i, bv, k);                                               \
      pv = pv - c->lr * bv;                                                    \
    } else {                                                                   \
      pv = pv - c->lr * gv / avg;                                              \
    }                                                                          \
    CRL__VST(W, p + i, pv, k);                                                 \
  }                                                                            \
  static void rms_run_##SUF(crl_tensor *p, const crl_tensor *g,                \
                            crl_tensor *const *st, const rms_k_##SUF *c) {     \
    T *pp = p->data, *sq = st[S_SQUARE_AVG]->data;                             \
    T *b = c->has_mom ? st[S_MOMENTUM_BUFFER]->data : sq;                      \
    T *ga = c->centered ? st[S_GRAD_AVG]->data : sq;                           \
    const T *gp = g->data;                                                     \
    int64_t n = p->numel, i = 0;                                               \
    for (; i + W <= n; i += W)                                                 \
      rms_chunk_##SUF(pp, gp, sq, b, ga, i, W, c);                             \
    if (i < n) rms_chunk_##SUF(pp, gp, sq, b, ga, i, n - i, c);                \
  }

RMS_KERNEL(f32, float, crl__vf, CRL__VF, crl__vsqrt_f, crl__vclamp0_f)
RMS_KERNEL(f64, double, crl__vd, CRL__VD, crl__vsqrt_d, crl__vclamp0_d)

static void rms_update(const crl_optimizer *o, crl_tensor *p,
                       const crl_tensor *g, crl_tensor *const *st,
                       int64_t step) {
  (void)step;
  const crl_rmsprop_options *r = &o->opt.rms;
#define FILL(c)                                                                \
  c.lr = o->lr;                                                                \
  c.wd = r->weight_decay;                                                      \
  c.alpha = r->alpha;                                                          \
  c.alpha_c = 1 - r->alpha;                                                    \
  c.eps = r->eps;                                                              \
  c.mu = r->momentum;                                                          \
  c.has_wd = r->weight_decay != 0;                                             \
  c.centered = r->centered;                                                    \
  c.has_mom = r->momentum > 0;
  if (p->dtype == CRL_FLOAT32) {
    rms_k_f32 c;
    FILL(c)
    rms_run_f32(p, g, st, &c);
  } else {
    rms_k_f64 c;
    FILL(c)
    rms_run_f64(p, g, st, &c);
  }
#undef FILL
}

static const crl__optim_kind rmsprop_kind = {
    "rmsprop", {"square_avg", "momentum_buffer", "grad_avg"}, rms_update};

crl_optimizer *crl_rmsprop_new(crl_tensor *const *params, int n,
                               crl_rmsprop_options opt) {
  const char *op = "rmsprop";
  if (opt.lr == 0) opt.lr = 1e-2;
  if (opt.alpha == 0) opt.alpha = 0.99;
  if (opt.eps == 0) opt.eps = 1e-8;
  if (crl__optim_check_nonneg(op, "lr", opt.lr) ||
      crl__optim_check_nonneg(op, "eps", opt.eps) ||
      crl__optim_check_nonneg(op, "momentum", opt.momentum) ||
      crl__optim_check_nonneg(op, "weight_decay", opt.weight_decay))
    return NULL;
  if (!(opt.alpha > 0 && opt.alpha <= 1))
    return CRL_ERR_NULL(CRL_EINVAL, "rmsprop: alpha must be in (0, 1], got %g",
                        opt.alpha);
  bool use[CRL__OPT_NSTATE] = {true, opt.momentum > 0, opt.centered};
  return crl__optim_create(op, &rmsprop_kind, params, n, opt.lr, use, &opt,
                           sizeof opt);
}
