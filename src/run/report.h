/* Reports (report.c): the JSON and the text tables of the run calls.
 * Internal to the library. */
#ifndef PATHFINDER_RUN_REPORT_H
#define PATHFINDER_RUN_REPORT_H

#include <stdio.h>

#include <cJSON.h>

#include "pathfinder/run.h"
#include "exp/results.h"

/* JSON of the analysis: a class set [0, 1, 7]; a leg's transitions (label,
 * betas, r, losses, classes lost/gained, refinement), gaps and phases; the
 * hierarchy. */
cJSON *pf_json_set(const uint64_t *set, int n_classes);
/* A refinement's interval, metrics, steps, time and tolerance. */
cJSON *pf_json_refined(const pf_refined *f);
/* The fold analysis of a transition (transitions.json's "fold"). */
cJSON *pf_json_fold(const pf_fold *f);
/* A power-law fit y = a (beta_c - beta)^gamma: beta_c, gamma, intervals. */
cJSON *pf_json_power_fit(const pf_power_fit *f);
cJSON *pf_json_transitions(const pf_leg *g);
cJSON *pf_json_gaps(const pf_leg *g);
cJSON *pf_json_phases(const pf_leg *g);
cJSON *pf_json_hierarchy(const pf_hierarchy *h);
/* Metrics and protocols, as in train's and eval's JSON lines. */
cJSON *pf_json_eval(const pf_eval *e);
cJSON *pf_json_metrics(const pf_metrics *m);
/* The per-beta training protocol (everything that decides the trained
 * models, threads included), as recorded in config.json and summary.json
 * and compared when a run resumes. */
cJSON *pf_json_protocol(const pf_train_config *cfg, int threads);
/* obj printed with indentation, written atomically. */
/* 1 if path ends in ext (".json") after at least one character. */
int pf_has_ext(const char *path, const char *ext);
int pf_write_json(const char *path, cJSON *obj, pf_error *err);

/* Text tables: a leg's transitions and gaps, the hierarchy as a tree. */
void pf_report_leg(FILE *f, const pf_leg *g);
void pf_report_tree(FILE *f, const pf_hierarchy *h);

/* A text growing by printf into memory (a memstream); pf_text_end closes
 * it and hands over the text (NULL when out of memory). */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} pf_text;

int pf_text_begin(pf_text *t);
char *pf_text_end(pf_text *t);

/* The document as one line, allocated (NULL when out of memory). */
char *pf_json_line(const cJSON *doc);

#endif
