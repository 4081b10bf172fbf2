/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011), as in Random123,
 * cuRAND and NumPy.
 *
 * Block b of a generator g is philox(key = {seed lo, seed hi},
 * counter = {c lo, c hi, 0, 0}) with c = g->counter + b: four 32-bit words.
 * A draw of n values reads a fixed range of blocks starting at g->counter
 * and then advances g->counter past it (see random.h for the exact count per
 * function). Value i depends only on (key, counter, i), so a large fill is
 * split over the pool in fixed chunks with results identical for any thread
 * count. Rejection sampling (bounded integers) retries with counter words
 * {c lo, c hi, k, 0}, k = 1, 2, ..., a domain no plain draw uses, so the
 * number of blocks a draw consumes never depends on the values drawn. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* ---- Philox4x32-10 ------------------------------------------------------ */

#define PH_M0 0xD2511F53u
#define PH_M1 0xCD9E8D57u
#define PH_W0 0x9E3779B9u
#define PH_W1 0xBB67AE85u

/* Ten rounds on x with key (k0, k1), bumping the key between rounds. */
static inline void ph_rounds(uint32_t x[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)PH_M0 * x[0], p1 = (uint64_t)PH_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
    x[1] = (uint32_t)p1;
    x[3] = (uint32_t)p0;
    x[0] = y0;
    x[2] = y2;
    k0 += PH_W0;
    k1 += PH_W1;
  }
}

/* The raw bijection, exposed (internal) for the known-answer tests. */
void crl__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                        uint32_t out[4]) {
  memcpy(out, ctr, 4 * sizeof(uint32_t));
  ph_rounds(out, key[0], key[1]);
}

/* One block, scalar. */
static inline void ph_block(uint32_t k0, uint32_t k1, uint64_t c,
                            uint32_t retry, uint32_t *out) {
  out[0] = (uint32_t)c;
  out[1] = (uint32_t)(c >> 32);
  out[2] = retry;
  out[3] = 0;
  ph_rounds(out, k0, k1);
}

/* 16 consecutive blocks: a fixed trip count, which GCC vectorizes at -O2.
 * The 32-bit words live in 64-bit lanes so the 32x32->64 products map to
 * single vector multiplies (twice as fast as 32-bit lanes here). */
#define PH_VEC 16
static void ph_blocks16(uint32_t k0, uint32_t k1, uint64_t c0, uint32_t retry,
                        uint32_t *restrict out) {
  for (int b = 0; b < PH_VEC; b++) {
    uint64_t c = c0 + (uint64_t)b;
    uint64_t x0 = (uint32_t)c, x1 = c >> 32, x2 = retry, x3 = 0;
    uint64_t a0 = k0, a1 = k1;
    for (int r = 0; r < 10; r++) {
      uint64_t p0 = PH_M0 * x0, p1 = PH_M1 * x2;
      uint64_t y0 = ((p1 >> 32) ^ x1 ^ a0) & 0xffffffffu;
      uint64_t y2 = ((p0 >> 32) ^ x3 ^ a1) & 0xffffffffu;
      x1 = p1 & 0xffffffffu;
      x3 = p0 & 0xffffffffu;
      x0 = y0;
      x2 = y2;
      a0 = (a0 + PH_W0) & 0xffffffffu;
      a1 = (a1 + PH_W1) & 0xffffffffu;
    }
    out[4 * b] = (uint32_t)x0;
    out[4 * b + 1] = (uint32_t)x1;
    out[4 * b + 2] = (uint32_t)x2;
    out[4 * b + 3] = (uint32_t)x3;
  }
}

/* A batch: nb <= 16 consecutive blocks from block counter c0 (word 2 = retry
 * index) interleaved into out[64]. Words past the nb blocks hold other
 * blocks' words or zeros: defined, but not part of the draw. */
static void ph_batch(uint32_t k0, uint32_t k1, uint64_t c0, uint32_t retry,
                     int nb, uint32_t *restrict out) {
  if (nb > 3) {
    ph_blocks16(k0, k1, c0, retry, out);
    return;
  }
  memset(out, 0, sizeof(uint32_t) * 4 * PH_VEC);
  for (int b = 0; b < nb; b++)
    ph_block(k0, k1, c0 + (uint64_t)b, retry, out + 4 * b);
}

static inline void ph_one(uint64_t seed, uint64_t c, uint32_t retry,
                          uint32_t out[4]) {
  ph_block((uint32_t)seed, (uint32_t)(seed >> 32), c, retry, out);
}

/* ---- conversions ----------------------------------------------------------
 */

static inline float u01f(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }
/* (0, 1]: for logarithms */
static inline float u01f_open0(uint32_t x) {
  return (float)((x >> 8) + 1) * 0x1p-24f;
}
static inline uint64_t w64(uint32_t lo, uint32_t hi) {
  return (uint64_t)hi << 32 | lo;
}
static inline double u01d(uint64_t x) { return (double)(x >> 11) * 0x1p-53; }
static inline double u01d_open0(uint64_t x) {
  return (double)((x >> 11) + 1) * 0x1p-53;
}

#define TWO_PI 6.283185307179586476925

/* ---- bounded integers (Lemire's nearly-divisionless method) --------------
 * Value `lane` of block `blk`: x is its first try; retries read the same
 * lane of the retry-domain blocks. r in [1, 2^32 - 1]. */
static uint32_t bounded32_retry(uint64_t seed, uint64_t blk, int lane,
                                uint32_t r, uint64_t m) {
  uint32_t t = (uint32_t)(-r) % r;
  uint32_t k = 1, w[4];
  while ((uint32_t)m < t) {
    ph_one(seed, blk, k++, w);
    m = (uint64_t)w[lane] * r;
  }
  return (uint32_t)(m >> 32);
}

static inline uint32_t bounded32(uint64_t seed, uint64_t blk, int lane,
                                 uint32_t x, uint32_t r) {
  uint64_t m = (uint64_t)x * r;
  if (CRL_UNLIKELY((uint32_t)m < r))
    return bounded32_retry(seed, blk, lane, r, m);
  return (uint32_t)(m >> 32);
}

/* 64-bit value `half` (words 2*half, 2*half+1) of block blk; r >= 1. */
static uint64_t bounded64(uint64_t seed, uint64_t blk, int half, uint64_t x,
                          uint64_t r) {
  __uint128_t m = (__uint128_t)x * r;
  if ((uint64_t)m < r) {
    uint64_t t = (-r) % r;
    uint32_t k = 1, w[4];
    while ((uint64_t)m < t) {
      ph_one(seed, blk, k++, w);
      m = (__uint128_t)w64(w[2 * half], w[2 * half + 1]) * r;
    }
  }
  return (uint64_t)(m >> 64);
}

/* ---- scalar API ------------------------------------------------------------
 */

void crl_rng_seed(crl_rng *g, uint64_t seed) {
  if (!g) return;
  g->seed = seed;
  g->counter = 0;
}

/* SplitMix64's finaliser: a bijection of 64-bit words. */
static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

crl_rng crl_rng_split(const crl_rng *g, uint64_t i) {
  crl_rng r = {0, 0};
  if (!g) return r;
  /* each stage is a bijection of its last input, so distinct i (for the
   * same parent state) always give distinct keys */
  uint64_t h = mix64(g->seed ^ 0x243F6A8885A308D3ull);
  h = mix64(h ^ g->counter ^ 0x13198A2E03707344ull);
  r.seed = mix64(h ^ i);
  return r;
}

static inline void next_block(crl_rng *g, uint32_t w[4]) {
  ph_one(g->seed, g->counter++, 0, w);
}

uint32_t crl_rng_u32(crl_rng *g) {
  uint32_t w[4];
  next_block(g, w);
  return w[0];
}

uint64_t crl_rng_u64(crl_rng *g) {
  uint32_t w[4];
  next_block(g, w);
  return w64(w[0], w[1]);
}

double crl_rng_uniform(crl_rng *g) {
  uint32_t w[4];
  next_block(g, w);
  return u01d(w64(w[0], w[1]));
}

double crl_rng_normal(crl_rng *g) {
  uint32_t w[4];
  next_block(g, w);
  double u1 = u01d_open0(w64(w[0], w[1])), u2 = u01d(w64(w[2], w[3]));
  return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

uint64_t crl_rng_below(crl_rng *g, uint64_t n) {
  if (n == 0) return 0;
  for (;;) {
    uint32_t w[4];
    next_block(g, w);
    __uint128_t m = (__uint128_t)w64(w[0], w[1]) * n;
    if ((uint64_t)m >= n || (uint64_t)m >= (-n) % n) return (uint64_t)(m >> 64);
  }
}

/* ---- chunked fills
 * ------------------------------------------------------------ A job covers
 * values [0, n); a range function fills [s, e) where s is a multiple of
 * RNG_CHUNK (so block-aligned for 2 or 4 values per block). Large jobs run
 * chunk by chunk on the pool; the values do not depend on how they are
 * scheduled. */
#define RNG_CHUNK 65536
#define RNG_BATCH PH_VEC /* blocks generated at a time */

typedef struct job job_t;
typedef void (*range_fn)(const job_t *j, int64_t s, int64_t e);
struct job {
  uint64_t seed, ctr; /* key and first block */
  int64_t n, chunk;
  range_fn fn;
  void *out;
  crl_dtype dt;
  double a, b;         /* lo/scale or mean/std */
  const void *in;      /* bernoulli probabilities / categorical weights */
  crl_dtype in_dt;     /* their dtype (float32 or float64) */
  int64_t k;           /* categorical: row length */
  int64_t low;         /* randint */
  uint64_t range;      /* randint: high - low */
  _Atomic int64_t bad; /* categorical: first invalid row (INT64_MAX: none) */
};

static void job_chunk(void *ctx, int64_t i) {
  const job_t *j = ctx;
  int64_t s = i * j->chunk, e = s + j->chunk;
  if (e > j->n) e = j->n;
  j->fn(j, s, e);
}

static void job_run(job_t *j, int64_t n, range_fn fn) {
  j->n = n;
  j->fn = fn;
  if (!j->chunk) j->chunk = RNG_CHUNK;
  if (n <= 0) return;
  if (n >= 2 * j->chunk && crl_get_num_threads() > 1)
    crl_parallel_for((n + j->chunk - 1) / j->chunk, job_chunk, j);
  else
    fn(j, 0, n);
}

static void job_init(job_t *j, const crl_rng *g) {
  memset(j, 0, sizeof *j);
  j->seed = g->seed;
  j->ctr = g->counter;
  atomic_store(&j->bad, INT64_MAX);
}

#define K0 ((uint32_t)j->seed)
#define K1 ((uint32_t)(j->seed >> 32))

/* float32 uniform in [lo, lo + scale), capped below hi. Conversion loops
 * run over whole batches (fixed trip counts vectorize at -O2) and copy the
 * m values that belong to the draw. */
static void r_uniform_f32(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  float z[4 * RNG_BATCH];
  float *o = j->out;
  float lo = (float)j->a, hi = (float)j->b, sc = hi - lo;
  float cap = hi > lo ? nextafterf(hi, lo) : INFINITY;
  for (int64_t v = s; v < e; v += 4 * RNG_BATCH) {
    int64_t m = e - v < 4 * RNG_BATCH ? e - v : 4 * RNG_BATCH;
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 4), 0, (int)((m + 3) / 4), w);
    for (int i = 0; i < 4 * RNG_BATCH; i++) {
      float r = lo + sc * u01f(w[i]);
      z[i] = r < cap ? r : cap;
    }
    memcpy(o + v, z, sizeof(float) * (size_t)m);
  }
}

static void r_uniform_f64(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  double z[2 * RNG_BATCH];
  double *o = j->out;
  double lo = j->a, hi = j->b, sc = hi - lo;
  double cap = hi > lo ? nextafter(hi, lo) : INFINITY;
  for (int64_t v = s; v < e; v += 2 * RNG_BATCH) {
    int64_t m = e - v < 2 * RNG_BATCH ? e - v : 2 * RNG_BATCH;
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 2), 0, (int)((m + 1) / 2), w);
    for (int i = 0; i < 2 * RNG_BATCH; i++) {
      double r = lo + sc * u01d(w64(w[2 * i], w[2 * i + 1]));
      z[i] = r < cap ? r : cap;
    }
    memcpy(o + v, z, sizeof(double) * (size_t)m);
  }
}

/* Branch-free float math for Box–Muller (vectorizable, unlike libm calls).
 * log: Cephes logf (about 1 ulp) for positive normal floats. */
static inline float f_from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}
static inline uint32_t f_to_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

/* sin and cos of 2*pi*u for u in [0, 1): quarter-turn reduction (exact on
 * the 24-bit grid) and Cephes polynomials on [-pi/4, pi/4]. */
static inline void sincos_2pi_f(float u, float *sn, float *cs) {
  float t = u * 4.0f;
  int32_t q = (int32_t)(t + 0.5f);
  float r = (t - (float)q) * 1.57079632679489661923f;
  float z = r * r;
  float s =
      ((-1.9515295891E-4f * z + 8.3321608736E-3f) * z - 1.6666654611E-1f) * z *
          r +
      r;
  float c = ((2.443315711809948E-5f * z - 1.388731625493765E-3f) * z +
             4.166664568298827E-2f) *
                z * z -
            0.5f * z + 1.0f;
  float S = (q & 1) ? c : s, C = (q & 1) ? s : c;
  *sn = (q & 2) ? -S : S;
  *cs = ((q + 1) & 2) ? -C : C;
}

/* sqrt(x) for x >= 0 (finite): reciprocal-sqrt estimate and three Newton
 * steps, about 1 ulp. Unlike sqrtf (errno), it vectorizes. */
static inline float sqrt_nonneg_f(float x) {
  float y = f_from_bits(0x5f375a86u - (f_to_bits(x) >> 1));
  float hx = 0.5f * x;
  y = y * (1.5f - hx * y * y);
  y = y * (1.5f - hx * y * y);
  y = y * (1.5f - hx * y * y);
  return x * y;
}

/* Box–Muller: words (2p, 2p+1) give values 2p (cosine) and 2p+1 (sine). */
static void r_normal_f32(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  float z[4 * RNG_BATCH];
  float *o = j->out;
  float mean = (float)j->a, sd = (float)j->b;
  for (int64_t v = s; v < e; v += 4 * RNG_BATCH) {
    int64_t m = e - v < 4 * RNG_BATCH ? e - v : 4 * RNG_BATCH;
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 4), 0, (int)((m + 3) / 4), w);
    for (int p = 0; p < 2 * RNG_BATCH; p++) {
      float r = sqrt_nonneg_f(-2.0f * crl__logf(u01f_open0(w[2 * p])));
      float sn, cs;
      sincos_2pi_f(u01f(w[2 * p + 1]), &sn, &cs);
      z[2 * p] = mean + sd * (r * cs);
      z[2 * p + 1] = mean + sd * (r * sn);
    }
    memcpy(o + v, z, sizeof(float) * (size_t)m);
  }
}

static void r_normal_f64(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  double z[2 * RNG_BATCH];
  double *o = j->out;
  double mean = j->a, sd = j->b;
  for (int64_t v = s; v < e; v += 2 * RNG_BATCH) {
    int64_t m = e - v < 2 * RNG_BATCH ? e - v : 2 * RNG_BATCH;
    int nb = (int)((m + 1) / 2);
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 2), 0, nb, w);
    for (int b = 0; b < nb; b++) {
      const uint32_t *q = w + 4 * b;
      double r = sqrt(-2.0 * log(u01d_open0(w64(q[0], q[1]))));
      double sn, cs;
      sincos(TWO_PI * u01d(w64(q[2], q[3])), &sn, &cs);
      z[2 * b] = r * cs;
      z[2 * b + 1] = r * sn;
    }
    double *ov = o + v;
    for (int64_t i = 0; i < m; i++)
      ov[i] = mean + sd * z[i];
  }
}

static inline void store_int(crl_dtype dt, void *o, int64_t i, int64_t v) {
  switch (dt) {
  case CRL_INT64: ((int64_t *)o)[i] = v; break;
  case CRL_INT32: ((int32_t *)o)[i] = (int32_t)v; break;
  case CRL_UINT8:
  case CRL_BOOL: ((uint8_t *)o)[i] = (uint8_t)v; break;
  case CRL_FLOAT32: ((float *)o)[i] = (float)v; break;
  case CRL_FLOAT64: ((double *)o)[i] = (double)v; break;
  default: break;
  }
}

/* randint, range <= 2^32: one word per value */
static void r_randint32(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  uint64_t r = j->range;
  for (int64_t v = s; v < e; v += 4 * RNG_BATCH) {
    int64_t m = e - v < 4 * RNG_BATCH ? e - v : 4 * RNG_BATCH;
    uint64_t c = j->ctr + (uint64_t)(v / 4);
    ph_batch(K0, K1, c, 0, (int)((m + 3) / 4), w);
    if (r == (1ull << 32)) {
      for (int64_t i = 0; i < m; i++)
        store_int(j->dt, j->out, v + i, j->low + (int64_t)w[i]);
    } else if (j->dt == CRL_INT64) {
      int64_t *o = (int64_t *)j->out + v;
      for (int64_t i = 0; i < m; i++)
        o[i] = j->low + bounded32(j->seed, c + (uint64_t)(i / 4), (int)(i % 4),
                                  w[i], (uint32_t)r);
    } else {
      for (int64_t i = 0; i < m; i++)
        store_int(j->dt, j->out, v + i,
                  j->low + bounded32(j->seed, c + (uint64_t)(i / 4),
                                     (int)(i % 4), w[i], (uint32_t)r));
    }
  }
}

/* randint, range > 2^32: two words per value */
static void r_randint64(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  for (int64_t v = s; v < e; v += 2 * RNG_BATCH) {
    int64_t m = e - v < 2 * RNG_BATCH ? e - v : 2 * RNG_BATCH;
    uint64_t c = j->ctr + (uint64_t)(v / 2);
    ph_batch(K0, K1, c, 0, (int)((m + 1) / 2), w);
    for (int64_t i = 0; i < m; i++) {
      uint64_t x = bounded64(j->seed, c + (uint64_t)(i / 2), (int)(i % 2),
                             w64(w[2 * i], w[2 * i + 1]), j->range);
      store_int(j->dt, j->out, v + i, (int64_t)((uint64_t)j->low + x));
    }
  }
}

/* bernoulli: value i is 1 if its word / 2^32 < p_i */
static void r_bernoulli(const job_t *j, int64_t s, int64_t e) {
  uint32_t w[4 * RNG_BATCH];
  uint8_t *o = j->out;
  for (int64_t v = s; v < e; v += 4 * RNG_BATCH) {
    int64_t m = e - v < 4 * RNG_BATCH ? e - v : 4 * RNG_BATCH;
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 4), 0, (int)((m + 3) / 4), w);
    if (j->in_dt == CRL_FLOAT32) {
      const float *p = (const float *)j->in + v;
      for (int64_t i = 0; i < m; i++)
        o[v + i] = (double)w[i] * 0x1p-32 < (double)p[i];
    } else {
      const double *p = (const double *)j->in + v;
      for (int64_t i = 0; i < m; i++)
        o[v + i] = (double)w[i] * 0x1p-32 < p[i];
    }
  }
}

/* categorical: row r uses 64-bit value r (two per block) */
#define CAT_BODY(T)                                                            \
  {                                                                            \
    const T *row = (const T *)j->in + (r)*K;                                   \
    double tot = 0;                                                            \
    bool ok = true;                                                            \
    for (int64_t k = 0; k < K; k++) {                                          \
      double x = (double)row[k];                                               \
      ok &= x >= 0 && x < INFINITY;                                            \
      tot += x;                                                                \
    }                                                                          \
    if (!ok || !(tot > 0) || !(tot < INFINITY)) {                              \
      int64_t cur = atomic_load(&jj->bad);                                     \
      while (r < cur && !atomic_compare_exchange_weak(&jj->bad, &cur, r)) {    \
      }                                                                        \
      continue;                                                                \
    }                                                                          \
    double t = u * tot, acc = 0;                                               \
    int64_t pick = -1, lastpos = 0;                                            \
    for (int64_t k = 0; k < K; k++) {                                          \
      acc += (double)row[k];                                                   \
      if (row[k] > 0) lastpos = k;                                             \
      if (acc > t) {                                                           \
        pick = k;                                                              \
        break;                                                                 \
      }                                                                        \
    }                                                                          \
    o[r] = pick >= 0 ? pick : lastpos;                                         \
  }

static void r_categorical(const job_t *j, int64_t s, int64_t e) {
  job_t *jj = (job_t *)j; /* only the atomic `bad` is written */
  uint32_t w[4 * RNG_BATCH];
  int64_t *o = j->out, K = j->k;
  for (int64_t v = s; v < e; v += 2 * RNG_BATCH) {
    int64_t m = e - v < 2 * RNG_BATCH ? e - v : 2 * RNG_BATCH;
    ph_batch(K0, K1, j->ctr + (uint64_t)(v / 2), 0, (int)((m + 1) / 2), w);
    for (int64_t i = 0; i < m; i++) {
      int64_t r = v + i;
      double u = u01d(w64(w[2 * i], w[2 * i + 1]));
      if (j->in_dt == CRL_FLOAT32)
        CAT_BODY(float)
      else
        CAT_BODY(double)
    }
  }
}

/* ---- C-array fills
 * -------------------------------------------------------------- */

static inline uint64_t blocks_for(int64_t n, int per) {
  return n > 0 ? (uint64_t)((n + per - 1) / per) : 0;
}

/* n values of out by fn (a, b: its parameters), `per` values per Philox
 * block: the generator then moves past the blocks used. */
static void fill_run(crl_rng *g, void *out, int64_t n, double a, double b,
                     range_fn fn, int per) {
  job_t j;
  job_init(&j, g);
  j.out = out;
  j.a = a;
  j.b = b;
  job_run(&j, n, fn);
  g->counter += blocks_for(n, per);
}

void crl_rng_fill_uniform_f32(crl_rng *g, float *out, int64_t n, float lo,
                              float hi) {
  if (!g || !out || n <= 0) return;
  fill_run(g, out, n, lo, hi, r_uniform_f32, 4);
}

void crl_rng_fill_normal_f32(crl_rng *g, float *out, int64_t n, float mean,
                             float std) {
  if (!g || !out || n <= 0) return;
  fill_run(g, out, n, mean, std, r_normal_f32, 4);
}

/* ---- tensors
 * ------------------------------------------------------------------- */

static int check_gen(const char *op, const crl_rng *g) {
  if (!g) return crl__err(CRL_EINVAL, "%s: generator is NULL", op);
  return 0;
}

static int check_float_dtype(const char *op, crl_dtype dt) {
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return crl__err(CRL_EDTYPE, "%s: invalid dtype %d", op, (int)dt);
  if (!crl_dtype_is_float(dt))
    return crl__err(CRL_EDTYPE, "%s: dtype %s is not a float dtype", op,
                    crl_dtype_name(dt));
  return 0;
}

/* Fill contiguous memory of float dtype dt. kind 0: uniform(a, b),
 * kind 1: normal(a, b). */
static void fill_float(crl_rng *g, crl_dtype dt, void *p, int64_t n, int kind,
                       double a, double b) {
  if (n <= 0) return;
  if (dt == CRL_FLOAT32) {
    if (kind == 0)
      crl_rng_fill_uniform_f32(g, p, n, (float)a, (float)b);
    else
      crl_rng_fill_normal_f32(g, p, n, (float)a, (float)b);
  } else {
    fill_run(g, p, n, a, b, kind == 0 ? r_uniform_f64 : r_normal_f64, 2);
  }
}

static crl_tensor *rand_tensor(const char *op, crl_rng *g, crl_dtype dt,
                               int ndim, const int64_t *shape, int kind) {
  if (check_gen(op, g) || check_float_dtype(op, dt) ||
      crl__check_shape(op, ndim, shape))
    return NULL;
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (!t) return NULL;
  fill_float(g, dt, t->data, t->numel, kind, 0.0, 1.0);
  return t;
}

crl_tensor *crl_rand(crl_rng *g, crl_dtype dt, int ndim, const int64_t *shape) {
  return rand_tensor("rand", g, dt, ndim, shape, 0);
}

crl_tensor *crl_randn(crl_rng *g, crl_dtype dt, int ndim,
                      const int64_t *shape) {
  return rand_tensor("randn", g, dt, ndim, shape, 1);
}

static int fill_inplace(const char *op, crl_tensor *t, crl_rng *g, int kind,
                        double a, double b) {
  if (!t) return crl__err(CRL_EINVAL, "%s: tensor is NULL", op);
  int rc;
  if ((rc = check_gen(op, g)) || (rc = crl__check_cpu(op, t)) ||
      (rc = check_float_dtype(op, t->dtype)))
    return rc;
  if (kind == 0 && !(isfinite(a) && isfinite(b) && a <= b))
    return crl__err(CRL_EINVAL,
                    "%s: bounds [%g, %g) must be finite with "
                    "lo <= hi",
                    op, a, b);
  if (kind == 1 && !(isfinite(a) && isfinite(b) && b >= 0))
    return crl__err(CRL_EINVAL,
                    "%s: mean %g and std %g must be finite with "
                    "std >= 0",
                    op, a, b);
  if ((rc = crl__check_inplace(op, t))) return rc;
  if (t->numel == 0) return 0;
  if (crl_tensor_is_contiguous(t)) {
    fill_float(g, t->dtype, t->data, t->numel, kind, a, b);
    return 0;
  }
  /* strided: draw in logical order into a temporary, then scatter */
  crl_tensor *tmp = crl_empty(t->dtype, t->ndim, t->shape);
  if (!tmp) return crl_last_error_code();
  fill_float(g, t->dtype, tmp->data, tmp->numel, kind, a, b);
  crl__copy_into(t, tmp);
  crl__discard(tmp);
  return 0;
}

int crl_uniform_(crl_tensor *t, crl_rng *g, double lo, double hi) {
  return fill_inplace("uniform_", t, g, 0, lo, hi);
}

int crl_normal_(crl_tensor *t, crl_rng *g, double mean, double std) {
  return fill_inplace("normal_", t, g, 1, mean, std);
}

static bool dtype_holds(crl_dtype dt, int64_t lo, int64_t hi_incl) {
  switch (dt) {
  case CRL_INT64: return true;
  case CRL_INT32: return lo >= INT32_MIN && hi_incl <= INT32_MAX;
  case CRL_UINT8: return lo >= 0 && hi_incl <= 255;
  case CRL_BOOL: return lo >= 0 && hi_incl <= 1;
  case CRL_FLOAT32: return lo >= -(1ll << 24) && hi_incl <= (1ll << 24);
  case CRL_FLOAT64: return lo >= -(1ll << 53) && hi_incl <= (1ll << 53);
  default: return false;
  }
}

crl_tensor *crl_randint(crl_rng *g, int64_t low, int64_t high, crl_dtype dt,
                        int ndim, const int64_t *shape) {
  if (check_gen("randint", g)) return NULL;
  if ((unsigned)dt >= CRL_NUM_DTYPES)
    return CRL_ERR_NULL(CRL_EDTYPE, "randint: invalid dtype %d", (int)dt);
  if (high <= low)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "randint: empty range [%lld, %lld): high must be "
                        "greater than low",
                        (long long)low, (long long)high);
  if (!dtype_holds(dt, low, high - 1))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "randint: range [%lld, %lld) does not fit dtype %s",
                        (long long)low, (long long)high, crl_dtype_name(dt));
  if (crl__check_shape("randint", ndim, shape)) return NULL;
  crl_tensor *t = crl_empty(dt, ndim, shape);
  if (!t) return NULL;
  job_t j;
  job_init(&j, g);
  j.out = t->data;
  j.dt = dt;
  j.low = low;
  j.range = (uint64_t)high - (uint64_t)low;
  bool wide = j.range > (1ull << 32);
  job_run(&j, t->numel, wide ? r_randint64 : r_randint32);
  g->counter += blocks_for(t->numel, wide ? 2 : 4);
  return t;
}

/* A contiguous float32/float64 version of t (t itself, retained, when it
 * already is one). The result belongs to the current scope. */
static crl_tensor *as_float_contig(crl_tensor *t) {
  if ((t->dtype == CRL_FLOAT32 || t->dtype == CRL_FLOAT64) &&
      crl_tensor_is_contiguous(t))
    return crl__alias(t, t->ndim, t->shape, t->stride, t->offset);
  return crl__to_contig_dtype(t, CRL_FLOAT64);
}

crl_tensor *crl_bernoulli(crl_rng *g, crl_tensor *p) {
  if (check_gen("bernoulli", g)) return NULL;
  if (!p) return CRL_ERR_NULL(CRL_EINVAL, "bernoulli: probabilities are NULL");
  if (crl__check_cpu("bernoulli", p)) return NULL;
  crl_scope_begin();
  crl_tensor *pc = as_float_contig(p);
  if (!pc) {
    crl_scope_end();
    return NULL;
  }
  /* validate every probability before drawing */
  for (int64_t i = 0; i < pc->numel; i++) {
    double x = pc->dtype == CRL_FLOAT32 ? ((const float *)pc->data)[i]
                                        : ((const double *)pc->data)[i];
    if (!(x >= 0 && x <= 1)) {
      char b[160];
      crl__err(CRL_EINVAL,
               "bernoulli: probability %g at flat index %lld of shape %s is "
               "not in [0, 1]",
               x, (long long)i, CRL_SHAPE_STR(p, b));
      crl_scope_end();
      return NULL;
    }
  }
  crl_tensor *out = crl_empty(CRL_BOOL, p->ndim, p->shape);
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  job_t j;
  job_init(&j, g);
  j.out = out->data;
  j.in = pc->data;
  j.in_dt = pc->dtype;
  job_run(&j, out->numel, r_bernoulli);
  g->counter += blocks_for(out->numel, 4);
  return crl_scope_end_keep(out);
}

/* Message for the first invalid row of a categorical draw. */
static void categorical_error(const crl_tensor *probs, const crl_tensor *pc,
                              int64_t r) {
  int64_t K = pc->shape[pc->ndim - 1];
  char b[160];
  double tot = 0;
  for (int64_t k = 0; k < K; k++) {
    double x = pc->dtype == CRL_FLOAT32 ? ((const float *)pc->data)[r * K + k]
                                        : ((const double *)pc->data)[r * K + k];
    if (!(x >= 0 && x < INFINITY)) {
      crl__err(CRL_EINVAL,
               "categorical: weight %g at row %lld, index %lld (shape %s) is "
               "%s",
               x, (long long)r, (long long)k, CRL_SHAPE_STR(probs, b),
               x < 0 ? "negative" : "not finite");
      return;
    }
    tot += x;
  }
  if (tot > 0)
    crl__err(CRL_EINVAL,
             "categorical: weights of row %lld (shape %s) sum to %g, which "
             "is not finite",
             (long long)r, CRL_SHAPE_STR(probs, b), tot);
  else
    crl__err(CRL_EINVAL, "categorical: weights of row %lld (shape %s) sum to 0",
             (long long)r, CRL_SHAPE_STR(probs, b));
}

crl_tensor *crl_categorical(crl_rng *g, crl_tensor *probs) {
  if (check_gen("categorical", g)) return NULL;
  if (!probs)
    return CRL_ERR_NULL(CRL_EINVAL, "categorical: probabilities are NULL");
  if (crl__check_cpu("categorical", probs)) return NULL;
  char b[160];
  if (probs->ndim < 1)
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "categorical: probabilities of shape %s need at "
                        "least 1 dim",
                        CRL_SHAPE_STR(probs, b));
  int64_t K = probs->shape[probs->ndim - 1];
  int64_t rows = K ? probs->numel / K : 0;
  if (K == 0) {
    for (int d = 0; d < probs->ndim - 1; d++)
      if (probs->shape[d] == 0)
        return crl_empty(CRL_INT64, probs->ndim - 1, probs->shape);
    return CRL_ERR_NULL(CRL_EINVAL,
                        "categorical: probabilities of shape %s have no "
                        "categories (rows sum to 0)",
                        CRL_SHAPE_STR(probs, b));
  }
  crl_scope_begin();
  crl_tensor *pc = as_float_contig(probs);
  crl_tensor *out =
      pc ? crl_empty(CRL_INT64, probs->ndim - 1, probs->shape) : NULL;
  if (!out) {
    crl_scope_end();
    return NULL;
  }
  job_t j;
  job_init(&j, g);
  j.out = out->data;
  j.in = pc->data;
  j.in_dt = pc->dtype;
  j.k = K;
  /* chunks of rows sized to about RNG_CHUNK weights, even (2 per block) */
  int64_t ch = RNG_CHUNK / K;
  j.chunk = ch < 2 ? 2 : ch & ~(int64_t)1;
  job_run(&j, rows, r_categorical);
  int64_t bad = atomic_load(&j.bad);
  if (bad != INT64_MAX) {
    categorical_error(probs, pc, bad);
    crl_scope_end();
    return NULL;
  }
  g->counter += blocks_for(rows, 2);
  return crl_scope_end_keep(out);
}

crl_tensor *crl_randperm(crl_rng *g, int64_t n) {
  if (check_gen("randperm", g)) return NULL;
  if (n < 0)
    return CRL_ERR_NULL(CRL_EINVAL, "randperm: negative size %lld",
                        (long long)n);
  crl_tensor *t = crl_empty(CRL_INT64, 1, &n);
  if (!t) return NULL;
  int64_t *p = t->data;
  for (int64_t i = 0; i < n; i++)
    p[i] = i;
  /* Fisher–Yates: step i swaps p[i] with p[i + U[0, n - i)], drawing with
   * word i (n <= 2^32) or 64-bit value i (larger n) */
  bool wide = (uint64_t)n > (1ull << 32);
  uint32_t w[4 * RNG_BATCH];
  int per = wide ? 2 : 4;
  uint32_t k0 = (uint32_t)g->seed, k1 = (uint32_t)(g->seed >> 32);
  for (int64_t v = 0; v + 1 < n; v += per * RNG_BATCH) {
    int64_t m = n - 1 - v < per * RNG_BATCH ? n - 1 - v : per * RNG_BATCH;
    uint64_t c = g->counter + (uint64_t)(v / per);
    ph_batch(k0, k1, c, 0, (int)((m + per - 1) / per), w);
    for (int64_t q = 0; q < m; q++) {
      int64_t i = v + q;
      uint64_t r = (uint64_t)(n - i), x;
      if (!wide)
        x = r == (1ull << 32) ? w[q]
                              : bounded32(g->seed, c + (uint64_t)(q / 4),
                                          (int)(q % 4), w[q], (uint32_t)r);
      else
        x = bounded64(g->seed, c + (uint64_t)(q / 2), (int)(q % 2),
                      w64(w[2 * q], w[2 * q + 1]), r);
      int64_t jx = i + (int64_t)x, tmp = p[i];
      p[i] = p[jx];
      p[jx] = tmp;
    }
  }
  g->counter += blocks_for(n, per);
  return t;
}
