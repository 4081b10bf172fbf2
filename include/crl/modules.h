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
 * constructors RETAIN the networks, modules and specs they wrap; accessors
 * return BORROWED references. Keys are copied.
 *
 * Forward: crl_tdmodule_forward runs a module inside its own scope; the
 * tensors it writes are held by the TensorDict (which retains them), its
 * temporaries are freed when it returns. A missing in_key fails before
 * anything is written. Outputs replace existing entries (crl_td_set).
 *
 * Randomness: every module has its own generator (crl_tdmodule_rng),
 * seeded at construction from a process-wide counter (deterministic for a
 * given construction order); crl_tdmodule_seed reseeds a module and, with
 * sub-streams, every module it wraps. A module that draws random numbers
 * (probabilistic modules in RANDOM mode, exploration wrappers) must not run
 * on two threads at once. */
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

/* ---- exploration mode (thread-local, scoped) ----------------------------- */

/* TorchRL's ExplorationType / set_exploration_type. With no mode pushed the
 * mode is RANDOM (what TorchRL's collectors set). */
typedef enum crl_exploration_mode {
  CRL_EXPLORATION_RANDOM = 0, /* sample; exploration wrappers add noise */
  CRL_EXPLORATION_MODE,       /* the distribution's mode; no noise */
  CRL_EXPLORATION_MEAN,       /* the distribution's mean; no noise */
} crl_exploration_mode;
CRL_API crl_exploration_mode crl_exploration_mode_get(void);
/* Push a mode for a scope / pop back to the previous one. Nest (up to 64
 * levels are remembered). Thread-local. */
CRL_API void crl_exploration_begin(crl_exploration_mode mode);
CRL_API void crl_exploration_end(void);

/* ---- the generic module -------------------------------------------------- */

typedef struct crl_tdmodule_ops {
  const char *name;
  /* Read in_keys from td, write out_keys into td (new tensors or in place).
   * params: this module's parameter TensorDict (own or substitute; never
   * NULL here). */
  int (*forward)(crl_tdmodule *m, crl_td *td, crl_td *params);
  void (*free)(crl_tdmodule *m); /* optional: frees impl */
} crl_tdmodule_ops;

/* For implementers: a module with ops, owned impl state (freed through
 * ops->free, also when the constructor fails), keys (at most 32 each, out
 * keys distinct) and params (retained; NULL for none: an empty
 * TensorDict). The forward runs inside a scope: create outputs with crl's
 * ops and crl_td_set them. */
CRL_API crl_tdmodule *crl_tdmodule_new(const crl_tdmodule_ops *ops, void *impl,
                                       int nin, const char *const *in_keys,
                                       int nout, const char *const *out_keys,
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
/* Run on td with own parameters (params NULL) or a substitute with the
 * same keys (functional call). A missing in_key fails with CRL_EKEY naming
 * it and listing the keys present; td is then unchanged. */
CRL_API int crl_tdmodule_forward(crl_tdmodule *m, crl_td *td, crl_td *params);
/* Adapter for crl_env_rollout / collectors (crl_policy_fn): ctx is the
 * module; runs crl_tdmodule_forward with its own parameters under no-grad
 * (as TorchRL's collectors run policies). */
CRL_API int crl_tdmodule_policy(void *module, crl_td *td);
/* The generator used by stochastic modules (sampling, exploration noise);
 * seeded with crl_tdmodule_seed. BORROWED. */
CRL_API crl_rng *crl_tdmodule_rng(crl_tdmodule *m);
CRL_API void crl_tdmodule_seed(crl_tdmodule *m, uint64_t seed);

/* ---- TensorDictModule, Sequential ---------------------------------------- */

/* TensorDictModule: net's inputs from in_keys, outputs to out_keys (counts
 * must match the net's). Parameters are the net's parameter TensorDict
 * itself (shared, not copied). */
CRL_API crl_tdmodule *crl_td_module_new(crl_module *net, int nin,
                                        const char *const *in_keys, int nout,
                                        const char *const *out_keys);
/* Wrap a C function: fn(ctx, nin, in, nout, out) fills out[i] with new
 * references as crl's ops return them (owned by the current scope: the
 * module's forward runs inside one) and returns 0, or an error code (with
 * crl's error set, or a generic message is set). No parameters. */
typedef int (*crl_td_fn)(void *ctx, int nin, crl_tensor *const *in, int nout,
                         crl_tensor **out);
CRL_API crl_tdmodule *crl_td_module_fn_new(crl_td_fn fn, void *ctx, int nin,
                                           const char *const *in_keys, int nout,
                                           const char *const *out_keys);
/* TensorDictSequential: modules run in order on the same TensorDict.
 * in_keys = keys read before any part writes them; out_keys = every key
 * written (in the order of their last writer, as TorchRL). Parameters:
 * part i's parameter TensorDict (the same object) nested at "i" — "0/...",
 * "1/..."; a substitute may omit the entries of parts without parameters.
 * Missing required in_keys fail before any part runs. */
CRL_API crl_tdmodule *crl_td_sequential_new(int n,
                                            crl_tdmodule *const *modules);
/* BORROWED part i of a sequence. */
CRL_API crl_tdmodule *crl_td_sequential_get(const crl_tdmodule *seq, int i);
/* TorchRL's select_subsequence: the parts whose inputs are available from
 * in_keys (and earlier kept parts) and that contribute to out_keys (either
 * list may be empty: the sequence's own). A new TensorDictSequential
 * sharing the parts. CRL_EKEY if no part is left. */
CRL_API crl_tdmodule *crl_td_sequential_select(const crl_tdmodule *seq, int nin,
                                               const char *const *in_keys,
                                               int nout,
                                               const char *const *out_keys);

/* ---- probabilistic modules ----------------------------------------------- */

/* A zero-initialised struct gives TorchRL's defaults. */
typedef struct crl_prob_options {
  crl_dist_kind dist; /* which distribution */
  /* keys of the distribution parameters in the TensorDict: (loc, scale) for
   * normal kinds, (param) for deltas, (logits) for categoricals. nparams 0
   * gives those names; else nparams must be the kind's count (a NULL entry
   * takes the default name). */
  int nparams;
  const char *param_keys[2];
  const char *out_key;      /* sampled value (NULL: "action") */
  bool return_log_prob;     /* also write log_prob_key */
  const char *log_prob_key; /* NULL: "sample_log_prob" */
  /* bounds for TanhNormal, TanhDelta, TruncatedNormal; both 0: the spec's
   * when it is bounded with the same bounds everywhere, else [-1, 1]
   * (TorchRL's) */
  double low, high;
  /* 0: the kind's default (1 for TanhNormal, TanhDelta, TruncatedNormal as
   * TorchRL; 0 otherwise); 1: the last dim is one event (log_prob sums over
   * it); -1: elementwise */
  int event_dims;
  /* the action spec (retained): outputs are projected into it (bounded
   * floats clamped, differentiably; one-hot / discrete snapped and cast to
   * the spec's dtype); skipped when the distribution's bounds already lie
   * inside it. NULL: no projection. */
  crl_spec *spec;
} crl_prob_options;
/* ProbabilisticTensorDictModule: builds the distribution from param_keys
 * and writes a sample (RANDOM mode), its mode (MODE) or its mean (MEAN; a
 * Categorical, which has none, gives its mode), and with return_log_prob
 * the log-probability of what it wrote (before projection). Samples are
 * reparameterised (rsample) for every kind but Categorical (OneHot uses the
 * pass-through estimator), so gradients flow from the action to the
 * parameters. No parameters of its own. */
CRL_API crl_tdmodule *crl_prob_module_new(const crl_prob_options *opt);
/* The distribution a probabilistic module would sample from for td (new
 * reference). m may also be a sequence ending with one (a
 * ProbabilisticActor: the parts before it run on td first, writing their
 * outputs) or an exploration wrapper around one. params: NULL or a
 * substitute for m's. */
CRL_API crl_dist *crl_prob_module_dist(crl_tdmodule *m, crl_td *td,
                                       crl_td *params);

/* NormalParamExtractor / NormalParamsWrapper's mapping: splits the last dim
 * of in_key ([..., 2k]) into loc = [..., :k] (a view) and
 * scale = max(mapping([..., k:]), scale_lb), written at loc_key / scale_key
 * (NULL: "loc", "scale"). Mappings (TorchRL's): "biased_softplus_B"
 * (softplus(x + inv_softplus(B - m)) + m, m = 0.01, so that 0 maps to B),
 * "biased_softplus_B_M" (m = M), "biased_softplus" (B = 1), "softplus",
 * "exp", "relu", "expln", "none". NULL: "biased_softplus_1.0" (TorchRL's
 * default). scale_lb <= 0: TorchRL's 1e-4. Differentiable; an odd last
 * dim is CRL_ESHAPE. */
CRL_API crl_tdmodule *crl_normal_param_extractor_new(const char *in_key,
                                                     const char *loc_key,
                                                     const char *scale_key,
                                                     const char *scale_mapping,
                                                     double scale_lb);

/* ---- actors and value operators ------------------------------------------ */

/* Actor: net(in_keys) -> "action" (nin 0: in_keys {"observation"}),
 * projected into spec when given (spec may be NULL; see crl_prob_options
 * for how). A TensorDictModule named "Actor". */
CRL_API crl_tdmodule *crl_actor_new(crl_module *net, int nin,
                                    const char *const *in_keys, crl_spec *spec);
/* ProbabilisticActor: `module` writes the distribution parameters (it must
 * list them among its out_keys: CRL_EKEY otherwise), then a probabilistic
 * module (opt) writes the action. A sequence of the two: parameters
 * "0/..." are module's. */
CRL_API crl_tdmodule *crl_prob_actor_new(crl_tdmodule *module,
                                         const crl_prob_options *opt);
/* ValueOperator: net(in_keys) -> "state_value", or "state_action_value"
 * when in_keys contains "action" (TorchRL's rule); out_key NULL for that
 * default; nin 0: in_keys {"observation"}. */
CRL_API crl_tdmodule *crl_value_operator_new(crl_module *net, int nin,
                                             const char *const *in_keys,
                                             const char *out_key);
/* QValueActor: net(in_keys) -> "action_value" [..., n] (nin 0: in_keys
 * {"observation"}); then writes "action", the argmax (first on ties) —
 * one-hot [..., n] in the spec's dtype for a one-hot spec (or int64 when
 * spec is NULL), an index [...] in the spec's dtype for a discrete spec
 * ([..., 1] when the spec's shape ends with 1) — and "chosen_action_value"
 * [..., 1] (differentiable). Other spec kinds are CRL_EUNSUPPORTED. A
 * sequence: parameters "0/..." are net's. */
CRL_API crl_tdmodule *crl_qvalue_actor_new(crl_module *net, int nin,
                                           const char *const *in_keys,
                                           crl_spec *spec);
/* ActorValueOperator over a shared trunk: common writes "hidden" (or its
 * out keys), then policy and value heads read them. A sequence of the
 * three: parameters "0/", "1/", "2/". */
CRL_API crl_tdmodule *crl_actor_value_operator_new(crl_tdmodule *common,
                                                   crl_tdmodule *policy,
                                                   crl_tdmodule *value);
/* Standalone policy (common + policy) and value (common + value) sharing
 * the same modules and parameter tensors. New references. They also
 * accept an ActorCriticOperator (policy: common + policy; value: the whole
 * operator, as TorchRL's get_critic_operator) and an ActorCriticWrapper
 * (its policy / value module). */
CRL_API crl_tdmodule *crl_avo_get_policy_operator(crl_tdmodule *avo);
CRL_API crl_tdmodule *crl_avo_get_value_operator(crl_tdmodule *avo);
/* ActorCriticOperator: common + policy, then a critic reading the action. */
CRL_API crl_tdmodule *crl_actor_critic_operator_new(crl_tdmodule *common,
                                                    crl_tdmodule *policy,
                                                    crl_tdmodule *critic);
/* ActorCriticWrapper: policy and value without a shared trunk. */
CRL_API crl_tdmodule *crl_actor_critic_wrapper_new(crl_tdmodule *policy,
                                                   crl_tdmodule *value);

/* ---- exploration wrappers (act only in RANDOM mode) ---------------------- */

/* Wrappers run the policy, then perturb "action" in RANDOM mode only. Their
 * parameters are the policy's (the same TensorDict); they wrap any module
 * that writes "action". spec NULL: the policy's (an Actor's or a
 * probabilistic module's, found through sequences) when it has one. The
 * annealed value is max(end, init - (init - end) * steps / annealing_num_steps)
 * (annealing_num_steps 0: constant init), steps counted by crl_exploration_step
 * (TorchRL's step(frames)).
 *
 * EGreedyWrapper: each row of the TensorDict's batch takes, with
 * probability eps, a random action from spec (required: from the policy
 * or given) instead of the policy's. eps_end <= eps_init <= 1. */
CRL_API crl_tdmodule *crl_egreedy_wrapper_new(crl_tdmodule *policy,
                                              double eps_init, double eps_end,
                                              int64_t annealing_num_steps,
                                              crl_spec *spec);
/* AdditiveGaussianWrapper: action + sigma * N(0, 1), projected into spec
 * when there is one; sigma annealed from sigma_init to sigma_end. */
CRL_API crl_tdmodule *
crl_additive_gaussian_wrapper_new(crl_tdmodule *policy, double sigma_init,
                                  double sigma_end, int64_t annealing_num_steps,
                                  crl_spec *spec);
/* OrnsteinUhlenbeckProcessWrapper: temporally correlated noise
 *   noise_t = noise_{t-1} + theta (mu - noise_{t-1}) dt + sigma sqrt(dt) W
 * (mu 0), action += eps * noise_t, projected into spec when there is one.
 * The state is kept per row in the TensorDict: "_ou_prev_noise" (the
 * action's shape) and "_ou_steps" (int64, the batch shape), written as out
 * keys; a missing state, or rows where "is_init" ([batch...] or
 * [batch..., 1]) is true, restart from zero. eps anneals as TorchRL's
 * default, 1.0 to 0.1 over 1000 steps (crl_exploration_set_annealing
 * changes it). theta, sigma, dt all 0: TorchRL's 0.15, 0.2, 0.01. */
CRL_API crl_tdmodule *crl_ou_wrapper_new(crl_tdmodule *policy, double theta,
                                         double sigma, double dt,
                                         crl_spec *spec);
/* Advance the annealing of an exploration wrapper by `frames` (>= 0)
 * steps. CRL_EINVAL for another module. */
CRL_API int crl_exploration_step(crl_tdmodule *wrapper, int64_t frames);
/* Current eps (e-greedy, OU) / sigma (Gaussian) of a wrapper; NAN with
 * CRL_EINVAL for another module. */
CRL_API double crl_exploration_value(const crl_tdmodule *wrapper);
/* Reset a wrapper's annealing: value init decreasing to end (end <= init)
 * over annealing_num_steps steps, step count 0. */
CRL_API int crl_exploration_set_annealing(crl_tdmodule *wrapper, double init,
                                          double end,
                                          int64_t annealing_num_steps);

/* ---- recurrent modules --------------------------------------------------- */

/* LSTM / GRU over one step that carries its hidden state through
 * TensorDict keys, as TorchRL's LSTMModule / GRUModule:
 *   LSTM reads in_key, "recurrent_state_h", "recurrent_state_c" and writes
 *        out_key (= h'), "next/recurrent_state_h", "next/recurrent_state_c";
 *   GRU  reads in_key, "recurrent_state" and writes out_key (= h'),
 *        "next/recurrent_state".
 * in_key holds [batch..., input_size]; states are [batch..., 1,
 * hidden_size] (TorchRL's num_layers dim; [batch..., hidden_size] is also
 * read). Missing states, or rows where "is_init" ([batch...] or
 * [batch..., 1]) is true, start at zero; crl_td_step_mdp brings the next
 * state to the root for the following step. Parameters are the cell's
 * (crl_lstm_cell_new / crl_gru_cell_new: weight_ih, weight_hh, bias_ih,
 * bias_hh), initialised from g. */
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
