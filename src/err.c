/*
 * err.c - filling struct nb_err. Messages are truncated to fit, never overflowed.
 */
#include "err.h"

#include <errno.h>
#include <string.h>

int err_set(struct nb_err *err, int code, const char *fmt, ...)
{
    if (code < 0)
        code = -code;
    if (code == 0)
        code = EIO;
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -code;
}

int err_prefix(struct nb_err *err, const char *fmt, ...)
{
    if (!err)
        return -EIO;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    char old[sizeof(err->msg)];
    memcpy(old, err->msg, sizeof(old));
    size_t plen = strlen(prefix), olen = strnlen(old, sizeof(old) - 1), cap = sizeof(err->msg) - 1;
    size_t n = 0;
    memcpy(err->msg, prefix, plen < cap ? plen : cap);
    n = plen < cap ? plen : cap;
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t take = olen < cap - n ? olen : cap - n;
    memcpy(err->msg + n, old, take);
    err->msg[n + take] = '\0';
    if (!err->code)
        err->code = EIO;
    return -err->code;
}

void err_clear(struct nb_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
