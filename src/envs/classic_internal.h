/* Shared machinery of the native classic-control envs (cartpole.c,
 * pendulum.c, mountain_car.c, acrobot.c): options, specs, batched state,
 * partial reset, time limit, from_pixels, and a vectorizable sincos. Not
 * installed. */
#ifndef CRL_ENVS_CLASSIC_INTERNAL_H
#define CRL_ENVS_CLASSIC_INTERNAL_H

#include <math.h>

#include "crl/envs_classic.h"
#include "env_internal.h"
#include "raster.h"

#define CRL__CLASSIC_MAGIC 0x434c4153u
#define CRL__CLASSIC_MAX_STATE 4

typedef struct crl__classic crl__classic;

/* What one env type provides. The step loop is the env's own (one tight
 * loop over the batch, no per-env calls); the rest is per env. */
typedef struct crl__classic_desc {
  const char *name;
  int nstate; /* float64 state values per env */
  int obs_dim;
  const double *obs_low, *obs_high; /* obs_dim bounds (float32 values) */
  int64_t n_actions;                /* > 0: one-hot int64 [n] */
  double act_low, act_high;         /* n_actions == 0: float32 [1] */
  int64_t max_steps;                /* Gymnasium's registration value */
  double screen_w, screen_h;        /* Gymnasium's render geometry */
  /* draw env i's initial state from g */
  void (*reset_one)(crl__classic *c, int64_t i, crl_rng *g);
  /* observation row of env i (obs_dim floats) */
  void (*obs_one)(const crl__classic *c, int64_t i, float *obs);
  /* step every env: read the action array (int64 one-hot rows or float32),
   * update the state, write obs rows, rewards and terminated flags */
  void (*step)(crl__classic *c, const void *action, float *obs, float *rew,
               uint8_t *term);
  /* draw env i (Gymnasium's picture, in its screen geometry) */
  void (*draw)(const crl__classic *c, int64_t i, const crl__view *v);
} crl__classic_desc;

struct crl__classic {
  uint32_t magic;
  const crl__classic_desc *d;
  int64_t n;         /* number of envs (>= 1) */
  int64_t max_steps; /* <= 0: no time limit */
  bool from_pixels, pixels_only;
  int rh, rw;
  double g;                          /* Pendulum gravity */
  double *s[CRL__CLASSIC_MAX_STATE]; /* SoA state, n doubles each */
  double *aux;    /* per-env extra (Pendulum: last torque for drawing) */
  uint8_t *flag;  /* per-env flag (CartPole: steps beyond terminated) */
  int64_t *steps; /* steps since reset */
  crl_rng *rng;   /* per-env reset streams */
  float *scratch; /* observation rows when pixels_only */
  uint8_t *tmp;   /* n bytes (terminated flags) */
  /* output pointers of the last "next" TensorDict stepped into (retained)
   * at its structure version: a step loop looks its keys up once */
  crl_td *out_td;
  unsigned out_ver;
  float *out_obs, *out_rew;
  uint8_t *out_px, *out_done, *out_term, *out_trunc;
};

/* A new env of type d with options opt (NULL: defaults) and ops (whose
 * callbacks must be the crl__classic_* functions below). */
CRL_INTERNAL crl_env *crl__classic_new(const crl__classic_desc *d,
                                       const crl_env_ops *ops,
                                       const crl_classic_options *opt);
CRL_INTERNAL int crl__classic_reset(crl_env *env, crl_td *td,
                                    const uint8_t *mask);
CRL_INTERNAL int crl__classic_step(crl_env *env, crl_td *td, crl_td *next);
CRL_INTERNAL int crl__classic_seed(crl_env *env, uint64_t seed);
CRL_INTERNAL void crl__classic_close(crl_env *env);
CRL_INTERNAL int crl__classic_render(crl_env *env, crl_tensor *pixels);

/* For tests: the classic impl of env, or NULL (error) if env is not one. */
CRL_INTERNAL crl__classic *crl__classic_of(crl_env *env);
/* Read/write env i's state (nstate doubles) and step count. Setting clears
 * the per-env flag. */
CRL_INTERNAL int crl__classic_get_state(crl_env *env, int64_t i, double *state,
                                        int64_t *steps);
CRL_INTERNAL int crl__classic_set_state(crl_env *env, int64_t i,
                                        const double *state, int64_t steps);

/* Spec helpers shared with pendulum_stateless.c: leaf spec expanded to the
 * batch, new references. */
CRL_INTERNAL crl_spec *crl__classic_expand(crl_spec *s, int bnd,
                                           const int64_t *batch);
CRL_INTERNAL crl_spec *crl__classic_done_spec(int bnd, const int64_t *batch);

/* Contiguous data of td[key] (dtype dt, numel elements) to write in place;
 * an entry that is missing or of another layout is replaced by a zero
 * tensor of its spec: comp's spec at key (comp: the observation or done
 * spec), or the reward spec when comp is NULL. NULL + error on failure. */
CRL_INTERNAL void *crl__env_out_data(crl_env *env, crl_td *td, const char *key,
                                     const crl_spec *comp, crl_dtype dt,
                                     int64_t numel);

/* ---- sin and cos without libm, so the step loops vectorize --------------
 * Cody-Waite reduction by pi/2 (three parts, exact quotient for |x| below
 * CRL__SINCOS_LIMIT) and fdlibm's kernel polynomials on [-pi/4, pi/4]:
 * within 1-2 ulp of libm. Loops whose angles are not known to be small
 * check crl__all_small first and fall back to libm. */
#define CRL__SINCOS_LIMIT 1048576.0

static inline void crl__sincos(double x, double *s, double *c) {
  const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
  double t = x * 0.63661977236758134308 + magic;
  double k = t - magic;
  union {
    double d;
    int64_t i;
  } ut = {t};
  int64_t q = ut.i;
  double r = x - k * 1.57079632673412561417e+00;
  r = r - k * 6.07710050630396597660e-11;
  r = r - k * 2.02226624879595063154e-21;
  double z = r * r;
  double ps = -1.66666666666666324348e-01 +
              z * (8.33333333332248946124e-03 +
                   z * (-1.98412698298579493134e-04 +
                        z * (2.75573137070700676789e-06 +
                             z * (-2.50507602534068634195e-08 +
                                  z * 1.58969099521155010221e-10))));
  double sr = r + z * r * ps;
  double pc = z * (4.16666666666666019037e-02 +
                   z * (-1.38888888888741095749e-03 +
                        z * (2.48015872894767294178e-05 +
                             z * (-2.75573143513906633035e-07 +
                                  z * (2.08757232129817482790e-09 +
                                       z * -1.13596475577881948265e-11)))));
  double hz = 0.5 * z, w = 1.0 - hz;
  double cr = w + (((1.0 - w) - hz) + z * pc);
  double so = (q & 1) ? cr : sr;
  double co = (q & 1) ? sr : cr;
  *s = (q & 2) ? -so : so;
  *c = ((q + 1) & 2) ? -co : co;
}

/* Python's ((x + pi) % (2 pi)) - pi with libm's fmod: the pendulums' angle
 * wrap (Pendulum's fast step has its own libm-free version). */
static inline double crl__angle_normalize(double x) {
  const double two_pi = 2 * M_PI;
  double r = fmod(x + M_PI, two_pi);
  if (r != 0) {
    if (r < 0) r += two_pi;
  } else {
    r = 0.0;
  }
  return r - M_PI;
}

/* True if every |a[i]| < CRL__SINCOS_LIMIT (NaN counts as small: its sincos
 * is NaN either way). */
static inline bool crl__all_small(const double *a, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; i++)
    bad |= fabs(a[i]) >= CRL__SINCOS_LIMIT;
  return !bad;
}

#endif
