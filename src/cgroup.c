/*
 * cgroup.c - per-instance cgroup v1 groups (memory, pids, cpu) under
 * /sys/fs/cgroup/<controller>/<parent>/<name>; <parent> is "nimbus" unless cgroup_setup_at chose
 * another one.
 *
 * Structure: small synchronous file reads and writes. cgroup_setup_at creates the parent in each
 * hierarchy and sweeps what a previous daemon left under it (SIGKILL to every process still in a
 * group, then rmdir, depth first) - except groups with a process that descends from a running
 * nimbus-spawner, which belong to another live daemon. cgroup_create makes the three directories
 * and writes the limits; cgroup_destroy kills leftovers and removes them with a short retry.
 *
 * Invariants: cgroup_create leaves nothing behind on failure; every write is checked except the
 * optional knobs (memsw when swap accounting is off, swappiness). This module never attaches a
 * process: the sandbox child writes "0" to each cgroup.procs itself (spawner.h). Loop thread only;
 * the parent name is process-global state.
 */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "log.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_NAME_MAX 200
#define SWEEP_DEPTH_MAX 8

/* Same order as struct nb_cgroup.dirs. */
static const char *const controllers[] = {"memory", "pids", "cpu"};

static char parent_name[CGROUP_NAME_MAX + 1] = "nimbus";

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CGROUP_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static int write_str(const char *dir, const char *file, const char *val)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n;
    do
        n = write(fd, val, strlen(val));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (size_t)n == strlen(val) ? 0 : -EIO;
}

static int write_u64(const char *dir, const char *file, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    return write_str(dir, file, s);
}

/* SIGKILLs every process listed in dir/cgroup.procs; returns how many were signalled. */
static int kill_procs(const char *dir)
{
    _cleanup_free_ char *path = xasprintf("%s/cgroup.procs", dir);
    _cleanup_free_ char *text = NULL;
    if (read_file(path, &text, NULL) < 0)
        return 0;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
        int64_t pid;
        if (parse_i64(tok, 1, INT32_MAX, &pid) == 0 && kill((pid_t)pid, SIGKILL) == 0)
            n++;
    }
    return n;
}

/* True when pid descends from a running spawner (comm "nimbus-spawner", set by spawner.c): its
 * group belongs to a live daemon, not to a dead one. */
static bool owned_by_live_spawner(pid_t pid)
{
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *stat = NULL;
        if (read_file(path, &stat, NULL) < 0)
            return false;
        char *open = strchr(stat, '('), *close = strrchr(stat, ')');
        if (!open || !close || close < open)
            return false;
        if ((size_t)(close - open - 1) == strlen("nimbus-spawner") &&
            !strncmp(open + 1, "nimbus-spawner", strlen("nimbus-spawner")))
            return true;
        int ppid;
        if (sscanf(close + 1, " %*c %d", &ppid) != 1)
            return false;
        pid = ppid;
    }
    return false;
}

/* True when any process in dir belongs to a live daemon's spawner. */
static bool group_is_live(const char *dir)
{
    _cleanup_free_ char *path = xasprintf("%s/cgroup.procs", dir);
    _cleanup_free_ char *text = NULL;
    if (read_file(path, &text, NULL) < 0)
        return false;
    char *save = NULL;
    for (char *tok = strtok_r(text, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
        int64_t pid;
        if (parse_i64(tok, 1, INT32_MAX, &pid) == 0 && owned_by_live_spawner((pid_t)pid))
            return true;
    }
    return false;
}

/* rmdir with a short retry: killed processes take a moment to leave the group. */
static int rmdir_retry(const char *dir)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        kill_procs(dir);
        usleep(attempt < 20 ? 500 : 5000);
    }
    return -EBUSY;
}

static void sweep(const char *dir, int depth)
{
    if (depth > SWEEP_DEPTH_MAX)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
        if (group_is_live(sub)) {
            /* Another daemon on this host (e2e runs): never kill its functions. */
            log_info("msg=\"kept cgroup of a running spawner\" dir=%s", sub);
            continue;
        }
        sweep(sub, depth + 1);
        int killed = kill_procs(sub);
        int r = rmdir_retry(sub);
        if (r < 0)
            log_warn("msg=\"cannot remove stale cgroup\" dir=%s error=\"%s\"", sub, strerror(-r));
        else
            log_info("msg=\"removed stale cgroup\" dir=%s killed=%d", sub, killed);
    }
    closedir(d);
}

int cgroup_setup_at(const char *parent, struct nb_err *err)
{
    if (!valid_name(parent))
        return err_set(err, EINVAL, "invalid cgroup parent name '%s'", parent);
    for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
        _cleanup_free_ char *root = xasprintf(CGROUP_ROOT "/%s", controllers[i]);
        struct statfs sfs;
        if (statfs(root, &sfs) < 0)
            return err_set(err, errno, "cannot find cgroup v1 hierarchy '%s': %s", root,
                           strerror(errno));
        if (sfs.f_type != CGROUP_SUPER_MAGIC)
            return err_set(err, ENOTSUP, "'%s' is not a cgroup v1 hierarchy", root);
        _cleanup_free_ char *dir = xasprintf("%s/%s", root, parent);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return err_set(err, errno, "cannot create cgroup '%s': %s", dir, strerror(errno));
        sweep(dir, 0);
    }
    snprintf(parent_name, sizeof(parent_name), "%s", parent);
    return 0;
}

void cgroup_remove_parent(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
        _cleanup_free_ char *dir = xasprintf(CGROUP_ROOT "/%s/%s", controllers[i], parent_name);
        if (rmdir(dir) < 0 && errno != ENOENT && errno != EBUSY)
            log_warn("msg=\"cannot remove cgroup parent\" dir=%s error=\"%s\"", dir,
                     strerror(errno));
    }
}

int cgroup_setup(struct nb_err *err)
{
    return cgroup_setup_at("nimbus", err);
}

/* fresh: the group was just made, so the kernel defaults need not be written. */
static int apply_limits(const struct nb_cgroup *cg, const struct nb_cgroup_limits *lim, bool fresh,
                        struct nb_err *err)
{
    const char *mem = cg->dirs[0], *pids = cg->dirs[1], *cpu = cg->dirs[2];
    int r = write_u64(mem, "memory.limit_in_bytes", lim->memory_bytes);
    if (r == -EINVAL) {
        /* Raising a limit above memsw: memsw (which must stay >= the limit) goes first. */
        r = write_u64(mem, "memory.memsw.limit_in_bytes", lim->memory_bytes);
        if (r == 0)
            r = write_u64(mem, "memory.limit_in_bytes", lim->memory_bytes);
    }
    if (r < 0)
        return err_set(err, r, "cannot set memory.limit_in_bytes in '%s': %s", mem, strerror(-r));
    /* memsw exists only with swap accounting; it must be >= the limit, which it now is. */
    r = write_u64(mem, "memory.memsw.limit_in_bytes", lim->memory_bytes);
    if (r < 0 && r != -ENOENT)
        return err_set(err, r, "cannot set memory.memsw.limit_in_bytes in '%s': %s", mem,
                       strerror(-r));
    (void)write_str(mem, "memory.swappiness", "0");
    r = write_u64(pids, "pids.max", (uint64_t)lim->pids_max);
    if (r < 0)
        return err_set(err, r, "cannot set pids.max in '%s': %s", pids, strerror(-r));
    if (lim->cpu_period_us) {
        r = write_u64(cpu, "cpu.cfs_period_us", lim->cpu_period_us);
        if (r < 0)
            return err_set(err, r, "cannot set cpu.cfs_period_us to %" PRIu32 " in '%s': %s",
                           lim->cpu_period_us, cpu, strerror(-r));
    }
    if (lim->cpu_quota_us || !fresh) {
        r = lim->cpu_quota_us ? write_u64(cpu, "cpu.cfs_quota_us", lim->cpu_quota_us)
                              : write_str(cpu, "cpu.cfs_quota_us", "-1");
        if (r < 0)
            return err_set(err, r, "cannot set cpu.cfs_quota_us to %" PRIu32 " in '%s': %s",
                           lim->cpu_quota_us, cpu, strerror(-r));
    }
    return 0;
}

int cgroup_create(struct nb_cgroup *cg, const char *name, const struct nb_cgroup_limits *lim,
                  struct nb_err *err)
{
    memset(cg, 0, sizeof(*cg));
    if (!valid_name(name))
        return err_set(err, EINVAL, "invalid cgroup name '%s'", name);
    if (lim->memory_bytes == 0 || lim->pids_max <= 0)
        return err_set(err, EINVAL, "cgroup '%s' needs a memory and a pids limit", name);
    for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
        char *dir = xasprintf(CGROUP_ROOT "/%s/%s/%s", controllers[i], parent_name, name);
        if (mkdir(dir, 0755) < 0) {
            int e = errno;
            err_set(err, e, "cannot create cgroup '%s': %s", dir, strerror(e));
            free(dir);
            cgroup_destroy(cg);
            return -e;
        }
        cg->dirs[i] = dir;
    }
    int r = apply_limits(cg, lim, true, err);
    if (r < 0) {
        cgroup_destroy(cg);
        return r;
    }
    return 0;
}

int cgroup_set_limits(const struct nb_cgroup *cg, const struct nb_cgroup_limits *lim,
                      struct nb_err *err)
{
    if (!cg->dirs[0] || !cg->dirs[1] || !cg->dirs[2])
        return err_set(err, EINVAL, "cgroup is not complete");
    if (lim->memory_bytes == 0 || lim->pids_max <= 0)
        return err_set(err, EINVAL, "cgroup '%s' needs a memory and a pids limit", cg->dirs[0]);
    return apply_limits(cg, lim, false, err);
}

static int read_text(const char *dir, const char *file, char **out, struct nb_err *err)
{
    if (!dir)
        return err_set(err, EINVAL, "cgroup has no memory group");
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
    int r = read_file(path, out, NULL);
    if (r < 0)
        return err_set(err, r, "cannot read '%s': %s", path, strerror(-r));
    return 0;
}

int cgroup_max_usage(struct nb_cgroup *cg, uint64_t *out, struct nb_err *err)
{
    if (!cg->dirs[0])
        return err_set(err, EINVAL, "cgroup has no memory group");
    if (!cg->peak_fd) {
        _cleanup_free_ char *path = xasprintf("%s/memory.max_usage_in_bytes", cg->dirs[0]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return err_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
        cg->peak_fd = fd + 1;
    }
    /* a kernfs seq file: reading from offset 0 again shows the current value */
    char text[32];
    ssize_t n = pread(cg->peak_fd - 1, text, sizeof(text) - 1, 0);
    if (n < 0)
        return err_set(err, -errno, "cannot read memory.max_usage_in_bytes in '%s': %s",
                       cg->dirs[0], strerror(errno));
    text[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text)
        return err_set(err, EINVAL, "bad memory.max_usage_in_bytes in '%s'", cg->dirs[0]);
    *out = v;
    return 0;
}

int cgroup_reset_max_usage(const struct nb_cgroup *cg, struct nb_err *err)
{
    if (!cg->dirs[0])
        return err_set(err, EINVAL, "cgroup has no memory group");
    int r = write_str(cg->dirs[0], "memory.max_usage_in_bytes", "0");
    if (r < 0)
        return err_set(err, r, "cannot reset memory.max_usage_in_bytes in '%s': %s", cg->dirs[0],
                       strerror(-r));
    return 0;
}

int cgroup_set_cpu_quota(const struct nb_cgroup *cg, uint64_t quota_us, struct nb_err *err)
{
    if (!cg->dirs[2])
        return err_set(err, EINVAL, "cgroup has no cpu group");
    int r = quota_us ? write_u64(cg->dirs[2], "cpu.cfs_quota_us", quota_us)
                     : write_str(cg->dirs[2], "cpu.cfs_quota_us", "-1");
    if (r < 0)
        return err_set(err, r, "cannot set cpu.cfs_quota_us to %" PRIu64 " in '%s': %s", quota_us,
                       cg->dirs[2], strerror(-r));
    return 0;
}

int cgroup_oom_kills(const struct nb_cgroup *cg, uint64_t *out, struct nb_err *err)
{
    _cleanup_free_ char *text = NULL;
    int r = read_text(cg->dirs[0], "memory.oom_control", &text, err);
    if (r < 0)
        return r;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        unsigned long long v;
        if (sscanf(line, "oom_kill %llu", &v) == 1) {
            *out = v;
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return err_set(err, ENOENT, "no oom_kill count in '%s/memory.oom_control'", cg->dirs[0]);
}

void cgroup_destroy(struct nb_cgroup *cg)
{
    if (cg->peak_fd) {
        close(cg->peak_fd - 1);
        cg->peak_fd = 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(cg->dirs); i++) {
        if (!cg->dirs[i])
            continue;
        kill_procs(cg->dirs[i]);
        int r = rmdir_retry(cg->dirs[i]);
        if (r < 0)
            log_warn("msg=\"cannot remove cgroup\" dir=%s error=\"%s\"", cg->dirs[i], strerror(-r));
        free(cg->dirs[i]);
        cg->dirs[i] = NULL;
    }
}
