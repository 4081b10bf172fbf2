/* DDPG networks (Lillicrap et al. 2016, https://arxiv.org/abs/1509.02971),
 * as TorchRL's DdpgMlpActor, DdpgMlpQNet, DdpgCnnActor and DdpgCnnQNet
 * (torchrl/modules/models/models.py), with TorchRL's defaults and parameter
 * names:
 *
 *   DdpgMlpActor  "mlp":  MLP obs -> 400 -> 300 -> act_dim, ELU.
 *   DdpgMlpQNet   "mlp1": MLP obs -> 400, ELU on its output;
 *                 "mlp2": MLP [mlp1(obs), action] -> 300 -> 1, ELU
 *                 (the action enters at the second layer).
 *   DdpgCnnActor  "convnet": ConvNet 32-64-64 channels, kernels 8-4-3,
 *                 strides 4-2-1, paddings 0-0-1, ELU, flattened (SquashDims);
 *                 "mlp": MLP hidden -> 200 -> 200 -> act_dim, ELU, lazy
 *                 in_features. Outputs (action, hidden) as TorchRL's does.
 *   DdpgCnnQNet   "convnet": ConvNet 32-64-128 channels, kernels 8-4-3,
 *                 strides 4-2-1, paddings 0-0-1, ELU, then global average
 *                 pooling (AdaptiveAvgPool2d(1) + squeeze) -> [batch..., 128];
 *                 "mlp": MLP [pooled, action] -> 200 -> 200 -> 1, ELU.
 *
 * The last Linear of each MLP head is initialised as ddpg_init_last_layer
 * does: weight and bias uniform(-scale/2, scale/2), scale 6e-3 for the MLP
 * nets and 6e-4 for the CNN nets; other layers keep torch's defaults. As in
 * TorchRL the actor's output is not squashed: bound it with a tanh in the
 * policy (TorchRL's TanhModule) or keep it as the paper's pre-activation. */
#include <stdlib.h>

#include "nn_internal.h"

typedef enum { MLP_ACTOR, MLP_QNET, CNN_ACTOR, CNN_QNET } ddpg_kind;

typedef struct ddpg_impl {
  ddpg_kind kind;
} ddpg_impl;

static void ddpg_free(crl_module *m) { free(m->impl); }

/* [a, b] along the last dim; the leading dims must agree. */
static crl_tensor *cat_last(const char *op, crl_tensor *a, crl_tensor *b) {
  bool ok = a->ndim == b->ndim;
  for (int d = 0; ok && d < a->ndim - 1; d++)
    ok = a->shape[d] == b->shape[d];
  if (!ok) {
    char sa[96], sb[96];
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: observation features %s and action %s must "
                        "share their leading (batch) dims",
                        op, CRL_SHAPE_STR(a, sa), CRL_SHAPE_STR(b, sb));
  }
  crl_tensor *ts[2] = {a, b};
  return crl_cat(2, ts, -1);
}

static int ddpg_forward(crl_module *m, crl_td *params, int nin,
                        crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  ddpg_impl *I = m->impl;
  const char *op = crl_module_name(m);
  crl_scope_begin();
  crl_tensor *y = NULL, *h = NULL;
  switch (I->kind) {
  case MLP_ACTOR: y = crl__module_run_child(m, params, 0, in[0]); break;
  case MLP_QNET:
    h = crl__module_run_child(m, params, 0, in[0]);
    h = h ? cat_last(op, h, in[1]) : NULL;
    y = h ? crl__module_run_child(m, params, 1, h) : NULL;
    break;
  case CNN_ACTOR:
    h = crl__module_run_child(m, params, 0, in[0]);
    y = h ? crl__module_run_child(m, params, 1, h) : NULL;
    break;
  case CNN_QNET:
    h = crl__module_run_child(m, params, 0, in[0]); /* [batch..., C, H', W'] */
    h = h ? crl_mean(h, 2, (const int[]){-2, -1}, false) : NULL;
    h = h ? cat_last(op, h, in[1]) : NULL;
    y = h ? crl__module_run_child(m, params, 1, h) : NULL;
    break;
  }
  if (!y) {
    crl_scope_end();
    return crl_last_error_code();
  }
  if (I->kind == CNN_ACTOR) {
    /* hand both outputs to the caller's scope */
    crl_tensor_retain(h);
    out[0] = crl_scope_end_keep(y);
    crl__scope_adopt(h);
    out[1] = h;
    return 0;
  }
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static const crl_module_ops ops[4] = {
    [MLP_ACTOR] = {"DdpgMlpActor", ddpg_forward, ddpg_free},
    [MLP_QNET] = {"DdpgMlpQNet", ddpg_forward, ddpg_free},
    [CNN_ACTOR] = {"DdpgCnnActor", ddpg_forward, ddpg_free},
    [CNN_QNET] = {"DdpgCnnQNet", ddpg_forward, ddpg_free},
};

/* ddpg_init_last_layer: the last child of mlp with a weight. */
static int init_last_layer(crl_module *mlp, double scale, crl_rng *g) {
  for (int i = mlp->nchildren - 1; i >= 0; i--) {
    crl_td *p = mlp->children[i].m->params;
    crl_tensor *w = crl_td_find(p, "weight");
    if (!w) continue;
    crl_tensor *b = crl_td_find(p, "bias");
    int rc = crl__param_uniform_(w, scale / 2, g);
    if (!rc && b) rc = crl__param_uniform_(b, scale / 2, g);
    return rc;
  }
  return crl__err(CRL_ESTATE, "ddpg: no Linear layer to initialise");
}

static crl_module *new_net(ddpg_kind kind, int nin, int nout) {
  ddpg_impl *I = calloc(1, sizeof *I);
  if (!I) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", ops[kind].name);
  I->kind = kind;
  return crl_module_new(&ops[kind], I, nin, nout);
}

/* Attach children (each released here); the last one is the MLP head whose
 * last layer gets the DDPG initialisation. Disposes of m on failure. */
static crl_module *assemble(crl_module *m, int n, crl_module **kids,
                            const char *const *names, double scale,
                            crl_rng *g) {
  int rc = m ? 0 : -1;
  for (int i = 0; i < n; i++) {
    if (!rc && (!kids[i] || crl__module_add_child(m, names[i], kids[i]) < 0))
      rc = -1;
    if (kids[i]) crl__module_drop(kids[i]);
  }
  if (!rc) rc = init_last_layer(m->children[n - 1].m, scale, g);
  if (rc) {
    if (m) crl__module_discard(m);
    return NULL;
  }
  return m;
}

static int check_dims(const char *op, int64_t in, int64_t act, crl_rng *g) {
  if (act <= 0 || !g)
    return crl__err(CRL_EINVAL,
                    "%s: act_dim must be > 0 (got %lld) and a generator is "
                    "required",
                    op, (long long)act);
  (void)in;
  return 0;
}

crl_module *crl_ddpg_mlp_actor_new(int64_t obs_dim, int64_t act_dim,
                                   crl_rng *g) {
  if (check_dims("ddpg_mlp_actor_new", obs_dim, act_dim, g)) return NULL;
  static const int64_t cells[2] = {400, 300};
  crl_mlp_options o = {.in_features = obs_dim > 0 ? obs_dim : -1,
                       .out_features = act_dim,
                       .num_cells = cells,
                       .n_cells = 2,
                       .activation = CRL_ACT_ELU};
  crl_module *m = new_net(MLP_ACTOR, 1, 1);
  crl_module *kids[1] = {m ? crl_mlp_new(&o, g) : NULL};
  static const char *const names[1] = {"mlp"};
  return assemble(m, 1, kids, names, 6e-3, g);
}

crl_module *crl_ddpg_mlp_qnet_new(int64_t obs_dim, int64_t act_dim,
                                  crl_rng *g) {
  if (check_dims("ddpg_mlp_qnet_new", obs_dim, act_dim, g)) return NULL;
  static const int64_t cells2[1] = {300};
  crl_mlp_options o1 = {.in_features = obs_dim > 0 ? obs_dim : -1,
                        .out_features = 400,
                        .depth = 0,
                        .activation = CRL_ACT_ELU,
                        .activate_last_layer = true};
  crl_mlp_options o2 = {.in_features = 400 + act_dim,
                        .out_features = 1,
                        .num_cells = cells2,
                        .n_cells = 1,
                        .activation = CRL_ACT_ELU};
  crl_module *m = new_net(MLP_QNET, 2, 1);
  crl_module *kids[2] = {NULL, NULL};
  kids[0] = m ? crl_mlp_new(&o1, g) : NULL;
  kids[1] = kids[0] ? crl_mlp_new(&o2, g) : NULL;
  static const char *const names[2] = {"mlp1", "mlp2"};
  return assemble(m, 2, kids, names, 6e-3, g);
}

static const int cnn_kernels[3] = {8, 4, 3}, cnn_strides[3] = {4, 2, 1},
                 cnn_paddings[3] = {0, 0, 1};

/* the ConvNet trunk TorchRL's DDPG CNN nets share (channels differ) */
static crl_convnet_options cnn_trunk(int64_t in_channels, const int64_t *cells,
                                     bool no_squash) {
  return (crl_convnet_options){.in_channels =
                                   in_channels > 0 ? in_channels : -1,
                               .n_layers = 3,
                               .num_cells = cells,
                               .kernel_sizes = cnn_kernels,
                               .strides = cnn_strides,
                               .paddings = cnn_paddings,
                               .activation = CRL_ACT_ELU,
                               .no_squash = no_squash};
}

crl_module *crl_ddpg_cnn_actor_new(int64_t in_channels, int64_t act_dim,
                                   crl_rng *g) {
  if (check_dims("ddpg_cnn_actor_new", in_channels, act_dim, g)) return NULL;
  static const int64_t cells[3] = {32, 64, 64};
  crl_convnet_options co = cnn_trunk(in_channels, cells, false);
  crl_mlp_options mo = {.in_features = -1, /* C * H' * W': image-dependent */
                        .out_features = act_dim,
                        .depth = 2,
                        .width = 200,
                        .activation = CRL_ACT_ELU};
  crl_module *m = new_net(CNN_ACTOR, 1, 2);
  crl_module *kids[2] = {NULL, NULL};
  kids[0] = m ? crl_convnet_new(&co, g) : NULL;
  kids[1] = kids[0] ? crl_mlp_new(&mo, g) : NULL;
  static const char *const names[2] = {"convnet", "mlp"};
  return assemble(m, 2, kids, names, 6e-4, g);
}

crl_module *crl_ddpg_cnn_qnet_new(int64_t in_channels, int64_t act_dim,
                                  crl_rng *g) {
  if (check_dims("ddpg_cnn_qnet_new", in_channels, act_dim, g)) return NULL;
  static const int64_t cells[3] = {32, 64, 128};
  /* not squashed: pooled in forward */
  crl_convnet_options co = cnn_trunk(in_channels, cells, true);
  crl_mlp_options mo = {.in_features = 128 + act_dim,
                        .out_features = 1,
                        .depth = 2,
                        .width = 200,
                        .activation = CRL_ACT_ELU};
  crl_module *m = new_net(CNN_QNET, 2, 1);
  crl_module *kids[2] = {NULL, NULL};
  kids[0] = m ? crl_convnet_new(&co, g) : NULL;
  kids[1] = kids[0] ? crl_mlp_new(&mo, g) : NULL;
  static const char *const names[2] = {"convnet", "mlp"};
  return assemble(m, 2, kids, names, 6e-4, g);
}
