/* The command-line front: thin commands over the library. */
#ifndef PATHFINDER_CLI_H
#define PATHFINDER_CLI_H

#include <cJSON.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"

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

/* Model and protocol options shared by train and sweep. */
enum {
    OPT_ARCH = OPT_FIRST_COMMAND_OPTION, OPT_ACT, OPT_NO_BIAS, OPT_LOSS, OPT_INIT, OPT_SEED,
    OPT_ANCHOR, OPT_OPTIMIZER, OPT_LR, OPT_MOMENTUM, OPT_BATCH, OPT_MAX_EPOCHS, OPT_PATIENCE,
    OPT_MIN_DELTA, OPT_KEEP_OPT, OPT_GRAD_TOL, OPT_FIRST_OWN_OPTION
};
#define CLI_MODEL_LONGOPTS                                                         \
    {"arch", required_argument, 0, OPT_ARCH}, {"act", required_argument, 0, OPT_ACT}, \
        {"no-bias", no_argument, 0, OPT_NO_BIAS}, {"loss", required_argument, 0, OPT_LOSS}, \
        {"init", required_argument, 0, OPT_INIT}, {"seed", required_argument, 0, OPT_SEED}, \
        {"anchor", required_argument, 0, OPT_ANCHOR},                                \
        {"optimizer", required_argument, 0, OPT_OPTIMIZER},                          \
        {"lr", required_argument, 0, OPT_LR}, {"momentum", required_argument, 0, OPT_MOMENTUM}, \
        {"batch", required_argument, 0, OPT_BATCH},                                  \
        {"max-epochs", required_argument, 0, OPT_MAX_EPOCHS},                        \
        {"patience", required_argument, 0, OPT_PATIENCE},                            \
        {"min-delta", required_argument, 0, OPT_MIN_DELTA},                          \
        {"keep-optimizer", no_argument, 0, OPT_KEEP_OPT},                            \
        {"grad-tol", required_argument, 0, OPT_GRAD_TOL}
#define CLI_MODEL_HELP                                                                         \
    "Model:\n"                                                                                  \
    "  --arch SIZES         layer sizes, e.g. 784,128,128,10 (default: INPUT,128,128,OUTPUT)\n" \
    "  --act NAMES          sigmoid (default), tanh, relu or linear: one name for every hidden\n" \
    "                       layer (output linear), or one per layer\n"                         \
    "  --no-bias            layers without biases\n"                                           \
    "  --loss ce|mse        default: ce for class labels, mse for real targets\n"              \
    "  --init FILE          start from a checkpoint instead of a fresh init\n"                 \
    "  --seed S             seed for initialization and shuffling (default 0)\n"               \
    "  --anchor FILE        anchor of the L2 term (default: the origin)\n"                     \
    "Protocol (defaults are the paper's):\n"                                                   \
    "  --optimizer NAME     adam (default), sgd or lbfgs (full batch, deterministic)\n"        \
    "  --lr X               learning rate (adam 0.0015, sgd 0.01, lbfgs initial step 1)\n"     \
    "  --momentum X         SGD momentum (default 0.9)\n"                                      \
    "  --batch N            minibatch size (default 64; 0 = full batch)\n"                     \
    "  --max-epochs N       at most N epochs per beta (default 50; lbfgs: iterations, 500)\n"  \
    "  --patience N         stop after N epochs without a lower epoch-mean loss (default 5)\n" \
    "  --min-delta X        an improvement must exceed X (default 0)\n"                        \
    "  --keep-optimizer     do not reset optimizer state at each beta\n"                       \
    "  --grad-tol X         lbfgs: stop when max |gradient| < X (default 1e-5)\n"

typedef struct {
    const char *arch, *act, *loss, *init, *anchor;
    int no_bias, keep_optimizer;
    uint64_t seed;
    pf_opt_kind optimizer;
    double lr, momentum, min_delta, grad_tol;
    long batch, max_epochs, patience;
} cli_model_opts;

void cli_model_default(cli_model_opts *m);
/* 1 if opt was a model option, 0 if not, -1 on a bad value (reported). */
int cli_model_option(const char *cmd, cli_model_opts *m, int opt, const char *arg);
/* Architecture, initial parameters (fresh or --init) and anchor (or NULL). */
int cli_model_setup(const cli_model_opts *m, const pf_dataset *train, pf_arch *arch, float **theta,
                    float **anchor, pf_error *err);
void cli_model_train_config(const cli_model_opts *m, pf_train_config *cfg);
/* Shuffling draws from its own stream, so that init and order are independent. */
uint64_t cli_shuffle_seed(uint64_t seed);

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

#endif
