/* pathfinder fig: figures for papers (PNG, PDF and SVG), drawn with PLplot's
 * cairo drivers. A separate library (libpathfinder-fig), so that the
 * numerics and file formats link without PLplot.
 *
 * Every figure is written as BASE.png, BASE.pdf and BASE.svg, each drawn in
 * memory and written atomically only when complete; the SVG carries a
 * title and a description naming its panels. PLplot's errors are caught
 * and returned; calls are serialized, so threads may draw at once. */
#ifndef PATHFINDER_FIG_H
#define PATHFINDER_FIG_H

#include "pathfinder/core.h"

/* Draw the figures of a run folder from its files, into DIR/figures (a
 * sweep: phase_diagram_up|down, class_accuracy_up|down, hysteresis,
 * hierarchy) or DIR (a pair of connect or probe: path_profile, path_beta);
 * a folder holding only phases.json (a merged hierarchy) gets its
 * hierarchy. The run calls' pf_figures_fn. */
int pf_fig_folder(const char *dir, pf_error *err);
/* A pair folder's path_profile and path_beta (from path.csv, profile.csv,
 * transitions.json and summary.json). */
int pf_fig_pair_folder(const char *dir, pf_error *err);

/* Stacked panels of n_series curves ys[s][0..n) against x, one panel each,
 * with a dashed zero line where a panel crosses zero. */
int pf_fig_curves(const char *base, const double *x, long n, const double *const *ys,
                  const char *const *labels, int n_series, const char *xlabel, const char *title,
                  pf_error *err);

#endif
