/*
 * registry.c - the in-memory function table: a hash of name -> struct nb_fn, sized as a power of
 * two and grown at 3/4 load. Removal unlinks the entry from the table at once; the entry itself
 * lives until its last reference (in-flight invocations, instances) is dropped.
 */
#include "registry.h"

#include "daemon.h"
#include "instance.h"

static int64_t reserved_of(const struct nb_function *cfg)
{
    return cfg->reserved_concurrency > 0 ? cfg->reserved_concurrency : 0;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void registry_init(struct nb_daemon *d)
{
    d->fn_table_size = 64;
    d->fn_table = xcalloc(d->fn_table_size, sizeof(*d->fn_table));
    d->fn_count = 0;
}

void fn_ref(struct nb_fn *fn)
{
    fn->refs++;
}

void fn_unref(struct nb_fn *fn)
{
    ASSERT(fn->refs > 0);
    if (--fn->refs)
        return;
    function_unref(fn->cfg);
    metrics_fn_release(fn);
    free(fn->name);
    free(fn);
}

void registry_release(struct nb_daemon *d)
{
    for (size_t i = 0; i < d->fn_table_size; i++) {
        struct nb_fn *fn = d->fn_table[i];
        while (fn) {
            struct nb_fn *next = fn->hnext;
            fn->removed = true;
            fn_unref(fn);
            fn = next;
        }
    }
    free(d->fn_table);
    d->fn_table = NULL;
    d->fn_count = d->fn_table_size = 0;
}

struct nb_fn *registry_find(struct nb_daemon *d, const char *name)
{
    struct nb_fn *fn = d->fn_table[hash_name(name) & (d->fn_table_size - 1)];
    for (; fn; fn = fn->hnext)
        if (!strcmp(fn->name, name))
            return fn;
    return NULL;
}

struct nb_function *registry_resolve(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                                     struct nb_err *err)
{
    if (!qualifier || !strcmp(qualifier, "$LATEST"))
        return fn->cfg;
    err_set(err, -ENOENT, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s", d->cfg.region,
            d->cfg.account_id, fn->name, qualifier);
    return NULL;
}

static void grow(struct nb_daemon *d)
{
    size_t size = d->fn_table_size * 2;
    struct nb_fn **t = xcalloc(size, sizeof(*t));
    for (size_t i = 0; i < d->fn_table_size; i++) {
        struct nb_fn *fn = d->fn_table[i];
        while (fn) {
            struct nb_fn *next = fn->hnext;
            size_t b = hash_name(fn->name) & (size - 1);
            fn->hnext = t[b];
            t[b] = fn;
            fn = next;
        }
    }
    free(d->fn_table);
    d->fn_table = t;
    d->fn_table_size = size;
}

struct nb_fn *registry_add(struct nb_daemon *d, struct nb_function *cfg)
{
    if (registry_find(d, cfg->name))
        BUG("function '%s' added twice", cfg->name);
    if (4 * (d->fn_count + 1) > 3 * d->fn_table_size)
        grow(d);
    struct nb_fn *fn = xcalloc(1, sizeof(*fn));
    fn->refs = 1;
    fn->name = xstrdup(cfg->name);
    fn->cfg = cfg;
    d->reserved_total += reserved_of(cfg);
    size_t b = hash_name(fn->name) & (d->fn_table_size - 1);
    fn->hnext = d->fn_table[b];
    d->fn_table[b] = fn;
    d->fn_count++;
    return fn;
}

/* True when an instance built for a must not serve b (anything the sandbox sees differs). */
static bool needs_new_instances(const struct nb_function *a, const struct nb_function *b)
{
    return strcmp(a->code_hex, b->code_hex) || strcmp(a->runtime, b->runtime) ||
           strcmp(a->handler, b->handler) || a->memory_mb != b->memory_mb ||
           a->timeout_s != b->timeout_s || a->ephemeral_mb != b->ephemeral_mb ||
           !json_equal(a->env, b->env);
}

void registry_set_config(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg)
{
    struct nb_function *old = fn->cfg;
    fn->cfg = cfg;
    d->reserved_total += reserved_of(cfg) - reserved_of(old);
    if (needs_new_instances(old, cfg))
        pool_retire_all(d, fn);
    else
        pool_adopt_config(fn, cfg);
    function_unref(old);
}

void registry_remove(struct nb_daemon *d, struct nb_fn *fn)
{
    size_t b = hash_name(fn->name) & (d->fn_table_size - 1);
    for (struct nb_fn **pp = &d->fn_table[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == fn) {
            *pp = fn->hnext;
            break;
        }
    }
    d->fn_count--;
    d->reserved_total -= reserved_of(fn->cfg);
    fn->removed = true;
    fn->hnext = NULL;
    pool_retire_all(d, fn);
    fn_unref(fn);
}

static int cmp_fn(const void *a, const void *b)
{
    return strcmp((*(struct nb_fn *const *)a)->name, (*(struct nb_fn *const *)b)->name);
}

size_t registry_list(struct nb_daemon *d, struct nb_fn ***out)
{
    struct nb_fn **v = xmalloc((d->fn_count ? d->fn_count : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            v[n++] = fn;
    qsort(v, n, sizeof(*v), cmp_fn);
    *out = v;
    return n;
}

int64_t registry_reserved_total(struct nb_daemon *d)
{
    return d->reserved_total; /* kept by add/set_config/remove: read on every Invoke */
}
