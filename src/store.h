/*
 * store.h - the one interface to durable state. All SQL lives behind it (store_sqlite.c today; a
 * PostgreSQL backend can implement the same calls for cluster mode). No pointer into the database
 * library's memory escapes: callbacks get strings valid only during the call.
 *
 * Durability: a call that returns 0 after a write has committed with synchronous=FULL (fsync'd).
 * Thread safety: every call may run on any thread; calls are serialised inside the store. Calls
 * block (disk); from the daemon run them on worker threads, never on the loop thread.
 *
 * Function records are opaque JSON documents (function.h defines their content), keyed by name.
 */
#ifndef NIMBUS_STORE_H
#define NIMBUS_STORE_H

#include "err.h"

struct nb_store;

/* Opens (creating if needed) DATA_DIR/nimbus.db: WAL mode, synchronous=FULL, schema migrated.
 * Returns a store freed with store_close, or NULL with err. */
struct nb_store *store_open(const char *data_dir, struct nb_err *err);
void store_close(struct nb_store *st);

/* Inserts a function record; -EEXIST if name exists. */
int store_function_insert(struct nb_store *st, const char *name, const char *doc,
                          struct nb_err *err);
/* Replaces an existing record; -ENOENT if absent. */
int store_function_update(struct nb_store *st, const char *name, const char *doc,
                          struct nb_err *err);
/* Reads one record into *doc (malloc'd, caller frees); -ENOENT if absent. */
int store_function_get(struct nb_store *st, const char *name, char **doc, struct nb_err *err);
/* Deletes; -ENOENT if absent. */
int store_function_delete(struct nb_store *st, const char *name, struct nb_err *err);
/* Calls cb for each record in name order (bytewise); a non-zero return from cb stops and is
 * returned. The records are read first and cb runs outside the store's lock, so cb may call the
 * store; it sees the records as they were when the call started. */
typedef int (*nb_store_function_cb)(void *data, const char *name, const char *doc);
int store_function_each(struct nb_store *st, nb_store_function_cb cb, void *data,
                        struct nb_err *err);

/* SQS: queues and messages live in a second database file, DATA_DIR/sqs.db, opened as a store
 * of its own (same durability and threading rules). Queue records are opaque JSON documents
 * keyed by queue name; message records are (queue, seq) with an opaque JSON document and the
 * three fields that change on receive. Only sqs.c's commit worker writes them. */
struct nb_store *store_sqs_open(const char *data_dir, struct nb_err *err);

enum nb_sqs_rec_kind {
    NB_SQS_PUT_QUEUE, /* queue, doc: insert or replace */
    NB_SQS_DEL_QUEUE, /* queue (its messages are removed by a NB_SQS_PURGE) */
    NB_SQS_PUT_MSG,   /* queue, seq, doc, visible_ms, receive_count, first_receive_ms */
    NB_SQS_DEL_MSG,   /* queue, seq */
    NB_SQS_UPD_MSG,   /* queue, seq, visible_ms, receive_count, first_receive_ms */
    NB_SQS_PURGE,     /* queue: every message */
};

/* One change; strings borrowed for the call. */
struct nb_sqs_rec {
    enum nb_sqs_rec_kind kind;
    const char *queue;
    const char *doc;
    uint64_t seq;
    int64_t visible_ms, receive_count, first_receive_ms;
};

/* Applies recs[0..n) in order in one transaction (one fsync): all or nothing. */
int store_sqs_write(struct nb_store *st, const struct nb_sqs_rec *recs, size_t n,
                    struct nb_err *err);
/* Calls qcb for every queue (name order), then mcb for every message (queue, seq order). The
 * callbacks run with the store's lock held and must not call the store; strings are valid only
 * during the call. For start-up only. */
typedef void (*nb_store_sqs_queue_cb)(void *data, const char *name, const char *doc);
typedef void (*nb_store_sqs_msg_cb)(void *data, const struct nb_sqs_rec *msg);
int store_sqs_load(struct nb_store *st, nb_store_sqs_queue_cb qcb, nb_store_sqs_msg_cb mcb,
                   void *data, struct nb_err *err);

#endif
