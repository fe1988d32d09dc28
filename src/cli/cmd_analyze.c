/* pathfinder transitions DIR: detect transitions, phases and the hierarchy
 * from a sweep folder's table (refinements already made are kept).
 * pathfinder hierarchy DIR...: merge the phases of several sweeps (seeds,
 * up and down legs) into one hierarchy of accuracy basins. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "post.h"

static const char *const transitions_help =
    "Usage: pathfinder transitions [OPTIONS] DIR\n"
    "Detect first-order transitions in a sweep folder's sweep.csv, split it into phases, and\n"
    "write DIR/transitions.json, DIR/phases.json and DIR/figures/. Refinements recorded by\n"
    "`pathfinder sweep` are kept.\n\n"
    "  --window N             points on each side for the local trends (default 5)\n"
    "  --threshold X          jump / local noise needed (default 6)\n"
    "  --min-jump X           smallest relative drop of r that counts (default 0.02)\n"
    POST_ENCODING_HELP
    "  --help                 this text\n"
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

static const char *const hierarchy_help =
    "Usage: pathfinder hierarchy [OPTIONS] DIR... [--out OUTDIR]\n"
    "Merge the phases of several sweep folders (seeds, up and down legs) into one hierarchy\n"
    "of nested accuracy basins; print it as a tree. With --out, write OUTDIR/phases.json and\n"
    "OUTDIR/figures/hierarchy.{png,pdf,svg}.\n\n"
    "  --out OUTDIR           where to write the merged hierarchy\n"
    "  --window N, --threshold X, --min-jump X, --encoded-threshold P, --encoded-fraction F\n"
    "                         as for transitions\n"
    "  --help                 this text\n"
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

enum { OPT_WINDOW = 3000, OPT_THRESHOLD, OPT_MINJUMP, OPT_ENCODED, OPT_ENCODED_FRACTION, OPT_OUT, OPT_HELP_A };

static const struct option analyze_options[] = {
    {"window", required_argument, 0, OPT_WINDOW},
    {"threshold", required_argument, 0, OPT_THRESHOLD},
    {"min-jump", required_argument, 0, OPT_MINJUMP},
    {"encoded-threshold", required_argument, 0, OPT_ENCODED},
    {"encoded-fraction", required_argument, 0, OPT_ENCODED_FRACTION},
    {"out", required_argument, 0, OPT_OUT},
    {"help", no_argument, 0, OPT_HELP_A},
    {0, 0, 0, 0},
};

static int parse(const char *cmd, int argc, char **argv, post_options *po, const char **out, int *help)
{
    post_options_default(po);
    po->refine = 0;
    *help = 0;
    optind = 1;
    int opt;
    long v;
    while ((opt = getopt_long(argc, argv, "", analyze_options, NULL)) != -1) {
        switch (opt) {
        case OPT_WINDOW:
            if (cli_parse_long(optarg, &v) || v < 2 || v > 1000)
                return cli_usage_error(cmd, "--window needs a count from 2 to 1000, got '%s'", optarg);
            po->detect.window = (int)v;
            break;
        case OPT_THRESHOLD:
            if (cli_parse_double(optarg, &po->detect.threshold) || !(po->detect.threshold > 0))
                return cli_usage_error(cmd, "--threshold needs a positive number, got '%s'", optarg);
            break;
        case OPT_MINJUMP:
            if (cli_parse_double(optarg, &po->detect.min_rel_jump) || po->detect.min_rel_jump < 0)
                return cli_usage_error(cmd, "--min-jump needs a number >= 0, got '%s'", optarg);
            break;
        case OPT_ENCODED:
        case OPT_ENCODED_FRACTION:
            if (post_encoding_option(cmd, opt == OPT_ENCODED ? "encoded-threshold" : "encoded-fraction",
                                     optarg, &po->encoding))
                return PF_EINPUT;
            break;
        case OPT_OUT:
            if (!out) return cli_usage_error(cmd, "unknown option --out");
            *out = optarg;
            break;
        case OPT_HELP_A: *help = 1; break;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    return PF_OK;
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
    post_options po;
    int help;
    int rc = parse("transitions", argc, argv, &po, NULL, &help);
    if (rc) return rc;
    if (help) {
        fputs(transitions_help, stdout);
        return PF_OK;
    }
    if (optind != argc - 1) return cli_usage_error("transitions", "expected exactly one sweep folder");
    const char *dir = argv[optind];
    pf_error err;
    pf_point_result *rows = NULL;
    long n = 0;
    pf_dir_lock *lock = NULL;
    /* it rewrites the folder's analysis: not while a sweep works in it */
    if ((rc = read_rows(dir, &rows, &n, &err)) || (rc = pf_run_folder_open(dir, &lock, &err)) ||
        (rc = post_make_dirs(dir, &err)))
        goto done;
    post_context pc = {dir, NULL, NULL, NULL, NULL, NULL, NULL, rows, n, &po, 1, NULL, 0};
    rc = post_process(&pc, &err);
done:
    if (rc) cli_error("transitions", rc, "%s", err.msg);
    pf_dir_lock_release(lock);
    free(rows);
    return rc;
}

int cmd_hierarchy(int argc, char **argv)
{
    post_options po;
    const char *out = NULL;
    int help;
    int rc = parse("hierarchy", argc, argv, &po, &out, &help);
    if (rc) return rc;
    if (help) {
        fputs(hierarchy_help, stdout);
        return PF_OK;
    }
    int n_dirs = argc - optind;
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
        const char *dir = argv[optind + d];
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
    printf("Hierarchy of accuracy basins across %d sweep%s (%d leg%s)%s:\n", n_dirs,
           n_dirs == 1 ? "" : "s", n_runs, n_runs == 1 ? "" : "s",
           h.consistent ? "" : " (some legs not strictly nested)");
    post_print_tree(stdout, &h);
    for (int d = 0; d < n_dirs; d++) {
        printf("%s:\n", argv[optind + d]);
        for (int l = 0; l < 2; l++) post_print_table(stdout, &legs[2 * d + l]);
    }
    if (out) {
        char path[4096], base[4096];
        if ((rc = post_make_dirs(out, &err))) goto done;
        pj = cJSON_CreateObject();
        cJSON *srcs = cJSON_AddArrayToObject(pj, "sweeps");
        for (int d = 0; d < n_dirs; d++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "folder", argv[optind + d]);
            cJSON *phs = cJSON_AddArrayToObject(s, "phases");
            for (int l = 0; l < 2; l++) {
                cJSON *arr = post_phases_json(&legs[2 * d + l]), *o;
                while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(phs, o);
                cJSON_Delete(arr);
            }
            cJSON_AddItemToArray(srcs, s);
        }
        cJSON_AddItemToObject(pj, "hierarchy", post_hierarchy_json(&h));
        snprintf(path, sizeof path, "%s/phases.json", out);
        if ((rc = post_write_json(path, pj, &err))) goto done;
        snprintf(base, sizeof base, "%s/figures/hierarchy", out);
        if ((rc = pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", &err))) goto done;
        printf("Wrote %s and %s.png (.pdf, .svg)\n", path, base);
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
