/* Certified minima: the check of a point (pf_certify_minimum, exp.h has
 * the rule), and the trainer's second-order side: Newton-CG as an
 * optimizer of pf_train_beta, and certification after any optimizer.
 *
 * The trainer keeps one MLP objective (with its Hessian operator) for the
 * dataset it last saw and the lowest and highest modes of the last point
 * it certified. The modes start the next point's Lanczos: along a
 * quasi-static sweep the soft mode turns slowly, so a warm start finds it
 * in a fraction of a cold start's products, and keeps following the same
 * mode as it softens toward a fold. They are part of the trainer's state
 * (pf_trainer_get_state), so a resumed sweep starts its Lanczos where the
 * uninterrupted one would.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

void pf_certificate_config_default(pf_certificate_config *c)
{
    memset(c, 0, sizeof *c);
    c->grad_tol = PF_NEWTON_GRAD_TOL;
    pf_lanczos_config_default(&c->lanczos);
    c->lanczos.tol = 1e-6;
    c->lanczos.max_dim = 300;
    c->eps_factor = 10.0;
    c->max_escapes = 3;
}

int pf_certify_minimum(const pf_objective *obj, double *x, const pf_certificate_config *cfg,
                       double *modes, int *have_modes, pf_reconverge_fn reconverge, void *ctx,
                       pf_certificate *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n = obj->n;
    double t0 = pf_now();
    double *g = malloc(n * sizeof *g);
    if (!g) return pf_fail(err, PF_ERUNTIME, "certify: out of memory");
    double tol = cfg->lanczos.tol > 0 ? cfg->lanczos.tol : 1e-4;
    int rc;
    for (;;) {
        double f;
        pf_modes m;
        if ((rc = obj->eval(obj->ctx, x, &f, g, err)) || (rc = obj->at(obj->ctx, x, err)) ||
            (rc = pf_objective_modes(obj, &cfg->lanczos, *have_modes ? modes : NULL, modes, modes + n, &m,
                                     err)))
            break;
        *have_modes = 1;
        out->hvps += m.hvps;
        out->grad_inf = 0.0;
        for (size_t i = 0; i < n; i++) out->grad_inf = fmax(out->grad_inf, fabs(g[i]));
        out->lambda_min = m.lambda_min;
        out->lambda_max = m.lambda_max;
        out->res_min = m.res_min;
        out->res_max = m.res_max;
        /* the claim is lambda_min >= -eps: it needs the lowest pair; the
         * highest only scales eps, and a residual of 1e-6 of it is no error
         * there worth refusing a point for */
        out->lanczos_converged = m.min_converged;
        out->lanczos_iterations = m.iterations;
        out->eps = cfg->eps_factor * tol * fmax(fabs(m.lambda_max), fabs(m.lambda_min));
        out->grad_ok = isfinite(out->grad_inf) && out->grad_inf <= cfg->grad_tol;
        out->curvature_ok = m.lambda_min >= -out->eps;
        if (out->curvature_ok || !reconverge || out->escapes >= cfg->max_escapes) break;
        pf_escape_result e;
        if ((rc = pf_escape(obj, x, modes, m.lambda_min, 0.0, &e, err))) break;
        if (!(e.decrease > 0)) break; /* nowhere lower along the mode: leave it marked */
        out->escapes++;
        out->escape_decrease += e.decrease;
        if ((rc = reconverge(ctx, x, err))) break;
    }
    out->certified = out->grad_ok && out->curvature_ok && out->lanczos_converged;
    out->seconds = pf_now() - t0;
    free(g);
    return rc;
}

/* ---- the trainer's second-order side ------------------------------------------ */

enum { HVP_BLOCK = 1000 };

struct pf_second_order {
    pf_work hvp_work;           /* the Hessian operator's blocks */
    int work_ready;
    pf_mlp_objective *obj;
    const pf_dataset *data;     /* the dataset obj is bound to, and its rows */
    const float *data_x;
    size_t data_n;
    double *x;                  /* (n) theta in double */
    double *modes;              /* (2n) lowest and highest modes of the last certified point */
    int have_modes;
};

void pf_second_order_free(struct pf_second_order *s)
{
    if (!s) return;
    pf_mlp_objective_free(s->obj);
    if (s->work_ready) pf_work_free(&s->hvp_work);
    free(s->x);
    free(s->modes);
    free(s);
}

static int second_order(pf_trainer *t, struct pf_second_order **out, pf_error *err)
{
    if (!t->second) {
        struct pf_second_order *s = calloc(1, sizeof *s);
        size_t n = t->arch->n_params;
        if (s) s->x = malloc(n * sizeof *s->x), s->modes = malloc(2 * n * sizeof *s->modes);
        if (!s || !s->x || !s->modes) {
            pf_second_order_free(s);
            return pf_fail(err, PF_ERUNTIME, "out of memory for the second-order state");
        }
        int rc = pf_work_init(&s->hvp_work, t->ctx, t->arch, HVP_BLOCK, err);
        if (rc) {
            pf_second_order_free(s);
            return rc;
        }
        s->work_ready = 1;
        t->second = s;
    }
    *out = t->second;
    return PF_OK;
}

/* The objective of L_beta over d, made again when the trainer sees another dataset. */
static int bind(pf_trainer *t, const pf_dataset *d, const pf_train_config *cfg, struct pf_second_order **out,
                pf_error *err)
{
    struct pf_second_order *s;
    int rc = second_order(t, &s, err);
    if (rc) return rc;
    if (!s->obj || s->data != d || s->data_x != d->x || s->data_n != d->n) {
        pf_mlp_objective_free(s->obj);
        s->obj = NULL;
        if ((rc = pf_mlp_objective_create(&s->obj, &t->eval_work, &s->hvp_work, d, err))) return rc;
        s->data = d, s->data_x = d->x, s->data_n = d->n;
    }
    pf_mlp_objective_set(s->obj, cfg->beta, cfg->anchor);
    *out = s;
    return PF_OK;
}

int pf_second_order_modes(const pf_trainer *t, const double **modes)
{
    *modes = t->second && t->second->have_modes ? t->second->modes : NULL;
    return *modes != NULL;
}

int pf_second_order_set_modes(pf_trainer *t, const double *modes, pf_error *err)
{
    if (!modes) {
        if (t->second) t->second->have_modes = 0;
        return PF_OK;
    }
    struct pf_second_order *s;
    int rc = second_order(t, &s, err);
    if (rc) return rc;
    memcpy(s->modes, modes, 2 * t->arch->n_params * sizeof *s->modes);
    s->have_modes = 1;
    return PF_OK;
}

/* Newton's iterations as the trainer's progress events (epoch = iteration). */
typedef struct {
    const pf_train_config *cfg;
    double t0;
} newton_progress;

static void on_newton(void *ctx, int iter, double f, double grad_inf, double radius)
{
    (void)grad_inf, (void)radius;
    newton_progress *p = ctx;
    pf_progress e = {p->cfg->beta, iter, p->cfg->max_epochs, 1, 1, f, pf_now() - p->t0};
    p->cfg->progress(p->cfg->progress_ctx, &e);
}

int pf_train_newton(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *cfg,
                    pf_train_result *res, pf_error *err)
{
    struct pf_second_order *s;
    int rc = bind(t, train, cfg, &s, err);
    if (rc) return rc;
    size_t n = t->arch->n_params;
    double t0 = pf_now();
    for (size_t i = 0; i < n; i++) s->x[i] = theta[i];
    pf_objective obj = pf_mlp_objective_get(s->obj);
    pf_newton_config nc;
    pf_newton_config_default(&nc);
    nc.max_iter = cfg->max_epochs;
    nc.grad_tol = cfg->grad_tol;
    if (cfg->opt.lr > 0) nc.radius = cfg->opt.lr;
    if (nc.max_radius < nc.radius) nc.max_radius = nc.radius;
    newton_progress np = {cfg, t0};
    if (cfg->progress) nc.progress = on_newton, nc.progress_ctx = &np;
    double f0;
    if ((rc = obj.eval(obj.ctx, s->x, &f0, NULL, err))) return rc;
    pf_newton_result nr;
    if ((rc = pf_newton(&obj, s->x, &nc, &nr, err))) return rc;
    for (size_t i = 0; i < n; i++) theta[i] = (float)s->x[i];
    double r = pf_distance(theta, cfg->anchor, n);
    res->epochs = nr.iterations;
    res->steps = nr.hvps;
    res->epoch_loss = res->best_epoch_loss = nr.f - 0.5 * cfg->beta * r * r;
    res->start_reg_loss = f0;
    res->final_reg_loss = nr.f;
    res->grad_inf = nr.grad_inf;
    res->seconds = pf_now() - t0;
    if (!isfinite(nr.f))
        return pf_fail(err, PF_ERUNTIME, "Newton diverged at beta %g (L_beta %g)", cfg->beta, nr.f);
    return PF_OK;
}

/* Re-convergence after an escape: the trainer's own optimizer from x. */
typedef struct {
    pf_trainer *t;
    float *theta;
    const pf_dataset *train;
    const pf_train_config *cfg;
    pf_train_fn train_fn;
    pf_train_result *res;
} reconverge_ctx;

static int reconverge(void *vctx, double *x, pf_error *err)
{
    reconverge_ctx *c = vctx;
    size_t n = c->t->arch->n_params;
    for (size_t i = 0; i < n; i++) c->theta[i] = (float)x[i];
    pf_train_result again;
    memset(&again, 0, sizeof again);
    int rc = c->train_fn(c->t, c->theta, c->train, c->cfg, &again, err);
    c->res->epochs += again.epochs;
    c->res->steps += again.steps;
    c->res->epoch_loss = again.epoch_loss;
    c->res->best_epoch_loss = again.best_epoch_loss;
    c->res->final_reg_loss = again.final_reg_loss;
    c->res->grad_inf = again.grad_inf;
    c->res->diverged |= again.diverged;
    for (size_t i = 0; i < n; i++) x[i] = c->theta[i];
    return rc;
}

int pf_train_certify(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *cfg,
                     pf_train_result *res, pf_train_fn train_fn, pf_error *err)
{
    struct pf_second_order *s;
    int rc = bind(t, train, cfg, &s, err);
    if (rc) return rc;
    size_t n = t->arch->n_params;
    for (size_t i = 0; i < n; i++) s->x[i] = theta[i];
    pf_objective obj = pf_mlp_objective_get(s->obj);
    pf_certificate_config cc = cfg->certificate;
    cc.grad_tol = cfg->grad_tol;
    if (!cc.lanczos.ctx) cc.lanczos.ctx = t->ctx;
    reconverge_ctx rctx = {t, theta, train, cfg, train_fn, res};
    double *x = malloc(n * sizeof *x); /* s->x is the Newton optimizer's own */
    if (!x) return pf_fail(err, PF_ERUNTIME, "out of memory");
    memcpy(x, s->x, n * sizeof *x);
    rc = pf_certify_minimum(&obj, x, &cc, s->modes, &s->have_modes, reconverge, &rctx, &res->cert, err);
    for (size_t i = 0; i < n; i++) theta[i] = (float)x[i];
    free(x);
    res->has_cert = 1;
    res->seconds += res->cert.seconds;
    return rc;
}

const double *pf_trainer_soft_mode(const pf_trainer *t)
{
    const double *m;
    return pf_second_order_modes(t, &m) ? m : NULL;
}
