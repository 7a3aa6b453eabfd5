/*
 * codepkg.c - codepkg.h on libzip: hash, validate, unpack and store code packages under
 * DATA_DIR/code/ (see docs/design/storage.md for the layout and the list of refusals).
 *
 * Invariants:
 *  - a name <hex>/ or <hex>.zip under code/ is complete: both are built under a ".tmp-<uuid>"
 *    name, fsync'd, renamed into place and the directory fsync'd; <hex>.zip is renamed before
 *    <hex>/, so a tree implies its zip. gc renames a tree away before deleting it.
 *  - nothing is ever created through a symlink or outside the tree: every entry is created with
 *    mkdirat/openat/symlinkat relative to a directory fd reached one component at a time with
 *    O_NOFOLLOW|O_DIRECTORY, files with O_CREAT|O_EXCL (a second entry of the same name fails).
 *  - the unzipped-size limit counts bytes as they are written; the zip's headers are not trusted.
 *  - a kept symlink cannot lead out of the tree however links are chained (see link_target_ok).
 *  - modes are 0755 (directories, executables) or 0644; owner root when running as root.
 * Everything blocks on disk: callers run it on worker threads. Concurrent imports are safe;
 * codepkg_gc must not run concurrently with an import (it deletes temporaries).
 */
#include "codepkg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <sys/stat.h>
#include <zip.h>

#include "codec.h"
#include "log.h"

#define MSG_UNZIP "Could not unzip uploaded file. Please check your file, then try to upload again."
#define MSG_EMPTY "Uploaded file must be a non-empty zip"

#define NAME_MAX_LEN 1024 /* longest entry name accepted (keeps tree paths below PATH_MAX) */
#define LINK_MAX_LEN 1024 /* longest symlink target accepted */
#define SHOW_MAX 96       /* how much of an entry name goes into a message */
#define COPY_CHUNK 65536

enum entry_kind { ENTRY_FILE, ENTRY_DIR, ENTRY_LINK };

struct unpack {
    zip_t *za;
    int rootfd; /* the temporary tree being built */
    const struct nb_codepkg_limits *lim;
    uint64_t written; /* file bytes + symlink target bytes so far */
    bool as_root;
    char *chunk; /* COPY_CHUNK bytes */
};

/* A printable, bounded rendering of an untrusted name for messages and logs. */
static const char *show(const char *s, char out[SHOW_MAX])
{
    size_t n = 0;
    for (; *s && n < SHOW_MAX - 4; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Refuses the package: EINVAL with Lambda's sentence, then why in parentheses. */
static int refuse(struct nb_err *err, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int refuse(struct nb_err *err, const char *fmt, ...)
{
    char why[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return err_set(err, EINVAL, "%s (%s)", MSG_UNZIP, why);
}

static int refuse_size(const struct unpack *u, struct nb_err *err)
{
    return err_set(err, EINVAL, "Unzipped size must be smaller than %llu bytes",
                   (unsigned long long)u->lim->max_unzipped);
}

/* A filesystem failure while unpacking entry `name`: a platform error, except for the errnos an
 * entry's shape can provoke, which refuse the package. */
static int fs_err(struct nb_err *err, int e, const char *op, const char *name)
{
    char s[SHOW_MAX];
    if (e == ENAMETOOLONG)
        return refuse(err, "entry '%s': name too long", show(name, s));
    if (e == ENOTDIR || e == ELOOP || e == EEXIST)
        return refuse(err, "entry '%s' clashes with another entry", show(name, s));
    return err_set(err, e, "cannot unpack code package: %s '%s': %s", op, show(name, s),
                   strerror(e));
}

/* Gives a created inode its final mode and, as root, root ownership. */
static int fix_inode(const struct unpack *u, int fd, mode_t mode)
{
    if (u->as_root && fchown(fd, 0, 0) < 0)
        return -errno;
    if (fchmod(fd, mode) < 0)
        return -errno;
    return 0;
}

/* Splits an entry name into path components (pointers into copy, which is modified): skips empty
 * and "." components; refuses absolute names, "..", backslashes and overlong names. */
static int split_name(const char *name, char *copy, char ***comps, size_t *n, struct nb_err *err)
{
    char s[SHOW_MAX];
    size_t len = strlen(name);
    if (len == 0)
        return refuse(err, "entry with an empty name");
    if (len > NAME_MAX_LEN)
        return refuse(err, "entry '%s': name longer than %d bytes", show(name, s), NAME_MAX_LEN);
    if (name[0] == '/')
        return refuse(err, "entry '%s' has an absolute path", show(name, s));
    if (strchr(name, '\\'))
        return refuse(err, "entry '%s' contains a backslash", show(name, s));
    char **v = xmalloc((len / 2 + 2) * sizeof(*v));
    size_t k = 0;
    for (char *p = copy, *slash; p; p = slash ? slash + 1 : NULL) {
        slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*p == '\0' || strcmp(p, ".") == 0)
            continue;
        if (strcmp(p, "..") == 0) {
            free(v);
            return refuse(err, "entry '%s' has a '..' component", show(name, s));
        }
        v[k++] = p;
    }
    *comps = v;
    *n = k;
    return 0;
}

/* Classifies an entry from its name and external attributes; *perm is its final mode. */
static int entry_kind(const struct unpack *u, zip_uint64_t idx, const char *name,
                      enum entry_kind *kind, mode_t *perm, struct nb_err *err)
{
    char s[SHOW_MAX];
    zip_uint8_t opsys;
    zip_uint32_t attr;
    if (zip_file_get_external_attributes(u->za, idx, 0, &opsys, &attr) < 0)
        return refuse(err, "entry '%s': %s", show(name, s), zip_strerror(u->za));
    bool slash = name[strlen(name) - 1] == '/';
    *kind = slash ? ENTRY_DIR : ENTRY_FILE;
    *perm = 0644;
    if (opsys != ZIP_OPSYS_UNIX) {
        if (attr & 0x10) /* MS-DOS directory attribute */
            *kind = ENTRY_DIR;
    } else {
        mode_t m = (mode_t)(attr >> 16);
        switch (m & S_IFMT) {
        case 0:
        case S_IFREG:
            break;
        case S_IFDIR:
            *kind = ENTRY_DIR;
            break;
        case S_IFLNK:
            if (slash)
                return refuse(err, "entry '%s' is a symlink named like a directory", show(name, s));
            *kind = ENTRY_LINK;
            break;
        default:
            return refuse(err, "entry '%s' is a device, fifo or socket", show(name, s));
        }
        if (m & 0111)
            *perm = 0755;
    }
    if (*kind == ENTRY_DIR)
        *perm = 0755;
    return 0;
}

/* Opens (creating if needed) directory comp under dirfd without following symlinks. */
static int open_subdir(const struct unpack *u, int dirfd, const char *comp, const char *name,
                       struct nb_err *err)
{
    bool created = mkdirat(dirfd, comp, 0700) == 0;
    if (!created && errno != EEXIST)
        return fs_err(err, errno, "mkdir", name);
    int fd = openat(dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fs_err(err, errno, "open", name);
    if (created) {
        int r = fix_inode(u, fd, 0755);
        if (r < 0) {
            close(fd);
            return fs_err(err, -r, "chmod", name);
        }
    }
    return fd;
}

/* Returns an fd for the directory comps[0..n) under the root, creating what is missing. */
static int open_dirs(const struct unpack *u, char **comps, size_t n, const char *name,
                     struct nb_err *err)
{
    int fd = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return fs_err(err, errno, "dup", name);
    for (size_t i = 0; i < n; i++) {
        int sub = open_subdir(u, fd, comps[i], name, err);
        close(fd);
        if (sub < 0)
            return sub;
        fd = sub;
    }
    return fd;
}

/* Reads the rest of zf into fd (or, when fd < 0, into buf up to bufmax bytes), counting every
 * byte against the unzipped-size limit. Returns bytes read or a negative code. */
static int64_t copy_entry(struct unpack *u, zip_file_t *zf, int fd, char *buf, size_t bufmax,
                          const char *name, struct nb_err *err)
{
    char s[SHOW_MAX];
    uint64_t total = 0;
    for (;;) {
        char *dst = fd >= 0 ? u->chunk : buf + total;
        size_t want = fd >= 0 ? COPY_CHUNK : bufmax - total + 1; /* + 1: see it is too long */
        zip_int64_t n = zip_fread(zf, dst, want);
        if (n < 0)
            return refuse(err, "entry '%s': %s", show(name, s), zip_file_strerror(zf));
        if (n == 0)
            break;
        if ((uint64_t)n > u->lim->max_unzipped - u->written)
            return refuse_size(u, err);
        u->written += (uint64_t)n;
        total += (uint64_t)n;
        if (fd < 0) {
            if (total > bufmax)
                return refuse(err, "symlink '%s': target longer than %zu bytes", show(name, s),
                              bufmax);
            continue;
        }
        int r = write_all(fd, u->chunk, (size_t)n);
        if (r < 0)
            return fs_err(err, -r, "write", name);
    }
    return (int64_t)total;
}

static zip_file_t *open_entry(struct unpack *u, zip_uint64_t idx, const char *name,
                              struct nb_err *err)
{
    char s[SHOW_MAX];
    zip_file_t *zf = zip_fopen_index(u->za, idx, 0);
    if (!zf)
        refuse(err, "entry '%s': %s", show(name, s), zip_strerror(u->za));
    return zf;
}

static int write_file(struct unpack *u, zip_uint64_t idx, int dirfd, const char *comp, mode_t perm,
                      const char *name, struct nb_err *err)
{
    _cleanup_close_ int fd =
        openat(dirfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fs_err(err, errno, "create", name);
    zip_file_t *zf = open_entry(u, idx, name, err);
    if (!zf)
        return -EINVAL;
    int64_t n = copy_entry(u, zf, fd, NULL, 0, name, err);
    zip_fclose(zf);
    if (n < 0)
        return (int)n;
    int r = fix_inode(u, fd, perm);
    if (r < 0)
        return fs_err(err, -r, "chmod", name);
    if (fsync(fd) < 0)
        return fs_err(err, errno, "fsync", name);
    return 0;
}

/*
 * Whether a symlink at depth `depth` (components between the root and the link's directory) may
 * point at target. Rule: relative, and after dropping empty and "." components the target is
 * some leading ".." (at most depth of them) followed by names only. Checking the target lexically
 * as a whole would not do: with "a -> ." kept, "b -> a/.." is lexically the root but really its
 * parent. Under this rule each link lands in the tree from a real directory and names only
 * descend, so no chain of kept links leaves the tree.
 */
static bool link_target_ok(const char *target, size_t depth)
{
    if (target[0] == '/')
        return false;
    size_t ups = 0;
    bool named = false;
    const char *p = target;
    while (*p) {
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (named || ++ups > depth)
                return false;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            named = true;
        }
        p = *end ? end + 1 : end;
    }
    return true;
}

static int make_link(struct unpack *u, zip_uint64_t idx, int dirfd, const char *comp, size_t depth,
                     const char *name, struct nb_err *err)
{
    char s[SHOW_MAX];
    char target[LINK_MAX_LEN + 2];
    zip_file_t *zf = open_entry(u, idx, name, err);
    if (!zf)
        return -EINVAL;
    int64_t n = copy_entry(u, zf, -1, target, LINK_MAX_LEN, name, err);
    zip_fclose(zf);
    if (n < 0)
        return (int)n;
    target[n] = '\0';
    if (n == 0 || memchr(target, '\0', (size_t)n))
        return refuse(err, "symlink '%s' has an invalid target", show(name, s));
    if (!link_target_ok(target, depth))
        return refuse(err, "symlink '%s' points outside the package", show(name, s));
    if (symlinkat(target, dirfd, comp) < 0)
        return fs_err(err, errno, "symlink", name);
    if (u->as_root && fchownat(dirfd, comp, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
        return fs_err(err, errno, "chown", name);
    return 0;
}

static int unpack_entry(struct unpack *u, zip_uint64_t idx, struct nb_err *err)
{
    char s[SHOW_MAX];
    const char *name = zip_get_name(u->za, idx, 0);
    if (!name)
        return refuse(err, "entry %llu: %s", (unsigned long long)idx, zip_strerror(u->za));
    /* libzip keeps the first of two equal names in its index: a later one is a duplicate. */
    if (zip_name_locate(u->za, name, 0) != (zip_int64_t)idx)
        return refuse(err, "duplicate entry '%s'", show(name, s));
    enum entry_kind kind = ENTRY_FILE;
    mode_t perm = 0644;
    int r = entry_kind(u, idx, name, &kind, &perm, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *copy = xstrdup(name);
    _cleanup_free_ char **comps = NULL;
    size_t n = 0;
    r = split_name(name, copy, &comps, &n, err);
    if (r < 0)
        return r;
    if (n == 0) {
        if (kind == ENTRY_DIR)
            return 0; /* "./": the root itself */
        return refuse(err, "entry '%s' has no file name", show(name, s));
    }
    if (kind == ENTRY_DIR) {
        int fd = open_dirs(u, comps, n, name, err);
        if (fd < 0)
            return fd;
        close(fd);
        return 0;
    }
    _cleanup_close_ int dirfd = open_dirs(u, comps, n - 1, name, err);
    if (dirfd < 0)
        return dirfd;
    if (kind == ENTRY_LINK)
        return make_link(u, idx, dirfd, comps[n - 1], n - 1, name, err);
    return write_file(u, idx, dirfd, comps[n - 1], perm, name, err);
}

static int open_archive(const void *zip, size_t len, zip_t **out, struct nb_err *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(zip, len, 0, &ze);
    if (!src) {
        int r = err_set(err, ENOMEM, "cannot read code package: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return r;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        /* ZIP_CHECKCONS: libzip refuses two entries with the same name at open. */
        int r = zip_error_code_zip(&ze) == ZIP_ER_EXISTS
                    ? refuse(err, "two entries have the same name")
                    : refuse(err, "%s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        zip_source_free(src);
        return r;
    }
    zip_error_fini(&ze);
    *out = za;
    return 0;
}

static int unpack_all(struct unpack *u, struct nb_err *err)
{
    zip_int64_t n = zip_get_num_entries(u->za, 0);
    if (n <= 0)
        return err_set(err, EINVAL, MSG_EMPTY);
    if ((uint64_t)n > u->lim->max_entries)
        return refuse(err, "%lld entries, more than the limit of %llu", (long long)n,
                      (unsigned long long)u->lim->max_entries);
    for (zip_uint64_t i = 0; i < (zip_uint64_t)n; i++) {
        int r = unpack_entry(u, i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Walks the tree at path without following symlinks: fsyncs every directory (files were fsync'd
 * when written) when sync is set, and sums the bytes of files and symlink targets into *size. */
static int walk_tree(const char *path, bool sync, uint64_t *size)
{
    char *argv[] = {(char *)path, NULL};
    FTS *fts = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts)
        return -errno;
    int r = 0;
    uint64_t sum = 0;
    for (;;) {
        errno = 0;
        FTSENT *e = fts_read(fts);
        if (!e) {
            r = -errno; /* 0 at the end of the walk */
            break;
        }
        switch (e->fts_info) {
        case FTS_F:
        case FTS_SL:
        case FTS_SLNONE:
            sum += (uint64_t)e->fts_statp->st_size;
            break;
        case FTS_DP:
            if (sync) {
                int fd = open(e->fts_accpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fsync(fd) < 0)
                    r = -errno;
                if (fd >= 0)
                    close(fd);
            }
            break;
        case FTS_DNR:
        case FTS_ERR:
        case FTS_NS:
            r = -(e->fts_errno ? e->fts_errno : EIO);
            break;
        default:
            break;
        }
        if (r < 0)
            break;
    }
    fts_close(fts);
    if (r == 0 && size)
        *size = sum;
    return r;
}

static int fsync_dirfd(int fd, const char *path, struct nb_err *err)
{
    if (fsync(fd) < 0)
        return err_set(err, errno, "cannot fsync '%s': %s", path, strerror(errno));
    return 0;
}

/* Stores the zip as code/<hex>.zip unless it is already there. */
static int store_zip(int codefd, const char *code_dir, const char *hex, const void *zip, size_t len,
                     bool as_root, struct nb_err *err)
{
    _cleanup_free_ char *final = xasprintf("%s.zip", hex);
    struct stat st;
    if (fstatat(codefd, final, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        return 0;
    char uuid[37];
    uuid_v4(uuid);
    _cleanup_free_ char *tmp = xasprintf(".tmp-%s.zip", uuid);
    int fd = openat(codefd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, errno, "cannot create '%s/%s': %s", code_dir, tmp, strerror(errno));
    int r = write_all(fd, zip, len);
    if (r == 0 && as_root && fchown(fd, 0, 0) < 0)
        r = -errno;
    if (r == 0 && fchmod(fd, 0644) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(codefd, tmp, codefd, final) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(codefd, tmp, 0);
        return err_set(err, r, "cannot store '%s/%s': %s", code_dir, final, strerror(-r));
    }
    return fsync_dirfd(codefd, code_dir, err);
}

/* Unpacks the archive into code/.tmp-<uuid>/, makes it durable, stores the zip and renames the
 * tree to code/<hex>/. Losing the rename race to a concurrent import of the same bytes is
 * success. */
static int unpack_tree(zip_t *za, int codefd, const char *code_dir, const char *hex,
                       const void *zip, size_t len, const struct nb_codepkg_limits *lim,
                       bool as_root, uint64_t *written, struct nb_err *err)
{
    char uuid[37];
    uuid_v4(uuid);
    _cleanup_free_ char *tmp = xasprintf(".tmp-%s", uuid);
    _cleanup_free_ char *tmp_path = xasprintf("%s/%s", code_dir, tmp);
    if (mkdirat(codefd, tmp, 0700) < 0)
        return err_set(err, errno, "cannot create '%s': %s", tmp_path, strerror(errno));
    struct unpack u = {.za = za, .lim = lim, .as_root = as_root};
    u.rootfd = openat(codefd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (u.rootfd < 0) {
        int r = err_set(err, errno, "cannot open '%s': %s", tmp_path, strerror(errno));
        rm_rf(tmp_path);
        return r;
    }
    u.chunk = xmalloc(COPY_CHUNK);
    int r = unpack_all(&u, err);
    free(u.chunk);
    if (r == 0) {
        /* 0700 while unpacking so nobody reads a half tree; 0755 from here on. */
        int e = -fix_inode(&u, u.rootfd, 0755);
        if (e == 0)
            e = -walk_tree(tmp_path, true, NULL);
        if (e != 0)
            r = err_set(err, e, "cannot make '%s' durable: %s", tmp_path, strerror(e));
    }
    close(u.rootfd);
    if (r == 0)
        r = store_zip(codefd, code_dir, hex, zip, len, as_root, err);
    if (r == 0 && renameat(codefd, tmp, codefd, hex) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            r = err_set(err, errno, "cannot rename '%s' to '%s': %s", tmp_path, hex,
                        strerror(errno));
        /* else: a concurrent import of the same package won; ours is redundant. */
        rm_rf(tmp_path);
    }
    if (r < 0) {
        rm_rf(tmp_path);
        return r;
    }
    *written = u.written;
    return fsync_dirfd(codefd, code_dir, err);
}

/* The fast path: the tree exists, so does the zip (unless removed by hand: restore it). */
static int reuse_tree(int codefd, const char *code_dir, const char *hex, const void *zip,
                      size_t len, const struct nb_codepkg_limits *lim, bool as_root, uint64_t *size,
                      struct nb_err *err)
{
    int r = store_zip(codefd, code_dir, hex, zip, len, as_root, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = xasprintf("%s/%s", code_dir, hex);
    r = walk_tree(path, false, size);
    if (r < 0)
        return err_set(err, r, "cannot read '%s': %s", path, strerror(-r));
    if (*size > lim->max_unzipped)
        return err_set(err, EINVAL, "Unzipped size must be smaller than %llu bytes",
                       (unsigned long long)lim->max_unzipped);
    return 0;
}

int codepkg_import(const char *data_dir, const void *zip, size_t len,
                   const struct nb_codepkg_limits *lim, struct nb_codepkg *out, struct nb_err *err)
{
    static const struct nb_codepkg_limits defaults = NB_CODEPKG_LIMITS_DEFAULT;
    if (!lim)
        lim = &defaults;
    /* libzip reads zero bytes as an empty archive. */
    if (len == 0)
        return err_set(err, EINVAL, MSG_EMPTY);

    struct nb_codepkg pkg = {.zip_size = len};
    unsigned char digest[32];
    sha256(zip, len, digest);
    hex_encode(digest, sizeof(digest), pkg.sha256_hex);
    _cleanup_free_ char *b64 = b64_encode(digest, sizeof(digest));
    snprintf(pkg.sha256_b64, sizeof(pkg.sha256_b64), "%s", b64);

    _cleanup_free_ char *code_dir = xasprintf("%s/code", data_dir);
    int r = mkdir_p(code_dir, 0755);
    if (r < 0)
        return err_set(err, r, "cannot create '%s': %s", code_dir, strerror(-r));
    _cleanup_close_ int codefd = open(code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (codefd < 0)
        return err_set(err, errno, "cannot open '%s': %s", code_dir, strerror(errno));
    bool as_root = geteuid() == 0;

    struct stat st;
    if (fstatat(codefd, pkg.sha256_hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        r = reuse_tree(codefd, code_dir, pkg.sha256_hex, zip, len, lim, as_root, &pkg.unzipped_size,
                       err);
        if (r < 0)
            return r;
        *out = pkg;
        return 0;
    }

    zip_t *za = NULL;
    r = open_archive(zip, len, &za, err);
    if (r < 0)
        return r;
    r = unpack_tree(za, codefd, code_dir, pkg.sha256_hex, zip, len, lim, as_root,
                    &pkg.unzipped_size, err);
    zip_discard(za);
    if (r < 0)
        return r;
    *out = pkg;
    return 0;
}

char *codepkg_dir(const char *data_dir, const char *sha256_hex)
{
    return xasprintf("%s/code/%s", data_dir, sha256_hex);
}

char *codepkg_zip_path(const char *data_dir, const char *sha256_hex)
{
    return xasprintf("%s/code/%s.zip", data_dir, sha256_hex);
}

static bool is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_live(const char *hex, const char *const *live, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (live[i] && strncmp(live[i], hex, 64) == 0 && live[i][64] == '\0')
            return true;
    return false;
}

/* Removes code/<name>: a directory is renamed away first so a crash cannot leave a partial tree
 * under a package's name. */
static void gc_remove(int codefd, const char *code_dir, const char *name, bool is_dir)
{
    if (!is_dir) {
        if (unlinkat(codefd, name, 0) < 0 && errno != ENOENT)
            log_warn("msg=\"cannot remove code package file\" path=\"%s/%s\" error=\"%s\"",
                     code_dir, name, strerror(errno));
        return;
    }
    const char *victim = name;
    _cleanup_free_ char *tmp = NULL;
    if (strncmp(name, ".tmp-", 5) != 0) {
        char uuid[37];
        uuid_v4(uuid);
        tmp = xasprintf(".tmp-%s", uuid);
        if (renameat(codefd, name, codefd, tmp) < 0) {
            log_warn("msg=\"cannot remove code package\" path=\"%s/%s\" error=\"%s\"", code_dir,
                     name, strerror(errno));
            return;
        }
        fsync(codefd);
        victim = tmp;
    }
    _cleanup_free_ char *path = xasprintf("%s/%s", code_dir, victim);
    int r = rm_rf(path);
    if (r < 0)
        log_warn("msg=\"cannot remove code package\" path=\"%s\" error=\"%s\"", path, strerror(-r));
}

void codepkg_gc(const char *data_dir, const char *const *live, size_t n)
{
    _cleanup_free_ char *code_dir = xasprintf("%s/code", data_dir);
    _cleanup_close_ int codefd = open(code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (codefd < 0)
        return; /* nothing imported yet */
    int dfd = fcntl(codefd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        log_warn("msg=\"cannot list code packages\" path=\"%s\" error=\"%s\"", code_dir,
                 strerror(errno));
        return;
    }
    /* Collect first: removing while readdir runs may skip or repeat entries. */
    struct nb_buf names = NB_BUF_INIT;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        bool tmp = strncmp(nm, ".tmp-", 5) == 0;
        bool tree = len == 64 && is_hex64(nm);
        bool zip = len == 68 && is_hex64(nm) && strcmp(nm + 64, ".zip") == 0;
        if (!tmp && !((tree || zip) && !is_live(nm, live, n)))
            continue;
        buf_append(&names, nm, len + 1);
    }
    closedir(d);
    /* Trees before zips: a tree must never exist without its zip. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t off = 0; off < names.len; off += strlen(names.data + off) + 1) {
            const char *nm = names.data + off;
            struct stat st;
            if (fstatat(codefd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            bool is_dir = S_ISDIR(st.st_mode);
            if (is_dir == (pass == 0))
                gc_remove(codefd, code_dir, nm, is_dir);
        }
    }
    buf_release(&names);
    fsync(codefd);
}
