/*
 * schedule_bench.c - the cost of schedule_next/schedule_prev for dense, sparse and never-firing
 * expressions, next to a baseline measured in the same run: one libc gmtime_r + timegm pair (the
 * cheapest way to do any calendar arithmetic at all). Run by hand (bench/README.md); about 6 s.
 *
 *     ./build/bench/schedule_bench
 */
#include <time.h>

#include "schedule.h"
#include "util.h"

#define BATCH 1000
#define MIN_NS 300000000ULL /* measure each figure for at least 0.3 s */

static volatile int64_t sink;

/* ns per call of schedule_next (prev = false) or schedule_prev over spread-out instants. */
static double measure(const struct nb_schedule *s, int64_t t0, bool prev)
{
    uint64_t start = mono_ns(), n = 0;
    while (mono_ns() - start < MIN_NS) {
        for (int i = 0; i < BATCH; i++, n++) {
            int64_t at = t0 + (int64_t)(n % 100000) * 7919, out;
            if ((prev ? schedule_prev(s, at, &out) : schedule_next(s, at, &out)) == 0)
                sink += out;
        }
    }
    return (double)(mono_ns() - start) / (double)n;
}

static double measure_baseline(int64_t t0)
{
    uint64_t start = mono_ns(), n = 0;
    while (mono_ns() - start < MIN_NS) {
        for (int i = 0; i < BATCH; i++, n++) {
            time_t t = (time_t)(t0 + (int64_t)(n % 100000) * 7919);
            struct tm tm;
            gmtime_r(&t, &tm);
            tm.tm_mday++;
            sink += timegm(&tm);
        }
    }
    return (double)(mono_ns() - start) / (double)n;
}

int main(void)
{
    static const char *const exprs[] = {
        "cron(* * ? * * *)",        /* every minute */
        "cron(0/15 * * * ? *)",     /* the guide's "every 15 minutes" */
        "cron(0 18 ? * MON-FRI *)", /* the guide's weekday evenings */
        "cron(15 10 ? * 6L *)",     /* last Friday */
        "cron(0 9 15W * ? *)",      /* nearest weekday */
        "cron(0 0 29 2 ? *)",       /* leap days */
        "cron(0 0 ? FEB 1#5 *)",    /* fifth Sunday of February: every 28 years */
        "cron(0 0 30 2 ? *)",       /* never: walks all 230 years to say so */
        "rate(5 minutes)",
    };
    const int64_t t0 = 1795000000; /* 2026-11-18 */
    printf("%-28s %10.0f ns/call\n", "baseline gmtime_r+timegm", measure_baseline(t0));
    for (size_t e = 0; e < ARRAY_SIZE(exprs); e++) {
        struct nb_schedule s;
        struct nb_err err = {0};
        if (schedule_parse(exprs[e], t0, &s, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double next = measure(&s, t0, false), prev = measure(&s, t0, true);
        printf("%-28s %10.0f ns next %10.0f ns prev\n", exprs[e], next, prev);
    }
    return sink == 42 ? 1 : 0;
}
