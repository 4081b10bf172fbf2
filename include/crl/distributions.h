/* crl/distributions.h — probability distributions (torch.distributions and
 * torchrl.modules.distributions).
 *
 * A distribution is a small refcounted object holding its parameter tensors
 * (retained, so gradients flow back to whatever produced them). Like a
 * tensor, a new distribution is owned by the innermost open scope (or by the
 * caller if none is open): release it with crl_dist_release only when no
 * scope owns it. Methods return new tensors (ownership rule of
 * crl/tensor.h); all are differentiable where torch's are: log_prob and
 * entropy with respect to the parameters, rsample (reparameterised) with
 * respect to the parameters.
 *
 * Shapes: a sample has the parameters' broadcast shape (for categorical
 * kinds: the logits' shape without the last, category dim; OneHot samples
 * keep it). batch_shape is that shape without the event dims; event_shape is
 * [] except for OneHotCategorical ([K]) and for kinds created with
 * event_dims = 1 (the last dim is one event: log_prob and entropy sum over
 * it, as TorchRL's TanhNormal / IndependentNormal do). log_prob(value)
 * broadcasts value against the sample shape and returns batch-shaped
 * results (value's extra leading dims are kept).
 *
 * A distribution may be read from several threads, but sample/rsample
 * must not run on one distribution from two threads at once (TanhNormal
 * caches its last sample).
 *
 * dtypes: parameters must be float32/float64 (loc and scale of different
 * float dtypes are promoted); samples and log-probs have that dtype
 * (Categorical samples are int64).
 *
 * Errors (NULL, crl_last_error names the constructor or method and the
 * shapes / value at fault): a NULL or non-float parameter, loc and scale
 * shapes that do not broadcast, a scale that is not > 0, low >= high or a
 * non-finite bound, event_dims not 0/1 (or 1 with 0-dim parameters), a value
 * whose shape does not broadcast, a categorical value out of [0, K). */
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

/* Normal(loc, scale); scale > 0 (checked). loc and scale broadcast.
 * event_dims 0 (elementwise) or 1 (the last dim is one diagonal event:
 * log_prob/entropy sum over it). mode = mean = loc. */
CRL_API crl_dist *crl_normal_new(crl_tensor *loc, crl_tensor *scale,
                                 int event_dims);
/* TorchRL's TanhNormal: y = low + (high - low) * (tanh(x) + 1) / 2 with
 * x ~ Normal(loc, scale). As TorchRL's SafeTanhTransform, tanh(x) is clamped
 * to [-1 + eps, 1 - eps] (eps: 1e-6 for float32, 1e-15 for float64; the
 * gradient is tanh's) so samples stay strictly inside the bounds.
 * log_prob(y) = Normal.log_prob(x) - log|dy/dx| with
 * log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x)) and the affine term
 * log((high - low) / 2); x = atanh of y rescaled to [-1, 1] and clamped
 * as above (values outside [low, high] are clamped: finite log-prob). When
 * value is the last tensor returned by sample/rsample of this distribution
 * (same tensor, unmodified), its pre-tanh x is reused: exact and with the
 * reparameterised gradient. event_dims as above (TorchRL's default is 1).
 * low/high are finite scalars, low < high. mode and mean are the
 * deterministic sample tanh(loc) scaled into [low, high], as TorchRL's
 * mode/deterministic_sample (the true mean has no closed form). entropy has
 * no closed form: a Monte-Carlo estimate (see crl_dist_entropy). */
CRL_API crl_dist *crl_tanh_normal_new(crl_tensor *loc, crl_tensor *scale,
                                      double low, double high, int event_dims);
/* Normal(loc, scale) truncated to [low, high] (finite scalars, low < high),
 * as TorchRL's TruncatedNormal (which always uses event_dims 1). Sampling
 * by inverse CDF computed in double precision with tail-accurate
 * log-CDF / inverse-CDF (reparameterised: gradients to loc and scale).
 * log_prob is the truncated density (-inf outside [low, high]); entropy and
 * mean are closed forms; mode is loc clamped into the bounds. */
CRL_API crl_dist *crl_truncated_normal_new(crl_tensor *loc, crl_tensor *scale,
                                           double low, double high,
                                           int event_dims);
/* Deterministic: always `param`. log_prob is 0 where value equals param
 * within |value - param| < 1e-6 + 1e-6 |param| (all over the event dims)
 * and -inf elsewhere (TorchRL's Delta; torchrl writes +inf for the match,
 * crl the log of the probability mass 1); no gradient. entropy is 0.
 * rsample is param itself (gradient 1); mode = mean = param. */
CRL_API crl_dist *crl_delta_new(crl_tensor *param, int event_dims);
/* Deterministic tanh(param) scaled into [low, high] (clamped inside as
 * TanhNormal). log_prob, entropy as Delta (compared with that point);
 * mode = mean = sample = that point; rsample is differentiable in param. */
CRL_API crl_dist *crl_tanh_delta_new(crl_tensor *param, double low, double high,
                                     int event_dims);
/* Categorical over the last dim of logits [..., K] (unnormalised; -inf
 * masks a category); samples are int64 indices [...]. log_prob takes
 * integer indices in [0, K). entropy = -sum p log p (0 log 0 = 0). mode is
 * the argmax; mean is CRL_EUNSUPPORTED (torch returns NaN). */
CRL_API crl_dist *crl_categorical_new(crl_tensor *logits);
/* One-hot categorical over the last dim of logits [..., K]; samples are
 * one-hot [..., K] in the logits' dtype. log_prob(value) uses the argmax of
 * value's last dim (torch's). rsample is TorchRL's pass-through estimator:
 * the one-hot sample's values with the gradient of the probabilities.
 * mode is the one-hot argmax, mean the probabilities. */
CRL_API crl_dist *crl_one_hot_categorical_new(crl_tensor *logits);

CRL_API crl_dist *crl_dist_retain(crl_dist *d);
CRL_API void crl_dist_release(crl_dist *d);
CRL_API crl_dist_kind crl_dist_kind_of(const crl_dist *d);
/* TorchRL's class name: "Normal", "TanhNormal", "TruncatedNormal", "Delta",
 * "TanhDelta", "Categorical", "OneHotCategorical". */
CRL_API const char *crl_dist_name(const crl_dist *d);
/* Shape of one sample (batch_shape + event_shape); *ndim receives its
 * number of dims. Borrowed, valid while d lives. */
CRL_API const int64_t *crl_dist_shape(const crl_dist *d, int *ndim);
/* Number of event dims of a sample (0 or 1). */
CRL_API int crl_dist_event_ndim(const crl_dist *d);

/* A sample (no gradient). */
CRL_API crl_tensor *crl_dist_sample(crl_dist *d, crl_rng *g);
/* A reparameterised sample (gradient to the parameters). CRL_EUNSUPPORTED
 * for Categorical. */
CRL_API crl_tensor *crl_dist_rsample(crl_dist *d, crl_rng *g);
CRL_API crl_tensor *crl_dist_log_prob(crl_dist *d, crl_tensor *value);
/* Closed form where one exists (Normal, TruncatedNormal, Categorical,
 * OneHotCategorical; 0 for the deltas): g and samples are then ignored
 * (g may be NULL). TanhNormal has none: the Monte-Carlo estimate
 * -(1/samples) sum_s log_prob(rsample_s) from `samples` >= 1
 * reparameterised draws of g (differentiable, as TorchRL's PPO loss
 * computes it). */
CRL_API crl_tensor *crl_dist_entropy(crl_dist *d, crl_rng *g, int samples);
CRL_API crl_tensor *crl_dist_mode(crl_dist *d);
CRL_API crl_tensor *crl_dist_mean(crl_dist *d);

#ifdef __cplusplus
}
#endif
#endif
