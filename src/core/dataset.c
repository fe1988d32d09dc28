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
