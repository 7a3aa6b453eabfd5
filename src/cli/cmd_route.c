/*
 * cmd_route.c - `nimbus route add 'METHOD /path' FUNCTION[:QUALIFIER]`, `nimbus route ls`,
 * `nimbus route rm 'METHOD /path'`: HTTP routes served on the public listener (API Gateway HTTP
 * API route keys: `GET /users/{id}`, `ANY /{proxy+}`, `$default`), through /nimbus/v1/routes.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus route add ROUTE_KEY FUNCTION[:QUALIFIER] [options]\n"
    "       nimbus route ls [options]\n"
    "       nimbus route rm ROUTE_KEY [options]\n"
    "\n"
    "HTTP routes on the public listener (default 127.0.0.1:8080), with API Gateway HTTP API\n"
    "semantics: ROUTE_KEY is 'METHOD /path' (METHOD: GET, POST, PUT, DELETE, PATCH, HEAD,\n"
    "OPTIONS or ANY; {name} matches one path segment, a last {name+} the rest of the path) or\n"
    "$default (requests no other route matches). The function gets payload format 2.0 events.\n"
    "\n"
    "options:\n" CLI_COMMON_HELP;

static int add(struct nb_client *cl, const char *key, const char *target, struct nb_err *err)
{
    const char *colon = strchr(target, ':');
    _cleanup_free_ char *name =
        colon ? xstrndup(target, (size_t)(colon - target)) : xstrdup(target);
    json_t *body = json_pack("{s:s,s:s}", "RouteKey", key, "FunctionName", name);
    if (colon)
        json_object_set_new(body, "Qualifier", json_string(colon + 1));
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    int r = client_json(cl, "POST", "/nimbus/v1/routes", NULL, body, &resp, NULL, err);
    json_decref(body);
    client_resp_release(&resp);
    if (r == 0)
        printf("added route %s -> %s\n", key, target);
    return r;
}

static int list(struct nb_client *cl, struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    json_t *out = NULL;
    int r = client_json(cl, "GET", "/nimbus/v1/routes", NULL, NULL, &resp, &out, err);
    client_resp_release(&resp);
    if (r < 0)
        return r;
    printf("%-40s %-32s %s\n", "ROUTE", "FUNCTION", "CREATED");
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(out, "Routes"), i, e) {
        const char *q = json_string_value(json_object_get(e, "Qualifier"));
        _cleanup_free_ char *fn =
            xasprintf("%s%s%s", json_string_value(json_object_get(e, "FunctionName")), q ? ":" : "",
                      q ? q : "");
        printf("%-40s %-32s %s\n", json_string_value(json_object_get(e, "RouteKey")), fn,
               json_string_value(json_object_get(e, "CreatedAt")));
    }
    json_decref(out);
    return 0;
}

static int rm(struct nb_client *cl, const char *key, struct nb_err *err)
{
    _cleanup_free_ char *ekey = client_escape(key);
    _cleanup_free_ char *query = xasprintf("RouteKey=%s", ekey);
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    int r = client_json(cl, "DELETE", "/nimbus/v1/routes", query, NULL, &resp, NULL, err);
    client_resp_release(&resp);
    if (r == 0)
        printf("deleted route %s\n", key);
    return r;
}

int cmd_route(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    struct nb_err err = {0};
    int c;
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
    int nargs = argc - optind;
    const char *sub = nargs > 0 ? argv[optind] : "";
    if (!((!strcmp(sub, "add") && nargs == 3) || (!strcmp(sub, "ls") && nargs == 1) ||
          (!strcmp(sub, "rm") && nargs == 2)))
        return cli_usage_error(usage, "expected add ROUTE_KEY FUNCTION, ls, or rm ROUTE_KEY");
    struct nb_client cl;
    int r;
    if ((r = client_init(&cl, endpoint, &err)) == 0) {
        if (!strcmp(sub, "add"))
            r = add(&cl, argv[optind + 1], argv[optind + 2], &err);
        else if (!strcmp(sub, "ls"))
            r = list(&cl, &err);
        else
            r = rm(&cl, argv[optind + 1], &err);
    }
    client_release(&cl);
    return r < 0 ? cli_report(&err) : CLI_EXIT_OK;
}
