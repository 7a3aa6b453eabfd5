/*
 * codepkg.h - code packages: zip bytes in, a content-addressed read-only tree out.
 *
 * Layout under DATA_DIR/code/: <sha256-hex>.zip (the package as uploaded) and <sha256-hex>/ (the
 * unpacked tree, directories 0755, files 0644 or 0755 when the zip marks them executable, owned by
 * root). Importing the same bytes twice is cheap and idempotent. Unpacking goes to a temporary
 * directory that is renamed into place after an fsync, so a crash never leaves a half tree under
 * the final name.
 *
 * Refused with -EINVAL and a message in Lambda's words: not a zip, absolute paths, ".." components,
 * symlinks (a symlink whose target stays inside the tree is kept; one that leaves it is refused),
 * more than lim->max_entries entries, more than lim->max_unzipped bytes unpacked (checked against
 * the actual bytes written, not the zip's claims), device files. Blocking; run on a worker thread.
 */
#ifndef NIMBUS_CODEPKG_H
#define NIMBUS_CODEPKG_H

#include "err.h"

struct nb_codepkg_limits {
    uint64_t max_unzipped; /* default 250 MB (262144000) */
    uint64_t max_entries;  /* default 10000 */
};
#define NB_CODEPKG_LIMITS_DEFAULT                                                                  \
    {                                                                                              \
        262144000ull, 10000                                                                        \
    }

struct nb_codepkg {
    char sha256_hex[65];
    char sha256_b64[45]; /* Lambda's CodeSha256 */
    uint64_t zip_size;   /* CodeSize */
    uint64_t unzipped_size;
};

/* Imports zip bytes; fills out (only on success). lim NULL means NB_CODEPKG_LIMITS_DEFAULT.
 * Refusals are -EINVAL with the message the API returns (see docs/design/storage.md for the
 * list); other negative codes are platform failures (disk full, I/O error). Safe to call from
 * several threads at once, also for the same bytes. */
int codepkg_import(const char *data_dir, const void *zip, size_t len,
                   const struct nb_codepkg_limits *lim, struct nb_codepkg *out, struct nb_err *err);
/* Path of the unpacked tree for hex (malloc'd). */
char *codepkg_dir(const char *data_dir, const char *sha256_hex);
/* Path of the stored zip for hex (malloc'd). */
char *codepkg_zip_path(const char *data_dir, const char *sha256_hex);
/* Removes every package whose hex is not in live (n entries), and leftover temporaries of
 * interrupted imports. Must not run while an import is in progress (it would remove that
 * import's temporaries); failures are logged, not returned. */
void codepkg_gc(const char *data_dir, const char *const *live, size_t n);

#endif
