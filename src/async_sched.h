/*
 * async_sched.h - the pure logic of asynchronous delivery, kept apart so it can be unit tested:
 * what happens to an event after an attempt (Lambda's retry rules), and the timer heap of events
 * waiting for their next attempt. No I/O, no loop, no allocation besides the heap's array.
 *
 * Lambda's rules (LAMBDA.md §3.4, §3.11): a function error (Unhandled, timeout) is retried at most
 * MaximumRetryAttempts times, the n-th retry after n x retry_delay (1 min, then 2 min); a throttle
 * or a platform error is retried with exponential backoff (backoff_min doubling up to backoff_max)
 * for as long as the event is younger than MaximumEventAgeInSeconds. An event is never attempted
 * at or past its expiry (created + max age): its next attempt is clamped to the expiry, where it
 * fails with EventAgeExceeded.
 */
#ifndef NIMBUS_ASYNC_SCHED_H
#define NIMBUS_ASYNC_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_async_policy {
    int max_retries;         /* MaximumRetryAttempts, 0..2 */
    uint64_t max_age_ms;     /* MaximumEventAgeInSeconds in ms */
    uint64_t retry_delay_ms; /* the n-th retry after a function error waits n x this */
    uint64_t backoff_min_ms; /* first wait after a throttle or platform error */
    uint64_t backoff_max_ms; /* cap of the doubling */
};

enum nb_async_result { ASYNC_OK, ASYNC_FN_ERROR, ASYNC_THROTTLE, ASYNC_PLATFORM };
enum nb_async_action { ASYNC_DONE, ASYNC_RETRY, ASYNC_FAILED };

/* Per-event state the rules need (the caller keeps it with the event). */
struct nb_async_state {
    uint64_t created_ms;
    int errors;          /* function-error attempts so far */
    uint64_t backoff_ms; /* last throttle/platform wait; 0 = none yet */
};

struct nb_async_decision {
    enum nb_async_action action;
    uint64_t due_ms;       /* ASYNC_RETRY: when to try again */
    const char *condition; /* destination record condition: "Success", "RetriesExhausted",
                              "EventAgeExceeded" (DONE/FAILED) */
};

/* True when the event may no longer be attempted at now_ms. */
bool async_expired(const struct nb_async_policy *p, const struct nb_async_state *s,
                   uint64_t now_ms);
/* Applies the rules to the result of an attempt that ended at now_ms; updates s. */
void async_decide(const struct nb_async_policy *p, struct nb_async_state *s, enum nb_async_result r,
                  uint64_t now_ms, struct nb_async_decision *out);

/* A binary min-heap of slots ordered by due_ms (ties in insertion order are not kept). A slot is
 * embedded in its owner; idx is its position while on the heap (SIZE_MAX when not). */
struct nb_heap_slot {
    uint64_t due_ms;
    size_t idx;
};
struct nb_heap {
    struct nb_heap_slot **v;
    size_t n, cap;
};
void heap_push(struct nb_heap *h, struct nb_heap_slot *s);
/* The earliest slot or NULL (not removed). */
struct nb_heap_slot *heap_peek(const struct nb_heap *h);
/* Removes and returns the earliest slot or NULL. */
struct nb_heap_slot *heap_pop(struct nb_heap *h);
/* Removes s (on the heap). */
void heap_remove(struct nb_heap *h, struct nb_heap_slot *s);
void heap_release(struct nb_heap *h);

#endif
