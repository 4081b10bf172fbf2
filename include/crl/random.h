/* crl/random.h — counter-based random numbers (Philox4x32-10).
 *
 * Every random draw takes an explicit generator. A generator is a key
 * (from the seed) and a 128-bit-block counter; a draw of n values consumes
 * a fixed range of counters, and value i depends only on (key, counter, i),
 * so results are identical however the work is split over threads. Its
 * state is two integers, so it can be saved and restored exactly.
 *
 * Block b of a generator is Philox4x32-10 (Salmon et al. 2011, as in
 * Random123) with key {seed & 0xffffffff, seed >> 32} and counter words
 * {c & 0xffffffff, c >> 32, 0, 0}, c = counter + b: four 32-bit words.
 * What each call consumes (counter advances by exactly this, whatever the
 * values drawn):
 *   - scalar draws (u32, u64, uniform, normal): 1 block each; crl_rng_below
 *     1 block per try (a try is rejected with probability < n / 2^64);
 *   - 32-bit-per-value draws, n values in ceil(n/4) blocks, value i from
 *     word i % 4 of block i / 4: float32 rand/uniform_/normal_ and the
 *     fill_*_f32 functions, bernoulli, randint with high - low <= 2^32,
 *     randperm(n) for n <= 2^32;
 *   - 64-bit-per-value draws, n values in ceil(n/2) blocks, value i from
 *     words 2(i%2), 2(i%2)+1 of block i / 2: float64 rand/uniform_/normal_,
 *     categorical (one value per row), randint with high - low > 2^32,
 *     randperm(n) for n > 2^32.
 * Floats take the top 24 (float32) / 53 (float64) bits of a value; normals
 * use Box–Muller on value pairs (2p, 2p+1), giving values 2p and 2p+1.
 * Rejection sampling (randint, randperm) retries with counter words
 * {c lo, c hi, k, 0}, k >= 1, so it never shifts later draws. */
#ifndef CRL_RANDOM_H
#define CRL_RANDOM_H

#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_rng {
  uint64_t seed;    /* key */
  uint64_t counter; /* next unused 128-bit block */
} crl_rng;

/* Seed a generator (counter 0). */
CRL_API void crl_rng_seed(crl_rng *g, uint64_t seed);
/* A generator for sub-stream `i` of g (e.g. one per env or worker),
 * statistically independent of g and of other sub-streams: a new key hashed
 * from (g's seed, g's counter, i), counter 0. g is not advanced; distinct i
 * give distinct keys. */
CRL_API crl_rng crl_rng_split(const crl_rng *g, uint64_t i);
/* Scalar draws (each consumes one block). */
CRL_API uint32_t crl_rng_u32(crl_rng *g);
CRL_API uint64_t crl_rng_u64(crl_rng *g);
/* Uniform in [0, 1). */
CRL_API double crl_rng_uniform(crl_rng *g);
CRL_API double crl_rng_normal(crl_rng *g);
/* Uniform integer in [0, n), unbiased (Lemire's method); 0 if n == 0. */
CRL_API uint64_t crl_rng_below(crl_rng *g, uint64_t n);
/* Fill a C array: n uniform floats in [lo, hi) / normals. Counter-based:
 * parallelised for large n with identical results. */
CRL_API void crl_rng_fill_uniform_f32(crl_rng *g, float *out, int64_t n,
                                      float lo, float hi);
CRL_API void crl_rng_fill_normal_f32(crl_rng *g, float *out, int64_t n,
                                     float mean, float std);

/* Tensors (new references). Float dtypes only for rand/randn. */
CRL_API crl_tensor *crl_rand(crl_rng *g, crl_dtype dt, int ndim,
                             const int64_t *shape);
CRL_API crl_tensor *crl_randn(crl_rng *g, crl_dtype dt, int ndim,
                              const int64_t *shape);
/* Integers in [low, high), unbiased, any dtype whose range holds them.
 * Errors: CRL_EINVAL if high <= low or the range does not fit dt. */
CRL_API crl_tensor *crl_randint(crl_rng *g, int64_t low, int64_t high,
                                crl_dtype dt, int ndim, const int64_t *shape);
/* In place: uniform in [lo, hi) / normal(mean, std). Float tensors. */
CRL_API int crl_uniform_(crl_tensor *t, crl_rng *g, double lo, double hi);
CRL_API int crl_normal_(crl_tensor *t, crl_rng *g, double mean, double std);
/* Bool tensor, true with probability p (elementwise, p in [0,1]). */
CRL_API crl_tensor *crl_bernoulli(crl_rng *g, crl_tensor *p);
/* Draw an index per row from probabilities (or unnormalised non-negative
 * weights) over the last dim of `probs` [..., K]: int64 [...].
 * Errors: CRL_EINVAL naming a negative or non-finite weight, or a row whose
 * weights sum to 0. */
CRL_API crl_tensor *crl_categorical(crl_rng *g, crl_tensor *probs);
/* A random permutation of 0..n-1 (int64). */
CRL_API crl_tensor *crl_randperm(crl_rng *g, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
