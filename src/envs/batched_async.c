/* The asynchronous mode of the batched envs (EnvPool's send/recv, TorchRL's
 * AsyncEnvPool): requests are validated and written into the shared buffer
 * here, run by serial_env.c / parallel_env.c (vt->kick), and collected into
 * a TensorDict by recv. */
#include <math.h>
#include <stdlib.h>

#include "batched_internal.h"

/* ---- async send/recv
 * ----------------------------------------------------------------- */

/* env_index of td into ids (k of them), checked: int64 [k] with k = the
 * batch's first dim, in range, distinct, idle. */
static int parse_ids(crl__batched *b, const char *op, crl_td *td, int64_t *ids,
                     int64_t *k) {
  if (crl_td_batch_ndim(td) < 1)
    return crl__err(CRL_ESHAPE,
                    "%s %s: the TensorDict needs a batch dim [k] (one row "
                    "per env sent)",
                    b->name, op);
  int64_t kk = crl_td_batch_size(td)[0];
  crl_tensor *t = crl_td_get(td, "env_index");
  if (!t) return crl_last_error_code();
  char s1[160];
  if (t->dtype != CRL_INT64 || t->ndim != 1 || t->shape[0] != kk)
    return crl__err(
        CRL_ESHAPE, "%s %s: env_index must be int64 [%lld], got %s %s", b->name,
        op, (long long)kk, crl_dtype_name(t->dtype), CRL_SHAPE_STR(t, s1));
  if (kk > b->n)
    return crl__err(CRL_ESHAPE, "%s %s: %lld rows for %d envs", b->name, op,
                    (long long)kk, b->n);
  int rc = crl_tensor_to_array(t, CRL_INT64, ids, kk);
  if (rc) return rc;
  for (int64_t j = 0; j < kk; j++) {
    if (ids[j] < 0 || ids[j] >= b->n)
      return crl__err(CRL_EINDEX,
                      "%s %s: env_index %lld (row %lld) out of range [0, %d)",
                      b->name, op, (long long)ids[j], (long long)j, b->n);
    for (int64_t q = 0; q < j; q++)
      if (ids[q] == ids[j])
        return crl__err(CRL_EINDEX, "%s %s: env_index %lld appears twice",
                        b->name, op, (long long)ids[j]);
    if (atomic_load(&b->envs[ids[j]].state) != CRL__ENV_IDLE)
      return crl__err(CRL_ESTATE,
                      "%s %s: env %lld has a request in flight or a result "
                      "not received",
                      b->name, op, (long long)ids[j]);
  }
  *k = kk;
  return 0;
}

/* check a tensor's shape is [k] ++ shape of `like` without its dim 0 */
static int check_rows(crl__batched *b, const char *op, const char *key,
                      const crl_tensor *t, int64_t k, const crl_tensor *like) {
  bool ok = t->ndim == like->ndim && t->shape[0] == k &&
            !memcmp(t->shape + 1, like->shape + 1,
                    sizeof(int64_t) * (size_t)(t->ndim - 1));
  if (ok) return 0;
  char s1[160], s2[160];
  int64_t want[CRL_MAX_DIMS];
  memcpy(want, like->shape, sizeof want);
  want[0] = k;
  return crl__err(CRL_ESHAPE, "%s %s: '%s' of shape %s, expected %s", b->name,
                  op, key, CRL_SHAPE_STR(t, s1),
                  crl_shape_str(like->ndim, want, s2, sizeof s2));
}

static int validate_action(crl__batched *b, const char *op, crl_tensor *a) {
  if (a->dtype != crl_spec_dtype(b->act))
    return crl__err(CRL_EDTYPE, "%s %s: action of dtype %s, the spec says %s",
                    b->name, op, crl_dtype_name(a->dtype),
                    crl_dtype_name(crl_spec_dtype(b->act)));
  crl_spec_kind kd = crl_spec_kind_of(b->act);
  if (crl_dtype_is_float(a->dtype))
    for (int64_t i = 0; i < a->numel; i++)
      if (isnan(crl_tensor_get_flat(a, i)))
        return crl__err(CRL_ENOTFINITE, "%s %s: action element %lld is NaN",
                        b->name, op, (long long)i);
  if (kd != CRL_SPEC_BOUNDED && kd != CRL_SPEC_UNBOUNDED &&
      !crl_spec_is_in(b->act, a))
    return crl__err(CRL_EINVAL, "%s %s: action is not in the action spec (%s)",
                    b->name, op, crl_spec_kind_name(kd));
  return 0;
}

static int send_common(crl__batched *b, int64_t k, const int64_t *ids,
                       uint32_t state) {
  for (int64_t j = 0; j < k; j++)
    atomic_store_explicit(&b->envs[ids[j]].state, state, memory_order_release);
  b->pending += k;
  return b->vt->kick(b);
}

int crl_batched_env_reset_send(crl_env *env, crl_td *td) {
  const char *op = "reset_send";
  crl__batched *b = crl__batched_of(env, "batched_env_reset_send");
  if (!b) return crl_last_error_code();
  int rc = crl__batched_check_usable(b, op, false);
  if (rc) return rc;
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)b->n);
  if (!ids) return crl__err(CRL_ENOMEM, "out of memory");
  int64_t k = 0;
  crl_tensor *r = td ? crl_td_find(td, "_reset") : NULL;
  if (!td) {
    for (int i = 0; i < b->n && !rc; i++) {
      ids[k++] = i;
      if (atomic_load(&b->envs[i].state) != CRL__ENV_IDLE)
        rc = crl__err(CRL_ESTATE,
                      "%s %s: env %d has a request in flight or a result "
                      "not received",
                      b->name, op, i);
    }
  } else {
    rc = parse_ids(b, op, td, ids, &k);
    if (!rc && r && r->numel != k * b->inumel) {
      char s1[160];
      rc = crl__err(CRL_ESHAPE,
                    "%s %s: '_reset' of shape %s must have %lld elements "
                    "(%lld envs x %lld)",
                    b->name, op, CRL_SHAPE_STR(r, s1),
                    (long long)(k * b->inumel), (long long)k,
                    (long long)b->inumel);
    }
  }
  uint8_t *m = NULL;
  if (!rc && r) {
    m = malloc((size_t)(k * b->inumel) + 1);
    rc = m ? crl_tensor_to_array(r, CRL_BOOL, m, k * b->inumel)
           : crl__err(CRL_ENOMEM, "out of memory");
  }
  if (!rc) {
    for (int64_t j = 0; j < k; j++) {
      uint8_t *dst = b->mask + (size_t)ids[j] * (size_t)b->inumel;
      if (m)
        memcpy(dst, m + j * b->inumel, (size_t)b->inumel);
      else
        memset(dst, 1, (size_t)b->inumel);
    }
    rc = send_common(b, k, ids, CRL__ENV_PENDING_RESET);
  }
  free(m);
  free(ids);
  return rc;
}

int crl_batched_env_step_send(crl_env *env, crl_td *td) {
  const char *op = "step_send";
  crl__batched *b = crl__batched_of(env, "batched_env_step_send");
  if (!b) return crl_last_error_code();
  if (!td)
    return crl__err(CRL_EINVAL, "%s %s: TensorDict is NULL", b->name, op);
  int rc = crl__batched_check_usable(b, op, false);
  if (rc) return rc;
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)b->n);
  if (!ids) return crl__err(CRL_ENOMEM, "out of memory");
  int64_t k = 0;
  rc = parse_ids(b, op, td, ids, &k);
  crl_tensor *a = rc ? NULL : crl_td_get(td, "action");
  if (!rc && !a) rc = crl_last_error_code();
  if (!rc) rc = check_rows(b, op, "action", a, k, b->b_action);
  if (!rc) rc = validate_action(b, op, a);
  for (int q = 0; b->pass_obs && q < b->nobs && !rc; q++) {
    crl_tensor *t = crl_td_get(td, b->obs_keys[q]);
    rc = t ? check_rows(b, op, b->obs_keys[q], t, k, b->b_obs[q])
           : crl_last_error_code();
  }
  if (!rc) rc = crl__copy_rows(b->b_action, b->n, ids, a, k, NULL, k);
  for (int q = 0; b->pass_obs && q < b->nobs && !rc; q++)
    rc = crl__copy_rows(b->b_obs[q], b->n, ids, crl_td_find(td, b->obs_keys[q]),
                        k, NULL, k);
  if (!rc) rc = send_common(b, k, ids, CRL__ENV_PENDING_STEP);
  free(ids);
  return rc;
}

/* result tensor [k, rest of src's dims] from rows ids of buffer src */
static int gather_rows(crl_td *out, const char *key, crl_tensor *src, int n,
                       const int64_t *ids, int64_t k) {
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, src->shape, sizeof shape);
  shape[0] = k;
  crl_tensor *t = crl_empty(src->dtype, src->ndim, shape);
  if (!t) return crl_last_error_code();
  int rc = crl__copy_rows(t, k, NULL, src, n, ids, k);
  return rc ? rc : crl_td_set(out, key, t);
}

crl_td *crl_batched_env_recv(crl_env *env, int64_t min_get) {
  crl__batched *b = crl__batched_of(env, "batched_env_recv");
  if (!b) return NULL;
  if (crl__batched_check_usable(b, "recv", false)) return NULL;
  if (!b->pending)
    return CRL_ERR_NULL(
        CRL_ESTATE, "%s recv: no request is outstanding (send first)", b->name);
  int64_t want =
      min_get < 1 ? 1 : (min_get > b->pending ? b->pending : min_get);
  if (b->vt->wait_ready(b, want)) return NULL;
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)b->n);
  if (!ids) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory");
  int64_t k = 0;
  for (int i = 0; i < b->n; i++) {
    if (atomic_load_explicit(&b->envs[i].state, memory_order_acquire) !=
        CRL__ENV_READY)
      continue;
    if (b->envs[i].rc) { /* report the failure; keep the others ready */
      atomic_store(&b->envs[i].state, CRL__ENV_IDLE);
      atomic_fetch_sub(&b->hdr->ready, 1);
      b->pending--;
      free(ids);
      crl__batched_raise(b, i, -1);
      b->envs[i].rc = 0;
      return NULL;
    }
    ids[k++] = i;
  }
  crl_scope_begin();
  crl_td *out = crl_td_new(1, &k);
  crl_tensor *ti = out ? crl_from_array(CRL_INT64, 1, &k, ids) : NULL;
  int rc = ti ? crl_td_set(out, "env_index", ti) : crl_last_error_code();
  for (int q = 0; q < b->nobs && !rc; q++)
    rc = gather_rows(out, b->obs_keys[q], b->b_nobs[q], b->n, ids, k);
  if (!rc) rc = gather_rows(out, "reward", b->b_rew, b->n, ids, k);
  for (int q = 0; q < b->ndone && !rc; q++)
    rc = gather_rows(out, b->done_keys[q], b->b_ndone[q], b->n, ids, k);
  if (!rc)
    for (int64_t j = 0; j < k; j++)
      atomic_store(&b->envs[ids[j]].state, CRL__ENV_IDLE);
  if (!rc) {
    atomic_fetch_sub(&b->hdr->ready, k);
    b->pending -= k;
  }
  free(ids);
  if (rc) {
    crl_scope_end();
    return NULL;
  }
  return crl__td_scope_end_keep(out);
}
