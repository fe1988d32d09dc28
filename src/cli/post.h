/* After a sweep: detect, refine and explain the transitions, write
 * transitions.json, phases.json and figures. Shared by `sweep` (at its end)
 * and `transitions DIR`. */
#ifndef PATHFINDER_POST_H
#define PATHFINDER_POST_H

#include "cli.h"

typedef struct {
    pf_detect_config detect;
    int refine;               /* bisect transitions (needs the trainer) */
    int no_refine;            /* --no-refine */
    double refine_tol;
    pf_encoding encoding;     /* when a plateau encodes a class */
    long save_every;          /* keep every N-th point's checkpoint */
    int keep_checkpoints;
} post_options;

void post_options_default(post_options *o);

/* Option rows (cli_option tables based at a post_options): detection
 * (--window, --threshold, --min-jump, --gap-factor), encoding
 * (--encoded-threshold, --encoded-fraction) and refinement (--refine-tol,
 * --no-refine). Call post_options_finish after parsing. */
extern const cli_option post_detect_rows[];
extern const cli_option post_refine_rows[];
void post_options_finish(post_options *o);

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
    int json;                 /* one JSON document on stdout instead of the tables */
    const char *command;      /* for that document ("sweep", "transitions") */
} post_context;

/* One direction of a sweep, in ascending beta, with its transitions, grid
 * gaps, phases and refinements. Phases are split at both transitions and
 * gaps; only transitions are labelled T1.. (D1.. down), scored, refined,
 * marked in figures and kept checkpoints for. */
typedef struct {
    int direction;
    long n;
    int n_classes;
    const pf_point_result **rows;  /* (n) pointers into the sweep's rows */
    pf_point_result *sorted;       /* (n) copies in ascending beta */
    double *buf, *beta, *r, *loss, *reg, *acc, *class_acc;
    pf_transition *t;
    long nt;
    long *gaps;                    /* (ng) index (ascending) of the point below each grid gap */
    long ng;
    pf_phase *ph;                  /* (nph) */
    long nph;                      /* nt + ng + 1 when there are classes, else 0 */
    pf_refined *refined;           /* (nt) */
    int *has_refined;
} post_leg;

int post_leg_build(post_leg *g, const pf_point_result *rows, long n_rows, int direction,
                   const pf_detect_config *dc, const pf_encoding *enc, pf_error *err);
void post_leg_free(post_leg *g);
void post_print_table(FILE *f, const post_leg *g);
void post_print_tree(FILE *f, const pf_hierarchy *h);
/* The leg's transitions as a JSON array (label, betas, r, losses, classes
 * lost/gained, refinement). */
cJSON *post_transitions_json(const post_leg *g);
/* The leg's grid gaps as a JSON array (betas, indices, classes lost/gained). */
cJSON *post_gaps_json(const post_leg *g);
cJSON *post_phases_json(const post_leg *g);
cJSON *post_hierarchy_json(const pf_hierarchy *h);
int post_write_json(const char *path, cJSON *obj, pf_error *err);
/* Every figure of the legs and the hierarchy; each written is told as a
 * line on report and as its three files in the array names (either may be
 * NULL). */
int post_figures(const char *dir, const post_leg *legs, int n_legs, const pf_hierarchy *h,
                 FILE *report, cJSON *names, pf_error *err);

/* mkdir -p. */
int post_make_dir(const char *path, pf_error *err);
/* The run folder and its checkpoints/, figures/, transitions/. */
int post_make_dirs(const char *dir, pf_error *err);
int post_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                                const float *theta, const char *anchor, uint64_t seed,
                                const char *dataset, pf_error *err);
int post_process(const post_context *pc, pf_error *err);

#endif
