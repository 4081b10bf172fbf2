/* ParallelEnv: bit-identical to SerialEnv (threads and processes, any
 * worker count), async send/recv delivering every env, worker errors and
 * dead or hung worker processes surfacing as errors (never a hang: the
 * whole program runs under alarm()), and clean closing (threads joined,
 * processes reaped, nothing left in /dev/shm). */
#include <errno.h>
#include <sys/wait.h>

#include "batched_test_util.h"

static classic_ctx cartpole3 = {"CartPole-v1", {.num_envs = 3}};

static crl_td *rollout(crl_env *env, uint64_t seed, int64_t steps) {
  if (crl_env_seed(env, seed)) return NULL;
  return crl_env_rollout(
      env, &(crl_rollout_options){.max_steps = steps, .auto_reset = true});
}

static void check_same_as_serial(classic_ctx *c, int n, int workers,
                                 crl_parallel_backend backend, int64_t steps) {
  crl_env *ser = crl_serial_env_new(n, classic_factory, c, NULL);
  CRL_CHECK_PTR(ser);
  crl_batched_options o = {.num_workers = workers, .backend = backend};
  crl_env *par = crl_parallel_env_new(n, classic_factory, c, &o);
  CRL_CHECK_PTR(par);
  assert_string_equal(crl_env_name(par), "ParallelEnv");
  assert_int_equal(crl_batched_env_num_workers(par), workers);
  assert_true(crl_spec_equal(crl_env_observation_spec(ser),
                             crl_env_observation_spec(par)));
  crl_td *a = rollout(ser, 7, steps);
  crl_td *b = rollout(par, 7, steps);
  CRL_CHECK_PTR(a);
  CRL_CHECK_PTR(b);
  assert_true(crl_td_equal(a, b));
  /* some episodes ended and were reset on the way */
  crl_tensor *d = crl_td_get(a, "next/done");
  bool any = false;
  for (int64_t i = 0; i < d->numel; i++)
    any |= ((uint8_t *)d->data)[i];
  if (steps >= 100) assert_true(any);
  /* reseeding reproduces */
  crl_td *b2 = rollout(par, 7, steps);
  assert_true(crl_td_equal(b, b2));
}

static void test_threads_match_serial(void **state) {
  (void)state;
  check_same_as_serial(&cartpole3, 4, 2, CRL_PARALLEL_THREADS, 150);
  check_same_as_serial(&cartpole3, 5, 3, CRL_PARALLEL_THREADS, 150);
}

static void test_processes_match_serial(void **state) {
  (void)state;
  check_same_as_serial(&cartpole3, 4, 2, CRL_PARALLEL_PROCESSES, 150);
  check_same_as_serial(&cartpole3, 3, 3, CRL_PARALLEL_PROCESSES, 120);
}

static void test_pixels_match_serial(void **state) {
  (void)state;
  classic_ctx c = {
      "Pendulum-v1",
      {.from_pixels = true, .render_width = 20, .render_height = 16}};
  check_same_as_serial(&c, 3, 2, CRL_PARALLEL_THREADS, 8);
  check_same_as_serial(&c, 3, 2, CRL_PARALLEL_PROCESSES, 8);
  crl_batched_options o = {.num_workers = 2, .backend = CRL_PARALLEL_PROCESSES};
  crl_env *env = crl_parallel_env_new(3, classic_factory, &c, &o);
  CRL_CHECK_PTR(env);
  CRL_CHECK_PTR(crl_env_reset(env, NULL));
  crl_tensor *px = crl_env_render(env);
  CRL_CHECK_PTR(px);
  assert_shape(px, 4, (int64_t[]){3, 16, 20, 3});
  assert_null(crl_batched_env_get(env, 0));
  assert_int_equal(crl_last_error_code(), CRL_EUNSUPPORTED);
}

/* async: every env gets its reset and K steps, whatever the order results
 * arrive in; each env's trajectory equals the SerialEnv's */
static void async_run(crl_env *env, int n, int K, float *final_obs) {
  int counts[16] = {0}, results[16] = {0};
  CRL_CHECK_OK(crl_env_seed(env, 21));
  CRL_CHECK_OK(crl_batched_env_reset_send(env, NULL));
  int total = 0;
  while (crl_batched_env_pending(env) > 0) {
    crl_scope_begin();
    crl_td *r = crl_batched_env_recv(env, 1);
    CRL_CHECK_PTR(r);
    int64_t k = crl_td_batch_size(r)[0];
    assert_true(k >= 1);
    const int64_t *ids = crl_td_get(r, "env_index")->data;
    const float *obs = crl_td_get(r, "observation")->data;
    int64_t send[16];
    int ns = 0;
    for (int64_t j = 0; j < k; j++) {
      int id = (int)ids[j];
      results[id]++;
      total++;
      memcpy(final_obs + 4 * id, obs + 4 * j, 16);
      if (counts[id] < K) send[ns++] = id;
    }
    if (ns) {
      crl_td *s = crl_td_new(1, (int64_t[]){ns});
      crl_tensor *a = crl_zeros(CRL_INT64, 2, (int64_t[]){ns, 2});
      for (int j = 0; j < ns; j++) {
        int id = (int)send[j];
        ((int64_t *)a->data)[2 * j + (id + counts[id]) % 2] = 1;
        counts[id]++;
      }
      CRL_CHECK_OK(crl_td_set(s, "action", a));
      CRL_CHECK_OK(crl_td_set(
          s, "env_index", crl_from_array(CRL_INT64, 1, (int64_t[]){ns}, send)));
      CRL_CHECK_OK(crl_batched_env_step_send(env, s));
    }
    crl_scope_end();
  }
  assert_int_equal(total, n * (K + 1));
  for (int i = 0; i < n; i++)
    assert_int_equal(results[i], K + 1);
}

static void test_async_delivers_every_env(void **state) {
  (void)state;
  enum { N = 6, K = 25 };
  classic_ctx c = {"CartPole-v1", {0}};
  crl_env *ser = crl_serial_env_new(N, classic_factory, &c, NULL);
  float ref[4 * N], got[4 * N];
  async_run(ser, N, K, ref);
  for (int backend = 0; backend < 2; backend++) {
    crl_batched_options o = {.num_workers = 3, .backend = backend};
    crl_env *par = crl_parallel_env_new(N, classic_factory, &c, &o);
    CRL_CHECK_PTR(par);
    memset(got, 0, sizeof got);
    async_run(par, N, K, got);
    assert_memory_equal(ref, got, sizeof ref);
    /* the sync API works again once everything is received */
    CRL_CHECK_PTR(crl_env_reset(par, NULL));
  }
}

static void check_worker_error(crl_parallel_backend backend) {
  crl_batched_options o = {.num_workers = 2, .backend = backend};
  crl_env *env = crl_parallel_env_new(4, tiny_factory, NULL, &o);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_PTR(td);
  crl_td_update(td, tiny_action_td(4, 1.0f));
  CRL_CHECK_OK(crl_env_step(env, td));
  crl_tensor *before = crl_clone(crl_td_get(td, "next/observation"));
  float *a = crl_td_get(td, "action")->data;
  a[3] = 7.0f;
  assert_int_equal(crl_env_step(env, td), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("ParallelEnv: env 3 (worker 1): tiny env 3: boom "
                     "(action 7)");
  assert_true(crl_equal(before, crl_td_get(td, "next/observation")));
  a[3] = 0.0f;
  CRL_CHECK_OK(crl_env_step(env, td));
  /* a copy replacing its entries still reaches the caller */
  a[0] = a[1] = a[2] = a[3] = 6.0f;
  CRL_CHECK_OK(crl_env_step(env, td));
  const float *ob = crl_td_get(td, "next/observation")->data;
  assert_true(ob[0] == 9.0f && ob[6] == 7.0f); /* env 3 missed a step */
}

static void test_worker_error_threads(void **state) {
  (void)state;
  check_worker_error(CRL_PARALLEL_THREADS);
}

static void test_worker_error_processes(void **state) {
  (void)state;
  check_worker_error(CRL_PARALLEL_PROCESSES);
}

static bool no_children(void) {
  int st;
  return waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
}

static void test_worker_process_dies(void **state) {
  (void)state;
  crl_batched_options o = {.num_workers = 2, .backend = CRL_PARALLEL_PROCESSES};
  crl_env *env = crl_parallel_env_new(4, tiny_factory, NULL, &o);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  crl_td_update(td, tiny_action_td(4, 1.0f));
  ((float *)crl_td_get(td, "action")->data)[2] = 9.0f; /* SIGKILL */
  assert_int_equal(crl_env_step(env, td), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("ParallelEnv: worker 1 (pid ");
  CRL_ASSERT_ERR_HAS("envs 2..3) was killed by signal 9");
  assert_int_equal(crl_env_step(env, td), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("the env is broken: worker 1");
  CRL_CHECK_OK(crl_batched_env_close(env));
  assert_true(no_children());
  assert_int_equal(shm_files_of_self(), 0);
}

static void test_worker_timeout(void **state) {
  (void)state;
  crl_batched_options o = {
      .num_workers = 2, .backend = CRL_PARALLEL_PROCESSES, .timeout_ms = 1000};
  crl_env *env = crl_parallel_env_new(2, tiny_factory, NULL, &o);
  CRL_CHECK_PTR(env);
  crl_td *td = crl_env_reset(env, NULL);
  crl_td_update(td, tiny_action_td(2, 0.0f));
  ((float *)crl_td_get(td, "action")->data)[0] = 8.0f; /* sleeps 30 s */
  assert_int_equal(crl_env_step(env, td), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("did not answer within 1000 ms during step");
  CRL_CHECK_OK(crl_batched_env_close(env));
  assert_true(no_children());
}

static void test_factory_errors(void **state) {
  (void)state;
  int bad = 3;
  crl_batched_options o = {.num_workers = 2, .backend = CRL_PARALLEL_PROCESSES};
  assert_null(crl_parallel_env_new(4, failing_factory, &bad, &o));
  assert_int_equal(crl_last_error_code(), CRL_EIO);
  CRL_ASSERT_ERR_HAS("ParallelEnv: worker 1 (pid ");
  CRL_ASSERT_ERR_HAS("failed to make env 3: factory: no simulator license "
                     "for env 3");
  assert_true(no_children());
  o.backend = CRL_PARALLEL_THREADS;
  assert_null(crl_parallel_env_new(4, failing_factory, &bad, &o));
  CRL_ASSERT_ERR_HAS("failed to make env 3: factory: no simulator license");
  o.backend = (crl_parallel_backend)5;
  assert_null(crl_parallel_env_new(4, tiny_factory, NULL, &o));
  CRL_ASSERT_ERR_HAS("ParallelEnv: unknown backend 5");
  o = (crl_batched_options){.num_workers = -1};
  assert_null(crl_parallel_env_new(4, tiny_factory, NULL, &o));
  CRL_ASSERT_ERR_HAS("num_workers -1");
  bad = 0; /* index 0 fails in the caller (specs probe) */
  o = (crl_batched_options){.backend = CRL_PARALLEL_PROCESSES};
  assert_null(crl_parallel_env_new(2, failing_factory, &bad, &o));
  CRL_ASSERT_ERR_HAS("failed to make env 0");
}

static void test_close_leaves_nothing(void **state) {
  (void)state;
  int threads0 = thread_count();
  crl_batched_options o = {.num_workers = 3};
  crl_env *env = crl_parallel_env_new(6, classic_factory, &cartpole3, &o);
  CRL_CHECK_PTR(env);
  assert_int_equal(thread_count(), threads0 + 3);
  crl_td *r = rollout(env, 1, 20);
  CRL_CHECK_PTR(r);
  crl_env_retain(env);
  crl_scope_end(); /* the test's scope: td and env refs */
  crl_scope_begin();
  crl_env_release(env); /* last reference: closes */
  assert_int_equal(thread_count(), threads0);

  o.backend = CRL_PARALLEL_PROCESSES;
  env = crl_parallel_env_new(6, classic_factory, &cartpole3, &o);
  CRL_CHECK_PTR(env);
  assert_false(no_children());
  assert_int_equal(shm_files_of_self(), 0); /* unlinked once mapped */
  CRL_CHECK_PTR(rollout(env, 1, 20));
  /* async requests left in flight are drained by close */
  CRL_CHECK_OK(crl_batched_env_reset_send(env, NULL));
  CRL_CHECK_OK(crl_batched_env_close(env));
  assert_true(no_children());
  assert_int_equal(shm_files_of_self(), 0);
  assert_int_equal(thread_count(), threads0);
  assert_null(crl_env_reset(env, NULL));
  assert_int_equal(crl_last_error_code(), CRL_ESTATE);
  CRL_ASSERT_ERR_HAS("ParallelEnv reset: the env is closed");
}

int main(void) {
  alarm(240); /* a hang fails the test instead of blocking CI */
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_threads_match_serial),
      CRL_TEST(test_processes_match_serial),
      CRL_TEST(test_pixels_match_serial),
      CRL_TEST(test_async_delivers_every_env),
      CRL_TEST(test_worker_error_threads),
      CRL_TEST(test_worker_error_processes),
      CRL_TEST(test_worker_process_dies),
      CRL_TEST(test_worker_timeout),
      CRL_TEST(test_factory_errors),
      CRL_TEST(test_close_leaves_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
