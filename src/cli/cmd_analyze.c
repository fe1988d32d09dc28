/* pathfinder transitions DIR: detect transitions, phases and the hierarchy
 * from a sweep folder's table (refinements already made are kept).
 * pathfinder hierarchy DIR...: merge the phases of several sweeps (seeds,
 * up and down legs) into one hierarchy of accuracy basins. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const transitions_usage =
    "Usage: pathfinder transitions [OPTIONS] DIR\n"
    "Detect first-order transitions in a sweep folder's sweep.csv, split it into phases, and\n"
    "write DIR/transitions.json, DIR/phases.json and DIR/figures/. Refinements recorded by\n"
    "`pathfinder sweep` are kept.\n\n";

static const char *const hierarchy_usage =
    "Usage: pathfinder hierarchy [OPTIONS] DIR... [--out OUTDIR]\n"
    "Merge the phases of several sweep folders (seeds, up and down legs) into one hierarchy\n"
    "of nested accuracy basins; print it as a tree. With --out, write OUTDIR/phases.json and\n"
    "OUTDIR/figures/hierarchy.{png,pdf,svg}.\n\n";

typedef struct {
    pf_analysis_config post;
    const char *out;
    int json, quiet;
} analyze_args;

static const cli_option hierarchy_rows[] = {
    {CLI_SECTION, .help = "Output:"},
    {CLI_STR, "out", "OUTDIR", CLI_OFF(analyze_args, out), 0, 0, CLI_NO_DEFAULT,
     "where to write the merged hierarchy (phases.json, figures/)", .given = 0},
    {CLI_END},
};

static const cli_option output_rows[] = {
    {CLI_SECTION, .help = "Other:"},
    {CLI_FLAG, "json", NULL, CLI_OFF(analyze_args, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {CLI_FLAG, "quiet", NULL, CLI_OFF(analyze_args, quiet), .help = "no progress on stderr"},
    {CLI_END},
};

static const cli_table transitions_tables[] = {
    {cli_detect_rows, CLI_OFF(analyze_args, post)},
    {output_rows, 0},
    {NULL, 0},
};

static const cli_table hierarchy_tables[] = {
    {hierarchy_rows, 0},
    {cli_detect_rows, CLI_OFF(analyze_args, post)},
    {output_rows, 0},
    {NULL, 0},
};

/* Parse into *a; 1 if --help was printed, 0 to go on, PF_EINPUT. */
static int parse(const char *cmd, const char *usage, const cli_table *tables, int argc, char **argv,
                 analyze_args *a, int *first)
{
    memset(a, 0, sizeof *a);
    pf_analysis_config_default(&a->post);
    int help;
    if (cli_parse(cmd, tables, argc, argv, a, &help, first)) return PF_EINPUT;
    if (help) {
        cli_print_help(stdout, usage, tables, a, CLI_EXIT_HELP);
        return 1;
    }
    return 0;
}

int cmd_transitions(int argc, char **argv)
{
    analyze_args a;
    int first;
    int rc = parse("transitions", transitions_usage, transitions_tables, argc, argv, &a, &first);
    if (rc) return rc == 1 ? PF_OK : rc;
    if (first != argc - 1) return cli_usage_error("transitions", "expected exactly one sweep folder");
    pf_error err;
    pf_report report;
    rc = pf_run_analysis(argv[first], &a.post, pf_fig_folder, &report, &err);
    if (rc) cli_error("transitions", rc, "%s", err.msg);
    else cli_print_report(&report, a.json);
    pf_report_free(&report);
    return rc;
}

int cmd_hierarchy(int argc, char **argv)
{
    analyze_args a;
    int first;
    int rc = parse("hierarchy", hierarchy_usage, hierarchy_tables, argc, argv, &a, &first);
    if (rc) return rc == 1 ? PF_OK : rc;
    int n_dirs = argc - first;
    if (n_dirs < 1) return cli_usage_error("hierarchy", "expected one or more sweep folders");
    pf_error err;
    pf_report report;
    rc = pf_run_hierarchy((const char *const *)argv + first, n_dirs, a.out, &a.post, pf_fig_folder,
                          &report, &err);
    if (rc) cli_error("hierarchy", rc, "%s", err.msg);
    else cli_print_report(&report, a.json);
    pf_report_free(&report);
    return rc;
}
