/* CartPole-v1 (Gymnasium's classic_control/cartpole.py), batched.
 *
 * State (float64, as Gymnasium): x, x_dot, theta, theta_dot. Explicit Euler
 * with tau 0.02; force +-10 (action 1 pushes right); terminated when
 * |x| > 2.4 or |theta| > 12 degrees; reward 1 per step including the
 * terminating one, 0 for steps taken after termination without a reset;
 * reset state ~ U(-0.05, 0.05)^4. */
#include <float.h>

#include "classic_internal.h"

#define GRAVITY 9.8
#define MASSCART 1.0
#define MASSPOLE 0.1
#define TOTAL_MASS (MASSPOLE + MASSCART)
#define LENGTH 0.5 /* half the pole's length */
#define POLEMASS_LENGTH (MASSPOLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define THETA_THRESHOLD (12 * 2 * M_PI / 360)
#define X_THRESHOLD 2.4

static const double obs_high[4] = {X_THRESHOLD * 2, FLT_MAX,
                                   THETA_THRESHOLD * 2, FLT_MAX};
static const double obs_low[4] = {-X_THRESHOLD * 2, -FLT_MAX,
                                  -THETA_THRESHOLD * 2, -FLT_MAX};

static void cp_reset_one(crl__classic *c, int64_t i, crl_rng *g) {
  for (int k = 0; k < 4; k++)
    c->s[k][i] = -0.05 + (0.05 - -0.05) * crl_rng_uniform(g);
}

static void cp_obs_one(const crl__classic *c, int64_t i, float *o) {
  for (int k = 0; k < 4; k++)
    o[k] = (float)c->s[k][i];
}

/* One Euler step of every env. FAST selects the inline sincos (angles
 * checked small) or libm's. */
static inline __attribute__((always_inline)) void
cp_step_impl(crl__classic *c, const int64_t *restrict a, float *restrict obs,
             float *restrict rew, uint8_t *restrict term, bool fast) {
  double *restrict X = c->s[0], *restrict XD = c->s[1];
  double *restrict TH = c->s[2], *restrict THD = c->s[3];
  uint8_t *restrict beyond = c->flag;
  const int64_t n = c->n;
  for (int64_t i = 0; i < n; i++) {
    double x = X[i], x_dot = XD[i], theta = TH[i], theta_dot = THD[i];
    double force = a[2 * i + 1] ? FORCE_MAG : -FORCE_MAG;
    double sintheta, costheta;
    if (fast)
      crl__sincos(theta, &sintheta, &costheta);
    else {
      sintheta = sin(theta);
      costheta = cos(theta);
    }
    double temp =
        (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) /
        TOTAL_MASS;
    double thetaacc =
        (GRAVITY * sintheta - costheta * temp) /
        (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
    double xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    x = x + TAU * x_dot;
    x_dot = x_dot + TAU * xacc;
    theta = theta + TAU * theta_dot;
    theta_dot = theta_dot + TAU * thetaacc;
    X[i] = x;
    XD[i] = x_dot;
    TH[i] = theta;
    THD[i] = theta_dot;
    int t = (x < -X_THRESHOLD) | (x > X_THRESHOLD) |
            (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD);
    int b = beyond[i];
    rew[i] = (t & b) ? 0.0f : 1.0f;
    beyond[i] = (uint8_t)(b | t);
    term[i] = (uint8_t)t;
    obs[4 * i + 0] = (float)x;
    obs[4 * i + 1] = (float)x_dot;
    obs[4 * i + 2] = (float)theta;
    obs[4 * i + 3] = (float)theta_dot;
  }
}

static void cp_step_fast(crl__classic *c, const int64_t *a, float *obs,
                         float *rew, uint8_t *term) {
  cp_step_impl(c, a, obs, rew, term, true);
}

static void cp_step_libm(crl__classic *c, const int64_t *a, float *obs,
                         float *rew, uint8_t *term) {
  cp_step_impl(c, a, obs, rew, term, false);
}

static void cp_step(crl__classic *c, const void *action, float *obs, float *rew,
                    uint8_t *term) {
  if (crl__all_small(c->s[2], c->n))
    cp_step_fast(c, action, obs, rew, term);
  else
    cp_step_libm(c, action, obs, rew, term);
}

/* Gymnasium's picture: 600 x 400, cart 50 x 30 at height 100, pole 10 wide
 * and 2 * length * scale long, axle disc, track line. */
static void cp_draw(const crl__classic *c, int64_t i, const crl__view *v) {
  const double scale = 600.0 / (X_THRESHOLD * 2);
  const double polewidth = 10.0, polelen = scale * (2 * LENGTH);
  const double cartwidth = 50.0, cartheight = 30.0;
  double x = c->s[0][i], theta = c->s[2][i];
  double l = -cartwidth / 2, r = cartwidth / 2, t = cartheight / 2,
         b = -cartheight / 2;
  double axleoffset = cartheight / 4.0;
  double cartx = x * scale + 600 / 2.0, carty = 100;
  double cart[8] = {l + cartx, b + carty, l + cartx, t + carty,
                    r + cartx, t + carty, r + cartx, b + carty};
  crl__view_polygon(v, cart, 4, (crl__rgb){0, 0, 0});
  /* the pole: (0, -w/2)..(0, len - w/2) rotated by -theta about the axle */
  double ax = cartx, ay = carty + axleoffset;
  double dx = sin(theta), dy = cos(theta);
  double y0 = -polewidth / 2, y1 = polelen - polewidth / 2;
  crl__view_bar(v, ax + dx * y0, ay + dy * y0, ax + dx * y1, ay + dy * y1,
                polewidth, (crl__rgb){202, 152, 101});
  crl__view_circle(v, floor(cartx), floor(ay), polewidth / 2,
                   (crl__rgb){129, 132, 203});
  crl__view_bar(v, 0, carty, 600, carty, 1.0, (crl__rgb){0, 0, 0});
}

static const crl__classic_desc desc = {
    .name = "CartPole-v1",
    .nstate = 4,
    .obs_dim = 4,
    .obs_low = obs_low,
    .obs_high = obs_high,
    .n_actions = 2,
    .max_steps = 500,
    .screen_w = 600,
    .screen_h = 400,
    .reset_one = cp_reset_one,
    .obs_one = cp_obs_one,
    .step = cp_step,
    .draw = cp_draw,
};

static const crl_env_ops ops = {
    .name = "CartPole-v1",
    .reset = crl__classic_reset,
    .step = crl__classic_step,
    .seed = crl__classic_seed,
    .close = crl__classic_close,
    .render = crl__classic_render,
};

crl_env *crl_cartpole_new(const crl_classic_options *opt) {
  return crl__classic_new(&desc, &ops, opt);
}
