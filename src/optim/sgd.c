/* SGD as torch.optim.SGD computes it:
 *
 *   g = grad + wd * p
 *   if momentum != 0:
 *     b = g                                   (the parameter's first step)
 *     b = mu * b + (1 - dampening) * g        (later steps)
 *     g = nesterov ? g + mu * b : b
 *   p = p - lr * g
 *
 * State: momentum_buffer (only when momentum != 0). */
#include "internal.h"

#define SGD_KERNEL(SUF, T, V, W)                                               \
  typedef struct {                                                             \
    T lr, wd, mu, damp_c;                                                      \
    bool has_wd, has_mom, nesterov, first;                                     \
  } sgd_k_##SUF;                                                               \
  static inline __attribute__((always_inline)) void sgd_chunk_##SUF(           \
      T *p, const T *g, T *b, int64_t i, int64_t k, const sgd_k_##SUF *c) {    \
    V pv = CRL__VLD(V, W, p + i, k), gv = CRL__VLD(V, W, g + i, k);            \
    if (c->has_wd) gv = gv + c->wd * pv;                                       \
    if (c->has_mom) {                                                          \
      V bv = gv;                                                               \
      if (!c->first) bv = c->mu * CRL__VLD(V, W, b + i, k) + c->damp_c * gv;   \
      CRL__VST(W, b + i, bv, k);                                               \
      gv = c->nesterov ? gv + c->mu * bv : bv;                                 \
    }                                                                          \
    pv = pv - c->lr * gv;                                                      \
    CRL__VST(W, p + i, pv, k);                                                 \
  }                                                                            \
  static void sgd_run_##SUF(crl_tensor *p, const crl_tensor *g, crl_tensor *b, \
                            const sgd_k_##SUF *c) {                            \
    T *pp = p->data, *bp = b ? b->data : p->data;                              \
    const T *gp = g->data;                                                     \
    int64_t n = p->numel, i = 0;                                               \
    for (; i + W <= n; i += W)                                                 \
      sgd_chunk_##SUF(pp, gp, bp, i, W, c);                                    \
    if (i < n) sgd_chunk_##SUF(pp, gp, bp, i, n - i, c);                       \
  }

SGD_KERNEL(f32, float, crl__vf, CRL__VF)
SGD_KERNEL(f64, double, crl__vd, CRL__VD)

static void sgd_update(const crl_optimizer *o, crl_tensor *p,
                       const crl_tensor *g, crl_tensor *const *st,
                       int64_t step) {
  const crl_sgd_options *s = &o->opt.sgd;
#define FILL(c)                                                                \
  c.lr = o->lr;                                                                \
  c.wd = s->weight_decay;                                                      \
  c.mu = s->momentum;                                                          \
  c.damp_c = 1 - s->dampening;                                                 \
  c.has_wd = s->weight_decay != 0;                                             \
  c.has_mom = s->momentum != 0;                                                \
  c.nesterov = s->nesterov;                                                    \
  c.first = step == 1;
  if (p->dtype == CRL_FLOAT32) {
    sgd_k_f32 c;
    FILL(c)
    sgd_run_f32(p, g, st[0], &c);
  } else {
    sgd_k_f64 c;
    FILL(c)
    sgd_run_f64(p, g, st[0], &c);
  }
#undef FILL
}

static const crl__optim_kind sgd_kind = {
    "sgd", {"momentum_buffer"}, sgd_update};

crl_optimizer *crl_sgd_new(crl_tensor *const *params, int n,
                           crl_sgd_options opt) {
  const char *op = "sgd";
  if (crl__optim_check_nonneg(op, "lr", opt.lr) ||
      crl__optim_check_nonneg(op, "momentum", opt.momentum) ||
      crl__optim_check_nonneg(op, "weight_decay", opt.weight_decay))
    return NULL;
  if (!isfinite(opt.dampening))
    return CRL_ERR_NULL(CRL_EINVAL, "sgd: dampening must be finite, got %g",
                        opt.dampening);
  if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "sgd: nesterov needs momentum > 0 and dampening 0 "
                        "(got momentum %g, dampening %g)",
                        opt.momentum, opt.dampening);
  bool use[CRL__OPT_NSTATE] = {opt.momentum != 0, false, false};
  return crl__optim_create(op, &sgd_kind, params, n, opt.lr, use, &opt,
                           sizeof opt);
}
