/* The intra-op thread pool (pthreads) and BLAS thread settings.
 *
 * Written by hand because it is small and must give fixed-chunk,
 * thread-count-independent scheduling; OpenMP's runtime would also clash
 * with ThreadSanitizer and with BLIS's own threading. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
  pthread_mutex_t mu;      /* one parallel_for at a time */
  pthread_mutex_t wake_mu; /* guards the fields below */
  pthread_cond_t wake, done;
  pthread_t *threads;
  int nthreads; /* workers (excluding the caller) */
  unsigned generation;
  bool stop;
  /* current job */
  void (*fn)(void *, int64_t);
  void *ctx;
  int64_t n;
  _Atomic int64_t next;
  int active; /* workers still in the job */
} pool_t;

static pool_t pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
                      .wake_mu = PTHREAD_MUTEX_INITIALIZER,
                      .wake = PTHREAD_COND_INITIALIZER,
                      .done = PTHREAD_COND_INITIALIZER};
static int want_threads = 0; /* 0: not yet read from the environment */
static int blas_threads = 1;
static _Thread_local bool in_task;

static void run_items(void) {
  for (;;) {
    int64_t i = atomic_fetch_add(&pool.next, 1);
    if (i >= pool.n) break;
    pool.fn(pool.ctx, i);
  }
}

static void *worker(void *arg) {
  in_task = true;
  /* the generation current when the pool (re)started: a worker started by
   * a resize after earlier jobs must not run a stale job */
  unsigned seen = (unsigned)(uintptr_t)arg;
  pthread_mutex_lock(&pool.wake_mu);
  for (;;) {
    while (!pool.stop && pool.generation == seen)
      pthread_cond_wait(&pool.wake, &pool.wake_mu);
    if (pool.stop) break;
    seen = pool.generation;
    pthread_mutex_unlock(&pool.wake_mu);
    run_items();
    pthread_mutex_lock(&pool.wake_mu);
    if (--pool.active == 0) pthread_cond_signal(&pool.done);
  }
  pthread_mutex_unlock(&pool.wake_mu);
  return NULL;
}

static void pool_stop(void) {
  pthread_mutex_lock(&pool.wake_mu);
  pool.stop = true;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.wake_mu);
  for (int i = 0; i < pool.nthreads; i++)
    pthread_join(pool.threads[i], NULL);
  free(pool.threads);
  pool.threads = NULL;
  pool.nthreads = 0;
  pool.stop = false;
}

static void pool_atexit(void) {
  pthread_mutex_lock(&pool.mu);
  if (pool.nthreads) pool_stop();
  pthread_mutex_unlock(&pool.mu);
}

/* start workers so that nthreads == want - 1; caller holds pool.mu */
static void pool_resize(int want) {
  static bool registered;
  if (pool.nthreads == want - 1) return;
  if (pool.nthreads) pool_stop();
  if (want <= 1) return;
  pool.threads = malloc(sizeof(pthread_t) * (size_t)(want - 1));
  if (!pool.threads) return;
  for (int i = 0; i < want - 1; i++) {
    if (pthread_create(&pool.threads[i], NULL, worker,
                       (void *)(uintptr_t)pool.generation) != 0)
      break;
    pool.nthreads++;
  }
  if (!registered) {
    atexit(pool_atexit);
    registered = true;
  }
}

static int env_threads(void) {
  const char *e = getenv("CRL_NUM_THREADS");
  int n = e ? atoi(e) : 1;
  return n >= 1 && n <= 256 ? n : 1;
}

int crl_set_num_threads(int n) {
  if (n < 1 || n > 256)
    return crl__err(CRL_EINVAL, "set_num_threads: %d is not in [1, 256]", n);
  pthread_mutex_lock(&pool.mu);
  want_threads = n;
  pthread_mutex_unlock(&pool.mu);
  return 0;
}

int crl_get_num_threads(void) {
  int n = __atomic_load_n(&want_threads, __ATOMIC_RELAXED);
  if (n == 0) {
    n = env_threads();
    __atomic_store_n(&want_threads, n, __ATOMIC_RELAXED);
  }
  return n;
}

void crl_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx) {
  if (n <= 0) return;
  int want = crl_get_num_threads();
  if (n == 1 || want <= 1 || in_task || pthread_mutex_trylock(&pool.mu)) {
    /* serial: single item, one thread, nested, or the pool is busy with
     * another caller thread */
    for (int64_t i = 0; i < n; i++)
      fn(ctx, i);
    return;
  }
  pool_resize(want);
  if (pool.nthreads == 0) {
    pthread_mutex_unlock(&pool.mu);
    for (int64_t i = 0; i < n; i++)
      fn(ctx, i);
    return;
  }
  pthread_mutex_lock(&pool.wake_mu);
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  atomic_store(&pool.next, 0);
  pool.active = pool.nthreads;
  pool.generation++;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.wake_mu);
  in_task = true;
  run_items();
  in_task = false;
  pthread_mutex_lock(&pool.wake_mu);
  while (pool.active > 0)
    pthread_cond_wait(&pool.done, &pool.wake_mu);
  pthread_mutex_unlock(&pool.wake_mu);
  pthread_mutex_unlock(&pool.mu);
}

/* ---- BLAS threads --------------------------------------------------------
 * Declared here rather than through the BLAS headers, which differ between
 * backends. */
#if defined(CRL_BLAS_BLIS)
void bli_thread_set_num_threads(long n);
static void set_blas(int n) { bli_thread_set_num_threads(n); }
const char *crl_blas_backend(void) { return "blis"; }
#elif defined(CRL_BLAS_OPENBLAS)
void openblas_set_num_threads(int n);
static void set_blas(int n) { openblas_set_num_threads(n); }
const char *crl_blas_backend(void) { return "openblas"; }
#else
static void set_blas(int n) { (void)n; }
const char *crl_blas_backend(void) { return "none"; }
#endif

int crl_set_blas_threads(int n) {
  if (n < 1 || n > 256)
    return crl__err(CRL_EINVAL, "set_blas_threads: %d is not in [1, 256]", n);
  blas_threads = n;
  set_blas(n);
  return 0;
}

int crl_get_blas_threads(void) { return blas_threads; }

__attribute__((constructor)) static void blas_init(void) { set_blas(1); }
