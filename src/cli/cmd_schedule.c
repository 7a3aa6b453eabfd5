/*
 * cmd_schedule.c - `nimbus schedule add|ls|rm`: EventBridge schedule rules targeting functions,
 * through the same EventBridge API (JSON 1.1 on POST /, signed for "events") as aws CLI and boto3.
 *
 * add NAME EXPR FUNCTION [--input JSON] [--disabled]: GetFunction (for its ARN), PutRule, then
 * PutTargets with one target whose Id is the function's name; ls: ListRules (every page) with
 * each rule's targets; rm NAME: RemoveTargets of every target, then DeleteRule.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus schedule add NAME EXPRESSION FUNCTION [--input JSON] [--disabled] [options]\n"
    "       nimbus schedule ls [options]\n"
    "       nimbus schedule rm NAME [options]\n"
    "\n"
    "Runs FUNCTION asynchronously on a schedule: EXPRESSION is an EventBridge schedule,\n"
    "'rate(5 minutes)' or 'cron(0 12 * * ? *)' (UTC). The function receives the Scheduled Event,\n"
    "or the constant JSON given with --input. `ls` lists rules, `rm` deletes one.\n"
    "\n"
    "options:\n"
    "  --input JSON         constant event instead of the Scheduled Event\n"
    "  --disabled           create the rule disabled\n" CLI_COMMON_HELP;

#define OPT_INPUT 0x200
#define OPT_DISABLED 0x201

static int call(struct nb_client *cl, const char *op, json_t *body, json_t **out,
                struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    _cleanup_free_ char *target = xasprintf("AWSEvents.%s", op);
    int r = client_target(cl, "events", target, body, &resp, out, err);
    client_resp_release(&resp);
    json_decref(body);
    return r;
}

static int add(struct nb_client *cl, const char *name, const char *expr, const char *fn,
               const char *input, bool disabled, struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    _cleanup_free_ char *efn = client_escape(fn);
    _cleanup_free_ char *path = xasprintf("/2015-03-31/functions/%s", efn);
    json_t *got = NULL;
    int r = client_json(cl, "GET", path, NULL, NULL, &resp, &got, err);
    client_resp_release(&resp);
    if (r < 0)
        return r;
    const char *arn =
        json_string_value(json_object_get(json_object_get(got, "Configuration"), "FunctionArn"));
    const char *fname =
        json_string_value(json_object_get(json_object_get(got, "Configuration"), "FunctionName"));
    if (!arn || !fname) {
        json_decref(got);
        return err_set(err, EPROTO, "GetFunction answered no FunctionArn for '%s'", fn);
    }
    json_t *out = NULL;
    r = call(cl, "PutRule",
             json_pack("{s:s, s:s, s:s}", "Name", name, "ScheduleExpression", expr, "State",
                       disabled ? "DISABLED" : "ENABLED"),
             &out, err);
    json_decref(out);
    if (r == 0) {
        json_t *t = json_pack("{s:s, s:s}", "Id", fname, "Arn", arn);
        if (input)
            json_object_set_new(t, "Input", json_string(input));
        r = call(cl, "PutTargets", json_pack("{s:s, s:[o]}", "Rule", name, "Targets", t), &out,
                 err);
        if (r == 0 && json_integer_value(json_object_get(out, "FailedEntryCount")) > 0) {
            json_t *f = json_array_get(json_object_get(out, "FailedEntries"), 0);
            r = err_set(err, EINVAL, "cannot target '%s': %s", fn,
                        json_string_value(json_object_get(f, "ErrorMessage")));
        }
        json_decref(out);
    }
    if (r == 0)
        printf("schedule %s: %s -> %s%s\n", name, expr, fname, disabled ? " (disabled)" : "");
    json_decref(got);
    return r;
}

static int ls(struct nb_client *cl, struct nb_err *err)
{
    _cleanup_free_ char *token = NULL;
    printf("%-32s %-9s %-28s %s\n", "NAME", "STATE", "EXPRESSION", "TARGETS");
    do {
        json_t *body = json_object();
        if (token)
            json_object_set_new(body, "NextToken", json_string(token));
        json_t *out = NULL;
        int r = call(cl, "ListRules", body, &out, err);
        if (r < 0)
            return r;
        size_t i;
        json_t *rule;
        json_array_foreach (json_object_get(out, "Rules"), i, rule) {
            const char *name = json_string_value(json_object_get(rule, "Name"));
            json_t *tout = NULL;
            r = call(cl, "ListTargetsByRule", json_pack("{s:s}", "Rule", name), &tout, err);
            if (r < 0) {
                json_decref(out);
                return r;
            }
            struct nb_buf b = NB_BUF_INIT;
            size_t k;
            json_t *t;
            json_array_foreach (json_object_get(tout, "Targets"), k, t) {
                const char *arn = json_string_value(json_object_get(t, "Arn"));
                const char *fn = arn ? strstr(arn, ":function:") : NULL;
                buf_appendf(&b, "%s%s", k ? "," : "", fn ? fn + 10 : (arn ? arn : "?"));
            }
            json_decref(tout);
            printf("%-32s %-9s %-28s %s\n", name, json_string_value(json_object_get(rule, "State")),
                   json_string_value(json_object_get(rule, "ScheduleExpression")),
                   b.len ? b.data : "-");
            buf_release(&b);
        }
        free(token);
        const char *next = json_string_value(json_object_get(out, "NextToken"));
        token = next ? xstrdup(next) : NULL;
        json_decref(out);
    } while (token);
    return 0;
}

static int rm(struct nb_client *cl, const char *name, struct nb_err *err)
{
    json_t *out = NULL;
    int r = call(cl, "ListTargetsByRule", json_pack("{s:s}", "Rule", name), &out, err);
    if (r < 0)
        return r;
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(out, "Targets"), i, t)
        json_array_append(ids, json_object_get(t, "Id"));
    json_decref(out);
    if (json_array_size(ids)) {
        r = call(cl, "RemoveTargets", json_pack("{s:s, s:O}", "Rule", name, "Ids", ids), &out, err);
        json_decref(out);
    }
    json_decref(ids);
    if (r == 0) {
        r = call(cl, "DeleteRule", json_pack("{s:s}", "Name", name), &out, err);
        json_decref(out);
    }
    if (r == 0)
        printf("deleted schedule %s\n", name);
    return r;
}

int cmd_schedule(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"input", required_argument, NULL, OPT_INPUT},
        {"disabled", no_argument, NULL, OPT_DISABLED},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *input = NULL;
    bool disabled = false;
    struct nb_err err = {0};
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_INPUT:
            input = optarg;
            break;
        case OPT_DISABLED:
            disabled = true;
            break;
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
        return cli_usage_error(usage, "missing add, ls or rm");
    const char *sub = argv[optind++];
    int nargs = argc - optind;
    if (!strcmp(sub, "add")  ? nargs != 3
        : !strcmp(sub, "ls") ? nargs != 0
        : !strcmp(sub, "rm") ? nargs != 1
                             : true)
        return cli_usage_error(usage, "bad arguments for '%s'", sub);
    struct nb_client cl;
    if (client_init(&cl, endpoint, &err) < 0) {
        client_release(&cl);
        return cli_report(&err);
    }
    int r;
    if (!strcmp(sub, "add"))
        r = add(&cl, argv[optind], argv[optind + 1], argv[optind + 2], input, disabled, &err);
    else if (!strcmp(sub, "ls"))
        r = ls(&cl, &err);
    else
        r = rm(&cl, argv[optind], &err);
    client_release(&cl);
    return r < 0 ? cli_report(&err) : CLI_EXIT_OK;
}
