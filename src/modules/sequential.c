/* TensorDictSequential (tensordict.nn.TensorDictSequential): parts run in
 * order on one TensorDict; in_keys / out_keys derived as TorchRL does;
 * parameters nested by position; select_subsequence. */
#include <stdio.h>
#include <stdlib.h>

#include "../td/td_internal.h"
#include "modules_internal.h"

typedef struct {
  char (*prefix)[12]; /* "0", "1", ... (no formatting per call) */
  bool *has_params;   /* part i had parameters at construction */
} seq_impl;

void crl__td_sequential_free(crl_tdmodule *m) {
  seq_impl *p = m->impl;
  if (!p) return;
  free(p->prefix);
  free(p->has_params);
  free(p);
}

crl_td *crl__td_sequential_child_params(crl_tdmodule *m, crl_td *params,
                                        int i) {
  crl_tdmodule *c = m->children[i];
  if (params == m->params) return c->params;
  seq_impl *p = m->impl;
  crl_td *sub = crl__td_get_sub(params, p->prefix[i]);
  if (sub) return sub;
  if (c->params->n == 0) return c->params; /* a part without parameters */
  char keys[400];
  crl__td_keys_str(params, keys, sizeof keys);
  return CRL_ERR_NULL(CRL_EKEY,
                      "%s: params has no entries '%s/...' for part %d (%s); "
                      "keys present: %s",
                      crl_tdmodule_name(m), p->prefix[i], i,
                      crl_tdmodule_name(c), keys);
}

int crl__td_sequential_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  /* every required input first, so a missing one changes nothing */
  for (int i = 0; i < m->nin; i++)
    if (!m->in_optional[i] && !crl__tdm_in(m, td, m->in_keys[i]))
      return CRL_EKEY;
  for (int i = 0; i < m->nchildren; i++) {
    crl_td *cp = crl__td_sequential_child_params(m, params, i);
    if (!cp) return CRL_EKEY;
    int rc = crl_tdmodule_forward(m->children[i], td, cp);
    if (rc) return rc;
  }
  return 0;
}

/* ---- key derivation (TorchRL's _compute_in_and_out_keys) ----------------- */

typedef struct {
  int n;
  const char *k[CRL_TDM_MAX_KEYS * 4];
  bool opt[CRL_TDM_MAX_KEYS * 4];
} key_list;

static int find_key(const key_list *l, const char *k) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->k[i], k) == 0) return i;
  return -1;
}

/* in_keys: keys read before any earlier part writes them (optional only if
 * every part reading them first treats them as optional); out_keys: every
 * key written, each at its last writer's position. */
static int derive_keys(const char *op, int n, crl_tdmodule *const *mods,
                       key_list *in, key_list *out) {
  key_list all_out = {0};
  in->n = out->n = 0;
  for (int i = 0; i < n; i++) {
    const crl_tdmodule *c = mods[i];
    for (int j = 0; j < c->nin; j++) {
      const char *k = c->in_keys[j];
      if (find_key(&all_out, k) >= 0) continue;
      int at = find_key(in, k);
      if (at >= 0) {
        in->opt[at] = in->opt[at] && c->in_optional[j];
        continue;
      }
      if (in->n == CRL_TDM_MAX_KEYS)
        return crl__err(CRL_EINVAL, "%s: more than %d in_keys", op,
                        CRL_TDM_MAX_KEYS);
      in->opt[in->n] = c->in_optional[j];
      in->k[in->n++] = k;
    }
    for (int j = 0; j < c->nout; j++) {
      if (all_out.n == CRL_TDM_MAX_KEYS * 4)
        return crl__err(CRL_EINVAL, "%s: too many out_keys", op);
      all_out.k[all_out.n++] = c->out_keys[j];
    }
  }
  for (int i = 0; i < all_out.n; i++) {
    bool later = false;
    for (int j = i + 1; j < all_out.n && !later; j++)
      later = strcmp(all_out.k[i], all_out.k[j]) == 0;
    if (later) continue;
    if (out->n == CRL_TDM_MAX_KEYS)
      return crl__err(CRL_EINVAL, "%s: more than %d out_keys", op,
                      CRL_TDM_MAX_KEYS);
    out->k[out->n++] = all_out.k[i];
  }
  return 0;
}

crl_tdmodule *crl__td_sequential_make(const char *op,
                                      const crl_tdmodule_ops *ops, int n,
                                      crl_tdmodule *const *modules) {
  if (n < 1 || !modules)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: at least one module is required "
                        "(got %d)",
                        op, n);
  if (n > 1000)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: %d modules; at most 1000", op, n);
  for (int i = 0; i < n; i++)
    if (!modules[i])
      return CRL_ERR_NULL(CRL_EINVAL, "%s: module %d is NULL", op, i);
  key_list in, out;
  if (derive_keys(op, n, modules, &in, &out)) return NULL;
  seq_impl *p = calloc(1, sizeof *p);
  if (p) {
    p->prefix = calloc((size_t)n, sizeof *p->prefix);
    p->has_params = calloc((size_t)n, sizeof *p->has_params);
  }
  if (!p || !p->prefix || !p->has_params) {
    if (p) crl__td_sequential_free(&(crl_tdmodule){.impl = p});
    return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  }
  crl_scope_begin();
  crl_td *params = crl_td_new(0, NULL);
  int rc = params ? 0 : crl_last_error_code();
  for (int i = 0; i < n && !rc; i++) {
    snprintf(p->prefix[i], sizeof p->prefix[i], "%d", i);
    crl_td *cp = modules[i]->params;
    p->has_params[i] = cp->n > 0;
    /* nested even when empty: parameters a lazy network creates later
     * appear in the shared TensorDict */
    rc = crl_td_set_td(params, p->prefix[i], cp);
  }
  if (rc) {
    crl_scope_end();
    crl__td_sequential_free(&(crl_tdmodule){.impl = p});
    return NULL;
  }
  crl_tdmodule *m = crl__tdm_new(op, ops, p, in.n, in.k, in.opt, out.n, out.k,
                                 params, n, modules);
  if (!m) {
    crl_scope_end();
    return NULL;
  }
  return crl__tdm_scope_end_keep(m);
}

static const crl_tdmodule_ops seq_ops = {"TensorDictSequential",
                                         crl__td_sequential_forward,
                                         crl__td_sequential_free};

crl_tdmodule *crl_td_sequential_new(int n, crl_tdmodule *const *modules) {
  return crl__td_sequential_make("td_sequential_new", &seq_ops, n, modules);
}

crl_tdmodule *crl_td_sequential_get(const crl_tdmodule *seq, int i) {
  if (!crl__tdm_is_sequence(seq))
    return CRL_ERR_NULL(CRL_EINVAL, "td_sequential_get: %s is not a sequence",
                        seq ? crl_tdmodule_name(seq) : "NULL");
  if (i < 0 || i >= seq->nchildren)
    return CRL_ERR_NULL(CRL_EINDEX,
                        "td_sequential_get: index %d is out of range for %s "
                        "of %d modules",
                        i, crl_tdmodule_name(seq), seq->nchildren);
  return seq->children[i];
}

/* ---- select_subsequence -------------------------------------------------- */

static bool in_list(const key_list *l, const char *k) {
  return find_key(l, k) >= 0;
}

static int push(key_list *l, const char *k) {
  if (in_list(l, k)) return 0;
  if (l->n == (int)(sizeof l->k / sizeof l->k[0]))
    return crl__err(CRL_EINVAL, "td_sequential_select: too many keys");
  l->k[l->n++] = k;
  return 0;
}

crl_tdmodule *crl_td_sequential_select(const crl_tdmodule *seq, int nin,
                                       const char *const *in_keys, int nout,
                                       const char *const *out_keys) {
  const char *op = "td_sequential_select";
  if (!crl__tdm_is_sequence(seq))
    return CRL_ERR_NULL(CRL_EINVAL, "%s: %s is not a sequence", op,
                        seq ? crl_tdmodule_name(seq) : "NULL");
  if (nin < 0 || nout < 0 || (nin && !in_keys) || (nout && !out_keys) ||
      nin > CRL_TDM_MAX_KEYS || nout > CRL_TDM_MAX_KEYS)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: invalid key lists (%d in, %d out)", op,
                        nin, nout);
  key_list avail = {0}, want = {0};
  int rc = 0;
  /* no in_keys: the sequence's; no out_keys: the sequence's */
  for (int i = 0; i < (nin ? nin : seq->nin) && !rc; i++)
    rc = push(&avail, nin ? in_keys[i] : seq->in_keys[i]);
  for (int i = 0; i < (nout ? nout : seq->nout) && !rc; i++)
    rc = push(&want, nout ? out_keys[i] : seq->out_keys[i]);
  if (rc) return NULL;
  int n = seq->nchildren;
  bool *keep = calloc((size_t)n, sizeof *keep);
  if (!keep) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  /* forward: parts whose required inputs are available */
  for (int i = 0; i < n && !rc; i++) {
    const crl_tdmodule *c = seq->children[i];
    bool ok = true;
    for (int j = 0; j < c->nin && ok; j++)
      ok = c->in_optional[j] || in_list(&avail, c->in_keys[j]);
    keep[i] = ok;
    for (int j = 0; ok && j < c->nout && !rc; j++)
      rc = push(&avail, c->out_keys[j]);
  }
  /* backward: parts that produce something wanted */
  for (int i = n - 1; i >= 0 && !rc; i--) {
    if (!keep[i]) continue;
    const crl_tdmodule *c = seq->children[i];
    bool useful = false;
    for (int j = 0; j < c->nout && !useful; j++)
      useful = in_list(&want, c->out_keys[j]);
    keep[i] = useful;
    for (int j = 0; useful && j < c->nin && !rc; j++)
      rc = push(&want, c->in_keys[j]);
  }
  crl_tdmodule *parts[1000];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (keep[i]) parts[k++] = seq->children[i];
  free(keep);
  if (rc) return NULL;
  if (k == 0) {
    char a[400] = "", b[400] = "";
    size_t oa = 0, ob = 0;
    for (int i = 0; i < (nin ? nin : seq->nin) && oa + 8 < sizeof a; i++)
      oa += (size_t)snprintf(a + oa, sizeof a - oa, "%s'%s'", i ? ", " : "",
                             nin ? in_keys[i] : seq->in_keys[i]);
    for (int i = 0; i < (nout ? nout : seq->nout) && ob + 8 < sizeof b; i++)
      ob += (size_t)snprintf(b + ob, sizeof b - ob, "%s'%s'", i ? ", " : "",
                             nout ? out_keys[i] : seq->out_keys[i]);
    return CRL_ERR_NULL(CRL_EKEY,
                        "%s: no part of %s produces [%s] from [%s]; make sure "
                        "in_keys and out_keys are coherent",
                        op, crl_tdmodule_name(seq), b, a);
  }
  return crl__td_sequential_make(op, &seq_ops, k, parts);
}
