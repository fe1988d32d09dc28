/* Option tables (options.h): setting options by name with range checks and
 * one-line errors, and the help text written from the same rows and the
 * defaults. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "run/options.h"

enum { HELP_WIDTH = 92, HELP_COLUMN = 23 };

static void *field(void *opts, const pf_option *o) { return (char *)opts + o->offset; }
static const void *cfield(const void *opts, const pf_option *o) { return (const char *)opts + o->offset; }

static int is_option(const pf_option *o) { return o->kind >= OPT_FLAG; }

void pf_option_number(double v, char *buf, size_t n)
{
    if (isinf(v)) snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%g", v);
}

/* "a number > 0", "a whole number from 2 to 1000", ... */
static void describe_range(const pf_option *o, char *buf, size_t n)
{
    int whole = o->kind != OPT_DOUBLE;
    const char *what = whole ? "a whole number" : "a number";
    char lo[32], hi[32];
    pf_option_number(o->lo, lo, sizeof lo);
    pf_option_number(o->hi, hi, sizeof hi);
    int has_lo = isfinite(o->lo), has_hi = isfinite(o->hi);
    if (has_lo && has_hi && !(o->flags & (OPT_LO_OPEN | OPT_HI_OPEN)))
        snprintf(buf, n, "%s from %s to %s", what, lo, hi);
    else if (has_lo && has_hi)
        snprintf(buf, n, "%s in %s%s, %s%s", what, o->flags & OPT_LO_OPEN ? "(" : "[", lo, hi,
                 o->flags & OPT_HI_OPEN ? ")" : "]");
    else if (has_lo)
        snprintf(buf, n, "%s %s %s", what, o->flags & OPT_LO_OPEN ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, n, "%s %s %s", what, o->flags & OPT_HI_OPEN ? "<" : "<=", hi);
    else
        snprintf(buf, n, "%s", what);
}

static int in_range(const pf_option *o, double v)
{
    if (isfinite(o->lo) && (v < o->lo || ((o->flags & OPT_LO_OPEN) && v == o->lo))) return 0;
    if (isfinite(o->hi) && (v > o->hi || ((o->flags & OPT_HI_OPEN) && v == o->hi))) return 0;
    return 1;
}

/* Store one option's argument; PF_EINPUT naming the option and what it
 * needs when the argument will not do. */
static int store(const pf_option *o, const char *arg, void *opts, pf_error *err)
{
    void *f = field(opts, o);
    char need[160];
    char *end;
    errno = 0;
    if (o->kind != OPT_FLAG && !arg) return pf_fail(err, PF_EINPUT, "--%s needs a value", o->name);
    switch (o->kind) {
    case OPT_FLAG: *(int *)f = 1; break;
    case OPT_STR: *(const char **)f = arg; break;
    case OPT_INT:
    case OPT_LONG: {
        long v = strtol(arg, &end, 10);
        if (end == arg || *end || errno || !in_range(o, (double)v) ||
            (o->kind == OPT_INT && (v < INT32_MIN || v > INT32_MAX))) {
            describe_range(o, need, sizeof need);
            return pf_fail(err, PF_EINPUT, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        if (o->kind == OPT_INT) *(int *)f = (int)v;
        else *(long *)f = v;
        break;
    }
    case OPT_U64: {
        unsigned long long v = strtoull(arg, &end, 10);
        if (*arg == '-' || end == arg || *end || errno || !in_range(o, (double)v)) {
            describe_range(o, need, sizeof need);
            return pf_fail(err, PF_EINPUT, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        *(uint64_t *)f = (uint64_t)v;
        break;
    }
    case OPT_DOUBLE: {
        double v = strtod(arg, &end);
        if (end == arg || *end || errno || !isfinite(v) || !in_range(o, v)) {
            describe_range(o, need, sizeof need);
            return pf_fail(err, PF_EINPUT, "--%s needs %s, got '%s'", o->name, need, arg);
        }
        *(double *)f = v;
        break;
    }
    case OPT_CHOICE: {
        int k = 0;
        for (; o->choices[k]; k++)
            if (strcmp(o->choices[k], arg) == 0) break;
        if (!o->choices[k]) {
            size_t len = 0;
            need[0] = '\0';
            for (int j = 0; o->choices[j] && len < sizeof need; j++)
                len += (size_t)snprintf(need + len, sizeof need - len, "%s%s",
                                        j ? (o->choices[j + 1] ? ", " : " or ") : "", o->choices[j]);
            return pf_fail(err, PF_EINPUT, "--%s takes %s, got '%s'", o->name, need, arg);
        }
        *(int *)f = k;
        break;
    }
    case OPT_CUSTOM: {
        const char *what = o->parse(opts, arg);
        if (what) return pf_fail(err, PF_EINPUT, "--%s needs %s, got '%s'", o->name, what, arg);
        break;
    }
    default: break;
    }
    if (o->given) *(int *)((char *)opts + o->given - 1) = 1;
    return PF_OK;
}

const pf_option *pf_options_find(const pf_option_table *tables, const char *name, size_t *base)
{
    for (int t = 0; tables[t].rows; t++)
        for (const pf_option *o = tables[t].rows; o->kind != OPT_END; o++)
            if (is_option(o) && strcmp(o->name, name) == 0) {
                if (base) *base = tables[t].base;
                return o;
            }
    return NULL;
}

int pf_options_set(const pf_option_table *tables, void *opts, const char *name, const char *value,
                   pf_error *err)
{
    size_t base;
    const pf_option *o = pf_options_find(tables, name, &base);
    if (!o) return pf_fail(err, PF_EINPUT, "unknown option '--%s'", name);
    return store(o, value, (char *)opts + base, err);
}

int pf_options_count(const pf_option_table *tables)
{
    int n = 0;
    for (int t = 0; tables[t].rows; t++)
        for (const pf_option *o = tables[t].rows; o->kind != OPT_END; o++) n += is_option(o);
    return n;
}

const pf_option *pf_options_at(const pf_option_table *tables, int i)
{
    for (int t = 0; tables[t].rows; t++)
        for (const pf_option *o = tables[t].rows; o->kind != OPT_END; o++)
            if (is_option(o) && i-- == 0) return o;
    return NULL;
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

static void default_text(const pf_option *o, const void *opts, char *buf, size_t n)
{
    buf[0] = '\0';
    if (o->flags & OPT_REQUIRED) {
        snprintf(buf, n, "required");
        return;
    }
    if (o->flags & OPT_NO_DEFAULT) return;
    if (o->show) {
        o->show(opts, buf, n);
        return;
    }
    const void *f = cfield(opts, o);
    switch (o->kind) {
    case OPT_STR:
        if (*(const char *const *)f) snprintf(buf, n, "%s", *(const char *const *)f);
        break;
    case OPT_INT: pf_option_number(*(const int *)f, buf, n); break;
    case OPT_LONG: pf_option_number((double)*(const long *)f, buf, n); break;
    case OPT_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case OPT_DOUBLE: pf_option_number(*(const double *)f, buf, n); break;
    case OPT_CHOICE: snprintf(buf, n, "%s", o->choices[*(const int *)f]); break;
    default: break;
    }
}

void pf_options_help(FILE *f, const char *usage, const pf_option_table *tables, const void *opts,
                    const char *tail)
{
    fputs(usage, f);
    for (int t = 0; tables[t].rows; t++)
        for (const pf_option *o = tables[t].rows; o->kind != OPT_END; o++) {
            const void *sub = (const char *)opts + tables[t].base;
            if (o->kind == OPT_SECTION) {
                fprintf(f, "%s\n", o->help);
                continue;
            }
            if (o->kind == OPT_NOTE) {
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
