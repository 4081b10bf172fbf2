/* Recurrent TensorDict modules (torchrl.modules.LSTMModule / GRUModule) for
 * one step at a time: the hidden state travels through TensorDict keys.
 *
 *   LSTM  reads  in_key, "recurrent_state_h", "recurrent_state_c", "is_init"
 *         writes out_key, "next/recurrent_state_h", "next/recurrent_state_c"
 *   GRU   reads  in_key, "recurrent_state", "is_init"
 *         writes out_key, "next/recurrent_state"
 *
 * States are stored as TorchRL stores them, [batch..., num_layers = 1,
 * hidden_size] (read also as [batch..., hidden_size]); a missing state, or
 * the rows where "is_init" is true, start at zero. step_mdp moves the next
 * state to the root for the following step. The cell is crl_lstm_cell_new
 * / crl_gru_cell_new (torch's equations); the module's parameters are the
 * cell's (weight_ih, weight_hh, bias_ih, bias_hh). */
#include <stdlib.h>

#include "modules_internal.h"

typedef struct {
  bool lstm;
  int64_t in, hidden;
  crl_module *cell; /* retained */
} rnn_impl;

static void rnn_free(crl_tdmodule *m) {
  rnn_impl *p = m->impl;
  if (!p) return;
  crl_module_release(p->cell);
  free(p);
}

/* state at key as [lead..., H] (a view), zeros if absent */
static crl_tensor *get_state(crl_tdmodule *m, crl_td *td, const char *key,
                             const crl_tensor *x, int64_t H) {
  crl_tensor *s = crl_td_find(td, key);
  int nl = x->ndim - 1;
  int64_t shape[CRL_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nl);
  shape[nl] = H;
  if (!s) return crl_zeros(x->dtype, nl + 1, shape);
  crl_tensor *v = s;
  if (s->ndim == nl + 2 && s->shape[nl] == 1) v = crl_squeeze(s, nl);
  if (!v) return NULL;
  bool ok = v->ndim == nl + 1 &&
            !memcmp(v->shape, shape, sizeof(int64_t) * (size_t)(nl + 1));
  if (!ok) {
    char b1[160], b2[160], b3[160];
    shape[nl + 1] = H;
    shape[nl] = 1;
    return CRL_ERR_NULL(CRL_ESHAPE,
                        "%s: '%s' has shape %s; expected %s (or without the "
                        "num_layers dim) for input '%s' of shape %s",
                        crl_tdmodule_name(m), key, CRL_SHAPE_STR(s, b1),
                        crl_shape_str(nl + 2, shape, b2, sizeof b2),
                        m->in_keys[0], CRL_SHAPE_STR(x, b3));
  }
  if (v->dtype != x->dtype) v = crl_cast(v, x->dtype);
  return v;
}

static int rnn_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  rnn_impl *p = m->impl;
  crl_tensor *x = crl__tdm_in(m, td, m->in_keys[0]);
  if (!x) return CRL_EKEY;
  char b1[160];
  if (x->ndim < 1 || x->shape[x->ndim - 1] != p->in ||
      (x->dtype != CRL_FLOAT32 && x->dtype != CRL_FLOAT64))
    return crl__err(CRL_ESHAPE,
                    "%s: input '%s' has shape %s (%s); [batch..., %lld] "
                    "float is required",
                    crl_tdmodule_name(m), m->in_keys[0], CRL_SHAPE_STR(x, b1),
                    crl_dtype_name(x->dtype), (long long)p->in);
  int nl = x->ndim - 1;
  crl_tensor *h = get_state(m, td, m->in_keys[1], x, p->hidden);
  crl_tensor *c = !h        ? NULL
                  : p->lstm ? get_state(m, td, m->in_keys[2], x, p->hidden)
                            : h;
  if (!h || !c) return crl_last_error_code();
  crl_tensor *init = crl_td_find(td, "is_init");
  if (init) {
    /* [lead...] or [lead..., 1] -> a bool mask [lead..., 1] */
    crl_tensor *mk = init;
    bool ok =
        init->ndim >= nl &&
        !memcmp(init->shape, x->shape, sizeof(int64_t) * (size_t)nl) &&
        (init->ndim == nl || (init->ndim == nl + 1 && init->shape[nl] == 1));
    if (!ok) {
      char b2[160];
      return crl__err(CRL_ESHAPE,
                      "%s: 'is_init' has shape %s; [batch...] or [batch..., "
                      "1] matching input '%s' of shape %s is required",
                      crl_tdmodule_name(m), CRL_SHAPE_STR(init, b1),
                      m->in_keys[0], CRL_SHAPE_STR(x, b2));
    }
    if (mk->ndim == nl) mk = crl_unsqueeze(mk, nl);
    if (mk && mk->dtype != CRL_BOOL) mk = crl_ne(mk, crl_zeros_like(mk));
    h = mk ? crl_masked_fill(h, mk, 0) : NULL;
    if (p->lstm) c = mk && h ? crl_masked_fill(c, mk, 0) : NULL;
    if (!h || !c) return crl_last_error_code();
  }
  crl_tensor *in[3] = {x, h, c}, *out[2] = {NULL, NULL};
  int rc = crl_module_forward(p->cell, params, p->lstm ? 3 : 2, in,
                              p->lstm ? 2 : 1, out);
  if (rc) return rc;
  crl_tensor *hn = crl_unsqueeze(out[0], nl);
  crl_tensor *cn = p->lstm && hn ? crl_unsqueeze(out[1], nl) : NULL;
  if (!hn || (p->lstm && !cn)) return crl_last_error_code();
  rc = crl__tdm_check_out(m, td, m->out_keys[0], out[0]);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[0], out[0]);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[1], hn);
  if (!rc && p->lstm) rc = crl__tdm_set(td, m->out_keys[2], cn);
  return rc;
}

static const crl_tdmodule_ops lstm_ops = {"LSTMModule", rnn_forward, rnn_free};
static const crl_tdmodule_ops gru_ops = {"GRUModule", rnn_forward, rnn_free};

static crl_tdmodule *rnn_new(bool lstm, int64_t input_size, int64_t hidden_size,
                             const char *in_key, const char *out_key,
                             crl_rng *g) {
  const char *op = lstm ? "lstm_module_new" : "gru_module_new";
  if (!in_key || !out_key)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: in_key and out_key are required", op);
  crl_scope_begin();
  crl_module *cell = lstm ? crl_lstm_cell_new(input_size, hidden_size, g)
                          : crl_gru_cell_new(input_size, hidden_size, g);
  rnn_impl *p = cell ? calloc(1, sizeof *p) : NULL;
  if (!p) {
    if (cell) crl__err(CRL_ENOMEM, "%s: out of memory", op);
    crl_scope_end();
    return NULL;
  }
  *p = (rnn_impl){lstm, input_size, hidden_size, crl_module_retain(cell)};
  const char *lin[4] = {in_key, "recurrent_state_h", "recurrent_state_c",
                        "is_init"};
  const char *lout[3] = {out_key, "next/recurrent_state_h",
                         "next/recurrent_state_c"};
  const char *gin[3] = {in_key, "recurrent_state", "is_init"};
  const char *gout[2] = {out_key, "next/recurrent_state"};
  const bool opt[4] = {false, true, true, true};
  crl_tdmodule *m = lstm ? crl__tdm_new(op, &lstm_ops, p, 4, lin, opt, 3, lout,
                                        crl_module_params(cell), 0, NULL)
                         : crl__tdm_new(op, &gru_ops, p, 3, gin, opt, 2, gout,
                                        crl_module_params(cell), 0, NULL);
  if (!m) {
    crl_scope_end();
    return NULL;
  }
  return crl__tdm_scope_end_keep(m);
}

crl_tdmodule *crl_lstm_module_new(int64_t input_size, int64_t hidden_size,
                                  const char *in_key, const char *out_key,
                                  crl_rng *g) {
  return rnn_new(true, input_size, hidden_size, in_key, out_key, g);
}

crl_tdmodule *crl_gru_module_new(int64_t input_size, int64_t hidden_size,
                                 const char *in_key, const char *out_key,
                                 crl_rng *g) {
  return rnn_new(false, input_size, hidden_size, in_key, out_key, g);
}
