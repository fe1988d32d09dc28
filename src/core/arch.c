/* MLP architecture: layer sizes, activations, and where each tensor lives in
 * the flat parameter vector (PyTorch state_dict order). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int pf_arch_init(pf_arch *a, int n_layers, const int *sizes, const pf_act *acts, int bias,
                 pf_loss loss, pf_error *err)
{
    if (n_layers < 1 || n_layers > PF_MAX_LAYERS)
        return pf_fail(err, PF_EINPUT, "architecture needs 1 to %d layers, got %d",
                       PF_MAX_LAYERS, n_layers);
    memset(a, 0, sizeof *a);
    a->n_layers = n_layers;
    a->bias = bias ? 1 : 0;
    a->loss = loss;
    size_t off = 0;
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

int pf_arch_parse_acts(const char *spec, int n_layers, pf_act *acts, pf_error *err)
{
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return pf_fail(err, PF_EINPUT, "activation list too long");
    strcpy(buf, spec);
    int n = 0;
    pf_act parsed[PF_MAX_LAYERS];
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n >= PF_MAX_LAYERS || pf_act_from_name(tok, &parsed[n]) != 0)
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

void pf_arch_sizes_str(const pf_arch *a, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l <= a->n_layers && k < n; l++)
        k += (size_t)snprintf(buf + k, n - k, "%s%d", l ? "," : "", a->sizes[l]);
}

void pf_arch_acts_str(const pf_arch *a, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < a->n_layers && k < n; l++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", l ? "," : "", pf_act_name(a->act[l]));
}

int pf_arch_equal(const pf_arch *a, const pf_arch *b)
{
    if (a->n_layers != b->n_layers || a->bias != b->bias || a->loss != b->loss) return 0;
    for (int l = 0; l <= a->n_layers; l++)
        if (a->sizes[l] != b->sizes[l]) return 0;
    for (int l = 0; l < a->n_layers; l++)
        if (a->act[l] != b->act[l]) return 0;
    return 1;
}

/* nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives the bound
 * sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in); the bias uses the same bound. */
void pf_init_params(const pf_arch *a, float *theta, pf_rng *rng)
{
    for (int l = 0; l < a->n_layers; l++) {
        size_t fan_in = (size_t)a->sizes[l], fan_out = (size_t)a->sizes[l + 1];
        double bound = 1.0 / sqrt((double)fan_in);
        float *w = theta + a->w_off[l];
        for (size_t i = 0; i < fan_out * fan_in; i++)
            w[i] = (float)((2.0 * pf_rng_uniform(rng) - 1.0) * bound);
        if (a->bias) {
            float *b = theta + a->b_off[l];
            for (size_t i = 0; i < fan_out; i++)
                b[i] = (float)((2.0 * pf_rng_uniform(rng) - 1.0) * bound);
        }
    }
}

/* What training holds per parameter: theta, the gradient, Adam's two
 * moments (or SGD's buffer), an anchor and the copies a path keeps
 * (previous point, saved optimizer state): about ten floats. Per sample of
 * a block: pre-activations, activations and deltas of every layer, for the
 * minibatch and for the evaluation blocks. */
double pf_train_memory(const pf_arch *a, int batch, size_t n_train)
{
    double units = 0;
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
