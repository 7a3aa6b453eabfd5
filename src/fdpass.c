/*
 * fdpass.c - one SOCK_SEQPACKET message with SCM_RIGHTS fds each way (fdpass.h).
 *
 * The control buffer lives on the stack, sized for FDPASS_FDS_MAX; a receive offers the kernel
 * only CMSG_SPACE(max_fds ints) of it, so what counts as "too many fds" (MSG_CTRUNC) is the
 * caller's. Every fd the kernel installed is either handed out or closed before returning.
 */
#include "fdpass.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

union cmsg_buf {
    char buf[CMSG_SPACE(sizeof(int) * FDPASS_FDS_MAX)];
    struct cmsghdr align;
};

int fdpass_send(int sock, const void *head, size_t head_len, const void *payload, size_t len,
                const int *fds, size_t nfds, int flags)
{
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)payload, len}};
    union cmsg_buf cm;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ASSERT(nfds <= FDPASS_FDS_MAX);
    if (nfds) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

ssize_t fdpass_recv(int sock, void *buf, size_t cap, int flags, int *fds, size_t max_fds,
                    size_t *nfds, int *mflags)
{
    struct iovec iov = {buf, cap};
    union cmsg_buf cm;
    ASSERT(max_fds <= FDPASS_FDS_MAX);
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * max_fds)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *nfds = 0;
    *mflags = 0;
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < max_fds)
                fds[(*nfds)++] = got;
            else
                close(got);
        }
    }
    *mflags = mh.msg_flags;
    return n;
}
