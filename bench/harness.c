/* crl_bench: runs the registered workloads whose names start with one of the
 * command-line prefixes (all when none), sorted by name. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crl/crl.h"

typedef struct {
  const char *name;
  bench_fn fn;
} workload;

static workload works[256];
static int nworks;
static volatile double sink;

void bench_register(const char *name, bench_fn fn) {
  if (nworks < 256) works[nworks++] = (workload){name, fn};
}

void bench_sink(double v) { sink += v; }

double bench_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int bench_quick(void) {
  const char *q = getenv("CRL_BENCH_QUICK");
  return q && *q && *q != '0';
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_ns(void (*body)(void *), void *ctx) {
  /* calibrate: iterations for ~20 ms per repeat */
  int64_t iters = 1;
  double target = bench_quick() ? 0.005 : 0.02;
  for (;;) {
    double t0 = bench_now();
    for (int64_t i = 0; i < iters; i++)
      body(ctx);
    double dt = bench_now() - t0;
    if (dt > target || iters > ((int64_t)1 << 40)) {
      if (dt < target) break;
      iters = (int64_t)((double)iters * target / dt) + 1;
      break;
    }
    iters *= dt > 0 ? (target / dt > 10 ? 10 : 2) : 10;
  }
  int reps = bench_quick() ? 3 : 9;
  double r[16];
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    for (int64_t i = 0; i < iters; i++)
      body(ctx);
    r[k] = (bench_now() - t0) / (double)iters * 1e9;
  }
  qsort(r, (size_t)reps, sizeof r[0], cmp_d);
  return r[reps / 2];
}

void bench_emit(const char *name, const char *unit, double value,
                const char *params) {
  printf("{\"name\":\"%s\",\"unit\":\"%s\",\"value\":%.6g,\"params\":{%s}}\n",
         name, unit, value, params ? params : "");
  fflush(stdout);
}

static int cmp_w(const void *a, const void *b) {
  return strcmp(((const workload *)a)->name, ((const workload *)b)->name);
}

int main(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: crl_bench [PREFIX...]\n"
           "Runs the benchmark workloads whose names start with a PREFIX "
           "(all by default)\nand prints one JSON line each. "
           "CRL_BENCH_QUICK=1 for a fast smoke run.\nWorkloads:\n");
    qsort(works, (size_t)nworks, sizeof works[0], cmp_w);
    for (int i = 0; i < nworks; i++)
      printf("  %s\n", works[i].name);
    return 0;
  }
  crl_set_num_threads(1);
  crl_set_blas_threads(1);
  qsort(works, (size_t)nworks, sizeof works[0], cmp_w);
  for (int i = 0; i < nworks; i++) {
    int run = argc == 1;
    for (int a = 1; a < argc && !run; a++)
      if (!strncmp(works[i].name, argv[a], strlen(argv[a]))) run = 1;
    if (run) works[i].fn();
  }
  return sink == 12345.678 ? 1 : 0;
}
