/* Full-batch L-BFGS for quasi-static work: deterministic, no minibatch noise.
 *
 * Objective f(theta) = E(theta) + (beta/2) ||theta - anchor||^2, with E the
 * mean loss over the whole dataset. Search direction from the two-loop
 * recursion over the last m pairs (s, y); step by backtracking until the
 * Armijo condition f(theta + t p) <= f + 1e-4 t g.p holds. Pairs with
 * s.y <= 1e-10 |s||y| are skipped to keep the inverse Hessian positive
 * definite. Dot products are taken in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

static double objective(pf_work *w, const float *theta, const pf_dataset *d, const float *anchor,
                        double beta, float *grad, double *loss)
{
    size_t n = w->arch->n_params;
    *loss = pf_full_gradient(w, theta, d, grad);
    pf_l2_add_grad(grad, theta, anchor, n, beta);
    return *loss + pf_l2_value(theta, anchor, n, beta);
}

int pf_lbfgs(pf_work *w, float *theta, const pf_dataset *d, const float *anchor, double beta,
             const pf_lbfgs_config *cfg, pf_lbfgs_result *res, pf_error *err)
{
    size_t n = w->arch->n_params;
    int m = cfg->history > 0 ? cfg->history : 10;
    float *g = malloc(n * sizeof *g), *p = malloc(n * sizeof *p);
    float *trial = malloc(n * sizeof *trial), *gtrial = malloc(n * sizeof *gtrial);
    float *S = malloc((size_t)m * n * sizeof *S), *Y = malloc((size_t)m * n * sizeof *Y);
    double *rho = malloc((size_t)m * sizeof *rho), *alpha = malloc((size_t)m * sizeof *alpha);
    if (!g || !p || !trial || !gtrial || !S || !Y || !rho || !alpha) {
        free(g), free(p), free(trial), free(gtrial), free(S), free(Y), free(rho), free(alpha);
        return pf_fail(err, PF_ERUNTIME, "out of memory for L-BFGS state");
    }
    memset(res, 0, sizeof *res);
    double loss, f = objective(w, theta, d, anchor, beta, g, &loss);
    res->evaluations = 1;
    int stored = 0, head = 0; /* ring buffer of pairs; head = next slot */
    for (int it = 0; it < cfg->max_iter; it++) {
        double ginf = 0.0;
        for (size_t i = 0; i < n; i++) ginf = fmax(ginf, fabs((double)g[i]));
        res->grad_inf = ginf;
        if (ginf < cfg->grad_tol) {
            res->converged = 1;
            break;
        }
        /* Two-loop recursion: p = -H g. */
        for (size_t i = 0; i < n; i++) p[i] = -g[i];
        for (int k = 0; k < stored; k++) {
            int j = (head - 1 - k + m) % m;
            alpha[j] = rho[j] * dot(S + (size_t)j * n, p, n);
            float a = (float)alpha[j];
            for (size_t i = 0; i < n; i++) p[i] -= a * Y[(size_t)j * n + i];
        }
        if (stored > 0) {
            int j = (head - 1 + m) % m;
            double yy = dot(Y + (size_t)j * n, Y + (size_t)j * n, n);
            float gamma = (float)(1.0 / (rho[j] * yy));
            for (size_t i = 0; i < n; i++) p[i] *= gamma;
        }
        for (int k = stored - 1; k >= 0; k--) {
            int j = (head - 1 - k + m) % m;
            float b = (float)(alpha[j] - rho[j] * dot(Y + (size_t)j * n, p, n));
            for (size_t i = 0; i < n; i++) p[i] += b * S[(size_t)j * n + i];
        }
        double gp = dot(g, p, n);
        if (!(gp < 0.0)) { /* not a descent direction: restart from -g */
            for (size_t i = 0; i < n; i++) p[i] = -g[i];
            gp = dot(g, p, n);
            stored = 0;
        }
        double t = stored ? 1.0 : fmin(1.0, 1.0 / sqrt(-gp));
        double ftrial = f, ltrial = loss;
        int accepted = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (size_t i = 0; i < n; i++) trial[i] = theta[i] + (float)t * p[i];
            ftrial = objective(w, trial, d, anchor, beta, gtrial, &ltrial);
            res->evaluations++;
            if (isfinite(ftrial) && ftrial <= f + 1e-4 * t * gp) {
                accepted = 1;
                break;
            }
            t *= 0.5;
        }
        if (!accepted) break; /* no decrease possible at float precision */
        /* New pair s = t p, y = g_new - g. */
        float *s = S + (size_t)head * n, *y = Y + (size_t)head * n;
        for (size_t i = 0; i < n; i++) {
            s[i] = trial[i] - theta[i];
            y[i] = gtrial[i] - g[i];
        }
        double sy = dot(s, y, n), ss = dot(s, s, n), yy = dot(y, y, n);
        if (sy > 1e-10 * sqrt(ss * yy)) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (stored < m) stored++;
        }
        double fprev = f;
        memcpy(theta, trial, n * sizeof *theta);
        memcpy(g, gtrial, n * sizeof *g);
        f = ftrial;
        loss = ltrial;
        res->iterations = it + 1;
        if (fprev - f <= cfg->ftol * fmax(1.0, fabs(f))) {
            res->converged = 1;
            break;
        }
    }
    res->f = f;
    res->loss = loss;
    free(g), free(p), free(trial), free(gtrial), free(S), free(Y), free(rho), free(alpha);
    return PF_OK;
}
