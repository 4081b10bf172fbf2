/* Acrobot-v1 (Gymnasium's classic_control/acrobot.py), batched.
 *
 * State (float64): theta1, theta2 (relative), dtheta1, dtheta2. Torque
 * {-1, 0, +1}; the "book" dynamics (Sutton & Barto) integrated by one RK4
 * step of dt 0.2; angles wrapped to [-pi, pi], velocities bounded by 4 pi
 * and 9 pi. Terminated when -cos(theta1) - cos(theta1 + theta2) > 1; reward
 * -1, 0 on termination. Reset: each value ~ U(-0.1, 0.1), rounded to
 * float32 as Gymnasium does. Observation [cos t1, sin t1, cos t2, sin t2,
 * dt1, dt2]. */
/* No FP traps are ever enabled: this lets GCC if-convert the clipping and
 * wrapping so the step loop vectorizes (values are unchanged). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "classic_internal.h"

#define DT 0.2
#define LINK_LENGTH_1 1.0
#define LINK_LENGTH_2 1.0
#define LINK_MASS_1 1.0
#define LINK_MASS_2 1.0
#define LINK_COM_POS_1 0.5
#define LINK_COM_POS_2 0.5
#define LINK_MOI 1.0
#define MAX_VEL_1 (4 * M_PI)
#define MAX_VEL_2 (9 * M_PI)

static const double obs_high[6] = {1, 1, 1, 1, MAX_VEL_1, MAX_VEL_2};
static const double obs_low[6] = {-1, -1, -1, -1, -MAX_VEL_1, -MAX_VEL_2};

static void ac_reset_one(crl__classic *c, int64_t i, crl_rng *g) {
  for (int k = 0; k < 4; k++)
    c->s[k][i] = (float)(-0.1 + (0.1 - -0.1) * crl_rng_uniform(g));
}

/* _dsdt with the book's ddtheta2 */
static inline __attribute__((always_inline)) void
dsdt(double a, double theta1, double theta2, double dtheta1, double dtheta2,
     double *d0, double *d1o, double *d2o, double *d3o) {
  const double m1 = LINK_MASS_1, m2 = LINK_MASS_2, l1 = LINK_LENGTH_1;
  const double lc1 = LINK_COM_POS_1, lc2 = LINK_COM_POS_2;
  const double I1 = LINK_MOI, I2 = LINK_MOI, g = 9.8;
  double s2, c2, sx, cx, sy, cy;
  crl__sincos(theta2, &s2, &c2);
  crl__sincos(theta1 + theta2 - M_PI / 2.0, &sx, &cx);
  crl__sincos(theta1 - M_PI / 2, &sy, &cy);
  double d1 = m1 * (lc1 * lc1) +
              m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * c2) + I1 + I2;
  double d2 = m2 * (lc2 * lc2 + l1 * lc2 * c2) + I2;
  double phi2 = m2 * lc2 * g * cx;
  double phi1 = -m2 * l1 * lc2 * (dtheta2 * dtheta2) * s2 -
                2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * s2 +
                (m1 * lc1 + m2 * l1) * g * cy + phi2;
  double ddtheta2 =
      (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * s2 - phi2) /
      (m2 * (lc2 * lc2) + I2 - (d2 * d2) / d1);
  double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  *d0 = dtheta1;
  *d1o = dtheta2;
  *d2o = ddtheta1;
  *d3o = ddtheta2;
}

static inline double wrap(double x, double m, double M) {
  double diff = M - m;
  if (!isfinite(x)) return x;
  if (fabs(x) > 1e3) x = fmod(x, diff); /* Gymnasium would loop for ages */
  while (x > M)
    x = x - diff;
  while (x < m)
    x = x + diff;
  return x;
}

static inline double bound(double x, double m, double M) {
  x = x < m ? m : x;
  return x > M ? M : x;
}

/* observation row of a state */
static inline void ac_obs_row(double n0, double n1, double n2, double n3,
                              float *o) {
  double s0, c0, s1, c1;
  crl__sincos(n0, &s0, &c0);
  crl__sincos(n1, &s1, &c1);
  o[0] = (float)c0;
  o[1] = (float)s0;
  o[2] = (float)c1;
  o[3] = (float)s1;
  o[4] = (float)n2;
  o[5] = (float)n3;
}

static void ac_obs_one(const crl__classic *c, int64_t i, float *o) {
  ac_obs_row(c->s[0][i], c->s[1][i], c->s[2][i], c->s[3][i], o);
}

/* reward -1, or 0 when terminated: -cos(t1) - cos(t1 + t2) > 1 */
static inline double ac_reward(double n0, double n1) {
  double s0, c0, s01, c01;
  crl__sincos(n0, &s0, &c0);
  crl__sincos(n1 + n0, &s01, &c01);
  return -c0 - c01 > 1.0 ? 0.0 : -1.0;
}

static void ac_step(crl__classic *c, const void *action, float *restrict obs,
                    float *restrict rew, uint8_t *restrict term) {
  const int64_t *restrict a = action;
  double *restrict S0 = c->s[0], *restrict S1 = c->s[1];
  double *restrict S2 = c->s[2], *restrict S3 = c->s[3];
  double *restrict TQ = c->aux;
  const int64_t n = c->n;
  const double dt = DT, dt2 = DT / 2.0, h = DT / 6.0;
  const double lo = -M_PI, hi = M_PI, diff = hi - lo;
  for (int64_t i = 0; i < n; i++) /* AVAIL_TORQUE[a] */
    TQ[i] = a[3 * i + 2] ? 1.0 : (a[3 * i + 1] ? 0.0 : -1.0);
  int far = 0;
  for (int64_t i = 0; i < n; i++) {
    double torque = TQ[i];
    double y0 = S0[i], y1 = S1[i], y2 = S2[i], y3 = S3[i];
    double k1[4], k2[4], k3[4], k4[4];
    dsdt(torque, y0, y1, y2, y3, &k1[0], &k1[1], &k1[2], &k1[3]);
    dsdt(torque, y0 + dt2 * k1[0], y1 + dt2 * k1[1], y2 + dt2 * k1[2],
         y3 + dt2 * k1[3], &k2[0], &k2[1], &k2[2], &k2[3]);
    dsdt(torque, y0 + dt2 * k2[0], y1 + dt2 * k2[1], y2 + dt2 * k2[2],
         y3 + dt2 * k2[3], &k3[0], &k3[1], &k3[2], &k3[3]);
    dsdt(torque, y0 + dt * k3[0], y1 + dt * k3[1], y2 + dt * k3[2],
         y3 + dt * k3[3], &k4[0], &k4[1], &k4[2], &k4[3]);
    double n0 = y0 + h * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]);
    double n1 = y1 + h * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
    double n2 = y2 + h * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2]);
    double n3 = y3 + h * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3]);
    /* Gymnasium's wrap() loops, unrolled twice each way (an RK4 step
     * moves an angle by less than two turns unless the state is wild);
     * the rare rest is finished below */
    n0 = n0 > hi ? n0 - diff : n0;
    n0 = n0 > hi ? n0 - diff : n0;
    n0 = n0 < lo ? n0 + diff : n0;
    n0 = n0 < lo ? n0 + diff : n0;
    n1 = n1 > hi ? n1 - diff : n1;
    n1 = n1 > hi ? n1 - diff : n1;
    n1 = n1 < lo ? n1 + diff : n1;
    n1 = n1 < lo ? n1 + diff : n1;
    far |= (n0 > hi) | (n0 < lo) | (n1 > hi) | (n1 < lo);
    n2 = bound(n2, -MAX_VEL_1, MAX_VEL_1);
    n3 = bound(n3, -MAX_VEL_2, MAX_VEL_2);
    S0[i] = n0;
    S1[i] = n1;
    S2[i] = n2;
    S3[i] = n3;
    rew[i] = (float)ac_reward(n0, n1);
  }
  if (CRL_UNLIKELY(far)) {
    for (int64_t i = 0; i < n; i++) {
      double n0 = S0[i], n1 = S1[i];
      if (!(n0 > hi || n0 < lo || n1 > hi || n1 < lo)) continue;
      S0[i] = n0 = wrap(n0, lo, hi);
      S1[i] = n1 = wrap(n1, lo, hi);
      rew[i] = (float)ac_reward(n0, n1);
    }
  }
  /* loops of their own: rows of 6 floats or a byte store in the loop above
   * keep GCC 12 from vectorizing it */
  for (int64_t i = 0; i < n; i++)
    term[i] = (uint8_t)(rew[i] == 0.0f);
  for (int64_t i = 0; i < n; i++)
    ac_obs_row(S0[i], S1[i], S2[i], S3[i], obs + 6 * i);
}

/* Gymnasium's picture: 500 x 500, bound 2.2, the target line at height 1,
 * two links 0.2 wide with discs at the joints. */
static void ac_draw(const crl__classic *c, int64_t i, const crl__view *v) {
  const double scale = 500 / ((LINK_LENGTH_1 + LINK_LENGTH_2 + 0.2) * 2);
  const double offset = 500 / 2.0;
  double s0 = c->s[0][i], s1 = c->s[1][i];
  double p1x = -LINK_LENGTH_1 * cos(s0) * scale;
  double p1y = LINK_LENGTH_1 * sin(s0) * scale;
  /* Gymnasium swaps the coordinates: (x, y) = (p[1], p[0]) */
  double xs[2] = {0, p1y}, ys[2] = {0, p1x};
  double th[2] = {s0 - M_PI / 2, s0 + s1 - M_PI / 2};
  double len[2] = {LINK_LENGTH_1 * scale, LINK_LENGTH_2 * scale};
  crl__view_bar(v, -2.2 * scale + offset, 1 * scale + offset,
                2.2 * scale + offset, 1 * scale + offset, 1.0,
                (crl__rgb){0, 0, 0});
  for (int k = 0; k < 2; k++) {
    double x = xs[k] + offset, y = ys[k] + offset;
    double ex = x + len[k] * cos(th[k]), ey = y + len[k] * sin(th[k]);
    crl__view_bar(v, x, y, ex, ey, 0.2 * scale, (crl__rgb){0, 204, 204});
    crl__view_circle(v, floor(x), floor(y), floor(0.1 * scale),
                     (crl__rgb){204, 204, 0});
  }
}

static const crl__classic_desc desc = {
    .name = "Acrobot-v1",
    .nstate = 4,
    .obs_dim = 6,
    .obs_low = obs_low,
    .obs_high = obs_high,
    .n_actions = 3,
    .max_steps = 500,
    .screen_w = 500,
    .screen_h = 500,
    .reset_one = ac_reset_one,
    .obs_one = ac_obs_one,
    .step = ac_step,
    .draw = ac_draw,
};

static const crl_env_ops ops = {
    .name = "Acrobot-v1",
    .reset = crl__classic_reset,
    .step = crl__classic_step,
    .seed = crl__classic_seed,
    .close = crl__classic_close,
    .render = crl__classic_render,
};

crl_env *crl_acrobot_new(const crl_classic_options *opt) {
  return crl__classic_new(&desc, &ops, opt);
}
