/*
 * http_internal.h - entry points of http.c for its unit tests and its fuzzer only; the daemon
 * never includes this header.
 *
 * http__serve_fd() attaches an already connected stream socket (e.g. one end of a socketpair) as
 * a connection of a server, so a test or fuzz driver can push bytes through exactly the read,
 * parse, dispatch, reply and close path that accepted TCP connections take.
 */
#ifndef NIMBUS_HTTP_INTERNAL_H
#define NIMBUS_HTTP_INTERNAL_H

#include "http.h"

/* Serves fd (a connected stream socket, any family) as one connection of srv; consumes fd (closed
 * on failure too). The connection counts in http_server_conn_count and max_conns is not checked. */
int http__serve_fd(struct nb_http_server *srv, int fd, struct nb_err *err);

#endif
