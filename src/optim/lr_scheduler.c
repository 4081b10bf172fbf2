/* Learning-rate schedules (torch.optim.lr_scheduler.LinearLR and the closed
 * form of CosineAnnealingLR, held at the final value after total_iters /
 * t_max). The base lr is the optimizer's lr when the scheduler is created;
 * creation sets the lr for t = 0, as torch's schedulers do. */
#include <stdlib.h>

#include "internal.h"

typedef enum { SCHED_LINEAR, SCHED_COSINE } sched_kind;

struct crl_lr_scheduler {
  crl_optimizer *opt; /* borrowed: must outlive the scheduler */
  sched_kind kind;
  double base;
  double start_factor, end_factor; /* linear */
  double eta_min;                  /* cosine */
  int64_t total;                   /* total_iters / t_max */
  int64_t t;
};

static double lr_at(const crl_lr_scheduler *s) {
  double f = (double)(s->t < s->total ? s->t : s->total) / (double)s->total;
  if (s->kind == SCHED_LINEAR)
    return s->base * (s->start_factor + (s->end_factor - s->start_factor) * f);
  return s->eta_min + (s->base - s->eta_min) * (1 + cos(M_PI * f)) / 2;
}

static crl_lr_scheduler *make(crl_optimizer *o, sched_kind kind) {
  crl_lr_scheduler *s = calloc(1, sizeof *s);
  if (!s) return CRL_ERR_NULL(CRL_ENOMEM, "lr_scheduler: out of memory");
  s->opt = o;
  s->kind = kind;
  s->base = o->lr;
  return s;
}

crl_lr_scheduler *crl_linear_lr_new(crl_optimizer *o, double start_factor,
                                    double end_factor, int64_t total_iters) {
  if (!o) return CRL_ERR_NULL(CRL_EINVAL, "linear_lr: optimizer is NULL");
  if (!(start_factor > 0 && start_factor <= 1))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "linear_lr: start_factor must be in (0, 1], got %g",
                        start_factor);
  if (!(end_factor >= 0 && end_factor <= 1))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "linear_lr: end_factor must be in [0, 1], got %g",
                        end_factor);
  if (total_iters < 1)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "linear_lr: total_iters must be >= 1, got %lld",
                        (long long)total_iters);
  crl_lr_scheduler *s = make(o, SCHED_LINEAR);
  if (!s) return NULL;
  s->start_factor = start_factor;
  s->end_factor = end_factor;
  s->total = total_iters;
  o->lr = lr_at(s);
  return s;
}

crl_lr_scheduler *crl_cosine_lr_new(crl_optimizer *o, int64_t t_max,
                                    double eta_min) {
  if (!o) return CRL_ERR_NULL(CRL_EINVAL, "cosine_lr: optimizer is NULL");
  if (t_max < 1)
    return CRL_ERR_NULL(CRL_EINVAL, "cosine_lr: t_max must be >= 1, got %lld",
                        (long long)t_max);
  if (!(eta_min >= 0) || isinf(eta_min))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "cosine_lr: eta_min must be finite and >= 0, got %g",
                        eta_min);
  crl_lr_scheduler *s = make(o, SCHED_COSINE);
  if (!s) return NULL;
  s->eta_min = eta_min;
  s->total = t_max;
  o->lr = lr_at(s);
  return s;
}

double crl_lr_scheduler_step(crl_lr_scheduler *s) {
  if (!s) return crl__err(CRL_EINVAL, "lr_scheduler_step: scheduler is NULL");
  if (s->t < s->total) s->t++;
  double lr = lr_at(s);
  s->opt->lr = lr;
  return lr;
}

void crl_lr_scheduler_free(crl_lr_scheduler *s) { free(s); }
