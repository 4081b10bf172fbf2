/* Shared machinery of the native classic-control envs: construction from
 * options, specs, partial reset, the time limit, from_pixels rendering and
 * state access for tests. Each env file provides a crl__classic_desc with
 * its dynamics (see classic_internal.h). */
#include <stdlib.h>

#include "classic_internal.h"

/* ---- specs --------------------------------------------------------------- */

crl_spec *crl__classic_expand(crl_spec *s, int bnd, const int64_t *batch) {
  if (!s || !bnd) return s;
  return crl_spec_expand(s, bnd, batch);
}

crl_spec *crl__classic_done_spec(int bnd, const int64_t *batch) {
  int64_t one = 1;
  crl_spec *comp = crl_spec_composite(bnd, batch);
  crl_spec *leaf =
      crl__classic_expand(crl_spec_discrete(2, CRL_BOOL, 1, &one), bnd, batch);
  if (!comp || !leaf) return NULL;
  if (crl_spec_set(comp, "done", leaf) ||
      crl_spec_set(comp, "terminated", leaf) ||
      crl_spec_set(comp, "truncated", leaf))
    return NULL;
  return comp;
}

/* all four specs, built inside the caller's scope */
static int make_specs(crl_env *env, const crl__classic *c) {
  const crl__classic_desc *d = c->d;
  int bnd = crl_env_batch_ndim(env);
  const int64_t *batch = crl_env_batch_size(env);
  int64_t D = d->obs_dim, one = 1;
  crl_spec *obs = crl_spec_composite(bnd, batch);
  if (!obs) return crl_last_error_code();
  int rc = 0;
  if (!c->pixels_only) {
    float lo[8], hi[8];
    for (int i = 0; i < d->obs_dim; i++) {
      lo[i] = (float)d->obs_low[i];
      hi[i] = (float)d->obs_high[i];
    }
    crl_tensor *tl = crl_from_array(CRL_FLOAT32, 1, &D, lo);
    crl_tensor *th = crl_from_array(CRL_FLOAT32, 1, &D, hi);
    crl_spec *s = (tl && th) ? crl_spec_bounded_tensor(tl, th) : NULL;
    s = crl__classic_expand(s, bnd, batch);
    rc = s ? crl_spec_set(obs, "observation", s) : crl_last_error_code();
  }
  if (!rc && c->from_pixels) {
    int64_t sh[3] = {c->rh, c->rw, 3};
    crl_spec *s = crl__classic_expand(
        crl_spec_bounded(CRL_UINT8, 3, sh, 0, 255), bnd, batch);
    rc = s ? crl_spec_set(obs, "pixels", s) : crl_last_error_code();
  }
  if (!rc) rc = crl_env_set_observation_spec(env, obs);
  if (rc) return rc;
  crl_spec *act;
  if (d->n_actions > 0)
    act = crl_spec_one_hot(d->n_actions, CRL_INT64, 1, &d->n_actions);
  else
    act = crl_spec_bounded(CRL_FLOAT32, 1, &one, d->act_low, d->act_high);
  act = crl__classic_expand(act, bnd, batch);
  if (!act || (rc = crl_env_set_action_spec(env, act)))
    return act ? rc : crl_last_error_code();
  crl_spec *rew =
      crl__classic_expand(crl_spec_unbounded(CRL_FLOAT32, 1, &one), bnd, batch);
  if (!rew || (rc = crl_env_set_reward_spec(env, rew)))
    return rew ? rc : crl_last_error_code();
  crl_spec *done = crl__classic_done_spec(bnd, batch);
  if (!done) return crl_last_error_code();
  return crl_env_set_done_spec(env, done);
}

/* ---- construction -------------------------------------------------------- */

static void free_impl(crl__classic *c) {
  if (!c) return;
  for (int k = 0; k < CRL__CLASSIC_MAX_STATE; k++)
    crl__aligned_free(c->s[k]);
  crl__aligned_free(c->aux);
  free(c->flag);
  free(c->steps);
  free(c->rng);
  crl__aligned_free(c->scratch);
  free(c->tmp);
  crl_td_release(c->out_td);
  free(c);
}

crl_env *crl__classic_new(const crl__classic_desc *d, const crl_env_ops *ops,
                          const crl_classic_options *opt) {
  crl_classic_options o = {0};
  if (opt) o = *opt;
  const char *name = d->name;
  if (o.num_envs < 0)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: num_envs %lld must be >= 0", name,
                        (long long)o.num_envs);
  if (o.max_episode_steps < -1)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: max_episode_steps %lld must be > 0, 0 (Gym's "
                        "default) or -1 (no limit)",
                        name, (long long)o.max_episode_steps);
  int rh = o.render_height ? o.render_height : 64;
  int rw = o.render_width ? o.render_width : 64;
  if (rh < 1 || rw < 1 || rh > 4096 || rw > 4096)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: render size %dx%d (height x width) must be "
                        "within 1..4096",
                        name, o.render_height, o.render_width);
  if (o.pixels_only && !o.from_pixels)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: pixels_only requires from_pixels",
                        name);
  if (!isfinite(o.g))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: g %g must be finite", name, o.g);
  int64_t n = o.num_envs ? o.num_envs : 1;
  crl__classic *c = calloc(1, sizeof *c);
  if (!c) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", name);
  c->magic = CRL__CLASSIC_MAGIC;
  c->d = d;
  c->n = n;
  c->max_steps = o.max_episode_steps == 0
                     ? d->max_steps
                     : (o.max_episode_steps < 0 ? 0 : o.max_episode_steps);
  c->from_pixels = o.from_pixels;
  c->pixels_only = o.pixels_only;
  c->rh = rh;
  c->rw = rw;
  c->g = o.g != 0 ? o.g : 10.0;
  size_t nb = sizeof(double) * (size_t)n;
  bool ok = true;
  for (int k = 0; k < d->nstate; k++) {
    c->s[k] = crl__aligned_alloc(nb);
    ok = ok && c->s[k];
    if (c->s[k]) memset(c->s[k], 0, nb);
  }
  c->aux = crl__aligned_alloc(nb);
  c->flag = calloc((size_t)n, 1);
  c->tmp = calloc((size_t)n, 1);
  c->steps = calloc((size_t)n, sizeof(int64_t));
  c->rng = calloc((size_t)n, sizeof(crl_rng));
  if (o.pixels_only)
    c->scratch =
        crl__aligned_alloc(sizeof(float) * (size_t)n * (size_t)d->obs_dim);
  ok = ok && c->aux && c->flag && c->tmp && c->steps && c->rng &&
       (!o.pixels_only || c->scratch);
  if (!ok) {
    free_impl(c);
    return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory (%lld envs)", name,
                        (long long)n);
  }
  memset(c->aux, 0, nb);
  int64_t batch = o.num_envs;
  crl_env *env = crl_env_new(ops, c, o.num_envs ? 1 : 0, &batch);
  if (!env) {
    free_impl(c);
    return NULL;
  }
  crl_scope_begin();
  int rc = make_specs(env, c);
  crl_scope_end();
  if (!rc) rc = crl_env_set_render_size(env, rh, rw);
  if (!rc) rc = crl_env_seed(env, o.seed);
  if (rc) {
    crl__env_discard(env); /* frees c through close */
    return NULL;
  }
  return env;
}

crl__classic *crl__classic_of(crl_env *env) {
  crl__classic *c = env ? crl_env_impl(env) : NULL;
  if (!c || env->ops->close != crl__classic_close ||
      c->magic != CRL__CLASSIC_MAGIC)
    return CRL_ERR_NULL(CRL_EINVAL, "env %s is not a classic-control env",
                        env ? crl_env_name(env) : "(null)");
  return c;
}

void crl__classic_close(crl_env *env) { free_impl(crl_env_impl(env)); }

int crl__classic_seed(crl_env *env, uint64_t seed) {
  (void)seed; /* the generic generator was just reseeded */
  crl__classic *c = crl_env_impl(env);
  const crl_rng *g = crl_env_rng(env);
  for (int64_t i = 0; i < c->n; i++)
    c->rng[i] = crl_rng_split(g, (uint64_t)i);
  return 0;
}

/* ---- outputs ------------------------------------------------------------- */

/* Contiguous data of td[key] (dtype dt, numel elements); an entry that is
 * missing or of another layout is replaced by a fresh tensor of the spec. */
void *crl__env_out_data(crl_env *env, crl_td *td, const char *key,
                        const crl_spec *comp, crl_dtype dt, int64_t numel) {
  crl_tensor *t = crl_td_find(td, key);
  if (t && t->dtype == dt && t->numel == numel && crl_tensor_is_contiguous(t))
    return t->data;
  const crl_spec *spec =
      comp ? crl_spec_get(comp, key) : crl_env_reward_spec(env);
  if (!spec)
    return CRL_ERR_NULL(CRL_EKEY, "env %s: no spec for '%s'", crl_env_name(env),
                        key);
  crl_scope_begin();
  crl_tensor *z = crl_spec_zero(spec, 0, NULL);
  int rc = z ? crl_td_set(td, key, z) : crl_last_error_code();
  crl_scope_end();
  if (rc) return NULL;
  t = crl_td_find(td, key);
  if (!t || t->numel != numel || t->dtype != dt)
    return CRL_ERR_NULL(CRL_ESHAPE, "env %s: cannot write '%s'",
                        crl_env_name(env), key);
  return t->data;
}

static void render_rows(const crl__classic *c, uint8_t *px, int h, int w,
                        const uint8_t *mask) {
  size_t fsz = (size_t)h * (size_t)w * 3;
  for (int64_t i = 0; i < c->n; i++) {
    if (mask && !mask[i]) continue;
    crl__frame f = {px + fsz * (size_t)i, h, w};
    crl__raster_clear(&f, (crl__rgb){255, 255, 255});
    crl__view v = crl__view_make(&f, c->d->screen_w, c->d->screen_h);
    c->d->draw(c, i, &v);
  }
}

/* ---- reset, step, render ------------------------------------------------- */

int crl__classic_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  crl__classic *c = crl_env_impl(env);
  const crl__classic_desc *d = c->d;
  crl_spec *os = crl_env_observation_spec(env);
  float *obs = NULL;
  uint8_t *px = NULL;
  if (!c->pixels_only) {
    obs = crl__env_out_data(env, td, "observation", os, CRL_FLOAT32,
                            c->n * d->obs_dim);
    if (!obs) return crl_last_error_code();
  }
  if (c->from_pixels) {
    px = crl__env_out_data(env, td, "pixels", os, CRL_UINT8,
                           c->n * c->rh * c->rw * 3);
    if (!px) return crl_last_error_code();
  }
  for (int64_t i = 0; i < c->n; i++) {
    if (mask && !mask[i]) continue;
    d->reset_one(c, i, &c->rng[i]);
    c->steps[i] = 0;
    c->flag[i] = 0;
    c->aux[i] = NAN;
    if (obs) d->obs_one(c, i, obs + i * d->obs_dim);
  }
  if (px) render_rows(c, px, c->rh, c->rw, mask);
  return 0;
}

int crl__classic_step(crl_env *env, crl_td *td, crl_td *next) {
  crl__classic *c = crl_env_impl(env);
  const crl__classic_desc *d = c->d;
  const int64_t n = c->n;
  crl_tensor *a = crl_td_find(td, "action");
  crl_dtype adt = d->n_actions ? CRL_INT64 : CRL_FLOAT32;
  int64_t anum = n * (d->n_actions ? d->n_actions : 1);
  if (!a)
    return crl__err(CRL_EKEY, "env %s: step needs an 'action' entry", d->name);
  if (a->dtype != adt || a->numel != anum) {
    char b[160];
    return crl__err(a->dtype != adt ? CRL_EDTYPE : CRL_ESHAPE,
                    "env %s: action of shape %s and dtype %s, expected %lld "
                    "%s values",
                    d->name, CRL_SHAPE_STR(a, b), crl_dtype_name(a->dtype),
                    (long long)anum, crl_dtype_name(adt));
  }
  float *obs = c->scratch, *rew;
  uint8_t *px = NULL, *done, *term, *trunc;
  if (next == c->out_td && next->version == c->out_ver) {
    /* same "next" as last step with the same entries (it is retained, so
     * the pointers are alive) */
    if (!c->pixels_only) obs = c->out_obs;
    px = c->out_px;
    rew = c->out_rew;
    done = c->out_done;
    term = c->out_term;
    trunc = c->out_trunc;
  } else {
    crl_spec *os = crl_env_observation_spec(env);
    if (!c->pixels_only) {
      obs = crl__env_out_data(env, next, "observation", os, CRL_FLOAT32,
                              n * d->obs_dim);
      if (!obs) return crl_last_error_code();
    }
    if (c->from_pixels) {
      px = crl__env_out_data(env, next, "pixels", os, CRL_UINT8,
                             n * c->rh * c->rw * 3);
      if (!px) return crl_last_error_code();
    }
    crl_spec *ds = crl_env_done_spec(env);
    rew = crl__env_out_data(env, next, "reward", NULL, CRL_FLOAT32, n);
    done = rew ? crl__env_out_data(env, next, "done", ds, CRL_BOOL, n) : NULL;
    term = done ? crl__env_out_data(env, next, "terminated", ds, CRL_BOOL, n)
                : NULL;
    trunc = term ? crl__env_out_data(env, next, "truncated", ds, CRL_BOOL, n)
                 : NULL;
    if (!trunc) return crl_last_error_code();
    crl_td_retain(next);
    crl_td_release(c->out_td);
    c->out_td = next;
    c->out_ver = next->version;
    c->out_obs = obs;
    c->out_px = px;
    c->out_rew = rew;
    c->out_done = done;
    c->out_term = term;
    c->out_trunc = trunc;
  }
  const void *adata = a->data;
  crl_tensor *ac = NULL;
  if (!crl_tensor_is_contiguous(a)) {
    crl_scope_begin();
    ac = crl_contiguous(a);
    if (!ac) {
      crl_scope_end();
      return crl_last_error_code();
    }
    adata = ac->data;
  }
  /* nothing can fail from here on */
  d->step(c, adata, obs, rew, c->tmp);
  if (ac) crl_scope_end();
  const int64_t lim = c->max_steps;
  int64_t *restrict steps = c->steps;
  const uint8_t *restrict tm = c->tmp;
  uint8_t *restrict dn = done, *restrict te = term, *restrict tr = trunc;
  for (int64_t i = 0; i < n; i++) {
    int64_t s = steps[i] + 1;
    steps[i] = s;
    uint8_t t = (uint8_t)(lim > 0 && s >= lim);
    te[i] = tm[i];
    tr[i] = t;
    dn[i] = (uint8_t)(tm[i] | t);
  }
  if (px) render_rows(c, px, c->rh, c->rw, NULL);
  return 0;
}

int crl__classic_render(crl_env *env, crl_tensor *pixels) {
  crl__classic *c = crl_env_impl(env);
  int bnd = crl_env_batch_ndim(env);
  if (pixels->dtype != CRL_UINT8 || pixels->ndim != bnd + 3 ||
      pixels->shape[bnd + 2] != 3 || !crl_tensor_is_contiguous(pixels) ||
      pixels->numel != c->n * pixels->shape[bnd] * pixels->shape[bnd + 1] * 3) {
    char b[160];
    return crl__err(CRL_ESHAPE,
                    "env %s: render target of shape %s (%s) must be a "
                    "contiguous uint8 [batch..., H, W, 3]",
                    c->d->name, CRL_SHAPE_STR(pixels, b),
                    crl_dtype_name(pixels->dtype));
  }
  render_rows(c, pixels->data, (int)pixels->shape[bnd],
              (int)pixels->shape[bnd + 1], NULL);
  return 0;
}

/* ---- state access (tests) ------------------------------------------------ */

static int check_index(crl__classic *c, int64_t i) {
  if (i < 0 || i >= c->n)
    return crl__err(CRL_EINDEX, "%s: env index %lld out of range [0, %lld)",
                    c->d->name, (long long)i, (long long)c->n);
  return 0;
}

int crl__classic_get_state(crl_env *env, int64_t i, double *state,
                           int64_t *steps) {
  crl__classic *c = crl__classic_of(env);
  if (!c) return crl_last_error_code();
  int rc = check_index(c, i);
  if (rc) return rc;
  for (int k = 0; k < c->d->nstate; k++)
    if (state) state[k] = c->s[k][i];
  if (steps) *steps = c->steps[i];
  return 0;
}

int crl__classic_set_state(crl_env *env, int64_t i, const double *state,
                           int64_t steps) {
  crl__classic *c = crl__classic_of(env);
  if (!c) return crl_last_error_code();
  int rc = check_index(c, i);
  if (rc) return rc;
  for (int k = 0; k < c->d->nstate; k++)
    c->s[k][i] = state[k];
  c->steps[i] = steps;
  c->flag[i] = 0;
  return 0;
}

/* ---- by name ------------------------------------------------------------- */

crl_env *crl_classic_make(const char *name, const crl_classic_options *opt) {
  static const struct {
    const char *name;
    crl_env *(*make)(const crl_classic_options *);
  } table[] = {
      {"CartPole-v1", crl_cartpole_new},
      {"Pendulum-v1", crl_pendulum_new},
      {"MountainCar-v0", crl_mountain_car_new},
      {"MountainCarContinuous-v0", crl_mountain_car_continuous_new},
      {"Acrobot-v1", crl_acrobot_new},
      {"PendulumStateless", crl_pendulum_stateless_new},
  };
  for (size_t i = 0; name && i < sizeof table / sizeof *table; i++)
    if (!strcmp(name, table[i].name)) return table[i].make(opt);
  return CRL_ERR_NULL(CRL_EKEY,
                      "classic_make: unknown env '%s' (known: CartPole-v1, "
                      "Pendulum-v1, MountainCar-v0, MountainCarContinuous-v0, "
                      "Acrobot-v1, PendulumStateless)",
                      name ? name : "(null)");
}
