/* Hessian-vector products and Lanczos: the double R-operator against central
 * differences of the reference gradient for every activation/loss/bias
 * combination; the fast float path against the reference (beta, subsets,
 * blocks, threads, bit-identical repeats); Lanczos against the dense Hessian
 * of tiny networks; a saddle built by hand; stochastic Lanczos quadrature;
 * and rejection of bad input by the library and the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <cJSON.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "pathfinder/io.h"

/* A small random problem. Inputs, targets and parameters are rounded to
 * float, so the double reference and the float path see the same numbers. */
typedef struct {
    pf_arch arch;
    int B;
    double *theta, *x, *targets, *v;
    int *labels;
    float *theta_f, *x_f, *targets_f, *v_f;
    pf_dataset d;
} problem;

static double rounded(double x) { return (double)(float)x; }

static void problem_make(problem *p, int n_layers, const int *sizes, const pf_act *acts, int bias,
                         pf_loss loss, int B, double scale, uint64_t seed)
{
    pf_error err;
    assert_int_equal(pf_arch_init(&p->arch, n_layers, sizes, acts, bias, loss, &err), PF_OK);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    size_t np = p->arch.n_params;
    int in = sizes[0], K = sizes[n_layers];
    p->B = B;
    p->theta = malloc(np * sizeof(double));
    p->v = malloc(np * sizeof(double));
    p->x = malloc((size_t)B * in * sizeof(double));
    p->targets = malloc((size_t)B * K * sizeof(double));
    p->labels = malloc((size_t)B * sizeof(int));
    p->theta_f = malloc(np * sizeof(float));
    p->v_f = malloc(np * sizeof(float));
    p->x_f = malloc((size_t)B * in * sizeof(float));
    p->targets_f = malloc((size_t)B * K * sizeof(float));
    for (size_t i = 0; i < np; i++) p->theta[i] = rounded((2 * pf_rng_uniform(&rng) - 1) * scale);
    for (size_t i = 0; i < np; i++) p->v[i] = rounded(2 * pf_rng_uniform(&rng) - 1);
    for (int i = 0; i < B * in; i++) p->x[i] = rounded(2 * pf_rng_uniform(&rng) - 1);
    for (int i = 0; i < B * K; i++) p->targets[i] = rounded(pf_rng_uniform(&rng));
    for (int i = 0; i < B; i++) p->labels[i] = (int)pf_rng_below(&rng, (uint64_t)K);
    for (size_t i = 0; i < np; i++) p->theta_f[i] = (float)p->theta[i], p->v_f[i] = (float)p->v[i];
    for (int i = 0; i < B * in; i++) p->x_f[i] = (float)p->x[i];
    for (int i = 0; i < B * K; i++) p->targets_f[i] = (float)p->targets[i];
    memset(&p->d, 0, sizeof p->d);
    p->d.n = (size_t)B;
    p->d.dim = in;
    p->d.x = p->x_f;
    if (loss == PF_LOSS_CE) {
        p->d.labels = p->labels;
        p->d.n_classes = K;
    } else {
        p->d.targets = p->targets_f;
        p->d.n_targets = K;
    }
    snprintf(p->d.name, sizeof p->d.name, "random problem");
}

/* Image-like inputs: each feature holds its own background value except in
 * about a fifth of the samples, which selects the sparse input layer. */
static void problem_make_sparse(problem *p, uint64_t seed)
{
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    int in = p->arch.sizes[0];
    for (int i = 0; i < p->B; i++)
        for (int j = 0; j < in; j++)
            if (pf_rng_uniform(&rng) < 0.8) {
                size_t q = (size_t)i * in + (size_t)j;
                p->x[q] = rounded(-0.25 - 0.01 * (j % 3));
                p->x_f[q] = (float)p->x[q];
            }
}

static void problem_free(problem *p)
{
    free(p->theta), free(p->v), free(p->x), free(p->targets), free(p->labels);
    free(p->theta_f), free(p->v_f), free(p->x_f), free(p->targets_f);
}

static double ref_hvp(const problem *p, int B, const double *v, double *hv)
{
    return pf_ref_hvp(&p->arch, p->theta, p->x, p->labels, p->targets, B, v, hv);
}

static double max_abs(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* ---- the reference R-operator against finite differences ------------------ */

/* H v ~ (g(theta + h v) - g(theta - h v)) / 2h in double; truncation
 * ~h^2 = 1e-10 and round-off ~1e-16/h = 1e-11 relative. */
static void check_rop_fd(int n_layers, const int *sizes, const pf_act *acts, int bias, pf_loss loss)
{
    problem p;
    problem_make(&p, n_layers, sizes, acts, bias, loss, 5, 0.8, 42 + (uint64_t)acts[0]);
    size_t np = p.arch.n_params;
    double *hv = malloc(np * sizeof *hv), *gp = malloc(np * sizeof *gp), *gm = malloc(np * sizeof *gm);
    double *th = malloc(np * sizeof *th);
    double loss_val = ref_hvp(&p, p.B, p.v, hv);
    double loss_ref = pf_ref_loss_grad(&p.arch, p.theta, p.x, p.labels, p.targets, p.B, NULL);
    assert_true(fabs(loss_val - loss_ref) <= 1e-12 * fabs(loss_ref));
    const double h = 1e-5;
    for (size_t i = 0; i < np; i++) th[i] = p.theta[i] + h * p.v[i];
    pf_ref_loss_grad(&p.arch, th, p.x, p.labels, p.targets, p.B, gp);
    for (size_t i = 0; i < np; i++) th[i] = p.theta[i] - h * p.v[i];
    pf_ref_loss_grad(&p.arch, th, p.x, p.labels, p.targets, p.B, gm);
    double scale = max_abs(hv, np), worst = 0.0;
    assert_true(scale > 1e-6);
    for (size_t i = 0; i < np; i++) {
        double fd = (gp[i] - gm[i]) / (2 * h);
        worst = fmax(worst, fabs(fd - hv[i]) / scale);
    }
    if (worst > 1e-6)
        fail_msg("R-operator vs finite differences: worst error %.3g of max|Hv| (act %s, loss %s, "
                 "bias %d, output %s)", worst, pf_act_name(acts[0]), pf_loss_name(loss), bias,
                 pf_act_name(acts[n_layers - 1]));
    free(hv), free(gp), free(gm), free(th);
    problem_free(&p);
}

static void test_rop_matches_finite_differences(void **state)
{
    (void)state;
    const int sizes[] = {4, 6, 5, 3};
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 2; l++)
            for (int b = 0; b < 2; b++) {
                pf_act acts[3] = {(pf_act)a, (pf_act)a, PF_ACT_LINEAR};
                check_rop_fd(3, sizes, acts, b, (pf_loss)l);
                pf_act out_too[3] = {(pf_act)a, (pf_act)a, (pf_act)a};
                check_rop_fd(3, sizes, out_too, b, (pf_loss)l);
            }
    /* any depth, mixed activations */
    const int deep[] = {5, 7, 6, 4, 3};
    pf_act mixed[4] = {PF_ACT_RELU, PF_ACT_TANH, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_rop_fd(4, deep, mixed, 1, PF_LOSS_CE);
    check_rop_fd(4, deep, mixed, 0, PF_LOSS_MSE);
    const int one[] = {6, 4};
    pf_act lin[1] = {PF_ACT_LINEAR};
    check_rop_fd(1, one, lin, 1, PF_LOSS_CE);
}

/* The FD check can fail: a perturbed product is caught. */
static void test_fd_check_detects_error(void **state)
{
    (void)state;
    problem p;
    const int sizes[] = {3, 4, 2};
    pf_act acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    problem_make(&p, 2, sizes, acts, 1, PF_LOSS_CE, 4, 0.8, 3);
    size_t np = p.arch.n_params;
    double *hv = malloc(np * sizeof *hv), *gp = malloc(np * sizeof *gp), *gm = malloc(np * sizeof *gm);
    double *th = malloc(np * sizeof *th);
    ref_hvp(&p, p.B, p.v, hv);
    const double h = 1e-5;
    for (size_t i = 0; i < np; i++) th[i] = p.theta[i] + h * p.v[i];
    pf_ref_loss_grad(&p.arch, th, p.x, p.labels, p.targets, p.B, gp);
    for (size_t i = 0; i < np; i++) th[i] = p.theta[i] - h * p.v[i];
    pf_ref_loss_grad(&p.arch, th, p.x, p.labels, p.targets, p.B, gm);
    size_t i = 5;
    double fd = (gp[i] - gm[i]) / (2 * h);
    assert_true(fabs(fd - hv[i]) < 1e-7 * max_abs(hv, np));
    assert_true(fabs(fd - hv[i] * 1.001) > 1e-6 * max_abs(hv, np));
    free(hv), free(gp), free(gm), free(th);
    problem_free(&p);
}

/* ---- the fast float path ------------------------------------------------- */

static double rel_error(const float *got, const double *want, size_t n)
{
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        e += d * d;
        s += want[i] * want[i];
    }
    return sqrt(e / s);
}

static void check_fast(int n_layers, const int *sizes, const pf_act *acts, int bias, pf_loss loss,
                       int B, int block, size_t subset, double beta, int sparse)
{
    problem p;
    problem_make(&p, n_layers, sizes, acts, bias, loss, B, 0.8, 11 + (uint64_t)acts[0]);
    if (sparse) problem_make_sparse(&p, 17);
    size_t np = p.arch.n_params;
    double *want = malloc(np * sizeof *want);
    float *got = malloc(np * sizeof *got);
    ref_hvp(&p, subset ? (int)subset : B, p.v, want);
    for (size_t i = 0; i < np; i++) want[i] += beta * p.v[i];
    pf_work w;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, block, &err), PF_OK);
    pf_hessian *h;
    assert_int_equal(pf_hessian_create(&h, &w, p.theta_f, &p.d, subset, &err), PF_OK);
    assert_int_equal(pf_hessian_sparse_input(h), sparse);
    pf_hessian_free(h);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, subset, beta, p.v_f, got, &err), PF_OK);
    double e = rel_error(got, want, np);
    if (e > 1e-4)
        fail_msg("fast H.v off by %.3g relative (act %s, loss %s, bias %d, beta %g, subset %zu, "
                 "sparse %d)", e, pf_act_name(acts[0]), pf_loss_name(loss), bias, beta, subset, sparse);
    pf_work_free(&w);
    free(want), free(got);
    problem_free(&p);
}

static void test_fast_matches_reference(void **state)
{
    (void)state;
    const int sizes[] = {20, 16, 12, 5};
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 2; l++)
            for (int b = 0; b < 2; b++) {
                pf_act acts[3] = {(pf_act)a, (pf_act)a, PF_ACT_LINEAR};
                check_fast(3, sizes, acts, b, (pf_loss)l, 37, 8, 0, 0.0, 0);
                check_fast(3, sizes, acts, b, (pf_loss)l, 37, 8, 20, 0.3, 0);
                check_fast(3, sizes, acts, b, (pf_loss)l, 37, 8, 0, 0.0, 1);
                check_fast(3, sizes, acts, b, (pf_loss)l, 37, 8, 20, 0.3, 1);
                pf_act out_too[3] = {(pf_act)a, (pf_act)a, (pf_act)a};
                check_fast(3, sizes, out_too, b, (pf_loss)l, 37, 64, 0, 0.01, 0);
            }
    const int deep[] = {9, 7, 6, 5, 4, 3};
    pf_act mixed[5] = {PF_ACT_RELU, PF_ACT_TANH, PF_ACT_SIGMOID, PF_ACT_LINEAR, PF_ACT_LINEAR};
    check_fast(5, deep, mixed, 1, PF_LOSS_CE, 50, 7, 0, 0.5, 0);
    /* sparse input layers of every width class: chunks of 16, 8, 4, 2, 1
     * registers and a scalar tail */
    const int wide[] = {40, 300, 7, 3}, odd[] = {17, 5, 4}, one[] = {16, 1, 2};
    pf_act relu3[3] = {PF_ACT_RELU, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_fast(3, wide, relu3, 1, PF_LOSS_CE, 29, 6, 0, 0.0, 1);
    check_fast(3, wide, relu3, 0, PF_LOSS_MSE, 29, 64, 11, 0.2, 1);
    check_fast(2, odd, relu3 + 1, 1, PF_LOSS_MSE, 33, 5, 0, 0.0, 1);
    check_fast(2, one, relu3 + 1, 1, PF_LOSS_CE, 33, 5, 0, 0.0, 1);
    /* the paper's MLP, a few blocks, dense and image-like inputs */
    const int paper[] = {784, 128, 128, 10};
    pf_act sig[3] = {PF_ACT_SIGMOID, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_fast(3, paper, sig, 1, PF_LOSS_CE, 48, 16, 0, 0.002, 0);
    check_fast(3, paper, sig, 1, PF_LOSS_CE, 48, 16, 0, 0.002, 1);
}

/* Same thread count -> bit-identical products (and Lanczos); two threads
 * agree with one up to float rounding. */
static void check_threads(int sparse)
{
    problem p;
    const int sizes[] = {30, 20, 16, 10};
    pf_act acts[3] = {PF_ACT_SIGMOID, PF_ACT_TANH, PF_ACT_LINEAR};
    problem_make(&p, 3, sizes, acts, 1, PF_LOSS_CE, 301, 0.8, 5);
    if (sparse) problem_make_sparse(&p, 6);
    size_t np = p.arch.n_params;
    float *one = malloc(np * sizeof *one), *two[2];
    pf_work w;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, 32, &err), PF_OK);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, 0.1, p.v_f, one, &err), PF_OK);
    /* the same workspace run by a team of two */
    pf_ctx *ctx;
    assert_int_equal(pf_ctx_create(&ctx, 2, &err), PF_OK);
    w.ctx = ctx;
    double *dref = malloc(np * sizeof *dref);
    for (size_t i = 0; i < np; i++) dref[i] = one[i];
    double lam[2][4];
    for (int k = 0; k < 2; k++) {
        two[k] = malloc(np * sizeof(float));
        assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, 0.1, p.v_f, two[k], &err), PF_OK);
        pf_hessian *h;
        assert_int_equal(pf_hessian_create(&h, &w, p.theta_f, &p.d, 0, &err), PF_OK);
        pf_lanczos_config c;
        pf_lanczos_config_default(&c);
        c.k = 2;
        c.seed = 9;
        c.ctx = ctx;
        pf_lanczos_result r;
        assert_int_equal(pf_lanczos(pf_hessian_matvec, h, np, &c, &r, &err), PF_OK);
        memcpy(lam[k], r.values, sizeof lam[k]);
        pf_lanczos_result_free(&r);
        pf_hessian_free(h);
    }
    /* the reusable operator (whole-share sparse arrays, then cached
     * activations) gives the one-shot product bit for bit, every time */
    float *op_hv = malloc(np * sizeof *op_hv);
    pf_hessian *h;
    assert_int_equal(pf_hessian_create(&h, &w, p.theta_f, &p.d, 0, &err), PF_OK);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(pf_hessian_apply(h, 0.1, p.v_f, op_hv, &err), PF_OK);
        assert_memory_equal(op_hv, two[0], np * sizeof(float));
    }
    pf_hessian_free(h);
    free(op_hv);
    /* one sample for two members: the second has nothing to do */
    double *want1 = malloc(np * sizeof *want1);
    ref_hvp(&p, 1, p.v, want1);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 1, 0.0, p.v_f, two[1], &err), PF_OK);
    assert_true(rel_error(two[1], want1, np) < 1e-4);
    free(want1);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, 0.1, p.v_f, two[1], &err), PF_OK);
    w.ctx = NULL;
    pf_ctx_free(ctx);
    assert_memory_equal(two[0], two[1], np * sizeof(float));
    assert_memory_equal(lam[0], lam[1], sizeof lam[0]);
    assert_true(rel_error(two[0], dref, np) < 1e-5);
    pf_work_free(&w);
    free(one), free(two[0]), free(two[1]), free(dref);
    problem_free(&p);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    check_threads(0);
    check_threads(1);
}

/* ---- Lanczos against dense Hessians -------------------------------------- */

typedef struct {
    int n;
    const double *A;  /* (n, n) row-major, symmetric */
} dense_op;

static int dense_matvec(void *ctx, const double *v, double *out, pf_error *err)
{
    (void)err;
    const dense_op *d = ctx;
    for (int i = 0; i < d->n; i++) {
        double s = 0.0;
        for (int j = 0; j < d->n; j++) s += d->A[(size_t)i * d->n + j] * v[j];
        out[i] = s;
    }
    return PF_OK;
}

/* The full Hessian column by column from the reference H e_i. */
static double *dense_hessian(const problem *p)
{
    int n = (int)p->arch.n_params;
    double *H = malloc((size_t)n * n * sizeof *H), *e = calloc((size_t)n, sizeof *e);
    double *col = malloc((size_t)n * sizeof *col);
    for (int j = 0; j < n; j++) {
        e[j] = 1.0;
        ref_hvp(p, p->B, e, col);
        e[j] = 0.0;
        for (int i = 0; i < n; i++) H[(size_t)i * n + j] = col[i];
    }
    free(e), free(col);
    double asym = 0.0, big = max_abs(H, (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            asym = fmax(asym, fabs(H[(size_t)i * n + j] - H[(size_t)j * n + i]));
    if (asym > 1e-12 * big) fail_msg("reference Hessian not symmetric: %.3g of %.3g", asym, big);
    return H;
}

/* Compare k values at the requested end(s) with the dense spectrum. */
static void check_ends(const pf_lanczos_result *r, const double *ev, int n, int k, pf_eig_which which,
                       double tol, const char *what)
{
    double scale = fmax(fabs(ev[0]), fabs(ev[n - 1]));
    for (int i = 0; i < r->n_values; i++) {
        int j = which == PF_EIG_SMALLEST ? i
              : which == PF_EIG_LARGEST  ? n - k + i
              : i < k                    ? i
                                         : n - (r->n_values - i);
        if (fabs(r->values[i] - ev[j]) > tol * scale)
            fail_msg("%s: Lanczos value %d = %.10g, dense %.10g (scale %.3g)", what, i, r->values[i],
                     ev[j], scale);
    }
}

static void check_tiny_network(int n_layers, const int *sizes, const pf_act *acts, pf_loss loss,
                               uint64_t seed)
{
    problem p;
    problem_make(&p, n_layers, sizes, acts, 1, loss, 12, 1.5, seed);
    int n = (int)p.arch.n_params;
    double *H = dense_hessian(&p);
    double *ev = malloc((size_t)n * sizeof *ev), *Hc = malloc((size_t)n * n * sizeof *Hc);
    memcpy(Hc, H, (size_t)n * n * sizeof *Hc);
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', n, Hc, n, ev), 0);
    double scale = fmax(fabs(ev[0]), fabs(ev[n - 1]));
    /* Exactly repeated eigenvalues (the null directions of softmax CE) are
     * found once by a Krylov space, so the smallest end asks only for the
     * negative ones, which are simple. */
    int n_neg = 0;
    while (n_neg < n && ev[n_neg] < -1e-6 * scale) n_neg++;
    int k_small = n_neg < 3 ? n_neg : 3;
    assert_true(k_small >= 1); /* a random point of a nonconvex loss */

    dense_op op = {n, H};
    pf_lanczos_config c;
    pf_lanczos_config_default(&c);
    c.tol = 1e-8;
    c.want_vectors = 1;
    pf_lanczos_result r;
    pf_error err;
    c.k = k_small;
    c.which = PF_EIG_BOTH;
    assert_int_equal(pf_lanczos(dense_matvec, &op, (size_t)n, &c, &r, &err), PF_OK);
    assert_true(r.all_converged);
    assert_int_equal(r.n_values, 2 * k_small);
    check_ends(&r, ev, n, k_small, PF_EIG_BOTH, 1e-4, "dense, both");
    /* eigenvectors: unit, and H y = lambda y checked here independently */
    double *hy = malloc((size_t)n * sizeof *hy);
    for (int i = 0; i < r.n_values; i++) {
        const double *y = r.vectors + (size_t)i * n;
        dense_matvec(&op, y, hy, &err);
        double res = 0.0, yy = 0.0;
        for (int t = 0; t < n; t++) {
            res += (hy[t] - r.values[i] * y[t]) * (hy[t] - r.values[i] * y[t]);
            yy += y[t] * y[t];
        }
        assert_true(fabs(yy - 1.0) < 1e-10);
        assert_true(sqrt(res) <= 1e-6 * scale);
        assert_true(fabs(sqrt(res) - r.residuals[i]) <= 1e-9 * scale);
    }
    pf_lanczos_result_free(&r);
    c.want_vectors = 0;
    c.k = 4;
    c.which = PF_EIG_LARGEST;
    assert_int_equal(pf_lanczos(dense_matvec, &op, (size_t)n, &c, &r, &err), PF_OK);
    check_ends(&r, ev, n, 4, PF_EIG_LARGEST, 1e-4, "dense, largest");
    pf_lanczos_result_free(&r);
    c.k = k_small;
    c.which = PF_EIG_SMALLEST;
    assert_int_equal(pf_lanczos(dense_matvec, &op, (size_t)n, &c, &r, &err), PF_OK);
    check_ends(&r, ev, n, k_small, PF_EIG_SMALLEST, 1e-4, "dense, smallest");
    pf_lanczos_result_free(&r);

    /* the same through the real float Hessian-vector product */
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, 5, &err), PF_OK);
    pf_hessian *h;
    assert_int_equal(pf_hessian_create(&h, &w, p.theta_f, &p.d, 0, &err), PF_OK);
    c.k = k_small;
    c.which = PF_EIG_BOTH;
    c.tol = 1e-5;
    c.want_vectors = 1;
    assert_int_equal(pf_lanczos(pf_hessian_matvec, h, (size_t)n, &c, &r, &err), PF_OK);
    assert_true(r.all_converged);
    check_ends(&r, ev, n, k_small, PF_EIG_BOTH, 1e-4, "float H.v, both");
    pf_lanczos_result_free(&r);
    /* lambda_min / lambda_max of E and L_beta */
    pf_hessian_extremes_result x;
    assert_int_equal(pf_hessian_extremes(&w, p.theta_f, &p.d, 0, 0.25, NULL, &x, &err), PF_OK);
    assert_true(x.converged);
    assert_true(fabs(x.min_E - ev[0]) <= 1e-4 * scale);
    assert_true(fabs(x.max_E - ev[n - 1]) <= 1e-4 * scale);
    assert_true(x.min_L == x.min_E + 0.25 && x.max_L == x.max_E + 0.25);
    pf_hessian_free(h);
    pf_work_free(&w);
    free(H), free(Hc), free(ev), free(hy);
    problem_free(&p);
}

static void test_lanczos_matches_dense_hessian(void **state)
{
    (void)state;
    const int s1[] = {5, 4, 3};
    pf_act tanh_acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    check_tiny_network(2, s1, tanh_acts, PF_LOSS_MSE, 1);  /* 39 parameters */
    check_tiny_network(2, s1, tanh_acts, PF_LOSS_CE, 2);
    const int s2[] = {4, 3, 2};
    pf_act sig_acts[2] = {PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_tiny_network(2, s2, sig_acts, PF_LOSS_CE, 3);    /* 23 parameters */
}

/* A diagonal operator with known spectrum: ordering, both ends, the ends
 * overlapping (2k > n), and an exactly repeated eigenvalue (identity). */
static int diag_matvec(void *ctx, const double *v, double *out, pf_error *err)
{
    (void)err;
    const dense_op *d = ctx;
    for (int i = 0; i < d->n; i++) out[i] = d->A[i] * v[i];
    return PF_OK;
}

static void test_lanczos_known_spectra(void **state)
{
    (void)state;
    enum { N = 200 };
    double diag[N];
    for (int i = 0; i < N; i++) diag[i] = (i % 2 ? 1.0 : -0.5) * (1.0 + i) / N + (i == 7 ? -3.0 : 0.0);
    dense_op op = {N, diag};
    pf_lanczos_config c;
    pf_lanczos_config_default(&c);
    c.k = 3;
    c.max_dim = N;
    pf_lanczos_result r;
    pf_error err;
    assert_int_equal(pf_lanczos(diag_matvec, &op, N, &c, &r, &err), PF_OK);
    double sorted[N];
    memcpy(sorted, diag, sizeof sorted);
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    assert_int_equal(r.n_values, 6);
    assert_true(r.all_converged);
    assert_true(fabs(r.values[0] - sorted[0]) < 1e-4 * 3.0); /* -2.96, far below the rest */
    check_ends(&r, sorted, N, 3, PF_EIG_BOTH, 1e-4, "diagonal");
    assert_true(r.n_matvecs == r.iterations);
    pf_lanczos_result_free(&r);

    double small[5] = {3, -1, 2, 0.5, -2};
    dense_op op5 = {5, small};
    c.k = 3;
    c.max_dim = 0;
    assert_int_equal(pf_lanczos(diag_matvec, &op5, 5, &c, &r, &err), PF_OK);
    assert_int_equal(r.n_values, 5); /* the two ends overlap: every eigenvalue once */
    const double want5[5] = {-2, -1, 0.5, 2, 3};
    for (int i = 0; i < 5; i++) assert_true(fabs(r.values[i] - want5[i]) < 1e-10);
    pf_lanczos_result_free(&r);

    double ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    dense_op id = {10, ones};
    c.k = 3;
    c.which = PF_EIG_LARGEST;
    c.want_vectors = 1;
    assert_int_equal(pf_lanczos(diag_matvec, &id, 10, &c, &r, &err), PF_OK);
    assert_int_equal(r.n_values, 3);
    for (int i = 0; i < 3; i++) assert_true(fabs(r.values[i] - 1.0) < 1e-12 && r.converged[i]);
    pf_lanczos_result_free(&r);
}

/* A warm start that is (nearly) an eigenvector of an inner eigenvalue, as
 * the last point's soft mode is once another mode has gone below it: the
 * Ritz pair it starts on converges at once, and must not be taken for the
 * lowest. */
static void test_lanczos_warm_start_on_an_inner_eigenvector(void **state)
{
    (void)state;
    enum { N = 300 };
    double diag[N], start[N];
    for (int i = 0; i < N; i++) diag[i] = 0.01 + (double)i / N;
    dense_op op = {N, diag};
    for (int exact = 1; exact >= 0; exact--) {
        for (int i = 0; i < N; i++) start[i] = exact ? 0.0 : 1e-9 * sin(1.0 + i);
        start[40] = 1.0;
        pf_lanczos_config c;
        pf_lanczos_config_default(&c);
        c.k = 1;
        c.which = PF_EIG_SMALLEST;
        c.start = start;
        c.tol = 1e-6;
        pf_lanczos_result r;
        pf_error err;
        assert_int_equal(pf_lanczos(diag_matvec, &op, N, &c, &r, &err), PF_OK);
        if (!(fabs(r.values[0] - diag[0]) < 1e-6))
            fail_msg("%s warm start on the eigenvector of %g: lowest eigenvalue %g, the true one %g",
                     exact ? "an exact" : "a nearly exact", diag[40], r.values[0], diag[0]);
        pf_lanczos_result_free(&r);
    }
}

/* ---- a saddle built by hand ---------------------------------------------- */

/* f(x) = w2 * w1 * x (one hidden linear unit, no biases) with MSE,
 * E = mean_i 1/2 (w2 w1 x_i - t_i)^2. Its derivatives:
 *   dE/dw1 = mean (w2 w1 x - t) w2 x,   dE/dw2 = mean (w2 w1 x - t) w1 x,
 *   d2E/dw1^2 = mean (w2 x)^2,  d2E/dw2^2 = mean (w1 x)^2,
 *   d2E/dw1 dw2 = mean [w1 w2 x^2 + (w2 w1 x - t) x].
 * At w1 = w2 = 0 the gradient vanishes and H = [[0, -c], [-c, 0]] with
 * c = mean t x: eigenvalues -c and +c, eigenvectors (1, 1)/sqrt2 and
 * (1, -1)/sqrt2. With x = (1, 2), t = (3, 1): c = (3 + 2)/2 = 2.5, a saddle
 * of index 1; with beta = 1, L_beta's Hessian has eigenvalues -1.5 and 3.5. */
static void test_constructed_saddle(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    const int sizes[] = {1, 1, 1};
    pf_act acts[2] = {PF_ACT_LINEAR, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 2, sizes, acts, 0, PF_LOSS_MSE, &err), PF_OK);
    assert_int_equal(a.n_params, 2);
    float x[2] = {1, 2}, t[2] = {3, 1}, theta[2] = {0, 0};
    pf_dataset d = {.n = 2, .dim = 1, .x = x, .targets = t, .n_targets = 1};
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &a, 2, &err), PF_OK);
    float e1[2] = {1, 0}, he1[2];
    assert_int_equal(pf_hvp(&w, theta, &d, 0, 0.0, e1, he1, &err), PF_OK);
    assert_true(he1[0] == 0.0f && he1[1] == -2.5f);
    double xd[2] = {1, 2}, td[2] = {3, 1}, thd[2] = {0, 0}, ve[2] = {0, 1}, hve[2];
    pf_ref_hvp(&a, thd, xd, NULL, td, 2, ve, hve);
    assert_true(hve[0] == -2.5 && hve[1] == 0.0);

    pf_hessian_extremes_result r;
    assert_int_equal(pf_hessian_extremes(&w, theta, &d, 0, 1.0, NULL, &r, &err), PF_OK);
    assert_true(fabs(r.min_E + 2.5) < 1e-6 && fabs(r.max_E - 2.5) < 1e-6);
    assert_true(fabs(r.min_L + 1.5) < 1e-6 && fabs(r.max_L - 3.5) < 1e-6);
    assert_true(r.converged);

    pf_hessian *h;
    assert_int_equal(pf_hessian_create(&h, &w, theta, &d, 0, &err), PF_OK);
    pf_lanczos_config c;
    pf_lanczos_config_default(&c);
    c.k = 1;
    c.which = PF_EIG_SMALLEST;
    c.want_vectors = 1;
    pf_lanczos_result lr;
    assert_int_equal(pf_lanczos(pf_hessian_matvec, h, 2, &c, &lr, &err), PF_OK);
    assert_true(fabs(lr.values[0] + 2.5) < 1e-6);
    double along = (lr.vectors[0] + lr.vectors[1]) / sqrt(2.0);
    assert_true(fabs(fabs(along) - 1.0) < 1e-6);
    assert_true(lr.residuals[0] < 1e-5);
    pf_lanczos_result_free(&lr);
    pf_hessian_free(h);
    pf_work_free(&w);
}

/* ---- stochastic Lanczos quadrature ---------------------------------------- */

/* For a diagonal A and a Rademacher probe u (unit), u'Au = tr(A)/n exactly,
 * and the quadrature reproduces it: sum_i w_i theta_i = tr(A)/n. */
static void test_slq_quadrature(void **state)
{
    (void)state;
    enum { N = 60 };
    double diag[N], tr = 0.0;
    for (int i = 0; i < N; i++) tr += diag[i] = sin(1.0 + i) * 2.0;
    dense_op op = {N, diag};
    pf_slq_config c = {.n_probes = 3, .steps = 20, .seed = 7};
    pf_slq_result r;
    pf_error err;
    assert_int_equal(pf_slq(diag_matvec, &op, N, &c, &r, &err), PF_OK);
    assert_int_equal(r.n_probes, 3);
    for (int p = 0; p < 3; p++) {
        double wsum = 0.0, mean = 0.0;
        for (int i = 0; i < r.steps; i++) {
            wsum += r.weights[(size_t)p * r.steps + i];
            mean += r.weights[(size_t)p * r.steps + i] * r.nodes[(size_t)p * r.steps + i];
        }
        assert_true(fabs(wsum - 1.0) < 1e-10);
        assert_true(fabs(mean - tr / N) < 1e-10);
    }
    enum { G = 2001 };
    double grid[G], dens[G], integral = 0.0;
    for (int g = 0; g < G; g++) grid[g] = -3.0 + 6.0 * g / (G - 1);
    pf_slq_density(&r, 0.05, grid, G, dens);
    for (int g = 0; g < G; g++) integral += dens[g] * 6.0 / (G - 1);
    assert_true(fabs(integral - 1.0) < 1e-3);
    pf_slq_result_free(&r);
    c.n_probes = 0;
    c.steps = -1;
    assert_int_equal(pf_slq(diag_matvec, &op, N, &c, &r, &err), PF_EINPUT);
}

/* ---- bad input ------------------------------------------------------------ */

static void test_library_rejects_bad_input(void **state)
{
    (void)state;
    double diag[4] = {1, 2, 3, 4};
    dense_op op = {4, diag};
    pf_lanczos_config c;
    pf_lanczos_result r;
    pf_error err;
    struct {
        int k, max_dim;
        double tol;
        int which;
    } bad[] = {{0, 0, 1e-4, PF_EIG_BOTH},   {-1, 0, 1e-4, PF_EIG_BOTH}, {5, 0, 1e-4, PF_EIG_LARGEST},
               {1, -1, 1e-4, PF_EIG_BOTH},  {1, 0, -1.0, PF_EIG_BOTH},  {1, 0, NAN, PF_EIG_BOTH},
               {1, 0, 1.5, PF_EIG_BOTH},    {1, 0, 1e-4, 99},           {3, 2, 1e-4, PF_EIG_LARGEST},
               {2, 3, 1e-4, PF_EIG_BOTH}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pf_lanczos_config_default(&c);
        c.k = bad[i].k;
        c.max_dim = bad[i].max_dim;
        c.tol = bad[i].tol;
        c.which = (pf_eig_which)bad[i].which;
        pf_error_clear(&err);
        if (pf_lanczos(diag_matvec, &op, 4, &c, &r, &err) != PF_EINPUT)
            fail_msg("bad Lanczos config %zu accepted", i);
        assert_true(strlen(err.msg) > 0);
    }
    pf_lanczos_config_default(&c);
    assert_int_equal(pf_lanczos(NULL, &op, 4, &c, &r, &err), PF_EINPUT);
    assert_int_equal(pf_lanczos(diag_matvec, &op, 0, &c, &r, &err), PF_EINPUT);
    pf_eig_which which;
    assert_int_equal(pf_eig_which_from_name("middle", &which), PF_EINPUT);
    assert_int_equal(pf_eig_which_from_name("smallest", &which), PF_OK);
    assert_int_equal(which, PF_EIG_SMALLEST);

    problem p;
    const int sizes[] = {3, 4, 2};
    pf_act acts[2] = {PF_ACT_SIGMOID, PF_ACT_LINEAR};
    problem_make(&p, 2, sizes, acts, 1, PF_LOSS_CE, 6, 0.8, 1);
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, 4, &err), PF_OK);
    float hv[32];
    /* more samples than the dataset has */
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 7, 0.0, p.v_f, hv, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "7"));
    /* feature count that does not match the model */
    pf_dataset d = p.d;
    d.dim = 5;
    assert_int_equal(pf_hvp(&w, p.theta_f, &d, 0, 0.0, p.v_f, hv, &err), PF_EINPUT);
    /* a label outside the model's outputs */
    d = p.d;
    p.labels[2] = 2;
    assert_int_equal(pf_hvp(&w, p.theta_f, &d, 0, 0.0, p.v_f, hv, &err), PF_EINPUT);
    p.labels[2] = 1;
    /* CE without labels; non-finite beta; no vector */
    d.labels = NULL;
    assert_int_equal(pf_hvp(&w, p.theta_f, &d, 0, 0.0, p.v_f, hv, &err), PF_EINPUT);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, NAN, p.v_f, hv, &err), PF_EINPUT);
    assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, 0.0, NULL, hv, &err), PF_EINPUT);
    d = p.d;
    d.n = 0;
    assert_int_equal(pf_hvp(&w, p.theta_f, &d, 0, 0.0, p.v_f, hv, &err), PF_EINPUT);
    /* the operator reports a non-finite product instead of looping on it */
    for (size_t i = 0; i < p.arch.n_params; i++) p.theta_f[i] = NAN;
    pf_hessian *h;
    assert_int_equal(pf_hessian_create(&h, &w, p.theta_f, &p.d, 0, &err), PF_OK);
    pf_lanczos_config_default(&c);
    c.k = 1;
    assert_int_equal(pf_lanczos(pf_hessian_matvec, h, p.arch.n_params, &c, &r, &err), PF_ERUNTIME);
    assert_non_null(strstr(err.msg, "non-finite"));
    pf_hessian_free(h);
    pf_work_free(&w);
    problem_free(&p);
}

/* ---- the command line ----------------------------------------------------- */

static int run_tool(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return shell("%s %s >%s/stdout.txt 2>%s/stderr.txt", tool, args, tmpdir, tmpdir);
}

/* stderr of the last run: one line naming the problem */
static void expect_error(int status, const char *needle)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    char *e = slurp(path);
    assert_non_null(e);
    if (status != 2) fail_msg("exit status %d, expected 2; stderr: %s", status, e);
    if (needle && !strstr(e, needle)) fail_msg("stderr lacks '%s': %s", needle, e);
    free(e);
}

static void test_cli(void **state)
{
    (void)state;
    char data[300], model[300], garbage[300], path[400];
    snprintf(data, sizeof data, "%s/data", tmpdir);
    mkdir(data, 0755);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", data, k ? "test.csv" : "train.csv");
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "a,b,c,label\n");
        for (int i = 0; i < 90; i++) {
            double u = ((i * 37 + k * 11) % 100) / 100.0 - 0.5;
            fprintf(f, "%g,%g,%g,%d\n", i % 3 + 0.3 * u, -(i % 3) + 0.2 * u, u, i % 3);
        }
        fclose(f);
    }
    pf_arch a;
    pf_error err;
    const int sizes[] = {3, 4, 3};
    pf_act acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    float theta[64];
    pf_rng rng;
    pf_rng_seed(&rng, 4);
    pf_init_params(&a, theta, &rng);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = 0.01;
    snprintf(meta.anchor, sizeof meta.anchor, "origin");
    snprintf(model, sizeof model, "%s/model.safetensors", tmpdir);
    assert_int_equal(pf_ckpt_write(model, &a, theta, &meta, &err), PF_OK);
    /* an anchor of another shape: its parameter vector does not fit */
    char other[300];
    pf_arch a5;
    const int sizes5[] = {3, 5, 3};
    assert_int_equal(pf_arch_init(&a5, 2, sizes5, acts, 1, PF_LOSS_CE, &err), PF_OK);
    float theta5[64];
    pf_init_params(&a5, theta5, &rng);
    snprintf(other, sizeof other, "%s/other.safetensors", tmpdir);
    assert_int_equal(pf_ckpt_write(other, &a5, theta5, &meta, &err), PF_OK);
    snprintf(garbage, sizeof garbage, "%s/garbage.safetensors", tmpdir);
    FILE *g = fopen(garbage, "w");
    fputs("this is not a checkpoint\n", g);
    fclose(g);

    /* a real run: JSON out, eigenvectors, density, beta from the checkpoint */
    int st = run_tool("hessian %s --data %s --k 2 --tol 1e-6 --out %s/h.json --vectors %s/v.npy "
                      "--density %s/d.csv --quiet --json", model, data, tmpdir, tmpdir, tmpdir);
    assert_int_equal(st, 0);
    snprintf(path, sizeof path, "%s/h.json", tmpdir);
    char *text = slurp(path);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    cJSON *ev = cJSON_GetObjectItem(o, "eigenvalues_E"), *el = cJSON_GetObjectItem(o, "eigenvalues_L");
    assert_int_equal(cJSON_GetArraySize(ev), 4);
    double beta = cJSON_GetObjectItem(o, "beta")->valuedouble;
    assert_true(fabs(beta - 0.01) < 1e-15);
    for (int i = 0; i < 4; i++) {
        double e = cJSON_GetArrayItem(ev, i)->valuedouble, l = cJSON_GetArrayItem(el, i)->valuedouble;
        assert_true(fabs(l - (e + beta)) < 1e-12);
        if (i) assert_true(e >= cJSON_GetArrayItem(ev, i - 1)->valuedouble);
    }
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "all_converged")));
    assert_true(cJSON_GetObjectItem(o, "hvps")->valuedouble >= 4);
    cJSON_Delete(o);
    free(text);
    snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
    text = slurp(path);
    o = cJSON_Parse(text);
    assert_non_null(o);
    cJSON_Delete(o);
    free(text);
    struct stat sb;
    snprintf(path, sizeof path, "%s/v.npy", tmpdir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 128 + 4 * 31 * 4); /* header + 4 rows of 31 float32 */
    snprintf(path, sizeof path, "%s/d.csv", tmpdir);
    text = slurp(path);
    assert_non_null(text);
    assert_true(strncmp(text, "lambda,density\n", 15) == 0);
    free(text);
    /* CSV output, a subset, the table on stdout */
    assert_int_equal(run_tool("hessian %s --data %s --k 1 --which smallest --subset 30 --out %s/h.csv "
                              "--quiet", model, data, tmpdir), 0);
    snprintf(path, sizeof path, "%s/h.csv", tmpdir);
    text = slurp(path);
    assert_non_null(text);
    assert_true(strncmp(text, "index,end,lambda_E,lambda_L,residual,converged\n", 47) == 0);
    free(text);
    assert_int_equal(run_tool("hessian %s --data %s --time-hvp 2 --quiet", model, data), 0);
    /* one line of JSON, ended: benches append these lines to one file */
    snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
    text = slurp(path);
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(len > 2 && text[0] == '{' && text[len - 1] == '\n' && strchr(text, '\n') == text + len - 1);
    free(text);

    /* bad input: exit 2 and a line naming the problem */
    expect_error(run_tool("hessian %s/missing.safetensors --data %s", tmpdir, data), "missing.safetensors");
    expect_error(run_tool("hessian %s --data %s", garbage, data), "garbage.safetensors");
    expect_error(run_tool("hessian %s --data %s --k 0", model, data), "--k");
    expect_error(run_tool("hessian %s --data %s --k abc", model, data), "--k");
    expect_error(run_tool("hessian %s --data %s --k 32", model, data), "31 parameters");
    expect_error(run_tool("hessian %s --data %s --which sideways", model, data), "--which");
    expect_error(run_tool("hessian %s --data %s --tol 0", model, data), "--tol");
    expect_error(run_tool("hessian %s --data %s --max-dim 0", model, data), "--max-dim");
    expect_error(run_tool("hessian %s --data %s --out %s/h.txt", model, data, tmpdir), "--out");
    expect_error(run_tool("hessian %s --data %s --vectors %s/v.bin", model, data, tmpdir), "--vectors");
    expect_error(run_tool("hessian %s --data %s --subset 1000", model, data), "subset 1000 exceeds");
    expect_error(run_tool("hessian %s --data %s --beta -1", model, data), "--beta");
    expect_error(run_tool("hessian %s --data %s --anchor %s", model, data, garbage), "garbage");
    expect_error(run_tool("hessian %s --data %s --anchor %s", model, data, other), "other.safetensors");
    expect_error(run_tool("hessian --data %s", data), "checkpoint");
    expect_error(run_tool("hessian %s %s --data %s", model, model, data), "checkpoint");
    expect_error(run_tool("hessian %s --data %s --bogus", model, data), NULL);
    assert_int_equal(run_tool("hessian --help"), 0);
}

static int setup(void **state)
{
    (void)state;
    return tool_setup("hessian");
}

static int teardown(void **state)
{
    (void)state;
    return tool_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rop_matches_finite_differences),
        cmocka_unit_test(test_fd_check_detects_error),
        cmocka_unit_test(test_fast_matches_reference),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_lanczos_matches_dense_hessian),
        cmocka_unit_test(test_lanczos_known_spectra),
        cmocka_unit_test(test_lanczos_warm_start_on_an_inner_eigenvector),
        cmocka_unit_test(test_constructed_saddle),
        cmocka_unit_test(test_slq_quadrature),
        cmocka_unit_test(test_library_rejects_bad_input),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("hessian", tests, setup, teardown);
}
