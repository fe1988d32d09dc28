/* pathfinder train: train one model at one beta with the paper protocol (or
 * another optimizer), warm-started or freshly initialized; write it as
 * safetensors and print the final metrics as one JSON line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const train_help =
    "Usage: pathfinder train [OPTIONS] --out FILE.safetensors\n"
    "Train an MLP at one L2 strength beta and write it as a safetensors checkpoint.\n"
    "Prints one JSON line with the final train/test metrics.\n\n"
    "  --beta B             L2 strength: adds (B/2)||theta - anchor||^2 (default 0)\n"
    "  --out FILE           checkpoint to write (required)\n"
    CLI_MODEL_HELP
    CLI_DATA_HELP
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

enum { OPT_BETA = OPT_FIRST_OWN_OPTION, OPT_OUT };

static const struct option train_options[] = {
    CLI_DATA_LONGOPTS,
    CLI_MODEL_LONGOPTS,
    {"beta", required_argument, 0, OPT_BETA},
    {"out", required_argument, 0, OPT_OUT},
    {0, 0, 0, 0},
};

typedef struct {
    cli_common common;
    cli_model_opts model;
    const char *out;
    double beta;
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    const char *cmd = "train";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    cli_model_default(&a->model);
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", train_options, NULL)) != -1) {
        int r = cli_common_option(cmd, &a->common, opt, optarg);
        if (!r) r = cli_model_option(cmd, &a->model, opt, optarg);
        if (r < 0) return PF_EINPUT;
        if (r > 0) continue;
        switch (opt) {
        case OPT_OUT: a->out = optarg; break;
        case OPT_BETA:
            if (cli_parse_double(optarg, &a->beta) || a->beta < 0)
                return cli_usage_error(cmd, "--beta needs a number >= 0, got '%s'", optarg);
            break;
        default:
            return cli_usage_error(cmd, "unknown option");
        }
    }
    if (a->common.help) return PF_OK;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->out) return cli_usage_error(cmd, "--out FILE.safetensors is required");
    return PF_OK;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (a.common.help) {
        fputs(train_help, stdout);
        return PF_OK;
    }
    pf_set_threads(a.common.threads);
    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0;
    if ((rc = pf_data_load(&a.common.data, &train, &test, &err))) goto done;
    if ((rc = cli_model_setup(&a.model, &train, &arch, &theta, &anchor, &err))) goto done;

    pf_train_config cfg;
    cli_model_train_config(&a.model, &cfg);
    cfg.beta = a.beta;
    cfg.anchor = anchor;
    cli_progress prog;
    cli_progress_init(&prog, a.common.quiet);
    prog.beta = a.beta;
    cfg.progress = cli_progress_fn;
    cfg.progress_ctx = &prog;

    if ((rc = pf_trainer_init(&trainer, &arch, &cfg.opt, cfg.batch, train.n,
                              cli_shuffle_seed(a.model.seed), &err)))
        goto done;
    trainer_ready = 1;
    pf_train_result res;
    rc = pf_train_beta(&trainer, theta, &train, &cfg, &res, &err);
    cli_progress_done(&prog);
    if (rc) goto done;

    pf_metrics m;
    if ((rc = pf_measure(&trainer.eval_work, theta, &train, &test, anchor, a.beta, &m, &err))) goto done;

    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = a.beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", a.model.anchor ? a.model.anchor : "origin");
    meta.seed = a.model.seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train.name);
    snprintf(meta.extra, sizeof meta.extra,
             "{\"optimizer\":\"%s\",\"lr\":%.17g,\"batch\":%d,\"epochs\":%d,\"train_subset\":%ld,"
             "\"init\":\"%s\"}",
             pf_opt_name(cfg.opt.kind), cfg.opt.lr, cfg.batch, res.epochs, a.common.data.train_subset,
             a.model.init ? "checkpoint" : "nn.Linear default");
    if ((rc = pf_ckpt_write(a.out, &arch, theta, &meta, &err))) goto done;

    cJSON *o = cli_metrics_json(&m);
    cJSON_AddStringToObject(o, "command", "train");
    cJSON_AddStringToObject(o, "out", a.out);
    cJSON_AddStringToObject(o, "optimizer", pf_opt_name(cfg.opt.kind));
    cJSON_AddNumberToObject(o, "epochs", res.epochs);
    cJSON_AddNumberToObject(o, "steps", (double)res.steps);
    cJSON_AddNumberToObject(o, "last_epoch_loss", res.epoch_loss);
    cJSON_AddBoolToObject(o, "stopped_early", res.stopped_early);
    cJSON_AddNumberToObject(o, "train_seconds", res.seconds);
    cJSON_AddNumberToObject(o, "seconds_per_epoch", res.epochs ? res.seconds / res.epochs : 0.0);
    cli_print_json(o);

done:
    if (rc) cli_error("train", rc, "%s", err.msg);
    if (trainer_ready) pf_trainer_free(&trainer);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
