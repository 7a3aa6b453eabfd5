/*
 * test_http.c - the HTTP server on a real loop and real sockets.
 *
 * Every test starts a server on 127.0.0.1 port 0 (or on an fd) in its own uv loop and drives it
 * from non-blocking client sockets on the same thread: pump() alternates client I/O with
 * uv_run(UV_RUN_NOWAIT) until a condition holds or 5 s pass. The handler's behaviour is chosen
 * by the request path (/echo, /defer/<ms>, /hold, /big, /inject, /hook and /hookhold for reply
 * hooks). Teardown closes the server and requires uv_loop_close() to succeed, so a leaked handle
 * fails the test; ASan catches a use-after-free on late replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "http.h"
#include "http_internal.h"
#include "router.h"

/* ---- the handler under test ---- */

struct hstate {
    int calls, replies, outstanding, max_outstanding, aborts, abort_alive;
    bool abort_reply_inside, hold_no_abort, drop_in_handler;
    struct nb_http_req *held;
    int held_count;
    bool held_will_close;
    bool in_reply; /* set around asynchronous replies */
    int reentered; /* handler calls from inside http_reply: must stay 0 */
};
static struct hstate H;
/* bigger than loopback socket buffers and the 1 MiB write backlog, so uv_write and the
 * pipelining pause on a full write queue both run */
#define BIG_REPLY (8 * 1024 * 1024)
static uv_loop_t loop;
static struct nb_http_server *srv;

static void answered(void)
{
    H.replies++;
    H.outstanding--;
}

static void echo(struct nb_http_req *req)
{
    const char *qa = http_req_query(req, "a");
    const char *qb = http_req_query(req, "b");
    const char *xt = http_req_header(req, "x-test");
    struct nb_http_header hdrs[] = {
        {"X-Method", req->method},
        {"X-Path", req->path},
        {"X-Target", req->target},
        {"X-Query-A", qa ? qa : "(none)"},
        {"X-Query-B", qb ? qb : "(none)"},
        {"X-Test", xt ? xt : "(none)"},
        {"X-Headers", arena_printf(&req->arena, "%zu", req->n_headers)},
    };
    size_t len;
    char *body = http_req_steal_body(req, &len);
    answered();
    http_reply_owned(req, 200, hdrs, ARRAY_SIZE(hdrs), body, len);
}

struct deferred {
    uv_timer_t t;
    struct nb_http_req *req;
};

static void on_deferred_close(uv_handle_t *h)
{
    free(h);
}

static void on_deferred(uv_timer_t *t)
{
    struct deferred *d = (struct deferred *)t;
    struct nb_http_header hdrs[] = {{"X-Path", d->req->path}};
    answered();
    H.in_reply = true;
    http_reply(d->req, 200, hdrs, 1, "deferred", 8);
    H.in_reply = false;
    uv_close((uv_handle_t *)t, on_deferred_close);
}

static void on_abort(struct nb_http_req *req, void *data)
{
    struct hstate *h = data;
    h->aborts++;
    h->abort_alive = http_req_conn_alive(req);
    if (h->abort_reply_inside) {
        h->held = NULL;
        answered();
        http_reply(req, 500, NULL, 0, "gone", 4);
    }
}

/* Reply hooks (http_req_on_reply): what they saw. */
static struct {
    int calls, status, order[4];
    char header[32], peer[80];
} HK;

static void hook_cb(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                    size_t n_hdrs, void *data)
{
    HK.order[HK.calls++ % 4] = (int)(intptr_t)data;
    HK.status = status;
    for (size_t i = 0; i < n_hdrs; i++)
        if (!strcmp(hdrs[i].name, "X-Hook"))
            snprintf(HK.header, sizeof(HK.header), "%s", hdrs[i].value);
}

static void handler(struct nb_http_req *req, void *data)
{
    if (!strncmp(req->path, "/hook", 5)) {
        http_req_peer(req, HK.peer, sizeof(HK.peer));
        http_req_on_reply(req, hook_cb, (void *)(intptr_t)1);
        http_req_on_reply(req, hook_cb, (void *)(intptr_t)2);
        if (!strcmp(req->path, "/hook")) {
            struct nb_http_header h[] = {{"X-Hook", "seen"}};
            H.calls++;
            http_reply(req, 201, h, 1, "ok", 2);
            return;
        }
        /* /hookhold: falls through to /hold below */
        req->path = "/hold";
    }
    H.calls++;
    H.reentered += H.in_reply;
    if (++H.outstanding > H.max_outstanding)
        H.max_outstanding = H.outstanding;
    if (!strncmp(req->path, "/defer/", 7)) {
        struct deferred *d = xcalloc(1, sizeof(*d));
        d->req = req;
        uv_timer_init(&loop, &d->t);
        uv_timer_start(&d->t, on_deferred, (uint64_t)atoi(req->path + 7), 0);
        return;
    }
    if (!strcmp(req->path, "/hold")) {
        H.held = req;
        H.held_count++;
        H.held_will_close = http_req_will_close(req);
        if (!H.hold_no_abort) {
            req->on_abort = on_abort;
            req->abort_data = &H;
        }
        if (H.drop_in_handler)
            http_server_drop_connections(req->server);
        return;
    }
    if (!strcmp(req->path, "/big") || !strcmp(req->path, "/bigcopy")) {
        size_t n = BIG_REPLY;
        char *b = xmalloc(n);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)('a' + i % 26);
        answered();
        if (req->path[4]) { /* /bigcopy: the server copies what it cannot write at once */
            http_reply(req, 200, NULL, 0, b, n);
            free(b);
        } else {
            http_reply_owned(req, 200, NULL, 0, b, n);
        }
        return;
    }
    if (!strcmp(req->path, "/inject")) {
        struct nb_http_header hdrs[] = {
            {"X-Bad", "a\r\nInjected: 1"},
            {"Content-Length", "999"},
            {"connection", "keep-alive"},
            {"Bad Name", "x"},
        };
        answered();
        http_reply(req, 201, hdrs, ARRAY_SIZE(hdrs), "ok", 2);
        return;
    }
    if (!strcmp(req->path, "/nocontent")) {
        answered();
        http_reply(req, 204, NULL, 0, "ignored", 7);
        return;
    }
    echo(req);
}

static void reply_held(void)
{
    ASSERT(H.held);
    struct nb_http_req *r = H.held;
    H.held = NULL;
    answered();
    H.in_reply = true;
    http_reply(r, 200, NULL, 0, "late", 4);
    H.in_reply = false;
}

/* ---- server and loop ---- */

static void start_server(const struct nb_http_limits *lim)
{
    struct nb_err err = {0};
    memset(&H, 0, sizeof(H));
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = http_server_new(&loop, lim, handler, NULL);
    assert_int_equal(http_server_listen(srv, "127.0.0.1", 0, &err), 0);
    assert_true(http_server_port(srv) > 0);
}

static void on_server_closed(void *data)
{
    *(bool *)data = true;
}

static int teardown(void **state)
{
    bool closed = false;
    if (srv)
        http_server_close(srv, on_server_closed, &closed);
    srv = NULL;
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    if (H.held)
        reply_held(); /* a dead request: only freed */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ---- the client ---- */

struct resp {
    int status;
    char *head;
    char *body; /* into the client's input; refreshed after every read */
    size_t body_off, body_len;
};

struct client {
    int fd;
    struct nb_buf out;
    size_t out_off;
    struct nb_buf in;
    size_t parsed;
    bool eof;
    int head_requests; /* how many of the next responses answer HEAD (no body) */
    struct resp resps[512];
    size_t n_resps;
};

static struct client *client_new_port(int port, int rcvbuf)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    if (rcvbuf) /* before connect, so the window is negotiated for it */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    return c;
}

static struct client *client_new(void)
{
    return client_new_port(http_server_port(srv), 0);
}

static void client_free(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->n_resps; i++)
        free(c->resps[i].head);
    buf_release(&c->out);
    buf_release(&c->in);
    free(c);
}

static void client_send(struct client *c, const char *s, size_t n)
{
    buf_append(&c->out, s, n);
}

static void client_sends(struct client *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* Header value of r (case-insensitive), copied to a static buffer; NULL when absent. */
static const char *resp_header(const struct resp *r, const char *name)
{
    static char val[1024];
    size_t nlen = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\r') {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        if (!strncasecmp(p, name, nlen) && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(val, sizeof(val), "%.*s", (int)(eol - v), v);
            return val;
        }
        p = eol;
    }
    return NULL;
}

static void client_parse(struct client *c)
{
    while (c->n_resps < ARRAY_SIZE(c->resps)) {
        const char *b = c->in.data + c->parsed;
        size_t len = c->in.len - c->parsed;
        const char *end = len ? memmem(b, len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return;
        size_t hlen = (size_t)(end - b) + 4;
        struct resp r = {.status = atoi(b + 9), .head = xstrndup(b, hlen)};
        const char *cl = resp_header(&r, "content-length");
        size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
        if (r.status < 200 || r.status == 204 || r.status == 304)
            blen = 0;
        else if (c->head_requests)
            blen = 0;
        if (len < hlen + blen) {
            free(r.head);
            return;
        }
        if (r.status >= 200 && c->head_requests)
            c->head_requests--;
        r.body_len = blen;
        r.body_off = c->parsed + hlen;
        c->parsed += hlen + blen;
        c->resps[c->n_resps++] = r;
    }
}

static void client_fix_bodies(struct client *c)
{
    for (size_t i = 0; i < c->n_resps; i++)
        c->resps[i].body = c->in.data + c->resps[i].body_off;
}

static void client_io(struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->out_off += (size_t)n;
    }
    for (;;) {
        buf_grow(&c->in, 65536);
        ssize_t n = recv(c->fd, c->in.data + c->in.len, 65536, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            continue;
        }
        if (n == 0)
            c->eof = true;
        break;
    }
    client_parse(c);
    client_fix_bodies(c);
}

typedef bool (*cond_fn)(struct client *c, long arg);

/* Runs client I/O and the loop until cond holds; false after 5 s. */
static bool pump(struct client *c, cond_fn cond, long arg)
{
    uint64_t deadline = uv_hrtime() + 5000000000ull;
    while (uv_hrtime() < deadline) {
        if (c)
            client_io(c);
        uv_run(&loop, UV_RUN_NOWAIT);
        if (c)
            client_io(c);
        if (cond(c, arg))
            return true;
        struct pollfd pfd = {.fd = c ? c->fd : -1, .events = POLLIN};
        poll(&pfd, 1, 1);
    }
    return false;
}

/* Runs client I/O and the loop for ms milliseconds. */
static void pump_ms(struct client *c, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
    while (uv_hrtime() < end) {
        if (c)
            client_io(c);
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd pfd = {.fd = c ? c->fd : -1, .events = POLLIN};
        poll(&pfd, 1, 1);
    }
}

static bool have_resps(struct client *c, long n)
{
    return c->n_resps >= (size_t)n;
}

static bool have_eof(struct client *c, long unused)
{
    return c->eof;
}

static bool have_aborts(struct client *c, long n)
{
    return H.aborts >= n;
}

static bool have_calls(struct client *c, long n)
{
    return H.calls >= n;
}

static bool conns_are(struct client *c, long n)
{
    return http_server_conn_count(srv) == (size_t)n;
}

static bool body_is(const struct resp *r, const char *s)
{
    return r->body_len == strlen(s) && !memcmp(r->body, s, r->body_len);
}

/* Sends raw bytes on a fresh connection and expects exactly one response and then EOF. */
static struct resp expect_rejected(const char *raw, size_t len, int status)
{
    struct client *c = client_new();
    client_send(c, raw, len);
    assert_true(pump(c, have_eof, 0));
    if (c->n_resps != 1)
        fail_msg("request %.40s...: %zu responses", raw, c->n_resps);
    if (c->resps[0].status != status)
        fail_msg("request %.40s...: status %d, want %d", raw, c->resps[0].status, status);
    assert_string_equal(resp_header(&c->resps[0], "connection"), "close");
    struct resp r = c->resps[0];
    r.head = xstrdup(r.head);
    r.body = xstrndup(r.body, r.body_len);
    client_free(c);
    return r;
}

static void resp_release(struct resp *r)
{
    free(r->head);
    free(r->body);
}

/* ---- tests ---- */

static void test_get(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /echo?a=1%202&b=x+y&a=no HTTP/1.1\r\nHost: t\r\nX-TEST:  hello \t\r\n"
                    "X-Empty:\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    struct resp *r = &c->resps[0];
    assert_int_equal(r->status, 200);
    assert_true(!strncmp(r->head, "HTTP/1.1 200 OK\r\n", 17));
    assert_string_equal(resp_header(r, "x-method"), "GET");
    assert_string_equal(resp_header(r, "x-path"), "/echo");
    assert_string_equal(resp_header(r, "x-target"), "/echo?a=1%202&b=x+y&a=no");
    assert_string_equal(resp_header(r, "x-query-a"), "1 2"); /* first one wins */
    assert_string_equal(resp_header(r, "x-query-b"), "x y");
    assert_string_equal(resp_header(r, "x-test"), "hello");
    assert_string_equal(resp_header(r, "x-headers"), "3");
    assert_string_equal(resp_header(r, "content-length"), "0");
    assert_non_null(resp_header(r, "date"));
    assert_null(resp_header(r, "connection"));
    assert_false(c->eof);
    assert_int_equal(http_server_conn_count(srv), 1);
    client_free(c);
    assert_true(pump(NULL, conns_are, 0));
}

static void test_reply_hooks(void **state)
{
    memset(&HK, 0, sizeof(HK));
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /hook HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 201);
    /* both hooks, once each, in registration order, with the status and headers replied */
    assert_int_equal(HK.calls, 2);
    assert_int_equal(HK.order[0], 1);
    assert_int_equal(HK.order[1], 2);
    assert_int_equal(HK.status, 201);
    assert_string_equal(HK.header, "seen");
    assert_true(!strncmp(HK.peer, "127.0.0.1:", 10));
    /* the next request on the connection starts without hooks */
    client_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 2));
    assert_int_equal(HK.calls, 2);
    /* a dead request's reply still runs its hooks (the handler did reply) */
    client_sends(c, "GET /hookhold HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_calls, 3));
    assert_non_null(H.held);
    close(c->fd);
    c->fd = -1;
    assert_true(pump(NULL, have_aborts, 1));
    char peer[80];
    http_req_peer(H.held, peer, sizeof(peer));
    assert_string_equal(peer, "-");
    reply_held();
    assert_int_equal(HK.calls, 4);
    assert_int_equal(HK.status, 200);
    client_free(c);
}

static void test_post_body(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    size_t n = 200000;
    char *body = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 % 251);
    char head[128];
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
             n);
    client_sends(c, head);
    client_send(c, body, n);
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 200);
    assert_string_equal(resp_header(&c->resps[0], "x-method"), "POST");
    assert_int_equal(c->resps[0].body_len, n);
    assert_memory_equal(c->resps[0].body, body, n);
    free(body);
    client_free(c);
}

static void test_chunked_body(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                    "GET /echo?a=after HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 2));
    assert_int_equal(c->resps[0].status, 200);
    assert_true(body_is(&c->resps[0], "hello world"));
    assert_string_equal(resp_header(&c->resps[1], "x-query-a"), "after");
    client_free(c);
}

static void test_pipelined_in_order(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    /* the first is answered 50 ms later, the second at once: order must still hold */
    client_sends(c, "GET /defer/50 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /echo?a=second HTTP/1.1\r\nHost: t\r\n\r\n"
                    "POST /echo?a=third HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_true(pump(c, have_resps, 3));
    assert_string_equal(resp_header(&c->resps[0], "x-path"), "/defer/50");
    assert_true(body_is(&c->resps[0], "deferred"));
    assert_string_equal(resp_header(&c->resps[1], "x-query-a"), "second");
    assert_string_equal(resp_header(&c->resps[2], "x-query-a"), "third");
    assert_true(body_is(&c->resps[2], "abc"));
    assert_int_equal(H.max_outstanding, 1); /* never two requests of one connection at once */
    assert_int_equal(H.reentered, 0);
    client_free(c);
}

static void test_keepalive_and_close(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    for (int i = 0; i < 3; i++) {
        client_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_true(pump(c, have_resps, i + 1));
        assert_int_equal(c->resps[i].status, 200);
    }
    assert_int_equal(http_server_conn_count(srv), 1);
    assert_false(c->eof);
    client_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    "GET /echo?a=never HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(c->n_resps, 4);
    assert_string_equal(resp_header(&c->resps[3], "connection"), "close");
    assert_int_equal(H.calls, 4);
    client_free(c);

    /* HTTP/1.0: closes unless keep-alive was asked for */
    c = client_new();
    client_sends(c, "GET /echo HTTP/1.0\r\n\r\n");
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(c->n_resps, 1);
    assert_string_equal(resp_header(&c->resps[0], "connection"), "close");
    client_free(c);
    c = client_new();
    client_sends(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_string_equal(resp_header(&c->resps[0], "connection"), "keep-alive");
    client_sends(c, "GET /echo HTTP/1.0\r\n\r\n");
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(c->n_resps, 2);
    client_free(c);
    assert_true(pump(NULL, conns_are, 0));
}

static int too_large_calls;
static void count_too_large(void *data)
{
    too_large_calls++;
}

static void test_too_large(void **state)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_body = 1024;
    lim.too_large_type = "RequestTooLargeException";
    lim.too_large_body = "{\"message\":\"too big\"}";
    start_server(&lim);

    /* exactly at the limit is fine */
    struct client *c = client_new();
    char *body = xcalloc(1, 5001);
    memset(body, 'x', 5000);
    client_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    client_send(c, body, 1024);
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 200);
    assert_int_equal(c->resps[0].body_len, 1024);
    client_free(c);

    /* over it by Content-Length: answered before the body is read, with the configured shape */
    struct nb_buf req = NB_BUF_INIT;
    buf_appends(&req, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    buf_append(&req, body, 5000);
    struct resp r = expect_rejected(req.data, req.len, 413);
    assert_string_equal(resp_header(&r, "x-amzn-errortype"), "RequestTooLargeException");
    assert_string_equal(resp_header(&r, "content-type"), "application/json");
    assert_string_equal(r.body, "{\"message\":\"too big\"}");
    resp_release(&r);

    /* over it in chunks */
    buf_reset(&req);
    buf_appends(&req, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        buf_appends(&req, "200\r\n");
        buf_append(&req, body, 512);
        buf_appends(&req, "\r\n");
    }
    buf_appends(&req, "0\r\n\r\n");
    r = expect_rejected(req.data, req.len, 413);
    assert_string_equal(resp_header(&r, "x-amzn-errortype"), "RequestTooLargeException");
    resp_release(&r);
    assert_int_equal(H.calls, 1);
    buf_release(&req);
    free(body);

    /* without a configured shape: a plain 413 */
    teardown(NULL);
    lim.too_large_type = lim.too_large_body = NULL;
    start_server(&lim);
    static const char big[] = "POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n";
    r = expect_rejected(big, sizeof(big) - 1, 413);
    assert_null(resp_header(&r, "x-amzn-errortype"));
    resp_release(&r);

    /* a JSON body without an error type (the Runtime API's shape), and the refusal hook */
    teardown(NULL);
    lim.too_large_body = "{\"errorType\":\"RequestEntityTooLarge\"}";
    lim.on_too_large = count_too_large;
    too_large_calls = 0;
    start_server(&lim);
    r = expect_rejected(big, sizeof(big) - 1, 413);
    assert_null(resp_header(&r, "x-amzn-errortype"));
    assert_string_equal(resp_header(&r, "content-type"), "application/json");
    assert_string_equal(r.body, "{\"errorType\":\"RequestEntityTooLarge\"}");
    resp_release(&r);
    assert_int_equal(too_large_calls, 1);
    assert_int_equal(H.calls, 0); /* the handler never saw it */
}

static void test_header_limits(void **state)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_headers = 10;
    lim.max_header_bytes = 512;
    start_server(&lim);
    struct nb_buf req = NB_BUF_INIT;

    buf_appends(&req, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 10; i++)
        buf_appendf(&req, "X-H%d: v\r\n", i);
    buf_appends(&req, "\r\n");
    struct client *c = client_new();
    client_send(c, req.data, req.len);
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 200); /* 10 headers: at the limit */
    client_free(c);

    buf_reset(&req);
    buf_appends(&req, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 11; i++)
        buf_appendf(&req, "X-H%d: v\r\n", i);
    buf_appends(&req, "\r\n");
    struct resp r = expect_rejected(req.data, req.len, 431);
    resp_release(&r);

    buf_reset(&req);
    buf_appends(&req, "GET /echo HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 600; i++)
        buf_append(&req, "b", 1);
    buf_appends(&req, "\r\n\r\n");
    r = expect_rejected(req.data, req.len, 431);
    resp_release(&r);

    buf_reset(&req);
    buf_appends(&req, "GET /");
    for (int i = 0; i < 600; i++)
        buf_append(&req, "u", 1);
    buf_appends(&req, " HTTP/1.1\r\n\r\n");
    r = expect_rejected(req.data, req.len, 431);
    resp_release(&r);
    assert_int_equal(H.calls, 1);
    buf_release(&req);
}

static void test_malformed(void **state)
{
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400},
        {"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nabcde", 400},
        {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"GET / HTTP/1.1\nHost: t\n\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400},
        {"get / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/9.9\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nExpect: bogus\r\n\r\n", 417},
    };
    start_server(NULL);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct resp r = expect_rejected(cases[i].raw, strlen(cases[i].raw), cases[i].status);
        resp_release(&r);
    }
    /* NUL inside a header value */
    static const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    struct resp r = expect_rejected(nul, sizeof(nul) - 1, 400);
    resp_release(&r);
    assert_int_equal(H.calls, 0);
    /* Upgrade is ignored, not honoured: the request is served and the connection stays HTTP */
    struct client *c = client_new();
    client_sends(c, "GET /echo HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                    "GET /echo?a=2 HTTP/1.1\r\n\r\n");
    assert_true(pump(c, have_resps, 2));
    assert_int_equal(c->resps[0].status, 200);
    assert_string_equal(resp_header(&c->resps[1], "x-query-a"), "2");
    client_free(c);
}

/* hold_pipelined_replies (the Runtime API's): the reply to a request with another one pipelined
 * behind it goes out with the next write; without the option it goes out at once. */
static void test_hold_pipelined_replies(void **state)
{
    for (int hold = 0; hold <= 1; hold++) {
        struct nb_http_limits lim;
        http_limits_default(&lim);
        lim.hold_pipelined_replies = hold;
        start_server(&lim);
        struct client *c = client_new();
        client_sends(c, "POST /echo?a=first HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"
                        "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_true(pump(c, have_calls, 2));
        pump_ms(c, 30);
        assert_int_equal(c->n_resps, hold ? 0 : 1); /* held while /hold waits for its reply */
        reply_held();
        assert_true(pump(c, have_resps, 2));
        assert_string_equal(resp_header(&c->resps[0], "x-query-a"), "first");
        assert_true(body_is(&c->resps[0], "ok"));
        assert_true(body_is(&c->resps[1], "late"));
        /* answered at once, both: nothing is left waiting, so the held reply is flushed */
        client_sends(c, "GET /echo?a=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /echo?a=3 HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_true(pump(c, have_resps, 4));
        assert_string_equal(resp_header(&c->resps[2], "x-query-a"), "2");
        assert_string_equal(resp_header(&c->resps[3], "x-query-a"), "3");
        client_free(c);
        if (!hold)
            teardown(state);
    }
}

static void test_deferred_reply(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    uint64_t t0 = uv_hrtime();
    client_sends(c, "GET /defer/40 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_true(uv_hrtime() - t0 >= 35000000ull);
    assert_int_equal(c->resps[0].status, 200);
    assert_true(body_is(&c->resps[0], "deferred"));
    /* and the connection is reusable afterwards */
    client_sends(c, "GET /echo?a=next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 2));
    assert_string_equal(resp_header(&c->resps[1], "x-query-a"), "next");
    client_free(c);
}

static void test_abort_then_late_reply(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_calls, 1));
    assert_non_null(H.held);
    assert_true(http_req_conn_alive(H.held));
    assert_false(H.held_will_close);
    close(c->fd);
    c->fd = -1;
    assert_true(pump(NULL, have_aborts, 1));
    assert_int_equal(H.aborts, 1);
    assert_false(H.abort_alive);
    assert_non_null(H.held); /* still valid: the handler replies later */
    assert_false(http_req_conn_alive(H.held));
    assert_true(http_req_will_close(H.held));
    assert_null(H.held->server);
    assert_string_equal(H.held->path, "/hold");
    assert_true(pump(NULL, conns_are, 0));
    reply_held(); /* writes nothing, frees the request */
    assert_int_equal(H.aborts, 1);
    client_free(c);
}

static void test_abort_reply_inside_callback(void **state)
{
    start_server(NULL);
    H.abort_reply_inside = true;
    struct client *c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_calls, 1));
    shutdown(c->fd, SHUT_WR); /* EOF while pending counts as a disconnect */
    assert_true(pump(c, have_aborts, 1));
    assert_null(H.held);
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(c->n_resps, 0); /* a dead request's reply is not written */
    assert_int_equal(H.replies, 1);
    client_free(c);
}

static void test_abort_without_callback(void **state)
{
    start_server(NULL);
    H.hold_no_abort = true;
    struct client *c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_calls, 1));
    client_free(c);
    assert_true(pump(NULL, conns_are, 0));
    assert_int_equal(H.calls, 1); /* the queued request never reached the handler */
    reply_held();
}

static void test_drop_connections(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_calls, 1));
    struct client *idle = client_new();
    client_sends(idle, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(idle, have_resps, 1));
    http_server_drop_connections(srv);
    assert_int_equal(H.aborts, 1);
    assert_true(pump(c, have_eof, 0));
    assert_true(pump(idle, have_eof, 0));
    assert_true(pump(NULL, conns_are, 0));
    reply_held();
    client_free(c);
    client_free(idle);
    /* still listening */
    c = client_new();
    client_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 200);
    client_free(c);

    /* dropping from inside the handler: the request is dead on return, no crash */
    H.drop_in_handler = true;
    c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(H.aborts, 2);
    assert_int_equal(c->n_resps, 0);
    reply_held();
    client_free(c);
}

static void test_expect_continue(void **state)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_body = 100;
    start_server(&lim);
    struct client *c = client_new();
    client_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                    "Expect: 100-continue\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_int_equal(c->resps[0].status, 100);
    assert_true(!strcmp(c->resps[0].head, "HTTP/1.1 100 Continue\r\n\r\n"));
    assert_int_equal(H.calls, 0);
    client_sends(c, "hello");
    assert_true(pump(c, have_resps, 2));
    assert_int_equal(c->resps[1].status, 200);
    assert_true(body_is(&c->resps[1], "hello"));
    client_free(c);

    /* too large: 413 at once, no 100 */
    static const char big[] = "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n"
                              "Expect: 100-continue\r\n\r\n";
    struct resp r = expect_rejected(big, sizeof(big) - 1, 413);
    resp_release(&r);
    assert_int_equal(H.calls, 1);
}

static void test_timeouts(void **state)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.header_timeout_ms = 100;
    lim.idle_timeout_ms = 150;
    start_server(&lim);

    struct client *c = client_new();
    uint64_t t0 = uv_hrtime();
    client_sends(c, "GET /echo HTTP/1.1\r\nHost");
    assert_true(pump(c, have_eof, 0));
    assert_true(uv_hrtime() - t0 >= 90000000ull);
    assert_int_equal(c->n_resps, 1);
    assert_int_equal(c->resps[0].status, 408);
    client_free(c);

    /* a slow body is covered by the same deadline */
    c = client_new();
    client_sends(c, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_true(pump(c, have_eof, 0));
    assert_int_equal(c->n_resps, 1);
    assert_int_equal(c->resps[0].status, 408);
    client_free(c);

    /* idle: closed silently after the keep-alive timeout, but not while a reply is pending */
    c = client_new();
    client_sends(c, "GET /defer/300 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    t0 = uv_hrtime();
    assert_true(pump(c, have_eof, 0));
    assert_true(uv_hrtime() - t0 >= 100000000ull);
    assert_int_equal(c->n_resps, 1);
    assert_int_equal(c->in.len, c->parsed); /* nothing but the one reply */
    client_free(c);
}

static void test_max_conns(void **state)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_conns = 1;
    start_server(&lim);
    struct client *a = client_new();
    client_sends(a, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(a, have_resps, 1));
    struct client *b = client_new();
    client_sends(b, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(b, have_eof, 0));
    assert_int_equal(b->n_resps, 0);
    client_sends(a, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(a, have_resps, 2));
    assert_int_equal(http_server_conn_count(srv), 1);
    client_free(a);
    client_free(b);
    assert_true(pump(NULL, conns_are, 0));
    b = client_new(); /* room again */
    client_sends(b, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(b, have_resps, 1));
    client_free(b);
}

static void test_head_and_no_content(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    c->head_requests = 1;
    client_sends(c, "HEAD /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                    "GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /echo?a=last HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 3));
    assert_string_equal(resp_header(&c->resps[0], "x-method"), "HEAD");
    assert_string_equal(resp_header(&c->resps[0], "content-length"), "4");
    assert_int_equal(c->resps[1].status, 204);
    assert_null(resp_header(&c->resps[1], "content-length"));
    /* had a body leaked after the HEAD or 204 reply, this one would not parse */
    assert_string_equal(resp_header(&c->resps[2], "x-query-a"), "last");
    assert_int_equal(c->in.len, c->parsed);
    client_free(c);
}

static void test_backpressure(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    int n = 400; /* ~20 KiB: more than the read buffer */
    for (int i = 0; i < n; i++) {
        char line[80];
        snprintf(line, sizeof(line), "GET /echo?a=%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        client_sends(c, line);
    }
    assert_true(pump(c, have_calls, 1));
    pump_ms(c, 100);
    assert_int_equal(H.calls, 1); /* the rest waits for the reply */
    reply_held();
    assert_true(pump(c, have_resps, n + 1));
    assert_true(body_is(&c->resps[0], "late"));
    for (int i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(resp_header(&c->resps[i + 1], "x-query-a"), want);
    }
    assert_int_equal(H.max_outstanding, 1);
    assert_int_equal(H.reentered, 0);
    client_free(c);
}

static void big_reply_slow_reader(const char *path)
{
    start_server(NULL);
    struct client *c = client_new_port(http_server_port(srv), 65536);
    client_sends(c, "GET ");
    client_sends(c, path);
    client_sends(c, " HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?a=after HTTP/1.1\r\n\r\n");
    /* let the server fill the socket before reading anything */
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (c->out_off < c->out.len)
            client_io(c);
    }
    bool ok = pump(c, have_resps, 2);
    if (!ok)
        fail_msg("got %zu bytes, %zu resps, out %zu/%zu", c->in.len, c->n_resps, c->out_off,
                 c->out.len);
    struct resp *r = &c->resps[0];
    assert_int_equal(r->body_len, BIG_REPLY);
    for (size_t i = 0; i < r->body_len; i += 4099)
        assert_int_equal(r->body[i], 'a' + i % 26);
    assert_int_equal(r->body[BIG_REPLY - 1], 'a' + (BIG_REPLY - 1) % 26);
    assert_string_equal(resp_header(&c->resps[1], "x-query-a"), "after");
    client_free(c);
}

static void test_big_reply_slow_reader(void **state)
{
    big_reply_slow_reader("/big");
}

static void test_big_copied_reply_slow_reader(void **state)
{
    big_reply_slow_reader("/bigcopy");
}

static void test_client_reset_during_reply(void **state)
{
    start_server(NULL);
    struct client *c = client_new_port(http_server_port(srv), 65536);
    client_sends(c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
    assert_true(pump(c, have_calls, 1));
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    client_free(c); /* RST with the reply half written */
    assert_true(pump(NULL, conns_are, 0));
    assert_int_equal(H.calls, 1);
    c = client_new();
    client_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    client_free(c);
}

static void test_reply_headers_sanitized(void **state)
{
    start_server(NULL);
    struct client *c = client_new();
    client_sends(c, "GET /inject HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    struct resp *r = &c->resps[0];
    assert_int_equal(r->status, 201);
    assert_true(!strncmp(r->head, "HTTP/1.1 201 Created\r\n", 22));
    assert_string_equal(resp_header(r, "x-bad"), "a  Injected: 1");
    assert_null(strstr(r->head, "\r\nInjected"));
    assert_string_equal(resp_header(r, "content-length"), "2");
    assert_null(resp_header(r, "connection"));
    assert_null(resp_header(r, "bad name"));
    assert_true(body_is(r, "ok"));
    client_free(c);
}

static void test_open_fd_and_serve_fd(void **state)
{
    struct nb_err err = {0};
    memset(&H, 0, sizeof(H));
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = http_server_new(&loop, NULL, handler, NULL);
    assert_int_equal(http_server_port(srv), 0);

    /* not listening: refused and the fd is consumed */
    int bad = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(http_server_open(srv, bad, &err) < 0);
    assert_int_equal(err.code, EINVAL);
    assert_int_equal(fcntl(bad, F_GETFD), -1);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(http_server_open(srv, fd, &err), 0);
    int port = http_server_port(srv);
    assert_true(port > 0);
    /* a second TCP listener serves too; the port reported stays the first one's */
    assert_int_equal(http_server_listen(srv, "127.0.0.1", 0, &err), 0);
    assert_int_equal(http_server_port(srv), port);

    struct client *c = client_new();
    client_sends(c, "GET /echo?a=fd HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_string_equal(resp_header(&c->resps[0], "x-query-a"), "fd");
    client_free(c);

    /* a socketpair served directly (the fuzzer's path) */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(http__serve_fd(srv, sv[0], &err), 0);
    c = xcalloc(1, sizeof(*c));
    c->fd = sv[1];
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    client_sends(c, "GET /echo?a=pair HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_string_equal(resp_header(&c->resps[0], "x-query-a"), "pair");
    client_free(c);

    /* one more listener: an abstract Unix socket served like the TCP one */
    bad = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(http_server_open(srv, bad, &err) < 0);
    assert_int_equal(fcntl(bad, F_GETFD), -1);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int nl = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "nimbus-test-http-%d", getpid());
    socklen_t ul = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)nl);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, ul), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(http_server_open(srv, fd, &err), 0);
    assert_int_equal(http_server_port(srv), port);
    c = xcalloc(1, sizeof(*c));
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&un, ul), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    client_sends(c, "GET /echo?a=unix HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_string_equal(resp_header(&c->resps[0], "x-query-a"), "unix");
    client_free(c);
    /* the TCP listener still serves after it */
    c = client_new();
    client_sends(c, "GET /echo?a=tcp HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(c, have_resps, 1));
    assert_string_equal(resp_header(&c->resps[0], "x-query-a"), "tcp");
    client_free(c);
}

static void test_listen_errors(void **state)
{
    struct nb_err err = {0};
    start_server(NULL);
    struct nb_http_server *other = http_server_new(&loop, NULL, handler, NULL);
    assert_true(http_server_listen(other, "not-an-ip", 0, &err) == -EINVAL);
    int rc = http_server_listen(other, "127.0.0.1", http_server_port(srv), &err);
    assert_true(rc == -EADDRINUSE);
    assert_non_null(strstr(err.msg, "address already in use"));
    assert_int_equal(http_server_port(other), 0); /* the failed listener was not added */
    /* after the failure the server can listen again at once (the old handle closes meanwhile) */
    if (http_server_listen(other, "::1", 0, &err) < 0) /* no IPv6 here */
        assert_int_equal(http_server_listen(other, "127.0.0.1", 0, &err), 0);
    assert_true(http_server_port(other) > 0);
    bool closed = false;
    http_server_close(other, on_server_closed, &closed);
    assert_false(closed); /* never synchronously */
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);

    /* a server that never listened is closed from a later loop callback as well, also right
     * after a failed listen */
    other = http_server_new(&loop, NULL, handler, NULL);
    assert_true(http_server_listen(other, "127.0.0.1", http_server_port(srv), &err) == -EADDRINUSE);
    closed = false;
    http_server_close(other, on_server_closed, &closed);
    assert_false(closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    other = http_server_new(&loop, NULL, handler, NULL);
    closed = false;
    http_server_close(other, on_server_closed, &closed);
    assert_false(closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
}

static void test_pct_decode_and_query(void **state)
{
    struct nb_arena a;
    arena_init(&a);
    assert_string_equal(http_pct_decode(&a, "a%20b%2Fc%3a", 12), "a b/c:");
    assert_string_equal(http_pct_decode(&a, "a+b", 3), "a+b"); /* '+' only in queries */
    assert_string_equal(http_pct_decode(&a, "abcdef", 3), "abc");
    assert_string_equal(http_pct_decode(&a, "", 0), "");
    assert_null(http_pct_decode(&a, "%", 1));
    assert_null(http_pct_decode(&a, "%2", 2));
    assert_null(http_pct_decode(&a, "%2G", 3));
    assert_null(http_pct_decode(&a, "%00", 3));
    assert_null(http_pct_decode(&a, "ab%2", 4));
    assert_string_equal(http_pct_decode(&a, "%41%2", 3), "A"); /* n bounds the input */
    arena_release(&a);

    struct nb_http_req req;
    memset(&req, 0, sizeof(req));
    arena_init(&req.arena);
    req.query = "a=1&b=%zz&b=2&flag&empty=&c=x%2By+z&%61b=k&&d";
    assert_string_equal(http_req_query(&req, "a"), "1");
    assert_string_equal(http_req_query(&req, "b"), "2"); /* the malformed pair is skipped */
    assert_string_equal(http_req_query(&req, "flag"), "");
    assert_string_equal(http_req_query(&req, "empty"), "");
    assert_string_equal(http_req_query(&req, "c"), "x+y z");
    assert_string_equal(http_req_query(&req, "ab"), "k");
    assert_string_equal(http_req_query(&req, "d"), "");
    assert_null(http_req_query(&req, "zz"));
    assert_null(http_req_query(&req, ""));
    req.query = "";
    assert_null(http_req_query(&req, "a"));
    arena_release(&req.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_get, teardown),
        cmocka_unit_test_teardown(test_reply_hooks, teardown),
        cmocka_unit_test_teardown(test_post_body, teardown),
        cmocka_unit_test_teardown(test_chunked_body, teardown),
        cmocka_unit_test_teardown(test_pipelined_in_order, teardown),
        cmocka_unit_test_teardown(test_hold_pipelined_replies, teardown),
        cmocka_unit_test_teardown(test_keepalive_and_close, teardown),
        cmocka_unit_test_teardown(test_too_large, teardown),
        cmocka_unit_test_teardown(test_header_limits, teardown),
        cmocka_unit_test_teardown(test_malformed, teardown),
        cmocka_unit_test_teardown(test_deferred_reply, teardown),
        cmocka_unit_test_teardown(test_abort_then_late_reply, teardown),
        cmocka_unit_test_teardown(test_abort_reply_inside_callback, teardown),
        cmocka_unit_test_teardown(test_abort_without_callback, teardown),
        cmocka_unit_test_teardown(test_drop_connections, teardown),
        cmocka_unit_test_teardown(test_expect_continue, teardown),
        cmocka_unit_test_teardown(test_timeouts, teardown),
        cmocka_unit_test_teardown(test_max_conns, teardown),
        cmocka_unit_test_teardown(test_head_and_no_content, teardown),
        cmocka_unit_test_teardown(test_backpressure, teardown),
        cmocka_unit_test_teardown(test_big_reply_slow_reader, teardown),
        cmocka_unit_test_teardown(test_big_copied_reply_slow_reader, teardown),
        cmocka_unit_test_teardown(test_client_reset_during_reply, teardown),
        cmocka_unit_test_teardown(test_reply_headers_sanitized, teardown),
        cmocka_unit_test_teardown(test_open_fd_and_serve_fd, teardown),
        cmocka_unit_test_teardown(test_listen_errors, teardown),
        cmocka_unit_test(test_pct_decode_and_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
