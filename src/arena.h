/*
 * arena.h - a per-request memory arena (h2o's mem pool): many small allocations, one release.
 *
 * Ownership: everything allocated from an arena lives until arena_release(); nothing allocated
 * here may be free()d on its own. Blocks grow geometrically; large allocations get their own block.
 */
#ifndef NIMBUS_ARENA_H
#define NIMBUS_ARENA_H

#include "util.h"

struct nb_arena_block;
struct nb_arena {
    struct nb_arena_block *head;
    char inline_buf[1024]; /* first allocations come from here: no malloc for small requests */
    size_t inline_used;
};

void arena_init(struct nb_arena *a);
void arena_release(struct nb_arena *a);
/* 16-byte aligned; never NULL. */
void *arena_alloc(struct nb_arena *a, size_t n);
char *arena_strdup(struct nb_arena *a, const char *s);
char *arena_strndup(struct nb_arena *a, const char *s, size_t n);
char *arena_printf(struct nb_arena *a, const char *fmt, ...) PRINTF_LIKE(2, 3);

#endif
