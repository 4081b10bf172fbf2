/* crl/nn.h — networks (torch.nn and torchrl.modules.models).
 *
 * A crl_module is a network: tensors in, tensors out. Its parameters (and
 * buffers) are a TensorDict keyed by path — "weight", "bias" for a layer,
 * "0/weight", "2/bias" for the layers of a sequence — exactly as TorchRL
 * treats parameters. Every forward takes an optional parameter TensorDict
 * with the same keys: NULL uses the module's own parameters; another one
 * makes a functional call (target networks, ensembles, weight sync).
 *
 * Ownership: modules are refcounted and follow the rule of crl/tensor.h;
 * crl_module_params / crl_module_buffers return BORROWED TensorDicts whose
 * tensors are the live parameters (leaves with requires_grad). Parameters
 * are created outside any scope, so they outlive training-step scopes. */
#ifndef CRL_NN_H
#define CRL_NN_H

#include "crl/random.h"
#include "crl/td.h"
#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crl_module crl_module;

/* What a module implementation provides. */
typedef struct crl_module_ops {
  const char *name;
  /* Compute out[0..nout) (new references) from in[0..nin) with the
   * parameters in `params` (never NULL here: the generic layer substitutes
   * the module's own). */
  int (*forward)(crl_module *m, crl_td *params, int nin, crl_tensor *const *in,
                 int nout, crl_tensor **out);
  /* Free impl. Optional. */
  void (*free)(crl_module *m);
} crl_module_ops;

/* ---- generic module API ------------------------------------------------ */

/* For implementers: a module with ops and owned impl state, an empty
 * parameter TensorDict and an empty buffer TensorDict. */
CRL_API crl_module *crl_module_new(const crl_module_ops *ops, void *impl,
                                   int nin, int nout);
CRL_API void *crl_module_impl(const crl_module *m);
CRL_API crl_module *crl_module_retain(crl_module *m);
CRL_API void crl_module_release(crl_module *m);
CRL_API const char *crl_module_name(const crl_module *m);
/* Number of tensor inputs / outputs the forward takes / gives. */
CRL_API int crl_module_num_inputs(const crl_module *m);
CRL_API int crl_module_num_outputs(const crl_module *m);
/* BORROWED parameter / buffer TensorDicts (batch []). */
CRL_API crl_td *crl_module_params(const crl_module *m);
CRL_API crl_td *crl_module_buffers(const crl_module *m);
/* Total number of parameter elements. */
CRL_API int64_t crl_module_num_params(const crl_module *m);
/* Run the module: params NULL = its own. Errors from the implementation
 * propagate; a params TensorDict missing a key fails with CRL_EKEY naming
 * it. */
CRL_API int crl_module_forward(crl_module *m, crl_td *params, int nin,
                               crl_tensor *const *in, int nout,
                               crl_tensor **out);
/* One input, one output convenience. New reference or NULL. */
CRL_API crl_tensor *crl_module_call(crl_module *m, crl_td *params,
                                    crl_tensor *x);
/* A detached deep copy of the parameters (for target networks): new
 * TensorDict of new leaf tensors that do not require grad. */
CRL_API crl_td *crl_module_params_clone(const crl_module *m,
                                        bool requires_grad);
/* Copy params (same keys and shapes) into the module's parameters in
 * place. */
CRL_API int crl_module_load_params(crl_module *m, crl_td *params);

/* ---- initialisers (in place, no autograd, from an explicit generator) --- */

CRL_API int crl_init_orthogonal_(crl_tensor *t, double gain, crl_rng *g);
CRL_API int crl_init_xavier_uniform_(crl_tensor *t, double gain, crl_rng *g);
CRL_API int crl_init_xavier_normal_(crl_tensor *t, double gain, crl_rng *g);
/* Kaiming (He), mode fan_in, leaky_relu gain sqrt(2 / (1 + a^2)). a < 0
 * picks the default: sqrt(5) for uniform (torch's nn.Linear / Conv2d
 * init, bound 1/sqrt(fan_in)), 0 for normal (torch's kaiming_normal_). */
CRL_API int crl_init_kaiming_uniform_(crl_tensor *t, double a, crl_rng *g);
CRL_API int crl_init_kaiming_normal_(crl_tensor *t, double a, crl_rng *g);
CRL_API int crl_init_constant_(crl_tensor *t, double value);

/* ---- activations -------------------------------------------------------- */

typedef enum crl_activation {
  CRL_ACT_NONE = 0,
  CRL_ACT_RELU,
  CRL_ACT_TANH,
  CRL_ACT_ELU,
  CRL_ACT_LEAKY_RELU,
  CRL_ACT_SILU,
  CRL_ACT_SOFTPLUS,
  CRL_ACT_SIGMOID,
} crl_activation;
/* Apply an activation (torch's default parameters: ELU alpha 1, LeakyReLU
 * slope 0.01, Softplus beta 1 threshold 20). */
CRL_API crl_tensor *crl_activation_apply(crl_activation a, crl_tensor *x);
/* "relu", "tanh", ... and back (-1 if unknown). */
CRL_API const char *crl_activation_name(crl_activation a);
CRL_API int crl_activation_from_name(const char *name);
/* An activation as a parameterless module. */
CRL_API crl_module *crl_activation_module_new(crl_activation a);

/* ---- layers ----------------------------------------------------------------
 * Parameters are float32, initialised as torch does (Kaiming uniform
 * weights, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases) from g. */

/* y = x Wᵀ + b; in_features < 0 makes it lazy: sized at the first call. */
CRL_API crl_module *crl_linear_new(int64_t in_features, int64_t out_features,
                                   bool bias, crl_rng *g);
/* Square kernel; weight [out, in, k, k]; in_channels < 0 makes it lazy. */
CRL_API crl_module *crl_conv2d_new(int64_t in_channels, int64_t out_channels,
                                   int kernel, int stride, int padding,
                                   bool bias, crl_rng *g);
/* LayerNorm over the last `ndim` dims of `shape`, with elementwise affine
 * weight (ones) and bias (zeros); eps 1e-5. */
CRL_API crl_module *crl_layer_norm_new(int ndim, const int64_t *shape,
                                       bool affine);
/* NoisyLinear (factorised Gaussian noise, Fortunato et al.): parameters
 * weight_mu, weight_sigma, bias_mu, bias_sigma; buffers weight_epsilon,
 * bias_epsilon, redrawn by crl_noisy_linear_reset_noise. std_init 0.1 when
 * <= 0. */
CRL_API crl_module *crl_noisy_linear_new(int64_t in_features,
                                         int64_t out_features, double std_init,
                                         crl_rng *g);
CRL_API int crl_noisy_linear_reset_noise(crl_module *m, crl_rng *g);
/* Modules run in order, output i feeding input i+1 (one tensor each);
 * parameters nested under "0/", "1/", ... Each module is retained. */
CRL_API crl_module *crl_sequential_new(int n, crl_module *const *modules);
/* BORROWED i-th module of a sequence. */
CRL_API crl_module *crl_sequential_get(const crl_module *seq, int i);

/* ---- TorchRL models --------------------------------------------------------
 */

/* Options: a zero-initialised struct plus out_features gives TorchRL's
 * defaults where a default is stated. */
typedef struct crl_mlp_options {
  int64_t in_features;      /* <= 0: lazy (inferred at the first call) */
  int64_t out_features;     /* required (> 0) */
  int depth;                /* number of hidden layers when num_cells is NULL */
  int64_t width;            /* their width (default 32 when <= 0) */
  const int64_t *num_cells; /* hidden sizes, or NULL */
  int n_cells;              /* length of num_cells */
  crl_activation activation; /* CRL_ACT_NONE (0) means the default, tanh
                                (TorchRL's default) */
  bool activate_last_layer;
  bool layer_norm; /* LayerNorm after each activated linear, before its
                      activation (TorchRL's norm_class order) */
} crl_mlp_options;
/* TorchRL's MLP: Linear / activation stack. Parameters "0/weight",
 * "0/bias", "2/weight", ... (activation modules take the odd indices, as in
 * TorchRL's nn.Sequential). With layer_norm each activated block is Linear,
 * LayerNorm, activation: "0/weight", "1/weight" (LayerNorm), "3/weight"...
 * crl_sequential_get reaches its layers. */
CRL_API crl_module *crl_mlp_new(const crl_mlp_options *opt, crl_rng *g);

typedef struct crl_convnet_options {
  int64_t in_channels;       /* <= 0: lazy (inferred at the first call) */
  int n_layers;              /* layers (default 3 when <= 0) */
  const int64_t *num_cells;  /* channels per layer (default 32 each) */
  const int *kernel_sizes;   /* default 3 each */
  const int *strides;        /* default 1 each */
  const int *paddings;       /* default 0 each */
  crl_activation activation; /* CRL_ACT_NONE (0) means the default, ELU
                                (TorchRL's default) */
  bool no_squash;            /* false (default): flatten the output to
                                [batch..., C*H*W] (TorchRL's SquashDims aggregator);
                                true: keep [batch..., C, H, W] */
} crl_convnet_options;
/* TorchRL's ConvNet over [batch..., C, H, W] inputs (any number of leading
 * batch dims, or none): Conv2d, activation per layer (the last one too),
 * then the squash. Parameters "0/weight", "0/bias", "2/weight", ... */
CRL_API crl_module *crl_convnet_new(const crl_convnet_options *opt, crl_rng *g);

/* Dueling heads (TorchRL's DuelingMlpDQNet / DuelingCnnDQNet): value and
 * advantage streams combined as V + A - mean(A) over the last dim. Input ->
 * "features" -> ["advantage" [batch..., n_actions], "value" [batch..., 1]]
 * (parameter prefixes as TorchRL's attributes). The MLP variant takes flat
 * observations [batch..., in_features]: features MLP [256, 256] -> 256, ELU
 * (last layer activated), heads MLP with one hidden layer of 512, ELU —
 * TorchRL's defaults when hidden <= 0; hidden > 0 sets every width to
 * hidden (small nets). The CNN variant takes pixels [batch..., C, H, W]
 * through a ConvNet (32-64-64 channels, kernels 8-4-3, strides 4-2-1, ELU,
 * flattened), heads as above with lazy in_features (created at the first
 * call with the module's own parameters). As in TorchRL, biases existing at
 * construction are zeroed. in_features / in_channels <= 0: lazy. */
CRL_API crl_module *crl_dueling_mlp_dqnet_new(int64_t in_features,
                                              int64_t n_actions, int64_t hidden,
                                              crl_rng *g);
CRL_API crl_module *crl_dueling_cnn_dqnet_new(int64_t in_channels,
                                              int64_t n_actions, crl_rng *g);

/* DDPG nets as TorchRL's, with its default sizes and parameter names:
 *   DdpgMlpActor  obs -> "mlp" 400 -> 300 -> act_dim (ELU).
 *   DdpgMlpQNet   (obs, action) -> Q [batch..., 1]: "mlp1" obs -> 400 (ELU),
 *                 then "mlp2" on [mlp1(obs), action] -> 300 -> 1: the action
 *                 enters at the second layer, as in the DDPG paper.
 *   DdpgCnnActor  pixels -> "convnet" (32-64-64, kernels 8-4-3, strides
 *                 4-2-1, paddings 0-0-1, ELU, flattened) -> "mlp" 200 -> 200
 *                 -> act_dim (lazy in_features). TWO outputs, as TorchRL's:
 *                 out[0] the action, out[1] the flattened conv features.
 *   DdpgCnnQNet   (pixels, action) -> Q: "convnet" (32-64-128, as above,
 *                 then global average pooling -> [batch..., 128]), then
 *                 "mlp" on [pooled, action] -> 200 -> 200 -> 1.
 * The last Linear of each head is uniform(-scale/2, scale/2) (TorchRL's
 * ddpg_init_last_layer: scale 6e-3 MLP nets, 6e-4 CNN nets). As in TorchRL
 * the actor's output is NOT squashed: bound it in the policy (a tanh, as
 * TorchRL's TanhModule does). obs_dim / in_channels <= 0: lazy. */
CRL_API crl_module *crl_ddpg_mlp_actor_new(int64_t obs_dim, int64_t act_dim,
                                           crl_rng *g);
CRL_API crl_module *crl_ddpg_mlp_qnet_new(int64_t obs_dim, int64_t act_dim,
                                          crl_rng *g);
CRL_API crl_module *crl_ddpg_cnn_actor_new(int64_t in_channels, int64_t act_dim,
                                           crl_rng *g);
CRL_API crl_module *crl_ddpg_cnn_qnet_new(int64_t in_channels, int64_t act_dim,
                                          crl_rng *g);

/* Recurrent cells (torch.nn.GRUCell / LSTMCell): GRU takes (x, h) and gives
 * h'; LSTM takes (x, h, c) and gives (h', c'). x [batch..., input_size]; h,
 * c [batch..., hidden_size] with x's batch dims (or none). Parameters
 * weight_ih [G*H, in], weight_hh [G*H, H], bias_ih, bias_hh [G*H], gates in
 * torch's order (GRU r, z, n; LSTM i, f, g, o), all uniform(-1/sqrt(H),
 * 1/sqrt(H)); torch's gate equations (GRU: n = tanh(W_in x + b_in + r *
 * (W_hn h + b_hn))). The gate arithmetic is one fused, differentiable
 * kernel after the two matrix products. */
CRL_API crl_module *crl_gru_cell_new(int64_t input_size, int64_t hidden_size,
                                     crl_rng *g);
CRL_API crl_module *crl_lstm_cell_new(int64_t input_size, int64_t hidden_size,
                                      crl_rng *g);

/* ---- parameter files (safetensors)
 * ------------------------------------------- The safetensors format (Hugging
 * Face): an 8-byte little-endian header length N, N bytes of JSON
 * {"__metadata__": {str: str} (optional), key: {"dtype":
 * "F32"|"F64"|"I64"|"I32"|"U8"|"BOOL", "shape": [...], "data_offsets": [begin,
 * end]}}, then the raw data (little endian, C order; offsets relative to the
 * data, covering it without holes or overlap). Nested keys are stored with '/'
 * in the name and rebuilt as nested TensorDicts. Files are written to a
 * temporary file renamed over path (a failed save leaves an existing file
 * intact); the header is padded to 8 bytes and data aligned, as the reference
 * writer does. The loader is bounds-checked and treats the file as hostile: a
 * truncated file, a header length over 100 MB or past the end, invalid JSON,
 * missing or ill-typed fields, an unsupported dtype (F16, BF16, ...), a shape
 * that does not match its offsets, out-of-range, overlapping or gapped offsets,
 * trailing bytes or a BOOL byte other than 0/1 fail with CRL_EFORMAT and a
 * message saying what is wrong; a missing file is CRL_EIO. */
/* Save every leaf (any dtype, contiguous or not). The key "__metadata__"
 * and keys that are not UTF-8 are CRL_EKEY. Metadata {"format": "pt"}. */
CRL_API int crl_td_save_safetensors(crl_td *td, const char *path);
/* Load into a new TensorDict (batch []), keys in the header's order. */
CRL_API crl_td *crl_td_load_safetensors(const char *path);
/* Load into a module's parameters in place: every key must exist in both
 * with equal shape and dtype (else CRL_EKEY / CRL_ESHAPE / CRL_EDTYPE naming
 * the key and both shapes or dtypes; nothing is changed then). Save with
 * crl_td_save_safetensors(crl_module_params(m), path). */
CRL_API int crl_module_load_safetensors(crl_module *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
