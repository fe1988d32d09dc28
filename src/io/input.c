/* Opening input files. Every reader opens through here, so none of them can
 * hang on a FIFO or a device: the open itself never blocks (O_NONBLOCK), and
 * anything that is not a regular file is refused before a byte is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathfinder/io.h"

int pf_open_input_fd(const char *path, int *fd, uint64_t *size, pf_error *err)
{
    *fd = -1;
    /* A FIFO with no writer would block a plain open forever. */
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (d < 0) return pf_fail(err, PF_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(d, &st) != 0) {
        int e = errno;
        close(d);
        return pf_fail(err, PF_EINPUT, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0) {
        close(d);
        return pf_fail(err, PF_EINPUT, "%s: not a regular file", path);
    }
    /* Reads of a regular file block as usual from here on. */
    int flags = fcntl(d, F_GETFL);
    if (flags < 0 || fcntl(d, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return pf_fail(err, PF_ERUNTIME, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = d;
    if (size) *size = (uint64_t)st.st_size;
    return PF_OK;
}

int pf_open_input(const char *path, FILE **f, uint64_t *size, pf_error *err)
{
    *f = NULL;
    int fd;
    int rc = pf_open_input_fd(path, &fd, size, err);
    if (rc) return rc;
    FILE *s = fdopen(fd, "rb");
    if (!s) {
        int e = errno;
        close(fd);
        return pf_fail(err, PF_ERUNTIME, "%s: cannot open: %s", path, strerror(e));
    }
    *f = s;
    return PF_OK;
}

int pf_read_file(const char *path, char **buf, size_t *n, size_t max, pf_error *err)
{
    *buf = NULL;
    FILE *f;
    uint64_t size;
    int rc = pf_open_input(path, &f, &size, err);
    if (rc) return rc;
    if (size > max) {
        fclose(f);
        return pf_fail(err, PF_EINPUT, "%s: file too large (%llu bytes)", path,
                       (unsigned long long)size);
    }
    char *b = malloc((size_t)size + 1);
    if (!b) {
        fclose(f);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(b);
        return pf_fail(err, PF_EINPUT, "%s: short read", path);
    }
    b[got] = '\0';
    *buf = b;
    if (n) *n = got;
    return PF_OK;
}
