/* Where the sparse input layer stops paying: one epoch of the paper
 * protocol (MLP 784-128-128-10 sigmoid, Adam, batch 64) on synthetic
 * image-like data of 60,000 samples whose pixels are off their background
 * with a given probability, with the sparse and with the dense input layer,
 * taking turns, best of a few epochs each. The density where the two cross
 * is what PF_SPARSE_MAX_DENSITY (src/core/sparse.h) should sit below.
 *
 *   cc -O2 -march=native -Iinclude bench/input_density.c build/libpathfinder.a \
 *      $(pkg-config --libs openblas) -lm -lpthread -o build/bench/input_density
 *   build/bench/input_density [THREADS] [EPOCHS]
 * Prints one line per density: seconds per epoch on each path and their ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"

static double epoch_seconds(pf_ctx *ctx, const pf_arch *a, const pf_dataset *d, pf_input_layer path,
                            int epochs)
{
    pf_error err;
    float *theta = malloc(a->n_params * sizeof *theta);
    pf_rng rng;
    pf_rng_seed(&rng, 0);
    pf_init_params(a, theta, &rng);
    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    cfg.max_epochs = 1;
    cfg.input_layer = path;
    pf_trainer t;
    if (pf_trainer_init(&t, ctx, a, &cfg.opt, cfg.batch, d->n, 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    double best = 1e9;
    for (int e = 0; e < epochs; e++) {
        pf_train_result res;
        cfg.reset_optimizer = e == 0;
        if (pf_train_beta(&t, theta, d, &cfg, &res, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        double s = res.seconds - res.setup_seconds;
        if (s < best) best = s;
    }
    pf_trainer_free(&t);
    free(theta);
    return best;
}

int main(int argc, char **argv)
{
    /* the OpenBLAS kernels the tool would run with (see pf_blas_better_core) */
    const char *core = pf_blas_better_core();
    if (core && !getenv("OPENBLAS_CORETYPE") && setenv("OPENBLAS_CORETYPE", core, 1) == 0)
        execv("/proc/self/exe", argv);
    int threads = argc > 1 ? atoi(argv[1]) : 1, epochs = argc > 2 ? atoi(argv[2]) : 3;
    pf_error err;
    pf_ctx *ctx;
    if (pf_ctx_create(&ctx, threads, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int sizes[] = {784, 128, 128, 10};
    const pf_act acts[] = {PF_ACT_SIGMOID, PF_ACT_SIGMOID, PF_ACT_LINEAR};
    pf_arch a;
    if (pf_arch_init(&a, 3, sizes, acts, 1, PF_LOSS_CE, &err)) return 1;
    enum { N = 60000, D = 784 };
    pf_dataset d = {.n = N, .dim = D, .n_classes = 10};
    d.x = malloc((size_t)N * D * sizeof *d.x);
    d.labels = malloc(N * sizeof *d.labels);
    const double densities[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    printf("threads %d, best of %d epochs\n%8s %10s %10s %7s\n", threads, epochs, "density", "sparse s",
           "dense s", "dense/sparse");
    for (size_t k = 0; k < sizeof densities / sizeof *densities; k++) {
        pf_rng rng;
        pf_rng_seed(&rng, 7);
        for (size_t i = 0; i < (size_t)N * D; i++)
            d.x[i] = pf_rng_uniform(&rng) < densities[k] ? (float)(3.0 * pf_rng_uniform(&rng)) - 0.4242f
                                                         : -0.4242f;
        for (int i = 0; i < N; i++) d.labels[i] = (int)pf_rng_below(&rng, 10);
        double s = epoch_seconds(ctx, &a, &d, PF_INPUT_SPARSE, epochs);
        double t = epoch_seconds(ctx, &a, &d, PF_INPUT_DENSE, epochs);
        printf("%8.2f %10.3f %10.3f %7.2f\n", densities[k], s, t, t / s);
        fflush(stdout);
    }
    pf_dataset_free(&d);
    pf_ctx_free(ctx);
    return 0;
}
