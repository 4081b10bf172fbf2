/* crl/registry.h — envs made by name (Gymnasium's gym.make, TorchRL's
 * GymEnv("CartPole-v1", ...)), user env factories registered by name, and
 * env plugins loaded from shared objects.
 *
 *   crl_env *env = crl_env_make("CartPole-v1", "num_envs=8,from_pixels=1");
 *
 * Options are "key=value" pairs separated by commas (spaces around keys and
 * values are ignored). Each registered env declares the keys it accepts; on
 * top of those every env accepts:
 *   serial=K     a SerialEnv of K copies (crl/envs_batched.h),
 *   parallel=K   a ParallelEnv of K copies,
 *   workers=W    its worker count (0: one per CPU),
 *   backend=B    "threads" (default) or "processes",
 * the copies being made with the other options and seeded, via
 * crl_env_seed, with the "seed" option (default 0) + copy index.
 *
 * Built in: "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
 * "MountainCarContinuous-v0", "Acrobot-v1" (options num_envs,
 * max_episode_steps, from_pixels, pixels_only, render_width, render_height,
 * seed; Pendulum-v1 also g; see crl/envs_classic.h) and
 * "PendulumStateless" (num_envs, seed, g).
 *
 * Thread-safe: the registry is guarded by a lock (makers run outside it).
 * Ownership: crl_env_make returns a new reference (crl/tensor.h rule). */
#ifndef CRL_REGISTRY_H
#define CRL_REGISTRY_H

#include "crl/env.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parsed options handed to a maker. Keys are already checked against the
 * registration's list; the getters convert values and fail with CRL_EINVAL
 * naming the env, the key and the value ("CartPole-v1: option num_envs=abc
 * is not an integer"). A missing key gives the default. */
typedef struct crl_env_kwargs crl_env_kwargs;
CRL_API bool crl_env_kwargs_has(const crl_env_kwargs *kw, const char *key);
/* BORROWED value string (valid during the maker call) or def. */
CRL_API const char *crl_env_kwargs_str(const crl_env_kwargs *kw,
                                       const char *key, const char *def);
CRL_API int crl_env_kwargs_int(const crl_env_kwargs *kw, const char *key,
                               int64_t def, int64_t *out);
CRL_API int crl_env_kwargs_double(const crl_env_kwargs *kw, const char *key,
                                  double def, double *out);
/* 1/0, true/false, yes/no, on/off (any case). */
CRL_API int crl_env_kwargs_bool(const crl_env_kwargs *kw, const char *key,
                                bool def, bool *out);

/* Makes an env from parsed options: a new reference, or NULL with an
 * error. */
typedef crl_env *(*crl_env_maker)(void *ctx, const crl_env_kwargs *kw);

typedef struct crl_env_registration {
  const char *name;   /* e.g. "MyRobot-v0": non-empty, no ',' '=' or space */
  crl_env_maker make; /* required */
  void *ctx;          /* passed to make */
  /* NULL-terminated list of the option keys make reads (NULL: none). */
  const char *const *options;
  const char *description; /* one line, optional */
} crl_env_registration;

/* Register (strings are copied). Errors: CRL_EINVAL for a bad name or a
 * NULL maker; CRL_EKEY if the name is taken (built-ins included) or an
 * option repeats or shadows serial/parallel/workers/backend. */
CRL_API int crl_env_register(const crl_env_registration *reg);
/* Remove a user registration (CRL_EKEY if absent; built-ins stay). */
CRL_API int crl_env_unregister(const char *name);
/* Names registered, built-ins first, then in registration order; free with
 * crl_td_keys_free. */
CRL_API int crl_env_list(crl_td_keys *out);
/* Option keys env `name` accepts (its own, then the batching ones); free
 * with crl_td_keys_free. CRL_EKEY listing the known names if absent. */
CRL_API int crl_env_options(const char *name, crl_td_keys *out);
/* The registration's description ("" if none); BORROWED, valid until the
 * name is unregistered. NULL + CRL_EKEY if absent. */
CRL_API const char *crl_env_description(const char *name);

/* Make env `name` with options (NULL or "" for none). Errors: CRL_EKEY for
 * an unknown name, listing the known ones; CRL_EINVAL for an unknown
 * option (naming it and listing the valid ones), a malformed item (no
 * '=', empty key) or a key given twice; the maker's own error otherwise. */
CRL_API crl_env *crl_env_make(const char *name, const char *options);

/* ---- plugins ----------------------------------------------------------------
 * A plugin is a shared object exporting
 *     int crl_env_plugin_register(int abi);
 * which checks abi == CRL_ENV_PLUGIN_ABI (returning CRL_EUNSUPPORTED
 * otherwise) and calls crl_env_register for its envs. Build it against
 * crl's headers without linking crl itself, so its crl_* symbols resolve
 * to the host's crl: libcrl.so, or an executable linked with crl_static
 * and its symbols exported (-rdynamic, whole archive). In CMake:
 *     add_library(myenv MODULE myenv.c)
 *     target_include_directories(myenv PRIVATE <crl>/include)  */
#define CRL_ENV_PLUGIN_SYMBOL "crl_env_plugin_register"
#define CRL_ENV_PLUGIN_ABI 1
typedef int (*crl_env_plugin_fn)(int abi);

/* dlopen(path) and run its crl_env_plugin_register. The library stays
 * loaded (its makers are registered). Loading the same path twice is a
 * no-op. Errors: CRL_EIO with dlopen's message; CRL_EKEY if the symbol is
 * missing; the entry's code and message if it fails. */
CRL_API int crl_env_load_plugin(const char *path);

#ifdef __cplusplus
}
#endif
#endif
