/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_token.c - the connect-token checker the broker plugin runs on
 * every CONNECT password: s2s_token_check against the fixed device key.
 *
 * Input: the password bytes (not NUL-terminated).  The id is
 * FUZZ_SENDER, "now" is FUZZ_TOKEN_NOW, max_age FUZZ_TOKEN_MAX_AGE.
 * Invariants: the result is one of the documented errors; a token the
 * checker accepts is accepted again when copied into a NUL-terminated
 * buffer (no reliance on what follows token_len), is refused for another
 * id, and is refused once expired.
 */
#include "fuzz_common.h"
#include "s2s/proto.h"

static struct s2s_key *dev_key;

static void
cleanup(void)
{
	s2s_key_destroy(dev_key);
	dev_key = NULL;
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	dev_key = fuzz_load_key(fuzz_dev_key_pem());
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *tok = (const char *)data;
	enum s2s_err err;
	char *z;

	uint8_t hash[32];

	/* The enrolment login's parser and MAC check (the code "fuzz"). */
	s2s_enrol_code_hash(FUZZ_SENDER, (const uint8_t *)"fuzz", 4, hash);
	err = s2s_enrol_token_verify(FUZZ_SENDER, hash, tok, size,
				     FUZZ_TOKEN_NOW, FUZZ_TOKEN_MAX_AGE, NULL,
				     NULL);
	FUZZ_CHECK(err == S2S_OK || err == S2S_ERR_FORMAT ||
		   err == S2S_ERR_AUTH || err == S2S_ERR_TIMEOUT);
	err = s2s_token_check(dev_key, FUZZ_SENDER, tok, size, FUZZ_TOKEN_NOW,
			      FUZZ_TOKEN_MAX_AGE);
	FUZZ_CHECK(err == S2S_OK || err == S2S_ERR_FORMAT ||
		   err == S2S_ERR_AUTH || err == S2S_ERR_TIMEOUT ||
		   err == S2S_ERR_VERSION);
	if (err != S2S_OK)
		return 0;
	z = malloc(size + 1);
	FUZZ_CHECK(z != NULL);
	memcpy(z, data, size);
	z[size] = '\0';
	FUZZ_CHECK(s2s_token_check(dev_key, FUZZ_SENDER, z, size,
				   FUZZ_TOKEN_NOW, FUZZ_TOKEN_MAX_AGE) ==
		   S2S_OK);
	FUZZ_CHECK(s2s_token_check(dev_key, FUZZ_RECEIVER, z, size,
				   FUZZ_TOKEN_NOW, FUZZ_TOKEN_MAX_AGE) ==
		   S2S_ERR_AUTH);
	FUZZ_CHECK(s2s_token_check(dev_key, FUZZ_SENDER, z, size,
				   UINT64_MAX, FUZZ_TOKEN_MAX_AGE) ==
		   S2S_ERR_TIMEOUT);
	free(z);
	return 0;
}
