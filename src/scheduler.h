/*
 * scheduler.h - fires EventBridge schedule rules (rules.h): one one-shot uv timer armed for the
 * earliest next tick over every enabled rule with targets (no polling: an idle daemon wakes only
 * at real ticks), and on each tick one asynchronous invocation per target (async_submit) with the
 * Scheduled Event (LAMBDA.md §4.4) or the target's constant Input.
 *
 * Exactly one fire per (rule, target, tick): the event and the target's last fired tick are
 * committed in one transaction (store.h, struct nb_store_event's tick fields), and a target never
 * fires a tick at or before its last one. The event id and the invocation's request id are
 * derived from (rule ARN, target id, tick), so a duplicate delivery is recognisable. Ticks
 * missed while the daemon was down (or the loop was late) fire once, for the latest of them
 * (schedule_catch_up = one), or not at all at start (skip); a tick skipped that way, or due while
 * the target's function does not exist, is recorded as the target's last tick (without an event,
 * in the same kind of transaction), so a later restart does not fire it either.
 * docs/design/schedules.md.
 *
 * Ownership: struct nb_scheduler hangs off the daemon (d->sched) and owns the rule table; loop
 * thread only.
 */
#ifndef NIMBUS_SCHEDULER_H
#define NIMBUS_SCHEDULER_H

#include <stdint.h>

#include "err.h"

struct nb_daemon;
struct nb_buf;
struct nb_rules;

/* Loads rules and their last ticks (blocking: start-up only, after async_start), fires the
 * catch-up ticks and arms the timer. */
int scheduler_start(struct nb_daemon *d, struct nb_err *err);
/* Shutdown: no more fires; closes the timer. */
void scheduler_stop(struct nb_daemon *d);
/* Frees everything (after the loop ended). */
void scheduler_free(struct nb_daemon *d);
/* The rule table (borrowed; callers that change it call scheduler_rearm). */
struct nb_rules *scheduler_rules(struct nb_daemon *d);
/* Re-arms the timer after the rule table changed. */
void scheduler_rearm(struct nb_daemon *d);
/* The scheduler's clock: wall clock + schedule_clock_offset_s, in ms and s. */
int64_t scheduler_now_ms(struct nb_daemon *d);
int64_t scheduler_now_s(struct nb_daemon *d);
/* The Scheduled Event of rule_arn's tick (a pure function, exported for tests): malloc'd JSON. */
char *scheduler_event_json(const char *region, const char *account, const char *rule_arn,
                           const char *event_id, int64_t tick_s);
/* The uuid-shaped id of (rule_arn, target, tick): hex of SHA-256, 36 chars + NUL in out. */
void scheduler_event_id(const char *rule_arn, const char *target, int64_t tick_s, char out[37]);
struct nb_rule;
struct nb_rule_target;
/* The ticks due for target t of rule r at now_s (a pure function of its arguments): those after
 * max(t->last_s, t->added_s, r->since_s) and at or before now_s. Returns how many (saturated at
 * 1000) and sets *latest to the latest of them when there is one. Ignores r->enabled. */
uint32_t scheduler_due(const struct nb_rule *r, const struct nb_rule_target *t, int64_t now_s,
                       int64_t *latest);
/* Appends the nimbus_schedule_* families to b. */
void scheduler_metrics_render(struct nb_daemon *d, struct nb_buf *b);

#endif
