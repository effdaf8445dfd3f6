/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * error_export.c - s2s_strerror() and s2s_errname() are part of the client
 * library's API (s2s/client.h points device developers to them), but core/
 * is built with hidden visibility.  Compile core's error.c once more here
 * with default visibility, so the library exports exactly these two and
 * the linker takes them from this object instead of core's archive.
 */
#pragma GCC visibility push(default)
#include "../core/error.c"
#pragma GCC visibility pop
