/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * package.c - the message package: envelope parse/encode (no crypto), and
 * seal/open, which put the tag and R^T into the stego image and take them
 * out again.  docs/PROTOCOL.md, "Message package", is the specification.
 *
 * The CS gate runs parse + open on every published message, so both stay
 * cheap: parse is one bounds-checked pass over the header and the ids and
 * copies nothing; open with a warm cache (struct s2s_package_cache)
 * allocates only what the PNG decoder needs and skips the keyed shuffle.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/crypto.h"
#include "s2s/package.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"
#include "s2s/stego.h"

/* Field offsets of the fixed part (package.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_PROFILE = 5,
	OFF_SENDER_LEN = 6,
	OFF_RECEIVER_LEN = 7,
	OFF_SESSION = 8,
	OFF_SEQ = 16,
	OFF_MSG_LEN = 24,
	OFF_IMAGE_LEN = 28,
};

/* Longest header: the fixed part and two ids of S2S_ID_MAX bytes. */
#define HEADER_MAX (S2S_PACKAGE_FIXED + 2 * S2S_ID_MAX)
/* Longest stego payload: the longest tag and be32(R^T). */
#define PAYLOAD_MAX (S2S_TAG_MAX + 4)

static uint32_t
load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t
load_be64(const uint8_t *p)
{
	return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

static void
store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

static bool
profile_known(unsigned p)
{
	return p == S2S_PROFILE_PAPER || p == S2S_PROFILE_HARDENED;
}

static const uint8_t png_magic[8] = {
	0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
};

static void
limits_resolve(const struct s2s_package_limits *in,
	       struct s2s_package_limits *out)
{
	if (in)
		*out = *in;
	else
		memset(out, 0, sizeof(*out));
	if (out->max_msg == 0)
		out->max_msg = S2S_PACKAGE_DEFAULT_MAX_MSG;
	if (out->max_image == 0)
		out->max_image = S2S_PACKAGE_DEFAULT_MAX_IMAGE;
	/*
	 * A stego cover is small; without this a 256 KiB PNG could make every
	 * open allocate the image decoder's 16 MiB default.
	 */
	if (out->image.max_pixels == 0)
		out->image.max_pixels = S2S_PACKAGE_DEFAULT_MAX_PIXELS;
}

enum s2s_err
s2s_package_parse(const uint8_t *buf, size_t len,
		  const struct s2s_package_limits *limits,
		  struct s2s_package *out)
{
	struct s2s_package_limits lim;
	size_t a, b, m, n, hdr, total;
	uint64_t seq;

	if (!out || (!buf && len > 0))
		return S2S_ERR_INVAL;
	limits_resolve(limits, &lim);

	/* Whatever is there of the magic must match: foreign payloads are
	 * FORMAT even when they are short. */
	if (len == 0)
		return S2S_ERR_TRUNCATED;
	if (memcmp(buf, S2S_PACKAGE_MAGIC, len < 4 ? len : 4) != 0)
		return S2S_ERR_FORMAT;
	if (len < S2S_PACKAGE_FIXED)
		return S2S_ERR_TRUNCATED;
	if (buf[OFF_VERSION] != S2S_PACKAGE_VERSION)
		return S2S_ERR_VERSION;
	if (!profile_known(buf[OFF_PROFILE]))
		return S2S_ERR_PROFILE;

	a = buf[OFF_SENDER_LEN];
	b = buf[OFF_RECEIVER_LEN];
	if (a == 0 || a > S2S_ID_MAX || b == 0 || b > S2S_ID_MAX)
		return S2S_ERR_FORMAT;
	seq = load_be64(buf + OFF_SEQ);
	if (seq == 0)
		return S2S_ERR_INCONSISTENT;
	m = load_be32(buf + OFF_MSG_LEN);
	n = load_be32(buf + OFF_IMAGE_LEN);
	if (n == 0)
		return S2S_ERR_FORMAT;
	if (m > lim.max_msg || n > lim.max_image)
		return S2S_ERR_TOO_BIG;

	/*
	 * hdr <= 160; m and n are below 2^32 but their sum with hdr can
	 * wrap a 32-bit size_t, so every addition is checked first.
	 */
	hdr = S2S_PACKAGE_FIXED + a + b;
	if (m > SIZE_MAX - hdr || n > SIZE_MAX - hdr - m)
		return S2S_ERR_INCONSISTENT;
	total = hdr + m + n;
	if (len < total)
		return S2S_ERR_TRUNCATED;
	if (len > total)
		return S2S_ERR_INCONSISTENT;

	if (!s2s_id_valid_len((const char *)buf + S2S_PACKAGE_FIXED, a) ||
	    !s2s_id_valid_len((const char *)buf + S2S_PACKAGE_FIXED + a, b))
		return S2S_ERR_FORMAT;

	out->version = buf[OFF_VERSION];
	out->profile = (enum s2s_profile)buf[OFF_PROFILE];
	out->session = load_be64(buf + OFF_SESSION);
	out->seq = seq;
	out->sender = (const char *)buf + S2S_PACKAGE_FIXED;
	out->sender_len = a;
	out->receiver = out->sender + a;
	out->receiver_len = b;
	out->msg = buf + hdr;
	out->msg_len = m;
	out->image = buf + hdr + m;
	out->image_len = n;
	out->header = buf;
	out->header_len = hdr;
	return S2S_OK;
}

/*
 * Write the header of p into hdr (room for HEADER_MAX bytes) with the
 * image length field set to image_len; *hdr_len receives its length.
 * Checks everything parse would, except the limits.
 */
static enum s2s_err
header_build(const struct s2s_package *p, size_t image_len, uint8_t *hdr,
	     size_t *hdr_len)
{
	if (p->version != S2S_PACKAGE_VERSION)
		return S2S_ERR_VERSION;
	if (!profile_known((unsigned)p->profile))
		return S2S_ERR_PROFILE;
	if (!p->sender || !p->receiver ||
	    !s2s_id_valid_len(p->sender, p->sender_len) ||
	    !s2s_id_valid_len(p->receiver, p->receiver_len))
		return S2S_ERR_FORMAT;
	if (p->seq == 0)
		return S2S_ERR_INCONSISTENT;
	if (p->msg_len > UINT32_MAX || image_len > UINT32_MAX)
		return S2S_ERR_TOO_BIG;

	memcpy(hdr + OFF_MAGIC, S2S_PACKAGE_MAGIC, 4);
	hdr[OFF_VERSION] = p->version;
	hdr[OFF_PROFILE] = (uint8_t)p->profile;
	hdr[OFF_SENDER_LEN] = (uint8_t)p->sender_len;
	hdr[OFF_RECEIVER_LEN] = (uint8_t)p->receiver_len;
	store_be64(hdr + OFF_SESSION, p->session);
	store_be64(hdr + OFF_SEQ, p->seq);
	store_be32(hdr + OFF_MSG_LEN, (uint32_t)p->msg_len);
	store_be32(hdr + OFF_IMAGE_LEN, (uint32_t)image_len);
	memcpy(hdr + S2S_PACKAGE_FIXED, p->sender, p->sender_len);
	memcpy(hdr + S2S_PACKAGE_FIXED + p->sender_len, p->receiver,
	       p->receiver_len);
	*hdr_len = S2S_PACKAGE_FIXED + p->sender_len + p->receiver_len;
	return S2S_OK;
}

/* Header, message and image into one malloc()ed buffer. */
static enum s2s_err
envelope_write(const uint8_t *hdr, size_t hdr_len, const uint8_t *msg,
	       size_t msg_len, const uint8_t *image, size_t image_len,
	       uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	size_t total;

	if (msg_len > SIZE_MAX - hdr_len ||
	    image_len > SIZE_MAX - hdr_len - msg_len)
		return S2S_ERR_TOO_BIG;
	total = hdr_len + msg_len + image_len;
	buf = malloc(total);
	if (!buf)
		return S2S_ERR_NOMEM;
	memcpy(buf, hdr, hdr_len);
	if (msg_len)
		memcpy(buf + hdr_len, msg, msg_len);
	memcpy(buf + hdr_len + msg_len, image, image_len);
	*out = buf;
	*out_len = total;
	return S2S_OK;
}

enum s2s_err
s2s_package_encode(const struct s2s_package *p, uint8_t **out,
		   size_t *out_len)
{
	uint8_t hdr[HEADER_MAX];
	size_t hdr_len;
	enum s2s_err err;

	if (!p || !out || !out_len || (!p->msg && p->msg_len > 0) ||
	    (!p->image && p->image_len > 0))
		return S2S_ERR_INVAL;
	if (p->image_len == 0)
		return S2S_ERR_FORMAT;
	err = header_build(p, p->image_len, hdr, &hdr_len);
	if (err)
		return err;
	return envelope_write(hdr, hdr_len, p->msg, p->msg_len, p->image,
			      p->image_len, out, out_len);
}

/*
 * Ratchet a copy of the chain and commit it only on success, so that a
 * failing s2s_chain_advance() can never leave the chain half-updated.
 */
static enum s2s_err
chain_commit(struct s2s_chain *c, uint32_t rt)
{
	struct s2s_chain next = *c;
	enum s2s_err err;

	err = s2s_chain_advance(&next, rt);
	if (err == S2S_OK)
		*c = next;
	S2S_WIPE(next);
	return err;
}

/* One pre-encoded cover of a cache (seal at level 0). */
struct s2s_package_cover {
	struct s2s_image img;          /* copy of the cover */
	uint8_t *map;                  /* its parity map */
	struct s2s_image_patch *patch; /* its level-0 PNG */
	uint8_t syn[PAYLOAD_MAX];      /* its syndromes under cache->sel ... */
	size_t syn_n;                  /* ... for this many bytes */
};

static void
cover_destroy(struct s2s_package_cover *cv)
{
	if (!cv)
		return;
	s2s_image_free(&cv->img);
	free(cv->map);
	s2s_image_patch_destroy(cv->patch);
	s2s_memzero(cv, sizeof(*cv));
	free(cv);
}

static void
cache_sel_clear(struct s2s_package_cache *cache)
{
	/* The covers' syndromes belong to the selection too. */
	for (size_t i = 0; i < S2S_PACKAGE_CACHE_COVERS; i++)
		if (cache->covers[i])
			cache->covers[i]->syn_n = 0;
	s2s_stego_sel_destroy(cache->sel);
	cache->sel = NULL;
	cache->width = cache->height = 0;
	cache->n = 0;
	s2s_memzero(cache->key, sizeof(cache->key));
}

void
s2s_package_cache_clear(struct s2s_package_cache *cache)
{
	if (!cache)
		return;
	cache_sel_clear(cache);
	for (size_t i = 0; i < S2S_PACKAGE_CACHE_COVERS; i++)
		cover_destroy(cache->covers[i]);
	s2s_tag_ctx_free(cache->tag);
	s2s_memzero(cache, sizeof(*cache));
}

/*
 * The cache's hardened-tag context (allocated on first use); NULL without
 * a cache, for the paper profile, or when out of memory (the plain forms
 * then give the same tags).
 */
static struct s2s_tag_ctx *
cache_tag(struct s2s_package_cache *cache, const struct s2s_chain *c)
{
	if (!cache || c->profile != S2S_PROFILE_HARDENED)
		return NULL;
	if (!cache->tag)
		cache->tag = s2s_tag_ctx_new();
	return cache->tag;
}

/*
 * The selection for c's stego key, a width x height image and n payload
 * bytes, from the cache when it matches, else rebuilt into it.  *sel is
 * NULL when there is no cache: the caller then uses the one-shot forms.
 */
static enum s2s_err
cache_sel(struct s2s_package_cache *cache, const struct s2s_chain *c,
	  uint32_t width, uint32_t height, size_t n,
	  const struct s2s_stego_sel **sel)
{
	size_t cap = s2s_stego_capacity(width, height);
	enum s2s_err err;

	*sel = NULL;
	if (!cache)
		return S2S_OK;
	if (!cache->sel || cache->width != width ||
	    cache->height != height || cache->n < n ||
	    !s2s_ct_equal(cache->key, c->stego_key, S2S_STEGO_KEY_LEN)) {
		/* Room for the longer payload, so both profiles can share. */
		if (cap > PAYLOAD_MAX)
			cap = PAYLOAD_MAX;
		n = n > cap ? n : cap;
		cache_sel_clear(cache);
		err = s2s_stego_sel_create(c->stego_key, width, height, n,
					   &cache->sel);
		if (err)
			return err;
		cache->width = width;
		cache->height = height;
		cache->n = n;
		memcpy(cache->key, c->stego_key, S2S_STEGO_KEY_LEN);
	}
	*sel = cache->sel;
	return S2S_OK;
}

/* Rows of a contiguous image, for s2s_stego_parity_map. */
static enum s2s_err
image_map(const struct s2s_image *img, uint8_t *map)
{
	const uint8_t **rows = malloc(img->height * sizeof(*rows));

	if (!rows)
		return S2S_ERR_NOMEM;
	for (uint32_t y = 0; y < img->height; y++)
		rows[y] = img->pixels + (size_t)y * img->width;
	s2s_stego_parity_map(rows, img->width, img->height, map);
	free(rows);
	return S2S_OK;
}

/*
 * The cache's entry for cover: found (same size and pixels), or built in
 * the oldest slot (copy, parity map, PNG patch).
 */
static enum s2s_err
cache_cover(struct s2s_package_cache *cache, const struct s2s_image *cover,
	    struct s2s_package_cover **out)
{
	size_t n = (size_t)cover->width * cover->height;
	struct s2s_package_cover *cv;
	unsigned slot;
	enum s2s_err err;

	for (size_t i = 0; i < S2S_PACKAGE_CACHE_COVERS; i++) {
		cv = cache->covers[i];
		if (cv && cv->img.width == cover->width &&
		    cv->img.height == cover->height &&
		    !memcmp(cv->img.pixels, cover->pixels, n)) {
			*out = cv;
			return S2S_OK;
		}
	}
	cv = calloc(1, sizeof(*cv));
	if (!cv)
		return S2S_ERR_NOMEM;
	if ((err = s2s_image_alloc(&cv->img, cover->width, cover->height, 0)))
		goto fail;
	memcpy(cv->img.pixels, cover->pixels, n);
	cv->map = malloc((size_t)(cover->width / 2) * (cover->height / 2) + 1);
	if (!cv->map) {
		err = S2S_ERR_NOMEM;
		goto fail;
	}
	if ((err = image_map(cover, cv->map)) ||
	    (err = s2s_image_patch_create(cover, &cv->patch)))
		goto fail;
	slot = cache->next_cover++ % S2S_PACKAGE_CACHE_COVERS;
	cover_destroy(cache->covers[slot]);
	cache->covers[slot] = cv;
	*out = cv;
	return S2S_OK;
fail:
	cover_destroy(cv);
	return err;
}

/*
 * Seal at level 0 by patching the cache's pre-encoded cover.  The tag
 * header hdr (image length still zero) gets its image length here.
 * S2S_ERR_NOT_FOUND: this cover cannot be patched (the caller encodes).
 */
static enum s2s_err
seal_patched(struct s2s_chain *c, struct s2s_package_cache *cache,
	     const struct s2s_image *cover, const uint8_t *payload, size_t n,
	     uint8_t *hdr, size_t hdr_len, const uint8_t *msg, size_t msg_len,
	     uint8_t **out, size_t *out_len, struct s2s_image *stego_out)
{
	struct s2s_image_change plan[2 * PAYLOAD_MAX];
	const struct s2s_stego_sel *sel;
	struct s2s_package_cover *cv;
	size_t count = 0, png_len, total;
	uint8_t *buf;
	enum s2s_err err;

	if (cache_cover(cache, cover, &cv) != S2S_OK)
		return S2S_ERR_NOT_FOUND;
	if ((err = cache_sel(cache, c, cover->width, cover->height, n, &sel)))
		return err;
	if (cv->syn_n < n) {
		if ((err = s2s_stego_extract_map(sel, cv->map, cv->syn, n)))
			return err;
		cv->syn_n = n;
	}
	if ((err = s2s_stego_plan_syn(sel, &cv->img, cv->syn, payload, n,
				      plan, &count)))
		return err;
	png_len = s2s_image_patch_len(cv->patch);
	if (png_len > UINT32_MAX || msg_len > SIZE_MAX - hdr_len - png_len)
		return S2S_ERR_TOO_BIG;
	store_be32(hdr + OFF_IMAGE_LEN, (uint32_t)png_len);
	total = hdr_len + msg_len + png_len;
	buf = malloc(total);
	if (!buf)
		return S2S_ERR_NOMEM;
	memcpy(buf, hdr, hdr_len);
	if (msg_len)
		memcpy(buf + hdr_len, msg, msg_len);
	err = s2s_image_patch_write(cv->patch, plan, count,
				    buf + hdr_len + msg_len);
	if (err == S2S_OK && stego_out) {
		err = s2s_image_alloc(stego_out, cover->width, cover->height,
				      0);
		if (err == S2S_OK) {
			memcpy(stego_out->pixels, cover->pixels,
			       (size_t)cover->width * cover->height);
			for (size_t i = 0; i < count; i++)
				stego_out->pixels[plan[i].pos] = plan[i].val;
		}
	}
	if (err == S2S_OK)
		err = chain_commit(c, load_be32(payload + n - 4));
	if (err) {
		if (stego_out)
			s2s_image_free(stego_out);
		free(buf);
		S2S_WIPE(plan);
		return err;
	}
	S2S_WIPE(plan);
	*out = buf;
	*out_len = total;
	return S2S_OK;
}

enum s2s_err
s2s_package_seal(struct s2s_chain *c, const char *sender,
		 const char *receiver, const uint8_t *msg, size_t msg_len,
		 const struct s2s_image *cover, int png_level,
		 uint8_t **out, size_t *out_len,
		 struct s2s_image *stego_out)
{
	return s2s_package_seal_cached(c, NULL, sender, receiver, msg,
				       msg_len, cover, png_level, out,
				       out_len, stego_out);
}

enum s2s_err
s2s_package_seal_cached(struct s2s_chain *c,
			struct s2s_package_cache *cache, const char *sender,
			const char *receiver, const uint8_t *msg,
			size_t msg_len, const struct s2s_image *cover,
			int png_level, uint8_t **out, size_t *out_len,
			struct s2s_image *stego_out)
{
	const struct s2s_stego_sel *sel;
	struct s2s_package p = { 0 };
	struct s2s_image stego = { 0 };
	uint8_t hdr[HEADER_MAX];
	uint8_t payload[PAYLOAD_MAX];
	uint8_t *png = NULL, *buf = NULL;
	size_t hdr_len, tag_len, png_len, buf_len;
	uint32_t rt = 0;
	enum s2s_err err;

	if (!c || !sender || !receiver || (!msg && msg_len > 0) || !cover ||
	    !cover->pixels || cover->width == 0 || cover->height == 0 ||
	    png_level < 0 || png_level > 9 || !out || !out_len)
		return S2S_ERR_INVAL;
	if (!profile_known((unsigned)c->profile))
		return S2S_ERR_PROFILE;
	if (c->next_seq == 0)
		return S2S_ERR_STATE;
	tag_len = s2s_tag_len(c->profile);
	if (s2s_stego_capacity(cover->width, cover->height) < tag_len + 4)
		return S2S_ERR_COVER;

	p.version = S2S_PACKAGE_VERSION;
	p.profile = c->profile;
	p.session = c->session;
	p.seq = c->next_seq;
	p.sender = sender;
	p.sender_len = strnlen(sender, S2S_ID_MAX + 1);
	p.receiver = receiver;
	p.receiver_len = strnlen(receiver, S2S_ID_MAX + 1);
	p.msg = msg;
	p.msg_len = msg_len;

	/* The tag header: the image length is not known yet, and is zero
	 * in the header the tag covers (PROTOCOL.md, "The tag header"). */
	err = header_build(&p, 0, hdr, &hdr_len);
	if (err)
		return err;

	err = s2s_random(payload, 4);
	if (err)
		goto out_wipe;
	rt = load_be32(payload);
	err = s2s_chain_tag_ctx(c, cache_tag(cache, c), hdr, hdr_len, msg,
				msg_len, rt, payload);
	if (err)
		goto out_wipe;
	store_be32(payload + tag_len, rt);

	if (cache && png_level == 0) {
		err = seal_patched(c, cache, cover, payload, tag_len + 4,
				   hdr, hdr_len, msg, msg_len, out, out_len,
				   stego_out);
		if (err != S2S_ERR_NOT_FOUND)
			goto out_wipe;
	}
	err = s2s_image_alloc(&stego, cover->width, cover->height, 0);
	if (err)
		goto out_wipe;
	memcpy(stego.pixels, cover->pixels,
	       (size_t)cover->width * cover->height);
	err = cache_sel(cache, c, cover->width, cover->height, tag_len + 4,
			&sel);
	if (err)
		goto out_image;
	if (sel)
		err = s2s_stego_embed_sel(sel, &stego, payload, tag_len + 4,
					  NULL);
	else
		err = s2s_stego_embed(&stego, c->stego_key, payload,
				      tag_len + 4, NULL);
	if (err)
		goto out_image;
	err = s2s_image_encode_png(&stego, png_level, &png, &png_len);
	if (err)
		goto out_image;
	if (png_len > UINT32_MAX) {
		err = S2S_ERR_TOO_BIG;
		goto out_png;
	}
	store_be32(hdr + OFF_IMAGE_LEN, (uint32_t)png_len);
	err = envelope_write(hdr, hdr_len, msg, msg_len, png, png_len, &buf,
			     &buf_len);
	if (err)
		goto out_png;
	err = chain_commit(c, rt);
	if (err) {
		free(buf);
		goto out_png;
	}

	*out = buf;
	*out_len = buf_len;
	if (stego_out) {
		*stego_out = stego;
		stego.pixels = NULL;
	}
out_png:
	free(png);
out_image:
	s2s_image_free(&stego);
out_wipe:
	S2S_WIPE(payload);
	S2S_WIPE(rt);
	return err;
}

enum s2s_err
s2s_package_open(struct s2s_chain *c, const struct s2s_package *p,
		 const struct s2s_package_limits *limits, uint32_t *rt_out)
{
	return s2s_package_open_cached(c, NULL, p, limits, rt_out);
}

/* The checks open does before it reads the image. */
static enum s2s_err
open_precheck(const struct s2s_chain *c, const struct s2s_package *p,
	      const struct s2s_package_limits *limits,
	      struct s2s_package_limits *lim)
{
	if (!c || !p || !p->header || !p->image || (!p->msg && p->msg_len) ||
	    p->sender_len == 0 || p->sender_len > S2S_ID_MAX ||
	    p->receiver_len == 0 || p->receiver_len > S2S_ID_MAX ||
	    p->header_len != S2S_PACKAGE_FIXED + p->sender_len +
			     p->receiver_len)
		return S2S_ERR_INVAL;
	limits_resolve(limits, lim);

	/* Cheap checks first: the gate drops most bad packages here. */
	if (p->profile != c->profile || !profile_known((unsigned)p->profile))
		return S2S_ERR_PROFILE;
	if (p->session != c->session)
		return S2S_ERR_SESSION;
	if (p->seq < c->next_seq)
		return S2S_ERR_REPLAY;
	if (p->seq > c->next_seq)
		return S2S_ERR_GAP;
	if (p->msg_len > lim->max_msg || p->image_len > lim->max_image)
		return S2S_ERR_TOO_BIG;
	/* The wire format carries PNG only (the decoder would take PGM). */
	if (p->image_len < sizeof(png_magic) ||
	    memcmp(p->image, png_magic, sizeof(png_magic)))
		return S2S_ERR_IMAGE;
	return S2S_OK;
}

/* Verify the extracted payload and advance the chain. */
static enum s2s_err
open_finish(struct s2s_chain *c, struct s2s_package_cache *cache,
	    const struct s2s_package *p, const uint8_t *payload,
	    size_t tag_len, uint32_t *rt_out)
{
	uint8_t hdr[HEADER_MAX];
	uint32_t rt = load_be32(payload + tag_len);
	enum s2s_err err;

	memcpy(hdr, p->header, p->header_len);
	memset(hdr + OFF_IMAGE_LEN, 0, 4);
	err = s2s_chain_verify_ctx(c, cache_tag(cache, c), hdr, p->header_len,
				   p->msg, p->msg_len, rt, payload, tag_len);
	if (err == S2S_OK)
		err = chain_commit(c, rt);
	if (err == S2S_OK && rt_out)
		*rt_out = rt;
	S2S_WIPE(rt);
	return err;
}

/* A decoder's verdict on an image the envelope declared complete. */
static enum s2s_err
image_verdict(enum s2s_err err)
{
	/* The envelope was complete, so a PNG cut short is a bad image. */
	return err == S2S_ERR_TRUNCATED || err == S2S_ERR_FORMAT ?
	       S2S_ERR_IMAGE : err;
}

enum s2s_err
s2s_package_open_cached(struct s2s_chain *c,
			struct s2s_package_cache *cache,
			const struct s2s_package *p,
			const struct s2s_package_limits *limits,
			uint32_t *rt_out)
{
	struct s2s_package_limits lim;
	struct s2s_image_rows rows = { 0 };
	struct s2s_stego_sel *own_sel = NULL;
	const struct s2s_stego_sel *sel = NULL;
	uint8_t payload[PAYLOAD_MAX];
	uint8_t small_map[64 * 64];
	uint8_t *map = small_map;
	size_t tag_len, map_len;
	enum s2s_err err;

	if ((err = open_precheck(c, p, limits, &lim)))
		return err;
	err = image_verdict(s2s_image_png_gray_rows(p->image, p->image_len,
						    &lim.image, &rows, NULL));
	if (err)
		goto out;
	tag_len = s2s_tag_len(c->profile);
	if (s2s_stego_capacity(rows.width, rows.height) < tag_len + 4) {
		err = S2S_ERR_FORMAT;
		goto out;
	}
	if (cache) {
		err = cache_sel(cache, c, rows.width, rows.height, tag_len + 4,
				&sel);
	} else {
		err = s2s_stego_sel_create(c->stego_key, rows.width,
					   rows.height, tag_len + 4, &own_sel);
		sel = own_sel;
	}
	if (err)
		goto out;
	map_len = (size_t)(rows.width / 2) * (rows.height / 2);
	if (map_len > sizeof(small_map)) {
		map = malloc(map_len);
		if (!map) {
			err = S2S_ERR_NOMEM;
			goto out;
		}
	}
	s2s_stego_parity_map(rows.rows, rows.width, rows.height, map);
	if ((err = s2s_stego_extract_map(sel, map, payload, tag_len + 4)))
		goto out;
	err = open_finish(c, cache, p, payload, tag_len, rt_out);
out:
	if (map != small_map)
		free(map);
	s2s_image_rows_free(&rows);
	s2s_stego_sel_destroy(own_sel);
	S2S_WIPE(payload);
	return err;
}

enum s2s_err
s2s_package_open_full(struct s2s_chain *c, struct s2s_package_cache *cache,
		      const struct s2s_package *p,
		      const struct s2s_package_limits *limits,
		      uint32_t *rt_out)
{
	const struct s2s_stego_sel *sel = NULL;
	struct s2s_package_limits lim;
	struct s2s_image img = { 0 };
	uint8_t payload[PAYLOAD_MAX];
	size_t tag_len;
	enum s2s_err err;

	if ((err = open_precheck(c, p, limits, &lim)))
		return err;
	err = image_verdict(s2s_image_decode(p->image, p->image_len,
					     &lim.image, &img));
	if (err)
		return err;
	/* The wire carries 8-bit gray, non-interlaced (IHDR is first). */
	if (p->image[24] != 8 || p->image[25] != 0 || p->image[28] != 0) {
		err = S2S_ERR_IMAGE;
		goto out;
	}
	tag_len = s2s_tag_len(c->profile);
	if (s2s_stego_capacity(img.width, img.height) < tag_len + 4) {
		err = S2S_ERR_FORMAT;
		goto out;
	}
	if ((err = cache_sel(cache, c, img.width, img.height, tag_len + 4,
			     &sel)))
		goto out;
	err = sel ? s2s_stego_extract_sel(sel, &img, payload, tag_len + 4)
		  : s2s_stego_extract(&img, c->stego_key, payload, tag_len + 4);
	if (err)
		goto out;
	err = open_finish(c, cache, p, payload, tag_len, rt_out);
out:
	s2s_image_free(&img);
	S2S_WIPE(payload);
	return err;
}
