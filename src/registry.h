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

#include "function.h"
#include "metrics.h"
#include "pool.h"

struct nb_daemon;

struct nb_fn {
    int refs;      /* registry (while present) + in-flight invocations + instances */
    bool removed;  /* deleted: no new invocations */
    bool updating; /* a control-plane write is in progress (ResourceConflictException) */
    char *name;
    struct nb_function *cfg;     /* current snapshot ($LATEST); owned reference */
    struct nb_pool pool;         /* instances of this function */
    struct nb_fn_series *series; /* per-version figures for /metrics (metrics.h); owned */
    struct nb_fn *hnext;         /* hash chain */
};

void registry_init(struct nb_daemon *d);
void registry_release(struct nb_daemon *d);
/* NULL when absent (or removed). Borrowed pointer. */
struct nb_fn *registry_find(struct nb_daemon *d, const char *name);
/* The snapshot an invocation of fn under qualifier runs: NULL or "$LATEST" is fn->cfg; (with
 * versions) a version number is that published version and an alias its version, or one chosen by
 * its routing weights. Borrowed. NULL with -ENOENT and Lambda's "Function not found: ARN" message
 * when the qualifier names nothing. */
struct nb_function *registry_resolve(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                                     struct nb_err *err);
/* Adds a function; consumes cfg. BUG if the name exists. Returns the entry (borrowed). */
struct nb_fn *registry_add(struct nb_daemon *d, struct nb_function *cfg);
/* Replaces the current snapshot; consumes cfg. When the code or anything the sandbox sees changed,
 * idle instances stop now and busy ones stop after their invocation (drain). */
void registry_set_config(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg);
/* Removes the function: no new invocations, instances stop (busy ones after their invocation). */
void registry_remove(struct nb_daemon *d, struct nb_fn *fn);
/* All present functions sorted by name; *out malloc'd array of borrowed pointers. */
size_t registry_list(struct nb_daemon *d, struct nb_fn ***out);
/* Sum of reserved concurrency over all functions. */
int64_t registry_reserved_total(struct nb_daemon *d);
void fn_ref(struct nb_fn *fn);
void fn_unref(struct nb_fn *fn);

#endif
