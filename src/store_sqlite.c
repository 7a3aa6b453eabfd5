/*
 * store_sqlite.c - store.h on SQLite: DATA_DIR/nimbus.db, the only file in nimbus with SQL in it.
 *
 * Structure: one connection, one mutex around every use of it (calls come from libuv worker
 * threads), a cache of prepared statements indexed by enum stmt_id, and a schema migrated by
 * PRAGMA user_version through the migrations[] list (step i takes the schema from version i to
 * i + 1; steps are append-only, never edited once shipped).
 *
 * Invariants: journal_mode is WAL and synchronous FULL, so a write that returned 0 is on disk;
 * the database file is created 0600 (function records carry environment variables) and SQLite
 * gives the -wal/-shm files the same mode; every SQLite failure becomes EIO with sqlite3_errmsg
 * read while the mutex is still held; a cached statement is reset and unbound before the mutex
 * is released (the _cleanup_stmt_ helper), so no row memory outlives a call. Callbacks of
 * store_function_each run after the mutex is released and may call back into the store.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define STORE_BUSY_TIMEOUT_MS 5000

/* Schema migrations: migrations[i] upgrades user_version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 1: function records */
    ("CREATE TABLE functions ("
     "  name TEXT PRIMARY KEY,"
     "  doc TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  updated_ms INTEGER NOT NULL"
     ");"),
    /* 2: access keys (secrets sealed by keys.c, never plaintext) */
    ("CREATE TABLE access_keys ("
     "  id TEXT PRIMARY KEY,"
     "  secret_sealed TEXT NOT NULL,"
     "  policy TEXT,"
     "  description TEXT NOT NULL,"
     "  root INTEGER NOT NULL,"
     "  created_ms INTEGER NOT NULL"
     ");"),
    /* 3: asynchronous invocations (async.c) and their per-qualifier settings */
    ("CREATE TABLE async_events ("
     "  id INTEGER PRIMARY KEY,"
     "  request_id TEXT NOT NULL,"
     "  function TEXT NOT NULL,"
     "  qualifier TEXT,"
     "  payload BLOB NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  errors INTEGER NOT NULL DEFAULT 0,"
     "  inflight INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE TABLE event_invoke_configs ("
     "  function TEXT NOT NULL,"
     "  qualifier TEXT NOT NULL,"
     "  doc TEXT NOT NULL,"
     "  PRIMARY KEY (function, qualifier)"
     ");"),
    /* 4: published versions (doc NULL = deleted; the row keeps its number used) and objects
     * attached to a function under a qualifier (aliases, provisioned concurrency configs) */
    ("CREATE TABLE versions ("
     "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
     "  version INTEGER NOT NULL,"
     "  doc TEXT,"
     "  PRIMARY KEY (function, version)"
     ");"
     "CREATE TABLE objects ("
     "  kind TEXT NOT NULL,"
     "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
     "  key TEXT NOT NULL,"
     "  doc TEXT NOT NULL,"
     "  PRIMARY KEY (kind, function, key)"
     ");"),
    /* 5: EventBridge schedule rules (doc: rules.c's record, targets included) and the last tick
     * fired per (rule, target), written in the transaction that inserts the tick's event */
    ("CREATE TABLE rules ("
     "  name TEXT PRIMARY KEY,"
     "  doc TEXT NOT NULL"
     ");"
     "CREATE TABLE rule_ticks ("
     "  rule TEXT NOT NULL,"
     "  target TEXT NOT NULL,"
     "  tick INTEGER NOT NULL,"
     "  PRIMARY KEY (rule, target)"
     ");"),
    /* 6: an event's place in a chain of destination records (async.c's recursive loop
     * detection), so the count survives a restart */
    "ALTER TABLE async_events ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;",
};

/* The SQS database (DATA_DIR/sqs.db, store_sqs_open): its own file, so queue traffic's group
 * commits never wait behind, or delay, the function store's writes. Append only. */
static const char *const sqs_migrations[] = {
    /* 1: queues and their messages */
    ("CREATE TABLE sqs_queues ("
     "  name TEXT PRIMARY KEY,"
     "  doc TEXT NOT NULL"
     ");"
     "CREATE TABLE sqs_messages ("
     "  queue TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  doc TEXT NOT NULL,"
     "  visible_ms INTEGER NOT NULL,"
     "  receive_count INTEGER NOT NULL,"
     "  first_receive_ms INTEGER NOT NULL,"
     "  PRIMARY KEY(queue, seq)"
     ") WITHOUT ROWID;"),
};

enum stmt_id {
    STMT_FN_INSERT,
    STMT_FN_UPDATE,
    STMT_FN_DELETE,
    STMT_FN_GET,
    STMT_FN_EACH,
    STMT_SQS_Q_PUT,
    STMT_SQS_Q_DEL,
    STMT_SQS_M_PUT,
    STMT_SQS_M_DEL,
    STMT_SQS_M_UPD,
    STMT_SQS_M_PURGE,
    STMT_SQS_Q_EACH,
    STMT_SQS_M_EACH,
    STMT_KEY_INSERT,
    STMT_KEY_DELETE,
    STMT_KEY_EACH,
    STMT_EV_INSERT,
    STMT_EV_MARK,
    STMT_EV_UNMARK,
    STMT_EV_DELETE,
    STMT_EV_EACH,
    STMT_EIC_PUT,
    STMT_EIC_DELETE,
    STMT_EIC_DELETE_FN,
    STMT_EIC_EACH,
    STMT_VER_INSERT,
    STMT_VER_DELETE,
    STMT_VER_DELETE_OBJECTS,
    STMT_VER_EACH,
    STMT_OBJ_PUT,
    STMT_OBJ_DELETE,
    STMT_OBJ_DELETE_KEY,
    STMT_OBJ_EACH,
    STMT_RULE_PUT,
    STMT_RULE_DELETE,
    STMT_RULE_DELETE_TICKS,
    STMT_RULE_EACH,
    STMT_TICK_PUT,
    STMT_TICK_EACH,
    STMT__MAX,
};

static const char *const stmt_sql[STMT__MAX] = {
    [STMT_FN_INSERT] = ("INSERT INTO functions(name, doc, created_ms, updated_ms) "
                        "VALUES(?1, ?2, ?3, ?3) ON CONFLICT(name) DO NOTHING"),
    [STMT_FN_UPDATE] = "UPDATE functions SET doc = ?2, updated_ms = ?3 WHERE name = ?1",
    [STMT_FN_DELETE] = "DELETE FROM functions WHERE name = ?1",
    [STMT_FN_GET] = "SELECT doc FROM functions WHERE name = ?1",
    [STMT_FN_EACH] = "SELECT name, doc FROM functions ORDER BY name",
    [STMT_KEY_INSERT] = ("INSERT INTO access_keys(id, secret_sealed, policy, description, root, "
                         "created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING"),
    [STMT_KEY_DELETE] = "DELETE FROM access_keys WHERE id = ?1",
    [STMT_KEY_EACH] = ("SELECT id, secret_sealed, policy, description, root, created_ms "
                       "FROM access_keys ORDER BY id"),
    [STMT_EV_INSERT] =
        ("INSERT INTO async_events(id, request_id, function, qualifier, payload, "
         "created_ms, attempts, errors, depth) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
    [STMT_EV_MARK] = "UPDATE async_events SET attempts = ?2, inflight = 1 WHERE id = ?1",
    [STMT_EV_UNMARK] = "UPDATE async_events SET errors = ?2, inflight = 0 WHERE id = ?1",
    [STMT_EV_DELETE] = "DELETE FROM async_events WHERE id = ?1",
    [STMT_EV_EACH] = ("SELECT id, request_id, function, qualifier, payload, created_ms, attempts, "
                      "errors, inflight, depth FROM async_events ORDER BY id"),
    [STMT_EIC_PUT] = ("INSERT INTO event_invoke_configs(function, qualifier, doc) "
                      "VALUES(?1, ?2, ?3) ON CONFLICT(function, qualifier) DO UPDATE SET doc = ?3"),
    [STMT_EIC_DELETE] = "DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
    [STMT_EIC_DELETE_FN] = "DELETE FROM event_invoke_configs WHERE function = ?1",
    [STMT_EIC_EACH] = ("SELECT function, qualifier, doc FROM event_invoke_configs "
                       "ORDER BY function, qualifier"),
    [STMT_VER_INSERT] = ("INSERT INTO versions(function, version, doc) VALUES(?1, ?2, ?3) "
                         "ON CONFLICT(function, version) DO NOTHING"),
    [STMT_VER_DELETE] = ("UPDATE versions SET doc = NULL "
                         "WHERE function = ?1 AND version = ?2 AND doc IS NOT NULL"),
    [STMT_VER_DELETE_OBJECTS] = "DELETE FROM objects WHERE function = ?1 AND key = ?2",
    [STMT_VER_EACH] = "SELECT function, version, doc FROM versions ORDER BY function, version",
    [STMT_OBJ_PUT] = ("INSERT INTO objects(kind, function, key, doc) VALUES(?1, ?2, ?3, ?4) "
                      "ON CONFLICT(kind, function, key) DO UPDATE SET doc = excluded.doc"),
    [STMT_OBJ_DELETE] = "DELETE FROM objects WHERE kind = ?1 AND function = ?2 AND key = ?3",
    [STMT_OBJ_DELETE_KEY] = "DELETE FROM objects WHERE function = ?1 AND key = ?2",
    [STMT_OBJ_EACH] =
        "SELECT function, key, doc FROM objects WHERE kind = ?1 ORDER BY function, key",
    [STMT_RULE_PUT] = ("INSERT INTO rules(name, doc) VALUES(?1, ?2) "
                       "ON CONFLICT(name) DO UPDATE SET doc = excluded.doc"),
    [STMT_RULE_DELETE] = "DELETE FROM rules WHERE name = ?1",
    [STMT_RULE_DELETE_TICKS] = "DELETE FROM rule_ticks WHERE rule = ?1",
    [STMT_RULE_EACH] = "SELECT name, doc FROM rules ORDER BY name",
    [STMT_TICK_PUT] = ("INSERT INTO rule_ticks(rule, target, tick) VALUES(?1, ?2, ?3) "
                       "ON CONFLICT(rule, target) DO UPDATE SET tick = max(tick, excluded.tick)"),
    [STMT_TICK_EACH] = "SELECT rule, target, tick FROM rule_ticks ORDER BY rule, target",
    [STMT_SQS_Q_PUT] = "INSERT OR REPLACE INTO sqs_queues(name, doc) VALUES(?1, ?2)",
    [STMT_SQS_Q_DEL] = "DELETE FROM sqs_queues WHERE name = ?1",
    [STMT_SQS_M_PUT] = ("INSERT OR REPLACE INTO sqs_messages(queue, seq, doc, visible_ms, "
                        "receive_count, first_receive_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
    [STMT_SQS_M_DEL] = "DELETE FROM sqs_messages WHERE queue = ?1 AND seq = ?2",
    [STMT_SQS_M_UPD] = ("UPDATE sqs_messages SET visible_ms = ?4, receive_count = ?5, "
                        "first_receive_ms = ?6 WHERE queue = ?1 AND seq = ?2"),
    [STMT_SQS_M_PURGE] = "DELETE FROM sqs_messages WHERE queue = ?1",
    [STMT_SQS_Q_EACH] = "SELECT name, doc FROM sqs_queues ORDER BY name",
    [STMT_SQS_M_EACH] = ("SELECT queue, seq, doc, visible_ms, receive_count, first_receive_ms "
                         "FROM sqs_messages ORDER BY queue, seq"),
};

struct nb_store {
    pthread_mutex_t lock;
    const char *const *migrations; /* the schema of this file */
    size_t n_migrations;
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT__MAX];
};

/* Resets a cached statement at scope exit: the statement stays prepared, its bindings and any
 * row memory are dropped. Declared after the mutex guard so it runs while the mutex is held. */
static void stmt_resetp(sqlite3_stmt **s)
{
    if (*s) {
        sqlite3_reset(*s);
        sqlite3_clear_bindings(*s);
    }
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

static void store_unlockp(struct nb_store **st)
{
    if (*st && pthread_mutex_unlock(&(*st)->lock) != 0)
        BUG("store mutex unlock failed");
}
#define _cleanup_store_unlock_ _cleanup_(store_unlockp)

static struct nb_store *store_lock(struct nb_store *st)
{
    if (pthread_mutex_lock(&st->lock) != 0)
        BUG("store mutex lock failed");
    return st;
}
/* Holds the store's mutex until the end of the enclosing scope. */
#define STORE_LOCKED(st)                                                                           \
    _cleanup_store_unlock_ UNUSED struct nb_store *store__locked = store_lock(st)

/* Every SQLite failure is EIO with SQLite's own message after what we were doing. */
static int db_err(struct nb_store *st, struct nb_err *err, const char *what, const char *name)
{
    if (name)
        return err_set(err, EIO, "cannot %s '%s': %s", what, name, sqlite3_errmsg(st->db));
    return err_set(err, EIO, "cannot %s: %s", what, sqlite3_errmsg(st->db));
}

static sqlite3_stmt *stmt_get(struct nb_store *st, enum stmt_id id, struct nb_err *err)
{
    if (st->stmts[id])
        return st->stmts[id];
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[id],
                                NULL);
    if (rc != SQLITE_OK) {
        db_err(st, err, "prepare statement", stmt_sql[id]);
        return NULL;
    }
    return st->stmts[id];
}

static int bind_text(struct nb_store *st, sqlite3_stmt *s, int idx, const char *v,
                     struct nb_err *err)
{
    if (sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC) != SQLITE_OK)
        return db_err(st, err, "bind parameter", NULL);
    return 0;
}

static int bind_i64(struct nb_store *st, sqlite3_stmt *s, int idx, int64_t v, struct nb_err *err)
{
    if (sqlite3_bind_int64(s, idx, v) != SQLITE_OK)
        return db_err(st, err, "bind parameter", NULL);
    return 0;
}

/* Runs SQL that returns no rows we need (several statements allowed). */
static int exec_sql(struct nb_store *st, const char *sql, const char *what, struct nb_err *err)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(st, err, what, NULL);
    return 0;
}

/* Runs a one-row PRAGMA and copies its first column (text) into out. */
static int pragma_text(struct nb_store *st, const char *sql, char *out, size_t outlen,
                       struct nb_err *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_err(st, err, "run", sql);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int r = db_err(st, err, "run", sql);
        sqlite3_finalize(s);
        return r;
    }
    const unsigned char *v = sqlite3_column_text(s, 0);
    snprintf(out, outlen, "%s", v ? (const char *)v : "");
    sqlite3_finalize(s);
    return 0;
}

static int schema_version(struct nb_store *st, int *out, struct nb_err *err)
{
    char v[32];
    int r = pragma_text(st, "PRAGMA user_version", v, sizeof(v), err);
    if (r < 0)
        return r;
    int64_t n;
    if (parse_i64(v, 0, INT32_MAX, &n) < 0)
        return err_set(err, EIO, "database schema version '%s' is invalid", v);
    *out = (int)n;
    return 0;
}

/* Applies migrations[cur..] one transaction each, so a crash leaves a consistent version. */
static int migrate(struct nb_store *st, struct nb_err *err)
{
    int cur = 0;
    int r = schema_version(st, &cur, err);
    if (r < 0)
        return r;
    int want = (int)st->n_migrations;
    if (cur > want)
        return err_set(err, EIO,
                       "database schema version %d is newer than this nimbus supports (%d)", cur,
                       want);
    for (int v = cur; v < want; v++) {
        _cleanup_free_ char *sql = xasprintf(
            "BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;", st->migrations[v], v + 1);
        if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            r = err_set(err, EIO, "cannot migrate database schema to version %d: %s", v + 1,
                        sqlite3_errmsg(st->db));
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    return 0;
}

static int configure(struct nb_store *st, struct nb_err *err)
{
    if (sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK)
        return db_err(st, err, "set busy timeout", NULL);
    char mode[16];
    int r = pragma_text(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
    if (r < 0)
        return r;
    if (strcmp(mode, "wal") != 0)
        return err_set(err, EIO, "cannot enable WAL journal mode: database stays in '%s'", mode);
    r = exec_sql(st, "PRAGMA synchronous = FULL", "set synchronous=FULL", err);
    if (r < 0)
        return r;
    r = exec_sql(st, "PRAGMA foreign_keys = ON", "enable foreign keys", err);
    if (r < 0)
        return r;
    /* PRAGMA foreign_keys is a no-op inside a transaction or on builds without FK support. */
    char fk[8];
    r = pragma_text(st, "PRAGMA foreign_keys", fk, sizeof(fk), err);
    if (r < 0)
        return r;
    if (strcmp(fk, "1") != 0)
        return err_set(err, EIO, "cannot enable foreign keys: sqlite reports '%s'", fk);
    return migrate(st, err);
}

/* Creates the database file 0600 before SQLite does (it would use 0644 minus umask). */
static int precreate_db(const char *path, struct nb_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        return err_set(err, e, "cannot create '%s': %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

static struct nb_store *open_db(const char *data_dir, const char *file, const char *const *migs,
                                size_t n_migs, struct nb_err *err)
{
    /* 0755: sandboxes may resolve DATA_DIR/code/<hex> with unprivileged credentials; the
     * database itself is 0600. */
    int r = mkdir_p(data_dir, 0755);
    if (r < 0) {
        err_set(err, r, "cannot create data directory '%s': %s", data_dir, strerror(-r));
        return NULL;
    }
    _cleanup_free_ char *path = xasprintf("%s/%s", data_dir, file);
    if (precreate_db(path, err) < 0)
        return NULL;

    struct nb_store *st = xcalloc(1, sizeof(*st));
    st->migrations = migs;
    st->n_migrations = n_migs;
    if (pthread_mutex_init(&st->lock, NULL) != 0)
        BUG("pthread_mutex_init failed");
    /* NOMUTEX: our own mutex serialises every use of the connection. */
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_NOFOLLOW,
                             NULL);
    if (rc != SQLITE_OK) {
        if (st->db)
            err_set(err, EIO, "cannot open '%s': %s", path, sqlite3_errmsg(st->db));
        else
            err_set(err, EIO, "cannot open '%s': %s", path, sqlite3_errstr(rc));
        store_close(st);
        return NULL;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if (configure(st, err) < 0) {
        err_prefix(err, "cannot open store '%s'", path);
        store_close(st);
        return NULL;
    }
    return st;
}

struct nb_store *store_open(const char *data_dir, struct nb_err *err)
{
    return open_db(data_dir, "nimbus.db", migrations, ARRAY_SIZE(migrations), err);
}

struct nb_store *store_sqs_open(const char *data_dir, struct nb_err *err)
{
    return open_db(data_dir, "sqs.db", sqs_migrations, ARRAY_SIZE(sqs_migrations), err);
}

void store_close(struct nb_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(st->stmts); i++)
        sqlite3_finalize(st->stmts[i]);
    /* All statements are finalized, so close cannot fail with SQLITE_BUSY; the last close
     * checkpoints the WAL into the database file. */
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        BUG("sqlite3_close failed: %s", sqlite3_errmsg(st->db));
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* Runs a cached write statement bound to (name, doc, now) and returns sqlite3_changes(). */
static int run_write(struct nb_store *st, enum stmt_id id, const char *what, const char *name,
                     const char *doc, struct nb_err *err)
{
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, id, err);
    if (!s)
        return err_prefix(err, "cannot %s '%s'", what, name);
    int r = bind_text(st, s, 1, name, err);
    if (r == 0 && doc)
        r = bind_text(st, s, 2, doc, err);
    if (r == 0 && doc)
        r = bind_i64(st, s, 3, (int64_t)now_ms(), err);
    if (r < 0)
        return err_prefix(err, "cannot %s '%s'", what, name);
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, what, name);
    return sqlite3_changes(st->db);
}

int store_function_insert(struct nb_store *st, const char *name, const char *doc,
                          struct nb_err *err)
{
    ASSERT(name && doc);
    STORE_LOCKED(st);
    int n = run_write(st, STMT_FN_INSERT, "insert function", name, doc, err);
    if (n < 0)
        return n;
    if (n == 0)
        return err_set(err, EEXIST, "function '%s' already exists", name);
    return 0;
}

int store_function_update(struct nb_store *st, const char *name, const char *doc,
                          struct nb_err *err)
{
    ASSERT(name && doc);
    STORE_LOCKED(st);
    int n = run_write(st, STMT_FN_UPDATE, "update function", name, doc, err);
    if (n < 0)
        return n;
    if (n == 0)
        return err_set(err, ENOENT, "function '%s' not found", name);
    return 0;
}

int store_function_delete(struct nb_store *st, const char *name, struct nb_err *err)
{
    ASSERT(name);
    STORE_LOCKED(st);
    int n = run_write(st, STMT_FN_DELETE, "delete function", name, NULL, err);
    if (n < 0)
        return n;
    if (n == 0)
        return err_set(err, ENOENT, "function '%s' not found", name);
    /* Its event invoke configs go with it (a crash in between leaves rows that
     * store_eic_each's caller ignores: no function of that name is loaded). */
    int m = run_write(st, STMT_EIC_DELETE_FN, "delete event invoke configs of", name, NULL, err);
    return m < 0 ? m : 0;
}

int store_function_get(struct nb_store *st, const char *name, char **doc, struct nb_err *err)
{
    ASSERT(name && doc);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_FN_GET, err);
    if (!s)
        return err_prefix(err, "cannot read function '%s'", name);
    int r = bind_text(st, s, 1, name, err);
    if (r < 0)
        return err_prefix(err, "cannot read function '%s'", name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return err_set(err, ENOENT, "function '%s' not found", name);
    if (rc != SQLITE_ROW)
        return db_err(st, err, "read function", name);
    const unsigned char *v = sqlite3_column_text(s, 0);
    if (!v)
        return db_err(st, err, "read function", name);
    *doc = xstrdup((const char *)v);
    return 0;
}

struct row {
    char *name;
    char *doc;
};

static void rows_free(struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].doc);
    }
    free(rows);
}

/* Copies every record out under the mutex; the caller runs callbacks without it. */
static int collect_functions(struct nb_store *st, struct row **out, size_t *nout,
                             struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_FN_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list functions");
    struct row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(s, 0);
        const unsigned char *doc = sqlite3_column_text(s, 1);
        if (!name || !doc) {
            rows_free(rows, n);
            return db_err(st, err, "list functions", NULL);
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            rows = xrealloc(rows, cap * sizeof(*rows));
        }
        rows[n].name = xstrdup((const char *)name);
        rows[n].doc = xstrdup((const char *)doc);
        n++;
    }
    if (rc != SQLITE_DONE) {
        rows_free(rows, n);
        return db_err(st, err, "list functions", NULL);
    }
    *out = rows;
    *nout = n;
    return 0;
}

int store_function_each(struct nb_store *st, nb_store_function_cb cb, void *data,
                        struct nb_err *err)
{
    struct row *rows = NULL;
    size_t n = 0;
    int r = collect_functions(st, &rows, &n, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++)
        r = cb(data, rows[i].name, rows[i].doc);
    rows_free(rows, n);
    return r;
}

/* ---- access keys ---- */

int store_key_insert(struct nb_store *st, const struct nb_store_key *k, struct nb_err *err)
{
    ASSERT(k && k->id && k->secret_sealed && k->description);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_KEY_INSERT, err);
    if (!s)
        return err_prefix(err, "cannot insert key '%s'", k->id);
    int r = bind_text(st, s, 1, k->id, err);
    if (r == 0)
        r = bind_text(st, s, 2, k->secret_sealed, err);
    if (r == 0)
        r = k->policy ? bind_text(st, s, 3, k->policy, err)
                      : (sqlite3_bind_null(s, 3) == SQLITE_OK ? 0 : db_err(st, err, "bind", NULL));
    if (r == 0)
        r = bind_text(st, s, 4, k->description, err);
    if (r == 0)
        r = bind_i64(st, s, 5, k->root ? 1 : 0, err);
    if (r == 0)
        r = bind_i64(st, s, 6, k->created_ms, err);
    if (r < 0)
        return err_prefix(err, "cannot insert key '%s'", k->id);
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "insert key", k->id);
    if (sqlite3_changes(st->db) == 0)
        return err_set(err, EEXIST, "access key '%s' already exists", k->id);
    return 0;
}

int store_key_delete(struct nb_store *st, const char *id, struct nb_err *err)
{
    ASSERT(id);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_KEY_DELETE, err);
    if (!s || bind_text(st, s, 1, id, err) < 0)
        return err_prefix(err, "cannot delete key '%s'", id);
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "delete key", id);
    if (sqlite3_changes(st->db) == 0)
        return err_set(err, ENOENT, "access key '%s' not found", id);
    return 0;
}

struct key_row {
    char *id, *sealed, *policy, *description;
    bool root;
    int64_t created_ms;
};

static void key_rows_free(struct key_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].sealed);
        free(rows[i].policy);
        free(rows[i].description);
    }
    free(rows);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? xstrdup((const char *)v) : NULL;
}

static int collect_keys(struct nb_store *st, struct key_row **out, size_t *nout, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_KEY_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list keys");
    struct key_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            rows = xrealloc(rows, cap * sizeof(*rows));
        }
        rows[n] = (struct key_row){col_dup(s, 0),
                                   col_dup(s, 1),
                                   col_dup(s, 2),
                                   col_dup(s, 3),
                                   sqlite3_column_int64(s, 4) != 0,
                                   sqlite3_column_int64(s, 5)};
        n++;
        if (!rows[n - 1].id || !rows[n - 1].sealed || !rows[n - 1].description) {
            key_rows_free(rows, n);
            return db_err(st, err, "list keys", NULL);
        }
    }
    if (rc != SQLITE_DONE) {
        key_rows_free(rows, n);
        return db_err(st, err, "list keys", NULL);
    }
    *out = rows;
    *nout = n;
    return 0;
}

int store_key_each(struct nb_store *st, nb_store_key_cb cb, void *data, struct nb_err *err)
{
    struct key_row *rows = NULL;
    size_t n = 0;
    int r = collect_keys(st, &rows, &n, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++) {
        struct nb_store_key k = {rows[i].id,          rows[i].sealed, rows[i].policy,
                                 rows[i].description, rows[i].root,   rows[i].created_ms};
        r = cb(data, &k);
    }
    key_rows_free(rows, n);
    return r;
}

/* ---- asynchronous invocations ---------------------------------------------------------- */

static int bind_blob(struct nb_store *st, sqlite3_stmt *s, int idx, const void *v, size_t len,
                     struct nb_err *err)
{
    if (sqlite3_bind_blob64(s, idx, v ? v : "", (sqlite3_uint64)len, SQLITE_STATIC) != SQLITE_OK)
        return db_err(st, err, "bind parameter", NULL);
    return 0;
}

static int bind_text_or_null(struct nb_store *st, sqlite3_stmt *s, int idx, const char *v,
                             struct nb_err *err)
{
    if (v)
        return bind_text(st, s, idx, v, err);
    if (sqlite3_bind_null(s, idx) != SQLITE_OK)
        return db_err(st, err, "bind parameter", NULL);
    return 0;
}

/* Records that (rule, target) is done with every tick up to tick_s: fired, or passed over on
 * purpose (never moves backwards). Lock held by the caller. */
static int tick_put(struct nb_store *st, const char *rule, const char *target, int64_t tick_s,
                    struct nb_err *err)
{
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_TICK_PUT, err);
    if (!s)
        return -err->code;
    int r = bind_text(st, s, 1, rule, err);
    if (r == 0)
        r = bind_text(st, s, 2, target, err);
    if (r == 0)
        r = bind_i64(st, s, 3, tick_s, err);
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "record the last tick of rule", rule);
    return 0;
}

/* One write of a batch; the caller holds the mutex and the transaction. */
static int event_write_one(struct nb_store *st, const struct nb_store_event_write *w,
                           struct nb_err *err)
{
    static const enum stmt_id ids[] = {
        [STORE_EVENT_INSERT] = STMT_EV_INSERT,
        [STORE_EVENT_MARK] = STMT_EV_MARK,
        [STORE_EVENT_UNMARK] = STMT_EV_UNMARK,
        [STORE_EVENT_DELETE] = STMT_EV_DELETE,
    };
    const struct nb_store_event *ev = &w->ev;
    if (w->op == STORE_EVENT_TICK) {
        if (!ev->tick_rule || !ev->tick_target)
            return err_set(err, EINVAL, "a tick write names no rule and target");
        return tick_put(st, ev->tick_rule, ev->tick_target, ev->tick_s, err);
    }
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, ids[w->op], err);
    if (!s)
        return -err->code;
    int r = bind_i64(st, s, 1, ev->id, err);
    switch (w->op) {
    case STORE_EVENT_INSERT:
        if (r == 0)
            r = bind_text(st, s, 2, ev->request_id, err);
        if (r == 0)
            r = bind_text(st, s, 3, ev->function, err);
        if (r == 0)
            r = bind_text_or_null(st, s, 4, ev->qualifier, err);
        if (r == 0)
            r = bind_blob(st, s, 5, ev->payload, ev->payload_len, err);
        if (r == 0)
            r = bind_i64(st, s, 6, ev->created_ms, err);
        if (r == 0)
            r = bind_i64(st, s, 7, ev->attempts, err);
        if (r == 0)
            r = bind_i64(st, s, 8, ev->errors, err);
        if (r == 0)
            r = bind_i64(st, s, 9, ev->depth, err);
        break;
    case STORE_EVENT_MARK:
        if (r == 0)
            r = bind_i64(st, s, 2, ev->attempts, err);
        break;
    case STORE_EVENT_UNMARK:
        if (r == 0)
            r = bind_i64(st, s, 2, ev->errors, err);
        break;
    case STORE_EVENT_DELETE:
    case STORE_EVENT_TICK:
        break;
    }
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "write async event", ev->request_id ? ev->request_id : "-");
    if (w->op == STORE_EVENT_INSERT && ev->tick_rule)
        return tick_put(st, ev->tick_rule, ev->tick_target, ev->tick_s, err);
    return 0;
}

int store_events_write(struct nb_store *st, const struct nb_store_event_write *w, size_t n,
                       struct nb_err *err)
{
    STORE_LOCKED(st);
    int r = exec_sql(st, "BEGIN IMMEDIATE", "begin async event batch", err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++)
        r = event_write_one(st, &w[i], err);
    if (r == 0)
        r = exec_sql(st, "COMMIT", "commit async event batch", err);
    if (r < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int store_events_each(struct nb_store *st, nb_store_event_cb cb, void *data, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_EV_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list async events");
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct nb_store_event ev = {
            .id = sqlite3_column_int64(s, 0),
            .request_id = (const char *)sqlite3_column_text(s, 1),
            .function = (const char *)sqlite3_column_text(s, 2),
            .qualifier = (const char *)sqlite3_column_text(s, 3),
            .payload = sqlite3_column_blob(s, 4),
            .payload_len = (size_t)sqlite3_column_bytes(s, 4),
            .created_ms = sqlite3_column_int64(s, 5),
            .attempts = (int)sqlite3_column_int64(s, 6),
            .errors = (int)sqlite3_column_int64(s, 7),
            .inflight = sqlite3_column_int64(s, 8) != 0,
            .depth = (int)sqlite3_column_int64(s, 9),
        };
        if (!ev.request_id || !ev.function)
            return db_err(st, err, "list async events", NULL);
        r = cb(data, &ev);
    }
    if (r == 0 && rc != SQLITE_DONE)
        return db_err(st, err, "list async events", NULL);
    return r;
}

int store_eic_put(struct nb_store *st, const char *function, const char *qualifier, const char *doc,
                  struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_EIC_PUT, err);
    if (!s)
        return -err->code;
    int r = bind_text(st, s, 1, function, err);
    if (r == 0)
        r = bind_text(st, s, 2, qualifier, err);
    if (r == 0)
        r = bind_text(st, s, 3, doc, err);
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "write event invoke config of", function);
    return 0;
}

int store_eic_delete(struct nb_store *st, const char *function, const char *qualifier,
                     struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_EIC_DELETE, err);
    if (!s)
        return -err->code;
    int r = bind_text(st, s, 1, function, err);
    if (r == 0)
        r = bind_text(st, s, 2, qualifier, err);
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "delete event invoke config of", function);
    if (sqlite3_changes(st->db) == 0)
        return err_set(err, ENOENT, "event invoke config of '%s:%s' not found", function,
                       qualifier);
    return 0;
}

int store_eic_each(struct nb_store *st, nb_store_eic_cb cb, void *data, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_EIC_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list event invoke configs");
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *fn = (const char *)sqlite3_column_text(s, 0);
        const char *q = (const char *)sqlite3_column_text(s, 1);
        const char *doc = (const char *)sqlite3_column_text(s, 2);
        if (!fn || !q || !doc)
            return db_err(st, err, "list event invoke configs", NULL);
        r = cb(data, fn, q, doc);
    }
    if (r == 0 && rc != SQLITE_DONE)
        return db_err(st, err, "list event invoke configs", NULL);
    return r;
}

/* ---- versions and attached objects ---- */

/* Runs BEGIN/COMMIT/ROLLBACK (mutex held). */
static int tx(struct nb_store *st, const char *sql, struct nb_err *err)
{
    return exec_sql(st, sql, sql, err);
}

/* Steps a bound write statement; returns sqlite3_changes() or a negative code. */
static int step_write(struct nb_store *st, sqlite3_stmt *s, const char *what, const char *name,
                      struct nb_err *err)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, what, name);
    return sqlite3_changes(st->db);
}

int store_version_insert(struct nb_store *st, const char *function, int64_t version,
                         const char *doc, struct nb_err *err)
{
    ASSERT(function && doc);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_VER_INSERT, err);
    if (!s || bind_text(st, s, 1, function, err) < 0 || bind_i64(st, s, 2, version, err) < 0 ||
        bind_text(st, s, 3, doc, err) < 0)
        return err_prefix(err, "cannot insert version %lld of '%s'", (long long)version, function);
    int n = step_write(st, s, "insert version of", function, err);
    if (n < 0)
        return n;
    if (n == 0)
        return err_set(err, EEXIST, "version %lld of '%s' already exists", (long long)version,
                       function);
    return 0;
}

/* Deletes the event invoke config of (function, qualifier) if any (mutex held, inside the
 * caller's transaction); returns 0 or a negative code. */
static int delete_eic(struct nb_store *st, const char *function, const char *qualifier,
                      struct nb_err *err)
{
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_EIC_DELETE, err);
    if (!s || bind_text(st, s, 1, function, err) < 0 || bind_text(st, s, 2, qualifier, err) < 0)
        return -EIO;
    int n = step_write(st, s, "delete event invoke config of", function, err);
    return n < 0 ? n : 0;
}

int store_version_delete(struct nb_store *st, const char *function, int64_t version,
                         struct nb_err *err)
{
    ASSERT(function);
    STORE_LOCKED(st);
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)version);
    int r = tx(st, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    int n;
    {
        _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_VER_DELETE, err);
        if (!s || bind_text(st, s, 1, function, err) < 0 || bind_i64(st, s, 2, version, err) < 0)
            n = -EIO;
        else
            n = step_write(st, s, "delete version of", function, err);
    }
    if (n > 0) {
        _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_VER_DELETE_OBJECTS, err);
        if (!s || bind_text(st, s, 1, function, err) < 0 || bind_text(st, s, 2, key, err) < 0 ||
            step_write(st, s, "delete objects of", function, err) < 0)
            n = -EIO;
    }
    if (n > 0 && delete_eic(st, function, key, err) < 0)
        n = -EIO;
    if (n <= 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        if (n == 0)
            return err_set(err, ENOENT, "version %lld of '%s' not found", (long long)version,
                           function);
        return n;
    }
    return tx(st, "COMMIT", err);
}

struct vrow {
    char *function;
    int64_t version;
    char *key;
    char *doc; /* may be NULL for versions */
};

static void vrows_free(struct vrow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].function);
        free(rows[i].key);
        free(rows[i].doc);
    }
    free(rows);
}

/* Copies the rows of a statement with columns (function, version|key, doc) under the mutex. */
static int collect_rows(struct nb_store *st, enum stmt_id id, const char *kind, bool int_key,
                        struct vrow **out, size_t *nout, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, id, err);
    if (!s || (kind && bind_text(st, s, 1, kind, err) < 0))
        return err_prefix(err, "cannot list %s", kind ? kind : "versions");
    struct vrow *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *f = sqlite3_column_text(s, 0);
        const unsigned char *k = int_key ? NULL : sqlite3_column_text(s, 1);
        const unsigned char *doc = sqlite3_column_text(s, 2);
        if (!f || (!int_key && (!k || !doc))) {
            vrows_free(rows, n);
            return db_err(st, err, "list", kind ? kind : "versions");
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            rows = xrealloc(rows, cap * sizeof(*rows));
        }
        rows[n].function = xstrdup((const char *)f);
        rows[n].version = int_key ? sqlite3_column_int64(s, 1) : 0;
        rows[n].key = k ? xstrdup((const char *)k) : NULL;
        rows[n].doc = doc ? xstrdup((const char *)doc) : NULL;
        n++;
    }
    if (rc != SQLITE_DONE) {
        vrows_free(rows, n);
        return db_err(st, err, "list", kind ? kind : "versions");
    }
    *out = rows;
    *nout = n;
    return 0;
}

int store_version_each(struct nb_store *st, nb_store_version_cb cb, void *data, struct nb_err *err)
{
    struct vrow *rows = NULL;
    size_t n = 0;
    int r = collect_rows(st, STMT_VER_EACH, NULL, true, &rows, &n, err);
    for (size_t i = 0; r == 0 && i < n; i++)
        r = cb(data, rows[i].function, rows[i].version, rows[i].doc);
    vrows_free(rows, n);
    return r;
}

int store_object_put(struct nb_store *st, const char *kind, const char *function, const char *key,
                     const char *doc, struct nb_err *err)
{
    ASSERT(kind && function && key && doc);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_OBJ_PUT, err);
    if (!s || bind_text(st, s, 1, kind, err) < 0 || bind_text(st, s, 2, function, err) < 0 ||
        bind_text(st, s, 3, key, err) < 0 || bind_text(st, s, 4, doc, err) < 0)
        return err_prefix(err, "cannot write %s '%s' of '%s'", kind, key, function);
    int n = step_write(st, s, "write object of", function, err);
    return n < 0 ? n : 0;
}

int store_object_delete(struct nb_store *st, const char *kind, const char *function,
                        const char *key, struct nb_err *err)
{
    ASSERT(function && key);
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s =
        stmt_get(st, kind ? STMT_OBJ_DELETE : STMT_OBJ_DELETE_KEY, err);
    int i = 1;
    if (!s || (kind && bind_text(st, s, i++, kind, err) < 0) ||
        bind_text(st, s, i++, function, err) < 0 || bind_text(st, s, i, key, err) < 0)
        return err_prefix(err, "cannot delete '%s' of '%s'", key, function);
    if (kind) {
        int n = step_write(st, s, "delete object of", function, err);
        if (n < 0)
            return n;
        if (n == 0)
            return err_set(err, ENOENT, "'%s' of '%s' not found", key, function);
        return 0;
    }
    /* every kind under key, and the event invoke config of that qualifier, in one transaction */
    int r = tx(st, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    int n = step_write(st, s, "delete object of", function, err);
    if (n > 0 && delete_eic(st, function, key, err) < 0)
        n = -EIO;
    if (n <= 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        if (n == 0)
            return err_set(err, ENOENT, "'%s' of '%s' not found", key, function);
        return n;
    }
    return tx(st, "COMMIT", err);
}

int store_object_each(struct nb_store *st, const char *kind, nb_store_object_cb cb, void *data,
                      struct nb_err *err)
{
    struct vrow *rows = NULL;
    size_t n = 0;
    int r = collect_rows(st, STMT_OBJ_EACH, kind, false, &rows, &n, err);
    for (size_t i = 0; r == 0 && i < n; i++)
        r = cb(data, rows[i].function, rows[i].key, rows[i].doc);
    vrows_free(rows, n);
    return r;
}

/* One SQS change inside the open transaction. */
static int sqs_apply(struct nb_store *st, const struct nb_sqs_rec *rc, struct nb_err *err)
{
    static const enum stmt_id ids[] = {
        [NB_SQS_PUT_QUEUE] = STMT_SQS_Q_PUT, [NB_SQS_DEL_QUEUE] = STMT_SQS_Q_DEL,
        [NB_SQS_PUT_MSG] = STMT_SQS_M_PUT,   [NB_SQS_DEL_MSG] = STMT_SQS_M_DEL,
        [NB_SQS_UPD_MSG] = STMT_SQS_M_UPD,   [NB_SQS_PURGE] = STMT_SQS_M_PURGE,
    };
    ASSERT((size_t)rc->kind < ARRAY_SIZE(ids) && rc->queue);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, ids[rc->kind], err);
    if (!s)
        return -err->code;
    int r = bind_text(st, s, 1, rc->queue, err);
    switch (rc->kind) {
    case NB_SQS_PUT_QUEUE:
        ASSERT(rc->doc);
        if (r == 0)
            r = bind_text(st, s, 2, rc->doc, err);
        break;
    case NB_SQS_PUT_MSG:
    case NB_SQS_UPD_MSG:
        if (r == 0 && rc->kind == NB_SQS_PUT_MSG) {
            ASSERT(rc->doc);
            r = bind_text(st, s, 3, rc->doc, err);
        }
        if (r == 0)
            r = bind_i64(st, s, 4, rc->visible_ms, err);
        if (r == 0)
            r = bind_i64(st, s, 5, rc->receive_count, err);
        if (r == 0)
            r = bind_i64(st, s, 6, rc->first_receive_ms, err);
        /* fall through */
    case NB_SQS_DEL_MSG:
        if (r == 0)
            r = bind_i64(st, s, 2, (int64_t)rc->seq, err);
        break;
    case NB_SQS_DEL_QUEUE:
    case NB_SQS_PURGE:
        break;
    }
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "write queue", rc->queue);
    return 0;
}

int store_sqs_write(struct nb_store *st, const struct nb_sqs_rec *recs, size_t n,
                    struct nb_err *err)
{
    STORE_LOCKED(st);
    int r = exec_sql(st, "BEGIN IMMEDIATE", "begin queue transaction", err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++)
        r = sqs_apply(st, &recs[i], err);
    if (r == 0)
        r = exec_sql(st, "COMMIT", "commit queue transaction", err);
    if (r < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int store_sqs_load(struct nb_store *st, nb_store_sqs_queue_cb qcb, nb_store_sqs_msg_cb mcb,
                   void *data, struct nb_err *err)
{
    STORE_LOCKED(st);
    {
        _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_SQS_Q_EACH, err);
        if (!s)
            return -err->code;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const unsigned char *name = sqlite3_column_text(s, 0);
            const unsigned char *doc = sqlite3_column_text(s, 1);
            if (!name || !doc)
                return db_err(st, err, "load queues", NULL);
            qcb(data, (const char *)name, (const char *)doc);
        }
        if (rc != SQLITE_DONE)
            return db_err(st, err, "load queues", NULL);
    }
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_SQS_M_EACH, err);
    if (!s)
        return -err->code;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct nb_sqs_rec m = {
            .kind = NB_SQS_PUT_MSG,
            .queue = (const char *)sqlite3_column_text(s, 0),
            .seq = (uint64_t)sqlite3_column_int64(s, 1),
            .doc = (const char *)sqlite3_column_text(s, 2),
            .visible_ms = sqlite3_column_int64(s, 3),
            .receive_count = sqlite3_column_int64(s, 4),
            .first_receive_ms = sqlite3_column_int64(s, 5),
        };
        if (!m.queue || !m.doc)
            return db_err(st, err, "load messages", NULL);
        mcb(data, &m);
    }
    if (rc != SQLITE_DONE)
        return db_err(st, err, "load messages", NULL);
    return 0;
}

/* ---- schedule rules ---------------------------------------------------------------------- */

int store_rule_put(struct nb_store *st, const char *name, const char *doc, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_RULE_PUT, err);
    if (!s)
        return -err->code;
    int r = bind_text(st, s, 1, name, err);
    if (r == 0)
        r = bind_text(st, s, 2, doc, err);
    if (r < 0)
        return r;
    if (sqlite3_step(s) != SQLITE_DONE)
        return db_err(st, err, "write rule", name);
    return 0;
}

static int rule_delete_locked(struct nb_store *st, const char *name, struct nb_err *err)
{
    static const enum stmt_id ids[] = {STMT_RULE_DELETE, STMT_RULE_DELETE_TICKS};
    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, ids[i], err);
        if (!s)
            return -err->code;
        int r = bind_text(st, s, 1, name, err);
        if (r < 0)
            return r;
        if (sqlite3_step(s) != SQLITE_DONE)
            return db_err(st, err, "delete rule", name);
    }
    return 0;
}

int store_rule_delete(struct nb_store *st, const char *name, struct nb_err *err)
{
    STORE_LOCKED(st);
    int r = exec_sql(st, "BEGIN IMMEDIATE", "begin rule deletion", err);
    if (r == 0)
        r = rule_delete_locked(st, name, err);
    if (r == 0)
        r = exec_sql(st, "COMMIT", "commit rule deletion", err);
    if (r < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int store_rule_each(struct nb_store *st, nb_store_rule_cb cb, void *data, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_RULE_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list rules");
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        const char *doc = (const char *)sqlite3_column_text(s, 1);
        if (!name || !doc)
            return db_err(st, err, "list rules", NULL);
        r = cb(data, name, doc);
    }
    if (r == 0 && rc != SQLITE_DONE)
        return db_err(st, err, "list rules", NULL);
    return r;
}

int store_tick_each(struct nb_store *st, nb_store_tick_cb cb, void *data, struct nb_err *err)
{
    STORE_LOCKED(st);
    _cleanup_stmt_ sqlite3_stmt *s = stmt_get(st, STMT_TICK_EACH, err);
    if (!s)
        return err_prefix(err, "cannot list rule ticks");
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *rule = (const char *)sqlite3_column_text(s, 0);
        const char *target = (const char *)sqlite3_column_text(s, 1);
        if (!rule || !target)
            return db_err(st, err, "list rule ticks", NULL);
        r = cb(data, rule, target, sqlite3_column_int64(s, 2));
    }
    if (r == 0 && rc != SQLITE_DONE)
        return db_err(st, err, "list rule ticks", NULL);
    return r;
}
