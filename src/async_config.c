/*
 * async_config.c - event invoke configs as data: parsing and validating a Put/Update body (outside
 * input; tests/fuzz/fuzz_event_invoke_config.c), the FunctionEventInvokeConfig JSON (which is
 * also the stored record) and back, and destination ARNs. No daemon, no I/O.
 *
 * Rules (botocore's model, LAMBDA.md §3.9/§3.11): MaximumRetryAttempts 0..2,
 * MaximumEventAgeInSeconds 60..21600, Destination at most 350 characters; an unset field is -1 /
 * NULL (the dispatcher then uses Lambda's defaults). Destinations: a Lambda function ARN or an SQS
 * queue ARN of this region and account; anything else is "The destination ARN ... is invalid."
 * (topics, event buses and buckets until those services exist).
 */
#include <errno.h>

#include "async.h"
#include "function.h"
#include "util.h"

#define DESTINATION_MAX 350

void async_config_release(struct nb_eic *c)
{
    if (!c)
        return;
    free(c->function);
    free(c->qualifier);
    free(c->on_success);
    free(c->on_failure);
    free(c);
}

int async_destination_parse(const char *region, const char *account, const char *arn, char **name,
                            char **qualifier, struct nb_err *err)
{
    _cleanup_free_ char *n = NULL, *q = NULL, *r = NULL, *acct = NULL;
    struct nb_err perr = {0};
    /* Hook: "arn:aws:sqs:", "arn:aws:sns:", "arn:aws:events:" and "arn:aws:s3:" destinations are
     * recognised here once those services exist (and delivered by async.c's finish()); until
     * then they are invalid like any other ARN. */
    /* esm: a queue of this region and account: arn:aws:sqs:REGION:ACCOUNT:NAME */
    if (!strncmp(arn, "arn:aws:sqs:", 12)) {
        const char *p = arn + 12;
        size_t rl = strlen(region), al = strlen(account);
        if (!strncmp(p, region, rl) && p[rl] == ':' && !strncmp(p + rl + 1, account, al) &&
            p[rl + 1 + al] == ':' && p[rl + 2 + al] && !strchr(p + rl + 2 + al, ':'))
            return 1;
    }
    if (strncmp(arn, "arn:aws:lambda:", 15) ||
        function_parse_ref_arn(arn, &n, &q, &r, &acct, &perr) < 0 || !r || !acct ||
        strcmp(r, region) || strcmp(acct, account))
        return err_set(err, EINVAL,
                       "The destination ARN %s is invalid. (nimbus delivers destination records "
                       "to Lambda functions and SQS queues of region %s, account %s only)",
                       arn, region, account);
    *name = steal_ptr(n);
    *qualifier = steal_ptr(q);
    return 0;
}

/* Range check of an optional integer member; -EINVAL with the error type set. */
static int check_int(json_t *v, const char *member, long long min, long long max, const char **type,
                     struct nb_err *err)
{
    if (!v)
        return 0;
    if (!json_is_integer(v)) {
        *type = "InvalidRequestContentException";
        return err_set(err, EINVAL, "Could not parse request body into json: %s must be an integer",
                       member);
    }
    long long n = json_integer_value(v);
    if (n >= min && n <= max)
        return 0;
    *type = "ValidationException";
    return err_set(err, EINVAL,
                   "1 validation error detected: Value '%lld' at '%c%s' failed to satisfy "
                   "constraint: Member must have value %s than or equal to %lld",
                   n, member[0] + ('a' - 'A'), member + 1, n < min ? "greater" : "less",
                   n < min ? min : max);
}

/* Checks DestinationConfig.<which>; *out = its ARN (borrowed from body) or NULL. */
static int check_destination(const char *region, const char *account, json_t *dc, const char *which,
                             const char **out, const char **type, struct nb_err *err)
{
    *out = NULL;
    json_t *m = json_object_get(dc, which);
    if (!m || json_is_null(m))
        return 0;
    json_t *dst = json_object_get(m, "Destination");
    if (!json_is_object(m) || (dst && !json_is_string(dst) && !json_is_null(dst))) {
        *type = "InvalidRequestContentException";
        return err_set(err, EINVAL, "Could not parse request body into json: DestinationConfig.%s",
                       which);
    }
    if (!json_is_string(dst) || json_string_length(dst) == 0)
        return 0;
    const char *arn = json_string_value(dst);
    if (json_string_length(dst) > DESTINATION_MAX) {
        *type = "ValidationException";
        return err_set(err, EINVAL,
                       "1 validation error detected: Value at 'destinationConfig.%c%s.destination' "
                       "failed to satisfy constraint: Member must have length less than or equal "
                       "to %d",
                       which[0] + ('a' - 'A'), which + 1, DESTINATION_MAX);
    }
    _cleanup_free_ char *name = NULL, *q = NULL;
    if (strlen(arn) != json_string_length(dst) ||
        async_destination_parse(region, account, arn, &name, &q, err) < 0) {
        *type = "InvalidParameterValueException";
        if (strlen(arn) != json_string_length(dst))
            return err_set(err, EINVAL, "The destination ARN is invalid.");
        return -EINVAL;
    }
    *out = arn;
    return 0;
}

int async_config_parse(const char *region, const char *account, const char *function,
                       const char *qualifier, json_t *body, const struct nb_eic *cur,
                       struct nb_eic **out, const char **type, struct nb_err *err)
{
    json_t *retries = json_object_get(body, "MaximumRetryAttempts");
    json_t *age = json_object_get(body, "MaximumEventAgeInSeconds");
    json_t *dc = json_object_get(body, "DestinationConfig");
    if (json_is_null(retries))
        retries = NULL;
    if (json_is_null(age))
        age = NULL;
    int rc = check_int(retries, "MaximumRetryAttempts", 0, 2, type, err);
    if (rc == 0)
        rc = check_int(age, "MaximumEventAgeInSeconds", 60, 21600, type, err);
    if (rc < 0)
        return rc;
    if (dc && !json_is_object(dc) && !json_is_null(dc)) {
        *type = "InvalidRequestContentException";
        return err_set(err, EINVAL, "Could not parse request body into json: DestinationConfig");
    }
    const char *ok = NULL, *ko = NULL;
    if ((rc = check_destination(region, account, dc, "OnSuccess", &ok, type, err)) < 0 ||
        (rc = check_destination(region, account, dc, "OnFailure", &ko, type, err)) < 0)
        return rc;
    struct nb_eic *c = xcalloc(1, sizeof(*c));
    c->function = xstrdup(function);
    c->qualifier = xstrdup(qualifier);
    c->max_retries = retries ? (int)json_integer_value(retries) : -1;
    c->max_age_s = age ? (int)json_integer_value(age) : -1;
    c->on_success = ok ? xstrdup(ok) : NULL;
    c->on_failure = ko ? xstrdup(ko) : NULL;
    if (cur) {
        /* Update: what the request does not name keeps its value */
        if (!retries)
            c->max_retries = cur->max_retries;
        if (!age)
            c->max_age_s = cur->max_age_s;
        if (!json_object_get(dc, "OnSuccess") && cur->on_success)
            c->on_success = xstrdup(cur->on_success);
        if (!json_object_get(dc, "OnFailure") && cur->on_failure)
            c->on_failure = xstrdup(cur->on_failure);
    }
    c->last_modified = (double)now_ms() / 1000.0;
    *out = c;
    return 0;
}

json_t *async_config_json(const char *region, const char *account, const struct nb_eic *c)
{
    _cleanup_free_ char *arn = xasprintf("arn:aws:lambda:%s:%s:function:%s:%s", region, account,
                                         c->function, c->qualifier);
    json_t *o = json_pack("{s:f, s:s}", "LastModified", c->last_modified, "FunctionArn", arn);
    if (c->max_retries >= 0)
        json_object_set_new(o, "MaximumRetryAttempts", json_integer(c->max_retries));
    if (c->max_age_s >= 0)
        json_object_set_new(o, "MaximumEventAgeInSeconds", json_integer(c->max_age_s));
    /* Lambda answers both members, empty when unset */
    json_t *ok = json_object(), *ko = json_object();
    if (c->on_success)
        json_object_set_new(ok, "Destination", json_string(c->on_success));
    if (c->on_failure)
        json_object_set_new(ko, "Destination", json_string(c->on_failure));
    json_object_set_new(o, "DestinationConfig",
                        json_pack("{s:o, s:o}", "OnSuccess", ok, "OnFailure", ko));
    return o;
}

static const char *dest_of(json_t *dc, const char *which)
{
    json_t *d = json_object_get(json_object_get(dc, which), "Destination");
    return json_is_string(d) && json_string_length(d) ? json_string_value(d) : NULL;
}

struct nb_eic *async_config_from_record(const char *function, const char *qualifier,
                                        const char *doc)
{
    json_t *o = json_loads(doc, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    struct nb_eic *c = xcalloc(1, sizeof(*c));
    c->function = xstrdup(function);
    c->qualifier = xstrdup(qualifier);
    json_t *v = json_object_get(o, "MaximumRetryAttempts");
    c->max_retries = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    v = json_object_get(o, "MaximumEventAgeInSeconds");
    c->max_age_s = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    c->last_modified = json_number_value(json_object_get(o, "LastModified"));
    json_t *dc = json_object_get(o, "DestinationConfig");
    const char *s = dest_of(dc, "OnSuccess"), *f = dest_of(dc, "OnFailure");
    c->on_success = s ? xstrdup(s) : NULL;
    c->on_failure = f ? xstrdup(f) : NULL;
    json_decref(o);
    return c;
}
