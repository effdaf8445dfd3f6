/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plugin.h - private header of mosquitto_s2s.so, the paper's cloud server
 * (CS) inside Mosquitto 2.0.
 *
 * One section per file, in the order the files are read:
 *   plugin.c   entry points, callback registration, the state
 *   options.c  plugin_opt_* parsing and validation
 *   topics.c   the topic tree under plugin_opt_topic_root
 *   auth.c     MOSQ_EVT_BASIC_AUTH / DISCONNECT, the connection table
 *   acl.c      MOSQ_EVT_ACL_CHECK, the matrix of docs/OPERATIONS.md
 *   cs.c       registration, pairing, negotiation, fetch, end (phases 1-2)
 *   gate.c     MOSQ_EVT_MESSAGE on pair topics (phase 3)
 *   store.c    the store interface (store.h): backend choice, dispatch
 *   store_embedded.c  the default backend: SQLite (WAL) for the registry,
 *              pairs, sessions; the segment log (seglog.c) for packages
 *              and chain advances
 *   seal.c     encryption at rest of the secrets in the store
 *   control.c  $CONTROL/s2s/v1 admin API
 *   stats.c    counters and $SYS/broker/s2s/...
 *
 * All state lives in one struct s2s_cs, handed to the broker as the
 * userdata of every callback; there are no globals.  Mosquitto calls every
 * callback on its single main thread, so nothing here is locked.
 *
 * Handlers only translate Mosquitto events into calls of the functions
 * below and of core/ (the s2s headers); the protocol logic does not see Mosquitto
 * types beyond the opaque client pointer.
 *
 * Secrets held here (Shk, SkCS^T, Sk, chain keys, the store key, the CS
 * private key) are wiped when the object holding them is freed.  Nothing in
 * this plugin logs a secret, a token or a package body.
 */
#ifndef S2S_BROKER_PLUGIN_H
#define S2S_BROKER_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/crypto.h"
#include "s2s/error.h"
#include "s2s/package.h"
#include "s2s/proto.h"
#include "s2s/scheme.h"

#include "store.h"

struct mosquitto;
struct mosquitto_opt;
struct sqlite3;

#define CS_ID_BUF (S2S_MSG_ID_MAX + 1)
#define CS_PAIR_BUF (2 * S2S_MSG_ID_MAX + 2)
#define CS_STORE_KEY_LEN 32

/* =========================================================================
 * Options (options.c)
 * ========================================================================= */

enum cs_foreign { CS_FOREIGN_ALLOW, CS_FOREIGN_DENY };

struct cs_options {
	char *store;                /* SQLite file */
	char *cs_key;               /* CS private key file, must end in ".key" */
	char *admin_key;            /* admin public key file, NULL = default */
	char cs_id[CS_ID_BUF];
	char admin_user[CS_ID_BUF];
	char *topic_root;
	enum s2s_profile profile;   /* for new pairs */
	bool enroll_open;
	enum cs_foreign foreign;
	bool feed;                  /* ROOT/verified/<pair> (feed.c) */
	char *feed_readers;         /* "any", or user1,user2; NULL: members */
	unsigned negotiation_timeout;   /* seconds */
	uint64_t token_max_age;         /* seconds */
	uint64_t retention_packages;    /* per pair, 0 = unlimited */
	uint64_t retention_age;         /* seconds, 0 = unlimited */
	size_t max_package;             /* bytes */
	size_t max_signature;           /* bytes of a REGISTER image */
	unsigned stats_interval;        /* seconds */
	/* Names no device may register (besides admin_user, cs_id and a
	 * feed_readers list): user,user2 and the users of a Mosquitto
	 * password file (read at each REGISTER).  NULL: none. */
	char *reserved_users;
	char *reserved_users_file;
	/* store (store.h, docs/OPERATIONS.md "Store") */
	uint64_t store_segment;         /* bytes per log segment */
	unsigned store_sync_ms;         /* group commit interval, 0 = each */
	uint64_t enroll_expiry;         /* seconds an open enrolment may stay
					 * unpaired, 0 = forever */
	uint64_t enroll_pending_max;    /* open enrolments not yet paired */
	size_t fetch_reply_bytes;       /* packages per FETCHED, in bytes */
	size_t fetch_client_bytes;      /* unacknowledged FETCHED per device */
	/* cluster (cluster.c, docs/CLUSTER.md) */
	char broker_id[CS_ID_BUF];      /* this broker's name in the cluster */
	char *bridge_users;             /* peers: user1,user2 (NULL: none) */
	char *bridge_secret;            /* file with the bridges' password */
	uint64_t cluster_window;        /* gate catch-up window, packages */
};

/*
 * Parse the plugin_opt_* pairs into o (defaults for what is absent).
 * On error returns S2S_ERR_CONFIG and writes a message naming the option
 * into err.  Free with cs_options_free() in every case.
 */
enum s2s_err cs_options_parse(struct cs_options *o,
			      const struct mosquitto_opt *opts, int count,
			      char *err, size_t err_len);
void cs_options_free(struct cs_options *o);

/* =========================================================================
 * Topics (topics.c)
 * ========================================================================= */

enum cs_topic_kind {
	CS_T_FOREIGN = 0,   /* outside ROOT, $CONTROL/s2s and $SYS/broker/s2s */
	CS_T_REGISTER,      /* ROOT/cs/register */
	CS_T_REQ,           /* ROOT/req/<id> */
	CS_T_INBOX,         /* ROOT/inbox/<id> */
	CS_T_PAIR,          /* ROOT/pair/<pair>/<sender> */
	CS_T_VERIFIED,      /* ROOT/verified/<pair> */
	CS_T_ROOT_OTHER,    /* anything else under ROOT: nobody */
	CS_T_CONTROL,       /* $CONTROL/s2s/v1 */
	CS_T_CONTROL_RESP,  /* $CONTROL/s2s/v1/response */
	CS_T_CONTROL_OTHER, /* other $CONTROL/s2s/... */
	CS_T_SYS,           /* $SYS/broker/s2s/... */
	CS_T_BRIDGE,        /* ROOT/bridge/<broker>/{pair/<pair>/<sender>,
			     * inbox/<id>}: from a peer broker (cluster.c) */
};

/* A topic split into its parts; the strings are NUL-terminated copies. */
struct cs_topic {
	enum cs_topic_kind kind;
	char id[CS_ID_BUF];         /* REQ, INBOX; PAIR: the sender */
	char pair[CS_PAIR_BUF];     /* PAIR, VERIFIED */
	char broker[CS_ID_BUF];     /* BRIDGE: the peer broker */
	enum cs_topic_kind inner;   /* BRIDGE: CS_T_PAIR or CS_T_INBOX */
};

/*
 * Classify a topic name (no wildcards).  Malformed topics under ROOT
 * (bad id, wrong depth) are CS_T_ROOT_OTHER.
 */
void cs_topic_parse(const char *root, const char *topic, struct cs_topic *t);

/* "ROOT/inbox/<id>" etc. into buf; false if it does not fit. */
bool cs_topic_inbox(const char *root, const char *id, char *buf, size_t n);

/* The two members of a well-formed pair id; false otherwise. */
bool cs_pair_split(const char *pair, char a[CS_ID_BUF], char b[CS_ID_BUF]);

#define CS_CONTROL_TOPIC "$CONTROL/s2s/v1"
#define CS_CONTROL_RESPONSE "$CONTROL/s2s/v1/response"
#define CS_SYS_PREFIX "$SYS/broker/s2s/"

/* =========================================================================
 * Store (store.c) and sealing (seal.c)
 * ========================================================================= */

struct s2s_cs;
struct cs_fetch_client;

/* The store interface (cs_store_*) is in store.h, included above. */

struct cs_pair;
struct cs_session;

/*
 * Authenticated encryption at rest.  ad binds the record (e.g. "dev:<id>").
 * *out is malloc()ed; free() it (unseal: wipe it first).
 */
enum s2s_err cs_seal(const struct s2s_cs *cs, const char *ad,
		     const uint8_t *pt, size_t pt_len, uint8_t **out,
		     size_t *out_len);
enum s2s_err cs_unseal(const struct s2s_cs *cs, const char *ad,
		       const uint8_t *in, size_t in_len, uint8_t **out,
		       size_t *out_len);
/* Load or create the 32-byte store key file (0600). */
enum s2s_err cs_store_key_load(const char *path,
			       uint8_t key[CS_STORE_KEY_LEN]);
/*
 * The sealed records of every store backend (one format, so a store can
 * move between backends): a chain's key is sealed as sk_len || sk padded
 * to CS_CHAIN_SECRET_LEN under the ad "chain:<pair>:<dir>:<T>:<next_seq>",
 * a session's secrets under "sess:<pair>:<T>".  *out as for cs_seal().
 */
#define CS_CHAIN_SECRET_LEN (1 + S2S_SK_MAX)
void cs_chain_ad(char *buf, size_t n, const char *pair, int dir, uint64_t t,
		 uint64_t next_seq);
void cs_sess_ad(char *buf, size_t n, const char *pair, uint64_t t);
enum s2s_err cs_chain_seal(struct s2s_cs *cs, const char *pair, int dir,
			   const struct s2s_chain *c, uint8_t **out,
			   size_t *out_len);
/* Derive cs->seal_key from cs->store_key. */
enum s2s_err cs_seal_init(struct s2s_cs *cs);

/* =========================================================================
 * Pairs and sessions in memory (cs.c)
 * ========================================================================= */

enum cs_sess_state {
	CS_SESS_KEYS_SENT = 1,  /* step 1 done, waiting for NEG_SDS */
	CS_SESS_FWD_SENT,       /* step 3 done, waiting for NEG_SDR */
	CS_SESS_ESTABLISHED,    /* step 5 sent: the gate is open */
};

/* Connections a QoS 2 package is remembered as routed to (gate.c). */
#define CS_Q2_READERS 4

struct cs_session {
	uint64_t t;
	enum cs_sess_state state;
	int sds;                        /* 0: member a asked, 1: member b */
	uint64_t sds_req_id;
	int64_t deadline_ms;            /* monotonic; pending states only */
	uint8_t nonce[2][S2S_MSG_NONCE_LEN];   /* by member index */
	uint8_t skcs[S2S_SKCS_LEN];
	uint8_t sk[S2S_SK_MAX];
	uint8_t sk_len;
	uint8_t blob_sds[S2S_SKCS_LEN];
	struct s2s_chain chain[2];      /* chain[i]: sender = member i */
	struct s2s_package_cache cache[2];      /* stego selection per chain */
	/*
	 * QoS 2 exactly once (gate.c): the last package accepted at QoS 2 per
	 * direction, until it is routed (its PUBREL) or the next one is
	 * accepted.  A resend of exactly it (DUP after PUBREC) is let through
	 * without moving the chain: the broker then finds the original in
	 * its incoming queue and drops the copy.
	 */
	uint64_t q2_seq[2];
	size_t q2_len[2];
	bool q2_open[2];
	/*
	 * Copies of that package stored by the broker under other message
	 * ids before its first PUBREL passed the resend rule too: once it has
	 * been routed, q2_routed is set and q2_to lists the connections it
	 * was routed to; another routing of it to one of them is refused at
	 * the ACL READ (cs_gate_route), until the next package is accepted.
	 */
	bool q2_routed[2];
	unsigned q2_nto[2];
	const void *q2_to[2][CS_Q2_READERS];
};

struct cs_pair {
	struct cs_pair *next;           /* all pairs, in cs->pairs */
	struct cs_pair *hnext;          /* same bucket of cs->pair_index */
	char id[CS_PAIR_BUF];
	char m[2][CS_ID_BUF];           /* members, m[0] < m[1] */
	enum s2s_profile profile;
	uint8_t shk[S2S_SHK_MAX];
	uint8_t shk_len;
	int64_t created;
	struct cs_session *sess;        /* current session or NULL */
	uint64_t accepted;              /* packages accepted since start */
};

struct cs_pair *cs_pair_find(struct s2s_cs *cs, const char *pair);
/*
 * As cs_pair_find, and on a miss read the pair from the store (made by
 * another broker of the cluster) -- only when member is one of the two
 * ids in the pair id, so nobody makes the broker read others' pairs.
 */
struct cs_pair *cs_pair_get(struct s2s_cs *cs, const char *pair,
			    const char *member);
/* Replace p's cached session with the store's (store.h, "cluster"); on a
 * store error the cache is kept. */
void cs_session_refresh(struct s2s_cs *cs, struct cs_pair *p);
/* Member index of id in p, or -1. */
int cs_pair_member(const struct cs_pair *p, const char *id);
/* A new pair, linked into cs->pairs and the index (NULL: bad ids, OOM). */
struct cs_pair *cs_pair_new(struct s2s_cs *cs, const char *a, const char *b);
/* Take p out of cs->pairs and the index (it is not freed). */
void cs_pair_unlink(struct s2s_cs *cs, struct cs_pair *p);
/* Free every pair and the index (at cleanup). */
void cs_pair_free_all(struct s2s_cs *cs);
void cs_pair_free(struct cs_pair *p);
/* End the pair's session (if any): ENDED to both if notify. */
void cs_session_end(struct s2s_cs *cs, struct cs_pair *p, bool notify,
		    const char *why);
/* Remove a pair from memory and store (admin, revocation). */
void cs_pair_remove(struct s2s_cs *cs, struct cs_pair *p);

/* Handle a message on ROOT/cs/register (client_id may be NULL). */
void cs_on_register(struct s2s_cs *cs, const char *client_id,
		    const uint8_t *buf, size_t len);
/* Handle a message on ROOT/req/<id> from device id. */
void cs_on_request(struct s2s_cs *cs, const char *id, const uint8_t *buf,
		   size_t len);
/* FETCH pacing state of a device: forget it with its connection. */
void cs_fetch_forget(struct s2s_cs *cs, const char *id);
void cs_fetch_free_all(struct s2s_cs *cs);
/* Negotiation timeouts, from TICK. */
void cs_tick(struct s2s_cs *cs, int64_t now_ms);

/* Encode and publish m to ROOT/inbox/<id> (to: key for the enc part). */
enum s2s_err cs_send(struct s2s_cs *cs, const char *id,
		     const struct s2s_msg *m, const struct s2s_key *to);
void cs_send_reject(struct s2s_cs *cs, const char *id, uint64_t req_id,
		    int about, enum s2s_err code, uint64_t t,
		    const char *reason);

/* =========================================================================
 * Connections and authentication (auth.c)
 * ========================================================================= */

enum cs_conn_kind {
	CS_CONN_OTHER = 0,      /* enrolling or foreign client */
	CS_CONN_DEVICE,         /* authenticated with a device token */
	CS_CONN_ADMIN,          /* authenticated with the admin token */
	CS_CONN_BRIDGE,         /* a peer broker's bridge (cluster.c); id:
				 * the peer's broker id */
};

struct cs_conn {
	struct cs_conn *next;
	const struct mosquitto *client;
	enum cs_conn_kind kind;
	char id[CS_ID_BUF];     /* device id, or the admin user */
};

/*
 * Decide a CONNECT: returns a MOSQ_ERR_* (SUCCESS, AUTH or PLUGIN_DEFER)
 * and records the connection kind.
 */
int cs_auth_check(struct s2s_cs *cs, const struct mosquitto *client,
		  const char *client_id, const char *username,
		  const char *password);
enum cs_conn_kind cs_conn_kind(struct s2s_cs *cs,
			       const struct mosquitto *client);
/*
 * For READ checks: as cs_conn_kind, and an offline persistent session of
 * a registered device (username == client id) counts as that device, so
 * that what was queued for it is delivered when it comes back.  Never
 * used for WRITE.  Wills never reach protected topics: see
 * docs/SECURITY.md, "Wills" (DISCONNECT forgets the entry, a takeover
 * supersedes it, and plugin.c refuses the READ of a message that passed
 * WRITE but no MOSQ_EVT_MESSAGE).
 */
enum cs_conn_kind cs_conn_kind_read(struct s2s_cs *cs,
				    const struct mosquitto *client,
				    const char *client_id,
				    const char *username);
void cs_conn_forget(struct s2s_cs *cs, const struct mosquitto *client);
void cs_conn_free_all(struct s2s_cs *cs);
long cs_conn_count(struct s2s_cs *cs, enum cs_conn_kind kind);

/* =========================================================================
 * Access control (acl.c)
 * ========================================================================= */

/*
 * The ACL decision (MOSQ_ERR_SUCCESS or MOSQ_ERR_ACL_DENIED) for client
 * with id client_id (may be NULL) and kind, access MOSQ_ACL_*, topic (a
 * filter for SUBSCRIBE/UNSUBSCRIBE), payload (READ/WRITE, may be NULL).
 */
int cs_acl_decide(struct s2s_cs *cs, enum cs_conn_kind kind,
		  const char *client_id, int access, const char *topic,
		  const void *payload, size_t payload_len);
/* As cs_acl_decide; bridge: the peer broker id of a CS_CONN_BRIDGE. */
int cs_acl_decide_bridge(struct s2s_cs *cs, enum cs_conn_kind kind,
			 const char *client_id, const char *bridge,
			 int access, const char *topic, const void *payload,
			 size_t payload_len);
/* The id recorded for a connection (device id, admin user, peer broker)
 * or NULL. */
const char *cs_conn_id(struct s2s_cs *cs, const struct mosquitto *client);

/* =========================================================================
 * The gate (gate.c)
 * ========================================================================= */

/*
 * Verify a package published by client_id on the pair topic t.  S2S_OK:
 * stored, chain advanced, let it through.  Any error: counted, nothing
 * changed, drop it.
 */
enum s2s_err cs_gate(struct s2s_cs *cs, const char *client_id,
		     const struct cs_topic *t, const uint8_t *buf,
		     size_t len);

/*
 * cs_gate for a PUBLISH at qos: a QoS 2 resend (DUP) of the last package
 * accepted from this sender, not yet routed, byte for byte, is S2S_OK
 * without a second verification (the broker drops the copy by its
 * message id); everything else is cs_gate.  *copy (if copy is not NULL):
 * true when it was such a resend, which was routed to other brokers
 * already with the original (cs_cluster_route: not again).
 */
enum s2s_err cs_gate_qos(struct s2s_cs *cs, const char *client_id,
			 const struct cs_topic *t, const uint8_t *buf,
			 size_t len, int qos, bool *copy);
/*
 * A package on pair topic t (buf, len bytes) is being routed to the
 * connection reader (ACL READ).  false: it is the last QoS 2 package of
 * that direction and was routed to reader before (a copy the broker held
 * under another message id): refuse the READ.  Never verifies anything.
 */
bool cs_gate_route(struct s2s_cs *cs, const struct cs_topic *t,
		   const void *reader, const uint8_t *buf, size_t len);

/* =========================================================================
 * The verified feed (feed.c)
 * ========================================================================= */

/* Publish the JSON record of an accepted package on ROOT/verified/<pair>. */
void cs_feed_accepted(struct s2s_cs *cs, const struct cs_pair *p,
		      const struct s2s_package *pkg);
/* The JSON record (malloc()ed; NULL when out of memory), for the tests. */
char *cs_feed_json(const struct cs_pair *p, const struct s2s_package *pkg,
		   int64_t ts, size_t *len);
/* May a client of this kind and user name read the feed (feed on)? */
bool cs_feed_reader(const struct s2s_cs *cs, enum cs_conn_kind kind,
		    const char *username);
/*
 * true: allow this READ or SUBSCRIBE of ROOT/verified/<pair> (or of the
 * filters ROOT/verified/+ and ROOT/verified/#) by a feed reader; false:
 * let acl.c decide (pair members read their own pair's feed there).
 */
bool cs_feed_acl(struct s2s_cs *cs, enum cs_conn_kind kind,
		 const char *username, int access, const char *topic);

/* =========================================================================
 * Admin API (control.c)
 * ========================================================================= */

/* Handle one $CONTROL/s2s/v1 payload; the reply is published. */
void cs_control(struct s2s_cs *cs, const char *client_id,
		const uint8_t *buf, size_t len);

/* =========================================================================
 * Statistics (stats.c)
 * ========================================================================= */

struct cs_stats {
	uint64_t accepted;
	uint64_t rejected[S2S_ERR_COUNT];   /* by -err */
	uint64_t registered, register_rejected;
	uint64_t negotiated, negotiation_rejected;
	uint64_t control_rejected;          /* malformed control messages */
	uint64_t fetch_paced;               /* FETCHes refused: unread replies */
	uint64_t bridged_in;                /* messages from peer brokers */
	uint64_t bridged_delivered;         /* ... handed to a device here */
	uint64_t routed;                    /* sent to a peer broker (one) */
};

void cs_stats_reject(struct s2s_cs *cs, enum s2s_err err);
/* Publish $SYS/broker/s2s/... (retained), at most every interval. */
void cs_stats_tick(struct s2s_cs *cs, int64_t now_ms, bool force);
long cs_session_count(struct s2s_cs *cs, bool established_only);
long cs_pair_count(struct s2s_cs *cs);

/* =========================================================================
 * The cluster (cluster.c)
 * ========================================================================= */

/*
 * Load the bridge password (plugin_opt_bridge_secret) at start.  S2S_OK
 * when no bridges are configured.
 */
enum s2s_err cs_cluster_init(struct s2s_cs *cs, char *err, size_t n);
/*
 * A CONNECT with a user name: is it a configured bridge peer
 * ("s2s-bridge-<broker>" for a broker in plugin_opt_bridge_users)?  0: not
 * a bridge user; 1: authenticated (*broker set); -1: a bridge user with
 * a wrong password (refuse).
 */
#define CS_BRIDGE_USER_PREFIX "s2s-bridge-"   /* never a device id */
int cs_cluster_bridge_auth(struct s2s_cs *cs, const char *username,
			   const char *password, char broker[CS_ID_BUF]);
/* From TICK: events of the other brokers, this broker's row. */
void cs_cluster_tick(struct s2s_cs *cs, int64_t now_ms);
/* A message from a bridge peer on ROOT/bridge/...: deliver it to the
 * device connected here, if any. */
void cs_cluster_deliver(struct s2s_cs *cs, const struct cs_topic *t,
			const uint8_t *buf, size_t len);
/* Is device id connected to this broker?  To any live broker (their
 * rows in the store)? */
bool cs_device_here(struct s2s_cs *cs, const char *id);
bool cs_cluster_connected(struct s2s_cs *cs, const char *id);
/*
 * Routing to the receiver's broker (a shared store that knows where
 * devices are, bridges configured): start clears this broker's devices
 * from the routing table (after the store is open); device_up notes a
 * device authenticated here (before its CONNACK), device_down one that
 * left (unless it is still connected here).  route: a message for device
 * to (a package the gate accepted, a control message of the CS) whose
 * topic below ROOT is sub ("pair/<pair>/<sender>", "inbox/<id>"): if
 * `to` is connected to a peer broker, one copy goes to that broker's
 * bridge only (ROOT/route/<broker>/sub); here or nowhere: nothing.
 */
void cs_cluster_start(struct s2s_cs *cs);
void cs_cluster_device_up(struct s2s_cs *cs, const char *id);
void cs_cluster_device_down(struct s2s_cs *cs, const char *id);
void cs_cluster_route(struct s2s_cs *cs, const char *to, const char *sub,
		      const uint8_t *buf, size_t len);
/* Re-read every pair from the store (admin API: the cluster's view). */
void cs_cluster_sync(struct s2s_cs *cs);
/* Append the cluster view (brokers, their counters, totals) to o. */
struct s2s_json;
void cs_cluster_stats(struct s2s_cs *cs, struct s2s_json *o);
/* Publish $SYS/broker/s2s/cluster/... through pub (stats.c). */
void cs_cluster_sys(struct s2s_cs *cs,
		    void (*pub)(const char *leaf, long long v));

/* =========================================================================
 * The plugin state (plugin.c)
 * ========================================================================= */

struct s2s_cs {
	void *pid;                      /* mosquitto_plugin_id_t * */
	struct cs_options opt;
	struct s2s_key *cs_key;         /* private */
	struct s2s_key *admin_key;      /* public */
	uint8_t store_key[CS_STORE_KEY_LEN];   /* secret */
	uint8_t seal_key[S2S_AEAD_KEY_LEN];    /* secret, derived (seal.c) */
	uint8_t seal_key_x[S2S_AEAD_KEY_LEN];  /* secret, derived: records
						 * of format 2 (seal.c) */
	struct s2s_aead *seal_aead;     /* seals with seal_key_x (seal.c) */
	void *store;                    /* the backend's state (store.h) */
	const struct cs_store_ops *store_ops;
	struct cs_fetch_client *fetch_clients;  /* FETCH pacing (cs.c) */
	struct cs_pair *pairs;
	/* Pair id -> pair, so the gate's lookups stay flat as pairs grow. */
	struct cs_pair **pair_index;
	size_t pair_index_size;         /* buckets, a power of two */
	size_t npairs;
	struct cs_conn *conns;
	struct cs_stats stats;
	struct s2s_package_limits limits;
	int64_t next_stats_ms;
	int64_t next_retention_ms;
	bool stats_dirty;
	/*
	 * Wills (plugin.c): the last ACL WRITE allowed under ROOT that no
	 * MOSQ_EVT_MESSAGE followed yet.  A PUBLISH is WRITE-checked and
	 * passes MESSAGE at once; a will (takeover, shutdown) is only
	 * WRITE-checked and then READ-checked per subscriber: a READ of the
	 * marked message is refused.  O(1): topic hash, length, and a hash
	 * of at most 64 payload bytes.
	 */
	struct { bool set; size_t len; uint64_t topic, fp; } wmark;
	uint64_t wills_refused;
	/* cluster (cluster.c) */
	char *bridge_pw;                /* bridge password (a secret) */
	int64_t next_cluster_ms;        /* next broker row */
	int64_t cluster_cache_ms;       /* cluster view read for $SYS */
};

/* Set up everything but callbacks: options, keys, store (tests use it). */
enum s2s_err cs_create(const struct mosquitto_opt *opts, int count,
		       struct s2s_cs **out, char *err, size_t err_len);
void cs_destroy(struct s2s_cs *cs);

/* Clocks: unix seconds and monotonic milliseconds. */
int64_t cs_now_s(void);
int64_t cs_mono_ms(void);

/* Logging through mosquitto_log_printf, with a "s2s: " prefix. */
void cs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Event handlers (plugin.c), exposed for the unit tests. */
int cs_on_basic_auth(int event, void *event_data, void *userdata);
int cs_on_acl_check(int event, void *event_data, void *userdata);
int cs_on_message(int event, void *event_data, void *userdata);
int cs_on_control(int event, void *event_data, void *userdata);
int cs_on_tick(int event, void *event_data, void *userdata);
int cs_on_disconnect(int event, void *event_data, void *userdata);

/* =========================================================================
 * Single-use tokens (store.h ops, auth.c) and names (cs.c)
 * ========================================================================= */

/* Create the used_tokens table (after cs_store_open). */
enum s2s_err cs_tokens_open(struct s2s_cs *cs);
/*
 * Record that the token (user, nonce) valid until exp was used:
 * S2S_OK the first time, S2S_ERR_REPLAY if it was seen before (also
 * before a restart), S2S_ERR_STORE.
 */
enum s2s_err cs_token_use(struct s2s_cs *cs, const char *user,
			  const uint8_t nonce[S2S_TOKEN_NONCE_LEN],
			  uint64_t exp);
/* Forget tokens expired before now; number of rows, -1 on error. */
long cs_tokens_prune(struct s2s_cs *cs, int64_t now);
long cs_tokens_count(struct s2s_cs *cs);
/* The stored hash of id's unexpired enrolment code; S2S_ERR_NOT_FOUND. */
enum s2s_err cs_enrol_code_hash_get(struct s2s_cs *cs, const char *id,
				    int64_t now,
				    uint8_t hash[S2S_SHA256_LEN]);
/*
 * May no device have this id?  The CS id, the admin user, the
 * feed_readers list and reserved_users / reserved_users_file (cs.c).
 */
bool cs_name_reserved(struct s2s_cs *cs, const char *id);

#endif /* S2S_BROKER_PLUGIN_H */
