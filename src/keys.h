/*
 * keys.h - access keys: the in-memory table used to verify every request, its sealing at rest
 * (AES-256-GCM under a master key file) and the root key with its shared-credentials file.
 *
 * Start-up (keys_open, blocking, before the loop runs) reads or creates the master key, loads
 * and decrypts every stored key, creates the root key on first start and writes
 * DATA_DIR/credentials (profile `nimbus`, mode 0600) when it is missing. From then on the table
 * lives in memory and is used on the loop thread only: verification never touches the disk.
 * Creating and deleting keys goes through the store on a worker thread (api_keys.c) and then
 * updates the table here (keys_add / keys_remove) on the loop thread.
 *
 * Ownership: struct nb_key pointers returned by keys_find/keys_root/keys_list are borrowed and
 * valid until that key is removed or the table freed (use them within one loop callback).
 */
#ifndef NIMBUS_KEYS_H
#define NIMBUS_KEYS_H

#include "err.h"
#include "sigv4.h"

struct nb_store;

struct nb_key {
    char *id;          /* 20 characters, "NKIA" + base32 */
    char *secret;      /* 40 characters; plaintext in memory only */
    char *policy;      /* IAM-style JSON policy text, or NULL (root has none) */
    char *description; /* never NULL */
    bool root;         /* all-powerful, cannot be deleted */
    int64_t created_ms;
};

struct nb_keys;

/* Opens the key table (see above). master_key_path: the master key file (created with 32 random
 * bytes, mode 0600, when missing and no sealed key exists yet). region goes into the
 * credentials file. Returns the table (free with keys_free) or NULL with err. */
struct nb_keys *keys_open(struct nb_store *st, const char *data_dir, const char *master_key_path,
                          const char *region, struct nb_err *err);
void keys_free(struct nb_keys *k);

/* The key with access key id id, or NULL. */
const struct nb_key *keys_find(const struct nb_keys *k, const char *id);
/* The root key (always present after keys_open). */
const struct nb_key *keys_root(const struct nb_keys *k);
/* Number of keys; *out (malloc'd array of borrowed pointers, caller frees) in id order. */
size_t keys_list(const struct nb_keys *k, const struct nb_key ***out);
/* The signing-key cache used by verification. */
struct nb_sigv4_cache *keys_cache(struct nb_keys *k);

/* A new key with fresh random id and secret (policy, description copied; NULL ok). Caller owns
 * it (keys_key_free), or hands it to keys_add. */
struct nb_key *keys_generate(const char *policy, const char *description, bool root);
void keys_key_free(struct nb_key *key);
/* Seals key's secret with the master key: returns the stored form (malloc'd). */
char *keys_seal(const struct nb_keys *k, const struct nb_key *key);
/* Opens a sealed secret of key id; malloc'd plaintext or NULL with err (EBADMSG: wrong master
 * key or tampered record). */
char *keys_unseal(const struct nb_keys *k, const char *id, const char *sealed, struct nb_err *err);
/* Adds key to the table (consumed). */
void keys_add(struct nb_keys *k, struct nb_key *key);
/* Removes and frees key id; -ENOENT when absent. */
int keys_remove(struct nb_keys *k, const char *id);

/* Writes the shared-credentials file path (profile nimbus) for key, mode 0600, atomically. */
int keys_write_credentials(const char *path, const struct nb_key *key, const char *region,
                           struct nb_err *err);

#endif
