/* Pathfinder paths: interpolation, segment certification, barriers, the
 * adaptive beta schedule and the warm-started path tracer.
 *
 * A path is the sequence theta_0 = start, theta_i = argmin L_beta_i warm-
 * started from theta_{i-1}, with L_beta = E + (beta/2)||theta - anchor||^2
 * and beta rising. Its length is sum_i ||theta_i - theta_{i-1}||. Along it
 * the error is checked on the straight segments theta_{i-1} -> theta_i, so
 * a path that hops over a high-error ridge between two low-error points is
 * caught. The barrier of an error profile e along a path from A to B is
 * max e - max(e(A), e(B)). Every decision is taken on training data (the
 * steering error, pf_path_sample): a path chosen by its test error would
 * overstate how well its models generalize.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

void pf_lerp(float *out, const float *a, const float *b, size_t n, double t)
{
    float ft = (float)t, fs = (float)(1.0 - t);
    for (size_t i = 0; i < n; i++) out[i] = fs * a[i] + ft * b[i];
}

/* ---- measuring -------------------------------------------------------------- */

static double eval_error(const pf_eval *e)
{
    return e->n_classes > 0 ? 100.0 - e->accuracy : e->loss;
}

void pf_path_sample_from_evals(const pf_eval *train, const pf_eval *val, const pf_eval *test,
                               pf_path_sample *out)
{
    out->train_error = eval_error(train);
    out->train_loss = train->loss;
    if (val && val->n) {
        out->val_error = eval_error(val);
        out->val_loss = val->loss;
    } else {
        out->val_error = out->val_loss = NAN;
    }
    if (test && test->n) {
        out->test_error = eval_error(test);
        out->test_loss = test->loss;
    } else {
        out->test_error = out->train_error;  /* no test set: report the training set's */
        out->test_loss = out->train_loss;
    }
}

void pf_path_sample_from_metrics(const pf_metrics *m, pf_path_sample *out)
{
    memset(out, 0, sizeof *out);
    pf_path_sample_from_evals(&m->train, &m->val, &m->test, out);
}

double pf_path_sample_steer(const pf_path_sample *s)
{
    return isnan(s->val_error) ? s->train_error : s->val_error;
}

int pf_sample_datasets(void *ctx, const float *theta, pf_path_sample *out, pf_error *err)
{
    pf_sample_data *d = ctx;
    pf_eval tr, va, te;
    int has_val = d->val && d->val->n, has_test = d->test && d->test->n;
    int rc = pf_evaluate(d->work, theta, d->train, &tr, err);
    if (!rc && has_val) rc = pf_evaluate(d->work, theta, d->val, &va, err);
    if (!rc && has_test) rc = pf_evaluate(d->work, theta, d->test, &te, err);
    if (rc) return rc;
    pf_path_sample_from_evals(&tr, has_val ? &va : NULL, has_test ? &te : NULL, out);
    return PF_OK;
}

/* ---- segment certification ---------------------------------------------------- */

void pf_certify_config_default(pf_certify_config *c)
{
    c->interior = 5;
    c->rise = 0.5;
    c->levels = 3;
}

void pf_segment_free(pf_segment *s)
{
    free(s->samples);
    memset(s, 0, sizeof *s);
}

static int sample_at(const float *a, const float *b, size_t n, double t, float *buf,
                     pf_sample_fn measure, void *ctx, pf_path_sample *out, pf_error *err)
{
    pf_lerp(buf, a, b, n, t);
    memset(out, 0, sizeof *out);
    out->val_error = out->val_loss = NAN;   /* a measure without a validation split leaves them */
    int rc = measure(ctx, buf, out, err);
    out->t = t;
    return rc;
}

/* Sample i is a peak worth chasing: above the threshold in the steering
 * error, and not below either neighbour in it. */
static int is_peak(const pf_path_sample *s, long i, double thr)
{
    double e = pf_path_sample_steer(&s[i]);
    return e > thr && e >= pf_path_sample_steer(&s[i - 1]) && e >= pf_path_sample_steer(&s[i + 1]);
}

int pf_certify_segment(const float *a, const float *b, size_t n_params, const pf_path_sample *at_a,
                       const pf_path_sample *at_b, const pf_certify_config *cfg,
                       pf_sample_fn measure, void *ctx, pf_segment *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    if (cfg->interior < 0 || cfg->levels < 0 || !(cfg->rise >= 0))
        return pf_fail(err, PF_EINPUT, "certification needs interior >= 0, levels >= 0, rise >= 0");
    long m = cfg->interior;
    /* each round adds at most two samples per interior sample present */
    long cap = m + 2;
    for (int l = 0; l < cfg->levels; l++) cap = cap * 3;
    if (cap > m + 2 + 4096) cap = m + 2 + 4096;
    pf_path_sample *s = malloc((size_t)cap * sizeof *s);
    unsigned char *fresh = malloc((size_t)cap);
    float *buf = malloc((n_params ? n_params : 1) * sizeof *buf);
    int rc = PF_OK;
    if (!s || !fresh || !buf) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory certifying a segment");
        goto fail;
    }
    long n = 0;
    s[n] = *at_a;
    s[n++].t = 0.0;
    for (long k = 1; k <= m; k++, n++)
        if ((rc = sample_at(a, b, n_params, (double)k / (double)(m + 1), buf, measure, ctx, &s[n], err)))
            goto fail;
    s[n] = *at_b;
    s[n++].t = 1.0;
    memset(fresh, 1, (size_t)n);
    double thr = fmax(pf_path_sample_steer(at_a), pf_path_sample_steer(at_b)) + cfg->rise;
    for (int level = 0; level < cfg->levels; level++) {
        /* midpoints beside every fresh peak, each sub-segment at most once */
        long n_new = 0, n0 = n;
        for (long i = 1; i + 1 < n0; i++) {
            if (!fresh[i] || !is_peak(s, i, thr)) continue;
            for (int side = -1; side <= 1; side += 2) {
                long j = i + side;
                double t = 0.5 * (s[i].t + s[j].t);
                int seen = 0;
                for (long k = n0; k < n; k++) seen |= s[k].t == t;
                if (seen || n >= cap) continue;
                if ((rc = sample_at(a, b, n_params, t, buf, measure, ctx, &s[n], err))) goto fail;
                n++;
                n_new++;
            }
        }
        if (n_new == 0) break;
        out->n_refined += n_new;
        /* sort the new samples into place; only they can be chased further */
        for (long k = 0; k < n0; k++) fresh[k] = 0;
        for (long k = n0; k < n; k++) fresh[k] = 1;
        /* an insertion sort keeps fresh[] aligned with s[] */
        for (long k = 1; k < n; k++) {
            pf_path_sample x = s[k];
            unsigned char f = fresh[k];
            long j = k - 1;
            while (j >= 0 && s[j].t > x.t) {
                s[j + 1] = s[j];
                fresh[j + 1] = fresh[j];
                j--;
            }
            s[j + 1] = x;
            fresh[j + 1] = f;
        }
    }
    out->n = n;
    out->samples = s;
    out->max_train_error = -INFINITY;
    out->max_test_error = -INFINITY;
    out->max_val_error = isnan(at_a->val_error) ? NAN : -INFINITY;
    for (long k = 0; k < n; k++) {
        out->max_train_error = fmax(out->max_train_error, s[k].train_error);
        out->max_test_error = fmax(out->max_test_error, s[k].test_error);
        if (!isnan(s[k].val_error)) out->max_val_error = fmax(out->max_val_error, s[k].val_error);
    }
    free(fresh);
    free(buf);
    return PF_OK;
fail:
    free(s);
    free(fresh);
    free(buf);
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- profiles and barriers ----------------------------------------------------- */

void pf_profile_free(pf_profile *p)
{
    free(p->s);
    free(p->train_error);
    free(p->test_error);
    free(p->val_error);
    free(p->node);
    memset(p, 0, sizeof *p);
}

static int profile_reserve(pf_profile *p, long more, pf_error *err)
{
    if (p->n + more <= p->cap) return PF_OK;
    long cap = p->cap ? p->cap : 64;
    while (cap < p->n + more) cap *= 2;
    double *s = realloc(p->s, (size_t)cap * sizeof *s);
    if (s) p->s = s;
    double *tr = s ? realloc(p->train_error, (size_t)cap * sizeof *tr) : NULL;
    if (tr) p->train_error = tr;
    double *te = tr ? realloc(p->test_error, (size_t)cap * sizeof *te) : NULL;
    if (te) p->test_error = te;
    double *ve = te ? realloc(p->val_error, (size_t)cap * sizeof *ve) : NULL;
    if (ve) p->val_error = ve;
    unsigned char *nd = ve ? realloc(p->node, (size_t)cap) : NULL;
    if (!nd) return pf_fail(err, PF_ERUNTIME, "out of memory for a path profile");
    p->node = nd;
    p->cap = cap;
    return PF_OK;
}

int pf_profile_add(pf_profile *p, const pf_segment *seg, double s0, double length, int skip_first,
                   pf_error *err)
{
    int rc = profile_reserve(p, seg->n, err);
    if (rc) return rc;
    for (long k = skip_first ? 1 : 0; k < seg->n; k++) {
        const pf_path_sample *x = &seg->samples[k];
        p->s[p->n] = s0 + x->t * length;
        p->train_error[p->n] = x->train_error;
        p->test_error[p->n] = x->test_error;
        p->val_error[p->n] = x->val_error;
        p->node[p->n] = x->t == 0.0 || x->t == 1.0;
        p->n++;
    }
    return PF_OK;
}

double pf_error_barrier(const double *e, long n)
{
    if (n < 1) return 0.0;
    double top = e[0];
    for (long i = 1; i < n; i++) top = fmax(top, e[i]);
    return top - fmax(e[0], e[n - 1]);
}

/* ---- the adaptive schedule ---------------------------------------------------- */

void pf_schedule_config_default(pf_schedule_config *c)
{
    c->beta_start = 1e-8;
    c->ratio = 1.5;
    c->max_ratio = 1.5;
    c->min_ratio = 1.01;
    c->max_beta = 1.0;
    c->step_cap = INFINITY;
    c->error_jump = 3.0;
    c->tol = 0.0;
    c->max_points = 200;
}

void pf_schedule_init(pf_schedule *s, const pf_schedule_config *c)
{
    memset(s, 0, sizeof *s);
    s->ratio = c->ratio;
    s->beta = c->beta_start / c->ratio;
}

double pf_schedule_next(const pf_schedule *s) { return s->beta * s->ratio; }

int pf_schedule_judge(pf_schedule *s, const pf_schedule_config *c, double beta, double move,
                      double rise)
{
    /* badness > 1: too far or too much worse */
    double bad = fmax(move / c->step_cap, rise / c->error_jump);
    int hard = bad > 1.0;
    if (hard && s->ratio > c->min_ratio) {
        if (s->first_bad == 0) {
            s->first_bad = bad;
            s->ratio_before = s->ratio;
        }
        s->ratio = fmax(1.0 + 0.5 * (s->ratio - 1.0), c->min_ratio);
        s->rejected++;
        return PF_STEP_RETRY;
    }
    s->beta = beta;
    s->accepted++;
    int verdict = PF_STEP_ACCEPT, easy = 0;
    if (hard && s->first_bad > 0 && bad > 0.7 * s->first_bad) {
        /* smaller beta steps went about as far: the move is not theirs
         * (noise, or a jump that any step past it makes); go back to the
         * ratio before the retries */
        s->ratio = s->ratio_before;
        s->drift++;
        verdict = PF_STEP_DRIFT;
    } else if (hard) {
        /* it shrank with the beta step but not enough: a steep stretch or
         * a first-order jump; stay at the small ratio */
        s->forced++;
        verdict = PF_STEP_FORCED;
    } else {
        easy = s->first_bad == 0 && move <= 0.5 * c->step_cap && rise <= 0.5 * c->error_jump;
    }
    s->easy = easy ? s->easy + 1 : 0;
    if (s->easy >= 2) {
        s->ratio = fmin(1.0 + 2.0 * (s->ratio - 1.0), fmax(c->max_ratio, c->ratio));
        s->easy = 0;
    }
    s->first_bad = 0;
    return verdict;
}

/* ---- the tracer ------------------------------------------------------------------ */

static void sample_from_metrics(const pf_metrics *m, pf_path_sample *s)
{
    pf_path_sample_from_metrics(m, s);
}

/* How far a segment's steering error climbs above the higher of two
 * endpoints'. */
static double climb(const pf_segment *seg, const pf_path_sample *a, const pf_path_sample *b)
{
    double top = isnan(a->val_error) ? seg->max_train_error : seg->max_val_error;
    return top - fmax(pf_path_sample_steer(a), pf_path_sample_steer(b));
}

/* Where a leg's points go: the caller's on_point for the main path, a
 * buffer for a bridge until it is judged. */
typedef int (*emit_fn)(void *ctx, pf_path_point *p, const float *theta, pf_error *err);

typedef struct {
    pf_trainer *t;
    const pf_dataset *train, *test;
    const pf_train_config *base;
    const pf_path_config *pc;
    const float *start, *anchor;   /* the whole path's */
    double distance;               /* ||start - anchor|| */
    pf_path_result *out;
    pf_path_point_fn on_point;
    void *ctx;
} tracer;

/* A bridge's points, held until the bridge is judged. */
typedef struct {
    long n, cap;
    pf_path_point *pts;  /* segments owned */
    float *thetas;       /* n x n_params */
    size_t n_params;
} point_buffer;

static void buffer_free(point_buffer *b)
{
    for (long i = 0; i < b->n; i++) pf_segment_free(&b->pts[i].segment);
    free(b->pts);
    free(b->thetas);
    memset(b, 0, sizeof *b);
}

static int buffer_add(void *ctx, pf_path_point *p, const float *theta, pf_error *err)
{
    point_buffer *b = ctx;
    if (b->n == b->cap) {
        long cap = b->cap ? 2 * b->cap : 16;
        pf_path_point *pts = realloc(b->pts, (size_t)cap * sizeof *pts);
        if (pts) b->pts = pts;
        float *th = pts ? realloc(b->thetas, (size_t)cap * b->n_params * sizeof *th) : NULL;
        if (!th) return pf_fail(err, PF_ERUNTIME, "out of memory holding a bridge");
        b->thetas = th;
        b->cap = cap;
    }
    b->pts[b->n] = *p;
    memset(&p->segment, 0, sizeof p->segment);  /* the buffer owns the samples now */
    memcpy(b->thetas + (size_t)b->n * b->n_params, theta, b->n_params * sizeof *theta);
    b->n++;
    return PF_OK;
}

/* The main path's points go to the caller, numbered in path order. */
static int emit_main(void *ctx, pf_path_point *p, const float *theta, pf_error *err)
{
    tracer *tr = ctx;
    p->res.index = tr->out->n_points++;
    return tr->on_point ? tr->on_point(tr->ctx, p, theta, tr->t, err) : PF_OK;
}

typedef struct {
    float *m, *v;
    long step;
} optim_copy;

static void optim_save(optim_copy *c, const pf_optim *o, size_t n)
{
    c->step = o->step;
    if (o->m) memcpy(c->m, o->m, n * sizeof *c->m);
    if (o->v) memcpy(c->v, o->v, n * sizeof *c->v);
}

static void optim_restore(const optim_copy *c, pf_optim *o, size_t n)
{
    o->step = c->step;
    if (o->m) memcpy(o->m, c->m, n * sizeof *c->m);
    if (o->v) memcpy(o->v, c->v, n * sizeof *c->v);
}

static int trace_leg(tracer *tr, float *theta, const float *anchor, int depth, double length0,
                     const pf_path_sample *start_sample, emit_fn emit, void *ectx, double *end_length,
                     pf_error *err);

/* Try to bridge the segment prev -> cur (its certification in *seg, its
 * length *step): trace a path from prev anchored at cur, close it onto cur,
 * and if it climbs less than the segment, emit its points and hand back
 * the closing segment and its length in their place, and the bridge's own
 * length in *detour (0 if not bridged). The trainer's optimizer state is
 * as it was after cur was trained, either way. */
static int bridge(tracer *tr, const float *prev, const float *cur, const pf_path_sample *at_prev,
                  const pf_path_sample *at_cur, int depth, double length0, pf_segment *seg,
                  double *step, double *detour, emit_fn emit, void *ectx, pf_error *err)
{
    size_t n = tr->t->arch->n_params;
    pf_optim *o = &tr->t->optim;
    point_buffer buf = {0};
    buf.n_params = n;
    pf_segment close = {0};
    optim_copy saved = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), 0};
    float *theta = malloc(n * sizeof *theta);
    int rc = PF_OK;
    if (!saved.m || !saved.v || !theta) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory bridging a segment");
        goto done;
    }
    tr->out->bridges_tried++;
    optim_save(&saved, o, n);
    memcpy(theta, prev, n * sizeof *theta);
    double bridge_end = length0;
    if ((rc = trace_leg(tr, theta, cur, depth + 1, length0, at_prev, buffer_add, &buf, &bridge_end, err)))
        goto done;
    pf_sample_data sd = {&tr->t->eval_work, tr->train, tr->pc->val, tr->test};
    pf_path_sample at_last = *at_prev;
    if (buf.n > 0) {
        const pf_metrics *m = &buf.pts[buf.n - 1].res.m;
        sample_from_metrics(m, &at_last);
    }
    if ((rc = pf_certify_segment(theta, cur, n, &at_last, at_cur, &tr->pc->certify, pf_sample_datasets,
                                 &sd, &close, err)))
        goto done;
    double worst = climb(&close, at_prev, at_cur);
    for (long i = 0; i < buf.n; i++) worst = fmax(worst, climb(&buf.pts[i].segment, at_prev, at_cur));
    if (worst < climb(seg, at_prev, at_cur)) {
        for (long i = 0; i < buf.n && !rc; i++)
            rc = emit(ectx, &buf.pts[i], buf.thetas + (size_t)i * n, err);
        if (rc) goto done;
        tr->out->bridges++;
        tr->out->bridge_points += buf.n;
        pf_segment_free(seg);
        *seg = close;
        memset(&close, 0, sizeof close);
        *step = pf_distance(theta, cur, n);
        *detour = bridge_end - length0;
    }
done:
    if (saved.m) optim_restore(&saved, o, n);
    pf_segment_free(&close);
    buffer_free(&buf);
    free(saved.m);
    free(saved.v);
    free(theta);
    return rc;
}

/* One leg: from theta (whose sample is start_sample, already emitted) up the
 * beta schedule toward anchor, emitting every point. depth 0 is the main
 * path (its grid or the adaptive schedule), deeper legs are bridges. The
 * path's length so far is length0 (or the resumed state's); *end_length is
 * the length at the leg's last point, summed in the order the points came,
 * so that a resumed path ends on the very double an uninterrupted one does. */
static int trace_leg(tracer *tr, float *theta, const float *anchor, int depth, double length0,
                     const pf_path_sample *start_sample, emit_fn emit, void *ectx, double *end_length,
                     pf_error *err)
{
    const pf_path_config *pc = tr->pc;
    pf_trainer *t = tr->t;
    size_t n = t->arch->n_params;
    pf_schedule_config sc = pc->schedule;
    int adaptive = depth > 0 || pc->grid == NULL;
    if (depth > 0) {
        /* a bridge's moves and tolerance in proportion to its length */
        double scale = tr->distance > 0 ? pf_distance(theta, anchor, n) / tr->distance : 1.0;
        sc.step_cap *= scale;
        sc.tol *= scale;
    }
    float *prev = malloc(n * sizeof *prev);
    optim_copy saved = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), 0};
    int rc = PF_OK;
    pf_path_point p;
    memset(&p, 0, sizeof p);
    *end_length = length0;
    if (!prev || !saved.m || !saved.v) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory tracing a path");
        goto done;
    }
    memcpy(prev, theta, n * sizeof *theta);
    pf_sample_data sd = {&t->eval_work, tr->train, pc->val, tr->test};
    pf_path_sample prev_sample = *start_sample;
    double prev_r = pf_distance(theta, anchor, n);

    pf_schedule sched;
    pf_schedule_init(&sched, &sc);
    long gi = 0, points = 0;
    int retries = 0;
    double length = length0;
    const pf_path_state *resume = depth == 0 ? pc->resume : NULL;
    if (resume) {
        sched = resume->schedule;
        gi = resume->grid_index;
        points = resume->points - 1;
        length = resume->length;
        prev_r = resume->prev_r;
        prev_sample = resume->prev_sample;
    }
    while (1) {
        double beta;
        /* reached the anchor (checked here too so that a resumed path that
         * had reached it stops) */
        if (adaptive && points > 0 && prev_r <= sc.tol) break;
        if (adaptive) {
            if (points + 1 >= sc.max_points) break;
            beta = pf_schedule_next(&sched);
            if (beta > sc.max_beta) break;
        } else {
            if (gi >= pc->n_grid) break;
            beta = pc->grid[gi++];
        }
        if (adaptive) optim_save(&saved, &t->optim, n);
        pf_train_config cfg = *tr->base;
        cfg.beta = beta;
        cfg.anchor = anchor;
        pf_train_result res_train;
        if ((rc = pf_train_beta(t, theta, tr->train, &cfg, &res_train, err))) goto done;
        pf_point_result res;
        memset(&res, 0, sizeof res);
        if ((rc = pf_measure_split(&t->eval_work, theta, tr->train, pc->val, tr->test, anchor, beta,
                                    &res.m, err)))
            goto done;
        double step = pf_distance(theta, prev, n);
        pf_path_sample cur;
        sample_from_metrics(&res.m, &cur);
        int verdict = PF_STEP_ACCEPT;
        if (adaptive) {
            /* Judge the approach to the anchor, r_prev - r, not ||theta -
             * theta_prev||: minibatch training wanders in flat directions by
             * an amount set by the learning rate, not by beta, and that
             * wander barely changes r. Along a branch of minimizers r never
             * grows with beta (dr^2/dbeta = -2 (theta-c)' H_L^-1 (theta-c)),
             * so a growing r is the training's own doing (a start that is
             * still converging), not the step's. */
            double move = fmax(0.0, prev_r - res.m.r);
            verdict = pf_schedule_judge(&sched, &sc, beta, move, 
                                        pf_path_sample_steer(&cur) - pf_path_sample_steer(&prev_sample));
            if (verdict == PF_STEP_RETRY) {
                /* back to the previous point, optimizer state included */
                memcpy(theta, prev, n * sizeof *theta);
                optim_restore(&saved, &t->optim, n);
                retries++;
                tr->out->rejected++;
                continue;
            }
        }
        res.point.beta = beta;
        res.point.direction = 1;
        pf_point_from_train(&res, &res_train, beta);
        memset(&p, 0, sizeof p);
        p.res = res;
        p.bridge = depth;
        p.retries = retries;
        p.jump = verdict == PF_STEP_FORCED ? 1 : verdict == PF_STEP_DRIFT ? 2 : 0;
        tr->out->jumps += verdict == PF_STEP_FORCED;
        tr->out->drifts += verdict == PF_STEP_DRIFT;
        retries = 0;
        if ((rc = pf_certify_segment(prev, theta, n, &prev_sample, &cur, &pc->certify,
                                     pf_sample_datasets, &sd, &p.segment, err)))
            goto done;
        double detour = 0.0;
        if (depth < pc->bridge_depth && climb(&p.segment, &prev_sample, &cur) > pc->bridge_barrier &&
            (rc = bridge(tr, prev, theta, &prev_sample, &cur, depth, length, &p.segment, &step, &detour,
                         emit, ectx, err)))
            goto done;
        length += detour + step;
        p.dist_start = pf_distance(theta, tr->start, n);
        p.dist_anchor = pf_distance(theta, tr->anchor, n);
        p.step = step;
        p.length = length;
        points++;
        pf_path_state state;
        if (depth == 0) {
            /* as it will stand once this point is out */
            memset(&state, 0, sizeof state);
            state.schedule = sched;
            state.grid_index = gi;
            state.points = points + 1;
            state.length = length;
            state.prev_r = res.m.r;
            state.prev_sample = cur;
            state.result = *tr->out;
            state.result.n_points++;
            state.result.length = length;
            state.result.final_beta = beta;
            p.state = &state;
        }
        if ((rc = emit(ectx, &p, theta, err))) goto done;
        p.state = NULL;
        pf_segment_free(&p.segment);
        memcpy(prev, theta, n * sizeof *theta);
        prev_sample = cur;
        prev_r = res.m.r;
        if (depth == 0) tr->out->final_beta = beta;
    }
    *end_length = length;
done:
    pf_segment_free(&p.segment);
    free(prev);
    free(saved.m);
    free(saved.v);
    return rc;
}

int pf_path_trace(pf_trainer *t, float *theta, const float *anchor, const pf_dataset *train,
                  const pf_dataset *test, const pf_train_config *base, const pf_path_config *pc,
                  pf_path_point_fn on_point, void *ctx, pf_path_result *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    const pf_schedule_config *sc = &pc->schedule;
    int need_schedule = pc->grid == NULL || pc->bridge_depth > 0;
    if (need_schedule && (!(sc->beta_start > 0) || !(sc->ratio > 1) || !(sc->min_ratio > 1) ||
                          sc->min_ratio > sc->ratio || !(sc->max_beta > 0) || sc->max_points < 2))
        return pf_fail(err, PF_EINPUT, "bad schedule: need beta_start > 0, 1 < min_ratio <= ratio, "
                       "max_beta > 0 and at least 2 points");
    if (pc->grid && pc->n_grid < 1) return pf_fail(err, PF_EINPUT, "empty beta grid");
    if (pc->bridge_depth < 0 || !(pc->bridge_barrier >= 0))
        return pf_fail(err, PF_EINPUT, "bad bridges: need depth >= 0 and barrier >= 0");
    size_t n = t->arch->n_params;
    double t0 = pf_now();
    float *start = malloc(n * sizeof *start);
    int rc = PF_OK;
    pf_path_point p;
    memset(&p, 0, sizeof p);
    if (!start) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory tracing a path");
        goto done;
    }
    memcpy(start, pc->resume && pc->start ? pc->start : theta, n * sizeof *theta);
    tracer tr = {t, train, test, base, pc, start, anchor, pf_distance(start, anchor, n), out, on_point, ctx};
    pf_path_sample start_sample;
    double length0 = 0.0;
    if (pc->resume) {
        /* the start and the points up to the state are out already */
        *out = pc->resume->result;
        start_sample = pc->resume->prev_sample;
        length0 = pc->resume->length;
    } else {
        /* point 0: the start itself */
        if ((rc = pf_measure_split(&t->eval_work, theta, train, pc->val, test, anchor, 0.0, &p.res.m, err)))
            goto done;
        p.res.point.direction = 1;
        p.dist_anchor = p.res.m.r;
        sample_from_metrics(&p.res.m, &start_sample);
        p.segment.n = 1;
        p.segment.samples = &start_sample;
        p.segment.max_train_error = start_sample.train_error;
        p.segment.max_test_error = start_sample.test_error;
        p.segment.max_val_error = start_sample.val_error;
        if ((rc = emit_main(&tr, &p, theta, err))) goto done;
    }

    if ((rc = trace_leg(&tr, theta, anchor, 0, length0, &start_sample, emit_main, &tr, &out->length,
                        err)))
        goto done;
    out->converged = pf_distance(theta, anchor, n) <= sc->tol;
done:
    out->seconds = pf_now() - t0;
    free(start);
    return rc;
}
