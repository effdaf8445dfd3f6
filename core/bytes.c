/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bytes.c - s2s/bytes.h. */
#include <stdlib.h>
#include <string.h>

#include "s2s/bytes.h"
#include "s2s/secmem.h"

/* ---- Writer -------------------------------------------------------------- */

void
s2s_wbuf_reserve(struct s2s_wbuf *w, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (w->err || w->cap - w->len >= n)
		return;
	cap = w->cap ? w->cap : 256;
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2) {
			w->err = S2S_ERR_TOO_BIG;
			return;
		}
		cap *= 2;
	}
	/*
	 * Grow by copying so the old block can be wiped: inner buffers hold
	 * secrets and realloc() would leave them behind in freed memory.
	 */
	np = malloc(cap);
	if (!np) {
		w->err = S2S_ERR_NOMEM;
		return;
	}
	if (w->p) {
		memcpy(np, w->p, w->len);
		s2s_memzero(w->p, w->cap);
		free(w->p);
	}
	w->p = np;
	w->cap = cap;
}

void
s2s_wbuf_put(struct s2s_wbuf *w, const void *data, size_t n)
{
	s2s_wbuf_reserve(w, n);
	if (w->err || n == 0)
		return;
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

void
s2s_wbuf_u8(struct s2s_wbuf *w, uint8_t v)
{
	s2s_wbuf_put(w, &v, 1);
}

void
s2s_wbuf_be(struct s2s_wbuf *w, uint64_t v, int bytes)
{
	uint8_t b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	s2s_wbuf_put(w, b, (size_t)bytes);
}

void
s2s_wbuf_str8(struct s2s_wbuf *w, const char *s)
{
	size_t n = strlen(s);

	if (n > 255) {
		w->err = w->err ? w->err : S2S_ERR_INVAL;
		return;
	}
	s2s_wbuf_u8(w, (uint8_t)n);
	s2s_wbuf_put(w, s, n);
}

void
s2s_wbuf_bytes8(struct s2s_wbuf *w, const uint8_t *p, size_t n)
{
	if (n > 255) {
		w->err = w->err ? w->err : S2S_ERR_INVAL;
		return;
	}
	s2s_wbuf_u8(w, (uint8_t)n);
	s2s_wbuf_put(w, p, n);
}

void
s2s_wbuf_bytes16(struct s2s_wbuf *w, const uint8_t *p, size_t n)
{
	if (n > 0xffff) {
		w->err = w->err ? w->err : S2S_ERR_TOO_BIG;
		return;
	}
	s2s_wbuf_be(w, n, 2);
	s2s_wbuf_put(w, p, n);
}

void
s2s_wbuf_bytes32(struct s2s_wbuf *w, const uint8_t *p, size_t n)
{
	if (n > 0xffffffffu) {
		w->err = w->err ? w->err : S2S_ERR_TOO_BIG;
		return;
	}
	s2s_wbuf_be(w, n, 4);
	s2s_wbuf_put(w, p, n);
}

void
s2s_wbuf_wipe(struct s2s_wbuf *w)
{
	if (w->p) {
		s2s_memzero(w->p, w->cap);
		free(w->p);
	}
	w->p = NULL;
	w->len = w->cap = 0;
}

/* ---- Reader -------------------------------------------------------------- */

const uint8_t *
s2s_rbuf_take(struct s2s_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (r->len - r->off < n) {
		r->err = S2S_ERR_TRUNCATED;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint64_t
s2s_rbuf_be(struct s2s_rbuf *r, int bytes)
{
	const uint8_t *p = s2s_rbuf_take(r, (size_t)bytes);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

uint8_t
s2s_rbuf_u8(struct s2s_rbuf *r)
{
	return (uint8_t)s2s_rbuf_be(r, 1);
}

void
s2s_rbuf_fixed(struct s2s_rbuf *r, void *out, size_t n)
{
	const uint8_t *p = s2s_rbuf_take(r, n);

	if (p)
		memcpy(out, p, n);
}

void
s2s_rbuf_fail(struct s2s_rbuf *r, enum s2s_err err)
{
	if (!r->err)
		r->err = err;
}

void
s2s_rbuf_str8(struct s2s_rbuf *r, char *out, size_t cap)
{
	uint8_t n = s2s_rbuf_u8(r);
	const uint8_t *p = s2s_rbuf_take(r, n);

	if (!p)
		return;
	if ((size_t)n >= cap) {
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	if (memchr(out, '\0', n))
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
}

const uint8_t *
s2s_rbuf_bytes(struct s2s_rbuf *r, int len_bytes, size_t *n)
{
	*n = (size_t)s2s_rbuf_be(r, len_bytes);
	return s2s_rbuf_take(r, *n);
}

void
s2s_rbuf_end(struct s2s_rbuf *r)
{
	if (!r->err && r->off != r->len)
		r->err = S2S_ERR_FORMAT;
}

