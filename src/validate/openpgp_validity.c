/*
 * Which keys and User IDs of an OpenPGP key count at a given time, from
 * their self-signatures (RFC 9580 sections 5.2.1 and 10.1), what became of
 * every signature, and what a User ID names.
 *
 * First every signature is verified once, in the order of the input,
 * into cert->sigs:
 * - on the primary key: direct key signatures (0x1F) and key revocations
 *   (0x20) by the primary key;
 * - on a User ID: certifications (0x10 to 0x13) and certification
 *   revocations (0x30) by the primary key; those of other keys are left
 *   unchecked (a third party's word is not the key's);
 * - on a subkey: binding signatures (0x18) and subkey revocations (0x28)
 *   by the primary key, and the primary key binding signature (0x19)
 *   embedded in a binding that verifies, by the subkey;
 * - anything else, and User Attributes, is listed unchecked.
 * Then, from the GOOD ones:
 * - The primary key needs a good self-signature (User ID certification
 *   or direct key) and no good key revocation; it expires at creation +
 *   the key expiration time of its newest self-signature.
 * - A User ID needs a good certification and no good certification
 *   revocation.
 * - A subkey needs a good binding signature (the newest gives its flags
 *   and expiration) and no good subkey revocation; its signing flag
 *   counts only with a good embedded primary key binding signature by
 *   the subkey (section 5.2.1).
 * - Nothing counts when the primary key does not.
 * Last, a good signature on something revoked (the primary key, a User
 * ID, a subkey) is marked REVOKED: it verifies, and binds nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openpgp_int.h"

/* One verified signature, beside its public entry in cert->sigs. */
struct checked {
	struct tp_pgp_sig s; /* parsed, when the outcome is not BAD from
	                        parsing */
	size_t comp;         /* its component in pp->comp */
};

struct eval {
	struct tp_pgp *g;
	tlspool_openpgp_cert *cert;
	const struct tp_pgp_packets *pp;
	time_t now;
	struct checked *ck; /* cert->nsigs of them */
};

static int is_revocation(int t)
{
	return t == TP_PGP_SIGTYPE_KEY_REVOCATION ||
	       t == TP_PGP_SIGTYPE_SUBKEY_REVOCATION ||
	       t == TP_PGP_SIGTYPE_CERT_REVOCATION;
}

/* Does signature type t belong on a component of kind k?  Those that
 * do are verified; the others are listed unchecked. */
static int checked_on(enum tp_pgp_comp_kind k, int t)
{
	switch (k) {
	case TP_PGP_COMP_PRIMARY:
		return t == TP_PGP_SIGTYPE_DIRECT_KEY ||
		       t == TP_PGP_SIGTYPE_KEY_REVOCATION;
	case TP_PGP_COMP_UID:
		return tp_pgp_is_certification(t) ||
		       t == TP_PGP_SIGTYPE_CERT_REVOCATION;
	case TP_PGP_COMP_SUBKEY:
		return t == TP_PGP_SIGTYPE_SUBKEY_BINDING ||
		       t == TP_PGP_SIGTYPE_SUBKEY_REVOCATION;
	default:
		return 0;
	}
}

/* The public entry's fields from the parsed signature. */
static void describe(tlspool_openpgp_sig *o, const struct tp_pgp_sig *s)
{
	o->version = s->version;
	o->type = s->type;
	o->algorithm = s->pkalgo;
	o->hash = s->hashalgo;
	o->created = s->has_created ? s->created : 0;
	if (s->has_fpr) {
		memcpy(o->issuer, s->fpr, s->fprlen);
		o->issuer_len = s->fprlen;
	} else if (s->has_keyid) {
		memcpy(o->issuer, s->keyid, 8);
		o->issuer_len = 8;
	}
}

/* Verify one signature (body, len) on component ci, into the next entry.
 * signer, key, sub and uid say how it is hashed (sub and uid may be
 * NULL).  Returns its outcome. */
static tlspool_openpgp_sig_outcome
check_one(struct eval *e, const unsigned char *body, size_t len, size_t ci,
          int embedded, struct tp_pgp_key *signer, const struct tp_pgp_key *sub,
          const tlspool_span *uid)
{
	const struct tp_pgp_comp *c = &e->pp->comp[ci];
	tlspool_openpgp_sig *o = &e->cert->sigs[e->cert->nsigs];
	struct checked *k = &e->ck[e->cert->nsigs];
	int r;

	e->cert->nsigs++;
	k->comp = ci;
	o->embedded = embedded;
	o->target = c->kind == TP_PGP_COMP_PRIMARY ? TLSPOOL_OPENPGP_ON_KEY
	            : c->kind == TP_PGP_COMP_UID   ? TLSPOOL_OPENPGP_ON_UID
	            : c->kind == TP_PGP_COMP_SUBKEY
	                    ? TLSPOOL_OPENPGP_ON_SUBKEY
	                    : TLSPOOL_OPENPGP_ON_ATTRIBUTE;
	r = tp_pgp_parse_sig(body, len, &k->s, o->reason, sizeof(o->reason));
	describe(o, &k->s);
	if (r != 0) {
		o->outcome = r == -2 ? TLSPOOL_OPENPGP_SIG_UNSUPPORTED
		                     : TLSPOOL_OPENPGP_SIG_BAD;
		return o->outcome;
	}
	if (embedded && k->s.type != TP_PGP_SIGTYPE_PRIMARY_BINDING) {
		snprintf(o->reason, sizeof(o->reason),
		         "embedded signature of type 0x%02x, not a primary key "
		         "binding",
		         k->s.type);
		return o->outcome = TLSPOOL_OPENPGP_SIG_BAD;
	}
	if (!embedded && !checked_on(c->kind, k->s.type)) {
		snprintf(o->reason, sizeof(o->reason),
		         "signature type 0x%02x is not used here", k->s.type);
		return o->outcome = TLSPOOL_OPENPGP_SIG_UNCHECKED;
	}
	if (sub != NULL && sub->version != 4 && sub->version != 6) {
		snprintf(o->reason, sizeof(o->reason),
		         "on a version %d subkey, which is not supported",
		         sub->version);
		return o->outcome = TLSPOOL_OPENPGP_SIG_UNSUPPORTED;
	}
	o->outcome = tp_pgp_verify(&k->s, signer, &e->g->keys[0], sub, uid,
	                           e->now, o->reason, sizeof(o->reason));
	if (o->outcome == TLSPOOL_OPENPGP_SIG_GOOD)
		o->reason[0] = '\0';
	return o->outcome;
}

/* Step 1: every signature of every component. */
static void check_all(struct eval *e)
{
	const struct tp_pgp_packets *pp = e->pp;
	struct tp_pgp_key *pk = &e->g->keys[0];
	size_t ci, j, nuid = 0, nattr = 0;

	for (ci = 0; ci < pp->ncomp; ci++) {
		const struct tp_pgp_comp *c = &pp->comp[ci];
		const struct tp_pgp_pkt *cp = &pp->pkt[c->index];
		tlspool_span uid = {cp->body, cp->len};
		struct tp_pgp_key *sk = c->kind == TP_PGP_COMP_SUBKEY
		                                ? &e->g->keys[c->key]
		                                : NULL;
		size_t index = c->kind == TP_PGP_COMP_UID         ? nuid++
		               : c->kind == TP_PGP_COMP_ATTRIBUTE ? nattr++
		               : c->kind == TP_PGP_COMP_SUBKEY    ? c->key - 1
		                                                  : 0;

		for (j = c->first; j < c->first + c->nsigs; j++) {
			const struct tp_pgp_pkt *sp = &pp->pkt[j];
			size_t at = e->cert->nsigs;
			tlspool_openpgp_sig_outcome o;

			o = check_one(e, sp->body, sp->len, ci, 0, pk, sk,
			              c->kind == TP_PGP_COMP_UID ? &uid : NULL);
			e->cert->sigs[at].target_index = index;
			if (c->kind == TP_PGP_COMP_ATTRIBUTE &&
			    o == TLSPOOL_OPENPGP_SIG_UNCHECKED)
				snprintf(e->cert->sigs[at].reason,
				         sizeof(e->cert->sigs[at].reason),
				         "on a User Attribute, which is not "
				         "used");
			/* the subkey's own signature inside a binding that
			 * verifies (RFC 9580 section 5.2.1) */
			if (sk != NULL &&
			    e->ck[at].s.type == TP_PGP_SIGTYPE_SUBKEY_BINDING &&
			    (o == TLSPOOL_OPENPGP_SIG_GOOD ||
			     o == TLSPOOL_OPENPGP_SIG_EXPIRED) &&
			    e->ck[at].s.embedded != NULL) {
				check_one(e, e->ck[at].s.embedded,
				          e->ck[at].s.embedded_len, ci, 1, sk,
				          sk, NULL);
				e->cert->sigs[at + 1].target_index = index;
			}
		}
	}
}

/* What the good signatures on one key say. */
struct self_sigs {
	time_t best;        /* creation of the newest, -1: none */
	size_t which;       /* its entry */
	unsigned long kexp; /* its key expiration time, 0: never */
	int revoked;
	char first[160]; /* the first one that failed: its reason */
};

static void note(struct self_sigs *ss, const tlspool_openpgp_sig *o)
{
	if (ss->first[0] == '\0' && o->outcome != TLSPOOL_OPENPGP_SIG_GOOD &&
	    o->outcome != TLSPOOL_OPENPGP_SIG_UNCHECKED)
		snprintf(ss->first, sizeof(ss->first), "%.150s", o->reason);
}

/* Fold entry i into ss if it is a good self-signature (direct key, or a
 * certification) or key revocation. */
static void fold(struct eval *e, size_t i, struct self_sigs *ss)
{
	const tlspool_openpgp_sig *o = &e->cert->sigs[i];
	const struct tp_pgp_sig *s = &e->ck[i].s;
	int direct = o->target == TLSPOOL_OPENPGP_ON_KEY &&
	             o->type == TP_PGP_SIGTYPE_DIRECT_KEY;

	if (!direct && !(o->target == TLSPOOL_OPENPGP_ON_UID &&
	                 tp_pgp_is_certification(o->type))) {
		if (o->target == TLSPOOL_OPENPGP_ON_KEY &&
		    o->type == TP_PGP_SIGTYPE_KEY_REVOCATION &&
		    o->outcome == TLSPOOL_OPENPGP_SIG_GOOD)
			ss->revoked = 1;
		return;
	}
	note(ss, o);
	if (o->outcome != TLSPOOL_OPENPGP_SIG_GOOD)
		return;
	/* the newest self-signature speaks for the key; a direct key
	 * signature before User IDs' */
	if (s->created > ss->best || (direct && s->created == ss->best)) {
		ss->best = s->created;
		ss->which = i;
		ss->kexp = s->key_expires;
	}
}

static void eval_primary(struct eval *e)
{
	tlspool_openpgp_keyinfo *info = e->g->keys[0].info;
	struct self_sigs ps = {.best = -1};
	size_t i;

	for (i = 0; i < e->cert->nsigs; i++)
		fold(e, i, &ps);
	if (ps.best >= 0) {
		info->flags = e->ck[ps.which].s.flags;
		info->has_flags = e->ck[ps.which].s.has_flags;
	}
	if (ps.revoked) {
		snprintf(info->reason, sizeof(info->reason),
		         "the primary key is revoked");
		return;
	}
	if (ps.best < 0) {
		snprintf(info->reason, sizeof(info->reason),
		         "no valid self-signature%s%.110s%s",
		         ps.first[0] ? " (self-signature: " : "", ps.first,
		         ps.first[0] ? ")" : "");
		return;
	}
	if (ps.kexp != 0) {
		info->expires = info->created + (time_t)ps.kexp;
		if (info->expires <= e->now) {
			snprintf(info->reason, sizeof(info->reason),
			         "the primary key expired");
			return;
		}
	}
	info->valid = 1;
}

static void eval_uid(struct eval *e, size_t ci, tlspool_openpgp_uid *u)
{
	const struct tp_pgp_pkt *pk = &e->pp->pkt[e->pp->comp[ci].index];
	int certified = 0, revoked = 0;
	struct self_sigs us = {.best = -1};
	size_t i;

	snprintf(u->text, sizeof(u->text), "%.*s",
	         (int)(pk->len < 255 ? pk->len : 255), (const char *)pk->body);
	for (i = 0; i < e->cert->nsigs; i++) {
		const tlspool_openpgp_sig *o = &e->cert->sigs[i];

		if (e->ck[i].comp != ci)
			continue;
		if (tp_pgp_is_certification(o->type)) {
			note(&us, o);
			certified |= o->outcome == TLSPOOL_OPENPGP_SIG_GOOD;
		} else if (o->type == TP_PGP_SIGTYPE_CERT_REVOCATION) {
			revoked |= o->outcome == TLSPOOL_OPENPGP_SIG_GOOD;
		}
	}
	if (!e->g->keys[0].info->valid)
		snprintf(u->reason, sizeof(u->reason),
		         "the primary key does not count");
	else if (revoked)
		snprintf(u->reason, sizeof(u->reason), "revoked");
	else if (!certified)
		snprintf(u->reason, sizeof(u->reason),
		         "no valid self-certification%s%.120s",
		         us.first[0] ? ": " : "", us.first);
	else
		u->valid = 1;
}

static void eval_subkey(struct eval *e, size_t ci)
{
	struct tp_pgp_key *sk = &e->g->keys[e->pp->comp[ci].key];
	tlspool_openpgp_keyinfo *info = sk->info;
	struct self_sigs ss = {.best = -1};
	int backsig = 0;
	size_t i;

	for (i = 0; i < e->cert->nsigs; i++) {
		const tlspool_openpgp_sig *o = &e->cert->sigs[i];
		const struct tp_pgp_sig *s = &e->ck[i].s;

		if (e->ck[i].comp != ci || o->embedded)
			continue;
		if (o->type == TP_PGP_SIGTYPE_SUBKEY_REVOCATION) {
			ss.revoked |= o->outcome == TLSPOOL_OPENPGP_SIG_GOOD;
			continue;
		}
		if (o->type != TP_PGP_SIGTYPE_SUBKEY_BINDING)
			continue;
		note(&ss, o);
		if (o->outcome != TLSPOOL_OPENPGP_SIG_GOOD ||
		    s->created <= ss.best)
			continue;
		ss.best = s->created;
		ss.kexp = s->key_expires;
		info->flags = s->flags;
		info->has_flags = s->has_flags;
		backsig = i + 1 < e->cert->nsigs &&
		          e->cert->sigs[i + 1].embedded &&
		          e->cert->sigs[i + 1].outcome ==
		                  TLSPOOL_OPENPGP_SIG_GOOD;
	}
	if (info->reason[0] != '\0')
		return; /* unsupported version or algorithm */
	if (!e->g->keys[0].info->valid) {
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
		if (info->expires <= e->now) {
			snprintf(info->reason, sizeof(info->reason), "expired");
			return;
		}
	}
	/* RFC 9580 section 5.2.1: a signing subkey's binding carries the
	 * subkey's own signature over it; without one, no signing. */
	if ((info->flags & TLSPOOL_OPENPGP_SIGN) && !backsig)
		info->flags &= ~(unsigned)TLSPOOL_OPENPGP_SIGN;
	info->valid = 1;
}

/* Step 3: good signatures on what is revoked bind nothing.  0, or -1
 * for lack of memory. */
static int mark_revoked(struct eval *e)
{
	tlspool_openpgp_cert *c = e->cert;
	unsigned char *ur = calloc(c->nuids + 1, 1);
	unsigned char *sr = calloc(c->nsubkeys + 1, 1);
	int key = 0;
	size_t i;

	if (ur == NULL || sr == NULL) {
		free(ur);
		free(sr);
		return -1;
	}
	for (i = 0; i < c->nsigs; i++) {
		const tlspool_openpgp_sig *o = &c->sigs[i];

		if (o->outcome != TLSPOOL_OPENPGP_SIG_GOOD)
			continue;
		if (o->type == TP_PGP_SIGTYPE_KEY_REVOCATION)
			key = 1;
		else if (o->type == TP_PGP_SIGTYPE_CERT_REVOCATION)
			ur[o->target_index] = 1;
		else if (o->type == TP_PGP_SIGTYPE_SUBKEY_REVOCATION)
			sr[o->target_index] = 1;
	}
	for (i = 0; i < c->nsigs; i++) {
		tlspool_openpgp_sig *o = &c->sigs[i];
		const char *why = NULL;

		if (o->outcome != TLSPOOL_OPENPGP_SIG_GOOD ||
		    is_revocation(o->type))
			continue;
		if (key)
			why = "the primary key is revoked";
		else if (o->target == TLSPOOL_OPENPGP_ON_UID &&
		         ur[o->target_index])
			why = "the User ID is revoked";
		else if (o->target == TLSPOOL_OPENPGP_ON_SUBKEY &&
		         sr[o->target_index])
			why = "the subkey is revoked";
		if (why != NULL) {
			o->outcome = TLSPOOL_OPENPGP_SIG_REVOKED;
			snprintf(o->reason, sizeof(o->reason), "%s", why);
		}
	}
	free(ur);
	free(sr);
	return 0;
}

int tp_pgp_validity(tlspool_openpgp_cert *cert, const struct tp_pgp_packets *pp,
                    time_t now)
{
	struct eval e = {cert->internal, cert, pp, now, NULL};
	size_t i, n = 0;
	int r;

	for (i = 0; i < pp->ncomp; i++)
		n += pp->comp[i].nsigs;
	/* room for one embedded signature per binding */
	cert->sigs = calloc(2 * n + 1, sizeof(*cert->sigs));
	e.ck = calloc(2 * n + 1, sizeof(*e.ck));
	if (cert->sigs == NULL || e.ck == NULL) {
		free(e.ck);
		errno = ENOMEM;
		return -1;
	}
	check_all(&e);
	eval_primary(&e);
	for (i = 1; i < pp->ncomp; i++) {
		if (pp->comp[i].kind == TP_PGP_COMP_UID)
			eval_uid(&e, i, &cert->uids[cert->nuids++]);
		else if (pp->comp[i].kind == TP_PGP_COMP_SUBKEY)
			eval_subkey(&e, i);
	}
	r = mark_revoked(&e);
	free(e.ck);
	if (r != 0)
		errno = ENOMEM;
	return r;
}

const char *tlspool_openpgp_sig_outcome_name(tlspool_openpgp_sig_outcome o)
{
	switch (o) {
	case TLSPOOL_OPENPGP_SIG_UNCHECKED:
		return "unchecked";
	case TLSPOOL_OPENPGP_SIG_GOOD:
		return "good";
	case TLSPOOL_OPENPGP_SIG_BAD:
		return "bad";
	case TLSPOOL_OPENPGP_SIG_UNSUPPORTED:
		return "unsupported";
	case TLSPOOL_OPENPGP_SIG_EXPIRED:
		return "expired";
	case TLSPOOL_OPENPGP_SIG_REVOKED:
		return "revoked";
	}
	return "unknown";
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
