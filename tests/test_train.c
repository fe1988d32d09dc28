/* Training protocol: the paper MLP on real MNIST, patience and early stop,
 * full-batch and L-BFGS modes, regression, determinism across runs and the
 * thread team, and evaluation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "exp/results.h"
#include "pathfinder/io.h"

static pf_arch make_arch(int n_layers, const int *sizes, pf_act hidden, pf_loss loss)
{
    pf_arch a;
    pf_error err;
    pf_act acts[PF_MAX_LAYERS];
    for (int l = 0; l < n_layers; l++) acts[l] = l + 1 < n_layers ? hidden : PF_ACT_LINEAR;
    assert_int_equal(pf_arch_init(&a, n_layers, sizes, acts, 1, loss, &err), PF_OK);
    return a;
}

/* Two noisy Gaussian blobs per class in 8 dimensions. */
static void blobs(pf_dataset *d, size_t n, int classes, uint64_t seed, int regression)
{
    memset(d, 0, sizeof *d);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    d->n = n;
    d->dim = 8;
    d->x = malloc(n * 8 * sizeof(float));
    if (regression) {
        d->targets = malloc(n * 2 * sizeof(float));
        d->n_targets = 2;
    } else {
        d->labels = malloc(n * sizeof(int));
        d->n_classes = classes;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)classes);
        for (int j = 0; j < 8; j++)
            d->x[i * 8 + j] = (float)((j == c % 8 ? 2.0 : 0.0) + pf_rng_uniform(&rng) - 0.5);
        if (regression) {
            d->targets[i * 2] = (float)(d->x[i * 8] - d->x[i * 8 + 1]);
            d->targets[i * 2 + 1] = (float)(0.5 * d->x[i * 8 + 2] * d->x[i * 8 + 2]);
        } else {
            d->labels[i] = c;
        }
    }
    snprintf(d->name, sizeof d->name, "blobs");
}

/* Train a fresh model with a context of `threads` members. */
static void train_with(int threads, const pf_arch *a, const pf_dataset *d, const pf_train_config *cfg,
                       uint64_t seed, float *theta, pf_train_result *res)
{
    pf_error err;
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    pf_init_params(a, theta, &rng);
    pf_ctx *ctx;
    assert_int_equal(pf_ctx_create(&ctx, threads, &err), PF_OK);
    pf_trainer t;
    assert_int_equal(pf_trainer_init(&t, ctx, a, &cfg->opt, cfg->batch, d->n, seed + 1, &err), PF_OK);
    int rc = pf_train_beta(&t, theta, d, cfg, res, &err);
    if (rc) fail_msg("training failed: %s", err.msg);
    pf_trainer_free(&t);
    pf_ctx_free(ctx);
}

static void train_once(const pf_arch *a, const pf_dataset *d, const pf_train_config *cfg,
                       uint64_t seed, float *theta, pf_train_result *res)
{
    train_with(1, a, d, cfg, seed, theta, res);
}

/* The paper MLP, one epoch of the paper protocol on the real MNIST,
 * reaches more than 90% test accuracy. */
static void test_mnist_one_epoch(void **state)
{
    (void)state;
    pf_data_options o;
    pf_data_options_default(&o);
    pf_dataset train, test;
    pf_error err;
    int rc = pf_data_load(&o, &train, &test, &err);
    if (rc) fail_msg("MNIST is needed for this test (make data): %s", err.msg);
    const int sizes[] = {784, 128, 128, 10};
    pf_arch a = make_arch(3, sizes, PF_ACT_SIGMOID, PF_LOSS_CE);
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.max_epochs = 1;
    float *theta = malloc(a.n_params * sizeof *theta);
    pf_train_result res;
    /* auto: MNIST is 81% background, the input layer runs sparse */
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_AUTO, train.x, train.n, train.dim), PF_INPUT_SPARSE);
    train_with(2, &a, &train, &cfg, 0, theta, &res);
    assert_int_equal(res.epochs, 1);
    assert_int_equal(res.steps, 938); /* 60000 / 64 rounded up: the last batch is short */
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &a, 2000, &err), PF_OK);
    pf_metrics m, md;
    assert_int_equal(pf_measure(&w, theta, &train, &test, NULL, 0.0, &m, &err), PF_OK);
    print_message("MNIST after one epoch: test accuracy %.2f%%, train CE %.4f, r %.2f\n",
                  m.test.accuracy, m.train.loss, m.r);
    /* the dense path measures the same model to rounding, and trains one
     * that agrees closely */
    w.input_layer = PF_INPUT_DENSE;
    assert_int_equal(pf_measure(&w, theta, &train, &test, NULL, 0.0, &md, &err), PF_OK);
    assert_true(fabs(md.train.loss - m.train.loss) < 1e-5 * m.train.loss);
    assert_true(fabs(md.test.accuracy - m.test.accuracy) < 0.05);
    float *dense = malloc(a.n_params * sizeof *dense);
    pf_train_config dcfg = cfg;
    dcfg.input_layer = PF_INPUT_DENSE;
    train_with(2, &a, &train, &dcfg, 0, dense, &res);
    assert_int_equal(pf_measure(&w, dense, &train, &test, NULL, 0.0, &md, &err), PF_OK);
    print_message("dense input layer: test accuracy %.2f%%, train CE %.4f, r %.2f\n", md.test.accuracy,
                  md.train.loss, md.r);
    assert_true(fabs(md.test.accuracy - m.test.accuracy) < 0.5);
    assert_true(fabs(md.r - m.r) < 0.01 * m.r);
    free(dense);
    assert_true(m.test.accuracy > 90.0);
    assert_true(m.train.loss < 0.35);
    double mean_class = 0;
    for (int k = 0; k < 10; k++) mean_class += m.test.class_accuracy[k] / 10;
    assert_true(fabs(mean_class - m.test.accuracy) < 2.0);
    pf_work_free(&w);
    free(theta);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

/* What is guaranteed: the same seed and the same thread count give
 * bit-identical parameters (checked at 1 and at 2 members). Different
 * counts split the matrix products differently, so they agree only to
 * float rounding: after one full-batch SGD step to within 1e-6, after which
 * training amplifies the rounding (only closeness is checked). */
static void test_deterministic_training(void **state)
{
    (void)state;
    pf_dataset d;
    blobs(&d, 1000, 5, 1, 0);
    const int sizes[] = {8, 32, 16, 5};
    pf_arch a = make_arch(3, sizes, PF_ACT_TANH, PF_LOSS_CE);
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.max_epochs = 3;
    cfg.beta = 0.001;
    float *th[4];
    pf_train_result res;
    for (int k = 0; k < 4; k++) {
        th[k] = malloc(a.n_params * sizeof(float));
        train_with(k < 2 ? 1 : 2, &a, &d, &cfg, 7, th[k], &res);
    }
    assert_memory_equal(th[0], th[1], a.n_params * sizeof(float));
    assert_memory_equal(th[2], th[3], a.n_params * sizeof(float));
    size_t differ = 0;
    double dist = 0;
    for (size_t i = 0; i < a.n_params; i++) {
        differ += th[0][i] != th[2][i];
        dist += fabs((double)th[0][i] - th[2][i]);
    }
    print_message("after 3 epochs, 1 vs 2 threads: %zu of %zu parameters differ, mean |diff| %.2g\n",
                  differ, a.n_params, dist / a.n_params);
    assert_true(dist / a.n_params < 1e-5);
    /* one full-batch SGD step: 1 and 2 members agree to rounding */
    pf_train_config one = cfg;
    pf_opt_config_default(&one.opt, PF_OPT_SGD);
    one.batch = 0;
    one.max_epochs = 1;
    float *step[2];
    for (int k = 0; k < 2; k++) {
        step[k] = malloc(a.n_params * sizeof(float));
        train_with(k + 1, &a, &d, &one, 7, step[k], &res);
    }
    double worst = 0;
    for (size_t i = 0; i < a.n_params; i++) worst = fmax(worst, fabs((double)step[0][i] - step[1][i]));
    print_message("one full-batch step, 1 vs 2 threads: max |diff| %.2g\n", worst);
    assert_true(worst < 1e-6);
    /* a different seed gives a different model */
    float *other = malloc(a.n_params * sizeof(float));
    train_once(&a, &d, &cfg, 8, other, &res);
    assert_true(memcmp(other, th[0], a.n_params * sizeof(float)) != 0);
    for (int k = 0; k < 4; k++) free(th[k]);
    for (int k = 0; k < 2; k++) free(step[k]);
    free(other);
    pf_dataset_free(&d);
}

/* Image-like data: 64 "pixels", each at its background in about 4 of 5
 * samples, the rest bright; the class lights up its own block. */
static void images(pf_dataset *d, size_t n, int classes, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    d->n = n;
    d->dim = 64;
    d->x = malloc(n * 64 * sizeof(float));
    d->labels = malloc(n * sizeof(int));
    d->n_classes = classes;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)classes);
        for (int j = 0; j < 64; j++) {
            int on = j / 8 == c ? pf_rng_uniform(&rng) < 0.7 : pf_rng_uniform(&rng) < 0.1;
            d->x[i * 64 + j] = on ? (float)(2.0 * pf_rng_uniform(&rng)) : -0.4242f;
        }
        d->labels[i] = c;
    }
    snprintf(d->name, sizeof d->name, "images");
}

/* The sparse input layer in training: auto takes it on image-like data;
 * the same seed and thread count give bit-identical parameters and
 * optimizer state on it too (at 1 and at 2 members); and it agrees with
 * the dense path to float rounding (one full-batch step), then closely
 * (minibatch training amplifies the rounding). The optimizer's moments
 * come back in PyTorch's layout (the trainer holds the input layer
 * transposed only while it trains). */
static void test_sparse_input_layer_training(void **state)
{
    (void)state;
    pf_dataset d;
    images(&d, 600, 5, 2);
    assert_int_equal(pf_input_layer_resolve(PF_INPUT_AUTO, d.x, d.n, d.dim), PF_INPUT_SPARSE);
    const int sizes[] = {64, 32, 16, 5};
    pf_arch a = make_arch(3, sizes, PF_ACT_SIGMOID, PF_LOSS_CE);
    float *anchor = malloc(a.n_params * sizeof *anchor);
    for (size_t i = 0; i < a.n_params; i++) anchor[i] = (float)(0.01 * (double)(i % 7));
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.max_epochs = 3;
    cfg.beta = 0.002;
    cfg.anchor = anchor;
    const pf_input_layer modes[2] = {PF_INPUT_SPARSE, PF_INPUT_DENSE};
    float *th[2][2][2], *m[2][2][2];
    pf_error err;
    for (int p = 0; p < 2; p++)
        for (int threads = 1; threads <= 2; threads++)
            for (int rep = 0; rep < 2; rep++) {
                pf_train_config c = cfg;
                c.input_layer = modes[p];
                float *theta = th[p][threads - 1][rep] = malloc(a.n_params * sizeof(float));
                pf_rng rng;
                pf_rng_seed(&rng, 7);
                pf_init_params(&a, theta, &rng);
                pf_ctx *ctx;
                assert_int_equal(pf_ctx_create(&ctx, threads, &err), PF_OK);
                pf_trainer t;
                assert_int_equal(pf_trainer_init(&t, ctx, &a, &c.opt, c.batch, d.n, 8, &err), PF_OK);
                pf_train_result res;
                if (pf_train_beta(&t, theta, &d, &c, &res, &err)) fail_msg("training failed: %s", err.msg);
                assert_int_equal(t.sparse, p == 0);
                if (rep == 0) {
                    pf_trainer_state st;
                    assert_int_equal(pf_trainer_get_state(&t, &st, &err), PF_OK);
                    m[p][threads - 1][0] = st.m, m[p][threads - 1][1] = st.v;
                    st.m = st.v = NULL;
                    pf_trainer_state_free(&st);
                }
                pf_trainer_free(&t);
                pf_ctx_free(ctx);
            }
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++)
            assert_memory_equal(th[p][k][0], th[p][k][1], a.n_params * sizeof(float));
    /* at 2 members the sparse path holds the input layer in two panels */
    for (int k = 0; k < 2; k++) {
        double dist = 0, mdist = 0, mscale = 0;
        for (size_t i = 0; i < a.n_params; i++) {
            dist += fabs((double)th[0][k][0][i] - th[1][k][0][i]);
            mdist += fabs((double)m[0][k][1][i] - m[1][k][1][i]);
            mscale += fabs((double)m[1][k][1][i]);
        }
        print_message("after 3 epochs at %d thread(s), sparse vs dense input layer: mean |diff| %.2g; "
                      "Adam v differs by %.2g of its size\n", k + 1, dist / a.n_params, mdist / mscale);
        assert_true(dist / a.n_params < 1e-4);
        assert_true(mdist / mscale < 1e-2); /* a transposed or misplaced moment would be far off */
    }
    /* one full-batch step (the full gradient's sparse path): agree to rounding */
    pf_train_config one = cfg;
    pf_opt_config_default(&one.opt, PF_OPT_SGD);
    one.batch = 0;
    one.max_epochs = 1;
    float *step[2];
    pf_train_result res;
    for (int p = 0; p < 2; p++) {
        one.input_layer = modes[p];
        step[p] = malloc(a.n_params * sizeof(float));
        train_with(2, &a, &d, &one, 7, step[p], &res);
    }
    double worst = 0;
    for (size_t i = 0; i < a.n_params; i++) worst = fmax(worst, fabs((double)step[0][i] - step[1][i]));
    print_message("one full-batch step, sparse vs dense: max |diff| %.2g\n", worst);
    assert_true(worst < 1e-6);
    for (int p = 0; p < 2; p++) {
        for (int k = 0; k < 2; k++) free(th[p][k][0]), free(th[p][k][1]);
        free(m[p][0][0]), free(m[p][0][1]), free(m[p][1][0]), free(m[p][1][1]), free(step[p]);
    }
    free(anchor);
    pf_dataset_free(&d);
}

/* pf_train_beta checks the config against the trainer: a trainer built for
 * one optimizer (and its buffers) refuses a config that asks for another,
 * and a trainer built for one batch size refuses another (it used to
 * write past SGD's buffers, and to ignore the config's batch). */
static void test_trainer_refuses_other_settings(void **state)
{
    (void)state;
    pf_dataset d;
    blobs(&d, 200, 3, 4, 0);
    const int sizes[] = {8, 6, 3};
    pf_arch a = make_arch(2, sizes, PF_ACT_SIGMOID, PF_LOSS_CE);
    float *theta = malloc(a.n_params * sizeof *theta);
    pf_rng rng;
    pf_rng_seed(&rng, 1);
    pf_init_params(&a, theta, &rng);
    pf_error err;
    pf_train_result res;
    const pf_opt_kind kinds[] = {PF_OPT_ADAM, PF_OPT_SGD, PF_OPT_LBFGS};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 3; j++) {
            pf_train_config cfg;
            pf_train_config_paper(&cfg);
            cfg.max_epochs = 1;
            pf_opt_config_default(&cfg.opt, kinds[k]);
            pf_trainer t;
            assert_int_equal(pf_trainer_init(&t, NULL, &a, &cfg.opt, cfg.batch, d.n, 3, &err), PF_OK);
            pf_opt_config_default(&cfg.opt, kinds[j]);
            int rc = pf_train_beta(&t, theta, &d, &cfg, &res, &err);
            if (j == k) {
                assert_int_equal(rc, PF_OK);
            } else {
                assert_int_equal(rc, PF_EINPUT);
                assert_non_null(strstr(err.msg, pf_opt_name(kinds[j])));
            }
            pf_trainer_free(&t);
        }
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    pf_trainer t;
    assert_int_equal(pf_trainer_init(&t, NULL, &a, &cfg.opt, 64, d.n, 3, &err), PF_OK);
    cfg.batch = 32;
    assert_int_equal(pf_train_beta(&t, theta, &d, &cfg, &res, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "batch 64"));
    pf_trainer_free(&t);
    free(theta);
    pf_dataset_free(&d);
}

/* Patience: a learning rate of zero never improves after the first epoch,
 * so training stops after 1 + patience epochs, with the state unchanged. */
static void test_patience_stops(void **state)
{
    (void)state;
    pf_dataset d;
    blobs(&d, 300, 3, 2, 0);
    const int sizes[] = {8, 6, 3};
    pf_arch a = make_arch(2, sizes, PF_ACT_SIGMOID, PF_LOSS_CE);
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    pf_opt_config_default(&cfg.opt, PF_OPT_SGD);
    cfg.opt.lr = 1e-30;
    cfg.opt.momentum = 0.0;
    cfg.batch = 300; /* one batch: every epoch sees the same loss... */
    cfg.min_delta = 1e-9; /* ...up to the rounding of its rows' order, which changes each epoch */
    cfg.patience = 3;
    float *theta = malloc(a.n_params * sizeof *theta);
    pf_train_result res;
    train_once(&a, &d, &cfg, 1, theta, &res);
    assert_int_equal(res.epochs, 4);
    assert_true(res.stopped_early);
    /* a working learning rate keeps improving and runs to max_epochs */
    cfg.opt.lr = 0.5;
    cfg.max_epochs = 20;
    train_once(&a, &d, &cfg, 1, theta, &res);
    assert_int_equal(res.epochs, 20);
    assert_false(res.stopped_early);
    assert_true(res.epoch_loss < res.best_epoch_loss + 1e-12);
    free(theta);
    pf_dataset_free(&d);
}

/* Shifted L2 with a large beta pulls the model onto its anchor. */
static void test_strong_anchor_pulls_to_anchor(void **state)
{
    (void)state;
    pf_dataset d;
    blobs(&d, 400, 4, 3, 0);
    const int sizes[] = {8, 10, 4};
    pf_arch a = make_arch(2, sizes, PF_ACT_RELU, PF_LOSS_CE);
    float *anchor = malloc(a.n_params * sizeof *anchor), *theta = malloc(a.n_params * sizeof *theta);
    pf_rng rng;
    pf_rng_seed(&rng, 99);
    pf_init_params(&a, anchor, &rng);
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.anchor = anchor;
    cfg.beta = 50.0;
    cfg.max_epochs = 30;
    /* SGD contracts toward the minimum; Adam's normalized steps would keep
     * every parameter jittering about lr away from it. */
    pf_opt_config_default(&cfg.opt, PF_OPT_SGD);
    cfg.opt.momentum = 0.0;
    cfg.opt.lr = 0.01;
    pf_train_result res;
    train_once(&a, &d, &cfg, 4, theta, &res);
    double r = pf_distance(theta, anchor, a.n_params), r0 = 0;
    pf_rng_seed(&rng, 4);
    float *init = malloc(a.n_params * sizeof *init);
    pf_init_params(&a, init, &rng);
    r0 = pf_distance(init, anchor, a.n_params);
    print_message("distance to anchor: start %.3f, end %.4f\n", r0, r);
    assert_true(r < 0.05 * r0);
    free(anchor), free(theta), free(init);
    pf_dataset_free(&d);
}

/* Full-batch Adam, L-BFGS and MSE regression all lower the loss; L-BFGS
 * is deterministic and reaches a small gradient. */
static void test_fullbatch_lbfgs_regression(void **state)
{
    (void)state;
    pf_dataset d;
    blobs(&d, 500, 2, 5, 1);
    const int sizes[] = {8, 16, 2};
    pf_arch a = make_arch(2, sizes, PF_ACT_TANH, PF_LOSS_MSE);
    float *theta = malloc(a.n_params * sizeof *theta), *again = malloc(a.n_params * sizeof *again);
    pf_work w;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &a, 128, &err), PF_OK);
    pf_rng rng;
    pf_rng_seed(&rng, 6);
    pf_init_params(&a, theta, &rng);
    double before = pf_full_gradient(&w, theta, &d, NULL);

    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.batch = 0;
    cfg.max_epochs = 200;
    cfg.opt.lr = 0.01;
    pf_train_result res;
    train_once(&a, &d, &cfg, 6, theta, &res);
    double adam_full = pf_full_gradient(&w, theta, &d, NULL);
    assert_true(adam_full < 0.5 * before);

    pf_opt_config_default(&cfg.opt, PF_OPT_LBFGS);
    cfg.max_epochs = 300;
    cfg.beta = 1e-3;
    train_once(&a, &d, &cfg, 6, theta, &res);
    train_once(&a, &d, &cfg, 6, again, &res);
    assert_memory_equal(theta, again, a.n_params * sizeof(float));
    double lbfgs = pf_full_gradient(&w, theta, &d, NULL);
    print_message("MSE: init %.4f, full-batch Adam %.5f, L-BFGS %.6f (%d iterations)\n", before,
                  adam_full, lbfgs, res.epochs);
    assert_true(lbfgs < adam_full);
    pf_work_free(&w);
    free(theta), free(again);
    pf_dataset_free(&d);
}

/* Evaluation: per-class accuracy from known predictions. A linear model
 * that copies its input picks argmax(x). */
static void test_evaluate_counts(void **state)
{
    (void)state;
    const int sizes[] = {3, 3};
    pf_arch a = make_arch(1, sizes, PF_ACT_LINEAR, PF_LOSS_CE);
    float theta[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    float x[] = {5, 0, 0, /**/ 0, 5, 0, /**/ 0, 0, 5, /**/ 5, 0, 0, /**/ 0, 5, 0};
    int labels[] = {0, 1, 2, 1, 1}; /* sample 3 is wrong (class 1 predicted 0) */
    pf_dataset d = {.n = 5, .dim = 3, .x = x, .labels = labels, .n_classes = 3};
    pf_work w;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &a, 2, &err), PF_OK);
    pf_eval e;
    assert_int_equal(pf_evaluate(&w, theta, &d, &e, &err), PF_OK);
    assert_true(fabs(e.accuracy - 80.0) < 1e-12);
    assert_true(fabs(e.class_accuracy[0] - 100.0) < 1e-12);
    assert_true(fabs(e.class_accuracy[1] - 200.0 / 3) < 1e-9);
    assert_true(fabs(e.class_accuracy[2] - 100.0) < 1e-12);
    double good = log(1 + 2 * exp(-5.0)), bad = 5 + log(1 + 2 * exp(-5.0));
    assert_true(fabs(e.loss - (4 * good + bad) / 5) < 1e-6);
    /* a dataset that does not fit the model is refused */
    pf_dataset wide = d;
    wide.dim = 4;
    assert_int_equal(pf_evaluate(&w, theta, &wide, &e, &err), PF_EINPUT);
    pf_work_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate_counts),
        cmocka_unit_test(test_patience_stops),
        cmocka_unit_test(test_deterministic_training),
        cmocka_unit_test(test_sparse_input_layer_training),
        cmocka_unit_test(test_trainer_refuses_other_settings),
        cmocka_unit_test(test_strong_anchor_pulls_to_anchor),
        cmocka_unit_test(test_fullbatch_lbfgs_regression),
        cmocka_unit_test(test_mnist_one_epoch),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
