/*
 * cmd_logs.c - `nimbus logs NAME [--follow] [--since 10m|2h|30s|<epoch-ms>]`.
 *
 * Reads nimbus' own log endpoint, GET /nimbus/v1/functions/NAME/logs?since=MS[&nextToken=T],
 * which answers {"events":[{"timestamp":MS,"message":"..."}],"nextToken":"..."} with only the
 * events after nextToken when one is passed. Without --follow, pages are read until one comes back
 * empty; with --follow, polling goes on every 500 ms until SIGINT, which ends the run with exit 0
 * (the handler only raises a flag; a request in flight is aborted through client.cancel). Each
 * message is printed on its own line and stdout is flushed after every page, so a pipe sees lines
 * as they come.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/client.h"

#define POLL_MS 500
#define DEFAULT_SINCE "10m"

static const char usage[] =
    "usage: nimbus logs NAME [options]\n"
    "\n"
    "Prints the log of function NAME: its own output and the START, END and REPORT lines.\n"
    "\n"
    "options:\n"
    "  -f, --follow         keep printing new lines until interrupted (Ctrl-C)\n"
    "  --since WHEN         start from WHEN ago (30s, 10m, 2h, 1d, 1h30m) or from an\n"
    "                       absolute time in ms since the epoch (default " DEFAULT_SINCE
    ")\n" CLI_COMMON_HELP;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    interrupted = 1;
}

/* Prints the events of one page; *count = how many. */
static int print_events(json_t *body, size_t *count, struct nb_err *err)
{
    json_t *events = json_object_get(body, "events");
    json_t *ev;
    size_t i;

    *count = 0;
    if (!events)
        return 0;
    if (!json_is_array(events))
        return err_set(err, EPROTO, "invalid logs answer: events is not a list");
    json_array_foreach (events, i, ev) {
        json_t *m = json_object_get(ev, "message");
        if (!json_is_string(m))
            continue;
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        /* runtimes keep a multi-line record (a traceback) in one event by joining its lines
         * with CR; show them as lines, like CloudWatch does */
        for (size_t k = 0; k < len; k++)
            fputc(s[k] == '\r' ? '\n' : s[k], stdout);
        if (!len || s[len - 1] != '\n')
            fputc('\n', stdout);
    }
    *count = json_array_size(events);
    fflush(stdout);
    return 0;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* SIGINT interrupts the sleep (no SA_RESTART); the caller checks the flag */
    nanosleep(&ts, NULL);
}

static int logs(struct nb_client *c, const char *name, uint64_t since, bool follow,
                struct nb_err *err)
{
    _cleanup_free_ char *ename = client_escape(name);
    _cleanup_free_ char *path = xasprintf("/nimbus/v1/functions/%s/logs", ename);
    _cleanup_free_ char *base = xasprintf("since=%" PRIu64, since);
    _cleanup_free_ char *token = NULL;

    while (!interrupted) {
        _cleanup_free_ char *query = client_page_query(base, "nextToken", token);
        json_t *body = NULL;
        size_t count = 0;

        int r = client_call(c, "GET", path, query, NULL, &body, err);
        if (r == -ECANCELED || interrupted) {
            json_decref(body);
            return 0;
        }
        if (r < 0)
            return r;
        r = body ? print_events(body, &count, err) : 0;
        bool moved =
            client_next_token(&token, json_string_value(json_object_get(body, "nextToken")));
        json_decref(body);
        if (r < 0)
            return r;
        /* Without a new token the same page would come back: never spin on it. */
        if (count == 0 || !moved) {
            if (!follow)
                return 0;
            pause_ms(POLL_MS);
        }
    }
    return 0;
}

int cmd_logs(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    const char *since_arg = DEFAULT_SINCE;
    struct nb_err err = {0};
    bool follow = false;
    uint64_t since;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 's':
            since_arg = optarg;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(usage, argc - optind < 1 ? "missing NAME" : "too many arguments");
    if (cli_parse_since(since_arg, now_ms(), &since, &err) < 0)
        return cli_usage_error(usage, "%s", err.msg);

    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    if (follow)
        sigaction(SIGINT, &sa, NULL);

    struct nb_client cl;
    int r = client_init(&cl, endpoint, &err);
    cl.cancel = &interrupted;
    if (r == 0)
        r = logs(&cl, argv[optind], since, follow, &err);
    return cli_finish(&cl, r, &err);
}
