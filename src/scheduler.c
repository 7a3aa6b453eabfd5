/*
 * scheduler.c - the timer that fires schedule rules, and the start-up catch-up (see scheduler.h
 * for the exactly-once argument).
 *
 * The timer is armed for min over enabled rules with targets of schedule_next(rule, now); when it
 * fires, each target of each enabled rule fires at most once, for the latest tick t with
 * max(target.last, target.added, rule.since) < t <= now (more than one such tick means the loop
 * was late: the others are counted as skipped, never replayed). A target's last tick moves in
 * memory when its event is submitted, and on disk with the event's commit; a tick passed over on
 * purpose (skipped at start with schedule_catch_up = skip, or due while the target's function
 * does not exist) moves it in memory and is written alone to the same group commit
 * (async_record_tick), so no restart fires a tick that was decided not to fire. A tick whose
 * event the asynchronous queue refused, or whose commit failed, is recorded nowhere: it counts as
 * missed at the next start. Loop thread only.
 */
#include "scheduler.h"

#include <errno.h>
#include <openssl/sha.h>
#include <time.h>

#include "async.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "rules.h"
#include "store.h"

#define MISSED_MAX 1000

struct nb_scheduler {
    struct nb_daemon *d;
    struct nb_rules rules;
    uv_timer_t timer;
    bool timer_on, stopping;
    int64_t due_s; /* the tick the timer is armed for; 0 = not armed */
    struct {
        uint64_t wakeups, fired, skipped, failed, missing_function;
    } n;
};

struct nb_rules *scheduler_rules(struct nb_daemon *d)
{
    return &d->sched->rules;
}

int64_t scheduler_now_ms(struct nb_daemon *d)
{
    return (int64_t)now_ms() + d->cfg.schedule_clock_offset_s * 1000;
}

int64_t scheduler_now_s(struct nb_daemon *d)
{
    int64_t ms = scheduler_now_ms(d);
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

void scheduler_event_id(const char *rule_arn, const char *target, int64_t tick_s, char out[37])
{
    _cleanup_free_ char *key = xasprintf("%s\n%s\n%lld", rule_arn, target, (long long)tick_s);
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), h);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x50); /* shaped like a name-based (v5) uuid */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    char hex[33];
    hex_encode(h, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

char *scheduler_event_json(const char *region, const char *account, const char *rule_arn,
                           const char *event_id, int64_t tick_s)
{
    time_t t = (time_t)tick_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:{}}", "version", "0", "id",
                  event_id, "detail-type", "Scheduled Event", "source", "aws.events", "account",
                  account, "time", when, "region", region, "resources", rule_arn, "detail");
    if (!o)
        BUG("json_pack failed");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        BUG("json_dumps failed");
    return s;
}

/* Target t of r is done with every tick up to tick_s without firing it: in memory now, on disk
 * with the next group commit. */
static void pass_over(struct nb_daemon *d, struct nb_rule *r, struct nb_rule_target *t,
                      int64_t tick_s)
{
    t->last_s = tick_s;
    struct nb_err err = {0};
    if (async_record_tick(d, r->name, t->id, tick_s, &err) < 0)
        log_err("schedule tick mark not recorded rule=%s target=%s tick=%lld err=\"%s\"", r->name,
                t->id, (long long)tick_s, err.msg);
}

/* Submits target t's event for tick_s; moves its last tick in memory. */
static void fire(struct nb_scheduler *s, struct nb_rule *r, struct nb_rule_target *t,
                 int64_t tick_s)
{
    struct nb_daemon *d = s->d;
    if (!registry_find(d, t->function)) {
        s->n.missing_function++;
        log_warn("schedule target function not found rule=%s target=%s function=%s tick=%lld",
                 r->name, t->id, t->function, (long long)tick_s);
        pass_over(d, r, t, tick_s);
        return;
    }
    t->last_s = tick_s;
    _cleanup_free_ char *arn = rules_arn(d->cfg.region, d->cfg.account_id, r->name);
    struct nb_async_origin o = {.tick_rule = r->name, .tick_target = t->id, .tick_s = tick_s};
    scheduler_event_id(arn, t->id, tick_s, o.request_id);
    char *payload = t->input ? xstrdup(t->input)
                             : scheduler_event_json(d->cfg.region, d->cfg.account_id, arn,
                                                    o.request_id, tick_s);
    struct nb_err err = {0};
    if (async_submit(d, t->function, t->qualifier, payload, strlen(payload), &o, &err) < 0) {
        s->n.failed++;
        log_err("schedule fire failed rule=%s target=%s tick=%lld err=\"%s\"", r->name, t->id,
                (long long)tick_s, err.msg);
        return;
    }
    s->n.fired++;
    log_info("schedule fired rule=%s target=%s function=%s tick=%lld request_id=%s", r->name, t->id,
             t->function, (long long)tick_s, o.request_id);
}

uint32_t scheduler_due(const struct nb_rule *r, const struct nb_rule_target *t, int64_t now_s,
                       int64_t *latest)
{
    int64_t from = r->since_s;
    if (t->added_s > from)
        from = t->added_s;
    if (t->last_s > from)
        from = t->last_s;
    uint32_t count = 0;
    schedule_missed(&r->sched, from, now_s, MISSED_MAX, &count, latest);
    return count;
}

/* Fires every due target; at start-up with skip, marks them fired without firing. */
static void run(struct nb_scheduler *s, bool startup)
{
    struct nb_daemon *d = s->d;
    int64_t now_s = scheduler_now_s(d);
    bool skip = startup && !strcmp(d->cfg.schedule_catch_up, "skip");
    for (struct nb_rule *r = s->rules.head; r; r = r->next) {
        if (!r->enabled)
            continue;
        for (size_t i = 0; i < r->n_targets; i++) {
            struct nb_rule_target *t = &r->targets[i];
            int64_t latest = 0;
            uint32_t count = scheduler_due(r, t, now_s, &latest);
            if (!count)
                continue;
            if (skip) {
                pass_over(d, r, t, latest);
                s->n.skipped += count;
                log_info("schedule ticks skipped rule=%s target=%s missed=%u latest=%lld "
                         "(schedule_catch_up = skip)",
                         r->name, t->id, count, (long long)latest);
                continue;
            }
            if (count > 1) {
                s->n.skipped += count - 1;
                log_warn("schedule ticks missed rule=%s target=%s missed=%u firing_latest=%lld",
                         r->name, t->id, count, (long long)latest);
            }
            fire(s, r, t, latest);
        }
    }
}

static void on_timer(uv_timer_t *h)
{
    struct nb_scheduler *s = h->data;
    s->n.wakeups++;
    s->due_s = 0;
    if (!s->d->draining)
        run(s, false);
    scheduler_rearm(s->d);
}

void scheduler_rearm(struct nb_daemon *d)
{
    struct nb_scheduler *s = d->sched;
    if (!s || s->stopping)
        return;
    int64_t now_s = scheduler_now_s(d), best = 0;
    for (struct nb_rule *r = s->rules.head; r; r = r->next) {
        if (!r->enabled || !r->n_targets)
            continue;
        int64_t next;
        if (schedule_next(&r->sched, now_s, &next) == 0 && (!best || next < best))
            best = next;
    }
    if (best == s->due_s)
        return;
    s->due_s = best;
    if (!best) {
        uv_timer_stop(&s->timer);
        return;
    }
    int64_t wait = best * 1000 - scheduler_now_ms(d);
    uv_timer_start(&s->timer, on_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

static int load_rule(void *data, const char *name, const char *doc)
{
    struct nb_scheduler *s = data;
    struct nb_err err = {0};
    struct nb_rule *r = rule_from_record(name, doc, &err);
    if (!r) {
        log_err("rule not loaded name=%s err=\"%s\"", name, err.msg);
        return 0;
    }
    rules_insert(&s->rules, r);
    return 0;
}

static int load_tick(void *data, const char *rule, const char *target, int64_t tick_s)
{
    struct nb_scheduler *s = data;
    struct nb_rule *r = rules_find(&s->rules, rule);
    struct nb_rule_target *t = r ? rule_target_find(r, target) : NULL;
    if (t && tick_s > t->last_s)
        t->last_s = tick_s;
    return 0;
}

int scheduler_start(struct nb_daemon *d, struct nb_err *err)
{
    struct nb_scheduler *s = xcalloc(1, sizeof(*s));
    s->d = d;
    d->sched = s;
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    s->timer_on = true;
    int rc = store_rule_each(d->store, load_rule, s, err);
    if (rc == 0)
        rc = store_tick_each(d->store, load_tick, s, err);
    if (rc < 0)
        return err_prefix(err, "cannot load schedule rules");
    if (s->rules.n)
        log_info("schedule rules loaded rules=%zu catch_up=%s", s->rules.n,
                 d->cfg.schedule_catch_up);
    run(s, true);
    scheduler_rearm(d);
    return 0;
}

void scheduler_stop(struct nb_daemon *d)
{
    struct nb_scheduler *s = d->sched;
    if (!s || s->stopping)
        return;
    s->stopping = true;
    if (s->timer_on)
        uv_close((uv_handle_t *)&s->timer, NULL);
    s->timer_on = false;
}

void scheduler_free(struct nb_daemon *d)
{
    struct nb_scheduler *s = d->sched;
    if (!s)
        return;
    rules_release(&s->rules);
    free(s);
    d->sched = NULL;
}

void scheduler_metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    struct nb_scheduler *s = d->sched;
    if (!s)
        return;
    size_t enabled = 0;
    for (struct nb_rule *r = s->rules.head; r; r = r->next)
        enabled += r->enabled;
    metrics_gauge(b, "nimbus_schedule_rules", "Schedule rules (EventBridge).", (double)s->rules.n);
    metrics_gauge(b, "nimbus_schedule_rules_enabled", "Enabled schedule rules.", (double)enabled);
    metrics_counter(b, "nimbus_schedule_wakeups_total", "Times the schedule timer fired.",
                    s->n.wakeups);
    metrics_counter(b, "nimbus_schedule_fired_total",
                    "Scheduled events submitted (one per target and tick).", s->n.fired);
    metrics_counter(b, "nimbus_schedule_skipped_total",
                    "Ticks not fired: missed beyond the one caught up, or skipped at start.",
                    s->n.skipped);
    metrics_counter(b, "nimbus_schedule_failed_total",
                    "Scheduled events the asynchronous queue refused.", s->n.failed);
    metrics_counter(b, "nimbus_schedule_missing_function_total",
                    "Ticks whose target function does not exist (logged, not retried).",
                    s->n.missing_function);
}
