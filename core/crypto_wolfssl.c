/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crypto_wolfssl.c - s2s/crypto.h on wolfCrypt.  The only file of the
 * project that includes a wolfSSL header.  wolfSSL return codes are
 * translated into enum s2s_err here and nowhere else.
 */
#include <wolfssl/options.h> /* must come first: it fixes struct layouts */
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/dh.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/wolfmath.h>

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s2s/crypto.h"
#include "s2s/secmem.h"

/* ---- Random ------------------------------------------------------------ */

/*
 * One DRBG for the process.  WC_RNG is not thread-safe, and the client
 * library draws from Paho's callback thread as well as the application's,
 * so every use takes the lock.
 */
static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static WC_RNG rng;
static bool rng_ready;

/* Call with rng_lock held. */
static enum s2s_err
rng_get(WC_RNG **out)
{
	if (!rng_ready) {
		if (wc_InitRng(&rng) != 0)
			return S2S_ERR_CRYPTO;
		rng_ready = true;
	}
	*out = &rng;
	return S2S_OK;
}

enum s2s_err
s2s_random(void *buf, size_t n)
{
	WC_RNG *r;
	enum s2s_err err;

	pthread_mutex_lock(&rng_lock);
	err = rng_get(&r);
	while (err == S2S_OK && n > 0) {
		word32 chunk = n > 65536 ? 65536 : (word32)n;

		if (wc_RNG_GenerateBlock(r, buf, chunk) != 0)
			err = S2S_ERR_CRYPTO;
		buf = (uint8_t *)buf + chunk;
		n -= chunk;
	}
	pthread_mutex_unlock(&rng_lock);
	return err;
}

/*
 * Debian's wolfSSL is built with FP_ECC and HAVE_THREAD_LS: every thread
 * that does a scalar multiplication grows its own fixed-point cache (up to
 * about 12 MB), freed only by wc_ecc_fp_free() on that thread.  A
 * pthread key destructor does it at thread exit for threads we do not own
 * (Paho's); s2s_crypto_shutdown() does it for the calling thread and
 * deletes the key, so no destructor can outlive an unloaded plugin.
 */
static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t fp_key;
static bool fp_key_live;
static atomic_bool fp_off;      /* s2s_crypto_fixed_point_cache(false) */

void
s2s_crypto_fixed_point_cache(bool on)
{
	atomic_store(&fp_off, !on);
	if (!on)
		wc_ecc_fp_free();       /* this thread's, from before */
}

static void
fp_release(void *unused)
{
	(void)unused;
	wc_ecc_fp_free();
}

/*
 * Every point wolfCrypt puts into its fixed-point cache comes with 256
 * table slots allocated at once (257 ecc_points of 3216 bytes, about
 * 826 KB), table or not.  With the cache off, each multiplication frees
 * the last one's slots and allocates new ones: glibc returns the freed top
 * of the heap to the kernel (M_TRIM_THRESHOLD, 128 KB by default) and the
 * next allocation faults every page back in, zeroed: about 0.35 ms per
 * multiplication here, nearly as much as the multiplication itself.  A
 * trim threshold of 4 MiB keeps those pages for reuse (glibc only, once per
 * process, only in the cache-off mode that churns; the process keeps at
 * most that much freed heap).
 */
static pthread_once_t trim_once = PTHREAD_ONCE_INIT;

static void
trim_raise(void)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD)
	(void)mallopt(M_TRIM_THRESHOLD, 4 << 20);
#endif
}

/* Call on entry of every function that may multiply on the curve. */
static void
ecc_thread_mark(void)
{
	/* Off: the cache is empty on entry (ecc_thread_done, and the switch
	 * itself empties the switching thread's), so no point is ever seen
	 * a second time and no table is built. */
	if (atomic_load(&fp_off))
		(void)pthread_once(&trim_once, trim_raise);
	pthread_mutex_lock(&fp_lock);
	if (!fp_key_live)
		fp_key_live = pthread_key_create(&fp_key, fp_release) == 0;
	if (fp_key_live && !pthread_getspecific(fp_key))
		(void)pthread_setspecific(fp_key, &fp_key_live);
	pthread_mutex_unlock(&fp_lock);
}

/*
 * Call with the result of every function that may multiply on the curve.
 * Off: leave this thread's cache empty again, so that no thread keeps a
 * point's slots after the call.  The key destructor cannot be relied on
 * for that: Paho reports its threads stopped before they exit, and the
 * last s2s_client_destroy() may delete the key (s2s_crypto_shutdown) in
 * that window (LeakSanitizer saw one point's 826 KB left behind).
 */
static enum s2s_err
ecc_thread_done(enum s2s_err err)
{
	if (atomic_load(&fp_off))
		wc_ecc_fp_free();
	return err;
}

void
s2s_crypto_shutdown(void)
{
	pthread_mutex_lock(&rng_lock);
	if (rng_ready) {
		wc_FreeRng(&rng);
		rng_ready = false;
	}
	pthread_mutex_unlock(&rng_lock);

	wc_ecc_fp_free();
	pthread_mutex_lock(&fp_lock);
	if (fp_key_live) {
		(void)pthread_setspecific(fp_key, NULL);
		pthread_key_delete(fp_key);
		fp_key_live = false;
	}
	pthread_mutex_unlock(&fp_lock);
}

const char *
s2s_crypto_backend_version(void)
{
	return "wolfSSL " LIBWOLFSSL_VERSION_STRING;
}

/* ---- Hashes, MAC, KDF ------------------------------------------------- */

void
s2s_sha1v(const struct s2s_iov *v, size_t cnt, uint8_t out[S2S_SHA1_LEN])
{
	wc_Sha sha;

	wc_InitSha(&sha);
	for (size_t i = 0; i < cnt; i++)
		wc_ShaUpdate(&sha, v[i].p, (word32)v[i].n);
	wc_ShaFinal(&sha, out);
	wc_ShaFree(&sha);
	S2S_WIPE(sha);
}

void
s2s_sha256v(const struct s2s_iov *v, size_t cnt, uint8_t out[S2S_SHA256_LEN])
{
	wc_Sha256 sha;

	wc_InitSha256(&sha);
	for (size_t i = 0; i < cnt; i++)
		wc_Sha256Update(&sha, v[i].p, (word32)v[i].n);
	wc_Sha256Final(&sha, out);
	wc_Sha256Free(&sha);
	S2S_WIPE(sha);
}

void
s2s_sha256(const void *data, size_t n, uint8_t out[S2S_SHA256_LEN])
{
	struct s2s_iov v = { data, n };

	s2s_sha256v(&v, 1, out);
}

/*
 * On the SHA-256 states directly (s2s_hmac_key, below): wolfSSL's Hmac
 * object costs an init, a free and a wipe of about 0.5 KB per MAC, which
 * the gate pays several times per package.
 */
enum s2s_err
s2s_hmac_sha256v(const uint8_t *key, size_t key_len, const struct s2s_iov *v,
		 size_t cnt, uint8_t out[S2S_SHA256_LEN])
{
	struct s2s_hmac_key k;
	enum s2s_err err;

	err = s2s_hmac_key_init(&k, key, key_len);
	if (err == S2S_OK)
		err = s2s_hmac_key_mac(&k, v, cnt, out);
	s2s_hmac_key_wipe(&k);
	return err;
}

/* ---- SHA-256 / HMAC in steps (crypto.h) ------------------------------- */

_Static_assert(sizeof(wc_Sha256) <= S2S_SHA256_CTX_SIZE,
	       "S2S_SHA256_CTX_SIZE too small for this wolfSSL");
_Static_assert(_Alignof(wc_Sha256) <= 16, "wc_Sha256 alignment");

static wc_Sha256 *
sha_of(struct s2s_sha256_ctx *x)
{
	return (wc_Sha256 *)(void *)x->opaque;
}

enum s2s_err
s2s_sha256_ctx_init(struct s2s_sha256_ctx *x)
{
	memset(x, 0, sizeof(*x));
	return wc_InitSha256_ex(sha_of(x), NULL, INVALID_DEVID) ?
	       S2S_ERR_CRYPTO : S2S_OK;
}

enum s2s_err
s2s_sha256_ctx_update(struct s2s_sha256_ctx *x, const void *data, size_t n)
{
	if (n > 0xFFFFFFFFu)
		return S2S_ERR_INVAL;
	return wc_Sha256Update(sha_of(x), data, (word32)n) ? S2S_ERR_CRYPTO
							    : S2S_OK;
}

enum s2s_err
s2s_sha256_ctx_final(struct s2s_sha256_ctx *x, uint8_t out[S2S_SHA256_LEN])
{
	int rc = wc_Sha256Final(sha_of(x), out);

	s2s_sha256_ctx_wipe(x);
	return rc ? S2S_ERR_CRYPTO : S2S_OK;
}

enum s2s_err
s2s_sha256_ctx_copy(struct s2s_sha256_ctx *dst,
		    const struct s2s_sha256_ctx *src)
{
	memset(dst, 0, sizeof(*dst));
	/* wc_Sha256Copy takes a non-const source; it only reads it. */
	return wc_Sha256Copy((wc_Sha256 *)(void *)src->opaque, sha_of(dst)) ?
	       S2S_ERR_CRYPTO : S2S_OK;
}

void
s2s_sha256_ctx_wipe(struct s2s_sha256_ctx *x)
{
	if (!x)
		return;
	wc_Sha256Free(sha_of(x));
	s2s_memzero(x, sizeof(*x));
}

enum s2s_err
s2s_hmac_key_init(struct s2s_hmac_key *k, const uint8_t *key, size_t key_len)
{
	uint8_t pad[WC_SHA256_BLOCK_SIZE], kh[S2S_SHA256_LEN];
	enum s2s_err err;

	memset(k, 0, sizeof(*k));
	if (!key && key_len)
		return S2S_ERR_INVAL;
	if (key_len > sizeof(pad)) {
		s2s_sha256(key, key_len, kh);
		key = kh;
		key_len = sizeof(kh);
	}
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < key_len; i++)
		pad[i] ^= key[i];
	err = s2s_sha256_ctx_init(&k->inner);
	if (!err)
		err = s2s_sha256_ctx_update(&k->inner, pad, sizeof(pad));
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36 ^ 0x5c;
	if (!err)
		err = s2s_sha256_ctx_init(&k->outer);
	if (!err)
		err = s2s_sha256_ctx_update(&k->outer, pad, sizeof(pad));
	S2S_WIPE(pad);
	S2S_WIPE(kh);
	if (err)
		s2s_hmac_key_wipe(k);
	return err;
}

enum s2s_err
s2s_hmac_key_finish(const struct s2s_hmac_key *k, struct s2s_sha256_ctx *inner,
		    const struct s2s_iov *v, size_t cnt,
		    uint8_t out[S2S_SHA256_LEN])
{
	struct s2s_sha256_ctx o;
	uint8_t ih[S2S_SHA256_LEN];
	enum s2s_err err = S2S_OK;

	for (size_t i = 0; i < cnt && !err; i++)
		if (v[i].n)
			err = s2s_sha256_ctx_update(inner, v[i].p, v[i].n);
	if (err) {
		s2s_sha256_ctx_wipe(inner);
		return err;
	}
	err = s2s_sha256_ctx_final(inner, ih);
	if (!err)
		err = s2s_sha256_ctx_copy(&o, &k->outer);
	if (!err) {
		err = s2s_sha256_ctx_update(&o, ih, sizeof(ih));
		if (!err)
			err = s2s_sha256_ctx_final(&o, out);
		else
			s2s_sha256_ctx_wipe(&o);
	}
	S2S_WIPE(ih);
	return err;
}

enum s2s_err
s2s_hmac_key_mac(const struct s2s_hmac_key *k, const struct s2s_iov *v,
		 size_t cnt, uint8_t out[S2S_SHA256_LEN])
{
	struct s2s_sha256_ctx in;
	enum s2s_err err = s2s_sha256_ctx_copy(&in, &k->inner);

	if (err) {
		s2s_sha256_ctx_wipe(&in);
		return err;
	}
	return s2s_hmac_key_finish(k, &in, v, cnt, out);
}

void
s2s_hmac_key_wipe(struct s2s_hmac_key *k)
{
	if (!k)
		return;
	s2s_sha256_ctx_wipe(&k->inner);
	s2s_sha256_ctx_wipe(&k->outer);
}

enum s2s_err
s2s_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
		size_t salt_len, const uint8_t *info, size_t info_len,
		uint8_t *out, size_t out_len)
{
	if (out_len == 0 || out_len > 255 * S2S_SHA256_LEN)
		return S2S_ERR_INVAL;
	if (wc_HKDF(WC_SHA256, ikm, (word32)ikm_len, salt, (word32)salt_len,
		    info, (word32)info_len, out, (word32)out_len) != 0)
		return S2S_ERR_CRYPTO;
	return S2S_OK;
}

/* wolfCrypt failures that are not verification failures. */
static enum s2s_err
wc_err(int rc)
{
	return rc == MEMORY_E ? S2S_ERR_NOMEM : S2S_ERR_CRYPTO;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- Big numbers ------------------------------------------------------ */

/*
 * mp_exptmod is wolfSSL's hardened exponentiation (the variable-time one is
 * mp_exptmod_nct), so the running time does not follow the bits of e.  The
 * prime is the library's copy of RFC 7919 ffdhe2048; the test vectors
 * rebuild it from its definition, so a wrong table would be caught.
 */
enum s2s_err
s2s_ffdhe2048_pow2(const uint8_t *e, size_t e_len,
		   uint8_t out[S2S_FFDHE2048_LEN])
{
	const DhParams *grp = wc_Dh_ffdhe2048_Get();
	mp_int base, exp, mod, res;
	enum s2s_err err = S2S_ERR_CRYPTO;

	if (!e || !out || e_len == 0 || e_len > S2S_FFDHE2048_LEN)
		return S2S_ERR_INVAL;
	if (!grp || grp->p_len != S2S_FFDHE2048_LEN)
		return S2S_ERR_CRYPTO;
	if (mp_init_multi(&base, &exp, &mod, &res, NULL, NULL) != MP_OKAY)
		return S2S_ERR_CRYPTO;
	if (mp_set(&base, 2) != MP_OKAY ||
	    mp_read_unsigned_bin(&exp, e, (word32)e_len) != MP_OKAY ||
	    mp_read_unsigned_bin(&mod, grp->p, grp->p_len) != MP_OKAY)
		goto out_clear;
	if (mp_exptmod(&base, &exp, &mod, &res) != MP_OKAY)
		goto out_clear;
	if (mp_to_unsigned_bin_len(&res, out, S2S_FFDHE2048_LEN) != MP_OKAY)
		goto out_clear;
	err = S2S_OK;
out_clear:
	mp_forcezero(&exp);
	mp_forcezero(&res);
	mp_clear(&base);
	mp_clear(&mod);
	if (err != S2S_OK)
		s2s_memzero(out, S2S_FFDHE2048_LEN);
	return err;
}

/* ---- P-256 keys -------------------------------------------------------- */

/*
 * wolfCrypt writes to an ecc_key during every operation (key->state, the
 * RNG pointer), so the immutability promised by the header is provided by a
 * per-key lock.  Lock order: key lock, then rng_lock.
 */
struct s2s_key {
	pthread_mutex_t lock;
	ecc_key ecc;
	uint8_t pub[S2S_P256_PUB_LEN];
	bool has_priv;
	bool no_table;          /* s2s_key_no_table() */
};

#define KEY_FILE_MAX 16384   /* a P-256 PEM file is under 300 bytes */

static enum s2s_err
key_alloc(struct s2s_key **out)
{
	struct s2s_key *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return S2S_ERR_NOMEM;
	rc = wc_ecc_init_ex(&k->ecc, NULL, INVALID_DEVID);
	if (rc != 0) {
		free(k);
		return wc_err(rc);
	}
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return S2S_OK;
}

void
s2s_key_destroy(struct s2s_key *k)
{
	if (!k)
		return;
	wc_ecc_free(&k->ecc);
	pthread_mutex_destroy(&k->lock);
	s2s_memzero(k, sizeof(*k));
	free(k);
}

enum key_check {
	CHECK_NONE,    /* made by wolfCrypt here: valid by construction */
	CHECK_POINT,   /* a public point from outside */
	CHECK_FULL,    /* a key file: also priv * G == pub */
};

/*
 * Finish a new key: it must be on P-256 and pass the check for where it
 * came from, and its public encoding is cached.  P-256 has cofactor 1, so
 * a point on the curve (never infinity in X9.63) is in the prime-order
 * group; wolfCrypt's full check would add a costly n * Q == O.
 */
static enum s2s_err
key_finish(struct s2s_key *k, enum key_check check)
{
	word32 n = S2S_P256_PUB_LEN;

	if (wc_ecc_get_curve_id(k->ecc.idx) != ECC_SECP256R1)
		return S2S_ERR_FORMAT;
	if (check == CHECK_POINT &&
	    wc_ecc_point_is_on_curve(&k->ecc.pubkey, k->ecc.idx) != MP_OKAY)
		return S2S_ERR_FORMAT;
	if (check == CHECK_FULL && wc_ecc_check_key(&k->ecc) != 0)
		return S2S_ERR_FORMAT;
	if (wc_ecc_export_x963(&k->ecc, k->pub, &n) != 0 ||
	    n != S2S_P256_PUB_LEN)
		return S2S_ERR_FORMAT;
	k->has_priv = k->ecc.type == ECC_PRIVATEKEY;
	return S2S_OK;
}

static enum s2s_err
key_generate_impl(struct s2s_key **out)
{
	struct s2s_key *k;
	WC_RNG *r;
	enum s2s_err err;
	int rc;


	if (!out)
		return S2S_ERR_INVAL;
	err = key_alloc(&k);
	if (err)
		return err;
	pthread_mutex_lock(&rng_lock);
	err = rng_get(&r);
	if (err == S2S_OK) {
		rc = wc_ecc_make_key_ex(r, 32, &k->ecc, ECC_SECP256R1);
		if (rc != 0)
			err = wc_err(rc);
	}
	pthread_mutex_unlock(&rng_lock);
	if (err)
		goto out_destroy;
	err = key_finish(k, CHECK_NONE);
	if (err)
		goto out_destroy;
	*out = k;
	return S2S_OK;
out_destroy:
	s2s_key_destroy(k);
	return err == S2S_ERR_FORMAT ? S2S_ERR_CRYPTO : err;
}

enum s2s_err
s2s_key_generate(struct s2s_key **out)
{
	ecc_thread_mark();
	return ecc_thread_done(key_generate_impl(out));
}

static enum s2s_err
key_from_public_impl(const uint8_t pub[S2S_P256_PUB_LEN],
		     struct s2s_key **out)
{
	struct s2s_key *k;
	enum s2s_err err;


	if (!pub || !out)
		return S2S_ERR_INVAL;
	if (pub[0] != 0x04)
		return S2S_ERR_FORMAT;
	err = key_alloc(&k);
	if (err)
		return err;
	if (wc_ecc_import_x963_ex(pub, S2S_P256_PUB_LEN, &k->ecc,
				  ECC_SECP256R1) != 0) {
		err = S2S_ERR_FORMAT;
		goto out_destroy;
	}
	err = key_finish(k, CHECK_POINT);
	if (err)
		goto out_destroy;
	*out = k;
	return S2S_OK;
out_destroy:
	s2s_key_destroy(k);
	return err;
}

enum s2s_err
s2s_key_from_public(const uint8_t pub[S2S_P256_PUB_LEN], struct s2s_key **out)
{
	ecc_thread_mark();
	return ecc_thread_done(key_from_public_impl(pub, out));
}

void
s2s_key_no_table(struct s2s_key *k)
{
	if (k)
		k->no_table = true;
}

void
s2s_key_public(const struct s2s_key *k, uint8_t pub[S2S_P256_PUB_LEN])
{
	memcpy(pub, k->pub, S2S_P256_PUB_LEN);
}

bool
s2s_key_has_private(const struct s2s_key *k)
{
	return k && k->has_priv;
}

/* path + suffix, malloc()ed. */
static char *
path_join(const char *path, const char *suffix)
{
	size_t a = strlen(path), b = strlen(suffix);
	char *s = malloc(a + b + 1);

	if (s) {
		memcpy(s, path, a);
		memcpy(s + a, suffix, b + 1);
	}
	return s;
}

/*
 * Write n bytes to path + suffix atomically: a mkstemp() file beside it
 * (created 0600, so a private key is never readable by others, not even
 * for a moment), chmod to mode, fsync, rename over the target.
 */
static enum s2s_err
write_atomic(const char *path, const char *suffix, const void *data,
	     size_t n, mode_t mode)
{
	char *target, *tmp;
	const uint8_t *p = data;
	enum s2s_err err = S2S_ERR_IO;
	int fd;

	target = path_join(path, suffix);
	if (!target)
		return S2S_ERR_NOMEM;
	tmp = path_join(target, ".XXXXXX");
	if (!tmp) {
		err = S2S_ERR_NOMEM;
		goto out_target;
	}
	fd = mkstemp(tmp);
	if (fd < 0)
		goto out_tmp;
	if (fchmod(fd, mode) != 0)
		goto out_unlink;
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out_unlink;
		p += w;
		n -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto out_unlink;
	if (close(fd) != 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, target) != 0)
		goto out_unlink;
	err = S2S_OK;
	goto out_tmp;
out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_tmp:
	free(tmp);
out_target:
	free(target);
	return err;
}

enum s2s_err
s2s_key_save(const struct s2s_key *k, const char *path)
{
	struct s2s_key *kk = (struct s2s_key *)k;
	uint8_t der[256];
	uint8_t pem[1024];
	enum s2s_err err = S2S_ERR_CRYPTO;
	int der_len, pem_len;

	if (!k || !path || !*path || !k->has_priv)
		return S2S_ERR_INVAL;

	pthread_mutex_lock(&kk->lock);
	der_len = wc_EccPublicKeyToDer(&kk->ecc, der, sizeof(der), 1);
	pthread_mutex_unlock(&kk->lock);
	if (der_len <= 0)
		goto out_wipe;
	pem_len = wc_DerToPem(der, (word32)der_len, pem, sizeof(pem),
			      PUBLICKEY_TYPE);
	if (pem_len <= 0)
		goto out_wipe;
	err = write_atomic(path, ".pub", pem, (size_t)pem_len, 0644);
	if (err)
		goto out_wipe;

	/* The private key goes last: a .key file implies a complete pair. */
	err = S2S_ERR_CRYPTO;
	pthread_mutex_lock(&kk->lock);
	der_len = wc_EccKeyToDer(&kk->ecc, der, sizeof(der));
	pthread_mutex_unlock(&kk->lock);
	if (der_len <= 0)
		goto out_wipe;
	pem_len = wc_DerToPem(der, (word32)der_len, pem, sizeof(pem),
			      ECC_PRIVATEKEY_TYPE);
	if (pem_len <= 0)
		goto out_wipe;
	err = write_atomic(path, ".key", pem, (size_t)pem_len, 0600);
out_wipe:
	S2S_WIPE(der);
	S2S_WIPE(pem);
	return err;
}

/*
 * Read a whole small file.  With secret, refuse (before reading a byte) a
 * file that group or others may read or write.  The buffer is wiped and
 * freed by the caller.
 */
static enum s2s_err
read_key_file(const char *file, bool secret, uint8_t **out, size_t *out_len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	enum s2s_err err = S2S_ERR_IO;
	int fd;

	if (!file)
		return S2S_ERR_INVAL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return S2S_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out_close;
	if (secret && (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH))) {
		err = S2S_ERR_PERM;
		goto out_close;
	}
	if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
		err = S2S_ERR_FORMAT;
		goto out_close;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		err = S2S_ERR_NOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != (size_t)st.st_size) {
		s2s_memzero(buf, (size_t)st.st_size);
		free(buf);
		goto out_close;
	}
	*out = buf;
	*out_len = got;
	err = S2S_OK;
out_close:
	close(fd);
	return err;
}

static enum s2s_err
key_load_private_impl(const char *file, struct s2s_key **out)
{
	struct s2s_key *k = NULL;
	uint8_t *pem;
	size_t pem_len;
	uint8_t der[1024];
	word32 idx = 0;
	enum s2s_err err;
	int der_len;


	if (!out)
		return S2S_ERR_INVAL;
	err = read_key_file(file, true, &pem, &pem_len);
	if (err)
		return err;
	der_len = wc_KeyPemToDer(pem, (int)pem_len, der, sizeof(der), NULL);
	if (der_len <= 0) {
		err = S2S_ERR_FORMAT;
		goto out_wipe;
	}
	err = key_alloc(&k);
	if (err)
		goto out_wipe;
	if (wc_EccPrivateKeyDecode(der, &idx, &k->ecc, (word32)der_len) != 0) {
		err = S2S_ERR_FORMAT;
		goto out_destroy;
	}
	if (k->ecc.type == ECC_PRIVATEKEY_ONLY) {
		/* SEC1 makes the public key optional; recompute it. */
		WC_RNG *r;

		pthread_mutex_lock(&rng_lock);
		err = rng_get(&r);
		if (err == S2S_OK && wc_ecc_make_pub_ex(&k->ecc, NULL, r) != 0)
			err = S2S_ERR_FORMAT;
		pthread_mutex_unlock(&rng_lock);
		if (err)
			goto out_destroy;
	}
	err = key_finish(k, CHECK_FULL);
	if (err)
		goto out_destroy;
	if (!k->has_priv) {
		err = S2S_ERR_FORMAT;
		goto out_destroy;
	}
	*out = k;
	k = NULL;
out_destroy:
	s2s_key_destroy(k);
out_wipe:
	S2S_WIPE(der);
	s2s_memzero(pem, pem_len);
	free(pem);
	return err;
}

enum s2s_err
s2s_key_load_private(const char *file, struct s2s_key **out)
{
	ecc_thread_mark();
	return ecc_thread_done(key_load_private_impl(file, out));
}

static enum s2s_err
key_load_public_impl(const char *file, struct s2s_key **out)
{
	struct s2s_key *k = NULL;
	uint8_t *pem;
	size_t pem_len;
	uint8_t der[1024];
	word32 idx = 0;
	enum s2s_err err;
	int der_len;


	if (!out)
		return S2S_ERR_INVAL;
	err = read_key_file(file, false, &pem, &pem_len);
	if (err)
		return err;
	der_len = wc_PubKeyPemToDer(pem, (int)pem_len, der, sizeof(der));
	if (der_len <= 0) {
		err = S2S_ERR_FORMAT;
		goto out_free;
	}
	err = key_alloc(&k);
	if (err)
		goto out_free;
	if (wc_EccPublicKeyDecode(der, &idx, &k->ecc, (word32)der_len) != 0) {
		err = S2S_ERR_FORMAT;
		goto out_destroy;
	}
	err = key_finish(k, CHECK_FULL);
	if (err)
		goto out_destroy;
	*out = k;
	k = NULL;
out_destroy:
	s2s_key_destroy(k);
out_free:
	free(pem);    /* public data: not wiped */
	return err;
}

enum s2s_err
s2s_key_load_public(const char *file, struct s2s_key **out)
{
	ecc_thread_mark();
	return ecc_thread_done(key_load_public_impl(file, out));
}

/* ---- ECIES ------------------------------------------------------------- */

#define ECIES_OVERHEAD (S2S_P256_PUB_LEN + 32)  /* ephemeral point + tag */

static size_t
frame_len(size_t pt_len)
{
	return (4 + pt_len + 15) / 16 * 16;
}

size_t
s2s_ecies_sealed_len(size_t pt_len)
{
	return ECIES_OVERHEAD + frame_len(pt_len);
}

/*
 * The recipient of a seal as a point wolfCrypt's fixed-point cache has not
 * seen: the cache finds points by comparing their coordinates as stored,
 * and the multiplication reduces them mod p first (into Montgomery form),
 * so x + m*p with a fresh random m names the same point to the arithmetic
 * and a new one to the cache.  A point seen once gets no table (the
 * second multiplication of a point would build it).  rng_lock held.
 */
static int
alias_import(const struct s2s_key *k, WC_RNG *r, ecc_key *alias)
{
	mp_int prime, t;
	uint32_t m = 0;
	int rc;

	rc = wc_ecc_init_ex(alias, NULL, INVALID_DEVID);
	if (rc != 0)
		return rc;
	rc = wc_ecc_import_x963_ex(k->pub, S2S_P256_PUB_LEN, alias,
				   ECC_SECP256R1);
	if (rc == 0)
		rc = mp_init_multi(&prime, &t, NULL, NULL, NULL, NULL);
	if (rc != 0) {
		wc_ecc_free(alias);
		return rc;
	}
	while (rc == 0 && m == 0)
		rc = wc_RNG_GenerateBlock(r, (byte *)&m, sizeof(m));
	if (rc == 0)
		rc = mp_read_radix(&prime, alias->dp->prime, MP_RADIX_HEX);
	if (rc == 0)
		rc = mp_mul_d(&prime, (mp_digit)m, &t);
	if (rc == 0)
		rc = mp_add(alias->pubkey.x, &t, alias->pubkey.x);
	mp_clear(&prime);
	mp_clear(&t);
	if (rc != 0)
		wc_ecc_free(alias);
	return rc;
}

/*
 * wolfCrypt's ECIES with a NULL context is deterministic for a fixed sender
 * key (zero IV), so each call makes its own ephemeral key, and pads itself
 * because wolfCrypt does not.  The whole call holds rng_lock: the
 * ephemeral key's ECDH blinding draws from the shared DRBG.
 */
static enum s2s_err
ecies_seal_impl(const struct s2s_key *recipient, const uint8_t *pt,
		size_t pt_len, uint8_t *out, size_t *out_len)
{
	struct s2s_key *rk = (struct s2s_key *)recipient;
	ecc_key eph;
	uint8_t *frame;
	size_t flen;
	word32 n;
	WC_RNG *r;
	enum s2s_err err;
	int rc;


	if (!recipient || (!pt && pt_len) || !out || !out_len)
		return S2S_ERR_INVAL;
	if (pt_len > S2S_ECIES_MAX_PT)
		return S2S_ERR_TOO_BIG;
	flen = frame_len(pt_len);
	frame = calloc(1, flen);
	if (!frame)
		return S2S_ERR_NOMEM;
	put_be32(frame, (uint32_t)pt_len);
	if (pt_len)
		memcpy(frame + 4, pt, pt_len);
	rc = wc_ecc_init_ex(&eph, NULL, INVALID_DEVID);
	if (rc != 0) {
		err = wc_err(rc);
		goto out_frame;
	}

	pthread_mutex_lock(&rk->lock);
	pthread_mutex_lock(&rng_lock);
	err = rng_get(&r);
	if (err)
		goto out_unlock;
	rc = wc_ecc_make_key_ex(r, 32, &eph, ECC_SECP256R1);
	if (rc == 0)
		rc = wc_ecc_set_rng(&eph, r);
	n = (word32)s2s_ecies_sealed_len(pt_len);
	if (rc == 0 && rk->no_table) {
		ecc_key alias;

		rc = alias_import(rk, r, &alias);
		if (rc == 0) {
			rc = wc_ecc_encrypt(&eph, &alias, frame, (word32)flen,
					    out, &n, NULL);
			wc_ecc_free(&alias);
		}
	} else if (rc == 0) {
		rc = wc_ecc_encrypt(&eph, &rk->ecc, frame, (word32)flen, out,
				    &n, NULL);
	}
	if (rc != 0) {
		err = wc_err(rc);
		goto out_unlock;
	}
	if (n != s2s_ecies_sealed_len(pt_len)) {
		err = S2S_ERR_CRYPTO;
		goto out_unlock;
	}
	*out_len = n;
out_unlock:
	pthread_mutex_unlock(&rng_lock);
	pthread_mutex_unlock(&rk->lock);
	wc_ecc_free(&eph);
	S2S_WIPE(eph);
out_frame:
	s2s_memzero(frame, flen);
	free(frame);
	return err;
}

enum s2s_err
s2s_ecies_seal(const struct s2s_key *recipient, const uint8_t *pt,
	       size_t pt_len, uint8_t *out, size_t *out_len)
{
	ecc_thread_mark();
	return ecc_thread_done(ecies_seal_impl(recipient, pt, pt_len, out,
					       out_len));
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static enum s2s_err
ecies_open_impl(const struct s2s_key *priv, const uint8_t *ct,
		size_t ct_len, uint8_t *out, size_t *out_len)
{
	struct s2s_key *k = (struct s2s_key *)priv;
	ecc_key peer;
	size_t body, len;
	word32 n;
	WC_RNG *r;
	enum s2s_err err;
	int rc;


	if (!priv || !ct || !out || !out_len || !priv->has_priv)
		return S2S_ERR_INVAL;
	if (ct_len < s2s_ecies_sealed_len(0) ||
	    ct_len > s2s_ecies_sealed_len(S2S_ECIES_MAX_PT) ||
	    (ct_len - ECIES_OVERHEAD) % 16 != 0)
		return S2S_ERR_FORMAT;
	body = ct_len - ECIES_OVERHEAD;

	/*
	 * Validate the sender's ephemeral point ourselves before any ECDH
	 * with our private key (no invalid-curve oracle), and insist on the
	 * uncompressed form: wolfCrypt would also parse a 33-byte compressed
	 * point and shift the layout under our length checks.
	 */
	rc = wc_ecc_init_ex(&peer, NULL, INVALID_DEVID);
	if (rc != 0)
		return wc_err(rc);
	if (ct[0] != 0x04 ||
	    wc_ecc_import_x963_ex(ct, S2S_P256_PUB_LEN, &peer,
				  ECC_SECP256R1) != 0 ||
	    wc_ecc_point_is_on_curve(&peer.pubkey, peer.idx) != MP_OKAY) {
		err = S2S_ERR_AUTH;
		goto out_peer;
	}

	pthread_mutex_lock(&k->lock);
	pthread_mutex_lock(&rng_lock);
	err = rng_get(&r);
	if (err)
		goto out_unlock;
	rc = wc_ecc_set_rng(&k->ecc, r);
	n = (word32)body;
	/* pubKey NULL: wolfCrypt reads the sender key from ct and would
	 * otherwise overwrite the key we pass. */
	if (rc == 0)
		rc = wc_ecc_decrypt(&k->ecc, NULL, ct, (word32)ct_len, out, &n,
				    NULL);
	(void)wc_ecc_set_rng(&k->ecc, NULL);
	if (rc == MEMORY_E || rc == BAD_FUNC_ARG) {
		err = wc_err(rc);
		goto out_wipe;
	}
	if (rc != 0 || n != body) {
		err = S2S_ERR_AUTH;
		goto out_wipe;
	}
	/* Authentic; now the framing must be canonical. */
	len = get_be32(out);
	if (len > body - 4 || frame_len(len) != body ||
	    !all_zero(out + 4 + len, body - 4 - len)) {
		err = S2S_ERR_FORMAT;
		goto out_wipe;
	}
	memmove(out, out + 4, len);
	s2s_memzero(out + len, body - len);
	*out_len = len;
	goto out_unlock;
out_wipe:
	s2s_memzero(out, body);
out_unlock:
	pthread_mutex_unlock(&rng_lock);
	pthread_mutex_unlock(&k->lock);
out_peer:
	wc_ecc_free(&peer);
	return err;
}

enum s2s_err
s2s_ecies_open(const struct s2s_key *priv, const uint8_t *ct, size_t ct_len,
	       uint8_t *out, size_t *out_len)
{
	ecc_thread_mark();
	return ecc_thread_done(ecies_open_impl(priv, ct, ct_len, out,
					       out_len));
}

/* ---- ECDSA ------------------------------------------------------------- */

static enum s2s_err
ecdsa_sign_impl(const struct s2s_key *priv, const uint8_t *msg,
		size_t msg_len, uint8_t sig[S2S_P256_SIG_LEN])
{
	struct s2s_key *k = (struct s2s_key *)priv;
	uint8_t hash[S2S_SHA256_LEN];
	uint8_t der[ECC_MAX_SIG_SIZE];
	uint8_t rb[32], sb[32];
	word32 der_len = sizeof(der), rl = sizeof(rb), sl = sizeof(sb);
	WC_RNG *r;
	enum s2s_err err;
	int rc;


	if (!priv || (!msg && msg_len) || !sig || !priv->has_priv)
		return S2S_ERR_INVAL;
	s2s_sha256(msg, msg_len, hash);

	pthread_mutex_lock(&k->lock);
	pthread_mutex_lock(&rng_lock);
	err = rng_get(&r);
	if (err == S2S_OK) {
		rc = wc_ecc_sign_hash(hash, sizeof(hash), der, &der_len, r,
				      &k->ecc);
		if (rc != 0)
			err = wc_err(rc);
	}
	pthread_mutex_unlock(&rng_lock);
	pthread_mutex_unlock(&k->lock);
	if (err)
		goto out_wipe;
	if (wc_ecc_sig_to_rs(der, der_len, rb, &rl, sb, &sl) != 0 ||
	    rl > 32 || sl > 32) {
		err = S2S_ERR_CRYPTO;
		goto out_wipe;
	}
	/* r and s come out without leading zeros; right-align them. */
	memset(sig, 0, S2S_P256_SIG_LEN);
	memcpy(sig + 32 - rl, rb, rl);
	memcpy(sig + 64 - sl, sb, sl);
out_wipe:
	S2S_WIPE(hash);
	return err;
}

enum s2s_err
s2s_ecdsa_sign(const struct s2s_key *priv, const uint8_t *msg, size_t msg_len,
	       uint8_t sig[S2S_P256_SIG_LEN])
{
	ecc_thread_mark();
	return ecc_thread_done(ecdsa_sign_impl(priv, msg, msg_len, sig));
}

static enum s2s_err
ecdsa_verify_impl(const struct s2s_key *k, const uint8_t *msg,
		  size_t msg_len, const uint8_t sig[S2S_P256_SIG_LEN])
{
	struct s2s_key *kk = (struct s2s_key *)k;
	uint8_t hash[S2S_SHA256_LEN];
	uint8_t der[ECC_MAX_SIG_SIZE];
	word32 der_len = sizeof(der);
	int rc, res = 0;


	if (!k || (!msg && msg_len) || !sig)
		return S2S_ERR_INVAL;
	/* r = 0 or s = 0 cannot be encoded, which is a rejection too. */
	if (wc_ecc_rs_raw_to_sig(sig, 32, sig + 32, 32, der, &der_len) != 0)
		return S2S_ERR_AUTH;
	s2s_sha256(msg, msg_len, hash);
	pthread_mutex_lock(&kk->lock);
	if (kk->no_table) {
		ecc_key alias;
		WC_RNG *r;

		pthread_mutex_lock(&rng_lock);
		rc = rng_get(&r) == S2S_OK ? alias_import(kk, r, &alias) :
		     RNG_FAILURE_E;
		pthread_mutex_unlock(&rng_lock);
		if (rc == 0) {
			rc = wc_ecc_verify_hash(der, der_len, hash,
						sizeof(hash), &res, &alias);
			wc_ecc_free(&alias);
		}
	} else {
		rc = wc_ecc_verify_hash(der, der_len, hash, sizeof(hash),
					&res, &kk->ecc);
	}
	pthread_mutex_unlock(&kk->lock);
	if (rc == MEMORY_E)
		return S2S_ERR_NOMEM;
	return rc == 0 && res == 1 ? S2S_OK : S2S_ERR_AUTH;
}

enum s2s_err
s2s_ecdsa_verify(const struct s2s_key *k, const uint8_t *msg, size_t msg_len,
		 const uint8_t sig[S2S_P256_SIG_LEN])
{
	ecc_thread_mark();
	return ecc_thread_done(ecdsa_verify_impl(k, msg, msg_len, sig));
}

/* ---- Authenticated encryption (data at rest) ---------------------------- */

enum s2s_err
s2s_aead_seal(const uint8_t key[S2S_AEAD_KEY_LEN], const uint8_t *aad,
	      size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	Aes aes;
	enum s2s_err err;
	int rc;

	if (!key || !out || (!pt && pt_len) || (!aad && aad_len))
		return S2S_ERR_INVAL;
	if (pt_len > UINT32_MAX - S2S_AEAD_OVERHEAD || aad_len > UINT32_MAX)
		return S2S_ERR_TOO_BIG;
	/* 96-bit random nonces: safe for far more records than a store holds */
	err = s2s_random(out, S2S_AEAD_NONCE_LEN);
	if (err)
		return err;
	rc = wc_AesInit(&aes, NULL, INVALID_DEVID);
	if (rc != 0)
		return wc_err(rc);
	rc = wc_AesGcmSetKey(&aes, key, S2S_AEAD_KEY_LEN);
	if (rc == 0)
		rc = wc_AesGcmEncrypt(&aes, out + S2S_AEAD_NONCE_LEN, pt,
				      (word32)pt_len, out, S2S_AEAD_NONCE_LEN,
				      out + S2S_AEAD_NONCE_LEN + pt_len,
				      S2S_AEAD_TAG_LEN, aad, (word32)aad_len);
	if (rc != 0)
		err = wc_err(rc);
	wc_AesFree(&aes);
	S2S_WIPE(aes);
	return err;
}

#define AEAD_POOL 32

struct s2s_aead {
	uint8_t key[S2S_AEAD_KEY_LEN];
	uint8_t nonces[AEAD_POOL * S2S_XAEAD_NONCE_LEN];
	unsigned used;          /* nonces taken from the pool */
};

enum s2s_err
s2s_aead_new(const uint8_t key[S2S_AEAD_KEY_LEN], struct s2s_aead **out)
{
	struct s2s_aead *a;

	if (!key || !out)
		return S2S_ERR_INVAL;
	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return S2S_ERR_NOMEM;
	memcpy(a->key, key, sizeof(a->key));
	a->used = AEAD_POOL;
	*out = a;
	return S2S_OK;
}

void
s2s_aead_free(struct s2s_aead *a)
{
	if (!a)
		return;
	s2s_memzero(a, sizeof(*a));
	free(a);
}

enum s2s_err
s2s_xaead_seal(struct s2s_aead *a, const uint8_t *aad, size_t aad_len,
	       const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	uint8_t *nonce;
	enum s2s_err err;
	int rc;

	if (!a || !out || (!pt && pt_len) || (!aad && aad_len))
		return S2S_ERR_INVAL;
	if (pt_len > UINT32_MAX - S2S_XAEAD_OVERHEAD || aad_len > UINT32_MAX)
		return S2S_ERR_TOO_BIG;
	if (a->used == AEAD_POOL) {
		err = s2s_random(a->nonces, sizeof(a->nonces));
		if (err)
			return err;
		a->used = 0;
	}
	nonce = a->nonces + a->used * S2S_XAEAD_NONCE_LEN;
	memcpy(out, nonce, S2S_XAEAD_NONCE_LEN);
	s2s_memzero(nonce, S2S_XAEAD_NONCE_LEN);
	a->used++;
	rc = wc_XChaCha20Poly1305_Encrypt(out + S2S_XAEAD_NONCE_LEN,
					  pt_len + S2S_AEAD_TAG_LEN,
					  pt ? pt : out,
					  pt_len, aad, aad_len, out,
					  S2S_XAEAD_NONCE_LEN, a->key,
					  sizeof(a->key));
	if (rc != 0) {
		s2s_memzero(out, pt_len + S2S_XAEAD_OVERHEAD);
		return wc_err(rc);
	}
	return S2S_OK;
}

enum s2s_err
s2s_xaead_open(const uint8_t key[S2S_AEAD_KEY_LEN], const uint8_t *aad,
	       size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out)
{
	size_t n;
	int rc;

	if (!key || !in || !out || (!aad && aad_len))
		return S2S_ERR_INVAL;
	if (in_len < S2S_XAEAD_OVERHEAD)
		return S2S_ERR_FORMAT;
	if (in_len > UINT32_MAX || aad_len > UINT32_MAX)
		return S2S_ERR_TOO_BIG;
	n = in_len - S2S_XAEAD_OVERHEAD;
	rc = wc_XChaCha20Poly1305_Decrypt(out, n,
					  in + S2S_XAEAD_NONCE_LEN,
					  in_len - S2S_XAEAD_NONCE_LEN, aad,
					  aad_len, in, S2S_XAEAD_NONCE_LEN, key,
					  S2S_AEAD_KEY_LEN);
	if (rc != 0) {
		if (n)
			s2s_memzero(out, n);
		return rc == MAC_CMP_FAILED_E ? S2S_ERR_AUTH : wc_err(rc);
	}
	return S2S_OK;
}

/*
 * wolfSSL 5.5.4 does not wipe the output of a failed GCM decryption, so
 * it is wiped here on every failure.
 */
enum s2s_err
s2s_aead_open(const uint8_t key[S2S_AEAD_KEY_LEN], const uint8_t *aad,
	      size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out)
{
	Aes aes;
	size_t n;
	enum s2s_err err = S2S_OK;
	int rc;

	if (!key || !in || !out || (!aad && aad_len))
		return S2S_ERR_INVAL;
	if (in_len < S2S_AEAD_OVERHEAD)
		return S2S_ERR_FORMAT;
	if (in_len > UINT32_MAX || aad_len > UINT32_MAX)
		return S2S_ERR_TOO_BIG;
	n = in_len - S2S_AEAD_OVERHEAD;
	rc = wc_AesInit(&aes, NULL, INVALID_DEVID);
	if (rc != 0)
		return wc_err(rc);
	rc = wc_AesGcmSetKey(&aes, key, S2S_AEAD_KEY_LEN);
	if (rc == 0)
		rc = wc_AesGcmDecrypt(&aes, out, in + S2S_AEAD_NONCE_LEN,
				      (word32)n, in, S2S_AEAD_NONCE_LEN,
				      in + S2S_AEAD_NONCE_LEN + n,
				      S2S_AEAD_TAG_LEN, aad, (word32)aad_len);
	if (rc == AES_GCM_AUTH_E)
		err = S2S_ERR_AUTH;
	else if (rc != 0)
		err = wc_err(rc);
	if (err)
		s2s_memzero(out, n);
	wc_AesFree(&aes);
	S2S_WIPE(aes);
	return err;
}
