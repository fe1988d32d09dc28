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
    pf_eval val;       /* a validation split of the training data (n = 0: none) */
    double r;          /* ||theta - anchor|| (the order parameter) */
    double reg_loss;   /* train loss + beta/2 r^2 (L_beta) */
} pf_metrics;

int pf_measure(pf_work *w, const float *theta, const pf_dataset *train, const pf_dataset *test,
               const float *anchor, double beta, pf_metrics *m, pf_error *err);
/* The same with a validation split (val NULL or empty: none). */
int pf_measure_split(pf_work *w, const float *theta, const pf_dataset *train, const pf_dataset *val,
                     const pf_dataset *test, const float *anchor, double beta, pf_metrics *m,
                     pf_error *err);

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
    pf_input_layer input_layer; /* sparse or dense input layer; auto (default) decides by the
                                 * training set's density (pf_input_layer_resolve) */
    pf_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
} pf_train_config;

/* The paper protocol: Adam lr 0.0015, batch 64, 50 epochs, patience 5, reset. */
void pf_train_config_paper(pf_train_config *c);
/* The defaults for an optimizer: the paper protocol with that optimizer's
 * learning rate (pf_opt_config_default); L-BFGS counts iterations, at most
 * PF_LBFGS_MAX_ITER per beta. */
#define PF_LBFGS_MAX_ITER 500
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
    /* The sparse input layer of minibatch training (internal). While a
     * beta trains on it, the input layer's weights in theta, in the
     * optimizer's moments and in anchor_t are held transposed, as
     * (sizes[0], sizes[1]), so that a pixel's weights are one row; they
     * are put back before pf_train_beta returns. */
    int sparse;            /* the path the last pf_train_beta took */
    float *anchor_t;       /* (n_params) the anchor with its input layer transposed */
    float *c0;             /* (sizes[1]) W_0 b + b_0: the background's part of z_0 */
    float *swap;           /* (sizes[0] sizes[1]) for transposing in place */
    size_t *cursor;        /* (n_threads, batch) each member's walk along the batch's rows */
    float *gblock;         /* (n_threads, PF_SPARSE_BLOCK_BYTES) each member's gradient of a block */
    struct pf_sparse_set *epoch_rows; /* the training set's sparse rows in this epoch's order */
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

/* What a sweep records at every point (the paper's columns and more). */
typedef struct {
    long index;
    pf_grid_point point;
    pf_metrics m;
    int epochs;
    double seconds;
    int diverged;                      /* training blew up here (pf_train_result.diverged) */
    double start_reg_loss, final_reg_loss;   /* L_beta before and after training here */
    int has_hessian;                   /* the next three were measured (sweep --hessian) */
    double lambda_min_E, lambda_max_E; /* extreme eigenvalues of H_E; H_L's are these + beta */
    int hessian_converged;
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

/* --------------------------------------------------------- refinement */

/* A transition narrowed down by bisection in beta. */
typedef struct {
    double beta_from, beta_to;    /* final interval: last beta still in the old phase, first in the new */
    pf_metrics from, to;          /* metrics of the two models */
    int steps;                    /* bisection steps (trainings) */
    double seconds;
} pf_refined;

/* Bisect a transition between beta_from (the side the sweep came from, whose
 * model theta_from is in the old phase) and beta_to (theta_to, new phase).
 * Each step trains at the midpoint, warm-started from the latest old-phase
 * model, as the quasi-static sweep would, and sides with the phase whose r
 * is nearer in log scale. Stops when |beta_to - beta_from| <= tol. On
 * return theta_from and theta_to hold the models at the final interval's
 * ends (the saddle anchors for probes). */
int pf_refine_transition(pf_trainer *t, const pf_dataset *train, const pf_dataset *test,
                         const pf_train_config *base, float *theta_from, double beta_from,
                         float *theta_to, double beta_to, double tol, pf_refined *out,
                         pf_error *err);

/* ------------------------------------------------------ phases, hierarchy */

/* What ends a phase on one side. */
typedef enum {
    PF_BOUND_END,          /* the first or last point of the sweep */
    PF_BOUND_TRANSITION,   /* a detected first-order transition */
    PF_BOUND_GAP,          /* a gap in the grid (pf_detect_gaps), not a transition */
} pf_bound;

/* "end", "transition", "gap" */
const char *pf_bound_name(pf_bound b);

/* A plateau: the stretch of a sweep between two boundaries (transitions or
 * grid gaps). */
typedef struct {
    long first, last;              /* point indices (ascending beta), inclusive */
    double beta_from, beta_to;
    double mean_accuracy;          /* test accuracy, mean over the plateau */
    double mean_loss;              /* train loss, mean over the plateau */
    double mean_r;
    int n_classes;
    double class_mean[PF_MAX_CLASSES];
    double class_above[PF_MAX_CLASSES];     /* share of the points where it beat the threshold */
    uint64_t encoded[PF_MAX_CLASSES / 64];  /* bit set: reliably encoded (see pf_encoding) */
    uint64_t partial[PF_MAX_CLASSES / 64];  /* bit set: above the threshold on at least a
                                             * quarter of the points, but not encoded */
    int trivial;                   /* train loss within 0.02 of ln K: encodes nothing */
    int unresolved;                /* not trivial, yet no class encoded: known by its
                                    * partial classes */
    pf_bound bound_from, bound_to; /* what ends it at beta_from and at beta_to */
    long transition_from, transition_to;  /* the transition there (index), -1 if none */
} pf_phase;

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

/* Split a curve of n points (ascending beta) at its transitions t[0..nt)
 * and its grid gaps (indices from pf_detect_gaps, ascending; may be NULL
 * with n_gaps 0) into plateaus and average each. class_acc is (n, n_classes)
 * row-major. *phases is allocated with *n_phases entries: one more than the
 * boundaries (a gap at a transition's points counts once, as the transition). */
int pf_phases(const double *beta, const double *test_acc, const double *train_loss, const double *r,
              const double *class_acc, long n, int n_classes, const pf_transition *t, long nt,
              const long *gaps, long n_gaps, const pf_encoding *enc, pf_loss loss,
              pf_phase **phases, long *n_phases, pf_error *err);

int pf_set_has(const uint64_t *set, int k);
int pf_set_count(const uint64_t *set, int n_classes);
/* "{0,1,7}" */
void pf_set_str(const uint64_t *set, int n_classes, char *buf, size_t n);

/* The hierarchy of nested accuracy basins seen in one or more sweeps. Its
 * nodes are the distinct encoded sets, one node per distinct partial set
 * of unresolved phases, and one for the trivial phase. Links go to the
 * smallest container: a set to the smallest seen set strictly containing
 * it; the trivial node to the smallest encoded set; an unresolved node to
 * the smallest encoded set it was entered from (the nearest encoding
 * phase below it in beta, in each run that saw it; failing that, the
 * smallest encoded set holding all its partial classes). Unresolved and
 * trivial nodes are leaves. */
typedef struct {
    uint64_t set[PF_MAX_CLASSES / 64];      /* encoded classes (empty when unresolved or trivial) */
    uint64_t partial[PF_MAX_CLASSES / 64];  /* unresolved: the partial classes that name it */
    int size;            /* classes in set */
    int trivial;         /* the trivial phase's node */
    int unresolved;      /* phases not trivial that encode no class, with these partial classes */
    int parent;          /* node index, -1 for a root */
    int seen;            /* how many phases (across runs) had this set */
    double beta_min, beta_max;   /* betas where it was seen */
} pf_basin;

/* "{0,1,7}", "{} trivial" or "unresolved: partial {0,7}" */
void pf_basin_label(const pf_basin *b, int n_classes, char *buf, size_t n);

typedef struct {
    int n_classes;
    int n;
    pf_basin *nodes;     /* encoded sets by size, largest first; then unresolved
                          * nodes, most partial classes first; then the trivial one */
    int consistent;      /* 1 if every run's chain of encoded sets is nested (unresolved
                          * and trivial phases encode nothing: nested with any) */
} pf_hierarchy;

/* Merge the phases of several runs (run r has counts[r] phases). */
int pf_hierarchy_build(const pf_phase *const *runs, const long *counts, int n_runs, int n_classes,
                       pf_hierarchy *h, pf_error *err);
void pf_hierarchy_free(pf_hierarchy *h);

/* ================================================================ paths */
/* Pathfinder paths (path.c): a start model, an anchor, beta rising with warm
 * starts; the converged points theta*(beta) form a path from the start
 * toward the anchor. Certification measures the error on the straight
 * segments between consecutive points, not only at the points. */

/* out = (1 - t) a + t b */
void pf_lerp(float *out, const float *a, const float *b, size_t n, double t);

/* What certification records at one model. The error is the classification
 * error in percent (100 - accuracy), or the mean loss for regression.
 *
 * Paths are steered by training data only: every decision (the schedule's
 * judgement of a step, where certification looks closer, whether a bridge
 * is needed and accepted) uses the steering error, which is the error on a
 * validation split of the training set when there is one, else the
 * training error. The test error is measured and reported, never used. */
typedef struct {
    double t;                        /* position on its segment: 0 start .. 1 end */
    double train_error, test_error;
    double train_loss, test_loss;
    double val_error, val_loss;      /* NaN without a validation split */
} pf_path_sample;

/* The error that steers: val_error if there is a validation split, else train_error. */
double pf_path_sample_steer(const pf_path_sample *s);

/* Measure one model (theta) into out->*_error and *_loss (not t). */
typedef int (*pf_sample_fn)(void *ctx, const float *theta, pf_path_sample *out, pf_error *err);

/* The standard measure: pf_evaluate over the training set, the validation
 * split (val NULL or empty: none) and the test set. */
typedef struct {
    pf_work *work;
    const pf_dataset *train, *val, *test;
} pf_sample_data;

int pf_sample_datasets(void *ctx, const float *theta, pf_path_sample *out, pf_error *err);
/* val and test may be NULL or empty. */
void pf_path_sample_from_evals(const pf_eval *train, const pf_eval *val, const pf_eval *test,
                               pf_path_sample *out);
void pf_path_sample_from_metrics(const pf_metrics *m, pf_path_sample *out);

typedef struct {
    int interior;     /* evenly spaced interior samples per segment (default 5) */
    double rise;      /* refine around a sample whose steering error exceeds the higher
                       * endpoint's by more than this, in error units (default 0.5 points) */
    int levels;       /* rounds of bisection at most (default 3; 0: none) */
} pf_certify_config;

void pf_certify_config_default(pf_certify_config *c);

/* The samples of one straight segment, ascending in t; samples[0] and
 * samples[n-1] are its endpoints. */
typedef struct {
    long n;
    pf_path_sample *samples;
    long n_refined;                          /* samples added by bisection */
    double max_train_error, max_test_error;  /* over all samples, endpoints included */
    double max_val_error;                    /* NaN without a validation split */
} pf_segment;

/* Certify the segment a -> b (whose endpoint samples the caller already
 * has): measure `interior` evenly spaced points t = k/(interior+1); then,
 * for up to `levels` rounds, every sample that is a local maximum of the
 * train or test error and exceeds the higher endpoint by more than `rise`
 * gets the midpoints of its two neighbouring sub-segments measured (in the
 * steering error, see pf_path_sample). So a
 * bump is chased toward its peak at a cost of at most two samples per peak
 * and round. With interior = m - 2 and levels = 0 this is the plain
 * m-point profile of the straight line. */
int pf_certify_segment(const float *a, const float *b, size_t n_params, const pf_path_sample *at_a,
                       const pf_path_sample *at_b, const pf_certify_config *cfg,
                       pf_sample_fn measure, void *ctx, pf_segment *out, pf_error *err);
void pf_segment_free(pf_segment *s);

/* An error profile along a whole path: s is the distance travelled from the
 * start (along the polygon of path points), node marks the path points
 * themselves (0 for certification samples between them). */
typedef struct {
    long n, cap;
    double *s, *train_error, *test_error;
    double *val_error;   /* NaN without a validation split */
    unsigned char *node;
} pf_profile;

/* Append a segment of the given length that starts at distance s0; the
 * segment's first sample is skipped when skip_first (it repeats the last
 * one already in the profile). */
int pf_profile_add(pf_profile *p, const pf_segment *seg, double s0, double length, int skip_first,
                   pf_error *err);
void pf_profile_free(pf_profile *p);

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

typedef struct {
    long n_points;       /* the start included */
    long rejected;       /* adaptive tries that were undone */
    long jumps;          /* adaptive steps accepted as jumps (at the smallest ratio) */
    long drifts;         /* adaptive steps accepted as drift (at the smallest ratio) */
    long bridges_tried;  /* segments that climbed more than bridge_barrier, at any level */
    long bridges;        /* of them, bridged (the bridge climbed less) */
    long bridge_points;  /* points on accepted bridges */
    int converged;       /* the last point is within tol of the anchor */
    double length;       /* sum of steps between points (the closing segment not included) */
    double final_beta;
    double seconds;
} pf_path_result;

/* Where the main path stands after one of its points: with the point's
 * parameters and the trainer's RNG and optimizer state, all a rerun needs
 * to continue as if never stopped. */
typedef struct {
    pf_schedule schedule;
    long grid_index;             /* next grid beta (fixed grid) */
    long points;                 /* main-path points so far, the start included */
    double length;
    double prev_r;               /* ||theta - anchor|| at the point */
    pf_path_sample prev_sample;  /* the point's sample */
    pf_path_result result;       /* counters so far */
} pf_path_state;

/* One point of a path. Point 0 is the start itself (beta 0, not trained).
 * A bridge point (bridge > 0) belongs to a path traced between two
 * consecutive points of the level above: its beta and res.m.r refer to
 * that bridge's own anchor (the later of the two points). */
typedef struct {
    pf_point_result res;   /* beta, metrics with r = ||theta - its anchor||, epochs, seconds */
    int bridge;            /* 0 on the main path, d on a bridge d levels down */
    double dist_start;     /* ||theta - start|| */
    double dist_anchor;    /* ||theta - anchor|| (the path's anchor, whatever the level) */
    double step;           /* ||theta - previous point|| */
    double length;         /* cumulative path length up to this point */
    int retries;           /* refused tries before this point was accepted */
    int jump;              /* adaptive, accepted at the smallest ratio although too far:
                            * 1 a jump (it shrank with the step), 2 drift (it did not) */
    pf_segment segment;    /* certification of previous point -> this one (n = 1 at the start) */
    const pf_path_state *state; /* main-path points after the start: the state to resume
                                 * from (valid during the callback), else NULL */
} pf_path_point;

/* Called after every point with its model; a non-zero return stops the
 * path with that code. The segment's samples belong to the tracer and are
 * freed after the call. */
typedef int (*pf_path_point_fn)(void *ctx, const pf_path_point *p, const float *theta,
                                const pf_trainer *t, pf_error *err);

/* Bridges. Minimizers of L_beta need not move continuously with beta: at a
 * first-order transition of the path the warm-started model snaps into
 * another basin, and the straight segment across the snap can climb a
 * ridge. A segment whose barrier (its highest steering error above the
 * higher of its two endpoints) exceeds bridge_barrier is bridged: a
 * path is traced from its first point, anchored at its second, with the
 * adaptive schedule (step cap and tolerance scaled by the segment's length
 * over the whole path's), and its own segments bridged in turn, down to
 * bridge_depth levels. The bridge replaces the segment if its barrier,
 * measured against the same two endpoints, is lower. */
typedef struct {
    const double *grid;          /* fixed ascending betas, or NULL for the adaptive schedule */
    long n_grid;
    pf_schedule_config schedule; /* adaptive, and every bridge: all of it; grid: nothing */
    pf_certify_config certify;
    int bridge_depth;            /* levels of bridges (0: none) */
    double bridge_barrier;       /* error units (points): bridge segments that climb more */
    /* Resume: theta holds the point the state was taken at, the trainer has
     * its RNG and optimizer state back, and start is the path's start (NULL
     * for a fresh path, which starts at theta). The start is not emitted
     * again. */
    const pf_path_state *resume;
    const float *start;
    /* A validation split of the training data that steers the path (NULL:
     * the training set steers); measured at every point and sample. */
    const pf_dataset *val;
} pf_path_config;

/* Trace a path: theta holds the start on entry and the last point on
 * return. Every beta is trained by base (with beta and anchor set),
 * warm-started from the previous point, measured with the trainer's
 * evaluation workspace, and its segment from the previous point certified
 * (and bridged, see pf_path_config). on_point sees the points in path
 * order, a bridge's points before the point that ends it. */
int pf_path_trace(pf_trainer *t, float *theta, const float *anchor, const pf_dataset *train,
                  const pf_dataset *test, const pf_train_config *base, const pf_path_config *pc,
                  pf_path_point_fn on_point, void *ctx, pf_path_result *out, pf_error *err);
/* ============================================================ end paths */

#endif
