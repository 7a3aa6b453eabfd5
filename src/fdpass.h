/*
 * fdpass.h - one message with fds over a SOCK_SEQPACKET socket (sendmsg/recvmsg, SCM_RIGHTS): the
 * transport under the spawner's wire (daemon <-> spawner, spawner.c), the zygote's (spawner <->
 * zygote, zygote.h) and a parked sandbox's spec (sandbox_send_spec, sandbox.c).
 *
 * A message is the bytes of head then payload (the wire's own header and body: nothing is added
 * here, so every wire keeps its format) and at most FDPASS_FDS_MAX fds. Received fds are always
 * CLOEXEC and never leak: those beyond what the caller takes are closed here. Both calls retry
 * EINTR, raise no SIGPIPE, allocate nothing and touch no global state but errno, so a cloned
 * sandbox child may use them. Neither blocks unless flags lets it (MSG_DONTWAIT or 0).
 */
#ifndef NIMBUS_FDPASS_H
#define NIMBUS_FDPASS_H

#include <sys/types.h>

#include "util.h"

#define FDPASS_FDS_MAX 5

/* Sends one message: head (head_len bytes), then payload (len bytes; may be 0), with fds[0..nfds)
 * (nfds <= FDPASS_FDS_MAX; the fds stay the caller's). Returns 0 or -errno. */
int fdpass_send(int sock, const void *head, size_t head_len, const void *payload, size_t len,
                const int *fds, size_t nfds, int flags);
/* Receives one message into buf (cap bytes). Returns its length, 0 at end of file, or -errno. Its
 * fds (the caller owns them) go to fds[0..*nfds), at most max_fds (<= FDPASS_FDS_MAX): those past
 * max_fds that still fit the control buffer (CMSG_SPACE rounds it up, so it may hold one more) are
 * closed; more than fit set MSG_CTRUNC (the kernel drops them). *mflags gets msg_flags (MSG_TRUNC:
 * buf was too small; MSG_CTRUNC); both outputs are 0 on error. */
ssize_t fdpass_recv(int sock, void *buf, size_t cap, int flags, int *fds, size_t max_fds,
                    size_t *nfds, int *mflags);

#endif
