/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placeholder: implementation in progress. */
#include "s2s/crypto.h"

void
s2s_crypto_shutdown(void)
{
}

const char *
s2s_crypto_backend_version(void)
{
	return "wolfSSL";
}
