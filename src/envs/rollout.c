/* Rollouts (TorchRL's EnvBase.rollout) and check_env_specs. */
#include <stdlib.h>

#include "env_internal.h"

static bool any_true(crl_tensor *t) {
  if (!t) return false;
  for (int64_t i = 0; i < t->numel; i++)
    if (crl_tensor_get_flat(t, i) != 0) return true;
  return false;
}

crl_td *crl_env_rollout(crl_env *env, const crl_rollout_options *opt) {
  if (!env || !opt)
    return CRL_ERR_NULL(CRL_EINVAL, "env_rollout: NULL argument");
  if (opt->max_steps <= 0)
    return CRL_ERR_NULL(CRL_EINVAL, "env_rollout: max_steps %lld must be > 0",
                        (long long)opt->max_steps);
  if (!opt->auto_reset && !opt->td)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "env_rollout: auto_reset is off and no TensorDict "
                        "was given");
  crl_td **steps = calloc((size_t)opt->max_steps, sizeof *steps);
  if (!steps) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (rollout)");
  crl_scope_begin();
  crl_td *result = NULL;
  int64_t t = 0;
  int rc = 0;
  crl_td *td = opt->auto_reset ? crl_env_reset(env, NULL) : opt->td;
  if (!td) {
    rc = crl_last_error_code();
    goto out;
  }
  for (t = 0; t < opt->max_steps; t++) {
    if (opt->policy) {
      rc = opt->policy(opt->policy_ctx, td);
      if (rc && !crl_last_error()[0])
        crl__err(rc, "env_rollout: policy failed at step %lld", (long long)t);
    } else {
      crl_scope_begin();
      crl_tensor *a = crl_spec_rand(env->act, &env->rng, 0, NULL);
      rc = a ? crl_td_set(td, "action", a) : crl_last_error_code();
      crl_scope_end();
    }
    if (!rc) rc = crl_env_step(env, td);
    if (rc) break;
    crl_td *snap = crl_td_clone(td);
    if (!snap) {
      rc = crl_last_error_code();
      break;
    }
    steps[t] = snap;
    crl_tensor *done = crl_td_find(td, "next/done");
    bool done_any = any_true(done);
    if (opt->break_when_any_done && done_any) {
      t++;
      break;
    }
    crl_td *nxt = crl_td_step_mdp(td, NULL);
    if (!nxt) {
      rc = crl_last_error_code();
      break;
    }
    td = nxt;
    if (done_any && t + 1 < opt->max_steps) {
      /* reset the envs that finished (partial reset by mask) */
      crl_tensor *mask = crl_td_find(td, "done");
      rc = mask ? crl_td_set(td, "_reset", mask) : 0;
      if (!rc && mask && !crl_env_reset(env, td)) rc = crl_last_error_code();
      if (rc) break;
    }
  }
  if (!rc) result = crl_td_stack((int)t, steps, env->bnd);
  if (!rc && !result) rc = crl_last_error_code();
out:
  free(steps);
  if (rc || !result) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(result);
}

/* t, the env's output at key, against its spec s */
static int check_in_spec(const crl_spec *s, crl_tensor *t, const char *key,
                         int64_t step) {
  if (crl_spec_is_in(s, t)) return 0;
  char b1[160], b2[160];
  return crl__err(
      CRL_EINVAL,
      "check_env_specs: step %lld: '%s' (shape %s, %s) is not "
      "in its spec (%s, shape %s, %s)",
      (long long)step, key, CRL_SHAPE_STR(t, b1), crl_dtype_name(t->dtype),
      crl_spec_kind_name(crl_spec_kind_of(s)),
      crl_shape_str(crl_spec_ndim(s), crl_spec_shape(s), b2, sizeof b2),
      crl_dtype_name(crl_spec_dtype(s)));
}

/* check every leaf of comp against the entries of td (prefix: "" or
 * "next/"), naming the key on failure */
static int check_leaves(const crl_spec *comp, crl_td *td, const char *prefix,
                        int64_t step) {
  crl_td_keys k;
  int rc = crl_spec_keys(comp, &k);
  for (int i = 0; i < k.n && !rc; i++) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, k.keys[i]);
    crl_tensor *t = crl_td_find(td, key);
    const crl_spec *s = crl_spec_get(comp, k.keys[i]);
    if (!t) {
      rc = crl__err(CRL_EKEY,
                    "check_env_specs: step %lld: key '%s' of the spec is "
                    "missing from the env's output",
                    (long long)step, key);
    } else {
      rc = check_in_spec(s, t, key, step);
    }
  }
  crl_td_keys_free(&k);
  return rc;
}

static int check_leaf(const crl_spec *s, crl_td *td, const char *key,
                      int64_t step) {
  crl_tensor *t = crl_td_find(td, key);
  if (!t)
    return crl__err(CRL_EKEY,
                    "check_env_specs: step %lld: '%s' missing from the env's "
                    "output",
                    (long long)step, key);
  return check_in_spec(s, t, key, step);
}

int crl_check_env_specs(crl_env *env, int64_t steps, uint64_t seed) {
  if (!env) return crl__err(CRL_EINVAL, "check_env_specs: env is NULL");
  if (steps <= 0) steps = 3;
  crl_scope_begin();
  int rc = crl_env_seed(env, seed);
  crl_td *td = rc ? NULL : crl_env_reset(env, NULL);
  if (!rc && !td) rc = crl_last_error_code();
  if (!rc) rc = check_leaves(env->obs, td, "", -1);
  for (int64_t t = 0; t < steps && !rc; t++) {
    rc = crl_env_rand_step(env, td);
    if (!rc) rc = check_leaf(env->act, td, "action", t);
    if (!rc) rc = check_leaves(env->obs, td, "next/", t);
    if (!rc) rc = check_leaves(env->done, td, "next/", t);
    if (!rc) rc = check_leaf(env->rew, td, "next/reward", t);
    if (rc) break;
    crl_td *nxt = crl_td_step_mdp(td, NULL);
    if (!nxt) {
      rc = crl_last_error_code();
      break;
    }
    td = nxt;
    crl_tensor *done = crl_td_find(td, "done");
    if (done && any_true(done)) {
      rc = crl_td_set(td, "_reset", done);
      if (!rc && !crl_env_reset(env, td)) rc = crl_last_error_code();
    }
  }
  crl_scope_end();
  return rc;
}
