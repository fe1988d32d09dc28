/* Running the built tool from a test: `$PF_TEST_BUILD/pathfinder` (set by
 * tests/run.sh) in a scratch folder, capturing stdout, stderr and the exit
 * status; shell commands, whole text files, and runs cut short by SIGKILL.
 * Include after cmocka.h; the test's group setup calls tool_setup. The
 * helpers are static inline so that a test need not use all of them. */
#ifndef PATHFINDER_TESTS_TOOL_H
#define PATHFINDER_TESTS_TOOL_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pathfinder/core.h"

static char tool[1024];
static char tmpdir[200];

/* Group setup: the tool's path and a fresh scratch folder /tmp/pf_NAME_XXXXXX;
 * fails if the tool is not built. */
static inline int tool_setup(const char *name)
{
    const char *build = getenv("PF_TEST_BUILD");
    snprintf(tool, sizeof tool, "%s/pathfinder", build ? build : "build");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf_%s_XXXXXX", name);
    if (!mkdtemp(tmpdir)) return -1;
    return access(tool, X_OK) == 0 ? 0 : -1;
}

/* The exit status of a shell command (-1 if it did not exit). */
static inline int shell(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline int tool_teardown(void) { return shell("rm -rf %s", tmpdir) == 0 ? 0 : -1; }

/* For a test that compares what it computes in its own process with what
 * the tool writes, bit for bit: run on the OpenBLAS kernels the tool runs
 * on. The tool executes itself again with OPENBLAS_CORETYPE when OpenBLAS
 * fell back to its slowest kernels (src/cli/main.c); so does this, first
 * thing in main. */
static inline void tool_same_kernels(char **argv)
{
    const char *core = pf_blas_better_core();
    if (!core || getenv("OPENBLAS_CORETYPE")) return;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return;
    self[len] = '\0';
    if (setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv(self, argv);
    unsetenv("OPENBLAS_CORETYPE");
}

/* A whole text file, NUL-terminated (NULL if it cannot be read). */
static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

typedef struct {
    int status;
    char out[1 << 16];
    char err[1 << 14];
} run_result;

/* Run "pathfinder ARGS" through the shell. */
static inline void run(run_result *r, const char *fmt, ...)
{
    char args[8192], cmd[8192 + 1024 + 512], errfile[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", tool, args, errfile);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[n] = '\0';
    int st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *e = fopen(errfile, "r");
    n = e ? fread(r->err, 1, sizeof r->err - 1, e) : 0;
    r->err[n] = '\0';
    if (e) fclose(e);
}

static inline int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Milliseconds since t0 (CLOCK_MONOTONIC). */
static inline long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Start "pathfinder ARGS" (output discarded) and SIGKILL it at a random
 * moment in [lo_ms, 2 lo_ms). Returns 1 if it had already finished with
 * status 0, 0 if it was killed, -1 if it had failed. */
static inline int run_and_kill(long lo_ms, const char *fmt, ...)
{
    char args[8192], cmd[8192 + 1024 + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    /* exec: the child is the tool itself, so the signal reaches it */
    snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>&1", tool, args);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    long ms = lo_ms + rand() % (lo_ms > 0 ? lo_ms : 1);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -1;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 0;
}

/* Start "pathfinder ARGS" (output discarded) and SIGKILL it at a random
 * point of its work: once the file `watch` (one the run replaces after every
 * unit of work, such as sweep.csv) has been replaced `after` times, wait a
 * random part of the time the last unit took, then kill. So the cut lands
 * inside the (after+1)-th unit however fast the machine is. Returns 1 if
 * the run finished with status 0 first, 0 if it was killed, -1 if it
 * failed. */
static inline int run_and_kill_after(const char *watch, int after, const char *fmt, ...)
{
    char args[8192], cmd[8192 + 1024 + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>&1", tool, args);
    struct stat st0;
    int have0 = stat(watch, &st0) == 0;
    struct timespec start, last;
    clock_gettime(CLOCK_MONOTONIC, &start);
    last = start;
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int seen = 0, st;
    long unit_ms = 0;
    ino_t ino = have0 ? st0.st_ino : 0;
    struct timespec mtime = have0 ? st0.st_mtim : (struct timespec){0, 0};
    const struct timespec tick = {0, 1000000L};
    while (seen < after) {
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -1;
        struct stat s;
        if (stat(watch, &s) == 0 && (s.st_ino != ino || s.st_mtim.tv_sec != mtime.tv_sec ||
                                     s.st_mtim.tv_nsec != mtime.tv_nsec)) {
            ino = s.st_ino;
            mtime = s.st_mtim;
            seen++;
            unit_ms = ms_since(&last);
            clock_gettime(CLOCK_MONOTONIC, &last);
        }
        nanosleep(&tick, NULL);
    }
    long ms = unit_ms > 0 ? rand() % (unit_ms + 1) : 0;
    struct timespec wait = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&wait, NULL);
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -1;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 0;
}

/* Drop the seconds column (wall time) so tables can be compared. */
static inline void strip_seconds(char *csv)
{
    int col = -1, k = 0;
    char *p = csv;
    for (char *q = csv; *q && *q != '\n'; q++) {
        if (q == csv || q[-1] == ',') {
            if (strncmp(q, "seconds,", 8) == 0) col = k;
            k++;
        }
    }
    if (col < 0) return;   /* no such column: left as it is */
    char *out = csv;
    int c = 0;
    for (p = csv; *p; p++) {
        if (*p == '\n') c = -1;
        if (c != col) *out++ = *p;
        if (*p == ',' || *p == '\n') c++;
    }
    *out = '\0';
}

#endif
