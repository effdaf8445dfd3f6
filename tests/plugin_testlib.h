/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plugin_testlib.h - a test device that speaks the control protocol and
 * message packages, independent of the transport: the unit tests feed its
 * bytes straight into the plugin's handlers (with stub broker functions),
 * the integration tests send them over MQTT to a real broker.
 *
 * Every encode function returns S2S_OK and a malloc()ed buffer (free()).
 * A tamper flag makes a step deliberately wrong for rejection tests.
 */
#ifndef S2S_TESTS_PLUGIN_TESTLIB_H
#define S2S_TESTS_PLUGIN_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/proto.h"
#include "s2s/scheme.h"

enum td_tamper {
	TD_OK = 0,
	TD_BAD_SHK,      /* flip a bit of Shk */
	TD_BAD_BLOB,     /* flip a bit of the blob */
	TD_BAD_NONCE,    /* flip a bit of the nonce */
	TD_SWAP_IDS,     /* claim to be the other role */
};

struct td_dev {
	char id[S2S_MSG_ID_MAX + 1];
	struct s2s_key *key;
	uint8_t *hs;                /* signature PNG */
	size_t hs_len;
	/* after PAIRED */
	char peer[S2S_MSG_ID_MAX + 1];
	char pair[2 * S2S_MSG_ID_MAX + 2];
	uint8_t shk[S2S_SHK_MAX];
	uint8_t shk_len;
	int profile;
	/* after NEG_KEYS */
	uint64_t t;
	int role;
	uint8_t nonce[S2S_MSG_NONCE_LEN];
	uint8_t skcs[S2S_SKCS_LEN];
	uint8_t sk[S2S_SK_MAX];
	uint8_t sk_len;
	char id_cs[S2S_MSG_ID_MAX + 1];
	/* after the session is established */
	struct s2s_chain tx, rx;
	struct s2s_image cover;
};

/* A device with a fresh key and the synthetic signature of `user`. */
void td_init(struct td_dev *d, const char *id, uint32_t user);
void td_free(struct td_dev *d);

enum s2s_err td_register(struct td_dev *d, const struct s2s_key *cs,
			 const char *code, uint64_t req, uint8_t **out,
			 size_t *len);
/* REGISTER with an arbitrary hs (e.g. not an image) or id. */
enum s2s_err td_register_raw(struct td_dev *d, const struct s2s_key *cs,
			     const char *id, const char *code,
			     const uint8_t *hs, size_t hs_len, uint64_t req,
			     uint8_t **out, size_t *len);
enum s2s_err td_pair(struct td_dev *d, const char *peer, int profile,
		     uint64_t req, uint8_t **out, size_t *len);
enum s2s_err td_session(struct td_dev *d, const char *peer, uint64_t req,
			uint8_t **out, size_t *len);
enum s2s_err td_end(struct td_dev *d, const char *peer, uint64_t req,
		    uint8_t **out, size_t *len);
enum s2s_err td_fetch(struct td_dev *d, const char *peer, const char *sender,
		      uint64_t t, uint64_t from, uint64_t to, uint64_t req,
		      uint8_t **out, size_t *len);

/* Decode a message from the CS with the device key (clear m after). */
enum s2s_err td_decode(struct td_dev *d, const uint8_t *buf, size_t len,
		       struct s2s_msg *m);
/* Take the secrets of PAIRED (status 0) / NEG_KEYS into d. */
void td_take_paired(struct td_dev *d, const struct s2s_msg *m);
void td_take_keys(struct td_dev *d, const struct s2s_msg *m);

/* Step 2 (SDS) and step 4 (SDR) from d's state. */
enum s2s_err td_neg_sds(struct td_dev *d, const struct s2s_key *cs,
			enum td_tamper t, uint64_t req, uint8_t **out,
			size_t *len);
enum s2s_err td_neg_sdr(struct td_dev *d, const struct s2s_key *cs,
			bool accept, enum td_tamper t, uint64_t req,
			uint8_t **out, size_t *len);
/* The device's own check of step 3/5: blob carries SkCS^T, Shk matches. */
bool td_check_step(const struct td_dev *d, const struct s2s_msg *m,
		   const uint8_t *peer_sk, size_t peer_sk_len);

/* Start both chains (tx: d -> peer, rx: peer -> d). */
void td_chains(struct td_dev *d);
/* A package of msg on d's tx chain (advances it). */
enum s2s_err td_seal(struct td_dev *d, const char *msg, uint8_t **out,
		     size_t *len);

/* "ROOT/pair/<pair>/<sender>" into buf. */
void td_pair_topic(const struct td_dev *d, const char *root, char *buf,
		   size_t n);

#endif
