/* crl/tensor.h — dtypes, devices, storage and the tensor object.
 *
 * OWNERSHIP RULE (the one rule for every crl object that is refcounted):
 *   Every function that returns a `crl_tensor *` (or another refcounted
 *   object) returns a NEW REFERENCE. If a scope is open on the calling thread
 *   (crl_scope_begin), that reference belongs to the innermost scope and is
 *   released when the scope ends: temporaries need no bookkeeping. Call
 *   crl_tensor_retain() to keep a tensor beyond the scope (and release it
 *   later yourself). With no scope open, the caller owns the reference and
 *   releases it with crl_tensor_release().
 *   Arguments are BORROWED: a function never steals a reference it is given;
 *   whatever it stores, it retains.
 *   Parameters, buffers, optimizer state and anything else long-lived is
 *   created outside scopes (or retained).
 *
 * A tensor is a strided view (shape, strides in elements, offset) over a
 * refcounted storage. Storage lives on the heap (64-byte aligned), in a
 * memory-mapped file, or in POSIX shared memory another process can map.
 * Fields of crl_tensor are readable by users; change them only through the
 * API. */
#ifndef CRL_TENSOR_H
#define CRL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CRL_MAX_DIMS 8

typedef enum crl_dtype {
  CRL_FLOAT32 = 0,
  CRL_FLOAT64,
  CRL_INT64,
  CRL_INT32,
  CRL_UINT8,
  CRL_BOOL,
  CRL_NUM_DTYPES
} crl_dtype;

/* Size in bytes of one element; 0 for an invalid dtype. */
CRL_API size_t crl_dtype_size(crl_dtype dt);
/* Static name: "float32", "float64", "int64", "int32", "uint8", "bool". */
CRL_API const char *crl_dtype_name(crl_dtype dt);
/* dtype from its name (as above); returns -1 if unknown. */
CRL_API int crl_dtype_from_name(const char *name);
CRL_API bool crl_dtype_is_float(crl_dtype dt);
/* The dtype both operands are converted to in a binary op, as torch promotes:
 * bool < uint8 < int32 < int64 < float32 < float64. */
CRL_API crl_dtype crl_promote_types(crl_dtype a, crl_dtype b);

typedef enum crl_device_type { CRL_CPU = 0, CRL_CUDA = 1 } crl_device_type;
typedef struct crl_device {
  crl_device_type type;
  int index;
} crl_device;
#define CRL_DEVICE_CPU ((crl_device){CRL_CPU, 0})
/* "cpu" or "cuda:N"; static/thread-local buffer, borrowed. */
CRL_API const char *crl_device_name(crl_device d);

typedef enum crl_storage_kind {
  CRL_STORAGE_HEAP = 0, /* 64-byte aligned heap memory */
  CRL_STORAGE_MMAP,     /* a memory-mapped file (MAP_SHARED) */
  CRL_STORAGE_SHM,      /* POSIX shared memory (shm_open + MAP_SHARED) */
  CRL_STORAGE_EXTERNAL, /* caller's memory, optionally with a deleter */
} crl_storage_kind;

typedef struct crl_storage {
  int refcount; /* atomic; use crl_storage_retain/release */
  crl_storage_kind kind;
  crl_device device;
  void *data;
  size_t nbytes;
  char *path; /* file path (MMAP) or shm name (SHM); NULL otherwise */
  bool writable;
  void (*deleter)(void *data, void *ctx); /* EXTERNAL only */
  void *deleter_ctx;
  void *map_base; /* MMAP/SHM: the mapping to unmap */
  size_t map_len;
  bool unlink_on_free; /* SHM: this process created the segment */
} crl_storage;

/* New heap storage of nbytes (zero-filled if `zero`). New reference. */
CRL_API crl_storage *crl_storage_new(size_t nbytes, bool zero);
/* Map `nbytes` of file `path` starting at byte `offset`. With `create`, the
 * file is created/extended to offset+nbytes. `writable` maps read-write
 * (MAP_SHARED: writes land in the file). Errors: CRL_EIO naming the path. */
CRL_API crl_storage *crl_storage_new_mmap(const char *path, size_t offset,
                                          size_t nbytes, bool create,
                                          bool writable);
/* New POSIX shared-memory storage; its name (crl_storage.path, e.g.
 * "/crl-1234-5") can be opened by another process with
 * crl_storage_open_shm. The segment is unlinked when the creating storage is
 * freed. Also visible to children after fork(). */
CRL_API crl_storage *crl_storage_new_shm(size_t nbytes);
/* Map an existing shared-memory segment created by crl_storage_new_shm. */
CRL_API crl_storage *crl_storage_open_shm(const char *name, size_t nbytes);
/* Wrap caller memory. `deleter` (may be NULL) is called when the storage is
 * freed. */
CRL_API crl_storage *crl_storage_wrap(void *data, size_t nbytes,
                                      void (*deleter)(void *, void *),
                                      void *ctx);
CRL_API crl_storage *crl_storage_retain(crl_storage *s);
CRL_API void crl_storage_release(crl_storage *s);

struct crl_node;

typedef struct crl_tensor {
  int refcount; /* atomic; use crl_tensor_retain/release */
  crl_dtype dtype;
  int ndim;
  crl_device device;
  int64_t numel;
  int64_t shape[CRL_MAX_DIMS];
  int64_t stride[CRL_MAX_DIMS]; /* in elements */
  int64_t offset;               /* in elements, into storage */
  void *data;                   /* storage->data + offset * element size */
  crl_storage *storage;
  bool requires_grad;
  struct crl_tensor *grad;  /* accumulated gradient (leaves), or NULL */
  struct crl_node *grad_fn; /* the op that made it (non-leaves), or NULL */
  unsigned version;         /* bumped by in-place writes */
} crl_tensor;

/* Convenience: CRL_SHAPE(3, 4) expands to `2, (const int64_t[]){3, 4}`, the
 * (ndim, shape) argument pair taken by creation functions. */
#define CRL_SHAPE(...)                                                         \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                   \
      (const int64_t[]) {                                                      \
    __VA_ARGS__                                                                \
  }
/* A scalar (0-dim) shape: `0, NULL`. */
#define CRL_SCALAR 0, NULL

/* ---- lifetime -------------------------------------------------------- */

/* Add a reference; returns t (NULL-safe). */
CRL_API crl_tensor *crl_tensor_retain(crl_tensor *t);
/* Drop a reference; frees the tensor at zero (NULL-safe). Do not release a
 * reference owned by a scope. */
CRL_API void crl_tensor_release(crl_tensor *t);

/* Open a scope on this thread: tensors created until the matching
 * crl_scope_end are owned by it. Scopes nest. */
CRL_API void crl_scope_begin(void);
/* Close the innermost scope, releasing every reference it owns. */
CRL_API void crl_scope_end(void);
/* Close the innermost scope but hand `keep`'s reference to the enclosing
 * scope (or to the caller if none), so a function can build a result from
 * temporaries and return it: `return crl_scope_end_keep(result);`. */
CRL_API crl_tensor *crl_scope_end_keep(crl_tensor *keep);
/* Number of open scopes on this thread. */
CRL_API int crl_scope_depth(void);

/* ---- creation (all return a new reference; NULL on error) ------------ */

/* Uninitialised contiguous tensor. Errors: CRL_EINVAL for ndim>8 or a
 * negative size, CRL_ENOMEM. */
CRL_API crl_tensor *crl_empty(crl_dtype dt, int ndim, const int64_t *shape);
CRL_API crl_tensor *crl_zeros(crl_dtype dt, int ndim, const int64_t *shape);
CRL_API crl_tensor *crl_ones(crl_dtype dt, int ndim, const int64_t *shape);
CRL_API crl_tensor *crl_full(crl_dtype dt, int ndim, const int64_t *shape,
                             double value);
/* Same shape/dtype as t. */
CRL_API crl_tensor *crl_empty_like(const crl_tensor *t);
CRL_API crl_tensor *crl_zeros_like(const crl_tensor *t);
CRL_API crl_tensor *crl_ones_like(const crl_tensor *t);
CRL_API crl_tensor *crl_full_like(const crl_tensor *t, double value);
/* 0-dim tensor holding `value`. */
CRL_API crl_tensor *crl_scalar(crl_dtype dt, double value);
/* [start, end) by step (like torch.arange). Error if step is 0. */
CRL_API crl_tensor *crl_arange(crl_dtype dt, double start, double end,
                               double step);
/* n points from start to end inclusive. */
CRL_API crl_tensor *crl_linspace(crl_dtype dt, double start, double end,
                                 int64_t n);
/* n×n identity. */
CRL_API crl_tensor *crl_eye(crl_dtype dt, int64_t n);
/* Copy of a C array of numel(shape) elements of dtype dt. */
CRL_API crl_tensor *crl_from_array(crl_dtype dt, int ndim, const int64_t *shape,
                                   const void *data);
/* A tensor over existing storage (retained) with explicit geometry; strides
 * NULL means contiguous. Errors: CRL_EINDEX if the view exceeds storage. */
CRL_API crl_tensor *crl_tensor_from_storage(crl_storage *s, crl_dtype dt,
                                            int64_t offset, int ndim,
                                            const int64_t *shape,
                                            const int64_t *strides);
/* A contiguous tensor in new shared memory (see crl_storage_new_shm). */
CRL_API crl_tensor *crl_empty_shared(crl_dtype dt, int ndim,
                                     const int64_t *shape);

/* ---- inspection ------------------------------------------------------ */

CRL_API bool crl_tensor_is_contiguous(const crl_tensor *t);
/* Element at a multi-index (ndim entries) as double. No bounds errors are
 * raised: out-of-range indices return NAN and set CRL_EINDEX. */
CRL_API double crl_tensor_get(const crl_tensor *t, const int64_t *index);
/* Flat (row-major logical) element i as double; NAN + CRL_EINDEX if out of
 * range. */
CRL_API double crl_tensor_get_flat(const crl_tensor *t, int64_t i);
/* Set element at a multi-index. Errors: CRL_EINDEX. */
CRL_API int crl_tensor_set(crl_tensor *t, const int64_t *index, double v);
CRL_API int crl_tensor_set_flat(crl_tensor *t, int64_t i, double v);
/* The value of a one-element tensor as double (NAN + CRL_ESHAPE otherwise). */
CRL_API double crl_item(const crl_tensor *t);
/* Copy all elements, in logical order, converted to dtype `dt`, into `out`
 * (capacity `n` elements). Errors: CRL_EINVAL if n < numel. */
CRL_API int crl_tensor_to_array(const crl_tensor *t, crl_dtype dt, void *out,
                                int64_t n);
/* Same shape (and ndim)? */
CRL_API bool crl_same_shape(const crl_tensor *a, const crl_tensor *b);
/* Write "[3, 4]" into buf (always NUL-terminated). Returns buf. */
CRL_API char *crl_shape_str(int ndim, const int64_t *shape, char *buf,
                            size_t size);

/* Readable print like torch's, followed by a newline:
 *   tensor([[1.0000, 2.5000],
 *           [3.0000, 4.0000]], shape=[2, 2], dtype=float32, device=cpu)
 * Floats share one format chosen as torch does (integral "1.", fixed 4
 * decimals, or scientific for wide ranges); more than 1000 elements are
 * summarised with the first and last 3 entries of each long dim around
 * "...". "requires_grad=True" / "grad_fn=<op>" are appended when they
 * apply. Errors: CRL_EINVAL (NULL), CRL_EIO (write failed). */
CRL_API int crl_tensor_print(const crl_tensor *t, FILE *f);
/* Same (without the newline) into a buffer, always NUL-terminated when size
 * > 0; returns the length it needed (like snprintf), or a negative CRL_E*
 * code. buf may be NULL when size is 0. */
CRL_API int crl_tensor_to_string(const crl_tensor *t, char *buf, size_t size);

/* ---- .npy files ------------------------------------------------------ */

/* Write t as a NumPy .npy file (version 1.0, C order, little endian; the
 * same bytes np.save writes). Non-contiguous tensors are written in logical
 * order. The file is written beside `path` and renamed over it, so a failed
 * save leaves an existing file intact. Errors: CRL_EIO naming the path. */
CRL_API int crl_tensor_save_npy(const crl_tensor *t, const char *path);
/* Read a .npy file (versions 1.0, 2.0, 3.0) into a new heap tensor.
 * Malformed or truncated files, and files whose data size does not match
 * the header's shape, are rejected with CRL_EFORMAT and a message saying
 * what is wrong; nothing is read out of bounds. Accepts dtypes <f4 <f8 <i8
 * <i4 |u1 |b1, C order. Errors: CRL_EIO naming the path. */
CRL_API crl_tensor *crl_tensor_load_npy(const char *path);
/* Open a .npy file lazily, as a tensor over a memory mapping of the file
 * (writes land in the file when `writable`). Same checks as load. */
CRL_API crl_tensor *crl_tensor_mmap_npy(const char *path, bool writable);
/* Create a .npy file of the given dtype/shape (zero-filled) and return a
 * writable mapped tensor over it. */
CRL_API crl_tensor *crl_tensor_create_npy(const char *path, crl_dtype dt,
                                          int ndim, const int64_t *shape);
/* Parse a .npy header from memory (buf holds len bytes from the start of the
 * file): fills dtype, ndim, shape (room for CRL_MAX_DIMS) and the data
 * offset; nothing is written on failure. Errors: CRL_EFORMAT. Exposed for
 * tests and for TensorDict memmap. */
CRL_API int crl_npy_parse_header(const void *buf, size_t len, crl_dtype *dt,
                                 int *ndim, int64_t *shape,
                                 size_t *data_offset);

#ifdef __cplusplus
}
#endif
#endif
