/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/secmem.h - the end of life of secrets.
 *
 * Every key, derived key, chain position, bio-key slice and decrypted
 * plaintext is wiped with s2s_memzero() on every exit path, and every
 * comparison of a tag, token or key goes through s2s_ct_equal().  Nothing
 * else in the project may memcmp() a secret.
 */
#ifndef S2S_SECMEM_H
#define S2S_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define S2S_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define S2S_WARN_UNUSED
#endif

/*
 * Overwrite n bytes at p with zeros in a way the compiler may not remove.
 * p may be NULL when n is 0.
 */
void s2s_memzero(void *p, size_t n);

/*
 * true if the n bytes at a and b are equal.  The running time depends only
 * on n, never on the contents.  For equality only; it does not order.
 */
bool s2s_ct_equal(const void *a, const void *b, size_t n) S2S_WARN_UNUSED;

/* Wipe an array or struct object (not a pointer to one). */
#define S2S_WIPE(obj) s2s_memzero(&(obj), sizeof(obj))

#ifdef __cplusplus
}
#endif

#endif /* S2S_SECMEM_H */
