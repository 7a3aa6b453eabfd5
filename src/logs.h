/*
 * logs.h - functions' own log lines (their stdout/stderr plus START/END/REPORT), kept apart from
 * the daemon's log: append-only files DATA_DIR/logs/<function>/<YYYY-MM-DD>.log (UTC day), one
 * line per event: "<epoch ms>\t<log stream>\t<message>\n".
 *
 * Writes are buffered per function in memory and flushed by a timer (100 ms) or when a buffer
 * passes 64 KiB, so the invoke path makes no file syscalls. Reads (for `nimbus logs`) flush first.
 * Loop thread only for writes; logs_read is blocking and bounded (1 MiB per call).
 */
#ifndef NIMBUS_LOGS_H
#define NIMBUS_LOGS_H

#include <jansson.h>
#include <uv.h>

#include "err.h"

struct nb_logs;

struct nb_logs *logs_new(uv_loop_t *loop, const char *data_dir, struct nb_err *err);
/* Flushes everything and frees; closes its timer (runs the loop's close callbacks later). */
void logs_free(struct nb_logs *lg);
void logs_write(struct nb_logs *lg, const char *function, const char *stream, uint64_t ts_ms,
                const char *msg, size_t len);
void logs_flush(struct nb_logs *lg);
/* Events of function from since_ms on, or after token (from a previous call) when token is set.
 * *events: new JSON array of {"timestamp","message"}; *next_token: malloc'd. -ENOENT when the
 * function has no logs at all; -EINVAL for a malformed token. */
int logs_read(struct nb_logs *lg, const char *function, uint64_t since_ms, const char *token,
              json_t **events, char **next_token, struct nb_err *err);

#endif
