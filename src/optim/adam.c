/* Adam and AdamW (with amsgrad), as torch.optim.Adam / AdamW compute them:
 *
 *   g  = grad (+ wd * p                      Adam: L2 in the gradient)
 *   p  = p * (1 - lr * wd)                   AdamW: decoupled decay
 *   m  = m + (1 - b1) * (g - m)              (torch's lerp_)
 *   v  = b2 * v + (1 - b2) * g * g
 *   vm = max(vm, v)                          amsgrad (max of raw v, as torch)
 *   p  = p - lr / (1 - b1^t) * m / (sqrt(v or vm) / sqrt(1 - b2^t) + eps)
 *
 * t is the parameter's own step count. State: exp_avg (m), exp_avg_sq (v),
 * max_exp_avg_sq (vm, amsgrad only). */
#include "internal.h"

enum { S_EXP_AVG, S_EXP_AVG_SQ, S_MAX_EXP_AVG_SQ };

/* One fused pass over a parameter: vector chunks of W lanes, then the tail
 * as one partial chunk. Flags are loop-invariant branches. */
#define ADAM_KERNEL(SUF, T, V, W, VSQRT, VMAX)                                 \
  typedef struct {                                                             \
    T step_size, inv_bc2s, b1c, b2, b2c, eps, wd, decay;                       \
    bool l2, decoupled, ams;                                                   \
  } adam_k_##SUF;                                                              \
  static inline __attribute__((always_inline)) void adam_chunk_##SUF(          \
      T *p, const T *g, T *m, T *v, T *vm, int64_t i, int64_t k,               \
      const adam_k_##SUF *c) {                                                 \
    V pv = CRL__VLD(V, W, p + i, k), gv = CRL__VLD(V, W, g + i, k);            \
    V mv = CRL__VLD(V, W, m + i, k), vv = CRL__VLD(V, W, v + i, k);            \
    if (c->l2) gv = gv + c->wd * pv;                                           \
    if (c->decoupled) pv = pv * c->decay;                                      \
    mv = mv + c->b1c * (gv - mv);                                              \
    vv = c->b2 * vv + c->b2c * gv * gv;                                        \
    V den = vv;                                                                \
    if (c->ams) {                                                              \
      V mx = VMAX(CRL__VLD(V, W, vm + i, k), vv);                              \
      CRL__VST(W, vm + i, mx, k);                                              \
      den = mx;                                                                \
    }                                                                          \
    den = VSQRT(den) * c->inv_bc2s + c->eps;                                   \
    pv = pv - c->step_size * mv / den;                                         \
    CRL__VST(W, p + i, pv, k);                                                 \
    CRL__VST(W, m + i, mv, k);                                                 \
    CRL__VST(W, v + i, vv, k);                                                 \
  }                                                                            \
  static void adam_run_##SUF(crl_tensor *p, const crl_tensor *g,               \
                             crl_tensor *const *st, const adam_k_##SUF *c) {   \
    T *pp = p->data, *m = st[S_EXP_AVG]->data, *v = st[S_EXP_AVG_SQ]->data;    \
    T *vm = c->ams ? st[S_MAX_EXP_AVG_SQ]->data : v;                           \
    const T *gp = g->data;                                                     \
    int64_t n = p->numel, i = 0;                                               \
    for (; i + W <= n; i += W)                                                 \
      adam_chunk_##SUF(pp, gp, m, v, vm, i, W, c);                             \
    if (i < n) adam_chunk_##SUF(pp, gp, m, v, vm, i, n - i, c);                \
  }

ADAM_KERNEL(f32, float, crl__vf, CRL__VF, crl__vsqrt_f, crl__vmax_f)
ADAM_KERNEL(f64, double, crl__vd, CRL__VD, crl__vsqrt_d, crl__vmax_d)

static void update(const crl_optimizer *o, crl_tensor *p, const crl_tensor *g,
                   crl_tensor *const *st, int64_t step, bool adamw) {
  const crl_adam_options *a = &o->opt.adam;
  double bc1 = 1 - pow(a->beta1, (double)step);
  double bc2 = 1 - pow(a->beta2, (double)step);
  double step_size = o->lr / bc1, inv_bc2s = 1 / sqrt(bc2);
  bool wd = a->weight_decay != 0;
  double decay = 1 - o->lr * a->weight_decay;
#define FILL(c)                                                                \
  c.step_size = step_size;                                                     \
  c.inv_bc2s = inv_bc2s;                                                       \
  c.b1c = 1 - a->beta1;                                                        \
  c.b2 = a->beta2;                                                             \
  c.b2c = 1 - a->beta2;                                                        \
  c.eps = a->eps;                                                              \
  c.wd = a->weight_decay;                                                      \
  c.decay = decay;                                                             \
  c.l2 = wd && !adamw;                                                         \
  c.decoupled = wd && adamw;                                                   \
  c.ams = a->amsgrad;
  if (p->dtype == CRL_FLOAT32) {
    adam_k_f32 c;
    FILL(c)
    adam_run_f32(p, g, st, &c);
  } else {
    adam_k_f64 c;
    FILL(c)
    adam_run_f64(p, g, st, &c);
  }
#undef FILL
}

static void adam_update(const crl_optimizer *o, crl_tensor *p,
                        const crl_tensor *g, crl_tensor *const *st,
                        int64_t step) {
  update(o, p, g, st, step, false);
}
static void adamw_update(const crl_optimizer *o, crl_tensor *p,
                         const crl_tensor *g, crl_tensor *const *st,
                         int64_t step) {
  update(o, p, g, st, step, true);
}

static const crl__optim_kind adam_kind = {
    "adam", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, adam_update};
static const crl__optim_kind adamw_kind = {
    "adamw", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, adamw_update};

static crl_optimizer *create(const char *op, const crl__optim_kind *kind,
                             crl_tensor *const *params, int n,
                             crl_adam_options a) {
  if (a.lr == 0) a.lr = 1e-3;
  if (a.beta1 == 0 && a.beta2 == 0) {
    a.beta1 = 0.9;
    a.beta2 = 0.999;
  }
  if (a.eps == 0) a.eps = 1e-8;
  if (crl__optim_check_nonneg(op, "lr", a.lr) ||
      crl__optim_check_nonneg(op, "eps", a.eps) ||
      crl__optim_check_nonneg(op, "weight_decay", a.weight_decay))
    return NULL;
  if (!(a.beta1 >= 0 && a.beta1 < 1))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: beta1 must be in [0, 1), got %g", op,
                        a.beta1);
  if (!(a.beta2 >= 0 && a.beta2 < 1))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: beta2 must be in [0, 1), got %g", op,
                        a.beta2);
  bool use[CRL__OPT_NSTATE] = {true, true, a.amsgrad};
  return crl__optim_create(op, kind, params, n, a.lr, use, &a, sizeof a);
}

crl_optimizer *crl_adam_new(crl_tensor *const *params, int n,
                            crl_adam_options opt) {
  return create("adam", &adam_kind, params, n, opt);
}

crl_optimizer *crl_adamw_new(crl_tensor *const *params, int n,
                             crl_adam_options opt) {
  return create("adamw", &adamw_kind, params, n, opt);
}
