/* Internals of the batched envs (batched.c, serial_env.c, parallel_env.c).
 * Not installed.
 *
 * A batched env keeps one TensorDict buffer `buf` of batch [n, inner...]
 * holding "action", the observation entries and "next/..." (observation
 * entries, reward, done keys). Copy i works on a view of row i (its own
 * TensorDict, so its reset/step write straight into the buffer); the main
 * thread scatters the actions into the buffer and gathers the results from
 * it. In the process backend the buffer lives in shared memory.
 *
 * Control state that the workers and the caller share (command sequence
 * numbers, per-copy results and messages, the reset mask, async states)
 * sits in one MAP_SHARED anonymous mapping, so it works across fork(). */
#ifndef CRL_ENVS_BATCHED_INTERNAL_H
#define CRL_ENVS_BATCHED_INTERNAL_H

#include "crl/envs_batched.h"
#include "env_internal.h"

#define CRL__BMSG 400

/* commands run on copies */
enum {
  CRL__CMD_NONE = 0,
  CRL__CMD_INIT,   /* process backend: make the worker's copies */
  CRL__CMD_STEP,   /* step every copy */
  CRL__CMD_RESET,  /* reset (arg 1: where the mask says; 0: all) */
  CRL__CMD_SEED,   /* copy i gets seed arg + i */
  CRL__CMD_RENDER, /* render into the shared frame buffer */
  CRL__CMD_ASYNC,  /* run the copies' pending async requests */
  CRL__CMD_CLOSE,
};

/* async state of a copy */
enum {
  CRL__ENV_IDLE = 0,
  CRL__ENV_PENDING_STEP,
  CRL__ENV_PENDING_RESET,
  CRL__ENV_READY,
};

typedef struct crl__bhdr {
  _Atomic uint32_t done_count;   /* bumped whenever a worker finishes */
  _Atomic uint32_t main_waiting; /* the caller sleeps on done_count */
  _Atomic int64_t ready;         /* async results ready */
} crl__bhdr;

typedef struct crl__bworker {
  _Atomic uint32_t cmd_seq;  /* the caller bumps it to post cmd */
  _Atomic uint32_t sleeping; /* the worker sleeps on cmd_seq */
  _Atomic int32_t cmd;       /* written before cmd_seq */
  int32_t err_env; /* lowest failing copy of the last command, or -1 */
  _Atomic uint64_t arg;
  char pad_[40];
  _Atomic uint32_t done_seq; /* the last command finished */
  int32_t rc;                /* code of err_env's failure */
} __attribute__((aligned(64))) crl__bworker;

typedef struct crl__benv {
  _Atomic uint32_t state; /* CRL__ENV_* */
  int32_t rc;             /* result of the copy's last command */
  char msg[CRL__BMSG];    /* its error message */
} crl__benv;

/* a tensor of a copy's TensorDict that must stay a view of the buffer */
typedef struct crl__blink {
  crl_td *holder;   /* the (nested) TensorDict holding it (retained) */
  int idx;          /* its entry index there */
  crl_tensor *view; /* the buffer view (retained) */
  char *key;        /* full key in the copy's TensorDict */
  crl_td *root;     /* borrowed: the copy's td or next */
} crl__blink;

typedef struct crl__bslot {
  crl_env *env; /* owned; NULL in the caller of the process backend */
  crl_td *td;   /* view of row i of buf (retained) */
  crl_td *next; /* borrowed from td */
  int nlinks;
  crl__blink *links;
} crl__bslot;

typedef struct crl__batched crl__batched;

/* What differs between SerialEnv and ParallelEnv. */
typedef struct crl__batched_vt {
  /* run cmd on every copy and wait; 0 or the lowest failing copy's error
   * (message set) */
  int (*exec)(crl__batched *b, int cmd, uint64_t arg);
  /* start the pending async requests */
  int (*kick)(crl__batched *b);
  /* wait until hdr->ready >= want */
  int (*wait_ready)(crl__batched *b, int64_t want);
  /* stop the workers (the copies are released by crl__batched_free) */
  void (*shutdown)(crl__batched *b);
} crl__batched_vt;

struct crl__batched {
  const crl__batched_vt *vt;
  const char *name; /* "SerialEnv", "ParallelEnv" */
  int n;
  int ibnd; /* the copies' batch */
  int64_t ibatch[CRL_MAX_DIMS];
  int64_t inumel;
  crl_spec *obs, *act, *rew, *done; /* the copies' specs (retained) */
  bool pass_obs;
  crl_td *buf; /* [n, inner...] (retained) */
  int nobs, ndone;
  char **obs_keys, **done_keys; /* leaf keys of the specs */
  crl_tensor *b_action;         /* borrowed from buf */
  crl_tensor **b_obs, **b_nobs, **b_ndone, *b_rew;
  crl_tensor *b_px; /* render frames [n, inner..., H, W, 3] or NULL */
  int render_h, render_w;
  crl__bslot *slots; /* n */
  /* shared control */
  void *shm;
  size_t shm_len;
  crl__bhdr *hdr;
  crl__bworker *w;
  int nworkers;
  crl__benv *envs;
  uint8_t *mask;   /* n * inumel */
  int64_t pending; /* async requests sent, not received (caller side) */
  bool closed, broken;
  char broken_msg[CRL__BMSG];
};

/* Specs, buffer and control region of b from copy `probe`'s specs.
 * shared_buffers: buffers in shared memory (process backend). */
CRL_INTERNAL int crl__batched_init(crl__batched *b, const char *name, int n,
                                   crl_env *probe, bool pass_obs, int nworkers,
                                   bool shared_buffers);
/* Validate the constructors' arguments (message names `name`). */
CRL_INTERNAL int crl__batched_check_args(const char *name, int n,
                                         crl_env_factory make,
                                         const crl_batched_options *o);
/* Make copy i with the factory (a reference the caller owns, not scope-owned;
 * crl__batched_bind takes it over) and check its
 * specs against b's. NULL + error naming i. */
CRL_INTERNAL crl_env *crl__batched_make(crl__batched *b, crl_env_factory make,
                                        void *ctx, int i);
/* Give copy i its views of the buffer (takes over env's reference). */
CRL_INTERNAL int crl__batched_bind(crl__batched *b, int i, crl_env *env);
/* Run cmd on copy i in this thread; the result goes to b->envs[i]. */
CRL_INTERNAL void crl__batched_run(crl__batched *b, int cmd, int i,
                                   uint64_t arg);
/* Lowest failing copy in [lo, hi) (-1 if none). */
CRL_INTERNAL int crl__batched_first_error(const crl__batched *b, int lo,
                                          int hi);
/* Raise copy i's recorded error as the caller's error, naming i (and the
 * worker when >= 0). Returns the code. */
CRL_INTERNAL int crl__batched_raise(crl__batched *b, int i, int worker);
/* The batched env over b (impl b, freed by close) with the expanded specs.
 * On failure b is freed. */
CRL_INTERNAL crl_env *crl__batched_wrap(crl__batched *b);
/* Free everything b owns (after vt->shutdown), then b itself. */
CRL_INTERNAL void crl__batched_free(crl__batched *b);
/* CRL_ESTATE if b is closed or broken, or (sync) async requests are
 * outstanding; the message names b and op. */
CRL_INTERNAL int crl__batched_check_usable(crl__batched *b, const char *op,
                                           bool sync);
CRL_INTERNAL bool crl__same_shape(const crl_tensor *a, const crl_tensor *b);
/* dst row dst_rows[j] = src row src_rows[j] for j < k (NULL: j); a row is
 * numel / drows elements of dst (src rows have the same size). Works for
 * any layout and converts dtypes (contiguous copies when needed). */
CRL_INTERNAL int crl__copy_rows(crl_tensor *dst, int64_t drows,
                                const int64_t *dst_rows, crl_tensor *src,
                                int64_t srows, const int64_t *src_rows,
                                int64_t k);
/* b of a batched env, or NULL with CRL_EINVAL naming op. */
CRL_INTERNAL crl__batched *crl__batched_of(const crl_env *env, const char *op);

/* ---- waiting ---------------------------------------------------------------
 * Futex wait/wake on a 32-bit word (works across fork on MAP_SHARED
 * memory), with a short spin first when there are spare cores. */
CRL_INTERNAL void crl__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                                  int timeout_ms);
CRL_INTERNAL void crl__futex_wake(_Atomic uint32_t *addr);
CRL_INTERNAL void crl__cpu_relax(void);
CRL_INTERNAL int crl__online_cpus(void);

#endif
