/* crl/modules.h — TensorDict modules, actors, value operators, exploration
 * (tensordict.nn and torchrl.modules).
 *
 * A crl_tdmodule reads its in_keys from a TensorDict and writes its
 * out_keys into it. Its parameters are a TensorDict (the wrapped networks'
 * parameters, nested by position for sequences: "0/...", "1/..."); every
 * forward can take another parameter TensorDict with the same keys for a
 * functional call (target networks, ensembles).
 *
 * Ownership: modules are refcounted and follow the rule of crl/tensor.h;
 * constructors RETAIN the networks and modules they wrap; accessors return
 * BORROWED references. Keys are copied. */
#ifndef CRL_MODULES_H
#define CRL_MODULES_H

#include "crl/distributions.h"
#include "crl/nn.h"
#include "crl/specs.h"
#include "crl/td.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_tdmodule crl_tdmodule;

/* ---- exploration mode (thread-local, scoped) ------------------------------ */

typedef enum crl_exploration_mode {
  CRL_EXPLORATION_RANDOM = 0, /* sample; exploration wrappers add noise */
  CRL_EXPLORATION_MODE,       /* the distribution's mode; no noise */
  CRL_EXPLORATION_MEAN,       /* the distribution's mean; no noise */
} crl_exploration_mode;
CRL_API crl_exploration_mode crl_exploration_mode_get(void);
/* Push a mode for a scope / pop back to the previous one. Nest. */
CRL_API void crl_exploration_begin(crl_exploration_mode mode);
CRL_API void crl_exploration_end(void);

/* ---- the generic module ------------------------------------------------------ */

typedef struct crl_tdmodule_ops {
  const char *name;
  /* Read in_keys from td, write out_keys into td (new tensors or in place).
   * params: this module's parameter TensorDict (own or substitute; never
   * NULL here). */
  int (*forward)(crl_tdmodule *m, crl_td *td, crl_td *params);
  void (*free)(crl_tdmodule *m); /* optional: frees impl */
} crl_tdmodule_ops;

/* For implementers: params (retained, may be NULL for none). */
CRL_API crl_tdmodule *crl_tdmodule_new(const crl_tdmodule_ops *ops,
                                       void *impl, int nin,
                                       const char *const *in_keys, int nout,
                                       const char *const *out_keys,
                                       crl_td *params);
CRL_API void *crl_tdmodule_impl(const crl_tdmodule *m);
CRL_API crl_tdmodule *crl_tdmodule_retain(crl_tdmodule *m);
CRL_API void crl_tdmodule_release(crl_tdmodule *m);
CRL_API const char *crl_tdmodule_name(const crl_tdmodule *m);
CRL_API int crl_tdmodule_num_in_keys(const crl_tdmodule *m);
CRL_API int crl_tdmodule_num_out_keys(const crl_tdmodule *m);
/* BORROWED key i. */
CRL_API const char *crl_tdmodule_in_key(const crl_tdmodule *m, int i);
CRL_API const char *crl_tdmodule_out_key(const crl_tdmodule *m, int i);
/* BORROWED parameter TensorDict (batch []; empty if none). */
CRL_API crl_td *crl_tdmodule_params(const crl_tdmodule *m);
/* Run on td with own parameters (params NULL) or a substitute. A missing
 * in_key fails with CRL_EKEY naming it and listing the keys present. */
CRL_API int crl_tdmodule_forward(crl_tdmodule *m, crl_td *td,
                                 crl_td *params);
/* Adapter for crl_env_rollout / collectors (crl_policy_fn): ctx is the
 * module. */
CRL_API int crl_tdmodule_policy(void *module, crl_td *td);
/* The generator used by stochastic modules (sampling, exploration noise);
 * seeded with crl_tdmodule_seed. BORROWED. */
CRL_API crl_rng *crl_tdmodule_rng(crl_tdmodule *m);
CRL_API void crl_tdmodule_seed(crl_tdmodule *m, uint64_t seed);

/* ---- TensorDictModule, Sequential ------------------------------------------- */

/* TensorDictModule: net's inputs from in_keys, outputs to out_keys (counts
 * must match the net's). Parameters are the net's. */
CRL_API crl_tdmodule *crl_td_module_new(crl_module *net, int nin,
                                        const char *const *in_keys, int nout,
                                        const char *const *out_keys);
/* Wrap a C function: fn(ctx, in, out) with out[i] new references. */
typedef int (*crl_td_fn)(void *ctx, int nin, crl_tensor *const *in, int nout,
                         crl_tensor **out);
CRL_API crl_tdmodule *crl_td_module_fn_new(crl_td_fn fn, void *ctx, int nin,
                                           const char *const *in_keys,
                                           int nout,
                                           const char *const *out_keys);
/* TensorDictSequential: modules run in order on the same TensorDict.
 * in_keys = keys read before any part writes them; out_keys = every key
 * written. Parameters nested "0/", "1/", ... */
CRL_API crl_tdmodule *crl_td_sequential_new(int n,
                                            crl_tdmodule *const *modules);
/* BORROWED part i of a sequence. */
CRL_API crl_tdmodule *crl_td_sequential_get(const crl_tdmodule *seq, int i);
/* The shortest sub-sequence that produces out_keys from in_keys (either
 * list may be empty: all). CRL_EKEY if impossible. */
CRL_API crl_tdmodule *crl_td_sequential_select(const crl_tdmodule *seq,
                                               int nin,
                                               const char *const *in_keys,
                                               int nout,
                                               const char *const *out_keys);

/* ---- probabilistic modules -------------------------------------------------- */

typedef struct crl_prob_options {
  crl_dist_kind dist; /* which distribution */
  /* keys of the distribution parameters in the TensorDict: (loc, scale) for
   * normal kinds, (param) for deltas, (logits) for categoricals */
  int nparams;
  const char *param_keys[2];
  const char *out_key;     /* sampled value (default "action") */
  bool return_log_prob;    /* also write log_prob_key */
  const char *log_prob_key; /* default "sample_log_prob" */
  double low, high;        /* bounds for Tanh* / truncated kinds */
  int event_dims;          /* default 1 for Tanh*, 0 otherwise */
  /* the action spec: when given, outputs are projected into it */
  crl_spec *spec;
} crl_prob_options;
/* ProbabilisticTensorDictModule: builds the distribution from param_keys
 * and writes a sample (RANDOM mode), its mode or its mean (per the
 * exploration mode). Reparameterised (rsample) where the kind allows, so
 * gradients flow from the value to the parameters. */
CRL_API crl_tdmodule *crl_prob_module_new(const crl_prob_options *opt);
/* The distribution the module would sample from for td (new reference). */
CRL_API crl_dist *crl_prob_module_dist(crl_tdmodule *m, crl_td *td,
                                       crl_td *params);

/* NormalParamExtractor / NormalParamsWrapper's mapping: splits the last dim
 * of in_key into loc and scale halves; scale = mapping(raw) with
 * "biased_softplus_B" (softplus(x + inv_softplus(B)), TorchRL's default
 * B = 1.0), "exp", "softplus", "relu" (with scale_lb floor, default 1e-4). */
CRL_API crl_tdmodule *crl_normal_param_extractor_new(
    const char *in_key, const char *loc_key, const char *scale_key,
    const char *scale_mapping, double scale_lb);

/* ---- actors and value operators ---------------------------------------------- */

/* Actor: net(in_keys) -> "action" (default in_keys {"observation"}),
 * projected into spec when given (spec may be NULL). */
CRL_API crl_tdmodule *crl_actor_new(crl_module *net, int nin,
                                    const char *const *in_keys,
                                    crl_spec *spec);
/* ProbabilisticActor: `module` writes the distribution parameters, then a
 * probabilistic module (opt) samples the action. */
CRL_API crl_tdmodule *crl_prob_actor_new(crl_tdmodule *module,
                                         const crl_prob_options *opt);
/* ValueOperator: net(in_keys) -> "state_value", or "state_action_value"
 * when in_keys contains "action" (TorchRL's rule); out_key NULL for that
 * default. */
CRL_API crl_tdmodule *crl_value_operator_new(crl_module *net, int nin,
                                             const char *const *in_keys,
                                             const char *out_key);
/* QValueActor: net(observation) -> "action_value" [..., n]; writes
 * "action" as the argmax (one-hot like the spec when it is one-hot, else
 * an int64 index) and "chosen_action_value". */
CRL_API crl_tdmodule *crl_qvalue_actor_new(crl_module *net, int nin,
                                           const char *const *in_keys,
                                           crl_spec *spec);
/* ActorValueOperator over a shared trunk: common writes "hidden" (or its
 * out keys), then policy and value heads read them. */
CRL_API crl_tdmodule *crl_actor_value_operator_new(crl_tdmodule *common,
                                                   crl_tdmodule *policy,
                                                   crl_tdmodule *value);
/* Standalone policy (common + policy) and value (common + value) sharing
 * the same parameter tensors. New references. */
CRL_API crl_tdmodule *crl_avo_get_policy_operator(crl_tdmodule *avo);
CRL_API crl_tdmodule *crl_avo_get_value_operator(crl_tdmodule *avo);
/* ActorCriticOperator: common + policy, then a critic reading the action. */
CRL_API crl_tdmodule *crl_actor_critic_operator_new(crl_tdmodule *common,
                                                    crl_tdmodule *policy,
                                                    crl_tdmodule *critic);
/* ActorCriticWrapper: policy and value without a shared trunk. */
CRL_API crl_tdmodule *crl_actor_critic_wrapper_new(crl_tdmodule *policy,
                                                   crl_tdmodule *value);

/* ---- exploration wrappers (act only in RANDOM mode) ---------------------------- */

/* EGreedyWrapper: with probability eps a random action from spec; eps
 * anneals linearly from eps_init to eps_end over annealing_num_steps calls
 * of crl_exploration_step. */
CRL_API crl_tdmodule *crl_egreedy_wrapper_new(crl_tdmodule *policy,
                                              double eps_init, double eps_end,
                                              int64_t annealing_num_steps,
                                              crl_spec *spec);
/* AdditiveGaussianWrapper: action + sigma * N(0, 1) (clipped to spec),
 * sigma annealed from sigma_init to sigma_end. */
CRL_API crl_tdmodule *crl_additive_gaussian_wrapper_new(
    crl_tdmodule *policy, double sigma_init, double sigma_end,
    int64_t annealing_num_steps, crl_spec *spec);
/* OrnsteinUhlenbeckProcessWrapper: temporally correlated noise, state kept
 * per env in the TensorDict ("_ou_prev_noise", "_ou_steps"), reset where
 * "is_init" is true. TorchRL's defaults for theta 0.15, mu 0, sigma 0.2,
 * dt 0.01. */
CRL_API crl_tdmodule *crl_ou_wrapper_new(crl_tdmodule *policy, double theta,
                                         double sigma, double dt,
                                         crl_spec *spec);
/* Advance the annealing of an exploration wrapper by `frames` steps. */
CRL_API int crl_exploration_step(crl_tdmodule *wrapper, int64_t frames);
/* Current eps / sigma of a wrapper. */
CRL_API double crl_exploration_value(const crl_tdmodule *wrapper);

/* ---- recurrent modules --------------------------------------------------------- */

/* LSTM / GRU over one step that carries its hidden state through
 * TensorDict keys: reads in_key and "recurrent_state_h" (and
 * "recurrent_state_c"), writes out_key and "next/recurrent_state_h" (and
 * c). Missing states, or rows where "is_init" is true, start at zero. */
CRL_API crl_tdmodule *crl_lstm_module_new(int64_t input_size,
                                          int64_t hidden_size,
                                          const char *in_key,
                                          const char *out_key, crl_rng *g);
CRL_API crl_tdmodule *crl_gru_module_new(int64_t input_size,
                                         int64_t hidden_size,
                                         const char *in_key,
                                         const char *out_key, crl_rng *g);

#ifdef __cplusplus
}
#endif
#endif
