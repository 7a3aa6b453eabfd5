/*
 * provisioned.c - provisioned concurrency upkeep: configs per function, reconciling instances
 * with them, status, JSON and records. See provisioned.h.
 *
 * Invariants: an instance with pc_id names a config of its own function or is retired by the next
 * sync; at most `requested` live (neither retired nor killed) instances carry a config's id; the
 * upkeep timer is the only place replacements start from after an instance died, so teardown
 * never re-enters instance creation. Nothing is started while the daemon drains.
 */
#include "provisioned.h"

#include <errno.h>

#include "daemon.h"
#include "instance.h"
#include "log.h"

#define UPKEEP_DELAY_MS 200 /* batches replacements; bounds a crash loop after init */

struct nb_pc_state {
    uv_timer_t timer;
    struct nb_daemon *d;
};

static uint64_t next_id;

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_upkeep(uv_timer_t *t)
{
    struct nb_pc_state *st = t->data;
    provisioned_sync_all(st->d);
}

void provisioned_init(struct nb_daemon *d)
{
    struct nb_pc_state *st = xcalloc(1, sizeof(*st));
    st->d = d;
    uv_timer_init(d->loop, &st->timer);
    st->timer.data = st;
    uv_unref((uv_handle_t *)&st->timer); /* never what keeps the loop alive */
    d->pc = st;
}

void provisioned_release(struct nb_daemon *d)
{
    if (!d->pc)
        return;
    uv_timer_stop(&d->pc->timer);
    d->pc->timer.data = d->pc;
    uv_close((uv_handle_t *)&d->pc->timer, on_timer_closed);
    d->pc = NULL;
}

static void schedule(struct nb_daemon *d)
{
    if (d->pc && !d->draining && !uv_is_active((uv_handle_t *)&d->pc->timer))
        uv_timer_start(&d->pc->timer, on_upkeep, UPKEEP_DELAY_MS, 0);
}

struct nb_provisioned *provisioned_new(const char *qualifier, int requested,
                                       uint64_t last_modified_ms)
{
    struct nb_provisioned *pc = xcalloc(1, sizeof(*pc));
    pc->id = ++next_id;
    pc->qualifier = xstrdup(qualifier);
    pc->requested = requested;
    pc->last_modified_ms = last_modified_ms;
    return pc;
}

void provisioned_free(struct nb_provisioned *pc)
{
    if (!pc)
        return;
    free(pc->qualifier);
    free(pc->failure);
    free(pc);
}

struct nb_provisioned *provisioned_find(struct nb_fn *fn, const char *qualifier)
{
    for (size_t i = 0; i < fn->n_pcs; i++)
        if (!strcmp(fn->pcs[i]->qualifier, qualifier))
            return fn->pcs[i];
    return NULL;
}

static struct nb_provisioned *find_id(struct nb_fn *fn, uint64_t id)
{
    for (size_t i = 0; i < fn->n_pcs; i++)
        if (fn->pcs[i]->id == id)
            return fn->pcs[i];
    return NULL;
}

static void recount(struct nb_daemon *d, struct nb_fn *fn)
{
    int64_t total = 0;
    for (size_t i = 0; i < fn->n_pcs; i++)
        total += fn->pcs[i]->requested;
    registry_set_pc_total(d, fn, total);
}

void provisioned_put(struct nb_daemon *d, struct nb_fn *fn, struct nb_provisioned *pc)
{
    struct nb_provisioned *old = provisioned_find(fn, pc->qualifier);
    if (old) {
        /* the instances follow the new config: same id, so none restarts needlessly */
        pc->id = old->id;
        for (size_t i = 0; i < fn->n_pcs; i++)
            if (fn->pcs[i] == old)
                fn->pcs[i] = pc;
        provisioned_free(old);
    } else {
        fn->pcs = xrealloc(fn->pcs, (fn->n_pcs + 1) * sizeof(*fn->pcs));
        fn->pcs[fn->n_pcs++] = pc;
    }
    recount(d, fn);
    provisioned_sync(d, fn);
}

void provisioned_remove(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier)
{
    for (size_t i = 0; i < fn->n_pcs; i++) {
        if (strcmp(fn->pcs[i]->qualifier, qualifier))
            continue;
        provisioned_free(fn->pcs[i]);
        memmove(&fn->pcs[i], &fn->pcs[i + 1], (fn->n_pcs - i - 1) * sizeof(*fn->pcs));
        fn->n_pcs--;
        recount(d, fn);
        provisioned_sync(d, fn);
        return;
    }
}

static void retire(struct nb_instance *inst)
{
    inst->retire = true;
    if (inst->state == INST_IDLE)
        instance_kill(inst, "provisioned concurrency no longer needs it");
}

static bool live(const struct nb_instance *inst)
{
    return inst->state != INST_DEAD && !inst->retire && !inst->killed;
}

void provisioned_sync(struct nb_daemon *d, struct nb_fn *fn)
{
    /* instances of configs that are gone */
    for (struct nb_instance *inst = fn->pool.all_head, *next; inst; inst = next) {
        next = inst->all_next;
        if (inst->pc_id && live(inst) && !find_id(fn, inst->pc_id))
            retire(inst);
    }
    if (fn->removed || d->draining)
        return;
    for (size_t i = 0; i < fn->n_pcs; i++) {
        struct nb_provisioned *pc = fn->pcs[i];
        struct nb_function *target = registry_resolve_primary(d, fn, pc->qualifier, NULL);
        int count = 0;
        for (struct nb_instance *inst = fn->pool.all_head, *next; inst; inst = next) {
            next = inst->all_next;
            if (inst->pc_id != pc->id || !live(inst))
                continue;
            if (inst->cfg != target || count >= pc->requested)
                retire(inst); /* the alias moved, or fewer are wanted */
            else
                count++;
        }
        if (!target || pc->failure)
            continue;
        if (count < pc->requested)
            log_info("provisioning function=%s qualifier=%s version=%s starting=%d", fn->name,
                     pc->qualifier, target->version, pc->requested - count);
        for (; count < pc->requested; count++)
            instance_start_provisioned(d, fn, target, pc->id);
    }
}

void provisioned_sync_all(struct nb_daemon *d)
{
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            if (fn->n_pcs || fn->pool.n_all)
                provisioned_sync(d, fn);
}

void provisioned_instance_gone(struct nb_instance *inst)
{
    struct nb_provisioned *pc = find_id(inst->fn, inst->pc_id);
    /* died during init on its own (not stopped by nimbus), or reported an init error */
    bool init_failure = !inst->init_done && (inst->init_failed || (!inst->killed && !inst->retire));
    if (pc && init_failure && !pc->failure) {
        pc->failure = xstrdup("FUNCTION_ERROR_INIT_FAILURE: an instance exited during its "
                              "initialization; put the configuration again to retry");
        log_warn("provisioned concurrency failed function=%s qualifier=%s", inst->fn->name,
                 pc->qualifier);
    }
    schedule(inst->d);
}

json_t *provisioned_json(struct nb_fn *fn, const struct nb_provisioned *pc, const char *fn_arn)
{
    int allocated = 0, available = 0;
    for (struct nb_instance *inst = fn->pool.all_head; inst; inst = inst->all_next) {
        if (inst->pc_id != pc->id || !live(inst))
            continue;
        allocated++;
        if (inst->init_done)
            available++;
    }
    const char *status = pc->failure                  ? "FAILED"
                         : available >= pc->requested ? "READY"
                                                      : "IN_PROGRESS";
    char lm[40];
    fmt_lambda_time(pc->last_modified_ms, lm, sizeof(lm));
    json_t *o = json_pack("{s:i,s:i,s:i,s:s,s:s}", "RequestedProvisionedConcurrentExecutions",
                          pc->requested, "AvailableProvisionedConcurrentExecutions", available,
                          "AllocatedProvisionedConcurrentExecutions", allocated, "Status", status,
                          "LastModified", lm);
    if (pc->failure)
        json_object_set_new(o, "StatusReason", json_string(pc->failure));
    if (fn_arn)
        json_object_set_new(o, "FunctionArn", json_sprintf("%s:%s", fn_arn, pc->qualifier));
    return o;
}

char *provisioned_to_record(const struct nb_provisioned *pc)
{
    json_t *o = json_pack("{s:i,s:s,s:i,s:I}", "format", 1, "qualifier", pc->qualifier, "requested",
                          pc->requested, "last_modified_ms", (json_int_t)pc->last_modified_ms);
    char *s = json_dumps(o, JSON_COMPACT);
    ASSERT(s);
    json_decref(o);
    return s;
}

struct nb_provisioned *provisioned_from_record(const char *qualifier, const char *doc,
                                               struct nb_err *err)
{
    json_t *o = json_loads(doc, 0, NULL);
    json_t *q = json_object_get(o, "qualifier"), *n = json_object_get(o, "requested"),
           *lm = json_object_get(o, "last_modified_ms");
    struct nb_provisioned *pc = NULL;
    if (!json_is_string(q) || strcmp(json_string_value(q), qualifier) || !json_is_integer(n) ||
        json_integer_value(n) < 1 || json_integer_value(n) > INT32_MAX || !json_is_integer(lm) ||
        json_integer_value(lm) < 0)
        err_set(err, EINVAL, "provisioned concurrency record: missing or invalid members");
    else
        pc = provisioned_new(qualifier, (int)json_integer_value(n),
                             (uint64_t)json_integer_value(lm));
    json_decref(o);
    return pc;
}
