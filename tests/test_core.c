/* Core numerics: RNG, architecture parsing, finite-difference gradient checks
 * of the double reference for every activation/loss/bias combination, the
 * shifted L2 term, the fast float path against the reference, determinism,
 * and L-BFGS on a strongly convex problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"

/* A small random problem for an architecture. */
typedef struct {
    pf_arch arch;
    int B;
    double *theta, *x, *targets;
    int *labels;
} problem;

static void problem_make(problem *p, int n_layers, const int *sizes, const pf_act *acts, int bias,
                         pf_loss loss, int B, uint64_t seed)
{
    pf_error err;
    assert_int_equal(pf_arch_init(&p->arch, n_layers, sizes, acts, bias, loss, &err), PF_OK);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    size_t np = p->arch.n_params;
    int in = sizes[0], K = sizes[n_layers];
    p->B = B;
    p->theta = malloc(np * sizeof(double));
    p->x = malloc((size_t)B * in * sizeof(double));
    p->targets = malloc((size_t)B * K * sizeof(double));
    p->labels = malloc((size_t)B * sizeof(int));
    for (size_t i = 0; i < np; i++) p->theta[i] = (2 * pf_rng_uniform(&rng) - 1) * 0.8;
    for (int i = 0; i < B * in; i++) p->x[i] = 2 * pf_rng_uniform(&rng) - 1;
    for (int i = 0; i < B * K; i++) p->targets[i] = pf_rng_uniform(&rng);
    for (int i = 0; i < B; i++) p->labels[i] = (int)pf_rng_below(&rng, (uint64_t)K);
}

static void problem_free(problem *p)
{
    free(p->theta);
    free(p->x);
    free(p->targets);
    free(p->labels);
}

static double ref_loss(const problem *p, const double *theta, double *grad)
{
    return pf_ref_loss_grad(&p->arch, theta, p->x, p->labels, p->targets, p->B, grad);
}

/* Central differences in double on every parameter. */
static void check_fd(int n_layers, const int *sizes, const pf_act *acts, int bias, pf_loss loss)
{
    problem p;
    problem_make(&p, n_layers, sizes, acts, bias, loss, 5, 42 + (uint64_t)acts[0]);
    size_t np = p.arch.n_params;
    double *g = malloc(np * sizeof *g), *th = malloc(np * sizeof *th);
    ref_loss(&p, p.theta, g);
    memcpy(th, p.theta, np * sizeof *th);
    const double h = 1e-6;
    double worst = 0.0;
    for (size_t i = 0; i < np; i++) {
        th[i] = p.theta[i] + h;
        double fp = ref_loss(&p, th, NULL);
        th[i] = p.theta[i] - h;
        double fm = ref_loss(&p, th, NULL);
        th[i] = p.theta[i];
        double fd = (fp - fm) / (2 * h);
        /* round-off in the difference quotient is ~1e-16/h = 1e-10 */
        double e = (fabs(fd - g[i]) - 1e-9) / (fabs(fd) + fabs(g[i]));
        if (e > worst) worst = e;
    }
    if (worst > 1e-6)
        fail_msg("finite differences disagree: worst relative error %.3g (act %s, loss %s, bias %d)",
                 worst, pf_act_name(acts[0]), pf_loss_name(loss), bias);
    free(g);
    free(th);
    problem_free(&p);
}

static void test_fd_every_combination(void **state)
{
    (void)state;
    const int sizes[] = {4, 6, 5, 3};
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 2; l++)
            for (int b = 0; b < 2; b++) {
                pf_act acts[3] = {(pf_act)a, (pf_act)a, PF_ACT_LINEAR};
                check_fd(3, sizes, acts, b, (pf_loss)l);
                pf_act out_too[3] = {(pf_act)a, (pf_act)a, (pf_act)a};
                check_fd(3, sizes, out_too, b, (pf_loss)l);
            }
}

static void test_fd_mixed_activations(void **state)
{
    (void)state;
    const int sizes[] = {5, 7, 6, 4, 3};
    pf_act acts[4] = {PF_ACT_RELU, PF_ACT_TANH, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_fd(4, sizes, acts, 1, PF_LOSS_CE);
    check_fd(4, sizes, acts, 0, PF_LOSS_MSE);
}

/* The FD check must be able to fail: a wrong gradient is caught. */
static void test_fd_detects_wrong_gradient(void **state)
{
    (void)state;
    problem p;
    const int sizes[] = {3, 4, 2};
    pf_act acts[2] = {PF_ACT_SIGMOID, PF_ACT_LINEAR};
    problem_make(&p, 2, sizes, acts, 1, PF_LOSS_CE, 4, 7);
    size_t np = p.arch.n_params;
    double *g = malloc(np * sizeof *g);
    ref_loss(&p, p.theta, g);
    g[3] *= 1.001;
    const double h = 1e-6;
    double save = p.theta[3];
    p.theta[3] = save + h;
    double fp = ref_loss(&p, p.theta, NULL);
    p.theta[3] = save - h;
    double fm = ref_loss(&p, p.theta, NULL);
    p.theta[3] = save;
    double fd = (fp - fm) / (2 * h);
    assert_true(fabs(fd - g[3]) / fabs(fd) > 1e-4);
    free(g);
    problem_free(&p);
}

/* Shifted L2: (beta/2)||theta - anchor||^2 is quadratic, so central
 * differences with an exactly representable step are exact. */
static void test_shifted_l2_gradient(void **state)
{
    (void)state;
    enum { N = 50 };
    float theta[N], anchor[N], grad[N], th[N];
    pf_rng rng;
    pf_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) {
        theta[i] = (float)(pf_rng_uniform(&rng) * 4 - 2);
        anchor[i] = (float)(pf_rng_uniform(&rng) * 4 - 2);
    }
    const double beta = 0.37;
    const float *anchors[2] = {anchor, NULL};
    for (int k = 0; k < 2; k++) {
        memset(grad, 0, sizeof grad);
        pf_l2_add_grad(grad, theta, anchors[k], N, beta);
        memcpy(th, theta, sizeof th);
        for (int i = 0; i < N; i++) {
            const float h = 0.0625f;
            th[i] = theta[i] + h;
            double fp = pf_l2_value(th, anchors[k], N, beta);
            th[i] = theta[i] - h;
            double fm = pf_l2_value(th, anchors[k], N, beta);
            th[i] = theta[i];
            double fd = (fp - fm) / (2 * h);
            assert_true(fabs(fd - grad[i]) <= 1e-6 * (fabs(fd) + 1e-3));
        }
    }
    /* value and distance agree with their definitions */
    double r = pf_distance(theta, anchor, N), s = 0;
    for (int i = 0; i < N; i++) s += ((double)theta[i] - anchor[i]) * ((double)theta[i] - anchor[i]);
    assert_true(fabs(r - sqrt(s)) < 1e-12 * sqrt(s));
    assert_true(fabs(pf_l2_value(theta, anchor, N, beta) - 0.5 * beta * s) < 1e-12 * s);
}

/* Inputs like images: each feature holds its background value (one per
 * feature, as MNIST's normalized black is -0.4242) in about 4 of 5
 * samples, so that the sparse input layer has entries to skip. */
static void make_sparse_inputs(problem *p)
{
    pf_rng rng;
    pf_rng_seed(&rng, 99);
    int in = p->arch.sizes[0];
    for (int i = 0; i < p->B; i++)
        for (int j = 0; j < in; j++)
            p->x[(size_t)i * in + j] = pf_rng_uniform(&rng) < 0.8 ? -0.4242 + 0.01 * (j % 3)
                                                                 : 2.0 * pf_rng_uniform(&rng);
}

/* The input layer's paths, every test of the fast path runs on each. */
static const pf_input_layer paths[2] = {PF_INPUT_DENSE, PF_INPUT_SPARSE};

/* The fast float path against the double reference, on one input-layer
 * path, with dense random inputs or image-like ones. */
static void check_fast_vs_ref_on(int n_layers, const int *sizes, const pf_act *acts, int bias,
                                 pf_loss loss, int B, pf_input_layer path, int image_like)
{
    problem p;
    problem_make(&p, n_layers, sizes, acts, bias, loss, B, 11);
    if (image_like) make_sparse_inputs(&p);
    size_t np = p.arch.n_params;
    int in = sizes[0], K = sizes[n_layers];
    double *gref = malloc(np * sizeof *gref);
    double lref = ref_loss(&p, p.theta, gref);
    float *th = malloc(np * sizeof *th), *g = calloc(np, sizeof *g);
    float *x = malloc((size_t)B * in * sizeof *x), *t = malloc((size_t)B * K * sizeof *t);
    for (size_t i = 0; i < np; i++) th[i] = (float)p.theta[i];
    for (int i = 0; i < B * in; i++) x[i] = (float)p.x[i];
    for (int i = 0; i < B * K; i++) t[i] = (float)p.targets[i];
    pf_work w;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, B, &err), PF_OK);
    w.input_layer = path;
    pf_forward(&w, th, x, B);
    double lf = pf_backward(&w, th, x, p.labels, t, B, g);
    if (!(fabs(lf - lref) <= 1e-5 * fabs(lref) + 1e-7))
        fail_msg("%s input layer: loss %.9g, reference %.9g", pf_input_layer_name(path), lf, lref);
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(gref[i]));
    for (size_t i = 0; i < np; i++)
        if (fabs(g[i] - gref[i]) > 1e-5 * fabs(gref[i]) + 1e-6 * gmax)
            fail_msg("%s input layer: fast gradient %zu = %.9g, reference %.9g",
                     pf_input_layer_name(path), i, g[i], gref[i]);
    /* The blocked full-dataset gradient equals the one-batch gradient. */
    pf_dataset d = {.n = (size_t)B, .dim = in, .x = x, .labels = loss == PF_LOSS_CE ? p.labels : NULL,
                    .targets = loss == PF_LOSS_MSE ? t : NULL, .n_classes = K, .n_targets = K};
    pf_work wb;
    assert_int_equal(pf_work_init(&wb, NULL, &p.arch, 3, &err), PF_OK);
    wb.input_layer = path;
    float *gb = malloc(np * sizeof *gb);
    double lb = pf_full_gradient(&wb, th, &d, gb);
    assert_true(fabs(lb - lref) <= 1e-5 * fabs(lref) + 1e-7);
    for (size_t i = 0; i < np; i++)
        if (!(fabs(gb[i] - gref[i]) <= 1e-5 * fabs(gref[i]) + 1e-6 * gmax))
            fail_msg("%s input layer: full gradient %zu = %.9g, reference %.9g",
                     pf_input_layer_name(path), i, gb[i], gref[i]);
    pf_work_free(&w);
    pf_work_free(&wb);
    free(gb), free(gref), free(th), free(g), free(x), free(t);
    problem_free(&p);
}

static void check_fast_vs_ref(int n_layers, const int *sizes, const pf_act *acts, int bias,
                              pf_loss loss, int B)
{
    for (int k = 0; k < 2; k++)
        for (int image_like = 0; image_like < 2; image_like++)
            check_fast_vs_ref_on(n_layers, sizes, acts, bias, loss, B, paths[k], image_like);
}

/* On both input-layer paths, dense and image-like inputs. */
static void test_fast_matches_reference(void **state)
{
    (void)state;
    const int sizes[] = {20, 16, 12, 5};
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 2; l++)
            for (int b = 0; b < 2; b++) {
                pf_act acts[3] = {(pf_act)a, (pf_act)a, PF_ACT_LINEAR};
                check_fast_vs_ref(3, sizes, acts, b, (pf_loss)l, 10);
            }
    /* a single layer: the input layer is the output layer; widths that
     * are no multiple of the vector width */
    const int linear[] = {37, 7};
    pf_act lin[1] = {PF_ACT_LINEAR};
    check_fast_vs_ref(1, linear, lin, 1, PF_LOSS_CE, 9);
    const int odd[] = {50, 19, 3};
    pf_act tanh2[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    check_fast_vs_ref(2, odd, tanh2, 0, PF_LOSS_MSE, 13);
    const int paper[] = {784, 128, 128, 10};
    pf_act sig[3] = {PF_ACT_SIGMOID, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    check_fast_vs_ref(3, paper, sig, 1, PF_LOSS_CE, 64);
}

/* A directional finite-difference check of the fast float path itself,
 * on both input-layer paths: for random directions u, the central
 * difference of the mean loss along u (evaluated with pf_full_gradient,
 * summed in double) matches grad . u. Float rounding limits it to about
 * 1e-3 relative at h = 1e-2. */
static void test_fd_fast_path(void **state)
{
    (void)state;
    const int sizes[] = {30, 12, 8, 4};
    pf_act acts[3] = {PF_ACT_SIGMOID, PF_ACT_TANH, PF_ACT_LINEAR};
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < 2; l++) {
            problem p;
            problem_make(&p, 3, sizes, acts, 1, (pf_loss)l, 40, 17);
            make_sparse_inputs(&p);
            size_t np = p.arch.n_params;
            int in = sizes[0], K = sizes[3];
            float *th = malloc(np * sizeof *th), *g = malloc(np * sizeof *g), *tp = malloc(np * sizeof *tp);
            float *x = malloc((size_t)p.B * in * sizeof *x), *t = malloc((size_t)p.B * K * sizeof *t);
            for (size_t i = 0; i < np; i++) th[i] = (float)(p.theta[i] * 0.5);
            for (int i = 0; i < p.B * in; i++) x[i] = (float)p.x[i];
            for (int i = 0; i < p.B * K; i++) t[i] = (float)p.targets[i];
            pf_dataset d = {.n = (size_t)p.B, .dim = in, .x = x, .labels = l == 0 ? p.labels : NULL,
                            .targets = l == 1 ? t : NULL, .n_classes = K, .n_targets = K};
            pf_work w;
            pf_error err;
            assert_int_equal(pf_work_init(&w, NULL, &p.arch, 16, &err), PF_OK);
            w.input_layer = paths[k];
            pf_full_gradient(&w, th, &d, g);
            pf_rng rng;
            pf_rng_seed(&rng, 5);
            for (int dir = 0; dir < 4; dir++) {
                double gu = 0.0, un = 0.0;
                float *u = malloc(np * sizeof *u);
                for (size_t i = 0; i < np; i++) {
                    u[i] = (float)(2 * pf_rng_uniform(&rng) - 1);
                    un += (double)u[i] * u[i];
                }
                for (size_t i = 0; i < np; i++) u[i] = (float)(u[i] / sqrt(un));
                for (size_t i = 0; i < np; i++) gu += (double)g[i] * u[i];
                const double h = 1e-2;
                for (size_t i = 0; i < np; i++) tp[i] = th[i] + (float)h * u[i];
                double fp = pf_full_gradient(&w, tp, &d, NULL);
                for (size_t i = 0; i < np; i++) tp[i] = th[i] - (float)h * u[i];
                double fm = pf_full_gradient(&w, tp, &d, NULL);
                double fd = (fp - fm) / (2 * h);
                if (fabs(fd - gu) > 2e-3 * fabs(gu) + 1e-5)
                    fail_msg("%s input layer, %s: directional derivative %.9g, gradient . u %.9g",
                             pf_input_layer_name(paths[k]), pf_loss_name((pf_loss)l), fd, gu);
                free(u);
            }
            pf_work_free(&w);
            free(th), free(g), free(tp), free(x), free(t);
            problem_free(&p);
        }
}

/* auto takes the sparse path on image-like data and the dense one on
 * dense data; forcing either is honoured on any data. */
static void test_input_layer_choice(void **state)
{
    (void)state;
    enum { N = 200, D = 64 };
    float *img = malloc(N * D * sizeof *img), *tab = malloc(N * D * sizeof *tab);
    pf_rng rng;
    pf_rng_seed(&rng, 3);
    for (int i = 0; i < N * D; i++) {
        img[i] = pf_rng_uniform(&rng) < 0.81 ? -0.4242f : (float)pf_rng_uniform(&rng);
        tab[i] = pf_rng_uniform(&rng) < 0.5 ? 0.0f : (float)pf_rng_uniform(&rng); /* half zeros */
    }
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_AUTO, img, N, D), PF_INPUT_SPARSE);
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_AUTO, tab, N, D), PF_INPUT_DENSE);
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_DENSE, img, N, D), PF_INPUT_DENSE);
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_SPARSE, tab, N, D), PF_INPUT_SPARSE);
    /* too narrow to gain anything */
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_AUTO, img, N * D / 8, 8), PF_INPUT_DENSE);
    pf_input_layer m;
    assert_int_equal(pf_input_layer_from_name("sparse", &m), 0);
    assert_int_equal(m, PF_INPUT_SPARSE);
    assert_int_equal(pf_input_layer_from_name("Sparse", &m), -1);
    assert_string_equal(pf_input_layer_name(PF_INPUT_DENSE), "dense");
    free(img), free(tab);
}

static void test_rng(void **state)
{
    (void)state;
    pf_rng a, b;
    pf_rng_seed(&a, 123);
    pf_rng_seed(&b, 123);
    for (int i = 0; i < 100; i++) assert_true(pf_rng_next(&a) == pf_rng_next(&b));
    pf_rng_seed(&b, 124);
    assert_true(pf_rng_next(&a) != pf_rng_next(&b));
    double s = 0;
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = pf_rng_uniform(&a);
        assert_true(u >= 0.0 && u < 1.0);
        s += u;
        counts[pf_rng_below(&a, 10)]++;
    }
    assert_true(fabs(s / 100000 - 0.5) < 0.01);
    for (int k = 0; k < 10; k++) assert_true(abs(counts[k] - 10000) < 500);
    int perm[1000], seen[1000] = {0};
    for (int i = 0; i < 1000; i++) perm[i] = i;
    pf_rng_shuffle(&a, perm, 1000);
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        seen[perm[i]]++;
        moved += perm[i] != i;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 900);
}

static void test_arch_parsing(void **state)
{
    (void)state;
    pf_error err;
    int n, sizes[PF_MAX_LAYERS + 1];
    pf_act acts[PF_MAX_LAYERS];
    assert_int_equal(pf_arch_parse_sizes("784,128,128,10", &n, sizes, &err), PF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(sizes[3], 10);
    assert_int_equal(pf_arch_parse_acts("sigmoid", 3, acts, &err), PF_OK);
    assert_int_equal(acts[0], PF_ACT_SIGMOID);
    assert_int_equal(acts[2], PF_ACT_LINEAR);
    assert_int_equal(pf_arch_parse_acts("relu,tanh", 3, acts, &err), PF_OK);
    assert_int_equal(acts[1], PF_ACT_TANH);
    assert_int_equal(acts[2], PF_ACT_LINEAR);
    assert_int_equal(pf_arch_parse_acts("relu,tanh,sigmoid", 3, acts, &err), PF_OK);
    assert_int_equal(acts[2], PF_ACT_SIGMOID);
    assert_int_equal(pf_arch_parse_acts("relu,tanh,sigmoid,relu", 3, acts, &err), PF_EINPUT);
    assert_int_equal(pf_arch_parse_acts("swish", 3, acts, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "swish"));
    const char *bad[] = {"", "784", "784,,10", "784,0,10", "784,x", "784,10,", "-3,4"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(pf_arch_parse_sizes(bad[i], &n, sizes, &err), PF_EINPUT);
    /* The paper MLP has 118,282 parameters in PyTorch order. */
    pf_arch a;
    const int paper[] = {784, 128, 128, 10};
    pf_act sig[3] = {PF_ACT_SIGMOID, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 3, paper, sig, 1, PF_LOSS_CE, &err), PF_OK);
    assert_int_equal(a.n_params, 118282);
    assert_int_equal(a.b_off[0], 784 * 128);
    assert_int_equal(a.w_off[1], 784 * 128 + 128);
    char buf[64];
    pf_arch_sizes_str(&a, buf, sizeof buf);
    assert_string_equal(buf, "784,128,128,10");
    pf_arch_acts_str(&a, buf, sizeof buf);
    assert_string_equal(buf, "sigmoid,sigmoid,linear");
}

/* nn.Linear init: uniform within +-1/sqrt(fan_in), covering the range. */
static void test_init_bounds(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    const int sizes[] = {100, 50, 10};
    pf_act acts[2] = {PF_ACT_RELU, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    float *th = malloc(a.n_params * sizeof *th);
    pf_rng rng;
    pf_rng_seed(&rng, 0);
    pf_init_params(&a, th, &rng);
    for (int l = 0; l < 2; l++) {
        double bound = 1.0 / sqrt(sizes[l]), mx = 0;
        size_t cnt = (size_t)sizes[l] * sizes[l + 1];
        for (size_t i = 0; i < cnt; i++) mx = fmax(mx, fabs(th[a.w_off[l] + i]));
        assert_true(mx <= bound && mx > 0.95 * bound);
    }
    free(th);
}

/* Same seed, same threads -> bit-identical gradients and steps. */
static void test_determinism(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    const int sizes[] = {30, 20, 10};
    pf_act acts[2] = {PF_ACT_SIGMOID, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    float *th[2], *g = malloc(a.n_params * sizeof *g);
    float x[16 * 30];
    int lab[16];
    pf_rng rng;
    pf_rng_seed(&rng, 9);
    for (int i = 0; i < 16 * 30; i++) x[i] = (float)pf_rng_uniform(&rng);
    for (int i = 0; i < 16; i++) lab[i] = i % 10;
    for (int k = 0; k < 2; k++) {
        th[k] = malloc(a.n_params * sizeof(float));
        pf_rng_seed(&rng, 5);
        pf_init_params(&a, th[k], &rng);
        pf_work w;
        pf_optim o;
        pf_opt_config c;
        pf_opt_config_default(&c, PF_OPT_ADAM);
        assert_int_equal(pf_work_init(&w, NULL, &a, 16, &err), PF_OK);
        assert_int_equal(pf_optim_init(&o, &c, a.n_params, &err), PF_OK);
        for (int s = 0; s < 20; s++) {
            memset(g, 0, a.n_params * sizeof *g);
            pf_forward(&w, th[k], x, 16);
            pf_backward(&w, th[k], x, lab, NULL, 16, g);
            pf_l2_add_grad(g, th[k], NULL, a.n_params, 0.01);
            pf_optim_step(&o, th[k], g);
        }
        pf_work_free(&w);
        pf_optim_free(&o);
    }
    assert_memory_equal(th[0], th[1], a.n_params * sizeof(float));
    free(th[0]), free(th[1]), free(g);
}

/* L-BFGS on a linear softmax model with beta > 0 (strongly convex): it
 * converges to a point where the regularized gradient vanishes, and does so
 * identically twice. */
static void test_lbfgs_convex(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    const int sizes[] = {6, 4};
    pf_act acts[1] = {PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&a, 1, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    enum { N = 200 };
    float x[N * 6];
    int lab[N];
    pf_rng rng;
    pf_rng_seed(&rng, 21);
    for (int i = 0; i < N; i++) {
        lab[i] = (int)pf_rng_below(&rng, 4);
        for (int j = 0; j < 6; j++) x[i * 6 + j] = (float)(pf_rng_uniform(&rng) - 0.5 + (j == lab[i]));
    }
    pf_dataset d = {.n = N, .dim = 6, .x = x, .labels = lab, .n_classes = 4};
    float anchor[28], th[2][28], g[28];
    for (int i = 0; i < 28; i++) anchor[i] = (float)(0.1 * (i % 5) - 0.2);
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &a, 64, &err), PF_OK);
    for (int k = 0; k < 2; k++) {
        memset(th[k], 0, sizeof th[k]);
        pf_lbfgs_config c = {200, 1e-6, 0.0, 10};
        pf_lbfgs_result r;
        assert_int_equal(pf_lbfgs(&w, th[k], &d, anchor, 0.05, &c, &r, &err), PF_OK);
        assert_true(r.converged);
        pf_full_gradient(&w, th[k], &d, g);
        pf_l2_add_grad(g, th[k], anchor, 28, 0.05);
        double gi = 0;
        for (int i = 0; i < 28; i++) gi = fmax(gi, fabs(g[i]));
        assert_true(gi < 1e-5);
    }
    assert_memory_equal(th[0], th[1], sizeof th[0]);
    pf_work_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_arch_parsing),
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_fd_every_combination),
        cmocka_unit_test(test_fd_mixed_activations),
        cmocka_unit_test(test_fd_detects_wrong_gradient),
        cmocka_unit_test(test_shifted_l2_gradient),
        cmocka_unit_test(test_fast_matches_reference),
        cmocka_unit_test(test_fd_fast_path),
        cmocka_unit_test(test_input_layer_choice),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_lbfgs_convex),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
