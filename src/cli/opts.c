/* Option tables (opts.h): parsing with getopt_long, range checks, one-line
 * errors, and --help written from the same rows and the defaults. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "opts.h"

enum { OPT_ID = 1000, OPT_HELP_ID = 999, MAX_OPTIONS = 400, HELP_WIDTH = 92, HELP_COLUMN = 23 };

static void *field(void *opts, const cli_option *o) { return (char *)opts + o->offset; }
static const void *cfield(const void *opts, const cli_option *o) { return (const char *)opts + o->offset; }

static int is_option(const cli_option *o) { return o->kind >= CLI_FLAG; }

void cli_show_number(double v, char *buf, size_t n)
{
    if (isinf(v)) snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%g", v);
}

/* "a number > 0", "a whole number from 2 to 1000", ... */
static void describe_range(const cli_option *o, char *buf, size_t n)
{
    int whole = o->kind != CLI_DOUBLE;
    const char *what = whole ? "a whole number" : "a number";
    char lo[32], hi[32];
    cli_show_number(o->lo, lo, sizeof lo);
    cli_show_number(o->hi, hi, sizeof hi);
    int has_lo = isfinite(o->lo), has_hi = isfinite(o->hi);
    if (has_lo && has_hi && !(o->flags & (CLI_LO_OPEN | CLI_HI_OPEN)))
        snprintf(buf, n, "%s from %s to %s", what, lo, hi);
    else if (has_lo && has_hi)
        snprintf(buf, n, "%s in %s%s, %s%s", what, o->flags & CLI_LO_OPEN ? "(" : "[", lo, hi,
                 o->flags & CLI_HI_OPEN ? ")" : "]");
    else if (has_lo)
        snprintf(buf, n, "%s %s %s", what, o->flags & CLI_LO_OPEN ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, n, "%s %s %s", what, o->flags & CLI_HI_OPEN ? "<" : "<=", hi);
    else
        snprintf(buf, n, "%s", what);
}

static int in_range(const cli_option *o, double v)
{
    if (isfinite(o->lo) && (v < o->lo || ((o->flags & CLI_LO_OPEN) && v == o->lo))) return 0;
    if (isfinite(o->hi) && (v > o->hi || ((o->flags & CLI_HI_OPEN) && v == o->hi))) return 0;
    return 1;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pathfinder %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see pathfinder %s --help)\n", cmd);
    va_end(ap);
    return PF_EINPUT;
}

/* Store one option's argument; 0 or PF_EINPUT after the error line. */
static int store(const char *cmd, const cli_option *o, const char *arg, void *opts)
{
    void *f = field(opts, o);
    char need[128];
    char *end;
    errno = 0;
    switch (o->kind) {
    case CLI_FLAG: *(int *)f = 1; break;
    case CLI_STR: *(const char **)f = arg; break;
    case CLI_INT:
    case CLI_LONG: {
        long v = strtol(arg, &end, 10);
        if (end == arg || *end || errno || !in_range(o, (double)v) || (o->kind == CLI_INT && (v < INT32_MIN || v > INT32_MAX))) {
            describe_range(o, need, sizeof need);
            return usage_error(cmd, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        if (o->kind == CLI_INT) *(int *)f = (int)v;
        else *(long *)f = v;
        break;
    }
    case CLI_U64: {
        unsigned long long v = strtoull(arg, &end, 10);
        if (*arg == '-' || end == arg || *end || errno || !in_range(o, (double)v)) {
            describe_range(o, need, sizeof need);
            return usage_error(cmd, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        *(uint64_t *)f = (uint64_t)v;
        break;
    }
    case CLI_DOUBLE: {
        double v = strtod(arg, &end);
        if (end == arg || *end || errno || !isfinite(v) || !in_range(o, v)) {
            describe_range(o, need, sizeof need);
            return usage_error(cmd, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        *(double *)f = v;
        break;
    }
    case CLI_CHOICE: {
        int k = 0;
        for (; o->choices[k]; k++)
            if (strcmp(o->choices[k], arg) == 0) break;
        if (!o->choices[k]) {
            size_t len = 0;
            need[0] = '\0';
            for (int j = 0; o->choices[j] && len < sizeof need; j++)
                len += (size_t)snprintf(need + len, sizeof need - len, "%s%s", j ? (o->choices[j + 1] ? ", " : " or ") : "",
                                        o->choices[j]);
            return usage_error(cmd, "--%s takes %s, got '%s'", o->name, need, arg);
        }
        *(int *)f = k;
        break;
    }
    case CLI_CUSTOM: {
        const char *what = o->parse(opts, arg);
        if (what) return usage_error(cmd, "--%s needs %s, got '%s'", o->name, what, arg);
        break;
    }
    default: break;
    }
    if (o->given) *(int *)((char *)opts + o->given - 1) = 1;
    return PF_OK;
}

int cli_parse(const char *cmd, const cli_table *tables, int argc, char **argv, void *opts, int *help,
              int *first)
{
    static struct option longopts[MAX_OPTIONS + 2];
    static const cli_option *rows[MAX_OPTIONS];
    static size_t bases[MAX_OPTIONS];
    int n = 0;
    *help = 0;
    for (int t = 0; tables[t].rows; t++)
        for (const cli_option *o = tables[t].rows; o->kind != CLI_END; o++) {
            if (!is_option(o)) continue;
            if (n == MAX_OPTIONS) return usage_error(cmd, "too many options in the tables");
            rows[n] = o;
            bases[n] = tables[t].base;
            longopts[n] = (struct option){o->name, o->kind == CLI_FLAG ? no_argument : required_argument,
                                          NULL, OPT_ID + n};
            n++;
        }
    longopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP_ID};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == OPT_HELP_ID) {
            *help = 1;
            continue;
        }
        if (c == ':') {
            const char *name = optopt >= OPT_ID && optopt < OPT_ID + n ? rows[optopt - OPT_ID]->name : NULL;
            if (name) return usage_error(cmd, "--%s needs a value", name);
            return usage_error(cmd, "'%s' needs a value", argv[optind - 1]);
        }
        if (c == '?') {
            const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
            if (optopt && optopt < 256) return usage_error(cmd, "unknown option '-%c'", optopt);
            return usage_error(cmd, "unknown or ambiguous option '%s'", bad);
        }
        if (c < OPT_ID || c >= OPT_ID + n) return usage_error(cmd, "unknown option");
        if (store(cmd, rows[c - OPT_ID], optarg, (char *)opts + bases[c - OPT_ID])) return PF_EINPUT;
    }
    *first = optind;
    return PF_OK;
}

/* ---- help -------------------------------------------------------------------- */

/* Write text wrapped at HELP_WIDTH, the first line starting at column col
 * (already there), the others indented to indent. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\n') p++;
        int len = (int)(p - w);
        if (len == 0) {
            if (*p == '\n') {
                fprintf(f, "\n%*s", indent, "");
                col = indent;
                p++;
            }
            continue;
        }
        if (col > indent && col + 1 + len > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(w, 1, (size_t)len, f);
        col += len;
        if (*p == '\n') {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
            p++;
        }
    }
    fputc('\n', f);
}

static void default_text(const cli_option *o, const void *opts, char *buf, size_t n)
{
    buf[0] = '\0';
    if (o->flags & CLI_REQUIRED) {
        snprintf(buf, n, "required");
        return;
    }
    if (o->flags & CLI_NO_DEFAULT) return;
    if (o->show) {
        o->show(opts, buf, n);
        return;
    }
    const void *f = cfield(opts, o);
    switch (o->kind) {
    case CLI_STR:
        if (*(const char *const *)f) snprintf(buf, n, "%s", *(const char *const *)f);
        break;
    case CLI_INT: cli_show_number(*(const int *)f, buf, n); break;
    case CLI_LONG: cli_show_number((double)*(const long *)f, buf, n); break;
    case CLI_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case CLI_DOUBLE: cli_show_number(*(const double *)f, buf, n); break;
    case CLI_CHOICE: snprintf(buf, n, "%s", o->choices[*(const int *)f]); break;
    default: break;
    }
}

void cli_print_help(FILE *f, const char *usage, const cli_table *tables, const void *opts,
                    const char *tail)
{
    fputs(usage, f);
    for (int t = 0; tables[t].rows; t++)
        for (const cli_option *o = tables[t].rows; o->kind != CLI_END; o++) {
            const void *sub = (const char *)opts + tables[t].base;
            if (o->kind == CLI_SECTION) {
                fprintf(f, "%s\n", o->help);
                continue;
            }
            if (o->kind == CLI_NOTE) {
                fputs("  ", f);
                wrap(f, o->help, 2, 2);
                continue;
            }
            char head[96], def[256], text[2048];
            int col = snprintf(head, sizeof head, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
            fputs(head, f);
            if (col + 1 > HELP_COLUMN) {
                fprintf(f, "\n%*s", HELP_COLUMN, "");
            } else {
                fprintf(f, "%*s", HELP_COLUMN - col, "");
            }
            default_text(o, sub, def, sizeof def);
            if (def[0] && strcmp(def, "required") == 0)
                snprintf(text, sizeof text, "%s (required)", o->help);
            else if (def[0])
                snprintf(text, sizeof text, "%s (default %s)", o->help, def);
            else
                snprintf(text, sizeof text, "%s", o->help);
            wrap(f, text, HELP_COLUMN, HELP_COLUMN);
        }
    fprintf(f, "  --help               this text\n");
    if (tail) fputs(tail, f);
}
