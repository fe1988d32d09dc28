/* Helpers shared by the commands: errors, numbers, data options, progress,
 * JSON output. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pathfinder%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pathfinder %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'pathfinder %s --help'.\n", cmd);
    va_end(ap);
    return PF_EINPUT;
}

int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = (uint64_t)v;
    return 0;
}

void cli_common_default(cli_common *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    c->threads = 1;
}

int cli_common_option(const char *cmd, cli_common *c, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case OPT_DATA:
        c->data.spec = arg;
        return 1;
    case OPT_TRAIN_SUBSET:
        if (cli_parse_long(arg, &v) || v < 1)
            return cli_usage_error(cmd, "--train-subset needs a positive count, got '%s'", arg), -1;
        c->data.train_subset = v;
        return 1;
    case OPT_SUBSET_SEED:
        if (cli_parse_u64(arg, &c->data.subset_seed))
            return cli_usage_error(cmd, "--subset-seed needs a non-negative integer, got '%s'", arg), -1;
        return 1;
    case OPT_NORMALIZE:
        if (strcmp(arg, "auto") == 0) {
            c->data.norm = PF_NORM_AUTO;
        } else if (strcmp(arg, "none") == 0) {
            c->data.norm = PF_NORM_NONE;
        } else {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", arg);
            char *comma = strchr(buf, ',');
            if (!comma) return cli_usage_error(cmd, "--normalize takes auto, none or MEAN,STD"), -1;
            *comma = '\0';
            if (cli_parse_double(buf, &c->data.mean) || cli_parse_double(comma + 1, &c->data.std) ||
                !(c->data.std > 0))
                return cli_usage_error(cmd, "--normalize MEAN,STD needs numbers with STD > 0, got '%s'", arg), -1;
            c->data.norm = PF_NORM_FIXED;
        }
        return 1;
    case OPT_TARGET:
        if (strcmp(arg, "auto") == 0) c->data.target = PF_TARGET_AUTO;
        else if (strcmp(arg, "class") == 0) c->data.target = PF_TARGET_CLASS;
        else if (strcmp(arg, "regression") == 0) c->data.target = PF_TARGET_REGRESSION;
        else return cli_usage_error(cmd, "--target takes auto, class or regression"), -1;
        return 1;
    case OPT_TARGETS:
        if (cli_parse_long(arg, &v) || v < 1 || v > 1 << 20)
            return cli_usage_error(cmd, "--targets needs a positive count, got '%s'", arg), -1;
        c->data.n_targets = (int)v;
        return 1;
    case OPT_THREADS:
        if (cli_parse_long(arg, &v) || v < 1 || v > PF_MAX_THREADS)
            return cli_usage_error(cmd, "--threads needs a count from 1 to 64, got '%s'", arg), -1;
        c->threads = (int)v;
        return 1;
    case OPT_QUIET:
        c->quiet = 1;
        return 1;
    case OPT_HELP:
        c->help = 1;
        return 1;
    }
    return 0;
}

void cli_progress_init(cli_progress *p, int quiet)
{
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
}

void cli_progress_fn(void *ctx, const pf_progress *p)
{
    cli_progress *c = ctx;
    if (!c->enabled) return;
    double done = (double)(p->epoch - 1) * (double)p->steps_per_epoch + (double)p->step;
    double rate = p->seconds > 0 ? done / p->seconds : 0.0;
    double left_epoch = rate > 0 ? (double)(p->steps_per_epoch - p->step) / rate : 0.0;
    fprintf(stderr, "\r\033[Kbeta %-8g epoch %d/%d  step %ld/%ld  loss %.5f  %.0f steps/s  epoch ETA %.1fs",
            c->beta, p->epoch, p->max_epochs, p->step, p->steps_per_epoch, p->loss, rate, left_epoch);
    fflush(stderr);
    c->printed = 1;
}

void cli_progress_done(cli_progress *p)
{
    if (p->printed) fprintf(stderr, "\r\033[K");
    p->printed = 0;
}

cJSON *cli_eval_json(const pf_eval *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)e->n);
    cJSON_AddNumberToObject(o, "loss", e->loss);
    if (e->n_classes > 0) {
        cJSON_AddNumberToObject(o, "accuracy", e->accuracy);
        cJSON *pc = cJSON_AddArrayToObject(o, "class_accuracy");
        for (int k = 0; k < e->n_classes; k++)
            cJSON_AddItemToArray(pc, e->class_accuracy[k] < 0 ? cJSON_CreateNull()
                                                             : cJSON_CreateNumber(e->class_accuracy[k]));
    }
    return o;
}

cJSON *cli_protocol_json(const pf_train_config *cfg, int threads)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "optimizer", pf_opt_name(cfg->opt.kind));
    cJSON_AddNumberToObject(p, "lr", cfg->opt.lr);
    cJSON_AddNumberToObject(p, "momentum", cfg->opt.momentum);
    cJSON_AddNumberToObject(p, "batch", cfg->batch);
    cJSON_AddNumberToObject(p, "max_epochs", cfg->max_epochs);
    cJSON_AddNumberToObject(p, "patience", cfg->patience);
    cJSON_AddNumberToObject(p, "min_delta", cfg->min_delta);
    cJSON_AddBoolToObject(p, "reset_optimizer", cfg->reset_optimizer);
    cJSON_AddNumberToObject(p, "grad_tol", cfg->grad_tol);
    cJSON_AddNumberToObject(p, "threads", threads);
    return p;
}

cJSON *cli_metrics_json(const pf_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "beta", m->beta);
    cJSON_AddItemToObject(o, "train", cli_eval_json(&m->train));
    if (m->test.n) cJSON_AddItemToObject(o, "test", cli_eval_json(&m->test));
    cJSON_AddNumberToObject(o, "r", m->r);
    cJSON_AddNumberToObject(o, "reg_loss", m->reg_loss);
    return o;
}

void cli_print_json(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        puts(s);
        fflush(stdout);
        free(s);
    }
    cJSON_Delete(obj);
}
