/* Composite specs (TorchRL's CompositeSpec): nested keys written with '/',
 * set / get / contains / del / keys, random and zero TensorDicts, checking
 * a TensorDict against the spec, expand, equality, clone and printing.
 *
 * A composite maps single-component keys to leaf specs or nested
 * composites (entries in insertion order). Its shape is a batch prefix of
 * every child's shape; intermediate composites created by a nested set
 * take the shape of the composite they are created in. */
#include <stdlib.h>

#include "../td/td_internal.h"
#include "specs_internal.h"

crl_spec *crl_spec_composite(int ndim, const int64_t *shape) {
  if (crl__check_shape("spec_composite", ndim, shape)) return NULL;
  return crl__spec_new_raw(CRL_SPEC_COMPOSITE, CRL_NUM_DTYPES, ndim, shape);
}

void crl__spec_comp_free(crl_spec *s) {
  for (int i = 0; i < s->nent; i++) {
    free(s->e[i].key);
    crl_spec_release(s->e[i].spec);
  }
  free(s->e);
}

/* ---- keys ---------------------------------------------------------------- */

static int find_local(const crl_spec *c, const char *key, size_t len) {
  for (int i = 0; i < c->nent; i++) {
    const char *k = c->e[i].key;
    if (strncmp(k, key, len) == 0 && k[len] == 0) return i;
  }
  return -1;
}

/* The composite holding the last component of key (set in *leaf), or NULL
 * if an intermediate is missing or is a leaf spec. */
static crl_spec *walk(const crl_spec *c, const char *key, const char **leaf) {
  for (;;) {
    const char *slash = strchr(key, '/');
    if (!slash) {
      *leaf = key;
      return (crl_spec *)c;
    }
    int i = find_local(c, key, (size_t)(slash - key));
    if (i < 0 || c->e[i].spec->kind != CRL_SPEC_COMPOSITE) return NULL;
    c = c->e[i].spec;
    key = slash + 1;
  }
}

static int check_comp(const char *op, const crl_spec *c) {
  if (!c) return crl__err(CRL_EINVAL, "%s: spec is NULL", op);
  if (c->kind != CRL_SPEC_COMPOSITE)
    return crl__err(CRL_EINVAL, "%s: %s is not a CompositeSpec", op,
                    crl_spec_kind_name(c->kind));
  return 0;
}

static int collect(const crl_spec *c, const char *prefix, crl_td_keys *k,
                   int *cap) {
  for (int i = 0; i < c->nent; i++) {
    const spec_entry *e = &c->e[i];
    int rc;
    if (e->spec->kind != CRL_SPEC_COMPOSITE) {
      if ((rc = crl__td_keys_push(k, cap, prefix, e->key))) return rc;
      continue;
    }
    char *np = crl__td_key_join(prefix, e->key);
    if (!np) return CRL_ENOMEM;
    rc = collect(e->spec, np, k, cap);
    free(np);
    if (rc) return rc;
  }
  return 0;
}

int crl_spec_keys(const crl_spec *comp, crl_td_keys *out) {
  if (!out) return crl__err(CRL_EINVAL, "spec_keys: out is NULL");
  out->n = 0;
  out->keys = NULL;
  int rc = check_comp("spec_keys", comp), cap = 0;
  if (!rc) rc = collect(comp, NULL, out, &cap);
  if (rc) crl_td_keys_free(out);
  return rc;
}

static int missing(const crl_spec *c, const char *op, const char *key) {
  char b[800];
  crl_td_keys k;
  if (crl_spec_keys(c, &k)) return crl_last_error_code();
  crl__td_keys_list(&k, b, sizeof b);
  crl_td_keys_free(&k);
  return crl__err(CRL_EKEY, "%s: key '%s' not found; keys present: %s", op, key,
                  b);
}

crl_spec *crl_spec_get(const crl_spec *comp, const char *key) {
  if (check_comp("spec_get", comp) || crl__td_check_key("spec_get", key))
    return NULL;
  const char *leaf;
  crl_spec *h = walk(comp, key, &leaf);
  int i = h ? find_local(h, leaf, strlen(leaf)) : -1;
  if (i < 0) {
    missing(comp, "spec_get", key);
    return NULL;
  }
  return h->e[i].spec;
}

bool crl_spec_contains(const crl_spec *comp, const char *key) {
  if (!comp || comp->kind != CRL_SPEC_COMPOSITE || !key) return false;
  const char *leaf;
  crl_spec *h = walk(comp, key, &leaf);
  return h && find_local(h, leaf, strlen(leaf)) >= 0;
}

int crl_spec_del(crl_spec *comp, const char *key) {
  int rc = check_comp("spec_del", comp);
  if (rc || (rc = crl__td_check_key("spec_del", key))) return rc;
  const char *leaf;
  crl_spec *h = walk(comp, key, &leaf);
  int i = h ? find_local(h, leaf, strlen(leaf)) : -1;
  if (i < 0) return missing(comp, "spec_del", key);
  free(h->e[i].key);
  crl_spec_release(h->e[i].spec);
  memmove(&h->e[i], &h->e[i + 1], sizeof *h->e * (size_t)(h->nent - i - 1));
  h->nent--;
  return 0;
}

/* ---- set ----------------------------------------------------------------- */

static int append(crl_spec *c, const char *key, size_t len, crl_spec *s) {
  if (c->nent == c->cap) {
    int nc = c->cap ? c->cap * 2 : 8;
    spec_entry *ne = realloc(c->e, sizeof *ne * (size_t)nc);
    if (!ne) return crl__err(CRL_ENOMEM, "out of memory (spec)");
    c->e = ne;
    c->cap = nc;
  }
  char *k = malloc(len + 1);
  if (!k) return crl__err(CRL_ENOMEM, "out of memory (spec)");
  memcpy(k, key, len);
  k[len] = 0;
  c->e[c->nent++] = (spec_entry){k, crl_spec_retain(s)};
  return 0;
}

/* Does composite s hold target (at any depth)? */
static bool holds(const crl_spec *s, const crl_spec *target) {
  if (s == target) return true;
  if (s->kind != CRL_SPEC_COMPOSITE) return false;
  for (int i = 0; i < s->nent; i++)
    if (holds(s->e[i].spec, target)) return true;
  return false;
}

int crl_spec_set(crl_spec *comp, const char *key, crl_spec *spec) {
  const char *op = "spec_set";
  int rc = check_comp(op, comp);
  if (rc || (rc = crl__td_check_key(op, key))) return rc;
  if (!spec)
    return crl__err(CRL_EINVAL, "%s: spec for key '%s' is NULL", op, key);
  /* first pass: validate the path; h is the deepest existing composite */
  crl_spec *h = comp;
  const char *k = key;
  for (;;) {
    if (holds(spec, h))
      return crl__err(CRL_EINVAL,
                      "%s: cannot set key '%s': the spec contains the "
                      "composite it would be set in",
                      op, key);
    const char *slash = strchr(k, '/');
    if (!slash) break;
    int i = find_local(h, k, (size_t)(slash - k));
    if (i < 0) break;
    if (h->e[i].spec->kind != CRL_SPEC_COMPOSITE)
      return crl__err(CRL_EKEY,
                      "%s: cannot set '%s': '%.*s' is a leaf spec, not a "
                      "CompositeSpec",
                      op, key, (int)(slash - key), key);
    h = h->e[i].spec;
    k = slash + 1;
  }
  bool ok = spec->ndim >= h->ndim &&
            !memcmp(spec->shape, h->shape, sizeof(int64_t) * (size_t)h->ndim);
  if (!ok) {
    char b1[160], b2[160];
    return crl__err(CRL_ESHAPE,
                    "%s: the spec for key '%s' has shape %s, which does not "
                    "start with the composite's shape %s",
                    op, key,
                    crl_shape_str(spec->ndim, spec->shape, b1, sizeof b1),
                    crl_shape_str(h->ndim, h->shape, b2, sizeof b2));
  }
  /* second pass: create the missing intermediates */
  crl_spec *cur = comp;
  k = key;
  for (;;) {
    const char *slash = strchr(k, '/');
    if (!slash) break;
    size_t len = (size_t)(slash - k);
    int i = find_local(cur, k, len);
    if (i < 0) {
      crl_scope_begin();
      crl_spec *sub = crl_spec_composite(cur->ndim, cur->shape);
      rc = sub ? append(cur, k, len, sub) : crl_last_error_code();
      crl_scope_end();
      if (rc) return rc;
      i = cur->nent - 1;
    }
    cur = cur->e[i].spec;
    k = slash + 1;
  }
  int i = find_local(cur, k, strlen(k));
  if (i < 0) return append(cur, k, strlen(k), spec);
  crl_spec_retain(spec);
  crl_spec_release(cur->e[i].spec);
  cur->e[i].spec = spec;
  return 0;
}

/* ---- rand_td / zero_td --------------------------------------------------- */

static int max_ndim(const crl_spec *s) {
  int m = s->ndim;
  if (s->kind == CRL_SPEC_COMPOSITE)
    for (int i = 0; i < s->nent; i++) {
      int d = max_ndim(s->e[i].spec);
      m = d > m ? d : m;
    }
  return m;
}

/* Entries of td (batch = batch ++ c's shape) from c's children. */
static int fill_td(const crl_spec *c, crl_td *td, crl_rng *g, int bnd,
                   const int64_t *batch) {
  for (int i = 0; i < c->nent; i++) {
    const spec_entry *e = &c->e[i];
    const crl_spec *s = e->spec;
    int rc;
    if (s->kind != CRL_SPEC_COMPOSITE) {
      crl_tensor *t =
          g ? crl_spec_rand(s, g, bnd, batch) : crl_spec_zero(s, bnd, batch);
      rc = t ? crl_td_set(td, e->key, t) : crl_last_error_code();
    } else {
      int64_t b[CRL_MAX_DIMS];
      if (bnd) memcpy(b, batch, sizeof(int64_t) * (size_t)bnd);
      memcpy(b + bnd, s->shape, sizeof(int64_t) * (size_t)s->ndim);
      crl_td *sub = crl_td_new(bnd + s->ndim, b);
      rc = sub ? fill_td(s, sub, g, bnd, batch) : crl_last_error_code();
      if (!rc) rc = crl_td_set_td(td, e->key, sub);
    }
    if (rc) return rc;
  }
  return 0;
}

static crl_td *make_td(const char *op, const crl_spec *comp, crl_rng *g,
                       int bnd, const int64_t *batch) {
  if (check_comp(op, comp) ||
      crl__spec_check_batch(op, bnd, batch, max_ndim(comp)))
    return NULL;
  int64_t b[CRL_MAX_DIMS];
  if (bnd) memcpy(b, batch, sizeof(int64_t) * (size_t)bnd);
  memcpy(b + bnd, comp->shape, sizeof(int64_t) * (size_t)comp->ndim);
  crl_scope_begin();
  crl_td *td = crl_td_new(bnd + comp->ndim, b);
  if (!td || fill_td(comp, td, g, bnd, batch)) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(td);
}

crl_td *crl_spec_rand_td(const crl_spec *comp, crl_rng *g, int bnd,
                         const int64_t *batch) {
  if (!g) return CRL_ERR_NULL(CRL_EINVAL, "spec_rand_td: generator is NULL");
  return make_td("spec_rand_td", comp, g, bnd, batch);
}

crl_td *crl_spec_zero_td(const crl_spec *comp, int bnd, const int64_t *batch) {
  return make_td("spec_zero_td", comp, NULL, bnd, batch);
}

/* ---- check_td ------------------------------------------------------------ */

int crl_spec_check_td(const crl_spec *comp, crl_td *td) {
  const char *op = "check_td";
  int rc = check_comp(op, comp);
  if (rc) return rc;
  if (!td) return crl__err(CRL_EINVAL, "%s: TensorDict is NULL", op);
  crl_td_keys k;
  if ((rc = crl_spec_keys(comp, &k))) return rc;
  for (int i = 0; i < k.n && !rc; i++) {
    const char *key = k.keys[i];
    const crl_spec *s = crl_spec_get(comp, key);
    crl_tensor *t = crl_td_find(td, key);
    if (!t && crl__td_get_sub(td, key)) {
      rc = crl__err(CRL_EKEY,
                    "%s: key '%s' is a nested TensorDict, the spec expects a "
                    "tensor (%s)",
                    op, key, crl_spec_kind_name(s->kind));
    } else if (!t) {
      char b[800];
      crl_td_keys tk;
      if (crl_td_keys_get(td, true, true, &tk)) {
        rc = crl_last_error_code();
        break;
      }
      crl__td_keys_list(&tk, b, sizeof b);
      crl_td_keys_free(&tk);
      rc = crl__err(CRL_EKEY,
                    "%s: key '%s' is missing from the TensorDict; keys "
                    "present: %s",
                    op, key, b);
    } else {
      char why[600];
      rc = crl__spec_explain(s, t, why, sizeof why);
      if (rc)
        crl__err(rc, "%s: key '%s': %s (%s)", op, key, why,
                 crl_spec_kind_name(s->kind));
    }
  }
  crl_td_keys_free(&k);
  return rc;
}

/* ---- equal, clone, expand ------------------------------------------------ */

bool crl__spec_comp_equal(const crl_spec *a, const crl_spec *b) {
  if (a->nent != b->nent) return false;
  for (int i = 0; i < a->nent; i++) {
    int j = find_local(b, a->e[i].key, strlen(a->e[i].key));
    if (j < 0 || !crl_spec_equal(a->e[i].spec, b->e[j].spec)) return false;
  }
  return true;
}

crl_spec *crl__spec_comp_clone(const crl_spec *s) {
  crl_scope_begin();
  crl_spec *r = crl_spec_composite(s->ndim, s->shape);
  for (int i = 0; r && i < s->nent; i++) {
    crl_spec *c = crl_spec_clone(s->e[i].spec);
    if (!c || append(r, s->e[i].key, strlen(s->e[i].key), c)) r = NULL;
  }
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__spec_scope_end_keep(r);
}

crl_spec *crl__spec_comp_expand(const crl_spec *s, int bnd,
                                const int64_t *batch) {
  if (crl__spec_check_batch("spec_expand", bnd, batch, max_ndim(s)))
    return NULL;
  int64_t shape[CRL_MAX_DIMS];
  if (bnd) memcpy(shape, batch, sizeof(int64_t) * (size_t)bnd);
  memcpy(shape + bnd, s->shape, sizeof(int64_t) * (size_t)s->ndim);
  crl_scope_begin();
  crl_spec *r = crl_spec_composite(bnd + s->ndim, shape);
  for (int i = 0; r && i < s->nent; i++) {
    crl_spec *c = crl_spec_expand(s->e[i].spec, bnd, batch);
    if (!c || append(r, s->e[i].key, strlen(s->e[i].key), c)) r = NULL;
  }
  if (!r) {
    crl_scope_end();
    return NULL;
  }
  return crl__spec_scope_end_keep(r);
}

/* ---- printing ------------------------------------------------------------ */

/* TorchRL's CompositeSpec repr: one "key: spec" per line, indented by 4
 * per level, then the device and shape. */
void crl__spec_comp_repr(crl__sbuf *sb, const crl_spec *s, int indent) {
  char b[160];
  if (s->nent == 0) {
    crl__sb_printf(sb, "CompositeSpec(device=%s, shape=%s)",
                   crl_device_name(s->device),
                   crl_shape_str(s->ndim, s->shape, b, sizeof b));
    return;
  }
  crl__sb_printf(sb, "CompositeSpec(\n");
  for (int i = 0; i < s->nent; i++) {
    const crl_spec *c = s->e[i].spec;
    crl__sb_printf(sb, "%*s%s: ", indent + 4, "", s->e[i].key);
    if (c->kind == CRL_SPEC_COMPOSITE)
      crl__spec_comp_repr(sb, c, indent + 4);
    else
      crl__spec_leaf_repr(sb, c);
    if (i + 1 < s->nent) crl__sb_printf(sb, ",\n");
  }
  crl__sb_printf(sb, ", device=%s, shape=%s)", crl_device_name(s->device),
                 crl_shape_str(s->ndim, s->shape, b, sizeof b));
}
