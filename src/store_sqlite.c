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
    STMT__MAX,
};

static const char *const stmt_sql[STMT__MAX] = {
    [STMT_FN_INSERT] = ("INSERT INTO functions(name, doc, created_ms, updated_ms) "
                        "VALUES(?1, ?2, ?3, ?3) ON CONFLICT(name) DO NOTHING"),
    [STMT_FN_UPDATE] = "UPDATE functions SET doc = ?2, updated_ms = ?3 WHERE name = ?1",
    [STMT_FN_DELETE] = "DELETE FROM functions WHERE name = ?1",
    [STMT_FN_GET] = "SELECT doc FROM functions WHERE name = ?1",
    [STMT_FN_EACH] = "SELECT name, doc FROM functions ORDER BY name",
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
    return 0;
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
