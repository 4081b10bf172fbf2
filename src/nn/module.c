/* The generic module: lifetime, parameters, children, forward, functional
 * calls, cloning and loading parameters. */
#include <stdio.h>
#include <stdlib.h>

#include "../td/td_internal.h"
#include "nn_internal.h"

/* ---- lifetime ---------------------------------------------------------- */

static void release_module(void *m) { crl_module_release(m); }

/* A TensorDict owned by the caller (never by a scope). */
static crl_td *owned_td(void) {
  crl_scope_begin();
  crl_td *td = crl_td_retain(crl_td_new(0, NULL));
  crl_scope_end();
  return td;
}

crl_module *crl_module_new(const crl_module_ops *ops, void *impl, int nin,
                           int nout) {
  if (!ops || !ops->forward || nin < 0 || nout < 0) {
    if (ops && ops->free) {
      crl_module tmp = {.ops = ops, .impl = impl};
      ops->free(&tmp);
    }
    return CRL_ERR_NULL(CRL_EINVAL,
                        "module_new: ops with a forward function and "
                        "non-negative input/output counts are required "
                        "(got %d inputs, %d outputs)",
                        nin, nout);
  }
  crl_module *m = calloc(1, sizeof *m);
  crl_td *p = m ? owned_td() : NULL;
  crl_td *b = p ? owned_td() : NULL;
  if (!b) {
    crl_td_release(p);
    free(m);
    if (ops->free) {
      crl_module tmp = {.ops = ops, .impl = impl};
      ops->free(&tmp);
    }
    return CRL_ERR_NULL(CRL_ENOMEM, "module_new: out of memory (%s)",
                        ops->name ? ops->name : "module");
  }
  m->refcount = 1;
  m->ops = ops;
  m->impl = impl;
  m->nin = nin;
  m->nout = nout;
  m->params = p;
  m->buffers = b;
  crl__scope_adopt_obj(m, release_module);
  return m;
}

void *crl_module_impl(const crl_module *m) { return m ? m->impl : NULL; }

crl_module *crl_module_retain(crl_module *m) {
  if (m)
    atomic_fetch_add_explicit((_Atomic int *)&m->refcount, 1,
                              memory_order_relaxed);
  return m;
}

void crl_module_release(crl_module *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&m->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  if (m->ops->free) m->ops->free(m);
  for (int i = 0; i < m->nchildren; i++) {
    crl_module_release(m->children[i].m);
    free(m->children[i].prefix);
  }
  free(m->children);
  crl_td_release(m->params);
  crl_td_release(m->buffers);
  free(m);
}

void crl__module_discard(crl_module *m) { crl__discard_obj(m, release_module); }

crl_module *crl__module_scope_end_keep(crl_module *m) {
  crl_module_retain(m);
  crl_scope_end();
  crl__scope_adopt_obj(m, release_module);
  return m;
}

/* ---- inspection ---------------------------------------------------------- */

const char *crl_module_name(const crl_module *m) {
  return m && m->ops->name ? m->ops->name : "module";
}
int crl_module_num_inputs(const crl_module *m) { return m ? m->nin : 0; }
int crl_module_num_outputs(const crl_module *m) { return m ? m->nout : 0; }
crl_td *crl_module_params(const crl_module *m) { return m ? m->params : NULL; }
crl_td *crl_module_buffers(const crl_module *m) {
  return m ? m->buffers : NULL;
}

static int64_t count_elems(const crl_td *td) {
  int64_t n = 0;
  for (int i = 0; i < td->n; i++)
    n += td->e[i].t ? td->e[i].t->numel : count_elems(td->e[i].sub);
  return n;
}

int64_t crl_module_num_params(const crl_module *m) {
  return m ? count_elems(m->params) : 0;
}

/* ---- building ------------------------------------------------------------ */

static crl_tensor *add_tensor(crl_module *m, crl_td *td, const char *op,
                              const char *key, crl_dtype dt, bool grad,
                              int ndim, const int64_t *shape) {
  if (!m || !key)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: module and key are required", op);
  if (crl_td_contains(td, key))
    return CRL_ERR_NULL(CRL_EKEY, "%s: %s already has an entry '%s'", op,
                        crl_module_name(m), key);
  crl_scope_begin();
  crl_tensor *t = crl_zeros(dt, ndim, shape);
  int rc = t ? 0 : -1;
  if (!rc && grad) rc = crl_set_requires_grad(t, true);
  if (!rc) rc = crl_td_set(td, key, t);
  crl_scope_end(); /* the TensorDict holds the only reference now */
  return rc ? NULL : t;
}

crl_tensor *crl__module_add_param(crl_module *m, const char *key, int ndim,
                                  const int64_t *shape) {
  return add_tensor(m, m ? m->params : NULL, "module_add_param", key,
                    CRL_FLOAT32, true, ndim, shape);
}

crl_tensor *crl__module_add_buffer(crl_module *m, const char *key, crl_dtype dt,
                                   int ndim, const int64_t *shape) {
  return add_tensor(m, m ? m->buffers : NULL, "module_add_buffer", key, dt,
                    false, ndim, shape);
}

int crl__module_add_child(crl_module *m, const char *prefix,
                          crl_module *child) {
  if (!m || !prefix || !child || !*prefix || strchr(prefix, '/'))
    return crl__err(CRL_EINVAL,
                    "module_add_child: a module, a child and a one-component "
                    "prefix are required (got '%s')",
                    prefix ? prefix : "(null)");
  for (int i = 0; i < m->nchildren; i++)
    if (strcmp(m->children[i].prefix, prefix) == 0)
      return crl__err(CRL_EKEY, "module_add_child: %s already has a child '%s'",
                      crl_module_name(m), prefix);
  if (crl_td_contains(m->params, prefix) || crl_td_contains(m->buffers, prefix))
    return crl__err(CRL_EKEY, "module_add_child: %s already has an entry '%s'",
                    crl_module_name(m), prefix);
  if (m->nchildren == m->cap_children) {
    int nc = m->cap_children ? 2 * m->cap_children : 4;
    crl__child *n = realloc(m->children, sizeof *n * (size_t)nc);
    if (!n) return crl__err(CRL_ENOMEM, "module_add_child: out of memory");
    m->children = n;
    m->cap_children = nc;
  }
  size_t len = strlen(prefix);
  char *pre = malloc(len + 1);
  if (!pre) return crl__err(CRL_ENOMEM, "module_add_child: out of memory");
  memcpy(pre, prefix, len + 1);
  bool np = child->params->n > 0 || child->lazy;
  bool nb = child->buffers->n > 0;
  if (np && crl_td_set_td(m->params, prefix, child->params)) {
    free(pre);
    return -1;
  }
  if (nb && crl_td_set_td(m->buffers, prefix, child->buffers)) {
    if (np) crl_td_del(m->params, prefix);
    free(pre);
    return -1;
  }
  m->children[m->nchildren] =
      (crl__child){crl_module_retain(child), pre, np, nb};
  if (child->lazy) m->lazy = true;
  return m->nchildren++;
}

crl_td *crl__module_child_params(crl_module *m, crl_td *params, int i) {
  crl__child *c = &m->children[i];
  if (params == m->params) return c->m->params;
  crl_td *sub = crl__td_get_sub(params, c->prefix);
  if (sub) return sub;
  if (!c->nested_params) return c->m->params;
  return CRL_ERR_NULL(CRL_EKEY,
                      "%s: params has no entries '%s/...' for sub-module %s",
                      crl_module_name(m), c->prefix, crl_module_name(c->m));
}

crl_tensor *crl__module_run_child(crl_module *m, crl_td *params, int i,
                                  crl_tensor *x) {
  crl_td *p = crl__module_child_params(m, params, i);
  if (!p) return NULL;
  crl_module *c = m->children[i].m;
  crl_tensor *y = NULL;
  if (c->ops->forward(c, p, 1, &x, 1, &y)) return NULL;
  return y;
}

crl_tensor *crl__module_param(const crl_module *m, crl_td *params,
                              const char *key) {
  /* fast path: top-level keys compared directly */
  for (int i = 0; i < params->n; i++) {
    const char *k = params->e[i].key;
    if (k[0] == key[0] && strcmp(k, key) == 0 && params->e[i].t)
      return params->e[i].t;
  }
  crl_tensor *t = crl_td_find(params, key);
  if (t) return t;
  char keys[256];
  crl__td_keys_str(params, keys, sizeof keys);
  return CRL_ERR_NULL(CRL_EKEY, "%s: params has no key '%s' (keys: %s)",
                      crl_module_name(m), key, keys);
}

/* ---- forward ---------------------------------------------------------------
 */

int crl_module_forward(crl_module *m, crl_td *params, int nin,
                       crl_tensor *const *in, int nout, crl_tensor **out) {
  if (!m) return crl__err(CRL_EINVAL, "module_forward: module is NULL");
  if (nin != m->nin || nout != m->nout)
    return crl__err(CRL_EINVAL,
                    "module_forward: %s takes %d input(s) and gives %d "
                    "output(s), called with %d and %d",
                    crl_module_name(m), m->nin, m->nout, nin, nout);
  for (int i = 0; i < nin; i++)
    if (!in[i])
      return crl__err(CRL_EINVAL, "module_forward: %s: input %d is NULL",
                      crl_module_name(m), i);
  for (int i = 0; i < nout; i++)
    out[i] = NULL;
  return m->ops->forward(m, params ? params : m->params, nin, in, nout, out);
}

crl_tensor *crl_module_call(crl_module *m, crl_td *params, crl_tensor *x) {
  crl_tensor *y = NULL;
  if (crl_module_forward(m, params, 1, &x, 1, &y)) return NULL;
  return y;
}

/* ---- parameter copies
 * -------------------------------------------------------- */

static crl_tensor *clone_leaf(crl_tensor *t, void *ctx) {
  bool rg = *(bool *)ctx;
  crl_tensor *c = crl_empty_like(t); /* new storage, no graph */
  if (c) crl__copy_into(c, t);
  if (c && rg && crl_dtype_is_float(c->dtype) &&
      crl_set_requires_grad(c, true)) {
    crl__discard(c);
    return NULL;
  }
  return c;
}

crl_td *crl_module_params_clone(const crl_module *m, bool requires_grad) {
  if (!m)
    return CRL_ERR_NULL(CRL_EINVAL, "module_params_clone: module is NULL");
  return crl_td_apply(m->params, clone_leaf, &requires_grad);
}

int crl_module_load_params(crl_module *m, crl_td *params) {
  if (!m || !params)
    return crl__err(CRL_EINVAL, "module_load_params: module and params are "
                                "required");
  if (params == m->params) return 0;
  crl__td_pair *pairs = NULL;
  int n = 0;
  /* every key of params must be a tensor of m with the same shape */
  int rc = crl__td_pairs("module_load_params", m->params, params, &pairs, &n);
  if (rc) return rc;
  for (int i = 0; i < n && !rc; i++) {
    crl_tensor *d = pairs[i].dst, *s = pairs[i].src;
    if (!crl_same_shape(d, s)) {
      char a[96], b[96];
      rc = crl__err(CRL_ESHAPE,
                    "module_load_params: %s key '%s': shape %s given, the "
                    "parameter has shape %s",
                    crl_module_name(m), pairs[i].key, CRL_SHAPE_STR(s, a),
                    CRL_SHAPE_STR(d, b));
    } else if (!crl_dtype_is_float(s->dtype)) {
      rc = crl__err(CRL_EDTYPE,
                    "module_load_params: %s key '%s': dtype %s given, a float "
                    "dtype is required",
                    crl_module_name(m), pairs[i].key, crl_dtype_name(s->dtype));
    }
  }
  /* and every parameter of m must be given */
  crl_td_keys mk = {0};
  if (!rc) rc = crl_td_keys_get(m->params, true, true, &mk);
  for (int i = 0; i < mk.n && !rc; i++)
    if (!crl_td_find(params, mk.keys[i]))
      rc = crl__err(CRL_EKEY,
                    "module_load_params: %s parameter '%s' is missing from "
                    "the given params",
                    crl_module_name(m), mk.keys[i]);
  crl_td_keys_free(&mk);
  if (!rc) {
    for (int i = 0; i < n; i++) {
      if (pairs[i].dst->data != pairs[i].src->data)
        crl__copy_into(pairs[i].dst, pairs[i].src);
      pairs[i].dst->version++;
    }
  }
  crl__td_pairs_free(pairs, n);
  return rc;
}
