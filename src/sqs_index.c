/*
 * sqs_index.c - the per-queue message index of the queue service (see sqs_internal.h for the
 * invariant): an open-addressing hash seq -> message (backward-shift deletion, no tombstones), a
 * binary min-heap of invisible messages by visible_ms (each message knows its slot, so removal
 * and re-keying are O(log n)), the doubly linked list of visible messages, and FIFO group chains.
 * No I/O, no replies: callers in sqs.c and sqs_message.c record durability separately.
 */
#include "sqs_internal.h"

static size_t slot_of(uint64_t seq, size_t cap)
{
    return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static void map_put(struct sqs_queue *q, struct sqs_msg *m);

static void map_grow(struct sqs_queue *q)
{
    struct sqs_msg **old = q->map;
    size_t oldcap = q->map_cap;
    q->map_cap = oldcap ? oldcap * 2 : 64;
    q->map = xcalloc(q->map_cap, sizeof(*q->map));
    q->map_n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            map_put(q, old[i]);
    free(old);
}

static void map_put(struct sqs_queue *q, struct sqs_msg *m)
{
    if ((q->map_n + 1) * 2 > q->map_cap)
        map_grow(q);
    size_t i = slot_of(m->seq, q->map_cap);
    while (q->map[i])
        i = (i + 1) & (q->map_cap - 1);
    q->map[i] = m;
    q->map_n++;
}

struct sqs_msg *sqs__map_get(struct sqs_queue *q, uint64_t seq)
{
    if (!q->map_cap)
        return NULL;
    for (size_t i = slot_of(seq, q->map_cap); q->map[i]; i = (i + 1) & (q->map_cap - 1))
        if (q->map[i]->seq == seq)
            return q->map[i];
    return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_del(struct sqs_queue *q, uint64_t seq)
{
    size_t mask = q->map_cap - 1, i = slot_of(seq, q->map_cap);
    while (q->map[i] && q->map[i]->seq != seq)
        i = (i + 1) & mask;
    if (!q->map[i])
        return;
    q->map[i] = NULL;
    q->map_n--;
    for (size_t j = (i + 1) & mask; q->map[j]; j = (j + 1) & mask) {
        size_t home = slot_of(q->map[j]->seq, q->map_cap);
        /* move j back to i when its home is not in (i, j] cyclically */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            q->map[i] = q->map[j];
            q->map[j] = NULL;
            i = j;
        }
    }
}

/* ---- heap of invisible messages -------------------------------------------------------- */

static void heap_swap(struct sqs_queue *q, size_t a, size_t b)
{
    struct sqs_msg *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap_idx = a;
    q->heap[b]->heap_idx = b;
}

static void heap_up(struct sqs_queue *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->visible_ms <= q->heap[i]->visible_ms)
            break;
        heap_swap(q, i, p);
        i = p;
    }
}

static void heap_down(struct sqs_queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->heap_n && q->heap[l]->visible_ms < q->heap[m]->visible_ms)
            m = l;
        if (r < q->heap_n && q->heap[r]->visible_ms < q->heap[m]->visible_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

void sqs__heap_push(struct sqs_queue *q, struct sqs_msg *m)
{
    if (q->heap_n == q->heap_cap) {
        q->heap_cap = q->heap_cap ? 2 * q->heap_cap : 64;
        q->heap = xrealloc(q->heap, q->heap_cap * sizeof(*q->heap));
    }
    m->heap_idx = q->heap_n;
    q->heap[q->heap_n++] = m;
    heap_up(q, m->heap_idx);
}

void sqs__heap_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    size_t i = m->heap_idx;
    ASSERT(i < q->heap_n && q->heap[i] == m);
    q->heap_n--;
    if (i != q->heap_n) {
        q->heap[i] = q->heap[q->heap_n];
        q->heap[i]->heap_idx = i;
        heap_down(q, i);
        heap_up(q, i);
    }
    m->heap_idx = SIZE_MAX;
}

/* ---- ready list, groups ------------------------------------------------------------------ */

void sqs__ready_append(struct sqs_queue *q, struct sqs_msg *m)
{
    m->heap_idx = SIZE_MAX;
    m->next = NULL;
    m->prev = q->ready_tail;
    if (q->ready_tail)
        q->ready_tail->next = m;
    else
        q->ready_head = m;
    q->ready_tail = m;
    q->ready_n++;
}

void sqs__ready_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->ready_head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->ready_tail = m->prev;
    m->prev = m->next = NULL;
    q->ready_n--;
}

static struct sqs_group *group_get(struct sqs_queue *q, const char *id)
{
    struct sqs_group **pp = &q->groups;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->id, id))
            return *pp;
    struct sqs_group *g = xcalloc(1, sizeof(*g));
    g->id = xstrdup(id);
    *pp = g;
    return g;
}

void sqs__group_unlink(struct sqs_queue *q, struct sqs_msg *m)
{
    struct sqs_group *g = m->grp;
    if (!g)
        return;
    if (m->gprev)
        m->gprev->gnext = m->gnext;
    else
        g->head = m->gnext;
    if (m->gnext)
        m->gnext->gprev = m->gprev;
    else
        g->tail = m->gprev;
    m->grp = NULL;
    if (!g->head) { /* drop the empty group */
        struct sqs_group **pp = &q->groups;
        while (*pp != g)
            pp = &(*pp)->next;
        *pp = g->next;
        free(g->id);
        free(g);
    }
}

void sqs__msg_free(struct sqs_msg *m)
{
    if (!m)
        return;
    free(m->body);
    json_decref(m->attrs);
    json_decref(m->sys);
    free(m->group);
    free(m->dedup);
    free(m);
}

/* Inserts m (durable) into q's index. */
void sqs__index_add(struct sqs_queue *q, struct sqs_msg *m, int64_t now)
{
    map_put(q, m);
    if (q->fifo && m->group) {
        struct sqs_group *g = group_get(q, m->group);
        /* messages arrive in seq order, except on load (also in order) */
        m->gprev = g->tail;
        m->gnext = NULL;
        if (g->tail)
            g->tail->gnext = m;
        else
            g->head = m;
        g->tail = m;
        m->grp = g;
    }
    if (m->visible_ms <= now)
        sqs__ready_append(q, m);
    else
        sqs__heap_push(q, m);
}

/* Removes m from q's index (does not free). */
void sqs__index_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    map_del(q, m->seq);
    if (m->heap_idx == SIZE_MAX)
        sqs__ready_remove(q, m);
    else
        sqs__heap_remove(q, m);
    sqs__group_unlink(q, m);
}

void sqs__promote(struct sqs_queue *q, int64_t now)
{
    while (q->heap_n && q->heap[0]->visible_ms <= now) {
        struct sqs_msg *m = q->heap[0];
        sqs__heap_remove(q, m);
        sqs__ready_append(q, m);
    }
}
