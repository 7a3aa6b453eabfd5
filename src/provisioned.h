/*
 * provisioned.h - provisioned concurrency (LAMBDA.md §3.6; Put/Get/Delete/
 * ListProvisionedConcurrencyConfig(s)): per version or alias, N instances kept initialized and
 * idle, ready before any invocation, never reaped by keep-warm, replaced when they die.
 *
 * A config (struct nb_provisioned) belongs to its function entry (fn->pcs, registry.h). Its
 * instances carry its id (inst->pc_id) and run the snapshot its qualifier names (an alias: its
 * primary version). provisioned_sync() reconciles a function's instances with its configs: it
 * retires instances whose config is gone or whose alias moved, and starts the missing ones.
 * Status is computed from the instances: READY when `requested` have finished init, FAILED (with
 * a StatusReason) once an instance died during init (no more are started until the config is put
 * again), IN_PROGRESS otherwise. Loop thread only.
 */
#ifndef NIMBUS_PROVISIONED_H
#define NIMBUS_PROVISIONED_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

struct nb_daemon;
struct nb_fn;
struct nb_instance;

struct nb_provisioned {
    uint64_t id;     /* unique in the process; instances refer to it */
    char *qualifier; /* version number or alias name */
    int requested;   /* >= 1 */
    uint64_t last_modified_ms;
    char *failure; /* StatusReason once FAILED, else NULL */
};

/* The upkeep timer (replacements are started from it, never from an instance's teardown). */
void provisioned_init(struct nb_daemon *d);
void provisioned_release(struct nb_daemon *d);

/* A new config (free with provisioned_free). */
struct nb_provisioned *provisioned_new(const char *qualifier, int requested,
                                       uint64_t last_modified_ms);
void provisioned_free(struct nb_provisioned *pc);
/* fn's config for qualifier, or NULL. Borrowed. */
struct nb_provisioned *provisioned_find(struct nb_fn *fn, const char *qualifier);
/* Adds pc to fn, replacing the config of the same qualifier (consumes pc), and syncs. */
void provisioned_put(struct nb_daemon *d, struct nb_fn *fn, struct nb_provisioned *pc);
/* Removes fn's config for qualifier if any; its instances stop. */
void provisioned_remove(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier);

/* Starts and retires instances so fn's match its configs (see above). */
void provisioned_sync(struct nb_daemon *d, struct nb_fn *fn);
void provisioned_sync_all(struct nb_daemon *d);
/* inst (pc_id != 0) was torn down: an init failure marks its config FAILED; a replacement is
 * started by the upkeep timer. Called by instance.c. */
void provisioned_instance_gone(struct nb_instance *inst);

/* GetProvisionedConcurrencyConfig's answer; with fn_arn, a ListProvisionedConcurrencyConfigs
 * item (FunctionArn = fn_arn:qualifier). New reference. */
json_t *provisioned_json(struct nb_fn *fn, const struct nb_provisioned *pc, const char *fn_arn);
/* The store record (malloc'd JSON) and back. */
char *provisioned_to_record(const struct nb_provisioned *pc);
struct nb_provisioned *provisioned_from_record(const char *qualifier, const char *doc,
                                               struct nb_err *err);

#endif
