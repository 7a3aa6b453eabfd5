/*
 * config.c - the config table and its three sources (defaults, INI file via inih, flags).
 *
 * Invariant: every setting is one row of `table`; adding a setting means adding a row (and a
 * field in struct nb_config). Parsing, `nimbus config show`, --help and docs/CONFIG.md all come
 * from the rows. String fields are always malloc'd (never NULL after config_load, except
 * config_file).
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <strings.h>

#include "log.h"

enum kind { K_STR, K_INT, K_BOOL };
enum flags { F_RELOAD = 1 << 0 };

struct row {
    const char *name; /* INI key; the flag is --name with '_' -> '-' */
    enum kind kind;
    size_t off;
    const char *def;
    int64_t min, max;
    int (*check)(const char *v, struct nb_err *err);
    unsigned flags;
    const char *help;
};

static int check_listen(const char *v, struct nb_err *err);
static int check_public_listen(const char *v, struct nb_err *err);
static int check_account(const char *v, struct nb_err *err);
static int check_level(const char *v, struct nb_err *err);
static int check_abs_path(const char *v, struct nb_err *err);
static int check_runtime_dir(const char *v, struct nb_err *err);
static int check_cgroup_name(const char *v, struct nb_err *err);
static int check_master_key(const char *v, struct nb_err *err);
static int check_zygote(const char *v, struct nb_err *err);
static int check_catch_up(const char *v, struct nb_err *err);

#define OFF(f) offsetof(struct nb_config, f)
static const struct row table[] = {
    {"listen", K_STR, OFF(listen), "127.0.0.1:9000", 0, 0, check_listen, 0,
     "host:port of the AWS API listener (Lambda API, Invoke, /healthz, /metrics)"},
    {"public_listen", K_STR, OFF(public_listen), "127.0.0.1:8080", 0, 0, check_public_listen, 0,
     "host:port of the public listener serving function URLs and HTTP routes (payload format "
     "2.0); empty = off"},
    {"data_dir", K_STR, OFF(data_dir), "./.nimbus", 0, 0, NULL, 0,
     "directory for the database, code packages and function logs"},
    {"region", K_STR, OFF(region), "us-east-1", 0, 0, NULL, 0, "region used in ARNs"},
    {"account_id", K_STR, OFF(account_id), "000000000000", 0, 0, check_account, 0,
     "12-digit account id used in ARNs"},
    {"account_concurrency", K_INT, OFF(account_concurrency), "1000", 1, 100000, NULL, F_RELOAD,
     "concurrent executions allowed across all functions"},
    {"keep_warm_s", K_INT, OFF(keep_warm_s), "600", 0, 86400, NULL, F_RELOAD,
     "seconds an idle instance stays warm before it is stopped"},
    {"drain_timeout_s", K_INT, OFF(drain_timeout_s), "30", 0, 3600, NULL, F_RELOAD,
     "on SIGTERM, seconds to wait for in-flight invocations before stopping instances"},
    {"log_level", K_STR, OFF(log_level), "info", 0, 0, check_level, F_RELOAD,
     "daemon log level: error, warn, info, debug"},
    {"runtime_dir", K_STR, OFF(runtime_dir), "auto", 0, 0, check_runtime_dir, 0,
     "host directory mounted read-only at /var/runtime in every sandbox; auto = the runtimes/ of "
     "the source tree the binary was built in, else PREFIX/share/nimbus/runtimes"},
    {"python", K_STR, OFF(python), "/usr/bin/python3", 0, 0, check_abs_path, 0,
     "interpreter for python3.x runtimes (must live under /usr)"},
    {"node", K_STR, OFF(node), "/usr/bin/node", 0, 0, check_abs_path, 0,
     "interpreter for nodejs runtimes (must live under /usr)"},
    {"uid_base", K_INT, OFF(uid_base), "100000", 1000, 4000000000LL, NULL, 0,
     "first uid/gid of the range given to instances (one per instance)"},
    {"uid_count", K_INT, OFF(uid_count), "60000", 1, 1000000, NULL, 0,
     "size of the instance uid/gid range"},
    {"pids_max", K_INT, OFF(pids_max), "1024", 8, 1000000, NULL, F_RELOAD,
     "processes and threads allowed per instance"},
    {"netns_pool", K_INT, OFF(netns_pool), "4", 0, 1000, NULL, F_RELOAD,
     "network namespaces kept ready for new instances"},
    {"park_pool", K_INT, OFF(park_pool), "4", 0, 1000, NULL, F_RELOAD,
     "sandboxes kept parked (cloned and attached to fresh cgroups) for new instances; 0 = off"},
    {"python_zygote", K_STR, OFF(python_zygote), "auto", 0, 0, check_zygote, 0,
     "Python zygote (pre-initialised interpreter that forks python3.x instances): auto = the "
     "_nimbus_zygote.so built or installed with nimbus, off = plain starts only, or its path"},
    {"zygote_pool", K_INT, OFF(zygote_pool), "2", 0, 1000, NULL, F_RELOAD,
     "sandboxes kept parked in the Python zygote, once a Python function has started; 0 = off "
     "(functions opt out with NIMBUS_ZYGOTE=0)"},
    {"node_park_max", K_INT, OFF(node_park_max), "4", 0, 1000, NULL, F_RELOAD,
     "most parked instances (started ahead, initialized, waiting for an event) kept per Node.js "
     "function invoked within keep_warm_s; sized by its recent peak of concurrent cold starts; "
     "0 = off"},
    {"cgroup_parent", K_STR, OFF(cgroup_parent), "nimbus", 0, 0, check_cgroup_name, 0,
     "cgroup (v1) under which instances' groups are made; stale groups there are removed at "
     "start; give each daemon on a host its own"},
    {"reap_interval_ms", K_INT, OFF(reap_interval_ms), "1000", 10, 600000, NULL, 0,
     "least time between two runs of the keep-warm reaper, which runs only while an instance is "
     "idle: an idle instance stops between keep_warm_s and keep_warm_s plus this"},
    /* BEGIN auth settings */
    {"insecure", K_BOOL, OFF(insecure), "false", 0, 0, NULL, 0,
     "skip authentication (every request is served as the root key); refused unless listen is a "
     "loopback address. Flag form: --insecure"},
    {"master_key_file", K_STR, OFF(master_key_file), "auto", 0, 0, check_master_key, 0,
     "file with the 32-byte key that encrypts access-key secrets at rest (created at first "
     "start); auto = DATA_DIR/master.key. Keep it off the data disk to separate the two"},
    /* END auth settings */
    {"async_concurrency", K_INT, OFF(async_concurrency), "16", 1, 10000, NULL, F_RELOAD,
     "asynchronous (Event) invocations delivered at once, all functions together"},
    {"async_queue_max", K_INT, OFF(async_queue_max), "100000", 1, 100000000, NULL, F_RELOAD,
     "accepted asynchronous events not yet finished; beyond it Event invocations get 429"},
    {"async_queue_max_bytes", K_INT, OFF(async_queue_max_bytes), "1073741824", 1048576,
     1099511627776LL, NULL, F_RELOAD,
     "payload bytes of those events (kept in memory); beyond it Event invocations get 429"},
    {"async_retry_delay_ms", K_INT, OFF(async_retry_delay_ms), "60000", 1, 3600000, NULL, F_RELOAD,
     "after a function error the n-th retry of an Event invocation waits n times this (Lambda: 1 "
     "min, then 2 min)"},
    {"async_backoff_min_ms", K_INT, OFF(async_backoff_min_ms), "1000", 1, 3600000, NULL, F_RELOAD,
     "first wait before retrying an Event invocation after a throttle or platform error"},
    {"async_backoff_max_ms", K_INT, OFF(async_backoff_max_ms), "300000", 1, 3600000, NULL, F_RELOAD,
     "longest wait between retries after throttles or platform errors (doubling)"},
    {"async_age_unit_ms", K_INT, OFF(async_age_unit_ms), "1000", 1, 1000, NULL, F_RELOAD,
     "milliseconds in one second of MaximumEventAgeInSeconds; only tests change it"},
    {"schedule_catch_up", K_STR, OFF(schedule_catch_up), "one", 0, 0, check_catch_up, 0,
     "schedule ticks missed while the daemon was down: one = fire the latest missed tick once "
     "at start, skip = fire none"},
    {"schedule_clock_offset_s", K_INT, OFF(schedule_clock_offset_s), "0", -315360000, 315360000,
     NULL, 0,
     "seconds added to the wall clock by the scheduler (rule times, ticks); only tests "
     "change it"},
};

static char **str_field(struct nb_config *cfg, const struct row *r)
{
    return (char **)((char *)cfg + r->off);
}

static int64_t *int_field(struct nb_config *cfg, const struct row *r)
{
    return (int64_t *)((char *)cfg + r->off);
}

static const struct row *find_row(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

static int split_listen(const char *v, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= hostlen)
        return -EINVAL;
    int64_t p;
    if (parse_i64(colon + 1, 0, 65535, &p) < 0)
        return -EINVAL;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    *port = (int)p;
    return 0;
}

static int check_listen(const char *v, struct nb_err *err)
{
    char host[256];
    int port;
    if (split_listen(v, host, sizeof(host), &port) < 0)
        return err_set(err, EINVAL, "'%s' is not host:port", v);
    return 0;
}

static int check_public_listen(const char *v, struct nb_err *err)
{
    return *v ? check_listen(v, err) : 0;
}

static int check_account(const char *v, struct nb_err *err)
{
    if (strlen(v) != 12 || strspn(v, "0123456789") != 12)
        return err_set(err, EINVAL, "'%s' is not a 12-digit account id", v);
    return 0;
}

static int check_level(const char *v, struct nb_err *err)
{
    enum nb_log_level l;
    if (log_parse_level(v, &l) < 0)
        return err_set(err, EINVAL, "'%s' is not one of error, warn, info, debug", v);
    return 0;
}

static int check_catch_up(const char *v, struct nb_err *err)
{
    if (strcmp(v, "one") && strcmp(v, "skip"))
        return err_set(err, EINVAL, "'%s' is not one of one, skip", v);
    return 0;
}

static int check_abs_path(const char *v, struct nb_err *err)
{
    if (v[0] != '/')
        return err_set(err, EINVAL, "'%s' is not an absolute path", v);
    return 0;
}

static int check_runtime_dir(const char *v, struct nb_err *err)
{
    return strcmp(v, "auto") ? check_abs_path(v, err) : 0;
}

static int check_zygote(const char *v, struct nb_err *err)
{
    return strcmp(v, "auto") && strcmp(v, "off") ? check_abs_path(v, err) : 0;
}

static int check_cgroup_name(const char *v, struct nb_err *err)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64 ||
        strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789-_.") != n ||
        v[0] == '.')
        return err_set(err, EINVAL, "'%s' is not a cgroup name ([A-Za-z0-9._-], 1-64)", v);
    return 0;
}

static int check_master_key(const char *v, struct nb_err *err)
{
    return strcmp(v, "auto") ? check_abs_path(v, err) : 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (!strcasecmp(v, yes[i]))
            return *out = true, 0;
        if (!strcasecmp(v, no[i]))
            return *out = false, 0;
    }
    return -EINVAL;
}

/* Sets one key from text; the only place values are parsed. */
static int set_value(struct nb_config *cfg, const struct row *r, const char *v, struct nb_err *err)
{
    if (r->kind == K_BOOL) {
        if (parse_bool(v, (bool *)((char *)cfg + r->off)) < 0)
            return err_set(err, EINVAL, "'%s' for %s is not true or false", v, r->name);
        return 0;
    }
    if (r->kind == K_INT) {
        int64_t n;
        int rc = parse_i64(v, r->min, r->max, &n);
        if (rc < 0)
            return err_set(err, EINVAL, "'%s' for %s is not an integer in [%lld, %lld]", v, r->name,
                           (long long)r->min, (long long)r->max);
        *int_field(cfg, r) = n;
        return 0;
    }
    if (r->check && r->check(v, err) < 0)
        return err_prefix(err, "bad value for %s", r->name);
    char **f = str_field(cfg, r);
    free(*f);
    *f = xstrdup(v);
    return 0;
}

static void set_defaults(struct nb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        if (set_value(cfg, &table[i], table[i].def, NULL) < 0)
            BUG("bad default for %s", table[i].name);
}

struct ini_ctx {
    struct nb_config *cfg;
    const char *path;
    struct nb_err *err;
    int rc;
    int line; /* lines read so far: inih calls the handler right after reading its line */
    FILE *f;
};

/* inih's fgets-like reader, counting lines (Debian's inih passes no line number). */
static char *read_line(char *str, int num, void *stream)
{
    struct ini_ctx *c = stream;
    char *r = fgets(str, num, c->f);
    if (r)
        c->line++;
    return r;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *c = user;
    int lineno = c->line;
    if (c->rc < 0)
        return 0;
    const struct row *r = find_row(name);
    if (section[0] && strcmp(section, "nimbus")) {
        c->rc = err_set(c->err, EINVAL, "%s:%d: unknown section [%s]", c->path, lineno, section);
        return 0;
    }
    if (!r) {
        c->rc = err_set(c->err, EINVAL, "%s:%d: unknown setting '%s'", c->path, lineno, name);
        return 0;
    }
    if (set_value(c->cfg, r, value, c->err) < 0) {
        c->rc = err_prefix(c->err, "%s:%d", c->path, lineno);
        return 0;
    }
    return 1;
}

static int load_file(struct nb_config *cfg, const char *path, struct nb_err *err)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f)
        return err_set(err, errno, "cannot open config file '%s': %s", path, strerror(errno));
    struct ini_ctx c = {cfg, path, err, 0, 0, f};
    int rc = ini_parse_stream(read_line, &c, on_ini_entry, &c);
    if (c.rc < 0)
        return c.rc;
    if (rc != 0)
        return err_set(err, EINVAL, "%s:%d: syntax error", path, rc);
    return 0;
}

/* Applies argv flags. Each flag is --name VALUE or --name=VALUE. */
static int apply_flags(struct nb_config *cfg, int argc, char **argv, bool only_config,
                       struct nb_err *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return only_config ? 0 : -ENOENT;
        if (strncmp(a, "--", 2))
            return err_set(err, EINVAL, "unexpected argument '%s'", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof(name))
            return err_set(err, EINVAL, "unknown flag '%s'", a);
        for (size_t k = 0; k < n; k++)
            name[k] = a[2 + k] == '-' ? '_' : a[2 + k];
        name[n] = '\0';
        const struct row *br = find_row(name);
        /* A boolean flag alone means true; only --flag=VALUE gives it a value. */
        const char *value = eq                         ? eq + 1
                            : br && br->kind == K_BOOL ? "true"
                                                       : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return err_set(err, EINVAL, "flag '%s' needs a value", a);
        if (!strcmp(name, "config")) {
            free(cfg->config_file);
            cfg->config_file = xstrdup(value);
            continue;
        }
        if (only_config)
            continue;
        const struct row *r = find_row(name);
        if (!r)
            return err_set(err, EINVAL, "unknown flag '%s'", a);
        if (set_value(cfg, r, value, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static void derive(struct nb_config *cfg)
{
    if (split_listen(cfg->listen, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port) <
        0)
        BUG("listen '%s' passed validation but does not split", cfg->listen);
    cfg->public_host[0] = '\0';
    cfg->public_port = 0;
    if (*cfg->public_listen && split_listen(cfg->public_listen, cfg->public_host,
                                            sizeof(cfg->public_host), &cfg->public_port) < 0)
        BUG("public_listen '%s' passed validation but does not split", cfg->public_listen);
}

int config_load(struct nb_config *cfg, int argc, char **argv, struct nb_err *err)
{
    set_defaults(cfg);
    int rc = apply_flags(cfg, argc, argv, true, err);
    if (rc < 0)
        return rc;
    if (cfg->config_file && (rc = load_file(cfg, cfg->config_file, err)) < 0)
        return rc;
    if ((rc = apply_flags(cfg, argc, argv, false, err)) < 0)
        return rc;
    derive(cfg);
    return 0;
}

int config_reload(struct nb_config *cfg, struct nb_err *err)
{
    if (!cfg->config_file)
        return 0;
    struct nb_config fresh;
    set_defaults(&fresh);
    int rc = load_file(&fresh, cfg->config_file, err);
    if (rc == 0) {
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
            const struct row *r = &table[i];
            if (!(r->flags & F_RELOAD))
                continue;
            if (r->kind == K_BOOL) {
                *(bool *)((char *)cfg + r->off) = *(bool *)((char *)&fresh + r->off);
            } else if (r->kind == K_INT) {
                *int_field(cfg, r) = *int_field(&fresh, r);
            } else {
                char **dst = str_field(cfg, r);
                free(*dst);
                *dst = xstrdup(*str_field(&fresh, r));
            }
        }
    }
    config_release(&fresh);
    return rc;
}

void config_show(const struct nb_config *cfg, FILE *out)
{
    fprintf(out, "[nimbus]\n");
    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        const struct row *r = &table[i];
        if (r->kind == K_BOOL)
            fprintf(out, "%s = %s\n", r->name,
                    *(const bool *)((const char *)cfg + r->off) ? "true" : "false");
        else if (r->kind == K_INT)
            fprintf(out, "%s = %lld\n", r->name, (long long)*int_field((struct nb_config *)cfg, r));
        else
            fprintf(out, "%s = %s\n", r->name, *str_field((struct nb_config *)cfg, r));
    }
}

void config_usage(FILE *out)
{
    fprintf(out, "settings (config file key / --flag, default):\n");
    fprintf(out, "  --config FILE\n      INI file read before the flags (keys as below, "
                 "optional [nimbus] section)\n");
    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        const struct row *r = &table[i];
        char flag[64];
        snprintf(flag, sizeof(flag), "%s", r->name);
        for (char *p = flag; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  --%s%s (default %s)%s\n      %s\n", flag,
                r->kind == K_INT    ? " N"
                : r->kind == K_BOOL ? "[=true|false]"
                                    : " VALUE",
                r->def, r->flags & F_RELOAD ? " [reloadable]" : "", r->help);
    }
}

void config_release(struct nb_config *cfg)
{
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        if (table[i].kind == K_STR) {
            free(*str_field(cfg, &table[i]));
            *str_field(cfg, &table[i]) = NULL;
        }
    free(cfg->config_file);
    cfg->config_file = NULL;
}
