/*
 * cmd_invoke.c - `nimbus invoke NAME [--payload JSON|@file|-] [--log] [--qualifier Q] [--event]`.
 *
 * One synchronous Invoke (POST /2015-03-31/functions/NAME/invocations, RequestResponse), or with
 * --event one asynchronous Invoke (Event): nimbus answers 202 once the event is stored and the
 * command prints the event's request id (its log lines carry it). The
 * response payload goes to stdout byte for byte (plus a newline when stdout is a terminal and the
 * payload lacks one); with --log the decoded X-Amz-Log-Result (the invocation's log tail) goes to
 * stderr first. Exit 1 when X-Amz-Function-Error is set (the payload is then the error JSON), 3
 * when nimbus refuses or fails the request. The payload is sent as given, unchecked: nimbus
 * decides whether it is acceptable, as Lambda does.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/client.h"
#include "codec.h"

static const char usage[] =
    "usage: nimbus invoke NAME [options]\n"
    "\n"
    "Invokes function NAME synchronously and prints its response payload to stdout.\n"
    "Exits 1 if the function failed (the payload is then its error), 3 on platform errors.\n"
    "\n"
    "options:\n"
    "  --payload P          the event: JSON text, @FILE to read a file, or - for stdin\n"
    "                       (default {})\n"
    "  --log                print the invocation's log tail (START..REPORT) to stderr\n"
    "  --qualifier Q        version or alias to invoke (default $LATEST)\n"
    "  --event              invoke asynchronously: print the request id once nimbus has\n"
    "                       stored the event (it runs later, with retries)\n" CLI_COMMON_HELP;

struct invoke_opts {
    const char *name;
    const char *payload;
    const char *qualifier;
    const char *endpoint;
    bool log;
    bool event;
};

static void print_log_tail(const char *b64)
{
    unsigned char *text = NULL;
    size_t len = 0;
    struct nb_err err = {0};
    if (b64_decode(b64, strlen(b64), &text, &len, &err) < 0) {
        /* A damaged tail must not hide the payload: note it and go on. */
        fprintf(stderr, "warning: cannot decode X-Amz-Log-Result: %s\n", err.msg);
        return;
    }
    fwrite(text, 1, len, stderr);
    if (len && text[len - 1] != '\n')
        fputc('\n', stderr);
    free(text);
}

static int invoke(const struct invoke_opts *o, bool *function_error, struct nb_err *err)
{
    struct nb_client c;
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    _cleanup_free_ char *payload = NULL;
    _cleanup_free_ char *ename = client_escape(o->name);
    _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s/invocations", ename);
    _cleanup_free_ char *query = NULL;
    size_t payload_len = 0;
    const char *headers[] = {o->event ? "X-Amz-Invocation-Type: Event"
                                      : "X-Amz-Invocation-Type: RequestResponse",
                             o->log ? "X-Amz-Log-Type: Tail" : NULL, NULL};

    if (o->qualifier) {
        _cleanup_free_ char *q = client_escape(o->qualifier);
        query = xasprintf("Qualifier=%s", q);
    }
    int r = client_init(&c, o->endpoint, err);
    if (r == 0)
        r = cli_read_payload(o->payload ? o->payload : "{}", &payload, &payload_len, err);
    if (r == 0) {
        struct nb_client_req req = {
            .method = "POST",
            .path = path,
            .query = query,
            .headers = headers,
            .body = payload,
            .body_len = payload_len,
        };
        r = client_request(&c, &req, &resp, err);
    }
    if (r == 0)
        r = client_check(&resp, err);
    if (r == 0 && o->event) {
        const char *rid = client_resp_header(&resp, "x-amzn-RequestId");
        printf("%s\n", rid ? rid : "");
    } else if (r == 0) {
        const char *tail = client_resp_header(&resp, "X-Amz-Log-Result");
        if (o->log && tail && *tail)
            print_log_tail(tail);
        fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
        if (resp.body.len && resp.body.data[resp.body.len - 1] != '\n' && isatty(STDOUT_FILENO))
            fputc('\n', stdout);
        *function_error = client_resp_header(&resp, "X-Amz-Function-Error") != NULL;
    }
    client_resp_release(&resp);
    client_release(&c);
    return r;
}

int cmd_invoke(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"payload", required_argument, NULL, 'p'},
        {"log", no_argument, NULL, 'l'},
        {"qualifier", required_argument, NULL, 'q'},
        {"event", no_argument, NULL, 'e'},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct invoke_opts o = {0};
    struct nb_err err = {0};
    bool function_error = false;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.payload = optarg;
            break;
        case 'l':
            o.log = true;
            break;
        case 'q':
            o.qualifier = optarg;
            break;
        case 'e':
            o.event = true;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &o.endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(usage, argc - optind < 1 ? "missing NAME" : "too many arguments");
    o.name = argv[optind];
    if (o.event && o.log)
        return cli_usage_error(usage, "--log needs a synchronous invocation (not --event)");
    if (invoke(&o, &function_error, &err) < 0)
        return cli_report(&err);
    return function_error ? CLI_EXIT_FUNCTION : CLI_EXIT_OK;
}
