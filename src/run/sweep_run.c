/* Sweeps into run folders, resumable.
 *
 * The run folder holds config.json (everything needed to rerun, checked on
 * resume), sweep.csv (one row per completed point), state.bin (parameters
 * and the trainer's whole state after the last completed point) and
 * checkpoints/pNNNNN.safetensors (the model at every point). After each
 * point the checkpoint, then the table, then the state are written, each
 * atomically; a rerun keeps exactly the table's rows the state covers, so a
 * kill at any moment loses no row and duplicates none. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "pathfinder/hessian.h"
#include "run/analysis.h"
#include "run/plan.h"
#include "run/report.h"
#include "run/settings.h"
#include "run/tables.h"

void pf_sweep_config_default(pf_sweep_config *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    pf_model_spec_default(&c->model);
    pf_train_config_default(&c->protocol, PF_OPT_ADAM);
    c->grid = PF_PAPER_GRID;
    c->direction = "up";
    c->hessian_samples = -1;
    pf_analysis_config_default(&c->analysis);
}

/* A folder with a table or a state but no config.json is not a sweep this
 * tool can vouch for (another tool's, or damaged): refuse to resume or
 * overwrite it. */
static int check_folder(const char *dir, pf_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) == 0) return PF_OK;
    const char *results[] = {"sweep.csv", "state.bin"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, results[i]);
        if (access(path, F_OK) == 0)
            return pf_fail(err, PF_EINPUT, "%s: holds %s but no config.json, so it is not a sweep this "
                           "tool can resume; use another --out", dir, results[i]);
    }
    return PF_OK;
}

/* state.bin after a point: the index of the next point, the parameters and
 * the trainer's whole state (every optimizer buffer, with or without
 * --keep-optimizer, so every option resumes bit for bit). */
static int write_state(const char *path, long next, const float *theta, const pf_trainer *t,
                       size_t n_params, pf_error *err)
{
    pf_trainer_state ts;
    int rc = pf_trainer_get_state(t, &ts, err);
    if (rc) return rc;
    pf_state *st = pf_state_new("sweep");
    if (!st) {
        pf_trainer_state_free(&ts);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    }
    pf_state_put_i64(st, "next_index", next);
    pf_state_put(st, "theta", PF_STATE_F32, theta, n_params);
    pf_state_put_trainer(st, "trainer", &ts);
    rc = pf_state_write(st, path, err);
    pf_state_free(st);
    pf_trainer_state_free(&ts);
    return rc;
}

static int read_state(const char *path, long *next, float *theta, pf_trainer *t, size_t n_params,
                      pf_error *err)
{
    pf_state *st;
    int rc = pf_state_read(path, "sweep", &st, err);
    if (rc) return rc;
    int64_t next_index;
    pf_trainer_state ts = {0};
    if (!(rc = pf_state_get_i64(st, "next_index", &next_index, err)) &&
        !(rc = pf_state_get(st, "theta", PF_STATE_F32, theta, n_params, err)) &&
        !(rc = pf_state_get_trainer(st, "trainer", n_params, &ts, err)) &&
        (rc = pf_trainer_set_state(t, &ts, err)))
        rc = pf_fail(err, PF_EINPUT, "%s: %s", path, err->msg);
    *next = (long)next_index;
    pf_trainer_state_free(&ts);
    pf_state_free(st);
    return rc;
}

/* Write config.json, or check that an existing one describes the same run. */
static int check_config(const char *dir, cJSON *settings, const pf_sweep_config *c, pf_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) == 0) {
        cJSON *old = NULL;
        int rc = pf_settings_read(path, &old, err);
        if (rc) return rc;
        /* Name the first section that differs, to help the user. */
        const char *sections[] = {"data", "model", "protocol", "grid"};
        for (int i = 0; i < 4; i++) {
            cJSON *x = cJSON_GetObjectItemCaseSensitive(old, sections[i]);
            cJSON *y = cJSON_GetObjectItemCaseSensitive(settings, sections[i]);
            if (!x || !y || !cJSON_Compare(x, y, 1)) {
                cJSON_Delete(old);
                return pf_fail(err, PF_EINPUT,
                               "%s: this folder holds a sweep with different %s settings; resume it "
                               "with the same options or use another --out", path, sections[i]);
            }
        }
        cJSON_Delete(old);
        return PF_OK;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "pathfinder_version", PF_VERSION);
    cJSON_AddStringToObject(doc, "command", "sweep");
    cJSON *args = cJSON_AddArrayToObject(doc, "arguments");
    /* the program by its name, not by the path it was started from, so
     * that a folder does not depend on where the tool sits */
    for (int i = 0; i < c->argc; i++) {
        const char *a = c->argv[i], *slash = i == 0 ? strrchr(a, '/') : NULL;
        cJSON_AddItemToArray(args, cJSON_CreateString(slash && slash[1] ? slash + 1 : a));
    }
    cJSON_AddItemToObject(doc, "settings", cJSON_Duplicate(settings, 1));
    int rc = pf_write_json(path, doc, err);
    cJSON_Delete(doc);
    return rc;
}

typedef struct {
    const char *dir;
    const pf_sweep_config *c;
    const pf_arch *arch;
    pf_point_result *rows;
    long n_rows, n_points;
    const char *dataset;
    double t0;
    const pf_dataset *train;
    pf_work *hwork;     /* hessian_samples >= 0: its workspace, else NULL */
} sweep_run;

static void tell(const sweep_run *s, pf_event_kind kind, const char *text)
{
    if (!s->c->progress) return;
    pf_event e = {.kind = kind, .run = s->dir, .text = text, .beta = NAN, .seconds = pf_now() - s->t0};
    s->c->progress(s->c->progress_ctx, &e);
}

/* pf_progress of the epochs, as events. */
static void epoch_event(void *ctx, const pf_progress *p)
{
    const sweep_run *s = ctx;
    pf_event e = {.kind = PF_EVENT_EPOCH, .run = s->dir, .epoch = p->epoch, .max_epochs = p->max_epochs,
                  .step = p->step, .steps = p->steps_per_epoch, .loss = p->loss, .beta = p->beta,
                  .seconds = p->seconds};
    s->c->progress(s->c->progress_ctx, &e);
}

static int on_point(void *vctx, const pf_point_result *res, const float *theta, const pf_trainer *t,
                    pf_error *err)
{
    sweep_run *s = vctx;
    char path[4096];
    pf_point_result *row = &s->rows[s->n_rows++];
    *row = *res;
    int rc;
    if (s->hwork) {
        size_t ns = (size_t)s->c->hessian_samples;
        if (ns == 0 || ns > s->train->n) ns = s->train->n;
        pf_hessian_extremes_result hx;
        if ((rc = pf_hessian_extremes(s->hwork, theta, s->train, ns, res->point.beta, NULL, &hx, err)))
            return rc;
        row->has_hessian = 1;
        row->lambda_min_E = hx.min_E;
        row->lambda_max_E = hx.max_E;
        row->hessian_converged = hx.converged;
    }
    rc = pf_write_point_checkpoint(s->dir, res, s->arch, theta, s->c->model.anchor, s->c->model.seed,
                                   s->dataset, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/sweep.csv", s->dir);
    if ((rc = pf_sweep_csv_write(path, s->rows, s->n_rows, err))) return rc;
    snprintf(path, sizeof path, "%s/state.bin", s->dir);
    if ((rc = write_state(path, res->index + 1, theta, t, s->arch->n_params, err))) return rc;
    if (res->diverged) {
        char text[256];
        snprintf(text, sizeof text, "training diverged at beta %g (L_beta %.3g at the start, %.3g at the "
                 "end; test accuracy %.1f%%), marked in sweep.csv; lower --lr", res->point.beta,
                 res->start_reg_loss, res->final_reg_loss, res->m.test.accuracy);
        tell(s, PF_EVENT_WARNING, text);
    }
    if (s->c->progress) {
        pf_event e = {.kind = PF_EVENT_POINT, .run = s->dir, .index = res->index, .total = s->n_points,
                      .beta = res->point.beta, .direction = res->point.direction, .epochs = res->epochs,
                      .train_loss = res->m.train.loss, .test_accuracy = res->m.test.accuracy,
                      .test_error = 100.0 - res->m.test.accuracy, .r = res->m.r,
                      .class_accuracy = res->m.test.class_accuracy, .n_classes = res->m.test.n_classes,
                      .diverged = res->diverged, .seconds = pf_now() - s->t0};
        s->c->progress(s->c->progress_ctx, &e);
    }
    return PF_OK;
}

/* A sweep run, whole or in the parts a plan runs as tasks, or (refine_only
 * set) a refinement of one transition of a finished sweep, which trains
 * nothing else. */
int pf_sweep_run_part(pf_ctx *ctx, const char *dir, const pf_sweep_config *c, pf_sweep_part part,
                      const char *refine_only, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    double *betas = NULL;
    long n_betas = 0, n_points = 0;
    pf_grid_point *points = NULL;
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0, hwork_ready = 0, rc;
    pf_work hwork;
    pf_point_result *rows = NULL;
    cJSON *settings = NULL;
    pf_dir_lock *lock = NULL;
    sweep_run s = {.dir = dir, .c = c, .t0 = pf_now()};
    if (c->protocol.certify && c->hessian_samples >= 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: --certify records lambda_min and lambda_max of H_L on all "
                     "training samples at every point already; leave out --hessian", dir);
        goto done;
    }
    if ((rc = pf_grid_parse(c->grid, &betas, &n_betas, err))) goto done;
    if ((rc = pf_grid_expand(betas, n_betas, c->direction, &points, &n_points, err))) goto done;
    /* the folder first: made, writable, ours alone, and holding a sweep
     * (or nothing) before an hour of work goes into it */
    /* refinement tasks of one folder run side by side: they share the lock */
    rc = part == PF_SWEEP_REFINE_TASK ? pf_dir_lock_shared(dir, &lock, err) : pf_run_folder_open(dir, &lock, err);
    if (rc || (rc = pf_sweep_folder_make(dir, err)) || (rc = check_folder(dir, err))) goto done;
    if ((rc = pf_data_load(&c->data, &train, &test, err))) goto done;
    if ((rc = pf_model_setup(&c->model, &train, c->protocol.batch, &arch, &theta, &anchor, err))) goto done;
    pf_train_config cfg = c->protocol;
    /* auto resolved on the training set, so that config.json records the path taken */
    cfg.input_layer = pf_input_layer_resolve(cfg.input_layer, train.x, train.n, train.dim);
    if (pf_arch_is_cnn(&arch)) cfg.input_layer = PF_INPUT_DENSE; /* a convolution reads the input */
    cfg.anchor = anchor;
    cfg.progress = c->progress ? epoch_event : NULL;
    cfg.progress_ctx = &s;

    settings = pf_sweep_settings(c, &arch, &cfg, &train, &test, n_points, pf_ctx_threads(ctx));
    if (!settings) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    if ((rc = check_config(dir, settings, c, err))) goto done;
    if ((rc = pf_trainer_init(&trainer, ctx, &arch, &cfg.opt, cfg.batch, train.n,
                              pf_shuffle_seed(c->model.seed), err)))
        goto done;
    trainer_ready = 1;
    rows = calloc((size_t)n_points, sizeof *rows);
    if (!rows) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory for %ld rows", n_points);
        goto done;
    }
    long start = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/state.bin", dir);
    if (access(path, F_OK) == 0) {
        if ((rc = read_state(path, &start, theta, &trainer, arch.n_params, err))) goto done;
        if (start < 0 || start > n_points) {
            rc = pf_fail(err, PF_EINPUT, "%s: state points past the end of the grid", path);
            goto done;
        }
        /* The table may hold one row more than the state (killed in
         * between): keep exactly the rows the state covers. */
        pf_point_result *old = NULL;
        long n_old = 0;
        snprintf(path, sizeof path, "%s/sweep.csv", dir);
        if (start > 0 && (rc = pf_sweep_csv_read(path, &old, &n_old, err))) goto done;
        if (n_old < start) {
            free(old);
            rc = pf_fail(err, PF_EINPUT, "%s: holds %ld rows but the state says %ld points are done",
                         path, n_old, start);
            goto done;
        }
        for (long i = 0; i < start; i++) {
            rows[i] = old[i];
            rows[i].m.test.n_classes = train.n_classes;
        }
        free(old);
        char text[4200];
        snprintf(text, sizeof text, "resuming %s at point %ld of %ld", dir, start + 1, n_points);
        s.n_points = n_points;
        if (!refine_only) tell(&s, PF_EVENT_NOTE, text);
    }
    if (refine_only && start < n_points) {
        rc = pf_fail(err, PF_EINPUT, "%s: the sweep stopped at point %ld of %ld; finish it (run it "
                     "again) before refining its transitions", dir, start, n_points);
        goto done;
    }
    if (c->hessian_samples >= 0 && !refine_only) {
        if ((rc = pf_work_init(&hwork, ctx, &arch, 1000, err))) goto done;
        hwork_ready = 1;
    }
    s.arch = &arch, s.rows = rows, s.n_rows = start, s.n_points = n_points, s.dataset = train.name;
    s.train = &train, s.hwork = hwork_ready ? &hwork : NULL;
    if ((rc = pf_sweep(&trainer, theta, &train, &test, &cfg, points, n_points, start, on_point, &s, err)))
        goto done;
    pf_analysis_config acfg = c->analysis;
    if (part == PF_SWEEP_POINTS) acfg.refine = 0;   /* the refinements are tasks of their own */
    pf_analysis_input in = {.dir = dir, .rows = rows, .n_rows = n_points, .cfg = &acfg,
                            .trainer = &trainer, .arch = &arch, .train = &train, .test = &test,
                            .protocol = &cfg, .anchor_path = c->model.anchor, .seed = c->model.seed,
                            .progress = c->progress, .progress_ctx = c->progress_ctx,
                            .figures = part == PF_SWEEP_POINTS ? NULL : c->figures,
                            .command = refine_only && part != PF_SWEEP_REFINE_TASK ? "refine" : "sweep",
                            .refine_only = refine_only, .record_only = part == PF_SWEEP_REFINE_TASK,
                            .prune = part == PF_SWEEP_WHOLE && !refine_only};
    rc = pf_analyze(&in, out, err);
done:
    pf_dir_lock_release(lock);
    cJSON_Delete(settings);
    if (trainer_ready) pf_trainer_free(&trainer);
    if (hwork_ready) pf_work_free(&hwork);
    free(rows);
    free(theta);
    free(anchor);
    free(betas);
    free(points);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

int pf_run_sweep(pf_ctx *ctx, const char *dir, const pf_sweep_config *c, pf_report *out, pf_error *err)
{
    return pf_sweep_run_part(ctx, dir, c, PF_SWEEP_WHOLE, NULL, out, err);
}

void pf_refine_config_default(pf_refine_config *c)
{
    memset(c, 0, sizeof *c);
    pf_analysis_config_default(&c->analysis);
    c->tol = c->analysis.refine_tol;
}

int pf_run_refine(pf_ctx *ctx, const char *dir, const pf_refine_config *c, pf_report *out,
                  pf_error *err)
{
    memset(out, 0, sizeof *out);
    if (!c->transition || !*c->transition)
        return pf_fail(err, PF_EINPUT, "%s: which transition to refine (T1, T2, ..., D1, ...)?", dir);
    if (!(c->tol > 0) || !isfinite(c->tol))
        return pf_fail(err, PF_EINPUT, "%s: refinement tolerance %g must be positive", dir, c->tol);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) != 0)
        return pf_fail(err, PF_EINPUT, "%s: not a sweep folder (no config.json)", dir);
    cJSON *settings = NULL;
    int rc = pf_settings_read(path, &settings, err), threads = 0;
    pf_sweep_config sc;
    if (!rc) rc = pf_sweep_config_from_settings(settings, &sc, &threads, err);
    pf_ctx *own = NULL;
    if (!rc && !ctx && !(rc = pf_ctx_create(&own, threads, err))) ctx = own;
    if (!rc && threads != pf_ctx_threads(ctx))
        rc = pf_fail(err, PF_EINPUT, "%s: the sweep ran on %d threads; refine it on as many (the "
                     "results depend on the team's size)", dir, threads);
    if (!rc && strcmp(sc.data.spec, "arrays") == 0) {
        if (!c->train_arrays || !c->test_arrays)
            rc = pf_fail(err, PF_EINPUT, "%s: the sweep ran on arrays in memory; pass the same arrays",
                         dir);
        sc.data.train_arrays = c->train_arrays;
        sc.data.test_arrays = c->test_arrays;
    }
    if (!rc) {
        sc.analysis = c->analysis;
        sc.analysis.refine = 1;
        sc.analysis.refine_tol = c->tol;
        sc.progress = c->progress;
        sc.progress_ctx = c->progress_ctx;
        sc.figures = c->figures;
        rc = pf_sweep_run_part(ctx, dir, &sc, PF_SWEEP_WHOLE, c->transition, out, err);
    }
    pf_ctx_free(own);
    cJSON_Delete(settings);
    return rc;
}

/* ---- the plan: seeds, then refinements, then analyses ---------------------------- */

typedef struct {
    pf_sweep_config c;
    const char *out;
    int seeded;                 /* --seeds: folders out/seed<S> and a merged hierarchy */
    long n_dirs;
    char (*dirs)[4096];
    uint64_t *seeds;            /* (n_dirs) */
    long n_refine;              /* stage 1: folder and label of each transition */
    long *refine_dir;
    char (*refine_label)[16];
} sweep_plan;

static void sweep_plan_free(void *data)
{
    sweep_plan *s = data;
    if (!s) return;
    free(s->dirs);
    free(s->seeds);
    free(s->refine_dir);
    free(s->refine_label);
    free(s);
}

static pf_sweep_config seed_config(const sweep_plan *s, long d)
{
    pf_sweep_config c = s->c;
    c.model.seed = s->seeds[d];
    return c;
}

static int sweep_plan_prepare(pf_plan *p, int stage, pf_error *err)
{
    sweep_plan *s = p->data;
    int rc = PF_OK;
    if (stage == 0) {
        for (long d = 0; d < s->n_dirs && !rc; d++) rc = pf_plan_add(p, err, "%s", s->dirs[d]);
    } else if (stage == 1) {
        s->n_refine = 0;
        if (!s->c.analysis.refine) return PF_OK;
        for (long d = 0; d < s->n_dirs && !rc; d++) {
            char (*labels)[16] = NULL;
            long n = 0;
            rc = pf_sweep_transition_labels(s->dirs[d], &s->c.analysis, &labels, &n, err);
            long *rd = rc ? NULL : realloc(s->refine_dir, (size_t)(s->n_refine + n + 1) * sizeof *rd);
            char (*rl)[16] = rd ? realloc(s->refine_label, (size_t)(s->n_refine + n + 1) * sizeof *rl) : NULL;
            if (rd) s->refine_dir = rd;
            if (rl) s->refine_label = rl;
            if (!rc && (!rd || !rl)) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
            for (long k = 0; k < n && !rc; k++) {
                s->refine_dir[s->n_refine] = d;
                memcpy(s->refine_label[s->n_refine++], labels[k], sizeof labels[k]);
                rc = pf_plan_add(p, err, "%s %s", s->dirs[d], labels[k]);
            }
            free(labels);
        }
    } else if (s->seeded) {   /* stage 2: the analyses (one sweep: its analysis is the finish) */
        for (long d = 0; d < s->n_dirs && !rc; d++) rc = pf_plan_add(p, err, "%s", s->dirs[d]);
    }
    return rc;
}

static int sweep_plan_run(pf_plan *p, pf_ctx *ctx, long i, pf_error *err)
{
    sweep_plan *s = p->data;
    pf_report r = {0};
    int rc;
    if (p->stage == 0) {
        pf_sweep_config c = seed_config(s, i);
        rc = pf_sweep_run_part(ctx, s->dirs[i], &c, PF_SWEEP_POINTS, NULL, &r, err);
    } else if (p->stage == 1) {
        long d = s->refine_dir[i];
        pf_sweep_config c = seed_config(s, d);
        rc = pf_sweep_run_part(ctx, s->dirs[d], &c, PF_SWEEP_REFINE_TASK, s->refine_label[i], &r, err);
    } else {
        rc = pf_sweep_final_analysis(s->dirs[i], &s->c.analysis, s->c.figures, &r, err);
    }
    pf_report_free(&r);
    return rc;
}

static int sweep_plan_finish(pf_plan *p, pf_report *out, pf_error *err)
{
    sweep_plan *s = p->data;
    if (!s->seeded) return pf_sweep_final_analysis(s->dirs[0], &s->c.analysis, s->c.figures, out, err);
    const char **dirs = malloc((size_t)s->n_dirs * sizeof *dirs);
    if (!dirs) return pf_fail(err, PF_ERUNTIME, "out of memory");
    for (long d = 0; d < s->n_dirs; d++) dirs[d] = s->dirs[d];
    int rc = pf_run_hierarchy(dirs, (int)s->n_dirs, s->out, &s->c.analysis, s->c.figures, out, err);
    free(dirs);
    return rc;
}

int pf_sweep_plan(const pf_sweep_config *c, const char *out, const uint64_t *seeds, long n_seeds,
                  int threads, pf_plan **plan, pf_error *err)
{
    *plan = NULL;
    pf_plan *p = pf_plan_alloc(3, threads);
    sweep_plan *s = calloc(1, sizeof *s);
    long n = n_seeds > 0 ? n_seeds : 1;
    if (s) {
        s->dirs = calloc((size_t)n, sizeof *s->dirs);
        s->seeds = calloc((size_t)n, sizeof *s->seeds);
    }
    if (!p || !s || !s->dirs || !s->seeds) {
        sweep_plan_free(s);
        free(p);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    s->c = *c;
    s->out = out;
    s->seeded = n_seeds > 0;
    s->n_dirs = n;
    for (long d = 0; d < n; d++) {
        s->seeds[d] = n_seeds > 0 ? seeds[d] : c->model.seed;
        if (n_seeds > 0) snprintf(s->dirs[d], sizeof s->dirs[d], "%s/seed%llu", out, (unsigned long long)seeds[d]);
        else snprintf(s->dirs[d], sizeof s->dirs[d], "%s", out);
    }
    p->data = s;
    p->free_data = sweep_plan_free;
    p->prepare = sweep_plan_prepare;
    p->run = sweep_plan_run;
    p->finish = sweep_plan_finish;
    *plan = p;
    return PF_OK;
}
