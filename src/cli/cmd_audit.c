/*
 * cmd_audit.c - `nimbus audit [--since 1d|2h|<epoch-ms>] [--limit N] [--json]`.
 *
 * Reads nimbus' audit endpoint, GET /nimbus/v1/audit?since=MS&limit=1000[&nextToken=T], which
 * answers {"events":[record...],"nextToken":"T"} oldest first (record format in audit.h), page
 * after page until nextToken stops moving (the end of the log). Without --limit every record of
 * the window is printed as its page arrives; with --limit N only the newest N are kept (a ring)
 * and printed at the end, oldest first. One line per record: time, key, action, resource,
 * result, status and error type, request id, source; --json prints each record as it is stored.
 */
#include <errno.h>
#include <inttypes.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/client.h"

#define DEFAULT_SINCE "1d"
#define PAGE "1000"

static const char usage[] =
    "usage: nimbus audit [options]\n"
    "\n"
    "Prints the audit log: every control-plane change (with the status it got) and every\n"
    "request that was denied or refused, oldest first.\n"
    "\n"
    "options:\n"
    "  --since WHEN         start from WHEN ago (30s, 10m, 2h, 1d, 1h30m) or from an\n"
    "                       absolute time in ms since the epoch (default " DEFAULT_SINCE ")\n"
    "  -n, --limit N        print only the newest N records of that window\n"
    "  --json               print each record as the JSON line stored in the log\n" CLI_COMMON_HELP;

static const char *str(json_t *rec, const char *key)
{
    const char *s = json_string_value(json_object_get(rec, key));
    return s ? s : "-";
}

static void print_record(json_t *rec, bool as_json)
{
    if (as_json) {
        char *line = json_dumps(rec, JSON_COMPACT);
        if (line)
            puts(line);
        free(line);
        return;
    }
    json_t *err = json_object_get(rec, "error");
    printf("%s  %s  %s  %s  %s %" JSON_INTEGER_FORMAT "%s%s  requestId=%s  source=%s\n",
           str(rec, "time"), str(rec, "keyId"), str(rec, "action"), str(rec, "resource"),
           str(rec, "result"), json_integer_value(json_object_get(rec, "status")),
           json_is_string(err) ? " " : "", json_is_string(err) ? json_string_value(err) : "",
           str(rec, "requestId"), str(rec, "source"));
}

struct ring {
    json_t **v;
    size_t cap, start, n;
};

static void ring_push(struct ring *r, json_t *rec)
{
    if (r->n < r->cap) {
        r->v[(r->start + r->n++) % r->cap] = json_incref(rec);
        return;
    }
    json_decref(r->v[r->start]);
    r->v[r->start] = json_incref(rec);
    r->start = (r->start + 1) % r->cap;
}

static int audit(struct nb_client *c, uint64_t since, size_t limit, bool as_json,
                 struct nb_err *err)
{
    _cleanup_free_ char *base = xasprintf("since=%" PRIu64 "&limit=" PAGE, since);
    _cleanup_free_ char *token = NULL;
    struct ring ring = {.cap = limit};
    int rc = 0;
    if (limit)
        ring.v = xcalloc(limit, sizeof(*ring.v));
    for (;;) {
        _cleanup_free_ char *query = client_page_query(base, "nextToken", token);
        json_t *body = NULL;
        rc = client_call(c, "GET", "/nimbus/v1/audit", query, NULL, &body, err);
        if (rc < 0)
            break;
        json_t *events = json_object_get(body, "events"), *ev;
        size_t i;
        if (!json_is_array(events)) {
            json_decref(body);
            rc = err_set(err, EPROTO, "invalid audit answer: events is not a list");
            break;
        }
        json_array_foreach (events, i, ev) {
            if (limit)
                ring_push(&ring, ev);
            else
                print_record(ev, as_json);
        }
        fflush(stdout);
        bool moved =
            client_next_token(&token, json_string_value(json_object_get(body, "nextToken")));
        json_decref(body);
        if (!moved)
            break;
    }
    for (size_t k = 0; k < ring.n; k++) {
        json_t *rec = ring.v[(ring.start + k) % ring.cap];
        if (rc == 0)
            print_record(rec, as_json);
        json_decref(rec);
    }
    free(ring.v);
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"since", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    const char *since_arg = DEFAULT_SINCE;
    struct nb_err err = {0};
    bool as_json = false;
    int64_t limit = 0;
    uint64_t since;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hn:", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            since_arg = optarg;
            break;
        case 'n':
            if (parse_i64(optarg, 1, 1000000, &limit) < 0)
                return cli_usage_error(usage, "--limit must be an integer from 1 to 1000000");
            break;
        case 'j':
            as_json = true;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (argc - optind != 0)
        return cli_usage_error(usage, "too many arguments");
    if (cli_parse_since(since_arg, now_ms(), &since, &err) < 0)
        return cli_usage_error(usage, "%s", err.msg);

    struct nb_client cl;
    int r = client_init(&cl, endpoint, &err);
    if (r == 0)
        r = audit(&cl, since, (size_t)limit, as_json, &err);
    return cli_finish(&cl, r, &err);
}
