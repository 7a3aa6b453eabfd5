/*
 * util.c - the helpers of util.h. Nothing here touches the event loop or global state other than
 * the random source for uuid_v4 (getrandom).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

void nb__bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "BUG: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom(strlen(s));
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        oom(n);
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *out;
    if (vasprintf(&out, fmt, ap) < 0)
        oom(strlen(fmt));
    return out;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = xvasprintf(fmt, ap);
    va_end(ap);
    return out;
}

void buf_grow(struct nb_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct nb_buf *b, const void *data, size_t len)
{
    buf_grow(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_appends(struct nb_buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_appendf(struct nb_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        BUG("bad format '%s'", fmt);
    buf_grow(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void buf_reset(struct nb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *buf_detach(struct nb_buf *b, size_t *len)
{
    if (!b->data)
        buf_grow(b, 0), b->data[0] = '\0';
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void buf_release(struct nb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void split_time(uint64_t ms, struct tm *tm)
{
    time_t secs = (time_t)(ms / 1000);
    gmtime_r(&secs, tm);
}

void fmt_iso8601_ms(uint64_t ms, char *out, size_t outlen)
{
    struct tm tm;
    split_time(ms, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void fmt_lambda_time(uint64_t ms, char *out, size_t outlen)
{
    struct tm tm;
    split_time(ms, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Random bytes from a per-thread pool refilled with one getrandom(2) call per 256 UUIDs: the
 * invoke path needs three per invocation (request id, trace id). The pool lives in a page mapped
 * MADV_WIPEONFORK, so a forked child (fork, vfork-less clone) finds it empty and refills it instead
 * of reusing its parent's bytes; no getpid(2) per call. Where the kernel lacks WIPEONFORK (before
 * 4.14) the pid is compared instead. */
struct random_pool {
    size_t avail; /* zeroed by the kernel in a child: refill */
    pid_t owner;  /* only used without WIPEONFORK */
    unsigned char bytes[4096 - 2 * sizeof(size_t)];
};

_Static_assert(sizeof(struct random_pool) == 4096, "one page");

static void random_bytes(unsigned char *out, size_t n)
{
    static _Thread_local struct random_pool *pool;
    static _Thread_local bool check_pid;
    if (!pool) {
        void *p =
            mmap(NULL, sizeof(*pool), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            BUG("mmap failed: %s", strerror(errno));
        check_pid = madvise(p, sizeof(*pool), MADV_WIPEONFORK) < 0;
        pool = p;
    }
    ASSERT(n <= sizeof(pool->bytes));
    if (pool->avail < n || (check_pid && pool->owner != getpid())) {
        pool->owner = check_pid ? getpid() : 0;
        size_t got = 0;
        while (got < sizeof(pool->bytes)) {
            ssize_t r = getrandom(pool->bytes + got, sizeof(pool->bytes) - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                BUG("getrandom failed: %s", strerror(errno));
            }
            got += (size_t)r;
        }
        pool->avail = sizeof(pool->bytes);
    }
    pool->avail -= n;
    memcpy(out, pool->bytes + pool->avail, n);
    explicit_bzero(pool->bytes + pool->avail, n);
}

uint64_t random_u64(void)
{
    uint64_t v;
    random_bytes((unsigned char *)&v, sizeof(v));
    return v;
}

void uuid_v4(char *out)
{
    unsigned char r[16];
    random_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    /* 8-4-4-4-12 hex digits; without snprintf, as this runs for every invocation */
    char hex[33];
    hex_encode(r, 16, hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s)
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int read_file(const char *path, char **out, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct nb_buf b = NB_BUF_INIT;
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            buf_release(&b);
            return -e;
        }
        if (n == 0)
            break;
        buf_append(&b, chunk, (size_t)n);
    }
    *out = buf_detach(&b, len);
    return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    return r < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path)
{
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
        return errno == ENOENT ? 0 : -errno;
    return 0;
}
