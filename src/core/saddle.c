/* The index-1 saddle next to a minimum, by minimum-mode following with
 * Newton steps (hessian.h: pf_saddle_search has the steps).
 *
 * Why this method. Near a fold the saddle that is about to merge with the
 * minimum lies a short way along the minimum's softest mode, and that
 * mode is an isolated eigenvalue below the bulk, which Lanczos on exact
 * Hessian-vector products resolves in a few dozen products, warm-started
 * from the previous iterate's. Minimum-mode following uses exactly that:
 * it needs no second endpoint, no chain of images and no spring constants
 * (climbing-image NEB between the two sides of a transition would, and it
 * spends a full gradient per image per step on a path that is long
 * compared with the saddle's distance from the minimum); and it needs no
 * finite-difference rotation of a dimer, since the lowest mode is
 * computed, not estimated. With the reflected Hessian the last iterations
 * are Newton steps, so the gradient falls to 1e-6 quadratically, where
 * dimer or gentlest-ascent dynamics (first order) converge linearly. The
 * cubic normal form of the fold gives the first step, and on the data
 * near a fold it is close to the saddle already.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "trust.h"

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void pf_saddle_config_default(pf_saddle_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_iter = 200;
    c->grad_tol = 1e-6;
    c->radius = 0;
    c->max_radius = 1.0;
    c->max_cg = 500;
    pf_lanczos_config_default(&c->lanczos);
    c->lanczos.tol = 1e-6;
    c->k_index = 4;
    c->index_tol = 1e-6;
}

/* H~ u = H u - 2 lambda (v'u) v: the Hessian with its lowest mode's
 * eigenvalue negated. */
typedef struct {
    const pf_objective *obj;
    const double *v;
    double lambda;
} reflected;

static int reflected_hvp(void *ctx, const double *u, double *out, pf_error *err)
{
    reflected *r = ctx;
    size_t n = r->obj->n;
    int rc = r->obj->hvp(r->obj->ctx, u, out, err);
    if (rc) return rc;
    double c = 2.0 * r->lambda * pf_dot(r->v, u, n);
    for (size_t i = 0; i < n; i++) out[i] -= c * r->v[i];
    return PF_OK;
}

/* The lowest eigenpair at the objective's current point, from start. */
static int lowest_mode(const pf_objective *obj, const pf_lanczos_config *base, const double *start,
                       double tol, int k, double *values, double *v, double *scale, long *hvps,
                       pf_error *err)
{
    pf_lanczos_config c = *base;
    c.k = k;
    c.which = PF_EIG_SMALLEST;
    c.want_vectors = v != NULL;
    c.start = start;
    c.tol = tol;
    pf_lanczos_result r;
    int rc = pf_lanczos(obj->hvp, obj->ctx, obj->n, &c, &r, err);
    if (rc) return rc;
    for (int i = 0; i < r.n_values; i++) values[i] = r.values[i];
    if (v) memcpy(v, r.vectors, obj->n * sizeof *v);
    if (scale) *scale = r.scale;
    *hvps += r.n_matvecs;
    pf_lanczos_result_free(&r);
    return PF_OK;
}

/* v'H v at x + h v, the point of later products left there. */
static int curvature_at(const pf_objective *obj, const double *x, const double *v, double h,
                        double *xt, double *hv, double *out, pf_error *err)
{
    size_t n = obj->n;
    for (size_t i = 0; i < n; i++) xt[i] = x[i] + h * v[i];
    int rc = obj->at(obj->ctx, xt, err);
    if (!rc) rc = obj->hvp(obj->ctx, v, hv, err);
    if (!rc) *out = pf_dot(v, hv, n);
    return rc;
}

/* The barrier f(x0 + d) - f(x0) as the integral of g . d along the segment,
 * by Gauss-Legendre on 8 nodes. Near a fold the difference of the two
 * values cancels: both are of order one, the barrier is (beta_c -
 * beta)^(3/2) small, and f is a sum over samples with rounding far above
 * it; the gradient along the segment is itself small there, and the rule
 * is exact for the normal form (a cubic f, so a quadratic g . d) and to
 * rounding for any smooth f over so short a segment. */
static int path_barrier(const pf_objective *obj, const double *x0, const double *d, double *xt, double *gt,
                        double *out, pf_error *err)
{
    static const double node[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                   0.9602898564975363};
    static const double weight[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                     0.1012285362903763};
    size_t n = obj->n;
    double sum = 0.0, f;
    for (int k = 0; k < 8; k++) {
        double t = 0.5 * (1.0 + (k < 4 ? -node[k] : node[k - 4])), w = 0.5 * weight[k % 4];
        for (size_t i = 0; i < n; i++) xt[i] = x0[i] + t * d[i];
        int rc = obj->eval(obj->ctx, xt, &f, gt, err);
        if (rc) return rc;
        sum += w * pf_dot(gt, d, n);
    }
    *out = sum;
    return PF_OK;
}

int pf_saddle_search(const pf_objective *obj, double *x, double *mode, const pf_saddle_config *cfg,
                     pf_saddle_result *res, pf_error *err)
{
    memset(res, 0, sizeof *res);
    size_t n = obj->n;
    if (n == 0 || !obj->eval || !obj->at || !obj->hvp)
        return pf_fail(err, PF_EINPUT, "saddle: an incomplete objective");
    if (!(cfg->grad_tol >= 0) || !(cfg->max_radius > 0) || cfg->max_cg < 1 || cfg->k_index < 1 ||
        cfg->k_index > 8)
        return pf_fail(err, PF_EINPUT, "saddle: bad configuration");
    double t0 = seconds_now();
    double *buf = malloc(11 * n * sizeof *buf);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "saddle: out of memory for %zu parameters", n);
    double *g = buf, *v = buf + n, *s = buf + 2 * n, *As = buf + 3 * n, *xt = buf + 4 * n;
    double *gt = buf + 5 * n, *gr = buf + 6 * n, *x0 = buf + 7 * n, *work = buf + 8 * n;
    double f, ft, lam[8], scale;
    int rc;
    memcpy(x0, x, n * sizeof *x0);

    /* the start: f, the lowest mode, and the normal form along it */
    if ((rc = obj->eval(obj->ctx, x, &f, g, err)) || (rc = obj->at(obj->ctx, x, err)) ||
        (rc = lowest_mode(obj, &cfg->lanczos, cfg->mode_start, cfg->lanczos.tol, 1, lam, v, NULL, &res->hvps,
                          err)))
        goto done;
    res->f_start = f;
    res->lambda_start = lam[0];
    double h = 1e-2 * fmax(1.0, pf_norm(x, n) / sqrt((double)n)), c_plus, c_minus;
    if ((rc = curvature_at(obj, x, v, h, xt, As, &c_plus, err)) ||
        (rc = curvature_at(obj, x, v, -h, xt, As, &c_minus, err)))
        goto done;
    res->hvps += 2;
    double c3 = (c_plus - c_minus) / (2.0 * h), t = -2.0 * lam[0] / c3;
    res->third = c3;
    res->t_normal_form = t;
    res->barrier_normal_form = 2.0 * lam[0] * lam[0] * lam[0] / (3.0 * c3 * c3);
    double step0 = 0.1 * cfg->max_radius;
    if (!isfinite(t) || (cfg->direction && t * cfg->direction <= 0)) t = (cfg->direction ? cfg->direction : 1) * step0;
    if (fabs(t) > cfg->max_radius) t = copysign(cfg->max_radius, t);
    for (size_t i = 0; i < n; i++) x[i] += t * v[i];
    double radius = cfg->radius > 0 ? cfg->radius : fmin(fmax(fabs(t), 1e-6), cfg->max_radius);
    double *start_mode = malloc(n * sizeof *start_mode);
    if (!start_mode) {
        rc = pf_fail(err, PF_ERUNTIME, "saddle: out of memory");
        goto done;
    }
    memcpy(start_mode, v, n * sizeof *v);

    if ((rc = obj->eval(obj->ctx, x, &f, g, err))) goto free_mode;
    reflected R = {obj, v, 0.0};
    for (;;) {
        if ((rc = obj->at(obj->ctx, x, err)) ||
            (rc = lowest_mode(obj, &cfg->lanczos, v, cfg->lanczos.tol, 1, lam, v, NULL, &res->hvps, err)))
            break;
        double ginf = pf_norm_inf(g, n);
        res->grad_inf = ginf;
        if (cfg->progress) cfg->progress(cfg->progress_ctx, res->iterations, f, ginf, lam[0], radius);
        if (ginf <= cfg->grad_tol && lam[0] < 0) {
            res->converged = 1;
            break;
        }
        if (res->iterations >= cfg->max_iter || radius < 1e-15 * (1.0 + pf_norm(x, n))) break;
        R.lambda = lam[0];
        double gv = pf_dot(g, v, n);
        for (size_t i = 0; i < n; i++) gr[i] = g[i] - 2.0 * gv * v[i];
        pf_steihaug_info info;
        double grn = pf_norm(gr, n);
        res->iterations++;
        if (ginf <= cfg->grad_tol) {
            /* a critical point that is no saddle (back at the minimum): push along the mode */
            memset(As, 0, n * sizeof *As);
            for (size_t i = 0; i < n; i++) s[i] = radius * v[i];
            info.boundary = 1;
            if ((rc = obj->hvp(obj->ctx, s, As, err))) break;
            res->hvps++;
        } else {
            if ((rc = pf_steihaug(reflected_hvp, &R, n, gr, radius, fmin(0.5, sqrt(grn)) * grn, cfg->max_cg, s,
                                  As, work, &info, err)))
                break;
            res->hvps += info.iterations;
            /* back from H~ s to H s */
            double vs = 2.0 * lam[0] * pf_dot(v, s, n);
            for (size_t i = 0; i < n; i++) As[i] += vs * v[i];
        }
        for (size_t i = 0; i < n; i++) xt[i] = x[i] + s[i];
        if ((rc = obj->eval(obj->ctx, xt, &ft, gt, err))) break;
        double miss = 0.0, hs = pf_norm(As, n), snorm = pf_norm(s, n);
        for (size_t i = 0; i < n; i++) {
            double d = gt[i] - g[i] - As[i];
            miss += d * d;
        }
        double e = sqrt(miss) / fmax(hs, pf_norm(g, n));
        if (!isfinite(e) || !isfinite(ft)) e = INFINITY;
        if (e > 0.25) radius = 0.5 * snorm;
        else if (e < 1.0 / 16 && info.boundary) radius = fmin(2.0 * radius, cfg->max_radius);
        if (e <= 0.5) {
            memcpy(x, xt, n * sizeof *x);
            memcpy(g, gt, n * sizeof *g);
            f = ft;
            res->accepted++;
        }
    }
    if (rc) goto free_mode;
    res->f = f;
    /* the index: the lowest eigenvalues, to a tight tolerance */
    int k = cfg->k_index < (int)n ? cfg->k_index : (int)n;
    if ((rc = lowest_mode(obj, &cfg->lanczos, v, fmin(cfg->lanczos.tol, 1e-6), k, lam, NULL, &scale,
                          &res->hvps, err)))
        goto free_mode;
    res->n_eig = k;
    for (int i = 0; i < k; i++) {
        res->eig[i] = lam[i];
        res->index += lam[i] < -cfg->index_tol * scale;
    }
    for (size_t i = 0; i < n; i++) s[i] = x[i] - x0[i];
    res->distance = pf_norm(s, n);
    res->overlap = res->distance > 0 ? fabs(pf_dot(start_mode, s, n)) / res->distance : 0.0;
    if ((rc = path_barrier(obj, x0, s, xt, gt, &res->barrier_path, err))) goto free_mode;
    if (mode) memcpy(mode, v, n * sizeof *mode);
free_mode:
    free(start_mode);
done:
    res->seconds = seconds_now() - t0;
    free(buf);
    return rc;
}
