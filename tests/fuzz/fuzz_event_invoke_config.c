/*
 * fuzz_event_invoke_config.c - libFuzzer target for async_config.c's untrusted inputs: the bytes
 * as a destination ARN (async_destination_parse) and as a Put/UpdateFunctionEventInvokeConfig
 * body (async_config_parse, as a Put and as an Update over a full config); accepted configs are
 * rendered (async_config_json) and taken through the stored record and back.
 *
 * Invariants checked: no crash, no leak (ASan); a failure is -EINVAL with an AWS error type; an
 * accepted config has its fields in Lambda's ranges, destinations that parse again, and a record
 * that reloads to an identical document.
 */
#include <errno.h>

#include "async.h"
#include "util.h"

#define REGION "us-east-1"
#define ACCOUNT "123456789012"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dest(const char *arn)
{
    if (!arn)
        return;
    char *name = NULL, *q = NULL;
    struct nb_err err = {0};
    if (async_destination_parse(REGION, ACCOUNT, arn, &name, &q, &err) < 0)
        BUG("accepted destination '%s' does not parse again: %s", arn, err.msg);
    free(name);
    free(q);
}

static void check_config(const struct nb_eic *c)
{
    if (c->max_retries < -1 || c->max_retries > 2 ||
        (c->max_age_s != -1 && (c->max_age_s < 60 || c->max_age_s > 21600)))
        BUG("config out of range: %d %d", c->max_retries, c->max_age_s);
    check_dest(c->on_success);
    check_dest(c->on_failure);
    json_t *o = async_config_json(REGION, ACCOUNT, c);
    char *rec = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!rec)
        BUG("config JSON does not serialise");
    struct nb_eic *back = async_config_from_record(c->function, c->qualifier, rec);
    if (!back)
        BUG("record does not reload: %s", rec);
    o = async_config_json(REGION, ACCOUNT, back);
    char *rec2 = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!rec2 || strcmp(rec, rec2) != 0)
        BUG("record round trip differs:\n%s\n%s", rec, rec2 ? rec2 : "(null)");
    free(rec2);
    free(rec);
    async_config_release(back);
}

static void parse_as(json_t *body, const struct nb_eic *cur)
{
    struct nb_eic *c = NULL;
    const char *type = NULL;
    struct nb_err err = {0};
    int rc = async_config_parse(REGION, ACCOUNT, "fn", "$LATEST", body, cur, &c, &type, &err);
    if (rc < 0) {
        if (rc != -EINVAL || !type || c)
            BUG("parse failure rc=%d type=%s", rc, type ? type : "(null)");
        return;
    }
    check_config(c);
    async_config_release(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);
    char *name = NULL, *q = NULL;
    struct nb_err err = {0};
    if (async_destination_parse(REGION, ACCOUNT, s, &name, &q, &err) < 0 && err.code != EINVAL)
        BUG("destination failure with code %d", err.code);
    free(name);
    free(q);
    free(s);

    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (body) {
        struct nb_eic cur = {
            .function = "fn",
            .qualifier = "$LATEST",
            .max_retries = 1,
            .max_age_s = 3600,
            .on_success = "arn:aws:lambda:" REGION ":" ACCOUNT ":function:ok",
            .on_failure = "arn:aws:lambda:" REGION ":" ACCOUNT ":function:ko:live",
        };
        parse_as(body, NULL);
        parse_as(body, &cur);
        json_decref(body);
    }
    return 0;
}
