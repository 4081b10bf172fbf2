/* Env internals shared by the files of src/envs. Not installed. */
#ifndef CRL_ENV_INTERNAL_H
#define CRL_ENV_INTERNAL_H

#include "../core/internal.h"
#include "../td/td_internal.h"
#include "crl/env.h"

struct crl_env {
  int refcount; /* atomic */
  const crl_env_ops *ops;
  void *impl;
  int bnd;
  int64_t batch[CRL_MAX_DIMS];
  int64_t numel;
  crl_spec *obs, *act, *rew, *done;
  crl_rng rng;
  bool validate;
  int render_h, render_w; /* 0: no rendering */
  /* the last TensorDict stepped and its "next", retained, with their
   * structure versions: a step on the same unchanged td skips the spec
   * walk that (re)creates missing entries */
  crl_td *cache_td, *cache_next;
  unsigned cache_tdv, cache_nextv;
};

CRL_INTERNAL void crl__env_discard(crl_env *env);

#endif
