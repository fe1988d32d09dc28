/* Where named datasets live. Nothing about the build machine is compiled
 * in: the places are the environment, the user's data folder, and the
 * source tree the running program or library sits in. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathfinder/io.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The per-user folder: $XDG_DATA_HOME/pathfinder, else ~/.local/share/pathfinder
 * (0 when neither variable is set). */
static int user_root(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg == '/') return snprintf(buf, n, "%s/pathfinder", xdg) < (int)n;
    if (home && *home) return snprintf(buf, n, "%s/.local/share/pathfinder", home) < (int)n;
    return 0;
}

/* The data/ folder of the pathfinder source tree that holds file (the
 * executable, or the shared library): the nearest of its first four parent
 * folders with include/pathfinder/core.h and data/ in it. */
static int tree_root(const char *file, char *buf, size_t n)
{
    char dir[4096], probe[4200];
    if (!file || snprintf(dir, sizeof dir, "%s", file) >= (int)sizeof dir) return 0;
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash) return 0;
        *slash = '\0';
        const char *d = *dir ? dir : "/";
        snprintf(probe, sizeof probe, "%s/include/pathfinder/core.h", d);
        if (!is_file(probe)) continue;
        snprintf(probe, sizeof probe, "%s/data", d);
        if (!is_dir(probe)) continue;
        return snprintf(buf, n, "%s", probe) < (int)n;
    }
    return 0;
}

int pf_data_dir(const char *name, char *buf, size_t n)
{
    char where[3][4200];
    int k = 0;
    const char *env = getenv("PATHFINDER_DATA");
    if (env && *env) {
        snprintf(buf, n, "%s/%s", env, name);
        return is_dir(buf);
    }
    char root[4096];
    if (user_root(root, sizeof root)) snprintf(where[k++], sizeof where[0], "%s/%s", root, name);
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        if (tree_root(exe, root, sizeof root)) snprintf(where[k++], sizeof where[0], "%s/%s", root, name);
    }
    static const int in_this_library = 0;   /* an address inside it, for dladdr */
    Dl_info info;
    if (dladdr(&in_this_library, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
        char lib[4096];
        if (realpath(info.dli_fname, lib) && tree_root(lib, root, sizeof root)) {
            snprintf(where[k], sizeof where[0], "%s/%s", root, name);
            if (k == 0 || strcmp(where[k], where[k - 1]) != 0) k++;
        }
    }
    for (int i = 0; i < k; i++) {
        if (is_dir(where[i])) {
            snprintf(buf, n, "%s", where[i]);
            return 1;
        }
    }
    /* none: the places looked in, for the message */
    if (k == 0) {
        snprintf(buf, n, "%s (set PATHFINDER_DATA)", name);
        return 0;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < k && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? " or " : "", where[i]);
    return 0;
}
