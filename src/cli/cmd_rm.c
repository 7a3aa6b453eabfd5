/*
 * cmd_rm.c - `nimbus rm NAME...`: DeleteFunction for each NAME, in order.
 *
 * A failure on one name is reported (once, for that name) and the others are still deleted; the
 * exit code is that of the last failure, 0 when every delete succeeded. Prints "deleted NAME" for
 * each success.
 */
#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] = "usage: nimbus rm NAME... [options]\n"
                            "\n"
                            "Deletes functions.\n"
                            "\n"
                            "options:\n" CLI_COMMON_HELP;

int cmd_rm(int argc, char **argv)
{
    const char *endpoint;
    int rc = cli_common_args(argc, argv, usage, &endpoint);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error(usage, "missing NAME");

    struct nb_err err = {0};
    struct nb_client cl;
    int r = client_init(&cl, endpoint, &err);
    if (r < 0)
        return cli_finish(&cl, r, &err);
    rc = cli_delete_each(&cl, "/2015-03-31/functions", argv + optind, argc - optind);
    client_release(&cl);
    return rc;
}
