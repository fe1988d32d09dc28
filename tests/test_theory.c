/* The second-order methods and the fold analysis, on landscapes whose
 * answers are known in closed form, and on tiny networks.
 *
 * The fold landscape. In rotated coordinates u = cos(phi) x + sin(phi) y,
 * w = -sin(phi) x + cos(phi) y,
 *     E(x, y) = u^4/4 - 2u^3/3 + kappa w^2/2,
 *     L_beta  = E + (beta/2)(x^2 + y^2) = E + (beta/2)(u^2 + w^2).
 * dL/du = u (u^2 - 2u + beta): besides u = 0, critical points at
 * u = 1 -+ s with s = sqrt(1 - beta), w = 0. For beta < 1 = beta_c, u = 1 + s
 * is a (metastable) minimum with lowest curvature 2s(1 + s) (while below
 * kappa + beta), and u = 1 - s an index-1 saddle with curvature -2s(1 - s);
 * they merge at beta_c = 1, where lambda_min ~ 2 (beta_c - beta)^(1/2):
 * gamma = 1/2. The barrier is L(1 - s) - L(1 + s) = (4/3) s^3, the 3/2 power
 * law, exactly; the soft mode is (cos phi, sin phi), along the jump to u = 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/hessian.h"
#include "exp/results.h"

/* ---- the fold landscape ---------------------------------------------------------- */

typedef struct {
    double beta, kappa, c, s;   /* c, s: cos and sin of the rotation */
    double offset;              /* added to f (a loss far above the barrier) */
    long evals, hvps;
    double at_u;                /* u of the point products are taken at */
} fold2d;

static void to_uw(const fold2d *F, const double *x, double *u, double *w)
{
    *u = F->c * x[0] + F->s * x[1];
    *w = -F->s * x[0] + F->c * x[1];
}

static int fold_eval(void *ctx, const double *x, double *f, double *grad, pf_error *err)
{
    (void)err;
    fold2d *F = ctx;
    double u, w;
    to_uw(F, x, &u, &w);
    F->evals++;
    *f = u * u * u * u / 4 - 2 * u * u * u / 3 + F->kappa * w * w / 2 + F->beta * (u * u + w * w) / 2 +
         F->offset;
    if (grad) {
        double gu = u * u * u - 2 * u * u + F->beta * u, gw = (F->kappa + F->beta) * w;
        grad[0] = F->c * gu - F->s * gw;
        grad[1] = F->s * gu + F->c * gw;
    }
    return PF_OK;
}

static int fold_at(void *ctx, const double *x, pf_error *err)
{
    (void)err;
    fold2d *F = ctx;
    double w;
    to_uw(F, x, &F->at_u, &w);
    return PF_OK;
}

static int fold_hvp(void *ctx, const double *v, double *hv, pf_error *err)
{
    (void)err;
    fold2d *F = ctx;
    double vu, vw, u = F->at_u;
    to_uw(F, v, &vu, &vw);
    double hu = (3 * u * u - 4 * u + F->beta) * vu, hw = (F->kappa + F->beta) * vw;
    hv[0] = F->c * hu - F->s * hw;
    hv[1] = F->s * hu + F->c * hw;
    F->hvps++;
    return PF_OK;
}

static pf_objective fold_objective(fold2d *F, double beta)
{
    memset(F, 0, sizeof *F);
    F->beta = beta;
    F->kappa = 3.0;
    double phi = 0.4;
    F->c = cos(phi);
    F->s = sin(phi);
    pf_objective o = {2, F, fold_eval, fold_at, fold_hvp};
    return o;
}

/* x from (u, w) */
static void from_uw(const fold2d *F, double u, double w, double *x)
{
    x[0] = F->c * u - F->s * w;
    x[1] = F->s * u + F->c * w;
}

/* The landscape's gradient and products against central differences. */
static void test_fold_landscape_derivatives(void **state)
{
    (void)state;
    fold2d F;
    pf_objective o = fold_objective(&F, 0.7);
    double x[2] = {0.9, -0.3}, g[2], f, fp, fm, gp[2], gm[2], h = 1e-6;
    pf_error err;
    fold_eval(&F, x, &f, g, &err);
    fold_at(&F, x, &err);
    for (int k = 0; k < 2; k++) {
        double xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
        xp[k] += h, xm[k] -= h;
        fold_eval(&F, xp, &fp, gp, &err);
        fold_eval(&F, xm, &fm, gm, &err);
        assert_true(fabs((fp - fm) / (2 * h) - g[k]) < 1e-8);
        double e[2] = {k == 0, k == 1}, hv[2];
        o.hvp(o.ctx, e, hv, &err);
        for (int j = 0; j < 2; j++) assert_true(fabs((gp[j] - gm[j]) / (2 * h) - hv[j]) < 1e-7);
    }
}

/* Newton-CG from near the metastable minimum converges to it, quadratically. */
static void test_newton_finds_the_minimum(void **state)
{
    (void)state;
    fold2d F;
    pf_objective o = fold_objective(&F, 0.75);
    double s = sqrt(0.25), x[2], want[2];
    from_uw(&F, 1 + s + 0.3, 0.2, x);
    from_uw(&F, 1 + s, 0.0, want);
    pf_newton_config c;
    pf_newton_config_default(&c);
    c.grad_tol = 1e-12;
    pf_newton_result r;
    pf_error err;
    assert_int_equal(pf_newton(&o, x, &c, &r, &err), PF_OK);
    assert_true(r.converged);
    assert_true(r.iterations <= 12);
    assert_true(fabs(x[0] - want[0]) < 1e-10 && fabs(x[1] - want[1]) < 1e-10);
}

/* Quasi-static: the certified branch up to beta_c, its lambda_min against the
 * closed form, and the fit of lambda_min = a (beta_c - beta)^gamma: beta_c = 1,
 * gamma = 1/2. The eigenvector of lambda_min points along the jump. */
static void test_fold_exponent_and_beta_c(void **state)
{
    (void)state;
    enum { N = 14 };
    double beta[N], lam[N], x[2], modes[4];
    int have = 0;
    fold2d F;
    pf_objective o = fold_objective(&F, 0.5);
    from_uw(&F, 1 + sqrt(0.5), 0.0, x);
    pf_newton_config nc;
    pf_newton_config_default(&nc);
    nc.grad_tol = 1e-13;
    pf_certificate_config cc;
    pf_certificate_config_default(&cc);
    cc.grad_tol = 1e-12;
    pf_error err;
    for (int i = 0; i < N; i++) {
        beta[i] = 1.0 - 1e-2 * pow(0.4, i);   /* 1e-2 .. 6.7e-8 below beta_c */
        F.beta = beta[i];
        pf_newton_result nr;
        assert_int_equal(pf_newton(&o, x, &nc, &nr, &err), PF_OK);
        assert_true(nr.converged);
        pf_certificate cert;
        assert_int_equal(pf_certify_minimum(&o, x, &cc, modes, &have, NULL, NULL, &cert, &err), PF_OK);
        assert_true(cert.certified);
        double s = sqrt(1 - beta[i]);
        lam[i] = cert.lambda_min;
        assert_true(fabs(lam[i] - 2 * s * (1 + s)) < 1e-9);
        /* the soft mode is the u axis, the jump's direction (to u = 0) */
        assert_true(fabs(fabs(modes[0] * F.c + modes[1] * F.s) - 1) < 1e-9);
    }
    pf_power_fit_config pc;
    pf_power_fit_config_default(&pc);
    pc.n_boot = 200;
    pf_power_fit fit, half;
    assert_int_equal(pf_power_fit_run(beta, lam, N, PF_POWER_FREE, NAN, &pc, &fit, &err), PF_OK);
    assert_true(fit.ok);
    assert_true(fabs(fit.beta_c - 1.0) < 1e-4);
    assert_true(fabs(fit.exponent - 0.5) < 0.03);
    assert_true(fit.beta_c_lo <= fit.beta_c && fit.beta_c <= fit.beta_c_hi);
    assert_true(fit.exponent_lo <= 0.5 + 0.03 && fit.exponent_hi >= 0.5 - 0.03);
    assert_int_equal(pf_power_fit_run(beta, lam, N, PF_POWER_HALF, NAN, &pc, &half, &err), PF_OK);
    assert_true(fabs(half.beta_c - 1.0) < 1e-3);
}

/* A quadratic bowl f = x'Dx/2 whose products carry an error on the top
 * mode alone, like the floor float products put under it (here 3e-6 of
 * lambda_max): the top pair's measured residual then stays above the
 * tolerance whatever Lanczos does. The certificate is about lambda_min and
 * must not refuse the point. */
enum { BOWL_N = 40 };

static double bowl_d(int i)
{
    return 0.1 + 0.9 * i / (BOWL_N - 1);
}

static int bowl_eval(void *ctx, const double *x, double *f, double *grad, pf_error *err)
{
    (void)ctx, (void)err;
    double s = 0;
    for (int i = 0; i < BOWL_N; i++) {
        double d = bowl_d(i);
        s += 0.5 * d * x[i] * x[i];
        if (grad) grad[i] = d * x[i];
    }
    *f = s;
    return PF_OK;
}

static int bowl_at(void *ctx, const double *x, pf_error *err)
{
    (void)ctx, (void)x, (void)err;
    return PF_OK;
}

static int bowl_hvp(void *ctx, const double *v, double *hv, pf_error *err)
{
    (void)err;
    double noise = *(const double *)ctx;
    for (int i = 0; i < BOWL_N; i++) hv[i] = bowl_d(i) * v[i];
    hv[1] += noise * v[BOWL_N - 1]; /* the top mode leaks into another */
    return PF_OK;
}

static void test_certificate_needs_only_the_lowest_pair(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        double noise = k ? 3e-6 : 0.0;
        pf_objective o = {BOWL_N, &noise, bowl_eval, bowl_at, bowl_hvp};
        double x[BOWL_N] = {0}, modes[2 * BOWL_N];
        int have = 0;
        pf_certificate_config cc;
        pf_certificate_config_default(&cc);
        pf_certificate cert;
        pf_error err;
        assert_int_equal(pf_certify_minimum(&o, x, &cc, modes, &have, NULL, NULL, &cert, &err), PF_OK);
        assert_true(fabs(cert.lambda_min - 0.1) < 1e-9 && fabs(cert.lambda_max - 1.0) < 1e-5);
        if (k) assert_true(cert.res_max > 1e-6); /* the top pair is not converged... */
        assert_true(cert.res_min <= 1e-6);
        assert_true(cert.certified);              /* ...and the minimum is certified */
    }
}

/* The fit recovers a known power law from noisy points, with intervals
 * that hold the truth; reproducible (seeded). */
static void test_power_fit_recovers_a_law(void **state)
{
    (void)state;
    enum { N = 12 };
    double beta[N], y[N];
    pf_rng rng;
    pf_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        double d = 1e-5 * pow(2.0, i);
        beta[i] = 0.0375 - d;
        y[i] = 0.8 * pow(d, 1.5) * (1 + 0.02 * (2 * pf_rng_uniform(&rng) - 1));
    }
    pf_power_fit_config pc;
    pf_power_fit_config_default(&pc);
    pf_power_fit a, b, fx;
    pf_error err;
    assert_int_equal(pf_power_fit_run(beta, y, N, PF_POWER_FREE, NAN, &pc, &a, &err), PF_OK);
    assert_int_equal(pf_power_fit_run(beta, y, N, PF_POWER_FREE, NAN, &pc, &b, &err), PF_OK);
    assert_true(memcmp(&a, &b, sizeof a) == 0);
    assert_true(fabs(a.exponent - 1.5) < 0.05 && a.exponent_lo < 1.5 && a.exponent_hi > 1.5);
    assert_true(fabs(a.beta_c - 0.0375) < 2e-6);
    assert_int_equal(pf_power_fit_run(beta, y, N, PF_POWER_FIXED, 0.0375, &pc, &fx, &err), PF_OK);
    assert_true(fabs(fx.exponent - 1.5) < 0.02 && fx.exponent_lo < 1.5 && fx.exponent_hi > 1.5);
    /* an exact fit (three parameters, three or four points) has no interval;
     * five points have one, around the estimate */
    for (long n = 3; n <= 5; n++) {
        assert_int_equal(pf_power_fit_run(beta, y, n, PF_POWER_FREE, NAN, &pc, &a, &err), PF_OK);
        assert_true(a.ok);
        if (n < 5) {
            assert_true(isnan(a.exponent_lo) && isnan(a.beta_c_hi));
        } else {
            assert_true(a.exponent_lo < a.exponent && a.exponent < a.exponent_hi);
            assert_true(a.beta_c_lo < a.beta_c_hi);
        }
    }
    assert_int_equal(pf_power_fit_run(beta, y, 3, PF_POWER_HALF, NAN, &pc, &a, &err), PF_OK);
    assert_true(a.ok && isnan(a.beta_c_lo));
    assert_int_equal(pf_power_fit_run(beta, y, 4, PF_POWER_HALF, NAN, &pc, &a, &err), PF_OK);
    assert_true(a.ok && a.beta_c_lo < a.beta_c_hi);
    /* too few points: no fit, no error */
    assert_int_equal(pf_power_fit_run(beta, y, 2, PF_POWER_FREE, NAN, &pc, &a, &err), PF_OK);
    assert_false(a.ok);
}

/* The fold of a leg's transition: the old phase's certified points (the
 * sweep's from the transition back to the boundary before, then the
 * bisection's old-phase side) fitted with lambda_min = a (beta_c - beta)^g
 * give beta_c inside the refined interval and g = 1/2; uncertified points
 * and the phase before the previous transition are left out; a down leg
 * is the mirror image. */
static void test_leg_fold(void **state)
{
    (void)state;
    const double beta_c = 0.04, a = 0.3;
    enum { N = 30 };
    for (int dir = 1; dir >= -1; dir -= 2) {
        pf_point_result rows[N];
        memset(rows, 0, sizeof rows);
        /* ascending beta; up: the transition between 19 and 20, another between 4 and 5 */
        for (int i = 0; i < N; i++) {
            double d = 1e-3 * (20 - i) - 0.5e-3; /* beta_c - beta: positive below */
            double beta = dir > 0 ? beta_c - d : beta_c + d;
            rows[i].point.beta = beta;
            rows[i].point.direction = dir;
            rows[i].has_certificate = rows[i].has_hessian = 1;
            rows[i].certified = i != 12;
            /* the old phase follows the law; the new one does not */
            rows[i].lambda_min_E = (d > 0 ? a * sqrt(d) : 0.5) * (i == 12 ? 10 : 1) - beta;
        }
        if (dir < 0) {
            /* a down leg comes from above: sort ascending */
            for (int i = 0; i < N / 2; i++) {
                pf_point_result t = rows[i];
                rows[i] = rows[N - 1 - i], rows[N - 1 - i] = t;
            }
        }
        pf_transition t[2];
        memset(t, 0, sizeof t);
        long near = dir > 0 ? 19 : N - 20, far = dir > 0 ? 4 : N - 5;
        t[0].below = dir > 0 ? far : far - 1, t[0].above = t[0].below + 1;
        t[1].below = dir > 0 ? near : near - 1, t[1].above = t[1].below + 1;
        pf_refined ref[2];
        int has[2] = {0, 1};
        memset(ref, 0, sizeof ref);
        pf_refined *f = &ref[1];
        double from = rows[near].point.beta;
        f->beta_from = beta_c - dir * 1e-7, f->beta_to = beta_c + dir * 1e-7;
        f->overlap = 0.9;
        f->branch_beta[f->n_branch] = from, f->branch_lambda_min[f->n_branch] = 99, f->branch_certified[f->n_branch++] = 1;
        for (int k = 0; k < 6; k++) {
            double d = 0.5e-3 * pow(0.25, k + 1);
            f->branch_beta[f->n_branch] = beta_c - dir * d;
            f->branch_lambda_min[f->n_branch] = a * sqrt(d);
            f->branch_certified[f->n_branch++] = 1;
        }
        pf_leg g;
        memset(&g, 0, sizeof g);
        g.direction = dir, g.n = N, g.sorted = rows, g.t = t, g.nt = 2, g.refined = ref, g.has_refined = has;
        pf_power_fit_config pc;
        pf_power_fit_config_default(&pc);
        pf_fold fold;
        pf_error err;
        assert_int_equal(pf_leg_fold(&g, 1, &pc, 0, &fold, &err), PF_OK);
        /* the sweep's 15 of the phase (one uncertified) and the bisection's 6 */
        assert_int_equal(fold.n_points, 14 + 6);
        assert_true(fold.ok);
        if (!(fabs(fold.fit.exponent - 0.5) < 1e-3)) fail_msg("dir %d: exponent %g", dir, fold.fit.exponent);
        if (!(fabs(fold.fit.beta_c - beta_c) < 1e-8)) fail_msg("dir %d: beta_c %.12g", dir, fold.fit.beta_c);
        assert_true(fold.fit.beta_c_lo <= fold.fit.beta_c + 1e-12 && fold.fit.beta_c_hi >= fold.fit.beta_c - 1e-12);
        assert_true(fold.gap >= 0 && fold.gap < 1e-8);
        assert_true(fabs(fold.half.beta_c - beta_c) < 1e-8);
        assert_true(fold.overlap == 0.9);
        pf_fold_free(&fold);
        /* only the nearest sweep points, the bisection's all */
        assert_int_equal(pf_leg_fold(&g, 1, &pc, 4, &fold, &err), PF_OK);
        assert_int_equal(fold.n_points, 4 + 6);
        assert_true(fabs(fold.fit.exponent - 0.5) < 1e-3);
        pf_fold_free(&fold);
    }
}

/* The saddle next to the metastable minimum: position, index 1, the
 * eigenvalue and the barrier (4/3) s^3, all in closed form. */
static void test_saddle_in_closed_form(void **state)
{
    (void)state;
    const double betas[3] = {0.9, 0.99, 0.9999};
    for (int b = 0; b < 3; b++) {
        fold2d F;
        pf_objective o = fold_objective(&F, betas[b]);
        double s = sqrt(1 - betas[b]), x[2], want[2], mode[2];
        from_uw(&F, 1 + s, 0.0, x);
        pf_saddle_config sc;
        pf_saddle_config_default(&sc);
        sc.grad_tol = 1e-12;
        pf_saddle_result r;
        pf_error err;
        assert_int_equal(pf_saddle_search(&o, x, mode, &sc, &r, &err), PF_OK);
        assert_true(r.converged);
        from_uw(&F, 1 - s, 0.0, want);
        assert_true(fabs(x[0] - want[0]) < 1e-9 && fabs(x[1] - want[1]) < 1e-9);
        assert_int_equal(r.index, 1);
        assert_true(fabs(r.eig[0] + 2 * s * (1 - s)) < 1e-9);
        assert_true(fabs((r.f - r.f_start) - 4.0 / 3.0 * s * s * s) < 1e-12 + 1e-9 * s * s * s);
        if (!(fabs(r.barrier_path - 4.0 / 3.0 * s * s * s) < 1e-12 * s * s * s))
            fail_msg("beta %g: barrier along the path %.12g, closed form %.12g", betas[b], r.barrier_path,
                     4.0 / 3.0 * s * s * s);
        assert_true(fabs(r.distance - 2 * s) < 1e-9);
        assert_true(fabs(r.overlap - 1) < 1e-9);
        /* the normal form's guesses: t* = -2s(1+s)/(2+6s) and its barrier */
        assert_true(fabs(fabs(r.t_normal_form) - 4 * s * (1 + s) / (2 + 6 * s)) < 1e-4 * s + 1e-8);
    }
}

/* The barrier along the path keeps its digits where f(saddle) - f(start)
 * loses them: with f offset by 1e6 (a landscape whose loss is far above
 * its barrier, as a network's is near a fold) the difference of values
 * is off by rounding of 1e6, the integral of the gradient is not. */
static void test_saddle_barrier_without_cancellation(void **state)
{
    (void)state;
    const double beta = 0.99999999, s = sqrt(1 - beta), want = 4.0 / 3.0 * s * s * s;
    fold2d F;
    pf_objective o = fold_objective(&F, beta);
    F.offset = 1e6;
    double x[2], mode[2];
    from_uw(&F, 1 + s, 0.0, x);
    pf_saddle_config sc;
    pf_saddle_config_default(&sc);
    sc.grad_tol = 1e-13;
    pf_saddle_result r;
    pf_error err;
    assert_int_equal(pf_saddle_search(&o, x, mode, &sc, &r, &err), PF_OK);
    assert_true(r.converged);
    assert_int_equal(r.index, 1);
    /* the difference of values: rounding of 1e6 is 1e-10, the barrier 1.3e-12 */
    if (!(fabs((r.f - r.f_start) - want) > 0.01 * want))
        fail_msg("the difference of values was expected to lose the barrier (%.3g against %.3g)",
                 r.f - r.f_start, want);
    if (!(fabs(r.barrier_path - want) < 1e-6 * want))
        fail_msg("barrier along the path %.9g, closed form %.9g", r.barrier_path, want);
}

/* The escape: started on the saddle itself (gradient zero), Newton stops at
 * once; certification finds lambda_min < 0, steps along its eigenvector,
 * converges again and certifies a minimum below the saddle. */
typedef struct {
    const pf_objective *o;
    const pf_newton_config *nc;
    int calls;
} reconv;

static int newton_again(void *ctx, double *x, pf_error *err)
{
    reconv *r = ctx;
    pf_newton_result nr;
    r->calls++;
    return pf_newton(r->o, x, r->nc, &nr, err);
}

static void test_escape_from_a_saddle(void **state)
{
    (void)state;
    fold2d F;
    pf_objective o = fold_objective(&F, 0.64);
    double s = 0.6, x[2], modes[4], f_saddle, f_end, g[2];
    int have = 0;
    from_uw(&F, 1 - s, 0.0, x);
    pf_error err;
    fold_eval(&F, x, &f_saddle, g, &err);
    assert_true(fabs(g[0]) < 1e-15 && fabs(g[1]) < 1e-15);
    pf_newton_config nc;
    pf_newton_config_default(&nc);
    nc.grad_tol = 1e-12;
    pf_newton_result nr;
    assert_int_equal(pf_newton(&o, x, &nc, &nr, &err), PF_OK);
    assert_int_equal(nr.iterations, 0); /* a critical point: Newton alone stays */
    pf_certificate_config cc;
    pf_certificate_config_default(&cc);
    cc.grad_tol = 1e-12;
    reconv rv = {&o, &nc, 0};
    pf_certificate cert;
    assert_int_equal(pf_certify_minimum(&o, x, &cc, modes, &have, newton_again, &rv, &cert, &err), PF_OK);
    assert_true(cert.escapes >= 1 && rv.calls == cert.escapes);
    assert_true(cert.certified && cert.lambda_min > 0);
    fold_eval(&F, x, &f_end, g, &err);
    assert_true(f_end < f_saddle - 1e-3);
    /* one of the two minima: u = 0 or u = 1 + s */
    double u, w;
    to_uw(&F, x, &u, &w);
    assert_true(fabs(w) < 1e-9 && (fabs(u) < 1e-9 || fabs(u - 1 - s) < 1e-9));
    /* without a way to converge again it is marked, not passed */
    from_uw(&F, 1 - s, 0.0, x);
    have = 0;
    assert_int_equal(pf_certify_minimum(&o, x, &cc, modes, &have, NULL, NULL, &cert, &err), PF_OK);
    assert_false(cert.certified);
    assert_false(cert.curvature_ok);
    assert_true(cert.lambda_min < -cert.eps);
}

/* ---- tiny networks ------------------------------------------------------------------ */

typedef struct {
    pf_arch arch;
    pf_dataset d;
    float *x;
    int *labels;
} tiny;

static void tiny_make(tiny *t, int n, uint64_t seed)
{
    pf_error err;
    const int sizes[3] = {4, 6, 3};
    const pf_act acts[2] = {PF_ACT_SIGMOID, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&t->arch, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    t->x = malloc((size_t)n * 4 * sizeof *t->x);
    t->labels = malloc((size_t)n * sizeof *t->labels);
    for (int i = 0; i < n; i++) {
        t->labels[i] = (int)pf_rng_below(&rng, 3);
        for (int j = 0; j < 4; j++)
            t->x[i * 4 + j] = (float)(2 * pf_rng_uniform(&rng) - 1 + (j == t->labels[i] ? 1.0 : 0.0));
    }
    memset(&t->d, 0, sizeof t->d);
    t->d.n = (size_t)n;
    t->d.dim = 4;
    t->d.x = t->x;
    t->d.labels = t->labels;
    t->d.n_classes = 3;
    snprintf(t->d.name, sizeof t->d.name, "tiny");
}

static void tiny_free(tiny *t)
{
    free(t->x);
    free(t->labels);
}

/* The MLP objective: gradient and products against central differences
 * (float passes: loose tolerances, well above rounding). */
static void test_mlp_objective_derivatives(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t, 50, 1);
    pf_error err;
    pf_work gw, hw;
    assert_int_equal(pf_work_init(&gw, NULL, &t.arch, 16, &err), PF_OK);
    assert_int_equal(pf_work_init(&hw, NULL, &t.arch, 16, &err), PF_OK);
    pf_mlp_objective *mo;
    assert_int_equal(pf_mlp_objective_create(&mo, &gw, &hw, &t.d, &err), PF_OK);
    size_t n = t.arch.n_params;
    float *anchor = malloc(n * sizeof *anchor);
    float *th = malloc(n * sizeof *th);
    pf_rng rng;
    pf_rng_seed(&rng, 2);
    pf_init_params(&t.arch, th, &rng);
    for (size_t i = 0; i < n; i++) anchor[i] = (float)(0.1 * (2 * pf_rng_uniform(&rng) - 1));
    pf_mlp_objective_set(mo, 0.05, anchor);
    pf_objective o = pf_mlp_objective_get(mo);
    double *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g), *gp = malloc(n * sizeof *gp);
    double *gm = malloc(n * sizeof *gm), *v = malloc(n * sizeof *v), *hv = malloc(n * sizeof *hv);
    double *xp = malloc(n * sizeof *xp), f, fp, fm;
    for (size_t i = 0; i < n; i++) x[i] = th[i], v[i] = 2 * pf_rng_uniform(&rng) - 1;
    assert_int_equal(o.eval(o.ctx, x, &f, g, &err), PF_OK);
    assert_int_equal(o.at(o.ctx, x, &err), PF_OK);
    assert_int_equal(o.hvp(o.ctx, v, hv, &err), PF_OK);
    double h = 1e-2, gv = 0, hvn = 0, miss = 0;
    for (size_t i = 0; i < n; i++) xp[i] = x[i] + h * v[i];
    o.eval(o.ctx, xp, &fp, gp, &err);
    for (size_t i = 0; i < n; i++) xp[i] = x[i] - h * v[i];
    o.eval(o.ctx, xp, &fm, gm, &err);
    for (size_t i = 0; i < n; i++) {
        gv += g[i] * v[i];
        double fd = (gp[i] - gm[i]) / (2 * h);
        miss += (fd - hv[i]) * (fd - hv[i]);
        hvn += hv[i] * hv[i];
    }
    assert_true(fabs((fp - fm) / (2 * h) - gv) < 1e-4 * (1 + fabs(gv)));
    assert_true(sqrt(miss) < 1e-3 * sqrt(hvn));
    pf_mlp_objective_free(mo);
    pf_work_free(&gw);
    pf_work_free(&hw);
    free(anchor), free(th), free(x), free(g), free(gp), free(gm), free(v), free(hv), free(xp);
    tiny_free(&t);
}

/* Newton-CG and L-BFGS through the trainer reach the same minimum of a tiny
 * net; Newton's is certified and bit-identical on a rerun. */
static void test_newton_matches_lbfgs(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t, 60, 3);
    size_t n = t.arch.n_params;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    pf_rng rng;
    pf_rng_seed(&rng, 4);
    pf_init_params(&t.arch, a, &rng);
    memcpy(b, a, n * sizeof *a);
    memcpy(c, a, n * sizeof *a);
    pf_error err;
    pf_train_config lc, nc;
    pf_train_config_default(&lc, PF_OPT_LBFGS);
    lc.batch = 0, lc.beta = 0.1, lc.max_epochs = 5000, lc.grad_tol = 1e-6, lc.ftol = 0;
    pf_train_config_default(&nc, PF_OPT_NEWTON);
    nc.beta = 0.1, nc.certify = 1;
    assert_int_equal(nc.batch, 0);
    assert_true(nc.grad_tol == 1e-6);
    pf_trainer tl, tn;
    assert_int_equal(pf_trainer_init(&tl, NULL, &t.arch, &lc.opt, 0, t.d.n, 1, &err), PF_OK);
    assert_int_equal(pf_trainer_init(&tn, NULL, &t.arch, &nc.opt, 0, t.d.n, 1, &err), PF_OK);
    pf_train_result rl, rn, rn2;
    assert_int_equal(pf_train_beta(&tl, a, &t.d, &lc, &rl, &err), PF_OK);
    assert_int_equal(pf_train_beta(&tn, b, &t.d, &nc, &rn, &err), PF_OK);
    assert_true(rn.has_cert && rn.cert.certified);
    assert_true(rn.cert.grad_inf <= 1e-6);
    assert_true(rn.cert.lambda_min > 0);
    assert_true(rn.epochs < 60);   /* Newton iterations, against L-BFGS's hundreds */
    /* L-BFGS stops where float line searches stall (|g| ~ 3e-6), which along
     * the soft mode (lambda_min ~ 3e-3) is ~1e-3 from the minimum */
    double d = pf_distance(a, b, n), r = pf_distance(b, NULL, n);
    assert_true(d < 1e-2 * r);
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &t.arch, 64, &err), PF_OK);
    float *g = malloc(n * sizeof *g);
    double la = pf_full_gradient(&w, a, &t.d, g) + pf_l2_value(a, NULL, n, 0.1);
    double lb = pf_full_gradient(&w, b, &t.d, g) + pf_l2_value(b, NULL, n, 0.1);
    assert_true(fabs(la - lb) < 1e-7 * lb);
    assert_true(fabs(lb - rn.final_reg_loss) < 1e-12 * lb);
    free(g);
    pf_work_free(&w);
    /* a rerun from the same start: the same bits */
    pf_trainer tn2;
    assert_int_equal(pf_trainer_init(&tn2, NULL, &t.arch, &nc.opt, 0, t.d.n, 1, &err), PF_OK);
    assert_int_equal(pf_train_beta(&tn2, c, &t.d, &nc, &rn2, &err), PF_OK);
    assert_memory_equal(b, c, n * sizeof *b);
    assert_true(rn2.cert.lambda_min == rn.cert.lambda_min);
    /* the trainer's state carries the modes, and a trainer given them back
     * certifies the next point as the first one would */
    pf_trainer_state ts;
    assert_int_equal(pf_trainer_get_state(&tn, &ts, &err), PF_OK);
    assert_non_null(ts.modes);
    pf_trainer_state_free(&ts);
    pf_trainer_free(&tl);
    pf_trainer_free(&tn);
    pf_trainer_free(&tn2);
    free(a), free(b), free(c);
    tiny_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_landscape_derivatives),
        cmocka_unit_test(test_newton_finds_the_minimum),
        cmocka_unit_test(test_fold_exponent_and_beta_c),
        cmocka_unit_test(test_certificate_needs_only_the_lowest_pair),
        cmocka_unit_test(test_power_fit_recovers_a_law),
        cmocka_unit_test(test_leg_fold),
        cmocka_unit_test(test_saddle_in_closed_form),
        cmocka_unit_test(test_saddle_barrier_without_cancellation),
        cmocka_unit_test(test_escape_from_a_saddle),
        cmocka_unit_test(test_mlp_objective_derivatives),
        cmocka_unit_test(test_newton_matches_lbfgs),
    };
    return cmocka_run_group_tests_name("theory", tests, NULL, NULL);
}
