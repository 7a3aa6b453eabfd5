/*
 * http.h - HTTP/1.1 server connections on the libuv loop, parsed strictly by llhttp.
 *
 * One struct nb_http_server per service (the AWS API listener, and one per pooled network
 * namespace for the Runtime API, which listens on TCP and on an abstract Unix socket: a server has
 * a list of listeners, the first one its primary, and its handler does not see which one a
 * connection came from). For every
 * complete request the server calls the handler with a struct nb_http_req; the handler answers now
 * or later (long polls) with exactly one http_reply*(). Requests on one connection are answered in
 * order (pipelining: later requests are parsed and queued, and handed to the handler only after the
 * earlier one was answered). The handler is never called from inside http_reply*(): after an
 * asynchronous reply the next pipelined request is handed over from a 0 ms timer.
 *
 * Ownership: the server owns every request. Strings in a request (path, query, headers, body)
 * live in the request's arena until the request ends, and a request ends only when the handler
 * calls http_reply*() for it: every request handed to the handler gets exactly one reply, even
 * when its connection died first. After that call the request pointer is dead.
 * http_reply() copies headers and body; http_reply_owned() consumes a malloc'd body.
 *
 * Abort and late replies: when the connection of a request that was handed out and not yet
 * answered dies (client EOF or reset, write error, http_server_drop_connections/close), the
 * request is marked dead: http_req_conn_alive() turns false, req->server becomes NULL, and
 * req->on_abort (if set) is called once: from a loop callback, or from inside
 * http_server_drop_connections/close, never from inside http_reply*(). The
 * request stays valid (arena, body, headers) until the handler replies; a reply to a dead
 * request writes nothing and just frees it. The handler may reply from inside on_abort (to
 * release it early) or later from its normal path; it must not reply twice. A handler that
 * never replies leaks the request. A client's EOF counts as a disconnect while a request is
 * pending (HTTP clients do not half-close), but pipelined replies already queued are flushed
 * before the connection closes. While a request is pending the connection keeps reading (so a
 * disconnect is seen at once) until its 16 KiB read buffer is full of pipelined bytes; reading
 * then pauses until the reply.
 *
 * Limits (struct nb_http_limits) are enforced here: header bytes and count, body size (413 with
 * the configured error shape), header and idle deadlines, connection cap. Malformed requests get a
 * 400 and the connection is closed; nothing a client sends can crash or stall the loop.
 * Runs on the loop thread only.
 */
#ifndef NIMBUS_HTTP_H
#define NIMBUS_HTTP_H

#include <uv.h>

#include "arena.h"
#include "err.h"

struct nb_http_server;
struct nb_http_conn;

struct nb_http_header {
    const char *name;  /* NUL-terminated */
    const char *value; /* NUL-terminated, surrounding whitespace trimmed */
};

struct nb_http_req;
/* Called at most once when the connection dies before the request was answered; the request
 * stays valid until the handler replies to it (see "Abort and late replies" above). */
typedef void (*nb_http_abort_cb)(struct nb_http_req *req, void *data);
/* Called for every complete request. */
typedef void (*nb_http_handler_cb)(struct nb_http_req *req, void *data);
/* Called once when the request's reply is given (see http_req_on_reply). */
typedef void (*nb_http_reply_cb)(struct nb_http_req *req, int status,
                                 const struct nb_http_header *hdrs, size_t n_hdrs, void *data);
struct nb_http_reply_hook;

struct nb_http_req {
    struct nb_arena arena; /* request-lifetime allocations (handlers may use it too) */
    const char *method;    /* "GET", "POST", ... */
    const char *target;    /* request-target as sent, e.g. "/a%20b/c?x=1" */
    const char *path;      /* target before '?', still percent-encoded */
    const char *query;     /* target after '?', raw; "" when absent */
    struct nb_http_header *headers;
    size_t n_headers;
    char *body; /* malloc'd, NUL-terminated (one byte past body_len); never NULL */
    size_t body_len;
    uint64_t received_ns; /* mono_ns() when the request was complete */
    struct nb_http_server *server;
    /* For the handler: */
    void *user;
    nb_http_abort_cb on_abort;
    void *abort_data;
    /* private */
    struct nb_http_conn *conn;
    struct nb_http_reply_hook *reply_hooks; /* in the arena, in registration order */
};

struct nb_http_limits {
    size_t max_header_bytes;    /* request line + headers, default 64 KiB */
    size_t max_headers;         /* default 100 */
    size_t max_body;            /* default 6 MiB + 100 B */
    uint64_t header_timeout_ms; /* time to receive a full request (headers and body) once its
                                 * first byte came (408 and close); 0 = none; 10 s */
    uint64_t idle_timeout_ms;   /* keep-alive idle; 0 = none (Runtime API long polls); 60 s */
    size_t max_conns;           /* default 4096; over it a new connection is accepted and closed */
    /* Body of the 413 sent when max_body is exceeded (JSON; NULL: a plain-text 413), and its
     * x-amzn-ErrorType header value (NULL: no such header). */
    const char *too_large_type;
    const char *too_large_body;
    /* Called (with the server's handler data) when a request is refused for exceeding max_body,
     * before the 413 goes out; the handler never sees such a request. NULL: nothing. */
    void (*on_too_large)(void *data);
    /* A reply (of at most 4 KiB) to a request that has more requests pipelined behind it is held
     * and written together with the next write on the connection (the next reply, or when no
     * request is left waiting for one): one write and one wake-up of the peer instead of two. For
     * the Runtime API, whose C runtime sends POST response + GET next together and needs the
     * 202 no sooner than the next invocation. Off by default: a held reply waits as long as the
     * request behind it (a long poll). */
    bool hold_pipelined_replies;
};

/* Fills lim with the defaults above. */
void http_limits_default(struct nb_http_limits *lim);

/* Returns a new server (owned by the caller, freed by http_server_close). Nothing listens yet.
 * lim is copied (its strings too). */
struct nb_http_server *http_server_new(uv_loop_t *loop, const struct nb_http_limits *lim,
                                       nb_http_handler_cb handler, void *data);
/* Adding a listener: each one serves the server's handler with its limits (max_conns counts the
 * connections of all listeners) until http_server_close. A server may have any number; the first
 * one added is its primary. On failure the server is as before (it may try again at once), and
 * err says "cannot listen on '<host>:<port>': ..." or "cannot serve fd <fd>: ...". */
/* Binds a new TCP socket to host:port (IPv4 or IPv6 literal; port 0 picks one, see
 * http_server_port) and listens on it. */
int http_server_listen(struct nb_http_server *srv, const char *host, int port, struct nb_err *err);
/* Serves an already bound and listening stream socket (TCP or Unix); consumes fd (closed on
 * failure too). */
int http_server_open(struct nb_http_server *srv, int fd, struct nb_err *err);
/* The local port of the primary listener; 0 when it is not a TCP one, or there is none. */
int http_server_port(const struct nb_http_server *srv);
/* Closes every connection of the server (pending requests get their abort callback); the server
 * keeps listening. */
void http_server_drop_connections(struct nb_http_server *srv);
/* Stops listening, drops all connections and frees the server once libuv closed every handle;
 * cb (may be NULL) runs after that, always from a later loop callback. Dead requests still held
 * by handlers outlive the server (they do not point to it). */
void http_server_close(struct nb_http_server *srv, void (*cb)(void *data), void *data);
/* Connections whose handles are not closed yet (a dropped one counts until its close callback). */
size_t http_server_conn_count(const struct nb_http_server *srv);

/* Case-insensitive header lookup; NULL when absent (first one if repeated). */
const char *http_req_header(const struct nb_http_req *req, const char *name);
/* Percent-decoded value of query parameter name ('+' is a space), allocated in the request arena;
 * NULL when absent; "" for "?name" or "?name=". Pairs with malformed escapes are ignored. */
const char *http_req_query(struct nb_http_req *req, const char *name);
/* Takes the body out of the request (malloc'd, NUL-terminated; caller frees); the request's body
 * becomes empty. */
char *http_req_steal_body(struct nb_http_req *req, size_t *len);
/* False once the request is dead (its connection is gone, see "Abort and late replies"); true
 * while a reply can still be delivered, including when the client asked to close after it. */
bool http_req_conn_alive(const struct nb_http_req *req);
/* True when the connection will be closed after this request's reply (Connection: close,
 * HTTP/1.0 without keep-alive) or is already gone. */
bool http_req_will_close(const struct nb_http_req *req);

/* Registers cb to run once, with the status and headers the handler replies with, from inside
 * http_reply*() just before the reply is queued (also for a dead request, whose reply writes
 * nothing). Hooks run in registration order; they must not reply to req nor keep hdrs, and req
 * (arena, headers) is still valid while they run. Used by the audit log (authz.c). */
void http_req_on_reply(struct nb_http_req *req, nb_http_reply_cb cb, void *data);
/* The client's address as "ip:port" ("[ip6]:port" for IPv6), "local" for a non-IP socket, or "-"
 * once the connection is gone. Into buf (>= 64 bytes is enough). */
void http_req_peer(const struct nb_http_req *req, char *buf, size_t len);

/* Answers req and ends it. Headers are (name, value) pairs; Content-Length, Date and Connection
 * are added here and must not be passed (such headers, and Transfer-Encoding, are dropped; CR
 * and LF in values become spaces). Copies body; hdrs and body may point into req's arena. HEAD
 * requests and 1xx/204/304 replies get no body (HEAD keeps the Content-Length of body). */
void http_reply(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                size_t n_hdrs, const void *body, size_t len);
/* Same, consuming body (malloc'd; freed after it was written or on failure). */
void http_reply_owned(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                      size_t n_hdrs, char *body, size_t len);

/* Percent-decodes s (n bytes) into a new arena string; returns NULL for malformed escapes or a
 * decoded NUL byte. */
char *http_pct_decode(struct nb_arena *a, const char *s, size_t n);

#endif
