/* pathfinder plot: draw columns of any table the tool writes (sweep.csv,
 * path.csv, a hessian CSV) against another column. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"

static const char *const plot_help =
    "Usage: pathfinder plot FILE.csv --x COLUMN --y COLUMN[,COLUMN...] --out BASE\n"
    "Draw one or more columns of a CSV table (one panel each) against another, as\n"
    "BASE.png, BASE.pdf and BASE.svg. Cells that are not numbers are left out.\n\n"
    "Plot:\n"
    "  --x COLUMN           the x axis (e.g. L2_strength) (required)\n"
    "  --y COLUMNS          up to 8 columns, comma-separated (required)\n"
    "  --out BASE           output path without extension (required)\n"
    "  --title TEXT         a title\n"
    "Other:\n"
    "  --json               print the result as one JSON document\n"
    "  --quiet              print nothing on success\n"
    "  --help               this text\n"
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

typedef struct {
    const char *x, *y, *out, *title;
    int json, quiet;
} plot_args;

enum { MAX_COLS = 4096, MAX_Y = 8 };

/* Split a line on commas in place; returns the field count. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int find_col(char **hdr, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(hdr[i], name) == 0) return i;
    return -1;
}

/* A cell as a number (0), or not one (-1). */
static int number(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end == s || *end || !isfinite(*v) ? -1 : 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *cmd = "plot";
    plot_args a;
    memset(&a, 0, sizeof a);
    static const struct option opts[] = {
        {"x", required_argument, NULL, 'x'},      {"y", required_argument, NULL, 'y'},
        {"out", required_argument, NULL, 'o'},    {"title", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},         {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int help = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'x': a.x = optarg; break;
        case 'y': a.y = optarg; break;
        case 'o': a.out = optarg; break;
        case 't': a.title = optarg; break;
        case 'j': a.json = 1; break;
        case 'q': a.quiet = 1; break;
        case 'h': help = 1; break;
        case ':': return cli_usage_error(cmd, "'%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown or ambiguous option '%s'", argv[optind - 1]);
        }
    }
    if (help) {
        fputs(plot_help, stdout);
        return PF_OK;
    }
    int first = optind;
    if (first != argc - 1) return cli_usage_error(cmd, "expected exactly one CSV file");
    if (!a.x || !a.y || !a.out) return cli_usage_error(cmd, "--x, --y and --out are required");
    const char *xname = a.x, *ynames = a.y, *out = a.out, *title = a.title;
    const int optind = first;
    const char *path = argv[optind];
    pf_error err;
    char *text = NULL, *ybuf = NULL, **hdr = NULL, **f = NULL;
    double *x = NULL, *ys[MAX_Y] = {0};
    const char *labels[MAX_Y];
    int rc, ny = 0, ycol[MAX_Y];
    char png[4200];
    snprintf(png, sizeof png, "%s.png", out);
    if ((rc = pf_check_output_file(png, &err))) goto done;
    if ((rc = pf_read_file(path, &text, NULL, (size_t)1 << 30, &err))) goto done;
    hdr = malloc(MAX_COLS * sizeof *hdr);
    f = malloc(MAX_COLS * sizeof *f);
    ybuf = strdup(ynames);
    if (!hdr || !f || !ybuf) {
        rc = pf_fail(&err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line) {
        rc = pf_fail(&err, PF_EINPUT, "%s: empty file", path);
        goto done;
    }
    line[strcspn(line, "\r")] = '\0';
    int ncol = split(line, hdr, MAX_COLS), xcol = find_col(hdr, ncol, xname);
    if (xcol < 0) {
        rc = pf_fail(&err, PF_EINPUT, "%s: no column '%s'", path, xname);
        goto done;
    }
    for (char *s2 = NULL, *tok = strtok_r(ybuf, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2)) {
        if (ny == MAX_Y) {
            rc = pf_fail(&err, PF_EINPUT, "at most %d columns for --y", MAX_Y);
            goto done;
        }
        if ((ycol[ny] = find_col(hdr, ncol, tok)) < 0) {
            rc = pf_fail(&err, PF_EINPUT, "%s: no column '%s'", path, tok);
            goto done;
        }
        labels[ny++] = tok;
    }
    long cap = 256, n = 0;
    x = malloc((size_t)cap * sizeof *x);
    int oom = !x;
    for (int k = 0; k < ny; k++) oom |= !(ys[k] = malloc((size_t)cap * sizeof(double)));
    if (oom) {
        rc = pf_fail(&err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    while ((line = strtok_r(NULL, "\n", &save))) {
        line[strcspn(line, "\r")] = '\0';
        if (!*line) continue;
        if (split(line, f, MAX_COLS) != ncol) {
            rc = pf_fail(&err, PF_EINPUT, "%s: row %ld has a different number of fields", path, n + 2);
            goto done;
        }
        if (n == cap) {
            cap *= 2;
            double *nx = realloc(x, (size_t)cap * sizeof *x);
            if (nx) x = nx;
            for (int k = 0; nx && k < ny; k++) {
                double *ny_k = realloc(ys[k], (size_t)cap * sizeof(double));
                if (!ny_k) nx = NULL;
                else ys[k] = ny_k;
            }
            if (!nx) {
                rc = pf_fail(&err, PF_ERUNTIME, "%s: out of memory", path);
                goto done;
            }
        }
        double v;
        x[n] = number(f[xcol], &v) ? NAN : v;
        for (int k = 0; k < ny; k++) ys[k][n] = number(f[ycol[k]], &v) ? NAN : v;
        n++;
    }
    rc = pf_fig_curves(out, x, n, (const double *const *)ys, labels, ny, xname, title, &err);
    if (!rc && a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "command", "plot");
        cJSON *figs = cJSON_AddArrayToObject(o, "figures");
        const char *ext[3] = {"png", "pdf", "svg"};
        for (int e = 0; e < 3; e++) {
            char name[4200];
            snprintf(name, sizeof name, "%s.%s", out, ext[e]);
            cJSON_AddItemToArray(figs, cJSON_CreateString(name));
        }
        cJSON_AddNumberToObject(o, "rows", (double)n);
        char *line = cJSON_PrintUnformatted(o);
        if (line) puts(line);
        free(line);
        cJSON_Delete(o);
    } else if (!rc && !a.quiet) {
        printf("%s.png (.pdf, .svg): %ld rows\n", out, n);
    }
done:
    if (rc) cli_error(cmd, rc, "%s", err.msg);
    free(text), free(ybuf), free(hdr), free(f), free(x);
    for (int k = 0; k < MAX_Y; k++) free(ys[k]);
    return rc;
}
