/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/scheme.h - the scheme's own primitives: xor_cycle, SkCS^T, the bio-key
 * slices, MACLESS and the key ratchet, in both security profiles.
 *
 * The paper profile follows ../shared/design/SCHEME.md to the byte
 * (normative); the hardened profile keeps every step and swaps primitives
 * (docs/PROTOCOL.md, "Profiles").  Both sides of a message (sender, CS gate,
 * receiver) hold a struct s2s_chain per direction and call the same three
 * functions: s2s_chain_tag() to make or recompute a tag, s2s_chain_verify()
 * to check one, s2s_chain_advance() after an accepted message.
 *
 * Everything here is pure computation: thread-safe, no allocation, no I/O.
 */
#ifndef S2S_SCHEME_H
#define S2S_SCHEME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/bio.h"
#include "s2s/crypto.h"
#include "s2s/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum s2s_profile {
	S2S_PROFILE_PAPER = 1,    /* the scheme as published */
	S2S_PROFILE_HARDENED = 2, /* HMAC tag, one-way ratchet, hashed slices */
};

/* "paper" / "hardened"; NULL for an unknown value. */
const char *s2s_profile_name(enum s2s_profile p);
/* Parse "paper" / "hardened"; S2S_ERR_PROFILE otherwise. */
enum s2s_err s2s_profile_parse(const char *name, enum s2s_profile *out);

#define S2S_SKCS_LEN 256       /* SkCS^T, an ffdhe2048 element */
#define S2S_SKCS_EXP_LEN 32    /* the CS draws r of 256 bits */
#define S2S_SK_MAX 64          /* longest chain key */
#define S2S_SHK_MAX 32         /* longest Shk */
#define S2S_TAG_MAX 12         /* longest tag (hardened) */
#define S2S_STEGO_KEY_LEN 32

/* Paper profile: Sk is a slice of Rv8 of this many bytes (documented). */
#define S2S_PAPER_SK_MIN 16
#define S2S_PAPER_SK_MAX 32
#define S2S_PAPER_SHK_LEN 32
/* Hardened profile: slices of Rv of at least this many counts are hashed. */
#define S2S_HARDENED_SLICE_MIN 256
#define S2S_HARDENED_KEY_LEN 32

/* Tag length on the wire: 4 (be32 MACLESS) or 12 (HMAC-SHA-256/96). */
size_t s2s_tag_len(enum s2s_profile p);

/*
 * out[i] = a[i] ^ b[i mod b_len] for i < a_len (normative).  out may alias
 * a.  b_len must not be 0.
 */
void s2s_xor_cycle(uint8_t *out, const uint8_t *a, size_t a_len,
		   const uint8_t *b, size_t b_len);

/*
 * Rotate the a_len-byte string buf, read as one big-endian bit string,
 * right by bits (taken mod 8*a_len).  In place.
 */
void s2s_rotr_bits(uint8_t *buf, size_t len, uint64_t bits);

/* SkCS^T = 2^r mod lp (RFC 7919 ffdhe2048), 256 bytes (normative). */
enum s2s_err s2s_skcs_compute(const uint8_t *r, size_t r_len,
			      uint8_t skcs[S2S_SKCS_LEN]);

/* Draw r (256 bits, top bit set) and compute SkCS^T.  r is wiped. */
enum s2s_err s2s_skcs_generate(uint8_t skcs[S2S_SKCS_LEN]);

/*
 * MACLESS (paper, normative): the sum of the 20 bytes of
 * SHA-1(msg || skcs || sk || shk || be32(rt)), in 0..5100.
 */
uint32_t s2s_macless(const uint8_t *msg, size_t msg_len,
		     const uint8_t skcs[S2S_SKCS_LEN],
		     const uint8_t *sk, size_t sk_len,
		     const uint8_t *shk, size_t shk_len, uint32_t rt);

/*
 * Paper ratchet (normative), in place:
 * sk = rotr(xor_cycle(sk, skcs), rt mod (8 * sk_len)).
 */
void s2s_ratchet_paper(uint8_t *sk, size_t sk_len,
		       const uint8_t skcs[S2S_SKCS_LEN], uint32_t rt);

/*
 * Hardened ratchet, in place: sk = HMAC-SHA-256(sk, "s2s/v1/ratchet" ||
 * be32(rt)).  sk is 32 bytes.  One-way: an old key cannot be recomputed
 * from a newer one.
 */
enum s2s_err s2s_ratchet_hardened(uint8_t sk[S2S_HARDENED_KEY_LEN],
				  uint32_t rt);

/*
 * Hardened tag: HMAC-SHA-256(K, hdr || msg || be32(rt)) truncated to 12
 * bytes, with K = HKDF-SHA-256(ikm = skcs || sk || shk, no salt,
 * info = "s2s/v1/tag").
 */
enum s2s_err s2s_tag_hardened(const uint8_t *hdr, size_t hdr_len,
			      const uint8_t *msg, size_t msg_len,
			      const uint8_t skcs[S2S_SKCS_LEN],
			      const uint8_t *sk, size_t sk_len,
			      const uint8_t *shk, size_t shk_len, uint32_t rt,
			      uint8_t tag[12]);

/* ---- Bio-key slices ---------------------------------------------------- */

enum s2s_slice_kind {
	S2S_SLICE_SK = 1,   /* a per-session chain start key */
	S2S_SLICE_SHK = 2,  /* the per-pair shared key */
};

/* Number of elements of the cyclic inclusive slice [i..e] of Rv. */
size_t s2s_slice_count(unsigned i, unsigned e);

/*
 * Cut a key out of Rv at the cyclic inclusive range [i..e] (i != e, both
 * < S2S_RV_LEN).
 *  - paper: out = Rv8[i..e] with Rv8 = min(Rv, 255) (normative); the count
 *    must be within S2S_PAPER_SK_MIN..S2S_PAPER_SK_MAX for Sk and exactly
 *    S2S_PAPER_SHK_LEN for Shk.
 *  - hardened: out = SHA-256("s2s/v1/sk" or "s2s/v1/shk" || be16(i) ||
 *    be16(e) || be16(Rv[i]) || ... || be16(Rv[e])), 32 bytes; the count must
 *    be at least S2S_HARDENED_SLICE_MIN.
 * S2S_ERR_INVAL for a range outside those rules.  out needs S2S_SK_MAX
 * bytes; *out_len receives the key length.
 */
enum s2s_err s2s_slice_key(enum s2s_profile p, enum s2s_slice_kind kind,
			   const uint16_t rv[S2S_RV_LEN], unsigned i,
			   unsigned e, uint8_t *out, size_t *out_len);

/*
 * The CS's choice: draw a random valid range for kind, retrying while the
 * slice is all zero (at most 64 draws, then S2S_ERR_CRYPTO), and cut the
 * key.  Lengths drawn: paper Sk uniform in S2S_PAPER_SK_MIN..
 * S2S_PAPER_SK_MAX, paper Shk S2S_PAPER_SHK_LEN, hardened uniform in
 * S2S_HARDENED_SLICE_MIN..S2S_RV_LEN counts.  *i and *e receive the range.
 * The zero check applies to both profiles: a hashed all-zero slice would
 * give a key fixed by (i, e) alone.
 */
enum s2s_err s2s_slice_pick(enum s2s_profile p, enum s2s_slice_kind kind,
			    const uint16_t rv[S2S_RV_LEN], unsigned *i,
			    unsigned *e, uint8_t *out, size_t *out_len);

/* ---- Stego selection key ---------------------------------------------- */

/* K_sel = HMAC-SHA-256(shk, "stego-select" || be64(session)). */
enum s2s_err s2s_stego_key(const uint8_t *shk, size_t shk_len,
			   uint64_t session,
			   uint8_t key[S2S_STEGO_KEY_LEN]);

/* ---- Key chains -------------------------------------------------------- */

/*
 * One direction of one session: the state sender, CS and receiver keep in
 * step.  A plain caller-owned struct; wipe it with s2s_chain_wipe() when the
 * session ends.  Not shared between threads without a lock.
 */
struct s2s_chain {
	enum s2s_profile profile;
	uint64_t session;                 /* T */
	uint64_t next_seq;                /* sequence number expected next */
	uint8_t skcs[S2S_SKCS_LEN];
	uint8_t sk[S2S_SK_MAX];
	uint8_t shk[S2S_SHK_MAX];
	uint8_t stego_key[S2S_STEGO_KEY_LEN];
	uint8_t sk_len;
	uint8_t shk_len;
};

/*
 * Fill c for a new session: next_seq = 1, stego_key derived from shk and
 * session.  S2S_ERR_INVAL for lengths out of range for the profile (paper:
 * sk S2S_PAPER_SK_MIN..S2S_PAPER_SK_MAX bytes, shk S2S_PAPER_SHK_LEN;
 * hardened: both S2S_HARDENED_KEY_LEN), S2S_ERR_PROFILE for an unknown
 * profile.
 */
enum s2s_err s2s_chain_init(struct s2s_chain *c, enum s2s_profile p,
			    uint64_t session,
			    const uint8_t skcs[S2S_SKCS_LEN],
			    const uint8_t *sk, size_t sk_len,
			    const uint8_t *shk, size_t shk_len);

/*
 * Compute the tag of (hdr, msg, rt) at the chain's current key into
 * tag[s2s_tag_len(profile)].  The paper profile ignores hdr.
 */
enum s2s_err s2s_chain_tag(const struct s2s_chain *c,
			   const uint8_t *hdr, size_t hdr_len,
			   const uint8_t *msg, size_t msg_len, uint32_t rt,
			   uint8_t tag[S2S_TAG_MAX]);

/*
 * Recompute and compare in constant time: S2S_OK or S2S_ERR_AUTH (also for
 * a tag_len other than s2s_tag_len(profile)).  c is not modified.
 */
enum s2s_err s2s_chain_verify(const struct s2s_chain *c,
			      const uint8_t *hdr, size_t hdr_len,
			      const uint8_t *msg, size_t msg_len, uint32_t rt,
			      const uint8_t *tag, size_t tag_len);

/* After an accepted message: ratchet sk with rt and increment next_seq. */
enum s2s_err s2s_chain_advance(struct s2s_chain *c, uint32_t rt);

void s2s_chain_wipe(struct s2s_chain *c);

/*
 * The hardened tag with its per-session part done once.  HKDF-Extract is
 * HMAC(0^32, skcs || sk || shk): the context keeps that HMAC's inner hash
 * after the padded (zero) key and skcs (256 bytes, fixed for a session)
 * and its outer state, so a tag costs the hash blocks of sk || shk, the
 * expand, and the tag HMAC.  Same tags as s2s_tag_hardened (tests compare
 * them).  Opaque, allocated with s2s_tag_ctx_new, freed (wiped: it holds
 * a copy of skcs) with s2s_tag_ctx_free; not shared between threads
 * without a lock.  It rebuilds itself when skcs changes (a new session),
 * so it is never wrong, only cold.
 */
struct s2s_tag_ctx;

struct s2s_tag_ctx *s2s_tag_ctx_new(void);
void s2s_tag_ctx_free(struct s2s_tag_ctx *x);

/*
 * s2s_chain_tag / s2s_chain_verify through x (x NULL or the paper
 * profile: the plain forms).
 */
enum s2s_err s2s_chain_tag_ctx(const struct s2s_chain *c,
			       struct s2s_tag_ctx *x,
			       const uint8_t *hdr, size_t hdr_len,
			       const uint8_t *msg, size_t msg_len,
			       uint32_t rt, uint8_t tag[S2S_TAG_MAX]);
enum s2s_err s2s_chain_verify_ctx(const struct s2s_chain *c,
				  struct s2s_tag_ctx *x,
				  const uint8_t *hdr, size_t hdr_len,
				  const uint8_t *msg, size_t msg_len,
				  uint32_t rt, const uint8_t *tag,
				  size_t tag_len);

#ifdef __cplusplus
}
#endif

#endif /* S2S_SCHEME_H */
