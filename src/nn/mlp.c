/* TorchRL's MLP (torchrl.modules.MLP): a sequence of Linear layers with an
 * activation after every hidden layer (and after the last one with
 * activate_last_layer), optionally a LayerNorm between a Linear and its
 * activation. Children are numbered as TorchRL's nn.Sequential numbers its
 * modules, so parameter keys match: "0/weight", "0/bias", "2/weight", ...
 *
 * Forward: the generic sequence loop (each child reads its parameters from
 * the params it is given) plus a fast path for the common case — the
 * module's own parameters, Linear and activation children only — that runs
 * crl_linear and the activation directly on cached parameter tensors,
 * skipping the per-child dispatch and key lookups. */
#include <stdio.h>
#include <stdlib.h>

#include "../td/td_internal.h"
#include "nn_internal.h"

typedef struct mlp_impl {
  int nlayers;       /* children */
  bool simple;       /* Linear / activation children only */
  signed char *kind; /* per child: -1 Linear, else the activation */
} mlp_impl;

static void mlp_free(crl_module *m) {
  mlp_impl *I = m->impl;
  if (!I) return;
  free(I->kind);
  free(I);
}

static int mlp_forward(crl_module *m, crl_td *params, int nin,
                       crl_tensor *const *in, int nout, crl_tensor **out) {
  mlp_impl *I = m->impl;
  if (params != m->params || !I->simple)
    return crl__sequential_forward(m, params, nin, in, nout, out);
  crl_scope_begin();
  crl_tensor *x = in[0];
  for (int i = 0; i < I->nlayers; i++) {
    crl_module *c = m->children[i].m;
    crl_tensor *y;
    if (I->kind[i] < 0) {
      crl_td *p = c->params;
      /* the Linear's own TensorDict: "weight" then "bias" (anything else,
       * e.g. not materialized yet: let the layer run itself) */
      crl_tensor *w =
          p->n >= 1 && strcmp(p->e[0].key, "weight") == 0 ? p->e[0].t : NULL;
      crl_tensor *b =
          w && p->n >= 2 && strcmp(p->e[1].key, "bias") == 0 ? p->e[1].t : NULL;
      if (w && p->n == (b ? 2 : 1)) {
        y = crl_linear(x, w, b);
      } else {
        y = NULL;
        if (c->ops->forward(c, p, 1, &x, 1, &y)) {
          crl_scope_end();
          return crl_last_error_code();
        }
      }
    } else {
      y = crl_activation_apply((crl_activation)I->kind[i], x);
    }
    if (!y) {
      crl_scope_end();
      return crl_last_error_code();
    }
    x = y;
  }
  out[0] = crl_scope_end_keep(x);
  return 0;
}

static const crl_module_ops mlp_ops = {"MLP", mlp_forward, mlp_free};

crl_module *crl_mlp_new(const crl_mlp_options *opt, crl_rng *g) {
  if (!opt || !g)
    return CRL_ERR_NULL(CRL_EINVAL, "mlp_new: options and a generator are "
                                    "required");
  if (opt->out_features <= 0)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "mlp_new: out_features must be > 0, got %lld",
                        (long long)opt->out_features);
  int depth = opt->num_cells ? opt->n_cells : opt->depth;
  if (depth < 0 || depth > 1000 || (opt->num_cells && opt->n_cells < 0))
    return CRL_ERR_NULL(CRL_EINVAL, "mlp_new: depth %d is out of range", depth);
  int64_t width = opt->width > 0 ? opt->width : 32;
  for (int i = 0; opt->num_cells && i < depth; i++)
    if (opt->num_cells[i] <= 0)
      return CRL_ERR_NULL(CRL_EINVAL,
                          "mlp_new: num_cells[%d] = %lld must be > 0", i,
                          (long long)opt->num_cells[i]);
  crl_activation act =
      opt->activation == CRL_ACT_NONE ? CRL_ACT_TANH : opt->activation;
  if (crl_activation_name(act)[0] == 'u') /* "unknown" */
    return CRL_ERR_NULL(CRL_EINVAL, "mlp_new: unknown activation %d",
                        (int)opt->activation);
  int nmax = 3 * (depth + 1);
  mlp_impl *I = calloc(1, sizeof *I);
  signed char *kind = I ? calloc((size_t)nmax, 1) : NULL;
  if (!kind) {
    free(I);
    return CRL_ERR_NULL(CRL_ENOMEM, "mlp_new: out of memory");
  }
  I->kind = kind;
  I->simple = !opt->layer_norm;
  crl_module *m = crl_module_new(&mlp_ops, I, 1, 1);
  if (!m) return NULL;
  int idx = 0;
  int64_t in = opt->in_features > 0 ? opt->in_features : -1;
  for (int l = 0; l <= depth; l++) {
    int64_t o = l < depth ? (opt->num_cells ? opt->num_cells[l] : width)
                          : opt->out_features;
    crl_module *mods[3];
    int nm = 0;
    signed char kinds[3];
    mods[nm] = crl_linear_new(in, o, true, g);
    kinds[nm++] = -1;
    if (l < depth || opt->activate_last_layer) {
      if (opt->layer_norm) {
        mods[nm] = crl_layer_norm_new(CRL_SHAPE(o), true);
        kinds[nm++] = -2;
      }
      mods[nm] = crl_activation_module_new(act);
      kinds[nm++] = (signed char)act;
    }
    int rc = 0;
    for (int j = 0; j < nm; j++) {
      char key[16];
      snprintf(key, sizeof key, "%d", idx);
      if (!rc && (!mods[j] || crl__module_add_child(m, key, mods[j]) < 0))
        rc = -1;
      kind[idx++] = kinds[j];
      crl__module_drop(mods[j]);
    }
    if (rc) {
      crl__module_discard(m);
      return NULL;
    }
    in = o;
  }
  I->nlayers = idx;
  return m;
}
