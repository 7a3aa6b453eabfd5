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
 * Published versions are records of the same form keyed by (function, number); a deleted
 * version's number stays used, so numbers are never reused. Objects attached to a function under
 * a qualifier (kind "alias" keyed by alias name, "provisioned" keyed by version or alias) are
 * opaque documents too. Deleting a function deletes its versions and objects in the same
 * transaction.
 */
#ifndef NIMBUS_STORE_H
#define NIMBUS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Deletes; -ENOENT if absent. Also deletes the function's event invoke configs. */
int store_function_delete(struct nb_store *st, const char *name, struct nb_err *err);
/* Calls cb for each record in name order (bytewise); a non-zero return from cb stops and is
 * returned. The records are read first and cb runs outside the store's lock, so cb may call the
 * store; it sees the records as they were when the call started. */
typedef int (*nb_store_function_cb)(void *data, const char *name, const char *doc);
int store_function_each(struct nb_store *st, nb_store_function_cb cb, void *data,
                        struct nb_err *err);

/* ---- access keys (keys.c) ---- */
/* One access key as stored: the secret only encrypted (keys.c seals it). Strings borrowed. */
struct nb_store_key {
    const char *id;
    const char *secret_sealed; /* keys.c's sealed form; never the plaintext */
    const char *policy;        /* JSON policy text or NULL */
    const char *description;   /* never NULL ("" for none) */
    bool root;
    int64_t created_ms;
};
/* Inserts a key; -EEXIST if its id exists. */
int store_key_insert(struct nb_store *st, const struct nb_store_key *k, struct nb_err *err);
/* Deletes a key; -ENOENT if absent. */
int store_key_delete(struct nb_store *st, const char *id, struct nb_err *err);
/* Calls cb for every key in id order (strings valid during the call only; like
 * store_function_each, read first and called outside the lock). Non-zero from cb stops. */
typedef int (*nb_store_key_cb)(void *data, const struct nb_store_key *k);
int store_key_each(struct nb_store *st, nb_store_key_cb cb, void *data, struct nb_err *err);
/*
 * Asynchronous invocations (async.c). An event row is written once accepted and deleted once
 * finished; ids are chosen by the caller (unique, increasing). MARK records that an attempt
 * (number `attempts`) is about to start and sets inflight; UNMARK records the function errors so
 * far and clears it, so an event found with inflight set at start-up may have run already.
 * TICK writes no event: it records a schedule target's last tick alone (a tick passed over on
 * purpose, scheduler.c). store_events_write applies a batch in ONE transaction (all or nothing)
 * with one fsync: the group commit of async.c. Strings and payload are borrowed for the call.
 */
struct nb_store_event {
    int64_t id;
    const char *request_id;
    const char *function;
    const char *qualifier; /* NULL = unqualified */
    const void *payload;
    size_t payload_len;
    int64_t created_ms;
    int attempts; /* attempts started */
    int errors;   /* attempts that ended in a function error */
    int depth;    /* destination records in its chain before it (0: a client's event) */
    bool inflight;
    /* INSERT, optional: the schedule tick this event delivers. When tick_rule is set, the same
     * transaction records tick_s as the last tick (rule, target) fired (store_tick_each), so an
     * event and its tick are durable together or not at all. TICK: required, and nothing else
     * is read. */
    const char *tick_rule, *tick_target;
    int64_t tick_s;
};
enum nb_store_event_op {
    STORE_EVENT_INSERT, /* every field */
    STORE_EVENT_MARK,   /* id, attempts */
    STORE_EVENT_UNMARK, /* id, errors */
    STORE_EVENT_DELETE, /* id */
    STORE_EVENT_TICK,   /* tick_rule, tick_target, tick_s only: no event row */
};
struct nb_store_event_write {
    enum nb_store_event_op op;
    struct nb_store_event ev;
};
int store_events_write(struct nb_store *st, const struct nb_store_event_write *w, size_t n,
                       struct nb_err *err);
/* Calls cb for every stored event in id order, with the store's lock held (cb must not call the
 * store); pointers in *ev are valid during the call only. A non-zero return stops and is
 * returned. */
typedef int (*nb_store_event_cb)(void *data, const struct nb_store_event *ev);
int store_events_each(struct nb_store *st, nb_store_event_cb cb, void *data, struct nb_err *err);

/* Event invoke configs: opaque JSON documents keyed by (function, qualifier); the unqualified
 * config is stored under "$LATEST". Put inserts or replaces; delete is -ENOENT when absent. Each
 * calls cb with the lock held (cb must not call the store). */
int store_eic_put(struct nb_store *st, const char *function, const char *qualifier, const char *doc,
                  struct nb_err *err);
int store_eic_delete(struct nb_store *st, const char *function, const char *qualifier,
                     struct nb_err *err);
typedef int (*nb_store_eic_cb)(void *data, const char *function, const char *qualifier,
                               const char *doc);
int store_eic_each(struct nb_store *st, nb_store_eic_cb cb, void *data, struct nb_err *err);
/* Inserts published version `version` of function; -EEXIST if that number was ever used,
 * -EIO (foreign key) if the function is absent. */
int store_version_insert(struct nb_store *st, const char *function, int64_t version,
                         const char *doc, struct nb_err *err);
/* Deletes a version (its number stays used) and, in the same transaction, every object keyed by
 * its number (its provisioned concurrency config) and its event invoke config; -ENOENT if absent
 * or already deleted. */
int store_version_delete(struct nb_store *st, const char *function, int64_t version,
                         struct nb_err *err);
/* Calls cb for every version number ever used, by function then number; doc is NULL for a deleted
 * version. Same rules as store_function_each. */
typedef int (*nb_store_version_cb)(void *data, const char *function, int64_t version,
                                   const char *doc);
int store_version_each(struct nb_store *st, nb_store_version_cb cb, void *data, struct nb_err *err);

/* Creates or replaces object (kind, function, key); -EIO (foreign key) if the function is
 * absent. */
int store_object_put(struct nb_store *st, const char *kind, const char *function, const char *key,
                     const char *doc, struct nb_err *err);
/* Deletes object (kind, function, key); kind NULL deletes every kind under key (an alias and its
 * provisioned concurrency config) and the event invoke config of qualifier key, in one
 * transaction. -ENOENT if no object was deleted. */
int store_object_delete(struct nb_store *st, const char *kind, const char *function,
                        const char *key, struct nb_err *err);
/* Calls cb for every object of kind, by function then key. Same rules as store_function_each. */
typedef int (*nb_store_object_cb)(void *data, const char *function, const char *key,
                                  const char *doc);
int store_object_each(struct nb_store *st, const char *kind, nb_store_object_cb cb, void *data,
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

/* ---- EventBridge schedule rules (rules.c, scheduler.c) ---- */
/* Rules are opaque JSON documents keyed by name. Put inserts or replaces; delete removes the rule
 * and its recorded ticks in one transaction (absent is not an error). Each calls cb with the lock
 * held (cb must not call the store); strings valid during the call only. */
int store_rule_put(struct nb_store *st, const char *name, const char *doc, struct nb_err *err);
int store_rule_delete(struct nb_store *st, const char *name, struct nb_err *err);
typedef int (*nb_store_rule_cb)(void *data, const char *name, const char *doc);
int store_rule_each(struct nb_store *st, nb_store_rule_cb cb, void *data, struct nb_err *err);
/* The last tick per (rule, target) recorded with the events, or alone (STORE_EVENT_TICK). */
typedef int (*nb_store_tick_cb)(void *data, const char *rule, const char *target, int64_t tick_s);
int store_tick_each(struct nb_store *st, nb_store_tick_cb cb, void *data, struct nb_err *err);

#endif
