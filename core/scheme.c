/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * scheme.c - the scheme's own primitives (s2s/scheme.h).
 *
 * The paper profile is normative (../shared/design/SCHEME.md) and checked
 * byte for byte against tests/vectors/gen_scheme.py.  Known weaknesses of
 * that profile are kept on purpose, not fixed here: MACLESS has about 10
 * bits of entropy, the XOR-rotate ratchet is invertible (given SkCS^T and
 * R^T, rotl then XOR recovers the previous key), and paper keys are raw
 * histogram bytes.  The hardened profile replaces exactly those three.
 */
#include <stdlib.h>
#include <string.h>

#include "s2s/crypto.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"

static const char label_ratchet[] = "s2s/v1/ratchet";
static const char label_tag[] = "s2s/v1/tag";
static const char label_sk[] = "s2s/v1/sk";
static const char label_shk[] = "s2s/v1/shk";
static const char label_stego[] = "stego-select";

#define LABEL(s) (s), (sizeof(s) - 1)   /* without the terminating NUL */

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* ---- Profiles ------------------------------------------------------------ */

const char *
s2s_profile_name(enum s2s_profile p)
{
	switch (p) {
	case S2S_PROFILE_PAPER:
		return "paper";
	case S2S_PROFILE_HARDENED:
		return "hardened";
	}
	return NULL;
}

enum s2s_err
s2s_profile_parse(const char *name, enum s2s_profile *out)
{
	if (name && !strcmp(name, "paper"))
		*out = S2S_PROFILE_PAPER;
	else if (name && !strcmp(name, "hardened"))
		*out = S2S_PROFILE_HARDENED;
	else
		return S2S_ERR_PROFILE;
	return S2S_OK;
}

size_t
s2s_tag_len(enum s2s_profile p)
{
	switch (p) {
	case S2S_PROFILE_PAPER:
		return 4;
	case S2S_PROFILE_HARDENED:
		return 12;
	}
	return 0;
}

/* ---- Byte-string operations ------------------------------------------ */

void
s2s_xor_cycle(uint8_t *out, const uint8_t *a, size_t a_len, const uint8_t *b,
	      size_t b_len)
{
	size_t j = 0;

	if (b_len == 0)
		return;
	for (size_t i = 0; i < a_len; i++) {
		out[i] = a[i] ^ b[j];
		if (++j == b_len)
			j = 0;
	}
}

static void
reverse(uint8_t *p, size_t n)
{
	for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
		uint8_t t = p[i];

		p[i] = p[j - 1];
		p[j - 1] = t;
	}
}

/*
 * A right rotation by 8q + r bits is a right rotation by q whole bytes
 * (three reversals, in place) followed by a right shift of every byte by r
 * with the low bits of the byte before it carried in; byte 0 takes them
 * from the last byte, which closes the ring.
 */
void
s2s_rotr_bits(uint8_t *buf, size_t len, uint64_t bits)
{
	unsigned r;
	size_t q;
	uint8_t carry;

	if (len == 0)
		return;
	bits %= (uint64_t)len * 8;
	q = (size_t)(bits / 8);
	r = (unsigned)(bits % 8);
	if (q) {
		reverse(buf, len);
		reverse(buf, q);
		reverse(buf + q, len - q);
	}
	if (r) {
		carry = buf[len - 1];
		for (size_t i = 0; i < len; i++) {
			uint8_t t = buf[i];

			buf[i] = (uint8_t)(t >> r | carry << (8 - r));
			carry = t;
		}
		carry = 0;
	}
}

/* ---- SkCS^T -------------------------------------------------------------- */

enum s2s_err
s2s_skcs_compute(const uint8_t *r, size_t r_len, uint8_t skcs[S2S_SKCS_LEN])
{
	return s2s_ffdhe2048_pow2(r, r_len, skcs);
}

enum s2s_err
s2s_skcs_generate(uint8_t skcs[S2S_SKCS_LEN])
{
	uint8_t r[S2S_SKCS_EXP_LEN];
	enum s2s_err err;

	err = s2s_random(r, sizeof(r));
	if (err)
		goto out_wipe;
	r[0] |= 0x80;   /* exactly 256 bits */
	err = s2s_skcs_compute(r, sizeof(r), skcs);
out_wipe:
	S2S_WIPE(r);
	return err;
}

/* ---- Paper profile ------------------------------------------------------- */

uint32_t
s2s_macless(const uint8_t *msg, size_t msg_len,
	    const uint8_t skcs[S2S_SKCS_LEN], const uint8_t *sk, size_t sk_len,
	    const uint8_t *shk, size_t shk_len, uint32_t rt)
{
	uint8_t rt_be[4], h[S2S_SHA1_LEN];
	uint32_t sum = 0;
	struct s2s_iov v[5] = {
		{ msg, msg_len },
		{ skcs, S2S_SKCS_LEN },
		{ sk, sk_len },
		{ shk, shk_len },
		{ rt_be, sizeof(rt_be) },
	};

	put_be32(rt_be, rt);
	s2s_sha1v(v, 5, h);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	S2S_WIPE(h);
	return sum;
}

void
s2s_ratchet_paper(uint8_t *sk, size_t sk_len,
		  const uint8_t skcs[S2S_SKCS_LEN], uint32_t rt)
{
	if (sk_len == 0)
		return;
	/* Only the first sk_len bytes of SkCS^T ever enter (sk_len < 256). */
	s2s_xor_cycle(sk, sk, sk_len, skcs, S2S_SKCS_LEN);
	s2s_rotr_bits(sk, sk_len, rt % ((uint64_t)sk_len * 8));
}

/* ---- Hardened profile -------------------------------------------------- */

enum s2s_err
s2s_ratchet_hardened(uint8_t sk[S2S_HARDENED_KEY_LEN], uint32_t rt)
{
	uint8_t rt_be[4], next[S2S_SHA256_LEN];
	struct s2s_iov v[2] = {
		{ LABEL(label_ratchet) },
		{ rt_be, sizeof(rt_be) },
	};
	enum s2s_err err;

	struct s2s_hmac_key k;

	put_be32(rt_be, rt);
	err = s2s_hmac_key_init(&k, sk, S2S_HARDENED_KEY_LEN);
	if (!err)
		err = s2s_hmac_key_mac(&k, v, 2, next);
	if (err == S2S_OK)
		memcpy(sk, next, S2S_HARDENED_KEY_LEN);
	s2s_hmac_key_wipe(&k);
	S2S_WIPE(next);
	return err;
}

enum s2s_err
s2s_tag_hardened(const uint8_t *hdr, size_t hdr_len, const uint8_t *msg,
		 size_t msg_len, const uint8_t skcs[S2S_SKCS_LEN],
		 const uint8_t *sk, size_t sk_len, const uint8_t *shk,
		 size_t shk_len, uint32_t rt, uint8_t tag[12])
{
	uint8_t ikm[S2S_SKCS_LEN + S2S_SK_MAX + S2S_SHK_MAX];
	uint8_t key[S2S_SHA256_LEN], mac[S2S_SHA256_LEN], rt_be[4];
	struct s2s_iov v[3] = {
		{ hdr, hdr_len },
		{ msg, msg_len },
		{ rt_be, sizeof(rt_be) },
	};
	enum s2s_err err;

	if (sk_len > S2S_SK_MAX || shk_len > S2S_SHK_MAX)
		return S2S_ERR_INVAL;
	memcpy(ikm, skcs, S2S_SKCS_LEN);
	if (sk_len)
		memcpy(ikm + S2S_SKCS_LEN, sk, sk_len);
	if (shk_len)
		memcpy(ikm + S2S_SKCS_LEN + sk_len, shk, shk_len);
	put_be32(rt_be, rt);
	err = s2s_hkdf_sha256(ikm, S2S_SKCS_LEN + sk_len + shk_len, NULL, 0,
			      (const uint8_t *)label_tag, sizeof(label_tag) - 1,
			      key, sizeof(key));
	if (err)
		goto out_wipe;
	err = s2s_hmac_sha256v(key, sizeof(key), v, 3, mac);
	if (err)
		goto out_wipe;
	memcpy(tag, mac, 12);
out_wipe:
	S2S_WIPE(ikm);
	S2S_WIPE(key);
	S2S_WIPE(mac);
	return err;
}

/* ---- Bio-key slices ---------------------------------------------------- */

size_t
s2s_slice_count(unsigned i, unsigned e)
{
	return e >= i ? (size_t)(e - i) + 1 : (size_t)(S2S_RV_LEN - i) + e + 1;
}

static bool
slice_ok(enum s2s_profile p, enum s2s_slice_kind kind, size_t n)
{
	switch (p) {
	case S2S_PROFILE_PAPER:
		if (kind == S2S_SLICE_SK)
			return n >= S2S_PAPER_SK_MIN && n <= S2S_PAPER_SK_MAX;
		return kind == S2S_SLICE_SHK && n == S2S_PAPER_SHK_LEN;
	case S2S_PROFILE_HARDENED:
		return (kind == S2S_SLICE_SK || kind == S2S_SLICE_SHK) &&
		       n >= S2S_HARDENED_SLICE_MIN;
	}
	return false;
}

enum s2s_err
s2s_slice_key(enum s2s_profile p, enum s2s_slice_kind kind,
	      const uint16_t rv[S2S_RV_LEN], unsigned i, unsigned e,
	      uint8_t *out, size_t *out_len)
{
	/* label (at most 10) || be16(i) || be16(e) || be16 of every count */
	uint8_t buf[16 + 2 * S2S_RV_LEN];
	size_t n, len = 0;

	if (!rv || !out || !out_len || i == e || i >= S2S_RV_LEN ||
	    e >= S2S_RV_LEN)
		return S2S_ERR_INVAL;
	if (p != S2S_PROFILE_PAPER && p != S2S_PROFILE_HARDENED)
		return S2S_ERR_PROFILE;
	n = s2s_slice_count(i, e);
	if (!slice_ok(p, kind, n))
		return S2S_ERR_INVAL;

	if (p == S2S_PROFILE_PAPER) {
		for (size_t k = 0, j = i; k < n; k++) {
			out[k] = rv[j] > 255 ? 255 : (uint8_t)rv[j];
			if (++j == S2S_RV_LEN)
				j = 0;
		}
		*out_len = n;
		return S2S_OK;
	}

	if (kind == S2S_SLICE_SK) {
		memcpy(buf, label_sk, sizeof(label_sk) - 1);
		len = sizeof(label_sk) - 1;
	} else {
		memcpy(buf, label_shk, sizeof(label_shk) - 1);
		len = sizeof(label_shk) - 1;
	}
	put_be16(buf + len, (uint16_t)i);
	put_be16(buf + len + 2, (uint16_t)e);
	len += 4;
	for (size_t k = 0, j = i; k < n; k++) {
		put_be16(buf + len, rv[j]);
		len += 2;
		if (++j == S2S_RV_LEN)
			j = 0;
	}
	s2s_sha256(buf, len, out);
	*out_len = S2S_HARDENED_KEY_LEN;
	s2s_memzero(buf, len);
	return S2S_OK;
}

/* Uniform in [0, bound) by rejection (bound <= 2^16). */
static enum s2s_err
rand_below(uint32_t bound, uint32_t *out)
{
	uint32_t limit = UINT32_MAX - UINT32_MAX % bound, x;
	enum s2s_err err;

	do {
		err = s2s_random(&x, sizeof(x));
		if (err)
			return err;
	} while (x >= limit);
	*out = x % bound;
	return S2S_OK;
}

/*
 * Lengths drawn: paper Sk uniform in 16..32, paper Shk 32, hardened
 * anywhere from 256 counts to the whole of Rv.  An all-zero range is
 * redrawn in both profiles: hashing zeros would give a key fixed by (i, e)
 * alone.
 */
enum s2s_err
s2s_slice_pick(enum s2s_profile p, enum s2s_slice_kind kind,
	       const uint16_t rv[S2S_RV_LEN], unsigned *i, unsigned *e,
	       uint8_t *out, size_t *out_len)
{
	uint32_t lo, hi, start, count;
	enum s2s_err err;

	if (!rv || !i || !e || !out || !out_len)
		return S2S_ERR_INVAL;
	if (p == S2S_PROFILE_PAPER) {
		lo = kind == S2S_SLICE_SK ? S2S_PAPER_SK_MIN : S2S_PAPER_SHK_LEN;
		hi = kind == S2S_SLICE_SK ? S2S_PAPER_SK_MAX : S2S_PAPER_SHK_LEN;
	} else if (p == S2S_PROFILE_HARDENED) {
		lo = S2S_HARDENED_SLICE_MIN;
		hi = S2S_RV_LEN;
	} else {
		return S2S_ERR_PROFILE;
	}
	if (kind != S2S_SLICE_SK && kind != S2S_SLICE_SHK)
		return S2S_ERR_INVAL;

	for (int attempt = 0; attempt < 64; attempt++) {
		uint16_t acc = 0;

		err = rand_below(S2S_RV_LEN, &start);
		if (err == S2S_OK)
			err = rand_below(hi - lo + 1, &count);
		if (err)
			return err;
		count += lo;
		for (uint32_t k = 0; k < count; k++)
			acc |= rv[(start + k) % S2S_RV_LEN];
		if (acc == 0)
			continue;
		*i = start;
		*e = (start + count - 1) % S2S_RV_LEN;
		return s2s_slice_key(p, kind, rv, *i, *e, out, out_len);
	}
	return S2S_ERR_CRYPTO;
}

/* ---- Stego selection key ---------------------------------------------- */

enum s2s_err
s2s_stego_key(const uint8_t *shk, size_t shk_len, uint64_t session,
	      uint8_t key[S2S_STEGO_KEY_LEN])
{
	uint8_t t_be[8];
	struct s2s_iov v[2] = {
		{ LABEL(label_stego) },
		{ t_be, sizeof(t_be) },
	};

	put_be64(t_be, session);
	return s2s_hmac_sha256v(shk, shk_len, v, 2, key);
}

/* ---- Key chains -------------------------------------------------------- */

enum s2s_err
s2s_chain_init(struct s2s_chain *c, enum s2s_profile p, uint64_t session,
	       const uint8_t skcs[S2S_SKCS_LEN], const uint8_t *sk,
	       size_t sk_len, const uint8_t *shk, size_t shk_len)
{
	enum s2s_err err;

	if (!c || !skcs || !sk || !shk)
		return S2S_ERR_INVAL;
	switch (p) {
	case S2S_PROFILE_PAPER:
		if (sk_len < S2S_PAPER_SK_MIN || sk_len > S2S_PAPER_SK_MAX ||
		    shk_len != S2S_PAPER_SHK_LEN)
			return S2S_ERR_INVAL;
		break;
	case S2S_PROFILE_HARDENED:
		if (sk_len != S2S_HARDENED_KEY_LEN ||
		    shk_len != S2S_HARDENED_KEY_LEN)
			return S2S_ERR_INVAL;
		break;
	default:
		return S2S_ERR_PROFILE;
	}
	memset(c, 0, sizeof(*c));
	c->profile = p;
	c->session = session;
	c->next_seq = 1;
	memcpy(c->skcs, skcs, S2S_SKCS_LEN);
	memcpy(c->sk, sk, sk_len);
	memcpy(c->shk, shk, shk_len);
	c->sk_len = (uint8_t)sk_len;
	c->shk_len = (uint8_t)shk_len;
	err = s2s_stego_key(shk, shk_len, session, c->stego_key);
	if (err)
		s2s_chain_wipe(c);
	return err;
}

enum s2s_err
s2s_chain_tag(const struct s2s_chain *c, const uint8_t *hdr, size_t hdr_len,
	      const uint8_t *msg, size_t msg_len, uint32_t rt,
	      uint8_t tag[S2S_TAG_MAX])
{
	if (!c || !tag || (!hdr && hdr_len) || (!msg && msg_len))
		return S2S_ERR_INVAL;
	switch (c->profile) {
	case S2S_PROFILE_PAPER:
		put_be32(tag, s2s_macless(msg, msg_len, c->skcs, c->sk,
					  c->sk_len, c->shk, c->shk_len, rt));
		return S2S_OK;
	case S2S_PROFILE_HARDENED:
		return s2s_tag_hardened(hdr, hdr_len, msg, msg_len, c->skcs,
					c->sk, c->sk_len, c->shk, c->shk_len,
					rt, tag);
	}
	return S2S_ERR_PROFILE;
}

enum s2s_err
s2s_chain_verify(const struct s2s_chain *c, const uint8_t *hdr,
		 size_t hdr_len, const uint8_t *msg, size_t msg_len,
		 uint32_t rt, const uint8_t *tag, size_t tag_len)
{
	return s2s_chain_verify_ctx(c, NULL, hdr, hdr_len, msg, msg_len, rt,
				    tag, tag_len);
}

enum s2s_err
s2s_chain_advance(struct s2s_chain *c, uint32_t rt)
{
	enum s2s_err err;

	if (!c)
		return S2S_ERR_INVAL;
	switch (c->profile) {
	case S2S_PROFILE_PAPER:
		s2s_ratchet_paper(c->sk, c->sk_len, c->skcs, rt);
		break;
	case S2S_PROFILE_HARDENED:
		if (c->sk_len != S2S_HARDENED_KEY_LEN)
			return S2S_ERR_STATE;
		err = s2s_ratchet_hardened(c->sk, rt);
		if (err)
			return err;
		break;
	default:
		return S2S_ERR_PROFILE;
	}
	c->next_seq++;
	return S2S_OK;
}

void
s2s_chain_wipe(struct s2s_chain *c)
{
	if (c)
		s2s_memzero(c, sizeof(*c));
}

/* ---- Hardened tag with a per-session context ---------------------------- */

struct s2s_tag_ctx {
	bool ready;
	uint8_t skcs[S2S_SKCS_LEN];     /* the session ext was made for */
	struct s2s_hmac_key ext;        /* HMAC key 0^32; inner fed skcs */
};

struct s2s_tag_ctx *
s2s_tag_ctx_new(void)
{
	return calloc(1, sizeof(struct s2s_tag_ctx));
}

static void
tag_ctx_reset(struct s2s_tag_ctx *x)
{
	s2s_hmac_key_wipe(&x->ext);
	s2s_memzero(x, sizeof(*x));
}

void
s2s_tag_ctx_free(struct s2s_tag_ctx *x)
{
	if (!x)
		return;
	tag_ctx_reset(x);
	free(x);
}

/* x ready for skcs (rebuilt when it was made for another one). */
static enum s2s_err
tag_ctx_prepare(struct s2s_tag_ctx *x, const uint8_t skcs[S2S_SKCS_LEN])
{
	static const uint8_t zero_salt[S2S_SHA256_LEN];
	enum s2s_err err;

	if (x->ready && s2s_ct_equal(x->skcs, skcs, S2S_SKCS_LEN))
		return S2S_OK;
	tag_ctx_reset(x);
	/* RFC 5869: no salt = HashLen zero bytes. */
	err = s2s_hmac_key_init(&x->ext, zero_salt, sizeof(zero_salt));
	if (!err)
		err = s2s_sha256_ctx_update(&x->ext.inner, skcs, S2S_SKCS_LEN);
	if (err) {
		tag_ctx_reset(x);
		return err;
	}
	memcpy(x->skcs, skcs, S2S_SKCS_LEN);
	x->ready = true;
	return S2S_OK;
}

/* s2s_tag_hardened(hdr, msg, x's skcs, sk, shk, rt) through x. */
static enum s2s_err
tag_hardened_ctx(struct s2s_tag_ctx *x, const uint8_t *hdr, size_t hdr_len,
		 const uint8_t *msg, size_t msg_len, const uint8_t *sk,
		 size_t sk_len, const uint8_t *shk, size_t shk_len,
		 uint32_t rt, uint8_t tag[12])
{
	static const uint8_t one = 1;
	uint8_t prk[S2S_SHA256_LEN], key[S2S_SHA256_LEN], mac[S2S_SHA256_LEN];
	uint8_t rt_be[4];
	struct s2s_sha256_ctx in;
	struct s2s_hmac_key kp, kk;
	struct s2s_iov ikm[2] = { { sk, sk_len }, { shk, shk_len } };
	struct s2s_iov info[2] = { { LABEL(label_tag) }, { &one, 1 } };
	struct s2s_iov v[3] = {
		{ hdr, hdr_len },
		{ msg, msg_len },
		{ rt_be, sizeof(rt_be) },
	};
	enum s2s_err err;

	memset(&kp, 0, sizeof(kp));
	memset(&kk, 0, sizeof(kk));
	put_be32(rt_be, rt);
	/* Extract: PRK = HMAC(0^32, skcs || sk || shk), skcs already in. */
	err = s2s_sha256_ctx_copy(&in, &x->ext.inner);
	if (err) {
		s2s_sha256_ctx_wipe(&in);
		goto out_wipe;
	}
	err = s2s_hmac_key_finish(&x->ext, &in, ikm, 2, prk);
	/* Expand, 32 bytes: K = T(1) = HMAC(PRK, info || 0x01). */
	if (!err)
		err = s2s_hmac_key_init(&kp, prk, sizeof(prk));
	if (!err)
		err = s2s_hmac_key_mac(&kp, info, 2, key);
	/* The tag. */
	if (!err)
		err = s2s_hmac_key_init(&kk, key, sizeof(key));
	if (!err)
		err = s2s_hmac_key_mac(&kk, v, 3, mac);
	if (!err)
		memcpy(tag, mac, 12);
out_wipe:
	s2s_hmac_key_wipe(&kp);
	s2s_hmac_key_wipe(&kk);
	S2S_WIPE(prk);
	S2S_WIPE(key);
	S2S_WIPE(mac);
	return err;
}

enum s2s_err
s2s_chain_tag_ctx(const struct s2s_chain *c, struct s2s_tag_ctx *x,
		  const uint8_t *hdr, size_t hdr_len, const uint8_t *msg,
		  size_t msg_len, uint32_t rt, uint8_t tag[S2S_TAG_MAX])
{
	enum s2s_err err;

	if (!x || !c || c->profile != S2S_PROFILE_HARDENED)
		return s2s_chain_tag(c, hdr, hdr_len, msg, msg_len, rt, tag);
	if (!tag || (!hdr && hdr_len) || (!msg && msg_len) ||
	    c->sk_len > S2S_SK_MAX || c->shk_len > S2S_SHK_MAX)
		return S2S_ERR_INVAL;
	err = tag_ctx_prepare(x, c->skcs);
	if (err)
		return err;
	return tag_hardened_ctx(x, hdr, hdr_len, msg, msg_len, c->sk,
				c->sk_len, c->shk, c->shk_len, rt, tag);
}

enum s2s_err
s2s_chain_verify_ctx(const struct s2s_chain *c, struct s2s_tag_ctx *x,
		     const uint8_t *hdr, size_t hdr_len, const uint8_t *msg,
		     size_t msg_len, uint32_t rt, const uint8_t *tag,
		     size_t tag_len)
{
	uint8_t want[S2S_TAG_MAX];
	enum s2s_err err;

	if (!c || !tag)
		return S2S_ERR_INVAL;
	err = s2s_chain_tag_ctx(c, x, hdr, hdr_len, msg, msg_len, rt, want);
	if (err)
		goto out_wipe;
	/* The length is public (it follows the profile), the bytes are not. */
	if (tag_len != s2s_tag_len(c->profile) ||
	    !s2s_ct_equal(want, tag, tag_len))
		err = S2S_ERR_AUTH;
out_wipe:
	S2S_WIPE(want);
	return err;
}
