/* The reference MLP: the same mathematics as mlp.c and hessian.c in plain
 * double loops, without BLAS. It is the readable definition of forward,
 * loss, backward and the Hessian-vector product, the subject of the
 * finite-difference checks, and the yardstick for the fast float paths.
 *
 *   z_l = W_l a_{l-1} + b_l,  a_l = act_l(z_l)       (per sample)
 *   CE:  loss = mean_i [ logsumexp(a_L,i) - a_L,i[y_i] ]
 *   MSE: loss = mean_i 1/2 sum_k (a_L,i[k] - t_i[k])^2
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

double pf_ref_loss_grad(const pf_arch *A, const double *theta, const double *x, const int *labels,
                        const double *targets, int B, double *grad)
{
    int L = A->n_layers, K = A->sizes[L], wide;
    /* z and a for one sample, all layers; offsets by layer. */
    size_t off[PF_MAX_LAYERS + 1], tot = layer_offsets(A, off, &wide);
    double *z = calloc(tot, sizeof *z), *a = calloc(tot, sizeof *a);
    double *d = calloc((size_t)wide, sizeof *d), *dn = calloc((size_t)wide, sizeof *dn);
    if (grad) memset(grad, 0, A->n_params * sizeof *grad);
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const double *xi = x + (size_t)i * A->sizes[0];
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
    memset(hv, 0, A->n_params * sizeof *hv);
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const double *xi = x + (size_t)i * A->sizes[0];
        for (int l = 0; l < L; l++) {
            int n_in = A->sizes[l], n_out = A->sizes[l + 1];
            const double *in = l ? a + off[l - 1] : xi;
            const double *rin = l ? ra + off[l - 1] : NULL;
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
            const double *rin = l ? ra + off[l - 1] : NULL;
            double *hW = hv + A->w_off[l];
            for (int o = 0; o < n_out; o++) {
                for (int j = 0; j < n_in; j++)
                    hW[(size_t)o * n_in + j] += rdl[o] * in[j] + (rin ? dl[o] * rin[j] : 0.0);
                if (A->bias) hv[A->b_off[l] + (size_t)o] += rdl[o];
            }
            if (l == 0) break;
            const double *W = theta + A->w_off[l], *V = v + A->w_off[l];
            for (int j = 0; j < n_in; j++) {
                double s = 0.0, r = 0.0;
                for (int o = 0; o < n_out; o++) {
                    s += dl[o] * W[(size_t)o * n_in + j];
                    r += rdl[o] * W[(size_t)o * n_in + j] + dl[o] * V[(size_t)o * n_in + j];
                }
                e[j] = s;
                re[j] = r;
            }
        }
    }
    free(z), free(a), free(d1), free(d2), free(rz), free(ra);
    free(dl), free(rdl), free(e), free(re);
    return total / B;
}
