/* Quasi-static beta sweeps: the grid, and the warm-started loop over it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"

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

enum { MAX_GRID = 10000000 };

int pf_grid_parse(const char *spec, double **betas, long *n, pf_error *err)
{
    *betas = NULL;
    *n = 0;
    double *v = NULL;
    long count = 0;
    if (strncmp(spec, "geom:", 5) == 0 || strchr(spec, ':')) {
        int geom = strncmp(spec, "geom:", 5) == 0;
        const char *p = spec + (geom ? 5 : 0);
        double a[3];
        for (int k = 0; k < 3; k++) {
            const char *end = strchr(p, ':');
            if (k < 2 && !end) goto bad;
            if (k == 2) end = p + strlen(p);
            if (parse_num(p, end, &a[k])) goto bad;
            p = end + (k < 2);
        }
        double start = a[0], stop = a[1];
        if (start < 0 || stop < start) goto bad;
        if (geom) {
            if (!(start > 0) || a[2] < 2 || a[2] != floor(a[2]) || a[2] > MAX_GRID) goto bad;
            count = (long)a[2];
        } else {
            double step = a[2];
            if (!(step > 0)) goto bad;
            double steps = floor((stop - start) / step + 1e-9);
            if (steps + 1 > MAX_GRID) goto bad;
            count = (long)steps + 1;
        }
        v = malloc((size_t)count * sizeof *v);
        if (!v) return pf_fail(err, PF_ERUNTIME, "out of memory for %ld grid points", count);
        for (long i = 0; i < count; i++) {
            if (geom)
                v[i] = i == count - 1 ? stop : start * pow(stop / start, (double)i / (double)(count - 1));
            else
                v[i] = start + (double)i * a[2]; /* counted, so no drift */
        }
    } else {
        long cap = 1;
        for (const char *p = spec; *p; p++) cap += *p == ',';
        v = malloc((size_t)cap * sizeof *v);
        if (!v) return pf_fail(err, PF_ERUNTIME, "out of memory for the grid");
        const char *p = spec;
        while (1) {
            const char *end = strchr(p, ',');
            if (!end) end = p + strlen(p);
            if (parse_num(p, end, &v[count]) || v[count] < 0) {
                free(v);
                goto bad;
            }
            count++;
            if (!*end) break;
            p = end + 1;
        }
    }
    qsort(v, (size_t)count, sizeof *v, cmp_double);
    long m = 0;
    for (long i = 0; i < count; i++)
        if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
    *betas = v;
    *n = m;
    return PF_OK;
bad:
    return pf_fail(err, PF_EINPUT,
                   "bad beta grid '%s': use a list (0,0.001), start:stop:step or geom:start:stop:n "
                   "with non-negative values", spec);
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
        res.epochs = tr.epochs;
        rc = pf_measure(&t->eval_work, theta, train, test, cfg.anchor, cfg.beta, &res.m, err);
        res.seconds = tr.seconds;
        if (rc) return rc;
        if (on_point && (rc = on_point(ctx, &res, theta, t, err))) return rc;
    }
    return PF_OK;
}
