/*
 * cgroup.h - cgroup v1 limits and accounting for sandboxes (memory, pids, cpu), under
 * /sys/fs/cgroup/{memory,pids,cpu}/nimbus/<name>. cgroup v2 has no controllers on these hosts.
 *
 * One struct nb_cgroup per instance: created with its limits before the sandbox starts (the
 * sandbox child attaches itself), or taken from the park pool and given the instance's limits
 * (cgroup_set_limits), read for Max Memory Used and OOM kills, destroyed after the instance is
 * gone. Synchronous small file writes; call from the loop (each call ~0.1 ms).
 */
#ifndef NIMBUS_CGROUP_H
#define NIMBUS_CGROUP_H

#include "err.h"

struct nb_cgroup {
    char *dirs[4]; /* memory, pids, cpu dirs + NULL terminator (spec.cgroup_dirs) */
    int peak_fd;   /* memory.max_usage_in_bytes kept open by cgroup_max_usage, as fd + 1 so that a
                    * zeroed cg has none (0); closed by cgroup_destroy */
};

struct nb_cgroup_limits {
    uint64_t memory_bytes;  /* memory.limit_in_bytes (and memsw when present) */
    int64_t pids_max;       /* pids.max */
    uint32_t cpu_period_us; /* cpu.cfs_period_us (e.g. 10000); 0 = leave the kernel default */
    uint32_t cpu_quota_us;  /* cpu.cfs_quota_us; 0 = unlimited */
};
/* memory_bytes and pids_max must be > 0 (cgroup_create refuses "no limit" with EINVAL). */

/* Checks the hierarchies exist and creates the nimbus parent groups; removes stale children left by
 * a previous daemon (killing their processes). A child with a process descending from a running
 * nimbus-spawner is kept (another live daemon's); empty children are removed whoever made them. */
int cgroup_setup(struct nb_err *err);
/* cgroup_setup under /sys/fs/cgroup/<controller>/<parent> instead of .../nimbus; later
 * cgroup_create calls use that parent. For daemons sharing a host (e2e runs) and for tests: the
 * sweep of a shared parent removes other daemons' empty (just created or pooled) groups. */
int cgroup_setup_at(const char *parent, struct nb_err *err);
/* Removes the (empty) parent groups made by cgroup_setup_at; for daemons with a private parent
 * at shutdown. Groups still in use stay. */
void cgroup_remove_parent(void);
/* Creates the groups named name with limits. On failure nothing is left behind. */
int cgroup_create(struct nb_cgroup *cg, const char *name, const struct nb_cgroup_limits *lim,
                  struct nb_err *err);
/* Sets lim on existing groups (e.g. pooled ones made with other limits): memory (memsw too, in the
 * order the kernel accepts), pids, the cpu period when given, and the cpu quota (0 = unlimited).
 * Lowering memory.limit_in_bytes fails (EBUSY) when the group already uses more. */
int cgroup_set_limits(const struct nb_cgroup *cg, const struct nb_cgroup_limits *lim,
                      struct nb_err *err);
/* Peak memory in bytes (memory.max_usage_in_bytes). The file stays open in cg (one pread per call
 * instead of open/read/close and a path walk: this runs once per invocation, on the warm path). */
int cgroup_max_usage(struct nb_cgroup *cg, uint64_t *out, struct nb_err *err);
/* Resets the peak (memory.max_usage_in_bytes) so a pooled group can be reused. */
int cgroup_reset_max_usage(const struct nb_cgroup *cg, struct nb_err *err);
/* Changes cpu.cfs_quota_us of a live group (e.g. after init); 0 = unlimited. */
int cgroup_set_cpu_quota(const struct nb_cgroup *cg, uint64_t quota_us, struct nb_err *err);
/* oom_kill count from memory.oom_control. */
int cgroup_oom_kills(const struct nb_cgroup *cg, uint64_t *out, struct nb_err *err);
/* Kills any process left in the groups and removes them; frees cg's strings. Safe on a zeroed cg.
 */
void cgroup_destroy(struct nb_cgroup *cg);

#endif
