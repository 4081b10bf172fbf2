/* crl/envs_classic.h — native batched classic-control environments:
 * Gymnasium's CartPole-v1, Pendulum-v1, MountainCar-v0,
 * MountainCarContinuous-v0 and Acrobot-v1, plus the stateless Pendulum of
 * TorchRL's tutorial "Pendulum: writing your environment and transforms
 * with TorchRL".
 *
 * Each env is a batch of N copies stepped in one tight loop over
 * structure-of-arrays state, with Gymnasium's equations, constants,
 * integrators, reset distributions, rewards, termination and time limit
 * (computed in float64 as Gymnasium does; observations float32). They speak
 * TorchRL's GymEnv conventions:
 *   - "observation": float32 [batch..., D], bounded by Gymnasium's
 *     observation space (Pendulum: [cos th, sin th, thdot]);
 *   - "action": discrete spaces are one-hot int64 [batch..., n] (CartPole 2,
 *     MountainCar 3, Acrobot 3); Box spaces are bounded float32
 *     [batch..., 1] (Pendulum [-2, 2], MountainCarContinuous [-1, 1]),
 *     values beyond the bounds clipped where Gymnasium clips them;
 *   - "reward" float32 [batch..., 1]; "done", "terminated", "truncated"
 *     bool [batch..., 1], truncated once an episode has lasted
 *     max_episode_steps steps, done = terminated | truncated;
 *   - with from_pixels, "pixels": uint8 [batch..., H, W, 3] frames of
 *     Gymnasium's drawing scaled to H x W, rendered after every reset and
 *     step (pixels_only drops "observation").
 * Random draws (reset states) come from one sub-stream of the env's
 * generator per env (crl_rng_split(crl_env_rng(env), i) at seeding), so a
 * seed reproduces trajectories exactly, whatever the batch size.
 *
 * Ownership: constructors return a new reference (crl/tensor.h rule). */
#ifndef CRL_ENVS_CLASSIC_H
#define CRL_ENVS_CLASSIC_H

#include "crl/env.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Zero-initialised options (or NULL) give the defaults. */
typedef struct crl_classic_options {
  /* Batch [num_envs]; 0 means a single env with batch []. */
  int64_t num_envs;
  /* Time limit: 0 means Gymnasium's registration value (CartPole-v1 500,
   * Pendulum-v1 200, MountainCar-v0 200, MountainCarContinuous-v0 999,
   * Acrobot-v1 500); -1 means none. */
  int64_t max_episode_steps;
  /* Add a "pixels" observation; with pixels_only, drop "observation". */
  bool from_pixels;
  bool pixels_only;
  /* Frame size for from_pixels and crl_env_render (0 means 64). */
  int render_width, render_height;
  /* Seed of the env's generator (crl_env_seed). */
  uint64_t seed;
  /* Pendulum gravity g (0 means Gymnasium's default 10.0). */
  double g;
} crl_classic_options;

/* Errors: CRL_EINVAL for a negative num_envs, max_episode_steps < -1, a
 * render size outside 1..4096, pixels_only without from_pixels. */
CRL_API crl_env *crl_cartpole_new(const crl_classic_options *opt);
CRL_API crl_env *crl_pendulum_new(const crl_classic_options *opt);
CRL_API crl_env *crl_mountain_car_new(const crl_classic_options *opt);
CRL_API crl_env *
crl_mountain_car_continuous_new(const crl_classic_options *opt);
CRL_API crl_env *crl_acrobot_new(const crl_classic_options *opt);
/* By Gymnasium id: "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
 * "MountainCarContinuous-v0", "Acrobot-v1", "PendulumStateless" (CRL_EKEY
 * listing the names for another). */
CRL_API crl_env *crl_classic_make(const char *name,
                                  const crl_classic_options *opt);

/* ---- stateless Pendulum (TorchRL's tutorial env) ---------------------------
 * The whole state lives in the TensorDict: "th", "thdot" (float32
 * [batch...]) and the parameters "params/g", "params/m", "params/l",
 * "params/dt", "params/max_speed", "params/max_torque" (float32
 * [batch...]). step() reads them (and "action", float32 [batch..., 1],
 * clipped to +-params/max_torque) from the root and writes next/th,
 * next/thdot, next/params/..., next/reward (Gymnasium's Pendulum cost) and
 * next/done, terminated, truncated (always false: no time limit; the env
 * keeps no step count). reset() keeps the params of a TensorDict given to
 * crl_env_reset and fills the defaults (gen_params) for envs whose params
 * are absent (all zero); th ~ U[-pi, pi), thdot ~ U[-1, 1).
 * Options used: num_envs, seed, g; from_pixels and max_episode_steps > 0
 * are CRL_EUNSUPPORTED. */
CRL_API crl_env *crl_pendulum_stateless_new(const crl_classic_options *opt);
/* TorchRL tutorial's gen_params: a TensorDict of batch `batch` with
 * "params/..." filled with max_speed 8, max_torque 2, dt 0.05, g, m 1,
 * l 1 (g 0 means 10). */
CRL_API crl_td *crl_pendulum_gen_params(double g, int bnd,
                                        const int64_t *batch);

#ifdef __cplusplus
}
#endif
#endif
