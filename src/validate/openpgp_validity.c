/*
 * Which keys and User IDs of an OpenPGP key count at a given time, from
 * their self-signatures (RFC 9580 sections 5.2.1 and 10.1), and what a
 * User ID names.
 *
 * - The primary key needs a valid self-signature (User ID certification
 *   or direct key) and no valid key revocation; it expires at creation +
 *   the key expiration time of its newest self-signature.
 * - A User ID needs a valid certification and no valid certification
 *   revocation.
 * - A subkey needs a valid binding signature (the newest gives its flags
 *   and expiration) and no valid subkey revocation; its signing flag
 *   counts only with a valid embedded primary key binding signature by
 *   the subkey (section 5.2.1).
 * - Nothing counts when the primary key does not.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "openpgp_int.h"

/* Parse and verify one signature packet on a component. */
static enum tp_pgp_sig_result
check_sig(const struct tp_pgp_pkt *pk, struct tp_pgp_sig *s,
          struct tp_pgp_key *signer, const struct tp_pgp_key *key,
          const struct tp_pgp_key *sub, const tlspool_span *uid, time_t now,
          char *why, size_t whylen)
{
	if (tp_pgp_parse_sig(pk->body, pk->len, s, why, whylen) != 0)
		return TP_PGP_SIG_INVALID;
	return tp_pgp_verify(s, signer, key, sub, uid, now, why, whylen);
}

/* The signature type of a signature packet, or -1. */
static int sig_type(const struct tp_pgp_pkt *pk)
{
	return pk->len >= 2 ? pk->body[1] : -1;
}

static void note(char *dst, size_t len, const char *what, const char *why)
{
	if (dst[0] == '\0')
		snprintf(dst, len, "%s: %.120s", what, why);
}

/* What the valid self-signatures on one key say. */
struct self_sigs {
	time_t best;        /* creation of the newest, -1: none */
	unsigned long kexp; /* its key expiration time, 0: never */
	int revoked;
	int backsig;     /* a subkey: the newest binding is back-signed */
	char first[160]; /* the first invalid one's reason */
};

/* Fold the self-signatures of component c (the primary key or a User
 * ID) into ps. */
static void primary_component(struct tp_pgp *g, const struct tp_pgp_pkt *pk,
                              const struct tp_pgp_comp *c, time_t now,
                              struct self_sigs *ps)
{
	struct tp_pgp_key *k = &g->keys[0];
	tlspool_span uid = {pk[c->index].body, pk[c->index].len};
	int uidc = c->kind == TP_PGP_COMP_UID;
	enum tp_pgp_sig_result ok;
	struct tp_pgp_sig s;
	char why[160];
	size_t j;

	for (j = c->first; j < c->first + c->nsigs; j++) {
		int t = sig_type(&pk[j]);

		if (!uidc && t != TP_PGP_SIGTYPE_DIRECT_KEY &&
		    t != TP_PGP_SIGTYPE_KEY_REVOCATION)
			continue;
		if (uidc && !tp_pgp_is_certification(t))
			continue;
		ok = check_sig(&pk[j], &s, k, k, NULL, uidc ? &uid : NULL, now,
		               why, sizeof(why));
		if (ok != TP_PGP_SIG_VALID) {
			if (ok == TP_PGP_SIG_INVALID &&
			    t != TP_PGP_SIGTYPE_KEY_REVOCATION)
				note(ps->first, sizeof(ps->first),
				     "self-signature", why);
			continue;
		}
		if (t == TP_PGP_SIGTYPE_KEY_REVOCATION) {
			ps->revoked = 1;
			continue;
		}
		/* the newest self-signature speaks for the key; a direct key
		 * signature before User IDs' */
		if (s.created > ps->best ||
		    (t == TP_PGP_SIGTYPE_DIRECT_KEY && s.created == ps->best)) {
			ps->best = s.created;
			ps->kexp = s.key_expires;
			k->info->flags = s.flags;
			k->info->has_flags = s.has_flags;
		}
	}
}

static void eval_primary(struct tp_pgp *g, const struct tp_pgp_packets *pp,
                         time_t now)
{
	tlspool_openpgp_keyinfo *info = g->keys[0].info;
	struct self_sigs ps = {.best = -1};
	size_t i;

	for (i = 0; i < pp->ncomp; i++)
		if (pp->comp[i].kind == TP_PGP_COMP_PRIMARY ||
		    pp->comp[i].kind == TP_PGP_COMP_UID)
			primary_component(g, pp->pkt, &pp->comp[i], now, &ps);
	if (ps.revoked) {
		snprintf(info->reason, sizeof(info->reason),
		         "the primary key is revoked");
		return;
	}
	if (ps.best < 0) {
		snprintf(info->reason, sizeof(info->reason),
		         "no valid self-signature%s%.120s%s",
		         ps.first[0] ? " (" : "", ps.first,
		         ps.first[0] ? ")" : "");
		return;
	}
	if (ps.kexp != 0) {
		info->expires = info->created + (time_t)ps.kexp;
		if (info->expires <= now) {
			snprintf(info->reason, sizeof(info->reason),
			         "the primary key expired");
			return;
		}
	}
	info->valid = 1;
}

static void eval_uid(struct tp_pgp *g, const struct tp_pgp_pkt *pk,
                     const struct tp_pgp_comp *c, tlspool_openpgp_uid *u,
                     time_t now)
{
	struct tp_pgp_key *k = &g->keys[0];
	tlspool_span uid = {pk[c->index].body, pk[c->index].len};
	int certified = 0, revoked = 0;
	enum tp_pgp_sig_result ok;
	char why[160], first[160] = "";
	struct tp_pgp_sig s;
	size_t j;

	snprintf(u->text, sizeof(u->text), "%.*s",
	         (int)(uid.len < 255 ? uid.len : 255), (const char *)uid.data);
	for (j = c->first; j < c->first + c->nsigs; j++) {
		int t = sig_type(&pk[j]);

		if (!tp_pgp_is_certification(t) &&
		    t != TP_PGP_SIGTYPE_CERT_REVOCATION)
			continue;
		ok = check_sig(&pk[j], &s, k, k, NULL, &uid, now, why,
		               sizeof(why));
		if (ok == TP_PGP_SIG_INVALID &&
		    t != TP_PGP_SIGTYPE_CERT_REVOCATION && first[0] == '\0')
			snprintf(first, sizeof(first), "%s", why);
		if (ok != TP_PGP_SIG_VALID)
			continue;
		if (t == TP_PGP_SIGTYPE_CERT_REVOCATION)
			revoked = 1;
		else
			certified = 1;
	}
	if (!k->info->valid)
		snprintf(u->reason, sizeof(u->reason),
		         "the primary key does not count");
	else if (revoked)
		snprintf(u->reason, sizeof(u->reason), "revoked");
	else if (!certified)
		snprintf(u->reason, sizeof(u->reason),
		         "no valid self-certification%s%.120s",
		         first[0] ? ": " : "", first);
	else
		u->valid = 1;
}

/* Does the binding signature s carry a valid primary key binding
 * signature by the subkey sk (RFC 9580 section 5.2.1)? */
static int back_signed(const struct tp_pgp_sig *s, struct tp_pgp_key *k,
                       struct tp_pgp_key *sk, time_t now)
{
	struct tp_pgp_sig e;
	char why[160];

	return s->embedded != NULL && sk->kind != TP_PGP_NONE &&
	       tp_pgp_parse_sig(s->embedded, s->embedded_len, &e, why,
	                        sizeof(why)) == 0 &&
	       e.type == TP_PGP_SIGTYPE_PRIMARY_BINDING &&
	       tp_pgp_verify(&e, sk, k, sk, NULL, now, why, sizeof(why)) ==
	               TP_PGP_SIG_VALID;
}

/* Fold the binding signatures and revocations of subkey c into ss. */
static void subkey_sigs(struct tp_pgp *g, const struct tp_pgp_pkt *pk,
                        const struct tp_pgp_comp *c, time_t now,
                        struct self_sigs *ss)
{
	struct tp_pgp_key *k = &g->keys[0], *sk = &g->keys[c->key];
	enum tp_pgp_sig_result ok;
	struct tp_pgp_sig s;
	char why[160];
	size_t j;

	for (j = c->first; j < c->first + c->nsigs; j++) {
		int t = sig_type(&pk[j]);

		if (t != TP_PGP_SIGTYPE_SUBKEY_BINDING &&
		    t != TP_PGP_SIGTYPE_SUBKEY_REVOCATION)
			continue;
		ok = check_sig(&pk[j], &s, k, k, sk, NULL, now, why,
		               sizeof(why));
		if (ok == TP_PGP_SIG_INVALID &&
		    t == TP_PGP_SIGTYPE_SUBKEY_BINDING && ss->first[0] == '\0')
			snprintf(ss->first, sizeof(ss->first), "%s", why);
		if (ok != TP_PGP_SIG_VALID)
			continue;
		if (t == TP_PGP_SIGTYPE_SUBKEY_REVOCATION) {
			ss->revoked = 1;
		} else if (s.created > ss->best) {
			ss->best = s.created;
			ss->kexp = s.key_expires;
			sk->info->flags = s.flags;
			sk->info->has_flags = s.has_flags;
			ss->backsig = back_signed(&s, k, sk, now);
		}
	}
}

static void eval_subkey(struct tp_pgp *g, const struct tp_pgp_pkt *pk,
                        const struct tp_pgp_comp *c, time_t now)
{
	tlspool_openpgp_keyinfo *info = g->keys[c->key].info;
	struct self_sigs ss = {.best = -1};

	subkey_sigs(g, pk, c, now, &ss);
	if (info->reason[0] != '\0')
		return; /* unsupported version or algorithm */
	if (!g->keys[0].info->valid) {
		snprintf(info->reason, sizeof(info->reason),
		         "the primary key does not count");
		return;
	}
	if (ss.revoked) {
		snprintf(info->reason, sizeof(info->reason), "revoked");
		return;
	}
	if (ss.best < 0) {
		snprintf(info->reason, sizeof(info->reason),
		         "no valid binding signature%s%.120s",
		         ss.first[0] ? ": " : "", ss.first);
		return;
	}
	if (ss.kexp != 0) {
		info->expires = info->created + (time_t)ss.kexp;
		if (info->expires <= now) {
			snprintf(info->reason, sizeof(info->reason), "expired");
			return;
		}
	}
	/* RFC 9580 section 5.2.1: a signing subkey's binding carries the
	 * subkey's own signature over it; without one, no signing. */
	if ((info->flags & TLSPOOL_OPENPGP_SIGN) && !ss.backsig)
		info->flags &= ~(unsigned)TLSPOOL_OPENPGP_SIGN;
	info->valid = 1;
}

void tp_pgp_validity(tlspool_openpgp_cert *cert,
                     const struct tp_pgp_packets *pp, time_t now)
{
	struct tp_pgp *g = cert->internal;
	size_t i;

	eval_primary(g, pp, now);
	for (i = 1; i < pp->ncomp; i++) {
		if (pp->comp[i].kind == TP_PGP_COMP_UID)
			eval_uid(g, pp->pkt, &pp->comp[i],
			         &cert->uids[cert->nuids++], now);
		else if (pp->comp[i].kind == TP_PGP_COMP_SUBKEY)
			eval_subkey(g, pp->pkt, &pp->comp[i], now);
	}
}

int tlspool_openpgp_uid_names(const char *uid, const char *identity)
{
	const char *lt, *gt, *at;
	size_t n, local;

	if (uid == NULL || identity == NULL || identity[0] == '\0')
		return 0;
	n = strlen(identity);
	at = strrchr(identity, '@');
	local = at != NULL ? (size_t)(at - identity) + 1 : 0;
	for (lt = strchr(uid, '<'); lt != NULL; lt = strchr(lt + 1, '<')) {
		gt = strchr(lt + 1, '>');
		if (gt == NULL)
			return 0;
		/* the local part exactly (RFC 5321 section 2.4), the
		 * domain without case */
		if ((size_t)(gt - lt - 1) == n &&
		    memcmp(lt + 1, identity, local) == 0 &&
		    strncasecmp(lt + 1 + local, identity + local, n - local) ==
		            0)
			return 1;
	}
	return 0;
}
