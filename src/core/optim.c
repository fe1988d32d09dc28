/* Optimizers with PyTorch semantics (torch.optim, version 1.13).
 *
 * The caller adds the shifted L2 gradient beta*(theta - anchor) to the loss
 * gradient before a step, exactly as torch.optim.Adam(weight_decay=beta)
 * does for anchor 0: L2 inside the gradient, not AdamW's decoupled decay.
 *
 * Adam:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *        theta -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * SGD:   buf = mu buf + g (buf = g on the first step);  theta -= lr * buf
 * The float operations follow torch's kernels, so results agree with
 * PyTorch to rounding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "team.h"

static const char *const opt_names[] = {"adam", "sgd", "lbfgs", "newton"};

const char *pf_opt_name(pf_opt_kind kind) { return opt_names[kind]; }

int pf_opt_from_name(const char *name, pf_opt_kind *kind)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, opt_names[i]) == 0) {
            *kind = (pf_opt_kind)i;
            return 0;
        }
    return -1;
}

void pf_opt_config_default(pf_opt_config *c, pf_opt_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->momentum = 0.9;
    c->history = 10;
    c->lr = kind == PF_OPT_ADAM ? 0.0015 : kind == PF_OPT_SGD ? 0.01 : 1.0;
}

int pf_optim_init(pf_optim *o, const pf_opt_config *cfg, size_t n, pf_error *err)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    /* on cache lines: the team's members update neighbouring shares */
    o->m = pf_line_alloc((n ? n : 1) * sizeof(float));
    if (cfg->kind == PF_OPT_ADAM) o->v = pf_line_alloc((n ? n : 1) * sizeof(float));
    if (!o->m || (cfg->kind == PF_OPT_ADAM && !o->v)) {
        pf_optim_free(o);
        return pf_fail(err, PF_ERUNTIME, "out of memory for optimizer state");
    }
    return PF_OK;
}

void pf_optim_reset(pf_optim *o)
{
    o->step = 0;
    memset(o->m, 0, o->n * sizeof(float));
    if (o->v) memset(o->v, 0, o->n * sizeof(float));
}

void pf_optim_free(pf_optim *o)
{
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

/* Advance the step count and fix this step's scalars (bias corrections). */
void pf_optim_begin(pf_optim *o)
{
    const pf_opt_config *c = &o->cfg;
    o->step++;
    if (c->kind == PF_OPT_ADAM) {
        double bc1 = 1.0 - pow(c->beta1, (double)o->step);
        double bc2 = 1.0 - pow(c->beta2, (double)o->step);
        o->step_size = (float)(-(c->lr / bc1));
        o->bc2_sqrt = (float)sqrt(bc2);
    }
}

enum { CHUNK = 512 };

/* g[0..len) = sum of the partial gradients in order, plus beta*(theta - anchor).
 * Written as simple loops over a chunk so that they vectorize. */
static void total_grad(float *restrict g, const float *const *grads, int n_grads, size_t goff,
                       const float *restrict theta, const float *restrict anchor, float beta,
                       size_t off, size_t len)
{
    const float *g0 = grads[0] + goff;
    for (size_t i = 0; i < len; i++) g[i] = g0[i];
    for (int k = 1; k < n_grads; k++) {
        const float *gk = grads[k] + goff;
        for (size_t i = 0; i < len; i++) g[i] += gk[i];
    }
    if (beta == 0.0f) return;
    const float *th = theta + off;
    if (anchor) {
        const float *an = anchor + off;
        for (size_t i = 0; i < len; i++) g[i] += beta * (th[i] - an[i]);
    } else {
        for (size_t i = 0; i < len; i++) g[i] += beta * th[i];
    }
}

/* The step on [off, off + len), len <= CHUNK, with the gradients read
 * from grads[k] + goff on. */
static inline void update_span(pf_optim *o, float *restrict theta, const float *const *grads,
                               int n_grads, size_t goff, const float *anchor, double beta, size_t off,
                               size_t len)
{
    const pf_opt_config *c = &o->cfg;
    float g[CHUNK];
    total_grad(g, grads, n_grads, goff, theta, anchor, (float)beta, off, len);
    float *restrict th = theta + off, *restrict m = o->m + off;
    if (c->kind == PF_OPT_ADAM) {
        float *restrict v = o->v + off;
        const float b1 = (float)c->beta1, one_b1 = (float)(1.0 - c->beta1);
        const float b2 = (float)c->beta2, one_b2 = (float)(1.0 - c->beta2);
        /* step * m / (sqrt(v)/s + eps) = (step*s) * m / (sqrt(v) + eps*s): one
         * division instead of two; agrees with torch's order to rounding. */
        const float step_s = o->step_size * o->bc2_sqrt, eps_s = (float)c->eps * o->bc2_sqrt;
        for (size_t i = 0; i < len; i++) {
            m[i] = m[i] * b1 + one_b1 * g[i];
            v[i] = v[i] * b2 + one_b2 * g[i] * g[i];
            th[i] = th[i] + step_s * m[i] / (sqrtf(v[i]) + eps_s);
        }
    } else if (c->momentum == 0.0) {
        const float lr = (float)c->lr;
        for (size_t i = 0; i < len; i++) th[i] = th[i] - lr * g[i];
    } else if (o->step == 1) {
        const float lr = (float)c->lr;
        for (size_t i = 0; i < len; i++) {
            m[i] = g[i];
            th[i] = th[i] - lr * m[i];
        }
    } else {
        const float lr = (float)c->lr, mu = (float)c->momentum;
        for (size_t i = 0; i < len; i++) {
            m[i] = m[i] * mu + g[i];
            th[i] = th[i] - lr * m[i];
        }
    }
}

void pf_optim_update(pf_optim *o, float *restrict theta, const float *const *grads, int n_grads,
                     const float *anchor, double beta, size_t lo, size_t hi)
{
    for (size_t off = lo; off < hi; off += CHUNK)
        update_span(o, theta, grads, n_grads, off, anchor, beta, off, hi - off < CHUNK ? hi - off : CHUNK);
}

void pf_optim_update_local(pf_optim *o, float *restrict theta, const float *grad, const float *anchor,
                           double beta, size_t off, size_t len)
{
    const float *const grads[1] = {grad};
    for (size_t c = 0; c < len; c += CHUNK)
        update_span(o, theta, grads, 1, c, anchor, beta, off + c, len - c < CHUNK ? len - c : CHUNK);
}

void pf_optim_update_rows(pf_optim *o, float *restrict theta, const float *grad, const float *anchor,
                          double beta, size_t off, size_t rows, size_t cols, size_t ld)
{
    const float *const grads[1] = {grad};
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c += CHUNK)
            update_span(o, theta, grads, 1, off + r * ld + c, anchor, beta, off + r * ld + c,
                        cols - c < CHUNK ? cols - c : CHUNK);
}

void pf_optim_step(pf_optim *o, float *theta, const float *grad)
{
    pf_optim_begin(o);
    pf_optim_update(o, theta, &grad, 1, NULL, 0.0, 0, o->n);
}
