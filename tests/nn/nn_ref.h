/* Plain double-precision reference layers for the network tests: loops
 * written from the definitions, reading parameters element by element from
 * crl tensors, so a net's forward can be checked against an independent
 * computation. */
#ifndef CRL_TESTS_NN_REF_H
#define CRL_TESTS_NN_REF_H

#include <math.h>
#include <stdlib.h>

#include "crl/crl.h"

static inline double ref_at(const crl_tensor *t, int64_t i) {
  return crl_tensor_get_flat(t, i);
}

/* A parameter of a TensorDict by key (fails the test when missing). */
static inline crl_tensor *ref_param(crl_td *p, const char *key) {
  crl_tensor *t = crl_td_find(p, key);
  if (!t) fail_msg("params lack '%s'", key);
  return t;
}

/* y[b, o] = sum_i x[b, i] w[o, i] + bias[o]; w [O, I]. */
static inline void ref_linear(const double *x, int64_t B, const crl_tensor *w,
                              const crl_tensor *bias, double *y) {
  int64_t O = w->shape[0], I = w->shape[1];
  for (int64_t b = 0; b < B; b++)
    for (int64_t o = 0; o < O; o++) {
      double s = bias ? ref_at(bias, o) : 0;
      for (int64_t i = 0; i < I; i++)
        s += x[b * I + i] * ref_at(w, o * I + i);
      y[b * O + o] = s;
    }
}

static inline void ref_elu(double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    v[i] = v[i] > 0 ? v[i] : exp(v[i]) - 1;
}

static inline double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* x [B, C, H, W] -> y [B, O, OH, OW]; w [O, C, k, k]; zero padding. */
static inline void ref_conv2d(const double *x, int64_t B, int64_t C, int64_t H,
                              int64_t W, const crl_tensor *w,
                              const crl_tensor *bias, int stride, int pad,
                              double *y, int64_t *OHp, int64_t *OWp) {
  int64_t O = w->shape[0], k = w->shape[2];
  int64_t OH = (H + 2 * pad - k) / stride + 1;
  int64_t OW = (W + 2 * pad - k) / stride + 1;
  for (int64_t b = 0; b < B; b++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double s = bias ? ref_at(bias, o) : 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < k; i++)
              for (int64_t j = 0; j < k; j++) {
                int64_t h = oh * stride - pad + i, ww = ow * stride - pad + j;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                s += x[((b * C + c) * H + h) * W + ww] *
                     ref_at(w, ((o * C + c) * k + i) * k + j);
              }
          y[((b * O + o) * OH + oh) * OW + ow] = s;
        }
  *OHp = OH;
  *OWp = OW;
}

/* A TorchRL MLP under `prefix` ("features", "mlp", ...): Linear layers at
 * even indices 0, 2, ..., 2*(nlin-1), ELU after each but the last unless
 * act_last. x [B, in] -> returns a malloc'ed [B, out]; *out_dim set. */
static inline double *ref_mlp_elu(crl_td *p, const char *prefix, int nlin,
                                  bool act_last, const double *x, int64_t B,
                                  int64_t *out_dim) {
  int64_t in = -1;
  double *cur = NULL;
  for (int l = 0; l < nlin; l++) {
    char kw[64], kb[64];
    snprintf(kw, sizeof kw, "%s/%d/weight", prefix, 2 * l);
    snprintf(kb, sizeof kb, "%s/%d/bias", prefix, 2 * l);
    crl_tensor *w = ref_param(p, kw), *b = ref_param(p, kb);
    if (in >= 0 && w->shape[1] != in) fail_msg("%s: width mismatch", kw);
    double *y = malloc(sizeof(double) * (size_t)(B * w->shape[0]));
    ref_linear(cur ? cur : x, B, w, b, y);
    if (l < nlin - 1 || act_last) ref_elu(y, B * w->shape[0]);
    free(cur);
    cur = y;
    in = w->shape[0];
  }
  *out_dim = in;
  return cur;
}

/* A TorchRL ConvNet under `prefix`: Conv2d layers at even indices 0, 2, ...,
 * 2*(nconv-1) with the given strides and paddings, ELU after each.
 * x [B, C, H, W] -> returns a malloc'ed [B, *c, *h, *w]. */
static inline double *ref_convnet_elu(crl_td *p, const char *prefix, int nconv,
                                      const int *strides, const int *pads,
                                      const double *x, int64_t B, int64_t C,
                                      int64_t H, int64_t W, int64_t *c,
                                      int64_t *h, int64_t *w) {
  double *cur = NULL;
  for (int l = 0; l < nconv; l++) {
    char kw[64], kb[64];
    snprintf(kw, sizeof kw, "%s/%d/weight", prefix, 2 * l);
    snprintf(kb, sizeof kb, "%s/%d/bias", prefix, 2 * l);
    crl_tensor *wt = ref_param(p, kw), *bt = ref_param(p, kb);
    int64_t k = wt->shape[2];
    int64_t oh = (H + 2 * pads[l] - k) / strides[l] + 1;
    int64_t ow = (W + 2 * pads[l] - k) / strides[l] + 1;
    double *y = malloc(sizeof(double) * (size_t)(B * wt->shape[0] * oh * ow));
    ref_conv2d(cur ? cur : x, B, C, H, W, wt, bt, strides[l], pads[l], y, &oh,
               &ow);
    C = wt->shape[0];
    H = oh;
    W = ow;
    ref_elu(y, B * C * H * W);
    free(cur);
    cur = y;
  }
  *c = C;
  *h = H;
  *w = W;
  return cur;
}

/* Values of a tensor as a malloc'ed double array. */
static inline double *ref_values(const crl_tensor *t) {
  double *v = malloc(sizeof(double) * (size_t)(t->numel ? t->numel : 1));
  crl_tensor_to_array(t, CRL_FLOAT64, v, t->numel);
  return v;
}

/* Fill every leaf of a TensorDict with deterministic values of scale s. */
static inline void ref_fill_params(crl_td *p, double s, uint64_t seed) {
  crl_td_keys k;
  crl_td_keys_get(p, true, true, &k);
  crl_rng g;
  crl_rng_seed(&g, seed);
  for (int i = 0; i < k.n; i++) {
    crl_tensor *t = crl_td_find(p, k.keys[i]);
    crl_no_grad_begin();
    for (int64_t j = 0; j < t->numel; j++)
      crl_tensor_set_flat(t, j, s * (2 * crl_rng_uniform(&g) - 1));
    crl_no_grad_end();
  }
  crl_td_keys_free(&k);
}

/* A detached float64 copy of a module's parameters; the listed keys (NULL
 * terminated) require grad. */
static inline crl_td *ref_params64(crl_module *m, const char *const *grad) {
  crl_td *c = crl_module_params_clone(m, false);
  crl_td *d = crl_td_to_dtype(c, CRL_FLOAT64, true);
  for (int i = 0; grad && grad[i]; i++) {
    crl_tensor *t = crl_td_find(d, grad[i]);
    if (!t) fail_msg("no parameter '%s'", grad[i]);
    crl_set_requires_grad(t, true);
  }
  return d;
}

#endif
