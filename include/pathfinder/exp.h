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

/* ------------------------------------------------------------- sweeps */

/* One point of a sweep: a strength and the direction it was reached in. */
typedef struct {
    double beta;
    int direction;   /* +1 going up in beta, -1 coming down */
} pf_grid_point;

/* Parse a beta grid: "0,0.001,0.002", "start:stop:step" (inclusive, steps
 * counted, not accumulated), or "geom:start:stop:n" (n points, start > 0).
 * The values come back sorted ascending without duplicates. */
int pf_grid_parse(const char *spec, double **betas, long *n, pf_error *err);

/* Expand ascending betas into the visiting order for a direction: "up",
 * "down", or "loop" (up, then back down without repeating the top). */
int pf_grid_expand(const double *betas, long n, const char *direction, pf_grid_point **points,
                   long *n_points, pf_error *err);

/* What a sweep records at every point (the paper's columns and more). */
typedef struct {
    long index;
    pf_grid_point point;
    pf_metrics m;
    int epochs;
    double seconds;
} pf_point_result;

/* Called after every point with the model just trained there; a non-zero
 * return stops the sweep with that code. */
typedef int (*pf_point_fn)(void *ctx, const pf_point_result *res, const float *theta,
                           const pf_trainer *t, pf_error *err);

/* The quasi-static sweep: for points[start..n), train theta at each beta,
 * warm-started from the previous point, measure, and report. */
int pf_sweep(pf_trainer *t, float *theta, const pf_dataset *train, const pf_dataset *test,
             const pf_train_config *base, const pf_grid_point *points, long n, long start,
             pf_point_fn on_point, void *ctx, pf_error *err);

/* -------------------------------------------------------- transitions */

/* A curve measured along a sweep, in the order of ascending beta. */
typedef struct {
    long n;
    const double *beta;
    const double *r;          /* order parameter ||theta - anchor|| */
    const double *loss;       /* E, train loss */
    const double *reg_loss;   /* L_beta */
    const double *accuracy;   /* test accuracy, percent (may be NULL) */
} pf_curve;

typedef struct {
    int window;          /* points on each side for the local trends (default 5) */
    double threshold;    /* jump / local noise needed (default 8) */
    double min_rel_jump; /* smallest relative jump of r that counts (default 0.01) */
    double major_accuracy_drop;  /* percentage points that make a transition major (default 2) */
} pf_detect_config;

void pf_detect_config_default(pf_detect_config *c);

typedef struct {
    long below, above;        /* indices of the points on each side */
    double beta_below, beta_above;
    double r_below, r_above, jump_r;       /* jump_r: trend-corrected jump of log r */
    double loss_below, loss_above, jump_loss;
    double reg_below, reg_above, jump_reg;
    double acc_below, acc_above;
    double score;             /* |jump of log r| / local noise */
    int major;
} pf_transition;

/* Find first-order transitions: steps of log r against log beta that stand
 * out from the local smooth trends on both sides, with E jumping up.
 * *out is allocated (may be NULL when none are found). */
int pf_detect_transitions(const pf_curve *c, const pf_detect_config *cfg, pf_transition **out,
                          long *n_out, pf_error *err);

#endif
