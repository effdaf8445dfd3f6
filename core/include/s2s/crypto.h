/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/crypto.h - the cryptographic primitives s2s-mqtt stands on.
 *
 * Implemented on wolfCrypt (wolfSSL 5.5.4) in core/crypto_wolfssl.c, the only
 * file of the project that includes a wolfSSL header; no wolfSSL type appears
 * here.
 *
 * Threading: every function is thread-safe.  The random generator is one
 * process-wide DRBG behind a mutex, initialised on first use; operations
 * that draw from it (key generation, ECIES, signing) hold that mutex, so
 * they run one at a time across the process.  wolfSSL keeps a per-thread
 * cache for elliptic-curve arithmetic (up to about 12 MB per thread); it is
 * released automatically when a thread that used a P-256 function exits.
 *
 * s2s_crypto_shutdown() releases the DRBG and the calling thread's cache.
 * Call it once at exit (or when unloading the broker plugin) after the
 * other threads that used this API have ended; later calls re-initialise.
 *
 * Secrets: functions wipe their own temporaries.  Outputs that are secret
 * (derived keys, decrypted plaintext) belong to the caller, who wipes them.
 */
#ifndef S2S_CRYPTO_H
#define S2S_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_SHA1_LEN 20
#define S2S_SHA256_LEN 32
#define S2S_P256_PUB_LEN 65     /* X9.63 uncompressed point, 0x04 || X || Y */
#define S2S_P256_SIG_LEN 64     /* ECDSA signature as r || s, 32 bytes each */
#define S2S_FFDHE2048_LEN 256   /* RFC 7919 ffdhe2048 element, big-endian */

/* A piece of a message that is hashed or MACed without being copied. */
struct s2s_iov {
	const void *p;
	size_t n;
};

/* Fill buf with n bytes from the process-wide DRBG. */
enum s2s_err s2s_random(void *buf, size_t n);

/*
 * Release the process-wide DRBG and the calling thread's curve cache (see
 * "Threading" above).  Later calls re-initialise what they need.
 */
void s2s_crypto_shutdown(void);

/*
 * wolfSSL's fixed-point cache (FP_ECC, per thread).  On (the default):
 * the second multiplication of the same point on a thread builds a table
 * of 256 points for it (about 37 M instructions, 3-4 ms here) that makes
 * later multiplications of that point about 6x faster, and keeps it (the
 * 12 MB above).  That pays where a thread multiplies the same points
 * often (the CS: the generator, its own key).  A device does a handful of
 * P-256 operations per negotiation, each thread a few: off, every
 * multiplication starts from an empty cache (a seal about 2x0.45 ms, no
 * 3-4 ms table in the middle of a negotiation step, no cache memory).
 * Process-wide; the client library turns it off (s2s_client_create).
 * Off also raises glibc's M_TRIM_THRESHOLD to 4 MiB once per process:
 * wolfCrypt allocates about 826 KB of table slots for every point it
 * multiplies, and without it each multiplication faulted them back in
 * from the kernel (0.8 ms instead of 0.45 ms per multiplication).
 */
void s2s_crypto_fixed_point_cache(bool on);

/* Version string of the linked wolfSSL, for --version and logs. */
const char *s2s_crypto_backend_version(void);

/* ---- Hashes, MAC, KDF ------------------------------------------------ */

/* SHA-1 / SHA-256 of the concatenation of cnt pieces. */
void s2s_sha1v(const struct s2s_iov *v, size_t cnt, uint8_t out[S2S_SHA1_LEN]);
void s2s_sha256v(const struct s2s_iov *v, size_t cnt,
		 uint8_t out[S2S_SHA256_LEN]);
void s2s_sha256(const void *data, size_t n, uint8_t out[S2S_SHA256_LEN]);

/* HMAC-SHA-256 (RFC 2104) of the concatenation of cnt pieces. */
enum s2s_err s2s_hmac_sha256v(const uint8_t *key, size_t key_len,
			      const struct s2s_iov *v, size_t cnt,
			      uint8_t out[S2S_SHA256_LEN]);

/*
 * HKDF-SHA-256 (RFC 5869), extract then expand, into out_len <= 255*32
 * bytes.  salt may be NULL (then a zero salt is used), info may be NULL.
 */
enum s2s_err s2s_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
			     const uint8_t *salt, size_t salt_len,
			     const uint8_t *info, size_t info_len,
			     uint8_t *out, size_t out_len);

/*
 * SHA-256 and HMAC-SHA-256 in steps, for keys used more than once: an
 * s2s_hmac_key holds the hash states after the padded key block (inner and
 * outer), so each MAC with it costs only its message's blocks plus one
 * (wolfCrypt's Hmac redoes both key blocks per message and is 896 bytes to
 * set up and wipe).  Same results as s2s_hmac_sha256v.  Plain caller-owned
 * structs, not shared between threads while in use; they hold key
 * material: end them with s2s_sha256_ctx_wipe / s2s_hmac_key_wipe (wipe
 * and release), also after an error.  Copy them only with the _copy
 * functions.
 */
#define S2S_SHA256_CTX_SIZE 256

struct s2s_sha256_ctx {
	_Alignas(16) unsigned char opaque[S2S_SHA256_CTX_SIZE];
};

struct s2s_hmac_key {
	struct s2s_sha256_ctx inner;    /* after key ^ ipad */
	struct s2s_sha256_ctx outer;    /* after key ^ opad */
};

enum s2s_err s2s_sha256_ctx_init(struct s2s_sha256_ctx *x);
enum s2s_err s2s_sha256_ctx_update(struct s2s_sha256_ctx *x,
				   const void *data, size_t n);
/* The digest; x is wiped and released (init it again to reuse it). */
enum s2s_err s2s_sha256_ctx_final(struct s2s_sha256_ctx *x,
				  uint8_t out[S2S_SHA256_LEN]);
/* dst (uninitialised) = src. */
enum s2s_err s2s_sha256_ctx_copy(struct s2s_sha256_ctx *dst,
				 const struct s2s_sha256_ctx *src);
void s2s_sha256_ctx_wipe(struct s2s_sha256_ctx *x);

/* k = the states of key (any length, RFC 2104). */
enum s2s_err s2s_hmac_key_init(struct s2s_hmac_key *k, const uint8_t *key,
			       size_t key_len);
/* HMAC of the concatenation of cnt pieces with k (k unchanged). */
enum s2s_err s2s_hmac_key_mac(const struct s2s_hmac_key *k,
			      const struct s2s_iov *v, size_t cnt,
			      uint8_t out[S2S_SHA256_LEN]);
/*
 * The same, finishing an inner hash the caller already started: inner (a
 * copy of k->inner fed with the message's first pieces) is fed v and
 * consumed (wiped) whatever the result.
 */
enum s2s_err s2s_hmac_key_finish(const struct s2s_hmac_key *k,
				 struct s2s_sha256_ctx *inner,
				 const struct s2s_iov *v, size_t cnt,
				 uint8_t out[S2S_SHA256_LEN]);
void s2s_hmac_key_wipe(struct s2s_hmac_key *k);

/* ---- Big numbers ------------------------------------------------------ */

/*
 * out = 2^e mod lp, where lp is the RFC 7919 ffdhe2048 prime and e the
 * big-endian unsigned integer of e_len bytes (1 <= e_len <= 256).  The
 * result is written as 256 big-endian bytes (left-padded with zeros).
 */
enum s2s_err s2s_ffdhe2048_pow2(const uint8_t *e, size_t e_len,
				uint8_t out[S2S_FFDHE2048_LEN]);

/* ---- P-256 keys -------------------------------------------------------- */

/*
 * A P-256 key: a key pair, or a public key alone.  Opaque; create with
 * s2s_key_generate(), s2s_key_load_*() or s2s_key_from_public(); release
 * with s2s_key_destroy(), which wipes the private part.  A key is immutable
 * after creation and may be used from several threads at once.
 */
struct s2s_key;

enum s2s_err s2s_key_generate(struct s2s_key **out);

/*
 * A public-only key from its 65-byte X9.63 encoding.  The point is
 * validated (on the curve, of the group order): S2S_ERR_FORMAT otherwise.
 */
enum s2s_err s2s_key_from_public(const uint8_t pub[S2S_P256_PUB_LEN],
				 struct s2s_key **out);

/*
 * Mark k (before it is shared) as a point this process seals to rarely:
 * no fixed-point table is ever built for it.  wolfCrypt builds one (3-4
 * ms, 826 KB) the second time a thread multiplies the same point, and
 * with more than a dozen such points in turn its 15-slot cache evicts the
 * tables before they pay back.  A seal to a marked key costs one plain
 * multiplication (about 0.45 ms) every time, never a table in the middle
 * of a step.  The CS marks the keys of its devices (thousands of them, a
 * few seals each per session, a token check per connection).  The same
 * holds for s2s_ecdsa_verify with k (one plain double multiplication).
 * Nothing else changes: the same point, the same wire bytes.
 */
void s2s_key_no_table(struct s2s_key *k);

/* Copy the 65-byte X9.63 public key out of k. */
void s2s_key_public(const struct s2s_key *k, uint8_t pub[S2S_P256_PUB_LEN]);

bool s2s_key_has_private(const struct s2s_key *k);

/*
 * Write k to path + ".key" (private key, PEM "EC PRIVATE KEY", created with
 * mode 0600, written to a temporary file then renamed) and path + ".pub"
 * (public key, PEM "PUBLIC KEY", mode 0644).  Both are readable by OpenSSL.
 * S2S_ERR_INVAL if k has no private part.
 */
enum s2s_err s2s_key_save(const struct s2s_key *k, const char *path);

/*
 * Load a private key written by s2s_key_save() (the ".key" file itself).
 * S2S_ERR_PERM if the file is readable or writable by group or others (it
 * is not read), S2S_ERR_IO if it cannot be opened, S2S_ERR_FORMAT if it is
 * not a P-256 private key.
 */
enum s2s_err s2s_key_load_private(const char *file, struct s2s_key **out);

/* Load a public key: a ".pub" PEM file. */
enum s2s_err s2s_key_load_public(const char *file, struct s2s_key **out);

/* NULL is a no-op. */
void s2s_key_destroy(struct s2s_key *k);

/* ---- ECIES ------------------------------------------------------------- */

/*
 * ECIES as wolfSSL implements it (ECDH P-256, HKDF-SHA-256, AES-128-CBC,
 * HMAC-SHA-256 over the ciphertext) with a fresh ephemeral key for every
 * call, so equal plaintexts never give equal ciphertexts.  The plaintext is
 * framed as be32(length) || plaintext || zero padding to 16 bytes.
 *
 * Sealed length = 65 + roundup16(4 + pt_len) + 32.
 */
size_t s2s_ecies_sealed_len(size_t pt_len);

/* Maximum plaintext accepted by s2s_ecies_seal (1 MiB). */
#define S2S_ECIES_MAX_PT (1u << 20)

/*
 * Encrypt pt for recipient (a public or private key).  out must have room
 * for s2s_ecies_sealed_len(pt_len) bytes; *out_len receives the length.
 * S2S_ERR_TOO_BIG above S2S_ECIES_MAX_PT.
 */
enum s2s_err s2s_ecies_seal(const struct s2s_key *recipient,
			    const uint8_t *pt, size_t pt_len,
			    uint8_t *out, size_t *out_len);

/*
 * Decrypt and authenticate ct with the private key.  out must have room for
 * ct_len bytes; *out_len receives the plaintext length.  S2S_ERR_AUTH on a
 * tampered or foreign ciphertext (out is then wiped), S2S_ERR_FORMAT on a
 * ciphertext of impossible length or framing.
 */
enum s2s_err s2s_ecies_open(const struct s2s_key *priv,
			    const uint8_t *ct, size_t ct_len,
			    uint8_t *out, size_t *out_len);

/* ---- ECDSA ------------------------------------------------------------- */

/* ECDSA P-256 over SHA-256(msg); signature as r || s (64 bytes). */
enum s2s_err s2s_ecdsa_sign(const struct s2s_key *priv,
			    const uint8_t *msg, size_t msg_len,
			    uint8_t sig[S2S_P256_SIG_LEN]);

/* S2S_OK if sig is valid for msg under k, S2S_ERR_AUTH otherwise. */
enum s2s_err s2s_ecdsa_verify(const struct s2s_key *k,
			      const uint8_t *msg, size_t msg_len,
			      const uint8_t sig[S2S_P256_SIG_LEN]);

/* ---- Authenticated encryption (data at rest) ---------------------------- */

#define S2S_AEAD_KEY_LEN 32
#define S2S_AEAD_NONCE_LEN 12
#define S2S_AEAD_TAG_LEN 16
#define S2S_AEAD_OVERHEAD (S2S_AEAD_NONCE_LEN + S2S_AEAD_TAG_LEN)

/*
 * AES-256-GCM with a random 12-byte nonce: out = nonce || ciphertext ||
 * tag, pt_len + S2S_AEAD_OVERHEAD bytes.  aad (may be NULL) is
 * authenticated, not encrypted: bind a record to its row (e.g. the device
 * id) so ciphertexts cannot be swapped between rows.
 */
enum s2s_err s2s_aead_seal(const uint8_t key[S2S_AEAD_KEY_LEN],
			   const uint8_t *aad, size_t aad_len,
			   const uint8_t *pt, size_t pt_len, uint8_t *out);

/*
 * Verify and decrypt in_len bytes made by s2s_aead_seal into out
 * (in_len - S2S_AEAD_OVERHEAD bytes).  S2S_ERR_AUTH on any tampering (out is
 * then wiped), S2S_ERR_FORMAT if in_len < S2S_AEAD_OVERHEAD.
 */
enum s2s_err s2s_aead_open(const uint8_t key[S2S_AEAD_KEY_LEN],
			   const uint8_t *aad, size_t aad_len,
			   const uint8_t *in, size_t in_len, uint8_t *out);

/*
 * XChaCha20-Poly1305 with a random 24-byte nonce, for records sealed at a
 * high rate (the store seals a chain per package): out = nonce ||
 * ciphertext || tag, pt_len + S2S_XAEAD_OVERHEAD bytes.  Software
 * ChaCha20-Poly1305 costs a fraction of AES-GCM without AES-NI (Debian's
 * wolfSSL has none), and 192-bit random nonces never collide in practice.
 * The key lives in a struct s2s_aead (s2s_aead_new), which also draws the
 * nonces from the DRBG 32 at a time (each used once); one object per
 * thread (no lock); s2s_aead_free wipes the key and the unused nonces.
 * s2s_xaead_open needs only the key: S2S_ERR_AUTH on any tampering (out
 * is then wiped), S2S_ERR_FORMAT if in_len < S2S_XAEAD_OVERHEAD.
 */
#define S2S_XAEAD_NONCE_LEN 24
#define S2S_XAEAD_OVERHEAD (S2S_XAEAD_NONCE_LEN + S2S_AEAD_TAG_LEN)
struct s2s_aead;
enum s2s_err s2s_aead_new(const uint8_t key[S2S_AEAD_KEY_LEN],
			  struct s2s_aead **out);
void s2s_aead_free(struct s2s_aead *a);
enum s2s_err s2s_xaead_seal(struct s2s_aead *a, const uint8_t *aad,
			    size_t aad_len, const uint8_t *pt, size_t pt_len,
			    uint8_t *out);
enum s2s_err s2s_xaead_open(const uint8_t key[S2S_AEAD_KEY_LEN],
			    const uint8_t *aad, size_t aad_len,
			    const uint8_t *in, size_t in_len, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* S2S_CRYPTO_H */
