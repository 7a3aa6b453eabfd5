/*
 * nimbus_runtime.c - the C runtime library for Lambda functions (see nimbus_runtime.h for the API).
 *
 * Structure: `struct rt` owns one connection to the Runtime API, an llhttp response
 * parser and the buffers of the last response (status, the Lambda-Runtime-* headers, body). One
 * exchange is read at a time: rt_request() writes a whole request with one sendmsg() and parses
 * the reply with llhttp until on_message_complete pauses the parser; bytes past that reply stay in
 * rbuf[rpos..rlen) for the next one. The handler's outcome (POST response/error) goes out in the
 * same sendmsg() as the following GET next (HTTP/1.1 pipelining): one write and one wake-up of the
 * platform per invocation instead of two; next_sent then says the GET is in flight. The connection
 * is kept alive between requests; when a *reused* connection turns out to be closed before any
 * reply byte arrived (the peer timed it out), the request is sent once more on a fresh connection.
 *
 * Transport: the Unix socket named by $NIMBUS_RUNTIME_API_SOCKET ("@name" abstract or "/path";
 * nimbus sets "@nimbus-runtime-api", scoped to the instance's network namespace) when that is set,
 * else TCP to $AWS_LAMBDA_RUNTIME_API (host:port; AWS Lambda, the RIE). Same HTTP either way,
 * except that on a Unix socket replies are awaited in poll() before recv() (see read_response).
 *
 * Invariants: all buffers are NUL-terminated; the pointers handed to the handler in struct
 * nb_invocation point into them and stay valid until the next request. Nothing here allocates per
 * invocation except what the handler's response needs; buffers grow and are reused (the trace id
 * goes into the environment through a fixed buffer given to putenv).
 *
 * Not done here: response streaming, extensions, chunked request bodies, DNS names other than
 * "localhost" in AWS_LAMBDA_RUNTIME_API (so that a statically linked bootstrap needs no NSS).
 */
#include "nimbus_runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define API_PREFIX "/2018-06-01/runtime/"
#define USER_AGENT "nimbus-c-runtime/" NB_RUNTIME_VERSION
#define READ_CHUNK 65536
#define LOG_PREFIX "nimbus-runtime: "

/* A growable byte string, always NUL-terminated once anything was appended. */
struct str {
    char *data;
    size_t len;
    size_t cap;
};

enum hdr {
    H_REQUEST_ID,
    H_DEADLINE,
    H_ARN,
    H_TRACE,
    H_CLIENT_CONTEXT,
    H_COGNITO,
    H_TENANT,
    H_CONTENT_TYPE,
    H__COUNT
};

static const char *const hdr_names[H__COUNT] = {
    [H_REQUEST_ID] = "lambda-runtime-aws-request-id",
    [H_DEADLINE] = "lambda-runtime-deadline-ms",
    [H_ARN] = "lambda-runtime-invoked-function-arn",
    [H_TRACE] = "lambda-runtime-trace-id",
    [H_CLIENT_CONTEXT] = "lambda-runtime-client-context",
    [H_COGNITO] = "lambda-runtime-cognito-identity",
    [H_TENANT] = "lambda-runtime-aws-tenant-id",
    [H_CONTENT_TYPE] = "content-type",
};

struct rt {
    int fd;
    bool reused; /* fd has carried a complete exchange already */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *hostport; /* Host: header value, from the environment */

    llhttp_t parser;
    llhttp_settings_t settings;
    char *rbuf; /* READ_CHUNK bytes; unparsed input is rbuf[rpos..rlen) */
    size_t rpos, rlen;
    bool next_sent; /* a GET next went out with the last POST; its reply is still to be read */

    /* the current response */
    int status;
    bool complete;
    bool got_bytes;
    struct str field;
    struct str value;
    struct str hdr[H__COUNT];
    bool have[H__COUNT];
    struct str body;

    struct str req;       /* request head being written */
    struct str next_head; /* the GET next request, built once */
    struct str path;      /* scratch for post_outcome, reused */
    struct str extra;     /* scratch for extra header lines, reused */
    struct str rid;       /* the current request id (outlives the response buffers) */
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, LOG_PREFIX "out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static void str_reserve(struct str *s, size_t extra)
{
    if (s->len + extra + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + extra + 1)
        cap *= 2;
    s->data = xrealloc(s->data, cap);
    s->cap = cap;
}

static void str_append(struct str *s, const char *p, size_t n)
{
    str_reserve(s, n);
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
}

static void str_appends(struct str *s, const char *p)
{
    str_append(s, p, strlen(p));
}

static void str_appendf(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_appendf(struct str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    str_reserve(s, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(s->data + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

static void str_clear(struct str *s)
{
    s->len = 0;
    if (s->data)
        s->data[0] = '\0';
}

static void str_release(struct str *s)
{
    free(s->data);
    s->data = NULL;
    s->len = s->cap = 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD so the JSON stays valid. */
static void json_append_string(struct str *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    str_append(out, "\"", 1);
    while (left > 0) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            str_append(out, esc, 2);
        } else if (c == '\n') {
            str_append(out, "\\n", 2);
        } else if (c == '\r') {
            str_append(out, "\\r", 2);
        } else if (c == '\t') {
            str_append(out, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            str_appendf(out, "\\u%04x", c);
        } else {
            size_t n = utf8_seq_len(p, left);
            if (n == 0) {
                str_append(out, "\\ufffd", 6);
                n = 1;
            } else {
                str_append(out, (const char *)p, n);
            }
            p += n;
            left -= n;
            continue;
        }
        p++;
        left--;
    }
    str_append(out, "\"", 1);
}

/* Copies s into dst (at most cap-1 bytes), turning control characters into spaces: a value that is
 * safe to put in an HTTP header line. */
static void header_safe_copy(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[i] = '\0';
}

/* ---- llhttp callbacks ------------------------------------------------------------------------ */

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct rt *rt = p->data;
    str_append(&rt->field, at, len);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct rt *rt = p->data;
    str_append(&rt->value, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct rt *rt = p->data;
    for (int i = 0; i < H__COUNT; i++) {
        if (rt->field.len && strcasecmp(rt->field.data, hdr_names[i]) == 0) {
            str_clear(&rt->hdr[i]);
            if (rt->value.len)
                str_append(&rt->hdr[i], rt->value.data, rt->value.len);
            /* RIE sends a header only when it has a value; treat empty as absent too */
            rt->have[i] = rt->value.len > 0;
            break;
        }
    }
    str_clear(&rt->field);
    str_clear(&rt->value);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct rt *rt = p->data;
    rt->status = llhttp_get_status_code(p);
    /* size the body buffer once for a known length (up to the 6 MB event limit and a bit) */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length < (64u << 20))
        str_reserve(&rt->body, (size_t)p->content_length);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct rt *rt = p->data;
    str_append(&rt->body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct rt *rt = p->data;
    rt->complete = true;
    return HPE_PAUSED; /* one response per request: stop right here */
}

/* ---- connection ------------------------------------------------------------------------------ */

static void rt_close(struct rt *rt)
{
    if (rt->fd >= 0)
        close(rt->fd);
    rt->fd = -1;
    rt->reused = false;
    rt->rpos = rt->rlen = 0;
    rt->next_sent = false;
}

static int rt_connect(struct rt *rt)
{
    int fd = socket(rt->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (rt->addr.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    while (connect(fd, (struct sockaddr *)&rt->addr, rt->addrlen) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return -e;
    }
    rt->fd = fd;
    rt->reused = false;
    return 0;
}

/* Parses "host:port" (IPv4 literal, "[IPv6]" literal or "localhost") into rt->addr. */
static int rt_parse_endpoint(struct rt *rt, const char *hostport)
{
    char host[128];
    const char *colon;
    const char *h = hostport;
    size_t hlen;
    if (hostport[0] == '[') {
        const char *close_br = strchr(hostport, ']');
        if (!close_br || close_br[1] != ':')
            return -EINVAL;
        h = hostport + 1;
        hlen = (size_t)(close_br - h);
        colon = close_br + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return -EINVAL;
        hlen = (size_t)(colon - hostport);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
        return -EINVAL;

    memset(&rt->addr, 0, sizeof(rt->addr));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&rt->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&rt->addr;
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        rt->addrlen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        rt->addrlen = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    return 0;
}

/* Parses "@name" (abstract) or "/path" into a Unix socket address in rt->addr. */
static int rt_parse_socket(struct rt *rt, const char *spec)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&rt->addr;
    size_t len = strlen(spec);
    if ((spec[0] != '@' && spec[0] != '/') || len < 2 || len > sizeof(un->sun_path) - 1)
        return -EINVAL;
    memset(&rt->addr, 0, sizeof(rt->addr));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, spec, len);
    if (spec[0] == '@')
        un->sun_path[0] = '\0'; /* abstract: the name is exactly the bytes after the NUL */
    else
        len++; /* a path: count its terminating NUL */
    rt->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
}

static int rt_init(struct rt *rt)
{
    memset(rt, 0, sizeof(*rt));
    rt->fd = -1;
    rt->hostport = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *sock = getenv("NIMBUS_RUNTIME_API_SOCKET");
    if (sock && *sock) {
        /* nimbus: the same Runtime API on a Unix socket; the Host header is a formality */
        if (rt_parse_socket(rt, sock) < 0) {
            fprintf(stderr,
                    LOG_PREFIX "cannot use NIMBUS_RUNTIME_API_SOCKET '%s': expected @name or "
                               "/path\n",
                    sock);
            return -EINVAL;
        }
        if (!rt->hostport || !*rt->hostport)
            rt->hostport = "localhost";
    } else if (!rt->hostport || !*rt->hostport) {
        fprintf(stderr, LOG_PREFIX "AWS_LAMBDA_RUNTIME_API is not set\n");
        return -EINVAL;
    } else if (rt_parse_endpoint(rt, rt->hostport) < 0) {
        fprintf(stderr,
                LOG_PREFIX "cannot use AWS_LAMBDA_RUNTIME_API '%s': expected an IP address and "
                           "port\n",
                rt->hostport);
        return -EINVAL;
    }
    llhttp_settings_init(&rt->settings);
    rt->settings.on_header_field = on_header_field;
    rt->settings.on_header_value = on_header_value;
    rt->settings.on_header_value_complete = on_header_value_complete;
    rt->settings.on_headers_complete = on_headers_complete;
    rt->settings.on_body = on_body;
    rt->settings.on_message_complete = on_message_complete;
    rt->rbuf = xrealloc(NULL, READ_CHUNK);
    str_appendf(&rt->next_head,
                "GET " API_PREFIX "invocation/next HTTP/1.1\r\nHost: %s\r\nUser-Agent: " USER_AGENT
                "\r\n\r\n",
                rt->hostport);
    return 0;
}

static void rt_release(struct rt *rt)
{
    rt_close(rt);
    free(rt->rbuf);
    str_release(&rt->field);
    str_release(&rt->value);
    for (int i = 0; i < H__COUNT; i++)
        str_release(&rt->hdr[i]);
    str_release(&rt->body);
    str_release(&rt->req);
    str_release(&rt->next_head);
    str_release(&rt->path);
    str_release(&rt->extra);
    str_release(&rt->rid);
}

/* Writes head, body and then (when given) a second request, in one sendmsg() when it fits. */
static int send_all(int fd, const char *head, size_t head_len, const void *body, size_t body_len,
                    const struct str *then)
{
    struct iovec iov[3];
    int nv = 0;
    iov[nv++] = (struct iovec){.iov_base = (void *)head, .iov_len = head_len};
    if (body_len)
        iov[nv++] = (struct iovec){.iov_base = (void *)body, .iov_len = body_len};
    if (then)
        iov[nv++] = (struct iovec){.iov_base = then->data, .iov_len = then->len};
    struct iovec *v = iov;
    while (nv > 0) {
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)nv};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t done = (size_t)n;
        while (nv > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            nv--;
        }
        if (nv > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

static int read_response(struct rt *rt)
{
    llhttp_init(&rt->parser, HTTP_RESPONSE, &rt->settings);
    rt->parser.data = rt;
    rt->status = 0;
    rt->complete = false;
    rt->got_bytes = false;
    str_clear(&rt->field);
    str_clear(&rt->value);
    str_clear(&rt->body);
    for (int i = 0; i < H__COUNT; i++) {
        str_clear(&rt->hdr[i]);
        rt->have[i] = false;
    }

    for (;;) {
        if (rt->rpos < rt->rlen) { /* pipelined: the reply may be here already */
            const char *data = rt->rbuf + rt->rpos;
            rt->got_bytes = true;
            llhttp_errno_t e = llhttp_execute(&rt->parser, data, rt->rlen - rt->rpos);
            if (e == HPE_PAUSED && rt->complete) {
                rt->rpos += (size_t)(llhttp_get_error_pos(&rt->parser) - data);
                break;
            }
            rt->rpos = rt->rlen;
            if (e != HPE_OK) {
                fprintf(stderr, LOG_PREFIX "bad HTTP response from the Runtime API: %s (%s)\n",
                        llhttp_errno_name(e), llhttp_get_error_reason(&rt->parser));
                return -EPROTO;
            }
            continue;
        }
        /* On a Unix socket, wait in poll(), not in recv(): the platform consuming what we sent
         * wakes every task sleeping on the socket (the kernel's unix_write_space), a blocked
         * recv() included, while poll() for POLLIN alone is not woken by it. */
        if (rt->addr.ss_family == AF_UNIX) {
            struct pollfd pfd = {.fd = rt->fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
        }
        ssize_t n = recv(rt->fd, rt->rbuf, READ_CHUNK, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        rt->rpos = rt->rlen = 0;
        if (n == 0) {
            if (!rt->got_bytes)
                return -ECONNRESET;
            /* a body delimited by the end of the connection ends here */
            llhttp_finish(&rt->parser);
            if (rt->complete) {
                rt_close(rt);
                return 0;
            }
            fprintf(stderr, LOG_PREFIX "connection closed in the middle of a response\n");
            return -EPROTO;
        }
        rt->rlen = (size_t)n;
    }
    if (!llhttp_should_keep_alive(&rt->parser))
        rt_close(rt);
    else
        rt->reused = true;
    return 0;
}

/*
 * Sends one request and reads its response into rt (status, hdr[], body). extra_headers is a
 * block of complete "Name: value\r\n" lines or NULL. A POST always carries Content-Length. With
 * then_next, a GET next follows in the same write and rt->next_sent says whether it is still in
 * flight (not if the reply closed the connection). Returns 0 or a negative errno for transport
 * failures (the HTTP status is not judged here).
 */
static int rt_request(struct rt *rt, const char *method, const char *path,
                      const char *extra_headers, const void *body, size_t body_len, bool then_next)
{
    str_clear(&rt->req);
    str_appendf(&rt->req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " USER_AGENT "\r\n", method,
                path, rt->hostport);
    if (extra_headers)
        str_appends(&rt->req, extra_headers);
    if (strcmp(method, "GET") != 0)
        str_appendf(&rt->req, "Content-Length: %zu\r\n", body_len);
    str_append(&rt->req, "\r\n", 2);

    for (int attempt = 0;; attempt++) {
        bool was_reused = false;
        int r = 0;
        if (rt->fd < 0)
            r = rt_connect(rt);
        else
            was_reused = rt->reused;
        if (r == 0)
            r = send_all(rt->fd, rt->req.data, rt->req.len, body, body_len,
                         then_next ? &rt->next_head : NULL);
        if (r == 0)
            r = read_response(rt);
        if (r == 0) {
            rt->next_sent = then_next && rt->fd >= 0;
            return 0;
        }
        bool stale =
            was_reused && !rt->got_bytes && (r == -ECONNRESET || r == -EPIPE || r == -ECONNABORTED);
        rt_close(rt);
        if (!stale || attempt > 0)
            return r;
    }
}

/* Appends a percent-encoded path segment (request ids are UUIDs; be safe with anything else). */
static void append_path_segment(struct str *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            str_append(out, (const char *)p, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            str_append(out, esc, 3);
        }
    }
}

/* Builds Lambda's error document: {"errorMessage":..,"errorType":..,"stackTrace":[]}. */
static void build_error_json(struct str *out, const char *type, const char *message)
{
    str_appends(out, "{\"errorMessage\":");
    json_append_string(out, message ? message : "");
    str_appends(out, ",\"errorType\":");
    json_append_string(out, type ? type : "");
    str_appends(out, ",\"stackTrace\":[]}");
}

/* POSTs an error document to path; logs it on stderr as "[ERROR] {json}" first. */
static int rt_post_error(struct rt *rt, const char *path, const char *type, const char *message,
                         bool then_next)
{
    struct str json = {0};
    char type_hdr[256];
    build_error_json(&json, type, message);
    fprintf(stderr, "[ERROR] %s\n", json.data);
    header_safe_copy(type_hdr, sizeof(type_hdr), type && *type ? type : "Runtime.Unknown");
    str_clear(&rt->extra);
    str_appendf(&rt->extra,
                "Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: %s\r\n",
                type_hdr);
    int r = rt_request(rt, "POST", path, rt->extra.data, json.data, json.len, then_next);
    str_release(&json);
    return r;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- public API ------------------------------------------------------------------------------ */

int64_t nb_remaining_ms(const struct nb_invocation *inv)
{
    int64_t left = inv->deadline_ms - now_ms();
    return left > 0 ? left : 0;
}

int nb_response_set(struct nb_response *out, const void *body, size_t len)
{
    char *copy = xrealloc(NULL, len + 1);
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    free(out->body);
    out->body = copy;
    out->body_len = len;
    return 0;
}

int nb_response_printf(struct nb_response *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *buf = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    free(out->body);
    out->body = buf;
    out->body_len = (size_t)n;
    return 0;
}

void nb_response_set_content_type(struct nb_response *out, const char *content_type)
{
    free(out->content_type);
    out->content_type = NULL;
    if (content_type) {
        size_t n = strlen(content_type);
        out->content_type = xrealloc(NULL, n + 1);
        header_safe_copy(out->content_type, n + 1, content_type);
    }
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *buf = xrealloc(NULL, (size_t)n + 1);
    buf[0] = '\0';
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    return buf;
}

int nb_response_error(struct nb_response *out, const char *error_type, const char *fmt, ...)
{
    va_list ap;
    size_t n = strlen(error_type ? error_type : "");
    free(out->error_type);
    free(out->error_message);
    out->error_type = xrealloc(NULL, n + 1);
    memcpy(out->error_type, error_type ? error_type : "", n + 1);
    va_start(ap, fmt);
    out->error_message = vformat(fmt, ap);
    va_end(ap);
    return -1;
}

static void response_release(struct nb_response *out)
{
    free(out->body);
    free(out->content_type);
    free(out->error_type);
    free(out->error_message);
    memset(out, 0, sizeof(*out));
}

int nb_runtime_init_error(const char *error_type, const char *fmt, ...)
{
    struct rt rt;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (rt_init(&rt) == 0) {
        int r = rt_post_error(&rt, API_PREFIX "init/error", error_type, msg, false);
        if (r < 0)
            fprintf(stderr, LOG_PREFIX "POST init/error failed: %s\n", strerror(-r));
    } else {
        fprintf(stderr, "[ERROR] %s: %s\n", error_type, msg);
    }
    rt_release(&rt);
    free(msg);
    return 1;
}

/* Fills inv from the `next` response held in rt. Returns false if the request id is missing. */
static bool fill_invocation(struct rt *rt, struct nb_invocation *inv)
{
    if (!rt->have[H_REQUEST_ID])
        return false;
    memset(inv, 0, sizeof(*inv));
    inv->request_id = rt->hdr[H_REQUEST_ID].data;
    inv->deadline_ms = rt->have[H_DEADLINE] ? strtoll(rt->hdr[H_DEADLINE].data, NULL, 10) : 0;
    inv->invoked_arn = rt->have[H_ARN] ? rt->hdr[H_ARN].data : "";
    inv->trace_id = rt->have[H_TRACE] ? rt->hdr[H_TRACE].data : NULL;
    inv->client_context = rt->have[H_CLIENT_CONTEXT] ? rt->hdr[H_CLIENT_CONTEXT].data : NULL;
    inv->cognito_identity = rt->have[H_COGNITO] ? rt->hdr[H_COGNITO].data : NULL;
    inv->tenant_id = rt->have[H_TENANT] ? rt->hdr[H_TENANT].data : NULL;
    inv->content_type =
        rt->have[H_CONTENT_TYPE] ? rt->hdr[H_CONTENT_TYPE].data : "application/json";
    if (!rt->body.data)
        str_append(&rt->body, "", 0);
    inv->payload = rt->body.data;
    inv->payload_len = rt->body.len;
    return true;
}

/* Posts the handler's outcome, followed in the same write by the next GET next. Returns 0, or a
 * negative errno if the Runtime API is unusable. */
static int post_outcome(struct rt *rt, const char *request_id, int handler_rc,
                        const struct nb_response *out)
{
    struct str *path = &rt->path;
    int r;
    str_clear(path);
    str_appends(path, API_PREFIX "invocation/");
    append_path_segment(path, request_id);
    if (out->error_type || handler_rc != 0) {
        str_appends(path, "/error");
        if (out->error_type) {
            r = rt_post_error(rt, path->data, out->error_type, out->error_message, true);
        } else {
            char msg[64];
            snprintf(msg, sizeof(msg), "handler returned %d", handler_rc);
            r = rt_post_error(rt, path->data, "HandlerError", msg, true);
        }
    } else {
        char ct[256];
        header_safe_copy(ct, sizeof(ct),
                         out->content_type ? out->content_type : "application/json");
        str_clear(&rt->extra);
        str_appendf(&rt->extra, "Content-Type: %s\r\n", ct);
        str_appends(path, "/response");
        if (out->body)
            r = rt_request(rt, "POST", path->data, rt->extra.data, out->body, out->body_len, true);
        else
            r = rt_request(rt, "POST", path->data, rt->extra.data, "null", 4, true);
    }
    if (r == 0 && (rt->status < 200 || rt->status > 299)) {
        /* e.g. 413 for an oversized response: the platform reports it; keep serving */
        fprintf(stderr, LOG_PREFIX "POST %s answered %d: %s\n", path->data, rt->status,
                rt->body.data ? rt->body.data : "");
    }
    return r;
}

/* Reads the reply to the GET next that went out with the last POST; on a connection that closed
 * before any of it arrived, asks again on a fresh one (what rt_request does for a stale one). */
static int read_next(struct rt *rt)
{
    rt->next_sent = false;
    int r = read_response(rt);
    if (r == 0)
        return 0;
    bool stale = !rt->got_bytes && (r == -ECONNRESET || r == -EPIPE || r == -ECONNABORTED);
    rt_close(rt);
    if (!stale)
        return r;
    return rt_request(rt, "GET", API_PREFIX "invocation/next", NULL, NULL, 0, false);
}

/* The trace id into the environment (_X_AMZN_TRACE_ID) without an allocation per invocation:
 * putenv keeps this buffer, which is rewritten in place; setenv only for an oversized id. */
static void set_trace_env(const char *trace_id)
{
    static char env[512] = "_X_AMZN_TRACE_ID=";
    static bool in_env;
    const size_t prefix = sizeof("_X_AMZN_TRACE_ID=") - 1;
    if (!trace_id) {
        if (in_env || getenv("_X_AMZN_TRACE_ID"))
            unsetenv("_X_AMZN_TRACE_ID");
        in_env = false;
        return;
    }
    size_t n = strlen(trace_id);
    if (n >= sizeof(env) - prefix) {
        in_env = false;
        setenv("_X_AMZN_TRACE_ID", trace_id, 1);
        return;
    }
    memcpy(env + prefix, trace_id, n + 1);
    if (!in_env)
        putenv(env);
    in_env = true;
}

int nb_runtime_run(nb_handler_cb handler)
{
    struct rt rt;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!handler) {
        fprintf(stderr, LOG_PREFIX "nb_runtime_run() needs a handler\n");
        return 1;
    }
    if (rt_init(&rt) < 0) {
        rt_release(&rt);
        return 1;
    }

    for (;;) {
        int r = rt.next_sent
                    ? read_next(&rt)
                    : rt_request(&rt, "GET", API_PREFIX "invocation/next", NULL, NULL, 0, false);
        if (r < 0) {
            fprintf(stderr, LOG_PREFIX "GET invocation/next failed: %s\n", strerror(-r));
            break;
        }
        if (rt.status != 200) {
            fprintf(stderr, LOG_PREFIX "GET invocation/next answered %d: %s\n", rt.status,
                    rt.body.data ? rt.body.data : "");
            break;
        }
        struct nb_invocation inv;
        if (!fill_invocation(&rt, &inv)) {
            fprintf(stderr, LOG_PREFIX "invocation without a Lambda-Runtime-Aws-Request-Id\n");
            break;
        }
        set_trace_env(inv.trace_id);

        /* the request id must outlive the response buffers, which the POST reuses */
        str_clear(&rt.rid);
        str_appends(&rt.rid, inv.request_id);
        struct nb_response out = {0};
        int hrc = handler(&inv, &out);
        fflush(stdout);
        r = post_outcome(&rt, rt.rid.data, hrc, &out);
        response_release(&out);
        if (r < 0) {
            fprintf(stderr, LOG_PREFIX "posting the result failed: %s\n", strerror(-r));
            break;
        }
    }
    rt_release(&rt);
    return 1;
}
