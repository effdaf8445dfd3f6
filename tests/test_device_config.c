/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_device_config.c - the device configuration file (config/
 * device_config.c): valid files, defaults, and every kind of mistake,
 * each reported with the key it concerns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "device_config.h"

static const char minimal[] =
	"{\"id\":\"alice\",\"key\":\"alice.key\",\"cs_key\":\"cs.pub\","
	"\"state_dir\":\"st\"}";

static enum s2s_err
parse(const char *json, struct s2s_device_config *c, char *err, size_t n)
{
	return s2s_device_config_parse(json, strlen(json), "/etc/s2s", c, err,
				       n);
}

START_TEST(test_minimal_defaults)
{
	struct s2s_device_config c;
	char err[256] = "";

	ck_assert_int_eq(parse(minimal, &c, err, sizeof(err)), S2S_OK);
	ck_assert_str_eq(c.id, "alice");
	ck_assert_str_eq(c.broker, "tcp://127.0.0.1:1883");
	/* Relative paths are relative to the file's folder. */
	ck_assert_str_eq(c.key_file, "/etc/s2s/alice.key");
	ck_assert_str_eq(c.cs_key_file, "/etc/s2s/cs.pub");
	ck_assert_str_eq(c.state_dir, "/etc/s2s/st");
	ck_assert_ptr_null(c.signature_file);
	ck_assert_ptr_null(c.covers);
	ck_assert_str_eq(c.topic_root, "s2s");
	ck_assert_int_eq(c.profile, 0);
	ck_assert_int_eq(c.png_level, 0);
	ck_assert(c.state_fsync);
	ck_assert(c.fetch_on_connect);
	ck_assert(c.tls_verify);
	ck_assert_int_eq(c.timeout_pair, 30000);
	s2s_device_config_free(&c);
	s2s_device_config_free(&c);     /* idempotent */
}
END_TEST

/* A cluster: several broker URIs (failover); a string still works. */
START_TEST(test_brokers)
{
	static const char many[] =
		"{\"id\":\"alice\",\"key\":\"alice.key\","
		"\"cs_key\":\"cs.pub\",\"state_dir\":\"st\","
		"\"broker\":[\"tcp://127.0.0.1:1883\",\"tcp://h2:1884\","
		"\"ssl://h3:8883\"]}";
	static const char bad[] =
		"{\"id\":\"alice\",\"key\":\"alice.key\","
		"\"cs_key\":\"cs.pub\",\"state_dir\":\"st\","
		"\"broker\":[\"tcp://a:1\",\"http://b\"]}";
	static const char empty[] =
		"{\"id\":\"alice\",\"key\":\"alice.key\","
		"\"cs_key\":\"cs.pub\",\"state_dir\":\"st\","
		"\"broker\":[]}";
	struct s2s_device_config c;
	char err[256] = "";

	ck_assert_int_eq(parse(many, &c, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(c.nbrokers, 3);
	ck_assert_str_eq(c.broker, "tcp://127.0.0.1:1883");
	ck_assert_str_eq(c.brokers[1], "tcp://h2:1884");
	ck_assert_str_eq(c.brokers[2], "ssl://h3:8883");
	s2s_device_config_free(&c);
	ck_assert_int_eq(parse(minimal, &c, err, sizeof(err)), S2S_OK);
	ck_assert_uint_eq(c.nbrokers, 1);
	ck_assert_str_eq(c.brokers[0], c.broker);
	s2s_device_config_free(&c);
	ck_assert_int_eq(parse(bad, &c, err, sizeof(err)), S2S_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "http://b"));
	s2s_device_config_free(&c);
	ck_assert_int_eq(parse(empty, &c, err, sizeof(err)), S2S_ERR_CONFIG);
	s2s_device_config_free(&c);
}
END_TEST

START_TEST(test_full)
{
	const char *j =
		"{\"broker\":\"ssl://cs.example:8883\",\"id\":\"dev-1.a_b\","
		"\"key\":\"/k/dev.key\",\"cs_key\":\"cs.pub\","
		"\"signature\":\"sig.png\",\"state_dir\":\"/var/s2s\","
		"\"covers\":\"builtin\",\"profile\":\"paper\",\"png_level\":9,"
		"\"topic_root\":\"plant/s2s\",\"enrolment_code\":\"sekret-123\","
		"\"keepalive\":60,\"session_expiry\":0,\"token_ttl\":120,"
		"\"state_fsync\":false,\"fetch_on_connect\":false,"
		"\"tls\":{\"ca_file\":\"ca.pem\",\"cert_file\":\"c.pem\","
		"\"key_file\":\"c.key\",\"verify\":false},"
		"\"timeouts\":{\"connect\":2.5,\"register\":1,\"pair\":3,"
		"\"session\":4,\"fetch\":0.25}}";
	struct s2s_device_config c;
	char err[256] = "";

	ck_assert_msg(parse(j, &c, err, sizeof(err)) == S2S_OK, "%s", err);
	ck_assert_str_eq(c.broker, "ssl://cs.example:8883");
	ck_assert_str_eq(c.key_file, "/k/dev.key");
	ck_assert_str_eq(c.signature_file, "/etc/s2s/sig.png");
	ck_assert_str_eq(c.covers, "builtin");
	ck_assert_int_eq(c.profile, 1);
	ck_assert_int_eq(c.png_level, 9);
	ck_assert_str_eq(c.topic_root, "plant/s2s");
	ck_assert_str_eq(c.enrolment_code, "sekret-123");
	ck_assert_int_eq(c.keepalive, 60);
	ck_assert_int_eq(c.session_expiry, 0);
	ck_assert_int_eq(c.token_ttl, 120);
	ck_assert(!c.state_fsync);
	ck_assert(!c.fetch_on_connect);
	ck_assert_str_eq(c.tls_ca_file, "/etc/s2s/ca.pem");
	ck_assert_str_eq(c.tls_cert_file, "/etc/s2s/c.pem");
	ck_assert(!c.tls_verify);
	ck_assert_int_eq(c.timeout_connect, 2500);
	ck_assert_int_eq(c.timeout_fetch, 250);
	s2s_device_config_free(&c);
}
END_TEST

/* Each bad file and the key its message must name. */
static const struct {
	const char *json;
	const char *needle;
} bad[] = {
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"colour\":\"blue\"}", "colour: unknown key" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"tls\":{\"cafile\":\"x\"}}", "tls.cafile: unknown key" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"timeouts\":{\"pairing\":3}}", "timeouts.pairing: unknown key" },
	{ "{\"id\":7,\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\"}",
	  "id: expected a string" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"png_level\":\"9\"}", "png_level: expected an integer" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"png_level\":1.5}", "png_level: expected an integer" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"png_level\":10}", "png_level: 10 is out of range" },
	/* Found by fuzzing: a huge number must not be cast before the check. */
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"png_level\":1e300}", "png_level: 1e+300 is out of range" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"keepalive\":-1e300}", "keepalive: -1e+300 is out of range" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"state_fsync\":1}", "state_fsync: expected true or false" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"timeouts\":{\"pair\":\"3\"}}", "timeouts.pair: expected a number" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"timeouts\":{\"pair\":0}}", "timeouts.pair: must be more than 0" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"tls\":[]}", "tls: expected an object" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"profile\":\"fast\"}", "profile: 'fast' is not one of" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"broker\":\"127.0.0.1:1883\"}", "broker: '127.0.0.1:1883' is not" },
	{ "{\"id\":\"a/b\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\"}",
	  "id: 'a/b' is not a device id" },
	{ "{\"id\":\"\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\"}",
	  "id: must not be empty" },
	{ "{\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\"}",
	  "id: missing (required)" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\"}",
	  "state_dir: missing (required)" },
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"id\":\"b\"}", "id: duplicate key" },
	{ "{\"ID\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\"}",
	  "ID: unknown key" },   /* keys are case-sensitive */
	{ "{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	  "\"tls\":{\"cert_file\":\"c.pem\"}}",
	  "tls: cert_file and key_file go together" },
	{ "{\"id\":\"a\",", "not valid JSON" },
	{ "[1,2]", "expected a JSON object" },
};

START_TEST(test_bad)
{
	struct s2s_device_config c;
	char err[256] = "";

	ck_assert_int_eq(parse(bad[_i].json, &c, err, sizeof(err)),
			 S2S_ERR_CONFIG);
	ck_assert_msg(strstr(err, bad[_i].needle), "case %d: '%s' lacks '%s'",
		      _i, err, bad[_i].needle);
	ck_assert_ptr_null(c.id);       /* nothing left behind */
	s2s_device_config_free(&c);
}
END_TEST

START_TEST(test_file)
{
	char dir[] = "/tmp/s2s-cfg-XXXXXX", path[128], err[512] = "";
	struct s2s_device_config c;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/device.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(minimal, f);
	fclose(f);
	ck_assert_int_eq(s2s_device_config_load(path, &c, err, sizeof(err)),
			 S2S_OK);
	/* Relative to the file's folder. */
	ck_assert_int_eq(strncmp(c.key_file, dir, strlen(dir)), 0);
	s2s_device_config_free(&c);

	/* A mistake names the file and the key. */
	f = fopen(path, "w");
	fputs("{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	      "\"keepalive\":true}", f);
	fclose(f);
	ck_assert_int_eq(s2s_device_config_load(path, &c, err, sizeof(err)),
			 S2S_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "keepalive: expected an integer"));
	s2s_device_config_free(&c);
	unlink(path);

	/* Missing file. */
	ck_assert_int_eq(s2s_device_config_load(path, &c, err, sizeof(err)),
			 S2S_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err, "cannot read"));
	ck_assert_ptr_nonnull(strstr(err, path));
	s2s_device_config_free(&c);
	rmdir(dir);
}
END_TEST

/* The installed, commented example is a valid configuration. */
START_TEST(test_example)
{
	char path[4096], err[512] = "";
	struct s2s_device_config c;

	snprintf(path, sizeof(path), "%s",
		 tests_src_path("config/s2s-device.json.example"));
	ck_assert_msg(s2s_device_config_load(path, &c, err, sizeof(err)) ==
		      S2S_OK, "%s", err);
	ck_assert_str_eq(c.id, "alice");
	ck_assert_int_eq(c.timeout_pair, 30000);
	s2s_device_config_free(&c);
}
END_TEST

/* Comments are blanked outside strings only; offsets stay. */
START_TEST(test_comments)
{
	char dir[] = "/tmp/s2s-cfg-XXXXXX", path[128], err[512] = "";
	struct s2s_device_config c;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/device.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("// a device\n{ /* the id */ \"id\": \"a\", \"key\": \"k//x\",\n"
	      "  \"cs_key\": \"c/*y*/\", // pinned\n \"state_dir\": \"s\" }\n",
	      f);
	fclose(f);
	ck_assert_msg(s2s_device_config_load(path, &c, err, sizeof(err)) ==
		      S2S_OK, "%s", err);
	ck_assert_ptr_nonnull(strstr(c.key_file, "k//x"));
	ck_assert_ptr_nonnull(strstr(c.cs_key_file, "c/*y*/"));
	s2s_device_config_free(&c);
	/* A missing tls.ca_file is refused now, naming key and path. */
	f = fopen(path, "w");
	fputs("{\"id\":\"a\",\"key\":\"k\",\"cs_key\":\"c\",\"state_dir\":\"s\","
	      "\"tls\":{\"ca_file\":\"nope.pem\"}}", f);
	fclose(f);
	ck_assert_int_eq(s2s_device_config_load(path, &c, err, sizeof(err)),
			 S2S_ERR_CONFIG);
	ck_assert_msg(strstr(err, "tls.ca_file") && strstr(err, "nope.pem"),
		      "%s", err);
	s2s_device_config_free(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("device_config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_brokers);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_file);
	tcase_add_test(tc, test_example);
	tcase_add_test(tc, test_comments);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
