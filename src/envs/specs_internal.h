/* Tensor spec internals shared by specs.c (leaf specs) and
 * specs_composite.c (composite specs). Not installed. */
#ifndef CRL_SPECS_INTERNAL_H
#define CRL_SPECS_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "../core/internal.h"
#include "crl/specs.h"

typedef struct spec_entry {
  char *key;      /* one component, no '/' */
  crl_spec *spec; /* leaf or nested composite (owned reference) */
} spec_entry;

struct crl_spec {
  int refcount; /* atomic */
  crl_spec_kind kind;
  crl_dtype dtype;
  crl_device device;
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  int64_t numel;
  /* one-hot, discrete: categories; binary: last dim; multi: sum(nvec) */
  int64_t n;
  /* multi-one-hot groups */
  int k;
  int64_t *nvec;
  /* bounded: contiguous tensors of the spec's shape and dtype (owned, not
   * scope-held); `scalar` when every element has the same bounds lo/hi */
  crl_tensor *low, *high;
  bool scalar;
  double lo, hi;
  /* composite */
  int nent, cap;
  spec_entry *e;
};

/* A new spec (refcount 1, scope-adopted) with kind, dtype and shape; no
 * checks. */
CRL_INTERNAL crl_spec *crl__spec_new_raw(crl_spec_kind kind, crl_dtype dt,
                                         int ndim, const int64_t *shape);
/* Error-path disposal (as crl__discard for tensors). */
CRL_INTERNAL void crl__spec_discard(crl_spec *s);
/* Hand `keep` to the enclosing scope (as crl_scope_end_keep). */
CRL_INTERNAL crl_spec *crl__spec_scope_end_keep(crl_spec *keep);
/* Validate leading batch dims (bnd, batch) for a spec of ndim dims. */
CRL_INTERNAL int crl__spec_check_batch(const char *op, int bnd,
                                       const int64_t *batch, int ndim);
/* Is t in leaf spec s? 0, or a CRL_E* code with the reason written into
 * why (may be NULL: no message built). */
CRL_INTERNAL int crl__spec_explain(const crl_spec *s, const crl_tensor *t,
                                   char *why, size_t size);

/* Growing string for printing (a NULL buf counts the length only). */
typedef struct crl__sbuf {
  char *buf;
  size_t size, len;
} crl__sbuf;
CRL_INTERNAL void crl__sb_printf(crl__sbuf *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One-line repr of a leaf spec. */
CRL_INTERNAL void crl__spec_leaf_repr(crl__sbuf *sb, const crl_spec *s);

/* Composite parts (specs_composite.c). */
CRL_INTERNAL void crl__spec_comp_free(crl_spec *s);
CRL_INTERNAL bool crl__spec_comp_equal(const crl_spec *a, const crl_spec *b);
CRL_INTERNAL crl_spec *crl__spec_comp_clone(const crl_spec *s);
CRL_INTERNAL crl_spec *crl__spec_comp_expand(const crl_spec *s, int bnd,
                                             const int64_t *batch);
CRL_INTERNAL void crl__spec_comp_repr(crl__sbuf *sb, const crl_spec *s,
                                      int indent);

#endif
