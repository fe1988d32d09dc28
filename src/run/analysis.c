/* The analysis of a sweep folder: detection, refinement, phases, the
 * hierarchy, the JSON files, the figures (through the caller's hook) and
 * the report. Every output can be rebuilt from sweep.csv (and the
 * checkpoints, for refinement), so rerunning is always safe; refinements
 * already in transitions.json are reused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "run/analysis.h"
#include "run/report.h"
#include "run/tables.h"

void pf_analysis_config_default(pf_analysis_config *c)
{
    memset(c, 0, sizeof *c);
    pf_detect_config_default(&c->detect);
    pf_encoding_default(&c->encoding);
    c->refine = 1;
    c->refine_tol = 1e-6;
}

int pf_sweep_folder_make(const char *dir, pf_error *err)
{
    char path[4096];
    int rc = pf_make_dirs(dir, err);
    const char *subs[] = {"checkpoints", "figures", "transitions"};
    for (int i = 0; !rc && i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        rc = pf_make_dirs(path, err);
    }
    return rc;
}

void pf_checkpoint_path(char *buf, size_t n, const char *dir, long index)
{
    snprintf(buf, n, "%s/checkpoints/p%05ld.safetensors", dir, index);
}
int pf_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                                const float *theta, const char *anchor, uint64_t seed,
                                const char *dataset, pf_error *err)
{
    char path[4096];
    pf_checkpoint_path(path, sizeof path, dir, res->index);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = res->point.beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", anchor ? anchor : "origin");
    meta.seed = seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", dataset);
    char extra[160];
    snprintf(extra, sizeof extra, "{\"sweep_index\":%ld,\"direction\":\"%s\",\"epochs\":%d}",
             res->index, res->point.direction > 0 ? "up" : "down", res->epochs);
    meta.extra = extra;
    return pf_ckpt_write(path, arch, theta, &meta, err);
}
/* A refinement read back from its JSON (a record, or transitions.json's
 * "refined" object). */
static void refined_from_json(const cJSON *ref, pf_refined *f)
{
    memset(f, 0, sizeof *f);
#define NUM(key) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, key))
    f->beta_from = NUM("beta_from");
    f->beta_to = NUM("beta_to");
    f->from.r = NUM("r_from");
    f->to.r = NUM("r_to");
    f->from.test.accuracy = NUM("test_accuracy_from");
    f->to.test.accuracy = NUM("test_accuracy_to");
    f->from.train.loss = NUM("train_loss_from");
    f->to.train.loss = NUM("train_loss_to");
    f->steps = (int)NUM("steps");
    f->seconds = NUM("seconds");
    f->tol = NUM("tol");   /* NaN in folders from before it was recorded */
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(ref, "overlap");
    f->overlap = cJSON_IsNumber(ov) ? ov->valuedouble : NAN;
    const cJSON *p, *branch = cJSON_GetObjectItemCaseSensitive(ref, "branch");
    cJSON_ArrayForEach(p, branch)
    {
        if (f->n_branch >= PF_REFINE_MAX_BRANCH || cJSON_GetArraySize(p) != 3) break;
        f->branch_beta[f->n_branch] = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
        f->branch_lambda_min[f->n_branch] = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
        f->branch_certified[f->n_branch] = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 2)) != 0;
        f->n_branch++;
    }
#undef NUM
}

/* DIR/transitions/refined_<leg>_<below>_<above>.json: the record of one
 * refinement, named by the sweep points around the transition, written
 * with its two checkpoints; a refinement done in another process (a task
 * of a plan) reaches the analysis through it. */
static void record_path(char *buf, size_t n, const char *dir, const pf_leg *g, long k)
{
    snprintf(buf, n, "%s/transitions/refined_%s_%ld_%ld.json", dir, pf_leg_name(g),
             g->sorted[g->t[k].below].index, g->sorted[g->t[k].above].index);
}

static int read_record(const char *path, pf_refined *f)
{
    char *text;
    pf_error err;
    if (access(path, F_OK) != 0 || pf_read_file(path, &text, NULL, 1 << 20, &err)) return 0;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (o) refined_from_json(o, f);
    cJSON_Delete(o);
    return o && isfinite(f->beta_from) && isfinite(f->beta_to);
}

/* Reuse the refinements already made for the same pair of sweep points:
 * their records, else (folders from before records) DIR/transitions.json. */
static void reuse_refinements(const char *dir, pf_leg *g)
{
    char path[4096], *text;
    pf_error err;
    for (long k = 0; k < g->nt; k++) {
        record_path(path, sizeof path, dir, g, k);
        g->has_refined[k] = read_record(path, &g->refined[k]);
    }
    snprintf(path, sizeof path, "%s/transitions.json", dir);
    if (access(path, F_OK) != 0 || pf_read_file(path, &text, NULL, 1 << 26, &err)) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "transitions") : NULL, *o;
    cJSON_ArrayForEach(o, arr)
    {
        cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "refined");
        cJSON *dirn = cJSON_GetObjectItemCaseSensitive(o, "direction");
        if (!ref || !cJSON_IsString(dirn) || strcmp(dirn->valuestring, pf_leg_name(g))) continue;
        double ib = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "index_below"));
        double ia = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "index_above"));
        for (long k = 0; k < g->nt; k++) {
            if (g->has_refined[k] || (double)g->sorted[g->t[k].below].index != ib ||
                (double)g->sorted[g->t[k].above].index != ia)
                continue;
            refined_from_json(ref, &g->refined[k]);
            g->has_refined[k] = isfinite(g->refined[k].beta_from) && isfinite(g->refined[k].beta_to);
        }
    }
    cJSON_Delete(root);
}

/* Bisect transition k of leg g from the checkpoints either side of it and
 * write its two models and its record. */
static int refine_one(const pf_analysis_input *pc, pf_leg *g, long k, pf_error *err)
{
    char label[32], p_from[4096], p_to[4096], out_from[4096], out_to[4096], record[4096];
    pf_leg_label(label, sizeof label, g, k);
    const char *side_from = g->direction > 0 ? "below" : "above";
    const char *side_to = g->direction > 0 ? "above" : "below";
    snprintf(out_from, sizeof out_from, "%s/transitions/%s_%s.safetensors", pc->dir, label, side_from);
    snprintf(out_to, sizeof out_to, "%s/transitions/%s_%s.safetensors", pc->dir, label, side_to);
    record_path(record, sizeof record, pc->dir, g, k);
    const pf_point_result *a = &g->sorted[g->direction > 0 ? g->t[k].below : g->t[k].above];
    const pf_point_result *b = &g->sorted[g->direction > 0 ? g->t[k].above : g->t[k].below];
    pf_checkpoint_path(p_from, sizeof p_from, pc->dir, a->index);
    pf_checkpoint_path(p_to, sizeof p_to, pc->dir, b->index);
    float *th_from = NULL, *th_to = NULL;
    pf_arch tmp;
    int rc;
    if ((rc = pf_ckpt_read(p_from, pc->arch, pc->arch, &tmp, &th_from, NULL, err)) ||
        (rc = pf_ckpt_read(p_to, pc->arch, pc->arch, &tmp, &th_to, NULL, err))) {
        free(th_from);
        return rc;
    }
    /* a refinement is reproducible on its own: its shuffling stream
     * depends only on the seed and the points it starts from (and the
     * trainer's state is the sweep's last, restored before each one) */
    pf_rng_seed(&pc->trainer->rng, pc->seed * 1000003u + (uint64_t)a->index * 7919u + 17u);
    if (pc->progress) {
        char text[160];
        snprintf(text, sizeof text, "refining %s (%s) between beta %.6g and %.6g", label, pf_leg_name(g),
                 a->point.beta, b->point.beta);
        pf_event e = {.kind = PF_EVENT_NOTE, .run = pc->dir, .text = text, .beta = NAN};
        pc->progress(pc->progress_ctx, &e);
    }
    pf_refined *f = &g->refined[k];
    rc = pf_refine_transition(pc->trainer, pc->train, pc->test, pc->protocol, th_from, a->point.beta,
                              th_to, b->point.beta, pc->cfg->refine_tol, f, err);
    pf_ckpt_meta meta;
    char extra[160];
    memset(&meta, 0, sizeof meta);
    snprintf(meta.anchor, sizeof meta.anchor, "%s", pc->anchor_path ? pc->anchor_path : "origin");
    meta.seed = pc->seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", pc->train->name);
    meta.extra = extra;
    if (!rc) {
        meta.beta = f->beta_from;
        snprintf(extra, sizeof extra, "{\"transition\":\"%s\",\"side\":\"%s\"}", label, side_from);
        rc = pf_ckpt_write(out_from, pc->arch, th_from, &meta, err);
    }
    if (!rc) {
        meta.beta = f->beta_to;
        snprintf(extra, sizeof extra, "{\"transition\":\"%s\",\"side\":\"%s\"}", label, side_to);
        rc = pf_ckpt_write(out_to, pc->arch, th_to, &meta, err);
    }
    if (!rc) {   /* last: a record means both models are there */
        cJSON *o = pf_json_refined(f);
        rc = o ? pf_write_json(record, o, err) : pf_fail(err, PF_ERUNTIME, "out of memory");
        cJSON_Delete(o);
    }
    if (!rc) g->has_refined[k] = 1;
    free(th_from);
    free(th_to);
    return rc;
}

/* The refinements a leg of dir's table has recorded. */
static int recorded_refinements(const char *dir, pf_leg *g, pf_error *err)
{
    if (g->nt == 0) return PF_OK;
    g->refined = calloc((size_t)g->nt, sizeof *g->refined);
    g->has_refined = calloc((size_t)g->nt, sizeof *g->has_refined);
    if (!g->refined || !g->has_refined) return pf_fail(err, PF_ERUNTIME, "out of memory");
    reuse_refinements(dir, g);
    return PF_OK;
}

static int refine_leg(const pf_analysis_input *pc, pf_leg *g, const pf_trainer_state *start, int *found,
                      pf_error *err)
{
    if (g->nt == 0) return PF_OK;
    int rc = recorded_refinements(pc->dir, g, err);
    if (rc || !pc->cfg->refine || !pc->trainer) return rc;
    for (long k = 0; k < g->nt && !rc; k++) {
        char label[32], out_from[4096], out_to[4096];
        pf_leg_label(label, sizeof label, g, k);
        snprintf(out_from, sizeof out_from, "%s/transitions/%s_%s.safetensors", pc->dir, label,
                 g->direction > 0 ? "below" : "above");
        snprintf(out_to, sizeof out_to, "%s/transitions/%s_%s.safetensors", pc->dir, label,
                 g->direction > 0 ? "above" : "below");
        int done = g->has_refined[k] && access(out_from, F_OK) == 0 && access(out_to, F_OK) == 0;
        if (pc->refine_only) {
            if (strcmp(label, pc->refine_only) != 0) continue;
            *found = 1;
            if (pc->record_only && done) continue;   /* a task done before */
        } else if (done) {
            continue;
        }
        pf_dir_lock *lock = NULL;
        if (pc->record_only) {   /* tasks of one folder on several processes: one per transition */
            char path[4096];
            snprintf(path, sizeof path, "%s/transitions/.refine_%s_%ld_%ld.lock", pc->dir, pf_leg_name(g),
                     g->sorted[g->t[k].below].index, g->sorted[g->t[k].above].index);
            if ((rc = pf_file_lock_acquire(path, &lock, err))) break;
        }
        if (start) rc = pf_trainer_set_state(pc->trainer, start, err);
        if (!rc) rc = refine_one(pc, g, k, err);
        pf_dir_lock_release(lock);
    }
    return rc;
}

/* Keep every save_every-th checkpoint and those beside transitions. */
static void prune_checkpoints(const pf_analysis_input *pc, const pf_leg *legs, int n_legs)
{
    if (!pc->prune || pc->cfg->keep_checkpoints || !pc->cfg->refine) return;
    for (long i = 0; i < pc->n_rows; i++) {
        long idx = pc->rows[i].index;
        int keep = (pc->cfg->save_every > 0 && idx % pc->cfg->save_every == 0) || i == pc->n_rows - 1;
        for (int l = 0; l < n_legs && !keep; l++)
            for (long k = 0; k < legs[l].nt; k++)
                keep |= legs[l].sorted[legs[l].t[k].below].index == idx ||
                        legs[l].sorted[legs[l].t[k].above].index == idx;
        if (keep) continue;
        char path[4096];
        pf_checkpoint_path(path, sizeof path, pc->dir, idx);
        unlink(path);
    }
}
/* The figures the figure library draws for a sweep folder that exist. */
static void list_figures(const char *dir, const pf_leg *legs, const pf_hierarchy *h, cJSON *names,
                         FILE *text)
{
    const char *bases[6] = {"phase_diagram_up", "class_accuracy_up", "phase_diagram_down",
                            "class_accuracy_down", "hysteresis", "hierarchy"};
    (void)legs, (void)h;
    for (int i = 0; i < 6; i++) {
        char base[4200], path[4300];
        snprintf(base, sizeof base, "%s/figures/%s", dir, bases[i]);
        snprintf(path, sizeof path, "%s.png", base);
        if (access(path, F_OK) != 0) continue;
        if (text) fprintf(text, "  %s.png (.pdf, .svg)\n", base);
        const char *ext[3] = {"png", "pdf", "svg"};
        for (int e = 0; e < 3; e++) {
            snprintf(path, sizeof path, "%s.%s", base, ext[e]);
            cJSON_AddItemToArray(names, cJSON_CreateString(path));
        }
    }
}

/* The report: one document with what transitions.json and phases.json
 * hold and the files written, and the text tables. */
static int analysis_report(const pf_analysis_input *pc, const pf_leg *legs, const pf_hierarchy *h,
                           cJSON *tj, cJSON *pj, pf_report *out, pf_error *err)
{
    char path[4200];
    cJSON *doc = cJSON_CreateObject(), *figs = cJSON_CreateArray();
    cJSON_AddStringToObject(doc, "command", pc->command ? pc->command : "transitions");
    cJSON_AddStringToObject(doc, "folder", pc->dir);
    cJSON_AddItemReferenceToObject(doc, "transitions", cJSON_GetObjectItemCaseSensitive(tj, "transitions"));
    cJSON_AddItemReferenceToObject(doc, "gaps", cJSON_GetObjectItemCaseSensitive(tj, "gaps"));
    cJSON_AddItemReferenceToObject(doc, "phases", cJSON_GetObjectItemCaseSensitive(pj, "phases"));
    cJSON_AddItemReferenceToObject(doc, "hierarchy", cJSON_GetObjectItemCaseSensitive(pj, "hierarchy"));
    pf_text t;
    if (pf_text_begin(&t)) {
        cJSON_Delete(doc);
        cJSON_Delete(figs);
        return pf_fail(err, PF_ERUNTIME, "out of memory for the report");
    }
    fprintf(t.f, "Transitions (%s)\n", pc->dir);
    for (int l = 0; l < 2; l++) pf_report_leg(t.f, &legs[l]);
    if (h->n > 0) {
        fprintf(t.f, "Hierarchy of accuracy basins%s:\n", h->consistent ? "" : " (not strictly nested)");
        pf_report_tree(t.f, h);
    }
    fprintf(t.f, "Figures:\n");
    list_figures(pc->dir, legs, h, figs, t.f);
    fprintf(t.f, "Tables: %s/sweep.csv, %s/transitions.json, %s/phases.json\n", pc->dir, pc->dir, pc->dir);
    cJSON_AddItemToObject(doc, "figures", figs);
    cJSON *tables = cJSON_AddArrayToObject(doc, "tables");
    const char *names[3] = {"sweep.csv", "transitions.json", "phases.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", pc->dir, names[i]);
        cJSON_AddItemToArray(tables, cJSON_CreateString(path));
    }
    out->text = pf_text_end(&t);
    out->json = pf_json_line(doc);
    cJSON_Delete(doc);
    if (!out->text || !out->json) {
        pf_report_free(out);
        return pf_fail(err, PF_ERUNTIME, "out of memory for the report");
    }
    return PF_OK;
}

int pf_analyze(const pf_analysis_input *pc, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_leg legs[2];
    memset(legs, 0, sizeof legs);
    int rc = PF_OK;
    pf_hierarchy h = {0};
    cJSON *tj = NULL, *pj = NULL;
    for (int l = 0; l < 2 && !rc; l++)
        rc = pf_leg_build(&legs[l], pc->rows, pc->n_rows, l == 0 ? 1 : -1, &pc->cfg->detect,
                            &pc->cfg->encoding, err);
    /* every refinement starts from the trainer's state after the sweep, so
     * that each is the same whether made here, alone, or as a task elsewhere */
    int found = 0, have_start = 0;
    pf_trainer_state start;
    if (!rc && pc->cfg->refine && pc->trainer && (legs[0].nt || legs[1].nt)) {
        rc = pf_trainer_get_state(pc->trainer, &start, err);
        have_start = !rc;
    }
    for (int l = 0; l < 2 && !rc; l++) rc = refine_leg(pc, &legs[l], have_start ? &start : NULL, &found, err);
    if (have_start) pf_trainer_state_free(&start);
    if (!rc && pc->refine_only && !found)
        rc = pf_fail(err, PF_EINPUT, "%s: no transition %s (the up leg has %ld, T1..; the down leg %ld, "
                     "D1..)", pc->dir, pc->refine_only, legs[0].nt, legs[1].nt);
    if (rc || pc->record_only) goto done;

    const pf_phase *runs[2];
    long counts[2];
    int n_runs = 0;
    for (int l = 0; l < 2; l++)
        if (legs[l].ph) runs[n_runs] = legs[l].ph, counts[n_runs++] = legs[l].nph;
    int K = legs[0].n ? legs[0].n_classes : legs[1].n_classes;
    if (n_runs > 0 && (rc = pf_hierarchy_build(runs, counts, n_runs, K, &h, err))) goto done;

    char path[4096];
    tj = cJSON_CreateObject();
    cJSON_AddStringToObject(tj, "pathfinder_version", PF_VERSION);
    cJSON *det = cJSON_AddObjectToObject(tj, "detection");
    cJSON_AddNumberToObject(det, "window", pc->cfg->detect.window);
    cJSON_AddNumberToObject(det, "threshold", pc->cfg->detect.threshold);
    cJSON_AddNumberToObject(det, "min_rel_jump", pc->cfg->detect.min_rel_jump);
    cJSON_AddNumberToObject(det, "gap_factor", pc->cfg->detect.gap_factor);
    cJSON_AddStringToObject(det, "gap_rule",
                            "a beta step more than gap_factor times the median of the up to `window` "
                            "steps on each side, both in beta and in log beta (a step from beta = 0 is "
                            "infinite in log beta), is a gap: the points across it are separate phases; "
                            "it is not a transition (no score, no refinement, no fit across it)");
    cJSON_AddNumberToObject(det, "refine_tol", pc->cfg->refine_tol);
    cJSON *all = cJSON_AddArrayToObject(tj, "transitions");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = pf_json_transitions(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(all, o);
        cJSON_Delete(arr);
    }
    cJSON *all_gaps = cJSON_AddArrayToObject(tj, "gaps");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = pf_json_gaps(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(all_gaps, o);
        cJSON_Delete(arr);
    }
    snprintf(path, sizeof path, "%s/transitions.json", pc->dir);
    if ((rc = pf_write_json(path, tj, err))) goto done;

    pj = cJSON_CreateObject();
    cJSON_AddNumberToObject(pj, "encoded_threshold", pc->cfg->encoding.threshold);
    cJSON_AddNumberToObject(pj, "encoded_fraction", pc->cfg->encoding.fraction);
    cJSON *phs = cJSON_AddArrayToObject(pj, "phases");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = pf_json_phases(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(phs, o);
        cJSON_Delete(arr);
    }
    cJSON_AddItemToObject(pj, "hierarchy", pf_json_hierarchy(&h));
    snprintf(path, sizeof path, "%s/phases.json", pc->dir);
    if ((rc = pf_write_json(path, pj, err))) goto done;

    if (pc->figures && (rc = pc->figures(pc->dir, err))) goto done;
    if ((rc = analysis_report(pc, legs, &h, tj, pj, out, err))) goto done;
    prune_checkpoints(pc, legs, 2);
done:
    cJSON_Delete(tj);
    cJSON_Delete(pj);
    pf_hierarchy_free(&h);
    for (int l = 0; l < 2; l++) pf_leg_free(&legs[l]);
    return rc;
}

/* ---- the calls -------------------------------------------------------------- */

/* A sweep folder's table, refused when it is empty or not a classifier's. */
static int read_rows(const char *dir, pf_point_result **rows, long *n, pf_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    int rc = pf_sweep_csv_read(path, rows, n, err);
    if (!rc && *n == 0) rc = pf_fail(err, PF_EINPUT, "%s: no rows yet", path);
    else if (!rc && (*rows)[0].m.test.n_classes == 0)
        rc = pf_fail(err, PF_EINPUT, "%s: phases need per-class accuracies (a classification sweep)", path);
    if (rc) {
        free(*rows);
        *rows = NULL;
    }
    return rc;
}

/* The analysis of a folder from its table and recorded refinements. */
static int analyze_folder(const char *dir, const pf_analysis_config *cfg, pf_figures_fn figures,
                          const char *command, int prune, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_point_result *rows = NULL;
    long n = 0;
    pf_dir_lock *lock = NULL;
    /* it rewrites the folder's analysis: not while a sweep works in it */
    int rc = read_rows(dir, &rows, &n, err);
    if (!rc) rc = pf_run_folder_open(dir, &lock, err);
    if (!rc) rc = pf_sweep_folder_make(dir, err);
    if (!rc) {
        pf_analysis_input in = {.dir = dir, .rows = rows, .n_rows = n, .cfg = cfg, .figures = figures,
                                .command = command, .prune = prune};
        rc = pf_analyze(&in, out, err);
    }
    pf_dir_lock_release(lock);
    free(rows);
    return rc;
}

int pf_run_analysis(const char *dir, const pf_analysis_config *c, pf_figures_fn figures,
                    pf_report *out, pf_error *err)
{
    pf_analysis_config cfg = *c;
    cfg.refine = 0;   /* refinements need the sweep's data: only a sweep run makes them */
    return analyze_folder(dir, &cfg, figures, "transitions", 0, out, err);
}

int pf_sweep_final_analysis(const char *dir, const pf_analysis_config *c, pf_figures_fn figures,
                            pf_report *out, pf_error *err)
{
    return analyze_folder(dir, c, figures, "sweep", 1, out, err);
}

int pf_sweep_transition_labels(const char *dir, const pf_analysis_config *c, char (**labels)[16],
                               long *n, pf_error *err)
{
    *labels = NULL;
    *n = 0;
    pf_point_result *rows = NULL;
    long n_rows = 0;
    pf_leg legs[2];
    memset(legs, 0, sizeof legs);
    int rc = read_rows(dir, &rows, &n_rows, err);
    for (int l = 0; l < 2 && !rc; l++)
        rc = pf_leg_build(&legs[l], rows, n_rows, l == 0 ? 1 : -1, &c->detect, &c->encoding, err);
    long total = rc ? 0 : legs[0].nt + legs[1].nt;
    if (total > 0 && !(*labels = calloc((size_t)total, sizeof **labels)))
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    for (int l = 0; l < 2 && !rc; l++)
        for (long k = 0; k < legs[l].nt; k++) pf_leg_label((*labels)[(*n)++], 16, &legs[l], k);
    for (int l = 0; l < 2; l++) pf_leg_free(&legs[l]);
    free(rows);
    return rc;
}

int pf_run_hierarchy(const char *const *dirs, int n_dirs, const char *out_dir,
                     const pf_analysis_config *c, pf_figures_fn figures, pf_report *out,
                     pf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n_dirs < 1 || n_dirs > 4096) return pf_fail(err, PF_EINPUT, "hierarchy: 1 to 4096 sweep folders");
    pf_leg *legs = calloc((size_t)n_dirs * 2, sizeof *legs);
    pf_point_result **rows = calloc((size_t)n_dirs, sizeof *rows);
    const pf_phase **runs = calloc((size_t)n_dirs * 2, sizeof *runs);
    long *counts = calloc((size_t)n_dirs * 2, sizeof *counts);
    pf_hierarchy h = {0};
    cJSON *pj = NULL;
    pf_dir_lock *lock = NULL;
    int n_runs = 0, K = 0, rc = PF_OK;
    if (!legs || !rows || !runs || !counts) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    for (int d = 0; d < n_dirs && !rc; d++) {
        long n;
        if ((rc = read_rows(dirs[d], &rows[d], &n, err))) break;
        if (K && rows[d][0].m.test.n_classes != K) {
            rc = pf_fail(err, PF_EINPUT, "%s: %d classes, but the other sweeps have %d", dirs[d],
                         rows[d][0].m.test.n_classes, K);
            break;
        }
        K = rows[d][0].m.test.n_classes;
        for (int l = 0; l < 2 && !rc; l++) {
            pf_leg *g = &legs[2 * d + l];
            rc = pf_leg_build(g, rows[d], n, l == 0 ? 1 : -1, &c->detect, &c->encoding, err);
            if (!rc) rc = recorded_refinements(dirs[d], g, err);
            if (!rc && g->ph) runs[n_runs] = g->ph, counts[n_runs++] = g->nph;
        }
    }
    if (rc || (rc = pf_hierarchy_build(runs, counts, n_runs, K, &h, err))) goto done;
    pj = cJSON_CreateObject();
    cJSON_AddStringToObject(pj, "command", "hierarchy");
    cJSON *srcs = cJSON_AddArrayToObject(pj, "sweeps");
    for (int d = 0; d < n_dirs; d++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "folder", dirs[d]);
        cJSON *phs = cJSON_AddArrayToObject(s, "phases");
        for (int l = 0; l < 2; l++) {
            cJSON *arr = pf_json_phases(&legs[2 * d + l]), *o;
            while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(phs, o);
            cJSON_Delete(arr);
        }
        cJSON_AddItemToArray(srcs, s);
    }
    cJSON_AddItemToObject(pj, "hierarchy", pf_json_hierarchy(&h));
    pf_text t;
    if (pf_text_begin(&t)) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory for the report");
        goto done;
    }
    fprintf(t.f, "Hierarchy of accuracy basins across %d sweep%s (%d leg%s)%s:\n", n_dirs,
            n_dirs == 1 ? "" : "s", n_runs, n_runs == 1 ? "" : "s",
            h.consistent ? "" : " (some legs not strictly nested)");
    pf_report_tree(t.f, &h);
    for (int d = 0; d < n_dirs; d++) {
        fprintf(t.f, "%s:\n", dirs[d]);
        for (int l = 0; l < 2; l++) pf_report_leg(t.f, &legs[2 * d + l]);
    }
    if (out_dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/figures", out_dir);
        if ((rc = pf_run_folder_open(out_dir, &lock, err)) || (rc = pf_make_dirs(path, err))) {
            free(pf_text_end(&t));
            goto done;
        }
        snprintf(path, sizeof path, "%s/phases.json", out_dir);
        if ((rc = pf_write_json(path, pj, err)) || (figures && (rc = figures(out_dir, err)))) {
            free(pf_text_end(&t));
            goto done;
        }
        fprintf(t.f, "Wrote %s and %s/figures/hierarchy.png (.pdf, .svg)\n", path, out_dir);
        cJSON_AddStringToObject(pj, "phases_json", path);
        snprintf(path, sizeof path, "%s/figures/hierarchy", out_dir);
        cJSON_AddStringToObject(pj, "figure", path);
    }
    out->text = pf_text_end(&t);
    out->json = pf_json_line(pj);
    if (!out->text || !out->json) {
        pf_report_free(out);
        rc = pf_fail(err, PF_ERUNTIME, "out of memory for the report");
    }
done:
    pf_dir_lock_release(lock);
    cJSON_Delete(pj);
    pf_hierarchy_free(&h);
    for (int i = 0; legs && i < 2 * n_dirs; i++) pf_leg_free(&legs[i]);
    for (int d = 0; rows && d < n_dirs; d++) free(rows[d]);
    free(legs), free(rows), free(runs), free(counts);
    return rc;
}
