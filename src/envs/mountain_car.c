/* MountainCar-v0 and MountainCarContinuous-v0 (Gymnasium's
 * classic_control/mountain_car.py and continuous_mountain_car.py),
 * batched.
 *
 * State (float64): position, velocity. Reset: position ~ U(-0.6, -0.4),
 * velocity 0. Velocity clipped to [-0.07, 0.07], position to [-1.2, 0.6],
 * and the velocity zeroed when the car hits the left wall moving left.
 *   v0: velocity += (a - 1) * 0.001 + cos(3 position) * (-0.0025);
 *       terminated at position >= 0.5 with velocity >= 0; reward -1.
 *   Continuous: force = clip(a, -1, 1); velocity += force * 0.0015 -
 *       0.0025 cos(3 position); terminated at position >= 0.45 with
 *       velocity >= 0; reward 100 on termination minus 0.1 a^2 (the
 *       unclipped action, as Gymnasium); the state is stored as float32
 *       after each step, as Gymnasium stores it. */
/* No FP traps are ever enabled: this lets GCC if-convert the clipping so
 * the step loop vectorizes (values are unchanged). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "classic_internal.h"

#define MIN_POSITION -1.2
#define MAX_POSITION 0.6
#define MAX_SPEED 0.07
#define FORCE 0.001
#define GRAVITY 0.0025
#define POWER 0.0015

static const double obs_low[2] = {MIN_POSITION, -MAX_SPEED};
static const double obs_high[2] = {MAX_POSITION, MAX_SPEED};

static void mc_reset_one(crl__classic *c, int64_t i, crl_rng *g) {
  c->s[0][i] = -0.6 + (-0.4 - -0.6) * crl_rng_uniform(g);
  c->s[1][i] = 0.0;
}

static void mc_obs_one(const crl__classic *c, int64_t i, float *o) {
  o[0] = (float)c->s[0][i];
  o[1] = (float)c->s[1][i];
}

/* position is within [-1.2, 0.6] after any step; a state set by hand is
 * at most a bounded reduction away, so the inline sincos is always used */
static void mc_step(crl__classic *c, const void *action, float *restrict obs,
                    float *restrict rew, uint8_t *restrict term) {
  const int64_t *restrict a = action;
  double *restrict P = c->s[0], *restrict V = c->s[1];
  double *restrict A = c->aux;
  const int64_t n = c->n;
  /* one-hot [1,0,0] / [0,1,0] / [0,0,1] -> action - 1 = -1, 0, 1 */
  for (int64_t i = 0; i < n; i++)
    A[i] = a[3 * i + 2] ? 1.0 : (a[3 * i + 1] ? 0.0 : -1.0);
  for (int64_t i = 0; i < n; i++) {
    double position = P[i], velocity = V[i];
    double dir = A[i];
    double s, co;
    crl__sincos(3 * position, &s, &co);
    velocity += dir * FORCE + co * (-GRAVITY);
    velocity = velocity < -MAX_SPEED ? -MAX_SPEED : velocity;
    velocity = velocity > MAX_SPEED ? MAX_SPEED : velocity;
    position += velocity;
    position = position < MIN_POSITION ? MIN_POSITION : position;
    position = position > MAX_POSITION ? MAX_POSITION : position;
    double stopped = velocity < 0 ? 0.0 : velocity; /* hit the wall */
    velocity = position == MIN_POSITION ? stopped : velocity;
    P[i] = position;
    V[i] = velocity;
    rew[i] = -1.0f;
    obs[2 * i + 0] = (float)position;
    obs[2 * i + 1] = (float)velocity;
  }
  /* a loop of its own: fused with the one above, GCC 12 gives up */
  for (int64_t i = 0; i < n; i++)
    term[i] = (uint8_t)((P[i] >= 0.5) & (V[i] >= 0));
}

static void mcc_step(crl__classic *c, const void *action, float *restrict obs,
                     float *restrict rew, uint8_t *restrict term) {
  const float *restrict a = action;
  double *restrict P = c->s[0], *restrict V = c->s[1];
  double *restrict A = c->aux;
  const int64_t n = c->n;
  /* the actions as float64 first: GCC 12 does not if-convert a loop that
   * widens float to double */
  for (int64_t i = 0; i < n; i++)
    A[i] = a[i];
  for (int64_t i = 0; i < n; i++) {
    double position = P[i], velocity = V[i];
    double act = A[i];
    double force = act < -1.0 ? -1.0 : act;
    force = force > 1.0 ? 1.0 : force;
    double s, co;
    crl__sincos(3 * position, &s, &co);
    velocity += force * POWER - 0.0025 * co;
    velocity = velocity > MAX_SPEED ? MAX_SPEED : velocity;
    velocity = velocity < -MAX_SPEED ? -MAX_SPEED : velocity;
    position += velocity;
    position = position > MAX_POSITION ? MAX_POSITION : position;
    position = position < MIN_POSITION ? MIN_POSITION : position;
    double stopped = velocity < 0 ? 0.0 : velocity; /* hit the wall */
    velocity = position == MIN_POSITION ? stopped : velocity;
    double goal = velocity >= 0 ? 100.0 : 0.0;
    goal = position >= 0.45 ? goal : 0.0;
    double reward = goal - act * act * 0.1;
    float pf = (float)position, vf = (float)velocity;
    P[i] = pf;
    V[i] = vf;
    A[i] = goal; /* terminated: written below (GCC 12 vectorizes this loop
                    only without the byte store) */
    rew[i] = (float)reward;
    obs[2 * i + 0] = pf;
    obs[2 * i + 1] = vf;
  }
  for (int64_t i = 0; i < n; i++)
    term[i] = (uint8_t)(A[i] > 0);
}

/* Gymnasium's picture: 600 x 400, the hill sin(3x) * 0.45 + 0.55 as a
 * polyline, the car (40 x 20, tilted by cos(3 pos)) with two wheels, the
 * flag at the goal. */
static double height(double x) { return sin(3 * x) * 0.45 + 0.55; }

static void draw_car(const crl__classic *c, int64_t i, const crl__view *v,
                     double goal) {
  const double scale = 600 / (MAX_POSITION - MIN_POSITION);
  const double carwidth = 40, carheight = 20, clearance = 10;
  const crl__rgb black = {0, 0, 0};
  double xy[200];
  for (int k = 0; k < 100; k++) {
    double x = MIN_POSITION + (MAX_POSITION - MIN_POSITION) * k / 99.0;
    xy[2 * k] = (x - MIN_POSITION) * scale;
    xy[2 * k + 1] = height(x) * scale;
  }
  crl__view_polyline(v, xy, 100, 1.0, black);
  double pos = c->s[0][i];
  double ang = cos(3 * pos), ca = cos(ang), sa = sin(ang);
  double bx = (pos - MIN_POSITION) * scale;
  double by = clearance + height(pos) * scale;
  double l = -carwidth / 2, r = carwidth / 2, t = carheight, b = 0;
  double corner[8] = {l, b, l, t, r, t, r, b}, car[8];
  for (int k = 0; k < 4; k++) {
    double px = corner[2 * k], py = corner[2 * k + 1];
    car[2 * k] = px * ca - py * sa + bx;
    car[2 * k + 1] = px * sa + py * ca + by;
  }
  crl__view_polygon(v, car, 4, black);
  for (int k = -1; k <= 1; k += 2) {
    double wx = k * carwidth / 4;
    crl__view_circle(v, floor(wx * ca + bx), floor(wx * sa + by),
                     floor(carheight / 2.5), (crl__rgb){128, 128, 128});
  }
  double flagx = floor((goal - MIN_POSITION) * scale);
  double flagy1 = floor(height(goal) * scale), flagy2 = flagy1 + 50;
  crl__view_bar(v, flagx, flagy1, flagx, flagy2, 1.0, black);
  double flag[6] = {flagx, flagy2, flagx, flagy2 - 10, flagx + 25, flagy2 - 5};
  crl__view_polygon(v, flag, 3, (crl__rgb){204, 204, 0});
}

static void mc_draw(const crl__classic *c, int64_t i, const crl__view *v) {
  draw_car(c, i, v, 0.5);
}

static void mcc_draw(const crl__classic *c, int64_t i, const crl__view *v) {
  draw_car(c, i, v, 0.45);
}

static const crl__classic_desc desc = {
    .name = "MountainCar-v0",
    .nstate = 2,
    .obs_dim = 2,
    .obs_low = obs_low,
    .obs_high = obs_high,
    .n_actions = 3,
    .max_steps = 200,
    .screen_w = 600,
    .screen_h = 400,
    .reset_one = mc_reset_one,
    .obs_one = mc_obs_one,
    .step = mc_step,
    .draw = mc_draw,
};

static const crl__classic_desc desc_cont = {
    .name = "MountainCarContinuous-v0",
    .nstate = 2,
    .obs_dim = 2,
    .obs_low = obs_low,
    .obs_high = obs_high,
    .n_actions = 0,
    .act_low = -1.0,
    .act_high = 1.0,
    .max_steps = 999,
    .screen_w = 600,
    .screen_h = 400,
    .reset_one = mc_reset_one,
    .obs_one = mc_obs_one,
    .step = mcc_step,
    .draw = mcc_draw,
};

static const crl_env_ops ops = {
    .name = "MountainCar-v0",
    .reset = crl__classic_reset,
    .step = crl__classic_step,
    .seed = crl__classic_seed,
    .close = crl__classic_close,
    .render = crl__classic_render,
};

static const crl_env_ops ops_cont = {
    .name = "MountainCarContinuous-v0",
    .reset = crl__classic_reset,
    .step = crl__classic_step,
    .seed = crl__classic_seed,
    .close = crl__classic_close,
    .render = crl__classic_render,
};

crl_env *crl_mountain_car_new(const crl_classic_options *opt) {
  return crl__classic_new(&desc, &ops, opt);
}

crl_env *crl_mountain_car_continuous_new(const crl_classic_options *opt) {
  return crl__classic_new(&desc_cont, &ops_cont, opt);
}
