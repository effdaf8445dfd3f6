/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seal.c - authenticated encryption of the store's secrets at rest
 * (device signature images, Rv, Shk, SkCS^T, chain keys).
 *
 * Key: a random 32-byte store key in a 0600 file beside the CS key
 * ("<cs_key without .key>.store.key"); the working keys are derived from
 * it with HKDF-SHA-256 (info "s2s/v1/store/xchacha20-poly1305", and
 * "s2s/v1/store/aes-256-gcm" for records of format 1).
 *
 * Record: one format byte || nonce || ciphertext || tag (16).  Format 2
 * (written since issue 11): XChaCha20-Poly1305 through s2s_xaead_seal,
 * 24-byte nonce.  Format 1 (read only): AES-256-GCM through
 * s2s_aead_seal, 12-byte nonce.  The authenticated data is the
 * format byte and a string naming the row ("dev:<id>", "pair:<pair>",
 * "chain:<pair>:<dir>:<T>:<next_seq>", ...), so sealed blobs cannot be
 * moved between rows or rolled back within a chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "s2s/secmem.h"

#define FMT_GCM 1         /* AES-256-GCM, s2s_aead_seal (read only now) */
#define FMT_XCC 2         /* XChaCha20-Poly1305, s2s_xaead_seal */
#define AD_MAX 512

enum s2s_err
cs_seal_init(struct s2s_cs *cs)
{
	static const char info[] = "s2s/v1/store/aes-256-gcm";
	static const char info_x[] = "s2s/v1/store/xchacha20-poly1305";
	enum s2s_err rc;

	rc = s2s_hkdf_sha256(cs->store_key, sizeof(cs->store_key), NULL, 0,
			     (const uint8_t *)info, sizeof(info) - 1,
			     cs->seal_key, S2S_AEAD_KEY_LEN);
	if (rc == S2S_OK)
		rc = s2s_hkdf_sha256(cs->store_key, sizeof(cs->store_key),
				     NULL, 0, (const uint8_t *)info_x,
				     sizeof(info_x) - 1, cs->seal_key_x,
				     sizeof(cs->seal_key_x));
	/* Made again on every call: never a sealer for an older key. */
	s2s_aead_free(cs->seal_aead);
	cs->seal_aead = NULL;
	if (rc == S2S_OK)
		rc = s2s_aead_new(cs->seal_key_x, &cs->seal_aead);
	return rc;
}

static size_t
make_ad(uint8_t buf[AD_MAX], uint8_t fmt, const char *ad)
{
	size_t n = strlen(ad);

	if (n > AD_MAX - 1)
		n = AD_MAX - 1;
	buf[0] = fmt;
	memcpy(buf + 1, ad, n);
	return n + 1;
}

/*
 * New records are XChaCha20-Poly1305 (format 2): the gate seals a chain
 * per package, and AES-GCM in software cost ~40 000 instructions for
 * these 66 bytes against a few thousand.  Format 1 (AES-256-GCM) records
 * written before are still opened.
 */
enum s2s_err
cs_seal(const struct s2s_cs *cs, const char *ad, const uint8_t *pt,
	size_t n, uint8_t **out, size_t *out_len)
{
	uint8_t a[AD_MAX], *o;
	size_t al = make_ad(a, FMT_XCC, ad);
	enum s2s_err rc;

	if (!cs->seal_aead)
		return S2S_ERR_STATE;
	o = malloc(1 + n + S2S_XAEAD_OVERHEAD);
	if (!o)
		return S2S_ERR_NOMEM;
	o[0] = FMT_XCC;
	rc = s2s_xaead_seal(cs->seal_aead, a, al, pt, n, o + 1);
	if (rc != S2S_OK) {
		free(o);
		return rc;
	}
	*out = o;
	*out_len = 1 + n + S2S_XAEAD_OVERHEAD;
	return S2S_OK;
}

enum s2s_err
cs_unseal(const struct s2s_cs *cs, const char *ad, const uint8_t *in,
	  size_t n, uint8_t **out, size_t *out_len)
{
	uint8_t a[AD_MAX], *o;
	size_t al, m, over;
	enum s2s_err rc;

	if (!in || n < 1 || (in[0] != FMT_GCM && in[0] != FMT_XCC))
		return S2S_ERR_FORMAT;
	over = in[0] == FMT_GCM ? S2S_AEAD_OVERHEAD : S2S_XAEAD_OVERHEAD;
	if (n < 1 + over)
		return S2S_ERR_FORMAT;
	al = make_ad(a, in[0], ad);
	m = n - 1 - over;
	o = malloc(m ? m : 1);
	if (!o)
		return S2S_ERR_NOMEM;
	if (in[0] == FMT_GCM) {
		rc = s2s_aead_open(cs->seal_key, a, al, in + 1, n - 1, o);
	} else {
		rc = s2s_xaead_open(cs->seal_key_x, a, al, in + 1, n - 1, o);
	}
	if (rc != S2S_OK) {
		s2s_memzero(o, m);
		free(o);
		return rc;
	}
	*out = o;
	*out_len = m;
	return S2S_OK;
}

enum s2s_err
cs_store_key_load(const char *path, uint8_t key[CS_STORE_KEY_LEN])
{
	struct stat st;
	int fd;
	ssize_t r;
	enum s2s_err rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
			close(fd);
			cs_log(MOSQ_LOG_ERR, "store key %s is accessible to "
			       "group or others (chmod 600)", path);
			return S2S_ERR_PERM;
		}
		r = read(fd, key, CS_STORE_KEY_LEN);
		close(fd);
		if (r != CS_STORE_KEY_LEN) {
			cs_log(MOSQ_LOG_ERR, "store key %s: not a 32-byte key",
			       path);
			return S2S_ERR_FORMAT;
		}
		return S2S_OK;
	}
	if (errno != ENOENT) {
		cs_log(MOSQ_LOG_ERR, "store key %s: %s", path, strerror(errno));
		return S2S_ERR_IO;
	}
	rc = s2s_random(key, CS_STORE_KEY_LEN);
	if (rc != S2S_OK)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cs_log(MOSQ_LOG_ERR, "store key %s: %s", path, strerror(errno));
		return S2S_ERR_IO;
	}
	r = write(fd, key, CS_STORE_KEY_LEN);
	if (r != CS_STORE_KEY_LEN || fsync(fd) != 0) {
		close(fd);
		unlink(path);
		cs_log(MOSQ_LOG_ERR, "store key %s: write failed", path);
		return S2S_ERR_IO;
	}
	close(fd);
	cs_log(MOSQ_LOG_NOTICE, "created store key %s", path);
	return S2S_OK;
}

/* ---- the sealed records both store backends write ------------------------- */

void
cs_chain_ad(char *buf, size_t n, const char *pair, int dir, uint64_t t,
	    uint64_t next_seq)
{
	snprintf(buf, n, "chain:%s:%d:%llu:%llu", pair, dir,
		 (unsigned long long)t, (unsigned long long)next_seq);
}

void
cs_sess_ad(char *buf, size_t n, const char *pair, uint64_t t)
{
	snprintf(buf, n, "sess:%s:%llu", pair, (unsigned long long)t);
}

enum s2s_err
cs_chain_seal(struct s2s_cs *cs, const char *pair, int dir,
	      const struct s2s_chain *c, uint8_t **out, size_t *out_len)
{
	uint8_t sec[CS_CHAIN_SECRET_LEN];
	char ad[256];
	enum s2s_err rc;

	memset(sec, 0, sizeof(sec));
	sec[0] = c->sk_len;
	memcpy(sec + 1, c->sk, c->sk_len);
	cs_chain_ad(ad, sizeof(ad), pair, dir, c->session, c->next_seq);
	rc = cs_seal(cs, ad, sec, sizeof(sec), out, out_len);
	S2S_WIPE(sec);
	return rc;
}
