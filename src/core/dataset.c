/* In-memory datasets: the plain arrays every experiment works on. */
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"

void pf_dataset_free(pf_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->labels);
    free(d->targets);
    memset(d, 0, sizeof *d);
}

int pf_dataset_out_dim(const pf_dataset *d)
{
    return d->labels ? d->n_classes : d->n_targets;
}

int pf_dataset_subset(pf_dataset *dst, const pf_dataset *src, const int *idx, size_t m,
                      pf_error *err)
{
    memset(dst, 0, sizeof *dst);
    dst->n = m;
    dst->dim = src->dim;
    dst->n_classes = src->n_classes;
    dst->n_targets = src->n_targets;
    snprintf(dst->name, sizeof dst->name, "%s", src->name);
    dst->x = malloc(m * (size_t)src->dim * sizeof(float) + 1);
    if (src->labels) dst->labels = malloc(m * sizeof(int) + 1);
    if (src->targets) dst->targets = malloc(m * (size_t)src->n_targets * sizeof(float) + 1);
    if (!dst->x || (src->labels && !dst->labels) || (src->targets && !dst->targets)) {
        pf_dataset_free(dst);
        return pf_fail(err, PF_ERUNTIME, "out of memory taking a subset of %zu samples", m);
    }
    for (size_t i = 0; i < m; i++) {
        size_t j = (size_t)idx[i];
        memcpy(dst->x + i * (size_t)src->dim, src->x + j * (size_t)src->dim,
               (size_t)src->dim * sizeof(float));
        if (src->labels) dst->labels[i] = src->labels[j];
        if (src->targets)
            memcpy(dst->targets + i * (size_t)src->n_targets,
                   src->targets + j * (size_t)src->n_targets,
                   (size_t)src->n_targets * sizeof(float));
    }
    return PF_OK;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int pf_dataset_split(const pf_dataset *src, double fraction, uint64_t seed, pf_dataset *rest,
                     pf_dataset *val, pf_error *err)
{
    memset(rest, 0, sizeof *rest);
    memset(val, 0, sizeof *val);
    if (!(fraction > 0 && fraction < 1))
        return pf_fail(err, PF_EINPUT, "validation fraction %g is not in (0, 1)", fraction);
    size_t n_val = (size_t)(fraction * (double)src->n + 0.5);
    if (n_val < 1 || n_val >= src->n)
        return pf_fail(err, PF_EINPUT, "a validation fraction of %g of %s's %zu samples leaves %s",
                       fraction, src->name, src->n, n_val < 1 ? "no validation sample" : "nothing to train on");
    if (src->n > (size_t)0x7fffffff) return pf_fail(err, PF_EINPUT, "%s: too many samples to split", src->name);
    int *idx = malloc(src->n * sizeof *idx);
    if (!idx) return pf_fail(err, PF_ERUNTIME, "out of memory splitting %s", src->name);
    for (size_t i = 0; i < src->n; i++) idx[i] = (int)i;
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    pf_rng_shuffle(&rng, idx, src->n);
    /* both parts keep the original order of their samples */
    qsort(idx, n_val, sizeof *idx, cmp_int);
    qsort(idx + n_val, src->n - n_val, sizeof *idx, cmp_int);
    int rc = pf_dataset_subset(val, src, idx, n_val, err);
    if (!rc) rc = pf_dataset_subset(rest, src, idx + n_val, src->n - n_val, err);
    free(idx);
    if (rc) {
        pf_dataset_free(val);
        return rc;
    }
    snprintf(val->name, sizeof val->name, "%.200s (validation split)", src->name);
    return PF_OK;
}

/* Move rows [lo, lo + m) of one array to its front and shrink it. */
static void *keep_rows(void *a, size_t lo, size_t m, size_t row_bytes)
{
    if (!a) return NULL;
    memmove(a, (char *)a + lo * row_bytes, m * row_bytes);
    void *shrunk = realloc(a, m * row_bytes + 1);
    return shrunk ? shrunk : a;
}

int pf_dataset_shard(pf_dataset *d, size_t n_keep, int rank, int size, pf_error *err)
{
    if (size < 1 || rank < 0 || rank >= size)
        return pf_fail(err, PF_EINPUT, "share %d of %d does not exist", rank, size);
    size_t n = n_keep ? n_keep : d->n;
    if (n > d->n) return pf_fail(err, PF_EINPUT, "%s has %zu samples, not %zu", d->name, d->n, n);
    size_t lo = n * (size_t)rank / (size_t)size, hi = n * (size_t)(rank + 1) / (size_t)size;
    if (n < (size_t)size) /* some share would be empty: the same answer on every rank */
        return pf_fail(err, PF_EINPUT, "%zu samples of %s cannot be shared among %d processes", n,
                       d->name, size);
    size_t m = hi - lo;
    d->x = keep_rows(d->x, lo, m, (size_t)d->dim * sizeof(float));
    d->labels = keep_rows(d->labels, lo, m, sizeof(int));
    d->targets = keep_rows(d->targets, lo, m, (size_t)d->n_targets * sizeof(float));
    d->n = m;
    return PF_OK;
}
