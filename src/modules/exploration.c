/* Exploration wrappers (torchrl.modules.tensordict_module.exploration):
 * EGreedyWrapper, AdditiveGaussianWrapper, OrnsteinUhlenbeckProcessWrapper.
 * Each runs its policy, then (in RANDOM exploration mode only) perturbs
 * "action"; the perturbation's size anneals linearly with
 * crl_exploration_step. Noise is drawn from the wrapper's generator. */
#include <math.h>
#include <stdlib.h>

#include "modules_internal.h"

typedef enum { W_EGREEDY, W_GAUSSIAN, W_OU } wkind;

typedef struct {
  wkind kind;
  double init, end;            /* annealed value: eps (e-greedy, OU) or sigma */
  int64_t nsteps;              /* annealing_num_steps (0: constant) */
  int64_t steps;               /* frames seen by crl_exploration_step */
  crl__proj proj;              /* the action spec (may be empty) */
  double theta, mu, sigma, dt; /* OU */
} wrap_impl;

static void wrap_free(crl_tdmodule *m) {
  wrap_impl *p = m->impl;
  if (!p) return;
  crl__proj_free(&p->proj);
  free(p);
}

static double current(const wrap_impl *p) {
  if (p->nsteps <= 0) return p->init;
  double v =
      p->init - (p->init - p->end) * ((double)p->steps / (double)p->nsteps);
  return v > p->end ? v : p->end;
}

static int egreedy_forward(crl_tdmodule *m, crl_td *td, crl_td *params);
static int gaussian_forward(crl_tdmodule *m, crl_td *td, crl_td *params);
static int ou_forward(crl_tdmodule *m, crl_td *td, crl_td *params);
static const crl_tdmodule_ops egreedy_ops = {"EGreedyWrapper", egreedy_forward,
                                             wrap_free};
static const crl_tdmodule_ops gaussian_ops = {"AdditiveGaussianWrapper",
                                              gaussian_forward, wrap_free};
static const crl_tdmodule_ops ou_ops = {"OrnsteinUhlenbeckProcessWrapper",
                                        ou_forward, wrap_free};

static bool is_wrapper(const crl_tdmodule *m) {
  return m && (m->ops == &egreedy_ops || m->ops == &gaussian_ops ||
               m->ops == &ou_ops);
}

crl_tdmodule *crl__exploration_inner(const crl_tdmodule *m) {
  return is_wrapper(m) ? m->children[0] : NULL;
}

/* run the policy; 1 when the action should be perturbed, 0 when not, or a
 * negative error code */
static int run_policy(crl_tdmodule *m, crl_td *td, crl_td *params,
                      crl_tensor **action) {
  int rc = crl_tdmodule_forward(m->children[0], td, params);
  if (rc) return rc;
  if (crl_exploration_mode_get() != CRL_EXPLORATION_RANDOM) return 0;
  if (!(*action = crl__tdm_in(m, td, "action"))) return CRL_EKEY;
  return 1;
}

static int check_spec_shape(const crl_tdmodule *m, const crl_spec *s,
                            const crl_tensor *a) {
  int sn = crl_spec_ndim(s);
  const int64_t *ss = crl_spec_shape(s);
  if (a->ndim >= sn &&
      !memcmp(a->shape + a->ndim - sn, ss, sizeof(int64_t) * (size_t)sn))
    return 0;
  char b1[160], b2[160];
  return crl__err(CRL_ESHAPE,
                  "%s: action shape %s does not end with the spec's shape %s",
                  crl_tdmodule_name(m), CRL_SHAPE_STR(a, b1),
                  crl_shape_str(sn, ss, b2, sizeof b2));
}

static int check_float(const crl_tdmodule *m, const crl_tensor *a) {
  if (a->dtype == CRL_FLOAT32 || a->dtype == CRL_FLOAT64) return 0;
  return crl__err(CRL_EDTYPE,
                  "%s: the action has dtype %s; float32 or float64 is needed "
                  "to add noise",
                  crl_tdmodule_name(m), crl_dtype_name(a->dtype));
}

/* ---- EGreedy ------------------------------------------------------------- */

static int egreedy_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  wrap_impl *p = m->impl;
  crl_tensor *a = NULL;
  int rc = run_policy(m, td, params, &a);
  if (rc <= 0) return rc;
  double eps = current(p);
  if (eps <= 0) return 0;
  const crl_spec *s = p->proj.spec;
  if ((rc = check_spec_shape(m, s, a))) return rc;
  int bnd = crl_td_batch_ndim(td);
  const int64_t *batch = crl_td_batch_size(td);
  /* one draw per TensorDict row (TorchRL draws over the td's shape) */
  crl_tensor *u = crl_rand(&m->rng, CRL_FLOAT32, bnd, batch);
  crl_tensor *cond = u ? crl_lt_scalar(u, eps) : NULL;
  int64_t vs[CRL_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++)
    vs[d] = d < bnd ? batch[d] : 1;
  crl_tensor *cv = cond ? crl_view(cond, a->ndim, vs) : NULL;
  int lead = a->ndim - crl_spec_ndim(s);
  crl_tensor *r = cv ? crl_spec_rand(s, &m->rng, lead, a->shape) : NULL;
  if (r && r->dtype != a->dtype) r = crl_cast(r, a->dtype);
  crl_tensor *out = r ? crl_where(cv, r, a) : NULL;
  if (!out) return crl_last_error_code();
  return crl__tdm_set(td, "action", out);
}

/* ---- AdditiveGaussian ---------------------------------------------------- */

static int gaussian_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  wrap_impl *p = m->impl;
  crl_tensor *a = NULL;
  int rc = run_policy(m, td, params, &a);
  if (rc <= 0) return rc;
  if ((rc = check_float(m, a))) return rc;
  if (p->proj.spec && (rc = check_spec_shape(m, p->proj.spec, a))) return rc;
  double sigma = current(p);
  crl_tensor *noise = crl_randn(&m->rng, a->dtype, a->ndim, a->shape);
  crl_tensor *out = noise ? crl_add_scaled(a, noise, sigma) : NULL;
  if (out && p->proj.spec) out = crl__proj_apply(&p->proj, out);
  if (!out) return crl_last_error_code();
  return crl__tdm_set(td, "action", out);
}

/* ---- Ornstein-Uhlenbeck -------------------------------------------------- */

static const char *const OU_NOISE = "_ou_prev_noise";
static const char *const OU_STEPS = "_ou_steps";

/* a contiguous float64 copy of t (a scope temporary) */
static crl_tensor *as_f64(crl_tensor *t) {
  return crl__to_contig_dtype(t, CRL_FLOAT64);
}

static int ou_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  wrap_impl *p = m->impl;
  crl_tensor *a = NULL;
  int rc = run_policy(m, td, params, &a);
  if (rc <= 0) return rc;
  if ((rc = check_float(m, a))) return rc;
  if (p->proj.spec && (rc = check_spec_shape(m, p->proj.spec, a))) return rc;
  int bnd = crl_td_batch_ndim(td);
  const int64_t *batch = crl_td_batch_size(td);
  int64_t rows = 1;
  for (int d = 0; d < bnd; d++)
    rows *= batch[d];
  int64_t k = rows ? a->numel / rows : 0;
  char b1[160], b2[160];
  /* is_init: [batch...] or [batch..., ...] (any value set in a row) */
  crl_tensor *init = crl_td_find(td, "is_init");
  if (init && (init->ndim < bnd ||
               init->numel != rows * (rows ? init->numel / rows : 0) ||
               memcmp(init->shape, batch, sizeof(int64_t) * (size_t)bnd)))
    return crl__err(CRL_ESHAPE,
                    "%s: 'is_init' has shape %s; the batch size is %s",
                    crl_tdmodule_name(m), CRL_SHAPE_STR(init, b1),
                    crl_shape_str(bnd, batch, b2, sizeof b2));
  crl_tensor *prev = crl_td_find(td, OU_NOISE);
  crl_tensor *steps = crl_td_find(td, OU_STEPS);
  if (prev && !crl_same_shape(prev, a))
    return crl__err(CRL_ESHAPE, "%s: '%s' has shape %s, the action %s",
                    crl_tdmodule_name(m), OU_NOISE, CRL_SHAPE_STR(prev, b1),
                    CRL_SHAPE_STR(a, b2));
  if (steps && (steps->ndim != bnd ||
                memcmp(steps->shape, batch, sizeof(int64_t) * (size_t)bnd)))
    return crl__err(CRL_ESHAPE, "%s: '%s' has shape %s; the batch size is %s",
                    crl_tdmodule_name(m), OU_STEPS, CRL_SHAPE_STR(steps, b1),
                    crl_shape_str(bnd, batch, b2, sizeof b2));
  crl_tensor *w = crl_randn(&m->rng, CRL_FLOAT64, a->ndim, a->shape);
  crl_tensor *pv = prev && steps ? as_f64(prev) : NULL;
  crl_tensor *sv = prev && steps ? as_f64(steps) : NULL;
  crl_tensor *iv = init ? as_f64(init) : NULL;
  crl_tensor *noise = crl_empty(a->dtype, a->ndim, a->shape);
  crl_tensor *nsteps = crl_empty(CRL_INT64, bnd, batch);
  if (!w || !noise || !nsteps || (prev && steps && (!pv || !sv)) ||
      (init && !iv))
    return crl_last_error_code();
  const double *wp = w->data, *pp = pv ? pv->data : NULL;
  const double *sp = sv ? sv->data : NULL, *ip = iv ? iv->data : NULL;
  int64_t per_init = iv && rows ? iv->numel / rows : 0;
  int64_t *ns = nsteps->data;
  double sq = sqrt(p->dt);
  for (int64_t r = 0; r < rows; r++) {
    bool reset = !pp;
    for (int64_t j = 0; ip && j < per_init && !reset; j++)
      reset = ip[r * per_init + j] != 0;
    double s = reset ? 0 : sp[r];
    /* sigma is constant: TorchRL's default sigma_min None */
    for (int64_t j = 0; j < k; j++) {
      int64_t i = r * k + j;
      double x = reset ? 0 : pp[i];
      double v = x + p->theta * (p->mu - x) * p->dt + p->sigma * sq * wp[i];
      if (a->dtype == CRL_FLOAT32)
        ((float *)noise->data)[i] = (float)v;
      else
        ((double *)noise->data)[i] = v;
    }
    ns[r] = (int64_t)s + 1;
  }
  crl_tensor *out = crl_add_scaled(a, noise, current(p));
  if (out && p->proj.spec) out = crl__proj_apply(&p->proj, out);
  if (!out) return crl_last_error_code();
  rc = crl__tdm_set(td, "action", out);
  if (!rc) rc = crl__tdm_set(td, OU_NOISE, noise);
  if (!rc) rc = crl__tdm_set(td, OU_STEPS, nsteps);
  return rc;
}

/* ---- constructors -------------------------------------------------------- */

static crl_tdmodule *wrap_new(const char *op, const crl_tdmodule_ops *ops,
                              crl_tdmodule *policy, wrap_impl *p,
                              crl_spec *spec) {
  if (!policy) {
    free(p);
    return CRL_ERR_NULL(CRL_EINVAL, "%s: policy is NULL", op);
  }
  bool writes_action = false;
  for (int i = 0; i < policy->nout && !writes_action; i++)
    writes_action = strcmp(policy->out_keys[i], "action") == 0;
  if (!writes_action) {
    free(p);
    return CRL_ERR_NULL(CRL_EKEY, "%s: %s does not write 'action'", op,
                        crl_tdmodule_name(policy));
  }
  if (crl__proj_init(&p->proj, spec)) {
    crl__err(crl_last_error_code(), "%s: %s", op, crl_last_error());
    free(p);
    return NULL;
  }
  const char *out[CRL_TDM_MAX_KEYS];
  int nout = 0;
  for (int i = 0; i < policy->nout; i++)
    out[nout++] = policy->out_keys[i];
  if (p->kind == W_OU) {
    if (nout + 2 > CRL_TDM_MAX_KEYS) {
      wrap_free(&(crl_tdmodule){.impl = p});
      return CRL_ERR_NULL(CRL_EINVAL, "%s: too many out_keys", op);
    }
    out[nout++] = OU_NOISE;
    out[nout++] = OU_STEPS;
  }
  return crl__tdm_new(op, ops, p, policy->nin,
                      (const char *const *)policy->in_keys, policy->in_optional,
                      nout, out, policy->params, 1, &policy);
}

static int check_anneal(const char *op, const char *what, double init,
                        double end, int64_t n) {
  if (!isfinite(init) || !isfinite(end) || end > init || init < 0 || end < 0)
    return crl__err(CRL_EINVAL,
                    "%s: %s_init %g and %s_end %g: finite, >= 0, and %s "
                    "should decrease over time or be constant",
                    op, what, init, what, end, what);
  if (n < 0)
    return crl__err(CRL_EINVAL, "%s: annealing_num_steps %lld must be >= 0", op,
                    (long long)n);
  return 0;
}

crl_tdmodule *crl_egreedy_wrapper_new(crl_tdmodule *policy, double eps_init,
                                      double eps_end,
                                      int64_t annealing_num_steps,
                                      crl_spec *spec) {
  const char *op = "egreedy_wrapper_new";
  if (check_anneal(op, "eps", eps_init, eps_end, annealing_num_steps))
    return NULL;
  if (eps_init > 1)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: eps_init %g is above 1", op, eps_init);
  if (!spec && policy) spec = crl__td_module_spec(policy);
  if (!spec)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: an action spec is required (random actions are "
                        "drawn from it)",
                        op);
  wrap_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  *p = (wrap_impl){.kind = W_EGREEDY,
                   .init = eps_init,
                   .end = eps_end,
                   .nsteps = annealing_num_steps};
  return wrap_new(op, &egreedy_ops, policy, p, spec);
}

crl_tdmodule *crl_additive_gaussian_wrapper_new(crl_tdmodule *policy,
                                                double sigma_init,
                                                double sigma_end,
                                                int64_t annealing_num_steps,
                                                crl_spec *spec) {
  const char *op = "additive_gaussian_wrapper_new";
  if (check_anneal(op, "sigma", sigma_init, sigma_end, annealing_num_steps))
    return NULL;
  if (!spec && policy) spec = crl__td_module_spec(policy);
  wrap_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  *p = (wrap_impl){.kind = W_GAUSSIAN,
                   .init = sigma_init,
                   .end = sigma_end,
                   .nsteps = annealing_num_steps};
  return wrap_new(op, &gaussian_ops, policy, p, spec);
}

crl_tdmodule *crl_ou_wrapper_new(crl_tdmodule *policy, double theta,
                                 double sigma, double dt, crl_spec *spec) {
  const char *op = "ou_wrapper_new";
  if (theta == 0 && sigma == 0 && dt == 0) {
    theta = 0.15; /* TorchRL's defaults */
    sigma = 0.2;
    dt = 0.01;
  }
  if (!isfinite(theta) || !isfinite(sigma) || sigma < 0 || !(dt > 0) ||
      !isfinite(dt))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: theta %g, sigma %g, dt %g: finite, sigma >= 0 "
                        "and dt > 0 are required",
                        op, theta, sigma, dt);
  if (!spec && policy) spec = crl__td_module_spec(policy);
  wrap_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  *p = (wrap_impl){.kind = W_OU,
                   .init = 1.0, /* TorchRL's eps annealing defaults */
                   .end = 0.1,
                   .nsteps = 1000,
                   .theta = theta,
                   .mu = 0,
                   .sigma = sigma,
                   .dt = dt};
  return wrap_new(op, &ou_ops, policy, p, spec);
}

/* ---- annealing ----------------------------------------------------------- */

int crl_exploration_step(crl_tdmodule *wrapper, int64_t frames) {
  if (!is_wrapper(wrapper))
    return crl__err(CRL_EINVAL,
                    "exploration_step: %s is not an exploration "
                    "wrapper",
                    wrapper ? crl_tdmodule_name(wrapper) : "NULL");
  if (frames < 0)
    return crl__err(CRL_EINVAL, "exploration_step: frames %lld must be >= 0",
                    (long long)frames);
  wrap_impl *p = wrapper->impl;
  /* saturate: past annealing_num_steps the value stays at its end */
  if (p->steps > INT64_MAX - frames)
    p->steps = INT64_MAX;
  else
    p->steps += frames;
  return 0;
}

double crl_exploration_value(const crl_tdmodule *wrapper) {
  if (!is_wrapper(wrapper)) {
    crl__err(CRL_EINVAL,
             "exploration_value: %s is not an exploration "
             "wrapper",
             wrapper ? crl_tdmodule_name(wrapper) : "NULL");
    return NAN;
  }
  return current(wrapper->impl);
}

int crl_exploration_set_annealing(crl_tdmodule *wrapper, double init,
                                  double end, int64_t annealing_num_steps) {
  const char *op = "exploration_set_annealing";
  if (!is_wrapper(wrapper))
    return crl__err(CRL_EINVAL, "%s: %s is not an exploration wrapper", op,
                    wrapper ? crl_tdmodule_name(wrapper) : "NULL");
  wrap_impl *p = wrapper->impl;
  int rc = check_anneal(op, p->kind == W_GAUSSIAN ? "sigma" : "eps", init, end,
                        annealing_num_steps);
  if (!rc && p->kind == W_EGREEDY && init > 1)
    rc = crl__err(CRL_EINVAL, "%s: eps_init %g is above 1", op, init);
  if (rc) return rc;
  p->init = init;
  p->end = end;
  p->nsteps = annealing_num_steps;
  p->steps = 0;
  return 0;
}
