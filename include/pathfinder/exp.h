/* pathfinder experiments: the building blocks of every experiment, on the
 * core.
 *
 * The per-beta loop of the paper protocol (train to convergence at one beta,
 * warm-started from the current parameters) is pf_train_beta; sweeps, paths
 * and probes are sequences of it. This header holds the trainer, the beta
 * grids, the transition detector and the settings of phases and paths; the
 * whole experiments, run into folders, are in run.h.
 */
#ifndef PATHFINDER_EXP_H
#define PATHFINDER_EXP_H

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"

#define PF_MAX_CLASSES 1024

/* -------------------------------------------------- certified minima */

/* A check that x is a minimum of an objective, to the tolerances a float
 * model allows: the gradient is at most grad_tol (max norm), and the
 * lowest eigenvalue of the Hessian, found by Lanczos, is at least -eps with
 *     eps = eps_factor * tol * max(|lambda_max|, |lambda_min|),
 * tol being Lanczos' relative residual tolerance: a converged Ritz value
 * lies within tol * max|lambda| of an eigenvalue, so eps is eps_factor
 * such residual bounds (it also covers the float rounding of the
 * products, ~1e-7 of lambda_max). Lanczos gives an upper bound on
 * lambda_min that is sharp when the lowest mode is isolated, as a soft mode
 * near a fold is; warm-started from the previous point's lowest mode, it
 * follows that mode along a sweep. A point whose lowest eigenvalue is below
 * -eps is left along its eigenvector (pf_escape) and converged again, up to
 * max_escapes times; a point that still fails, or whose gradient or
 * Lanczos did not converge, is certified 0: marked, never passed
 * silently. */
typedef struct {
    double grad_tol;            /* (default 1e-6; pf_train_beta uses its config's grad_tol) */
    pf_lanczos_config lanczos;  /* tol (default 1e-6), max_dim (300), seed, team */
    double eps_factor;          /* (default 10) */
    int max_escapes;            /* (default 3) */
} pf_certificate_config;

void pf_certificate_config_default(pf_certificate_config *c);

typedef struct {
    double grad_inf;            /* ||grad||_inf at the final point */
    double lambda_min, lambda_max;   /* of the Hessian there (H_L for an MLP's L_beta) */
    double res_min, res_max;    /* their measured residuals */
    double eps;
    int lanczos_converged;      /* the lowest Ritz pair's measured residual <= tol max|lambda| */
    int grad_ok, curvature_ok;
    int certified;              /* all three */
    int escapes;                /* escapes taken (each followed by a re-convergence) */
    double escape_decrease;     /* how much f fell on them, in total */
    long hvps;
    int lanczos_iterations;     /* of the last check */
    double seconds;             /* checks, escapes and re-convergence */
} pf_certificate;

/* Converge x again after an escape (the caller's optimizer). */
typedef int (*pf_reconverge_fn)(void *ctx, double *x, pf_error *err);

/* Certify x (in place: escapes move it). modes (2n) holds the lowest and
 * highest modes of the previous point when *have_modes, used as Lanczos'
 * start, and receives this point's; reconverge may be NULL (no escapes). */
int pf_certify_minimum(const pf_objective *obj, double *x, const pf_certificate_config *cfg,
                       double *modes, int *have_modes, pf_reconverge_fn reconverge, void *ctx,
                       pf_certificate *out, pf_error *err);

/* ----------------------------------------------------------- training */

typedef struct {
    double beta;          /* the beta being trained */
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
    double grad_tol;       /* L-BFGS, Newton: stop when ||grad||_inf < grad_tol */
    double ftol;           /* L-BFGS: stop on relative decrease < ftol */
    pf_input_layer input_layer; /* sparse or dense input layer; auto (default) decides by the
                                 * training set's density (pf_input_layer_resolve) */
    pf_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
    /* Certify every trained point (pf_certify_minimum on L_beta over the
     * whole training set, gradient tolerance grad_tol): results in
     * pf_train_result.cert. */
    int certify;
    pf_certificate_config certificate;
} pf_train_config;

/* The paper protocol: Adam lr 0.0015, batch 64, 50 epochs, patience 5, reset. */
void pf_train_config_paper(pf_train_config *c);
/* The defaults for an optimizer: the paper protocol with that optimizer's
 * learning rate (pf_opt_config_default); L-BFGS and Newton count
 * iterations, at most PF_LBFGS_MAX_ITER per beta, and run full batch;
 * Newton converges to ||grad L_beta||_inf <= 1e-6. */
#define PF_LBFGS_MAX_ITER 500
#define PF_NEWTON_GRAD_TOL 1e-6
void pf_train_config_default(pf_train_config *c, pf_opt_kind kind);
/* The seed of the minibatch shuffling of a model seeded with seed: its own
 * stream, so that initialization and order are independent. */
uint64_t pf_shuffle_seed(uint64_t seed);

/* Trainer state that persists across betas: workspaces, optimizer, the
 * shuffling RNG and index permutation. The context's thread team shares
 * every minibatch step. */
typedef struct {
    const pf_arch *arch;
    pf_ctx *ctx;                       /* whose team shares every step */
    int n_threads;                     /* its size */
    pf_work work;                      /* the minibatch, shared by the team */
    float *grad;                       /* (n_params) */
    double part_loss[PF_MAX_THREADS];  /* loss of each member's rows */
    pf_work eval_work;     /* large blocks for full-dataset passes */
    pf_optim optim;
    pf_rng rng;            /* minibatch shuffling */
    int *perm;             /* (n) */
    size_t n;
    int batch;
    /* Newton and certification: the objective with its Hessian operator,
     * and the last certified point's modes (made when first needed). */
    struct pf_second_order *second;
    /* The sparse input layer of minibatch training (internal). While a
     * beta trains on it, the input layer's weights in theta, in the
     * optimizer's moments and in anchor_t are held transposed, in one
     * panel (sizes[0], units) per team member, so that a pixel's weights
     * of a member's units are one row of its own; they are put back before
     * pf_train_beta returns. */
    int sparse;            /* the path the last pf_train_beta took */
    float *anchor_t;       /* (n_params) the anchor with its input layer transposed */
    float *c0;             /* (sizes[1]) W_0 b + b_0: the background's part of z_0 */
    float *swap;           /* (sizes[0] sizes[1]) for transposing in place */
    size_t *cursor;        /* (n_threads, batch) each member's walk along the batch's rows */
    float *gblock;         /* (n_threads, PF_SPARSE_BLOCK_BYTES) each member's gradient of a block */
    float *theta_line;     /* (n_params) theta while a minibatch beta trains, on cache lines */
    float *xrows;          /* (n_threads, batch, sizes[0]) each member's copy of the batch (dense
                            * input layer, two or more members) */
    struct pf_sparse_set *epoch_rows; /* the training set's sparse rows in this epoch's order */
    float *stage_grads;    /* (n_threads, the stages' parameters) each member's gradient of its
                            * rows (a convolutional model, two or more members) */
} pf_trainer;

int pf_trainer_init(pf_trainer *t, pf_ctx *ctx, const pf_arch *arch, const pf_opt_config *opt,
                    int batch, size_t n_train, uint64_t seed, pf_error *err);
void pf_trainer_free(pf_trainer *t);

/* Everything of a trainer's that carries from one beta to the next and so
 * decides what a resumed run computes: the optimizer's kind, step count and
 * buffers (Adam's moments, SGD's momentum buffer), and the shuffling RNG.
 * pf_trainer_get_state copies them out (m, v allocated; NULL for a buffer
 * the optimizer does not have), pf_trainer_set_state puts them back after
 * checking they belong to this kind of optimizer and this model. */
typedef struct {
    pf_opt_kind kind;
    long step;
    pf_rng rng;
    size_t n;        /* parameters */
    float *m, *v;    /* (n) or NULL */
    double *modes;   /* (2n) certification's lowest and highest modes of the last point,
                      * Lanczos' next start; or NULL */
} pf_trainer_state;

int pf_trainer_get_state(const pf_trainer *t, pf_trainer_state *s, pf_error *err);
int pf_trainer_set_state(pf_trainer *t, const pf_trainer_state *s, pf_error *err);
void pf_trainer_state_free(pf_trainer_state *s);

typedef struct {
    int epochs;
    long steps;
    double epoch_loss;       /* mean minibatch loss of the last epoch */
    double best_epoch_loss;
    int stopped_early;       /* patience ran out before max_epochs */
    double seconds;          /* all of it, setup included */
    double setup_seconds;    /* before the first epoch: the sparse form of the training set
                              * (made once per trainer and dataset) and the layout */
    /* L_beta at the start (first minibatch's loss + beta/2 r^2) and at the
     * end (last epoch's mean loss + beta/2 r^2); diverged when the end is
     * above 10 |start| + 1: a finite blow-up (first-order optimizers). */
    double start_reg_loss, final_reg_loss;
    int diverged;
    double grad_inf;         /* L-BFGS, Newton: ||grad L_beta||_inf at the end */
    int has_cert;            /* the config asked for certification: */
    pf_certificate cert;
} pf_train_result;

/* Train theta at one beta, warm-started from its current value. The config
 * must ask for the optimizer and batch size the trainer was built for
 * (PF_EINPUT otherwise). */
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

/* Parse a beta grid: a comma-separated list of parts, each a value, a
 * range "start:stop:step" (inclusive, steps counted, not accumulated) or
 * "geom:start:stop:n" (n points, start > 0), e.g. "0,0.02:0.09:0.0005".
 * The values come back sorted ascending without duplicates. */
int pf_grid_parse(const char *spec, double **betas, long *n, pf_error *err);

/* Expand ascending betas into the visiting order for a direction: "up",
 * "down", or "loop" (up, then back down without repeating the top). */
int pf_grid_expand(const double *betas, long n, const char *direction, pf_grid_point **points,
                   long *n_points, pf_error *err);

/* -------------------------------------------------------- transitions */

/* A curve measured along a sweep, in the order of ascending beta. */
typedef struct {
    long n;
    const double *beta;
    const double *r;          /* order parameter ||theta - anchor|| */
    const double *loss;       /* E, train loss */
    const double *reg_loss;   /* L_beta */
    const double *accuracy;   /* test accuracy, percent (may be NULL) */
    /* ln K of a K-class cross-entropy (0: no such rule): where E enters
     * the trivial band (within PF_TRIVIAL_TOL of it) and stays there to the
     * end of the leg, the gap before is a transition, the collapse into the
     * trivial phase, even when r relaxes over several points after it and
     * the trend fits cannot score it */
    double trivial_loss;
} pf_curve;

/* A plateau whose mean train loss is this close to ln K is the trivial phase. */
#define PF_TRIVIAL_TOL 0.02

typedef struct {
    int window;          /* points on each side for the local trends (default 5) */
    double threshold;    /* jump / local noise needed (default 6) */
    double min_rel_jump; /* smallest relative drop of r that counts (default 0.02) */
    double major_accuracy_drop;  /* trend-corrected drop of test accuracy, in points, that
                                  * makes a transition major (default 2) */
    double gap_factor;   /* a grid gap this many times wider than its neighbours splits
                          * the sweep (pf_detect_gaps; default 8, 0: never) */
} pf_detect_config;

void pf_detect_config_default(pf_detect_config *c);

/* Gaps in the grid: the pairs of consecutive points (i, i+1) whose beta step
 * is more than gap_factor times the median step of the up to `window` gaps
 * on each side, both in beta and in log beta (a step from beta = 0 is
 * infinitely wide in log beta). A point cut off by a gap is not on the same
 * plateau as the points across it, whatever r does there: with beta = 0,
 * then 0.02, 0.0205, ..., beta = 0 is a phase of its own. A gap is not a
 * transition: it is not scored, refined or marked as one. *below gets the
 * index i of each gap, ascending (NULL when there are none). */
int pf_detect_gaps(const double *beta, long n, const pf_detect_config *cfg, long **below,
                   long *n_gaps, pf_error *err);

typedef struct {
    long below, above;        /* indices of the points on each side */
    double beta_below, beta_above;
    double r_below, r_above, jump_r;       /* jump_r: trend-corrected jump of log r */
    double loss_below, loss_above, jump_loss;
    double reg_below, reg_above, jump_reg;
    double acc_below, acc_above;
    double jump_accuracy;     /* trend-corrected jump of test accuracy (points) */
    double score;             /* |jump of log r| / local noise */
    int major;
} pf_transition;

/* Find first-order transitions: steps of log r against log beta that stand
 * out from the local smooth trends on both sides, with E jumping up. The
 * trends are fitted within the stretches between grid gaps (pf_detect_gaps),
 * never across one. *out is allocated (may be NULL when none are found). */
int pf_detect_transitions(const pf_curve *c, const pf_detect_config *cfg, pf_transition **out,
                          long *n_out, pf_error *err);

/* ------------------------------------------------------------ phases */

/* When a plateau encodes a class. Per-class accuracies of minibatch sweeps
 * flicker: a class the model holds only now and then (0% at one beta, 90%
 * at the next) can average above 50% without being held. A class is
 * encoded when its mean accuracy over the plateau is above threshold and
 * it is above threshold on at least `fraction` of the plateau's points
 * (fraction 0: the mean alone decides). */
typedef struct {
    double threshold;    /* percent (default 50) */
    double fraction;     /* default 0.8 */
} pf_encoding;

void pf_encoding_default(pf_encoding *e);

/* ------------------------------------------------------- fold analysis */

/* A saddle-node (fold) bifurcation at beta_c: as beta rises to beta_c the
 * metastable minimum and a saddle of L_beta merge, lambda_min(H_L) at the
 * minimum vanishes like (beta_c - beta)^(1/2) and the barrier between them
 * like (beta_c - beta)^(3/2). pf_power_fit_run fits y = a (beta_c - beta)^gamma
 * (fold.c has the method):
 *   PF_POWER_FREE   beta_c, gamma and a free (beta_c above every point);
 *   PF_POWER_FIXED  beta_c given (gamma and a free; points at or above it
 *                   left out);
 *   PF_POWER_HALF   gamma = 1/2: y^2 is linear in beta, and beta_c where it
 *                   reaches zero.
 * Points with y <= 0 are left out; at least three are needed (else ok 0).
 * Intervals: percentiles of a seeded bootstrap over the points, given only
 * when there are at least two points more than the fit's parameters (FREE 5,
 * FIXED and HALF 4); else NaN, as an exact fit says nothing of its spread. */
typedef enum { PF_POWER_FREE, PF_POWER_FIXED, PF_POWER_HALF } pf_power_kind;

typedef struct {
    int n_boot;        /* resamples (default 400; 0: no intervals) */
    uint64_t seed;
    double level;      /* of the intervals (default 0.95) */
} pf_power_fit_config;

void pf_power_fit_config_default(pf_power_fit_config *c);

typedef struct {
    pf_power_kind kind;
    long n;                               /* points used */
    double beta_c, beta_c_lo, beta_c_hi;  /* (FIXED: the given one, its interval NaN-free copies) */
    double exponent, exponent_lo, exponent_hi;
    double amplitude;
    double rms;                           /* residual rms of log y */
    long n_boot;                          /* resamples that gave a fit */
    int ok;
} pf_power_fit;

int pf_power_fit_run(const double *beta, const double *y, long n, pf_power_kind kind,
                     double beta_c_fixed, const pf_power_fit_config *cfg, pf_power_fit *out,
                     pf_error *err);

/* A certified point of a branch of minima. */
typedef struct {
    double beta;
    double lambda_min, lambda_max;   /* of H_L (NaN when not certified) */
    double grad_inf;
    double r;                        /* ||theta - anchor|| */
    int certified;
    double seconds;
} pf_branch_point;

/* The metastable branch below a transition, toward lower beta: from theta
 * (the last model below, at beta_from) train at beta_from - d_k for n_points
 * distances d_k geometric from d_min to d_max, each warm-started from the
 * previous (base should certify, so that lambda_min is measured). theta
 * ends at the last point; out has room for n_points. */
int pf_fold_ladder(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *base,
                   double beta_from, double d_min, double d_max, int n_points, pf_branch_point *out,
                   int *n_out, pf_error *err);

/* ================================================================ paths */
/* Pathfinder paths (path.c): a start model, an anchor, beta rising with warm
 * starts; the converged points theta*(beta) form a path from the start
 * toward the anchor. Certification measures the error on the straight
 * segments between consecutive points, not only at the points. */

/* out = (1 - t) a + t b */
void pf_lerp(float *out, const float *a, const float *b, size_t n, double t);

typedef struct {
    int interior;     /* evenly spaced interior samples per segment (default 5) */
    double rise;      /* refine around a sample whose steering error exceeds the higher
                       * endpoint's by more than this, in error units (default 0.5 points) */
    int levels;       /* rounds of bisection at most (default 3; 0: none) */
} pf_certify_config;

void pf_certify_config_default(pf_certify_config *c);

/* The barrier of a profile e[0..n): max_i e[i] - max(e[0], e[n-1]), the
 * error climbed above the higher endpoint (0 if it never goes above). */
double pf_error_barrier(const double *e, long n);

/* The adaptive geometric schedule. Each candidate is the last accepted beta
 * times `ratio` (the first is beta_start). A trained candidate is too far
 * if it moved by more than step_cap or raised the steering error (see
 * pf_path_sample) by more than error_jump points (its badness, the larger of move/step_cap and
 * rise/error_jump, is above 1). A too-far candidate is undone and retried
 * from the previous state with ratio - 1 halved, down to min_ratio; there a
 * still-too-far step is accepted:
 *  - as a jump if the badness shrank with the beta step (to at most 0.7 of
 *    the first refused try's): a steep stretch or a first-order transition;
 *    the ratio stays small;
 *  - as drift if it did not: the move is not the beta step's doing (noise,
 *    or a jump any step past it makes); the ratio goes back to its value
 *    before the retries.
 * After two easy steps in a row (moved at most step_cap/2 and raised the
 * error by at most error_jump/2, without retries) ratio - 1 doubles, up to
 * max_ratio. The path ends when ||theta - anchor|| <= tol, the next beta
 * would pass max_beta, or it has max_points points.
 * The tracer measures a move as the approach to the anchor, r_prev - r with
 * r = ||theta - anchor|| (0 if r grew), not as ||theta - theta_prev||:
 * minibatch training wanders in flat directions by an amount set by the
 * learning rate, whatever beta is, and that wander hardly changes r; and
 * along a branch of minimizers r never grows with beta, so a growing r is
 * the training's own doing (a start still converging), not the step's. */
typedef struct {
    double beta_start;   /* 1e-8 */
    double ratio;        /* 1.5 */
    double max_ratio;    /* 1.5 */
    double min_ratio;    /* 1.01 */
    double max_beta;     /* 1 */
    double step_cap;     /* largest |change of r| per step (the CLI: 10% of ||A - B||) */
    double error_jump;   /* steering error percentage points (3) */
    double tol;          /* absolute distance (the CLI: 1% of ||A - B||) */
    long max_points;     /* 200, the start included */
} pf_schedule_config;

void pf_schedule_config_default(pf_schedule_config *c);

/* Connect's and probe's defaults for the parts of a path that scale with
 * the distance D = ||A - B||: the step cap and the tolerance as fractions
 * of D; and the bridges. */
#define PF_PATH_STEP_CAP_FRACTION 0.1
#define PF_PATH_TOL_FRACTION 0.01
#define PF_BRIDGE_DEPTH 2
#define PF_BRIDGE_BARRIER 0.5

typedef struct {
    double beta;         /* last accepted beta (beta_start / ratio before the first) */
    double ratio;        /* current ratio */
    int easy;            /* easy steps in a row */
    double first_bad;    /* badness of the first refused try of this point, 0 if none */
    double ratio_before; /* the ratio before the retries began */
    long accepted, rejected, forced, drift;
} pf_schedule;

enum { PF_STEP_ACCEPT = 0, PF_STEP_RETRY = 1, PF_STEP_FORCED = 2, PF_STEP_DRIFT = 3 };

void pf_schedule_init(pf_schedule *s, const pf_schedule_config *c);
double pf_schedule_next(const pf_schedule *s);
/* Judge a trained candidate beta: move = how far it went (the tracer:
 * max(0, r_prev - r)), rise = steering error change (new - previous).
 * PF_STEP_ACCEPT, PF_STEP_RETRY (the ratio was reduced), PF_STEP_FORCED
 * (accepted at the smallest ratio as a jump) or PF_STEP_DRIFT (accepted at
 * the smallest ratio: the retries did not make it smaller). */
int pf_schedule_judge(pf_schedule *s, const pf_schedule_config *c, double beta, double move,
                      double rise);

/* ============================================================ end paths */

#endif
