/* crl/env.h — the environment interface (TorchRL's EnvBase) and rollouts.
 *
 * An env is a batch of N environments (batch size [N], or [] for a single
 * one) that speaks TensorDict: reset() fills a TensorDict with the initial
 * observation entries; step(td) reads td["action"] and writes the results
 * under "next/": next/observation (and other observation keys),
 * next/reward, next/done, next/terminated, next/truncated. Every env
 * publishes specs: observation_spec (composite), action_spec (leaf),
 * reward_spec (leaf), done_spec (composite with done/terminated/truncated).
 *
 * Anyone can implement an env in C by filling a crl_env_ops table and
 * calling crl_env_new (see docs/envs.md). The generic layer validates the
 * action against the spec before the env sees it, preallocates the
 * TensorDicts the env writes into (so a step loop allocates nothing), and
 * implements partial reset, random steps, rollouts and spec checks.
 *
 * Ownership: envs are refcounted (crl_env_retain/release) and follow the
 * rule of crl/tensor.h; spec accessors return BORROWED specs. */
#ifndef CRL_ENV_H
#define CRL_ENV_H

#include "crl/random.h"
#include "crl/specs.h"
#include "crl/td.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_env crl_env;

/* What an env implementation provides. Only reset and step are required. */
typedef struct crl_env_ops {
  const char *name;
  /* Reset the envs where mask is true (mask: bool, numel = number of envs,
   * or NULL for all) and write their observation entries into td, whose
   * entries are preallocated from observation_spec (write in place; leave
   * the other envs' rows untouched). */
  int (*reset)(crl_env *env, crl_td *td, const uint8_t *mask);
  /* Read the validated action from td ("action") and write the results in
   * place into next (preallocated: observation keys, "reward", "done",
   * "terminated", "truncated"). */
  int (*step)(crl_env *env, crl_td *td, crl_td *next);
  /* Reseed the env's own generator(s). Optional (default: the generic
   * generator crl_env_rng() is reseeded). */
  int (*seed)(crl_env *env, uint64_t seed);
  /* Free the implementation's state (impl). Optional. */
  void (*close)(crl_env *env);
  /* Render RGB frames into pixels (uint8 [batch..., H, W, 3], preallocated).
   * Optional. */
  int (*render)(crl_env *env, crl_tensor *pixels);
} crl_env_ops;

/* ---- for implementers -------------------------------------------------- */

/* A new env with the given ops, implementation state (owned: ops->close
 * frees it) and batch size. Set its specs before use. */
CRL_API crl_env *crl_env_new(const crl_env_ops *ops, void *impl, int bnd,
                             const int64_t *batch);
CRL_API void *crl_env_impl(const crl_env *env);
/* The env's generator (seeded by crl_env_seed). BORROWED. */
CRL_API crl_rng *crl_env_rng(crl_env *env);
/* Set a spec (retained; replaces the old one). The leaf action/reward specs
 * and the composite observation/done specs must have the env's batch size
 * as leading dims (use crl_spec_expand). */
CRL_API int crl_env_set_observation_spec(crl_env *env, crl_spec *spec);
CRL_API int crl_env_set_action_spec(crl_env *env, crl_spec *spec);
CRL_API int crl_env_set_reward_spec(crl_env *env, crl_spec *spec);
CRL_API int crl_env_set_done_spec(crl_env *env, crl_spec *spec);
/* Validate actions before each step (default on): wrong shape, dtype, a
 * NaN or a discrete index out of range fail with a clear error and leave
 * the env unchanged; continuous actions beyond their bounds are passed on
 * (envs clip where their reference clips). */
CRL_API void crl_env_set_validate(crl_env *env, bool validate);
/* Declare that ops->render draws frames of height x width (enables
 * crl_env_render and from_pixels). Errors: CRL_EINVAL for sizes outside
 * 1..4096. */
CRL_API int crl_env_set_render_size(crl_env *env, int height, int width);

/* ---- for users ------------------------------------------------------------
 */

CRL_API crl_env *crl_env_retain(crl_env *env);
CRL_API void crl_env_release(crl_env *env);
CRL_API const char *crl_env_name(const crl_env *env);
CRL_API int crl_env_batch_ndim(const crl_env *env);
CRL_API const int64_t *crl_env_batch_size(const crl_env *env);
/* Number of envs (product of the batch size). */
CRL_API int64_t crl_env_numel(const crl_env *env);
CRL_API crl_device crl_env_device(const crl_env *env);
/* BORROWED specs. */
CRL_API crl_spec *crl_env_observation_spec(const crl_env *env);
CRL_API crl_spec *crl_env_action_spec(const crl_env *env);
CRL_API crl_spec *crl_env_reward_spec(const crl_env *env);
CRL_API crl_spec *crl_env_done_spec(const crl_env *env);

CRL_API int crl_env_seed(crl_env *env, uint64_t seed);

/* Reset every env: a new TensorDict with the observation entries and
 * done/terminated/truncated set to false. If td is non-NULL it is reset in
 * place and returned (retained); if it holds a bool "_reset" entry
 * ([batch...] or [batch..., 1]) only those envs are reset. */
CRL_API crl_td *crl_env_reset(crl_env *env, crl_td *td);
/* One step: validates td["action"], writes td["next/..."] in place (the
 * "next" TensorDict is created on the first call and reused). Returns 0 or
 * an error; on error the env state and td are unchanged. */
CRL_API int crl_env_step(crl_env *env, crl_td *td);
/* Write a random action from the action spec (drawn from the env's
 * generator) into td, then step. */
CRL_API int crl_env_rand_step(crl_env *env, crl_td *td);

/* A policy writes "action" (and anything else) into td. It must not keep
 * td. Returns 0 or an error code. */
typedef int (*crl_policy_fn)(void *ctx, crl_td *td);

typedef struct crl_rollout_options {
  int64_t max_steps;
  crl_policy_fn policy; /* NULL: random actions from the action spec */
  void *policy_ctx;
  bool break_when_any_done; /* stop after the step where any env is done */
  bool auto_reset;          /* reset first (else td must be given) */
  crl_td *td;               /* initial TensorDict when !auto_reset */
} crl_rollout_options;
/* Run up to max_steps steps and stack them along a new last batch dim:
 * the result has batch [batch..., T], each step's entries and its next/
 * entries (TorchRL's rollout). Done envs are reset between steps when
 * break_when_any_done is false. */
CRL_API crl_td *crl_env_rollout(crl_env *env, const crl_rollout_options *opt);

/* TorchRL's check_env_specs: resets, runs a short random rollout and checks
 * every entry against the specs; fails with the key and the disagreement. */
CRL_API int crl_check_env_specs(crl_env *env, int64_t steps, uint64_t seed);

/* Render the current state (RGB uint8 [batch..., H, W, 3]) if the env can.
 * CRL_EUNSUPPORTED otherwise. */
CRL_API crl_tensor *crl_env_render(crl_env *env);

#ifdef __cplusplus
}
#endif
#endif
