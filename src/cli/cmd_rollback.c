/*
 * cmd_rollback.c - `nimbus rollback NAME ALIAS`: points the alias back at the target it had before
 * its last change (version and routing), in one request (POST
 * /nimbus/v1/functions/NAME/aliases/ALIAS/rollback). nimbus keeps one previous target per alias,
 * so a second rollback undoes the first. An alias never changed since its creation has no previous
 * target: the command fails (ResourceConflictException) and the alias is left alone.
 */
#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus rollback NAME ALIAS [options]\n"
    "\n"
    "Points alias ALIAS of function NAME back at the version (and routing) it had before its\n"
    "last change. Rolling back twice restores the change. An alias that was never changed has\n"
    "nothing to roll back to: the command then fails and leaves it as it is.\n"
    "\n"
    "options:\n" CLI_COMMON_HELP;

int cmd_rollback(int argc, char **argv)
{
    const char *endpoint;
    int rc = cli_common_args(argc, argv, usage, &endpoint);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return cli_usage_error(usage, "expected NAME ALIAS");
    const char *name = argv[optind], *alias = argv[optind + 1];

    struct nb_err err = {0};
    struct nb_client cl;
    json_t *out = NULL;
    int r = client_init(&cl, endpoint, &err);
    if (r == 0) {
        _cleanup_free_ char *ename = client_escape(name), *ealias = client_escape(alias);
        _cleanup_free_ char *path =
            xasprintf("/nimbus/v1/functions/%s/aliases/%s/rollback", ename, ealias);
        r = client_call(&cl, "POST", path, NULL, NULL, &out, &err);
    }
    if (r == 0)
        printf("rolled back alias %s:%s -> version %s\n", name, alias,
               json_string_value(json_object_get(out, "FunctionVersion")));
    json_decref(out);
    return cli_finish(&cl, r, &err);
}
