/*
 * metrics.h - the daemon's figures for GET /metrics: per-function counters and duration
 * histograms (struct nb_fn_metrics, embedded in struct nb_fn), daemon-wide totals (d->stats) and
 * the Prometheus text exposition format 0.0.4 they are rendered in.
 *
 * Each event is recorded by exactly one call below, which bumps both the function's counter and
 * the daemon-wide total; the totals outlive deleted functions (counters never go down), the
 * per-function series disappear with their function. Recording is O(1) and never allocates (it
 * sits on the invoke path); rendering walks the registry and instance lists at scrape time.
 * Histograms keep per-bucket counts and are made cumulative when rendered. Loop thread only.
 */
#ifndef NIMBUS_METRICS_H
#define NIMBUS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct nb_daemon;
struct nb_fn;
struct nb_buf;

/* Finite upper bounds (ms) of the histogram buckets; one more bucket (+Inf) follows them. */
#define NB_HIST_FINITE 16
#define NB_HIST_BUCKETS (NB_HIST_FINITE + 1)
extern const double nb_hist_bounds_ms[NB_HIST_FINITE];

struct nb_histogram {
    uint64_t buckets[NB_HIST_BUCKETS]; /* not cumulative: [i] counts bounds[i-1] < v <= bounds[i] */
    uint64_t count;
    double sum_ms;
};

struct nb_fn_metrics {
    uint64_t invocations, function_errors, timeouts, throttles, cold_starts;
    struct nb_histogram duration;      /* every completed invocation */
    struct nb_histogram init_duration; /* every cold start */
};

/* Adds one observation of ms milliseconds (negative counts as 0). */
void histogram_observe(struct nb_histogram *h, double ms);

/* An invocation of fn completed (invoke_complete) after ms of execution; outcome is an enum
 * nb_outcome (instance.h, which cannot be included here: registry.h includes this header). */
void metrics_invocation(struct nb_daemon *d, struct nb_fn *fn, int outcome, double ms);
/* An invocation of fn was refused with 429. */
void metrics_throttle(struct nb_daemon *d, struct nb_fn *fn);
/* An instance of fn finished init for an invocation after init_ms. */
void metrics_cold_start(struct nb_daemon *d, struct nb_fn *fn, double init_ms);

/* Appends the whole exposition (every family, HELP and TYPE first) to b. */
void metrics_render(struct nb_daemon *d, struct nb_buf *b);
/* Appends v escaped as a label value (backslash, double quote and newline), without quotes. */
void metrics_append_label_value(struct nb_buf *b, const char *v);
/* Appends the _bucket, _sum and _count samples of h (seconds) for family name, labelled
 * function="fn_name". */
void metrics_append_histogram(struct nb_buf *b, const char *name, const char *fn_name,
                              const struct nb_histogram *h);

/*
 * Estimates quantile q (0..1) from n cumulative buckets (upper bounds le[], the last +Inf; counts
 * cum[], non-decreasing) like Prometheus' histogram_quantile: linear inside the bucket, the
 * highest finite bound when the rank falls in +Inf. Returns -1 when there is no observation.
 */
double metrics_quantile(const double *le, const uint64_t *cum, size_t n, double q);

#endif
