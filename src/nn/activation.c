/* Activations: apply by enum, names, and as parameterless modules. */
#include <stdint.h>
#include <strings.h>

#include "nn_internal.h"

crl_tensor *crl_activation_apply(crl_activation a, crl_tensor *x) {
  if (!x) return CRL_ERR_NULL(CRL_EINVAL, "activation_apply: input is NULL");
  switch (a) {
  case CRL_ACT_NONE:
    crl_tensor_retain(x);
    crl__scope_adopt(x);
    return x;
  case CRL_ACT_RELU: return crl_relu(x);
  case CRL_ACT_TANH: return crl_tanh(x);
  case CRL_ACT_ELU: return crl_elu(x, 1.0);
  case CRL_ACT_LEAKY_RELU: return crl_leaky_relu(x, 0.01);
  case CRL_ACT_SILU: return crl_silu(x);
  case CRL_ACT_SOFTPLUS: return crl_softplus(x, 1.0, 20.0);
  case CRL_ACT_SIGMOID: return crl_sigmoid(x);
  }
  return CRL_ERR_NULL(CRL_EINVAL, "activation_apply: unknown activation %d",
                      (int)a);
}

static const struct {
  const char *name;  /* crl's name */
  const char *torch; /* torch.nn class name (module name) */
  crl_activation a;
} acts[] = {
    {"none", "Identity", CRL_ACT_NONE},
    {"relu", "ReLU", CRL_ACT_RELU},
    {"tanh", "Tanh", CRL_ACT_TANH},
    {"elu", "ELU", CRL_ACT_ELU},
    {"leaky_relu", "LeakyReLU", CRL_ACT_LEAKY_RELU},
    {"silu", "SiLU", CRL_ACT_SILU},
    {"softplus", "Softplus", CRL_ACT_SOFTPLUS},
    {"sigmoid", "Sigmoid", CRL_ACT_SIGMOID},
};
#define NACTS (int)(sizeof acts / sizeof acts[0])

const char *crl_activation_name(crl_activation a) {
  for (int i = 0; i < NACTS; i++)
    if (acts[i].a == a) return acts[i].name;
  return "unknown";
}

int crl_activation_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < NACTS; i++)
    if (strcasecmp(name, acts[i].name) == 0 ||
        strcasecmp(name, acts[i].torch) == 0)
      return (int)acts[i].a;
  if (strcasecmp(name, "identity") == 0) return CRL_ACT_NONE;
  if (strcasecmp(name, "swish") == 0) return CRL_ACT_SILU;
  return -1;
}

static int act_forward(crl_module *m, crl_td *params, int nin,
                       crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)params, (void)nin, (void)nout;
  crl_activation a = (crl_activation)(intptr_t)m->impl;
  out[0] = crl_activation_apply(a, in[0]);
  return out[0] ? 0 : crl_last_error_code();
}

#define ACT_OPS(id, tname)                                                     \
  { .name = tname, .forward = act_forward, .free = NULL }
static const crl_module_ops act_ops[] = {
    ACT_OPS(CRL_ACT_NONE, "Identity"),
    ACT_OPS(CRL_ACT_RELU, "ReLU"),
    ACT_OPS(CRL_ACT_TANH, "Tanh"),
    ACT_OPS(CRL_ACT_ELU, "ELU"),
    ACT_OPS(CRL_ACT_LEAKY_RELU, "LeakyReLU"),
    ACT_OPS(CRL_ACT_SILU, "SiLU"),
    ACT_OPS(CRL_ACT_SOFTPLUS, "Softplus"),
    ACT_OPS(CRL_ACT_SIGMOID, "Sigmoid"),
};

crl_module *crl_activation_module_new(crl_activation a) {
  if ((unsigned)a >= sizeof act_ops / sizeof act_ops[0])
    return CRL_ERR_NULL(CRL_EINVAL,
                        "activation_module_new: unknown activation %d", (int)a);
  return crl_module_new(&act_ops[a], (void *)(intptr_t)a, 1, 1);
}

/* The activation of a module made by crl_activation_module_new, or -1. */
int crl__activation_of(const crl_module *m) {
  for (size_t i = 0; i < sizeof act_ops / sizeof act_ops[0]; i++)
    if (m->ops == &act_ops[i]) return (int)(intptr_t)m->impl;
  return -1;
}
