/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_run.h - a private Mosquitto with the s2s plugin, for `s2s demo`
 * and the end-to-end tests: a fresh temporary folder, a free loopback
 * port, generated CS and admin keys, the broker process, and its end.
 *
 * Works as root too, wherever the checkout is: the broker then drops to
 * user "mosquitto", so the folder is made traversable, the CS folder and
 * keys are handed to that user, and the plugin is loaded from a copy in
 * the folder.  The process is started by broker_launch.h, the launcher
 * the test harness (tests/broker_harness.c) uses too.
 */
#ifndef S2S_TOOL_BROKER_RUN_H
#define S2S_TOOL_BROKER_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct broker_run {
	pid_t pid;              /* the broker's guardian process */
	int tie;                /* its pipe: closing it (or dying) stops it */
	int port;
	char dir[256];          /* the temporary folder */
	char uri[64];           /* tcp://127.0.0.1:PORT */
	char cs_pub[320];       /* the CS public key (devices pin it) */
	char admin_key[320];    /* the admin private key */
	char log[320];
	char conf[320];
};

/*
 * The plugin to load: $S2S_PLUGIN, else the build tree's, else the
 * installed one.  NULL if none exists.
 */
const char *broker_plugin_path(void);

/*
 * Create the folder ($TMPDIR or /tmp, "s2s-run-XXXXXX") and the keys, write the
 * configuration (profile "hardened" or "paper", extra: more
 * mosquitto.conf lines or NULL) and start the broker; wait until it
 * accepts connections.  false with a message in err on failure (the
 * folder is then removed).
 */
bool broker_start(struct broker_run *b, const char *profile,
		  const char *extra, char *err, size_t err_len);

/* What broker_start_ex() may take from the caller (zeros: as above). */
struct broker_run_opts {
	const char *profile;    /* NULL: hardened */
	const char *extra;      /* more mosquitto.conf lines, or NULL */
	int port;               /* 0: a free one */
	const char *cs_dir;     /* the CS keys made by the caller (cs.key,
				 * cs.pub, cs.admin.*, the broker user's);
				 * NULL: new ones in the run's folder */
	const char *store;      /* plugin_opt_store; NULL: <dir>/s2s.db */
};

/* broker_start with options: brokers of one cluster share cs_dir and
 * store, and know each other's ports before they start. */
bool broker_start_ex(struct broker_run *b, const struct broker_run_opts *o,
		     char *err, size_t err_len);

/* A free TCP port on 127.0.0.1 (bound and released), or -1. */
int broker_free_port(void);

/* kill -9 the broker itself (not its guardian): a crash.  true if sent. */
bool broker_kill9(struct broker_run *b);

/* Stop the broker (SIGTERM, then SIGKILL after 3 s).  Keeps the folder. */
void broker_stop(struct broker_run *b);

/* Restart a stopped broker with the same folder and port. */
bool broker_restart(struct broker_run *b, char *err, size_t err_len);

/* Remove the folder and everything in it. */
void broker_cleanup(struct broker_run *b);

/* The last lines of the broker log (for error messages), into buf. */
void broker_log_tail(const struct broker_run *b, char *buf, size_t len);

#endif /* S2S_TOOL_BROKER_RUN_H */
