/* Philox4x32-10 generator: known answers, counter bookkeeping, thread-count
 * independence, statistics and errors. */
#include "test_util.h"

#include <float.h>
#include <stdlib.h>

#include "core/internal.h"

/* ---- helpers ---------------------------------------------------------------
 */

/* Word w (0..3) of block b of a generator seeded with `seed`. */
static uint32_t word(uint64_t seed, uint64_t b, int w) {
  uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0, 0};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t out[4];
  crl__philox4x32_10(ctr, key, out);
  return out[w];
}

static double chi2(const int64_t *obs, const double *expect, int k) {
  double c = 0;
  for (int i = 0; i < k; i++) {
    double d = (double)obs[i] - expect[i];
    c += d * d / expect[i];
  }
  return c;
}

static void moments(const crl_tensor *t, double *mean, double *var) {
  double s = 0, s2 = 0;
  int64_t n = t->numel;
  for (int64_t i = 0; i < n; i++) {
    double v = t->dtype == CRL_FLOAT32 ? ((const float *)t->data)[i]
                                       : ((const double *)t->data)[i];
    s += v;
    s2 += v * v;
  }
  *mean = s / (double)n;
  *var = s2 / (double)n - *mean * *mean;
}

/* ---- known answers (Random123 tests/kat_vectors) ------------------------ */

static void test_philox_kat(void **state) {
  (void)state;
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    uint32_t out[4];
    crl__philox4x32_10(kat[i].ctr, kat[i].key, out);
    for (int w = 0; w < 4; w++)
      assert_int_equal(out[w], kat[i].out[w]);
  }
}

/* Scalar draws read block `counter` with key = seed and advance by one. */
static void test_scalar_counter_mapping(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 0);
  assert_int_equal(g.counter, 0);
  assert_int_equal(crl_rng_u32(&g), 0x6627e8d5);
  assert_int_equal(g.counter, 1);
  uint64_t seed = 0x299f31d0a4093822ull;
  crl_rng_seed(&g, seed);
  g.counter = 0x85a308d3243f6a88ull;
  uint64_t v = crl_rng_u64(&g);
  assert_int_equal(g.counter, 0x85a308d3243f6a89ull);
  uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0, 0},
           key[2] = {0xa4093822, 0x299f31d0};
  uint32_t out[4];
  crl__philox4x32_10(ctr, key, out);
  assert_true(v == ((uint64_t)out[1] << 32 | out[0]));
  /* uniform: top 53 bits of the same 64-bit word */
  crl_rng_seed(&g, 7);
  double u = crl_rng_uniform(&g);
  uint64_t x = (uint64_t)word(7, 0, 1) << 32 | word(7, 0, 0);
  assert_true(u == (double)(x >> 11) * 0x1p-53);
  /* counter wraps modulo 2^64 */
  g.counter = UINT64_MAX;
  crl_rng_u32(&g);
  assert_int_equal(g.counter, 0);
}

static void test_fill_values_and_blocks(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 42);
  g.counter = 10;
  float f[7];
  crl_rng_fill_uniform_f32(&g, f, 7, 0.0f, 1.0f);
  assert_int_equal(g.counter, 12); /* ceil(7/4) */
  for (int i = 0; i < 7; i++) {
    float e = (float)(word(42, 10 + i / 4, i % 4) >> 8) * 0x1p-24f;
    assert_true(f[i] == e);
  }
  /* float64 tensor: two values per block, top 53 bits */
  crl_rng_seed(&g, 42);
  crl_tensor *t = crl_rand(&g, CRL_FLOAT64, CRL_SHAPE(3));
  CRL_CHECK_PTR(t);
  assert_int_equal(g.counter, 2);
  for (int i = 0; i < 3; i++) {
    uint64_t x = (uint64_t)word(42, i / 2, 2 * (i % 2) + 1) << 32 |
                 word(42, i / 2, 2 * (i % 2));
    assert_true(((double *)t->data)[i] == (double)(x >> 11) * 0x1p-53);
  }
  /* float32 normal: Box–Muller on word pairs */
  /* (own vectorized log/sqrt/sincos: checked against libm in double) */
  crl_rng_seed(&g, 5);
  enum { NZ = 8192 };
  static float z[NZ];
  crl_rng_fill_normal_f32(&g, z, NZ, 0.0f, 1.0f);
  assert_int_equal(g.counter, NZ / 4);
  for (int p = 0; p < NZ / 2; p++) {
    double u1 = ((word(5, p / 2, 2 * (p % 2)) >> 8) + 1) * 0x1p-24;
    double u2 = (word(5, p / 2, 2 * (p % 2) + 1) >> 8) * 0x1p-24;
    double r = sqrt(-2 * log(u1));
    double c = r * cos(2 * M_PI * u2), s = r * sin(2 * M_PI * u2);
    ASSERT_NEAR(z[2 * p], c, 1e-6 * (1 + fabs(c)));
    ASSERT_NEAR(z[2 * p + 1], s, 1e-6 * (1 + fabs(s)));
  }
}

/* Blocks consumed by each call, as documented in random.h. */
static void test_consumption(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 1);
#define CONSUMES(expr, blocks)                                                 \
  do {                                                                         \
    uint64_t c0 = g.counter;                                                   \
    CRL_CHECK_PTR(expr);                                                       \
    assert_int_equal(g.counter - c0, (blocks));                                \
  } while (0)
  CONSUMES(crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(2, 3)), 2);
  CONSUMES(crl_rand(&g, CRL_FLOAT64, CRL_SHAPE(5)), 3);
  CONSUMES(crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(9)), 3);
  CONSUMES(crl_randn(&g, CRL_FLOAT64, CRL_SHAPE(4)), 2);
  CONSUMES(crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(0, 3)), 0);
  CONSUMES(crl_randint(&g, 0, 10, CRL_INT64, CRL_SHAPE(9)), 3);
  CONSUMES(crl_randint(&g, 0, INT64_MAX, CRL_INT64, CRL_SHAPE(3)), 2);
  CONSUMES(crl_randperm(&g, 10), 3);
  crl_tensor *p = crl_full(CRL_FLOAT32, CRL_SHAPE(9), 0.5);
  CONSUMES(crl_bernoulli(&g, p), 3);
  crl_tensor *w = crl_ones(CRL_FLOAT32, CRL_SHAPE(3, 5));
  CONSUMES(crl_categorical(&g, w), 2);
  crl_tensor *x = crl_zeros(CRL_FLOAT64, CRL_SHAPE(3));
  uint64_t c0 = g.counter;
  CRL_CHECK_OK(crl_normal_(x, &g, 0, 1));
  assert_int_equal(g.counter - c0, 2);
#undef CONSUMES
}

/* Drawing 8 then 12 values gives the same values as drawing 20. */
static void test_prefix_consistency(void **state) {
  (void)state;
  crl_rng a, b;
  crl_rng_seed(&a, 99);
  crl_rng_seed(&b, 99);
  float x[20], y[20];
  crl_rng_fill_normal_f32(&a, x, 20, 0, 1);
  crl_rng_fill_normal_f32(&b, y, 8, 0, 1);
  crl_rng_fill_normal_f32(&b, y + 8, 12, 0, 1);
  assert_memory_equal(x, y, sizeof x);
  assert_int_equal(a.counter, b.counter);
}

static void test_split(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 123);
  crl_rng s0 = crl_rng_split(&g, 0), s1 = crl_rng_split(&g, 1);
  crl_rng s0b = crl_rng_split(&g, 0);
  assert_int_equal(g.counter, 0); /* parent untouched */
  assert_true(s0.seed == s0b.seed && s0.counter == 0 && s1.counter == 0);
  assert_true(s0.seed != s1.seed && s0.seed != g.seed && s1.seed != g.seed);
  /* the streams differ, and differ from the parent's */
  crl_rng g2 = g;
  uint32_t a = crl_rng_u32(&s0), b = crl_rng_u32(&s1), c = crl_rng_u32(&g2);
  assert_true(a != b && a != c && b != c);
  /* after the parent advanced, sub-streams are fresh */
  crl_rng_u32(&g);
  crl_rng s0c = crl_rng_split(&g, 0);
  assert_true(s0c.seed != s0.seed);
  /* many sub-streams: all keys distinct, and first draws uncorrelated:
   * mean of the first uniform over 10000 sub-streams is ~0.5 */
  enum { N = 10000 };
  double sum = 0;
  uint64_t *keys = malloc(N * sizeof *keys);
  for (int i = 0; i < N; i++) {
    crl_rng s = crl_rng_split(&g, (uint64_t)i);
    keys[i] = s.seed;
    sum += crl_rng_uniform(&s);
  }
  ASSERT_NEAR(sum / N, 0.5, 0.015);
  for (int i = 1; i < N; i++)
    assert_true(keys[i] != keys[i - 1]);
  free(keys);
}

/* ---- thread-count independence ------------------------------------------ */

static crl_tensor *draw_all(uint64_t seed, crl_tensor *probs, crl_tensor *bp) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  int64_t n = 300001; /* several chunks plus a ragged tail */
  crl_tensor *parts[8];
  parts[0] = crl_rand(&g, CRL_FLOAT32, 1, &n);
  parts[1] = crl_randn(&g, CRL_FLOAT32, 1, &n);
  parts[2] = crl_rand(&g, CRL_FLOAT64, 1, &n);
  parts[3] = crl_randn(&g, CRL_FLOAT64, 1, &n);
  /* range 3 * 2^30 rejects a quarter of first tries: exercises retries */
  parts[4] = crl_randint(&g, -5, 3221225467ll, CRL_INT64, 1, &n);
  parts[5] = crl_bernoulli(&g, bp);
  parts[6] = crl_categorical(&g, probs);
  parts[7] = crl_randint(&g, INT64_MIN, INT64_MAX, CRL_INT64, 1, &n);
  /* pack as float64 for comparison */
  int64_t total = 0;
  for (int i = 0; i < 8; i++) {
    CRL_CHECK_PTR(parts[i]);
    total += parts[i]->numel;
  }
  crl_tensor *all = crl_empty(CRL_FLOAT64, 1, &total);
  double *o = all->data;
  for (int i = 0; i < 8; i++)
    for (int64_t k = 0; k < parts[i]->numel; k++)
      *o++ = crl_tensor_get_flat(parts[i], k);
  return all;
}

static void test_thread_independence(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 3);
  crl_tensor *probs = crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(70000, 5));
  crl_tensor *bp = crl_rand(&g, CRL_FLOAT64, CRL_SHAPE(300001));
  int saved = crl_get_num_threads();
  CRL_CHECK_OK(crl_set_num_threads(1));
  crl_tensor *a = draw_all(11, probs, bp);
  CRL_CHECK_OK(crl_set_num_threads(4));
  crl_tensor *b = draw_all(11, probs, bp);
  CRL_CHECK_OK(crl_set_num_threads(3));
  crl_tensor *c = draw_all(11, probs, bp);
  CRL_CHECK_OK(crl_set_num_threads(saved));
  assert_int_equal(a->numel, b->numel);
  assert_memory_equal(a->data, b->data, (size_t)a->numel * sizeof(double));
  assert_memory_equal(a->data, c->data, (size_t)a->numel * sizeof(double));
}

/* ---- statistics (fixed seeds: deterministic) ------------------------------
 */

static void test_uniform_stats(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 2024);
  double m, v;
  crl_tensor *t = crl_rand(&g, CRL_FLOAT32, CRL_SHAPE(1000000));
  moments(t, &m, &v);
  ASSERT_NEAR(m, 0.5, 2e-3);
  ASSERT_NEAR(v, 1.0 / 12, 1e-3);
  for (int64_t i = 0; i < t->numel; i++) {
    float x = ((float *)t->data)[i];
    if (!(x >= 0.0f && x < 1.0f)) fail_msg("rand value %g", x);
  }
  t = crl_rand(&g, CRL_FLOAT64, CRL_SHAPE(1000000));
  moments(t, &m, &v);
  ASSERT_NEAR(m, 0.5, 2e-3);
  ASSERT_NEAR(v, 1.0 / 12, 1e-3);
  /* uniform_ on [-3, 5): mean 1, var 64/12, never reaching hi */
  t = crl_empty(CRL_FLOAT32, CRL_SHAPE(1000000));
  CRL_CHECK_OK(crl_uniform_(t, &g, -3, 5));
  moments(t, &m, &v);
  ASSERT_NEAR(m, 1.0, 2e-2);
  ASSERT_NEAR(v, 64.0 / 12, 2e-2);
  for (int64_t i = 0; i < t->numel; i++) {
    float x = ((float *)t->data)[i];
    if (!(x >= -3.0f && x < 5.0f)) fail_msg("uniform_ value %g", x);
  }
  /* a range so narrow that lo + (hi-lo)*u rounds to hi: still < hi */
  float f[64];
  crl_rng_fill_uniform_f32(&g, f, 64, 1.0f, nextafterf(1.0f, 2.0f));
  for (int i = 0; i < 64; i++)
    assert_true(f[i] == 1.0f);
  /* degenerate lo == hi */
  CRL_CHECK_OK(crl_uniform_(t, &g, 2, 2));
  assert_true(((float *)t->data)[17] == 2.0f);
}

static void test_normal_stats(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 77);
  for (int k = 0; k < 2; k++) {
    crl_dtype dt = k ? CRL_FLOAT64 : CRL_FLOAT32;
    crl_tensor *t = crl_randn(&g, dt, CRL_SHAPE(1000000));
    double m, v, tail = 0, m3 = 0;
    moments(t, &m, &v);
    ASSERT_NEAR(m, 0.0, 5e-3);
    ASSERT_NEAR(v, 1.0, 5e-3);
    for (int64_t i = 0; i < t->numel; i++) {
      double x = crl_tensor_get_flat(t, i);
      if (!isfinite(x)) fail_msg("randn value %g", x);
      tail += fabs(x) > 1.959964;
      m3 += x * x * x;
    }
    ASSERT_NEAR(tail / 1e6, 0.05, 1.5e-3);
    ASSERT_NEAR(m3 / 1e6, 0.0, 2e-2); /* skewness */
  }
  /* normal_(mean, std) */
  crl_tensor *t = crl_empty(CRL_FLOAT64, CRL_SHAPE(200000));
  CRL_CHECK_OK(crl_normal_(t, &g, 3.0, 0.5));
  double m, v;
  moments(t, &m, &v);
  ASSERT_NEAR(m, 3.0, 5e-3);
  ASSERT_NEAR(v, 0.25, 5e-3);
  /* scalar draws */
  double s = 0, s2 = 0, su = 0;
  for (int i = 0; i < 100000; i++) {
    double z = crl_rng_normal(&g), u = crl_rng_uniform(&g);
    assert_true(u >= 0 && u < 1);
    s += z;
    s2 += z * z;
    su += u;
  }
  ASSERT_NEAR(s / 1e5, 0, 1.5e-2);
  ASSERT_NEAR(s2 / 1e5, 1, 2e-2);
  ASSERT_NEAR(su / 1e5, 0.5, 5e-3);
}

static void test_randint(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  /* chi-square over 10 values, 1e5 draws: df 9, 0.1% critical 27.9 */
  crl_tensor *t = crl_randint(&g, -3, 7, CRL_INT64, CRL_SHAPE(100000));
  CRL_CHECK_PTR(t);
  int64_t cnt[10] = {0};
  for (int64_t i = 0; i < t->numel; i++) {
    int64_t v = ((int64_t *)t->data)[i];
    if (v < -3 || v >= 7) fail_msg("randint value %lld", (long long)v);
    cnt[v + 3]++;
  }
  double e[10];
  for (int i = 0; i < 10; i++)
    e[i] = 1e4;
  double c = chi2(cnt, e, 10);
  if (c > 27.9) fail_msg("chi2 %g", c);
  /* range 3 * 2^30: a modulo method would favour the first third (2x);
   * Lemire's method with rejection is exact. df 2, 0.1% critical 13.8 */
  t = crl_randint(&g, 0, 3221225472ll, CRL_INT64, CRL_SHAPE(300000));
  int64_t third[3] = {0};
  for (int64_t i = 0; i < t->numel; i++) {
    int64_t v = ((int64_t *)t->data)[i];
    if (v < 0 || v >= 3221225472ll) fail_msg("value %lld", (long long)v);
    third[v >> 30]++;
  }
  double e3[3] = {1e5, 1e5, 1e5};
  c = chi2(third, e3, 3);
  if (c > 13.8) fail_msg("chi2 %g", c);
  /* the whole int64 range (two words per value): signs balanced */
  t = crl_randint(&g, INT64_MIN, INT64_MAX, CRL_INT64, CRL_SHAPE(100000));
  int64_t neg = 0;
  for (int64_t i = 0; i < t->numel; i++)
    neg += ((int64_t *)t->data)[i] < 0;
  ASSERT_NEAR((double)neg / 1e5, 0.5, 6e-3);
  /* other dtypes */
  t = crl_randint(&g, 0, 256, CRL_UINT8, CRL_SHAPE(2000));
  CRL_CHECK_PTR(t);
  assert_int_equal(t->dtype, CRL_UINT8);
  int seen_hi = 0;
  for (int64_t i = 0; i < t->numel; i++)
    seen_hi |= ((uint8_t *)t->data)[i] == 255;
  assert_true(seen_hi);
  t = crl_randint(&g, -100, 100, CRL_INT32, CRL_SHAPE(3, 3));
  CRL_CHECK_PTR(t);
  for (int64_t i = 0; i < 9; i++) {
    int32_t v = ((int32_t *)t->data)[i];
    assert_true(v >= -100 && v < 100);
  }
  t = crl_randint(&g, 0, 2, CRL_BOOL, CRL_SHAPE(1000));
  CRL_CHECK_PTR(t);
  int64_t trues = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    uint8_t v = ((uint8_t *)t->data)[i];
    assert_true(v <= 1);
    trues += v;
  }
  assert_true(trues > 400 && trues < 600);
  t = crl_randint(&g, 1, 2, CRL_FLOAT32, CRL_SHAPE(4));
  double ones[4] = {1, 1, 1, 1};
  assert_tensor_values(t, ones, 4, 0);
  /* a range of exactly 2^32 */
  t = crl_randint(&g, 0, 1ll << 32, CRL_INT64, CRL_SHAPE(1000));
  int64_t hi = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    int64_t v = ((int64_t *)t->data)[i];
    assert_true(v >= 0 && v < (1ll << 32));
    hi += v >= (1ll << 31);
  }
  assert_true(hi > 400 && hi < 600);
  /* crl_rng_below: chi-square over 6 */
  int64_t b6[6] = {0};
  for (int i = 0; i < 60000; i++) {
    uint64_t v = crl_rng_below(&g, 6);
    assert_true(v < 6);
    b6[v]++;
  }
  double e6[6] = {1e4, 1e4, 1e4, 1e4, 1e4, 1e4};
  c = chi2(b6, e6, 6);
  if (c > 20.5) fail_msg("chi2 %g", c);
  assert_int_equal(crl_rng_below(&g, 0), 0);
  assert_int_equal(crl_rng_below(&g, 1), 0);
  uint64_t big = crl_rng_below(&g, UINT64_MAX);
  assert_true(big < UINT64_MAX);
}

static void test_randint_errors(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 5);
  assert_null(crl_randint(&g, 3, 3, CRL_INT64, CRL_SHAPE(2)));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("[3, 3)");
  assert_null(crl_randint(&g, 0, 300, CRL_UINT8, CRL_SHAPE(2)));
  CRL_ASSERT_ERR_HAS("uint8");
  assert_null(crl_randint(&g, 0, 1ll << 40, CRL_INT32, CRL_SHAPE(2)));
  CRL_ASSERT_ERR_HAS("int32");
  assert_null(crl_randint(&g, 0, 3, CRL_BOOL, CRL_SHAPE(2)));
  assert_null(crl_randint(&g, 0, 3, CRL_INT64, CRL_SHAPE(-1)));
  CRL_ASSERT_ERR_HAS("randint");
  assert_null(crl_randint(NULL, 0, 3, CRL_INT64, CRL_SHAPE(2)));
  assert_int_equal(g.counter, 0);
}

static void test_bernoulli(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 8);
  crl_tensor *p = crl_full(CRL_FLOAT32, CRL_SHAPE(200000), 0.3);
  crl_tensor *b = crl_bernoulli(&g, p);
  CRL_CHECK_PTR(b);
  assert_int_equal(b->dtype, CRL_BOOL);
  assert_shape(b, CRL_SHAPE(200000));
  int64_t ones = 0;
  for (int64_t i = 0; i < b->numel; i++) {
    uint8_t v = ((uint8_t *)b->data)[i];
    assert_true(v <= 1);
    ones += v;
  }
  ASSERT_NEAR((double)ones / 2e5, 0.3, 4e-3);
  /* per-element probabilities, float64, 0 and 1 exact */
  double pv[4] = {0, 1, 0, 1};
  crl_tensor *p4 = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 2), pv);
  for (int rep = 0; rep < 50; rep++) {
    crl_tensor *r = crl_bernoulli(&g, p4);
    assert_tensor_values(r, pv, 4, 0);
  }
  /* non-float, non-contiguous probabilities */
  uint8_t iv[6] = {1, 0, 1, 0, 1, 0};
  crl_tensor *pi = crl_from_array(CRL_UINT8, CRL_SHAPE(6), iv);
  crl_tensor *view = crl_tensor_from_storage(pi->storage, CRL_UINT8, 0,
                                             CRL_SHAPE(3), (int64_t[]){2});
  crl_tensor *r = crl_bernoulli(&g, view);
  double e3[3] = {1, 1, 1};
  assert_tensor_values(r, e3, 3, 0);
  /* errors: generator untouched */
  uint64_t c0 = g.counter;
  crl_tensor *bad =
      crl_from_array(CRL_FLOAT64, CRL_SHAPE(3), (double[]){0.5, 1.5, 0.2});
  assert_null(crl_bernoulli(&g, bad));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("1.5");
  CRL_ASSERT_ERR_HAS("index 1");
  ((double *)bad->data)[1] = NAN;
  assert_null(crl_bernoulli(&g, bad));
  assert_null(crl_bernoulli(&g, NULL));
  assert_int_equal(g.counter, c0);
}

static void test_categorical(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 31);
  enum { N = 100000 };
  /* unnormalised weights [1, 2, 3, 4] on every row (float32) */
  crl_tensor *w = crl_empty(CRL_FLOAT32, CRL_SHAPE(N, 4));
  for (int64_t i = 0; i < N * 4; i++)
    ((float *)w->data)[i] = (float)(i % 4 + 1);
  crl_tensor *idx = crl_categorical(&g, w);
  CRL_CHECK_PTR(idx);
  assert_int_equal(idx->dtype, CRL_INT64);
  assert_shape(idx, CRL_SHAPE(N));
  int64_t cnt[4] = {0};
  for (int64_t i = 0; i < N; i++) {
    int64_t k = ((int64_t *)idx->data)[i];
    if (k < 0 || k > 3) fail_msg("index %lld", (long long)k);
    cnt[k]++;
  }
  double e[4] = {N * 0.1, N * 0.2, N * 0.3, N * 0.4};
  double c = chi2(cnt, e, 4);
  if (c > 16.3) fail_msg("chi2 %g", c); /* df 3, 0.1% */
  /* zero weights are never drawn (float64, 3-d) */
  crl_tensor *z = crl_empty(CRL_FLOAT64, CRL_SHAPE(100, 50, 4));
  for (int64_t i = 0; i < z->numel; i++)
    ((double *)z->data)[i] = (i % 4 == 1 || i % 4 == 3) ? 0.5 : 0.0;
  idx = crl_categorical(&g, z);
  assert_shape(idx, CRL_SHAPE(100, 50));
  int64_t n3 = 0;
  for (int64_t i = 0; i < idx->numel; i++) {
    int64_t k = ((int64_t *)idx->data)[i];
    assert_true(k == 1 || k == 3);
    n3 += k == 3;
  }
  ASSERT_NEAR((double)n3 / 5000, 0.5, 0.03);
  /* a single category, an integer-weight row, a 1-d input (0-d output) */
  crl_tensor *one = crl_ones(CRL_INT32, CRL_SHAPE(1));
  idx = crl_categorical(&g, one);
  CRL_CHECK_PTR(idx);
  assert_int_equal(idx->ndim, 0);
  assert_true(crl_item(idx) == 0);
  /* non-contiguous: column view over a [4, 2] tensor, weights [0, 0, 7, 0] */
  crl_tensor *m = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4, 2));
  ((float *)m->data)[4] = 7; /* row 2, col 0 */
  crl_tensor *col = crl_tensor_from_storage(m->storage, CRL_FLOAT32, 0,
                                            CRL_SHAPE(4), (int64_t[]){2});
  idx = crl_categorical(&g, col);
  assert_true(crl_item(idx) == 2);
  /* empty batch */
  idx = crl_categorical(&g, crl_ones(CRL_FLOAT32, CRL_SHAPE(0, 3)));
  CRL_CHECK_PTR(idx);
  assert_shape(idx, CRL_SHAPE(0));
}

static void test_categorical_errors(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 31);
  double v[6] = {0.2, 0.3, 0.5, 0.1, -0.4, 0.2};
  crl_tensor *w = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2, 3), v);
  assert_null(crl_categorical(&g, w));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("negative");
  CRL_ASSERT_ERR_HAS("row 1, index 1");
  CRL_ASSERT_ERR_HAS("[2, 3]");
  ((double *)w->data)[4] = INFINITY;
  assert_null(crl_categorical(&g, w));
  CRL_ASSERT_ERR_HAS("not finite");
  ((double *)w->data)[4] = NAN;
  assert_null(crl_categorical(&g, w));
  CRL_ASSERT_ERR_HAS("not finite");
  ((double *)w->data)[3] = ((double *)w->data)[4] = ((double *)w->data)[5] = 0;
  assert_null(crl_categorical(&g, w));
  CRL_ASSERT_ERR_HAS("row 1");
  CRL_ASSERT_ERR_HAS("sum to 0");
  /* finite weights whose sum overflows */
  double big[2] = {DBL_MAX, DBL_MAX};
  assert_null(
      crl_categorical(&g, crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), big)));
  CRL_ASSERT_ERR_HAS("not finite");
  assert_null(crl_categorical(&g, crl_scalar(CRL_FLOAT32, 1)));
  assert_int_equal(crl_last_error_code(), CRL_ESHAPE);
  assert_null(crl_categorical(&g, crl_ones(CRL_FLOAT32, CRL_SHAPE(2, 0))));
  CRL_ASSERT_ERR_HAS("no categories");
  /* a bad row far into a large (parallel) input is still found first */
  int saved = crl_get_num_threads();
  crl_set_num_threads(4);
  crl_tensor *lw = crl_ones(CRL_FLOAT32, CRL_SHAPE(100000, 3));
  ((float *)lw->data)[3 * 70000 + 2] = -1;
  ((float *)lw->data)[3 * 90000 + 2] = -1;
  assert_null(crl_categorical(&g, lw));
  CRL_ASSERT_ERR_HAS("row 70000, index 2");
  crl_set_num_threads(saved);
  assert_int_equal(g.counter, 0);
}

static void test_randperm(void **state) {
  (void)state;
  crl_rng g;
  crl_rng_seed(&g, 17);
  crl_tensor *p = crl_randperm(&g, 1000);
  CRL_CHECK_PTR(p);
  assert_int_equal(p->dtype, CRL_INT64);
  assert_shape(p, CRL_SHAPE(1000));
  char seen[1000] = {0};
  int fixed = 0;
  for (int64_t i = 0; i < 1000; i++) {
    int64_t v = ((int64_t *)p->data)[i];
    assert_true(v >= 0 && v < 1000 && !seen[v]);
    seen[v] = 1;
    fixed += v == i;
  }
  assert_true(fixed < 10); /* expected 1 */
  /* uniform over the 6 permutations of 3: df 5, 0.1% critical 20.5 */
  int64_t cnt[6] = {0};
  for (int rep = 0; rep < 60000; rep++) {
    crl_scope_begin();
    int64_t *q = crl_randperm(&g, 3)->data;
    cnt[q[0] * 2 + (q[1] > q[2])]++;
    crl_scope_end();
  }
  double e[6] = {1e4, 1e4, 1e4, 1e4, 1e4, 1e4};
  double c = chi2(cnt, e, 6);
  if (c > 20.5) fail_msg("chi2 %g", c);
  p = crl_randperm(&g, 0);
  CRL_CHECK_PTR(p);
  assert_int_equal(p->numel, 0);
  p = crl_randperm(&g, 1);
  assert_true(crl_tensor_get_flat(p, 0) == 0);
  uint64_t c0 = g.counter;
  assert_null(crl_randperm(&g, -2));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("-2");
  assert_int_equal(g.counter, c0);
}

static void test_inplace_and_errors(void **state) {
  (void)state;
  crl_rng g, h;
  crl_rng_seed(&g, 4);
  crl_rng_seed(&h, 4);
  /* strided target gets the values of a contiguous draw in logical order */
  crl_tensor *base = crl_zeros(CRL_FLOAT32, CRL_SHAPE(4, 6));
  crl_tensor *tr = crl_tensor_from_storage(base->storage, CRL_FLOAT32, 0,
                                           CRL_SHAPE(6, 4), (int64_t[]){1, 6});
  CRL_CHECK_OK(crl_uniform_(tr, &g, 0, 1));
  crl_tensor *ref = crl_rand(&h, CRL_FLOAT32, CRL_SHAPE(6, 4));
  for (int64_t i = 0; i < 24; i++)
    assert_true(crl_tensor_get_flat(tr, i) == crl_tensor_get_flat(ref, i));
  assert_int_equal(g.counter, h.counter);
  assert_int_equal(tr->version, 1);
  /* errors leave tensor and generator unchanged */
  crl_tensor *it = crl_zeros(CRL_INT64, CRL_SHAPE(3));
  assert_int_equal(crl_uniform_(it, &g, 0, 1), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("int64");
  crl_tensor *f = crl_zeros(CRL_FLOAT64, CRL_SHAPE(3));
  assert_int_equal(crl_uniform_(f, &g, 2, 1), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("uniform_");
  assert_int_equal(crl_uniform_(f, &g, 0, INFINITY), CRL_EINVAL);
  assert_int_equal(crl_normal_(f, &g, 0, -1), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("std");
  assert_int_equal(crl_normal_(f, NULL, 0, 1), CRL_EINVAL);
  crl_set_requires_grad(f, true);
  assert_int_equal(crl_normal_(f, &g, 0, 1), CRL_EAUTOGRAD);
  double zero[3] = {0, 0, 0};
  assert_tensor_values(f, zero, 3, 0);
  assert_int_equal(f->version, 0);
  assert_null(crl_rand(&g, CRL_INT32, CRL_SHAPE(2)));
  assert_int_equal(crl_last_error_code(), CRL_EDTYPE);
  CRL_ASSERT_ERR_HAS("rand: dtype int32");
  assert_null(crl_randn(&g, CRL_FLOAT32, CRL_SHAPE(2, -3)));
  CRL_ASSERT_ERR_HAS("randn");
  assert_null(crl_rand(NULL, CRL_FLOAT32, CRL_SHAPE(2)));
  assert_int_equal(g.counter, h.counter);
  /* a 0-dim tensor */
  crl_tensor *s = crl_randn(&g, CRL_FLOAT64, CRL_SCALAR);
  CRL_CHECK_PTR(s);
  assert_int_equal(s->numel, 1);
  assert_true(isfinite(crl_item(s)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_philox_kat),
      CRL_TEST(test_scalar_counter_mapping),
      CRL_TEST(test_fill_values_and_blocks),
      CRL_TEST(test_consumption),
      CRL_TEST(test_prefix_consistency),
      CRL_TEST(test_split),
      CRL_TEST(test_thread_independence),
      CRL_TEST(test_uniform_stats),
      CRL_TEST(test_normal_stats),
      CRL_TEST(test_randint),
      CRL_TEST(test_randint_errors),
      CRL_TEST(test_bernoulli),
      CRL_TEST(test_categorical),
      CRL_TEST(test_categorical_errors),
      CRL_TEST(test_randperm),
      CRL_TEST(test_inplace_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
