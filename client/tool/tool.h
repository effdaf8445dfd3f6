/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tool.h - shared pieces of the s2s command-line tool.
 *
 * Each command is a function int cmd_NAME(int argc, char **argv) with
 * argv[0] the command name; it returns the process exit status: 0 on
 * success, 1 on a runtime failure, 2 on a usage error.  On success a
 * command prints its result on stdout (one line unless documented); on
 * failure exactly one line "s2s NAME: message" on stderr (tool_fail).
 */
#ifndef S2S_TOOL_H
#define S2S_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2

int cmd_crypto(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_bio(int argc, char **argv);
int cmd_stego(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_register(int argc, char **argv);   /* cmd_device.c */
int cmd_pair(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_unpair(int argc, char **argv);
int cmd_ctl(int argc, char **argv);        /* cmd_ctl.c */
int cmd_demo(int argc, char **argv);       /* cmd_demo.c */
int cmd_cluster_config(int argc, char **argv);     /* cmd_cluster.c */
/* `s2s demo --cluster N ...` (cmd_cluster.c) */
int demo_cluster(int argc, char **argv);

/* Print "s2s <cmd>: <formatted message>\n" on stderr; returns status. */
int tool_fail(int status, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* true if argv[i] is "--help" or "-h" for some i >= 1. */
bool tool_wants_help(int argc, char **argv);

/*
 * Decode a hex string (upper or lower case, even length) into a malloc()ed
 * buffer.  An empty string gives a non-NULL zero-length buffer.  Returns
 * false on bad input.  free() the result (wipe it first if secret).
 */
bool hex_decode(const char *hex, uint8_t **out, size_t *out_len);

/* Print n bytes as lowercase hex followed by a newline. */
void hex_print(const uint8_t *buf, size_t n);

/* Parse a decimal unsigned integer <= max; false on junk or overflow. */
bool parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif /* S2S_TOOL_H */
