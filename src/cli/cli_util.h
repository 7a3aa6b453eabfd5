/*
 * cli_util.h - the CLI's pure helpers, kept apart from the subcommands so unit tests can link them:
 * --since parsing, --env K=V parsing, reading a --payload argument, and zipping a folder in memory
 * into the deployment package `nimbus deploy` uploads.
 *
 * None of these print; they fill struct nb_err (EINVAL for bad input, the errno of a failed read,
 * EIO for a zip failure).
 */
#ifndef NIMBUS_CLI_UTIL_H
#define NIMBUS_CLI_UTIL_H

#include <jansson.h>

#include "err.h"

/* Parses a duration: one or more <digits><unit> groups with unit ms, s, m, h or d ("30s", "10m",
 * "2h", "1h30m"). Returns 0 with *out_ms set, or -EINVAL. */
int cli_parse_duration(const char *s, uint64_t *out_ms, struct nb_err *err);

/* Parses --since: a duration before now_ms ("10m" -> now_ms - 600000, floored at 0), or bare
 * digits taken as an absolute time in ms since the epoch. Returns 0 or -EINVAL. */
int cli_parse_since(const char *s, uint64_t now_ms, uint64_t *out_ms, struct nb_err *err);

/* Parses "KEY=VALUE" (split at the first '='; KEY non-empty, VALUE may be empty) and sets it in
 * the JSON object vars (borrowed; a repeated KEY replaces the earlier value). Returns 0 or -EINVAL.
 */
int cli_parse_env(const char *kv, json_t *vars, struct nb_err *err);

/* Reads a --payload argument: "-" or "@-" reads stdin, "@PATH" reads the file, anything else is
 * the payload itself. *out is malloc'd and NUL-terminated (caller frees). Returns 0 or -errno. */
int cli_read_payload(const char *arg, char **out, size_t *outlen, struct nb_err *err);

/*
 * Zips the folder dir in memory. Entries are named relative to dir, in byte order of names, a
 * folder's own "name/" entry before its contents; every file, folder and dotfile is kept. Unix
 * modes are kept in the external attributes (so bootstrap stays executable), symlinks are stored as
 * symlinks (target as content, S_IFLNK mode, never followed), and every entry gets the same fixed
 * mtime so the same tree always yields the same bytes (and the same CodeSha256). Other file types
 * (fifos, sockets, devices) and an empty folder are refused. *out is malloc'd (caller frees).
 * Returns 0 or a negative code.
 */
int cli_zip_dir(const char *dir, char **out, size_t *outlen, struct nb_err *err);

#endif
