/* A small software rasterizer for env frames (RGB uint8, H x W x 3,
 * row-major, row 0 at the top). Not installed.
 *
 * Shapes are filled by sampling pixel centres (x + 0.5, y + 0.5) in pixel
 * coordinates (x to the right, y down), clipped to the frame; no
 * anti-aliasing. Bars (thick lines) and discs never vanish: they cover at
 * least one pixel width, so small frames (64 x 64) still show thin parts.
 *
 * A crl__view maps a drawing in another geometry (Gym's pygame screens:
 * width gw, height gh, y pointing up, as after pygame.transform.flip) onto a
 * frame of any size, scaling x and y independently (Gym's frame resized). */
#ifndef CRL_ENVS_RASTER_H
#define CRL_ENVS_RASTER_H

#include <stdint.h>

#include "../core/internal.h"

typedef struct crl__frame {
  uint8_t *px; /* h * w * 3 bytes */
  int h, w;
} crl__frame;

typedef struct crl__rgb {
  uint8_t r, g, b;
} crl__rgb;

/* ---- pixel coordinates --------------------------------------------------- */

CRL_INTERNAL void crl__raster_clear(crl__frame *f, crl__rgb c);
/* Filled polygon (n <= 64 vertices, xy = x0, y0, x1, y1, ...), even-odd. */
CRL_INTERNAL void crl__raster_polygon(crl__frame *f, const double *xy, int n,
                                      crl__rgb c);
/* Filled axis-aligned rectangle [x0, x1) x [y0, y1) (any corner order). */
CRL_INTERNAL void crl__raster_rect(crl__frame *f, double x0, double y0,
                                   double x1, double y1, crl__rgb c);
/* Filled ellipse (circle when rx == ry); covers at least the pixel holding
 * the centre. */
CRL_INTERNAL void crl__raster_ellipse(crl__frame *f, double cx, double cy,
                                      double rx, double ry, crl__rgb c);
CRL_INTERNAL void crl__raster_circle(crl__frame *f, double cx, double cy,
                                     double r, crl__rgb c);
/* Thick line from (x0, y0) to (x1, y1) with butt ends, at least 1 px
 * wide. */
CRL_INTERNAL void crl__raster_line(crl__frame *f, double x0, double y0,
                                   double x1, double y1, double width,
                                   crl__rgb c);

/* ---- drawing in another geometry ----------------------------------------- */

typedef struct crl__view {
  crl__frame *f;
  double sx, sy; /* frame pixels per unit */
  double gh;     /* the geometry's height (y flips) */
} crl__view;

/* A view of frame f for a drawing of size gw x gh with y up. */
CRL_INTERNAL crl__view crl__view_make(crl__frame *f, double gw, double gh);
/* Filled polygon given in view coordinates. */
CRL_INTERNAL void crl__view_polygon(const crl__view *v, const double *xy, int n,
                                    crl__rgb c);
/* A bar: the rectangle around the segment (x0, y0)-(x1, y1) of the given
 * width (view units), at least 1 px wide on the frame. */
CRL_INTERNAL void crl__view_bar(const crl__view *v, double x0, double y0,
                                double x1, double y1, double width, crl__rgb c);
/* Disc of radius r (view units; an ellipse when the scales differ). */
CRL_INTERNAL void crl__view_circle(const crl__view *v, double cx, double cy,
                                   double r, crl__rgb c);
/* Polyline of n points, each segment a bar of the given width. */
CRL_INTERNAL void crl__view_polyline(const crl__view *v, const double *xy,
                                     int n, double width, crl__rgb c);

#endif
