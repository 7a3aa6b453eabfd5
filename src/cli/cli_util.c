/*
 * cli_util.c - the helpers of cli_util.h: --since and duration parsing, --env parsing, --payload
 * reading, and the in-memory folder zip of `nimbus deploy` (libzip over a buffer source).
 *
 * The zip is built so that the same tree gives the same bytes: a sorted walk (strcmp, not the
 * locale), one fixed mtime, modes masked to 0777. The walk uses lstat and never follows a link,
 * so a symlink loop or a link out of the tree is just a stored link; the daemon's zip import
 * decides what it accepts.
 */
#include "cli/cli_util.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <zip.h>

#include "util.h"

/* 2000-01-01T00:00:00Z: every entry's mtime (any fixed date DOS time can hold in any zone). */
#define ZIP_FIXED_MTIME ((time_t)946684800)

int cli_parse_duration(const char *s, uint64_t *out_ms, struct nb_err *err)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t total = 0;
    const char *p = s;

    if (!*p)
        return err_set(err, EINVAL, "invalid duration '': expected e.g. 30s, 10m, 2h");
    while (*p) {
        if (*p < '0' || *p > '9')
            return err_set(err, EINVAL, "invalid duration '%s': expected e.g. 30s, 10m, 2h", s);
        uint64_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (n > (UINT64_MAX - 9) / 10)
                return err_set(err, EINVAL, "invalid duration '%s': too large", s);
            n = n * 10 + (uint64_t)(*p - '0');
        }
        size_t i;
        for (i = 0; i < ARRAY_SIZE(units); i++) {
            size_t ul = strlen(units[i].unit);
            /* "m" must not swallow the "m" of "ms" */
            if (!strncmp(p, units[i].unit, ul) && !(p[ul] >= 'a' && p[ul] <= 'z'))
                break;
        }
        if (i == ARRAY_SIZE(units))
            return err_set(err, EINVAL, "invalid duration '%s': unit must be one of ms, s, m, h, d",
                           s);
        if (n > (UINT64_MAX - total) / units[i].ms)
            return err_set(err, EINVAL, "invalid duration '%s': too large", s);
        total += n * units[i].ms;
        p += strlen(units[i].unit);
    }
    *out_ms = total;
    return 0;
}

int cli_parse_since(const char *s, uint64_t now, uint64_t *out_ms, struct nb_err *err)
{
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && s[digits] == '\0') {
        int64_t v;
        if (parse_i64(s, 0, INT64_MAX, &v) < 0)
            return err_set(err, EINVAL, "invalid --since '%s': too large", s);
        *out_ms = (uint64_t)v;
        return 0;
    }
    uint64_t d;
    if (cli_parse_duration(s, &d, NULL) < 0)
        return err_set(err, EINVAL,
                       "invalid --since '%s': expected a duration (30s, 10m, 2h, 1d, 1h30m) or "
                       "a time in ms since the epoch",
                       s);
    *out_ms = d >= now ? 0 : now - d;
    return 0;
}

int cli_parse_env(const char *kv, json_t *vars, struct nb_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return err_set(err, EINVAL, "invalid --env '%s': expected KEY=VALUE", kv);
    _cleanup_free_ char *key = xstrndup(kv, (size_t)(eq - kv));
    json_t *v = json_string(eq + 1);
    if (!v)
        return err_set(err, EINVAL, "invalid --env '%s': the value is not valid UTF-8", kv);
    json_object_set_new(vars, key, v);
    return 0;
}

static int read_fd_all(int fd, struct nb_buf *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        buf_append(b, chunk, (size_t)n);
    }
}

int cli_read_payload(const char *arg, char **out, size_t *outlen, struct nb_err *err)
{
    if (!strcmp(arg, "-") || !strcmp(arg, "@-")) {
        struct nb_buf b = NB_BUF_INIT;
        int r = read_fd_all(STDIN_FILENO, &b);
        if (r < 0) {
            buf_release(&b);
            return err_set(err, r, "cannot read the payload from stdin: %s", strerror(-r));
        }
        *out = buf_detach(&b, outlen);
        return 0;
    }
    if (arg[0] == '@') {
        int r = read_file(arg + 1, out, outlen);
        if (r < 0)
            return err_set(err, r, "cannot read payload file '%s': %s", arg + 1, strerror(-r));
        return 0;
    }
    *out = xstrdup(arg);
    *outlen = strlen(arg);
    return 0;
}

/* ---- zipping a folder ---- */

static int zip_fail(struct nb_err *err, zip_t *za, const char *what, const char *name)
{
    return err_set(err, EIO, "cannot zip '%s': %s: %s", name, what, zip_strerror(za));
}

/* Sets mode, fixed mtime (and the MS-DOS directory bit for folders) on entry idx. */
static int set_attrs(zip_t *za, zip_int64_t idx, mode_t mode, const char *name, struct nb_err *err)
{
    zip_uint32_t attr = (zip_uint32_t)mode << 16;
    if (S_ISDIR(mode))
        attr |= 0x10;
    if (zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX, attr) < 0)
        return zip_fail(err, za, "setting its mode", name);
    if (zip_file_set_mtime(za, (zip_uint64_t)idx, ZIP_FIXED_MTIME, 0) < 0)
        return zip_fail(err, za, "setting its time", name);
    return 0;
}

static int add_symlink(zip_t *za, const char *full, const char *rel, struct nb_err *err)
{
    struct nb_buf target = NB_BUF_INIT;
    for (size_t size = 256;; size *= 2) {
        buf_reset(&target);
        buf_grow(&target, size);
        ssize_t n = readlink(full, target.data, size);
        if (n < 0) {
            int e = errno;
            buf_release(&target);
            return err_set(err, e, "cannot read symlink '%s': %s", full, strerror(e));
        }
        if ((size_t)n < size) {
            target.len = (size_t)n;
            break;
        }
    }
    size_t len = target.len;
    char *data = buf_detach(&target, NULL);
    /* freep = 1: libzip owns data from here (it frees it with the source) */
    zip_source_t *src = zip_source_buffer(za, data, len, 1);
    if (!src) {
        free(data);
        return zip_fail(err, za, "adding it", rel);
    }
    zip_int64_t idx = zip_file_add(za, rel, src, 0);
    if (idx < 0) {
        zip_source_free(src);
        return zip_fail(err, za, "adding it", rel);
    }
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) < 0)
        return zip_fail(err, za, "storing it", rel);
    return set_attrs(za, idx, S_IFLNK | 0777, rel, err);
}

static int add_file(zip_t *za, const char *full, const char *rel, mode_t mode, struct nb_err *err)
{
    /* The file is read when the archive is written (zip_close); errors surface there. */
    zip_source_t *src = zip_source_file(za, full, 0, -1);
    if (!src)
        return zip_fail(err, za, "opening it", rel);
    zip_int64_t idx = zip_file_add(za, rel, src, 0);
    if (idx < 0) {
        zip_source_free(src);
        return zip_fail(err, za, "adding it", rel);
    }
    return set_attrs(za, idx, S_IFREG | (mode & 0777), rel, err);
}

static int no_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Adds the contents of folder full (entry prefix rel: "" or "sub/dir/") to za. */
static int add_tree(zip_t *za, const char *full, const char *rel, struct nb_err *err)
{
    struct dirent **names = NULL;
    int n = scandir(full, &names, no_dots, by_name);
    if (n < 0)
        return err_set(err, errno, "cannot read folder '%s': %s", full, strerror(errno));
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (r == 0) {
            _cleanup_free_ char *child = xasprintf("%s/%s", full, names[i]->d_name);
            _cleanup_free_ char *name = xasprintf("%s%s", rel, names[i]->d_name);
            struct stat st;
            if (lstat(child, &st) < 0) {
                r = err_set(err, errno, "cannot stat '%s': %s", child, strerror(errno));
            } else if (S_ISLNK(st.st_mode)) {
                r = add_symlink(za, child, name, err);
            } else if (S_ISREG(st.st_mode)) {
                r = add_file(za, child, name, st.st_mode, err);
            } else if (S_ISDIR(st.st_mode)) {
                zip_int64_t idx = zip_dir_add(za, name, 0);
                _cleanup_free_ char *sub = xasprintf("%s/", name);
                if (idx < 0)
                    r = zip_fail(err, za, "adding it", sub);
                else if ((r = set_attrs(za, idx, S_IFDIR | (st.st_mode & 0777), sub, err)) == 0)
                    r = add_tree(za, child, sub, err);
            } else {
                r = err_set(err, EINVAL, "cannot zip '%s': not a regular file, folder or symlink",
                            child);
            }
        }
        free(names[i]);
    }
    free(names);
    return r;
}

static int read_source(zip_source_t *src, char **out, size_t *outlen, struct nb_err *err)
{
    if (zip_source_open(src) < 0)
        return err_set(err, EIO, "cannot read the zip back: %s",
                       zip_error_strerror(zip_source_error(src)));
    struct nb_buf b = NB_BUF_INIT;
    char chunk[65536];
    zip_int64_t n;
    while ((n = zip_source_read(src, chunk, sizeof(chunk))) > 0)
        buf_append(&b, chunk, (size_t)n);
    int r = 0;
    if (n < 0)
        r = err_set(err, EIO, "cannot read the zip back: %s",
                    zip_error_strerror(zip_source_error(src)));
    zip_source_close(src);
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    *out = buf_detach(&b, outlen);
    return 0;
}

int cli_zip_dir(const char *dir, char **out, size_t *outlen, struct nb_err *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) {
        int r = err_set(err, EIO, "cannot create a zip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return r;
    }
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!za) {
        int r = err_set(err, EIO, "cannot create a zip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        zip_source_free(src);
        return r;
    }
    zip_error_fini(&ze);
    zip_source_keep(src); /* survive zip_close so the bytes can be read back */

    int r = add_tree(za, dir, "", err);
    if (r == 0 && zip_get_num_entries(za, 0) == 0)
        r = err_set(err, EINVAL, "folder '%s' is empty", dir);
    if (r < 0) {
        zip_discard(za);
        zip_source_free(src);
        return r;
    }
    if (zip_close(za) < 0) {
        r = err_set(err, EIO, "cannot zip '%s': %s", dir, zip_strerror(za));
        zip_discard(za);
        zip_source_free(src);
        return r;
    }
    r = read_source(src, out, outlen, err);
    zip_source_free(src);
    return r;
}
