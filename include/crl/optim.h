/* crl/optim.h — optimizers, gradient clipping and learning-rate schedules.
 *
 * An optimizer holds borrowed-and-retained parameter tensors (contiguous
 * float32 or float64 leaves, normally with requires_grad) and its own state
 * tensors, allocated (zero-filled) at creation so a checkpoint can be
 * restored into them before the first step. step() reads each parameter's
 * .grad (parameters whose grad is NULL are skipped, as in torch) and updates
 * the parameter in place, outside autograd, with torch.optim's formulas in
 * one fused pass per parameter (no allocation). Like torch, each parameter
 * keeps its own step count (used by Adam's bias correction and SGD's first
 * momentum step): a parameter skipped for lack of a grad does not advance. */
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
 * CRL_EINVAL for a negative or non-finite lr (or other hyper-parameter out
 * of torch's range: negative momentum/weight_decay/eps, betas outside
 * [0, 1), alpha outside (0, 1]), nesterov without momentum or with
 * dampening, n < 1, or a NULL, non-leaf, non-contiguous or repeated
 * parameter; CRL_EDTYPE for a non-float parameter (errors name the
 * parameter's position). RMSprop differs from torch in one place: the
 * centered variance sq - avg^2 is clamped at 0 before its square root
 * (torch gives NaN when rounding makes it negative). Free with
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

/* One update from the current gradients. Every grad is checked before any
 * parameter is written; on error nothing is updated. Errors: CRL_ESHAPE if
 * a grad's shape differs from its parameter's, CRL_EDTYPE if its dtype
 * does, CRL_EINVAL for a non-contiguous grad (naming the position). */
CRL_API int crl_optimizer_step(crl_optimizer *o);
/* Set every parameter's grad to NULL. */
CRL_API void crl_optimizer_zero_grad(crl_optimizer *o);
CRL_API double crl_optimizer_get_lr(const crl_optimizer *o);
/* A negative or non-finite lr is refused (CRL_EINVAL set, lr kept). */
CRL_API void crl_optimizer_set_lr(crl_optimizer *o, double lr);
/* Number of steps taken. */
CRL_API int64_t crl_optimizer_steps(const crl_optimizer *o);
/* "sgd", "adam", "adamw", "rmsprop". */
CRL_API const char *crl_optimizer_name(const crl_optimizer *o);
CRL_API int crl_optimizer_num_params(const crl_optimizer *o);
/* State tensor `name` of parameter i, borrowed, with the parameter's shape
 * and dtype; write into it (crl_copy_) to restore a checkpoint. Names:
 * sgd "momentum_buffer" (momentum != 0); adam/adamw "exp_avg",
 * "exp_avg_sq", "max_exp_avg_sq" (amsgrad); rmsprop "square_avg",
 * "momentum_buffer" (momentum > 0), "grad_avg" (centered). NULL with
 * CRL_EKEY if this optimizer keeps no such state with its options,
 * CRL_EINDEX for i out of range. */
CRL_API crl_tensor *crl_optimizer_state(crl_optimizer *o, int i,
                                        const char *name);
/* Restore the step counter (for checkpoints): sets the optimizer's count
 * and every parameter's own count to `steps`. */
CRL_API void crl_optimizer_set_steps(crl_optimizer *o, int64_t steps);

/* Scale the gradients of params so their total 2-norm is at most max_norm
 * (torch's rule: grads *= max_norm / (norm + 1e-6) when that is below 1;
 * otherwise they are left untouched). Returns the total norm before
 * clipping (grads that are NULL are skipped; 0 when none has a grad). A
 * non-finite norm is returned with the grads left as they are. A negative
 * value is an error code (CRL_EINVAL for max_norm < 0 or a non-contiguous
 * grad, CRL_EDTYPE for a non-float one); grads are checked before any is
 * scaled. */
CRL_API double crl_clip_grad_norm(crl_tensor *const *params, int n,
                                  double max_norm);

/* Learning-rate schedules driving an optimizer's lr (borrowed: the
 * optimizer must outlive the scheduler). `base` is the optimizer's lr when
 * the scheduler is created, and creation already sets the lr for t = 0, as
 * torch's schedulers do; each crl_lr_scheduler_step advances t by one. After
 * T steps the lr stays at its final value. Errors (NULL returned,
 * CRL_EINVAL): a NULL optimizer, start_factor outside (0, 1], end_factor
 * outside [0, 1], total_iters or t_max < 1, eta_min < 0. */
typedef struct crl_lr_scheduler crl_lr_scheduler;
/* lr = base * (start_factor + (end_factor - start_factor) * min(t,T)/T). */
CRL_API crl_lr_scheduler *crl_linear_lr_new(crl_optimizer *o,
                                            double start_factor,
                                            double end_factor,
                                            int64_t total_iters);
/* lr = eta_min + (base - eta_min) * (1 + cos(pi * min(t,T)/T)) / 2. */
CRL_API crl_lr_scheduler *crl_cosine_lr_new(crl_optimizer *o, int64_t t_max,
                                            double eta_min);
/* Advance one step and set the optimizer's lr. Returns the new lr (a
 * negative error code for a NULL scheduler). */
CRL_API double crl_lr_scheduler_step(crl_lr_scheduler *s);
CRL_API void crl_lr_scheduler_free(crl_lr_scheduler *s);

#ifdef __cplusplus
}
#endif
#endif
