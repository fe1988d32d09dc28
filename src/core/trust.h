/* The trust-region subproblem shared by Newton-CG (newton.c) and the saddle
 * search (saddle.c). Internal to src/core. */
#ifndef PATHFINDER_CORE_TRUST_H
#define PATHFINDER_CORE_TRUST_H

#include "pathfinder/hessian.h"

/* What the Steihaug-CG solve ended on. */
typedef struct {
    int iterations;     /* products taken */
    int negative;       /* met a direction of curvature <= 0 and went to the boundary */
    int boundary;       /* the step lies on the boundary */
} pf_steihaug_info;

/* Approximately minimize g's + s'As/2 over ||s|| <= radius by conjugate
 * gradients from s = 0 (Steihaug-Toint), with A known through op:
 * stop when ||g + A s|| <= tol, at the boundary, or along the first
 * direction of curvature <= 0 (to the boundary). s and As (n) receive the
 * step and A s; work holds 3n doubles. */
int pf_steihaug(pf_matvec_fn op, void *ctx, size_t n, const double *g, double radius, double tol,
                int max_cg, double *s, double *As, double *work, pf_steihaug_info *info,
                pf_error *err);

double pf_dot(const double *a, const double *b, size_t n);
double pf_norm(const double *a, size_t n);
double pf_norm_inf(const double *a, size_t n);

#endif
