/* Figures: the phase diagram, the per-class heat map, hysteresis loops and
 * the basin hierarchy, drawn with PLplot's cairo drivers.
 *
 * Every figure is one static draw function that knows nothing about files;
 * plot_render() (plot.c) writes it as BASE.png, BASE.pdf and BASE.svg, and
 * turns a fatal PLplot error into PF_ERUNTIME. PLplot is not thread-safe,
 * so neither are these functions.
 *
 * Empty input (no points, no classes, no nodes) still gives a figure: the
 * frame, the title and a line saying what is missing. Only bad arguments
 * (NULL base, NULL rows with n > 0, negative counts) return PF_EINPUT.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plplot.h>

#include "pathfinder/io.h"
#include "fig/figures.h"
#include "plot.h"

/* ------------------------------------------------------------- colours */

/* cmap1: viridis, sampled at nine points (perceptually uniform, prints in grey). */
static void use_viridis(void)
{
    static const PLFLT pos[9] = {0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1};
    static const PLFLT r[9] = {68, 71, 59, 44, 33, 40, 94, 173, 253};
    static const PLFLT g[9] = {1, 45, 82, 114, 145, 174, 201, 220, 231};
    static const PLFLT b[9] = {84, 123, 139, 142, 140, 128, 98, 48, 37};
    PLFLT rr[9], gg[9], bb[9];
    for (int i = 0; i < 9; i++) {
        rr[i] = r[i] / 255;
        gg[i] = g[i] / 255;
        bb[i] = b[i] / 255;
    }
    plscmap1n(256);
    plscmap1l(1, 9, pos, rr, gg, bb, NULL);
}

/* ------------------------------------------------------------- text */

/* Small print, beside TEXT_SCALE and TITLE_SCALE (plot.h). */
#define SMALL_SCALE 0.6

/* Class k in a bit set (the layout of pf_basin.set and pf_phase.encoded). */
static int class_in_set(const uint64_t *set, int k)
{
    return (int)((set[k / 64] >> (k % 64)) & 1u);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* "{0,1,7}". A set longer than max_chars is written with ranges instead,
 * "{0–11,15}", and cut short with ",…}" if even that does not fit. */
static void class_set_text(const uint64_t *set, int n_classes, char *buf, size_t n, size_t max_chars)
{
    for (int ranges = 0; ranges < 2; ranges++) {
        size_t len = (size_t)snprintf(buf, n, "{"), chars = 1;
        int first = 1, cut = 0;
        for (int k = 0; k < n_classes; k++) {
            if (!class_in_set(set, k)) continue;
            int end = k;
            while (ranges && end + 1 < n_classes && class_in_set(set, end + 1)) end++;
            char item[40];
            int bytes;
            if (end - k >= 2) {
                bytes = snprintf(item, sizeof item, "%s%d–%d", first ? "" : ",", k, end);
            } else {
                end = k;
                bytes = snprintf(item, sizeof item, "%s%d", first ? "" : ",", k);
            }
            size_t w = utf8_chars(item);
            if (chars + w + 3 > max_chars || len + (size_t)bytes + 8 >= n) {
                cut = 1;
                break;
            }
            len += (size_t)snprintf(buf + len, n - len, "%s", item);
            chars += w;
            first = 0;
            k = end;
        }
        snprintf(buf + len, n - len, "%s}", cut ? (first ? "…" : ",…") : "");
        if (!cut) return;
    }
}

/* ------------------------------------------------------- plot helpers */

typedef struct {
    double lo, hi;
    int any;
} span;

static void span_add(span *s, double v)
{
    if (!isfinite(v)) return;
    if (!s->any || v < s->lo) s->lo = v;
    if (!s->any || v > s->hi) s->hi = v;
    s->any = 1;
}

/* Pad a data range for a linear axis; a flat or empty one gets a width. */
static void span_pad(span *s, double frac)
{
    if (!s->any) {
        s->lo = 0;
        s->hi = 1;
        s->any = 1;
    }
    double w = s->hi - s->lo;
    if (w <= 0) w = fabs(s->hi) > 0 ? fabs(s->hi) * 0.2 : 1;
    s->lo -= frac * w;
    s->hi += frac * w;
}

/* A log10 range: padded, and stretched to whole decades when it would
 * otherwise hold no decade to label. */
static void span_pad_log(span *s)
{
    if (!s->any) {
        s->lo = -1;
        s->hi = 1;
        s->any = 1;
    }
    double w = s->hi - s->lo;
    if (w < 0.3) w = 0.3;
    s->lo -= 0.05 * w;
    s->hi += 0.05 * w;
    if (floor(s->hi) < ceil(s->lo)) {
        s->lo = floor(s->lo);
        s->hi = ceil(s->hi);
    }
}

static double log10_or_nan(double v)
{
    return v > 0 && isfinite(v) ? log10(v) : NAN;
}

/* Transition midpoints, NaN for a transition without finite betas. */
static double *transition_betas(const pf_transition *t, long nt)
{
    double *mid = malloc((size_t)(nt > 0 ? nt : 1) * sizeof *mid);
    if (!mid) return NULL;
    for (long k = 0; k < nt; k++) mid[k] = 0.5 * (t[k].beta_below + t[k].beta_above);
    return mid;
}

/* Dashed vertical lines at the transitions, inside the current window. */
static void draw_transition_lines(const double *mid, long nt, double xlo, double xhi, double ylo,
                                  double yhi, int color, double width)
{
    static const PLINT mark = 9000, space = 6000;   /* micrometres */
    plcol0(color);
    plwidth(width);
    plstyl(1, &mark, &space);
    for (long k = 0; k < nt; k++)
        if (isfinite(mid[k]) && mid[k] >= xlo && mid[k] <= xhi) pljoin(mid[k], ylo, mid[k], yhi);
    pllsty(1);
    plwidth(1.0);
}

/* "T1", "T2", ... above the current viewport at the transitions; labels that
 * would collide go up a row. Returns the number of rows used. */
static int label_transitions(const double *mid, long nt, double xlo, double xhi)
{
    enum { ROWS = 3 };
    double last[ROWS];
    int used = 0;
    for (int r = 0; r < ROWS; r++) last[r] = -1e300;
    plcol0(C_INK);
    for (long k = 0; k < nt; k++) {
        if (!isfinite(mid[k]) || mid[k] < xlo || mid[k] > xhi) continue;
        double pos = (mid[k] - xlo) / (xhi - xlo);
        int row = 0;
        while (row < ROWS && pos - last[row] < 0.045) row++;
        if (row == ROWS) row = (int)(k % ROWS);
        last[row] = pos;
        if (row + 1 > used) used = row + 1;
        char label[32];
        snprintf(label, sizeof label, "T%ld", k + 1);
        plmtex("t", 0.8 + 1.3 * row, pos, 0.5, label);
    }
    return used;
}

/* The whole page as one frame with the title and a line of explanation. */
static void draw_no_data(const char *title, const char *what)
{
    plot_text_size(TEXT_SCALE);
    plvpor(0.1, 0.9, 0.1, 0.85);
    plwind(0, 1, 0, 1);
    plcol0(C_INK);
    plbox("bc", 0, 0, "bc", 0, 0);
    plptex(0.5, 0.5, 1, 0, 0.5, what);
    plot_title(title, 1.5);
}

static int check_rows(const char *base, const pf_point_result *rows, long n, const char *what,
                      pf_error *err)
{
    if (n < 0 || (n > 0 && !rows))
        return pf_fail(err, PF_EINPUT, "%s: invalid %s (n = %ld)", base, what, n);
    return PF_OK;
}

static int check_args(const char *base, const pf_transition *t, long nt, pf_error *err)
{
    if (!base || !*base) return pf_fail(err, PF_EINPUT, "figure: no output path");
    if (nt < 0 || (nt > 0 && !t))
        return pf_fail(err, PF_EINPUT, "%s: invalid transitions (nt = %ld)", base, nt);
    return PF_OK;
}

/* ----------------------------------------------------- phase diagram */

typedef struct {
    const pf_point_result *rows;
    long n;
    const double *mid;   /* transition betas */
    long nt;
    const char *title;
} sweep_ctx;

/* Q_LAMBDA (lambda_min of H_L) is drawn only for sweeps run with --hessian. */
enum { Q_ACCURACY, Q_R, Q_LOSS, Q_REG, N_QUANTITIES, Q_LAMBDA = N_QUANTITIES };

static double quantity(const pf_point_result *p, int q)
{
    switch (q) {
    case Q_ACCURACY: return p->m.test.accuracy;
    case Q_R: return log10_or_nan(p->m.r);
    case Q_LOSS: return p->m.train.loss;
    case Q_LAMBDA: return p->has_hessian ? p->lambda_min_E + p->point.beta : NAN;
    default: return p->m.reg_loss;
    }
}

static span beta_span(const pf_point_result *a, long na, const pf_point_result *b, long nb)
{
    span s = {0, 0, 0};
    for (long i = 0; i < na; i++) span_add(&s, a[i].point.beta);
    for (long i = 0; i < nb; i++) span_add(&s, b[i].point.beta);
    span_pad(&s, 0.02);
    return s;
}

static span quantity_span(const pf_point_result *a, long na, const pf_point_result *b, long nb,
                          int q)
{
    span s = {0, 0, 0};
    for (long i = 0; i < na; i++) span_add(&s, quantity(&a[i], q));
    for (long i = 0; i < nb; i++) span_add(&s, quantity(&b[i], q));
    if (q == Q_ACCURACY) {
        /* Accuracy reads best on its full scale. */
        s.lo = 0;
        s.hi = 100;
        s.any = 1;
        span_pad(&s, 0.03);
    } else if (q == Q_R) {
        span_pad_log(&s);
    } else {
        span_pad(&s, 0.06);
    }
    return s;
}

static const char *const quantity_label[N_QUANTITIES + 1] = {
    "test accuracy (%)",
    "r = ‖θ − θ#dc#u‖",
    "E (train loss)",
    "L#dβ#u = E + βr#u2#d/2",
    "λ#dmin#u(H#dL#u)",
};
static const int quantity_color[N_QUANTITIES + 1] = {C_BLUE, C_VERMILLION, C_GREEN, C_PURPLE, C_ORANGE};

static void draw_phase_diagram(const void *p)
{
    const sweep_ctx *c = p;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    if (c->n == 0) {
        draw_no_data(c->title, "no data: the sweep has no points");
        return;
    }
    span xs = beta_span(c->rows, c->n, NULL, 0);
    double *x = malloc((size_t)c->n * sizeof *x), *y = malloc((size_t)c->n * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return;
    }
    for (long i = 0; i < c->n; i++) x[i] = c->rows[i].point.beta;

    int nq = N_QUANTITIES;
    for (long i = 0; i < c->n; i++)
        if (c->rows[i].has_hessian) nq = N_QUANTITIES + 1;
    const double left = 0.12, right = 0.96, bottom = 0.065, gap = 0.012;
    const double top = c->title ? 0.915 : 0.945;
    const double h = (top - bottom - (nq - 1) * gap) / nq;
    for (int q = 0; q < nq; q++) {
        double y1 = top - q * (h + gap), y0 = y1 - h;
        span ys = quantity_span(c->rows, c->n, NULL, 0, q);
        for (long i = 0; i < c->n; i++) y[i] = quantity(&c->rows[i], q);
        plvpor(left, right, y0, y1);
        plwind(xs.lo, xs.hi, ys.lo, ys.hi);
        int last = q == nq - 1;
        /* small eigenvalues as plain decimals: a "(x10^-2)" would run into the panel above */
        plsyax(q == Q_LAMBDA ? 6 : 0, 0);
        plot_axes(last ? "bcnst" : "bcst", q == Q_R ? "bcflnstv" : "bcnstv", q == Q_R);
        plsyax(0, 0);
        draw_transition_lines(c->mid, c->nt, xs.lo, xs.hi, ys.lo, ys.hi, C_GREY, 1.5);
        if (q == Q_LAMBDA && ys.lo < 0 && ys.hi > 0) {
            /* zero: where the metastable minimum would lose stability */
            double zx[2] = {xs.lo, xs.hi}, zy[2] = {0, 0};
            plot_style zero = {.color = C_GREY, .line_style = 2, .line_width = 1.0};
            plot_series(zx, zy, NULL, 2, &zero);
        }
        plot_style style = {.color = quantity_color[q], .line_style = 1, .line_width = 2.0,
                            .marker = "•", .marker_scale = 0.55};
        plot_series(x, y, NULL, c->n, &style);
        plcol0(C_INK);
        plmtex("l", q == Q_LAMBDA ? 5.2 : 4.2, 0.5, 0.5, quantity_label[q]);
        if (q == 0) {
            int rows = label_transitions(c->mid, c->nt, xs.lo, xs.hi);
            plot_title(c->title, (1.1 + 1.3 * rows) * TEXT_SCALE / TITLE_SCALE + 0.6);
        }
        if (last) plmtex("b", 3.0, 0.5, 0.5, "β (L2 strength)");
    }
    free(x);
    free(y);
}

int pf_fig_phase_diagram(const char *base, const pf_point_result *rows, long n,
                         const pf_transition *t, long nt, const char *title, pf_error *err)
{
    int rc = check_args(base, t, nt, err);
    if (!rc) rc = check_rows(base, rows, n, "rows", err);
    if (rc) return rc;
    double *mid = transition_betas(t, nt);
    if (!mid) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    sweep_ctx c = {rows, n, mid, nt, title};
    int hessian = 0;
    for (long i = 0; i < n; i++) hessian |= rows[i].has_hessian;
    plot_text d = {0};
    plot_text_add(&d, "Phase diagram, panels against beta (L2 strength): test accuracy (%%); "
                  "r = ||theta - theta_c||; E (train loss); L_beta = E + beta r^2/2%s; %ld points",
                  hessian ? "; lambda_min(H_L)" : "", n);
    plot_text_transitions(&d, mid, nt);
    plot_figure fig = {1200, 1500, draw_phase_diagram, &c, title, d.buf};
    rc = d.buf ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    free(d.buf);
    free(mid);
    return rc;
}

/* ------------------------------------------------------- class heat map */

typedef struct {
    double beta;
    long row;
} beta_row;

static int beta_row_cmp(const void *a, const void *b)
{
    double x = ((const beta_row *)a)->beta, y = ((const beta_row *)b)->beta;
    return (x > y) - (x < y);
}

typedef struct {
    const pf_point_result *rows;
    long n;
    int n_classes;
    const double *mid;
    long nt;
    const char *title;
    beta_row *order;   /* rows with a finite beta, ascending */
    long n_order;
} heatmap_ctx;

static int heatmap_height(int n_classes)
{
    int h = 420 + 36 * n_classes;
    return h < 800 ? 800 : h > 2000 ? 2000 : h;
}

static void draw_class_heatmap(const void *p)
{
    const heatmap_ctx *c = p;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    if (c->n_order == 0 || c->n_classes <= 0) {
        draw_no_data(c->title, c->n_order == 0 ? "no data: the sweep has no points"
                                               : "no data: no per-class accuracies");
        return;
    }
    int K = c->n_classes;
    long n = c->n_order;
    const beta_row *o = c->order;

    /* Cell i spans the midpoints to its neighbours; the end cells mirror
     * their inner half, so non-uniform grids keep every cell centred. */
    double *edge = malloc((size_t)(n + 1) * sizeof *edge);
    if (!edge) return;
    for (long i = 1; i < n; i++) edge[i] = 0.5 * (o[i - 1].beta + o[i].beta);
    if (n == 1) {
        double w = fabs(o[0].beta) > 0 ? 0.05 * fabs(o[0].beta) : 0.5;
        edge[0] = o[0].beta - w;
        edge[1] = o[0].beta + w;
    } else {
        edge[0] = o[0].beta - (edge[1] - o[0].beta);
        edge[n] = o[n - 1].beta + (o[n - 1].beta - edge[n - 1]);
    }
    double xlo = edge[0], xhi = edge[n];
    if (!(xhi > xlo)) xhi = xlo + 1;

    plvpor(0.085, 0.84, 0.12, c->title ? 0.84 : 0.88);
    plwind(xlo, xhi, -0.5, K - 0.5);
    use_viridis();

    /* One filled quad per cell, a band (class) at a time; each reaches a
     * hair into its right and upper neighbours, which are drawn later, so
     * anti-aliased viewers show no seams between cells. */
    const double hair_x = 0.002 * (xhi - xlo), hair_y = 0.02;
    int any_absent = 0;
    for (int k = 0; k < K; k++) {
        double y0 = k - 0.5, y1 = k + 0.5 + (k + 1 < K ? hair_y : 0);
        for (long i = 0; i < n; i++) {
            const pf_eval *ev = &c->rows[o[i].row].m.test;
            double x0 = edge[i], x1 = edge[i + 1] + (i + 1 < n ? hair_x : 0);
            if (!(x1 > x0)) continue;
            double a = k < ev->n_classes ? ev->class_accuracy[k] : NAN;
            PLFLT qx[4] = {x0, x1, x1, x0}, qy[4] = {y0, y0, y1, y1};
            if (isfinite(a) && a >= 0)
                plcol1(a >= 100 ? 1.0 : a / 100);
            else {
                plcol0(C_ABSENT);   /* class absent from the test set */
                any_absent = 1;
            }
            plfill(4, qx, qy);
        }
    }
    free(edge);

    draw_transition_lines(c->mid, c->nt, xlo, xhi, -0.5, K - 0.5, C_WHITE, 2.5);
    plcol0(C_INK);
    plwidth(1.5);
    double ytick = K <= 20 ? 1 : ceil(K / 20.0);
    /* Outward ticks, on the bottom and left only: the top carries the
     * transition labels. */
    plbox("bc", 0, 0, "bc", 0, 0);
    plbox("binst", 0, 0, "binstv", ytick, 1);
    plwidth(1.0);
    plmtex("b", 3.4, 0.5, 0.5, "β (L2 strength)");
    plmtex("l", 3.2, 0.5, 0.5, "class");
    if (any_absent) {
        plot_text_size(SMALL_SCALE);
        /* On the line of the axis label, flush right, clear of it. */
        plmtex("b", 3.4 * TEXT_SCALE / SMALL_SCALE, 1.0, 1.0, "grey: not in the test set");
        plot_text_size(TEXT_SCALE);
    }
    int rows = label_transitions(c->mid, c->nt, xlo, xhi);
    plot_title(c->title, (1.1 + 1.3 * rows) * TEXT_SCALE / TITLE_SCALE + 0.6);

    /* The colour bar, beside the map and as tall as it. */
    PLFLT bar_w, bar_h;
    static const PLINT label_opts[1] = {PL_COLORBAR_LABEL_RIGHT};
    static const char *const labels[1] = {"test accuracy (%)"};
    static const char *const axis_opts[1] = {"bcmstv"};
    static const PLFLT ticks[1] = {20};
    static const PLINT sub_ticks[1] = {2};
    static const PLINT n_values[1] = {2};
    static const PLFLT range[2] = {0, 100};
    const PLFLT *values[1] = {range};
    plcolorbar(&bar_w, &bar_h, PL_COLORBAR_GRADIENT | PL_COLORBAR_ORIENT_TOP,
               PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.02, 0, 0.035, 1.0,
               C_PAGE, C_INK, 1, 0, 0, C_INK, 1, 1, label_opts, labels, 1, axis_opts, ticks,
               sub_ticks, n_values, values);
}

int pf_fig_class_heatmap(const char *base, const pf_point_result *rows, long n,
                         const pf_transition *t, long nt, const char *title, pf_error *err)
{
    int rc = check_args(base, t, nt, err);
    if (!rc) rc = check_rows(base, rows, n, "rows", err);
    if (rc) return rc;
    int K = n > 0 ? rows[0].m.test.n_classes : 0;
    if (K < 0) K = 0;
    if (K > PF_MAX_CLASSES) K = PF_MAX_CLASSES;
    double *mid = transition_betas(t, nt);
    beta_row *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!mid || !order) {
        free(mid);
        free(order);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    }
    long m = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(rows[i].point.beta)) order[m++] = (beta_row){rows[i].point.beta, i};
    qsort(order, (size_t)m, sizeof *order, beta_row_cmp);
    heatmap_ctx c = {rows, n, K, mid, nt, title, order, m};
    plot_text d = {0};
    plot_text_add(&d, "Per-class test accuracy (%%): classes 0 to %d against beta (L2 strength), "
                  "%ld points", K - 1, m);
    plot_text_transitions(&d, mid, nt);
    plot_figure fig = {1200, heatmap_height(K), draw_class_heatmap, &c, title, d.buf};
    rc = d.buf ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    free(d.buf);
    free(mid);
    free(order);
    return rc;
}

/* ---------------------------------------------------------- hysteresis */

typedef struct {
    const pf_point_result *leg[2];   /* up, down */
    long n[2];
    const char *title;
} hysteresis_ctx;

static const char *const leg_name[2] = {"up (β increasing)", "down (β decreasing)"};
static const char *const leg_marker[2] = {"▲", "▼"};
static const int leg_color[2] = {C_BLUE, C_VERMILLION};

static void draw_hysteresis(const void *p)
{
    const hysteresis_ctx *c = p;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    if (c->n[0] + c->n[1] == 0) {
        draw_no_data(c->title, "no data: both legs are empty");
        return;
    }
    span xs = beta_span(c->leg[0], c->n[0], c->leg[1], c->n[1]);
    long nmax = c->n[0] > c->n[1] ? c->n[0] : c->n[1];
    double *x = malloc((size_t)nmax * sizeof *x), *y = malloc((size_t)nmax * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return;
    }
    static const int panel_q[2] = {Q_R, Q_ACCURACY};
    const double left = 0.12, right = 0.96, bottom = 0.08, gap = 0.015;
    const double top = c->title ? 0.92 : 0.95, h = (top - bottom - gap) / 2;
    for (int panel = 0; panel < 2; panel++) {
        int q = panel_q[panel];
        double y1 = top - panel * (h + gap), y0 = y1 - h;
        span ys = quantity_span(c->leg[0], c->n[0], c->leg[1], c->n[1], q);
        plvpor(left, right, y0, y1);
        plwind(xs.lo, xs.hi, ys.lo, ys.hi);
        plot_axes(panel ? "bcnst" : "bcst", q == Q_R ? "bcflnstv" : "bcnstv", q == Q_R);
        for (int leg = 0; leg < 2; leg++) {
            for (long i = 0; i < c->n[leg]; i++) {
                x[i] = c->leg[leg][i].point.beta;
                y[i] = quantity(&c->leg[leg][i], q);
            }
            plot_style style = {.color = leg_color[leg], .line_style = 1, .line_width = 2.0,
                                .marker = leg_marker[leg], .marker_scale = MARKER_SCALE};
            plot_series(x, y, NULL, c->n[leg], &style);
        }
        plcol0(C_INK);
        plmtex("l", 4.2, 0.5, 0.5, quantity_label[q]);
        if (panel == 0) {
            plot_title(c->title, 1.2);
            /* Both curves fall with beta, so the upper right corner is free. */
            PLINT opt[2] = {PL_LEGEND_LINE | PL_LEGEND_SYMBOL, PL_LEGEND_LINE | PL_LEGEND_SYMBOL};
            PLINT text_colors[2] = {C_INK, C_INK}, line_colors[2], line_styles[2] = {1, 1};
            PLINT symbol_colors[2], symbol_numbers[2] = {1, 1};
            PLFLT line_widths[2] = {2, 2};
            PLFLT symbol_scales[2] = {plot_char_scale(MARKER_SCALE),
                                      plot_char_scale(MARKER_SCALE)};
            const char *text[2], *symbols[2];
            int nl = 0;
            for (int leg = 0; leg < 2; leg++) {
                if (c->n[leg] == 0) continue;
                line_colors[nl] = symbol_colors[nl] = leg_color[leg];
                text[nl] = leg_name[leg];
                symbols[nl] = leg_marker[leg];
                nl++;
            }
            PLFLT lw, lh;
            pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                     PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.03, 0.08,
                     C_PAGE, C_INK, 1, 0, 0, nl, opt, 1.0, plot_char_scale(TEXT_SCALE), 2.0,
                     0.0, text_colors, text, NULL,
                     NULL, NULL, NULL, line_colors, line_styles, line_widths, symbol_colors,
                     symbol_scales, symbol_numbers, symbols);
        } else {
            plmtex("b", 3.0, 0.5, 0.5, "β (L2 strength)");
        }
    }
    free(x);
    free(y);
}

int pf_fig_hysteresis(const char *base, const pf_point_result *up, long n_up,
                      const pf_point_result *down, long n_down, const char *title, pf_error *err)
{
    int rc = check_args(base, NULL, 0, err);
    if (!rc) rc = check_rows(base, up, n_up, "up leg", err);
    if (!rc) rc = check_rows(base, down, n_down, "down leg", err);
    if (rc) return rc;
    hysteresis_ctx c = {{up, down}, {n_up, n_down}, title};
    char desc[256];
    snprintf(desc, sizeof desc, "Hysteresis, panels against beta (L2 strength): r = ||theta - theta_c||; "
             "test accuracy (%%); legs: up (%ld points), down (%ld points)", n_up, n_down);
    plot_figure fig = {1200, 1100, draw_hysteresis, &c, title, desc};
    return plot_render(base, &fig, err);
}

/* ----------------------------------------------------------- hierarchy */

#define SET_CHARS 44   /* longest class-set label before it is cut short */

typedef struct {
    const pf_hierarchy *h;
    const char *title;
    int *parent;       /* (n) parent links, damaged ones cut */
    int *depth;        /* (n) level from the top, by parent links */
    double *x;         /* (n) horizontal slot */
    int levels;
    int slots;
    char (*line1)[96]; /* (n) the class set, or what stands for it */
    char (*line2)[96]; /* (n) seen count and beta range */
} hierarchy_ctx;

/* Leaves take the next free slot left to right; a parent sits above the
 * middle of its children. */
static void place_subtree(hierarchy_ctx *c, const int *first_child, const int *next_sibling,
                          int node, int *next_slot)
{
    if (first_child[node] < 0) {
        c->x[node] = (*next_slot)++;
        return;
    }
    double lo = 0, hi = 0;
    int first = 1;
    for (int ch = first_child[node]; ch >= 0; ch = next_sibling[ch]) {
        place_subtree(c, first_child, next_sibling, ch, next_slot);
        if (first) lo = c->x[ch];
        hi = c->x[ch];
        first = 0;
    }
    c->x[node] = 0.5 * (lo + hi);
}

/* Depths, slots and labels. A parent link that is out of range or leads
 * into a cycle makes its node a root, so a damaged hierarchy still draws. */
static int hierarchy_layout(hierarchy_ctx *c)
{
    const pf_hierarchy *h = c->h;
    int n = h->n;
    int *first_child = malloc((size_t)n * sizeof *first_child);
    int *next_sibling = malloc((size_t)n * sizeof *next_sibling);
    int *last_child = malloc((size_t)n * sizeof *last_child);
    if (!first_child || !next_sibling || !last_child) {
        free(first_child);
        free(next_sibling);
        free(last_child);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int node = i, steps = 0;
        for (;;) {
            int up = h->nodes[node].parent;
            if (up < 0 || up >= n || up == node || steps > n) break;
            node = up;
            steps++;
        }
        int p = h->nodes[i].parent;
        c->parent[i] = steps <= n && p >= 0 && p < n && p != i ? p : -1;
        first_child[i] = next_sibling[i] = last_child[i] = -1;
    }
    c->levels = 1;
    for (int i = 0; i < n; i++) {
        int d = 0;
        for (int node = c->parent[i]; node >= 0; node = c->parent[node]) d++;
        c->depth[i] = d;
        if (d + 1 > c->levels) c->levels = d + 1;
        int p = c->parent[i];
        if (p < 0) continue;
        if (last_child[p] < 0)
            first_child[p] = i;
        else
            next_sibling[last_child[p]] = i;
        last_child[p] = i;
    }
    int slot = 0;
    for (int i = 0; i < n; i++)
        if (c->parent[i] < 0) place_subtree(c, first_child, next_sibling, i, &slot);
    c->slots = slot > 0 ? slot : 1;
    free(first_child);
    free(next_sibling);
    free(last_child);

    for (int i = 0; i < n; i++) {
        const pf_basin *b = &h->nodes[i];
        /* a node that encodes nothing says which kind it is: the trivial
         * phase, or an unresolved one named by its partial classes */
        if (b->trivial) {
            snprintf(c->line1[i], sizeof c->line1[i], "{} trivial");
        } else if (b->unresolved) {
            static const char prefix[] = "unresolved: partial ";
            char set[72];
            class_set_text(b->partial, h->n_classes, set, sizeof set, SET_CHARS - (sizeof prefix - 1));
            snprintf(c->line1[i], sizeof c->line1[i], "%s%s", prefix, set);
        } else {
            class_set_text(b->set, h->n_classes, c->line1[i], sizeof c->line1[i], SET_CHARS);
        }
        if (isfinite(b->beta_min) && isfinite(b->beta_max) && b->beta_min != b->beta_max)
            snprintf(c->line2[i], sizeof c->line2[i], "seen %d×   β %.3g – %.3g", b->seen,
                     b->beta_min, b->beta_max);
        else if (isfinite(b->beta_min))
            snprintf(c->line2[i], sizeof c->line2[i], "seen %d×   β %.3g", b->seen, b->beta_min);
        else
            snprintf(c->line2[i], sizeof c->line2[i], "seen %d×", b->seen);
    }
    return 0;
}

static void draw_hierarchy(const void *p)
{
    const hierarchy_ctx *c = p;
    const pf_hierarchy *h = c->h;
    pladv(0);
    plot_text_size(TEXT_SCALE);
    if (h->n == 0) {
        draw_no_data(c->title, "no data: the hierarchy has no basins");
        return;
    }
    const double vx0 = 0.03, vx1 = 0.97, vy0 = 0.08, vy1 = c->title ? 0.91 : 0.95;
    plvpor(vx0, vx1, vy0, vy1);
    double ylo = -(c->levels - 1) - 0.5, yhi = 0.5;
    plwind(-0.5, c->slots - 0.5, ylo, yhi);

    /* Box size from the text, at ~0.66 character heights per character
     * (DejaVu Sans digits and braces; PLplot does not export plstrl). */
    PLFLT sx0, sx1, sy0, sy1, def_mm, char_mm;
    plgspa(&sx0, &sx1, &sy0, &sy1);
    plgchr(&def_mm, &char_mm);
    double world_per_mm_x = c->slots / ((vx1 - vx0) * (sx1 - sx0));
    double world_per_mm_y = (yhi - ylo) / ((vy1 - vy0) * (sy1 - sy0));
    double half_w = 0, half_h = 1.6 * char_mm * world_per_mm_y;
    for (int i = 0; i < h->n; i++) {
        double w = 0.66 * char_mm * (double)utf8_chars(c->line1[i]);
        double w2 = 0.66 * char_mm * SMALL_SCALE / TEXT_SCALE * (double)utf8_chars(c->line2[i]);
        if (w2 > w) w = w2;
        w = 0.5 * (w + 3 * char_mm) * world_per_mm_x;
        if (w > half_w) half_w = w;
    }
    if (half_w > 0.47) half_w = 0.47;
    if (half_h > 0.36) half_h = 0.36;

    /* Edges first, so boxes cover their ends. */
    plcol0(C_GREY);
    plwidth(2.0);
    for (int i = 0; i < h->n; i++) {
        int par = c->parent[i];
        if (par < 0) continue;
        pljoin(c->x[par], -c->depth[par] - half_h, c->x[i], -c->depth[i] + half_h);
    }
    for (int i = 0; i < h->n; i++) {
        double x = c->x[i], y = -c->depth[i];
        PLFLT bx[5] = {x - half_w, x + half_w, x + half_w, x - half_w, x - half_w};
        PLFLT by[5] = {y - half_h, y - half_h, y + half_h, y + half_h, y - half_h};
        plcol0(C_BOXFILL);
        plfill(4, bx, by);
        plcol0(C_INK);
        plwidth(1.5);
        /* unresolved: dashed, as a basin not pinned down */
        static const PLINT mark = 3000, space = 2000;   /* micrometres */
        if (h->nodes[i].unresolved) plstyl(1, &mark, &space);
        plline(5, bx, by);
        pllsty(1);
        plptex(x, y + 0.35 * half_h, 1, 0, 0.5, c->line1[i]);
        plot_text_size(SMALL_SCALE);
        plcol0(C_GREY);
        plptex(x, y - 0.55 * half_h, 1, 0, 0.5, c->line2[i]);
        plot_text_size(TEXT_SCALE);
    }
    plwidth(1.0);
    plcol0(C_INK);
    plot_title(c->title, 1.2);
    plot_text_size(SMALL_SCALE);
    plcol0(C_GREY);
    int any_unresolved = 0;
    for (int i = 0; i < h->n; i++) any_unresolved |= h->nodes[i].unresolved;
    double disp = any_unresolved ? 1.2 : 1.8;
    plmtex("b", disp, 0.5, 0.5,
           h->consistent ? "each set is linked to the smallest seen set that contains it"
                         : "each set is linked to the smallest seen set that contains it "
                           "(not every run's chain of sets is nested)");
    if (any_unresolved)
        plmtex("b", disp + 1.3, 0.5, 0.5,
               "dashed: unresolved, no class encoded (named by its partial classes, linked to the "
               "set it was entered from)");
    plot_text_size(TEXT_SCALE);
}

/* One line per node for the SVG's description (its label and what its
 * box says); allocated, NULL when out of memory. */
static char *hierarchy_desc(const hierarchy_ctx *c)
{
    size_t cap = 1 + (size_t)(c->h->n > 0 ? c->h->n : 1) * 256, len = 0;
    char *desc = malloc(cap);
    if (!desc) return NULL;
    desc[0] = '\0';
    for (int i = 0; i < c->h->n && len < cap; i++)
        len += (size_t)snprintf(desc + len, cap - len, "%s%s (%s)", i ? "\n" : "", c->line1[i], c->line2[i]);
    return desc;
}

int pf_fig_hierarchy(const char *base, const pf_hierarchy *h, const char *title, pf_error *err)
{
    int rc = check_args(base, NULL, 0, err);
    if (rc) return rc;
    if (!h || h->n < 0 || (h->n > 0 && !h->nodes))
        return pf_fail(err, PF_EINPUT, "%s: invalid hierarchy", base);
    int n = h->n > 0 ? h->n : 1;
    hierarchy_ctx c = {h, title, NULL, NULL, NULL, 1, 1, NULL, NULL};
    c.parent = calloc((size_t)n, sizeof *c.parent);
    c.depth = calloc((size_t)n, sizeof *c.depth);
    c.x = calloc((size_t)n, sizeof *c.x);
    c.line1 = calloc((size_t)n, sizeof *c.line1);
    c.line2 = calloc((size_t)n, sizeof *c.line2);
    if (!c.parent || !c.depth || !c.x || !c.line1 || !c.line2 || (h->n > 0 && hierarchy_layout(&c) != 0)) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    } else {
        /* Room for the longest label (~13 px a character) in every slot. */
        size_t longest = 10;
        for (int i = 0; i < h->n; i++) {
            size_t l1 = utf8_chars(c.line1[i]), l2 = utf8_chars(c.line2[i]);
            if (l1 > longest) longest = l1;
            if (l2 > longest) longest = l2;
        }
        int width = 120 + c.slots * (int)(13 * longest + 60);
        int height = 240 + 125 * c.levels;
        char *desc = hierarchy_desc(&c);
        plot_figure fig = {width < 1200 ? 1200 : width > 16000 ? 16000 : width,
                           height < 700 ? 700 : height > 4000 ? 4000 : height, draw_hierarchy, &c,
                           title ? title : "Hierarchy of accuracy basins", desc};
        rc = desc ? plot_render(base, &fig, err) : pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
        free(desc);
    }
    free(c.parent);
    free(c.depth);
    free(c.x);
    free(c.line1);
    free(c.line2);
    return rc;
}
