/* One model at a time: train at one beta and write the checkpoint (for
 * one seed or many, a seed whose file exists being skipped, so an
 * interrupted run resumes), and evaluate a checkpoint. Their reports are
 * JSON lines, one per model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "run/report.h"

void pf_train_run_config_default(pf_train_run_config *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    pf_model_spec_default(&c->model);
    pf_train_config_default(&c->protocol, PF_OPT_ADAM);
}

int pf_seed_path(char *dst, size_t n, const char *pattern, uint64_t seed)
{
    size_t len = 0;
    const char *p = pattern;
    while (*p) {
        const char *hit = strstr(p, "{seed}");
        size_t chunk = hit ? (size_t)(hit - p) : strlen(p);
        if (len + chunk + 24 >= n) return -1;
        memcpy(dst + len, p, chunk);
        len += chunk;
        if (!hit) break;
        len += (size_t)snprintf(dst + len, n - len, "%llu", (unsigned long long)seed);
        p = hit + 6;
    }
    dst[len] = '\0';
    return 0;
}

typedef struct {
    const pf_train_run_config *c;
    const char *out;
} train_run;

static void epoch_event(void *ctx, const pf_progress *p)
{
    const train_run *r = ctx;
    pf_event e = {.kind = PF_EVENT_EPOCH, .run = r->out, .epoch = p->epoch, .max_epochs = p->max_epochs,
                  .step = p->step, .steps = p->steps_per_epoch, .loss = p->loss, .beta = p->beta,
                  .seconds = p->seconds};
    r->c->progress(r->c->progress_ctx, &e);
}

/* Train one model (seed) and write it to out; its JSON line into doc. */
static int train_one(pf_ctx *ctx, const pf_train_run_config *c, uint64_t seed, const char *out,
                     const pf_dataset *train, const pf_dataset *test, cJSON **line, pf_error *err)
{
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0, rc;
    pf_model_spec spec = c->model;
    spec.seed = seed;
    if ((rc = pf_model_setup(&spec, train, c->protocol.batch, &arch, &theta, &anchor, err))) goto done;
    pf_train_config cfg = c->protocol;
    /* auto resolved on the training set, so that the line records the path taken */
    cfg.input_layer = pf_input_layer_resolve(cfg.input_layer, train->x, train->n, train->dim);
    if (pf_arch_is_cnn(&arch)) cfg.input_layer = PF_INPUT_DENSE; /* a convolution reads the input */
    cfg.beta = c->beta;
    cfg.anchor = anchor;
    train_run r = {c, out};
    if (c->progress) {
        cfg.progress = epoch_event;
        cfg.progress_ctx = &r;
    }
    if ((rc = pf_trainer_init(&trainer, ctx, &arch, &cfg.opt, cfg.batch, train->n, pf_shuffle_seed(seed), err)))
        goto done;
    trainer_ready = 1;
    pf_train_result res;
    if ((rc = pf_train_beta(&trainer, theta, train, &cfg, &res, err))) goto done;
    if (res.diverged) {
        /* a finite blow-up is no model to keep */
        rc = pf_fail(err, PF_ERUNTIME, "training diverged at beta %g (L_beta %.3g at the start, %.3g "
                     "at the end); %s not written: lower --lr", c->beta, res.start_reg_loss,
                     res.final_reg_loss, out);
        goto done;
    }
    pf_metrics m;
    if ((rc = pf_measure(&trainer.eval_work, theta, train, test, anchor, c->beta, &m, err))) goto done;
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = c->beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", spec.anchor ? spec.anchor : "origin");
    meta.seed = seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train->name);
    char extra[1024];
    meta.extra = extra;
    snprintf(extra, sizeof extra,
             "{\"optimizer\":\"%s\",\"lr\":%.17g,\"batch\":%d,\"epochs\":%d,\"train_subset\":%ld,"
             "\"init\":\"%s\"}",
             pf_opt_name(cfg.opt.kind), cfg.opt.lr, cfg.batch, res.epochs, c->data.train_subset,
             spec.init ? "checkpoint" : "nn.Linear default");
    /* data-parallel: every process holds the same model; one writes it */
    if (pf_ctx_rank(ctx) == 0 && (rc = pf_ckpt_write(out, &arch, theta, &meta, err))) goto done;
    cJSON *o = pf_json_metrics(&m);
    cJSON_AddStringToObject(o, "command", "train");
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddStringToObject(o, "optimizer", pf_opt_name(cfg.opt.kind));
    cJSON_AddStringToObject(o, "input_layer", pf_input_layer_name(cfg.input_layer));
    cJSON_AddNumberToObject(o, "epochs", res.epochs);
    cJSON_AddNumberToObject(o, "steps", (double)res.steps);
    cJSON_AddNumberToObject(o, "last_epoch_loss", res.epoch_loss);
    cJSON_AddBoolToObject(o, "stopped_early", res.stopped_early);
    cJSON_AddNumberToObject(o, "train_seconds", res.seconds);
    cJSON_AddNumberToObject(o, "setup_seconds", res.setup_seconds);
    cJSON_AddNumberToObject(o, "seconds_per_epoch",
                            res.epochs ? (res.seconds - res.setup_seconds) / res.epochs : 0.0);
    *line = o;
done:
    if (trainer_ready) pf_trainer_free(&trainer);
    free(theta);
    free(anchor);
    return rc;
}

/* Append a JSON line to the text t. */
static int add_line(pf_text *t, cJSON *o, pf_error *err)
{
    char *s = pf_json_line(o);
    cJSON_Delete(o);
    if (!s) return pf_fail(err, PF_ERUNTIME, "out of memory");
    fprintf(t->f, "%s\n", s);
    free(s);
    return PF_OK;
}

/* The report of JSON lines; after a failure, the lines of the models done
 * before it (as text only). */
static int finish_lines(pf_text *t, int rc, pf_report *out, pf_error *err)
{
    char *text = pf_text_end(t);
    if (rc) {
        out->text = text;
        return rc;
    }
    if (!text || !(out->json = strdup(text))) {
        free(text);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    out->text = text;
    return PF_OK;
}

int pf_run_train(pf_ctx *ctx, const char *out, const uint64_t *seeds, long n_seeds,
                 const pf_train_run_config *c, pf_report *report, pf_error *err)
{
    memset(report, 0, sizeof *report);
    if (seeds && !strstr(out, "{seed}"))
        return pf_fail(err, PF_EINPUT, "with several seeds the output path must contain {seed}, e.g. "
                       "minima/seed{seed}.safetensors");
    if (!seeds && strstr(out, "{seed}"))
        return pf_fail(err, PF_EINPUT, "%s contains {seed}: give the seeds", out);
    long n = seeds ? n_seeds : 1;
    if (pf_ctx_ranks(ctx) > 1 && c->protocol.batch > 0 && c->protocol.opt.kind != PF_OPT_LBFGS)
        return pf_fail(err, PF_EINPUT, "data-parallel training splits full-batch work only: use "
                       "--optimizer lbfgs or --batch 0 (minibatch training stays one model per process)");
    pf_dataset train = {0}, test = {0};
    pf_text t;
    if (pf_text_begin(&t)) return pf_fail(err, PF_ERUNTIME, "out of memory");
    int rc = PF_OK;
    /* every output can be written, before any training */
    for (long k = 0; k < n && !rc; k++) {
        char path[4096];
        if (seeds && pf_seed_path(path, sizeof path, out, seeds[k]))
            rc = pf_fail(err, PF_EINPUT, "%s: path too long", out);
        else
            rc = pf_check_output_file(seeds ? path : out, err);
    }
    /* the seeds done in an earlier run, found before any is written (the
     * processes of a data-parallel run must all skip the same ones) */
    unsigned char *done = calloc((size_t)n, 1);
    if (!rc && !done) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    for (long k = 0; k < n && !rc && seeds; k++) {
        char path[4096];
        pf_seed_path(path, sizeof path, out, seeds[k]);
        done[k] = access(path, F_OK) == 0;
    }
    if (!rc) rc = pf_data_load(&c->data, &train, &test, err);
    if (!rc) rc = pf_data_shard(ctx, &train, 0, &test, err);
    for (long k = 0; k < n && !rc; k++) {
        char path[4096];
        uint64_t seed = seeds ? seeds[k] : c->model.seed;
        if (seeds) pf_seed_path(path, sizeof path, out, seed);
        else snprintf(path, sizeof path, "%s", out);
        cJSON *o = NULL;
        if (done[k]) {
            /* done in an earlier run: resume past it */
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "command", "train");
            cJSON_AddStringToObject(o, "out", path);
            cJSON_AddNumberToObject(o, "seed", (double)seed);
            cJSON_AddBoolToObject(o, "skipped", 1);
            cJSON_AddStringToObject(o, "reason", "exists");
        } else if ((rc = train_one(ctx, c, seed, path, &train, &test, &o, err))) {
            break;
        }
        rc = add_line(&t, o, err);
    }
    free(done);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return finish_lines(&t, rc, report, err);
}

int pf_run_eval(pf_ctx *ctx, const char *path, const pf_data_options *data, double beta,
                const char *anchor_path, const char *act, pf_input_layer input_layer, pf_report *report,
                pf_error *err)
{
    memset(report, 0, sizeof *report);
    pf_dataset train = {0}, test = {0};
    pf_arch arch, fallback;
    float *theta = NULL, *anchor = NULL;
    pf_work w = {0};
    pf_ckpt_meta meta;
    pf_text t = {0};
    int rc = PF_OK;
    /* Read the model before the data, so a bad file fails fast. */
    if ((rc = pf_ckpt_read(path, NULL, NULL, &arch, &theta, &meta, err))) goto done;
    if (act) {
        fallback = arch;
        if ((rc = pf_arch_set_acts(&fallback, act, err))) goto done;
        free(theta);
        theta = NULL;
        if ((rc = pf_ckpt_read(path, &fallback, NULL, &arch, &theta, &meta, err))) goto done;
    }
    if (anchor_path) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(anchor_path, &arch, &arch, &anchor_arch, &anchor, NULL, err))) goto done;
    }
    if (isnan(beta)) beta = meta.beta;
    if ((rc = pf_data_load(data, &train, &test, err))) goto done;
    if ((rc = pf_data_shard(ctx, &train, 0, &test, err))) goto done;
    if ((rc = pf_work_init(&w, ctx, &arch, 2000, err))) goto done;
    w.input_layer = input_layer;
    pf_metrics m;
    if ((rc = pf_measure(&w, theta, &train, &test, anchor, beta, &m, err))) goto done;
    cJSON *o = pf_json_metrics(&m);
    cJSON_AddStringToObject(o, "command", "eval");
    cJSON_AddStringToObject(o, "model", path);
    char buf[512];
    pf_arch_sizes_str(&arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "architecture", buf);
    pf_arch_acts_str(&arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "activations", buf);
    cJSON_AddNumberToObject(o, "n_params", (double)arch.n_params);
    if (pf_text_begin(&t)) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    else rc = add_line(&t, o, err);
    rc = finish_lines(&t, rc, report, err);
done:
    if (t.f) free(pf_text_end(&t));
    pf_work_free(&w);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}
