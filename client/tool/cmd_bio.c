/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s bio - the bio-shared vector Rv from two signature images, and
 * synthetic signatures.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s2s/bio.h"
#include "s2s/error.h"
#include "s2s/image.h"
#include "s2s/secmem.h"
#include "tool.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s bio features A.png B.png --out rv.bin\n"
		"           Rv = Fx(A, B): 3060 big-endian uint16 (6120 bytes),\n"
		"           written with mode 0600 (Rv is secret); Fx(A,B) == Fx(B,A)\n"
		"       s2s bio siggen --user N --sample M --out sig.png\n"
		"           a synthetic handwritten signature (.pgm: PGM output)\n");
}

/* Write n bytes to a new file with mode 0600 (replacing an old one). */
static enum s2s_err
write_secret(const char *path, const uint8_t *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		return S2S_ERR_IO;
	while (done < n) {
		ssize_t k = write(fd, buf + done, n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			close(fd);
			return S2S_ERR_IO;
		}
		done += (size_t)k;
	}
	return close(fd) ? S2S_ERR_IO : S2S_OK;
}

static int
bio_features(int argc, char **argv)
{
	const char *in[2] = { NULL, NULL }, *out = NULL;
	struct s2s_image a = { 0 }, b = { 0 };
	uint16_t rv[S2S_RV_LEN];
	uint8_t bytes[2 * S2S_RV_LEN];
	int npos = 0, status = 1;
	enum s2s_err err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-' || npos == 2)
			return tool_fail(EXIT_USAGE, "bio", "bad argument '%s'",
					 argv[i]);
		else
			in[npos++] = argv[i];
	}
	if (npos != 2 || !out)
		return tool_fail(EXIT_USAGE, "bio",
				 "usage: s2s bio features A B --out FILE");
	if ((err = s2s_image_read_file(in[0], NULL, &a))) {
		tool_fail(1, "bio", "%s: %s", in[0], s2s_strerror(err));
		goto out;
	}
	if ((err = s2s_image_read_file(in[1], NULL, &b))) {
		tool_fail(1, "bio", "%s: %s", in[1], s2s_strerror(err));
		goto out;
	}
	if ((err = s2s_bio_features(&a, &b, rv))) {
		tool_fail(1, "bio", "features: %s", s2s_strerror(err));
		goto out;
	}
	s2s_bio_rv_serialize(rv, bytes);
	if ((err = write_secret(out, bytes, sizeof(bytes)))) {
		tool_fail(1, "bio", "%s: %s", out, strerror(errno));
		goto out;
	}
	printf("rv=%s values=%d bytes=%zu\n", out, S2S_RV_LEN, sizeof(bytes));
	status = 0;
out:
	S2S_WIPE(rv);
	S2S_WIPE(bytes);
	s2s_image_free(&a);
	s2s_image_free(&b);
	return status;
}

static int
bio_siggen(int argc, char **argv)
{
	uint64_t user = 0, sample = 0;
	bool have_user = false, have_sample = false;
	const char *out = NULL;
	struct s2s_image img;
	enum s2s_err err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--user") && i + 1 < argc) {
			if (!parse_u64(argv[++i], UINT32_MAX, &user))
				return tool_fail(EXIT_USAGE, "bio",
						 "bad --user '%s'", argv[i]);
			have_user = true;
		} else if (!strcmp(argv[i], "--sample") && i + 1 < argc) {
			if (!parse_u64(argv[++i], UINT32_MAX, &sample))
				return tool_fail(EXIT_USAGE, "bio",
						 "bad --sample '%s'", argv[i]);
			have_sample = true;
		} else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
			out = argv[++i];
		} else {
			return tool_fail(EXIT_USAGE, "bio", "bad argument '%s'",
					 argv[i]);
		}
	}
	if (!have_user || !have_sample || !out)
		return tool_fail(EXIT_USAGE, "bio",
				 "usage: s2s bio siggen --user N --sample M --out FILE");
	if ((err = s2s_bio_siggen((uint32_t)user, (uint32_t)sample, &img)))
		return tool_fail(1, "bio", "siggen: %s", s2s_strerror(err));
	err = s2s_image_write_file(&img, out, 9);
	if (!err)
		printf("out=%s width=%u height=%u\n", out, (unsigned)img.width,
		       (unsigned)img.height);
	s2s_image_free(&img);
	if (err)
		return tool_fail(1, "bio", "%s: %s", out, s2s_strerror(err));
	return 0;
}

int
cmd_bio(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (tool_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "features"))
		return bio_features(argc - 1, argv + 1);
	if (!strcmp(argv[1], "siggen"))
		return bio_siggen(argc - 1, argv + 1);
	return tool_fail(EXIT_USAGE, "bio", "unknown subcommand '%s'", argv[1]);
}
