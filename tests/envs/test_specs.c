/* Leaf tensor specs (torchrl.data.tensor_specs): construction, rand / zero
 * / is_in / project / encode / expand / equal / print. */
#include "test_util.h"

#define NDRAWS 2000

/* Draw NDRAWS values (as a batch), check they are all in the spec, and
 * return them. */
static crl_tensor *draws(crl_spec *s, uint64_t seed) {
  crl_rng g = seeded_rng(seed);
  crl_tensor *t = crl_spec_rand(s, &g, 1, (int64_t[]){NDRAWS});
  CRL_CHECK_PTR(t);
  assert_int_equal(t->dtype, crl_spec_dtype(s));
  assert_int_equal(t->ndim, crl_spec_ndim(s) + 1);
  assert_int_equal(t->shape[0], NDRAWS);
  CRL_CHECK_OK(crl_spec_assert_is_in(s, t));
  assert_true(crl_spec_is_in(s, t));
  /* each single draw (no batch dims) is in the spec too */
  crl_tensor *one = crl_spec_rand(s, &g, 0, NULL);
  CRL_CHECK_PTR(one);
  assert_true(crl_spec_is_in(s, one));
  return t;
}

static void check_zero(crl_spec *s) {
  crl_tensor *z = crl_spec_zero(s, 2, (int64_t[]){3, 2});
  CRL_CHECK_PTR(z);
  assert_int_equal(z->ndim, crl_spec_ndim(s) + 2);
  CRL_CHECK_OK(crl_spec_assert_is_in(s, z));
}

/* ---- construction -----------------------------------------------------------
 */

static void test_bad_construction(void **state) {
  (void)state;
  assert_null(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), 3.0, 1.0));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("spec_bounded: low 3 is greater than high 1");
  assert_null(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), NAN, 1.0));
  CRL_ASSERT_ERR_HAS("NaN");
  assert_null(crl_spec_bounded(CRL_INT64, CRL_SHAPE(2), 0.2, 0.8));
  CRL_ASSERT_ERR_HAS("no int64 value lies in [0.2, 0.8]");
  assert_null(crl_spec_bounded(CRL_UINT8, CRL_SHAPE(2), -1, 3));
  CRL_ASSERT_ERR_HAS("do not fit dtype uint8");
  assert_null(crl_spec_bounded(CRL_INT32, CRL_SHAPE(2), -INFINITY, 3));
  CRL_ASSERT_ERR_HAS("do not fit dtype int32");
  assert_null(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(-1), 0, 1));
  CRL_ASSERT_ERR_HAS("negative size");

  assert_null(crl_spec_discrete(0, CRL_INT64, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("spec_discrete: n must be positive, got 0");
  assert_null(crl_spec_discrete(-3, CRL_INT64, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("got -3");
  assert_null(crl_spec_discrete(3, CRL_FLOAT32, CRL_SCALAR));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("float32 is not an integer dtype");
  assert_null(crl_spec_discrete(300, CRL_UINT8, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("uint8 cannot hold 300 categories");

  assert_null(crl_spec_one_hot(4, CRL_INT64, CRL_SHAPE(2, 3)));
  CRL_ASSERT_ERR_HAS(
      "spec_one_hot: the last dim of shape [2, 3] must be n = 4");
  assert_null(crl_spec_one_hot(0, CRL_INT64, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("n must be positive");

  assert_null(
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_BOOL, CRL_SHAPE(4)));
  CRL_ASSERT_ERR_HAS("the last dim of shape [4] must be sum(nvec) = 5");
  assert_null(
      crl_spec_multi_one_hot(2, (int64_t[]){2, 0}, CRL_BOOL, CRL_SHAPE(2)));
  CRL_ASSERT_ERR_HAS("nvec[1] = 0 must be a positive size");
  assert_null(crl_spec_multi_one_hot(0, NULL, CRL_BOOL, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("at least one group");

  assert_null(crl_spec_binary(CRL_INT64, CRL_SCALAR));
  CRL_ASSERT_ERR_HAS("at least one dim");
  assert_null(crl_spec_binary(CRL_INT64, CRL_SHAPE(3, 0)));
  CRL_ASSERT_ERR_HAS("must be positive");
  assert_null(crl_spec_unbounded((crl_dtype)99, CRL_SCALAR));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);

  crl_tensor *lo =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){0, 1, 5});
  crl_tensor *hi =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){1, 2, 4});
  crl_tensor *hi2 = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){1, 2});
  crl_tensor *hi64 = crl_zeros(CRL_FLOAT64, CRL_SHAPE(3));
  assert_null(crl_spec_bounded_tensor(lo, hi));
  CRL_ASSERT_ERR_HAS("element 2 has low 5 and high 4");
  assert_null(crl_spec_bounded_tensor(lo, hi2));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("low has shape [3] but high has [2]");
  assert_null(crl_spec_bounded_tensor(lo, hi64));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("low is float32 but high is float64");
}

static void test_inspection(void **state) {
  (void)state;
  crl_spec *b = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2, 3), -1.5, 2);
  CRL_CHECK_PTR(b);
  assert_int_equal(crl_spec_kind_of(b), CRL_SPEC_BOUNDED);
  assert_string_equal(crl_spec_kind_name(CRL_SPEC_BOUNDED),
                      "BoundedTensorSpec");
  assert_int_equal(crl_spec_dtype(b), CRL_FLOAT32);
  assert_int_equal(crl_spec_device(b).type, CRL_CPU);
  assert_int_equal(crl_spec_ndim(b), 2);
  assert_int_equal(crl_spec_shape(b)[1], 3);
  assert_int_equal(crl_spec_n(b), 0);
  assert_shape(crl_spec_low(b), CRL_SHAPE(2, 3));
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_low(b), 5), -1.5, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(b), 0), 2, 0);

  /* integer bounds are rounded inward */
  crl_spec *bi = crl_spec_bounded(CRL_INT64, CRL_SHAPE(1), -2.5, 3.5);
  CRL_CHECK_PTR(bi);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_low(bi), 0), -2, 0);
  ASSERT_NEAR(crl_tensor_get_flat(crl_spec_high(bi), 0), 3, 0);

  crl_spec *oh = crl_spec_one_hot(4, CRL_BOOL, CRL_SCALAR);
  CRL_CHECK_PTR(oh);
  assert_int_equal(crl_spec_ndim(oh), 1);
  assert_int_equal(crl_spec_shape(oh)[0], 4);
  assert_int_equal(crl_spec_n(oh), 4);
  assert_null(crl_spec_low(oh));

  int k;
  crl_spec *m =
      crl_spec_multi_one_hot(3, (int64_t[]){2, 3, 1}, CRL_UINT8, CRL_SCALAR);
  CRL_CHECK_PTR(m);
  const int64_t *nv = crl_spec_nvec(m, &k);
  assert_int_equal(k, 3);
  assert_int_equal(nv[1], 3);
  assert_int_equal(crl_spec_shape(m)[0], 6);
  assert_null(crl_spec_nvec(oh, &k));
  assert_int_equal(k, 0);

  crl_spec *bin = crl_spec_binary(CRL_INT64, CRL_SHAPE(2, 5));
  CRL_CHECK_PTR(bin);
  assert_int_equal(crl_spec_n(bin), 5);
}

/* ---- rand: in the spec, covering the domain ------------------------------ */

static void test_rand_unbounded(void **state) {
  (void)state;
  crl_spec *s = crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(3));
  crl_tensor *t = draws(s, 1);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = crl_tensor_get_flat(t, i);
    sum += v, sq += v * v;
  }
  double mean = sum / (double)t->numel;
  ASSERT_NEAR(mean, 0, 0.05);
  ASSERT_NEAR(sq / (double)t->numel - mean * mean, 1, 0.06);

  crl_spec *si = crl_spec_unbounded(CRL_INT32, CRL_SHAPE(2));
  crl_tensor *ti = draws(si, 2);
  bool big = false;
  for (int64_t i = 0; i < ti->numel; i++) {
    double v = crl_tensor_get_flat(ti, i);
    assert_true(v >= 0);
    big |= v > 1e9;
  }
  assert_true(big); /* torch's random_(): [0, INT32_MAX] */
  draws(crl_spec_unbounded(CRL_BOOL, CRL_SHAPE(2)), 3);
  draws(crl_spec_unbounded(CRL_INT64, CRL_SCALAR), 3);
}

static void test_rand_bounded(void **state) {
  (void)state;
  crl_spec *s = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -2, 2);
  crl_tensor *t = draws(s, 10);
  int bins[4] = {0};
  double mn = 1e9, mx = -1e9;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = crl_tensor_get_flat(t, i);
    bins[(int)floor(v + 2) < 4 ? (int)floor(v + 2) : 3]++;
    mn = fmin(mn, v), mx = fmax(mx, v);
  }
  for (int b = 0; b < 4; b++)
    ASSERT_NEAR(bins[b], t->numel / 4.0, 150);
  assert_true(mn < -1.99 && mx > 1.99);

  /* per-element bounds (one degenerate), float64 */
  crl_tensor *lo =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){0, 10, -1});
  crl_tensor *hi =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){1, 20, -1});
  crl_spec *pe = crl_spec_bounded_tensor(lo, hi);
  CRL_CHECK_PTR(pe);
  crl_tensor *tp = draws(pe, 11);
  double m1 = 0;
  for (int64_t r = 0; r < NDRAWS; r++) {
    m1 += crl_tensor_get(tp, (int64_t[]){r, 1});
    assert_true(crl_tensor_get(tp, (int64_t[]){r, 2}) == -1);
  }
  ASSERT_NEAR(m1 / NDRAWS, 15, 0.3);

  /* integers: uniform on [low, high] inclusive */
  crl_spec *si = crl_spec_bounded(CRL_INT64, CRL_SHAPE(1), -2, 3);
  crl_tensor *ti = draws(si, 12);
  int seen[6] = {0};
  for (int64_t i = 0; i < ti->numel; i++)
    seen[(int)crl_tensor_get_flat(ti, i) + 2]++;
  for (int v = 0; v < 6; v++)
    ASSERT_NEAR(seen[v], NDRAWS / 6.0, 120);

  crl_tensor *li = crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){0, 5});
  crl_tensor *hi2 = crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){1, 7});
  crl_tensor *tpi = draws(crl_spec_bounded_tensor(li, hi2), 13);
  int seen2[8] = {0};
  for (int64_t i = 0; i < tpi->numel; i++)
    seen2[(int)crl_tensor_get_flat(tpi, i)]++;
  for (int v = 0; v < 8; v++)
    assert_true((v < 2 || v >= 5) == (seen2[v] > 0));

  draws(crl_spec_bounded(CRL_UINT8, CRL_SHAPE(4), 0, 255), 14);
  draws(crl_spec_bounded(CRL_BOOL, CRL_SHAPE(4), 0, 1), 15);

  /* half-infinite and infinite bounds */
  crl_tensor *th =
      draws(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), 1, INFINITY), 16);
  for (int64_t i = 0; i < th->numel; i++)
    assert_true(crl_tensor_get_flat(th, i) >= 1);
  crl_tensor *tl =
      draws(crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(2), -INFINITY, -3), 17);
  for (int64_t i = 0; i < tl->numel; i++)
    assert_true(crl_tensor_get_flat(tl, i) <= -3);
  draws(crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(2), -INFINITY, INFINITY), 18);
  /* a huge range does not overflow */
  draws(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -3e38, 3e38), 19);
}

static void test_rand_discrete_kinds(void **state) {
  (void)state;
  crl_spec *d = crl_spec_discrete(5, CRL_INT64, CRL_SHAPE(3));
  crl_tensor *td = draws(d, 20);
  int seen[5] = {0};
  for (int64_t i = 0; i < td->numel; i++)
    seen[(int)crl_tensor_get_flat(td, i)]++;
  for (int v = 0; v < 5; v++)
    ASSERT_NEAR(seen[v], td->numel / 5.0, 200);
  draws(crl_spec_discrete(2, CRL_BOOL, CRL_SCALAR), 21);
  draws(crl_spec_discrete(256, CRL_UINT8, CRL_SHAPE(1)), 21);

  crl_spec *oh = crl_spec_one_hot(4, CRL_INT64, CRL_SHAPE(2, 4));
  crl_tensor *to = draws(oh, 22);
  int cat[4] = {0};
  for (int64_t i = 0; i < to->numel; i++)
    if (crl_tensor_get_flat(to, i) == 1) cat[i % 4]++;
  for (int v = 0; v < 4; v++)
    ASSERT_NEAR(cat[v], NDRAWS * 2 / 4.0, 150);
  draws(crl_spec_one_hot(3, CRL_BOOL, CRL_SCALAR), 23);
  draws(crl_spec_one_hot(3, CRL_FLOAT32, CRL_SCALAR), 23);

  crl_spec *m =
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_UINT8, CRL_SHAPE(5));
  crl_tensor *tm = draws(m, 24);
  int mc[5] = {0};
  for (int64_t i = 0; i < tm->numel; i++)
    if (crl_tensor_get_flat(tm, i) == 1) mc[i % 5]++;
  ASSERT_NEAR(mc[0], NDRAWS / 2.0, 120);
  ASSERT_NEAR(mc[1], NDRAWS / 2.0, 120);
  for (int v = 2; v < 5; v++)
    ASSERT_NEAR(mc[v], NDRAWS / 3.0, 120);

  crl_spec *b = crl_spec_binary(CRL_BOOL, CRL_SHAPE(6));
  crl_tensor *tb = draws(b, 25);
  ASSERT_NEAR(crl_sum_value(tb), tb->numel / 2.0, 200);
  draws(crl_spec_binary(CRL_FLOAT32, CRL_SHAPE(2, 3)), 26);
}

static void test_rand_batch_reproducible(void **state) {
  (void)state;
  crl_spec *s = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), 0, 1);
  crl_rng g1 = seeded_rng(7), g2 = seeded_rng(7), g3 = seeded_rng(8);
  crl_tensor *a = crl_spec_rand(s, &g1, 2, (int64_t[]){4, 5});
  crl_tensor *b = crl_spec_rand(s, &g2, 2, (int64_t[]){4, 5});
  crl_tensor *c = crl_spec_rand(s, &g3, 2, (int64_t[]){4, 5});
  CRL_CHECK_PTR(a);
  assert_shape(a, CRL_SHAPE(4, 5, 3));
  assert_true(crl_equal(a, b));
  assert_false(crl_equal(a, c));
  assert_int_equal(g1.counter, g2.counter);
  /* the next draws continue the stream */
  assert_false(crl_equal(crl_spec_rand(s, &g1, 2, (int64_t[]){4, 5}), a));

  assert_null(crl_spec_rand(s, NULL, 0, NULL));
  CRL_ASSERT_ERR_HAS("generator is NULL");
  assert_null(crl_spec_rand(s, &g1, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}));
  CRL_ASSERT_ERR_HAS("spec_rand: 8 batch dims + a spec of 1 dims exceed 8");
  assert_null(crl_spec_rand(s, &g1, 1, (int64_t[]){-2}));
  CRL_ASSERT_ERR_HAS("negative size -2");
  crl_spec *comp = crl_spec_composite(CRL_SCALAR);
  assert_null(crl_spec_rand(comp, &g1, 0, NULL));
  CRL_ASSERT_ERR_HAS("CompositeSpec has no single value");
  assert_null(crl_spec_zero(comp, 0, NULL));
}

/* ---- zero ---------------------------------------------------------------- */

static void test_zero(void **state) {
  (void)state;
  check_zero(crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(3)));
  check_zero(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1, 1));
  check_zero(crl_spec_discrete(3, CRL_INT64, CRL_SHAPE(2)));
  check_zero(crl_spec_one_hot(3, CRL_INT64, CRL_SCALAR));
  check_zero(
      crl_spec_multi_one_hot(2, (int64_t[]){2, 2}, CRL_BOOL, CRL_SCALAR));
  check_zero(crl_spec_binary(CRL_UINT8, CRL_SHAPE(3)));

  /* bounded specs not containing 0: the nearest bound */
  crl_spec *pos = crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(2), 1, 3);
  check_zero(pos);
  crl_tensor *z = crl_spec_zero(pos, 0, NULL);
  assert_tensor_values(z, (double[]){1, 1}, 2, 0);
  crl_tensor *lo =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){-3, -1, 2});
  crl_tensor *hi =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){-1, 1, 5});
  crl_spec *pe = crl_spec_bounded_tensor(lo, hi);
  check_zero(pe);
  assert_tensor_values(crl_spec_zero(pe, 0, NULL), (double[]){-1, 0, 2}, 3, 0);
  /* one-hot: the first category */
  crl_tensor *oz = crl_spec_zero(
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_INT64, CRL_SCALAR), 0,
      NULL);
  assert_tensor_values(oz, (double[]){1, 0, 1, 0, 0}, 5, 0);
}

/* ---- is_in --------------------------------------------------------------- */

static void test_is_in(void **state) {
  (void)state;
  crl_spec *b = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), -1, 1);
  crl_tensor *ok =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 2), (float[]){-1, 1, 0.5f, 0});
  assert_true(crl_spec_is_in(b, ok));
  crl_tensor *out =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 2), (float[]){-1, 1, 1.5f, 0});
  assert_false(crl_spec_is_in(b, out));
  crl_clear_error();
  assert_int_equal(crl_spec_assert_is_in(b, out), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value 1.5 at index [1, 0] is outside the bounds [-1, 1]");
  CRL_ASSERT_ERR_HAS("BoundedTensorSpec");
  /* is_in itself leaves the error state alone */
  crl_clear_error();
  assert_false(crl_spec_is_in(b, out));
  assert_int_equal(crl_last_error_code(), CRL_OK);

  crl_tensor *nan =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){NAN, 0});
  assert_false(crl_spec_is_in(b, nan));
  crl_tensor *wrong_shape = crl_zeros(CRL_FLOAT32, CRL_SHAPE(3));
  assert_int_equal(crl_spec_assert_is_in(b, wrong_shape), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("shape [3] does not end with the spec's shape [2]");
  crl_tensor *wrong_dtype = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2));
  assert_int_equal(crl_spec_assert_is_in(b, wrong_dtype), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("dtype float64, the spec expects float32");
  assert_false(crl_spec_is_in(b, crl_zeros(CRL_FLOAT32, CRL_SCALAR)));
  /* empty batch: vacuously in */
  assert_true(crl_spec_is_in(b, crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 2))));

  /* unbounded: +-inf yes, NaN no */
  crl_spec *u = crl_spec_unbounded(CRL_FLOAT64, CRL_SHAPE(2));
  crl_tensor *inf = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2),
                                   (double[]){INFINITY, -INFINITY});
  assert_true(crl_spec_is_in(u, inf));
  crl_tensor *un =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){0, NAN});
  assert_int_equal(crl_spec_assert_is_in(u, un), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value nan at index [1]");

  crl_spec *d = crl_spec_discrete(3, CRL_INT64, CRL_SCALAR);
  assert_true(crl_spec_is_in(
      d, crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){0, 1, 2})));
  crl_tensor *dbad =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){0, 3, -1});
  assert_int_equal(crl_spec_assert_is_in(d, dbad), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value 3 at index [1] is not a category in [0, 3)");
  assert_false(crl_spec_is_in(
      d, crl_from_array(CRL_INT64, CRL_SHAPE(1), (int64_t[]){-1})));

  crl_spec *oh = crl_spec_one_hot(3, CRL_INT64, CRL_SCALAR);
  assert_true(
      crl_spec_is_in(oh, crl_from_array(CRL_INT64, CRL_SHAPE(2, 3),
                                        (int64_t[]){0, 1, 0, 1, 0, 0})));
  crl_tensor *two =
      crl_from_array(CRL_INT64, CRL_SHAPE(2, 3), (int64_t[]){0, 1, 0, 1, 0, 1});
  assert_int_equal(crl_spec_assert_is_in(oh, two), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS(
      "starting at index [1, 0] have 2 ones (needs exactly one)");
  assert_false(crl_spec_is_in(oh, crl_zeros(CRL_INT64, CRL_SHAPE(3))));
  crl_tensor *seven =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){0, 7, 0});
  assert_int_equal(crl_spec_assert_is_in(oh, seven), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value 7 at index [1] is not 0 or 1");

  crl_spec *m =
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_BOOL, CRL_SCALAR);
  uint8_t good[5] = {0, 1, 0, 0, 1}, bad[5] = {0, 1, 0, 0, 0};
  assert_true(crl_spec_is_in(m, crl_from_array(CRL_BOOL, CRL_SHAPE(5), good)));
  assert_int_equal(
      crl_spec_assert_is_in(m, crl_from_array(CRL_BOOL, CRL_SHAPE(5), bad)),
      CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("(group 1 of size 3) have 0 ones");

  crl_spec *bin = crl_spec_binary(CRL_FLOAT32, CRL_SHAPE(3));
  assert_true(crl_spec_is_in(
      bin, crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){0, 1, 1})));
  crl_tensor *half =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3), (float[]){0, 0.5f, 1});
  assert_int_equal(crl_spec_assert_is_in(bin, half), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value 0.5 at index [1] is not 0 or 1");

  /* non-contiguous input: a transposed view */
  crl_tensor *base =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3), (float[]){0, 0, 0, 0, 0, 5});
  crl_tensor *tr = crl_transpose(base, 0, 1); /* [3, 2] */
  assert_false(crl_spec_is_in(b, tr));
  assert_int_equal(crl_spec_assert_is_in(b, tr), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("value 5 at index [2, 1]");
}

/* ---- project ------------------------------------------------------------- */

static void test_project(void **state) {
  (void)state;
  crl_spec *b = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), -1, 2);
  crl_tensor *v = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2, 3),
                                 (float[]){-5, 0.5f, 9, NAN, -1, 2});
  crl_tensor *p = crl_spec_project(b, v);
  CRL_CHECK_PTR(p);
  assert_tensor_values(p, (double[]){-1, 0.5, 2, -1, -1, 2}, 6, 0);
  assert_true(crl_spec_is_in(b, p));
  ASSERT_NEAR(crl_tensor_get_flat(v, 0), -5, 0); /* input untouched */
  /* dtype conversion: float64 in, float32 out */
  crl_tensor *v64 =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){3, 0.25, -3});
  crl_tensor *p64 = crl_spec_project(b, v64);
  assert_int_equal(p64->dtype, CRL_FLOAT32);
  assert_tensor_values(p64, (double[]){2, 0.25, -1}, 3, 0);

  /* per-element bounds, with a batch dim */
  crl_tensor *lo = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){0, 10});
  crl_tensor *hi = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){1, 20});
  crl_spec *pe = crl_spec_bounded_tensor(lo, hi);
  crl_tensor *pv =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 2), (double[]){0.5, 0.5, 7, 25});
  assert_tensor_values(crl_spec_project(pe, pv), (double[]){0.5, 10, 1, 20}, 4,
                       0);
  /* bounded integers from floats: rounded then clamped */
  crl_spec *bi = crl_spec_bounded(CRL_INT32, CRL_SHAPE(4), 0, 5);
  crl_tensor *fv =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(4), (float[]){2.6f, -3, 9, 2.5f});
  crl_tensor *pi = crl_spec_project(bi, fv);
  assert_int_equal(pi->dtype, CRL_INT32);
  assert_tensor_values(pi, (double[]){3, 0, 5, 2}, 4, 0);

  crl_spec *d = crl_spec_discrete(4, CRL_INT64, CRL_SCALAR);
  crl_tensor *dv = crl_from_array(CRL_FLOAT64, CRL_SHAPE(5),
                                  (double[]){-2, 1.4, 1.6, 10, NAN});
  crl_tensor *pd = crl_spec_project(d, dv);
  assert_int_equal(pd->dtype, CRL_INT64);
  assert_tensor_values(pd, (double[]){0, 1, 2, 3, 0}, 5, 0);
  crl_tensor *din =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){3, 0, 2});
  assert_true(crl_equal(crl_spec_project(d, din), din));

  crl_spec *oh = crl_spec_one_hot(3, CRL_INT64, CRL_SCALAR);
  crl_tensor *logits =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 3),
                     (float[]){0.1f, 2, -1, 5, 5, 0, NAN, -1, -2});
  crl_tensor *po = crl_spec_project(oh, logits);
  assert_int_equal(po->dtype, CRL_INT64);
  assert_tensor_values(po, (double[]){0, 1, 0, 1, 0, 0, 0, 1, 0}, 9, 0);
  crl_tensor *valid =
      crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){0, 0, 1});
  assert_true(crl_equal(crl_spec_project(oh, valid), valid));

  crl_spec *m =
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_UINT8, CRL_SCALAR);
  crl_tensor *mv =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(5), (float[]){-1, -2, 0, 3, 1});
  assert_tensor_values(crl_spec_project(m, mv), (double[]){1, 0, 0, 1, 0}, 5,
                       0);

  crl_spec *bin = crl_spec_binary(CRL_BOOL, CRL_SHAPE(4));
  crl_tensor *bv =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(4), (float[]){0.2f, 0.5f, 0.7f, 3});
  crl_tensor *pb = crl_spec_project(bin, bv);
  assert_int_equal(pb->dtype, CRL_BOOL);
  assert_tensor_values(pb, (double[]){0, 0, 1, 1}, 4, 0);

  crl_spec *u = crl_spec_unbounded(CRL_INT32, CRL_SHAPE(3));
  crl_tensor *uv =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){1.5, -1e12, 2.5});
  assert_tensor_values(crl_spec_project(u, uv), (double[]){2, INT32_MIN, 2}, 3,
                       0);

  /* non-contiguous input */
  crl_tensor *base = crl_from_array(CRL_FLOAT32, CRL_SHAPE(3, 2),
                                    (float[]){-9, 0, 0, 0, 9, 0});
  crl_tensor *tr = crl_transpose(base, 0, 1); /* [2, 3] */
  assert_tensor_values(crl_spec_project(b, tr), (double[]){-1, 0, 2, 0, 0, 0},
                       6, 0);

  assert_null(crl_spec_project(b, crl_zeros(CRL_FLOAT32, CRL_SHAPE(2, 2))));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("spec_project: shape [2, 2] does not end with the "
                     "spec's shape [3]");
}

/* ---- encode -------------------------------------------------------------- */

static void test_encode(void **state) {
  (void)state;
  crl_spec *b = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2, 2), -1, 1);
  crl_tensor *e =
      crl_spec_encode(b, (double[]){0.5, -0.5, 1, 0}, CRL_FLOAT64, 4);
  CRL_CHECK_PTR(e);
  assert_int_equal(e->dtype, CRL_FLOAT32);
  assert_shape(e, CRL_SHAPE(2, 2));
  assert_tensor_values(e, (double[]){0.5, -0.5, 1, 0}, 4, 0);
  assert_null(crl_spec_encode(b, (double[]){1, 2, 3}, CRL_FLOAT64, 3));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  CRL_ASSERT_ERR_HAS("3 values do not fill the spec's shape [2, 2] (4 values)");

  crl_spec *d = crl_spec_discrete(5, CRL_INT64, CRL_SHAPE(3));
  crl_tensor *ed = crl_spec_encode(d, (int32_t[]){4, 0, 2}, CRL_INT32, 3);
  assert_int_equal(ed->dtype, CRL_INT64);
  assert_tensor_values(ed, (double[]){4, 0, 2}, 3, 0);

  /* one-hot: full values, or one index per row */
  crl_spec *oh = crl_spec_one_hot(3, CRL_BOOL, CRL_SHAPE(2, 3));
  crl_tensor *ei = crl_spec_encode(oh, (int64_t[]){2, 0}, CRL_INT64, 2);
  CRL_CHECK_PTR(ei);
  assert_tensor_values(ei, (double[]){0, 0, 1, 1, 0, 0}, 6, 0);
  assert_true(crl_spec_is_in(oh, ei));
  crl_tensor *ev =
      crl_spec_encode(oh, (uint8_t[]){0, 1, 0, 0, 0, 1}, CRL_UINT8, 6);
  assert_tensor_values(ev, (double[]){0, 1, 0, 0, 0, 1}, 6, 0);
  assert_null(crl_spec_encode(oh, (int64_t[]){3, 0}, CRL_INT64, 2));
  assert_int_equal(crl_last_error_code(), CRL_EINDEX);
  CRL_ASSERT_ERR_HAS("index 3 at position 0 is not a category of a group of "
                     "size 3");
  assert_null(crl_spec_encode(oh, (int64_t[]){0, 0, 0}, CRL_INT64, 3));
  CRL_ASSERT_ERR_HAS("fit neither the spec's shape [2, 3] (6 values) nor its "
                     "2 category indices");

  crl_spec *m =
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_INT64, CRL_SCALAR);
  crl_tensor *em = crl_spec_encode(m, (double[]){1, 2}, CRL_FLOAT64, 2);
  assert_tensor_values(em, (double[]){0, 1, 0, 0, 1}, 5, 0);
  assert_null(crl_spec_encode(m, (double[]){1, 3}, CRL_FLOAT64, 2));
  CRL_ASSERT_ERR_HAS("index 3 at position 1");
  assert_null(crl_spec_encode(m, (double[]){0.5, 1}, CRL_FLOAT64, 2));
  assert_null(crl_spec_encode(b, NULL, CRL_FLOAT64, 4));
  CRL_ASSERT_ERR_HAS("data is NULL");
}

/* ---- expand, equal, clone ------------------------------------------------ */

static void test_expand_equal(void **state) {
  (void)state;
  crl_tensor *lo = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){0, 1});
  crl_tensor *hi = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){1, 3});
  crl_spec *pe = crl_spec_bounded_tensor(lo, hi);
  crl_spec *x = crl_spec_expand(pe, 2, (int64_t[]){4, 3});
  CRL_CHECK_PTR(x);
  assert_int_equal(crl_spec_ndim(x), 3);
  assert_int_equal(crl_spec_shape(x)[0], 4);
  assert_int_equal(crl_spec_shape(x)[2], 2);
  assert_shape(crl_spec_low(x), CRL_SHAPE(4, 3, 2));
  ASSERT_NEAR(crl_tensor_get(crl_spec_high(x), (int64_t[]){3, 2, 1}), 3, 0);
  crl_rng g = seeded_rng(30);
  crl_tensor *r = crl_spec_rand(x, &g, 0, NULL);
  assert_shape(r, CRL_SHAPE(4, 3, 2));
  assert_true(crl_spec_is_in(x, r));
  assert_true(crl_spec_is_in(pe, r)); /* leading dims are batch dims */
  assert_false(crl_spec_is_in(x, crl_spec_rand(pe, &g, 1, (int64_t[]){4})));

  crl_spec *oh = crl_spec_one_hot(3, CRL_INT64, CRL_SCALAR);
  crl_spec *ox = crl_spec_expand(oh, 1, (int64_t[]){5});
  assert_int_equal(crl_spec_n(ox), 3);
  assert_true(
      crl_spec_equal(ox, crl_spec_one_hot(3, CRL_INT64, CRL_SHAPE(5, 3))));
  crl_spec *mx = crl_spec_expand(
      crl_spec_multi_one_hot(2, (int64_t[]){1, 2}, CRL_BOOL, CRL_SCALAR), 1,
      (int64_t[]){2});
  int k;
  assert_int_equal(crl_spec_nvec(mx, &k)[1], 2);
  assert_int_equal(crl_spec_shape(mx)[1], 3);
  assert_null(crl_spec_expand(pe, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}));
  CRL_ASSERT_ERR_HAS("spec_expand: 8 batch dims + a spec of 1 dims exceed 8");

  /* equal: kind, dtype, shape and domain */
  crl_spec *a = crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), 0, 1);
  assert_true(
      crl_spec_equal(a, crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), 0, 1)));
  crl_tensor *z = crl_zeros(CRL_FLOAT32, CRL_SHAPE(2));
  crl_tensor *o = crl_ones(CRL_FLOAT32, CRL_SHAPE(2));
  assert_true(crl_spec_equal(a, crl_spec_bounded_tensor(z, o)));
  assert_false(crl_spec_equal(a, pe));
  assert_false(
      crl_spec_equal(a, crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(2), 0, 2)));
  assert_false(
      crl_spec_equal(a, crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(2), 0, 1)));
  assert_false(
      crl_spec_equal(a, crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(3), 0, 1)));
  assert_false(
      crl_spec_equal(a, crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(2))));
  assert_false(crl_spec_equal(crl_spec_discrete(3, CRL_INT64, CRL_SCALAR),
                              crl_spec_discrete(4, CRL_INT64, CRL_SCALAR)));
  assert_false(crl_spec_equal(
      crl_spec_multi_one_hot(2, (int64_t[]){1, 2}, CRL_BOOL, CRL_SCALAR),
      crl_spec_multi_one_hot(2, (int64_t[]){2, 1}, CRL_BOOL, CRL_SCALAR)));
  /* leaves are immutable: clone shares them */
  crl_spec *c = crl_spec_clone(a);
  assert_ptr_equal(c, a);
  assert_true(crl_spec_equal(c, a));
}

/* ---- lifetime ------------------------------------------------------------ */

static void test_lifetime(void **state) {
  (void)state;
  crl_scope_begin();
  crl_spec *kept =
      crl_spec_retain(crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(3), -1, 1));
  crl_spec_bounded(CRL_FLOAT64, CRL_SHAPE(3), -1, 1); /* freed by the scope */
  crl_scope_end();
  crl_rng g = seeded_rng(1);
  crl_tensor *t = crl_spec_rand(kept, &g, 0, NULL);
  assert_true(crl_spec_is_in(kept, t));
  crl_spec_release(kept);
}

/* ---- print --------------------------------------------------------------- */

static void assert_repr(const crl_spec *s, const char *expect) {
  char buf[600];
  int n = crl_spec_to_string(s, buf, sizeof buf);
  assert_int_equal(n, (int)strlen(expect));
  assert_string_equal(buf, expect);
}

static void test_print(void **state) {
  (void)state;
  assert_repr(crl_spec_bounded(CRL_FLOAT32, CRL_SHAPE(1), -2, 2),
              "BoundedTensorSpec(shape=[1], space=ContinuousBox(low=-2.0, "
              "high=2.0), device=cpu, dtype=float32, domain=continuous)");
  assert_repr(crl_spec_bounded(CRL_INT64, CRL_SHAPE(2), 0, 5),
              "BoundedTensorSpec(shape=[2], space=ContinuousBox(low=0, "
              "high=5), device=cpu, dtype=int64, domain=discrete)");
  assert_repr(crl_spec_bounded(CRL_FLOAT64, CRL_SCALAR, 0.25, INFINITY),
              "BoundedTensorSpec(shape=[], space=ContinuousBox(low=0.25, "
              "high=inf), device=cpu, dtype=float64, domain=continuous)");
  crl_tensor *lo = crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){0, 1});
  crl_tensor *hi =
      crl_from_array(CRL_FLOAT32, CRL_SHAPE(2), (float[]){1, 2.5f});
  assert_repr(crl_spec_bounded_tensor(lo, hi),
              "BoundedTensorSpec(shape=[2], space=ContinuousBox(low=[0.0, "
              "1.0], high=[1.0, 2.5]), device=cpu, dtype=float32, "
              "domain=continuous)");
  assert_repr(crl_spec_unbounded(CRL_FLOAT32, CRL_SHAPE(3)),
              "UnboundedContinuousTensorSpec(shape=[3], space=None, "
              "device=cpu, dtype=float32, domain=continuous)");
  assert_repr(crl_spec_unbounded(CRL_INT64, CRL_SHAPE(1)),
              "UnboundedDiscreteTensorSpec(shape=[1], space=None, "
              "device=cpu, dtype=int64, domain=discrete)");
  assert_repr(crl_spec_one_hot(2, CRL_INT64, CRL_SCALAR),
              "OneHotDiscreteTensorSpec(shape=[2], space=DiscreteBox(n=2), "
              "device=cpu, dtype=int64, domain=discrete)");
  assert_repr(crl_spec_discrete(4, CRL_INT64, CRL_SCALAR),
              "DiscreteTensorSpec(shape=[], space=DiscreteBox(n=4), "
              "device=cpu, dtype=int64, domain=discrete)");
  assert_repr(
      crl_spec_multi_one_hot(2, (int64_t[]){2, 3}, CRL_BOOL, CRL_SCALAR),
      "MultiOneHotDiscreteTensorSpec(shape=[5], "
      "space=BoxList(boxes=[DiscreteBox(n=2), DiscreteBox(n=3)]), "
      "device=cpu, dtype=bool, domain=discrete)");
  assert_repr(crl_spec_binary(CRL_UINT8, CRL_SHAPE(4)),
              "BinaryDiscreteTensorSpec(shape=[4], space=BinaryBox(n=4), "
              "device=cpu, dtype=uint8, domain=discrete)");
  /* truncation and length */
  char small[10];
  crl_spec *s = crl_spec_binary(CRL_UINT8, CRL_SHAPE(4));
  int n = crl_spec_to_string(s, small, sizeof small);
  assert_true(n > 10);
  assert_string_equal(small, "BinaryDis");
  assert_int_equal(crl_spec_to_string(s, NULL, 0), n);
  FILE *f = tmpfile();
  CRL_CHECK_OK(crl_spec_print(s, f));
  assert_int_equal(ftell(f), n + 1);
  fclose(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_bad_construction),
      CRL_TEST(test_inspection),
      CRL_TEST(test_rand_unbounded),
      CRL_TEST(test_rand_bounded),
      CRL_TEST(test_rand_discrete_kinds),
      CRL_TEST(test_rand_batch_reproducible),
      CRL_TEST(test_zero),
      CRL_TEST(test_is_in),
      CRL_TEST(test_project),
      CRL_TEST(test_encode),
      CRL_TEST(test_expand_equal),
      CRL_TEST(test_lifetime),
      CRL_TEST(test_print),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
