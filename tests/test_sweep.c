/* Sweeps: grids, the run-folder files, transition detection on synthetic
 * curves whose answer is known, and the sweep command end to end with
 * crashes at random moments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <cJSON.h>
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
#include "exp/results.h"
#include "pathfinder/io.h"
#include "run/tables.h"


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
    /* more points than any sweep trains: refused at once, with the limit */
    const char *huge[] = {"0:110100:.0112", "geom:1:2:2000000", "0:0.5:1e-6,0.6:1.1:1e-6"};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        if (pf_grid_parse(huge[i], &b, &n, &err) != PF_EINPUT) fail_msg("grid '%s' accepted", huge[i]);
        assert_non_null(strstr(err.msg, "more than 1000000 points"));
    }
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
    pf_curve c = {s->n, s->beta, s->r, s->loss, s->reg, s->acc, 0.0};
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
/* The collapse into the trivial phase, as the demo's sweep met it: E
 * enters the band around ln 10 at one gap and stays, while r relaxes over
 * three points after it and then scatters around 0.07. The trend fits
 * cannot score that gap; the collapse rule finds it, and only with ln K. */
static void test_detect_collapse_to_trivial(void **state)
{
    (void)state;
    enum { N = 60, AT = 45 };
    double beta[N], r[N], loss[N], reg[N], acc[N];
    static const double after[] = {0.954, 0.208, 0.086, 0.060, 0.068, 0.097, 0.055, 0.109, 0.063, 0.081,
                                   0.111, 0.072, 0.090, 0.058, 0.101};
    pf_rng rng;
    pf_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        beta[i] = 0.06 + 0.0005 * i;
        if (i < AT) {
            r[i] = 3.5 * pow(beta[i] / 0.06, -1.2) * (1 + 0.01 * gauss(&rng));
            loss[i] = 1.9 + 5.0 * (beta[i] - 0.06) + 0.01 * gauss(&rng);
            acc[i] = 35 + 3 * gauss(&rng);
        } else {
            r[i] = after[i - AT];
            loss[i] = 2.3026 - 0.004 + 0.006 * gauss(&rng) * 0.5;
            acc[i] = 10 + 0.5 * gauss(&rng);
        }
        reg[i] = loss[i] + 0.5 * beta[i] * r[i] * r[i];
    }
    pf_detect_config cfg;
    pf_detect_config_default(&cfg);
    pf_error err;
    pf_transition *t;
    long n;
    pf_curve plain = {N, beta, r, loss, reg, acc, 0.0};
    assert_int_equal(pf_detect_transitions(&plain, &cfg, &t, &n, &err), PF_OK);
    for (long k = 0; k < n; k++)
        if (t[k].below == AT - 1) fail_msg("the trend fits alone found the collapse: the case tests nothing");
    free(t);
    pf_curve with = plain;
    with.trivial_loss = log(10.0);
    assert_int_equal(pf_detect_transitions(&with, &cfg, &t, &n, &err), PF_OK);
    long hits = 0;
    for (long k = 0; k < n; k++)
        if (t[k].below == AT - 1) {
            hits++;
            assert_true(t[k].jump_r < -0.5 && t[k].jump_loss > 0);
            assert_true(t[k].beta_below < t[k].beta_above);
        }
    assert_int_equal(hits, 1);
    free(t);
    /* E creeping into the band with r falling smoothly is no collapse */
    for (int i = 0; i < N; i++) {
        r[i] = 3.5 * pow(beta[i] / 0.06, -1.2);
        loss[i] = 2.2 + 0.1 * i / (N - 1.0);
    }
    assert_int_equal(pf_detect_transitions(&with, &cfg, &t, &n, &err), PF_OK);
    assert_int_equal(n, 0);
    free(t);
}

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
    long nph;
    pf_error err;
    pf_encoding enc;
    pf_encoding_default(&enc);
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, NULL, 0, &enc, PF_LOSS_CE, &ph,
                               &nph, &err), PF_OK);
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
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, NULL, 0, &enc, PF_LOSS_CE, &ph,
                               &nph, &err), PF_OK);
    pf_set_str(ph[1].encoded, K, b, sizeof b);
    assert_string_equal(b, "{0,2}");
    free(ph);
    enc.fraction = 1.5;
    assert_int_equal(pf_phases(beta, acc, loss, r, cls, N, K, &t, 1, NULL, 0, &enc, PF_LOSS_CE, &ph,
                               &nph, &err), PF_EINPUT);
}

/* Grid gaps (pf_detect_gaps): the usual grids, linear from 0, linear from
 * one step, geometric (fine or coarse), with a finer stretch, have none; a
 * point cut off by a step much wider than its neighbours' is one. */
static void test_grid_gaps(void **state)
{
    (void)state;
    pf_detect_config cfg;
    pf_detect_config_default(&cfg);
    pf_error err;
    const char *none[] = {"0:0.09:0.0002", "0.0002:0.09:0.0002", "geom:1e-4:1e-1:20",
                          "geom:1e-5:1e-1:17", "0.02:0.09:0.002,0.074:0.076:0.0001", "0,0.001"};
    for (size_t g = 0; g < sizeof none / sizeof *none; g++) {
        double *b;
        long n, *gaps, ng;
        assert_int_equal(pf_grid_parse(none[g], &b, &n, &err), PF_OK);
        assert_int_equal(pf_detect_gaps(b, n, &cfg, &gaps, &ng, &err), PF_OK);
        if (ng != 0) fail_msg("grid '%s': %ld gaps, the first below beta %g", none[g], ng, b[gaps[0]]);
        assert_null(gaps);
        free(b);
    }
    static const struct {
        const char *grid;
        long n_gaps, first;   /* how many, and the index below the first */
    } some[] = {
        {"0,0.02:0.09:0.0005", 1, 0},              /* beta = 0 alone before a fine grid */
        {"0.001,0.02:0.09:0.0005", 1, 0},
        {"0.01:0.02:0.001,0.05:0.06:0.001", 1, 10},
        {"0,0.01,0.02:0.09:0.0005", 2, 0},         /* 0 and 0.01 each alone */
        {"0.02:0.09:0.0005,0.2", 1, 140},          /* at the top end too */
    };
    for (size_t g = 0; g < sizeof some / sizeof *some; g++) {
        double *b;
        long n, *gaps, ng;
        assert_int_equal(pf_grid_parse(some[g].grid, &b, &n, &err), PF_OK);
        assert_int_equal(pf_detect_gaps(b, n, &cfg, &gaps, &ng, &err), PF_OK);
        if (ng != some[g].n_gaps || gaps[0] != some[g].first)
            fail_msg("grid '%s': %ld gaps (first below index %ld), expected %ld (%ld)", some[g].grid,
                     ng, ng ? gaps[0] : -1, some[g].n_gaps, some[g].first);
        free(gaps);
        free(b);
    }
    /* factor 0: never */
    double b2[4] = {0, 0.02, 0.0205, 0.021};
    long *gaps, ng;
    cfg.gap_factor = 0;
    assert_int_equal(pf_detect_gaps(b2, 4, &cfg, &gaps, &ng, &err), PF_OK);
    assert_int_equal(ng, 0);
    cfg.gap_factor = 8;
    b2[2] = 0.02;
    assert_int_equal(pf_detect_gaps(b2, 4, &cfg, &gaps, &ng, &err), PF_EINPUT);
}

/* A sweep shaped like a demo run: beta = 0, then 0.02 to 0.09 in steps of
 * 0.0005, transitions at 0.0373, 0.0591, 0.0743 and 0.0846 (r steps down
 * by 10%, by 90% into the trivial phase). beta = 0 holds all ten classes
 * at 97%; then {0,1,2,3,4,6,7}, {0,1,7}, {0}; then a
 * plateau (train loss 2.08, not ln 10) where classes 0 and 7 are above 50%
 * on two points in five only (partial, not encoded): unresolved; then the
 * trivial phase (loss ln 10, one class at 100%). */
enum { DEMO_N = 142, DEMO_K = 10, DEMO_STEPS = 4 };
static const double demo_steps[DEMO_STEPS] = {0.0373, 0.0591, 0.0743, 0.0846};

static void make_demo_like(pf_point_result *rows, uint64_t seed)
{
    static const char *const held[DEMO_STEPS] = {"0123467", "017", "0", ""};
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    memset(rows, 0, DEMO_N * sizeof *rows);
    for (long i = 0; i < DEMO_N; i++) {
        pf_point_result *p = &rows[i];
        double b = i == 0 ? 0.0 : 0.02 + 0.0005 * (double)(i - 1);
        int phase = 0;
        for (int k = 0; k < DEMO_STEPS; k++) phase += b > demo_steps[k];
        /* into the trivial phase r collapses (2.2 -> 0.1 on MNIST) */
        double r = i == 0 ? 60.0 : 90.0 / sqrt(1.0 + b / 2e-5) * pow(0.9, phase) * (phase == 4 ? 0.1 : 1);
        static const double plateau_loss[5] = {0.75, 1.3, 1.7, 2.08, 2.302585};
        double e = i == 0 ? 1e-5 : plateau_loss[phase] + (phase < 4 ? 2.0 * (b - 0.02) : 0.0);
        p->index = i;
        p->point.beta = b;
        p->point.direction = 1;
        p->m.beta = b;
        p->m.r = r * (1 + 0.002 * gauss(&rng));
        p->m.train.loss = e * (1 + (phase < 4 ? 0.002 * gauss(&rng) : 0.0));
        p->m.reg_loss = p->m.train.loss + 0.5 * b * p->m.r * p->m.r;
        p->m.test.n_classes = DEMO_K;
        double sum = 0;
        for (int k = 0; k < DEMO_K; k++) {
            double a;
            if (i == 0) a = 97.0;
            else if (phase == 4) a = k == 1 ? 100.0 : 0.0;
            else if (phase == 3) a = (k == 0 && i % 5 < 2) || (k == 7 && i % 5 >= 3) ? 80.0 : 10.0;
            else a = strchr(held[phase], '0' + k) ? 90.0 - 5 * phase : 15.0;
            p->m.test.class_accuracy[k] = a;
            sum += a;
        }
        p->m.test.accuracy = sum / DEMO_K;
        p->m.train.accuracy = p->m.test.accuracy;
        p->m.test.loss = p->m.train.loss;
    }
}

/* The library's chain on a demo-like curve: gaps, transitions, phases. */
typedef struct {
    double beta[DEMO_N], r[DEMO_N], loss[DEMO_N], reg[DEMO_N], acc[DEMO_N], cls[DEMO_N * DEMO_K];
    long *gaps, ng, nt, nph;
    pf_transition *t;
    pf_phase *ph;
} demo_leg;

static void demo_leg_build(demo_leg *d, const pf_point_result *rows, long n)
{
    for (long i = 0; i < n; i++) {
        d->beta[i] = rows[i].point.beta;
        d->r[i] = rows[i].m.r;
        d->loss[i] = rows[i].m.train.loss;
        d->reg[i] = rows[i].m.reg_loss;
        d->acc[i] = rows[i].m.test.accuracy;
        for (int k = 0; k < DEMO_K; k++) d->cls[i * DEMO_K + k] = rows[i].m.test.class_accuracy[k];
    }
    pf_detect_config cfg;
    pf_detect_config_default(&cfg);
    pf_encoding enc;
    pf_encoding_default(&enc);
    pf_error err;
    pf_curve c = {n, d->beta, d->r, d->loss, d->reg, d->acc, 0.0};
    assert_int_equal(pf_detect_gaps(d->beta, n, &cfg, &d->gaps, &d->ng, &err), PF_OK);
    assert_int_equal(pf_detect_transitions(&c, &cfg, &d->t, &d->nt, &err), PF_OK);
    assert_int_equal(pf_phases(d->beta, d->acc, d->loss, d->r, d->cls, n, DEMO_K, d->t, d->nt, d->gaps,
                               d->ng, &enc, PF_LOSS_CE, &d->ph, &d->nph, &err), PF_OK);
}

static void demo_leg_free(demo_leg *d)
{
    free(d->gaps);
    free(d->t);
    free(d->ph);
}

static void set_text(const uint64_t *set, char *buf, size_t n) { pf_set_str(set, DEMO_K, buf, n); }

/* beta = 0, 0.02 away from the next point where the grid steps by 0.0005,
 * is a phase of its own with all ten classes; the gap is not a transition
 * (the transitions are those of the curve without beta = 0); the phases on
 * either side are bounded by the gap. */
static void test_gap_is_own_phase(void **state)
{
    (void)state;
    static pf_point_result rows[DEMO_N];
    make_demo_like(rows, 5);
    static demo_leg d, rest;
    demo_leg_build(&d, rows, DEMO_N);
    demo_leg_build(&rest, rows + 1, DEMO_N - 1);
    assert_int_equal(d.ng, 1);
    assert_int_equal(d.gaps[0], 0);
    assert_int_equal(d.nt, DEMO_STEPS);
    assert_int_equal(rest.nt, DEMO_STEPS);
    for (long k = 0; k < d.nt; k++) {
        assert_int_equal(d.t[k].below, rest.t[k].below + 1);
        assert_true(d.t[k].score == rest.t[k].score);
        assert_true(d.t[k].beta_below < demo_steps[k] && d.t[k].beta_above > demo_steps[k]);
    }
    assert_int_equal(d.nph, DEMO_STEPS + 2);
    char a[64];
    const pf_phase *zero = &d.ph[0], *next = &d.ph[1];
    assert_int_equal(zero->first, 0);
    assert_int_equal(zero->last, 0);
    set_text(zero->encoded, a, sizeof a);
    assert_string_equal(a, "{0,1,2,3,4,5,6,7,8,9}");
    assert_true(fabs(zero->mean_accuracy - 97.0) < 1e-9);
    assert_int_equal(zero->bound_from, PF_BOUND_END);
    assert_int_equal(zero->bound_to, PF_BOUND_GAP);
    assert_int_equal(zero->transition_to, -1);
    assert_int_equal(next->first, 1);
    assert_int_equal(next->bound_from, PF_BOUND_GAP);
    assert_int_equal(next->bound_to, PF_BOUND_TRANSITION);
    assert_int_equal(next->transition_to, 0);
    assert_true(next->beta_from == 0.02);
    set_text(next->encoded, a, sizeof a);
    assert_string_equal(a, "{0,1,2,3,4,6,7}");
    assert_int_equal(d.ph[DEMO_STEPS + 1].bound_to, PF_BOUND_END);
    assert_string_equal(pf_bound_name(PF_BOUND_GAP), "gap");
    /* the top of the hierarchy is beta = 0's set, seen at beta = 0 only */
    pf_hierarchy h;
    pf_error err;
    const pf_phase *runs[1] = {d.ph};
    assert_int_equal(pf_hierarchy_build(runs, &d.nph, 1, DEMO_K, &h, &err), PF_OK);
    assert_int_equal(h.nodes[0].size, 10);
    assert_int_equal(h.nodes[0].parent, -1);
    assert_true(h.nodes[0].beta_min == 0 && h.nodes[0].beta_max == 0);
    assert_int_equal(h.nodes[1].size, 7);
    assert_int_equal(h.nodes[1].parent, 0);
    assert_true(h.consistent);
    pf_hierarchy_free(&h);
    demo_leg_free(&d);
    demo_leg_free(&rest);
}

static int node_by_label(const pf_hierarchy *h, const char *label)
{
    for (int i = 0; i < h->n; i++) {
        char l[128];
        pf_basin_label(&h->nodes[i], h->n_classes, l, sizeof l);
        if (strcmp(l, label) == 0) return i;
    }
    return -1;
}

/* A plateau that is not trivial yet encodes no class is its own node,
 * named by its partial classes, apart from the trivial one; plateaus with
 * other partial sets are other nodes; the same one in two runs is one node
 * seen twice. An unresolved node hangs under the smallest encoded set it
 * was entered from (the phase below it in beta), not under a set holding
 * its partial classes, unless nothing encoded lies below it; the trivial
 * one under the smallest encoded set; neither breaks the nesting. */
static void test_unresolved_is_own_node(void **state)
{
    (void)state;
    static pf_point_result rows[DEMO_N];
    make_demo_like(rows, 6);
    static demo_leg d;
    demo_leg_build(&d, rows, DEMO_N);
    assert_int_equal(d.nph, DEMO_STEPS + 2);
    const pf_phase *un = &d.ph[4], *triv = &d.ph[5];
    char a[64];
    assert_false(un->trivial);
    assert_true(un->unresolved);
    assert_int_equal(pf_set_count(un->encoded, DEMO_K), 0);
    set_text(un->partial, a, sizeof a);
    assert_string_equal(a, "{0,7}");
    assert_true(triv->trivial);
    assert_false(triv->unresolved);
    for (int p = 0; p < 4; p++) assert_false(d.ph[p].unresolved);

    /* a run whose unresolved plateau flickers over 0, 7 and 9: entered from
     * {0}, though only {0..9} holds all three */
    static pf_phase other[DEMO_STEPS + 2], start[2];
    memcpy(other, d.ph, sizeof other);
    other[4].partial[0] = 1u | 1u << 7 | 1u << 9;
    /* a run that starts unresolved: under the smallest set holding {1,7} */
    memcpy(start, d.ph + 4, sizeof start);
    start[0].partial[0] = 1u << 1 | 1u << 7;
    const pf_phase *runs[4] = {d.ph, d.ph, other, start};
    long counts[4] = {d.nph, d.nph, d.nph, 2};
    pf_hierarchy h;
    pf_error err;
    assert_int_equal(pf_hierarchy_build(runs, counts, 4, DEMO_K, &h, &err), PF_OK);
    static const struct {
        const char *label, *parent;
        int seen;
    } want[] = {
        {"{0,1,2,3,4,5,6,7,8,9}", NULL, 3},
        {"{0,1,2,3,4,6,7}", "{0,1,2,3,4,5,6,7,8,9}", 3},
        {"{0,1,7}", "{0,1,2,3,4,6,7}", 3},
        {"{0}", "{0,1,7}", 3},
        {"unresolved: partial {0,7}", "{0}", 2},
        {"unresolved: partial {0,7,9}", "{0}", 1},
        {"unresolved: partial {1,7}", "{0,1,7}", 1},
        {"{} trivial", "{0}", 4},
    };
    assert_int_equal(h.n, (int)(sizeof want / sizeof *want));
    for (size_t w = 0; w < sizeof want / sizeof *want; w++) {
        int i = node_by_label(&h, want[w].label);
        if (i < 0) fail_msg("no node '%s'", want[w].label);
        int parent = want[w].parent ? node_by_label(&h, want[w].parent) : -1;
        if (h.nodes[i].parent != parent || h.nodes[i].seen != want[w].seen)
            fail_msg("node '%s': parent %d seen %d, expected %d ('%s') seen %d", want[w].label,
                     h.nodes[i].parent, h.nodes[i].seen, parent, want[w].parent ? want[w].parent : "-",
                     want[w].seen);
        assert_int_equal(h.nodes[i].unresolved, strncmp(want[w].label, "unresolved", 10) == 0);
        assert_int_equal(h.nodes[i].trivial, strcmp(want[w].label, "{} trivial") == 0);
    }
    /* encoded sets first (largest first), then unresolved, then trivial */
    assert_int_equal(node_by_label(&h, "{0}"), 3);
    assert_int_equal(node_by_label(&h, "{} trivial"), h.n - 1);
    int u = node_by_label(&h, "unresolved: partial {0,7}");
    assert_int_equal(h.nodes[u].size, 0);
    assert_true(h.nodes[u].beta_min > 0.074 && h.nodes[u].beta_max < 0.085);
    assert_true(h.nodes[h.n - 1].beta_min >= 0.085);
    assert_true(h.consistent);
    pf_hierarchy_free(&h);
    demo_leg_free(&d);
}

/* Both through the tool: `transitions` on a demo-like sweep.csv. beta = 0
 * is a phase bounded by a gap, not a transition; the unresolved plateau
 * and the trivial one are separate basins in phases.json and in the
 * printed tree. */
static void test_gap_and_unresolved_in_outputs(void **state)
{
    (void)state;
    static pf_point_result rows[DEMO_N];
    make_demo_like(rows, 7);
    char dir[400], path[600];
    pf_error err;
    snprintf(dir, sizeof dir, "%s/demo-like", tmpdir);
    assert_int_equal(shell("mkdir -p %s", dir), 0);
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    assert_int_equal(pf_sweep_csv_write(path, rows, DEMO_N, &err), PF_OK);
    run_result *res = malloc(sizeof *res);
    assert_non_null(res);
    run(res, "transitions %s", dir);
    assert_int_equal(res->status, 0);
    /* the tree: unresolved and trivial apart, each seen once */
    assert_non_null(strstr(res->out, "{0,1,2,3,4,5,6,7,8,9}  (10 classes; seen in 1 phase; beta 0-0)"));
    assert_non_null(strstr(res->out, "unresolved: partial {0,7}  (0 classes; seen in 1 phase;"));
    assert_non_null(strstr(res->out, "{} trivial  (0 classes; seen in 1 phase;"));
    assert_non_null(strstr(res->out, "1 grid gap"));
    free(res);

    snprintf(path, sizeof path, "%s/phases.json", dir);
    char *text = slurp(path);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(root, "phases");
    assert_int_equal(cJSON_GetArraySize(phases), DEMO_STEPS + 2);
    const cJSON *zero = cJSON_GetArrayItem(phases, 0), *next = cJSON_GetArrayItem(phases, 1);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(zero, "beta_to")) == 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(zero, "encoded")), 10);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(zero, "bound_to")), "gap");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(next, "bound_from")), "gap");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(next, "bound_to")),
                        "transition");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(next, "transition_to")), "T1");
    const cJSON *un = cJSON_GetArrayItem(phases, 4);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(un, "unresolved")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(un, "label")),
                        "unresolved: partial {0,7}");
    const cJSON *hier = cJSON_GetObjectItemCaseSensitive(root, "hierarchy");
    const cJSON *basins = cJSON_GetObjectItemCaseSensitive(hier, "basins");
    int n_unresolved = 0, n_trivial = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, basins)
    {
        const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "label"));
        assert_non_null(label);
        int unresolved = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "unresolved"));
        int trivial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "trivial"));
        const cJSON *partial = cJSON_GetObjectItemCaseSensitive(b, "partial");
        if (unresolved) {
            n_unresolved++;
            assert_false(trivial);
            assert_string_equal(label, "unresolved: partial {0,7}");
            assert_int_equal(cJSON_GetArraySize(partial), 2);
            assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(b, "phases_seen")), 1);
        }
        if (trivial) {
            n_trivial++;
            assert_string_equal(label, "{} trivial");
            assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(b, "phases_seen")), 1);
        }
    }
    assert_int_equal(n_unresolved, 1);
    assert_int_equal(n_trivial, 1);
    cJSON_Delete(root);

    /* transitions.json: four transitions, none at the gap; the gap listed apart */
    snprintf(path, sizeof path, "%s/transitions.json", dir);
    text = slurp(path);
    assert_non_null(text);
    root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "transitions"), *t;
    assert_int_equal(cJSON_GetArraySize(ts), DEMO_STEPS);
    cJSON_ArrayForEach(t, ts)
    {
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "beta_below")) >= 0.02);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(t, "score")));
    }
    const cJSON *gaps = cJSON_GetObjectItemCaseSensitive(root, "gaps");
    assert_int_equal(cJSON_GetArraySize(gaps), 1);
    const cJSON *g = cJSON_GetArrayItem(gaps, 0);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "beta_below")) == 0);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "beta_above")) == 0.02);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "classes_lost")), 3);
    cJSON_Delete(root);
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
/* E of a checkpoint over a dataset on the double-precision reference path
 * (no BLAS, no thread team), the same way the table's Train_Loss is
 * defined but not the same code. */
static double reference_loss(const char *ckpt, const pf_dataset *d, double *r)
{
    pf_arch arch;
    float *theta;
    pf_error err;
    if (pf_ckpt_read(ckpt, NULL, NULL, &arch, &theta, NULL, &err)) fail_msg("%s", err.msg);
    double *th = malloc(arch.n_params * sizeof *th), *x = malloc((size_t)d->dim * 500 * sizeof *x);
    assert_non_null(th);
    assert_non_null(x);
    double rr = 0;
    for (size_t i = 0; i < arch.n_params; i++) th[i] = theta[i], rr += th[i] * th[i];
    double sum = 0;
    for (size_t i0 = 0; i0 < d->n; i0 += 500) {
        int B = (int)(d->n - i0 < 500 ? d->n - i0 : 500);
        for (size_t k = 0; k < (size_t)B * (size_t)d->dim; k++) x[k] = d->x[i0 * (size_t)d->dim + k];
        sum += B * pf_ref_loss_grad(&arch, th, x, d->labels + i0, NULL, B, NULL);
    }
    free(th), free(x), free(theta);
    *r = sqrt(rr);
    return sum / (double)d->n;
}

/* The refined interval and step count of transition T<label> in dir's
 * transitions.json, and the tolerance it records. */
static void refined_of(const char *dir, int label, double *from, double *to, double *tol, int *steps)
{
    char path[600];
    snprintf(path, sizeof path, "%s/transitions.json", dir);
    char *text = slurp(path);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "transitions"), label - 1);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(t, "refined");
    assert_non_null(ref);
    *from = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "beta_from"));
    *to = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "beta_to"));
    *tol = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "tol"));
    *steps = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "steps"));
    cJSON_Delete(root);
}

/* refine on a finished sweep folder: at the sweep's own tolerance it
 * reproduces the sweep's refinement bit for bit (the saddle anchors are the
 * same files); at a finer one it narrows the interval inside the old one
 * with more bisection steps and records the tolerance; a transition that
 * does not exist, or another team size, is refused. */
static void check_refine(const char *dir, int label, double from, double to)
{
    char anchor[600], copy[600];
    snprintf(anchor, sizeof anchor, "%s/transitions/T%d_below.safetensors", dir, label);
    snprintf(copy, sizeof copy, "%s/T_below.copy", tmpdir);
    assert_int_equal(shell("cp %s %s", anchor, copy), 0);
    assert_int_equal(shell("%s refine %s T%d --tol 1e-3 --threshold 4 --quiet > /dev/null", tool, dir, label), 0);
    if (shell("cmp -s %s %s", anchor, copy) != 0)
        fail_msg("refine at the sweep's tolerance gave another T%d_below than the sweep", label);
    double f, t, tol;
    int steps_coarse, steps_fine;
    refined_of(dir, label, &f, &t, &tol, &steps_coarse);
    assert_true(f == from && t == to);
    assert_true(tol == 1e-3);
    assert_int_equal(shell("%s refine %s T%d --tol 1e-5 --threshold 4 --quiet > /dev/null", tool, dir, label), 0);
    refined_of(dir, label, &f, &t, &tol, &steps_fine);
    print_message("T%d: %.9f-%.9f after %d steps at tol 1e-3, %.9f-%.9f after %d at 1e-5\n", label, from,
                  to, steps_coarse, f, t, steps_fine);
    assert_true(tol == 1e-5);
    assert_true(t - f <= 1e-5 + 1e-12 && t > f);
    assert_true(f >= from && t <= to);
    assert_true(steps_fine > steps_coarse);
    assert_int_equal(shell("%s refine %s T%d --threshold 4 2>/dev/null", tool, dir, label + 5), 2);
    assert_int_equal(shell("%s refine %s T%d --threshold 4 --threads 2 2>/dev/null", tool, dir, label), 2);
    assert_int_equal(shell("%s refine %s/nothing-here T1 2>/dev/null", tool, tmpdir), 2);
}

/* A real MNIST sweep from beta = 0 (a phase of its own, cut off by the grid
 * gap to 0.05) up through the collapse into the trivial phase, checked
 * against what the table itself shows and against an independent
 * computation of its losses:
 *  - the collapse is found exactly at the step where the train loss first
 *    reaches ln 10, r falls by more than half across it, its refined
 *    interval lies inside that step and is as narrow as asked, and the
 *    printed table shows it;
 *  - the gap 0 -> 0.05 is a phase boundary, not a transition;
 *  - Train_Loss and Train_Reg_Loss match E and E + beta/2 r^2 computed on
 *    the reference path from the rows' checkpoints. */
static void test_small_real_sweep(void **state)
{
    (void)state;
    char dir[400], path[600];
    snprintf(dir, sizeof dir, "%s/real", tmpdir);
    assert_int_equal(shell("%s sweep --beta 0,0.05:0.1:0.0025 --train-subset 4000 --max-epochs 8 --threshold 4 "
                           "--threads 1 --quiet --refine-tol 1e-3 --keep-checkpoints --out %s > %s/out.txt",
                           tool, dir, tmpdir), 0);
    snprintf(path, sizeof path, "%s/out.txt", tmpdir);
    char *out = slurp(path);
    assert_non_null(out);
    assert_non_null(strstr(out, "Hierarchy"));
    assert_non_null(strstr(out, "phase_diagram_up.png"));
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
    assert_int_equal(n, 22);
    /* the collapse, from the losses alone: the first trivial point */
    long k = -1;
    for (long i = 1; i < n && k < 0; i++)
        if (fabs(rows[i].m.train.loss - log(10.0)) < 0.02 && fabs(rows[i - 1].m.train.loss - log(10.0)) >= 0.02)
            k = i;
    if (k < 0) fail_msg("the sweep never reaches the trivial phase");
    snprintf(path, sizeof path, "%s/transitions.json", dir);
    char *tj = slurp(path);
    cJSON *root = cJSON_Parse(tj);
    free(tj);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "transitions"), *t, *collapse = NULL;
    int n_up = 0, label = 0;
    cJSON_ArrayForEach(t, ts)
    {
        double below = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "index_below"));
        double above = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "index_above"));
        assert_true(above == below + 1);
        assert_true(below > 0); /* never at the gap after beta = 0 */
        n_up++;
        if ((long)below == k - 1) collapse = t, label = n_up;
    }
    if (!collapse) fail_msg("no transition found where the train loss reaches ln 10 (beta %g -> %g)",
                            rows[k - 1].point.beta, rows[k].point.beta);
    assert_true(rows[k].m.r < 0.5 * rows[k - 1].m.r);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(collapse, "refined");
    assert_non_null(ref);
    double from = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "beta_from"));
    double to = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "beta_to"));
    assert_true(from >= rows[k - 1].point.beta && to <= rows[k].point.beta && to > from);
    assert_true(to - from <= 1e-3 + 1e-12);
    char iv[64];
    snprintf(iv, sizeof iv, "%.7f-%.7f", from, to);
    if (!strstr(out, iv)) fail_msg("the printed table does not show the refined interval %s", iv);
    const cJSON *gaps = cJSON_GetObjectItemCaseSensitive(root, "gaps");
    assert_int_equal(cJSON_GetArraySize(gaps), 1);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(gaps, 0),
                                                                      "index_below")) == 0);
    cJSON_Delete(root);
    free(out);
    check_refine(dir, label, from, to);
    /* the losses of the table, recomputed independently at two rows */
    pf_data_options o;
    pf_data_options_default(&o);
    o.train_subset = 4000;
    pf_dataset train, test;
    assert_int_equal(pf_data_load(&o, &train, &test, &err), PF_OK);
    const long check[2] = {0, k - 1};
    for (int c = 0; c < 2; c++) {
        long i = check[c];
        snprintf(path, sizeof path, "%s/checkpoints/p%05ld.safetensors", dir, rows[i].index);
        double r, E = reference_loss(path, &train, &r);
        double L = E + 0.5 * rows[i].point.beta * r * r;
        if (fabs(E - rows[i].m.train.loss) > 1e-5 * fmax(1, E) || fabs(L - rows[i].m.reg_loss) > 1e-5 * fmax(1, L) ||
            fabs(r - rows[i].m.r) > 1e-6 * r)
            fail_msg("row %ld: table E %.9g, L %.9g, r %.9g; reference E %.9g, L %.9g, r %.9g", i,
                     rows[i].m.train.loss, rows[i].m.reg_loss, rows[i].m.r, E, L, r);
    }
    pf_dataset_free(&train);
    pf_dataset_free(&test);
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

/* sweep --optimizer newton --certify: every row carries its certificate,
 * a certified row holds to it (max |gradient| within --grad-tol, lambda_min
 * of H_L at least -eps, lambda_L = lambda_E + beta), and the extremes are
 * the ones `pathfinder hessian` finds at that row's checkpoint on all the
 * training samples; the table reads back with them. */
static void test_sweep_certify_columns(void **state)
{
    (void)state;
    char dir[400], path[600];
    snprintf(dir, sizeof dir, "%s/cert", tmpdir);
    const double grad_tol = 1e-5;
    const char *cmd = "%s sweep --beta 0.01:0.03:0.01 --train-subset 300 --arch 784,8,10 --optimizer newton "
                      "--grad-tol %g --certify --threads 1 --quiet --no-refine --keep-checkpoints --out %s "
                      "> /dev/null";
    assert_int_equal(shell(cmd, tool, grad_tol, dir), 0);
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    char *text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, ",lambda_min_E,lambda_max_E,lambda_min_L,lambda_max_L,hessian_converged,"
                                 "grad_norm,certified,escapes,certify_eps,certify_seconds,certify_hvps\n"));
    free(text);
    pf_point_result *rows;
    long n;
    pf_error err;
    assert_int_equal(pf_sweep_csv_read(path, &rows, &n, &err), PF_OK);
    assert_int_equal(n, 3);
    int n_certified = 0;
    for (long i = 0; i < n; i++) {
        const pf_point_result *r = &rows[i];
        assert_true(r->has_certificate && r->has_hessian);
        assert_true(r->certify_eps > 0.0);
        if (r->certified) {
            n_certified++;
            if (!(r->grad_norm <= grad_tol)) fail_msg("row %ld: certified with gradient %g", i, r->grad_norm);
            if (!(r->lambda_min_E + r->point.beta >= -r->certify_eps))
                fail_msg("row %ld: certified with lambda_min(H_L) %g < -%g", i,
                         r->lambda_min_E + r->point.beta, r->certify_eps);
        }
        char out[700];
        snprintf(out, sizeof out, "%s/c%ld.json", tmpdir, i);
        assert_int_equal(shell("%s hessian %s/checkpoints/p%05ld.safetensors --train-subset 300 "
                               "--k 1 --json --quiet > %s", tool, dir, i, out), 0);
        char *h = slurp(out);
        assert_non_null(h);
        double scale = fabs(json_field(h, "lambda_max_E"));
        double d[2] = {json_field(h, "lambda_min_E") - r->lambda_min_E,
                       json_field(h, "lambda_max_E") - r->lambda_max_E};
        for (int k = 0; k < 2; k++)
            if (!(fabs(d[k]) <= 1e-3 * scale))
                fail_msg("row %ld: the certificate's extreme %d differs from `hessian` by %g", i, k, d[k]);
        free(h);
    }
    /* Newton converges on so small a net: a sweep with no certified point is broken */
    assert_true(n_certified >= 1);
    free(rows);
    /* the saddle next to the last point's minimum: index 1 and converged by
     * its own report, L_beta above the minimum's, and `hessian` at the
     * checkpoint it wrote finds exactly one negative eigenvalue of H_L */
    char sad[720], js[720];
    snprintf(sad, sizeof sad, "%s/saddle.safetensors", tmpdir);
    snprintf(js, sizeof js, "%s/saddle.json", tmpdir);
    assert_int_equal(shell("%s saddle %s/checkpoints/p00002.safetensors --train-subset 300 --grad-tol %g "
                           "--threads 1 --json --quiet --out %s > %s", tool, dir, grad_tol, sad, js), 0);
    char *sj = slurp(js);
    assert_non_null(sj);
    assert_true(json_field(sj, "index") == 1);
    assert_non_null(strstr(sj, "\"converged\":true"));
    assert_true(json_field(sj, "barrier") > 0);
    assert_true(json_field(sj, "grad_norm") <= grad_tol);
    free(sj);
    snprintf(js, sizeof js, "%s/saddle_h.json", tmpdir);
    assert_int_equal(shell("%s hessian %s --train-subset 300 --k 2 --which smallest --tol 1e-7 --json --quiet > %s",
                           tool, sad, js), 0);
    sj = slurp(js);
    assert_non_null(sj);
    const char *el = strstr(sj, "\"eigenvalues_L\":[");
    assert_non_null(el);
    double l0 = 0, l1 = 0;
    assert_int_equal(sscanf(el + strlen("\"eigenvalues_L\":["), "%lf,%lf", &l0, &l1), 2);
    if (!(l0 < 0 && l1 > 0)) fail_msg("the saddle's lowest eigenvalues of H_L are %g and %g", l0, l1);
    free(sj);
    /* a quasi-static series: nearest the model's beta (0.03) first, every
     * point an index-1 saddle with its checkpoint, the barrier along the
     * path agreeing with the difference of the values (no cancellation on
     * so small a set), and the fits of the fold's laws over the points */
    char ser[600];
    snprintf(ser, sizeof ser, "%s/series", tmpdir);
    assert_int_equal(shell("%s saddle %s/checkpoints/p00002.safetensors --train-subset 300 --grad-tol %g "
                           "--threads 1 --quiet --series 0.028,0.03,0.029 --out %s > /dev/null", tool, dir,
                           grad_tol, ser), 0);
    snprintf(js, sizeof js, "%s/saddles.json", ser);
    sj = slurp(js);
    assert_non_null(sj);
    cJSON *doc = cJSON_Parse(sj);
    assert_non_null(doc);
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(doc, "points");
    assert_int_equal(cJSON_GetArraySize(pts), 3);
    const double order[3] = {0.03, 0.029, 0.028};
    for (int k = 0; k < 3; k++) {
        const cJSON *p = cJSON_GetArrayItem(pts, k);
        double b = cJSON_GetObjectItemCaseSensitive(p, "beta")->valuedouble;
        double bar = cJSON_GetObjectItemCaseSensitive(p, "barrier")->valuedouble;
        double dif = cJSON_GetObjectItemCaseSensitive(p, "barrier_difference")->valuedouble;
        if (fabs(b - order[k]) > 1e-12) fail_msg("series point %d at beta %g, expected %g", k + 1, b, order[k]);
        assert_true(cJSON_GetObjectItemCaseSensitive(p, "index")->valuedouble == 1);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "converged")));
        if (!(bar > 0 && fabs(bar - dif) <= 1e-2 * bar))
            fail_msg("series point %d: barrier %g along the path, %g as a difference", k + 1, bar, dif);
        snprintf(sad, sizeof sad, "%s/saddle_%03d.safetensors", ser, k + 1);
        assert_true(access(sad, F_OK) == 0);
    }
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(doc, "barrier_fit");
    assert_non_null(fit);
    assert_true(cJSON_GetObjectItemCaseSensitive(fit, "n_points")->valuedouble == 3);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(doc, "lambda_min_fit"));
    cJSON_Delete(doc);
    free(sj);
    assert_int_equal(shell("%s saddle %s/checkpoints/p00002.safetensors --series 0.02:x --out %s/bad 2>/dev/null",
                           tool, dir, tmpdir), 2);
    assert_int_equal(shell("%s sweep --certify --hessian 100 --out %s/y 2>/dev/null", tool, tmpdir), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_parse),
        cmocka_unit_test(test_detect_known_steps),
        cmocka_unit_test(test_detect_smooth_curves),
        cmocka_unit_test(test_detect_rejects_outliers),
        cmocka_unit_test(test_detect_collapse_to_trivial),
        cmocka_unit_test(test_phases_flickering_classes),
        cmocka_unit_test(test_grid_gaps),
        cmocka_unit_test(test_gap_is_own_phase),
        cmocka_unit_test(test_unresolved_is_own_node),
        cmocka_unit_test(test_gap_and_unresolved_in_outputs),
        cmocka_unit_test(test_csv_roundtrip),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_bad_folders_and_args),
        cmocka_unit_test(test_small_real_sweep),
        cmocka_unit_test(test_sweep_hessian_columns),
        cmocka_unit_test(test_sweep_certify_columns),
    };
    return cmocka_run_group_tests_name("sweep", tests, setup, teardown);
}
