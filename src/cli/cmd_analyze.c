/* pathfinder transitions DIR: detect transitions, phases and the hierarchy
 * from a sweep folder's table (refinements already made are kept).
 * pathfinder hierarchy DIR...: merge the phases of several sweeps (seeds,
 * up and down legs) into one hierarchy of accuracy basins. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "post.h"

static const char *const transitions_usage =
    "Usage: pathfinder transitions [OPTIONS] DIR\n"
    "Detect first-order transitions in a sweep folder's sweep.csv, split it into phases, and\n"
    "write DIR/transitions.json, DIR/phases.json and DIR/figures/. Refinements recorded by\n"
    "`pathfinder sweep` are kept.\n\n";

static const char *const hierarchy_usage =
    "Usage: pathfinder hierarchy [OPTIONS] DIR... [--out OUTDIR]\n"
    "Merge the phases of several sweep folders (seeds, up and down legs) into one hierarchy\n"
    "of nested accuracy basins; print it as a tree. With --out, write OUTDIR/phases.json and\n"
    "OUTDIR/figures/hierarchy.{png,pdf,svg}.\n\n";

typedef struct {
    post_options post;
    const char *out;
    int json, quiet;
} analyze_args;

static const cli_option hierarchy_rows[] = {
    {CLI_SECTION, .help = "Output:"},
    {CLI_STR, "out", "OUTDIR", CLI_OFF(analyze_args, out), 0, 0, CLI_NO_DEFAULT,
     "where to write the merged hierarchy (phases.json, figures/)", .given = 0},
    {CLI_END},
};

static const cli_option output_rows[] = {
    {CLI_SECTION, .help = "Other:"},
    {CLI_FLAG, "json", NULL, CLI_OFF(analyze_args, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {CLI_FLAG, "quiet", NULL, CLI_OFF(analyze_args, quiet), .help = "no progress on stderr"},
    {CLI_END},
};

static const cli_table transitions_tables[] = {
    {post_detect_rows, CLI_OFF(analyze_args, post)},
    {output_rows, 0},
    {NULL, 0},
};

static const cli_table hierarchy_tables[] = {
    {hierarchy_rows, 0},
    {post_detect_rows, CLI_OFF(analyze_args, post)},
    {output_rows, 0},
    {NULL, 0},
};

/* Parse into *a; 1 if --help was printed, 0 to go on, PF_EINPUT. */
static int parse(const char *cmd, const char *usage, const cli_table *tables, int argc, char **argv,
                 analyze_args *a, int *first)
{
    memset(a, 0, sizeof *a);
    post_options_default(&a->post);
    a->post.refine = 0;
    int help;
    if (cli_parse(cmd, tables, argc, argv, a, &help, first)) return PF_EINPUT;
    if (help) {
        cli_print_help(stdout, usage, tables, a, CLI_EXIT_HELP);
        return 1;
    }
    return 0;
}

static int read_rows(const char *dir, pf_point_result **rows, long *n, pf_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    int rc = pf_sweep_csv_read(path, rows, n, err);
    if (!rc && *n == 0) {
        free(*rows);
        *rows = NULL;
        rc = pf_fail(err, PF_EINPUT, "%s: no rows yet", path);
    }
    if (!rc && (*rows)[0].m.test.n_classes == 0) {
        free(*rows);
        *rows = NULL;
        rc = pf_fail(err, PF_EINPUT, "%s: phases need per-class accuracies (a classification sweep)", path);
    }
    return rc;
}

int cmd_transitions(int argc, char **argv)
{
    analyze_args a;
    int first;
    int rc = parse("transitions", transitions_usage, transitions_tables, argc, argv, &a, &first);
    if (rc) return rc == 1 ? PF_OK : rc;
    post_options po = a.post;
    if (first != argc - 1) return cli_usage_error("transitions", "expected exactly one sweep folder");
    const char *dir = argv[first];
    pf_error err;
    pf_point_result *rows = NULL;
    long n = 0;
    pf_dir_lock *lock = NULL;
    /* it rewrites the folder's analysis: not while a sweep works in it */
    if ((rc = read_rows(dir, &rows, &n, &err)) || (rc = pf_run_folder_open(dir, &lock, &err)) ||
        (rc = post_make_dirs(dir, &err)))
        goto done;
    post_context pc = {dir, NULL, NULL, NULL, NULL, NULL, NULL, rows, n, &po, 1, NULL, 0, a.json,
                       "transitions"};
    rc = post_process(&pc, &err);
done:
    if (rc) cli_error("transitions", rc, "%s", err.msg);
    pf_dir_lock_release(lock);
    free(rows);
    return rc;
}

int cmd_hierarchy(int argc, char **argv)
{
    analyze_args a;
    int first;
    int rc = parse("hierarchy", hierarchy_usage, hierarchy_tables, argc, argv, &a, &first);
    if (rc) return rc == 1 ? PF_OK : rc;
    post_options po = a.post;
    const char *out = a.out;
    int n_dirs = argc - first;
    if (n_dirs < 1) return cli_usage_error("hierarchy", "expected one or more sweep folders");
    if (n_dirs > 256) return cli_usage_error("hierarchy", "at most 256 sweep folders");
    pf_error err;
    post_leg *legs = calloc((size_t)n_dirs * 2, sizeof *legs);
    pf_point_result **rows = calloc((size_t)n_dirs, sizeof *rows);
    const pf_phase **runs = calloc((size_t)n_dirs * 2, sizeof *runs);
    long *counts = calloc((size_t)n_dirs * 2, sizeof *counts);
    pf_hierarchy h = {0};
    cJSON *pj = NULL;
    int n_runs = 0, K = 0;
    if (!legs || !rows || !runs || !counts) {
        rc = pf_fail(&err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    for (int d = 0; d < n_dirs && !rc; d++) {
        long n;
        const char *dir = argv[first + d];
        if ((rc = read_rows(dir, &rows[d], &n, &err))) break;
        if (K && rows[d][0].m.test.n_classes != K) {
            rc = pf_fail(&err, PF_EINPUT, "%s: %d classes, but the other sweeps have %d", dir,
                         rows[d][0].m.test.n_classes, K);
            break;
        }
        K = rows[d][0].m.test.n_classes;
        for (int l = 0; l < 2 && !rc; l++) {
            post_leg *g = &legs[2 * d + l];
            rc = post_leg_build(g, rows[d], n, l == 0 ? 1 : -1, &po.detect, &po.encoding, &err);
            if (!rc && g->ph) runs[n_runs] = g->ph, counts[n_runs++] = g->nph;
        }
    }
    if (rc) goto done;
    if ((rc = pf_hierarchy_build(runs, counts, n_runs, K, &h, &err))) goto done;
    if (!a.json) {
        printf("Hierarchy of accuracy basins across %d sweep%s (%d leg%s)%s:\n", n_dirs,
               n_dirs == 1 ? "" : "s", n_runs, n_runs == 1 ? "" : "s",
               h.consistent ? "" : " (some legs not strictly nested)");
        post_print_tree(stdout, &h);
        for (int d = 0; d < n_dirs; d++) {
            printf("%s:\n", argv[first + d]);
            for (int l = 0; l < 2; l++) post_print_table(stdout, &legs[2 * d + l]);
        }
    }
    pj = cJSON_CreateObject();
    cJSON_AddStringToObject(pj, "command", "hierarchy");
    {
        char path[4096], base[4096];
        if (out && (rc = post_make_dirs(out, &err))) goto done;
        cJSON *srcs = cJSON_AddArrayToObject(pj, "sweeps");
        for (int d = 0; d < n_dirs; d++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "folder", argv[first + d]);
            cJSON *phs = cJSON_AddArrayToObject(s, "phases");
            for (int l = 0; l < 2; l++) {
                cJSON *arr = post_phases_json(&legs[2 * d + l]), *o;
                while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(phs, o);
                cJSON_Delete(arr);
            }
            cJSON_AddItemToArray(srcs, s);
        }
        cJSON_AddItemToObject(pj, "hierarchy", post_hierarchy_json(&h));
        if (out) {
            snprintf(path, sizeof path, "%s/phases.json", out);
            if ((rc = post_write_json(path, pj, &err))) goto done;
            snprintf(base, sizeof base, "%s/figures/hierarchy", out);
            if ((rc = pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", &err))) goto done;
            if (!a.json) printf("Wrote %s and %s.png (.pdf, .svg)\n", path, base);
            cJSON_AddStringToObject(pj, "phases_json", path);
            cJSON_AddStringToObject(pj, "figure", base);
        }
        if (a.json) {
            cli_print_json(pj);
            pj = NULL;
        }
    }
done:
    if (rc) cli_error("hierarchy", rc, "%s", err.msg);
    cJSON_Delete(pj);
    pf_hierarchy_free(&h);
    for (int i = 0; legs && i < 2 * n_dirs; i++) post_leg_free(&legs[i]);
    for (int d = 0; rows && d < n_dirs; d++) free(rows[d]);
    free(legs), free(rows), free(runs), free(counts);
    return rc;
}
