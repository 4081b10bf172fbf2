/* Helpers shared by the batched-env tests (test_serial_env.c,
 * test_parallel_env.c): factories and a tiny env that can fail, crash or
 * hang on request. */
#ifndef CRL_BATCHED_TEST_UTIL_H
#define CRL_BATCHED_TEST_UTIL_H

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

#include "crl/envs_batched.h"
#include "crl/envs_classic.h"

/* ---- factories ----------------------------------------------------------- */

typedef struct classic_ctx {
  const char *name;
  crl_classic_options opt;
} classic_ctx;

static inline crl_env *classic_factory(void *ctx, int index) {
  (void)index;
  classic_ctx *c = ctx;
  return crl_classic_make(c->name, &c->opt);
}

/* ---- Tiny: a counter env ---------------------------------------------------
 * batch [] ; observation float32 [2]: (sum of actions, a draw from the
 * env's generator) ; action float32 [1] in [-10, 10] ; reward = the sum ;
 * done after 4 steps. Action 7 fails with a message, 9 kills the process
 * (SIGKILL), 8 sleeps 30 s, 6 replaces next/observation by a new tensor
 * instead of writing in place. */
typedef struct tiny {
  int index;
  float sum;
  int steps;
} tiny;

static inline int tiny_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  (void)mask;
  tiny *t = crl_env_impl(env);
  t->sum = 0;
  t->steps = 0;
  crl_tensor *o = crl_td_get(td, "observation");
  if (!o) return crl_last_error_code();
  float *p = o->data;
  p[0] = 0;
  p[1] = (float)crl_rng_uniform(crl_env_rng(env));
  return 0;
}

static inline int tiny_step(crl_env *env, crl_td *td, crl_td *next) {
  tiny *t = crl_env_impl(env);
  float a = ((float *)crl_td_get(td, "action")->data)[0];
  if (a == 7.0f)
    return crl_error(CRL_EINVAL, "tiny env %d: boom (action 7)", t->index);
  if (a == 9.0f) raise(SIGKILL);
  if (a == 8.0f) sleep(30);
  t->sum += a;
  t->steps++;
  crl_tensor *o = crl_td_get(next, "observation");
  if (a == 6.0f) { /* misbehave: a new tensor instead of in place */
    o = crl_zeros(CRL_FLOAT32, 1, (int64_t[]){2});
    crl_td_set(next, "observation", o);
  }
  float *p = o->data;
  p[0] = t->sum;
  p[1] = (float)crl_rng_uniform(crl_env_rng(env));
  *(float *)crl_td_get(next, "reward")->data = t->sum;
  uint8_t d = t->steps >= 4;
  *(uint8_t *)crl_td_get(next, "done")->data = d;
  *(uint8_t *)crl_td_get(next, "terminated")->data = d;
  *(uint8_t *)crl_td_get(next, "truncated")->data = 0;
  return 0;
}

static inline void tiny_close(crl_env *env) { free(crl_env_impl(env)); }

static const crl_env_ops tiny_ops = {.name = "Tiny",
                                     .reset = tiny_reset,
                                     .step = tiny_step,
                                     .close = tiny_close};

static inline crl_env *tiny_new(int index) {
  tiny *t = calloc(1, sizeof *t);
  t->index = index;
  crl_env *env = crl_env_new(&tiny_ops, t, 0, NULL);
  if (!env) {
    free(t);
    return NULL;
  }
  crl_scope_begin();
  int64_t two = 2, one = 1;
  crl_spec *obs = crl_spec_composite(0, NULL);
  crl_spec_set(obs, "observation", crl_spec_unbounded(CRL_FLOAT32, 1, &two));
  crl_env_set_observation_spec(env, obs);
  crl_env_set_action_spec(env, crl_spec_bounded(CRL_FLOAT32, 1, &one, -10, 10));
  crl_env_set_reward_spec(env, crl_spec_unbounded(CRL_FLOAT32, 1, &one));
  crl_spec *done = crl_spec_composite(0, NULL);
  crl_spec *b = crl_spec_discrete(2, CRL_BOOL, 1, &one);
  crl_spec_set(done, "done", b);
  crl_spec_set(done, "terminated", b);
  crl_spec_set(done, "truncated", b);
  crl_env_set_done_spec(env, done);
  crl_scope_end();
  return env;
}

static inline crl_env *tiny_factory(void *ctx, int index) {
  (void)ctx;
  return tiny_new(index);
}

/* factory failing for index *ctx */
static inline crl_env *failing_factory(void *ctx, int index) {
  if (index == *(int *)ctx) {
    crl_error(CRL_EIO, "factory: no simulator license for env %d", index);
    return NULL;
  }
  return tiny_new(index);
}

/* a td with batch [n] and a float32 [n, 1] action filled with v */
static inline crl_td *tiny_action_td(int64_t n, float v) {
  crl_td *td = crl_td_new(1, &n);
  crl_tensor *a = crl_full(CRL_FLOAT32, 2, (int64_t[]){n, 1}, v);
  crl_td_set(td, "action", a);
  return td;
}

/* ---- leak checks --------------------------------------------------------- */

/* /dev/shm/crl-<pid>-* files of this process */
static inline int shm_files_of_self(void) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "crl-%d-", (int)getpid());
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
  closedir(d);
  return n;
}

static inline int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

#endif
