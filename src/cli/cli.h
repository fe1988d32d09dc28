/* The command-line front: thin commands over the library. */
#ifndef PATHFINDER_CLI_H
#define PATHFINDER_CLI_H

#include <cJSON.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Print "pathfinder CMD: message" to stderr and return code. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a usage error and point at --help; returns PF_EINPUT. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing for option values. */
int cli_parse_double(const char *s, double *out);
int cli_parse_long(const char *s, long *out);
int cli_parse_u64(const char *s, uint64_t *out);

/* Data options shared by every command. Returns 1 if opt was one of them,
 * 0 if not, -1 on a bad value (already reported). */
enum {
    OPT_DATA = 1000, OPT_TRAIN_SUBSET, OPT_SUBSET_SEED, OPT_NORMALIZE, OPT_TARGET, OPT_TARGETS,
    OPT_THREADS, OPT_QUIET, OPT_HELP, OPT_FIRST_COMMAND_OPTION
};
#define CLI_DATA_LONGOPTS                                                                   \
    {"data", required_argument, 0, OPT_DATA},                                               \
        {"train-subset", required_argument, 0, OPT_TRAIN_SUBSET},                           \
        {"subset-seed", required_argument, 0, OPT_SUBSET_SEED},                             \
        {"normalize", required_argument, 0, OPT_NORMALIZE},                                 \
        {"target", required_argument, 0, OPT_TARGET},                                       \
        {"targets", required_argument, 0, OPT_TARGETS},                                     \
        {"threads", required_argument, 0, OPT_THREADS}, {"quiet", no_argument, 0, OPT_QUIET}, \
        {"help", no_argument, 0, OPT_HELP}

typedef struct {
    pf_data_options data;
    int threads;
    int quiet;
    int help;
} cli_common;

void cli_common_default(cli_common *c);
int cli_common_option(const char *cmd, cli_common *c, int opt, const char *arg);
#define CLI_DATA_HELP                                                                         \
    "Data:\n"                                                                                 \
    "  --data SPEC          mnist (default), fashion-mnist, or a directory with IDX files,\n" \
    "                       train.csv/test.csv, or train_x.npy/train_y.npy/test_x.npy/test_y.npy\n" \
    "  --train-subset N     train on a fixed subset of N samples (see --subset-seed)\n"       \
    "  --subset-seed S      seed that picks the subset (default 0)\n"                          \
    "  --normalize MODE     auto (default; MNIST: mean 0.1307, std 0.3081; others: train\n"   \
    "                       statistics), none, or MEAN,STD\n"                                  \
    "  --target KIND        auto (default), class or regression\n"                             \
    "  --targets K          CSV: number of trailing target columns (default 1)\n"             \
    "Other:\n"                                                                                \
    "  --threads N          OpenBLAS threads (default 1; same threads + seed = same output)\n" \
    "  --quiet              no progress line on stderr\n"                                      \
    "  --help               this text\n"

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
/* Print obj as one line on stdout and delete it. */
void cli_print_json(cJSON *obj);

#endif
