/* Evaluation over whole datasets in large sgemm blocks, reductions in double. */
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"
#include "../core/sparse.h"
#include "../core/team.h"

/* Each team member evaluates one contiguous share of the samples with its
 * own workspace; counts and loss sums are combined in member order. A
 * sparse input layer reads the one W_0^T and background term made before
 * the pass. */
typedef struct {
    pf_work *works;
    const float *theta;
    const pf_dataset *d;
    const pf_sparse_set *set;   /* NULL: dense input layer */
    const float *wt, *c;
    unsigned char *hit[PF_MAX_THREADS];
    double loss[PF_MAX_THREADS];
    long *seen, *right;   /* (n_threads, n_classes) */
} eval_ctx;

static void eval_task(void *vctx, int tid, int nt)
{
    eval_ctx *c = vctx;
    pf_work *w = &c->works[tid];
    const pf_dataset *d = c->d;
    int K = w->arch->sizes[w->arch->n_layers], C = d->n_classes;
    size_t lo, hi;
    pf_share(d->n, tid, nt, &lo, &hi);
    double total = 0.0;
    long *seen = c->seen + (size_t)tid * C, *right = c->right + (size_t)tid * C;
    for (size_t start = lo; start < hi; start += (size_t)w->max_batch) {
        int B = (int)(hi - start < (size_t)w->max_batch ? hi - start : (size_t)w->max_batch);
        const int *lab = d->labels ? d->labels + start : NULL;
        pf_sparse_view v = c->set ? pf_sparse_range(c->set, start) : (pf_sparse_view){0};
        pf_forward_block(w, c->theta, d->x + start * (size_t)d->dim, B, c->set ? &v : NULL, c->wt,
                         c->c);
        total += pf_loss_value(w, lab, d->targets ? d->targets + start * (size_t)K : NULL, B,
                               lab ? c->hit[tid] : NULL) * B;
        if (!lab) continue;
        for (int i = 0; i < B; i++) {
            seen[lab[i]]++;
            right[lab[i]] += c->hit[tid][i];
        }
    }
    c->loss[tid] = total;
}

/* Data-parallel: the loss sum, the sample count and the per-class counts
 * summed over the processes (counts are exact in double up to 2^53). */
static int reduce_counts(pf_ctx *ctx, double *total, double *n, long *seen, long *right, int C,
                         pf_error *err)
{
    double *buf = malloc((2 + 2 * (size_t)C) * sizeof *buf);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "out of memory");
    buf[0] = *total, buf[1] = *n;
    for (int j = 0; j < C; j++) buf[2 + j] = (double)seen[j], buf[2 + C + j] = (double)right[j];
    int rc = pf_ctx_reduce(ctx, buf, 2 + 2 * (size_t)C, err);
    if (!rc) {
        *total = buf[0], *n = buf[1];
        for (int j = 0; j < C; j++) seen[j] = (long)buf[2 + j], right[j] = (long)buf[2 + C + j];
    }
    free(buf);
    return rc;
}

int pf_evaluate(pf_work *w, const float *theta, const pf_dataset *d, pf_eval *out, pf_error *err)
{
    const pf_arch *A = w->arch;
    int K = A->sizes[A->n_layers];
    memset(out, 0, sizeof *out);
    out->n = d->n;
    if (d->n == 0) return pf_fail(err, PF_EINPUT, "dataset %s is empty", d->name);
    if (d->dim != A->in_dim)
        return pf_fail(err, PF_EINPUT, "dataset %s has %d features but the model takes %d",
                       d->name, d->dim, A->in_dim);
    if (d->labels && d->n_classes > K)
        return pf_fail(err, PF_EINPUT, "dataset %s has %d classes but the model outputs %d",
                       d->name, d->n_classes, K);
    if (d->targets && d->n_targets != K)
        return pf_fail(err, PF_EINPUT, "dataset %s has %d targets but the model outputs %d",
                       d->name, d->n_targets, K);
    if (d->labels && d->n_classes > PF_MAX_CLASSES)
        return pf_fail(err, PF_EINPUT, "dataset %s has %d classes; at most %d are supported",
                       d->name, d->n_classes, PF_MAX_CLASSES);
    int nt = pf_ctx_threads(w->ctx), C = d->labels ? d->n_classes : 0;
    pf_work works[PF_MAX_THREADS];
    eval_ctx c = {works, theta, d, NULL, NULL, NULL, {0}, {0}, NULL, NULL};
    int use;
    c.set = pf_sparse_find(w, d->x, d->n, d->dim, &use);
    pf_sparse_scratch *s = use ? pf_sparse_scratch_get(w) : NULL;
    if (use && (!c.set || !s))
        return pf_fail(err, PF_ERUNTIME, "out of memory for the sparse input layer of %s", d->name);
    if (c.set) {
        pf_sparse_weights(A, theta, c.set->background, s->wt, s->c);
        c.wt = s->wt;
        c.c = s->c;
    }
    works[0] = *w;
    int made = 1, rc = PF_OK;
    for (; made < nt; made++)
        if (pf_work_init(&works[made], w->ctx, A, w->max_batch, err)) break;
    c.seen = calloc((size_t)nt * C + 1, sizeof *c.seen);
    c.right = calloc((size_t)nt * C + 1, sizeof *c.right);
    for (int k = 0; k < nt; k++) c.hit[k] = malloc((size_t)w->max_batch);
    int ok = made == nt && c.seen && c.right;
    for (int k = 0; k < nt; k++) ok = ok && c.hit[k];
    if (!ok) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory evaluating %s", d->name);
        goto done;
    }
    if (nt == 1)
        eval_task(&c, 0, 1);
    else
        pf_parallel(w->ctx, eval_task, &c);
    double total = 0.0;
    long correct = 0;
    for (int k = 0; k < nt; k++) total += c.loss[k];
    for (int k = 1; k < nt; k++)
        for (int j = 0; j < C; j++) {
            c.seen[j] += c.seen[(size_t)k * C + j];
            c.right[j] += c.right[(size_t)k * C + j];
        }
    double n_all = (double)d->n;
    if (pf_ctx_sharded(w->ctx) && (rc = reduce_counts(w->ctx, &total, &n_all, c.seen, c.right, C, err)))
        goto done;
    out->n = (size_t)n_all;
    out->loss = total / n_all;
    if (d->labels) {
        out->n_classes = C;
        for (int j = 0; j < C; j++) {
            long seen = c.seen[j], right = c.right[j];
            correct += right;
            out->class_accuracy[j] = seen ? 100.0 * (double)right / (double)seen : -1.0;
        }
        out->accuracy = 100.0 * (double)correct / n_all;
    }
done:
    for (int k = 1; k < made; k++) pf_work_free(&works[k]);
    for (int k = 0; k < nt; k++) free(c.hit[k]);
    free(c.seen);
    free(c.right);
    return rc;
}

int pf_measure(pf_work *w, const float *theta, const pf_dataset *train, const pf_dataset *test,
               const float *anchor, double beta, pf_metrics *m, pf_error *err)
{
    return pf_measure_split(w, theta, train, NULL, test, anchor, beta, m, err);
}

int pf_measure_split(pf_work *w, const float *theta, const pf_dataset *train, const pf_dataset *val,
                     const pf_dataset *test, const float *anchor, double beta, pf_metrics *m,
                     pf_error *err)
{
    memset(m, 0, sizeof *m);
    m->beta = beta;
    int rc = pf_evaluate(w, theta, train, &m->train, err);
    if (!rc && val && val->n) rc = pf_evaluate(w, theta, val, &m->val, err);
    if (!rc && test) rc = pf_evaluate(w, theta, test, &m->test, err);
    if (rc) return rc;
    m->r = pf_distance(theta, anchor, w->arch->n_params);
    m->reg_loss = m->train.loss + 0.5 * beta * m->r * m->r;
    return PF_OK;
}
