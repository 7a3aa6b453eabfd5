/*
 * cmd_stats.c - `nimbus stats NAME`: one function's figures from GET /metrics, for humans.
 *
 * Reads the Prometheus text the daemon serves (metrics.c, read with prom_text.h), keeps the
 * nimbus_function_* samples labelled function="NAME", adds up the series of its versions, and
 * prints one "key: value" line per figure: the versions seen, counters, duration and init
 * duration p50/p99 estimated from the histogram buckets (metrics_quantile), concurrent executions
 * and instances by state. A function
 * with no sample is not deployed: that is reported like an API error (exit 3). Samples are matched
 * by name and labels, so new families or labels in the exposition do not break it.
 */
#include <errno.h>
#include <math.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/prom_text.h"
#include "metrics.h"

static const char usage[] =
    "usage: nimbus stats NAME [options]\n"
    "\n"
    "Shows a function's invocations, errors, throttles, cold starts,\n"
    "duration percentiles (estimated from histogram buckets) and instances.\n"
    "\n"
    "options:\n" CLI_COMMON_HELP;

#define MAX_VERSIONS 32

struct hist {
    double le[NB_HIST_BUCKETS];
    uint64_t cum[NB_HIST_BUCKETS];
    size_t n;
};

struct stats {
    const char *fn; /* the function asked for */
    bool found;
    double invocations, errors, timeouts, throttles, cold_starts, concurrent;
    double idle, busy, starting;
    struct hist duration, init;
    char versions[MAX_VERSIONS][64];
    size_t n_versions;
};

/* Adds a cumulative bucket; the versions' series share the bounds, so their counts add up. */
static void add_bucket(struct hist *h, const char *le, double v)
{
    double ms = !strcmp(le, "+Inf") ? INFINITY : strtod(le, NULL) * 1000.0;
    for (size_t i = 0; i < h->n; i++)
        if (h->le[i] == ms) {
            h->cum[i] += v >= 0 && v < 1e18 ? (uint64_t)v : 0;
            return;
        }
    if (h->n >= NB_HIST_BUCKETS)
        return;
    h->le[h->n] = ms;
    h->cum[h->n++] = v >= 0 && v < 1e18 ? (uint64_t)v : 0;
}

static void add_version(struct stats *st, const char *version)
{
    if (!version[0])
        return;
    for (size_t i = 0; i < st->n_versions; i++)
        if (!strcmp(st->versions[i], version))
            return;
    if (st->n_versions < MAX_VERSIONS)
        snprintf(st->versions[st->n_versions++], sizeof(st->versions[0]), "%s", version);
}

/* A sample of the exposition (prom_sample_cb): kept when it is one of fn's. */
static void take(void *data, const char *name, const struct prom_label *labels, size_t n, double v)
{
    struct stats *st = data;
    if (strncmp(name, "nimbus_function_", 16) || strcmp(prom_label(labels, n, "function"), st->fn))
        return;
    const char *le = prom_label(labels, n, "le"), *state = prom_label(labels, n, "state");
    struct {
        const char *name;
        double *dst;
    } scalars[] = {
        {"nimbus_function_invocations_total", &st->invocations},
        {"nimbus_function_errors_total", &st->errors},
        {"nimbus_function_timeouts_total", &st->timeouts},
        {"nimbus_function_throttles_total", &st->throttles},
        {"nimbus_function_cold_starts_total", &st->cold_starts},
        {"nimbus_function_concurrent_executions", &st->concurrent},
    };
    st->found = true;
    add_version(st, prom_label(labels, n, "version"));
    for (size_t i = 0; i < ARRAY_SIZE(scalars); i++)
        if (!strcmp(name, scalars[i].name)) {
            *scalars[i].dst += v; /* summed over the versions' series */
            return;
        }
    if (!strcmp(name, "nimbus_function_duration_seconds_bucket"))
        add_bucket(&st->duration, le, v);
    else if (!strcmp(name, "nimbus_function_init_duration_seconds_bucket"))
        add_bucket(&st->init, le, v);
    else if (!strcmp(name, "nimbus_function_instances") && !strcmp(state, "idle"))
        st->idle = v;
    else if (!strcmp(name, "nimbus_function_instances") && !strcmp(state, "busy"))
        st->busy = v;
    else if (!strcmp(name, "nimbus_function_instances") && !strcmp(state, "starting"))
        st->starting = v;
}

static void print_ms(const char *key, const struct hist *h, double q)
{
    double ms = metrics_quantile(h->le, h->cum, h->n, q);
    if (ms < 0)
        printf("%s: -\n", key);
    else
        printf("%s: %.2f ms\n", key, ms);
}

static int stats(struct nb_client *c, const char *fn, struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    struct nb_client_req req = {.method = "GET", .path = "/metrics"};
    int r = client_request(c, &req, &resp, err);
    if (r == 0)
        r = client_check(&resp, err);
    struct stats st = {0};
    st.fn = fn;
    if (r == 0 && resp.body.data)
        r = prom_text_parse(resp.body.data, take, &st, err);
    client_resp_release(&resp);
    if (r < 0)
        return r;
    if (!st.found)
        return err_set(err, EREMOTEIO, "function '%s' not found", fn);
    printf("function: %s\n", fn);
    printf("versions:");
    for (size_t i = 0; i < st.n_versions; i++)
        printf("%s%s", i ? ", " : " ", st.versions[i]);
    printf("\n");
    printf("invocations: %.0f\n", st.invocations);
    printf("errors: %.0f\n", st.errors);
    printf("timeouts: %.0f\n", st.timeouts);
    printf("throttles: %.0f\n", st.throttles);
    printf("cold starts: %.0f\n", st.cold_starts);
    print_ms("duration p50", &st.duration, 0.5);
    print_ms("duration p99", &st.duration, 0.99);
    print_ms("init duration p50", &st.init, 0.5);
    print_ms("init duration p99", &st.init, 0.99);
    printf("concurrent executions: %.0f\n", st.concurrent);
    printf("instances: %.0f (idle %.0f, busy %.0f, starting %.0f)\n",
           st.idle + st.busy + st.starting, st.idle, st.busy, st.starting);
    return 0;
}

int cmd_stats(int argc, char **argv)
{
    const char *endpoint;
    int rc = cli_common_args(argc, argv, usage, &endpoint);
    if (rc >= 0)
        return rc;
    if (optind >= argc || !argv[optind][0])
        return cli_usage_error(usage, "missing NAME");
    if (optind + 1 < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind + 1]);

    struct nb_err err = {0};
    struct nb_client cl;
    int r = client_init(&cl, endpoint, &err);
    if (r == 0)
        r = stats(&cl, argv[optind], &err);
    return cli_finish(&cl, r, &err);
}
