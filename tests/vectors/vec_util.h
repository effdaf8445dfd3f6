/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vec_util.h - helpers for the known-answer tables: hex decoding and a
 * seeded generator, so that test inputs are the same on every run.
 * Include after check.h.
 */
#ifndef S2S_VEC_UTIL_H
#define S2S_VEC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int
vec_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex (fails the test on bad input or overflow); returns the length. */
static inline size_t
vec_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);

	ck_assert_msg(n % 2 == 0, "odd hex vector");
	ck_assert_msg(n / 2 <= cap, "hex vector too long (%zu > %zu)", n / 2,
		      cap);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = vec_nibble(hex[2 * i]), lo = vec_nibble(hex[2 * i + 1]);

		ck_assert(hi >= 0 && lo >= 0);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
static inline void
vec_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* xorshift64*: deterministic test data, not for keys. */
static inline uint64_t
vec_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static inline void
vec_fill(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(vec_rand(s) >> 56);
}

#define VEC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif /* S2S_VEC_UTIL_H */
