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
    int rc = config_load(&cfg, argc, argv, &err);
    if (rc == -ENOENT) {
        printf(
            "usage: nimbus serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] ...\n\n"
            "Runs the nimbus daemon in the foreground (log on stderr). SIGTERM drains\n"
            "in-flight invocations and stops every instance; SIGHUP reloads the config file.\n\n");
        config_usage(stdout);
        config_release(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        config_release(&cfg);
        return 2;
    }
    if (daemon_run(&cfg, &err) < 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 3;
    }
    return 0;
}
