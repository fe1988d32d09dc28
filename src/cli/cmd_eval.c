/* pathfinder eval: metrics of a checkpoint on train and test data. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const eval_help =
    "Usage: pathfinder eval [OPTIONS] FILE.safetensors\n"
    "Evaluate a checkpoint: train and test loss, accuracy, per-class accuracy, r and L_beta.\n"
    "Prints one JSON line.\n\n"
    "  --beta B             L2 strength for the regularized loss (default: the checkpoint's)\n"
    "  --anchor FILE        anchor for r and L_beta (default: the origin)\n"
    "  --act NAMES          activations, for checkpoints without pathfinder metadata\n"
    CLI_DATA_HELP
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

enum { OPT_BETA = OPT_FIRST_OWN_OPTION }; /* --anchor and --act as in cli.h */

static const struct option eval_options[] = {
    CLI_DATA_LONGOPTS,
    {"beta", required_argument, 0, OPT_BETA},
    {"anchor", required_argument, 0, OPT_ANCHOR},
    {"act", required_argument, 0, OPT_ACT},
    {0, 0, 0, 0},
};

int cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    cli_common common;
    cli_common_default(&common);
    const char *anchor_path = NULL, *act = NULL;
    double beta = -1;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", eval_options, NULL)) != -1) {
        int r = cli_common_option(cmd, &common, opt, optarg);
        if (r < 0) return PF_EINPUT;
        if (r > 0) continue;
        switch (opt) {
        case OPT_BETA:
            if (cli_parse_double(optarg, &beta) || beta < 0)
                return cli_usage_error(cmd, "--beta needs a number >= 0, got '%s'", optarg);
            break;
        case OPT_ANCHOR: anchor_path = optarg; break;
        case OPT_ACT: act = optarg; break;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (common.help) {
        fputs(eval_help, stdout);
        return PF_OK;
    }
    if (optind != argc - 1) return cli_usage_error(cmd, "expected exactly one checkpoint file");
    const char *path = argv[optind];
    pf_set_threads(common.threads);

    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_arch arch, fallback, *fb = NULL;
    float *theta = NULL, *anchor = NULL;
    pf_work w = {0};
    pf_ckpt_meta meta;
    int rc;
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
    if ((rc = pf_work_init(&w, &arch, 2000, &err))) goto done;
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
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
