/* Printing tensors the way torch does:
 *
 *   tensor([[1.0000, 2.5000],
 *           [3.0000, 4.0000]], shape=[2, 2], dtype=float32, device=cpu)
 *
 * Floats use one format for the whole tensor, chosen as torch's _Formatter
 * does: integral values print as "1." ; otherwise fixed 4 decimals, or
 * scientific "1.0000e-05" when the magnitudes span more than 1000x, exceed
 * 1e8 or go below 1e-4. All values are right-aligned to a common width.
 * Tensors with more than 1000 elements are summarised: each dim longer than
 * 6 shows its first and last 3 entries around "...". Rows wrap at 80
 * columns. Suffixes: shape, dtype, device, then requires_grad=True and
 * grad_fn=<name> when they apply. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define PRINT_THRESHOLD 1000
#define PRINT_EDGE 3
#define PRINT_LINEWIDTH 80
#define PRINT_PRECISION 4
#define PRINT_PREFIX "tensor("
#define PRINT_INDENT 7 /* strlen(PRINT_PREFIX) */

/* ---- growable string ------------------------------------------------------
 */

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap) return;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + extra + 1)
    nc *= 2;
  char *np = realloc(b->p, nc);
  if (!np) {
    b->oom = true;
    return;
  }
  b->p = np;
  b->cap = nc;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
  sb_grow(b, n);
  if (b->oom) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_spaces(sbuf *b, int n) {
  for (int i = 0; i < n; i++)
    sb_put(b, " ", 1);
}

/* ---- element formatting
 * ------------------------------------------------------ */

typedef struct {
  const crl_tensor *t;
  bool summarize;
  bool is_float;
  bool int_mode, sci_mode;
  int width;
} fmt_t;

/* Format one value (no padding) into out; returns its length. */
static int format_value(const fmt_t *f, int64_t off, char *out, size_t cap) {
  crl_dtype dt = f->t->dtype;
  if (dt == CRL_INT64) /* exactly, not through a double */
    return snprintf(out, cap, "%lld",
                    (long long)((const int64_t *)f->t->data)[off]);
  double v = crl__load(dt, f->t->data, off);
  if (dt == CRL_BOOL)
    return snprintf(out, cap, "%s", v != 0 ? "True" : "False");
  if (!f->is_float) return snprintf(out, cap, "%lld", (long long)v);
  if (isnan(v)) return snprintf(out, cap, "nan");
  if (isinf(v)) return snprintf(out, cap, v > 0 ? "inf" : "-inf");
  if (f->sci_mode) return snprintf(out, cap, "%.*e", PRINT_PRECISION, v);
  if (f->int_mode) return snprintf(out, cap, "%.0f.", v);
  return snprintf(out, cap, "%.*f", PRINT_PRECISION, v);
}

/* Visit the printed elements (all, or the summarised edges) in order. */
typedef void (*visit_fn)(void *ctx, const crl_tensor *t, int64_t off);

static void visit(const crl_tensor *t, bool summarize, int dim, int64_t off,
                  visit_fn fn, void *ctx) {
  if (dim == t->ndim) {
    fn(ctx, t, off);
    return;
  }
  int64_t n = t->shape[dim];
  bool cut = summarize && n > 2 * PRINT_EDGE;
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == PRINT_EDGE) i = n - PRINT_EDGE;
    visit(t, summarize, dim + 1, off + i * t->stride[dim], fn, ctx);
  }
}

typedef struct {
  double min_abs, max_abs;
  bool any, all_int;
} stats_t;

static void stats_visit(void *ctx, const crl_tensor *t, int64_t off) {
  stats_t *s = ctx;
  double v = crl__load(t->dtype, t->data, off);
  if (!isfinite(v) || v == 0) return;
  double a = fabs(v);
  if (!s->any || a < s->min_abs) s->min_abs = a;
  if (!s->any || a > s->max_abs) s->max_abs = a;
  s->any = true;
  if (v != ceil(v)) s->all_int = false;
}

typedef struct {
  fmt_t *f;
} width_ctx;

static void width_visit(void *ctx, const crl_tensor *t, int64_t off) {
  (void)t;
  fmt_t *f = ((width_ctx *)ctx)->f;
  char b[64];
  int n = format_value(f, off, b, sizeof b);
  if (n > f->width) f->width = n;
}

static void choose_format(fmt_t *f) {
  f->int_mode = true;
  f->sci_mode = false;
  f->width = 1;
  if (f->is_float) {
    stats_t s = {0, 0, false, true};
    visit(f->t, f->summarize, 0, 0, stats_visit, &s);
    if (s.any) {
      double ratio = s.max_abs / s.min_abs;
      if (s.all_int) {
        f->sci_mode = ratio > 1000.0 || s.max_abs > 1.0e8;
      } else {
        f->int_mode = false;
        f->sci_mode = ratio > 1000.0 || s.max_abs > 1.0e8 || s.min_abs < 1.0e-4;
      }
    }
  }
  width_ctx w = {f};
  visit(f->t, f->summarize, 0, 0, width_visit, &w);
}

static void put_value(sbuf *b, const fmt_t *f, int64_t off) {
  char tmp[64];
  int n = format_value(f, off, tmp, sizeof tmp);
  sb_spaces(b, f->width - n);
  sb_put(b, tmp, (size_t)n);
}

/* ---- nested layout
 * -------------------------------------------------------------- */

static void put_vector(sbuf *b, const fmt_t *f, int64_t off, int indent) {
  const crl_tensor *t = f->t;
  int d = t->ndim - 1;
  int64_t n = t->shape[d];
  bool cut = f->summarize && n > 2 * PRINT_EDGE;
  int per_line = (PRINT_LINEWIDTH - indent) / (f->width + 2);
  if (per_line < 1) per_line = 1;
  sb_puts(b, "[");
  int on_line = 0;
  bool first = true;
  for (int64_t i = 0; i < n; i++) {
    bool dots = cut && i == PRINT_EDGE;
    if (!first) {
      if (on_line == per_line) {
        sb_puts(b, ",\n");
        sb_spaces(b, indent + 1);
        on_line = 0;
      } else {
        sb_puts(b, ", ");
      }
    }
    first = false;
    if (dots) {
      /* torch's " ..." element */
      sb_puts(b, " ...");
      i = n - PRINT_EDGE - 1;
    } else {
      put_value(b, f, off + i * t->stride[d]);
    }
    on_line++;
  }
  sb_puts(b, "]");
}

static void put_nested(sbuf *b, const fmt_t *f, int dim, int64_t off,
                       int indent) {
  const crl_tensor *t = f->t;
  if (dim == t->ndim - 1) {
    put_vector(b, f, off, indent);
    return;
  }
  int64_t n = t->shape[dim];
  bool cut = f->summarize && n > 2 * PRINT_EDGE;
  int rest = t->ndim - dim; /* dims of this slice */
  sb_puts(b, "[");
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) {
      sb_puts(b, ",");
      for (int k = 0; k < rest - 1; k++)
        sb_puts(b, "\n");
      sb_spaces(b, indent + 1);
    }
    if (cut && i == PRINT_EDGE) {
      sb_puts(b, "...");
      i = n - PRINT_EDGE - 1;
      continue;
    }
    put_nested(b, f, dim + 1, off + i * t->stride[dim], indent + 1);
  }
  sb_puts(b, "]");
}

/* ---- whole tensor
 * ---------------------------------------------------------------- */

static void add_suffix(sbuf *b, size_t *line_start, const char *s) {
  size_t line_len = b->len - *line_start;
  size_t l = strlen(s);
  if (line_len + l + 2 > PRINT_LINEWIDTH) {
    sb_puts(b, ",\n");
    *line_start = b->len;
    sb_spaces(b, PRINT_INDENT);
  } else {
    sb_puts(b, ", ");
  }
  sb_puts(b, s);
}

static void render(const crl_tensor *t, sbuf *b) {
  sb_puts(b, PRINT_PREFIX);
  fmt_t f = {.t = t,
             .summarize = t->numel > PRINT_THRESHOLD,
             .is_float = crl_dtype_is_float(t->dtype)};
  if (t->device.type != CRL_CPU) {
    sb_puts(b, "...");
  } else if (t->numel == 0) {
    sb_puts(b, "[]");
  } else {
    choose_format(&f);
    if (t->ndim == 0)
      put_value(b, &f, 0);
    else
      put_nested(b, &f, 0, 0, PRINT_INDENT);
  }
  /* suffixes, wrapped like torch's */
  size_t line_start = 0;
  for (size_t i = b->len; i > 0 && b->p; i--)
    if (b->p[i - 1] == '\n') {
      line_start = i;
      break;
    }
  char tmp[256], sh[200];
  snprintf(tmp, sizeof tmp, "shape=%s", CRL_SHAPE_STR(t, sh));
  add_suffix(b, &line_start, tmp);
  snprintf(tmp, sizeof tmp, "dtype=%s", crl_dtype_name(t->dtype));
  add_suffix(b, &line_start, tmp);
  snprintf(tmp, sizeof tmp, "device=%s", crl_device_name(t->device));
  add_suffix(b, &line_start, tmp);
  if (t->grad_fn) {
    snprintf(tmp, sizeof tmp, "grad_fn=<%s>",
             t->grad_fn->name ? t->grad_fn->name : "?");
    add_suffix(b, &line_start, tmp);
  } else if (t->requires_grad) {
    add_suffix(b, &line_start, "requires_grad=True");
  }
  sb_puts(b, ")");
}

int crl_tensor_to_string(const crl_tensor *t, char *buf, size_t size) {
  if (!t) return crl__err(CRL_EINVAL, "tensor_to_string: tensor is NULL");
  if (!buf && size)
    return crl__err(CRL_EINVAL, "tensor_to_string: buffer is NULL");
  sbuf b = {0};
  render(t, &b);
  if (b.oom) {
    free(b.p);
    return crl__err(CRL_ENOMEM, "tensor_to_string: out of memory");
  }
  if (size) {
    size_t n = b.len < size - 1 ? b.len : size - 1;
    if (n) memcpy(buf, b.p, n);
    buf[n] = 0;
  }
  int len = b.len > INT32_MAX ? INT32_MAX : (int)b.len;
  free(b.p);
  return len;
}

int crl_tensor_print(const crl_tensor *t, FILE *f) {
  if (!t) return crl__err(CRL_EINVAL, "tensor_print: tensor is NULL");
  if (!f) return crl__err(CRL_EINVAL, "tensor_print: stream is NULL");
  sbuf b = {0};
  render(t, &b);
  if (b.oom) {
    free(b.p);
    return crl__err(CRL_ENOMEM, "tensor_print: out of memory");
  }
  int rc = 0;
  if (fwrite(b.p, 1, b.len, f) != b.len || fputc('\n', f) == EOF)
    rc = crl__err(CRL_EIO, "tensor_print: write failed");
  free(b.p);
  return rc;
}
