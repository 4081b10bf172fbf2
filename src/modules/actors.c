/* Actors and value operators (torchrl.modules.tensordict_module.actors):
 * Actor, ProbabilisticActor, ValueOperator, QValueActor (with its
 * QValueModule), ActorValueOperator, ActorCriticOperator,
 * ActorCriticWrapper and their standalone policy / value operators. */
#include <stdlib.h>

#include "modules_internal.h"

static const char *const default_in[1] = {"observation"};

/* ---- Actor, ValueOperator ------------------------------------------------ */

static const crl_tdmodule_ops actor_ops = {"Actor", crl__td_module_forward,
                                           crl__td_module_free};
static const crl_tdmodule_ops value_ops = {
    "ValueOperator", crl__td_module_forward, crl__td_module_free};

crl_tdmodule *crl_actor_new(crl_module *net, int nin,
                            const char *const *in_keys, crl_spec *spec) {
  const char *out[1] = {"action"};
  if (nin == 0 || !in_keys) {
    nin = 1;
    in_keys = default_in;
  }
  return crl__td_module_make("actor_new", &actor_ops, net, nin, in_keys, 1, out,
                             spec);
}

crl_tdmodule *crl_value_operator_new(crl_module *net, int nin,
                                     const char *const *in_keys,
                                     const char *out_key) {
  if (nin == 0 || !in_keys) {
    nin = 1;
    in_keys = default_in;
  }
  if (!out_key) {
    bool has_action = false;
    for (int i = 0; i < nin && !has_action; i++)
      has_action = in_keys[i] && strcmp(in_keys[i], "action") == 0;
    out_key = has_action ? "state_action_value" : "state_value";
  }
  return crl__td_module_make("value_operator_new", &value_ops, net, nin,
                             in_keys, 1, &out_key, NULL);
}

/* ---- ProbabilisticActor -------------------------------------------------- */

static const crl_tdmodule_ops prob_actor_ops = {
    "ProbabilisticActor", crl__td_sequential_forward, crl__td_sequential_free};

crl_tdmodule *crl_prob_actor_new(crl_tdmodule *module,
                                 const crl_prob_options *opt) {
  const char *op = "prob_actor_new";
  if (!module) return CRL_ERR_NULL(CRL_EINVAL, "%s: module is NULL", op);
  crl_scope_begin();
  crl_tdmodule *pm = crl_prob_module_new(opt);
  if (!pm) {
    crl_scope_end();
    return NULL;
  }
  /* the module must write every distribution parameter */
  for (int i = 0; i < pm->nin; i++) {
    bool found = false;
    for (int j = 0; j < module->nout && !found; j++)
      found = strcmp(pm->in_keys[i], module->out_keys[j]) == 0;
    if (!found) {
      crl__err(CRL_EKEY,
               "%s: the distribution reads '%s' but %s does not write it", op,
               pm->in_keys[i], crl_tdmodule_name(module));
      crl_scope_end();
      return NULL;
    }
  }
  crl_tdmodule *parts[2] = {module, pm};
  crl_tdmodule *m = crl__td_sequential_make(op, &prob_actor_ops, 2, parts);
  if (!m) {
    crl_scope_end();
    return NULL;
  }
  return crl__tdm_scope_end_keep(m);
}

/* ---- QValueModule / QValueActor ------------------------------------------ */

typedef struct {
  bool one_hot;    /* else categorical (index) */
  crl_dtype dtype; /* of the action */
  bool keep_last;  /* categorical spec whose shape ends with 1 */
  int64_t n;       /* number of actions from the spec (0: any) */
} qv_impl;

static void qv_free(crl_tdmodule *m) { free(m->impl); }

static int qv_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  (void)params;
  qv_impl *p = m->impl;
  crl_tensor *av = crl__tdm_in(m, td, m->in_keys[0]);
  if (!av) return CRL_EKEY;
  char b[160];
  if (av->ndim < 1 || av->shape[av->ndim - 1] < 1 ||
      (p->n && av->shape[av->ndim - 1] != p->n))
    return crl__err(CRL_ESHAPE,
                    "%s: action_value has shape %s; its last dim must be the "
                    "number of actions (%lld)",
                    crl_tdmodule_name(m), CRL_SHAPE_STR(av, b),
                    (long long)p->n);
  crl_tensor *idx = crl_argmax(av, -1, true); /* [..., 1] int64 */
  crl_tensor *chosen = idx ? crl_gather(av, -1, idx) : NULL;
  if (!chosen) return crl_last_error_code();
  crl_tensor *action;
  if (p->one_hot) {
    action = crl_zeros(p->dtype, av->ndim, av->shape);
    if (!action) return crl_last_error_code();
    int64_t n = av->shape[av->ndim - 1], rows = idx->numel;
    const int64_t *ix = idx->data;
    for (int64_t r = 0; r < rows; r++)
      crl__store(p->dtype, action->data, r * n + ix[r], 1.0);
  } else {
    crl_tensor *i2 = p->keep_last ? idx : crl_squeeze(idx, -1);
    action = i2 && p->dtype != CRL_INT64 ? crl_cast(i2, p->dtype) : i2;
    if (!action) return crl_last_error_code();
  }
  int rc = crl__tdm_check_out(m, td, m->out_keys[0], action);
  if (!rc) rc = crl__tdm_check_out(m, td, m->out_keys[2], chosen);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[0], action);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[2], chosen);
  return rc;
}

static const crl_tdmodule_ops qv_ops = {"QValueModule", qv_forward, qv_free};
static const crl_tdmodule_ops qv_actor_ops = {
    "QValueActor", crl__td_sequential_forward, crl__td_sequential_free};

crl_tdmodule *crl_qvalue_actor_new(crl_module *net, int nin,
                                   const char *const *in_keys, crl_spec *spec) {
  const char *op = "qvalue_actor_new";
  qv_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  p->one_hot = true;
  p->dtype = CRL_INT64;
  if (spec) {
    crl_spec_kind k = crl_spec_kind_of(spec);
    int sn = crl_spec_ndim(spec);
    const int64_t *ss = crl_spec_shape(spec);
    if (k == CRL_SPEC_ONE_HOT) {
      p->n = crl_spec_n(spec);
    } else if (k == CRL_SPEC_DISCRETE) {
      p->one_hot = false;
      p->n = crl_spec_n(spec);
      p->keep_last = sn > 0 && ss[sn - 1] == 1;
    } else {
      free(p);
      return CRL_ERR_NULL(CRL_EUNSUPPORTED,
                          "%s: the action spec is a %s; a one-hot or discrete "
                          "(categorical) spec is required",
                          op, crl_spec_kind_name(k));
    }
    p->dtype = crl_spec_dtype(spec);
  }
  crl_scope_begin();
  const char *qin[1] = {"action_value"};
  const char *qout[3] = {"action", "action_value", "chosen_action_value"};
  crl_tdmodule *qv =
      crl__tdm_new(op, &qv_ops, p, 1, qin, NULL, 3, qout, NULL, 0, NULL);
  if (nin == 0 || !in_keys) {
    nin = 1;
    in_keys = default_in;
  }
  crl_tdmodule *body = qv ? crl_td_module_new(net, nin, in_keys, 1, qin) : NULL;
  crl_tdmodule *parts[2] = {body, qv};
  crl_tdmodule *m =
      body ? crl__td_sequential_make(op, &qv_actor_ops, 2, parts) : NULL;
  if (!m) {
    if (crl_last_error()[0] && !strstr(crl_last_error(), op))
      crl__err(crl_last_error_code(), "%s: %s", op, crl_last_error());
    crl_scope_end();
    return NULL;
  }
  return crl__tdm_scope_end_keep(m);
}

/* ---- ActorValueOperator, ActorCriticOperator, ActorCriticWrapper --------- */

static const crl_tdmodule_ops avo_ops = {
    "ActorValueOperator", crl__td_sequential_forward, crl__td_sequential_free};
static const crl_tdmodule_ops aco_ops = {
    "ActorCriticOperator", crl__td_sequential_forward, crl__td_sequential_free};
static const crl_tdmodule_ops acw_ops = {
    "ActorCriticWrapper", crl__td_sequential_forward, crl__td_sequential_free};
static const crl_tdmodule_ops seq_policy_ops = {"TensorDictSequential",
                                                crl__td_sequential_forward,
                                                crl__td_sequential_free};
/* a standalone policy keeps the class of a probabilistic head */
static const crl_tdmodule_ops seq_prob_policy_ops = {
    "ProbabilisticTensorDictSequential", crl__td_sequential_forward,
    crl__td_sequential_free};

static crl_tdmodule *make3(const char *op, const crl_tdmodule_ops *ops,
                           crl_tdmodule *a, crl_tdmodule *b, crl_tdmodule *c) {
  if (!a || !b || !c)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: common, policy and value/critic "
                        "modules are required",
                        op);
  crl_tdmodule *parts[3] = {a, b, c};
  return crl__td_sequential_make(op, ops, 3, parts);
}

crl_tdmodule *crl_actor_value_operator_new(crl_tdmodule *common,
                                           crl_tdmodule *policy,
                                           crl_tdmodule *value) {
  return make3("actor_value_operator_new", &avo_ops, common, policy, value);
}

crl_tdmodule *crl_actor_critic_operator_new(crl_tdmodule *common,
                                            crl_tdmodule *policy,
                                            crl_tdmodule *critic) {
  return make3("actor_critic_operator_new", &aco_ops, common, policy, critic);
}

crl_tdmodule *crl_actor_critic_wrapper_new(crl_tdmodule *policy,
                                           crl_tdmodule *value) {
  const char *op = "actor_critic_wrapper_new";
  if (!policy || !value)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: policy and value modules are "
                        "required",
                        op);
  crl_tdmodule *parts[2] = {policy, value};
  return crl__td_sequential_make(op, &acw_ops, 2, parts);
}

static bool is_probabilistic(const crl_tdmodule *m) {
  while (crl__tdm_is_sequence(m))
    m = m->children[m->nchildren - 1];
  return crl__tdm_is_prob_module(m);
}

crl_tdmodule *crl_avo_get_policy_operator(crl_tdmodule *avo) {
  const char *op = "avo_get_policy_operator";
  if (!avo ||
      (avo->ops != &avo_ops && avo->ops != &aco_ops && avo->ops != &acw_ops))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: %s is not an ActorValueOperator, "
                        "ActorCriticOperator or ActorCriticWrapper",
                        op, avo ? crl_tdmodule_name(avo) : "NULL");
  if (avo->ops == &acw_ops) {
    return crl__tdm_retain_scoped(avo->children[0]);
  }
  const crl_tdmodule_ops *ops = is_probabilistic(avo->children[1])
                                    ? &seq_prob_policy_ops
                                    : &seq_policy_ops;
  return crl__td_sequential_make(op, ops, 2, avo->children);
}

crl_tdmodule *crl_avo_get_value_operator(crl_tdmodule *avo) {
  const char *op = "avo_get_value_operator";
  if (!avo ||
      (avo->ops != &avo_ops && avo->ops != &aco_ops && avo->ops != &acw_ops))
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: %s is not an ActorValueOperator, "
                        "ActorCriticOperator or ActorCriticWrapper",
                        op, avo ? crl_tdmodule_name(avo) : "NULL");
  crl_tdmodule *r = NULL;
  if (avo->ops == &acw_ops)
    r = avo->children[1];
  else if (avo->ops == &aco_ops)
    r = avo; /* TorchRL's get_critic_operator: the critic needs the action */
  if (r) return crl__tdm_retain_scoped(r);
  crl_tdmodule *parts[2] = {avo->children[0], avo->children[2]};
  return crl__td_sequential_make(op, &seq_policy_ops, 2, parts);
}
