/* Quasi-static beta sweeps: the grid, and the warm-started loop over it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_num(const char *s, const char *end, double *v)
{
    char buf[64];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    errno = 0;
    *v = strtod(buf, &e);
    return (*e || errno || !isfinite(*v)) ? -1 : 0;
}

/* more points than any sweep can train (the paper's has 451), refused
 * before they are made */
enum { MAX_GRID = 1000000 };

/* Append one part of a grid spec, [p, end): a number, start:stop:step or
 * geom:start:stop:n. Returns -1 if it is malformed, PF_ERUNTIME (with err
 * filled) if memory runs out. */
static int grid_part(const char *p, const char *end, double **v, long *count, long *cap, pf_error *err)
{
    int geom = end - p > 5 && strncmp(p, "geom:", 5) == 0;
    int range = geom || memchr(p, ':', (size_t)(end - p)) != NULL;
    double a[3] = {0, 0, 0};
    long add = 1;
    if (range) {
        const char *q = p + (geom ? 5 : 0);
        for (int k = 0; k < 3; k++) {
            const char *e = k < 2 ? memchr(q, ':', (size_t)(end - q)) : end;
            if (!e || parse_num(q, e, &a[k])) return -1;
            q = e + 1;
        }
        if (a[0] < 0 || a[1] < a[0]) return -1;
        if (geom) {
            if (!(a[0] > 0) || a[2] < 2 || a[2] != floor(a[2])) return -1;
            if (a[2] > MAX_GRID) return -2;
            add = (long)a[2];
        } else {
            if (!(a[2] > 0)) return -1;
            double steps = floor((a[1] - a[0]) / a[2] + 1e-9);
            if (steps + 1 > MAX_GRID) return -2;
            add = (long)steps + 1;
        }
    } else if (parse_num(p, end, &a[0]) || a[0] < 0) {
        return -1;
    }
    if (*count + add > MAX_GRID) return -2;
    if (*count + add > *cap) {
        long c = *cap ? *cap : 16;
        while (c < *count + add) c *= 2;
        double *g = realloc(*v, (size_t)c * sizeof *g);
        if (!g) return pf_fail(err, PF_ERUNTIME, "out of memory for %ld grid points", *count + add);
        *v = g;
        *cap = c;
    }
    for (long i = 0; i < add; i++) {
        double x = a[0];
        if (geom) x = i == add - 1 ? a[1] : a[0] * pow(a[1] / a[0], (double)i / (double)(add - 1));
        else if (range) x = a[0] + (double)i * a[2]; /* counted, so no drift */
        (*v)[(*count)++] = x;
    }
    return PF_OK;
}

int pf_grid_parse(const char *spec, double **betas, long *n, pf_error *err)
{
    *betas = NULL;
    *n = 0;
    double *v = NULL;
    long count = 0, cap = 0;
    const char *p = spec;
    while (1) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        int rc = grid_part(p, end, &v, &count, &cap, err);
        if (rc) {
            free(v);
            if (rc > 0) return rc;
            if (rc == -2)
                return pf_fail(err, PF_EINPUT, "beta grid '%.60s%s': more than %d points", spec,
                               strlen(spec) > 60 ? "..." : "", (int)MAX_GRID);
            return pf_fail(err, PF_EINPUT,
                           "bad beta grid '%s': use a list of values and ranges, each a number, "
                           "start:stop:step or geom:start:stop:n, with non-negative values", spec);
        }
        if (!*end) break;
        p = end + 1;
    }
    qsort(v, (size_t)count, sizeof *v, cmp_double);
    long m = 0;
    for (long i = 0; i < count; i++)
        if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
    *betas = v;
    *n = m;
    return PF_OK;
}

int pf_grid_expand(const double *betas, long n, const char *direction, pf_grid_point **points,
                   long *n_points, pf_error *err)
{
    int up = strcmp(direction, "up") == 0, down = strcmp(direction, "down") == 0;
    int loop = strcmp(direction, "loop") == 0;
    if (!up && !down && !loop)
        return pf_fail(err, PF_EINPUT, "bad direction '%s': use up, down or loop", direction);
    long total = loop ? 2 * n - 1 : n;
    pf_grid_point *p = malloc((size_t)(total > 0 ? total : 1) * sizeof *p);
    if (!p) return pf_fail(err, PF_ERUNTIME, "out of memory for the grid");
    long k = 0;
    if (up || loop)
        for (long i = 0; i < n; i++) p[k++] = (pf_grid_point){betas[i], +1};
    if (down)
        for (long i = n - 1; i >= 0; i--) p[k++] = (pf_grid_point){betas[i], -1};
    if (loop)
        for (long i = n - 2; i >= 0; i--) p[k++] = (pf_grid_point){betas[i], -1};
    *points = p;
    *n_points = total;
    return PF_OK;
}

void pf_point_from_train(pf_point_result *res, const pf_train_result *tr, double beta)
{
    res->epochs = tr->epochs;
    res->diverged = tr->diverged;
    res->start_reg_loss = tr->start_reg_loss;
    res->final_reg_loss = tr->final_reg_loss;
    res->seconds = tr->seconds;
    if (!tr->has_cert) return;
    const pf_certificate *c = &tr->cert;
    res->has_certificate = 1;
    res->grad_norm = c->grad_inf;
    res->certified = c->certified;
    res->escapes = c->escapes;
    res->certify_eps = c->eps;
    res->certify_seconds = c->seconds;
    res->certify_hvps = c->hvps;
    res->has_hessian = 1;
    res->lambda_min_E = c->lambda_min - beta;
    res->lambda_max_E = c->lambda_max - beta;
    res->hessian_converged = c->lanczos_converged;
}

int pf_sweep(pf_trainer *t, float *theta, const pf_dataset *train, const pf_dataset *test,
             const pf_train_config *base, const pf_grid_point *points, long n, long start,
             pf_point_fn on_point, void *ctx, pf_error *err)
{
    for (long i = start; i < n; i++) {
        pf_train_config cfg = *base;
        cfg.beta = points[i].beta;
        pf_train_result tr;
        int rc = pf_train_beta(t, theta, train, &cfg, &tr, err);
        if (rc) return rc;
        pf_point_result res;
        memset(&res, 0, sizeof res);
        res.index = i;
        res.point = points[i];
        pf_point_from_train(&res, &tr, cfg.beta);
        rc = pf_measure(&t->eval_work, theta, train, test, cfg.anchor, cfg.beta, &res.m, err);
        if (rc) return rc;
        if (on_point && (rc = on_point(ctx, &res, theta, t, err))) return rc;
    }
    return PF_OK;
}
