/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/client.h - libs2s-client, the device side of s2s-mqtt.
 *
 * A device application links this library to talk to another device
 * through an MQTT broker that runs the s2s plugin (the cloud server, CS),
 * following Al Sibahee et al., "Lightweight Secure Message Delivery for
 * E2E S2S Communication in the IoT-Cloud System" (IEEE Access 2020):
 *
 *   1. register once with the CS (device key + handwritten-signature
 *      image),                                      s2s_client_register()
 *   2. pair once with each peer,                    s2s_client_pair()
 *   3. negotiate a session with a peer,             s2s_client_session()
 *   4. send and receive messages, each authenticated by a tag hidden in a
 *      stego image and checked by the CS and by the receiver.
 *                                                   s2s_client_send(),
 *                                                   s2s_client_on_message()
 *
 * Everything in this header is the API; nothing else is.  Error codes are
 * the project's one enum s2s_err (s2s/error.h), print them with
 * s2s_strerror().  New codes may appear in later versions.
 *
 * Configuration
 * -------------
 * A client is created from one JSON file read once (unknown keys and wrong
 * types are errors naming the key; C and C++ style comments are allowed;
 * a commented example is installed as
 * share/doc/s2s-mqtt/s2s-device.json.example).  Example:
 *
 *   {
 *     "broker": "tcp://127.0.0.1:1883",
 *     "id": "alice",
 *     "key": "alice.key",              device private key (mode 0600)
 *     "cs_key": "cs.pub",              the pinned CS public key
 *     "signature": "alice-sig.png",    handwritten signature (to register)
 *     "state_dir": "alice-state",      created 0700
 *     "covers": "covers/",             8-bit gray PNG covers, or "builtin"
 *     "profile": "hardened",           or "paper", or "default" (the CS's)
 *     "png_level": 0,                  zlib level of stego images, 0..9
 *     "tls": { "ca_file": "ca.pem", "cert_file": "c.pem",
 *              "key_file": "c.key", "verify": true },
 *     "timeouts": { "connect": 10, "register": 15, "pair": 30,
 *                   "session": 30, "fetch": 10 }
 *   }
 *
 * Further keys: "topic_root" ("s2s"), "enrolment_code", "keepalive" (30 s),
 * "session_expiry" (86400 s, how long the broker keeps the MQTT session of
 * an offline device), "token_ttl" (120 s), "state_fsync" (true),
 * "fetch_on_connect" (true).  Relative paths are relative to the file.
 *
 * Several brokers (a cluster, docs/CLUSTER.md): "broker" may be an array
 * of 1..8 URIs.  Each connect tries them in order from the one last used;
 * after a lost connection it starts at once with the next one, and the
 * session goes on there (a package the lost broker never answered is
 * sent again first).
 *
 * Timeouts
 * --------
 * Every call with a timeout_ms reads it the same way:
 *   > 0   wait at most that many milliseconds (S2S_ERR_TIMEOUT after);
 *   0     do not wait: start what the call does (send the request,
 *         start connecting) and return S2S_OK if the result is already
 *         there, S2S_ERR_TIMEOUT otherwise; the event callback tells the
 *         end (S2S_EVENT_CONNECTED, _REGISTERED, _PAIRED, _SESSION_UP);
 *   < 0   S2S_TIMEOUT_DEFAULT: the configured timeout of that operation
 *         ("timeouts" in the configuration); calls without one
 *         (s2s_client_receive, s2s_client_wait_session,
 *         s2s_client_flush) wait for ever.
 * A blocking call made from a callback fails at once with S2S_ERR_STATE
 * (s2s_client_last_reason() says so) instead of stalling the thread
 * that runs the callbacks; with timeout_ms == 0 it is allowed.
 *
 * Memory
 * ------
 * What the library allocates for the caller (s2s_sent_info.package, the
 * reply of s2s_admin_call) is freed with s2s_free(); messages taken with
 * s2s_client_receive() with s2s_received_free().
 *
 * One process per configuration
 * -----------------------------
 * s2s_client_create() locks state_dir (flock on <state_dir>/lock) for the
 * life of the client: a second client of the same configuration, in this
 * process or another, gets S2S_ERR_STATE and a message naming the process
 * that holds it.  Verified messages still queued for s2s_client_receive()
 * when the client is destroyed are kept in <state_dir>/unread (0600) and
 * queued again by the next s2s_client_create() (or handed to the message
 * callback once one is set), so no message is lost between two runs.
 *
 * Threads
 * -------
 * Every function may be called from any application thread; a client is
 * internally locked.  Network events are handled on a thread of the MQTT
 * library (Eclipse Paho, "the network thread"), timeouts, reconnects and
 * self-recovery on the library's own housekeeping thread.  Callbacks run
 * on one of those two threads, or on an application thread while it is
 * inside a call of this header (the library makes pending callbacks
 * before returning); they never run two at a time for one client, and
 * messages of one peer arrive in sequence order.  A callback may run
 * before the call that caused it returns.  A callback must return
 * quickly and must not wait: a blocking function of this header called
 * from a callback fails at once with S2S_ERR_STATE (it would wait for
 * replies the thread running the callback delivers); with timeout_ms 0,
 * s2s_client_send() without S2S_SEND_WAIT_ACK, the getters and
 * s2s_strerror() are fine.  s2s_client_destroy() must not be called from
 * a callback, s2s_client_forget_peer() not while another thread waits on
 * that peer.
 *
 * State
 * -----
 * The registration, pairs (with Shk), the current session of each pair
 * (both key chains) and the sequence numbers are kept in state_dir, written
 * atomically (file mode 0600) after every change: a package leaves only
 * once its send chain position is on disk (a record of the send journal,
 * state_dir/txlog, fsynced when "state_fsync"); a receive chain moving
 * forward reaches the disk within 20 ms (if the process dies first, the
 * next run fetches those packages from the CS again: a message may be
 * delivered twice, none is lost).  A device restarted with
 * its state carries on where it stopped; a device that lost its state
 * registers again (idempotent with the same key), pairs again and
 * negotiates a new session on its own when the peer's messages show it the
 * old one is gone.
 *
 * Secrets (keys, chain keys, Shk) never leave the library; they are wiped
 * when no longer needed.
 */
#ifndef S2S_CLIENT_H
#define S2S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* timeout_ms: the configured timeout (see "Timeouts" above). */
#define S2S_TIMEOUT_DEFAULT (-1)

#if defined(S2S_BUILDING_CLIENT) && (defined(__GNUC__) || defined(__clang__))
#define S2S_EXPORT __attribute__((visibility("default")))
#else
#define S2S_EXPORT
#endif

/* The library version, "MAJOR.MINOR.MICRO". */
S2S_EXPORT const char *s2s_client_version(void);

/* A device: opaque; create with s2s_client_create(). */
struct s2s_client;

/*
 * Create a client from the configuration file config_path: reads the
 * configuration, the device key, the pinned CS key, the covers and the
 * saved state.  Does not connect.  On failure *out is NULL and err (may be
 * NULL) receives one line saying what is wrong: S2S_ERR_IO / S2S_ERR_CONFIG
 * (configuration, naming the key), S2S_ERR_PERM (key file readable by
 * others), S2S_ERR_FORMAT (a key file or the state file is corrupt; the
 * message says which and what to do), S2S_ERR_IMAGE, S2S_ERR_NOMEM.
 */
S2S_EXPORT enum s2s_err s2s_client_create(const char *config_path,
					  struct s2s_client **out,
					  char *err, size_t err_len);

/*
 * Disconnect (waiting up to 2 s for messages still in flight), wipe every
 * secret and free c.  NULL is a no-op.  Not from a callback.
 */
S2S_EXPORT void s2s_client_destroy(struct s2s_client *c);

/* The device id (valid until destroy). */
S2S_EXPORT const char *s2s_client_id(const struct s2s_client *c);

/* Free what the library allocated for the caller (see "Memory").  NULL is
 * a no-op. */
S2S_EXPORT void s2s_free(void *p);

/* ---- Callbacks ----------------------------------------------------------
 * Set them before s2s_client_connect(); a callback set to NULL is off.
 * The pointers passed to a callback are valid only during the call. */

/* What the library knows about a verified message. */
struct s2s_message_info {
	const char *sender;         /* the peer's device id */
	const char *receiver;       /* this device */
	uint64_t session;           /* T */
	uint64_t seq;               /* per direction, first message 1 */
	int profile;                /* 1 paper, 2 hardened */
	bool fetched;               /* recovered from the CS store */
	uint32_t verify_us;         /* time spent parsing and verifying */
};

/*
 * A verified message: msg/len is the plaintext the peer sent.  Called as
 * described under Threads, in sequence order per peer, exactly once per
 * sequence number.  Without a message callback, messages are queued for
 * s2s_client_receive().
 */
typedef void s2s_message_cb(void *ud, const struct s2s_message_info *info,
			    const uint8_t *msg, size_t len);
S2S_EXPORT void s2s_client_on_message(struct s2s_client *c,
				      s2s_message_cb *cb, void *ud);

/* A package that was refused, and why. */
struct s2s_reject_info {
	const char *peer;           /* the other device ("" if unknown) */
	uint64_t session;           /* T of the package (0 if unknown) */
	uint64_t seq;               /* its sequence number (0 if unknown) */
	int err;                    /* enum s2s_err: S2S_ERR_AUTH (tag),
				     * S2S_ERR_REPLAY (duplicate),
				     * S2S_ERR_GAP (lost, not recoverable),
				     * S2S_ERR_SESSION (old or unknown
				     * session), S2S_ERR_FORMAT, ... */
	bool outgoing;              /* true: a package this device sent was
				     * refused by the CS (err is then
				     * S2S_ERR_REJECTED) */
	const char *reason;         /* human-readable detail */
};

/*
 * Every refused package: received ones that fail a check (nothing is
 * delivered for them, the key chain is untouched) and sent ones the CS
 * refused.  Called as described under Threads.
 */
typedef void s2s_reject_cb(void *ud, const struct s2s_reject_info *info);
S2S_EXPORT void s2s_client_on_reject(struct s2s_client *c, s2s_reject_cb *cb,
				     void *ud);

enum s2s_event {
	S2S_EVENT_CONNECTED = 1,    /* (re)connected to the broker */
	S2S_EVENT_DISCONNECTED,     /* connection lost; retrying */
	S2S_EVENT_PAIRED,           /* a pair is complete (peer set) */
	S2S_EVENT_SESSION_UP,       /* a session with peer is established */
	S2S_EVENT_SESSION_DOWN,     /* the session with peer ended */
	S2S_EVENT_RECOVERING,       /* negotiating a new session on its own
				     * (lost state, unrecoverable gap) */
	S2S_EVENT_REGISTERED,       /* the CS answered REGISTERED */
	S2S_EVENT_DENIED,           /* the broker refused this device's
				     * token: revoked (or its key replaced).
				     * On a reconnect the library stops
				     * reconnecting and blocking calls fail
				     * with S2S_ERR_DENIED until
				     * s2s_client_connect() succeeds; in
				     * s2s_client_connect() it connects
				     * without a token (to register again)
				     * when the broker lets it. */
};

/*
 * State changes.  peer is NULL for (DIS)CONNECTED and REGISTERED; detail
 * is a short text (may be NULL).  Called as described under Threads.
 */
typedef void s2s_event_cb(void *ud, enum s2s_event ev, const char *peer,
			  const char *detail);
S2S_EXPORT void s2s_client_on_event(struct s2s_client *c, s2s_event_cb *cb,
				    void *ud);

/* The broker's answer to one package sent with s2s_client_send(). */
struct s2s_sent_result {
	const char *peer;
	uint64_t session;           /* T */
	uint64_t seq;
	int err;                    /* S2S_OK: the CS accepted it and the
				     * broker routed it (PUBACK);
				     * S2S_ERR_REJECTED: the CS refused it
				     * (the reject callback says why);
				     * S2S_ERR_MQTT: the transport failed */
	int mqtt_reason;            /* the PUBACK reason code */
};

/*
 * A per-message completion callback, like Paho's onSuccess or mosquitto's
 * on_publish: called once for every package of s2s_client_send() when the
 * broker answers it, in the order the answers arrive (called as described
 * under Threads).  A package still unanswered when the client is
 * destroyed gets no call (it stays in the MQTT session and is delivered
 * by the next run).
 */
typedef void s2s_sent_cb(void *ud, const struct s2s_sent_result *r);
S2S_EXPORT void s2s_client_on_sent(struct s2s_client *c, s2s_sent_cb *cb,
				   void *ud);

enum s2s_log_level {
	S2S_LOG_ERROR = 1,          /* something failed (and why) */
	S2S_LOG_INFO,               /* progress: connected, waiting for the
				     * peer, session up, reconnecting */
	S2S_LOG_DEBUG,              /* every control message and package */
};

/*
 * A log callback: one line of text (no newline) per thing the library
 * does or waits for, for applications that want to show progress
 * (s2s listen --verbose).  Lines above max_level are not made.  Called as
 * described under Threads, or on the thread of a blocking call (for its
 * "waiting for ..." lines).  NULL: off (the default).
 */
typedef void s2s_log_cb(void *ud, enum s2s_log_level level,
			const char *line);
S2S_EXPORT void s2s_client_on_log(struct s2s_client *c, s2s_log_cb *cb,
				  void *ud, enum s2s_log_level max_level);

/* ---- Connection ---------------------------------------------------------- */

/*
 * Connect to the broker (MQTT 5, persistent session, automatic reconnect
 * afterwards) with username = device id and password = a fresh connect
 * token signed by the device key (connect protocol v2, docs/PROTOCOL.md:
 * single-use and bound to the client id, so a new one for every connect
 * and reconnect).  A device the CS does not know yet, or that registers a
 * new key or comes back after revocation, connects with an enrolment login
 * proving "enrolment_code" (none under open enrolment) and may only
 * register; s2s_client_register() then reconnects with a token.
 * (Paho notices a new connection only at its next 1 s poll when other
 * connections of the process are open, so a reconnect costs 1-2 s.)
 * timeout_ms as under Timeouts (0: connect in the background).
 * S2S_ERR_TIMEOUT, S2S_ERR_DENIED (the broker refused the credentials:
 * revoked device?), S2S_ERR_MQTT; s2s_client_last_reason() then names the
 * URI and the cause.  Connecting a connected
 * client is a no-op.  The blocking operations below connect on their own.
 */
S2S_EXPORT enum s2s_err s2s_client_connect(struct s2s_client *c,
					   int timeout_ms);

/* true while connected to the broker. */
S2S_EXPORT bool s2s_client_connected(const struct s2s_client *c);

/*
 * Disconnect, waiting up to timeout_ms for messages in flight (they stay
 * in the MQTT session and Paho's store otherwise; < 0: 2 s, as destroy
 * does).  The client can connect again later.
 */
S2S_EXPORT void s2s_client_close(struct s2s_client *c, int timeout_ms);

/* ---- Phase 1: registration and pairing ---------------------------------- */

/*
 * Register this device with the CS: sends its public key and, encrypted to
 * the pinned CS key, its id, the enrolment code and the signature image of
 * the configuration; waits for REGISTERED and checks that the CS answered
 * with the pinned key.  The signature file is read and checked (a PNG or
 * PGM image) before anything is sent: S2S_ERR_IO / S2S_ERR_IMAGE, with
 * the path in s2s_client_last_reason().  Idempotent.  timeout_ms as under Timeouts.  When the CS refuses, its reason code (e.g.
 * S2S_ERR_DENIED: enrolment closed or another key; S2S_ERR_NO_INK; the
 * text via s2s_client_last_reason()); S2S_ERR_TIMEOUT; S2S_ERR_AUTH (the
 * CS answered with a key that is not the pinned one); S2S_ERR_CONFIG (no
 * signature configured).
 */
S2S_EXPORT enum s2s_err s2s_client_register(struct s2s_client *c,
					    int timeout_ms);

/*
 * Use code as the enrolment code of the next s2s_client_register()
 * instead of the configuration's "enrolment_code" (copied; wiped at
 * destroy).  NULL: none.
 */
S2S_EXPORT enum s2s_err s2s_client_set_enrolment_code(struct s2s_client *c,
						      const char *code);

/* true once this device has been registered (as far as it remembers). */
S2S_EXPORT bool s2s_client_registered(const struct s2s_client *c);

/*
 * Ask the CS to pair with peer (profile: 0 the configured one, 1 paper,
 * 2 hardened) and wait until the pair is complete, which needs the peer to
 * ask too.  timeout_ms == 0: send the request and return at once
 * (S2S_OK if already paired, S2S_ERR_TIMEOUT otherwise; completion is
 * then told by S2S_EVENT_PAIRED); < 0: the configured timeout.
 * Idempotent.  S2S_ERR_TIMEOUT (still pending; it completes later),
 * S2S_ERR_REJECTED, S2S_ERR_PROFILE.
 */
S2S_EXPORT enum s2s_err s2s_client_pair(struct s2s_client *c,
					const char *peer, int profile,
					int timeout_ms);

/* true if the pair with peer is complete. */
S2S_EXPORT bool s2s_client_paired(const struct s2s_client *c,
				  const char *peer);

/* ---- Phase 2: session negotiation --------------------------------------- */

/*
 * Negotiate a new session with peer as the initiator (SDS) through the
 * five steps of the scheme, checking every answer, and wait until it is
 * established (the peer's library answers on its own).  A new session
 * ends the pair's previous one.  timeout_ms < 0: the configured timeout.
 * S2S_ERR_STATE (not paired), S2S_ERR_TIMEOUT, S2S_ERR_SESSION (the CS
 * ended it), the CS's reason code when it refused (text via
 * s2s_client_last_reason()), S2S_ERR_AUTH (an answer failed its check).
 */
S2S_EXPORT enum s2s_err s2s_client_session(struct s2s_client *c,
					   const char *peer, int timeout_ms);

/*
 * Make sure a session with peer exists: S2S_OK at once if one is
 * established, otherwise pair (if needed) and negotiate.  For simple apps.
 */
S2S_EXPORT enum s2s_err s2s_client_ensure_session(struct s2s_client *c,
						  const char *peer,
						  int timeout_ms);

/*
 * Wait until a session with peer is established, whichever device asked
 * for it.  S2S_ERR_TIMEOUT.
 */
S2S_EXPORT enum s2s_err s2s_client_wait_session(struct s2s_client *c,
						const char *peer,
						int timeout_ms);

/* true if a session with peer is established; *session gets T (may be NULL). */
S2S_EXPORT bool s2s_client_has_session(const struct s2s_client *c,
				       const char *peer, uint64_t *session);

/* Ask the CS to end the session with peer (no waiting). */
S2S_EXPORT enum s2s_err s2s_client_end_session(struct s2s_client *c,
					       const char *peer);

/* ---- Phase 3: messages ------------------------------------------------- */

/* Details of a sent message (for tools and measurements). */
struct s2s_sent_info {
	uint64_t session;
	uint64_t seq;
	uint32_t seal_us;           /* tag + stego + PNG + envelope */
	size_t package_len;
	int cover_index;            /* which configured cover was used */
	uint8_t *package;           /* with S2S_SEND_KEEP_PACKAGE: a copy of
				     * the package; s2s_free() it */
};

#define S2S_SEND_KEEP_PACKAGE 1u   /* fill info->package */
#define S2S_SEND_WAIT_ACK 2u       /* wait for the CS's answer (PUBACK):
				    * S2S_ERR_REJECTED if it refused */

/*
 * Seal msg for peer at the current position of this direction's key chain
 * (a new tag and R^T hidden in a cover, a new sequence number) and publish
 * it with QoS 1.  Without S2S_SEND_WAIT_ACK it returns once the package is
 * handed to MQTT (buffered while disconnected).  info may be NULL.
 * S2S_ERR_SESSION (no established session with peer), S2S_ERR_TOO_BIG,
 * S2S_ERR_MQTT, S2S_ERR_REJECTED.
 */
S2S_EXPORT enum s2s_err s2s_client_send(struct s2s_client *c,
					const char *peer, const uint8_t *msg,
					size_t len, unsigned flags,
					struct s2s_sent_info *info);

/*
 * Wait until every package sent so far has been answered by the broker,
 * or timeout_ms (< 0: for ever; 0: just ask).  S2S_ERR_TIMEOUT.
 */
S2S_EXPORT enum s2s_err s2s_client_flush(struct s2s_client *c,
					 int timeout_ms);

/* A message taken with s2s_client_receive(). */
struct s2s_received {
	struct s2s_message_info info;
	uint8_t *msg;
	size_t len;
	char sender_buf[72];
};

/*
 * Blocking receive for apps without a message callback: wait up to
 * timeout_ms (< 0: for ever) for the next verified message.  Connects on
 * its own if the client has not connected yet (S2S_ERR_TIMEOUT,
 * S2S_ERR_DENIED, S2S_ERR_MQTT: s2s_client_last_reason() says why);
 * messages kept from an earlier run come first.  *out is
 * freed with s2s_received_free().  S2S_ERR_TIMEOUT.
 */
S2S_EXPORT enum s2s_err s2s_client_receive(struct s2s_client *c,
					   int timeout_ms,
					   struct s2s_received **out);
S2S_EXPORT void s2s_received_free(struct s2s_received *r);

/*
 * Fetch the stored packages sender -> this device of the current session
 * with peer in [from_seq, to_seq] (to_seq 0: up to from_seq + 63) from the
 * CS and process them as if they had arrived: the new ones are verified
 * in order and delivered (info->fetched set), known ones are skipped.
 * The library does this on its own when it sees a gap; this call is for
 * tools.  *delivered (may be NULL) counts the new messages.
 */
S2S_EXPORT enum s2s_err s2s_client_fetch(struct s2s_client *c,
					 const char *peer, uint64_t from_seq,
					 uint64_t to_seq, int timeout_ms,
					 unsigned *delivered);

/*
 * The next sequence numbers of the session with peer: *send_next (this
 * device's next package) and *recv_next (the peer's next expected).
 * S2S_ERR_SESSION without a session.  Either pointer may be NULL.
 */
S2S_EXPORT enum s2s_err s2s_client_seq(const struct s2s_client *c,
				       const char *peer, uint64_t *send_next,
				       uint64_t *recv_next);

/*
 * The reason text of the last failure, copied into buf ("" if none): the
 * last REJECT the CS sent to this device, or why the last blocking call
 * failed on this side (a connect failure names the broker URI and the
 * cause: unknown host, nothing listening on the port, TLS; a refused
 * signature file names the path; a revoked device says so).
 */
S2S_EXPORT void s2s_client_last_reason(const struct s2s_client *c, char *buf,
				       size_t len);

/* ---- Status -------------------------------------------------------------- */

/* What this device knows about one peer, from its own state. */
struct s2s_peer_status {
	char peer[72];
	char pair_id[144];
	int pair;                   /* 0 none, 1 requested (waiting for the
				     * peer), 2 paired */
	int profile;                /* 0 unknown, 1 paper, 2 hardened */
	bool established;           /* a session is up */
	bool negotiating;           /* a negotiation is running */
	uint64_t session;           /* T (0 without a session) */
	int role;                   /* 1 initiator (SDS), 2 responder (SDR),
				     * 0 without a session */
	uint64_t send_next;         /* this device's next sequence number */
	uint64_t recv_next;         /* the peer's next expected one */
};

/* The number of peers this device has asked to pair with (or paired). */
S2S_EXPORT size_t s2s_client_peer_count(const struct s2s_client *c);

/* The status of peer number i (0 .. count - 1).  S2S_ERR_NOT_FOUND past
 * the end. */
S2S_EXPORT enum s2s_err s2s_client_peer_status(const struct s2s_client *c,
					       size_t i,
					       struct s2s_peer_status *out);

/*
 * Forget peer on this device: ask the CS to end the session, wipe the
 * session and Shk, and remove the pair from the state file.  The CS
 * keeps its pair until the administrator removes it (admin command
 * "unpair"); pairing again needs that.  S2S_ERR_NOT_FOUND if there is no
 * such pair here.
 */
S2S_EXPORT enum s2s_err s2s_client_forget_peer(struct s2s_client *c,
					       const char *peer);

/* ---- Administration ---------------------------------------------------- */

/*
 * One round trip of the CS admin API ($CONTROL/s2s/v1, JSON; see
 * docs/OPERATIONS.md): connect to broker as admin_user (NULL:
 * "s2s-admin") with a single-use token for this call's client id, signed
 * by the admin private key in
 * admin_key_file, publish request (a JSON text), wait up to timeout_ms for
 * the reply on $CONTROL/s2s/v1/response and return it in *response
 * (NUL-terminated; s2s_free() it).  timeout_ms < 0: 10 s; 0 is
 * S2S_ERR_INVAL (the call needs the answer).  ca_file may be NULL (TLS
 * brokers: the CA to trust).  Blocking; from an application thread.
 * S2S_ERR_DENIED (bad admin credentials), S2S_ERR_TIMEOUT, S2S_ERR_MQTT;
 * S2S_ERR_IO / S2S_ERR_PERM when the admin key file cannot be read or is
 * readable by others (the file is not named here: callers that have a
 * path print it).
 */
S2S_EXPORT enum s2s_err s2s_admin_call(const char *broker,
				       const char *admin_key_file,
				       const char *admin_user,
				       const char *ca_file,
				       const char *request, int timeout_ms,
				       char **response);

#ifdef __cplusplus
}
#endif

#endif /* S2S_CLIENT_H */
