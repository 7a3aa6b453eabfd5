/*
 * fuzz_zip.c - libFuzzer target: arbitrary bytes into codepkg_import with small limits (1 MiB
 * unzipped, 32 entries) and a private data dir (under /dev/shm when present, so fsync is cheap),
 * emptied after every input. An input starting with 'S' is instead a list of entries the harness
 * zips with libzip first (see build_structured): the system libzip is not instrumented, so raw
 * mutations rarely get past its checks, while structured inputs reach every refusal path.
 *
 * Besides the sanitizers, it aborts when an invariant of codepkg.h breaks:
 *  - the result is 0 or -EINVAL (anything else is a platform error the input should not cause);
 *  - nothing appears outside DATA_DIR/code; code/ holds exactly <hex>/ and <hex>.zip after a
 *    success and nothing after a refusal (no temporaries left);
 *  - the tree holds only 0755 directories, 0644/0755 regular files and relative symlinks whose
 *    resolved path stays inside the tree; the bytes add up to unzipped_size <= the limit;
 *  - importing the same bytes again gives the same answer.
 * Seeds: tests/fuzz/corpus/zip/ (how they were made: see the end of this file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <sys/stat.h>

#include <zip.h>

#include "codepkg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *root;     /* private temporary directory */
static char *data_dir; /* root/data */
static char *code_dir; /* root/data/code */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_zip: invariant broken: %s (%s)\n", what, detail ? detail : "");
    abort();
}

static void cleanup(void)
{
    rm_rf(root);
}

static void init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    root = xasprintf("%s/nb-fuzz-zip-XXXXXX", base);
    if (!mkdtemp(root))
        die("mkdtemp", strerror(errno));
    data_dir = xasprintf("%s/data", root);
    code_dir = xasprintf("%s/code", data_dir);
    atexit(cleanup);
}

/* Checks that dir holds only names in want (NULL-terminated), and all of them when exact. */
static void expect_only(const char *dir, const char *const *want, bool exact)
{
    size_t nwant = 0;
    while (want[nwant])
        nwant++;
    DIR *d = opendir(dir);
    if (!d) {
        if ((nwant == 0 || !exact) && errno == ENOENT)
            return;
        die("cannot list", dir);
    }
    size_t seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        bool ok = false;
        for (size_t i = 0; i < nwant; i++)
            ok = ok || strcmp(de->d_name, want[i]) == 0;
        if (!ok)
            die("unexpected entry", de->d_name);
        seen++;
    }
    closedir(d);
    if (exact && seen != nwant)
        die("missing entry in", dir);
}

static void check_tree(const char *tree, const struct nb_codepkg *pkg)
{
    char *argv[] = {(char *)tree, NULL};
    FTS *fts = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts)
        die("fts_open", tree);
    char real_tree[PATH_MAX];
    if (!realpath(tree, real_tree))
        die("realpath", tree);
    size_t tlen = strlen(real_tree);
    uint64_t sum = 0;
    FTSENT *e;
    while ((e = fts_read(fts))) {
        mode_t m = e->fts_statp->st_mode;
        switch (e->fts_info) {
        case FTS_D:
            if ((m & 07777) != 0755)
                die("directory mode", e->fts_path);
            break;
        case FTS_F:
            if ((m & 07777) != 0644 && (m & 07777) != 0755)
                die("file mode", e->fts_path);
            sum += (uint64_t)e->fts_statp->st_size;
            break;
        case FTS_SL:
        case FTS_SLNONE: {
            char target[PATH_MAX];
            ssize_t n = readlink(e->fts_path, target, sizeof(target) - 1);
            if (n <= 0 || target[0] == '/')
                die("symlink target", e->fts_path);
            sum += (uint64_t)n;
            char resolved[PATH_MAX];
            if (realpath(e->fts_path, resolved) &&
                (strncmp(resolved, real_tree, tlen) != 0 ||
                 (resolved[tlen] != '/' && resolved[tlen] != '\0')))
                die("symlink resolves outside the tree", e->fts_path);
            break;
        }
        case FTS_DP:
            break;
        default:
            die("unexpected tree entry", e->fts_path);
        }
    }
    fts_close(fts);
    if (sum != pkg->unzipped_size)
        die("unzipped_size does not add up", tree);
}

/*
 * Structured input after the 'S': records of
 *   kind (0 file, 1 directory, 2 symlink, 3 fifo, 4 char device, 5+ file)
 *   flags (1 executable, 2 deflate, 4 MS-DOS attributes, 8 no attributes set, 0x40 data repeated
 *          4096 times: big and compressible, 0x20 name length times 8)
 *   name length (1 byte), name, data length (1 byte, times 16 when flags & 0x80), data
 * Names libzip refuses to add twice are skipped. Returns malloc'd zip bytes or NULL.
 */
static unsigned char *build_structured(const uint8_t *p, size_t n, size_t *outlen)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    if (!za)
        die("libzip cannot create an archive", zip_error_strerror(&ze));
    zip_source_keep(src);
    size_t i = 0;
    for (int count = 0; count < 40 && i + 3 <= n; count++) {
        uint8_t kind = p[i], flags = p[i + 1];
        size_t nlen = (size_t)p[i + 2] * (flags & 0x20 ? 8 : 1);
        i += 3;
        if (i + nlen + 1 > n)
            break;
        _cleanup_free_ char *name = xstrndup((const char *)p + i, nlen);
        i += nlen;
        size_t dlen = p[i++];
        if (flags & 0x80)
            dlen *= 16;
        const uint8_t *d = p + i;
        if (dlen > n - i)
            dlen = n - i;
        i += dlen;
        if (!*name)
            continue;
        zip_int64_t idx;
        if (kind == 1) {
            idx = zip_dir_add(za, name, ZIP_FL_ENC_GUESS);
        } else {
            zip_source_t *zs;
            if (flags & 0x40 && dlen) {
                unsigned char *rep = xmalloc(dlen * 4096);
                for (size_t k = 0; k < 4096; k++)
                    memcpy(rep + k * dlen, d, dlen);
                zs = zip_source_buffer(za, rep, dlen * 4096, 1); /* libzip frees rep */
                if (!zs)
                    free(rep);
            } else {
                zs = zip_source_buffer(za, d, dlen, 0);
            }
            idx = zs ? zip_file_add(za, name, zs, ZIP_FL_ENC_GUESS) : -1;
            if (idx < 0 && zs)
                zip_source_free(zs);
        }
        if (idx < 0)
            continue;
        zip_set_file_compression(za, (zip_uint64_t)idx, flags & 2 ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 0);
        uint32_t type = kind == 1   ? S_IFDIR
                        : kind == 2 ? S_IFLNK
                        : kind == 3 ? S_IFIFO
                        : kind == 4 ? S_IFCHR
                                    : S_IFREG;
        uint32_t perm = flags & 1 ? 0755 : 0644;
        if (flags & 8)
            continue;
        if (flags & 4)
            zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_DOS,
                                             kind == 1 ? 0x10 : 0x20);
        else
            zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                             (type | perm) << 16);
    }
    if (zip_close(za) != 0) {
        zip_discard(za);
        zip_source_free(src);
        return NULL;
    }
    unsigned char *out = NULL;
    zip_stat_t st;
    if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
        out = xmalloc(st.size ? st.size : 1);
        if (zip_source_read(src, out, st.size) != (zip_int64_t)st.size) {
            free(out);
            out = NULL;
        }
        zip_source_close(src);
        *outlen = st.size;
    }
    zip_source_free(src);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root)
        init();
    _cleanup_free_ unsigned char *built = NULL;
    if (size >= 1 && data[0] == 'S') {
        built = build_structured(data + 1, size - 1, &size);
        if (!built)
            return 0;
        data = built;
    }
    struct nb_codepkg_limits lim = {1u << 20, 32};
    struct nb_codepkg pkg;
    struct nb_err err = {0};
    int r = codepkg_import(data_dir, data, size, &lim, &pkg, &err);
    if (r != 0 && r != -EINVAL)
        die("unexpected error", err.msg);
    if ((r == 0) != (err.code == 0))
        die("error contract", err.msg);

    const char *only_data[] = {"data", NULL};
    const char *only_code[] = {"code", NULL};
    expect_only(root, only_data, false);
    expect_only(data_dir, only_code, false);
    if (r == 0) {
        if (pkg.unzipped_size > lim.max_unzipped || pkg.zip_size != size)
            die("sizes", pkg.sha256_hex);
        _cleanup_free_ char *zipname = xasprintf("%s.zip", pkg.sha256_hex);
        const char *want[] = {pkg.sha256_hex, zipname, NULL};
        expect_only(code_dir, want, true);
        _cleanup_free_ char *tree = codepkg_dir(data_dir, pkg.sha256_hex);
        check_tree(tree, &pkg);
        struct nb_codepkg again;
        if (codepkg_import(data_dir, data, size, &lim, &again, &err) != 0 ||
            memcmp(&again, &pkg, sizeof(pkg)) != 0)
            die("re-import differs", pkg.sha256_hex);
    } else {
        const char *none[] = {NULL};
        expect_only(code_dir, none, true);
    }
    int rr = rm_rf(code_dir);
    if (rr < 0)
        die("cannot clean up", strerror(-rr));
    return 0;
}

/*
 * The seeds were written by this Python 3 script (run with the corpus directory as argument):
 *
 *   import io, zipfile, os, sys, warnings
 *   out, D = sys.argv[1], (2020, 1, 1, 0, 0, 0)
 *   def info(name, mode, method=zipfile.ZIP_DEFLATED):
 *       zi = zipfile.ZipInfo(name, date_time=D); zi.compress_type = method
 *       zi.create_system = 3; zi.external_attr = mode << 16; return zi
 *   def build(fname, entries, method=zipfile.ZIP_DEFLATED, stream=False):
 *       b = io.BytesIO()
 *       class NoSeek(io.RawIOBase):
 *           def writable(self): return True
 *           def write(self, d): return b.write(d)
 *       z = zipfile.ZipFile(NoSeek() if stream else b, 'w', method)
 *       for name, mode, data in entries: z.writestr(info(name, mode, method), data)
 *       z.close(); open(os.path.join(out, fname), 'wb').write(b.getvalue())
 *   build('simple.zip', [('bootstrap', 0o100755, b'#!/bin/sh\nexec ./handler\n'),
 *         ('lib/', 0o040755, b''), ('lib/util.py', 0o100644, b'def f():\n    return 1\n')])
 *   build('stored.zip', [('index.py', 0o100644, b'def handler(e, c):\n    return e\n')],
 *         zipfile.ZIP_STORED)
 *   build('symlink.zip', [('lib/real.txt', 0o100644, b'real'), ('link', 0o120777, b'lib/real.txt'),
 *         ('lib/up', 0o120777, b'../link')])
 *   build('dotdot.zip', [('ok.txt', 0o100644, b'ok'), ('../evil', 0o100644, b'evil')])
 *   build('absolute.zip', [('/tmp/evil', 0o100644, b'evil')])
 *   build('escape_link.zip', [('passwd', 0o120777, b'/etc/passwd'), ('self', 0o120777, b'.'),
 *         ('esc', 0o120777, b'self/..')])
 *   build('streamed.zip', [('a/b/c.txt', 0o100644, b'c' * 300), ('a/x', 0o100755, b'x')],
 *         stream=True)                                    # data descriptors
 *   build('bomb.zip', [('zeros', 0o100644, b'\0' * 2000000)])
 *   build('empty.zip', [])
 *   build('dirs_only.zip', [('a/', 0o040755, b''), ('a/b/', 0o040700, b''), ('./', 0o040755, b'')])
 *   warnings.simplefilter('ignore')
 *   build('duplicate.zip', [('same', 0o100644, b'1'), ('same', 0o100644, b'2')])
 *   b = io.BytesIO()
 *   with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
 *       with z.open(info('big64', 0o100644), 'w', force_zip64=True) as f:
 *           f.write(b'zip64 entry\n' * 10)
 *   open(os.path.join(out, 'zip64.zip'), 'wb').write(b.getvalue())
 *   # structured seeds (see build_structured)
 *   def rec(kind, flags, name, data=b''):
 *       nlen = len(name) // 8 if flags & 0x20 else len(name)
 *       return bytes([kind, flags, nlen]) + name + bytes([len(data)]) + data
 *   def sseed(fname, *recs): open(os.path.join(out, fname), 'wb').write(b'S' + b''.join(recs))
 *   sseed('s_tree', rec(0, 3, b'bootstrap', b'#!/bin/sh\n'), rec(1, 0, b'lib/'),
 *         rec(0, 2, b'lib/x', b'x' * 40), rec(2, 0, b'link', b'lib/x'),
 *         rec(2, 0, b'lib/up', b'../bootstrap'))
 *   sseed('s_escape', rec(2, 0, b'self', b'.'), rec(2, 0, b'esc', b'self/..'),
 *         rec(0, 0, b'../evil', b'e'), rec(0, 0, b'/abs', b'a'), rec(0, 0, b'a\\b', b'b'))
 *   sseed('s_bomb', rec(0, 0x42, b'zeros', b'\0' * 255), rec(0, 0x42, b'more', b'\1' * 255))
 *   sseed('s_clash', rec(1, 0, b'lib/'), rec(2, 0, b'd', b'lib'), rec(0, 0, b'd/x', b'x'),
 *         rec(0, 0, b'a', b'a'), rec(0, 0, b'a/b', b'b'), rec(0, 0, b'./a//b', b'b'))
 *   sseed('s_special', rec(3, 0, b'fifo', b''), rec(4, 0, b'dev', b''),
 *         rec(0, 4, b'dos.exe', b'MZ'), rec(1, 4, b'dosdir'), rec(0, 8, b'noattr', b'n'))
 *   sseed('s_many', *[rec(0, 0, b'f%02d' % i, b'') for i in range(36)])
 *   sseed('s_longname', rec(0, 0x20, (b'abcdefg/' * 129)[:8 * 129], b'x'),
 *         rec(0, 0x20, b'n' * 8 * 40, b'y'))
 */
