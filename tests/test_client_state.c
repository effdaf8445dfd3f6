/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_client_state.c - the device state file (client/state.c): round
 * trip, mode 0600, atomic replacement, and clear errors for damaged,
 * foreign-version and too-open files.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "check_main.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"
#include "state.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/s2s-state-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, S2S_STATE_FILE);
}

static void
teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[400];

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void
fill_pair(struct s2s_state_pair *p, const char *peer, bool session,
	  uint8_t seed)
{
	uint8_t skcs[S2S_SKCS_LEN], sk[32], shk[32];

	memset(p, 0, sizeof(*p));
	snprintf(p->peer, sizeof(p->peer), "%s", peer);
	snprintf(p->pair_id, sizeof(p->pair_id), "alice~%s", peer);
	p->profile = S2S_PROFILE_HARDENED;
	p->status = S2S_PAIR_DONE;
	for (int i = 0; i < 32; i++) {
		shk[i] = (uint8_t)(seed + i);
		sk[i] = (uint8_t)(seed * 3 + i);
	}
	for (int i = 0; i < S2S_SKCS_LEN; i++)
		skcs[i] = (uint8_t)(seed ^ i);
	memcpy(p->shk, shk, 32);
	p->shk_len = 32;
	if (!session)
		return;
	p->established = true;
	p->session = 0x1122334455667788ULL + seed;
	p->role = 1;
	ck_assert_int_eq(s2s_chain_init(&p->tx, S2S_PROFILE_HARDENED,
					p->session, skcs, sk, 32, shk, 32),
			 S2S_OK);
	p->rx = p->tx;
	p->tx.next_seq = 42;
	p->rx.next_seq = 7;
}

static void
save(const struct s2s_state *st, struct s2s_state_pair *pairs, size_t n)
{
	const struct s2s_state_pair *v[4] = { NULL };

	for (size_t i = 0; i < n; i++)
		v[i] = &pairs[i];
	ck_assert_int_eq(s2s_state_save(dir, st, v, n, true), S2S_OK);
}

START_TEST(test_round_trip)
{
	struct s2s_state st, got;
	struct s2s_state_pair pairs[2];
	char err[256];
	struct stat sb;

	memset(&st, 0, sizeof(st));
	st.registered = true;
	snprintf(st.cs_id, sizeof(st.cs_id), "cs");
	memset(st.cs_pub, 4, sizeof(st.cs_pub));
	fill_pair(&pairs[0], "bob", true, 1);
	fill_pair(&pairs[1], "carol", false, 2);
	pairs[1].status = S2S_PAIR_PENDING;
	save(&st, pairs, 2);

	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);

	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)), S2S_OK);
	ck_assert(got.registered);
	ck_assert_str_eq(got.cs_id, "cs");
	ck_assert_mem_eq(got.cs_pub, st.cs_pub, sizeof(st.cs_pub));
	ck_assert_uint_eq(got.npairs, 2);
	ck_assert_str_eq(got.pairs[0].peer, "bob");
	ck_assert_str_eq(got.pairs[0].pair_id, "alice~bob");
	ck_assert(got.pairs[0].established);
	ck_assert_uint_eq(got.pairs[0].session, pairs[0].session);
	ck_assert_uint_eq(got.pairs[0].tx.next_seq, 42);
	ck_assert_uint_eq(got.pairs[0].rx.next_seq, 7);
	ck_assert_mem_eq(got.pairs[0].tx.sk, pairs[0].tx.sk,
			 pairs[0].tx.sk_len);
	ck_assert_mem_eq(got.pairs[0].tx.skcs, pairs[0].tx.skcs, S2S_SKCS_LEN);
	ck_assert_mem_eq(got.pairs[0].rx.stego_key, pairs[0].rx.stego_key,
			 S2S_STEGO_KEY_LEN);
	ck_assert_mem_eq(got.pairs[0].shk, pairs[0].shk, 32);
	ck_assert(!got.pairs[1].established);
	ck_assert_uint_eq(got.pairs[1].status, S2S_PAIR_PENDING);
	s2s_state_clear(&got);
	ck_assert_ptr_null(got.pairs);
}
END_TEST

START_TEST(test_missing)
{
	struct s2s_state got;

	ck_assert_int_eq(s2s_state_load(dir, &got, NULL, 0), S2S_ERR_NOT_FOUND);
	ck_assert_uint_eq(got.npairs, 0);
}
END_TEST

START_TEST(test_atomic_replace)
{
	struct s2s_state st, got;
	struct s2s_state_pair pairs[1];
	struct stat a, b;
	DIR *d;
	struct dirent *e;
	int files = 0;

	memset(&st, 0, sizeof(st));
	save(&st, pairs, 0);
	ck_assert_int_eq(stat(path, &a), 0);
	fill_pair(&pairs[0], "bob", true, 9);
	st.registered = true;
	save(&st, pairs, 1);
	ck_assert_int_eq(stat(path, &b), 0);
	/* A new file renamed over the old one, never rewritten in place. */
	ck_assert_uint_ne(a.st_ino, b.st_ino);
	ck_assert_int_eq(b.st_mode & 0777, 0600);
	/* No temporary file left behind. */
	d = opendir(dir);
	while ((e = readdir(d)))
		files += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(files, 1);
	ck_assert_int_eq(s2s_state_load(dir, &got, NULL, 0), S2S_OK);
	ck_assert_uint_eq(got.npairs, 1);
	s2s_state_clear(&got);
}
END_TEST

static void
flip_byte(long off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	ck_assert_int_ge(fd, 0);
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

START_TEST(test_corrupt)
{
	struct s2s_state st, got;
	struct s2s_state_pair pairs[1];
	char err[512] = "";

	memset(&st, 0, sizeof(st));
	fill_pair(&pairs[0], "bob", true, 3);
	save(&st, pairs, 1);
	flip_byte(200);   /* inside the chains */
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)),
			 S2S_ERR_FORMAT);
	ck_assert_msg(strstr(err, "damaged") && strstr(err, path), "%s", err);
	ck_assert_ptr_null(got.pairs);

	/* Truncated. */
	save(&st, pairs, 1);
	ck_assert_int_eq(truncate(path, 100), 0);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)),
			 S2S_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "damaged"));

	/* Not a state file at all. */
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)),
			 S2S_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "not a device state file"));
}
END_TEST

START_TEST(test_version_and_mode)
{
	struct s2s_state st, got;
	char err[512] = "";

	memset(&st, 0, sizeof(st));
	save(&st, NULL, 0);
	flip_byte(4);     /* version 1 -> 0x41 */
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)),
			 S2S_ERR_VERSION);
	ck_assert_ptr_nonnull(strstr(err, "format version"));

	save(&st, NULL, 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)),
			 S2S_ERR_PERM);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
}
END_TEST

/*
 * The send-chain journal (state.h): the newest record of a pair brings
 * its send chain forward; a rollback record (newest, not ahead) keeps the
 * file's; torn records, other sessions and records behind the file change
 * nothing; reopening continues the counter; the file is 0600.
 */
START_TEST(test_txlog)
{
	struct s2s_state st, got;
	struct s2s_state_pair pairs[2];
	struct s2s_chain tx;
	char err[256], jp[160];
	uint64_t k;
	struct stat sb;
	int fd;

	memset(&st, 0, sizeof(st));
	fill_pair(&pairs[0], "bob", true, 1);
	fill_pair(&pairs[1], "carol", true, 2);
	save(&st, pairs, 2);            /* bob tx 42, carol tx 42 */
	ck_assert_int_eq(s2s_txlog_open(dir, &fd, &k), S2S_OK);
	ck_assert_uint_eq(k, 0);
	snprintf(jp, sizeof(jp), "%s/%s", dir, S2S_TXLOG_FILE);
	ck_assert_int_eq(stat(jp, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(sb.st_size, S2S_TXLOG_SLOTS * S2S_TXLOG_REC);

	/* bob: 43 then 44; carol: 43 */
	tx = pairs[0].tx;
	tx.next_seq = 43;
	ck_assert_int_eq(s2s_txlog_write(fd, 0, 1, "bob", &tx, true), S2S_OK);
	tx.next_seq = 44;
	tx.sk[0] ^= 0x5a;               /* the ratchet moved */
	ck_assert_int_eq(s2s_txlog_write(fd, 1, 2, "bob", &tx, true), S2S_OK);
	tx = pairs[1].tx;
	tx.next_seq = 43;
	ck_assert_int_eq(s2s_txlog_write(fd, 2, 3, "carol", &tx, true),
			 S2S_OK);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(got.pairs[0].tx.next_seq, 44);
	ck_assert_uint_eq(got.pairs[0].tx.sk[0], pairs[0].tx.sk[0] ^ 0x5a);
	ck_assert_uint_eq(got.pairs[1].tx.next_seq, 43);
	ck_assert_uint_eq(got.pairs[0].rx.next_seq, 7);   /* untouched */
	s2s_state_clear(&got);

	/* bob's package 43 never left: the rollback record wins. */
	tx = pairs[0].tx;
	tx.next_seq = 43;
	ck_assert_int_eq(s2s_txlog_write(fd, 3, 4, "bob", &tx, true), S2S_OK);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(got.pairs[0].tx.next_seq, 43);
	ck_assert_mem_eq(got.pairs[0].tx.sk, pairs[0].tx.sk, 32);
	s2s_state_clear(&got);

	/* A torn newest record: the one before it counts. */
	tx.next_seq = 50;
	ck_assert_int_eq(s2s_txlog_write(fd, 4, 5, "bob", &tx, true), S2S_OK);
	{
		uint8_t b;

		ck_assert_int_eq(pread(fd, &b, 1, 4 * S2S_TXLOG_REC + 100), 1);
		b ^= 1;
		ck_assert_int_eq(pwrite(fd, &b, 1, 4 * S2S_TXLOG_REC + 100), 1);
	}
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(got.pairs[0].tx.next_seq, 43);
	s2s_state_clear(&got);

	/* Another session's record, and one behind the file: ignored. */
	tx.session ^= 1;
	tx.next_seq = 60;
	ck_assert_int_eq(s2s_txlog_write(fd, 5, 6, "carol", &tx, true),
			 S2S_OK);
	pairs[0].tx.next_seq = 45;
	save(&st, pairs, 2);
	ck_assert_int_eq(s2s_state_load(dir, &got, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(got.pairs[0].tx.next_seq, 45);
	ck_assert_uint_eq(got.pairs[1].tx.next_seq, 42);
	s2s_state_clear(&got);
	ck_assert_int_eq(close(fd), 0);

	/* Reopened: the counter goes on from the highest valid one. */
	ck_assert_int_eq(s2s_txlog_open(dir, &fd, &k), S2S_OK);
	ck_assert_uint_eq(k, 6);
	ck_assert_int_eq(close(fd), 0);
	S2S_WIPE(tx);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("client_state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_atomic_replace);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_version_and_mode);
	tcase_add_test(tc, test_txlog);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
