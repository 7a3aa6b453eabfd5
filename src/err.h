/*
 * err.h - the one error contract of nimbus.
 *
 * A fallible function returns int (0, or a negative errno-style code) or a pointer (NULL on
 * failure) and takes `struct nb_err *err` as its last argument. On failure it fills err once with
 * err_set() (which returns the negative code, so `return err_set(err, ENOENT, ...)` reads well);
 * callers on the way up may add context with err_prefix(). On success err is untouched.
 * The error is reported once, at a boundary: the CLI's main, the HTTP error mapping, or a daemon
 * log line. err may be NULL when the caller does not want the message.
 *
 * Codes used across modules (the API layer maps them to AWS error types):
 *   EINVAL  bad input from outside        -> InvalidParameterValueException (400)
 *   ENOENT  no such resource              -> ResourceNotFoundException (404)
 *   EEXIST  resource exists / conflict    -> ResourceConflictException (409)
 *   E2BIG   payload or package too large  -> RequestTooLargeException (413)
 *   EAGAIN  over a concurrency limit      -> TooManyRequestsException (429)
 *   other   platform failure              -> ServiceException (500)
 */
#ifndef NIMBUS_ERR_H
#define NIMBUS_ERR_H

#include "util.h"

struct nb_err {
    int code;       /* positive errno-style code; 0 = no error recorded */
    char msg[6144]; /* fits Lambda messages that quote a whole 4 KB environment */
};

/* Records code and message; returns -code. code may be given positive or negative. */
int err_set(struct nb_err *err, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Prepends "prefix: " to the message; returns -err->code (or -EIO if no code was set). */
int err_prefix(struct nb_err *err, const char *fmt, ...) PRINTF_LIKE(2, 3);
void err_clear(struct nb_err *err);

#endif
