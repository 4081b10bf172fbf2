/* The stateless Pendulum of TorchRL's tutorial "Pendulum: writing your
 * environment and transforms with TorchRL": the state ("th", "thdot") and
 * the physical parameters ("params/...") live in the TensorDict; step reads
 * them with the action and writes their next values under "next/". The
 * env itself holds only its generator streams (for reset) and the default
 * gravity. */
#include <stdlib.h>

#include "classic_internal.h"

#define NPARAM 6
static const char *const param_keys[NPARAM] = {
    "params/max_speed", "params/max_torque", "params/dt",
    "params/g",         "params/m",          "params/l"};
enum { P_MAX_SPEED, P_MAX_TORQUE, P_DT, P_G, P_M, P_L };

typedef struct ps_impl {
  int64_t n;
  double g;
  crl_rng *rng; /* per-env reset streams */
} ps_impl;

static void default_params(double g, double *p) {
  p[P_MAX_SPEED] = 8;
  p[P_MAX_TORQUE] = 2.0;
  p[P_DT] = 0.05;
  p[P_G] = g;
  p[P_M] = 1.0;
  p[P_L] = 1.0;
}

crl_td *crl_pendulum_gen_params(double g, int bnd, const int64_t *batch) {
  if (!isfinite(g))
    return CRL_ERR_NULL(CRL_EINVAL, "pendulum_gen_params: g %g must be finite",
                        g);
  double p[NPARAM];
  default_params(g != 0 ? g : 10.0, p);
  crl_scope_begin();
  crl_td *td = crl_td_new(bnd, batch);
  for (int k = 0; td && k < NPARAM; k++) {
    crl_tensor *t = crl_full(CRL_FLOAT32, bnd, batch, p[k]);
    if (!t || crl_td_set(td, param_keys[k], t)) td = NULL;
  }
  if (!td) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(td);
}

/* ---- inputs -------------------------------------------------------------- */

/* float32 data of td[key] with one value per env (shape [batch...]) or
 * `extra` trailing values ([batch..., extra]); non-contiguous entries are
 * copied into the current scope. */
static const float *in_data(crl_env *env, crl_td *td, const char *key,
                            int64_t extra) {
  crl_tensor *t = crl_td_find(td, key);
  int bnd = crl_env_batch_ndim(env);
  const int64_t *b = crl_env_batch_size(env);
  char b1[160], b2[160];
  if (!t) {
    crl_td_keys k;
    char list[512] = "";
    if (!crl_td_keys_get(td, true, true, &k)) {
      size_t off = 0;
      for (int i = 0; i < k.n && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                i ? ", " : "", k.keys[i]);
      crl_td_keys_free(&k);
    }
    return CRL_ERR_NULL(CRL_EKEY,
                        "env %s: step needs '%s' in the TensorDict (the "
                        "state lives there; keys present: %s)",
                        crl_env_name(env), key, list);
  }
  int nd = bnd + (extra ? 1 : 0);
  bool ok = t->ndim == nd && (!extra || t->shape[bnd] == extra);
  for (int i = 0; ok && i < bnd; i++)
    ok = t->shape[i] == b[i];
  if (!ok) {
    int64_t want[CRL_MAX_DIMS + 1];
    memcpy(want, b, sizeof(int64_t) * (size_t)bnd);
    want[bnd] = extra;
    return CRL_ERR_NULL(CRL_ESHAPE, "env %s: '%s' of shape %s, expected %s",
                        crl_env_name(env), key, CRL_SHAPE_STR(t, b1),
                        crl_shape_str(nd, want, b2, sizeof b2));
  }
  if (t->dtype != CRL_FLOAT32)
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "env %s: '%s' of dtype %s, expected float32",
                        crl_env_name(env), key, crl_dtype_name(t->dtype));
  if (crl_tensor_is_contiguous(t)) return t->data;
  crl_tensor *c = crl_contiguous(t);
  return c ? c->data : NULL;
}

/* ---- reset, step --------------------------------------------------------- */

static int ps_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  ps_impl *p = crl_env_impl(env);
  crl_spec *os = crl_env_observation_spec(env);
  float *th = crl__env_out_data(env, td, "th", os, CRL_FLOAT32, p->n);
  float *thdot =
      th ? crl__env_out_data(env, td, "thdot", os, CRL_FLOAT32, p->n) : NULL;
  float *par[NPARAM];
  for (int k = 0; k < NPARAM; k++) {
    par[k] =
        thdot ? crl__env_out_data(env, td, param_keys[k], os, CRL_FLOAT32, p->n)
              : NULL;
    if (!par[k]) return crl_last_error_code();
  }
  double def[NPARAM];
  default_params(p->g, def);
  for (int64_t i = 0; i < p->n; i++) {
    if (mask && !mask[i]) continue;
    bool absent = true;
    for (int k = 0; k < NPARAM; k++)
      absent = absent && par[k][i] == 0;
    if (absent)
      for (int k = 0; k < NPARAM; k++)
        par[k][i] = (float)def[k];
    th[i] = (float)(-M_PI + (M_PI - -M_PI) * crl_rng_uniform(&p->rng[i]));
    thdot[i] = (float)(-1.0 + (1.0 - -1.0) * crl_rng_uniform(&p->rng[i]));
  }
  return 0;
}

static int ps_step_scoped(crl_env *env, crl_td *td, crl_td *next) {
  ps_impl *p = crl_env_impl(env);
  const int64_t n = p->n;
  const float *u_in = in_data(env, td, "action", 1);
  const float *th_in = u_in ? in_data(env, td, "th", 0) : NULL;
  const float *thd_in = th_in ? in_data(env, td, "thdot", 0) : NULL;
  const float *par[NPARAM];
  for (int k = 0; k < NPARAM; k++) {
    par[k] = thd_in ? in_data(env, td, param_keys[k], 0) : NULL;
    if (!par[k]) return crl_last_error_code();
  }
  for (int64_t i = 0; i < n; i++) {
    if (!(par[P_M][i] > 0) || !(par[P_L][i] > 0))
      return crl__err(CRL_EINVAL,
                      "env %s: env %lld has params/m %g and params/l %g; "
                      "both must be > 0",
                      crl_env_name(env), (long long)i, (double)par[P_M][i],
                      (double)par[P_L][i]);
  }
  crl_spec *os = crl_env_observation_spec(env);
  crl_spec *ds = crl_env_done_spec(env);
  float *th = crl__env_out_data(env, next, "th", os, CRL_FLOAT32, n);
  float *thd =
      th ? crl__env_out_data(env, next, "thdot", os, CRL_FLOAT32, n) : NULL;
  float *rew =
      thd ? crl__env_out_data(env, next, "reward", NULL, CRL_FLOAT32, n) : NULL;
  uint8_t *flags[3] = {NULL, NULL, NULL};
  static const char *const fk[3] = {"done", "terminated", "truncated"};
  for (int k = 0; k < 3 && rew; k++) {
    flags[k] = crl__env_out_data(env, next, fk[k], ds, CRL_BOOL, n);
    if (!flags[k]) return crl_last_error_code();
  }
  float *pout[NPARAM];
  for (int k = 0; k < NPARAM; k++) {
    pout[k] =
        rew ? crl__env_out_data(env, next, param_keys[k], os, CRL_FLOAT32, n)
            : NULL;
    if (!pout[k]) return crl_last_error_code();
  }
  /* nothing fails from here on; inputs are read before outputs of the
   * same index are written, so aliased entries are harmless */
  for (int64_t i = 0; i < n; i++) {
    double x = th_in[i], xd = thd_in[i];
    double g = par[P_G][i], m = par[P_M][i], l = par[P_L][i];
    double dt = par[P_DT][i], max_speed = par[P_MAX_SPEED][i];
    double max_torque = par[P_MAX_TORQUE][i];
    double u = u_in[i];
    u = u < -max_torque ? -max_torque : u;
    u = u > max_torque ? max_torque : u;
    double an = crl__angle_normalize(x);
    double costs = an * an + 0.1 * (xd * xd) + 0.001 * (u * u);
    double new_thdot =
        xd + (3 * g / (2 * l) * sin(x) + 3.0 / (m * (l * l)) * u) * dt;
    new_thdot = new_thdot < -max_speed ? -max_speed : new_thdot;
    new_thdot = new_thdot > max_speed ? max_speed : new_thdot;
    double new_th = x + new_thdot * dt;
    float pv[NPARAM];
    for (int k = 0; k < NPARAM; k++)
      pv[k] = par[k][i];
    th[i] = (float)new_th;
    thd[i] = (float)new_thdot;
    rew[i] = (float)-costs;
    for (int k = 0; k < 3; k++)
      flags[k][i] = 0;
    for (int k = 0; k < NPARAM; k++)
      pout[k][i] = pv[k];
  }
  return 0;
}

static int ps_step(crl_env *env, crl_td *td, crl_td *next) {
  crl_scope_begin(); /* contiguous copies of strided inputs */
  int rc = ps_step_scoped(env, td, next);
  crl_scope_end();
  return rc;
}

static int ps_seed(crl_env *env, uint64_t seed) {
  (void)seed;
  ps_impl *p = crl_env_impl(env);
  const crl_rng *g = crl_env_rng(env);
  for (int64_t i = 0; i < p->n; i++)
    p->rng[i] = crl_rng_split(g, (uint64_t)i);
  return 0;
}

static void ps_close(crl_env *env) {
  ps_impl *p = crl_env_impl(env);
  if (p) free(p->rng);
  free(p);
}

static const crl_env_ops ops = {
    .name = "PendulumStateless",
    .reset = ps_reset,
    .step = ps_step,
    .seed = ps_seed,
    .close = ps_close,
};

static int make_specs(crl_env *env, double g) {
  int bnd = crl_env_batch_ndim(env);
  const int64_t *batch = crl_env_batch_size(env);
  double def[NPARAM];
  default_params(g, def);
  int64_t one = 1;
  crl_spec *obs = crl_spec_composite(bnd, batch);
  crl_spec *th = crl_spec_unbounded(CRL_FLOAT32, bnd, batch);
  crl_spec *thd = crl_spec_bounded(CRL_FLOAT32, bnd, batch, -def[P_MAX_SPEED],
                                   def[P_MAX_SPEED]);
  crl_spec *par = crl_spec_unbounded(CRL_FLOAT32, bnd, batch);
  if (!obs || !th || !thd || !par) return crl_last_error_code();
  int rc = crl_spec_set(obs, "th", th);
  if (!rc) rc = crl_spec_set(obs, "thdot", thd);
  for (int k = 0; k < NPARAM && !rc; k++)
    rc = crl_spec_set(obs, param_keys[k], par);
  if (!rc) rc = crl_env_set_observation_spec(env, obs);
  if (rc) return rc;
  crl_spec *act = crl__classic_expand(crl_spec_bounded(CRL_FLOAT32, 1, &one,
                                                       -def[P_MAX_TORQUE],
                                                       def[P_MAX_TORQUE]),
                                      bnd, batch);
  crl_spec *rew =
      crl__classic_expand(crl_spec_unbounded(CRL_FLOAT32, 1, &one), bnd, batch);
  crl_spec *done = crl__classic_done_spec(bnd, batch);
  if (!act || !rew || !done) return crl_last_error_code();
  rc = crl_env_set_action_spec(env, act);
  if (!rc) rc = crl_env_set_reward_spec(env, rew);
  if (!rc) rc = crl_env_set_done_spec(env, done);
  return rc;
}

crl_env *crl_pendulum_stateless_new(const crl_classic_options *opt) {
  crl_classic_options o = {0};
  if (opt) o = *opt;
  const char *name = "PendulumStateless";
  if (o.num_envs < 0)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: num_envs %lld must be >= 0", name,
                        (long long)o.num_envs);
  if (o.from_pixels || o.pixels_only)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "%s: from_pixels is not supported (the env holds no "
                        "state to draw)",
                        name);
  if (o.max_episode_steps > 0 || o.max_episode_steps < -1)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "%s: max_episode_steps %lld is not supported (the env "
                        "keeps no step count; it never truncates)",
                        name, (long long)o.max_episode_steps);
  if (!isfinite(o.g))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: g %g must be finite", name, o.g);
  ps_impl *p = calloc(1, sizeof *p);
  int64_t n = o.num_envs ? o.num_envs : 1;
  if (p) p->rng = calloc((size_t)n, sizeof(crl_rng));
  if (!p || !p->rng) {
    if (p) free(p);
    return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", name);
  }
  p->n = n;
  p->g = o.g != 0 ? o.g : 10.0;
  int64_t batch = o.num_envs;
  crl_env *env = crl_env_new(&ops, p, o.num_envs ? 1 : 0, &batch);
  if (!env) {
    free(p->rng);
    free(p);
    return NULL;
  }
  crl_scope_begin();
  int rc = make_specs(env, p->g);
  crl_scope_end();
  if (!rc) rc = crl_env_seed(env, o.seed);
  if (rc) {
    crl__env_discard(env);
    return NULL;
  }
  return env;
}
