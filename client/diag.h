/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag.h - the diagnostic entry points of libs2s-client: NOT part of the
 * public API or ABI (not exported by libs2s-client.so, not installed).
 * They let `s2s demo` and the tests show that tampered, replayed and
 * forged packages are refused, by the CS and by the receiver.  Link the
 * internal static library (client_internal_dep in client/meson.build) to
 * use them.
 */
#ifndef S2S_CLIENT_DIAG_H
#define S2S_CLIENT_DIAG_H

#include "s2s/client.h"

/* s2s_client_send() flag: seal at the current chain position into
 * info->package but neither publish it nor advance the chain. */
#define S2S_SEND_SEAL_ONLY 4u

/*
 * Publish pkg as-is on this device's topic towards peer (no sealing, no
 * chain change), wait up to timeout_ms (< 0: the fetch timeout) for the
 * broker's answer: S2S_OK if the CS let it through, S2S_ERR_REJECTED if
 * it refused it.
 */
enum s2s_err s2s_client_publish_raw(struct s2s_client *c, const char *peer,
				    const uint8_t *pkg, size_t len,
				    int timeout_ms);

/*
 * Run pkg through this device's receive path as if it had arrived from
 * peer (the same checks; the reject callback reports a refusal).  Returns
 * the verdict: S2S_OK (delivered), or the error that refused it.
 */
enum s2s_err s2s_client_inject(struct s2s_client *c, const char *peer,
			       const uint8_t *pkg, size_t len);

#endif /* S2S_CLIENT_DIAG_H */
