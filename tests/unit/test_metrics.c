/*
 * test_metrics.c - the metrics module: histogram bucketing (inclusive upper bounds, +Inf,
 * negative and NaN observations), the Prometheus text format (label escaping, cumulative buckets,
 * _sum and _count, HELP/TYPE before samples, daemon-wide totals apart from the per-function,
 * per-version families, deleted functions gone) and quantile estimation, on a daemon struct with
 * no loop. The whole exposition goes through a strict checker of the text format 0.0.4 written
 * here (prom_check), which is itself tested on expositions it must reject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
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
    metrics_append_histogram(&b, "x_seconds", "function=\"q\\\"f\"", &h);
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
                       "x_seconds_sum{function=\"q\\\"f\"} 1000000.077\n"
                       "x_seconds_count{function=\"q\\\"f\"} 4\n";
    assert_string_equal(b.data, want);
    buf_release(&b);
}

/* ---- prom_check: a strict reader of the Prometheus text format 0.0.4 ---- */

#define MAX_FAMILIES 128
#define MAX_SERIES 4096

struct fam {
    char name[128], type[16];
    bool help, done;
    int samples;
};

struct series {
    char fam[128], key[512]; /* key: the labels without le */
    bool inf, sum, count;
    double last_le, last_cum, inf_cum, count_v;
    int buckets;
};

struct checker {
    struct fam fams[MAX_FAMILIES];
    int nfams;
    char *seen[MAX_SERIES]; /* "name{labels}" of every sample, for duplicates */
    int nseen;
    struct series *hs;
    int nhs;
    int cur; /* index of the family whose samples are being read, -1 */
    char msg[256];
};

static bool reject(struct checker *c, int line, const char *what)
{
    snprintf(c->msg, sizeof(c->msg), "line %d: %s", line, what);
    return false;
}

static bool is_name(const char *s, size_t n, bool colon)
{
    if (n == 0 || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && !(colon && s[i] == ':'))
            return false;
    return true;
}

static struct fam *fam_get(struct checker *c, const char *name, size_t n)
{
    for (int i = 0; i < c->nfams; i++)
        if (strlen(c->fams[i].name) == n && !strncmp(c->fams[i].name, name, n))
            return &c->fams[i];
    return NULL;
}

static bool parse_value(const char *s, double *v)
{
    if (!strcmp(s, "+Inf") || !strcmp(s, "-Inf") || !strcmp(s, "NaN")) {
        *v = s[0] == 'N' ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return false;
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v);
}

/* "# HELP name text" or "# TYPE name type". */
static bool check_comment(struct checker *c, int ln, const char *line)
{
    bool help = !strncmp(line, "# HELP ", 7), type = !strncmp(line, "# TYPE ", 7);
    if (!help && !type)
        return reject(c, ln, "comment is neither HELP nor TYPE");
    const char *name = line + 7, *sp = strchr(name, ' ');
    if (!sp || !is_name(name, (size_t)(sp - name), true))
        return reject(c, ln, "bad metric name in comment");
    struct fam *f = fam_get(c, name, (size_t)(sp - name));
    if (!f) {
        if (c->nfams == MAX_FAMILIES)
            return reject(c, ln, "too many families");
        f = &c->fams[c->nfams++];
        snprintf(f->name, sizeof(f->name), "%.*s", (int)(sp - name), name);
    }
    if (f->samples || f->done)
        return reject(c, ln, "HELP or TYPE after the family's samples");
    const char *rest = sp + 1;
    if (help) {
        if (f->help)
            return reject(c, ln, "second HELP");
        for (const char *p = rest; *p; p++)
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                return reject(c, ln, "bad escape in HELP");
            else if (*p == '\\')
                p++;
        f->help = true;
        return true;
    }
    if (f->type[0])
        return reject(c, ln, "second TYPE");
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        if (!strcmp(rest, types[i]))
            snprintf(f->type, sizeof(f->type), "%s", rest);
    if (!f->type[0])
        return reject(c, ln, "unknown TYPE");
    if (!strcmp(f->type, "counter") &&
        (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total")))
        return reject(c, ln, "counter name does not end in _total");
    return true;
}

/* Parses {labels} at *p; appends `k="v"` pairs except le to key; sets le (raw) if present. */
static bool parse_labels(struct checker *c, int ln, const char **p, char *key, size_t keycap,
                         char *le, size_t lecap)
{
    const char *s = *p + 1;
    char names[16][64];
    int nnames = 0;
    key[0] = le[0] = '\0';
    bool have_le = false;
    while (*s != '}') {
        const char *k = s;
        while (*s && *s != '=')
            s++;
        size_t kn = (size_t)(s - k);
        if (!is_name(k, kn, false) || (kn >= 2 && k[0] == '_' && k[1] == '_') || kn >= 64)
            return reject(c, ln, "bad label name");
        for (int i = 0; i < nnames; i++)
            if (strlen(names[i]) == kn && !strncmp(names[i], k, kn))
                return reject(c, ln, "label twice");
        if (nnames == 16)
            return reject(c, ln, "too many labels");
        snprintf(names[nnames++], 64, "%.*s", (int)kn, k);
        if (s[0] != '=' || s[1] != '"')
            return reject(c, ln, "label without a quoted value");
        const char *v = s += 2;
        for (; *s && *s != '"'; s++) {
            if (*s == '\\') {
                if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                    return reject(c, ln, "bad escape in label value");
                s++;
            }
        }
        if (*s != '"')
            return reject(c, ln, "unterminated label value");
        bool is_le = kn == 2 && !strncmp(k, "le", 2);
        if (is_le) {
            snprintf(le, lecap, "%.*s", (int)(s - v), v);
            have_le = true;
        } else {
            size_t used = strlen(key);
            snprintf(key + used, keycap - used, "%s%.*s", used ? "," : "", (int)(s - k + 1), k);
        }
        s++;
        if (*s == ',' && s[1] != '}')
            s++;
        else if (*s != '}')
            return reject(c, ln, "bad label separator");
    }
    if (!have_le)
        le[0] = '\0';
    *p = s + 1;
    return true;
}

static struct series *hseries(struct checker *c, const char *fam, const char *key)
{
    for (int i = 0; i < c->nhs; i++)
        if (!strcmp(c->hs[i].fam, fam) && !strcmp(c->hs[i].key, key))
            return &c->hs[i];
    c->hs = xrealloc(c->hs, (size_t)(c->nhs + 1) * sizeof(*c->hs));
    struct series *s = &c->hs[c->nhs++];
    memset(s, 0, sizeof(*s));
    snprintf(s->fam, sizeof(s->fam), "%s", fam);
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->last_le = -INFINITY;
    return s;
}

static bool check_histogram_sample(struct checker *c, int ln, const char *fam, const char *suffix,
                                   const char *key, const char *le, double v)
{
    struct series *s = hseries(c, fam, key);
    if (!strcmp(suffix, "_bucket")) {
        double bound;
        if (!le[0] || !parse_value(le, &bound) || isnan(bound))
            return reject(c, ln, "bucket without a valid le");
        if (s->inf || bound <= s->last_le)
            return reject(c, ln, "buckets not in increasing le order");
        if (v < s->last_cum)
            return reject(c, ln, "buckets not cumulative");
        s->last_le = bound;
        s->last_cum = v;
        s->buckets++;
        if (isinf(bound)) {
            s->inf = true;
            s->inf_cum = v;
        }
        return true;
    }
    if (le[0])
        return reject(c, ln, "le on _sum or _count");
    if (!strcmp(suffix, "_sum")) {
        s->sum = true;
        return true;
    }
    s->count = true;
    s->count_v = v;
    return true;
}

static bool check_sample(struct checker *c, int ln, const char *line)
{
    const char *p = line;
    while (*p && *p != '{' && *p != ' ')
        p++;
    size_t n = (size_t)(p - line);
    if (!is_name(line, n, true))
        return reject(c, ln, "bad metric name");
    char key[512], le[64];
    key[0] = le[0] = '\0';
    if (*p == '{' && !parse_labels(c, ln, &p, key, sizeof(key), le, sizeof(le)))
        return false;
    if (*p != ' ')
        return reject(c, ln, "no space before the value");
    double v;
    if (!parse_value(p + 1, &v))
        return reject(c, ln, "bad value (or a timestamp)");
    /* the family: the name itself, or a histogram's name + _bucket/_sum/_count */
    struct fam *f = fam_get(c, line, n);
    const char *suffix = "";
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; !f && i < ARRAY_SIZE(sfx); i++) {
        size_t sl = strlen(sfx[i]);
        if (n > sl && !strncmp(line + n - sl, sfx[i], sl)) {
            struct fam *h = fam_get(c, line, n - sl);
            if (h && !strcmp(h->type, "histogram")) {
                f = h;
                suffix = sfx[i];
            }
        }
    }
    if (!f || !f->type[0] || !f->help)
        return reject(c, ln, "sample before its family's HELP and TYPE");
    if (!strcmp(f->type, "histogram") && !suffix[0])
        return reject(c, ln, "histogram sample without _bucket, _sum or _count");
    int idx = (int)(f - c->fams);
    if (c->cur != idx) {
        if (f->done)
            return reject(c, ln, "family split");
        if (c->cur >= 0)
            c->fams[c->cur].done = true;
        c->cur = idx;
    }
    if (le[0] && strcmp(suffix, "_bucket"))
        return reject(c, ln, "le label outside a histogram bucket");
    if (!strcmp(f->type, "counter") && !(v >= 0))
        return reject(c, ln, "negative or NaN counter");
    char id[700];
    snprintf(id, sizeof(id), "%.*s{%s,le=%s}", (int)n, line, key, le);
    for (int i = 0; i < c->nseen; i++)
        if (!strcmp(c->seen[i], id))
            return reject(c, ln, "duplicate series");
    if (c->nseen == MAX_SERIES)
        return reject(c, ln, "too many samples");
    c->seen[c->nseen++] = xstrdup(id);
    f->samples++;
    if (suffix[0])
        return check_histogram_sample(c, ln, f->name, suffix, key, le, v);
    return true;
}

/* Checks text strictly; returns NULL when valid, else a message (static storage). */
static const char *prom_check(const char *text)
{
    static struct checker c;
    for (int i = 0; i < c.nseen; i++)
        free(c.seen[i]);
    free(c.hs);
    memset(&c, 0, sizeof(c));
    c.cur = -1;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return "exposition does not end with a newline";
    int ln = 0;
    bool ok = true;
    for (const char *line = text; ok && *line;) {
        const char *nl = strchr(line, '\n');
        char *one = xstrndup(line, (size_t)(nl - line));
        ln++;
        if (!one[0])
            ok = reject(&c, ln, "empty line");
        else if (one[0] == '#')
            ok = check_comment(&c, ln, one);
        else
            ok = check_sample(&c, ln, one);
        free(one);
        line = nl + 1;
    }
    for (int i = 0; ok && i < c.nhs; i++) {
        struct series *s = &c.hs[i];
        if (!s->inf)
            ok = reject(&c, 0, "histogram series without a +Inf bucket");
        else if (!s->sum || !s->count)
            ok = reject(&c, 0, "histogram series without _sum or _count");
        else if (s->inf_cum != s->count_v)
            ok = reject(&c, 0, "+Inf bucket differs from _count");
    }
    for (int i = 0; ok && i < c.nfams; i++)
        if (!c.fams[i].type[0] || !c.fams[i].help)
            ok = reject(&c, 0, "family without HELP or TYPE");
    return ok ? NULL : c.msg;
}

static void test_checker_rejects(void **state)
{
    const char *good =
        "# HELP h_seconds x\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{a=\"1\",le=\"1\"} 1\nh_seconds_bucket{a=\"1\",le=\"+Inf\"} 2\n"
        "h_seconds_sum{a=\"1\"} 3\nh_seconds_count{a=\"1\"} 2\n"
        "# HELP c_total y \\\\ \\n\n# TYPE c_total counter\nc_total{l=\"a\\\"\\n\\\\\"} 1\n";
    assert_null(prom_check(good));
    const char *bad[] = {
        "x 1\n",                                              /* no HELP/TYPE */
        "# HELP x y\n# TYPE x gauge\nx{a=\"b} 1\n",           /* unterminated label */
        "# HELP x y\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",       /* bad escape */
        "# HELP x y\n# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", /* label twice */
        "# HELP x y\n# TYPE x gauge\nx 1\n# HELP z y\n# TYPE z gauge\nz 1\nx 2\n", /* split */
        "# HELP x y\n# TYPE x gauge\n# TYPE x gauge\nx 1\n",                       /* TYPE twice */
        "# HELP x y\n# TYPE x gauge\nx 1\n# HELP x y\n",          /* HELP after samples */
        "# HELP x y\n# TYPE x counter\nx 1\n",                    /* counter without _total */
        "# HELP x_total y\n# TYPE x_total counter\nx_total -1\n", /* negative counter */
        "# HELP x y\n# TYPE x gauge\nx 1\nx 2\n",                 /* duplicate series */
        "# HELP x y\n# TYPE x gauge\nx 1 123\n",                  /* timestamp */
        "# HELP x y\n# TYPE x gauge\nx 1",                        /* no final newline */
        "# HELP x y\n# TYPE x gauge\n\nx 1\n",                    /* empty line */
        "# HELP x y\n# TYPE x gauge\nx{__a=\"1\"} 1\n",           /* reserved label */
        "# HELP x y\n# TYPE x bogus\nx 1\n",                      /* unknown type */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_non_null(prom_check(bad[i]));
    /* histogram rules, each broken once */
    struct {
        const char *from, *to;
    } hist[] = {
        {"h_seconds_count{a=\"1\"} 2", "h_seconds_count{a=\"1\"} 3"}, /* +Inf != _count */
        {"le=\"1\"} 1", "le=\"1\"} 5"},                               /* not cumulative */
        {"le=\"+Inf\"", "le=\"2\""},                                  /* no +Inf */
        {"h_seconds_sum{a=\"1\"} 3\n", ""},                           /* no _sum */
        {"le=\"1\"", "le=\"x\""},                                     /* bad le */
    };
    for (size_t i = 0; i < ARRAY_SIZE(hist); i++) {
        const char *at = strstr(good, hist[i].from);
        assert_non_null(at);
        char *t =
            xasprintf("%.*s%s%s", (int)(at - good), good, hist[i].to, at + strlen(hist[i].from));
        assert_non_null(prom_check(t));
        free(t);
    }
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

/* A snapshot of fn under another version, as a published version would be. */
static struct nb_function *as_version(struct nb_fn *fn, const char *version)
{
    struct nb_function *v = function_with_concurrency(fn->cfg, fn->cfg->reserved_concurrency);
    free(v->version);
    v->version = xstrdup(version);
    return v;
}

static void test_render(void **state)
{
    struct nb_fn *a = add_fn("alpha"), *b = add_fn("beta"), *q = add_fn("q");
    free(q->name);
    q->name = xstrdup("we\"ird\\na\nme"); /* not a valid name: the escaping is what is tested */
    struct nb_function *v1 = as_version(a, "1");
    metrics_invocation(&D, a, a->cfg, NB_OK, 2);
    metrics_invocation(&D, a, a->cfg, NB_FN_ERROR, 7);
    metrics_invocation(&D, a, v1, NB_OK, 30);
    metrics_invocation(&D, b, b->cfg, NB_TIMEOUT, 3000);
    metrics_throttle(&D, a, a->cfg);
    metrics_cold_start(&D, a, a->cfg, 12);
    metrics_cold_start(&D, a, v1, 20);
    assert_null(pool_admit(&D, b, b->cfg));
    struct nb_instance *inst = xcalloc(1, sizeof(*inst));
    fn_ref(b);
    inst->fn = b;
    inst->state = INST_STARTING;
    pool_link(inst);

    struct nb_buf out = NB_BUF_INIT;
    metrics_render(&D, &out);
    const char *t = out.data;
    const char *bad = prom_check(t);
    if (bad)
        fail_msg("%s\n%s", bad, t);
    /* daemon-wide totals: unlabelled families of their own */
    const char *help = line_at(t, "# HELP nimbus_invocations_total ");
    const char *type = line_at(t, "# TYPE nimbus_invocations_total counter\n");
    const char *total = line_at(t, "nimbus_invocations_total 4\n");
    assert_non_null(help);
    assert_true(help < type && type < total);
    assert_non_null(line_at(t, "nimbus_errors_total 2\n")); /* the timeout too, like Lambda */
    assert_non_null(line_at(t, "nimbus_timeouts_total 1\n"));
    assert_non_null(line_at(t, "nimbus_throttles_total 1\n"));
    assert_non_null(line_at(t, "nimbus_cold_starts_total 2\n"));
    assert_non_null(line_at(t, "nimbus_concurrent_executions 1\n"));
    assert_non_null(line_at(t, "nimbus_functions 3\n"));
    assert_non_null(line_at(t, "nimbus_instances 0\n")); /* d->instances: instance.c's count */
    assert_non_null(line_at(t, "nimbus_warm_instances 0\n"));
    assert_non_null(line_at(t, "nimbus_parked_sandboxes 0\n"));
    assert_non_null(line_at(t, "nimbus_netns_pool_free 0\n"));
    assert_non_null(line_at(t, "nimbus_build_info{version=\""));
    /* per function and version */
    const char *al = "{function=\"alpha\",version=\"$LATEST\"}";
    const char *a1 = "{function=\"alpha\",version=\"1\"}";
    char want[256];
#define HAS(fmt, ...)                                                                              \
    do {                                                                                           \
        snprintf(want, sizeof(want), fmt, __VA_ARGS__);                                            \
        if (!line_at(t, want))                                                                     \
            fail_msg("missing line '%s' in\n%s", want, t);                                         \
    } while (0)
    HAS("nimbus_function_invocations_total%s 2\n", al);
    HAS("nimbus_function_invocations_total%s 1\n", a1);
    HAS("nimbus_function_invocations_total%s 1\n", "{function=\"beta\",version=\"$LATEST\"}");
    HAS("nimbus_function_errors_total%s 1\n", al);
    HAS("nimbus_function_errors_total%s 0\n", a1);
    HAS("nimbus_function_timeouts_total%s 1\n", "{function=\"beta\",version=\"$LATEST\"}");
    HAS("nimbus_function_errors_total%s 1\n", "{function=\"beta\",version=\"$LATEST\"}");
    HAS("nimbus_function_throttles_total%s 1\n", al);
    HAS("nimbus_function_cold_starts_total%s 1\n", a1);
    HAS("nimbus_function_duration_seconds_bucket{%s,le=\"0.005\"} 1\n",
        "function=\"alpha\",version=\"$LATEST\"");
    HAS("nimbus_function_duration_seconds_bucket{%s,le=\"0.01\"} 2\n",
        "function=\"alpha\",version=\"$LATEST\"");
    HAS("nimbus_function_duration_seconds_bucket{%s,le=\"+Inf\"} 1\n",
        "function=\"alpha\",version=\"1\"");
    HAS("nimbus_function_duration_seconds_sum%s 0.009\n", al);
    HAS("nimbus_function_duration_seconds_sum%s 0.03\n", a1);
    HAS("nimbus_function_init_duration_seconds_count%s 1\n", al);
    HAS("nimbus_function_init_duration_seconds_count%s 0\n",
        "{function=\"beta\",version=\"$LATEST\"}");
    HAS("nimbus_function_concurrent_executions%s 1\n", "{function=\"beta\"}");
    HAS("nimbus_function_instances%s 1\n", "{function=\"beta\",state=\"starting\"}");
    HAS("nimbus_function_instances%s 0\n", "{function=\"beta\",state=\"idle\"}");
    /* a never-invoked function has its zero series; escaping of every special character */
    HAS("nimbus_function_invocations_total%s 0\n",
        "{function=\"we\\\"ird\\\\na\\nme\",version=\"$LATEST\"}");
    /* process figures with the client libraries' names */
    assert_non_null(line_at(t, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(line_at(t, "process_cpu_seconds_total "));
    assert_non_null(line_at(t, "process_start_time_seconds "));
    assert_non_null(line_at(t, "process_resident_memory_bytes "));
    assert_non_null(line_at(t, "process_virtual_memory_bytes "));
    assert_non_null(line_at(t, "process_open_fds "));
    assert_non_null(line_at(t, "process_max_fds "));
    double start = strtod(line_at(t, "process_start_time_seconds ") + 27, NULL);
    assert_true(start > 1.6e9 && start <= (double)now_ms() / 1000 + 1);
    assert_true(strtod(line_at(t, "process_open_fds ") + 17, NULL) >= 3);
    /* every family's HELP and TYPE appear exactly once (the checker enforces it; spot check) */
    assert_int_equal(count(t, "# TYPE nimbus_function_instances "), 1);
    assert_int_equal(count(t, "# HELP nimbus_function_duration_seconds "), 1);
    buf_release(&out);

    /* a deleted function's series disappear; the daemon-wide totals stay */
    registry_remove(&D, a);
    metrics_render(&D, &out);
    assert_null(prom_check(out.data));
    assert_null(strstr(out.data, "\"alpha\""));
    assert_non_null(line_at(out.data, "nimbus_invocations_total 4\n"));
    assert_non_null(line_at(out.data, "nimbus_function_invocations_total{function=\"beta\","
                                      "version=\"$LATEST\"} 1\n"));
    buf_release(&out);

    function_unref(v1);
    pool_release(&D, b, b->cfg);
    pool_unlink(inst);
    fn_unref(inst->fn);
    free(inst);
}

static void test_special_values(void **state)
{
    /* sample values: integers exact, fractions shortest, never "%g"'s exponent-only loss */
    struct nb_buf b = NB_BUF_INIT;
    metrics_gauge(&b, "g", "h", 1234567890123.0);
    metrics_gauge(&b, "f", "h", 0.1);
    metrics_gauge(&b, "n", "h", NAN);
    metrics_gauge(&b, "i", "h", INFINITY);
    assert_string_equal(b.data, "# HELP g h\n# TYPE g gauge\ng 1234567890123\n"
                                "# HELP f h\n# TYPE f gauge\nf 0.1\n"
                                "# HELP n h\n# TYPE n gauge\nn NaN\n"
                                "# HELP i h\n# TYPE i gauge\ni +Inf\n");
    assert_null(prom_check(b.data));
    buf_release(&b);
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
        cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test_setup_teardown(test_render, setup, teardown),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_quantile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
