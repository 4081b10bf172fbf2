/* Dueling Q-networks (Wang et al. 2016, https://arxiv.org/abs/1511.06581),
 * as TorchRL's DuelingMlpDQNet and DuelingCnnDQNet
 * (torchrl/modules/models/models.py):
 *
 *   features  = MLP or ConvNet of the input
 *   advantage = MLP(features) -> [batch..., n_actions]
 *   value     = MLP(features) -> [batch..., 1]
 *   Q         = value + advantage - advantage.mean(-1, keepdim=True)
 *
 * Children (and so parameter prefixes) carry TorchRL's attribute names:
 * "features/...", "advantage/...", "value/...". Defaults are TorchRL's:
 *   MLP variant: features MLP [256, 256] -> 256 with ELU, last layer
 *     activated; heads MLP with one hidden layer of 512, ELU.
 *   CNN variant: features ConvNet 32-64-64 channels, kernels 8-4-3, strides
 *     4-2-1, ELU, flattened; heads as above with lazy in_features (sized at
 *     the first call, when the image size is known).
 * As in TorchRL, every Linear / Conv2d bias that exists at construction is
 * zeroed (lazy layers get their default initialisation when created). */
#include <stdlib.h>

#include "nn_internal.h"

enum { FEATURES = 0, ADVANTAGE = 1, VALUE = 2 };

static int dueling_forward(crl_module *m, crl_td *params, int nin,
                           crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  crl_scope_begin();
  crl_tensor *f = crl__module_run_child(m, params, FEATURES, in[0]);
  crl_tensor *a = f ? crl__module_run_child(m, params, ADVANTAGE, f) : NULL;
  crl_tensor *v = a ? crl__module_run_child(m, params, VALUE, f) : NULL;
  crl_tensor *mean = v ? crl_mean(a, 1, (const int[]){-1}, true) : NULL;
  crl_tensor *q = mean ? crl_add(v, a) : NULL;
  q = q ? crl_sub(q, mean) : NULL;
  if (!q) {
    crl_scope_end();
    return crl_last_error_code();
  }
  out[0] = crl_scope_end_keep(q);
  return 0;
}

static const crl_module_ops mlp_dueling_ops = {"DuelingMlpDQNet",
                                               dueling_forward, NULL};
static const crl_module_ops cnn_dueling_ops = {"DuelingCnnDQNet",
                                               dueling_forward, NULL};

/* Zero every parameter named "bias" (at any depth). */
static int zero_biases(crl_td *td) {
  for (int i = 0; i < crl_td_len(td); i++) {
    crl_tensor *t;
    crl_td *sub;
    const char *k = crl_td_key_at(td, i, &t, &sub);
    int rc = sub ? zero_biases(sub)
                 : (strcmp(k, "bias") == 0 ? crl_init_constant_(t, 0) : 0);
    if (rc) return rc;
  }
  return 0;
}

/* Attach features, advantage and value (each released here), zero the
 * biases; disposes of m and returns NULL on failure. */
static crl_module *assemble(crl_module *m, crl_module *features,
                            crl_module *adv, crl_module *val) {
  crl_module *kids[3] = {features, adv, val};
  static const char *const names[3] = {"features", "advantage", "value"};
  int rc = 0;
  for (int i = 0; i < 3; i++) {
    if (!rc && (!kids[i] || crl__module_add_child(m, names[i], kids[i]) < 0))
      rc = -1;
    if (kids[i]) crl__module_drop(kids[i]);
  }
  if (!rc) rc = zero_biases(m->params);
  if (rc) {
    crl__module_discard(m);
    return NULL;
  }
  return m;
}

static crl_mlp_options head_options(int64_t in, int64_t out, int64_t width) {
  return (crl_mlp_options){.in_features = in,
                           .out_features = out,
                           .depth = 1,
                           .width = width,
                           .activation = CRL_ACT_ELU};
}

crl_module *crl_dueling_mlp_dqnet_new(int64_t in_features, int64_t n_actions,
                                      int64_t hidden, crl_rng *g) {
  if (n_actions <= 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "dueling_mlp_dqnet_new: n_actions must be > 0 (got "
                        "%lld) and a generator is required",
                        (long long)n_actions);
  int64_t fw = hidden > 0 ? hidden : 256, hw = hidden > 0 ? hidden : 512;
  crl_module *m = crl_module_new(&mlp_dueling_ops, NULL, 1, 1);
  if (!m) return NULL;
  const int64_t cells[2] = {fw, fw};
  crl_mlp_options fo = {.in_features = in_features > 0 ? in_features : -1,
                        .out_features = fw,
                        .num_cells = cells,
                        .n_cells = 2,
                        .activation = CRL_ACT_ELU,
                        .activate_last_layer = true};
  crl_mlp_options ao = head_options(fw, n_actions, hw);
  crl_mlp_options vo = head_options(fw, 1, hw);
  crl_module *f = crl_mlp_new(&fo, g);
  crl_module *a = f ? crl_mlp_new(&ao, g) : NULL;
  crl_module *v = a ? crl_mlp_new(&vo, g) : NULL;
  return assemble(m, f, a, v);
}

crl_module *crl_dueling_cnn_dqnet_new(int64_t in_channels, int64_t n_actions,
                                      crl_rng *g) {
  if (n_actions <= 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "dueling_cnn_dqnet_new: n_actions must be > 0 (got "
                        "%lld) and a generator is required",
                        (long long)n_actions);
  crl_module *m = crl_module_new(&cnn_dueling_ops, NULL, 1, 1);
  if (!m) return NULL;
  static const int64_t cells[3] = {32, 64, 64};
  static const int kernels[3] = {8, 4, 3}, strides[3] = {4, 2, 1};
  crl_convnet_options co = {.in_channels = in_channels > 0 ? in_channels : -1,
                            .n_layers = 3,
                            .num_cells = cells,
                            .kernel_sizes = kernels,
                            .strides = strides,
                            .activation = CRL_ACT_ELU};
  crl_mlp_options ao = head_options(-1, n_actions, 512);
  crl_mlp_options vo = head_options(-1, 1, 512);
  crl_module *f = crl_convnet_new(&co, g);
  crl_module *a = f ? crl_mlp_new(&ao, g) : NULL;
  crl_module *v = a ? crl_mlp_new(&vo, g) : NULL;
  return assemble(m, f, a, v);
}
