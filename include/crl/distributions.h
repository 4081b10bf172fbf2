/* crl/distributions.h — probability distributions (torch.distributions and
 * torchrl.modules.distributions).
 *
 * A distribution is a small refcounted object holding its parameter tensors
 * (retained, so gradients flow back to whatever produced them). Methods
 * return new tensors (ownership rule of crl/tensor.h); all are
 * differentiable where torch's are: log_prob and entropy with respect to the
 * parameters, rsample (reparameterised) with respect to the parameters.
 * Shapes: batch_shape = the parameters' broadcast shape (for categorical
 * kinds: without the last, category dim); event_shape is [] except for
 * OneHotCategorical ([K]) and for the Tanh* and multivariate-diagonal
 * kinds created with event_dims = 1 (the last dim is one event, log_prob
 * sums over it, as TorchRL's TanhNormal / IndependentNormal do). */
#ifndef CRL_DISTRIBUTIONS_H
#define CRL_DISTRIBUTIONS_H

#include "crl/random.h"
#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_dist crl_dist;

typedef enum crl_dist_kind {
  CRL_DIST_NORMAL = 0,
  CRL_DIST_TANH_NORMAL,
  CRL_DIST_TRUNCATED_NORMAL,
  CRL_DIST_DELTA,
  CRL_DIST_TANH_DELTA,
  CRL_DIST_CATEGORICAL,
  CRL_DIST_ONE_HOT_CATEGORICAL,
} crl_dist_kind;

/* Normal(loc, scale); scale > 0. event_dims 0 (elementwise) or 1 (the last
 * dim is one diagonal event: log_prob/entropy sum over it). */
CRL_API crl_dist *crl_normal_new(crl_tensor *loc, crl_tensor *scale,
                                 int event_dims);
/* TorchRL's TanhNormal: y = low + (high - low) * (tanh(x) + 1) / 2 with
 * x ~ Normal(loc, scale); log_prob includes the tanh and affine log-det
 * corrections (numerically stable form); event_dims as above (TorchRL's
 * default is 1). low/high are scalars bounding the action. Mean/mode are
 * estimated as TorchRL does (mode: the tanh of loc, scaled). */
CRL_API crl_dist *crl_tanh_normal_new(crl_tensor *loc, crl_tensor *scale,
                                      double low, double high,
                                      int event_dims);
/* Normal(loc, scale) truncated to [low, high] (scalars). */
CRL_API crl_dist *crl_truncated_normal_new(crl_tensor *loc,
                                           crl_tensor *scale, double low,
                                           double high, int event_dims);
/* Deterministic: always `param` (log_prob 0 at param, -inf elsewhere). */
CRL_API crl_dist *crl_delta_new(crl_tensor *param, int event_dims);
/* Deterministic tanh(param) scaled into [low, high]. */
CRL_API crl_dist *crl_tanh_delta_new(crl_tensor *param, double low,
                                     double high, int event_dims);
/* Categorical over the last dim of logits [..., K]; samples are int64
 * indices [...]. */
CRL_API crl_dist *crl_categorical_new(crl_tensor *logits);
/* One-hot categorical over the last dim of logits [..., K]; samples are
 * one-hot [..., K] (float32 like the logits). */
CRL_API crl_dist *crl_one_hot_categorical_new(crl_tensor *logits);

CRL_API crl_dist *crl_dist_retain(crl_dist *d);
CRL_API void crl_dist_release(crl_dist *d);
CRL_API crl_dist_kind crl_dist_kind_of(const crl_dist *d);
CRL_API const char *crl_dist_name(const crl_dist *d);

/* A sample (no gradient). */
CRL_API crl_tensor *crl_dist_sample(crl_dist *d, crl_rng *g);
/* A reparameterised sample (gradient to the parameters). CRL_EUNSUPPORTED
 * for categorical kinds. */
CRL_API crl_tensor *crl_dist_rsample(crl_dist *d, crl_rng *g);
CRL_API crl_tensor *crl_dist_log_prob(crl_dist *d, crl_tensor *value);
/* Closed form where one exists; otherwise a Monte-Carlo estimate from
 * `samples` draws of g (TanhNormal, TruncatedNormal use their closed forms
 * where known). */
CRL_API crl_tensor *crl_dist_entropy(crl_dist *d, crl_rng *g, int samples);
CRL_API crl_tensor *crl_dist_mode(crl_dist *d);
CRL_API crl_tensor *crl_dist_mean(crl_dist *d);

#ifdef __cplusplus
}
#endif
#endif
