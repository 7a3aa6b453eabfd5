/*
 * pool.h - the instances of one function and the admission rules that bound them.
 *
 * An instance is STARTING (sandbox spawned, runtime not yet at its first `next`), IDLE (holding a
 * `next` long poll, ready), BUSY (running one invocation) or DEAD. One invocation at a time per
 * instance. Idle instances are reused most recently used first; an idle instance older than the
 * keep-warm window is stopped (scale to zero). Loop thread only. See instance.h.
 */
#ifndef NIMBUS_POOL_H
#define NIMBUS_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_instance;

struct nb_pool {
    struct nb_instance *idle_head; /* MRU first; linked through instance->idle_next/prev */
    struct nb_instance *all_head;  /* every live instance; linked through all_next/prev */
    size_t n_idle;
    size_t n_all;
    int64_t inflight;            /* admitted invocations of this function */
    int64_t inflight_unreserved; /* of which admitted from the shared (unreserved) pool */
    int64_t inflight_pc;         /* of which admitted on provisioned capacity */
};

#endif
