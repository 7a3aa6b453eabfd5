/*
 * audit.c - the append-only audit log file, its syncer thread, and its reader (contract and record
 * format in audit.h).
 *
 * The loop thread formats a record and write()s it (O_APPEND) at once, then bumps `appended`;
 * the syncer thread waits for appended > synced, fdatasync()s and publishes the count it covered.
 * Why this split: a write to the page cache takes microseconds and makes the record visible and
 * crash-safe (for the daemon) before its reply leaves, while the fdatasync - milliseconds, the
 * blocking part - stays off the loop; one fdatasync covers every line appended before it started.
 * Invariants: only the loop thread writes fd; the syncer only fdatasyncs it; fd is never
 * truncated or seeked. The reader opens the file on its own and never writes.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>

#include "log.h"

struct nb_audit {
    int fd;
    char *path;
    pthread_t syncer;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* appended changed, stop set, or synced changed */
    uint64_t appended, synced;
    bool stop;
    uint64_t write_errors;
};

static void *syncer_main(void *arg)
{
    struct nb_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->synced == a->appended && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->synced == a->appended)
            break; /* stop, and nothing left */
        uint64_t target = a->appended;
        pthread_mutex_unlock(&a->mu);
        if (fdatasync(a->fd) < 0)
            log_err("msg=\"audit log fdatasync failed\" path=%s err=\"%s\"", a->path,
                    strerror(errno));
        pthread_mutex_lock(&a->mu);
        a->synced = target;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

struct nb_audit *audit_open(const char *data_dir, struct nb_err *err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", data_dir, AUDIT_FILE);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err_set(err, errno, "cannot open audit log '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        err_set(err, EINVAL, "audit log '%s' is not a regular file", path);
        return NULL;
    }
    if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
        err_set(err, errno, "cannot make audit log '%s' mode 0600: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct nb_audit *a = xcalloc(1, sizeof(*a));
    a->fd = fd;
    a->path = steal_ptr(path);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    int rc = pthread_create(&a->syncer, NULL, syncer_main, a);
    if (rc != 0) {
        err_set(err, rc, "cannot start the audit log syncer: %s", strerror(rc));
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        close(a->fd);
        free(a->path);
        free(a);
        return NULL;
    }
    return a;
}

void audit_sync(struct nb_audit *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->synced != a->appended)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

void audit_close(struct nb_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->syncer, NULL); /* it syncs what is left before it exits */
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    close(a->fd);
    free(a->path);
    free(a);
}

const char *audit_path(const struct nb_audit *a)
{
    return a->path;
}

/* Adds key: s cut to AUDIT_FIELD_MAX bytes (at a UTF-8 boundary; invalid UTF-8 is replaced). */
static void set_str(json_t *o, const char *key, const char *s)
{
    size_t n = strnlen(s, AUDIT_FIELD_MAX);
    while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    json_t *v = json_stringn(s, n);
    if (!v)
        v = json_string("(not UTF-8)");
    json_object_set_new(o, key, v);
}

int audit_append(struct nb_audit *a, const struct nb_audit_record *r)
{
    char when[32];
    fmt_iso8601_ms(r->time_ms ? r->time_ms : now_ms(), when, sizeof(when));
    json_t *o = json_object();
    set_str(o, "time", when);
    set_str(o, "keyId", r->key_id ? r->key_id : "-");
    set_str(o, "action", r->action ? r->action : "-");
    set_str(o, "resource", r->resource ? r->resource : "*");
    set_str(o, "result", r->result);
    json_object_set_new(o, "status", json_integer(r->status));
    if (r->error)
        set_str(o, "error", r->error);
    set_str(o, "requestId", r->request_id ? r->request_id : "-");
    set_str(o, "source", r->source ? r->source : "-");
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        BUG("json_dumps failed");
    size_t len = strlen(line);
    line = xrealloc(line, len + 2);
    line[len++] = '\n';
    line[len] = '\0';
    int rc = write_all(a->fd, line, len);
    free(line);
    if (rc < 0) {
        a->write_errors++;
        log_err("msg=\"audit log write failed\" path=%s err=\"%s\" errors=%" PRIu64, a->path,
                strerror(-rc), a->write_errors);
        return rc;
    }
    pthread_mutex_lock(&a->mu);
    a->appended++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* ---- reading ---- */

int audit_parse_time(const char *s, uint64_t *ms)
{
    int y, mo, d, h, mi, sec, msec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &msec, &n) != 7 ||
        n != 24 || s[n] || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        y < 1970 || msec < 0)
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t < 0)
        return -EINVAL;
    *ms = (uint64_t)t * 1000 + (uint64_t)msec;
    return 0;
}

int audit_read(const char *path, uint64_t since_ms, const char *token, size_t limit,
               json_t **events, char **next_token, struct nb_err *err)
{
    int64_t off = 0;
    if (token && *token && parse_i64(token, 0, INT64_MAX, &off) < 0)
        return err_set(err, EINVAL, "invalid nextToken '%s'", token);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT)
        return err_set(err, errno, "cannot open audit log '%s': %s", path, strerror(errno));
    struct stat st = {0};
    if (fd >= 0 && fstat(fd, &st) < 0)
        return err_set(err, errno, "cannot stat audit log '%s': %s", path, strerror(errno));
    if (off > st.st_size)
        return err_set(err, EINVAL, "invalid nextToken '%s'", token);
    size_t want = (size_t)(st.st_size - off);
    if (want > AUDIT_READ_MAX)
        want = AUDIT_READ_MAX;
    _cleanup_free_ char *buf = xmalloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(err, errno, "cannot read audit log '%s': %s", path, strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';

    json_t *arr = json_array();
    size_t pos = 0;
    while (pos < got && json_array_size(arr) < limit) {
        char *nl = memchr(buf + pos, '\n', got - pos);
        if (!nl)
            break; /* a line still being written, or cut by AUDIT_READ_MAX: next time */
        size_t len = (size_t)(nl - (buf + pos));
        json_t *rec = json_loadb(buf + pos, len, 0, NULL);
        pos += len + 1;
        uint64_t t;
        const char *ts = json_string_value(json_object_get(rec, "time"));
        if (json_is_object(rec) && ts && audit_parse_time(ts, &t) == 0 && t >= since_ms)
            json_array_append(arr, rec);
        json_decref(rec);
    }
    if (pos == 0 && got == AUDIT_READ_MAX && !memchr(buf, '\n', got))
        pos = got; /* never stall on a line longer than a whole read (not written by nimbus) */
    *events = arr;
    *next_token = xasprintf("%" PRId64, off + (int64_t)pos);
    return 0;
}
