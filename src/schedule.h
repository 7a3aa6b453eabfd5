/*
 * schedule.h - EventBridge schedule expressions, `rate(N unit)` and six-field `cron(...)`, parsed
 * into a compact value, and the tick arithmetic on it: the next tick, the previous tick, and the
 * ticks missed in a window (for catch-up after downtime).
 *
 * Everything here is a pure function of its arguments: no clock, no I/O, no allocation, no global
 * state; safe on any thread. Times are UTC epoch seconds; there are no time zones and no DST.
 * Cron ticks fall on whole minutes of the years 1970-2199. Rate ticks fall on anchor + k * period
 * for k >= 1, where the anchor is given to schedule_parse (the daemon passes the time the rule was
 * created or last enabled, as EventBridge starts a rate "when you create the rule").
 *
 * What is accepted (and why): docs/design/schedules.md. A refused expression fails with -EINVAL
 * in the nb_err contract; the API layer maps that to EventBridge's ValidationException
 * "Parameter ScheduleExpression is not valid.".
 */
#ifndef NIMBUS_SCHEDULE_H
#define NIMBUS_SCHEDULE_H

#include <stdint.h>

#include "err.h"

#define SCHEDULE_EXPR_MAX 256 /* PutRule's ScheduleExpression length limit */
#define SCHEDULE_YEAR_MIN 1970
#define SCHEDULE_YEAR_MAX 2199
/* Times outside [-2^40, 2^40] s (about +-34,800 years) are clamped before any arithmetic, and
 * no tick lies beyond them. */
#define SCHEDULE_TIME_LIMIT ((int64_t)1 << 40)

enum nb_schedule_kind {
    SCHEDULE_RATE = 1,
    SCHEDULE_CRON,
};

/* How the day-of-month field selects days (cron). */
enum nb_schedule_dom {
    SCHEDULE_DOM_ANY = 0,         /* '?': day-of-week decides */
    SCHEDULE_DOM_SET,             /* values, ranges, steps, '*' */
    SCHEDULE_DOM_LAST,            /* 'L': the last day of the month */
    SCHEDULE_DOM_LAST_WEEKDAY,    /* 'LW': the last Monday-Friday of the month */
    SCHEDULE_DOM_NEAREST_WEEKDAY, /* 'nW': the Monday-Friday nearest day n, within the month */
};

/* How the day-of-week field selects days (cron). Weekdays are 1 = SUN ... 7 = SAT. */
enum nb_schedule_dow {
    SCHEDULE_DOW_ANY = 0, /* '?': day-of-month decides */
    SCHEDULE_DOW_SET,     /* values, ranges, '*', 'L' (= 7, Saturday) */
    SCHEDULE_DOW_LAST,    /* 'dL': the last weekday d of the month */
    SCHEDULE_DOW_NTH,     /* 'd#k': the k-th (1-5) weekday d of the month */
};

/* A set of small integers (bit i = value i); the year set is offset by SCHEDULE_YEAR_MIN. */
struct nb_schedule_bits {
    uint64_t w[4];
};

/* A parsed expression. A plain value: copy it freely; nothing to release. */
struct nb_schedule {
    enum nb_schedule_kind kind;
    /* rate */
    int64_t period_s; /* 60 .. INT32_MAX days */
    int64_t anchor_s; /* ticks are anchor_s + k * period_s, k >= 1 */
    /* cron: every set is non-empty */
    struct nb_schedule_bits minutes;  /* 0-59 */
    struct nb_schedule_bits hours;    /* 0-23 */
    struct nb_schedule_bits days;     /* 1-31, used when dom == SCHEDULE_DOM_SET */
    struct nb_schedule_bits months;   /* 1-12 */
    struct nb_schedule_bits weekdays; /* 1-7, used when dow == SCHEDULE_DOW_SET */
    struct nb_schedule_bits years;    /* bit (year - 1970) */
    enum nb_schedule_dom dom;
    enum nb_schedule_dow dow;
    int dom_day; /* n of 'nW' */
    int dow_day; /* d of 'dL' and 'd#k' */
    int dow_nth; /* k of 'd#k' */
};

/*
 * Parses a ScheduleExpression (`rate(5 minutes)`, `cron(0 10 * * ? *)`, ...) into *out. anchor_s
 * is the start of a rate schedule (ignored for cron); it must be within SCHEDULE_TIME_LIMIT.
 * Returns 0, or -EINVAL with a message saying what is wrong (*out is then unspecified).
 */
int schedule_parse(const char *expr, int64_t anchor_s, struct nb_schedule *out, struct nb_err *err);

/*
 * The first tick strictly after after_s, in *next_s. Returns 0, or -ENOENT when there is none
 * (a cron year set entirely in the past, a day that never exists such as 30 February, or a time
 * past 2199; a rate tick past SCHEDULE_TIME_LIMIT). Cost: a few hundred steps at worst (it skips
 * by field, never minute by minute).
 */
int schedule_next(const struct nb_schedule *s, int64_t after_s, int64_t *next_s);

/* The last tick strictly before before_s, in *prev_s. Returns 0, or -ENOENT when there is none. */
int schedule_prev(const struct nb_schedule *s, int64_t before_s, int64_t *prev_s);

/*
 * The ticks t with from_s < t <= to_s (the ticks missed by a daemon that fired last at from_s and
 * is back at to_s): *count is how many, saturated at max_count (counting stops there, so the cost
 * is bounded by max_count for cron), and *last_s the latest of them, set only when *count > 0.
 * Always returns 0.
 */
int schedule_missed(const struct nb_schedule *s, int64_t from_s, int64_t to_s, uint32_t max_count,
                    uint32_t *count, int64_t *last_s);

/* The proleptic Gregorian calendar helpers the module uses (exported for its tests). */
int64_t schedule_days_from_civil(int64_t y, int m, int d); /* days since 1970-01-01 */
int schedule_days_in_month(int64_t y, int m);
int schedule_weekday(int64_t y, int m, int d); /* 1 = SUN ... 7 = SAT */

#endif
