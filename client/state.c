/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.c - the device state file (state.h): serialise, write atomically,
 * read back with every length checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s2s/bytes.h"
#include "s2s/crypto.h"
#include "s2s/secmem.h"
#include "state.h"

#define HDR_LEN 12
#define STATE_MAX (16u << 20)

static void
seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---- Writer ---------------------------------------------------------------- */

static void
put_chain(struct s2s_wbuf *b, const struct s2s_chain *c)
{
	s2s_wbuf_u8(b, c->profile);
	s2s_wbuf_be(b, c->session, 8);
	s2s_wbuf_be(b, c->next_seq, 8);
	s2s_wbuf_put(b, c->skcs, S2S_SKCS_LEN);
	s2s_wbuf_u8(b, c->sk_len);
	s2s_wbuf_put(b, c->sk, c->sk_len);
	s2s_wbuf_u8(b, c->shk_len);
	s2s_wbuf_put(b, c->shk, c->shk_len);
	s2s_wbuf_put(b, c->stego_key, S2S_STEGO_KEY_LEN);
}

static enum s2s_err
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return S2S_ERR_IO;
		}
		p += w;
		n -= (size_t)w;
	}
	return S2S_OK;
}

enum s2s_err
s2s_state_save(const char *dir, const struct s2s_state *st,
	       const struct s2s_state_pair *const *pairs, size_t n, bool sync)
{
	struct s2s_wbuf b = { 0 };
	uint8_t sum[S2S_SHA256_LEN];
	char path[4096], tmp[4096];
	enum s2s_err e;
	int fd;

	if (n > 65535)
		return S2S_ERR_TOO_BIG;
	s2s_wbuf_put(&b, "S2SS", 4);
	s2s_wbuf_u8(&b, S2S_STATE_VERSION);
	s2s_wbuf_put(&b, "\0\0\0", 3);
	s2s_wbuf_be(&b, 0, 4);   /* body length, patched below */
	s2s_wbuf_u8(&b, st->registered);
	s2s_wbuf_str8(&b, st->cs_id);
	s2s_wbuf_put(&b, st->cs_pub, S2S_P256_PUB_LEN);
	s2s_wbuf_be(&b, n, 2);
	for (size_t i = 0; i < n; i++) {
		const struct s2s_state_pair *p = pairs[i];

		s2s_wbuf_str8(&b, p->peer);
		s2s_wbuf_str8(&b, p->pair_id);
		s2s_wbuf_u8(&b, p->profile);
		s2s_wbuf_u8(&b, p->status);
		s2s_wbuf_u8(&b, p->shk_len);
		s2s_wbuf_put(&b, p->shk, p->shk_len);
		s2s_wbuf_u8(&b, p->established);
		if (p->established) {
			s2s_wbuf_be(&b, p->session, 8);
			s2s_wbuf_u8(&b, p->role);
			put_chain(&b, &p->tx);
			put_chain(&b, &p->rx);
		}
	}
	if (b.err) {
		e = S2S_ERR_NOMEM;
		goto out;
	}
	{
		size_t body = b.len - HDR_LEN;

		b.p[8] = (uint8_t)(body >> 24);
		b.p[9] = (uint8_t)(body >> 16);
		b.p[10] = (uint8_t)(body >> 8);
		b.p[11] = (uint8_t)body;
	}
	s2s_sha256(b.p, b.len, sum);
	s2s_wbuf_put(&b, sum, sizeof(sum));
	if (b.err) {
		e = S2S_ERR_NOMEM;
		goto out;
	}

	snprintf(path, sizeof(path), "%s/%s", dir, S2S_STATE_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.%ld.tmp", dir, S2S_STATE_FILE,
		 (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		e = S2S_ERR_IO;
		goto out;
	}
	e = fchmod(fd, 0600) ? S2S_ERR_IO : S2S_OK;
	if (!e)
		e = write_all(fd, b.p, b.len);
	if (!e && sync && fsync(fd))
		e = S2S_ERR_IO;
	if (close(fd) && !e)
		e = S2S_ERR_IO;
	if (!e && rename(tmp, path))
		e = S2S_ERR_IO;
	if (e) {
		int saved = errno;

		unlink(tmp);
		errno = saved;
		goto out;
	}
	if (sync) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
out:
	s2s_wbuf_wipe(&b);
	return e;
}

/* ---- Reader ---------------------------------------------------------------- */

static void
get_chain(struct s2s_rbuf *r, struct s2s_chain *c)
{
	c->profile = (enum s2s_profile)s2s_rbuf_be(r, 1);
	c->session = s2s_rbuf_be(r, 8);
	c->next_seq = s2s_rbuf_be(r, 8);
	s2s_rbuf_fixed(r, c->skcs, S2S_SKCS_LEN);
	c->sk_len = (uint8_t)s2s_rbuf_be(r, 1);
	if (c->sk_len > S2S_SK_MAX) {
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		return;
	}
	s2s_rbuf_fixed(r, c->sk, c->sk_len);
	c->shk_len = (uint8_t)s2s_rbuf_be(r, 1);
	if (c->shk_len > S2S_SHK_MAX) {
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		return;
	}
	s2s_rbuf_fixed(r, c->shk, c->shk_len);
	s2s_rbuf_fixed(r, c->stego_key, S2S_STEGO_KEY_LEN);
	if (c->profile != S2S_PROFILE_PAPER &&
	    c->profile != S2S_PROFILE_HARDENED)
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
	if (!c->next_seq)
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
}

static enum s2s_err
parse_body(struct s2s_rbuf *r, struct s2s_state *st)
{
	size_t n;

	st->registered = s2s_rbuf_be(r, 1) != 0;
	s2s_rbuf_str8(r, st->cs_id, sizeof(st->cs_id));
	s2s_rbuf_fixed(r, st->cs_pub, S2S_P256_PUB_LEN);
	n = (size_t)s2s_rbuf_be(r, 2);
	if (r->err)
		return S2S_ERR_FORMAT;
	if (n) {
		st->pairs = calloc(n, sizeof(*st->pairs));
		if (!st->pairs)
			return S2S_ERR_NOMEM;
	}
	st->npairs = n;
	for (size_t i = 0; i < n && !r->err; i++) {
		struct s2s_state_pair *p = &st->pairs[i];

		s2s_rbuf_str8(r, p->peer, sizeof(p->peer));
		s2s_rbuf_str8(r, p->pair_id, sizeof(p->pair_id));
		p->profile = (uint8_t)s2s_rbuf_be(r, 1);
		p->status = (uint8_t)s2s_rbuf_be(r, 1);
		p->shk_len = (uint8_t)s2s_rbuf_be(r, 1);
		if (p->shk_len > S2S_SHK_MAX || p->profile > 2 ||
		    p->status > S2S_PAIR_DONE || !s2s_id_valid(p->peer)) {
			s2s_rbuf_fail(r, S2S_ERR_FORMAT);
			break;
		}
		s2s_rbuf_fixed(r, p->shk, p->shk_len);
		p->established = s2s_rbuf_be(r, 1) != 0;
		if (p->established) {
			p->session = s2s_rbuf_be(r, 8);
			p->role = (uint8_t)s2s_rbuf_be(r, 1);
			get_chain(r, &p->tx);
			get_chain(r, &p->rx);
			if (p->tx.session != p->session ||
			    p->rx.session != p->session)
				s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		}
	}
	if (r->err || r->off != r->len)
		return S2S_ERR_FORMAT;
	return S2S_OK;
}

static void txlog_apply(const char *dir, struct s2s_state *st);

enum s2s_err
s2s_state_load(const char *dir, struct s2s_state *st, char *err,
	       size_t err_len)
{
	char path[4096];
	uint8_t *buf = NULL;
	uint8_t sum[S2S_SHA256_LEN];
	struct stat sb;
	struct s2s_rbuf r;
	size_t len, body;
	enum s2s_err e;
	int fd;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", dir, S2S_STATE_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return S2S_ERR_NOT_FOUND;
		seterr(err, err_len, "%s: cannot open: %s", path,
		       strerror(errno));
		return S2S_ERR_IO;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		seterr(err, err_len, "%s: not a regular file", path);
		return S2S_ERR_IO;
	}
	if (sb.st_mode & 077) {
		close(fd);
		seterr(err, err_len,
		       "%s: holds secrets but is accessible by group or "
		       "others (mode %03o); chmod 600 it", path,
		       (unsigned)(sb.st_mode & 0777));
		return S2S_ERR_PERM;
	}
	if ((size_t)sb.st_size > STATE_MAX) {
		close(fd);
		seterr(err, err_len, "%s: too large to be a state file", path);
		return S2S_ERR_FORMAT;
	}
	len = (size_t)sb.st_size;
	buf = malloc(len ? len : 1);
	if (!buf) {
		close(fd);
		return S2S_ERR_NOMEM;
	}
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			free(buf);
			seterr(err, err_len, "%s: read error", path);
			return S2S_ERR_IO;
		}
		got += (size_t)n;
	}
	close(fd);

	e = S2S_ERR_FORMAT;
	if (len < HDR_LEN + S2S_SHA256_LEN || memcmp(buf, "S2SS", 4)) {
		seterr(err, err_len,
		       "%s: not a device state file, or damaged (bad header); "
		       "move it away to start afresh (the device then "
		       "negotiates new sessions)", path);
		goto out;
	}
	if (buf[4] != S2S_STATE_VERSION) {
		seterr(err, err_len,
		       "%s: written by format version %u, this library reads "
		       "version %u", path, buf[4], S2S_STATE_VERSION);
		e = S2S_ERR_VERSION;
		goto out;
	}
	body = (size_t)buf[8] << 24 | (size_t)buf[9] << 16 |
	       (size_t)buf[10] << 8 | buf[11];
	s2s_sha256(buf, len - S2S_SHA256_LEN, sum);
	if (buf[5] || buf[6] || buf[7] ||
	    body != len - HDR_LEN - S2S_SHA256_LEN ||
	    memcmp(sum, buf + len - S2S_SHA256_LEN, sizeof(sum))) {
		seterr(err, err_len,
		       "%s: damaged (checksum mismatch); move it away to "
		       "start afresh (the device then negotiates new "
		       "sessions)", path);
		goto out;
	}
	r.p = buf + HDR_LEN;
	r.len = body;
	r.off = 0;
	r.err = S2S_OK;
	e = parse_body(&r, st);
	if (e == S2S_ERR_FORMAT)
		seterr(err, err_len,
		       "%s: damaged (inconsistent fields); move it away to "
		       "start afresh", path);
	if (!e)
		txlog_apply(dir, st);
out:
	s2s_memzero(buf, len);
	free(buf);
	if (e)
		s2s_state_clear(st);
	return e;
}

void
s2s_state_clear(struct s2s_state *st)
{
	if (!st)
		return;
	if (st->pairs) {
		s2s_memzero(st->pairs, st->npairs * sizeof(*st->pairs));
		free(st->pairs);
	}
	s2s_memzero(st, sizeof(*st));
}

enum s2s_err
s2s_state_owner(const char *dir, const char *id, bool claim, char *err,
		size_t err_len)
{
	char path[4096], owner[S2S_MSG_ID_MAX + 2];
	FILE *f;
	size_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/device", dir);
	f = fopen(path, "re");
	if (f) {
		n = fread(owner, 1, sizeof(owner) - 1, f);
		fclose(f);
		owner[n] = '\0';
		owner[strcspn(owner, "\n")] = '\0';
		if (owner[0] && strcmp(owner, id)) {
			if (err && err_len)
				snprintf(err, err_len, "state_dir %s holds the "
					 "state of device '%s', not '%s': give "
					 "this configuration its own state_dir",
					 dir, owner, id);
			return S2S_ERR_STATE;
		}
		if (owner[0])
			return S2S_OK;
	} else if (errno != ENOENT) {
		if (err && err_len)
			snprintf(err, err_len, "state_dir: cannot read %s: %s",
				 path, strerror(errno));
		return S2S_ERR_IO;
	}
	if (!claim)
		return S2S_OK;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || dprintf(fd, "%s\n", id) < 0) {
		if (err && err_len)
			snprintf(err, err_len, "state_dir: cannot write %s: %s",
				 path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return S2S_ERR_IO;
	}
	close(fd);
	return S2S_OK;
}

/* ---- The send-chain journal (state.h) --------------------------------------- */

/* Parse one record; false if it is not a valid one. */
static bool
txlog_parse(const uint8_t *rec, uint64_t *counter, char *peer, size_t cap,
	    struct s2s_chain *tx)
{
	uint8_t sum[S2S_SHA256_LEN];
	struct s2s_rbuf r = { rec, S2S_TXLOG_REC - S2S_SHA256_LEN, 0, S2S_OK };

	if (memcmp(rec, "S2SJ", 4) || rec[4] != 1)
		return false;
	s2s_sha256(rec, S2S_TXLOG_REC - S2S_SHA256_LEN, sum);
	if (!s2s_ct_equal(sum, rec + S2S_TXLOG_REC - S2S_SHA256_LEN,
			  sizeof(sum)))
		return false;
	s2s_rbuf_take(&r, 5);
	*counter = s2s_rbuf_be(&r, 8);
	s2s_rbuf_str8(&r, peer, cap);
	get_chain(&r, tx);
	return !r.err && *counter > 0;
}

/* Bring st's send chains forward with the journal (state.h). */
static void
txlog_apply(const char *dir, struct s2s_state *st)
{
	char path[4096], peer[S2S_MSG_ID_MAX + 1];
	uint8_t *buf;
	uint64_t *best;
	struct s2s_chain tx;
	ssize_t n;
	int fd;

	if (!st->npairs)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, S2S_TXLOG_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	buf = malloc((size_t)S2S_TXLOG_SLOTS * S2S_TXLOG_REC);
	best = calloc(st->npairs, sizeof(*best));
	n = buf && best ? pread(fd, buf, (size_t)S2S_TXLOG_SLOTS *
				S2S_TXLOG_REC, 0) : -1;
	close(fd);
	/* Per pair, the record with the highest counter... */
	for (ssize_t off = 0; n > 0 && off + S2S_TXLOG_REC <= n;
	     off += S2S_TXLOG_REC) {
		uint64_t k;

		if (!txlog_parse(buf + off, &k, peer, sizeof(peer), &tx))
			continue;
		for (size_t i = 0; i < st->npairs; i++)
			if (!strcmp(st->pairs[i].peer, peer) && k > best[i])
				best[i] = k;
	}
	/* ... applied if it is of the pair's session and ahead. */
	for (ssize_t off = 0; n > 0 && off + S2S_TXLOG_REC <= n;
	     off += S2S_TXLOG_REC) {
		uint64_t k;

		if (!txlog_parse(buf + off, &k, peer, sizeof(peer), &tx))
			continue;
		for (size_t i = 0; i < st->npairs; i++) {
			struct s2s_state_pair *p = &st->pairs[i];

			if (strcmp(p->peer, peer) || k != best[i] ||
			    !p->established || tx.session != p->session ||
			    tx.session != p->tx.session ||
			    tx.profile != p->tx.profile ||
			    tx.next_seq <= p->tx.next_seq)
				continue;
			p->tx = tx;
		}
	}
	S2S_WIPE(tx);
	if (buf) {
		s2s_memzero(buf, (size_t)S2S_TXLOG_SLOTS * S2S_TXLOG_REC);
		free(buf);
	}
	free(best);
}

enum s2s_err
s2s_txlog_open(const char *dir, int *fd_out, uint64_t *counter)
{
	const size_t size = (size_t)S2S_TXLOG_SLOTS * S2S_TXLOG_REC;
	char path[4096], peer[S2S_MSG_ID_MAX + 1];
	uint8_t *buf = calloc(1, size);
	struct s2s_chain tx;
	struct stat sb;
	enum s2s_err e = S2S_OK;
	ssize_t n;
	int fd;

	*fd_out = -1;
	*counter = 0;
	if (!buf)
		return S2S_ERR_NOMEM;
	snprintf(path, sizeof(path), "%s/%s", dir, S2S_TXLOG_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
	    fchmod(fd, 0600)) {
		e = S2S_ERR_IO;
		goto out;
	}
	n = pread(fd, buf, size, 0);
	for (ssize_t off = 0; n > 0 && off + S2S_TXLOG_REC <= n;
	     off += S2S_TXLOG_REC) {
		uint64_t k;

		if (txlog_parse(buf + off, &k, peer, sizeof(peer), &tx) &&
		    k > *counter)
			*counter = k;
	}
	S2S_WIPE(tx);
	if (n < 0 || (size_t)n < size) {
		/* Written through (not sparse, not preallocated-unwritten),
		 * so that later writes in place change no metadata. */
		s2s_memzero(buf + (n > 0 ? n : 0), size - (size_t)(n > 0 ? n :
								     0));
		if (pwrite(fd, buf, size, 0) != (ssize_t)size || fsync(fd)) {
			e = S2S_ERR_IO;
			goto out;
		}
		{
			int dfd = open(dir, O_RDONLY | O_DIRECTORY |
					    O_CLOEXEC);

			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
		}
	}
out:
	s2s_memzero(buf, size);
	free(buf);
	if (e) {
		if (fd >= 0)
			close(fd);
		return e;
	}
	*fd_out = fd;
	return S2S_OK;
}

enum s2s_err
s2s_txlog_write(int fd, unsigned slot, uint64_t counter, const char *peer,
		const struct s2s_chain *tx, bool sync)
{
	struct s2s_wbuf b = { 0 };
	uint8_t sum[S2S_SHA256_LEN];
	enum s2s_err e = S2S_OK;

	if (fd < 0 || slot >= S2S_TXLOG_SLOTS || !counter)
		return S2S_ERR_INVAL;
	s2s_wbuf_put(&b, "S2SJ", 4);
	s2s_wbuf_u8(&b, 1);
	s2s_wbuf_be(&b, counter, 8);
	s2s_wbuf_str8(&b, peer);
	put_chain(&b, tx);
	if (!b.err && b.len > S2S_TXLOG_REC - S2S_SHA256_LEN)
		e = S2S_ERR_TOO_BIG;
	else if (!b.err)
		s2s_wbuf_reserve(&b, S2S_TXLOG_REC - S2S_SHA256_LEN - b.len);
	if (!e && !b.err) {
		memset(b.p + b.len, 0, S2S_TXLOG_REC - S2S_SHA256_LEN - b.len);
		b.len = S2S_TXLOG_REC - S2S_SHA256_LEN;
		s2s_sha256(b.p, b.len, sum);
		s2s_wbuf_put(&b, sum, sizeof(sum));
	}
	if (!e && b.err)
		e = S2S_ERR_NOMEM;
	if (!e && pwrite(fd, b.p, S2S_TXLOG_REC,
			 (off_t)slot * S2S_TXLOG_REC) != S2S_TXLOG_REC)
		e = S2S_ERR_IO;
	if (!e && sync && fdatasync(fd))
		e = S2S_ERR_IO;
	s2s_wbuf_wipe(&b);
	return e;
}
