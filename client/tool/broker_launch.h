/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * broker_launch.h - the one place that starts a private Mosquitto: used by
 * the s2s tool (broker_run.c: `s2s demo`, the end-to-end tests) and by the
 * test harness (tests/broker_harness.c).  It finds the broker, picks a free
 * loopback port, makes a temporary folder the broker can use, copies the
 * plugin there, starts the process and waits until it accepts connections,
 * and stops it (SIGTERM, then SIGKILL), every wait bounded.
 *
 * Root: Mosquitto drops to user "mosquitto" before it loads plugins and
 * opens its files.  That user may not reach a checkout under a private
 * home folder (/root/src/...), so the plugin is always loaded from a copy
 * in the temporary folder, and the folder is handed to that user.
 *
 * ASan builds: a plugin built with -fsanitize=address needs the runtime
 * preloaded in the (uninstrumented) broker; when the calling program
 * carries it, the broker gets the same file in LD_PRELOAD.
 *
 * Environment: S2S_MOSQUITTO (the broker executable), TMPDIR.
 * Not thread-safe (fork); no state of its own.
 */
#ifndef S2S_TOOL_BROKER_LAUNCH_H
#define S2S_TOOL_BROKER_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The user a root-started Mosquitto drops to. */
#define BL_BROKER_USER "mosquitto"

/* $S2S_MOSQUITTO, else the first of /usr/sbin, /usr/local/sbin, /usr/bin,
 * /usr/local/bin that is executable; NULL if none. */
const char *bl_mosquitto_path(void);

/* A free TCP port on 127.0.0.1 (bound and released), or -1. */
int bl_free_port(void);

/* true when something accepts connections on 127.0.0.1:port. */
bool bl_port_open(int port);

/*
 * A fresh folder "$TMPDIR/<prefix>-XXXXXX" (TMPDIR unset: /tmp) into dir
 * (at least dir_len bytes).  mode: its permissions; when running as root
 * it is handed to the broker user.  false with errno set on failure.
 */
bool bl_make_dir(char *dir, size_t dir_len, const char *prefix, mode_t mode);

/* Root only: chown path to the broker user (no-op otherwise or when that
 * user does not exist).  false with errno on a failed chown. */
bool bl_give(const char *path);

/*
 * Copy the plugin into dir as mosquitto_s2s.so (mode 0755) and write its
 * path into out: the file the broker loads, reachable by the broker user
 * wherever the source tree is.  false with a message in err on failure.
 */
bool bl_stage_plugin(const char *plugin, const char *dir, char *out,
		     size_t out_len, char *err, size_t err_len);

/*
 * fork + exec "mosq -c conf" with stdout and stderr on out_fd (-1:
 * /dev/null) and stdin on /dev/null; close_fd (or -1) is closed in the
 * child.  The child preloads the sanitizer runtime (see above).  Returns
 * the pid, or -1 with errno set.
 */
pid_t bl_spawn(const char *mosq, const char *conf, int out_fd, int close_fd);

/*
 * Wait until 127.0.0.1:port accepts connections on a socket of pid or of
 * a child of pid (0; checked in /proc where readable, so a port another
 * process took after bl_free_port() is not mistaken for the broker), the
 * process exits (1; *status holds its wait status, and it is reaped), or
 * timeout_ms passes (-1).
 */
int bl_wait_ready(pid_t pid, int port, int timeout_ms, int *status);

/*
 * SIGTERM, wait up to grace_ms, then SIGKILL and reap.  0 if it exited by
 * itself after SIGTERM with status 0, 1 if it had to be killed or exited
 * otherwise; *status (may be NULL) gets the wait status.  -1 with
 * errno ECHILD when pid is not a child (already reaped).
 */
int bl_stop(pid_t pid, int grace_ms, int *status);

/* Wait up to timeout_ms for pid to exit; true (and reaped) if it did. */
bool bl_reap(pid_t pid, int timeout_ms, int *status);

/* Remove dir and everything in it (no symlinks followed). */
void bl_rm_rf(const char *dir);

/* Sleep ms milliseconds (restarted on EINTR); monotonic milliseconds. */
void bl_sleep_ms(int ms);
long long bl_now_ms(void);

#endif /* S2S_TOOL_BROKER_LAUNCH_H */
