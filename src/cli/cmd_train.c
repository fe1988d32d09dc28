/* pathfinder train: train one model at one beta with the paper protocol (or
 * another optimizer), warm-started or freshly initialized; write it as
 * safetensors and print the final metrics as one JSON line. With --seeds,
 * one model per seed in turn (the minima that `connect` links); a seed
 * whose file exists is skipped, so an interrupted run resumes. The work is
 * pf_run_train's. */
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

int cmd_train(int argc, char **argv)
{
    train_args a;
    int help;
    int rc = parse_args(argc, argv, &a, &help);
    if (rc || help) {
        if (help) cli_print_help(stdout, train_usage, train_tables, &a, CLI_EXIT_HELP);
        free(a.seeds);
        return rc;
    }
    pf_train_run_config c;
    pf_train_run_config_default(&c);
    c.data = a.common.data;
    cli_model_spec(&a.model, &c.model);
    cli_model_train_config(&a.model, &c.protocol);
    c.beta = a.beta;
    cli_progress prog;
    cli_progress_init(&prog, "train", a.common.quiet);
    c.progress = cli_event;
    c.progress_ctx = &prog;
    pf_error err;
    pf_error_clear(&err);
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    if (!(rc = pf_ctx_create(&ctx, a.common.threads, &err)))
        rc = pf_run_train(ctx, a.out, a.seeds, a.n_seeds, &c, &report, &err);
    cli_progress_done(&prog);
    cli_print_report(&report, 0);   /* JSON lines, the models done before any failure */
    if (rc) cli_error("train", rc, "%s", err.msg);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    free(a.seeds);
    return rc;
}
