/* L_beta of an MLP as an objective for the second-order methods.
 *
 * x is theta in double; every pass rounds it to float, the model the tool
 * trains and writes, so what Newton-CG converges and certifies is exactly
 * the float model of the checkpoint. E and its gradient come from
 * pf_full_gradient (float sgemm, double reductions), the L2 term and its
 * gradient beta (theta - anchor) are added in double. Hessian-vector
 * products come from one pf_hessian operator, moved to each new point
 * rather than made again: its buffers and the sparse input layer's arrays
 * depend on the data only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"

struct pf_mlp_objective {
    pf_work *grad_work, *hvp_work;
    const pf_dataset *d;
    const float *anchor;   /* NULL: the origin */
    double beta;
    size_t n;
    float *theta;          /* (n) the last evaluated point, rounded */
    float *grad;           /* (n) gradient of E there */
    float *theta_h;        /* (n) the operator's point */
    pf_hessian *h;
    double loss;
};

static int mlp_eval(void *ctx, const double *x, double *f, double *grad, pf_error *err)
{
    (void)err;
    pf_mlp_objective *o = ctx;
    for (size_t i = 0; i < o->n; i++) o->theta[i] = (float)x[i];
    o->loss = pf_full_gradient(o->grad_work, o->theta, o->d, o->grad);
    double r2 = 0.0;
    for (size_t i = 0; i < o->n; i++) {
        double delta = (double)o->theta[i] - (o->anchor ? (double)o->anchor[i] : 0.0);
        r2 += delta * delta;
        if (grad) grad[i] = (double)o->grad[i] + o->beta * delta;
    }
    *f = o->loss + 0.5 * o->beta * r2;
    return PF_OK;
}

static int mlp_at(void *ctx, const double *x, pf_error *err)
{
    pf_mlp_objective *o = ctx;
    for (size_t i = 0; i < o->n; i++) o->theta_h[i] = (float)x[i];
    if (o->h) {
        pf_hessian_move(o->h, o->theta_h);
        return PF_OK;
    }
    return pf_hessian_create(&o->h, o->hvp_work, o->theta_h, o->d, 0, err);
}

static int mlp_hvp(void *ctx, const double *v, double *hv, pf_error *err)
{
    pf_mlp_objective *o = ctx;
    if (!o->h) return pf_fail(err, PF_EINPUT, "objective: a product before the point was fixed");
    int rc = pf_hessian_matvec(o->h, v, hv, err);
    if (rc) return rc;
    for (size_t i = 0; i < o->n; i++) hv[i] += o->beta * v[i];
    return PF_OK;
}

int pf_mlp_objective_create(pf_mlp_objective **out, pf_work *grad_work, pf_work *hvp_work,
                            const pf_dataset *d, pf_error *err)
{
    *out = NULL;
    if (!grad_work || !hvp_work || !d || grad_work->arch != hvp_work->arch)
        return pf_fail(err, PF_EINPUT, "objective: missing workspaces or data");
    pf_mlp_objective *o = calloc(1, sizeof *o);
    if (!o) return pf_fail(err, PF_ERUNTIME, "out of memory for the objective");
    o->grad_work = grad_work;
    o->hvp_work = hvp_work;
    o->d = d;
    o->n = grad_work->arch->n_params;
    o->loss = NAN;
    o->theta = malloc(o->n * sizeof *o->theta);
    o->grad = malloc(o->n * sizeof *o->grad);
    o->theta_h = malloc(o->n * sizeof *o->theta_h);
    if (!o->theta || !o->grad || !o->theta_h) {
        pf_mlp_objective_free(o);
        return pf_fail(err, PF_ERUNTIME, "out of memory for the objective");
    }
    *out = o;
    return PF_OK;
}

void pf_mlp_objective_free(pf_mlp_objective *o)
{
    if (!o) return;
    pf_hessian_free(o->h);
    free(o->theta);
    free(o->grad);
    free(o->theta_h);
    free(o);
}

void pf_mlp_objective_set(pf_mlp_objective *o, double beta, const float *anchor)
{
    o->beta = beta;
    o->anchor = anchor;
}

pf_objective pf_mlp_objective_get(pf_mlp_objective *o)
{
    pf_objective obj = {o->n, o, mlp_eval, mlp_at, mlp_hvp};
    return obj;
}

double pf_mlp_objective_loss(const pf_mlp_objective *o) { return o->loss; }
