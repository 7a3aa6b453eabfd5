/*
 * test_store.c - unit tests for store_sqlite.c through store.h only (no SQL here either): the
 * -EEXIST/-ENOENT contract, name order, reopening, the WAL journal, the 0600 database file and
 * refusing a database written by a newer schema. Each test gets a fresh temporary data dir.
 *
 * WAL is checked from the outside: while a store is open, a write leaves nimbus.db-wal next to
 * the database, and bytes 18-19 of the database header (file format read/write versions) are 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "store.h"

struct fixture {
    char root[64];
    struct nb_store *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/nb-test-store-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    struct nb_err err = {0};
    f->st = store_open(f->root, &err);
    if (!f->st) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    rm_rf(f->root);
    free(f);
    return 0;
}

static char *db_path(struct fixture *f, const char *suffix)
{
    return xasprintf("%s/nimbus.db%s", f->root, suffix);
}

/* Collects "name=doc;" for every record. */
static int collect(void *data, const char *name, const char *doc)
{
    buf_appendf(data, "%s=%s;", name, doc);
    return 0;
}

static char *dump(struct nb_store *st)
{
    struct nb_buf b = NB_BUF_INIT;
    struct nb_err err = {0};
    assert_int_equal(store_function_each(st, collect, &b, &err), 0);
    return buf_detach(&b, NULL);
}

static int collect_version(void *data, const char *fn, int64_t version, const char *doc)
{
    buf_appendf(data, "%s/%lld=%s;", fn, (long long)version, doc ? doc : "-");
    return 0;
}

static int collect_object(void *data, const char *fn, const char *key, const char *doc)
{
    buf_appendf(data, "%s/%s=%s;", fn, key, doc);
    return 0;
}

static char *dump_versions(struct nb_store *st)
{
    struct nb_buf b = NB_BUF_INIT;
    struct nb_err err = {0};
    assert_int_equal(store_version_each(st, collect_version, &b, &err), 0);
    return buf_detach(&b, NULL);
}

static char *dump_objects(struct nb_store *st, const char *kind)
{
    struct nb_buf b = NB_BUF_INIT;
    struct nb_err err = {0};
    assert_int_equal(store_object_each(st, kind, collect_object, &b, &err), 0);
    return buf_detach(&b, NULL);
}

/* Versions keep their numbers after deletion; objects are keyed by kind; deleting a version
 * deletes the objects under its number; deleting the function deletes everything it owns. */
static void test_versions_and_objects(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_version_insert(f->st, "nofn", 1, "{}", &err), -EIO); /* foreign key */
    assert_int_equal(store_function_insert(f->st, "a", "{}", &err), 0);
    assert_int_equal(store_function_insert(f->st, "b", "{}", &err), 0);
    assert_int_equal(store_version_insert(f->st, "a", 1, "v1", &err), 0);
    assert_int_equal(store_version_insert(f->st, "a", 2, "v2", &err), 0);
    assert_int_equal(store_version_insert(f->st, "b", 1, "b1", &err), 0);
    assert_int_equal(store_version_insert(f->st, "a", 2, "again", &err), -EEXIST);
    assert_int_equal(store_object_put(f->st, "alias", "a", "live", "x", &err), 0);
    assert_int_equal(store_object_put(f->st, "alias", "a", "live", "y", &err), 0); /* replace */
    assert_int_equal(store_object_put(f->st, "provisioned", "a", "2", "p2", &err), 0);
    assert_int_equal(store_object_put(f->st, "provisioned", "a", "live", "pl", &err), 0);
    assert_int_equal(store_object_put(f->st, "alias", "nofn", "x", "x", &err), -EIO);

    assert_int_equal(store_version_delete(f->st, "a", 2, &err), 0);
    assert_int_equal(store_version_delete(f->st, "a", 2, &err), -ENOENT);
    assert_int_equal(store_version_insert(f->st, "a", 2, "reuse", &err), -EEXIST);
    _cleanup_free_ char *v = dump_versions(f->st);
    assert_string_equal(v, "a/1=v1;a/2=-;b/1=b1;");
    _cleanup_free_ char *p = dump_objects(f->st, "provisioned");
    assert_string_equal(p, "a/live=pl;"); /* version 2's config went with it */
    _cleanup_free_ char *al = dump_objects(f->st, "alias");
    assert_string_equal(al, "a/live=y;");

    /* kind NULL: the alias and its provisioned config together */
    assert_int_equal(store_object_delete(f->st, NULL, "a", "live", &err), 0);
    assert_int_equal(store_object_delete(f->st, "alias", "a", "live", &err), -ENOENT);
    _cleanup_free_ char *p2 = dump_objects(f->st, "provisioned");
    assert_string_equal(p2, "");

    assert_int_equal(store_object_put(f->st, "alias", "a", "z", "z", &err), 0);
    assert_int_equal(store_function_delete(f->st, "a", &err), 0);
    _cleanup_free_ char *v2 = dump_versions(f->st);
    assert_string_equal(v2, "b/1=b1;");
    _cleanup_free_ char *al2 = dump_objects(f->st, "alias");
    assert_string_equal(al2, "");
}

static void test_insert_update_delete(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "fn", "{\"v\":1}", &err), 0);
    assert_int_equal(err.code, 0);

    assert_int_equal(store_function_insert(f->st, "fn", "{\"v\":2}", &err), -EEXIST);
    assert_int_equal(err.code, EEXIST);
    assert_string_equal(err.msg, "function 'fn' already exists");

    _cleanup_free_ char *doc = NULL;
    assert_int_equal(store_function_get(f->st, "fn", &doc, &err), 0);
    assert_string_equal(doc, "{\"v\":1}"); /* the failed insert changed nothing */

    err_clear(&err);
    assert_int_equal(store_function_update(f->st, "fn", "{\"v\":3}", &err), 0);
    assert_int_equal(err.code, 0);
    _cleanup_free_ char *doc2 = NULL;
    assert_int_equal(store_function_get(f->st, "fn", &doc2, &err), 0);
    assert_string_equal(doc2, "{\"v\":3}");

    assert_int_equal(store_function_update(f->st, "nope", "{}", &err), -ENOENT);
    assert_int_equal(err.code, ENOENT);
    assert_string_equal(err.msg, "function 'nope' not found");
    char *none = NULL;
    assert_int_equal(store_function_get(f->st, "nope", &none, &err), -ENOENT);
    assert_null(none);

    err_clear(&err);
    assert_int_equal(store_function_delete(f->st, "fn", &err), 0);
    assert_int_equal(store_function_delete(f->st, "fn", &err), -ENOENT);
    assert_int_equal(err.code, ENOENT);
    assert_int_equal(store_function_update(f->st, "fn", "{}", &err), -ENOENT);
    /* A deleted name can be created again. */
    assert_int_equal(store_function_insert(f->st, "fn", "{\"v\":4}", &err), 0);
}

static void test_each_in_name_order(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    _cleanup_free_ char *empty = dump(f->st);
    assert_string_equal(empty, "");
    const char *names[] = {"zeta", "Alpha", "alpha", "beta-2", "beta_1", "beta"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        _cleanup_free_ char *doc = xasprintf("%zu", i);
        assert_int_equal(store_function_insert(f->st, names[i], doc, &err), 0);
    }
    _cleanup_free_ char *all = dump(f->st);
    /* Bytewise: uppercase before lowercase, '-' (0x2d) before '_' (0x5f). */
    assert_string_equal(all, "Alpha=1;alpha=2;beta=5;beta-2=3;beta_1=4;zeta=0;");
}

static int stop_at_beta(void *data, const char *name, const char *doc)
{
    int *seen = data;
    (*seen)++;
    return strcmp(name, "b") == 0 ? 42 : 0;
}

static void test_each_stops(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "a", "1", &err), 0);
    assert_int_equal(store_function_insert(f->st, "b", "2", &err), 0);
    assert_int_equal(store_function_insert(f->st, "c", "3", &err), 0);
    int seen = 0;
    assert_int_equal(store_function_each(f->st, stop_at_beta, &seen, &err), 42);
    assert_int_equal(seen, 2);
}

/* The callback may call the store (records are read before callbacks run). */
static int delete_each(void *data, const char *name, const char *doc)
{
    struct nb_err err = {0};
    return store_function_delete(data, name, &err);
}

static void test_each_reentrant(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "a", "1", &err), 0);
    assert_int_equal(store_function_insert(f->st, "b", "2", &err), 0);
    assert_int_equal(store_function_each(f->st, delete_each, f->st, &err), 0);
    _cleanup_free_ char *all = dump(f->st);
    assert_string_equal(all, "");
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    static const char big[] =
        "{\"Environment\":{\"Variables\":{\"K\":\"v\\u00e9 \\\"quoted\\\"\"}}}";
    assert_int_equal(store_function_insert(f->st, "one", big, &err), 0);
    assert_int_equal(store_function_insert(f->st, "two", "{}", &err), 0);
    assert_int_equal(store_function_update(f->st, "two", "{\"x\":2}", &err), 0);
    store_close(f->st);
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
    _cleanup_free_ char *all = dump(f->st);
    _cleanup_free_ char *want = xasprintf("one=%s;two={\"x\":2};", big);
    assert_string_equal(all, want);
    /* A second open of a migrated database does not re-run migrations. */
    store_close(f->st);
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
    assert_int_equal(store_function_insert(f->st, "one", "{}", &err), -EEXIST);
}

static void test_journal_mode_is_wal(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "fn", "{}", &err), 0);
    _cleanup_free_ char *wal = db_path(f, "-wal");
    assert_int_equal(access(wal, F_OK), 0);

    _cleanup_free_ char *db = db_path(f, "");
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* SQLite copies the database file's mode */

    store_close(f->st);
    f->st = NULL;
    _cleanup_free_ char *hdr = NULL;
    size_t len;
    assert_int_equal(read_file(db, &hdr, &len), 0);
    assert_true(len >= 100);
    assert_memory_equal(hdr, "SQLite format 3", 16);
    assert_int_equal(hdr[18], 2); /* write version 2 = WAL */
    assert_int_equal(hdr[19], 2); /* read version 2 = WAL */
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
}

/* A database whose user_version (header bytes 60-63) is from the future is refused. */
static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    f->st = NULL;
    _cleanup_free_ char *db = db_path(f, "");
    int fd = open(db, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    static const unsigned char v999[4] = {0, 0, 0x03, 0xe7};
    assert_int_equal(pwrite(fd, v999, 4, 60), 4);
    close(fd);
    struct nb_err err = {0};
    assert_null(store_open(f->root, &err));
    assert_int_equal(err.code, EIO);
    assert_non_null(strstr(err.msg, "schema version 999 is newer"));
}

struct worker {
    struct nb_store *st;
    int id;
    int failures;
    int wins;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct nb_err err = {0};
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%d-%02d", w->id, i);
        if (store_function_insert(w->st, name, "{}", &err) < 0 ||
            store_function_update(w->st, name, "{\"u\":1}", &err) < 0)
            w->failures++;
        /* Every thread races for one shared name: exactly one insert wins overall. */
        int r = store_function_insert(w->st, "shared", "{}", &err);
        if (r == 0)
            w->wins++;
        else if (r != -EEXIST)
            w->failures++;
    }
    return NULL;
}

static int count_cb(void *data, const char *name, const char *doc)
{
    (*(int *)data)++;
    return 0;
}

/* Calls come from many worker threads at once; the store serialises them. */
static void test_threads(void **state)
{
    struct fixture *f = *state;
    pthread_t th[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){f->st, i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    int wins = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        wins += w[i].wins;
    }
    assert_int_equal(wins, 1);
    int n = 0;
    struct nb_err err = {0};
    assert_int_equal(store_function_each(f->st, count_cb, &n, &err), 0);
    assert_int_equal(n, 8 * 50 + 1);
}

static void test_open_failure(void **state)
{
    struct fixture *f = *state;
    /* The data dir is a file: cannot be created, error set, no crash. */
    _cleanup_free_ char *file = xasprintf("%s/afile", f->root);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    struct nb_err err = {0};
    assert_null(store_open(file, &err));
    assert_int_not_equal(err.code, 0);
    assert_non_null(strstr(err.msg, "afile"));
}

/* Collects "id:rid:fn:qualifier:payload:attempts:errors:inflight:depth;" for every event. */
static int collect_event(void *data, const struct nb_store_event *ev)
{
    buf_appendf(data, "%lld:%s:%s:%s:%.*s:%d:%d:%d:%d;", (long long)ev->id, ev->request_id,
                ev->function, ev->qualifier ? ev->qualifier : "-", (int)ev->payload_len,
                (const char *)ev->payload, ev->attempts, ev->errors, ev->inflight, ev->depth);
    return 0;
}

static struct nb_store_event_write ev_insert(int64_t id, const char *rid, const char *q,
                                             const char *payload)
{
    struct nb_store_event_write w = {STORE_EVENT_INSERT,
                                     {.id = id,
                                      .request_id = rid,
                                      .function = "f",
                                      .qualifier = q,
                                      .payload = payload,
                                      .payload_len = strlen(payload),
                                      .created_ms = 5}};
    return w;
}

static void test_async_events(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_store_event_write w[] = {
        ev_insert(1, "r1", NULL, "{\"a\":1}"),
        ev_insert(2, "r2", "$LATEST", "{}"),
        {STORE_EVENT_MARK, {.id = 1, .attempts = 1}},
    };
    w[0].ev.depth = 7; /* a destination record's place in its chain */
    assert_int_equal(store_events_write(f->st, w, ARRAY_SIZE(w), &err), 0);
    struct nb_store_event_write w2[] = {
        {STORE_EVENT_UNMARK, {.id = 1, .errors = 1}},
        {STORE_EVENT_MARK, {.id = 1, .attempts = 2}},
        {STORE_EVENT_DELETE, {.id = 2}},
    };
    assert_int_equal(store_events_write(f->st, w2, ARRAY_SIZE(w2), &err), 0);
    struct nb_buf b = {0};
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_string_equal(b.data, "1:r1:f:-:{\"a\":1}:2:1:1:7;");
    buf_release(&b);
    /* a batch is one transaction: a failing write (duplicate id) leaves nothing of it */
    struct nb_store_event_write bad[] = {
        ev_insert(3, "r3", NULL, "{}"),
        {STORE_EVENT_DELETE, {.id = 1}},
        ev_insert(3, "r3bis", NULL, "{}"),
    };
    assert_int_equal(store_events_write(f->st, bad, ARRAY_SIZE(bad), &err), -EIO);
    assert_int_equal(err.code, EIO);
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_string_equal(b.data, "1:r1:f:-:{\"a\":1}:2:1:1:7;");
    buf_release(&b);
    /* and it survives a reopen */
    store_close(f->st);
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_string_equal(b.data, "1:r1:f:-:{\"a\":1}:2:1:1:7;");
    buf_release(&b);
}

static int collect_eic(void *data, const char *fn, const char *q, const char *doc)
{
    buf_appendf(data, "%s:%s=%s;", fn, q, doc);
    return 0;
}

static void test_event_invoke_configs(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "f", "{}", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "$LATEST", "A", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "1", "B", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "$LATEST", "C", &err), 0); /* replaces */
    assert_int_equal(store_eic_put(f->st, "g", "$LATEST", "D", &err), 0);
    struct nb_buf b = {0};
    assert_int_equal(store_eic_each(f->st, collect_eic, &b, &err), 0);
    assert_string_equal(b.data, "f:$LATEST=C;f:1=B;g:$LATEST=D;");
    buf_release(&b);
    assert_int_equal(store_eic_delete(f->st, "f", "1", &err), 0);
    assert_int_equal(store_eic_delete(f->st, "f", "1", &err), -ENOENT);
    /* deleting the function deletes its configs */
    assert_int_equal(store_function_delete(f->st, "f", &err), 0);
    assert_int_equal(store_eic_each(f->st, collect_eic, &b, &err), 0);
    assert_string_equal(b.data, "g:$LATEST=D;");
    buf_release(&b);
}

/* A version's or alias' event invoke config goes with it, in the same transaction; a failed
 * delete (nothing to delete) leaves the config alone. */
static void test_event_invoke_configs_follow_versions_and_aliases(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    assert_int_equal(store_function_insert(f->st, "f", "{}", &err), 0);
    assert_int_equal(store_version_insert(f->st, "f", 1, "v1", &err), 0);
    assert_int_equal(store_object_put(f->st, "alias", "f", "live", "a", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "$LATEST", "L", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "1", "V", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "live", "A", &err), 0);
    assert_int_equal(store_eic_put(f->st, "f", "ghost", "G", &err), 0); /* no such alias */
    assert_int_equal(store_object_delete(f->st, NULL, "f", "ghost", &err), -ENOENT);
    assert_int_equal(store_object_delete(f->st, NULL, "f", "live", &err), 0);
    assert_int_equal(store_version_delete(f->st, "f", 1, &err), 0);
    assert_int_equal(store_version_delete(f->st, "f", 1, &err), -ENOENT);
    struct nb_buf b = {0};
    assert_int_equal(store_eic_each(f->st, collect_eic, &b, &err), 0);
    assert_string_equal(b.data, "f:$LATEST=L;f:ghost=G;");
    buf_release(&b);
    /* a kind-specific delete leaves the qualifier's config */
    assert_int_equal(store_eic_put(f->st, "f", "p", "P", &err), 0);
    assert_int_equal(store_object_put(f->st, "provisioned", "f", "p", "x", &err), 0);
    assert_int_equal(store_object_delete(f->st, "provisioned", "f", "p", &err), 0);
    assert_int_equal(store_eic_each(f->st, collect_eic, &b, &err), 0);
    assert_string_equal(b.data, "f:$LATEST=L;f:ghost=G;f:p=P;");
    buf_release(&b);
}

static int collect_rule(void *data, const char *name, const char *doc)
{
    buf_appendf(data, "%s=%s;", name, doc);
    return 0;
}

static int collect_tick(void *data, const char *rule, const char *target, int64_t tick)
{
    buf_appendf(data, "%s/%s@%lld;", rule, target, (long long)tick);
    return 0;
}

/* Rules, and the last tick of a target written in the transaction of its event: both or
 * neither. */
static void test_rules_and_ticks(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_buf b = {0};
    assert_int_equal(store_rule_put(f->st, "b", "{\"x\":1}", &err), 0);
    assert_int_equal(store_rule_put(f->st, "a", "{}", &err), 0);
    assert_int_equal(store_rule_put(f->st, "b", "{\"x\":2}", &err), 0);
    assert_int_equal(store_rule_each(f->st, collect_rule, &b, &err), 0);
    assert_string_equal(b.data, "a={};b={\"x\":2};");
    buf_release(&b);
    struct nb_store_event_write w[] = {ev_insert(1, "r1", NULL, "{}"),
                                       ev_insert(2, "r2", NULL, "{}")};
    w[0].ev.tick_rule = w[1].ev.tick_rule = "b";
    w[0].ev.tick_target = "t1";
    w[1].ev.tick_target = "t2";
    w[0].ev.tick_s = 120;
    w[1].ev.tick_s = 60;
    assert_int_equal(store_events_write(f->st, w, ARRAY_SIZE(w), &err), 0);
    /* a tick never moves backwards */
    struct nb_store_event_write older = ev_insert(3, "r3", NULL, "{}");
    older.ev.tick_rule = "b";
    older.ev.tick_target = "t1";
    older.ev.tick_s = 60;
    assert_int_equal(store_events_write(f->st, &older, 1, &err), 0);
    assert_int_equal(store_tick_each(f->st, collect_tick, &b, &err), 0);
    assert_string_equal(b.data, "b/t1@120;b/t2@60;");
    buf_release(&b);
    /* a failed batch records no tick */
    struct nb_store_event_write bad[] = {ev_insert(4, "r4", NULL, "{}"),
                                         ev_insert(4, "r4bis", NULL, "{}")};
    bad[0].ev.tick_rule = "b";
    bad[0].ev.tick_target = "t2";
    bad[0].ev.tick_s = 600;
    assert_int_equal(store_events_write(f->st, bad, ARRAY_SIZE(bad), &err), -EIO);
    assert_int_equal(store_tick_each(f->st, collect_tick, &b, &err), 0);
    assert_string_equal(b.data, "b/t1@120;b/t2@60;");
    buf_release(&b);
    /* deleting a rule deletes its ticks */
    assert_int_equal(store_rule_delete(f->st, "b", &err), 0);
    assert_int_equal(store_rule_delete(f->st, "nope", &err), 0);
    assert_int_equal(store_rule_each(f->st, collect_rule, &b, &err), 0);
    assert_string_equal(b.data, "a={};");
    buf_release(&b);
    assert_int_equal(store_tick_each(f->st, collect_tick, &b, &err), 0);
    assert_null(b.data);
    buf_release(&b);
}

/* A tick recorded alone (STORE_EVENT_TICK: a tick passed over on purpose) writes no event, never
 * moves a tick backwards, and goes in the batch's transaction: all or nothing. */
static void test_tick_without_event(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_buf b = {0};
    assert_int_equal(store_rule_put(f->st, "r", "{}", &err), 0);
    struct nb_store_event_write w[] = {
        {STORE_EVENT_TICK, {.tick_rule = "r", .tick_target = "t", .tick_s = 300}},
        {STORE_EVENT_TICK, {.tick_rule = "r", .tick_target = "t", .tick_s = 240}},
        {STORE_EVENT_TICK, {.tick_rule = "r", .tick_target = "u", .tick_s = 60}},
    };
    assert_int_equal(store_events_write(f->st, w, ARRAY_SIZE(w), &err), 0);
    assert_int_equal(store_tick_each(f->st, collect_tick, &b, &err), 0);
    assert_string_equal(b.data, "r/t@300;r/u@60;");
    buf_release(&b);
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_null(b.data);
    /* in a batch that fails, the tick is not recorded */
    struct nb_store_event_write bad[] = {
        {STORE_EVENT_TICK, {.tick_rule = "r", .tick_target = "u", .tick_s = 600}},
        ev_insert(1, "r1", NULL, "{}"),
        ev_insert(1, "r1bis", NULL, "{}"),
    };
    assert_int_equal(store_events_write(f->st, bad, ARRAY_SIZE(bad), &err), -EIO);
    struct nb_store_event_write none = {STORE_EVENT_TICK, {.tick_s = 1}};
    assert_int_equal(store_events_write(f->st, &none, 1, &err), -EINVAL);
    /* survives a reopen */
    store_close(f->st);
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
    assert_int_equal(store_tick_each(f->st, collect_tick, &b, &err), 0);
    assert_string_equal(b.data, "r/t@300;r/u@60;");
    buf_release(&b);
}

/* Migration 6 on a database of schema 5 with a pending event: the event is kept, at depth 0. */
static void test_migration_6_keeps_events(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    f->st = NULL;
    _cleanup_free_ char *path = db_path(f, "");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE async_events DROP COLUMN depth;"
                                  "INSERT INTO async_events(id, request_id, function, payload, "
                                  "created_ms) VALUES(4, 'old', 'f', '{}', 9);"
                                  "PRAGMA user_version = 5;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct nb_err err = {0};
    f->st = store_open(f->root, &err);
    assert_non_null(f->st);
    struct nb_buf b = {0};
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_string_equal(b.data, "4:old:f:-:{}:0:0:0:0;");
    buf_release(&b);
    struct nb_store_event_write w = ev_insert(5, "new", NULL, "{}");
    w.ev.depth = 16;
    assert_int_equal(store_events_write(f->st, &w, 1, &err), 0);
    assert_int_equal(store_events_each(f->st, collect_event, &b, &err), 0);
    assert_string_equal(b.data, "4:old:f:-:{}:0:0:0:0;5:new:f:-:{}:0:0:0:16;");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_and_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_in_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_reentrant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_mode_is_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_invoke_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_and_ticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_without_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_6_keeps_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_invoke_configs_follow_versions_and_aliases,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
