/*
 * test_metrics.c - the metrics module: histogram bucketing (inclusive upper bounds, +Inf,
 * negative and NaN observations), the Prometheus text format (label escaping, cumulative buckets,
 * _sum and _count, HELP/TYPE before samples, unlabelled totals next to per-function series,
 * deleted functions gone) and quantile estimation, on a daemon struct with no loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "config.h"
#include "daemon.h"
#include "daemon_fixture.h"
#include "function.h"
#include "instance.h"
#include "metrics.h"
#include "registry.h"

static struct nb_daemon D;

static int setup(void **state)
{
    fixture_daemon_init(&D);
    return 0;
}

static int teardown(void **state)
{
    fixture_daemon_release(&D);
    return 0;
}

static struct nb_fn *add_fn(const char *name)
{
    return fixture_add_fn(&D, name);
}

static void test_bucketing(void **state)
{
    struct nb_histogram h = {0};
    histogram_observe(&h, 0);      /* le 0.001 */
    histogram_observe(&h, 1);      /* le 0.001: bounds are inclusive */
    histogram_observe(&h, 1.001);  /* le 0.005 */
    histogram_observe(&h, 10);     /* le 0.01 */
    histogram_observe(&h, 10.5);   /* le 0.025 */
    histogram_observe(&h, 900000); /* le 900 */
    histogram_observe(&h, 900001); /* +Inf */
    histogram_observe(&h, -5);     /* clamped to 0 */
    histogram_observe(&h, NAN);    /* clamped to 0 */
    assert_int_equal(h.buckets[0], 4);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[2], 1);
    assert_int_equal(h.buckets[3], 1);
    assert_int_equal(h.buckets[NB_HIST_FINITE - 1], 1);
    assert_int_equal(h.buckets[NB_HIST_FINITE], 1);
    assert_int_equal(h.count, 9);
    assert_true(fabs(h.sum_ms - (1 + 1.001 + 10 + 10.5 + 900000 + 900001)) < 1e-6);
}

static void test_label_escaping(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    metrics_append_label_value(&b, "a\\b\"c\nd-e_f");
    assert_string_equal(b.data, "a\\\\b\\\"c\\nd-e_f");
    buf_release(&b);
}

static void test_histogram_text(void **state)
{
    struct nb_histogram h = {0};
    histogram_observe(&h, 3);
    histogram_observe(&h, 4);
    histogram_observe(&h, 70);
    histogram_observe(&h, 1e9);
    struct nb_buf b = NB_BUF_INIT;
    metrics_append_histogram(&b, "x_seconds", "q\"f", &h);
    const char *want = "x_seconds_bucket{function=\"q\\\"f\",le=\"0.001\"} 0\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.005\"} 2\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.01\"} 2\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.025\"} 2\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.05\"} 2\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.1\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.25\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"0.5\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"1\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"2.5\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"5\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"10\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"30\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"60\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"300\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"900\"} 3\n"
                       "x_seconds_bucket{function=\"q\\\"f\",le=\"+Inf\"} 4\n"
                       "x_seconds_sum{function=\"q\\\"f\"} 1000000.077000\n"
                       "x_seconds_count{function=\"q\\\"f\"} 4\n";
    assert_string_equal(b.data, want);
    buf_release(&b);
}

/* The line of text that starts with prefix, or NULL. */
static const char *line_at(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (!strncmp(p, prefix, n))
            return p;
    }
    return NULL;
}

static int count(const char *text, const char *s)
{
    int n = 0;
    for (const char *p = strstr(text, s); p; p = strstr(p + 1, s))
        n++;
    return n;
}

static void test_render(void **state)
{
    struct nb_fn *a = add_fn("alpha"), *b = add_fn("beta");
    metrics_invocation(&D, a, NB_OK, 2);
    metrics_invocation(&D, a, NB_FN_ERROR, 7);
    metrics_invocation(&D, b, NB_TIMEOUT, 3000);
    metrics_throttle(&D, a);
    metrics_cold_start(&D, a, 12);
    assert_null(pool_admit(&D, b, b->cfg));
    struct nb_instance *inst = xcalloc(1, sizeof(*inst));
    fn_ref(b);
    inst->fn = b;
    inst->state = INST_STARTING;
    pool_link(inst);

    struct nb_buf out = NB_BUF_INIT;
    metrics_render(&D, &out);
    const char *t = out.data;
    const char *help = line_at(t, "# HELP nimbus_invocations_total ");
    const char *type = line_at(t, "# TYPE nimbus_invocations_total counter\n");
    const char *total = line_at(t, "nimbus_invocations_total 3\n");
    assert_non_null(help);
    assert_true(help < type && type < total);
    assert_true(total < line_at(t, "nimbus_invocations_total{function=\"alpha\"} 2\n"));
    assert_non_null(line_at(t, "nimbus_invocations_total{function=\"beta\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_function_errors_total 1\n"));
    assert_non_null(line_at(t, "nimbus_function_errors_total{function=\"alpha\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_function_errors_total{function=\"beta\"} 0\n"));
    assert_non_null(line_at(t, "nimbus_timeouts_total{function=\"beta\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_throttles_total 1\n"));
    assert_non_null(line_at(t, "nimbus_throttles_total{function=\"alpha\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_cold_starts_total{function=\"alpha\"} 1\n"));
    assert_non_null(line_at(t, "# TYPE nimbus_duration_seconds histogram\n"));
    assert_non_null(
        line_at(t, "nimbus_duration_seconds_bucket{function=\"alpha\",le=\"0.005\"} 1\n"));
    assert_non_null(
        line_at(t, "nimbus_duration_seconds_bucket{function=\"alpha\",le=\"0.01\"} 2\n"));
    assert_non_null(line_at(t, "nimbus_duration_seconds_sum{function=\"alpha\"} 0.009000\n"));
    assert_non_null(line_at(t, "nimbus_duration_seconds_count{function=\"beta\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_init_duration_seconds_count{function=\"alpha\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_init_duration_seconds_count{function=\"beta\"} 0\n"));
    assert_non_null(line_at(t, "nimbus_concurrent_executions 1\n"));
    assert_non_null(line_at(t, "nimbus_concurrent_executions{function=\"beta\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_instances{function=\"beta\",state=\"starting\"} 1\n"));
    assert_non_null(line_at(t, "nimbus_instances{function=\"beta\",state=\"idle\"} 0\n"));
    assert_non_null(line_at(t, "nimbus_parked_sandboxes 0\n"));
    assert_non_null(line_at(t, "nimbus_netns_pool_free 0\n"));
    assert_non_null(line_at(t, "process_resident_memory_bytes "));
    assert_non_null(line_at(t, "process_open_fds "));
    /* every family's HELP and TYPE appear exactly once */
    assert_int_equal(count(t, "# TYPE nimbus_instances "), 1);
    assert_int_equal(count(t, "# HELP nimbus_instances "), 1);
    assert_int_equal(count(t, "# TYPE nimbus_invocations_total "), 1);
    assert_int_equal(count(t, "# TYPE nimbus_duration_seconds "), 1);
    buf_release(&out);

    /* a deleted function's series disappear; the daemon-wide totals stay */
    registry_remove(&D, a);
    metrics_render(&D, &out);
    assert_null(strstr(out.data, "\"alpha\""));
    assert_non_null(line_at(out.data, "nimbus_invocations_total 3\n"));
    assert_non_null(line_at(out.data, "nimbus_invocations_total{function=\"beta\"} 1\n"));
    buf_release(&out);

    pool_release(&D, b, b->cfg);
    pool_unlink(inst);
    fn_unref(inst->fn);
    free(inst);
}

static void test_quantile(void **state)
{
    const double le[] = {1, 5, 10, INFINITY};
    const uint64_t none[] = {0, 0, 0, 0};
    assert_true(metrics_quantile(le, none, 4, 0.5) < 0);
    const uint64_t cum[] = {0, 10, 20, 20}; /* 10 in (1,5], 10 in (5,10] */
    assert_true(fabs(metrics_quantile(le, cum, 4, 0.5) - 5) < 1e-9);
    assert_true(fabs(metrics_quantile(le, cum, 4, 0.25) - 3) < 1e-9);
    assert_true(fabs(metrics_quantile(le, cum, 4, 0.99) - 9.9) < 1e-9);
    const uint64_t inf[] = {0, 0, 1, 4}; /* rank in +Inf: the highest finite bound */
    assert_true(fabs(metrics_quantile(le, inf, 4, 0.99) - 10) < 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucketing),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram_text),
        cmocka_unit_test_setup_teardown(test_render, setup, teardown),
        cmocka_unit_test(test_quantile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
