/* One leg (direction) of a sweep, analysed: its points in ascending beta,
 * the first-order transitions and grid gaps found on them, the phases
 * between, and which classes each boundary loses or gains. A transition
 * that changes which classes are encoded is major, whatever the detector's
 * accuracy rule says. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp/results.h"

int pf_leg_build(pf_leg *g, const pf_point_result *rows, long n_rows, int direction,
                   const pf_detect_config *dc, const pf_encoding *enc, pf_error *err)
{
    memset(g, 0, sizeof *g);
    g->direction = direction;
    /* a point whose training blew up is no state of the model: left out */
    for (long i = 0; i < n_rows; i++) g->n += rows[i].point.direction == direction && !rows[i].diverged;
    if (g->n == 0) return PF_OK;
    int K = rows[0].m.test.n_classes;
    g->n_classes = K;
    g->rows = malloc((size_t)g->n * sizeof *g->rows);
    g->sorted = malloc((size_t)g->n * sizeof *g->sorted);
    double *buf = malloc((size_t)g->n * (5 + (size_t)(K ? K : 1)) * sizeof *buf);
    if (!g->rows || !g->sorted || !buf) {
        free(buf);
        pf_leg_free(g);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    long k = 0;
    for (long i = 0; i < n_rows; i++)
        if (rows[i].point.direction == direction && !rows[i].diverged) g->rows[k++] = &rows[i];
    if (direction < 0) /* the down leg was visited in descending beta */
        for (long i = 0; i < g->n / 2; i++) {
            const pf_point_result *t = g->rows[i];
            g->rows[i] = g->rows[g->n - 1 - i];
            g->rows[g->n - 1 - i] = t;
        }
    for (long i = 1; i < g->n; i++)
        if (!(g->rows[i]->point.beta > g->rows[i - 1]->point.beta)) {
            free(buf);
            pf_leg_free(g);
            return pf_fail(err, PF_EINPUT, "sweep table: betas of the %s leg are not monotonic",
                           direction > 0 ? "up" : "down");
        }
    g->buf = buf;
    g->beta = buf, g->r = buf + g->n, g->loss = buf + 2 * g->n, g->reg = buf + 3 * g->n;
    g->acc = buf + 4 * g->n, g->class_acc = buf + 5 * g->n;
    for (long i = 0; i < g->n; i++) {
        const pf_point_result *r = g->rows[i];
        g->sorted[i] = *r;
        g->beta[i] = r->point.beta;
        g->r[i] = r->m.r;
        g->loss[i] = r->m.train.loss;
        g->reg[i] = r->m.reg_loss;
        g->acc[i] = r->m.test.accuracy;
        for (int c = 0; c < K; c++) g->class_acc[i * K + c] = r->m.test.class_accuracy[c];
    }
    pf_curve curve = {g->n, g->beta, g->r, g->loss, g->reg, g->acc, K > 1 ? log((double)K) : 0.0};
    /* Gaps split phases (beta = 0 before 0.02, 0.0205, ... is its own) but
     * are not transitions: the detector fits no trend across them. */
    int rc = pf_detect_gaps(g->beta, g->n, dc, &g->gaps, &g->ng, err);
    if (!rc) rc = pf_detect_transitions(&curve, dc, &g->t, &g->nt, err);
    if (!rc && K > 0)
        rc = pf_phases(g->beta, g->acc, g->loss, g->r, g->class_acc, g->n, K, g->t, g->nt,
                       g->gaps, g->ng, enc, PF_LOSS_CE, &g->ph, &g->nph, err);
    /* A transition that changes which classes are encoded is major too, even
     * when the test accuracy moves by less than the detector's threshold. */
    for (long k = 0; !rc && g->ph && k < g->nt; k++) {
        uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
        pf_leg_boundary_sets(g, pf_leg_phase_below_transition(g, k), lost, gained);
        if (pf_set_count(lost, K) || pf_set_count(gained, K)) g->t[k].major = 1;
    }
    if (rc) pf_leg_free(g);
    return rc;
}
void pf_leg_free(pf_leg *g)
{
    free(g->rows);
    free(g->sorted);
    free(g->buf);
    free(g->t);
    free(g->gaps);
    free(g->ph);
    free(g->refined);
    free(g->has_refined);
    memset(g, 0, sizeof *g);
}
/* The phase just below transition k (pf_phases records which it is). */
long pf_leg_phase_below_transition(const pf_leg *g, long k)
{
    for (long p = 0; p + 1 < g->nph; p++)
        if (g->ph[p].bound_to == PF_BOUND_TRANSITION && g->ph[p].transition_to == k) return p;
    return -1;
}
/* The phase just below gap k. */
long pf_leg_phase_below_gap(const pf_leg *g, long k)
{
    for (long p = 0; p + 1 < g->nph; p++)
        if (g->ph[p].bound_to == PF_BOUND_GAP && g->ph[p].last == g->gaps[k]) return p;
    return -1;
}
/* Across the boundary between phases p and p + 1: lost = before \ after,
 * gained = after \ before, in the leg's direction of travel (both empty
 * when p is not a boundary). */
void pf_leg_boundary_sets(const pf_leg *g, long p, uint64_t *lost, uint64_t *gained)
{
    memset(lost, 0, PF_MAX_CLASSES / 8);
    memset(gained, 0, PF_MAX_CLASSES / 8);
    if (p < 0 || p + 1 >= g->nph) return;
    const pf_phase *lo = &g->ph[p], *hi = &g->ph[p + 1];
    const pf_phase *before = g->direction > 0 ? lo : hi, *after = g->direction > 0 ? hi : lo;
    for (int w = 0; w < PF_MAX_CLASSES / 64; w++) {
        lost[w] = before->encoded[w] & ~after->encoded[w];
        gained[w] = after->encoded[w] & ~before->encoded[w];
    }
}
const char *pf_leg_name(const pf_leg *g) { return g->direction > 0 ? "up" : "down"; }
void pf_leg_label(char *buf, size_t n, const pf_leg *g, long k)
{
    snprintf(buf, n, "%s%ld", g->direction > 0 ? "T" : "D", k + 1);
}
/* A phase named as its node in the hierarchy would be. */
void pf_phase_label(char *buf, size_t n, const pf_phase *q)
{
    pf_basin b;
    memset(&b, 0, sizeof b);
    b.trivial = q->trivial;
    b.unresolved = q->unresolved;
    memcpy(b.set, q->encoded, sizeof b.set);
    memcpy(b.partial, q->partial, sizeof b.partial);
    pf_basin_label(&b, q->n_classes, buf, n);
}
