/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crypto_wolfssl.c - s2s/crypto.h on wolfCrypt.  The only file of the
 * project that includes a wolfSSL header.  wolfSSL return codes are
 * translated into enum s2s_err here and nowhere else.
 */
#include <wolfssl/options.h> /* must come first: it fixes struct layouts */
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <pthread.h>
#include <string.h>

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

void
s2s_crypto_shutdown(void)
{
	pthread_mutex_lock(&rng_lock);
	if (rng_ready) {
		wc_FreeRng(&rng);
		rng_ready = false;
	}
	pthread_mutex_unlock(&rng_lock);
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

enum s2s_err
s2s_hmac_sha256v(const uint8_t *key, size_t key_len, const struct s2s_iov *v,
		 size_t cnt, uint8_t out[S2S_SHA256_LEN])
{
	Hmac hmac;
	enum s2s_err err = S2S_ERR_CRYPTO;

	if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
		return S2S_ERR_CRYPTO;
	if (wc_HmacSetKey(&hmac, WC_SHA256, key, (word32)key_len) != 0)
		goto out_free;
	for (size_t i = 0; i < cnt; i++)
		if (wc_HmacUpdate(&hmac, v[i].p, (word32)v[i].n) != 0)
			goto out_free;
	if (wc_HmacFinal(&hmac, out) != 0)
		goto out_free;
	err = S2S_OK;
out_free:
	wc_HmacFree(&hmac);
	S2S_WIPE(hmac);
	return err;
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
