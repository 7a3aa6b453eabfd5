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

#endif
