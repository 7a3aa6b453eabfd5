/*
 * cmd_config.c - `nimbus config show|check [settings]`: prints the effective settings (defaults <
 * file < flags) as an INI file, or only validates them (exit 0, or 2 with the error). Also the
 * settings loading shared with `serve` (cli_load_config).
 */
#include <errno.h>

#include "../config.h"
#include "cli.h"

int cli_load_config(struct nb_config *cfg, int argc, char **argv, const char *usage_head)
{
    struct nb_err err = {0};
    int rc = config_load(cfg, argc, argv, &err);
    if (rc == 0)
        return -1;
    if (rc == -ENOENT) {
        fputs(usage_head, stdout);
        config_usage(stdout);
    } else {
        fprintf(stderr, "error: %s\n", err.msg);
    }
    config_release(cfg);
    return rc == -ENOENT ? 0 : 2;
}

int cmd_config(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "show") && strcmp(what, "check")) {
        FILE *out = !strcmp(what, "--help") || !strcmp(what, "-h") ? stdout : stderr;
        fprintf(out, "usage: nimbus config show|check [--config FILE] [settings...]\n\n");
        config_usage(out);
        return out == stdout ? 0 : 2;
    }
    struct nb_config cfg;
    int rc = cli_load_config(&cfg, argc - 1, argv + 1, "");
    if (rc >= 0)
        return rc;
    if (!strcmp(what, "show"))
        config_show(&cfg, stdout);
    config_release(&cfg);
    return 0;
}
