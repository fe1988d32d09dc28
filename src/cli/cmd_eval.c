/* pathfinder eval: metrics of a checkpoint on train and test data (pf_run_eval). */
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
    pf_error err;
    pf_error_clear(&err);
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    int rc = pf_ctx_create(&ctx, a.common.threads, &err);
    if (!rc) rc = pf_run_eval(ctx, argv[first], &a.common.data, a.beta < 0 ? NAN : a.beta, a.anchor, a.act,
                              &report, &err);
    if (rc) cli_error(cmd, rc, "%s", err.msg);
    else cli_print_report(&report, 0);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return rc;
}
