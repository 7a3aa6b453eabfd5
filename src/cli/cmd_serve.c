/*
 * cmd_serve.c - `nimbus serve [settings]`: parses the settings (config.h) and runs the daemon in
 * the foreground until SIGTERM. Exit codes: 0 after a clean stop, 2 bad settings, 3 start-up
 * failure.
 */
#include <errno.h>

#include "../config.h"
#include "../daemon.h"
#include "cli.h"

int cmd_serve(int argc, char **argv)
{
    struct nb_config cfg;
    struct nb_err err = {0};
    int rc = cli_load_config(
        &cfg, argc, argv,
        "usage: nimbus serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] ...\n\n"
        "Runs the nimbus daemon in the foreground (log on stderr). SIGTERM drains\n"
        "in-flight invocations and stops every instance; SIGHUP reloads the config file.\n\n");
    if (rc >= 0)
        return rc;
    if (daemon_run(&cfg, &err) < 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 3;
    }
    return 0;
}
