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
/* "largest", "smallest", "both" */
int pf_eig_which_from_name(const char *name, pf_eig_which *which);
const char *pf_eig_which_name(pf_eig_which which);

typedef struct {
    int k;                /* pairs wanted at each requested end (>= 1, <= n) */
    pf_eig_which which;   /* largest / smallest algebraic, or both ends */
    int max_dim;          /* Krylov dimension cap; 0 = min(PF_LANCZOS_MAX_DIM, n) */
    double tol;           /* converged: residual <= tol * max|Ritz value|; 0 = 1e-4 */
    uint64_t seed;        /* start vector: Gaussian from pf_rng seeded with this */
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

#endif
