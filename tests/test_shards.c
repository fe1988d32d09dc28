/* Data parallelism in one process: R threads play R processes, each with
 * its own context, its contiguous share of a dataset (pf_dataset_shard) and
 * a fake reducer that adds the R buffers in rank order (as an allreduce
 * would). The full-batch gradient and loss, evaluation, Hessian-vector
 * products (dense and sparse input layers) and Lanczos extremes of the
 * shards agree with the unsharded calls within 1e-6 relative, every rank
 * gets the same bits, and a rerun gives them again. A context without a
 * reducer is bit-identical to no context; a failing reducer fails the call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "exp/results.h"

enum { N = 301, DIM = 24, MAX_RANKS = 3 };

/* A random classification set; with `sparse`, 80% of the inputs are one
 * background value, as image pixels are. */
static void make_data(pf_dataset *d, int sparse, uint64_t seed)
{
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    memset(d, 0, sizeof *d);
    d->n = N;
    d->dim = DIM;
    d->n_classes = 5;
    d->x = malloc((size_t)N * DIM * sizeof(float));
    d->labels = malloc(N * sizeof(int));
    for (size_t i = 0; i < (size_t)N * DIM; i++) {
        double u = pf_rng_uniform(&rng);
        d->x[i] = sparse && u < 0.8 ? -0.4f : (float)(2 * pf_rng_uniform(&rng) - 1);
    }
    for (int i = 0; i < N; i++) d->labels[i] = (int)pf_rng_below(&rng, 5);
    snprintf(d->name, sizeof d->name, "random");
}

static void make_model(pf_arch *a, float **theta)
{
    int sizes[] = {DIM, 12, 8, 5};
    pf_act acts[] = {PF_ACT_SIGMOID, PF_ACT_TANH, PF_ACT_LINEAR};
    pf_error err;
    assert_int_equal(pf_arch_init(a, 3, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    *theta = malloc(a->n_params * sizeof(float));
    pf_rng rng;
    pf_rng_seed(&rng, 7);
    pf_init_params(a, *theta, &rng);
    for (size_t i = 0; i < a->n_params; i++) (*theta)[i] *= 3.0f; /* away from the flat start */
}

/* The fake allreduce: each rank posts its buffer, then every rank adds them
 * up in rank order. */
typedef struct {
    int size;
    pthread_barrier_t barrier;
    double *post[MAX_RANKS];
    size_t n[MAX_RANKS];
    int fail;          /* 1: the reducer reports a failure */
    long calls;
} fake_world;

typedef struct {
    fake_world *world;
    int rank;
} fake_rank;

static int fake_sum(double *buf, size_t n, void *user)
{
    fake_rank *r = user;
    fake_world *w = r->world;
    w->post[r->rank] = malloc(n * sizeof *buf);
    memcpy(w->post[r->rank], buf, n * sizeof *buf);
    w->n[r->rank] = n;
    pthread_barrier_wait(&w->barrier);
    int same = 1;
    for (int k = 0; k < w->size; k++) same &= w->n[k] == n;
    if (same)
        for (size_t i = 0; i < n; i++) {
            double s = w->post[0][i];
            for (int k = 1; k < w->size; k++) s += w->post[k][i];
            buf[i] = s;
        }
    pthread_barrier_wait(&w->barrier);
    free(w->post[r->rank]);
    if (r->rank == 0) w->calls++;
    return same && !w->fail ? 0 : -1;
}

/* What one rank computes on its share. */
typedef struct {
    fake_rank self;
    const pf_arch *arch;
    const float *theta, *v;
    const pf_dataset *full;
    int sparse;
    int rc;
    double loss, hv_loss, eval_loss, accuracy, lo, hi;
    size_t eval_n;
    float *grad, *hv;
} rank_job;

static void *rank_main(void *p)
{
    rank_job *j = p;
    pf_error err;
    pf_ctx *ctx;
    assert_int_equal(pf_ctx_create(&ctx, 1, &err), PF_OK);
    assert_int_equal(pf_ctx_set_reducer(ctx, fake_sum, &j->self, j->self.rank, j->self.world->size, &err),
                     PF_OK);
    assert_int_equal(pf_ctx_rank(ctx), j->self.rank);
    assert_int_equal(pf_ctx_ranks(ctx), j->self.world->size);
    pf_dataset d;
    int idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    assert_int_equal(pf_dataset_subset(&d, j->full, idx, N, &err), PF_OK);
    assert_int_equal(pf_dataset_shard(&d, 0, j->self.rank, j->self.world->size, &err), PF_OK);
    pf_work w;
    assert_int_equal(pf_work_init(&w, ctx, j->arch, 32, &err), PF_OK);
    w.input_layer = j->sparse ? PF_INPUT_SPARSE : PF_INPUT_DENSE;
    size_t np = j->arch->n_params;
    j->grad = malloc(np * sizeof(float));
    j->hv = malloc(np * sizeof(float));
    j->loss = pf_full_gradient(&w, j->theta, &d, j->grad);
    j->rc = pf_hvp(&w, j->theta, &d, 0, 0.5, j->v, j->hv, &err);
    pf_hessian *h = NULL;
    if (!j->rc) j->rc = pf_hessian_create(&h, &w, j->theta, &d, 0, &err);
    if (!j->rc) j->rc = pf_hessian_apply(h, 0.5, j->v, j->hv, &err);
    if (!j->rc) j->hv_loss = pf_hessian_loss(h);
    pf_hessian_free(h);
    pf_eval e;
    if (!j->rc) j->rc = pf_evaluate(&w, j->theta, &d, &e, &err);
    j->eval_loss = e.loss, j->accuracy = e.accuracy, j->eval_n = e.n;
    pf_hessian_extremes_result x;
    if (!j->rc) j->rc = pf_hessian_extremes(&w, j->theta, &d, 0, 0.0, NULL, &x, &err);
    j->lo = x.min_E, j->hi = x.max_E;
    pf_work_free(&w);
    pf_dataset_free(&d);
    pf_ctx_free(ctx);
    return NULL;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - (double)b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b); }

static void run_ranks(rank_job *jobs, fake_world *world, int size, const pf_arch *a, const float *theta,
                      const float *v, const pf_dataset *full, int sparse)
{
    world->size = size;
    pthread_barrier_init(&world->barrier, NULL, (unsigned)size);
    pthread_t th[MAX_RANKS];
    for (int k = 0; k < size; k++) {
        jobs[k] = (rank_job){.self = {world, k}, .arch = a, .theta = theta, .v = v, .full = full,
                             .sparse = sparse};
        assert_int_equal(pthread_create(&th[k], NULL, rank_main, &jobs[k]), 0);
    }
    for (int k = 0; k < size; k++) pthread_join(th[k], NULL);
    pthread_barrier_destroy(&world->barrier);
}

static void free_jobs(rank_job *jobs, int size)
{
    for (int k = 0; k < size; k++) free(jobs[k].grad), free(jobs[k].hv);
}

static void shards_agree(int sparse)
{
    pf_arch a;
    float *theta;
    make_model(&a, &theta);
    pf_dataset full;
    make_data(&full, sparse, 11);
    size_t np = a.n_params;
    float *v = malloc(np * sizeof(float));
    pf_rng rng;
    pf_rng_seed(&rng, 3);
    for (size_t i = 0; i < np; i++) v[i] = (float)(2 * pf_rng_uniform(&rng) - 1);

    /* one process, no reducer */
    pf_error err;
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &a, 32, &err), PF_OK);
    w.input_layer = sparse ? PF_INPUT_SPARSE : PF_INPUT_DENSE;
    float *grad = malloc(np * sizeof(float)), *hv = malloc(np * sizeof(float));
    double loss = pf_full_gradient(&w, theta, &full, grad);
    assert_int_equal(pf_hvp(&w, theta, &full, 0, 0.5, v, hv, &err), PF_OK);
    pf_eval e;
    assert_int_equal(pf_evaluate(&w, theta, &full, &e, &err), PF_OK);
    pf_hessian_extremes_result x;
    assert_int_equal(pf_hessian_extremes(&w, theta, &full, 0, 0.0, NULL, &x, &err), PF_OK);

    for (int size = 2; size <= MAX_RANKS; size++) {
        rank_job jobs[MAX_RANKS], again[MAX_RANKS];
        fake_world world = {0}, world2 = {0};
        run_ranks(jobs, &world, size, &a, theta, v, &full, sparse);
        run_ranks(again, &world2, size, &a, theta, v, &full, sparse);
        assert_true(world.calls > 0);
        for (int k = 0; k < size; k++) {
            assert_int_equal(jobs[k].rc, PF_OK);
            assert_true(close_to(jobs[k].loss, loss));
            assert_true(rel_diff(jobs[k].grad, grad, np) <= 1e-6);
            assert_true(rel_diff(jobs[k].hv, hv, np) <= 1e-6);
            assert_true(close_to(jobs[k].hv_loss, loss));
            assert_true(close_to(jobs[k].eval_loss, e.loss));
            assert_true(jobs[k].accuracy == e.accuracy);   /* counts are exact */
            assert_int_equal(jobs[k].eval_n, N);
            assert_true(close_to(jobs[k].lo, x.min_E));
            assert_true(close_to(jobs[k].hi, x.max_E));
            /* every rank has the same bits, and so has a rerun */
            assert_memory_equal(jobs[k].grad, jobs[0].grad, np * sizeof(float));
            assert_memory_equal(jobs[k].hv, jobs[0].hv, np * sizeof(float));
            assert_true(jobs[k].lo == jobs[0].lo && jobs[k].hi == jobs[0].hi);
            assert_memory_equal(again[k].hv, jobs[k].hv, np * sizeof(float));
            assert_memory_equal(again[k].grad, jobs[k].grad, np * sizeof(float));
            assert_true(again[k].lo == jobs[k].lo && again[k].loss == jobs[k].loss);
        }
        free_jobs(jobs, size);
        free_jobs(again, size);
    }
    pf_work_free(&w);
    free(grad), free(hv), free(v), free(theta);
    pf_dataset_free(&full);
}

static void test_dense_shards_agree(void **state)
{
    (void)state;
    shards_agree(0);
}

static void test_sparse_shards_agree(void **state)
{
    (void)state;
    shards_agree(1);
}

/* A context whose reducer was set and removed, or never set, runs as no
 * context does: the same bits. */
static void test_no_reducer_is_unchanged(void **state)
{
    (void)state;
    pf_arch a;
    float *theta;
    make_model(&a, &theta);
    pf_dataset d;
    make_data(&d, 0, 5);
    size_t np = a.n_params;
    pf_error err;
    pf_ctx *ctx;
    assert_int_equal(pf_ctx_create(&ctx, 1, &err), PF_OK);
    fake_world world = {.size = 1};
    fake_rank self = {&world, 0};
    pthread_barrier_init(&world.barrier, NULL, 1);
    assert_int_equal(pf_ctx_set_reducer(ctx, fake_sum, &self, 0, 1, &err), PF_OK);
    assert_int_equal(pf_ctx_set_reducer(ctx, NULL, NULL, 0, 0, &err), PF_OK);
    assert_int_equal(pf_ctx_ranks(ctx), 1);
    pf_work w0, w1;
    assert_int_equal(pf_work_init(&w0, NULL, &a, 32, &err), PF_OK);
    assert_int_equal(pf_work_init(&w1, ctx, &a, 32, &err), PF_OK);
    float *g0 = malloc(np * sizeof(float)), *g1 = malloc(np * sizeof(float));
    double l0 = pf_full_gradient(&w0, theta, &d, g0), l1 = pf_full_gradient(&w1, theta, &d, g1);
    assert_true(l0 == l1);
    assert_memory_equal(g0, g1, np * sizeof(float));
    assert_int_equal(world.calls, 0);
    /* a reducer over one process: the same numbers through it */
    assert_int_equal(pf_ctx_set_reducer(ctx, fake_sum, &self, 0, 1, &err), PF_OK);
    assert_true(pf_full_gradient(&w1, theta, &d, g1) == l0);
    assert_memory_equal(g0, g1, np * sizeof(float));
    assert_true(world.calls > 0);
    /* and a failing one fails the calls that use it */
    world.fail = 1;
    assert_true(isnan(pf_full_gradient(&w1, theta, &d, g1)));
    assert_int_equal(pf_hvp(&w1, theta, &d, 0, 0.0, theta, g1, &err), PF_ERUNTIME);
    pf_eval e;
    assert_int_equal(pf_evaluate(&w1, theta, &d, &e, &err), PF_ERUNTIME);
    assert_int_equal(pf_ctx_set_reducer(ctx, fake_sum, &self, 1, 1, &err), PF_EINPUT);
    pthread_barrier_destroy(&world.barrier);
    pf_work_free(&w0);
    pf_work_free(&w1);
    pf_ctx_free(ctx);
    free(g0), free(g1), free(theta);
    pf_dataset_free(&d);
}

/* Shares are contiguous, in rank order, cover every row once, and keep
 * the first n_keep rows only when asked. */
static void test_shard_blocks(void **state)
{
    (void)state;
    pf_dataset full;
    make_data(&full, 0, 9);
    pf_error err;
    int idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    for (size_t keep = 0; keep <= 100; keep += 100) {
        size_t rows = keep ? keep : N, next = 0;
        for (int r = 0; r < 3; r++) {
            pf_dataset d;
            assert_int_equal(pf_dataset_subset(&d, &full, idx, N, &err), PF_OK);
            assert_int_equal(pf_dataset_shard(&d, keep, r, 3, &err), PF_OK);
            assert_int_equal(d.n, rows * (size_t)(r + 1) / 3 - rows * (size_t)r / 3);
            assert_memory_equal(d.x, full.x + next * DIM, d.n * DIM * sizeof(float));
            assert_memory_equal(d.labels, full.labels + next, d.n * sizeof(int));
            next += d.n;
            pf_dataset_free(&d);
        }
        assert_int_equal(next, rows);
    }
    pf_dataset d;
    assert_int_equal(pf_dataset_subset(&d, &full, idx, 2, &err), PF_OK);
    assert_int_equal(pf_dataset_shard(&d, 0, 0, 3, &err), PF_EINPUT);   /* an empty share */
    assert_int_equal(pf_dataset_shard(&d, 0, 3, 3, &err), PF_EINPUT);
    pf_dataset_free(&d);
    pf_dataset_free(&full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_shards_agree),
        cmocka_unit_test(test_sparse_shards_agree),
        cmocka_unit_test(test_no_reducer_is_unchanged),
        cmocka_unit_test(test_shard_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
