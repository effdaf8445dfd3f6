/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/package.h - the message package on the wire, and the two operations
 * every party performs on it: seal (sender) and open (CS gate, receiver).
 *
 * Byte layout (docs/PROTOCOL.md, "Message package"); integers big-endian:
 *
 *   off  size  field
 *     0     4  magic "S2SP"
 *     4     1  version (1)
 *     5     1  profile (1 paper, 2 hardened)
 *     6     1  a = sender id length (1..64)
 *     7     1  b = receiver id length (1..64)
 *     8     8  session T
 *    16     8  seq, per direction, first message 1
 *    24     4  m = message length
 *    28     4  n = stego image length
 *    32     a  sender id
 *  32+a     b  receiver id
 * 32+a+b    m  message
 *   ...     n  stego image (8-bit grayscale PNG)
 *
 * The header is bytes [0, 32+a+b).  The hardened tag covers the "tag
 * header": the header with n (bytes 28..31) set to zero, since n depends on
 * the PNG that carries the tag.  The total must be exactly 32+a+b+m+n.  The
 * tag and R^T are not in the envelope: they are hidden in the image, stego
 * payload tag || be32(R^T) (stage 1 the tag, stage 2 R^T).
 *
 * Thread-safe; parse is zero-copy.
 */
#ifndef S2S_PACKAGE_H
#define S2S_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"
#include "s2s/image.h"
#include "s2s/scheme.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_PACKAGE_MAGIC "S2SP"
#define S2S_PACKAGE_VERSION 1
#define S2S_PACKAGE_FIXED 32
#define S2S_ID_MAX 64

/* Limits for parsing; zero fields take the defaults. */
struct s2s_package_limits {
	size_t max_msg;     /* default 256 KiB */
	size_t max_image;   /* default 256 KiB */
	struct s2s_image_limits image;  /* stego image; max_pixels default 64 Ki */
};

#define S2S_PACKAGE_DEFAULT_MAX_MSG (256u * 1024u)
#define S2S_PACKAGE_DEFAULT_MAX_IMAGE (256u * 1024u)
/*
 * Default pixel limit for the stego image (256 x 256, four times the
 * 128 x 128 covers; 64 payload bytes).  It bounds the broker's work for a
 * package: a new image size rebuilds the chain's keyed selection, a
 * SHA-256 shuffle of all (w/2)(h/2) HH positions (~35 ns each), and the
 * decode is linear in the pixels: at 256 x 256 the worst package costs
 * about 1 ms, at 1024 x 1024 it cost 10-15 ms (docs/OPERATIONS.md).
 */
#define S2S_PACKAGE_DEFAULT_MAX_PIXELS (256u * 256u)

/* A parsed package: every pointer points into the parsed buffer. */
struct s2s_package {
	uint8_t version;
	enum s2s_profile profile;
	uint64_t session;
	uint64_t seq;
	const char *sender;     /* not NUL-terminated */
	size_t sender_len;
	const char *receiver;   /* not NUL-terminated */
	size_t receiver_len;
	const uint8_t *msg;
	size_t msg_len;
	const uint8_t *image;
	size_t image_len;
	const uint8_t *header;  /* == the buffer */
	size_t header_len;
};

/*
 * Parse and validate the envelope of buf (no crypto, no image decoding).
 * Distinct errors: S2S_ERR_TRUNCATED (shorter than declared),
 * S2S_ERR_FORMAT (bad magic, an id that fails s2s_id_valid_len: not 1..64
 * bytes of [A-Za-z0-9_.-], empty image), S2S_ERR_VERSION,
 * S2S_ERR_PROFILE, S2S_ERR_TOO_BIG (message or image over limits),
 * S2S_ERR_INCONSISTENT (trailing bytes after the declared fields, seq 0,
 * declared lengths whose sum overflows size_t).  Every proper prefix of a
 * package is S2S_ERR_TRUNCATED.  limits may be NULL.
 */
enum s2s_err s2s_package_parse(const uint8_t *buf, size_t len,
			       const struct s2s_package_limits *limits,
			       struct s2s_package *out);

/*
 * Serialise p's fields (header/header_len are ignored) into a malloc()ed
 * buffer; free() it.
 */
enum s2s_err s2s_package_encode(const struct s2s_package *p, uint8_t **out,
				size_t *out_len);

/*
 * Sender: build the package for msg at the chain's current position.
 * Draws R^T, computes the tag, hides tag || be32(R^T) in a copy of cover
 * (stage 1 the tag, stage 2 R^T), encodes the PNG at png_level, writes
 * the envelope with seq = c->next_seq, then advances the chain.  The
 * chain is untouched on any error.  *out is malloc()ed; free() it.
 * stego_out (may be NULL) receives the stego image (free with
 * s2s_image_free) for tools that show it.
 */
enum s2s_err s2s_package_seal(struct s2s_chain *c, const char *sender,
			      const char *receiver, const uint8_t *msg,
			      size_t msg_len, const struct s2s_image *cover,
			      int png_level, uint8_t **out, size_t *out_len,
			      struct s2s_image *stego_out);

/*
 * Gate and receiver: verify a parsed package against the chain.
 * Checks profile and session against the chain, seq against next_seq
 * (S2S_ERR_REPLAY if lower, S2S_ERR_GAP if higher), reads the image
 * (S2S_ERR_IMAGE unless an 8-bit gray non-interlaced PNG, see
 * s2s_image_png_gray_rows; S2S_ERR_TOO_BIG beyond limits), checks it can carry
 * the payload (S2S_ERR_FORMAT), extracts tag and R^T and verifies the tag
 * (S2S_ERR_AUTH).  On S2S_OK the chain has advanced and *rt (may be NULL)
 * holds R^T; on any error the chain is untouched.  A receiver that gets
 * S2S_ERR_GAP fetches the missing packages from the CS store and opens
 * them in order (docs/PROTOCOL.md, "Sequence numbers").
 */
enum s2s_err s2s_package_open(struct s2s_chain *c,
			      const struct s2s_package *p,
			      const struct s2s_package_limits *limits,
			      uint32_t *rt);

/*
 * What one chain keeps between messages, so that seal and open do only
 * the work that depends on the message.
 *
 * - The hardened tag's per-session part (s2s_tag_ctx: HKDF-Extract's hash
 *   of SkCS^T), so a tag costs its per-key blocks only.
 * - The stego selection: the keyed shuffle behind it costs more than the
 *   rest of open put together (~150 us at 128x128), and it depends only on
 *   the chain's stego key and the image size, both fixed for a session in
 *   practice.
 * - Open (gate, receiver) keeps nothing else: it reads a level-0 PNG where
 *   it lies (s2s_image_png_gray_rows) and allocates its scratch per call
 *   (the row pointers; the scanlines only for rows split across stored
 *   blocks or for compressed levels; the parity map beyond 64x64 blocks),
 *   so an idle chain holds only its selection (4 bytes per selected block,
 *   16 KB for the hardened payload).
 * - Seal at PNG level 0: the cover, its parity map and its pre-encoded PNG
 *   (s2s_image_patch): the stego PNG is the cover's PNG with at most 2n
 *   bytes, the Adler-32 and the touched IDAT CRCs patched, byte for byte
 *   what encoding the stego image would write.  The cache keeps up to
 *   S2S_PACKAGE_CACHE_COVERS covers (a copy of each, compared with memcmp
 *   on every seal, so a changed cover is never missed; the oldest is
 *   replaced), about 40 KB each at 128x128.
 *
 * A caller that opens (or seals) many packages on one chain keeps one
 * cache next to it, under the same lock, zeroed at first.  The cache
 * rebuilds what changed (a new session key, image size or cover), so it
 * is never wrong, only cold.  It holds a copy of the stego key: release it
 * with s2s_package_cache_clear(), which wipes it.  Fields are private.
 */
struct s2s_stego_sel;
struct s2s_package_cover;

/* Covers a cache keeps pre-encoded (devices rotate a few covers). */
#define S2S_PACKAGE_CACHE_COVERS 8

struct s2s_package_cache {
	struct s2s_stego_sel *sel;
	uint32_t width;
	uint32_t height;
	size_t n;
	uint8_t key[S2S_STEGO_KEY_LEN];
	/* seal at level 0: the last S2S_PACKAGE_CACHE_COVERS covers */
	struct s2s_package_cover *covers[S2S_PACKAGE_CACHE_COVERS];
	unsigned next_cover;
	/* hardened: the tag's per-session part (s2s_tag_ctx, scheme.h) */
	struct s2s_tag_ctx *tag;
};

/* s2s_package_seal / s2s_package_open with a cache (NULL: none). */
enum s2s_err s2s_package_seal_cached(struct s2s_chain *c,
				     struct s2s_package_cache *cache,
				     const char *sender, const char *receiver,
				     const uint8_t *msg, size_t msg_len,
				     const struct s2s_image *cover,
				     int png_level, uint8_t **out,
				     size_t *out_len,
				     struct s2s_image *stego_out);
enum s2s_err s2s_package_open_cached(struct s2s_chain *c,
				     struct s2s_package_cache *cache,
				     const struct s2s_package *p,
				     const struct s2s_package_limits *limits,
				     uint32_t *rt);

/*
 * The reference open: decodes the whole image with s2s_image_decode and
 * extracts from the pixels (s2s_stego_extract_sel, random access), the
 * cache (may be NULL) serving only the selection.  Same verdicts and
 * chain effects as s2s_package_open (tests compare the two on mutated
 * packages); slower.  For tests and tools.
 */
enum s2s_err s2s_package_open_full(struct s2s_chain *c,
				   struct s2s_package_cache *cache,
				   const struct s2s_package *p,
				   const struct s2s_package_limits *limits,
				   uint32_t *rt);

/* Free the selection and wipe the cache; a zeroed cache is a no-op. */
void s2s_package_cache_clear(struct s2s_package_cache *cache);

#ifdef __cplusplus
}
#endif

#endif /* S2S_PACKAGE_H */
