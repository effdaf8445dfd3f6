/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seglog.h - the append-only segment log of the embedded store: accepted
 * packages and the chain state they advanced, one record per package.
 *
 * Knows nothing of Mosquitto, SQLite or sealing: the caller hands in the
 * chain state already sealed (store_embedded.c, seal.c).
 *
 * On disk: a folder of segment files "seg-<16 hex digits>.log", numbered
 * without gaps.  Records (all integers big-endian):
 *
 *   header  be32 magic "S2L1" | be32 body length | be32 CRC-32C(body)
 *   body    u8 type | u8 flags | u8 dir | u8 0 | be64 ts (unix s) |
 *           be64 session | be64 seq | str8 pair | str8 sender |
 *           be16 chain length | chain | be32 package length | package
 *
 * type PKG: a package accepted by the gate and, in the same record, the
 * sealed chain of its direction after it (next_seq = seq + 1).  type CHAIN:
 * the chain only, written again when the segment holding a direction's
 * newest chain is about to be freed.  type DROP: the pair was deleted;
 * earlier records of that pair are dead.  flags RELOC: a record copied
 * forward by compaction (its chain is an old state; it says nothing about
 * which session is current).
 *
 * Threading: every function may be called from any thread; one mutex
 * guards the index and the active segment.  The caller (the broker
 * thread) appends with one pwritev() under that mutex; a background
 * thread owned by the log does the rest (fdatasync by group commit,
 * retention, freeing and compacting whole segments).  Lock hold times on
 * the broker side are an append (one write), a lookup, or a fetch (its
 * reads); the background thread holds the lock only for index updates
 * and single relocated records, never across fsync or unlink.
 *
 * Durability: a record is in the kernel (survives kill -9 of the broker)
 * when seglog_append() returns S2S_OK; it is on stable storage (survives
 * power loss) at the next group commit, within sync_ms (0: fdatasync in
 * seglog_append itself).  Recovery (seglog_open) reads every segment,
 * checks every record's CRC, cuts a torn or garbage tail off the last
 * segment, and rebuilds the index and the newest chain per direction.
 */
#ifndef S2S_BROKER_SEGLOG_H
#define S2S_BROKER_SEGLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

#define SEGLOG_PKG 1
#define SEGLOG_CHAIN 2
#define SEGLOG_DROP 3
#define SEGLOG_F_RELOC 0x01

#define SEGLOG_ID_MAX 64                /* = S2S_MSG_ID_MAX */
#define SEGLOG_PAIR_MAX (2 * SEGLOG_ID_MAX + 1)
#define SEGLOG_CHAIN_MAX 128            /* sealed chain state */

struct seglog;

struct seglog_opts {
	const char *dir;            /* the folder (created 0700 if absent) */
	uint64_t segment_bytes;     /* roll over to a new file past this */
	unsigned sync_ms;           /* group commit interval, 0 = every append */
	uint64_t keep_per_pair;     /* newest packages kept per pair, 0 = all */
	uint64_t keep_age;          /* seconds, 0 = forever */
	/* Diagnostics (may be NULL); called with the lock held or not. */
	void (*log)(bool error, const char *msg);
};

/* One record.  Strings are NUL-terminated; pointers are the caller's. */
struct seglog_rec {
	uint8_t type, flags, dir;
	int64_t ts;
	uint64_t session, seq;
	char pair[SEGLOG_PAIR_MAX + 1];
	char sender[SEGLOG_ID_MAX + 1];
	const uint8_t *chain;
	size_t chain_len;
	const uint8_t *pkg;
	size_t pkg_len;
};

/* What is on disk, for $SYS, the admin API and the tests. */
struct seglog_usage {
	uint64_t segments;
	uint64_t bytes;             /* all segment files */
	uint64_t live_bytes;        /* records a FETCH can still return */
	uint64_t live_packages;
	uint64_t appended, synced;  /* records appended / group commits run */
	uint64_t freed_segments, relocated;
	uint64_t torn_bytes;        /* cut off at the last recovery */
};

/*
 * Open (create) the log in o->dir, recover, start the background thread.
 * S2S_ERR_IO / S2S_ERR_STORE with a message through o->log.
 */
enum s2s_err seglog_open(const struct seglog_opts *o, struct seglog **out);
/* Stop the thread, fdatasync, close.  NULL is fine. */
void seglog_close(struct seglog *l);

/*
 * Append one PKG record with one pwritev() and index it.  On a failed or
 * short write the segment is cut back and nothing is indexed.
 */
enum s2s_err seglog_append(struct seglog *l, const struct seglog_rec *r);
/* Write a DROP record and forget every record of pair. */
enum s2s_err seglog_drop_pair(struct seglog *l, const char *pair);

/*
 * The newest chain recorded for (pair, dir, session): *seq is the seq of
 * the package after which it holds (its next_seq is *seq + 1); the sealed
 * state is copied to buf (SEGLOG_CHAIN_MAX bytes).  false: none.
 */
bool seglog_chain(struct seglog *l, const char *pair, int dir,
		  uint64_t session, uint64_t *seq, uint8_t *buf,
		  size_t *len);

/*
 * Live packages of (pair, sender, session) with from <= seq <= to, in
 * order, at most max of them and no more than max_bytes of packages in
 * all (but always the first one).  Each is read back and its CRC checked
 * before cb sees it; cb runs with the lock held (do not call back in).
 */
enum s2s_err seglog_fetch(struct seglog *l, const char *pair,
			  const char *sender, uint64_t session,
			  uint64_t from, uint64_t to, unsigned max,
			  size_t max_bytes,
			  enum s2s_err (*cb)(void *arg, uint64_t seq,
					     const uint8_t *pkg, size_t len),
			  void *arg);
/* Live packages of pair (all sessions, both directions). */
long seglog_count(struct seglog *l, const char *pair);
/*
 * Apply keep_per_pair / keep_age now (the background thread also does
 * every second) and return the number of packages that became dead.
 * Their disk is freed when their whole segment is dead (or compacted).
 */
long seglog_retain(struct seglog *l, int64_t now);
/* Run the background housekeeping once, now (tests, shutdown). */
void seglog_housekeep(struct seglog *l);
void seglog_usage(struct seglog *l, struct seglog_usage *u);

/*
 * Read-only scan of a log folder without opening it for writing (tests,
 * tools): cb for every valid record in order; returns the number of
 * records, or -1 when the folder cannot be read.  *torn (may be NULL)
 * gets the bytes after the last valid record of the last segment.
 */
long seglog_scan(const char *dir,
		 void (*cb)(void *arg, const struct seglog_rec *r),
		 void *arg, uint64_t *torn);

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has it. */
uint32_t seglog_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* S2S_BROKER_SEGLOG_H */
