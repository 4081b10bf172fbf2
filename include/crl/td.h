/* crl/td.h — TensorDict: the data carrier every crl component speaks.
 *
 * A TensorDict (crl_td) maps string keys to tensors or nested TensorDicts
 * that share leading batch dimensions (the batch size, 0–8 dims) on one
 * device. Nested keys are written with '/': "next/observation". Keys keep
 * insertion order.
 *
 * Ownership: crl_td is reference-counted like crl_tensor and follows the
 * same rule (crl/tensor.h): functions returning a crl_td * or crl_tensor *
 * return a NEW reference (owned by the innermost open scope, if any),
 * EXCEPT the accessors crl_td_get / crl_td_get_td / crl_td_key_at, which
 * return BORROWED references valid while the entry stays in the TensorDict
 * (retain to keep longer). Setting an entry retains the value; the
 * TensorDict never steals a reference.
 *
 * Operations that can be views are views: select, exclude, indexing by int
 * or slice, view, permute, unsqueeze, squeeze, expand, unbind, split share
 * the entries' storage. A failing call leaves the TensorDict unchanged. */
#ifndef CRL_TD_H
#define CRL_TD_H

#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_td crl_td;

/* ---- lifetime and structure --------------------------------------------- */

/* Empty TensorDict with the given batch size on the CPU. */
CRL_API crl_td *crl_td_new(int batch_ndim, const int64_t *batch);
CRL_API crl_td *crl_td_retain(crl_td *td);
CRL_API void crl_td_release(crl_td *td);

CRL_API int crl_td_batch_ndim(const crl_td *td);
/* Borrowed array of batch_ndim sizes. */
CRL_API const int64_t *crl_td_batch_size(const crl_td *td);
CRL_API crl_device crl_td_device(const crl_td *td);
/* Number of entries at the top level (tensors and nested TensorDicts). */
CRL_API int crl_td_len(const crl_td *td);

/* Set key to tensor t (retained). Nested keys create intermediate
 * TensorDicts. The tensor's leading dims must equal the batch size
 * (CRL_ESHAPE naming the key and both shapes). Replaces an existing tensor
 * entry; setting over a nested TensorDict is CRL_EKEY. */
CRL_API int crl_td_set(crl_td *td, const char *key, crl_tensor *t);
/* Set key to a nested TensorDict (retained) whose batch size starts with
 * td's. */
CRL_API int crl_td_set_td(crl_td *td, const char *key, crl_td *sub);
/* In place: copy t into the existing entry (same shape after broadcasting);
 * the entry's storage is kept (preallocated hot loops). CRL_EKEY if absent. */
CRL_API int crl_td_set_(crl_td *td, const char *key, crl_tensor *t);
/* BORROWED tensor at key, or NULL with CRL_EKEY naming the key and listing
 * the keys present. */
CRL_API crl_tensor *crl_td_get(const crl_td *td, const char *key);
/* BORROWED nested TensorDict at key, or NULL (CRL_EKEY). */
CRL_API crl_td *crl_td_get_td(const crl_td *td, const char *key);
/* Tensor at key or NULL, without setting an error. BORROWED. */
CRL_API crl_tensor *crl_td_find(const crl_td *td, const char *key);
CRL_API bool crl_td_contains(const crl_td *td, const char *key);
/* Remove key (tensor or nested). CRL_EKEY if absent. */
CRL_API int crl_td_del(crl_td *td, const char *key);

/* Keys. With `nested`, walk into nested TensorDicts and report full
 * "a/b" keys; with `leaves_only`, report tensors only. Keys come in
 * insertion order (depth first). */
typedef struct crl_td_keys {
  int n;
  char **keys; /* owned by the struct; free with crl_td_keys_free */
} crl_td_keys;
CRL_API int crl_td_keys_get(const crl_td *td, bool nested, bool leaves_only,
                            crl_td_keys *out);
CRL_API void crl_td_keys_free(crl_td_keys *k);
/* Top-level entry i: its key (BORROWED) and either its tensor or its nested
 * TensorDict (BORROWED; the other is set to NULL). For fast iteration. */
CRL_API const char *crl_td_key_at(const crl_td *td, int i, crl_tensor **t,
                                  crl_td **sub);

/* ---- whole-TensorDict operations --------------------------------------- */

/* Deep copy (new storage for every tensor). */
CRL_API crl_td *crl_td_clone(crl_td *td);
/* Set every entry of src into dst (replacing, retaining src's tensors). */
CRL_API int crl_td_update(crl_td *dst, crl_td *src);
/* Copy src's values into dst's existing entries in place (keys of src must
 * exist in dst with matching shapes). */
CRL_API int crl_td_copy_(crl_td *dst, crl_td *src);
/* dst[index along batch dim 0] = src, in place, for each key of src. */
CRL_API int crl_td_copy_at_(crl_td *dst, crl_td *src, int64_t index);
/* New TensorDict sharing the listed keys' tensors (nested keys allowed);
 * a missing key is CRL_EKEY. */
CRL_API crl_td *crl_td_select(crl_td *td, int nkeys, const char *const *keys);
CRL_API crl_td *crl_td_exclude(crl_td *td, int nkeys, const char *const *keys);
/* Rename a key in place (nested keys allowed). */
CRL_API int crl_td_rename(crl_td *td, const char *old_key, const char *new_key);
/* New TensorDict with fn(tensor, ctx) for every leaf (fn returns a new
 * reference or NULL on error, which aborts and is returned). */
typedef crl_tensor *(*crl_td_apply_fn)(crl_tensor *t, void *ctx);
CRL_API crl_td *crl_td_apply(crl_td *td, crl_td_apply_fn fn, void *ctx);
/* Copy every leaf to dtype dt (float leaves only when only_float). */
CRL_API crl_td *crl_td_to_dtype(crl_td *td, crl_dtype dt, bool only_float);
/* Copy to a device (CPU only in this build: a clone; CUDA is
 * CRL_EUNSUPPORTED when not built). */
CRL_API crl_td *crl_td_to_device(crl_td *td, crl_device device);
CRL_API int crl_td_zero_(crl_td *td);
CRL_API int crl_td_fill_(crl_td *td, const char *key, double value);
/* Same keys, shapes and values. */
CRL_API bool crl_td_equal(crl_td *a, crl_td *b);
CRL_API bool crl_td_allclose(crl_td *a, crl_td *b, double rtol, double atol);

/* ---- batch-shape operations -----------------------------------------------
 */

/* Stack n TensorDicts with the same keys and batch size along a new batch
 * dim. Different keys: CRL_EKEY naming the keys that differ. */
CRL_API crl_td *crl_td_stack(int n, crl_td *const *tds, int dim);
CRL_API crl_td *crl_td_cat(int n, crl_td *const *tds, int dim);
/* Split along a batch dim into pieces of split_size (views); returns the
 * count or a negative code if cap is too small. */
CRL_API int crl_td_split(crl_td *td, int64_t split_size, int dim, crl_td **out,
                         int cap);
CRL_API int crl_td_unbind(crl_td *td, int dim, crl_td **out, int cap);
/* New batch size (one -1 allowed); entries viewed accordingly. */
CRL_API crl_td *crl_td_view(crl_td *td, int ndim, const int64_t *batch);
CRL_API crl_td *crl_td_reshape(crl_td *td, int ndim, const int64_t *batch);
CRL_API crl_td *crl_td_permute(crl_td *td, int ndim, const int *dims);
CRL_API crl_td *crl_td_unsqueeze(crl_td *td, int dim);
CRL_API crl_td *crl_td_squeeze(crl_td *td, int dim);
CRL_API crl_td *crl_td_expand(crl_td *td, int ndim, const int64_t *batch);
/* Merge batch dims start..end / split batch dim into sizes. */
CRL_API crl_td *crl_td_flatten(crl_td *td, int start, int end);
CRL_API crl_td *crl_td_unflatten(crl_td *td, int dim, int ndim,
                                 const int64_t *sizes);

/* ---- indexing over batch dims ------------------------------------------- */

/* td[i] on batch dim 0 (negative from the end): a view. */
CRL_API crl_td *crl_td_index(crl_td *td, int64_t i);
/* td[start:stop:step] on batch dim `dim`: a view. */
CRL_API crl_td *crl_td_slice(crl_td *td, int dim, int64_t start, int64_t stop,
                             int64_t step);
/* td[idx] with an int64 index tensor (any shape) on batch dim 0: a copy. */
CRL_API crl_td *crl_td_index_tensor(crl_td *td, crl_tensor *idx);
/* td[mask] with a bool mask over the leading batch dims: a copy with batch
 * [count] + remaining batch dims. */
CRL_API crl_td *crl_td_masked_select(crl_td *td, crl_tensor *mask);
/* td[idx] = src in place (int64 index tensor on batch dim 0). */
CRL_API int crl_td_index_put_(crl_td *td, crl_tensor *idx, crl_td *src);
/* td[start:stop:step] = src in place on batch dim 0. */
CRL_API int crl_td_slice_put_(crl_td *td, int64_t start, int64_t stop,
                              int64_t step, crl_td *src);

/* ---- RL helpers ------------------------------------------------------------
 */

typedef struct crl_step_mdp_options {
  bool keep_other;     /* keep root keys that are not in next/ (default) */
  bool exclude_reward; /* drop reward from the result */
  bool exclude_done;   /* drop done/terminated/truncated */
  bool exclude_action; /* drop action */
} crl_step_mdp_options;
/* TorchRL's step_mdp: the next step's input from a step's output — entries
 * of "next/" move to the root (replacing root entries of the same name).
 * Pass NULL for TorchRL's defaults (keep_other, exclude_reward,
 * exclude_done false, exclude_action true). exclude_done drops done,
 * terminated and truncated. Views, no copies: the result holds the input's
 * tensors in new (nested) TensorDicts. CRL_EKEY without a nested "next". */
CRL_API crl_td *crl_td_step_mdp(crl_td *td, const crl_step_mdp_options *opt);

/* "a/b" nested keys flattened to top-level keys joined by sep, and back
 * (sep NULL means ".", tensordict's default; sep may not contain '/').
 * Results share the tensors. Two keys landing on the same name are CRL_EKEY
 * naming both; empty nested TensorDicts are dropped by flatten_keys. */
CRL_API crl_td *crl_td_flatten_keys(crl_td *td, const char *sep);
CRL_API crl_td *crl_td_unflatten_keys(crl_td *td, const char *sep);

/* ---- memory
 * ------------------------------------------------------------------ */

/* Move every leaf to POSIX shared memory in place (another process can map
 * the entries; children after fork() share them). Each entry is replaced by
 * a contiguous shared copy (tensors held elsewhere keep the old memory);
 * entries already shared are kept, one tensor at several keys stays one
 * tensor, and leaves keep requires_grad. */
CRL_API int crl_td_share_memory_(crl_td *td);
/* Write every leaf as a .npy file under folder (nested keys become
 * sub-folders) plus meta.json with the batch size and structure, and make
 * the entries memory-mapped views of those files (writes land in them).
 * The folder is created if needed; each .npy is what np.save writes
 * (numpy.load(path, mmap_mode="r") reads it). Format: src/td/td_memmap.c. */
CRL_API int crl_td_memmap_(crl_td *td, const char *folder);
/* Open a folder written by crl_td_memmap_ lazily, without copying.
 * Corrupted or truncated folders fail with CRL_EFORMAT naming the file. */
CRL_API crl_td *crl_td_load_memmap(const char *folder, bool writable);

/* Readable print like tensordict's: fields with shape, dtype and device,
 * then batch_size and device. */
CRL_API int crl_td_print(const crl_td *td, FILE *f);
CRL_API int crl_td_to_string(const crl_td *td, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
