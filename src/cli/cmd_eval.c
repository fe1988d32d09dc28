/* pathfinder eval: metrics of a checkpoint on train and test data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const eval_usage =
    "Usage: pathfinder eval [OPTIONS] FILE.safetensors\n"
    "Evaluate a checkpoint: train and test loss, accuracy, per-class accuracy, r and L_beta.\n"
    "Prints one JSON line.\n\n";

typedef struct {
    cli_common common;
    double beta;      /* < 0: the checkpoint's */
    const char *anchor, *act;
    int input_layer;  /* pf_input_layer */
} eval_args;

static void show_checkpoint(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "the checkpoint's");
}

static const cli_option eval_rows[] = {
    {CLI_SECTION, .help = "Evaluation:"},
    {CLI_DOUBLE, "beta", "B", CLI_OFF(eval_args, beta), 0, INFINITY, 0,
     "L2 strength for the regularized loss", .show = show_checkpoint},
    {CLI_STR, "anchor", "FILE", CLI_OFF(eval_args, anchor), 0, 0, CLI_NO_DEFAULT,
     "anchor for r and L_beta (default: the origin)", .given = 0},
    {CLI_STR, "act", "NAMES", CLI_OFF(eval_args, act), 0, 0, CLI_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {CLI_CHOICE, "input-layer", "MODE", CLI_OFF(eval_args, input_layer), .help =
     "auto, sparse or dense input layer (see train --help)", .choices = cli_input_layer_names},
    {CLI_END},
};

static const cli_table eval_tables[] = {
    {eval_rows, 0},
    {cli_data_rows, CLI_OFF(eval_args, common)},
    {cli_other_rows, CLI_OFF(eval_args, common)},
    {NULL, 0},
};

int cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    eval_args a;
    memset(&a, 0, sizeof a);
    cli_common_default(&a.common);
    a.beta = -1;
    int help, first;
    if (cli_parse(cmd, eval_tables, argc, argv, &a, &help, &first)) return PF_EINPUT;
    if (help) {
        cli_print_help(stdout, eval_usage, eval_tables, &a, CLI_EXIT_HELP);
        return PF_OK;
    }
    cli_common_finish(&a.common);
    if (first != argc - 1) return cli_usage_error(cmd, "expected exactly one checkpoint file");
    const char *path = argv[first];
    const char *anchor_path = a.anchor, *act = a.act;
    double beta = a.beta;
    cli_common common = a.common;

    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_arch arch, fallback, *fb = NULL;
    float *theta = NULL, *anchor = NULL;
    pf_work w = {0};
    pf_ckpt_meta meta;
    pf_ctx *ctx = NULL;
    int rc;
    if ((rc = pf_ctx_create(&ctx, common.threads, &err))) goto done;
    /* Read the model before the data, so a bad file fails fast. */
    if ((rc = pf_ckpt_read(path, NULL, NULL, &arch, &theta, &meta, &err))) goto done;
    if (act) {
        fallback = arch;
        if ((rc = pf_arch_parse_acts(act, arch.n_layers, fallback.act, &err))) goto done;
        fb = &fallback;
        free(theta);
        theta = NULL;
        if ((rc = pf_ckpt_read(path, fb, NULL, &arch, &theta, &meta, &err))) goto done;
    }
    if (anchor_path) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(anchor_path, &arch, &arch, &anchor_arch, &anchor, NULL, &err))) goto done;
    }
    if (beta < 0) beta = meta.beta;
    if ((rc = pf_data_load(&common.data, &train, &test, &err))) goto done;
    if ((rc = pf_work_init(&w, ctx, &arch, 2000, &err))) goto done;
    w.input_layer = (pf_input_layer)a.input_layer;
    pf_metrics m;
    if ((rc = pf_measure(&w, theta, &train, &test, anchor, beta, &m, &err))) goto done;
    cJSON *o = cli_metrics_json(&m);
    cJSON_AddStringToObject(o, "command", "eval");
    cJSON_AddStringToObject(o, "model", path);
    char buf[512];
    pf_arch_sizes_str(&arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "architecture", buf);
    pf_arch_acts_str(&arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "activations", buf);
    cJSON_AddNumberToObject(o, "n_params", (double)arch.n_params);
    cli_print_json(o);
done:
    if (rc) cli_error(cmd, rc, "%s", err.msg);
    pf_work_free(&w);
    pf_ctx_free(ctx);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
