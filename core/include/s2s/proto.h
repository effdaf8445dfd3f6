/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/proto.h - the control messages of phases 1 and 2 (registration,
 * pairing, session negotiation) and of fetch/end/reject, as bytes.
 *
 * The wire format is docs/PROTOCOL.md ("Common header" to "Fetch, end,
 * reject").  Both ends use this one codec: the device library to
 * build requests and read replies, the broker plugin the other way round.
 * Encryption (ECIES) and the registration signature are applied and checked
 * here, so a decoded message is authentic as far as the codec can tell;
 * the state checks (is T the pending session, does the nonce match, do
 * xor_cycle(blob, Sk) and Shk match) belong to the caller.
 *
 * One flat struct s2s_msg carries the fields of every type; each type uses
 * the subset listed in the table below and ignores the rest.
 *
 * Threading: pure functions, thread-safe.  Secrets: an s2s_msg may hold
 * SkCS^T, Sk, Shk and a blob; s2s_msg_clear() wipes them and frees what the
 * decoder allocated.  Always clear a message, also after a failed decode.
 */
#ifndef S2S_PROTO_H
#define S2S_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/crypto.h"
#include "s2s/error.h"
#include "s2s/scheme.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_MSG_MAGIC "S2SC"
#define S2S_MSG_VERSION 1
#define S2S_MSG_HDR_LEN 16
#define S2S_MSG_ID_MAX 64
#define S2S_MSG_NONCE_LEN 16
#define S2S_MSG_FETCH_MAX 64      /* packages per FETCHED */
#define S2S_MSG_REASON_MAX 255

enum s2s_msg_type {
	S2S_MSG_REGISTER = 0x01,
	S2S_MSG_PAIR = 0x02,
	S2S_MSG_SESSION = 0x03,
	S2S_MSG_NEG_SDS = 0x04,     /* step 2 */
	S2S_MSG_NEG_SDR = 0x05,     /* step 4 */
	S2S_MSG_FETCH = 0x06,
	S2S_MSG_END = 0x07,
	S2S_MSG_REGISTERED = 0x81,
	S2S_MSG_PAIRED = 0x82,
	S2S_MSG_NEG_KEYS = 0x83,    /* step 1 */
	S2S_MSG_NEG_FWD = 0x84,     /* step 3 */
	S2S_MSG_NEG_DONE = 0x85,    /* step 5 */
	S2S_MSG_FETCHED = 0x86,
	S2S_MSG_ENDED = 0x87,
	S2S_MSG_REJECT = 0xff,
};

enum s2s_role {
	S2S_ROLE_SDS = 1,   /* the device that asked for the session */
	S2S_ROLE_SDR = 2,
};

/*
 * Fields by type ("enc" = inside the ECIES part, needs the recipient's key):
 *
 *  REGISTER    pub, id, code/code_len (enc), hs/hs_len (enc); signed
 *  REGISTERED  id_cs, pub (the CS key)
 *  PAIR        peer, profile (0 = CS default)
 *  PAIRED      status, pair, peer, profile; enc: pair, peer, profile, shk
 *  SESSION     peer
 *  NEG_KEYS    enc: step=1, session, nonce, role, profile, id_cs, id_self,
 *              id_peer, skcs, sk
 *  NEG_SDS     enc: step=2, session, nonce, blob, id_cs, id_sds, id_sdr, shk
 *  NEG_FWD     enc: step=3, as NEG_SDS (blob of SDS, nonce of SDR)
 *  NEG_SDR     enc: step=4, as NEG_SDS plus accept (blob of SDR)
 *  NEG_DONE    enc: step=5, as NEG_SDS (blob of SDR, nonce of SDS)
 *  FETCH       peer, sender, session, from_seq, to_seq
 *  FETCHED     session, count, packages (see s2s_msg_fetched_next)
 *  END         peer
 *  ENDED       peer, session
 *  REJECT      about, code, session, reason
 *
 * For the NEG_* steps, id_self/id_peer are unused; id_sds and id_sdr carry
 * the two device ids.  Strings are NUL-terminated in the struct.
 */
struct s2s_msg {
	enum s2s_msg_type type;
	uint64_t req_id;

	uint8_t step;
	uint8_t status;             /* PAIRED: 0 paired, 1 pending */
	uint8_t role;               /* enum s2s_role */
	uint8_t profile;            /* enum s2s_profile, 0 = default */
	uint8_t accept;             /* NEG_SDR: 1 accept, 0 refuse */
	uint8_t about;              /* REJECT: the rejected request type */
	int code;                   /* REJECT: an enum s2s_err (negative) */
	uint64_t session;
	uint64_t from_seq, to_seq;
	uint16_t count;

	char id[S2S_MSG_ID_MAX + 1];
	char id_cs[S2S_MSG_ID_MAX + 1];
	char id_self[S2S_MSG_ID_MAX + 1];
	char id_peer[S2S_MSG_ID_MAX + 1];
	char id_sds[S2S_MSG_ID_MAX + 1];
	char id_sdr[S2S_MSG_ID_MAX + 1];
	char peer[S2S_MSG_ID_MAX + 1];
	char sender[S2S_MSG_ID_MAX + 1];
	char pair[2 * S2S_MSG_ID_MAX + 2];
	char reason[S2S_MSG_REASON_MAX + 1];

	uint8_t pub[S2S_P256_PUB_LEN];
	uint8_t nonce[S2S_MSG_NONCE_LEN];
	uint8_t skcs[S2S_SKCS_LEN];     /* secret */
	uint8_t blob[S2S_SKCS_LEN];     /* secret: xor_cycle(SkCS^T, Sk) */
	uint8_t sk[S2S_SK_MAX];         /* secret */
	uint8_t shk[S2S_SHK_MAX];       /* secret */
	uint8_t sk_len, shk_len;

	/* Borrowed by encode; owned (in `owned`) after decode. */
	const uint8_t *code_bytes;      /* REGISTER enrolment code (secret) */
	size_t code_len;
	const uint8_t *hs;              /* REGISTER signature image */
	size_t hs_len;
	const uint8_t *packages;        /* FETCHED: count x bytes32 */
	size_t packages_len;

	uint8_t *owned;                 /* decoder's allocation, or NULL */
	size_t owned_len;

	/*
	 * FETCH / FETCHED pacing (docs/PROTOCOL.md, "Fetch", v1.1): a
	 * FETCH with has_ack names the ack of the newest FETCHED its sender
	 * has read (0: none yet); the CS answers such a FETCH with a fresh
	 * ack in FETCHED.  Without has_ack both are the v1 forms.
	 */
	uint64_t ack;
	bool has_ack;
};

/* Zero m and set its type and request id. */
void s2s_msg_init(struct s2s_msg *m, enum s2s_msg_type type,
		  uint64_t req_id);

/* Wipe every secret field, free what the decoder allocated, zero m. */
void s2s_msg_clear(struct s2s_msg *m);

/* "REGISTER", "NEG_KEYS", ...; "UNKNOWN" for other values. */
const char *s2s_msg_type_name(int type);

/*
 * true for a valid device or CS id: 1..64 bytes of [A-Za-z0-9_.-].
 */
bool s2s_id_valid(const char *id);

/* The same for len bytes that need not be NUL-terminated. */
bool s2s_id_valid_len(const char *id, size_t len);

/*
 * The pair id of two valid, different device ids: sorted, joined by '~'.
 * out has room for 2 * S2S_MSG_ID_MAX + 2 bytes.
 */
enum s2s_err s2s_pair_id(const char *a, const char *b,
			 char out[2 * S2S_MSG_ID_MAX + 2]);

/* true if pair is what s2s_pair_id() makes of two valid, different ids. */
bool s2s_pair_id_valid(const char *pair);

/*
 * Read only the common header: S2S_ERR_FORMAT (magic, reserved bytes,
 * unknown type), S2S_ERR_VERSION, S2S_ERR_TRUNCATED.
 */
enum s2s_err s2s_msg_peek(const uint8_t *buf, size_t len,
			  enum s2s_msg_type *type, uint64_t *req_id);

/*
 * Serialise m into a malloc()ed buffer (*out, *out_len; free() it).
 * `to` is the recipient's key, needed for the types with an encrypted part;
 * `signer` is the device's private key, needed for REGISTER only.
 * For FETCHED, m->packages/packages_len must already hold the count x
 * bytes32 sequence (build it with s2s_msg_fetched_append).
 */
enum s2s_err s2s_msg_encode(const struct s2s_msg *m, const struct s2s_key *to,
			    const struct s2s_key *signer, uint8_t **out,
			    size_t *out_len);

/*
 * Parse buf into m (m need not be initialised; clear it afterwards in all
 * cases).  `priv` is the recipient's private key, needed for the types with
 * an encrypted part.  Errors: those of s2s_msg_peek, S2S_ERR_TRUNCATED,
 * S2S_ERR_FORMAT (bad field, bad id, trailing bytes, wrong step number
 * inside a step), S2S_ERR_AUTH (decryption or REGISTER signature failed),
 * S2S_ERR_TOO_BIG (a REGISTER image over max_hs bytes; 0 = 1 MiB).
 */
enum s2s_err s2s_msg_decode(const uint8_t *buf, size_t len,
			    const struct s2s_key *priv, size_t max_hs,
			    struct s2s_msg *m);

/*
 * FETCHED payload helpers.  _append adds one package to a malloc()ed
 * buffer (*buf, *len, growing it; free() it) and increments *count.
 * _next iterates: start with *off = 0; returns S2S_OK with *pkg and *pkg_len
 * set, S2S_ERR_NOT_FOUND at the end, S2S_ERR_FORMAT if malformed.
 */
enum s2s_err s2s_msg_fetched_append(uint8_t **buf, size_t *len,
				    uint16_t *count, const uint8_t *pkg,
				    size_t pkg_len);
enum s2s_err s2s_msg_fetched_next(const struct s2s_msg *m, size_t *off,
				  const uint8_t **pkg, size_t *pkg_len);

/*
 * Connect tokens, protocol v2 (docs/PROTOCOL.md, "Connect authentication"):
 *
 *   "s2s2:" <exp> ":" <nonce, 32 hex> ":" <sig, 128 hex>
 *
 * sig is an ECDSA P-256 signature by the user's key over
 * "s2s-connect-v2" 0x00 user 0x00 client_id 0x00 be64(exp) nonce(16).
 * The nonce is fresh random per token: the CS accepts each (user, nonce)
 * once until exp, so a token seen on the wire is worthless after its first
 * use, and it is bound to the MQTT client id it was made for.  A device
 * is user = client id = its id; the admin is user = the admin user name
 * and the client id of that one call.  out has room for S2S_TOKEN_MAX
 * bytes (NUL included).
 */
#define S2S_TOKEN_MAX 200
#define S2S_TOKEN_NONCE_LEN 16
enum s2s_err s2s_token_make_for(const struct s2s_key *priv, const char *user,
				const char *client_id, uint64_t exp,
				char out[S2S_TOKEN_MAX]);
/* A device's token: s2s_token_make_for(priv, id, id, exp, out). */
enum s2s_err s2s_token_make(const struct s2s_key *priv, const char *id,
			    uint64_t exp, char out[S2S_TOKEN_MAX]);

/*
 * Check a token for (user, client_id) against the public key at time now:
 * S2S_OK (nonce and *exp set when not NULL: the caller must then refuse a
 * nonce it has seen before), S2S_ERR_VERSION (a protocol v1 "s2s1:"
 * token), S2S_ERR_FORMAT (not a token), S2S_ERR_AUTH (bad signature),
 * S2S_ERR_TIMEOUT (expired: exp < now, or exp > now + max_age).
 */
enum s2s_err s2s_token_verify(const struct s2s_key *pub, const char *user,
			      const char *client_id, const char *token,
			      size_t token_len, uint64_t now, uint64_t max_age,
			      uint8_t nonce[S2S_TOKEN_NONCE_LEN],
			      uint64_t *exp);
/* s2s_token_verify(pub, id, id, ..., NULL, NULL): a device's token. */
enum s2s_err s2s_token_check(const struct s2s_key *pub, const char *id,
			     const char *token, size_t token_len,
			     uint64_t now, uint64_t max_age);
/* Does the password look like a protocol v1 token ("s2s1:...")? */
bool s2s_token_is_v1(const char *token, size_t token_len);

/*
 * Enrolment login (protocol v2): the MQTT password of a device that
 * registers an id which is already known (a new key, or coming back after
 * revocation) or under `enrollment code`:
 *
 *   "s2s2e:" <exp> ":" <nonce, 32 hex> ":" <mac, 64 hex>
 *
 * mac = HMAC-SHA-256(key = s2s_enrol_code_hash(id, code), "s2s-enrol-v2"
 * 0x00 id 0x00 be64(exp) nonce).  It proves the enrolment code without
 * showing it; like a connect token it is bound to the id (= client id =
 * user name) and accepted once.  code may be empty (open enrolment).
 */
void s2s_enrol_code_hash(const char *id, const uint8_t *code, size_t len,
			 uint8_t out[S2S_SHA256_LEN]);
enum s2s_err s2s_enrol_token_make(const char *id, const uint8_t *code,
				  size_t code_len, uint64_t exp,
				  char out[S2S_TOKEN_MAX]);
bool s2s_enrol_token_is(const char *token, size_t token_len);
/*
 * S2S_OK (nonce, *exp set when not NULL), S2S_ERR_FORMAT, S2S_ERR_TIMEOUT,
 * S2S_ERR_AUTH (wrong code; hash NULL: no code known for the id).
 */
enum s2s_err s2s_enrol_token_verify(const char *id,
				    const uint8_t hash[S2S_SHA256_LEN],
				    const char *token, size_t token_len,
				    uint64_t now, uint64_t max_age,
				    uint8_t nonce[S2S_TOKEN_NONCE_LEN],
				    uint64_t *exp);

#ifdef __cplusplus
}
#endif

#endif /* S2S_PROTO_H */
