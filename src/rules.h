/*
 * rules.h - EventBridge schedule rules and their targets: the in-memory table (loop thread only),
 * validation with EventBridge's rules and messages, the stored record, and the JSON EventBridge
 * answers (Rule, Target). The API is api_events.c; firing them is scheduler.c.
 *
 * Invariants: rules are kept sorted by name (bytewise; ListRules pages by name); a rule's
 * ScheduleExpression always parses (sched is its parse with anchor since_s); targets are Lambda
 * function ARNs of this region and account, at most RULES_TARGETS_MAX per rule, ids unique within
 * the rule. Times are UTC epoch seconds of the scheduler's clock (scheduler_now_s).
 */
#ifndef NIMBUS_RULES_H
#define NIMBUS_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "schedule.h"

#define RULES_NAME_MAX 64
#define RULES_TARGETS_MAX 5 /* EventBridge's targets per rule */
#define RULES_PUT_TARGETS_MAX 10
#define RULES_DESCRIPTION_MAX 512
#define RULES_INPUT_MAX 8192

struct nb_rule_target {
    char *id, *arn;
    char *input;     /* Input: constant JSON text, or NULL (the event itself) */
    char *function;  /* from arn */
    char *qualifier; /* from arn, or NULL */
    int64_t added_s; /* when it was put: earlier ticks never fire for it */
    int64_t last_s;  /* the last tick fired or passed over (0 = none); store's rule_ticks */
};

struct nb_rule {
    char *name, *expr, *description; /* description NULL = none */
    bool enabled;
    int64_t created_s;
    int64_t since_s; /* creation, last enable or expression change, on a whole minute: ticks at or
                        before it never fire; a rate's anchor */
    struct nb_schedule sched;
    struct nb_rule_target *targets;
    size_t n_targets;
    struct nb_rule *next;
};

struct nb_rules {
    struct nb_rule *head;
    size_t n;
};

/* The names EventBridge accepts: 1-64 of [.-_A-Za-z0-9] (rule names and target ids). */
bool rules_name_valid(const char *s);
/* arn:aws:events:REGION:ACCOUNT:rule/NAME (malloc'd). */
char *rules_arn(const char *region, const char *account, const char *name);

struct nb_rule *rules_find(struct nb_rules *t, const char *name);
/* Inserts r (consumed) in name order; r->name must not be present. */
void rules_insert(struct nb_rules *t, struct nb_rule *r);
/* Unlinks and frees the rule called name (no-op if absent). */
void rules_remove(struct nb_rules *t, const char *name);
void rules_release(struct nb_rules *t);
void rule_free(struct nb_rule *r);
struct nb_rule_target *rule_target_find(struct nb_rule *r, const char *id);
/* Removes target id of r (no-op if absent). */
void rule_target_remove(struct nb_rule *r, const char *id);

/*
 * PutRule's request for the rule cur (NULL = a new rule) at time now_s: validates body and fills
 * *out (a new rule, targets copied from cur; free with rule_free). A new or re-enabled rule, or a
 * changed expression, starts at now_s truncated to the minute (since_s). On error returns -EINVAL
 * with EventBridge's message in err (ValidationException).
 */
int rules_parse_put(json_t *body, const struct nb_rule *cur, int64_t now_s, struct nb_rule **out,
                    struct nb_err *err);
/*
 * One entry of PutTargets' Targets for a rule of region/account at now_s: fills *out (fields
 * malloc'd; release with rule_target_release). On a refused entry returns -EINVAL with *code the
 * FailedEntries ErrorCode and err the message; -E2BIG for a request-level ValidationException.
 */
int rules_parse_target(json_t *entry, const char *region, const char *account, int64_t now_s,
                       struct nb_rule_target *out, const char **code, struct nb_err *err);
void rule_target_release(struct nb_rule_target *t);

/* The stored record of r (targets included; last_s is not in it). malloc'd JSON text. */
char *rule_record(const struct nb_rule *r);
/* A rule from its record; NULL (with err) when unreadable. */
struct nb_rule *rule_from_record(const char *name, const char *doc, struct nb_err *err);

/* EventBridge's Rule (DescribeRule's output and ListRules' entries; describe adds CreatedBy).
 * New reference. */
json_t *rule_json(const struct nb_rule *r, const char *region, const char *account, bool describe);
/* EventBridge's Target. New reference. */
json_t *rule_target_json(const struct nb_rule_target *t);

#endif
