/*
 * http.c - HTTP/1.1 server connections: accept, read, parse (llhttp), dispatch, reply, close.
 *
 * A server owns a list of listeners (heap struct listener, each embedding a uv_tcp_t, also for
 * Unix stream sockets, which libuv's stream code serves the same way; the first is the primary,
 * whose port http_server_port reports), a never-started uv_idle_t whose close callback ends the
 * server even when it had no other handle, and a list of connections. Every listener is made by
 * listener_add (bind or take over an fd, listen, append) and closed the same way (on_handle_close).
 * A connection embeds its uv_tcp_t (TCP or Unix), one uv_timer_t (idle, request deadline, linger
 * or resume), the llhttp parser, a fixed 16 KiB read buffer and the one struct nb_http_req it is
 * parsing or serving. Invariants: a connection has at most one request at a time
 * (on_message_complete pauses the parser until the reply; pipelined bytes wait in the read buffer
 * and reading stops while it is full). Handlers run only between llhttp_execute calls and never
 * from inside http_reply*(). A conn is freed in its last close callback, or by the reply that ends
 * its aborted request; a listener in its close callback; the server once every handle it owns
 * (listeners, the idle handle, connections) is closed.
 * Closing after a reply is graceful (shutdown, discard input until EOF or the linger deadline) so a
 * reset cannot destroy the reply in flight. With lim.hold_pipelined_replies, a reply to a request
 * with more input behind it goes to c->held instead of the socket; every write (conn_send) starts
 * with the held bytes, and conn_process flushes them once no request waits for a reply. Not done
 * here: TLS, HTTP/2, upgrades, streamed replies, routing.
 */
#include "http.h"
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"

#define READ_BUF_SIZE (16 * 1024)
#define WRITE_BACKLOG_MAX (1024 * 1024) /* queued reply bytes above which pipelining pauses */
#define LINGER_MS 30000                 /* from a graceful close's start to the hard close */
#define LISTEN_BACKLOG 511

enum req_state {
    REQ_NONE,    /* between requests */
    REQ_PARSING, /* the parser is inside a message */
    REQ_ACTIVE,  /* handed to the handler, not answered */
    REQ_DEAD,    /* its connection died; the handler still holds it */
};

/* TIMER_RESUME: a 0 ms timer that parses pipelined input after an asynchronous reply, so the
 * handler is never called from inside http_reply*(). */
enum timer_mode { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST, TIMER_LINGER, TIMER_RESUME };

struct nb_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    struct nb_http_server *srv;
    struct nb_http_conn *prev, *next;
    llhttp_t parser;
    struct nb_http_req req;
    char *rbuf; /* READ_BUF_SIZE bytes; unparsed input is rbuf[rpos..rlen) */
    size_t rpos, rlen;
    struct nb_buf scratch; /* the target, or "name\0value" of the header being parsed */
    size_t name_len;
    struct nb_http_header *hdrs; /* headers of the message being parsed, copied at its end */
    size_t n_hdrs, hdrs_cap;
    size_t header_bytes;
    size_t body_cap, body_max; /* allocated, and the most it may grow to (+1 for the NUL) */
    const char *expect;        /* the Expect header's value, in the arena */
    struct nb_buf hbuf;        /* reply header block being built */
    struct nb_buf held;        /* replies held for the next write (hold_pipelined_replies) */
    bool hold_write;           /* the reply being written goes to held */
    int err_status;            /* status to answer a parse error with; -1: close without reply */
    int open_handles;
    enum req_state req_state;
    enum timer_mode timer_mode;
    bool reading, in_process, want_close, shutdown_done, eof, closed, free_on_reply;
    bool keep_alive, is_head, http10;
};

/* One listening socket of a server, TCP or Unix stream (a uv_tcp_t serves both). */
struct listener {
    uv_tcp_t tcp; /* first member; data: the server */
    struct listener *next;
    int port; /* its local port; 0 for a non-IP socket */
};

struct nb_http_server {
    struct listener *listeners; /* listening, in the order added: the first is the primary */
    uv_idle_t closer; /* never started; closed by http_server_close, so the server is freed from a
                       * close callback even when it had no other handle */
    size_t n_handles; /* listener handles and the closer not closed yet */
    uv_loop_t *loop;
    struct nb_http_limits lim;
    nb_http_handler_cb handler;
    void *data;
    struct nb_http_conn *conns;
    size_t n_conns;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    time_t date_sec;
    char date[48];
};

struct http_write {
    uv_write_t req;
    struct nb_http_conn *conn;
    char *owned;
    char data[];
};

/* The body of requests without one; http_req_steal_body never hands it out. */
static char empty_body[1];

static void conn_close(struct nb_http_conn *c);
static void conn_process(struct nb_http_conn *c);
static void start_close(struct nb_http_conn *c);
static void send_error(struct nb_http_conn *c, int status);

/* ---- limits, small helpers ---- */

void http_limits_default(struct nb_http_limits *lim)
{
    *lim = (struct nb_http_limits){0}; /* every member not set below is off / NULL */
    lim->max_header_bytes = 64 * 1024;
    lim->max_headers = 100;
    lim->max_body = 6 * 1024 * 1024 + 100;
    lim->header_timeout_ms = 10000;
    lim->idle_timeout_ms = 60000;
    lim->max_conns = 4096;
    lim->too_large_type = NULL;
    lim->too_large_body = NULL;
    lim->on_too_large = NULL;
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {204, "No Content"},
    {202, "Accepted"},
    {201, "Created"},
    {404, "Not Found"},
    {400, "Bad Request"},
    {500, "Internal Server Error"},
    {429, "Too Many Requests"},
    {413, "Content Too Large"},
    {409, "Conflict"},
    {403, "Forbidden"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {100, "Continue"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {401, "Unauthorized"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {431, "Request Header Fields Too Large"},
    {501, "Not Implemented"},
    {505, "HTTP Version Not Supported"},
};

/* Most frequent first; an unknown code gets a neutral phrase (clients ignore it). */
static const char *reason_phrase(int status)
{
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Status";
}

static const char *http_date(struct nb_http_server *srv)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        srv->date_sec = now;
    }
    return srv->date;
}

static void append_u64(struct nb_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof(tmp) - i);
}

static const char *scratch_str(const struct nb_buf *b)
{
    return b->data ? b->data : "";
}

/* ---- timers and reading ---- */

static void timer_set(struct nb_http_conn *c, enum timer_mode mode, uint64_t ms);

static void on_timer(uv_timer_t *t)
{
    struct nb_http_conn *c = t->data;
    switch (c->timer_mode) {
    case TIMER_IDLE:
    case TIMER_LINGER:
        conn_close(c);
        break;
    case TIMER_REQUEST:
        log_debug("msg=\"http request deadline passed\" status=408");
        send_error(c, 408);
        break;
    case TIMER_RESUME:
        c->timer_mode = TIMER_NONE;
        conn_process(c);
        break;
    case TIMER_NONE:
        break;
    }
}

static void timer_set(struct nb_http_conn *c, enum timer_mode mode, uint64_t ms)
{
    if (c->closed)
        return;
    c->timer_mode = mode;
    if (mode == TIMER_RESUME)
        uv_timer_start(&c->timer, on_timer, 0, 0);
    else if (mode == TIMER_NONE || ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct nb_http_conn *c = h->data;
    buf->base = c->rbuf + c->rlen;
    buf->len = READ_BUF_SIZE - c->rlen;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(struct nb_http_conn *c)
{
    if (c->reading || c->closed)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        log_debug("msg=\"http read start failed\" err=\"%s\"", uv_strerror(rc));
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void read_stop(struct nb_http_conn *c)
{
    if (!c->reading || c->closed)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* After input was processed or a reply went out: read while there is room, and arm the timer
 * that fits the state (none while the handler holds a request). */
static void conn_update_io(struct nb_http_conn *c)
{
    if (c->closed || c->want_close)
        return;
    if (c->rlen < READ_BUF_SIZE)
        read_start(c);
    else
        read_stop(c);
    if (c->req_state == REQ_ACTIVE)
        timer_set(c, TIMER_NONE, 0);
    else if (c->req_state == REQ_NONE && c->timer_mode != TIMER_IDLE)
        timer_set(c, TIMER_IDLE, c->srv->lim.idle_timeout_ms);
}

/* ---- the request ---- */

static void request_end(struct nb_http_conn *c)
{
    struct nb_http_req *r = &c->req;
    if (r->body != empty_body)
        free(r->body);
    r->body = empty_body;
    r->body_len = 0;
    r->headers = NULL;
    r->n_headers = 0;
    arena_release(&r->arena);
    c->req_state = REQ_NONE;
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status)
{
    struct http_write *w = (struct http_write *)req;
    struct nb_http_conn *c = w->conn;
    free(w->owned);
    free(w);
    if (c->closed)
        return;
    if (status < 0) {
        log_debug("msg=\"http write failed\" err=\"%s\"", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->timer_mode == TIMER_IDLE)
        timer_set(c, TIMER_IDLE, c->srv->lim.idle_timeout_ms);
    if (!c->in_process && !c->want_close && c->rpos < c->rlen)
        conn_process(c);
}

static int conn_send_now(struct nb_http_conn *c, const char *hdr, size_t hdr_len, const char *body,
                         size_t body_len, char *owned);

#define HOLD_MAX 4096 /* the largest reply hold_pipelined_replies holds */

/* Sends the held replies, hdr (copied if needed) then body; consumes owned (== body or NULL) in
 * every case. With c->hold_write, appends them to c->held instead. Returns 0, or a negative code
 * when the connection failed (the caller closes it). */
static int conn_send(struct nb_http_conn *c, const char *hdr, size_t hdr_len, const char *body,
                     size_t body_len, char *owned)
{
    if (c->hold_write && !c->closed) {
        c->hold_write = false;
        buf_append(&c->held, hdr, hdr_len);
        if (body_len)
            buf_append(&c->held, body, body_len);
        free(owned);
        return 0;
    }
    if (!c->held.len)
        return conn_send_now(c, hdr, hdr_len, body, body_len, owned);
    buf_append(&c->held, hdr, hdr_len);
    int rc = conn_send_now(c, c->held.data, c->held.len, body, body_len, owned);
    buf_reset(&c->held);
    return rc;
}

/* Tries a direct write first; what is left goes to uv_write. */
static int conn_send_now(struct nb_http_conn *c, const char *hdr, size_t hdr_len, const char *body,
                         size_t body_len, char *owned)
{
    if (c->closed) {
        free(owned);
        return 0;
    }
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, (unsigned)hdr_len),
                        uv_buf_init((char *)body, (unsigned)body_len)};
    unsigned nbufs = body_len ? 2 : 1;
    size_t done = 0, total = hdr_len + body_len;
    if (uv_stream_get_write_queue_size(s) == 0) {
        int n = uv_try_write(s, bufs, nbufs);
        if (n < 0 && n != UV_EAGAIN) {
            free(owned);
            log_debug("msg=\"http write failed\" err=\"%s\"", uv_strerror(n));
            return n;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done == total) {
        free(owned);
        return 0;
    }
    size_t hdr_rem = done < hdr_len ? hdr_len - done : 0;
    size_t body_off = done > hdr_len ? done - hdr_len : 0;
    size_t body_rem = body_len - body_off;
    size_t copy = hdr_rem + (owned ? 0 : body_rem);
    struct http_write *w = xmalloc(sizeof(*w) + copy);
    w->conn = c;
    w->owned = owned;
    memcpy(w->data, hdr + (hdr_len - hdr_rem), hdr_rem);
    nbufs = 0;
    if (owned) {
        if (hdr_rem)
            bufs[nbufs++] = uv_buf_init(w->data, (unsigned)hdr_rem);
        bufs[nbufs++] = uv_buf_init(owned + body_off, (unsigned)body_rem);
    } else {
        memcpy(w->data + hdr_rem, body + body_off, body_rem);
        bufs[nbufs++] = uv_buf_init(w->data, (unsigned)copy);
    }
    int rc = uv_write(&w->req, s, bufs, nbufs, on_write);
    if (rc < 0) {
        free(w->owned);
        free(w);
        log_debug("msg=\"http write failed\" err=\"%s\"", uv_strerror(rc));
        return rc;
    }
    return 0;
}

static bool header_forbidden(const char *name)
{
    switch (name[0]) {
    case 'c':
    case 'C':
        return !strcasecmp(name, "content-length") || !strcasecmp(name, "connection");
    case 'd':
    case 'D':
        return !strcasecmp(name, "date");
    case 't':
    case 'T':
        return !strcasecmp(name, "transfer-encoding");
    default:
        return false;
    }
}

static void append_header_value(struct nb_buf *b, const char *v)
{
    size_t n = strcspn(v, "\r\n");
    buf_append(b, v, n);
    while (v[n]) { /* CR or LF: never let a handler split the header block */
        buf_append(b, " ", 1);
        v += n + 1;
        n = strcspn(v, "\r\n");
        buf_append(b, v, n);
    }
}

/* Builds the status line and headers in c->hbuf and sends them with body. Consumes owned. */
static int write_response(struct nb_http_conn *c, int status, const struct nb_http_header *hdrs,
                          size_t n_hdrs, const char *body, size_t len, char *owned, bool close)
{
    struct nb_buf *b = &c->hbuf;
    bool no_length = status < 200 || status == 204 || status == 304;
    buf_reset(b);
    buf_append(b, "HTTP/1.1 ", 9);
    if (status < 100 || status > 999)
        BUG("bad http status %d", status);
    if (len > UINT32_MAX)
        BUG("http reply body of %zu bytes", len);
    append_u64(b, (uint64_t)status);
    buf_append(b, " ", 1);
    buf_appends(b, reason_phrase(status));
    buf_append(b, "\r\nDate: ", 8);
    buf_appends(b, http_date(c->srv));
    buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < n_hdrs; i++) {
        const char *name = hdrs[i].name;
        size_t nlen = strlen(name);
        if (!nlen || strcspn(name, "\r\n:\t ") != nlen || header_forbidden(name)) {
            log_warn("msg=\"http reply header dropped\" name=\"%.64s\"", name);
            continue;
        }
        buf_append(b, name, nlen);
        buf_append(b, ": ", 2);
        append_header_value(b, hdrs[i].value ? hdrs[i].value : "");
        buf_append(b, "\r\n", 2);
    }
    if (!no_length) {
        buf_append(b, "Content-Length: ", 16);
        append_u64(b, len);
        buf_append(b, "\r\n", 2);
    }
    if (close)
        buf_append(b, "Connection: close\r\n", 19);
    else if (c->http10)
        buf_append(b, "Connection: keep-alive\r\n", 24);
    buf_append(b, "\r\n", 2);
    if (no_length || c->is_head) {
        free(owned);
        owned = NULL;
        body = NULL;
        len = 0;
    }
    return conn_send(c, b->data, b->len, body, len, owned);
}

static const char *error_body(int status)
{
    switch (status) {
    case 408:
        return "request timeout\n";
    case 413:
        return "request body too large\n";
    case 417:
        return "expectation failed\n";
    case 431:
        return "request headers too large\n";
    case 505:
        return "http version not supported\n";
    default:
        return "bad request\n";
    }
}

/* Answers a request the handler never saw (parse error, limit, deadline) and closes. */
static void send_error(struct nb_http_conn *c, int status)
{
    if (c->closed || c->want_close)
        return;
    if (c->req_state == REQ_PARSING)
        request_end(c);
    const struct nb_http_limits *lim = &c->srv->lim;
    struct nb_http_header hdrs[2];
    size_t n = 0;
    const char *body;
    if (status == 413 && lim->on_too_large)
        lim->on_too_large(c->srv->data);
    if (status == 413 && (lim->too_large_type || lim->too_large_body)) {
        if (lim->too_large_type)
            hdrs[n++] = (struct nb_http_header){"x-amzn-ErrorType", lim->too_large_type};
        hdrs[n++] = (struct nb_http_header){"Content-Type", "application/json"};
        body = lim->too_large_body ? lim->too_large_body : "";
    } else {
        hdrs[n++] = (struct nb_http_header){"Content-Type", "text/plain"};
        body = error_body(status);
    }
    c->keep_alive = false;
    c->is_head = false;
    if (write_response(c, status, hdrs, n, body, strlen(body), NULL, true) < 0) {
        conn_close(c);
        return;
    }
    start_close(c);
}

/* ---- closing ---- */

static void srv_maybe_finish(struct nb_http_server *srv)
{
    if (!srv->closing || srv->n_handles || srv->n_conns)
        return;
    void (*cb)(void *) = srv->close_cb;
    void *data = srv->close_data;
    free((char *)srv->lim.too_large_type);
    free((char *)srv->lim.too_large_body);
    free(srv);
    if (cb)
        cb(data);
}

static void on_conn_close(uv_handle_t *h)
{
    struct nb_http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct nb_http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    free(c->rbuf);
    c->rbuf = NULL;
    buf_release(&c->scratch);
    buf_release(&c->hbuf);
    buf_release(&c->held);
    free(c->hdrs);
    c->hdrs = NULL;
    if (c->req_state == REQ_PARSING)
        request_end(c);
    if (c->req_state == REQ_DEAD)
        c->free_on_reply = true; /* the handler's reply frees it */
    else
        free(c);
    srv_maybe_finish(srv);
}

/* Hard close: both handles now; a request the handler holds becomes dead and is told so. */
static void conn_close(struct nb_http_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    uv_close((uv_handle_t *)&c->timer, on_conn_close);
    if (c->req_state == REQ_ACTIVE) {
        c->req_state = REQ_DEAD;
        c->req.server = NULL;
        nb_http_abort_cb cb = c->req.on_abort;
        c->req.on_abort = NULL;
        if (cb)
            cb(&c->req, c->req.abort_data);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct nb_http_conn *c =
        (struct nb_http_conn *)((char *)req - offsetof(struct nb_http_conn, shutdown_req));
    c->shutdown_done = true;
    if (!c->closed && (status < 0 || c->eof))
        conn_close(c);
}

/* Graceful close: no more requests; flush queued replies, send FIN, discard input until the
 * client's EOF or the linger deadline. Never called while the handler holds a request. */
static void start_close(struct nb_http_conn *c)
{
    if (c->closed || c->want_close)
        return;
    ASSERT(c->req_state != REQ_ACTIVE);
    c->want_close = true;
    if (c->req_state == REQ_PARSING)
        request_end(c);
    c->rpos = c->rlen = 0;
    timer_set(c, TIMER_LINGER, LINGER_MS);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    if (!c->eof)
        read_start(c);
}

/* ---- parsing (llhttp callbacks; they never call the handler) ---- */

static int parse_fail(struct nb_http_conn *c, int status)
{
    c->err_status = status;
    return -1;
}

static int count_bytes(struct nb_http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->lim.max_header_bytes)
        return parse_fail(c, 431);
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    if (c->closed || c->want_close)
        return -1;
    r->method = "";
    r->target = r->path = r->query = "";
    r->headers = NULL;
    r->n_headers = 0;
    r->body = empty_body;
    r->body_len = 0;
    r->received_ns = 0;
    r->server = c->srv;
    r->user = NULL;
    r->on_abort = NULL;
    r->abort_data = NULL;
    r->conn = c;
    r->reply_hooks = NULL;
    c->req_state = REQ_PARSING;
    c->header_bytes = 0;
    c->n_hdrs = 0;
    c->body_cap = 0;
    c->body_max = 0;
    c->expect = NULL;
    c->err_status = 0;
    buf_reset(&c->scratch);
    timer_set(c, TIMER_REQUEST, c->srv->lim.header_timeout_ms);
    return 0;
}

static int on_span(llhttp_t *p, const char *at, size_t len)
{
    struct nb_http_conn *c = p->data;
    if (count_bytes(c, len) < 0)
        return -1;
    buf_append(&c->scratch, at, len);
    return 0;
}

static int on_count(llhttp_t *p, const char *at, size_t len)
{
    return count_bytes(p->data, len);
}

static int on_url_complete(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    if (count_bytes(c, 4) < 0) /* two spaces and CRLF of the request line */
        return -1;
    size_t n = c->scratch.len;
    r->target = arena_strndup(&r->arena, scratch_str(&c->scratch), n);
    const char *q = memchr(r->target, '?', n);
    if (q) {
        r->path = arena_strndup(&r->arena, r->target, (size_t)(q - r->target));
        r->query = q + 1;
    } else {
        r->path = r->target;
        r->query = "";
    }
    buf_reset(&c->scratch);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    if (c->n_hdrs >= c->srv->lim.max_headers)
        return parse_fail(c, 431);
    c->name_len = c->scratch.len;
    buf_append(&c->scratch, "", 1); /* the NUL between name and value */
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    if (count_bytes(c, 4) < 0) /* ": " and CRLF */
        return -1;
    const char *name = scratch_str(&c->scratch);
    const char *v = name + c->name_len + 1;
    size_t vlen = c->scratch.len - c->name_len - 1;
    if (memchr(name, '\0', c->name_len) || memchr(v, '\0', vlen))
        return parse_fail(c, 400);
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    char *s = arena_alloc(&r->arena, c->name_len + vlen + 2);
    memcpy(s, name, c->name_len + 1);
    memcpy(s + c->name_len + 1, v, vlen);
    s[c->name_len + 1 + vlen] = '\0';
    if (c->n_hdrs == c->hdrs_cap) {
        c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
        c->hdrs = xrealloc(c->hdrs, c->hdrs_cap * sizeof(*c->hdrs));
    }
    c->hdrs[c->n_hdrs++] = (struct nb_http_header){s, s + c->name_len + 1};
    if (c->name_len == 6 && !c->expect && !strcasecmp(s, "expect"))
        c->expect = s + 7;
    buf_reset(&c->scratch);
    return 0;
}

static void send_continue(struct nb_http_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (conn_send(c, msg, sizeof(msg) - 1, NULL, 0, NULL) < 0)
        c->err_status = -1;
}

static int on_headers_complete(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    const struct nb_http_limits *lim = &c->srv->lim;
    if (p->http_major != 1 || p->http_minor > 1)
        return parse_fail(c, 505);
    if (p->method == HTTP_CONNECT)
        return parse_fail(c, 400);
    p->upgrade = 0; /* no protocol switches: an Upgrade header is just a header */
    r->method = llhttp_method_name((llhttp_method_t)p->method);
    r->n_headers = c->n_hdrs;
    r->headers = arena_alloc(&r->arena, (c->n_hdrs ? c->n_hdrs : 1) * sizeof(*r->headers));
    if (c->n_hdrs)
        memcpy(r->headers, c->hdrs, c->n_hdrs * sizeof(*r->headers));
    c->is_head = p->method == HTTP_HEAD;
    c->http10 = p->http_minor == 0;
    bool has_body = false;
    if (p->flags & F_CHUNKED) {
        has_body = true;
        c->body_max = lim->max_body + 1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        if (p->content_length > lim->max_body)
            return parse_fail(c, 413);
        has_body = p->content_length > 0;
        c->body_max = (size_t)p->content_length + 1;
    }
    if (c->expect && !c->http10) {
        if (strcasecmp(c->expect, "100-continue") != 0)
            return parse_fail(c, 417);
        if (has_body)
            send_continue(c);
        if (c->err_status < 0 || c->closed)
            return -1;
    }
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    if (p->content_length > c->srv->lim.max_body - c->req.body_len)
        return parse_fail(c, 413);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    size_t max = c->srv->lim.max_body;
    if (len > max - r->body_len)
        return parse_fail(c, 413);
    /* grow geometrically as bytes arrive (a Content-Length is a claim, not memory to reserve) */
    if (r->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap * 2 : 16384;
        if (cap < r->body_len + len + 1)
            cap = r->body_len + len + 1;
        if (cap > c->body_max)
            cap = c->body_max;
        r->body = r->body == empty_body ? xmalloc(cap) : xrealloc(r->body, cap);
        c->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct nb_http_conn *c = p->data;
    struct nb_http_req *r = &c->req;
    if (r->body != empty_body)
        r->body[r->body_len] = '\0';
    r->received_ns = mono_ns();
    c->keep_alive = llhttp_should_keep_alive(p);
    timer_set(c, TIMER_NONE, 0);
    return HPE_PAUSED; /* one request at a time: the rest waits in the read buffer */
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_span,
    .on_method = on_count,
    .on_version = on_count,
    .on_header_field = on_span,
    .on_header_value = on_span,
    .on_url_complete = on_url_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the connection's main loop ---- */

static void conn_fail(struct nb_http_conn *c, llhttp_errno_t e)
{
    if (c->closed)
        return;
    if (c->err_status < 0) {
        conn_close(c);
        return;
    }
    int status = c->err_status ? c->err_status : 400;
    log_debug("msg=\"http request rejected\" status=%d err=%s reason=\"%s\"", status,
              llhttp_errno_name(e), llhttp_get_error_reason(&c->parser));
    send_error(c, status);
}

static void conn_dispatch(struct nb_http_conn *c)
{
    c->req_state = REQ_ACTIVE;
    c->srv->handler(&c->req, c->srv->data);
}

/* Parses buffered input and hands complete requests to the handler, one at a time, until the
 * input is used up, a request is pending, the write backlog is too large or the connection
 * closes. Not re-entered: a reply from inside the handler just lets the loop go on. */
static void conn_process(struct nb_http_conn *c)
{
    if (c->in_process)
        return;
    c->in_process = true;
    while (!c->closed && !c->want_close && c->req_state != REQ_ACTIVE && c->rpos < c->rlen) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_BACKLOG_MAX)
            break;
        const char *data = c->rbuf + c->rpos;
        llhttp_errno_t e = llhttp_execute(&c->parser, data, c->rlen - c->rpos);
        if (e == HPE_OK) {
            c->rpos = c->rlen;
        } else if (e == HPE_PAUSED) {
            c->rpos += (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
            conn_dispatch(c);
        } else {
            conn_fail(c, e);
            break;
        }
    }
    c->in_process = false;
    if (c->held.len && !c->closed && c->req_state != REQ_ACTIVE &&
        conn_send(c, "", 0, NULL, 0, NULL) < 0) {
        conn_close(c);
        return;
    }
    if (c->closed || c->want_close)
        return;
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rpos) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    conn_update_io(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct nb_http_conn *c = s->data;
    if (nread > 0) {
        if (c->want_close) /* lingering: discard */
            return;
        c->rlen += (size_t)nread;
        conn_process(c);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) { /* buffer full; conn_update_io stops reading before this */
        read_stop(c);
        return;
    }
    if (nread != UV_EOF) {
        log_debug("msg=\"http read failed\" err=\"%s\"", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    c->eof = true;
    read_stop(c);
    if (c->want_close) {
        if (c->shutdown_done)
            conn_close(c);
    } else if (c->req_state == REQ_ACTIVE) {
        conn_close(c); /* the client is gone: abort the pending request */
    } else {
        start_close(c); /* flush queued replies, then close */
    }
}

/* ---- connections and the server ---- */

static struct nb_http_conn *conn_new(struct nb_http_server *srv)
{
    struct nb_http_conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->rbuf = xmalloc(READ_BUF_SIZE);
    arena_init(&c->req.arena);
    c->req.body = empty_body;
    c->req.conn = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    return c;
}

static void conn_start(struct nb_http_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1); /* fails harmlessly on a socketpair */
    conn_update_io(c);
}

static void on_reject_close(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct nb_http_server *srv = l->data;
    if (status < 0) {
        log_warn("msg=\"http accept failed\" err=\"%s\"", uv_strerror(status));
        return;
    }
    if (srv->closing)
        return;
    if (srv->n_conns >= srv->lim.max_conns) {
        uv_tcp_t *t = xmalloc(sizeof(*t));
        uv_tcp_init(srv->loop, t);
        if (uv_accept(l, (uv_stream_t *)t) == 0)
            log_warn("msg=\"http connection refused\" reason=max_conns max_conns=%zu",
                     srv->lim.max_conns);
        uv_close((uv_handle_t *)t, on_reject_close);
        return;
    }
    struct nb_http_conn *c = conn_new(srv);
    int rc = uv_accept(l, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        log_warn("msg=\"http accept failed\" err=\"%s\"", uv_strerror(rc));
        conn_close(c);
        return;
    }
    conn_start(c);
}

int http__serve_fd(struct nb_http_server *srv, int fd, struct nb_err *err)
{
    if (srv->closing) {
        close(fd);
        return err_set(err, EINVAL, "cannot serve fd %d: server is closing", fd);
    }
    struct nb_http_conn *c = conn_new(srv);
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc < 0) {
        close(fd);
        conn_close(c);
        return err_set(err, rc, "cannot serve fd %d: %s", fd, uv_strerror(rc));
    }
    conn_start(c);
    return 0;
}

struct nb_http_server *http_server_new(uv_loop_t *loop, const struct nb_http_limits *lim,
                                       nb_http_handler_cb handler, void *data)
{
    struct nb_http_server *srv = xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    if (lim)
        srv->lim = *lim;
    else
        http_limits_default(&srv->lim);
    srv->lim.too_large_type = srv->lim.too_large_type ? xstrdup(srv->lim.too_large_type) : NULL;
    srv->lim.too_large_body = srv->lim.too_large_body ? xstrdup(srv->lim.too_large_body) : NULL;
    srv->handler = handler;
    srv->data = data;
    uv_idle_init(loop, &srv->closer);
    srv->closer.data = srv;
    srv->n_handles = 1;
    return srv;
}

static void on_handle_close(uv_handle_t *h)
{
    struct nb_http_server *srv = h->data;
    if (h != (uv_handle_t *)&srv->closer)
        free(h); /* the struct listener, whose first member h is */
    srv->n_handles--;
    srv_maybe_finish(srv);
}

static int local_port(const uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* The one way a listener is made: binds a new socket to addr (fd < 0) or takes over fd (bound and
 * listening, consumed: closed on failure too), listens and appends the listener to the server's
 * list. On failure nothing is added (a handle that owns the socket closes it in the background,
 * so the server may try again at once) and the error says "cannot <what>: <cause>". */
static int listener_add(struct nb_http_server *srv, const struct sockaddr *addr, int fd,
                        const char *what, struct nb_err *err)
{
    if (srv->closing) {
        if (fd >= 0)
            close(fd);
        return err_set(err, EINVAL, "cannot %s: server is closing", what);
    }
    struct listener *l = xcalloc(1, sizeof(*l));
    uv_tcp_init(srv->loop, &l->tcp);
    l->tcp.data = srv;
    srv->n_handles++;
    int rc;
    if (fd < 0)
        rc = uv_tcp_bind(&l->tcp, addr, 0);
    else if ((rc = uv_tcp_open(&l->tcp, fd)) < 0)
        close(fd); /* not the handle's */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->tcp, on_handle_close);
        return err_set(err, rc, "cannot %s: %s", what, uv_strerror(rc));
    }
    l->port = local_port(&l->tcp);
    struct listener **pp = &srv->listeners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = l;
    return 0;
}

int http_server_listen(struct nb_http_server *srv, const char *host, int port, struct nb_err *err)
{
    char what[128];
    snprintf(what, sizeof(what), "listen on '%s:%d'", host, port);
    struct sockaddr_storage ss;
    if (port < 0 || port > 65535 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0))
        return err_set(err, EINVAL, "cannot %s: not an IP address and port", what);
    return listener_add(srv, (struct sockaddr *)&ss, -1, what, err);
}

/* 0 if fd is a listening stream socket; else closes it. */
static int check_listening(int fd, struct nb_err *err)
{
    int type = 0, acc = 0;
    socklen_t len = sizeof(type), alen = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, e, "cannot serve fd %d: %s", fd, strerror(e));
    }
    if (type != SOCK_STREAM || !acc) {
        close(fd);
        return err_set(err, EINVAL, "cannot serve fd %d: not a listening stream socket", fd);
    }
    return 0;
}

int http_server_open(struct nb_http_server *srv, int fd, struct nb_err *err)
{
    int r = check_listening(fd, err);
    if (r < 0)
        return r;
    char what[32];
    snprintf(what, sizeof(what), "serve fd %d", fd);
    return listener_add(srv, NULL, fd, what, err);
}

int http_server_port(const struct nb_http_server *srv)
{
    return srv->listeners ? srv->listeners->port : 0;
}

size_t http_server_conn_count(const struct nb_http_server *srv)
{
    return srv->n_conns;
}

void http_server_drop_connections(struct nb_http_server *srv)
{
    /* conn_close unlinks nothing (that happens in the close callback), so this walk is safe even
     * when an abort callback drops or closes again */
    for (struct nb_http_conn *c = srv->conns; c; c = c->next)
        conn_close(c);
}

void http_server_close(struct nb_http_server *srv, void (*cb)(void *data), void *data)
{
    if (srv->closing)
        BUG("http server closed twice");
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_data = data;
    while (srv->listeners) {
        struct listener *l = srv->listeners;
        srv->listeners = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_handle_close);
    }
    uv_close((uv_handle_t *)&srv->closer, on_handle_close);
    http_server_drop_connections(srv);
}

/* ---- request accessors and replies ---- */

const char *http_req_header(const struct nb_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *pct_decode(struct nb_arena *a, const char *s, size_t n, bool plus_is_space)
{
    char *out = arena_alloc(a, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            if (n - i < 3)
                return NULL;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return NULL;
            ch = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0')
            return NULL;
        *o++ = (char)ch;
    }
    *o = '\0';
    return out;
}

char *http_pct_decode(struct nb_arena *a, const char *s, size_t n)
{
    return pct_decode(a, s, n, false);
}

const char *http_req_query(struct nb_http_req *req, const char *name)
{
    const char *q = req->query;
    size_t nlen = strlen(name);
    while (*q) {
        size_t plen = strcspn(q, "&");
        if (!plen) {
            q++;
            continue;
        }
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq ? (size_t)(eq - q) : plen;
        /* decoding only pays off when the raw key could match */
        if (klen >= nlen && klen <= 3 * nlen) {
            char *k = pct_decode(&req->arena, q, klen, true);
            if (k && !strcmp(k, name)) {
                if (!eq)
                    return "";
                char *v = pct_decode(&req->arena, eq + 1, plen - klen - 1, true);
                if (v)
                    return v;
            }
        }
        q += plen;
        if (*q == '&')
            q++;
    }
    return NULL;
}

char *http_req_steal_body(struct nb_http_req *req, size_t *len)
{
    char *b = req->body;
    if (len)
        *len = req->body_len;
    if (b == empty_body)
        return xcalloc(1, 1);
    req->body = empty_body;
    req->body_len = 0;
    return b;
}

bool http_req_conn_alive(const struct nb_http_req *req)
{
    const struct nb_http_conn *c = req->conn;
    return c->req_state == REQ_ACTIVE && !c->closed;
}

bool http_req_will_close(const struct nb_http_req *req)
{
    const struct nb_http_conn *c = req->conn;
    return !http_req_conn_alive(req) || !c->keep_alive || c->want_close || c->srv->closing;
}

struct nb_http_reply_hook {
    struct nb_http_reply_hook *next;
    nb_http_reply_cb cb;
    void *data;
};

void http_req_on_reply(struct nb_http_req *req, nb_http_reply_cb cb, void *data)
{
    struct nb_http_reply_hook *h = arena_alloc(&req->arena, sizeof(*h)), **tail;
    h->next = NULL;
    h->cb = cb;
    h->data = data;
    for (tail = &req->reply_hooks; *tail; tail = &(*tail)->next)
        ;
    *tail = h;
}

void http_req_peer(const struct nb_http_req *req, char *buf, size_t len)
{
    const struct nb_http_conn *c = req->conn;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    snprintf(buf, len, "-");
    if (c->closed || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(buf, len, "%s:%d", ip, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(in6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "local");
    }
}

static void reply(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                  size_t n_hdrs, const char *body, size_t len, char *owned)
{
    struct nb_http_conn *c = req->conn;
    if (!c || &c->req != req)
        BUG("http reply to something that is not a request");
    if (c->req_state == REQ_ACTIVE || c->req_state == REQ_DEAD) {
        struct nb_http_reply_hook *h = req->reply_hooks;
        req->reply_hooks = NULL; /* once, even if a hook misbehaves */
        for (; h; h = h->next)
            h->cb(req, status, hdrs, n_hdrs, h->data);
    }
    if (c->req_state == REQ_DEAD) {
        free(owned);
        request_end(c);
        if (c->free_on_reply)
            free(c);
        return;
    }
    if (c->req_state != REQ_ACTIVE)
        BUG("http reply to a request that is not waiting for one (state %d)", c->req_state);
    bool close = !c->keep_alive || c->srv->closing;
    c->hold_write = c->srv->lim.hold_pipelined_replies && c->in_process && c->rpos < c->rlen &&
                    !close && len <= HOLD_MAX;
    int rc = write_response(c, status, hdrs, n_hdrs, body, len, owned, close);
    c->hold_write = false;
    request_end(c);
    if (rc < 0) {
        conn_close(c);
    } else if (close) {
        start_close(c);
    } else if (!c->in_process) {
        conn_update_io(c);
        if (c->rpos < c->rlen)
            timer_set(c, TIMER_RESUME, 0);
    }
}

void http_reply(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                size_t n_hdrs, const void *body, size_t len)
{
    reply(req, status, hdrs, n_hdrs, body, len, NULL);
}

void http_reply_owned(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                      size_t n_hdrs, char *body, size_t len)
{
    reply(req, status, hdrs, n_hdrs, body, len, body);
}
