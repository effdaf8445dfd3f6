/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_run.c - a private Mosquitto with the s2s plugin (broker_run.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_launch.h"
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

/*
 * The broker's keeper, a child of the caller: it starts mosquitto and
 * stops it when told (SIGTERM) or when the caller is gone however it died
 * (the pipe's write end, held only by the caller, reads EOF) -- then it
 * also removes the folder.  It exits with the broker's status if the
 * broker dies first.  So no broker outlives a crashed test or demo.
 */
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
	broker = bl_spawn(mosq, b->conf, -1, tie);
	if (broker < 0)
		_exit(126);
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
	bl_stop(broker, 2500, &st);
	if (orphan)
		bl_rm_rf(b->dir);
	_exit(0);
}

static bool
spawn(struct broker_run *b, char *err, size_t err_len)
{
	const char *mosq = bl_mosquitto_path();
	int tie[2], st = 0;
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
	switch (bl_wait_ready(pid, b->port, 30000, &st)) {
	case 0:
		return true;
	case 1: {
		char tail[2048];

		b->pid = 0;
		close(b->tie);
		b->tie = -1;
		broker_log_tail(b, tail, sizeof(tail));
		seterr(err, err_len, "the broker exited at start "
		       "(status %d); its log %s ends with:\n%s",
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1, b->log, tail);
		return false;
	}
	default:
		break;
	}
	seterr(err, err_len, "the broker did not open port %d within 30 s",
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
	char csdir[300], plugin_copy[320], cs_key[320], admin[320];
	struct s2s_key *k = NULL;
	FILE *f;
	enum s2s_err e;

	memset(b, 0, sizeof(*b));
	b->tie = -1;
	if (!plugin) {
		seterr(err, err_len, "the s2s broker plugin (mosquitto_s2s.so)"
		       " is not built; run 'make' first, or set S2S_PLUGIN");
		return false;
	}
	/* Traversable: as root, the broker runs as "mosquitto". */
	if (!bl_make_dir(b->dir, sizeof(b->dir), "s2s-run", 0755)) {
		seterr(err, err_len, "cannot create a temporary folder: %s",
		       strerror(errno));
		b->dir[0] = '\0';
		return false;
	}
	snprintf(csdir, sizeof(csdir), "%s/cs", o->cs_dir ? o->cs_dir :
		 b->dir);
	snprintf(cs_key, sizeof(cs_key), "%s/cs", csdir);
	snprintf(b->cs_pub, sizeof(b->cs_pub), "%s/cs.pub", csdir);
	snprintf(admin, sizeof(admin), "%s/cs.admin", csdir);
	snprintf(b->admin_key, sizeof(b->admin_key), "%s/cs.admin.key", csdir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
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
	if (!bl_stage_plugin(plugin, b->dir, plugin_copy, sizeof(plugin_copy),
			     err, err_len))
		goto fail;
	if (!o->cs_dir) {
		char path[400];
		static const char *const own[] = {
			"", "/cs.key", "/cs.pub", "/cs.admin.pub",
		};

		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
			snprintf(path, sizeof(path), "%s%s", csdir, own[i]);
			if (!bl_give(path)) {
				seterr(err, err_len, "cannot hand %s to user "
				       BL_BROKER_USER ": %s", path,
				       strerror(errno));
				goto fail;
			}
		}
	}
	b->port = o->port > 0 ? o->port : bl_free_port();
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
	{
		/* The log file is opened after the privilege drop. */
		int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0644);

		if (fd < 0 || !bl_give(b->log)) {
			seterr(err, err_len, "cannot prepare %s: %s", b->log,
			       strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
	}
	if (!spawn(b, err, err_len))
		goto fail;
	return true;
fail:
	broker_cleanup(b);
	return false;
}

int
broker_free_port(void)
{
	return bl_free_port();
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
	/* The keeper gives the broker 2.5 s, then kills it: wait for that
	 * with room for a loaded machine (killing the keeper early could
	 * leave the broker running on the port). */
	if (b->pid > 0)
		bl_stop(b->pid, 10000, NULL);
	b->pid = 0;
	if (b->tie > 0) {
		close(b->tie);
		b->tie = -1;
	}
}

bool
broker_restart(struct broker_run *b, char *err, size_t err_len)
{
	long long deadline;

	broker_stop(b);
	/* The port is ours again once nothing listens on it. */
	deadline = bl_now_ms() + 10000;
	while (bl_port_open(b->port) && bl_now_ms() < deadline)
		bl_sleep_ms(20);
	return spawn(b, err, err_len);
}

void
broker_cleanup(struct broker_run *b)
{
	if (b->pid > 0)
		broker_stop(b);
	if (b->dir[0])
		bl_rm_rf(b->dir);
	b->dir[0] = '\0';
}
