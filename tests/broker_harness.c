/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_harness.c - see broker_harness.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_harness.h"
#include "broker_launch.h"

struct bh_broker {
	char dir[256];
	char conf[300];
	char out[300];
	char plugin[320];       /* the copy the broker loads */
	int port;
	pid_t pid;
	int start_timeout_ms;
};

const char *
bh_plugin_path(void)
{
	const char *p = getenv("S2S_PLUGIN");

	return p && *p ? p : NULL;
}

void
bh_give(const char *path)
{
	if (!bl_give(path))
		fprintf(stderr, "harness: chown %s: %s\n", path,
			strerror(errno));
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
		"set_tcp_nodelay true\n"
		"log_dest stderr\n"
		"%s"
		"log_timestamp_format %%H:%%M:%%S\n",
		o->no_anonymous ? "false" : "true", b->port,
		o->default_log ? "log_type error\nlog_type warning\n"
		"log_type notice\nlog_type information\n" :
		"log_type all\n");
	if (o->plugin) {
		fprintf(f, "plugin %s\n", b->plugin);
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

static int
spawn(struct bh_broker *b)
{
	const char *exe = bl_mosquitto_path();
	int fd, status = 0;

	if (!exe) {
		fprintf(stderr, "harness: mosquitto not found (set "
			"S2S_MOSQUITTO)\n");
		return -1;
	}
	fd = open(b->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	b->pid = bl_spawn(exe, b->conf, fd, -1);
	close(fd);
	if (b->pid < 0)
		return -1;
	switch (bl_wait_ready(b->pid, b->port, b->start_timeout_ms, &status)) {
	case 0:
		return 0;
	case 1:
		b->pid = -1;
		break;
	default:
		break;
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
	char err[512];

	*out = b;
	if (!b)
		return -1;
	b->pid = -1;
	b->start_timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms :
			      15000;
	/* 0700, handed to the broker user when root (broker_launch.h). */
	if (!bl_make_dir(b->dir, sizeof(b->dir), "s2s-broker", 0700)) {
		fprintf(stderr, "harness: temporary folder: %s\n",
			strerror(errno));
		b->dir[0] = '\0';
		return -1;
	}
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(b->out, sizeof(b->out), "%s/broker.out", b->dir);
	/* The broker loads a copy: the checkout may be out of its reach. */
	if (o->plugin && !bl_stage_plugin(o->plugin, b->dir, b->plugin,
					  sizeof(b->plugin), err,
					  sizeof(err))) {
		fprintf(stderr, "harness: %s\n", err);
		return -1;
	}
	/* A port picked here may be taken by another process (parallel
	 * tests) before the broker binds it: then the broker exits with
	 * "Address already in use" and a fresh port is tried. */
	for (int attempt = 0;; attempt++) {
		b->port = o->port > 0 ? o->port : bl_free_port();
		if (b->port <= 0 || write_conf(b, o) != 0)
			return -1;
		if (spawn(b) == 0)
			return 0;
		if (o->port > 0 || attempt >= 4 ||
		    !bh_log_contains(b, "Address already in use"))
			return -1;
		fprintf(stderr, "harness: port %d was taken; another one\n",
			b->port);
		if (truncate(b->out, 0) != 0)
			fprintf(stderr, "harness: %s: %s\n", b->out,
				strerror(errno));
	}
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

int
bh_stop(struct bh_broker *b)
{
	int rc;

	if (!b || b->pid <= 0)
		return 0;
	rc = bl_stop(b->pid, 20000, NULL);     /* slow when loaded */
	b->pid = -1;
	return rc == 0 ? 0 : -1;
}

/* SIGKILL now (no clean-up in the broker or the plugin). */
int
bh_kill9(struct bh_broker *b)
{
	if (!b || b->pid <= 0)
		return 0;
	kill(b->pid, SIGKILL);
	if (!bl_reap(b->pid, 20000, NULL))
		return -1;
	b->pid = -1;
	return 0;
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
	long long deadline = bl_now_ms() + 20000;

	if (b->pid > 0)
		bh_stop(b);
	/* The port is ours again once nothing listens on it. */
	while (bl_port_open(b->port) && bl_now_ms() < deadline)
		bl_sleep_ms(20);
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
	const char *keep = getenv("S2S_KEEP_TMP");

	if (!b)
		return;
	if (b->pid > 0)
		bh_stop(b);
	if (b->dir[0] && !(keep && *keep == '1'))
		bl_rm_rf(b->dir);
	free(b);
}

int
bh_free_port(void)
{
	return bl_free_port();
}

double
bh_main_thread_cpu_us(pid_t pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid,
		 (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return (double)ns / 1e3;
}
