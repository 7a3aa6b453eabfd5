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
/* Deletes; -ENOENT if absent. */
int store_function_delete(struct nb_store *st, const char *name, struct nb_err *err);
/* Calls cb for each record in name order (bytewise); a non-zero return from cb stops and is
 * returned. The records are read first and cb runs outside the store's lock, so cb may call the
 * store; it sees the records as they were when the call started. */
typedef int (*nb_store_function_cb)(void *data, const char *name, const char *doc);
int store_function_each(struct nb_store *st, nb_store_function_cb cb, void *data,
                        struct nb_err *err);

/* Inserts published version `version` of function; -EEXIST if that number was ever used,
 * -EIO (foreign key) if the function is absent. */
int store_version_insert(struct nb_store *st, const char *function, int64_t version,
                         const char *doc, struct nb_err *err);
/* Deletes a version (its number stays used) and, in the same transaction, every object keyed by
 * its number (its provisioned concurrency config); -ENOENT if absent or already deleted. */
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
 * provisioned concurrency config). -ENOENT if nothing was deleted. */
int store_object_delete(struct nb_store *st, const char *kind, const char *function,
                        const char *key, struct nb_err *err);
/* Calls cb for every object of kind, by function then key. Same rules as store_function_each. */
typedef int (*nb_store_object_cb)(void *data, const char *function, const char *key,
                                  const char *doc);
int store_object_each(struct nb_store *st, const char *kind, nb_store_object_cb cb, void *data,
                      struct nb_err *err);

#endif
