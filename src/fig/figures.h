/* The figures (figures.c, fig_paths.c, fig_curves.c), drawn from rows and
 * structs in memory. Internal to the figure library; fig.h has its public
 * calls. */
#ifndef PATHFINDER_FIG_FIGURES_H
#define PATHFINDER_FIG_FIGURES_H

#include "pathfinder/fig.h"
#include "exp/results.h"

/* Figures are drawn with PLplot's cairo drivers. Each call writes
 * BASE.png (raster, for a quick look) and BASE.pdf and BASE.svg (vector, for
 * papers). rows are one direction of a sweep in ascending beta; transitions
 * are marked with vertical lines. */

/* Test accuracy, r, E (train loss) and L_beta against beta, stacked. */
int pf_fig_phase_diagram(const char *base, const pf_point_result *rows, long n,
                         const pf_transition *t, long nt, const char *title, pf_error *err);
/* Per-class test accuracy (classes x beta) as a heat map. */
int pf_fig_class_heatmap(const char *base, const pf_point_result *rows, long n,
                         const pf_transition *t, long nt, const char *title, pf_error *err);
/* Hysteresis: r and test accuracy against beta for the up and down legs. */
int pf_fig_hysteresis(const char *base, const pf_point_result *up, long n_up,
                      const pf_point_result *down, long n_down, const char *title, pf_error *err);
/* The hierarchy of accuracy basins as a tree of class sets. */
int pf_fig_hierarchy(const char *base, const pf_hierarchy *h, const char *title, pf_error *err);

/* Pathfinder paths (fig_paths.c). The error profile along a path and
 * along the straight line between its ends, against the normalized distance
 * travelled (0 at the start, 1 at the end): test error above, train error
 * below, the path's own points marked, barriers noted. ylabel NULL: "error (%)". */
int pf_fig_path_profile(const char *base, const pf_profile *path, const pf_profile *line,
                        const char *title, const char *ylabel, pf_error *err);
/* A path against beta (log scale): test and train error, and the distances
 * to its start and its anchor (named start_name, anchor_name); transitions
 * crossed (ascending beta, as pf_detect_transitions gives them) marked. */
int pf_fig_path_beta(const char *base, const pf_path_point *pts, long n, const pf_transition *t,
                     long nt, const char *start_name, const char *anchor_name, const char *title,
                     pf_error *err);


/* The fold of a transition (fig_fold.c): lambda_min(H_L) of the branch's
 * points against direction x (beta_c - beta), log-log, with the fits. */
typedef struct {
    long n;
    const double *beta, *lambda;           /* (n) */
    const unsigned char *from_bisection;   /* (n) */
    int direction;                         /* +1: an up leg's transition, -1: a down leg's */
    double beta_c, exponent, amplitude;    /* the free fit */
    double half_beta_c, half_amplitude;    /* the fit with exponent 1/2 */
} pf_fig_fold_data;

int pf_fig_fold(const char *base, const pf_fig_fold_data *f, const char *title, pf_error *err);

#endif
