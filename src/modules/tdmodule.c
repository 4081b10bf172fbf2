/* The generic TensorDict module (tensordict.nn.TensorDictModuleBase):
 * lifetime, keys, parameters, forward, the policy adapter, generators; the
 * exploration mode stack; TensorDictModule and the C-function module. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../td/td_internal.h"
#include "modules_internal.h"

/* ---- exploration mode (thread-local stack) ------------------------------- */

#define MODE_STACK 64
static _Thread_local crl_exploration_mode tl_modes[MODE_STACK];
static _Thread_local int tl_mode_depth;

crl_exploration_mode crl_exploration_mode_get(void) {
  int d = tl_mode_depth < MODE_STACK ? tl_mode_depth : MODE_STACK;
  return d ? tl_modes[d - 1] : CRL_EXPLORATION_RANDOM;
}

void crl_exploration_begin(crl_exploration_mode mode) {
  if (tl_mode_depth < MODE_STACK) tl_modes[tl_mode_depth] = mode;
  tl_mode_depth++;
}

void crl_exploration_end(void) {
  if (tl_mode_depth > 0) tl_mode_depth--;
}

/* ---- lifetime ------------------------------------------------------------ */

static void release_tdm(void *m) { crl_tdmodule_release(m); }

static _Atomic uint64_t seed_counter;

crl_td *crl__tdm_owned_td(void) {
  crl_scope_begin();
  crl_td *td = crl_td_retain(crl_td_new(0, NULL));
  crl_scope_end();
  return td;
}

static char *dup_key(const char *k) {
  size_t n = strlen(k) + 1;
  char *s = malloc(n);
  if (s) memcpy(s, k, n);
  return s;
}

static void free_keys(char **k, int n) {
  if (!k) return;
  for (int i = 0; i < n; i++)
    free(k[i]);
  free(k);
}

static int check_keys(const char *op, const char *what, int n,
                      const char *const *keys) {
  if (n < 0 || n > CRL_TDM_MAX_KEYS)
    return crl__err(CRL_EINVAL, "%s: %d %s given; 0 to %d are allowed", op, n,
                    what, CRL_TDM_MAX_KEYS);
  if (n && !keys)
    return crl__err(CRL_EINVAL, "%s: %d %s announced but the list is NULL", op,
                    n, what);
  for (int i = 0; i < n; i++) {
    int rc = crl__td_check_key(op, keys[i]);
    if (rc) return crl__err(rc, "%s: %s %d: %s", op, what, i, crl_last_error());
  }
  return 0;
}

static void free_shell(crl_tdmodule *m) {
  free_keys(m->in_keys, m->nin);
  free_keys(m->out_keys, m->nout);
  free(m->in_optional);
  for (int i = 0; i < m->nchildren; i++)
    crl_tdmodule_release(m->children[i]);
  free(m->children);
  crl_td_release(m->params);
  free(m);
}

crl_tdmodule *crl__tdm_new(const char *op, const crl_tdmodule_ops *ops,
                           void *impl, int nin, const char *const *in_keys,
                           const bool *in_optional, int nout,
                           const char *const *out_keys, crl_td *params,
                           int nchildren, crl_tdmodule *const *children) {
  int rc = 0;
  if (!ops || !ops->forward)
    rc = crl__err(CRL_EINVAL, "%s: ops with a forward function are required",
                  op);
  if (!rc) rc = check_keys(op, "in_keys", nin, in_keys);
  if (!rc) rc = check_keys(op, "out_keys", nout, out_keys);
  for (int i = 0; !rc && i < nout; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(out_keys[i], out_keys[j]) == 0) {
        rc = crl__err(CRL_EKEY, "%s: out_key '%s' is given twice", op,
                      out_keys[i]);
        break;
      }
  for (int i = 0; !rc && i < nchildren; i++)
    if (!children[i]) rc = crl__err(CRL_EINVAL, "%s: module %d is NULL", op, i);
  if (!rc && params && crl_td_batch_ndim(params) != 0)
    rc = crl__err(CRL_ESHAPE,
                  "%s: the parameter TensorDict must have batch "
                  "size [], not %d dims",
                  op, crl_td_batch_ndim(params));
  crl_tdmodule *m = NULL;
  if (!rc) {
    m = calloc(1, sizeof *m);
    if (!m) rc = crl__err(CRL_ENOMEM, "%s: out of memory", op);
  }
  if (rc) {
    if (ops && ops->free) {
      crl_tdmodule tmp = {.ops = ops, .impl = impl};
      ops->free(&tmp);
    }
    return NULL;
  }
  m->refcount = 1;
  m->ops = ops;
  m->impl = impl;
  m->in_keys = calloc((size_t)nin + 1, sizeof *m->in_keys);
  m->out_keys = calloc((size_t)nout + 1, sizeof *m->out_keys);
  m->in_optional = calloc((size_t)nin + 1, sizeof *m->in_optional);
  m->children = calloc((size_t)nchildren + 1, sizeof *m->children);
  bool ok = m->in_keys && m->out_keys && m->in_optional && m->children;
  for (int i = 0; ok && i < nin; i++) {
    ok = (m->in_keys[i] = dup_key(in_keys[i])) != NULL;
    if (ok) m->nin = i + 1;
    if (ok && in_optional) m->in_optional[i] = in_optional[i];
  }
  for (int i = 0; ok && i < nout; i++) {
    ok = (m->out_keys[i] = dup_key(out_keys[i])) != NULL;
    if (ok) m->nout = i + 1;
  }
  m->params =
      ok ? (params ? crl_td_retain(params) : crl__tdm_owned_td()) : NULL;
  ok = ok && m->params;
  for (int i = 0; ok && i < nchildren; i++)
    m->children[m->nchildren++] = crl_tdmodule_retain(children[i]);
  if (!ok) {
    if (ops->free) ops->free(m);
    free_shell(m);
    return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  }
  crl_rng_seed(&m->rng, 0x6d6f64756c65ull + atomic_fetch_add(&seed_counter, 1));
  crl__scope_adopt_obj(m, release_tdm);
  return m;
}

crl_tdmodule *crl_tdmodule_new(const crl_tdmodule_ops *ops, void *impl, int nin,
                               const char *const *in_keys, int nout,
                               const char *const *out_keys, crl_td *params) {
  return crl__tdm_new("tdmodule_new", ops, impl, nin, in_keys, NULL, nout,
                      out_keys, params, 0, NULL);
}

void crl__tdm_discard(crl_tdmodule *m) { crl__discard_obj(m, release_tdm); }

crl_tdmodule *crl__tdm_scope_end_keep(crl_tdmodule *m) {
  crl_tdmodule_retain(m);
  crl_scope_end();
  crl__scope_adopt_obj(m, release_tdm);
  return m;
}

crl_tdmodule *crl__tdm_retain_scoped(crl_tdmodule *m) {
  crl_tdmodule_retain(m);
  crl__scope_adopt_obj(m, release_tdm);
  return m;
}

void *crl_tdmodule_impl(const crl_tdmodule *m) { return m ? m->impl : NULL; }

crl_tdmodule *crl_tdmodule_retain(crl_tdmodule *m) {
  if (m)
    atomic_fetch_add_explicit((_Atomic int *)&m->refcount, 1,
                              memory_order_relaxed);
  return m;
}

void crl_tdmodule_release(crl_tdmodule *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&m->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  if (m->ops->free) m->ops->free(m);
  free_shell(m);
}

/* ---- inspection ---------------------------------------------------------- */

const char *crl_tdmodule_name(const crl_tdmodule *m) {
  return m && m->ops->name ? m->ops->name : "TensorDictModule";
}
int crl_tdmodule_num_in_keys(const crl_tdmodule *m) { return m ? m->nin : 0; }
int crl_tdmodule_num_out_keys(const crl_tdmodule *m) { return m ? m->nout : 0; }
const char *crl_tdmodule_in_key(const crl_tdmodule *m, int i) {
  return m && i >= 0 && i < m->nin ? m->in_keys[i] : NULL;
}
const char *crl_tdmodule_out_key(const crl_tdmodule *m, int i) {
  return m && i >= 0 && i < m->nout ? m->out_keys[i] : NULL;
}
crl_td *crl_tdmodule_params(const crl_tdmodule *m) {
  return m ? m->params : NULL;
}

crl_rng *crl_tdmodule_rng(crl_tdmodule *m) { return m ? &m->rng : NULL; }

static void seed_tree(crl_tdmodule *m, crl_rng g, int depth) {
  m->rng = g;
  if (depth > 64) return; /* sequences cannot nest cycles; be safe */
  for (int i = 0; i < m->nchildren; i++)
    seed_tree(m->children[i], crl_rng_split(&m->rng, (uint64_t)i + 1),
              depth + 1);
}

void crl_tdmodule_seed(crl_tdmodule *m, uint64_t seed) {
  if (!m) return;
  crl_rng g;
  crl_rng_seed(&g, seed);
  seed_tree(m, g, 0);
}

/* ---- forward ------------------------------------------------------------- */

int crl_tdmodule_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  if (!m || !td)
    return crl__err(CRL_EINVAL,
                    "tdmodule_forward: a module and a TensorDict are "
                    "required");
  crl_scope_begin();
  int rc = m->ops->forward(m, td, params ? params : m->params);
  crl_scope_end();
  return rc;
}

int crl_tdmodule_policy(void *module, crl_td *td) {
  crl_no_grad_begin();
  int rc = crl_tdmodule_forward(module, td, NULL);
  crl_no_grad_end();
  return rc;
}

crl_tensor *crl__tdm_in(const crl_tdmodule *m, crl_td *td, const char *key) {
  /* top-level keys compared directly (entry keys never hold '/') */
  for (int i = 0; i < td->n; i++) {
    const char *k = td->e[i].key;
    if (k[0] == key[0] && td->e[i].t && strcmp(k, key) == 0) return td->e[i].t;
  }
  crl_tensor *t = crl_td_find(td, key);
  if (CRL_LIKELY(t != NULL)) return t;
  char keys[600];
  crl__td_keys_str(td, keys, sizeof keys);
  return CRL_ERR_NULL(CRL_EKEY, "%s: in_key '%s' not found (keys present: %s)",
                      crl_tdmodule_name(m), key, keys);
}

int crl__tdm_check_out(const crl_tdmodule *m, crl_td *td, const char *key,
                       const crl_tensor *t) {
  bool ok = t->ndim >= td->bnd;
  for (int i = 0; ok && i < td->bnd; i++)
    ok = t->shape[i] == td->batch[i];
  if (CRL_LIKELY(ok)) return 0;
  char b1[160], b2[160];
  return crl__err(CRL_ESHAPE,
                  "%s: output '%s' has shape %s whose leading dims are not "
                  "the TensorDict's batch size %s",
                  crl_tdmodule_name(m), key, CRL_SHAPE_STR(t, b1),
                  crl_shape_str(td->bnd, td->batch, b2, sizeof b2));
}

int crl__tdm_set(crl_td *td, const char *key, crl_tensor *t) {
  /* top-level key already holding a tensor: swap it in (what crl_td_set
   * does, without re-parsing the key) */
  for (int i = 0; i < td->n; i++) {
    const char *k = td->e[i].key;
    if (k[0] != key[0] || strcmp(k, key) != 0) continue;
    if (!td->e[i].t || t->device.type != td->device.type || t->ndim < td->bnd)
      break;
    for (int d = 0; d < td->bnd; d++)
      if (t->shape[d] != td->batch[d]) return crl_td_set(td, key, t);
    crl_tensor_retain(t);
    crl_tensor_release(td->e[i].t);
    td->e[i].t = t;
    td->version++;
    return 0;
  }
  return crl_td_set(td, key, t);
}

/* ---- spec projection ----------------------------------------------------- */

int crl__proj_init(crl__proj *p, crl_spec *s) {
  memset(p, 0, sizeof *p);
  if (!s) return 0;
  crl_spec_kind k = crl_spec_kind_of(s);
  if (k == CRL_SPEC_COMPOSITE)
    return crl__err(CRL_EINVAL, "a leaf spec is required to project actions, "
                                "not a CompositeSpec");
  p->spec = crl_spec_retain(s);
  p->dtype = crl_spec_dtype(s);
  p->float_box = k == CRL_SPEC_BOUNDED && crl_dtype_is_float(p->dtype);
  p->unbounded = k == CRL_SPEC_UNBOUNDED && crl_dtype_is_float(p->dtype);
  if (p->float_box) {
    crl_tensor *lo = crl_spec_low(s), *hi = crl_spec_high(s);
    p->lo = crl_tensor_get_flat(lo, 0);
    p->hi = crl_tensor_get_flat(hi, 0);
    p->max_lo = p->lo;
    p->min_hi = p->hi;
    p->scalar = true;
    for (int64_t i = 1; i < lo->numel; i++) {
      double l = crl_tensor_get_flat(lo, i), h = crl_tensor_get_flat(hi, i);
      if (l != p->lo || h != p->hi) p->scalar = false;
      if (l > p->max_lo) p->max_lo = l;
      if (h < p->min_hi) p->min_hi = h;
    }
  }
  return 0;
}

void crl__proj_free(crl__proj *p) {
  crl_spec_release(p->spec);
  p->spec = NULL;
}

static crl_tensor *retain_scoped(crl_tensor *t) {
  crl_tensor_retain(t);
  crl__scope_adopt(t);
  return t;
}

crl_tensor *crl__proj_apply(const crl__proj *p, crl_tensor *t) {
  const crl_spec *s = p->spec;
  if (!s) return retain_scoped(t);
  if ((p->float_box || p->unbounded) && crl_dtype_is_float(t->dtype)) {
    int sn = crl_spec_ndim(s);
    const int64_t *ss = crl_spec_shape(s);
    if (t->ndim < sn ||
        memcmp(t->shape + t->ndim - sn, ss, sizeof(int64_t) * (size_t)sn)) {
      char b1[160], b2[160];
      return CRL_ERR_NULL(CRL_ESHAPE,
                          "spec_project: shape %s does not end with the "
                          "spec's shape %s",
                          CRL_SHAPE_STR(t, b1),
                          crl_shape_str(sn, ss, b2, sizeof b2));
    }
    crl_tensor *r;
    if (p->unbounded)
      r = retain_scoped(t);
    else if (p->scalar)
      r = crl_clamp(t, p->lo, p->hi);
    else
      r = crl_clamp_tensor(t, crl_spec_low(s), crl_spec_high(s));
    if (r && r->dtype != p->dtype) {
      crl_tensor *c = crl_cast(r, p->dtype);
      crl__discard(r);
      r = c;
    }
    return r;
  }
  return crl_spec_project(s, t);
}

/* ---- TensorDictModule ---------------------------------------------------- */

typedef struct {
  crl_module *net; /* retained */
  crl__proj proj;  /* projects out[0] when a spec is given */
} tdm_impl;

void crl__td_module_free(crl_tdmodule *m) {
  tdm_impl *p = m->impl;
  if (!p) return;
  crl_module_release(p->net);
  crl__proj_free(&p->proj);
  free(p);
}

crl_module *crl__td_module_net(const crl_tdmodule *m) {
  return m && m->ops->forward == crl__td_module_forward
             ? ((tdm_impl *)m->impl)->net
             : NULL;
}

crl_spec *crl__td_module_spec(const crl_tdmodule *m) {
  for (int depth = 0; m && depth < 64; depth++) {
    if (m->ops->forward == crl__td_module_forward)
      return ((tdm_impl *)m->impl)->proj.spec;
    if (crl__tdm_is_prob_module(m)) return crl__prob_module_spec(m);
    if (crl__exploration_inner(m)) {
      m = crl__exploration_inner(m);
      continue;
    }
    if (!crl__tdm_is_sequence(m) || m->nchildren == 0) return NULL;
    m = m->children[m->nchildren - 1];
  }
  return NULL;
}

int crl__td_module_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  tdm_impl *p = m->impl;
  crl_tensor *in[CRL_TDM_MAX_KEYS], *out[CRL_TDM_MAX_KEYS];
  for (int i = 0; i < m->nin; i++)
    if (!(in[i] = crl__tdm_in(m, td, m->in_keys[i]))) return CRL_EKEY;
  int rc = crl_module_forward(p->net, params, m->nin, in, m->nout, out);
  if (rc) return rc;
  if (p->proj.spec && !(out[0] = crl__proj_apply(&p->proj, out[0])))
    return crl_last_error_code();
  for (int i = 0; i < m->nout; i++)
    if ((rc = crl__tdm_check_out(m, td, m->out_keys[i], out[i]))) return rc;
  for (int i = 0; i < m->nout; i++)
    if ((rc = crl__tdm_set(td, m->out_keys[i], out[i]))) return rc;
  return 0;
}

static const crl_tdmodule_ops td_module_ops = {
    "TensorDictModule", crl__td_module_forward, crl__td_module_free};

crl_tdmodule *crl__td_module_make(const char *op, const crl_tdmodule_ops *ops,
                                  crl_module *net, int nin,
                                  const char *const *in_keys, int nout,
                                  const char *const *out_keys, crl_spec *spec) {
  if (!net) return CRL_ERR_NULL(CRL_EINVAL, "%s: the network is NULL", op);
  if (nin != crl_module_num_inputs(net) || nout != crl_module_num_outputs(net))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: %s takes %d input(s) and gives %d output(s), but "
                        "%d in_key(s) and %d out_key(s) were given",
                        op, crl_module_name(net), crl_module_num_inputs(net),
                        crl_module_num_outputs(net), nin, nout);
  if (spec && nout < 1)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: a spec needs an output", op);
  tdm_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  if (crl__proj_init(&p->proj, spec)) {
    crl__err(crl_last_error_code(), "%s: %s", op, crl_last_error());
    free(p);
    return NULL;
  }
  p->net = crl_module_retain(net);
  return crl__tdm_new(op, ops, p, nin, in_keys, NULL, nout, out_keys,
                      crl_module_params(net), 0, NULL);
}

crl_tdmodule *crl_td_module_new(crl_module *net, int nin,
                                const char *const *in_keys, int nout,
                                const char *const *out_keys) {
  return crl__td_module_make("td_module_new", &td_module_ops, net, nin, in_keys,
                             nout, out_keys, NULL);
}

/* ---- a C function as a module -------------------------------------------- */

typedef struct {
  crl_td_fn fn;
  void *ctx;
} fn_impl;

static void fn_free(crl_tdmodule *m) { free(m->impl); }

static int fn_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  (void)params;
  fn_impl *p = m->impl;
  crl_tensor *in[CRL_TDM_MAX_KEYS], *out[CRL_TDM_MAX_KEYS];
  for (int i = 0; i < m->nin; i++)
    if (!(in[i] = crl__tdm_in(m, td, m->in_keys[i]))) return CRL_EKEY;
  for (int i = 0; i < m->nout; i++)
    out[i] = NULL;
  int rc = p->fn(p->ctx, m->nin, in, m->nout, out);
  if (rc) {
    if (!crl_last_error()[0])
      crl__err(rc, "%s: the function failed with code %d", crl_tdmodule_name(m),
               rc);
    return rc;
  }
  for (int i = 0; i < m->nout; i++) {
    if (!out[i])
      return crl__err(CRL_EINVAL,
                      "%s: the function returned 0 but no tensor for "
                      "out_key '%s'",
                      crl_tdmodule_name(m), m->out_keys[i]);
    if ((rc = crl__tdm_check_out(m, td, m->out_keys[i], out[i]))) return rc;
  }
  for (int i = 0; i < m->nout; i++)
    if ((rc = crl__tdm_set(td, m->out_keys[i], out[i]))) return rc;
  return 0;
}

static const crl_tdmodule_ops fn_ops = {"TensorDictModule(fn)", fn_forward,
                                        fn_free};

crl_tdmodule *crl_td_module_fn_new(crl_td_fn fn, void *ctx, int nin,
                                   const char *const *in_keys, int nout,
                                   const char *const *out_keys) {
  if (!fn) return CRL_ERR_NULL(CRL_EINVAL, "td_module_fn_new: fn is NULL");
  fn_impl *p = malloc(sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "td_module_fn_new: out of memory");
  p->fn = fn;
  p->ctx = ctx;
  return crl__tdm_new("td_module_fn_new", &fn_ops, p, nin, in_keys, NULL, nout,
                      out_keys, NULL, 0, NULL);
}
