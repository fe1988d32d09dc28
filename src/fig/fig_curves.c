/* Generic stacked curves: one panel per series against a shared x axis,
 * for any columns of a table (see `pathfinder plot`). */
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/io.h"
#include "fig/figures.h"
#include "plot.h"

typedef struct {
    const char *title, *xlabel;
    const double *x;
    long n;
    const double *const *ys;
    const char *const *labels;
    int n_series;
} curves_ctx;

static const int series_color[] = {C_BLUE, C_VERMILLION, C_GREEN, C_PURPLE, C_SKY, C_ORANGE};

/* Finite range of v with 5% padding; a flat or empty series gets a unit span. */
static void range(const double *v, long n, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (long i = 0; i < n; i++)
        if (isfinite(v[i])) *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
    if (!(*hi >= *lo)) *lo = 0, *hi = 1;
    double pad = *hi > *lo ? 0.05 * (*hi - *lo) : 0.5 * fmax(fabs(*lo), 1e-12);
    *lo -= pad, *hi += pad;
}

static void draw_curves(const void *p)
{
    const curves_ctx *c = p;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    double xlo, xhi;
    range(c->x, c->n, &xlo, &xhi);
    const double left = 0.14, right = 0.96, bottom = 0.08, gap = 0.015;
    const double top = c->title ? 0.90 : 0.94;
    const double h = (top - bottom - (c->n_series - 1) * gap) / c->n_series;
    for (int s = 0; s < c->n_series; s++) {
        double y1 = top - s * (h + gap), y0 = y1 - h, ylo, yhi;
        range(c->ys[s], c->n, &ylo, &yhi);
        plvpor(left, right, y0, y1);
        plwind(xlo, xhi, ylo, yhi);
        int last = s == c->n_series - 1;
        plot_axes(last ? "bcnst" : "bcst", "bcnstv", 0);
        if (ylo < 0 && yhi > 0) { /* the zero line matters for eigenvalues */
            plcol0(C_GREY);
            pllsty(2);
            pljoin(xlo, 0.0, xhi, 0.0);
            pllsty(1);
        }
        plot_style style = {.color = series_color[s % 6], .line_style = 1, .line_width = 2.0,
                            .marker = "•", .marker_scale = 0.55};
        plot_series(c->x, c->ys[s], NULL, c->n, &style);
        char label[256];
        plot_plain_text(label, sizeof label, c->labels[s]);
        plcol0(C_INK);
        plmtex("l", 5.0, 0.5, 0.5, label);
        if (s == 0) plot_title(c->title, 1.2);
        if (last) {
            plot_plain_text(label, sizeof label, c->xlabel);
            plmtex("b", 3.0, 0.5, 0.5, label);
        }
    }
}

int pf_fig_curves(const char *base, const double *x, long n, const double *const *ys,
                  const char *const *labels, int n_series, const char *xlabel, const char *title,
                  pf_error *err)
{
    if (!base || n < 0 || (n > 0 && (!x || !ys)) || n_series < 1 || n_series > 8)
        return pf_fail(err, PF_EINPUT, "%s: curves need 1 to 8 series", base ? base : "(null)");
    curves_ctx c = {title, xlabel ? xlabel : "", x, n, ys, labels, n_series};
    plot_text d = {0};
    plot_text_add(&d, "Panels against %s:", c.xlabel);
    for (int k = 0; k < n_series; k++) plot_text_add(&d, "%s %s", k ? ";" : "", labels[k] ? labels[k] : "");
    plot_text_add(&d, "; %ld rows", n);
    plot_figure fig = {1200, 300 + 320 * n_series, draw_curves, &c, title, d.buf};
    int rc = d.buf ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    free(d.buf);
    return rc;
}
