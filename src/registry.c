/*
 * registry.c - the in-memory function table: a hash of name -> struct nb_fn, sized as a power of
 * two and grown at 3/4 load. Removal unlinks the entry from the table at once; the entry itself
 * lives until its last reference (in-flight invocations, instances) is dropped. Each entry also
 * holds its published versions (an array in ascending number order) and aliases (by name); both
 * are small, so lookups are linear.
 */
#include "registry.h"

#include "daemon.h"
#include "instance.h"
#include "provisioned.h"

static int64_t reserved_of(const struct nb_function *cfg)
{
    return cfg->reserved_concurrency > 0 ? cfg->reserved_concurrency : 0;
}

/* Provisioned concurrency taken from the shared pool: that of functions without a reservation. */
static int64_t pc_unreserved_of(const struct nb_fn *fn, const struct nb_function *cfg)
{
    return cfg->reserved_concurrency < 0 ? fn->pc_total : 0;
}

void registry_set_pc_total(struct nb_daemon *d, struct nb_fn *fn, int64_t total)
{
    d->pc_unreserved_total -= pc_unreserved_of(fn, fn->cfg);
    fn->pc_total = total;
    d->pc_unreserved_total += pc_unreserved_of(fn, fn->cfg);
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
    for (size_t i = 0; i < fn->n_versions; i++)
        function_unref(fn->versions[i]);
    free(fn->versions);
    for (size_t i = 0; i < fn->n_aliases; i++)
        alias_free(fn->aliases[i]);
    free(fn->aliases);
    for (size_t i = 0; i < fn->n_pcs; i++)
        provisioned_free(fn->pcs[i]);
    free(fn->pcs);
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

struct nb_function *registry_version(struct nb_fn *fn, const char *version)
{
    for (size_t i = 0; i < fn->n_versions; i++)
        if (!strcmp(fn->versions[i]->version, version))
            return fn->versions[i];
    return NULL;
}

bool registry_version_exists(struct nb_fn *fn, const char *version)
{
    return !strcmp(version, "$LATEST") || registry_version(fn, version);
}

static struct nb_function *version_or_latest(struct nb_fn *fn, const char *version)
{
    return !strcmp(version, "$LATEST") ? fn->cfg : registry_version(fn, version);
}

static struct nb_function *resolve(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                                   bool pick, struct nb_err *err)
{
    if (!qualifier || !strcmp(qualifier, "$LATEST"))
        return fn->cfg;
    struct nb_function *cfg = registry_version(fn, qualifier);
    if (!cfg) {
        struct nb_alias *a = registry_alias(fn, qualifier);
        if (a)
            cfg = version_or_latest(fn, pick ? alias_pick(a, alias_random()) : a->to.version);
    }
    if (!cfg)
        err_set(err, -ENOENT, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                d->cfg.region, d->cfg.account_id, fn->name, qualifier);
    return cfg;
}

struct nb_function *registry_resolve(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                                     struct nb_err *err)
{
    return resolve(d, fn, qualifier, true, err);
}

struct nb_function *registry_resolve_primary(struct nb_daemon *d, struct nb_fn *fn,
                                             const char *qualifier, struct nb_err *err)
{
    return resolve(d, fn, qualifier, false, err);
}

void registry_add_version(struct nb_fn *fn, struct nb_function *cfg)
{
    int64_t n;
    ASSERT(parse_i64(cfg->version, 1, INT64_MAX, &n) == 0);
    ASSERT((uint64_t)n > fn->last_version || !registry_version(fn, cfg->version));
    fn->versions = xrealloc(fn->versions, (fn->n_versions + 1) * sizeof(*fn->versions));
    size_t i = fn->n_versions;
    /* keep ascending order (loading adds in order; a publish always adds the highest) */
    while (i > 0) {
        int64_t m;
        parse_i64(fn->versions[i - 1]->version, 1, INT64_MAX, &m);
        if (m < n)
            break;
        fn->versions[i] = fn->versions[i - 1];
        i--;
    }
    fn->versions[i] = cfg;
    fn->n_versions++;
    if ((uint64_t)n > fn->last_version)
        fn->last_version = (uint64_t)n;
}

void registry_remove_version(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg)
{
    for (size_t i = 0; i < fn->n_versions; i++) {
        if (fn->versions[i] != cfg)
            continue;
        memmove(&fn->versions[i], &fn->versions[i + 1],
                (fn->n_versions - i - 1) * sizeof(*fn->versions));
        fn->n_versions--;
        pool_retire_snapshot(d, fn, cfg);
        function_unref(cfg);
        return;
    }
}

struct nb_alias *registry_alias(struct nb_fn *fn, const char *name)
{
    for (size_t i = 0; i < fn->n_aliases; i++)
        if (!strcmp(fn->aliases[i]->name, name))
            return fn->aliases[i];
    return NULL;
}

void registry_put_alias(struct nb_fn *fn, struct nb_alias *a)
{
    size_t i = 0;
    while (i < fn->n_aliases && strcmp(fn->aliases[i]->name, a->name) < 0)
        i++;
    if (i < fn->n_aliases && !strcmp(fn->aliases[i]->name, a->name)) {
        alias_free(fn->aliases[i]);
        fn->aliases[i] = a;
        return;
    }
    fn->aliases = xrealloc(fn->aliases, (fn->n_aliases + 1) * sizeof(*fn->aliases));
    memmove(&fn->aliases[i + 1], &fn->aliases[i], (fn->n_aliases - i) * sizeof(*fn->aliases));
    fn->aliases[i] = a;
    fn->n_aliases++;
}

void registry_remove_alias(struct nb_fn *fn, const char *name)
{
    for (size_t i = 0; i < fn->n_aliases; i++) {
        if (strcmp(fn->aliases[i]->name, name))
            continue;
        alias_free(fn->aliases[i]);
        memmove(&fn->aliases[i], &fn->aliases[i + 1],
                (fn->n_aliases - i - 1) * sizeof(*fn->aliases));
        fn->n_aliases--;
        return;
    }
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
    d->pc_unreserved_total += pc_unreserved_of(fn, cfg) - pc_unreserved_of(fn, old);
    if (needs_new_instances(old, cfg))
        pool_retire_snapshot(d, fn, old);
    else
        pool_adopt_config(fn, old, cfg);
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
    d->pc_unreserved_total -= pc_unreserved_of(fn, fn->cfg);
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
