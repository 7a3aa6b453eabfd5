/*
 * cmd_alias.c - `nimbus alias NAME ALIAS VERSION [--weight V=W]`: creates the alias, or updates it
 * when it exists (CreateAlias, then UpdateAlias on ResourceConflictException); `nimbus alias ls
 * NAME`: ListAliases as a table (alias, version, routing, description).
 *
 * --weight V=W sends the share W (0..1) of invocations to version V (RoutingConfig); without it an
 * update removes any routing (the alias then runs VERSION only).
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus alias NAME ALIAS VERSION [--weight V=W] [options]\n"
    "       nimbus alias ls NAME [options]\n"
    "\n"
    "Points alias ALIAS of function NAME at VERSION (a published version number or $LATEST),\n"
    "creating the alias if needed. With --weight V=W, the share W (0 to 1) of invocations runs\n"
    "version V instead (a canary). `alias ls` lists a function's aliases.\n"
    "\n"
    "options:\n"
    "  -w, --weight V=W     route the share W of invocations to version V\n" CLI_COMMON_HELP;

static int list(struct nb_client *cl, const char *name, struct nb_err *err)
{
    _cleanup_free_ char *ename = client_escape(name);
    _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s/aliases", ename);
    _cleanup_free_ char *marker = NULL;
    bool header = false;
    bool more;
    do {
        _cleanup_free_ char *query = client_page_query(NULL, "Marker", marker);
        json_t *out = NULL;
        int r = client_call(cl, "GET", path, query, NULL, &out, err);
        if (r < 0)
            return r;
        if (!header) {
            printf("%-24s %-10s %-16s %s\n", "ALIAS", "VERSION", "ROUTING", "DESCRIPTION");
            header = true;
        }
        json_t *items = json_object_get(out, "Aliases"), *a;
        size_t i;
        json_array_foreach (items, i, a) {
            char routing[64] = "-";
            json_t *w =
                json_object_get(json_object_get(a, "RoutingConfig"), "AdditionalVersionWeights");
            const char *k;
            json_t *v;
            json_object_foreach (w, k, v)
                snprintf(routing, sizeof(routing), "%s=%g", k, json_number_value(v));
            printf("%-24s %-10s %-16s %s\n", json_string_value(json_object_get(a, "Name")),
                   json_string_value(json_object_get(a, "FunctionVersion")), routing,
                   json_string_value(json_object_get(a, "Description")));
        }
        more = client_next_token(&marker, json_string_value(json_object_get(out, "NextMarker")));
        json_decref(out);
    } while (more);
    return 0;
}

/* Parses "V=W" into a RoutingConfig body member; -EINVAL with a message otherwise. */
static int parse_weight(const char *s, json_t **routing, struct nb_err *err)
{
    const char *eq = strchr(s, '=');
    char *end = NULL;
    double w = eq ? strtod(eq + 1, &end) : 0;
    if (!eq || eq == s || !end || *end || end == eq + 1 || !(w >= 0 && w <= 1))
        return err_set(err, EINVAL,
                       "invalid --weight '%s': expected VERSION=WEIGHT, 0 <= WEIGHT <= 1", s);
    _cleanup_free_ char *v = xstrndup(s, (size_t)(eq - s));
    *routing = json_pack("{s:{s:f}}", "AdditionalVersionWeights", v, w);
    return 0;
}

static int set_alias(struct nb_client *cl, const char *name, const char *alias, const char *version,
                     json_t *routing, struct nb_err *err)
{
    _cleanup_free_ char *ename = client_escape(name), *ealias = client_escape(alias);
    _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s/aliases", ename);
    json_t *body = json_pack("{s:s,s:s}", "Name", alias, "FunctionVersion", version);
    if (routing)
        json_object_set(body, "RoutingConfig", routing);
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    json_t *out = NULL;
    int r = client_json(cl, "POST", path, NULL, body, &resp, &out, err);
    const char *how = "created";
    if (r < 0 && resp.status == 409) {
        /* it exists: update it; no --weight means no routing any more */
        err_clear(err);
        client_resp_release(&resp);
        json_object_del(body, "Name");
        json_object_set_new(body, "RoutingConfig",
                            routing ? json_incref(routing)
                                    : json_pack("{s:{}}", "AdditionalVersionWeights"));
        _cleanup_free_ char *upath = xasprintf("%s/%s", path, ealias);
        r = client_json(cl, "PUT", upath, NULL, body, &resp, &out, err);
        how = "updated";
    }
    json_decref(body);
    client_resp_release(&resp);
    if (r < 0)
        return r;
    printf("%s alias %s:%s -> version %s", how, name, alias,
           json_string_value(json_object_get(out, "FunctionVersion")));
    json_t *w = json_object_get(json_object_get(out, "RoutingConfig"), "AdditionalVersionWeights");
    const char *k;
    json_t *v;
    json_object_foreach (w, k, v)
        printf(" (%g%% to version %s)", json_number_value(v) * 100, k);
    printf("\n");
    json_decref(out);
    return 0;
}

int cmd_alias(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {"weight", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *weight = NULL;
    struct nb_err err = {0};
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hw:", longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            weight = optarg;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    int nargs = argc - optind;
    /* "ls NAME" lists; three arguments always set an alias (even of a function called ls) */
    bool is_list = nargs == 2 && !strcmp(argv[optind], "ls");
    if (!is_list && nargs != 3)
        return cli_usage_error(usage, nargs == 2 ? "expected NAME ALIAS VERSION (or ls NAME)"
                                                 : "expected NAME ALIAS VERSION, or ls NAME");
    if (is_list && weight)
        return cli_usage_error(usage, "--weight does not apply to alias ls");
    json_t *routing = NULL;
    if (weight && parse_weight(weight, &routing, &err) < 0)
        return cli_usage_error(usage, "%s", err.msg);

    struct nb_client cl;
    int r;
    if ((r = client_init(&cl, endpoint, &err)) == 0) {
        if (is_list)
            r = list(&cl, argv[optind + 1], &err);
        else
            r = set_alias(&cl, argv[optind], argv[optind + 1], argv[optind + 2], routing, &err);
    }
    json_decref(routing);
    return cli_finish(&cl, r, &err);
}
