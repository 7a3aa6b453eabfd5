/*
 * async.h - asynchronous (Event) invocations: durable acceptance, delivery with Lambda's retry
 * rules, destinations, and the event invoke configs that tune them.
 *
 * Life of an event: async_accept() queues its row for the next group commit (async.c); once that
 * transaction is fsync'd the client gets 202 and the event is ready. The dispatcher (loop) takes
 * ready events up to async_concurrency at a time: admission (pool_admit; a refusal is a throttle,
 * not a function error), a durable mark "attempt n started", then an invocation with no HTTP
 * client whose on_done callback applies async_sched.h's rules: done, retry later (timer heap),
 * or failed. A finished event's destination record (if configured) is inserted in the same
 * transaction that deletes the event, with its depth (its place in the chain of records, for
 * the recursive loop detection) stored in its row. At start every stored event is loaded and
 * delivered again (at-least-once); those marked in flight count as possible duplicates.
 *
 * Ownership: struct nb_async hangs off the daemon (d->async) and owns every in-memory event and
 * config; loop thread only, except the store calls it hands to libuv's worker threads.
 */
#ifndef NIMBUS_ASYNC_H
#define NIMBUS_ASYNC_H

#include <jansson.h>
#include <stdint.h>

#include "http.h"
#include "router.h"

struct nb_daemon;
struct nb_fn;
struct nb_buf;

/* Event invoke config of one (function, qualifier); the unqualified one is "$LATEST". */
struct nb_eic {
    char *function, *qualifier;
    int max_retries;  /* MaximumRetryAttempts, 0..2; -1 = not set (default 2) */
    int max_age_s;    /* MaximumEventAgeInSeconds, 60..21600; -1 = not set (default 21600) */
    char *on_success; /* destination ARN or NULL */
    char *on_failure;
    double last_modified; /* epoch seconds */
    struct nb_eic *next;
};

/* Every config (the control-plane writes to them go through the daemon's serial store-write
 * queue, serial_work.h, so memory and disk agree). */
struct nb_eic_table {
    struct nb_eic *head;
};

#define NB_ASYNC_PAYLOAD_MAX 1048576
#define NB_ASYNC_DEFAULT_RETRIES 2
#define NB_ASYNC_DEFAULT_AGE_S 21600
/* Destination records in one chain before the next is not sent (Lambda's recursive loop
 * detection stops after 16 invocations). */
#define NB_ASYNC_DESTINATION_DEPTH_MAX 16

/* Loads event invoke configs and pending events (blocking: start-up only, before the loop runs)
 * and arms the dispatcher. */
int async_start(struct nb_daemon *d, struct nb_err *err);
/* Shutdown (after the drain): no new attempts; timers closed; queued writes are committed (on the
 * loop thread if no commit is in flight, else by the commits that follow it), so a clean stop
 * leaves only unfinished events in the store. */
void async_stop(struct nb_daemon *d);
/* Frees everything (after the loop ended). */
void async_free(struct nb_daemon *d);

/* Accepts an Event invocation of fn (validated by the caller) under qualifier (NULL =
 * unqualified; stored as given and resolved at each attempt). Takes req's body. Replies 202 with
 * x-amzn-RequestId once the event is durable, 500 if the commit failed, 429 when the queue is
 * full. */
void async_accept(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                  struct nb_http_req *req);

/* Where an internal event comes from (schedules): request_id ("" = a random one) becomes the
 * event's request id; tick_rule/tick_target/tick_s, when tick_rule is set, are recorded as that
 * target's last fired tick in the transaction that makes the event durable (store.h). */
struct nb_async_origin {
    char request_id[37];
    const char *tick_rule, *tick_target;
    int64_t tick_s;
};
/* Submits an Event invocation of function:qualifier (qualifier NULL = unqualified) from inside
 * the daemon, with no HTTP client: consumes payload (malloc'd, NUL-terminated, len bytes). The
 * event is durable after the next group commit and then delivered like any other (retries,
 * destinations). o is borrowed (may be NULL). 0, or -EAGAIN when the queue is full (or the
 * payload exceeds NB_ASYNC_PAYLOAD_MAX), -ESHUTDOWN when stopping; payload is freed either way.
 * A failed commit is logged (the event is lost; its tick is not recorded). */
int async_submit(struct nb_daemon *d, const char *function, const char *qualifier, char *payload,
                 size_t len, const struct nb_async_origin *o, struct nb_err *err);
/* Records that schedule target (rule, target) is done with every tick up to tick_s without an
 * event (a tick passed over on purpose: schedule_catch_up = skip, a missing function), in the
 * next group commit: the transaction that records the ticks of submitted events (store.h,
 * STORE_EVENT_TICK). Strings are copied. 0, or -ESHUTDOWN when stopping; a failed commit is
 * logged (the mark is lost). */
int async_record_tick(struct nb_daemon *d, const char *rule, const char *target, int64_t tick_s,
                      struct nb_err *err);

/* Appends the nimbus_async_* families (Prometheus text) to b. */
void async_metrics_render(struct nb_daemon *d, struct nb_buf *b);

/* Event invoke configs: the table and the API (api_async.c). */
/* The config for (function, qualifier or NULL = "$LATEST"), or NULL. Borrowed. */
const struct nb_eic *async_config_find(struct nb_daemon *d, const char *function,
                                       const char *qualifier);
/* Drops the configs of a deleted function from memory (the store deletes them with it). */
void async_config_forget(struct nb_daemon *d, const char *function);
/* Drops the config of one deleted version or alias from memory (the store deleted its row in
 * the transaction that deleted the version or alias). */
void async_config_forget_qualifier(struct nb_daemon *d, const char *function,
                                   const char *qualifier);
/* Loads every stored config whose function and qualifier exist (start-up). */
int async_config_load(struct nb_daemon *d, struct nb_err *err);
void async_config_free(struct nb_daemon *d);
/* The /2019-09-25/functions/{FunctionName}/event-invoke-config routes. */
void api_async_routes(struct nb_router *r, struct nb_daemon *d);

/* Event invoke configs: pure functions over outside input (async_config.c; fuzzed). */
/* Parses a Put (cur NULL) or Update (cur = the existing config) body for function:qualifier into
 * a new config (*out, free with async_config_release). Put: unnamed fields are unset; Update:
 * unnamed fields keep cur's values. Destinations are checked for form only (existence is the
 * caller's). On error returns -EINVAL with *type = the AWS error type (400) and err's message. */
int async_config_parse(const char *region, const char *account, const char *function,
                       const char *qualifier, json_t *body, const struct nb_eic *cur,
                       struct nb_eic **out, const char **type, struct nb_err *err);
/* FunctionEventInvokeConfig as Lambda answers it (also the stored record). New reference. */
json_t *async_config_json(const char *region, const char *account, const struct nb_eic *c);
/* A config from its stored record; NULL when unreadable. */
struct nb_eic *async_config_from_record(const char *function, const char *qualifier,
                                        const char *doc);
void async_config_release(struct nb_eic *c);
/* Parses a destination ARN naming a Lambda function of region and account into *name and
 * *qualifier (malloc'd; qualifier may be NULL) and returns 0; an SQS queue ARN of region and
 * account returns 1 (esm: *name and *qualifier stay NULL; whether the queue exists is the
 * caller's check). -EINVAL with Lambda's message for anything else: topics, event buses and
 * buckets are not supported yet (the hook for them is here). */
int async_destination_parse(const char *region, const char *account, const char *arn, char **name,
                            char **qualifier, struct nb_err *err);

#endif
