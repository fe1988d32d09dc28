/* pathfinder train: train one model at one beta with the paper protocol (or
 * another optimizer), warm-started or freshly initialized; write it as
 * safetensors and print the final metrics as one JSON line. With --seeds,
 * one model per seed in turn (the minima that `connect` links); a seed
 * whose file exists is skipped, so an interrupted run resumes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const train_usage =
    "Usage: pathfinder train [OPTIONS] --out FILE.safetensors\n"
    "Train an MLP at one L2 strength beta and write it as a safetensors checkpoint.\n"
    "Prints one JSON line with the final train/test metrics.\n\n";

enum { MAX_SEEDS = 100000 };

typedef struct {
    cli_common common;
    cli_model_opts model;
    const char *out, *seeds_spec;
    double beta;
    uint64_t *seeds;     /* --seeds, or NULL */
    long n_seeds;
} train_args;

static const cli_option train_rows[] = {
    {CLI_SECTION, .help = "Training:"},
    {CLI_DOUBLE, "beta", "B", CLI_OFF(train_args, beta), 0, INFINITY, 0,
     "L2 strength: adds (B/2)||theta - anchor||^2", .given = 0},
    {CLI_STR, "out", "FILE", CLI_OFF(train_args, out), 0, 0, CLI_REQUIRED, "checkpoint to write", .given = 0},
    {CLI_STR, "seeds", "SPEC", CLI_OFF(train_args, seeds_spec), 0, 0, CLI_NO_DEFAULT,
     "train one model per seed, a range 0-4 or a list 0,1,2; --out must contain {seed} (e.g. "
     "minima/seed{seed}.safetensors); a seed whose file exists is skipped; one JSON line per seed", .given = 0},
    {CLI_END},
};

static const cli_table train_tables[] = {
    {train_rows, 0},
    {cli_model_rows, CLI_OFF(train_args, model)},
    {cli_protocol_rows, CLI_OFF(train_args, model)},
    {cli_data_rows, CLI_OFF(train_args, common)},
    {cli_other_rows, CLI_OFF(train_args, common)},
    {NULL, 0},
};

/* "0-4" (inclusive) or "0,1,2" (or one seed) into an allocated array. */
static int parse_seeds(const char *spec, uint64_t **out, long *n)
{
    *out = NULL;
    *n = 0;
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) return -1;
    char *dash = strchr(buf, '-');
    if (dash && !strchr(buf, ',')) {
        uint64_t lo, hi;
        *dash = '\0';
        if (cli_parse_u64(buf, &lo) || cli_parse_u64(dash + 1, &hi) || hi < lo || hi - lo >= MAX_SEEDS)
            return -1;
        *out = malloc((size_t)(hi - lo + 1) * sizeof **out);
        if (!*out) return -1;
        for (uint64_t s = lo; s <= hi; s++) (*out)[(*n)++] = s;
        return 0;
    }
    long cap = 1;
    for (const char *p = buf; *p; p++) cap += *p == ',';
    if (cap > MAX_SEEDS) return -1;
    *out = malloc((size_t)cap * sizeof **out);
    if (!*out) return -1;
    for (char *p = buf, *end;; p = end + 1) {
        end = strchr(p, ',');
        if (end) *end = '\0';
        uint64_t s;
        int dup = 0;
        if (cli_parse_u64(p, &s)) {
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
        for (long k = 0; k < *n; k++) dup |= (*out)[k] == s;
        if (!dup) (*out)[(*n)++] = s;
        if (!end) break;
    }
    return 0;
}

/* --out with every {seed} replaced by the seed. */
static int seed_path(char *dst, size_t n, const char *pattern, uint64_t seed)
{
    size_t len = 0;
    const char *p = pattern;
    while (*p) {
        const char *hit = strstr(p, "{seed}");
        size_t chunk = hit ? (size_t)(hit - p) : strlen(p);
        if (len + chunk + 24 >= n) return -1;
        memcpy(dst + len, p, chunk);
        len += chunk;
        if (!hit) break;
        len += (size_t)snprintf(dst + len, n - len, "%llu", (unsigned long long)seed);
        p = hit + 6;
    }
    dst[len] = '\0';
    return 0;
}

static int parse_args(int argc, char **argv, train_args *a, int *help)
{
    const char *cmd = "train";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    cli_model_default(&a->model);
    int first;
    if (cli_parse(cmd, train_tables, argc, argv, a, help, &first)) return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    if (first < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[first]);
    if (!a->out) return cli_usage_error(cmd, "--out FILE.safetensors is required");
    if (a->seeds_spec && (parse_seeds(a->seeds_spec, &a->seeds, &a->n_seeds) || a->n_seeds == 0))
        return cli_usage_error(cmd, "--seeds takes a range like 0-4 or a list like 0,1,2, got '%s'",
                               a->seeds_spec);
    if (a->seeds && a->model.seed_given) return cli_usage_error(cmd, "give either --seed or --seeds, not both");
    if (a->seeds && !strstr(a->out, "{seed}"))
        return cli_usage_error(cmd, "with --seeds, --out must contain {seed}, e.g. "
                                    "minima/seed{seed}.safetensors");
    if (!a->seeds && strstr(a->out, "{seed}"))
        return cli_usage_error(cmd, "--out contains {seed}: give the seeds with --seeds");
    return PF_OK;
}

/* Train one model (model->seed) and write it to out; prints its JSON line. */
static int train_one(pf_ctx *ctx, const train_args *a, const cli_model_opts *model, const char *out,
                     const pf_dataset *train, const pf_dataset *test, pf_error *err)
{
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0, rc;
    if ((rc = cli_model_setup(model, train, &arch, &theta, &anchor, err))) goto done;

    pf_train_config cfg;
    cli_model_train_config(model, train, &cfg);
    cfg.beta = a->beta;
    cfg.anchor = anchor;
    cli_progress prog;
    cli_progress_init(&prog, a->common.quiet);
    prog.beta = a->beta;
    cfg.progress = cli_progress_fn;
    cfg.progress_ctx = &prog;

    if ((rc = pf_trainer_init(&trainer, ctx, &arch, &cfg.opt, cfg.batch, train->n,
                              pf_shuffle_seed(model->seed), err)))
        goto done;
    trainer_ready = 1;
    pf_train_result res;
    rc = pf_train_beta(&trainer, theta, train, &cfg, &res, err);
    cli_progress_done(&prog);
    if (rc) goto done;
    if (res.diverged) {
        /* a finite blow-up is no model to keep */
        rc = pf_fail(err, PF_ERUNTIME, "training diverged at beta %g (L_beta %.3g at the start, %.3g "
                     "at the end); %s not written: lower --lr", a->beta, res.start_reg_loss,
                     res.final_reg_loss, out);
        goto done;
    }

    pf_metrics m;
    if ((rc = pf_measure(&trainer.eval_work, theta, train, test, anchor, a->beta, &m, err))) goto done;

    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = a->beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", model->anchor ? model->anchor : "origin");
    meta.seed = model->seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train->name);
    snprintf(meta.extra, sizeof meta.extra,
             "{\"optimizer\":\"%s\",\"lr\":%.17g,\"batch\":%d,\"epochs\":%d,\"train_subset\":%ld,"
             "\"init\":\"%s\"}",
             pf_opt_name(cfg.opt.kind), cfg.opt.lr, cfg.batch, res.epochs, a->common.data.train_subset,
             model->init ? "checkpoint" : "nn.Linear default");
    if ((rc = pf_ckpt_write(out, &arch, theta, &meta, err))) goto done;

    cJSON *o = cli_metrics_json(&m);
    cJSON_AddStringToObject(o, "command", "train");
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddNumberToObject(o, "seed", (double)model->seed);
    cJSON_AddStringToObject(o, "optimizer", pf_opt_name(cfg.opt.kind));
    cJSON_AddStringToObject(o, "input_layer", pf_input_layer_name(cfg.input_layer));
    cJSON_AddNumberToObject(o, "epochs", res.epochs);
    cJSON_AddNumberToObject(o, "steps", (double)res.steps);
    cJSON_AddNumberToObject(o, "last_epoch_loss", res.epoch_loss);
    cJSON_AddBoolToObject(o, "stopped_early", res.stopped_early);
    cJSON_AddNumberToObject(o, "train_seconds", res.seconds);
    cJSON_AddNumberToObject(o, "setup_seconds", res.setup_seconds);
    cJSON_AddNumberToObject(o, "seconds_per_epoch",
                            res.epochs ? (res.seconds - res.setup_seconds) / res.epochs : 0.0);
    cli_print_json(o);
done:
    if (trainer_ready) pf_trainer_free(&trainer);
    free(theta);
    free(anchor);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    int help;
    int rc = parse_args(argc, argv, &a, &help);
    if (rc) {
        free(a.seeds);
        return rc;
    }
    if (help) {
        cli_print_help(stdout, train_usage, train_tables, &a, CLI_EXIT_HELP);
        free(a.seeds);
        return PF_OK;
    }
    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_ctx *ctx = NULL;
    /* every output can be written, before any training */
    for (long k = 0; k < (a.seeds ? a.n_seeds : 1) && !rc; k++) {
        char out[4096];
        if (a.seeds && seed_path(out, sizeof out, a.out, a.seeds[k]))
            rc = pf_fail(&err, PF_EINPUT, "--out: path too long");
        else
            rc = pf_check_output_file(a.seeds ? out : a.out, &err);
    }
    if (rc) goto done;
    if ((rc = pf_ctx_create(&ctx, a.common.threads, &err)) ||
        (rc = pf_data_load(&a.common.data, &train, &test, &err)))
        goto done;
    if (!a.seeds) {
        rc = train_one(ctx, &a, &a.model, a.out, &train, &test, &err);
        goto done;
    }
    for (long k = 0; k < a.n_seeds && !rc; k++) {
        char out[4096];
        if (seed_path(out, sizeof out, a.out, a.seeds[k])) {
            rc = pf_fail(&err, PF_EINPUT, "--out: path too long");
            break;
        }
        if (access(out, F_OK) == 0) {
            /* done in an earlier run: resume past it */
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "command", "train");
            cJSON_AddStringToObject(o, "out", out);
            cJSON_AddNumberToObject(o, "seed", (double)a.seeds[k]);
            cJSON_AddBoolToObject(o, "skipped", 1);
            cJSON_AddStringToObject(o, "reason", "exists");
            cli_print_json(o);
            continue;
        }
        cli_model_opts model = a.model;
        model.seed = a.seeds[k];
        rc = train_one(ctx, &a, &model, out, &train, &test, &err);
    }
done:
    if (rc) cli_error("train", rc, "%s", err.msg);
    pf_ctx_free(ctx);
    free(a.seeds);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
