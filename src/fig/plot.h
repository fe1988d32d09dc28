/* Plotting support shared by the figure files of the io layer (figures.c,
 * fig_paths.c): the colours, text sizes and a few drawing helpers, and
 * plot_render(), which writes one figure as PNG, PDF and SVG with PLplot's
 * cairo drivers. Internal to src/io; not part of the public API.
 *
 * PLplot is not thread-safe, and these functions keep state in statics
 * (the page's text factor, the error escape), so neither are they.
 */
#ifndef PATHFINDER_IO_PLOT_H
#define PATHFINDER_IO_PLOT_H

#include <stddef.h>

#include "pathfinder/core.h"

/* cmap0, set on every page: a white page, black ink and the Okabe-Ito
 * colour-blind-safe set, plus greys and fills. */
enum {
    C_PAGE, C_INK, C_BLUE, C_VERMILLION, C_GREEN, C_PURPLE, C_GREY, C_GRID, C_SKY,
    C_ORANGE, C_BOXFILL, C_WHITE, C_ABSENT, N_COLORS
};

/* Character heights, relative to PLplot's default on a 1200 x 1500 page. */
#define TEXT_SCALE 0.72
#define TITLE_SCALE 0.92
#define MARKER_SCALE 0.42

/* One figure: a draw function that knows nothing about files. */
typedef struct {
    int width, height;              /* pixels for PNG, points for PDF/SVG */
    void (*draw)(const void *ctx);  /* draws one page on the current stream */
    const void *ctx;
    /* Cairo draws SVG text as glyph outlines, which no reader's tool can
     * search: the SVG gets these as its <title> and <desc> (plain text,
     * escaped here; NULL: none). The description names the panels. */
    const char *svg_title, *svg_desc;
} plot_figure;

/* Write BASE.png, BASE.pdf and BASE.svg, each drawn into memory and written
 * atomically (pf_write_file_atomic) only when the drawing finished and the
 * file ends with its format's trailer. A fatal PLplot error becomes
 * PF_ERUNTIME with PLplot's message. */
int plot_render(const char *base, const plot_figure *fig, pf_error *err);

/* PLplot's default character height grows with the mean of the page's
 * sides; plot_char_scale(s) is the scale s corrected for that, so text has
 * one size on every figure. plot_text_size(s) sets it. Valid while drawing. */
double plot_char_scale(double scale);
void plot_text_size(double scale);

/* A text growing by printf, for figure descriptions (NULL after running
 * out of memory; free it with free). */
typedef struct {
    char *buf;
    size_t len, cap;
} plot_text;
void plot_text_add(plot_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "; transitions T1 at beta X, T2 at ..." for transitions at mid[0..nt). */
void plot_text_transitions(plot_text *t, const double *mid, long nt);

/* Copy src (NULL: "") into dst[n], doubling '#', which starts a PLplot
 * escape sequence, in text we did not write. */
void plot_plain_text(char *dst, size_t n, const char *src);

/* The title, if there is one, in ink above the current viewport, disp
 * character heights out; drawing it leaves the text size at TEXT_SCALE. */
void plot_title(const char *title, double disp);

/* A light grid, then the black frame, ticks and numbers (plbox options);
 * ylog: the y axis is log10. */
void plot_axes(const char *xopt, const char *yopt, int ylog);

/* How plot_series draws: a line, and optionally a glyph at the points. */
typedef struct {
    int color;            /* cmap0 index */
    int line_style;       /* pllsty: 1 solid, 2 dashed, ... */
    double line_width;
    const char *marker;   /* glyph at the points, or NULL */
    double marker_scale;  /* its character height (see plot_text_size) */
} plot_style;

/* A line through consecutive finite points (a NaN breaks it), then the
 * marker at each finite point where mark[i] is set (all of them if mark is
 * NULL). Without a marker, a point standing alone gets a dot so it shows. */
void plot_series(const double *x, const double *y, const unsigned char *mark, long n,
                 const plot_style *style);

#endif
