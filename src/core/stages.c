/* The stages of a convolutional model on the fast path (stages.h):
 *
 *   conv    z = conv(in; W) + b,  out = f(z)
 *   pool    out = max or mean of each window
 *
 * and backward, with sd the gradient of the loss in a stage's output:
 *   conv    delta = f'(z) sd,  dW += delta (*) in,  db += sum delta,
 *           sd_below = conv^T(delta; W)
 *   max     sd_below = sd at each window's winner, 0 elsewhere
 *   avg     sd_below = sd / k^2 over each window
 * with the kernels of conv.c. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "pathfinder/conv.h"
#include "act.h"
#include "stages.h"
#include "team.h"

int pf_stages_alloc(pf_work *w, int slots)
{
    const pf_arch *A = w->arch;
    size_t B = (size_t)w->max_batch, room = 0;
    for (int i = 0; i < A->n_stages; i++) {
        const pf_stage *s = &A->stage[i];
        size_t n = B * s->out_size * sizeof(float);
        w->sa[i] = pf_line_alloc(n);
        w->sd[i] = pf_line_alloc(n);
        if (!w->sa[i] || !w->sd[i]) return PF_ERUNTIME;
        if (s->kind == PF_STAGE_CONV) {
            if (!(w->sz[i] = pf_line_alloc(n))) return PF_ERUNTIME;
            size_t r = pf_conv_work_size(&s->conv);
            room = r > room ? r : room;
        }
        if (s->kind == PF_STAGE_MAXPOOL && !(w->arg[i] = malloc(B * s->out_size * sizeof(int))))
            return PF_ERUNTIME;
    }
    if (room) {
        /* whole cache lines per member */
        w->conv_work_size = (room + 15) / 16 * 16;
        w->conv_work = pf_line_alloc((size_t)slots * w->conv_work_size * sizeof(float));
        if (!w->conv_work) return PF_ERUNTIME;
    }
    return PF_OK;
}

void pf_stages_free(pf_work *w)
{
    for (int i = 0; i < PF_MAX_STAGES; i++) {
        free(w->sz[i]), free(w->sa[i]), free(w->sd[i]), free(w->arg[i]);
        w->sz[i] = w->sa[i] = w->sd[i] = NULL;
        w->arg[i] = NULL;
    }
    free(w->conv_work);
    w->conv_work = NULL;
}

void pf_stages_forward(pf_work *w, const float *theta, const float *x, int r0, int r1, int slot)
{
    const pf_arch *A = w->arch;
    int rows = r1 - r0;
    if (rows <= 0) return;
    float *work = w->conv_work + (size_t)slot * w->conv_work_size;
    for (int i = 0; i < A->n_stages; i++) {
        const pf_stage *s = &A->stage[i];
        const float *in = (i ? w->sa[i - 1] : x) + (size_t)r0 * s->in_size;
        size_t at = (size_t)r0 * s->out_size, n = (size_t)rows * s->out_size;
        switch (s->kind) {
        case PF_STAGE_CONV:
            pf_conv_forward(w->sz[i] + at, in, theta + s->w_off, A->bias ? theta + s->b_off : NULL,
                            &s->conv, rows, work);
            activate(s->act, w->sa[i] + at, w->sz[i] + at, n);
            break;
        case PF_STAGE_MAXPOOL:
            pf_maxpool_forward(w->sa[i] + at, w->arg[i] + at, in, &s->pool, rows);
            break;
        case PF_STAGE_AVGPOOL:
            pf_avgpool_forward(w->sa[i] + at, in, &s->pool, rows);
            break;
        }
    }
}

void pf_feature_delta_rows(pf_work *w, const float *theta, int r0, int r1)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[0], n_out = A->sizes[1], rows = r1 - r0;
    if (rows <= 0 || !A->n_stages) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n_in, n_out, 1.0f,
                w->d[0] + (size_t)r0 * n_out, n_out, theta + A->w_off[0], n_in, 0.0f,
                w->sd[A->n_stages - 1] + (size_t)r0 * n_in, n_in);
}

void pf_stages_backward(pf_work *w, const float *theta, const float *x, int r0, int r1, float *grad,
                        int overwrite, int slot)
{
    const pf_arch *A = w->arch;
    int rows = r1 - r0;
    if (overwrite) memset(grad, 0, pf_stage_params(A) * sizeof *grad);
    if (rows <= 0) return;
    float *work = w->conv_work + (size_t)slot * w->conv_work_size;
    for (int i = A->n_stages - 1; i >= 0; i--) {
        const pf_stage *s = &A->stage[i];
        size_t at = (size_t)r0 * s->out_size, below = (size_t)r0 * s->in_size;
        float *sd = w->sd[i] + at, *din = i ? w->sd[i - 1] + below : NULL;
        switch (s->kind) {
        case PF_STAGE_CONV:
            times_act_grad(s->act, sd, w->sz[i] + at, w->sa[i] + at, (size_t)rows * s->out_size);
            pf_conv_backward(din, grad + s->w_off, A->bias ? grad + s->b_off : NULL, sd,
                             (i ? w->sa[i - 1] : x) + below, theta + s->w_off, &s->conv, rows, work);
            break;
        case PF_STAGE_MAXPOOL:
            if (din) pf_maxpool_backward(din, sd, w->arg[i] + at, &s->pool, rows);
            break;
        case PF_STAGE_AVGPOOL:
            if (din) pf_avgpool_backward(din, sd, &s->pool, rows);
            break;
        }
    }
}
