/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * covers.c - the cover images a device hides tags in: every 8-bit gray
 * PNG/PGM of a folder (sorted by name, so two runs use the same order),
 * or one embedded synthetic cover when no folder is available.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client_private.h"

#define COVERS_MAX 256

#ifndef S2S_COVERS_DIR
#define S2S_COVERS_DIR ""
#endif
#ifndef S2S_COVERS_INSTALL_DIR
#define S2S_COVERS_INSTALL_DIR ""
#endif

static void
seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/*
 * A 128x128 texture: two slow waves and a fine deterministic grain, mid
 * grey, no clipping.  Its only job is to carry 16 payload bytes when no
 * photo is at hand; stego on it is as detectable as on any public cover.
 */
enum s2s_err
covers__builtin(struct s2s_image *out)
{
	enum s2s_err e = s2s_image_alloc(out, 128, 128, 128);
	uint32_t x = 0x2545f491u;

	if (e)
		return e;
	for (uint32_t r = 0; r < 128; r++) {
		for (uint32_t col = 0; col < 128; col++) {
			int v = 128;
			int a = (int)((r * 3 + col * 2) % 64);
			int b = (int)((r + 5 * col) % 48);

			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			v += (a < 32 ? a : 64 - a) - 16;
			v += (b < 24 ? b : 48 - b) - 12;
			v += (int)(x % 17) - 8;
			out->pixels[r * 128 + col] = (uint8_t)v;
		}
	}
	return S2S_OK;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_image_name(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' && l > 4 &&
	       (!strcmp(n + l - 4, ".png") || !strcmp(n + l - 4, ".pgm"));
}

static enum s2s_err
load_dir(const char *dir, struct s2s_image **out, size_t *n, char *err,
	 size_t err_len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[COVERS_MAX];
	size_t nn = 0;
	struct s2s_image *v = NULL;
	enum s2s_err e = S2S_OK;

	if (!d) {
		seterr(err, err_len, "covers: cannot open folder %s: %s", dir,
		       strerror(errno));
		return S2S_ERR_IO;
	}
	while ((de = readdir(d)) && nn < COVERS_MAX) {
		if (!is_image_name(de->d_name))
			continue;
		names[nn] = strdup(de->d_name);
		if (!names[nn]) {
			e = S2S_ERR_NOMEM;
			break;
		}
		nn++;
	}
	closedir(d);
	if (!e && !nn) {
		seterr(err, err_len, "covers: no .png or .pgm file in %s", dir);
		e = S2S_ERR_IMAGE;
	}
	if (!e) {
		qsort(names, nn, sizeof(names[0]), cmp_names);
		v = calloc(nn, sizeof(*v));
		if (!v)
			e = S2S_ERR_NOMEM;
	}
	for (size_t i = 0; !e && i < nn; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		e = s2s_image_read_file(path, NULL, &v[i]);
		if (e) {
			seterr(err, err_len, "covers: %s: %s", path,
			       s2s_strerror(e));
			break;
		}
		if (v[i].width < 32 || v[i].height < 32 ||
		    v[i].width % 2 || v[i].height % 2) {
			seterr(err, err_len,
			       "covers: %s: %ux%u; a cover needs even sides of "
			       "at least 32 pixels", path, v[i].width,
			       v[i].height);
			e = S2S_ERR_COVER;
		}
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	if (e) {
		covers__free(v, v ? nn : 0);
		return e;
	}
	*out = v;
	*n = nn;
	return S2S_OK;
}

enum s2s_err
covers__load(const char *spec, struct s2s_image **out, size_t *n, char *err,
	     size_t err_len)
{
	struct stat sb;
	enum s2s_err e;

	*out = NULL;
	*n = 0;
	if (!spec) {
		/* The default: the project's covers if installed/built. */
		const char *env = getenv("S2S_COVERS_DIR");

		/* The build tree's copy first, then the installed one. */
		static const char *const dirs[] = {
			S2S_COVERS_DIR, S2S_COVERS_INSTALL_DIR,
		};

		spec = "builtin";
		if (env && *env) {
			spec = env;
		} else {
			for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
				if (*dirs[i] && !stat(dirs[i], &sb) &&
				    S_ISDIR(sb.st_mode)) {
					spec = dirs[i];
					break;
				}
			}
		}
	}
	if (strcmp(spec, "builtin"))
		return load_dir(spec, out, n, err, err_len);
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return S2S_ERR_NOMEM;
	e = covers__builtin(*out);
	if (e) {
		free(*out);
		*out = NULL;
		return e;
	}
	*n = 1;
	return S2S_OK;
}

void
covers__free(struct s2s_image *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		s2s_image_free(&v[i]);
	free(v);
}
