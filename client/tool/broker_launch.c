/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_launch.c - start and stop a private Mosquitto (broker_launch.h).
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_launch.h"

void
bl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long long
bl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
bl_mosquitto_path(void)
{
	static const char *const cand[] = {
		"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto",
		"/usr/bin/mosquitto", "/usr/local/bin/mosquitto",
	};
	const char *env = getenv("S2S_MOSQUITTO");

	if (env && *env)
		return env;
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (access(cand[i], X_OK) == 0)
			return cand[i];
	return NULL;
}

static void
loopback(struct sockaddr_in *a, int port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = htons((uint16_t)port);
}

int
bl_free_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (s < 0)
		return -1;
	loopback(&a, 0);
	if (!bind(s, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(s, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	close(s);
	return port;
}

bool
bl_port_open(int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (s < 0)
		return false;
	loopback(&a, port);
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

bool
bl_give(const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0 || !(pw = getpwnam(BL_BROKER_USER)))
		return true;
	return chown(path, pw->pw_uid, pw->pw_gid) == 0;
}

bool
bl_make_dir(char *dir, size_t dir_len, const char *prefix, mode_t mode)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(dir, dir_len, "%s/%s-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp", prefix);

	if (n < 0 || (size_t)n >= dir_len) {
		errno = ENAMETOOLONG;
		return false;
	}
	if (!mkdtemp(dir))
		return false;
	if (chmod(dir, mode) || !bl_give(dir)) {
		int e = errno;

		rmdir(dir);
		errno = e;
		return false;
	}
	return true;
}

bool
bl_stage_plugin(const char *plugin, const char *dir, char *out,
		size_t out_len, char *err, size_t err_len)
{
	char buf[65536];
	ssize_t n = 0;
	int in, fd;
	bool ok = true;

	if ((size_t)snprintf(out, out_len, "%s/mosquitto_s2s.so", dir) >=
	    out_len) {
		snprintf(err, err_len, "folder name too long: %s", dir);
		return false;
	}
	in = open(plugin, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(err, err_len, "cannot read the plugin %s: %s",
			 plugin, strerror(errno));
		return false;
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0) {
		snprintf(err, err_len, "cannot write %s: %s", out,
			 strerror(errno));
		close(in);
		return false;
	}
	while (ok && (n = read(in, buf, sizeof(buf))) > 0)
		ok = write(fd, buf, (size_t)n) == n;
	if (n < 0)
		ok = false;
	if (ok && fchmod(fd, 0755))
		ok = false;
	if (close(fd))
		ok = false;
	close(in);
	if (!ok)
		snprintf(err, err_len, "cannot copy %s to %s: %s", plugin, out,
			 strerror(errno));
	return ok;
}

/*
 * In an ASan build the caller carries the ASan runtime, and so does the
 * plugin it loads into the (uninstrumented) broker: the broker can only
 * load it with the same runtime preloaded.  libpq too, when the caller
 * has it (a PostgreSQL build): loaded by dlopen() as the plugin's
 * dependency under a preloaded ASan, its first connect hangs for good in
 * bindtextdomain() (glibc's _nl_state_lock, taken for writing, is never
 * free: seen with gcc 12's libasan, libpq 15, Debian 12), so the broker
 * never opened its listener and the PostgreSQL suites failed under
 * `make test-asan`.  Preloaded, it is initialised before the broker
 * starts and connects normally.  No-op in normal builds.
 */
static void
preload_sanitizer(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024], asan[512] = "", pq[512] = "", *path;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		path = strchr(line, '/');
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		if (!asan[0] && strstr(path, "/libasan.so") &&
		    strlen(path) < sizeof(asan))
			strcpy(asan, path);
		else if (!pq[0] && strstr(path, "/libpq.so") &&
			 strlen(path) < sizeof(pq))
			strcpy(pq, path);
	}
	fclose(f);
	if (asan[0]) {
		char both[sizeof(asan) + sizeof(pq) + 1];

		snprintf(both, sizeof(both), "%s%s%s", asan, pq[0] ? " " : "",
			 pq);
		setenv("LD_PRELOAD", both, 1);
	}
}

pid_t
bl_spawn(const char *mosq, const char *conf, int out_fd, int close_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	{
		int null = open("/dev/null", O_RDWR);

		if (close_fd >= 0)
			close(close_fd);
		if (null >= 0)
			dup2(null, 0);
		if (out_fd < 0)
			out_fd = null;
		if (out_fd >= 0) {
			dup2(out_fd, 1);
			dup2(out_fd, 2);
		}
		if (null > 2)
			close(null);
		preload_sanitizer();
		execl(mosq, "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}
}

bool
bl_reap(pid_t pid, int timeout_ms, int *status)
{
	long long end = bl_now_ms() + timeout_ms;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD)) {
			if (status)
				*status = r == pid ? st : 0;
			return true;
		}
		if (bl_now_ms() >= end)
			return false;
		bl_sleep_ms(10);
	}
}

/*
 * The inode of the socket listening on 127.0.0.1:port (or 0.0.0.0:port),
 * from /proc/net/tcp; 0 if none is listed or the file is unreadable.
 */
static unsigned long
listen_inode(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned long inode = 0;

	if (!f)
		return 0;
	while (!inode && fgets(line, sizeof(line), f)) {
		unsigned addr, lport, st;
		unsigned long ino;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x "
			   "%*u %*u %lu", &addr, &lport, &st, &ino) == 4 &&
		    st == 0x0A && (int)lport == port &&
		    (addr == 0 || addr == 0x0100007FU))
			inode = ino;
	}
	fclose(f);
	return inode;
}

/* 1: pid holds socket inode, 0: it does not, -1: cannot tell. */
static int
holds_socket(pid_t pid, unsigned long inode)
{
	char path[64], want[64], link[64];
	struct dirent *e;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if (!(d = opendir(path)))
		return -1;
	while (!r && (e = readdir(d))) {
		char fd[330];
		ssize_t n;

		snprintf(fd, sizeof(fd), "%s/%s", path, e->d_name);
		n = readlink(fd, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			r = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	return r;
}

/*
 * Is the listener on port pid's (or a child's: broker_run.c starts the
 * broker under a keeper process)?  1 yes, 0 no (someone else took the
 * port between bl_free_port() and the broker's bind: the broker will exit
 * with "Address already in use"), -1 cannot tell (no /proc, no access).
 */
static int
listener_is(pid_t pid, int port)
{
	unsigned long inode = listen_inode(port);
	struct dirent *e;
	DIR *d;
	int r, unknown;

	if (!inode)
		return -1;
	r = holds_socket(pid, inode);
	if (r != 0)
		return r;
	unknown = 0;
	if (!(d = opendir("/proc")))
		return -1;
	while (r != 1 && (e = readdir(d))) {
		char path[300], buf[512], *p;
		int ppid = 0, child = atoi(e->d_name);
		FILE *f;

		if (child <= 0 || child == pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		/* "pid (comm) state ppid ...": comm may hold spaces */
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
			(void)sscanf(p + 1, " %*c %d", &ppid);
		fclose(f);
		if (ppid != pid)
			continue;
		r = holds_socket(child, inode);
		if (r < 0)
			unknown = 1;
	}
	closedir(d);
	return r == 1 ? 1 : unknown ? -1 : 0;
}

int
bl_wait_ready(pid_t pid, int port, int timeout_ms, int *status)
{
	long long end = bl_now_ms() + timeout_ms;

	while (bl_now_ms() < end) {
		/* Ready when the port accepts and the listener is ours: a
		 * port taken by another process meanwhile is not "ready"
		 * (the broker then exits, and the caller sees 1). */
		if (bl_port_open(port) && listener_is(pid, port) != 0)
			return 0;
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		bl_sleep_ms(20);
	}
	return -1;
}

int
bl_stop(pid_t pid, int grace_ms, int *status)
{
	int st = 0;

	if (pid <= 0 || kill(pid, SIGTERM) != 0) {
		/* Gone: reap a zombie if there is one. */
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
			if (status)
				*status = st;
			return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
		}
		errno = ECHILD;
		return -1;
	}
	if (bl_reap(pid, grace_ms, &st)) {
		if (status)
			*status = st;
		return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (status)
		*status = st;
	return 1;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void
bl_rm_rf(const char *dir)
{
	if (dir && *dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
