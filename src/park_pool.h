/*
 * park_pool.h - sandboxes parked ahead of time for new instances. Moving a process into a cgroup
 * (v1) takes cgroup_threadgroup_rwsem for writing, which costs an RCU grace period (5-16 ms) when
 * attaches are sparse - i.e. on nearly every cold start after an idle spell (shared/notes/
 * sandbox.md §5). A slot is a struct nb_cgroup with a generic name ("p<seq>-<daemon pid>") holding
 * one child parked by the spawner (spawner_park): cloned, attached to the groups, waiting for its
 * spec. A plain slot is deep-parked (spawner.h): it also holds a network namespace taken from the
 * netns pool (with its Runtime API listener), which the child joined, and the child has built its
 * whole root. The pool is filled in the background up to cfg.park_pool (0 = off, reloadable) and
 * refilled shortly after each take. The taker owns the slot's groups (and namespace) from then
 * on, exactly like groups it made itself (cgroup_destroy, netns_pool_put at teardown). Loop
 * thread only.
 */
#ifndef NIMBUS_PARK_POOL_H
#define NIMBUS_PARK_POOL_H

#include <stddef.h>
#include <stdint.h>

struct nb_daemon;
struct nb_cgroup;
struct nb_cgroup_limits;
struct nb_netns;

/* Allocates d->park (empty). */
void park_pool_init(struct nb_daemon *d);
/* Requests parks until ready + pending reaches cfg.park_pool; discards ready slots beyond it. */
void park_pool_fill(struct nb_daemon *d);
/* Takes a ready slot: sets lim on its groups (unless they have them already: new slots are made
 * with the last take's limits and tmp_bytes, the caller's /tmp size), moves them into *cg (the
 * caller owns them; cgroup_destroy), its network namespace into *ns (the caller owns it: set
 * ns->inst, netns_pool_put at the end), the uid the slot was given at park time into *uid (its
 * /etc is written for it: the spec must use that uid as uid and gid, and instance_hostname's name
 * for it) and returns the park id for spec.park_id; the spec's netns_fd must be -1 (the child is
 * in *ns). Returns 0 with *cg and *ns untouched when no slot is
 * ready (or its limits could not be set; that slot is discarded): create the groups and get a
 * namespace as usual. Either way the pool refills ~10 ms later, after the spawner has served the
 * caller's spawn. */
uint64_t park_pool_take(struct nb_daemon *d, const struct nb_cgroup_limits *lim, uint64_t tmp_bytes,
                        struct nb_cgroup *cg, struct nb_netns **ns, uint32_t *uid);
/* The same for a python3.x instance, from the zygote slots (cfg.zygote_pool, filled once
 * d->zygote_wanted is set): the child runs the Python zygote's pre-initialised interpreter. These
 * are not deep (no namespace: the spec brings one; the root is built after it). 0 when none is
 * ready: use park_pool_take (a plain start). */
uint64_t park_pool_take_zygote(struct nb_daemon *d, const struct nb_cgroup_limits *lim,
                               struct nb_cgroup *cg);
/* Shutdown, right before spawner_stop in the same loop turn (pending park callbacks are then never
 * called): unparks and destroys every slot, gives their namespaces back, frees those still in
 * flight (one still waiting for its namespace is freed when netns_pool_release answers it), and
 * frees d->park (NULL after; the calls above then do nothing). */
void park_pool_release(struct nb_daemon *d);
/* Ready slots now, plain and zygote (0 without a pool); for /metrics. */
size_t park_pool_n_ready(struct nb_daemon *d);

#endif
