/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cs.c - the cloud server's side of phases 1 and 2: registration, pairing,
 * the session negotiation of Fig. 2 with its timeouts, fetch and end
 * (docs/PROTOCOL.md).
 *
 * Requests arrive on ROOT/cs/register and ROOT/req/<id> through
 * MOSQ_EVT_MESSAGE (plugin.c); the ACL has already checked that only
 * device <id> publishes on ROOT/req/<id>.  Every reply goes to
 * ROOT/inbox/<id> with mosquitto_broker_publish_copy (QoS 1), where the
 * ACL READ check lets only <id> receive it.
 *
 * Negotiation state (T, SkCS^T, Sk, the two nonces) lives in memory only
 * until the session is established; then the session and both chains are
 * stored.  A broker restart therefore drops pending negotiations (the
 * devices time out and ask again) but keeps established sessions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "s2s/bio.h"
#include "s2s/image.h"
#include "s2s/secmem.h"

/* ---- pairs in memory ---------------------------------------------------- */

/* FNV-1a: pair ids are short and chosen by registered devices only. */
static size_t
pair_hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 0x100000001b3ull;
	return (size_t)h;
}

/* Double the bucket array when the load passes 1 (allocation failures
 * just keep the smaller table: lookups stay correct, only slower). */
static void
pair_index_grow(struct s2s_cs *cs)
{
	size_t n = cs->pair_index_size ? 2 * cs->pair_index_size : 64;
	struct cs_pair **tab = calloc(n, sizeof(*tab));

	if (!tab)
		return;
	for (struct cs_pair *p = cs->pairs; p; p = p->next) {
		size_t b = pair_hash(p->id) & (n - 1);

		p->hnext = tab[b];
		tab[b] = p;
	}
	free(cs->pair_index);
	cs->pair_index = tab;
	cs->pair_index_size = n;
}

struct cs_pair *
cs_pair_find(struct s2s_cs *cs, const char *pair)
{
	struct cs_pair *p;

	if (!cs->pair_index_size) {
		/* No index (its first allocation failed): scan the list. */
		for (p = cs->pairs; p; p = p->next)
			if (strcmp(p->id, pair) == 0)
				return p;
		return NULL;
	}
	p = cs->pair_index[pair_hash(pair) & (cs->pair_index_size - 1)];
	for (; p; p = p->hnext)
		if (strcmp(p->id, pair) == 0)
			return p;
	return NULL;
}

void
cs_pair_unlink(struct s2s_cs *cs, struct cs_pair *p)
{
	struct cs_pair **pp;

	for (pp = &cs->pairs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			cs->npairs--;
			break;
		}
	}
	if (!cs->pair_index_size)
		return;
	pp = &cs->pair_index[pair_hash(p->id) & (cs->pair_index_size - 1)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	}
}

void
cs_pair_free_all(struct s2s_cs *cs)
{
	while (cs->pairs) {
		struct cs_pair *p = cs->pairs;

		cs->pairs = p->next;
		cs_pair_free(p);
	}
	free(cs->pair_index);
	cs->pair_index = NULL;
	cs->pair_index_size = 0;
	cs->npairs = 0;
}

int
cs_pair_member(const struct cs_pair *p, const char *id)
{
	if (strcmp(p->m[0], id) == 0)
		return 0;
	if (strcmp(p->m[1], id) == 0)
		return 1;
	return -1;
}

struct cs_pair *
cs_pair_get(struct s2s_cs *cs, const char *pair, const char *member)
{
	char a[CS_ID_BUF], b[CS_ID_BUF];
	struct cs_pair *p = cs_pair_find(cs, pair);

	if (p)
		return p;
	/* Only a member's own pairs are looked up in the store: nobody can
	 * make the broker read the store for pairs of others. */
	if (!member || !cs_pair_split(pair, a, b) ||
	    (strcmp(a, member) != 0 && strcmp(b, member) != 0))
		return NULL;
	if (!cs_store_shared(cs) || cs_store_pair_load(cs, pair) != S2S_OK)
		return NULL;
	return cs_pair_find(cs, pair);
}

void
cs_session_refresh(struct s2s_cs *cs, struct cs_pair *p)
{
	struct cs_session *x = NULL;
	enum s2s_err rc;

	if (!cs_store_shared(cs) || !cs->store_ops->session_get)
		return;     /* one broker: memory is the truth */
	rc = cs_store_session_get(cs, p, &x);
	if (rc != S2S_OK && rc != S2S_ERR_NOT_FOUND)
		return;     /* store down: keep what we have */
	cs_session_free(p->sess);
	p->sess = x;
}

struct cs_pair *
cs_pair_new(struct s2s_cs *cs, const char *a, const char *b)
{
	struct cs_pair *p = calloc(1, sizeof(*p));
	size_t old_size;

	if (!p)
		return NULL;
	if (!a || !b || s2s_pair_id(a, b, p->id) != S2S_OK ||
	    !cs_pair_split(p->id, p->m[0], p->m[1])) {
		free(p);
		return NULL;
	}
	p->profile = cs->opt.profile;
	p->created = cs_now_s();
	p->next = cs->pairs;
	cs->pairs = p;
	cs->npairs++;
	old_size = cs->pair_index_size;
	if (cs->npairs > old_size)
		pair_index_grow(cs);    /* relinks every pair, p included */
	if (cs->pair_index_size == old_size && old_size) {
		size_t bucket = pair_hash(p->id) & (old_size - 1);

		p->hnext = cs->pair_index[bucket];
		cs->pair_index[bucket] = p;
	}
	return p;
}

void
cs_session_free(struct cs_session *x)
{
	if (!x)
		return;
	s2s_chain_wipe(&x->chain[0]);
	s2s_chain_wipe(&x->chain[1]);
	s2s_package_cache_clear(&x->cache[0]);
	s2s_package_cache_clear(&x->cache[1]);
	s2s_memzero(x, sizeof(*x));
	free(x);
}

void
cs_pair_free(struct cs_pair *p)
{
	if (!p)
		return;
	cs_session_free(p->sess);
	s2s_memzero(p, sizeof(*p));
	free(p);
}

long
cs_pair_count(struct s2s_cs *cs)
{
	return (long)cs->npairs;
}

long
cs_session_count(struct s2s_cs *cs, bool established_only)
{
	long n = 0;

	for (struct cs_pair *p = cs->pairs; p; p = p->next)
		if (p->sess && (!established_only ||
				p->sess->state == CS_SESS_ESTABLISHED))
			n++;
	return n;
}

/* ---- sending ------------------------------------------------------------ */

enum s2s_err
cs_send(struct s2s_cs *cs, const char *id, const struct s2s_msg *m,
	const struct s2s_key *to)
{
	char topic[256];
	uint8_t *buf = NULL;
	size_t len = 0;
	enum s2s_err rc;

	if (!cs_topic_inbox(cs->opt.topic_root, id, topic, sizeof(topic)))
		return S2S_ERR_INVAL;
	rc = s2s_msg_encode(m, to, NULL, &buf, &len);
	if (rc != S2S_OK) {
		cs_log(MOSQ_LOG_ERR, "cannot encode %s for '%s': %s",
		       s2s_msg_type_name(m->type), id, s2s_strerror(rc));
		return rc;
	}
	if (len > INT32_MAX ||
	    mosquitto_broker_publish_copy(NULL, topic, (int)len, buf, 1, false,
					  NULL) != MOSQ_ERR_SUCCESS)
		rc = S2S_ERR_MQTT;
	else    /* the device on another broker of a cluster */
		cs_cluster_route(cs, id, topic + strlen(cs->opt.topic_root) + 1,
				 buf, len);
	free(buf);
	return rc;
}

void
cs_send_reject(struct s2s_cs *cs, const char *id, uint64_t req_id,
	       int about, enum s2s_err code, uint64_t t, const char *reason)
{
	struct s2s_msg m;

	if (!id || !s2s_id_valid(id))
		return;
	s2s_msg_init(&m, S2S_MSG_REJECT, req_id);
	m.about = (uint8_t)about;
	m.code = code;
	m.session = t;
	snprintf(m.reason, sizeof(m.reason), "%s", reason ? reason :
		 s2s_strerror(code));
	cs_log(MOSQ_LOG_INFO, "reject %s of '%s': %s (%s)",
	       s2s_msg_type_name(about), id, m.reason, s2s_errname(code));
	(void)cs_send(cs, id, &m, NULL);
	s2s_msg_clear(&m);
}

/* The device's public key as a struct s2s_key (destroy it). */
static enum s2s_err
device_key(struct s2s_cs *cs, const char *id, struct s2s_key **out)
{
	struct cs_device_rec rec;
	enum s2s_err rc = cs_store_device_get(cs, id, &rec, NULL, NULL);

	if (rc != S2S_OK)
		return rc;
	if (rec.revoked)
		return S2S_ERR_NOT_FOUND;
	rc = s2s_key_from_public(rec.pub, out);
	/* One of thousands: no 3-4 ms table per device on the broker's
	 * thread (s2s/crypto.h). */
	if (rc == S2S_OK)
		s2s_key_no_table(*out);
	return rc;
}

/* ---- registration --------------------------------------------------------- */

/* Decode the signature image and check it has ink. */
static enum s2s_err
check_signature(const uint8_t *hs, size_t len)
{
	struct s2s_image img = { 0 };
	struct s2s_image_limits lim = { 0 };
	uint8_t *canvas;
	enum s2s_err rc;

	lim.max_width = 2048;
	lim.max_height = 2048;
	lim.max_pixels = S2S_BIO_MAX_PIXELS;
	lim.max_bytes = len;
	/* Scanline bytes inflated and unfiltered, whatever the format: a
	 * 560x220 signature needs at most 0.5 MB even as RGBA, and this
	 * bounds the worst (Paeth) decode on the broker thread. */
	lim.max_raw = 512u * 1024u;
	rc = s2s_image_decode(hs, len, &lim, &img);
	if (rc != S2S_OK)
		return rc == S2S_ERR_TOO_BIG ? rc : S2S_ERR_IMAGE;
	canvas = malloc(S2S_BIO_CANVAS_H * S2S_BIO_CANVAS_W);
	if (!canvas) {
		s2s_image_free(&img);
		return S2S_ERR_NOMEM;
	}
	rc = s2s_bio_normalize(&img, canvas);
	s2s_memzero(canvas, S2S_BIO_CANVAS_H * S2S_BIO_CANVAS_W);
	free(canvas);
	s2s_image_free(&img);
	return rc;
}

/* ---- names no device may take ------------------------------------------- */

static bool
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list && *list) {
		size_t l = strcspn(list, ",");

		if (l == n && memcmp(list, name, n) == 0)
			return true;
		list += l;
		if (*list == ',')
			list++;
	}
	return false;
}

/* Is name a user of a Mosquitto password file ("user:hash" lines)? */
static bool
in_password_file(const char *path, const char *name)
{
	char line[1024];
	size_t n = strlen(name), lines = 0;
	bool found = false;
	FILE *f;

	if (!path)
		return false;
	f = fopen(path, "r");
	if (!f) {
		/* Fail closed: an unreadable list reserves every name. */
		cs_log(MOSQ_LOG_WARNING, "reserved_users_file %s: cannot read;"
		       " refusing registrations", path);
		return true;
	}
	while (!found && lines++ < 100000 && fgets(line, sizeof(line), f))
		found = strncmp(line, name, n) == 0 && line[n] == ':';
	fclose(f);
	return found;
}

bool
cs_name_reserved(struct s2s_cs *cs, const char *id)
{
	const char *readers = cs->opt.feed_readers;

	return strcmp(id, cs->opt.cs_id) == 0 ||
	       strcmp(id, cs->opt.admin_user) == 0 ||
	       strncmp(id, CS_BRIDGE_USER_PREFIX,
		       strlen(CS_BRIDGE_USER_PREFIX)) == 0 ||
	       (readers && strcmp(readers, "any") != 0 &&
		in_list(readers, id)) ||
	       in_list(cs->opt.reserved_users, id) ||
	       in_password_file(cs->opt.reserved_users_file, id);
}

void
cs_on_register(struct s2s_cs *cs, const char *client_id, const uint8_t *buf,
	       size_t len)
{
	struct s2s_msg m, r;
	struct cs_device_rec rec;
	enum s2s_msg_type type = 0;
	uint64_t req = 0;
	bool known = false, coded;
	const char *why = NULL;
	enum s2s_err rc;

	if (!client_id || !s2s_id_valid(client_id)) {
		cs->stats.register_rejected++;
		cs_log(MOSQ_LOG_NOTICE, "REGISTER from client '%s' dropped: "
		       "client id is not a valid device id",
		       client_id ? client_id : "");
		return;
	}
	(void)s2s_msg_peek(buf, len, &type, &req);
	rc = s2s_msg_decode(buf, len, cs->cs_key, cs->opt.max_signature, &m);
	if (rc == S2S_OK && m.type != S2S_MSG_REGISTER) {
		rc = S2S_ERR_FORMAT;
		why = "not a REGISTER message";
	}
	if (rc != S2S_OK)
		goto reject;
	req = m.req_id;
	if (strcmp(m.id, client_id) != 0) {
		rc = S2S_ERR_DENIED;
		why = "the device id differs from the MQTT client id";
		goto reject;
	}
	if (cs_name_reserved(cs, m.id)) {
		rc = S2S_ERR_DENIED;
		why = "this id is reserved";
		goto reject;
	}
	rc = cs_store_device_get(cs, m.id, &rec, NULL, NULL);
	if (rc == S2S_OK) {
		known = true;
	} else if (rc != S2S_ERR_NOT_FOUND) {
		goto reject;
	}
	if (known && !rec.revoked &&
	    s2s_ct_equal(rec.pub, m.pub, S2S_P256_PUB_LEN))
		goto registered;    /* idempotent */
	/*
	 * A valid enrolment code admits: any id under `enrollment code`, a
	 * new key for a known id (key rotation) and a revoked id coming back.
	 * Open enrolment admits only unknown ids without a code.
	 */
	coded = m.code_len > 0 &&
		cs_store_code_check(cs, m.id, m.code_bytes, m.code_len,
				    cs_now_s()) == S2S_OK;
	if (!coded && known) {
		rc = S2S_ERR_DENIED;
		why = rec.revoked ? "this id was revoked (a new enrolment code "
		      "lets it register again)" : "this id is registered with "
		      "another key (a new key needs a new enrolment code)";
		goto reject;
	}
	if (!coded && !cs->opt.enroll_open) {
		rc = S2S_ERR_DENIED;
		why = "no valid enrolment code for this id";
		goto reject;
	}
	rc = check_signature(m.hs, m.hs_len);
	if (rc != S2S_OK) {
		why = rc == S2S_ERR_NO_INK ? "the signature image has no ink" :
		      "the signature is not a usable PNG or PGM image";
		goto reject;
	}
	rc = cs_store_device_put(cs, m.id, m.pub, m.hs, m.hs_len, coded);
	if (rc == S2S_ERR_TOO_BIG)
		why = "too many open enrolments are pending; try later";
	if (rc != S2S_OK)
		goto reject;
	cs_log(MOSQ_LOG_NOTICE, "%s device '%s'", !known ? "registered" :
	       rec.revoked ? "re-admitted" : "new key for", m.id);
	cs->stats_dirty = true;
registered:
	cs->stats.registered++;
	s2s_msg_init(&r, S2S_MSG_REGISTERED, req);
	snprintf(r.id_cs, sizeof(r.id_cs), "%s", cs->opt.cs_id);
	snprintf(r.id, sizeof(r.id), "%s", m.id);
	s2s_key_public(cs->cs_key, r.pub);
	(void)cs_send(cs, client_id, &r, NULL);
	s2s_msg_clear(&r);
	s2s_msg_clear(&m);
	return;
reject:
	cs->stats.register_rejected++;
	cs_send_reject(cs, client_id, req, S2S_MSG_REGISTER, rc, 0, why);
	s2s_msg_clear(&m);
}

/* ---- pairing --------------------------------------------------------------- */

static enum s2s_err
load_image(struct s2s_cs *cs, const char *id, struct s2s_image *img)
{
	struct cs_device_rec rec;
	uint8_t *hs = NULL;
	size_t hs_len = 0;
	enum s2s_err rc;

	rc = cs_store_device_get(cs, id, &rec, &hs, &hs_len);
	if (rc == S2S_OK)
		rc = s2s_image_decode(hs, hs_len, NULL, img);
	if (hs) {
		s2s_memzero(hs, hs_len);
		free(hs);
	}
	return rc;
}

static enum s2s_err
send_paired(struct s2s_cs *cs, const struct cs_pair *p, int i,
	    uint64_t req_id, uint8_t status, int profile)
{
	struct s2s_msg m;
	struct s2s_key *k = NULL;
	enum s2s_err rc;

	rc = device_key(cs, p->m[i], &k);
	if (rc != S2S_OK)
		return rc;
	s2s_msg_init(&m, S2S_MSG_PAIRED, req_id);
	m.status = status;
	snprintf(m.pair, sizeof(m.pair), "%s", p->id);
	snprintf(m.peer, sizeof(m.peer), "%s", p->m[1 - i]);
	m.profile = (uint8_t)profile;
	if (status == 0) {
		memcpy(m.shk, p->shk, p->shk_len);
		m.shk_len = p->shk_len;
	}
	rc = cs_send(cs, p->m[i], &m, k);
	s2s_msg_clear(&m);
	s2s_key_destroy(k);
	return rc;
}

static void
handle_pair(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	char pid[CS_PAIR_BUF];
	struct cs_pair *p, tmp;
	struct cs_device_rec rec;
	struct s2s_image ia = { 0 }, ib = { 0 };
	uint16_t *rv = NULL;
	uint64_t peer_req = 0;
	int peer_profile = 0, mine = m->profile, chosen;
	unsigned si, se;
	size_t shk_len = 0;
	enum s2s_err rc;

	if (!s2s_id_valid(m->peer) || strcmp(m->peer, me) == 0) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_PAIR, S2S_ERR_INVAL, 0,
			       "bad peer id");
		return;
	}
	if (mine != 0 && mine != S2S_PROFILE_PAPER &&
	    mine != S2S_PROFILE_HARDENED) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_PAIR,
			       S2S_ERR_PROFILE, 0, "unknown profile");
		return;
	}
	if (cs_store_device_get(cs, m->peer, &rec, NULL, NULL) != S2S_OK ||
	    rec.revoked) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_PAIR,
			       S2S_ERR_NOT_FOUND, 0, "peer is not registered");
		return;
	}
	if (s2s_pair_id(me, m->peer, pid) != S2S_OK)
		return;
	p = cs_pair_get(cs, pid, me);
	if (p) {            /* pairing twice is idempotent */
		(void)send_paired(cs, p, cs_pair_member(p, me), m->req_id, 0,
				  p->profile);
		return;
	}
	rc = cs_store_pairreq_put(cs, me, m->peer, mine, m->req_id);
	if (rc != S2S_OK)
		goto reject;
	if (cs_store_pairreq_get(cs, m->peer, me, &peer_profile, &peer_req) !=
	    S2S_OK) {
		/* Pending: answer with status 1 and no secret. */
		memset(&tmp, 0, sizeof(tmp));
		snprintf(tmp.id, sizeof(tmp.id), "%s", pid);
		(void)cs_pair_split(pid, tmp.m[0], tmp.m[1]);
		(void)send_paired(cs, &tmp, cs_pair_member(&tmp, me),
				  m->req_id, 1, mine ? mine :
				  (int)cs->opt.profile);
		return;
	}
	if (mine && peer_profile && mine != peer_profile) {
		rc = S2S_ERR_PROFILE;
		cs_send_reject(cs, me, m->req_id, S2S_MSG_PAIR, rc, 0,
			       "the peer asked for another profile");
		return;
	}
	chosen = mine ? mine : peer_profile ? peer_profile :
		 (int)cs->opt.profile;

	/* Rv = Fx(HS_me, HS_peer); Shk = a slice of it. */
	rv = calloc(S2S_RV_LEN, sizeof(*rv));
	if (!rv) {
		rc = S2S_ERR_NOMEM;
		goto reject;
	}
	rc = load_image(cs, me, &ia);
	if (rc == S2S_OK)
		rc = load_image(cs, m->peer, &ib);
	if (rc == S2S_OK)
		rc = s2s_bio_features(&ia, &ib, rv);
	s2s_image_free(&ia);
	s2s_image_free(&ib);
	if (rc != S2S_OK)
		goto reject;
	p = cs_pair_new(cs, me, m->peer);
	if (!p) {
		rc = S2S_ERR_NOMEM;
		goto reject;
	}
	p->profile = (enum s2s_profile)chosen;
	rc = s2s_slice_pick(p->profile, S2S_SLICE_SHK, rv, &si, &se, p->shk,
			    &shk_len);
	p->shk_len = (uint8_t)shk_len;
	if (rc == S2S_OK && shk_len > S2S_SHK_MAX)
		rc = S2S_ERR_CRYPTO;
	if (rc == S2S_OK)
		rc = cs_store_pair_put(cs, p, rv);
	if (rc == S2S_ERR_REPLAY) {
		/* Another broker paired them at the same moment: its pair
		 * (and Shk) is the one; answer with it. */
		cs_pair_unlink(cs, p);
		cs_pair_free(p);
		s2s_memzero(rv, S2S_RV_LEN * sizeof(*rv));
		free(rv);
		p = cs_pair_get(cs, pid, me);
		if (p)
			(void)send_paired(cs, p, cs_pair_member(p, me),
					  m->req_id, 0, p->profile);
		return;
	}
	if (rc != S2S_OK) {
		cs_pair_unlink(cs, p);
		cs_pair_free(p);
		goto reject;
	}
	s2s_memzero(rv, S2S_RV_LEN * sizeof(*rv));
	free(rv);
	cs_log(MOSQ_LOG_NOTICE, "paired '%s' (%s)", p->id,
	       s2s_profile_name(p->profile));
	cs->stats_dirty = true;
	(void)send_paired(cs, p, cs_pair_member(p, me), m->req_id, 0,
			  p->profile);
	(void)send_paired(cs, p, cs_pair_member(p, m->peer), peer_req, 0,
			  p->profile);
	return;
reject:
	if (rv) {
		s2s_memzero(rv, S2S_RV_LEN * sizeof(*rv));
		free(rv);
	}
	cs_send_reject(cs, me, m->req_id, S2S_MSG_PAIR, rc, 0, NULL);
}

/* ---- sessions -------------------------------------------------------------- */

static void
send_ended(struct s2s_cs *cs, const struct cs_pair *p, int i, uint64_t t,
	   uint64_t req_id)
{
	struct s2s_msg m;

	s2s_msg_init(&m, S2S_MSG_ENDED, req_id);
	snprintf(m.peer, sizeof(m.peer), "%s", p->m[1 - i]);
	m.session = t;
	(void)cs_send(cs, p->m[i], &m, NULL);
	s2s_msg_clear(&m);
}

void
cs_session_end(struct s2s_cs *cs, struct cs_pair *p, bool notify,
	       const char *why)
{
	struct cs_session *x = p->sess;

	if (!x)
		return;
	(void)cs_store_session_cas(cs, p, NULL, 0, 0);
	if (notify) {
		send_ended(cs, p, 0, x->t, 0);
		send_ended(cs, p, 1, x->t, 0);
	}
	cs_log(MOSQ_LOG_INFO, "session of pair '%s' ended: %s", p->id,
	       why ? why : "ended");
	p->sess = NULL;
	cs_session_free(x);
	cs->stats_dirty = true;
}

void
cs_pair_remove(struct s2s_cs *cs, struct cs_pair *p)
{
	cs_session_end(cs, p, true, "pair removed");
	(void)cs_store_pair_delete(cs, p->id);
	cs_pair_unlink(cs, p);
	cs_pair_free(p);
	cs->stats_dirty = true;
}

/* Send NEG_KEYS (step 1) to member i. */
static enum s2s_err
send_keys(struct s2s_cs *cs, const struct cs_pair *p, int i, uint64_t req)
{
	const struct cs_session *x = p->sess;
	struct s2s_key *k = NULL;
	struct s2s_msg m;
	enum s2s_err rc;

	rc = device_key(cs, p->m[i], &k);
	if (rc != S2S_OK)
		return rc;
	s2s_msg_init(&m, S2S_MSG_NEG_KEYS, req);
	m.step = 1;
	m.session = x->t;
	memcpy(m.nonce, x->nonce[i], S2S_MSG_NONCE_LEN);
	m.role = i == x->sds ? S2S_ROLE_SDS : S2S_ROLE_SDR;
	m.profile = (uint8_t)p->profile;
	snprintf(m.id_cs, sizeof(m.id_cs), "%s", cs->opt.cs_id);
	snprintf(m.id_self, sizeof(m.id_self), "%s", p->m[i]);
	snprintf(m.id_peer, sizeof(m.id_peer), "%s", p->m[1 - i]);
	memcpy(m.skcs, x->skcs, S2S_SKCS_LEN);
	memcpy(m.sk, x->sk, x->sk_len);
	m.sk_len = x->sk_len;
	rc = cs_send(cs, p->m[i], &m, k);
	s2s_msg_clear(&m);
	s2s_key_destroy(k);
	return rc;
}

static void
handle_session(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	char pid[CS_PAIR_BUF];
	struct cs_pair *p;
	struct cs_session *x;
	uint16_t *rv = NULL;
	unsigned si, se;
	size_t sk_len = 0;
	enum s2s_err rc;

	if (!s2s_id_valid(m->peer) || s2s_pair_id(me, m->peer, pid) != S2S_OK ||
	    !(p = cs_pair_get(cs, pid, me))) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_SESSION,
			       S2S_ERR_NOT_FOUND, 0, "not paired with this peer");
		return;
	}
	cs_session_refresh(cs, p);
	cs_session_end(cs, p, true, "replaced by a new session");
	x = calloc(1, sizeof(*x));
	rv = calloc(S2S_RV_LEN, sizeof(*rv));
	if (!x || !rv) {
		rc = S2S_ERR_NOMEM;
		goto fail;
	}
	do {
		rc = s2s_random(&x->t, sizeof(x->t));
	} while (rc == S2S_OK && x->t == 0);
	if (rc == S2S_OK)
		rc = s2s_random(x->nonce, sizeof(x->nonce));
	if (rc == S2S_OK)
		rc = s2s_skcs_generate(x->skcs);
	if (rc == S2S_OK)
		rc = cs_store_pair_rv(cs, p->id, rv);
	if (rc == S2S_OK)
		rc = s2s_slice_pick(p->profile, S2S_SLICE_SK, rv, &si, &se,
				    x->sk, &sk_len);
	if (rc == S2S_OK && sk_len > S2S_SK_MAX)
		rc = S2S_ERR_CRYPTO;
	if (rc != S2S_OK)
		goto fail;
	s2s_memzero(rv, S2S_RV_LEN * sizeof(*rv));
	free(rv);
	rv = NULL;
	x->sk_len = (uint8_t)sk_len;
	x->sds = cs_pair_member(p, me);
	x->sds_req_id = m->req_id;
	x->state = CS_SESS_KEYS_SENT;
	x->deadline_ms = cs_mono_ms() +
			 1000 * (int64_t)cs->opt.negotiation_timeout;
	p->sess = x;
	cs->stats_dirty = true;
	/* In the store before step 1 leaves: step 2 may reach any broker. */
	rc = cs_store_session_cas(cs, p, x, 0, 0);
	if (rc != S2S_OK) {
		p->sess = NULL;
		goto fail;
	}
	rc = send_keys(cs, p, x->sds, m->req_id);
	if (rc == S2S_OK)
		rc = send_keys(cs, p, 1 - x->sds, 0);
	if (rc != S2S_OK) {
		cs_session_end(cs, p, false, "cannot send keys");
		cs_send_reject(cs, me, m->req_id, S2S_MSG_SESSION, rc, 0, NULL);
	}
	return;
fail:
	if (rv) {
		s2s_memzero(rv, S2S_RV_LEN * sizeof(*rv));
		free(rv);
	}
	cs_session_free(x);
	cs_send_reject(cs, me, m->req_id, S2S_MSG_SESSION, rc, 0, NULL);
}

/*
 * The checks of steps 2 and 4 that need the session secrets, all in
 * constant time with respect to the secrets: the nonce of the sender, the
 * ids, xor_cycle(blob, Sk) == SkCS^T and Shk.
 */
static bool
step_authentic(struct s2s_cs *cs, const struct cs_pair *p,
	       const struct s2s_msg *m, int sender)
{
	const struct cs_session *x = p->sess;
	uint8_t skcs[S2S_SKCS_LEN];
	bool ok = true;

	ok &= strcmp(m->id_cs, cs->opt.cs_id) == 0;
	ok &= strcmp(m->id_sds, p->m[x->sds]) == 0;
	ok &= strcmp(m->id_sdr, p->m[1 - x->sds]) == 0;
	ok &= s2s_ct_equal(m->nonce, x->nonce[sender], S2S_MSG_NONCE_LEN);
	s2s_xor_cycle(skcs, m->blob, S2S_SKCS_LEN, x->sk, x->sk_len);
	ok &= s2s_ct_equal(skcs, x->skcs, S2S_SKCS_LEN);
	ok &= m->shk_len == p->shk_len;
	ok &= s2s_ct_equal(m->shk, p->shk,
			   m->shk_len < p->shk_len ? m->shk_len : p->shk_len);
	S2S_WIPE(skcs);
	return ok;
}

/*
 * Common gatekeeping of NEG_SDS / NEG_SDR: the pair, the session T and the
 * state.  Returns the pair, or NULL after sending the REJECT.
 */
static struct cs_pair *
neg_lookup(struct s2s_cs *cs, const char *me, const struct s2s_msg *m,
	   bool sds_step, enum cs_sess_state want)
{
	char pid[CS_PAIR_BUF];
	struct cs_pair *p = NULL;
	const struct cs_session *x;
	int about = sds_step ? S2S_MSG_NEG_SDS : S2S_MSG_NEG_SDR;
	const char *claimed = sds_step ? m->id_sds : m->id_sdr;

	if (strcmp(claimed, me) != 0) {
		cs_send_reject(cs, me, m->req_id, about, S2S_ERR_AUTH,
			       m->session, "step sent by the wrong device");
		return NULL;
	}
	if (s2s_pair_id(m->id_sds, m->id_sdr, pid) == S2S_OK)
		p = cs_pair_get(cs, pid, me);
	if (p)
		cs_session_refresh(cs, p);  /* step 1 may have left elsewhere */
	x = p ? p->sess : NULL;
	if (!x || x->t != m->session) {
		cs_send_reject(cs, me, m->req_id, about, S2S_ERR_SESSION,
			       m->session, "unknown or ended session");
		return NULL;
	}
	if (cs_pair_member(p, me) != (sds_step ? x->sds : 1 - x->sds)) {
		cs_send_reject(cs, me, m->req_id, about, S2S_ERR_AUTH,
			       m->session, "reflected step");
		return NULL;
	}
	if (x->state != want) {
		cs_send_reject(cs, me, m->req_id, about,
			       x->state > want ? S2S_ERR_REPLAY : S2S_ERR_STATE,
			       m->session, x->state > want ?
			       "step already done (replay)" :
			       "step out of order");
		return NULL;
	}
	return p;
}

static void
neg_fail(struct s2s_cs *cs, struct cs_pair *p, const char *me,
	 const struct s2s_msg *m, int about, enum s2s_err code,
	 const char *why)
{
	cs->stats.negotiation_rejected++;
	cs_send_reject(cs, me, m->req_id, about, code, m->session, why);
	cs_session_end(cs, p, true, why);
}

static void
handle_neg_sds(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	struct cs_pair *p;
	struct cs_session *x;
	struct s2s_key *k = NULL;
	struct s2s_msg f;
	int sdr;
	enum s2s_err rc;

	p = neg_lookup(cs, me, m, true, CS_SESS_KEYS_SENT);
	if (!p)
		return;
	x = p->sess;
	sdr = 1 - x->sds;
	if (!step_authentic(cs, p, m, x->sds)) {
		neg_fail(cs, p, me, m, S2S_MSG_NEG_SDS, S2S_ERR_AUTH,
			 "step 2 does not authenticate");
		return;
	}
	memcpy(x->blob_sds, m->blob, S2S_SKCS_LEN);
	x->sds_req_id = m->req_id;
	rc = device_key(cs, p->m[sdr], &k);
	if (rc != S2S_OK) {
		neg_fail(cs, p, me, m, S2S_MSG_NEG_SDS, rc, "peer key");
		return;
	}
	s2s_msg_init(&f, S2S_MSG_NEG_FWD, 0);
	f.step = 3;
	f.session = x->t;
	memcpy(f.nonce, x->nonce[sdr], S2S_MSG_NONCE_LEN);
	memcpy(f.blob, x->blob_sds, S2S_SKCS_LEN);
	snprintf(f.id_cs, sizeof(f.id_cs), "%s", cs->opt.cs_id);
	snprintf(f.id_sds, sizeof(f.id_sds), "%s", p->m[x->sds]);
	snprintf(f.id_sdr, sizeof(f.id_sdr), "%s", p->m[sdr]);
	memcpy(f.shk, p->shk, p->shk_len);
	f.shk_len = p->shk_len;
	x->state = CS_SESS_FWD_SENT;
	rc = cs_store_session_cas(cs, p, x, x->t, CS_SESS_KEYS_SENT);
	if (rc != S2S_OK) {
		/* Another broker took this step first (or the store failed):
		 * nothing changed here; the cache follows the store. */
		s2s_msg_clear(&f);
		s2s_key_destroy(k);
		cs_session_refresh(cs, p);
		cs_send_reject(cs, me, m->req_id, S2S_MSG_NEG_SDS, rc ==
			       S2S_ERR_STATE ? S2S_ERR_REPLAY : rc, m->session,
			       "step already done (replay)");
		return;
	}
	rc = cs_send(cs, p->m[sdr], &f, k);
	s2s_msg_clear(&f);
	s2s_key_destroy(k);
	if (rc != S2S_OK)
		neg_fail(cs, p, me, m, S2S_MSG_NEG_SDS, rc, "cannot forward");
}

static void
handle_neg_sdr(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	struct cs_pair *p;
	struct cs_session *x;
	struct s2s_key *k = NULL;
	struct s2s_msg d;
	int sds;
	enum s2s_err rc;

	p = neg_lookup(cs, me, m, false, CS_SESS_FWD_SENT);
	if (!p)
		return;
	x = p->sess;
	sds = x->sds;
	if (!step_authentic(cs, p, m, 1 - sds)) {
		neg_fail(cs, p, me, m, S2S_MSG_NEG_SDR, S2S_ERR_AUTH,
			 "step 4 does not authenticate");
		return;
	}
	if (!m->accept) {
		cs->stats.negotiation_rejected++;
		cs_send_reject(cs, p->m[sds], x->sds_req_id, S2S_MSG_SESSION,
			       S2S_ERR_REJECTED, x->t, "the peer refused");
		cs_session_end(cs, p, true, "refused by the peer");
		return;
	}
	for (int i = 0; i < 2; i++) {
		rc = s2s_chain_init(&x->chain[i], p->profile, x->t, x->skcs,
				    x->sk, x->sk_len, p->shk, p->shk_len);
		if (rc != S2S_OK) {
			neg_fail(cs, p, me, m, S2S_MSG_NEG_SDR, rc,
				 "cannot start the chains");
			return;
		}
	}
	x->state = CS_SESS_ESTABLISHED;
	s2s_memzero(x->blob_sds, sizeof(x->blob_sds));
	rc = cs_store_session_cas(cs, p, x, x->t, CS_SESS_FWD_SENT);
	if (rc == S2S_ERR_STATE) {
		cs_session_refresh(cs, p);
		cs_send_reject(cs, me, m->req_id, S2S_MSG_NEG_SDR,
			       S2S_ERR_REPLAY, m->session,
			       "step already done (replay)");
		return;
	}
	if (rc == S2S_OK)
		rc = device_key(cs, p->m[sds], &k);
	if (rc != S2S_OK) {
		x->state = CS_SESS_FWD_SENT;    /* nothing stored */
		neg_fail(cs, p, me, m, S2S_MSG_NEG_SDR, rc,
			 "cannot store the session");
		return;
	}
	s2s_msg_init(&d, S2S_MSG_NEG_DONE, x->sds_req_id);
	d.step = 5;
	d.session = x->t;
	memcpy(d.nonce, x->nonce[sds], S2S_MSG_NONCE_LEN);
	memcpy(d.blob, m->blob, S2S_SKCS_LEN);
	snprintf(d.id_cs, sizeof(d.id_cs), "%s", cs->opt.cs_id);
	snprintf(d.id_sds, sizeof(d.id_sds), "%s", p->m[sds]);
	snprintf(d.id_sdr, sizeof(d.id_sdr), "%s", p->m[1 - sds]);
	memcpy(d.shk, p->shk, p->shk_len);
	d.shk_len = p->shk_len;
	(void)cs_send(cs, p->m[sds], &d, k);
	s2s_msg_clear(&d);
	s2s_key_destroy(k);
	cs->stats.negotiated++;
	cs->stats_dirty = true;
	cs_log(MOSQ_LOG_NOTICE, "session of pair '%s' established", p->id);
}

/* ---- fetch and end ------------------------------------------------------------ */

struct fetch_acc {
	uint8_t *buf;
	size_t len;
	uint16_t count;
};

static enum s2s_err
fetch_one(void *arg, uint64_t seq, const uint8_t *pkg, size_t len)
{
	struct fetch_acc *a = arg;

	(void)seq;
	return s2s_msg_fetched_append(&a->buf, &a->len, &a->count, pkg, len);
}

/*
 * FETCH pacing (docs/PROTOCOL.md, "Fetch"; issue 10, class 3): a
 * FETCHED reply carries at most plugin_opt_fetch_reply_bytes of packages,
 * and the replies a device has not yet acknowledged (a v1.1 FETCH names
 * the ack of the newest FETCHED it read) may add up to at most
 * plugin_opt_fetch_client_bytes: beyond that the CS refuses (too_big)
 * until the device reads.  A device that sends FETCHes without reading
 * its socket therefore holds at most that much of the broker's memory
 * (plus one package).  Acks are random, so they cannot be made up without
 * reading the reply.  The state is per device and goes with its
 * connection (cs_fetch_forget).
 */
#define FETCH_RING 16

struct cs_fetch_client {
	struct cs_fetch_client *next;
	char id[CS_ID_BUF];
	uint64_t tok[FETCH_RING];       /* unacknowledged replies, in order */
	size_t bytes[FETCH_RING];
	unsigned head, n;
	size_t outstanding;
};

static struct cs_fetch_client *
fetch_client(struct s2s_cs *cs, const char *id, bool create)
{
	struct cs_fetch_client *f;

	for (f = cs->fetch_clients; f; f = f->next)
		if (strcmp(f->id, id) == 0)
			return f;
	if (!create || !(f = calloc(1, sizeof(*f))))
		return NULL;
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->next = cs->fetch_clients;
	cs->fetch_clients = f;
	return f;
}

/* The device read every reply up to the one with this ack. */
static void
fetch_acked(struct cs_fetch_client *f, uint64_t ack)
{
	for (unsigned k = 0; ack && k < f->n; k++) {
		if (f->tok[(f->head + k) % FETCH_RING] != ack)
			continue;
		for (unsigned j = 0; j <= k; j++) {
			f->outstanding -= f->bytes[f->head];
			f->head = (f->head + 1) % FETCH_RING;
		}
		f->n -= k + 1;
		return;
	}
}

void
cs_fetch_forget(struct s2s_cs *cs, const char *id)
{
	struct cs_fetch_client **pp = &cs->fetch_clients;

	if (!id)
		return;
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			struct cs_fetch_client *f = *pp;

			*pp = f->next;
			free(f);
			return;
		}
	}
}

void
cs_fetch_free_all(struct s2s_cs *cs)
{
	while (cs->fetch_clients) {
		struct cs_fetch_client *f = cs->fetch_clients;

		cs->fetch_clients = f->next;
		free(f);
	}
}

static void
handle_fetch(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	char pid[CS_PAIR_BUF];
	struct cs_pair *p = NULL;
	struct fetch_acc acc = { NULL, 0, 0 };
	struct cs_fetch_client *f;
	struct s2s_msg r;
	uint64_t t = m->session;
	size_t budget;
	enum s2s_err rc;

	if (s2s_id_valid(m->peer) && s2s_pair_id(me, m->peer, pid) == S2S_OK)
		p = cs_pair_get(cs, pid, me);
	if (!p) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH,
			       S2S_ERR_NOT_FOUND, t, "not paired with this peer");
		return;
	}
	if (cs_pair_member(p, m->sender) < 0) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH, S2S_ERR_INVAL,
			       t, "the sender is not a member of the pair");
		return;
	}
	if (t == 0) {
		cs_session_refresh(cs, p);
		if (!p->sess || p->sess->state != CS_SESS_ESTABLISHED) {
			cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH,
				       S2S_ERR_SESSION, 0, "no current session");
			return;
		}
		t = p->sess->t;
	}
	f = fetch_client(cs, me, true);
	if (!f) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH,
			       S2S_ERR_NOMEM, t, NULL);
		return;
	}
	if (m->has_ack)
		fetch_acked(f, m->ack);
	if (f->outstanding >= cs->opt.fetch_client_bytes ||
	    f->n == FETCH_RING) {
		cs->stats.fetch_paced++;
		cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH,
			       S2S_ERR_TOO_BIG, t, "earlier FETCHED replies "
			       "are unread: read them first (and send the "
			       "ack, protocol v1.1)");
		return;
	}
	budget = cs->opt.fetch_client_bytes - f->outstanding;
	if (budget > cs->opt.fetch_reply_bytes)
		budget = cs->opt.fetch_reply_bytes;
	rc = cs_store_fetch(cs, p->id, m->sender, t, m->from_seq, m->to_seq,
			    S2S_MSG_FETCH_MAX, budget, fetch_one, &acc);
	if (rc != S2S_OK) {
		free(acc.buf);
		cs_send_reject(cs, me, m->req_id, S2S_MSG_FETCH, rc, t, NULL);
		return;
	}
	s2s_msg_init(&r, S2S_MSG_FETCHED, m->req_id);
	r.session = t;
	r.count = acc.count;
	r.packages = acc.buf;
	r.packages_len = acc.len;
	if (m->has_ack) {
		r.has_ack = true;
		while (r.ack == 0)
			if (s2s_random(&r.ack, sizeof(r.ack)) != S2S_OK)
				break;
	}
	{
		unsigned k = (f->head + f->n) % FETCH_RING;

		f->tok[k] = r.ack;
		f->bytes[k] = acc.len + 64;
		f->outstanding += f->bytes[k];
		f->n++;
	}
	(void)cs_send(cs, me, &r, NULL);
	r.packages = NULL;
	s2s_msg_clear(&r);
	free(acc.buf);
}

static void
handle_end(struct s2s_cs *cs, const char *me, const struct s2s_msg *m)
{
	char pid[CS_PAIR_BUF];
	struct cs_pair *p = NULL;

	if (s2s_id_valid(m->peer) && s2s_pair_id(me, m->peer, pid) == S2S_OK)
		p = cs_pair_get(cs, pid, me);
	if (p)
		cs_session_refresh(cs, p);
	if (!p || !p->sess) {
		cs_send_reject(cs, me, m->req_id, S2S_MSG_END, S2S_ERR_SESSION,
			       0, "no session with this peer");
		return;
	}
	send_ended(cs, p, cs_pair_member(p, me), p->sess->t, m->req_id);
	send_ended(cs, p, 1 - cs_pair_member(p, me), p->sess->t, 0);
	cs_session_end(cs, p, false, "ended by a member");
}

void
cs_on_request(struct s2s_cs *cs, const char *id, const uint8_t *buf,
	      size_t len)
{
	struct s2s_msg m;
	enum s2s_msg_type type = 0;
	uint64_t req = 0;
	enum s2s_err rc;

	(void)s2s_msg_peek(buf, len, &type, &req);
	rc = s2s_msg_decode(buf, len, cs->cs_key, 1, &m);
	if (rc != S2S_OK) {
		cs->stats.control_rejected++;
		cs_send_reject(cs, id, req, type, rc, 0,
			       rc == S2S_ERR_AUTH ? "cannot decrypt" :
			       "malformed request");
		s2s_msg_clear(&m);
		return;
	}
	switch (m.type) {
	case S2S_MSG_PAIR:
		handle_pair(cs, id, &m);
		break;
	case S2S_MSG_SESSION:
		handle_session(cs, id, &m);
		break;
	case S2S_MSG_NEG_SDS:
		handle_neg_sds(cs, id, &m);
		break;
	case S2S_MSG_NEG_SDR:
		handle_neg_sdr(cs, id, &m);
		break;
	case S2S_MSG_FETCH:
		handle_fetch(cs, id, &m);
		break;
	case S2S_MSG_END:
		handle_end(cs, id, &m);
		break;
	default:
		cs->stats.control_rejected++;
		cs_send_reject(cs, id, m.req_id, m.type, S2S_ERR_FORMAT, 0,
			       "not a request type on this topic");
		break;
	}
	s2s_msg_clear(&m);
}

void
cs_tick(struct s2s_cs *cs, int64_t now_ms)
{
	for (struct cs_pair *p = cs->pairs; p; p = p->next) {
		struct cs_session *x = p->sess;

		if (!x || x->state == CS_SESS_ESTABLISHED ||
		    now_ms < x->deadline_ms)
			continue;
		/* Only the broker that removes it from the store says so. */
		if (cs_store_session_cas(cs, p, NULL, x->t, x->state) !=
		    S2S_OK) {
			p->sess = NULL;
			cs_session_free(x);
			continue;
		}
		cs->stats.negotiation_rejected++;
		cs_send_reject(cs, p->m[x->sds], x->sds_req_id,
			       S2S_MSG_SESSION, S2S_ERR_TIMEOUT, x->t,
			       "negotiation timed out");
		cs_send_reject(cs, p->m[1 - x->sds], 0, S2S_MSG_SESSION,
			       S2S_ERR_TIMEOUT, x->t, "negotiation timed out");
		cs_session_end(cs, p, false, "negotiation timed out");
	}
}
