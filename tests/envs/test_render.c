/* The software rasterizer (src/envs/raster.c) and the classic envs'
 * frames: from_pixels observations, crl_env_render, sizes, pixels_only. */
#include "classic_test_util.h"

#include "envs/raster.h"

static const crl__rgb WHITE = {255, 255, 255}, RED = {255, 0, 0};

static int64_t count(const uint8_t *px, int64_t npx, crl__rgb c) {
  int64_t k = 0;
  for (int64_t i = 0; i < npx; i++)
    k += px[3 * i] == c.r && px[3 * i + 1] == c.g && px[3 * i + 2] == c.b;
  return k;
}

static bool at(const crl__frame *f, int x, int y, crl__rgb c) {
  const uint8_t *p = f->px + ((size_t)y * (size_t)f->w + (size_t)x) * 3;
  return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

/* ---- rasterizer ---------------------------------------------------------- */

static void test_raster_shapes(void **state) {
  (void)state;
  enum { H = 20, W = 30 };
  uint8_t px[H * W * 3];
  crl__frame f = {px, H, W};
  crl__raster_clear(&f, (crl__rgb){1, 2, 3});
  assert_int_equal(count(px, H * W, (crl__rgb){1, 2, 3}), H * W);
  crl__raster_clear(&f, WHITE);
  assert_int_equal(count(px, H * W, WHITE), H * W);
  /* rectangle [2, 5) x [3, 7): 3 x 4 pixels */
  crl__raster_rect(&f, 2, 3, 5, 7, RED);
  assert_int_equal(count(px, H * W, RED), 12);
  assert_true(at(&f, 2, 3, RED) && at(&f, 4, 6, RED));
  assert_false(at(&f, 5, 3, RED) || at(&f, 2, 7, RED));
  /* right triangle with legs 10: area 50 */
  crl__raster_clear(&f, WHITE);
  double tri[6] = {10, 5, 20, 5, 10, 15};
  crl__raster_polygon(&f, tri, 3, RED);
  int64_t k = count(px, H * W, RED);
  assert_true(k >= 45 && k <= 55);
  /* disc of radius 5: area ~78.5 */
  crl__raster_clear(&f, WHITE);
  crl__raster_circle(&f, 15, 10, 5, RED);
  k = count(px, H * W, RED);
  assert_true(k >= 70 && k <= 90);
  assert_true(at(&f, 15, 10, RED) && !at(&f, 15, 16, RED));
  /* a tiny disc still covers its centre pixel */
  crl__raster_clear(&f, WHITE);
  crl__raster_circle(&f, 7.3, 4.6, 0.05, RED);
  assert_int_equal(count(px, H * W, RED), 1);
  assert_true(at(&f, 7, 4, RED));
}

static void test_raster_lines_clipping(void **state) {
  (void)state;
  enum { H = 20, W = 30 };
  uint8_t px[H * W * 3];
  crl__frame f = {px, H, W};
  /* a hairline is one pixel wide */
  crl__raster_clear(&f, WHITE);
  crl__raster_line(&f, 0, 10.2, 30, 10.2, 0.1, RED);
  assert_int_equal(count(px, H * W, RED), 30);
  for (int x = 0; x < W; x++)
    assert_true(at(&f, x, 10, RED));
  /* a thin diagonal has no gaps: a pixel in every row it crosses */
  crl__raster_clear(&f, WHITE);
  crl__raster_line(&f, 1, 1, 28, 19, 0.2, RED);
  for (int y = 2; y < 18; y++) {
    int n = 0;
    for (int x = 0; x < W; x++)
      n += at(&f, x, y, RED);
    assert_true(n >= 1);
  }
  /* thick line: 4 px wide, 20 long */
  crl__raster_clear(&f, WHITE);
  crl__raster_line(&f, 5, 10, 25, 10, 4, RED);
  assert_int_equal(count(px, H * W, RED), 80);
  /* clipped and degenerate shapes are safe */
  crl__raster_clear(&f, WHITE);
  crl__raster_rect(&f, -10, -10, 5, 5, RED);
  assert_int_equal(count(px, H * W, RED), 25);
  crl__raster_circle(&f, 1e300, -1e300, 1e300, RED);
  double bad[6] = {0, 0, NAN, 3, 5, 5};
  crl__raster_polygon(&f, bad, 3, (crl__rgb){0, 0, 255});
  assert_int_equal(count(px, H * W, (crl__rgb){0, 0, 255}), 0);
  double huge[6] = {-1e300, -1e300, 1e300, -1e300, 0, 1e300};
  crl__raster_polygon(&f, huge, 3, (crl__rgb){0, 0, 255});
  crl__raster_line(&f, 3, 3, 3, 3, 1, (crl__rgb){0, 255, 0}); /* a point */
  assert_true(count(px, H * W, (crl__rgb){0, 255, 0}) >= 1);
}

/* A view maps Gym's y-up geometry onto any frame size. */
static void test_view(void **state) {
  (void)state;
  enum { H = 40, W = 60 };
  uint8_t px[H * W * 3];
  crl__frame f = {px, H, W};
  crl__raster_clear(&f, WHITE);
  crl__view v = crl__view_make(&f, 600, 400);      /* 0.1 px per unit */
  double sq[8] = {0, 0, 100, 0, 100, 100, 0, 100}; /* bottom-left */
  crl__view_polygon(&v, sq, 4, RED);
  assert_int_equal(count(px, H * W, RED), 100);
  assert_true(at(&f, 0, H - 1, RED) && at(&f, 9, H - 10, RED));
  assert_false(at(&f, 0, 0, RED));
  /* a bar thinner than a pixel after scaling stays visible */
  crl__raster_clear(&f, WHITE);
  crl__view_bar(&v, 300, 0, 300, 400, 2.0, RED);
  int64_t k = count(px, H * W, RED);
  assert_true(k >= H && k <= 2 * H);
}

/* ---- env frames ---------------------------------------------------------- */

typedef crl_env *(*make_fn)(const crl_classic_options *);

static crl_env *make_px(make_fn f, int64_t n, int h, int w) {
  crl_classic_options o = {.num_envs = n,
                           .from_pixels = true,
                           .render_height = h,
                           .render_width = w};
  crl_env *env = f(&o);
  CRL_CHECK_PTR(env);
  return env;
}

static const uint8_t *pixels(crl_td *td, const char *key, int64_t n, int h,
                             int w) {
  crl_tensor *t = crl_td_get(td, key);
  CRL_CHECK_PTR(t);
  int64_t shape[4] = {n, h, w, 3};
  assert_shape(t, 4, shape);
  assert_int_equal(t->dtype, CRL_UINT8);
  return t->data;
}

static void test_from_pixels_specs(void **state) {
  (void)state;
  make_fn fs[5] = {crl_cartpole_new, crl_pendulum_new, crl_mountain_car_new,
                   crl_mountain_car_continuous_new, crl_acrobot_new};
  for (int e = 0; e < 5; e++) {
    crl_env *env = make_px(fs[e], 2, 64, 64);
    crl_spec *ps = crl_spec_get(crl_env_observation_spec(env), "pixels");
    CRL_CHECK_PTR(ps);
    assert_int_equal(crl_spec_dtype(ps), CRL_UINT8);
    assert_int_equal(crl_spec_ndim(ps), 4);
    assert_true(
        crl_spec_contains(crl_env_observation_spec(env), "observation"));
    CRL_CHECK_OK(crl_check_env_specs(env, 10, 1));
    crl_td *td = crl_env_reset(env, NULL);
    const uint8_t *px = pixels(td, "pixels", 2, 64, 64);
    int64_t white = count(px, 2 * 64 * 64, WHITE);
    assert_true(white > 0 && white < 2 * 64 * 64); /* something drawn */
    /* the same as crl_env_render */
    crl_tensor *r = crl_env_render(env);
    CRL_CHECK_PTR(r);
    assert_memory_equal(r->data, px, 2 * 64 * 64 * 3);
    /* another size, and a single env */
    crl_env *one = make_px(fs[e], 0, 48, 80);
    CRL_CHECK_OK(crl_check_env_specs(one, 5, 2));
    crl_td *t1 = crl_env_reset(one, NULL);
    crl_tensor *p1 = crl_td_get(t1, "pixels");
    int64_t s1[3] = {48, 80, 3};
    assert_shape(p1, 3, s1);
  }
  /* pixels only */
  crl_classic_options o = {
      .num_envs = 3, .from_pixels = true, .pixels_only = true};
  crl_env *env = crl_cartpole_new(&o);
  CRL_CHECK_PTR(env);
  assert_false(crl_spec_contains(crl_env_observation_spec(env), "observation"));
  CRL_CHECK_OK(crl_check_env_specs(env, 30, 3));
  crl_td *td = crl_env_reset(env, NULL);
  assert_false(crl_td_contains(td, "observation"));
  int64_t a[3] = {0, 1, 0};
  set_onehot(env, td, 2, a);
  CRL_CHECK_OK(crl_env_step(env, td));
  assert_false(crl_td_contains(td, "next/observation"));
  pixels(td, "next/pixels", 3, 64, 64);
}

static const crl__rgb POLE = {202, 152, 101}, BLACK = {0, 0, 0};

/* CartPole at 64 x 64: the pole is there, upright over the cart, leaning
 * with theta, and the frame changes as the cart moves. */
static void test_cartpole_frames(void **state) {
  (void)state;
  enum { H = 64, W = 64 };
  crl_env *env = make_px(crl_cartpole_new, 2, H, W);
  crl_td *td = crl_env_reset(env, NULL);
  double s0[4] = {0, 0, 0, 0}, s1[4] = {1.0, 0, 0.2, 0};
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s0, 0));
  CRL_CHECK_OK(crl__classic_set_state(env, 1, s1, 0));
  crl_tensor *r = crl_env_render(env);
  CRL_CHECK_PTR(r);
  const uint8_t *px = r->data;
  crl__frame f0 = {(uint8_t *)px, H, W}, f1 = {(uint8_t *)px + H * W * 3, H, W};
  assert_true(count(px, H * W, POLE) >= 8);
  assert_true(count(px, H * W, BLACK) >= 10); /* cart and track */
  /* env 0: pole pixels lie in the middle columns, above the cart (the cart
   * top is at 400 - 115 = 285 of 400 -> row ~45) */
  int minx = W, maxx = -1, miny = H;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      if (at(&f0, x, y, POLE)) {
        minx = x < minx ? x : minx;
        maxx = x > maxx ? x : maxx;
        miny = y < miny ? y : miny;
      }
  assert_true(minx >= 30 && maxx <= 33);
  assert_true(miny < 30);
  /* env 1: cart right of centre, pole top leaning further right */
  int top_x = -1, top_y = H;
  for (int y = 0; y < H && top_x < 0; y++)
    for (int x = 0; x < W; x++)
      if (at(&f1, x, y, POLE)) {
        top_x = x;
        top_y = y;
        break;
      }
  assert_true(top_x > 40 && top_y < 30);
  /* the frame follows the state through steps */
  uint8_t before[H * W * 3];
  memcpy(before, pixels(td, "pixels", 2, H, W), sizeof before);
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s0, 0));
  for (int t = 0; t < 8; t++) {
    int64_t a[2] = {1, 1};
    set_onehot(env, td, 2, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    td = crl_td_step_mdp(td, NULL);
  }
  const uint8_t *now = pixels(td, "pixels", 2, H, W);
  assert_memory_not_equal(now, before, sizeof before);
  crl_tensor *r2 = crl_env_render(env);
  assert_memory_equal(r2->data, now, 2 * H * W * 3);
}

/* Gym's own geometry (600 x 400): the shapes have Gym's sizes. */
static void test_cartpole_gym_size(void **state) {
  (void)state;
  enum { H = 400, W = 600 };
  crl_classic_options o = {.render_height = H, .render_width = W};
  crl_env *env = crl_cartpole_new(&o);
  CRL_CHECK_PTR(env);
  double s[4] = {0, 0, 0, 0};
  CRL_CHECK_OK(crl__classic_set_state(env, 0, s, 0));
  crl_tensor *r = crl_env_render(env);
  CRL_CHECK_PTR(r);
  int64_t shape[3] = {H, W, 3};
  assert_shape(r, 3, shape);
  /* pole 10 x 125 minus the axle disc; cart 50 x 30 + the track line */
  int64_t pole = count(r->data, H * W, POLE);
  assert_true(pole > 1100 && pole <= 1250);
  int64_t black = count(r->data, H * W, BLACK);
  assert_true(black > 1300 + 550 && black < 1500 + 650);
  /* resizing the render does not touch the from_pixels size */
  CRL_CHECK_OK(crl_env_set_render_size(env, 32, 48));
  crl_tensor *small = crl_env_render(env);
  int64_t s2[3] = {32, 48, 3};
  assert_shape(small, 3, s2);
}

static const crl__rgb PEND = {204, 77, 77};

static void test_other_envs(void **state) {
  (void)state;
  enum { H = 64, W = 64 };
  /* Pendulum: th = 0 points up, th = pi down */
  crl_env *p = make_px(crl_pendulum_new, 2, H, W);
  double up[2] = {0, 0}, down[2] = {M_PI, 0};
  CRL_CHECK_OK(crl__classic_set_state(p, 0, up, 0));
  CRL_CHECK_OK(crl__classic_set_state(p, 1, down, 0));
  crl_tensor *r = crl_env_render(p);
  const uint8_t *px = r->data;
  crl__frame f0 = {(uint8_t *)px, H, W}, f1 = {(uint8_t *)px + H * W * 3, H, W};
  assert_true(at(&f0, 32, 20, PEND) && !at(&f0, 32, 44, PEND));
  assert_true(at(&f1, 32, 44, PEND) && !at(&f1, 32, 20, PEND));
  assert_true(at(&f0, 32, 32, BLACK)); /* the axle */
  /* MountainCar: the car moves along the hill */
  crl_env *m = make_px(crl_mountain_car_new, 2, H, W);
  double left[2] = {-1.0, 0}, right[2] = {0.3, 0};
  CRL_CHECK_OK(crl__classic_set_state(m, 0, left, 0));
  CRL_CHECK_OK(crl__classic_set_state(m, 1, right, 0));
  r = crl_env_render(m);
  px = r->data;
  assert_memory_not_equal(px, px + H * W * 3, H * W * 3);
  assert_true(count(px, H * W, (crl__rgb){204, 204, 0}) > 0);   /* flag */
  assert_true(count(px, H * W, (crl__rgb){128, 128, 128}) > 0); /* wheels */
  /* Acrobot: links hang down at rest, swing up when pointing up */
  crl_env *a = make_px(crl_acrobot_new, 2, H, W);
  double rest[4] = {0, 0, 0, 0}, upright[4] = {M_PI, 0, 0, 0};
  CRL_CHECK_OK(crl__classic_set_state(a, 0, rest, 0));
  CRL_CHECK_OK(crl__classic_set_state(a, 1, upright, 0));
  r = crl_env_render(a);
  px = r->data;
  const crl__rgb LINK = {0, 204, 204};
  crl__frame a0 = {(uint8_t *)px, H, W}, a1 = {(uint8_t *)px + H * W * 3, H, W};
  assert_true(at(&a0, 32, 50, LINK) && !at(&a0, 32, 14, LINK));
  assert_true(at(&a1, 32, 14, LINK) && !at(&a1, 32, 50, LINK));
}

/* A partial reset redraws only the reset envs' frames. */
static void test_partial_reset_frames(void **state) {
  (void)state;
  enum { N = 3, H = 32, W = 32 };
  crl_env *env = make_px(crl_cartpole_new, N, H, W);
  crl_td *td = crl_env_reset(env, NULL);
  for (int t = 0; t < 15; t++) {
    int64_t a[N] = {1, 1, 1};
    set_onehot(env, td, 2, a);
    CRL_CHECK_OK(crl_env_step(env, td));
    td = crl_td_step_mdp(td, NULL);
  }
  uint8_t before[N * H * W * 3];
  memcpy(before, pixels(td, "pixels", N, H, W), sizeof before);
  bool m[N] = {false, true, false};
  set_reset_mask(td, N, m);
  CRL_CHECK_PTR(crl_env_reset(env, td));
  const uint8_t *now = pixels(td, "pixels", N, H, W);
  size_t fs = H * W * 3;
  assert_memory_equal(now, before, fs);
  assert_memory_not_equal(now + fs, before + fs, fs);
  assert_memory_equal(now + 2 * fs, before + 2 * fs, fs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_raster_shapes),
      CRL_TEST(test_raster_lines_clipping),
      CRL_TEST(test_view),
      CRL_TEST(test_from_pixels_specs),
      CRL_TEST(test_cartpole_frames),
      CRL_TEST(test_cartpole_gym_size),
      CRL_TEST(test_other_envs),
      CRL_TEST(test_partial_reset_frames),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
