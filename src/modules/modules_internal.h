/* Internals shared by the files of src/modules (tensordict.nn and
 * torchrl.modules). Not installed.
 *
 * A crl_tdmodule (struct below) owns:
 *   - its in/out keys (malloc'ed copies) and, per in_key, whether the key
 *     is optional (read when present: recurrent states, "is_init");
 *   - params: a TensorDict (batch []) holding the parameters of the
 *     networks it wraps. It is never scope-owned. A TensorDictModule's is
 *     the network's own parameter TensorDict (the same object), a
 *     sequence's nests its parts' TensorDicts (the same objects) under
 *     "0", "1", ..., so parameter tensors are shared, never copied;
 *   - children: the modules it wraps (retained), for seeding, sequences and
 *     wrappers;
 *   - rng: its generator (sampling, exploration noise).
 *
 * Forward functions run inside a scope opened by crl_tdmodule_forward:
 * they create tensors with crl's ops and crl_td_set them (the TensorDict
 * retains them); whatever they leave in the scope is freed when it ends.
 * They take parameters from the `params` argument so functional calls
 * work, and must validate before writing (a failure leaves td unchanged
 * where possible). */
#ifndef CRL_MODULES_INTERNAL_H
#define CRL_MODULES_INTERNAL_H

#include "../core/internal.h"
#include "crl/modules.h"

/* At most this many in_keys / out_keys per module. */
#define CRL_TDM_MAX_KEYS 32

struct crl_tdmodule {
  int refcount; /* atomic */
  const crl_tdmodule_ops *ops;
  void *impl;
  int nin, nout;
  char **in_keys, **out_keys;
  bool *in_optional; /* nin flags */
  crl_td *params;    /* owned (one reference), never scope-owned */
  crl_rng rng;
  int nchildren;
  crl_tdmodule **children; /* retained */
};

/* A new module (scope-adopted). Keys are copied; in_optional may be NULL
 * (all required); params is retained (NULL: a new empty TensorDict);
 * children are retained. On failure impl is freed through ops->free and
 * NULL is returned with the error set (message starting with `op`). */
CRL_INTERNAL crl_tdmodule *
crl__tdm_new(const char *op, const crl_tdmodule_ops *ops, void *impl, int nin,
             const char *const *in_keys, const bool *in_optional, int nout,
             const char *const *out_keys, crl_td *params, int nchildren,
             crl_tdmodule *const *children);
/* Error-path disposal and scope hand-over, as for tensors. */
CRL_INTERNAL void crl__tdm_discard(crl_tdmodule *m);
CRL_INTERNAL crl_tdmodule *crl__tdm_scope_end_keep(crl_tdmodule *m);
/* m as a new reference (retained, scope-adopted). */
CRL_INTERNAL crl_tdmodule *crl__tdm_retain_scoped(crl_tdmodule *m);
/* A TensorDict (batch []) owned by the caller, never by a scope. */
CRL_INTERNAL crl_td *crl__tdm_owned_td(void);

/* Tensor at in_key `key` of td, or NULL with CRL_EKEY "<name>: in_key
 * '<key>' not found (keys present: ...)". BORROWED. */
CRL_INTERNAL crl_tensor *crl__tdm_in(const crl_tdmodule *m, crl_td *td,
                                     const char *key);
/* td[key] = t (retained). Fast path for top-level keys that already hold a
 * tensor (no key parsing); otherwise crl_td_set. */
CRL_INTERNAL int crl__tdm_set(crl_td *td, const char *key, crl_tensor *t);
/* 0 if t's leading dims are td's batch size, else CRL_ESHAPE naming the
 * module, the key and both shapes. */
CRL_INTERNAL int crl__tdm_check_out(const crl_tdmodule *m, crl_td *td,
                                    const char *key, const crl_tensor *t);

/* Projection of outputs into a leaf action spec (TorchRL's safe modules),
 * prepared once at construction. */
typedef struct crl__proj {
  crl_spec *spec; /* retained, or NULL: no projection */
  crl_dtype dtype;
  bool float_box;        /* bounded float spec */
  bool unbounded;        /* unbounded float spec */
  bool scalar;           /* float_box with the same bounds everywhere */
  double lo, hi;         /* those bounds (element 0 when not scalar) */
  double max_lo, min_hi; /* the tightest bounds over the elements */
} crl__proj;
/* Prepare (spec may be NULL); CRL_EINVAL for a composite spec. */
CRL_INTERNAL int crl__proj_init(crl__proj *p, crl_spec *s);
CRL_INTERNAL void crl__proj_free(crl__proj *p);
/* t moved into the spec as a new reference: bounded float values clamped
 * with crl_clamp / crl_clamp_tensor (differentiable: gradient 1 inside the
 * bounds), unbounded float specs pass t through (cast to the spec's dtype
 * when it differs), other kinds through crl_spec_project (no gradient). No
 * spec: t itself (a new reference). */
CRL_INTERNAL crl_tensor *crl__proj_apply(const crl__proj *p, crl_tensor *t);

/* ---- TensorDictModule (tdmodule.c) --------------------------------------- */
CRL_INTERNAL int crl__td_module_forward(crl_tdmodule *m, crl_td *td,
                                        crl_td *params);
CRL_INTERNAL void crl__td_module_free(crl_tdmodule *m);
/* A TensorDictModule with ops (a name of its own, forward/free above) and
 * an optional spec projecting its first output (retained; may be NULL). */
CRL_INTERNAL crl_tdmodule *
crl__td_module_make(const char *op, const crl_tdmodule_ops *ops,
                    crl_module *net, int nin, const char *const *in_keys,
                    int nout, const char *const *out_keys, crl_spec *spec);
/* The wrapped network of a TensorDictModule (or NULL). BORROWED. */
CRL_INTERNAL crl_module *crl__td_module_net(const crl_tdmodule *m);

/* The spec a module projects its action into: an Actor's or a
 * probabilistic module's, looking into the last part of sequences and
 * through exploration wrappers; NULL if none. BORROWED. */
CRL_INTERNAL crl_spec *crl__td_module_spec(const crl_tdmodule *m);

/* ---- sequences (sequential.c) -------------------------------------------- */
CRL_INTERNAL int crl__td_sequential_forward(crl_tdmodule *m, crl_td *td,
                                            crl_td *params);
CRL_INTERNAL void crl__td_sequential_free(crl_tdmodule *m);
/* A sequence of n modules with ops (forward/free above; the name is the
 * class: "TensorDictSequential", "ActorValueOperator", ...). */
CRL_INTERNAL crl_tdmodule *
crl__td_sequential_make(const char *op, const crl_tdmodule_ops *ops, int n,
                        crl_tdmodule *const *modules);
static inline bool crl__tdm_is_sequence(const crl_tdmodule *m) {
  return m && m->ops->forward == crl__td_sequential_forward;
}
/* The parameter TensorDict of part i when the sequence runs with params
 * (its own: no lookup). BORROWED, or NULL with CRL_EKEY. */
CRL_INTERNAL crl_td *crl__td_sequential_child_params(crl_tdmodule *m,
                                                     crl_td *params, int i);

/* ---- probabilistic (probabilistic.c) ------------------------------------- */
CRL_INTERNAL bool crl__tdm_is_prob_module(const crl_tdmodule *m);
/* Its action spec (or NULL). BORROWED. */
CRL_INTERNAL crl_spec *crl__prob_module_spec(const crl_tdmodule *m);

/* ---- exploration (exploration.c) ----------------------------------------- */
/* The wrapped policy of an exploration wrapper, or NULL. BORROWED. */
CRL_INTERNAL crl_tdmodule *crl__exploration_inner(const crl_tdmodule *m);

#endif
