/* Parameter initialisers (torch.nn.init): in place, without autograd, from
 * an explicit generator. They accept leaves that require grad (the write is
 * done in a no-grad section, as torch's initialisers are).
 *
 * Formulas (torch.nn.init):
 *   fan_in  = size(1) * receptive field, fan_out = size(0) * receptive field,
 *             receptive field = product of sizes 2..
 *   xavier_uniform_: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
 *   xavier_normal_:  N(0, gain * sqrt(2 / (fan_in + fan_out)))
 *   kaiming_uniform_ (mode fan_in, leaky_relu): gain = sqrt(2 / (1 + a^2)),
 *                    U(-b, b), b = gain * sqrt(3 / fan_in)
 *   kaiming_normal_: N(0, gain / sqrt(fan_in))
 *   orthogonal_:     the Q of the QR decomposition of a normal matrix
 *                    [size(0), numel / size(0)] (sign-fixed so diag(R) > 0),
 *                    times gain. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

static int check_param(const char *op, const crl_tensor *t, int min_ndim) {
  if (!t) return crl__err(CRL_EINVAL, "%s: tensor is NULL", op);
  if (!crl_dtype_is_float(t->dtype))
    return crl__err(CRL_EDTYPE, "%s: a float tensor is required, got %s", op,
                    crl_dtype_name(t->dtype));
  if (t->ndim < min_ndim) {
    char b[96];
    return crl__err(CRL_ESHAPE,
                    "%s: a tensor with at least %d dims is required, got "
                    "shape %s",
                    op, min_ndim, CRL_SHAPE_STR(t, b));
  }
  return crl__check_cpu(op, t);
}

int crl__fan_in_out(const char *op, const crl_tensor *t, int64_t *fan_in,
                    int64_t *fan_out) {
  int rc = check_param(op, t, 2);
  if (rc) return rc;
  int64_t rf = 1;
  for (int d = 2; d < t->ndim; d++)
    rf *= t->shape[d];
  *fan_in = t->shape[1] * rf;
  *fan_out = t->shape[0] * rf;
  return 0;
}

/* uniform / normal fill without autograd (messages of crl_uniform_). */
static int fill(crl_tensor *t, crl_rng *g, bool normal, double a, double b) {
  crl_no_grad_begin();
  int rc = normal ? crl_normal_(t, g, a, b) : crl_uniform_(t, g, a, b);
  crl_no_grad_end();
  return rc;
}

int crl__param_uniform_(crl_tensor *t, double bound, crl_rng *g) {
  int rc = check_param("init_uniform_", t, 0);
  if (rc) return rc;
  return fill(t, g, false, -bound, bound);
}

int crl_init_constant_(crl_tensor *t, double value) {
  int rc = check_param("init_constant_", t, 0);
  if (rc) return rc;
  crl_no_grad_begin();
  rc = crl_fill_(t, value);
  crl_no_grad_end();
  return rc;
}

static int xavier(const char *op, crl_tensor *t, double gain, crl_rng *g,
                  bool normal) {
  int64_t fi, fo;
  int rc = crl__fan_in_out(op, t, &fi, &fo);
  if (rc) return rc;
  if (t->numel == 0) return 0;
  double std = gain * sqrt(2.0 / (double)(fi + fo));
  return normal ? fill(t, g, true, 0.0, std)
                : fill(t, g, false, -sqrt(3.0) * std, sqrt(3.0) * std);
}

int crl_init_xavier_uniform_(crl_tensor *t, double gain, crl_rng *g) {
  return xavier("init_xavier_uniform_", t, gain, g, false);
}

int crl_init_xavier_normal_(crl_tensor *t, double gain, crl_rng *g) {
  return xavier("init_xavier_normal_", t, gain, g, true);
}

static int kaiming(const char *op, crl_tensor *t, double a, crl_rng *g,
                   bool normal) {
  int64_t fi, fo;
  int rc = crl__fan_in_out(op, t, &fi, &fo);
  if (rc) return rc;
  if (t->numel == 0) return 0;
  if (fi == 0) return crl__err(CRL_ESHAPE, "%s: fan_in is 0", op);
  double gain = sqrt(2.0 / (1.0 + a * a));
  double std = gain / sqrt((double)fi);
  return normal ? fill(t, g, true, 0.0, std)
                : fill(t, g, false, -sqrt(3.0) * std, sqrt(3.0) * std);
}

int crl_init_kaiming_uniform_(crl_tensor *t, double a, crl_rng *g) {
  return kaiming("init_kaiming_uniform_", t, a < 0 ? sqrt(5.0) : a, g, false);
}

int crl_init_kaiming_normal_(crl_tensor *t, double a, crl_rng *g) {
  return kaiming("init_kaiming_normal_", t, a < 0 ? 0.0 : a, g, true);
}

/* Orthonormalise the n columns of the m×n column-major matrix q (m >= n) in
 * place by modified Gram–Schmidt, twice ("twice is enough"); the result is
 * the Q of the QR decomposition with a positive diagonal of R. */
static void gram_schmidt(double *q, int64_t m, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double *qj = q + j * m;
    for (int pass = 0; pass < 2; pass++)
      for (int64_t k = 0; k < j; k++) {
        const double *qk = q + k * m;
        double d = 0;
        for (int64_t i = 0; i < m; i++)
          d += qk[i] * qj[i];
        for (int64_t i = 0; i < m; i++)
          qj[i] -= d * qk[i];
      }
    double nrm = 0;
    for (int64_t i = 0; i < m; i++)
      nrm += qj[i] * qj[i];
    nrm = sqrt(nrm);
    double inv = nrm > 0 ? 1.0 / nrm : 0.0;
    for (int64_t i = 0; i < m; i++)
      qj[i] *= inv;
  }
}

int crl_init_orthogonal_(crl_tensor *t, double gain, crl_rng *g) {
  const char *op = "init_orthogonal_";
  int rc = check_param(op, t, 2);
  if (rc) return rc;
  if (!g) return crl__err(CRL_EINVAL, "%s: generator is NULL", op);
  if (t->numel == 0) return 0;
  int64_t rows = t->shape[0], cols = t->numel / rows;
  /* torch: flattened = normal(rows, cols); transposed when rows < cols so
   * the QR runs on a tall matrix. Here the tall matrix is stored column
   * major: its columns are the columns of `flattened` (rows >= cols) or
   * the rows of it (rows < cols). */
  bool tall = rows >= cols;
  int64_t m = tall ? rows : cols, n = tall ? cols : rows;
  double *q = malloc(sizeof(double) * (size_t)(m * n));
  if (!q) return crl__err(CRL_ENOMEM, "%s: out of memory", op);
  /* draw flattened[r][c] in row-major order, as torch's normal_ does */
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      double v = crl_rng_normal(g);
      if (tall)
        q[c * m + r] = v;
      else
        q[r * m + c] = v;
    }
  gram_schmidt(q, m, n);
  crl_scope_begin();
  crl_tensor *tmp = crl_empty(CRL_FLOAT64, t->ndim, t->shape);
  if (!tmp) {
    crl_scope_end();
    free(q);
    return crl_last_error_code();
  }
  double *o = tmp->data;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      o[r * cols + c] = gain * (tall ? q[c * m + r] : q[r * m + c]);
  free(q);
  crl__copy_into(t, tmp);
  t->version++;
  crl_scope_end();
  return 0;
}
