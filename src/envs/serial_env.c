/* SerialEnv (TorchRL's SerialEnv): n copies stepped one after another in
 * the calling thread. The buffer, views and ops are batched.c's. */
#include <stdlib.h>

#include "batched_internal.h"

static int serial_exec(crl__batched *b, int cmd, uint64_t arg) {
  /* every copy runs (as the workers of a ParallelEnv would); the lowest
   * failing one is reported */
  for (int i = 0; i < b->n; i++)
    crl__batched_run(b, cmd, i, arg);
  int bad = crl__batched_first_error(b, 0, b->n);
  return bad < 0 ? 0 : crl__batched_raise(b, bad, -1);
}

static int serial_kick(crl__batched *b) {
  for (int i = 0; i < b->n; i++) {
    uint32_t st = atomic_load(&b->envs[i].state);
    if (st == CRL__ENV_PENDING_STEP || st == CRL__ENV_PENDING_RESET)
      crl__batched_run(b, CRL__CMD_ASYNC, i, 0);
  }
  return 0;
}

static int serial_wait(crl__batched *b, int64_t want) {
  (void)b;
  (void)want; /* requests ran when sent */
  return 0;
}

static void serial_shutdown(crl__batched *b) { (void)b; }

static const crl__batched_vt serial_vt = {serial_exec, serial_kick, serial_wait,
                                          serial_shutdown};

crl_env *crl_serial_env_new(int n, crl_env_factory make, void *ctx,
                            const crl_batched_options *opt) {
  crl_batched_options o = {0};
  if (opt) o = *opt;
  if (crl__batched_check_args("SerialEnv", n, make, &o)) return NULL;
  crl__batched *b = calloc(1, sizeof *b);
  if (!b) return CRL_ERR_NULL(CRL_ENOMEM, "SerialEnv: out of memory");
  b->vt = &serial_vt;
  b->name = "SerialEnv";
  b->n = n;
  crl_env *first = crl__batched_make(b, make, ctx, 0);
  int rc = first ? 0 : crl_last_error_code();
  if (!rc)
    rc = crl__batched_init(b, "SerialEnv", n, first, o.pass_observations, 0,
                           false);
  if (!rc) {
    rc = crl__batched_bind(b, 0, first);
    first = NULL; /* owned by the slot */
  }
  for (int i = 1; i < n && !rc; i++) {
    crl_env *e = crl__batched_make(b, make, ctx, i);
    rc = e ? crl__batched_bind(b, i, e) : crl_last_error_code();
  }
  if (rc) {
    crl_env_release(first);
    crl__batched_free(b);
    return NULL;
  }
  return crl__batched_wrap(b);
}
