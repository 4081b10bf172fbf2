/* A tiny env plugin for tests/envs/test_registry.c, built as a MODULE
 * library that does not link crl: its crl_* symbols resolve to the host's.
 * Registers "PluginCounter-v0" (options start, step_size): a counter moved
 * by a discrete action in {0, 1, 2} (-1, 0, +1 times step_size), reward the
 * counter, truncated after 10 steps. Built with CRL_PLUGIN_NO_ENTRY it
 * lacks the entry symbol; with CRL_PLUGIN_FAIL its entry fails. */
#include <stdlib.h>

#include "crl/crl.h"
#include "crl/registry.h"

typedef struct counter {
  float start, step_size, value;
  int steps;
} counter;

static int c_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  (void)mask;
  counter *c = crl_env_impl(env);
  c->value = c->start;
  c->steps = 0;
  crl_tensor *o = crl_td_get(td, "observation");
  if (!o) return crl_last_error_code();
  *(float *)o->data = c->value;
  return 0;
}

static int c_step(crl_env *env, crl_td *td, crl_td *next) {
  counter *c = crl_env_impl(env);
  int64_t a = *(int64_t *)crl_td_get(td, "action")->data;
  c->value += (float)(a - 1) * c->step_size;
  c->steps++;
  *(float *)crl_td_get(next, "observation")->data = c->value;
  *(float *)crl_td_get(next, "reward")->data = c->value;
  uint8_t tr = c->steps >= 10;
  *(uint8_t *)crl_td_get(next, "done")->data = tr;
  *(uint8_t *)crl_td_get(next, "terminated")->data = 0;
  *(uint8_t *)crl_td_get(next, "truncated")->data = tr;
  return 0;
}

static void c_close(crl_env *env) { free(crl_env_impl(env)); }

static const crl_env_ops counter_ops = {.name = "PluginCounter-v0",
                                        .reset = c_reset,
                                        .step = c_step,
                                        .close = c_close};

__attribute__((unused)) static crl_env *make_counter(void *ctx,
                                                     const crl_env_kwargs *kw) {
  (void)ctx;
  double start, step;
  if (crl_env_kwargs_double(kw, "start", 0, &start) ||
      crl_env_kwargs_double(kw, "step_size", 1, &step))
    return NULL;
  counter *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->start = (float)start;
  c->step_size = (float)step;
  crl_env *env = crl_env_new(&counter_ops, c, 0, NULL);
  if (!env) {
    free(c);
    return NULL;
  }
  int64_t one = 1;
  crl_scope_begin();
  crl_spec *obs = crl_spec_composite(0, NULL);
  crl_spec *done = crl_spec_composite(0, NULL);
  crl_spec *flag = crl_spec_discrete(2, CRL_BOOL, 1, &one);
  int rc = crl_spec_set(obs, "observation",
                        crl_spec_unbounded(CRL_FLOAT32, 1, &one));
  if (!rc) rc = crl_spec_set(done, "done", flag);
  if (!rc) rc = crl_spec_set(done, "terminated", flag);
  if (!rc) rc = crl_spec_set(done, "truncated", flag);
  if (!rc) rc = crl_env_set_observation_spec(env, obs);
  if (!rc)
    rc = crl_env_set_action_spec(env, crl_spec_discrete(3, CRL_INT64, 1, &one));
  if (!rc)
    rc = crl_env_set_reward_spec(env, crl_spec_unbounded(CRL_FLOAT32, 1, &one));
  if (!rc) rc = crl_env_set_done_spec(env, done);
  crl_scope_end();
  return rc ? NULL : env;
}

#ifndef CRL_PLUGIN_NO_ENTRY
__attribute__((visibility("default"))) int crl_env_plugin_register(int abi) {
  if (abi != CRL_ENV_PLUGIN_ABI)
    return crl_error(CRL_EUNSUPPORTED, "PluginCounter: ABI %d, built for %d",
                     abi, CRL_ENV_PLUGIN_ABI);
#ifdef CRL_PLUGIN_FAIL
  return crl_error(CRL_EIO, "PluginCounter: simulator not installed");
#endif
  static const char *const opts[] = {"start", "step_size", NULL};
  crl_env_registration r = {"PluginCounter-v0", make_counter, NULL, opts,
                            "a counter env from a plugin"};
  return crl_env_register(&r);
}
#endif
