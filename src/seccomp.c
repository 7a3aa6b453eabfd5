/*
 * seccomp.c - compiles the sandbox syscall policy of seccomp.h into raw classic BPF.
 *
 * libseccomp builds the filter (default ALLOW, the deny list below, kill on a foreign
 * architecture, including x32 calls on x86_64) and exports it with seccomp_export_bpf into a
 * memfd, which is read back into a malloc'd sock_fprog. The spawner does this once at start; each
 * sandbox child only runs prctl(PR_SET_SECCOMP) on the ready program, so no libseccomp code and
 * no compilation runs between clone and execve.
 *
 * Invariant: a syscall name libseccomp does not know on this architecture is skipped; any other
 * failure to add a rule fails the whole build (the spawner then refuses to spawn: fail closed).
 */
/* Angle brackets on purpose: see the end of seccomp.h (it pulls in libseccomp's header too). */
#define NIMBUS_WANT_LIBSECCOMP
#include <seccomp.h>

#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "util.h"

/* Denied with EPERM: changing the mount table or root, tracing or reading other processes, kernel
 * attack surface that unprivileged code never needs (bpf, keyrings, io_uring, userfaultfd, perf),
 * namespaces, module and kexec loading, clock and system state. */
static const char *const deny_eperm[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "settimeofday",
    "clock_settime",
    "stime",
    "mknod",
    "mknodat",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
};

/* The part of deny_eperm the zygote's own filter denies: everything but what its sandbox children
 * need before they load the instance filter (mounts, pivot_root, unshare, setns, namespace
 * clones). A subset, with the same errno, so that an instance - which carries both filters - sees
 * exactly the instance filter's answers. */
static bool zygote_may(const char *name)
{
    static const char *const needed[] = {
        "mount",  "umount",   "umount2", "pivot_root", "chroot",        "move_mount", "open_tree",
        "fsopen", "fsconfig", "fsmount", "fspick",     "mount_setattr", "unshare",    "setns",
    };
    for (size_t i = 0; i < ARRAY_SIZE(needed); i++)
        if (!strcmp(needed[i], name))
            return true;
    return false;
}

/* clone(2) flags that create namespaces. CLONE_NEWTIME (0x80) is left out: for clone(2) that bit
 * is part of the exit signal, and clone3 is refused as a whole. */
static const uint64_t clone_ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

static void ctx_releasep(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

static int add_rules(scmp_filter_ctx ctx, bool zygote, struct nb_err *err)
{
    int r;
    for (size_t i = 0; i < ARRAY_SIZE(deny_eperm); i++) {
        if (zygote && zygote_may(deny_eperm[i]))
            continue;
        int nr = seccomp_syscall_resolve_name(deny_eperm[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not a syscall on this architecture */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (r < 0)
            return err_set(err, r, "cannot add seccomp rule for '%s': %s", deny_eperm[i],
                           strerror(-r));
    }
    if (zygote)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(clone_ns_flags); i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]));
        if (r < 0)
            return err_set(err, r, "cannot add seccomp rule for 'clone': %s", strerror(-r));
    }
    /* ENOSYS, not EPERM: glibc and runtimes then fall back to clone(2), which is checked above. */
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r < 0)
        return err_set(err, r, "cannot add seccomp rule for 'clone3': %s", strerror(-r));
    return 0;
}

static int export_prog(scmp_filter_ctx ctx, struct sock_fprog *prog, struct nb_err *err)
{
    _cleanup_close_ int fd = memfd_create("nimbus-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return err_set(err, errno, "cannot create memfd for seccomp filter: %s", strerror(errno));
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return err_set(err, r, "cannot export seccomp filter: %s", strerror(-r));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return err_set(err, errno, "cannot stat seccomp filter: %s", strerror(errno));
    size_t len = (size_t)st.st_size;
    if (len == 0 || len % sizeof(struct sock_filter) ||
        len / sizeof(struct sock_filter) > BPF_MAXINSNS)
        return err_set(err, EINVAL, "seccomp filter has a bad size (%zu bytes)", len);
    _cleanup_free_ struct sock_filter *insns = xmalloc(len);
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)insns + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_set(err, n < 0 ? errno : EIO, "cannot read back seccomp filter: %s",
                           n < 0 ? strerror(errno) : "short read");
        got += (size_t)n;
    }
    prog->len = (unsigned short)(len / sizeof(struct sock_filter));
    prog->filter = steal_ptr(insns);
    return 0;
}

static int build(struct sock_fprog *prog, bool zygote, struct nb_err *err)
{
    _cleanup_(ctx_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return err_set(err, ENOMEM, "cannot initialise seccomp filter");
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r < 0)
        return err_set(err, r, "cannot set seccomp bad-arch action: %s", strerror(-r));
    /* A binary tree of syscall numbers loads faster than a linear list (see notes/sandbox.md
     * §6); older libseccomp may refuse the attribute, which only costs load time. */
    (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    r = add_rules(ctx, zygote, err);
    if (r < 0)
        return r;
    return export_prog(ctx, prog, err);
}

int seccomp_build(struct sock_fprog *prog, struct nb_err *err)
{
    return build(prog, false, err);
}

int seccomp_build_zygote(struct sock_fprog *prog, struct nb_err *err)
{
    return build(prog, true, err);
}
