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
    fprintf(stderr, " (see pathfinder %s --help)\n", cmd);
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

/* --normalize auto | none | MEAN,STD */
static const char *parse_normalize(void *opts, const char *arg)
{
    cli_common *c = opts;
    if (strcmp(arg, "auto") == 0) {
        c->data.norm = PF_NORM_AUTO;
        return NULL;
    }
    if (strcmp(arg, "none") == 0) {
        c->data.norm = PF_NORM_NONE;
        return NULL;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *comma = strchr(buf, ',');
    const char *need = "auto, none or MEAN,STD with STD > 0";
    if (!comma) return need;
    *comma = '\0';
    if (cli_parse_double(buf, &c->data.mean) || cli_parse_double(comma + 1, &c->data.std) ||
        !(c->data.std > 0))
        return need;
    c->data.norm = PF_NORM_FIXED;
    return NULL;
}

static void show_normalize(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "auto: MNIST by the paper's mean %g and std %g, other images by their training "
             "set's, tables feature by feature", PF_MNIST_MEAN, PF_MNIST_STD);
}

static const char *const target_names[] = {"auto", "class", "regression", NULL};

const cli_option cli_data_rows[] = {
    {CLI_SECTION, .help = "Data:"},
    {CLI_STR, "data", "SPEC", CLI_OFF(cli_common, data.spec), .help =
     "mnist, fashion-mnist, or a folder with IDX files (train-images-idx3-ubyte[.gz] ...), "
     "train.csv/test.csv, or train_x.npy/train_y.npy/test_x.npy/test_y.npy"},
    {CLI_LONG, "train-subset", "N", CLI_OFF(cli_common, data.train_subset), 1, 1e15,
     CLI_NO_DEFAULT, "train on a fixed subset of N samples, drawn with --subset-seed (default: all)", .given = 0},
    {CLI_U64, "subset-seed", "S", CLI_OFF(cli_common, data.subset_seed), 0, 1.8e19, 0,
     "seed that draws the subset", .given = 0},
    {CLI_CUSTOM, "normalize", "MODE", 0, .help = "auto, none, or MEAN,STD", .parse = parse_normalize,
     .show = show_normalize},
    {CLI_CHOICE, "target", "KIND", CLI_OFF(cli_common, target), .help =
     "auto (integral single targets are class labels), class or regression", .choices = target_names},
    {CLI_INT, "targets", "K", CLI_OFF(cli_common, data.n_targets), 1, 1 << 20, CLI_NO_DEFAULT,
     "CSV: number of trailing target columns (default 1)", .given = 0},
    {CLI_END},
};

const cli_option cli_other_rows[] = {
    {CLI_SECTION, .help = "Other:"},
    {CLI_INT, "threads", "N", CLI_OFF(cli_common, threads), 1, PF_MAX_THREADS, 0,
     "size of pathfinder's thread team, which splits every minibatch and data pass; the same "
     "seed and thread count give the same output", .given = 0},
    {CLI_FLAG, "quiet", NULL, CLI_OFF(cli_common, quiet), .help = "no progress on stderr"},
    {CLI_FLAG, "json", NULL, CLI_OFF(cli_common, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {CLI_END},
};

void cli_common_finish(cli_common *c)
{
    static const pf_target_kind kinds[] = {PF_TARGET_AUTO, PF_TARGET_CLASS, PF_TARGET_REGRESSION};
    c->data.target = kinds[c->target];
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
    cJSON_AddStringToObject(p, "input_layer", pf_input_layer_name(cfg->input_layer));
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
