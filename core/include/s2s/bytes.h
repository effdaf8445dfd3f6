/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/bytes.h - big-endian byte strings in and out, for every binary format
 * of the project (control messages, device state files).  Not installed:
 * shared by core/ and client/ only.
 *
 * A writer or reader remembers its first error and ignores later calls,
 * so a format is written or read as a straight list of fields with one
 * error check at the end.  The writer grows by copying and wipes the old
 * block, because what it holds is often secret; s2s_wbuf_wipe() wipes and
 * frees it.  Not thread-safe (one buffer per caller).
 */
#ifndef S2S_BYTES_H
#define S2S_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

struct s2s_wbuf {
	uint8_t *p;        /* malloc()ed; the caller takes it or wipes it */
	size_t len, cap;
	enum s2s_err err;  /* first failure: NOMEM, TOO_BIG or INVAL */
};

/* Make room for n more bytes (callers that write in place). */
void s2s_wbuf_reserve(struct s2s_wbuf *w, size_t n);
void s2s_wbuf_put(struct s2s_wbuf *w, const void *data, size_t n);
void s2s_wbuf_u8(struct s2s_wbuf *w, uint8_t v);
/* v as `bytes` (1..8) big-endian bytes. */
void s2s_wbuf_be(struct s2s_wbuf *w, uint64_t v, int bytes);
/* A NUL-terminated string of at most 255 bytes, u8 length first. */
void s2s_wbuf_str8(struct s2s_wbuf *w, const char *s);
/* n bytes with a u8 / be16 / be32 length first (INVAL / TOO_BIG if n is
 * over the length field). */
void s2s_wbuf_bytes8(struct s2s_wbuf *w, const uint8_t *p, size_t n);
void s2s_wbuf_bytes16(struct s2s_wbuf *w, const uint8_t *p, size_t n);
void s2s_wbuf_bytes32(struct s2s_wbuf *w, const uint8_t *p, size_t n);
/* Wipe the whole allocation, free it, and empty w (err is kept). */
void s2s_wbuf_wipe(struct s2s_wbuf *w);

struct s2s_rbuf {
	const uint8_t *p;
	size_t len, off;
	enum s2s_err err;  /* first failure: TRUNCATED or FORMAT */
};

/* The next n bytes, or NULL (TRUNCATED) if fewer are left. */
const uint8_t *s2s_rbuf_take(struct s2s_rbuf *r, size_t n);
/* A big-endian integer of `bytes` (1..8) bytes; 0 after a failure. */
uint64_t s2s_rbuf_be(struct s2s_rbuf *r, int bytes);
uint8_t s2s_rbuf_u8(struct s2s_rbuf *r);
/* Copy the next n bytes into out (untouched after a failure). */
void s2s_rbuf_fixed(struct s2s_rbuf *r, void *out, size_t n);
/* A u8-length string into out[cap] as a C string; FORMAT if it does not
 * fit or holds a NUL. */
void s2s_rbuf_str8(struct s2s_rbuf *r, char *out, size_t cap);
/* A `len_bytes`-length (1, 2 or 4) byte string: pointer into the input. */
const uint8_t *s2s_rbuf_bytes(struct s2s_rbuf *r, int len_bytes, size_t *n);
/* Record err unless an earlier failure is recorded. */
void s2s_rbuf_fail(struct s2s_rbuf *r, enum s2s_err err);
/* FORMAT if bytes are left over. */
void s2s_rbuf_end(struct s2s_rbuf *r);

#endif /* S2S_BYTES_H */
