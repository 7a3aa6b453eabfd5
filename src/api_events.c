/*
 * api_events.c - the EventBridge API subset for schedule rules (JSON 1.1 on `POST /`,
 * X-Amz-Target: AWSEvents.<Operation>, reached through api_target.c): PutRule, DescribeRule,
 * ListRules, DeleteRule, EnableRule, DisableRule, PutTargets, RemoveTargets, ListTargetsByRule,
 * ListRuleNamesByTarget. Errors in the JSON shape (__type): ValidationException,
 * ResourceNotFoundException, UnknownOperationException, InternalException.
 *
 * Writes: the in-memory table (scheduler_rules) changes on the loop at once, so later requests
 * see it; the rule's record is written through the daemon's serial store-write queue
 * (serial_work.h: one on a worker thread at a time, in arrival order, so memory and disk agree),
 * and the client's reply waits for its job. A failed write (or one that could not be queued) is
 * answered 500 InternalException and logged (memory then runs ahead of the disk until the next
 * write of that rule).
 */
#include <errno.h>

#include "api.h"
#include "api_target.h"
#include "daemon.h"
#include "log.h"
#include "rules.h"
#include "scheduler.h"
#include "store.h"

#define LIST_LIMIT_MAX 100

struct job {
    struct nb_serial_job sj;
    struct nb_daemon *d;
    struct nb_http_req *req;
    char *name, *doc; /* doc NULL: delete the rule */
    json_t *reply;    /* sent once durable */
    int rc;
    struct nb_err err;
};

static void job_work(void *data)
{
    struct job *j = data;
    j->rc = j->doc ? store_rule_put(j->d->store, j->name, j->doc, &j->err)
                   : store_rule_delete(j->d->store, j->name, &j->err);
}

static void job_free(struct job *j)
{
    json_decref(j->reply);
    free(j->name);
    free(j->doc);
    free(j);
}

/* Answers the request and frees the job, on every path. */
static void job_done(void *data, int status)
{
    struct job *j = data;
    j->rc = api_work_result(status, j->rc, &j->err);
    if (j->rc < 0) {
        log_err("rule write failed name=%s err=\"%s\"", j->name, j->err.msg);
        api_target_error(j->req, 500, "InternalException", "cannot store rule '%s': %s", j->name,
                         j->err.msg);
    } else {
        api_target_json(j->req, steal_ptr(j->reply));
    }
    job_free(j);
}

/* Persists rule name (r = its new state, NULL = deleted), then replies reply (consumed). */
static void persist(struct nb_daemon *d, struct nb_http_req *req, const char *name,
                    const struct nb_rule *r, json_t *reply)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->name = xstrdup(name);
    j->doc = r ? rule_record(r) : NULL;
    j->reply = reply;
    serial_work_submit(&d->store_writes, &j->sj, j, job_work, job_done);
}

/* ---- helpers ----------------------------------------------------------------------------- */

struct ctx {
    struct nb_daemon *d;
    struct nb_http_req *req;
    const struct nb_route_match *m;
    json_t *body;
    const char *op;
};

static bool authorize(struct ctx *c, const char *rule)
{
    _cleanup_free_ char *action = xasprintf("events:%s", c->op);
    _cleanup_free_ char *arn =
        rule ? rules_arn(c->d->cfg.region, c->d->cfg.account_id, rule)
             : xasprintf("arn:aws:events:%s:%s:rule/*", c->d->cfg.region, c->d->cfg.account_id);
    struct nb_err err = {0};
    if (api_authorize(c->d, c->req, c->m, action, arn, &err) < 0) {
        api_target_error(c->req, 400, "AccessDeniedException", "%s", err.msg);
        return false;
    }
    return true;
}

/* The required string member key (a rule name when name_like); NULL after replying. */
static const char *need_name(struct ctx *c, const char *key)
{
    json_t *v = json_object_get(c->body, key);
    if (!json_is_string(v) || !rules_name_valid(json_string_value(v))) {
        api_target_error(c->req, 400, "ValidationException",
                         "1 validation error detected: Value at '%s' failed to satisfy "
                         "constraint: Member must satisfy regular expression pattern: "
                         "[\\.\\-_A-Za-z0-9]+ and have length between 1 and 64",
                         key);
        return NULL;
    }
    return json_string_value(v);
}

static bool bus_ok(struct ctx *c)
{
    json_t *v = json_object_get(c->body, "EventBusName");
    if (!v || json_is_null(v))
        return true;
    const char *b = json_string_value(v);
    if (b && (!strcmp(b, "default") || strstr(b, ":event-bus/default")))
        return true;
    api_target_error(c->req, 400, "ResourceNotFoundException",
                     "Event bus %s does not exist. (nimbus has the default bus only)",
                     b ? b : "(not a string)");
    return false;
}

static struct nb_rule *need_rule(struct ctx *c, const char *name)
{
    struct nb_rule *r = rules_find(scheduler_rules(c->d), name);
    if (!r)
        api_target_error(c->req, 400, "ResourceNotFoundException",
                         "Rule %s does not exist on EventBus default.", name);
    return r;
}

/* Limit and NextToken of a List operation: *limit, *after (a name; "" = from the start). */
static bool paging(struct ctx *c, int64_t *limit, const char **after)
{
    json_t *l = json_object_get(c->body, "Limit");
    json_t *t = json_object_get(c->body, "NextToken");
    *limit = LIST_LIMIT_MAX;
    *after = "";
    if (l && !json_is_null(l)) {
        if (!json_is_integer(l) || json_integer_value(l) < 1 ||
            json_integer_value(l) > LIST_LIMIT_MAX) {
            api_target_error(c->req, 400, "ValidationException",
                             "1 validation error detected: Value at 'limit' failed to satisfy "
                             "constraint: Member must have value between 1 and 100");
            return false;
        }
        *limit = json_integer_value(l);
    }
    if (t && !json_is_null(t)) {
        if (!json_is_string(t) || strncmp(json_string_value(t), "nb1.", 4)) {
            api_target_error(c->req, 400, "ValidationException",
                             "The NextToken provided is not valid.");
            return false;
        }
        *after = json_string_value(t) + 4;
    }
    return true;
}

/* ---- operations -------------------------------------------------------------------------- */

static void put_rule(struct ctx *c)
{
    json_t *n = json_object_get(c->body, "Name");
    const char *name = json_is_string(n) ? json_string_value(n) : NULL;
    if (!authorize(c, name && rules_name_valid(name) ? name : NULL))
        return;
    struct nb_rules *t = scheduler_rules(c->d);
    struct nb_rule *cur = name ? rules_find(t, name) : NULL;
    struct nb_rule *r;
    struct nb_err err = {0};
    if (rules_parse_put(c->body, cur, scheduler_now_s(c->d), &r, &err) < 0) {
        api_target_error(c->req, 400, "ValidationException", "%s", err.msg);
        return;
    }
    if (cur)
        rules_remove(t, r->name);
    rules_insert(t, r);
    scheduler_rearm(c->d);
    log_info("rule put name=%s expr=\"%s\" state=%s", r->name, r->expr,
             r->enabled ? "ENABLED" : "DISABLED");
    _cleanup_free_ char *arn = rules_arn(c->d->cfg.region, c->d->cfg.account_id, r->name);
    persist(c->d, c->req, r->name, r, json_pack("{s:s}", "RuleArn", arn));
}

static void describe_rule(struct ctx *c)
{
    const char *name = need_name(c, "Name");
    if (!name || !authorize(c, name) || !bus_ok(c))
        return;
    struct nb_rule *r = need_rule(c, name);
    if (r)
        api_target_json(c->req, rule_json(r, c->d->cfg.region, c->d->cfg.account_id, true));
}

static void list_rules(struct ctx *c)
{
    if (!authorize(c, NULL) || !bus_ok(c))
        return;
    json_t *p = json_object_get(c->body, "NamePrefix");
    const char *prefix = json_is_string(p) ? json_string_value(p) : "";
    int64_t limit;
    const char *after;
    if (!paging(c, &limit, &after))
        return;
    json_t *rules = json_array();
    const struct nb_rule *last = NULL;
    bool more = false;
    for (struct nb_rule *r = scheduler_rules(c->d)->head; r; r = r->next) {
        if (strncmp(r->name, prefix, strlen(prefix)) || strcmp(r->name, after) <= 0)
            continue;
        if ((int64_t)json_array_size(rules) == limit) {
            more = true;
            break;
        }
        json_array_append_new(rules, rule_json(r, c->d->cfg.region, c->d->cfg.account_id, false));
        last = r;
    }
    json_t *o = json_pack("{s:o}", "Rules", rules);
    if (more && last)
        json_object_set_new(o, "NextToken", json_sprintf("nb1.%s", last->name));
    api_target_json(c->req, o);
}

static void delete_rule(struct ctx *c)
{
    const char *name = need_name(c, "Name");
    if (!name || !authorize(c, name) || !bus_ok(c))
        return;
    struct nb_rules *t = scheduler_rules(c->d);
    struct nb_rule *r = rules_find(t, name);
    if (!r) { /* EventBridge: deleting an absent rule succeeds */
        api_target_json(c->req, json_object());
        return;
    }
    if (r->n_targets) {
        api_target_error(c->req, 400, "ValidationException",
                         "Rule can't be deleted since it has targets.");
        return;
    }
    _cleanup_free_ char *n = xstrdup(name);
    rules_remove(t, n);
    scheduler_rearm(c->d);
    log_info("rule deleted name=%s", n);
    persist(c->d, c->req, n, NULL, json_object());
}

static void set_state(struct ctx *c, bool enabled)
{
    const char *name = need_name(c, "Name");
    if (!name || !authorize(c, name) || !bus_ok(c))
        return;
    struct nb_rule *r = need_rule(c, name);
    if (!r)
        return;
    if (enabled && !r->enabled) {
        /* ticks while it was disabled never fire; a rate restarts from now */
        int64_t now_s = scheduler_now_s(c->d);
        r->since_s = now_s - (((now_s % 60) + 60) % 60);
        struct nb_err err = {0};
        if (schedule_parse(r->expr, r->since_s, &r->sched, &err) < 0)
            BUG("stored expression '%s' no longer parses", r->expr);
    }
    r->enabled = enabled;
    scheduler_rearm(c->d);
    log_info("rule %s name=%s", enabled ? "enabled" : "disabled", r->name);
    persist(c->d, c->req, r->name, r, json_object());
}

static json_t *failed_entry(const char *id, const char *code, const char *msg)
{
    return json_pack("{s:s, s:s, s:s}", "TargetId", id ? id : "", "ErrorCode", code, "ErrorMessage",
                     msg);
}

/* The rule of a PutTargets/RemoveTargets request and its list under member (1 to
 * RULES_PUT_TARGETS_MAX entries; field names it in the error); NULL with the reply sent. */
static struct nb_rule *targets_rule(struct ctx *c, const char *member, const char *field,
                                    json_t **list)
{
    const char *name = need_name(c, "Rule");
    if (!name || !authorize(c, name) || !bus_ok(c))
        return NULL;
    *list = json_object_get(c->body, member);
    if (!json_is_array(*list) || json_array_size(*list) < 1 ||
        json_array_size(*list) > RULES_PUT_TARGETS_MAX) {
        api_target_error(c->req, 400, "ValidationException",
                         "1 validation error detected: Value at '%s' failed to satisfy "
                         "constraint: Member must have length between 1 and %d",
                         field, RULES_PUT_TARGETS_MAX);
        return NULL;
    }
    return need_rule(c, name);
}

/* Drops put_targets' parsed batch when it is refused as a whole. */
static void parsed_free(struct nb_rule_target *parsed, bool *ok, size_t n, json_t *failed)
{
    for (size_t k = 0; k < n; k++)
        rule_target_release(&parsed[k]);
    free(parsed);
    free(ok);
    json_decref(failed);
}

static void put_targets(struct ctx *c)
{
    json_t *list;
    struct nb_rule *r = targets_rule(c, "Targets", "targets", &list);
    if (!r)
        return;
    int64_t now_s = scheduler_now_s(c->d);
    size_t n = json_array_size(list);
    struct nb_rule_target *parsed = xcalloc(n, sizeof(*parsed));
    bool *ok = xcalloc(n, sizeof(*ok));
    json_t *failed = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *code;
        struct nb_err err = {0};
        int rc = rules_parse_target(json_array_get(list, i), c->d->cfg.region, c->d->cfg.account_id,
                                    now_s, &parsed[i], &code, &err);
        if (rc == -E2BIG) {
            parsed_free(parsed, ok, n, failed);
            api_target_error(c->req, 400, "ValidationException", "%s", err.msg);
            return;
        }
        if (rc < 0) {
            json_t *id = json_object_get(json_array_get(list, i), "Id");
            json_array_append_new(failed, failed_entry(json_string_value(id), code, err.msg));
            continue;
        }
        ok[i] = true;
    }
    /* the rule's limit counts targets replaced in place once */
    size_t total = r->n_targets;
    for (size_t i = 0; i < n; i++)
        if (ok[i] && !rule_target_find(r, parsed[i].id))
            total++;
    if (total > RULES_TARGETS_MAX) {
        parsed_free(parsed, ok, n, failed);
        api_target_error(c->req, 400, "LimitExceededException",
                         "The requested resource exceeds the maximum number allowed.");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        struct nb_rule_target *old = rule_target_find(r, parsed[i].id);
        if (old) { /* replaced: keeps its fired ticks and its start */
            parsed[i].last_s = old->last_s;
            parsed[i].added_s = old->added_s;
            rule_target_release(old);
            *old = parsed[i];
        } else {
            r->targets = xrealloc(r->targets, (r->n_targets + 1) * sizeof(*r->targets));
            r->targets[r->n_targets++] = parsed[i];
        }
        memset(&parsed[i], 0, sizeof(parsed[i]));
    }
    free(parsed);
    free(ok);
    scheduler_rearm(c->d);
    log_info("rule targets put name=%s targets=%zu failed=%zu", r->name, r->n_targets,
             json_array_size(failed));
    json_t *reply = json_pack("{s:I, s:o}", "FailedEntryCount", (json_int_t)json_array_size(failed),
                              "FailedEntries", failed);
    persist(c->d, c->req, r->name, r, reply);
}

static void remove_targets(struct ctx *c)
{
    json_t *ids;
    struct nb_rule *r = targets_rule(c, "Ids", "ids", &ids);
    if (!r)
        return;
    json_t *failed = json_array();
    size_t i;
    json_t *v;
    json_array_foreach (ids, i, v) {
        const char *id = json_string_value(v);
        if (!id || !rule_target_find(r, id)) {
            json_array_append_new(failed, failed_entry(id, "ResourceNotFoundException",
                                                       "Target not found on the rule."));
            continue;
        }
        rule_target_remove(r, id);
    }
    scheduler_rearm(c->d);
    json_t *reply = json_pack("{s:I, s:o}", "FailedEntryCount", (json_int_t)json_array_size(failed),
                              "FailedEntries", failed);
    persist(c->d, c->req, r->name, r, reply);
}

static void list_targets(struct ctx *c)
{
    const char *name = need_name(c, "Rule");
    if (!name || !authorize(c, name) || !bus_ok(c))
        return;
    int64_t limit;
    const char *after;
    if (!paging(c, &limit, &after))
        return;
    struct nb_rule *r = need_rule(c, name);
    if (!r)
        return;
    json_t *targets = json_array();
    size_t start = 0;
    if (*after) {
        for (start = 0; start < r->n_targets; start++)
            if (!strcmp(r->targets[start].id, after)) {
                start++;
                break;
            }
    }
    size_t i = start;
    for (; i < r->n_targets && (int64_t)json_array_size(targets) < limit; i++)
        json_array_append_new(targets, rule_target_json(&r->targets[i]));
    json_t *o = json_pack("{s:o}", "Targets", targets);
    if (i < r->n_targets && i > 0)
        json_object_set_new(o, "NextToken", json_sprintf("nb1.%s", r->targets[i - 1].id));
    api_target_json(c->req, o);
}

static void list_rule_names_by_target(struct ctx *c)
{
    if (!authorize(c, NULL) || !bus_ok(c))
        return;
    json_t *a = json_object_get(c->body, "TargetArn");
    if (!json_is_string(a) || !*json_string_value(a)) {
        api_target_error(c->req, 400, "ValidationException",
                         "1 validation error detected: Value null at 'targetArn' failed to "
                         "satisfy constraint: Member must not be null");
        return;
    }
    int64_t limit;
    const char *after;
    if (!paging(c, &limit, &after))
        return;
    const char *arn = json_string_value(a);
    json_t *names = json_array();
    const struct nb_rule *last = NULL;
    bool more = false;
    for (struct nb_rule *r = scheduler_rules(c->d)->head; r; r = r->next) {
        if (strcmp(r->name, after) <= 0)
            continue;
        bool hit = false;
        for (size_t i = 0; i < r->n_targets && !hit; i++)
            hit = !strcmp(r->targets[i].arn, arn);
        if (!hit)
            continue;
        if ((int64_t)json_array_size(names) == limit) {
            more = true;
            break;
        }
        json_array_append_new(names, json_string(r->name));
        last = r;
    }
    json_t *o = json_pack("{s:o}", "RuleNames", names);
    if (more && last)
        json_object_set_new(o, "NextToken", json_sprintf("nb1.%s", last->name));
    api_target_json(c->req, o);
}

static void enable_rule(struct ctx *c)
{
    set_state(c, true);
}

static void disable_rule(struct ctx *c)
{
    set_state(c, false);
}

static const struct {
    const char *op;
    void (*fn)(struct ctx *c);
} ops[] = {
    {"PutRule", put_rule},
    {"DescribeRule", describe_rule},
    {"ListRules", list_rules},
    {"DeleteRule", delete_rule},
    {"EnableRule", enable_rule},
    {"DisableRule", disable_rule},
    {"PutTargets", put_targets},
    {"RemoveTargets", remove_targets},
    {"ListTargetsByRule", list_targets},
    {"ListRuleNamesByTarget", list_rule_names_by_target},
};

void api_events_handle(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    const char *op = route_param(m, "Operation");
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
        if (strcmp(op, ops[i].op))
            continue;
        json_error_t je;
        json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, &je) : json_object();
        if (!json_is_object(body)) {
            json_decref(body);
            api_target_error(req, 400, "SerializationException",
                             "the request body is not a JSON object");
            return;
        }
        struct ctx c = {d, req, m, body, ops[i].op};
        ops[i].fn(&c);
        json_decref(body);
        return;
    }
    api_target_error(req, 400, "UnknownOperationException",
                     "nimbus does not implement EventBridge operation %s", op);
}
