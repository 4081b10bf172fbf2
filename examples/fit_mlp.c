/* Fit a small MLP (1 -> 64 -> 64 -> 1, tanh) with Adam to noisy samples of
 * y = sin(3x) on [-1, 1], printing the loss as it falls, then a table of the
 * target against the fit. The noise has standard deviation 0.1, so the best
 * achievable mean squared error is about 0.01.
 *
 *   build/example_fit_mlp
 *
 * Shows the pieces a training loop is made of: parameters created outside
 * any scope (we own them), one scope per step so every temporary of the
 * forward and backward pass is freed, crl_backward, an optimizer and a
 * learning-rate schedule. */
#include <crl/crl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define N_POINTS 256
#define HIDDEN 64
#define STEPS 2000

typedef struct {
  crl_tensor *w1, *b1, *w2, *b2, *w3, *b3;
} mlp;

/* torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)). */
static crl_tensor *uniform_param(crl_rng *g, int64_t rows, int64_t cols,
                                 int64_t fan_in) {
  double k = 1 / sqrt((double)fan_in);
  crl_tensor *t = cols ? crl_empty(CRL_FLOAT32, CRL_SHAPE(rows, cols))
                       : crl_empty(CRL_FLOAT32, CRL_SHAPE(rows));
  if (!t || crl_uniform_(t, g, -k, k) || crl_set_requires_grad(t, true))
    return NULL;
  return t;
}

static crl_tensor *forward(const mlp *m, crl_tensor *x) {
  crl_tensor *h = crl_tanh(crl_linear(x, m->w1, m->b1));
  h = crl_tanh(crl_linear(h, m->w2, m->b2));
  return crl_linear(h, m->w3, m->b3);
}

static int fail(const char *what) {
  fprintf(stderr, "fit_mlp: %s failed: %s\n", what, crl_last_error());
  return 1;
}

int main(void) {
  crl_rng g;
  crl_rng_seed(&g, 42);

  /* data: x ~ U(-1, 1), y = sin(3x) + 0.1 * noise, as [256, 1] columns */
  float xs[N_POINTS], ys[N_POINTS];
  for (int i = 0; i < N_POINTS; i++) {
    xs[i] = (float)(2 * crl_rng_uniform(&g) - 1);
    ys[i] = (float)(sin(3 * xs[i]) + 0.1 * crl_rng_normal(&g));
  }
  crl_tensor *x = crl_from_array(CRL_FLOAT32, CRL_SHAPE(N_POINTS, 1), xs);
  crl_tensor *y = crl_from_array(CRL_FLOAT32, CRL_SHAPE(N_POINTS, 1), ys);

  mlp m = {uniform_param(&g, HIDDEN, 1, 1),
           uniform_param(&g, HIDDEN, 0, 1),
           uniform_param(&g, HIDDEN, HIDDEN, HIDDEN),
           uniform_param(&g, HIDDEN, 0, HIDDEN),
           uniform_param(&g, 1, HIDDEN, HIDDEN),
           uniform_param(&g, 1, 0, HIDDEN)};
  crl_tensor *params[6] = {m.w1, m.b1, m.w2, m.b2, m.w3, m.b3};
  for (int i = 0; i < 6; i++)
    if (!params[i]) return fail("parameter init");
  if (!x || !y) return fail("data");

  crl_optimizer *opt = crl_adam_new(params, 6, (crl_adam_options){.lr = 1e-2});
  if (!opt) return fail("crl_adam_new");
  /* anneal the lr from 1e-2 to 1e-4 over the run */
  crl_lr_scheduler *sched = crl_cosine_lr_new(opt, STEPS, 1e-4);
  if (!sched) return fail("crl_cosine_lr_new");

  printf("fitting y = sin(3x) + 0.1 noise with a 1-64-64-1 tanh MLP (Adam)\n");
  printf("%6s  %10s  %9s\n", "step", "mse loss", "lr");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  double loss_value = 0;
  for (int step = 0; step <= STEPS; step++) {
    crl_scope_begin();
    crl_tensor *diff = crl_sub(forward(&m, x), y);
    crl_tensor *loss = crl_mean(crl_mul(diff, diff), 0, NULL, false);
    if (!loss) return fail("forward");
    loss_value = crl_item(loss);
    if (step % 100 == 0)
      printf("%6d  %10.5f  %9.2e\n", step, loss_value,
             crl_optimizer_get_lr(opt));
    if (step < STEPS) {
      crl_optimizer_zero_grad(opt);
      if (crl_backward(loss, NULL)) return fail("crl_backward");
      if (crl_optimizer_step(opt)) return fail("crl_optimizer_step");
      crl_lr_scheduler_step(sched);
    }
    crl_scope_end(); /* frees the step's activations, graph and grads' temps */
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) +
                1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("%d steps in %.2f s (%.0f us/step); final loss %.4f (noise floor "
         "~0.01)\n\n",
         STEPS, secs, 1e6 * secs / STEPS, loss_value);

  /* target vs prediction at 11 points, with a bar for each */
  crl_scope_begin();
  crl_no_grad_begin();
  crl_tensor *xt =
      crl_reshape(crl_linspace(CRL_FLOAT32, -1, 1, 11), CRL_SHAPE(11, 1));
  crl_tensor *pred = forward(&m, xt);
  crl_no_grad_end();
  if (!pred) return fail("prediction");
  printf("%6s  %8s  %8s   %-41s\n", "x", "sin(3x)", "mlp(x)",
         "-1 ........ target * / fit o ........ +1");
  for (int i = 0; i < 11; i++) {
    double xv = crl_tensor_get_flat(xt, i), tv = sin(3 * xv);
    double pv = crl_tensor_get_flat(pred, i);
    char bar[42];
    memset(bar, ' ', 41);
    bar[41] = 0;
    bar[20] = '|';
    int ti = (int)lround((tv + 1) * 20), pi = (int)lround((pv + 1) * 20);
    if (ti >= 0 && ti <= 40) bar[ti] = '*';
    if (pi >= 0 && pi <= 40) bar[pi] = pi == ti ? '@' : 'o';
    printf("%6.2f  %8.4f  %8.4f   %s\n", xv, tv, pv, bar);
  }
  printf("(@ = target and fit on the same column)\n");
  crl_scope_end();

  crl_lr_scheduler_free(sched);
  crl_optimizer_free(opt);
  for (int i = 0; i < 6; i++)
    crl_tensor_release(params[i]);
  crl_tensor_release(x);
  crl_tensor_release(y);
  return loss_value < 0.02 ? 0 : 1;
}
