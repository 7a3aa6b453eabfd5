/*
 * test_logs.c - function log files: buffered writes reach the day's file, reads filter by time,
 * tokens resume exactly after the last event returned, functions are kept apart, and malformed
 * tokens are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "logs.h"

#define DAY_MS 86400000ull

static char dir[64];
static uv_loop_t loop;
static struct nb_logs *lg;

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/nimbus-test-logs-XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    struct nb_err err = {0};
    lg = logs_new(&loop, dir, &err);
    assert_non_null(lg);
    return 0;
}

static int teardown(void **state)
{
    logs_free(lg);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(dir);
    return 0;
}

static void put(const char *fn, uint64_t ts, const char *msg)
{
    logs_write(lg, fn, "2026/11/26/[$LATEST]abc", ts, msg, strlen(msg));
}

static const char *msg_at(json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_array_get(events, i), "message"));
}

static void test_write_read_since_and_token(void **state)
{
    uint64_t t0 = 1795000000000ull; /* some day in 2026 */
    put("f", t0, "START RequestId: 1 Version: $LATEST");
    put("f", t0 + 5, "hello\twith a tab");
    put("g", t0 + 6, "other function");
    put("f", t0 + 10, "END RequestId: 1");
    json_t *ev;
    char *tok;
    struct nb_err err = {0};
    assert_int_equal(logs_read(lg, "f", t0 + 5, NULL, &ev, &tok, &err), 0);
    assert_int_equal(json_array_size(ev), 2); /* since is inclusive; g's line is not here */
    assert_string_equal(msg_at(ev, 0), "hello\twith a tab");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 0), "timestamp")),
                     (json_int_t)(t0 + 5));
    assert_string_equal(msg_at(ev, 1), "END RequestId: 1");
    json_decref(ev);
    /* nothing new after the token; a new line on the next day follows it */
    char *tok2;
    assert_int_equal(logs_read(lg, "f", 0, tok, &ev, &tok2, &err), 0);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    put("f", t0 + DAY_MS, "next day");
    char *tok3;
    assert_int_equal(logs_read(lg, "f", 0, tok2, &ev, &tok3, &err), 0);
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(msg_at(ev, 0), "next day");
    json_decref(ev);
    free(tok);
    free(tok2);
    free(tok3);
    /* the timer flush path: a line written and the loop run reaches the file without a read */
    put("h", t0, "flushed by the timer");
    uv_run(&loop, UV_RUN_DEFAULT);
    char iso[40];
    fmt_iso8601_ms(t0, iso, sizeof(iso));
    char *path = xasprintf("%s/logs/h/%.10s.log", dir, iso), *text = NULL;
    assert_int_equal(read_file(path, &text, NULL), 0);
    assert_non_null(strstr(text, "\tflushed by the timer\n"));
    free(path);
    free(text);
}

static void test_unknown_function_and_bad_token(void **state)
{
    json_t *ev;
    char *tok;
    struct nb_err err = {0};
    assert_int_equal(logs_read(lg, "nobody", 0, NULL, &ev, &tok, &err), -ENOENT);
    put("f", 1795000000000ull, "x");
    assert_int_equal(logs_read(lg, "f", 0, "garbage", &ev, &tok, &err), -EINVAL);
    assert_int_equal(logs_read(lg, "f", 0, "2026-11-26:-5", &ev, &tok, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_since_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_function_and_bad_token, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
