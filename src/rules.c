/*
 * rules.c - EventBridge schedule rules: the sorted in-memory table, request validation with
 * EventBridge's messages, the stored record and the JSON shapes (see rules.h).
 *
 * Nothing here touches the loop, the store or the clock (now_s is a parameter), so the parsing
 * of outside input is fuzzed as pure functions (tests/fuzz/fuzz_events.c).
 */
#include "rules.h"

#include <errno.h>

#include "async.h"
#include "util.h"

#define RECORD_FORMAT 1

bool rules_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RULES_NAME_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

char *rules_arn(const char *region, const char *account, const char *name)
{
    return xasprintf("arn:aws:events:%s:%s:rule/%s", region, account, name);
}

/* ---- the table --------------------------------------------------------------------------- */

struct nb_rule *rules_find(struct nb_rules *t, const char *name)
{
    for (struct nb_rule *r = t->head; r; r = r->next) {
        int c = strcmp(r->name, name);
        if (c == 0)
            return r;
        if (c > 0)
            break;
    }
    return NULL;
}

void rules_insert(struct nb_rules *t, struct nb_rule *r)
{
    struct nb_rule **p = &t->head;
    while (*p && strcmp((*p)->name, r->name) < 0)
        p = &(*p)->next;
    if (*p && !strcmp((*p)->name, r->name))
        BUG("rule '%s' inserted twice", r->name);
    r->next = *p;
    *p = r;
    t->n++;
}

void rules_remove(struct nb_rules *t, const char *name)
{
    for (struct nb_rule **p = &t->head; *p; p = &(*p)->next) {
        if (!strcmp((*p)->name, name)) {
            struct nb_rule *r = *p;
            *p = r->next;
            rule_free(r);
            t->n--;
            return;
        }
    }
}

void rules_release(struct nb_rules *t)
{
    while (t->head) {
        struct nb_rule *r = t->head;
        t->head = r->next;
        rule_free(r);
    }
    t->n = 0;
}

void rule_target_release(struct nb_rule_target *t)
{
    free(t->id);
    free(t->arn);
    free(t->input);
    free(t->function);
    free(t->qualifier);
    memset(t, 0, sizeof(*t));
}

void rule_free(struct nb_rule *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->expr);
    free(r->description);
    for (size_t i = 0; i < r->n_targets; i++)
        rule_target_release(&r->targets[i]);
    free(r->targets);
    free(r);
}

struct nb_rule_target *rule_target_find(struct nb_rule *r, const char *id)
{
    for (size_t i = 0; i < r->n_targets; i++)
        if (!strcmp(r->targets[i].id, id))
            return &r->targets[i];
    return NULL;
}

void rule_target_remove(struct nb_rule *r, const char *id)
{
    for (size_t i = 0; i < r->n_targets; i++) {
        if (!strcmp(r->targets[i].id, id)) {
            rule_target_release(&r->targets[i]);
            memmove(&r->targets[i], &r->targets[i + 1],
                    (r->n_targets - i - 1) * sizeof(r->targets[0]));
            r->n_targets--;
            return;
        }
    }
}

static void target_copy(struct nb_rule_target *dst, const struct nb_rule_target *src)
{
    *dst = *src;
    dst->id = xstrdup(src->id);
    dst->arn = xstrdup(src->arn);
    dst->input = src->input ? xstrdup(src->input) : NULL;
    dst->function = xstrdup(src->function);
    dst->qualifier = src->qualifier ? xstrdup(src->qualifier) : NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* A member that must be a string when present: its value, NULL when absent or null. */
static int opt_string(json_t *body, const char *key, const char **out, struct nb_err *err)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(err, EINVAL, "Parameter %s must be a string.", key);
    *out = json_string_value(v);
    return 0;
}

int rules_parse_put(json_t *body, const struct nb_rule *cur, int64_t now_s, struct nb_rule **out,
                    struct nb_err *err)
{
    const char *name, *expr, *state, *desc, *pattern, *bus;
    int rc;
    if ((rc = opt_string(body, "Name", &name, err)) < 0 ||
        (rc = opt_string(body, "ScheduleExpression", &expr, err)) < 0 ||
        (rc = opt_string(body, "State", &state, err)) < 0 ||
        (rc = opt_string(body, "Description", &desc, err)) < 0 ||
        (rc = opt_string(body, "EventPattern", &pattern, err)) < 0 ||
        (rc = opt_string(body, "EventBusName", &bus, err)) < 0)
        return rc;
    if (!name || !rules_name_valid(name))
        return err_set(err, EINVAL,
                       "1 validation error detected: Value at 'name' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: "
                       "[\\.\\-_A-Za-z0-9]+ and have length between 1 and 64");
    if (bus && strcmp(bus, "default") && !strstr(bus, ":event-bus/default"))
        return err_set(err, EINVAL, "nimbus supports only the default event bus, not '%s'", bus);
    if (pattern)
        return err_set(err, EINVAL,
                       "EventPattern is not supported by nimbus: rules run on a "
                       "ScheduleExpression only");
    if (!expr)
        return err_set(err, EINVAL,
                       "Parameter(s) EventPattern or ScheduleExpression must be specified.");
    if (desc && strlen(desc) > RULES_DESCRIPTION_MAX)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value at 'description' failed to satisfy "
                       "constraint: Member must have length less than or equal to %d",
                       RULES_DESCRIPTION_MAX);
    bool enabled = true;
    if (state) {
        if (!strcmp(state, "DISABLED"))
            enabled = false;
        else if (strcmp(state, "ENABLED"))
            return err_set(err, EINVAL,
                           "1 validation error detected: Value '%s' at 'state' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
                           state);
    } /* no State: ENABLED, also over a disabled rule (as in EventBridge) */
    int64_t minute = now_s - (((now_s % 60) + 60) % 60);
    bool restart = !cur || strcmp(cur->expr, expr) || (enabled && !cur->enabled);
    int64_t since = restart ? minute : cur->since_s;
    struct nb_schedule sched;
    struct nb_err perr = {0};
    if (schedule_parse(expr, since, &sched, &perr) < 0)
        return err_set(err, EINVAL, "Parameter ScheduleExpression is not valid.");
    struct nb_rule *r = xcalloc(1, sizeof(*r));
    r->name = xstrdup(name);
    r->expr = xstrdup(expr);
    r->description = desc ? xstrdup(desc) : NULL;
    r->enabled = enabled;
    r->created_s = cur ? cur->created_s : now_s;
    r->since_s = since;
    r->sched = sched;
    if (cur && cur->n_targets) {
        r->targets = xcalloc(cur->n_targets, sizeof(*r->targets));
        for (size_t i = 0; i < cur->n_targets; i++)
            target_copy(&r->targets[i], &cur->targets[i]);
        r->n_targets = cur->n_targets;
    }
    *out = r;
    return 0;
}

int rules_parse_target(json_t *entry, const char *region, const char *account, int64_t now_s,
                       struct nb_rule_target *out, const char **code, struct nb_err *err)
{
    memset(out, 0, sizeof(*out));
    *code = "ValidationException";
    if (!json_is_object(entry))
        return err_set(err, E2BIG, "Parameter Targets must be a list of Target structures.");
    const char *id, *arn, *input;
    int rc;
    if ((rc = opt_string(entry, "Id", &id, err)) < 0 ||
        (rc = opt_string(entry, "Arn", &arn, err)) < 0 ||
        (rc = opt_string(entry, "Input", &input, err)) < 0) {
        err->code = E2BIG;
        return -E2BIG;
    }
    if (!id || !rules_name_valid(id))
        return err_set(err, E2BIG,
                       "1 validation error detected: Value at 'targets.1.member.id' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       "[\\.\\-_A-Za-z0-9]+ and have length between 1 and 64");
    if (!arn || !*arn)
        return err_set(err, E2BIG,
                       "1 validation error detected: Value null at 'targets.1.member.arn' failed "
                       "to satisfy constraint: Member must not be null");
    static const char *const unsupported[] = {
        "InputPath",         "InputTransformer",    "RoleArn",
        "KinesisParameters", "EcsParameters",       "SqsParameters",
        "HttpParameters",    "RetryPolicy",         "DeadLetterConfig",
        "BatchParameters",   "RunCommandParameters"};
    for (size_t i = 0; i < ARRAY_SIZE(unsupported); i++) {
        json_t *v = json_object_get(entry, unsupported[i]);
        if (v && !json_is_null(v))
            return err_set(err, EINVAL,
                           "nimbus does not support %s in targets (only Id, Arn, Input)",
                           unsupported[i]);
    }
    if (input) {
        if (strlen(input) > RULES_INPUT_MAX)
            return err_set(err, EINVAL, "Input is longer than %d characters", RULES_INPUT_MAX);
        json_error_t je;
        json_t *v = json_loads(input, JSON_DECODE_ANY, &je);
        if (!v)
            return err_set(err, EINVAL, "Input is not valid JSON: %s", je.text);
        json_decref(v);
    }
    char *fn = NULL, *qual = NULL;
    struct nb_err aerr = {0};
    if (async_destination_parse(region, account, arn, &fn, &qual, &aerr) != 0) /* 1: a queue */
        return err_set(err, EINVAL,
                       "nimbus rules can only target Lambda functions of %s/%s "
                       "(arn:aws:lambda:%s:%s:function:NAME), not '%s'",
                       region, account, region, account, arn);
    out->id = xstrdup(id);
    out->arn = xstrdup(arn);
    out->input = input ? xstrdup(input) : NULL;
    out->function = fn;
    out->qualifier = qual;
    out->added_s = now_s;
    return 0;
}

/* ---- record ------------------------------------------------------------------------------ */

char *rule_record(const struct nb_rule *r)
{
    json_t *targets = json_array();
    for (size_t i = 0; i < r->n_targets; i++) {
        const struct nb_rule_target *t = &r->targets[i];
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "Id", t->id, "Arn", t->arn, "Added",
                              (json_int_t)t->added_s, "Function", t->function);
        if (t->qualifier)
            json_object_set_new(o, "Qualifier", json_string(t->qualifier));
        if (t->input)
            json_object_set_new(o, "Input", json_string(t->input));
        json_array_append_new(targets, o);
    }
    json_t *o =
        json_pack("{s:i, s:s, s:b, s:I, s:I, s:o}", "Format", RECORD_FORMAT, "ScheduleExpression",
                  r->expr, "Enabled", r->enabled, "Created", (json_int_t)r->created_s, "Since",
                  (json_int_t)r->since_s, "Targets", targets);
    if (!o)
        BUG("json_pack failed");
    if (r->description)
        json_object_set_new(o, "Description", json_string(r->description));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        BUG("json_dumps failed");
    return s;
}

struct nb_rule *rule_from_record(const char *name, const char *doc, struct nb_err *err)
{
    json_error_t je;
    json_t *o = json_loads(doc, 0, &je);
    const char *expr = NULL, *desc = NULL;
    int enabled = 0;
    json_int_t created = 0, since = 0;
    json_t *targets = NULL;
    if (!o ||
        json_unpack_ex(o, &je, 0, "{s:s, s:b, s:I, s:I, s:o, s?s}", "ScheduleExpression", &expr,
                       "Enabled", &enabled, "Created", &created, "Since", &since, "Targets",
                       &targets, "Description", &desc) < 0 ||
        !json_is_array(targets)) {
        json_decref(o);
        err_set(err, EINVAL, "unreadable record of rule '%s': %s", name, je.text);
        return NULL;
    }
    struct nb_rule *r = xcalloc(1, sizeof(*r));
    r->name = xstrdup(name);
    r->expr = xstrdup(expr);
    r->description = desc ? xstrdup(desc) : NULL;
    r->enabled = enabled;
    r->created_s = created;
    r->since_s = since;
    int rc = schedule_parse(expr, since, &r->sched, err);
    size_t n = json_array_size(targets);
    r->targets = n ? xcalloc(n, sizeof(*r->targets)) : NULL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *t = json_array_get(targets, i);
        const char *id = NULL, *arn = NULL, *input = NULL, *fn = NULL, *qual = NULL;
        json_int_t added = 0;
        if (json_unpack(t, "{s:s, s:s, s:I, s:s, s?s, s?s}", "Id", &id, "Arn", &arn, "Added",
                        &added, "Function", &fn, "Input", &input, "Qualifier", &qual) < 0) {
            rc = err_set(err, EINVAL, "unreadable target of rule '%s'", name);
            break;
        }
        struct nb_rule_target *x = &r->targets[r->n_targets++];
        x->id = xstrdup(id);
        x->arn = xstrdup(arn);
        x->input = input ? xstrdup(input) : NULL;
        x->added_s = added;
        x->function = xstrdup(fn);
        x->qualifier = qual ? xstrdup(qual) : NULL;
    }
    json_decref(o);
    if (rc < 0) {
        rule_free(r);
        return NULL;
    }
    return r;
}

/* ---- EventBridge's shapes ---------------------------------------------------------------- */

json_t *rule_json(const struct nb_rule *r, const char *region, const char *account, bool describe)
{
    _cleanup_free_ char *arn = rules_arn(region, account, r->name);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "Name", r->name, "Arn", arn, "ScheduleExpression",
                  r->expr, "State", r->enabled ? "ENABLED" : "DISABLED", "EventBusName", "default");
    if (!o)
        BUG("json_pack failed");
    if (r->description)
        json_object_set_new(o, "Description", json_string(r->description));
    if (describe)
        json_object_set_new(o, "CreatedBy", json_string(account));
    return o;
}

json_t *rule_target_json(const struct nb_rule_target *t)
{
    json_t *o = json_pack("{s:s, s:s}", "Id", t->id, "Arn", t->arn);
    if (!o)
        BUG("json_pack failed");
    if (t->input)
        json_object_set_new(o, "Input", json_string(t->input));
    return o;
}
