/* Bisection of a transition in beta (see pf_refine_transition in exp.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

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
    float *mid = malloc(np * sizeof *mid);
    if (!mid) return pf_fail(err, PF_ERUNTIME, "out of memory");
    while (fabs(beta_to - beta_from) > tol) {
        double beta_mid = 0.5 * (beta_from + beta_to);
        if (beta_mid == beta_from || beta_mid == beta_to) break; /* at double resolution */
        memcpy(mid, theta_from, np * sizeof *mid);
        pf_train_config cfg = *base;
        cfg.beta = beta_mid;
        pf_train_result tr;
        if ((rc = pf_train_beta(t, mid, train, &cfg, &tr, err))) break;
        if ((rc = pf_measure(&t->eval_work, mid, train, test, base->anchor, beta_mid, &m_mid, err))) break;
        out->steps++;
        double lm = log(fmax(m_mid.r, 1e-300));
        if (fabs(lm - log(m_from.r)) <= fabs(lm - log(m_to.r))) {
            beta_from = beta_mid;
            memcpy(theta_from, mid, np * sizeof *mid);
            m_from = m_mid;
        } else {
            beta_to = beta_mid;
            memcpy(theta_to, mid, np * sizeof *mid);
            m_to = m_mid;
        }
    }
    free(mid);
    out->beta_from = beta_from;
    out->beta_to = beta_to;
    out->from = m_from;
    out->to = m_to;
    out->seconds = pf_now() - t0;
    out->tol = tol;
    return rc;
}
