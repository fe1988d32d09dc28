/* Bisection of a transition in beta (see pf_refine_transition in exp.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

/* A certified old-phase point of the bisection: its record, and its modes
 * as the next midpoint's Lanczos start. */
static void add_branch(pf_trainer *t, pf_refined *out, double beta, const pf_train_result *tr, double *modes,
                       int *have_modes, size_t np)
{
    if (tr->has_cert && out->n_branch < PF_REFINE_MAX_BRANCH) {
        out->branch_beta[out->n_branch] = beta;
        out->branch_lambda_min[out->n_branch] = tr->cert.lambda_min;
        out->branch_certified[out->n_branch] = (unsigned char)tr->cert.certified;
        out->n_branch++;
    }
    const double *m;
    if (pf_second_order_modes(t, &m)) {
        memcpy(modes, m, 2 * np * sizeof *modes);
        *have_modes = 1;
    }
}

int pf_refine_transition(pf_trainer *t, const pf_dataset *train, const pf_dataset *test,
                         const pf_train_config *base, float *theta_from, double beta_from,
                         float *theta_to, double beta_to, double tol, pf_refined *out, pf_error *err)
{
    size_t np = t->arch->n_params;
    memset(out, 0, sizeof *out);
    if (!(tol > 0)) return pf_fail(err, PF_EINPUT, "refinement tolerance must be positive");
    double t0 = pf_now();
    pf_metrics m_from, m_to, m_mid;
    int rc;
    if ((rc = pf_measure(&t->eval_work, theta_from, train, test, base->anchor, beta_from, &m_from, err)) ||
        (rc = pf_measure(&t->eval_work, theta_to, train, test, base->anchor, beta_to, &m_to, err)))
        return rc;
    if (!(m_from.r > 0 && m_to.r > 0))
        return pf_fail(err, PF_EINPUT, "cannot refine a transition with r = 0 on one side");
    out->overlap = NAN;
    float *mid = malloc(np * sizeof *mid);
    /* certifying: the old phase's lowest mode, where every midpoint's
     * Lanczos starts, so the mode followed is the branch's */
    double *branch_modes = base->certify ? malloc(2 * np * sizeof *branch_modes) : NULL;
    if (!mid || (base->certify && !branch_modes)) {
        free(mid);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    int have_branch_modes = 0;
    if (base->certify) {
        /* the old phase's start, certified where it is (a copy: the
         * refinement starts from the sweep's model as it was) */
        memcpy(mid, theta_from, np * sizeof *mid);
        pf_train_config cfg = *base;
        cfg.beta = beta_from;
        /* a cold Lanczos start: the trainer's last modes are those of the
         * sweep's end, another phase, and a start poor in the lowest mode
         * can converge on the next one */
        if ((rc = pf_second_order_set_modes(t, NULL, err))) goto done;
        pf_train_result tr;
        if ((rc = pf_train_beta(t, mid, train, &cfg, &tr, err))) goto done;
        add_branch(t, out, beta_from, &tr, branch_modes, &have_branch_modes, np);
    }
    while (fabs(beta_to - beta_from) > tol) {
        double beta_mid = 0.5 * (beta_from + beta_to);
        if (beta_mid == beta_from || beta_mid == beta_to) break; /* at double resolution */
        memcpy(mid, theta_from, np * sizeof *mid);
        pf_train_config cfg = *base;
        cfg.beta = beta_mid;
        pf_train_result tr;
        if (have_branch_modes && (rc = pf_second_order_set_modes(t, branch_modes, err))) break;
        if ((rc = pf_train_beta(t, mid, train, &cfg, &tr, err))) break;
        if ((rc = pf_measure(&t->eval_work, mid, train, test, base->anchor, beta_mid, &m_mid, err))) break;
        out->steps++;
        double lm = log(fmax(m_mid.r, 1e-300));
        if (fabs(lm - log(m_from.r)) <= fabs(lm - log(m_to.r))) {
            beta_from = beta_mid;
            memcpy(theta_from, mid, np * sizeof *mid);
            m_from = m_mid;
            if (base->certify) add_branch(t, out, beta_mid, &tr, branch_modes, &have_branch_modes, np);
        } else {
            beta_to = beta_mid;
            memcpy(theta_to, mid, np * sizeof *mid);
            m_to = m_mid;
        }
    }
    if (!rc && have_branch_modes) {
        /* the jump against the old phase's soft mode */
        double dot = 0, nn = 0;
        for (size_t i = 0; i < np; i++) {
            double d = (double)theta_to[i] - (double)theta_from[i];
            dot += branch_modes[i] * d;
            nn += d * d;
        }
        out->overlap = nn > 0 ? fabs(dot) / sqrt(nn) : NAN;
    }
done:
    free(mid);
    free(branch_modes);
    out->beta_from = beta_from;
    out->beta_to = beta_to;
    out->from = m_from;
    out->to = m_to;
    out->seconds = pf_now() - t0;
    out->tol = tol;
    return rc;
}
