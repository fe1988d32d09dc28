/* Trust-region Newton-CG, extreme modes and the escape along negative
 * curvature, over the pf_objective interface (hessian.h has the math of
 * each). Every vector is double; sums are plain loops in a fixed order, so
 * the same objective gives the same iterates bit for bit.
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

double pf_dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

double pf_norm(const double *a, size_t n) { return sqrt(pf_dot(a, a, n)); }

double pf_norm_inf(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* tau >= 0 with ||z + tau d|| = radius (z inside the ball). */
static double to_boundary(const double *z, const double *d, size_t n, double radius)
{
    double dd = pf_dot(d, d, n), zd = pf_dot(z, d, n), zz = pf_dot(z, z, n);
    double disc = zd * zd + dd * fmax(radius * radius - zz, 0.0);
    return dd > 0 ? (-zd + sqrt(disc)) / dd : 0.0;
}

int pf_steihaug(pf_matvec_fn op, void *ctx, size_t n, const double *g, double radius, double tol,
                int max_cg, double *s, double *As, double *work, pf_steihaug_info *info,
                pf_error *err)
{
    double *r = work, *d = work + n, *Ad = work + 2 * n;
    memset(info, 0, sizeof *info);
    memset(s, 0, n * sizeof *s);
    memset(As, 0, n * sizeof *As);
    memcpy(r, g, n * sizeof *r);
    for (size_t i = 0; i < n; i++) d[i] = -g[i];
    double rr = pf_dot(r, r, n);
    if (!(rr > 0)) return PF_OK;
    for (int j = 0; j < max_cg; j++) {
        int rc = op(ctx, d, Ad, err);
        info->iterations++;
        if (rc) return rc;
        double dAd = pf_dot(d, Ad, n);
        if (!isfinite(dAd)) return pf_fail(err, PF_ERUNTIME, "newton: a non-finite Hessian product");
        if (dAd <= 0.0) {
            double tau = to_boundary(s, d, n, radius);
            for (size_t i = 0; i < n; i++) s[i] += tau * d[i], As[i] += tau * Ad[i];
            info->negative = info->boundary = 1;
            return PF_OK;
        }
        double alpha = rr / dAd, zz = 0.0;
        for (size_t i = 0; i < n; i++) {
            double z = s[i] + alpha * d[i];
            zz += z * z;
        }
        if (sqrt(zz) >= radius) {
            double tau = to_boundary(s, d, n, radius);
            for (size_t i = 0; i < n; i++) s[i] += tau * d[i], As[i] += tau * Ad[i];
            info->boundary = 1;
            return PF_OK;
        }
        for (size_t i = 0; i < n; i++) {
            s[i] += alpha * d[i];
            As[i] += alpha * Ad[i];
            r[i] += alpha * Ad[i];
        }
        double rr_new = pf_dot(r, r, n);
        if (sqrt(rr_new) <= tol) return PF_OK;
        double b = rr_new / rr;
        for (size_t i = 0; i < n; i++) d[i] = -r[i] + b * d[i];
        rr = rr_new;
    }
    return PF_OK;
}

/* ---- Newton-CG ----------------------------------------------------------------- */

void pf_newton_config_default(pf_newton_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_iter = 500;
    c->grad_tol = 1e-6;
    c->radius = 1.0;
    c->max_radius = 100.0;
    c->max_cg = 500;
    c->eta = 1e-4;
    c->noise = 1e-8;
}

int pf_newton(const pf_objective *obj, double *x, const pf_newton_config *cfg,
              pf_newton_result *res, pf_error *err)
{
    memset(res, 0, sizeof *res);
    size_t n = obj->n;
    if (n == 0 || !obj->eval || !obj->at || !obj->hvp)
        return pf_fail(err, PF_EINPUT, "newton: an incomplete objective");
    if (!(cfg->grad_tol >= 0) || !(cfg->radius > 0) || !(cfg->max_radius >= cfg->radius) ||
        cfg->max_cg < 1 || cfg->max_iter < 0)
        return pf_fail(err, PF_EINPUT, "newton: bad configuration");
    double t0 = seconds_now();
    double *buf = malloc(8 * n * sizeof *buf);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "newton: out of memory for %zu parameters", n);
    double *g = buf, *s = buf + n, *As = buf + 2 * n, *xt = buf + 3 * n, *gt = buf + 4 * n;
    double *work = buf + 5 * n;
    double f, ft;
    int rc = obj->eval(obj->ctx, x, &f, g, err);
    res->evaluations = 1;
    if (!rc && (!isfinite(f) || !isfinite(pf_norm(g, n))))
        rc = pf_fail(err, PF_ERUNTIME, "newton: f or its gradient is not finite at the start");
    double radius = cfg->radius;
    while (!rc) {
        double ginf = pf_norm_inf(g, n), gnorm = pf_norm(g, n);
        res->grad_inf = ginf;
        if (ginf <= cfg->grad_tol) {
            res->converged = 1;
            break;
        }
        if (res->iterations >= cfg->max_iter) break;
        if (radius < 1e-15 * (1.0 + pf_norm(x, n))) {
            res->stalled = 1;
            break;
        }
        if ((rc = obj->at(obj->ctx, x, err))) break;
        pf_steihaug_info info;
        double forcing = fmin(0.5, sqrt(gnorm)) * gnorm;
        if ((rc = pf_steihaug(obj->hvp, obj->ctx, n, g, radius, forcing, cfg->max_cg, s, As, work, &info, err)))
            break;
        res->iterations++;
        res->cg_iterations += info.iterations;
        res->hvps += info.iterations;
        res->negative_curvature += info.negative;
        double pred = -(pf_dot(g, s, n) + 0.5 * pf_dot(s, As, n)), snorm = pf_norm(s, n);
        for (size_t i = 0; i < n; i++) xt[i] = x[i] + s[i];
        if ((rc = obj->eval(obj->ctx, xt, &ft, gt, err))) break;
        res->evaluations++;
        double ared = f - ft;
        if (isfinite(ft) && pred < cfg->noise * (1.0 + fabs(f))) {
            /* below f's rounding: the trapezoid rule on the gradients */
            double gs = 0.0;
            for (size_t i = 0; i < n; i++) gs += (g[i] + gt[i]) * s[i];
            ared = -0.5 * gs;
        }
        double ratio = pred > 0 && isfinite(ft) ? ared / pred : -1.0;
        if (!(ratio >= 0.25)) radius = 0.25 * snorm;
        else if (ratio > 0.75 && info.boundary) radius = fmin(2.0 * radius, cfg->max_radius);
        if (ratio > cfg->eta && isfinite(pf_norm(gt, n))) {
            memcpy(x, xt, n * sizeof *x);
            memcpy(g, gt, n * sizeof *g);
            f = ft;
            res->accepted++;
        }
        if (cfg->progress) cfg->progress(cfg->progress_ctx, res->iterations, f, pf_norm_inf(g, n), radius);
    }
    res->f = f;
    res->radius = radius;
    res->seconds = seconds_now() - t0;
    free(buf);
    return rc;
}

/* ---- extreme modes ----------------------------------------------------------------- */

int pf_objective_modes(const pf_objective *obj, const pf_lanczos_config *cfg, const double *start,
                       double *v_min, double *v_max, pf_modes *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_lanczos_config c;
    if (cfg) c = *cfg;
    else pf_lanczos_config_default(&c);
    c.k = 1;
    c.which = PF_EIG_BOTH;
    c.want_vectors = 1;
    c.start = start;
    pf_lanczos_result r;
    int rc = pf_lanczos(obj->hvp, obj->ctx, obj->n, &c, &r, err);
    if (rc) return rc;
    int last = r.n_values - 1;
    out->lambda_min = r.values[0];
    out->lambda_max = r.values[last];
    out->res_min = r.residuals[0];
    out->res_max = r.residuals[last];
    out->converged = r.all_converged;
    out->min_converged = r.converged[0];
    out->iterations = r.iterations;
    out->hvps = r.n_matvecs;
    out->seconds = r.seconds;
    if (v_min) memcpy(v_min, r.vectors, obj->n * sizeof *v_min);
    if (v_max) memcpy(v_max, r.vectors + (size_t)last * obj->n, obj->n * sizeof *v_max);
    pf_lanczos_result_free(&r);
    return PF_OK;
}

/* ---- the escape ------------------------------------------------------------------------ */

int pf_escape(const pf_objective *obj, double *x, const double *v, double lambda, double t0,
              pf_escape_result *res, pf_error *err)
{
    memset(res, 0, sizeof *res);
    size_t n = obj->n;
    if (!(lambda < 0)) return pf_fail(err, PF_EINPUT, "escape: the curvature %g is not negative", lambda);
    double *g = malloc(2 * n * sizeof *g);
    if (!g) return pf_fail(err, PF_ERUNTIME, "escape: out of memory");
    double *xt = g + n, f0, ft;
    int rc = obj->eval(obj->ctx, x, &f0, g, err);
    res->evaluations = 1;
    if (rc) goto done;
    double gv = pf_dot(g, v, n), sign = gv > 0 ? -1.0 : 1.0;
    if (!(t0 > 0)) t0 = 0.1 * fmax(1.0, pf_norm(x, n) / sqrt((double)n));
    double best_t = 0.0, best_f = f0;
    /* first find a length that lowers f at all, then grow it while f falls */
    double t = t0;
    for (int k = 0; k <= 30; k++, t *= 0.5) {
        for (size_t i = 0; i < n; i++) xt[i] = x[i] + sign * t * v[i];
        if ((rc = obj->eval(obj->ctx, xt, &ft, NULL, err))) goto done;
        res->evaluations++;
        if (isfinite(ft) && ft < best_f) {
            best_f = ft, best_t = t;
            break;
        }
    }
    for (int k = 0; best_t == t && k < 30; k++) {
        t *= 2.0;
        for (size_t i = 0; i < n; i++) xt[i] = x[i] + sign * t * v[i];
        if ((rc = obj->eval(obj->ctx, xt, &ft, NULL, err))) goto done;
        res->evaluations++;
        if (isfinite(ft) && ft < best_f) best_f = ft, best_t = t;
    }
    if (best_t > 0)
        for (size_t i = 0; i < n; i++) x[i] += sign * best_t * v[i];
    res->t = best_t;
    res->decrease = f0 - best_f;
done:
    free(g);
    return rc;
}
