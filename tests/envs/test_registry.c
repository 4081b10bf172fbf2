/* The env registry: built-ins by name with options, option errors, user
 * registrations, batching options and plugins loaded with dlopen (the
 * plugin libraries are built by CMakeLists.txt, see "env plugins"). */
#include <unistd.h>

#include "test_util.h"

#include "crl/envs_batched.h"
#include "crl/envs_classic.h"
#include "crl/registry.h"

static void test_list_builtins(void **state) {
  (void)state;
  crl_td_keys k;
  CRL_CHECK_OK(crl_env_list(&k));
  const char *want[] = {"CartPole-v1",    "Pendulum-v1",
                        "MountainCar-v0", "MountainCarContinuous-v0",
                        "Acrobot-v1",     "PendulumStateless"};
  assert_true(k.n >= 6);
  for (int i = 0; i < 6; i++)
    assert_string_equal(k.keys[i], want[i]);
  crl_td_keys_free(&k);
  assert_true(strstr(crl_env_description("CartPole-v1"), "cart-pole"));
  CRL_CHECK_OK(crl_env_options("Pendulum-v1", &k));
  assert_string_equal(k.keys[0], "num_envs");
  assert_string_equal(k.keys[7], "g");
  assert_string_equal(k.keys[k.n - 1], "backend");
  crl_td_keys_free(&k);
  assert_int_equal(crl_env_options("Nope", &k), CRL_EKEY);
  assert_null(crl_env_description("Nope"));
  CRL_ASSERT_ERR_HAS("unknown env 'Nope'");
}

static void test_make_with_options(void **state) {
  (void)state;
  crl_env *env = crl_env_make("CartPole-v1",
                              "from_pixels=1,num_envs=8,max_episode_steps=100");
  CRL_CHECK_PTR(env);
  assert_string_equal(crl_env_name(env), "CartPole-v1");
  assert_int_equal(crl_env_numel(env), 8);
  crl_spec *px = crl_spec_get(crl_env_observation_spec(env), "pixels");
  CRL_CHECK_PTR(px);
  assert_int_equal(crl_spec_shape(px)[1], 64);
  CRL_CHECK_OK(crl_check_env_specs(env, 5, 0));
  /* the time limit: a rollout of a well-behaved env truncates at 100 */
  crl_env *e2 =
      crl_env_make("MountainCar-v0", " num_envs = 2 , max_episode_steps=7 ,");
  CRL_CHECK_PTR(e2);
  crl_td *r = crl_env_rollout(
      e2, &(crl_rollout_options){.max_steps = 7, .auto_reset = true});
  CRL_CHECK_PTR(r);
  crl_tensor *tr = crl_td_get(r, "next/truncated"); /* [2, 7, 1] */
  assert_int_equal(((uint8_t *)tr->data)[6], 1);
  assert_int_equal(((uint8_t *)tr->data)[5], 0);
  /* seed (integers in any base), g for Pendulum, booleans */
  crl_env *p = crl_env_make("Pendulum-v1", "g=9.81,seed=0x10,pixels_only=no");
  CRL_CHECK_PTR(p);
  crl_env *q = crl_pendulum_new(&(crl_classic_options){.g = 9.81, .seed = 16});
  assert_true(crl_td_equal(crl_env_reset(p, NULL), crl_env_reset(q, NULL)));
  CRL_CHECK_PTR(crl_env_make("Acrobot-v1", NULL));
  CRL_CHECK_PTR(crl_env_make("MountainCarContinuous-v0", ""));
  CRL_CHECK_PTR(crl_env_make("PendulumStateless", "num_envs=3"));
}

static void test_unknown_name(void **state) {
  (void)state;
  assert_null(crl_env_make("CartPole-v0", NULL));
  assert_int_equal(crl_last_error_code(), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("env_make: unknown env 'CartPole-v0' (known: "
                     "CartPole-v1, Pendulum-v1, MountainCar-v0, "
                     "MountainCarContinuous-v0, Acrobot-v1, "
                     "PendulumStateless");
  assert_null(crl_env_make(NULL, NULL));
  CRL_ASSERT_ERR_HAS("unknown env '(null)'");
}

static void test_bad_options(void **state) {
  (void)state;
  assert_null(crl_env_make("CartPole-v1", "num_env=3"));
  assert_int_equal(crl_last_error_code(), CRL_EINVAL);
  CRL_ASSERT_ERR_HAS("env_make CartPole-v1: unknown option 'num_env' (valid: "
                     "num_envs, max_episode_steps, from_pixels, pixels_only, "
                     "render_width, render_height, seed, serial, parallel, "
                     "workers, backend)");
  assert_null(crl_env_make("CartPole-v1", "g=3"));
  CRL_ASSERT_ERR_HAS("unknown option 'g'");
  assert_null(crl_env_make("CartPole-v1", "num_envs=2,from_pixels"));
  CRL_ASSERT_ERR_HAS("malformed option 'from_pixels' in "
                     "\"num_envs=2,from_pixels\" (expected key=value)");
  assert_null(crl_env_make("CartPole-v1", " =3"));
  CRL_ASSERT_ERR_HAS("malformed option '=3'");
  assert_null(crl_env_make("CartPole-v1", "seed=1, seed=2"));
  CRL_ASSERT_ERR_HAS("option 'seed' is given twice");
  assert_null(crl_env_make("CartPole-v1", "num_envs=abc"));
  CRL_ASSERT_ERR_HAS("CartPole-v1: option num_envs=abc is not an integer");
  assert_null(crl_env_make("CartPole-v1", "from_pixels=maybe"));
  CRL_ASSERT_ERR_HAS("option from_pixels=maybe is not a boolean");
  assert_null(crl_env_make("Pendulum-v1", "g=1.5x"));
  CRL_ASSERT_ERR_HAS("option g=1.5x is not a number");
  /* values the env itself refuses */
  assert_null(crl_env_make("CartPole-v1", "num_envs=-2"));
  CRL_ASSERT_ERR_HAS("num_envs -2 must be >= 0");
  assert_null(crl_env_make("CartPole-v1", "render_width=5000"));
  CRL_ASSERT_ERR_HAS("render_width 5000");
}

/* ---- user registrations ----------------------------------------------------
 */

static int made;
static crl_env *my_maker(void *ctx, const crl_env_kwargs *kw) {
  made++;
  int64_t n;
  if (crl_env_kwargs_int(kw, "n", 0, &n)) return NULL;
  assert_string_equal(crl_env_kwargs_str(kw, "tag", "none"),
                      ctx ? (const char *)ctx : "none");
  assert_false(crl_env_kwargs_has(kw, "serial"));
  return crl_cartpole_new(&(crl_classic_options){.num_envs = n});
}
static crl_env *null_maker(void *ctx, const crl_env_kwargs *kw) {
  (void)ctx;
  (void)kw;
  return NULL;
}

static void test_register_user_env(void **state) {
  (void)state;
  static const char *const opts[] = {"n", "tag", NULL};
  crl_env_registration r = {"MyCart-v0", my_maker, NULL, opts, "mine"};
  CRL_CHECK_OK(crl_env_register(&r));
  assert_int_equal(crl_env_register(&r), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'MyCart-v0' is already registered");
  crl_td_keys k;
  CRL_CHECK_OK(crl_env_list(&k));
  assert_string_equal(k.keys[k.n - 1], "MyCart-v0");
  crl_td_keys_free(&k);
  crl_env *env = crl_env_make("MyCart-v0", "n=5");
  CRL_CHECK_PTR(env);
  assert_int_equal(crl_env_numel(env), 5);
  assert_null(crl_env_make("MyCart-v0", "num_envs=5"));
  CRL_ASSERT_ERR_HAS("unknown option 'num_envs' (valid: n, tag, serial");
  /* batching options apply to user envs too; the maker never sees them */
  made = 0;
  env = crl_env_make("MyCart-v0", "n=2,serial=3");
  CRL_CHECK_PTR(env);
  assert_int_equal(made, 3);
  assert_int_equal(crl_env_batch_size(env)[0], 3);
  assert_int_equal(crl_env_batch_size(env)[1], 2);
  /* bad registrations */
  crl_env_registration bad = {"My Cart", my_maker, NULL, NULL, NULL};
  assert_int_equal(crl_env_register(&bad), CRL_EINVAL);
  bad.name = "X-v0";
  bad.make = NULL;
  assert_int_equal(crl_env_register(&bad), CRL_EINVAL);
  static const char *const shadow[] = {"parallel", NULL};
  bad = (crl_env_registration){"X-v0", my_maker, NULL, shadow, NULL};
  assert_int_equal(crl_env_register(&bad), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("option 'parallel'");
  static const char *const twice[] = {"a", "a", NULL};
  bad.options = twice;
  assert_int_equal(crl_env_register(&bad), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("option 'a' repeats");
  assert_int_equal(crl_env_register(&(crl_env_registration){
                       "CartPole-v1", my_maker, NULL, NULL, NULL}),
                   CRL_EKEY);
  /* a maker returning NULL without an error */
  CRL_CHECK_OK(crl_env_register(
      &(crl_env_registration){"Null-v0", null_maker, NULL, NULL, NULL}));
  assert_null(crl_env_make("Null-v0", NULL));
  CRL_ASSERT_ERR_HAS("env_make Null-v0: the maker returned NULL");
  /* unregister */
  CRL_CHECK_OK(crl_env_unregister("MyCart-v0"));
  CRL_CHECK_OK(crl_env_unregister("Null-v0"));
  assert_int_equal(crl_env_unregister("MyCart-v0"), CRL_EKEY);
  assert_int_equal(crl_env_unregister("CartPole-v1"), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("'CartPole-v1' is built in");
  assert_null(crl_env_make("MyCart-v0", NULL));
  CRL_ASSERT_ERR_HAS("unknown env 'MyCart-v0'");
}

static void test_batching_options(void **state) {
  (void)state;
  crl_env *env = crl_env_make("CartPole-v1", "num_envs=4,parallel=2,workers=2");
  CRL_CHECK_PTR(env);
  assert_string_equal(crl_env_name(env), "ParallelEnv");
  assert_int_equal(crl_batched_env_num_workers(env), 2);
  assert_int_equal(crl_env_numel(env), 8);
  CRL_CHECK_OK(crl_check_env_specs(env, 10, 1));
  env = crl_env_make("CartPole-v1", "parallel=2,backend=processes,seed=3");
  CRL_CHECK_PTR(env);
  crl_env *ser = crl_env_make("CartPole-v1", "serial=2,seed=3");
  CRL_CHECK_PTR(ser);
  assert_true(crl_td_equal(crl_env_reset(env, NULL), crl_env_reset(ser, NULL)));
  /* copy i is seeded with seed + i */
  crl_env *solo = crl_env_make("CartPole-v1", "seed=4");
  crl_td *a = crl_env_reset(ser, NULL), *b = crl_env_reset(solo, NULL);
  CRL_CHECK_OK(crl_env_seed(ser, 3));
  CRL_CHECK_OK(crl_env_seed(solo, 4));
  a = crl_env_reset(ser, NULL);
  b = crl_env_reset(solo, NULL);
  assert_memory_equal((float *)crl_td_get(a, "observation")->data + 4,
                      crl_td_get(b, "observation")->data, 16);
  assert_null(crl_env_make("CartPole-v1", "serial=2,parallel=2"));
  CRL_ASSERT_ERR_HAS("serial and parallel exclude each other");
  assert_null(crl_env_make("CartPole-v1", "workers=2"));
  CRL_ASSERT_ERR_HAS("workers and backend need parallel=K");
  assert_null(crl_env_make("CartPole-v1", "serial=2,workers=2"));
  CRL_ASSERT_ERR_HAS("workers and backend need parallel=K");
  assert_null(crl_env_make("CartPole-v1", "parallel=2,backend=fibers"));
  CRL_ASSERT_ERR_HAS("option backend=fibers is not threads or processes");
  assert_null(crl_env_make("CartPole-v1", "parallel=0"));
  CRL_ASSERT_ERR_HAS("serial/parallel=0 must be in 1..2^20");
  assert_null(crl_env_make("CartPole-v1", "serial=2,num_envs=x"));
  CRL_ASSERT_ERR_HAS("failed to make env 0: CartPole-v1: option num_envs=x");
}

/* ---- plugins
 * ------------------------------------------------------------------- */

static void test_plugin(void **state) {
  (void)state;
  assert_null(crl_env_make("PluginCounter-v0", NULL));
  CRL_CHECK_OK(crl_env_load_plugin(CRL_TEST_PLUGIN));
  CRL_CHECK_OK(crl_env_load_plugin(CRL_TEST_PLUGIN)); /* again: no-op */
  crl_td_keys k;
  CRL_CHECK_OK(crl_env_list(&k));
  int found = 0;
  for (int i = 0; i < k.n; i++)
    found += !strcmp(k.keys[i], "PluginCounter-v0");
  crl_td_keys_free(&k);
  assert_int_equal(found, 1);
  assert_string_equal(crl_env_description("PluginCounter-v0"),
                      "a counter env from a plugin");
  crl_env *env = crl_env_make("PluginCounter-v0", "start=2,step_size=0.5");
  CRL_CHECK_PTR(env);
  CRL_CHECK_OK(crl_check_env_specs(env, 12, 0));
  crl_td *td = crl_env_reset(env, NULL);
  CRL_CHECK_OK(
      crl_td_set(td, "action", crl_full(CRL_INT64, 1, (int64_t[]){1}, 2)));
  CRL_CHECK_OK(crl_env_step(env, td));
  ASSERT_NEAR(crl_tensor_get_flat(crl_td_get(td, "next/observation"), 0), 2.5,
              0);
  assert_null(crl_env_make("PluginCounter-v0", "start=x"));
  CRL_ASSERT_ERR_HAS("PluginCounter-v0: option start=x is not a number");
  /* plugin envs batch like any other */
  env = crl_env_make("PluginCounter-v0", "parallel=3,start=1");
  CRL_CHECK_PTR(env);
  CRL_CHECK_OK(crl_check_env_specs(env, 12, 0));
}

static void test_plugin_errors(void **state) {
  (void)state;
  assert_int_equal(crl_env_load_plugin("/nonexistent/libnothing.so"), CRL_EIO);
  CRL_ASSERT_ERR_HAS(
      "env_load_plugin: cannot load '/nonexistent/libnothing.so'");
  assert_int_equal(crl_env_load_plugin(""), CRL_EINVAL);
  assert_int_equal(crl_env_load_plugin(CRL_TEST_PLUGIN_NOENTRY), CRL_EKEY);
  CRL_ASSERT_ERR_HAS("has no symbol crl_env_plugin_register");
  assert_int_equal(crl_env_load_plugin(CRL_TEST_PLUGIN_FAIL), CRL_EIO);
  CRL_ASSERT_ERR_HAS("crl_env_plugin_register of '");
  CRL_ASSERT_ERR_HAS("failed: PluginCounter: simulator not installed");
}

int main(void) {
  alarm(120);
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_list_builtins),
      CRL_TEST(test_make_with_options),
      CRL_TEST(test_unknown_name),
      CRL_TEST(test_bad_options),
      CRL_TEST(test_register_user_env),
      CRL_TEST(test_batching_options),
      CRL_TEST(test_plugin),
      CRL_TEST(test_plugin_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
