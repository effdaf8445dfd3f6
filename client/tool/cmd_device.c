/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd_device.c - the device commands of the s2s tool, thin front ends over
 * libs2s-client: register, pair, session, send, listen, fetch.
 *
 * Every command takes --config FILE (default: $S2S_CONFIG, else
 * ./s2s-device.json) and --timeout SECONDS, and prints one line per result
 * on stdout; listen --json prints one JSON object per line.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "device_config.h"
#include "json.h"
#include "s2s/client.h"
#include "s2s/error.h"
#include "state.h"
#include "tool.h"

struct devopts {
	const char *config;
	int timeout_ms;             /* -1: the configured timeouts */
	const char *pos[8];
	int npos;
	/* command-specific */
	bool json, no_wait, wait_ack, verbose, connect;
	const char *code;           /* register --code */
	const char *admin_key;      /* unpair --admin-key */
	int profile;
	long count;
	uint64_t from, to;
	const char *peers[16];
	int npeers;
};

static const char common_help[] =
	"  --config FILE     device configuration (default: $S2S_CONFIG or\n"
	"                    ./s2s-device.json)\n"
	"  --verbose, -v     print every step (control messages, packages)\n"
	"  --help            this text\n";
static const char timeout_help[] =
	"  --timeout SEC     how long to wait for the CS or the peer\n"
	"                    (default: the configuration's \"timeouts\")\n";

static bool
parse_opts(const char *cmd, int argc, char **argv, struct devopts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->count = -1;
	o->config = getenv("S2S_CONFIG");
	if (!o->config || !*o->config)
		o->config = "s2s-device.json";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t u;

		if (!strcmp(a, "--config") && v) {
			o->config = v;
			i++;
		} else if (!strcmp(a, "--timeout") && v) {
			double s = atof(v);

			if (s <= 0) {
				tool_fail(EXIT_USAGE, cmd, "bad --timeout '%s'", v);
				return false;
			}
			o->timeout_ms = (int)(s * 1000);
			i++;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			o->verbose = true;
		} else if (!strcmp(a, "--connect")) {
			o->connect = true;
		} else if (!strcmp(a, "--code") && v) {
			o->code = v;
			i++;
		} else if (!strcmp(a, "--admin-key") && v) {
			o->admin_key = v;
			i++;
		} else if (!strcmp(a, "--no-wait")) {
			o->no_wait = true;
		} else if (!strcmp(a, "--wait")) {
			o->wait_ack = true;
		} else if (!strcmp(a, "--profile") && v) {
			if (!strcmp(v, "paper"))
				o->profile = 1;
			else if (!strcmp(v, "hardened"))
				o->profile = 2;
			else if (!strcmp(v, "default"))
				o->profile = 0;
			else {
				tool_fail(EXIT_USAGE, cmd, "bad --profile '%s'", v);
				return false;
			}
			i++;
		} else if (!strcmp(a, "--count") && v) {
			if (!parse_u64(v, 100000000, &u)) {
				tool_fail(EXIT_USAGE, cmd, "bad --count '%s'", v);
				return false;
			}
			o->count = (long)u;
			i++;
		} else if (!strcmp(a, "--from") && v) {
			if (!parse_u64(v, UINT64_MAX, &o->from) || !o->from) {
				tool_fail(EXIT_USAGE, cmd, "bad --from '%s'", v);
				return false;
			}
			i++;
		} else if (!strcmp(a, "--to") && v) {
			if (!parse_u64(v, UINT64_MAX, &o->to)) {
				tool_fail(EXIT_USAGE, cmd, "bad --to '%s'", v);
				return false;
			}
			i++;
		} else if (!strcmp(a, "--peer") && v) {
			if (o->npeers == 16) {
				tool_fail(EXIT_USAGE, cmd, "too many --peer");
				return false;
			}
			o->peers[o->npeers++] = v;
			i++;
		} else if (a[0] == '-' && a[1]) {
			tool_fail(EXIT_USAGE, cmd, "unknown option '%s' (try "
				  "--help)", a);
			return false;
		} else {
			if (o->npos == 8) {
				tool_fail(EXIT_USAGE, cmd, "too many arguments");
				return false;
			}
			o->pos[o->npos++] = a;
		}
	}
	return true;
}

/* Progress lines of the library: "s2s CMD: line" on stderr. */
static void
print_log(void *ud, enum s2s_log_level level, const char *line)
{
	fprintf(stderr, "s2s %s: %s%s\n", (const char *)ud,
		level == S2S_LOG_ERROR ? "error: " : "", line);
}

/*
 * A device is one process at a time (the library locks its state_dir).
 * No message callback here: messages that arrive while a command other
 * than listen or fetch is connected stay queued, and the library keeps
 * them in state_dir for the next listen (they are not lost).
 */
static struct s2s_client *
open_client(const char *cmd, const struct devopts *o, bool connect)
{
	struct s2s_client *c;
	char err[512];
	enum s2s_err e = s2s_client_create(o->config, &c, err, sizeof(err));

	if (e) {
		tool_fail(1, cmd, "%s", err);
		return NULL;
	}
	s2s_client_on_log(c, print_log, (void *)cmd,
			  o->verbose ? S2S_LOG_DEBUG : S2S_LOG_INFO);
	if (!connect)
		return c;
	e = s2s_client_connect(c, o->timeout_ms);
	if (e) {
		char why[300];

		s2s_client_last_reason(c, why, sizeof(why));
		tool_fail(1, cmd, "%s", why[0] ? why : s2s_strerror(e));
		s2s_client_destroy(c);
		return NULL;
	}
	return c;
}

/* Usage errors about the peer argument, before anything connects. */
static bool
bad_peer(const char *cmd, const struct devopts *o, const char *peer)
{
	struct s2s_device_config cfg;
	char err[512];
	bool self;

	memset(&cfg, 0, sizeof(cfg));
	if (s2s_device_config_load(o->config, &cfg, err, sizeof(err)))
		return false;   /* open_client reports it */
	self = !strcmp(cfg.id, peer);
	if (self)
		tool_fail(EXIT_USAGE, cmd, "'%s' is this device itself (id in "
			  "%s): name another device as the peer", peer,
			  o->config);
	s2s_device_config_free(&cfg);
	return self;
}

static int
fail_op(struct s2s_client *c, const char *cmd, const char *what,
	enum s2s_err e)
{
	char why[300];

	s2s_client_last_reason(c, why, sizeof(why));
	tool_fail(1, cmd, "%s: %s%s%s", what, s2s_strerror(e),
		  why[0] ? ": " : "", why);
	s2s_client_destroy(c);
	return 1;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- register ------------------------------------------------------------- */

int
cmd_register(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	enum s2s_err e;
	double t0;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s register [--code CODE] [--config FILE] "
		       "[--timeout SEC]\n"
		       "Register this device with the CS (its key and its "
		       "signature image).\nIdempotent.\n"
		       "  --code CODE       the enrolment code the administrator "
		       "issued\n                    (instead of the "
		       "configuration's \"enrolment_code\")\n%s%s",
		       timeout_help, common_help);
		return 0;
	}
	if (!parse_opts("register", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos)
		return tool_fail(EXIT_USAGE, "register", "no arguments expected");
	c = open_client("register", &o, false);
	if (!c)
		return 1;
	if (o.code && s2s_client_set_enrolment_code(c, o.code)) {
		s2s_client_destroy(c);
		return tool_fail(1, "register", "out of memory");
	}
	t0 = now_ms();
	e = s2s_client_register(c, o.timeout_ms);
	if (e)
		return fail_op(c, "register", "registration failed", e);
	printf("registered %s (%.1f ms)\n", s2s_client_id(c), now_ms() - t0);
	s2s_client_destroy(c);
	return 0;
}

/* ---- pair ------------------------------------------------------------------- */

int
cmd_pair(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	enum s2s_err e;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s pair PEER [--profile paper|hardened|default]"
		       " [--no-wait]\n"
		       "Ask the CS to pair this device with PEER and wait until"
		       " PEER asks too.\n"
		       "  --no-wait         send the request and return\n%s%s",
		       timeout_help, common_help);
		return 0;
	}
	if (!parse_opts("pair", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos != 1)
		return tool_fail(EXIT_USAGE, "pair", "usage: s2s pair PEER");
	if (bad_peer("pair", &o, o.pos[0]))
		return EXIT_USAGE;
	c = open_client("pair", &o, true);
	if (!c)
		return 1;
	e = s2s_client_pair(c, o.pos[0], o.profile,
			    o.no_wait ? 0 : o.timeout_ms);
	if (e == S2S_ERR_TIMEOUT) {
		printf("pending: waiting for %s to pair with %s\n", o.pos[0],
		       s2s_client_id(c));
		s2s_client_destroy(c);
		return o.no_wait ? 0 : 1;
	}
	if (e)
		return fail_op(c, "pair", "pairing failed", e);
	printf("paired %s with %s\n", s2s_client_id(c), o.pos[0]);
	s2s_client_destroy(c);
	return 0;
}

/* ---- session ------------------------------------------------------------------ */

int
cmd_session(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	enum s2s_err e;
	uint64_t t;
	double t0;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s session PEER [--config FILE]\n"
		       "Negotiate a new session with PEER (phase 2, this device"
		       " as SDS).  PEER's\ndevice must be online (its library "
		       "answers on its own).\n%s%s", timeout_help, common_help);
		return 0;
	}
	if (!parse_opts("session", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos != 1)
		return tool_fail(EXIT_USAGE, "session",
				 "usage: s2s session PEER");
	if (bad_peer("session", &o, o.pos[0]))
		return EXIT_USAGE;
	c = open_client("session", &o, true);
	if (!c)
		return 1;
	t0 = now_ms();
	e = s2s_client_session(c, o.pos[0], o.timeout_ms);
	if (e)
		return fail_op(c, "session", "negotiation failed", e);
	s2s_client_has_session(c, o.pos[0], &t);
	printf("session %llu established with %s (%.1f ms)\n",
	       (unsigned long long)t, o.pos[0], now_ms() - t0);
	s2s_client_destroy(c);
	return 0;
}

/* ---- send ---------------------------------------------------------------------- */

static void
print_reject(void *ud, const struct s2s_reject_info *r)
{
	(void)ud;
	fprintf(stderr, "s2s: %s package %llu %s %s: %s (%s)\n",
		r->outgoing ? "sent" : "received",
		(unsigned long long)r->seq, r->outgoing ? "to" : "from",
		r->peer, s2s_errname(r->err), r->reason);
}

int
cmd_send(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	struct s2s_sent_info info;
	enum s2s_err e;
	char line[65536];
	long n = 0, reps;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s send PEER MESSAGE [--count N] [--wait]\n"
		       "       s2s send PEER -          one message per line of"
		       " stdin\n"
		       "Send messages to PEER (negotiating a session first if "
		       "there is none).\n"
		       "  --count N         send MESSAGE N times, suffixed "
		       "\" #i\"\n"
		       "  --wait            wait for the CS to accept each "
		       "package\n%s%s", timeout_help, common_help);
		return 0;
	}
	if (!parse_opts("send", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos != 2)
		return tool_fail(EXIT_USAGE, "send",
				 "usage: s2s send PEER MESSAGE|-");
	if (bad_peer("send", &o, o.pos[0]))
		return EXIT_USAGE;
	c = open_client("send", &o, true);
	if (!c)
		return 1;
	s2s_client_on_reject(c, print_reject, NULL);
	e = s2s_client_ensure_session(c, o.pos[0], o.timeout_ms);
	if (e)
		return fail_op(c, "send", "no session", e);
	reps = o.count < 0 ? 1 : o.count;
	for (long i = 0;; i++) {
		const char *msg;
		char buf[65600];

		if (!strcmp(o.pos[1], "-")) {
			size_t l;

			if (!fgets(line, sizeof(line), stdin))
				break;
			l = strlen(line);
			if (l && line[l - 1] == '\n')
				line[--l] = '\0';
			msg = line;
		} else {
			if (i >= reps)
				break;
			if (o.count < 0)
				msg = o.pos[1];
			else {
				snprintf(buf, sizeof(buf), "%s #%ld", o.pos[1],
					 i + 1);
				msg = buf;
			}
		}
		e = s2s_client_send(c, o.pos[0], (const uint8_t *)msg,
				    strlen(msg),
				    o.wait_ack ? S2S_SEND_WAIT_ACK : 0, &info);
		if (e)
			return fail_op(c, "send", "send failed", e);
		printf("sent %s seq %llu (%zu bytes, sealed in %.2f ms)\n",
		       o.pos[0], (unsigned long long)info.seq,
		       info.package_len, info.seal_us / 1000.0);
		fflush(stdout);
		n++;
	}
	e = s2s_client_flush(c, o.timeout_ms > 0 ? o.timeout_ms : 10000);
	if (e)
		return fail_op(c, "send", "not every package was delivered "
			       "to the broker", e);
	s2s_client_destroy(c);
	return n ? 0 : 1;
}

/* ---- listen ------------------------------------------------------------------------ */

static volatile sig_atomic_t stop_listening;

static void
on_signal(int sig)
{
	(void)sig;
	stop_listening = 1;
}

static bool
printable(const uint8_t *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i] < 0x20 || m[i] == 0x7f)
			if (m[i] != '\t')
				return false;
	return true;
}

static void
print_message(bool json, const struct s2s_message_info *i, const uint8_t *m,
	      size_t n)
{
	if (json) {
		struct s2s_json *o = s2s_json_new_object();
		char *txt, *b;

		s2s_json_add_string(o, "from", i->sender);
		s2s_json_add_string(o, "to", i->receiver);
		s2s_json_add_u64_string(o, "seq", i->seq);
		s2s_json_add_u64_string(o, "session", i->session);
		s2s_json_add_string(o, "profile",
				    i->profile == 1 ? "paper" : "hardened");
		s2s_json_add_bool(o, "fetched", i->fetched);
		s2s_json_add_int(o, "verify_us", i->verify_us);
		b = malloc(n + 1);
		if (b) {
			memcpy(b, m, n);
			b[n] = '\0';
			if (printable(m, n) && strlen(b) == n) {
				s2s_json_add_string(o, "msg", b);
			} else {
				static const char hx[] = "0123456789abcdef";
				char *h = malloc(2 * n + 1);

				for (size_t k = 0; h && k < n; k++) {
					h[2 * k] = hx[m[k] >> 4];
					h[2 * k + 1] = hx[m[k] & 15];
				}
				if (h) {
					h[2 * n] = '\0';
					s2s_json_add_string(o, "msg_hex", h);
				}
				free(h);
			}
			free(b);
		}
		txt = s2s_json_print(o, NULL);
		if (txt)
			printf("%s\n", txt);
		free(txt);
		s2s_json_free(o);
	} else {
		printf("%s -> %s #%llu%s: %.*s\n", i->sender, i->receiver,
		       (unsigned long long)i->seq,
		       i->fetched ? " (fetched)" : "", (int)n, (const char *)m);
	}
	fflush(stdout);
}

static volatile sig_atomic_t listen_denied;

/* Network thread: connection changes, so a user sees them. */
static void
listen_event(void *ud, enum s2s_event ev, const char *peer,
	     const char *detail)
{
	(void)ud;
	(void)peer;
	(void)detail;
	if (ev == S2S_EVENT_DENIED)
		listen_denied = 1;
}

static void
print_reject_json(void *ud, const struct s2s_reject_info *r)
{
	bool json = *(bool *)ud;

	if (!json) {
		print_reject(NULL, r);
		return;
	}
	{
		struct s2s_json *o = s2s_json_new_object();
		char *txt;

		s2s_json_add_string(o, "rejected", s2s_errname(r->err));
		s2s_json_add_string(o, "peer", r->peer);
		s2s_json_add_u64_string(o, "seq", r->seq);
		s2s_json_add_bool(o, "outgoing", r->outgoing);
		s2s_json_add_string(o, "reason", r->reason);
		txt = s2s_json_print(o, NULL);
		if (txt)
			fprintf(stderr, "%s\n", txt);
		free(txt);
		s2s_json_free(o);
	}
}

int
cmd_listen(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	struct s2s_received *r;
	long got = 0;
	double end;
	enum s2s_err e;
	int status = 0;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s listen [--peer PEER]... [--json] [--count N]"
		       " [--timeout SEC]\n"
		       "Print every verified message (\"from -> to #seq: msg\","
		       " or with --json one\nJSON object per line: from, to, "
		       "seq, session, profile, fetched, msg or\nmsg_hex); "
		       "refused packages go to stderr.\n"
		       "Connection changes (reconnecting, refused) are told "
		       "on stderr.\n"
		       "  --peer PEER       pair with PEER first if needed\n"
		       "  --count N         exit after N messages\n"
		       "  --timeout SEC     exit after SEC seconds (default: "
		       "run until a signal)\n%s", common_help);
		return 0;
	}
	if (!parse_opts("listen", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos)
		return tool_fail(EXIT_USAGE, "listen", "unexpected argument");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	c = open_client("listen", &o, true);
	if (!c)
		return 1;
	s2s_client_on_reject(c, print_reject_json, &o.json);
	s2s_client_on_event(c, listen_event, NULL);
	for (int i = 0; i < o.npeers; i++) {
		if (s2s_client_paired(c, o.peers[i]))
			continue;
		e = s2s_client_pair(c, o.peers[i], o.profile, -1);
		if (e)
			return fail_op(c, "listen", "pairing failed", e);
	}
	fprintf(stderr, "listening as %s\n", s2s_client_id(c));
	end = o.timeout_ms > 0 ? now_ms() + o.timeout_ms : 0;
	while (!stop_listening && (o.count < 0 || got < o.count)) {
		int wait = 200;

		if (listen_denied) {
			char why[300];

			s2s_client_last_reason(c, why, sizeof(why));
			tool_fail(1, "listen", "%s", why);
			status = 1;
			break;
		}
		if (end) {
			double left = end - now_ms();

			if (left <= 0) {
				status = o.count >= 0 ? 1 : 0;
				break;
			}
			if (left < wait)
				wait = (int)left + 1;
		}
		e = s2s_client_receive(c, wait, &r);
		if (e == S2S_ERR_DENIED)
			continue;       /* listen_denied says it */
		if (e)
			continue;
		print_message(o.json, &r->info, r->msg, r->len);
		s2s_received_free(r);
		got++;
	}
	s2s_client_destroy(c);
	return status;
}

/* ---- fetch ------------------------------------------------------------------------ */

int
cmd_fetch(int argc, char **argv)
{
	struct devopts o;
	struct s2s_client *c;
	struct s2s_received *r;
	uint64_t next = 0;
	unsigned n = 0;
	enum s2s_err e;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s fetch PEER [--from SEQ] [--to SEQ] [--json]\n"
		       "Fetch PEER's stored packages of the current session from"
		       " the CS, verify\nthe new ones in order and print them "
		       "(default: from the next expected).\n%s%s", timeout_help,
		       common_help);
		return 0;
	}
	if (!parse_opts("fetch", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos != 1)
		return tool_fail(EXIT_USAGE, "fetch", "usage: s2s fetch PEER");
	c = open_client("fetch", &o, true);
	if (!c)
		return 1;
	if (s2s_client_seq(c, o.pos[0], NULL, &next))
		return fail_op(c, "fetch", "no session with the peer",
			       S2S_ERR_SESSION);
	e = s2s_client_fetch(c, o.pos[0], o.from ? o.from : next, o.to,
			     o.timeout_ms, &n);
	if (e)
		return fail_op(c, "fetch", "fetch failed", e);
	while (!s2s_client_receive(c, 0, &r)) {
		print_message(o.json, &r->info, r->msg, r->len);
		s2s_received_free(r);
	}
	if (!o.json)
		printf("fetched %u new message%s from %s\n", n,
		       n == 1 ? "" : "s", o.pos[0]);
	s2s_client_destroy(c);
	return 0;
}

/* ---- status ------------------------------------------------------------------ */

/*
 * The process holding <state_dir>/lock ("pid command"), or "" when none:
 * a shared flock succeeds only when no client holds the exclusive one.
 */
static void
lock_holder(const char *state_dir, char *out, size_t len)
{
	char path[4096];
	int fd;
	ssize_t n;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return;
	}
	n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	n = (ssize_t)strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	if (!out[0])
		snprintf(out, len, "?");
}

/* Messages kept in <state_dir>/unread for the next listen. */
static unsigned
unread_count(const char *state_dir)
{
	char path[4096];
	uint8_t h[9];
	FILE *f;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/unread", state_dir);
	f = fopen(path, "rb");
	if (!f)
		return 0;
	if (fread(h, 1, sizeof(h), f) == sizeof(h) && !memcmp(h, "S2SU", 4))
		n = (unsigned)h[5] << 24 | (unsigned)h[6] << 16 |
		    (unsigned)h[7] << 8 | h[8];
	fclose(f);
	return n;
}

static const char *
profile_name(int p)
{
	return p == 1 ? "paper" : p == 2 ? "hardened" : "default";
}

int
cmd_status(int argc, char **argv)
{
	struct devopts o;
	struct s2s_device_config cfg;
	struct s2s_state st;
	char err[512], holder[300];
	enum s2s_err e;
	unsigned unread;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s status [--json] [--config FILE]\n"
		       "What this device's own state says: registration, pairs,"
		       " sessions and\nsequence numbers, whether a process is "
		       "using the device now, messages\nkept for the next "
		       "listen.  Does not connect (see s2s health).\n"
		       "  --json            one JSON object\n%s", common_help);
		return 0;
	}
	if (!parse_opts("status", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos)
		return tool_fail(EXIT_USAGE, "status", "no arguments expected");
	memset(&cfg, 0, sizeof(cfg));
	if (s2s_device_config_load(o.config, &cfg, err, sizeof(err)))
		return tool_fail(1, "status", "%s", err);
	e = s2s_state_owner(cfg.state_dir, cfg.id, false, err, sizeof(err));
	if (!e)
		e = s2s_state_load(cfg.state_dir, &st, err, sizeof(err));
	if (e && e != S2S_ERR_NOT_FOUND) {
		s2s_device_config_free(&cfg);
		return tool_fail(1, "status", "%s", err);
	}
	if (e)
		memset(&st, 0, sizeof(st));
	lock_holder(cfg.state_dir, holder, sizeof(holder));
	unread = unread_count(cfg.state_dir);
	if (o.json) {
		struct s2s_json *j = s2s_json_new_object(), *a;
		char *txt;

		s2s_json_add_string(j, "id", cfg.id);
		s2s_json_add_string(j, "broker", cfg.broker);
		s2s_json_add_string(j, "state_dir", cfg.state_dir);
		if (holder[0])
			s2s_json_add_string(j, "in_use_by", holder);
		s2s_json_add_bool(j, "registered", st.registered);
		if (st.registered)
			s2s_json_add_string(j, "cs_id", st.cs_id);
		s2s_json_add_int(j, "unread", unread);
		a = s2s_json_add_array(j, "peers");
		for (size_t i = 0; i < st.npairs; i++) {
			const struct s2s_state_pair *p = &st.pairs[i];
			struct s2s_json *x = s2s_json_push_object(a);

			s2s_json_add_string(x, "peer", p->peer);
			s2s_json_add_string(x, "pair", p->pair_id);
			s2s_json_add_string(x, "status",
					    p->status == S2S_PAIR_DONE ? "paired"
					    : "waiting for the peer");
			s2s_json_add_string(x, "profile",
					    profile_name(p->profile));
			if (p->established) {
				s2s_json_add_u64_string(x, "session",
							p->session);
				s2s_json_add_string(x, "role", p->role == 1 ?
						    "initiator" : "responder");
				s2s_json_add_u64_string(x, "send_next",
							p->tx.next_seq);
				s2s_json_add_u64_string(x, "recv_next",
							p->rx.next_seq);
			}
		}
		txt = s2s_json_print(j, NULL);
		if (txt)
			printf("%s\n", txt);
		free(txt);
		s2s_json_free(j);
	} else {
		printf("device      %s\nbroker      %s\nstate       %s%s%s%s\n",
		       cfg.id, cfg.broker, cfg.state_dir,
		       holder[0] ? " (in use by process " : " (not in use)",
		       holder, holder[0] ? ")" : "");
		if (st.registered)
			printf("registered  yes (CS %s)\n", st.cs_id);
		else
			printf("registered  no (run: s2s register)\n");
		if (unread)
			printf("unread      %u message%s kept for the next "
			       "listen\n", unread, unread == 1 ? "" : "s");
		if (!st.npairs)
			printf("peers       none (run: s2s pair PEER)\n");
		for (size_t i = 0; i < st.npairs; i++) {
			const struct s2s_state_pair *p = &st.pairs[i];

			printf("peer        %s: %s, %s", p->peer,
			       p->status == S2S_PAIR_DONE ? "paired" :
			       "waiting for the peer to pair",
			       profile_name(p->profile));
			if (p->established)
				printf(", session %llu (%s), send next %llu, "
				       "receive next %llu\n",
				       (unsigned long long)p->session,
				       p->role == 1 ? "initiator" : "responder",
				       (unsigned long long)p->tx.next_seq,
				       (unsigned long long)p->rx.next_seq);
			else
				printf(", no session\n");
		}
	}
	s2s_state_clear(&st);
	s2s_device_config_free(&cfg);
	return 0;
}

/* ---- health -------------------------------------------------------------------- */

static void
health_event(void *ud, enum s2s_event ev, const char *peer,
	     const char *detail)
{
	(void)peer;
	(void)detail;
	if (ev == S2S_EVENT_DENIED)
		*(bool *)ud = true;
}

int
cmd_health(int argc, char **argv)
{
	bool denied = false;
	struct devopts o;
	struct s2s_device_config cfg;
	struct s2s_client *c;
	char err[512], holder[300], why[300];
	enum s2s_err e;
	int status = 0;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s health [--peer PEER]... [--config FILE] "
		       "[--timeout SEC]\n"
		       "One line and an exit status for scripts and container "
		       "health checks:\n"
		       "  0  healthy: the broker accepts this device (or a "
		       "process of this device\n"
		       "     is running and holds it), registered, and a "
		       "session with every --peer\n"
		       "  1  the broker cannot be reached (the line says why)\n"
		       "  2  usage or configuration error\n"
		       "  3  the broker refuses this device (revoked?)\n"
		       "  4  not registered\n"
		       "  5  no session with a --peer\n%s%s", timeout_help,
		       common_help);
		return 0;
	}
	if (!parse_opts("health", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos)
		return tool_fail(EXIT_USAGE, "health", "no arguments expected");
	memset(&cfg, 0, sizeof(cfg));
	if (s2s_device_config_load(o.config, &cfg, err, sizeof(err)))
		return tool_fail(EXIT_USAGE, "health", "%s", err);
	lock_holder(cfg.state_dir, holder, sizeof(holder));
	s2s_device_config_free(&cfg);
	if (holder[0]) {
		/* Connecting as the device would take its connection over. */
		printf("running: process %s holds the device\n", holder);
		return 0;
	}
	if (s2s_client_create(o.config, &c, err, sizeof(err)))
		return tool_fail(EXIT_USAGE, "health", "%s", err);
	s2s_client_on_event(c, health_event, &denied);
	e = s2s_client_connect(c, o.timeout_ms);
	if (!e && denied)
		e = S2S_ERR_DENIED;
	if (e) {
		s2s_client_last_reason(c, why, sizeof(why));
		printf("%s\n", why[0] ? why : s2s_strerror(e));
		s2s_client_destroy(c);
		return e == S2S_ERR_DENIED ? 3 : 1;
	}
	if (!s2s_client_registered(c)) {
		printf("not registered (run: s2s register)\n");
		s2s_client_destroy(c);
		return 4;
	}
	for (int i = 0; i < o.npeers; i++) {
		if (!s2s_client_has_session(c, o.peers[i], NULL)) {
			printf("no session with %s\n", o.peers[i]);
			status = 5;
		}
	}
	if (!status)
		printf("ok: %s registered and connected\n", s2s_client_id(c));
	s2s_client_destroy(c);
	return status;
}

/* ---- unpair ------------------------------------------------------------------- */

int
cmd_unpair(int argc, char **argv)
{
	struct devopts o;
	struct s2s_device_config cfg;
	struct s2s_client *c;
	char err[512], keybuf[4096], *req = NULL, *resp = NULL;
	const char *key;
	enum s2s_err e;
	int status = 0;

	if (tool_wants_help(argc, argv)) {
		printf("usage: s2s unpair PEER [--admin-key FILE] [--config "
		       "FILE]\n"
		       "Forget PEER on this device: end the session, wipe it "
		       "and the pair's key\n(Shk) from the state.  With the "
		       "admin key (--admin-key, or <cs_key base>\n.admin.key "
		       "when it is readable) also remove the pair at the CS "
		       "(admin\ncommand unpair), so that both devices can pair "
		       "again.\n%s%s", timeout_help, common_help);
		return 0;
	}
	if (!parse_opts("unpair", argc, argv, &o))
		return EXIT_USAGE;
	if (o.npos != 1)
		return tool_fail(EXIT_USAGE, "unpair", "usage: s2s unpair PEER");
	if (bad_peer("unpair", &o, o.pos[0]))
		return EXIT_USAGE;
	c = open_client("unpair", &o, false);
	if (!c)
		return 1;
	/* Best effort: the CS ends the session if we can reach it. */
	if (s2s_client_connect(c, o.timeout_ms > 0 ? o.timeout_ms : 5000))
		fprintf(stderr, "s2s unpair: broker not reachable: the CS "
			"keeps the session until it ends\n");
	e = s2s_client_forget_peer(c, o.pos[0]);
	s2s_client_destroy(c);
	if (e == S2S_ERR_NOT_FOUND)
		return tool_fail(1, "unpair", "no pair with %s on this device",
				 o.pos[0]);
	if (e)
		return tool_fail(1, "unpair", "%s", s2s_strerror(e));
	printf("forgot %s on this device\n", o.pos[0]);

	memset(&cfg, 0, sizeof(cfg));
	if (s2s_device_config_load(o.config, &cfg, err, sizeof(err)))
		return tool_fail(1, "unpair", "%s", err);
	key = o.admin_key;
	if (!key) {
		size_t l = strlen(cfg.cs_key_file);

		if (l > 4 && !strcmp(cfg.cs_key_file + l - 4, ".pub"))
			l -= 4;
		snprintf(keybuf, sizeof(keybuf), "%.*s.admin.key", (int)l,
			 cfg.cs_key_file);
		key = access(keybuf, R_OK) == 0 ? keybuf : NULL;
	}
	if (!key) {
		printf("the CS keeps the pair: an administrator removes it with"
		       " `s2s ctl unpair id=%s peer=%s`\n", cfg.id, o.pos[0]);
		s2s_device_config_free(&cfg);
		return 0;
	}
	req = s2s_admin_request_unpair(cfg.id, o.pos[0]);
	e = req ? s2s_admin_call(cfg.broker, key, NULL, cfg.tls_ca_file, req,
				 o.timeout_ms, &resp) : S2S_ERR_NOMEM;
	if (e) {
		status = tool_fail(1, "unpair", "admin unpair at %s with key %s:"
				   " %s", cfg.broker, key, s2s_strerror(e));
	} else if (strstr(resp, "\"error\"")) {
		status = tool_fail(1, "unpair", "the CS: %s", resp);
	} else {
		printf("removed the pair %s/%s at the CS\n", cfg.id, o.pos[0]);
	}
	free(req);
	s2s_free(resp);
	s2s_device_config_free(&cfg);
	return status;
}
