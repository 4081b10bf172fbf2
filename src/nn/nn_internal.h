/* Internals shared by the files of src/nn. Not installed.
 *
 * A module (struct crl_module) owns:
 *   - params:  a TensorDict (batch []) of float32 leaves with requires_grad,
 *   - buffers: a TensorDict (batch []) of tensors that are not trained,
 *   - children: sub-modules (retained), each with a key prefix ("0", "1",
 *     "features", ...). A child's params / buffers TensorDict is the SAME
 *     object as the parent's nested entry at that prefix (shared, not
 *     copied), so "0/weight" in the parent is the child's "weight", and
 *     parameters a lazy child creates later appear in the parent too.
 *
 * Lifetime rules for implementers:
 *   - Parameters/buffers are never scope-owned: create them with
 *     crl__module_add_param / crl__module_add_buffer, which work inside or
 *     outside scopes (the TensorDict holds the only reference).
 *   - crl_module_new returns a new reference (scope-adopted like a tensor).
 *     A constructor that fails after crl_module_new disposes of the module
 *     with crl__module_discard(m) (never crl_module_release: a scope may own
 *     it).
 *   - Forward functions take their tensors from the `params` argument (never
 *     from m->params directly), so functional calls work; use
 *     crl__module_param(m, params, key) / crl__module_child_params(m, params,
 *     i) and run children with crl_module_forward(child, child_params, ...).
 *     Buffers (noise, running statistics) are read from m->buffers.
 *   - Initialise parameters in place with crl_init_*_ (they work on leaves
 *     that require grad) or crl__param_uniform_ below.
 *
 * Typical constructor:
 *
 *   crl_module *m = crl_module_new(&my_ops, impl, 1, 1);
 *   if (!m) return NULL;               // impl was freed through my_ops.free
 *   crl_tensor *w = crl__module_add_param(m, "weight", CRL_SHAPE(out, in));
 *   if (!w || crl_init_kaiming_uniform_(w, -1, g)) {
 *     crl__module_discard(m);
 *     return NULL;
 *   }
 *   crl_module *lin = crl_linear_new(in, out, true, g);
 *   int rc = lin ? crl__module_add_child(m, "head", lin) : -1;
 *   crl__module_drop(lin);             // m holds its own reference now
 *   if (rc < 0) { crl__module_discard(m); return NULL; }
 *   return m;
 */
#ifndef CRL_NN_INTERNAL_H
#define CRL_NN_INTERNAL_H

#include "../core/internal.h"
#include "crl/nn.h"

typedef struct crl__child {
  crl_module *m;       /* retained */
  char *prefix;        /* malloc'ed key prefix, no '/' inside */
  bool nested_params;  /* child's params are nested under prefix */
  bool nested_buffers; /* child's buffers are nested under prefix */
} crl__child;

struct crl_module {
  int refcount; /* atomic */
  const crl_module_ops *ops;
  void *impl;
  int nin, nout;
  crl_td *params;  /* owned (one reference), never scope-owned */
  crl_td *buffers; /* owned (one reference), never scope-owned */
  int nchildren, cap_children;
  crl__child *children;
  /* Set by lazy modules whose parameters are created at the first call:
   * crl__module_add_child then nests their (still empty) params TensorDict
   * so the parent sees them once they exist. */
  bool lazy;
};

/* Dispose of a module a constructor created but will not return (error
 * paths), as crl__discard does for tensors. */
CRL_INTERNAL void crl__module_discard(crl_module *m);
/* Hand a module built inside crl_scope_begin() to the enclosing scope:
 * `return crl__module_scope_end_keep(m);`. */
CRL_INTERNAL crl_module *crl__module_scope_end_keep(crl_module *m);

/* A new float32 parameter (zero-filled, requires_grad) stored at `key` of
 * m->params (nested keys allowed, e.g. "0/weight"). Returns it BORROWED
 * (owned by the TensorDict), or NULL with the error set. Works inside or
 * outside scopes; the parameter is never scope-owned. */
CRL_INTERNAL crl_tensor *crl__module_add_param(crl_module *m, const char *key,
                                               int ndim, const int64_t *shape);
/* The same for a buffer (dtype dt, zero-filled, no grad) in m->buffers. */
CRL_INTERNAL crl_tensor *crl__module_add_buffer(crl_module *m, const char *key,
                                                crl_dtype dt, int ndim,
                                                const int64_t *shape);
/* Append sub-module `child` (retained) under key prefix `prefix` (one
 * component, no '/'). Its params (and buffers) TensorDict is shared into
 * m's at "prefix/..." when it has entries or is lazy. Returns the child's
 * index, or a negative code (prefix already used: CRL_EKEY). */
CRL_INTERNAL int crl__module_add_child(crl_module *m, const char *prefix,
                                       crl_module *child);
/* BORROWED child i (0 <= i < m->nchildren). */
static inline crl_module *crl__module_child(const crl_module *m, int i) {
  return m->children[i].m;
}
/* Release the caller's reference to a module after handing it to
 * crl__module_add_child, whether or not a scope owns it: the same as
 * crl__module_discard (frees now unless an outer scope owns it; the parent
 * keeps its own reference). */
#define crl__module_drop(m) crl__module_discard(m)

/* The parameter TensorDict to pass to child i when m runs with `params`:
 * the child's own when params is m's own (no lookup), else the nested
 * TensorDict at the child's prefix. A child without parameters gets its
 * own (empty) TensorDict when params lacks the prefix. BORROWED, or NULL
 * with CRL_EKEY naming the missing "prefix/..." entries (message starts
 * with m's name). */
CRL_INTERNAL crl_td *crl__module_child_params(crl_module *m, crl_td *params,
                                              int i);
/* Child i of m run on x (one input, one output) with its parameters from
 * params: a new reference, or NULL. */
CRL_INTERNAL crl_tensor *crl__module_run_child(crl_module *m, crl_td *params,
                                               int i, crl_tensor *x);
/* Tensor at `key` of params, or NULL with CRL_EKEY whose message starts
 * with m's name and names the key. BORROWED. */
CRL_INTERNAL crl_tensor *crl__module_param(const crl_module *m, crl_td *params,
                                           const char *key);

/* Fill t with uniform(-bound, bound) from g, in place and without autograd
 * (t may be a leaf that requires grad). */
CRL_INTERNAL int crl__param_uniform_(crl_tensor *t, double bound, crl_rng *g);
/* fan_in / fan_out as torch computes them (dim 1 / dim 0 sizes times the
 * receptive field = product of dims 2..); CRL_EINVAL for < 2 dims. */
CRL_INTERNAL int crl__fan_in_out(const char *op, const crl_tensor *t,
                                 int64_t *fan_in, int64_t *fan_out);

/* The activation of a module made by crl_activation_module_new, or -1
 * (activation.c). */
CRL_INTERNAL int crl__activation_of(const crl_module *m);

/* ---- layer helpers (layers.c) ---------------------------------------------
 * Linear's default initialisation on existing tensors: weight Kaiming
 * uniform (a = sqrt(5), i.e. bound 1/sqrt(fan_in)), bias uniform
 * (-1/sqrt(fan_in), 1/sqrt(fan_in)). bias may be NULL. */
CRL_INTERNAL int crl__linear_reset_parameters(crl_tensor *w, crl_tensor *b,
                                              crl_rng *g);

/* Forward of a sequence: children run in order, one tensor each (the
 * forward of crl_sequential_new's modules; reusable by sequence-like
 * modules whose children are all 1 -> 1). */
CRL_INTERNAL int crl__sequential_forward(crl_module *m, crl_td *params, int nin,
                                         crl_tensor *const *in, int nout,
                                         crl_tensor **out);

/* Flatten all but the last `keep` dims of x into one leading dim: x
 * [b..., k...] -> [prod(b), k...]; *nlead/lead receive the leading dims
 * (for restoring them with crl__unflatten_lead). New reference (a view when
 * possible). keep must be <= x->ndim; nlead 0 gives a leading dim of 1. */
CRL_INTERNAL crl_tensor *crl__flatten_lead(crl_tensor *x, int keep, int *nlead,
                                           int64_t *lead);
/* y [N, rest...] -> [lead..., rest...] (N = prod(lead)). New reference. */
CRL_INTERNAL crl_tensor *crl__unflatten_lead(crl_tensor *y, int nlead,
                                             const int64_t *lead);

#endif
