/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s stego - hide and extract payloads in cover images, compare images,
 * run the steganalysis detectors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/error.h"
#include "s2s/image.h"
#include "s2s/secmem.h"
#include "s2s/stego.h"
#include "tool.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s stego embed --cover C.png --payload-hex H --key-hex K --out S.png\n"
		"                 [--level 0-9]   prints changes=N psnr=X\n"
		"       s2s stego extract --in S.png --key-hex K --bytes N\n"
		"                 prints the payload as lowercase hex\n"
		"       s2s stego psnr A.png B.png      prints mse=X psnr=Y\n"
		"       s2s stego analyze IMAGE...      chi-square, RS, SPA per image\n"
		"K is the 32-byte selection key (64 hex digits).  Any 8-bit gray\n"
		"PNG/PGM cover works; 128x128 carries 16 bytes.\n");
}

static bool
parse_key(const char *hex, uint8_t key[32])
{
	uint8_t *buf;
	size_t n;
	bool ok;

	if (!hex_decode(hex, &buf, &n))
		return false;
	ok = n == 32;
	if (ok)
		memcpy(key, buf, 32);
	s2s_memzero(buf, n);
	free(buf);
	return ok;
}

static int
stego_embed(int argc, char **argv)
{
	const char *cover = NULL, *phex = NULL, *khex = NULL, *out = NULL;
	struct s2s_image img = { 0 }, orig = { 0 };
	uint8_t key[32], *payload = NULL;
	size_t n = 0;
	uint64_t level = S2S_PNG_LEVEL_DEFAULT;
	unsigned changes;
	double mse, psnr;
	int status = 1;
	enum s2s_err err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			return tool_fail(EXIT_USAGE, "stego", "bad argument '%s'", a);
		if (!strcmp(a, "--cover"))
			cover = argv[++i];
		else if (!strcmp(a, "--payload-hex"))
			phex = argv[++i];
		else if (!strcmp(a, "--key-hex"))
			khex = argv[++i];
		else if (!strcmp(a, "--out"))
			out = argv[++i];
		else if (!strcmp(a, "--level") && parse_u64(argv[i + 1], 9, &level))
			i++;
		else
			return tool_fail(EXIT_USAGE, "stego", "bad argument '%s'", a);
	}
	if (!cover || !phex || !khex || !out)
		return tool_fail(EXIT_USAGE, "stego",
				 "embed needs --cover, --payload-hex, --key-hex and --out");
	if (!parse_key(khex, key))
		return tool_fail(EXIT_USAGE, "stego", "--key-hex must be 64 hex digits");
	if (!hex_decode(phex, &payload, &n) || !n) {
		S2S_WIPE(key);
		return tool_fail(EXIT_USAGE, "stego", "bad --payload-hex");
	}
	if ((err = s2s_image_read_file(cover, NULL, &img)) ||
	    (err = s2s_image_read_file(cover, NULL, &orig))) {
		tool_fail(1, "stego", "%s: %s", cover, s2s_strerror(err));
		goto out;
	}
	if ((err = s2s_stego_embed(&img, key, payload, n, &changes))) {
		tool_fail(1, "stego", "embed: %s (capacity %zu bytes)",
			  s2s_strerror(err),
			  s2s_stego_capacity(img.width, img.height));
		goto out;
	}
	if ((err = s2s_image_write_file(&img, out, (int)level))) {
		tool_fail(1, "stego", "%s: %s", out, s2s_strerror(err));
		goto out;
	}
	s2s_image_psnr(&orig, &img, &mse, &psnr);
	printf("changes=%u psnr=%.3f\n", changes, psnr);
	status = 0;
out:
	S2S_WIPE(key);
	s2s_memzero(payload, n);
	free(payload);
	s2s_image_free(&img);
	s2s_image_free(&orig);
	return status;
}

static int
stego_extract(int argc, char **argv)
{
	const char *in = NULL, *khex = NULL;
	struct s2s_image img = { 0 };
	uint8_t key[32], *payload = NULL;
	uint64_t n = 0;
	int status = 1;
	enum s2s_err err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			return tool_fail(EXIT_USAGE, "stego", "bad argument '%s'", a);
		if (!strcmp(a, "--in"))
			in = argv[++i];
		else if (!strcmp(a, "--key-hex"))
			khex = argv[++i];
		else if (!strcmp(a, "--bytes") && parse_u64(argv[i + 1], 1u << 20, &n))
			i++;
		else
			return tool_fail(EXIT_USAGE, "stego", "bad argument '%s'", a);
	}
	if (!in || !khex || !n)
		return tool_fail(EXIT_USAGE, "stego",
				 "extract needs --in, --key-hex and --bytes N (N > 0)");
	if (!parse_key(khex, key))
		return tool_fail(EXIT_USAGE, "stego", "--key-hex must be 64 hex digits");
	if ((err = s2s_image_read_file(in, NULL, &img))) {
		tool_fail(1, "stego", "%s: %s", in, s2s_strerror(err));
		goto out;
	}
	payload = malloc((size_t)n);
	if (!payload) {
		tool_fail(1, "stego", "%s", s2s_strerror(S2S_ERR_NOMEM));
		goto out;
	}
	if ((err = s2s_stego_extract(&img, key, payload, (size_t)n))) {
		tool_fail(1, "stego", "extract: %s (capacity %zu bytes)",
			  s2s_strerror(err),
			  s2s_stego_capacity(img.width, img.height));
		goto out;
	}
	hex_print(payload, (size_t)n);
	status = 0;
out:
	S2S_WIPE(key);
	if (payload)
		s2s_memzero(payload, (size_t)n);
	free(payload);
	s2s_image_free(&img);
	return status;
}

static int
stego_psnr(int argc, char **argv)
{
	struct s2s_image a = { 0 }, b = { 0 };
	double mse, psnr;
	int status = 1;
	enum s2s_err err;

	if (argc != 3)
		return tool_fail(EXIT_USAGE, "stego", "usage: s2s stego psnr A B");
	if ((err = s2s_image_read_file(argv[1], NULL, &a))) {
		tool_fail(1, "stego", "%s: %s", argv[1], s2s_strerror(err));
		goto out;
	}
	if ((err = s2s_image_read_file(argv[2], NULL, &b))) {
		tool_fail(1, "stego", "%s: %s", argv[2], s2s_strerror(err));
		goto out;
	}
	if (s2s_image_psnr(&a, &b, &mse, &psnr)) {
		tool_fail(1, "stego", "images differ in size (%ux%u vs %ux%u)",
			  (unsigned)a.width, (unsigned)a.height,
			  (unsigned)b.width, (unsigned)b.height);
		goto out;
	}
	if (isinf(psnr))
		printf("mse=%.6f psnr=inf\n", mse);
	else
		printf("mse=%.6f psnr=%.3f\n", mse, psnr);
	status = 0;
out:
	s2s_image_free(&a);
	s2s_image_free(&b);
	return status;
}

static int
stego_analyze(int argc, char **argv)
{
	if (argc < 2)
		return tool_fail(EXIT_USAGE, "stego",
				 "usage: s2s stego analyze IMAGE...");
	for (int i = 1; i < argc; i++) {
		struct s2s_image img;
		struct s2s_stego_analysis an;
		enum s2s_err err = s2s_image_read_file(argv[i], NULL, &img);

		if (!err) {
			err = s2s_stego_analyze(&img, &an);
			s2s_image_free(&img);
		}
		if (err) {
			fflush(stdout);
			return tool_fail(1, "stego", "%s: %s", argv[i],
					 s2s_strerror(err));
		}
		printf("%s chi2=%.3f chi2_p=%.4f rs=%.4f spa=%.4f\n", argv[i],
		       an.chi2, an.chi2_p, an.rs, an.spa);
	}
	return 0;
}

int
cmd_stego(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (tool_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "embed"))
		return stego_embed(argc - 1, argv + 1);
	if (!strcmp(argv[1], "extract"))
		return stego_extract(argc - 1, argv + 1);
	if (!strcmp(argv[1], "psnr"))
		return stego_psnr(argc - 1, argv + 1);
	if (!strcmp(argv[1], "analyze"))
		return stego_analyze(argc - 1, argv + 1);
	return tool_fail(EXIT_USAGE, "stego", "unknown subcommand '%s'", argv[1]);
}
