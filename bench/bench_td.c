/* td.* workloads: TensorDict structure and batch-shape operations.
 *
 * The TensorDict of a transition batch: batch [B] holding observation
 * [B,17] f32, action [B,6] f32, reward [B,1] f32, done [B,1] bool and
 * next/observation [B,17] f32. Each workload reports crl's time, the time
 * Python tensordict 0.0.3 took for the same operation on this machine
 * (params.ref_python_us) and the speed-up ref / crl. */
#include <stdio.h>
#include <stdlib.h>

#include "crl/crl.h"
#include "harness.h"

typedef struct {
  crl_tensor *obs, *act, *rew, *done, *nobs;
} leaves;

static leaves leaves_new(int ndim, const int64_t *batch, uint64_t seed) {
  crl_rng g;
  crl_rng_seed(&g, seed);
  int64_t s[CRL_MAX_DIMS];
  for (int i = 0; i < ndim; i++)
    s[i] = batch[i];
  leaves l;
  s[ndim] = 17;
  l.obs = crl_randn(&g, CRL_FLOAT32, ndim + 1, s);
  l.nobs = crl_randn(&g, CRL_FLOAT32, ndim + 1, s);
  s[ndim] = 6;
  l.act = crl_randn(&g, CRL_FLOAT32, ndim + 1, s);
  s[ndim] = 1;
  l.rew = crl_randn(&g, CRL_FLOAT32, ndim + 1, s);
  l.done = crl_zeros(CRL_BOOL, ndim + 1, s);
  return l;
}

static void leaves_free(leaves *l) {
  crl_tensor_release(l->obs);
  crl_tensor_release(l->act);
  crl_tensor_release(l->rew);
  crl_tensor_release(l->done);
  crl_tensor_release(l->nobs);
}

/* The TensorDict over existing tensors (a new reference, NULL on error). */
static crl_td *td_build(int ndim, const int64_t *batch, const leaves *l) {
  crl_td *td = crl_td_new(ndim, batch);
  if (!td) return NULL;
  if (crl_td_set(td, "observation", l->obs) ||
      crl_td_set(td, "action", l->act) || crl_td_set(td, "reward", l->rew) ||
      crl_td_set(td, "done", l->done) ||
      crl_td_set(td, "next/observation", l->nobs)) {
    crl_td_release(td);
    return NULL;
  }
  return td;
}

static crl_td *td_make(int ndim, const int64_t *batch, uint64_t seed) {
  leaves l = leaves_new(ndim, batch, seed);
  crl_td *td = td_build(ndim, batch, &l);
  leaves_free(&l); /* the TensorDict retains its entries */
  if (!td) {
    fprintf(stderr, "bench_td: %s\n", crl_last_error());
    exit(1);
  }
  return td;
}

static void sink_td(crl_td *r) {
  if (!r) {
    fprintf(stderr, "bench_td: %s\n", crl_last_error());
    exit(1);
  }
  bench_sink((double)crl_td_batch_size(r)[0]);
  crl_td_release(r);
}

/* Emit value (in `unit`, which is ns or us per op) with the Python
 * reference given in microseconds. */
static void emit(const char *name, const char *unit, double ns, double ref_us,
                 const char *what) {
  bool us = unit[0] == 'u';
  double value = us ? ns / 1e3 : ns;
  char p[512];
  snprintf(p, sizeof p,
           "%s,\"ref_python_us\":%g,\"ref\":\"python tensordict 0.0.3, "
           "this machine\",\"speedup\":%.1f",
           what, ref_us, ref_us * 1e3 / ns);
  bench_emit(name, unit, value, p);
}

/* ---- td.a: construction from existing tensors ---------------------------- */

static void build_body(void *vctx) {
  leaves *l = vctx;
  sink_td(td_build(CRL_SHAPE(256), l));
}

BENCH("td.a", bench_td_a) {
  leaves l = leaves_new(CRL_SHAPE(256), 1);
  double ns = bench_ns(build_body, &l);
  emit("td.a", "ns/op", ns, 35,
       "\"op\":\"TensorDict(dict of 5 tensors incl. next/observation, "
       "batch_size=[256])\",\"batch\":[256]");
  leaves_free(&l);
}

/* ---- td.b: stack 1000 TensorDicts of batch [8] --------------------------- */

typedef struct {
  crl_td *tds[1000];
} stack_ctx;

static void stack_body(void *vctx) {
  stack_ctx *c = vctx;
  sink_td(crl_td_stack(1000, c->tds, 0));
}

BENCH("td.b", bench_td_b) {
  stack_ctx *c = malloc(sizeof *c);
  for (int i = 0; i < 1000; i++)
    c->tds[i] = td_make(CRL_SHAPE(8), 100 + i);
  crl_td *check = crl_td_stack(1000, c->tds, 0);
  if (!check || crl_td_batch_ndim(check) != 2 ||
      crl_td_batch_size(check)[0] != 1000 || crl_td_batch_size(check)[1] != 8)
    sink_td(NULL);
  crl_td_release(check);
  double ns = bench_ns(stack_body, c);
  emit("td.b", "us/op", ns, 14900,
       "\"op\":\"torch.stack(1000 x TensorDict[8], 0) -> [1000, 8]\","
       "\"n\":1000,\"batch\":[8]");
  for (int i = 0; i < 1000; i++)
    crl_td_release(c->tds[i]);
  free(c);
}

/* ---- td.c: td[10:200] ---------------------------------------------------- */

static void slice_body(void *vctx) {
  sink_td(crl_td_slice(vctx, 0, 10, 200, 1));
}

BENCH("td.c", bench_td_c) {
  crl_td *td = td_make(CRL_SHAPE(256), 2);
  double ns = bench_ns(slice_body, td);
  emit("td.c", "ns/op", ns, 68,
       "\"op\":\"td[10:200]\",\"batch\":[256],\"view\":true");
  crl_td_release(td);
}

/* ---- td.d: view(-1) of a [100, 8] TensorDict ----------------------------- */

static void view_body(void *vctx) {
  sink_td(crl_td_view(vctx, 1, (const int64_t[]){-1}));
}

BENCH("td.d", bench_td_d) {
  crl_td *td = td_make(CRL_SHAPE(100, 8), 3);
  double ns = bench_ns(view_body, td);
  emit("td.d", "ns/op", ns, 8.8,
       "\"op\":\"td.view(-1)\",\"batch\":[100,8],\"view\":true");
  crl_td_release(td);
}

/* ---- td.e: clone --------------------------------------------------------- */

static void clone_body(void *vctx) { sink_td(crl_td_clone(vctx)); }

BENCH("td.e", bench_td_e) {
  crl_td *td = td_make(CRL_SHAPE(256), 4);
  double ns = bench_ns(clone_body, td);
  emit("td.e", "us/op", ns, 49, "\"op\":\"td.clone()\",\"batch\":[256]");
  crl_td_release(td);
}

/* ---- td.f: cat of 10 TensorDicts of batch [256] -------------------------- */

typedef struct {
  crl_td *tds[10];
} cat_ctx;

static void cat_body(void *vctx) {
  cat_ctx *c = vctx;
  sink_td(crl_td_cat(10, c->tds, 0));
}

BENCH("td.f", bench_td_f) {
  cat_ctx c;
  for (int i = 0; i < 10; i++)
    c.tds[i] = td_make(CRL_SHAPE(256), 200 + i);
  double ns = bench_ns(cat_body, &c);
  emit("td.f", "us/op", ns, 215,
       "\"op\":\"torch.cat(10 x TensorDict[256], 0) -> [2560]\",\"n\":10,"
       "\"batch\":[256]");
  for (int i = 0; i < 10; i++)
    crl_td_release(c.tds[i]);
}
