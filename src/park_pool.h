/*
 * park_pool.h - sandboxes parked ahead of time for new instances. Moving a process into a cgroup
 * (v1) takes cgroup_threadgroup_rwsem for writing, which costs an RCU grace period (5-16 ms) when
 * attaches are sparse - i.e. on nearly every cold start after an idle spell (shared/notes/
 * sandbox.md §5). A slot is a struct nb_cgroup with a generic name ("p<seq>-<daemon pid>") holding
 * one child parked by the spawner (spawner_park): cloned, attached to the groups, waiting for its
 * spec. The pool is filled in the background up to cfg.park_pool (0 = off, reloadable) and
 * refilled shortly after each take. The taker owns the slot's groups from then on, exactly like
 * groups it made itself (cgroup_destroy at teardown). Loop thread only.
 */
#ifndef NIMBUS_PARK_POOL_H
#define NIMBUS_PARK_POOL_H

#include <stddef.h>
#include <stdint.h>

struct nb_daemon;
struct nb_cgroup;
struct nb_cgroup_limits;

/* Allocates d->park (empty). */
void park_pool_init(struct nb_daemon *d);
/* Requests parks until ready + pending reaches cfg.park_pool; discards ready slots beyond it. */
void park_pool_fill(struct nb_daemon *d);
/* Takes a ready slot: sets lim on its groups, moves them into *cg (the caller owns them; cgroup_
 * destroy) and returns the park id for spec.park_id. Returns 0 with *cg untouched when no slot is
 * ready (or its limits could not be set; that slot is discarded): create the groups as usual.
 * Either way the pool refills ~10 ms later, after the spawner has served the caller's spawn. */
uint64_t park_pool_take(struct nb_daemon *d, const struct nb_cgroup_limits *lim,
                        struct nb_cgroup *cg);
/* The same for a python3.x instance, from the zygote slots (cfg.zygote_pool, filled once
 * d->zygote_wanted is set): the child runs the Python zygote's pre-initialised interpreter. 0 when
 * none is ready: use park_pool_take (a plain start). */
uint64_t park_pool_take_zygote(struct nb_daemon *d, const struct nb_cgroup_limits *lim,
                               struct nb_cgroup *cg);
/* Shutdown, right before spawner_stop in the same loop turn (pending park callbacks are then never
 * called): unparks and destroys every slot, frees those still in flight, and frees d->park (NULL
 * after; the calls above then do nothing). */
void park_pool_release(struct nb_daemon *d);
/* Ready slots now, plain and zygote (0 without a pool); for /metrics. */
size_t park_pool_n_ready(struct nb_daemon *d);

#endif
