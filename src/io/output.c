/* Writing results: every file the tool writes goes through here, to a
 * temporary name beside it and then renamed into place, so a crash never
 * leaves a half-written result. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pathfinder/io.h"

int pf_write_file_atomic(const char *path, const void *buf, size_t n, pf_error *err)
{
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size);
    if (!tmp) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());

    int saved = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        saved = errno;
        free(tmp);
        return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(saved));
    }
    errno = 0;
    if (n > 0 && fwrite(buf, 1, n, f) != n) saved = errno ? errno : EIO;
    if (!saved && fflush(f) != 0) saved = errno ? errno : EIO;
    if (!saved && fsync(fileno(f)) != 0) saved = errno;
    if (fclose(f) != 0 && !saved) saved = errno ? errno : EIO;
    if (!saved && rename(tmp, path) != 0) saved = errno;
    if (saved) {
        remove(tmp);
        free(tmp);
        return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(saved));
    }
    free(tmp);

    /* Make the rename itself durable; a failure here loses nothing written. */
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else
        return PF_OK;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return PF_OK;
}
