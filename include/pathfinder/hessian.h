/* pathfinder Hessian: exact Hessian-vector products and extreme eigenpairs.
 *
 * E(theta) is the mean loss over a dataset (or its first n_samples rows);
 * L_beta = E + (beta/2)||theta - anchor||^2 has the Hessian H_E + beta I for
 * any anchor, so its eigenvalues are those of H_E plus beta with the same
 * eigenvectors. Products are Pearlmutter's R-operator (hessian.c), the
 * spectra Lanczos with full reorthogonalization (lanczos.c).
 */
#ifndef PATHFINDER_HESSIAN_H
#define PATHFINDER_HESSIAN_H

#include "pathfinder/core.h"

/* H v for L_beta at theta over the first n_samples rows of d (0 = all):
 * H_E v + beta v, by Pearlmutter's R-operator with sgemm in blocks of
 * w->max_batch rows, split across the thread team; every sum over samples
 * and team members is finished in double. Same thread count -> bit-identical
 * hv. w's buffers hold member 0's activations. PF_EINPUT on bad sizes.
 * With a reducer on w's context (core.h) d is this process's share and the
 * product is over every process's rows. */
int pf_hvp(pf_work *w, const float *theta, const pf_dataset *d, size_t n_samples, double beta,
           const float *v, float *hv, pf_error *err);

/* The same product as an operator for repeated use at one point (Lanczos).
 * It keeps the team's buffers between products and, when they fit in 1 GiB,
 * the activations and backward signals of every row (which do not depend
 * on v: 128 MB for the paper's MLP on MNIST), so that later products skip
 * the forward pass; results are the same either way. Inputs whose features
 * mostly hold one value (image background) use a sparse input layer, see
 * pf_hessian_sparse_input. theta, d and w must stay alive and unchanged
 * while the operator is used. */
typedef struct pf_hessian pf_hessian;

int pf_hessian_create(pf_hessian **h, pf_work *w, const float *theta, const pf_dataset *d,
                      size_t n_samples, pf_error *err);
void pf_hessian_free(pf_hessian *h);
size_t pf_hessian_dim(const pf_hessian *h);      /* n_params */
size_t pf_hessian_samples(const pf_hessian *h);  /* rows used (by all the processes of a data-parallel run) */
/* hv = H_E v + beta v in float. */
int pf_hessian_apply(pf_hessian *h, double beta, const float *v, float *hv, pf_error *err);
/* Move the operator to another point theta2 of the same model and data:
 * later products are H at theta2. The buffers, the sparse input layer and
 * the cache's memory are kept; the cache is refilled by the next product.
 * A quasi-static or Newton iteration moves one operator instead of making
 * a new one at every point. theta2 must stay alive and unchanged while it
 * is used. */
void pf_hessian_move(pf_hessian *h, const float *theta2);
/* Mean loss E over the rows used, found by the last product's forward pass
 * (NaN before the first product). */
double pf_hessian_loss(const pf_hessian *h);
/* 1 if the input layer runs on x - background (features that mostly hold
 * one value, as image pixels do): as w->input_layer decides for d (auto:
 * when at most 30% differ), on the sparse form of d that w keeps. */
int pf_hessian_sparse_input(const pf_hessian *h);
/* H_E v with v and the result in double (v is rounded to float for the
 * sgemms; the sums are not): a pf_matvec_fn with ctx = the pf_hessian. */
int pf_hessian_matvec(void *h, const double *v, double *hv, pf_error *err);

/* Plain-loop double-precision R-operator: the readable definition the fast
 * path is tested against. hv = H_E v for the mean loss over B samples (add
 * beta*v for L_beta). Returns the mean loss. */
double pf_ref_hvp(const pf_arch *a, const double *theta, const double *x, const int *labels,
                  const double *targets, int B, const double *v, double *hv);

/* A symmetric linear operator for Lanczos: out = A v, both of length n.
 * Returns PF_OK or an error code (filled into err). */
typedef int (*pf_matvec_fn)(void *ctx, const double *v, double *out, pf_error *err);

typedef enum { PF_EIG_LARGEST, PF_EIG_SMALLEST, PF_EIG_BOTH } pf_eig_which;
#define PF_LANCZOS_MAX_DIM 300   /* the default Krylov dimension cap */
#define PF_LANCZOS_WARM_MIX 0.1   /* the Gaussian share of a warm start, by length */
/* "largest", "smallest", "both" */
int pf_eig_which_from_name(const char *name, pf_eig_which *which);
const char *pf_eig_which_name(pf_eig_which which);

typedef struct {
    int k;                /* pairs wanted at each requested end (>= 1, <= n) */
    pf_eig_which which;   /* largest / smallest algebraic, or both ends */
    int max_dim;          /* Krylov dimension cap; 0 = min(PF_LANCZOS_MAX_DIM, n) */
    double tol;           /* converged: residual <= tol * max|Ritz value|; 0 = 1e-4 */
    uint64_t seed;        /* start vector: Gaussian from pf_rng seeded with this */
    const double *start;  /* or this one (n, any nonzero length; NULL: the seeded Gaussian): a
                           * warm start from a nearby operator's eigenvector, with the seeded
                           * Gaussian added at PF_LANCZOS_WARM_MIX of its length, so that a
                           * start on an inner eigenvector cannot pass for the extreme one */
    int want_vectors;     /* 1: return eigenvectors and check residuals explicitly */
    /* Optional progress callback after every step (may be NULL). */
    void (*progress)(void *ctx, int dim, int n_converged, int n_wanted, double seconds);
    void *progress_ctx;
    pf_ctx *ctx;          /* whose team reorthogonalizes (NULL: one thread) */
} pf_lanczos_config;

void pf_lanczos_config_default(pf_lanczos_config *c);  /* k 6, both, 1e-4, 300, seed 0 */

/* Ritz pairs of the requested ends, ascending: with `both`, the k smallest
 * then the k largest (min(2k, n) values; overlapping ones appear once). */
typedef struct {
    int n_values;
    size_t n;                 /* operator dimension */
    double *values;           /* (n_values) ascending */
    double *residuals;        /* (n_values) ||A y - theta y||: measured with one product per
                               * pair if vectors were computed, else the bound |beta_m s_m| */
    unsigned char *converged; /* (n_values) residual <= tol * scale */
    double *vectors;          /* (n_values, n) unit eigenvectors, row i for values[i]; or NULL */
    double scale;             /* max |Ritz value|: the tolerance's yardstick */
    int iterations;           /* Krylov dimension reached */
    long n_matvecs;           /* operator products, explicit residual checks included */
    double seconds;
    int all_converged;
} pf_lanczos_result;

/* Lanczos with full reorthogonalization (basis in double, (max_dim + 1) n
 * doubles of memory). The Krylov space grows until every requested pair has
 * converged or max_dim is reached. Exactly repeated eigenvalues are found
 * with the multiplicity the Krylov space reveals (one copy unless it is
 * exhausted and restarted). PF_EINPUT on bad k / n / config. */
int pf_lanczos(pf_matvec_fn op, void *ctx, size_t n, const pf_lanczos_config *cfg,
               pf_lanczos_result *res, pf_error *err);
void pf_lanczos_result_free(pf_lanczos_result *res);

/* lambda_min and lambda_max of H_E at theta (first n_samples rows of d, 0 =
 * all), and of H_{L_beta} = H_E + beta I. cfg NULL: defaults; k and which
 * are forced to 1 and both, vectors are not computed. */
typedef struct {
    double min_E, max_E;      /* extreme eigenvalues of H_E */
    double min_L, max_L;      /* the same + beta */
    double res_min, res_max;  /* their residual bounds */
    int converged;
    int iterations;
    long n_hvps;
    double seconds;
} pf_hessian_extremes_result;

int pf_hessian_extremes(pf_work *w, const float *theta, const pf_dataset *d, size_t n_samples,
                        double beta, const pf_lanczos_config *cfg,
                        pf_hessian_extremes_result *out, pf_error *err);

/* Spectral density by stochastic Lanczos quadrature: for each of n_probes
 * Rademacher vectors u (unit norm), `steps` Lanczos steps give nodes theta_i
 * and weights s_{1,i}^2 with u' f(A) u ~ sum_i w_i f(theta_i); averaged over
 * probes this estimates (1/n) sum_j f(lambda_j). */
typedef struct {
    int n_probes;     /* default 4 */
    int steps;        /* per probe, default 80, capped by n */
    uint64_t seed;
    pf_ctx *ctx;      /* whose team reorthogonalizes (NULL: one thread) */
} pf_slq_config;

typedef struct {
    int n_probes, steps;
    double *nodes;    /* (n_probes, steps) */
    double *weights;  /* (n_probes, steps); each probe's weights sum to 1 */
    long n_matvecs;
    double seconds;
} pf_slq_result;

int pf_slq(pf_matvec_fn op, void *ctx, size_t n, const pf_slq_config *cfg, pf_slq_result *res,
           pf_error *err);
void pf_slq_result_free(pf_slq_result *res);
/* density[g] = (1/P) sum_p sum_i w_pi N(grid[g]; nodes_pi, sigma^2): a
 * Gaussian-broadened spectral density that integrates to ~1. */
void pf_slq_density(const pf_slq_result *res, double sigma, const double *grid, int n_grid,
                    double *density);

/* ================================================= second-order methods */
/* Trust-region Newton-CG, the escape from a saddle along negative
 * curvature, the extreme eigenpairs at a point, and the search for an
 * index-1 saddle, all over one small interface: an objective that gives
 * its value and gradient at a point and Hessian-vector products at the
 * point last fixed. The MLP's L_beta (pf_mlp_objective) and any analytic
 * landscape (the tests' two-dimensional fold) run through the same code. */

typedef struct {
    size_t n;          /* dimension */
    void *ctx;
    /* f(x) into *f and, when grad is not NULL, its gradient (n) */
    int (*eval)(void *ctx, const double *x, double *f, double *grad, pf_error *err);
    /* fix the point of later products */
    int (*at)(void *ctx, const double *x, pf_error *err);
    /* H v at that point (a pf_matvec_fn: Lanczos takes it as it is) */
    pf_matvec_fn hvp;
} pf_objective;

/* L_beta = E + (beta/2)||theta - anchor||^2 of an MLP over a dataset as an
 * objective in double: every pass rounds x to float theta, so f and the
 * gradient are those of the float model that is written out (E and its
 * gradient by pf_full_gradient with grad_work, the L2 part in double).
 * Products come from one pf_hessian on hvp_work, made at the first at()
 * and moved (pf_hessian_move) at the later ones. The workspaces, the data
 * and the anchor must outlive the objective. */
typedef struct pf_mlp_objective pf_mlp_objective;

int pf_mlp_objective_create(pf_mlp_objective **o, pf_work *grad_work, pf_work *hvp_work,
                            const pf_dataset *d, pf_error *err);
void pf_mlp_objective_free(pf_mlp_objective *o);
/* The strength and anchor (NULL: the origin) of the L2 term. */
void pf_mlp_objective_set(pf_mlp_objective *o, double beta, const float *anchor);
pf_objective pf_mlp_objective_get(pf_mlp_objective *o);
/* Mean loss E at the last evaluated point. */
double pf_mlp_objective_loss(const pf_mlp_objective *o);

/* Trust-region Newton-CG (Steihaug-Toint). At x, with gradient g and the
 * Hessian H known through products, the step s approximately minimizes the
 * model m(s) = g's + s'Hs/2 within ||s|| <= radius by conjugate gradients
 * from s = 0, stopping when the residual falls below
 * min(0.5, sqrt||g||) ||g|| (superlinear local convergence), when the
 * step reaches the boundary, or when a direction d has d'Hd <= 0: then it
 * goes to the boundary along d. So negative curvature is followed, not
 * stopped at: a saddle is left as soon as its descent direction shows up
 * in the Krylov space. The step is taken when the actual decrease is more
 * than eta of the predicted one; the radius shrinks to ||s||/4 when the
 * ratio is below 1/4 and doubles (up to max_radius) when it is above 3/4
 * at the boundary.
 * Near a minimum the decrease of a step falls below what f's rounding can
 * resolve (float passes of an MLP: ~1e-9 of f); when the predicted
 * decrease is below noise x (1 + |f|), the actual decrease is judged by
 * the trapezoid rule -(g + g_new)'s/2 instead (exact for quadratics,
 * O(||s||^3) otherwise), as approximate Wolfe line searches do.
 * Converged when ||g||_inf <= grad_tol. A gradient of exactly zero (a
 * critical point, a saddle included) stops it: pf_escape leaves saddles. */
typedef struct {
    int max_iter;         /* outer iterations (default 500) */
    double grad_tol;      /* ||g||_inf (default 1e-6) */
    double radius;        /* initial trust radius (default 1) */
    double max_radius;    /* (default 100) */
    int max_cg;           /* CG iterations per step (default 500) */
    double eta;           /* acceptance threshold on the ratio (default 1e-4) */
    double noise;         /* relative rounding of f (default 1e-8) */
    /* after every iteration (may be NULL) */
    void (*progress)(void *ctx, int iter, double f, double grad_inf, double radius);
    void *progress_ctx;
} pf_newton_config;

void pf_newton_config_default(pf_newton_config *c);

typedef struct {
    int iterations;       /* outer iterations (steps tried) */
    int accepted;         /* steps taken */
    long cg_iterations;
    long hvps;
    int evaluations;
    int negative_curvature;  /* steps that met a direction of negative curvature */
    double f, grad_inf, radius;
    int converged;        /* ||g||_inf <= grad_tol */
    int stalled;          /* the radius collapsed below rounding before that */
    double seconds;
} pf_newton_result;

/* Minimize from x (in place). PF_ERUNTIME when f or its gradient is not
 * finite at x. */
int pf_newton(const pf_objective *obj, double *x, const pf_newton_config *cfg,
              pf_newton_result *res, pf_error *err);

/* The extreme eigenpairs of the objective's Hessian at the point fixed by
 * obj->at(): Lanczos (cfg: its tolerance, dimension cap, seed, team; k and
 * which are forced to 1 and both) started from start (a previous lowest
 * mode, or NULL), with the eigenvectors, whose residuals are measured with
 * one product each. v_min and v_max receive unit vectors (n; may be NULL). */
typedef struct {
    double lambda_min, lambda_max;
    double res_min, res_max;   /* measured ||H v - lambda v|| */
    int converged;             /* both residuals <= tol * max|lambda| */
    int min_converged;         /* the lowest pair's residual alone: the highest
                                * mode only sets the scale, and its residual
                                * meets a floor of the float products near
                                * 1e-6 max|lambda| */
    int iterations;
    long hvps;
    double seconds;
} pf_modes;

int pf_objective_modes(const pf_objective *obj, const pf_lanczos_config *cfg, const double *start,
                       double *v_min, double *v_max, pf_modes *out, pf_error *err);

/* Leave a saddle (or any point with negative curvature lambda < 0 along the
 * unit vector v) downhill: x + t u with u = -sign(g'v) v (v itself when
 * g'v = 0). The length t starts at t0 (<= 0: 0.1 max(1, ||x|| / sqrt(n))),
 * is doubled while f keeps falling, and halved (down to 2^-30 t0) until f
 * falls at all; the best t is taken. res->decrease = f(x) - f(new x) > 0,
 * or 0 and x unchanged when no length lowers f. */
typedef struct {
    double t, decrease;
    int evaluations;
} pf_escape_result;

int pf_escape(const pf_objective *obj, double *x, const double *v, double lambda, double t0,
              pf_escape_result *res, pf_error *err);

/* The index-1 saddle next to a minimum, by minimum-mode following with
 * Newton steps (saddle.c has the why). At each iterate the lowest mode
 * (lambda_1, v) of H comes from Lanczos warm-started at the previous one;
 * the gradient and Hessian are reflected along it,
 *     g~ = g - 2 (g'v) v,    H~ = H - 2 lambda_1 v v',
 * which turns the saddle into a minimum of the model, and a Steihaug-CG
 * trust-region step is taken on (g~, H~): uphill along v while lambda_1 > 0
 * (negative curvature of H~, so the step goes to the boundary), the Newton
 * step once lambda_1 < 0. Since nothing decreases on the way to a saddle,
 * steps are judged by how well the linear model predicts the new
 * gradient: e = ||g_new - g - H s|| / max(||H s||, ||g||); accepted when
 * e <= 1/2, the radius halved when e > 1/4 and doubled when e < 1/16 at
 * the boundary. Converged when ||g||_inf <= grad_tol; then the k_index
 * lowest eigenvalues are computed and the index is the count below
 * -index_tol x max|lambda|.
 * Start: x is a minimum (or near one); cfg->mode_start a guess of its
 * lowest mode (n values), or NULL for Lanczos' seeded random start. The first step follows the cubic normal form of a fold along
 * the mode, f(x + t v) ~ f + lambda t^2/2 + c t^3/6 with c the third
 * derivative (a central difference of v'Hv), whose saddle is at
 * t* = -2 lambda / c with barrier 2 lambda^3 / (3 c^2); direction (+1,
 * -1, or 0 for the normal form's choice) forces the side. */
typedef struct {
    int max_iter;          /* (default 200) */
    double grad_tol;       /* (default 1e-6) */
    double radius;         /* initial trust radius (default: |t*|, at most max_radius) */
    double max_radius;     /* (default 1) */
    int max_cg;            /* (default 500) */
    pf_lanczos_config lanczos;   /* the lowest mode at every iterate (tol default 1e-6) */
    int k_index;           /* eigenvalues counted for the index (default 4) */
    double index_tol;      /* (default 1e-6) */
    int direction;         /* +1 / -1 along the mode, 0: the normal form's side */
    const double *mode_start;   /* a guess of the start's lowest mode, or NULL (default) */
    void (*progress)(void *ctx, int iter, double f, double grad_inf, double lambda_min,
                     double radius);
    void *progress_ctx;
} pf_saddle_config;

void pf_saddle_config_default(pf_saddle_config *c);

typedef struct {
    int iterations, accepted;
    long hvps;
    double f_start, f;          /* f at the minimum it started from, and at the saddle */
    double grad_inf;
    double lambda_start;        /* lowest eigenvalue at the start */
    double third;               /* c, the third derivative along the mode at the start */
    double t_normal_form;       /* t* = -2 lambda / c */
    double barrier_normal_form; /* 2 lambda^3 / (3 c^2) */
    double barrier_path;        /* f(saddle) - f(start) as the integral of the gradient along
                                 * the segment between them (8-node Gauss-Legendre): free of
                                 * the cancellation in f - f_start when both are large */
    int n_eig;                  /* eigenvalues computed at the saddle (<= 8) */
    double eig[8];              /* the lowest ones, ascending */
    int index;                  /* negative ones among them; a lower bound if all are */
    double distance;            /* ||x_saddle - x_start|| */
    double overlap;             /* |<v_start, (x_saddle - x_start)/distance>| */
    int converged;
    double seconds;
} pf_saddle_result;

/* On return x holds the saddle and mode (if not NULL; output only) its
 * lowest mode. */
int pf_saddle_search(const pf_objective *obj, double *x, double *mode, const pf_saddle_config *cfg,
                     pf_saddle_result *res, pf_error *err);

#endif
