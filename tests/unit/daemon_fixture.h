/*
 * daemon_fixture.h - a struct nb_daemon with default settings and an empty registry, without a
 * loop or a spawner, for unit tests of the modules that work on the registry (pool, metrics).
 */
#ifndef NIMBUS_TEST_DAEMON_FIXTURE_H
#define NIMBUS_TEST_DAEMON_FIXTURE_H

#include "daemon.h"

/* Fills d with the default settings and an empty registry (asserts on failure). */
void fixture_daemon_init(struct nb_daemon *d);
void fixture_daemon_release(struct nb_daemon *d);
/* Adds a valid provided.al2023 function named name; the registry owns it. */
struct nb_fn *fixture_add_fn(struct nb_daemon *d, const char *name);

#endif
