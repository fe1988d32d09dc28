/* The fold of a transition: lambda_min(H_L) on the metastable branch
 * against the distance to the fitted beta_c, on log-log axes, with the
 * power-law fit a d^gamma (a straight line there) and the gamma = 1/2
 * fit (its own beta_c, so a curve) dashed. Sweep points are dots,
 * bisection points open circles. */
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>

#include "fig/figures.h"
#include "plot.h"

typedef struct {
    const pf_fig_fold_data *f;
    const char *title;
} fold_ctx;

static void draw_fold(const void *p)
{
    const fold_ctx *c = p;
    const pf_fig_fold_data *f = c->f;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    long n = f->n;
    double *lx = malloc((size_t)(n > 0 ? n : 1) * sizeof *lx), *ly = malloc((size_t)(n > 0 ? n : 1) * sizeof *ly);
    if (!lx || !ly) {
        free(lx), free(ly);
        return;
    }
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (long i = 0; i < n; i++) {
        double d = f->direction * (f->beta_c - f->beta[i]);
        lx[i] = d > 0 ? log10(d) : NAN;
        ly[i] = f->lambda[i] > 0 ? log10(f->lambda[i]) : NAN;
        if (isfinite(lx[i]) && isfinite(ly[i])) {
            xlo = fmin(xlo, lx[i]), xhi = fmax(xhi, lx[i]);
            ylo = fmin(ylo, ly[i]), yhi = fmax(yhi, ly[i]);
        }
    }
    if (!(xhi >= xlo)) xlo = -6, xhi = -1;
    if (!(yhi >= ylo)) ylo = -6, yhi = 0;
    /* whole decades, so that a log axis always has labelled ticks */
    double px = fmax(0.1, 0.05 * (xhi - xlo)), py = fmax(0.1, 0.05 * (yhi - ylo));
    xlo = floor(xlo - px), xhi = ceil(xhi + px), ylo = floor(ylo - py), yhi = ceil(yhi + py);
    plvpor(0.14, 0.95, 0.12, c->title ? 0.86 : 0.94);
    plwind(xlo, xhi, ylo, yhi);
    plcol0(C_GRID);
    plwidth(1.0);
    plbox("gl", 0, 0, "gl", 0, 0);
    plcol0(C_INK);
    plwidth(1.5);
    plbox("bclnst", 0, 0, "bclnstv", 0, 0);
    plwidth(1.0);
    enum { M = 200 };
    double fx[M], fy[M], hx[M], hy[M];
    for (int i = 0; i < M; i++) {
        double u = xlo + (xhi - xlo) * i / (M - 1), d = pow(10.0, u);
        fx[i] = u;
        fy[i] = isfinite(f->amplitude) && f->amplitude > 0 ? log10(f->amplitude) + f->exponent * u : NAN;
        /* gamma = 1/2 with its own beta_c: lambda = a_h sqrt(d + beta_c_h - beta_c) */
        double dh = d + f->direction * (f->half_beta_c - f->beta_c);
        hx[i] = u;
        hy[i] = dh > 0 && f->half_amplitude > 0 ? log10(f->half_amplitude * sqrt(dh)) : NAN;
        if (!(fy[i] >= ylo && fy[i] <= yhi)) fy[i] = NAN;
        if (!(hy[i] >= ylo && hy[i] <= yhi)) hy[i] = NAN;
    }
    plot_style fit = {.color = C_VERMILLION, .line_style = 1, .line_width = 2.0};
    plot_series(fx, fy, NULL, M, &fit);
    plot_style half = {.color = C_GREEN, .line_style = 2, .line_width = 2.0};
    plot_series(hx, hy, NULL, M, &half);
    /* markers only, one point at a time (no line between them) */
    for (long i = 0; i < n; i++) {
        int b = f->from_bisection[i];
        plot_style s = {.color = b ? C_BLUE : C_INK, .line_style = 1, .line_width = 1.0,
                        .marker = b ? "○" : "•", .marker_scale = 0.6};
        plot_series(&lx[i], &ly[i], NULL, 1, &s);
    }
    plcol0(C_INK);
    plmtex("b", 3.0, 0.5, 0.5, f->direction > 0 ? "#gb#dc#u - #gb" : "#gb - #gb#dc#u");
    plmtex("l", 5.0, 0.5, 0.5, "#gl#dmin#u(H#dL#u)");
    char legend[256];
    snprintf(legend, sizeof legend, "fit: #gg = %.3f, #gb#dc#u = %.8g; dashed: #gg = 1/2, #gb#dc#u = %.7g",
             f->exponent, f->beta_c, f->half_beta_c);
    plmtex("t", -1.5, 0.03, 0.0, legend);
    plot_title(c->title, 2.2);   /* clear of the top decade's label */
    free(lx), free(ly);
}

int pf_fig_fold(const char *base, const pf_fig_fold_data *f, const char *title, pf_error *err)
{
    if (!base || !f || f->n < 0 || (f->n > 0 && (!f->beta || !f->lambda || !f->from_bisection)))
        return pf_fail(err, PF_EINPUT, "%s: a fold figure needs its points", base ? base : "(null)");
    fold_ctx c = {f, title};
    plot_text d = {0};
    plot_text_add(&d, "lambda_min(H_L) against the distance to beta_c = %.10g on log-log axes, %ld points "
                  "(dots: the sweep, circles: the bisection); fitted exponent %.4f; dashed: the fit with "
                  "exponent 1/2 (beta_c %.10g)", f->beta_c, f->n, f->exponent, f->half_beta_c);
    plot_figure fig = {1200, 900, draw_fold, &c, title, d.buf};
    int rc = d.buf ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    free(d.buf);
    return rc;
}
