/* env.* workloads: env steps per second with a random policy.
 *   env.a  CartPole-v1, one env, crl_env_step on a preallocated td; also
 *          the raw dynamics' own cost (target: generic <= 3x raw)
 *   env.b  CartPole-v1, 1024 envs in one env object, auto-reset of the
 *          done envs (target > 50 M steps/s)
 *   env.c  ParallelEnv, 2 workers x 512 CartPole envs, auto-reset
 *   env.d  Pendulum-v1 from pixels 64x64, one env (target >= 20,000
 *          frames/s)
 * Reference: TorchRL v0.0.5 with a pure-torch CartPole: 1,118 steps/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crl/crl.h"
#include "crl/envs_batched.h"
#include "crl/envs_classic.h"
#include "envs/classic_internal.h"
#include "harness.h"

#define TORCHRL_REF 1118.0

/* a random policy writing one-hot or Box actions in place */
typedef struct loop_ctx {
  crl_env *env;
  crl_td *td;
  crl_tensor *action; /* preallocated, in td */
  crl_tensor *done;   /* td's next/done (after the first step) */
  crl_rng g;
  float *u;      /* scratch uniforms */
  int64_t n;     /* envs */
  int64_t nact;  /* one-hot width, 0 for Box */
  double lo, hi; /* Box bounds */
  int64_t steps;
  uint64_t state; /* xorshift for the one-env loop */
} loop_ctx;

static void rand_actions(loop_ctx *c) {
  if (c->nact) {
    int64_t *a = c->action->data;
    if (c->n == 1) { /* a cheap generator for the one-env loop */
      c->state ^= c->state << 13;
      c->state ^= c->state >> 7;
      c->state ^= c->state << 17;
      int k = (int)(c->state >> 63);
      a[0] = k == 0;
      a[1] = k == 1;
      return;
    }
    crl_rng_fill_uniform_f32(&c->g, c->u, c->n, 0, 1);
    for (int64_t i = 0; i < c->n; i++) {
      int k = c->u[i] < 0.5f;
      a[2 * i] = k == 0;
      a[2 * i + 1] = k == 1;
    }
  } else {
    crl_rng_fill_uniform_f32(&c->g, c->action->data, c->n, (float)c->lo,
                             (float)c->hi);
  }
}

static void loop_init(loop_ctx *c, crl_env *env, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->env = env;
  c->n = crl_env_numel(env);
  crl_spec *as = crl_env_action_spec(env);
  c->nact = crl_spec_kind_of(as) == CRL_SPEC_ONE_HOT ? crl_spec_n(as) : 0;
  if (!c->nact) {
    c->lo = crl_tensor_get_flat(crl_spec_low(as), 0);
    c->hi = crl_tensor_get_flat(crl_spec_high(as), 0);
  }
  crl_rng_seed(&c->g, seed);
  c->state = seed * 2654435761u + 1;
  c->u = malloc(sizeof(float) * (size_t)c->n);
  crl_env_seed(env, seed);
  c->td = crl_env_reset(env, NULL);
  c->action = crl_spec_zero(as, 0, NULL);
  crl_td_set(c->td, "action", c->action);
  rand_actions(c);
  crl_env_step(env, c->td);
  c->done = crl_td_find(c->td, "next/done");
}

/* td and action belong to the caller's scope */
static void loop_free(loop_ctx *c) { free(c->u); }

/* one step of every env, then reset the envs that are done */
static void loop_step(void *vctx) {
  loop_ctx *c = vctx;
  rand_actions(c);
  if (crl_env_step(c->env, c->td)) {
    fprintf(stderr, "env step failed: %s\n", crl_last_error());
    exit(1);
  }
  const uint8_t *d = c->done->data;
  uint8_t any = 0;
  for (int64_t i = 0; i < c->n; i++)
    any |= d[i];
  if (any) {
    crl_scope_begin();
    if (c->n > 1) crl_td_set(c->td, "_reset", c->done);
    crl_td *r = crl_env_reset(c->env, c->td);
    if (!r) {
      fprintf(stderr, "env reset failed: %s\n", crl_last_error());
      exit(1);
    }
    crl_scope_end();
  }
  c->steps += c->n;
}

/* ---- env.a --------------------------------------------------------------- */

typedef struct raw_ctx {
  crl__classic *c;
  int64_t action[2];
  float obs[4], rew;
  uint64_t state;
} raw_ctx;

static void raw_step(void *vctx) {
  raw_ctx *r = vctx;
  r->state ^= r->state << 13;
  r->state ^= r->state >> 7;
  r->state ^= r->state << 17;
  int k = (int)(r->state >> 63);
  r->action[0] = k == 0;
  r->action[1] = k == 1;
  r->c->d->step(r->c, r->action, r->obs, &r->rew, r->c->tmp);
  if (r->c->tmp[0]) { /* the same reset the env does */
    r->c->d->reset_one(r->c, 0, &r->c->rng[0]);
    r->c->steps[0] = 0;
  }
  bench_sink(r->obs[0]);
}

BENCH("env.a", bench_env_a) {
  crl_scope_begin();
  crl_env *env = crl_cartpole_new(NULL);
  loop_ctx c;
  loop_init(&c, env, 1);
  double ns = bench_ns(loop_step, &c);
  crl_env *env2 = crl_cartpole_new(NULL);
  crl_env_reset(env2, NULL);
  raw_ctx r = {.c = crl__classic_of(env2), .state = 7};
  double raw = bench_ns(raw_step, &r);
  char p[400];
  snprintf(p, sizeof p,
           "\"env\":\"CartPole-v1\",\"num_envs\":1,\"api\":\"crl_env_step\","
           "\"ns_per_step\":%.1f,\"raw_ns_per_step\":%.1f,"
           "\"generic_over_raw\":%.2f,\"target_max_ratio\":3,"
           "\"vs_torchrl_0.0.5\":%.0f",
           ns, raw, ns / raw, 1e9 / ns / TORCHRL_REF);
  bench_emit("env.a", "steps/s", 1e9 / ns, p);
  loop_free(&c);
  crl_scope_end();
}

/* ---- env.b --------------------------------------------------------------- */

BENCH("env.b", bench_env_b) {
  crl_scope_begin();
  crl_env *env = crl_cartpole_new(&(crl_classic_options){.num_envs = 1024});
  loop_ctx c;
  loop_init(&c, env, 2);
  double ns = bench_ns(loop_step, &c);
  char p[300];
  snprintf(p, sizeof p,
           "\"env\":\"CartPole-v1\",\"num_envs\":1024,\"auto_reset\":true,"
           "\"ns_per_batch_step\":%.0f,\"target_min\":5e7,"
           "\"vs_torchrl_0.0.5\":%.0f",
           ns, 1024e9 / ns / TORCHRL_REF);
  bench_emit("env.b", "steps/s", 1024e9 / ns, p);
  loop_free(&c);
  crl_scope_end();
}

/* ---- env.c --------------------------------------------------------------- */

static crl_env *cartpole512(void *ctx, int i) {
  (void)ctx;
  (void)i;
  return crl_cartpole_new(&(crl_classic_options){.num_envs = 512});
}

BENCH("env.c", bench_env_c) {
  crl_scope_begin();
  crl_batched_options o = {.num_workers = 2};
  crl_env *env = crl_parallel_env_new(2, cartpole512, NULL, &o);
  if (!env) {
    fprintf(stderr, "env.c: %s\n", crl_last_error());
    crl_scope_end();
    return;
  }
  loop_ctx c;
  loop_init(&c, env, 3);
  double ns = bench_ns(loop_step, &c);
  /* the same envs stepped serially, for the speed-up */
  crl_env *ser = crl_serial_env_new(2, cartpole512, NULL, NULL);
  loop_ctx s;
  loop_init(&s, ser, 3);
  double ns_ser = bench_ns(loop_step, &s);
  char p[300];
  snprintf(p, sizeof p,
           "\"env\":\"ParallelEnv(2 x CartPole-v1 num_envs=512)\","
           "\"workers\":2,\"backend\":\"threads\",\"auto_reset\":true,"
           "\"ns_per_batch_step\":%.0f,\"serial_env_steps_per_s\":%.4g,"
           "\"cpus\":%ld",
           ns, 1024e9 / ns_ser, sysconf(_SC_NPROCESSORS_ONLN));
  bench_emit("env.c", "steps/s", 1024e9 / ns, p);
  loop_free(&c);
  loop_free(&s);
  crl_batched_env_close(env);
  crl_scope_end();
}

/* ---- env.d --------------------------------------------------------------- */

BENCH("env.d", bench_env_d) {
  crl_scope_begin();
  crl_env *env = crl_pendulum_new(&(crl_classic_options){
      .from_pixels = true, .render_width = 64, .render_height = 64});
  loop_ctx c;
  loop_init(&c, env, 4);
  double ns = bench_ns(loop_step, &c);
  char p[300];
  snprintf(p, sizeof p,
           "\"env\":\"Pendulum-v1\",\"from_pixels\":true,\"size\":[64,64],"
           "\"num_envs\":1,\"ns_per_frame\":%.0f,\"target_min\":20000",
           ns);
  bench_emit("env.d", "frames/s", 1e9 / ns, p);
  loop_free(&c);
  crl_scope_end();
}
