/* Architectures: the stages of a convolutional model, layer sizes,
 * activations, and where each tensor lives in the flat parameter vector
 * (PyTorch state_dict order). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pathfinder/conv.h"
#include "pathfinder/core.h"

static const char *const act_names[] = {"sigmoid", "tanh", "relu", "linear"};
static const char *const loss_names[] = {"ce", "mse"};

const char *pf_act_name(pf_act act) { return act_names[act]; }
const char *pf_loss_name(pf_loss loss) { return loss_names[loss]; }

int pf_act_from_name(const char *name, pf_act *act)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *act = (pf_act)i;
            return 0;
        }
    if (strcmp(name, "identity") == 0 || strcmp(name, "none") == 0) {
        *act = PF_ACT_LINEAR;
        return 0;
    }
    return -1;
}

int pf_loss_from_name(const char *name, pf_loss *loss)
{
    if (strcmp(name, "ce") == 0 || strcmp(name, "cross-entropy") == 0) {
        *loss = PF_LOSS_CE;
        return 0;
    }
    if (strcmp(name, "mse") == 0) {
        *loss = PF_LOSS_MSE;
        return 0;
    }
    return -1;
}

/* The linear layers, their parameters from theta[off] on. */
static int init_layers(pf_arch *a, int n_layers, const int *sizes, const pf_act *acts, size_t off,
                       pf_error *err)
{
    if (n_layers < 1 || n_layers > PF_MAX_LAYERS)
        return pf_fail(err, PF_EINPUT, "architecture needs 1 to %d layers, got %d",
                       PF_MAX_LAYERS, n_layers);
    a->n_layers = n_layers;
    for (int l = 0; l <= n_layers; l++) {
        if (sizes[l] < 1 || sizes[l] > PF_MAX_WIDTH)
            return pf_fail(err, PF_EINPUT, "layer size %d is outside 1..%d", sizes[l], PF_MAX_WIDTH);
        a->sizes[l] = sizes[l];
    }
    for (int l = 0; l < n_layers; l++) {
        a->act[l] = acts[l];
        a->w_off[l] = off;
        off += (size_t)sizes[l + 1] * (size_t)sizes[l];
        a->b_off[l] = off;
        if (a->bias) off += (size_t)sizes[l + 1];
    }
    a->n_params = off;
    return PF_OK;
}

int pf_arch_init(pf_arch *a, int n_layers, const int *sizes, const pf_act *acts, int bias,
                 pf_loss loss, pf_error *err)
{
    memset(a, 0, sizeof *a);
    a->bias = bias ? 1 : 0;
    a->loss = loss;
    int rc = init_layers(a, n_layers, sizes, acts, 0, err);
    a->in_dim = a->sizes[0];
    return rc;
}

int pf_arch_is_cnn(const pf_arch *a) { return a->n_stages > 0; }

/* Activations for n weighted layers from a list (see pf_arch_parse_acts). */
static int parse_act_list(const char *spec, int n, pf_act *acts, pf_error *err);

/* A non-negative decimal integer at *p, advanced past it; -1 if none. */
static long read_number(const char **p)
{
    if (**p < '0' || **p > '9') return -1;
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    *p = end;
    return errno || v > PF_MAX_WIDTH ? (long)PF_MAX_WIDTH + 1 : v;
}

/* One token of a shaped spec, into a stage or (fc) a layer size. */
static int parse_token(pf_arch *a, const char *spec, const char *tok, int *sizes, int *n_fc,
                       int *flat, int *c, int *h, int *w, pf_error *err)
{
    const char *p = tok;
    pf_error sub;
    long n = -1, k = -1, st = 1, pad = 0;
    int is_conv = strncmp(p, "conv", 4) == 0;
    int is_max = strncmp(p, "maxpool", 7) == 0, is_avg = strncmp(p, "avgpool", 7) == 0;
    if (strcmp(tok, "flatten") == 0) {
        if (*flat)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': flatten comes after the input is "
                           "flat already", spec);
        *flat = 1;
        return PF_OK;
    }
    if (strncmp(p, "fc", 2) == 0) {
        p += 2;
        n = read_number(&p);
        if (n < 1 || *p)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': '%s' is not fcN with N in 1..%d",
                           spec, tok, PF_MAX_WIDTH);
        if (*n_fc >= PF_MAX_LAYERS)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': at most %d fc layers", spec,
                           PF_MAX_LAYERS);
        if (*n_fc == 0) sizes[0] = *c * *h * *w;
        *flat = 1;
        sizes[++*n_fc] = (int)n;
        return PF_OK;
    }
    if (!is_conv && !is_max && !is_avg)
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': unknown layer '%s' (use convN:K[:S[:P]], "
                       "maxpoolK, avgpoolK, flatten or fcN)", spec, tok);
    if (*flat)
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': '%s' comes after %s; "
                       "convolutions and pools come before the first fc", spec, tok,
                       *n_fc ? "an fc layer" : "flatten");
    if (a->n_stages >= PF_MAX_STAGES)
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': at most %d convolution and pooling "
                       "layers", spec, PF_MAX_STAGES);
    pf_stage *s = &a->stage[a->n_stages];
    memset(s, 0, sizeof *s);
    int rc;
    if (is_conv) {
        p += 4;
        n = read_number(&p);
        if (*p == ':') ++p, k = read_number(&p);
        if (k >= 0 && *p == ':') ++p, st = read_number(&p);
        if (st >= 0 && *p == ':') ++p, pad = read_number(&p);
        if (n < 1 || k < 1 || st < 1 || pad < 0 || *p)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': '%s' is not convN:K[:S[:P]] with "
                           "N, K, S positive", spec, tok);
        s->kind = PF_STAGE_CONV;
        rc = pf_conv_shape_init(&s->conv, *c, *h, *w, (int)n, (int)k, (int)st, (int)pad, &sub);
        if (!rc) *c = s->conv.out_c, *h = s->conv.out_h, *w = s->conv.out_w;
        a->n_conv++;
    } else {
        p += 7;
        k = read_number(&p);
        if (k < 1 || *p)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': '%s' is not %sK with K positive",
                           spec, tok, is_max ? "maxpool" : "avgpool");
        s->kind = is_max ? PF_STAGE_MAXPOOL : PF_STAGE_AVGPOOL;
        rc = pf_pool_shape_init(&s->pool, *c, *h, *w, (int)k, &sub);
        if (!rc) *h = s->pool.out_h, *w = s->pool.out_w;
    }
    if (rc) {
        const char *m = strchr(sub.msg, ':');
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': %s: %s%s", spec, tok, m ? m + 2 : sub.msg,
                       is_conv ? "" : " (windows must tile it; padding the convolution before "
                       "changes its size)");
    }
    a->n_stages++;
    return PF_OK;
}

/* The stages' parameter offsets and sizes, convolutions in order from 0. */
static size_t place_stages(pf_arch *a)
{
    size_t off = 0, in = (size_t)a->in_dim;
    for (int i = 0; i < a->n_stages; i++) {
        pf_stage *s = &a->stage[i];
        s->in_size = in;
        if (s->kind == PF_STAGE_CONV) {
            s->out_size = pf_conv_out_size(&s->conv);
            s->w_off = off;
            off += pf_conv_weight_size(&s->conv);
            s->b_off = off;
            if (a->bias) off += (size_t)s->conv.out_c;
        } else {
            s->out_size = (size_t)s->pool.c * s->pool.out_h * s->pool.out_w;
        }
        in = s->out_size;
    }
    return off;
}

int pf_arch_parse(pf_arch *a, const char *spec, const char *acts, int bias, pf_loss loss,
                  pf_error *err)
{
    memset(a, 0, sizeof *a);
    if (!strchr(spec, 'x')) {
        int n_layers, sizes[PF_MAX_LAYERS + 1];
        pf_act act[PF_MAX_LAYERS];
        int rc = pf_arch_parse_sizes(spec, &n_layers, sizes, err);
        if (!rc) rc = pf_arch_parse_acts(acts ? acts : "sigmoid", n_layers, act, err);
        return rc ? rc : pf_arch_init(a, n_layers, sizes, act, bias, loss, err);
    }
    char buf[1024];
    if (strlen(spec) >= sizeof buf)
        return pf_fail(err, PF_EINPUT, "architecture spec is longer than %zu characters", sizeof buf - 1);
    strcpy(buf, spec);
    a->bias = bias ? 1 : 0;
    a->loss = loss;
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    const char *p = tok ? tok : "";
    long c = read_number(&p), h = *p == 'x' ? (++p, read_number(&p)) : -1;
    long w = *p == 'x' ? (++p, read_number(&p)) : -1;
    if (c < 1 || h < 1 || w < 1 || *p || c * h * w > PF_MAX_WIDTH)
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': the input '%s' is not CxHxW (channels x "
                       "height x width, at most %d values)", spec, tok ? tok : "", PF_MAX_WIDTH);
    int ch = (int)c, hh = (int)h, ww = (int)w, n_fc = 0, flat = 0, sizes[PF_MAX_LAYERS + 1];
    a->in_c = ch, a->in_h = hh, a->in_w = ww, a->in_dim = ch * hh * ww;
    for (tok = strtok_r(NULL, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int rc = parse_token(a, spec, tok, sizes, &n_fc, &flat, &ch, &hh, &ww, err);
        if (rc) return rc;
    }
    if (n_fc == 0)
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': it ends without an fc layer (the output "
                       "layer is fcN)", spec);
    if (spec[strlen(spec) - 1] == ',' || strstr(spec, ",,"))
        return pf_fail(err, PF_EINPUT, "bad architecture '%s': empty layer", spec);
    pf_act act[PF_MAX_LAYERS] = {0}; /* set below */
    int rc = init_layers(a, n_fc, sizes, act, place_stages(a), err);
    return rc ? rc : pf_arch_set_acts(a, acts ? acts : "sigmoid", err);
}

int pf_arch_set_acts(pf_arch *a, const char *spec, pf_error *err)
{
    pf_act acts[PF_MAX_STAGES + PF_MAX_LAYERS];
    int n = a->n_conv + a->n_layers;
    int rc = parse_act_list(spec, n, acts, err);
    if (rc) return rc;
    for (int i = 0, k = 0; i < a->n_stages; i++)
        if (a->stage[i].kind == PF_STAGE_CONV) a->stage[i].act = acts[k++];
    memcpy(a->act, acts + a->n_conv, (size_t)a->n_layers * sizeof *acts);
    return PF_OK;
}

int pf_arch_parse_sizes(const char *spec, int *n_layers, int *sizes, pf_error *err)
{
    int n = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ','))
            return pf_fail(err, PF_EINPUT,
                           "bad architecture '%s': expected sizes like 784,128,128,10", spec);
        if (errno || v < 1 || v > PF_MAX_WIDTH)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': layer size %.*s is outside 1..%d",
                           spec, (int)(end - p), p, PF_MAX_WIDTH);
        if (n > PF_MAX_LAYERS)
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': at most %d layers", spec,
                           PF_MAX_LAYERS);
        sizes[n++] = (int)v;
        if (*end == ',' && end[1] == '\0')
            return pf_fail(err, PF_EINPUT, "bad architecture '%s': trailing comma", spec);
        p = *end ? end + 1 : end;
    }
    if (n < 2)
        return pf_fail(err, PF_EINPUT,
                       "bad architecture '%s': need at least input and output sizes", spec);
    *n_layers = n - 1;
    return PF_OK;
}

static int parse_act_list(const char *spec, int n_layers, pf_act *acts, pf_error *err)
{
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return pf_fail(err, PF_EINPUT, "activation list too long");
    strcpy(buf, spec);
    int n = 0;
    pf_act parsed[PF_MAX_STAGES + PF_MAX_LAYERS];
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n >= PF_MAX_STAGES + PF_MAX_LAYERS || pf_act_from_name(tok, &parsed[n]) != 0)
            return pf_fail(err, PF_EINPUT,
                           "bad activation '%s': use sigmoid, tanh, relu or linear", tok);
        n++;
    }
    if (n == 1) {
        /* One name: every hidden layer; the output stays linear (logits). */
        for (int l = 0; l < n_layers; l++) acts[l] = l + 1 < n_layers ? parsed[0] : PF_ACT_LINEAR;
        return PF_OK;
    }
    if (n == n_layers - 1) { /* one per hidden layer */
        for (int l = 0; l < n_layers - 1; l++) acts[l] = parsed[l];
        acts[n_layers - 1] = PF_ACT_LINEAR;
        return PF_OK;
    }
    if (n == n_layers) {
        memcpy(acts, parsed, (size_t)n * sizeof *acts);
        return PF_OK;
    }
    return pf_fail(err, PF_EINPUT,
                   "bad activations '%s': give 1, %d (hidden) or %d (all layers) names", spec,
                   n_layers - 1, n_layers);
}

int pf_arch_parse_acts(const char *spec, int n_layers, pf_act *acts, pf_error *err)
{
    return parse_act_list(spec, n_layers, acts, err);
}

void pf_arch_sizes_str(const pf_arch *a, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    if (a->in_c) {
        k += (size_t)snprintf(buf, n, "%dx%dx%d", a->in_c, a->in_h, a->in_w);
        for (int i = 0; i < a->n_stages && k < n; i++) {
            const pf_stage *s = &a->stage[i];
            if (s->kind == PF_STAGE_CONV)
                k += (size_t)snprintf(buf + k, n - k, ",conv%d:%d:%d:%d", s->conv.out_c, s->conv.k,
                                      s->conv.stride, s->conv.pad);
            else
                k += (size_t)snprintf(buf + k, n - k, ",%spool%d",
                                      s->kind == PF_STAGE_MAXPOOL ? "max" : "avg", s->pool.k);
        }
        for (int l = 1; l <= a->n_layers && k < n; l++)
            k += (size_t)snprintf(buf + k, n - k, ",fc%d", a->sizes[l]);
        return;
    }
    for (int l = 0; l <= a->n_layers && k < n; l++)
        k += (size_t)snprintf(buf + k, n - k, "%s%d", l ? "," : "", a->sizes[l]);
}

void pf_arch_acts_str(const pf_arch *a, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->n_stages && k < n; i++)
        if (a->stage[i].kind == PF_STAGE_CONV)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", pf_act_name(a->stage[i].act));
    for (int l = 0; l < a->n_layers && k < n; l++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", pf_act_name(a->act[l]));
}

int pf_arch_equal(const pf_arch *a, const pf_arch *b)
{
    if (a->n_layers != b->n_layers || a->bias != b->bias || a->loss != b->loss) return 0;
    if (a->in_dim != b->in_dim || a->n_stages != b->n_stages) return 0;
    if (a->n_stages && (a->in_c != b->in_c || a->in_h != b->in_h || a->in_w != b->in_w)) return 0;
    for (int l = 0; l <= a->n_layers; l++)
        if (a->sizes[l] != b->sizes[l]) return 0;
    for (int l = 0; l < a->n_layers; l++)
        if (a->act[l] != b->act[l]) return 0;
    for (int i = 0; i < a->n_stages; i++) {
        const pf_stage *s = &a->stage[i], *t = &b->stage[i];
        if (s->kind != t->kind) return 0;
        if (s->kind == PF_STAGE_CONV &&
            (memcmp(&s->conv, &t->conv, sizeof s->conv) || s->act != t->act))
            return 0;
        if (s->kind != PF_STAGE_CONV && memcmp(&s->pool, &t->pool, sizeof s->pool)) return 0;
    }
    return 1;
}

/* Uniform in +-bound, n values. */
static void uniform_fill(float *p, size_t n, double bound, pf_rng *rng)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)((2.0 * pf_rng_uniform(rng) - 1.0) * bound);
}

/* nn.Linear.reset_parameters and nn.Conv2d's: kaiming_uniform_(a=sqrt(5))
 * gives the bound sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in); the bias
 * uses the same bound. A convolution's fan_in is in_c * k * k. */
void pf_init_params(const pf_arch *a, float *theta, pf_rng *rng)
{
    for (int i = 0; i < a->n_stages; i++) {
        const pf_stage *s = &a->stage[i];
        if (s->kind != PF_STAGE_CONV) continue;
        double bound = 1.0 / sqrt((double)s->conv.in_c * s->conv.k * s->conv.k);
        uniform_fill(theta + s->w_off, pf_conv_weight_size(&s->conv), bound, rng);
        if (a->bias) uniform_fill(theta + s->b_off, (size_t)s->conv.out_c, bound, rng);
    }
    for (int l = 0; l < a->n_layers; l++) {
        size_t fan_in = (size_t)a->sizes[l], fan_out = (size_t)a->sizes[l + 1];
        double bound = 1.0 / sqrt((double)fan_in);
        uniform_fill(theta + a->w_off[l], fan_out * fan_in, bound, rng);
        if (a->bias) uniform_fill(theta + a->b_off[l], fan_out, bound, rng);
    }
}

/* What training holds per parameter: theta, the gradient, Adam's two
 * moments (or SGD's buffer), an anchor and the copies a path keeps
 * (previous point, saved optimizer state): about ten floats. Per sample of
 * a block: pre-activations, activations and deltas of every layer, for the
 * minibatch and for the evaluation blocks. */
double pf_train_memory(const pf_arch *a, int batch, size_t n_train)
{
    double units = a->in_dim;
    for (int i = 0; i < a->n_stages; i++) units += 2.0 * (double)a->stage[i].out_size;
    for (int l = 0; l <= a->n_layers; l++) units += a->sizes[l];
    double per_sample = 3.0 * units * sizeof(float);
    return 10.0 * (double)a->n_params * sizeof(float) + (double)(batch + 2000) * per_sample +
           (double)n_train * sizeof(int);
}

int pf_check_memory(const pf_arch *a, int batch, size_t n_train, pf_error *err)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return PF_OK;
    double have = (double)pages * (double)page, need = pf_train_memory(a, batch, n_train);
    if (need <= have) return PF_OK;
    char sizes[256];
    pf_arch_sizes_str(a, sizes, sizeof sizes);
    return pf_fail(err, PF_EINPUT, "model %s has %.4g parameters and needs about %.3g GB to train; "
                   "this machine has %.3g GB", sizes, (double)a->n_params, need / 1e9, have / 1e9);
}
