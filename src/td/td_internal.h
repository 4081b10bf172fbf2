/* TensorDict internals shared by the files of src/td. Not installed. */
#ifndef CRL_TD_INTERNAL_H
#define CRL_TD_INTERNAL_H

#include "../core/internal.h"
#include "crl/td.h"

typedef struct td_entry {
  char *key;       /* one component, no '/' */
  crl_tensor *t;   /* a tensor entry, or */
  struct crl_td *sub; /* a nested TensorDict */
} td_entry;

struct crl_td {
  int refcount; /* atomic */
  int bnd;
  int64_t batch[CRL_MAX_DIMS];
  crl_device device;
  int n, cap;
  td_entry *e;
};

/* A new empty TensorDict (scope-adopted) without shape checks. */
CRL_INTERNAL crl_td *crl__td_new_raw(int bnd, const int64_t *batch,
                                     crl_device dev);
/* Append an entry (key[0..len), retaining t or sub). */
CRL_INTERNAL int crl__td_append(crl_td *td, const char *key, size_t len,
                                crl_tensor *t, crl_td *sub);
CRL_INTERNAL int crl__td_find_local(const crl_td *td, const char *key,
                                    size_t len);
CRL_INTERNAL int crl__td_check_key(const char *op, const char *key);
/* Nested TensorDict at key or NULL, no error set. */
CRL_INTERNAL crl_td *crl__td_get_sub(const crl_td *td, const char *key);
/* Error-path disposal and scope hand-over, as for tensors. */
CRL_INTERNAL void crl__td_discard(crl_td *td);
CRL_INTERNAL crl_td *crl__td_scope_end_keep(crl_td *keep);

#endif
