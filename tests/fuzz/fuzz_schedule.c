/*
 * fuzz_schedule.c - libFuzzer target for schedule.c: the bytes as a ScheduleExpression
 * (schedule_parse), and for an accepted one, ticks around a few fixed instants and one taken from
 * the input (schedule_next, schedule_prev, schedule_missed).
 *
 * Invariants checked: no crash, no hang (every walk is bounded), a refusal is -EINVAL with a
 * message; next is strictly after its argument and prev strictly before; cron ticks are whole
 * minutes in 1970-2199; no tick lies between an instant and its next tick (prev(next(t)) <= t);
 * next(prev(t)) >= t when it exists; schedule_missed agrees with schedule_prev.
 */
#include <errno.h>

#include "schedule.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tick(const struct nb_schedule *s, int64_t t)
{
    if (s->kind == SCHEDULE_CRON &&
        (t % 60 != 0 || t < 0 ||
         t >= schedule_days_from_civil(SCHEDULE_YEAR_MAX + 1, 1, 1) * 86400))
        BUG("cron tick %lld is not a minute of 1970-2199", (long long)t);
}

static void check_around(const struct nb_schedule *s, int64_t at)
{
    int64_t n, p, x;
    if (schedule_next(s, at, &n) == 0) {
        check_tick(s, n);
        if (n <= at && at < SCHEDULE_TIME_LIMIT)
            BUG("next %lld is not after %lld", (long long)n, (long long)at);
        if (schedule_prev(s, n, &x) == 0 && x > at && at >= -SCHEDULE_TIME_LIMIT)
            BUG("tick %lld lies between %lld and its next %lld", (long long)x, (long long)at,
                (long long)n);
        int64_t n2;
        if (schedule_next(s, n, &n2) == 0 && n2 <= n)
            BUG("ticks do not increase: %lld then %lld", (long long)n, (long long)n2);
    }
    if (schedule_prev(s, at, &p) == 0) {
        check_tick(s, p);
        if (p >= at && at > -SCHEDULE_TIME_LIMIT)
            BUG("prev %lld is not before %lld", (long long)p, (long long)at);
        if (schedule_next(s, p, &x) == 0 && x < at && at <= SCHEDULE_TIME_LIMIT)
            BUG("next of prev %lld does not reach %lld", (long long)p, (long long)at);
    }
    uint32_t count = 0;
    int64_t last = 0;
    if (at < -SCHEDULE_TIME_LIMIT)
        at = -SCHEDULE_TIME_LIMIT;
    if (at > SCHEDULE_TIME_LIMIT)
        at = SCHEDULE_TIME_LIMIT;
    int64_t to = at + 40 * 86400;
    schedule_missed(s, at, to, 64, &count, &last);
    if (count > 0) {
        if (last <= at || last > to || schedule_prev(s, to + 1, &x) != 0 || x != last)
            BUG("missed in (%lld, %lld]: last %lld disagrees with prev", (long long)at,
                (long long)to, (long long)last);
    } else if (schedule_next(s, at, &x) == 0 && x <= to) {
        BUG("tick %lld in (%lld, %lld] not counted as missed", (long long)x, (long long)at,
            (long long)to);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = xstrndup((const char *)data, size);
    struct nb_schedule sch;
    struct nb_err err = {0};
    int r = schedule_parse(s, 1764000000, &sch, &err);
    if (r != 0) {
        if (r != -EINVAL || err.code != EINVAL || !err.msg[0])
            BUG("refusal with r=%d code=%d msg='%s'", r, err.code, err.msg);
        free(s);
        return 0;
    }
    uint64_t from_input = 0;
    for (size_t i = 0; i < size; i++)
        from_input = from_input * 131 + data[i];
    static const int64_t fixed[] = {
        0,
        -1,
        1764000000,
        1795000000,
        1795000013,
        7258118399 /* 2199-12-31 23:59:59 */,
        4102444800 /* 2100-01-01 */,
        INT64_MIN,
        INT64_MAX,
    };
    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        check_around(&sch, fixed[i]);
    check_around(&sch, (int64_t)(from_input % 8000000000) - 100000000);
    free(s);
    return 0;
}
