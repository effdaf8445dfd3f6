/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.h - the device state file (private to the client library).
 *
 * <state_dir>/state.s2s holds what a device must remember across restarts:
 * its registration (CS id and key), its pairs (peer, pair id, profile,
 * Shk) and the current session of each pair (T, role, both key chains
 * with their sequence numbers).  It holds secrets in clear, protected by
 * file mode 0600 in a 0700 directory, like an SSH private key.
 *
 * Format (all integers big-endian):
 *
 *   "S2SS" | u8 version (1) | 3 x u8 0 | be32 body length | body |
 *   SHA-256 of everything before it (detects a torn or damaged file)
 *
 *   body  = u8 registered | str8 cs_id | 65 pub_cs | be16 npairs | pair*
 *   pair  = str8 peer | str8 pair_id | u8 profile | u8 status |
 *           u8 shk_len | shk | u8 established
 *           [ be64 T | u8 role | chain tx | chain rx ]   if established
 *   chain = u8 profile | be64 T | be64 next_seq | 256 SkCS^T |
 *           u8 sk_len | sk | u8 shk_len | shk | 32 stego key
 *
 * Writes are atomic: a temporary file in the same folder (mode 0600),
 * fsync, rename over the old file, fsync of the folder.  A reader sees the
 * old state or the new one, never a mix.
 */
#ifndef S2S_CLIENT_STATE_H
#define S2S_CLIENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"
#include "s2s/proto.h"
#include "s2s/scheme.h"

#define S2S_STATE_FILE "state.s2s"
#define S2S_STATE_VERSION 1

enum s2s_pair_status {
	S2S_PAIR_NONE = 0,
	S2S_PAIR_PENDING = 1,
	S2S_PAIR_DONE = 2,
};

/* The persistent part of one pair. */
struct s2s_state_pair {
	char peer[S2S_MSG_ID_MAX + 1];
	char pair_id[2 * S2S_MSG_ID_MAX + 2];
	uint8_t profile;            /* 0 unknown, 1 paper, 2 hardened */
	uint8_t status;             /* enum s2s_pair_status */
	uint8_t shk[S2S_SHK_MAX];   /* secret */
	uint8_t shk_len;
	bool established;
	uint64_t session;
	uint8_t role;               /* enum s2s_role */
	struct s2s_chain tx;        /* this device -> peer (secret) */
	struct s2s_chain rx;        /* peer -> this device (secret) */
};

struct s2s_state {
	bool registered;
	char cs_id[S2S_MSG_ID_MAX + 1];
	uint8_t cs_pub[S2S_P256_PUB_LEN];
	size_t npairs;
	struct s2s_state_pair *pairs;   /* malloc()ed array */
};

/*
 * Read <dir>/state.s2s into st (st need not be initialised).
 * S2S_ERR_NOT_FOUND if there is no file (st is then empty),
 * S2S_ERR_PERM if it is readable by group or others, S2S_ERR_FORMAT if it
 * is damaged, S2S_ERR_VERSION if written by an unknown version, S2S_ERR_IO.
 * err (may be NULL) receives one line for people.
 */
enum s2s_err s2s_state_load(const char *dir, struct s2s_state *st,
			    char *err, size_t err_len);

/*
 * Write the state atomically: the registration fields of st and the n
 * pairs at pairs[0..n-1] (st->pairs is ignored).  sync: fsync the file and
 * the folder (durable across power loss), else only atomic.
 */
enum s2s_err s2s_state_save(const char *dir, const struct s2s_state *st,
			    const struct s2s_state_pair *const *pairs,
			    size_t n, bool sync);

/* Wipe and free. */
void s2s_state_clear(struct s2s_state *st);

/*
 * Whose state folder this is: <dir>/device holds the id of the device that
 * first used it (the state file itself does not name it).  S2S_OK when the
 * file names id, or is absent (then, if claim, it is written, 0600);
 * S2S_ERR_STATE when it names another device (two configurations sharing a
 * state_dir: one would use the other's registration, pairs and chains), with
 * a line naming both ids and the folder in err; S2S_ERR_IO.
 */
enum s2s_err s2s_state_owner(const char *dir, const char *id, bool claim,
			     char *err, size_t err_len);

/*
 * The send-chain journal, <dir>/txlog (0600): what s2s_client_send()
 * writes before a package leaves, instead of the whole state file.  A
 * file of S2S_TXLOG_SLOTS fixed records written in place (pwrite +
 * fdatasync of blocks written at creation: no metadata to commit, one
 * flush instead of the state file's file fsync, rename and folder fsync).
 *
 *   record: "S2SJ" | u8 version (1) | be64 counter | str8 peer |
 *           chain (the send chain, as in the state file) | zero padding |
 *           SHA-256 of the S2S_TXLOG_REC - 32 bytes before it
 *
 * s2s_state_load() applies it: per peer the valid record with the highest
 * counter, if its session is the pair's and its chain is ahead of the
 * state file's (a torn or older record changes nothing).  The writer
 * (client.c) uses a slot again only after a full state write newer than
 * every record written, and continues the counter of the file.
 */
#define S2S_TXLOG_FILE "txlog"
#define S2S_TXLOG_SLOTS 64
#define S2S_TXLOG_REC 640

/*
 * Open (creating it, written through with zeros and synced, if missing or
 * short) <dir>/txlog; *fd receives it, *counter the highest counter in it
 * (0 if none).  S2S_ERR_IO.
 */
enum s2s_err s2s_txlog_open(const char *dir, int *fd, uint64_t *counter);

/* Write the record (counter, peer, tx) into slot; sync: fdatasync. */
enum s2s_err s2s_txlog_write(int fd, unsigned slot, uint64_t counter,
			     const char *peer, const struct s2s_chain *tx,
			     bool sync);

#endif /* S2S_CLIENT_STATE_H */
