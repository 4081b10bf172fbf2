/* A small software rasterizer for env frames: see raster.h. */
#include "raster.h"

#include <math.h>

#define MAX_VERTS 64

static inline void put_span(crl__frame *f, int y, int x0, int x1, crl__rgb c) {
  /* pixels x0..x1 inclusive of row y, already clipped */
  uint8_t *p = f->px + ((size_t)y * (size_t)f->w + (size_t)x0) * 3;
  for (int x = x0; x <= x1; x++, p += 3) {
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
}

/* Fill the pixels whose centre x + 0.5 lies in [xa, xb) on row y. */
static void fill_span(crl__frame *f, int y, double xa, double xb, crl__rgb c) {
  double lo = ceil(xa - 0.5), hi = ceil(xb - 0.5) - 1.0;
  if (lo < 0) lo = 0;
  if (hi > f->w - 1) hi = f->w - 1;
  if (!(lo <= hi)) return;
  put_span(f, y, (int)lo, (int)hi, c);
}

/* rows whose centre y + 0.5 lies in [ya, yb], clipped: false if none */
static bool row_range(const crl__frame *f, double ya, double yb, int *r0,
                      int *r1) {
  double lo = ceil(ya - 0.5), hi = floor(yb - 0.5);
  if (lo < 0) lo = 0;
  if (hi > f->h - 1) hi = f->h - 1;
  if (!(lo <= hi)) return false;
  *r0 = (int)lo;
  *r1 = (int)hi;
  return true;
}

void crl__raster_clear(crl__frame *f, crl__rgb c) {
  if (c.r == c.g && c.g == c.b) {
    memset(f->px, c.r, (size_t)f->h * (size_t)f->w * 3);
    return;
  }
  for (int y = 0; y < f->h; y++)
    put_span(f, y, 0, f->w - 1, c);
}

void crl__raster_polygon(crl__frame *f, const double *xy, int n, crl__rgb c) {
  if (n < 3 || n > MAX_VERTS) return;
  double ymin = INFINITY, ymax = -INFINITY;
  for (int i = 0; i < n; i++) {
    if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1])) return;
    ymin = fmin(ymin, xy[2 * i + 1]);
    ymax = fmax(ymax, xy[2 * i + 1]);
  }
  int r0, r1;
  if (!row_range(f, ymin, ymax, &r0, &r1)) return;
  double xs[MAX_VERTS];
  for (int y = r0; y <= r1; y++) {
    double yc = y + 0.5;
    int k = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
      double xi = xy[2 * i], yi = xy[2 * i + 1];
      double xj = xy[2 * j], yj = xy[2 * j + 1];
      if ((yi <= yc) != (yj <= yc)) {
        double x = xi + (yc - yi) * (xj - xi) / (yj - yi);
        int m = k++;
        while (m > 0 && xs[m - 1] > x) { /* insertion sort */
          xs[m] = xs[m - 1];
          m--;
        }
        xs[m] = x;
      }
    }
    for (int i = 0; i + 1 < k; i += 2)
      fill_span(f, y, xs[i], xs[i + 1], c);
  }
}

void crl__raster_rect(crl__frame *f, double x0, double y0, double x1, double y1,
                      crl__rgb c) {
  double xy[8] = {x0, y0, x1, y0, x1, y1, x0, y1};
  crl__raster_polygon(f, xy, 4, c);
}

void crl__raster_ellipse(crl__frame *f, double cx, double cy, double rx,
                         double ry, crl__rgb c) {
  if (!isfinite(cx) || !isfinite(cy) || !isfinite(rx) || !isfinite(ry)) return;
  rx = fabs(rx);
  ry = fabs(ry);
  int r0, r1;
  if (ry > 0 && rx > 0 && row_range(f, cy - ry, cy + ry, &r0, &r1)) {
    for (int y = r0; y <= r1; y++) {
      double t = (y + 0.5 - cy) / ry;
      double dx = rx * sqrt(fmax(0.0, 1.0 - t * t));
      double lo = ceil(cx - dx - 0.5), hi = floor(cx + dx - 0.5);
      if (lo < 0) lo = 0;
      if (hi > f->w - 1) hi = f->w - 1;
      if (lo <= hi) put_span(f, y, (int)lo, (int)hi, c);
    }
  }
  double px = floor(cx), py = floor(cy); /* the centre pixel, always */
  if (px >= 0 && px < f->w && py >= 0 && py < f->h)
    put_span(f, (int)py, (int)px, (int)px, c);
}

void crl__raster_circle(crl__frame *f, double cx, double cy, double r,
                        crl__rgb c) {
  crl__raster_ellipse(f, cx, cy, r, r, c);
}

/* quad P0 +- W, P1 +- W with W widened so the bar is >= 1 px across */
static void bar_px(crl__frame *f, double x0, double y0, double x1, double y1,
                   double wx, double wy, crl__rgb c) {
  double dx = x1 - x0, dy = y1 - y0;
  double len = sqrt(dx * dx + dy * dy);
  if (!(len > 1e-9)) { /* a point: a small square */
    double h = fmax(0.5, sqrt(wx * wx + wy * wy));
    crl__raster_rect(f, x0 - h, y0 - h, x0 + h, y0 + h, c);
    return;
  }
  double across = 2.0 * fabs(dx * wy - dy * wx) / len;
  if (!(across >= 1.0)) {
    if (across > 1e-12) {
      wx /= across;
      wy /= across;
    } else { /* W along the segment: use the normal */
      wx = -dy / len * 0.5;
      wy = dx / len * 0.5;
    }
  }
  double xy[8] = {x0 + wx, y0 + wy, x1 + wx, y1 + wy,
                  x1 - wx, y1 - wy, x0 - wx, y0 - wy};
  crl__raster_polygon(f, xy, 4, c);
}

void crl__raster_line(crl__frame *f, double x0, double y0, double x1, double y1,
                      double width, crl__rgb c) {
  double dx = x1 - x0, dy = y1 - y0;
  double len = sqrt(dx * dx + dy * dy);
  double h = 0.5 * width;
  if (!(len > 1e-9)) {
    bar_px(f, x0, y0, x1, y1, h, 0, c);
    return;
  }
  bar_px(f, x0, y0, x1, y1, -dy / len * h, dx / len * h, c);
}

/* ---- views --------------------------------------------------------------- */

crl__view crl__view_make(crl__frame *f, double gw, double gh) {
  crl__view v = {f, f->w / gw, f->h / gh, gh};
  return v;
}

static inline void to_px(const crl__view *v, double x, double y, double *px,
                         double *py) {
  *px = x * v->sx;
  *py = (v->gh - y) * v->sy;
}

void crl__view_polygon(const crl__view *v, const double *xy, int n,
                       crl__rgb c) {
  if (n > MAX_VERTS) return;
  double p[2 * MAX_VERTS];
  for (int i = 0; i < n; i++)
    to_px(v, xy[2 * i], xy[2 * i + 1], &p[2 * i], &p[2 * i + 1]);
  crl__raster_polygon(v->f, p, n, c);
}

void crl__view_bar(const crl__view *v, double x0, double y0, double x1,
                   double y1, double width, crl__rgb c) {
  double dx = x1 - x0, dy = y1 - y0;
  double len = sqrt(dx * dx + dy * dy);
  double h = 0.5 * width;
  double nx = len > 0 ? -dy / len * h : h, ny = len > 0 ? dx / len * h : 0;
  double p0x, p0y, p1x, p1y;
  to_px(v, x0, y0, &p0x, &p0y);
  to_px(v, x1, y1, &p1x, &p1y);
  if (!isfinite(p0x + p0y + p1x + p1y + nx + ny)) return;
  /* the half-width is a vector: scale it, flipping y */
  bar_px(v->f, p0x, p0y, p1x, p1y, nx * v->sx, -ny * v->sy, c);
}

void crl__view_circle(const crl__view *v, double cx, double cy, double r,
                      crl__rgb c) {
  double px, py;
  to_px(v, cx, cy, &px, &py);
  crl__raster_ellipse(v->f, px, py, r * v->sx, r * v->sy, c);
}

void crl__view_polyline(const crl__view *v, const double *xy, int n,
                        double width, crl__rgb c) {
  for (int i = 0; i + 1 < n; i++)
    crl__view_bar(v, xy[2 * i], xy[2 * i + 1], xy[2 * i + 2], xy[2 * i + 3],
                  width, c);
}
