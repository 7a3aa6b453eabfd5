/*
 * logs.c - buffered per-function log files and their reader.
 *
 * Each function with unflushed lines has a struct fn_buf in a small list (functions log rarely
 * compared to the flush period, so a list is enough); the flush timer runs only while something is
 * buffered, so an idle daemon does not wake up. Tokens are "<YYYY-MM-DD>:<byte offset>".
 */
#include "logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "log.h"

#define FLUSH_MS 100
#define FLUSH_BYTES (64 * 1024)
#define READ_MAX (1024 * 1024)

struct fn_buf {
    char *function;
    char day[11];
    struct nb_buf buf;
    struct fn_buf *next;
};

struct nb_logs {
    char *dir; /* DATA_DIR/logs */
    uv_timer_t timer;
    bool timer_armed;
    struct fn_buf *bufs;
    uint64_t day_start_ms, day_end_ms; /* the UTC day of the last line, [start, end) */
    char day[11];                      /* its "YYYY-MM-DD" */
};

struct nb_logs *logs_new(uv_loop_t *loop, const char *data_dir, struct nb_err *err)
{
    _cleanup_free_ char *dir = xasprintf("%s/logs", data_dir);
    int rc = mkdir_p(dir, 0750);
    if (rc < 0) {
        err_set(err, rc, "cannot create '%s': %s", dir, strerror(-rc));
        return NULL;
    }
    struct nb_logs *lg = xcalloc(1, sizeof(*lg));
    lg->dir = steal_ptr(dir);
    uv_timer_init(loop, &lg->timer);
    lg->timer.data = lg;
    return lg;
}

#define DAY_MS 86400000ull /* Unix time has no leap seconds */

/* The UTC day of ms, formatted once per day (three lines per invocation land here). */
static const char *day_of(struct nb_logs *lg, uint64_t ms)
{
    if (ms < lg->day_start_ms || ms >= lg->day_end_ms) {
        char iso[40];
        fmt_iso8601_ms(ms, iso, sizeof(iso));
        memcpy(lg->day, iso, 10);
        lg->day[10] = '\0';
        lg->day_start_ms = ms - ms % DAY_MS;
        lg->day_end_ms = lg->day_start_ms + DAY_MS;
    }
    return lg->day;
}

static void flush_one(struct nb_logs *lg, struct fn_buf *b)
{
    if (!b->buf.len)
        return;
    _cleanup_free_ char *fdir = xasprintf("%s/%s", lg->dir, b->function);
    _cleanup_free_ char *path = xasprintf("%s/%s.log", fdir, b->day);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT && mkdir_p(fdir, 0750) == 0)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_err("cannot open function log path=%s err=\"%s\"", path, strerror(errno));
    } else {
        int rc = write_all(fd, b->buf.data, b->buf.len);
        if (rc < 0)
            log_err("cannot write function log path=%s err=\"%s\"", path, strerror(-rc));
        close(fd);
    }
    buf_reset(&b->buf);
}

void logs_flush(struct nb_logs *lg)
{
    struct fn_buf *b = lg->bufs;
    while (b) {
        struct fn_buf *next = b->next;
        flush_one(lg, b);
        buf_release(&b->buf);
        free(b->function);
        free(b);
        b = next;
    }
    lg->bufs = NULL;
    if (lg->timer_armed) {
        uv_timer_stop(&lg->timer);
        lg->timer_armed = false;
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    struct nb_logs *lg = t->data;
    lg->timer_armed = false;
    logs_flush(lg);
}

void logs_write(struct nb_logs *lg, const char *function, const char *stream, uint64_t ts_ms,
                const char *msg, size_t len)
{
    const char *day = day_of(lg, ts_ms);
    struct fn_buf *b = lg->bufs;
    while (b && (strcmp(b->function, function) || strcmp(b->day, day)))
        b = b->next;
    if (!b) {
        b = xcalloc(1, sizeof(*b));
        b->function = xstrdup(function);
        memcpy(b->day, day, sizeof(b->day));
        b->next = lg->bufs;
        lg->bufs = b;
    }
    char ts[21], *p = ts + sizeof(ts); /* "%llu\t%s\t" without printf: once per log line */
    do
        *--p = (char)('0' + ts_ms % 10);
    while (ts_ms /= 10);
    buf_append(&b->buf, p, (size_t)(ts + sizeof(ts) - p));
    buf_append(&b->buf, "\t", 1);
    buf_appends(&b->buf, stream);
    buf_append(&b->buf, "\t", 1);
    buf_append(&b->buf, msg, len);
    buf_append(&b->buf, "\n", 1);
    if (b->buf.len >= FLUSH_BYTES)
        flush_one(lg, b);
    if (!lg->timer_armed) {
        uv_timer_start(&lg->timer, on_flush_timer, FLUSH_MS, 0);
        lg->timer_armed = true;
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct nb_logs *lg = h->data;
    free(lg->dir);
    free(lg);
}

void logs_free(struct nb_logs *lg)
{
    if (!lg)
        return;
    logs_flush(lg);
    uv_close((uv_handle_t *)&lg->timer, on_timer_closed);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted day names (YYYY-MM-DD) that have a file for the function. */
static size_t list_days(const char *fdir, char ***out)
{
    DIR *dir = opendir(fdir);
    size_t n = 0, cap = 8;
    char **v = xmalloc(cap * sizeof(*v));
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len != 14 || strcmp(e->d_name + 10, ".log"))
                continue;
            if (n == cap)
                v = xrealloc(v, (cap *= 2) * sizeof(*v));
            v[n++] = xstrndup(e->d_name, 10);
        }
        closedir(dir);
    }
    qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    return n;
}

/* Parses one stored line into the events array when ts >= since. */
static void add_event(json_t *events, const char *line, size_t len, uint64_t since_ms)
{
    const char *tab1 = memchr(line, '\t', len);
    if (!tab1)
        return;
    const char *tab2 = memchr(tab1 + 1, '\t', len - (size_t)(tab1 + 1 - line));
    if (!tab2)
        return;
    uint64_t ts = strtoull(line, NULL, 10);
    if (ts < since_ms)
        return;
    const char *msg = tab2 + 1;
    json_t *ev = json_object();
    json_object_set_new(ev, "timestamp", json_integer((json_int_t)ts));
    json_object_set_new(ev, "logStreamName", json_stringn(tab1 + 1, (size_t)(tab2 - tab1 - 1)));
    json_object_set_new(ev, "message", json_stringn(msg, len - (size_t)(msg - line)));
    json_array_append_new(events, ev);
}

int logs_read(struct nb_logs *lg, const char *function, uint64_t since_ms, const char *token,
              json_t **events, char **next_token, struct nb_err *err)
{
    logs_flush(lg);
    char start_day[11] = "";
    uint64_t start_off = 0;
    if (token && *token) {
        const char *colon = strchr(token, ':');
        int64_t off;
        if (!colon || colon - token != 10 || parse_i64(colon + 1, 0, INT64_MAX, &off) < 0)
            return err_set(err, EINVAL, "invalid nextToken '%s'", token);
        memcpy(start_day, token, 10);
        start_day[10] = '\0';
        start_off = (uint64_t)off;
        since_ms = 0;
    } else {
        memcpy(start_day, day_of(lg, since_ms), sizeof(start_day));
    }
    _cleanup_free_ char *fdir = xasprintf("%s/%s", lg->dir, function);
    char **days;
    size_t n = list_days(fdir, &days);
    if (n == 0) {
        free(days);
        return err_set(err, ENOENT, "no logs for function '%s'", function);
    }
    json_t *out = json_array();
    char last_day[11];
    uint64_t last_off = start_off;
    snprintf(last_day, sizeof(last_day), "%s", start_day);
    size_t budget = READ_MAX;
    for (size_t i = 0; i < n && budget; i++) {
        int c = strcmp(days[i], start_day);
        if (c < 0)
            continue;
        uint64_t off = c == 0 ? start_off : 0;
        _cleanup_free_ char *path = xasprintf("%s/%s.log", fdir, days[i]);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) < 0 || (uint64_t)st.st_size <= off) {
            snprintf(last_day, sizeof(last_day), "%s", days[i]);
            last_off = (uint64_t)st.st_size > off ? off : (uint64_t)st.st_size;
            continue;
        }
        size_t want = (size_t)((uint64_t)st.st_size - off);
        if (want > budget)
            want = budget;
        char *data = xmalloc(want + 1);
        ssize_t got = pread(fd, data, want, (off_t)off);
        if (got < 0)
            got = 0;
        /* only whole lines */
        size_t used = 0;
        for (;;) {
            char *nl = memchr(data + used, '\n', (size_t)got - used);
            if (!nl)
                break;
            add_event(out, data + used, (size_t)(nl - data - used), since_ms);
            used = (size_t)(nl - data) + 1;
        }
        free(data);
        budget -= want;
        snprintf(last_day, sizeof(last_day), "%s", days[i]);
        last_off = off + used;
    }
    for (size_t i = 0; i < n; i++)
        free(days[i]);
    free(days);
    *events = out;
    *next_token = xasprintf("%s:%llu", last_day, (unsigned long long)last_off);
    return 0;
}
