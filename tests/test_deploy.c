/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_deploy.c - the paths users deploy with (issue 6), against a real
 * Mosquitto (tests/broker_harness.c) and real processes:
 *
 *   install     docker/build.sh (the Dockerfile's build stage) installs
 *               the project into a temporary DESTDIR and builds examples/
 *               there against the installed s2s-client.pc only; every
 *               file is where the documentation says
 *   examples    the installed s2s-listener and s2s-sender exchange
 *               messages through a broker running the installed plugin
 *   entrypoint  docker/entrypoint.sh renders mosquitto.conf from S2S_*
 *               variables and a conf.d file, prepares the data folder and
 *               keys; mosquitto started with that file lets a device
 *               register; bad variables are refused
 *   tls         a throwaway CA made here; one listener with server
 *               authentication, one that requires client certificates;
 *               devices on ssl:// exchange a message; a device with the
 *               wrong CA or without a certificate cannot connect
 *   feed        plugin_opt_feed on: each accepted message appears as JSON
 *               on ROOT/verified/<pair> for a listed reader (mosquitto_sub
 *               with a password_file user), text and base64; an anonymous
 *               client reads nothing
 *
 * Skipped (exit 77) without mosquitto, the plugin, openssl or
 * mosquitto_sub.  Every wait is bounded; servers are stopped by PID.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
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

#include "broker_harness.h"
#include "check_main.h"
#include "json.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"

/* The installation made once for the whole suite (unchecked fixture). */
static char dest[256];          /* DESTDIR */
static char inst_lib[512];      /* DESTDIR<libdir> */
static char inst_bin[512];      /* DESTDIR<bindir> */
static char inst_plugin[600];
static bool installed;

static struct bh_broker *B;

static const char *
env(const char *name)
{
	return tests_env(name, "");
}

static void
rm_rf(const char *dir)
{
	char cmd[800];

	if (dir && *dir && !getenv("S2S_KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'",
			 (int)sizeof(cmd) - 16, dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
}

/* A temporary folder the broker user can traverse. */
static void
mktmp(char *buf, size_t n, const char *what)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, n, "%s/s2s-%s-XXXXXX", t && *t ? t : "/tmp", what);
	ck_assert_ptr_nonnull(mkdtemp(buf));
	chmod(buf, 0755);
}

static void
give_to_broker(const char *path)
{
	struct passwd *pw = geteuid() == 0 ? getpwnam("mosquitto") : NULL;

	if (pw)
		ck_assert_int_eq(chown(path, pw->pw_uid, pw->pw_gid), 0);
}

/*
 * Run a shell command line with a time limit; stdout+stderr into out (may
 * be NULL).  Returns the exit status, -1 on timeout.
 */
static int
sh(const char *cmd, char *out, size_t out_len, int timeout_s)
{
	char file[] = "/tmp/s2s-deploy-out-XXXXXX";
	int fd = mkstemp(file), st;
	time_t end = time(NULL) + timeout_s;
	pid_t pid;

	ck_assert_int_ge(fd, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (time(NULL) > end) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			st = -1;
			break;
		}
		usleep(10000);
	}
	if (out) {
		FILE *f = fopen(file, "r");
		size_t n = f ? fread(out, 1, out_len - 1, f) : 0;

		out[n] = '\0';
		if (f)
			fclose(f);
	}
	unlink(file);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start a shell command line in the background (own process group). */
static pid_t
sh_bg(const char *cmd, const char *outfile)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
reap(pid_t pid, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (time(NULL) > end) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool
port_open(int port)
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

/* How many times needle is in broker b's log so far. */
static int
log_count(const struct bh_broker *b, const char *needle)
{
	char *log = bh_log(b);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, 1 << 20);
	n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A device folder: key, synthetic signature, configuration. */
static void
make_device(const char *dir, const char *name, uint32_t user,
	    const char *broker, const char *cs_pub, const char *extra,
	    char *cfg, size_t cfg_len)
{
	char path[600], sig[600];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	FILE *f;

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	ck_assert_int_eq(s2s_key_save(k, path), S2S_OK);
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	ck_assert_int_eq(s2s_bio_siggen(user, 1, &img), S2S_OK);
	ck_assert_int_eq(s2s_image_write_file(&img, sig, 6), S2S_OK);
	s2s_image_free(&img);
	snprintf(cfg, cfg_len, "%s/device.json", dir);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"broker\":\"%s\",\"id\":\"%s\",\"key\":\"%s.key\","
		"\"cs_key\":\"%s\",\"signature\":\"sig.png\",\"state_dir\":"
		"\"state\",\"covers\":\"builtin\",\"state_fsync\":false,"
		"\"timeouts\":{\"connect\":10,\"register\":15,\"pair\":20,"
		"\"session\":20,\"fetch\":5}%s}\n",
		broker, name, path, cs_pub, extra ? extra : "");
	fclose(f);
}

/* ---- the installation (once) -------------------------------------------- */

static void
install_once(void)
{
	char cmd[2048], out[16384];
	int rc;

	mktmp(dest, sizeof(dest), "dest");
	snprintf(cmd, sizeof(cmd),
		 "S2S_NO_REBUILD=1 '%s/docker/build.sh' '%s' '%s'",
		 env("S2S_SRCDIR"), dest, env("S2S_BUILDDIR"));
	rc = sh(cmd, out, sizeof(out), 600);
	if (rc != 0) {
		fprintf(stderr, "docker/build.sh failed (%d):\n%s\n", rc, out);
		return;
	}
	snprintf(inst_lib, sizeof(inst_lib), "%s%s", dest, env("S2S_LIBDIR"));
	snprintf(inst_bin, sizeof(inst_bin), "%s%s", dest, env("S2S_BINDIR"));
	snprintf(inst_plugin, sizeof(inst_plugin),
		 "%s/mosquitto/mosquitto_s2s.so", inst_lib);
	installed = true;
}

static void
uninstall(void)
{
	rm_rf(dest);
}

static void
stop_broker(void)
{
	bh_destroy(B);
	B = NULL;
}

START_TEST(test_install)
{
	static const char *const headers[] = { "client.h", "error.h" };
	char p[2048], out[4096];
	struct stat st;

	ck_assert_msg(installed, "docker/build.sh failed (see the log)");
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		snprintf(p, sizeof(p), "%s%s/s2s/%s", dest,
			 env("S2S_INCLUDEDIR"), headers[i]);
		ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	}
	/* The library with its soname, the development link, the .pc. */
	snprintf(p, sizeof(p), "%s/libs2s-client.so.0", inst_lib);
	ck_assert_msg(lstat(p, &st) == 0, "missing %s", p);
	snprintf(p, sizeof(p), "%s/libs2s-client.so", inst_lib);
	ck_assert_msg(lstat(p, &st) == 0 && S_ISLNK(st.st_mode),
		      "missing symlink %s", p);
	snprintf(p, sizeof(p), "readelf -d '%s/libs2s-client.so' | "
		 "grep -q 'SONAME.*libs2s-client.so.0'", inst_lib);
	ck_assert_int_eq(sh(p, out, sizeof(out), 30), 0);
	snprintf(p, sizeof(p), "%s/pkgconfig/s2s-client.pc", inst_lib);
	ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	ck_assert_msg(stat(inst_plugin, &st) == 0, "missing %s", inst_plugin);
	snprintf(p, sizeof(p), "%s/s2s", inst_bin);
	ck_assert_msg(access(p, X_OK) == 0, "missing %s", p);
	snprintf(p, sizeof(p), "%s%s/man1/s2s.1", dest, env("S2S_MANDIR"));
	ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	snprintf(p, sizeof(p), "man -l '%s%s/man1/s2s.1' 2>&1 >/dev/null | "
		 "grep . && exit 1; exit 0", dest, env("S2S_MANDIR"));
	if (access("/usr/bin/man", X_OK) == 0)
		ck_assert_msg(sh(p, out, sizeof(out), 30) == 0,
			      "man page warnings: %s", out);
	/* The commented example device configuration. */
	snprintf(p, sizeof(p), "%s%s/../../doc/s2s-mqtt/s2s-device.json.example",
		 dest, env("S2S_COVERSDIR"));
	ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	/* The default covers, with their provenance. */
	snprintf(p, sizeof(p), "%s%s/camera128.png", dest, env("S2S_COVERSDIR"));
	ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	snprintf(p, sizeof(p), "%s%s/PROVENANCE.md", dest, env("S2S_COVERSDIR"));
	ck_assert_msg(stat(p, &st) == 0, "missing %s", p);
	/* The installed tool runs on the installed library. */
	snprintf(p, sizeof(p), "LD_LIBRARY_PATH='%s' '%s/s2s' --version",
		 inst_lib, inst_bin);
	ck_assert_int_eq(sh(p, out, sizeof(out), 30), 0);
	snprintf(p, sizeof(p), "LD_LIBRARY_PATH='%s' ldd '%s/s2s-sender' | "
		 "grep -q '%s/libs2s-client.so.0'", inst_lib, inst_bin,
		 inst_lib);
	ck_assert_msg(sh(p, out, sizeof(out), 30) == 0,
		      "the example does not use the installed library");
}
END_TEST

/* ---- the examples against a broker ------------------------------------- */

START_TEST(test_examples)
{
	static const char *const opts[] = { "enrollment", "open", NULL };
	char dir[512], cfg_a[700], cfg_b[700], uri[64], cmd[3000], log[600];
	char out[8192], *txt;
	pid_t listener;
	int rc;

	ck_assert_msg(installed, "docker/build.sh failed (see the log)");
	ck_assert_int_eq(bh_start(&B, &(struct bh_options){
		.plugin = inst_plugin, .plugin_opts = opts }), 0);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", bh_port(B));
	snprintf(dir, sizeof(dir), "%s/alice", bh_dir(B));
	make_device(dir, "alice", 1, uri, bh_path(B, "cs.pub"), NULL, cfg_a,
		    sizeof(cfg_a));
	snprintf(dir, sizeof(dir), "%s/bob", bh_dir(B));
	make_device(dir, "bob", 2, uri, bh_path(B, "cs.pub"), NULL, cfg_b,
		    sizeof(cfg_b));

	snprintf(log, sizeof(log), "%s/listener.out", bh_dir(B));
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' exec '%s/s2s-listener'"
		 " '%s' bob 2 30", inst_lib, inst_bin, cfg_a);
	listener = sh_bg(cmd, log);
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' '%s/s2s-sender' '%s'"
		 " alice 'hello from bob' 'temperature 21.5 C'", inst_lib,
		 inst_bin, cfg_b);
	rc = sh(cmd, out, sizeof(out), 90);
	if (rc != 0) {
		txt = slurp(log);
		fprintf(stderr, "s2s-listener so far:\n%s\n", txt ? txt : "");
		free(txt);
		txt = bh_log(B);
		fprintf(stderr, "broker log:\n%s\n",
			txt ? txt + (strlen(txt) > 6000 ?
				     strlen(txt) - 6000 : 0) : "");
		free(txt);
	}
	ck_assert_msg(rc == 0, "s2s-sender: %d\n%s", rc, out);
	ck_assert_ptr_nonnull(strstr(out, "sent seq 2"));
	rc = reap(listener, 60);
	txt = slurp(log);
	ck_assert_msg(rc == 0, "s2s-listener: %d\n%s", rc, txt ? txt : "");
	ck_assert_msg(strstr(txt, "1 bob: hello from bob") &&
		      strstr(txt, "2 bob: temperature 21.5 C"), "%s", txt);
	free(txt);

	/* Each example again, as a user does the next day: both now start
	 * from their saved state (registered, paired, a session) and
	 * connect on their own. */
	snprintf(log, sizeof(log), "%s/listener2.out", bh_dir(B));
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' exec '%s/s2s-listener'"
		 " '%s' bob 1 30", inst_lib, inst_bin, cfg_a);
	listener = sh_bg(cmd, log);
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' '%s/s2s-sender' '%s'"
		 " alice 'the next day'", inst_lib, inst_bin, cfg_b);
	rc = sh(cmd, out, sizeof(out), 90);
	ck_assert_msg(rc == 0, "s2s-sender (second run): %d\n%s", rc, out);
	ck_assert_ptr_nonnull(strstr(out, "sent seq 3"));
	rc = reap(listener, 60);
	txt = slurp(log);
	ck_assert_msg(rc == 0, "s2s-listener (second run): %d\n%s", rc,
		      txt ? txt : "");
	ck_assert_msg(strstr(txt, "3 bob: the next day"), "%s", txt);
	free(txt);
	stop_broker();
}
END_TEST

/* ---- docker/entrypoint.sh on the host ----------------------------------- */

START_TEST(test_entrypoint)
{
	char tmp[256], cmd[4096], out[16384], conf[600], cfg[700], dir[600];
	char pub[600], uri[64], *txt;
	int port, rc, st;
	pid_t pid;
	FILE *f;

	ck_assert_msg(installed, "docker/build.sh failed (see the log)");
	mktmp(tmp, sizeof(tmp), "entry");
	snprintf(dir, sizeof(dir), "%s/conf.d", tmp);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(conf, sizeof(conf), "%s/conf.d/50-test.conf", tmp);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# a mounted file\nplugin_opt_stats_interval 3\n", f);
	fclose(f);
	port = bh_free_port();
	snprintf(cmd, sizeof(cmd),
		 "export LD_LIBRARY_PATH='%s' S2S_DATA='%s/data' "
		 "S2S_CONF_DIR='%s/conf.d' S2S_PORT=%d S2S_BIND=127.0.0.1 "
		 "S2S_ENROLLMENT=open S2S_FEED=on S2S_FEED_READERS=dash "
		 "S2S_RETENTION_PACKAGES=500 S2S_PUBLIC='%s/public' "
		 "S2S_PLUGIN='%s' S2S_TOOL='%s/s2s'; "
		 "'%s/docker/entrypoint.sh' render",
		 inst_lib, tmp, tmp, port, tmp, inst_plugin, inst_bin,
		 env("S2S_SRCDIR"));
	rc = sh(cmd, out, sizeof(out), 60);
	ck_assert_msg(rc == 0, "entrypoint render: %d\n%s", rc, out);
	snprintf(conf, sizeof(conf), "%s/data/mosquitto.conf", tmp);
	ck_assert_ptr_nonnull(strstr(out, conf));
	txt = slurp(conf);
	ck_assert_ptr_nonnull(txt);
	{
		char want[700];

		snprintf(want, sizeof(want), "listener %d 127.0.0.1\n", port);
		ck_assert_msg(strstr(txt, want), "%s", txt);
		snprintf(want, sizeof(want), "plugin %s\n", inst_plugin);
		ck_assert_msg(strstr(txt, want), "%s", txt);
		snprintf(want, sizeof(want), "# ---- from %s/conf.d/50-test.conf"
			 "\n# a mounted file\nplugin_opt_stats_interval 3\n",
			 tmp);
		ck_assert_msg(strstr(txt, want), "%s", txt);
	}
	ck_assert(strstr(txt, "plugin_opt_feed on\n"));
	ck_assert(strstr(txt, "plugin_opt_feed_readers dash\n"));
	ck_assert(strstr(txt, "plugin_opt_retention_packages 500\n"));
	ck_assert(strstr(txt, "plugin_opt_enrollment open\n"));
	free(txt);
	/* Keys made before the broker runs; the public one handed out. */
	snprintf(pub, sizeof(pub), "%s/public/cs.pub", tmp);
	ck_assert_int_eq(access(pub, R_OK), 0);
	snprintf(cfg, sizeof(cfg), "%s/data/cs.admin.key", tmp);
	ck_assert_int_eq(access(cfg, R_OK), 0);

	/* The broker with exactly the rendered file. */
	snprintf(cmd, sizeof(cmd), "exec /usr/sbin/mosquitto -c '%s'", conf);
	snprintf(dir, sizeof(dir), "%s/broker.out", tmp);
	pid = sh_bg(cmd, dir);
	for (int i = 0; i < 1200 && !port_open(port); i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = -1;
			break;
		}
		usleep(50000);
	}
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	snprintf(dir, sizeof(dir), "%s/dev", tmp);
	make_device(dir, "carol", 3, uri, pub, NULL, cfg, sizeof(cfg));
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' '%s/s2s' register "
		 "--config '%s'", inst_lib, inst_bin, cfg);
	rc = sh(cmd, out, sizeof(out), 60);
	if (pid > 0) {
		kill(pid, SIGTERM);
		st = reap(pid, 10);
	}
	snprintf(dir, sizeof(dir), "%s/broker.out", tmp);
	txt = slurp(dir);
	ck_assert_msg(pid > 0, "the broker exited at start:\n%s",
		      txt ? txt : "");
	ck_assert_msg(rc == 0, "register through the rendered broker: %d\n"
		      "%s\nbroker:\n%s", rc, out, txt ? txt : "");
	ck_assert_msg(st == 0, "the broker did not stop cleanly (%d)", st);
	ck_assert_msg(strstr(txt, "cloud server 'cs' ready"), "%s", txt);
	free(txt);

	/* Bad variables stop it with a message naming them. */
	snprintf(cmd, sizeof(cmd), "S2S_DATA='%s/data' S2S_PROFILE=bogus "
		 "S2S_PLUGIN='%s' S2S_TOOL='%s/s2s' LD_LIBRARY_PATH='%s' "
		 "'%s/docker/entrypoint.sh' render", tmp, inst_plugin,
		 inst_bin, inst_lib, env("S2S_SRCDIR"));
	ck_assert_int_ne(sh(cmd, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "S2S_PROFILE='bogus'"), "%s", out);
	snprintf(cmd, sizeof(cmd), "S2S_DATA='%s/data' S2S_TLS_PORT=8883 "
		 "S2S_PLUGIN='%s' S2S_TOOL='%s/s2s' LD_LIBRARY_PATH='%s' "
		 "'%s/docker/entrypoint.sh' render", tmp, inst_plugin,
		 inst_bin, inst_lib, env("S2S_SRCDIR"));
	ck_assert_int_ne(sh(cmd, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "S2S_TLS_CERT"), "%s", out);
	rm_rf(tmp);
}
END_TEST

/* ---- two in-process devices ---------------------------------------------- */

static void
pair_and_send(struct s2s_client *a, struct s2s_client *b, const char *msg,
	      size_t len)
{
	struct s2s_received *r = NULL;

	ck_assert_int_eq(s2s_client_register(a, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_register(b, -1), S2S_OK);
	s2s_client_pair(a, s2s_client_id(b), 0, 0);     /* ask, no wait */
	ck_assert_int_eq(s2s_client_pair(b, s2s_client_id(a), 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_ensure_session(a, s2s_client_id(b), -1),
			 S2S_OK);
	ck_assert_int_eq(s2s_client_send(a, s2s_client_id(b),
					 (const uint8_t *)msg, len,
					 S2S_SEND_WAIT_ACK, NULL), S2S_OK);
	ck_assert_int_eq(s2s_client_receive(b, 20000, &r), S2S_OK);
	ck_assert_uint_eq(r->len, len);
	ck_assert_mem_eq(r->msg, msg, len);
	s2s_received_free(r);
}

static struct s2s_client *
client(const char *cfg)
{
	struct s2s_client *c = NULL;
	char err[512];

	ck_assert_msg(s2s_client_create(cfg, &c, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	return c;
}

/* ---- TLS ---------------------------------------------------------------------- */

static void
openssl(const char *dir, const char *args)
{
	char cmd[2048], out[8192];

	snprintf(cmd, sizeof(cmd), "cd '%s' && openssl %s", dir, args);
	ck_assert_msg(sh(cmd, out, sizeof(out), 60) == 0, "openssl %s:\n%s",
		      args, out);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate. */
static void
make_pki(const char *d, const char *ca_name)
{
	char args[1024];

	snprintf(args, sizeof(args), "req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=%s' "
		 "-keyout ca.key -out ca.pem 2>&1", ca_name);
	openssl(d, args);
	openssl(d, "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>&1");
	openssl(d, "x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
		"-CAcreateserial -days 2 -out server.pem -extfile "
		"/dev/stdin <<EOF\nsubjectAltName=IP:127.0.0.1\n"
		"extendedKeyUsage=serverAuth\nEOF");
	openssl(d, "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-subj /CN=device -keyout client.key -out client.csr 2>&1");
	openssl(d, "x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
		"-CAcreateserial -days 2 -out client.pem -extfile "
		"/dev/stdin <<EOF\nextendedKeyUsage=clientAuth\nEOF");
}

START_TEST(test_tls)
{
	static const char *const opts[] = { "enrollment", "open", NULL };
	char pki[256], bad[256], extra[2048], uri[2][64], dir[600];
	char cfg_a[700], cfg_b[700], cfg_c[700], cfg_d[700], tls[2048];
	struct s2s_client *a, *b, *c;
	int port[2] = { bh_free_port(), bh_free_port() };
	const char *plugin = bh_plugin_path();

	ck_assert_ptr_nonnull(plugin);
	while (port[1] == port[0])
		port[1] = bh_free_port();
	mktmp(pki, sizeof(pki), "pki");
	make_pki(pki, "s2s test CA");
	mktmp(bad, sizeof(bad), "pki-other");
	make_pki(bad, "another CA");
	/* Read by the broker (it may already run as "mosquitto"). */
	snprintf(dir, sizeof(dir), "%s/server.key", pki);
	give_to_broker(dir);
	snprintf(extra, sizeof(extra),
		 "listener %d 127.0.0.1\n"
		 "certfile %s/server.pem\nkeyfile %s/server.key\n"
		 "listener %d 127.0.0.1\n"
		 "cafile %s/ca.pem\ncertfile %s/server.pem\n"
		 "keyfile %s/server.key\nrequire_certificate true\n",
		 port[0], pki, pki, port[1], pki, pki, pki);
	ck_assert_int_eq(bh_start(&B, &(struct bh_options){
		.plugin = plugin, .plugin_opts = opts,
		.extra_conf = extra }), 0);
	for (int i = 0; i < 2; i++)
		snprintf(uri[i], sizeof(uri[i]), "ssl://127.0.0.1:%d",
			 port[i]);

	/* alice: server authentication only; bob: a client certificate. */
	snprintf(tls, sizeof(tls), ",\"tls\":{\"ca_file\":\"%s/ca.pem\"}",
		 pki);
	snprintf(dir, sizeof(dir), "%s/alice", bh_dir(B));
	make_device(dir, "alice", 1, uri[0], bh_path(B, "cs.pub"), tls,
		    cfg_a, sizeof(cfg_a));
	snprintf(tls, sizeof(tls), ",\"tls\":{\"ca_file\":\"%s/ca.pem\","
		 "\"cert_file\":\"%s/client.pem\",\"key_file\":"
		 "\"%s/client.key\"}", pki, pki, pki);
	snprintf(dir, sizeof(dir), "%s/bob", bh_dir(B));
	make_device(dir, "bob", 2, uri[1], bh_path(B, "cs.pub"), tls,
		    cfg_b, sizeof(cfg_b));
	a = client(cfg_a);
	b = client(cfg_b);
	pair_and_send(a, b, "over TLS", 8);
	s2s_client_destroy(a);
	s2s_client_destroy(b);

	/* A server certificate from another CA is refused. */
	snprintf(tls, sizeof(tls), ",\"tls\":{\"ca_file\":\"%s/ca.pem\"}",
		 bad);
	snprintf(dir, sizeof(dir), "%s/carol", bh_dir(B));
	make_device(dir, "carol", 3, uri[0], bh_path(B, "cs.pub"), tls,
		    cfg_c, sizeof(cfg_c));
	c = client(cfg_c);
	ck_assert_int_ne(s2s_client_connect(c, 5000), S2S_OK);
	{
		/* The reason names the URI, TLS and the CA file to check. */
		char why[300];

		s2s_client_last_reason(c, why, sizeof(why));
		ck_assert_msg(strstr(why, uri[0]) && strstr(why, "TLS") &&
			      strstr(why, bad), "%s", why);
	}
	s2s_client_destroy(c);
	/* No client certificate where one is required: refused. */
	snprintf(tls, sizeof(tls), ",\"tls\":{\"ca_file\":\"%s/ca.pem\"}",
		 pki);
	snprintf(dir, sizeof(dir), "%s/dave", bh_dir(B));
	make_device(dir, "dave", 4, uri[1], bh_path(B, "cs.pub"), tls,
		    cfg_d, sizeof(cfg_d));
	c = client(cfg_d);
	ck_assert_int_ne(s2s_client_connect(c, 5000), S2S_OK);
	s2s_client_destroy(c);
	stop_broker();
	rm_rf(pki);
	rm_rf(bad);
}
END_TEST

/* ---- the verified feed ---------------------------------------------------- */

/* The n-th line of text (0-based) parsed as JSON. */
static struct s2s_json *
json_line(const char *txt, int n)
{
	while (n-- > 0 && txt) {
		txt = strchr(txt, '\n');
		if (txt)
			txt++;
	}
	if (!txt || !*txt)
		return NULL;
	return s2s_json_parse(txt, strcspn(txt, "\n"));
}

static void
expect_str(const struct s2s_json *o, const char *key, const char *want)
{
	char v[512];

	ck_assert_int_eq(s2s_json_get_string(o, key, false, NULL, v, sizeof(v),
					     NULL, 0), S2S_OK);
	ck_assert_str_eq(v, want);
}

START_TEST(test_feed)
{
	static const char *const opts[] = {
		"enrollment", "open", "feed", "on", "feed_readers", "dash,ops",
		NULL,
	};
	static const uint8_t bin[] = { 0x00, 0xff, 0x10, 'a' };
	char extra[800], pw[700], dir[600], cfg_a[700], cfg_b[700], uri[64];
	char cmd[2048], out_r[600], out_anon[600], *txt;
	struct s2s_client *a, *b;
	struct s2s_received *r;
	struct s2s_json *j;
	int64_t ts;
	pid_t reader, anon;
	int subacks0;
	const char *plugin = bh_plugin_path();

	ck_assert_ptr_nonnull(plugin);
	/* A reader authenticated by Mosquitto's own password_file. */
	mktmp(dir, sizeof(dir), "pw");
	snprintf(pw, sizeof(pw), "%s/passwd", dir);
	snprintf(cmd, sizeof(cmd), "mosquitto_passwd -b -c '%s' dash "
		 "dash-secret", pw);
	ck_assert_int_eq(sh(cmd, NULL, 0, 30), 0);
	give_to_broker(pw);
	snprintf(extra, sizeof(extra), "password_file %s", pw);
	ck_assert_int_eq(bh_start(&B, &(struct bh_options){
		.plugin = plugin, .plugin_opts = opts,
		.extra_conf = extra }), 0);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", bh_port(B));

	subacks0 = log_count(B, "Sending SUBACK to ");
	snprintf(out_r, sizeof(out_r), "%s/reader.out", bh_dir(B));
	snprintf(cmd, sizeof(cmd), "exec mosquitto_sub -h 127.0.0.1 -p %d "
		 "-u dash -P dash-secret -t 's2s/verified/#' -C 2 -W 60",
		 bh_port(B));
	reader = sh_bg(cmd, out_r);
	snprintf(out_anon, sizeof(out_anon), "%s/anon.out", bh_dir(B));
	snprintf(cmd, sizeof(cmd), "exec mosquitto_sub -h 127.0.0.1 -p %d "
		 "-t 's2s/verified/#' -t 's2s/verified/alice~bob' -C 1 -W 60",
		 bh_port(B));
	anon = sh_bg(cmd, out_anon);
	/* Both subscribed before anything is published: mosquitto_sub may
	 * take seconds to start on a loaded machine (the broker logs every
	 * SUBACK it sends: log_type all). */
	{
		int n = 0;

		for (int w = 0; w < 1200 && n < subacks0 + 2; w++) {
			n = log_count(B, "Sending SUBACK to ");
			if (n < subacks0 + 2)
				usleep(50000);
		}
		ck_assert_msg(n >= subacks0 + 2, "the feed readers did not "
			      "subscribe within 60 s");
	}

	snprintf(dir, sizeof(dir), "%s/alice", bh_dir(B));
	make_device(dir, "alice", 1, uri, bh_path(B, "cs.pub"), NULL, cfg_a,
		    sizeof(cfg_a));
	snprintf(dir, sizeof(dir), "%s/bob", bh_dir(B));
	make_device(dir, "bob", 2, uri, bh_path(B, "cs.pub"), NULL, cfg_b,
		    sizeof(cfg_b));
	a = client(cfg_a);
	b = client(cfg_b);
	ts = (int64_t)time(NULL);
	pair_and_send(a, b, "temp=21.5 \xc2\xb0" "C", 13);
	ck_assert_int_eq(s2s_client_send(a, "bob", bin, sizeof(bin),
					 S2S_SEND_WAIT_ACK, NULL), S2S_OK);
	ck_assert_int_eq(s2s_client_receive(b, 20000, &r), S2S_OK);
	s2s_received_free(r);
	ck_assert_int_eq(reap(reader, 30), 0);
	txt = slurp(out_r);
	ck_assert_ptr_nonnull(txt);

	j = json_line(txt, 0);
	ck_assert_msg(j != NULL, "not JSON: %s", txt);
	expect_str(j, "pair", "alice~bob");
	expect_str(j, "from", "alice");
	expect_str(j, "to", "bob");
	expect_str(j, "seq", "1");
	expect_str(j, "profile", "hardened");
	expect_str(j, "encoding", "utf8");
	expect_str(j, "msg", "temp=21.5 \xc2\xb0" "C");
	{
		int64_t v;
		char s[32];

		ck_assert_int_eq(s2s_json_get_int(j, "ts", false, 0, 0,
						  INT64_MAX, &v, NULL, 0),
				 S2S_OK);
		ck_assert(v >= ts - 5 && v <= ts + 60);
		ck_assert_int_eq(s2s_json_get_string(j, "session", false, NULL,
						     s, sizeof(s), NULL, 0),
				 S2S_OK);
		ck_assert(strspn(s, "0123456789") == strlen(s) && *s);
	}
	s2s_json_free(j);
	j = json_line(txt, 1);
	ck_assert_msg(j != NULL, "not JSON: %s", txt);
	expect_str(j, "seq", "2");
	expect_str(j, "encoding", "base64");
	expect_str(j, "msg", "AP8QYQ==");
	s2s_json_free(j);
	free(txt);

	/* The anonymous client saw nothing. */
	kill(-anon, SIGTERM);
	reap(anon, 10);
	txt = slurp(out_anon);
	ck_assert_msg(!txt || !strstr(txt, "alice"), "%s", txt);
	free(txt);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	*strrchr(pw, '/') = '\0';
	stop_broker();
	rm_rf(pw);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("deploy");
	TCase *t = tcase_create("installed");

	tcase_add_unchecked_fixture(t, install_once, uninstall);
	tcase_add_checked_fixture(t, NULL, stop_broker);
	tcase_set_timeout(t, 300);
	tcase_add_test(t, test_install);
	tcase_add_test(t, test_examples);
	tcase_add_test(t, test_entrypoint);
	suite_add_tcase(s, t);

	t = tcase_create("broker");
	tcase_add_checked_fixture(t, NULL, stop_broker);
	tcase_set_timeout(t, 180);
	tcase_add_test(t, test_tls);
	tcase_add_test(t, test_feed);
	suite_add_tcase(s, t);
	return s;
}

/* Is the ASan runtime loaded into this process? */
static bool
under_sanitizer(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libasan.so") != NULL;
	fclose(f);
	return found;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (!bh_plugin_path() || access("/usr/sbin/mosquitto", X_OK) != 0 ||
	    system("command -v openssl >/dev/null && "
		   "command -v mosquitto_sub >/dev/null && "
		   "command -v mosquitto_passwd >/dev/null") != 0) {
		fprintf(stderr, "deploy: skipped (needs mosquitto, "
			"mosquitto-clients, openssl and S2S_PLUGIN)\n");
		return 77;
	}
	if (under_sanitizer()) {
		fprintf(stderr, "deploy: skipped in a sanitizer build (installed "
			"programs built without -fsanitize cannot load the "
			"instrumented library)\n");
		return 77;
	}
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	s2s_crypto_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
