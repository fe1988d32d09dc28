/* The saddle-node (fold) analysis of a transition: power-law fits of a
 * quantity that vanishes at the fold, and the points of the metastable
 * branch below a refined transition (exp.h: pf_power_fit_free and
 * pf_fold_ladder).
 *
 * Fits. y = a (beta_c - beta)^gamma is linear in log space once beta_c is
 * fixed: log y = log a + gamma log(beta_c - beta). With beta_c free, the
 * residual sum of squares of that regression is minimized over beta_c by
 * a scan of log(beta_c - max beta) over ten decades below to one above the
 * points' span, refined by golden section around the best scan point (the
 * profile is smooth but need not be unimodal far out). Intervals come from
 * a bootstrap over points: resample the n pairs with replacement, refit,
 * and take the percentiles; a resample must have one distinct beta more
 * than the fit has parameters (else it is drawn again), and a fit with no
 * points to spare beyond that gets no interval. The generator is seeded,
 * so the intervals are reproducible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

void pf_power_fit_config_default(pf_power_fit_config *c)
{
    memset(c, 0, sizeof *c);
    c->n_boot = 400;
    c->seed = 0x666f6c64; /* "fold" */
    c->level = 0.95;
}

/* Least squares of v on u: v = c0 + c1 u; returns the residual sum of squares. */
static double line_fit(const double *u, const double *v, const long *idx, long n, double *c0, double *c1)
{
    double su = 0, sv = 0;
    for (long k = 0; k < n; k++) su += u[idx[k]], sv += v[idx[k]];
    double mu = su / (double)n, mv = sv / (double)n, suu = 0, suv = 0;
    for (long k = 0; k < n; k++) {
        double du = u[idx[k]] - mu;
        suu += du * du;
        suv += du * (v[idx[k]] - mv);
    }
    *c1 = suu > 0 ? suv / suu : 0.0;
    *c0 = mv - *c1 * mu;
    double rss = 0;
    for (long k = 0; k < n; k++) {
        double r = v[idx[k]] - *c0 - *c1 * u[idx[k]];
        rss += r * r;
    }
    return rss;
}

/* The log-log regression at beta_c: rss, and a, gamma. */
static double at_beta_c(const double *beta, const double *logy, const long *idx, long n, double beta_c,
                        double *u, double *a, double *gamma)
{
    for (long k = 0; k < n; k++) u[idx[k]] = log(beta_c - beta[idx[k]]);
    double c0, c1, rss = line_fit(u, logy, idx, n, &c0, &c1);
    *a = exp(c0);
    *gamma = c1;
    return rss;
}

/* beta_c free: scan and golden section over log(beta_c - max beta). */
static void fit_free(const double *beta, const double *logy, const long *idx, long n, double *u,
                     double *beta_c, double *a, double *gamma, double *rss)
{
    double bmax = -INFINITY, bmin = INFINITY;
    for (long k = 0; k < n; k++) bmax = fmax(bmax, beta[idx[k]]), bmin = fmin(bmin, beta[idx[k]]);
    double span = bmax - bmin;
    if (!(span > 0)) span = fabs(bmax) > 0 ? fabs(bmax) : 1.0;
    enum { SCAN = 221 };
    double lo = log(span * 1e-10), hi = log(span * 10.0), step = (hi - lo) / (SCAN - 1);
    double best = INFINITY, best_s = lo, aa, gg;
    for (int i = 0; i < SCAN; i++) {
        double s = lo + step * i, r = at_beta_c(beta, logy, idx, n, bmax + exp(s), u, &aa, &gg);
        if (r < best) best = r, best_s = s;
    }
    double x0 = best_s - step, x3 = best_s + step, phi = 0.6180339887498949;
    double x1 = x3 - phi * (x3 - x0), x2 = x0 + phi * (x3 - x0);
    double f1 = at_beta_c(beta, logy, idx, n, bmax + exp(x1), u, &aa, &gg);
    double f2 = at_beta_c(beta, logy, idx, n, bmax + exp(x2), u, &aa, &gg);
    for (int it = 0; it < 60; it++) {
        if (f1 < f2) x3 = x2, x2 = x1, f2 = f1, x1 = x3 - phi * (x3 - x0),
                     f1 = at_beta_c(beta, logy, idx, n, bmax + exp(x1), u, &aa, &gg);
        else x0 = x1, x1 = x2, f1 = f2, x2 = x0 + phi * (x3 - x0),
             f2 = at_beta_c(beta, logy, idx, n, bmax + exp(x2), u, &aa, &gg);
    }
    double s = f1 < f2 ? x1 : x2;
    if (fmin(f1, f2) > best) s = best_s;
    *beta_c = bmax + exp(s);
    *rss = at_beta_c(beta, logy, idx, n, *beta_c, u, a, gamma);
}

/* gamma = 1/2: y^2 = A - B beta, beta_c = A / B, a = sqrt(B). */
static void fit_half(const double *beta, const double *y2, const long *idx, long n, double *beta_c, double *a,
                     double *rss)
{
    double c0, c1;
    *rss = line_fit(beta, y2, idx, n, &c0, &c1);
    *beta_c = c1 < 0 ? -c0 / c1 : NAN;
    *a = c1 < 0 ? sqrt(-c1) : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, long n, double q)
{
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double pos = q * (double)(n - 1);
    long i = (long)floor(pos);
    double f = pos - (double)i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[n - 1];
}

static long distinct_betas(const double *beta, const long *idx, long n, long enough)
{
    long d = 0;
    for (long k = 0; k < n && d < enough; k++) {
        int seen = 0;
        for (long j = 0; j < k && !seen; j++) seen = beta[idx[j]] == beta[idx[k]];
        d += !seen;
    }
    return d;
}

int pf_power_fit_run(const double *beta, const double *y, long n, pf_power_kind kind, double beta_c_fixed,
                     const pf_power_fit_config *cfg, pf_power_fit *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->beta_c = out->beta_c_lo = out->beta_c_hi = NAN;
    out->exponent = out->exponent_lo = out->exponent_hi = NAN;
    out->amplitude = out->rms = NAN;
    long *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx), m = 0;
    double *logy = malloc((size_t)(n > 0 ? n : 1) * sizeof *logy);
    double *y2 = malloc((size_t)(n > 0 ? n : 1) * sizeof *y2);
    double *u = malloc((size_t)(n > 0 ? n : 1) * sizeof *u);
    int B = cfg->n_boot > 0 ? cfg->n_boot : 0;
    double *bc = malloc((size_t)(B + 1) * sizeof *bc), *ge = malloc((size_t)(B + 1) * sizeof *ge);
    long *rs = malloc((size_t)(n > 0 ? n : 1) * sizeof *rs);
    if (!idx || !logy || !y2 || !u || !bc || !ge || !rs) {
        free(idx), free(logy), free(y2), free(u), free(bc), free(ge), free(rs);
        return pf_fail(err, PF_ERUNTIME, "fit: out of memory");
    }
    double bmax = -INFINITY;
    for (long i = 0; i < n; i++) {
        logy[i] = y[i] > 0 ? log(y[i]) : NAN;
        y2[i] = y[i] * y[i];
        if (y[i] > 0 && isfinite(beta[i]) && (kind != PF_POWER_FIXED || beta[i] < beta_c_fixed)) {
            idx[m++] = i;
            bmax = fmax(bmax, beta[i]);
        }
    }
    out->n = m;
    int rc = PF_OK;
    if (m < 3) goto done;
    double bcf, a, g, rss;
    if (kind == PF_POWER_FREE) {
        fit_free(beta, logy, idx, m, u, &bcf, &a, &g, &rss);
    } else if (kind == PF_POWER_FIXED) {
        bcf = beta_c_fixed;
        rss = at_beta_c(beta, logy, idx, m, bcf, u, &a, &g);
    } else {
        fit_half(beta, y2, idx, m, &bcf, &a, &rss);
        g = 0.5;
    }
    out->beta_c = bcf, out->amplitude = a, out->exponent = g;
    if (kind == PF_POWER_HALF) {
        /* the rms in log y of the fitted curve, comparable with the others */
        double s = 0;
        for (long k = 0; k < m; k++) {
            double d = bcf - beta[idx[k]], r = d > 0 ? logy[idx[k]] - log(a * sqrt(d)) : NAN;
            s += r * r;
        }
        out->rms = sqrt(s / (double)m);
    } else {
        out->rms = sqrt(rss / (double)m);
    }
    out->ok = isfinite(bcf) && isfinite(g);
    /* The bootstrap. A resample must over-determine the fit (one distinct
     * beta more than the fit's parameters), and there must be points to
     * spare beyond that, or every resample is the sample itself in another
     * order and the interval collapses onto the estimate: then none is given. */
    long n_par = kind == PF_POWER_FREE ? 3 : 2, need = n_par + 1;
    if (m < need + 1) B = 0;
    pf_rng rng;
    pf_rng_seed(&rng, cfg->seed);
    long nb = 0;
    for (int b = 0; b < B; b++) {
        long distinct = 0;
        for (int tries = 0; tries < 100 && distinct < need; tries++) {
            for (long k = 0; k < m; k++) rs[k] = idx[pf_rng_below(&rng, (uint64_t)m)];
            distinct = distinct_betas(beta, rs, m, need);
        }
        if (distinct < need) continue;
        double bb, aa, gg, rr;
        if (kind == PF_POWER_FREE) fit_free(beta, logy, rs, m, u, &bb, &aa, &gg, &rr);
        else if (kind == PF_POWER_FIXED) bb = bcf, rr = at_beta_c(beta, logy, rs, m, bb, u, &aa, &gg);
        else fit_half(beta, y2, rs, m, &bb, &aa, &rr), gg = 0.5;
        if (!isfinite(bb) || !isfinite(gg)) continue;
        bc[nb] = bb, ge[nb] = gg, nb++;
    }
    out->n_boot = nb;
    double lo = 0.5 * (1.0 - cfg->level), hi = 1.0 - lo;
    if (nb > 0) {
        out->beta_c_lo = percentile(bc, nb, lo);
        out->beta_c_hi = percentile(bc, nb, hi);
        out->exponent_lo = percentile(ge, nb, lo);
        out->exponent_hi = percentile(ge, nb, hi);
    }
done:
    free(idx), free(logy), free(y2), free(u), free(bc), free(ge), free(rs);
    return rc;
}

/* ---- the branch below a transition -------------------------------------------------- */

int pf_fold_ladder(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *base,
                   double beta_from, double d_min, double d_max, int n_points, pf_branch_point *out,
                   int *n_out, pf_error *err)
{
    *n_out = 0;
    if (n_points < 1) return PF_OK;
    if (!(d_min > 0) || !(d_max >= d_min))
        return pf_fail(err, PF_EINPUT, "fold ladder: need 0 < d_min <= d_max, got %g and %g", d_min, d_max);
    double q = n_points > 1 ? pow(d_max / d_min, 1.0 / (n_points - 1)) : 1.0;
    for (int k = 0; k < n_points; k++) {
        double beta = beta_from - d_min * pow(q, k);
        if (beta < 0) break;
        pf_train_config cfg = *base;
        cfg.beta = beta;
        pf_train_result tr;
        int rc = pf_train_beta(t, theta, train, &cfg, &tr, err);
        if (rc) return rc;
        pf_branch_point *p = &out[(*n_out)++];
        memset(p, 0, sizeof *p);
        p->beta = beta;
        p->r = pf_distance(theta, base->anchor, t->arch->n_params);
        if (tr.has_cert) {
            p->lambda_min = tr.cert.lambda_min;
            p->lambda_max = tr.cert.lambda_max;
            p->grad_inf = tr.cert.grad_inf;
            p->certified = tr.cert.certified;
        } else {
            p->lambda_min = p->lambda_max = p->grad_inf = NAN;
        }
        p->seconds = tr.seconds;
    }
    return PF_OK;
}

/* ---- the fold of a sweep's transition -------------------------------------------- */

void pf_fold_free(pf_fold *f)
{
    free(f->points);
    memset(f, 0, sizeof *f);
}

/* The old phase's points of transition k of g, walked from the transition
 * away from it up to the boundary before (another transition or a gap,
 * whose near point still belongs to the phase), then the bisection's. */
int pf_leg_fold(const pf_leg *g, long k, const pf_power_fit_config *cfg, int max_sweep_points, pf_fold *out,
                pf_error *err)
{
    memset(out, 0, sizeof *out);
    out->gap = out->overlap = NAN;
    const pf_transition *t = &g->t[k];
    const pf_refined *ref = g->has_refined && g->has_refined[k] ? &g->refined[k] : NULL;
    int up = g->direction > 0;
    long from = up ? t->below : t->above, step = up ? -1 : 1;
    long cap = g->n + (ref ? ref->n_branch : 0) + 1;
    if (!(out->points = malloc((size_t)cap * sizeof *out->points)))
        return pf_fail(err, PF_ERUNTIME, "fold: out of memory");
    for (long j = from; j >= 0 && j < g->n && (max_sweep_points <= 0 || out->n_points < max_sweep_points);
         j += step) {
        const pf_point_result *r = &g->sorted[j];
        if (r->has_certificate && r->certified)
            out->points[out->n_points++] = (pf_fold_point){r->point.beta, r->lambda_min_E + r->point.beta, 0};
        /* a boundary on the far side: j is its near point, the phase's first */
        int boundary = 0;
        for (long q = 0; q < g->nt && !boundary; q++)
            if (q != k) boundary = up ? g->t[q].above == j : g->t[q].below == j;
        for (long q = 0; q < g->ng && !boundary; q++) boundary = up ? g->gaps[q] + 1 == j : g->gaps[q] == j;
        if (boundary) break;
    }
    /* the bisection's old-phase side; its first is the sweep's point again */
    for (int i = ref ? 1 : 0; ref && i < ref->n_branch; i++)
        if (ref->branch_certified[i])
            out->points[out->n_points++] = (pf_fold_point){ref->branch_beta[i], ref->branch_lambda_min[i], 1};
    if (ref) out->overlap = ref->overlap;
    /* fit on the side where beta rises toward beta_c: -beta on a down leg */
    long n = out->n_points;
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x), *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        pf_fold_free(out);
        return pf_fail(err, PF_ERUNTIME, "fold: out of memory");
    }
    for (long i = 0; i < n; i++) x[i] = up ? out->points[i].beta : -out->points[i].beta, y[i] = out->points[i].lambda_min;
    int rc = pf_power_fit_run(x, y, n, PF_POWER_FREE, 0, cfg, &out->fit, err);
    if (!rc) rc = pf_power_fit_run(x, y, n, PF_POWER_HALF, 0, cfg, &out->half, err);
    free(x), free(y);
    if (rc) {
        pf_fold_free(out);
        return rc;
    }
    if (!up) {
        /* back to beta: beta_c and its interval change sign and ends */
        pf_power_fit *f[2] = {&out->fit, &out->half};
        for (int i = 0; i < 2; i++) {
            double lo = f[i]->beta_c_lo;
            f[i]->beta_c = -f[i]->beta_c;
            f[i]->beta_c_lo = -f[i]->beta_c_hi;
            f[i]->beta_c_hi = -lo;
        }
    }
    out->ok = out->fit.ok;
    if (ref && out->ok) {
        double lo = fmin(ref->beta_from, ref->beta_to), hi = fmax(ref->beta_from, ref->beta_to);
        double bc = out->fit.beta_c;
        out->gap = bc < lo ? lo - bc : bc > hi ? bc - hi : 0.0;
    }
    return PF_OK;
}
