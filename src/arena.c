/*
 * arena.c - bump allocation over a list of malloc'd blocks plus a small inline buffer.
 * Invariant: a->head is the block currently bumped; older blocks are only freed by release.
 */
#include "arena.h"

struct nb_arena_block {
    struct nb_arena_block *next;
    size_t size, used;
    _Alignas(16) char data[];
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

void arena_init(struct nb_arena *a)
{
    a->head = NULL;
    a->inline_used = 0;
}

void arena_release(struct nb_arena *a)
{
    struct nb_arena_block *b = a->head;
    while (b) {
        struct nb_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->inline_used = 0;
}

void *arena_alloc(struct nb_arena *a, size_t n)
{
    n = ALIGN16(n ? n : 1);
    if (a->inline_used + n <= sizeof(a->inline_buf)) {
        void *p = a->inline_buf + a->inline_used;
        a->inline_used += n;
        return p;
    }
    struct nb_arena_block *b = a->head;
    if (!b || b->used + n > b->size) {
        size_t size = b ? b->size * 2 : 4096;
        if (size < n)
            size = n;
        struct nb_arena_block *nb = xmalloc(sizeof(*nb) + size);
        nb->size = size;
        nb->used = 0;
        /* a huge one-off allocation goes behind the current block so bumping continues there */
        if (b && n > b->size) {
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *arena_strndup(struct nb_arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct nb_arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct nb_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        BUG("bad format '%s'", fmt);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}
