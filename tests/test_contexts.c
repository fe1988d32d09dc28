/* Contexts share nothing: two sweeps run at once in one process, each on a
 * thread of its own with its own context, give what two separate processes
 * of the tool give, bit for bit (the tables up to wall time, and the final
 * checkpoints). The two differ in everything a shared state could mix up:
 * seed, optimizer and its kept buffers, team size. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pathfinder/run.h"
#include "tool.h"

#define GRID "0:0.004:0.001"

typedef struct {
    const char *name;
    int threads;
    uint64_t seed;
    pf_opt_kind optimizer;
    int keep_optimizer;
    const char *cli;       /* the same sweep as tool options */
    char dir[400];
    int rc;
    pf_error err;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    pf_sweep_config c;
    pf_sweep_config_default(&c);
    c.data.train_subset = 600;
    c.model.seed = j->seed;
    pf_train_config_default(&c.protocol, j->optimizer);
    c.protocol.max_epochs = 2;
    c.protocol.reset_optimizer = !j->keep_optimizer;
    c.grid = GRID;
    c.analysis.refine = 0;
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    j->rc = pf_ctx_create(&ctx, j->threads, &j->err);
    if (!j->rc) j->rc = pf_run_sweep(ctx, j->dir, &c, &report, &j->err);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return NULL;
}

/* dir/sweep.csv without its seconds column. */
static char *table_of(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    char *t = slurp(path);
    if (!t) fail_msg("%s is missing", path);
    strip_seconds(t);
    return t;
}

static void test_two_sweeps_in_one_process(void **state)
{
    (void)state;
    job jobs[2] = {
        {"adam", 2, 1, PF_OPT_ADAM, 0, "--seed 1 --threads 2", "", 0, {0}},
        {"sgd", 1, 7, PF_OPT_SGD, 1, "--seed 7 --threads 1 --optimizer sgd --keep-optimizer", "", 0, {0}},
    };
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        snprintf(jobs[i].dir, sizeof jobs[i].dir, "%s/%s-threads", tmpdir, jobs[i].name);
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        if (jobs[i].rc) fail_msg("%s: %s", jobs[i].name, jobs[i].err.msg);

    for (int i = 0; i < 2; i++) {
        char dir[400];
        snprintf(dir, sizeof dir, "%s/%s-process", tmpdir, jobs[i].name);
        assert_int_equal(shell("%s sweep --beta " GRID " --train-subset 600 --max-epochs 2 --no-refine "
                               "--quiet %s --out %s > /dev/null", tool, jobs[i].cli, dir), 0);
        char *a = table_of(jobs[i].dir), *b = table_of(dir);
        if (strcmp(a, b) != 0) fail_msg("%s: the sweep run on a thread differs from the process's", jobs[i].name);
        assert_true(count_lines(a) == 6);   /* header and 5 points */
        free(a), free(b);
        /* the last point's checkpoint (kept), byte for byte */
        assert_int_equal(shell("cmp -s %s/checkpoints/p00004.safetensors %s/checkpoints/p00004.safetensors",
                               jobs[i].dir, dir), 0);
    }
    /* and the two sweeps are not the same sweep */
    char *a = table_of(jobs[0].dir), *b = table_of(jobs[1].dir);
    assert_true(strcmp(a, b) != 0);
    free(a), free(b);
}

static int setup(void **state)
{
    (void)state;
    return tool_setup("contexts");
}

static int teardown(void **state)
{
    (void)state;
    return tool_teardown();
}

int main(int argc, char **argv)
{
    (void)argc;
    tool_same_kernels(argv);   /* the tool's kernels, for the bitwise comparison */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sweeps_in_one_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
