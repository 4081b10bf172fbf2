/* TensorDict RL helpers: step_mdp (torchrl.envs.utils.step_mdp) and
 * flatten_keys / unflatten_keys (tensordict's flatten_keys(separator)).
 *
 * All three build a new TensorDict whose leaves are the input's tensors
 * (shared, not copied); nested TensorDicts of the result are new objects,
 * so modifying the result's structure never touches the input's. */
#include <stdio.h>
#include <stdlib.h>

#include "td_internal.h"

/* ---- step_mdp ------------------------------------------------------------ */

/* Keys dropped by the options, at the top level of the root and of "next"
 * (TorchRL compares the full key against reward_keys/done_keys/action_keys,
 * whose defaults are top-level names). */
static bool mdp_excluded(const char *key, const crl_step_mdp_options *o) {
  if (o->exclude_reward && strcmp(key, "reward") == 0) return true;
  if (o->exclude_done &&
      (strcmp(key, "done") == 0 || strcmp(key, "terminated") == 0 ||
       strcmp(key, "truncated") == 0))
    return true;
  if (o->exclude_action && strcmp(key, "action") == 0) return true;
  return false;
}

/* Error unless a value of shape [ndim, shape] can live in dst (its leading
 * dims are dst's batch size). Merging nested TensorDicts with different
 * batch sizes can break this. */
static int check_fits(const char *op, const crl_td *dst, const char *key,
                      int ndim, const int64_t *shape) {
  bool ok = ndim >= dst->bnd;
  for (int i = 0; ok && i < dst->bnd; i++)
    ok = shape[i] == dst->batch[i];
  if (ok) return 0;
  char b1[160], b2[160];
  return crl__err(CRL_ESHAPE,
                  "%s: entry '%s' of shape %s does not fit a nested "
                  "TensorDict of batch size %s",
                  op, key, crl_shape_str(ndim, shape, b1, sizeof b1),
                  crl_shape_str(dst->bnd, dst->batch, b2, sizeof b2));
}

/* Replace (or append) dst's local entry `key` by a tensor or nested
 * TensorDict. */
static int put_local(crl_td *dst, const char *key, crl_tensor *t, crl_td *sub) {
  int rc = t ? check_fits("step_mdp", dst, key, t->ndim, t->shape)
             : check_fits("step_mdp", dst, key, sub->bnd, sub->batch);
  if (rc) return rc;
  int i = crl__td_find_local(dst, key, strlen(key));
  if (i < 0) return crl__td_append(dst, key, strlen(key), t, sub);
  td_entry *e = &dst->e[i];
  crl_tensor_retain(t);
  crl_td_retain(sub);
  crl_tensor_release(e->t);
  crl_td_release(e->sub);
  e->t = t;
  e->sub = sub;
  dst->version++;
  return 0;
}

/* TorchRL's _set: copy one entry of src into dst. A nested TensorDict is
 * merged into dst's nested TensorDict of the same name (created empty with
 * the source's batch size if absent) and only attached when it received a
 * leaf. Returns 1 if something was set, 0 if not, or a negative code. */
static int mdp_set(crl_td *dst, const char *key, crl_tensor *t, crl_td *sub) {
  if (t) {
    int rc = put_local(dst, key, t, NULL);
    return rc ? rc : 1;
  }
  crl_td *target = NULL;
  int i = crl__td_find_local(dst, key, strlen(key));
  bool fresh = i < 0 || !dst->e[i].sub;
  if (fresh) {
    target = crl__td_new_raw(sub->bnd, sub->batch, sub->device);
    if (!target) return crl_last_error_code();
  } else {
    target = dst->e[i].sub;
  }
  int any = 0;
  for (int k = 0; k < sub->n; k++) {
    int r = mdp_set(target, sub->e[k].key, sub->e[k].t, sub->e[k].sub);
    if (r < 0) return r;
    any |= r;
  }
  if (any && fresh) {
    int rc = put_local(dst, key, NULL, target);
    if (rc) return rc;
  }
  return any;
}

crl_td *crl_td_step_mdp(crl_td *td, const crl_step_mdp_options *opt) {
  static const crl_step_mdp_options defaults = {
      .keep_other = true,
      .exclude_reward = true,
      .exclude_done = false,
      .exclude_action = true,
  };
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "step_mdp: TensorDict is NULL");
  const crl_step_mdp_options *o = opt ? opt : &defaults;
  int ni = crl__td_find_local(td, "next", 4);
  if (ni < 0) {
    crl_td_keys k;
    char list[600] = "none";
    if (crl_td_keys_get(td, false, false, &k) == 0) {
      size_t at = 0;
      for (int i = 0; i < k.n && at + 8 < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s'%s'",
                               i ? ", " : "", k.keys[i]);
      crl_td_keys_free(&k);
    }
    return CRL_ERR_NULL(CRL_EKEY,
                        "step_mdp: no 'next' entry (the step's results); "
                        "keys present: %s",
                        list);
  }
  crl_td *next = td->e[ni].sub;
  if (!next)
    return CRL_ERR_NULL(CRL_EKEY,
                        "step_mdp: 'next' is a tensor, expected a nested "
                        "TensorDict");
  crl_scope_begin();
  crl_td *out = crl__td_new_raw(td->bnd, td->batch, td->device);
  int rc = out ? 0 : crl_last_error_code();
  for (int i = 0; !rc && i < td->n; i++) {
    const td_entry *e = &td->e[i];
    if (i == ni) continue;
    bool take = o->keep_other
                    ? !mdp_excluded(e->key, o)
                    : !o->exclude_action && strcmp(e->key, "action") == 0;
    if (take) {
      int r = mdp_set(out, e->key, e->t, e->sub);
      if (r < 0) rc = r;
    }
  }
  for (int i = 0; !rc && i < next->n; i++) {
    const td_entry *e = &next->e[i];
    if (mdp_excluded(e->key, o)) continue;
    int r = mdp_set(out, e->key, e->t, e->sub);
    if (r < 0) rc = r;
  }
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(out);
}

/* ---- flatten_keys / unflatten_keys --------------------------------------- */

static int check_sep(const char *op, const char *sep) {
  if (!*sep) return crl__err(CRL_EINVAL, "%s: separator is empty", op);
  if (strchr(sep, '/'))
    return crl__err(CRL_EINVAL,
                    "%s: separator '%s' contains '/', which already "
                    "separates nested keys",
                    op, sep);
  return 0;
}

/* a + sep + b (a may be NULL: b alone) in new memory, or NULL (error set) */
static char *join(const char *a, const char *sep, const char *b) {
  size_t la = a ? strlen(a) : 0, ls = a ? strlen(sep) : 0, lb = strlen(b);
  char *s = malloc(la + ls + lb + 1);
  if (!s) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory");
  if (a) {
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
  }
  memcpy(s + la + ls, b, lb + 1);
  return s;
}

/* Where each entry of a result came from (for collision messages). */
typedef struct {
  char **target, **origin;
  int n, cap;
} origins;

static int origins_add(origins *o, const char *target, const char *origin) {
  if (o->n == o->cap) {
    int nc = o->cap ? o->cap * 2 : 16;
    char **nt = realloc(o->target, sizeof *nt * (size_t)nc);
    if (nt) o->target = nt;
    char **no = realloc(o->origin, sizeof *no * (size_t)nc);
    if (no) o->origin = no;
    if (!nt || !no) return crl__err(CRL_ENOMEM, "out of memory");
    o->cap = nc;
  }
  char *t = join(NULL, "", target), *g = join(NULL, "", origin);
  if (!t || !g) {
    free(t);
    free(g);
    return crl_last_error_code();
  }
  o->target[o->n] = t;
  o->origin[o->n++] = g;
  return 0;
}

static const char *origins_of(const origins *o, const char *target) {
  for (int i = 0; i < o->n; i++)
    if (strcmp(o->target[i], target) == 0) return o->origin[i];
  return target;
}

static void origins_free(origins *o) {
  for (int i = 0; i < o->n; i++) {
    free(o->target[i]);
    free(o->origin[i]);
  }
  free(o->target);
  free(o->origin);
}

/* Leaves of src (nested key path `path`, '/'-joined) go to the top level of
 * out under `name` (sep-joined). */
static int flatten_rec(crl_td *out, const crl_td *src, const char *name,
                       const char *path, const char *sep, origins *org) {
  int rc = 0;
  for (int i = 0; !rc && i < src->n; i++) {
    const td_entry *e = &src->e[i];
    char *nm = join(name, sep, e->key), *pt = join(path, "/", e->key);
    if (!nm || !pt) {
      rc = crl_last_error_code();
    } else if (e->sub) {
      rc = flatten_rec(out, e->sub, nm, pt, sep, org);
    } else if (crl__td_find_local(out, nm, strlen(nm)) >= 0) {
      rc = crl__err(CRL_EKEY,
                    "td_flatten_keys: keys '%s' and '%s' both flatten to "
                    "'%s' (separator '%s')",
                    origins_of(org, nm), pt, nm, sep);
    } else if (!(rc = crl__td_append(out, nm, strlen(nm), e->t, NULL))) {
      rc = origins_add(org, nm, pt);
    }
    free(nm);
    free(pt);
  }
  return rc;
}

typedef int (*rekey_fn)(crl_td *out, const crl_td *src, const char *a,
                        const char *b, const char *sep, origins *org);

/* flatten_keys / unflatten_keys: a new TensorDict with td's batch filled by
 * rec(out, td, NULL, NULL, sep, org) (sep NULL: "."). */
static crl_td *rekey(const char *op, crl_td *td, const char *sep,
                     rekey_fn rec) {
  if (!td) return CRL_ERR_NULL(CRL_EINVAL, "%s: TensorDict is NULL", op);
  if (!sep) sep = ".";
  if (check_sep(op, sep)) return NULL;
  crl_scope_begin();
  crl_td *out = crl__td_new_raw(td->bnd, td->batch, td->device);
  origins org = {0};
  int rc = out ? rec(out, td, NULL, NULL, sep, &org) : crl_last_error_code();
  origins_free(&org);
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(out);
}

crl_td *crl_td_flatten_keys(crl_td *td, const char *sep) {
  return rekey("td_flatten_keys", td, sep, flatten_rec);
}

/* Entries of src go into dst with their keys split at sep into nested
 * paths. `path` is src's nested key in the input (messages) and `tpath`
 * dst's nested key in the result. */
static int unflatten_rec(crl_td *dst, const crl_td *src, const char *path,
                         const char *tpath, const char *sep, origins *org) {
  const char *op = "td_unflatten_keys";
  size_t ls = strlen(sep);
  int rc = 0;
  for (int i = 0; !rc && i < src->n; i++) {
    const td_entry *e = &src->e[i];
    char *orig = join(path, "/", e->key);
    /* the target path: dst's path plus the components of e->key, '/'-joined
     * (keys never hold '/', so replacing sep by '/' is exact) */
    size_t lk = strlen(e->key), lt = tpath ? strlen(tpath) + 1 : 0;
    char *target = malloc(lt + lk + 1);
    if (!orig || !target) {
      free(orig);
      free(target);
      return crl__err(CRL_ENOMEM, "out of memory");
    }
    if (tpath) {
      memcpy(target, tpath, lt - 1);
      target[lt - 1] = '/';
    }
    size_t o = lt;
    for (const char *k = e->key; *k;) {
      if (ls && strncmp(k, sep, ls) == 0) {
        target[o++] = '/';
        k += ls;
      } else {
        target[o++] = *k++;
      }
    }
    target[o] = 0;
    /* walk the components in dst, creating nested TensorDicts */
    crl_td *cur = dst;
    const char *c = target + lt;
    if (!*c || *c == '/' || target[o - 1] == '/' || strstr(c, "//")) {
      rc = crl__err(CRL_EKEY,
                    "%s: key '%s' has an empty component when split at "
                    "'%s'",
                    op, orig, sep);
    }
    for (const char *slash; !rc && (slash = strchr(c, '/')); c = slash + 1) {
      int j = crl__td_find_local(cur, c, (size_t)(slash - c));
      if (j >= 0 && cur->e[j].t) {
        char *pre = join(NULL, "", target);
        if (pre) pre[slash - target] = 0;
        rc = crl__err(CRL_EKEY,
                      "%s: keys '%s' and '%s' collide: '%s' would have to "
                      "be both a tensor and a nested TensorDict",
                      op, pre ? origins_of(org, pre) : "?", orig,
                      pre ? pre : "?");
        free(pre);
      } else if (j < 0) {
        crl_td *n = crl__td_new_raw(cur->bnd, cur->batch, cur->device);
        rc = n ? crl__td_append(cur, c, (size_t)(slash - c), NULL, n)
               : crl_last_error_code();
        if (!rc) cur = n;
      } else {
        cur = cur->e[j].sub;
      }
    }
    if (!rc) {
      int j = crl__td_find_local(cur, c, strlen(c));
      if (e->t) {
        if (j >= 0)
          rc = crl__err(CRL_EKEY,
                        "%s: keys '%s' and '%s' both unflatten "
                        "to '%s'",
                        op, origins_of(org, target), orig, target);
        else if (!(rc = check_fits(op, cur, orig, e->t->ndim, e->t->shape)) &&
                 !(rc = crl__td_append(cur, c, strlen(c), e->t, NULL)))
          rc = origins_add(org, target, orig);
      } else if (j >= 0 && cur->e[j].t) {
        rc = crl__err(CRL_EKEY,
                      "%s: keys '%s' and '%s' collide: '%s' would have to be "
                      "both a tensor and a nested TensorDict",
                      op, origins_of(org, target), orig, target);
      } else {
        crl_td *n = j >= 0 ? cur->e[j].sub : NULL;
        if (!n &&
            !(rc = check_fits(op, cur, orig, e->sub->bnd, e->sub->batch))) {
          n = crl__td_new_raw(e->sub->bnd, e->sub->batch, e->sub->device);
          rc = n ? crl__td_append(cur, c, strlen(c), NULL, n)
                 : crl_last_error_code();
        }
        if (!rc) rc = unflatten_rec(n, e->sub, orig, target, sep, org);
      }
    }
    free(orig);
    free(target);
  }
  return rc;
}

crl_td *crl_td_unflatten_keys(crl_td *td, const char *sep) {
  return rekey("td_unflatten_keys", td, sep, unflatten_rec);
}
