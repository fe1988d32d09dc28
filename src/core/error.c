/* Error reporting: library calls fill a pf_error and return its code. */
#include <stdarg.h>
#include <string.h>

#include "pathfinder/core.h"

int pf_fail(pf_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void pf_error_clear(pf_error *err)
{
    if (err) {
        err->code = PF_OK;
        err->msg[0] = '\0';
    }
}
