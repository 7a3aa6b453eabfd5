/*
 * fuzz_http.c - libFuzzer driver for the HTTP connection path (http.c) and the router.
 *
 * Input: byte 0 picks the server (with 1 ms deadlines and hold_pipelined_replies, or neither),
 * how the client ends (EOF, http_server_drop_connections or http_server_close) and the handler's
 * mix; byte 1 seeds the write splits; the rest is the byte stream a client sends. Each input gets
 * a socketpair served through http__serve_fd, so bytes go through the real read, parse,
 * dispatch, reply and close code, split at chosen points. Handlers reply at once, from a timer,
 * from on_abort, or late to a dead request. The oracle is ASan/UBSan/LSan plus: the connection and
 * every request end within 2 s, and whatever the server writes starts with a status line.
 */
#include <errno.h>
#include <sys/socket.h>

#include "http.h"
#include "http_internal.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct nb_http_server *servers[2];
static struct nb_router *router;
static unsigned mode, nreq;
static int pending; /* requests handed out and not yet answered */

struct pend {
    uv_timer_t t;
    struct nb_http_req *req;
};

static void route_cb(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
}

static void reply_now(struct nb_http_req *req, bool owned)
{
    nb_route_cb cb;
    void *rdata;
    struct nb_route_match m;
    enum nb_route_result rr = router_match(router, req, &cb, &rdata, &m);
    const char *q = http_req_query(req, "a");
    const char *h = http_req_header(req, "x-a");
    const char *fn = rr == NB_ROUTE_OK ? route_param(&m, "FunctionName") : NULL;
    struct nb_http_header hdrs[] = {
        {"X-Q", q ? q : ""},
        {"X-H", h ? h : ""},
        {"X-F", fn ? fn : ""},
        {"X-Alive", http_req_conn_alive(req) ? "1" : "0"},
    };
    int status = rr == NB_ROUTE_OK ? 200 : rr == NB_ROUTE_BAD_METHOD ? 405 : 404;
    if (nreq % 7 == 3)
        status = 204;
    pending--;
    if (owned) {
        size_t len;
        char *body = http_req_steal_body(req, &len);
        http_reply_owned(req, status, hdrs, ARRAY_SIZE(hdrs), body, len);
    } else {
        http_reply(req, status, hdrs, ARRAY_SIZE(hdrs), req->body, req->body_len);
    }
}

static void on_pend_close(uv_handle_t *h)
{
    free(h);
}

static void on_pend(uv_timer_t *t)
{
    struct pend *p = (struct pend *)t;
    if (p->req)
        reply_now(p->req, false); /* maybe to a dead request: only frees it */
    uv_close((uv_handle_t *)t, on_pend_close);
}

static void on_abort_reply(struct nb_http_req *req, void *data)
{
    struct pend *p = data;
    if (http_req_conn_alive(req))
        __builtin_trap();
    p->req = NULL;
    reply_now(req, true);
}

static void handler(struct nb_http_req *req, void *data)
{
    unsigned sel = (mode >> 3) + nreq++;
    pending++;
    if (req->body[req->body_len] != '\0')
        __builtin_trap();
    switch (sel % 5) {
    case 0:
        reply_now(req, true);
        return;
    case 1:
        reply_now(req, false);
        return;
    default:
        break;
    }
    struct pend *p = xcalloc(1, sizeof(*p));
    p->req = req;
    uv_timer_init(&loop, &p->t);
    uv_timer_start(&p->t, on_pend, sel % 2, 0);
    if (sel % 5 == 3) {
        req->on_abort = on_abort_reply;
        req->abort_data = p;
    }
}

static struct nb_http_server *server_new(int i)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_body = 2048;
    lim.max_header_bytes = 1024;
    lim.max_headers = 16;
    lim.header_timeout_ms = i ? 1 : 0;
    lim.idle_timeout_ms = i ? 1 : 0;
    lim.hold_pipelined_replies = i; /* with the deadlines: held replies meet timeouts */
    lim.too_large_type = "RequestTooLargeException";
    lim.too_large_body = "{\"message\":\"too large\"}";
    return http_server_new(&loop, &lim, handler, NULL);
}

static void on_server_closed(void *data)
{
    *(bool *)data = true;
}

static void init(void)
{
    uv_loop_init(&loop);
    router = router_new();
    router_add(router, "GET", "/2015-03-31/functions/{FunctionName}", "fuzz:Op", route_cb, NULL);
    router_add(router, "POST", "/2015-03-31/functions/{FunctionName}/invocations", "fuzz:Op",
               route_cb, NULL);
    router_add(router, "*", "/b/{Bucket}/{Key+}", "fuzz:Op", route_cb, NULL);
    for (int i = 0; i < 2; i++)
        servers[i] = server_new(i);
}

static void drain(int fd, struct nb_buf *out)
{
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        if (out->len < 64)
            buf_append(out, buf, (size_t)n < 64 ? (size_t)n : 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!router)
        init();
    if (size < 2)
        return 0;
    mode = data[0];
    nreq = 0;
    uint32_t rnd = data[1] * 2654435761u + 1;
    static const size_t max_chunk[] = {1, 7, 64, 65536};
    size_t maxc = max_chunk[(mode >> 1) & 3];
    data += 2;
    size -= 2;

    struct nb_http_server *srv = servers[mode & 1];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (http__serve_fd(srv, sv[0], NULL) < 0)
        abort();
    struct nb_buf out = NB_BUF_INIT;
    size_t off = 0;
    uint64_t deadline = uv_hrtime() + 2000000000ull;
    while (off < size) {
        rnd = rnd * 1103515245u + 12345u;
        size_t n = 1 + (rnd >> 8) % maxc;
        if (n > size - off)
            n = size - off;
        ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the server closed */
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1], &out);
        if (uv_hrtime() > deadline)
            __builtin_trap(); /* the server stopped reading for good */
    }
    bool closing = (mode & 0xc0) == 0xc0, closed = false;
    if (closing)
        http_server_close(srv, on_server_closed, &closed); /* dead requests outlive it */
    else if (mode & 0x80)
        http_server_drop_connections(srv);
    else
        shutdown(sv[1], SHUT_WR);
    while (closing ? !closed || pending : http_server_conn_count(srv) || pending) {
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1], &out);
        if (uv_hrtime() > deadline)
            __builtin_trap(); /* a connection or a request never ended */
    }
    drain(sv[1], &out);
    close(sv[1]);
    if (closing)
        servers[mode & 1] = server_new(mode & 1);
    if (out.len && (out.len < 9 || memcmp(out.data, "HTTP/1.1 ", 9) != 0))
        __builtin_trap();
    buf_release(&out);
    return 0;
}
