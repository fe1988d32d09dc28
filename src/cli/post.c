/* Post-processing of a sweep folder. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "post.h"

void post_options_default(post_options *o)
{
    memset(o, 0, sizeof *o);
    pf_detect_config_default(&o->detect);
    o->refine = 1;
    o->refine_tol = 1e-6;
    o->encoded_threshold = 50.0;
}

static int make_dir(const char *path, pf_error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf_fail(err, PF_EINPUT, "%s: not a directory", path);
    return PF_OK;
}

int post_make_dirs(const char *dir, pf_error *err)
{
    char path[4096];
    int rc = make_dir(dir, err);
    const char *subs[] = {"checkpoints", "figures", "transitions"};
    for (int i = 0; !rc && i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        rc = make_dir(path, err);
    }
    return rc;
}

void post_checkpoint_path(char *buf, size_t n, const char *dir, long index)
{
    snprintf(buf, n, "%s/checkpoints/p%05ld.safetensors", dir, index);
}

int post_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                                const float *theta, const char *anchor, uint64_t seed,
                                const char *dataset, pf_error *err)
{
    char path[4096];
    post_checkpoint_path(path, sizeof path, dir, res->index);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = res->point.beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", anchor ? anchor : "origin");
    meta.seed = seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", dataset);
    snprintf(meta.extra, sizeof meta.extra, "{\"sweep_index\":%ld,\"direction\":\"%s\",\"epochs\":%d}",
             res->index, res->point.direction > 0 ? "up" : "down", res->epochs);
    return pf_ckpt_write(path, arch, theta, &meta, err);
}

int post_process(const post_context *pc, pf_error *err)
{
    (void)pc;
    (void)err;
    return PF_OK;
}
