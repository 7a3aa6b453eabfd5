/*
 * esm.h - event source mappings: an SQS queue of this server feeding a Lambda function.
 *
 * A mapping (struct nb_esm) lives in memory in the daemon's table (d->esm), loaded at start from
 * the store (objects of kind "esm" under their function, keyed by UUID: they go when the function
 * goes). Pollers (esm.c) are event-driven: the queue service's watch (sqs_watch) says when a
 * mapped queue has visible messages; a mapping then receives up to BatchSize (waiting up to
 * MaximumBatchingWindowInSeconds to fill a batch), invokes the function synchronously with the
 * SQS event (LAMBDA.md §4.3) and deletes what succeeded, durably. More batches run at once while
 * messages keep coming, up to ScalingConfig.MaximumConcurrency and what admission allows (a
 * throttle backs off); with nothing visible nothing runs and no timer is armed. A message is
 * deleted only after an invocation that succeeded for it.
 * The API (Create/Get/Update/Delete/ListEventSourceMappings) is api_esm.c. Loop thread only.
 */
#ifndef NIMBUS_ESM_H
#define NIMBUS_ESM_H

#include <jansson.h>
#include <uv.h>

#include "err.h"

struct nb_daemon;
struct nb_buf;
struct nb_esm_table;

#define NB_ESM_DEFAULT_BATCH 10
#define NB_ESM_MAX_CONCURRENCY 1000

struct nb_esm {
    char uuid[37];
    char *queue_arn;
    char *function;  /* name */
    char *qualifier; /* NULL = unqualified */
    int batch_size;
    int window_s;
    int max_conc; /* ScalingConfig.MaximumConcurrency; 0 = not set */
    bool report_failures;
    bool enabled;
    bool fifo;
    double last_modified; /* epoch seconds */
    char last_result[96];
    /* poller state (esm.c) */
    struct nb_esm_table *t;
    int inflight;       /* batches invoked and not finished (deletes included) */
    json_t *pending;    /* messages received for the next batch (window open), or NULL */
    uv_timer_t timer;   /* batching window or throttle backoff */
    bool timer_window;  /* the timer closes the batching window */
    bool timer_backoff; /* the timer ends a throttle backoff */
    bool window_due;    /* the window closed: send what pending holds */
    int backoff_ms;
    bool deleted, closed;
    struct nb_esm *next;
};

struct nb_esm_table {
    struct nb_daemon *d;
    struct nb_esm *head;
    bool stopping;
    bool loading; /* esm_start: mappings poll once the loop runs */
    struct {
        uint64_t batches, records, deleted, batch_failures, record_failures, throttles;
    } n;
};

/* Loads the stored mappings (blocking: start-up, after the queue service opened) and starts
 * watching their queues. */
int esm_start(struct nb_daemon *d, struct nb_err *err);
/* Shutdown: no new batches; timers closed. */
void esm_stop(struct nb_daemon *d);
/* Frees everything (after the loop ended). */
void esm_free(struct nb_daemon *d);

/* The table's mappings (esm.c); a new one consumes m and starts polling. */
void esm_install(struct nb_daemon *d, struct nb_esm *m);
/* Removes m from the table (freed once its batches finished). */
void esm_remove(struct nb_daemon *d, struct nb_esm *m);
/* Settings of m changed (enabled, batch...): poll again if there is work. */
void esm_changed(struct nb_esm *m);
struct nb_esm *esm_find(struct nb_daemon *d, const char *uuid);
/* m as EventSourceMappingConfiguration (new reference); state NULL = its steady state. */
json_t *esm_json(struct nb_daemon *d, const struct nb_esm *m, const char *state);
/* The stored record of m (new reference) and back (NULL when unreadable; a new mapping). */
json_t *esm_record(const struct nb_esm *m);
struct nb_esm *esm_from_record(const char *function, const char *uuid, const char *doc);
void esm_release(struct nb_esm *m);

/* Parses a function's ReportBatchItemFailures response (outside input; fuzz_esm_response.c)
 * for the batch msgs (ReceiveMessage shape): *failed gets a new array of the message ids it
 * names. False when it is malformed -- not JSON, not an object or null, batchItemFailures not a
 * list, an itemIdentifier null, empty or not in the batch --: the whole batch failed, as Lambda.
 * An empty body, null, {} or an empty/null list mean every message succeeded. */
bool esm_batch_failures(const char *body, size_t len, json_t *msgs, json_t **failed);

/* Appends the nimbus_esm_* families (Prometheus text) to b. */
void esm_metrics_render(struct nb_daemon *d, struct nb_buf *b);

#endif
