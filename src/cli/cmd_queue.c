/*
 * cmd_queue.c - `nimbus queue ACTION ...`: the queue service from the command line, over SQS's
 * JSON 1.0 protocol (POST / with X-Amz-Target: AmazonSQS.<Op>), as the JS SDK speaks it.
 *
 *   ls [PREFIX]                       ListQueues (all pages): one queue URL per line
 *   create NAME [--attr K=V]...       CreateQueue: prints the URL
 *   rm NAME...                        GetQueueUrl + DeleteQueue
 *   send NAME BODY                    SendMessage: prints the message id
 *   recv NAME [--max N] [--wait S] [--keep]
 *                                     ReceiveMessage: prints each body on its own line (or the
 *                                     messages' JSON with --json) and deletes them unless --keep
 *   purge NAME                        PurgeQueue
 * Errors are reported as "<Type>: <message>" (exit 3), like the other client commands.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus queue ls [PREFIX] | create NAME [--attr K=V]... | rm NAME... |\n"
    "                    send NAME BODY | recv NAME [--max N] [--wait S] [--keep] [--json] |\n"
    "                    purge NAME   [options]\n"
    "\n"
    "Manages SQS-compatible queues (the aws CLI's `sqs` commands work too).\n"
    "\n"
    "options:\n"
    "  --attr K=V           a queue attribute for create (repeatable)\n"
    "  --max N              recv: at most N messages, 1-10 (default 10)\n"
    "  --wait S             recv: long-poll up to S seconds, 0-20 (default 0)\n"
    "  --keep               recv: do not delete the received messages\n"
    "  --json               recv: print the ReceiveMessage JSON\n" CLI_COMMON_HELP;

/* One JSON-protocol call: in is consumed; *out (may be NULL) receives the answer's object. */
static int sqs_call(struct nb_client *c, const char *op, json_t *in, json_t **out,
                    struct nb_err *err)
{
    _cleanup_free_ char *body = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    _cleanup_free_ char *target = xasprintf("X-Amz-Target: AmazonSQS.%s", op);
    const char *headers[] = {target, NULL};
    struct nb_client_req req = {.method = "POST",
                                .path = "/",
                                .content_type = "application/x-amz-json-1.0",
                                .headers = headers,
                                .body = body,
                                .body_len = strlen(body),
                                .service = "sqs"};
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    int r = client_request(c, &req, &resp, err);
    if (r == 0)
        r = client_check(&resp, err);
    if (r == 0 && out && !(*out = client_resp_json(&resp, err)))
        r = -err->code;
    client_resp_release(&resp);
    return r;
}

static int queue_url(struct nb_client *c, const char *name, char **url, struct nb_err *err)
{
    json_t *out = NULL;
    int r = sqs_call(c, "GetQueueUrl", json_pack("{s:s}", "QueueName", name), &out, err);
    if (r < 0)
        return r;
    const char *u = json_string_value(json_object_get(out, "QueueUrl"));
    if (!u) {
        json_decref(out);
        return err_set(err, EPROTO, "invalid GetQueueUrl answer: no QueueUrl");
    }
    *url = xstrdup(u);
    json_decref(out);
    return 0;
}

static int do_ls(struct nb_client *c, const char *prefix, struct nb_err *err)
{
    _cleanup_free_ char *token = NULL;
    for (int page = 0; page < 100000; page++) {
        json_t *in = json_pack("{s:i}", "MaxResults", 1000);
        if (prefix)
            json_object_set_new(in, "QueueNamePrefix", json_string(prefix));
        if (token)
            json_object_set_new(in, "NextToken", json_string(token));
        json_t *out = NULL;
        int r = sqs_call(c, "ListQueues", in, &out, err);
        if (r < 0)
            return r;
        size_t i;
        json_t *u;
        json_array_foreach (json_object_get(out, "QueueUrls"), i, u)
            printf("%s\n", json_string_value(u));
        const char *next = json_string_value(json_object_get(out, "NextToken"));
        free(token);
        token = next && *next ? xstrdup(next) : NULL;
        json_decref(out);
        if (!token)
            return 0;
    }
    return err_set(err, EPROTO, "ListQueues did not end");
}

static int do_recv(struct nb_client *c, const char *name, int max, int wait, bool keep, bool js,
                   struct nb_err *err)
{
    _cleanup_free_ char *url = NULL;
    int r = queue_url(c, name, &url, err);
    if (r < 0)
        return r;
    json_t *out = NULL;
    r = sqs_call(c, "ReceiveMessage",
                 json_pack("{s:s, s:i, s:i, s:[s], s:[s]}", "QueueUrl", url, "MaxNumberOfMessages",
                           max, "WaitTimeSeconds", wait, "AttributeNames", "All",
                           "MessageAttributeNames", "All"),
                 &out, err);
    if (r < 0)
        return r;
    json_t *msgs = json_object_get(out, "Messages");
    if (js) {
        char *s = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    }
    size_t i;
    json_t *m;
    json_array_foreach (msgs, i, m) {
        if (!js)
            printf("%s\n", json_string_value(json_object_get(m, "Body")));
        if (!keep && r == 0)
            r = sqs_call(c, "DeleteMessage",
                         json_pack("{s:s, s:O}", "QueueUrl", url, "ReceiptHandle",
                                   json_object_get(m, "ReceiptHandle")),
                         NULL, err);
    }
    json_decref(out);
    return r;
}

static int parse_attr(const char *kv, json_t *attrs, struct nb_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return err_set(err, EINVAL, "invalid --attr '%s': expected K=V", kv);
    _cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
    json_object_set_new(attrs, k, json_string(eq + 1));
    return 0;
}

int cmd_queue(int argc, char **argv)
{
    enum { OPT_ATTR = 0x200, OPT_MAX, OPT_WAIT, OPT_KEEP, OPT_JSON };
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {"attr", required_argument, NULL, OPT_ATTR},
        {"max", required_argument, NULL, OPT_MAX},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    struct nb_err err = {0};
    json_t *attrs = json_object();
    int64_t max = 10, wait = 0;
    bool keep = false, js = false;
    int c, r;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_ATTR:
            if (parse_attr(optarg, attrs, &err) < 0) {
                json_decref(attrs);
                return cli_usage_error(usage, "%s", err.msg);
            }
            break;
        case OPT_MAX:
            if (parse_i64(optarg, 1, 10, &max) < 0) {
                json_decref(attrs);
                return cli_usage_error(usage, "invalid --max '%s': expected 1-10", optarg);
            }
            break;
        case OPT_WAIT:
            if (parse_i64(optarg, 0, 20, &wait) < 0) {
                json_decref(attrs);
                return cli_usage_error(usage, "invalid --wait '%s': expected 0-20", optarg);
            }
            break;
        case OPT_KEEP:
            keep = true;
            break;
        case OPT_JSON:
            js = true;
            break;
        default:
            if ((r = cli_common_option(c, usage, argv, &endpoint)) >= 0) {
                json_decref(attrs);
                return r;
            }
            break;
        }
    }
    int nargs = argc - optind;
    const char *action = nargs > 0 ? argv[optind] : NULL;
    char **args = argv + optind + 1;
    nargs--;
    struct {
        const char *name;
        int min, max;
    } const shapes[] = {{"ls", 0, 1},   {"create", 1, 1}, {"rm", 1, 1 << 20},
                        {"send", 2, 2}, {"recv", 1, 1},   {"purge", 1, 1}};
    bool known = false;
    for (size_t i = 0; action && i < ARRAY_SIZE(shapes); i++)
        if (!strcmp(action, shapes[i].name)) {
            known = true;
            if (nargs < shapes[i].min || nargs > shapes[i].max) {
                json_decref(attrs);
                return cli_usage_error(usage, "wrong number of arguments for '%s'", action);
            }
        }
    if (!known) {
        json_decref(attrs);
        return cli_usage_error(usage, action ? "unknown action '%s'" : "missing ACTION%s",
                               action ? action : "");
    }

    struct nb_client cl;
    r = client_init(&cl, endpoint, &err);
    json_t *out = NULL;
    _cleanup_free_ char *url = NULL;
    if (r < 0) {
        /* reported below */
    } else if (!strcmp(action, "ls")) {
        r = do_ls(&cl, nargs ? args[0] : NULL, &err);
    } else if (!strcmp(action, "create")) {
        json_t *in = json_pack("{s:s}", "QueueName", args[0]);
        if (json_object_size(attrs))
            json_object_set(in, "Attributes", attrs);
        r = sqs_call(&cl, "CreateQueue", in, &out, &err);
        if (r == 0)
            printf("%s\n", json_string_value(json_object_get(out, "QueueUrl")));
    } else if (!strcmp(action, "rm")) {
        for (int i = 0; i < nargs && r == 0; i++) {
            free(url);
            url = NULL;
            r = queue_url(&cl, args[i], &url, &err);
            if (r == 0)
                r = sqs_call(&cl, "DeleteQueue", json_pack("{s:s}", "QueueUrl", url), NULL, &err);
            if (r == 0)
                printf("deleted %s\n", args[i]);
        }
    } else if (!strcmp(action, "send")) {
        r = queue_url(&cl, args[0], &url, &err);
        if (r == 0)
            r = sqs_call(&cl, "SendMessage",
                         json_pack("{s:s, s:s}", "QueueUrl", url, "MessageBody", args[1]), &out,
                         &err);
        if (r == 0)
            printf("%s\n", json_string_value(json_object_get(out, "MessageId")));
    } else if (!strcmp(action, "recv")) {
        r = do_recv(&cl, args[0], (int)max, (int)wait, keep, js, &err);
    } else if (!strcmp(action, "purge")) {
        r = queue_url(&cl, args[0], &url, &err);
        if (r == 0)
            r = sqs_call(&cl, "PurgeQueue", json_pack("{s:s}", "QueueUrl", url), NULL, &err);
    }
    json_decref(out);
    json_decref(attrs);
    return cli_finish(&cl, r, &err);
}
