/*
 * keys.c - the access-key table (keys.h): master key file, AES-256-GCM sealing of secrets, the
 * root key and its credentials file.
 *
 * Sealed form of a secret: "v1:" base64(nonce[12] | ciphertext | tag[16]), AES-256-GCM under the
 * 32-byte master key with the key id as additional authenticated data, so a sealed secret cannot
 * be moved to another key's row. A wrong master key or a tampered row fails to open: start-up
 * fails closed rather than run with keys it cannot verify. The table is an array searched
 * linearly (keys are few; a lookup costs well under a microsecond for hundreds).
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include "codec.h"
#include "log.h"
#include "store.h"

#define MASTER_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define SEAL_PREFIX "v1:"

struct nb_keys {
    unsigned char master[MASTER_LEN];
    struct nb_key **v;
    size_t n, cap;
    struct nb_sigv4_cache cache;
};

static void random_bytes(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1)
        BUG("RAND_bytes failed");
}

/* n characters from alphabet (of length 32 or 64: no modulo bias). */
static char *random_string(const char *prefix, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet), plen = strlen(prefix);
    ASSERT(alen == 32 || alen == 64);
    unsigned char r[64];
    ASSERT(n <= sizeof(r));
    random_bytes(r, n);
    char *s = xmalloc(plen + n + 1);
    memcpy(s, prefix, plen);
    for (size_t i = 0; i < n; i++)
        s[plen + i] = alphabet[r[i] % alen];
    s[plen + n] = '\0';
    OPENSSL_cleanse(r, sizeof(r));
    return s;
}

struct nb_key *keys_generate(const char *policy, const char *description, bool root)
{
    struct nb_key *key = xcalloc(1, sizeof(*key));
    key->id = random_string("NKIA", 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    key->secret =
        random_string("", 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    key->policy = policy ? xstrdup(policy) : NULL;
    key->description = xstrdup(description ? description : "");
    key->root = root;
    key->created_ms = (int64_t)now_ms();
    return key;
}

void keys_key_free(struct nb_key *key)
{
    if (!key)
        return;
    if (key->secret)
        OPENSSL_cleanse(key->secret, strlen(key->secret));
    free(key->id);
    free(key->secret);
    free(key->policy);
    free(key->description);
    free(key);
}

/* ---- sealing ---- */

static char *aad_of(const char *id)
{
    return xasprintf("nimbus-key:%s", id);
}

char *keys_seal(const struct nb_keys *k, const struct nb_key *key)
{
    size_t len = strlen(key->secret);
    unsigned char *buf = xmalloc(NONCE_LEN + len + TAG_LEN);
    random_bytes(buf, NONCE_LEN);
    _cleanup_free_ char *aad = aad_of(key->id);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int out = 0, fin = 0;
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, k->master, buf) != 1 ||
        EVP_EncryptUpdate(c, NULL, &out, (unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(c, buf + NONCE_LEN, &out, (const unsigned char *)key->secret, (int)len) !=
            1 ||
        EVP_EncryptFinal_ex(c, buf + NONCE_LEN + out, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, buf + NONCE_LEN + len) != 1)
        BUG("AES-256-GCM encryption failed");
    EVP_CIPHER_CTX_free(c);
    _cleanup_free_ char *b64 = b64_encode(buf, NONCE_LEN + len + TAG_LEN);
    free(buf);
    return xasprintf(SEAL_PREFIX "%s", b64);
}

char *keys_unseal(const struct nb_keys *k, const char *id, const char *sealed, struct nb_err *err)
{
    size_t plen = strlen(SEAL_PREFIX);
    unsigned char *buf = NULL;
    size_t n = 0;
    if (strncmp(sealed, SEAL_PREFIX, plen) ||
        b64_decode(sealed + plen, strlen(sealed + plen), &buf, &n, NULL) < 0 ||
        n <= NONCE_LEN + TAG_LEN) {
        free(buf);
        err_set(err, EBADMSG, "sealed secret of key '%s' is malformed", id);
        return NULL;
    }
    size_t len = n - NONCE_LEN - TAG_LEN;
    char *plain = xmalloc(len + 1);
    _cleanup_free_ char *aad = aad_of(id);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int out = 0, fin = 0;
    bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_DecryptInit_ex(c, NULL, NULL, k->master, buf) == 1 &&
              EVP_DecryptUpdate(c, NULL, &out, (unsigned char *)aad, (int)strlen(aad)) == 1 &&
              EVP_DecryptUpdate(c, (unsigned char *)plain, &out, buf + NONCE_LEN, (int)len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, buf + NONCE_LEN + len) == 1 &&
              EVP_DecryptFinal_ex(c, (unsigned char *)plain + out, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    free(buf);
    if (!ok) {
        OPENSSL_cleanse(plain, len);
        free(plain);
        err_set(err, EBADMSG,
                "cannot decrypt the secret of key '%s': wrong master key or tampered record", id);
        return NULL;
    }
    plain[len] = '\0';
    return plain;
}

/* ---- master key ---- */

static int read_master(const char *path, unsigned char out[MASTER_LEN], struct nb_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return err_set(err, errno, "cannot open master key '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        log_warn("master key file is readable by others path=%s mode=%o", path,
                 (unsigned)(sb.st_mode & 0777));
    unsigned char buf[MASTER_LEN + 1];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n != MASTER_LEN)
        return err_set(err, EINVAL, "master key '%s' must hold exactly %d bytes", path, MASTER_LEN);
    memcpy(out, buf, MASTER_LEN);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

static int create_master(const char *path, unsigned char out[MASTER_LEN], struct nb_err *err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return err_set(err, errno, "cannot create master key '%s': %s", path, strerror(errno));
    random_bytes(out, MASTER_LEN);
    int rc = write_all(fd, out, MASTER_LEN);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(path);
        return err_set(err, rc, "cannot write master key '%s': %s", path, strerror(-rc));
    }
    log_info("created master key path=%s", path);
    return 0;
}

/* ---- table ---- */

void keys_add(struct nb_keys *k, struct nb_key *key)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 8;
        k->v = xrealloc(k->v, k->cap * sizeof(*k->v));
    }
    k->v[k->n++] = key;
}

const struct nb_key *keys_find(const struct nb_keys *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i]->id, id))
            return k->v[i];
    return NULL;
}

const struct nb_key *keys_root(const struct nb_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i]->root)
            return k->v[i];
    return NULL;
}

int keys_remove(struct nb_keys *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->v[i]->id, id))
            continue;
        keys_key_free(k->v[i]);
        memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(*k->v));
        k->n--;
        /* derived keys of the removed secret must not stay usable */
        memset(&k->cache, 0, sizeof(k->cache));
        return 0;
    }
    return -ENOENT;
}

static int key_ptr_cmp(const void *a, const void *b)
{
    const struct nb_key *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

size_t keys_list(const struct nb_keys *k, const struct nb_key ***out)
{
    const struct nb_key **v = xmalloc((k->n ? k->n : 1) * sizeof(*v));
    for (size_t i = 0; i < k->n; i++)
        v[i] = k->v[i];
    qsort(v, k->n, sizeof(*v), key_ptr_cmp);
    *out = v;
    return k->n;
}

struct nb_sigv4_cache *keys_cache(struct nb_keys *k)
{
    return &k->cache;
}

void keys_free(struct nb_keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        keys_key_free(k->v[i]);
    free(k->v);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

int keys_write_credentials(const char *path, const struct nb_key *key, const char *region,
                           struct nb_err *err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
    _cleanup_free_ char *text = xasprintf("[nimbus]\naws_access_key_id = %s\naws_secret_access_key "
                                          "= %s\nregion = %s\n",
                                          key->id, key->secret, region);
    unlink(tmp);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return err_set(err, errno, "cannot create '%s': %s", tmp, strerror(errno));
    int rc = write_all(fd, text, strlen(text));
    OPENSSL_cleanse(text, strlen(text));
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return err_set(err, rc, "cannot write '%s': %s", path, strerror(-rc));
    }
    return 0;
}

/* ---- start-up ---- */

struct load_ctx {
    struct nb_keys *k;
    struct nb_err *err;
};

static int load_one(void *data, const struct nb_store_key *sk)
{
    struct load_ctx *c = data;
    char *secret = keys_unseal(c->k, sk->id, sk->secret_sealed, c->err);
    if (!secret)
        return -c->err->code;
    struct nb_key *key = xcalloc(1, sizeof(*key));
    key->id = xstrdup(sk->id);
    key->secret = secret;
    key->policy = sk->policy ? xstrdup(sk->policy) : NULL;
    key->description = xstrdup(sk->description);
    key->root = sk->root;
    key->created_ms = sk->created_ms;
    keys_add(c->k, key);
    return 0;
}

static int count_one(void *data, const struct nb_store_key *sk)
{
    (*(size_t *)data)++;
    return 0;
}

struct nb_keys *keys_open(struct nb_store *st, const char *data_dir, const char *master_key_path,
                          const char *region, struct nb_err *err)
{
    struct nb_keys *k = xcalloc(1, sizeof(*k));
    _cleanup_free_ char *cred = xasprintf("%s/credentials", data_dir);
    size_t stored = 0;
    if (store_key_each(st, count_one, &stored, err) < 0)
        goto fail;
    if (access(master_key_path, F_OK) == 0) {
        if (read_master(master_key_path, k->master, err) < 0)
            goto fail;
    } else if (stored) {
        err_set(err, ENOENT,
                "master key '%s' is missing but %zu access keys are sealed with it: restore it "
                "(or start with an empty data dir)",
                master_key_path, stored);
        goto fail;
    } else if (create_master(master_key_path, k->master, err) < 0) {
        goto fail;
    }
    struct load_ctx c = {k, err};
    if (store_key_each(st, load_one, &c, err) < 0) {
        err_prefix(err, "cannot load access keys");
        goto fail;
    }
    if (!keys_root(k)) {
        struct nb_key *root = keys_generate(NULL, "root key (created at first start)", true);
        _cleanup_free_ char *sealed = keys_seal(k, root);
        struct nb_store_key sk = {root->id,          sealed,     NULL,
                                  root->description, root->root, root->created_ms};
        if (store_key_insert(st, &sk, err) < 0) {
            keys_key_free(root);
            goto fail;
        }
        log_info("created root access key id=%s", root->id);
        keys_add(k, root);
    }
    if (access(cred, F_OK) != 0) {
        if (keys_write_credentials(cred, keys_root(k), region, err) < 0)
            goto fail;
        log_info("wrote root credentials path=%s profile=nimbus", cred);
    }
    return k;
fail:
    keys_free(k);
    return NULL;
}
