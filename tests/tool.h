/* Running the built tool from a test: `$PF_TEST_BUILD/pathfinder` (set by
 * tests/run.sh) in a scratch folder, capturing stdout, stderr and the exit
 * status. Include after cmocka.h; the test's setup fills tool and tmpdir. */
#ifndef PATHFINDER_TESTS_TOOL_H
#define PATHFINDER_TESTS_TOOL_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

static char tool[1024];
static char tmpdir[200];

typedef struct {
    int status;
    char out[1 << 16];
    char err[1 << 14];
} run_result;

/* Run "pathfinder ARGS" through the shell. */
static void run(run_result *r, const char *fmt, ...)
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

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#endif
