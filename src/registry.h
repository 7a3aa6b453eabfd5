/*
 * registry.h - every function in memory: the current configuration snapshot and its runtime state
 * (instances, in-flight count). The control plane and Invoke read it; nothing on the invoke path
 * touches the disk. Loop thread only.
 *
 * Ownership: the registry owns struct nb_fn entries. An entry removed while instances or
 * invocations still use it stays alive (fn->refs) until the last one lets go.
 */
#ifndef NIMBUS_REGISTRY_H
#define NIMBUS_REGISTRY_H

#include "alias.h"
#include "function.h"
#include "metrics.h"
#include "pool.h"
#include "prewarm.h"

struct nb_daemon;
struct nb_provisioned;

struct nb_fn {
    int refs;      /* registry (while present) + in-flight invocations + instances */
    bool removed;  /* deleted: no new invocations */
    bool updating; /* a control-plane write is in progress (ResourceConflictException) */
    char *name;
    struct nb_function *cfg;       /* current snapshot ($LATEST); owned reference */
    uint64_t last_version;         /* highest version number ever published (never reused) */
    struct nb_function **versions; /* published versions, ascending; owned references */
    size_t n_versions;
    struct nb_alias **aliases; /* by name; owned */
    size_t n_aliases;
    struct nb_provisioned **pcs; /* provisioned concurrency configs (provisioned.h); owned */
    size_t n_pcs;
    int64_t pc_total;            /* sum of their requested instances (registry_set_pc_total) */
    struct nb_pool pool;         /* instances of this function */
    struct nb_fn_series *series; /* per-version figures for /metrics (metrics.h); owned */
    struct nb_fn *hnext;         /* hash chain */
    /* parked instances: demand (prewarm.h) */
    struct nb_prewarm_fn prewarm;
};

void registry_init(struct nb_daemon *d);
void registry_release(struct nb_daemon *d);
/* NULL when absent (or removed). Borrowed pointer. */
struct nb_fn *registry_find(struct nb_daemon *d, const char *name);
/* The snapshot an invocation of fn under qualifier runs: NULL or "$LATEST" is fn->cfg; a version
 * number is that published version and an alias its version, or its additional version with the
 * probability of its routing weight (alias_random). Borrowed. NULL with -ENOENT and Lambda's
 * "Function not found: ARN" message when the qualifier names nothing. */
struct nb_function *registry_resolve(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                                     struct nb_err *err);
/* Like registry_resolve, without choosing by weight: an alias gives its primary version. For the
 * control plane (GetFunction, GetFunctionConfiguration with an alias). */
struct nb_function *registry_resolve_primary(struct nb_daemon *d, struct nb_fn *fn,
                                             const char *qualifier, struct nb_err *err);
/* The published version named by version ("N"), or NULL. Borrowed. */
struct nb_function *registry_version(struct nb_fn *fn, const char *version);
/* True when version is "$LATEST" or a published version of fn. */
bool registry_version_exists(struct nb_fn *fn, const char *version);
/* Adds a published version (consumes cfg); number > every present one. */
void registry_add_version(struct nb_fn *fn, struct nb_function *cfg);
/* Removes a published version: its instances stop (busy ones after their invocation). */
void registry_remove_version(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg);
/* The alias called name, or NULL. Borrowed. */
struct nb_alias *registry_alias(struct nb_fn *fn, const char *name);
/* Adds or replaces the alias of the same name (consumes a). */
void registry_put_alias(struct nb_fn *fn, struct nb_alias *a);
/* Removes (and frees) the alias called name, if present. */
void registry_remove_alias(struct nb_fn *fn, const char *name);
/* Adds a function; consumes cfg. BUG if the name exists. Returns the entry (borrowed). */
struct nb_fn *registry_add(struct nb_daemon *d, struct nb_function *cfg);
/* Replaces the current snapshot; consumes cfg. When the code or anything the sandbox sees changed,
 * idle instances of $LATEST stop now and busy ones stop after their invocation (drain); instances
 * of published versions are never touched. */
void registry_set_config(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg);
/* Removes the function: no new invocations, instances stop (busy ones after their invocation). */
void registry_remove(struct nb_daemon *d, struct nb_fn *fn);
/* All present functions sorted by name; *out malloc'd array of borrowed pointers. */
size_t registry_list(struct nb_daemon *d, struct nb_fn ***out);
/* Sets fn->pc_total and keeps the daemon's pc_unreserved_total (functions without a reservation)
 * in step; set_config/remove keep it too when the reservation changes or fn goes. */
void registry_set_pc_total(struct nb_daemon *d, struct nb_fn *fn, int64_t total);
/* Sum of reserved concurrency over all functions. */
int64_t registry_reserved_total(struct nb_daemon *d);
void fn_ref(struct nb_fn *fn);
void fn_unref(struct nb_fn *fn);

#endif
