/*
 * cmd_rm.c - `nimbus rm NAME...`: DeleteFunction for each NAME, in order.
 *
 * A failure on one name is reported (once, for that name) and the others are still deleted; the
 * exit code is that of the last failure, 0 when every delete succeeded. Prints "deleted NAME" for
 * each success.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] = "usage: nimbus rm NAME... [options]\n"
                            "\n"
                            "Deletes functions.\n"
                            "\n"
                            "options:\n" CLI_COMMON_HELP;

static int delete_one(struct nb_client *c, const char *name, struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    _cleanup_free_ char *ename = client_escape(name);
    _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s", ename);
    int r = client_json(c, "DELETE", path, NULL, NULL, &resp, NULL, err);
    client_resp_release(&resp);
    if (r == 0)
        printf("deleted %s\n", name);
    return r;
}

int cmd_rm(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    struct nb_err err = {0};
    int c, rc = CLI_EXIT_OK;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_ENDPOINT:
            endpoint = optarg;
            break;
        case 'h':
            return cli_help(usage);
        default:
            return cli_bad_option(usage, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error(usage, "missing NAME");

    struct nb_client cl;
    if (client_init(&cl, endpoint, &err) < 0) {
        client_release(&cl);
        return cli_report(&err);
    }
    for (int i = optind; i < argc; i++) {
        err_clear(&err);
        if (delete_one(&cl, argv[i], &err) < 0) {
            rc = cli_report(&err);
            /* nimbus is unreachable: every other name would fail the same way */
            if (err.code == EHOSTUNREACH)
                break;
        }
        fflush(stdout);
    }
    client_release(&cl);
    return rc;
}
