/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/error.h - the one error type of s2s-mqtt.
 *
 * Every action function in core/, the client library and the broker plugin
 * returns an enum s2s_err: S2S_OK (zero) on success, a negative code
 * otherwise.  Predicates return bool.  Codes are stable; new codes may be
 * added in later versions, so callers must treat unknown negative values as
 * failures and print them with s2s_strerror().
 *
 * Verification failures (bad tag, bad signature, failed decryption, wrong
 * bio-key) are all S2S_ERR_AUTH on purpose: callers learn that the input was
 * not authentic, never which part of the check failed.
 */
#ifndef S2S_ERROR_H
#define S2S_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum s2s_err {
	S2S_OK = 0,
	S2S_ERR_NOMEM = -1,       /* allocation failed */
	S2S_ERR_INVAL = -2,       /* invalid argument (a caller's mistake) */
	S2S_ERR_IO = -3,          /* file or socket I/O failed; see errno */
	S2S_ERR_CRYPTO = -4,      /* the crypto backend failed (not an attack) */
	S2S_ERR_AUTH = -5,        /* verification failed: input is not authentic */
	S2S_ERR_PERM = -6,        /* a secret file is readable by group or others */
	S2S_ERR_FORMAT = -7,      /* malformed input (bad magic, bad field) */
	S2S_ERR_TRUNCATED = -8,   /* input ends before its declared length */
	S2S_ERR_TOO_BIG = -9,     /* input exceeds a configured limit */
	S2S_ERR_VERSION = -10,    /* unsupported format version */
	S2S_ERR_PROFILE = -11,    /* unknown or mismatched security profile */
	S2S_ERR_REPLAY = -12,     /* sequence number already seen */
	S2S_ERR_GAP = -13,        /* sequence number ahead of the expected one */
	S2S_ERR_COVER = -14,      /* cover image cannot carry the payload */
	S2S_ERR_IMAGE = -15,      /* image cannot be decoded or is unsupported */
	S2S_ERR_NO_INK = -16,     /* signature image has no ink */
	S2S_ERR_CONFIG = -17,     /* configuration invalid */
	S2S_ERR_STATE = -18,      /* operation not valid in the current state */
	S2S_ERR_NOT_FOUND = -19,  /* no such device, pair, session or record */
	S2S_ERR_TIMEOUT = -20,    /* the peer or the server did not answer in time */
	S2S_ERR_REJECTED = -21,   /* the server or the peer refused the request */
	S2S_ERR_MQTT = -22,       /* the MQTT transport failed */
	S2S_ERR_STORE = -23,      /* the persistent store failed */
	S2S_ERR_DENIED = -24,     /* not allowed (enrolment, access control) */
	S2S_ERR_INCONSISTENT = -25, /* fields contradict each other */
	S2S_ERR_SESSION = -26,    /* unknown, expired or ended session */
};

/* Number of codes, for tables indexed by -err (statistics by reason). */
#define S2S_ERR_COUNT 27

/*
 * A short, static, human-readable English description of err, without a
 * trailing period.  Never NULL; unknown codes give "unknown error".
 * Thread-safe.
 */
const char *s2s_strerror(int err);

/*
 * A stable lower-case identifier for err, suitable for JSON keys and
 * metric names ("auth", "replay", "too_big", ...).  Never NULL; unknown
 * codes give "unknown".  Thread-safe.
 */
const char *s2s_errname(int err);

#ifdef __cplusplus
}
#endif

#endif /* S2S_ERROR_H */
