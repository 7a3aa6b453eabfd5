/*
 * prewarm.h - parked runtimes: for a function invoked recently whose runtime cannot be forked
 * from a zygote (Node), K instances are started ahead of demand, run their init and wait on the
 * Runtime API `next`; a cold invocation that finds one uses it instead of starting an instance.
 *
 * Which functions: nodejs runtimes, while node_park_max > 0 and keep_warm_s > 0 (the window),
 * unless the function sets NIMBUS_PARK=0.
 * Python has the zygote (cold starts of a few ms); provided bootstraps are arbitrary programs
 * whose ahead-of-time start nimbus does not assume is harmless.
 *
 * Demand: an invocation of $LATEST that finds no warm idle instance (a "cold-path" invocation:
 * a real cold start, or one served by a parked instance) counts; K is the peak number of
 * cold-path invocations in flight at once since the function last went quiet, capped by
 * node_park_max. Parked instances run $LATEST only (a version or alias invocation never parks).
 *
 * Life of a parked instance (inst->parked): started by the refill timer, STARTING -> IDLE at its
 * first `next` (init done; Init Duration is never reported for it), taken by the first invocation
 * that finds no warm idle instance (pool_take_idle prefers warm ones), from then on an ordinary
 * instance. A parked instance still starting may be given a cold invocation: it then finishes
 * its init for it (an ordinary cold start with Init Duration). Parked instances are idle: they
 * never count against concurrency. They stop when the function changes or is deleted (retire),
 * or keep_warm_s after the function's last invocation (the keep-warm reaper, pool.c).
 *
 * Refill: one one-shot timer, armed only by an event (a cold-path invocation, a parked instance
 * ending): an idle daemon has no wake-up for parking. A parked instance that fails its init stops
 * parking for the function until its next cold-path invocation (no crash loop). Loop thread only.
 */
#ifndef NIMBUS_PREWARM_H
#define NIMBUS_PREWARM_H

#include <stdbool.h>
#include <stdint.h>

struct nb_daemon;
struct nb_fn;
struct nb_instance;
struct nb_invocation;

/* Per-function state, embedded in struct nb_fn (registry.h). */
struct nb_prewarm_fn {
    uint64_t last_invoke_ns; /* mono_ns of the last invocation of $LATEST; 0 = never */
    int cold_inflight;       /* cold-path invocations in flight */
    int peak;                /* their peak since the function went quiet: K before the cap */
};

void prewarm_init(struct nb_daemon *d);
void prewarm_release(struct nb_daemon *d);

/* invoke_start's path choice: inst is the idle instance pool_take_idle gave (NULL: none). Returns
 * the instance to assign inv to (inst, or NULL to start one), after counting demand; may attach
 * inv to a parked instance still starting (inv->inst set, returns NULL and sets *attached). */
struct nb_instance *prewarm_route(struct nb_invocation *inv, struct nb_instance *inst,
                                  bool *attached);
/* inv (inv->cold_path) completed. */
void prewarm_cold_done(struct nb_invocation *inv);
/* A parked instance was torn down (instance.c): a replacement comes from the refill timer. */
void prewarm_instance_gone(struct nb_instance *inst);
/* Expiry (mono_ns) of an idle parked instance: keep_warm_s after the later of its going idle and
 * its function's last invocation. */
uint64_t prewarm_expiry_ns(const struct nb_instance *inst, uint64_t keep_ns);
/* Parked instances ready (idle, not taken) of fn / of every function. */
int prewarm_n_ready(struct nb_fn *fn);
int64_t prewarm_n_ready_all(struct nb_daemon *d);

#endif
