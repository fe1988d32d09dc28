/* Figures of Pathfinder paths: the error profile along a path against the
 * straight line between its ends, and the path against beta.
 *
 * Drawn in the conventions of figures.c, with the colours, text sizes and
 * rendering of plot.c: a white page, the Okabe-Ito colours, BASE.png,
 * BASE.pdf and BASE.svg, each renamed into place only when it is complete,
 * and a fatal PLplot error as PF_ERUNTIME. PLplot is not thread-safe, so
 * neither are these functions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <plplot.h>

#include "pathfinder/io.h"
#include "fig/figures.h"
#include "plot.h"

/* The legend's text, beside TEXT_SCALE and MARKER_SCALE (plot.h). */
#define LEGEND_SCALE 0.66

/* ---- helpers ------------------------------------------------------------------ */

/* Legend entries in the band above the top panel, each at its own place
 * (page coordinates 0..1): a line sample, its marker, its text. */
typedef struct {
    int color, style;
    const char *marker;
    const char *text;
    double x, y;
} legend_entry;

static void draw_legend(const legend_entry *e, int n)
{
    plvpor(0, 1, 0, 1);
    plwind(0, 1, 0, 1);
    plot_text_size(LEGEND_SCALE);
    for (int i = 0; i < n; i++) {
        PLFLT lx[2] = {e[i].x, e[i].x + 0.05}, ly[2] = {e[i].y, e[i].y};
        plcol0(e[i].color);
        pllsty(e[i].style);
        plwidth(2.5);
        plline(2, lx, ly);
        pllsty(1);
        plwidth(1.0);
        if (e[i].marker) {
            PLFLT mx = 0.5 * (lx[0] + lx[1]), my = e[i].y;
            plot_text_size(MARKER_SCALE);
            plstring(1, &mx, &my, e[i].marker);
            plot_text_size(LEGEND_SCALE);
        }
        plcol0(C_INK);
        plptex(lx[1] + 0.012, e[i].y, 1, 0, 0, e[i].text);
    }
    plot_text_size(TEXT_SCALE);
}

static void error_range(const double *a, long na, const double *b, long nb, double *lo, double *hi)
{
    double top = 0;
    for (long i = 0; i < na; i++)
        if (isfinite(a[i])) top = fmax(top, a[i]);
    for (long i = 0; i < nb; i++)
        if (isfinite(b[i])) top = fmax(top, b[i]);
    *lo = 0;
    *hi = top > 0 ? top * 1.08 : 1;
}

/* ---- the error profile -------------------------------------------------------- */

typedef struct {
    const pf_profile *path, *line;
    const char *title, *ylabel;
    double barrier[2][2];   /* [path, line][test, train] */
} profile_ctx;

static void draw_profile(const void *vp)
{
    const profile_ctx *c = vp;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    const pf_profile *pr[2] = {c->path, c->line};
    double *x[2];
    for (int k = 0; k < 2; k++) {
        long n = pr[k]->n;
        x[k] = malloc((size_t)(n > 0 ? n : 1) * sizeof *x[k]);
        if (!x[k]) {
            if (k) free(x[0]);
            return;
        }
        /* normalized: 0 at the start, 1 at the end */
        double total = n > 0 ? pr[k]->s[n - 1] - pr[k]->s[0] : 0;
        for (long i = 0; i < n; i++) x[k][i] = total > 0 ? (pr[k]->s[i] - pr[k]->s[0]) / total : 0;
    }
    const double left = 0.11, right = 0.96, bottom = 0.08, gap = 0.03, top = 0.855;
    const double h = (top - bottom - gap) / 2;
    static const char *const which[2] = {"test", "train"};
    for (int panel = 0; panel < 2; panel++) {
        const double *yp = panel ? c->path->train_error : c->path->test_error;
        const double *yl = panel ? c->line->train_error : c->line->test_error;
        double lo, hi;
        error_range(yp, c->path->n, yl, c->line->n, &lo, &hi);
        double y1 = top - panel * (h + gap), y0 = y1 - h;
        plvpor(left, right, y0, y1);
        plwind(-0.01, 1.01, lo, hi);
        plot_axes(panel ? "bcnst" : "bcst", "bcnstv", 0);
        static const plot_style line_series = {.color = C_VERMILLION, .line_style = 2,
                                               .line_width = 2.0};
        static const plot_style path_series = {.color = C_BLUE, .line_style = 1, .line_width = 2.5,
                                               .marker = "•", .marker_scale = MARKER_SCALE};
        plot_series(x[1], yl, NULL, c->line->n, &line_series);
        plot_series(x[0], yp, c->path->node, c->path->n, &path_series);
        char label[128];
        snprintf(label, sizeof label, "%s %s", which[panel], c->ylabel);
        plcol0(C_INK);
        plmtex("l", 3.6, 0.5, 0.5, label);
        if (panel) plmtex("b", 3.0, 0.5, 0.5, "distance travelled, normalized (start 0, end 1)");
    }
    char path_label[160], line_label[160];
    long nodes = 0;
    for (long i = 0; i < c->path->n; i++) nodes += c->path->node[i];
    snprintf(path_label, sizeof path_label,
             "Pathfinder path: barrier %.2f test, %.2f train  (%ld points + end, %ld samples)",
             c->barrier[0][0], c->barrier[0][1], nodes - 1, c->path->n);
    snprintf(line_label, sizeof line_label,
             "straight line: barrier %.2f test, %.2f train  (%ld evenly spaced samples)",
             c->barrier[1][0], c->barrier[1][1], c->line->n);
    legend_entry e[2] = {{C_BLUE, 1, "•", path_label, left + 0.01, 0.912},
                         {C_VERMILLION, 2, NULL, line_label, left + 0.01, 0.882}};
    draw_legend(e, 2);
    plvpor(left, right, 0.94, 0.941);
    plwind(0, 1, 0, 1);
    plot_title(c->title, 0.6);
    for (int k = 0; k < 2; k++) free(x[k]);
}

int pf_fig_path_profile(const char *base, const pf_profile *path, const pf_profile *line,
                        const char *title, const char *ylabel, pf_error *err)
{
    if (!base || !*base) return pf_fail(err, PF_EINPUT, "figure: no output path");
    if (!path || !line || path->n < 1 || line->n < 1)
        return pf_fail(err, PF_EINPUT, "%s: a path profile needs samples on the path and the line",
                       base);
    profile_ctx c = {path, line, title, ylabel ? ylabel : "error (%)", {{0}}};
    c.barrier[0][0] = pf_error_barrier(path->test_error, path->n);
    c.barrier[0][1] = pf_error_barrier(path->train_error, path->n);
    c.barrier[1][0] = pf_error_barrier(line->test_error, line->n);
    c.barrier[1][1] = pf_error_barrier(line->train_error, line->n);
    char desc[512];
    snprintf(desc, sizeof desc, "Error profile, panels against the normalized distance travelled: test %s; "
             "train %s; the path (%ld samples, barrier test %.4g, train %.4g) and the straight line "
             "(%ld samples, barrier test %.4g, train %.4g)", c.ylabel, c.ylabel, path->n, c.barrier[0][0],
             c.barrier[0][1], line->n, c.barrier[1][0], c.barrier[1][1]);
    plot_figure fig = {1200, 1000, draw_profile, &c, title, desc};
    return plot_render(base, &fig, err);
}

/* ---- the path against beta ------------------------------------------------------ */

typedef struct {
    const pf_path_point *pts;
    long n;
    const pf_transition *t;
    long nt;
    const char *start_name, *anchor_name, *title;
} beta_ctx;

static void draw_transitions(const pf_transition *t, long nt, double ylo, double yhi, int label)
{
    static const PLINT mark = 9000, space = 6000;
    for (long k = 0; k < nt; k++) {
        if (!(t[k].beta_below > 0 && t[k].beta_above > 0)) continue;
        double x = 0.5 * (log10(t[k].beta_below) + log10(t[k].beta_above));
        plcol0(C_GREY);
        plwidth(1.5);
        plstyl(1, &mark, &space);
        pljoin(x, ylo, x, yhi);
        pllsty(1);
        plwidth(1.0);
        if (label) {
            char buf[32];
            snprintf(buf, sizeof buf, "T%ld", k + 1);
            plcol0(C_INK);
            plptex(x, yhi - 0.06 * (yhi - ylo), 1, 0, -0.15, buf);
        }
    }
}

static void draw_beta(const void *vp)
{
    const beta_ctx *c = vp;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    long n = c->n;
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    double *y = malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return;
    }
    double xlo = INFINITY, xhi = -INFINITY;
    for (long i = 0; i < n; i++) {
        double b = c->pts[i].res.point.beta;
        x[i] = b > 0 ? log10(b) : NAN;
        if (isfinite(x[i])) xlo = fmin(xlo, x[i]), xhi = fmax(xhi, x[i]);
    }
    if (!(xhi >= xlo)) xlo = -8, xhi = 0;
    if (xhi - xlo < 0.5) xlo -= 0.25, xhi += 0.25;
    double pad = 0.02 * (xhi - xlo);
    xlo -= pad, xhi += pad;
    const double left = 0.11, right = 0.96, bottom = 0.08, gap = 0.03, top = 0.87;
    const double h = (top - bottom - gap) / 2;
    char sa[96], sb[96], la[128], lb[128];
    plot_plain_text(sa, sizeof sa, c->start_name);
    plot_plain_text(sb, sizeof sb, c->anchor_name);
    for (int panel = 0; panel < 2; panel++) {
        double y1 = top - panel * (h + gap), y0 = y1 - h, lo, hi;
        double *ya = y, *yb = y + n;
        if (panel == 0) {
            for (long i = 0; i < n; i++) {
                pf_path_sample s;
                pf_path_sample_from_metrics(&c->pts[i].res.m, &s);
                ya[i] = s.test_error;
                yb[i] = s.train_error;
            }
            error_range(ya, n, yb, n, &lo, &hi);
        } else {
            for (long i = 0; i < n; i++) {
                ya[i] = c->pts[i].dist_start;
                yb[i] = c->pts[i].res.m.r;
            }
            error_range(ya, n, yb, n, &lo, &hi);
        }
        plvpor(left, right, y0, y1);
        plwind(xlo, xhi, lo, hi);
        plot_axes(panel ? "bcnstl" : "bcstl", "bcnstv", 0);
        draw_transitions(c->t, c->nt, lo, hi, panel == 0);
        plot_style style_a = {.color = panel ? C_GREEN : C_BLUE, .line_style = 1,
                              .line_width = 2.0, .marker = "•", .marker_scale = MARKER_SCALE};
        plot_style style_b = {.color = panel ? C_PURPLE : C_SKY, .line_style = panel ? 1 : 2,
                              .line_width = 2.0, .marker = "•", .marker_scale = MARKER_SCALE};
        plot_series(x, ya, NULL, n, &style_a);
        plot_series(x, yb, NULL, n, &style_b);
        plcol0(C_INK);
        if (panel == 0) {
            plmtex("l", 3.6, 0.5, 0.5, "error (%)");
        } else {
            plmtex("l", 3.6, 0.5, 0.5, "distance");
            plmtex("b", 3.0, 0.5, 0.5, "β (shifted L2 strength toward the anchor)");
        }
    }
    snprintf(la, sizeof la, "‖θ − %s‖", sa);
    snprintf(lb, sizeof lb, "‖θ − %s‖", sb);
    legend_entry e[4] = {{C_BLUE, 1, "•", "test error", left + 0.01, 0.9},
                         {C_SKY, 2, "•", "train error", left + 0.21, 0.9},
                         {C_GREEN, 1, "•", la, left + 0.41, 0.9},
                         {C_PURPLE, 1, "•", lb, left + 0.61, 0.9}};
    draw_legend(e, 4);
    plvpor(left, right, 0.94, 0.941);
    plwind(0, 1, 0, 1);
    plot_title(c->title, 0.6);
    free(x);
    free(y);
}

int pf_fig_path_beta(const char *base, const pf_path_point *pts, long n, const pf_transition *t,
                     long nt, const char *start_name, const char *anchor_name, const char *title,
                     pf_error *err)
{
    if (!base || !*base) return pf_fail(err, PF_EINPUT, "figure: no output path");
    if (n < 0 || (n > 0 && !pts) || nt < 0 || (nt > 0 && !t))
        return pf_fail(err, PF_EINPUT, "%s: invalid path points or transitions", base);
    beta_ctx c = {pts, n, t, nt, start_name ? start_name : "start",
                  anchor_name ? anchor_name : "anchor", title};
    double *mid = malloc((size_t)(nt > 0 ? nt : 1) * sizeof *mid);
    if (!mid) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    for (long k = 0; k < nt; k++) mid[k] = sqrt(t[k].beta_below * t[k].beta_above);
    plot_text d = {0};
    plot_text_add(&d, "Path against beta (log scale), panels: test and train error; distance to %s and to "
                  "%s; %ld points", c.start_name, c.anchor_name, n);
    plot_text_transitions(&d, mid, nt);
    free(mid);
    plot_figure fig = {1200, 1000, draw_beta, &c, title, d.buf};
    int rc = d.buf ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    free(d.buf);
    return rc;
}
