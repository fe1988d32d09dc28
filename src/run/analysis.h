/* The analysis of a sweep folder (analysis.c), shared by the sweep run and
 * `transitions DIR`. Internal to the library. */
#ifndef PATHFINDER_RUN_ANALYSIS_H
#define PATHFINDER_RUN_ANALYSIS_H

#include "pathfinder/run.h"
#include "exp/results.h"

typedef struct {
    const char *dir;
    const pf_point_result *rows;
    long n_rows;
    const pf_analysis_config *cfg;
    /* Refinement, in a sweep run: its trainer, model, data and protocol
     * (trainer NULL: refinements are only read back). */
    pf_trainer *trainer;
    const pf_arch *arch;
    const pf_dataset *train, *test;
    const pf_train_config *protocol;
    const char *anchor_path;
    uint64_t seed;
    pf_event_fn progress;
    void *progress_ctx;
    pf_figures_fn figures;
    const char *command;     /* for the report ("sweep", "transitions", "refine") */
    /* Refine only the transition with this label ("T2", "D1"; NULL: all),
     * and again even if it is recorded; PF_EINPUT if there is none. */
    const char *refine_only;
    int record_only;         /* with refine_only: refine it (once), write nothing else */
    int prune;               /* afterwards keep only the checkpoints the config keeps (every
                              * transition refined by then) */
} pf_analysis_input;

int pf_analyze(const pf_analysis_input *in, pf_report *out, pf_error *err);

/* The last part of a sweep run as a plan does it: the analysis from the
 * table and the recorded refinements, then the checkpoints pruned. */
int pf_sweep_final_analysis(const char *dir, const pf_analysis_config *c, pf_figures_fn figures,
                            pf_report *out, pf_error *err);
/* The labels (T1.., D1..) of the transitions of a sweep folder's table. */
int pf_sweep_transition_labels(const char *dir, const pf_analysis_config *c, char (**labels)[16],
                               long *n, pf_error *err);

/* The run folder and its checkpoints/, figures/, transitions/ (mkdir -p). */
int pf_sweep_folder_make(const char *dir, pf_error *err);
/* DIR/checkpoints/pNNNNN.safetensors */
void pf_checkpoint_path(char *buf, size_t n, const char *dir, long index);
int pf_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                              const float *theta, const char *anchor, uint64_t seed,
                              const char *dataset, pf_error *err);

#endif
