/* pathfinder connect / probe: Pathfinder paths between models (the work is
 * pf_run_connect's and pf_run_probe's). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    const char *cmd;
    int probe;
    cli_common common;
    cli_model_opts model;
    const char *out, *grid, *from;
    pf_schedule_config sched;   /* tol and step_cap as fractions of ||A - B|| here */
    int max_ratio_set;
    pf_certify_config certify;
    long bridge_depth;
    double bridge_barrier;
    long star;                  /* -1: all pairs */
    long hessian;               /* -1: off; else samples (0: all) */
    double val_fraction;        /* 0: the training set steers */
    pf_analysis_config post;
    char **files;
    int n_files;
} connect_args;

static const char *const connect_usage =
    "Usage: pathfinder connect [OPTIONS] A.safetensors B.safetensors [C.safetensors ...] --out DIR\n"
    "Pathfinder path from A to B: anchor the L2 term at B, start at A and raise beta, training\n"
    "to convergence at each beta warm-started from the previous one. Certifies the path and\n"
    "compares its error barrier with the straight line A -> B's.\n"
    "With more than two models: every pair i < j (or a star with --star), each in DIR/pair_I_J/;\n"
    "pairs whose summary.json exists are skipped, and a pair stopped midway continues from\n"
    "its last point (its state.bin), so a rerun resumes.\n\n";

static const char *const connect_tail =
    "\nOutputs per pair: path.csv (one row per point: beta, losses, accuracies and errors,\n"
    "per-class test accuracy, dist_A, dist_B, path_length, segment certification), summary.json,\n"
    "transitions.json, path_profile.png/.pdf/.svg (error vs normalized distance, path and line),\n"
    "path_beta.png/.pdf/.svg. Several pairs: also DIR/summary.csv and DIR/summary.json.\n"
    "Prints a table of the pairs." CLI_EXIT_HELP;

static const char *const probe_usage =
    "Usage: pathfinder probe [OPTIONS] --anchor SADDLE.safetensors --from MIN.safetensors --out DIR\n"
    "Probe the hierarchy from a saddle: anchor the L2 term at a model saved at a transition\n"
    "(a sweep's DIR/transitions/T<k>_below|above.safetensors), start at a minimum and raise\n"
    "beta with warm starts. Reports, in order, the transitions the path crosses and the\n"
    "classes each one loses or gains. Same machinery and outputs as 'pathfinder connect'\n"
    "with A = --from and B = --anchor.\n\n";

static const char *const probe_tail =
    "\nOutputs in DIR: path.csv, transitions.json (transitions crossed and phases), summary.json,\n"
    "path_profile.png/.pdf/.svg, path_beta.png/.pdf/.svg." CLI_EXIT_HELP;

static void show_all_pairs(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "every pair i < j");
}

static void show_ratio(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "--ratio");
}

static void show_off(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "off");
}

static const cli_option connect_rows[] = {
    {CLI_STR, "out", "DIR", CLI_OFF(connect_args, out), 0, 0, CLI_REQUIRED,
     "output folder, made if missing", .given = 0},
    {CLI_LONG, "star", "I", CLI_OFF(connect_args, star), 0, 1e6, 0,
     "paths from model I (0-based) to every other model", .show = show_all_pairs},
    {CLI_END},
};

static const cli_option probe_rows[] = {
    {CLI_STR, "anchor", "FILE", CLI_OFF(connect_args, model.anchor), 0, 0, CLI_REQUIRED,
     "the saddle model", .given = 0},
    {CLI_STR, "from", "FILE", CLI_OFF(connect_args, from), 0, 0, CLI_REQUIRED, "the start model", .given = 0},
    {CLI_STR, "out", "DIR", CLI_OFF(connect_args, out), 0, 0, CLI_REQUIRED,
     "output folder, made if missing; done when DIR/summary.json exists; a probe stopped midway "
     "continues from DIR/state.bin", .given = 0},
    {CLI_END},
};

static const cli_option path_rows[] = {
    {CLI_SECTION, .help = "Schedule (default: adaptive geometric):"},
    {CLI_DOUBLE, "beta-start", "X", CLI_OFF(connect_args, sched.beta_start), 0, INFINITY, CLI_LO_OPEN,
     "first beta", .given = 0},
    {CLI_DOUBLE, "ratio", "X", CLI_OFF(connect_args, sched.ratio), 1, 1000, CLI_LO_OPEN,
     "grow beta by this factor per point", .given = 0},
    {CLI_DOUBLE, "max-ratio", "X", CLI_OFF(connect_args, sched.max_ratio), 1, 1000, CLI_LO_OPEN,
     "the ratio may grow back up to X after easy steps", .show = show_ratio,
     .given = CLI_GIVEN(connect_args, max_ratio_set)},
    {CLI_DOUBLE, "min-ratio", "X", CLI_OFF(connect_args, sched.min_ratio), 1, 1000, CLI_LO_OPEN,
     "smallest ratio before a step is accepted anyway", .given = 0},
    {CLI_DOUBLE, "step-cap", "F", CLI_OFF(connect_args, sched.step_cap), 0, INFINITY, CLI_LO_OPEN,
     "a step may bring theta closer to B by at most F x ||A - B||", .given = 0},
    {CLI_DOUBLE, "error-jump", "P", CLI_OFF(connect_args, sched.error_jump), 0, INFINITY, CLI_LO_OPEN,
     "a step may raise the steering error by at most P points", .given = 0},
    {CLI_DOUBLE, "tol", "F", CLI_OFF(connect_args, sched.tol), 0, INFINITY, CLI_LO_OPEN,
     "stop once ||theta - B|| <= F x ||A - B||", .given = 0},
    {CLI_DOUBLE, "max-beta", "X", CLI_OFF(connect_args, sched.max_beta), 0, INFINITY, CLI_LO_OPEN,
     "or once beta would pass X", .given = 0},
    {CLI_LONG, "max-points", "N", CLI_OFF(connect_args, sched.max_points), 2, 1e6, 0,
     "or after N points, the start included", .given = 0},
    {CLI_STR, "beta", "GRID", CLI_OFF(connect_args, grid), 0, 0, CLI_NO_DEFAULT,
     "a fixed grid instead: a list of values and ranges (START:STOP:STEP, geom:START:STOP:N); the "
     "paper's connectivity grid is 0:1e-5:2e-8 in this convention", .given = 0},
    {CLI_NOTE, .help =
     "The rule: the next beta is the last one times the ratio. A step that brought theta closer to "
     "B by more than the cap (the drop of r = ||theta - B||; a growing r is the training's own "
     "drift, and ||theta - theta_prev|| is inflated by minibatch noise) or raised the steering "
     "error by more than the jump is undone and retried from the previous point with (ratio - 1) "
     "halved, down to --min-ratio. There a still-too-far step is accepted: as a jump (jump column "
     "1: a first-order transition or a steep stretch; the ratio stays small) if it shrank with the "
     "smaller steps, else as drift (jump column 2; the ratio is restored). After two easy steps in "
     "a row (at most half the cap and half the jump) (ratio - 1) doubles, up to --max-ratio. A "
     "refused first step retries below --beta-start."},
    {CLI_SECTION, .help = "Steering (no decision ever looks at the test set):"},
    {CLI_DOUBLE, "val-fraction", "F", CLI_OFF(connect_args, val_fraction), 0, 1,
     CLI_LO_OPEN | CLI_HI_OPEN | CLI_NO_DEFAULT,
     "carve a seeded validation split of F of the training set (the model trains on the rest) and "
     "steer by its error (default: steer by the training error); the test error is measured and "
     "reported only", .given = 0},
    {CLI_SECTION, .help = "Certification:"},
    {CLI_INT, "certify", "N", CLI_OFF(connect_args, certify.interior), 0, 1000, 0,
     "evenly spaced interior points per segment", .given = 0},
    {CLI_DOUBLE, "rise", "P", CLI_OFF(connect_args, certify.rise), 0, INFINITY, 0,
     "refine around a point whose steering error exceeds the segment's higher end by more than P "
     "points", .given = 0},
    {CLI_INT, "refine-levels", "L", CLI_OFF(connect_args, certify.levels), 0, 10, 0,
     "rounds of bisection there", .given = 0},
    {CLI_NOTE, .help =
     "The closing segment from the last point onto B is certified too. Barrier = highest error "
     "along the path minus the higher of the two ends' errors; the straight line A -> B is "
     "measured at the same number of evenly spaced points."},
    {CLI_SECTION, .help = "Bridges:"},
    {CLI_LONG, "bridge-depth", "N", CLI_OFF(connect_args, bridge_depth), 0, 10, 0,
     "levels of bridges (0: none)", .given = 0},
    {CLI_DOUBLE, "bridge-barrier", "P", CLI_OFF(connect_args, bridge_barrier), 0, INFINITY, 0,
     "bridge a segment whose steering error climbs more than P points above its higher end", .given = 0},
    {CLI_NOTE, .help =
     "At a first-order transition of the path the model snaps into another basin and the straight "
     "segment across the snap may cross a ridge. Such a segment is bridged: a path from its first "
     "point anchored at its second (same schedule, cap and tolerance scaled to the segment), its "
     "own segments bridged in turn. It replaces the segment if it climbs less. Bridge points are "
     "path.csv rows of kind 'bridge' (their beta belongs to the bridge's anchor); transitions are "
     "detected on the main path only."},
    {CLI_SECTION, .help = "Hessian:"},
    {CLI_LONG, "hessian", "N", CLI_OFF(connect_args, hessian), 0, 1e15, 0,
     "record lambda_min and lambda_max of the Hessian of E (and of L_beta = E + beta I) at every "
     "point, by Lanczos on the first N training samples (0: all); slow on large models",
     .show = show_off},
    {CLI_END},
};

/* The checkpoints define the model: of the model options only these apply. */
static const cli_option path_model_rows[] = {
    {CLI_U64, "seed", "S", CLI_OFF(cli_model_opts, seed), 0, 1.8e19, 0, "seed of the minibatch shuffling", .given = 0},
    {CLI_STR, "act", "NAMES", CLI_OFF(cli_model_opts, act), 0, 0, CLI_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {CLI_STR, "loss", "ce|mse", CLI_OFF(cli_model_opts, loss), 0, 0, CLI_NO_DEFAULT,
     "loss, for checkpoints without pathfinder metadata", .given = 0},
    {CLI_END},
};

static const cli_table connect_tables[] = {
    {connect_rows, 0},
    {path_rows, 0},
    {cli_detect_rows, CLI_OFF(connect_args, post)},
    {cli_protocol_rows, CLI_OFF(connect_args, model)},
    {path_model_rows, CLI_OFF(connect_args, model)},
    {cli_data_rows, CLI_OFF(connect_args, common)},
    {cli_other_rows, CLI_OFF(connect_args, common)},
    {NULL, 0},
};

static const cli_table probe_tables[] = {
    {probe_rows, 0},
    {path_rows, 0},
    {cli_detect_rows, CLI_OFF(connect_args, post)},
    {cli_protocol_rows, CLI_OFF(connect_args, model)},
    {path_model_rows, CLI_OFF(connect_args, model)},
    {cli_data_rows, CLI_OFF(connect_args, common)},
    {cli_other_rows, CLI_OFF(connect_args, common)},
    {NULL, 0},
};

static void defaults(connect_args *a)
{
    cli_common_default(&a->common);
    cli_model_default(&a->model);
    a->model.act = NULL;   /* from the checkpoints' metadata */
    pf_analysis_config_default(&a->post);
    pf_schedule_config_default(&a->sched);
    a->sched.tol = PF_PATH_TOL_FRACTION;
    a->sched.step_cap = PF_PATH_STEP_CAP_FRACTION;
    pf_certify_config_default(&a->certify);
    a->bridge_depth = PF_BRIDGE_DEPTH;
    a->bridge_barrier = PF_BRIDGE_BARRIER;
    a->star = -1;
    a->hessian = -1;
}

static int parse_args(int argc, char **argv, connect_args *a, int *help)
{
    const char *cmd = a->cmd;
    defaults(a);
    int first;
    if (cli_parse(cmd, a->probe ? probe_tables : connect_tables, argc, argv, a, help, &first))
        return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    if (!a->max_ratio_set) a->sched.max_ratio = a->sched.ratio;
    if (a->sched.min_ratio > a->sched.ratio)
        return cli_usage_error(cmd, "--min-ratio %g is above --ratio %g", a->sched.min_ratio,
                               a->sched.ratio);
    if (a->sched.max_ratio < a->sched.ratio)
        return cli_usage_error(cmd, "--max-ratio %g is below --ratio %g", a->sched.max_ratio,
                               a->sched.ratio);
    if (a->sched.max_beta < a->sched.beta_start)
        return cli_usage_error(cmd, "--max-beta is below --beta-start");
    if (!a->out) return cli_usage_error(cmd, "--out DIR is required");
    a->files = argv + first;
    a->n_files = argc - first;
    if (a->probe) {
        if (a->n_files > 0) return cli_usage_error(cmd, "unexpected argument '%s'", argv[first]);
        if (!a->model.anchor || !a->from)
            return cli_usage_error(cmd, "--anchor SADDLE.safetensors and --from MIN.safetensors are required");
    } else {
        if (a->n_files < 2) return cli_usage_error(cmd, "needs at least two checkpoints, got %d", a->n_files);
        if (a->star >= a->n_files)
            return cli_usage_error(cmd, "--star %ld: there are only %d models (0-based)", a->star,
                                   a->n_files);
    }
    return PF_OK;
}

static int run(int argc, char **argv, int probe)
{
    connect_args a;
    memset(&a, 0, sizeof a);
    a.cmd = probe ? "probe" : "connect";
    a.probe = probe;
    int help;
    int rc = parse_args(argc, argv, &a, &help);
    if (rc) return rc;
    if (help) {
        cli_print_help(stdout, probe ? probe_usage : connect_usage, probe ? probe_tables : connect_tables,
                       &a, probe ? probe_tail : connect_tail);
        return PF_OK;
    }
    pf_path_run_config c;
    pf_path_run_config_default(&c);
    c.data = a.common.data;
    c.val_fraction = a.val_fraction;
    c.act = a.model.act;
    c.loss = a.model.loss;
    c.seed = a.model.seed;
    cli_model_train_config(&a.model, &c.protocol);
    c.grid = a.grid;
    c.schedule = a.sched;
    c.certify = a.certify;
    c.bridge_depth = (int)a.bridge_depth;
    c.bridge_barrier = a.bridge_barrier;
    c.hessian_samples = a.hessian;
    c.analysis = a.post;
    c.star = a.star;
    cli_progress prog;
    cli_progress_init(&prog, a.cmd, a.common.quiet);
    c.progress = cli_event;
    c.progress_ctx = &prog;
    c.figures = pf_fig_folder;
    pf_error err;
    pf_error_clear(&err);
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    if (!(rc = pf_ctx_create(&ctx, a.common.threads, &err)))
        rc = probe ? pf_run_probe(ctx, a.out, a.from, a.model.anchor, &c, &report, &err)
                   : pf_run_connect(ctx, a.out, (const char *const *)a.files, a.n_files, &c, &report, &err);
    cli_progress_done(&prog);
    if (rc) cli_error(a.cmd, rc, "%s", err.msg);
    else cli_print_report(&report, a.common.json);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return rc;
}

int cmd_connect(int argc, char **argv) { return run(argc, argv, 0); }

int cmd_probe(int argc, char **argv) { return run(argc, argv, 1); }
