/*
 * seccomp.h - the sandbox's syscall policy, compiled once with libseccomp into raw BPF that the
 * sandbox child loads with prctl(PR_SET_SECCOMP) right before execve.
 *
 * Policy (deny-list, EPERM): mount family and pivot_root/chroot, ptrace and process_vm_*, bpf,
 * keyctl family, unshare/setns, clone with any CLONE_NEW* flag, kexec, module calls,
 * perf_event_open, userfaultfd, io_uring_*, open_by_handle_at, settimeofday/clock_settime, mknod,
 * swapon/off, reboot, the new mount API, acct, quotactl; clone3 returns ENOSYS so libc falls back
 * to clone. Non-native architectures are killed.
 */
#ifndef NIMBUS_SECCOMP_H
#define NIMBUS_SECCOMP_H

#include <linux/filter.h>

#include "err.h"

/* Builds the filter; prog->filter is malloc'd (free it). */
int seccomp_build(struct sock_fprog *prog, struct nb_err *err);
/* The zygote's own filter (zygote.h): the deny-list without the mount family, pivot_root, chroot,
 * unshare, setns and namespace clones, which its sandbox children need to build themselves; the
 * rest with the same errno, so stacking it under the instance filter changes no answer. */
int seccomp_build_zygote(struct sock_fprog *prog, struct nb_err *err);

/* This header shadows libseccomp's <seccomp.h> (src/ is on the include path). seccomp.c defines
 * NIMBUS_WANT_LIBSECCOMP and includes <seccomp.h>: found here through the path, #include_next
 * continues the search and reaches the library's header. The pragma (rest of file = system
 * header) keeps -Wpedantic quiet about #include_next. Nobody else needs this. */
#ifdef NIMBUS_WANT_LIBSECCOMP
#pragma GCC system_header
#include_next <seccomp.h>
#endif

#endif
