/*
 * metrics.c - recording the daemon's figures and rendering them in the Prometheus text format
 * 0.0.4 (metrics.h).
 *
 * Rendering order: each family is written whole (HELP, TYPE, then its samples) so no family is
 * split; within a family the daemon-wide unlabelled sample comes first, then one sample (or one
 * histogram) per present function in name order. Instance states are counted by walking each
 * function's instance list (scrape time, not the invoke path). Process figures come from /proc.
 */
#include "metrics.h"

#include <dirent.h>
#include <unistd.h>

#include "async.h"
#include "daemon.h"
#include "instance.h"
#include "netns_pool.h"
#include "park_pool.h"

const double nb_hist_bounds_ms[NB_HIST_FINITE] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000,
};

void histogram_observe(struct nb_histogram *h, double ms)
{
    if (!(ms > 0))
        ms = 0; /* also NaN */
    size_t i = 0;
    while (i < NB_HIST_FINITE && ms > nb_hist_bounds_ms[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum_ms += ms;
}

void metrics_invocation(struct nb_daemon *d, struct nb_fn *fn, int outcome, double ms)
{
    d->stats.invocations++;
    fn->metrics.invocations++;
    if (outcome == NB_FN_ERROR) {
        d->stats.function_errors++;
        fn->metrics.function_errors++;
    } else if (outcome == NB_TIMEOUT) {
        d->stats.timeouts++;
        fn->metrics.timeouts++;
    }
    histogram_observe(&fn->metrics.duration, ms);
}

void metrics_throttle(struct nb_daemon *d, struct nb_fn *fn)
{
    d->stats.throttles++;
    fn->metrics.throttles++;
}

void metrics_cold_start(struct nb_daemon *d, struct nb_fn *fn, double init_ms)
{
    d->stats.cold_starts++;
    fn->metrics.cold_starts++;
    histogram_observe(&fn->metrics.init_duration, init_ms);
}

void metrics_append_label_value(struct nb_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            buf_appends(b, "\\\\");
        else if (*v == '"')
            buf_appends(b, "\\\"");
        else if (*v == '\n')
            buf_appends(b, "\\n");
        else
            buf_append(b, v, 1);
    }
}

static void family(struct nb_buf *b, const char *name, const char *type, const char *help)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "name{function="fn"" - the caller closes the braces (after more labels, if any). */
static void sample_start(struct nb_buf *b, const char *name, const char *fn_name)
{
    buf_appendf(b, "%s{function=\"", name);
    metrics_append_label_value(b, fn_name);
    buf_appends(b, "\"");
}

void metrics_append_histogram(struct nb_buf *b, const char *name, const char *fn_name,
                              const struct nb_histogram *h)
{
    char bucket[128], sum[128], count[128];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    snprintf(sum, sizeof(sum), "%s_sum", name);
    snprintf(count, sizeof(count), "%s_count", name);
    uint64_t cum = 0;
    for (size_t i = 0; i < NB_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        sample_start(b, bucket, fn_name);
        if (i < NB_HIST_FINITE)
            buf_appendf(b, ",le=\"%g\"", nb_hist_bounds_ms[i] / 1000.0);
        else
            buf_appends(b, ",le=\"+Inf\"");
        buf_appendf(b, "} %llu\n", (unsigned long long)cum);
    }
    sample_start(b, sum, fn_name);
    buf_appendf(b, "} %.6f\n", h->sum_ms / 1000.0);
    sample_start(b, count, fn_name);
    buf_appendf(b, "} %llu\n", (unsigned long long)h->count);
}

static long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return -1;
    return (long long)(resident * (unsigned long long)sysconf(_SC_PAGESIZE));
}

static long long open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

struct counter {
    const char *name, *help;
    uint64_t total;
    size_t offset; /* in struct nb_fn_metrics */
};

static uint64_t fn_counter(const struct nb_fn *fn, size_t offset)
{
    const char *m = (const char *)&fn->metrics;
    uint64_t v;
    memcpy(&v, m + offset, sizeof(v));
    return v;
}

static void render_instances(struct nb_daemon *d, struct nb_buf *b, struct nb_fn **fns, size_t n)
{
    static const char *const states[] = {"starting", "idle", "busy"}; /* INST_STARTING.. */
    family(b, "nimbus_instances", "gauge", "Live function instances.");
    buf_appendf(b, "nimbus_instances %lld\n", (long long)d->instances);
    for (size_t i = 0; i < n; i++) {
        uint64_t count[ARRAY_SIZE(states)] = {0};
        for (struct nb_instance *inst = fns[i]->pool.all_head; inst; inst = inst->all_next)
            if ((size_t)inst->state < ARRAY_SIZE(states))
                count[inst->state]++;
        for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
            sample_start(b, "nimbus_instances", fns[i]->name);
            buf_appendf(b, ",state=\"%s\"} %llu\n", states[s], (unsigned long long)count[s]);
        }
    }
}

static void gauge(struct nb_buf *b, const char *name, const char *help, long long v)
{
    family(b, name, "gauge", help);
    buf_appendf(b, "%s %lld\n", name, v);
}

void metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    _Static_assert(INST_STARTING == 0 && INST_IDLE == 1 && INST_BUSY == 2, "state names");
    struct nb_fn **fns = NULL;
    size_t n = registry_list(d, &fns);

    gauge(b, "nimbus_functions", "Functions deployed.", (long long)d->fn_count);
    const struct counter counters[] = {
        {"nimbus_invocations_total", "Completed invocations.", d->stats.invocations,
         offsetof(struct nb_fn_metrics, invocations)},
        {"nimbus_function_errors_total", "Invocations ending in a function error.",
         d->stats.function_errors, offsetof(struct nb_fn_metrics, function_errors)},
        {"nimbus_timeouts_total", "Invocations that timed out.", d->stats.timeouts,
         offsetof(struct nb_fn_metrics, timeouts)},
        {"nimbus_throttles_total", "Invocations refused with 429.", d->stats.throttles,
         offsetof(struct nb_fn_metrics, throttles)},
        {"nimbus_cold_starts_total", "Invocations that started an instance.", d->stats.cold_starts,
         offsetof(struct nb_fn_metrics, cold_starts)},
    };
    for (size_t c = 0; c < ARRAY_SIZE(counters); c++) {
        family(b, counters[c].name, "counter", counters[c].help);
        buf_appendf(b, "%s %llu\n", counters[c].name, (unsigned long long)counters[c].total);
        for (size_t i = 0; i < n; i++) {
            sample_start(b, counters[c].name, fns[i]->name);
            buf_appendf(b, "} %llu\n", (unsigned long long)fn_counter(fns[i], counters[c].offset));
        }
    }
    family(b, "nimbus_duration_seconds", "histogram", "Invocation duration.");
    for (size_t i = 0; i < n; i++)
        metrics_append_histogram(b, "nimbus_duration_seconds", fns[i]->name,
                                 &fns[i]->metrics.duration);
    family(b, "nimbus_init_duration_seconds", "histogram", "Instance init duration (cold starts).");
    for (size_t i = 0; i < n; i++)
        metrics_append_histogram(b, "nimbus_init_duration_seconds", fns[i]->name,
                                 &fns[i]->metrics.init_duration);
    family(b, "nimbus_concurrent_executions", "gauge", "Invocations in flight.");
    buf_appendf(b, "nimbus_concurrent_executions %lld\n", (long long)d->inflight);
    for (size_t i = 0; i < n; i++) {
        sample_start(b, "nimbus_concurrent_executions", fns[i]->name);
        buf_appendf(b, "} %lld\n", (long long)fns[i]->pool.inflight);
    }
    render_instances(d, b, fns, n);
    gauge(b, "nimbus_parked_sandboxes", "Parked sandboxes ready for new instances.",
          (long long)park_pool_n_ready(d));
    gauge(b, "nimbus_netns_pool_free", "Pooled network namespaces ready for new instances.",
          (long long)netns_pool_n_free(d));
    gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", resident_bytes());
    gauge(b, "process_open_fds", "Number of open file descriptors.", open_fds());
    async_metrics_render(d, b); /* nimbus_async_* (async.c) */
    free(fns);
}

double metrics_quantile(const double *le, const uint64_t *cum, size_t n, double q)
{
    if (n == 0 || cum[n - 1] == 0)
        return -1;
    double rank = q * (double)cum[n - 1];
    size_t i = 0;
    while (i < n - 1 && (double)cum[i] < rank)
        i++;
    if (i == n - 1) /* +Inf */
        return n >= 2 ? le[n - 2] : 0;
    double start = i == 0 ? 0 : le[i - 1];
    uint64_t below = i == 0 ? 0 : cum[i - 1];
    uint64_t in = cum[i] - below;
    if (in == 0)
        return le[i];
    return start + (le[i] - start) * ((rank - (double)below) / (double)in);
}
