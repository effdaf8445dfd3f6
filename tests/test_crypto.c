/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_crypto.c - core/crypto_wolfssl.c: hash, MAC and KDF against their
 * RFC vectors, 2^e mod lp, P-256 key files (modes, refusals, OpenSSL
 * interop fixtures), ECIES round trips and tampering, ECDSA, AES-GCM
 * records.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "s2s/crypto.h"
#include "s2s/secmem.h"
#include "vectors/scheme_vectors.h"
#include "vectors/vec_util.h"

/* ---- hashes (FIPS 180 examples) ------------------------------------------ */

struct hash_vec {
	const char *msg;
	const char *sha1, *sha256;
};

static const struct hash_vec hash_vectors[] = {
	{ "abc", "a9993e364706816aba3e25717850c26c9cd0d89d",
	  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
};

START_TEST(test_hash_vectors)
{
	const struct hash_vec *v = &hash_vectors[_i];
	size_t n = strlen(v->msg), cut = n / 3;
	uint8_t want1[20], want256[32], got1[20], got256[32];
	struct s2s_iov whole = { v->msg, n };
	struct s2s_iov parts[3] = {
		{ v->msg, cut }, { NULL, 0 }, { v->msg + cut, n - cut },
	};

	vec_unhex(v->sha1, want1, sizeof(want1));
	vec_unhex(v->sha256, want256, sizeof(want256));
	s2s_sha1v(&whole, 1, got1);
	ck_assert_mem_eq(got1, want1, 20);
	s2s_sha1v(parts, 3, got1);
	ck_assert_mem_eq(got1, want1, 20);
	s2s_sha256(v->msg, n, got256);
	ck_assert_mem_eq(got256, want256, 32);
	s2s_sha256v(parts, 3, got256);
	ck_assert_mem_eq(got256, want256, 32);
}
END_TEST

START_TEST(test_sha256_million_a)
{
	static uint8_t a[1000000];
	uint8_t want[32], got[32];

	memset(a, 'a', sizeof(a));
	vec_unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		  want, sizeof(want));
	s2s_sha256(a, sizeof(a), got);
	ck_assert_mem_eq(got, want, 32);
}
END_TEST

/* ---- HMAC-SHA-256 (RFC 4231 test cases 1-4, 6, 7) -------------------- */

struct hmac_vec {
	const char *key, *data, *mac;
};

static const struct hmac_vec hmac_vectors[] = {
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "4a656665",
	  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	  "dddddddddddddddddddddddddddddddddddd",
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaa",
	  "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
	  "65204b6579202d2048617368204b6579204669727374",
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaa",
	  "5468697320697320612074657374207573696e672061206c6172676572207468"
	  "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
	  "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
	  "647320746f20626520686173686564206265666f7265206265696e6720757365"
	  "642062792074686520484d414320616c676f726974686d2e",
	  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
};

START_TEST(test_hmac_vectors)
{
	const struct hmac_vec *v = &hmac_vectors[_i];
	uint8_t key[256], data[256], want[32], got[32];
	size_t nk = vec_unhex(v->key, key, sizeof(key));
	size_t nd = vec_unhex(v->data, data, sizeof(data));
	struct s2s_iov parts[2] = { { data, nd / 2 }, { data + nd / 2, nd - nd / 2 } };

	vec_unhex(v->mac, want, sizeof(want));
	ck_assert_int_eq(s2s_hmac_sha256v(key, nk, parts, 2, got), S2S_OK);
	ck_assert_mem_eq(got, want, 32);
}
END_TEST

/* The stepwise forms (precomputed key states) give the same MACs, with the
 * key used many times, for every key length (hashed beyond 64 bytes). */
START_TEST(test_hmac_key_vectors)
{
	const struct hmac_vec *v = &hmac_vectors[_i];
	uint8_t key[256], data[256], want[32], got[32];
	size_t nk = vec_unhex(v->key, key, sizeof(key));
	size_t nd = vec_unhex(v->data, data, sizeof(data));
	struct s2s_iov parts[2] = { { data, nd / 2 }, { data + nd / 2, nd - nd / 2 } };
	struct s2s_hmac_key k;

	vec_unhex(v->mac, want, sizeof(want));
	ck_assert_int_eq(s2s_hmac_key_init(&k, key, nk), S2S_OK);
	for (int i = 0; i < 3; i++) {
		memset(got, 0, sizeof(got));
		ck_assert_int_eq(s2s_hmac_key_mac(&k, parts, 2, got), S2S_OK);
		ck_assert_mem_eq(got, want, 32);
	}
	s2s_hmac_key_wipe(&k);
}
END_TEST

START_TEST(test_hmac_key_random)
{
	uint8_t key[200], data[300], a[32], b[32];
	struct s2s_hmac_key k;

	for (int i = 0; i < 200; i++) {
		size_t nk = (size_t)i % sizeof(key), nd = (size_t)(i * 7) %
							    sizeof(data);
		struct s2s_iov v[3] = { { data, nd / 3 },
					{ data + nd / 3, 0 },
					{ data + nd / 3, nd - nd / 3 } };
		struct s2s_sha256_ctx in;

		ck_assert_int_eq(s2s_random(key, sizeof(key)), S2S_OK);
		ck_assert_int_eq(s2s_random(data, sizeof(data)), S2S_OK);
		ck_assert_int_eq(s2s_hmac_sha256v(key, nk, v, 3, a), S2S_OK);
		ck_assert_int_eq(s2s_hmac_key_init(&k, key, nk), S2S_OK);
		ck_assert_int_eq(s2s_hmac_key_mac(&k, v, 3, b), S2S_OK);
		ck_assert_mem_eq(a, b, 32);
		/* Finishing an inner hash started by hand: the same. */
		ck_assert_int_eq(s2s_sha256_ctx_copy(&in, &k.inner), S2S_OK);
		ck_assert_int_eq(s2s_sha256_ctx_update(&in, data, nd / 3),
				 S2S_OK);
		memset(b, 0, sizeof(b));
		ck_assert_int_eq(s2s_hmac_key_finish(&k, &in, v + 1, 2, b),
				 S2S_OK);
		ck_assert_mem_eq(a, b, 32);
		s2s_hmac_key_wipe(&k);
	}
}
END_TEST

/* ---- HKDF-SHA-256 (RFC 5869 test cases 1-3) ------------------------------ */

struct hkdf_vec {
	const char *ikm, *salt, *info, *okm;
};

static const struct hkdf_vec hkdf_vectors[] = {
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
	  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	  "34007208d5b887185865" },
	{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	  "404142434445464748494a4b4c4d4e4f",
	  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
	  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	  "9d201395faa4b61a96c8" },
};

START_TEST(test_hkdf_vectors)
{
	const struct hkdf_vec *v = &hkdf_vectors[_i];
	uint8_t ikm[128], salt[128], info[128], want[128], got[128];
	size_t ni = vec_unhex(v->ikm, ikm, sizeof(ikm));
	size_t ns = vec_unhex(v->salt, salt, sizeof(salt));
	size_t nf = vec_unhex(v->info, info, sizeof(info));
	size_t no = vec_unhex(v->okm, want, sizeof(want));

	ck_assert_int_eq(s2s_hkdf_sha256(ikm, ni, ns ? salt : NULL, ns,
					 nf ? info : NULL, nf, got, no), S2S_OK);
	ck_assert_mem_eq(got, want, no);
}
END_TEST

START_TEST(test_hkdf_limits)
{
	uint8_t ikm[4] = { 1, 2, 3, 4 };
	static uint8_t out[255 * 32 + 1];

	ck_assert_int_eq(s2s_hkdf_sha256(ikm, 4, NULL, 0, NULL, 0, out, 0),
			 S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_hkdf_sha256(ikm, 4, NULL, 0, NULL, 0, out,
					 sizeof(out)), S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_hkdf_sha256(ikm, 4, NULL, 0, NULL, 0, out,
					 sizeof(out) - 1), S2S_OK);
}
END_TEST

/* ---- random --------------------------------------------------------------- */

START_TEST(test_random)
{
	uint8_t a[64], b[64];
	static uint8_t big[200000];

	ck_assert_int_eq(s2s_random(a, sizeof(a)), S2S_OK);
	ck_assert_int_eq(s2s_random(b, sizeof(b)), S2S_OK);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	ck_assert_int_eq(s2s_random(a, 0), S2S_OK);
	ck_assert_int_eq(s2s_random(big, sizeof(big)), S2S_OK);   /* chunked */
	ck_assert_ptr_nonnull(s2s_crypto_backend_version());
	ck_assert(strstr(s2s_crypto_backend_version(), "wolfSSL") != NULL);
	/* shut down, then used again: re-initialised */
	s2s_crypto_shutdown();
	ck_assert_int_eq(s2s_random(a, sizeof(a)), S2S_OK);
}
END_TEST

/* ---- 2^e mod lp ------------------------------------------------------------ */

START_TEST(test_pow2_small)
{
	uint8_t out[S2S_FFDHE2048_LEN], want[S2S_FFDHE2048_LEN] = { 0 };
	uint8_t e[257] = { 0 };

	ck_assert_int_eq(s2s_ffdhe2048_pow2(e, 1, out), S2S_OK);   /* 2^0 */
	want[255] = 1;
	ck_assert_mem_eq(out, want, sizeof(want));
	e[0] = 1;                                                   /* 2^1 */
	ck_assert_int_eq(s2s_ffdhe2048_pow2(e, 1, out), S2S_OK);
	want[255] = 2;
	ck_assert_mem_eq(out, want, sizeof(want));
	e[0] = 1;                                                   /* 2^256 */
	e[1] = 0;
	ck_assert_int_eq(s2s_ffdhe2048_pow2(e, 2, out), S2S_OK);
	want[255] = 0;
	want[255 - 32] = 1;
	ck_assert_mem_eq(out, want, sizeof(want));
	ck_assert_int_eq(s2s_ffdhe2048_pow2(e, 0, out), S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_ffdhe2048_pow2(e, 257, out), S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_ffdhe2048_pow2(NULL, 1, out), S2S_ERR_INVAL);
}
END_TEST

/* The table of test_scheme, reached through the crypto layer directly. */
START_TEST(test_pow2_vectors)
{
	const struct skcs_vec *v = &skcs_vectors[_i];
	uint8_t r[256], want[S2S_FFDHE2048_LEN], got[S2S_FFDHE2048_LEN];
	size_t n = vec_unhex(v->r, r, sizeof(r));

	vec_unhex(v->skcs, want, sizeof(want));
	ck_assert_int_eq(s2s_ffdhe2048_pow2(r, n, got), S2S_OK);
	ck_assert_mem_eq(got, want, sizeof(want));
}
END_TEST

/* ---- keys and key files -------------------------------------------------- */

static char tmpdir[256];

static void
tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/s2s-test-crypto-XXXXXX",
		 tests_env("TMPDIR", "/tmp"));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *
tmp_path(const char *name)
{
	static char buf[2][512];
	static int which;

	which ^= 1;
	snprintf(buf[which], sizeof(buf[which]), "%s/%s", tmpdir, name);
	return buf[which];
}

static void
write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[4096];
	FILE *f = fopen(from, "rb");
	size_t n;

	ck_assert_msg(f != NULL, "cannot open fixture %s", from);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	write_file(to, buf, n, mode);
}

static mode_t
file_mode(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

START_TEST(test_key_generate)
{
	struct s2s_key *a, *b, *p;
	uint8_t pa[65], pb[65], pp[65];

	ck_assert_int_eq(s2s_key_generate(&a), S2S_OK);
	ck_assert_int_eq(s2s_key_generate(&b), S2S_OK);
	ck_assert(s2s_key_has_private(a));
	ck_assert(!s2s_key_has_private(NULL));
	s2s_key_public(a, pa);
	s2s_key_public(b, pb);
	ck_assert_uint_eq(pa[0], 0x04);
	ck_assert(memcmp(pa, pb, 65) != 0);
	ck_assert_int_eq(s2s_key_from_public(pa, &p), S2S_OK);
	ck_assert(!s2s_key_has_private(p));
	s2s_key_public(p, pp);
	ck_assert_mem_eq(pp, pa, 65);
	s2s_key_destroy(a);
	s2s_key_destroy(b);
	s2s_key_destroy(p);
	s2s_key_destroy(NULL);
}
END_TEST

START_TEST(test_key_from_public_invalid)
{
	struct s2s_key *a, *p = NULL;
	uint8_t pub[65], bad[65];

	ck_assert_int_eq(s2s_key_generate(&a), S2S_OK);
	s2s_key_public(a, pub);
	/* off the curve: any change of one coordinate bit */
	for (size_t i = 1; i < 65; i += 7) {
		memcpy(bad, pub, 65);
		bad[i] ^= 0x01;
		ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_ERR_FORMAT);
	}
	memcpy(bad, pub, 65);
	bad[0] = 0x02;   /* compressed tag on an uncompressed length */
	ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_ERR_FORMAT);
	memset(bad, 0, 65);
	bad[0] = 0x04;   /* (0, 0) */
	ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_ERR_FORMAT);
	memset(bad + 1, 0xff, 64);   /* coordinates >= p */
	ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_ERR_FORMAT);
	ck_assert_ptr_null(p);
	/*
	 * (5, y) is on the curve; (5 + p, y) satisfies the equation mod p
	 * but is not a canonical encoding and must be refused.
	 */
	vec_unhex("04"
		  "0000000000000000000000000000000000000000000000000000000000000005"
		  "459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc",
		  bad, 65);
	ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_OK);
	s2s_key_destroy(p);
	p = NULL;
	vec_unhex("04"
		  "ffffffff00000001000000000000000000000001000000000000000000000004"
		  "459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc",
		  bad, 65);
	ck_assert_int_eq(s2s_key_from_public(bad, &p), S2S_ERR_FORMAT);
	ck_assert_ptr_null(p);
	s2s_key_destroy(a);
}
END_TEST

START_TEST(test_key_save_load)
{
	struct s2s_key *k, *priv, *pub, *pubonly;
	uint8_t a[65], b[65], sig[64];
	const char *base = tmp_path("dev");

	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	s2s_key_public(k, a);
	ck_assert_int_eq(s2s_key_save(k, base), S2S_OK);
	ck_assert_uint_eq(file_mode(tmp_path("dev.key")), 0600);
	ck_assert_uint_eq(file_mode(tmp_path("dev.pub")), 0644);

	ck_assert_int_eq(s2s_key_load_private(tmp_path("dev.key"), &priv),
			 S2S_OK);
	ck_assert(s2s_key_has_private(priv));
	s2s_key_public(priv, b);
	ck_assert_mem_eq(a, b, 65);
	ck_assert_int_eq(s2s_key_load_public(tmp_path("dev.pub"), &pub), S2S_OK);
	ck_assert(!s2s_key_has_private(pub));
	s2s_key_public(pub, b);
	ck_assert_mem_eq(a, b, 65);
	/* the loaded private key works with the original public one */
	ck_assert_int_eq(s2s_ecdsa_sign(priv, (const uint8_t *)"x", 1, sig),
			 S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_verify(pub, (const uint8_t *)"x", 1, sig),
			 S2S_OK);

	/* overwriting is atomic and keeps the mode */
	ck_assert_int_eq(s2s_key_save(priv, base), S2S_OK);
	ck_assert_uint_eq(file_mode(tmp_path("dev.key")), 0600);

	/* a public-only key cannot be saved */
	ck_assert_int_eq(s2s_key_save(pub, tmp_path("nope")), S2S_ERR_INVAL);
	ck_assert_int_ne(access(tmp_path("nope.key"), F_OK), 0);
	ck_assert_int_eq(s2s_key_from_public(a, &pubonly), S2S_OK);
	ck_assert_int_eq(s2s_key_save(pubonly, tmp_path("nope")), S2S_ERR_INVAL);
	/* a directory that does not exist */
	ck_assert_int_eq(s2s_key_save(k, tmp_path("no/such/dir")), S2S_ERR_IO);

	s2s_key_destroy(k);
	s2s_key_destroy(priv);
	s2s_key_destroy(pub);
	s2s_key_destroy(pubonly);
}
END_TEST

START_TEST(test_key_load_refusals)
{
	static const mode_t bad_modes[] = { 0640, 0604, 0620, 0602, 0660, 0644,
					    0666 };
	struct s2s_key *k, *out = NULL;
	const char *garbage = "-----BEGIN EC PRIVATE KEY-----\nnot base64!\n"
			      "-----END EC PRIVATE KEY-----\n";

	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	ck_assert_int_eq(s2s_key_save(k, tmp_path("d")), S2S_OK);

	for (size_t i = 0; i < VEC_COUNT(bad_modes); i++) {
		ck_assert_int_eq(chmod(tmp_path("d.key"), bad_modes[i]), 0);
		ck_assert_int_eq(s2s_key_load_private(tmp_path("d.key"), &out),
				 S2S_ERR_PERM);
	}
	ck_assert_int_eq(chmod(tmp_path("d.key"), 0400), 0);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("d.key"), &out), S2S_OK);
	s2s_key_destroy(out);
	out = NULL;

	ck_assert_int_eq(s2s_key_load_private(tmp_path("missing.key"), &out),
			 S2S_ERR_IO);
	ck_assert_int_eq(s2s_key_load_public(tmp_path("missing.pub"), &out),
			 S2S_ERR_IO);
	write_file(tmp_path("g.key"), garbage, strlen(garbage), 0600);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("g.key"), &out),
			 S2S_ERR_FORMAT);
	write_file(tmp_path("r.key"), "\x01\x02\x03random", 9, 0600);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("r.key"), &out),
			 S2S_ERR_FORMAT);
	write_file(tmp_path("e.key"), "", 0, 0600);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("e.key"), &out),
			 S2S_ERR_FORMAT);
	write_file(tmp_path("g.pub"), garbage, strlen(garbage), 0644);
	ck_assert_int_eq(s2s_key_load_public(tmp_path("g.pub"), &out),
			 S2S_ERR_FORMAT);
	/* each loader refuses the other kind of file */
	ck_assert_int_eq(chmod(tmp_path("d.pub"), 0600), 0);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("d.pub"), &out),
			 S2S_ERR_FORMAT);
	ck_assert_int_eq(s2s_key_load_public(tmp_path("d.key"), &out),
			 S2S_ERR_FORMAT);
	/* a directory is not a key */
	ck_assert_int_eq(s2s_key_load_public(tmpdir, &out), S2S_ERR_IO);
	ck_assert_ptr_null(out);
	s2s_key_destroy(k);
}
END_TEST

/*
 * Fixtures made by OpenSSL 3 (`openssl ecparam -name prime256v1 -genkey
 * -noout -out openssl-p256.key`, `openssl ec -pubout`): the formats are the
 * ones OpenSSL writes and reads.
 */
START_TEST(test_key_openssl_fixture)
{
	struct s2s_key *priv, *pub;
	uint8_t a[65], b[65], ct[256], pt[64];
	size_t ct_len, pt_len;

	copy_file(tests_src_path("tests/data/crypto/openssl-p256.key"),
		  tmp_path("o.key"), 0600);
	ck_assert_int_eq(s2s_key_load_private(tmp_path("o.key"), &priv),
			 S2S_OK);
	ck_assert_int_eq(s2s_key_load_public(
		tests_src_path("tests/data/crypto/openssl-p256.pub"), &pub),
		S2S_OK);
	s2s_key_public(priv, a);
	s2s_key_public(pub, b);
	ck_assert_mem_eq(a, b, 65);
	ck_assert_int_eq(s2s_ecies_seal(pub, (const uint8_t *)"interop", 7, ct,
					&ct_len), S2S_OK);
	ck_assert_int_eq(s2s_ecies_open(priv, ct, ct_len, pt, &pt_len), S2S_OK);
	ck_assert_uint_eq(pt_len, 7);
	ck_assert_mem_eq(pt, "interop", 7);
	s2s_key_destroy(priv);
	s2s_key_destroy(pub);
}
END_TEST

/* ---- ECIES ---------------------------------------------------------------- */

static struct s2s_key *alice, *bob;

static void
keys_setup(void)
{
	ck_assert_int_eq(s2s_key_generate(&alice), S2S_OK);
	ck_assert_int_eq(s2s_key_generate(&bob), S2S_OK);
}

static void
keys_teardown(void)
{
	s2s_key_destroy(alice);
	s2s_key_destroy(bob);
	alice = bob = NULL;
}

static void
round_trip(const struct s2s_key *to, const struct s2s_key *priv, size_t n)
{
	uint64_t seed = 0x1000 + n;
	uint8_t *pt = malloc(n + 1), *ct, *out;
	size_t ct_len = 0, out_len = 0, cap = s2s_ecies_sealed_len(n);

	ct = malloc(cap);
	out = malloc(cap);
	ck_assert(pt && ct && out);
	vec_fill(&seed, pt, n);
	ck_assert_int_eq(s2s_ecies_seal(to, pt, n, ct, &ct_len), S2S_OK);
	ck_assert_uint_eq(ct_len, cap);
	ck_assert_uint_eq(ct_len, 65 + (4 + n + 15) / 16 * 16 + 32);
	ck_assert_int_eq(s2s_ecies_open(priv, ct, ct_len, out, &out_len),
			 S2S_OK);
	ck_assert_uint_eq(out_len, n);
	ck_assert_mem_eq(out, pt, n);
	free(pt);
	free(ct);
	free(out);
}

START_TEST(test_ecies_round_trip)
{
	struct s2s_key *pub;
	uint8_t p[65];

	for (size_t n = 0; n <= 100; n++)
		round_trip(bob, bob, n);
	round_trip(bob, bob, 1000);
	round_trip(bob, bob, 4096);
	round_trip(bob, bob, 65539);
	round_trip(bob, bob, S2S_ECIES_MAX_PT);
	/* sealing to a public-only key */
	s2s_key_public(bob, p);
	ck_assert_int_eq(s2s_key_from_public(p, &pub), S2S_OK);
	round_trip(pub, bob, 33);
	s2s_key_destroy(pub);
}
END_TEST

START_TEST(test_ecies_fresh)
{
	uint8_t ct1[200], ct2[200];
	size_t n1, n2;

	ck_assert_int_eq(s2s_ecies_seal(bob, (const uint8_t *)"same", 4, ct1,
					&n1), S2S_OK);
	ck_assert_int_eq(s2s_ecies_seal(bob, (const uint8_t *)"same", 4, ct2,
					&n2), S2S_OK);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(ct1, ct2, 65) != 0);            /* ephemeral keys */
	ck_assert(memcmp(ct1 + 65, ct2 + 65, n1 - 65) != 0);
}
END_TEST

/* No plaintext byte may be left in out after a failure. */
static void
assert_no_plaintext(const uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(out[i] == 0 || out[i] == 0xaa,
			      "out[%zu] = %02x after a failed open", i, out[i]);
}

START_TEST(test_ecies_tamper)
{
	uint8_t pt[37], ct[256], out[256];
	size_t ct_len, out_len;
	enum s2s_err err;

	memset(pt, 0x5c, sizeof(pt));   /* neither 0x00 nor 0xaa */
	ck_assert_int_eq(s2s_ecies_seal(bob, pt, sizeof(pt), ct, &ct_len),
			 S2S_OK);
	for (size_t i = 0; i < ct_len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			ct[i] ^= (uint8_t)(1u << bit);
			memset(out, 0xaa, sizeof(out));
			out_len = 12345;
			err = s2s_ecies_open(bob, ct, ct_len, out, &out_len);
			ck_assert_msg(err == S2S_ERR_AUTH || err == S2S_ERR_FORMAT,
				      "byte %zu bit %d: %d", i, bit, err);
			ck_assert_uint_eq(out_len, 12345);
			assert_no_plaintext(out, sizeof(out));
			ct[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* every truncation, and an extension by one block */
	for (size_t n = 0; n < ct_len; n++) {
		memset(out, 0xaa, sizeof(out));
		err = s2s_ecies_open(bob, ct, n, out, &out_len);
		ck_assert(err == S2S_ERR_AUTH || err == S2S_ERR_FORMAT);
		assert_no_plaintext(out, sizeof(out));
	}
	memset(ct + ct_len, 0, 16);
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len + 16, out, &out_len),
			 S2S_ERR_AUTH);
	/* a block moved out of place */
	{
		uint8_t tmp[16];

		memcpy(tmp, ct + 65, 16);
		memcpy(ct + 65, ct + 81, 16);
		memcpy(ct + 81, tmp, 16);
		ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len),
				 S2S_ERR_AUTH);
		memcpy(ct + 81, ct + 65, 16);
		memcpy(ct + 65, tmp, 16);
	}
	/* the untouched ciphertext still opens */
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len), S2S_OK);
	ck_assert_uint_eq(out_len, sizeof(pt));
	ck_assert_mem_eq(out, pt, sizeof(pt));
}
END_TEST

START_TEST(test_ecies_wrong_key)
{
	uint8_t ct[256], out[256], pub[65];
	size_t ct_len, out_len;
	struct s2s_key *pubonly;

	ck_assert_int_eq(s2s_ecies_seal(bob, (const uint8_t *)"for bob", 7, ct,
					&ct_len), S2S_OK);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(s2s_ecies_open(alice, ct, ct_len, out, &out_len),
			 S2S_ERR_AUTH);
	assert_no_plaintext(out, sizeof(out));
	/* a public key cannot open */
	s2s_key_public(bob, pub);
	ck_assert_int_eq(s2s_key_from_public(pub, &pubonly), S2S_OK);
	ck_assert_int_eq(s2s_ecies_open(pubonly, ct, ct_len, out, &out_len),
			 S2S_ERR_INVAL);
	s2s_key_destroy(pubonly);
	/* limits */
	ck_assert_int_eq(s2s_ecies_seal(bob, ct, S2S_ECIES_MAX_PT + 1, out,
					&out_len), S2S_ERR_TOO_BIG);
	ck_assert_int_eq(s2s_ecies_seal(bob, NULL, 1, out, &out_len),
			 S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_ecies_seal(bob, NULL, 0, ct, &ct_len), S2S_OK);
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len), S2S_OK);
	ck_assert_uint_eq(out_len, 0);
}
END_TEST

/* A point that is not on the curve in place of the ephemeral key. */
START_TEST(test_ecies_invalid_point)
{
	uint8_t ct[256], out[256];
	size_t ct_len, out_len;

	ck_assert_int_eq(s2s_ecies_seal(bob, (const uint8_t *)"abc", 3, ct,
					&ct_len), S2S_OK);
	memset(ct + 1, 0, 64);
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len),
			 S2S_ERR_AUTH);
	ct[0] = 0x02;
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len),
			 S2S_ERR_AUTH);
}
END_TEST

struct thread_arg {
	int failures;
};

static void *
ecies_thread(void *p)
{
	struct thread_arg *a = p;
	uint8_t pt[100], ct[256], out[256], sig[64];
	size_t ct_len, out_len;

	for (int k = 0; k < 25; k++) {
		memset(pt, k, sizeof(pt));
		if (s2s_ecies_seal(bob, pt, sizeof(pt), ct, &ct_len) ||
		    s2s_ecies_open(bob, ct, ct_len, out, &out_len) ||
		    out_len != sizeof(pt) || memcmp(out, pt, sizeof(pt)) ||
		    s2s_ecdsa_sign(bob, pt, sizeof(pt), sig) ||
		    s2s_ecdsa_verify(bob, pt, sizeof(pt), sig))
			a->failures++;
	}
	return NULL;
}

/* One key, many threads: the per-key lock keeps wolfCrypt's state sane. */
START_TEST(test_ecies_threads)
{
	pthread_t t[4];
	struct thread_arg args[4] = { { 0 } };

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, ecies_thread,
						&args[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(args[i].failures, 0);
	}
}
END_TEST

/* ---- ECDSA ----------------------------------------------------------------- */

START_TEST(test_ecdsa)
{
	const uint8_t msg[] = "a message to sign";
	uint8_t sig[64], sig2[64], bad[sizeof(msg)];

	ck_assert_int_eq(s2s_ecdsa_sign(alice, msg, sizeof(msg), sig), S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_verify(alice, msg, sizeof(msg), sig), S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_sign(alice, msg, sizeof(msg), sig2), S2S_OK);
	ck_assert(memcmp(sig, sig2, 64) != 0);   /* random nonces */
	ck_assert_int_eq(s2s_ecdsa_verify(alice, msg, sizeof(msg), sig2), S2S_OK);
	for (int i = 0; i < 64 * 8; i++) {
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_eq(s2s_ecdsa_verify(alice, msg, sizeof(msg), sig),
				 S2S_ERR_AUTH);
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	memcpy(bad, msg, sizeof(msg));
	bad[3] ^= 0x20;
	ck_assert_int_eq(s2s_ecdsa_verify(alice, bad, sizeof(bad), sig),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_ecdsa_verify(alice, msg, sizeof(msg) - 1, sig),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_ecdsa_verify(bob, msg, sizeof(msg), sig),
			 S2S_ERR_AUTH);
	memset(sig2, 0, 64);
	ck_assert_int_eq(s2s_ecdsa_verify(alice, msg, sizeof(msg), sig2),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_ecdsa_sign(alice, NULL, 0, sig), S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_verify(alice, NULL, 0, sig), S2S_OK);
}
END_TEST

/*
 * RFC 6979 A.2.5, P-256 with SHA-256, message "sample" (the RFC's k gives
 * this r, s; verification does not depend on how k was chosen).  Also
 * recomputed with a few lines of Python over the curve equations.
 */
START_TEST(test_ecdsa_rfc6979)
{
	uint8_t pub[65], sig[64];
	struct s2s_key *k;

	pub[0] = 0x04;
	vec_unhex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
		  "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
		  pub + 1, 64);
	vec_unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
		  "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
		  sig, 64);
	ck_assert_int_eq(s2s_key_from_public(pub, &k), S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_verify(k, (const uint8_t *)"sample", 6, sig),
			 S2S_OK);
	ck_assert_int_eq(s2s_ecdsa_verify(k, (const uint8_t *)"Sample", 6, sig),
			 S2S_ERR_AUTH);
	/* r = n (the group order) must be rejected, not reduced */
	vec_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
		  sig, 32);
	ck_assert_int_eq(s2s_ecdsa_verify(k, (const uint8_t *)"sample", 6, sig),
			 S2S_ERR_AUTH);
	s2s_key_destroy(k);
}
END_TEST

/*
 * The fixed-point cache only changes speed: with it off (devices) and on,
 * ciphertexts open on either side, a signature verifies on the other, the
 * RFC 6979 vector still verifies, and repeated use of the same points
 * (which would build a table when on) gives the same answers.
 */
START_TEST(test_fixed_point_cache_off)
{
	uint8_t sig[64];

	for (int round = 0; round < 2; round++) {
		s2s_crypto_fixed_point_cache(round == 1);
		for (int i = 0; i < 4; i++) {
			round_trip(bob, bob, 32);
			round_trip(alice, alice, 100);
		}
		ck_assert_int_eq(s2s_ecdsa_sign(alice,
				 (const uint8_t *)"fp", 2, sig), S2S_OK);
		s2s_crypto_fixed_point_cache(round != 1);
		ck_assert_int_eq(s2s_ecdsa_verify(alice,
				 (const uint8_t *)"fp", 2, sig), S2S_OK);
		ck_assert_int_eq(s2s_ecdsa_verify(alice,
				 (const uint8_t *)"fP", 2, sig), S2S_ERR_AUTH);
	}
	s2s_crypto_fixed_point_cache(true);
}
END_TEST

/*
 * A key marked s2s_key_no_table seals to the same point: what it seals
 * opens with the private key, every time (each seal presents the point to
 * wolfCrypt under a new alias x + m*p), with the cache on and off, and its
 * public encoding is the point's own.
 */
START_TEST(test_key_no_table)
{
	uint8_t p[S2S_P256_PUB_LEN], q[S2S_P256_PUB_LEN];
	uint8_t pt[40], ct[256], out[256];
	size_t ct_len, out_len;
	struct s2s_key *pub;

	s2s_key_public(alice, p);
	ck_assert_int_eq(s2s_key_from_public(p, &pub), S2S_OK);
	s2s_key_no_table(pub);
	s2s_key_public(pub, q);
	ck_assert_mem_eq(p, q, sizeof(p));
	memset(pt, 0x5a, sizeof(pt));
	for (int round = 0; round < 2; round++) {
		s2s_crypto_fixed_point_cache(round == 0);
		for (int i = 0; i < 6; i++) {
			round_trip(pub, alice, 17 + (size_t)i);
			ck_assert_int_eq(s2s_ecies_seal(pub, pt, sizeof(pt),
							ct, &ct_len), S2S_OK);
			ct[ct_len - 1 - (size_t)i] ^= 1;
			ck_assert_int_eq(s2s_ecies_open(alice, ct, ct_len, out,
							&out_len),
					 S2S_ERR_AUTH);
		}
	}
	s2s_crypto_fixed_point_cache(true);
	/* Signatures: alice's verify through the alias, others' do not. */
	for (int i = 0; i < 4; i++) {
		uint8_t sig[S2S_P256_SIG_LEN];

		ck_assert_int_eq(s2s_ecdsa_sign(alice, pt, sizeof(pt), sig),
				 S2S_OK);
		ck_assert_int_eq(s2s_ecdsa_verify(pub, pt, sizeof(pt), sig),
				 S2S_OK);
		pt[i] ^= 1;
		ck_assert_int_eq(s2s_ecdsa_verify(pub, pt, sizeof(pt), sig),
				 S2S_ERR_AUTH);
		pt[i] ^= 1;
		ck_assert_int_eq(s2s_ecdsa_sign(bob, pt, sizeof(pt), sig),
				 S2S_OK);
		ck_assert_int_eq(s2s_ecdsa_verify(pub, pt, sizeof(pt), sig),
				 S2S_ERR_AUTH);
	}
	/* Not bob's: the alias is of alice's point, nobody else's. */
	ck_assert_int_eq(s2s_ecies_seal(pub, pt, sizeof(pt), ct, &ct_len),
			 S2S_OK);
	ck_assert_int_eq(s2s_ecies_open(bob, ct, ct_len, out, &out_len),
			 S2S_ERR_AUTH);
	s2s_key_no_table(NULL);
	s2s_key_destroy(pub);
}
END_TEST

/* ---- AES-256-GCM records ------------------------------------------------- */

/*
 * GCM specification (McGrew & Viega) test cases 13 and 14: AES-256, zero
 * key, zero 96-bit IV, no AAD; laid out as nonce || ciphertext || tag.
 */
START_TEST(test_aead_kat)
{
	uint8_t key[32] = { 0 }, in[12 + 16 + 16] = { 0 }, out[16];

	vec_unhex("530f8afbc74536b9a963b4f1c4cb738b", in + 12, 16);
	ck_assert_int_eq(s2s_aead_open(key, NULL, 0, in, 28, out), S2S_OK);
	vec_unhex("cea7403d4d606b6e074ec5d3baf39d18"
		  "d0d1c8a799996bf0265b98b5d48ab919", in + 12, 32);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(s2s_aead_open(key, NULL, 0, in, 44, out), S2S_OK);
	for (size_t i = 0; i < 16; i++)
		ck_assert_uint_eq(out[i], 0);
	in[20] ^= 1;
	ck_assert_int_eq(s2s_aead_open(key, NULL, 0, in, 44, out), S2S_ERR_AUTH);
}
END_TEST

/* XChaCha20-Poly1305 from the keyed object: round trip at every length
 * up to 100, fresh nonces across several refills of the nonce pool, every
 * flipped bit, a wrong aad, key or length refused (output wiped). */
START_TEST(test_xaead)
{
	uint8_t key[32], key2[32], pt[100], out[100];
	static uint8_t rec[101][100 + S2S_XAEAD_OVERHEAD];
	const uint8_t aad[] = "chain:x";
	struct s2s_aead *a = NULL;
	uint64_t seed = 77;

	vec_fill(&seed, key, sizeof(key));
	memcpy(key2, key, sizeof(key));
	key2[0] ^= 1;
	ck_assert_int_eq(s2s_aead_new(key, &a), S2S_OK);
	for (size_t k = 0; k <= 100; k++) {
		vec_fill(&seed, pt, k);
		ck_assert_int_eq(s2s_xaead_seal(a, aad, 7, pt, k, rec[k]),
				 S2S_OK);
		ck_assert_int_eq(s2s_xaead_open(key, aad, 7, rec[k],
						k + S2S_XAEAD_OVERHEAD, out),
				 S2S_OK);
		ck_assert_mem_eq(out, pt, k);
		for (size_t j = 0; j < k; j++)
			ck_assert(memcmp(rec[j], rec[k],
					 S2S_XAEAD_NONCE_LEN) != 0);
	}
	for (size_t i = 0; i < 66 + S2S_XAEAD_OVERHEAD; i++)
		for (int bit = 0; bit < 8; bit += 3) {
			rec[66][i] ^= (uint8_t)(1u << bit);
			memset(out, 0xaa, sizeof(out));
			ck_assert_int_eq(s2s_xaead_open(key, aad, 7, rec[66],
							66 +
							S2S_XAEAD_OVERHEAD,
							out), S2S_ERR_AUTH);
			assert_no_plaintext(out, 66);
			rec[66][i] ^= (uint8_t)(1u << bit);
		}
	ck_assert_int_eq(s2s_xaead_open(key, aad, 6, rec[66],
					66 + S2S_XAEAD_OVERHEAD, out),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_xaead_open(key2, aad, 7, rec[66],
					66 + S2S_XAEAD_OVERHEAD, out),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_xaead_open(key, aad, 7, rec[66],
					65 + S2S_XAEAD_OVERHEAD, out),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_xaead_open(key, aad, 7, rec[66],
					S2S_XAEAD_OVERHEAD - 1, out),
			 S2S_ERR_FORMAT);
	ck_assert_int_eq(s2s_xaead_open(key, aad, 7, rec[66],
					66 + S2S_XAEAD_OVERHEAD, out), S2S_OK);
	s2s_aead_free(a);
	s2s_aead_free(NULL);
}
END_TEST

START_TEST(test_aead_round_trip_tamper)
{
	uint8_t key[32], key2[32], pt[300], rec[300 + S2S_AEAD_OVERHEAD];
	uint8_t rec2[sizeof(rec)], out[300];
	const uint8_t aad[] = "device-17";
	uint64_t seed = 31;

	vec_fill(&seed, key, sizeof(key));
	memcpy(key2, key, sizeof(key));
	key2[31] ^= 0x80;
	for (size_t n = 0; n <= 64; n++) {
		vec_fill(&seed, pt, n);
		ck_assert_int_eq(s2s_aead_seal(key, aad, 9, pt, n, rec), S2S_OK);
		ck_assert_int_eq(s2s_aead_open(key, aad, 9, rec,
					       n + S2S_AEAD_OVERHEAD, out),
				 S2S_OK);
		ck_assert_mem_eq(out, pt, n);
	}
	memset(pt, 0x5c, sizeof(pt));
	ck_assert_int_eq(s2s_aead_seal(key, aad, 9, pt, 40, rec), S2S_OK);
	ck_assert_int_eq(s2s_aead_seal(key, aad, 9, pt, 40, rec2), S2S_OK);
	ck_assert(memcmp(rec, rec2, 40 + S2S_AEAD_OVERHEAD) != 0);
	for (size_t i = 0; i < 40 + S2S_AEAD_OVERHEAD; i++) {
		rec[i] ^= 0x04;
		memset(out, 0xaa, sizeof(out));
		ck_assert_int_eq(s2s_aead_open(key, aad, 9, rec,
					       40 + S2S_AEAD_OVERHEAD, out),
				 S2S_ERR_AUTH);
		assert_no_plaintext(out, 40);
		rec[i] ^= 0x04;
	}
	/* bound to its row, its key and its length */
	ck_assert_int_eq(s2s_aead_open(key, aad, 8, rec, 40 + S2S_AEAD_OVERHEAD,
				       out), S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_aead_open(key, NULL, 0, rec,
				       40 + S2S_AEAD_OVERHEAD, out),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_aead_open(key2, aad, 9, rec,
				       40 + S2S_AEAD_OVERHEAD, out),
			 S2S_ERR_AUTH);
	for (size_t n = 0; n < 40 + S2S_AEAD_OVERHEAD; n++) {
		enum s2s_err err = s2s_aead_open(key, aad, 9, rec, n, out);

		ck_assert(err == S2S_ERR_AUTH || err == S2S_ERR_FORMAT);
	}
	ck_assert_int_eq(s2s_aead_open(key, aad, 9, rec, 40 + S2S_AEAD_OVERHEAD,
				       out), S2S_OK);
	ck_assert_mem_eq(out, pt, 40);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *kat = tcase_create("vectors");
	TCase *keys = tcase_create("keys");
	TCase *pk = tcase_create("ecies-ecdsa");

	tcase_add_loop_test(kat, test_hash_vectors, 0, VEC_COUNT(hash_vectors));
	tcase_add_test(kat, test_sha256_million_a);
	tcase_add_loop_test(kat, test_hmac_vectors, 0, VEC_COUNT(hmac_vectors));
	tcase_add_loop_test(kat, test_hmac_key_vectors, 0,
			    VEC_COUNT(hmac_vectors));
	tcase_add_test(kat, test_hmac_key_random);
	tcase_add_loop_test(kat, test_hkdf_vectors, 0, VEC_COUNT(hkdf_vectors));
	tcase_add_test(kat, test_hkdf_limits);
	tcase_add_test(kat, test_random);
	tcase_add_test(kat, test_pow2_small);
	tcase_add_loop_test(kat, test_pow2_vectors, 0, VEC_COUNT(skcs_vectors));
	suite_add_tcase(s, kat);

	tcase_add_checked_fixture(keys, tmp_setup, tmp_teardown);
	tcase_add_test(keys, test_key_generate);
	tcase_add_test(keys, test_key_from_public_invalid);
	tcase_add_test(keys, test_key_save_load);
	tcase_add_test(keys, test_key_load_refusals);
	tcase_add_test(keys, test_key_openssl_fixture);
	suite_add_tcase(s, keys);

	tcase_add_checked_fixture(pk, keys_setup, keys_teardown);
	tcase_add_test(pk, test_ecies_round_trip);
	tcase_add_test(pk, test_ecies_fresh);
	tcase_add_test(pk, test_ecies_tamper);
	tcase_add_test(pk, test_ecies_wrong_key);
	tcase_add_test(pk, test_ecies_invalid_point);
	tcase_add_test(pk, test_ecies_threads);
	tcase_add_test(pk, test_ecdsa);
	tcase_add_test(pk, test_ecdsa_rfc6979);
	tcase_add_test(pk, test_fixed_point_cache_off);
	tcase_add_test(pk, test_key_no_table);
	tcase_add_test(pk, test_aead_kat);
	tcase_add_test(pk, test_aead_round_trip_tamper);
	tcase_add_test(pk, test_xaead);
	suite_add_tcase(s, pk);
	return s;
}

S2S_CHECK_MAIN(make_suite)
