/* ProbabilisticTensorDictModule (tensordict.nn) and NormalParamExtractor
 * (torchrl.modules): a distribution built from TensorDict entries, sampled
 * (RANDOM), or its mode / mean written as the action; the split of a
 * network's output into loc and a positive scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "modules_internal.h"

/* ---- the probabilistic module -------------------------------------------- */

typedef struct {
  crl_dist_kind kind;
  int nparams;
  double low, high;
  int event_dims;
  bool log_prob;
  crl__proj proj;
  bool project; /* false when samples are in the spec by construction */
} prob_impl;

static void prob_free(crl_tdmodule *m) {
  prob_impl *p = m->impl;
  if (!p) return;
  crl__proj_free(&p->proj);
  free(p);
}

static int prob_forward(crl_tdmodule *m, crl_td *td, crl_td *params);
static const crl_tdmodule_ops prob_ops = {"ProbabilisticTensorDictModule",
                                          prob_forward, prob_free};

bool crl__tdm_is_prob_module(const crl_tdmodule *m) {
  return m && m->ops == &prob_ops;
}

crl_spec *crl__prob_module_spec(const crl_tdmodule *m) {
  return crl__tdm_is_prob_module(m) ? ((prob_impl *)m->impl)->proj.spec : NULL;
}

static crl_dist *build_dist(crl_tdmodule *m, crl_td *td) {
  prob_impl *p = m->impl;
  crl_tensor *a = crl__tdm_in(m, td, m->in_keys[0]);
  if (!a) return NULL;
  crl_tensor *b = NULL;
  if (p->nparams == 2 && !(b = crl__tdm_in(m, td, m->in_keys[1]))) return NULL;
  switch (p->kind) {
  case CRL_DIST_NORMAL: return crl_normal_new(a, b, p->event_dims);
  case CRL_DIST_TANH_NORMAL:
    return crl_tanh_normal_new(a, b, p->low, p->high, p->event_dims);
  case CRL_DIST_TRUNCATED_NORMAL:
    return crl_truncated_normal_new(a, b, p->low, p->high, p->event_dims);
  case CRL_DIST_DELTA: return crl_delta_new(a, p->event_dims);
  case CRL_DIST_TANH_DELTA:
    return crl_tanh_delta_new(a, p->low, p->high, p->event_dims);
  case CRL_DIST_CATEGORICAL: return crl_categorical_new(a);
  case CRL_DIST_ONE_HOT_CATEGORICAL: return crl_one_hot_categorical_new(a);
  }
  return CRL_ERR_NULL(CRL_EINVAL, "%s: unknown distribution kind %d",
                      crl_tdmodule_name(m), (int)p->kind);
}

static int prob_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  (void)params;
  prob_impl *p = m->impl;
  crl_dist *d = build_dist(m, td);
  if (!d) return crl_last_error_code();
  crl_tensor *v;
  switch (crl_exploration_mode_get()) {
  case CRL_EXPLORATION_MODE: v = crl_dist_mode(d); break;
  case CRL_EXPLORATION_MEAN:
    /* a Categorical has no mean (torch gives NaN): its mode stands in */
    v = p->kind == CRL_DIST_CATEGORICAL ? crl_dist_mode(d) : crl_dist_mean(d);
    break;
  default:
    v = p->kind == CRL_DIST_CATEGORICAL ? crl_dist_sample(d, &m->rng)
                                        : crl_dist_rsample(d, &m->rng);
  }
  if (!v) return crl_last_error_code();
  crl_tensor *lp = NULL;
  if (p->log_prob && !(lp = crl_dist_log_prob(d, v)))
    return crl_last_error_code();
  if (p->project &&
      !(p->proj.float_box && v->dtype == p->proj.dtype &&
        (p->kind == CRL_DIST_TANH_NORMAL || p->kind == CRL_DIST_TANH_DELTA ||
         p->kind == CRL_DIST_TRUNCATED_NORMAL) &&
        p->low >= p->proj.max_lo && p->high <= p->proj.min_hi))
    if (!(v = crl__proj_apply(&p->proj, v))) return crl_last_error_code();
  int rc = crl__tdm_check_out(m, td, m->out_keys[0], v);
  if (!rc && lp) rc = crl__tdm_check_out(m, td, m->out_keys[1], lp);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[0], v);
  if (!rc && lp) rc = crl__tdm_set(td, m->out_keys[1], lp);
  return rc;
}

static bool is_normal_kind(crl_dist_kind k) {
  return k == CRL_DIST_NORMAL || k == CRL_DIST_TANH_NORMAL ||
         k == CRL_DIST_TRUNCATED_NORMAL;
}

static bool is_bounded_kind(crl_dist_kind k) {
  return k == CRL_DIST_TANH_NORMAL || k == CRL_DIST_TANH_DELTA ||
         k == CRL_DIST_TRUNCATED_NORMAL;
}

crl_tdmodule *crl_prob_module_new(const crl_prob_options *opt) {
  const char *op = "prob_module_new";
  if (!opt) return CRL_ERR_NULL(CRL_EINVAL, "%s: options are NULL", op);
  crl_dist_kind k = opt->dist;
  if ((int)k < 0 || k > CRL_DIST_ONE_HOT_CATEGORICAL)
    return CRL_ERR_NULL(CRL_EINVAL, "%s: unknown distribution kind %d", op,
                        (int)k);
  int want = is_normal_kind(k) ? 2 : 1;
  static const char *const normal_keys[2] = {"loc", "scale"};
  static const char *const param_key[1] = {"param"};
  static const char *const logits_key[1] = {"logits"};
  const char *keys[2];
  const char *const *defaults =
      is_normal_kind(k)                                 ? normal_keys
      : k == CRL_DIST_DELTA || k == CRL_DIST_TANH_DELTA ? param_key
                                                        : logits_key;
  if (opt->nparams != 0 && opt->nparams != want)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: the distribution takes %d parameter key(s), %d "
                        "given",
                        op, want, opt->nparams);
  for (int i = 0; i < want; i++)
    keys[i] =
        opt->nparams && opt->param_keys[i] ? opt->param_keys[i] : defaults[i];
  if (opt->event_dims < -1 || opt->event_dims > 1)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: event_dims %d; 0 (the default), 1 or -1 (none) "
                        "are allowed",
                        op, opt->event_dims);
  prob_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  p->kind = k;
  p->nparams = want;
  p->log_prob = opt->return_log_prob;
  p->event_dims = opt->event_dims == 0 ? (is_bounded_kind(k) ? 1 : 0)
                                       : (opt->event_dims > 0 ? 1 : 0);
  if (crl__proj_init(&p->proj, opt->spec)) {
    crl__err(crl_last_error_code(), "%s: %s", op, crl_last_error());
    free(p);
    return NULL;
  }
  p->project = opt->spec != NULL;
  p->low = opt->low;
  p->high = opt->high;
  if (is_bounded_kind(k) && p->low == 0 && p->high == 0) {
    /* the spec's bounds when they are scalar, else TorchRL's [-1, 1] */
    if (p->proj.float_box && p->proj.scalar && isfinite(p->proj.lo) &&
        isfinite(p->proj.hi) && p->proj.lo < p->proj.hi) {
      p->low = p->proj.lo;
      p->high = p->proj.hi;
    } else {
      p->low = -1;
      p->high = 1;
    }
  }
  if (is_bounded_kind(k) &&
      !(isfinite(p->low) && isfinite(p->high) && p->low < p->high)) {
    double lo = p->low, hi = p->high;
    prob_free(&(crl_tdmodule){.impl = p});
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: bounds [%g, %g] are invalid (finite, low < high)",
                        op, lo, hi);
  }
  const char *out[2] = {opt->out_key ? opt->out_key : "action",
                        opt->log_prob_key ? opt->log_prob_key
                                          : "sample_log_prob"};
  return crl__tdm_new(op, &prob_ops, p, want, keys, NULL,
                      opt->return_log_prob ? 2 : 1, out, NULL, 0, NULL);
}

static void release_dist(void *d) { crl_dist_release(d); }

crl_dist *crl_prob_module_dist(crl_tdmodule *m, crl_td *td, crl_td *params) {
  const char *op = "prob_module_dist";
  if (!m || !td)
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: a module and a TensorDict are "
                        "required",
                        op);
  crl_scope_begin();
  crl_dist *d = NULL;
  crl_td *pp = params ? params : m->params;
  for (int depth = 0; depth < 256; depth++) {
    if (crl__tdm_is_prob_module(m)) {
      d = build_dist(m, td);
      break;
    }
    crl_tdmodule *inner = crl__exploration_inner(m);
    if (inner) {
      m = inner; /* wrappers share their policy's parameters */
      continue;
    }
    if (!crl__tdm_is_sequence(m)) {
      crl__err(CRL_EINVAL,
               "%s: %s is not probabilistic (a ProbabilisticTensorDictModule, "
               "or a sequence ending with one)",
               op, crl_tdmodule_name(m));
      break;
    }
    /* run every part but the last, then look at the last */
    int n = m->nchildren, rc = 0;
    for (int i = 0; i < n - 1 && !rc; i++) {
      crl_td *cp = crl__td_sequential_child_params(m, pp, i);
      rc = cp ? crl_tdmodule_forward(m->children[i], td, cp) : CRL_EKEY;
    }
    crl_td *cp = rc ? NULL : crl__td_sequential_child_params(m, pp, n - 1);
    if (!cp) break;
    m = m->children[n - 1];
    pp = cp;
  }
  if (d) crl_dist_retain(d);
  crl_scope_end();
  if (d) crl__scope_adopt_obj(d, release_dist);
  return d;
}

/* ---- scale mappings (torchrl.modules.utils.mappings) --------------------- */

typedef enum {
  MAP_BIASED_SOFTPLUS = 0,
  MAP_SOFTPLUS,
  MAP_EXP,
  MAP_RELU,
  MAP_NONE,
  MAP_EXPLN,
} scale_map;

/* f(x) and f'(x) of a mapping; biased softplus is softplus(x + bias) + mn */
static inline double map_f(int k, double x, double bias, double mn,
                           double *df) {
  switch (k) {
  case MAP_BIASED_SOFTPLUS:
  case MAP_SOFTPLUS: {
    double z = x + bias, y;
    if (z > 20) { /* torch's threshold */
      y = z;
      *df = 1;
    } else {
      double e = exp(z);
      y = log1p(e);
      *df = e / (1 + e);
    }
    return y + mn;
  }
  case MAP_EXP: {
    double e = exp(x);
    *df = e;
    return e;
  }
  case MAP_RELU: *df = x > 0; return x > 0 ? x : 0;
  case MAP_EXPLN:
    if (x <= 0) {
      double e = exp(x);
      *df = e;
      return e;
    }
    *df = 1 / (1 + x);
    return log1p(x) + 1;
  default: *df = 1; return x;
  }
}

/* log(x) for x in [1, 2] without a libm call (Cephes' logf polynomial on
 * the mantissa reduced to [sqrt(1/2), sqrt(2)]), so the loop vectorizes */
static inline __attribute__((always_inline)) float log_1_2f(float x) {
  float e = x > 1.41421356f ? 1.0f : 0.0f;
  float t = (x > 1.41421356f ? 0.5f * x : x) - 1.0f;
  float z = t * t;
  float y =
      ((((((((7.0376836292E-2f * t - 1.1514610310E-1f) * t + 1.1676998740E-1f) *
                t -
            1.2420140846E-1f) *
               t +
           1.4249322787E-1f) *
              t -
          1.6668057665E-1f) *
             t +
         2.0000714765E-1f) *
            t -
        2.4999993993E-1f) *
           t +
       3.3333331174E-1f) *
      t * z;
  y += -2.12194440e-4f * e - 0.5f * z;
  return t + y + 0.693359375f * e;
}

/* softplus(x + bias) + mn in float32: max(z, 0) + log1p(exp(-|z|)), with
 * log1p's series for tiny arguments (identity above torch's threshold 20) */
static inline __attribute__((always_inline)) float bsp_f32(float x, float bias,
                                                           float mn) {
  float z = x + bias;
  float az = z < 0 ? -z : z;
  float u = crl__expf(-az);
  float l = u < 1e-3f ? u * (1.0f - u * (0.5f - u * (1.0f / 3.0f)))
                      : log_1_2f(1.0f + u);
  float y = (z > 0 ? z : 0.0f) + l;
  y = z > 20.0f ? z : y;
  return y + mn;
}

static void map_forward(int k, double bias, double mn, double lb,
                        const crl_tensor *x, int64_t rows, int64_t rs,
                        int64_t cols, crl_tensor *out) {
  if (x->dtype == CRL_FLOAT32) {
    const float *xp = x->data;
    float *o = out->data;
    float fb = (float)bias, fm = (float)mn, fl = (float)lb;
    /* gather the rows, then one flat pass (rows are short: the pass over
     * all of them is what vectorizes) */
    if (rs != cols)
      for (int64_t r = 0; r < rows; r++)
        memcpy(o + r * cols, xp + r * rs, sizeof(float) * (size_t)cols);
    const float *a = rs != cols ? o : xp;
    int64_t n = rows * cols;
    if (k == MAP_BIASED_SOFTPLUS || k == MAP_SOFTPLUS) {
      if (a == o) {
        float *restrict y = o;
        CRL_VLOOP(n, {
          float v = bsp_f32(y[i], fb, fm);
          y[i] = v < fl ? fl : v;
        });
      } else {
        const float *restrict ap = a;
        float *restrict y = o;
        CRL_VLOOP(n, {
          float v = bsp_f32(ap[i], fb, fm);
          y[i] = v < fl ? fl : v;
        });
      }
    } else {
      for (int64_t i = 0; i < n; i++) {
        double df;
        double v = map_f(k, a[i], bias, mn, &df);
        o[i] = (float)(v < lb ? lb : v);
      }
    }
  } else {
    const double *xp = x->data;
    double *o = out->data;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < cols; j++) {
        double df;
        double v = map_f(k, xp[r * rs + j], bias, mn, &df);
        o[r * cols + j] = v < lb ? lb : v;
      }
  }
}

/* rows x cols view of x with unit inner stride and a uniform row stride,
 * if x has one */
static bool as_rows(const crl_tensor *x, int64_t *rows, int64_t *rs,
                    int64_t *cols) {
  int nd = x->ndim;
  *cols = nd ? x->shape[nd - 1] : 1;
  if (nd && x->stride[nd - 1] != 1 && *cols > 1) return false;
  *rows = 1;
  *rs = *cols;
  int64_t expect = -1;
  for (int d = nd - 2; d >= 0; d--) {
    *rows *= x->shape[d];
    if (x->shape[d] == 1) continue;
    if (expect < 0) {
      *rs = x->stride[d];
    } else if (x->stride[d] != expect) {
      return false;
    }
    expect = x->stride[d] * x->shape[d];
  }
  return true;
}

static int scale_backward(crl_node *n, crl_tensor *g, crl_tensor **gin) {
  if (!n->edges[0].needs_grad) return 0;
  crl_tensor *x = crl__to_contig_dtype(n->saved[0], n->saved[0]->dtype);
  crl_tensor *gc =
      g ? crl__to_contig_dtype(g, x ? x->dtype : CRL_FLOAT64) : NULL;
  crl_tensor *r = x && gc ? crl_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (!r) return crl_last_error_code() ? crl_last_error_code() : CRL_ENOMEM;
  int k = (int)n->i[0];
  double bias = n->f[0], mn = n->f[1], lb = n->f[2];
  for (int64_t i = 0; i < x->numel; i++) {
    double xv = x->dtype == CRL_FLOAT32 ? ((float *)x->data)[i]
                                        : ((double *)x->data)[i];
    double gv = gc->dtype == CRL_FLOAT32 ? ((float *)gc->data)[i]
                                         : ((double *)gc->data)[i];
    double df;
    double v = map_f(k, xv, bias, mn, &df);
    if (x->dtype == CRL_FLOAT32) v = (float)v;
    double d = v >= lb ? gv * df : 0; /* clamp_min passes where f >= lb */
    if (r->dtype == CRL_FLOAT32)
      ((float *)r->data)[i] = (float)d;
    else
      ((double *)r->data)[i] = d;
  }
  gin[0] = r;
  return 0;
}

/* y = max(f(x), lb), a new contiguous tensor, differentiable in x */
static crl_tensor *scale_map_apply(int k, double bias, double mn, double lb,
                                   crl_tensor *x) {
  if (x->dtype != CRL_FLOAT32 && x->dtype != CRL_FLOAT64)
    return CRL_ERR_NULL(CRL_EDTYPE,
                        "normal_param_extractor: the scale half has dtype "
                        "%s; float32 or float64 is required",
                        crl_dtype_name(x->dtype));
  int64_t rows, rs, cols;
  crl_tensor *src = x;
  if (!as_rows(x, &rows, &rs, &cols)) {
    src = crl__to_contig_dtype(x, x->dtype);
    if (!src) return NULL;
    as_rows(src, &rows, &rs, &cols);
  }
  crl_tensor *out = crl_empty(x->dtype, x->ndim, x->shape);
  if (!out) return NULL;
  if (out->numel) map_forward(k, bias, mn, lb, src, rows, rs, cols, out);
  if (src != x) crl__discard(src);
  if (crl__any_requires_grad(1, &x)) {
    crl_node *n = crl__record(out, "normal_param_scale", scale_backward, 1, &x);
    if (!n) {
      crl__discard(out);
      return NULL;
    }
    n->i[0] = k;
    n->f[0] = bias;
    n->f[1] = mn;
    n->f[2] = lb;
    crl__save(n, 0, x);
  }
  return out;
}

/* ---- NormalParamExtractor ------------------------------------------------ */

typedef struct {
  int map;
  double bias, mn, lb;
} npe_impl;

static void npe_free(crl_tdmodule *m) { free(m->impl); }

static int npe_forward(crl_tdmodule *m, crl_td *td, crl_td *params) {
  (void)params;
  npe_impl *p = m->impl;
  crl_tensor *x = crl__tdm_in(m, td, m->in_keys[0]);
  if (!x) return CRL_EKEY;
  if (x->ndim == 0 || x->shape[x->ndim - 1] % 2) {
    char b[160];
    return crl__err(CRL_ESHAPE,
                    "%s: '%s' has shape %s; its last dim must be even (loc "
                    "and scale halves)",
                    crl_tdmodule_name(m), m->in_keys[0], CRL_SHAPE_STR(x, b));
  }
  int64_t h = x->shape[x->ndim - 1] / 2;
  crl_tensor *loc = crl_narrow(x, -1, 0, h);
  crl_tensor *raw = loc ? crl_narrow(x, -1, h, h) : NULL;
  crl_tensor *scale =
      raw ? scale_map_apply(p->map, p->bias, p->mn, p->lb, raw) : NULL;
  if (!scale) return crl_last_error_code();
  int rc = crl__tdm_check_out(m, td, m->out_keys[0], loc);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[0], loc);
  if (!rc) rc = crl__tdm_set(td, m->out_keys[1], scale);
  return rc;
}

static const crl_tdmodule_ops npe_ops = {"NormalParamExtractor", npe_forward,
                                         npe_free};

/* inverse softplus as TorchRL: log(max(expm1(y), 1e-6)) */
static double inv_softplus(double y) {
  double e = expm1(y);
  return log(e < 1e-6 ? 1e-6 : e);
}

static int parse_mapping(const char *s, npe_impl *p) {
  p->bias = 0;
  p->mn = 0;
  if (!strcmp(s, "softplus")) return p->map = MAP_SOFTPLUS, 0;
  if (!strcmp(s, "exp")) return p->map = MAP_EXP, 0;
  if (!strcmp(s, "relu")) return p->map = MAP_RELU, 0;
  if (!strcmp(s, "none")) return p->map = MAP_NONE, 0;
  if (!strcmp(s, "expln")) return p->map = MAP_EXPLN, 0;
  const char *pre = "biased_softplus";
  size_t n = strlen(pre);
  if (strncmp(s, pre, n)) return -1;
  double b = 1.0, mn = 0.01; /* TorchRL's biased_softplus defaults */
  const char *r = s + n;
  if (*r) {
    char *end;
    if (*r != '_') return -1;
    b = strtod(r + 1, &end);
    if (end == r + 1) return -1;
    if (*end == '_') {
      const char *q = end + 1;
      mn = strtod(q, &end);
      if (end == q) return -1;
    }
    if (*end) return -1;
  }
  if (!(b > mn) || !isfinite(b) || !isfinite(mn)) return -1;
  p->map = MAP_BIASED_SOFTPLUS;
  p->bias = inv_softplus(b - mn);
  p->mn = mn;
  return 0;
}

crl_tdmodule *crl_normal_param_extractor_new(const char *in_key,
                                             const char *loc_key,
                                             const char *scale_key,
                                             const char *scale_mapping,
                                             double scale_lb) {
  const char *op = "normal_param_extractor_new";
  if (!in_key) return CRL_ERR_NULL(CRL_EINVAL, "%s: in_key is NULL", op);
  npe_impl *p = calloc(1, sizeof *p);
  if (!p) return CRL_ERR_NULL(CRL_ENOMEM, "%s: out of memory", op);
  const char *map = scale_mapping ? scale_mapping : "biased_softplus_1.0";
  if (parse_mapping(map, p)) {
    free(p);
    return CRL_ERR_NULL(CRL_EINVAL,
                        "%s: unknown scale mapping '%s' (biased_softplus, "
                        "biased_softplus_B, biased_softplus_B_MIN with B > "
                        "MIN, softplus, exp, relu, expln, none)",
                        op, map);
  }
  p->lb = scale_lb > 0 ? scale_lb : 1e-4;
  const char *out[2] = {loc_key ? loc_key : "loc",
                        scale_key ? scale_key : "scale"};
  return crl__tdm_new(op, &npe_ops, p, 1, &in_key, NULL, 2, out, NULL, 0, NULL);
}
