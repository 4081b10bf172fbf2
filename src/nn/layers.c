/* Layers: Linear (incl. lazy), Conv2d (incl. lazy), LayerNorm, NoisyLinear,
 * Sequential. Forward passes are built from crl's differentiable ops and
 * read their parameters from the `params` argument (functional calls). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn_internal.h"

/* ---- shared helpers --------------------------------------------------------
 */

int crl__linear_reset_parameters(crl_tensor *w, crl_tensor *b, crl_rng *g) {
  int64_t fi, fo;
  int rc = crl__fan_in_out("linear_reset_parameters", w, &fi, &fo);
  if (!rc) rc = crl_init_kaiming_uniform_(w, -1.0, g);
  if (!rc && b)
    rc = crl__param_uniform_(b, fi > 0 ? 1.0 / sqrt((double)fi) : 0, g);
  return rc;
}

crl_tensor *crl__flatten_lead(crl_tensor *x, int keep, int *nlead,
                              int64_t *lead) {
  int nl = x->ndim - keep;
  int64_t n = 1;
  for (int d = 0; d < nl; d++)
    n *= (lead[d] = x->shape[d]);
  *nlead = nl;
  int64_t shape[CRL_MAX_DIMS];
  shape[0] = n;
  memcpy(shape + 1, x->shape + nl, sizeof(int64_t) * (size_t)keep);
  return crl_reshape(x, keep + 1, shape);
}

crl_tensor *crl__unflatten_lead(crl_tensor *y, int nlead, const int64_t *lead) {
  int64_t shape[CRL_MAX_DIMS];
  int rest = y->ndim - 1;
  if (nlead + rest > CRL_MAX_DIMS)
    return CRL_ERR_NULL(CRL_ESHAPE, "unflatten: more than %d dims",
                        CRL_MAX_DIMS);
  memcpy(shape, lead, sizeof(int64_t) * (size_t)nlead);
  memcpy(shape + nlead, y->shape + 1, sizeof(int64_t) * (size_t)rest);
  return crl_reshape(y, nlead + rest, shape);
}

/* A generator of its own for parameters created later (lazy modules):
 * a sub-stream of g; g is advanced so the next module gets another. */
static crl_rng lazy_rng(crl_rng *g) {
  crl_rng r = crl_rng_split(g, 0x1a2e);
  (void)crl_rng_u64(g);
  return r;
}

/* ---- Linear
 * ------------------------------------------------------------------- */

typedef struct linear_impl {
  int64_t in, out;
  bool bias;
  bool materialized; /* parameters exist */
  crl_rng rng;       /* lazy: generator for the first call */
} linear_impl;

static void free_impl(crl_module *m) { free(m->impl); }

static int linear_materialize(crl_module *m, linear_impl *L, int64_t in) {
  crl_tensor *w = crl__module_add_param(m, "weight", CRL_SHAPE(L->out, in));
  crl_tensor *b =
      w && L->bias ? crl__module_add_param(m, "bias", CRL_SHAPE(L->out)) : NULL;
  if (!w || (L->bias && !b) || crl__linear_reset_parameters(w, b, &L->rng)) {
    if (w) crl_td_del(m->params, "weight");
    if (b) crl_td_del(m->params, "bias");
    return crl_last_error_code() ? crl_last_error_code() : CRL_ENOMEM;
  }
  L->in = in;
  L->materialized = true;
  return 0;
}

static int linear_forward(crl_module *m, crl_td *params, int nin,
                          crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  linear_impl *L = m->impl;
  crl_tensor *x = in[0];
  if (CRL_UNLIKELY(!L->materialized) && params == m->params) {
    if (x->ndim < 1)
      return crl__err(CRL_ESHAPE,
                      "Linear: lazy in_features needs an input with at "
                      "least 1 dim, got a scalar");
    int rc = linear_materialize(m, L, x->shape[x->ndim - 1]);
    if (rc) return rc;
  }
  crl_tensor *w = crl__module_param(m, params, "weight");
  if (!w) return CRL_EKEY;
  crl_tensor *b = NULL;
  if (L->bias && !(b = crl__module_param(m, params, "bias"))) return CRL_EKEY;
  out[0] = crl_linear(x, w, b);
  return out[0] ? 0 : crl_last_error_code();
}

static const crl_module_ops linear_ops = {"Linear", linear_forward, free_impl};

crl_module *crl_linear_new(int64_t in_features, int64_t out_features, bool bias,
                           crl_rng *g) {
  if (out_features < 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "linear_new: out_features must be >= 0 (got %lld) "
                        "and a generator is required",
                        (long long)out_features);
  linear_impl *L = calloc(1, sizeof *L);
  if (!L) return CRL_ERR_NULL(CRL_ENOMEM, "linear_new: out of memory");
  *L = (linear_impl){in_features, out_features, bias, false, {0, 0}};
  crl_module *m = crl_module_new(&linear_ops, L, 1, 1);
  if (!m) return NULL;
  if (in_features < 0) {
    L->rng = lazy_rng(g);
    m->lazy = true;
    return m;
  }
  L->rng = *g;
  int rc = linear_materialize(m, L, in_features);
  *g = L->rng;
  if (rc) {
    crl__module_discard(m);
    return NULL;
  }
  return m;
}

/* ---- Conv2d
 * ------------------------------------------------------------------ */

typedef struct conv_impl {
  int64_t in, out;
  int k, stride, pad;
  bool bias;
  bool materialized;
  crl_rng rng;
} conv_impl;

static int conv_materialize(crl_module *m, conv_impl *C, int64_t in) {
  crl_tensor *w =
      crl__module_add_param(m, "weight", CRL_SHAPE(C->out, in, C->k, C->k));
  crl_tensor *b =
      w && C->bias ? crl__module_add_param(m, "bias", CRL_SHAPE(C->out)) : NULL;
  if (!w || (C->bias && !b) || crl__linear_reset_parameters(w, b, &C->rng)) {
    if (w) crl_td_del(m->params, "weight");
    if (b) crl_td_del(m->params, "bias");
    return crl_last_error_code() ? crl_last_error_code() : CRL_ENOMEM;
  }
  C->in = in;
  C->materialized = true;
  return 0;
}

static int conv_forward(crl_module *m, crl_td *params, int nin,
                        crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  conv_impl *C = m->impl;
  crl_tensor *x = in[0];
  if (x->ndim < 3) {
    char s[96];
    return crl__err(CRL_ESHAPE,
                    "Conv2d: input shape %s: expected [batch..., C, H, W] "
                    "(at least 3 dims)",
                    CRL_SHAPE_STR(x, s));
  }
  if (CRL_UNLIKELY(!C->materialized) && params == m->params) {
    int rc = conv_materialize(m, C, x->shape[x->ndim - 3]);
    if (rc) return rc;
  }
  crl_tensor *w = crl__module_param(m, params, "weight");
  if (!w) return CRL_EKEY;
  crl_tensor *b = NULL;
  if (C->bias && !(b = crl__module_param(m, params, "bias"))) return CRL_EKEY;
  if (x->ndim == 4) { /* the common case: no reshapes */
    out[0] = crl_conv2d(x, w, b, C->stride, C->stride, C->pad, C->pad);
    return out[0] ? 0 : crl_last_error_code();
  }
  crl_scope_begin();
  int nlead;
  int64_t lead[CRL_MAX_DIMS];
  crl_tensor *x4 = crl__flatten_lead(x, 3, &nlead, lead);
  crl_tensor *y =
      x4 ? crl_conv2d(x4, w, b, C->stride, C->stride, C->pad, C->pad) : NULL;
  y = y ? crl__unflatten_lead(y, nlead, lead) : NULL;
  if (!y) {
    crl_scope_end();
    return crl_last_error_code();
  }
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static const crl_module_ops conv_ops = {"Conv2d", conv_forward, free_impl};

crl_module *crl_conv2d_new(int64_t in_channels, int64_t out_channels,
                           int kernel, int stride, int padding, bool bias,
                           crl_rng *g) {
  if (out_channels <= 0 || kernel <= 0 || stride <= 0 || padding < 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "conv2d_new: out_channels %lld, kernel %d, stride %d "
                        "must be > 0 and padding %d >= 0, with a generator",
                        (long long)out_channels, kernel, stride, padding);
  conv_impl *C = calloc(1, sizeof *C);
  if (!C) return CRL_ERR_NULL(CRL_ENOMEM, "conv2d_new: out of memory");
  *C = (conv_impl){in_channels, out_channels, kernel, stride,
                   padding,     bias,         false,  {0, 0}};
  crl_module *m = crl_module_new(&conv_ops, C, 1, 1);
  if (!m) return NULL;
  if (in_channels < 0) {
    C->rng = lazy_rng(g);
    m->lazy = true;
    return m;
  }
  C->rng = *g;
  int rc = conv_materialize(m, C, in_channels);
  *g = C->rng;
  if (rc) {
    crl__module_discard(m);
    return NULL;
  }
  return m;
}

/* ---- LayerNorm
 * --------------------------------------------------------------- */

typedef struct ln_impl {
  int ndim;
  int64_t shape[CRL_MAX_DIMS];
  bool affine;
  double eps;
} ln_impl;

static int ln_forward(crl_module *m, crl_td *params, int nin,
                      crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  ln_impl *L = m->impl;
  crl_tensor *x = in[0];
  bool ok = x->ndim >= L->ndim;
  for (int d = 0; ok && d < L->ndim; d++)
    ok = x->shape[x->ndim - L->ndim + d] == L->shape[d];
  if (!ok) {
    char s1[96], s2[96];
    return crl__err(CRL_ESHAPE,
                    "LayerNorm: input shape %s does not end with the "
                    "normalized shape %s",
                    CRL_SHAPE_STR(x, s1),
                    crl_shape_str(L->ndim, L->shape, s2, sizeof s2));
  }
  crl_tensor *w = NULL, *b = NULL;
  if (L->affine) {
    if (!(w = crl__module_param(m, params, "weight")) ||
        !(b = crl__module_param(m, params, "bias")))
      return CRL_EKEY;
  }
  int dims[CRL_MAX_DIMS];
  for (int d = 0; d < L->ndim; d++)
    dims[d] = -1 - d;
  crl_scope_begin();
  crl_tensor *mu = crl_mean(x, L->ndim, dims, true);
  crl_tensor *xc = mu ? crl_sub(x, mu) : NULL;
  crl_tensor *var = xc ? crl_mean(crl_square(xc), L->ndim, dims, true) : NULL;
  crl_tensor *rs = var ? crl_rsqrt(crl_add_scalar(var, L->eps)) : NULL;
  crl_tensor *y = rs ? crl_mul(xc, rs) : NULL;
  if (y && L->affine) y = crl_add(crl_mul(y, w), b);
  if (!y) {
    crl_scope_end();
    return crl_last_error_code();
  }
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static const crl_module_ops ln_ops = {"LayerNorm", ln_forward, free_impl};

crl_module *crl_layer_norm_new(int ndim, const int64_t *shape, bool affine) {
  if (ndim < 1 || ndim > CRL_MAX_DIMS || !shape)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "layer_norm_new: 1 to %d normalized dims are "
                        "required, got %d",
                        CRL_MAX_DIMS, ndim);
  for (int d = 0; d < ndim; d++)
    if (shape[d] <= 0) {
      char s[96];
      return CRL_ERR_NULL(CRL_EINVAL,
                          "layer_norm_new: normalized shape %s has a "
                          "non-positive size",
                          crl_shape_str(ndim, shape, s, sizeof s));
    }
  ln_impl *L = calloc(1, sizeof *L);
  if (!L) return CRL_ERR_NULL(CRL_ENOMEM, "layer_norm_new: out of memory");
  L->ndim = ndim;
  memcpy(L->shape, shape, sizeof(int64_t) * (size_t)ndim);
  L->affine = affine;
  L->eps = 1e-5;
  crl_module *m = crl_module_new(&ln_ops, L, 1, 1);
  if (!m) return NULL;
  if (affine) {
    crl_tensor *w = crl__module_add_param(m, "weight", ndim, shape);
    crl_tensor *b = w ? crl__module_add_param(m, "bias", ndim, shape) : NULL;
    if (!b || crl_init_constant_(w, 1.0)) {
      crl__module_discard(m);
      return NULL;
    }
  }
  return m;
}

/* ---- NoisyLinear
 * --------------------------------------------------------------- TorchRL's
 * NoisyLinear: weight = mu + sigma * epsilon with factorised noise epsilon_w =
 * f(e_out) f(e_in)ᵀ, epsilon_b = f(e_out), f(x) = sign(x) sqrt(|x|), e ~ N(0,
 * 1). mu ~ U(-1/sqrt(in), 1/sqrt(in)); weight sigma = std_init / sqrt(in), bias
 * sigma = std_init / sqrt(out). */

typedef struct noisy_impl {
  int64_t in, out;
} noisy_impl;

static int noisy_forward(crl_module *m, crl_td *params, int nin,
                         crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  crl_tensor *wm = crl__module_param(m, params, "weight_mu");
  crl_tensor *ws = wm ? crl__module_param(m, params, "weight_sigma") : NULL;
  crl_tensor *bm = ws ? crl__module_param(m, params, "bias_mu") : NULL;
  crl_tensor *bs = bm ? crl__module_param(m, params, "bias_sigma") : NULL;
  crl_tensor *we =
      bs ? crl__module_param(m, m->buffers, "weight_epsilon") : NULL;
  crl_tensor *be = we ? crl__module_param(m, m->buffers, "bias_epsilon") : NULL;
  if (!be) return CRL_EKEY;
  crl_scope_begin();
  crl_tensor *w = crl_add(wm, crl_mul(ws, we));
  crl_tensor *b = w ? crl_add(bm, crl_mul(bs, be)) : NULL;
  crl_tensor *y = b ? crl_linear(in[0], w, b) : NULL;
  if (!y) {
    crl_scope_end();
    return crl_last_error_code();
  }
  out[0] = crl_scope_end_keep(y);
  return 0;
}

static const crl_module_ops noisy_ops = {"NoisyLinear", noisy_forward,
                                         free_impl};

static void scale_noise(double *e, int64_t n, crl_rng *g) {
  for (int64_t i = 0; i < n; i++) {
    double x = crl_rng_normal(g);
    e[i] = copysign(sqrt(fabs(x)), x); /* sign(x) sqrt(|x|) */
  }
}

int crl_noisy_linear_reset_noise(crl_module *m, crl_rng *g) {
  if (!m || m->ops != &noisy_ops || !g)
    return crl__err(CRL_EINVAL,
                    "noisy_linear_reset_noise: a NoisyLinear module and a "
                    "generator are required (got %s)",
                    m ? crl_module_name(m) : "NULL");
  noisy_impl *N = m->impl;
  crl_tensor *we = crl__module_param(m, m->buffers, "weight_epsilon");
  crl_tensor *be = we ? crl__module_param(m, m->buffers, "bias_epsilon") : NULL;
  if (!be) return CRL_EKEY;
  double *ei = malloc(sizeof(double) * (size_t)(N->in + N->out + 1));
  if (!ei)
    return crl__err(CRL_ENOMEM, "noisy_linear_reset_noise: out of memory");
  double *eo = ei + N->in;
  scale_noise(ei, N->in, g);
  scale_noise(eo, N->out, g);
  crl_scope_begin();
  crl_tensor *tw = crl_empty(CRL_FLOAT64, CRL_SHAPE(N->out, N->in));
  crl_tensor *tb =
      tw ? crl_from_array(CRL_FLOAT64, CRL_SHAPE(N->out), eo) : NULL;
  if (!tb) {
    crl_scope_end();
    free(ei);
    return crl_last_error_code();
  }
  double *p = tw->data;
  for (int64_t o = 0; o < N->out; o++)
    for (int64_t i = 0; i < N->in; i++)
      p[o * N->in + i] = eo[o] * ei[i];
  crl__copy_into(we, tw);
  crl__copy_into(be, tb);
  we->version++;
  be->version++;
  crl_scope_end();
  free(ei);
  return 0;
}

crl_module *crl_noisy_linear_new(int64_t in_features, int64_t out_features,
                                 double std_init, crl_rng *g) {
  if (in_features <= 0 || out_features <= 0 || !g)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "noisy_linear_new: in_features %lld and out_features "
                        "%lld must be > 0, with a generator",
                        (long long)in_features, (long long)out_features);
  if (std_init <= 0) std_init = 0.1;
  noisy_impl *N = calloc(1, sizeof *N);
  if (!N) return CRL_ERR_NULL(CRL_ENOMEM, "noisy_linear_new: out of memory");
  N->in = in_features;
  N->out = out_features;
  crl_module *m = crl_module_new(&noisy_ops, N, 1, 1);
  if (!m) return NULL;
  int64_t o = out_features, i = in_features;
  crl_tensor *wm = crl__module_add_param(m, "weight_mu", CRL_SHAPE(o, i));
  crl_tensor *ws =
      wm ? crl__module_add_param(m, "weight_sigma", CRL_SHAPE(o, i)) : NULL;
  crl_tensor *bm =
      ws ? crl__module_add_param(m, "bias_mu", CRL_SHAPE(o)) : NULL;
  crl_tensor *bs =
      bm ? crl__module_add_param(m, "bias_sigma", CRL_SHAPE(o)) : NULL;
  bool ok =
      bs &&
      crl__module_add_buffer(m, "weight_epsilon", CRL_FLOAT32,
                             CRL_SHAPE(o, i)) &&
      crl__module_add_buffer(m, "bias_epsilon", CRL_FLOAT32, CRL_SHAPE(o));
  double r = 1.0 / sqrt((double)i);
  ok = ok && !crl__param_uniform_(wm, r, g) &&
       !crl_init_constant_(ws, std_init / sqrt((double)i)) &&
       !crl__param_uniform_(bm, r, g) &&
       !crl_init_constant_(bs, std_init / sqrt((double)o)) &&
       !crl_noisy_linear_reset_noise(m, g);
  if (!ok) {
    crl__module_discard(m);
    return NULL;
  }
  return m;
}

/* ---- Sequential ------------------------------------------------------------
 */

int crl__sequential_forward(crl_module *m, crl_td *params, int nin,
                            crl_tensor *const *in, int nout, crl_tensor **out) {
  (void)nin, (void)nout;
  crl_scope_begin();
  crl_tensor *x = in[0];
  for (int i = 0; i < m->nchildren; i++) {
    crl_tensor *y = crl__module_run_child(m, params, i, x);
    if (!y) {
      crl_scope_end();
      return crl_last_error_code();
    }
    x = y;
  }
  if (x == in[0]) { /* empty sequence: identity */
    crl_tensor_retain(x);
    crl__scope_adopt(x);
  }
  out[0] = crl_scope_end_keep(x);
  return 0;
}

static const crl_module_ops seq_ops = {"Sequential", crl__sequential_forward,
                                       NULL};

crl_module *crl_sequential_new(int n, crl_module *const *modules) {
  if (n < 0 || (n > 0 && !modules))
    return CRL_ERR_NULL(CRL_EINVAL, "sequential_new: %d modules given", n);
  for (int i = 0; i < n; i++) {
    if (!modules[i])
      return CRL_ERR_NULL(CRL_EINVAL, "sequential_new: module %d is NULL", i);
    if (modules[i]->nin != 1 || modules[i]->nout != 1)
      return CRL_ERR_NULL(CRL_EINVAL,
                          "sequential_new: module %d (%s) takes %d input(s) "
                          "and gives %d output(s); 1 and 1 are required",
                          i, crl_module_name(modules[i]), modules[i]->nin,
                          modules[i]->nout);
  }
  crl_module *m = crl_module_new(&seq_ops, NULL, 1, 1);
  if (!m) return NULL;
  for (int i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    if (crl__module_add_child(m, key, modules[i]) < 0) {
      crl__module_discard(m);
      return NULL;
    }
  }
  return m;
}

crl_module *crl_sequential_get(const crl_module *seq, int i) {
  if (!seq) return CRL_ERR_NULL(CRL_EINVAL, "sequential_get: module is NULL");
  if (i < 0 || i >= seq->nchildren)
    return CRL_ERR_NULL(CRL_EINDEX,
                        "sequential_get: index %d is out of range for %s "
                        "with %d modules",
                        i, crl_module_name(seq), seq->nchildren);
  return seq->children[i].m;
}
