/* crl/optim.h — optimizers, gradient clipping and learning-rate schedules.
 *
 * An optimizer holds borrowed-and-retained parameter tensors (float32 or
 * float64 leaves with requires_grad) and its own state tensors. step() reads
 * each parameter's .grad (parameters whose grad is NULL are skipped, as in
 * torch) and updates the parameter in place, outside autograd. */
#ifndef CRL_OPTIM_H
#define CRL_OPTIM_H

#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_optimizer crl_optimizer;

typedef struct crl_sgd_options {
  double lr;
  double momentum;     /* 0 = plain SGD */
  double dampening;    /* torch's dampening of the momentum buffer */
  double weight_decay; /* L2 added to the gradient */
  bool nesterov;
} crl_sgd_options;

typedef struct crl_adam_options {
  double lr;           /* default 1e-3 when 0 */
  double beta1, beta2; /* defaults 0.9, 0.999 when both 0 */
  double eps;          /* default 1e-8 when 0 */
  double weight_decay; /* Adam: L2 in the gradient; AdamW: decoupled */
  bool amsgrad;
} crl_adam_options;

typedef struct crl_rmsprop_options {
  double lr;    /* default 1e-2 when 0 */
  double alpha; /* smoothing, default 0.99 when 0 */
  double eps;   /* default 1e-8 when 0 */
  double weight_decay;
  double momentum;
  bool centered;
} crl_rmsprop_options;

/* Create an optimizer over n parameters (each retained). Returns NULL with
 * CRL_EINVAL for a negative lr, a non-float or non-leaf parameter (naming
 * its position), or nesterov without momentum. Free with
 * crl_optimizer_free. */
CRL_API crl_optimizer *crl_sgd_new(crl_tensor *const *params, int n,
                                   crl_sgd_options opt);
CRL_API crl_optimizer *crl_adam_new(crl_tensor *const *params, int n,
                                    crl_adam_options opt);
CRL_API crl_optimizer *crl_adamw_new(crl_tensor *const *params, int n,
                                     crl_adam_options opt);
CRL_API crl_optimizer *crl_rmsprop_new(crl_tensor *const *params, int n,
                                       crl_rmsprop_options opt);
CRL_API void crl_optimizer_free(crl_optimizer *o);

/* One update from the current gradients. Errors: CRL_ESHAPE if a grad's
 * shape differs from its parameter's (nothing is updated then). */
CRL_API int crl_optimizer_step(crl_optimizer *o);
/* Set every parameter's grad to NULL. */
CRL_API void crl_optimizer_zero_grad(crl_optimizer *o);
CRL_API double crl_optimizer_get_lr(const crl_optimizer *o);
CRL_API void crl_optimizer_set_lr(crl_optimizer *o, double lr);
/* Number of steps taken. */
CRL_API int64_t crl_optimizer_steps(const crl_optimizer *o);
/* "sgd", "adam", "adamw", "rmsprop". */
CRL_API const char *crl_optimizer_name(const crl_optimizer *o);
CRL_API int crl_optimizer_num_params(const crl_optimizer *o);
/* State tensor `name` of parameter i ("exp_avg", "exp_avg_sq",
 * "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg"), borrowed,
 * or NULL if that state does not exist (yet). For checkpoints. */
CRL_API crl_tensor *crl_optimizer_state(crl_optimizer *o, int i,
                                        const char *name);
/* Restore the step counter (for checkpoints). */
CRL_API void crl_optimizer_set_steps(crl_optimizer *o, int64_t steps);

/* Scale the gradients of params so their total 2-norm is at most max_norm.
 * Returns the total norm before clipping (grads that are NULL are skipped);
 * a negative value is an error code. */
CRL_API double crl_clip_grad_norm(crl_tensor *const *params, int n,
                                  double max_norm);

/* Learning-rate schedules driving an optimizer's lr. */
typedef struct crl_lr_scheduler crl_lr_scheduler;
/* lr = base * (start_factor + (end_factor - start_factor) * min(t,T)/T). */
CRL_API crl_lr_scheduler *crl_linear_lr_new(crl_optimizer *o,
                                            double start_factor,
                                            double end_factor,
                                            int64_t total_iters);
/* lr = eta_min + (base - eta_min) * (1 + cos(pi * min(t,T)/T)) / 2. */
CRL_API crl_lr_scheduler *crl_cosine_lr_new(crl_optimizer *o, int64_t t_max,
                                            double eta_min);
/* Advance one step and set the optimizer's lr. Returns the new lr. */
CRL_API double crl_lr_scheduler_step(crl_lr_scheduler *s);
CRL_API void crl_lr_scheduler_free(crl_lr_scheduler *s);

#ifdef __cplusplus
}
#endif
#endif
