/*
 * schedule.c - parsing EventBridge schedule expressions and computing their ticks.
 *
 * Parsing turns each cron field into a bit set (struct nb_schedule_bits) plus, for the two day
 * fields, a mode for the special forms (L, LW, nW, dL, d#k). Tick arithmetic works on a broken-
 * down UTC minute (year, month, day, hour, minute) and skips by field: a year not in the set jumps
 * to the next year in it, a month to the next month, and so on down to the minute; each step moves
 * strictly forward (or backward for schedule_prev), so the walk ends within a few hundred steps
 * for any expression. The calendar is proleptic Gregorian from days-since-epoch arithmetic
 * (Howard Hinnant's algorithms); nothing here reads the clock or calls the C library's time zone
 * code.
 *
 * Invariants: every set of a parsed cron schedule is non-empty; exactly one of dom/dow is ANY.
 */
#include "schedule.h"

#include <errno.h>
#include <string.h>

#include "util.h"

/* ---------------------------------------------------------------------------------------------
 * Bit sets
 */

static void bits_set(struct nb_schedule_bits *b, int i)
{
    b->w[i >> 6] |= (uint64_t)1 << (i & 63);
}

static bool bits_has(const struct nb_schedule_bits *b, int i)
{
    if (i < 0 || i > 255)
        return false;
    return (b->w[i >> 6] >> (i & 63)) & 1;
}

/* The smallest member in [i, hi], or -1. */
static int bits_next(const struct nb_schedule_bits *b, int i, int hi)
{
    if (i < 0)
        i = 0;
    while (i <= hi && i <= 255) {
        uint64_t w = b->w[i >> 6] >> (i & 63);
        if (w) {
            int r = i + __builtin_ctzll(w);
            return r <= hi ? r : -1;
        }
        i = (i | 63) + 1;
    }
    return -1;
}

/* The largest member in [lo, i], or -1. */
static int bits_prev(const struct nb_schedule_bits *b, int i, int lo)
{
    if (i > 255)
        i = 255;
    while (i >= lo && i >= 0) {
        uint64_t w = b->w[i >> 6] << (63 - (i & 63));
        if (w) {
            int r = i - __builtin_clzll(w);
            return r >= lo ? r : -1;
        }
        i = (i & ~63) - 1;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Calendar
 */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t schedule_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int schedule_days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

int schedule_weekday(int64_t y, int m, int d)
{
    int64_t z = schedule_days_from_civil(y, m, d); /* 1970-01-01 was a Thursday (5) */
    return (int)(((z % 7) + 7 + 4) % 7) + 1;
}

/* A UTC minute, broken down. */
struct minute {
    int64_t y;
    int mo, d, h, mi;
};

static void split_minute(int64_t t, struct minute *c)
{
    int64_t days = floor_div(t, 86400);
    int64_t sec = t - days * 86400;
    civil_from_days(days, &c->y, &c->mo, &c->d);
    c->h = (int)(sec / 3600);
    c->mi = (int)(sec % 3600 / 60);
}

static int64_t join_minute(const struct minute *c)
{
    return schedule_days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60;
}

static void set_minute(struct minute *c, int64_t y, int mo, int d, int h, int mi)
{
    c->y = y, c->mo = mo, c->d = d, c->h = h, c->mi = mi;
}

static void advance_month(struct minute *c)
{
    if (c->mo == 12)
        set_minute(c, c->y + 1, 1, 1, 0, 0);
    else
        set_minute(c, c->y, c->mo + 1, 1, 0, 0);
}

static void advance_day(struct minute *c)
{
    if (c->d >= schedule_days_in_month(c->y, c->mo))
        advance_month(c);
    else
        set_minute(c, c->y, c->mo, c->d + 1, 0, 0);
}

static void advance_hour(struct minute *c)
{
    if (c->h == 23)
        advance_day(c);
    else
        c->h++, c->mi = 0;
}

static void retreat_month(struct minute *c)
{
    if (c->mo == 1)
        set_minute(c, c->y - 1, 12, 31, 23, 59);
    else
        set_minute(c, c->y, c->mo - 1, schedule_days_in_month(c->y, c->mo - 1), 23, 59);
}

static void retreat_day(struct minute *c)
{
    if (c->d == 1)
        retreat_month(c);
    else
        set_minute(c, c->y, c->mo, c->d - 1, 23, 59);
}

static void retreat_hour(struct minute *c)
{
    if (c->h == 0)
        retreat_day(c);
    else
        c->h--, c->mi = 59;
}

/* ---------------------------------------------------------------------------------------------
 * Day selection
 */

/* 'nW': the Monday-Friday nearest day n without leaving the month; -1 if the month has no day n. */
static int nearest_weekday(int64_t y, int m, int n, int mdays)
{
    if (n > mdays)
        return -1;
    int w = schedule_weekday(y, m, n);
    if (w == 7) /* Saturday: the Friday before, unless that is in the previous month */
        return n == 1 ? 3 : n - 1;
    if (w == 1) /* Sunday: the Monday after, unless that is in the next month */
        return n == mdays ? n - 2 : n + 1;
    return n;
}

static int last_weekday(int64_t y, int m, int mdays)
{
    int w = schedule_weekday(y, m, mdays);
    return w == 7 ? mdays - 1 : w == 1 ? mdays - 2 : mdays;
}

static bool day_matches(const struct nb_schedule *s, int64_t y, int m, int d, int mdays)
{
    switch (s->dom) {
    case SCHEDULE_DOM_SET:
        return bits_has(&s->days, d);
    case SCHEDULE_DOM_LAST:
        return d == mdays;
    case SCHEDULE_DOM_LAST_WEEKDAY:
        return d == last_weekday(y, m, mdays);
    case SCHEDULE_DOM_NEAREST_WEEKDAY:
        return d == nearest_weekday(y, m, s->dom_day, mdays);
    case SCHEDULE_DOM_ANY:
        break;
    }
    int w = schedule_weekday(y, m, d);
    switch (s->dow) {
    case SCHEDULE_DOW_SET:
        return bits_has(&s->weekdays, w);
    case SCHEDULE_DOW_LAST:
        return w == s->dow_day && d + 7 > mdays;
    case SCHEDULE_DOW_NTH:
        return w == s->dow_day && (d - 1) / 7 + 1 == s->dow_nth;
    case SCHEDULE_DOW_ANY:
        break;
    }
    BUG("schedule selects no day (dom %d, dow %d)", s->dom, s->dow);
}

static int first_day_from(const struct nb_schedule *s, const struct minute *c)
{
    int mdays = schedule_days_in_month(c->y, c->mo);
    for (int d = c->d; d <= mdays; d++)
        if (day_matches(s, c->y, c->mo, d, mdays))
            return d;
    return -1;
}

static int last_day_upto(const struct nb_schedule *s, const struct minute *c)
{
    int mdays = schedule_days_in_month(c->y, c->mo);
    for (int d = c->d; d >= 1; d--)
        if (day_matches(s, c->y, c->mo, d, mdays))
            return d;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Ticks
 */

static int64_t clamp_time(int64_t t)
{
    if (t < -SCHEDULE_TIME_LIMIT)
        return -SCHEDULE_TIME_LIMIT;
    if (t > SCHEDULE_TIME_LIMIT)
        return SCHEDULE_TIME_LIMIT;
    return t;
}

static int cron_next(const struct nb_schedule *s, int64_t after_s, int64_t *next_s)
{
    const int ymax = SCHEDULE_YEAR_MAX - SCHEDULE_YEAR_MIN;
    struct minute c;
    split_minute(floor_div(after_s, 60) * 60 + 60, &c);
    if (c.y < SCHEDULE_YEAR_MIN)
        set_minute(&c, SCHEDULE_YEAR_MIN, 1, 1, 0, 0);
    for (;;) {
        if (c.y > SCHEDULE_YEAR_MAX)
            return -ENOENT;
        int yi = bits_next(&s->years, (int)(c.y - SCHEDULE_YEAR_MIN), ymax);
        if (yi < 0)
            return -ENOENT;
        if (yi + SCHEDULE_YEAR_MIN != c.y)
            set_minute(&c, yi + SCHEDULE_YEAR_MIN, 1, 1, 0, 0);
        int mo = bits_next(&s->months, c.mo, 12);
        if (mo < 0) {
            set_minute(&c, c.y + 1, 1, 1, 0, 0);
            continue;
        }
        if (mo != c.mo)
            set_minute(&c, c.y, mo, 1, 0, 0);
        int d = first_day_from(s, &c);
        if (d < 0) {
            advance_month(&c);
            continue;
        }
        if (d != c.d)
            set_minute(&c, c.y, c.mo, d, 0, 0);
        int h = bits_next(&s->hours, c.h, 23);
        if (h < 0) {
            advance_day(&c);
            continue;
        }
        if (h != c.h)
            c.h = h, c.mi = 0;
        int mi = bits_next(&s->minutes, c.mi, 59);
        if (mi < 0) {
            advance_hour(&c);
            continue;
        }
        c.mi = mi;
        *next_s = join_minute(&c);
        return 0;
    }
}

static int cron_prev(const struct nb_schedule *s, int64_t before_s, int64_t *prev_s)
{
    struct minute c;
    split_minute(floor_div(before_s - 1, 60) * 60, &c);
    if (c.y > SCHEDULE_YEAR_MAX)
        set_minute(&c, SCHEDULE_YEAR_MAX, 12, 31, 23, 59);
    for (;;) {
        if (c.y < SCHEDULE_YEAR_MIN)
            return -ENOENT;
        int yi = bits_prev(&s->years, (int)(c.y - SCHEDULE_YEAR_MIN), 0);
        if (yi < 0)
            return -ENOENT;
        if (yi + SCHEDULE_YEAR_MIN != c.y)
            set_minute(&c, yi + SCHEDULE_YEAR_MIN, 12, 31, 23, 59);
        int mo = bits_prev(&s->months, c.mo, 1);
        if (mo < 0) {
            set_minute(&c, c.y - 1, 12, 31, 23, 59);
            continue;
        }
        if (mo != c.mo)
            set_minute(&c, c.y, mo, schedule_days_in_month(c.y, mo), 23, 59);
        int d = last_day_upto(s, &c);
        if (d < 0) {
            retreat_month(&c);
            continue;
        }
        if (d != c.d)
            set_minute(&c, c.y, c.mo, d, 23, 59);
        int h = bits_prev(&s->hours, c.h, 0);
        if (h < 0) {
            retreat_day(&c);
            continue;
        }
        if (h != c.h)
            c.h = h, c.mi = 59;
        int mi = bits_prev(&s->minutes, c.mi, 0);
        if (mi < 0) {
            retreat_hour(&c);
            continue;
        }
        c.mi = mi;
        *prev_s = join_minute(&c);
        return 0;
    }
}

int schedule_next(const struct nb_schedule *s, int64_t after_s, int64_t *next_s)
{
    after_s = clamp_time(after_s);
    if (s->kind == SCHEDULE_CRON)
        return cron_next(s, after_s, next_s);
    ASSERT(s->kind == SCHEDULE_RATE && s->period_s > 0);
    int64_t k = floor_div(after_s - s->anchor_s, s->period_s) + 1;
    int64_t t = s->anchor_s + (k < 1 ? 1 : k) * s->period_s;
    if (t > SCHEDULE_TIME_LIMIT)
        return -ENOENT;
    *next_s = t;
    return 0;
}

int schedule_prev(const struct nb_schedule *s, int64_t before_s, int64_t *prev_s)
{
    before_s = clamp_time(before_s);
    if (s->kind == SCHEDULE_CRON)
        return cron_prev(s, before_s, prev_s);
    ASSERT(s->kind == SCHEDULE_RATE && s->period_s > 0);
    int64_t k = floor_div(before_s - s->anchor_s - 1, s->period_s);
    if (k < 1)
        return -ENOENT;
    *prev_s = s->anchor_s + k * s->period_s;
    return 0;
}

int schedule_missed(const struct nb_schedule *s, int64_t from_s, int64_t to_s, uint32_t max_count,
                    uint32_t *count, int64_t *last_s)
{
    from_s = clamp_time(from_s);
    to_s = clamp_time(to_s);
    *count = 0;
    int64_t last;
    if (max_count == 0 || to_s <= from_s || schedule_prev(s, to_s + 1, &last) < 0 || last <= from_s)
        return 0;
    *last_s = last;
    if (s->kind == SCHEDULE_RATE) {
        int64_t lo = floor_div(from_s - s->anchor_s, s->period_s) + 1;
        int64_t hi = floor_div(last - s->anchor_s, s->period_s);
        if (lo < 1)
            lo = 1;
        int64_t n = hi - lo + 1;
        *count = n > (int64_t)max_count ? max_count : (uint32_t)n;
        return 0;
    }
    int64_t t = from_s;
    while (*count < max_count && schedule_next(s, t, &t) == 0 && t <= last)
        (*count)++;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field {
    const char *name;
    int min, max;
    int max_step;             /* 0: '/' not allowed */
    int offset;               /* bit index = value - offset */
    const char *const *names; /* three-letter names of min, min + 1, ... (any case) */
};

static const struct field f_minutes = {"minutes", 0, 59, 59, 0, NULL};
static const struct field f_hours = {"hours", 0, 23, 23, 0, NULL};
static const struct field f_dom = {"day-of-month", 1, 31, 31, 0, NULL};
static const struct field f_month = {"month", 1, 12, 12, 0, month_names};
static const struct field f_dow = {"day-of-week", 1, 7, 0, 0, day_names};
static const struct field f_year = {"year", SCHEDULE_YEAR_MIN, SCHEDULE_YEAR_MAX,
                                    229,    SCHEDULE_YEAR_MIN, NULL};

/* A slice of the expression. */
struct tok {
    const char *p;
    size_t n;
};

static bool tok_is(struct tok t, const char *s)
{
    return t.n == strlen(s) && strncasecmp(t.p, s, t.n) == 0;
}

static const char *tok_chr(struct tok t, char c)
{
    return memchr(t.p, c, t.n);
}

static bool all_digits(struct tok t)
{
    if (t.n == 0)
        return false;
    for (size_t i = 0; i < t.n; i++)
        if (t.p[i] < '0' || t.p[i] > '9')
            return false;
    return true;
}

/* Digits to int; callers bound the length so this cannot overflow. */
static int digits_value(struct tok t)
{
    int v = 0;
    for (size_t i = 0; i < t.n; i++)
        v = v * 10 + (t.p[i] - '0');
    return v;
}

static int parse_value(const struct field *f, struct tok t, int *v, struct nb_err *err)
{
    if (t.n == 0)
        return err_set(err, EINVAL, "%s has an empty value", f->name);
    if (all_digits(t)) {
        int x = t.n > 4 ? -1 : digits_value(t);
        if (x < f->min || x > f->max)
            return err_set(err, EINVAL, "%s value '%.*s' is out of range %d-%d", f->name, (int)t.n,
                           t.p, f->min, f->max);
        *v = x;
        return 0;
    }
    for (int i = 0; f->names && i <= f->max - f->min; i++) {
        if (tok_is(t, f->names[i])) {
            *v = f->min + i;
            return 0;
        }
    }
    if (f->names)
        return err_set(err, EINVAL, "%s value '%.*s' is neither a number nor a name %s-%s", f->name,
                       (int)t.n, t.p, f->names[0], f->names[f->max - f->min]);
    return err_set(err, EINVAL, "%s value '%.*s' is not a number", f->name, (int)t.n, t.p);
}

/* One element of a list: '*', 'a', 'a-b', each optionally followed by '/step'. */
static int parse_item(const struct field *f, struct tok t, bool in_list, struct nb_schedule_bits *b,
                      struct nb_err *err)
{
    int a, z, step = 1, r;
    struct tok left = t;
    const char *slash = tok_chr(t, '/');
    if (slash) {
        if (f->max_step == 0)
            return err_set(err, EINVAL, "%s does not take '/'", f->name);
        left.n = (size_t)(slash - t.p);
        struct tok st = {slash + 1, t.n - left.n - 1};
        if (!all_digits(st) || st.n > 4 || (step = digits_value(st)) < 1 || step > f->max_step)
            return err_set(err, EINVAL, "%s increment '%.*s' is not a number 1-%d", f->name,
                           (int)st.n, st.p, f->max_step);
    }
    const char *dash = tok_chr(left, '-');
    if (tok_is(left, "*")) {
        if (in_list)
            return err_set(err, EINVAL, "%s: '*' cannot be part of a list", f->name);
        a = f->min, z = f->max;
    } else if (dash) {
        struct tok lo = {left.p, (size_t)(dash - left.p)};
        struct tok hi = {dash + 1, left.n - lo.n - 1};
        if ((r = parse_value(f, lo, &a, err)) < 0 || (r = parse_value(f, hi, &z, err)) < 0)
            return r;
    } else {
        if ((r = parse_value(f, left, &a, err)) < 0)
            return r;
        z = slash ? f->max : a;
    }
    if (a <= z) {
        for (int v = a; v <= z; v += step)
            bits_set(b, v - f->offset);
        return 0;
    }
    /* A range that wraps past the field's end, like hours 20-2 or FRI-MON. */
    if (f == &f_year)
        return err_set(err, EINVAL, "year range '%.*s' runs backwards", (int)left.n, left.p);
    int size = f->max - f->min + 1, span = z - a + size;
    for (int off = 0; off <= span; off += step)
        bits_set(b, f->min + (a - f->min + off) % size - f->offset);
    return 0;
}

static int parse_list(const struct field *f, struct tok t, struct nb_schedule_bits *b,
                      struct nb_err *err)
{
    bool in_list = tok_chr(t, ',') != NULL;
    const char *p = t.p, *end = t.p + t.n;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        struct tok item = {p, (size_t)((comma ? comma : end) - p)};
        if (item.n == 0)
            return err_set(err, EINVAL, "%s has an empty list element", f->name);
        int r = parse_item(f, item, in_list, b, err);
        if (r < 0)
            return r;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int parse_dom(struct nb_schedule *s, struct tok t, struct nb_err *err)
{
    if (tok_is(t, "?")) {
        s->dom = SCHEDULE_DOM_ANY;
        return 0;
    }
    if (tok_is(t, "L")) {
        s->dom = SCHEDULE_DOM_LAST;
        return 0;
    }
    if (tok_is(t, "LW")) {
        s->dom = SCHEDULE_DOM_LAST_WEEKDAY;
        return 0;
    }
    if (t.n >= 2 && (t.p[t.n - 1] == 'W' || t.p[t.n - 1] == 'w') &&
        all_digits((struct tok){t.p, t.n - 1})) {
        s->dom = SCHEDULE_DOM_NEAREST_WEEKDAY;
        return parse_value(&f_dom, (struct tok){t.p, t.n - 1}, &s->dom_day, err);
    }
    if (strcspn(t.p, "LlWw?") < t.n)
        return err_set(err, EINVAL, "day-of-month '%.*s': 'L', 'LW', 'nW' and '?' must stand alone",
                       (int)t.n, t.p);
    s->dom = SCHEDULE_DOM_SET;
    return parse_list(&f_dom, t, &s->days, err);
}

static int parse_dow(struct nb_schedule *s, struct tok t, struct nb_err *err)
{
    if (tok_is(t, "?")) {
        s->dow = SCHEDULE_DOW_ANY;
        return 0;
    }
    if (tok_is(t, "L")) { /* the last day of the week: Saturday */
        s->dow = SCHEDULE_DOW_SET;
        bits_set(&s->weekdays, 7);
        return 0;
    }
    const char *hash = tok_chr(t, '#');
    if (hash) {
        if (tok_chr(t, ','))
            return err_set(err, EINVAL, "day-of-week '%.*s': only one '#' expression is allowed",
                           (int)t.n, t.p);
        struct tok k = {hash + 1, t.n - (size_t)(hash - t.p) - 1};
        if (k.n != 1 || k.p[0] < '1' || k.p[0] > '5')
            return err_set(err, EINVAL, "day-of-week '%.*s': the number after '#' must be 1-5",
                           (int)t.n, t.p);
        s->dow = SCHEDULE_DOW_NTH;
        s->dow_nth = k.p[0] - '0';
        return parse_value(&f_dow, (struct tok){t.p, (size_t)(hash - t.p)}, &s->dow_day, err);
    }
    if (t.n >= 2 && (t.p[t.n - 1] == 'L' || t.p[t.n - 1] == 'l')) {
        s->dow = SCHEDULE_DOW_LAST;
        return parse_value(&f_dow, (struct tok){t.p, t.n - 1}, &s->dow_day, err);
    }
    if (tok_chr(t, '?'))
        return err_set(err, EINVAL, "day-of-week '%.*s': '?' must stand alone", (int)t.n, t.p);
    s->dow = SCHEDULE_DOW_SET;
    return parse_list(&f_dow, t, &s->weekdays, err);
}

static int parse_cron(struct nb_schedule *s, struct tok body, struct nb_err *err)
{
    struct tok f[6];
    int n = 0;
    if (body.n == 0 || body.p[0] == ' ' || body.p[body.n - 1] == ' ')
        return err_set(err, EINVAL, "cron fields must not be empty or start or end with a space");
    for (size_t i = 0; i < body.n;) {
        size_t j = i;
        while (j < body.n && body.p[j] != ' ')
            j++;
        if (n < 6)
            f[n] = (struct tok){body.p + i, j - i};
        n++;
        while (j < body.n && body.p[j] == ' ')
            j++;
        i = j;
    }
    if (n != 6)
        return err_set(err, EINVAL,
                       "cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
                       "not %d",
                       n);
    s->kind = SCHEDULE_CRON;
    int r;
    if ((r = parse_list(&f_minutes, f[0], &s->minutes, err)) < 0 ||
        (r = parse_list(&f_hours, f[1], &s->hours, err)) < 0 || (r = parse_dom(s, f[2], err)) < 0 ||
        (r = parse_list(&f_month, f[3], &s->months, err)) < 0 ||
        (r = parse_dow(s, f[4], err)) < 0 || (r = parse_list(&f_year, f[5], &s->years, err)) < 0)
        return r;
    if (s->dom == SCHEDULE_DOM_ANY && s->dow == SCHEDULE_DOW_ANY)
        return err_set(err, EINVAL, "day-of-month and day-of-week cannot both be '?'");
    if (s->dom != SCHEDULE_DOM_ANY && s->dow != SCHEDULE_DOW_ANY)
        return err_set(err, EINVAL, "one of day-of-month and day-of-week must be '?'");
    return 0;
}

static int parse_rate(struct nb_schedule *s, struct tok body, int64_t anchor_s, struct nb_err *err)
{
    static const struct {
        const char *one, *many;
        int64_t seconds;
    } units[] = {{"minute", "minutes", 60}, {"hour", "hours", 3600}, {"day", "days", 86400}};
    size_t i = 0;
    while (i < body.n && body.p[i] >= '0' && body.p[i] <= '9')
        i++;
    struct tok num = {body.p, i};
    if (i == 0 || i >= body.n || body.p[i] != ' ')
        return err_set(err, EINVAL, "rate takes a positive whole number, a space and a unit");
    while (i < body.n && body.p[i] == ' ')
        i++;
    struct tok unit = {body.p + i, body.n - i};
    int64_t value = 0;
    for (size_t k = 0; k < num.n && value <= INT32_MAX; k++)
        value = value * 10 + (num.p[k] - '0');
    if (value < 1 || value > INT32_MAX)
        return err_set(err, EINVAL, "rate value '%.*s' is not a number 1-%d", (int)num.n, num.p,
                       INT32_MAX);
    for (size_t u = 0; u < ARRAY_SIZE(units); u++) {
        const char *want = value == 1 ? units[u].one : units[u].many;
        const char *other = value == 1 ? units[u].many : units[u].one;
        bool is_want = unit.n == strlen(want) && memcmp(unit.p, want, unit.n) == 0;
        bool is_other = unit.n == strlen(other) && memcmp(unit.p, other, unit.n) == 0;
        if (is_other)
            return err_set(err, EINVAL, "rate of %lld takes the unit '%s', not '%s'",
                           (long long)value, want, other);
        if (is_want) {
            if (anchor_s < -SCHEDULE_TIME_LIMIT || anchor_s > SCHEDULE_TIME_LIMIT)
                return err_set(err, EINVAL, "rate anchor %lld is out of range",
                               (long long)anchor_s);
            s->kind = SCHEDULE_RATE;
            s->period_s = value * units[u].seconds;
            s->anchor_s = anchor_s;
            return 0;
        }
    }
    return err_set(err, EINVAL, "rate unit '%.*s' is not one of minute(s), hour(s), day(s)",
                   (int)unit.n, unit.p);
}

int schedule_parse(const char *expr, int64_t anchor_s, struct nb_schedule *out, struct nb_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!expr || !*expr)
        return err_set(err, EINVAL, "schedule expression is empty");
    size_t n = strnlen(expr, SCHEDULE_EXPR_MAX + 1);
    if (n > SCHEDULE_EXPR_MAX)
        return err_set(err, EINVAL, "schedule expression is longer than %d characters",
                       SCHEDULE_EXPR_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)expr[i] < 0x20 || (unsigned char)expr[i] > 0x7e)
            return err_set(err, EINVAL,
                           "schedule expression contains a control or non-ASCII character");
    int r;
    struct tok body = {expr + 5, n >= 6 ? n - 6 : 0};
    if (n >= 6 && strncmp(expr, "rate(", 5) == 0 && expr[n - 1] == ')')
        r = parse_rate(out, body, anchor_s, err);
    else if (n >= 6 && strncmp(expr, "cron(", 5) == 0 && expr[n - 1] == ')')
        r = parse_cron(out, body, err);
    else
        return err_set(err, EINVAL, "schedule expression '%s' is neither rate(...) nor cron(...)",
                       expr);
    if (r < 0)
        err_prefix(err, "schedule expression '%s' is not valid", expr);
    return r;
}
