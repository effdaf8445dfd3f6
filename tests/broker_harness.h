/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_harness.h - start a real Mosquitto for a test, with or without
 * the s2s plugin, on a free 127.0.0.1 port, in a fresh temporary
 * directory; stop it (SIGTERM, then SIGKILL), kill -9 it, restart it on
 * the same directory and port.  Every wait is bounded.
 *
 * Started by client/tool/broker_launch.c, as the s2s tool starts its
 * private broker.  Works when the tests run as root, wherever the checkout
 * is: the broker drops to user "mosquitto" before it loads plugins, so the
 * directory is chowned to that user (the store, the keys and the log live
 * there) and the plugin is loaded from a copy in it.  Files the plugin
 * creates there are owned by that user; root can still read them.
 *
 * Environment:
 *   S2S_PLUGIN      path of mosquitto_s2s.so (meson sets it for the tests)
 *   S2S_MOSQUITTO   broker executable (default: mosquitto in /usr/sbin,
 *                   /usr/local/sbin, /usr/bin or /usr/local/bin)
 *   S2S_KEEP_TMP=1  keep the temporary directory (for debugging)
 *
 * Typical use:
 *
 *   static const char *const opts[] = { "enrollment", "open", NULL };
 *   struct bh_broker *b;
 *   ck_assert_int_eq(bh_start(&b, &(struct bh_options){
 *                    .plugin = bh_plugin_path(), .plugin_opts = opts }), 0);
 *   ... connect to 127.0.0.1:bh_port(b) ...
 *   bh_kill9(b); bh_restart(b);       // same store, same port
 *   bh_destroy(b);                    // stops it, removes the directory
 *
 * Store and key paths (when a plugin is loaded): unless the test passes
 * its own, plugin_opt_store is "<dir>/s2s.db" and plugin_opt_cs_key
 * "<dir>/cs.key" (so the CS public key is "<dir>/cs.pub" and the admin
 * key "<dir>/cs.admin.key"); use bh_path() to build them.
 *
 * Not thread-safe; one test process may run several brokers.
 */
#ifndef S2S_TESTS_BROKER_HARNESS_H
#define S2S_TESTS_BROKER_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

struct bh_broker;

struct bh_options {
	const char *plugin;         /* plugin .so, or NULL for a plain broker */
	/* plugin_opt_* as key, value, ..., NULL (keys without the prefix) */
	const char *const *plugin_opts;
	const char *extra_conf;     /* more mosquitto.conf lines, or NULL */
	bool no_anonymous;          /* allow_anonymous false (default true) */
	bool default_log;           /* Mosquitto's default log types instead
				     * of `log_type all` (benchmarks: the
				     * debug lines cost both brokers ~11 us
				     * per message, not a deployed setting) */
	int start_timeout_ms;       /* default 15000 */
	int port;                   /* 0: a free one (clusters pick theirs
				     * first: bridges name their peers) */
};

/* $S2S_PLUGIN, or NULL if unset. */
const char *bh_plugin_path(void);

/*
 * Write the configuration and start the broker; 0 when the port accepts
 * connections, -1 otherwise (the broker's output is printed to stderr).
 * *out is set in both cases when memory allowed (destroy it).
 */
int bh_start(struct bh_broker **out, const struct bh_options *o);

int bh_port(const struct bh_broker *b);
const char *bh_dir(const struct bh_broker *b);
pid_t bh_pid(const struct bh_broker *b);
/*
 * CPU time of process pid's main thread (a broker's: the one that runs
 * every plugin callback) in microseconds, from /proc/<pid>/task/<pid>/
 * schedstat; 0 when unreadable.  The store's background threads are not
 * in it.
 */
double bh_main_thread_cpu_us(pid_t pid);
/* "<dir>/<rel>" in a static buffer (overwritten by the next call). */
const char *bh_path(const struct bh_broker *b, const char *rel);

/* SIGTERM, wait up to 20 s, then SIGKILL.  0 if it exited by SIGTERM. */
int bh_stop(struct bh_broker *b);
/* SIGKILL now (no clean-up in the broker or the plugin). */
int bh_kill9(struct bh_broker *b);
/* Start again with the same configuration, directory and port. */
int bh_restart(struct bh_broker *b);
bool bh_running(struct bh_broker *b);

/* The broker's combined stdout/stderr so far (malloc()ed; free()). */
char *bh_log(const struct bh_broker *b);
bool bh_log_contains(const struct bh_broker *b, const char *needle);

/* Stop the broker (if running) and remove the directory. */
void bh_destroy(struct bh_broker *b);

/* Give path to the broker's run user (when the tests run as root). */
void bh_give(const char *path);

/* A free TCP port on 127.0.0.1 (bound and released). */
int bh_free_port(void);

#endif
