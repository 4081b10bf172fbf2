/* Pendulum-v1 (Gymnasium's classic_control/pendulum.py), batched.
 *
 * State (float64): th (0 is upright), thdot. max_speed 8, max_torque 2,
 * dt 0.05, g (default 10), m 1, l 1. The torque is clipped to [-2, 2];
 * cost = angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2 on the state
 * before the step, reward = -cost; thdot += (3g/(2l) sin th + 3/(m l^2) u)
 * dt, clipped to [-8, 8]; th += thdot dt. Never terminates (time limit
 * 200). Reset: th ~ U(-pi, pi), thdot ~ U(-1, 1). Observation
 * [cos th, sin th, thdot]. */
/* No FP traps are ever enabled: this lets GCC if-convert the clipping so
 * the step loop vectorizes (values are unchanged). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "classic_internal.h"

#define MAX_SPEED 8.0
#define MAX_TORQUE 2.0
#define DT 0.05
#define M 1.0
#define L 1.0

static const double obs_high[3] = {1.0, 1.0, MAX_SPEED};
static const double obs_low[3] = {-1.0, -1.0, -MAX_SPEED};

/* Python's ((x + pi) % (2 pi)) - pi (a floored modulo), without libm so
 * the step loop vectorizes: the quotient's floor (valid where the fast sincos
 * is), then at most one correction; with a fused multiply-add y - k * 2pi is
 * exact, as fmod. */
static inline double angle_normalize(double x) {
  const double two_pi = 2 * M_PI;
  const double magic = 6755399441055744.0; /* 1.5 * 2^52: round */
  double y = x + M_PI;
  double q = y / two_pi;
  double k = (q + magic) - magic; /* |q| < 2^51 for small angles */
  k = k > q ? k - 1.0 : k;        /* floor */
  double r = y - k * two_pi;
  r = r < 0 ? r + two_pi : r;
  r = r >= two_pi ? r - two_pi : r;
  return r - M_PI;
}

static void pd_reset_one(crl__classic *c, int64_t i, crl_rng *g) {
  c->s[0][i] = -M_PI + (M_PI - -M_PI) * crl_rng_uniform(g);
  c->s[1][i] = -1.0 + (1.0 - -1.0) * crl_rng_uniform(g);
}

static void pd_obs_one(const crl__classic *c, int64_t i, float *o) {
  double th = c->s[0][i];
  o[0] = (float)cos(th);
  o[1] = (float)sin(th);
  o[2] = (float)c->s[1][i];
}

static inline __attribute__((always_inline)) void
pd_step_impl(crl__classic *c, const float *restrict a, float *restrict obs,
             float *restrict rew, uint8_t *restrict term, bool fast) {
  double *restrict TH = c->s[0], *restrict THD = c->s[1];
  double *restrict last_u = c->aux;
  const double g = c->g;
  const int64_t n = c->n;
  /* the torques as float64 first: GCC 12 does not if-convert a loop that
   * widens float to double */
  for (int64_t i = 0; i < n; i++)
    last_u[i] = a[i];
  for (int64_t i = 0; i < n; i++) {
    double th = TH[i], thdot = THD[i];
    double u = last_u[i];
    u = u < -MAX_TORQUE ? -MAX_TORQUE : u;
    u = u > MAX_TORQUE ? MAX_TORQUE : u;
    last_u[i] = u;
    double an = fast ? angle_normalize(th) : crl__angle_normalize(th);
    double costs = an * an + 0.1 * (thdot * thdot) + 0.001 * (u * u);
    double s, co;
    if (fast)
      crl__sincos(th, &s, &co);
    else
      s = sin(th);
    double newthdot =
        thdot + (3 * g / (2 * L) * s + 3.0 / (M * (L * L)) * u) * DT;
    newthdot = newthdot < -MAX_SPEED ? -MAX_SPEED : newthdot;
    newthdot = newthdot > MAX_SPEED ? MAX_SPEED : newthdot;
    double newth = th + newthdot * DT;
    TH[i] = newth;
    THD[i] = newthdot;
    if (fast)
      crl__sincos(newth, &s, &co);
    else {
      s = sin(newth);
      co = cos(newth);
    }
    obs[3 * i + 0] = (float)co;
    obs[3 * i + 1] = (float)s;
    obs[3 * i + 2] = (float)newthdot;
    rew[i] = (float)-costs;
    term[i] = 0;
  }
}

static void pd_step_fast(crl__classic *c, const float *a, float *obs,
                         float *rew, uint8_t *term) {
  pd_step_impl(c, a, obs, rew, term, true);
}

static void pd_step_libm(crl__classic *c, const float *a, float *obs,
                         float *rew, uint8_t *term) {
  pd_step_impl(c, a, obs, rew, term, false);
}

static void pd_step(crl__classic *c, const void *action, float *obs, float *rew,
                    uint8_t *term) {
  /* th moves by at most 8 * 0.05 per step: checking before is enough */
  if (crl__all_small(c->s[0], c->n))
    pd_step_fast(c, action, obs, rew, term);
  else
    pd_step_libm(c, action, obs, rew, term);
}

/* Gymnasium's picture: 500 x 500, bound 2.2, a rod of length 1 and width
 * 0.2 from the centre, rounded ends, black axle. (The torque arrow image
 * is not drawn.) */
static void pd_draw(const crl__classic *c, int64_t i, const crl__view *v) {
  const double scale = 500 / (2.2 * 2), offset = 500 / 2;
  const double rod_length = 1 * scale, rod_width = 0.2 * scale;
  const crl__rgb red = {204, 77, 77};
  double ang = c->s[0][i] + M_PI / 2;
  double ex = offset + rod_length * cos(ang);
  double ey = offset + rod_length * sin(ang);
  crl__view_bar(v, offset, offset, ex, ey, rod_width, red);
  crl__view_circle(v, offset, offset, rod_width / 2, red);
  crl__view_circle(v, ex, ey, rod_width / 2, red);
  crl__view_circle(v, offset, offset, 0.05 * scale, (crl__rgb){0, 0, 0});
}

static const crl__classic_desc desc = {
    .name = "Pendulum-v1",
    .nstate = 2,
    .obs_dim = 3,
    .obs_low = obs_low,
    .obs_high = obs_high,
    .n_actions = 0,
    .act_low = -MAX_TORQUE,
    .act_high = MAX_TORQUE,
    .max_steps = 200,
    .screen_w = 500,
    .screen_h = 500,
    .reset_one = pd_reset_one,
    .obs_one = pd_obs_one,
    .step = pd_step,
    .draw = pd_draw,
};

static const crl_env_ops ops = {
    .name = "Pendulum-v1",
    .reset = crl__classic_reset,
    .step = crl__classic_step,
    .seed = crl__classic_seed,
    .close = crl__classic_close,
    .render = crl__classic_render,
};

crl_env *crl_pendulum_new(const crl_classic_options *opt) {
  return crl__classic_new(&desc, &ops, opt);
}
