/* pathfinder sweep: the quasi-static beta sweep of the paper, resumable.
 *
 * The run folder holds config.json (everything needed to rerun, checked on
 * resume), sweep.csv (one row per completed point), state.bin (parameters,
 * shuffling RNG and optimizer state after the last completed point) and
 * checkpoints/pNNNNN.safetensors (the model at every point). After each
 * point the checkpoint, then the table, then the state are written, each
 * atomically; a rerun truncates the table to the state's point count, so a
 * kill at any moment loses no row and duplicates none. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "post.h"

static const char *const sweep_usage =
    "Usage: pathfinder sweep [OPTIONS] --out DIR\n"
    "Quasi-static L2 sweep: train at each beta of a grid, warm-started from the previous one,\n"
    "then detect, refine and explain the phase transitions. Rerunning the same command resumes\n"
    "a sweep that was stopped, bit for bit.\n\n";

static const char *const sweep_tail =
    "\nOutputs in DIR: sweep.csv, config.json, transitions.json, phases.json, figures/,\n"
    "checkpoints/, transitions/T<k>_below|above.safetensors (refined saddle anchors).\n" CLI_EXIT_HELP;

typedef struct {
    cli_common common;
    cli_model_opts model;
    const char *grid, *out;
    int direction;   /* index into directions */
    post_options post;
    long hessian;    /* -1: off; else samples (0: all) */
} sweep_args;

static const char *const directions[] = {"up", "down", "loop", NULL};

static void show_hessian(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "off");
}

static const cli_option sweep_rows[] = {
    {CLI_SECTION, .help = "Sweep:"},
    {CLI_STR, "beta", "GRID", CLI_OFF(sweep_args, grid), .help =
     "a list of values and ranges, each a number, START:STOP:STEP or geom:START:STOP:N, e.g. "
     "0,0.02:0.09:0.0005; the default is the paper's 451 points"},
    {CLI_CHOICE, "direction", "DIR", CLI_OFF(sweep_args, direction), .help =
     "up, down, or loop (up, then back down: hysteresis)", .choices = directions},
    {CLI_STR, "out", "DIR", CLI_OFF(sweep_args, out), 0, 0, CLI_REQUIRED,
     "run folder, made if missing; rerunning the same command resumes it", .given = 0},
    {CLI_LONG, "save-every", "N", CLI_OFF(sweep_args, post.save_every), 0, 1e15, 0,
     "keep the checkpoint of every N-th point (0: only those beside transitions and the last)", .given = 0},
    {CLI_FLAG, "keep-checkpoints", NULL, CLI_OFF(sweep_args, post.keep_checkpoints), .help =
     "keep every point's checkpoint"},
    {CLI_SECTION, .help = "Hessian:"},
    {CLI_LONG, "hessian", "N", CLI_OFF(sweep_args, hessian), 0, 1e15, 0,
     "at every point record lambda_min and lambda_max of the Hessian of E (and of L_beta = E + "
     "beta I) in sweep.csv, by Lanczos on the first N training samples (0: all); about 10-40 "
     "products per point", .show = show_hessian},
    {CLI_END},
};

static const cli_table sweep_tables[] = {
    {sweep_rows, 0},
    {post_detect_rows, CLI_OFF(sweep_args, post)},
    {post_refine_rows, CLI_OFF(sweep_args, post)},
    {cli_model_rows, CLI_OFF(sweep_args, model)},
    {cli_protocol_rows, CLI_OFF(sweep_args, model)},
    {cli_data_rows, CLI_OFF(sweep_args, common)},
    {cli_other_rows, CLI_OFF(sweep_args, common)},
    {NULL, 0},
};

static int parse_args(int argc, char **argv, sweep_args *a, int *help)
{
    const char *cmd = "sweep";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    cli_model_default(&a->model);
    post_options_default(&a->post);
    a->grid = "0:0.09:0.0002";
    a->hessian = -1;
    int first;
    if (cli_parse(cmd, sweep_tables, argc, argv, a, help, &first)) return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    post_options_finish(&a->post);
    if (first < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[first]);
    if (!a->out) return cli_usage_error(cmd, "--out DIR is required");
    return PF_OK;
}

/* Everything that decides a sweep's results, compared on resume. */
static cJSON *settings_json(const sweep_args *a, const pf_arch *arch, const pf_train_config *cfg,
                            const pf_dataset *train, const pf_dataset *test, long n_points)
{
    cJSON *s = cJSON_CreateObject();
    char buf[512];
    cJSON *d = cJSON_AddObjectToObject(s, "data");
    cJSON_AddStringToObject(d, "spec", a->common.data.spec);
    cJSON_AddStringToObject(d, "name", train->name);
    cJSON_AddNumberToObject(d, "train_subset", (double)a->common.data.train_subset);
    cJSON_AddNumberToObject(d, "subset_seed", (double)a->common.data.subset_seed);
    cJSON_AddNumberToObject(d, "normalize", a->common.data.norm);
    cJSON_AddNumberToObject(d, "mean", a->common.data.mean);
    cJSON_AddNumberToObject(d, "std", a->common.data.std);
    snprintf(buf, sizeof buf, "%08x", pf_dataset_checksum(train));
    cJSON_AddStringToObject(d, "train_crc32", buf);
    snprintf(buf, sizeof buf, "%08x", pf_dataset_checksum(test));
    cJSON_AddStringToObject(d, "test_crc32", buf);
    cJSON_AddNumberToObject(d, "n_train", (double)train->n);
    cJSON_AddNumberToObject(d, "n_test", (double)test->n);
    cJSON *m = cJSON_AddObjectToObject(s, "model");
    pf_arch_sizes_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(m, "architecture", buf);
    pf_arch_acts_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(m, "activations", buf);
    cJSON_AddBoolToObject(m, "bias", arch->bias);
    cJSON_AddStringToObject(m, "loss", pf_loss_name(arch->loss));
    cJSON_AddStringToObject(m, "init", a->model.init ? a->model.init : "nn.Linear default");
    cJSON_AddStringToObject(m, "anchor", a->model.anchor ? a->model.anchor : "origin");
    cJSON_AddNumberToObject(m, "seed", (double)a->model.seed);
    cJSON_AddItemToObject(s, "protocol", cli_protocol_json(cfg, a->common.threads));
    cJSON *g = cJSON_AddObjectToObject(s, "grid");
    cJSON_AddStringToObject(g, "beta", a->grid);
    cJSON_AddStringToObject(g, "direction", directions[a->direction]);
    cJSON_AddNumberToObject(g, "points", (double)n_points);
    cJSON_AddNumberToObject(s, "hessian_samples", (double)a->hessian);
    return s;
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

/* Write config.json, or check that an existing one describes the same run. */
static int check_config(const char *dir, cJSON *settings, int argc, char **argv, pf_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) == 0) {
        char *text;
        int rc = pf_read_file(path, &text, NULL, 1 << 24, err);
        if (rc) return rc;
        cJSON *old = cJSON_Parse(text);
        free(text);
        cJSON *olds = old ? cJSON_GetObjectItemCaseSensitive(old, "settings") : NULL;
        if (!olds) {
            cJSON_Delete(old);
            return pf_fail(err, PF_EINPUT, "%s: not a pathfinder run configuration", path);
        }
        /* Name the first section that differs, to help the user. */
        const char *sections[] = {"data", "model", "protocol", "grid"};
        for (int i = 0; i < 4; i++) {
            cJSON *x = cJSON_GetObjectItemCaseSensitive(olds, sections[i]);
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
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "pathfinder_version", PF_VERSION);
    cJSON_AddStringToObject(c, "command", "sweep");
    cJSON *args = cJSON_AddArrayToObject(c, "arguments");
    cJSON_AddItemToArray(args, cJSON_CreateString("pathfinder"));
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    cJSON_AddItemToObject(c, "settings", cJSON_Duplicate(settings, 1));
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    int rc = pf_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
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

typedef struct {
    const char *dir;
    const pf_arch *arch;
    pf_point_result *rows;
    long n_rows, n_points;
    const sweep_args *a;
    const char *dataset;
    cli_progress *prog;
    double t0;
    const pf_dataset *train;
    pf_work *hwork;     /* --hessian: its workspace, else NULL */
} sweep_ctx;

static int on_point(void *vctx, const pf_point_result *res, const float *theta, const pf_trainer *t,
                    pf_error *err)
{
    sweep_ctx *c = vctx;
    char path[4096];
    pf_point_result *row = &c->rows[c->n_rows++];
    *row = *res;
    int rc;
    if (c->hwork) {
        size_t ns = (size_t)c->a->hessian;
        if (ns == 0 || ns > c->train->n) ns = c->train->n;
        pf_hessian_extremes_result hx;
        if ((rc = pf_hessian_extremes(c->hwork, theta, c->train, ns, res->point.beta, NULL, &hx, err)))
            return rc;
        row->has_hessian = 1;
        row->lambda_min_E = hx.min_E;
        row->lambda_max_E = hx.max_E;
        row->hessian_converged = hx.converged;
    }
    rc = post_write_point_checkpoint(c->dir, res, c->arch, theta, c->a->model.anchor,
                                         c->a->model.seed, c->dataset, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/sweep.csv", c->dir);
    if ((rc = pf_sweep_csv_write(path, c->rows, c->n_rows, err))) return rc;
    snprintf(path, sizeof path, "%s/state.bin", c->dir);
    if ((rc = write_state(path, res->index + 1, theta, t, c->arch->n_params, err))) return rc;
    if (res->diverged) {
        cli_progress_done(c->prog);
        fprintf(stderr, "pathfinder sweep: warning: training diverged at beta %g (L_beta %.3g at the "
                "start, %.3g at the end; test accuracy %.1f%%), marked in sweep.csv; lower --lr\n",
                res->point.beta, res->start_reg_loss, res->final_reg_loss, res->m.test.accuracy);
    }
    if (c->prog->enabled) {
        cli_progress_done(c->prog);
        double el = pf_now() - c->t0;
        long done = res->index + 1;
        fprintf(stderr, "[%ld/%ld] beta %-9.6g %-4s epochs %2d  test acc %6.2f%%  r %8.4f  E %.4f  %.1fs\n",
                done, c->n_points, res->point.beta, res->point.direction > 0 ? "up" : "down",
                res->epochs, res->m.test.accuracy, res->m.r, res->m.train.loss, el);
    }
    return PF_OK;
}

int cmd_sweep(int argc, char **argv)
{
    sweep_args a;
    int help;
    int rc = parse_args(argc, argv, &a, &help);
    if (rc) return rc;
    if (help) {
        cli_print_help(stdout, sweep_usage, sweep_tables, &a, sweep_tail);
        return PF_OK;
    }
    pf_error err;
    pf_error_clear(&err);
    double *betas = NULL;
    long n_betas = 0, n_points = 0;
    pf_grid_point *points = NULL;
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0, hwork_ready = 0;
    pf_work hwork;
    pf_point_result *rows = NULL;
    cJSON *settings = NULL;
    pf_dir_lock *lock = NULL;
    pf_ctx *ctx = NULL;
    if ((rc = pf_grid_parse(a.grid, &betas, &n_betas, &err))) goto done;
    if ((rc = pf_grid_expand(betas, n_betas, directions[a.direction], &points, &n_points, &err))) goto done;
    /* the folder first: made, writable, ours alone, and holding a sweep
     * (or nothing) before an hour of work goes into it */
    if ((rc = pf_run_folder_open(a.out, &lock, &err)) || (rc = post_make_dirs(a.out, &err)) ||
        (rc = check_folder(a.out, &err)))
        goto done;
    if ((rc = pf_ctx_create(&ctx, a.common.threads, &err))) goto done;
    if ((rc = pf_data_load(&a.common.data, &train, &test, &err))) goto done;
    if ((rc = cli_model_setup(&a.model, &train, &arch, &theta, &anchor, &err))) goto done;
    pf_train_config cfg;
    cli_model_train_config(&a.model, &train, &cfg);
    cfg.anchor = anchor;
    cli_progress prog;
    cli_progress_init(&prog, a.common.quiet);
    cfg.progress = cli_progress_fn;
    cfg.progress_ctx = &prog;

    settings = settings_json(&a, &arch, &cfg, &train, &test, n_points);
    if ((rc = check_config(a.out, settings, argc, argv, &err))) goto done;

    if ((rc = pf_trainer_init(&trainer, ctx, &arch, &cfg.opt, cfg.batch, train.n,
                              pf_shuffle_seed(a.model.seed), &err)))
        goto done;
    trainer_ready = 1;
    rows = calloc((size_t)n_points, sizeof *rows);
    if (!rows) {
        rc = pf_fail(&err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    long start = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/state.bin", a.out);
    if (access(path, F_OK) == 0) {
        if ((rc = read_state(path, &start, theta, &trainer, arch.n_params, &err))) goto done;
        if (start < 0 || start > n_points) {
            rc = pf_fail(&err, PF_EINPUT, "%s: state points past the end of the grid", path);
            goto done;
        }
        /* The table may hold one row more than the state (killed in
         * between): keep exactly the rows the state covers. */
        pf_point_result *old = NULL;
        long n_old = 0;
        snprintf(path, sizeof path, "%s/sweep.csv", a.out);
        if (start > 0 && (rc = pf_sweep_csv_read(path, &old, &n_old, &err))) goto done;
        if (n_old < start) {
            free(old);
            rc = pf_fail(&err, PF_EINPUT, "%s: holds %ld rows but the state says %ld points are done",
                         path, n_old, start);
            goto done;
        }
        for (long i = 0; i < start; i++) {
            rows[i] = old[i];
            rows[i].m.test.n_classes = train.n_classes;
        }
        free(old);
        if (!a.common.quiet)
            fprintf(stderr, "pathfinder sweep: resuming %s at point %ld of %ld\n", a.out, start + 1,
                    n_points);
    }
    if (a.hessian >= 0) {
        if ((rc = pf_work_init(&hwork, ctx, &arch, 1000, &err))) goto done;
        hwork_ready = 1;
    }
    sweep_ctx sc = {a.out, &arch, rows, start, n_points, &a, train.name, &prog, pf_now(), &train,
                  hwork_ready ? &hwork : NULL};
    rc = pf_sweep(&trainer, theta, &train, &test, &cfg, points, n_points, start, on_point, &sc, &err);
    cli_progress_done(&prog);
    if (rc) goto done;

    post_context pc = {a.out, &arch, &train, &test, anchor, &cfg, &trainer, rows, n_points,
                       &a.post, a.common.quiet, a.model.anchor, a.model.seed, a.common.json, "sweep"};
    rc = post_process(&pc, &err);
done:
    if (rc) cli_error("sweep", rc, "%s", err.msg);
    pf_dir_lock_release(lock);
    cJSON_Delete(settings);
    if (trainer_ready) pf_trainer_free(&trainer);
    if (hwork_ready) pf_work_free(&hwork);
    free(rows);
    free(theta);
    free(anchor);
    free(betas);
    free(points);
    pf_ctx_free(ctx);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
