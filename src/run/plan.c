/* Plans: a command's work as stages of independent tasks (run.h). This
 * file holds what every plan shares; the experiments fill in how to
 * prepare a stage, run a task and finish (sweep_run.c, pair.c,
 * spectrum.c), and command.c builds the plan of a command. */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/plan.h"

pf_plan *pf_plan_alloc(int n_stages, int threads)
{
    pf_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_stages = n_stages;
    p->stage = -1;
    p->threads = threads;
    return p;
}

static void clear_tasks(pf_plan *p)
{
    for (long i = 0; i < p->n_tasks; i++) free(p->names[i]);
    p->n_tasks = 0;
}

int pf_plan_add(pf_plan *p, pf_error *err, const char *fmt, ...)
{
    if (p->n_tasks == p->cap) {
        long cap = p->cap ? 2 * p->cap : 16;
        char **g = realloc(p->names, (size_t)cap * sizeof *g);
        if (!g) return pf_fail(err, PF_ERUNTIME, "out of memory for the plan's tasks");
        p->names = g;
        p->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *name = NULL;
    int n = vasprintf(&name, fmt, ap);
    va_end(ap);
    if (n < 0) return pf_fail(err, PF_ERUNTIME, "out of memory for the plan's tasks");
    p->names[p->n_tasks++] = name;
    return PF_OK;
}

void pf_plan_free(pf_plan *p)
{
    if (!p) return;
    clear_tasks(p);
    free(p->names);
    if (p->free_data) p->free_data(p->data);
    pf_ctx_free(p->ctx);
    free(p);
}

int pf_plan_stages(const pf_plan *p) { return p->n_stages; }

int pf_plan_prepare(pf_plan *p, int stage, long *n_tasks, pf_error *err)
{
    *n_tasks = 0;
    if (stage < 0 || stage >= p->n_stages)
        return pf_fail(err, PF_EINPUT, "the plan has no stage %d (it has %d)", stage, p->n_stages);
    clear_tasks(p);
    p->stage = stage;
    int rc = p->prepare(p, stage, err);
    if (rc) {
        clear_tasks(p);
        p->stage = -1;
        return rc;
    }
    *n_tasks = p->n_tasks;
    return PF_OK;
}

const char *pf_plan_task(const pf_plan *p, long i)
{
    return p->stage >= 0 && i >= 0 && i < p->n_tasks ? p->names[i] : NULL;
}

int pf_plan_run(pf_plan *p, long i, pf_error *err)
{
    if (p->stage < 0 || i < 0 || i >= p->n_tasks)
        return pf_fail(err, PF_EINPUT, "no task %ld in the prepared stage", i);
    if (!p->ctx) {
        int rc = pf_ctx_create(&p->ctx, p->threads, err);
        if (rc) return rc;
    }
    return p->run(p, p->ctx, i, err);
}

int pf_plan_finish(pf_plan *p, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    return p->finish(p, out, err);
}

int pf_plan_run_all(pf_plan *p, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = PF_OK;
    for (int stage = 0; stage < p->n_stages && !rc; stage++) {
        long n;
        rc = pf_plan_prepare(p, stage, &n, err);
        for (long i = 0; i < n && !rc; i++) rc = pf_plan_run(p, i, err);
    }
    return rc ? rc : pf_plan_finish(p, out, err);
}
