/* Plans (run.h: pf_plan): the generic part (plan.c) and what each
 * experiment provides to build one. Internal to the library. */
#ifndef PATHFINDER_RUN_PLAN_H
#define PATHFINDER_RUN_PLAN_H

#include "pathfinder/run.h"

struct pf_plan {
    int n_stages;
    int stage;                /* the prepared one, -1 before the first */
    long n_tasks;
    char **names;             /* (n_tasks) of the prepared stage */
    long cap;
    int threads;              /* of the context tasks run with */
    pf_ctx *ctx;              /* made at the first task */
    void *data;               /* the experiment's */
    int (*prepare)(pf_plan *p, int stage, pf_error *err);   /* adds the stage's tasks */
    int (*run)(pf_plan *p, pf_ctx *ctx, long i, pf_error *err);
    int (*finish)(pf_plan *p, pf_report *out, pf_error *err);
    void (*free_data)(void *data);
};

/* A plan of n_stages run with contexts of threads members. */
pf_plan *pf_plan_alloc(int n_stages, int threads);
/* Add a task to the stage being prepared, named by printf. */
int pf_plan_add(pf_plan *p, pf_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The parts of a sweep (sweep_run.c). */
typedef enum {
    PF_SWEEP_WHOLE,          /* points, refinements, analysis and pruning: pf_run_sweep */
    PF_SWEEP_POINTS,         /* the points and a first analysis; nothing refined, nothing pruned */
    PF_SWEEP_REFINE_TASK     /* one transition (refine_only), beside other such tasks */
} pf_sweep_part;

int pf_sweep_run_part(pf_ctx *ctx, const char *dir, const pf_sweep_config *c, pf_sweep_part part,
                      const char *refine_only, pf_report *out, pf_error *err);
/* The sweep's plan: seeds (n_seeds of them, each into out/seed<S>) or,
 * with n_seeds 0, the one sweep c describes into out. c, out and seeds
 * are borrowed. */
int pf_sweep_plan(const pf_sweep_config *c, const char *out, const uint64_t *seeds, long n_seeds,
                  int threads, pf_plan **plan, pf_error *err);
/* connect and probe (pair.c): the pairs of models (probe: from models[0]
 * toward each of models[1..]). */
int pf_paths_plan(const char *dir, const char *const *models, int n_models, int probe,
                  const pf_path_run_config *c, int threads, pf_plan **plan, pf_error *err);
/* hessian of several checkpoints (spectrum.c), each into dir. */
int pf_spectra_plan(const char *dir, const char *const *models, int n_models,
                    const pf_spectrum_config *c, int threads, pf_plan **plan, pf_error *err);

#endif
