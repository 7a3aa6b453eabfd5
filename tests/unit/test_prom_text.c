/*
 * test_prom_text.c - the CLI's Prometheus text reader: names, unescaped labels, special values,
 * an ignored timestamp, skipped comments, and malformed lines refused with their line number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <math.h>

#include "cli/prom_text.h"
#include "util.h"

struct seen {
    char text[1024];
    int n;
};

static void record(void *data, const char *name, const struct prom_label *labels, size_t n,
                   double v)
{
    struct seen *s = data;
    size_t used = strlen(s->text);
    used += (size_t)snprintf(s->text + used, sizeof(s->text) - used, "%s", name);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(s->text + used, sizeof(s->text) - used, "|%s=%s", labels[i].name,
                                 labels[i].value);
    snprintf(s->text + used, sizeof(s->text) - used, " %g;", v);
    s->n++;
}

static void test_parse(void **state)
{
    char text[] = "# HELP a_total x\n# TYPE a_total counter\na_total 3\n\n"
                  "b{function=\"f\\\"q\\\\\\n\",version=\"$LATEST\",} 1.5 1700000000000\n"
                  "c:d +Inf\ne{x=\"\"} NaN\n";
    struct seen s = {{0}, 0};
    struct nb_err err = {0};
    assert_int_equal(prom_text_parse(text, record, &s, &err), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.text,
                        "a_total 3;b|function=f\"q\\\n|version=$LATEST 1.5;c:d inf;e|x= nan;");
}

static void test_label_lookup(void **state)
{
    const struct prom_label l[] = {{"function", "f"}, {"le", "0.5"}};
    assert_string_equal(prom_label(l, 2, "le"), "0.5");
    assert_string_equal(prom_label(l, 2, "state"), "");
}

static void test_rejects(void **state)
{
    const char *bad[] = {
        "x\n",                   /* no value */
        "x{a=\"1} 2\n",          /* unterminated label value */
        "x{a=\"\\t\"} 2\n",      /* bad escape */
        "x{1a=\"1\"} 2\n",       /* bad label name */
        "x{a:b=\"1\"} 2\n",      /* ':' only in metric names */
        "x 1 2 3\n",             /* more than a timestamp */
        "x 1 abc\n",             /* bad timestamp */
        "x  1\n",                /* two spaces */
        "x one\n",               /* bad value */
        "9x 1\n",                /* bad name */
        "x{a=\"1\"b=\"2\"} 1\n", /* no comma */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *t = xasprintf("ok 1\n%s", bad[i]);
        struct seen s = {{0}, 0};
        struct nb_err err = {0};
        assert_int_equal(prom_text_parse(t, record, &s, &err), -EPROTO);
        assert_string_equal(err.msg, "invalid /metrics answer: bad sample on line 2");
        free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_label_lookup),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
