/* Detection of first-order transitions along a sweep.
 *
 * Along a quasi-static sweep the order parameter r = ||theta - anchor||
 * falls smoothly (fast at small beta, roughly a power law) except at
 * first-order transitions, where it steps down. We look at y = log r
 * against x = log beta, where the smooth fall is nearly straight. For each
 * gap between consecutive points i and i+1 we fit straight lines to the w
 * points on its left and the w points on its right, and take the jump as the
 * difference of the two lines at the middle of the gap. Its size is compared
 * with the local noise: the residual scatter of both fits, floored by the
 * median scatter over the neighbouring gaps so that a locally perfect fit
 * does not inflate the score. A gap is a transition when the score passes the
 * threshold, r steps down by at least min_rel_jump, and E steps up. Among
 * neighbouring candidates (within w points) only the strongest survives.
 * Per-class accuracies are not used: they flicker from point to point.
 *
 * The fits never reach across a grid gap (pf_detect_gaps): the sweep is cut
 * into gap-free segments first and each is searched on its own, so a point
 * set far apart from the rest (beta = 0 before 0.02, 0.0205, ...) neither
 * bends a window's line nor is itself reported as a transition.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

void pf_detect_config_default(pf_detect_config *c)
{
    c->window = 5;
    c->threshold = 6.0;
    c->min_rel_jump = 0.02;
    c->major_accuracy_drop = 2.0;
    c->gap_factor = 8.0;
}

/* Least-squares line through (x[i], y[i]), i in [lo, hi); returns the RMS
 * residual with n-2 degrees of freedom. */
static double fit_line(const double *x, const double *y, long lo, long hi, double *a, double *b)
{
    double n = (double)(hi - lo), sx = 0, sy = 0;
    for (long i = lo; i < hi; i++) sx += x[i], sy += y[i];
    double mx = sx / n, my = sy / n, sxx = 0, sxy = 0;
    for (long i = lo; i < hi; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    *b = sxx > 0 ? sxy / sxx : 0.0;
    *a = my - *b * mx;
    double ss = 0;
    for (long i = lo; i < hi; i++) {
        double r = y[i] - (*a + *b * x[i]);
        ss += r * r;
    }
    return n > 2 ? sqrt(ss / (n - 2)) : 0.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..m), m >= 1; sorts v. */
static double median(double *v, long m)
{
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

/* Grid gaps. The step between points i and i+1 is d_i = beta[i+1] - beta[i]
 * and, on the detector's log scale, l_i = log beta[i+1] - log beta[i]
 * (infinite when beta[i] = 0). The local step at i is the median of the
 * steps of the up to w gaps on each side of it (itself left out), in both
 * measures. Gap i splits the sweep when
 *     d_i > gap_factor * median(d)   and   l_i > gap_factor * median(l).
 * Both: a linear grid's log steps shrink along it and a geometric grid's
 * linear steps grow along it, but neither is wide in its own measure; only
 * a point cut off from the rest is wide in both. */
int pf_detect_gaps(const double *beta, long n, const pf_detect_config *cfg, long **below,
                   long *n_gaps, pf_error *err)
{
    *below = NULL;
    *n_gaps = 0;
    int w = cfg->window;
    if (w < 1) return pf_fail(err, PF_EINPUT, "detection window must be at least 1 point");
    for (long i = 1; i < n; i++)
        if (!(beta[i] > beta[i - 1]))
            return pf_fail(err, PF_EINPUT, "curve betas must be strictly ascending");
    if (!(cfg->gap_factor > 0) || n < 3) return PF_OK; /* one gap has no neighbours to compare */
    long ng = n - 1;
    double *d = malloc((size_t)ng * sizeof *d), *l = malloc((size_t)ng * sizeof *l);
    double *near = malloc((size_t)(2 * w) * sizeof *near);
    long *found = malloc((size_t)ng * sizeof *found);
    if (!d || !l || !near || !found) {
        free(d), free(l), free(near), free(found);
        return pf_fail(err, PF_ERUNTIME, "out of memory finding grid gaps");
    }
    for (long i = 0; i < ng; i++) {
        d[i] = beta[i + 1] - beta[i];
        l[i] = beta[i] > 0 ? log(beta[i + 1] / beta[i]) : INFINITY;
    }
    long nf = 0;
    for (long i = 0; i < ng; i++) {
        long lo = i - w < 0 ? 0 : i - w, hi = i + w >= ng ? ng - 1 : i + w, m = 0;
        for (long j = lo; j <= hi; j++)
            if (j != i) near[m++] = d[j];
        int wide = d[i] > cfg->gap_factor * median(near, m);
        m = 0;
        for (long j = lo; j <= hi; j++)
            if (j != i) near[m++] = l[j];
        if (wide && l[i] > cfg->gap_factor * median(near, m)) found[nf++] = i;
    }
    free(d), free(l), free(near);
    if (nf == 0) {
        free(found);
        return PF_OK;
    }
    *below = found;
    *n_gaps = nf;
    return PF_OK;
}

/* Jump of y across the gap (i, i+1) from the two one-sided line fits. */
static double gap_jump(const double *x, const double *y, long i, int w, double *noise)
{
    double a1, b1, a2, b2;
    double s1 = fit_line(x, y, i - w + 1, i + 1, &a1, &b1);
    double s2 = fit_line(x, y, i + 1, i + 1 + w, &a2, &b2);
    double xm = 0.5 * (x[i] + x[i + 1]);
    *noise = sqrt(0.5 * (s1 * s1 + s2 * s2));
    return (a2 + b2 * xm) - (a1 + b1 * xm);
}

/* The transition at the gap (below, below + 1), with its jumps. */
static void add_transition(const pf_curve *c, const pf_detect_config *cfg, long below, double jump_r,
                           double jump_loss, double jump_acc, double score, pf_transition *t)
{
    long above = below + 1;
    memset(t, 0, sizeof *t);
    t->below = below;
    t->above = above;
    t->beta_below = c->beta[below];
    t->beta_above = c->beta[above];
    t->r_below = c->r[below];
    t->r_above = c->r[above];
    t->jump_r = jump_r;
    t->loss_below = c->loss[below];
    t->loss_above = c->loss[above];
    t->jump_loss = jump_loss;
    if (c->reg_loss) {
        t->reg_below = c->reg_loss[below];
        t->reg_above = c->reg_loss[above];
        t->jump_reg = c->reg_loss[above] - c->reg_loss[below];
    }
    if (c->accuracy) {
        t->acc_below = c->accuracy[below];
        t->acc_above = c->accuracy[above];
        t->jump_accuracy = jump_acc;
        t->major = -jump_acc >= cfg->major_accuracy_drop;
    }
    t->score = score;
}

/* The search on the gap-free points [lo, hi] of the curve; appends to found. */
static int detect_segment(const pf_curve *c, const pf_detect_config *cfg, long lo, long hi,
                          pf_transition *found, long *nf, pf_error *err)
{
    int w = cfg->window;
    long seg_start = *nf;
    /* Work on beta > 0 and r > 0 only (log scale). */
    long first = lo;
    while (first <= hi && !(c->beta[first] > 0 && c->r[first] > 0)) first++;
    long n = hi + 1 - first;
    if (n < 2 * w) return PF_OK; /* too short to tell a step from a trend */
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double *ye = malloc((size_t)n * sizeof *ye), *jump = calloc((size_t)n, sizeof *jump);
    double *noise = calloc((size_t)n, sizeof *noise), *sorted = malloc((size_t)n * sizeof *sorted);
    double *score = calloc((size_t)n, sizeof *score);
    if (!x || !y || !ye || !jump || !noise || !sorted || !score) {
        free(x), free(y), free(ye), free(jump), free(noise), free(sorted), free(score);
        return pf_fail(err, PF_ERUNTIME, "out of memory detecting transitions");
    }
    for (long i = 0; i < n; i++) {
        x[i] = log(c->beta[first + i]);
        y[i] = log(c->r[first + i]);
        ye[i] = log(fmax(c->loss[first + i], 1e-300));
    }
    for (long i = w - 1; i + w < n; i++) jump[i] = gap_jump(x, y, i, w, &noise[i]);
    /* The noise floor is the median scatter in a neighbourhood of 5 windows
     * on each side: the relative noise of r grows as r shrinks, so one
     * floor for the whole curve would be too strict early and too lax late. */
    long reach = 5L * w;
    for (long i = w - 1; i + w < n; i++) {
        long m = 0;
        for (long j = i - reach; j <= i + reach; j++)
            if (j >= w - 1 && j + w < n) sorted[m++] = noise[j];
        qsort(sorted, (size_t)m, sizeof *sorted, cmp_double);
        double floor_noise = fmax(sorted[m / 2], 1e-9);
        score[i] = -jump[i] / fmax(noise[i], floor_noise);
    }
    for (long i = w - 1; i + w < n; i++) {
        if (score[i] < cfg->threshold || -jump[i] < log1p(cfg->min_rel_jump)) continue;
        /* keep only the strongest candidate within the window */
        int best = 1;
        for (long j = i - w + 1; j <= i + w - 1; j++)
            if (j != i && j >= 0 && j < n && (score[j] > score[i] || (score[j] == score[i] && j < i)))
                best = 0;
        if (!best) continue;
        double ne, je = gap_jump(x, ye, i, w, &ne);
        const double *bx = x; /* the accuracy trend is also taken against log beta */
        if (!(je > 0)) continue; /* E must step up where r steps down */
        /* single points are noisy: judge the accuracy's drop from the two trends */
        double na, ja = c->accuracy ? gap_jump(bx, c->accuracy + first, i, w, &na) : 0.0;
        add_transition(c, cfg, first + i, jump[i], je, ja, score[i], &found[(*nf)++]);
    }
    /* The collapse into the trivial phase: E enters the band around ln K
     * at the gap (i, i+1) and stays in it to the end, with r falling
     * there. r often relaxes over a few points after such a collapse, which
     * the trend fits on its far side take for noise; the jumps are then the
     * gap's own. */
    if (c->trivial_loss > 0) {
        double band = c->trivial_loss - PF_TRIVIAL_TOL;
        long j = n;
        while (j > 0 && c->loss[first + j - 1] >= band) j--;
        long i = j - 1, below = first + i;
        int clear = i >= 0 && n - j >= 2 && c->loss[below] < band;
        for (long k = seg_start; clear && k < *nf; k++)
            if (found[k].below > below - w) clear = 0;   /* found already, or a step after it */
        double jr = clear ? log(c->r[below + 1] / c->r[below]) : 0.0;
        if (clear && jr <= -log1p(cfg->min_rel_jump)) {
            double je = log(fmax(c->loss[below + 1], 1e-300) / fmax(c->loss[below], 1e-300));
            double ja = c->accuracy ? c->accuracy[below + 1] - c->accuracy[below] : 0.0;
            add_transition(c, cfg, below, jr, je, ja, i >= w - 1 && i + w < n ? score[i] : 0.0,
                           &found[(*nf)++]);
        }
    }
    free(x), free(y), free(ye), free(jump), free(noise), free(sorted), free(score);
    return PF_OK;
}

int pf_detect_transitions(const pf_curve *c, const pf_detect_config *cfg, pf_transition **out,
                          long *n_out, pf_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (cfg->window < 2) return pf_fail(err, PF_EINPUT, "detection window must be at least 2 points");
    long *gaps, ng;
    int rc = pf_detect_gaps(c->beta, c->n, cfg, &gaps, &ng, err);
    if (rc) return rc;
    pf_transition *found = malloc((size_t)(c->n > 0 ? c->n : 1) * sizeof *found);
    if (!found) {
        free(gaps);
        return pf_fail(err, PF_ERUNTIME, "out of memory detecting transitions");
    }
    long nf = 0, lo = 0;
    for (long s = 0; s <= ng && !rc; s++) {
        long hi = s < ng ? gaps[s] : c->n - 1;
        rc = detect_segment(c, cfg, lo, hi, found, &nf, err);
        lo = hi + 1;
    }
    free(gaps);
    if (rc || nf == 0) {
        free(found);
        return rc;
    }
    *out = found;
    *n_out = nf;
    return PF_OK;
}
