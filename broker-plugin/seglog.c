/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seglog.c - the append-only segment log (seglog.h has the format, the
 * threading and the durability contract).
 *
 * In memory: pairs in a hash table; per pair its streams, one per
 * (direction, session), each an array of index entries (seq, where, when)
 * sorted by seq with a moving head (entries before head are dead); per
 * segment its size and live bytes.  A segment is freed when it is the
 * oldest and nothing in it is live; compaction copies the live records of
 * the oldest segment forward when the files hold more than twice the live
 * data, so retention frees disk even when a slow pair keeps one package
 * alive in an old segment.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "seglog.h"

#define MAGIC 0x53324c31u               /* "S2L1" */
#define HDR 12
#define META_MAX (16 + 24 + 2 + SEGLOG_PAIR_MAX + 1 + SEGLOG_ID_MAX + 1 + \
		  2 + SEGLOG_CHAIN_MAX + 4)
#define REC_MAX ((uint64_t)1 << 31)
#define RETAIN_MS 1000
#define COMPACT_BYTES_PER_PASS (8u << 20)
/*
 * An append that overwrites pages already in the page cache costs less
 * than half of one that grows the file (measured: 5-6 us against 13 us
 * for 16.7 KB).  So the background thread keeps up to PREP_AHEAD bytes of
 * zeros written past the active segment's end, in PREP_CHUNK pieces that
 * start at least PREP_MARGIN past it; an append that would reach a piece
 * being written starts a new segment instead.  Zero tails end a segment
 * like its end of file (recovery cuts them silently).
 */
#define PREP_AHEAD (16u << 20)
#define PREP_CHUNK (128u << 10)
#define PREP_MARGIN (256u << 10)

/* ---- CRC-32C ----------------------------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

/*
 * The CRC instruction has a latency of three cycles and a throughput of
 * one: three independent lanes over consecutive CRC_LANE-byte blocks run
 * about three times as fast as one (a 16.7 KB record: ~0.7 us instead of
 * ~2 us on the broker thread).  The lanes are joined with the register's
 * linearity: raw(c, A || B) = Z(raw(c, A)) ^ raw(0, B), where Z feeds
 * CRC_LANE zero bytes; Z is linear in the 32-bit register, so it is four
 * table lookups (crc_zeros, built from Z of each register bit).
 */
#define CRC_LANE 512
static uint32_t crc_zeros[4][256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
				crc_table[0][crc_table[t - 1][i] & 0xff];
	/* Z of each register bit, by the table method (same polynomial) */
	{
		uint32_t zb[32];

		for (int b = 0; b < 32; b++) {
			uint32_t c = 1u << b;

			for (int k = 0; k < CRC_LANE; k++)
				c = (c >> 8) ^ crc_table[0][c & 0xff];
			zb[b] = c;
		}
		for (int t = 0; t < 4; t++)
			for (uint32_t v = 0; v < 256; v++) {
				uint32_t z = 0;

				for (int b = 0; b < 8; b++)
					if (v & (1u << b))
						z ^= zb[8 * t + b];
				crc_zeros[t][v] = z;
			}
	}
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t
crc_shift(uint32_t c)
{
	return crc_zeros[0][c & 0xff] ^ crc_zeros[1][(c >> 8) & 0xff] ^
	       crc_zeros[2][(c >> 16) & 0xff] ^ crc_zeros[3][c >> 24];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2")))
static uint32_t
crc_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	while (n && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		n--;
	}
	while (n >= 3 * CRC_LANE) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < CRC_LANE; i += 8) {
			uint64_t v0, v1, v2;

			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + CRC_LANE + i, 8);
			memcpy(&v2, p + 2 * CRC_LANE + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c = crc_shift(crc_shift((uint32_t)c) ^ (uint32_t)c1) ^
		    (uint32_t)c2;
		p += 3 * CRC_LANE;
		n -= 3 * CRC_LANE;
	}
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t
seglog_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (crc_hw)
		return ~crc_sse42(c, p, len);
#endif
	while (len >= 8) {
		c ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		c = crc_table[7][c & 0xff] ^ crc_table[6][(c >> 8) & 0xff] ^
		    crc_table[5][(c >> 16) & 0xff] ^ crc_table[4][c >> 24] ^
		    crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		    crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
	return ~c;
}

/* ---- encoding ------------------------------------------------------------ */

static void
be_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t
be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * The header and the body up to the package into meta; returns its
 * length (the package follows).  The CRC covers meta's body part and the
 * package.
 */
static size_t
rec_encode(const struct seglog_rec *r, uint8_t meta[META_MAX])
{
	size_t pl = strlen(r->pair), sl = strlen(r->sender), o = HDR;
	uint32_t crc;

	meta[o++] = r->type;
	meta[o++] = r->flags;
	meta[o++] = r->dir;
	meta[o++] = 0;
	be_put(meta + o, (uint64_t)r->ts, 8);
	be_put(meta + o + 8, r->session, 8);
	be_put(meta + o + 16, r->seq, 8);
	o += 24;
	meta[o++] = (uint8_t)pl;
	memcpy(meta + o, r->pair, pl);
	o += pl;
	meta[o++] = (uint8_t)sl;
	memcpy(meta + o, r->sender, sl);
	o += sl;
	be_put(meta + o, r->chain_len, 2);
	o += 2;
	if (r->chain_len)
		memcpy(meta + o, r->chain, r->chain_len);
	o += r->chain_len;
	be_put(meta + o, r->pkg_len, 4);
	o += 4;
	crc = seglog_crc32c(0, meta + HDR, o - HDR);
	crc = seglog_crc32c(crc, r->pkg, r->pkg_len);
	be_put(meta, MAGIC, 4);
	be_put(meta + 4, o - HDR + r->pkg_len, 4);
	be_put(meta + 8, crc, 4);
	return o;
}

static bool
rec_valid_args(const struct seglog_rec *r)
{
	size_t pl = strnlen(r->pair, sizeof(r->pair));
	size_t sl = strnlen(r->sender, sizeof(r->sender));

	return pl > 0 && pl <= SEGLOG_PAIR_MAX && sl <= SEGLOG_ID_MAX &&
	       r->chain_len <= SEGLOG_CHAIN_MAX && r->dir <= 1 &&
	       r->pkg_len < REC_MAX - META_MAX;
}

/* Parse a body of len bytes (CRC already checked). */
static bool
rec_decode(const uint8_t *b, size_t len, struct seglog_rec *r)
{
	size_t o = 28, n;

	memset(r, 0, sizeof(*r));
	if (len < o + 1)
		return false;
	r->type = b[0];
	r->flags = b[1];
	r->dir = b[2];
	r->ts = (int64_t)be_get(b + 4, 8);
	r->session = be_get(b + 12, 8);
	r->seq = be_get(b + 20, 8);
	n = b[o++];
	if (n == 0 || n > SEGLOG_PAIR_MAX || o + n + 1 > len)
		return false;
	memcpy(r->pair, b + o, n);
	o += n;
	n = b[o++];
	if (n > SEGLOG_ID_MAX || o + n + 2 > len)
		return false;
	memcpy(r->sender, b + o, n);
	o += n;
	n = (size_t)be_get(b + o, 2);
	o += 2;
	if (n > SEGLOG_CHAIN_MAX || o + n + 4 > len)
		return false;
	r->chain = b + o;
	r->chain_len = n;
	o += n;
	n = (size_t)be_get(b + o, 4);
	o += 4;
	if (o + n != len)
		return false;
	r->pkg = b + o;
	r->pkg_len = n;
	return (r->type == SEGLOG_PKG || r->type == SEGLOG_CHAIN ||
		r->type == SEGLOG_DROP) && r->dir <= 1;
}

/*
 * Read the record at off of fd into *buf (grown as needed).  1: ok, *len
 * = the whole record; 0: end or invalid (torn, garbage); -1: I/O error.
 */
static int
rec_read(int fd, uint64_t off, uint64_t size, uint8_t **buf, size_t *cap,
	 size_t *len)
{
	uint8_t h[HDR];
	uint64_t body;
	ssize_t n;

	if (size - off < HDR)
		return 0;
	n = pread(fd, h, HDR, (off_t)off);
	if (n < 0)
		return -1;
	if (n != HDR || be_get(h, 4) != MAGIC)
		return 0;
	body = be_get(h + 4, 4);
	if (body < 29 || body > REC_MAX || body > size - off - HDR)
		return 0;
	if (*cap < HDR + body) {
		uint8_t *nb = realloc(*buf, HDR + body);

		if (!nb)
			return -1;
		*buf = nb;
		*cap = HDR + body;
	}
	memcpy(*buf, h, HDR);
	n = pread(fd, *buf + HDR, body, (off_t)(off + HDR));
	if (n < 0)
		return -1;
	if ((uint64_t)n != body ||
	    seglog_crc32c(0, *buf + HDR, body) != be_get(h + 8, 4))
		return 0;
	*len = HDR + body;
	return 1;
}

/* ---- the index ------------------------------------------------------------ */

/* 32 bytes per stored package: the index is in memory. */
struct ent {
	uint64_t seq;
	uint64_t lsn;           /* append order, for per-pair retention */
	uint32_t ts;            /* unix seconds */
	uint32_t seg;
	uint32_t off;           /* segments are at most 1 GiB + one record */
	uint32_t len;           /* whole record */
};

static uint32_t
ts32(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

struct stream {
	struct stream *next;
	uint8_t dir;
	uint64_t session;
	char sender[SEGLOG_ID_MAX + 1];
	struct ent *e;
	size_t head, n, cap;
	/* newest chain of this stream */
	uint64_t chain_seq, chain_seg;
	uint16_t chain_len;
	uint8_t chain[SEGLOG_CHAIN_MAX];
};

struct lpair {
	struct lpair *hnext;
	char id[SEGLOG_PAIR_MAX + 1];
	struct stream *streams;
	struct stream *cur[2];          /* the current session, per dir */
	uint64_t live;
};

struct seg {
	uint64_t no;
	int fd;
	uint64_t size, live_bytes, live_n;
	uint64_t prep;          /* the file reaches here (zeros past size) */
	bool synced;
};

struct seglog {
	struct seglog_opts o;
	char *dir;
	int dirfd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, stop, dirty, dir_dirty;
	/* an append left less than PREP_AHEAD / 2 prepared: the background
	 * thread was woken to zero-fill ahead (once until it did) */
	bool prep_kick;
	/* zero-filling ahead of the active segment's end (prepare()) */
	bool claiming;
	uint64_t claim_seg, claim_lo;
	struct seg *segs;               /* oldest first; the last is active */
	size_t nsegs, capsegs;
	struct lpair **ht;
	size_t htsize, npairs;
	uint64_t lsn;
	struct seglog_usage u;
	int64_t next_retain_ms;
	uint8_t *rbuf;                  /* reads, under the lock */
	size_t rcap;
};

static void
say(struct seglog *l, bool error, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!l->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->o.log(error, msg);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static struct lpair *
pair_find(struct seglog *l, const char *id, bool create)
{
	size_t b = hash_str(id) & (l->htsize - 1);
	struct lpair *p;

	for (p = l->ht[b]; p; p = p->hnext)
		if (strcmp(p->id, id) == 0)
			return p;
	if (!create)
		return NULL;
	if (l->npairs + 1 > l->htsize) {
		size_t ns = l->htsize * 2;
		struct lpair **nh = calloc(ns, sizeof(*nh));

		if (nh) {
			for (size_t i = 0; i < l->htsize; i++) {
				while (l->ht[i]) {
					struct lpair *q = l->ht[i];
					size_t nb = hash_str(q->id) & (ns - 1);

					l->ht[i] = q->hnext;
					q->hnext = nh[nb];
					nh[nb] = q;
				}
			}
			free(l->ht);
			l->ht = nh;
			l->htsize = ns;
			b = hash_str(id) & (ns - 1);
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->hnext = l->ht[b];
	l->ht[b] = p;
	l->npairs++;
	return p;
}

static struct seg *
seg_of(struct seglog *l, uint64_t no)
{
	if (!l->nsegs || no < l->segs[0].no || no - l->segs[0].no >= l->nsegs)
		return NULL;
	return &l->segs[no - l->segs[0].no];
}

static void
ent_kill(struct seglog *l, struct lpair *p, const struct ent *e)
{
	struct seg *s = seg_of(l, e->seg);

	if (s) {
		s->live_bytes -= e->len;
		s->live_n--;
	}
	p->live--;
	l->u.live_bytes -= e->len;
	l->u.live_packages--;
}

static void
stream_free_all(struct seglog *l, struct lpair *p)
{
	while (p->streams) {
		struct stream *s = p->streams;

		p->streams = s->next;
		for (size_t i = s->head; i < s->n; i++)
			ent_kill(l, p, &s->e[i]);
		free(s->e);
		free(s);
	}
	p->cur[0] = p->cur[1] = NULL;
}

static void
pair_remove(struct seglog *l, const char *id)
{
	size_t b = hash_str(id) & (l->htsize - 1);

	for (struct lpair **pp = &l->ht[b]; *pp; pp = &(*pp)->hnext) {
		struct lpair *p = *pp;

		if (strcmp(p->id, id) == 0) {
			*pp = p->hnext;
			stream_free_all(l, p);
			free(p);
			l->npairs--;
			return;
		}
	}
}

static struct stream *
stream_find(struct lpair *p, int dir, uint64_t session, const char *sender,
	    bool create)
{
	struct stream *s;

	if (p->cur[dir] && p->cur[dir]->session == session)
		return p->cur[dir];
	for (s = p->streams; s; s = s->next)
		if (s->dir == dir && s->session == session)
			return s;
	if (!create)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->dir = (uint8_t)dir;
	s->session = session;
	snprintf(s->sender, sizeof(s->sender), "%s", sender);
	s->next = p->streams;
	p->streams = s;
	return s;
}

/* First index >= head with e.seq >= seq. */
static size_t
stream_lower(const struct stream *s, uint64_t seq)
{
	size_t lo = s->head, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->e[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one more entry at the end (drops the dead prefix first). */
static bool
stream_reserve(struct stream *s)
{
	if (s->head > 0 && s->head * 2 >= s->n) {
		memmove(s->e, s->e + s->head, (s->n - s->head) * sizeof(*s->e));
		s->n -= s->head;
		s->head = 0;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct ent *ne = realloc(s->e, nc * sizeof(*ne));

		if (!ne)
			return false;
		s->e = ne;
		s->cap = nc;
	}
	return true;
}

/* Insert or move the entry for e->seq (sorted); false when out of memory. */
static bool
stream_put(struct seglog *l, struct lpair *p, struct stream *s,
	   const struct ent *e)
{
	size_t i;
	struct seg *g;

	if (s->n == 0 || s->e[s->n - 1].seq < e->seq) {
		i = s->n;
	} else {
		i = stream_lower(s, e->seq);
		if (i < s->n && s->e[i].seq == e->seq) {
			/* the same package again (a relocated copy): move */
			ent_kill(l, p, &s->e[i]);
			s->e[i] = *e;
			goto live;
		}
		if (i == s->head && s->head > 0) {
			/* older than the head: a copy of a dead package */
			return true;
		}
	}
	i -= s->head;
	if (!stream_reserve(s))
		return false;
	i += s->head;
	memmove(s->e + i + 1, s->e + i, (s->n - i) * sizeof(*s->e));
	s->e[i] = *e;
	s->n++;
live:
	g = seg_of(l, e->seg);
	if (g) {
		g->live_bytes += e->len;
		g->live_n++;
	}
	p->live++;
	l->u.live_bytes += e->len;
	l->u.live_packages++;
	return true;
}

static void
chain_take(struct stream *s, const struct seglog_rec *r, uint64_t seg)
{
	if (!r->chain_len)
		return;
	if (s->chain_len && r->seq < s->chain_seq)
		return;
	s->chain_seq = r->seq;
	s->chain_seg = seg;
	s->chain_len = (uint16_t)r->chain_len;
	memcpy(s->chain, r->chain, r->chain_len);
}

/* Index one record found at (seg, off) of len bytes. */
static bool
index_rec(struct seglog *l, const struct seglog_rec *r, uint64_t seg,
	  uint64_t off, size_t len)
{
	struct lpair *p;
	struct stream *s;
	struct ent e;

	if (r->type == SEGLOG_DROP) {
		pair_remove(l, r->pair);
		return true;
	}
	p = pair_find(l, r->pair, true);
	if (!p)
		return false;
	s = stream_find(p, r->dir, r->session, r->sender, true);
	if (!s)
		return false;
	if (!(r->flags & SEGLOG_F_RELOC))
		p->cur[r->dir] = s;
	chain_take(s, r, seg);
	if (r->type != SEGLOG_PKG)
		return true;
	e.seq = r->seq;
	e.lsn = ++l->lsn;
	e.ts = ts32(r->ts);
	e.seg = (uint32_t)seg;
	e.off = (uint32_t)off;
	e.len = (uint32_t)len;
	return stream_put(l, p, s, &e);
}

/* ---- segments ------------------------------------------------------------ */

static void
seg_path(const struct seglog *l, uint64_t no, char *buf, size_t n)
{
	snprintf(buf, n, "%s/seg-%016" PRIx64 ".log", l->dir, no);
}

/* A new empty active segment (lock held). */
static enum s2s_err
seg_roll(struct seglog *l)
{
	char path[4096];
	uint64_t no = l->nsegs ? l->segs[l->nsegs - 1].no + 1 : 1;
	int fd;

	if (l->nsegs == l->capsegs) {
		size_t nc = l->capsegs ? l->capsegs * 2 : 8;
		struct seg *ns = realloc(l->segs, nc * sizeof(*ns));

		if (!ns)
			return S2S_ERR_NOMEM;
		l->segs = ns;
		l->capsegs = nc;
	}
	seg_path(l, no, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		say(l, true, "store log: %s: %s", path, strerror(errno));
		return S2S_ERR_IO;
	}
	if (l->nsegs)
		l->segs[l->nsegs - 1].synced = false;
	l->segs[l->nsegs++] = (struct seg){ .no = no, .fd = fd };
	l->dir_dirty = true;
	l->dirty = true;
	l->u.segments++;
	return S2S_OK;
}

/* Write a record (lock held); fills *where/len.  One pwritev. */
static enum s2s_err
write_rec(struct seglog *l, const struct seglog_rec *r, uint64_t *seg,
	  uint64_t *off, size_t *len)
{
	uint8_t meta[META_MAX];
	struct iovec iov[2];
	size_t ml = rec_encode(r, meta), total = ml + r->pkg_len;
	struct seg *a = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
	ssize_t n;
	enum s2s_err rc;

	if (!a || (a->size > 0 && a->size + total > l->o.segment_bytes) ||
	    (l->claiming && l->claim_seg == a->no &&
	     a->size + total > l->claim_lo)) {
		rc = seg_roll(l);
		if (rc != S2S_OK)
			return rc;
		a = &l->segs[l->nsegs - 1];
	}
	iov[0].iov_base = meta;
	iov[0].iov_len = ml;
	iov[1].iov_base = (void *)r->pkg;
	iov[1].iov_len = r->pkg_len;
	n = pwritev(a->fd, iov, r->pkg_len ? 2 : 1, (off_t)a->size);
	if (n < 0 || (size_t)n != total) {
		int e = n < 0 ? errno : ENOSPC;

		if (ftruncate(a->fd, (off_t)a->size) != 0)
			say(l, true, "store log: cannot cut back a short "
			    "write: %s", strerror(errno));
		say(l, true, "store log: write: %s", strerror(e));
		return S2S_ERR_STORE;
	}
	*seg = a->no;
	*off = a->size;
	*len = total;
	a->size += total;
	if (a->prep < a->size)
		a->prep = a->size;
	a->synced = false;
	l->u.bytes += total;
	l->u.appended++;
	l->dirty = true;
	if (!l->prep_kick && a->prep < a->size + PREP_AHEAD / 2 &&
	    a->size + PREP_AHEAD < l->o.segment_bytes) {
		/* Keep the zero-filled region ahead of a fast writer: at
		 * 10 000 packages/s the log grows 170 MB/s, PREP_AHEAD in
		 * about 0.1 s, more than one sync interval. */
		l->prep_kick = true;
		pthread_cond_signal(&l->cv);
	}
	return S2S_OK;
}

/* Zero-fill ahead of the active segment (background thread only). */
static void
prepare(struct seglog *l)
{
	static const uint8_t zeros[PREP_CHUNK];

	for (int k = 0; k < (int)(PREP_AHEAD / PREP_CHUNK); k++) {
		struct seg *a;
		uint64_t lo, no;
		int fd;
		ssize_t n;

		pthread_mutex_lock(&l->mu);
		a = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
		lo = a ? (a->prep > a->size + PREP_MARGIN ? a->prep :
			  a->size + PREP_MARGIN) : 0;
		if (!a || lo + PREP_CHUNK > a->size + PREP_AHEAD ||
		    lo + PREP_CHUNK > l->o.segment_bytes ||
		    (fd = dup(a->fd)) < 0) {
			pthread_mutex_unlock(&l->mu);
			return;
		}
		no = a->no;
		l->claiming = true;
		l->claim_seg = no;
		l->claim_lo = lo;
		pthread_mutex_unlock(&l->mu);
		n = pwrite(fd, zeros, PREP_CHUNK, (off_t)lo);
		close(fd);
		pthread_mutex_lock(&l->mu);
		l->claiming = false;
		a = seg_of(l, no);
		if (a && n == (ssize_t)PREP_CHUNK && a->prep < lo + PREP_CHUNK)
			a->prep = lo + PREP_CHUNK;
		pthread_mutex_unlock(&l->mu);
		if (n != (ssize_t)PREP_CHUNK)
			return;
	}
}

/* Cut the zero tails of segments that are no longer active. */
static void
trim_tails(struct seglog *l)
{
	for (;;) {
		uint64_t size = 0, no = 0;
		int fd = -1;

		pthread_mutex_lock(&l->mu);
		for (size_t i = 0; i + 1 < l->nsegs; i++) {
			if (l->segs[i].prep > l->segs[i].size) {
				fd = dup(l->segs[i].fd);
				size = l->segs[i].size;
				no = l->segs[i].no;
				l->segs[i].prep = size;
				break;
			}
		}
		pthread_mutex_unlock(&l->mu);
		if (fd < 0)
			return;
		if (ftruncate(fd, (off_t)size) != 0)
			say(l, true, "store log: cannot cut segment %" PRIu64
			    ": %s", no, strerror(errno));
		close(fd);
	}
}

static void
sync_now(struct seglog *l)
{
	int fds[64];
	uint64_t nos[64];
	size_t nf = 0;
	bool dir;

	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->nsegs && nf < 64; i++) {
		if (l->segs[i].synced)
			continue;
		fds[nf] = dup(l->segs[i].fd);
		nos[nf] = l->segs[i].no;
		if (fds[nf] >= 0)
			nf++;
		l->segs[i].synced = true;
	}
	dir = l->dir_dirty;
	l->dir_dirty = false;
	l->dirty = false;
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < nf; i++) {
		if (fdatasync(fds[i]) != 0) {
			say(l, true, "store log: fdatasync of segment %" PRIu64
			    ": %s", nos[i], strerror(errno));
			pthread_mutex_lock(&l->mu);
			if (seg_of(l, nos[i]))
				seg_of(l, nos[i])->synced = false;
			pthread_mutex_unlock(&l->mu);
		}
		close(fds[i]);
	}
	if (dir && fsync(l->dirfd) != 0)
		say(l, true, "store log: fsync of the folder: %s",
		    strerror(errno));
	if (nf) {
		pthread_mutex_lock(&l->mu);
		l->u.synced++;
		pthread_mutex_unlock(&l->mu);
	}
}

/* ---- retention, freeing, compaction --------------------------------------- */

static long
retain_locked(struct seglog *l, int64_t now)
{
	int64_t cutoff = l->o.keep_age ? now - (int64_t)l->o.keep_age
				       : INT64_MIN;
	long n = 0;

	for (size_t b = 0; b < l->htsize; b++) {
		for (struct lpair *p = l->ht[b]; p; p = p->hnext) {
			struct stream **sp;

			for (struct stream *s = p->streams; s; s = s->next) {
				while (s->head < s->n &&
				       (int64_t)s->e[s->head].ts < cutoff) {
					ent_kill(l, p, &s->e[s->head++]);
					n++;
				}
			}
			while (l->o.keep_per_pair && p->live >
			       l->o.keep_per_pair) {
				struct stream *old = NULL;

				for (struct stream *s = p->streams; s;
				     s = s->next)
					if (s->head < s->n &&
					    (!old || s->e[s->head].lsn <
					     old->e[old->head].lsn))
						old = s;
				if (!old)
					break;
				ent_kill(l, p, &old->e[old->head++]);
				n++;
			}
			/* empty streams of old sessions go */
			sp = &p->streams;
			while (*sp) {
				struct stream *s = *sp;

				if (s->head == s->n && s != p->cur[0] &&
				    s != p->cur[1]) {
					*sp = s->next;
					free(s->e);
					free(s);
				} else {
					if (s->head == s->n && s->cap > 16) {
						free(s->e);
						s->e = NULL;
						s->head = s->n = s->cap = 0;
					}
					sp = &s->next;
				}
			}
		}
	}
	return n;
}

/*
 * Before the oldest segment goes: the current chains whose newest record
 * is in it are written again at the head (lock held).
 */
static enum s2s_err
carry_chains(struct seglog *l, uint64_t segno)
{
	for (size_t b = 0; b < l->htsize; b++) {
		for (struct lpair *p = l->ht[b]; p; p = p->hnext) {
			for (int d = 0; d < 2; d++) {
				struct stream *s = p->cur[d];
				struct seglog_rec r;
				uint64_t sg, off;
				size_t len;
				enum s2s_err rc;

				if (!s || !s->chain_len || s->chain_seg > segno)
					continue;
				memset(&r, 0, sizeof(r));
				r.type = SEGLOG_CHAIN;
				r.dir = (uint8_t)d;
				r.ts = 0;
				r.session = s->session;
				r.seq = s->chain_seq;
				snprintf(r.pair, sizeof(r.pair), "%s", p->id);
				snprintf(r.sender, sizeof(r.sender), "%s",
					 s->sender);
				r.chain = s->chain;
				r.chain_len = s->chain_len;
				rc = write_rec(l, &r, &sg, &off, &len);
				if (rc != S2S_OK)
					return rc;
				s->chain_seg = sg;
			}
		}
	}
	return S2S_OK;
}

/* Free dead oldest segments (not the active one). */
static void
free_segments(struct seglog *l)
{
	for (;;) {
		char path[4096];
		int fd;

		pthread_mutex_lock(&l->mu);
		if (l->nsegs < 2 || l->segs[0].live_n > 0 ||
		    carry_chains(l, l->segs[0].no) != S2S_OK) {
			pthread_mutex_unlock(&l->mu);
			return;
		}
		seg_path(l, l->segs[0].no, path, sizeof(path));
		fd = l->segs[0].fd;
		l->u.bytes -= l->segs[0].size;
		l->u.segments--;
		l->u.freed_segments++;
		memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof(*l->segs));
		l->nsegs--;
		l->dir_dirty = true;
		pthread_mutex_unlock(&l->mu);
		close(fd);
		if (unlink(path) != 0)
			say(l, true, "store log: unlink %s: %s", path,
			    strerror(errno));
	}
}

/*
 * Copy the live records of the oldest segment to the head, a bounded
 * number of bytes per call, when the files hold more than twice the live
 * data (and at least two full segments more).
 */
static void
compact(struct seglog *l)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len, moved = 0;
	uint64_t segno, off = 0, size;
	int fd;

	pthread_mutex_lock(&l->mu);
	if (l->nsegs < 3 || l->u.bytes < 2 * l->u.live_bytes +
	    2 * l->o.segment_bytes) {
		pthread_mutex_unlock(&l->mu);
		return;
	}
	segno = l->segs[0].no;
	size = l->segs[0].size;
	fd = dup(l->segs[0].fd);
	pthread_mutex_unlock(&l->mu);
	if (fd < 0)
		return;
	while (moved < COMPACT_BYTES_PER_PASS) {
		struct seglog_rec r;
		struct lpair *p;
		struct stream *s;
		size_t i;
		int k = rec_read(fd, off, size, &buf, &cap, &len);

		if (k <= 0)
			break;
		if (!rec_decode(buf + HDR, len - HDR, &r))
			break;
		pthread_mutex_lock(&l->mu);
		if (r.type == SEGLOG_PKG &&
		    (p = pair_find(l, r.pair, false)) &&
		    (s = stream_find(p, r.dir, r.session, r.sender, false)) &&
		    (i = stream_lower(s, r.seq)) < s->n &&
		    s->e[i].seq == r.seq && s->e[i].seg == segno &&
		    s->e[i].off == off) {
			uint64_t ns, no;
			size_t nl;
			struct ent e = s->e[i];

			r.flags |= SEGLOG_F_RELOC;
			if (write_rec(l, &r, &ns, &no, &nl) == S2S_OK) {
				ent_kill(l, p, &s->e[i]);
				e.seg = (uint32_t)ns;
				e.off = (uint32_t)no;
				e.len = (uint32_t)nl;
				s->e[i] = e;
				{
					struct seg *g = seg_of(l, ns);

					g->live_bytes += nl;
					g->live_n++;
				}
				p->live++;
				l->u.live_bytes += nl;
				l->u.live_packages++;
				l->u.relocated++;
				moved += nl;
			}
		}
		pthread_mutex_unlock(&l->mu);
		off += len;
	}
	free(buf);
	close(fd);
}

void
seglog_housekeep(struct seglog *l)
{
	int64_t now = mono_ms();
	bool due;

	pthread_mutex_lock(&l->mu);
	due = now >= l->next_retain_ms;
	if (due) {
		struct timespec ts;

		l->next_retain_ms = now + RETAIN_MS;
		clock_gettime(CLOCK_REALTIME, &ts);
		(void)retain_locked(l, ts.tv_sec);
	}
	pthread_mutex_unlock(&l->mu);
	if (due) {
		compact(l);
		free_segments(l);
	}
	trim_tails(l);
	sync_now(l);
}

static void *
bg_main(void *arg)
{
	struct seglog *l = arg;
	unsigned ms = l->o.sync_ms ? l->o.sync_ms : 100;
	int64_t next = mono_ms() + ms;
	struct timespec ts;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		int64_t now = mono_ms();

		if (now < next && !l->prep_kick) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(next - now) * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			(void)pthread_cond_timedwait(&l->cv, &l->mu, &ts);
		}
		if (l->stop)
			break;
		l->prep_kick = false;
		pthread_mutex_unlock(&l->mu);
		/* the group commit every ms; zero-filling also when an
		 * append asked for it (prep_kick) */
		now = mono_ms();
		if (now >= next) {
			seglog_housekeep(l);
			next = now + ms;
		}
		prepare(l);             /* only ever on this thread */
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ---- recovery --------------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Segment numbers in dir, sorted; *out malloc()ed. -1: cannot read. */
static long
list_segments(const char *dir, uint64_t **out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		unsigned long long no;
		char tail[8];

		if (strlen(de->d_name) != 4 + 16 + 4 ||
		    sscanf(de->d_name, "seg-%16llx%7s", &no, tail) != 2 ||
		    strcmp(tail, ".log") != 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				free(v);
				closedir(d);
				return -1;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = no;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	return (long)n;
}

struct scan_ctx {
	void (*cb)(void *arg, const struct seglog_rec *r);
	void *arg;
	struct seglog *l;       /* recovery: index into it */
	bool oom;
};

/* Are the bytes [from, to) of fd all zero (a prepared tail)? */
static bool
all_zero(int fd, uint64_t from, uint64_t to)
{
	uint8_t b[4096];

	while (from < to) {
		size_t want = to - from < sizeof(b) ? (size_t)(to - from)
						     : sizeof(b);
		ssize_t n = pread(fd, b, want, (off_t)from);

		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n; i++)
			if (b[i])
				return false;
		from += (uint64_t)n;
	}
	return true;
}

/*
 * Read one segment file from the start; returns the offset after its last
 * valid record (the rest is torn or garbage), or -1 on an I/O error.
 */
static int64_t
scan_fd(int fd, uint64_t segno, struct scan_ctx *c, uint64_t size,
	long *count)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len;
	uint64_t off = 0;
	int k;

	while ((k = rec_read(fd, off, size, &buf, &cap, &len)) == 1) {
		struct seglog_rec r;

		if (!rec_decode(buf + HDR, len - HDR, &r))
			break;
		if (c->cb)
			c->cb(c->arg, &r);
		if (c->l && !index_rec(c->l, &r, segno, off, len))
			c->oom = true;
		off += len;
		(*count)++;
	}
	free(buf);
	return k < 0 ? -1 : (int64_t)off;
}

long
seglog_scan(const char *dir, void (*cb)(void *arg,
					const struct seglog_rec *r),
	    void *arg, uint64_t *torn)
{
	struct scan_ctx c = { cb, arg, NULL, false };
	uint64_t *nos;
	long n = list_segments(dir, &nos), count = 0;
	char path[4096];

	if (torn)
		*torn = 0;
	for (long i = 0; i < n; i++) {
		struct stat st;
		int64_t end;
		int fd;

		snprintf(path, sizeof(path), "%s/seg-%016" PRIx64 ".log", dir,
			 nos[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		end = scan_fd(fd, nos[i], &c, (uint64_t)st.st_size, &count);
		if (torn && i == n - 1 && end >= 0 &&
		    !all_zero(fd, (uint64_t)end, (uint64_t)st.st_size))
			*torn = (uint64_t)st.st_size - (uint64_t)end;
		close(fd);
	}
	free(nos);
	return n < 0 ? -1 : count;
}

static enum s2s_err
recover(struct seglog *l)
{
	struct scan_ctx c = { NULL, NULL, l, false };
	uint64_t *nos;
	long n = list_segments(l->dir, &nos), count = 0;
	char path[4096];

	if (n < 0) {
		say(l, true, "store log: cannot read %s: %s", l->dir,
		    strerror(errno));
		return S2S_ERR_IO;
	}
	for (long i = 0; i < n; i++) {
		struct stat st;
		int64_t end;
		int fd;

		if (i > 0 && nos[i] != nos[i - 1] + 1) {
			say(l, true, "store log: segment %" PRIu64 " is "
			    "missing; records before it are ignored",
			    nos[i - 1] + 1);
			/* start over from this segment */
			for (size_t k = 0; k < l->nsegs; k++)
				close(l->segs[k].fd);
			l->nsegs = 0;
			for (size_t b = 0; b < l->htsize; b++)
				while (l->ht[b]) {
					struct lpair *p = l->ht[b];

					l->ht[b] = p->hnext;
					stream_free_all(l, p);
					free(p);
				}
			l->npairs = 0;
			memset(&l->u, 0, sizeof(l->u));
		}
		seg_path(l, nos[i], path, sizeof(path));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0) {
			say(l, true, "store log: %s: %s", path,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			free(nos);
			return S2S_ERR_IO;
		}
		if (l->nsegs == l->capsegs) {
			size_t nc = l->capsegs ? l->capsegs * 2 : 8;
			struct seg *ns = realloc(l->segs, nc * sizeof(*ns));

			if (!ns) {
				close(fd);
				free(nos);
				return S2S_ERR_NOMEM;
			}
			l->segs = ns;
			l->capsegs = nc;
		}
		l->segs[l->nsegs++] = (struct seg){ .no = nos[i], .fd = fd,
						    .size = (uint64_t)st.st_size,
						    .synced = true };
		l->u.segments++;
		l->u.bytes += (uint64_t)st.st_size;
		end = scan_fd(fd, nos[i], &c, (uint64_t)st.st_size, &count);
		if (end < 0 || c.oom) {
			say(l, true, "store log: %s: %s", path,
			    c.oom ? "out of memory" : strerror(errno));
			free(nos);
			return c.oom ? S2S_ERR_NOMEM : S2S_ERR_IO;
		}
		if ((uint64_t)end < (uint64_t)st.st_size) {
			uint64_t cut = (uint64_t)st.st_size - (uint64_t)end;
			bool zeros = all_zero(fd, (uint64_t)end,
					      (uint64_t)st.st_size);

			if (zeros) {
				/* a prepared tail: the segment ends here */
				if (ftruncate(fd, (off_t)end) != 0)
					say(l, true, "store log: cannot cut %s:"
					    " %s", path, strerror(errno));
			} else if (i == n - 1) {
				say(l, false, "store log: %s: torn tail of %"
				    PRIu64 " bytes after the last complete "
				    "record cut off", path, cut);
				if (ftruncate(fd, (off_t)end) != 0 ||
				    fdatasync(fd) != 0) {
					say(l, true, "store log: cannot cut %s:"
					    " %s", path, strerror(errno));
					free(nos);
					return S2S_ERR_IO;
				}
				l->u.torn_bytes = cut;
			} else {
				say(l, true, "store log: %s: %" PRIu64 " bytes "
				    "after offset %" PRId64 " are not valid "
				    "records (damaged?); they are skipped",
				    path, cut, end);
			}
			l->u.bytes -= cut;
			l->segs[l->nsegs - 1].size = (uint64_t)end;
		}
	}
	free(nos);
	if (count > 0)
		say(l, false, "store log: %ld records in %zu segments "
		    "recovered (%" PRIu64 " live packages)", count, l->nsegs,
		    l->u.live_packages);
	return S2S_OK;
}

/* ---- the API ------------------------------------------------------------------ */

enum s2s_err
seglog_open(const struct seglog_opts *o, struct seglog **out)
{
	struct seglog *l = calloc(1, sizeof(*l));
	enum s2s_err rc;

	*out = NULL;
	if (!l)
		return S2S_ERR_NOMEM;
	l->o = *o;
	l->dirfd = -1;
	if (l->o.segment_bytes < 4096)
		l->o.segment_bytes = 4096;
	if (l->o.segment_bytes > (1u << 30))
		l->o.segment_bytes = 1u << 30;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->htsize = 64;
	l->dir = strdup(o->dir);
	l->ht = calloc(l->htsize, sizeof(*l->ht));
	if (!l->dir || !l->ht) {
		rc = S2S_ERR_NOMEM;
		goto fail;
	}
	l->o.dir = l->dir;
	if (mkdir(l->dir, 0700) != 0 && errno != EEXIST) {
		say(l, true, "store log: mkdir %s: %s", l->dir,
		    strerror(errno));
		rc = S2S_ERR_IO;
		goto fail;
	}
	l->dirfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		say(l, true, "store log: %s: %s", l->dir, strerror(errno));
		rc = S2S_ERR_IO;
		goto fail;
	}
	rc = recover(l);
	if (rc == S2S_OK) {
		pthread_mutex_lock(&l->mu);
		rc = seg_roll(l);      /* a fresh active segment per start */
		pthread_mutex_unlock(&l->mu);
	}
	if (rc != S2S_OK)
		goto fail;
	seglog_housekeep(l);
	if (pthread_create(&l->th, NULL, bg_main, l) != 0) {
		rc = S2S_ERR_STORE;
		goto fail;
	}
	l->started = true;
	*out = l;
	return S2S_OK;
fail:
	seglog_close(l);
	return rc;
}

void
seglog_close(struct seglog *l)
{
	if (!l)
		return;
	if (l->started) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->th, NULL);
		if (l->nsegs) {
			struct seg *a = &l->segs[l->nsegs - 1];

			if (a->prep > a->size &&
			    ftruncate(a->fd, (off_t)a->size) != 0)
				say(l, true, "store log: cannot cut the active "
				    "segment: %s", strerror(errno));
			a->prep = a->size;
			a->synced = false;
		}
		sync_now(l);
	}
	for (size_t b = 0; l->ht && b < l->htsize; b++)
		while (l->ht[b]) {
			struct lpair *p = l->ht[b];

			l->ht[b] = p->hnext;
			stream_free_all(l, p);
			memset(p, 0, sizeof(*p));
			free(p);
		}
	for (size_t i = 0; i < l->nsegs; i++)
		close(l->segs[i].fd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->segs);
	free(l->ht);
	free(l->rbuf);
	free(l->dir);
	free(l);
}

enum s2s_err
seglog_append(struct seglog *l, const struct seglog_rec *r)
{
	struct lpair *p;
	struct stream *s;
	struct ent e;
	uint64_t seg, off;
	size_t len;
	enum s2s_err rc;
	int fd = -1;

	if (r->type != SEGLOG_PKG || !rec_valid_args(r))
		return S2S_ERR_INVAL;
	pthread_mutex_lock(&l->mu);
	/* Index room first, so that a written record is always indexed. */
	p = pair_find(l, r->pair, true);
	s = p ? stream_find(p, r->dir, r->session, r->sender, true) : NULL;
	if (!s || !stream_reserve(s)) {
		pthread_mutex_unlock(&l->mu);
		return S2S_ERR_NOMEM;
	}
	rc = write_rec(l, r, &seg, &off, &len);
	if (rc == S2S_OK) {
		p->cur[r->dir] = s;
		chain_take(s, r, seg);
		e.seq = r->seq;
		e.lsn = ++l->lsn;
		e.ts = ts32(r->ts);
		e.seg = (uint32_t)seg;
		e.off = (uint32_t)off;
		e.len = (uint32_t)len;
		(void)stream_put(l, p, s, &e);
		if (l->o.sync_ms == 0)
			fd = dup(l->segs[l->nsegs - 1].fd);
	}
	pthread_mutex_unlock(&l->mu);
	if (fd >= 0) {
		if (fdatasync(fd) != 0)
			rc = S2S_ERR_IO;
		close(fd);
	}
	return rc;
}

enum s2s_err
seglog_drop_pair(struct seglog *l, const char *pair)
{
	struct seglog_rec r;
	uint64_t seg, off;
	size_t len;
	enum s2s_err rc = S2S_OK;

	memset(&r, 0, sizeof(r));
	r.type = SEGLOG_DROP;
	snprintf(r.pair, sizeof(r.pair), "%s", pair);
	if (!rec_valid_args(&r))
		return S2S_ERR_INVAL;
	pthread_mutex_lock(&l->mu);
	if (pair_find(l, pair, false)) {
		rc = write_rec(l, &r, &seg, &off, &len);
		if (rc == S2S_OK)
			pair_remove(l, pair);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

bool
seglog_chain(struct seglog *l, const char *pair, int dir, uint64_t session,
	     uint64_t *seq, uint8_t *buf, size_t *len)
{
	struct lpair *p;
	struct stream *s = NULL;
	bool found = false;

	if (dir < 0 || dir > 1)
		return false;
	pthread_mutex_lock(&l->mu);
	p = pair_find(l, pair, false);
	if (p)
		s = stream_find(p, dir, session, "", false);
	if (s && s->chain_len) {
		*seq = s->chain_seq;
		memcpy(buf, s->chain, s->chain_len);
		*len = s->chain_len;
		found = true;
	}
	pthread_mutex_unlock(&l->mu);
	return found;
}

enum s2s_err
seglog_fetch(struct seglog *l, const char *pair, const char *sender,
	     uint64_t session, uint64_t from, uint64_t to, unsigned max,
	     size_t max_bytes,
	     enum s2s_err (*cb)(void *arg, uint64_t seq, const uint8_t *pkg,
				size_t len),
	     void *arg)
{
	struct lpair *p;
	struct stream *s = NULL;
	enum s2s_err rc = S2S_OK;
	size_t sent = 0;
	unsigned count = 0;

	if (from > to)
		return S2S_OK;
	pthread_mutex_lock(&l->mu);
	p = pair_find(l, pair, false);
	for (struct stream *q = p ? p->streams : NULL; q; q = q->next)
		if (q->session == session && strcmp(q->sender, sender) == 0)
			s = q;
	for (size_t i = s ? stream_lower(s, from) : 0;
	     s && i < s->n && s->e[i].seq <= to && count < max &&
	     rc == S2S_OK; i++) {
		const struct ent *e = &s->e[i];
		struct seg *g = seg_of(l, e->seg);
		struct seglog_rec r;
		size_t len;

		if (count > 0 && sent + e->len > max_bytes)
			break;
		if (!g || rec_read(g->fd, e->off, g->size, &l->rbuf, &l->rcap,
				   &len) != 1 || len != e->len ||
		    !rec_decode(l->rbuf + HDR, len - HDR, &r) ||
		    r.seq != e->seq) {
			say(l, true, "store log: package %" PRIu64 " of pair "
			    "%s cannot be read back (damaged segment?)",
			    e->seq, pair);
			rc = S2S_ERR_STORE;
			break;
		}
		rc = cb(arg, e->seq, r.pkg, r.pkg_len);
		sent += e->len;
		count++;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

long
seglog_count(struct seglog *l, const char *pair)
{
	struct lpair *p;
	long n = 0;

	pthread_mutex_lock(&l->mu);
	p = pair_find(l, pair, false);
	if (p)
		n = (long)p->live;
	pthread_mutex_unlock(&l->mu);
	return n;
}

long
seglog_retain(struct seglog *l, int64_t now)
{
	long n;

	pthread_mutex_lock(&l->mu);
	n = retain_locked(l, now);
	pthread_mutex_unlock(&l->mu);
	return n;
}

void
seglog_usage(struct seglog *l, struct seglog_usage *u)
{
	pthread_mutex_lock(&l->mu);
	*u = l->u;
	pthread_mutex_unlock(&l->mu);
}
