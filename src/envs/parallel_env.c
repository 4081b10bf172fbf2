/* ParallelEnv (TorchRL's ParallelEnv, EnvPool's async mode): workers, each
 * owning a contiguous slice of the copies, on threads or in fork()ed
 * processes. The buffer, views and ops are batched.c's.
 *
 * Signalling: the caller posts a command to a worker by writing cmd/arg
 * and bumping the worker's cmd_seq; the worker runs it on its copies and
 * publishes done_seq, then bumps the shared done_count. Both sides spin
 * briefly when there are spare cores, then sleep on a futex (the words
 * live in a MAP_SHARED mapping, so the same code serves processes). The
 * caller's waits wake up periodically to notice dead worker processes
 * (waitpid) and time-outs; a worker process exits when its parent is gone
 * (PR_SET_PDEATHSIG, and a getppid() check). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batched_internal.h"

typedef struct par_env par_env;
typedef struct par_arg {
  par_env *p;
  int w;
} par_arg;

struct par_env {
  crl__batched b; /* first: the impl pointer is both */
  crl_parallel_backend backend;
  int timeout_ms;
  int spin;         /* spin iterations before sleeping */
  int *lo, *hi;     /* worker w owns copies [lo[w], hi[w]) */
  uint32_t *posted; /* last cmd_seq posted to each worker */
  pthread_t *threads;
  par_arg *args;
  int nthreads; /* started */
  pid_t *pids;  /* 0: not started or reaped */
  pid_t parent;
  crl_env_factory make;
  void *ctx;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static bool seq_reached(uint32_t have, uint32_t want) {
  return (int32_t)(have - want) >= 0;
}

/* ---- worker side
 * ------------------------------------------------------------- */

/* the next command's sequence number; `last` if the parent died (process) */
static uint32_t wait_cmd(par_env *p, crl__bworker *wk, uint32_t last,
                         bool child) {
  for (int i = 0; i < p->spin; i++) {
    uint32_t s = atomic_load_explicit(&wk->cmd_seq, memory_order_acquire);
    if (s != last) return s;
    crl__cpu_relax();
  }
  for (;;) {
    atomic_store(&wk->sleeping, 1);
    uint32_t s = atomic_load(&wk->cmd_seq);
    if (s == last) crl__futex_wait(&wk->cmd_seq, last, child ? 200 : 1000);
    atomic_store(&wk->sleeping, 0);
    s = atomic_load(&wk->cmd_seq);
    if (s != last) return s;
    if (child && getppid() != p->parent) return last;
  }
}

static void notify(crl__batched *b) {
  atomic_fetch_add(&b->hdr->done_count, 1);
  if (atomic_load(&b->hdr->main_waiting)) crl__futex_wake(&b->hdr->done_count);
}

static void run_init(par_env *p, int w) {
  crl__batched *b = &p->b;
  for (int i = p->lo[w]; i < p->hi[w]; i++) {
    crl_env *e = crl__batched_make(b, p->make, p->ctx, i);
    int rc = e ? crl__batched_bind(b, i, e) : crl_last_error_code();
    if (rc) {
      b->envs[i].rc = rc;
      snprintf(b->envs[i].msg, sizeof b->envs[i].msg, "%s", crl_last_error());
      return;
    }
  }
}

static void worker_loop(par_env *p, int w, bool child) {
  crl__batched *b = &p->b;
  crl__bworker *wk = &b->w[w];
  uint32_t last = 0;
  for (;;) {
    uint32_t seq = wait_cmd(p, wk, last, child);
    if (seq == last) return; /* the parent is gone */
    last = seq;
    int cmd = atomic_load_explicit(&wk->cmd, memory_order_relaxed);
    uint64_t arg = atomic_load_explicit(&wk->arg, memory_order_relaxed);
    if (cmd == CRL__CMD_CLOSE) {
      atomic_store(&wk->done_seq, seq);
      notify(b);
      return;
    }
    if (cmd == CRL__CMD_INIT) {
      run_init(p, w);
    } else if (cmd == CRL__CMD_ASYNC) {
      for (int i = p->lo[w]; i < p->hi[w]; i++) {
        uint32_t st = atomic_load(&b->envs[i].state);
        if (st != CRL__ENV_PENDING_STEP && st != CRL__ENV_PENDING_RESET)
          continue;
        crl__batched_run(b, CRL__CMD_ASYNC, i, arg);
        notify(b);
      }
    } else {
      for (int i = p->lo[w]; i < p->hi[w]; i++)
        crl__batched_run(b, cmd, i, arg);
    }
    /* async failures are reported per env by recv */
    if (cmd != CRL__CMD_ASYNC)
      wk->err_env = crl__batched_first_error(b, p->lo[w], p->hi[w]);
    atomic_store(&wk->done_seq, seq);
    notify(b);
  }
}

static void *thread_main(void *arg) {
  par_arg *a = arg;
  worker_loop(a->p, a->w, false);
  return NULL;
}

static void child_main(par_env *p, int w) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != p->parent) _exit(1);
  crl_set_num_threads(1); /* the pool's threads were not forked */
  worker_loop(p, w, true);
  _exit(0); /* no atexit handlers, no releases: the parent owns it all */
}

/* ---- caller side
 * ----------------------------------------------------------------- */

static void post(par_env *p, int w, int cmd, uint64_t arg) {
  crl__bworker *wk = &p->b.w[w];
  atomic_store_explicit(&wk->cmd, cmd, memory_order_relaxed);
  atomic_store_explicit(&wk->arg, arg, memory_order_relaxed);
  uint32_t s = p->posted[w] + 1;
  p->posted[w] = s;
  atomic_store(&wk->cmd_seq, s);
  if (atomic_load(&wk->sleeping)) crl__futex_wake(&wk->cmd_seq);
}

static const char *cmd_name(int cmd) {
  switch (cmd) {
  case CRL__CMD_INIT: return "making its envs";
  case CRL__CMD_STEP: return "step";
  case CRL__CMD_RESET: return "reset";
  case CRL__CMD_SEED: return "seed";
  case CRL__CMD_RENDER: return "render";
  case CRL__CMD_ASYNC: return "async requests";
  case CRL__CMD_CLOSE: return "close";
  default: return "idle";
  }
}

static int mark_broken(par_env *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int mark_broken(par_env *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->b.broken_msg, sizeof p->b.broken_msg, fmt, ap);
  va_end(ap);
  p->b.broken = true;
  return crl__err(CRL_ESTATE, "ParallelEnv: %s", p->b.broken_msg);
}

/* process backend: a worker that died (reaped here) breaks the env */
static int check_children(par_env *p, int cmd) {
  for (int w = 0; w < p->b.nworkers; w++) {
    if (p->pids[w] <= 0) continue;
    int st = 0;
    pid_t r = waitpid(p->pids[w], &st, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    pid_t pid = p->pids[w];
    p->pids[w] = 0;
    if (r > 0 && WIFSIGNALED(st))
      return mark_broken(p,
                         "worker %d (pid %d, envs %d..%d) was killed by "
                         "signal %d (%s) during %s",
                         w, (int)pid, p->lo[w], p->hi[w] - 1, WTERMSIG(st),
                         strsignal(WTERMSIG(st)), cmd_name(cmd));
    return mark_broken(p,
                       "worker %d (pid %d, envs %d..%d) exited with status %d "
                       "during %s",
                       w, (int)pid, p->lo[w], p->hi[w] - 1,
                       r > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                       cmd_name(cmd));
  }
  return 0;
}

typedef bool (*cond_fn)(par_env *p, int64_t arg);

static bool all_done(par_env *p, int64_t unused) {
  (void)unused;
  for (int w = 0; w < p->b.nworkers; w++) {
    if (p->backend == CRL_PARALLEL_PROCESSES && p->pids[w] <= 0) continue;
    if (!seq_reached(atomic_load(&p->b.w[w].done_seq), p->posted[w]))
      return false;
  }
  return true;
}

static bool enough_ready(par_env *p, int64_t want) {
  return atomic_load(&p->b.hdr->ready) >= want;
}

/* wait for cond; process backend: dead workers and time-outs break the env */
static int wait_until(par_env *p, cond_fn cond, int64_t arg, int cmd) {
  crl__bhdr *h = p->b.hdr;
  for (int i = 0; i < p->spin; i++) {
    if (cond(p, arg)) return 0;
    crl__cpu_relax();
  }
  bool procs = p->backend == CRL_PARALLEL_PROCESSES;
  double start = now_ms();
  for (;;) {
    uint32_t c = atomic_load(&h->done_count);
    if (cond(p, arg)) return 0;
    atomic_store(&h->main_waiting, 1);
    if (atomic_load(&h->done_count) == c)
      crl__futex_wait(&h->done_count, c, procs ? 20 : 1000);
    atomic_store(&h->main_waiting, 0);
    if (cond(p, arg)) return 0;
    if (!procs) continue;
    int rc = check_children(p, cmd);
    if (rc) return rc;
    if (p->timeout_ms && now_ms() - start > p->timeout_ms) {
      for (int w = 0; w < p->b.nworkers; w++)
        if (p->pids[w] > 0) kill(p->pids[w], SIGKILL);
      return mark_broken(p,
                         "a worker did not answer within %d ms during %s "
                         "(the workers were killed)",
                         p->timeout_ms, cmd_name(cmd));
    }
  }
}

static int par_exec(crl__batched *b, int cmd, uint64_t arg) {
  par_env *p = (par_env *)b;
  int rc = wait_until(p, all_done, 0, cmd); /* async passes still running */
  if (rc) return rc;
  /* thread backend: the caller runs worker 0's slice itself meanwhile
   * (worker 0's thread only serves async requests) */
  bool self = p->backend == CRL_PARALLEL_THREADS;
  for (int w = self; w < b->nworkers; w++)
    post(p, w, cmd, arg);
  if (self) {
    for (int i = p->lo[0]; i < p->hi[0]; i++)
      crl__batched_run(b, cmd, i, arg);
    b->w[0].err_env = crl__batched_first_error(b, p->lo[0], p->hi[0]);
  }
  rc = wait_until(p, all_done, 0, cmd);
  if (rc) return rc;
  for (int w = 0; w < b->nworkers; w++)
    if (b->w[w].err_env >= 0) return crl__batched_raise(b, b->w[w].err_env, w);
  return 0;
}

static int par_kick(crl__batched *b) {
  par_env *p = (par_env *)b;
  for (int w = 0; w < b->nworkers; w++)
    for (int i = p->lo[w]; i < p->hi[w]; i++) {
      uint32_t st = atomic_load(&b->envs[i].state);
      if (st == CRL__ENV_PENDING_STEP || st == CRL__ENV_PENDING_RESET) {
        post(p, w, CRL__CMD_ASYNC, 1);
        break;
      }
    }
  return 0;
}

static int par_wait_ready(crl__batched *b, int64_t want) {
  return wait_until((par_env *)b, enough_ready, want, CRL__CMD_ASYNC);
}

static void par_shutdown(crl__batched *b) {
  par_env *p = (par_env *)b;
  if (!p->posted) return;
  if (p->backend == CRL_PARALLEL_THREADS) {
    if (p->nthreads) wait_until(p, all_done, 0, CRL__CMD_CLOSE);
    for (int w = 0; w < p->nthreads; w++)
      post(p, w, CRL__CMD_CLOSE, 0);
    for (int w = 0; w < p->nthreads; w++)
      pthread_join(p->threads[w], NULL);
    p->nthreads = 0;
  } else if (p->pids) {
    for (int w = 0; w < b->nworkers; w++)
      if (p->pids[w] > 0) post(p, w, CRL__CMD_CLOSE, 0);
    double deadline = now_ms() + 2000;
    for (int w = 0; w < b->nworkers; w++) {
      while (p->pids[w] > 0) {
        int st;
        pid_t r = waitpid(p->pids[w], &st, WNOHANG);
        if (r == p->pids[w] || (r < 0 && errno != EINTR)) {
          p->pids[w] = 0;
        } else if (now_ms() > deadline) {
          kill(p->pids[w], SIGKILL);
          while (waitpid(p->pids[w], &st, 0) < 0 && errno == EINTR) {
          }
          p->pids[w] = 0;
        } else {
          struct timespec ts = {0, 200000};
          nanosleep(&ts, NULL);
        }
      }
    }
  }
  free(p->lo);
  free(p->hi);
  free(p->posted);
  free(p->threads);
  free(p->args);
  free(p->pids);
  p->lo = p->hi = NULL;
  p->posted = NULL;
  p->threads = NULL;
  p->args = NULL;
  p->pids = NULL;
}

static const crl__batched_vt par_vt = {par_exec, par_kick, par_wait_ready,
                                       par_shutdown};

/* ---- construction
 * ----------------------------------------------------------------- */

static int start_threads(par_env *p) {
  crl__batched *b = &p->b;
  for (int w = 0; w < b->nworkers; w++) {
    p->args[w] = (par_arg){p, w};
    int e = pthread_create(&p->threads[w], NULL, thread_main, &p->args[w]);
    if (e)
      return crl__err(CRL_EIO, "ParallelEnv: cannot start worker thread %d: %s",
                      w, strerror(e));
    p->nthreads++;
  }
  return 0;
}

static int start_processes(par_env *p) {
  crl__batched *b = &p->b;
  p->parent = getpid();
  fflush(NULL); /* buffered output must not be written twice */
  for (int w = 0; w < b->nworkers; w++) {
    atomic_store(&b->w[w].cmd, CRL__CMD_INIT);
    atomic_store(&b->w[w].cmd_seq, 1);
    p->posted[w] = 1;
    pid_t pid = fork();
    if (pid == 0) child_main(p, w);
    if (pid < 0) {
      p->posted[w] = 0;
      return crl__err(CRL_EIO, "ParallelEnv: cannot fork worker %d: %s", w,
                      strerror(errno));
    }
    p->pids[w] = pid;
  }
  int rc = wait_until(p, all_done, 0, CRL__CMD_INIT);
  if (rc) return rc;
  for (int w = 0; w < b->nworkers; w++) {
    int i = crl__batched_first_error(b, p->lo[w], p->hi[w]);
    if (i >= 0) {
      crl__benv *e = &b->envs[i];
      return crl__err(e->rc, "ParallelEnv: worker %d (pid %d): %s", w,
                      (int)p->pids[w], e->msg);
    }
  }
  return 0;
}

crl_env *crl_parallel_env_new(int n, crl_env_factory make, void *ctx,
                              const crl_batched_options *opt) {
  crl_batched_options o = {0};
  if (opt) o = *opt;
  if (crl__batched_check_args("ParallelEnv", n, make, &o)) return NULL;
  int ncpu = crl__online_cpus();
  int nw = o.num_workers ? o.num_workers : ncpu;
  if (nw > n) nw = n;
  par_env *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "ParallelEnv: out of memory");
  crl__batched *b = &p->b;
  b->vt = &par_vt;
  b->name = "ParallelEnv";
  b->n = n;
  p->backend = o.backend;
  p->timeout_ms = o.timeout_ms;
  p->make = make;
  p->ctx = ctx;
  /* spin only when every busy thread can have a core (with threads, the
   * caller works as worker 0 in synchronous calls) */
  int busy = o.backend == CRL_PARALLEL_THREADS ? nw : nw + 1;
  p->spin = busy <= ncpu ? 2000 : 0; /* ~50 us of pause */
  p->lo = calloc((size_t)nw, sizeof(int));
  p->hi = calloc((size_t)nw, sizeof(int));
  p->posted = calloc((size_t)nw, sizeof(uint32_t));
  p->threads = calloc((size_t)nw, sizeof(pthread_t));
  p->args = calloc((size_t)nw, sizeof(par_arg));
  p->pids = calloc((size_t)nw, sizeof(pid_t));
  int rc = (p->lo && p->hi && p->posted && p->threads && p->args && p->pids)
               ? 0
               : crl__err(CRL_ENOMEM, "ParallelEnv: out of memory");
  for (int w = 0, start = 0; w < nw && !rc; w++) {
    int len = n / nw + (w < n % nw);
    p->lo[w] = start;
    p->hi[w] = start + len;
    start += len;
  }
  crl_env *first = rc ? NULL : crl__batched_make(b, make, ctx, 0);
  if (!rc && !first) rc = crl_last_error_code();
  bool procs = o.backend == CRL_PARALLEL_PROCESSES;
  if (!rc)
    rc = crl__batched_init(b, "ParallelEnv", n, first, o.pass_observations, nw,
                           procs);
  if (procs) {
    crl_env_release(first); /* the workers make their own */
    first = NULL;
    if (!rc) rc = start_processes(p);
  } else {
    if (!rc) {
      rc = crl__batched_bind(b, 0, first);
      first = NULL;
    }
    for (int i = 1; i < n && !rc; i++) {
      crl_env *e = crl__batched_make(b, make, ctx, i);
      rc = e ? crl__batched_bind(b, i, e) : crl_last_error_code();
    }
    if (!rc) rc = start_threads(p);
  }
  if (rc) {
    char msg[CRL__BMSG];
    snprintf(msg, sizeof msg, "%s", crl_last_error());
    crl_env_release(first);
    par_shutdown(b);
    crl__batched_free(b);
    crl__err(rc, "%s", msg);
    return NULL;
  }
  return crl__batched_wrap(b);
}
