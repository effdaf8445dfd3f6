/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_harness.c - see broker_harness.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_harness.h"

struct bh_broker {
	char dir[256];
	char conf[300];
	char out[300];
	int port;
	pid_t pid;
	int start_timeout_ms;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

const char *
bh_plugin_path(void)
{
	const char *p = getenv("S2S_PLUGIN");

	return p && *p ? p : NULL;
}

int
bh_free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool
port_accepts(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* When root: hand the directory to the user the broker drops to. */
static void
give_to_broker_user(const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	pw = getpwnam("mosquitto");
	if (pw && chown(path, pw->pw_uid, pw->pw_gid) != 0)
		fprintf(stderr, "harness: chown %s: %s\n", path,
			strerror(errno));
}

void
bh_give(const char *path)
{
	give_to_broker_user(path);
}

static bool
has_opt(const char *const *opts, const char *key)
{
	for (; opts && opts[0]; opts += 2)
		if (strcmp(opts[0], key) == 0)
			return true;
	return false;
}

static int
write_conf(struct bh_broker *b, const struct bh_options *o)
{
	FILE *f = fopen(b->conf, "w");

	if (!f)
		return -1;
	fprintf(f, "# written by tests/broker_harness.c\n"
		"per_listener_settings false\n"
		"allow_anonymous %s\n"
		"listener %d 127.0.0.1\n"
		"persistence false\n"
		"log_dest stderr\n"
		"log_type all\n"
		"log_timestamp_format %%H:%%M:%%S\n",
		o->no_anonymous ? "false" : "true", b->port);
	if (o->plugin) {
		fprintf(f, "plugin %s\n", o->plugin);
		if (!has_opt(o->plugin_opts, "store"))
			fprintf(f, "plugin_opt_store %s/s2s.db\n", b->dir);
		if (!has_opt(o->plugin_opts, "cs_key"))
			fprintf(f, "plugin_opt_cs_key %s/cs.key\n", b->dir);
		for (const char *const *p = o->plugin_opts; p && p[0]; p += 2)
			fprintf(f, "plugin_opt_%s %s\n", p[0], p[1]);
	}
	if (o->extra_conf)
		fprintf(f, "%s\n", o->extra_conf);
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * A plugin built with -fsanitize=address needs the ASan runtime loaded
 * first in the (uninstrumented) broker: when this test program carries
 * that runtime, preload the same file into the broker.
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

static int
spawn(struct bh_broker *b)
{
	const char *exe = getenv("S2S_MOSQUITTO");
	long deadline;
	int fd, status;

	if (!exe || !*exe)
		exe = "/usr/sbin/mosquitto";
	fd = open(b->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	b->pid = fork();
	if (b->pid < 0) {
		close(fd);
		return -1;
	}
	if (b->pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		preload_sanitizer();
		execl(exe, exe, "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	close(fd);
	deadline = now_ms() + b->start_timeout_ms;
	while (now_ms() < deadline) {
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = -1;
			break;
		}
		if (port_accepts(b->port))
			return 0;
		sleep_ms(20);
	}
	{
		char *log = bh_log(b);

		fprintf(stderr, "harness: broker did not start on port %d; "
			"its output:\n%s\n", b->port, log ? log : "");
		free(log);
	}
	if (b->pid > 0)
		bh_kill9(b);
	return -1;
}

int
bh_start(struct bh_broker **out, const struct bh_options *o)
{
	struct bh_broker *b = calloc(1, sizeof(*b));
	const char *tmp = getenv("TMPDIR");

	*out = b;
	if (!b)
		return -1;
	b->pid = -1;
	b->start_timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms :
			      15000;
	snprintf(b->dir, sizeof(b->dir), "%s/s2s-broker-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(b->dir)) {
		b->dir[0] = '\0';
		return -1;
	}
	/* The broker user must reach the directory (mkdtemp made it 0700). */
	chmod(b->dir, 0700);
	give_to_broker_user(b->dir);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(b->out, sizeof(b->out), "%s/broker.out", b->dir);
	b->port = o->port > 0 ? o->port : bh_free_port();
	if (b->port <= 0 || write_conf(b, o) != 0)
		return -1;
	return spawn(b);
}

int
bh_port(const struct bh_broker *b)
{
	return b->port;
}

const char *
bh_dir(const struct bh_broker *b)
{
	return b->dir;
}

pid_t
bh_pid(const struct bh_broker *b)
{
	return b->pid;
}

const char *
bh_path(const struct bh_broker *b, const char *rel)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", b->dir, rel);
	return buf;
}

static int
reap(struct bh_broker *b, int timeout_ms, int *status)
{
	long deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		pid_t r = waitpid(b->pid, status, WNOHANG);

		if (r == b->pid || (r < 0 && errno == ECHILD)) {
			b->pid = -1;
			return 0;
		}
		sleep_ms(10);
	}
	return -1;
}

int
bh_stop(struct bh_broker *b)
{
	int status = 0;

	if (!b || b->pid <= 0)
		return 0;
	kill(b->pid, SIGTERM);
	if (reap(b, 5000, &status) == 0)
		return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
	kill(b->pid, SIGKILL);
	(void)reap(b, 5000, &status);
	return -1;
}

int
bh_kill9(struct bh_broker *b)
{
	int status;

	if (!b || b->pid <= 0)
		return 0;
	kill(b->pid, SIGKILL);
	return reap(b, 5000, &status);
}

bool
bh_running(struct bh_broker *b)
{
	int status;

	if (!b || b->pid <= 0)
		return false;
	if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
		b->pid = -1;
		return false;
	}
	return true;
}

int
bh_restart(struct bh_broker *b)
{
	long deadline = now_ms() + 5000;

	if (b->pid > 0)
		bh_stop(b);
	/* The port is ours again once nothing listens on it. */
	while (port_accepts(b->port) && now_ms() < deadline)
		sleep_ms(20);
	return spawn(b);
}

char *
bh_log(const struct bh_broker *b)
{
	FILE *f = fopen(b->out, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		size_t r = fread(buf, 1, (size_t)n, f);

		buf[r] = '\0';
	}
	fclose(f);
	return buf;
}

bool
bh_log_contains(const struct bh_broker *b, const char *needle)
{
	char *log = bh_log(b);
	bool found = log && strstr(log, needle);

	free(log);
	return found;
}

void
bh_destroy(struct bh_broker *b)
{
	char cmd[600];
	const char *keep = getenv("S2S_KEEP_TMP");

	if (!b)
		return;
	if (b->pid > 0)
		bh_stop(b);
	if (b->dir[0] && !(keep && *keep == '1')) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: cannot remove %s\n", b->dir);
	}
	free(b);
}
