/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * make_seeds.c - write the seed corpora of the fuzz targets:
 *
 *   make_seeds DIR      (DIR is tests/fuzz/corpus; one subfolder per target)
 *
 * Real, valid inputs made with the library itself (sealed packages on the
 * fixed chains, images in every PNG colour type and PGM variant, every
 * control message sealed to the fixed CS key, connect tokens, configs and
 * admin requests) and a few edge cases each.  The output is not
 * byte-for-byte reproducible (R^T, ECIES ephemeral keys and ECDSA nonces
 * are random); the committed corpus is one run of it.  Regenerate after a
 * format change and commit the result.
 */
#include <errno.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "s2s/package.h"
#include "s2s/proto.h"
#include "s2s/stego.h"

static const char *root;
static struct s2s_key *cs_key, *dev_key;

#define CHECK(cond) FUZZ_CHECK(cond)

static void
mkdir_p(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(EXIT_FAILURE);
	}
}

/* Write dir/name under root. */
static void
put(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(data, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void
put_str(const char *dir, const char *name, const char *s)
{
	put(dir, name, s, strlen(s));
}

/* Prefix bytes and data into one seed. */
static void
put_prefixed(const char *dir, const char *name, const uint8_t *pre,
	     size_t pre_len, const uint8_t *data, size_t len)
{
	uint8_t *buf = malloc(pre_len + len + 1);

	CHECK(buf != NULL);
	memcpy(buf, pre, pre_len);
	if (len)
		memcpy(buf + pre_len, data, len);
	put(dir, name, buf, pre_len + len);
	free(buf);
}

/* ---- Images --------------------------------------------------------------- */

struct mem {
	uint8_t *p;
	size_t len;
};

static void
mem_write(png_structp png, png_bytep data, size_t n)
{
	struct mem *m = png_get_io_ptr(png);
	uint8_t *np = realloc(m->p, m->len + n);

	CHECK(np != NULL);
	memcpy(np + m->len, data, n);
	m->p = np;
	m->len += n;
}

static void
mem_flush(png_structp png)
{
	(void)png;
}

/*
 * A w x h PNG of colour type ctype and bit depth depth (any combination
 * PNG allows), with samples from a fixed pattern; interlaced if asked,
 * with a gAMA chunk (which the reader must ignore) if gama.
 */
static struct mem
png_make(uint32_t w, uint32_t h, int ctype, int depth, bool interlace,
	 bool gama, bool trns)
{
	struct mem m = { 0 };
	png_structp png;
	png_infop info;
	int ch = ctype == PNG_COLOR_TYPE_GRAY ? 1
		 : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
		 : ctype == PNG_COLOR_TYPE_RGB ? 3
		 : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
	size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
	uint8_t *row = calloc(1, rowbytes);
	png_color pal[16];

	CHECK(row != NULL);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	CHECK(png != NULL);
	info = png_create_info_struct(png);
	CHECK(info != NULL);
	if (setjmp(png_jmpbuf(png)))
		CHECK(!"libpng write failed");
	png_set_write_fn(png, &m, mem_write, mem_flush);
	png_set_IHDR(png, info, w, h, depth, ctype,
		     interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (ctype == PNG_COLOR_TYPE_PALETTE) {
		for (int i = 0; i < 16; i++) {
			pal[i].red = (png_byte)(i * 16);
			pal[i].green = (png_byte)(255 - i * 16);
			pal[i].blue = (png_byte)(i * 7);
		}
		png_set_PLTE(png, info, pal, 1 << (depth < 4 ? depth : 4));
		if (trns) {
			png_byte alpha[2] = { 0, 128 };

			png_set_tRNS(png, info, alpha, 2, NULL);
		}
	} else if (trns && ctype == PNG_COLOR_TYPE_GRAY) {
		png_color_16 t = { 0 };

		png_set_tRNS(png, info, NULL, 0, &t);
	}
	if (gama)
		png_set_gAMA(png, info, 1.0 / 2.2);
	png_write_info(png, info);
	for (int pass = 0; pass < (interlace ? 7 : 1); pass++) {
		for (uint32_t y = 0; y < h; y++) {
			for (size_t i = 0; i < rowbytes; i++)
				row[i] = (uint8_t)(i * 37 + y * 11 + 5);
			if (ctype == PNG_COLOR_TYPE_PALETTE && depth == 8)
				for (size_t i = 0; i < rowbytes; i++)
					row[i] &= 15;
			png_write_row(png, row);
		}
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(row);
	return m;
}

/* Binary PGM of img with the given maxval (values are rescaled). */
static struct mem
pgm_make(const struct s2s_image *img, unsigned maxval, const char *comment)
{
	struct mem m = { 0 };
	size_t n = (size_t)img->width * img->height;
	size_t bps = maxval > 255 ? 2 : 1;
	char hdr[128];
	int hl;

	hl = snprintf(hdr, sizeof(hdr), "P5\n%s%u %u\n%u\n",
		      comment ? comment : "", img->width, img->height, maxval);
	m.p = malloc((size_t)hl + n * bps);
	CHECK(m.p != NULL);
	memcpy(m.p, hdr, (size_t)hl);
	for (size_t i = 0; i < n; i++) {
		unsigned v = (img->pixels[i] * maxval + 127) / 255;

		if (bps == 2) {
			m.p[hl + 2 * i] = (uint8_t)(v >> 8);
			m.p[hl + 2 * i + 1] = (uint8_t)v;
		} else {
			m.p[hl + i] = (uint8_t)v;
		}
	}
	m.len = (size_t)hl + n * bps;
	return m;
}

static struct mem
png_of(const struct s2s_image *img, int level)
{
	struct mem m = { 0 };

	CHECK(s2s_image_encode_png(img, level, &m.p, &m.len) == S2S_OK);
	return m;
}

static void
image_seeds(void)
{
	static const struct {
		const char *name;
		int ctype, depth;
		bool interlace, gama, trns;
	} kinds[] = {
		{ "gray1", PNG_COLOR_TYPE_GRAY, 1, false, false, false },
		{ "gray2", PNG_COLOR_TYPE_GRAY, 2, false, false, false },
		{ "gray4-trns", PNG_COLOR_TYPE_GRAY, 4, false, false, true },
		{ "gray8-gama", PNG_COLOR_TYPE_GRAY, 8, false, true, false },
		{ "gray8-adam7", PNG_COLOR_TYPE_GRAY, 8, true, false, false },
		{ "gray16", PNG_COLOR_TYPE_GRAY, 16, false, false, false },
		{ "graya8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false, false },
		{ "graya16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, false, false },
		{ "rgb8", PNG_COLOR_TYPE_RGB, 8, false, false, false },
		{ "rgb16-adam7", PNG_COLOR_TYPE_RGB, 16, true, false, false },
		{ "rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, true, false },
		{ "rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, false, false },
		{ "pal1", PNG_COLOR_TYPE_PALETTE, 1, false, false, false },
		{ "pal4-trns", PNG_COLOR_TYPE_PALETTE, 4, false, false, true },
		{ "pal8", PNG_COLOR_TYPE_PALETTE, 8, true, false, false },
	};
	struct s2s_image img, one;
	struct mem m;
	char name[64];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		m = png_make(13, 7, kinds[i].ctype, kinds[i].depth,
			     kinds[i].interlace, kinds[i].gama, kinds[i].trns);
		snprintf(name, sizeof(name), "png-%s-13x7.png", kinds[i].name);
		put("image", name, m.p, m.len);
		free(m.p);
	}
	fuzz_cover(&img, 32, 24);
	m = png_of(&img, 0);
	put("image", "png-ours-32x24-l0.png", m.p, m.len);
	/* Edge cases of a real file: cut short, and one flipped CRC byte. */
	put("image", "png-truncated.png", m.p, m.len / 2);
	m.p[40] ^= 0x55;
	put("image", "png-bad-crc.png", m.p, m.len);
	free(m.p);
	m = png_of(&img, 9);
	put("image", "png-ours-32x24-l9.png", m.p, m.len);
	free(m.p);
	m = pgm_make(&img, 255, NULL);
	put("image", "pgm-255-32x24.pgm", m.p, m.len);
	free(m.p);
	m = pgm_make(&img, 65535, "# sixteen bits\n");
	put("image", "pgm-65535-comment.pgm", m.p, m.len);
	free(m.p);
	m = pgm_make(&img, 1000, NULL);
	put("image", "pgm-1000.pgm", m.p, m.len);
	free(m.p);
	m = pgm_make(&img, 15, NULL);
	put("image", "pgm-15.pgm", m.p, m.len);
	free(m.p);
	s2s_image_free(&img);
	CHECK(s2s_image_alloc(&one, 1, 1, 200) == S2S_OK);
	m = png_of(&one, 1);
	put("image", "png-1x1.png", m.p, m.len);
	free(m.p);
	s2s_image_free(&one);
	put_str("image", "pgm-header-only.pgm", "P5\n4 4\n255\n");
	put_str("image", "pgm-huge.pgm", "P5 100000 100000 255\n");
	put_str("image", "pgm-zero.pgm", "P5 0 3 255\n");
	put("image", "png-sig-only.png", "\x89PNG\r\n\x1a\n", 8);
	put("image", "empty", "", 0);
}

/* ---- Stego ---------------------------------------------------------------- */

static void
stego_seeds(void)
{
	struct s2s_image img;
	uint8_t key[S2S_STEGO_KEY_LEN], payload[16];
	uint8_t pre[2];
	struct mem m;

	fuzz_stego_key(key);
	/* A cover carrying a payload under the target's key. */
	fuzz_cover(&img, 128, 128);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 17 + 1);
	CHECK(s2s_stego_embed(&img, key, payload, sizeof(payload), NULL) ==
	      S2S_OK);
	m = png_of(&img, 1);
	pre[0] = 15;                    /* n = 16: the full capacity */
	pre[1] = 0x42;
	put_prefixed("stego", "png-128x128-n16", pre, 2, m.p, m.len);
	pre[0] = 3;
	put_prefixed("stego", "png-128x128-n4", pre, 2, m.p, m.len);
	pre[0] = 31;                    /* n = 32: over capacity */
	put_prefixed("stego", "png-128x128-n32", pre, 2, m.p, m.len);
	free(m.p);
	m = pgm_make(&img, 255, NULL);
	pre[0] = 7;
	put_prefixed("stego", "pgm-128x128-n8", pre, 2, m.p, m.len);
	free(m.p);
	s2s_image_free(&img);

	/* Saturated covers: the +1/-1 choice and the fallback. */
	CHECK(s2s_image_alloc(&img, 64, 64, 255) == S2S_OK);
	m = png_of(&img, 9);
	pre[0] = 3;
	pre[1] = 0x99;
	put_prefixed("stego", "png-64x64-white-n4", pre, 2, m.p, m.len);
	free(m.p);
	memset(img.pixels, 0, 64 * 64);
	m = png_of(&img, 9);
	put_prefixed("stego", "png-64x64-black-n4", pre, 2, m.p, m.len);
	free(m.p);
	s2s_image_free(&img);
	fuzz_cover(&img, 45, 91);       /* odd sides: capacity 3 */
	m = png_of(&img, 0);
	pre[0] = 2;
	put_prefixed("stego", "png-45x91-odd-n3", pre, 2, m.p, m.len);
	free(m.p);
	s2s_image_free(&img);
}

/* ---- Packages ------------------------------------------------------------- */

static void
package_seeds(void)
{
	static const char *const msgs[] = {
		"hello", "", "temperature=21.5;humidity=40",
	};
	static const enum s2s_profile profs[] = {
		S2S_PROFILE_PAPER, S2S_PROFILE_HARDENED,
	};
	struct s2s_image cover, stego, wide;
	char name[64];

	fuzz_cover(&cover, 128, 128);
	fuzz_cover(&wide, 256, 64);
	for (size_t pi = 0; pi < 2; pi++) {
		const char *pn = s2s_profile_name(profs[pi]);

		for (size_t mi = 0; mi < 3; mi++) {
			struct s2s_chain c;
			uint8_t *buf = NULL;
			size_t len = 0;
			int level = (int)mi * 4;        /* 0, 4, 8 */

			fuzz_chain(&c, profs[pi]);
			CHECK(s2s_package_seal(&c, FUZZ_SENDER, FUZZ_RECEIVER,
					       (const uint8_t *)msgs[mi],
					       strlen(msgs[mi]), &cover, level,
					       &buf, &len, NULL) == S2S_OK);
			snprintf(name, sizeof(name), "%s-msg%zu-l%d.pkg", pn,
				 mi, level);
			put("package", name, buf, len);
			free(buf);
			/* The second message of the chain (seq 2). */
			CHECK(s2s_package_seal(&c, FUZZ_SENDER, FUZZ_RECEIVER,
					       (const uint8_t *)"again", 5,
					       &cover, 1, &buf, &len, NULL) ==
			      S2S_OK);
			snprintf(name, sizeof(name), "%s-msg%zu-seq2.pkg", pn,
				 mi);
			put("package", name, buf, len);
			free(buf);
			s2s_chain_wipe(&c);
		}
	}

	/* A non-square cover, and the same package with a PGM image. */
	for (size_t pi = 0; pi < 2; pi++) {
		struct s2s_chain c;
		struct s2s_package p;
		uint8_t *buf = NULL, *re = NULL;
		size_t len = 0, re_len = 0;
		struct mem pgm;

		fuzz_chain(&c, profs[pi]);
		CHECK(s2s_package_seal(&c, FUZZ_SENDER, FUZZ_RECEIVER,
				       (const uint8_t *)"wide", 4, &wide, 1,
				       &buf, &len, &stego) == S2S_OK);
		snprintf(name, sizeof(name), "%s-256x64.pkg",
			 s2s_profile_name(profs[pi]));
		put("package", name, buf, len);
		CHECK(s2s_package_parse(buf, len, NULL, &p) == S2S_OK);
		pgm = pgm_make(&stego, 255, NULL);
		p.image = pgm.p;
		p.image_len = pgm.len;
		CHECK(s2s_package_encode(&p, &re, &re_len) == S2S_OK);
		snprintf(name, sizeof(name), "%s-256x64-pgm.pkg",
			 s2s_profile_name(profs[pi]));
		put("package", name, re, re_len);

		/* Edge cases of the envelope, from this package. */
		if (pi == 0) {
			uint8_t *e = malloc(len + 1);

			CHECK(e != NULL);
			put("package", "edge-truncated-header.pkg", buf, 20);
			put("package", "edge-truncated-image.pkg", buf,
			    len - 1);
			memcpy(e, buf, len);
			e[len] = 0;
			put("package", "edge-trailing-byte.pkg", e, len + 1);
			memcpy(e, buf, len);
			e[4] = 2;
			put("package", "edge-version-2.pkg", e, len);
			memcpy(e, buf, len);
			e[5] = 3;
			put("package", "edge-profile-3.pkg", e, len);
			memcpy(e, buf, len);
			memset(e + 16, 0, 8);
			put("package", "edge-seq-0.pkg", e, len);
			memcpy(e, buf, len);
			e[32] = '/';
			put("package", "edge-bad-sender.pkg", e, len);
			memcpy(e, buf, len);
			e[len - 30] ^= 0x01;
			put("package", "edge-flipped-image.pkg", e, len);
			memcpy(e, buf, len);
			e[32 + 9 + 10] ^= 0x20;         /* message byte */
			put("package", "edge-flipped-msg.pkg", e, len);
			free(e);
		}
		free(re);
		free(pgm.p);
		free(buf);
		s2s_image_free(&stego);
		s2s_chain_wipe(&c);
	}
	s2s_image_free(&cover);
	s2s_image_free(&wide);
}

/* ---- Control messages ----------------------------------------------------- */

static const uint8_t hs_bytes[] = "\x89PNG pretend signature";
static const uint8_t code_bytes[] = "enrol-1234";

static void
make_msg(struct s2s_msg *m, enum s2s_msg_type t)
{
	s2s_msg_init(m, t, 0x0102030405060708ull);
	strcpy(m->id, FUZZ_SENDER);
	strcpy(m->id_cs, FUZZ_CS_ID);
	strcpy(m->id_self, FUZZ_SENDER);
	strcpy(m->id_peer, FUZZ_RECEIVER);
	strcpy(m->id_sds, FUZZ_SENDER);
	strcpy(m->id_sdr, FUZZ_RECEIVER);
	strcpy(m->peer, FUZZ_RECEIVER);
	strcpy(m->sender, FUZZ_SENDER);
	CHECK(s2s_pair_id(FUZZ_SENDER, FUZZ_RECEIVER, m->pair) == S2S_OK);
	strcpy(m->reason, "shk mismatch");
	m->code = S2S_ERR_AUTH;
	m->about = S2S_MSG_NEG_SDS;
	m->session = FUZZ_SESSION;
	m->role = S2S_ROLE_SDS;
	m->profile = S2S_PROFILE_HARDENED;
	m->accept = 1;
	m->from_seq = 1;
	m->to_seq = 4;
	for (int i = 0; i < S2S_MSG_NONCE_LEN; i++)
		m->nonce[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < S2S_SKCS_LEN; i++) {
		m->skcs[i] = (uint8_t)(i * 3 + 1);
		m->blob[i] = (uint8_t)(i * 5 + 2);
	}
	m->sk_len = 32;
	m->shk_len = 32;
	for (int i = 0; i < 32; i++) {
		m->sk[i] = (uint8_t)(i + 9);
		m->shk[i] = (uint8_t)(i * 7 + 3);
	}
	m->code_bytes = code_bytes;
	m->code_len = sizeof(code_bytes) - 1;
	m->hs = hs_bytes;
	m->hs_len = sizeof(hs_bytes) - 1;
	s2s_key_public(cs_key, m->pub);
}

/* Index of t in fuzz_proto_sealed's type table, or -1. */
static int
sealed_index(enum s2s_msg_type t)
{
	static const enum s2s_msg_type types[] = {
		S2S_MSG_REGISTER, S2S_MSG_PAIRED, S2S_MSG_NEG_KEYS,
		S2S_MSG_NEG_SDS, S2S_MSG_NEG_FWD, S2S_MSG_NEG_SDR,
		S2S_MSG_NEG_DONE,
	};

	for (int i = 0; i < 7; i++)
		if (types[i] == t)
			return i;
	return -1;
}

static uint32_t
be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * The proto_sealed seed of an encoded message: open its ECIES part with
 * the CS key and write type index [|| L || clear] || plaintext.
 */
static void
sealed_seed(enum s2s_msg_type t, const uint8_t *buf, size_t len,
	    const char *name)
{
	size_t off = S2S_MSG_HDR_LEN, ct_len, clear_off = 0, clear_len = 0;
	uint8_t *pt, pre[2 + 256];
	size_t pt_len = 0, pre_len = 0;

	if (t == S2S_MSG_REGISTER) {
		off += S2S_P256_PUB_LEN;
		ct_len = be32_at(buf + off);
		off += 4;
	} else if (t == S2S_MSG_PAIRED) {
		/* status, pair (str8), peer (str8), profile, be32 */
		clear_off = off;
		off += 1;
		off += 1 + buf[off];
		off += 1 + buf[off];
		off += 1;
		clear_len = off - clear_off;
		ct_len = be32_at(buf + off);
		off += 4;
	} else {
		ct_len = len - off;
	}
	CHECK(off + ct_len <= len);
	pt = malloc(ct_len);
	CHECK(pt != NULL);
	CHECK(s2s_ecies_open(cs_key, buf + off, ct_len, pt, &pt_len) ==
	      S2S_OK);
	pre[pre_len++] = (uint8_t)sealed_index(t);
	if (t == S2S_MSG_PAIRED) {
		pre[pre_len++] = (uint8_t)clear_len;
		memcpy(pre + pre_len, buf + clear_off, clear_len);
		pre_len += clear_len;
	}
	put_prefixed("proto_sealed", name, pre, pre_len, pt, pt_len);
	free(pt);
}

static void
proto_seeds(void)
{
	static const enum s2s_msg_type all[] = {
		S2S_MSG_REGISTER, S2S_MSG_PAIR, S2S_MSG_SESSION,
		S2S_MSG_NEG_SDS, S2S_MSG_NEG_SDR, S2S_MSG_FETCH, S2S_MSG_END,
		S2S_MSG_REGISTERED, S2S_MSG_PAIRED, S2S_MSG_NEG_KEYS,
		S2S_MSG_NEG_FWD, S2S_MSG_NEG_DONE, S2S_MSG_FETCHED,
		S2S_MSG_ENDED, S2S_MSG_REJECT,
	};
	struct s2s_msg m;
	uint8_t *buf = NULL, *pk = NULL;
	size_t len = 0, pk_len = 0;
	char name[64];

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		enum s2s_msg_type t = all[i];
		uint16_t count = 0;

		make_msg(&m, t);
		if (t == S2S_MSG_FETCHED) {
			CHECK(s2s_msg_fetched_append(&pk, &pk_len, &count,
						     (const uint8_t *)"pkg-1",
						     5) == S2S_OK);
			CHECK(s2s_msg_fetched_append(&pk, &pk_len, &count,
						     (const uint8_t *)"", 0) ==
			      S2S_OK);
			m.packages = pk;
			m.packages_len = pk_len;
			m.count = count;
		}
		CHECK(s2s_msg_encode(&m, cs_key, dev_key, &buf, &len) ==
		      S2S_OK);
		snprintf(name, sizeof(name), "%s.msg", s2s_msg_type_name(t));
		put("proto", name, buf, len);
		if (sealed_index(t) >= 0)
			sealed_seed(t, buf, len, name);
		if (t == S2S_MSG_REJECT) {
			put("proto", "edge-truncated.msg", buf, len - 1);
			put("proto", "edge-header-only.msg", buf,
			    S2S_MSG_HDR_LEN);
			buf[4] = 2;
			put("proto", "edge-version-2.msg", buf, len);
		}
		free(buf);
		buf = NULL;
		s2s_msg_clear(&m);

		/* The variants: PAIRED pending, NEG_KEYS paper, refusal. */
		make_msg(&m, t);
		if (t == S2S_MSG_PAIRED)
			m.status = 1;
		else if (t == S2S_MSG_NEG_KEYS) {
			m.profile = S2S_PROFILE_PAPER;
			m.role = S2S_ROLE_SDR;
			m.sk_len = 24;
		} else if (t == S2S_MSG_NEG_SDR)
			m.accept = 0;
		else if (t == S2S_MSG_PAIR)
			m.profile = 0;
		else {
			s2s_msg_clear(&m);
			continue;
		}
		CHECK(s2s_msg_encode(&m, cs_key, dev_key, &buf, &len) ==
		      S2S_OK);
		snprintf(name, sizeof(name), "%s-variant.msg",
			 s2s_msg_type_name(t));
		put("proto", name, buf, len);
		if (sealed_index(t) >= 0 &&
		    !(t == S2S_MSG_PAIRED && m.status))
			sealed_seed(t, buf, len, name);
		free(buf);
		buf = NULL;
		s2s_msg_clear(&m);
	}
	free(pk);
	put("proto_sealed", "edge-register-empty", "\x00", 1);
	put("proto_sealed", "edge-neg-keys-short", "\x02\x01", 2);
}

/* ---- Tokens --------------------------------------------------------------- */

static void
token_seeds(void)
{
	char tok[S2S_TOKEN_MAX], edit[S2S_TOKEN_MAX + 8];
	char *colon;

	CHECK(s2s_token_make(dev_key, FUZZ_SENDER, FUZZ_TOKEN_NOW + 600, tok) ==
	      S2S_OK);
	put_str("token", "valid", tok);
	CHECK(s2s_token_make(dev_key, FUZZ_SENDER, FUZZ_TOKEN_NOW - 1, tok) ==
	      S2S_OK);
	put_str("token", "expired", tok);
	CHECK(s2s_token_make(dev_key, FUZZ_SENDER,
			     FUZZ_TOKEN_NOW + FUZZ_TOKEN_MAX_AGE + 1, tok) ==
	      S2S_OK);
	put_str("token", "too-far", tok);
	CHECK(s2s_token_make(dev_key, FUZZ_RECEIVER, FUZZ_TOKEN_NOW + 60,
			     tok) == S2S_OK);
	put_str("token", "other-id", tok);
	colon = strchr(tok + 5, ':');
	snprintf(edit, sizeof(edit), "%.*sA%s", (int)(colon + 1 - tok), tok,
		 colon + 2);
	put_str("token", "upper-hex", edit);
	put_str("token", "prefix-only", "s2s1:");
	put_str("token", "no-digits", "s2s1::00");
	put_str("token", "twenty-digits", "s2s1:18446744073709551616:00");
}

/* ---- Configuration and admin JSON ------------------------------------------ */

static void
config_seeds(void)
{
	put_str("device_config", "minimal.json",
		"{\"id\":\"sensor-01\",\"key\":\"sensor-01.key\","
		"\"cs_key\":\"cs.pub\",\"state_dir\":\"state\"}");
	put_str("device_config", "full.json",
		"{\n"
		"  \"broker\": \"ssl://broker.example:8883\",\n"
		"  \"id\": \"sensor-01\",\n"
		"  \"key\": \"/etc/s2s/sensor-01.key\",\n"
		"  \"cs_key\": \"cs.pub\",\n"
		"  \"signature\": \"sig.png\",\n"
		"  \"state_dir\": \"state\",\n"
		"  \"covers\": \"builtin\",\n"
		"  \"profile\": \"hardened\",\n"
		"  \"png_level\": 9,\n"
		"  \"topic_root\": \"plant/s2s\",\n"
		"  \"enrolment_code\": \"enrol-1234\",\n"
		"  \"keepalive\": 60,\n"
		"  \"session_expiry\": 0,\n"
		"  \"token_ttl\": 3600,\n"
		"  \"state_fsync\": false,\n"
		"  \"fetch_on_connect\": true,\n"
		"  \"tls\": { \"ca_file\": \"ca.pem\", \"cert_file\": "
		"\"c.pem\", \"key_file\": \"c.key\", \"verify\": false },\n"
		"  \"timeouts\": { \"connect\": 2.5, \"register\": 15, "
		"\"pair\": 30, \"session\": 0.001, \"fetch\": 86400 }\n"
		"}\n");
	put_str("device_config", "unknown-key.json",
		"{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\","
		"\"state_dir\":\"s\",\"colour\":1}");
	put_str("device_config", "duplicate.json",
		"{\"id\":\"a\",\"id\":\"b\",\"key\":\"k\",\"cs_key\":\"c\","
		"\"state_dir\":\"s\"}");
	put_str("device_config", "ranges.json",
		"{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\","
		"\"state_dir\":\"s\",\"keepalive\":4,\"png_level\":1.5}");
	put_str("device_config", "not-object.json", "[1,2,3]");
	put_str("device_config", "broken.json", "{\"id\":");

	put_str("admin", "list.json",
		"{\"commands\":[{\"command\":\"listDevices\"}]}");
	put_str("admin", "all.json",
		"{\"commands\":["
		"{\"command\":\"listDevices\",\"correlationData\":\"c1\"},"
		"{\"command\":\"getDevice\",\"id\":\"sensor-01\"},"
		"{\"command\":\"removeDevice\",\"id\":\"sensor-01\"},"
		"{\"command\":\"addEnrolmentCode\",\"id\":\"display-02\","
		"\"code\":\"abcdefgh\",\"validity\":3600},"
		"{\"command\":\"addEnrolmentCode\",\"id\":\"x\"},"
		"{\"command\":\"listPairs\"},"
		"{\"command\":\"removePair\",\"pair\":\"display-02~sensor-01\"},"
		"{\"command\":\"listSessions\"},"
		"{\"command\":\"endSession\",\"pair\":\"display-02~sensor-01\"},"
		"{\"command\":\"getStatistics\"},"
		"{\"command\":\"unpair\",\"id\":\"sensor-01\","
		"\"peer\":\"display-02\"}]}");
	put_str("admin", "malformed-commands.json",
		"{\"commands\":[1,{\"command\":7},{\"command\":\"nope\"},"
		"{\"command\":\"getDevice\"},"
		"{\"command\":\"addEnrolmentCode\",\"id\":\"a\","
		"\"validity\":-5}]}");
	put_str("admin", "not-commands.json", "{\"command\":\"listDevices\"}");
	put_str("admin", "empty.json", "{\"commands\":[]}");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return EXIT_FAILURE;
	}
	root = argv[1];
	mkdir_p(root);
	cs_key = fuzz_load_key(fuzz_cs_key_pem());
	dev_key = fuzz_load_key(fuzz_dev_key_pem());
	image_seeds();
	stego_seeds();
	package_seeds();
	proto_seeds();
	token_seeds();
	config_seeds();
	s2s_key_destroy(cs_key);
	s2s_key_destroy(dev_key);
	s2s_crypto_shutdown();
	return EXIT_SUCCESS;
}
