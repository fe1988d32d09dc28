/* After a sweep: detect, refine and explain the transitions, write
 * transitions.json, phases.json and figures. Shared by `sweep` (at its end)
 * and `transitions DIR`. */
#ifndef PATHFINDER_POST_H
#define PATHFINDER_POST_H

#include "cli.h"

typedef struct {
    pf_detect_config detect;
    int refine;               /* bisect transitions (needs the trainer) */
    double refine_tol;
    double encoded_threshold; /* percent */
    long save_every;          /* keep every N-th point's checkpoint */
    int keep_checkpoints;
} post_options;

void post_options_default(post_options *o);

typedef struct {
    const char *dir;
    const pf_arch *arch;
    const pf_dataset *train, *test;   /* NULL in `transitions DIR` */
    const float *anchor;
    const pf_train_config *cfg;
    pf_trainer *trainer;               /* NULL: no refinement possible */
    const pf_point_result *rows;
    long n_rows;
    const post_options *opt;
    int quiet;
    const char *anchor_path;
    uint64_t seed;
} post_context;

int post_make_dirs(const char *dir, pf_error *err);
int post_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                                const float *theta, const char *anchor, uint64_t seed,
                                const char *dataset, pf_error *err);
int post_process(const post_context *pc, pf_error *err);

#endif
