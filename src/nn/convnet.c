/* TorchRL's ConvNet (torchrl.modules.ConvNet): Conv2d and activation per
 * layer (the last layer is activated too), then SquashDims: the last three
 * dims [C, H, W] are flattened to one. Inputs are [batch..., C, H, W] with
 * any number of leading batch dims (or none): they are flattened to one for
 * crl_conv2d and restored after, as TorchRL's ConvNet.forward does.
 * Children are numbered as TorchRL's nn.Sequential: "0" Conv2d, "1"
 * activation, "2" Conv2d, ... */
#include <stdio.h>
#include <stdlib.h>

#include "nn_internal.h"

typedef struct convnet_impl {
  bool squash;
} convnet_impl;

static void convnet_free(crl_module *m) { free(m->impl); }

static int convnet_forward(crl_module *m, crl_td *params, int nin,
                           crl_tensor *const *in, int nout, crl_tensor **out) {
  convnet_impl *I = m->impl;
  crl_tensor *x = in[0];
  if (x->ndim < 3) {
    char s[96];
    return crl__err(CRL_ESHAPE,
                    "ConvNet: input shape %s: expected [batch..., C, H, W] "
                    "(at least 3 dims)",
                    CRL_SHAPE_STR(x, s));
  }
  crl_scope_begin();
  int nlead;
  int64_t lead[CRL_MAX_DIMS];
  crl_tensor *x4 = x->ndim == 4 ? x : crl__flatten_lead(x, 3, &nlead, lead);
  crl_tensor *y = NULL;
  int rc = x4 ? crl__sequential_forward(m, params, nin, &x4, nout, &y)
              : crl_last_error_code();
  if (!rc) {
    /* y: [N, C, H, W] */
    if (I->squash) {
      int64_t shape[CRL_MAX_DIMS];
      int nd;
      if (x->ndim == 4) {
        shape[0] = y->shape[0];
        nd = 1;
      } else {
        memcpy(shape, lead, sizeof(int64_t) * (size_t)nlead);
        nd = nlead;
      }
      shape[nd++] = y->shape[1] * y->shape[2] * y->shape[3];
      y = crl_reshape(y, nd, shape);
    } else if (x->ndim != 4) {
      y = crl__unflatten_lead(y, nlead, lead);
    }
    if (!y) rc = crl_last_error_code();
  }
  if (rc) {
    crl_scope_end();
    return rc;
  }
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static const crl_module_ops convnet_ops = {"ConvNet", convnet_forward,
                                           convnet_free};

crl_module *crl_convnet_new(const crl_convnet_options *opt, crl_rng *g) {
  if (!opt || !g)
    return CRL_ERR_NULL(CRL_EINVAL, "convnet_new: options and a generator "
                                    "are required");
  int n = opt->n_layers > 0 ? opt->n_layers : 3;
  if (n > 100)
    return CRL_ERR_NULL(CRL_EINVAL, "convnet_new: %d layers is too many", n);
  crl_activation act =
      opt->activation == CRL_ACT_NONE ? CRL_ACT_ELU : opt->activation;
  if (crl_activation_name(act)[0] == 'u') /* "unknown" */
    return CRL_ERR_NULL(CRL_EINVAL, "convnet_new: unknown activation %d",
                        (int)opt->activation);
  for (int l = 0; l < n; l++) {
    int64_t c = opt->num_cells ? opt->num_cells[l] : 32;
    int k = opt->kernel_sizes ? opt->kernel_sizes[l] : 3;
    int s = opt->strides ? opt->strides[l] : 1;
    int p = opt->paddings ? opt->paddings[l] : 0;
    if (c <= 0 || k <= 0 || s <= 0 || p < 0)
      return CRL_ERR_NULL(CRL_EINVAL,
                          "convnet_new: layer %d: channels %lld, kernel %d, "
                          "stride %d must be > 0 and padding %d >= 0",
                          l, (long long)c, k, s, p);
  }
  convnet_impl *I = calloc(1, sizeof *I);
  if (!I) return CRL_ERR_NULL(CRL_ENOMEM, "convnet_new: out of memory");
  I->squash = !opt->no_squash;
  crl_module *m = crl_module_new(&convnet_ops, I, 1, 1);
  if (!m) return NULL;
  int64_t in = opt->in_channels > 0 ? opt->in_channels : -1;
  int idx = 0;
  for (int l = 0; l < n; l++) {
    int64_t c = opt->num_cells ? opt->num_cells[l] : 32;
    int k = opt->kernel_sizes ? opt->kernel_sizes[l] : 3;
    int s = opt->strides ? opt->strides[l] : 1;
    int p = opt->paddings ? opt->paddings[l] : 0;
    crl_module *mods[2] = {crl_conv2d_new(in, c, k, s, p, true, g),
                           crl_activation_module_new(act)};
    int rc = 0;
    for (int j = 0; j < 2; j++) {
      char key[16];
      snprintf(key, sizeof key, "%d", idx++);
      if (!rc && (!mods[j] || crl__module_add_child(m, key, mods[j]) < 0))
        rc = -1;
      crl__module_drop(mods[j]);
    }
    if (rc) {
      crl__module_discard(m);
      return NULL;
    }
    in = c;
  }
  return m;
}
