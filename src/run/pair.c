/* Pathfinder paths into run folders: connect and probe.
 *
 * connect A B: start at A, anchor the L2 term at B, raise beta with warm
 * starts; the converged models form a path from A toward B, closed onto B
 * by a last straight segment. Every segment between consecutive points is
 * certified (error measured between the points, not only at them), and the
 * path's error barrier is set beside the straight line A -> B's, measured at
 * the same number of evenly spaced points. With more than two models it
 * connects every pair (or a star), one folder per pair, resumable.
 *
 * probe FROM ANCHOR: the same path, anchored at a model saved at a
 * transition (a saddle); the transitions it crosses on the way are detected
 * and explained as in a sweep.
 *
 * A pair's folder holds path.csv (rewritten atomically after every point),
 * state.bin (after every main-path point, for a rerun to continue from;
 * removed when the pair is done), transitions.json, profile.csv (the error
 * profiles of the path and the line), the figures path_profile.* and
 * path_beta.* (through the caller's hook), and summary.json, written last:
 * its presence marks the pair done. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "pathfinder/hessian.h"
#include "run/plan.h"
#include "run/report.h"

/* Read every model; the first defines the architecture, the others must
 * match it. Errors name the file. */
static int read_models(const pf_path_run_config *a, const char *const *paths, int n, pf_arch *arch,
                       float **thetas, pf_error *err)
{
    pf_arch fallback, got;
    const pf_arch *fb = NULL;
    int rc = pf_ckpt_read(paths[0], NULL, NULL, arch, &thetas[0], NULL, err);
    if (rc) return rc;
    if (a->act || a->loss) {
        fallback = *arch;
        if (a->act && (rc = pf_arch_set_acts(&fallback, a->act, err)))
            return rc;
        if (a->loss && pf_loss_from_name(a->loss, &fallback.loss))
            return pf_fail(err, PF_EINPUT, "--loss takes ce or mse, got '%s'", a->loss);
        fb = &fallback;
        free(thetas[0]);
        thetas[0] = NULL;
        if ((rc = pf_ckpt_read(paths[0], fb, NULL, arch, &thetas[0], NULL, err))) return rc;
    }
    for (int i = 1; i < n; i++)
        if ((rc = pf_ckpt_read(paths[i], arch, arch, &got, &thetas[i], NULL, err))) return rc;
    return PF_OK;
}

/* ---- one path ---------------------------------------------------------------------- */

/* What a pair's run leaves for the summary table. */
typedef struct {
    int i, j;
    const char *a, *b;
    char dir[4096];
    int skipped;
    double distance, line_test, line_train, path_test, path_train, length, total_length;
    double final_distance, seconds;
    long points, n_transitions;
    int converged;
} pair_summary;

typedef struct {
    double min_E, max_E, min_L, max_L;
    int converged;
} hessian_row;

typedef struct {
    const pf_path_run_config *a;
    const pf_arch *arch;
    const pf_dataset *train, *val, *test;
    const char *dir;
    const char *label;          /* "0-1" or "probe" */
    /* the rows so far */
    pf_path_point *rows;
    hessian_row *hess;
    long n, cap;
    pf_profile profile;
    pf_work hwork;              /* Hessian workspace (with --hessian) */
    double t0;
    uint32_t fingerprint;       /* of the settings, models and data (state.bin) */
} path_ctx;

/* A growing text buffer for the CSV tables. */
typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_printf(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(text_buf *t, const char *fmt, ...)
{
    if (t->oom) return;
    while (1) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int w = t->buf ? vsnprintf(t->buf + t->len, room, fmt, ap) : -1;
        va_end(ap);
        if (t->buf && w >= 0 && (size_t)w < room) {
            t->len += (size_t)w;
            return;
        }
        size_t cap = t->cap ? 2 * t->cap : 4096;
        while (w >= 0 && cap - t->len <= (size_t)w) cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

/* ",value" with 17 significant digits (a table read back is the same);
 * infinities as inf, like numpy and pandas read them. */
static void tb_num(text_buf *t, double v)
{
    if (isinf(v)) tb_printf(t, ",%sinf", v < 0 ? "-" : "");
    else tb_printf(t, ",%.17g", v);
}

/* path.csv: the whole table, rewritten atomically. */
static int write_path_csv(const path_ctx *c, pf_error *err)
{
    int K = c->n > 0 ? c->rows[0].res.m.test.n_classes : 0;
    text_buf t = {0};
    tb_printf(&t, "index,kind,L2_strength,Train_Loss,Train_Reg_Loss,Test_Loss,Train_Accuracy,"
                  "Test_Accuracy,Train_Error,Test_Error");
    for (int k = 0; k < K; k++) tb_printf(&t, ",Class_%d_Accuracy", k);
    tb_printf(&t, ",dist_A,dist_B,step,path_length,segment_samples,segment_refined,"
                  "segment_max_train_error,segment_max_test_error,epochs,retries,jump,seconds,bridge");
    int val = c->val && c->val->n;
    if (val) tb_printf(&t, ",Val_Loss,Val_Accuracy,Val_Error,segment_max_val_error");
    if (c->a->hessian_samples >= 0)
        tb_printf(&t, ",lambda_min_E,lambda_max_E,lambda_min_L,lambda_max_L,hessian_converged");
    tb_printf(&t, "\n");
    for (long i = 0; i < c->n; i++) {
        const pf_path_point *p = &c->rows[i];
        const pf_metrics *m = &p->res.m;
        pf_path_sample s;
        pf_path_sample_from_metrics(m, &s);
        const char *kind = i == 0                     ? "start"
                           : isinf(p->res.point.beta) ? "end"
                           : p->bridge                ? "bridge"
                                                      : "point";
        tb_printf(&t, "%ld,%s", i, kind);
        const double v1[] = {p->res.point.beta, m->train.loss, m->reg_loss, m->test.loss,
                             m->train.accuracy, m->test.accuracy, s.train_error, s.test_error};
        for (size_t k = 0; k < sizeof v1 / sizeof *v1; k++) tb_num(&t, v1[k]);
        for (int k = 0; k < K; k++) tb_num(&t, m->test.class_accuracy[k]);
        const double v2[] = {p->dist_start, p->dist_anchor, p->step, p->length, (double)p->segment.n,
                             (double)p->segment.n_refined, p->segment.max_train_error,
                             p->segment.max_test_error, (double)p->res.epochs, (double)p->retries,
                             (double)p->jump, p->res.seconds, (double)p->bridge};
        for (size_t k = 0; k < sizeof v2 / sizeof *v2; k++) tb_num(&t, v2[k]);
        if (val) {
            const double v3[] = {m->val.loss, m->val.accuracy, s.val_error, p->segment.max_val_error};
            for (size_t k = 0; k < 4; k++) tb_num(&t, v3[k]);
        }
        if (c->a->hessian_samples >= 0) {
            const hessian_row *h = &c->hess[i];
            const double v3[] = {h->min_E, h->max_E, h->min_L, h->max_L, (double)h->converged};
            for (size_t k = 0; k < 5; k++) tb_num(&t, v3[k]);
        }
        tb_printf(&t, "\n");
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/path.csv", c->dir);
    int rc = t.oom ? pf_fail(err, PF_ERUNTIME, "%s: out of memory", path)
                   : pf_write_file_atomic(path, t.buf, t.len, err);
    free(t.buf);
    return rc;
}

/* profile.csv: the error profiles of the path (its points and the
 * certification samples between them) and of the straight line A -> B at
 * the same density, against the distance travelled. */
static int write_profiles(const char *dir, const pf_profile *path, const pf_profile *line, pf_error *err)
{
    text_buf t = {0};
    tb_printf(&t, "curve,s,train_error,test_error,val_error,node\n");
    const pf_profile *curves[2] = {path, line};
    for (int k = 0; k < 2; k++)
        for (long i = 0; i < curves[k]->n; i++) {
            tb_printf(&t, "%s", k ? "line" : "path");
            tb_num(&t, curves[k]->s[i]);
            tb_num(&t, curves[k]->train_error[i]);
            tb_num(&t, curves[k]->test_error[i]);
            tb_num(&t, curves[k]->val_error[i]);
            tb_printf(&t, ",%d\n", curves[k]->node[i]);
        }
    char name[4200];
    snprintf(name, sizeof name, "%s/profile.csv", dir);
    int rc = t.oom ? pf_fail(err, PF_ERUNTIME, "%s: out of memory", name)
                   : pf_write_file_atomic(name, t.buf, t.len, err);
    free(t.buf);
    return rc;
}

/* ---- resuming a pair ------------------------------------------------------------- */

/* DIR/state.bin, rewritten atomically after every main-path point, in the
 * state format (state.c): the tracer's state, the point's parameters, the
 * trainer's whole state (RNG, optimizer kind, step and every buffer), and
 * every row and profile sample so far, as named columns. A rerun continues
 * from it exactly as the first run would have gone on. The fingerprint of
 * the settings, models and data must match, so a state is never continued
 * with other ones. */

/* The numeric fields of a path point, by name. */
typedef enum { F_DOUBLE, F_LONG, F_INT, F_SIZE } field_kind;
typedef struct {
    const char *name;
    size_t offset;
    field_kind kind;
} point_field;

#define PF_FIELD(name, member, kind) {name, offsetof(pf_path_point, member), kind}
static const point_field point_fields[] = {
    PF_FIELD("index", res.index, F_LONG),
    PF_FIELD("beta", res.point.beta, F_DOUBLE),
    PF_FIELD("direction", res.point.direction, F_INT),
    PF_FIELD("m.beta", res.m.beta, F_DOUBLE),
    PF_FIELD("m.train.n", res.m.train.n, F_SIZE),
    PF_FIELD("m.train.loss", res.m.train.loss, F_DOUBLE),
    PF_FIELD("m.train.accuracy", res.m.train.accuracy, F_DOUBLE),
    PF_FIELD("m.train.n_classes", res.m.train.n_classes, F_INT),
    PF_FIELD("m.test.n", res.m.test.n, F_SIZE),
    PF_FIELD("m.test.loss", res.m.test.loss, F_DOUBLE),
    PF_FIELD("m.test.accuracy", res.m.test.accuracy, F_DOUBLE),
    PF_FIELD("m.test.n_classes", res.m.test.n_classes, F_INT),
    PF_FIELD("m.val.n", res.m.val.n, F_SIZE),
    PF_FIELD("m.val.loss", res.m.val.loss, F_DOUBLE),
    PF_FIELD("m.val.accuracy", res.m.val.accuracy, F_DOUBLE),
    PF_FIELD("m.val.n_classes", res.m.val.n_classes, F_INT),
    PF_FIELD("m.r", res.m.r, F_DOUBLE),
    PF_FIELD("m.reg_loss", res.m.reg_loss, F_DOUBLE),
    PF_FIELD("epochs", res.epochs, F_INT),
    PF_FIELD("seconds", res.seconds, F_DOUBLE),
    PF_FIELD("bridge", bridge, F_INT),
    PF_FIELD("dist_start", dist_start, F_DOUBLE),
    PF_FIELD("dist_anchor", dist_anchor, F_DOUBLE),
    PF_FIELD("step", step, F_DOUBLE),
    PF_FIELD("length", length, F_DOUBLE),
    PF_FIELD("retries", retries, F_INT),
    PF_FIELD("jump", jump, F_INT),
    PF_FIELD("segment.n", segment.n, F_LONG),
    PF_FIELD("segment.n_refined", segment.n_refined, F_LONG),
    PF_FIELD("segment.max_train_error", segment.max_train_error, F_DOUBLE),
    PF_FIELD("segment.max_test_error", segment.max_test_error, F_DOUBLE),
    PF_FIELD("segment.max_val_error", segment.max_val_error, F_DOUBLE),
};
#undef PF_FIELD
enum { N_POINT_FIELDS = sizeof point_fields / sizeof *point_fields };

static double field_get(const pf_path_point *p, const point_field *f)
{
    const char *at = (const char *)p + f->offset;
    switch (f->kind) {
    case F_DOUBLE: return *(const double *)at;
    case F_LONG: return (double)*(const long *)at;
    case F_INT: return (double)*(const int *)at;
    case F_SIZE: return (double)*(const size_t *)at;
    }
    return NAN;
}

static void field_set(pf_path_point *p, const point_field *f, double v)
{
    char *at = (char *)p + f->offset;
    switch (f->kind) {
    case F_DOUBLE: *(double *)at = v; break;
    case F_LONG: *(long *)at = (long)v; break;
    case F_INT: *(int *)at = (int)v; break;
    case F_SIZE: *(size_t *)at = (size_t)v; break;
    }
}

/* Whole numbers of the counters as doubles are exact far beyond any count
 * a path reaches, so every column is a float64 column. */
static void put_sample(pf_state *st, const char *prefix, const pf_path_sample *x)
{
    char name[64];
    const double v[7] = {x->t, x->train_error, x->test_error, x->train_loss, x->test_loss,
                         x->val_error, x->val_loss};
    snprintf(name, sizeof name, "%s", prefix);
    pf_state_put(st, name, PF_STATE_F64, v, 7);
}

static int get_sample(const pf_state *st, const char *name, pf_path_sample *x, pf_error *err)
{
    double v[7];
    int rc = pf_state_get(st, name, PF_STATE_F64, v, 7, err);
    if (rc) return rc;
    x->t = v[0], x->train_error = v[1], x->test_error = v[2], x->train_loss = v[3], x->test_loss = v[4];
    x->val_error = v[5], x->val_loss = v[6];
    return PF_OK;
}

static void put_counters(pf_state *st, const char *prefix, const pf_path_result *r)
{
    char name[64];
    const double v[11] = {(double)r->n_points, (double)r->rejected, (double)r->jumps, (double)r->drifts,
                          (double)r->bridges_tried, (double)r->bridges, (double)r->bridge_points,
                          (double)r->converged, r->length, r->final_beta, r->seconds};
    snprintf(name, sizeof name, "%s", prefix);
    pf_state_put(st, name, PF_STATE_F64, v, 11);
}

static int get_counters(const pf_state *st, const char *name, pf_path_result *r, pf_error *err)
{
    double v[11];
    int rc = pf_state_get(st, name, PF_STATE_F64, v, 11, err);
    if (rc) return rc;
    r->n_points = (long)v[0], r->rejected = (long)v[1], r->jumps = (long)v[2], r->drifts = (long)v[3];
    r->bridges_tried = (long)v[4], r->bridges = (long)v[5], r->bridge_points = (long)v[6];
    r->converged = (int)v[7], r->length = v[8], r->final_beta = v[9], r->seconds = v[10];
    return PF_OK;
}

static int save_state(const path_ctx *c, const pf_path_state *ps, const float *theta,
                      const pf_trainer *t, pf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.bin", c->dir);
    pf_trainer_state ts;
    int rc = pf_trainer_get_state(t, &ts, err);
    if (rc) return rc;
    size_t n = (size_t)c->n, np = (size_t)c->profile.n;
    int K = c->n > 0 ? c->rows[0].res.m.test.n_classes : 0;
    double *col = malloc((n * (size_t)(K > 0 ? K : 1) + np + 1) * sizeof *col);
    pf_state *st = pf_state_new("path");
    if (!col || !st) {
        free(col);
        pf_state_free(st);
        pf_trainer_state_free(&ts);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    }
    pf_state_put_i64(st, "fingerprint", c->fingerprint);
    pf_state_put(st, "theta", PF_STATE_F32, theta, c->arch->n_params);
    pf_state_put_trainer(st, "trainer", &ts);
    const pf_schedule *q = &ps->schedule;
    const double sched[10] = {q->beta, q->ratio, (double)q->easy, q->first_bad, q->ratio_before,
                              (double)q->accepted, (double)q->rejected, (double)q->forced,
                              (double)q->drift, 0.0};
    pf_state_put(st, "schedule", PF_STATE_F64, sched, 10);
    pf_state_put_i64(st, "grid_index", ps->grid_index);
    pf_state_put_i64(st, "points", ps->points);
    pf_state_put_f64(st, "length", ps->length);
    pf_state_put_f64(st, "prev_r", ps->prev_r);
    put_sample(st, "prev_sample", &ps->prev_sample);
    put_counters(st, "result", &ps->result);
    char name[96];
    for (int f = 0; f < N_POINT_FIELDS; f++) {
        for (size_t i = 0; i < n; i++) col[i] = field_get(&c->rows[i], &point_fields[f]);
        snprintf(name, sizeof name, "rows.%s", point_fields[f].name);
        pf_state_put(st, name, PF_STATE_F64, col, n);
    }
    const char *sets[2] = {"rows.m.train.class_accuracy", "rows.m.test.class_accuracy"};
    for (int which = 0; which < 2; which++) {
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                col[i * (size_t)K + (size_t)k] =
                    (which ? c->rows[i].res.m.test : c->rows[i].res.m.train).class_accuracy[k];
        pf_state_put(st, sets[which], PF_STATE_F64, col, n * (size_t)K);
    }
    const char *hess[5] = {"hessian.min_E", "hessian.max_E", "hessian.min_L", "hessian.max_L",
                           "hessian.converged"};
    for (int h = 0; h < 5; h++) {
        for (size_t i = 0; i < n; i++) {
            const hessian_row *r = &c->hess[i];
            col[i] = h == 0 ? r->min_E : h == 1 ? r->max_E : h == 2 ? r->min_L : h == 3 ? r->max_L
                                                                                       : r->converged;
        }
        pf_state_put(st, hess[h], PF_STATE_F64, col, n);
    }
    pf_state_put(st, "profile.s", PF_STATE_F64, c->profile.s, np);
    pf_state_put(st, "profile.train_error", PF_STATE_F64, c->profile.train_error, np);
    pf_state_put(st, "profile.test_error", PF_STATE_F64, c->profile.test_error, np);
    pf_state_put(st, "profile.val_error", PF_STATE_F64, c->profile.val_error, np);
    pf_state_put(st, "profile.node", PF_STATE_BYTES, c->profile.node, np);
    rc = pf_state_write(st, path, err);
    pf_state_free(st);
    free(col);
    pf_trainer_state_free(&ts);
    return rc;
}

/* Read DIR/state.bin back into c (rows, Hessian rows, profile), theta, the
 * trainer and *ps. */
static int load_state(path_ctx *c, pf_path_state *ps, float *theta, pf_trainer *t, pf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.bin", c->dir);
    pf_state *st;
    int rc = pf_state_read(path, "path", &st, err);
    if (rc) return rc;
    pf_trainer_state ts = {0};
    double *col = NULL;
    int64_t fp, v;
    memset(ps, 0, sizeof *ps);
    if ((rc = pf_state_get_i64(st, "fingerprint", &fp, err))) goto done;
    if (fp != (int64_t)c->fingerprint) {
        rc = pf_fail(err, PF_EINPUT, "%s: this pair was started with other settings, models or data; "
                     "rerun with those, or delete %s to start it afresh", path, c->dir);
        goto done;
    }
    if ((rc = pf_state_get(st, "theta", PF_STATE_F32, theta, c->arch->n_params, err)) ||
        (rc = pf_state_get_trainer(st, "trainer", c->arch->n_params, &ts, err)))
        goto done;
    if ((rc = pf_trainer_set_state(t, &ts, err))) {
        rc = pf_fail(err, PF_EINPUT, "%s: %s", path, err->msg);
        goto done;
    }
    double sched[10];
    if ((rc = pf_state_get(st, "schedule", PF_STATE_F64, sched, 10, err))) goto done;
    pf_schedule *q = &ps->schedule;
    q->beta = sched[0], q->ratio = sched[1], q->easy = (int)sched[2], q->first_bad = sched[3];
    q->ratio_before = sched[4], q->accepted = (long)sched[5], q->rejected = (long)sched[6];
    q->forced = (long)sched[7], q->drift = (long)sched[8];
    if ((rc = pf_state_get_i64(st, "grid_index", &v, err))) goto done;
    ps->grid_index = (long)v;
    if ((rc = pf_state_get_i64(st, "points", &v, err))) goto done;
    ps->points = (long)v;
    if ((rc = pf_state_get_f64(st, "length", &ps->length, err)) ||
        (rc = pf_state_get_f64(st, "prev_r", &ps->prev_r, err)) ||
        (rc = get_sample(st, "prev_sample", &ps->prev_sample, err)) ||
        (rc = get_counters(st, "result", &ps->result, err)))
        goto done;
    long rows = pf_state_count(st, "rows.index", PF_STATE_F64);
    long np = pf_state_count(st, "profile.s", PF_STATE_F64);
    if (rows < 1 || np < 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: holds no path points", path);
        goto done;
    }
    c->rows = calloc((size_t)rows, sizeof *c->rows);
    c->hess = calloc((size_t)rows, sizeof *c->hess);
    pf_profile *P = &c->profile;
    size_t nps = np ? (size_t)np : 1;
    P->s = malloc(nps * sizeof(double));
    P->train_error = malloc(nps * sizeof(double));
    P->test_error = malloc(nps * sizeof(double));
    P->val_error = malloc(nps * sizeof(double));
    P->node = malloc(nps);
    col = malloc((size_t)rows * PF_MAX_CLASSES * sizeof *col);
    if (!c->rows || !c->hess || !P->s || !P->train_error || !P->test_error || !P->val_error ||
        !P->node || !col) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    c->cap = c->n = rows;
    P->cap = P->n = np;
    char name[96];
    for (int f = 0; f < N_POINT_FIELDS && !rc; f++) {
        snprintf(name, sizeof name, "rows.%s", point_fields[f].name);
        if (!(rc = pf_state_get(st, name, PF_STATE_F64, col, (size_t)rows, err)))
            for (long i = 0; i < rows; i++) field_set(&c->rows[i], &point_fields[f], col[i]);
    }
    if (rc) goto done;
    const char *sets[2] = {"rows.m.train.class_accuracy", "rows.m.test.class_accuracy"};
    for (int which = 0; which < 2 && !rc; which++) {
        int K = which ? c->rows[0].res.m.test.n_classes : c->rows[0].res.m.train.n_classes;
        if (K < 0 || K > PF_MAX_CLASSES) {
            rc = pf_fail(err, PF_EINPUT, "%s: malformed state (%d classes)", path, K);
            break;
        }
        if ((rc = pf_state_get(st, sets[which], PF_STATE_F64, col, (size_t)rows * (size_t)K, err))) break;
        for (long i = 0; i < rows; i++)
            for (int k = 0; k < K; k++) {
                pf_eval *e = which ? &c->rows[i].res.m.test : &c->rows[i].res.m.train;
                e->class_accuracy[k] = col[(size_t)i * (size_t)K + (size_t)k];
            }
    }
    const char *hess[5] = {"hessian.min_E", "hessian.max_E", "hessian.min_L", "hessian.max_L",
                           "hessian.converged"};
    for (int h = 0; h < 5 && !rc; h++) {
        if ((rc = pf_state_get(st, hess[h], PF_STATE_F64, col, (size_t)rows, err))) break;
        for (long i = 0; i < rows; i++) {
            hessian_row *r = &c->hess[i];
            if (h == 0) r->min_E = col[i];
            else if (h == 1) r->max_E = col[i];
            else if (h == 2) r->min_L = col[i];
            else if (h == 3) r->max_L = col[i];
            else r->converged = (int)col[i];
        }
    }
    if (rc || (rc = pf_state_get(st, "profile.s", PF_STATE_F64, P->s, (size_t)np, err)) ||
        (rc = pf_state_get(st, "profile.train_error", PF_STATE_F64, P->train_error, (size_t)np, err)) ||
        (rc = pf_state_get(st, "profile.test_error", PF_STATE_F64, P->test_error, (size_t)np, err)) ||
        (rc = pf_state_get(st, "profile.val_error", PF_STATE_F64, P->val_error, (size_t)np, err)) ||
        (rc = pf_state_get(st, "profile.node", PF_STATE_BYTES, P->node, (size_t)np, err)))
        goto done;
done:
    free(col);
    pf_trainer_state_free(&ts);
    pf_state_free(st);
    return rc;
}

/* Keep a point (its segment statistics, not its samples) and its profile. */
static int keep_point(path_ctx *c, const pf_path_point *p, pf_error *err)
{
    if (c->n == c->cap) {
        long cap = c->cap ? 2 * c->cap : 64;
        pf_path_point *r = realloc(c->rows, (size_t)cap * sizeof *r);
        if (r) c->rows = r;
        hessian_row *h = r ? realloc(c->hess, (size_t)cap * sizeof *h) : NULL;
        if (!h) return pf_fail(err, PF_ERUNTIME, "out of memory");
        c->hess = h;
        c->cap = cap;
    }
    double s0 = c->n > 0 ? c->rows[c->n - 1].length : 0.0;
    int rc = pf_profile_add(&c->profile, &p->segment, s0, p->step, c->n > 0, err);
    if (rc) return rc;
    c->rows[c->n] = *p;
    c->rows[c->n].segment.samples = NULL;
    memset(&c->hess[c->n], 0, sizeof *c->hess);
    for (int k = 0; k < 4; k++) (&c->hess[c->n].min_E)[k] = NAN;
    c->n++;
    return PF_OK;
}

static int on_point(void *vctx, const pf_path_point *p, const float *theta, const pf_trainer *t,
                    pf_error *err)
{
    (void)t;
    path_ctx *c = vctx;
    int rc = keep_point(c, p, err);
    if (rc) return rc;
    if (c->a->hessian_samples >= 0) {
        size_t ns = (size_t)c->a->hessian_samples;
        if (ns > c->train->n) ns = c->train->n;
        pf_hessian_extremes_result hx;
        if ((rc = pf_hessian_extremes(&c->hwork, theta, c->train, ns, p->res.point.beta, NULL, &hx, err)))
            return rc;
        hessian_row *h = &c->hess[c->n - 1];
        h->min_E = hx.min_E, h->max_E = hx.max_E, h->min_L = hx.min_L, h->max_L = hx.max_L;
        h->converged = hx.converged;
    }
    if ((rc = write_path_csv(c, err))) return rc;
    if (p->state && (rc = save_state(c, p->state, theta, t, err))) return rc;
    if (!c->a->progress) return PF_OK;
    if (p->res.diverged) {
        char text[200];
        snprintf(text, sizeof text, "training diverged at beta %g (L_beta %.3g at the start, %.3g at the "
                 "end); lower --lr", p->res.point.beta, p->res.start_reg_loss, p->res.final_reg_loss);
        pf_event w = {.kind = PF_EVENT_WARNING, .run = c->label, .text = text, .beta = p->res.point.beta};
        c->a->progress(c->a->progress_ctx, &w);
    }
    pf_path_sample s;
    pf_path_sample_from_metrics(&p->res.m, &s);
    pf_event e = {.kind = PF_EVENT_POINT, .run = c->label, .index = p->res.index, .beta = p->res.point.beta,
                  .direction = 1, .epochs = p->res.epochs, .train_loss = p->res.m.train.loss,
                  .test_accuracy = p->res.m.test.accuracy, .test_error = s.test_error, .r = p->res.m.r,
                  .class_accuracy = p->res.m.test.class_accuracy, .n_classes = p->res.m.test.n_classes,
                  .bridge = p->bridge, .retries = p->retries, .jump = p->jump,
                  .segment_max_test_error = p->segment.max_test_error, .dist_anchor = p->dist_anchor,
                  .step_length = p->step, .diverged = p->res.diverged, .seconds = pf_now() - c->t0};
    c->a->progress(c->a->progress_ctx, &e);
    return PF_OK;
}

/* pf_progress of the epochs, as events. */
static void train_progress(void *ctx, const pf_progress *p)
{
    const path_ctx *c = ctx;
    pf_event e = {.kind = PF_EVENT_EPOCH, .run = c->label, .epoch = p->epoch, .max_epochs = p->max_epochs,
                  .step = p->step, .steps = p->steps_per_epoch, .loss = p->loss, .beta = p->beta,
                  .seconds = p->seconds};
    c->a->progress(c->a->progress_ctx, &e);
}

static cJSON *sample_json(const pf_path_sample *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "train_error", s->train_error);
    cJSON_AddNumberToObject(o, "test_error", s->test_error);
    cJSON_AddNumberToObject(o, "train_loss", s->train_loss);
    cJSON_AddNumberToObject(o, "test_loss", s->test_loss);
    return o;
}

static double profile_max(const double *e, long n)
{
    double m = -INFINITY;
    for (long i = 0; i < n; i++) m = fmax(m, e[i]);
    return m;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static double json_num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* A finished pair: read its summary back for the table. */
static int load_summary(const char *path, pair_summary *s, pf_error *err)
{
    char *text;
    int rc = pf_read_file(path, &text, NULL, 1 << 24, err);
    if (rc) return rc;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *a = o ? cJSON_GetObjectItemCaseSensitive(o, "a") : NULL;
    const cJSON *b = o ? cJSON_GetObjectItemCaseSensitive(o, "b") : NULL;
    if (!cJSON_IsString(a) || !cJSON_IsString(b)) {
        cJSON_Delete(o);
        return pf_fail(err, PF_EINPUT, "%s: not a pathfinder path summary", path);
    }
    if (strcmp(a->valuestring, s->a) || strcmp(b->valuestring, s->b)) {
        rc = pf_fail(err, PF_EINPUT, "%s: holds the path %s -> %s, not %s -> %s; use another --out",
                     path, a->valuestring, b->valuestring, s->a, s->b);
        cJSON_Delete(o);
        return rc;
    }
    s->skipped = 1;
    s->distance = json_num(o, "distance", NULL);
    s->line_test = json_num(o, "line", "barrier_test");
    s->line_train = json_num(o, "line", "barrier_train");
    s->path_test = json_num(o, "path", "barrier_test");
    s->path_train = json_num(o, "path", "barrier_train");
    s->length = json_num(o, "path", "length");
    s->total_length = json_num(o, "path", "total_length");
    s->final_distance = json_num(o, "path", "final_distance");
    s->points = (long)json_num(o, "path", "points");
    s->n_transitions = (long)json_num(o, "path", "transitions");
    s->converged = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "path"),
                                                                 "converged"));
    s->seconds = json_num(o, "wall_seconds", NULL);
    cJSON_Delete(o);
    return PF_OK;
}

typedef struct {
    const pf_path_run_config *a;
    const char *cmd;              /* "connect" or "probe" */
    int probe;
    int threads;
    const pf_arch *arch;
    const pf_dataset *train, *val, *test;
    pf_ctx *ctx;
    const double *grid;
    long n_grid;
    pf_train_config cfg;
} run_env;

static cJSON *settings_json(const run_env *e)
{
    const pf_path_run_config *a = e->a;
    cJSON *s = cJSON_CreateObject();
    if (e->grid) {
        cJSON_AddStringToObject(s, "beta_grid", a->grid);
    } else {
        cJSON *q = cJSON_AddObjectToObject(s, "schedule");
        cJSON_AddNumberToObject(q, "beta_start", a->schedule.beta_start);
        cJSON_AddNumberToObject(q, "ratio", a->schedule.ratio);
        cJSON_AddNumberToObject(q, "max_ratio", a->schedule.max_ratio);
        cJSON_AddNumberToObject(q, "min_ratio", a->schedule.min_ratio);
        cJSON_AddNumberToObject(q, "step_cap_fraction", a->schedule.step_cap);
        cJSON_AddNumberToObject(q, "error_jump", a->schedule.error_jump);
        cJSON_AddNumberToObject(q, "max_beta", a->schedule.max_beta);
        cJSON_AddNumberToObject(q, "max_points", (double)a->schedule.max_points);
    }
    cJSON_AddNumberToObject(s, "tol_fraction", a->schedule.tol);
    cJSON *c = cJSON_AddObjectToObject(s, "certify");
    cJSON_AddNumberToObject(c, "interior", a->certify.interior);
    cJSON_AddNumberToObject(c, "rise", a->certify.rise);
    cJSON_AddNumberToObject(c, "levels", a->certify.levels);
    cJSON *b = cJSON_AddObjectToObject(s, "bridges");
    cJSON_AddNumberToObject(b, "depth", (double)a->bridge_depth);
    cJSON_AddNumberToObject(b, "barrier", a->bridge_barrier);
    cJSON *p = pf_json_protocol(&e->cfg, e->threads);
    cJSON_AddNumberToObject(p, "seed", (double)a->seed);
    cJSON_AddBoolToObject(p, "keep_optimizer", !a->protocol.reset_optimizer);
    cJSON_AddItemToObject(s, "protocol", p);
    cJSON *d = cJSON_AddObjectToObject(s, "data");
    cJSON_AddStringToObject(d, "name", e->train->name);
    cJSON_AddNumberToObject(d, "n_train", (double)e->train->n);
    cJSON_AddNumberToObject(d, "n_test", (double)e->test->n);
    cJSON_AddNumberToObject(d, "train_subset", (double)a->data.train_subset);
    cJSON_AddNumberToObject(d, "n_val", e->val ? (double)e->val->n : 0.0);
    cJSON_AddNumberToObject(d, "val_fraction", a->val_fraction);
    cJSON_AddStringToObject(d, "steering", e->val ? "validation split" : "training set");
    char buf[512];
    pf_arch_sizes_str(e->arch, buf, sizeof buf);
    cJSON_AddStringToObject(s, "architecture", buf);
    if (a->hessian_samples >= 0) cJSON_AddNumberToObject(s, "hessian_samples", (double)a->hessian_samples);
    return s;
}

/* Trace, close, certify and report one path from theta_a to theta_b in dir. */
static int run_pair(const run_env *e, const float *theta_a, const float *theta_b, pair_summary *sum,
                    pf_leg *leg, pf_error *err)
{
    const pf_path_run_config *a = e->a;
    const pf_arch *arch = e->arch;
    size_t np = arch->n_params;
    char path[4200];
    memset(leg, 0, sizeof *leg);
    int rc = pf_make_dirs(sum->dir, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/summary.json", sum->dir);
    if (file_exists(path)) return load_summary(path, sum, err);

    double t0 = pf_now();
    double D = pf_distance(theta_a, theta_b, np);
    if (!(D > 0))
        return pf_fail(err, PF_EINPUT, "%s and %s hold the same parameters: nothing to connect",
                       sum->a, sum->b);
    char label[64];
    if (e->probe) snprintf(label, sizeof label, "probe");
    else snprintf(label, sizeof label, "%d-%d", sum->i, sum->j);
    path_ctx c;
    memset(&c, 0, sizeof c);
    c.a = a, c.arch = arch, c.train = e->train, c.val = e->val, c.test = e->test, c.dir = sum->dir;
    c.label = label;
    c.t0 = t0;
    pf_trainer trainer;
    float *theta = malloc(np * sizeof *theta);
    pf_segment close = {0}, line = {0};
    pf_profile line_prof = {0};
    cJSON *summary = NULL, *tj = NULL;
    pf_path_point *main_pts = NULL;
    int trainer_ready = 0;
    if (!theta) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    memcpy(theta, theta_a, np * sizeof *theta);
    if (a->hessian_samples >= 0 && (rc = pf_work_init(&c.hwork, e->ctx, arch, 1000, err))) goto done;
    pf_train_config cfg = e->cfg;
    if (a->progress) {
        cfg.progress = train_progress;
        cfg.progress_ctx = &c;
    }
    if ((rc = pf_trainer_init(&trainer, e->ctx, arch, &cfg.opt, cfg.batch, e->train->n,
                              pf_shuffle_seed(a->seed), err)))
        goto done;
    trainer_ready = 1;
    /* the ends are measured before any training: on the chosen input layer too */
    trainer.work.input_layer = trainer.eval_work.input_layer = cfg.input_layer;

    pf_path_config pc;
    memset(&pc, 0, sizeof pc);
    pc.grid = e->grid;
    pc.n_grid = e->n_grid;
    pc.schedule = a->schedule;
    pc.schedule.tol = a->schedule.tol * D;
    pc.schedule.step_cap = a->schedule.step_cap * D;
    pc.certify = a->certify;
    pc.bridge_depth = a->bridge_depth;
    pc.bridge_barrier = a->bridge_barrier;
    pc.val = e->val;

    /* a pair stopped midway continues from its last main-path point */
    cJSON *fp = settings_json(e);
    char *fp_text = fp ? cJSON_PrintUnformatted(fp) : NULL;
    cJSON_Delete(fp);
    if (!fp_text) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    /* every dataset that enters the results: training (and its validation
     * split, which steers), and test (measured into every row) */
    uint32_t crc_data[3] = {pf_dataset_checksum(e->train), e->val ? pf_dataset_checksum(e->val) : 0,
                            pf_dataset_checksum(e->test)};
    c.fingerprint = pf_crc32(0, fp_text, strlen(fp_text));
    free(fp_text);
    c.fingerprint = pf_crc32(c.fingerprint, crc_data, sizeof crc_data);
    c.fingerprint = pf_crc32(c.fingerprint, theta_a, np * sizeof *theta_a);
    c.fingerprint = pf_crc32(c.fingerprint, theta_b, np * sizeof *theta_b);
    pf_path_state resume;
    snprintf(path, sizeof path, "%s/state.bin", sum->dir);
    if (file_exists(path)) {
        if ((rc = load_state(&c, &resume, theta, &trainer, err))) goto done;
        pc.resume = &resume;
        pc.start = theta_a;
        if ((rc = write_path_csv(&c, err))) goto done;
        if (a->progress) {
            char text[4300];
            snprintf(text, sizeof text, "resuming %s after point %ld", sum->dir, c.n - 1);
            pf_event ev = {.kind = PF_EVENT_NOTE, .run = label, .text = text, .beta = NAN};
            a->progress(a->progress_ctx, &ev);
        }
    }
    pf_path_result pr;
    if ((rc = pf_path_trace(&trainer, theta, theta_b, e->train, e->test, &cfg, &pc, on_point, &c,
                            &pr, err)))
        goto done;

    /* close the path onto B with a certified straight segment */
    pf_sample_data sd = {&trainer.eval_work, e->train, e->val, e->test};
    pf_path_sample at_a, at_b, at_last;
    const pf_path_point *last = &c.rows[c.n - 1];
    pf_path_sample_from_metrics(&c.rows[0].res.m, &at_a);
    pf_path_sample_from_metrics(&last->res.m, &at_last);
    pf_path_point end;
    memset(&end, 0, sizeof end);
    if ((rc = pf_measure_split(&trainer.eval_work, theta_b, e->train, e->val, e->test, theta_b, 0.0,
                               &end.res.m, err)))
        goto done;
    pf_path_sample_from_metrics(&end.res.m, &at_b);
    double closing = pf_distance(theta, theta_b, np);
    if ((rc = pf_certify_segment(theta, theta_b, np, &at_last, &at_b, &a->certify, pf_sample_datasets,
                                 &sd, &close, err)))
        goto done;
    end.res.index = c.n;
    end.res.point.beta = INFINITY;
    end.res.point.direction = 1;
    end.dist_start = D;
    end.dist_anchor = 0.0;
    end.step = closing;
    end.length = pr.length + closing;
    end.segment = close;
    if ((rc = keep_point(&c, &end, err))) goto done;
    if (a->hessian_samples >= 0) {
        /* at B itself; beta is infinite there, so L_beta's are too */
        size_t ns = (size_t)a->hessian_samples < e->train->n ? (size_t)a->hessian_samples : e->train->n;
        pf_hessian_extremes_result hx;
        if ((rc = pf_hessian_extremes(&c.hwork, theta_b, e->train, ns, 0.0, NULL, &hx, err))) goto done;
        hessian_row *h = &c.hess[c.n - 1];
        h->min_E = hx.min_E, h->max_E = hx.max_E, h->min_L = h->max_L = INFINITY;
        h->converged = hx.converged;
    }
    if ((rc = write_path_csv(&c, err))) goto done;

    /* the straight line at the same density */
    long n_line = c.profile.n < 2 ? 2 : c.profile.n;
    pf_certify_config lc = {(int)(n_line - 2), 0.0, 0};
    if ((rc = pf_certify_segment(theta_a, theta_b, np, &at_a, &at_b, &lc, pf_sample_datasets, &sd,
                                 &line, err)) ||
        (rc = pf_profile_add(&line_prof, &line, 0.0, D, 0, err)))
        goto done;

    /* transitions crossed: the main path's points between the start and the
     * end (a bridge's betas belong to its own anchor) */
    main_pts = malloc((size_t)c.n * sizeof *main_pts);
    pf_point_result *rows = malloc((size_t)c.n * sizeof *rows);
    if (!rows || !main_pts) {
        free(rows);
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    long n_main = 0;
    for (long i = 1; i + 1 < c.n; i++)
        if (!c.rows[i].bridge) main_pts[n_main] = c.rows[i], rows[n_main++] = c.rows[i].res;
    rc = pf_leg_build(leg, rows, n_main, 1, &a->analysis.detect, &a->analysis.encoding, err);
    free(rows);
    if (rc) goto done;

    const pf_profile *P = &c.profile;
    sum->distance = D;
    sum->path_test = pf_error_barrier(P->test_error, P->n);
    sum->path_train = pf_error_barrier(P->train_error, P->n);
    sum->line_test = pf_error_barrier(line_prof.test_error, line_prof.n);
    sum->line_train = pf_error_barrier(line_prof.train_error, line_prof.n);
    sum->length = pr.length;
    sum->total_length = pr.length + closing;
    sum->final_distance = closing;
    sum->points = pr.n_points;
    sum->converged = pr.converged;
    sum->n_transitions = leg->nt;

    tj = cJSON_CreateObject();
    cJSON_AddStringToObject(tj, "pathfinder_version", PF_VERSION);
    cJSON_AddStringToObject(tj, "command", e->probe ? "probe" : "connect");
    cJSON_AddStringToObject(tj, "a", sum->a);
    cJSON_AddStringToObject(tj, "b", sum->b);
    cJSON_AddStringToObject(tj, "error_unit", e->train->labels ? "percent" : "loss");
    cJSON_AddItemToObject(tj, "transitions", pf_json_transitions(leg));
    cJSON_AddItemToObject(tj, "phases", pf_json_phases(leg));
    snprintf(path, sizeof path, "%s/transitions.json", sum->dir);
    if ((rc = pf_write_json(path, tj, err))) goto done;
    /* the error profiles of the path and of the line, for the figures */
    if ((rc = write_profiles(sum->dir, P, &line_prof, err))) goto done;
    if (a->figures && (rc = a->figures(sum->dir, err))) goto done;

    sum->seconds = pf_now() - t0;
    summary = cJSON_CreateObject();
    cJSON_AddStringToObject(summary, "pathfinder_version", PF_VERSION);
    cJSON_AddStringToObject(summary, "command", e->probe ? "probe" : "connect");
    cJSON_AddStringToObject(summary, "a", sum->a);
    cJSON_AddStringToObject(summary, "b", sum->b);
    cJSON_AddStringToObject(summary, "a_role", e->probe ? "start (--from)" : "start");
    cJSON_AddStringToObject(summary, "b_role", e->probe ? "anchor (--anchor, the saddle)" : "anchor");
    cJSON_AddNumberToObject(summary, "distance", D);
    cJSON_AddItemToObject(summary, "a_metrics", sample_json(&at_a));
    cJSON_AddItemToObject(summary, "b_metrics", sample_json(&at_b));
    cJSON *pj = cJSON_AddObjectToObject(summary, "path");
    cJSON_AddNumberToObject(pj, "barrier_test", sum->path_test);
    cJSON_AddNumberToObject(pj, "barrier_train", sum->path_train);
    if (e->val) cJSON_AddNumberToObject(pj, "barrier_val", pf_error_barrier(P->val_error, P->n));
    cJSON_AddNumberToObject(pj, "max_test_error", profile_max(P->test_error, P->n));
    cJSON_AddNumberToObject(pj, "max_train_error", profile_max(P->train_error, P->n));
    cJSON_AddNumberToObject(pj, "points", (double)pr.n_points);
    cJSON_AddNumberToObject(pj, "samples", (double)P->n);
    cJSON_AddNumberToObject(pj, "length", pr.length);
    cJSON_AddNumberToObject(pj, "closing_length", closing);
    cJSON_AddNumberToObject(pj, "total_length", pr.length + closing);
    cJSON_AddNumberToObject(pj, "final_distance", closing);
    cJSON_AddBoolToObject(pj, "converged", pr.converged);
    cJSON_AddNumberToObject(pj, "final_beta", pr.final_beta);
    cJSON_AddNumberToObject(pj, "rejected_steps", (double)pr.rejected);
    cJSON_AddNumberToObject(pj, "jumps", (double)pr.jumps);
    cJSON_AddNumberToObject(pj, "drift_steps", (double)pr.drifts);
    cJSON_AddNumberToObject(pj, "bridges_tried", (double)pr.bridges_tried);
    cJSON_AddNumberToObject(pj, "bridges", (double)pr.bridges);
    cJSON_AddNumberToObject(pj, "bridge_points", (double)pr.bridge_points);
    cJSON_AddNumberToObject(pj, "transitions", (double)leg->nt);
    cJSON_AddNumberToObject(pj, "closing_max_test_error", close.max_test_error);
    cJSON_AddNumberToObject(pj, "closing_max_train_error", close.max_train_error);
    cJSON *lj = cJSON_AddObjectToObject(summary, "line");
    cJSON_AddNumberToObject(lj, "barrier_test", sum->line_test);
    cJSON_AddNumberToObject(lj, "barrier_train", sum->line_train);
    cJSON_AddNumberToObject(lj, "max_test_error", profile_max(line_prof.test_error, line_prof.n));
    cJSON_AddNumberToObject(lj, "max_train_error", profile_max(line_prof.train_error, line_prof.n));
    cJSON_AddNumberToObject(lj, "samples", (double)line_prof.n);
    cJSON_AddItemToObject(summary, "settings", settings_json(e));
    cJSON_AddNumberToObject(summary, "wall_seconds", sum->seconds);
    snprintf(path, sizeof path, "%s/summary.json", sum->dir);
    rc = pf_write_json(path, summary, err);
    if (!rc) {
        /* the pair is done: its summary marks it so, the state is spent */
        snprintf(path, sizeof path, "%s/state.bin", sum->dir);
        unlink(path);
    }
done:
    if (rc) pf_leg_free(leg);
    cJSON_Delete(summary);
    cJSON_Delete(tj);
    if (trainer_ready) pf_trainer_free(&trainer);
    pf_work_free(&c.hwork);
    pf_segment_free(&close);
    pf_segment_free(&line);
    pf_profile_free(&line_prof);
    pf_profile_free(&c.profile);
    free(main_pts);
    free(c.rows);
    free(c.hess);
    free(theta);
    return rc;
}

/* ---- the table of pairs ----------------------------------------------------------- */

static void pairs_table(FILE *f, const pair_summary *s, int n)
{
    fprintf(f, "%-7s %10s %21s %21s %10s %7s %5s %9s\n", "pair", "||A-B||", "line barrier test/tr",
            "path barrier test/tr", "length", "points", "conv", "seconds");
    for (int k = 0; k < n; k++) {
        char pair[32], lb[48], pb[48];
        snprintf(pair, sizeof pair, "%d-%d", s[k].i, s[k].j);
        snprintf(lb, sizeof lb, "%.2f / %.2f", s[k].line_test, s[k].line_train);
        snprintf(pb, sizeof pb, "%.2f / %.2f", s[k].path_test, s[k].path_train);
        fprintf(f, "%-7s %10.4f %21s %21s %10.4f %7ld %5s %9.1f%s\n", pair, s[k].distance, lb, pb,
                s[k].total_length, s[k].points, s[k].converged ? "yes" : "no", s[k].seconds,
                s[k].skipped ? "  (done before)" : "");
    }
}

static int write_pairs(const char *dir, const pair_summary *s, int n, pf_error *err)
{
    text_buf t = {0};
    tb_printf(&t, "i,j,a,b,distance,line_barrier_test,line_barrier_train,path_barrier_test,"
                  "path_barrier_train,path_length,total_length,points,converged,transitions,"
                  "wall_seconds\n");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "pathfinder_version", PF_VERSION);
    cJSON *arr = cJSON_AddArrayToObject(root, "pairs");
    for (int k = 0; k < n; k++) {
        tb_printf(&t, "%d,%d,%s,%s", s[k].i, s[k].j, s[k].a, s[k].b);
        const double v[] = {s[k].distance, s[k].line_test, s[k].line_train, s[k].path_test,
                            s[k].path_train, s[k].length, s[k].total_length};
        for (size_t q = 0; q < sizeof v / sizeof *v; q++) tb_num(&t, v[q]);
        tb_printf(&t, ",%ld,%d,%ld", s[k].points, s[k].converged, s[k].n_transitions);
        tb_num(&t, s[k].seconds);
        tb_printf(&t, "\n");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "i", s[k].i);
        cJSON_AddNumberToObject(o, "j", s[k].j);
        cJSON_AddStringToObject(o, "a", s[k].a);
        cJSON_AddStringToObject(o, "b", s[k].b);
        cJSON_AddStringToObject(o, "folder", s[k].dir);
        cJSON_AddNumberToObject(o, "distance", s[k].distance);
        cJSON_AddNumberToObject(o, "line_barrier_test", s[k].line_test);
        cJSON_AddNumberToObject(o, "line_barrier_train", s[k].line_train);
        cJSON_AddNumberToObject(o, "path_barrier_test", s[k].path_test);
        cJSON_AddNumberToObject(o, "path_barrier_train", s[k].path_train);
        cJSON_AddNumberToObject(o, "path_length", s[k].length);
        cJSON_AddNumberToObject(o, "total_length", s[k].total_length);
        cJSON_AddNumberToObject(o, "points", (double)s[k].points);
        cJSON_AddBoolToObject(o, "converged", s[k].converged);
        cJSON_AddNumberToObject(o, "transitions", (double)s[k].n_transitions);
        cJSON_AddNumberToObject(o, "wall_seconds", s[k].seconds);
        cJSON_AddItemToArray(arr, o);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    int rc = t.oom ? pf_fail(err, PF_ERUNTIME, "%s: out of memory", path)
                   : pf_write_file_atomic(path, t.buf, t.len, err);
    free(t.buf);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!rc) rc = pf_write_json(path, root, err);
    cJSON_Delete(root);
    return rc;
}

/* The report: a document with every pair's summary.json and
 * transitions.json as written, and the text tables. */
static int pairs_report(const char *cmd, const char *out_dir, int many, const pair_summary *s, int n,
                        FILE *leg_text, pf_report *out, pf_error *err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "command", cmd);
    cJSON *pairs = cJSON_AddArrayToObject(doc, "pairs");
    int rc = PF_OK;
    for (int k = 0; k < n && !rc; k++) {
        const char *files[2] = {"summary.json", "transitions.json"};
        cJSON *pair = cJSON_CreateObject();
        cJSON_AddNumberToObject(pair, "i", s[k].i);
        cJSON_AddNumberToObject(pair, "j", s[k].j);
        cJSON_AddStringToObject(pair, "folder", s[k].dir);
        cJSON_AddItemToArray(pairs, pair);
        for (int f = 0; f < 2 && !rc; f++) {
            char path[4200], *text;
            snprintf(path, sizeof path, "%s/%s", s[k].dir, files[f]);
            if ((rc = pf_read_file(path, &text, NULL, 1 << 26, err))) break;
            cJSON *o = cJSON_Parse(text);
            free(text);
            if (!o) rc = pf_fail(err, PF_ERUNTIME, "%s: cannot be parsed back", path);
            else cJSON_AddItemToObject(pair, f ? "transitions" : "summary", o);
        }
    }
    if (!rc) {
        pairs_table(leg_text, s, n);
        if (many) fprintf(leg_text, "Tables: %s/summary.csv, %s/summary.json\n", out_dir, out_dir);
        else fprintf(leg_text, "Outputs: %s/path.csv, summary.json, transitions.json, profile.csv, "
                               "path_profile.png, path_beta.png\n", out_dir);
        out->json = pf_json_line(doc);
        if (!out->json) rc = pf_fail(err, PF_ERUNTIME, "out of memory for the report");
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---- the plan: one task per pair, then the table ------------------------------------ */

/* Paths between the models: every pair i < j, or a star from one of them
 * (connect), or from models[0] toward each of the others (probe: anchors). */
typedef struct {
    pf_path_run_config a;
    const char *dir;
    const char *const *files;
    int n_files, probe, many;
    pair_summary *sums;
    int n_pairs;
    struct timespec made;       /* a pair whose summary is older was done before this run */
    /* what the tasks of one process share, read at its first task */
    int loaded;
    pf_arch arch;
    float **thetas;
    pf_dataset train, test, val;
    double *grid;
    long n_grid;
} paths_plan;

static void paths_plan_free(void *data)
{
    paths_plan *q = data;
    if (!q) return;
    for (int i = 0; q->thetas && i < q->n_files; i++) free(q->thetas[i]);
    free(q->thetas);
    free(q->grid);
    free(q->sums);
    pf_dataset_free(&q->train);
    pf_dataset_free(&q->val);
    pf_dataset_free(&q->test);
    free(q);
}

/* The models, the data (and its validation split) and the grid. */
static int paths_load(paths_plan *q, pf_error *err)
{
    if (q->loaded) return PF_OK;
    const pf_path_run_config *a = &q->a;
    int rc = PF_OK;
    if (a->grid && (rc = pf_grid_parse(a->grid, &q->grid, &q->n_grid, err))) return rc;
    if ((rc = read_models(a, q->files, q->n_files, &q->arch, q->thetas, err))) return rc;
    if ((rc = pf_data_load(&a->data, &q->train, &q->test, err))) return rc;
    const pf_arch *arch = &q->arch;
    if (arch->in_dim != q->train.dim || arch->sizes[arch->n_layers] != pf_dataset_out_dim(&q->train) ||
        (arch->loss == PF_LOSS_CE) != (q->train.labels != NULL))
        return pf_fail(err, PF_EINPUT, "%s: model %d->%d (%s) does not fit %s (%d features, %d outputs)",
                       q->files[0], arch->in_dim, arch->sizes[arch->n_layers], pf_loss_name(arch->loss),
                       q->train.name, q->train.dim, pf_dataset_out_dim(&q->train));
    if (a->val_fraction > 0) {
        /* the split steers the path; the model trains on the rest */
        pf_dataset rest;
        if ((rc = pf_dataset_split(&q->train, a->val_fraction, a->data.subset_seed ^ 0x56414cULL, &rest,
                                   &q->val, err)))
            return rc;
        pf_dataset_free(&q->train);
        q->train = rest;
    }
    q->loaded = 1;
    return PF_OK;
}

static int paths_prepare(pf_plan *p, int stage, pf_error *err)
{
    paths_plan *q = p->data;
    (void)stage;
    int rc = PF_OK;
    for (int k = 0; k < q->n_pairs && !rc; k++) rc = pf_plan_add(p, err, "%s", q->sums[k].dir);
    return rc;
}

/* A probe's crossings as text, kept in its folder for the report. */
static int write_crossings(const pair_summary *s, const pf_leg *leg, pf_error *err)
{
    pf_text t;
    if (pf_text_begin(&t)) return pf_fail(err, PF_ERUNTIME, "out of memory");
    fprintf(t.f, "Transitions crossed from %s toward %s (in order of rising beta):\n", s->a, s->b);
    if (leg->nt == 0) fprintf(t.f, "  none detected along %ld points\n", leg->n);
    else pf_report_leg(t.f, leg);
    char *text = pf_text_end(&t), path[4200];
    if (!text) return pf_fail(err, PF_ERUNTIME, "out of memory");
    snprintf(path, sizeof path, "%s/transitions.txt", s->dir);
    int rc = pf_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int paths_run(pf_plan *p, pf_ctx *ctx, long k, pf_error *err)
{
    paths_plan *q = p->data;
    int rc = paths_load(q, err);
    if (rc) return rc;
    pair_summary *s = &q->sums[k];
    const pf_path_run_config *a = &q->a;
    pf_dir_lock *lock = NULL;
    if ((rc = pf_run_folder_open(s->dir, &lock, err))) return rc;
    run_env env;
    memset(&env, 0, sizeof env);
    env.a = a, env.cmd = q->probe ? "probe" : "connect", env.probe = q->probe, env.threads = pf_ctx_threads(ctx);
    env.arch = &q->arch, env.train = &q->train, env.test = &q->test;
    env.val = q->val.n ? &q->val : NULL;
    env.ctx = ctx;
    env.grid = q->grid, env.n_grid = q->n_grid;
    env.cfg = a->protocol;
    /* auto resolved on the training set, so that summary.json records the path taken */
    env.cfg.input_layer = pf_input_layer_resolve(env.cfg.input_layer, q->train.x, q->train.n, q->train.dim);
    if (pf_arch_is_cnn(&q->arch)) env.cfg.input_layer = PF_INPUT_DENSE; /* a convolution reads the input */
    if (a->progress && q->n_pairs > 1) {
        char text[8400];
        snprintf(text, sizeof text, "%s %ld of %d: %s -> %s", q->probe ? "probe" : "pair", k + 1, q->n_pairs,
                 s->a, s->b);
        pf_event e = {.kind = PF_EVENT_NOTE, .run = s->dir, .text = text, .beta = NAN};
        a->progress(a->progress_ctx, &e);
    }
    pf_leg leg;
    rc = run_pair(&env, q->thetas[s->i], q->thetas[s->j], s, &leg, err);
    if (!rc && q->probe && !s->skipped) rc = write_crossings(s, &leg, err);
    if (!rc) pf_leg_free(&leg);
    pf_dir_lock_release(lock);
    return rc;
}

static int paths_finish(pf_plan *p, pf_report *out, pf_error *err)
{
    paths_plan *q = p->data;
    pf_dir_lock *lock = NULL;
    pf_text t = {0};
    int rc = q->many ? pf_run_folder_open(q->dir, &lock, err) : PF_OK;
    if (!rc && pf_text_begin(&t)) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    for (int k = 0; k < q->n_pairs && !rc; k++) {
        pair_summary *s = &q->sums[k];
        char path[4200];
        snprintf(path, sizeof path, "%s/summary.json", s->dir);
        struct stat st;
        if ((rc = load_summary(path, s, err))) break;
        s->skipped = stat(path, &st) == 0 && (st.st_mtim.tv_sec < q->made.tv_sec ||
                                              (st.st_mtim.tv_sec == q->made.tv_sec &&
                                               st.st_mtim.tv_nsec < q->made.tv_nsec));
        if (q->probe) {
            char *text = NULL;
            snprintf(path, sizeof path, "%s/transitions.txt", s->dir);
            if (file_exists(path) && !pf_read_file(path, &text, NULL, 1 << 24, err)) fputs(text, t.f);
            else fprintf(t.f, "Transitions crossed from %s toward %s: see %s/transitions.json\n", s->a,
                         s->b, s->dir);
            free(text);
        }
    }
    if (!rc && q->many) rc = write_pairs(q->dir, q->sums, q->n_pairs, err);
    if (!rc) rc = pairs_report(q->probe ? "probe" : "connect", q->dir, q->many, q->sums, q->n_pairs, t.f,
                               out, err);
    out->text = t.f ? pf_text_end(&t) : NULL;
    if (rc) pf_report_free(out);
    else if (!out->text) rc = pf_fail(err, PF_ERUNTIME, "out of memory for the report");
    pf_dir_lock_release(lock);
    return rc;
}

int pf_paths_plan(const char *dir, const char *const *files, int n_files, int probe,
                  const pf_path_run_config *c, int threads, pf_plan **plan, pf_error *err)
{
    *plan = NULL;
    const char *cmd = probe ? "probe" : "connect";
    if (n_files < 2) return pf_fail(err, PF_EINPUT, "%s needs at least two models, got %d", cmd, n_files);
    if (!probe && c->star >= n_files)
        return pf_fail(err, PF_EINPUT, "star %ld: there are only %d models (0-based)", c->star, n_files);
    pf_plan *p = pf_plan_alloc(1, threads);
    paths_plan *q = calloc(1, sizeof *q);
    if (q) {
        q->thetas = calloc((size_t)n_files, sizeof *q->thetas);
        q->sums = calloc((size_t)n_files * (size_t)n_files, sizeof *q->sums);
    }
    if (!p || !q || !q->thetas || !q->sums) {
        paths_plan_free(q);
        free(p);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    q->a = *c;
    clock_gettime(CLOCK_REALTIME, &q->made);
    q->dir = dir, q->files = files, q->n_files = n_files, q->probe = probe;
    q->many = n_files > 2;
    for (int i = 0; i < n_files; i++)
        for (int j = 0; j < n_files; j++) {
            int want = probe ? (i == 0 && j > 0) : c->star >= 0 ? (i == c->star && j != i) : i < j;
            if (!want) continue;
            pair_summary *s = &q->sums[q->n_pairs++];
            s->i = i, s->j = j, s->a = files[i], s->b = files[j];
            if (!q->many) snprintf(s->dir, sizeof s->dir, "%s", dir);
            else if (probe) snprintf(s->dir, sizeof s->dir, "%s/anchor_%d", dir, j - 1);
            else snprintf(s->dir, sizeof s->dir, "%s/pair_%d_%d", dir, i, j);
        }
    p->data = q;
    p->free_data = paths_plan_free;
    p->prepare = paths_prepare;
    p->run = paths_run;
    p->finish = paths_finish;
    *plan = p;
    return PF_OK;
}

static int run_paths(pf_ctx *ctx, const char *dir, const char *const *files, int n_files, int probe,
                     const pf_path_run_config *a, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_plan *p = NULL;
    int rc = pf_paths_plan(dir, files, n_files, probe, a, pf_ctx_threads(ctx), &p, err);
    if (rc) return rc;
    long n;
    if (!(rc = pf_plan_prepare(p, 0, &n, err)))
        for (long k = 0; k < n && !rc; k++) rc = p->run(p, ctx, k, err);   /* on the caller's context */
    if (!rc) rc = pf_plan_finish(p, out, err);
    pf_plan_free(p);
    return rc;
}

void pf_path_run_config_default(pf_path_run_config *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    pf_train_config_default(&c->protocol, PF_OPT_ADAM);
    pf_schedule_config_default(&c->schedule);
    c->schedule.tol = PF_PATH_TOL_FRACTION;
    c->schedule.step_cap = PF_PATH_STEP_CAP_FRACTION;
    pf_certify_config_default(&c->certify);
    c->bridge_depth = PF_BRIDGE_DEPTH;
    c->bridge_barrier = PF_BRIDGE_BARRIER;
    c->hessian_samples = -1;
    pf_analysis_config_default(&c->analysis);
    c->star = -1;
}

int pf_run_connect(pf_ctx *ctx, const char *dir, const char *const *models, int n_models,
                   const pf_path_run_config *c, pf_report *out, pf_error *err)
{
    return run_paths(ctx, dir, models, n_models, 0, c, out, err);
}

int pf_run_probe(pf_ctx *ctx, const char *dir, const char *from, const char *anchor,
                 const pf_path_run_config *c, pf_report *out, pf_error *err)
{
    const char *files[2] = {from, anchor};
    pf_path_run_config one = *c;
    one.star = -1;
    return run_paths(ctx, dir, files, 2, 1, &one, out, err);
}
