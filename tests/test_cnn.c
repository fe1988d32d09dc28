/* Convolutional models end to end in the core: the spec parser and its
 * errors, PyTorch's initialization bounds, the double reference against
 * central differences (gradient and Hessian-vector product, every stage
 * kind, with and without bias, stride and padding), the float paths
 * against the reference (loss, gradient, full-batch gradient on a team,
 * H.v), training on a team (bit-identical repeats, the loss going down)
 * and checkpoints that keep the model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/hessian.h"
#include "pathfinder/io.h"

/* Small models covering every stage kind and option. */
static const struct {
    const char *spec, *acts;
    int bias;
} models[] = {
    {"1x6x6,conv3:3,maxpool2,fc4", "sigmoid", 1},
    {"2x7x7,conv4:3:2:1,avgpool2,fc5,fc3", "tanh", 0},
    {"1x8x8,conv3:3:1:1,maxpool2,conv4:3,fc3", "relu", 1},
    {"1x5x5,maxpool1,conv2:2:1:1,flatten,fc4,fc3", "sigmoid,tanh,linear", 1},
    {"3x4x4,avgpool2,conv2:1,fc3", "tanh", 1},
};
enum { N_MODELS = sizeof models / sizeof models[0] };

typedef struct {
    pf_arch arch;
    int B, K;
    double *theta, *x, *v;
    float *theta_f, *x_f, *v_f;
    int *labels;
    pf_dataset d;
} problem;

static double rounded(double x) { return (double)(float)x; }

static void problem_make(problem *p, int m, int B, uint64_t seed)
{
    pf_error err;
    memset(p, 0, sizeof *p);
    if (pf_arch_parse(&p->arch, models[m].spec, models[m].acts, models[m].bias, PF_LOSS_CE, &err))
        fail_msg("%s: %s", models[m].spec, err.msg);
    const pf_arch *A = &p->arch;
    size_t np = A->n_params, nx = (size_t)B * A->in_dim;
    p->B = B;
    p->K = A->sizes[A->n_layers];
    p->theta = malloc(np * sizeof(double)), p->v = malloc(np * sizeof(double));
    p->theta_f = malloc(np * sizeof(float)), p->v_f = malloc(np * sizeof(float));
    p->x = malloc(nx * sizeof(double)), p->x_f = malloc(nx * sizeof(float));
    p->labels = malloc((size_t)B * sizeof(int));
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    for (size_t i = 0; i < np; i++) p->theta[i] = rounded(1.2 * (2 * pf_rng_uniform(&rng) - 1));
    for (size_t i = 0; i < np; i++) p->v[i] = rounded(2 * pf_rng_uniform(&rng) - 1);
    /* inputs with no ties in any pooling window */
    for (size_t i = 0; i < nx; i++) p->x[i] = rounded(2 * pf_rng_uniform(&rng) - 1);
    for (int i = 0; i < B; i++) p->labels[i] = (int)pf_rng_below(&rng, (uint64_t)p->K);
    for (size_t i = 0; i < np; i++) p->theta_f[i] = (float)p->theta[i], p->v_f[i] = (float)p->v[i];
    for (size_t i = 0; i < nx; i++) p->x_f[i] = (float)p->x[i];
    p->d = (pf_dataset){.n = (size_t)B, .dim = A->in_dim, .x = p->x_f, .labels = p->labels,
                        .n_classes = p->K};
    snprintf(p->d.name, sizeof p->d.name, "cnn problem %d", m);
}

static void problem_free(problem *p)
{
    free(p->theta), free(p->v), free(p->theta_f), free(p->v_f), free(p->x), free(p->x_f);
    free(p->labels);
}

static double rel_error(const float *got, const double *want, size_t n)
{
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        e += d * d, s += want[i] * want[i];
    }
    return sqrt(e / (s > 0 ? s : 1));
}

static void test_spec_parsing(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    assert_int_equal(pf_arch_parse(&a, "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10",
                                   "relu", 1, PF_LOSS_CE, &err), PF_OK);
    assert_int_equal(a.in_dim, 784);
    assert_int_equal(a.n_stages, 4);
    assert_int_equal(a.n_conv, 2);
    assert_int_equal(a.n_layers, 2);
    assert_int_equal(a.sizes[0], 16 * 7 * 7);
    /* PyTorch's order: conv1.weight, conv1.bias, conv2..., fc1... */
    assert_int_equal(a.stage[0].w_off, 0);
    assert_int_equal(a.stage[0].b_off, 72);
    assert_int_equal(a.stage[2].w_off, 80);
    assert_int_equal(a.stage[2].b_off, 80 + 16 * 8 * 9);
    assert_int_equal(a.w_off[0], 80 + 16 * 8 * 9 + 16);
    assert_int_equal(a.n_params, 80 + 1168 + 784 * 32 + 32 + 330);
    assert_int_equal(a.stage[0].act, PF_ACT_RELU);
    assert_int_equal(a.act[1], PF_ACT_LINEAR);
    char buf[256];
    pf_arch_sizes_str(&a, buf, sizeof buf);
    assert_string_equal(buf, "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10");
    pf_arch_acts_str(&a, buf, sizeof buf);
    assert_string_equal(buf, "relu,relu,relu,linear");
    pf_arch b;
    assert_int_equal(pf_arch_parse(&b, buf[0] ? "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10"
                                              : "", "relu", 1, PF_LOSS_CE, &err), PF_OK);
    assert_true(pf_arch_equal(&a, &b));
    assert_int_equal(pf_arch_parse(&b, "1x28x28,conv8:3:1:1,avgpool2,conv16:3:1:1,maxpool2,fc32,fc10",
                                   "relu", 1, PF_LOSS_CE, &err), PF_OK);
    assert_false(pf_arch_equal(&a, &b));
    /* the MLP spec is the MLP of pf_arch_init, bit for bit */
    int sizes[] = {784, 128, 128, 10};
    pf_act acts[] = {PF_ACT_SIGMOID, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    pf_arch m1, m2;
    assert_int_equal(pf_arch_init(&m1, 3, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    assert_int_equal(pf_arch_parse(&m2, "784,128,128,10", "sigmoid", 1, PF_LOSS_CE, &err), PF_OK);
    assert_memory_equal(&m1, &m2, sizeof m1);

    const struct {
        const char *spec, *needle;
    } bad[] = {
        {"1x4x4,conv2:5,fc3", "kernel 5 is larger than its input 4x4"},
        {"1x7x7,maxpool2,fc3", "window 2 does not divide its input 7x7"},
        {"1x8x8,fc4,conv2:3,fc3", "comes after an fc layer"},
        {"1x8x8,flatten,maxpool2,fc3", "comes after flatten"},
        {"1x8x8,conv2:3", "ends without an fc layer"},
        {"1x8x8,conv2:3:0,fc3", "convN:K[:S[:P]]"},
        {"1x8x8,conv2:3:1:2,fc3", "padding 2 is more than half the kernel 3"},
        {"1x8,conv2:3,fc3", "is not CxHxW"},
        {"1x8x8,dense4,fc3", "unknown layer 'dense4'"},
        {"1x8x8,conv2:3,,fc3", "empty layer"},
        {"1x8x8,conv2:3,fc3,", "empty layer"},
        {"1x8x8,maxpool0,fc3", "maxpoolK"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pf_arch_parse(&b, bad[i].spec, "relu", 1, PF_LOSS_CE, &err);
        if (rc != PF_EINPUT || !strstr(err.msg, bad[i].needle) || strchr(err.msg, '\n'))
            fail_msg("%s: rc %d, '%s' (wanted '%s')", bad[i].spec, rc, err.msg, bad[i].needle);
    }
    assert_int_equal(pf_arch_parse(&b, "1x8x8,conv2:3,fc3", "relu,tanh,sigmoid", 1, PF_LOSS_CE, &err),
                     PF_EINPUT);
}

/* nn.Conv2d's bound is 1/sqrt(in_c k k), nn.Linear's 1/sqrt(in). */
static void test_init_bounds(void **state)
{
    (void)state;
    pf_arch a;
    pf_error err;
    assert_int_equal(pf_arch_parse(&a, "2x8x8,conv6:3,maxpool2,fc7,fc3", "relu", 1, PF_LOSS_CE, &err),
                     PF_OK);
    float *t = malloc(a.n_params * sizeof *t);
    pf_rng rng;
    pf_rng_seed(&rng, 5);
    pf_init_params(&a, t, &rng);
    const struct {
        size_t lo, hi;
        double bound;
    } parts[] = {
        {0, a.stage[0].b_off + 6, 1 / sqrt(18.0)},
        {a.w_off[0], a.w_off[1], 1 / sqrt((double)a.sizes[0])},
        {a.w_off[1], a.n_params, 1 / sqrt(7.0)},
    };
    for (int k = 0; k < 3; k++) {
        double mx = 0;
        for (size_t i = parts[k].lo; i < parts[k].hi; i++) mx = fmax(mx, fabs(t[i]));
        if (mx > parts[k].bound || mx < 0.8 * parts[k].bound)
            fail_msg("part %d: largest |value| %g for the bound %g", k, mx, parts[k].bound);
    }
    free(t);
}

/* The reference gradient against central differences of the reference loss. */
static void test_fd_gradient(void **state)
{
    (void)state;
    for (int m = 0; m < N_MODELS; m++) {
        problem p;
        problem_make(&p, m, 3, 100 + (uint64_t)m);
        size_t np = p.arch.n_params;
        double *g = malloc(np * sizeof *g);
        pf_ref_loss_grad(&p.arch, p.theta, p.x, p.labels, NULL, p.B, g);
        double worst = 0;
        for (size_t i = 0; i < np; i++) {
            double keep = p.theta[i], h = 1e-5;
            p.theta[i] = keep + h;
            double up = pf_ref_loss_grad(&p.arch, p.theta, p.x, p.labels, NULL, p.B, NULL);
            p.theta[i] = keep - h;
            double down = pf_ref_loss_grad(&p.arch, p.theta, p.x, p.labels, NULL, p.B, NULL);
            p.theta[i] = keep;
            double fd = (up - down) / (2 * h);
            worst = fmax(worst, fabs(fd - g[i]) / fmax(1e-3, fabs(g[i])));
        }
        if (worst > 1e-6) fail_msg("%s: gradient off finite differences by %.3g", models[m].spec, worst);
        free(g);
        problem_free(&p);
    }
}

/* The reference H v against central differences of the reference gradient. */
static void test_fd_hvp(void **state)
{
    (void)state;
    for (int m = 0; m < N_MODELS; m++) {
        problem p;
        problem_make(&p, m, 3, 200 + (uint64_t)m);
        size_t np = p.arch.n_params;
        double *hv = malloc(np * sizeof *hv), *gp = malloc(np * sizeof *gp),
               *gm = malloc(np * sizeof *gm), *t = malloc(np * sizeof *t);
        pf_ref_hvp(&p.arch, p.theta, p.x, p.labels, NULL, p.B, p.v, hv);
        double h = 1e-5;
        for (size_t i = 0; i < np; i++) t[i] = p.theta[i] + h * p.v[i];
        pf_ref_loss_grad(&p.arch, t, p.x, p.labels, NULL, p.B, gp);
        for (size_t i = 0; i < np; i++) t[i] = p.theta[i] - h * p.v[i];
        pf_ref_loss_grad(&p.arch, t, p.x, p.labels, NULL, p.B, gm);
        double e = 0, s = 0;
        for (size_t i = 0; i < np; i++) {
            double fd = (gp[i] - gm[i]) / (2 * h);
            e += (fd - hv[i]) * (fd - hv[i]), s += hv[i] * hv[i];
        }
        /* relu's kinks: a difference step may cross one; the inputs keep them far */
        if (sqrt(e / s) > 1e-6)
            fail_msg("%s: H v off finite differences by %.3g relative", models[m].spec, sqrt(e / s));
        free(hv), free(gp), free(gm), free(t);
        problem_free(&p);
    }
}

/* The float paths against the reference: a batch's loss and gradient, the
 * full-batch gradient and H v on teams of 1 and 2, in blocks smaller than
 * the data. */
static void test_fast_matches_reference(void **state)
{
    (void)state;
    for (int m = 0; m < N_MODELS; m++) {
        problem p;
        problem_make(&p, m, 9, 300 + (uint64_t)m);
        size_t np = p.arch.n_params;
        double *g = malloc(np * sizeof *g), *hv = malloc(np * sizeof *hv);
        float *gf = calloc(np, sizeof *gf), *hf = malloc(np * sizeof *hf);
        double want = pf_ref_loss_grad(&p.arch, p.theta, p.x, p.labels, NULL, p.B, g);
        pf_ref_hvp(&p.arch, p.theta, p.x, p.labels, NULL, p.B, p.v, hv);
        pf_error err;
        pf_work w;
        assert_int_equal(pf_work_init(&w, NULL, &p.arch, p.B, &err), PF_OK);
        pf_forward(&w, p.theta_f, p.x_f, p.B);
        double got = pf_backward(&w, p.theta_f, p.x_f, p.labels, NULL, p.B, gf);
        if (fabs(got - want) > 1e-5 * fabs(want) || rel_error(gf, g, np) > 1e-5)
            fail_msg("%s: batch loss %.9g vs %.9g, gradient off by %.3g", models[m].spec, got, want,
                     rel_error(gf, g, np));
        pf_work_free(&w);
        for (int nt = 1; nt <= 2; nt++) {
            pf_ctx *ctx;
            assert_int_equal(pf_ctx_create(&ctx, nt, &err), PF_OK);
            assert_int_equal(pf_work_init(&w, ctx, &p.arch, 4, &err), PF_OK);
            got = pf_full_gradient(&w, p.theta_f, &p.d, gf);
            if (fabs(got - want) > 1e-5 * fabs(want) || rel_error(gf, g, np) > 1e-5)
                fail_msg("%s, %d threads: full-batch loss %.9g vs %.9g, gradient off by %.3g",
                         models[m].spec, nt, got, want, rel_error(gf, g, np));
            assert_int_equal(pf_hvp(&w, p.theta_f, &p.d, 0, 0.0, p.v_f, hf, &err), PF_OK);
            if (rel_error(hf, hv, np) > 1e-5)
                fail_msg("%s, %d threads: H v off the reference by %.3g", models[m].spec, nt,
                         rel_error(hf, hv, np));
            pf_work_free(&w);
            pf_ctx_free(ctx);
        }
        free(g), free(hv), free(gf), free(hf);
        problem_free(&p);
    }
}

/* Minibatch Adam on a team of two: the same seed gives the same bits, and
 * the loss goes down. */
static void test_training(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 2, 200, 7);
    /* labels it can learn: which third of the image is brightest */
    for (int i = 0; i < p.B; i++) {
        double third[3] = {0};
        for (int j = 0; j < 64; j++) third[j * 3 / 64] += p.x[(size_t)i * 64 + j];
        p.labels[i] = third[1] > third[0] ? (third[2] > third[1] ? 2 : 1) : (third[2] > third[0] ? 2 : 0);
    }
    pf_error err;
    float *t1 = malloc(p.arch.n_params * sizeof *t1), *t2 = malloc(p.arch.n_params * sizeof *t2);
    double first = 0, last[2] = {0};
    for (int run = 0; run < 2; run++) {
        pf_ctx *ctx;
        assert_int_equal(pf_ctx_create(&ctx, 2, &err), PF_OK);
        pf_opt_config opt;
        pf_opt_config_default(&opt, PF_OPT_ADAM);
        opt.lr = 0.01;
        pf_trainer t;
        assert_int_equal(pf_trainer_init(&t, ctx, &p.arch, &opt, 16, p.d.n, 3, &err), PF_OK);
        float *theta = run ? t2 : t1;
        pf_rng rng;
        pf_rng_seed(&rng, 1);
        pf_init_params(&p.arch, theta, &rng);
        pf_train_config cfg;
        pf_train_config_paper(&cfg);
        cfg.opt = opt;
        cfg.batch = 16;
        cfg.max_epochs = 20;
        cfg.patience = 100;
        pf_train_result res;
        pf_work w;
        assert_int_equal(pf_work_init(&w, NULL, &p.arch, 50, &err), PF_OK);
        first = pf_full_gradient(&w, theta, &p.d, NULL);
        if (pf_train_beta(&t, theta, &p.d, &cfg, &res, &err)) fail_msg("%s", err.msg);
        last[run] = pf_full_gradient(&w, theta, &p.d, NULL);
        pf_work_free(&w);
        pf_trainer_free(&t);
        pf_ctx_free(ctx);
    }
    assert_memory_equal(t1, t2, p.arch.n_params * sizeof *t1);
    if (!(last[0] < 0.5 * first)) fail_msg("loss %.4g -> %.4g after 20 epochs", first, last[0]);
    free(t1), free(t2);
    problem_free(&p);
}

/* A checkpoint keeps the model: its spec, activations and parameters. */
static void test_checkpoint(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 3, 2, 9);
    char path[] = "/tmp/pf_cnn_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &p.arch, p.theta_f, NULL, &err), PF_OK);
    pf_arch got;
    float *theta;
    if (pf_ckpt_read(path, NULL, &p.arch, &got, &theta, NULL, &err)) fail_msg("%s", err.msg);
    assert_true(pf_arch_equal(&got, &p.arch));
    assert_memory_equal(theta, p.theta_f, p.arch.n_params * sizeof *theta);
    free(theta);
    /* a different model is refused, naming the file */
    pf_arch other;
    assert_int_equal(pf_arch_parse(&other, "1x5x5,avgpool1,conv2:2:1:1,flatten,fc4,fc3",
                                   "sigmoid,tanh,linear", 1, PF_LOSS_CE, &err), PF_OK);
    assert_int_equal(pf_ckpt_read(path, NULL, &other, &got, &theta, NULL, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    problem_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parsing),
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_fd_gradient),
        cmocka_unit_test(test_fd_hvp),
        cmocka_unit_test(test_fast_matches_reference),
        cmocka_unit_test(test_training),
        cmocka_unit_test(test_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
