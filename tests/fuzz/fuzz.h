/* Shared by the libFuzzer harnesses: the parsers take paths, so each input
 * is written to an in-memory file (memfd) and the parser is given its
 * /proc/self/fd path. Include this first: memfd_create needs _GNU_SOURCE. */
#ifndef PF_FUZZ_H
#define PF_FUZZ_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pathfinder/io.h"

/* slot's file, holding exactly the n bytes at data; returns its path. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t n)
{
    static int fds[2] = {-1, -1};
    static char paths[2][64];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("pf-fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) abort();
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    if (n && pwrite(fds[slot], data, n, 0) != (ssize_t)n) abort();
    return paths[slot];
}

/* The error contract every loader keeps: PF_OK, or PF_EINPUT / PF_ERUNTIME
 * with one line that starts with the file's path (either of two). A broken
 * contract is a crash, so the fuzzer reports it. */
static inline void fuzz_check_error(int rc, const pf_error *err, const char *path, const char *path2)
{
    if (rc == PF_OK) return;
    if (rc != PF_EINPUT && rc != PF_ERUNTIME) abort();
    if (err->code != rc || strchr(err->msg, '\n')) abort();
    int named = strncmp(err->msg, path, strlen(path)) == 0 ||
                (path2 && strncmp(err->msg, path2, strlen(path2)) == 0);
    if (!named) abort();
}

#endif
