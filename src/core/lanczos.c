/* Lanczos with full reorthogonalization: a few extreme eigenpairs of a
 * symmetric operator known only through products (the Hessian), and the
 * stochastic Lanczos quadrature of its spectral density.
 *
 * From a unit start vector q_0 the three-term recurrence
 *     b_j q_{j+1} = A q_j - a_j q_j - b_{j-1} q_{j-1},   a_j = q_j' A q_j,
 * builds an orthonormal basis Q_m = [q_0 .. q_{m-1}] of the Krylov space
 * K_m(A, q_0) in which A is the tridiagonal T_m = Q_m' A Q_m (a on the
 * diagonal, b beside it). Each eigenpair T_m s = theta s gives a Ritz pair
 * (theta, y = Q_m s) whose residual is ||A y - theta y|| = |b_{m-1} s_{m-1}|
 * (s_{m-1} the last entry of s): the convergence test costs no product.
 * Extreme eigenvalues, negative ones included, converge first.
 *
 * In floating point the q_j lose orthogonality as Ritz values converge and
 * spurious copies appear, so every new vector is reorthogonalized against
 * all previous ones (classical Gram-Schmidt, repeated once when the first
 * pass cancelled most of the vector: "twice is enough"). If b_j vanishes the
 * Krylov space is invariant: its Ritz values are exact eigenvalues, and the
 * recurrence restarts from a fresh random vector orthogonal to Q (b_j = 0
 * in T). Vectors and all sums are in double.
 */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "team.h"

static const double PI = 3.14159265358979323846;

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int pf_eig_which_from_name(const char *name, pf_eig_which *which)
{
    static const char *const names[] = {"largest", "smallest", "both"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *which = (pf_eig_which)i;
            return PF_OK;
        }
    return PF_EINPUT;
}

const char *pf_eig_which_name(pf_eig_which which)
{
    switch (which) {
    case PF_EIG_LARGEST: return "largest";
    case PF_EIG_SMALLEST: return "smallest";
    case PF_EIG_BOTH: return "both";
    }
    return "?";
}

void pf_lanczos_config_default(pf_lanczos_config *c)
{
    memset(c, 0, sizeof *c);
    c->k = 6;
    c->which = PF_EIG_BOTH;
    c->max_dim = 0;
    c->tol = 1e-4;
    c->seed = 0;
}

/* Standard normal deviates by Box-Muller from the seeded stream. */
static void fill_gaussian(pf_rng *rng, double *v, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - pf_rng_uniform(rng), u2 = pf_rng_uniform(rng);
        double r = sqrt(-2.0 * log(u1)), t = 2.0 * PI * u2;
        v[i] = r * cos(t);
        if (i + 1 < n) v[i + 1] = r * sin(t);
    }
}

/* ---- the Krylov basis ------------------------------------------------------ */

typedef struct {
    size_t n;
    int cap;          /* basis vectors that fit */
    int m;            /* vectors in use (= dimension of T) */
    double *Q;        /* (cap, n) rows q_0 .. q_{cap-1} */
    double *alpha;    /* (cap) diagonal of T */
    double *beta;     /* (cap) beta[j] couples q_j and q_{j+1}; beta[m-1] is the residual norm */
    double *w;        /* (n) work vector */
    double *coef;     /* (2 PF_MAX_THREADS, cap): each member's partial Gram-Schmidt
                       * coefficients, then each member's copy of their sum */
    double anorm;     /* running estimate of ||A|| from T, for the breakdown test */
    long matvecs;
    int exhausted;    /* the basis spans the whole space */
    pf_ctx *ctx;      /* whose team reorthogonalizes */
} krylov;

static void krylov_free(krylov *K)
{
    free(K->Q);
    free(K->alpha);
    free(K->beta);
    free(K->w);
    free(K->coef);
    memset(K, 0, sizeof *K);
}

static int krylov_init(krylov *K, pf_ctx *ctx, size_t n, int cap, pf_error *err)
{
    memset(K, 0, sizeof *K);
    K->ctx = ctx;
    K->n = n;
    K->cap = cap;
    if ((size_t)cap > SIZE_MAX / sizeof(double) / n)
        return pf_fail(err, PF_ERUNTIME, "lanczos: a basis of %d vectors of %zu is too large", cap, n);
    K->Q = malloc((size_t)cap * n * sizeof *K->Q);
    K->alpha = calloc((size_t)cap, sizeof *K->alpha);
    K->beta = calloc((size_t)cap, sizeof *K->beta);
    K->w = malloc(n * sizeof *K->w);
    K->coef = malloc(2 * (size_t)PF_MAX_THREADS * (size_t)cap * sizeof *K->coef);
    if (!K->Q || !K->alpha || !K->beta || !K->w || !K->coef) {
        krylov_free(K);
        return pf_fail(err, PF_ERUNTIME, "lanczos: out of memory for %d basis vectors of %zu "
                       "(%.0f MB); lower --max-dim", cap, n, (double)cap * (double)n * 8e-6);
    }
    return PF_OK;
}

static double norm2(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += v[i] * v[i];
    return sqrt(s);
}

/* One classical Gram-Schmidt pass, x -= Q' (Q x) over rows 0..m-1 of Q,
 * split across the thread team by columns (entries of x): each member
 * forms the partial products of its columns, every member then sums them
 * in member order (so the result depends only on the team size), and
 * updates its columns. It is memory-bound: m n doubles read twice. */
typedef struct {
    krylov *K;
    double *x;
    int m;
    double sq[PF_MAX_THREADS]; /* partial ||x||^2 after the pass */
} orth_ctx;

static void orth_task(void *vctx, int tid, int nt)
{
    orth_ctx *c = vctx;
    krylov *K = c->K;
    int m = c->m, n = (int)K->n;
    size_t lo, hi;
    pf_share(K->n, tid, nt, &lo, &hi);
    int cols = (int)(hi - lo);
    double *part = K->coef + (size_t)tid * K->cap;
    double *sum = K->coef + (size_t)(PF_MAX_THREADS + tid) * K->cap;
    if (cols > 0)
        cblas_dgemv(CblasRowMajor, CblasNoTrans, m, cols, 1.0, K->Q + lo, n, c->x + lo, 1, 0.0, part, 1);
    else
        memset(part, 0, (size_t)m * sizeof *part);
    pf_barrier();
    for (int j = 0; j < m; j++) {
        double t = 0.0;
        for (int k = 0; k < nt; k++) t += K->coef[(size_t)k * K->cap + j];
        sum[j] = t;
    }
    if (cols > 0)
        cblas_dgemv(CblasRowMajor, CblasTrans, m, cols, -1.0, K->Q + lo, n, sum, 1, 1.0, c->x + lo, 1);
    double sq = 0.0;
    for (size_t i = lo; i < hi; i++) sq += c->x[i] * c->x[i];
    c->sq[tid] = sq;
}

/* Remove from x its components along rows 0..m-1 of Q; a second pass runs
 * when the first removed most of x. Returns ||x|| afterwards. */
static double orthogonalize(krylov *K, double *x, int m)
{
    double before = norm2(x, K->n), after = before;
    orth_ctx c = {K, x, m, {0}};
    for (int pass = 0; pass < 2 && m > 0; pass++) {
        int nt = pf_ctx_threads(K->ctx);
        if (nt == 1)
            orth_task(&c, 0, 1);
        else
            pf_parallel(K->ctx, orth_task, &c);
        double s = 0.0;
        for (int k = 0; k < nt; k++) s += c.sq[k];
        after = sqrt(s);
        if (after > 0.7071 * before) break;
        before = after;
    }
    return after;
}

/* Set row m of Q to a random unit vector orthogonal to rows 0..m-1. */
static void krylov_random_row(krylov *K, int m, pf_rng *rng, int rademacher)
{
    double *q = K->Q + (size_t)m * K->n;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (rademacher)
            for (size_t i = 0; i < K->n; i++) q[i] = (pf_rng_next(rng) >> 63) ? 1.0 : -1.0;
        else
            fill_gaussian(rng, q, K->n);
        double full = norm2(q, K->n);
        double r = orthogonalize(K, q, m);
        /* Nothing left once the basis spans (numerically) the whole space. */
        if (r > 1e-8 * full) {
            for (size_t i = 0; i < K->n; i++) q[i] /= r;
            return;
        }
    }
    K->exhausted = 1;
}

/* One Lanczos step: apply A to q_m (m = K->m), fill alpha[m] and beta[m],
 * and prepare q_{m+1} if there is room. *restarted is set when beta[m]
 * vanished; q_{m+1} is then a fresh random vector orthogonal to Q. */
static int krylov_step(krylov *K, pf_matvec_fn op, void *ctx, pf_rng *rng, int *restarted,
                       pf_error *err)
{
    int m = K->m;
    size_t n = K->n;
    const double *q = K->Q + (size_t)m * n;
    double *w = K->w;
    int rc = op(ctx, q, w, err);
    K->matvecs++;
    if (rc) return rc;
    double a = 0.0;
    for (size_t i = 0; i < n; i++) a += q[i] * w[i];
    if (!isfinite(a))
        return pf_fail(err, PF_ERUNTIME, "lanczos: the operator returned a non-finite product");
    const double *qprev = m ? K->Q + (size_t)(m - 1) * n : NULL;
    double bprev = m ? K->beta[m - 1] : 0.0;
    for (size_t i = 0; i < n; i++) w[i] -= a * q[i] + (qprev ? bprev * qprev[i] : 0.0);
    double b = orthogonalize(K, w, m + 1);
    if (!isfinite(b))
        return pf_fail(err, PF_ERUNTIME, "lanczos: the operator returned a non-finite product");
    K->alpha[m] = a;
    double est = fabs(a) + b + bprev;
    if (est > K->anorm) K->anorm = est;
    *restarted = 0;
    K->m = m + 1;
    if (b <= 1e-12 * K->anorm || (size_t)K->m >= n) {
        /* Invariant subspace (or the whole space): T decouples here. */
        K->beta[m] = 0.0;
        *restarted = 1;
        if ((size_t)K->m >= n) K->exhausted = 1;
        else if (K->m < K->cap) krylov_random_row(K, K->m, rng, 0);
        return PF_OK;
    }
    K->beta[m] = b;
    if (K->m < K->cap) {
        double *next = K->Q + (size_t)K->m * n;
        for (size_t i = 0; i < n; i++) next[i] = w[i] / b;
    }
    return PF_OK;
}

/* Eigenvalues (ascending) and eigenvectors (column-major, m x m) of T_m. */
static int tridiag_eig(const krylov *K, int m, double *theta, double *Z, double *offd,
                       pf_error *err)
{
    memcpy(theta, K->alpha, (size_t)m * sizeof *theta);
    if (m > 1) memcpy(offd, K->beta, (size_t)(m - 1) * sizeof *offd);
    lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', m, theta, offd, Z, m);
    if (info != 0)
        return pf_fail(err, PF_ERUNTIME, "lanczos: the tridiagonal eigensolver failed (info %d)",
                       (int)info);
    return PF_OK;
}

/* The Ritz pairs that are reported, from T_m: every Ritz value (ascending,
 * by dsterf, O(m^2)) for the scale, and the selected ends with their
 * eigenvectors by dstevr (MRRR, O(m) per pair), so a convergence test after
 * every step stays cheap next to a product. Should MRRR fail, dstev does
 * the whole problem. sel_vec is (m, n_values) column-major. */
typedef struct {
    double *all;      /* (cap) every Ritz value */
    double *val;      /* (n_values) the selected ones, ascending */
    double *vec;      /* (cap, n_values) their eigenvectors of T_m */
    double *d, *e;    /* (cap) work copies of T_m */
    lapack_int *isuppz;
} ritz_work;

static int ritz_pairs(const krylov *K, int m, pf_eig_which which, int k, int n_values,
                      ritz_work *r, pf_error *err)
{
    memcpy(r->all, K->alpha, (size_t)m * sizeof *r->all);
    if (m > 1) memcpy(r->e, K->beta, (size_t)(m - 1) * sizeof *r->e);
    lapack_int info = LAPACKE_dsterf(m, r->all, r->e);
    if (info != 0)
        return pf_fail(err, PF_ERUNTIME, "lanczos: the tridiagonal eigensolver failed (info %d)",
                       (int)info);
    int lo[2], hi[2], n_ranges = 0; /* 1-based index ranges */
    if (n_values >= m) {
        lo[0] = 1, hi[0] = m, n_ranges = 1;
    } else if (which == PF_EIG_SMALLEST) {
        lo[0] = 1, hi[0] = k, n_ranges = 1;
    } else if (which == PF_EIG_LARGEST) {
        lo[0] = m - k + 1, hi[0] = m, n_ranges = 1;
    } else {
        lo[0] = 1, hi[0] = k, lo[1] = m - k + 1, hi[1] = m, n_ranges = 2;
    }
    int got = 0;
    for (int t = 0; t < n_ranges && info == 0; t++) {
        memcpy(r->d, K->alpha, (size_t)m * sizeof *r->d);
        if (m > 1) memcpy(r->e, K->beta, (size_t)(m - 1) * sizeof *r->e);
        lapack_int found = 0;
        info = LAPACKE_dstevr(LAPACK_COL_MAJOR, 'V', 'I', m, r->d, r->e, 0.0, 0.0, lo[t], hi[t], 0.0,
                              &found, r->val + got, r->vec + (size_t)got * m, m, r->isuppz);
        if (found != hi[t] - lo[t] + 1) info = -1;
        got += (int)found;
    }
    if (info == 0) return PF_OK;
    double *full = malloc((size_t)m * (size_t)m * sizeof *full);
    if (!full) return pf_fail(err, PF_ERUNTIME, "lanczos: out of memory");
    memcpy(r->d, K->alpha, (size_t)m * sizeof *r->d);
    if (m > 1) memcpy(r->e, K->beta, (size_t)(m - 1) * sizeof *r->e);
    info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', m, r->d, r->e, full, m);
    if (info != 0) {
        free(full);
        return pf_fail(err, PF_ERUNTIME, "lanczos: the tridiagonal eigensolver failed (info %d)",
                       (int)info);
    }
    got = 0;
    for (int t = 0; t < n_ranges; t++)
        for (int j = lo[t] - 1; j < hi[t]; j++, got++) {
            r->val[got] = r->d[j];
            memcpy(r->vec + (size_t)got * m, full + (size_t)j * m, (size_t)m * sizeof *r->vec);
        }
    free(full);
    return PF_OK;
}

int pf_lanczos(pf_matvec_fn op, void *ctx, size_t n, const pf_lanczos_config *cfg,
               pf_lanczos_result *res, pf_error *err)
{
    memset(res, 0, sizeof *res);
    if (!op || !cfg) return pf_fail(err, PF_EINPUT, "lanczos: missing operator or configuration");
    if (n < 1 || n > (size_t)1 << 40) return pf_fail(err, PF_EINPUT, "lanczos: bad dimension %zu", n);
    if (cfg->k < 1 || (size_t)cfg->k > n)
        return pf_fail(err, PF_EINPUT, "lanczos: k must be between 1 and the dimension %zu, got %d",
                       n, cfg->k);
    if (cfg->which != PF_EIG_LARGEST && cfg->which != PF_EIG_SMALLEST && cfg->which != PF_EIG_BOTH)
        return pf_fail(err, PF_EINPUT, "lanczos: bad choice of spectrum end %d", (int)cfg->which);
    if (!(cfg->tol >= 0) || !isfinite(cfg->tol) || cfg->tol >= 1)
        return pf_fail(err, PF_EINPUT, "lanczos: tolerance must be in [0, 1), got %g", cfg->tol);
    if (cfg->max_dim < 0)
        return pf_fail(err, PF_EINPUT, "lanczos: max_dim must be >= 0, got %d", cfg->max_dim);
    int k = cfg->k;
    double tol = cfg->tol > 0 ? cfg->tol : 1e-4;
    size_t want = cfg->which == PF_EIG_BOTH ? 2 * (size_t)k : (size_t)k;
    int n_values = (int)(want < n ? want : n);
    size_t cap = cfg->max_dim ? (size_t)cfg->max_dim : PF_LANCZOS_MAX_DIM;
    if (cap > n) cap = n;
    if (cap < (size_t)n_values)
        return pf_fail(err, PF_EINPUT, "lanczos: max_dim %zu is below the %d values asked for", cap,
                       n_values);

    double t0 = seconds_now();
    krylov K;
    int rc = krylov_init(&K, cfg->ctx, n, (int)cap, err);
    if (rc) return rc;
    int m_cap = (int)cap;
    ritz_work R;
    R.all = malloc(cap * sizeof *R.all);
    R.val = malloc((size_t)n_values * sizeof *R.val);
    R.vec = malloc(cap * (size_t)n_values * sizeof *R.vec);
    R.d = malloc(cap * sizeof *R.d);
    R.e = malloc(cap * sizeof *R.e);
    R.isuppz = malloc(2 * cap * sizeof *R.isuppz);
    res->values = malloc((size_t)n_values * sizeof *res->values);
    res->residuals = malloc((size_t)n_values * sizeof *res->residuals);
    res->converged = malloc((size_t)n_values);
    if (!R.all || !R.val || !R.vec || !R.d || !R.e || !R.isuppz || !res->values ||
        !res->residuals || !res->converged) {
        rc = pf_fail(err, PF_ERUNTIME, "lanczos: out of memory");
        goto done;
    }
    res->n_values = n_values;
    res->n = n;

    pf_rng rng;
    pf_rng_seed(&rng, cfg->seed);
    double q0 = 0.0;
    if (cfg->start) { /* a warm start; a zero or non-finite one falls back to the Gaussian */
        memcpy(K.Q, cfg->start, n * sizeof *K.Q);
        q0 = norm2(K.Q, n);
        if (q0 > 0 && isfinite(q0) && n > 1) {
            /* with a share of the seeded Gaussian: a start that is an
             * eigenvector (or nearly) of an inner eigenvalue would have its
             * Ritz pair converge at once and be taken for the extreme one */
            fill_gaussian(&rng, K.w, n);
            double gn = norm2(K.w, n), mix = PF_LANCZOS_WARM_MIX * q0 / gn;
            for (size_t i = 0; i < n; i++) K.Q[i] += mix * K.w[i];
            q0 = norm2(K.Q, n);
        }
    }
    if (!(q0 > 0) || !isfinite(q0)) {
        fill_gaussian(&rng, K.Q, n);
        q0 = norm2(K.Q, n);
    }
    for (size_t i = 0; i < n; i++) K.Q[i] /= q0;

    int solved_m = 0; /* the dimension R belongs to */
    for (;;) {
        int restarted;
        if ((rc = krylov_step(&K, op, ctx, &rng, &restarted, err))) goto done;
        int m = K.m, done_now = K.exhausted || m >= m_cap;
        int n_conv = 0;
        if (m >= n_values) {
            if ((rc = ritz_pairs(&K, m, cfg->which, k, n_values, &R, err))) goto done;
            solved_m = m;
            double scale = fmax(fabs(R.all[0]), fabs(R.all[m - 1])), b = K.beta[m - 1];
            for (int i = 0; i < n_values; i++)
                if (fabs(b * R.vec[(size_t)m * i + (size_t)(m - 1)]) <= tol * scale) n_conv++;
            if (n_conv == n_values) done_now = 1;
        }
        if (cfg->progress)
            cfg->progress(cfg->progress_ctx, m, n_conv, n_values, seconds_now() - t0);
        if (done_now) break;
    }
    int m = K.m;
    if (solved_m != m && (rc = ritz_pairs(&K, m, cfg->which, k, n_values, &R, err))) goto done;
    double scale = fmax(fabs(R.all[0]), fabs(R.all[m - 1]));
    res->scale = scale;
    res->iterations = m;
    res->all_converged = 1;
    double b = K.beta[m - 1];
    for (int i = 0; i < n_values; i++) {
        res->values[i] = R.val[i];
        res->residuals[i] = fabs(b * R.vec[(size_t)m * i + (size_t)(m - 1)]);
    }

    if (cfg->want_vectors) {
        /* y_i = Q_m s_i, then one product each to measure the residual. */
        res->vectors = malloc((size_t)n_values * n * sizeof *res->vectors);
        if (!res->vectors) {
            rc = pf_fail(err, PF_ERUNTIME, "lanczos: out of memory for %d eigenvectors", n_values);
            goto done;
        }
        for (int i = 0; i < n_values; i++) {
            double *y = res->vectors + (size_t)i * n;
            cblas_dgemv(CblasRowMajor, CblasTrans, m, (int)n, 1.0, K.Q, (int)n, R.vec + (size_t)m * i, 1,
                        0.0, y, 1);
            double yn = norm2(y, n);
            for (size_t t = 0; t < n; t++) y[t] /= yn;
            if ((rc = op(ctx, y, K.w, err))) goto done;
            K.matvecs++;
            for (size_t t = 0; t < n; t++) K.w[t] -= res->values[i] * y[t];
            res->residuals[i] = norm2(K.w, n);
        }
    }
    for (int i = 0; i < n_values; i++) {
        res->converged[i] = res->residuals[i] <= tol * scale;
        if (!res->converged[i]) res->all_converged = 0;
    }
done:
    res->n_matvecs = K.matvecs;
    res->seconds = seconds_now() - t0;
    krylov_free(&K);
    free(R.all), free(R.val), free(R.vec), free(R.d), free(R.e), free(R.isuppz);
    if (rc) pf_lanczos_result_free(res);
    return rc;
}

void pf_lanczos_result_free(pf_lanczos_result *res)
{
    free(res->values);
    free(res->residuals);
    free(res->converged);
    free(res->vectors);
    res->values = res->residuals = res->vectors = NULL;
    res->converged = NULL;
    res->n_values = 0;
}

/* ---- the Hessian's extreme eigenvalues -------------------------------------- */

int pf_hessian_extremes(pf_work *w, const float *theta, const pf_dataset *d, size_t n_samples,
                        double beta, const pf_lanczos_config *cfg,
                        pf_hessian_extremes_result *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_lanczos_config c;
    if (cfg)
        c = *cfg;
    else
        pf_lanczos_config_default(&c);
    c.k = 1;
    c.which = PF_EIG_BOTH;
    c.want_vectors = 0;
    if (!c.ctx) c.ctx = w->ctx;
    pf_hessian *h;
    int rc = pf_hessian_create(&h, w, theta, d, n_samples, err);
    if (rc) return rc;
    pf_lanczos_result r;
    rc = pf_lanczos(pf_hessian_matvec, h, pf_hessian_dim(h), &c, &r, err);
    pf_hessian_free(h);
    if (rc) return rc;
    int last = r.n_values - 1;
    out->min_E = r.values[0];
    out->max_E = r.values[last];
    out->min_L = r.values[0] + beta;
    out->max_L = r.values[last] + beta;
    out->res_min = r.residuals[0];
    out->res_max = r.residuals[last];
    out->converged = r.all_converged;
    out->iterations = r.iterations;
    out->n_hvps = r.n_matvecs;
    out->seconds = r.seconds;
    pf_lanczos_result_free(&r);
    return PF_OK;
}

/* ---- stochastic Lanczos quadrature ----------------------------------------- */

/* For a unit probe u, the m-step Lanczos T_m = Z diag(theta) Z' gives the
 * Gauss quadrature u' f(A) u ~ sum_i Z_{0i}^2 f(theta_i) (exact for
 * polynomials up to degree 2m-1). With Rademacher probes, E[u' f(A) u]
 * = tr f(A) / n, so averaging over probes estimates the normalized spectral
 * measure (1/n) sum_j delta(t - lambda_j). */
int pf_slq(pf_matvec_fn op, void *ctx, size_t n, const pf_slq_config *cfg, pf_slq_result *res,
           pf_error *err)
{
    memset(res, 0, sizeof *res);
    if (!op || !cfg || n < 1) return pf_fail(err, PF_EINPUT, "slq: missing operator or dimension");
    int probes = cfg->n_probes ? cfg->n_probes : 4;
    int steps = cfg->steps ? cfg->steps : 80;
    if (probes < 1 || probes > 10000 || steps < 1)
        return pf_fail(err, PF_EINPUT, "slq: need probes in 1..10000 and steps >= 1, got %d and %d",
                       cfg->n_probes, cfg->steps);
    if ((size_t)steps > n) steps = (int)n;
    double t0 = seconds_now();
    krylov K;
    int rc = krylov_init(&K, cfg->ctx, n, steps, err);
    if (rc) return rc;
    double *theta = malloc((size_t)steps * sizeof *theta), *offd = malloc((size_t)steps * sizeof *offd);
    double *Z = malloc((size_t)steps * steps * sizeof *Z);
    res->nodes = calloc((size_t)probes * steps, sizeof *res->nodes);
    res->weights = calloc((size_t)probes * steps, sizeof *res->weights);
    if (!theta || !offd || !Z || !res->nodes || !res->weights) {
        rc = pf_fail(err, PF_ERUNTIME, "slq: out of memory");
        goto done;
    }
    res->n_probes = probes;
    res->steps = steps;
    pf_rng rng;
    pf_rng_seed(&rng, cfg->seed);
    long matvecs = 0;
    for (int p = 0; p < probes; p++) {
        K.m = 0;
        K.anorm = 0.0;
        K.exhausted = 0;
        K.matvecs = 0;
        krylov_random_row(&K, 0, &rng, 1);
        /* A restart after an invariant subspace would no longer follow the
         * probe, so a probe's quadrature stops at the first breakdown. */
        while (K.m < steps) {
            int restarted;
            if ((rc = krylov_step(&K, op, ctx, &rng, &restarted, err))) goto done;
            if (restarted) break;
        }
        matvecs += K.matvecs;
        int m = K.m;
        if ((rc = tridiag_eig(&K, m, theta, Z, offd, err))) goto done;
        for (int i = 0; i < m; i++) {
            res->nodes[(size_t)p * steps + i] = theta[i];
            res->weights[(size_t)p * steps + i] = Z[(size_t)m * i] * Z[(size_t)m * i];
        }
    }
    res->n_matvecs = matvecs;
done:
    res->seconds = seconds_now() - t0;
    krylov_free(&K);
    free(theta);
    free(offd);
    free(Z);
    if (rc) pf_slq_result_free(res);
    return rc;
}

void pf_slq_result_free(pf_slq_result *res)
{
    free(res->nodes);
    free(res->weights);
    res->nodes = res->weights = NULL;
    res->n_probes = res->steps = 0;
}

void pf_slq_density(const pf_slq_result *res, double sigma, const double *grid, int n_grid,
                    double *density)
{
    double norm = 1.0 / (sqrt(2.0 * PI) * sigma * res->n_probes);
    for (int g = 0; g < n_grid; g++) {
        double s = 0.0;
        for (size_t i = 0; i < (size_t)res->n_probes * res->steps; i++) {
            double u = (grid[g] - res->nodes[i]) / sigma;
            s += res->weights[i] * exp(-0.5 * u * u);
        }
        density[g] = s * norm;
    }
}
