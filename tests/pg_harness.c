/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pg_harness.c - a private PostgreSQL server for the tests (pg_harness.h).
 */
#include "pg_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

struct pgh_server {
	char bin[512];
	char dir[256];
	char data[300];
	char log[300];
	int port;
	bool running;
	uid_t uid;          /* postgres' uid when we run as root */
	gid_t gid;
	bool as_postgres;
};

static bool
is_exec(const char *dir, const char *name)
{
	char p[1024];

	snprintf(p, sizeof(p), "%.900s/%.100s", dir, name);
	return access(p, X_OK) == 0;
}

/* The folder holding initdb and pg_ctl ("" if none). */
static void
find_bin(char *out, size_t n)
{
	const char *env = getenv("S2S_PG_BIN");
	DIR *d;
	struct dirent *e;
	int best = -1;

	out[0] = '\0';
	if (env && env[0]) {
		if (is_exec(env, "initdb") && is_exec(env, "pg_ctl"))
			snprintf(out, n, "%s", env);
		return;
	}
	d = opendir("/usr/lib/postgresql");
	while (d && (e = readdir(d)) != NULL) {
		char b[512];
		int v = atoi(e->d_name);

		snprintf(b, sizeof(b), "/usr/lib/postgresql/%.200s/bin",
			 e->d_name);
		if (v > best && is_exec(b, "initdb") && is_exec(b, "pg_ctl")) {
			best = v;
			snprintf(out, n, "%s", b);
		}
	}
	if (d)
		closedir(d);
	if (!out[0]) {
		const char *path = getenv("PATH");
		char *copy = path ? strdup(path) : NULL, *save = NULL;

		for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t;
		     t = strtok_r(NULL, ":", &save)) {
			if (is_exec(t, "initdb") && is_exec(t, "pg_ctl")) {
				snprintf(out, n, "%s", t);
				break;
			}
		}
		free(copy);
	}
}

bool
pgh_available(void)
{
	char b[256];

	find_bin(b, sizeof(b));
	return b[0] != '\0';
}

static int
free_port(void)
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

/* Run bin/prog with args (NULL-terminated), as postgres when root;
 * output to the server log file.  Returns the exit status or -1. */
static int
run(struct pgh_server *s, const char *prog, const char *const *args)
{
	const char *argv[32];
	char path[1024];
	int n = 0, status;
	pid_t pid;

	snprintf(path, sizeof(path), "%.900s/%.100s", s->bin, prog);
	if (s->as_postgres) {
		argv[n++] = "runuser";
		argv[n++] = "-u";
		argv[n++] = "postgres";
		argv[n++] = "--";
	}
	argv[n++] = path;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* The server must not inherit the test's descriptors. */
		for (int i = 3; i < 256; i++)
			close(i);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
print_log(const struct pgh_server *s)
{
	FILE *f = fopen(s->log, "r");
	char line[512];

	if (!f)
		return;
	fprintf(stderr, "---- PostgreSQL log %s ----\n", s->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

static int
server_start(struct pgh_server *s)
{
	char opts[600];
	const char *args[] = { "-D", s->data, "-l", s->log, "-o", opts, "-w",
			       "-t", "60", "start", NULL };

	snprintf(opts, sizeof(opts), "-k %s -p %d -c listen_addresses="
		 "127.0.0.1 -c fsync=on -c max_connections=60 "
		 "-c shared_buffers=16MB", s->dir, s->port);
	if (run(s, "pg_ctl", args) != 0) {
		print_log(s);
		return -1;
	}
	s->running = true;
	return 0;
}

int
pgh_start(struct pgh_server **out)
{
	struct pgh_server *s = calloc(1, sizeof(*s));
	struct passwd *pw;

	*out = s;
	if (!s)
		return -1;
	find_bin(s->bin, sizeof(s->bin));
	if (!s->bin[0])
		return PGH_SKIP;
	snprintf(s->dir, sizeof(s->dir), "/tmp/s2s-pg-XXXXXX");
	if (!mkdtemp(s->dir)) {
		s->dir[0] = '\0';
		return -1;
	}
	snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	if (geteuid() == 0) {
		pw = getpwnam("postgres");
		if (!pw) {
			fprintf(stderr, "pg_harness: running as root and no "
				"user 'postgres' to run the server as\n");
			return -1;
		}
		s->as_postgres = true;
		s->uid = pw->pw_uid;
		s->gid = pw->pw_gid;
		if (chown(s->dir, s->uid, s->gid) != 0)
			return -1;
	}
	if (chmod(s->dir, 0700) != 0)
		return -1;
	/* The log file is created by us (root) before the child runs as
	 * postgres: give it to postgres too. */
	{
		int fd = open(s->log, O_WRONLY | O_CREAT, 0644);

		if (fd < 0)
			return -1;
		if (s->as_postgres && fchown(fd, s->uid, s->gid) != 0) {
			close(fd);
			return -1;
		}
		close(fd);
	}
	{
		const char *args[] = { "-D", s->data, "-A", "trust", "-U", "s2s",
				       "-E", "UTF8", "--no-sync", NULL };

		if (run(s, "initdb", args) != 0) {
			print_log(s);
			return -1;
		}
	}
	for (int tries = 0; tries < 5; tries++) {
		s->port = free_port();
		if (s->port > 0 && server_start(s) == 0)
			return 0;
	}
	return -1;
}

int
pgh_port(const struct pgh_server *s)
{
	return s->port;
}

const char *
pgh_dir(const struct pgh_server *s)
{
	return s->dir;
}

void
pgh_uri(const struct pgh_server *s, const char *db, char *buf, size_t n)
{
	snprintf(buf, n, "postgresql://s2s@127.0.0.1:%d/%s", s->port, db);
}

static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static PGconn *
conn(struct pgh_server *s, const char *db)
{
	char uri[256];
	PGconn *c;

	pgh_uri(s, db, uri, sizeof(uri));
	c = PQconnectdb(uri);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_harness: %s: %s", uri, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

int
pgh_sql(struct pgh_server *s, const char *db, const char *sql)
{
	PGconn *c = conn(s, db);
	PGresult *r;
	int rc = -1;

	if (!c)
		return -1;
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = 0;
	else
		fprintf(stderr, "pg_harness: %s: %s", sql,
			PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return rc;
}

long
pgh_sql_long(struct pgh_server *s, const char *db, const char *sql)
{
	PGconn *c = conn(s, db);
	PGresult *r;
	long v = -1;

	if (!c)
		return -1;
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
	    !PQgetisnull(r, 0, 0))
		v = atol(PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "pg_harness: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

int
pgh_create_db(struct pgh_server *s, const char *db, char *uri, size_t n)
{
	char q[256];

	snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
		 db);
	if (pgh_sql(s, "postgres", q) != 0)
		return -1;
	snprintf(q, sizeof(q), "CREATE DATABASE \"%s\"", db);
	if (pgh_sql(s, "postgres", q) != 0)
		return -1;
	if (uri)
		pgh_uri(s, db, uri, n);
	return 0;
}

int
pgh_stop(struct pgh_server *s, bool immediate)
{
	const char *args[] = { "-D", s->data, "-m",
			       immediate ? "immediate" : "fast", "-w", "-t",
			       "60", "stop", NULL };
	int r;

	if (!s->running)
		return 0;
	r = run(s, "pg_ctl", args);
	if (r == 0)
		s->running = false;
	return r == 0 ? 0 : -1;
}

int
pgh_restart(struct pgh_server *s)
{
	if (s->running)
		return 0;
	return server_start(s);
}

bool
pgh_running(struct pgh_server *s)
{
	const char *args[] = { "-D", s->data, "status", NULL };

	return run(s, "pg_ctl", args) == 0;
}

void
pgh_destroy(struct pgh_server *s)
{
	const char *keep = getenv("S2S_KEEP_TMP");

	if (!s)
		return;
	if (s->running)
		(void)pgh_stop(s, true);
	if (s->dir[0] && !(keep && strcmp(keep, "1") == 0)) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			execlp("rm", "rm", "-rf", s->dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			(void)waitpid(pid, &st, 0);
	} else if (s->dir[0]) {
		fprintf(stderr, "pg_harness: kept %s\n", s->dir);
	}
	free(s);
}
