/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_common.h - what the libFuzzer targets (tests/fuzz/fuzz_*.c), the
 * corpus replay driver (run_corpus.c) and the seed generator (make_seeds.c)
 * share: the fixed keys, chains and cover every target works against, and
 * FUZZ_CHECK for the invariants a target asserts beyond "no crash".
 *
 * Every target defines LLVMFuzzerInitialize (load fixed state, register
 * the cleanup with atexit so that LeakSanitizer's exit check sees nothing
 * of ours) and LLVMFuzzerTestOneInput.  The decode paths are deterministic
 * per input; the only randomness is ECIES sealing in fuzz_proto_sealed,
 * whose outcome does not depend on the ephemeral key.
 */
#ifndef S2S_FUZZ_COMMON_H
#define S2S_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/scheme.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test must keep: report and abort. */
#define FUZZ_CHECK(cond)                                                \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",  \
				__FILE__, __LINE__, #cond);             \
			abort();                                        \
		}                                                       \
	} while (0)

/*
 * Test-only P-256 keys, never used outside tests/fuzz: the CS key (every
 * sealed part of the corpus is sealed to it) and a device key (REGISTER
 * signatures, connect tokens).
 */
static inline const char *
fuzz_cs_key_pem(void)
{
	return
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIE9pFgnUI1+i+YU4USs7kwPZqoPiCUP7naTaQvN0oy11oAoGCCqGSM49\n"
	"AwEHoUQDQgAEJNS2PkOVpuW23UExk74GTVdjO1HRIwUX8iX5aGAIDdP4000d9CTz\n"
	"Fnurs7UFwi9J0q7DRmzwy06EYeB115qEDg==\n"
	"-----END EC PRIVATE KEY-----\n";
}
static inline const char *
fuzz_dev_key_pem(void)
{
	return
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEINeU2XCK8oCpJzSEbVc2w/u2TPenI9OodWtkRo2ymROloAoGCCqGSM49\n"
	"AwEHoUQDQgAEmnenZFwStqIHfQvm4QvRtqbv4mPtnt831UlS48Hr/jTGrC9Gjbgl\n"
	"29U6r47hT9AhllTlnfRmVaq2rJMthH8gzQ==\n"
	"-----END EC PRIVATE KEY-----\n";
}

#define FUZZ_SENDER "sensor-01"
#define FUZZ_RECEIVER "display-02"
#define FUZZ_CS_ID "cs-main"
#define FUZZ_SESSION UINT64_C(0x5332530000000001)
/* Connect tokens are checked at this fixed "now". */
#define FUZZ_TOKEN_NOW UINT64_C(1700000000)
#define FUZZ_TOKEN_MAX_AGE UINT64_C(86400)

/*
 * The crypto API loads private keys from files only (mode 0600): write
 * the PEM to a private temporary file, load it, remove it.  Aborts on
 * failure: a target without its key would fuzz nothing.
 */
static inline struct s2s_key *
fuzz_load_key(const char *pem)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];
	struct s2s_key *k = NULL;
	size_t n = strlen(pem);
	int fd;

	snprintf(path, sizeof(path), "%s/s2s-fuzz-key-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);     /* mode 0600 */
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, pem, n) == (ssize_t)n);
	FUZZ_CHECK(close(fd) == 0);
	FUZZ_CHECK(s2s_key_load_private(path, &k) == S2S_OK);
	unlink(path);
	return k;
}

/*
 * The fixed chain of one direction at seq 1 (the sender's and the
 * receiver's are equal before the first message).
 */
static inline void
fuzz_chain(struct s2s_chain *c, enum s2s_profile prof)
{
	uint8_t skcs[S2S_SKCS_LEN], sk[32], shk[32];
	size_t sk_len = prof == S2S_PROFILE_PAPER ? 24 : 32;

	for (size_t i = 0; i < sizeof(skcs); i++)
		skcs[i] = (uint8_t)(i * 13 + 1);
	for (size_t i = 0; i < sizeof(sk); i++)
		sk[i] = (uint8_t)(i * 29 + 7);
	for (size_t i = 0; i < sizeof(shk); i++)
		shk[i] = (uint8_t)(i * 31 + 3);
	memset(c, 0, sizeof(*c));
	FUZZ_CHECK(s2s_chain_init(c, prof, FUZZ_SESSION, skcs, sk, sk_len,
				  shk, sizeof(shk)) == S2S_OK);
}

/* The stego key of fuzz_stego: fixed bytes. */
static inline void
fuzz_stego_key(uint8_t key[S2S_STEGO_KEY_LEN])
{
	for (size_t i = 0; i < S2S_STEGO_KEY_LEN; i++)
		key[i] = (uint8_t)(0xa5 ^ (i * 7));
}

/* A deterministic textured w x h cover (values 16..239). */
static inline void
fuzz_cover(struct s2s_image *img, uint32_t w, uint32_t h)
{
	uint32_t s = 0x12345678u;

	FUZZ_CHECK(s2s_image_alloc(img, w, h, 0) == S2S_OK);
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			int v;

			s = s * 1103515245u + 12345u;
			v = 128 + (int)((x * 3 + y * 5) % 61) - 30 +
			    (int)((s >> 16) % 21) - 10;
			img->pixels[(size_t)y * w + x] =
				(uint8_t)(v < 16 ? 16 : v > 239 ? 239 : v);
		}
	}
}

#endif /* S2S_FUZZ_COMMON_H */
