/* Reading whole files, safely. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "pathfinder/io.h"

int pf_read_file(const char *path, char **buf, size_t *n, size_t max, pf_error *err)
{
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pf_fail(err, PF_EINPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pf_fail(err, PF_EINPUT, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        fclose(f);
        return pf_fail(err, PF_EINPUT, "%s: file too large (%lld bytes)", path, (long long)st.st_size);
    }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b) {
        fclose(f);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        free(b);
        return pf_fail(err, PF_EINPUT, "%s: short read", path);
    }
    b[got] = '\0';
    *buf = b;
    if (n) *n = got;
    return PF_OK;
}

