/*
 * cmd_publish.c - `nimbus publish NAME [--description D]`: PublishVersion of NAME's $LATEST.
 *
 * Prints "published NAME version N (CodeSha256)". When nothing changed since the last published
 * version, nimbus (like Lambda) returns that version, and the command says so.
 */
#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus publish NAME [--description D] [options]\n"
    "\n"
    "Publishes $LATEST of function NAME as a new immutable version (its code and configuration).\n"
    "If nothing changed since the last published version, that version is returned.\n"
    "\n"
    "options:\n"
    "  -d, --description D  the version's description (default: the function's)\n" CLI_COMMON_HELP;

int cmd_publish(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {"description", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *description = NULL;
    struct nb_err err = {0};
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hd:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            description = optarg;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (optind >= argc)
        return cli_usage_error(usage, "missing NAME");
    if (argc - optind > 1)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind + 1]);
    const char *name = argv[optind];

    struct nb_client cl;
    json_t *out = NULL;
    int r = client_init(&cl, endpoint, &err);
    if (r == 0) {
        json_t *body = json_object();
        if (description)
            json_object_set_new(body, "Description", json_string(description));
        _cleanup_free_ char *ename = client_escape(name);
        _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s/versions", ename);
        r = client_call(&cl, "POST", path, NULL, body, &out, &err);
        json_decref(body);
    }
    if (r == 0) {
        const char *version = json_string_value(json_object_get(out, "Version"));
        const char *sha = json_string_value(json_object_get(out, "CodeSha256"));
        printf("published %s version %s (%s)\n", name, version ? version : "?", sha ? sha : "?");
    }
    json_decref(out);
    return cli_finish(&cl, r, &err);
}
