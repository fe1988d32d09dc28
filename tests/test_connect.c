/* Pathfinder paths: certification math on profiles whose answer is known,
 * the adaptive schedule's rule, a path between two minima related by a
 * permutation of hidden units (same function, high straight-line barrier),
 * and the connect / probe / train --seeds commands end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <cJSON.h>
#include <math.h>
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
#include "pathfinder/run.h"

/* ---- certification on a 1-parameter family ------------------------------------- */

/* theta = (x): train error is a triangle bump of height 40 at x = 0.375,
 * 0.2 wide at its base on each side, over a floor of 10; test error is the
 * floor plus x (a monotone ramp, no barrier). */
static int bump_calls;

static int bump_measure(void *ctx, const float *theta, pf_path_sample *out, pf_error *err)
{
    (void)ctx;
    (void)err;
    double x = theta[0];
    bump_calls++;
    out->train_error = 10.0 + fmax(0.0, 40.0 - 200.0 * fabs(x - 0.375));
    out->test_error = 10.0 + x;
    out->train_loss = out->test_loss = 0.0;
    out->val_error = out->val_loss = NAN;
    return PF_OK;
}

static void test_lerp_and_barrier(void **state)
{
    (void)state;
    float a[3] = {1, -2, 4}, b[3] = {3, 2, 4}, out[3];
    pf_lerp(out, a, b, 3, 0.0);
    assert_memory_equal(out, a, sizeof a);
    pf_lerp(out, a, b, 3, 1.0);
    assert_memory_equal(out, b, sizeof b);
    pf_lerp(out, a, b, 3, 0.25);
    assert_true(out[0] == 1.5f && out[1] == -1.0f && out[2] == 4.0f);

    const double flat[] = {2, 2, 2}, rise[] = {1, 5, 3, 2}, down[] = {5, 4, 3}, one[] = {7};
    assert_true(pf_error_barrier(flat, 3) == 0.0);
    assert_true(pf_error_barrier(rise, 4) == 3.0); /* 5 above the higher end, 2 */
    assert_true(pf_error_barrier(down, 3) == 0.0); /* monotone: no barrier */
    assert_true(pf_error_barrier(one, 1) == 0.0);
}

static void test_certify_known_profile(void **state)
{
    (void)state;
    float a[1] = {0}, b[1] = {1};
    pf_path_sample at_a, at_b;
    pf_error err;
    bump_measure(NULL, a, &at_a, &err);
    bump_measure(NULL, b, &at_b, &err);

    /* 3 interior points at 0.25, 0.5, 0.75 see 25, 25, 10: the bump is
     * above the ends (10) by more than the rise, so both 0.25 and 0.5 (a
     * tie, both local maxima) are bisected; 0.375 is the exact peak. */
    pf_certify_config cfg = {3, 0.5, 3};
    pf_segment seg;
    bump_calls = 0;
    assert_int_equal(pf_certify_segment(a, b, 1, &at_a, &at_b, &cfg, bump_measure, NULL, &seg, &err),
                     PF_OK);
    assert_true(seg.samples[0].t == 0.0 && seg.samples[seg.n - 1].t == 1.0);
    for (long i = 1; i < seg.n; i++) assert_true(seg.samples[i].t > seg.samples[i - 1].t);
    assert_int_equal(seg.n_refined, bump_calls - 3);
    assert_int_equal(seg.n, 5 + seg.n_refined);
    assert_true(fabs(seg.max_train_error - 50.0) < 1e-9);  /* found the true peak */
    assert_true(fabs(seg.max_test_error - 11.0) < 1e-6);   /* the ramp's top is an end */
    /* refinement stays near the peak: every added sample is within 0.25 of it */
    for (long i = 0; i < seg.n; i++)
        if (seg.samples[i].t != 0 && seg.samples[i].t != 1 && fmod(seg.samples[i].t * 4, 1.0) != 0)
            assert_true(fabs(seg.samples[i].t - 0.375) <= 0.25);
    pf_segment_free(&seg);

    /* without refinement the coarse grid underestimates the bump */
    cfg.levels = 0;
    assert_int_equal(pf_certify_segment(a, b, 1, &at_a, &at_b, &cfg, bump_measure, NULL, &seg, &err),
                     PF_OK);
    assert_int_equal(seg.n, 5);
    assert_true(fabs(seg.max_train_error - 25.0) < 1e-9);
    pf_segment_free(&seg);

    /* a segment that stays low (0.6 .. 1 avoids the bump) is not refined */
    float c[1] = {0.6f};
    pf_path_sample at_c;
    bump_measure(NULL, c, &at_c, &err);
    cfg.levels = 3;
    cfg.interior = 5;
    assert_int_equal(pf_certify_segment(c, b, 1, &at_c, &at_b, &cfg, bump_measure, NULL, &seg, &err),
                     PF_OK);
    assert_int_equal(seg.n, 7);
    assert_int_equal(seg.n_refined, 0);
    pf_segment_free(&seg);

    /* a profile assembled from two segments: s runs over the polygon, the
     * shared node appears once, and the barrier is measured against A and B */
    pf_profile prof = {0};
    cfg.interior = 1;
    cfg.levels = 0;
    pf_segment s1, s2;
    float mid[1] = {0.5f};
    pf_path_sample at_mid;
    bump_measure(NULL, mid, &at_mid, &err);
    assert_int_equal(pf_certify_segment(a, mid, 1, &at_a, &at_mid, &cfg, bump_measure, NULL, &s1, &err), 0);
    assert_int_equal(pf_certify_segment(mid, b, 1, &at_mid, &at_b, &cfg, bump_measure, NULL, &s2, &err), 0);
    assert_int_equal(pf_profile_add(&prof, &s1, 0.0, 0.5, 0, &err), 0);
    assert_int_equal(pf_profile_add(&prof, &s2, 0.5, 0.5, 1, &err), 0);
    assert_int_equal(prof.n, 5);
    const double want_s[5] = {0, 0.25, 0.5, 0.75, 1.0};
    const unsigned char want_node[5] = {1, 0, 1, 0, 1};
    for (int i = 0; i < 5; i++) {
        assert_true(fabs(prof.s[i] - want_s[i]) < 1e-12);
        assert_int_equal(prof.node[i], want_node[i]);
    }
    assert_true(fabs(pf_error_barrier(prof.train_error, prof.n) - 15.0) < 1e-9); /* 25 - 10 */
    pf_segment_free(&s1);
    pf_segment_free(&s2);
    pf_profile_free(&prof);

    cfg.interior = -1;
    assert_int_equal(pf_certify_segment(a, b, 1, &at_a, &at_b, &cfg, bump_measure, NULL, &seg, &err),
                     PF_EINPUT);
}

/* ---- the adaptive schedule ------------------------------------------------------- */

static void test_schedule_rule(void **state)
{
    (void)state;
    pf_schedule_config c;
    pf_schedule_config_default(&c);
    c.beta_start = 1e-3;
    c.ratio = 2.0;
    c.max_ratio = 2.0;
    c.min_ratio = 1.1;
    c.step_cap = 1.0;
    c.error_jump = 3.0;
    pf_schedule s;
    pf_schedule_init(&s, &c);
    assert_true(fabs(pf_schedule_next(&s) - 1e-3) < 1e-18);
    /* an easy step is accepted and the next beta doubles */
    assert_int_equal(pf_schedule_judge(&s, &c, 1e-3, 0.1, 0.0), PF_STEP_ACCEPT);
    assert_true(fabs(pf_schedule_next(&s) - 2e-3) < 1e-18);
    /* too far: retry with ratio - 1 halved, from the same beta, down to the
     * smallest ratio */
    assert_int_equal(pf_schedule_judge(&s, &c, 2e-3, 4.0, 0.0), PF_STEP_RETRY);
    assert_true(fabs(s.ratio - 1.5) < 1e-15 && s.beta == 1e-3);
    assert_int_equal(pf_schedule_judge(&s, &c, 1.5e-3, 2.5, 0.0), PF_STEP_RETRY);
    assert_true(fabs(s.ratio - 1.25) < 1e-15);
    /* an error jump counts as too far too (5 points / 3 = 1.67) */
    assert_int_equal(pf_schedule_judge(&s, &c, 1.25e-3, 0.1, 5.0), PF_STEP_RETRY);
    assert_true(fabs(s.ratio - 1.125) < 1e-15);
    assert_int_equal(pf_schedule_judge(&s, &c, 1.125e-3, 1.5, 0.0), PF_STEP_RETRY);
    assert_true(fabs(s.ratio - 1.1) < 1e-15); /* floored at min_ratio */
    /* at the smallest ratio a too-far step that shrank with the steps (1.2
     * <= 0.7 x 4) is a jump, and the ratio stays small */
    assert_int_equal(pf_schedule_judge(&s, &c, 1.1e-3, 1.2, 0.0), PF_STEP_FORCED);
    assert_true(s.beta == 1.1e-3 && fabs(s.ratio - 1.1) < 1e-15);
    assert_int_equal(s.forced, 1);
    assert_int_equal(s.rejected, 4);
    /* a too-far step at the smallest ratio right away is a jump too */
    assert_int_equal(pf_schedule_judge(&s, &c, 1.21e-3, 3.0, 0.0), PF_STEP_FORCED);
    /* two easy steps in a row double ratio - 1, up to max_ratio */
    assert_int_equal(pf_schedule_judge(&s, &c, 1.3e-3, 0.2, 0.0), PF_STEP_ACCEPT);
    assert_true(fabs(s.ratio - 1.1) < 1e-15);
    assert_int_equal(pf_schedule_judge(&s, &c, 1.4e-3, 0.2, 0.0), PF_STEP_ACCEPT);
    assert_true(fabs(s.ratio - 1.2) < 1e-15);
    /* a middling step (over half the cap) resets the count */
    assert_int_equal(pf_schedule_judge(&s, &c, 1.5e-3, 0.7, 0.0), PF_STEP_ACCEPT);
    assert_int_equal(pf_schedule_judge(&s, &c, 1.8e-3, 0.2, 0.0), PF_STEP_ACCEPT);
    assert_true(fabs(s.ratio - 1.2) < 1e-15);
    for (int k = 0; k < 10; k++) pf_schedule_judge(&s, &c, 2e-3 * (k + 1), 0.1, 0.0);
    assert_true(s.ratio == 2.0);

    /* drift: down to the smallest ratio the step went about as far (1.9 >
     * 0.7 x 2.0): not the steps' doing, so accepted with the ratio restored */
    pf_schedule d;
    pf_schedule_init(&d, &c);
    assert_int_equal(pf_schedule_judge(&d, &c, 1e-3, 0.1, 0.0), PF_STEP_ACCEPT);
    const double moves[4] = {2.0, 1.9, 2.1, 1.8};
    double beta = 2e-3;
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pf_schedule_judge(&d, &c, beta, moves[k], 0.0), PF_STEP_RETRY);
        beta = pf_schedule_next(&d);
    }
    assert_true(fabs(d.ratio - 1.1) < 1e-15);
    assert_int_equal(pf_schedule_judge(&d, &c, beta, 1.9, 0.0), PF_STEP_DRIFT);
    assert_true(d.beta == beta && d.ratio == 2.0);
    assert_int_equal(d.drift, 1);
    assert_int_equal(d.forced, 0);
    /* a retried point keeps the shrunk ratio when the retry was fine */
    assert_int_equal(pf_schedule_judge(&d, &c, 2 * beta, 1.2, 0.0), PF_STEP_RETRY);
    assert_int_equal(pf_schedule_judge(&d, &c, 1.5 * beta, 0.3, 0.0), PF_STEP_ACCEPT);
    assert_true(fabs(d.ratio - 1.5) < 1e-15);
}

/* ---- a path between permuted copies of one minimum ------------------------------ */

/* XOR of four Gaussian blobs at (+-1, +-1), sd 0.45: the classes overlap a
 * little, so minima have finite weights and ~2% error. */
static void make_xor(pf_dataset *d, size_t n, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->dim = 2;
    d->n_classes = 2;
    d->x = malloc(n * 2 * sizeof *d->x);
    d->labels = malloc(n * sizeof *d->labels);
    assert_non_null(d->x);
    assert_non_null(d->labels);
    pf_rng r;
    pf_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int q = (int)pf_rng_below(&r, 4);
        double cx = q & 1 ? 1 : -1, cy = q & 2 ? 1 : -1;
        double u1 = pf_rng_uniform(&r) + 1e-300, u2 = pf_rng_uniform(&r);
        double g = sqrt(-2 * log(u1));
        d->x[2 * i] = (float)(cx + 0.45 * g * cos(2 * M_PI * u2));
        d->x[2 * i + 1] = (float)(cy + 0.45 * g * sin(2 * M_PI * u2));
        d->labels[i] = cx * cy > 0;
    }
    snprintf(d->name, sizeof d->name, "xor-blobs");
}

enum { HIDDEN = 16 };

/* Hidden unit i of b is hidden unit (H-1-i) of a: the same function. */
static void reverse_hidden(const pf_arch *A, const float *a, float *b)
{
    memcpy(b, a, A->n_params * sizeof *a);
    int H = A->sizes[1], in = A->sizes[0], out = A->sizes[2];
    for (int i = 0; i < H; i++) {
        int j = H - 1 - i;
        memcpy(b + A->w_off[0] + (size_t)i * in, a + A->w_off[0] + (size_t)j * in, (size_t)in * sizeof *a);
        b[A->b_off[0] + i] = a[A->b_off[0] + j];
        for (int o = 0; o < out; o++) b[A->w_off[1] + (size_t)o * H + i] = a[A->w_off[1] + (size_t)o * H + j];
    }
}

typedef struct {
    pf_dataset train, test;
    pf_arch arch;
    float *a, *b;
    pf_train_config cfg;
} xor_problem;

static void xor_setup(xor_problem *p)
{
    pf_error err;
    make_xor(&p->train, 400, 1);
    make_xor(&p->test, 400, 2);
    int sizes[3] = {2, HIDDEN, 2};
    pf_act acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&p->arch, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    size_t n = p->arch.n_params;
    p->a = malloc(n * sizeof *p->a);
    p->b = malloc(n * sizeof *p->b);
    pf_rng r;
    pf_rng_seed(&r, 3);
    pf_init_params(&p->arch, p->a, &r);
    pf_train_config_paper(&p->cfg);
    p->cfg.opt.lr = 0.01;
    p->cfg.batch = 32;
    p->cfg.max_epochs = 300;
    pf_trainer t;
    assert_int_equal(pf_trainer_init(&t, NULL, &p->arch, &p->cfg.opt, 32, p->train.n, 1, &err), PF_OK);
    pf_train_result res;
    assert_int_equal(pf_train_beta(&t, p->a, &p->train, &p->cfg, &res, &err), PF_OK);
    pf_trainer_free(&t);
    p->cfg.max_epochs = 50;
    reverse_hidden(&p->arch, p->a, p->b);
}

static void xor_free(xor_problem *p)
{
    pf_dataset_free(&p->train);
    pf_dataset_free(&p->test);
    free(p->a);
    free(p->b);
}

typedef struct {
    pf_profile prof;
    double last_length;
    long points, bridge_points;
    double max_point_error;
    int lengths_ok;      /* lengths grow by at least each step */
} trace_log;

static int log_point(void *ctx, const pf_path_point *p, const float *theta, const pf_trainer *t,
                     pf_error *err)
{
    (void)theta;
    (void)t;
    trace_log *l = ctx;
    int rc = pf_profile_add(&l->prof, &p->segment, l->last_length, p->step, l->points > 0, err);
    if (l->points > 0 && p->length < l->last_length + p->step - 1e-9) l->lengths_ok = 0;
    l->last_length = p->length;
    l->points++;
    l->bridge_points += p->bridge > 0;
    l->max_point_error = fmax(l->max_point_error, 100.0 - p->res.m.test.accuracy);
    return rc;
}

/* Trace A -> B and close onto B; fills the profile, returns theta's end.
 * With a grid, the fixed betas instead of the adaptive schedule. */
static void trace_with(const xor_problem *p, trace_log *log, float *theta, pf_path_result *pr,
                       const double *grid, long n_grid, int bridge_depth)
{
    pf_error err;
    size_t n = p->arch.n_params;
    double D = pf_distance(p->a, p->b, n);
    pf_trainer t;
    assert_int_equal(pf_trainer_init(&t, NULL, &p->arch, &p->cfg.opt, 32, p->train.n, 7, &err), PF_OK);
    pf_path_config pc;
    memset(&pc, 0, sizeof pc);
    pf_schedule_config_default(&pc.schedule);
    pc.schedule.beta_start = 1e-4;
    pc.schedule.ratio = pc.schedule.max_ratio = 2.0;
    pc.schedule.step_cap = 0.1 * D;
    pc.schedule.tol = 0.01 * D;
    pc.schedule.max_beta = 100;
    pf_certify_config_default(&pc.certify);
    pc.grid = grid;
    pc.n_grid = n_grid;
    pc.bridge_depth = bridge_depth;
    pc.bridge_barrier = 0.5;
    memset(log, 0, sizeof *log);
    log->lengths_ok = 1;
    memcpy(theta, p->a, n * sizeof *theta);
    int rc = pf_path_trace(&t, theta, p->b, &p->train, &p->test, &p->cfg, &pc, log_point, log, pr, &err);
    if (rc) fail_msg("path: %s", err.msg);
    /* close onto B */
    pf_sample_data sd = {&t.eval_work, &p->train, NULL, &p->test};
    pf_path_sample at_last, at_b;
    assert_int_equal(pf_sample_datasets(&sd, theta, &at_last, &err), PF_OK);
    assert_int_equal(pf_sample_datasets(&sd, p->b, &at_b, &err), PF_OK);
    pf_segment close;
    assert_int_equal(pf_certify_segment(theta, p->b, n, &at_last, &at_b, &pc.certify, pf_sample_datasets,
                                        &sd, &close, &err), PF_OK);
    assert_int_equal(pf_profile_add(&log->prof, &close, log->last_length, pf_distance(theta, p->b, n),
                                    1, &err), PF_OK);
    pf_segment_free(&close);
    pf_trainer_free(&t);
}

static void trace(const xor_problem *p, trace_log *log, float *theta, pf_path_result *pr)
{
    trace_with(p, log, theta, pr, NULL, 0, 0);
}

static void test_permutation_path(void **state)
{
    (void)state;
    xor_problem p;
    xor_setup(&p);
    pf_error err;
    size_t n = p.arch.n_params;
    pf_work w;
    assert_int_equal(pf_work_init(&w, NULL, &p.arch, 500, &err), PF_OK);
    pf_sample_data sd = {&w, &p.train, NULL, &p.test};
    pf_path_sample at_a, at_b;
    assert_int_equal(pf_sample_datasets(&sd, p.a, &at_a, &err), PF_OK);
    assert_int_equal(pf_sample_datasets(&sd, p.b, &at_b, &err), PF_OK);
    /* a permutation does not change the function */
    assert_true(at_a.test_error < 5.0);
    assert_true(fabs(at_a.test_error - at_b.test_error) < 1e-9);
    assert_true(fabs(at_a.train_loss - at_b.train_loss) < 1e-5);

    trace_log log;
    float *theta = malloc(n * sizeof *theta);
    pf_path_result pr;
    trace(&p, &log, theta, &pr);
    assert_true(pr.converged);
    assert_true(pr.n_points >= 10);
    /* the straight line at the same density */
    pf_certify_config lc = {(int)log.prof.n - 2, 0.0, 0};
    pf_segment line;
    assert_int_equal(pf_certify_segment(p.a, p.b, n, &at_a, &at_b, &lc, pf_sample_datasets, &sd, &line,
                                        &err), PF_OK);
    assert_int_equal(line.n, log.prof.n);
    pf_profile lp = {0};
    assert_int_equal(pf_profile_add(&lp, &line, 0.0, pf_distance(p.a, p.b, n), 0, &err), PF_OK);
    double line_barrier = pf_error_barrier(lp.test_error, lp.n);
    double path_barrier = pf_error_barrier(log.prof.test_error, log.prof.n);
    double path_train = pf_error_barrier(log.prof.train_error, log.prof.n);
    print_message("permuted minima %.2f apart: straight-line barrier %.2f, path barrier %.2f "
                  "(train %.2f), %ld points, length %.2f\n",
                  pf_distance(p.a, p.b, n), line_barrier, path_barrier, path_train, pr.n_points, pr.length);
    assert_true(line_barrier > 20.0);
    assert_true(path_barrier < 5.0); /* observed 0.5 */
    assert_true(path_train < 5.0);
    /* the path is longer than the straight line but not absurdly so */
    assert_true(pr.length >= pf_distance(p.a, p.b, n) - pf_distance(theta, p.b, n));

    /* same seed, same threads: the same path, bit for bit */
    trace_log again;
    float *theta2 = malloc(n * sizeof *theta2);
    pf_path_result pr2;
    trace(&p, &again, theta2, &pr2);
    assert_int_equal(pr2.n_points, pr.n_points);
    assert_memory_equal(theta, theta2, n * sizeof *theta);
    assert_int_equal(again.prof.n, log.prof.n);
    assert_memory_equal(again.prof.test_error, log.prof.test_error, (size_t)log.prof.n * sizeof(double));

    pf_profile_free(&lp);
    pf_profile_free(&log.prof);
    pf_profile_free(&again.prof);
    pf_segment_free(&line);
    pf_work_free(&w);
    free(theta);
    free(theta2);
    xor_free(&p);
}

/* Two betas only, 1e-4 and 5: the second point has moved next to B, so the
 * straight segment between the points is nearly the line A -> B with its
 * ridge.
 * Without bridges the path keeps that barrier; a bridge, traced from the
 * first point anchored at the second, goes around it. */
static void test_bridge_over_a_snap(void **state)
{
    (void)state;
    xor_problem p;
    xor_setup(&p);
    size_t n = p.arch.n_params;
    const double grid[] = {1e-4, 5.0};
    long n_grid = sizeof grid / sizeof *grid;
    p.cfg.max_epochs = 200;  /* let beta = 5 settle next to B from afar (the */
    p.cfg.patience = 200;    /* training error rises on the way) */
    float *theta = malloc(n * sizeof *theta);
    trace_log plain, bridged;
    pf_path_result pr0, pr1;
    trace_with(&p, &plain, theta, &pr0, grid, n_grid, 0);
    assert_int_equal(pr0.n_points, n_grid + 1);
    assert_int_equal(pr0.bridges_tried, 0);
    double plain_barrier = pf_error_barrier(plain.prof.test_error, plain.prof.n);
    trace_with(&p, &bridged, theta, &pr1, grid, n_grid, 2);
    double bridged_barrier = pf_error_barrier(bridged.prof.test_error, bridged.prof.n);
    double bridged_train = pf_error_barrier(bridged.prof.train_error, bridged.prof.n);
    print_message("two-beta path: barrier %.2f plain, %.2f bridged (train %.2f); %ld bridges of %ld "
                  "tried, %ld bridge points\n", plain_barrier, bridged_barrier, bridged_train, pr1.bridges,
                  pr1.bridges_tried, pr1.bridge_points);
    assert_true(plain_barrier > 20.0);
    assert_true(pr1.bridges >= 1 && pr1.bridges <= pr1.bridges_tried);
    assert_int_equal(pr1.bridge_points, bridged.bridge_points);
    assert_int_equal(pr1.n_points, n_grid + 1 + pr1.bridge_points);
    assert_true(bridged.lengths_ok);
    assert_true(bridged_barrier < 5.0);
    assert_true(bridged_train < 5.0);
    pf_profile_free(&plain.prof);
    pf_profile_free(&bridged.prof);
    free(theta);
    xor_free(&p);
}

/* ---- the commands ---------------------------------------------------------------------- */

static cJSON *read_json(const char *path)
{
    char *text;
    pf_error err;
    if (pf_read_file(path, &text, NULL, 1 << 24, &err)) fail_msg("%s", err.msg);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static double num(const cJSON *j, const char *a, const char *b)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b) o = cJSON_GetObjectItemCaseSensitive(o, b);
    if (!cJSON_IsNumber(o)) fail_msg("no number at %s.%s", a, b ? b : "");
    return o->valuedouble;
}

static int exists(const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return access(path, F_OK) == 0;
}

static char data_dir[512], ck_a[512], ck_b[512], ck_c[512];
static const char *common_opts =
    "--normalize none --lr 0.01 --batch 32 --beta-start 1e-4 --ratio 2 --max-beta 100 --quiet";

/* The XOR problem on disk: CSV data (exact floats, no normalization) and
 * the checkpoints A, B = A with reversed hidden units, C = another shuffle. */
static void write_problem(void)
{
    xor_problem p;
    xor_setup(&p);
    pf_error err;
    snprintf(data_dir, sizeof data_dir, "%s/xor", tmpdir);
    mkdir(data_dir, 0755);
    const pf_dataset *sets[2] = {&p.train, &p.test};
    const char *names[2] = {"train.csv", "test.csv"};
    for (int k = 0; k < 2; k++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", data_dir, names[k]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "x,y,label\n");
        for (size_t i = 0; i < sets[k]->n; i++)
            fprintf(f, "%.9g,%.9g,%d\n", sets[k]->x[2 * i], sets[k]->x[2 * i + 1], sets[k]->labels[i]);
        fclose(f);
    }
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.anchor, sizeof meta.anchor, "origin");
    snprintf(ck_a, sizeof ck_a, "%s/a.safetensors", tmpdir);
    snprintf(ck_b, sizeof ck_b, "%s/b.safetensors", tmpdir);
    snprintf(ck_c, sizeof ck_c, "%s/c.safetensors", tmpdir);
    assert_int_equal(pf_ckpt_write(ck_a, &p.arch, p.a, &meta, &err), PF_OK);
    assert_int_equal(pf_ckpt_write(ck_b, &p.arch, p.b, &meta, &err), PF_OK);
    /* C: swap hidden units pairwise (0<->1, 2<->3, ...) */
    float *c = malloc(p.arch.n_params * sizeof *c);
    memcpy(c, p.a, p.arch.n_params * sizeof *c);
    const pf_arch *A = &p.arch;
    for (int i = 0; i < HIDDEN; i++) {
        int j = i ^ 1;
        memcpy(c + A->w_off[0] + i * 2, p.a + A->w_off[0] + j * 2, 2 * sizeof *c);
        c[A->b_off[0] + i] = p.a[A->b_off[0] + j];
        for (int o = 0; o < 2; o++) c[A->w_off[1] + o * HIDDEN + i] = p.a[A->w_off[1] + o * HIDDEN + j];
    }
    assert_int_equal(pf_ckpt_write(ck_c, &p.arch, c, &meta, &err), PF_OK);
    free(c);
    xor_free(&p);
}

static void test_connect_pair(void **state)
{
    (void)state;
    run_result r;
    run(&r, "connect %s %s --data %s %s --out %s/ab", ck_a, ck_b, data_dir, common_opts, tmpdir);
    if (r.status != 0) fail_msg("connect failed (%d): %s", r.status, r.err);
    assert_non_null(strstr(r.out, "path barrier"));
    char path[700];
    snprintf(path, sizeof path, "%s/ab/summary.json", tmpdir);
    cJSON *s = read_json(path);
    double line = num(s, "line", "barrier_test"), bar = num(s, "path", "barrier_test");
    print_message("connect: straight line %.2f, path %.2f, %g points\n", line, bar, num(s, "path", "points"));
    assert_true(line > 20.0);
    assert_true(bar < 5.0);
    assert_true(num(s, "path", "barrier_train") < 5.0);
    assert_true(num(s, "line", "samples") == num(s, "path", "samples"));
    assert_true(num(s, "path", "final_distance") <= 0.01 * num(s, "distance", NULL) + 1e-9);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "path"),
                                                              "converged")));
    cJSON_Delete(s);
    /* path.csv: a header with the named columns, start + points + end */
    snprintf(path, sizeof path, "%s/ab/path.csv", tmpdir);
    char *csv;
    pf_error err;
    assert_int_equal(pf_read_file(path, &csv, NULL, 1 << 24, &err), PF_OK);
    assert_non_null(strstr(csv, "L2_strength,"));
    assert_non_null(strstr(csv, ",Class_1_Accuracy,"));
    assert_non_null(strstr(csv, ",dist_A,dist_B,"));
    assert_non_null(strstr(csv, ",path_length,"));
    assert_non_null(strstr(csv, "\n0,start,0,"));
    assert_non_null(strstr(csv, ",end,inf,"));
    free(csv);
    const char *figs[] = {"path_profile.png", "path_profile.pdf", "path_profile.svg", "path_beta.png",
                          "transitions.json"};
    for (int i = 0; i < 5; i++)
        if (!exists("%s/ab/%s", tmpdir, figs[i])) fail_msg("missing %s", figs[i]);

    /* rerun: the pair is done, nothing is recomputed */
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    run(&r, "connect %s %s --data %s %s --out %s/ab", ck_a, ck_b, data_dir, common_opts, tmpdir);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "(done before)"));
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_mtime == after.st_mtime && before.st_size == after.st_size);
    /* the folder of another pair is refused */
    run(&r, "connect %s %s --data %s %s --out %s/ab", ck_a, ck_c, data_dir, common_opts, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "summary.json"));
}

/* A table without one of its columns (by header name). */
static char *drop_column(const char *csv, const char *name)
{
    size_t n = strlen(csv);
    char *out = malloc(n + 1), *o = out;
    int skip = -1, col = 0, first_line = 1;
    const char *field = csv;
    for (const char *p = csv;; p++) {
        if (*p == ',' || *p == '\n' || *p == '\0') {
            size_t len = (size_t)(p - field);
            if (first_line && len == strlen(name) && strncmp(field, name, len) == 0) skip = col;
            if (col != skip) {
                memcpy(o, field, len), o += len;
                if (*p == ',') *o++ = ',';
            }
            if (*p == '\n') {
                if (o > out && o[-1] == ',') o--; /* the skipped column was the last */
                *o++ = '\n';
                col = 0, first_line = 0;
            } else {
                col++;
            }
            if (*p == '\0') break;
            field = p + 1;
        }
    }
    *o = '\0';
    return out;
}

/* kill -9 at random points of the work (after a random number of path
 * points, a random part of the next), rerun until done: path.csv (but its
 * seconds) and the barriers are those of an uninterrupted run, every row
 * once. With SGD and --keep-optimizer the momentum buffer carries across
 * betas, so the state must hold it (a pair of those could never resume). */
static void check_connect_resume(const char *name, const char *extra, int check_refusals)
{
    char opts[2048];
    snprintf(opts, sizeof opts, "%s %s --data %s %s %s", ck_a, ck_b, data_dir, common_opts, extra);
    run_result r;
    run(&r, "connect %s --out %s/%s-whole", opts, tmpdir, name);
    if (r.status != 0) fail_msg("%s: connect failed (%d): %s", name, r.status, r.err);
    char csv[700];
    snprintf(csv, sizeof csv, "%s/%s-cut/path.csv", tmpdir, name);
    int finished = 0, kills = 0, resumed = 0, refused = 0;
    for (int attempt = 0; attempt < 16 && !finished && kills < 6; attempt++) {
        int got = run_and_kill_after(csv, 1 + rand() % 3, "connect %s --out %s/%s-cut", opts, tmpdir, name);
        assert_true(got >= 0);
        finished = got == 1;
        if (got != 0) continue;
        kills++;
        resumed += exists("%s/%s-cut/state.bin", tmpdir, name); /* the next run picks it up */
        if (check_refusals && !refused && exists("%s/%s-cut/state.bin", tmpdir, name)) {
            /* a state is only taken up with the settings it was made with,
             * and a damaged one is refused, naming the file */
            assert_int_equal(shell("rm -rf %s/other && cp -r %s/%s-cut %s/other", tmpdir, tmpdir, name,
                                   tmpdir), 0);
            run(&r, "connect %s --rise 0.7 --out %s/other", opts, tmpdir);
            assert_int_equal(r.status, 2);
            assert_non_null(strstr(r.err, "state.bin"));
            assert_non_null(strstr(r.err, "other settings"));
            assert_int_equal(shell("printf 'X' | dd of=%s/other/state.bin bs=1 seek=200 conv=notrunc "
                                   "2>/dev/null", tmpdir), 0);
            run(&r, "connect %s --out %s/other", opts, tmpdir);
            assert_int_equal(r.status, 2);
            assert_non_null(strstr(r.err, "checksum"));
            refused = 1;
        }
    }
    if (!finished) {
        run(&r, "connect %s --out %s/%s-cut", opts, tmpdir, name);
        if (r.status != 0) fail_msg("%s: the resumed connect failed (%d): %s", name, r.status, r.err);
    }
    char path[700];
    pf_error err;
    print_message("%s: connect killed %d times, %d of them with a state to resume from\n", name, kills,
                  resumed);
    assert_true(kills >= 2);
    assert_true(resumed >= 1);
    assert_false(exists("%s/%s-cut/state.bin", tmpdir, name)); /* spent once the pair is done */
    char *whole, *cut;
    snprintf(path, sizeof path, "%s/%s-whole/path.csv", tmpdir, name);
    assert_int_equal(pf_read_file(path, &whole, NULL, 1 << 24, &err), PF_OK);
    snprintf(path, sizeof path, "%s/%s-cut/path.csv", tmpdir, name);
    assert_int_equal(pf_read_file(path, &cut, NULL, 1 << 24, &err), PF_OK);
    char *w = drop_column(whole, "seconds"), *c = drop_column(cut, "seconds");
    assert_null(strstr(w, ",seconds"));
    if (strcmp(w, c) != 0) {
        /* name the first line that differs, in both versions */
        const char *lw = w, *lc = c;
        int line = 1;
        for (const char *p = w, *q = c; *p && *p == *q; p++, q++)
            if (*p == '\n') line++, lw = p + 1, lc = q + 1;
        fail_msg("%s: the resumed path.csv differs from the uninterrupted one at line %d:\n  whole: %.*s\n"
                 "  cut:   %.*s", name, line, (int)strcspn(lw, "\n"), lw, (int)strcspn(lc, "\n"), lc);
    }
    free(whole), free(cut), free(w), free(c);
    snprintf(path, sizeof path, "%s/%s-whole/summary.json", tmpdir, name);
    cJSON *sw = read_json(path);
    snprintf(path, sizeof path, "%s/%s-cut/summary.json", tmpdir, name);
    cJSON *sc = read_json(path);
    assert_true(num(sw, "path", "barrier_test") == num(sc, "path", "barrier_test"));
    assert_true(num(sw, "path", "barrier_train") == num(sc, "path", "barrier_train"));
    assert_true(num(sw, "path", "samples") == num(sc, "path", "samples"));
    assert_true(num(sw, "path", "length") == num(sc, "path", "length"));
    cJSON_Delete(sw);
    cJSON_Delete(sc);
    if (check_refusals) assert_true(refused);
}

static void test_connect_resume_after_kill(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ 0x5eedu);
    check_connect_resume("adam", "", 1);
    check_connect_resume("sgd-keep", "--optimizer sgd --lr 0.05 --keep-optimizer", 0);
}

/* path.csv without the columns measured on the test set (and wall time). */
static char *without_test_columns(const char *csv)
{
    static const char *const drop[] = {"Test_Loss", "Test_Accuracy", "Test_Error", "Class_0_Accuracy",
                                       "Class_1_Accuracy", "segment_max_test_error", "seconds"};
    char *t = malloc(strlen(csv) + 1);
    strcpy(t, csv);
    for (size_t k = 0; k < sizeof drop / sizeof *drop; k++) {
        char *u = drop_column(t, drop[k]);
        free(t);
        t = u;
    }
    return t;
}

/* No decision of a path looks at the test set: with the test labels
 * flipped, the path (betas, steps, retries, jumps, bridges, training and
 * validation columns) is the same; only the test columns change. Steered by
 * the test error, as it once was, the flipped labels change the schedule. */
static void test_paths_ignore_test_data(void **state)
{
    (void)state;
    char flip[700], cmd[4096];
    snprintf(flip, sizeof flip, "%s/xor-flip", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/train.csv %s/ && awk -F, 'NR == 1 {print; next} "
             "{print $1 \",\" $2 \",\" 1 - $3}' %s/test.csv > %s/test.csv", flip, data_dir, flip, data_dir,
             flip);
    assert_int_equal(shell("%s", cmd), 0);
    const char *modes[2] = {"", "--val-fraction 0.25"};
    for (int m = 0; m < 2; m++) {
        run_result r;
        char *csv[2];
        for (int d = 0; d < 2; d++) {
            run(&r, "connect %s %s --data %s %s %s --error-jump 0.2 --out %s/steer%d%d", ck_a, ck_b,
                d ? flip : data_dir,
                common_opts, modes[m], tmpdir, m, d);
            if (r.status != 0) fail_msg("connect %s failed (%d): %s", modes[m], r.status, r.err);
            char path[700];
            pf_error err;
            snprintf(path, sizeof path, "%s/steer%d%d/path.csv", tmpdir, m, d);
            assert_int_equal(pf_read_file(path, &csv[d], NULL, 1 << 24, &err), PF_OK);
        }
        assert_true(strcmp(csv[0], csv[1]) != 0); /* the test columns did change */
        assert_int_equal(strstr(csv[0], "Val_Error") != NULL, m == 1);
        char *a = without_test_columns(csv[0]), *b = without_test_columns(csv[1]);
        if (strcmp(a, b) != 0) fail_msg("%s: the path depends on the test labels", m ? modes[m] : "train");
        free(a), free(b), free(csv[0]), free(csv[1]);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/steer10/summary.json", tmpdir);
    cJSON *s = read_json(path);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "settings"), "data");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "steering")),
                        "validation split");
    cJSON_Delete(s);
}

static void test_connect_many(void **state)
{
    (void)state;
    run_result r;
    run(&r, "connect %s %s %s --data %s %s --segment-points 2 --out %s/all", ck_a, ck_b, ck_c, data_dir,
        common_opts, tmpdir);
    if (r.status != 0) fail_msg("connect (3 models) failed (%d): %s", r.status, r.err);
    assert_true(exists("%s/all/pair_0_1/summary.json", tmpdir));
    assert_true(exists("%s/all/pair_0_2/summary.json", tmpdir));
    assert_true(exists("%s/all/pair_1_2/path_profile.png", tmpdir));
    char path[700];
    snprintf(path, sizeof path, "%s/all/summary.json", tmpdir);
    cJSON *s = read_json(path);
    cJSON *pairs = cJSON_GetObjectItemCaseSensitive(s, "pairs");
    assert_int_equal(cJSON_GetArraySize(pairs), 3);
    cJSON_Delete(s);
    snprintf(path, sizeof path, "%s/all/summary.csv", tmpdir);
    char *csv;
    pf_error err;
    assert_int_equal(pf_read_file(path, &csv, NULL, 1 << 20, &err), PF_OK);
    assert_int_equal(count_lines(csv), 4);
    assert_non_null(strstr(csv, "distance,line_barrier_test,line_barrier_train,path_barrier_test"));
    free(csv);
    /* resume: remove one pair's summary; only that pair runs again */
    snprintf(path, sizeof path, "%s/all/pair_0_2/summary.json", tmpdir);
    unlink(path);
    run(&r, "connect %s %s %s --data %s %s --segment-points 2 --out %s/all", ck_a, ck_b, ck_c, data_dir,
        common_opts, tmpdir);
    assert_int_equal(r.status, 0);
    const char *p = r.out;
    int done_before = 0;
    while ((p = strstr(p, "(done before)"))) done_before++, p++;
    assert_int_equal(done_before, 2);
    assert_true(exists("%s/all/pair_0_2/summary.json", tmpdir));
    /* a star from model 1 */
    run(&r, "connect %s %s %s --data %s %s --segment-points 1 --star 1 --max-points 4 --out %s/star", ck_a,
        ck_b, ck_c, data_dir, common_opts, tmpdir);
    assert_int_equal(r.status, 0);
    assert_true(exists("%s/star/pair_1_0/summary.json", tmpdir));
    assert_true(exists("%s/star/pair_1_2/summary.json", tmpdir));
    assert_false(exists("%s/star/pair_0_2", tmpdir));
}

static void test_probe_and_hessian(void **state)
{
    (void)state;
    run_result r;
    run(&r, "probe --anchor %s --from %s --data %s %s --max-points 12 --hessian 0 --out %s/probe",
        ck_b, ck_a, data_dir, common_opts, tmpdir);
    if (r.status != 0) fail_msg("probe failed (%d): %s", r.status, r.err);
    assert_non_null(strstr(r.out, "Transitions crossed"));
    char path[700];
    snprintf(path, sizeof path, "%s/probe/transitions.json", tmpdir);
    cJSON *t = read_json(path);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "transitions")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "phases")));
    cJSON_Delete(t);
    snprintf(path, sizeof path, "%s/probe/path.csv", tmpdir);
    char *csv;
    pf_error err;
    assert_int_equal(pf_read_file(path, &csv, NULL, 1 << 24, &err), PF_OK);
    assert_non_null(strstr(csv, ",lambda_min_E,lambda_max_E,lambda_min_L,lambda_max_L,"));
    /* the start row (A itself, beta 0) and the end row (B) carry the extreme
     * eigenvalues that `pathfinder hessian` finds at those checkpoints */
    char *lines[64] = {0};
    int nl = 0;
    for (char *q = csv; q && *q && nl < 64; q = strchr(q, '\n') ? strchr(q, '\n') + 1 : NULL) lines[nl++] = q;
    for (int i = 0; i < nl; i++) {
        char *e = strchr(lines[i], '\n');
        if (e) *e = '\0';
    }
    assert_true(nl >= 3);
    const char *ends[2] = {ck_a, ck_b};
    const char *rows[2] = {lines[1], NULL};
    for (int i = nl - 1; i > 0 && !rows[1]; i--)
        if (strstr(lines[i], ",end,")) rows[1] = lines[i];
    assert_non_null(rows[1]);
    for (int e = 0; e < 2; e++) {
        double v[64];
        int nv = 0;
        for (const char *q = rows[e]; q && nv < 64; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
            v[nv++] = strtod(q, NULL);   /* the kind column reads as 0 */
        double min_e = v[nv - 5], max_e = v[nv - 4];
        run_result h;
        run(&h, "hessian %s --data %s --normalize none --k 1 --beta 0 --json --quiet", ends[e], data_dir);
        assert_int_equal(h.status, 0);
        const char *pm = strstr(h.out, "\"lambda_min_E\":"), *px = strstr(h.out, "\"lambda_max_E\":");
        assert_non_null(pm);
        assert_non_null(px);
        double hm = strtod(pm + 15, NULL), hx = strtod(px + 15, NULL);
        double scale = fmax(fabs(hx), 1e-12);
        if (fabs(hm - min_e) > 1e-3 * scale || fabs(hx - max_e) > 1e-3 * scale)
            fail_msg("%s row: path.csv has lambda %g..%g, `hessian` finds %g..%g", e ? "end" : "start",
                     min_e, max_e, hm, hx);
    }
    free(csv);
    /* two anchors: one probe each, in anchor_<k>/; the first equals the
     * single probe above */
    run(&r, "probe --anchor %s,%s --from %s --data %s %s --max-points 12 --hessian 0 --out %s/probe2",
        ck_b, ck_c, ck_a, data_dir, common_opts, tmpdir);
    if (r.status != 0) fail_msg("probe with two anchors failed (%d): %s", r.status, r.err);
    assert_true(exists("%s/probe2/anchor_0/path.csv", tmpdir));
    assert_true(exists("%s/probe2/anchor_1/path.csv", tmpdir));
    char *one, *first;
    snprintf(path, sizeof path, "%s/probe/path.csv", tmpdir);
    assert_int_equal(pf_read_file(path, &one, NULL, 1 << 24, &err), PF_OK);
    snprintf(path, sizeof path, "%s/probe2/anchor_0/path.csv", tmpdir);
    assert_int_equal(pf_read_file(path, &first, NULL, 1 << 24, &err), PF_OK);
    strip_seconds(one);
    strip_seconds(first);
    assert_string_equal(one, first);
    free(one);
    free(first);
}

/* Malformed, mismatched, missing checkpoints and bad options: exit 2, one
 * line naming the file. */
static void test_bad_inputs(void **state)
{
    (void)state;
    char garbage[600], missing[600], other[600];
    snprintf(garbage, sizeof garbage, "%s/garbage.safetensors", tmpdir);
    FILE *f = fopen(garbage, "w");
    fputs("not a checkpoint, just some text", f);
    fclose(f);
    snprintf(missing, sizeof missing, "%s/missing.safetensors", tmpdir);
    /* another architecture */
    snprintf(other, sizeof other, "%s/other.safetensors", tmpdir);
    pf_arch A;
    pf_error err;
    int sizes[3] = {2, 8, 2};
    pf_act acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    assert_int_equal(pf_arch_init(&A, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    float *th = calloc(A.n_params, sizeof *th);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    assert_int_equal(pf_ckpt_write(other, &A, th, &meta, &err), PF_OK);
    free(th);

    struct {
        const char *a, *b, *named;
    } files[] = {
        {ck_a, missing, missing}, {missing, ck_a, missing}, {ck_a, garbage, garbage},
        {garbage, ck_b, garbage}, {ck_a, other, other},     {other, ck_a, ck_a},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        run_result r;
        run(&r, "connect %s %s --data %s --out %s/bad", files[i].a, files[i].b, data_dir, tmpdir);
        if (r.status != 2 || !strstr(r.err, files[i].named) || count_lines(r.err) != 1)
            fail_msg("connect %s %s: exit %d, stderr '%s'", files[i].a, files[i].b, r.status, r.err);
    }
    run_result r;
    run(&r, "probe --anchor %s --from %s --data %s --out %s/bad", other, ck_a, data_dir, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, other)); /* --from defines the model; the anchor must match */
    /* a model that does not fit the data */
    char mnist_like[600];
    snprintf(mnist_like, sizeof mnist_like, "%s/wide.safetensors", tmpdir);
    int s2[3] = {3, 4, 2};
    assert_int_equal(pf_arch_init(&A, 2, s2, acts, 1, PF_LOSS_CE, &err), PF_OK);
    th = calloc(A.n_params, sizeof *th);
    th[0] = 1;
    assert_int_equal(pf_ckpt_write(mnist_like, &A, th, &meta, &err), PF_OK);
    th[0] = 2;
    char mnist_like2[600];
    snprintf(mnist_like2, sizeof mnist_like2, "%s/wide2.safetensors", tmpdir);
    assert_int_equal(pf_ckpt_write(mnist_like2, &A, th, &meta, &err), PF_OK);
    free(th);
    run(&r, "connect %s %s --data %s --normalize none --out %s/bad", mnist_like, mnist_like2, data_dir, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, mnist_like));
    assert_int_equal(count_lines(r.err), 1);

    const char *bad[] = {
        "connect A.safetensors --out x",
        "connect A.safetensors B.safetensors",
        "connect A.safetensors B.safetensors --out x --segment-points -1",
        "connect A.safetensors B.safetensors --out x --ratio 0.5",
        "connect A.safetensors B.safetensors --out x --ratio 1.2 --min-ratio 1.5",
        "connect A.safetensors B.safetensors --out x --star 2",
        "connect A.safetensors B.safetensors --out x --tol 0",
        "connect A.safetensors B.safetensors --out x --arch 2,4,2",
        "connect A.safetensors B.safetensors --out x --anchor B.safetensors",
        "connect A.safetensors B.safetensors --out x --bogus",
        "connect A.safetensors B.safetensors --out x --beta 1:0",
        "connect A.safetensors B.safetensors --out x --bridge-depth 11",
        "connect A.safetensors B.safetensors --out x --bridge-barrier -1",
        "connect A.safetensors B.safetensors --out x --encoded-fraction 1.5",
        "connect A.safetensors B.safetensors --out x --encoded-threshold 101",
        "probe --from A.safetensors --out x",
        "probe --anchor A.safetensors --out x",
        "probe --anchor A.safetensors --from B.safetensors --out x C.safetensors",
        "train --seeds 0-2 --out x.safetensors",
        "train --seeds 3-1 --out x{seed}.safetensors",
        "train --seeds 0,a --out x{seed}.safetensors",
        "train --seed 1 --seeds 0-1 --out x{seed}.safetensors",
        "train --out x{seed}.safetensors",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        run(&r, "%s", bad[i]);
        if (r.status != 2) fail_msg("'%s': exit %d, stderr '%s'", bad[i], r.status, r.err);
    }
    run(&r, "connect --help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Exit status"));
    assert_non_null(strstr(r.out, "ratio - 1) halved")); /* the schedule's rule is documented */
    run(&r, "probe --help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: pathfinder probe"));
}

/* train --seeds: one file per seed, existing ones skipped. */
static void test_train_seeds(void **state)
{
    (void)state;
    run_result r;
    const char *opts = "--arch 2,6,2 --act tanh --max-epochs 2 --normalize none --quiet";
    /* the folder does not exist yet: it is made */
    run(&r, "train --data %s %s --seeds 0-2 --out %s/minima/s{seed}.safetensors", data_dir, opts, tmpdir);
    if (r.status != 0) fail_msg("train --seeds failed: %s", r.err);
    assert_int_equal(count_lines(r.out), 3);
    for (int s = 0; s < 3; s++) assert_true(exists("%s/minima/s%d.safetensors", tmpdir, s));
    assert_null(strstr(r.out, "skipped"));
    /* different seeds, different models */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp -s %s/minima/s0.safetensors %s/minima/s1.safetensors", tmpdir, tmpdir);
    assert_int_not_equal(system(cmd), 0);
    struct stat before, after;
    char s0[700];
    snprintf(s0, sizeof s0, "%s/minima/s0.safetensors", tmpdir);
    assert_int_equal(stat(s0, &before), 0);
    snprintf(cmd, sizeof cmd, "%s/minima/s1.safetensors", tmpdir);
    unlink(cmd);
    run(&r, "train --data %s %s --seeds 0,1,2,3 --out %s/minima/s{seed}.safetensors", data_dir, opts,
        tmpdir);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), 4);
    int skipped = 0;
    for (const char *p = r.out; (p = strstr(p, "\"skipped\":true")); p++) skipped++;
    assert_int_equal(skipped, 2);
    for (int s = 0; s < 4; s++) assert_true(exists("%s/minima/s%d.safetensors", tmpdir, s));
    assert_int_equal(stat(s0, &after), 0);
    assert_true(before.st_mtime == after.st_mtime && before.st_size == after.st_size);
    /* the models connect */
    run(&r, "connect %s/minima/s0.safetensors %s/minima/s2.safetensors --data %s %s --max-points 3 "
            "--segment-points 1 --out %s/seeds_path", tmpdir, tmpdir, data_dir, common_opts, tmpdir);
    if (r.status != 0) fail_msg("connect of trained seeds failed: %s", r.err);
}

static int setup(void **state)
{
    (void)state;
    return tool_setup("connect");
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("PF_KEEP_TMP")) return 0;
    return tool_teardown();
}

static void test_write_problem(void **state)
{
    (void)state;
    write_problem();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lerp_and_barrier),
        cmocka_unit_test(test_certify_known_profile),
        cmocka_unit_test(test_schedule_rule),
        cmocka_unit_test(test_permutation_path),
        cmocka_unit_test(test_bridge_over_a_snap),
        cmocka_unit_test(test_write_problem),
        cmocka_unit_test(test_connect_pair),
        cmocka_unit_test(test_connect_resume_after_kill),
        cmocka_unit_test(test_paths_ignore_test_data),
        cmocka_unit_test(test_connect_many),
        cmocka_unit_test(test_probe_and_hessian),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_train_seeds),
    };
    return cmocka_run_group_tests_name("connect", tests, setup, teardown);
}
