/* crl/envs_batched.h — batched environments: TorchRL's SerialEnv and
 * ParallelEnv, plus an asynchronous send/recv mode in the style of EnvPool
 * (TorchRL's AsyncEnvPool).
 *
 * A batched env holds n copies of an env made by a factory and is itself a
 * crl_env: batch size [n, inner batch...] where the inner batch is the
 * copies' (e.g. n copies of CartPole-v1 with num_envs=512 give [n, 512]),
 * and its specs are the copies' specs expanded by [n]. Every copy must have
 * the same specs as copy 0. Steps, resets (partial ones too: an "_reset"
 * entry over [n, inner...]), random steps, rollouts and spec checks work as
 * for any env (crl/env.h).
 *
 *   - SerialEnv steps the copies one after another in the calling thread.
 *   - ParallelEnv gives each of its workers a contiguous slice of the
 *     copies. Workers are threads by default (in synchronous calls the
 *     calling thread steps worker 0's slice itself, worker 0's thread
 *     serving async requests only); the process backend forks one
 *     process per worker (for envs that are not thread-safe): the copies are
 *     made in the worker processes and exchange data through shared-memory
 *     TensorDicts. A synchronous step scatters the actions into a shared
 *     buffer, wakes the workers and gathers their results: nothing is
 *     allocated per step.
 *
 * For the same seed a SerialEnv and a ParallelEnv (either backend, any
 * worker count) give bit-identical results. crl_env_seed(env, s) seeds copy
 * i with s + i (and the batched env's own generator, used for random
 * actions, with s). Copies are not reseeded at construction.
 *
 * Errors: a copy's failing reset/step makes the call fail with CRL's code
 * and a message naming the copy ("ParallelEnv: env 3 (worker 1): ..."
 * followed by the copy's own message); when several fail, the lowest index
 * is reported. The TensorDict passed in is left unchanged, but the other
 * copies have stepped: reset before going on. A worker process that dies (or
 * does not answer within timeout_ms) makes the call fail with CRL_ESTATE
 * naming the worker and how it ended; the env is then broken and every later
 * call fails until it is released. Closing (crl_batched_env_close, or the
 * last crl_env_release) stops and joins every thread / reaps every process
 * and frees the shared memory.
 *
 * Ownership: constructors return a new reference (crl/tensor.h rule); the
 * factory's envs are owned by the batched env. */
#ifndef CRL_ENVS_BATCHED_H
#define CRL_ENVS_BATCHED_H

#include "crl/env.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Makes copy `index` (0..n-1): returns a new env (a new reference, as a
 * constructor such as crl_cartpole_new returns) or NULL with an error.
 * Thread backend and SerialEnv: called n times in the calling thread, in
 * order. Process backend: called once in the calling thread with index 0
 * (to read the specs; that env is released before the workers start), then
 * in each worker process for its slice. */
typedef crl_env *(*crl_env_factory)(void *ctx, int index);

typedef enum crl_parallel_backend {
  CRL_PARALLEL_THREADS = 0,   /* one thread per worker (default) */
  CRL_PARALLEL_PROCESSES = 1, /* fork()ed worker processes, shared memory */
} crl_parallel_backend;

/* Zero-initialised options (or NULL) give the defaults. */
typedef struct crl_batched_options {
  /* ParallelEnv workers: 0 means min(n, online CPUs); at most n. */
  int num_workers;
  crl_parallel_backend backend;
  /* Before each step, also copy the observation entries of the input's root
   * into the copies (envs that read their state from the TensorDict, like
   * crl_pendulum_stateless_new). Default off: copies get "action" only. */
  bool pass_observations;
  /* Process backend: a worker that takes longer than this to answer one
   * command is killed and the call fails (CRL_ESTATE). 0 means no limit. */
  int timeout_ms;
} crl_batched_options;

/* Errors: CRL_EINVAL for n < 1, a NULL factory, negative options or an
 * unknown backend; CRL_ESHAPE if [n, inner batch] exceeds CRL_MAX_DIMS;
 * CRL_EINVAL naming the copy and the spec whose specs differ from copy 0's
 * or the same env returned twice; the factory's own error (prefixed with
 * the copy's index) if it fails; CRL_EIO if threads, processes or shared
 * memory cannot be made. */
CRL_API crl_env *crl_serial_env_new(int n, crl_env_factory make, void *ctx,
                                    const crl_batched_options *opt);
CRL_API crl_env *crl_parallel_env_new(int n, crl_env_factory make, void *ctx,
                                      const crl_batched_options *opt);

/* True for SerialEnv and ParallelEnv. */
CRL_API bool crl_env_is_batched(const crl_env *env);
/* Number of copies n (CRL_EINVAL if env is not batched). */
CRL_API int crl_batched_env_num_envs(const crl_env *env);
/* Workers of a ParallelEnv; 0 for a SerialEnv (CRL_EINVAL if not
 * batched). */
CRL_API int crl_batched_env_num_workers(const crl_env *env);
/* Copy i, BORROWED (SerialEnv and thread backend; CRL_EUNSUPPORTED for the
 * process backend, whose copies live in other processes; CRL_EINDEX). Do
 * not step it directly while the batched env is in use. */
CRL_API crl_env *crl_batched_env_get(crl_env *env, int i);
/* Stop the workers, release the copies and free the shared memory now
 * (TorchRL's env.close()); later calls fail with CRL_ESTATE. Releasing the
 * last reference closes too. Idempotent. */
CRL_API int crl_batched_env_close(crl_env *env);

/* ---- asynchronous mode (EnvPool's send/recv, TorchRL's AsyncEnvPool) -----
 * Copies are addressed by their index along dim 0 ("env_index"). A copy
 * takes one request at a time: sending to a copy whose request is in flight
 * or whose result has not been received is CRL_ESTATE. While requests are
 * in flight or results wait, the synchronous calls (step, reset, seed,
 * render) fail with CRL_ESTATE. A SerialEnv runs each request as it is
 * sent; a ParallelEnv's workers run them while the caller goes on. */

/* Reset copies: td NULL resets all of them; otherwise td's batch starts
 * with [k] and it holds "env_index" (int64 [k], distinct indices in [0, n))
 * and optionally "_reset" (bool, k x inner-batch elements) to reset only
 * some of each copy's inner envs. */
CRL_API int crl_batched_env_reset_send(crl_env *env, crl_td *td);
/* Step copies: td's batch starts with [k]; "env_index" int64 [k] and
 * "action" [k, inner batch..., action shape...] (checked like a step's
 * action: shape, dtype, NaN, discrete range), plus the observation entries
 * when pass_observations is set. */
CRL_API int crl_batched_env_step_send(crl_env *env, crl_td *td);
/* Wait until at least min_get copies have results (min_get <= 0 means 1;
 * it is capped at the number of requests outstanding) and return all the
 * results ready, in increasing env_index order: a new TensorDict of batch
 * [k] with "env_index" (int64 [k]) and each copy's latest outputs at the
 * root: the observation entries, "reward", "done", "terminated",
 * "truncated" ([k, inner batch..., ...]; after a reset: the reset
 * observation, reward 0 and done flags false for the envs reset). Feed it
 * to the policy and back to crl_batched_env_step_send. If a request failed,
 * recv fails with the copy's message and that copy becomes idle (the other
 * results stay ready). CRL_ESTATE when nothing is outstanding. */
CRL_API crl_td *crl_batched_env_recv(crl_env *env, int64_t min_get);
/* Requests sent and not yet received. */
CRL_API int64_t crl_batched_env_pending(const crl_env *env);

#ifdef __cplusplus
}
#endif
#endif
