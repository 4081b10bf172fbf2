/* The env registry: built-in classic-control envs and user makers by name,
 * "key=value,..." options, batching options (serial/parallel/workers/
 * backend) and plugins loaded with dlopen. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "crl/envs_batched.h"
#include "crl/envs_classic.h"
#include "crl/registry.h"
#include "env_internal.h"

typedef struct reg_entry {
  char *name;
  crl_env_maker make;
  void *ctx;
  int nopt;
  char **options;
  char *desc;
  bool builtin;
} reg_entry;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *reg;
static int nreg, capreg;
static bool builtins_done;
static void **plugins; /* dlopen handles kept loaded */
static int nplugins;

static const char *const batch_opts[] = {"serial", "parallel", "workers",
                                         "backend", NULL};

struct crl_env_kwargs {
  const char *env;
  int n;
  char **keys, **vals;
};

/* ---- kwargs
 * ------------------------------------------------------------------ */

static const char *kw_find(const crl_env_kwargs *kw, const char *key) {
  for (int i = 0; kw && key && i < kw->n; i++)
    if (!strcmp(kw->keys[i], key)) return kw->vals[i];
  return NULL;
}

bool crl_env_kwargs_has(const crl_env_kwargs *kw, const char *key) {
  return kw_find(kw, key) != NULL;
}

const char *crl_env_kwargs_str(const crl_env_kwargs *kw, const char *key,
                               const char *def) {
  const char *v = kw_find(kw, key);
  return v ? v : def;
}

static int bad_value(const crl_env_kwargs *kw, const char *key, const char *v,
                     const char *what) {
  return crl__err(CRL_EINVAL, "%s: option %s=%s is not %s",
                  kw ? kw->env : "env_make", key, v, what);
}

int crl_env_kwargs_int(const crl_env_kwargs *kw, const char *key, int64_t def,
                       int64_t *out) {
  const char *v = kw_find(kw, key);
  if (!v) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 0);
  if (!*v || *end || errno) return bad_value(kw, key, v, "an integer");
  *out = x;
  return 0;
}

int crl_env_kwargs_double(const crl_env_kwargs *kw, const char *key, double def,
                          double *out) {
  const char *v = kw_find(kw, key);
  if (!v) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno) return bad_value(kw, key, v, "a number");
  *out = x;
  return 0;
}

int crl_env_kwargs_bool(const crl_env_kwargs *kw, const char *key, bool def,
                        bool *out) {
  const char *v = kw_find(kw, key);
  if (!v) {
    *out = def;
    return 0;
  }
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) {
      *out = true;
      return 0;
    }
    if (!strcasecmp(v, no[i])) {
      *out = false;
      return 0;
    }
  }
  return bad_value(kw, key, v, "a boolean (1/0, true/false, yes/no)");
}

static void kw_free(crl_env_kwargs *kw) {
  for (int i = 0; i < kw->n; i++) {
    free(kw->keys[i]);
    free(kw->vals[i]);
  }
  free(kw->keys);
  free(kw->vals);
  kw->n = 0;
  kw->keys = kw->vals = NULL;
}

static char *trim_dup(const char *s, size_t len) {
  while (len && isspace((unsigned char)*s)) {
    s++;
    len--;
  }
  while (len && isspace((unsigned char)s[len - 1]))
    len--;
  char *r = malloc(len + 1);
  if (r) {
    memcpy(r, s, len);
    r[len] = 0;
  }
  return r;
}

static int kw_parse(const char *env, const char *opts, crl_env_kwargs *kw) {
  memset(kw, 0, sizeof *kw);
  kw->env = env;
  if (!opts) return 0;
  int cap = 1;
  for (const char *p = opts; *p; p++)
    cap += *p == ',';
  kw->keys = calloc((size_t)cap, sizeof(char *));
  kw->vals = calloc((size_t)cap, sizeof(char *));
  if (!kw->keys || !kw->vals) return crl__err(CRL_ENOMEM, "out of memory");
  const char *p = opts;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *item = trim_dup(p, len);
    if (!item) return crl__err(CRL_ENOMEM, "out of memory");
    p += len + (end ? 1 : 0);
    if (!*item) { /* empty item: ignored */
      free(item);
      continue;
    }
    const char *eq = strchr(item, '=');
    if (!eq || eq == item + strspn(item, " \t")) {
      int rc = crl__err(CRL_EINVAL,
                        "env_make %s: malformed option '%s' in \"%s\" "
                        "(expected key=value)",
                        env, item, opts);
      free(item);
      return rc;
    }
    char *key = trim_dup(item, (size_t)(eq - item));
    char *val = trim_dup(eq + 1, strlen(eq + 1));
    int rc = key && val ? 0 : crl__err(CRL_ENOMEM, "out of memory");
    if (!rc && kw_find(kw, key))
      rc = crl__err(CRL_EINVAL, "env_make %s: option '%s' is given twice", env,
                    key);
    free(item);
    if (rc) {
      free(key);
      free(val);
      return rc;
    }
    kw->keys[kw->n] = key;
    kw->vals[kw->n] = val;
    kw->n++;
  }
  return 0;
}

/* ---- built-in makers
 * --------------------------------------------------------- */

static crl_env *classic_maker(void *ctx, const crl_env_kwargs *kw) {
  const char *name = ctx;
  crl_classic_options o = {0};
  int64_t num_envs = 0, mes = 0, rw = 0, rh = 0, seed = 0;
  bool fp = false, po = false;
  int rc = crl_env_kwargs_int(kw, "num_envs", 0, &num_envs);
  if (!rc) rc = crl_env_kwargs_int(kw, "max_episode_steps", 0, &mes);
  if (!rc) rc = crl_env_kwargs_bool(kw, "from_pixels", false, &fp);
  if (!rc) rc = crl_env_kwargs_bool(kw, "pixels_only", false, &po);
  if (!rc) rc = crl_env_kwargs_int(kw, "render_width", 0, &rw);
  if (!rc) rc = crl_env_kwargs_int(kw, "render_height", 0, &rh);
  if (!rc) rc = crl_env_kwargs_int(kw, "seed", 0, &seed);
  if (!rc) rc = crl_env_kwargs_double(kw, "g", 0, &o.g);
  if (rc) return NULL;
  if (rw < 0 || rw > 4096 || rh < 0 || rh > 4096)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: render_width %lld / render_height %lld must be "
                        "within 1..4096",
                        name, (long long)rw, (long long)rh);
  o.num_envs = num_envs;
  o.max_episode_steps = mes;
  o.from_pixels = fp;
  o.pixels_only = po;
  o.render_width = (int)rw;
  o.render_height = (int)rh;
  o.seed = (uint64_t)seed;
  return crl_classic_make(name, &o);
}

static const char *const classic_opts[] = {
    "num_envs",     "max_episode_steps", "from_pixels", "pixels_only",
    "render_width", "render_height",     "seed",        NULL};
static const char *const pendulum_opts[] = {"num_envs",
                                            "max_episode_steps",
                                            "from_pixels",
                                            "pixels_only",
                                            "render_width",
                                            "render_height",
                                            "seed",
                                            "g",
                                            NULL};
static const char *const stateless_opts[] = {"num_envs", "seed", "g", NULL};

static const struct {
  const char *name;
  const char *const *opts;
  const char *desc;
} builtins[] = {
    {"CartPole-v1", classic_opts,
     "Gymnasium's cart-pole balancing (discrete, 2 actions)"},
    {"Pendulum-v1", pendulum_opts,
     "Gymnasium's inverted pendulum swing-up (continuous torque)"},
    {"MountainCar-v0", classic_opts,
     "Gymnasium's mountain car (discrete, 3 actions)"},
    {"MountainCarContinuous-v0", classic_opts,
     "Gymnasium's mountain car (continuous force)"},
    {"Acrobot-v1", classic_opts,
     "Gymnasium's two-link acrobot swing-up (discrete, 3 actions)"},
    {"PendulumStateless", stateless_opts,
     "TorchRL tutorial's stateless pendulum (state in the TensorDict)"},
};

/* ---- the table
 * ----------------------------------------------------------------- */

static int find_locked(const char *name) {
  for (int i = 0; name && i < nreg; i++)
    if (!strcmp(reg[i].name, name)) return i;
  return -1;
}

static void entry_free(reg_entry *e) {
  free(e->name);
  for (int i = 0; i < e->nopt; i++)
    free(e->options[i]);
  free(e->options);
  free(e->desc);
}

static bool in_list(const char *const *list, const char *key) {
  for (int i = 0; list && list[i]; i++)
    if (!strcmp(list[i], key)) return true;
  return false;
}

static int add_locked(const crl_env_registration *r, bool builtin) {
  const char *name = r ? r->name : NULL;
  if (!r || !name || !*name || strpbrk(name, ",= \t\n") || !r->make)
    return crl__err(CRL_EINVAL,
                    "env_register: '%s': needs a name (no ',', '=' or "
                    "spaces) and a maker",
                    name ? name : "(null)");
  if (find_locked(name) >= 0)
    return crl__err(CRL_EKEY, "env_register: '%s' is already registered", name);
  int nopt = 0;
  for (; r->options && r->options[nopt]; nopt++) {
    const char *k = r->options[nopt];
    if (!*k || strpbrk(k, ",= \t\n") || in_list(batch_opts, k))
      return crl__err(CRL_EKEY,
                      "env_register: '%s': option '%s' is empty, has ',', "
                      "'=' or spaces, or is a batching option",
                      name, k);
    for (int j = 0; j < nopt; j++)
      if (!strcmp(r->options[j], k))
        return crl__err(CRL_EKEY, "env_register: '%s': option '%s' repeats",
                        name, k);
  }
  if (nreg == capreg) {
    int nc = capreg ? 2 * capreg : 16;
    reg_entry *ne = realloc(reg, sizeof *ne * (size_t)nc);
    if (!ne) return crl__err(CRL_ENOMEM, "out of memory");
    reg = ne;
    capreg = nc;
  }
  reg_entry e = {0};
  e.name = strdup(name);
  e.make = r->make;
  e.ctx = r->ctx;
  e.desc = strdup(r->description ? r->description : "");
  e.options = calloc((size_t)nopt + 1, sizeof(char *));
  bool ok = e.name && e.desc && e.options;
  for (int i = 0; ok && i < nopt; i++) {
    e.options[i] = strdup(r->options[i]);
    ok = e.options[i] != NULL;
    e.nopt += ok;
  }
  if (!ok) {
    entry_free(&e);
    return crl__err(CRL_ENOMEM, "out of memory");
  }
  e.builtin = builtin;
  reg[nreg++] = e;
  return 0;
}

static void builtins_locked(void) {
  if (builtins_done) return;
  builtins_done = true;
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
    crl_env_registration r = {builtins[i].name, classic_maker,
                              (void *)builtins[i].name, builtins[i].opts,
                              builtins[i].desc};
    add_locked(&r, true);
  }
}

static void lock(void) {
  pthread_mutex_lock(&reg_mu);
  builtins_locked();
}
static void unlock(void) { pthread_mutex_unlock(&reg_mu); }

int crl_env_register(const crl_env_registration *r) {
  lock();
  int rc = add_locked(r, false);
  unlock();
  return rc;
}

int crl_env_unregister(const char *name) {
  lock();
  int i = find_locked(name);
  int rc = 0;
  if (i < 0)
    rc = crl__err(CRL_EKEY, "env_unregister: '%s' is not registered",
                  name ? name : "(null)");
  else if (reg[i].builtin)
    rc = crl__err(CRL_EKEY, "env_unregister: '%s' is built in", name);
  else {
    entry_free(&reg[i]);
    memmove(reg + i, reg + i + 1, sizeof *reg * (size_t)(nreg - i - 1));
    nreg--;
  }
  unlock();
  return rc;
}

static int strs_dup(int n, char *const *src, const char *const *extra,
                    crl_td_keys *out) {
  int ne = 0;
  while (extra && extra[ne])
    ne++;
  out->n = 0;
  out->keys = calloc((size_t)(n + ne) + 1, sizeof(char *));
  if (!out->keys) return crl__err(CRL_ENOMEM, "out of memory");
  for (int i = 0; i < n + ne; i++) {
    out->keys[i] = strdup(i < n ? src[i] : extra[i - n]);
    if (!out->keys[i]) {
      crl_td_keys_free(out);
      return crl__err(CRL_ENOMEM, "out of memory");
    }
    out->n++;
  }
  return 0;
}

int crl_env_list(crl_td_keys *out) {
  if (!out) return crl__err(CRL_EINVAL, "env_list: out is NULL");
  lock();
  char **names = malloc(sizeof(char *) * (size_t)(nreg + 1));
  int rc = names ? 0 : crl__err(CRL_ENOMEM, "out of memory");
  for (int i = 0; !rc && i < nreg; i++)
    names[i] = reg[i].name;
  if (!rc) rc = strs_dup(nreg, names, NULL, out);
  free(names);
  unlock();
  return rc;
}

/* "a, b, c" of the registered names (caller holds the lock) */
static void names_str(char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < nreg && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
                            reg[i].name);
}

static int unknown_locked(const char *op, const char *name) {
  char known[1024];
  names_str(known, sizeof known);
  return crl__err(CRL_EKEY, "%s: unknown env '%s' (known: %s)", op,
                  name ? name : "(null)", known);
}

int crl_env_options(const char *name, crl_td_keys *out) {
  if (!out) return crl__err(CRL_EINVAL, "env_options: out is NULL");
  lock();
  int i = find_locked(name);
  int rc = i < 0 ? unknown_locked("env_options", name)
                 : strs_dup(reg[i].nopt, reg[i].options, batch_opts, out);
  unlock();
  return rc;
}

const char *crl_env_description(const char *name) {
  lock();
  int i = find_locked(name);
  const char *d = i >= 0 ? reg[i].desc : NULL;
  if (i < 0) unknown_locked("env_description", name);
  unlock();
  return d;
}

/* ---- make
 * ---------------------------------------------------------------------- */

typedef struct make_ctx {
  crl_env_maker make;
  void *ctx;
  const crl_env_kwargs *kw;
} make_ctx;

static crl_env *copy_factory(void *vctx, int index) {
  (void)index;
  make_ctx *m = vctx;
  return m->make(m->ctx, m->kw);
}

/* the option keys valid for entry e, for messages */
static void valid_str(const reg_entry *e, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < e->nopt && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s, ", e->options[i]);
  for (int i = 0; batch_opts[i] && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", batch_opts[i],
                            batch_opts[i + 1] ? ", " : "");
}

static crl_env *make_batched(const char *name, const crl_env_kwargs *all,
                             make_ctx *m) {
  int64_t serial = 0, parallel = 0, workers = 0, seed = 0;
  int rc = crl_env_kwargs_int(all, "serial", 0, &serial);
  if (!rc) rc = crl_env_kwargs_int(all, "parallel", 0, &parallel);
  if (!rc) rc = crl_env_kwargs_int(all, "workers", 0, &workers);
  if (rc) return NULL;
  const char *backend = crl_env_kwargs_str(all, "backend", "threads");
  crl_batched_options o = {0};
  if (!strcmp(backend, "processes"))
    o.backend = CRL_PARALLEL_PROCESSES;
  else if (strcmp(backend, "threads"))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: option backend=%s is not threads or processes",
                        name, backend);
  if (serial && parallel)
    return CRL_ERR_NULL(
        CRL_EINVAL, "%s: options serial and parallel exclude each other", name);
  int64_t k = serial ? serial : parallel;
  if (k < 1 || k > 1 << 20 || workers < 0 || workers > 4096)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: serial/parallel=%lld must be in 1..2^20 and "
                        "workers=%lld in 0..4096",
                        name, (long long)k, (long long)workers);
  if (serial && (crl_env_kwargs_has(all, "workers") ||
                 crl_env_kwargs_has(all, "backend")))
    return CRL_ERR_NULL(
        CRL_EINVAL, "%s: options workers and backend need parallel=K", name);
  o.num_workers = (int)workers;
  if (crl_env_kwargs_int(all, "seed", 0, &seed)) return NULL;
  crl_env *env = serial ? crl_serial_env_new((int)k, copy_factory, m, &o)
                        : crl_parallel_env_new((int)k, copy_factory, m, &o);
  if (env && crl_env_seed(env, (uint64_t)seed)) {
    crl__env_discard(env);
    return NULL;
  }
  return env;
}

crl_env *crl_env_make(const char *name, const char *options) {
  lock();
  int i = find_locked(name);
  if (i < 0) {
    unknown_locked("env_make", name);
    unlock();
    return NULL;
  }
  reg_entry e = reg[i]; /* the maker and ctx outlive the lock */
  char valid[1024];
  valid_str(&e, valid, sizeof valid);
  char **opts = NULL;
  int nopt = e.nopt;
  crl_td_keys ok = {0};
  int rc = strs_dup(e.nopt, e.options, NULL, &ok);
  opts = ok.keys;
  unlock();
  if (rc) return NULL;
  crl_env_kwargs all, own;
  memset(&own, 0, sizeof own);
  rc = kw_parse(name, options, &all);
  bool batched = false;
  for (int k = 0; !rc && k < all.n; k++) {
    bool mine = false;
    for (int j = 0; j < nopt && !mine; j++)
      mine = !strcmp(opts[j], all.keys[k]);
    if (!mine && in_list(batch_opts, all.keys[k])) {
      batched |=
          !strcmp(all.keys[k], "serial") || !strcmp(all.keys[k], "parallel");
      continue;
    }
    if (!mine)
      rc = crl__err(CRL_EINVAL, "env_make %s: unknown option '%s' (valid: %s)",
                    name, all.keys[k], valid);
  }
  /* the maker sees its own options only */
  if (!rc) {
    own.env = name;
    own.keys = calloc((size_t)all.n + 1, sizeof(char *));
    own.vals = calloc((size_t)all.n + 1, sizeof(char *));
    if (!own.keys || !own.vals) rc = crl__err(CRL_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < all.n; k++) {
      if (in_list(batch_opts, all.keys[k])) continue;
      own.keys[own.n] = all.keys[k];
      own.vals[own.n] = all.vals[k];
      own.n++;
    }
  }
  crl_env *env = NULL;
  if (!rc) {
    crl_clear_error();
    make_ctx m = {e.make, e.ctx, &own};
    if (batched)
      env = make_batched(name, &all, &m);
    else if (crl_env_kwargs_has(&all, "workers") ||
             crl_env_kwargs_has(&all, "backend"))
      crl__err(CRL_EINVAL,
               "env_make %s: options workers and backend need "
               "parallel=K",
               name);
    else
      env = e.make(e.ctx, &own);
    if (!env && !crl_last_error()[0])
      crl__err(CRL_EINVAL, "env_make %s: the maker returned NULL", name);
  }
  free(own.keys);
  free(own.vals);
  kw_free(&all);
  crl_td_keys_free(&ok);
  return env;
}

/* ---- plugins
 * --------------------------------------------------------------------- */

int crl_env_load_plugin(const char *path) {
  if (!path || !*path)
    return crl__err(CRL_EINVAL, "env_load_plugin: path is empty");
  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    return crl__err(CRL_EIO, "env_load_plugin: cannot load '%s': %s", path,
                    e ? e : "unknown error");
  }
  lock();
  bool seen = false;
  for (int i = 0; i < nplugins; i++)
    seen |= plugins[i] == h;
  unlock();
  if (seen) {
    dlclose(h); /* drop the extra reference */
    return 0;
  }
  crl_env_plugin_fn entry;
  *(void **)&entry = dlsym(h, CRL_ENV_PLUGIN_SYMBOL);
  if (!entry) {
    dlclose(h);
    return crl__err(CRL_EKEY,
                    "env_load_plugin: '%s' has no symbol %s (a plugin "
                    "defines int %s(int abi))",
                    path, CRL_ENV_PLUGIN_SYMBOL, CRL_ENV_PLUGIN_SYMBOL);
  }
  crl_clear_error();
  int rc = entry(CRL_ENV_PLUGIN_ABI);
  /* whatever it registered points into it: it stays loaded */
  lock();
  void **np = realloc(plugins, sizeof *np * (size_t)(nplugins + 1));
  if (np) {
    plugins = np;
    plugins[nplugins++] = h;
  }
  unlock();
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s",
             crl_last_error()[0] ? crl_last_error() : crl_strerror(rc));
    return crl__err(rc < 0 ? rc : CRL_EINVAL,
                    "env_load_plugin: %s of '%s' failed: %s",
                    CRL_ENV_PLUGIN_SYMBOL, path, msg);
  }
  return 0;
}
