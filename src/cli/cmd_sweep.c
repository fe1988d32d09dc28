/* pathfinder sweep: the quasi-static beta sweep of the paper, resumable
 * (pf_run_sweep does the work). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

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
    pf_analysis_config post;
    int no_refine;
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
    {cli_detect_rows, CLI_OFF(sweep_args, post)},
    {cli_refine_rows, CLI_OFF(sweep_args, post)},
    {cli_no_refine_rows, CLI_OFF(sweep_args, no_refine)},
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
    pf_analysis_config_default(&a->post);
    a->grid = PF_PAPER_GRID;
    a->hessian = -1;
    int first;
    if (cli_parse(cmd, sweep_tables, argc, argv, a, help, &first)) return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    if (a->no_refine) a->post.refine = 0;
    if (first < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[first]);
    if (!a->out) return cli_usage_error(cmd, "--out DIR is required");
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
    pf_sweep_config c;
    pf_sweep_config_default(&c);
    c.data = a.common.data;
    cli_model_spec(&a.model, &c.model);
    cli_model_train_config(&a.model, &c.protocol);
    c.grid = a.grid;
    c.direction = directions[a.direction];
    c.hessian_samples = a.hessian;
    c.analysis = a.post;
    c.argc = argc + 1;     /* "pathfinder sweep ..." */
    c.argv = argv - 1;
    cli_progress prog;
    cli_progress_init(&prog, "sweep", a.common.quiet);
    c.progress = cli_event;
    c.progress_ctx = &prog;
    c.figures = pf_fig_folder;
    pf_error err;
    pf_error_clear(&err);
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    if (!(rc = pf_ctx_create(&ctx, a.common.threads, &err))) rc = pf_run_sweep(ctx, a.out, &c, &report, &err);
    cli_progress_done(&prog);
    if (rc) cli_error("sweep", rc, "%s", err.msg);
    else cli_print_report(&report, a.common.json);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return rc;
}
