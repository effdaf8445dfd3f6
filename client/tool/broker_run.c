/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_run.c - a private Mosquitto with the s2s plugin (broker_run.h).
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_run.h"
#include "s2s/crypto.h"

#ifndef S2S_PLUGIN_BUILD_PATH
#define S2S_PLUGIN_BUILD_PATH ""
#endif
#ifndef S2S_PLUGIN_INSTALL_PATH
#define S2S_PLUGIN_INSTALL_PATH "/usr/local/lib/mosquitto/mosquitto_s2s.so"
#endif

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

static bool
readable(const char *p)
{
	return p && *p && access(p, R_OK) == 0;
}

const char *
broker_plugin_path(void)
{
	const char *env = getenv("S2S_PLUGIN");

	if (env && *env)
		return readable(env) ? env : NULL;
	if (readable(S2S_PLUGIN_BUILD_PATH))
		return S2S_PLUGIN_BUILD_PATH;
	if (readable(S2S_PLUGIN_INSTALL_PATH))
		return S2S_PLUGIN_INSTALL_PATH;
	return NULL;
}

static const char *
mosquitto_path(void)
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

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (s < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!bind(s, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(s, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	close(s);
	return port;
}

static bool
port_open(int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (s < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

static bool
copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	char buf[65536];
	ssize_t n;
	bool ok = true;

	if (in < 0)
		return false;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return false;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			ok = false;
			break;
		}
	if (n < 0)
		ok = false;
	close(in);
	if (close(out))
		ok = false;
	return ok;
}

void
broker_log_tail(const struct broker_run *b, char *buf, size_t len)
{
	FILE *f = fopen(b->log, "r");
	char line[512];
	char ring[6][512];
	int n = 0;

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		snprintf(ring[n++ % 6], sizeof(ring[0]), "%s", line);
	fclose(f);
	for (int i = n > 6 ? n - 6 : 0; i < n; i++) {
		size_t l = strlen(buf);

		snprintf(buf + l, len - l, "  %s", ring[i % 6]);
	}
}

static volatile sig_atomic_t guardian_stop;

static void
guardian_on_term(int sig)
{
	(void)sig;
	guardian_stop = 1;
}

static int
guardian_rm(const char *path, const struct stat *sb, int flag,
	    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/*
 * The broker's keeper, a child of the caller: it starts mosquitto and
 * stops it when told (SIGTERM) or when the caller is gone however it died
 * (the pipe's write end, held only by the caller, reads EOF) -- then it
 * also removes the folder.  It exits with the broker's status if the
 * broker dies first.  So no broker outlives a crashed test or demo.
 */
/*
 * In an ASan build this tool carries the ASan runtime, and so does the
 * plugin it loads into the (uninstrumented) broker: the broker can only
 * load it with the same runtime preloaded.  No-op in normal builds.
 * (tests/broker_harness.c does the same for the test programs.)
 */
static void
preload_sanitizer(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024], *path;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		path = strchr(line, '/');
		if (path && strstr(path, "/libasan.so")) {
			path[strcspn(path, "\n")] = '\0';
			setenv("LD_PRELOAD", path, 1);
			break;
		}
	}
	fclose(f);
}

static void __attribute__((noreturn))
guardian(struct broker_run *b, const char *mosq, int tie)
{
	struct sigaction sa;
	pid_t broker;
	int st = 0;
	bool orphan = false;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = guardian_on_term;
	sigaction(SIGTERM, &sa, NULL);
	setpgid(0, 0);
	broker = fork();
	if (broker < 0)
		_exit(126);
	if (broker == 0) {
		int fd = open("/dev/null", O_RDWR);

		close(tie);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		preload_sanitizer();
		execl(mosq, "mosquitto", "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	while (!guardian_stop) {
		struct pollfd pfd = { tie, POLLIN, 0 };
		char c;

		if (waitpid(broker, &st, WNOHANG) == broker)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 125);
		if (poll(&pfd, 1, 100) > 0 && read(tie, &c, 1) <= 0) {
			orphan = true;
			break;
		}
	}
	kill(broker, SIGTERM);
	for (int i = 0; i < 60; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		if (waitpid(broker, &st, WNOHANG) == broker)
			break;
		nanosleep(&ts, NULL);
		if (i == 59) {
			kill(broker, SIGKILL);
			waitpid(broker, &st, 0);
		}
	}
	if (orphan)
		nftw(b->dir, guardian_rm, 16, FTW_DEPTH | FTW_PHYS);
	_exit(0);
}

static bool
spawn(struct broker_run *b, char *err, size_t err_len)
{
	const char *mosq = mosquitto_path();
	int tie[2];
	pid_t pid;

	if (!mosq) {
		seterr(err, err_len, "mosquitto not found (apt-get install "
		       "mosquitto, or set S2S_MOSQUITTO)");
		return false;
	}
	if (pipe(tie)) {
		seterr(err, err_len, "pipe: %s", strerror(errno));
		return false;
	}
	fcntl(tie[1], F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		seterr(err, err_len, "fork: %s", strerror(errno));
		close(tie[0]);
		close(tie[1]);
		return false;
	}
	if (pid == 0) {
		close(tie[1]);
		guardian(b, mosq, tie[0]);
	}
	close(tie[0]);
	b->tie = tie[1];
	b->pid = pid;
	for (int i = 0; i < 200; i++) {   /* up to 10 s */
		struct timespec ts = { 0, 50 * 1000000L };
		int st;

		if (port_open(b->port))
			return true;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char tail[2048];

			b->pid = 0;
			close(b->tie);
			b->tie = -1;
			broker_log_tail(b, tail, sizeof(tail));
			seterr(err, err_len, "the broker exited at start "
			       "(status %d); its log %s ends with:\n%s",
			       WIFEXITED(st) ? WEXITSTATUS(st) : -1, b->log,
			       tail);
			return false;
		}
		nanosleep(&ts, NULL);
	}
	seterr(err, err_len, "the broker did not open port %d within 10 s",
	       b->port);
	broker_stop(b);
	return false;
}

bool
broker_start(struct broker_run *b, const char *profile, const char *extra,
	     char *err, size_t err_len)
{
	struct broker_run_opts o = { .profile = profile, .extra = extra };

	return broker_start_ex(b, &o, err, err_len);
}

bool
broker_start_ex(struct broker_run *b, const struct broker_run_opts *o,
		char *err, size_t err_len)
{
	const char *plugin = broker_plugin_path();
	const char *profile = o->profile, *extra = o->extra;
	const char *tmp = getenv("TMPDIR");
	char csdir[300], plugin_copy[320], cs_key[320], admin[320];
	struct passwd *pw = NULL;
	struct s2s_key *k = NULL;
	FILE *f;
	enum s2s_err e;

	memset(b, 0, sizeof(*b));
	if (!plugin) {
		seterr(err, err_len, "the s2s broker plugin (mosquitto_s2s.so)"
		       " is not built; run 'make' first, or set S2S_PLUGIN");
		return false;
	}
	snprintf(b->dir, sizeof(b->dir), "%s/s2s-run-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(b->dir)) {
		seterr(err, err_len, "cannot create a temporary folder: %s",
		       strerror(errno));
		return false;
	}
	/* Root: the broker runs as "mosquitto" and must reach its files. */
	if (geteuid() == 0) {
		pw = getpwnam("mosquitto");
		chmod(b->dir, 0755);
	}
	snprintf(csdir, sizeof(csdir), "%s/cs", o->cs_dir ? o->cs_dir :
		 b->dir);
	snprintf(cs_key, sizeof(cs_key), "%s/cs", csdir);
	snprintf(b->cs_pub, sizeof(b->cs_pub), "%s/cs.pub", csdir);
	snprintf(admin, sizeof(admin), "%s/cs.admin", csdir);
	snprintf(b->admin_key, sizeof(b->admin_key), "%s/cs.admin.key", csdir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(plugin_copy, sizeof(plugin_copy), "%s/mosquitto_s2s.so",
		 b->dir);
	if (o->cs_dir) {
		/* the caller's keys: cs_dir/cs.key ... */
		snprintf(csdir, sizeof(csdir), "%s", o->cs_dir);
		snprintf(cs_key, sizeof(cs_key), "%s/cs", csdir);
		snprintf(b->cs_pub, sizeof(b->cs_pub), "%s/cs.pub", csdir);
		snprintf(b->admin_key, sizeof(b->admin_key),
			 "%s/cs.admin.key", csdir);
		goto keys_done;
	}
	if (mkdir(csdir, 0700)) {
		seterr(err, err_len, "mkdir %s: %s", csdir, strerror(errno));
		goto fail;
	}
	/* The CS key and the admin key (the plugin would make them too,
	 * but the devices need the CS key before the broker runs). */
	e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, cs_key);
	s2s_key_destroy(k);
	k = NULL;
	if (!e)
		e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, admin);
	s2s_key_destroy(k);
	if (e) {
		seterr(err, err_len, "cannot create the CS keys: %s",
		       s2s_strerror(e));
		goto fail;
	}
keys_done:
	if (!copy_file(plugin, plugin_copy, 0755)) {
		seterr(err, err_len, "cannot copy %s: %s", plugin,
		       strerror(errno));
		goto fail;
	}
	if (pw && !o->cs_dir) {
		char path[400];
		static const char *const own[] = {
			"cs.key", "cs.pub", "cs.admin.pub",
		};

		if (chown(csdir, pw->pw_uid, pw->pw_gid))
			goto chown_fail;
		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", csdir, own[i]);
			if (chown(path, pw->pw_uid, pw->pw_gid))
				goto chown_fail;
		}
	}
	b->port = o->port > 0 ? o->port : free_port();
	if (b->port <= 0) {
		seterr(err, err_len, "no free port on 127.0.0.1");
		goto fail;
	}
	snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d", b->port);
	f = fopen(b->conf, "w");
	if (!f) {
		seterr(err, err_len, "cannot write %s", b->conf);
		goto fail;
	}
	fprintf(f,
		"# Written by s2s: a private broker for one run.\n"
		"per_listener_settings false\n"
		"allow_anonymous true\n"
		"listener %d 127.0.0.1\n"
		"persistence false\n"
		"log_dest file %s\n"
		"log_type error\nlog_type warning\nlog_type notice\n"
		"log_type information\n"
		"max_queued_messages 10000\n"
		"set_tcp_nodelay true\n"
		"plugin %s\n"
		"plugin_opt_store %s%s\n"
		"plugin_opt_cs_key %s.key\n"
		"plugin_opt_enrollment open\n"
		"plugin_opt_profile %s\n"
		"%s%s",
		b->port, b->log, plugin_copy, o->store ? o->store : csdir,
		o->store ? "" : "/s2s.db", cs_key,
		profile ? profile : "hardened", extra ? extra : "",
		extra && *extra && extra[strlen(extra) - 1] != '\n' ? "\n"
								    : "");
	fclose(f);
	if (pw) {
		/* The log file is opened after the privilege drop. */
		int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			if (fchown(fd, pw->pw_uid, pw->pw_gid))
				seterr(err, err_len, "chown log");
			close(fd);
		}
	}
	if (!spawn(b, err, err_len))
		goto fail_keep_log;
	return true;
chown_fail:
	seterr(err, err_len, "cannot hand %s to user mosquitto: %s", csdir,
	       strerror(errno));
fail:
fail_keep_log:
	broker_cleanup(b);
	return false;
}

int
broker_free_port(void)
{
	return free_port();
}

bool
broker_kill9(struct broker_run *b)
{
	char path[64];
	FILE *f;
	bool sent = false;

	/* The broker is the guardian's only child. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)b->pid,
		 (int)b->pid);
	f = fopen(path, "r");
	if (f) {
		int child;

		while (fscanf(f, "%d", &child) == 1)
			sent |= child > 1 && kill(child, SIGKILL) == 0;
		fclose(f);
	}
	return sent;
}

void
broker_stop(struct broker_run *b)
{
	int st;

	if (b->pid <= 0)
		return;
	kill(b->pid, SIGTERM);
	for (int i = 0; i < 60; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			b->pid = 0;
			if (b->tie > 0) {
				close(b->tie);
				b->tie = -1;
			}
			return;
		}
		nanosleep(&ts, NULL);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &st, 0);
	b->pid = 0;
	if (b->tie > 0) {
		close(b->tie);
		b->tie = -1;
	}
}

bool
broker_restart(struct broker_run *b, char *err, size_t err_len)
{
	broker_stop(b);
	return spawn(b, err, err_len);
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
broker_cleanup(struct broker_run *b)
{
	if (b->pid > 0)
		broker_stop(b);
	if (b->dir[0])
		nftw(b->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	b->dir[0] = '\0';
}
