/*
 * test_schedule.c - unit tests of schedule.c: EventBridge schedule expressions and their ticks.
 *
 * - every example of the EventBridge user guide (cron table, put-rule examples, rate examples) and
 *   the expressions that LocalStack's AWS-validated tests show real EventBridge accepting or
 *   refusing, with their next ticks from a fixed "now";
 * - edge cases: leap years, L in February, 29 February, year boundaries, W across month edges,
 *   #5 in months without a fifth weekday, the end of the year field, wrapping ranges;
 * - rate anchors, schedule_prev and schedule_missed (catch-up after downtime);
 * - the calendar helpers against the C library's timegm/gmtime_r over 1970-2200;
 * - a brute-force cross-check: random valid expressions, generated together with the sets they
 *   mean, against a naive day-by-day, minute-by-minute reference built on gmtime_r, over
 *   2020-2044.
 *
 * Pure: times are arguments (a fake clock), nothing reads the real one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "schedule.h"
#include "util.h"

#define NONE (-1) /* expected: -ENOENT */

/* UTC epoch seconds of a civil minute, from the C library (independent of schedule.c). */
static int64_t T(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static const char *fmt_t(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, cap, "%lld", (long long)t);
        return buf;
    }
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S %a", &tm);
    return buf;
}

/* "Now" for the examples: Thursday 2026-11-26 16:42:53 UTC. */
static int64_t now_s(void)
{
    return T(2026, 11, 26, 16, 42) + 53;
}

static const int64_t anchor = 1764000000; /* 2025-11-24 16:00:00 UTC, a rule's creation time */

static struct nb_schedule parse_ok(const char *expr)
{
    struct nb_schedule s;
    struct nb_err err = {0};
    int r = schedule_parse(expr, anchor, &s, &err);
    if (r != 0)
        fail_msg("'%s' refused: %s", expr, err.msg);
    assert_int_equal(err.code, 0);
    return s;
}

static void check_next(const char *expr, int64_t after, int64_t want)
{
    struct nb_schedule s = parse_ok(expr);
    int64_t got = 0;
    int r = schedule_next(&s, after, &got);
    char a[64], w[64], g[64];
    if (want == NONE) {
        if (r != -ENOENT)
            fail_msg("%s after %s: want none, got r=%d %s", expr, fmt_t(after, a, sizeof(a)), r,
                     fmt_t(got, g, sizeof(g)));
        return;
    }
    if (r != 0 || got != want)
        fail_msg("%s after %s: want %s, got r=%d %s", expr, fmt_t(after, a, sizeof(a)),
                 fmt_t(want, w, sizeof(w)), r, fmt_t(got, g, sizeof(g)));
}

static void check_prev(const char *expr, int64_t before, int64_t want)
{
    struct nb_schedule s = parse_ok(expr);
    int64_t got = 0;
    int r = schedule_prev(&s, before, &got);
    char b[64], w[64], g[64];
    if (want == NONE) {
        if (r != -ENOENT)
            fail_msg("%s before %s: want none, got r=%d %s", expr, fmt_t(before, b, sizeof(b)), r,
                     fmt_t(got, g, sizeof(g)));
        return;
    }
    if (r != 0 || got != want)
        fail_msg("%s before %s: want %s, got r=%d %s", expr, fmt_t(before, b, sizeof(b)),
                 fmt_t(want, w, sizeof(w)), r, fmt_t(got, g, sizeof(g)));
}

/* Checks the sequence of ticks after `after`: want[] ends with 0. */
static void check_seq(const char *expr, int64_t after, const int64_t *want)
{
    int64_t t = after;
    for (size_t i = 0; want[i]; i++) {
        check_next(expr, t, want[i]);
        check_prev(expr, want[i] + 1, want[i]);
        t = want[i];
    }
}

static void check_refused(const char *expr, const char *needle)
{
    struct nb_schedule s;
    struct nb_err err = {0};
    int r = schedule_parse(expr, anchor, &s, &err);
    if (r != -EINVAL)
        fail_msg("'%s' accepted (r=%d)", expr ? expr : "(null)", r);
    assert_int_equal(err.code, EINVAL);
    if (needle && !strstr(err.msg, needle))
        fail_msg("'%s': message '%s' lacks '%s'", expr, err.msg, needle);
}

/* ---------------------------------------------------------------------------------------------
 * The user guide's examples
 */

static void test_docs_cron_table(void **state)
{
    int64_t now = now_s(); /* Thursday 16:42:53 */
    /* Run at 10:00 am (UTC+0) every day */
    check_next("cron(0 10 * * ? *)", now, T(2026, 11, 27, 10, 0));
    /* Run at 12:15 pm (UTC+0) every day */
    check_next("cron(15 12 * * ? *)", now, T(2026, 11, 27, 12, 15));
    /* Run at 6:00 pm (UTC+0) every Monday through Friday */
    check_seq(
        "cron(0 18 ? * MON-FRI *)", now,
        (int64_t[]){T(2026, 11, 26, 18, 0), T(2026, 11, 27, 18, 0), T(2026, 11, 30, 18, 0), 0});
    /* Run at 8:00 am (UTC+0) every 1st day of the month */
    check_seq("cron(0 8 1 * ? *)", now,
              (int64_t[]){T(2026, 12, 1, 8, 0), T(2027, 1, 1, 8, 0), T(2027, 2, 1, 8, 0), 0});
    /* Run every 15 minutes */
    check_seq("cron(0/15 * * * ? *)", now,
              (int64_t[]){T(2026, 11, 26, 16, 45), T(2026, 11, 26, 17, 0), 0});
    /* Run every 10 minutes Monday through Friday */
    check_next("cron(0/10 * ? * MON-FRI *)", now, T(2026, 11, 26, 16, 50));
    check_next("cron(0/10 * ? * MON-FRI *)", T(2026, 11, 27, 23, 50), T(2026, 11, 30, 0, 0));
    /* Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC+0) */
    check_seq(
        "cron(0/5 8-17 ? * MON-FRI *)", T(2026, 11, 27, 17, 50),
        (int64_t[]){T(2026, 11, 27, 17, 55), T(2026, 11, 30, 8, 0), T(2026, 11, 30, 8, 5), 0});
    /* Run every 30 minutes Monday through Friday between 10:00 pm on the starting day to 2:00 am
     * on the following day: hours 20-2 wrap past midnight; the day-of-week applies to each day,
     * so Saturday 00:00-02:30 does not fire. */
    check_seq("cron(0/30 20-2 ? * MON-FRI *)", now,
              (int64_t[]){T(2026, 11, 26, 20, 0), T(2026, 11, 26, 20, 30), 0});
    check_seq("cron(0/30 20-2 ? * MON-FRI *)", T(2026, 11, 27, 23, 0),
              (int64_t[]){T(2026, 11, 27, 23, 30), T(2026, 11, 30, 0, 0), T(2026, 11, 30, 0, 30),
                          T(2026, 11, 30, 1, 0), T(2026, 11, 30, 1, 30), T(2026, 11, 30, 2, 0),
                          T(2026, 11, 30, 2, 30), T(2026, 11, 30, 20, 0), 0});
}

static void test_docs_put_rule_examples(void **state)
{
    int64_t now = now_s();
    /* every day at 12:00pm UTC+0 */
    check_next("cron(0 12 * * ? *)", now, T(2026, 11, 27, 12, 0));
    /* every day, at 2:05pm and 2:35pm UTC+0 */
    check_seq(
        "cron(5,35 14 * * ? *)", now,
        (int64_t[]){T(2026, 11, 27, 14, 5), T(2026, 11, 27, 14, 35), T(2026, 11, 28, 14, 5), 0});
    /* 10:15am UTC+0 on the last Friday of each month during the years 2019 to 2022 */
    const char *last_friday = "cron(15 10 ? * 6L 2019-2022)";
    check_next(last_friday, now, NONE); /* all in the past */
    check_seq(
        last_friday, T(2018, 6, 1, 0, 0),
        (int64_t[]){T(2019, 1, 25, 10, 15), T(2019, 2, 22, 10, 15), T(2019, 3, 29, 10, 15), 0});
    check_prev(last_friday, now, T(2022, 12, 30, 10, 15));
    check_prev(last_friday, T(2019, 1, 25, 10, 15), NONE);
}

static void test_docs_rate_examples(void **state)
{
    static const struct {
        const char *expr;
        int64_t period;
    } rates[] = {{"rate(1 minute)", 60},  {"rate(5 minutes)", 300},  {"rate(1 hour)", 3600},
                 {"rate(1 day)", 86400},  {"rate(10 minutes)", 600}, {"rate(2 hours)", 7200},
                 {"rate(7 days)", 604800}};
    for (size_t i = 0; i < ARRAY_SIZE(rates); i++) {
        const char *e = rates[i].expr;
        int64_t p = rates[i].period;
        struct nb_schedule s = parse_ok(e);
        assert_int_equal(s.kind, SCHEDULE_RATE);
        assert_int_equal(s.period_s, p);
        assert_int_equal(s.anchor_s, anchor);
        /* The first tick is one period after the anchor; the anchor itself does not fire. */
        check_next(e, anchor - 86400 * 365, anchor + p);
        check_next(e, anchor, anchor + p);
        check_next(e, anchor + p - 1, anchor + p);
        check_next(e, anchor + p, anchor + 2 * p);
        check_next(e, anchor + 1000 * p + 1, anchor + 1001 * p);
        check_prev(e, anchor + p, NONE);
        check_prev(e, anchor + p + 1, anchor + p);
        check_prev(e, anchor + 1000 * p, anchor + 999 * p);
    }
}

/* The ones the guide names as invalid, and those LocalStack's tests (marked validated against
 * AWS) show EventBridge refusing with "Parameter ScheduleExpression is not valid.". */
static void test_refused_rates(void **state)
{
    check_refused("rate(1 hours)", "takes the unit 'hour'");
    check_refused("rate(5 hour)", "takes the unit 'hours'");
    check_refused("rate(1 minutes)", "'minute'");
    check_refused("rate(1 days)", "'day'");
    check_refused("rate(10 minute)", "'minutes'");
    check_refused("rate(10 day)", "'days'");
    check_refused("rate(10 seconds)", "unit 'seconds'");
    check_refused("rate(30 second)", "unit 'second'");
    check_refused("rate(10 years)", "unit 'years'");
    check_refused("rate()", "positive whole number");
    check_refused("rate(10)", "positive whole number");
    check_refused("rate(10 minutess)", "unit");
    check_refused("rate(foo minutes)", "positive whole number");
    check_refused("rate(0 minutes)", "not a number 1-");
    check_refused("rate(0 minute)", "not a number 1-");
    check_refused("rate(-10 minutes)", "positive whole number");
    check_refused("rate(1.5 hours)", "positive whole number");
    check_refused("rate(10 MINUTES)", "unit 'MINUTES'");
    check_refused("rate( 10 minutes )", "positive whole number");
    check_refused("rate(10 minutes )", "unit 'minutes '");
    check_refused(" rate(10 minutes)", "neither");
    check_refused("rate(10 minutes) ", "neither");
    check_refused("RATE(10 minutes)", "neither");
    check_refused("rate(10 minutes", "neither");
    check_refused("rate(99999999999 minutes)", "not a number 1-");
    check_refused("rate(2147483648 days)", "not a number 1-");
    check_refused("at(2026-11-26T16:42:53)", "neither"); /* EventBridge Scheduler only */
    /* the largest accepted value */
    struct nb_schedule s = parse_ok("rate(2147483647 days)");
    assert_int_equal(s.period_s, (int64_t)INT32_MAX * 86400);
}

static void test_refused_cron(void **state)
{
    /* validated against AWS by LocalStack, or reported from AWS in issues */
    check_refused("cron(0 1 * * * *)", "must be '?'");
    check_refused("cron(7 20 * * 1-7 *)", "must be '?'");
    check_refused("cron(7 20 * * NOT *)", "'NOT'");
    check_refused("cron(INVALID)", "6 fields");
    check_refused("cron(0 dummy ? * MON-FRI *)", "hours value 'dummy'");
    check_refused("cron(71 8 1 * ? *)", "minutes value '71' is out of range 0-59");
    check_refused("cron(*/60 * * * ? *)", "increment '60'");
    check_refused("cron(15 12 ? * -1 *)", "empty value");
    check_refused("cron(0/5, 9-18, ?, *, MON-FRI, *)", "empty list element");
    check_refused("cron(*/1 * * * *)", "not 5");
    check_refused("cron(0/10 * ? * *)", "not 5");
    /* the guide: only one '#' expression */
    check_refused("cron(0 10 ? * 3#1,6#3 *)", "only one '#'");
    /* neither or both of the day fields */
    check_refused("cron(0 10 ? * ? *)", "cannot both be '?'");
    check_refused("cron(0 10 1 * MON *)", "must be '?'");
    check_refused("cron(0 10 L * L *)", "must be '?'");
    /* values out of range */
    check_refused("cron(0 24 * * ? *)", "hours value '24'");
    check_refused("cron(0 0 0 * ? *)", "day-of-month value '0'");
    check_refused("cron(0 0 32 * ? *)", "day-of-month value '32'");
    check_refused("cron(0 0 ? 0 MON *)", "month value '0'");
    check_refused("cron(0 0 ? 13 MON *)", "month value '13'");
    check_refused("cron(0 0 ? * 0 *)", "day-of-week value '0'");
    check_refused("cron(0 0 ? * 8 *)", "day-of-week value '8'");
    check_refused("cron(0 0 * * ? 1969)", "year value '1969' is out of range 1970-2199");
    check_refused("cron(0 0 * * ? 2200)", "year value '2200'");
    check_refused("cron(00000 0 * * ? *)", "minutes value '00000'");
    check_refused("cron(0 0 * JANUARY ? *)", "name JAN-DEC");
    check_refused("cron(0 0 ? * MONDAY *)", "name SUN-SAT");
    check_refused("cron(0 0 ? * 2-FRIDAY *)", "'FRIDAY'");
    check_refused("cron(0 0 MON * ? *)", "'MON'"); /* names only in month and day-of-week */
    check_refused("cron(JAN 0 * * ? *)", "'JAN'");
    /* increments */
    check_refused("cron(0/0 * * * ? *)", "increment '0'");
    check_refused("cron(0/ * * * ? *)", "increment ''");
    check_refused("cron(0/x * * * ? *)", "increment 'x'");
    check_refused("cron(0 0/24 * * ? *)", "increment '24'");
    check_refused("cron(0 0 1/32 * ? *)", "increment '32'");
    check_refused("cron(0 0 1 1/13 ? *)", "increment '13'");
    check_refused("cron(0 0 1 * ? */230)", "increment '230'");
    check_refused("cron(0 0 ? * 1/2 *)", "day-of-week does not take '/'");
    check_refused("cron(0 0 ? * */2 *)", "day-of-week does not take '/'");
    check_refused("cron(0/5/5 * * * ? *)", "increment '5/5'");
    /* lists, ranges */
    check_refused("cron(0 10 * * ? *,2020)", "'*' cannot be part of a list");
    check_refused("cron(*,5 10 * * ? *)", "'*' cannot be part of a list");
    check_refused("cron(1,,2 10 * * ? *)", "empty list element");
    check_refused("cron(1, 10 * * ? *)", "empty list element");
    check_refused("cron(,1 10 * * ? *)", "empty list element");
    check_refused("cron(1-2-3 10 * * ? *)", "'2-3'");
    check_refused("cron(0 0 * * ? 2022-2020)", "year range '2022-2020' runs backwards");
    check_refused("cron(** 10 * * ? *)", "'**'");
    /* the special day forms */
    check_refused("cron(0 10 L-3 * ? *)", "must stand alone");
    check_refused("cron(0 10 1,L * ? *)", "must stand alone");
    check_refused("cron(0 10 15W,20 * ? *)", "must stand alone");
    check_refused("cron(0 10 1-15W * ? *)", "must stand alone");
    check_refused("cron(0 10 W * ? *)", "must stand alone");
    check_refused("cron(0 10 0W * ? *)", "day-of-month value '0'");
    check_refused("cron(0 10 32W * ? *)", "day-of-month value '32'");
    check_refused("cron(0 10 WL * ? *)", "must stand alone");
    check_refused("cron(0 10 ?,1 * ? *)", "must stand alone");
    check_refused("cron(0 10 1,? * MON *)", "must stand alone");
    check_refused("cron(0 10 ? * 2#0 *)", "after '#' must be 1-5");
    check_refused("cron(0 10 ? * 2#6 *)", "after '#' must be 1-5");
    check_refused("cron(0 10 ? * 2# *)", "after '#' must be 1-5");
    check_refused("cron(0 10 ? * 2#12 *)", "after '#' must be 1-5");
    check_refused("cron(0 10 ? * #2 *)", "empty value");
    check_refused("cron(0 10 ? * 8#2 *)", "day-of-week value '8'");
    check_refused("cron(0 10 ? * 1-3#2 *)", "'1-3'");
    check_refused("cron(0 10 ? * 8L *)", "day-of-week value '8'");
    check_refused("cron(0 10 ? * 2L,3 *)", "'2L'");
    check_refused("cron(0 10 ? * 1,? *)", "'?' must stand alone");
    check_refused("cron(0 10 ? * LW *)", "'LW'");
    /* shape */
    check_refused("cron()", "empty");
    check_refused("cron( 0 10 * * ? *)", "start or end with a space");
    check_refused("cron(0 10 * * ? * )", "start or end with a space");
    check_refused("cron(0 10 * * ? * *)", "not 7");
    check_refused("cron(0 10 * * ?)", "not 5");
    check_refused("cron(0\t10 * * ? *)", "control");
    check_refused("CRON(0 10 * * ? *)", "neither");
    check_refused("cron 0 10 * * ? *", "neither");
    check_refused("cron(0 10 * * ? *))", "'*)'");
    check_refused("cron((0 10 * * ? *)", "'(0'");
    check_refused("cron(0 10 * * ? *)x", "neither");
    check_refused("cron(0 10 * * ? \xc3\xa9)", "non-ASCII");
    check_refused("", "empty");
    check_refused(NULL, "empty");
    char big[SCHEDULE_EXPR_MAX + 32];
    memset(big, '1', sizeof(big));
    memcpy(big, "cron(", 5);
    big[sizeof(big) - 2] = ')';
    big[sizeof(big) - 1] = '\0';
    check_refused(big, "longer than 256");
}

static void test_message_shape(void **state)
{
    struct nb_schedule s;
    struct nb_err err = {0};
    assert_int_equal(schedule_parse("cron(71 8 1 * ? *)", 0, &s, &err), -EINVAL);
    assert_string_equal(err.msg, "schedule expression 'cron(71 8 1 * ? *)' is not valid: minutes "
                                 "value '71' is out of range 0-59");
    assert_int_equal(schedule_parse("rate(5 hour)", 0, &s, NULL), -EINVAL);
    assert_int_equal(schedule_parse("cron(0 0 ? * ? *)", 0, &s, NULL), -EINVAL);
    /* the anchor must be a sane time */
    assert_int_equal(schedule_parse("rate(1 day)", SCHEDULE_TIME_LIMIT + 1, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "anchor"));
    assert_int_equal(schedule_parse("cron(0 0 ? * 1 *)", INT64_MAX, &s, NULL), 0);
}

static void test_accepted_forms(void **state)
{
    /* LocalStack's AWS-validated accepted expressions and ones AWS users report working */
    static const char *const ok[] = {
        "cron(0 2 ? * SAT *)",           "cron(15 10 ? * 6L 2002-2005)",
        "cron(0 2 ? * SAT#3 *)",         "cron(* * ? * SAT#3 *)",
        "cron(0/5 5 ? JAN 1-5 2022)",    "cron(0/30 20-23 ? * MON-FRI *)",
        "cron(0/30 0-2 ? * MON-FRI *)",  "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
        "cron(30-30 13-13 ? * 2,4,6 *)", "cron(1-31/30 1-1 ? * 1,7 *)",
        "cron(* * ? * mon-sun *)",       "cron(10 7/5 ? * Wed-Fri 2020)",
        "cron(10 7/5 7 * ? 2020)",       "cron(0 12 L * ? *)",
        "cron(0 12 LW * ? *)",           "cron(0 12 lw * ? *)",
        "cron(0 12 15W * ? *)",          "cron(0 12 ? * L *)",
        "cron(0 12 ? * FRIL *)",         "cron(0 12 ? * 2#1 *)",
        "cron(0  12   * *  ? *)",        "cron(05 09 01 01 ? 2030)",
        "cron(0 0 1 * ? 1970-2199)",     "cron(0 0 1 * ? 2020/4)",
        "cron(0 0 1 * ? */229)",         "cron(0 0 1 NOV-FEB ? *)",
        "cron(0 0 1 jan,Mar,DEC ? *)",
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
        parse_ok(ok[i]);

    /* names are the numbers they stand for; case does not matter */
    struct nb_schedule a = parse_ok("cron(0 0 ? JAN-MAR,DEC MON-FRI *)");
    struct nb_schedule b = parse_ok("cron(0 0 ? 1-3,12 2-6 *)");
    struct nb_schedule c = parse_ok("cron(0 0 ? jan-Mar,dEc mOn-fri *)");
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(&a, &c, sizeof(a));
    assert_int_equal(a.months.w[0], 0x100e);
    assert_int_equal(a.weekdays.w[0], 0x7c);
}

static void test_field_sets(void **state)
{
    /* the guide: "1/10 ... every tenth minute, starting from the first minute of the hour" */
    struct nb_schedule s = parse_ok("cron(1/10 * * * ? *)");
    uint64_t want = 0;
    for (int m = 1; m < 60; m += 10)
        want |= 1ULL << m;
    assert_int_equal(s.minutes.w[0], want);
    /* wrapping ranges, with and without a step */
    s = parse_ok("cron(50-10/5 22-2 * NOV-FEB ? *)");
    want = (1ULL << 50) | (1ULL << 55) | 1ULL | (1ULL << 5) | (1ULL << 10);
    assert_int_equal(s.minutes.w[0], want);
    assert_int_equal(s.hours.w[0], (1 << 22) | (1 << 23) | 1 | 2 | 4);
    assert_int_equal(s.months.w[0], (1 << 11) | (1 << 12) | 2 | 4);
    s = parse_ok("cron(0 0 28-3/2 * ? *)"); /* 28, 30, then 1, 3 */
    assert_int_equal(s.days.w[0], (1u << 28) | (1u << 30) | 2 | 8);
    s = parse_ok("cron(0 0 ? * FRI-MON *)"); /* FRI SAT SUN MON */
    assert_int_equal(s.weekdays.w[0], (1 << 6) | (1 << 7) | (1 << 1) | (1 << 2));
    s = parse_ok("cron(0 0 ? * L *)"); /* L alone in day-of-week: Saturday */
    assert_int_equal(s.dow, SCHEDULE_DOW_SET);
    assert_int_equal(s.weekdays.w[0], 1 << 7);
    s = parse_ok("cron(0 0 ? * 3#2 *)"); /* the guide: the second Tuesday */
    assert_int_equal(s.dow, SCHEDULE_DOW_NTH);
    assert_int_equal(s.dow_day, 3);
    assert_int_equal(s.dow_nth, 2);
    s = parse_ok("cron(0 0 3W * ? *)");
    assert_int_equal(s.dom, SCHEDULE_DOM_NEAREST_WEEKDAY);
    assert_int_equal(s.dom_day, 3);
    /* years: offset bits */
    s = parse_ok("cron(0 0 1 1 ? 1970,2199)");
    assert_int_equal(s.years.w[0], 1);
    assert_int_equal(s.years.w[3], 1ULL << (229 - 192));
    s = parse_ok("cron(0 0 1 1 ? 2190/5)");
    assert_int_equal(s.years.w[3], (1ULL << (220 - 192)) | (1ULL << (225 - 192)));
    /* '*' steps start at the field's minimum */
    s = parse_ok("cron(0 */6 */10 */5 ? *)");
    assert_int_equal(s.hours.w[0], 1 | (1 << 6) | (1 << 12) | (1 << 18));
    assert_int_equal(s.days.w[0], (1 << 1) | (1 << 11) | (1 << 21) | (1u << 31));
    assert_int_equal(s.months.w[0], (1 << 1) | (1 << 6) | (1 << 11));
}

/* ---------------------------------------------------------------------------------------------
 * Edge cases
 */

static void test_leap_years(void **state)
{
    int64_t now = now_s();
    /* 29 February: next in 2028; 2100 is not a leap year, 2000 was */
    check_seq("cron(0 0 29 2 ? *)", now,
              (int64_t[]){T(2028, 2, 29, 0, 0), T(2032, 2, 29, 0, 0), 0});
    check_next("cron(0 0 29 2 ? *)", T(2096, 3, 1, 0, 0), T(2104, 2, 29, 0, 0));
    check_prev("cron(0 0 29 2 ? *)", T(2104, 2, 29, 0, 0), T(2096, 2, 29, 0, 0));
    check_next("cron(0 0 29 2 ? *)", T(1999, 1, 1, 0, 0), T(2000, 2, 29, 0, 0));
    check_next("cron(0 0 29 2 ? *)", T(2196, 2, 29, 0, 0), NONE); /* 2200 is past the field */
    /* L in February */
    check_seq("cron(0 0 L 2 ? *)", T(2027, 1, 1, 0, 0),
              (int64_t[]){T(2027, 2, 28, 0, 0), T(2028, 2, 29, 0, 0), T(2029, 2, 28, 0, 0), 0});
    check_next("cron(0 0 L 2 ? *)", T(2100, 1, 1, 0, 0), T(2100, 2, 28, 0, 0));
    /* L every month */
    check_seq("cron(30 23 L * ? *)", now,
              (int64_t[]){T(2026, 11, 30, 23, 30), T(2026, 12, 31, 23, 30), T(2027, 1, 31, 23, 30),
                          T(2027, 2, 28, 23, 30), T(2027, 3, 31, 23, 30), T(2027, 4, 30, 23, 30),
                          0});
    /* the last Friday of February in a leap year whose 29th is a Friday (2104) */
    check_next("cron(0 0 ? 2 6L *)", T(2104, 1, 1, 0, 0), T(2104, 2, 29, 0, 0));
    /* days that never exist: parsed, never fire */
    check_next("cron(0 0 30 2 ? *)", now, NONE);
    check_prev("cron(0 0 30 2 ? *)", now, NONE);
    check_next("cron(0 0 31 4,6,9,11 ? *)", T(1970, 1, 1, 0, 0), NONE);
    /* 31 only in the months that have it */
    check_seq("cron(0 0 31 * ? *)", T(2027, 1, 31, 0, 0),
              (int64_t[]){T(2027, 3, 31, 0, 0), T(2027, 5, 31, 0, 0), T(2027, 7, 31, 0, 0),
                          T(2027, 8, 31, 0, 0), T(2027, 10, 31, 0, 0), 0});
}

static void test_year_boundaries(void **state)
{
    check_seq("cron(59 23 31 12 ? *)", T(2026, 12, 31, 23, 59),
              (int64_t[]){T(2027, 12, 31, 23, 59), T(2028, 12, 31, 23, 59), 0});
    check_next("cron(0 0 1 1 ? *)", T(2026, 12, 31, 23, 59) + 59, T(2027, 1, 1, 0, 0));
    check_prev("cron(0 0 1 1 ? *)", T(2027, 1, 1, 0, 0), T(2026, 1, 1, 0, 0));
    check_next("cron(* * * * ? *)", T(2026, 12, 31, 23, 59), T(2027, 1, 1, 0, 0));
    check_prev("cron(* * * * ? *)", T(2027, 1, 1, 0, 0), T(2026, 12, 31, 23, 59));
    /* a year set with gaps */
    check_seq("cron(0 12 1 1 ? 2027,2030-2031)", now_s(),
              (int64_t[]){T(2027, 1, 1, 12, 0), T(2030, 1, 1, 12, 0), T(2031, 1, 1, 12, 0), 0});
    check_next("cron(0 12 1 1 ? 2027,2030-2031)", T(2031, 1, 1, 12, 0), NONE);
    /* the end of the year field */
    check_next("cron(0 0 1 1 ? 2199)", T(2198, 6, 1, 0, 0), T(2199, 1, 1, 0, 0));
    check_next("cron(0 0 1 1 ? 2199)", T(2199, 1, 1, 0, 0), NONE);
    check_next("cron(59 23 31 12 ? 2199)", T(2199, 12, 31, 23, 58), T(2199, 12, 31, 23, 59));
    check_next("cron(* * * * ? *)", T(2199, 12, 31, 23, 58) + 30, T(2199, 12, 31, 23, 59));
    check_next("cron(* * * * ? *)", T(2199, 12, 31, 23, 59), NONE);
    check_next("cron(* * * * ? *)", T(2500, 1, 1, 0, 0), NONE);
    check_prev("cron(* * * * ? *)", T(2500, 1, 1, 0, 0), T(2199, 12, 31, 23, 59));
    /* the start of the year field */
    check_next("cron(* * * * ? *)", -1000000000, T(1970, 1, 1, 0, 0));
    check_next("cron(* * * * ? *)", -1, 0);
    check_next("cron(* * * * ? *)", 0, 60);
    check_prev("cron(* * * * ? *)", 1, 0);
    check_prev("cron(* * * * ? *)", 0, NONE);
    check_prev("cron(0 0 1 1 ? 1970)", INT64_MAX, 0);
    /* absurd inputs are clamped, not overflowed */
    check_next("cron(* * * * ? *)", INT64_MIN, 0);
    check_next("cron(* * * * ? *)", INT64_MAX, NONE);
    check_prev("cron(* * * * ? *)", INT64_MIN, NONE);
    /* rate ticks stop at SCHEDULE_TIME_LIMIT */
    struct nb_schedule r = parse_ok("rate(1 day)");
    int64_t t;
    assert_int_equal(schedule_next(&r, SCHEDULE_TIME_LIMIT - 10, &t), -ENOENT);
    assert_int_equal(schedule_next(&r, INT64_MAX, &t), -ENOENT);
    assert_int_equal(schedule_prev(&r, INT64_MAX, &t), 0);
    assert_true(t <= SCHEDULE_TIME_LIMIT && t > SCHEDULE_TIME_LIMIT - 86400);
    assert_int_equal(schedule_next(&r, INT64_MIN, &t), 0);
    assert_int_equal(t, anchor + 86400);
    /* seconds: ticks are whole minutes, strictly after */
    check_next("cron(* * * * ? *)", T(2026, 1, 1, 0, 0) + 59, T(2026, 1, 1, 0, 1));
    check_next("cron(* * * * ? *)", T(2026, 1, 1, 0, 0), T(2026, 1, 1, 0, 1));
    check_next("cron(* * * * ? *)", T(2026, 1, 1, 0, 0) - 1, T(2026, 1, 1, 0, 0));
    check_prev("cron(* * * * ? *)", T(2026, 1, 1, 0, 0) + 1, T(2026, 1, 1, 0, 0));
}

static void test_weekday_forms(void **state)
{
    /* 1W when the 1st is a Saturday (2026-08-01): Monday the 3rd, not Friday 31 July */
    check_next("cron(0 9 1W * ? *)", T(2026, 7, 31, 0, 0), T(2026, 8, 3, 9, 0));
    /* 31W when the 31st is a Sunday (2026-05-31): Friday the 29th, not Monday 1 June */
    check_next("cron(0 9 31W * ? *)", T(2026, 5, 1, 0, 0), T(2026, 5, 29, 9, 0));
    /* ...and months without a 31st are skipped: after May comes July (the 31st, a Friday) */
    check_next("cron(0 9 31W * ? *)", T(2026, 5, 29, 9, 0), T(2026, 7, 31, 9, 0));
    /* 15W: Saturday 2026-08-15 -> Friday 14th; Sunday 2026-11-15 -> Monday 16th; a weekday stays */
    check_next("cron(0 9 15W * ? *)", T(2026, 8, 1, 0, 0), T(2026, 8, 14, 9, 0));
    check_next("cron(0 9 15W * ? *)", T(2026, 11, 1, 0, 0), T(2026, 11, 16, 9, 0));
    check_next("cron(0 9 15W * ? *)", T(2026, 12, 1, 0, 0), T(2026, 12, 15, 9, 0));
    /* 1W when the 1st is a Sunday (2026-11-01): Monday the 2nd */
    check_next("cron(0 9 1W * ? *)", T(2026, 10, 31, 0, 0), T(2026, 11, 2, 9, 0));
    /* 30W in February never exists; 29W only in leap years */
    check_next("cron(0 9 29W 2 ? *)", T(2026, 1, 1, 0, 0), T(2028, 2, 29, 9, 0));
    /* LW: 2026-05-31 is a Sunday -> Friday 29; 2026-02-28 is a Saturday -> Friday 27 */
    check_next("cron(0 9 LW * ? *)", T(2026, 5, 1, 0, 0), T(2026, 5, 29, 9, 0));
    check_next("cron(0 9 LW * ? *)", T(2026, 2, 1, 0, 0), T(2026, 2, 27, 9, 0));
    check_next("cron(0 9 LW * ? *)", T(2026, 7, 1, 0, 0), T(2026, 7, 31, 9, 0));
    /* #5 skips months without a fifth Sunday: Nov 2026 has one (29th), Dec 2026 none, Jan 2027
     * has the 31st */
    check_seq("cron(0 0 ? * 1#5 *)", now_s(),
              (int64_t[]){T(2026, 11, 29, 0, 0), T(2027, 1, 31, 0, 0), 0});
    /* the guide's 3#2: the second Tuesday */
    check_seq("cron(0 0 ? * 3#2 *)", now_s(),
              (int64_t[]){T(2026, 12, 8, 0, 0), T(2027, 1, 12, 0, 0), 0});
    check_next("cron(0 2 ? * SAT#3 *)", now_s(), T(2026, 12, 19, 2, 0));
    /* the fifth Sunday of February: only when 29 Feb is a Sunday (2032, then 2060) */
    check_seq("cron(0 0 ? FEB 1#5 *)", now_s(),
              (int64_t[]){T(2032, 2, 29, 0, 0), T(2060, 2, 29, 0, 0), 0});
    /* nL: the last Monday */
    check_seq("cron(0 0 ? * 2L *)", now_s(),
              (int64_t[]){T(2026, 11, 30, 0, 0), T(2026, 12, 28, 0, 0), 0});
    /* L alone in day-of-week: every Saturday */
    check_seq("cron(0 0 ? * L *)", now_s(),
              (int64_t[]){T(2026, 11, 28, 0, 0), T(2026, 12, 5, 0, 0), 0});
    /* wrapping day-of-week range */
    check_seq("cron(0 0 ? * FRI-MON *)", now_s(),
              (int64_t[]){T(2026, 11, 27, 0, 0), T(2026, 11, 28, 0, 0), T(2026, 11, 29, 0, 0),
                          T(2026, 11, 30, 0, 0), T(2026, 12, 4, 0, 0), 0});
}

/* ---------------------------------------------------------------------------------------------
 * Catch-up
 */

static void test_missed(void **state)
{
    struct nb_schedule s = parse_ok("cron(0 * * * ? *)");
    int64_t from = now_s(), last = 0;
    uint32_t n = 99;
    /* down from 16:42:53 to 21:42:53: 17:00 ... 21:00 were missed */
    assert_int_equal(schedule_missed(&s, from, from + 5 * 3600, 1000, &n, &last), 0);
    assert_int_equal(n, 5);
    assert_int_equal(last, T(2026, 11, 26, 21, 0));
    /* the count saturates, the last tick does not move */
    assert_int_equal(schedule_missed(&s, from, from + 5 * 3600, 2, &n, &last), 0);
    assert_int_equal(n, 2);
    assert_int_equal(last, T(2026, 11, 26, 21, 0));
    /* a tick exactly at to_s counts; one exactly at from_s (already fired) does not */
    assert_int_equal(schedule_missed(&s, T(2026, 1, 1, 0, 0), T(2026, 1, 1, 2, 0), 100, &n, &last),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(last, T(2026, 1, 1, 2, 0));
    /* nothing missed: last untouched */
    last = 42;
    assert_int_equal(schedule_missed(&s, from, from + 60, 100, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(last, 42);
    assert_int_equal(schedule_missed(&s, from, from - 7200, 100, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(schedule_missed(&s, from, from + 7200, 0, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(last, 42);
    /* a year of every minute, counted up to a cap */
    s = parse_ok("cron(* * * * ? *)");
    assert_int_equal(
        schedule_missed(&s, T(2026, 1, 1, 0, 0), T(2027, 1, 1, 0, 0), 100000, &n, &last), 0);
    assert_int_equal(n, 100000);
    assert_int_equal(last, T(2027, 1, 1, 0, 0));
    /* a schedule past its years */
    s = parse_ok("cron(0 0 1 1 ? 2020)");
    assert_int_equal(schedule_missed(&s, from, from + 86400 * 400, 10, &n, &last), 0);
    assert_int_equal(n, 0);

    /* rate: ticks at anchor + k * 300 */
    s = parse_ok("rate(5 minutes)");
    assert_int_equal(schedule_missed(&s, anchor, anchor + 1000, 100, &n, &last), 0);
    assert_int_equal(n, 3);
    assert_int_equal(last, anchor + 900);
    assert_int_equal(schedule_missed(&s, anchor - 100000, anchor + 300, 100, &n, &last), 0);
    assert_int_equal(n, 1); /* the anchor itself is not a tick */
    assert_int_equal(last, anchor + 300);
    assert_int_equal(schedule_missed(&s, anchor + 301, anchor + 599, 100, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(schedule_missed(&s, anchor, anchor + 300 * 1000000LL, 7, &n, &last), 0);
    assert_int_equal(n, 7);
    assert_int_equal(last, anchor + 300 * 1000000LL);
}

/* ---------------------------------------------------------------------------------------------
 * Calendar helpers against the C library
 */

static void test_calendar(void **state)
{
    for (int y = 1970; y <= 2200; y++) {
        for (int m = 1; m <= 12; m++) {
            int md = schedule_days_in_month(y, m);
            assert_int_equal(T(y, m, 1, 0, 0) + (int64_t)md * 86400,
                             m == 12 ? T(y + 1, 1, 1, 0, 0) : T(y, m + 1, 1, 0, 0));
            for (int d = 1; d <= md; d++) {
                int64_t t = T(y, m, d, 0, 0);
                assert_int_equal(schedule_days_from_civil(y, m, d) * 86400, t);
                time_t tt = (time_t)t;
                struct tm tm;
                assert_non_null(gmtime_r(&tt, &tm));
                assert_int_equal(schedule_weekday(y, m, d), tm.tm_wday + 1);
            }
        }
    }
    assert_int_equal(schedule_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(schedule_weekday(1970, 1, 1), 5); /* Thursday */
}

/* ---------------------------------------------------------------------------------------------
 * Brute-force cross-check against a naive reference
 */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* What the generator meant, kept apart from what the parser produced. */
struct meaning {
    bool minute[60], hour[24], dom[32], month[13], dow[8], year[2200];
    enum { D_SET, D_LAST, D_LASTWD, D_NEAREST, D_ANY } dmode;
    enum { W_SET, W_LAST, W_NTH, W_ANY } wmode;
    int dom_n, dow_d, dow_k;
};

struct gfield {
    int min, max, max_step;
    bool wrap;
    const char *const *names;
};

static const char *const gmonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const gdays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static void put_value(const struct gfield *f, int v, struct nb_buf *out)
{
    if (f->names && rnd(2)) {
        const char *nm = f->names[v - f->min];
        for (int i = 0; i < 3; i++) {
            char c = nm[i];
            buf_appendf(out, "%c", rnd(3) == 0 ? (char)(c - 'A' + 'a') : c);
        }
    } else {
        buf_appendf(out, rnd(8) == 0 ? "%02d" : "%d", v);
    }
}

/* Marks every step-th element of the sequence a, a+1, ... b (wrapping past max to min). */
static void mark_seq(const struct gfield *f, int a, int b, int step, bool *set)
{
    int seq[256], n = 0;
    if (a <= b) {
        for (int v = a; v <= b; v++)
            seq[n++] = v;
    } else {
        for (int v = a; v <= f->max; v++)
            seq[n++] = v;
        for (int v = f->min; v <= b; v++)
            seq[n++] = v;
    }
    for (int i = 0; i < n; i += step)
        set[seq[i]] = true;
}

static int rnd_in(const struct gfield *f)
{
    return f->min + (int)rnd((uint32_t)(f->max - f->min + 1));
}

/* One list element (no '*') into out, its meaning into set. */
static void gen_element(const struct gfield *f, struct nb_buf *out, bool *set)
{
    int a = rnd_in(f), b = rnd_in(f);
    int step = f->max_step ? 1 + (int)rnd((uint32_t)f->max_step) : 1;
    if (!f->wrap && a > b) {
        int t = a;
        a = b, b = t;
    }
    switch (rnd(f->max_step ? 4 : 2)) {
    case 0: /* a */
        put_value(f, a, out);
        set[a] = true;
        break;
    case 1: /* a-b */
        put_value(f, a, out);
        buf_appends(out, "-");
        put_value(f, b, out);
        mark_seq(f, a, b, 1, set);
        break;
    case 2: /* a/step */
        put_value(f, a, out);
        buf_appendf(out, "/%d", step);
        mark_seq(f, a, f->max, step, set);
        break;
    default: /* a-b/step */
        put_value(f, a, out);
        buf_appends(out, "-");
        put_value(f, b, out);
        buf_appendf(out, "/%d", step);
        mark_seq(f, a, b, step, set);
        break;
    }
}

static void gen_field(const struct gfield *f, struct nb_buf *out, bool *set)
{
    uint32_t form = rnd(10);
    if (form == 0) {
        buf_appends(out, "*");
        mark_seq(f, f->min, f->max, 1, set);
    } else if (form == 1 && f->max_step) {
        int step = 1 + (int)rnd((uint32_t)f->max_step);
        buf_appendf(out, "*/%d", step);
        mark_seq(f, f->min, f->max, step, set);
    } else {
        int n = form >= 7 ? 2 + (int)rnd(3) : 1;
        for (int i = 0; i < n; i++) {
            if (i)
                buf_appends(out, ",");
            gen_element(f, out, set);
        }
    }
}

static const struct gfield g_min = {0, 59, 59, true, NULL};
static const struct gfield g_hour = {0, 23, 23, true, NULL};
static const struct gfield g_dom = {1, 31, 31, true, NULL};
static const struct gfield g_month = {1, 12, 12, true, gmonths};
static const struct gfield g_dow = {1, 7, 0, true, gdays};
static const struct gfield g_year = {2015, 2050, 0, false, NULL};

/* A random valid cron expression (malloc'd) and what it means. */
static char *gen_cron(struct meaning *m)
{
    memset(m, 0, sizeof(*m));
    struct nb_buf b = NB_BUF_INIT;
    buf_appends(&b, "cron(");
    /* keep the minutes and hours sparse enough that the windows stay interesting */
    gen_field(&g_min, &b, m->minute);
    buf_appends(&b, " ");
    gen_field(&g_hour, &b, m->hour);
    buf_appends(&b, " ");
    bool dom_side = rnd(2);
    if (!dom_side) {
        buf_appends(&b, "?");
        m->dmode = D_ANY;
    } else {
        uint32_t k = rnd(8);
        if (k == 0) {
            buf_appends(&b, rnd(2) ? "L" : "l");
            m->dmode = D_LAST;
        } else if (k == 1) {
            buf_appends(&b, rnd(2) ? "LW" : "lw");
            m->dmode = D_LASTWD;
        } else if (k <= 3) {
            m->dom_n = 1 + (int)rnd(31);
            if (rnd(2))
                m->dom_n = rnd(2) ? 1 : 28 + (int)rnd(4); /* the month edges */
            buf_appendf(&b, "%dW", m->dom_n);
            m->dmode = D_NEAREST;
        } else {
            gen_field(&g_dom, &b, m->dom);
            m->dmode = D_SET;
        }
    }
    buf_appends(&b, " ");
    gen_field(&g_month, &b, m->month);
    buf_appends(&b, " ");
    if (dom_side) {
        buf_appends(&b, "?");
        m->wmode = W_ANY;
    } else {
        uint32_t k = rnd(8);
        if (k == 0) {
            buf_appends(&b, "L");
            m->dow[7] = true;
            m->wmode = W_SET;
        } else if (k <= 2) {
            m->dow_d = 1 + (int)rnd(7);
            put_value(&g_dow, m->dow_d, &b);
            buf_appends(&b, "L");
            m->wmode = W_LAST;
        } else if (k <= 4) {
            m->dow_d = 1 + (int)rnd(7);
            m->dow_k = 1 + (int)rnd(5);
            put_value(&g_dow, m->dow_d, &b);
            buf_appendf(&b, "#%d", m->dow_k);
            m->wmode = W_NTH;
        } else {
            gen_field(&g_dow, &b, m->dow);
            m->wmode = W_SET;
        }
    }
    buf_appends(&b, " ");
    if (rnd(3) == 0) {
        gen_field(&g_year, &b, m->year);
    } else {
        buf_appends(&b, "*");
        for (int y = 1970; y < 2200; y++)
            m->year[y] = true;
    }
    buf_appends(&b, ")");
    return buf_detach(&b, NULL);
}

/* The window the reference covers, one entry per day (from gmtime_r, not schedule.c). */
#define REF_Y0 2020
#define REF_Y1 2045
struct refday {
    int y, m, d, wday, mdays; /* wday 0 = Sunday (struct tm) */
};
static struct refday *ref_days;
static int ref_ndays;
static int64_t ref_t0, ref_t1;

static void ref_init(void)
{
    if (ref_days)
        return;
    ref_t0 = T(REF_Y0, 1, 1, 0, 0);
    ref_t1 = T(REF_Y1, 1, 1, 0, 0);
    ref_ndays = (int)((ref_t1 - ref_t0) / 86400);
    ref_days = xcalloc((size_t)ref_ndays, sizeof(*ref_days));
    for (int i = 0; i < ref_ndays; i++) {
        time_t t = (time_t)(ref_t0 + (int64_t)i * 86400);
        struct tm tm, next;
        gmtime_r(&t, &tm);
        struct refday *r = &ref_days[i];
        r->y = tm.tm_year + 1900, r->m = tm.tm_mon + 1, r->d = tm.tm_mday, r->wday = tm.tm_wday;
        /* the month's length: the last day whose following day is in another month */
        int md = 28;
        for (;; md++) {
            struct tm probe = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = md + 1};
            time_t pt = timegm(&probe);
            gmtime_r(&pt, &next);
            if (next.tm_mon != tm.tm_mon)
                break;
        }
        r->mdays = md;
    }
}

static int ref_wday_of(const struct refday *r, int day)
{
    return ((r->wday + (day - r->d)) % 7 + 7) % 7; /* 0 = Sunday */
}

static bool ref_day_ok(const struct meaning *m, const struct refday *r)
{
    if (!m->year[r->y] || !m->month[r->m])
        return false;
    switch (m->dmode) {
    case D_SET:
        return m->dom[r->d];
    case D_LAST:
        return r->d == r->mdays;
    case D_LASTWD: {
        int d = r->mdays;
        while (ref_wday_of(r, d) == 0 || ref_wday_of(r, d) == 6)
            d--;
        return r->d == d;
    }
    case D_NEAREST: {
        /* the weekday closest to day n among the month's days; ties cannot happen */
        int n = m->dom_n, best = -1;
        if (n > r->mdays)
            return false;
        for (int d = 1; d <= r->mdays; d++) {
            int w = ref_wday_of(r, d);
            if (w == 0 || w == 6)
                continue;
            if (best < 0 || abs(d - n) < abs(best - n))
                best = d;
        }
        return r->d == best;
    }
    case D_ANY:
        break;
    }
    int w = r->wday + 1;
    switch (m->wmode) {
    case W_SET:
        return m->dow[w];
    case W_LAST:
        return w == m->dow_d && r->d > r->mdays - 7;
    case W_NTH: {
        int k = 0;
        for (int d = 1; d <= r->d; d++)
            if (ref_wday_of(r, d) + 1 == m->dow_d)
                k++;
        return w == m->dow_d && k == m->dow_k;
    }
    case W_ANY:
        break;
    }
    return false;
}

/* Naive: the first tick > q within the window, scanning day by day and minute by minute. */
static bool ref_next(const struct meaning *m, const bool *day_ok, int64_t q, int64_t *out)
{
    int i0 = q < ref_t0 ? 0 : (int)((q - ref_t0) / 86400);
    for (int i = i0; i < ref_ndays; i++) {
        if (!day_ok[i])
            continue;
        for (int h = 0; h < 24; h++)
            for (int mi = 0; mi < 60; mi++) {
                int64_t t = ref_t0 + (int64_t)i * 86400 + h * 3600 + mi * 60;
                if (m->hour[h] && m->minute[mi] && t > q) {
                    *out = t;
                    return true;
                }
            }
    }
    return false;
}

static bool ref_prev(const struct meaning *m, const bool *day_ok, int64_t q, int64_t *out)
{
    int i0 = q >= ref_t1 ? ref_ndays - 1 : (int)((q - ref_t0) / 86400);
    for (int i = i0; i >= 0; i--) {
        if (!day_ok[i])
            continue;
        for (int h = 23; h >= 0; h--)
            for (int mi = 59; mi >= 0; mi--) {
                int64_t t = ref_t0 + (int64_t)i * 86400 + h * 3600 + mi * 60;
                if (m->hour[h] && m->minute[mi] && t < q) {
                    *out = t;
                    return true;
                }
            }
    }
    return false;
}

static void cross_check_one(const char *expr, const struct meaning *m, const bool *day_ok)
{
    struct nb_schedule s;
    struct nb_err err = {0};
    if (schedule_parse(expr, 0, &s, &err) != 0)
        fail_msg("generated '%s' refused: %s", expr, err.msg);
    char a[64], w[64], g[64];
    for (int i = 0; i < 12; i++) {
        /* random instants, some on exact minutes, inside the window (away from its edges) */
        int64_t q = ref_t0 + 86400 * 400 + (int64_t)rnd((uint32_t)(ref_t1 - ref_t0 - 86400 * 800));
        if (rnd(2))
            q -= q % 60;
        for (int chain = 0; chain < 4; chain++) {
            int64_t want = 0, got = 0;
            bool has = ref_next(m, day_ok, q, &want);
            int r = schedule_next(&s, q, &got);
            if (has ? (r != 0 || got != want) : (r == 0 && got < ref_t1))
                fail_msg("%s next after %s: reference %s, got r=%d %s", expr,
                         fmt_t(q, a, sizeof(a)), has ? fmt_t(want, w, sizeof(w)) : "none", r,
                         fmt_t(got, g, sizeof(g)));
            int64_t pwant = 0, pgot = 0;
            bool phas = ref_prev(m, day_ok, q, &pwant);
            int pr = schedule_prev(&s, q, &pgot);
            if (phas ? (pr != 0 || pgot != pwant) : (pr == 0 && pgot >= ref_t0))
                fail_msg("%s prev before %s: reference %s, got r=%d %s", expr,
                         fmt_t(q, a, sizeof(a)), phas ? fmt_t(pwant, w, sizeof(w)) : "none", pr,
                         fmt_t(pgot, g, sizeof(g)));
            if (!has)
                break;
            q = want; /* walk on from the tick itself */
        }
        /* the ticks missed in (q, q + 3 days], counted by walking the reference */
        int64_t to = q + 3 * 86400, t = q, last = 0, got_last = 0;
        if (to >= ref_t1)
            continue;
        uint32_t want_n = 0, got_n = 0;
        while (want_n < 300 && ref_next(m, day_ok, t, &t) && t <= to)
            want_n++, last = t;
        assert_int_equal(schedule_missed(&s, q, to, 300, &got_n, &got_last), 0);
        if (got_n != want_n || (want_n > 0 && want_n < 300 && got_last != last))
            fail_msg("%s missed in (%s, +3d]: reference %u ending %s, got %u ending %s", expr,
                     fmt_t(q, a, sizeof(a)), want_n, fmt_t(last, w, sizeof(w)), got_n,
                     fmt_t(got_last, g, sizeof(g)));
    }
}

static void test_cross_check(void **state)
{
    ref_init();
    rng_state = 0x9e3779b97f4a7c15ULL;
    bool *day_ok = xcalloc((size_t)ref_ndays, sizeof(bool));
    for (int n = 0; n < 600; n++) {
        struct meaning m;
        _cleanup_free_ char *expr = gen_cron(&m);
        for (int i = 0; i < ref_ndays; i++)
            day_ok[i] = ref_day_ok(&m, &ref_days[i]);
        cross_check_one(expr, &m, day_ok);
    }
    free(day_ok);
}

/* The smallest k >= 1 with a + k * p > q (or >= q when !strict), by doubling and bisection. */
static int64_t first_k(int64_t a, int64_t p, int64_t q, bool strict)
{
    int64_t lo = 1, hi = 1;
    while (strict ? a + hi * p <= q : a + hi * p < q)
        lo = hi, hi *= 2;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (strict ? a + mid * p > q : a + mid * p >= q)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Rate schedules against a search over k, for random anchors, periods and times. */
static void test_rate_cross_check(void **state)
{
    rng_state = 0x0123456789abcdefULL;
    static const char *const units[][2] = {
        {"minutes", "minute"}, {"hours", "hour"}, {"days", "day"}};
    static const int64_t secs[] = {60, 3600, 86400};
    for (int n = 0; n < 2000; n++) {
        int u = (int)rnd(3);
        int64_t v = 1 + rnd(n % 10 == 0 ? 1000000 : 100);
        char expr[64];
        snprintf(expr, sizeof(expr), "rate(%lld %s)", (long long)v, units[u][v == 1]);
        int64_t a = (int64_t)rnd(2000000000) - 100000000;
        struct nb_schedule s;
        assert_int_equal(schedule_parse(expr, a, &s, NULL), 0);
        int64_t p = v * secs[u];
        for (int i = 0; i < 8; i++) {
            int64_t q = a + (int64_t)rnd(100000000) - 1000000;
            if (i == 7)
                q = a + first_k(a, p, q, true) * p; /* exactly on a tick */
            int64_t got;
            assert_int_equal(schedule_next(&s, q, &got), 0);
            assert_int_equal(got, a + first_k(a, p, q, true) * p);
            int64_t k = first_k(a, p, q, false) - 1; /* the last k with a + k * p < q */
            int r = schedule_prev(&s, q, &got);
            if (k >= 1) {
                assert_int_equal(r, 0);
                assert_int_equal(got, a + k * p);
            } else {
                assert_int_equal(r, -ENOENT);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_cron_table),    cmocka_unit_test(test_docs_put_rule_examples),
        cmocka_unit_test(test_docs_rate_examples), cmocka_unit_test(test_refused_rates),
        cmocka_unit_test(test_refused_cron),       cmocka_unit_test(test_message_shape),
        cmocka_unit_test(test_accepted_forms),     cmocka_unit_test(test_field_sets),
        cmocka_unit_test(test_leap_years),         cmocka_unit_test(test_year_boundaries),
        cmocka_unit_test(test_weekday_forms),      cmocka_unit_test(test_missed),
        cmocka_unit_test(test_calendar),           cmocka_unit_test(test_cross_check),
        cmocka_unit_test(test_rate_cross_check),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(ref_days);
    return r;
}
