/* pathfinder experiments: training protocols and evaluation, built on the core.
 *
 * The per-beta loop of the paper protocol (train to convergence at one beta,
 * warm-started from the current parameters) is pf_train_beta; sweeps, paths
 * and probes are sequences of it.
 */
#ifndef PATHFINDER_EXP_H
#define PATHFINDER_EXP_H

#include "pathfinder/core.h"

#define PF_MAX_CLASSES 1024

/* ------------------------------------------------------------ evaluation */

typedef struct {
    size_t n;
    double loss;                          /* mean loss (CE or MSE) */
    double accuracy;                      /* percent; classification only */
    int n_classes;
    double class_accuracy[PF_MAX_CLASSES];  /* percent; -1 for an absent class */
} pf_eval;

/* Evaluate theta on d in blocks of w->max_batch; reductions in double. */
int pf_evaluate(pf_work *w, const float *theta, const pf_dataset *d, pf_eval *out,
                pf_error *err);

/* Everything recorded for one model: the paper's columns and more. */
typedef struct {
    double beta;
    pf_eval train, test;
    double r;          /* ||theta - anchor|| (the order parameter) */
    double reg_loss;   /* train loss + beta/2 r^2 (L_beta) */
} pf_metrics;

int pf_measure(pf_work *w, const float *theta, const pf_dataset *train, const pf_dataset *test,
               const float *anchor, double beta, pf_metrics *m, pf_error *err);

/* ----------------------------------------------------------- training */

typedef struct {
    int epoch;
    int max_epochs;
    long step;            /* minibatch within the epoch */
    long steps_per_epoch;
    double loss;          /* running mean of this epoch's minibatch losses */
    double seconds;       /* since this beta started */
} pf_progress;

typedef void (*pf_progress_fn)(void *ctx, const pf_progress *p);

typedef struct {
    pf_opt_config opt;
    double beta;
    const float *anchor;   /* NULL: the origin */
    int batch;             /* minibatch size; 0 = full batch */
    int max_epochs;        /* paper: 50 (L-BFGS: iterations) */
    int patience;          /* paper: 5 epochs without improvement of the epoch-mean loss */
    double min_delta;      /* an improvement must beat the best by more than this */
    int reset_optimizer;   /* paper: 1 (a new Adam per beta) */
    double grad_tol;       /* L-BFGS: stop when ||grad||_inf < grad_tol */
    double ftol;           /* L-BFGS: stop on relative decrease < ftol */
    pf_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
} pf_train_config;

/* The paper protocol: Adam lr 0.0015, batch 64, 50 epochs, patience 5, reset. */
void pf_train_config_paper(pf_train_config *c);

/* Trainer state that persists across betas: workspaces, optimizer, the
 * shuffling RNG and index permutation. The thread team (pf_set_threads
 * before pf_trainer_init) shares every minibatch step. */
typedef struct {
    const pf_arch *arch;
    int n_threads;                     /* team size when set up */
    pf_work work;                      /* the minibatch, shared by the team */
    float *grad;                       /* (n_params) */
    double part_loss[PF_MAX_THREADS];  /* loss of each member's rows */
    pf_work eval_work;     /* large blocks for full-dataset passes */
    pf_optim optim;
    pf_rng rng;            /* minibatch shuffling */
    int *perm;             /* (n) */
    size_t n;
    int batch;
} pf_trainer;

int pf_trainer_init(pf_trainer *t, const pf_arch *arch, const pf_opt_config *opt, int batch,
                    size_t n_train, uint64_t seed, pf_error *err);
void pf_trainer_free(pf_trainer *t);

typedef struct {
    int epochs;
    long steps;
    double epoch_loss;       /* mean minibatch loss of the last epoch */
    double best_epoch_loss;
    int stopped_early;       /* patience ran out before max_epochs */
    double seconds;
} pf_train_result;

/* Train theta at one beta, warm-started from its current value. */
int pf_train_beta(pf_trainer *t, float *theta, const pf_dataset *train,
                  const pf_train_config *cfg, pf_train_result *res, pf_error *err);

/* Monotonic seconds. */
double pf_now(void);

#endif
