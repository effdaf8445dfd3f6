/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "s2s/secmem.h"

void
s2s_memzero(void *p, size_t n)
{
	if (n == 0)
		return;
	/* glibc's explicit_bzero is a call the optimiser must keep. */
	explicit_bzero(p, n);
}

bool
s2s_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}
