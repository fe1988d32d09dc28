/* The commands of the library (pf_command): the command line's options,
 * parsed with getopt_long as a Unix tool parses them (--name value,
 * --name=value, unique abbreviations, options and arguments in any
 * order), handed to the library by name; progress on stderr; the report
 * printed as text or, with --json, as one JSON document. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_BASE = 1000, HELP_ID = 999, MAX_OPTIONS = 400 };

int cli_run_command(const char *name, int argc, char **argv)
{
    pf_error err;
    pf_error_clear(&err);
    pf_command *cmd;
    int rc = pf_command_new(name, &cmd, &err);
    if (rc) return cli_error(NULL, rc, "%s (see pathfinder --help)", err.msg);
    /* getopt's table from the library's options */
    int n = pf_command_n_options(cmd);
    if (n > MAX_OPTIONS) n = MAX_OPTIONS;
    struct option longopts[MAX_OPTIONS + 2];
    for (int i = 0; i < n; i++) {
        int takes_value;
        const char *o = pf_command_option(cmd, i, &takes_value);
        longopts[i] = (struct option){o, takes_value ? required_argument : no_argument, NULL, OPT_BASE + i};
    }
    longopts[n] = (struct option){"help", no_argument, NULL, HELP_ID};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    int help = 0, c;
    optind = 1;
    opterr = 0;
    while (!rc && (c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == HELP_ID) {
            help = 1;
        } else if (c == ':') {
            const char *o = optopt >= OPT_BASE && optopt < OPT_BASE + n ? longopts[optopt - OPT_BASE].name : NULL;
            rc = o ? cli_usage_error(name, "--%s needs a value", o)
                   : cli_usage_error(name, "'%s' needs a value", argv[optind - 1]);
        } else if (c == '?') {
            rc = optopt && optopt < 256 ? cli_usage_error(name, "unknown option '-%c'", optopt)
                                        : cli_usage_error(name, "unknown or ambiguous option '%s'", argv[optind - 1]);
        } else if (pf_command_set(cmd, longopts[c - OPT_BASE].name, optarg, &err)) {
            rc = cli_usage_error(name, "%s", err.msg);
        }
    }
    for (int i = optind; !rc && i < argc; i++)
        if (pf_command_arg(cmd, argv[i], &err)) rc = cli_error(name, err.code, "%s", err.msg);
    if (rc) {
        pf_command_free(cmd);
        return rc;
    }
    if (help) {
        char *text = pf_command_help(cmd);
        if (text) fputs(text, stdout);
        free(text);
        pf_command_free(cmd);
        return text ? PF_OK : cli_error(name, PF_ERUNTIME, "out of memory");
    }
    /* under mpirun every rank parses the same line; rank 0 prints */
    int mpi = cli_mpi_launched(), printer = !mpi || cli_mpi_env_rank() == 0;
    cli_progress prog;
    cli_progress_init(&prog, name, pf_command_quiet(cmd) || !printer);
    pf_command_events(cmd, cli_event, &prog);
    pf_command_figures(cmd, pf_fig_folder);
    /* "pathfinder sweep ...", as config.json records it */
    pf_command_line(cmd, argc + 1, argv - 1);
    pf_report report = {0};
    rc = mpi ? cli_mpi_run(name, cmd, &report, &printer, &err) : pf_command_run(cmd, &report, &err);
    cli_progress_done(&prog);
    int json = pf_command_json(cmd);
    if (!printer) {
        /* a worker rank: its failures were printed where they happened */
    } else if (rc) {
        if (report.text && !json) cli_print_report(&report, 0);   /* what was done before the failure */
        if (err.code == PF_EINPUT && strncmp(err.msg, "--", 2) == 0) cli_usage_error(name, "%s", err.msg);
        else cli_error(name, rc, "%s", err.msg);
    } else {
        cli_print_report(&report, json);
    }
    if (mpi) cli_mpi_finish();
    pf_report_free(&report);
    pf_command_free(cmd);
    return rc;
}
