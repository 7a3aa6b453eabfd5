/*
 * async_sched.c - Lambda's retry rules for asynchronous invocations and the timer heap of waiting
 * events (see async_sched.h). Pure functions over caller-owned state; loop thread only by use.
 */
#include "async_sched.h"

#include "util.h"

static uint64_t expiry(const struct nb_async_policy *p, const struct nb_async_state *s)
{
    return s->created_ms + p->max_age_ms;
}

bool async_expired(const struct nb_async_policy *p, const struct nb_async_state *s, uint64_t now_ms)
{
    return now_ms >= expiry(p, s);
}

static void retry_at(const struct nb_async_policy *p, const struct nb_async_state *s, uint64_t due,
                     struct nb_async_decision *out)
{
    out->action = ASYNC_RETRY;
    out->due_ms = due < expiry(p, s) ? due : expiry(p, s);
    out->condition = NULL;
}

void async_decide(const struct nb_async_policy *p, struct nb_async_state *s, enum nb_async_result r,
                  uint64_t now_ms, struct nb_async_decision *out)
{
    out->due_ms = 0;
    switch (r) {
    case ASYNC_OK:
        out->action = ASYNC_DONE;
        out->condition = "Success";
        return;
    case ASYNC_FN_ERROR:
        s->errors++;
        if (s->errors > p->max_retries) {
            out->action = ASYNC_FAILED;
            out->condition = "RetriesExhausted";
            return;
        }
        if (async_expired(p, s, now_ms))
            break;
        retry_at(p, s, now_ms + (uint64_t)s->errors * p->retry_delay_ms, out);
        return;
    case ASYNC_THROTTLE:
    case ASYNC_PLATFORM:
        if (async_expired(p, s, now_ms))
            break;
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : p->backoff_min_ms;
        if (s->backoff_ms > p->backoff_max_ms)
            s->backoff_ms = p->backoff_max_ms;
        retry_at(p, s, now_ms + s->backoff_ms, out);
        return;
    }
    out->action = ASYNC_FAILED;
    out->condition = "EventAgeExceeded";
}

static bool less(const struct nb_heap *h, size_t a, size_t b)
{
    return h->v[a]->due_ms < h->v[b]->due_ms;
}

static void swap(struct nb_heap *h, size_t a, size_t b)
{
    struct nb_heap_slot *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->idx = a;
    h->v[b]->idx = b;
}

static void sift_up(struct nb_heap *h, size_t i)
{
    while (i > 0 && less(h, i, (i - 1) / 2)) {
        swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct nb_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && less(h, l, m))
            m = l;
        if (r < h->n && less(h, r, m))
            m = r;
        if (m == i)
            return;
        swap(h, i, m);
        i = m;
    }
}

void heap_push(struct nb_heap *h, struct nb_heap_slot *s)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    s->idx = h->n;
    h->v[h->n++] = s;
    sift_up(h, s->idx);
}

struct nb_heap_slot *heap_peek(const struct nb_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

void heap_remove(struct nb_heap *h, struct nb_heap_slot *s)
{
    size_t i = s->idx;
    ASSERT(i < h->n && h->v[i] == s);
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        h->v[i]->idx = i;
        sift_down(h, i);
        sift_up(h, i);
    }
    s->idx = SIZE_MAX;
}

struct nb_heap_slot *heap_pop(struct nb_heap *h)
{
    struct nb_heap_slot *s = heap_peek(h);
    if (s)
        heap_remove(h, s);
    return s;
}

void heap_release(struct nb_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
