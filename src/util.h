/*
 * util.h - allocation that never fails, cleanup attributes, BUG/ASSERT, a growable byte buffer,
 * clocks and small string helpers shared by every module.
 *
 * Ownership: x*alloc results belong to the caller (free()). A struct nb_buf owns its data until
 * buf_detach() hands it out. Out of memory aborts with a message; callers never check for NULL.
 * Including util.h also includes banned.h (after the common system headers), so every .c that
 * includes it cannot call strcpy, sprintf, gmtime and the other banned functions.
 */
#ifndef NIMBUS_UTIL_H
#define NIMBUS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Aborts with file:line; always on. */
#define BUG(...) nb__bug(__FILE__, __LINE__, __VA_ARGS__)
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            nb__bug(__FILE__, __LINE__, "assertion failed: %s", #cond);                            \
    } while (0)
_Noreturn void nb__bug(const char *file, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);

static inline void freep(void *p)
{
    free(*(void **)p);
}
static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define steal_ptr(p)                                                                               \
    __extension__({                                                                                \
        __typeof__(p) steal__tmp = (p);                                                            \
        (p) = NULL;                                                                                \
        steal__tmp;                                                                                \
    })
#define steal_fd(fd)                                                                               \
    __extension__({                                                                                \
        int steal__tmp = (fd);                                                                     \
        (fd) = -1;                                                                                 \
        steal__tmp;                                                                                \
    })

/* A growable byte buffer; data is always NUL-terminated (data may be NULL while len == 0). */
struct nb_buf {
    char *data;
    size_t len;
    size_t cap;
};
#define NB_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
void buf_grow(struct nb_buf *b, size_t extra);
void buf_append(struct nb_buf *b, const void *data, size_t len);
void buf_appends(struct nb_buf *b, const char *s);
void buf_appendf(struct nb_buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void buf_reset(struct nb_buf *b);
/* Returns the data (malloc'd, NUL-terminated, never NULL) and leaves the buffer empty. */
char *buf_detach(struct nb_buf *b, size_t *len);
void buf_release(struct nb_buf *b);

/* Clocks. */
uint64_t now_ms(void);  /* wall clock, ms since the epoch */
uint64_t mono_ns(void); /* CLOCK_MONOTONIC, ns */
/* Formats a wall-clock time in ms as ISO-8601 UTC "2026-11-26T14:06:14.123Z" (out >= 32 bytes). */
void fmt_iso8601_ms(uint64_t ms, char *out, size_t outlen);
/* Formats Lambda's LastModified form "2026-11-26T14:06:14.123+0000" (out >= 32 bytes). */
void fmt_lambda_time(uint64_t ms, char *out, size_t outlen);

/* A random version-4 UUID in canonical lowercase form (out >= 37 bytes). */
void uuid_v4(char *out);
/* 64 random bits from the same getrandom(2) pool as uuid_v4. */
uint64_t random_u64(void);
/* Lowercase hex of len bytes (out >= 2*len+1). */
void hex_encode(const unsigned char *in, size_t len, char *out);

/* Strict integer parsing: whole string, base 10, within [min,max]. Returns 0 or -EINVAL/-ERANGE. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Writes all of buf to fd, retrying on EINTR/short writes. Returns 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Reads a whole file (NUL-terminated); returns 0 or -errno. *out is malloc'd. */
int read_file(const char *path, char **out, size_t *len);
/* mkdir -p with mode for the created components. Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf; does not follow symlinks. Returns 0 or -errno. */
int rm_rf(const char *path);

#include "banned.h"

#endif
