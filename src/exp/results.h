/* What experiments measure and the in-memory loops that measure it:
 * evaluations and metrics, sweep points, refinements, phases and the
 * hierarchy, path samples, segments, profiles and the path tracer, and the
 * analysis of a sweep's leg. Internal to the library: these structs carry
 * per-class arrays, so the public API (run.h) reports them as files and
 * JSON documents instead. */
#ifndef PATHFINDER_EXP_RESULTS_H
#define PATHFINDER_EXP_RESULTS_H

#include "pathfinder/core.h"
#include "pathfinder/exp.h"

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


/* What a sweep records at every point (the paper's columns and more). */
typedef struct {
    long index;
    pf_grid_point point;
    pf_metrics m;
    int epochs;
    double seconds;
    int diverged;                      /* training blew up here (pf_train_result.diverged) */
    double start_reg_loss, final_reg_loss;   /* L_beta before and after training here */
    int has_hessian;                   /* the next three were measured (sweep --hessian, --certify) */
    double lambda_min_E, lambda_max_E; /* extreme eigenvalues of H_E; H_L's are these + beta */
    int hessian_converged;
    int has_certificate;               /* --certify: the point was checked (the Hessian columns
                                        * then hold the certificate's extremes, on all samples) */
    double grad_norm;                  /* ||grad L_beta||_inf */
    int certified;                     /* gradient, lambda_min(H_L) >= -eps and Lanczos all passed */
    int escapes;                       /* escapes along negative curvature before that */
    double certify_eps;                /* the eps it was held to */
    double certify_seconds;            /* of the check, escapes and re-convergence */
    long certify_hvps;                 /* Hessian-vector products of the check */
} pf_point_result;

/* Copy a training's epochs, divergence, losses, time and certificate into a
 * point's record (its metrics are measured apart). */
void pf_point_from_train(pf_point_result *res, const pf_train_result *tr, double beta);

/* Called after every point with the model just trained there; a non-zero
 * return stops the sweep with that code. */
typedef int (*pf_point_fn)(void *ctx, const pf_point_result *res, const float *theta,
                           const pf_trainer *t, pf_error *err);

/* The quasi-static sweep: for points[start..n), train theta at each beta,
 * warm-started from the previous point, measure, and report. */
int pf_sweep(pf_trainer *t, float *theta, const pf_dataset *train, const pf_dataset *test,
             const pf_train_config *base, const pf_grid_point *points, long n, long start,
             pf_point_fn on_point, void *ctx, pf_error *err);


/* ------------------------------------------------ second order (certify.c) */

/* One training at one beta, as pf_train_beta runs it before certification. */
typedef int (*pf_train_fn)(pf_trainer *t, float *theta, const pf_dataset *train,
                           const pf_train_config *cfg, pf_train_result *res, pf_error *err);

/* Newton-CG on L_beta over train from theta (the trainer's objective). */
int pf_train_newton(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *cfg,
                    pf_train_result *res, pf_error *err);
/* Certify theta (res->cert), escaping and converging again with train_fn. */
int pf_train_certify(pf_trainer *t, float *theta, const pf_dataset *train, const pf_train_config *cfg,
                     pf_train_result *res, pf_train_fn train_fn, pf_error *err);
void pf_second_order_free(struct pf_second_order *s);
/* The last certified point's modes (2n), or NULL (returns 0). */
int pf_second_order_modes(const pf_trainer *t, const double **modes);
/* Put them back (NULL: forget them). */
int pf_second_order_set_modes(pf_trainer *t, const double *modes, pf_error *err);
/* The lowest mode of the last certified point (n), or NULL. */
const double *pf_trainer_soft_mode(const pf_trainer *t);

/* --------------------------------------------------------- refinement */

/* A transition narrowed down by bisection in beta. */
#define PF_REFINE_MAX_BRANCH 64   /* bisection steps are fewer: beta halves its interval in double */
typedef struct {
    double beta_from, beta_to;    /* final interval: last beta still in the old phase, first in the new */
    pf_metrics from, to;          /* metrics of the two models */
    int steps;                    /* bisection steps (trainings) */
    double seconds;
    double tol;                   /* the tolerance it was bisected to */
    /* With a certifying protocol: the old phase's side of the bisection,
     * the metastable branch refined toward the transition, in the order
     * met (the start beta_from first): beta, lambda_min(H_L) and the
     * certificate of each; and the overlap |<v_min, dtheta/||dtheta||>|
     * of the lowest mode at the final old-phase model with the jump
     * dtheta = theta_to - theta_from (NaN when not measured). */
    int n_branch;
    double branch_beta[PF_REFINE_MAX_BRANCH];
    double branch_lambda_min[PF_REFINE_MAX_BRANCH];
    unsigned char branch_certified[PF_REFINE_MAX_BRANCH];
    double overlap;
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

/* ------------------------------------------------------------ a sweep's leg */

/* One direction of a sweep, in ascending beta, with its transitions, grid
 * gaps, phases and refinements (leg.c). Phases are split at both
 * transitions and gaps; only transitions are labelled T1.. (D1.. down),
 * scored, refined, marked in figures and kept checkpoints for. Points
 * whose training diverged are left out. */
typedef struct {
    int direction;
    long n;
    int n_classes;
    const pf_point_result **rows;  /* (n) pointers into the sweep's rows */
    pf_point_result *sorted;       /* (n) copies in ascending beta */
    double *buf, *beta, *r, *loss, *reg, *acc, *class_acc;
    pf_transition *t;
    long nt;
    long *gaps;                    /* (ng) index (ascending) of the point below each grid gap */
    long ng;
    pf_phase *ph;                  /* (nph) */
    long nph;                      /* nt + ng + 1 when there are classes, else 0 */
    pf_refined *refined;           /* (nt) */
    int *has_refined;
} pf_leg;

int pf_leg_build(pf_leg *g, const pf_point_result *rows, long n_rows, int direction,
                 const pf_detect_config *dc, const pf_encoding *enc, pf_error *err);
void pf_leg_free(pf_leg *g);
/* "up" or "down"; "T3" (up) or "D2" (down) for transition k. */
const char *pf_leg_name(const pf_leg *g);
void pf_leg_label(char *buf, size_t n, const pf_leg *g, long k);
/* The phase just below transition k, or gap k (-1 if none). */
long pf_leg_phase_below_transition(const pf_leg *g, long k);
long pf_leg_phase_below_gap(const pf_leg *g, long k);
/* Across the boundary between phases p and p + 1: lost = before \ after,
 * gained = after \ before, in the leg's direction of travel (both empty
 * when p is not a boundary). */
void pf_leg_boundary_sets(const pf_leg *g, long p, uint64_t *lost, uint64_t *gained);
/* A phase named as its node in the hierarchy would be. */
void pf_phase_label(char *buf, size_t n, const pf_phase *q);

/* ---------------------------------------------- fold of a transition (fold.c) */

/* The saddle-node picture of transition k of a leg, tested on its
 * metastable branch: the certified points of the old phase up to the
 * transition (the sweep's, then the bisection's old-phase side), fitted
 * with lambda_min(H_L) = a (beta_c - beta)^gamma (a down leg: a (beta -
 * beta_c)^gamma) by pf_power_fit_run, free and with gamma = 1/2. gap is
 * how far the fitted beta_c lies outside the refined interval (0 inside;
 * NaN without a refinement), overlap the refinement's. ok: the free fit
 * had at least three points with lambda_min > 0. */
typedef struct {
    double beta, lambda_min;      /* of H_L */
    int from_bisection;
} pf_fold_point;

typedef struct {
    int ok;
    long n_points;
    pf_fold_point *points;        /* (n_points) in ascending distance to the transition's far side */
    pf_power_fit fit, half;
    double gap;
    double overlap;
} pf_fold;

/* The fold's law is asymptotic, near beta_c: max_sweep_points (> 0) keeps
 * only that many of the sweep's certified points nearest the transition
 * (PF_FOLD_SWEEP_POINTS in the reports); the bisection's all count. */
#define PF_FOLD_SWEEP_POINTS 6
int pf_leg_fold(const pf_leg *g, long k, const pf_power_fit_config *cfg, int max_sweep_points, pf_fold *out,
                pf_error *err);
void pf_fold_free(pf_fold *f);

#endif
