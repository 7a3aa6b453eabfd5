/*
 * test_codepkg.c - unit tests for codepkg.c: zips are built in memory with libzip (or patched
 * byte by byte where libzip refuses to write something hostile), imported into a fresh temporary
 * data directory per test, and the resulting tree is inspected with lstat/readlink.
 *
 * Invariants checked after every refusal: EINVAL with Lambda's wording, nothing written outside
 * the data dir, no tree, no zip and no temporary left under DATA_DIR/code.
 * Empty zips (0 bytes, or a valid archive with no entries) are refused with Lambda's "Uploaded
 * file must be a non-empty zip".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zip.h>

#include "codec.h"
#include "codepkg.h"

#define UNZIP_MSG "Could not unzip uploaded file. Please check your file, then try to upload again."

struct fixture {
    char root[64]; /* the temporary directory: root/data is the data dir */
    char *data;
};

struct zent {
    const char *name;
    const char *data; /* NULL for a directory entry added with zip_dir_add */
    size_t len;       /* 0 = strlen(data) */
    uint32_t mode;    /* st_mode with type bits for ZIP_OPSYS_UNIX; 0 = leave libzip's default */
    bool deflate;
    bool dos; /* mode is an MS-DOS attribute byte, "made by" MS-DOS */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/nb-test-codepkg-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    f->data = xasprintf("%s/data", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_rf(f->root);
    free(f->data);
    free(f);
    return 0;
}

/* Builds a zip in memory; returns malloc'd bytes. */
static unsigned char *make_zip(const struct zent *e, size_t n, size_t *len)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    assert_non_null(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    assert_non_null(za);
    zip_source_keep(src);
    for (size_t i = 0; i < n; i++) {
        zip_int64_t idx;
        if (!e[i].data) {
            idx = zip_dir_add(za, e[i].name, ZIP_FL_ENC_UTF_8);
        } else {
            size_t l = e[i].len ? e[i].len : strlen(e[i].data);
            zip_source_t *zs = zip_source_buffer(za, e[i].data, l, 0);
            assert_non_null(zs);
            idx = zip_file_add(za, e[i].name, zs, ZIP_FL_ENC_UTF_8);
            assert_true(idx >= 0);
            assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx,
                                                      e[i].deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                                      0),
                             0);
        }
        assert_true(idx >= 0);
        if (e[i].mode && e[i].dos)
            assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
                                                              ZIP_OPSYS_DOS, e[i].mode),
                             0);
        else if (e[i].mode)
            assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
                                                              ZIP_OPSYS_UNIX, e[i].mode << 16),
                             0);
    }
    assert_int_equal(zip_close(za), 0);
    zip_stat_t st;
    assert_int_equal(zip_source_stat(src, &st), 0);
    assert_int_equal(zip_source_open(src), 0);
    unsigned char *out = xmalloc(st.size);
    assert_int_equal(zip_source_read(src, out, st.size), (zip_int64_t)st.size);
    zip_source_close(src);
    zip_source_free(src);
    *len = st.size;
    return out;
}

/* Replaces every occurrence of from (same length as to) in buf: patches names in both the local
 * and the central headers. */
static void patch(unsigned char *buf, size_t len, const char *from, const char *to, size_t n)
{
    int hits = 0;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            hits++;
        }
    assert_int_equal(hits, 2);
}

static int import(struct fixture *f, const void *zip, size_t len,
                  const struct nb_codepkg_limits *lim, struct nb_codepkg *out, struct nb_err *err)
{
    return codepkg_import(f->data, zip, len, lim, out, err);
}

/* Number of directory entries (minus . and ..) in path; -1 if it does not exist. */
static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* After a refusal: the test root holds at most data/, data/ at most code/, and code/ nothing. */
static void assert_nothing_written(struct fixture *f)
{
    assert_true(count_dir(f->root) <= 1);
    assert_true(count_dir(f->data) <= 1);
    _cleanup_free_ char *code = xasprintf("%s/code", f->data);
    assert_true(count_dir(code) <= 0);
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void assert_refused(struct fixture *f, const struct zent *e, size_t n,
                           const struct nb_codepkg_limits *lim, const char *want_msg)
{
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, n, &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, lim, &pkg, &err), -EINVAL);
    assert_int_equal(err.code, EINVAL);
    if (!strstr(err.msg, want_msg))
        fail_msg("message '%s' lacks '%s'", err.msg, want_msg);
    assert_nothing_written(f);
}

static mode_t lmode(const char *dir, const char *rel)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
    struct stat st;
    if (lstat(p, &st) < 0)
        fail_msg("lstat '%s': %s", p, strerror(errno));
    return st.st_mode;
}

static bool exists(const char *dir, const char *rel)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

static const char bootstrap[] = "#!/bin/sh\nexec ./handler\n";
static const char util_sh[] = "echo util\n";

static void test_normal_tree(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {
        {"bootstrap", bootstrap, 0, S_IFREG | 0755, true, false},
        {"lib/", NULL, 0, S_IFDIR | 0700, false, false},
        {"lib/util.sh", util_sh, 0, S_IFREG | 0600, true, false},
        {"data/deep/x.txt", "x", 0, S_IFREG | 04775, false, false}, /* setuid dropped, x kept */
        {"plain.txt", "plain", 0, 0, false, false}, /* libzip's default attributes */
    };
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, ARRAY_SIZE(e), &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, NULL, &pkg, &err), 0);
    assert_int_equal(err.code, 0);
    assert_int_equal(pkg.zip_size, len);
    assert_int_equal(pkg.unzipped_size, strlen(bootstrap) + strlen(util_sh) + 1 + 5);

    _cleanup_free_ char *dir = codepkg_dir(f->data, pkg.sha256_hex);
    assert_int_equal(lmode(dir, "."), S_IFDIR | 0755);
    assert_int_equal(lmode(dir, "bootstrap"), S_IFREG | 0755);
    assert_int_equal(lmode(dir, "lib"), S_IFDIR | 0755);
    assert_int_equal(lmode(dir, "lib/util.sh"), S_IFREG | 0644);
    assert_int_equal(lmode(dir, "data"), S_IFDIR | 0755);
    assert_int_equal(lmode(dir, "data/deep"), S_IFDIR | 0755);
    assert_int_equal(lmode(dir, "data/deep/x.txt"), S_IFREG | 0755);
    assert_int_equal(lmode(dir, "plain.txt"), S_IFREG | 0644);
    if (geteuid() == 0) {
        _cleanup_free_ char *p = xasprintf("%s/bootstrap", dir);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 0);
    }

    _cleanup_free_ char *bpath = xasprintf("%s/bootstrap", dir);
    _cleanup_free_ char *content = NULL;
    size_t clen;
    assert_int_equal(read_file(bpath, &content, &clen), 0);
    assert_int_equal(clen, strlen(bootstrap));
    assert_memory_equal(content, bootstrap, clen);

    /* The zip is stored byte for byte, and nothing else is left under code/. */
    _cleanup_free_ char *zpath = codepkg_zip_path(f->data, pkg.sha256_hex);
    _cleanup_free_ char *stored = NULL;
    size_t slen;
    assert_int_equal(read_file(zpath, &stored, &slen), 0);
    assert_int_equal(slen, len);
    assert_memory_equal(stored, zip, len);
    _cleanup_free_ char *code = xasprintf("%s/code", f->data);
    assert_int_equal(count_dir(code), 2);
}

static void test_idempotent(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {{"bootstrap", bootstrap, 0, S_IFREG | 0755, true, false},
                             {"a/b/c", "abc", 0, S_IFREG | 0644, false, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, ARRAY_SIZE(e), &len);
    struct nb_codepkg p1, p2, p3;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, NULL, &p1, &err), 0);
    _cleanup_free_ char *dir = codepkg_dir(f->data, p1.sha256_hex);
    struct stat st1, st2;
    assert_int_equal(stat(dir, &st1), 0);

    assert_int_equal(import(f, zip, len, NULL, &p2, &err), 0);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    assert_int_equal(stat(dir, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino); /* the tree was reused, not rebuilt */

    /* A zip removed by hand is restored by the next import. */
    _cleanup_free_ char *zpath = codepkg_zip_path(f->data, p1.sha256_hex);
    assert_int_equal(unlink(zpath), 0);
    assert_int_equal(import(f, zip, len, NULL, &p3, &err), 0);
    assert_memory_equal(&p1, &p3, sizeof(p1));
    assert_int_equal(access(zpath, R_OK), 0);

    /* Re-import under a smaller size limit is refused like a first import would be. */
    struct nb_codepkg_limits lim = {4, 100};
    assert_int_equal(import(f, zip, len, &lim, &p3, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "Unzipped size must be smaller than 4 bytes"));
}

static void test_zip_slip(void **state)
{
    struct fixture *f = *state;
    const struct zent e1[] = {{"ok.txt", "ok", 0, 0, false, false},
                              {"../evil", "evil", 0, 0, false, false}};
    assert_refused(f, e1, ARRAY_SIZE(e1), NULL, "'..'");
    const struct zent e2[] = {{"a/../../evil", "evil", 0, 0, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), NULL, "'..'");
    const struct zent e3[] = {{"a/../b", "b", 0, 0, false, false}};
    assert_refused(f, e3, ARRAY_SIZE(e3), NULL, "'..'");
    const struct zent e4[] = {{"../", NULL, 0, 0, false, false}};
    assert_refused(f, e4, ARRAY_SIZE(e4), NULL, "'..'");
    _cleanup_free_ char *evil = xasprintf("%s/evil", f->root);
    assert_int_equal(access(evil, F_OK), -1);
}

static void test_absolute_and_backslash(void **state)
{
    struct fixture *f = *state;
    _cleanup_free_ char *abs = xasprintf("%s/abs", f->root);
    const struct zent e1[] = {{abs, "x", 0, 0, false, false}};
    assert_refused(f, e1, ARRAY_SIZE(e1), NULL, "absolute path");
    assert_int_equal(access(abs, F_OK), -1);
    const struct zent e2[] = {{"..\\evil", "x", 0, 0, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), NULL, "backslash");
    const struct zent e3[] = {{"dir\\file", "x", 0, 0, false, false}};
    assert_refused(f, e3, ARRAY_SIZE(e3), NULL, "backslash");
}

static void test_symlink_escape_refused(void **state)
{
    struct fixture *f = *state;
    const struct zent e1[] = {{"passwd", "/etc/passwd", 0, S_IFLNK | 0777, false, false}};
    assert_refused(f, e1, ARRAY_SIZE(e1), NULL, "points outside");
    const struct zent e2[] = {{"a/up", "../../x", 0, S_IFLNK | 0777, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), NULL, "points outside");
    /* Lexically inside, really outside once "self" resolves to the root. */
    const struct zent e3[] = {{"self", ".", 0, S_IFLNK | 0777, false, false},
                              {"esc", "self/..", 0, S_IFLNK | 0777, false, false}};
    assert_refused(f, e3, ARRAY_SIZE(e3), NULL, "points outside");
    const struct zent e4[] = {{"empty", "", 0, S_IFLNK | 0777, false, false}};
    assert_refused(f, e4, ARRAY_SIZE(e4), NULL, "invalid target");
    const struct zent e5[] = {{"d/", NULL, 0, S_IFLNK | 0777, false, false}};
    assert_refused(f, e5, ARRAY_SIZE(e5), NULL, "symlink named like a directory");
}

static void test_symlink_inside_allowed(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {
        {"lib/real.txt", "real", 0, S_IFREG | 0644, false, false},
        {"link", "lib/real.txt", 0, S_IFLNK | 0777, false, false},
        {"lib/up", "../bootstrap", 0, S_IFLNK | 0777, false, false},
        {"lib/self", ".", 0, S_IFLNK | 0777, false, false},
        {"lib/top", "..", 0, S_IFLNK | 0777, false, false},
        {"bootstrap", bootstrap, 0, S_IFREG | 0755, false, false},
    };
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, ARRAY_SIZE(e), &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, NULL, &pkg, &err), 0);
    _cleanup_free_ char *dir = codepkg_dir(f->data, pkg.sha256_hex);
    assert_true(S_ISLNK(lmode(dir, "link")));
    assert_true(S_ISLNK(lmode(dir, "lib/up")));
    char buf[64];
    _cleanup_free_ char *lp = xasprintf("%s/link", dir);
    ssize_t n = readlink(lp, buf, sizeof(buf));
    assert_int_equal(n, strlen("lib/real.txt"));
    assert_memory_equal(buf, "lib/real.txt", (size_t)n);
    _cleanup_free_ char *via = xasprintf("%s/lib/up", dir);
    _cleanup_free_ char *content = NULL;
    size_t clen;
    assert_int_equal(read_file(via, &content, &clen), 0);
    assert_string_equal(content, bootstrap);
    assert_int_equal(pkg.unzipped_size, 4 + strlen("lib/real.txt") + strlen("../bootstrap") + 1 +
                                            2 + strlen(bootstrap));
}

static void test_write_through_symlink_refused(void **state)
{
    struct fixture *f = *state;
    /* "dir" is a (kept-looking) symlink to lib/; a later "dir/x" must not land in lib/x. */
    const struct zent e[] = {{"lib/", NULL, 0, S_IFDIR | 0755, false, false},
                             {"dir", "lib", 0, S_IFLNK | 0777, false, false},
                             {"dir/x", "x", 0, S_IFREG | 0644, false, false}};
    assert_refused(f, e, ARRAY_SIZE(e), NULL, "clashes");
    /* A file, then a directory of the same name. */
    const struct zent e2[] = {{"a", "x", 0, 0, false, false}, {"a/b", "y", 0, 0, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), NULL, "clashes");
    /* Same path, spelled differently. */
    const struct zent e3[] = {{"a/b", "x", 0, 0, false, false},
                              {"a//./b", "y", 0, 0, false, false}};
    assert_refused(f, e3, ARRAY_SIZE(e3), NULL, "clashes");
}

static void test_entry_limit(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {{"a", "a", 0, 0, false, false},
                             {"b", "b", 0, 0, false, false},
                             {"c/", NULL, 0, 0, false, false},
                             {"d", "d", 0, 0, false, false}};
    struct nb_codepkg_limits lim = {1 << 20, 3};
    assert_refused(f, e, ARRAY_SIZE(e), &lim, "more than the limit of 3");
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, 3, &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, &lim, &pkg, &err), 0);
}

static void test_size_limit(void **state)
{
    struct fixture *f = *state;
    static char big[1001];
    memset(big, 'z', sizeof(big));
    struct nb_codepkg_limits lim = {1000, 100};
    const struct zent e[] = {{"big", big, 1001, 0, true, false}};
    assert_refused(f, e, ARRAY_SIZE(e), &lim, "Unzipped size must be smaller than 1000 bytes");
    /* The limit counts across entries, symlink targets included. */
    const struct zent e2[] = {
        {"a", big, 600, 0, false, false},
        {"l", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, S_IFLNK | 0777, false, false},
        {"b", big, 358, 0, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), &lim, "Unzipped size must be smaller");
    const struct zent e3[] = {{"exact", big, 1000, 0, true, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e3, 1, &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, &lim, &pkg, &err), 0);
    assert_int_equal(pkg.unzipped_size, 1000);
}

static void test_zip_bomb(void **state)
{
    struct fixture *f = *state;
    size_t blen = 32u << 20;
    _cleanup_free_ char *zeros = xcalloc(1, blen);
    const struct zent e[] = {{"bomb", zeros, blen, 0, true, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, 1, &len);
    assert_true(len < blen / 500);
    struct nb_codepkg_limits lim = {1 << 20, 10};
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, &lim, &pkg, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "Unzipped size must be smaller than 1048576 bytes"));
    assert_nothing_written(f);
}

/* A header that lies about the uncompressed size does not move the limit: the bytes written
 * are counted. */
static void test_lying_header(void **state)
{
    struct fixture *f = *state;
    static char big[5000];
    memset(big, 'q', sizeof(big));
    const struct zent e[] = {{"lie", big, sizeof(big), 0, true, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, 1, &len);
    /* Patch the uncompressed size (5000 = 0x1388) to 10 in both headers. */
    unsigned char want[4] = {0x88, 0x13, 0, 0}, small[4] = {10, 0, 0, 0};
    patch(zip, len, (const char *)want, (const char *)small, 4);
    struct nb_codepkg_limits lim = {100, 10};
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, &lim, &pkg, &err), -EINVAL);
    assert_nothing_written(f);
}

static void test_garbage_and_empty(void **state)
{
    struct fixture *f = *state;
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    const char garbage[] = "this is not a zip file, just some bytes";
    assert_int_equal(import(f, garbage, sizeof(garbage), NULL, &pkg, &err), -EINVAL);
    assert_non_null(strstr(err.msg, UNZIP_MSG));

    unsigned char noise[4096];
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (unsigned char)(i * 7919u >> 3);
    assert_int_equal(import(f, noise, sizeof(noise), NULL, &pkg, &err), -EINVAL);

    /* Truncated: a valid zip cut in half. */
    const struct zent e[] = {{"a", "aaaa", 0, 0, false, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, 1, &len);
    assert_int_equal(import(f, zip, len / 2, NULL, &pkg, &err), -EINVAL);

    /* Empty input and an archive without entries: Lambda refuses both. */
    err_clear(&err);
    assert_int_equal(import(f, "", 0, NULL, &pkg, &err), -EINVAL);
    assert_string_equal(err.msg, "Uploaded file must be a non-empty zip");
    static const unsigned char empty_zip[22] = {0x50, 0x4b, 0x05, 0x06};
    err_clear(&err);
    assert_int_equal(import(f, empty_zip, sizeof(empty_zip), NULL, &pkg, &err), -EINVAL);
    assert_string_equal(err.msg, "Uploaded file must be a non-empty zip");
    assert_nothing_written(f);
}

static void test_special_files_refused(void **state)
{
    struct fixture *f = *state;
    const struct zent e1[] = {{"dev", "", 1, S_IFCHR | 0666, false, false}};
    assert_refused(f, e1, ARRAY_SIZE(e1), NULL, "device, fifo or socket");
    const struct zent e2[] = {{"fifo", "", 1, S_IFIFO | 0666, false, false}};
    assert_refused(f, e2, ARRAY_SIZE(e2), NULL, "device, fifo or socket");
    const struct zent e3[] = {{"blk", "", 1, S_IFBLK | 0666, false, false}};
    assert_refused(f, e3, ARRAY_SIZE(e3), NULL, "device, fifo or socket");
}

static void test_duplicate_names(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {{"dupA", "first", 0, 0, false, false},
                             {"dupB", "second", 0, 0, false, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, ARRAY_SIZE(e), &len);
    patch(zip, len, "dupB", "dupA", 4);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, NULL, &pkg, &err), -EINVAL);
    assert_non_null(strstr(err.msg, UNZIP_MSG));
    assert_non_null(strstr(err.msg, "same name"));
    assert_nothing_written(f);
}

/* libzip maps a NUL inside a stored name to a space, so a NUL can never cut a name short (for
 * example "ok\0/../../evil" can never become "ok"). Pin that behaviour. */
static void test_nul_in_name(void **state)
{
    struct fixture *f = *state;
    const struct zent e[] = {{"aXb", "x", 0, 0, false, false}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, 1, &len);
    patch(zip, len, "aXb", "a\0b", 3);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    int r = import(f, zip, len, NULL, &pkg, &err);
    if (r == 0) {
        _cleanup_free_ char *dir = codepkg_dir(f->data, pkg.sha256_hex);
        assert_false(exists(dir, "a"));
        assert_true(exists(dir, "a b"));
    } else {
        assert_int_equal(r, -EINVAL);
    }
}

static void test_windows_attributes(void **state)
{
    struct fixture *f = *state;
    /* "Made by" MS-DOS: no Unix mode, so 0644; the directory attribute (0x10) makes a directory
     * even without a trailing slash. */
    const struct zent e[] = {{"run.exe", "MZ", 0, 0x20, false, true},
                             {"folder", "", 1, 0x10, false, true}};
    size_t len;
    _cleanup_free_ unsigned char *zip = make_zip(e, ARRAY_SIZE(e), &len);
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, len, NULL, &pkg, &err), 0);
    _cleanup_free_ char *dir = codepkg_dir(f->data, pkg.sha256_hex);
    assert_int_equal(lmode(dir, "run.exe"), S_IFREG | 0644);
    assert_int_equal(lmode(dir, "folder"), S_IFDIR | 0755);
}

static void test_known_sha256(void **state)
{
    struct fixture *f = *state;
    /* Python zipfile, one stored entry "hello.txt" = "hello nimbus\n", date 2020-01-01;
     * sha256sum and `openssl dgst -sha256 -binary | base64` give the values below. */
    static const unsigned char zip[] = {
        0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x45,
        0x14, 0xce, 0xb2, 0x0d, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
        0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2e, 0x74, 0x78, 0x74, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20,
        0x6e, 0x69, 0x6d, 0x62, 0x75, 0x73, 0x0a, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x45, 0x14, 0xce, 0xb2, 0x0d, 0x00, 0x00,
        0x00, 0x0d, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xa4, 0x81, 0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2e, 0x74,
        0x78, 0x74, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x37,
        0x00, 0x00, 0x00, 0x34, 0x00, 0x00, 0x00, 0x00, 0x00};
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    assert_int_equal(import(f, zip, sizeof(zip), NULL, &pkg, &err), 0);
    assert_string_equal(pkg.sha256_hex,
                        "e89df3a4498cd78f6c1889f3fb8afbf574cb5a32ddc100c1f2f58bd01d710a40");
    assert_string_equal(pkg.sha256_b64, "6J3zpEmM149sGInz+4r79XTLWjLdwQDB8vWL0B1xCkA=");
    assert_int_equal(pkg.zip_size, 129);
    assert_int_equal(pkg.unzipped_size, 13);
    _cleanup_free_ char *dir = codepkg_dir(f->data, pkg.sha256_hex);
    _cleanup_free_ char *want = xasprintf(
        "%s/code/e89df3a4498cd78f6c1889f3fb8afbf574cb5a32ddc100c1f2f58bd01d710a40", f->data);
    assert_string_equal(dir, want);
    assert_int_equal(lmode(dir, "hello.txt"), S_IFREG | 0644);
}

static void test_gc(void **state)
{
    struct fixture *f = *state;
    const struct zent e1[] = {{"one", "1", 0, 0, false, false}};
    const struct zent e2[] = {{"two", "2", 0, 0, false, false}};
    size_t l1, l2;
    _cleanup_free_ unsigned char *z1 = make_zip(e1, 1, &l1);
    _cleanup_free_ unsigned char *z2 = make_zip(e2, 1, &l2);
    struct nb_codepkg p1, p2;
    struct nb_err err = {0};
    assert_int_equal(import(f, z1, l1, NULL, &p1, &err), 0);
    assert_int_equal(import(f, z2, l2, NULL, &p2, &err), 0);
    /* Leftovers of a crash, and a stranger gc must not touch. */
    _cleanup_free_ char *stale = xasprintf("%s/code/.tmp-stale/x", f->data);
    assert_int_equal(mkdir_p(stale, 0755), 0);
    _cleanup_free_ char *other = xasprintf("%s/code/README", f->data);
    touch(other);

    const char *live[] = {p1.sha256_hex};
    codepkg_gc(f->data, live, 1);
    _cleanup_free_ char *d1 = codepkg_dir(f->data, p1.sha256_hex);
    _cleanup_free_ char *z1p = codepkg_zip_path(f->data, p1.sha256_hex);
    _cleanup_free_ char *d2 = codepkg_dir(f->data, p2.sha256_hex);
    _cleanup_free_ char *z2p = codepkg_zip_path(f->data, p2.sha256_hex);
    assert_int_equal(access(d1, F_OK), 0);
    assert_int_equal(access(z1p, F_OK), 0);
    assert_int_equal(access(d2, F_OK), -1);
    assert_int_equal(access(z2p, F_OK), -1);
    assert_int_equal(access(other, F_OK), 0);
    _cleanup_free_ char *code = xasprintf("%s/code", f->data);
    assert_int_equal(count_dir(code), 3);

    codepkg_gc(f->data, NULL, 0);
    assert_int_equal(count_dir(code), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normal_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip_slip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute_and_backslash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_escape_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_inside_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_through_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lying_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
