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
    t->grad = malloc(arch->n_params * sizeof(float));
    if (!t->grad) goto oom;
    if ((rc = pf_work_init(&t->eval_work, ctx, arch, EVAL_BLOCK, err)) ||
        (rc = pf_optim_init(&t->optim, opt, arch->n_params, err)))
        goto fail;
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
    memset(t, 0, sizeof *t);
}

/* One minibatch step, run by every team member (see pf_forward_cols): the
 * member gathers its share of the batch rows, then owns a share of every
 * layer's units through the forward pass, the deltas, the gradient and the
 * optimizer step on those units' parameters, meeting the others at a
 * barrier after each layer. No partial gradients are summed. */
typedef struct {
    pf_trainer *t;
    float *theta;
    const pf_dataset *d;
    const pf_train_config *cfg;
    size_t start;
    int B;
} step_ctx;

static void step_task(void *vctx, int tid, int nt)
{
    step_ctx *c = vctx;
    pf_trainer *t = c->t;
    const pf_dataset *d = c->d;
    const pf_arch *A = t->arch;
    pf_work *w = &t->work;
    int dim = d->dim, K = A->sizes[A->n_layers], L = A->n_layers, B = c->B;
    size_t lo, hi;
    pf_share((size_t)B, tid, nt, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        size_t j = (size_t)t->perm[c->start + i];
        memcpy(w->xbuf + i * dim, d->x + j * dim, (size_t)dim * sizeof(float));
        if (d->labels) w->lbuf[i] = d->labels[j];
        if (d->targets) memcpy(w->ybuf + i * K, d->targets + j * K, (size_t)K * sizeof(float));
    }
    pf_barrier();
    for (int l = 0; l < L; l++) {
        pf_share((size_t)A->sizes[l + 1], tid, nt, &lo, &hi);
        pf_forward_cols(w, c->theta, w->xbuf, B, l, (int)lo, (int)hi);
        pf_barrier();
    }
    pf_share((size_t)B, tid, nt, &lo, &hi);
    t->part_loss[tid] = pf_output_delta_rows(w, d->labels ? w->lbuf : NULL,
                                             d->targets ? w->ybuf : NULL, (int)lo, (int)hi, (double)B);
    pf_barrier();
    for (int l = L - 1; l > 0; l--) {
        pf_share((size_t)A->sizes[l], tid, nt, &lo, &hi);
        pf_delta_cols(w, c->theta, B, l, (int)lo, (int)hi);
        pf_barrier();
    }
    const float *grads[1] = {t->grad};
    for (int l = 0; l < L; l++) {
        int n_in = A->sizes[l];
        pf_share((size_t)A->sizes[l + 1], tid, nt, &lo, &hi);
        pf_weight_grad(w, w->xbuf, B, l, (int)lo, (int)hi, t->grad, 1);
        size_t wo = A->w_off[l];
        pf_optim_update(&t->optim, c->theta, grads, 1, c->cfg->anchor, c->cfg->beta,
                        wo + lo * n_in, wo + hi * n_in);
        if (A->bias)
            pf_optim_update(&t->optim, c->theta, grads, 1, c->cfg->anchor, c->cfg->beta,
                            A->b_off[l] + lo, A->b_off[l] + hi);
    }
}

/* One pass over the data in shuffled minibatches; returns the mean
 * minibatch loss. */
static double minibatch_epoch(pf_trainer *t, float *theta, const pf_dataset *d,
                              const pf_train_config *cfg, int epoch, double t0, double *first)
{
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) t->perm[i] = (int)i;
    pf_rng_shuffle(&t->rng, t->perm, n);
    long steps = (long)((n + (size_t)t->batch - 1) / (size_t)t->batch);
    double sum = 0.0;
    step_ctx c = {t, theta, d, cfg, 0, 0};
    for (long s = 0; s < steps; s++) {
        c.start = (size_t)s * (size_t)t->batch;
        c.B = (int)(n - c.start < (size_t)t->batch ? n - c.start : (size_t)t->batch);
        pf_optim_begin(&t->optim);
        if (t->n_threads > 1)
            pf_parallel(t->ctx, step_task, &c);
        else
            step_task(&c, 0, 1);
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
    if (train->dim != A->sizes[0] || pf_dataset_out_dim(train) > A->sizes[A->n_layers] ||
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
    int wait = 0;
    for (int epoch = 1; epoch <= cfg->max_epochs; epoch++) {
        double first = NAN;
        double loss = t->batch ? minibatch_epoch(t, theta, train, cfg, epoch, t0, &first)
                               : (first = fullbatch_epoch(t, theta, train, cfg));
        if (epoch == 1) start_loss = first + 0.5 * cfg->beta * r0 * r0;
        res->epochs = epoch;
        res->epoch_loss = loss;
        if (!isfinite(loss)) {
            res->seconds = pf_now() - t0;
            return pf_fail(err, PF_ERUNTIME,
                           "training diverged at beta %g, epoch %d (loss %g): lower --lr",
                           cfg->beta, epoch, loss);
        }
        if (loss < best - cfg->min_delta) {
            best = loss;
            wait = 0;
        } else if (++wait >= cfg->patience) {
            res->stopped_early = 1;
            break;
        }
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
