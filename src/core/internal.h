/* Internal declarations shared by crl's sources. Not installed. */
#ifndef CRL_INTERNAL_H
#define CRL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "crl/crl.h"

#define CRL_INTERNAL __attribute__((visibility("hidden")))
#define CRL_LIKELY(x) __builtin_expect(!!(x), 1)
#define CRL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- errors ---------------------------------------------------------- */
/* Set the thread's error (code + printf message) and return code. */
CRL_INTERNAL int crl__err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, returning NULL (for pointer-returning functions). */
#define CRL_ERR_NULL(code, ...) (crl__err((code), __VA_ARGS__), (void *)0)
/* Shape to string into a caller buffer: SHAPE_STR(t, buf). */
#define CRL_SHAPE_STR(t, buf)                                                  \
  crl_shape_str((t)->ndim, (t)->shape, buf, sizeof buf)

/* ---- memory ---------------------------------------------------------- */
CRL_INTERNAL void *crl__aligned_alloc(size_t nbytes); /* 64-byte aligned */
CRL_INTERNAL void crl__aligned_free(void *p);

/* ---- files (npy.c; shared with safetensors) ---------------------------- */
/* Write / read exactly n bytes (EINTR retried, 1 GiB chunks): 0, or -1 with
 * errno (EIO when the file is shorter than offset + n). */
CRL_INTERNAL int crl__write_all(int fd, const void *p, size_t n);
CRL_INTERNAL int crl__pread_all(int fd, void *p, size_t n, int64_t offset);
/* Create a fresh temporary file beside path ("path.tmp.PID.N", same folder
 * so a rename onto path is atomic), its name into tmp[cap]: the fd, or a
 * negative code with an error naming op. */
CRL_INTERNAL int crl__open_tmp(const char *op, const char *path, char *tmp,
                               size_t cap);

/* ---- tensors --------------------------------------------------------- */
/* New tensor struct over storage s (retained) — registers with the current
 * scope. No checks: internal callers guarantee the geometry. strides may be
 * NULL (contiguous). */
CRL_INTERNAL crl_tensor *crl__view_of(crl_storage *s, crl_dtype dt,
                                      int64_t offset, int ndim,
                                      const int64_t *shape,
                                      const int64_t *strides);
/* A view sharing a's storage with new geometry (no autograd recorded). */
CRL_INTERNAL crl_tensor *crl__alias(const crl_tensor *a, int ndim,
                                    const int64_t *shape,
                                    const int64_t *strides, int64_t offset);
/* Contiguous strides for shape; returns numel. */
CRL_INTERNAL int64_t crl__contig_strides(int ndim, const int64_t *shape,
                                         int64_t *strides);
CRL_INTERNAL int64_t crl__numel(int ndim, const int64_t *shape);
/* Validate ndim/shape for creation (error message names the op). */
CRL_INTERNAL int crl__check_shape(const char *op, int ndim,
                                  const int64_t *shape);
/* Normalise a possibly negative dim for a tensor of ndim dims; returns
 * CRL_EINDEX (message naming op, dim and ndim) if out of range. */
CRL_INTERNAL int crl__wrap_dim(const char *op, int dim, int ndim, int *out);
/* Broadcast two shapes; error names both. */
CRL_INTERNAL int crl__broadcast_shapes(const char *op, int na,
                                       const int64_t *sa, int nb,
                                       const int64_t *sb, int *nout,
                                       int64_t *out);
/* Strides (in elements) of t broadcast to out shape (0 on broadcast dims). */
CRL_INTERNAL void crl__broadcast_strides(const crl_tensor *t, int ndim,
                                         const int64_t *shape,
                                         int64_t *strides);
/* Element as double at a flat element offset from t->data (in elements). */
CRL_INTERNAL double crl__load(crl_dtype dt, const void *base, int64_t off);
CRL_INTERNAL void crl__store(crl_dtype dt, void *base, int64_t off, double v);
/* Dispose of a tensor an op created but will not return (error paths): it
 * is released now if no scope owns it or the current scope does. */
CRL_INTERNAL void crl__discard(crl_tensor *t);
/* Return a tensor struct to the per-thread cache (or free it). */
CRL_INTERNAL void crl__tensor_free_struct(crl_tensor *t);
/* Scope registration of a fresh tensor (done by crl__view_of). */
CRL_INTERNAL void crl__scope_adopt(crl_tensor *t);
/* The same for any refcounted object with its release function. */
CRL_INTERNAL void crl__scope_adopt_obj(void *obj, void (*release)(void *));
CRL_INTERNAL void crl__discard_obj(void *obj, void (*release)(void *));
/* Error if t is not on the CPU (names op). */
CRL_INTERNAL int crl__check_cpu(const char *op, const crl_tensor *t);
/* Bump the version counter of an in-place write; fails (CRL_EAUTOGRAD) if
 * t requires grad while grad mode is on (in-place on a leaf/graph tensor). */
CRL_INTERNAL int crl__check_inplace(const char *op, crl_tensor *t);

/* Views without validation (dim already normalised, range checked), with
 * autograd like crl_narrow / crl_select (src/core/shape.c). */
CRL_INTERNAL crl_tensor *crl__narrow_unchecked(crl_tensor *a, int dim,
                                               int64_t start, int64_t length);
CRL_INTERNAL crl_tensor *crl__select_unchecked(crl_tensor *a, int dim,
                                               int64_t index);

/* ---- strided iteration ------------------------------------------------
 * Visit an N-d index space with up to CRL_ITER_MAX_OPS operands given by
 * base pointers and BYTE strides per dim. Adjacent dims that are contiguous
 * for every operand are merged; fn is called on runs of the innermost dim
 * with each operand's pointer and inner byte stride. When `parallel` is set
 * and the work is large, outer runs are split over the pool in fixed-size
 * chunks (results do not depend on the thread count). */
#define CRL_ITER_MAX_OPS 4
typedef void (*crl__loop_fn)(char **ptrs, const int64_t *inner_strides,
                             int64_t n, void *ctx);
CRL_INTERNAL void crl__iterate(int nops, char *const *base, int ndim,
                               const int64_t *shape,
                               const int64_t (*byte_strides)[CRL_MAX_DIMS],
                               crl__loop_fn fn, void *ctx, bool parallel);
/* Convenience: iterate dst (written) and srcs (tensors broadcast to dst's
 * shape), element strides converted to bytes. */
CRL_INTERNAL void crl__iterate_tensors(crl_tensor *dst, int nsrc,
                                       crl_tensor *const *srcs, crl__loop_fn fn,
                                       void *ctx, bool parallel);
/* Copy with dtype conversion and broadcasting (no checks, no autograd). */
CRL_INTERNAL void crl__copy_into(crl_tensor *dst, const crl_tensor *src);
/* A contiguous copy of a in dtype dt (no autograd). */
CRL_INTERNAL crl_tensor *crl__to_contig_dtype(crl_tensor *a, crl_dtype dt);
/* Element count above which elementwise work goes to the pool. */
#define CRL_PARALLEL_GRAIN 32768

/* ---- reductions (src/core/reduce.c) ------------------------------------
 * A reduction over a set of dims is described by a bit mask (bit d: dim d is
 * reduced). Kernels see their input as a contiguous block [O][R][I]: O =
 * kept dims before the reduced run, R = reduced dims, I = kept dims after;
 * the result's flat order is [O][I]. */
typedef struct crl__red_plan {
  unsigned mask; /* reduced dims of the input */
  int in_ndim;
  int out_ndim;
  int64_t out_shape[CRL_MAX_DIMS];  /* result shape (keepdim or not) */
  int64_t keep_shape[CRL_MAX_DIMS]; /* in_ndim dims, 1 where reduced */
  int64_t count;                    /* elements per reduced slice */
} crl__red_plan;
/* Validate dims (ndims = 0: all; negative from the end; no repeats; a 0-dim
 * tensor accepts 0 and -1) and fill p. Error messages name op and shape. */
CRL_INTERNAL int crl__red_plan_make(const char *op, const crl_tensor *a,
                                    int ndims, const int *dims, bool keepdim,
                                    crl__red_plan *p);
/* a as a contiguous [O][R][I] block of dtype dt: a itself (a new reference)
 * when that needs no copy, else a copy. When the reduced dims do not form
 * one run, the copy is permuted to [kept dims..., reduced dims...] (I = 1)
 * and *permuted is set. */
CRL_INTERNAL crl_tensor *crl__red_layout(crl_tensor *a, unsigned mask,
                                         crl_dtype dt, int64_t *O, int64_t *R,
                                         int64_t *In, bool *permuted);
/* Inverse of crl__red_layout: buf (contiguous, laid out as it was for a
 * tensor of `shape`) as a contiguous tensor of `shape`. */
CRL_INTERNAL crl_tensor *crl__red_unlayout(crl_tensor *buf, int ndim,
                                           const int64_t *shape, unsigned mask,
                                           bool permuted);
/* A view of reduction result t (with or without keepdim) with the input's
 * in_ndim dims: size 1 and stride 0 on reduced dims, so it broadcasts
 * against the input. */
CRL_INTERNAL crl_tensor *crl__red_keepdim_view(crl_tensor *t, int in_ndim,
                                               unsigned mask);
/* Work splitting of [O][R][I] kernels (src/core/iterate.c).
 * Run fn(ctx, i) for i < n, on the pool when `work` (elements) is at least
 * 2 * CRL_PARALLEL_GRAIN. Items write disjoint memory, so the result never
 * depends on this choice. */
typedef void (*crl__item_fn)(void *ctx, int64_t i);
CRL_INTERNAL void crl__run_items(int64_t n, int64_t work, crl__item_fn fn,
                                 void *ctx);
/* The O slabs of a contiguous [O][R][I] block, *G = grain / (R * I) + 1 of
 * them per item (*G is set first: it usually lives in ctx): fn(ctx, i) for
 * the ceil(O / *G) items, through crl__run_items. */
CRL_INTERNAL void crl__run_slabs(int64_t O, int64_t R, int64_t I, int64_t grain,
                                 int64_t *G, crl__item_fn fn, void *ctx);
/* A shape seen as [O][R][I] around dim d: O and I the products of the dims
 * before and after d, R = shape[d]. */
CRL_INTERNAL void crl__shape_ori(int ndim, const int64_t *shape, int d,
                                 int64_t *O, int64_t *R, int64_t *I);

/* ---- random (random.c) ------------------------------------------------- */
/* One Philox4x32-10 block: out = philox(ctr, key) (for known-answer tests). */
CRL_INTERNAL void crl__philox4x32_10(const uint32_t ctr[4],
                                     const uint32_t key[2], uint32_t out[4]);

/* for (i = 0; i < n; i++) BODY, as blocks of 16 plus a tail: GCC 12 at -O2
 * vectorizes fixed-length loops but not loops with a runtime trip count.
 * Pointers used in BODY should be restrict-qualified locals. */
#define CRL_VLOOP(n, BODY)                                                     \
  do {                                                                         \
    int64_t i_ = 0, n_ = (n);                                                  \
    for (; i_ + 16 <= n_; i_ += 16)                                            \
      for (int u_ = 0; u_ < 16; u_++) {                                        \
        int64_t i = i_ + u_;                                                   \
        BODY;                                                                  \
      }                                                                        \
    for (; i_ < n_; i_++) {                                                    \
      int64_t i = i_;                                                          \
      BODY;                                                                    \
    }                                                                          \
  } while (0)

/* Max of x[0..n) (n >= 1) as `x[i] > m ? x[i] : m` in 16 lanes, so GCC
 * vectorizes it: the row max of softmax and logsumexp. */
#define CRL__DEF_ROWMAX(S, T)                                                  \
  static inline T crl__rowmax_##S(const T *restrict x, int64_t n) {            \
    T m = x[0];                                                                \
    int64_t i = 1;                                                             \
    if (n >= 32) {                                                             \
      T l[16];                                                                 \
      for (int k = 0; k < 16; k++)                                             \
        l[k] = x[k];                                                           \
      for (i = 16; i + 16 <= n; i += 16)                                       \
        for (int k = 0; k < 16; k++)                                           \
          l[k] = x[i + k] > l[k] ? x[i + k] : l[k];                            \
      for (int k = 0; k < 16; k++)                                             \
        m = l[k] > m ? l[k] : m;                                               \
    }                                                                          \
    for (; i < n; i++)                                                         \
      m = x[i] > m ? x[i] : m;                                                 \
    return m;                                                                  \
  }
CRL__DEF_ROWMAX(f32, float)
CRL__DEF_ROWMAX(f64, double)

/* exp for float32 without a libm call, so loops over it vectorize (~0.3 ns
 * per element): Cephes' polynomial, within 1.5 ulp of expf on [-86, 88].
 * Returns 0 below -86 (true values under 5e-38 are flushed), +inf above 88,
 * NaN for NaN. */
static inline float crl__expf(float x) {
  float xc = (x >= -86.0f && x <= 88.0f) ? x : 0.0f;
  float t = xc * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23 */
  float n = t - 12582912.0f;                         /* round(x / ln 2) */
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  union {
    float f;
    uint32_t u;
  } ut = {t}, uy = {y};
  uy.u += (ut.u - 0x4B400000u) << 23; /* y * 2^n */
  float big = x > 88.0f ? __builtin_inff() : (x != x ? x : uy.f);
  return x < -86.0f ? 0.0f : big;
}

/* log for float32 without a libm call (vectorizes): Cephes' logf — the
 * mantissa in [sqrt(1/2), sqrt(2)) through a degree-9 polynomial, plus the
 * exponent times ln 2 in two parts. Denormals are scaled up first; x < 0
 * and NaN give NaN, 0 gives -inf, +inf gives +inf. Checked against libm in
 * tests/core/test_unary.c. */
static inline float crl__logf(float x) {
  union {
    float f;
    uint32_t u;
  } v = {x};
  float scale = 0.0f;
  if (v.u < 0x00800000u && x > 0) { /* denormal: multiply by 2^25 */
    v.f = x * 33554432.0f;
    scale = -25.0f;
  }
  float e = (float)((int)((v.u >> 23) & 0xff) - 126) + scale;
  v.u = (v.u & 0x807fffffu) | 0x3f000000u; /* mantissa in [0.5, 1) */
  float m = v.f;
  if (m < 0.707106781186547524f) {
    e -= 1.0f;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  float r = m + y + 0.693359375f * e;
  r = x == 0.0f ? -__builtin_inff() : r;
  r = x == __builtin_inff() ? x : r;
  return (x < 0.0f || x != x) ? __builtin_nanf("") : r;
}

/* log(1 + x) for float32 without libm: log(u) * x / (u - 1) with u = 1 + x
 * corrects the rounding of u (exact to a few ulp for tiny x too). */
static inline float crl__log1pf(float x) {
  float u = 1.0f + x;
  float d = u - 1.0f;
  float r = crl__logf(u);
  return d == 0.0f ? x : (u == __builtin_inff() ? u : r * (x / d));
}

/* tanh for float32 without a libm call (vectorizes): Cephes' tanhf — an
 * odd minimax polynomial below |x| = 0.625, 1 - 2/(exp(2|x|) + 1) above
 * (no cancellation there), exactly +-1 beyond |x| = 9. Checked against libm
 * in tests/core/test_unary.c. */
static inline float crl__tanhf(float x) {
  float ax = x < 0 ? -x : x;
  float z = x * x;
  float small =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) *
            z +
        1.33314422036e-1f) *
           z -
       3.33332819422e-1f) *
          z * x +
      x;
  float e = crl__expf(2.0f * (ax > 9.0f ? 9.0f : ax));
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = ax > 9.0f ? 1.0f : big;
  big = x < 0 ? -big : big;
  return ax < 0.625f ? small : (x != x ? x : big);
}

/* ---- autograd internals ----------------------------------------------- */
typedef struct crl_node crl_node;
typedef struct crl_edge {
  crl_node *fn;     /* producer of the input (retained), or NULL */
  crl_tensor *leaf; /* the input if it is a leaf requiring grad (retained) */
  bool needs_grad;  /* false: backward may skip this input */
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  crl_dtype dtype;
} crl_edge;

/* Compute the gradients of a node's inputs from the gradient of its output.
 * gin[i] (i < ninputs) are set to tensors with the input's shape, or left
 * NULL (no gradient / not needed). They may be temporaries of the scope the
 * engine opens around the call; the engine copies what it keeps. Return 0 or
 * a CRL_E* code. */
typedef int (*crl_backward_fn)(crl_node *n, crl_tensor *gout, crl_tensor **gin);

#define CRL_NODE_SAVED 6
#define CRL_NODE_INLINE_EDGES 3
struct crl_node {
  int refcount; /* atomic */
  const char *name;
  crl_backward_fn backward;
  void (*free_ctx)(crl_node *n); /* frees n->ctx, may be NULL */
  int ninputs;
  crl_edge *edges;
  crl_edge edges_inline[CRL_NODE_INLINE_EDGES];
  crl_tensor *saved[CRL_NODE_SAVED]; /* detached aliases (released on free) */
  double f[4];                       /* op scalars */
  int64_t i[8];                      /* op integers */
  void *ctx;                         /* op extra state */
  int out_ndim;
  int64_t out_shape[CRL_MAX_DIMS];
  crl_dtype out_dtype;
  /* engine state */
  crl_tensor *grad_accum;
  bool grad_owned;
  int deps;
  int mark;
  bool freed;
};

/* True if grad mode is on and any of the n inputs (NULLs ignored) requires
 * grad. */
CRL_INTERNAL bool crl__any_requires_grad(int n, crl_tensor *const *inputs);
/* Create a node producing `out` from n inputs (NULL allowed), attach it as
 * out->grad_fn and set out->requires_grad. Returns the node (borrowed: owned
 * by out) or NULL on allocation failure (error set). */
CRL_INTERNAL crl_node *crl__record(crl_tensor *out, const char *name,
                                   crl_backward_fn backward, int n,
                                   crl_tensor *const *inputs);
/* Save a detached alias of t in slot (0..CRL_NODE_SAVED-1). */
CRL_INTERNAL void crl__save(crl_node *n, int slot, crl_tensor *t);
CRL_INTERNAL void crl__node_release(crl_node *n);
/* Reduce a gradient g to shape (undo broadcasting by summing). New ref
 * (may be g itself, retained-into-scope, when shapes agree). */
CRL_INTERNAL crl_tensor *crl__sum_to(crl_tensor *g, int ndim,
                                     const int64_t *shape);

#endif
