/*
 * audit.h - the audit log: DATA_DIR/audit.log, one JSON object per line, append-only.
 *
 * A record (keys in this order; "error" only when the reply carried an AWS error type):
 *   {"time":"2026-11-26T16:35:18.123Z","keyId":"AKIA…","action":"lambda:CreateFunction",
 *    "resource":"arn:aws:lambda:us-east-1:000000000000:function:app","result":"allowed",
 *    "status":201,"error":"…","requestId":"…","source":"127.0.0.1:53312"}
 * result is "allowed" (a control-plane change that passed authorization, with the status it got),
 * "denied" (authorization refused it: 403 AccessDeniedException) or "refused" (turned away before
 * authorization, e.g. a bad signature). String fields are cut at AUDIT_FIELD_MAX bytes.
 *
 * Durability: audit_append() write()s the line with O_APPEND on the calling (loop) thread, so the
 * record is in the file - readable, and safe from a daemon crash - before the reply it describes
 * is queued; a syncer thread then fdatasync()s every batch of appended lines, so the window for
 * losing a record to a power failure is one fdatasync (a few ms). The file is created mode 0600,
 * opened O_APPEND and never truncated, rewritten or rotated by nimbus.
 * Writes: loop thread only. audit_read() is blocking (run it on a worker) and may run while the
 * loop appends: it only returns complete lines.
 */
#ifndef NIMBUS_AUDIT_H
#define NIMBUS_AUDIT_H

#include <jansson.h>

#include "err.h"

#define AUDIT_FILE "audit.log"
#define AUDIT_FIELD_MAX 1024
#define AUDIT_READ_MAX (1024 * 1024) /* bytes of the file one audit_read looks at */

struct nb_audit;

struct nb_audit_record {
    uint64_t time_ms;       /* wall clock; 0 = now */
    const char *key_id;     /* the caller's access key id; NULL = unknown ("-") */
    const char *action;     /* "service:Operation" */
    const char *resource;   /* ARN or "*" */
    const char *result;     /* "allowed", "denied", "refused" */
    int status;             /* HTTP status of the reply */
    const char *error;      /* the reply's x-amzn-ErrorType, or NULL */
    const char *request_id; /* the reply's x-amzn-RequestId, or NULL */
    const char *source;     /* client address ("127.0.0.1:53312"), or NULL */
};

/* Opens (creating it mode 0600) DATA_DIR/audit.log for appending and starts the syncer thread.
 * Returns a new log (audit_close frees it) or NULL with err. */
struct nb_audit *audit_open(const char *data_dir, struct nb_err *err);
/* Syncs what was appended, stops the syncer, closes and frees a (NULL is fine). */
void audit_close(struct nb_audit *a);
/* Appends one record (see above). Returns 0, or -errno when the write failed (also logged; the
 * daemon goes on: the request it describes has already happened). Loop thread only. */
int audit_append(struct nb_audit *a, const struct nb_audit_record *r);
/* Blocks until every record appended so far is fdatasync'ed (tests, shutdown). */
void audit_sync(struct nb_audit *a);
/* The log's path (owned by a). */
const char *audit_path(const struct nb_audit *a);

/* Reads the log at path: records whose time is at or after since_ms, oldest first, at most limit
 * of them, starting at the beginning or at token (from a previous call: a byte offset). Looks at
 * AUDIT_READ_MAX bytes at most. *events: new JSON array of record objects; *next_token: malloc'd
 * offset after the last line looked at (equal to token when nothing more is there yet). A missing
 * file reads as empty. -EINVAL for a token that is not an offset within the file. Blocking. */
int audit_read(const char *path, uint64_t since_ms, const char *token, size_t limit,
               json_t **events, char **next_token, struct nb_err *err);
/* Parses the "time" form of a record ("2026-11-26T16:35:18.123Z") into ms since the epoch;
 * -EINVAL when it is not that form. */
int audit_parse_time(const char *s, uint64_t *ms);

#endif
