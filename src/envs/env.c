/* The generic env layer: construction, specs, validated steps into
 * preallocated TensorDicts, partial reset, random steps. Rollouts and spec
 * checks are in rollout.c. */
#include <math.h>
#include <stdlib.h>

#include "env_internal.h"

static void release_env(void *e) { crl_env_release(e); }

crl_env *crl_env_new(const crl_env_ops *ops, void *impl, int bnd,
                     const int64_t *batch) {
  if (!ops || !ops->reset || !ops->step)
    return CRL_ERR_NULL(CRL_EINVAL, "env_new: ops must provide reset and step");
  if (crl__check_shape("env_new", bnd, batch)) return NULL;
  crl_env *env = calloc(1, sizeof *env);
  if (!env) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (env)");
  env->refcount = 1;
  env->ops = ops;
  env->impl = impl;
  env->bnd = bnd;
  if (bnd) memcpy(env->batch, batch, sizeof(int64_t) * (size_t)bnd);
  env->numel = crl__numel(bnd, batch);
  env->validate = true;
  crl_rng_seed(&env->rng, 0);
  crl__scope_adopt_obj(env, release_env);
  return env;
}

void *crl_env_impl(const crl_env *env) { return env ? env->impl : NULL; }
crl_rng *crl_env_rng(crl_env *env) { return &env->rng; }
void crl_env_set_validate(crl_env *env, bool v) { env->validate = v; }

crl_env *crl_env_retain(crl_env *env) {
  if (env)
    atomic_fetch_add_explicit((_Atomic int *)&env->refcount, 1,
                              memory_order_relaxed);
  return env;
}

void crl_env_release(crl_env *env) {
  if (!env) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&env->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  if (env->ops->close) env->ops->close(env);
  crl_td_release(env->cache_td);
  crl_td_release(env->cache_next);
  crl_spec_release(env->obs);
  crl_spec_release(env->act);
  crl_spec_release(env->rew);
  crl_spec_release(env->done);
  free(env);
}

void crl__env_discard(crl_env *env) { crl__discard_obj(env, release_env); }

const char *crl_env_name(const crl_env *env) {
  return env->ops->name ? env->ops->name : "env";
}
int crl_env_batch_ndim(const crl_env *env) { return env->bnd; }
const int64_t *crl_env_batch_size(const crl_env *env) { return env->batch; }
int64_t crl_env_numel(const crl_env *env) { return env->numel; }
crl_device crl_env_device(const crl_env *env) {
  (void)env;
  return CRL_DEVICE_CPU;
}
crl_spec *crl_env_observation_spec(const crl_env *env) { return env->obs; }
crl_spec *crl_env_action_spec(const crl_env *env) { return env->act; }
crl_spec *crl_env_reward_spec(const crl_env *env) { return env->rew; }
crl_spec *crl_env_done_spec(const crl_env *env) { return env->done; }

/* ---- specs ------------------------------------------------------------------
 */

static int check_spec_batch(const crl_env *env, const char *which,
                            const crl_spec *s, bool composite) {
  if (!s) return crl__err(CRL_EINVAL, "env: %s spec is NULL", which);
  bool is_comp = crl_spec_kind_of(s) == CRL_SPEC_COMPOSITE;
  if (is_comp != composite)
    return crl__err(CRL_EINVAL, "env: the %s spec must be %s", which,
                    composite ? "a composite spec" : "a leaf spec");
  int nd = crl_spec_ndim(s);
  const int64_t *sh = crl_spec_shape(s);
  bool ok = composite ? nd == env->bnd : nd >= env->bnd;
  for (int i = 0; ok && i < env->bnd; i++)
    if (sh[i] != env->batch[i]) ok = false;
  if (!ok) {
    char b1[160], b2[160];
    return crl__err(CRL_ESHAPE,
                    "env %s: %s spec of shape %s does not start with the "
                    "env's batch size %s",
                    crl_env_name(env), which,
                    crl_shape_str(nd, sh, b1, sizeof b1),
                    crl_shape_str(env->bnd, env->batch, b2, sizeof b2));
  }
  return 0;
}

static int set_spec(crl_env *env, crl_spec **slot, const char *which,
                    crl_spec *s, bool composite) {
  int rc = check_spec_batch(env, which, s, composite);
  if (rc) return rc;
  crl_spec_retain(s);
  crl_spec_release(*slot);
  *slot = s;
  return 0;
}

int crl_env_set_observation_spec(crl_env *env, crl_spec *s) {
  return set_spec(env, &env->obs, "observation", s, true);
}
int crl_env_set_action_spec(crl_env *env, crl_spec *s) {
  return set_spec(env, &env->act, "action", s, false);
}
int crl_env_set_reward_spec(crl_env *env, crl_spec *s) {
  return set_spec(env, &env->rew, "reward", s, false);
}
int crl_env_set_done_spec(crl_env *env, crl_spec *s) {
  return set_spec(env, &env->done, "done", s, true);
}

static int check_ready(const crl_env *env, const char *op) {
  if (!env->obs || !env->act || !env->rew || !env->done)
    return crl__err(
        CRL_ESTATE,
        "%s: env %s has no %s spec (implementations set all four "
        "specs)",
        op, crl_env_name(env),
        !env->obs ? "observation"
                  : (!env->act ? "action" : (!env->rew ? "reward" : "done")));
  return 0;
}

int crl_env_seed(crl_env *env, uint64_t seed) {
  if (!env) return crl__err(CRL_EINVAL, "env_seed: env is NULL");
  crl_rng_seed(&env->rng, seed);
  return env->ops->seed ? env->ops->seed(env, seed) : 0;
}

/* ---- reset
 * ------------------------------------------------------------------- */

/* Add zero entries for every leaf of comp missing in td (or of another
 * shape/dtype). */
static int ensure_entries(crl_td *td, const crl_spec *comp) {
  crl_td_keys k;
  int rc = crl_spec_keys(comp, &k);
  if (rc) return rc;
  for (int i = 0; i < k.n && !rc; i++) {
    const crl_spec *s = crl_spec_get(comp, k.keys[i]);
    crl_tensor *t = crl_td_find(td, k.keys[i]);
    if (t && t->dtype == crl_spec_dtype(s) && t->ndim == crl_spec_ndim(s) &&
        !memcmp(t->shape, crl_spec_shape(s), sizeof(int64_t) * (size_t)t->ndim))
      continue;
    crl_scope_begin();
    crl_tensor *z = crl_spec_zero(s, 0, NULL);
    rc = z ? crl_td_set(td, k.keys[i], z) : crl_last_error_code();
    crl_scope_end();
  }
  crl_td_keys_free(&k);
  return rc;
}

/* flat uint8 mask over the env's batch from td["_reset"], or NULL */
static int reset_mask(crl_env *env, crl_td *td, uint8_t **mask) {
  *mask = NULL;
  crl_tensor *r = crl_td_find(td, "_reset");
  if (!r) return 0;
  if (r->numel != env->numel) {
    char b[160];
    return crl__err(CRL_ESHAPE,
                    "env_reset: '_reset' of shape %s must have one entry per "
                    "env (%lld)",
                    CRL_SHAPE_STR(r, b), (long long)env->numel);
  }
  uint8_t *m = malloc((size_t)(env->numel ? env->numel : 1));
  if (!m) return crl__err(CRL_ENOMEM, "out of memory");
  int rc = crl_tensor_to_array(r, CRL_BOOL, m, env->numel);
  if (rc) {
    free(m);
    return rc;
  }
  *mask = m;
  return 0;
}

/* set the rows of a done-like entry to false where mask (or everywhere) */
static void clear_rows(crl_tensor *t, const uint8_t *mask, int64_t nenv) {
  if (!t || !crl_tensor_is_contiguous(t)) {
    if (t && !mask) crl_zero_(t);
    return;
  }
  int64_t row = nenv ? t->numel / nenv : 0;
  size_t es = crl_dtype_size(t->dtype);
  for (int64_t e = 0; e < nenv; e++)
    if (!mask || mask[e])
      memset((char *)t->data + (size_t)(e * row) * es, 0, (size_t)row * es);
}

crl_td *crl_env_reset(crl_env *env, crl_td *td) {
  if (!env) return CRL_ERR_NULL(CRL_EINVAL, "env_reset: env is NULL");
  if (check_ready(env, "env_reset")) return NULL;
  crl_td *out = td;
  if (!out) {
    out = crl_td_new(env->bnd, env->batch);
    if (!out) return NULL;
  } else {
    const int64_t *b = crl_td_batch_size(td);
    if (crl_td_batch_ndim(td) != env->bnd ||
        memcmp(b, env->batch, sizeof(int64_t) * (size_t)env->bnd)) {
      char b1[160], b2[160];
      return CRL_ERR_NULL(
          CRL_ESHAPE, "env_reset: TensorDict batch %s != env batch %s",
          crl_shape_str(crl_td_batch_ndim(td), b, b1, sizeof b1),
          crl_shape_str(env->bnd, env->batch, b2, sizeof b2));
    }
    crl_td_retain(out);
    crl__scope_adopt_obj(out, (void (*)(void *))crl_td_release);
  }
  uint8_t *mask = NULL;
  int rc = reset_mask(env, out, &mask);
  if (!rc) rc = ensure_entries(out, env->obs);
  if (!rc) rc = ensure_entries(out, env->done);
  crl_no_grad_begin();
  if (!rc) rc = env->ops->reset(env, out, mask);
  crl_no_grad_end();
  if (!rc) {
    crl_td_keys k;
    if (!crl_spec_keys(env->done, &k)) {
      for (int i = 0; i < k.n; i++)
        clear_rows(crl_td_find(out, k.keys[i]), mask, env->numel);
      crl_td_keys_free(&k);
    }
    if (mask) crl_td_del(out, "_reset");
  }
  free(mask);
  if (rc) {
    crl__td_discard(out);
    return NULL;
  }
  return out;
}

/* ---- step
 * ----------------------------------------------------------------------- */

static int validate_action(crl_env *env, crl_tensor *a) {
  const crl_spec *s = env->act;
  char b1[160], b2[160];
  int nd = crl_spec_ndim(s);
  const int64_t *sh = crl_spec_shape(s);
  if (a->ndim != nd || memcmp(a->shape, sh, sizeof(int64_t) * (size_t)nd))
    return crl__err(CRL_ESHAPE,
                    "env %s: action of shape %s, the action spec expects %s",
                    crl_env_name(env), CRL_SHAPE_STR(a, b1),
                    crl_shape_str(nd, sh, b2, sizeof b2));
  if (a->dtype != crl_spec_dtype(s))
    return crl__err(CRL_EDTYPE,
                    "env %s: action of dtype %s, the action spec expects %s",
                    crl_env_name(env), crl_dtype_name(a->dtype),
                    crl_dtype_name(crl_spec_dtype(s)));
  crl_spec_kind k = crl_spec_kind_of(s);
  if (crl_dtype_is_float(a->dtype)) {
    bool fast = a->dtype == CRL_FLOAT32 && crl_tensor_is_contiguous(a);
    bool nan = false;
    if (fast) { /* the common case, without per-element index math */
      const float *p = a->data;
      for (int64_t i = 0; i < a->numel; i++)
        nan |= p[i] != p[i];
    }
    for (int64_t i = 0; (nan || !fast) && i < a->numel; i++) {
      double v = crl_tensor_get_flat(a, i);
      if (isnan(v))
        return crl__err(CRL_ENOTFINITE, "env %s: action element %lld is NaN",
                        crl_env_name(env), (long long)i);
    }
  }
  if (k == CRL_SPEC_BOUNDED || k == CRL_SPEC_UNBOUNDED) return 0;
  if (a->dtype == CRL_INT64 && crl_tensor_is_contiguous(a) &&
      (k == CRL_SPEC_ONE_HOT || k == CRL_SPEC_DISCRETE)) {
    /* the common discrete cases, checked inline (the step is ~1 ns/env) */
    const int64_t *p = a->data, n = crl_spec_n(s);
    bool ok = true;
    if (k == CRL_SPEC_DISCRETE) {
      for (int64_t i = 0; i < a->numel; i++)
        ok &= p[i] >= 0 && p[i] < n;
    } else {
      for (int64_t r = 0; r + n <= a->numel; r += n) {
        int64_t sum = 0;
        bool bin = true;
        for (int64_t j = 0; j < n; j++) {
          sum += p[r + j];
          bin &= p[r + j] == 0 || p[r + j] == 1;
        }
        ok &= bin && sum == 1;
      }
    }
    if (ok) return 0;
  }
  if (!crl_spec_is_in(s, a)) {
    /* name the first offending value */
    if (k == CRL_SPEC_DISCRETE) {
      int64_t n = crl_spec_n(s);
      for (int64_t i = 0; i < a->numel; i++) {
        double v = crl_tensor_get_flat(a, i);
        if (v < 0 || v >= (double)n)
          return crl__err(CRL_EINDEX,
                          "env %s: action %g at element %lld is out of "
                          "range [0, %lld)",
                          crl_env_name(env), v, (long long)i, (long long)n);
      }
    }
    return crl__err(CRL_EINVAL, "env %s: action is not in the action spec (%s)",
                    crl_env_name(env), crl_spec_kind_name(k));
  }
  return 0;
}

/* the "next" TensorDict of td, created/completed from the specs */
static crl_td *next_td(crl_env *env, crl_td *td) {
  crl_td *next = crl__td_get_sub(td, "next");
  if (!next) {
    crl_scope_begin();
    crl_td *n = crl_td_new(env->bnd, env->batch);
    int rc = n ? crl_td_set_td(td, "next", n) : crl_last_error_code();
    crl_scope_end();
    if (rc) return NULL;
    next = crl__td_get_sub(td, "next");
  }
  int rc = ensure_entries(next, env->obs);
  if (!rc) rc = ensure_entries(next, env->done);
  if (!rc) {
    crl_tensor *r = crl_td_find(next, "reward");
    const crl_spec *rs = env->rew;
    if (!r || r->ndim != crl_spec_ndim(rs) || r->dtype != crl_spec_dtype(rs) ||
        memcmp(r->shape, crl_spec_shape(rs),
               sizeof(int64_t) * (size_t)r->ndim)) {
      crl_scope_begin();
      crl_tensor *z = crl_spec_zero(rs, 0, NULL);
      rc = z ? crl_td_set(next, "reward", z) : crl_last_error_code();
      crl_scope_end();
    }
  }
  return rc ? NULL : next;
}

int crl_env_step(crl_env *env, crl_td *td) {
  if (!env || !td) return crl__err(CRL_EINVAL, "env_step: NULL argument");
  int rc = check_ready(env, "env_step");
  if (rc) return rc;
  crl_tensor *a = crl_td_find(td, "action");
  if (!a) {
    crl_td_get(td, "action"); /* sets the message listing the keys */
    char keys[900];
    snprintf(keys, sizeof keys, "%s", crl_last_error());
    return crl__err(CRL_EKEY, "env %s: step needs an 'action' entry (%s)",
                    crl_env_name(env), keys);
  }
  if (env->validate && (rc = validate_action(env, a))) return rc;
  crl_td *next;
  if (td == env->cache_td && td->version == env->cache_tdv &&
      env->cache_next->version == env->cache_nextv) {
    next = env->cache_next; /* same td, same structure: entries are there */
  } else {
    next = next_td(env, td);
    if (!next) return crl_last_error_code();
    crl_td_retain(td);
    crl_td_retain(next);
    crl_td_release(env->cache_td);
    crl_td_release(env->cache_next);
    env->cache_td = td;
    env->cache_next = next;
    env->cache_tdv = td->version;
    env->cache_nextv = next->version;
  }
  crl_no_grad_begin();
  rc = env->ops->step(env, td, next);
  crl_no_grad_end();
  return rc;
}

int crl_env_rand_step(crl_env *env, crl_td *td) {
  if (!env || !td) return crl__err(CRL_EINVAL, "env_rand_step: NULL argument");
  int rc = check_ready(env, "env_rand_step");
  if (rc) return rc;
  crl_scope_begin();
  crl_tensor *a = crl_spec_rand(env->act, &env->rng, 0, NULL);
  rc = a ? crl_td_set(td, "action", a) : crl_last_error_code();
  crl_scope_end();
  return rc ? rc : crl_env_step(env, td);
}

crl_tensor *crl_env_render(crl_env *env) {
  if (!env) return CRL_ERR_NULL(CRL_EINVAL, "env_render: env is NULL");
  if (!env->ops->render || !env->render_h)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED, "env %s cannot render",
                        crl_env_name(env));
  int64_t shape[CRL_MAX_DIMS + 3];
  memcpy(shape, env->batch, sizeof(int64_t) * (size_t)env->bnd);
  shape[env->bnd] = env->render_h;
  shape[env->bnd + 1] = env->render_w;
  shape[env->bnd + 2] = 3;
  crl_tensor *px = crl_empty(CRL_UINT8, env->bnd + 3, shape);
  if (!px) return NULL;
  int rc = env->ops->render(env, px);
  if (rc) {
    crl__discard(px);
    return NULL;
  }
  return px;
}

int crl_env_set_render_size(crl_env *env, int height, int width) {
  if (height <= 0 || width <= 0 || height > 4096 || width > 4096)
    return crl__err(CRL_EINVAL, "env: render size %dx%d is invalid", height,
                    width);
  if (env->bnd + 3 > CRL_MAX_DIMS)
    return crl__err(CRL_EINVAL, "env: too many batch dims to render");
  env->render_h = height;
  env->render_w = width;
  return 0;
}
