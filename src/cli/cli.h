/* The command-line front: thin commands over the library. */
#ifndef PATHFINDER_CLI_H
#define PATHFINDER_CLI_H

#include <cJSON.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"
#include "opts.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_hessian(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_transitions(int argc, char **argv);
int cmd_hierarchy(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* Print "pathfinder CMD: message" to stderr and return code. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a usage error (one line, pointing at --help); returns PF_EINPUT. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing for option values. */
int cli_parse_double(const char *s, double *out);
int cli_parse_long(const char *s, long *out);
int cli_parse_u64(const char *s, uint64_t *out);

/* Options every command that reads data takes: the data, the thread team,
 * the output style. */
typedef struct {
    pf_data_options data;
    int target;      /* CLI_CHOICE index into auto, class, regression */
    int threads;
    int quiet;
    int json;        /* one JSON document on stdout instead of the tables */
} cli_common;

void cli_common_default(cli_common *c);
/* The data rows (--data ... --targets) and the other rows (--threads,
 * --quiet, --json), for tables based at the command's cli_common. */
extern const cli_option cli_data_rows[];
extern const cli_option cli_other_rows[];
/* After parsing: the data options as the library takes them. */
void cli_common_finish(cli_common *c);

/* Model and protocol options shared by train, sweep, connect and probe. */
typedef struct {
    const char *arch, *act, *loss, *init, *anchor;
    int no_bias, keep_optimizer;
    uint64_t seed;
    int optimizer;                  /* pf_opt_kind */
    int input_layer;                /* pf_input_layer */
    double lr, momentum, min_delta, grad_tol;
    long batch, max_epochs, patience;
    int lr_given, max_epochs_given, grad_tol_given, seed_given;
} cli_model_opts;

/* Defaults from the library's (pf_train_config_default). */
void cli_model_default(cli_model_opts *m);
/* --arch, --act, --no-bias, --loss, --init, --seed, --anchor. */
extern const cli_option cli_model_rows[];
/* --optimizer ... --grad-tol. */
extern const cli_option cli_protocol_rows[];
/* Architecture, initial parameters (fresh or --init) and anchor (or NULL). */
int cli_model_setup(const cli_model_opts *m, const pf_dataset *train, pf_arch *arch, float **theta,
                    float **anchor, pf_error *err);
/* The per-beta protocol; --input-layer auto is resolved on train (if given),
 * so that the configuration records the path taken. */
void cli_model_train_config(const cli_model_opts *m, const pf_dataset *train, pf_train_config *cfg);
/* --input-layer's names, in pf_input_layer order. */
extern const char *const cli_input_layer_names[];

/* Progress line on stderr (only when it is a terminal and not --quiet). */
typedef struct {
    int enabled;
    double beta;
    int printed;
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet);
void cli_progress_fn(void *ctx, const pf_progress *p);
void cli_progress_done(cli_progress *p);

/* JSON helpers for metric lines. */
cJSON *cli_eval_json(const pf_eval *e);
cJSON *cli_metrics_json(const pf_metrics *m);
/* The per-beta training protocol (everything that decides the trained
 * models, threads included), as recorded in config.json and summary.json
 * and compared when a run resumes. */
cJSON *cli_protocol_json(const pf_train_config *cfg, int threads);
/* Print obj as one line on stdout and delete it. */
void cli_print_json(cJSON *obj);
/* The exit-status line every --help ends with. */
#define CLI_EXIT_HELP "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n"

#endif
