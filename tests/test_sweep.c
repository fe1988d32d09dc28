/* Sweeps: grids, the run-folder files, transition detection on synthetic
 * curves whose answer is known, and the sweep command end to end with
 * crashes at random moments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"


static void test_grid_parse(void **state)
{
    (void)state;
    pf_error err;
    double *b;
    long n;
    assert_int_equal(pf_grid_parse("0:0.09:0.0002", &b, &n, &err), PF_OK);
    assert_int_equal(n, 451);
    assert_true(b[0] == 0.0);
    assert_true(fabs(b[450] - 0.09) < 1e-15);
    assert_true(fabs(b[123] - 123 * 0.0002) < 1e-15);
    free(b);
    assert_int_equal(pf_grid_parse("0.3,0.1,0.2,0.1", &b, &n, &err), PF_OK);
    assert_int_equal(n, 3);
    assert_true(b[0] == 0.1 && b[2] == 0.3);
    free(b);
    assert_int_equal(pf_grid_parse("geom:1e-4:1e-1:4", &b, &n, &err), PF_OK);
    assert_int_equal(n, 4);
    assert_true(fabs(b[1] - 1e-3) < 1e-15 && b[3] == 1e-1);
    free(b);
    /* parts joined by commas: values and ranges, merged */
    assert_int_equal(pf_grid_parse("0,0.5:1.5:0.5,geom:1e-3:1e-1:3,1", &b, &n, &err), PF_OK);
    assert_int_equal(n, 7); /* 1 twice, once */
    assert_true(b[0] == 0.0 && fabs(b[1] - 1e-3) < 1e-15 && fabs(b[2] - 1e-2) < 1e-15 && b[3] == 0.1 &&
                b[4] == 0.5 && b[5] == 1.0 && b[6] == 1.5);
    free(b);
    const char *bad[] = {"", "a", "0:1", "0:1:0", "1:0:0.1", "geom:0:1:5", "geom:1:2:1", "-1,2",
                         "0,,1", "0:1:-1", "geom:1e-3:1e-1:2.5", "nan", "0,0:1", "0.1,", "geom:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pf_grid_parse(bad[i], &b, &n, &err) != PF_EINPUT) fail_msg("grid '%s' accepted", bad[i]);
    pf_grid_point *p;
    double v[3] = {0, 1, 2};
    assert_int_equal(pf_grid_expand(v, 3, "loop", &p, &n, &err), PF_OK);
    assert_int_equal(n, 5);
    assert_true(p[2].beta == 2 && p[2].direction == 1 && p[3].beta == 1 && p[3].direction == -1);
    free(p);
    assert_int_equal(pf_grid_expand(v, 3, "down", &p, &n, &err), PF_OK);
    assert_true(p[0].beta == 2 && p[0].direction == -1);
    free(p);
    assert_int_equal(pf_grid_expand(v, 3, "sideways", &p, &n, &err), PF_EINPUT);
}

/* A synthetic sweep: r falls as a power law from 90 at small beta (like the
 * real curves, fast at first), E rises smoothly, with steps down in r and up
 * in E at the given betas, and multiplicative noise. */
typedef struct {
    long n;
    double beta[500], r[500], loss[500], reg[500], acc[500];
} synth;

static double gauss(pf_rng *rng)
{
    double u = pf_rng_uniform(rng) + 1e-300, v = pf_rng_uniform(rng);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static void make_synth(synth *s, const double *steps, int n_steps, double noise, uint64_t seed)
{
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    s->n = 451;
    for (long i = 0; i < s->n; i++) {
        double b = i * 0.0002;
        s->beta[i] = b;
        double r = 90.0 / sqrt(1.0 + b / 2e-5), e = 0.01 + 3.0 * b, acc = 97.0 - 100 * b;
        for (int k = 0; k < n_steps; k++)
            if (b > steps[k]) r *= 0.9, e *= 1.15, acc -= 8;
        r *= 1 + noise * gauss(&rng);
        e *= 1 + noise * gauss(&rng);
        s->r[i] = r;
        s->loss[i] = e;
        s->reg[i] = e + 0.5 * b * r * r;
        s->acc[i] = acc + 50 * noise * gauss(&rng);
    }
}

static long detect(const synth *s, pf_transition **t)
{
    pf_curve c = {s->n, s->beta, s->r, s->loss, s->reg, s->acc};
    pf_detect_config cfg;
    pf_detect_config_default(&cfg);
    long n;
    pf_error err;
    assert_int_equal(pf_detect_transitions(&c, &cfg, t, &n, &err), PF_OK);
    return n;
}

static void test_detect_known_steps(void **state)
{
    (void)state;
    const double steps[] = {0.0251, 0.0373, 0.0590, 0.0743, 0.0846};
    const double noises[] = {0.0, 0.002, 0.004};
    for (int k = 0; k < 3; k++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            synth s;
            make_synth(&s, steps, 5, noises[k], seed);
            pf_transition *t;
            long n = detect(&s, &t);
            if (n != 5) fail_msg("noise %g seed %llu: found %ld transitions, expected 5", noises[k],
                                 (unsigned long long)seed, n);
            for (int i = 0; i < 5; i++) {
                assert_true(t[i].beta_below < steps[i] && t[i].beta_above > steps[i]);
                assert_true(t[i].r_above < t[i].r_below);
                assert_true(t[i].major);
            }
            free(t);
        }
}

static void test_detect_smooth_curves(void **state)
{
    (void)state;
    const double noises[] = {0.0, 0.002, 0.004};
    for (int k = 0; k < 3; k++)
        for (uint64_t seed = 1; seed <= 5; seed++) {
            synth s;
            make_synth(&s, NULL, 0, noises[k], seed);
            pf_transition *t;
            long n = detect(&s, &t);
            if (n != 0)
                fail_msg("noise %g seed %llu: smooth curve gave %ld transitions (first at %g)",
                         noises[k], (unsigned long long)seed, n, t[0].beta_below);
        }
}

/* The detector must not react to a step up in r (not a transition of an
 * up-sweep's kind) nor to a lone outlier point. */
static void test_detect_rejects_outliers(void **state)
{
    (void)state;
    synth s;
    make_synth(&s, NULL, 0, 0.001, 9);
    s.r[200] *= 0.9; /* one bad point, then back on the trend */
    s.loss[200] *= 1.2;
    pf_transition *t;
    assert_int_equal(detect(&s, &t), 0);
}

/* Two plateaus split at one transition. Class 0 is held everywhere, class
 * 1 until the transition, class 2 flickers (0% and 90% in turn: mean 45 on
 * the first plateau, 60 on the second), class 3 is held on the first
 * plateau except at one point in five. */
static void test_phases_flickering_classes(void **state)
{
    (void)state;
    enum { N = 20, K = 4 };
    double beta[N], acc[N], loss[N], r[N], cls[N * K];
    for (int i = 0; i < N; i++) {
        beta[i] = 0.001 * i;
        acc[i] = 50.0;
        loss[i] = 1.0;
        r[i] = 5.0;
        double *c = cls + i * K;
        c[0] = 99.0;
        c[1] = i < 10 ? 98.0 : 2.0;
        c[2] = i < 10 ? (i % 2 ? 90.0 : 0.0) : (i % 5 < 3 ? 90.0 : 15.0);
        c[3] = i < 10 ? (i % 5 == 4 ? 10.0 : 95.0) : 0.0;
    }
    pf_transition t;
    memset(&t, 0, sizeof t);
    t.below = 9;
    t.above = 10;
    pf_phase *ph;
    pf_error err;
    pf_encoding enc;
    pf_encoding_default(&enc);
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, &enc, PF_LOSS_CE, &ph, &err), PF_OK);
    char a[64], b[64], pa[64], pb[64];
    pf_set_str(ph[0].encoded, K, a, sizeof a);
    pf_set_str(ph[1].encoded, K, b, sizeof b);
    pf_set_str(ph[0].partial, K, pa, sizeof pa);
    pf_set_str(ph[1].partial, K, pb, sizeof pb);
    assert_string_equal(a, "{0,1,3}"); /* class 3: above 50 on 8 of 10 points */
    assert_string_equal(b, "{0}");     /* class 2: mean 60 but above 50 on 6 of 10 only */
    assert_string_equal(pa, "{2}");
    assert_string_equal(pb, "{2}");
    assert_true(fabs(ph[1].class_mean[2] - 60.0) < 1e-9 && fabs(ph[1].class_above[2] - 0.6) < 1e-9);
    free(ph);
    /* the mean alone (fraction 0) takes the flickering class in */
    enc.fraction = 0.0;
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, &enc, PF_LOSS_CE, &ph, &err), PF_OK);
    pf_set_str(ph[1].encoded, K, b, sizeof b);
    assert_string_equal(b, "{0,2}");
    free(ph);
    enc.fraction = 1.5;
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, &enc, PF_LOSS_CE, &ph, &err), PF_EINPUT);
}

static void test_csv_roundtrip(void **state)
{
    (void)state;
    char path[512];
    pf_error err;
    pf_point_result rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].index = i;
        rows[i].point.beta = 0.1 * i + 1.0 / 3;
        rows[i].point.direction = i == 2 ? -1 : 1;
        rows[i].m.train.loss = M_PI * i;
        rows[i].m.reg_loss = exp(1.0) * i;
        rows[i].m.test.loss = 1.0 / 7 + i;
        rows[i].m.test.accuracy = 97.12345678901234;
        rows[i].m.test.n_classes = 3;
        for (int k = 0; k < 3; k++) rows[i].m.test.class_accuracy[k] = 10.0 * k + i / 3.0;
        rows[i].m.r = 90.0 / (i + 1);
        rows[i].epochs = 5 + i;
    }
    snprintf(path, sizeof path, "%s/t.csv", tmpdir);
    assert_int_equal(pf_sweep_csv_write(path, rows, 3, &err), PF_OK);
    pf_point_result *back;
    long n;
    assert_int_equal(pf_sweep_csv_read(path, &back, &n, &err), PF_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(back[i].point.beta == rows[i].point.beta);
        assert_true(back[i].m.r == rows[i].m.r);
        assert_true(back[i].m.test.class_accuracy[2] == rows[i].m.test.class_accuracy[2]);
        assert_int_equal(back[i].point.direction, rows[i].point.direction);
    }
    free(back);
    FILE *f = fopen(path, "a");
    fputs("0.5,1,2\n", f);
    fclose(f);
    assert_int_equal(pf_sweep_csv_read(path, &back, &n, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
}

/* Drop the seconds column (wall time) so tables can be compared. */
static void strip_seconds(char *csv)
{
    int col = -1, k = 0;
    char *p = csv;
    for (char *q = csv; *q && *q != '\n'; q++) {
        if (q == csv || q[-1] == ',') {
            if (strncmp(q, "seconds,", 8) == 0) col = k;
            k++;
        }
    }
    assert_true(col >= 0);
    char *out = csv;
    int c = 0;
    for (p = csv; *p; p++) {
        if (*p == '\n') c = -1;
        if (c != col) *out++ = *p;
        if (*p == ',' || *p == '\n') c++;
    }
    *out = '\0';
}

/* kill -9 at random points of the work, rerun the same command each time:
 * the final table equals an uninterrupted run's (up to wall time), with no
 * row lost or duplicated, and every table left by a kill is whole. Each
 * option set covers an optimizer's state: Adam's moments, SGD's momentum
 * buffer (kept across betas with --keep-optimizer), L-BFGS. */
static void check_resume(const char *name, const char *opts)
{
    char args[1024], clean[600], crash[600];
    snprintf(args, sizeof args, "--beta 0:0.006:0.0005 --train-subset 1000 --threads 2 --quiet "
             "--no-refine %s", opts);
    snprintf(clean, sizeof clean, "%s/%s-clean", tmpdir, name);
    snprintf(crash, sizeof crash, "%s/%s-crash", tmpdir, name);
    assert_int_equal(shell("%s sweep %s --out %s >/dev/null", tool, args, clean), 0);
    char csv[700], ca_path[700];
    snprintf(csv, sizeof csv, "%s/sweep.csv", crash);
    snprintf(ca_path, sizeof ca_path, "%s/sweep.csv", clean);
    pf_point_result *rows;
    long n_clean, n;
    pf_error err;
    assert_int_equal(pf_sweep_csv_read(ca_path, &rows, &n_clean, &err), PF_OK);
    free(rows);
    int finished = 0, kills = 0;
    for (int attempt = 0; attempt < 20 && !finished && kills < 6; attempt++) {
        /* a random number of points into this run, then a random part of one */
        int got = run_and_kill_after(csv, 1 + rand() % 3, "sweep %s --out %s", args, crash);
        assert_true(got >= 0);
        finished = got == 1;
        if (got != 0) continue;
        kills++;
        if (access(csv, F_OK) == 0) {
            assert_int_equal(pf_sweep_csv_read(csv, &rows, &n, &err), PF_OK);
            for (long i = 0; i < n; i++) assert_int_equal(rows[i].index, i);
            free(rows);
        }
    }
    print_message("%s: killed %d times before it completed\n", name, kills);
    assert_true(kills >= 2);
    if (!finished) assert_int_equal(shell("%s sweep %s --out %s >/dev/null", tool, args, crash), 0);
    char *ca = slurp(ca_path), *cb = slurp(csv);
    assert_non_null(ca);
    assert_non_null(cb);
    strip_seconds(ca);
    strip_seconds(cb);
    if (strcmp(ca, cb) != 0) fail_msg("%s: the resumed table differs from the uninterrupted one", name);
    free(ca);
    free(cb);
}

static void test_resume_after_kill(void **state)
{
    (void)state;
    srand((unsigned)time(NULL));
    check_resume("adam", "--max-epochs 3");
    check_resume("adam-keep", "--max-epochs 3 --keep-optimizer");
    check_resume("sgd-keep", "--optimizer sgd --lr 0.05 --max-epochs 3 --keep-optimizer");
    check_resume("sgd-plain", "--optimizer sgd --lr 0.05 --momentum 0 --max-epochs 3 --keep-optimizer");
    check_resume("sgd-reset", "--optimizer sgd --lr 0.05 --max-epochs 3");
    check_resume("lbfgs", "--optimizer lbfgs --max-epochs 15");
}

/* Malformed folders and arguments: clear errors, exit 2, nothing damaged. */
static void test_bad_folders_and_args(void **state)
{
    (void)state;
    const char *base = "--beta 0,0.001 --train-subset 500 --max-epochs 1 --quiet --no-refine";
    assert_int_equal(shell("%s sweep %s --out %s/ok >/dev/null", tool, base, tmpdir), 0);
    /* same folder, other settings */
    assert_int_equal(shell("%s sweep --beta 0,0.002 --train-subset 500 --max-epochs 1 --quiet "
                             "--out %s/ok 2>/dev/null", tool, tmpdir), 2);
    /* corrupted state */
    assert_int_equal(shell("printf garbage > %s/ok/state.bin", tmpdir), 0);
    assert_int_equal(shell("%s sweep %s --out %s/ok 2>/dev/null", tool, base, tmpdir), 2);
    /* a file where the folder should be */
    assert_int_equal(shell("touch %s/afile", tmpdir), 0);
    assert_int_equal(shell("%s sweep %s --out %s/afile 2>/dev/null", tool, base, tmpdir), 2);
    assert_int_equal(shell("%s sweep --beta 0:1 --out %s/x 2>/dev/null", tool, tmpdir), 2);
    assert_int_equal(shell("%s sweep --direction sideways --out %s/x 2>/dev/null", tool, tmpdir), 2);
    assert_int_equal(shell("%s sweep --beta 0,1 2>/dev/null", tool), 2);
    assert_int_equal(shell("%s sweep --help >/dev/null", tool), 0);
}

/* A small real sweep end to end: every output is there and readable, and
 * the analysis commands work on the folder it leaves. */
static void test_small_real_sweep(void **state)
{
    (void)state;
    char dir[400], path[600];
    snprintf(dir, sizeof dir, "%s/real", tmpdir);
    assert_int_equal(shell("%s sweep --beta 0:0.09:0.006 --train-subset 3000 --max-epochs 4 "
                             "--threads 1 --quiet --refine-tol 1e-3 --out %s > %s/out.txt",
                             tool, dir, tmpdir), 0);
    snprintf(path, sizeof path, "%s/out.txt", tmpdir);
    char *out = slurp(path);
    assert_non_null(out);
    assert_non_null(strstr(out, "Transitions"));
    assert_non_null(strstr(out, "Hierarchy"));
    assert_non_null(strstr(out, "phase_diagram_up.png"));
    free(out);
    const char *files[] = {"sweep.csv", "config.json", "transitions.json", "phases.json",
                           "figures/phase_diagram_up.png", "figures/phase_diagram_up.pdf",
                           "figures/class_accuracy_up.svg", "figures/hierarchy.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        struct stat st;
        if (stat(path, &st) != 0 || st.st_size == 0) fail_msg("missing output %s", path);
    }
    pf_point_result *rows;
    long n;
    pf_error err;
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    assert_int_equal(pf_sweep_csv_read(path, &rows, &n, &err), PF_OK);
    assert_int_equal(n, 16);
    /* the regularized loss is E + beta/2 r^2 in every row */
    for (long i = 0; i < n; i++)
        assert_true(fabs(rows[i].m.reg_loss - rows[i].m.train.loss -
                         0.5 * rows[i].point.beta * rows[i].m.r * rows[i].m.r) < 1e-9);
    free(rows);
    /* the analysis commands reproduce and merge */
    assert_int_equal(shell("%s transitions %s > /dev/null", tool, dir), 0);
    assert_int_equal(shell("%s hierarchy %s %s --out %s/merged > /dev/null", tool, dir, dir, tmpdir), 0);
    snprintf(path, sizeof path, "%s/merged/phases.json", tmpdir);
    char *ph = slurp(path);
    assert_non_null(ph);
    assert_non_null(strstr(ph, "\"hierarchy\""));
    free(ph);
    /* malformed folders */
    assert_int_equal(shell("%s transitions %s/nothing-here 2>/dev/null", tool, tmpdir), 2);
    assert_int_equal(shell("mkdir -p %s/junk && printf 'a,b\\n1,2\\n' > %s/junk/sweep.csv", tmpdir, tmpdir), 0);
    assert_int_equal(shell("%s transitions %s/junk 2>/dev/null", tool, tmpdir), 2);
    assert_int_equal(shell("%s hierarchy 2>/dev/null", tool), 2);
}

static int setup(void **state)
{
    (void)state;
    return tool_setup("sweep");
}

static int teardown(void **state)
{
    (void)state;
    return tool_teardown();
}

/* The value of a number field in a one-line JSON text. */
static double json_field(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* sweep --hessian: every row carries the extremes of H_E and H_L, and they
 * are the ones `pathfinder hessian` finds at that row's checkpoint on the
 * same samples (a separate entry point, the beta read from the checkpoint);
 * the table reads back with them and a rerun leaves them alone. */
static void test_sweep_hessian_columns(void **state)
{
    (void)state;
    char dir[400], path[600];
    snprintf(dir, sizeof dir, "%s/hess", tmpdir);
    const char *cmd = "%s sweep --beta 0:0.02:0.01 --train-subset 1000 --max-epochs 2 --threads 1 "
                      "--quiet --no-refine --keep-checkpoints --hessian 300 --out %s > /dev/null";
    assert_int_equal(shell(cmd, tool, dir), 0);
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    char *text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, ",lambda_min_E,lambda_max_E,lambda_min_L,lambda_max_L,hessian_converged\n"));
    free(text);
    pf_point_result *rows;
    long n;
    pf_error err;
    assert_int_equal(pf_sweep_csv_read(path, &rows, &n, &err), PF_OK);
    assert_int_equal(n, 3);
    for (long i = 0; i < n; i++) {
        assert_true(rows[i].has_hessian);
        assert_true(rows[i].lambda_max_E > 0.0);
        assert_true(rows[i].lambda_min_E < rows[i].lambda_max_E);
        char out[700];
        snprintf(out, sizeof out, "%s/h%ld.json", tmpdir, i);
        assert_int_equal(shell("%s hessian %s/checkpoints/p%05ld.safetensors --train-subset 1000 --subset 300 "
                               "--k 1 --json --quiet > %s", tool, dir, i, out), 0);
        char *h = slurp(out);
        assert_non_null(h);
        double scale = fabs(json_field(h, "lambda_max_E"));
        double d[4] = {json_field(h, "lambda_min_E") - rows[i].lambda_min_E,
                       json_field(h, "lambda_max_E") - rows[i].lambda_max_E,
                       json_field(h, "lambda_min_L") - (rows[i].lambda_min_E + rows[i].point.beta),
                       json_field(h, "lambda_max_L") - (rows[i].lambda_max_E + rows[i].point.beta)};
        for (int k = 0; k < 4; k++)
            if (!(fabs(d[k]) <= 1e-3 * scale))
                fail_msg("row %ld: the sweep's Hessian column %d differs from `hessian` by %g", i, k, d[k]);
        free(h);
    }
    free(rows);
    assert_int_equal(shell(cmd, tool, dir), 0);
    assert_int_equal(pf_sweep_csv_read(path, &rows, &n, &err), PF_OK);
    assert_int_equal(n, 3);
    assert_true(rows[2].has_hessian);
    free(rows);
    assert_int_equal(shell("%s sweep --hessian -3 --out %s/x 2>/dev/null", tool, tmpdir), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_parse),
        cmocka_unit_test(test_detect_known_steps),
        cmocka_unit_test(test_detect_smooth_curves),
        cmocka_unit_test(test_detect_rejects_outliers),
        cmocka_unit_test(test_phases_flickering_classes),
        cmocka_unit_test(test_csv_roundtrip),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_bad_folders_and_args),
        cmocka_unit_test(test_small_real_sweep),
        cmocka_unit_test(test_sweep_hessian_columns),
    };
    return cmocka_run_group_tests_name("sweep", tests, setup, teardown);
}
