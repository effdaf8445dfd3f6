/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local.c - what keeps one device configuration safe on its own machine:
 *
 *   the state lock   <state_dir>/lock, held with flock() by the one client
 *                    (process) that uses the folder; it holds the pid and
 *                    the command line of the holder, so that a second one
 *                    is told who has the device.  Two processes with one
 *                    configuration would take each other's MQTT session
 *                    over and advance the same key chains from two copies
 *                    of the state: the CS then refuses the older copy's
 *                    packages and the session is lost.
 *
 *   the unread spool <state_dir>/unread (mode 0600), the verified messages
 *                    still queued for s2s_client_receive() when the client
 *                    was destroyed.  The key chain has moved past them, so
 *                    nobody could verify them again: they are kept here
 *                    and queued again by the next s2s_client_create(), so
 *                    a command that connected only to send does not lose
 *                    what a later receiver should see.
 *
 *   spool format: "S2SU" | u8 version (1) | be32 count | message* |
 *                 SHA-256 of everything before it
 *   message     : str8 sender | be64 session | be64 seq | u8 profile |
 *                 u8 fetched | bytes32 msg
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_private.h"
#include "s2s/bytes.h"
#include "s2s/secmem.h"

#define LOCK_FILE "lock"
#define SPOOL_FILE "unread"
#define SPOOL_VERSION 1

/* The command line of this process, spaces between the arguments. */
static void
own_command(char *out, size_t len)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		snprintf(out, len, "?");
		return;
	}
	out[n] = '\0';
	for (ssize_t i = 0; i < n - 1; i++)
		if (!out[i])
			out[i] = ' ';
}

int
local__lock(const char *state_dir, char *err, size_t err_len)
{
	char path[4096], holder[300], cmd[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", state_dir, LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (err && err_len)
			snprintf(err, err_len, "state_dir: cannot open %s: %s",
				 path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = read(fd, holder, sizeof(holder) - 1);
		char *nl;

		holder[n > 0 ? n : 0] = '\0';
		while ((nl = strchr(holder, '\n')))
			*nl = ' ';
		n = (ssize_t)strlen(holder);
		while (n > 0 && holder[n - 1] == ' ')
			holder[--n] = '\0';
		if (err && err_len)
			snprintf(err, err_len, "state_dir %s is in use by "
				 "process %s: one process at a time per device "
				 "configuration (stop it, or give this one its "
				 "own id and state_dir)", state_dir,
				 holder[0] ? holder : "(unknown)");
		close(fd);
		return -2;
	}
	own_command(cmd, sizeof(cmd));
	snprintf(holder, sizeof(holder), "%ld %s\n", (long)getpid(), cmd);
	if (ftruncate(fd, 0) == 0 &&
	    write(fd, holder, strlen(holder)) < 0) {
		/* The lock holds; only the name of the holder is missing. */
	}
	return fd;
}

void
local__unlock(int fd)
{
	if (fd >= 0) {
		if (ftruncate(fd, 0)) {
			/* a stale name is harmless: the lock is what counts */
		}
		close(fd);      /* releases the flock */
	}
}

enum s2s_err
local__spool_save(struct s2s_client *c)
{
	struct s2s_wbuf b = { 0 };
	uint8_t sum[S2S_SHA256_LEN];
	char path[4096], tmp[4200];
	uint32_t count = 0;
	enum s2s_err e = S2S_OK;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", c->cfg.state_dir, SPOOL_FILE);
	for (struct queued *q = c->rq_head; q; q = q->next)
		count++;
	if (!count) {
		if (unlink(path) && errno != ENOENT)
			return S2S_ERR_IO;
		return S2S_OK;
	}
	s2s_wbuf_put(&b, "S2SU", 4);
	s2s_wbuf_u8(&b, SPOOL_VERSION);
	s2s_wbuf_be(&b, count, 4);
	for (struct queued *q = c->rq_head; q; q = q->next) {
		const struct s2s_received *r = q->r;

		s2s_wbuf_str8(&b, r->sender_buf);
		s2s_wbuf_be(&b, r->info.session, 8);
		s2s_wbuf_be(&b, r->info.seq, 8);
		s2s_wbuf_u8(&b, (uint8_t)r->info.profile);
		s2s_wbuf_u8(&b, r->info.fetched);
		s2s_wbuf_bytes32(&b, r->msg, r->len);
	}
	if (!b.err)
		s2s_sha256(b.p, b.len, sum);
	s2s_wbuf_put(&b, sum, sizeof(sum));
	if (b.err) {
		e = b.err;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		e = S2S_ERR_IO;
		goto out;
	}
	for (size_t off = 0; off < b.len && !e;) {
		ssize_t w = write(fd, b.p + off, b.len - off);

		if (w < 0 && errno != EINTR)
			e = S2S_ERR_IO;
		else if (w > 0)
			off += (size_t)w;
	}
	if (!e && c->cfg.state_fsync && fsync(fd))
		e = S2S_ERR_IO;
	if (close(fd) && !e)
		e = S2S_ERR_IO;
	if (!e && rename(tmp, path))
		e = S2S_ERR_IO;
	if (e)
		unlink(tmp);
out:
	s2s_wbuf_wipe(&b);
	return e;
}

/* Lock held or not yet shared: append one spooled message to c->rq. */
static enum s2s_err
queue_one(struct s2s_client *c, const char *sender, uint64_t session,
	  uint64_t seq, int profile, bool fetched, const uint8_t *m, size_t n)
{
	struct queued *q = calloc(1, sizeof(*q));
	struct s2s_received *r = calloc(1, sizeof(*r));

	if (!q || !r || !(r->msg = malloc(n ? n : 1))) {
		free(q);
		free(r);
		return S2S_ERR_NOMEM;
	}
	memcpy(r->msg, m, n);
	r->len = n;
	snprintf(r->sender_buf, sizeof(r->sender_buf), "%s", sender);
	r->info.sender = r->sender_buf;
	r->info.receiver = c->cfg.id;
	r->info.session = session;
	r->info.seq = seq;
	r->info.profile = profile;
	r->info.fetched = fetched;
	q->r = r;
	if (c->rq_tail)
		c->rq_tail->next = q;
	else
		c->rq_head = q;
	c->rq_tail = q;
	return S2S_OK;
}

enum s2s_err
local__spool_load(struct s2s_client *c, char *err, size_t err_len)
{
	char path[4096];
	uint8_t *buf = NULL, sum[S2S_SHA256_LEN];
	struct s2s_rbuf r;
	struct stat sb;
	enum s2s_err e = S2S_OK;
	uint32_t count;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", c->cfg.state_dir, SPOOL_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? S2S_OK : S2S_ERR_IO;
	if (fstat(fd, &sb) || sb.st_size < 4 + 1 + 4 + S2S_SHA256_LEN ||
	    sb.st_size > 64L * 1024 * 1024 ||
	    !(buf = malloc((size_t)sb.st_size))) {
		close(fd);
		e = S2S_ERR_FORMAT;
		goto out;
	}
	got = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (got != sb.st_size) {
		e = S2S_ERR_IO;
		goto out;
	}
	s2s_sha256(buf, (size_t)got - S2S_SHA256_LEN, sum);
	if (memcmp(sum, buf + got - S2S_SHA256_LEN, S2S_SHA256_LEN) ||
	    memcmp(buf, "S2SU", 4) || buf[4] != SPOOL_VERSION) {
		e = S2S_ERR_FORMAT;
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.p = buf + 5;
	r.len = (size_t)got - 5 - S2S_SHA256_LEN;
	count = (uint32_t)s2s_rbuf_be(&r, 4);
	for (uint32_t i = 0; i < count && !r.err && !e; i++) {
		char sender[S2S_MSG_ID_MAX + 1];
		uint64_t session, seq;
		int profile;
		bool fetched;
		const uint8_t *m;
		size_t n = 0;

		s2s_rbuf_str8(&r, sender, sizeof(sender));
		session = s2s_rbuf_be(&r, 8);
		seq = s2s_rbuf_be(&r, 8);
		profile = s2s_rbuf_u8(&r);
		fetched = s2s_rbuf_u8(&r) != 0;
		m = s2s_rbuf_bytes(&r, 4, &n);
		if (!r.err)
			e = queue_one(c, sender, session, seq, profile,
				      fetched, m, n);
	}
	s2s_rbuf_end(&r);
	if (r.err && !e)
		e = S2S_ERR_FORMAT;
out:
	if (buf) {
		s2s_memzero(buf, (size_t)sb.st_size);
		free(buf);
	}
	if (e && err && err_len)
		snprintf(err, err_len, "state_dir: %s: %s (the messages it "
			 "kept cannot be read; move it away to go on)", path,
			 s2s_strerror(e));
	return e;
}
