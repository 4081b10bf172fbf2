/* crl benchmark harness: workloads register themselves; each prints one JSON
 * line {"name":..., "unit":..., "value":..., "params":{...}}.
 * Timing: warm-up, then the median of repeats, each repeat long enough
 * (~20 ms) to dwarf the clock's resolution. Workloads keep results alive
 * (bench_sink) so the compiler cannot drop the work. */
#ifndef CRL_BENCH_HARNESS_H
#define CRL_BENCH_HARNESS_H

#include <stdint.h>

typedef void (*bench_fn)(void);
void bench_register(const char *name, bench_fn fn);
#define BENCH(NAME, FN)                                                        \
  static void FN(void);                                                        \
  __attribute__((constructor)) static void reg_##FN(void) {                    \
    bench_register(NAME, FN);                                                  \
  }                                                                            \
  static void FN(void)

/* Median nanoseconds per call of body(ctx) over `repeats` repeats. */
double bench_ns(void (*body)(void *ctx), void *ctx);
/* Print one JSON line; params is a JSON object body without braces
 * (e.g. "\"n\":64") or NULL. */
void bench_emit(const char *name, const char *unit, double value,
                const char *params);
/* Keep a value observable. */
void bench_sink(double v);
/* Monotonic clock in seconds. */
double bench_now(void);
/* Quick mode (fewer repeats) for smoke runs: CRL_BENCH_QUICK=1. */
int bench_quick(void);

#endif
