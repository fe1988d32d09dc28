/* The reference MLP: the same mathematics as mlp.c in plain double loops,
 * without BLAS. It is the readable definition of forward, loss and backward,
 * the subject of the finite-difference checks, and the yardstick for the
 * fast float path.
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

double pf_ref_loss_grad(const pf_arch *A, const double *theta, const double *x, const int *labels,
                        const double *targets, int B, double *grad)
{
    int L = A->n_layers, K = A->sizes[L];
    /* z and a for one sample, all layers; offsets by layer. */
    size_t tot = 0, off[PF_MAX_LAYERS + 1];
    for (int l = 0; l < L; l++) {
        off[l] = tot;
        tot += (size_t)A->sizes[l + 1];
    }
    int wide = 0;
    for (int l = 0; l <= L; l++)
        if (A->sizes[l] > wide) wide = A->sizes[l];
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
        const double *out = a + off[L - 1];
        if (A->loss == PF_LOSS_CE) {
            double mx = out[0];
            for (int k = 1; k < K; k++) mx = out[k] > mx ? out[k] : mx;
            double s = 0.0;
            for (int k = 0; k < K; k++) s += exp(out[k] - mx);
            double lse = mx + log(s);
            total += lse - out[labels[i]];
            for (int k = 0; k < K; k++) d[k] = (exp(out[k] - lse) - (k == labels[i])) / B;
        } else {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double r = out[k] - targets[(size_t)i * K + k];
                s += r * r;
                d[k] = r / B;
            }
            total += 0.5 * s;
        }
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
