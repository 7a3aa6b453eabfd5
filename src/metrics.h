/*
 * metrics.h - the daemon's figures for GET /metrics: per-function, per-version counters and
 * duration histograms (struct nb_fn_series, a list hanging off struct nb_fn), daemon-wide totals
 * (d->stats), process figures, and the Prometheus text exposition format 0.0.4 they are rendered
 * in.
 *
 * Families: daemon-wide figures are unlabelled (nimbus_invocations_total, ...); per-function
 * figures are separate families named nimbus_function_* and labelled function="NAME" (plus
 * version="VERSION" for what an invocation records, state="..." for instances), so sum() over a
 * per-function family never double-counts a total. Each event is recorded by exactly one call
 * below, which bumps the daemon-wide total and the series of the snapshot's version (cfg->version:
 * "$LATEST" today; a published version's invocations get their own series with no change here).
 * The totals outlive deleted functions (counters never go down); per-function series disappear
 * with their function. Recording is O(1) and allocates only on a version's first record; rendering
 * walks the registry and instance lists at scrape time. Histograms keep per-bucket counts and are
 * made cumulative when rendered. Loop thread only.
 *
 * Extending: a module with figures of its own (async invocation, ...) writes a
 * `void render_x(struct nb_daemon *, struct nb_buf *)` using metrics_family() and friends and adds
 * it to the sections[] table in metrics.c (one line); names must start with nimbus_, counters
 * end in _total, and each family is written whole.
 */
#ifndef NIMBUS_METRICS_H
#define NIMBUS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct nb_daemon;
struct nb_fn;
struct nb_buf;
struct nb_function;

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
    uint64_t invocations, throttles, cold_starts;
    uint64_t parked_hits;         /* invocations served by a parked instance (prewarm.h) */
    uint64_t function_errors;     /* function errors and timeouts, like Lambda's Errors metric */
    uint64_t timeouts;            /* timeouts alone */
    struct nb_histogram duration; /* every completed invocation */
    struct nb_histogram init_duration; /* every cold start */
};

/* One version's figures; owned by its struct nb_fn (fn->series, oldest first). */
struct nb_fn_series {
    struct nb_fn_series *next;
    char *version; /* "$LATEST", "1", ... */
    struct nb_fn_metrics m;
};

/* Adds one observation of ms milliseconds (negative counts as 0). */
void histogram_observe(struct nb_histogram *h, double ms);

/* An invocation of fn running snapshot cfg completed (invoke_complete) after ms of execution;
 * outcome is an enum nb_outcome (instance.h, which cannot be included here: registry.h includes
 * this header). */
void metrics_invocation(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg,
                        int outcome, double ms);
/* An invocation of fn (snapshot cfg) was refused with 429. */
void metrics_throttle(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
/* An instance of fn (snapshot cfg) finished init for an invocation after init_ms. */
void metrics_cold_start(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg,
                        double init_ms);
/* An invocation of fn (snapshot cfg) found no warm instance and took a parked one. */
void metrics_parked_hit(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
/* The series of fn for version, created (zeroed) on first use. Borrowed; lives as long as fn. */
struct nb_fn_series *metrics_series(struct nb_fn *fn, const char *version);
/* Frees fn's series (called when fn is freed). */
void metrics_fn_release(struct nb_fn *fn);

/* Appends the whole exposition (every family, HELP and TYPE first) to b. */
void metrics_render(struct nb_daemon *d, struct nb_buf *b);

/* Building blocks for render sections. */
/* "# HELP name help\n# TYPE name type\n"; help must not contain a newline or backslash. */
void metrics_family(struct nb_buf *b, const char *name, const char *type, const char *help);
/* Appends v escaped as a label value (backslash, double quote and newline), without quotes. */
void metrics_append_label_value(struct nb_buf *b, const char *v);
/* A whole unlabelled gauge or counter family with one sample. */
void metrics_gauge(struct nb_buf *b, const char *name, const char *help, double v);
void metrics_counter(struct nb_buf *b, const char *name, const char *help, uint64_t v);
/* Appends the _bucket, _sum and _count samples of h (seconds) for family name, labelled with
 * labels (already rendered, e.g. `function="f",version="1"`, or "" for none). */
void metrics_append_histogram(struct nb_buf *b, const char *name, const char *labels,
                              const struct nb_histogram *h);

/*
 * Estimates quantile q (0..1) from n cumulative buckets (upper bounds le[], the last +Inf; counts
 * cum[], non-decreasing) like Prometheus' histogram_quantile: linear inside the bucket, the
 * highest finite bound when the rank falls in +Inf. Returns -1 when there is no observation.
 */
double metrics_quantile(const double *le, const uint64_t *cum, size_t n, double q);

#endif
