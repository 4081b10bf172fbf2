/* TensorDict internals shared by the files of src/td. Not installed. */
#ifndef CRL_TD_INTERNAL_H
#define CRL_TD_INTERNAL_H

#include "../core/internal.h"
#include "crl/td.h"

typedef struct td_entry {
  char *key;          /* one component, no '/' */
  crl_tensor *t;      /* a tensor entry, or */
  struct crl_td *sub; /* a nested TensorDict */
} td_entry;

struct crl_td {
  int refcount; /* atomic */
  int bnd;
  int64_t batch[CRL_MAX_DIMS];
  crl_device device;
  int n, cap;
  td_entry *e;
  unsigned version; /* bumped whenever an entry is added, removed or
                      replaced (lets the env layer cache lookups) */
};

/* A new empty TensorDict (scope-adopted) without shape checks. */
CRL_INTERNAL crl_td *crl__td_new_raw(int bnd, const int64_t *batch,
                                     crl_device dev);
/* Append an entry (key[0..len), retaining t or sub). */
CRL_INTERNAL int crl__td_append(crl_td *td, const char *key, size_t len,
                                crl_tensor *t, crl_td *sub);
/* Append an entry with the same key as src (the key string is shared). */
CRL_INTERNAL int crl__td_append_entry(crl_td *td, const td_entry *src,
                                      crl_tensor *t, crl_td *sub);
/* Release an entry's key (entries' keys are refcounted strings). */
CRL_INTERNAL void crl__td_key_free(char *key);
CRL_INTERNAL int crl__td_find_local(const crl_td *td, const char *key,
                                    size_t len);
CRL_INTERNAL int crl__td_check_key(const char *op, const char *key);
/* Nested TensorDict at key or NULL, no error set. */
CRL_INTERNAL crl_td *crl__td_get_sub(const crl_td *td, const char *key);
/* Key listing, shared with the composite specs of src/envs: "prefix/key"
 * (just key when prefix is NULL or "") malloc'ed, NULL on ENOMEM; append
 * that to k (capacity *cap, grown by doubling); "'a', 'b/c'" (or "none")
 * into buf. */
CRL_INTERNAL char *crl__td_key_join(const char *prefix, const char *key);
CRL_INTERNAL int crl__td_keys_push(crl_td_keys *k, int *cap, const char *prefix,
                                   const char *key);
CRL_INTERNAL void crl__td_keys_list(const crl_td_keys *k, char *buf,
                                    size_t size);
/* Error-path disposal and scope hand-over, as for tensors. */
CRL_INTERNAL void crl__td_discard(crl_td *td);
CRL_INTERNAL crl_td *crl__td_scope_end_keep(crl_td *keep);

/* ---- helpers of td_ops.c shared by td_shape.c / td_index.c ----------------
 */
/* New TensorDict with td's structure and every leaf replaced by fn(leaf,
 * ctx) (a new reference; NULL aborts, the message is prefixed with op and
 * the entry's key). The first td->bnd batch dims of td and of every nested
 * TensorDict become nbatch[0..nbnd) (nbatch NULL: unchanged); each new leaf
 * must start with its holder's new batch size (CRL_ESHAPE otherwise). */
CRL_INTERNAL crl_td *crl__td_map(const char *op, crl_td *td, int nbnd,
                                 const int64_t *nbatch, crl_td_apply_fn fn,
                                 void *ctx);
/* "'a', 'next/b'": td's nested keys, for error messages ("none" if empty). */
CRL_INTERNAL void crl__td_keys_str(const crl_td *td, char *buf, size_t size);
/* The leaves of src with the tensors at the same keys of dst (keys joined
 * with '/', malloc'ed). CRL_EKEY naming the key when dst lacks one or holds
 * a nested TensorDict where src holds a tensor (or the reverse). */
typedef struct crl__td_pair {
  crl_tensor *dst, *src; /* borrowed */
  char *key;
} crl__td_pair;
CRL_INTERNAL int crl__td_pairs(const char *op, crl_td *dst, crl_td *src,
                               crl__td_pair **pairs, int *n);
CRL_INTERNAL void crl__td_pairs_free(crl__td_pair *pairs, int n);
/* Error unless entry `key` can be written in place (CPU, not requiring grad
 * in grad mode, writable storage). Bumps nothing. */
CRL_INTERNAL int crl__td_check_writable(const char *op, const char *key,
                                        const crl_tensor *t);
/* dst's leaves seen through view(leaf, ctx) (NULL: the leaves) = src's
 * leaves, broadcast: everything is validated (keys, writability, shapes)
 * before the first write. */
CRL_INTERNAL int crl__td_assign(const char *op, crl_td *dst, crl_td *src,
                                crl_td_apply_fn view, void *ctx);

#endif
