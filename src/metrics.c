/*
 * metrics.c - recording the daemon's figures and rendering them in the Prometheus text format
 * 0.0.4 (metrics.h).
 *
 * Rendering is a table of sections (daemon-wide, per function, process); each writes whole
 * families (HELP, TYPE, then every sample) so no family is split and each HELP/TYPE appears once.
 * Within a per-function family, functions come in name order and each function's version series
 * in the order they were first recorded; the current snapshot's version always has a series (zero
 * until used), so a deployed function is visible before its first invocation. Instance states are
 * counted by walking each function's instance list (scrape time, not the invoke path). Process
 * figures come from /proc/self, with the names and units of the Prometheus client libraries.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>

#include "async.h"
#include "daemon.h"
#include "esm.h" /* esm */
#include "instance.h"
#include "netns_pool.h"
#include "park_pool.h"
#include "scheduler.h"
#include "triggers.h"

#ifndef NIMBUS_VERSION
#define NIMBUS_VERSION "unknown"
#endif

const double nb_hist_bounds_ms[NB_HIST_FINITE] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000,
};

/* ---- recording ---- */

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

struct nb_fn_series *metrics_series(struct nb_fn *fn, const char *version)
{
    struct nb_fn_series **tail = &fn->series;
    for (; *tail; tail = &(*tail)->next)
        if (!strcmp((*tail)->version, version))
            return *tail;
    struct nb_fn_series *s = xcalloc(1, sizeof(*s));
    s->version = xstrdup(version);
    *tail = s;
    return s;
}

void metrics_fn_release(struct nb_fn *fn)
{
    struct nb_fn_series *s = fn->series;
    while (s) {
        struct nb_fn_series *next = s->next;
        free(s->version);
        free(s);
        s = next;
    }
    fn->series = NULL;
}

void metrics_invocation(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg,
                        int outcome, double ms)
{
    struct nb_fn_metrics *m = &metrics_series(fn, cfg->version)->m;
    d->stats.invocations++;
    m->invocations++;
    if (outcome == NB_FN_ERROR || outcome == NB_TIMEOUT) { /* Lambda's Errors counts timeouts */
        d->stats.function_errors++;
        m->function_errors++;
    }
    if (outcome == NB_TIMEOUT) {
        d->stats.timeouts++;
        m->timeouts++;
    }
    histogram_observe(&m->duration, ms);
}

void metrics_throttle(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg)
{
    d->stats.throttles++;
    metrics_series(fn, cfg->version)->m.throttles++;
}

void metrics_cold_start(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg,
                        double init_ms)
{
    struct nb_fn_metrics *m = &metrics_series(fn, cfg->version)->m;
    d->stats.cold_starts++;
    m->cold_starts++;
    histogram_observe(&m->init_duration, init_ms);
}

void metrics_parked_hit(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg)
{
    d->stats.parked_hits++;
    metrics_series(fn, cfg->version)->m.parked_hits++;
}

/* ---- exposition building blocks ---- */

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

void metrics_family(struct nb_buf *b, const char *name, const char *type, const char *help)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: integers exactly, other numbers with full precision, Go's spellings of the
 * special values. */
static void append_value(struct nb_buf *b, double v)
{
    if (isnan(v))
        buf_appends(b, "NaN");
    else if (isinf(v))
        buf_appends(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        buf_appendf(b, "%.0f", v);
    else
        for (int prec = 15; prec <= 17; prec++) { /* the shortest text that reads back as v */
            char text[64];
            snprintf(text, sizeof(text), "%.*g", prec, v);
            if (prec == 17 || strtod(text, NULL) == v) {
                buf_appends(b, text);
                break;
            }
        }
}

/* "name{labels} v\n", or "name v\n" when labels is empty. */
static void sample(struct nb_buf *b, const char *name, const char *labels, double v)
{
    buf_appends(b, name);
    if (labels[0])
        buf_appendf(b, "{%s}", labels);
    buf_appends(b, " ");
    append_value(b, v);
    buf_appends(b, "\n");
}

static void sample_u64(struct nb_buf *b, const char *name, const char *labels, uint64_t v)
{
    buf_appends(b, name);
    if (labels[0])
        buf_appendf(b, "{%s}", labels);
    buf_appendf(b, " %llu\n", (unsigned long long)v);
}

void metrics_gauge(struct nb_buf *b, const char *name, const char *help, double v)
{
    metrics_family(b, name, "gauge", help);
    sample(b, name, "", v);
}

void metrics_counter(struct nb_buf *b, const char *name, const char *help, uint64_t v)
{
    metrics_family(b, name, "counter", help);
    sample_u64(b, name, "", v);
}

void metrics_append_histogram(struct nb_buf *b, const char *name, const char *labels,
                              const struct nb_histogram *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < NB_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        buf_appendf(b, "%s_bucket{%s%s", name, labels, sep);
        if (i < NB_HIST_FINITE)
            buf_appendf(b, "le=\"%g\"", nb_hist_bounds_ms[i] / 1000.0);
        else
            buf_appends(b, "le=\"+Inf\"");
        buf_appendf(b, "} %llu\n", (unsigned long long)cum);
    }
    buf_appendf(b, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
    append_value(b, h->sum_ms / 1000.0);
    buf_appendf(b, "\n%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                labels[0] ? "}" : "", (unsigned long long)h->count);
}

/* Sets l to `function="NAME"` (escaped), plus `,version="V"` when version is not NULL. */
static void fn_labels(struct nb_buf *l, const struct nb_fn *fn, const char *version)
{
    buf_reset(l);
    buf_appends(l, "function=\"");
    metrics_append_label_value(l, fn->name);
    buf_appends(l, "\"");
    if (version) {
        buf_appends(l, ",version=\"");
        metrics_append_label_value(l, version);
        buf_appends(l, "\"");
    }
}

/* ---- sections ---- */

static uint64_t idle_instances(struct nb_daemon *d)
{
    uint64_t n = 0;
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            n += fn->pool.n_idle;
    return n;
}

static void render_daemon(struct nb_daemon *d, struct nb_buf *b)
{
    metrics_family(b, "nimbus_build_info", "gauge", "The running nimbus; always 1.");
    sample(b, "nimbus_build_info", "version=\"" NIMBUS_VERSION "\"", 1);
    metrics_gauge(b, "nimbus_functions", "Functions deployed.", (double)d->fn_count);
    metrics_counter(b, "nimbus_invocations_total", "Completed invocations, all functions.",
                    d->stats.invocations);
    metrics_counter(b, "nimbus_errors_total",
                    "Invocations ending in a function error or timeout, all functions.",
                    d->stats.function_errors);
    metrics_counter(b, "nimbus_timeouts_total", "Invocations that timed out, all functions.",
                    d->stats.timeouts);
    metrics_counter(b, "nimbus_throttles_total", "Invocations refused with 429, all functions.",
                    d->stats.throttles);
    metrics_counter(b, "nimbus_cold_starts_total",
                    "Invocations that started an instance, all functions.", d->stats.cold_starts);
    metrics_counter(b, "nimbus_parked_hits_total",
                    "Invocations served by a parked instance (init done ahead), all functions.",
                    d->stats.parked_hits);
    metrics_gauge(b, "nimbus_concurrent_executions", "Invocations in flight, all functions.",
                  (double)d->inflight);
    metrics_gauge(b, "nimbus_instances", "Live function instances, all functions.",
                  (double)d->instances);
    metrics_gauge(b, "nimbus_warm_instances",
                  "Idle (warm) instances waiting for an invocation, all functions.",
                  (double)idle_instances(d));
    metrics_gauge(b, "nimbus_parked_sandboxes", "Parked sandboxes ready for new instances.",
                  (double)park_pool_n_ready(d));
    metrics_gauge(b, "nimbus_parked_instances",
                  "Parked instances (initialized ahead, waiting for a cold invocation), all "
                  "functions.",
                  (double)prewarm_n_ready_all(d));
    metrics_gauge(b, "nimbus_netns_pool_free", "Pooled network namespaces ready for new instances.",
                  (double)netns_pool_n_free(d));
}

/* The per-version counters, in the order of their families. */
static const struct {
    const char *name, *help;
    size_t offset; /* in struct nb_fn_metrics */
} fn_counters[] = {
    {"nimbus_function_invocations_total", "Completed invocations.",
     offsetof(struct nb_fn_metrics, invocations)},
    {"nimbus_function_errors_total", "Invocations ending in a function error or timeout.",
     offsetof(struct nb_fn_metrics, function_errors)},
    {"nimbus_function_timeouts_total", "Invocations that timed out.",
     offsetof(struct nb_fn_metrics, timeouts)},
    {"nimbus_function_throttles_total", "Invocations refused with 429.",
     offsetof(struct nb_fn_metrics, throttles)},
    {"nimbus_function_cold_starts_total", "Invocations that started an instance.",
     offsetof(struct nb_fn_metrics, cold_starts)},
    {"nimbus_function_parked_hits_total",
     "Invocations that found no warm instance and were served by a parked one.",
     offsetof(struct nb_fn_metrics, parked_hits)},
};

static uint64_t counter_at(const struct nb_fn_metrics *m, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)m + offset, sizeof(v));
    return v;
}

static void render_instances(struct nb_buf *b, struct nb_buf *l, struct nb_fn **fns, size_t n)
{
    static const char *const states[] = {"starting", "idle", "busy"}; /* INST_STARTING.. */
    _Static_assert(INST_STARTING == 0 && INST_IDLE == 1 && INST_BUSY == 2, "state names");
    metrics_family(b, "nimbus_function_instances", "gauge", "Live instances by state.");
    for (size_t i = 0; i < n; i++) {
        uint64_t count[ARRAY_SIZE(states)] = {0};
        for (struct nb_instance *inst = fns[i]->pool.all_head; inst; inst = inst->all_next)
            if ((size_t)inst->state < ARRAY_SIZE(states))
                count[inst->state]++;
        for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
            fn_labels(l, fns[i], NULL);
            buf_appendf(l, ",state=\"%s\"", states[s]);
            sample_u64(b, "nimbus_function_instances", l->data, count[s]);
        }
    }
}

static void render_functions(struct nb_daemon *d, struct nb_buf *b)
{
    struct nb_fn **fns = NULL;
    size_t n = registry_list(d, &fns);
    struct nb_buf l = NB_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        metrics_series(fns[i], fns[i]->cfg->version); /* present before its first invocation */

    for (size_t c = 0; c < ARRAY_SIZE(fn_counters); c++) {
        metrics_family(b, fn_counters[c].name, "counter", fn_counters[c].help);
        for (size_t i = 0; i < n; i++)
            for (const struct nb_fn_series *s = fns[i]->series; s; s = s->next) {
                fn_labels(&l, fns[i], s->version);
                sample_u64(b, fn_counters[c].name, l.data,
                           counter_at(&s->m, fn_counters[c].offset));
            }
    }
    metrics_family(b, "nimbus_function_duration_seconds", "histogram", "Invocation duration.");
    for (size_t i = 0; i < n; i++)
        for (const struct nb_fn_series *s = fns[i]->series; s; s = s->next) {
            fn_labels(&l, fns[i], s->version);
            metrics_append_histogram(b, "nimbus_function_duration_seconds", l.data, &s->m.duration);
        }
    metrics_family(b, "nimbus_function_init_duration_seconds", "histogram",
                   "Instance init duration (cold starts).");
    for (size_t i = 0; i < n; i++)
        for (const struct nb_fn_series *s = fns[i]->series; s; s = s->next) {
            fn_labels(&l, fns[i], s->version);
            metrics_append_histogram(b, "nimbus_function_init_duration_seconds", l.data,
                                     &s->m.init_duration);
        }
    metrics_family(b, "nimbus_function_concurrent_executions", "gauge", "Invocations in flight.");
    for (size_t i = 0; i < n; i++) {
        fn_labels(&l, fns[i], NULL);
        sample(b, "nimbus_function_concurrent_executions", l.data, (double)fns[i]->pool.inflight);
    }
    render_instances(b, &l, fns, n);
    metrics_family(b, "nimbus_function_parked_instances", "gauge",
                   "Parked instances ready for a cold invocation (initialized ahead).");
    for (size_t i = 0; i < n; i++) {
        fn_labels(&l, fns[i], NULL);
        sample(b, "nimbus_function_parked_instances", l.data, (double)prewarm_n_ready(fns[i]));
    }
    buf_release(&l);
    free(fns);
}

/* Fields of /proc/self/stat after the command name: [0] is field 3 (state). */
static int proc_stat(unsigned long long *utime, unsigned long long *stime,
                     unsigned long long *start, unsigned long long *vsize)
{
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *p = strrchr(text, ')');
    if (!p)
        return -1;
    /* fields 3..23: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime cutime cstime priority nice threads itrealvalue starttime vsize */
    int n = sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
                   "%llu %llu",
                   utime, stime, start, vsize);
    return n == 4 ? 0 : -1;
}

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return NAN;
    char line[256];
    double bt = NAN;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return NAN;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return NAN;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static double open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return NAN;
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return (double)(n - 1); /* the directory's own fd */
}

static void render_process(struct nb_daemon *d, struct nb_buf *b)
{
    (void)d;
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    bool have = proc_stat(&utime, &stime, &start, &vsize) == 0;
    double tck = (double)sysconf(_SC_CLK_TCK);
    /* getrusage: microseconds, where /proc's utime and stime count 10 ms ticks */
    struct rusage ru;
    double cpu = (double)(utime + stime) / tck;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    metrics_family(b, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    sample(b, "process_cpu_seconds_total", "", cpu);
    metrics_gauge(b, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.",
                  have ? boot_time() + (double)start / tck : NAN);
    metrics_gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
                  resident_bytes());
    metrics_gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  have ? (double)vsize : NAN);
    metrics_gauge(b, "process_open_fds", "Number of open file descriptors.", open_fds());
    struct rlimit rl;
    double max_fds = NAN;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
    metrics_gauge(b, "process_max_fds", "Maximum number of open file descriptors.", max_fds);
}

/* Every section, in output order; a module with figures of its own adds one line here. */
static void (*const sections[])(struct nb_daemon *d, struct nb_buf *b) = {
    render_daemon,
    render_functions,
    render_process,
    async_metrics_render,     /* nimbus_async_* (async.c) */
    public_metrics_render,    /* nimbus_http_*, function URLs, routes (public.c) */
    scheduler_metrics_render, /* nimbus_schedule_* (scheduler.c) */
    esm_metrics_render,       /* esm: nimbus_esm_* (esm.c) */
};

void metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
        sections[i](d, b);
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
