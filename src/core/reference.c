/* The reference MLP: the same mathematics as mlp.c and hessian.c in plain
 * double loops, without BLAS. It is the readable definition of forward,
 * loss, backward and the Hessian-vector product, the subject of the
 * finite-difference checks, and the yardstick for the fast float paths.
 *
 *   z_l = W_l a_{l-1} + b_l,  a_l = act_l(z_l)       (per sample)
 * after, in a convolutional model, the stages (conv.c's reference kernels):
 *   conv: z = conv(in; W) + b, out = act(z);  pools: max or mean of windows
 *   CE:  loss = mean_i [ logsumexp(a_L,i) - a_L,i[y_i] ]
 *   MSE: loss = mean_i 1/2 sum_k (a_L,i[k] - t_i[k])^2
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/conv.h"
#include "pathfinder/core.h"
#include "act.h"

static double act_value(pf_act act, double z)
{
    double a, d1, d2;
    act_derivs(act, z, &a, &d1, &d2);
    return a;
}

static double act_deriv(pf_act act, double z)
{
    double a, d1, d2;
    act_derivs(act, z, &a, &d1, &d2);
    return d1;
}

/* Offsets of every layer's units in a one-sample buffer (z, a, ...);
 * returns their total and sets *wide to the widest layer, inputs included. */
static size_t layer_offsets(const pf_arch *A, size_t *off, int *wide)
{
    size_t tot = 0;
    for (int l = 0; l < A->n_layers; l++) {
        off[l] = tot;
        tot += (size_t)A->sizes[l + 1];
    }
    *wide = 0;
    for (int l = 0; l <= A->n_layers; l++)
        if (A->sizes[l] > *wide) *wide = A->sizes[l];
    return tot;
}

/* One sample's loss from its K outputs (CE on logits, or MSE against
 * target), with g = dloss/dout / B and, when rout is given (R-operator),
 * rg = (d2 loss/dout2) rout / B:
 *   CE:  g = p - onehot(label), rg = p (rout - <p, rout>),  p = softmax(out)
 *   MSE: g = out - target,      rg = rout */
static double output_loss(pf_loss loss, const double *out, const double *rout, int K, int label,
                          const double *target, int B, double *g, double *rg)
{
    if (loss == PF_LOSS_CE) {
        double mx = out[0], s = 0.0, dot = 0.0;
        for (int k = 1; k < K; k++) mx = out[k] > mx ? out[k] : mx;
        for (int k = 0; k < K; k++) s += exp(out[k] - mx);
        double lse = mx + log(s);
        if (rout)
            for (int k = 0; k < K; k++) dot += exp(out[k] - lse) * rout[k];
        for (int k = 0; k < K; k++) {
            double p = exp(out[k] - lse);
            g[k] = (p - (k == label)) / B;
            if (rout) rg[k] = p * (rout[k] - dot) / B;
        }
        return lse - out[label];
    }
    double s = 0.0;
    for (int k = 0; k < K; k++) {
        double r = out[k] - target[k];
        s += r * r;
        g[k] = r / B;
        if (rout) rg[k] = rout[k] / B;
    }
    return 0.5 * s;
}

/* One sample's buffers for the stages of a convolutional model: z, out
 * and the gradient e in each stage's output, their R{}, max pooling's
 * winners, and scratch as wide as the widest stage. */
typedef struct {
    double *z[PF_MAX_STAGES], *a[PF_MAX_STAGES], *e[PF_MAX_STAGES];
    double *rz[PF_MAX_STAGES], *ra[PF_MAX_STAGES], *re[PF_MAX_STAGES];
    int *arg[PF_MAX_STAGES];
    double *del, *rdel, *tmp;
} ref_stages;

static int stages_alloc(ref_stages *r, const pf_arch *A)
{
    memset(r, 0, sizeof *r);
    size_t wide = 1;
    int ok = 1;
    for (int i = 0; i < A->n_stages; i++) {
        size_t n = A->stage[i].out_size;
        wide = n > wide ? n : wide;
        wide = A->stage[i].in_size > wide ? A->stage[i].in_size : wide;
        double **bufs[6] = {&r->z[i], &r->a[i], &r->e[i], &r->rz[i], &r->ra[i], &r->re[i]};
        for (int k = 0; k < 6; k++) ok = ok && (*bufs[k] = calloc(n, sizeof(double)));
        ok = ok && (r->arg[i] = calloc(n, sizeof(int)));
    }
    ok = ok && (r->del = calloc(wide, sizeof(double))) && (r->rdel = calloc(wide, sizeof(double))) &&
         (r->tmp = calloc(wide, sizeof(double)));
    return ok;
}

static void stages_free(ref_stages *r)
{
    for (int i = 0; i < PF_MAX_STAGES; i++) {
        free(r->z[i]), free(r->a[i]), free(r->e[i]);
        free(r->rz[i]), free(r->ra[i]), free(r->re[i]);
        free(r->arg[i]);
    }
    free(r->del), free(r->rdel), free(r->tmp);
}

/* One sample x through the stages (and, with v, their R-forward); returns
 * what fc1 reads. */
static const double *stages_forward(ref_stages *r, const pf_arch *A, const double *theta,
                                    const double *v, const double *x)
{
    for (int i = 0; i < A->n_stages; i++) {
        const pf_stage *s = &A->stage[i];
        const double *in = i ? r->a[i - 1] : x, *rin = i ? r->ra[i - 1] : NULL;
        size_t n = s->out_size;
        switch (s->kind) {
        case PF_STAGE_CONV:
            pf_conv_forward_ref(r->z[i], in, theta + s->w_off, A->bias ? theta + s->b_off : NULL,
                                &s->conv, 1);
            if (v) {
                pf_conv_forward_ref(r->rz[i], in, v + s->w_off, A->bias ? v + s->b_off : NULL,
                                    &s->conv, 1);
                if (rin) {
                    pf_conv_forward_ref(r->tmp, rin, theta + s->w_off, NULL, &s->conv, 1);
                    for (size_t q = 0; q < n; q++) r->rz[i][q] += r->tmp[q];
                }
            }
            for (size_t q = 0; q < n; q++) {
                double a, d1, d2;
                act_derivs(s->act, r->z[i][q], &a, &d1, &d2);
                r->a[i][q] = a;
                if (v) r->ra[i][q] = d1 * r->rz[i][q];
            }
            break;
        case PF_STAGE_MAXPOOL:
            pf_maxpool_forward_ref(r->a[i], r->arg[i], in, &s->pool, 1);
            for (size_t q = 0; v && q < n; q++) r->ra[i][q] = rin ? rin[r->arg[i][q]] : 0.0;
            break;
        case PF_STAGE_AVGPOOL:
            pf_avgpool_forward_ref(r->a[i], in, &s->pool, 1);
            if (v && rin) pf_avgpool_forward_ref(r->ra[i], rin, &s->pool, 1);
            else if (v) memset(r->ra[i], 0, n * sizeof(double));
            break;
        }
    }
    return r->a[A->n_stages - 1];
}

/* From e (and, with v, re) in the last stage's output back to the input:
 * the gradient (or, with v, the Hessian product) of the convolutions'
 * weights, added into g. */
static void stages_backward(ref_stages *r, const pf_arch *A, const double *theta, const double *v,
                            const double *x, double *g)
{
    for (int i = A->n_stages - 1; i >= 0; i--) {
        const pf_stage *s = &A->stage[i];
        double *below = i ? r->e[i - 1] : NULL, *rbelow = i ? r->re[i - 1] : NULL;
        switch (s->kind) {
        case PF_STAGE_CONV: {
            const double *in = i ? r->a[i - 1] : x;
            for (size_t q = 0; q < s->out_size; q++) {
                double a, d1, d2;
                act_derivs(s->act, r->z[i][q], &a, &d1, &d2);
                r->del[q] = d1 * r->e[i][q];
                if (v) r->rdel[q] = d1 * r->re[i][q] + d2 * r->e[i][q] * r->rz[i][q];
            }
            double *gw = g + s->w_off, *gb = A->bias ? g + s->b_off : NULL;
            if (!v) {
                pf_conv_backward_ref(below, gw, gb, r->del, in, theta + s->w_off, &s->conv, 1);
                break;
            }
            pf_conv_backward_ref(rbelow, gw, gb, r->rdel, in, theta + s->w_off, &s->conv, 1);
            if (!i) break;
            pf_conv_backward_ref(r->tmp, gw, NULL, r->del, r->ra[i - 1], v + s->w_off, &s->conv, 1);
            for (size_t q = 0; q < s->in_size; q++) rbelow[q] += r->tmp[q];
            pf_conv_backward_ref(below, NULL, NULL, r->del, NULL, theta + s->w_off, &s->conv, 1);
            break;
        }
        case PF_STAGE_MAXPOOL:
            if (!i) break;
            pf_maxpool_backward_ref(below, r->e[i], r->arg[i], &s->pool, 1);
            if (v) pf_maxpool_backward_ref(rbelow, r->re[i], r->arg[i], &s->pool, 1);
            break;
        case PF_STAGE_AVGPOOL:
            if (!i) break;
            pf_avgpool_backward_ref(below, r->e[i], &s->pool, 1);
            if (v) pf_avgpool_backward_ref(rbelow, r->re[i], &s->pool, 1);
            break;
        }
    }
}

double pf_ref_loss_grad(const pf_arch *A, const double *theta, const double *x, const int *labels,
                        const double *targets, int B, double *grad)
{
    int L = A->n_layers, K = A->sizes[L], wide;
    /* z and a for one sample, all layers; offsets by layer. */
    size_t off[PF_MAX_LAYERS + 1], tot = layer_offsets(A, off, &wide);
    double *z = calloc(tot, sizeof *z), *a = calloc(tot, sizeof *a);
    double *d = calloc((size_t)wide, sizeof *d), *dn = calloc((size_t)wide, sizeof *dn);
    ref_stages st;
    stages_alloc(&st, A);
    if (grad) memset(grad, 0, A->n_params * sizeof *grad);
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const double *x0 = x + (size_t)i * A->in_dim;
        const double *xi = A->n_stages ? stages_forward(&st, A, theta, NULL, x0) : x0;
        for (int l = 0; l < L; l++) {
            int n_in = A->sizes[l], n_out = A->sizes[l + 1];
            const double *in = l ? a + off[l - 1] : xi;
            const double *W = theta + A->w_off[l];
            for (int o = 0; o < n_out; o++) {
                double s = A->bias ? theta[A->b_off[l] + (size_t)o] : 0.0;
                for (int j = 0; j < n_in; j++) s += W[(size_t)o * n_in + j] * in[j];
                z[off[l] + o] = s;
                a[off[l] + o] = act_value(A->act[l], s);
            }
        }
        total += output_loss(A->loss, a + off[L - 1], NULL, K, labels ? labels[i] : 0,
                             targets ? targets + (size_t)i * K : NULL, B, d, NULL);
        if (!grad) continue;
        for (int k = 0; k < K; k++) d[k] *= act_deriv(A->act[L - 1], z[off[L - 1] + k]);
        for (int l = L - 1; l >= 0; l--) {
            int n_in = A->sizes[l], n_out = A->sizes[l + 1];
            const double *in = l ? a + off[l - 1] : xi;
            const double *W = theta + A->w_off[l];
            double *gW = grad + A->w_off[l];
            for (int o = 0; o < n_out; o++) {
                for (int j = 0; j < n_in; j++) gW[(size_t)o * n_in + j] += d[o] * in[j];
                if (A->bias) grad[A->b_off[l] + (size_t)o] += d[o];
            }
            if (l == 0 && A->n_stages) { /* into the stages */
                double *e = st.e[A->n_stages - 1];
                for (int j = 0; j < n_in; j++) {
                    double s = 0.0;
                    for (int o = 0; o < n_out; o++) s += d[o] * W[(size_t)o * n_in + j];
                    e[j] = s;
                }
                stages_backward(&st, A, theta, NULL, x0, grad);
            }
            if (l == 0) break;
            for (int j = 0; j < n_in; j++) {
                double s = 0.0;
                for (int o = 0; o < n_out; o++) s += d[o] * W[(size_t)o * n_in + j];
                dn[j] = s * act_deriv(A->act[l - 1], z[off[l - 1] + j]);
            }
            memcpy(d, dn, (size_t)n_in * sizeof *d);
        }
    }
    free(z);
    free(a);
    free(d);
    free(dn);
    stages_free(&st);
    return total / B;
}

/* ---- Hessian-vector product ------------------------------------------------ */

/* Pearlmutter's R-operator (the recursion written out at the top of
 * hessian.c), one sample at a time in double: the yardstick of the fast
 * float H.v. */
double pf_ref_hvp(const pf_arch *A, const double *theta, const double *x, const int *labels,
                  const double *targets, int B, const double *v, double *hv)
{
    int L = A->n_layers, K = A->sizes[L], wide;
    size_t off[PF_MAX_LAYERS + 1], tot = layer_offsets(A, off, &wide);
    /* per sample: z, a, f'(z), f''(z), Rz, Ra for every layer */
    double *z = calloc(tot, sizeof *z), *a = calloc(tot, sizeof *a);
    double *d1 = calloc(tot, sizeof *d1), *d2 = calloc(tot, sizeof *d2);
    double *rz = calloc(tot, sizeof *rz), *ra = calloc(tot, sizeof *ra);
    double *dl = calloc((size_t)wide, sizeof *dl), *rdl = calloc((size_t)wide, sizeof *rdl);
    double *e = calloc((size_t)wide, sizeof *e), *re = calloc((size_t)wide, sizeof *re);
    ref_stages st;
    stages_alloc(&st, A);
    memset(hv, 0, A->n_params * sizeof *hv);
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const double *x0 = x + (size_t)i * A->in_dim;
        const double *xi = A->n_stages ? stages_forward(&st, A, theta, v, x0) : x0;
        const double *rfeat = A->n_stages ? st.ra[A->n_stages - 1] : NULL;
        for (int l = 0; l < L; l++) {
            int n_in = A->sizes[l], n_out = A->sizes[l + 1];
            const double *in = l ? a + off[l - 1] : xi;
            const double *rin = l ? ra + off[l - 1] : rfeat;
            const double *W = theta + A->w_off[l], *V = v + A->w_off[l];
            for (int o = 0; o < n_out; o++) {
                double s = A->bias ? theta[A->b_off[l] + (size_t)o] : 0.0;
                double r = A->bias ? v[A->b_off[l] + (size_t)o] : 0.0;
                for (int j = 0; j < n_in; j++) {
                    s += W[(size_t)o * n_in + j] * in[j];
                    r += V[(size_t)o * n_in + j] * in[j];
                    if (rin) r += W[(size_t)o * n_in + j] * rin[j];
                }
                size_t q = off[l] + (size_t)o;
                z[q] = s;
                act_derivs(A->act[l], s, &a[q], &d1[q], &d2[q]);
                rz[q] = r;
                ra[q] = d1[q] * r;
            }
        }
        total += output_loss(A->loss, a + off[L - 1], ra + off[L - 1], K, labels ? labels[i] : 0,
                             targets ? targets + (size_t)i * K : NULL, B, e, re);
        for (int l = L - 1; l >= 0; l--) {
            int n_in = A->sizes[l], n_out = A->sizes[l + 1];
            for (int o = 0; o < n_out; o++) {
                size_t q = off[l] + (size_t)o;
                dl[o] = d1[q] * e[o];
                rdl[o] = d1[q] * re[o] + d2[q] * e[o] * rz[q];
            }
            const double *in = l ? a + off[l - 1] : xi;
            const double *rin = l ? ra + off[l - 1] : rfeat;
            double *hW = hv + A->w_off[l];
            for (int o = 0; o < n_out; o++) {
                for (int j = 0; j < n_in; j++)
                    hW[(size_t)o * n_in + j] += rdl[o] * in[j] + (rin ? dl[o] * rin[j] : 0.0);
                if (A->bias) hv[A->b_off[l] + (size_t)o] += rdl[o];
            }
            if (l == 0 && !A->n_stages) break;
            const double *W = theta + A->w_off[l], *V = v + A->w_off[l];
            /* e and re of the layer below, or (l = 0) of the stages' output */
            double *eo = l ? e : st.e[A->n_stages - 1], *reo = l ? re : st.re[A->n_stages - 1];
            for (int j = 0; j < n_in; j++) {
                double s = 0.0, r = 0.0;
                for (int o = 0; o < n_out; o++) {
                    s += dl[o] * W[(size_t)o * n_in + j];
                    r += rdl[o] * W[(size_t)o * n_in + j] + dl[o] * V[(size_t)o * n_in + j];
                }
                eo[j] = s;
                reo[j] = r;
            }
            if (l == 0) stages_backward(&st, A, theta, v, x0, hv);
        }
    }
    free(z), free(a), free(d1), free(d2), free(rz), free(ra);
    free(dl), free(rdl), free(e), free(re);
    stages_free(&st);
    return total / B;
}
