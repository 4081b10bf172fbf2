/* Recurrent cells with torch's equations, parameter names and
 * initialisation (torch.nn.GRUCell / torch.nn.LSTMCell):
 *
 *   parameters  weight_ih [G*H, in], weight_hh [G*H, H], bias_ih [G*H],
 *               bias_hh [G*H], all uniform(-1/sqrt(H), 1/sqrt(H));
 *               G = 3 gates (r, z, n) for GRU, 4 (i, f, g, o) for LSTM.
 *   gi = x W_ihᵀ + b_ih,  gh = h W_hhᵀ + b_hh   (two crl_linear calls)
 *
 *   GRU:   r = σ(gi_r + gh_r)    z = σ(gi_z + gh_z)
 *          n = tanh(gi_n + r ⊙ gh_n)
 *          h' = (1 − z) ⊙ n + z ⊙ h
 *   LSTM:  i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o),  a = gi + gh
 *          c' = f ⊙ c + i ⊙ g
 *          h' = o ⊙ tanh(c')
 *
 * The gate arithmetic after the two matrix products runs as fused kernels
 * with their own backward (one pass over the gates instead of a dozen
 * elementwise ops): gru_cell(gi, gh, h) -> h'; lstm_c(gi, gh, c) -> c' and
 * lstm_h(gi, gh, c') -> h' (two single-output ops, so each output carries
 * its own graph node). Inputs may have any leading batch dims (or none);
 * x, h (and c) must share them. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

/* ---- kernels ------------------------------------------------------------- */

static inline float sigf(float x) { return 1.0f / (1.0f + crl__expf(-x)); }
static inline double sigd(double x) { return 1.0 / (1.0 + exp(-x)); }

/* gi, gh [B, 3H]; h, out [B, H] */
#define GRU_FWD(T, SIG, TANH)                                                  \
  static void gru_fwd_##T(const T *restrict gi, const T *restrict gh,          \
                          const T *restrict h, T *restrict out, int64_t B,     \
                          int64_t H) {                                         \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 3 * H, *c = gh + b * 3 * H, *hp = h + b * H;       \
      T *o = out + b * H;                                                      \
      for (int64_t j = 0; j < H; j++) {                                        \
        T r = SIG(a[j] + c[j]);                                                \
        T z = SIG(a[H + j] + c[H + j]);                                        \
        T n = TANH(a[2 * H + j] + r * c[2 * H + j]);                           \
        o[j] = n + z * (hp[j] - n);                                            \
      }                                                                        \
    }                                                                          \
  }

/* g [B, H] -> dgi, dgh [B, 3H], dh [B, H] (all written: no branches, so
 * the loop vectorizes) */
#define GRU_BWD(T, SIG, TANH)                                                  \
  static void gru_bwd_##T(const T *restrict gi, const T *restrict gh,          \
                          const T *restrict h, const T *restrict g,            \
                          T *restrict dgi, T *restrict dgh, T *restrict dh,    \
                          int64_t B, int64_t H) {                              \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 3 * H, *c = gh + b * 3 * H, *hp = h + b * H;       \
      const T *gp = g + b * H;                                                 \
      T *di = dgi + b * 3 * H, *dc = dgh + b * 3 * H, *dhp = dh + b * H;       \
      for (int64_t j = 0; j < H; j++) {                                        \
        T r = SIG(a[j] + c[j]);                                                \
        T z = SIG(a[H + j] + c[H + j]);                                        \
        T ghn = c[2 * H + j];                                                  \
        T n = TANH(a[2 * H + j] + r * ghn);                                    \
        T dn = gp[j] * (1 - z), dz = gp[j] * (hp[j] - n);                      \
        T dan = dn * (1 - n * n);                                              \
        T dar = dan * ghn * r * (1 - r);                                       \
        T daz = dz * z * (1 - z);                                              \
        di[j] = dar;                                                           \
        di[H + j] = daz;                                                       \
        di[2 * H + j] = dan;                                                   \
        dc[j] = dar;                                                           \
        dc[H + j] = daz;                                                       \
        dc[2 * H + j] = dan * r;                                               \
        dhp[j] = gp[j] * z;                                                    \
      }                                                                        \
    }                                                                          \
  }

/* c' = σ(a_f) c + σ(a_i) tanh(a_g): gi, gh [B, 4H]; c, out [B, H] */
#define LSTM_C_FWD(T, SIG, TANH)                                               \
  static void lstm_c_fwd_##T(const T *restrict gi, const T *restrict gh,       \
                             const T *restrict c, T *restrict out, int64_t B,  \
                             int64_t H) {                                      \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 4 * H, *e = gh + b * 4 * H, *cp = c + b * H;       \
      T *o = out + b * H;                                                      \
      for (int64_t j = 0; j < H; j++) {                                        \
        T i = SIG(a[j] + e[j]);                                                \
        T f = SIG(a[H + j] + e[H + j]);                                        \
        T gg = TANH(a[2 * H + j] + e[2 * H + j]);                              \
        o[j] = f * cp[j] + i * gg;                                             \
      }                                                                        \
    }                                                                          \
  }

/* dc' [B, H] -> da [B, 4H] (o columns 0), dc [B, H] */
#define LSTM_C_BWD(T, SIG, TANH)                                               \
  static void lstm_c_bwd_##T(const T *restrict gi, const T *restrict gh,       \
                             const T *restrict c, const T *restrict g,         \
                             T *restrict da, T *restrict dc, int64_t B,        \
                             int64_t H) {                                      \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 4 * H, *e = gh + b * 4 * H, *cp = c + b * H;       \
      const T *gp = g + b * H;                                                 \
      T *dap = da + b * 4 * H, *dcp = dc + b * H;                              \
      for (int64_t j = 0; j < H; j++) {                                        \
        T i = SIG(a[j] + e[j]);                                                \
        T f = SIG(a[H + j] + e[H + j]);                                        \
        T gg = TANH(a[2 * H + j] + e[2 * H + j]);                              \
        dap[j] = gp[j] * gg * i * (1 - i);                                     \
        dap[H + j] = gp[j] * cp[j] * f * (1 - f);                              \
        dap[2 * H + j] = gp[j] * i * (1 - gg * gg);                            \
        dap[3 * H + j] = 0;                                                    \
        dcp[j] = gp[j] * f;                                                    \
      }                                                                        \
    }                                                                          \
  }

/* h' = σ(a_o) tanh(c'): gi, gh [B, 4H]; c, out [B, H] */
#define LSTM_H_FWD(T, SIG, TANH)                                               \
  static void lstm_h_fwd_##T(const T *restrict gi, const T *restrict gh,       \
                             const T *restrict c, T *restrict out, int64_t B,  \
                             int64_t H) {                                      \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 4 * H + 3 * H, *e = gh + b * 4 * H + 3 * H;        \
      const T *cp = c + b * H;                                                 \
      T *o = out + b * H;                                                      \
      for (int64_t j = 0; j < H; j++)                                          \
        o[j] = SIG(a[j] + e[j]) * TANH(cp[j]);                                 \
    }                                                                          \
  }

/* dh' [B, H] -> da [B, 4H] (only the o columns non-zero), dc' [B, H] */
#define LSTM_H_BWD(T, SIG, TANH)                                               \
  static void lstm_h_bwd_##T(const T *restrict gi, const T *restrict gh,       \
                             const T *restrict c, const T *restrict g,         \
                             T *restrict da, T *restrict dc, int64_t B,        \
                             int64_t H) {                                      \
    for (int64_t b = 0; b < B; b++) {                                          \
      const T *a = gi + b * 4 * H + 3 * H, *e = gh + b * 4 * H + 3 * H;        \
      const T *cp = c + b * H, *gp = g + b * H;                                \
      T *dap = da + b * 4 * H, *dcp = dc + b * H;                              \
      memset(dap, 0, sizeof(T) * (size_t)(3 * H));                             \
      for (int64_t j = 0; j < H; j++) {                                        \
        T o = SIG(a[j] + e[j]);                                                \
        T tc = TANH(cp[j]);                                                    \
        dap[3 * H + j] = gp[j] * tc * o * (1 - o);                             \
        dcp[j] = gp[j] * o * (1 - tc * tc);                                    \
      }                                                                        \
    }                                                                          \
  }

GRU_FWD(float, sigf, crl__tanhf)
GRU_FWD(double, sigd, tanh)
GRU_BWD(float, sigf, crl__tanhf)
GRU_BWD(double, sigd, tanh)
LSTM_C_FWD(float, sigf, crl__tanhf)
LSTM_C_FWD(double, sigd, tanh)
LSTM_C_BWD(float, sigf, crl__tanhf)
LSTM_C_BWD(double, sigd, tanh)
LSTM_H_FWD(float, sigf, crl__tanhf)
LSTM_H_FWD(double, sigd, tanh)
LSTM_H_BWD(float, sigf, crl__tanhf)
LSTM_H_BWD(double, sigd, tanh)

/* ---- fused ops with autograd --------------------------------------------- */

typedef enum { OP_GRU, OP_LSTM_C, OP_LSTM_H } gate_op;

static const char *const op_names[] = {"gru_cell", "lstm_cell_c",
                                       "lstm_cell_h"};

/* A contiguous view of the gradient in dtype dt (new reference). */
static crl_tensor *contig(crl_tensor *g, crl_dtype dt) {
  if (g->dtype == dt && crl_tensor_is_contiguous(g)) {
    crl_tensor_retain(g);
    crl__scope_adopt(g);
    return g;
  }
  return crl__to_contig_dtype(g, dt);
}

static int gates_backward(crl_node *n, crl_tensor *gout, crl_tensor **gin) {
  crl_tensor *gi = n->saved[0], *gh = n->saved[1], *s = n->saved[2];
  gate_op op = (gate_op)n->i[0];
  int64_t B = n->i[1], H = n->i[2];
  crl_dtype dt = gi->dtype;
  crl_tensor *g = contig(gout, dt);
  if (!g) return crl_last_error_code();
  bool need_s = n->edges[2].needs_grad;
  /* every gradient is computed (branch-free kernels); unneeded ones are
   * dropped */
  crl_tensor *dgi = crl_empty(dt, gi->ndim, gi->shape);
  /* GRU's gh gradient differs from gi's in the n gate; LSTM's are equal */
  crl_tensor *dgh = op == OP_GRU ? crl_empty(dt, gh->ndim, gh->shape) : dgi;
  crl_tensor *ds = crl_empty(dt, s->ndim, s->shape);
  if (!dgi || !dgh || !ds) return crl_last_error_code();
#define PTR(t, T) ((T *)(t)->data)
#define CALL(T)                                                                \
  switch (op) {                                                                \
  case OP_GRU:                                                                 \
    gru_bwd_##T(gi->data, gh->data, s->data, g->data, PTR(dgi, T),             \
                PTR(dgh, T), PTR(ds, T), B, H);                                \
    break;                                                                     \
  case OP_LSTM_C:                                                              \
    lstm_c_bwd_##T(gi->data, gh->data, s->data, g->data, PTR(dgi, T),          \
                   PTR(ds, T), B, H);                                          \
    break;                                                                     \
  case OP_LSTM_H:                                                              \
    lstm_h_bwd_##T(gi->data, gh->data, s->data, g->data, PTR(dgi, T),          \
                   PTR(ds, T), B, H);                                          \
    break;                                                                     \
  }
  if (dt == CRL_FLOAT32) {
    CALL(float)
  } else {
    CALL(double)
  }
#undef CALL
#undef PTR
  if (n->edges[0].needs_grad) gin[0] = dgi;
  if (n->edges[1].needs_grad) gin[1] = dgh;
  if (need_s) gin[2] = ds;
  return 0;
}

/* out = op(gi, gh, s): gi, gh [..., G*H]; s [..., H] with the same leading
 * dims; all contiguous (callers make them so), one float dtype. */
static crl_tensor *gates_apply(gate_op op, crl_tensor *gi, crl_tensor *gh,
                               crl_tensor *s, int64_t H) {
  const char *name = op_names[op];
  crl_dtype dt = gi->dtype;
  if ((dt != CRL_FLOAT32 && dt != CRL_FLOAT64) || gh->dtype != dt ||
      s->dtype != dt)
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "%s: gates and state need one float dtype, got %s, "
                        "%s and %s",
                        name, crl_dtype_name(dt), crl_dtype_name(gh->dtype),
                        crl_dtype_name(s->dtype));
  int64_t B = H > 0 ? s->numel / H : 0;
  crl_tensor *out = crl_empty(dt, s->ndim, s->shape);
  if (!out) return NULL;
  if (dt == CRL_FLOAT32) {
    if (op == OP_GRU)
      gru_fwd_float(gi->data, gh->data, s->data, out->data, B, H);
    else if (op == OP_LSTM_C)
      lstm_c_fwd_float(gi->data, gh->data, s->data, out->data, B, H);
    else
      lstm_h_fwd_float(gi->data, gh->data, s->data, out->data, B, H);
  } else {
    if (op == OP_GRU)
      gru_fwd_double(gi->data, gh->data, s->data, out->data, B, H);
    else if (op == OP_LSTM_C)
      lstm_c_fwd_double(gi->data, gh->data, s->data, out->data, B, H);
    else
      lstm_h_fwd_double(gi->data, gh->data, s->data, out->data, B, H);
  }
  crl_tensor *in[3] = {gi, gh, s};
  if (crl__any_requires_grad(3, in)) {
    crl_node *n = crl__record(out, name, gates_backward, 3, in);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    for (int i = 0; i < 3; i++)
      crl__save(n, i, in[i]);
    n->i[0] = op;
    n->i[1] = B;
    n->i[2] = H;
  }
  return out;
}

/* ---- modules ------------------------------------------------------------- */

typedef struct cell_impl {
  int64_t in, hidden;
  bool lstm;
} cell_impl;

static void cell_free(crl_module *m) { free(m->impl); }

/* t contiguous (new reference; t itself when it already is). */
static crl_tensor *contig_in(crl_tensor *t) {
  if (crl_tensor_is_contiguous(t)) {
    crl_tensor_retain(t);
    crl__scope_adopt(t);
    return t;
  }
  return crl_contiguous(t);
}

/* x [..., in]; each state [..., H] with x's leading dims. */
static int check_inputs(const char *op, const cell_impl *C, int nin,
                        crl_tensor *const *in) {
  crl_tensor *x = in[0];
  char sx[96], sh[96];
  if (x->ndim < 1 || x->shape[x->ndim - 1] != C->in)
    return crl__err(CRL_ESHAPE, "%s: input shape %s: expected [batch..., %lld]",
                    op, CRL_SHAPE_STR(x, sx), (long long)C->in);
  static const char *const what[3] = {"input", "hidden state h",
                                      "cell state c"};
  for (int k = 1; k < nin; k++) {
    crl_tensor *h = in[k];
    bool ok = h->ndim == x->ndim && h->shape[h->ndim - 1] == C->hidden;
    for (int d = 0; ok && d < x->ndim - 1; d++)
      ok = h->shape[d] == x->shape[d];
    if (!ok)
      return crl__err(CRL_ESHAPE,
                      "%s: %s has shape %s; with input %s it must be "
                      "[batch..., %lld] (the input's batch dims, then "
                      "hidden_size)",
                      op, what[k], CRL_SHAPE_STR(h, sh), CRL_SHAPE_STR(x, sx),
                      (long long)C->hidden);
  }
  return 0;
}

static int cell_forward(crl_module *m, crl_td *params, int nin,
                        crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nout;
  cell_impl *C = m->impl;
  const char *op = crl_module_name(m);
  int rc = check_inputs(op, C, nin, in);
  if (rc) return rc;
  crl_tensor *wi = crl__module_param(m, params, "weight_ih");
  crl_tensor *wh = wi ? crl__module_param(m, params, "weight_hh") : NULL;
  crl_tensor *bi = wh ? crl__module_param(m, params, "bias_ih") : NULL;
  crl_tensor *bh = bi ? crl__module_param(m, params, "bias_hh") : NULL;
  if (!bh) return CRL_EKEY;
  crl_scope_begin();
  crl_tensor *gi = crl_linear(in[0], wi, bi);
  crl_tensor *gh = gi ? crl_linear(in[1], wh, bh) : NULL;
  gi = gh ? contig_in(gi) : NULL;
  gh = gi ? contig_in(gh) : NULL;
  crl_tensor *s = gh ? contig_in(C->lstm ? in[2] : in[1]) : NULL;
  if (!s) goto fail;
  if (!C->lstm) {
    crl_tensor *h = gates_apply(OP_GRU, gi, gh, s, C->hidden);
    if (!h) goto fail;
    out[0] = crl_scope_end_keep(h);
    return 0;
  }
  crl_tensor *c = gates_apply(OP_LSTM_C, gi, gh, s, C->hidden);
  crl_tensor *h = c ? gates_apply(OP_LSTM_H, gi, gh, c, C->hidden) : NULL;
  if (!h) goto fail;
  crl_tensor_retain(c);
  out[0] = crl_scope_end_keep(h);
  crl__scope_adopt(c);
  out[1] = c;
  return 0;
fail:
  crl_scope_end();
  return crl_last_error_code();
}

static const crl_module_ops gru_ops = {"GRUCell", cell_forward, cell_free};
static const crl_module_ops lstm_ops = {"LSTMCell", cell_forward, cell_free};

static crl_module *cell_new(bool lstm, int64_t in, int64_t hidden, crl_rng *g) {
  const char *op = lstm ? "lstm_cell_new" : "gru_cell_new";
  if (in <= 0 || hidden <= 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: input_size (%lld) and hidden_size (%lld) must be "
                        "> 0, and a generator is required",
                        op, (long long)in, (long long)hidden);
  cell_impl *C = calloc(1, sizeof *C);
  if (!C) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  *C = (cell_impl){in, hidden, lstm};
  crl_module *m = crl_module_new(lstm ? &lstm_ops : &gru_ops, C, lstm ? 3 : 2,
                                 lstm ? 2 : 1);
  if (!m) return NULL;
  int64_t G = (lstm ? 4 : 3) * hidden;
  double k = 1.0 / sqrt((double)hidden);
  /* torch creates and initialises them in this order */
  crl_tensor *ps[4] = {
      crl__module_add_param(m, "weight_ih", CRL_SHAPE(G, in)),
      crl__module_add_param(m, "weight_hh", CRL_SHAPE(G, hidden)),
      crl__module_add_param(m, "bias_ih", CRL_SHAPE(G)),
      crl__module_add_param(m, "bias_hh", CRL_SHAPE(G)),
  };
  for (int i = 0; i < 4; i++)
    if (!ps[i] || crl__param_uniform_(ps[i], k, g)) {
      crl__module_discard(m);
      return NULL;
    }
  return m;
}

crl_module *crl_gru_cell_new(int64_t input_size, int64_t hidden_size,
                             crl_rng *g) {
  return cell_new(false, input_size, hidden_size, g);
}

crl_module *crl_lstm_cell_new(int64_t input_size, int64_t hidden_size,
                              crl_rng *g) {
  return cell_new(true, input_size, hidden_size, g);
}
