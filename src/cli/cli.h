/* The command-line front: it parses, calls the library and prints. */
#ifndef PATHFINDER_CLI_H
#define PATHFINDER_CLI_H

#include <stdio.h>

#include "pathfinder/core.h"
#include "pathfinder/run.h"
#include "pathfinder/fig.h"

/* Run the library's command `name` (train, eval, hessian, sweep,
 * transitions, hierarchy, connect, probe) on argv[1..argc). */
int cli_run_command(const char *name, int argc, char **argv);
/* pathfinder plot: columns of a CSV table against another. */
int cmd_plot(int argc, char **argv);

/* Print "pathfinder CMD: message" to stderr and return code. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a usage error (one line, pointing at --help); returns PF_EINPUT. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress on stderr, drawn from the library's events: a progress line of
 * the epoch under way (only when stderr is a terminal), a line per point
 * (terminal only), notes (unless --quiet) and warnings (always). */
typedef struct {
    const char *cmd;
    int terminal;    /* progress lines */
    int quiet;       /* no notes */
    int printed;     /* a progress line is on screen */
} cli_progress;

void cli_progress_init(cli_progress *p, const char *cmd, int quiet);
/* A pf_event_fn with ctx = the cli_progress. */
void cli_event(void *ctx, const pf_event *e);
void cli_progress_done(cli_progress *p);
/* Under mpirun: whether the launcher started this process, its rank as the
 * launcher's environment gives it, and the command run across the ranks
 * (mpi.c). *printer is set on the rank that prints (rank 0). */
int cli_mpi_launched(void);
int cli_mpi_env_rank(void);
int cli_mpi_run(const char *name, pf_command *cmd, pf_report *report, int *printer, pf_error *err);
/* Ends MPI once the printing rank has printed (no-op without MPI). */
void cli_mpi_finish(void);

/* Print a run's report: its text, or its JSON document with json. */
void cli_print_report(const pf_report *r, int json);

#endif
