/* Phases (plateaus between transitions), their encoded class sets, and the
 * hierarchy of nested accuracy basins merged across sweeps.
 *
 * Per-class accuracies flicker from point to point with minibatch noise, so
 * a class counts as encoded on a plateau when its accuracy averaged over the
 * whole plateau is above the threshold and it is above the threshold on
 * most of the plateau's points (pf_encoding): a class held only at some
 * betas is partial, not encoded. A plateau whose mean train loss is
 * within 0.02 of ln K (cross-entropy) is the trivial phase: the model says
 * one class whatever the input, which encodes nothing even though that one
 * class scores 100%.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"

int pf_set_has(const uint64_t *set, int k) { return (int)((set[k / 64] >> (k % 64)) & 1u); }

static void set_add(uint64_t *set, int k) { set[k / 64] |= (uint64_t)1 << (k % 64); }

int pf_set_count(const uint64_t *set, int n_classes)
{
    int c = 0;
    for (int k = 0; k < n_classes; k++) c += pf_set_has(set, k);
    return c;
}

void pf_set_str(const uint64_t *set, int n_classes, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "{");
    int first = 1;
    for (int k = 0; k < n_classes && len < n; k++)
        if (pf_set_has(set, k)) {
            len += (size_t)snprintf(buf + len, n - len, "%s%d", first ? "" : ",", k);
            first = 0;
        }
    if (len < n) snprintf(buf + len, n - len, "}");
}

/* a strictly inside b */
static int set_proper_subset(const uint64_t *a, const uint64_t *b, int words)
{
    int equal = 1;
    for (int w = 0; w < words; w++) {
        if (a[w] & ~b[w]) return 0;
        if (a[w] != b[w]) equal = 0;
    }
    return !equal;
}

void pf_encoding_default(pf_encoding *e)
{
    e->threshold = 50.0;
    e->fraction = 0.8;
}

int pf_phases(const double *beta, const double *test_acc, const double *train_loss, const double *r,
              const double *class_acc, long n, int n_classes, const pf_transition *t, long nt,
              const pf_encoding *enc, pf_loss loss, pf_phase **phases, pf_error *err)
{
    *phases = NULL;
    if (n < 1) return pf_fail(err, PF_EINPUT, "no points to split into phases");
    if (!(enc->fraction >= 0 && enc->fraction <= 1))
        return pf_fail(err, PF_EINPUT, "encoded fraction %g is not in [0, 1]", enc->fraction);
    if (n_classes > PF_MAX_CLASSES) return pf_fail(err, PF_EINPUT, "too many classes");
    pf_phase *ph = calloc((size_t)nt + 1, sizeof *ph);
    if (!ph) return pf_fail(err, PF_ERUNTIME, "out of memory");
    for (long p = 0; p <= nt; p++) {
        long first = p == 0 ? 0 : t[p - 1].above, last = p == nt ? n - 1 : t[p].below;
        if (first < 0 || last >= n || last < first) {
            free(ph);
            return pf_fail(err, PF_EINPUT, "transitions out of order or out of range");
        }
        pf_phase *q = &ph[p];
        q->first = first;
        q->last = last;
        q->beta_from = beta[first];
        q->beta_to = beta[last];
        q->n_classes = n_classes;
        double cnt = (double)(last - first + 1);
        for (long i = first; i <= last; i++) {
            q->mean_accuracy += test_acc[i] / cnt;
            q->mean_loss += train_loss[i] / cnt;
            q->mean_r += r[i] / cnt;
            for (int k = 0; k < n_classes; k++) {
                double a = class_acc[i * n_classes + k];
                q->class_mean[k] += a / cnt;
                q->class_above[k] += (a > enc->threshold) / cnt;
            }
        }
        q->trivial = loss == PF_LOSS_CE && n_classes > 1 &&
                     fabs(q->mean_loss - log((double)n_classes)) < 0.02;
        /* the fraction with a little slack: 4 of 5 points is 0.8 however it rounds */
        if (!q->trivial)
            for (int k = 0; k < n_classes; k++) {
                if (q->class_mean[k] > enc->threshold && q->class_above[k] >= enc->fraction - 1e-9)
                    set_add(q->encoded, k);
                else if (q->class_above[k] >= 0.25)
                    set_add(q->partial, k);
            }
    }
    *phases = ph;
    return PF_OK;
}

void pf_hierarchy_free(pf_hierarchy *h)
{
    free(h->nodes);
    memset(h, 0, sizeof *h);
}

static int cmp_size_desc(const void *a, const void *b)
{
    const pf_basin *x = a, *y = b;
    if (x->size != y->size) return y->size - x->size;
    return memcmp(y->set, x->set, sizeof x->set) < 0 ? -1 : 1;
}

int pf_hierarchy_build(const pf_phase *const *runs, const long *counts, int n_runs, int n_classes,
                       pf_hierarchy *h, pf_error *err)
{
    memset(h, 0, sizeof *h);
    long total = 0;
    for (int r = 0; r < n_runs; r++) total += counts[r];
    h->nodes = calloc((size_t)(total > 0 ? total : 1), sizeof *h->nodes);
    if (!h->nodes) return pf_fail(err, PF_ERUNTIME, "out of memory");
    h->n_classes = n_classes;
    h->consistent = 1;
    const int words = PF_MAX_CLASSES / 64;
    for (int r = 0; r < n_runs; r++)
        for (long p = 0; p < counts[r]; p++) {
            const pf_phase *q = &runs[r][p];
            /* along a sweep each phase should sit inside the one before it
             * (up) or contain it (down); either way, a chain of inclusions */
            if (p > 0) {
                const uint64_t *a = runs[r][p - 1].encoded, *b = q->encoded;
                if (memcmp(a, b, sizeof q->encoded) != 0 && !set_proper_subset(a, b, words) &&
                    !set_proper_subset(b, a, words))
                    h->consistent = 0;
            }
            int found = -1;
            for (int i = 0; i < h->n; i++)
                if (memcmp(h->nodes[i].set, q->encoded, sizeof q->encoded) == 0) found = i;
            if (found < 0) {
                found = h->n++;
                memcpy(h->nodes[found].set, q->encoded, sizeof q->encoded);
                h->nodes[found].size = pf_set_count(q->encoded, n_classes);
                h->nodes[found].beta_min = q->beta_from;
                h->nodes[found].beta_max = q->beta_to;
            }
            pf_basin *b = &h->nodes[found];
            b->seen++;
            b->beta_min = fmin(b->beta_min, q->beta_from);
            b->beta_max = fmax(b->beta_max, q->beta_to);
        }
    qsort(h->nodes, (size_t)h->n, sizeof *h->nodes, cmp_size_desc);
    /* parent: the smallest strictly larger set that contains the node */
    for (int i = 0; i < h->n; i++) {
        h->nodes[i].parent = -1;
        for (int j = i - 1; j >= 0; j--)
            if (set_proper_subset(h->nodes[i].set, h->nodes[j].set, words) &&
                (h->nodes[i].parent < 0 || h->nodes[j].size < h->nodes[h->nodes[i].parent].size))
                h->nodes[i].parent = j;
    }
    return PF_OK;
}
