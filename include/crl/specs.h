/* crl/specs.h — tensor specs (TorchRL's torchrl.data.tensor_specs).
 *
 * A spec says the shape, dtype, device and domain of what an env takes or
 * gives. Leaf specs: unbounded continuous, bounded (low/high, scalar or per
 * element), one-hot discrete, discrete (categorical index), multi-one-hot,
 * binary. A composite spec maps keys (nested with '/') to specs, like a
 * TensorDict, and has its own (batch) shape that prefixes its children's.
 *
 * Specs are refcounted like tensors (same ownership rule, see
 * crl/tensor.h): constructors return a new reference (scope-owned when a
 * scope is open); crl_spec_get returns a BORROWED one. A spec is immutable
 * once built, except that composites take new keys with crl_spec_set. */
#ifndef CRL_SPECS_H
#define CRL_SPECS_H

#include "crl/random.h"
#include "crl/td.h"
#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum crl_spec_kind {
  CRL_SPEC_UNBOUNDED = 0, /* UnboundedContinuousTensorSpec */
  CRL_SPEC_BOUNDED,       /* BoundedTensorSpec */
  CRL_SPEC_ONE_HOT,       /* OneHotDiscreteTensorSpec */
  CRL_SPEC_DISCRETE,      /* DiscreteTensorSpec (index in [0, n)) */
  CRL_SPEC_MULTI_ONE_HOT, /* MultiOneHotDiscreteTensorSpec */
  CRL_SPEC_BINARY,        /* BinaryDiscreteTensorSpec */
  CRL_SPEC_COMPOSITE,     /* CompositeSpec */
} crl_spec_kind;

typedef struct crl_spec crl_spec;

/* ---- construction (new references; NULL + error on bad arguments) ------- */

/* Any value of dtype/shape. */
CRL_API crl_spec *crl_spec_unbounded(crl_dtype dt, int ndim,
                                     const int64_t *shape);
/* Values in [low, high] (the same bounds for every element; +-INFINITY
 * allowed for float dtypes). For integer dtypes the bounds are rounded
 * inward (ceil(low), floor(high)) and must fit the dtype. Errors:
 * CRL_EINVAL if low > high, either is NaN, or no integer lies between
 * them. */
CRL_API crl_spec *crl_spec_bounded(crl_dtype dt, int ndim, const int64_t *shape,
                                   double low, double high);
/* Per-element bounds: low and high are tensors of the same shape and dtype
 * (copied), which become the spec's shape and dtype; every low <= high
 * (the first offending element is named otherwise). */
CRL_API crl_spec *crl_spec_bounded_tensor(crl_tensor *low, crl_tensor *high);
/* One-hot over n categories: shape [..., n] (the last dim is n; pass the
 * full shape, or CRL_SCALAR for [n]), any dtype (bool, uint8 and int64 are
 * usual). */
CRL_API crl_spec *crl_spec_one_hot(int64_t n, crl_dtype dt, int ndim,
                                   const int64_t *shape);
/* Category index in [0, n): any shape, integer (or bool, n <= 2) dtype
 * that holds n - 1. */
CRL_API crl_spec *crl_spec_discrete(int64_t n, crl_dtype dt, int ndim,
                                    const int64_t *shape);
/* Several one-hot groups of sizes nvec[0..k) concatenated on the last dim
 * (whose size must be sum(nvec); CRL_SCALAR gives [sum(nvec)]). */
CRL_API crl_spec *crl_spec_multi_one_hot(int k, const int64_t *nvec,
                                         crl_dtype dt, int ndim,
                                         const int64_t *shape);
/* n binary values in the last dim (0 or 1): ndim >= 1, n = shape[ndim-1]
 * > 0, any dtype. */
CRL_API crl_spec *crl_spec_binary(crl_dtype dt, int ndim, const int64_t *shape);
/* Empty composite with a (batch) shape. */
CRL_API crl_spec *crl_spec_composite(int ndim, const int64_t *shape);

CRL_API crl_spec *crl_spec_retain(crl_spec *s);
CRL_API void crl_spec_release(crl_spec *s);
/* Deep copy (composites copy their structure; leaves are immutable and
 * shared). */
CRL_API crl_spec *crl_spec_clone(crl_spec *s);

/* ---- inspection ---------------------------------------------------------- */

CRL_API crl_spec_kind crl_spec_kind_of(const crl_spec *s);
CRL_API const char *crl_spec_kind_name(crl_spec_kind k);
/* The dtype of a leaf spec (CRL_NUM_DTYPES for a composite). */
CRL_API crl_dtype crl_spec_dtype(const crl_spec *s);
CRL_API crl_device crl_spec_device(const crl_spec *s);
CRL_API int crl_spec_ndim(const crl_spec *s);
/* Borrowed array of ndim sizes. */
CRL_API const int64_t *crl_spec_shape(const crl_spec *s);
/* Number of categories (one-hot, discrete), of binary values (binary), or
 * 0. */
CRL_API int64_t crl_spec_n(const crl_spec *s);
/* Group sizes of a multi-one-hot spec (BORROWED, *k of them), else NULL
 * with *k = 0. k may be NULL. */
CRL_API const int64_t *crl_spec_nvec(const crl_spec *s, int *k);
/* Bounds of a bounded spec as BORROWED tensors of its shape, else NULL. */
CRL_API crl_tensor *crl_spec_low(const crl_spec *s);
CRL_API crl_tensor *crl_spec_high(const crl_spec *s);
/* Same kind, dtype, shape, domain (and keys, in any order, recursively). */
CRL_API bool crl_spec_equal(const crl_spec *a, const crl_spec *b);

/* ---- composites ------------------------------------------------------------
 */

/* Set key (nested allowed) to spec (retained), replacing an existing entry.
 * Missing intermediates are created as composites of the shape of the
 * composite they are created in. The child's shape must start with the
 * shape of the composite that holds it (CRL_ESHAPE naming the key and both
 * shapes); an intermediate that is a leaf is CRL_EKEY; a spec that
 * contains the composite (a cycle) is CRL_EINVAL. Fails without changes. */
CRL_API int crl_spec_set(crl_spec *comp, const char *key, crl_spec *spec);
/* BORROWED spec at key (a leaf or a nested composite), or NULL with
 * CRL_EKEY listing the keys present. */
CRL_API crl_spec *crl_spec_get(const crl_spec *comp, const char *key);
CRL_API bool crl_spec_contains(const crl_spec *comp, const char *key);
CRL_API int crl_spec_del(crl_spec *comp, const char *key);
/* Leaf keys (nested "a/b" form) in insertion order; free with
 * crl_td_keys_free. */
CRL_API int crl_spec_keys(const crl_spec *comp, crl_td_keys *out);

/* ---- values -----------------------------------------------------------------
 */

/* A random value in the spec (uniform for bounded floats and discrete
 * kinds; normal(0, 1) for unbounded floats), with `bnd` leading batch dims
 * prepended. Leaf specs only (CRL_EINVAL for composites). Bounded integer
 * specs draw uniformly from [low, high] inclusive; a half-infinite float
 * bound draws low + |normal| (or high - |normal|), both infinite a normal;
 * unbounded integer specs draw from [0, max of the dtype] (torch's
 * random_()). Draws come from g only, so a seeded g gives the same values. */
CRL_API crl_tensor *crl_spec_rand(const crl_spec *s, crl_rng *g, int bnd,
                                  const int64_t *batch);
/* A zero value (for one-hot and multi-one-hot: the first category of each
 * group; for bounded specs: 0 clamped into [low, high], so it is in the
 * spec). */
CRL_API crl_tensor *crl_spec_zero(const crl_spec *s, int bnd,
                                  const int64_t *batch);
/* Composite versions: a TensorDict of batch = batch ++ composite shape with
 * one entry per leaf key. */
CRL_API crl_td *crl_spec_rand_td(const crl_spec *comp, crl_rng *g, int bnd,
                                 const int64_t *batch);
CRL_API crl_td *crl_spec_zero_td(const crl_spec *comp, int bnd,
                                 const int64_t *batch);
/* Is t (with any leading batch dims) a value of the spec: trailing shape,
 * dtype and domain (bounds; exactly one hot per group; indices in range;
 * 0/1). NaN is in no spec; unbounded specs accept +-Inf. */
CRL_API bool crl_spec_is_in(const crl_spec *s, crl_tensor *t);
/* TorchRL's assert_is_in: 0 if crl_spec_is_in(s, t), else an error saying
 * why: CRL_ESHAPE (both shapes), CRL_EDTYPE (both dtypes) or CRL_EINVAL
 * (the first offending value, its element index and the domain). */
CRL_API int crl_spec_assert_is_in(const crl_spec *s, crl_tensor *t);
/* Check every leaf of a composite against td (tensors may carry leading
 * batch dims); on failure returns CRL_EKEY for a missing key (listing the
 * keys present), else the code of crl_spec_assert_is_in, with a message
 * naming the key and what is wrong. */
CRL_API int crl_spec_check_td(const crl_spec *comp, crl_td *td);
/* A new tensor (t's shape, the spec's dtype) moved into the spec: bounded
 * values clipped (NaN becomes low), discrete indices rounded and clamped
 * to [0, n) (NaN becomes 0), one-hot rows (and multi-one-hot groups)
 * snapped to their argmax (first on ties), binary values > 0.5 become 1,
 * others 0; float values going to an integer dtype are rounded (half to
 * even) and clamped to the dtype's range. Values already in the spec are
 * unchanged. t's trailing dims must be the spec's shape (CRL_ESHAPE). */
CRL_API crl_tensor *crl_spec_project(const crl_spec *s, crl_tensor *t);
/* A tensor of the spec's shape and dtype from a C array of `n` elements of
 * dtype `src_dt` (converted; no domain check). One-hot and multi-one-hot
 * specs also take category indices (TorchRL's encode): one per row
 * (n = numel / last dim), or one per group per row (n = rows * k), each
 * checked against its group size (CRL_EINDEX). CRL_ESHAPE if n fits
 * neither. */
CRL_API crl_tensor *crl_spec_encode(const crl_spec *s, const void *data,
                                    crl_dtype src_dt, int64_t n);
/* The same spec with `bnd` batch dims prepended (composites recursively;
 * per-element bounds are repeated). */
CRL_API crl_spec *crl_spec_expand(const crl_spec *s, int bnd,
                                  const int64_t *batch);

/* Readable print like TorchRL's repr, e.g.
 *   BoundedTensorSpec(shape=[1], space=ContinuousBox(low=-2.0, high=2.0),
 *   device=cpu, dtype=float32, domain=continuous)
 * (one line); composites list "key: spec" entries one per line, nested
 * ones indented. to_string works like crl_tensor_to_string (returns the
 * length needed). */
CRL_API int crl_spec_print(const crl_spec *s, FILE *f);
CRL_API int crl_spec_to_string(const crl_spec *s, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
