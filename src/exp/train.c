/* Training at one beta: the paper protocol's inner loop.
 *
 * Minibatch optimizers: each epoch draws a fresh permutation from the
 * trainer's RNG (the identity shuffled, as torch.randperm does), steps through
 * it in batches (the last one may be short, like DataLoader's default), and
 * adds beta*(theta - anchor) to every minibatch gradient. The epoch's score
 * is the mean of its minibatch losses; training stops when that score has not
 * improved for `patience` epochs, or after max_epochs. The final state is
 * kept, not the best one.
 * L-BFGS and Newton-CG (certify.c): full-batch, deterministic; max_epochs
 * bounds their iterations. With cfg->certify every point is then checked
 * to be a minimum (certify.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pathfinder/exp.h"
#include "exp/results.h"
#include "../core/sparse.h"
#include "../core/stages.h"
#include "../core/team.h"

double pf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pf_train_config_paper(pf_train_config *c)
{
    memset(c, 0, sizeof *c);
    pf_certificate_config_default(&c->certificate);
    pf_opt_config_default(&c->opt, PF_OPT_ADAM);
    c->batch = 64;
    c->max_epochs = 50;
    c->patience = 5;
    c->reset_optimizer = 1;
    c->grad_tol = 1e-5;
    c->ftol = 1e-9;
}

void pf_train_config_default(pf_train_config *c, pf_opt_kind kind)
{
    pf_train_config_paper(c);
    pf_opt_config_default(&c->opt, kind);
    if (kind == PF_OPT_LBFGS || kind == PF_OPT_NEWTON) c->max_epochs = PF_LBFGS_MAX_ITER;
    if (kind == PF_OPT_NEWTON) c->batch = 0, c->grad_tol = PF_NEWTON_GRAD_TOL;
    pf_certificate_config_default(&c->certificate);
}

uint64_t pf_shuffle_seed(uint64_t seed) { return seed ^ 0x53485546464c45ULL; }

enum { EVAL_BLOCK = 2000 };

int pf_trainer_init(pf_trainer *t, pf_ctx *ctx, const pf_arch *arch, const pf_opt_config *opt,
                    int batch, size_t n_train, uint64_t seed, pf_error *err)
{
    memset(t, 0, sizeof *t);
    int rc = pf_check_memory(arch, batch, n_train, err);
    if (rc) return rc;
    t->arch = arch;
    t->n = n_train;
    t->batch = batch > 0 ? batch : 0;
    t->ctx = ctx;
    t->n_threads = pf_ctx_threads(ctx);
    if ((rc = pf_work_init(&t->work, ctx, arch, t->batch ? t->batch : 1, err))) goto fail;
    t->grad = pf_line_alloc(arch->n_params * sizeof(float));
    if (!t->grad) goto oom;
    if ((rc = pf_work_init(&t->eval_work, ctx, arch, EVAL_BLOCK, err)) ||
        (rc = pf_optim_init(&t->optim, opt, arch->n_params, err)))
        goto fail;
    /* evaluation finds the training set's sparse form where training left it */
    if (pf_sparse_share_cache(&t->eval_work, &t->work)) goto oom;
    t->perm = malloc((n_train ? n_train : 1) * sizeof *t->perm);
    if (!t->perm) goto oom;
    pf_rng_seed(&t->rng, seed);
    return PF_OK;
oom:
    rc = pf_fail(err, PF_ERUNTIME, "out of memory for the trainer");
fail:
    pf_trainer_free(t);
    return rc;
}

int pf_trainer_get_state(const pf_trainer *t, pf_trainer_state *s, pf_error *err)
{
    memset(s, 0, sizeof *s);
    const pf_optim *o = &t->optim;
    s->kind = o->cfg.kind;
    s->step = o->step;
    s->rng = t->rng;
    s->n = o->n;
    size_t bytes = o->n * sizeof(float);
    if (o->m && !(s->m = malloc(bytes ? bytes : 1))) goto oom;
    if (o->v && !(s->v = malloc(bytes ? bytes : 1))) goto oom;
    if (o->m) memcpy(s->m, o->m, bytes);
    if (o->v) memcpy(s->v, o->v, bytes);
    const double *modes;
    if (pf_second_order_modes(t, &modes)) {
        if (!(s->modes = malloc(2 * o->n * sizeof *s->modes))) goto oom;
        memcpy(s->modes, modes, 2 * o->n * sizeof *s->modes);
    }
    return PF_OK;
oom:
    pf_trainer_state_free(s);
    return pf_fail(err, PF_ERUNTIME, "out of memory copying the optimizer state");
}

int pf_trainer_set_state(pf_trainer *t, const pf_trainer_state *s, pf_error *err)
{
    pf_optim *o = &t->optim;
    if (s->kind != o->cfg.kind)
        return pf_fail(err, PF_EINPUT, "the state is of a %s optimizer, the trainer runs %s",
                       pf_opt_name(s->kind), pf_opt_name(o->cfg.kind));
    if (s->n != o->n)
        return pf_fail(err, PF_EINPUT, "the state is for %zu parameters, the model has %zu", s->n, o->n);
    if ((s->m != NULL) != (o->m != NULL) || (s->v != NULL) != (o->v != NULL))
        return pf_fail(err, PF_EINPUT, "the state's optimizer buffers do not match a %s optimizer",
                       pf_opt_name(o->cfg.kind));
    int rc = pf_second_order_set_modes(t, s->modes, err);
    if (rc) return rc;
    o->step = s->step;
    if (o->m) memcpy(o->m, s->m, o->n * sizeof(float));
    if (o->v) memcpy(o->v, s->v, o->n * sizeof(float));
    t->rng = s->rng;
    return PF_OK;
}

void pf_trainer_state_free(pf_trainer_state *s)
{
    free(s->m);
    free(s->v);
    free(s->modes);
    s->m = s->v = NULL;
    s->modes = NULL;
}

void pf_trainer_free(pf_trainer *t)
{
    pf_work_free(&t->work);
    free(t->grad);
    pf_work_free(&t->eval_work);
    pf_optim_free(&t->optim);
    free(t->perm);
    pf_second_order_free(t->second);
    free(t->anchor_t);
    free(t->c0);
    free(t->swap);
    free(t->theta_line);
    free(t->xrows);
    free(t->stage_grads);
    free(t->cursor);
    free(t->gblock);
    if (t->epoch_rows) {
        free(t->epoch_rows->row_ptr), free(t->epoch_rows->col), free(t->epoch_rows->val);
        free(t->epoch_rows);
    }
    memset(t, 0, sizeof *t);
}

/* One minibatch step, run by every team member. A member owns a share of
 * the batch rows for the forward pass, the loss and the deltas, which need
 * nothing of the other rows; after the one barrier (the gradient sums over
 * every row) it owns a share of every layer's units: their gradient rows
 * and the optimizer step on those units' parameters, so the slices of the
 * gradient and of the optimizer state it touches stay in its cache. No
 * partial gradients are summed. */
typedef struct {
    pf_trainer *t;
    float *theta;
    const pf_dataset *d;
    const pf_train_config *cfg;
    size_t start;
    int B;
    const pf_sparse_set *set;   /* sparse input layer (theta's held transposed), or NULL */
    const float *anchor;        /* cfg->anchor, or anchor_t on the sparse path */
} step_ctx;

/* Labels and targets of the member's rows [lo, hi) of the batch. */
static void gather_targets(pf_trainer *t, const pf_dataset *d, size_t start, size_t lo, size_t hi)
{
    pf_work *w = &t->work;
    int K = t->arch->sizes[t->arch->n_layers];
    for (size_t i = lo; i < hi; i++) {
        size_t j = (size_t)t->perm[start + i];
        if (d->labels) w->lbuf[i] = d->labels[j];
        if (d->targets) memcpy(w->ybuf + i * K, d->targets + j * K, (size_t)K * sizeof(float));
    }
}

/* Rows [lo, hi) from the forward pass of layers [l0, L) to the deltas of
 * layer 0, then the barrier. */
static void step_rows(step_ctx *c, int tid, int l0, size_t lo, size_t hi)
{
    pf_trainer *t = c->t;
    const pf_arch *A = t->arch;
    pf_work *w = &t->work;
    int L = A->n_layers;
    for (int l = l0; l < L; l++) pf_forward_rows(w, c->theta, w->xbuf, l, (int)lo, (int)hi);
    t->part_loss[tid] = pf_output_delta_rows(w, c->d->labels ? w->lbuf : NULL,
                                             c->d->targets ? w->ybuf : NULL, (int)lo, (int)hi,
                                             (double)c->B);
    for (int l = L - 1; l > 0; l--) pf_delta_rows(w, c->theta, l, (int)lo, (int)hi);
    pf_barrier();
}

/* Gradient and optimizer step of the member's units of layers [l0, L),
 * with the batch's inputs x. */
static void step_update(step_ctx *c, int tid, int nt, int l0, const float *x)
{
    pf_trainer *t = c->t;
    const pf_arch *A = t->arch;
    pf_work *w = &t->work;
    const float *grads[1] = {t->grad};
    size_t lo, hi;
    for (int l = l0; l < A->n_layers; l++) {
        int n_in = A->sizes[l];
        pf_share((size_t)A->sizes[l + 1], tid, nt, &lo, &hi);
        pf_weight_grad(w, x, c->B, l, (int)lo, (int)hi, t->grad, 1);
        size_t wo = A->w_off[l];
        pf_optim_update(&t->optim, c->theta, grads, 1, c->anchor, c->cfg->beta, wo + lo * n_in,
                        wo + hi * n_in);
        if (A->bias)
            pf_optim_update(&t->optim, c->theta, grads, 1, c->anchor, c->cfg->beta,
                            A->b_off[l] + lo, A->b_off[l] + hi);
    }
}

static void step_task(void *vctx, int tid, int nt)
{
    step_ctx *c = vctx;
    pf_trainer *t = c->t;
    const pf_dataset *d = c->d;
    pf_work *w = &t->work;
    int dim = d->dim;
    size_t lo, hi;
    pf_share((size_t)c->B, tid, nt, &lo, &hi);
    gather_targets(t, d, c->start, lo, hi);
    if (nt == 1) {
        for (size_t i = lo; i < hi; i++) {
            size_t j = (size_t)t->perm[c->start + i];
            memcpy(w->xbuf + i * dim, d->x + j * dim, (size_t)dim * sizeof(float));
        }
        step_rows(c, tid, 0, lo, hi);
        step_update(c, tid, 1, 0, w->xbuf);
        return;
    }
    /* The input layer by the member's units, over every row, from a copy
     * of the whole batch of its own: it reads only its own rows of W_0,
     * the ones its step writes, and no input line another member wrote.
     * By rows, every member read every line of W_0 the others had just
     * written, and each write of the next step waited for the other core
     * to let its copy go (the Adam update 2.2x slower at two threads). */
    float *x = t->xrows + (size_t)tid * (size_t)t->batch * (size_t)dim;
    for (int i = 0; i < c->B; i++) {
        size_t j = (size_t)t->perm[c->start + (size_t)i];
        memcpy(x + (size_t)i * dim, d->x + j * dim, (size_t)dim * sizeof(float));
    }
    size_t u0, u1;
    pf_share((size_t)t->arch->sizes[1], tid, nt, &u0, &u1);
    pf_forward_cols(w, c->theta, x, c->B, 0, (int)u0, (int)u1);
    pf_barrier();
    step_rows(c, tid, 1, lo, hi);
    step_update(c, tid, nt, 0, x);
}

/* A convolutional model. A member runs its rows through the stages and
 * the linear layers, then back down to the input, the stages' gradient of
 * its rows into a buffer of its own; after the barrier it owns a share of
 * every linear layer's units as above, and a share of the stages'
 * parameters, whose gradient it sums over the members in member order. */
static void step_task_cnn(void *vctx, int tid, int nt)
{
    step_ctx *c = vctx;
    pf_trainer *t = c->t;
    const pf_arch *A = t->arch;
    const pf_dataset *d = c->d;
    pf_work *w = &t->work;
    int dim = d->dim, L = A->n_layers;
    size_t lo, hi, P = pf_stage_params(A);
    pf_share((size_t)c->B, tid, nt, &lo, &hi);
    gather_targets(t, d, c->start, lo, hi);
    for (size_t i = lo; i < hi; i++) {
        size_t j = (size_t)t->perm[c->start + i];
        memcpy(w->xbuf + i * dim, d->x + j * dim, (size_t)dim * sizeof(float));
    }
    pf_stages_forward(w, c->theta, w->xbuf, (int)lo, (int)hi, tid);
    const float *feat = pf_fc_input(w, w->xbuf);
    for (int l = 0; l < L; l++) pf_forward_rows(w, c->theta, feat, l, (int)lo, (int)hi);
    t->part_loss[tid] = pf_output_delta_rows(w, d->labels ? w->lbuf : NULL,
                                             d->targets ? w->ybuf : NULL, (int)lo, (int)hi,
                                             (double)c->B);
    for (int l = L - 1; l > 0; l--) pf_delta_rows(w, c->theta, l, (int)lo, (int)hi);
    pf_feature_delta_rows(w, c->theta, (int)lo, (int)hi);
    float *g = nt > 1 ? t->stage_grads + (size_t)tid * P : t->grad;
    pf_stages_backward(w, c->theta, w->xbuf, (int)lo, (int)hi, g, 1, tid);
    pf_barrier();
    step_update(c, tid, nt, 0, feat);
    size_t plo, phi;
    pf_share(P, tid, nt, &plo, &phi);
    if (nt > 1)
        for (size_t i = plo; i < phi; i++) {
            float s = t->stage_grads[i];
            for (int k = 1; k < nt; k++) s += t->stage_grads[(size_t)k * P + i];
            t->grad[i] = s;
        }
    const float *grads[1] = {t->grad};
    pf_optim_update(&t->optim, c->theta, grads, 1, c->anchor, c->cfg->beta, plo, phi);
}

/* Member k's units [*o0, *o1) of the input layer, in whole cache lines,
 * and where its panel of W_0^T (sizes[0], *o1 - *o0) starts in a block of
 * the input layer's weights (theta, a moment, the anchor). */
static size_t panel_of(const pf_arch *A, int k, int nt, size_t *o0, size_t *o1)
{
    pf_share_lines((size_t)A->sizes[1], k, nt, o0, o1);
    return *o0 * (size_t)A->sizes[0];
}

/* The same with a sparse input layer: no inputs are copied (the member's
 * rows are views of the training set's sparse rows, by feature in its
 * CSC), and the input layer's weights are W_0^T in one panel per member
 * (sparse_layout): a member's units of every pixel, side by side in memory
 * that no other member touches. Its step also refreshes its share of
 * c0 = W_0 b + b_0. */
static void step_task_sparse(void *vctx, int tid, int nt)
{
    step_ctx *c = vctx;
    pf_trainer *t = c->t;
    const pf_arch *A = t->arch;
    pf_work *w = &t->work;
    int B = c->B;
    size_t lo, hi, o0, o1;
    pf_share((size_t)B, tid, nt, &lo, &hi);
    gather_targets(t, c->d, c->start, lo, hi);
    pf_sparse_view v = pf_sparse_range(t->epoch_rows, c->start);
    /* the members' units in whole cache lines of every row */
    size_t at = panel_of(A, tid, nt, &o0, &o1);
    if (nt > 1) {
        /* the input layer by the member's units, over every row: it reads
         * only its own columns of W_0^T, the ones its step writes, so no
         * weight line goes from core to core (by rows, every member read
         * every line the others had just written); the rows of the layers
         * above wait for all the units */
        pf_sparse_forward0(w, &v, B, c->theta + A->w_off[0] + at, o1 - o0, t->c0,
                           (int)o0, (int)o1);
        pf_barrier();
    } else {
        pf_sparse_forward0_rows(w, &v, (int)lo, (int)hi, c->theta + A->w_off[0], t->c0);
    }
    step_rows(c, tid, 1, lo, hi);
    pf_sparse_step0(w, &v, B, &t->optim, c->theta, c->anchor, c->cfg->beta, t->c0, (int)o0, (int)o1,
                    t->cursor + (size_t)tid * (size_t)t->batch,
                    t->gblock + (size_t)tid * (PF_SPARSE_BLOCK_BYTES / sizeof(float)));
    step_update(c, tid, nt, 1, NULL);
}

/* W_0 (n0, dim) into the panels of the sparse path (to = 1) or back: for
 * each member's units [o0, o1) (pf_share_lines), the rows of W_0 become the
 * panel W_0[o0:o1, :]^T (dim, o1 - o0) in their own place. Members own
 * whole panels: with every pixel's row split among them instead, their
 * shares interleave line by line, and the hardware, fetching neighbouring
 * lines ahead, moves the other member's lines back and forth at every
 * step (measured on a 2-core Zen 1: the input layer's Adam update took
 * 1033 us split by rows against 221 us in panels, 421 us on one thread).
 * One member: W_0^T. */
static void panels(float *dst, const float *src, const pf_arch *A, int nt, int to)
{
    int dim = A->sizes[0];
    for (int k = 0; k < nt; k++) {
        size_t o0, o1, at = panel_of(A, k, nt, &o0, &o1);
        if (o1 <= o0) continue;
        if (to) pf_transpose(dst + at, src + at, (int)(o1 - o0), dim);
        else pf_transpose(dst + at, src + at, dim, (int)(o1 - o0));
    }
}

/* Put the input layer of theta, of the optimizer's moments (and of a copy
 * of the anchor) into the panels of the sparse path, or back (to = 0). The
 * anchor copy is made on the way in. */
static int sparse_layout(pf_trainer *t, const pf_sparse_set *set, float *theta, const float *anchor,
                         int to)
{
    const pf_arch *A = t->arch;
    int dim = A->sizes[0], n0 = A->sizes[1];
    size_t cnt = (size_t)dim * n0, off = A->w_off[0];
    if (!t->swap && !(t->swap = malloc(cnt * sizeof *t->swap))) return PF_ERUNTIME;
    if (!t->c0 && !(t->c0 = malloc((size_t)n0 * sizeof *t->c0))) return PF_ERUNTIME;
    if (to) {
        size_t nt = (size_t)t->n_threads;
        if (!t->cursor && !(t->cursor = malloc(nt * (size_t)t->batch * sizeof *t->cursor))) return PF_ERUNTIME;
        if (!t->gblock && !(t->gblock = pf_line_alloc(nt * PF_SPARSE_BLOCK_BYTES))) return PF_ERUNTIME;
        if (!t->epoch_rows && !(t->epoch_rows = calloc(1, sizeof *t->epoch_rows))) return PF_ERUNTIME;
        pf_sparse_set *e = t->epoch_rows;
        size_t nnz = set->row_ptr[set->n];
        if (e->cap < nnz + 1) {
            free(e->col), free(e->val);
            e->col = pf_big_alloc((nnz + 1) * sizeof *e->col);
            e->val = pf_big_alloc((nnz + 1) * sizeof *e->val);
            e->cap = e->col && e->val ? nnz + 1 : 0;
        }
        if (!e->row_ptr) e->row_ptr = pf_big_alloc((t->n + 1) * sizeof *e->row_ptr);
        if (!e->row_ptr || !e->cap) return PF_ERUNTIME;
        e->n = set->n, e->dim = set->dim, e->max_row = set->max_row;
        e->background = set->background; /* borrowed */
    }
    if (to && anchor) {
        if (!t->anchor_t && !(t->anchor_t = malloc(A->n_params * sizeof *t->anchor_t))) return PF_ERUNTIME;
        memcpy(t->anchor_t, anchor, A->n_params * sizeof *anchor);
        panels(t->anchor_t + off, anchor + off, A, t->n_threads, 1);
    }
    float *blocks[3] = {theta, t->optim.m, t->optim.v};
    for (int k = 0; k < 3; k++) {
        if (!blocks[k]) continue;
        panels(t->swap, blocks[k] + off, A, t->n_threads, to);
        memcpy(blocks[k] + off, t->swap, cnt * sizeof *t->swap);
    }
    return PF_OK;
}

/* A shuffled batch's rows would lie anywhere in the set's hundreds of MB,
 * and every step would wait for memory at each of them; copied once per
 * epoch in the epoch's order (every member a share of the rows, fetching
 * ahead), a batch is one stretch of memory that the hardware streams in. */
typedef struct {
    pf_trainer *t;
    const pf_sparse_set *set;
} shuffle_ctx;

static void shuffle_task(void *vctx, int tid, int nt)
{
    shuffle_ctx *c = vctx;
    const pf_sparse_set *s = c->set;
    pf_sparse_set *e = c->t->epoch_rows;
    const int *perm = c->t->perm;
    size_t lo, hi;
    pf_share(s->n, tid, nt, &lo, &hi);
    enum { AHEAD = 8 };
    for (size_t i = lo; i < hi; i++) {
        if (i + AHEAD < hi) {
            size_t a = s->row_ptr[perm[i + AHEAD]], b = s->row_ptr[perm[i + AHEAD] + 1];
            for (size_t k = a; k < b; k += 16) {
                __builtin_prefetch(s->col + k);
                __builtin_prefetch(s->val + k);
            }
        }
        size_t a = s->row_ptr[perm[i]], len = s->row_ptr[perm[i] + 1] - a, at = e->row_ptr[i];
        memcpy(e->col + at, s->col + a, len * sizeof *e->col);
        memcpy(e->val + at, s->val + a, len * sizeof *e->val);
    }
}

/* One pass over the data in shuffled minibatches; returns the mean
 * minibatch loss. */
static double minibatch_epoch(pf_trainer *t, float *theta, const pf_dataset *d,
                              const pf_train_config *cfg, const pf_sparse_set *set, int epoch,
                              double t0, double *first)
{
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) t->perm[i] = (int)i;
    pf_rng_shuffle(&t->rng, t->perm, n);
    if (set) { /* the sparse rows in the order of the epoch (see shuffle_task) */
        pf_sparse_set *e = t->epoch_rows;
        e->row_ptr[0] = 0;
        for (size_t i = 0; i < n; i++)
            e->row_ptr[i + 1] = e->row_ptr[i] + set->row_ptr[t->perm[i] + 1] - set->row_ptr[t->perm[i]];
        shuffle_ctx sc = {t, set};
        if (t->n_threads > 1)
            pf_parallel(t->ctx, shuffle_task, &sc);
        else
            shuffle_task(&sc, 0, 1);
    }
    long steps = (long)((n + (size_t)t->batch - 1) / (size_t)t->batch);
    double sum = 0.0;
    step_ctx c = {t, theta, d, cfg, 0, 0, set, set && cfg->anchor ? t->anchor_t : cfg->anchor};
    pf_task_fn task = set ? step_task_sparse : t->arch->n_stages ? step_task_cnn : step_task;
    for (long s = 0; s < steps; s++) {
        c.start = (size_t)s * (size_t)t->batch;
        c.B = (int)(n - c.start < (size_t)t->batch ? n - c.start : (size_t)t->batch);
        pf_optim_begin(&t->optim);
        if (t->n_threads > 1)
            pf_parallel(t->ctx, task, &c);
        else
            task(&c, 0, 1);
        double loss = 0.0;
        for (int k = 0; k < t->n_threads; k++) loss += t->part_loss[k];
        sum += loss / c.B;
        if (s == 0) *first = loss / c.B;
        if (cfg->progress && ((s & 63) == 63 || s == steps - 1)) {
            pf_progress p = {cfg->beta, epoch, cfg->max_epochs, s + 1, steps, sum / (double)(s + 1),
                             pf_now() - t0};
            cfg->progress(cfg->progress_ctx, &p);
        }
    }
    return sum / (double)steps;
}

/* Full-batch first-order step: one gradient over all data per epoch. */
static double fullbatch_epoch(pf_trainer *t, float *theta, const pf_dataset *d,
                              const pf_train_config *cfg)
{
    double loss = pf_full_gradient(&t->eval_work, theta, d, t->grad);
    const float *grads[1] = {t->grad};
    pf_optim_begin(&t->optim);
    pf_optim_update(&t->optim, theta, grads, 1, cfg->anchor, cfg->beta, 0,
                    t->arch->n_params);
    return loss;
}

static int train_beta(pf_trainer *t, float *theta, const pf_dataset *train,
                      const pf_train_config *cfg, pf_train_result *res, pf_error *err);

int pf_train_beta(pf_trainer *t, float *theta, const pf_dataset *train,
                  const pf_train_config *cfg, pf_train_result *res, pf_error *err)
{
    int rc = train_beta(t, theta, train, cfg, res, err);
    if (!rc && cfg->certify) rc = pf_train_certify(t, theta, train, cfg, res, train_beta, err);
    return rc;
}

/* One training at one beta, certification aside. */
static int train_beta(pf_trainer *t, float *theta, const pf_dataset *train,
                      const pf_train_config *cfg, pf_train_result *res, pf_error *err)
{
    memset(res, 0, sizeof *res);
    if (train->n != t->n)
        return pf_fail(err, PF_EINPUT, "trainer set up for %zu samples, dataset has %zu", t->n,
                       train->n);
    if (cfg->opt.kind != t->optim.cfg.kind)
        return pf_fail(err, PF_EINPUT, "trainer set up for the %s optimizer, the config asks for %s",
                       pf_opt_name(t->optim.cfg.kind), pf_opt_name(cfg->opt.kind));
    if ((cfg->batch > 0 ? cfg->batch : 0) != t->batch)
        return pf_fail(err, PF_EINPUT, "trainer set up for batch %d, the config asks for %d (0: full batch)",
                       t->batch, cfg->batch);
    const pf_arch *A = t->arch;
    if (train->dim != A->in_dim || pf_dataset_out_dim(train) > A->sizes[A->n_layers] ||
        (A->loss == PF_LOSS_CE) != (train->labels != NULL) ||
        (train->targets && train->n_targets != A->sizes[A->n_layers]))
        return pf_fail(err, PF_EINPUT, "dataset %s (%d features, %d outputs) does not fit the model",
                       train->name, train->dim, pf_dataset_out_dim(train));
    double t0 = pf_now();
    if (cfg->opt.kind == PF_OPT_LBFGS) {
        pf_lbfgs_config lc = {cfg->max_epochs, cfg->grad_tol, cfg->ftol, cfg->opt.history};
        pf_lbfgs_result lr;
        int rc = pf_lbfgs(&t->eval_work, theta, train, cfg->anchor, cfg->beta, &lc, &lr, err);
        if (rc) return rc;
        res->epochs = lr.iterations;
        res->steps = lr.evaluations;
        res->epoch_loss = res->best_epoch_loss = lr.loss;
        res->grad_inf = lr.grad_inf;
        res->seconds = pf_now() - t0;
        if (!isfinite(lr.loss))
            return pf_fail(err, PF_ERUNTIME, "L-BFGS diverged at beta %g (loss %g)", cfg->beta,
                           lr.loss);
        return PF_OK;
    }
    if (cfg->opt.kind == PF_OPT_NEWTON) {
        if (t->batch)
            return pf_fail(err, PF_EINPUT, "Newton runs full batch (batch 0), the trainer has batch %d",
                           t->batch);
        return pf_train_newton(t, theta, train, cfg, res, err);
    }
    t->optim.cfg = cfg->opt;
    if (cfg->reset_optimizer) pf_optim_reset(&t->optim);
    double best = INFINITY, start_loss = NAN;
    double r0 = pf_distance(theta, cfg->anchor, A->n_params);
    /* minibatch steps work on a copy of theta on cache lines (as the
     * gradient and the moments are): the members update neighbouring shares
     * of every row of the input layer, and where a share's edge fell inside
     * a line the two cores took that line from each other at every step */
    float *caller_theta = theta;
    size_t bytes = A->n_params * sizeof *theta;
    if (t->batch) {
        if (!t->theta_line && !(t->theta_line = pf_line_alloc(bytes)))
            return pf_fail(err, PF_ERUNTIME, "out of memory for the trainer");
        memcpy(t->theta_line, theta, bytes);
        theta = t->theta_line;
    }
    /* the input layer: sparse on the training set's nonzeros, or dense */
    const pf_sparse_set *set = NULL;
    t->work.input_layer = t->eval_work.input_layer = cfg->input_layer;
    if (t->batch) {
        int use;
        set = pf_sparse_find(&t->work, train->x, train->n, train->dim, &use);
        if (use && (!set || sparse_layout(t, set, theta, cfg->anchor, 1) != PF_OK)) {
            res->seconds = pf_now() - t0;
            return pf_fail(err, PF_ERUNTIME, "out of memory for the sparse input layer");
        }
    }
    t->sparse = set != NULL;
    if (A->n_stages && t->batch && t->n_threads > 1 && !t->stage_grads &&
        !(t->stage_grads = malloc((size_t)t->n_threads * pf_stage_params(A) * sizeof *t->stage_grads)))
        return pf_fail(err, PF_ERUNTIME, "out of memory for the trainer");
    if (t->batch && !set && !A->n_stages && t->n_threads > 1 && !t->xrows &&
        !(t->xrows = pf_line_alloc((size_t)t->n_threads * (size_t)t->batch * (size_t)A->sizes[0] *
                                   sizeof *t->xrows)))
        return pf_fail(err, PF_ERUNTIME, "out of memory for the trainer");
    res->setup_seconds = pf_now() - t0;
    for (int k = 0; set && k < t->n_threads; k++) { /* c0 = W_0 b + b_0, panel by panel */
        size_t o0, o1, at = panel_of(A, k, t->n_threads, &o0, &o1);
        pf_input_background(t->c0, theta + A->w_off[0] + at,
                            A->bias ? theta + A->b_off[0] : NULL, set->background, A->sizes[0],
                            (int)(o1 - o0), (int)o0, (int)o1);
    }
    int wait = 0, diverged_epoch = 0;
    double diverged_loss = 0.0;
    for (int epoch = 1; epoch <= cfg->max_epochs; epoch++) {
        double first = NAN;
        double loss = t->batch ? minibatch_epoch(t, theta, train, cfg, set, epoch, t0, &first)
                               : (first = fullbatch_epoch(t, theta, train, cfg));
        if (epoch == 1) start_loss = first + 0.5 * cfg->beta * r0 * r0;
        res->epochs = epoch;
        res->epoch_loss = loss;
        if (!isfinite(loss)) {
            diverged_epoch = epoch, diverged_loss = loss;
            break;
        }
        if (loss < best - cfg->min_delta) {
            best = loss;
            wait = 0;
        } else if (++wait >= cfg->patience) {
            res->stopped_early = 1;
            break;
        }
    }
    if (set) sparse_layout(t, set, theta, NULL, 0);
    if (theta != caller_theta) memcpy(caller_theta, theta, bytes);
    if (diverged_epoch) {
        res->seconds = pf_now() - t0;
        return pf_fail(err, PF_ERUNTIME, "training diverged at beta %g, epoch %d (loss %g): lower --lr",
                       cfg->beta, diverged_epoch, diverged_loss);
    }
    res->best_epoch_loss = best;
    /* Diverged: L_beta ended far above where it started. A working
     * optimizer lowers it (minibatch noise aside); one whose step is too
     * large for the curvature beta adds (SGD with lr * beta > 2) blows it
     * up by orders of magnitude while staying finite for a while. */
    double r1 = pf_distance(theta, cfg->anchor, A->n_params);
    res->final_reg_loss = res->epoch_loss + 0.5 * cfg->beta * r1 * r1;
    res->start_reg_loss = start_loss;
    res->diverged = isfinite(start_loss) && res->final_reg_loss > 10.0 * fabs(start_loss) + 1.0;
    res->steps = t->optim.step;
    res->seconds = pf_now() - t0;
    return PF_OK;
}
