/* Writing results: every file the tool writes goes through here.
 *
 * A regular file (or a new one) is written to a temporary name beside it,
 * flushed to disk and renamed into place, so a crash or a full disk never
 * leaves a half-written result and the previous version stays until the
 * new one is complete. The temporary name is PATH.tmp.PID.SEQ, unique per
 * process and per write, so two writers never share one.
 *
 * What is not a regular file is never replaced:
 *  - a symbolic link is followed, and its target written atomically beside
 *    the target (the link stays a link);
 *  - a character device (/dev/null, a terminal) or a FIFO with a reader is
 *    written straight to, so `--out /dev/null` discards the result;
 *  - a FIFO nobody reads, a directory, a block device or a socket is
 *    refused (PF_EINPUT).
 *
 * Run folders are locked (flock on DIR/.lock) by the process that works in
 * them, so two processes never mix their results in one folder; inside a
 * locked folder every temporary file is a leftover of a killed run and is
 * removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathfinder/io.h"

enum { MAX_LINKS = 40 };

/* dirname of path into dir[n] ("." for a bare name). */
static int parent_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return snprintf(dir, n, ".") >= (int)n ? -1 : 0;
    if (slash == path) return snprintf(dir, n, "/") >= (int)n ? -1 : 0;
    size_t len = (size_t)(slash - path);
    if (len >= n) return -1;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return 0;
}

/* Follow symbolic links from path to what they finally name (which may not
 * exist yet), into out[n]. */
static int resolve_links(const char *path, char *out, size_t n, pf_error *err)
{
    if (snprintf(out, n, "%s", path) >= (int)n) return pf_fail(err, PF_EINPUT, "%s: path too long", path);
    for (int hops = 0; hops < MAX_LINKS; hops++) {
        struct stat st;
        if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode)) return PF_OK;
        char link[PATH_MAX], next[PATH_MAX], dir[PATH_MAX];
        ssize_t len = readlink(out, link, sizeof link - 1);
        if (len < 0) return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(errno));
        link[len] = '\0';
        if (link[0] == '/' || parent_of(out, dir, sizeof dir) != 0) {
            if (snprintf(next, sizeof next, "%s", link) >= (int)sizeof next)
                return pf_fail(err, PF_EINPUT, "%s: link target too long", path);
        } else if (snprintf(next, sizeof next, "%s/%s", dir, link) >= (int)sizeof next) {
            return pf_fail(err, PF_EINPUT, "%s: link target too long", path);
        }
        if (snprintf(out, n, "%s", next) >= (int)n) return pf_fail(err, PF_EINPUT, "%s: path too long", path);
    }
    return pf_fail(err, PF_EINPUT, "%s: too many levels of symbolic links", path);
}

/* Write all n bytes to fd; 0 or an errno. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Straight to a character device or a FIFO with a reader. */
static int write_straight(const char *path, const char *shown, int fifo, const void *buf, size_t n,
                          pf_error *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
    if (fd < 0) {
        if (fifo && errno == ENXIO)
            return pf_fail(err, PF_EINPUT, "%s: a FIFO that no process reads; refusing to block on it",
                           shown);
        return pf_fail(err, PF_ERUNTIME, "%s: %s", shown, strerror(errno));
    }
    if (fifo) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int e = write_all(fd, buf, n);
    if (close(fd) != 0 && !e && errno != EINTR) e = errno;
    if (e) return pf_fail(err, PF_ERUNTIME, "%s: %s", shown, strerror(e));
    return PF_OK;
}

static atomic_ulong temp_counter;

int pf_temp_name(const char *path, char *tmp, size_t n)
{
    unsigned long seq = atomic_fetch_add(&temp_counter, 1);
    return snprintf(tmp, n, "%s.tmp.%ld.%lu", path, (long)getpid(), seq) >= (int)n ? -1 : 0;
}

int pf_output_target(const char *path, char *target, size_t n, int *kind, pf_error *err)
{
    int rc = resolve_links(path, target, n, err);
    if (rc) return rc;
    struct stat st;
    if (stat(target, &st) != 0) {
        /* missing, or under something that is not a folder: the folder check says which */
        if (errno != ENOENT && errno != ENOTDIR)
            return pf_fail(err, PF_EINPUT, "%s: %s", path, strerror(errno));
        *kind = PF_OUT_NEW;
        return PF_OK;
    }
    if (S_ISREG(st.st_mode)) *kind = PF_OUT_REGULAR;
    else if (S_ISCHR(st.st_mode)) *kind = PF_OUT_DEVICE;
    else if (S_ISFIFO(st.st_mode)) *kind = PF_OUT_FIFO;
    else if (S_ISDIR(st.st_mode)) return pf_fail(err, PF_EINPUT, "%s: is a directory", path);
    else
        return pf_fail(err, PF_EINPUT, "%s: not a regular file, FIFO or character device; refusing "
                       "to replace it", path);
    return PF_OK;
}

int pf_write_file_atomic(const char *path, const void *buf, size_t n, pf_error *err)
{
    char target[PATH_MAX], tmp[PATH_MAX + 64];
    int kind;
    int rc = pf_output_target(path, target, sizeof target, &kind, err);
    if (rc) return rc;
    if (kind == PF_OUT_DEVICE || kind == PF_OUT_FIFO)
        return write_straight(target, path, kind == PF_OUT_FIFO, buf, n, err);
    if (pf_temp_name(target, tmp, sizeof tmp) != 0) return pf_fail(err, PF_EINPUT, "%s: path too long", path);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(errno));
    int e = write_all(fd, buf, n);
    if (!e && fsync(fd) != 0 && errno != EINVAL) e = errno;
    if (close(fd) != 0 && !e && errno != EINTR) e = errno;
    if (!e && rename(tmp, target) != 0) e = errno;
    if (e) {
        unlink(tmp);
        return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(e));
    }
    /* Make the rename itself durable; a failure here loses nothing written. */
    char dir[PATH_MAX];
    if (parent_of(target, dir, sizeof dir) == 0) {
        int dfd = open(dir, O_RDONLY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return PF_OK;
}

/* ---- folders ------------------------------------------------------------------ */

/* mkdir of one folder that may exist already. */
static int make_one_dir(const char *whole, const char *dir, pf_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pf_fail(err, errno == EACCES || errno == EROFS ? PF_EINPUT : PF_ERUNTIME,
                       "%s: cannot create %s: %s", whole, dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf_fail(err, PF_EINPUT, "%s: %s is not a folder", whole, dir);
    return PF_OK;
}

int pf_make_dirs(const char *path, pf_error *err)
{
    char buf[PATH_MAX];
    if (!*path) return pf_fail(err, PF_EINPUT, "empty folder name");
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return pf_fail(err, PF_EINPUT, "%s: path too long", path);
    /* like mkdir -p: every prefix that ends before a slash, then the whole */
    for (size_t i = 1; buf[i]; i++) {
        if (buf[i] != '/' || buf[i - 1] == '/') continue;
        buf[i] = '\0';
        int rc = make_one_dir(path, buf, err);
        buf[i] = '/';
        if (rc) return rc;
    }
    return make_one_dir(path, buf, err);
}

int pf_check_output_file(const char *path, pf_error *err)
{
    char target[PATH_MAX], dir[PATH_MAX];
    int kind;
    int rc = pf_output_target(path, target, sizeof target, &kind, err);
    if (rc) return rc;
    if (kind == PF_OUT_DEVICE || kind == PF_OUT_FIFO) return PF_OK;
    if (parent_of(target, dir, sizeof dir) != 0) return pf_fail(err, PF_EINPUT, "%s: path too long", path);
    if ((rc = pf_make_dirs(dir, err))) return rc;
    if (access(dir, W_OK) != 0)
        return pf_fail(err, PF_EINPUT, "%s: folder %s is not writable", path, dir);
    if (kind == PF_OUT_REGULAR && access(target, W_OK) != 0 && errno != EACCES)
        return pf_fail(err, PF_EINPUT, "%s: %s", path, strerror(errno));
    return PF_OK;
}

/* ---- locks ------------------------------------------------------------------ */

struct pf_dir_lock {
    int fd;
};

/* Lock the file path (made if missing) exclusively or shared, without
 * waiting; what names it in messages. An exclusive holder writes its pid
 * there for the message a second process gets. */
static int lock_file(const char *path, const char *what, int shared, pf_dir_lock **lock, pf_error *err)
{
    *lock = NULL;
    const char *dir = what;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0)
        return pf_fail(err, errno == EACCES || errno == EROFS ? PF_EINPUT : PF_ERUNTIME,
                       "%s: cannot lock the folder: %s", dir, strerror(errno));
    if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        char holder[32] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return pf_fail(err, PF_EINPUT, "%s: in use by another pathfinder process%s%s%s; wait for "
                           "it to finish or use another folder", dir, *holder ? " (pid " : "",
                           holder, *holder ? ")" : "");
        return pf_fail(err, PF_ERUNTIME, "%s: cannot lock the folder: %s", dir, strerror(e));
    }
    /* who holds it, for the message a second process gets */
    char me[32];
    int len = snprintf(me, sizeof me, "%ld\n", (long)getpid());
    if (!shared && ftruncate(fd, 0) == 0 && pwrite(fd, me, (size_t)len, 0) < 0) { /* the lock holds anyway */ }
    pf_dir_lock *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory", dir);
    }
    l->fd = fd;
    *lock = l;
    return PF_OK;
}

static int lock_dir(const char *dir, int shared, pf_dir_lock **lock, pf_error *err)
{
    *lock = NULL;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path)
        return pf_fail(err, PF_EINPUT, "%s: path too long", dir);
    return lock_file(path, dir, shared, lock, err);
}

int pf_dir_lock_acquire(const char *dir, pf_dir_lock **lock, pf_error *err)
{
    return lock_dir(dir, 0, lock, err);
}

int pf_dir_lock_shared(const char *dir, pf_dir_lock **lock, pf_error *err)
{
    return lock_dir(dir, 1, lock, err);
}

int pf_file_lock_acquire(const char *path, pf_dir_lock **lock, pf_error *err)
{
    return lock_file(path, path, 0, lock, err);
}

void pf_dir_lock_release(pf_dir_lock *lock)
{
    if (!lock) return;
    close(lock->fd);
    free(lock);
}

/* NAME.tmp.PID or NAME.tmp.PID.SEQ: a temporary file of pf_write_file_atomic. */
static int is_temp_name(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    const char *p = t + 5;
    int dots = 0, digits = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') digits++;
        else if (*p == '.' && digits && !dots) dots++, digits = 0;
        else return 0;
    }
    return digits > 0;
}

int pf_remove_stale_temps(const char *dir, int depth, long *removed, pf_error *err)
{
    DIR *d = opendir(dir);
    if (!d) return pf_fail(err, PF_ERUNTIME, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = PF_OK;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0) rc = pf_remove_stale_temps(path, depth - 1, removed, err);
        } else if (S_ISREG(st.st_mode) && is_temp_name(e->d_name) && unlink(path) == 0 && removed) {
            (*removed)++;
        }
    }
    closedir(d);
    return rc;
}

int pf_run_folder_open(const char *dir, pf_dir_lock **lock, pf_error *err)
{
    *lock = NULL;
    int rc = pf_make_dirs(dir, err);
    if (rc) return rc;
    if (access(dir, W_OK) != 0) return pf_fail(err, PF_EINPUT, "%s: folder is not writable", dir);
    if ((rc = pf_dir_lock_acquire(dir, lock, err))) return rc;
    /* nobody else writes here now: every temporary file is a killed run's */
    if ((rc = pf_remove_stale_temps(dir, 1, NULL, err))) {
        pf_dir_lock_release(*lock);
        *lock = NULL;
    }
    return rc;
}
