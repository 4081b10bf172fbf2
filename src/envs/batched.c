/* What SerialEnv and ParallelEnv share: the buffer TensorDict and the
 * copies' views of it, running a command on one copy, scattering actions
 * and gathering results, the batched env's ops, and the async send/recv
 * bookkeeping. serial_env.c and parallel_env.c only decide where and when
 * the copies run (see batched_internal.h). */
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "batched_internal.h"

/* ---- waiting ---------------------------------------------------------------
 */

void crl__futex_wait(_Atomic uint32_t *addr, uint32_t val, int timeout_ms) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val,
          timeout_ms >= 0 ? &ts : NULL, NULL, 0);
}

void crl__futex_wake(_Atomic uint32_t *addr) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void crl__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

int crl__online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

/* ---- small helpers ---------------------------------------------------------
 */

static bool any_set(const uint8_t *m, int64_t n) {
  uint8_t a = 0;
  for (int64_t i = 0; i < n; i++)
    a |= m[i];
  return a != 0;
}

bool crl__same_shape(const crl_tensor *a, const crl_tensor *b) {
  return a->ndim == b->ndim &&
         !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

/* dst = src (same shape), memcpy when both are contiguous and alike */
static void copy_all(crl_tensor *dst, const crl_tensor *src) {
  if (dst == src) return;
  if (dst->dtype == src->dtype && crl_tensor_is_contiguous(dst) &&
      crl_tensor_is_contiguous(src))
    memcpy(dst->data, src->data,
           (size_t)src->numel * crl_dtype_size(src->dtype));
  else
    crl__copy_into(dst, (crl_tensor *)src);
}

/* Copy rows: dst row dst_rows[j] = src row src_rows[j] for j < k, a row
 * being numel / rows elements (dst and src have `drows` / `srows` rows
 * along their flattened leading dims). dst_rows/src_rows NULL mean j.
 * Non-contiguous or other-dtype tensors go through contiguous copies. */
int crl__copy_rows(crl_tensor *dst, int64_t drows, const int64_t *dst_rows,
                   crl_tensor *src, int64_t srows, const int64_t *src_rows,
                   int64_t k) {
  crl_scope_begin();
  crl_tensor *d = dst, *s = src;
  if (!crl_tensor_is_contiguous(d) || d->dtype != src->dtype)
    d = crl__to_contig_dtype(dst, src->dtype);
  if (s && !crl_tensor_is_contiguous(s))
    s = crl__to_contig_dtype(src, s->dtype);
  if (!d || !s) {
    crl_scope_end();
    return crl_last_error_code();
  }
  size_t es = crl_dtype_size(s->dtype);
  size_t row = drows ? (size_t)(d->numel / drows) * es : 0;
  (void)srows;
  for (int64_t j = 0; j < k; j++) {
    int64_t di = dst_rows ? dst_rows[j] : j, si = src_rows ? src_rows[j] : j;
    memcpy((char *)d->data + row * (size_t)di,
           (const char *)s->data + row * (size_t)si, row);
  }
  if (d != dst) crl__copy_into(dst, d);
  crl_scope_end();
  return 0;
}

/* put buffer tensor src into td[key]: in place when the entry fits, else a
 * new entry (a copy) */
static int put(crl_td *td, const char *key, const crl_tensor *src) {
  crl_tensor *dst = crl_td_find(td, key);
  if (dst && crl__same_shape(dst, src)) {
    if (dst->storage && !dst->storage->writable)
      return crl__err(CRL_EINVAL, "batched env: entry '%s' is read-only", key);
    copy_all(dst, src);
    return 0;
  }
  crl_scope_begin();
  crl_tensor *c = crl_clone((crl_tensor *)src);
  int rc = c ? crl_td_set(td, key, c) : crl_last_error_code();
  crl_scope_end();
  return rc;
}

/* ---- setup ------------------------------------------------------------------
 */

static int keys_of(const crl_spec *s, int *n, char ***keys) {
  crl_td_keys k;
  int rc = crl_spec_keys(s, &k);
  if (rc) return rc;
  *n = k.n;
  *keys = k.keys;
  return 0;
}

static void free_keys(int n, char **keys) {
  crl_td_keys k = {n, keys};
  if (keys) crl_td_keys_free(&k);
}

static void unlink_shm(crl_tensor *t) {
  if (t && t->storage && t->storage->kind == CRL_STORAGE_SHM &&
      t->storage->path)
    shm_unlink(t->storage->path); /* the mappings stay valid */
}

static int make_buffers(crl__batched *b, int64_t n, bool shared) {
  crl_scope_begin();
  int rc = 0;
  crl_td *root = crl_spec_zero_td(b->obs, 1, &n);
  crl_td *next = crl_spec_zero_td(b->obs, 1, &n);
  crl_td *dn = crl_spec_zero_td(b->done, 1, &n);
  crl_tensor *act = crl_spec_zero(b->act, 1, &n);
  crl_tensor *rew = crl_spec_zero(b->rew, 1, &n);
  if (!root || !next || !dn || !act || !rew) rc = crl_last_error_code();
  if (!rc) rc = crl_td_set(root, "action", act);
  if (!rc) rc = crl_td_set(next, "reward", rew);
  if (!rc) rc = crl_td_update(next, dn);
  if (!rc) rc = crl_td_set_td(root, "next", next);
  if (!rc && shared) rc = crl_td_share_memory_(root);
  crl_tensor *px = NULL;
  if (!rc && b->render_h) {
    int64_t sh[CRL_MAX_DIMS + 4];
    sh[0] = n;
    memcpy(sh + 1, b->ibatch, sizeof(int64_t) * (size_t)b->ibnd);
    sh[b->ibnd + 1] = b->render_h;
    sh[b->ibnd + 2] = b->render_w;
    sh[b->ibnd + 3] = 3;
    px = shared ? crl_empty_shared(CRL_UINT8, b->ibnd + 4, sh)
                : crl_empty(CRL_UINT8, b->ibnd + 4, sh);
    if (!px)
      rc = crl_last_error_code();
    else
      memset(px->data, 0, (size_t)px->numel);
  }
  if (!rc) {
    b->buf = crl_td_retain(root);
    b->b_px = crl_tensor_retain(px);
  }
  crl_scope_end();
  if (rc) return rc;
  if (shared) {
    /* nobody opens the segments by name: unlink them now so that nothing
     * is left in /dev/shm even if this process is killed */
    crl_td_keys k;
    if (!crl_td_keys_get(b->buf, true, true, &k)) {
      for (int i = 0; i < k.n; i++)
        unlink_shm(crl_td_find(b->buf, k.keys[i]));
      crl_td_keys_free(&k);
    }
    unlink_shm(b->b_px);
  }
  b->b_action = crl_td_find(b->buf, "action");
  b->b_rew = crl_td_find(b->buf, "next/reward");
  b->b_obs = calloc((size_t)b->nobs + 1, sizeof(crl_tensor *));
  b->b_nobs = calloc((size_t)b->nobs + 1, sizeof(crl_tensor *));
  b->b_ndone = calloc((size_t)b->ndone + 1, sizeof(crl_tensor *));
  if (!b->b_obs || !b->b_nobs || !b->b_ndone)
    return crl__err(CRL_ENOMEM, "%s: out of memory", b->name);
  char key[512];
  for (int k = 0; k < b->nobs; k++) {
    b->b_obs[k] = crl_td_find(b->buf, b->obs_keys[k]);
    snprintf(key, sizeof key, "next/%s", b->obs_keys[k]);
    b->b_nobs[k] = crl_td_find(b->buf, key);
  }
  for (int k = 0; k < b->ndone; k++) {
    snprintf(key, sizeof key, "next/%s", b->done_keys[k]);
    b->b_ndone[k] = crl_td_find(b->buf, key);
  }
  return 0;
}

int crl__batched_init(crl__batched *b, const char *name, int n, crl_env *probe,
                      bool pass_obs, int nworkers, bool shared_buffers) {
  b->name = name;
  b->n = n;
  b->pass_obs = pass_obs;
  b->nworkers = nworkers;
  if (!probe->obs || !probe->act || !probe->rew || !probe->done)
    return crl__err(CRL_ESTATE, "%s: env %s made by the factory lacks specs",
                    name, crl_env_name(probe));
  if (probe->bnd + 1 > CRL_MAX_DIMS)
    return crl__err(CRL_ESHAPE,
                    "%s: envs with %d batch dims cannot be batched (at most "
                    "%d)",
                    name, probe->bnd, CRL_MAX_DIMS - 1);
  b->ibnd = probe->bnd;
  memcpy(b->ibatch, probe->batch, sizeof(int64_t) * (size_t)probe->bnd);
  b->inumel = probe->numel;
  b->obs = crl_spec_retain(probe->obs);
  b->act = crl_spec_retain(probe->act);
  b->rew = crl_spec_retain(probe->rew);
  b->done = crl_spec_retain(probe->done);
  if (probe->render_h && probe->ops->render) {
    b->render_h = probe->render_h;
    b->render_w = probe->render_w;
  }
  int rc = keys_of(b->obs, &b->nobs, &b->obs_keys);
  if (!rc) rc = keys_of(b->done, &b->ndone, &b->done_keys);
  if (!rc) rc = make_buffers(b, n, shared_buffers);
  if (rc) return rc;
  b->slots = calloc((size_t)n, sizeof *b->slots);
  if (!b->slots) return crl__err(CRL_ENOMEM, "%s: out of memory", name);
  size_t off_w = 64;
  size_t off_e = off_w + sizeof(crl__bworker) * (size_t)nworkers;
  size_t off_m = off_e + sizeof(crl__benv) * (size_t)n;
  b->shm_len = off_m + (size_t)(n * b->inumel) + 1;
  void *m = mmap(NULL, b->shm_len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return crl__err(CRL_EIO, "%s: cannot map %zu bytes of shared memory", name,
                    b->shm_len);
  b->shm = m; /* zero-filled */
  b->hdr = m;
  b->w = (crl__bworker *)((char *)m + off_w);
  b->envs = (crl__benv *)((char *)m + off_e);
  b->mask = (uint8_t *)m + off_m;
  for (int i = 0; i < nworkers; i++)
    b->w[i].err_env = -1;
  return 0;
}

int crl__batched_check_args(const char *name, int n, crl_env_factory make,
                            const crl_batched_options *o) {
  if (n < 1) return crl__err(CRL_EINVAL, "%s: n %d must be >= 1", name, n);
  if (!make) return crl__err(CRL_EINVAL, "%s: the factory is NULL", name);
  if (o->num_workers < 0 || o->timeout_ms < 0)
    return crl__err(CRL_EINVAL,
                    "%s: num_workers %d and timeout_ms %d must be >= 0", name,
                    o->num_workers, o->timeout_ms);
  if (o->backend != CRL_PARALLEL_THREADS &&
      o->backend != CRL_PARALLEL_PROCESSES)
    return crl__err(CRL_EINVAL, "%s: unknown backend %d", name,
                    (int)o->backend);
  return 0;
}

crl_env *crl__batched_make(crl__batched *b, crl_env_factory make, void *ctx,
                           int i) {
  crl_clear_error();
  crl_scope_begin();
  crl_env *e = make(ctx, i);
  crl_env_retain(e);
  crl_scope_end();
  if (!e) {
    char msg[CRL__BMSG];
    snprintf(msg, sizeof msg, "%s",
             crl_last_error()[0] ? crl_last_error()
                                 : "it returned NULL without an error");
    int code = crl_last_error_code() ? crl_last_error_code() : CRL_EINVAL;
    return CRL_ERR_NULL(code, "%s: the factory failed to make env %d: %s",
                        b->name, i, msg);
  }
  const char *which = NULL;
  if (!b->obs) return e; /* the first copy: it defines the specs */
  if (e->bnd != b->ibnd ||
      memcmp(e->batch, b->ibatch, sizeof(int64_t) * (size_t)b->ibnd))
    which = "batch size";
  else if (!e->obs || !crl_spec_equal(e->obs, b->obs))
    which = "observation spec";
  else if (!e->act || !crl_spec_equal(e->act, b->act))
    which = "action spec";
  else if (!e->rew || !crl_spec_equal(e->rew, b->rew))
    which = "reward spec";
  else if (!e->done || !crl_spec_equal(e->done, b->done))
    which = "done spec";
  for (int j = 0; !which && b->slots && j < b->n; j++)
    if (b->slots[j].env == e) which = "identity (the same env twice)";
  if (which) {
    crl_env_release(e);
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: env %d made by the factory has another %s than "
                        "env 0",
                        b->name, i, which);
  }
  return e;
}

static int add_link(crl__blink *l, crl_td *root, const char *key) {
  const char *slash = strrchr(key, '/');
  crl_td *holder = root;
  const char *leaf = key;
  if (slash) {
    char pre[512];
    size_t len = (size_t)(slash - key);
    if (len >= sizeof pre) return crl__err(CRL_EKEY, "key '%s' too long", key);
    memcpy(pre, key, len);
    pre[len] = 0;
    holder = crl__td_get_sub(root, pre);
    leaf = slash + 1;
  }
  int idx = holder ? crl__td_find_local(holder, leaf, strlen(leaf)) : -1;
  if (idx < 0 || !holder->e[idx].t)
    return crl__err(CRL_EKEY, "batched env: no entry '%s' in a copy's view",
                    key);
  l->holder = crl_td_retain(holder);
  l->idx = idx;
  l->view = crl_tensor_retain(holder->e[idx].t);
  l->key = strdup(key);
  l->root = root;
  return l->key ? 0 : crl__err(CRL_ENOMEM, "out of memory");
}

/* links: [0, nobs) root observations, then next observations, reward and
 * done keys */
int crl__batched_bind(crl__batched *b, int i, crl_env *env) {
  crl__bslot *s = &b->slots[i];
  s->env = env;
  crl_scope_begin();
  crl_td *row = crl_td_index(b->buf, i);
  s->td = crl_td_retain(row);
  crl_scope_end();
  if (!s->td) return crl_last_error_code();
  s->next = crl__td_get_sub(s->td, "next");
  int nl = 2 * b->nobs + 1 + b->ndone;
  s->links = calloc((size_t)nl, sizeof *s->links);
  if (!s->links || !s->next)
    return crl__err(CRL_ENOMEM, "%s: out of memory", b->name);
  int rc = 0;
  for (int k = 0; k < b->nobs && !rc; k++) {
    rc = add_link(&s->links[s->nlinks], s->td, b->obs_keys[k]);
    s->nlinks += !rc;
  }
  for (int k = 0; k < b->nobs && !rc; k++) {
    rc = add_link(&s->links[s->nlinks], s->next, b->obs_keys[k]);
    s->nlinks += !rc;
  }
  if (!rc) {
    rc = add_link(&s->links[s->nlinks], s->next, "reward");
    s->nlinks += !rc;
  }
  for (int k = 0; k < b->ndone && !rc; k++) {
    rc = add_link(&s->links[s->nlinks], s->next, b->done_keys[k]);
    s->nlinks += !rc;
  }
  return rc;
}

/* after an op wrote links [lo, hi): an env that replaced an entry instead
 * of writing in place gets its values copied into the buffer and the view
 * put back */
static int relink(crl__bslot *s, int lo, int hi) {
  for (int k = lo; k < hi; k++) {
    crl__blink *l = &s->links[k];
    if (l->idx < l->holder->n && l->holder->e[l->idx].t == l->view) continue;
    crl_tensor *t = crl_td_find(l->root, l->key);
    if (!t)
      return crl__err(CRL_EKEY, "env %s did not write '%s'",
                      crl_env_name(s->env), l->key);
    if (!crl__same_shape(t, l->view)) {
      char b1[160], b2[160];
      return crl__err(CRL_ESHAPE,
                      "env %s wrote '%s' of shape %s, its spec says %s",
                      crl_env_name(s->env), l->key, CRL_SHAPE_STR(t, b1),
                      CRL_SHAPE_STR(l->view, b2));
    }
    crl__copy_into(l->view, t);
    int rc = crl_td_set(l->root, l->key, l->view);
    if (rc) return rc;
    const char *slash = strrchr(l->key, '/');
    const char *leaf = slash ? slash + 1 : l->key;
    l->idx = crl__td_find_local(l->holder, leaf, strlen(leaf));
    if (l->idx < 0) l->idx = INT_MAX;
  }
  return 0;
}

/* zero the reward and done rows of copy i (inner envs where m, or all) */
static void clear_results(crl__batched *b, crl__bslot *s, const uint8_t *m) {
  int first = 2 * b->nobs;
  for (int k = first; k < s->nlinks; k++) {
    crl_tensor *v = s->links[k].view;
    size_t es = crl_dtype_size(v->dtype);
    size_t row = (size_t)(v->numel / (b->inumel ? b->inumel : 1)) * es;
    for (int64_t j = 0; j < b->inumel; j++)
      if (!m || m[j]) memset((char *)v->data + row * (size_t)j, 0, row);
  }
}

void crl__batched_run(crl__batched *b, int cmd, int i, uint64_t arg) {
  crl__benv *e = &b->envs[i];
  crl__bslot *s = &b->slots[i];
  crl_env *env = s->env;
  const uint8_t *m = b->mask + (size_t)i * (size_t)b->inumel;
  int rc = 0;
  crl_clear_error();
  crl_scope_begin();
  crl_no_grad_begin();
  switch (cmd) {
  case CRL__CMD_STEP:
    rc = env->ops->step(env, s->td, s->next);
    if (!rc) rc = relink(s, b->nobs, s->nlinks);
    break;
  case CRL__CMD_RESET:
    if (arg && !any_set(m, b->inumel)) break;
    rc = env->ops->reset(env, s->td, arg ? m : NULL);
    if (!rc) rc = relink(s, 0, b->nobs);
    break;
  case CRL__CMD_SEED: rc = crl_env_seed(env, arg + (uint64_t)i); break;
  case CRL__CMD_RENDER: {
    crl_tensor *row = b->b_px ? crl_select(b->b_px, 0, i) : NULL;
    rc = row ? env->ops->render(env, row)
             : crl__err(CRL_EUNSUPPORTED, "env %s cannot render",
                        crl_env_name(env));
    break;
  }
  case CRL__CMD_ASYNC: {
    uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);
    if (st == CRL__ENV_PENDING_STEP) {
      rc = env->ops->step(env, s->td, s->next);
      if (!rc) rc = relink(s, b->nobs, s->nlinks);
    } else if (st == CRL__ENV_PENDING_RESET) {
      /* the reset observations land in next/, with the step results */
      if (any_set(m, b->inumel)) {
        rc = env->ops->reset(env, s->next, m);
        if (!rc) rc = relink(s, b->nobs, 2 * b->nobs);
        if (!rc) clear_results(b, s, m);
      }
    } else {
      crl_no_grad_end();
      crl_scope_end();
      return; /* nothing to do */
    }
    break;
  }
  default: rc = crl__err(CRL_EINVAL, "batched env: bad command %d", cmd);
  }
  crl_no_grad_end();
  e->rc = rc;
  if (rc)
    snprintf(e->msg, sizeof e->msg, "%s",
             crl_last_error()[0] ? crl_last_error() : crl_strerror(rc));
  crl_scope_end();
  if (cmd == CRL__CMD_ASYNC) {
    atomic_store_explicit(&e->state, CRL__ENV_READY, memory_order_release);
    atomic_fetch_add_explicit(&b->hdr->ready, 1, memory_order_acq_rel);
  }
}

int crl__batched_first_error(const crl__batched *b, int lo, int hi) {
  for (int i = lo; i < hi; i++)
    if (b->envs[i].rc) return i;
  return -1;
}

int crl__batched_raise(crl__batched *b, int i, int worker) {
  crl__benv *e = &b->envs[i];
  int rc = e->rc ? e->rc : CRL_EINVAL;
  if (worker >= 0)
    return crl__err(rc, "%s: env %d (worker %d): %s", b->name, i, worker,
                    e->msg);
  return crl__err(rc, "%s: env %d: %s", b->name, i, e->msg);
}

/* ---- the batched env's ops
 * ----------------------------------------------------- */

int crl__batched_check_usable(crl__batched *b, const char *op, bool sync) {
  if (b->closed)
    return crl__err(CRL_ESTATE, "%s %s: the env is closed", b->name, op);
  if (b->broken)
    return crl__err(CRL_ESTATE, "%s %s: the env is broken: %s", b->name, op,
                    b->broken_msg);
  if (sync && b->pending)
    return crl__err(CRL_ESTATE,
                    "%s %s: %lld async requests are outstanding; receive "
                    "them (crl_batched_env_recv) first",
                    b->name, op, (long long)b->pending);
  return 0;
}

static int b_reset(crl_env *env, crl_td *td, const uint8_t *mask) {
  crl__batched *b = env->impl;
  int rc = crl__batched_check_usable(b, "reset", true);
  if (rc) return rc;
  int64_t total = (int64_t)b->n * b->inumel;
  if (mask) memcpy(b->mask, mask, (size_t)total);
  rc = b->vt->exec(b, CRL__CMD_RESET, mask != NULL);
  for (int k = 0; k < b->nobs && !rc; k++) {
    crl_tensor *src = b->b_obs[k];
    crl_tensor *dst = crl_td_find(td, b->obs_keys[k]);
    if (!mask || !dst || !crl__same_shape(dst, src)) {
      rc = put(td, b->obs_keys[k], src);
      continue;
    }
    if (dst->dtype == src->dtype && crl_tensor_is_contiguous(dst)) {
      size_t row = (size_t)(src->numel / total) * crl_dtype_size(src->dtype);
      for (int64_t j = 0; j < total; j++)
        if (mask[j])
          memcpy((char *)dst->data + row * (size_t)j,
                 (const char *)src->data + row * (size_t)j, row);
    } else {
      int64_t *rows = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
      if (!rows) return crl__err(CRL_ENOMEM, "out of memory");
      int64_t c = 0;
      for (int64_t j = 0; j < total; j++)
        if (mask[j]) rows[c++] = j;
      rc = crl__copy_rows(dst, total, rows, src, total, rows, c);
      free(rows);
    }
  }
  return rc;
}

static int b_step(crl_env *env, crl_td *td, crl_td *next) {
  crl__batched *b = env->impl;
  int rc = crl__batched_check_usable(b, "step", true);
  if (rc) return rc;
  crl_tensor *a = crl_td_find(td, "action");
  if (!a || !crl__same_shape(a, b->b_action)) {
    char s1[160], s2[160];
    return crl__err(CRL_ESHAPE, "%s step: action of shape %s, expected %s",
                    b->name, a ? CRL_SHAPE_STR(a, s1) : "(missing)",
                    CRL_SHAPE_STR(b->b_action, s2));
  }
  if (b->pass_obs)
    for (int k = 0; k < b->nobs; k++) {
      crl_tensor *t = crl_td_find(td, b->obs_keys[k]);
      if (!t || !crl__same_shape(t, b->b_obs[k]))
        return crl__err(t ? CRL_ESHAPE : CRL_EKEY,
                        "%s step: pass_observations needs '%s' of the "
                        "observation spec's shape at the root",
                        b->name, b->obs_keys[k]);
    }
  copy_all(b->b_action, a);
  if (b->pass_obs)
    for (int k = 0; k < b->nobs; k++)
      copy_all(b->b_obs[k], crl_td_find(td, b->obs_keys[k]));
  rc = b->vt->exec(b, CRL__CMD_STEP, 0);
  for (int k = 0; k < b->nobs && !rc; k++)
    rc = put(next, b->obs_keys[k], b->b_nobs[k]);
  if (!rc) rc = put(next, "reward", b->b_rew);
  for (int k = 0; k < b->ndone && !rc; k++)
    rc = put(next, b->done_keys[k], b->b_ndone[k]);
  return rc;
}

static int b_seed(crl_env *env, uint64_t seed) {
  crl__batched *b = env->impl;
  int rc = crl__batched_check_usable(b, "seed", true);
  return rc ? rc : b->vt->exec(b, CRL__CMD_SEED, seed);
}

static int b_render(crl_env *env, crl_tensor *pixels) {
  crl__batched *b = env->impl;
  int rc = crl__batched_check_usable(b, "render", true);
  if (rc) return rc;
  if (!b->b_px || !crl__same_shape(pixels, b->b_px)) {
    char s1[160];
    return crl__err(CRL_ESHAPE, "%s render: target of shape %s", b->name,
                    CRL_SHAPE_STR(pixels, s1));
  }
  rc = b->vt->exec(b, CRL__CMD_RENDER, 0);
  if (!rc) copy_all(pixels, b->b_px);
  return rc;
}

static void b_close(crl_env *env) {
  crl__batched *b = env->impl;
  if (!b->closed) b->vt->shutdown(b);
  crl__batched_free(b);
}

static const crl_env_ops serial_ops = {
    .name = "SerialEnv",
    .reset = b_reset,
    .step = b_step,
    .seed = b_seed,
    .close = b_close,
    .render = b_render,
};
static const crl_env_ops parallel_ops = {
    .name = "ParallelEnv",
    .reset = b_reset,
    .step = b_step,
    .seed = b_seed,
    .close = b_close,
    .render = b_render,
};

crl__batched *crl__batched_of(const crl_env *env, const char *op) {
  if (!crl_env_is_batched(env))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: env %s is not a SerialEnv or ParallelEnv", op,
                        env ? crl_env_name(env) : "(null)");
  return env->impl;
}

bool crl_env_is_batched(const crl_env *env) {
  return env && (env->ops == &serial_ops || env->ops == &parallel_ops);
}

static int set_specs(crl_env *env, crl__batched *b) {
  int64_t n = b->n;
  crl_scope_begin();
  crl_spec *o = crl_spec_expand(b->obs, 1, &n);
  crl_spec *a = crl_spec_expand(b->act, 1, &n);
  crl_spec *r = crl_spec_expand(b->rew, 1, &n);
  crl_spec *d = crl_spec_expand(b->done, 1, &n);
  int rc = (o && a && r && d) ? 0 : crl_last_error_code();
  if (!rc) rc = crl_env_set_observation_spec(env, o);
  if (!rc) rc = crl_env_set_action_spec(env, a);
  if (!rc) rc = crl_env_set_reward_spec(env, r);
  if (!rc) rc = crl_env_set_done_spec(env, d);
  crl_scope_end();
  if (!rc && b->render_h)
    rc = crl_env_set_render_size(env, b->render_h, b->render_w);
  return rc;
}

crl_env *crl__batched_wrap(crl__batched *b) {
  int64_t batch[CRL_MAX_DIMS];
  batch[0] = b->n;
  memcpy(batch + 1, b->ibatch, sizeof(int64_t) * (size_t)b->ibnd);
  const crl_env_ops *ops =
      strcmp(b->name, "ParallelEnv") ? &serial_ops : &parallel_ops;
  crl_env *env = crl_env_new(ops, b, b->ibnd + 1, batch);
  if (!env) {
    b->vt->shutdown(b);
    crl__batched_free(b);
    return NULL;
  }
  if (set_specs(env, b)) {
    crl__env_discard(env); /* closes b */
    return NULL;
  }
  return env;
}

void crl__batched_free(crl__batched *b) {
  if (!b) return;
  for (int i = 0; b->slots && i < b->n; i++) {
    crl__bslot *s = &b->slots[i];
    for (int k = 0; k < s->nlinks; k++) {
      crl_td_release(s->links[k].holder);
      crl_tensor_release(s->links[k].view);
      free(s->links[k].key);
    }
    free(s->links);
    crl_td_release(s->td);
    crl_env_release(s->env);
  }
  free(b->slots);
  free(b->b_obs);
  free(b->b_nobs);
  free(b->b_ndone);
  crl_td_release(b->buf);
  crl_tensor_release(b->b_px);
  free_keys(b->nobs, b->obs_keys);
  free_keys(b->ndone, b->done_keys);
  crl_spec_release(b->obs);
  crl_spec_release(b->act);
  crl_spec_release(b->rew);
  crl_spec_release(b->done);
  if (b->shm) munmap(b->shm, b->shm_len);
  free(b);
}

/* ---- public queries
 * --------------------------------------------------------------- */

int crl_batched_env_num_envs(const crl_env *env) {
  crl__batched *b = crl__batched_of(env, "batched_env_num_envs");
  return b ? b->n : crl_last_error_code();
}

int crl_batched_env_num_workers(const crl_env *env) {
  crl__batched *b = crl__batched_of(env, "batched_env_num_workers");
  return b ? b->nworkers : crl_last_error_code();
}

crl_env *crl_batched_env_get(crl_env *env, int i) {
  crl__batched *b = crl__batched_of(env, "batched_env_get");
  if (!b) return NULL;
  if (b->closed)
    return CRL_ERR_NULL(CRL_ESTATE, "%s get: the env is closed", b->name);
  if (i < 0 || i >= b->n)
    return CRL_ERR_NULL(CRL_EINDEX, "%s get: index %d out of range [0, %d)",
                        b->name, i, b->n);
  if (!b->slots[i].env)
    return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                        "%s get: env %d lives in a worker process", b->name, i);
  return b->slots[i].env;
}

int crl_batched_env_close(crl_env *env) {
  crl__batched *b = crl__batched_of(env, "batched_env_close");
  if (!b) return crl_last_error_code();
  if (b->closed) return 0;
  b->vt->shutdown(b);
  b->closed = true;
  for (int i = 0; i < b->n; i++) {
    crl_env_release(b->slots[i].env);
    b->slots[i].env = NULL;
  }
  return 0;
}

int64_t crl_batched_env_pending(const crl_env *env) {
  crl__batched *b = crl__batched_of(env, "batched_env_pending");
  return b ? b->pending : crl_last_error_code();
}
