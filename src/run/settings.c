/* Run settings: what config.json records, and a sweep's configuration read
 * back from it (so that one transition of a finished sweep can be refined
 * on its own). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run/report.h"
#include "run/settings.h"

static const char *const target_names[] = {"auto", "class", "regression"};

cJSON *pf_sweep_settings(const pf_sweep_config *c, const pf_arch *arch, const pf_train_config *cfg,
                         const pf_dataset *train, const pf_dataset *test, long n_points, int threads)
{
    cJSON *s = cJSON_CreateObject();
    char buf[512];
    cJSON *d = cJSON_AddObjectToObject(s, "data");
    /* Arrays passed in memory are recorded as "arrays"; their checksums below
     * say which. */
    cJSON_AddStringToObject(d, "spec", c->data.train_arrays ? "arrays"
                                       : c->data.spec ? c->data.spec : "mnist");
    cJSON_AddStringToObject(d, "name", train->name);
    cJSON_AddNumberToObject(d, "train_subset", (double)c->data.train_subset);
    cJSON_AddNumberToObject(d, "subset_seed", (double)c->data.subset_seed);
    cJSON_AddNumberToObject(d, "normalize", c->data.norm);
    cJSON_AddNumberToObject(d, "mean", c->data.mean);
    cJSON_AddNumberToObject(d, "std", c->data.std);
    cJSON_AddStringToObject(d, "target", target_names[c->data.target]);
    cJSON_AddNumberToObject(d, "targets", c->data.n_targets);
    snprintf(buf, sizeof buf, "%08x", pf_dataset_checksum(train));
    cJSON_AddStringToObject(d, "train_crc32", buf);
    snprintf(buf, sizeof buf, "%08x", pf_dataset_checksum(test));
    cJSON_AddStringToObject(d, "test_crc32", buf);
    cJSON_AddNumberToObject(d, "n_train", (double)train->n);
    cJSON_AddNumberToObject(d, "n_test", (double)test->n);
    cJSON *m = cJSON_AddObjectToObject(s, "model");
    pf_arch_sizes_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(m, "architecture", buf);
    pf_arch_acts_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(m, "activations", buf);
    cJSON_AddBoolToObject(m, "bias", arch->bias);
    cJSON_AddStringToObject(m, "loss", pf_loss_name(arch->loss));
    cJSON_AddStringToObject(m, "init", c->model.init ? c->model.init : "nn.Linear default");
    cJSON_AddStringToObject(m, "anchor", c->model.anchor ? c->model.anchor : "origin");
    cJSON_AddNumberToObject(m, "seed", (double)c->model.seed);
    cJSON_AddItemToObject(s, "protocol", pf_json_protocol(cfg, threads));
    cJSON *g = cJSON_AddObjectToObject(s, "grid");
    cJSON_AddStringToObject(g, "beta", c->grid);
    cJSON_AddStringToObject(g, "direction", c->direction);
    cJSON_AddNumberToObject(g, "points", (double)n_points);
    cJSON_AddNumberToObject(s, "hessian_samples", (double)c->hessian_samples);
    return s;
}

int pf_settings_read(const char *path, cJSON **settings, pf_error *err)
{
    *settings = NULL;
    char *text;
    int rc = pf_read_file(path, &text, NULL, 1 << 24, err);
    if (rc) return rc;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    cJSON *s = doc ? cJSON_DetachItemFromObjectCaseSensitive(doc, "settings") : NULL;
    cJSON_Delete(doc);
    if (!cJSON_IsObject(s)) {
        cJSON_Delete(s);
        return pf_fail(err, PF_EINPUT, "%s: not a pathfinder run configuration", path);
    }
    *settings = s;
    return PF_OK;
}

/* ---- reading back -------------------------------------------------------------- */

static const cJSON *item(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static int get_num(const cJSON *o, const char *a, const char *b, double *v, pf_error *err)
{
    const cJSON *x = item(o, a, b);
    if (!cJSON_IsNumber(x)) return pf_fail(err, PF_EINPUT, "config.json: no number %s.%s", a, b ? b : "");
    *v = x->valuedouble;
    return PF_OK;
}

static int get_str(const cJSON *o, const char *a, const char *b, const char **v, pf_error *err)
{
    const cJSON *x = item(o, a, b);
    if (!cJSON_IsString(x)) return pf_fail(err, PF_EINPUT, "config.json: no text %s.%s", a, b ? b : "");
    *v = x->valuestring;
    return PF_OK;
}

int pf_sweep_config_from_settings(const cJSON *s, pf_sweep_config *c, int *threads, pf_error *err)
{
    pf_sweep_config_default(c);
    double v;
    const char *t;
    int rc = PF_OK;
#define NUM(a, b, dst, type) \
    if (!rc && !(rc = get_num(s, a, b, &v, err))) dst = (type)v
#define STR(a, b, dst) \
    if (!rc) rc = get_str(s, a, b, &dst, err)
    STR("data", "spec", c->data.spec);
    NUM("data", "train_subset", c->data.train_subset, long);
    NUM("data", "subset_seed", c->data.subset_seed, uint64_t);
    NUM("data", "normalize", c->data.norm, pf_norm_kind);
    NUM("data", "mean", c->data.mean, double);
    NUM("data", "std", c->data.std, double);
    NUM("data", "targets", c->data.n_targets, int);
    if (!rc && !(rc = get_str(s, "data", "target", &t, err))) {
        for (int k = 0; k < 3; k++)
            if (strcmp(t, target_names[k]) == 0) c->data.target = (pf_target_kind)k;
    }
    STR("model", "architecture", c->model.arch);
    STR("model", "activations", c->model.act);
    STR("model", "loss", c->model.loss);
    if (!rc && cJSON_IsFalse(item(s, "model", "bias"))) c->model.no_bias = 1;
    if (!rc && !(rc = get_str(s, "model", "init", &t, err)) && strcmp(t, "nn.Linear default")) c->model.init = t;
    if (!rc && !(rc = get_str(s, "model", "anchor", &t, err)) && strcmp(t, "origin")) c->model.anchor = t;
    NUM("model", "seed", c->model.seed, uint64_t);
    if (!rc && !(rc = get_str(s, "protocol", "optimizer", &t, err))) {
        pf_opt_kind k;
        if (pf_opt_from_name(t, &k)) rc = pf_fail(err, PF_EINPUT, "config.json: unknown optimizer '%s'", t);
        else pf_train_config_default(&c->protocol, k);
    }
    NUM("protocol", "lr", c->protocol.opt.lr, double);
    NUM("protocol", "momentum", c->protocol.opt.momentum, double);
    NUM("protocol", "batch", c->protocol.batch, int);
    NUM("protocol", "max_epochs", c->protocol.max_epochs, int);
    NUM("protocol", "patience", c->protocol.patience, int);
    NUM("protocol", "min_delta", c->protocol.min_delta, double);
    NUM("protocol", "grad_tol", c->protocol.grad_tol, double);
    NUM("protocol", "threads", *threads, int);
    /* the input layer's path (configurations before it was recorded: auto) */
    const cJSON *layer = item(s, "protocol", "input_layer");
    if (!rc && cJSON_IsString(layer) && pf_input_layer_from_name(layer->valuestring, &c->protocol.input_layer))
        rc = pf_fail(err, PF_EINPUT, "config.json: unknown input layer '%s'", layer->valuestring);
    if (!rc) c->protocol.reset_optimizer = cJSON_IsTrue(item(s, "protocol", "reset_optimizer"));
    const cJSON *cert = item(s, "protocol", "certify");
    if (!rc && cert) {
        c->protocol.certify = 1;
        const char *keys[4] = {"lanczos_tol", "lanczos_max_dim", "eps_factor", "max_escapes"};
        double got[4];
        for (int k = 0; k < 4 && !rc; k++) rc = get_num(cert, keys[k], NULL, &got[k], err);
        if (!rc) {
            c->protocol.certificate.lanczos.tol = got[0];
            c->protocol.certificate.lanczos.max_dim = (int)got[1];
            c->protocol.certificate.eps_factor = got[2];
            c->protocol.certificate.max_escapes = (int)got[3];
        }
    }
    STR("grid", "beta", c->grid);
    STR("grid", "direction", c->direction);
    NUM("hessian_samples", NULL, c->hessian_samples, long);
#undef NUM
#undef STR
    return rc;
}
