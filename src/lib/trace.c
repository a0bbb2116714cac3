/*
 * The thread-local validation trace (trace.h, starttls_last_trace()).
 * One store per thread, made on first use and freed when the thread
 * ends; each call empties it first.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace.h"

struct trace_store {
	starttls_trace pub;
	tlspool_span chain[16];
	char owner[320];
	tlspool_dns_answer *dns;
	tlspool_dane_result *dane;
	tlspool_openpgp_result *openpgp;
	starttls_ldap_step *ldap;
	char version[32], cipher[96], alpn[256], sni[256];
	long long t_start, t_session; /* monotonic ms; 0 none */
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The validation ran from the end of the handshake until now. */
static void validation_done(struct trace_store *t)
{
	if (t->t_session != 0)
		t->pub.validation_ms = (long)(mono_ms() - t->t_session);
}

static pthread_key_t trace_key;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_clear(struct trace_store *t)
{
	size_t i;

	for (i = 0; i < t->pub.nchain; i++)
		free((void *)t->chain[i].data);
	tlspool_dns_answer_free(t->dns);
	tlspool_dane_result_free(t->dane);
	tlspool_openpgp_result_free(t->openpgp);
	starttls_ldap_step_free(t->ldap);
	memset(t, 0, sizeof(*t));
	t->pub.chain = t->chain;
	t->pub.handshake_ms = -1;
	t->pub.validation_ms = -1;
}

static void trace_free(void *p)
{
	if (p != NULL)
		trace_clear(p);
	free(p);
}

static void trace_key_init(void)
{
	pthread_key_create(&trace_key, trace_free);
}

/* This thread's trace, or NULL when it has none (no call reset it). */
static struct trace_store *current(void)
{
	pthread_once(&trace_once, trace_key_init);
	return pthread_getspecific(trace_key);
}

int tp_trace_reset(void)
{
	struct trace_store *t;

	pthread_once(&trace_once, trace_key_init);
	t = pthread_getspecific(trace_key);
	if (t == NULL) {
		t = calloc(1, sizeof(*t));
		if (t == NULL || pthread_setspecific(trace_key, t) != 0) {
			free(t);
			return -1;
		}
	}
	trace_clear(t);
	t->t_start = mono_ms();
	return 0;
}

const starttls_trace *starttls_last_trace(void)
{
	static const starttls_trace empty = {.handshake_ms = -1,
	                                     .validation_ms = -1};
	struct trace_store *t;

	pthread_once(&trace_once, trace_key_init);
	t = pthread_getspecific(trace_key);
	return t != NULL ? &t->pub : &empty;
}

/* What the handshake agreed on. */
void tp_trace_session(const char *version, const char *cipher, const char *alpn,
                      const char *sni)
{
	struct trace_store *t = current();

	if (t == NULL)
		return;
	t->t_session = mono_ms();
	t->pub.handshake_ms = (long)(t->t_session - t->t_start);
	t->pub.validation_ms = 0;
	snprintf(t->version, sizeof(t->version), "%s", version ? version : "");
	snprintf(t->cipher, sizeof(t->cipher), "%s", cipher ? cipher : "");
	snprintf(t->alpn, sizeof(t->alpn), "%s", alpn ? alpn : "");
	snprintf(t->sni, sizeof(t->sni), "%s", sni ? sni : "");
	t->pub.tls_version = t->version[0] ? t->version : NULL;
	t->pub.cipher_suite = t->cipher[0] ? t->cipher : NULL;
	t->pub.alpn = t->alpn[0] ? t->alpn : NULL;
	t->pub.sni = t->sni[0] ? t->sni : NULL;
}

/* Keep copies of the peer's certificates for the trace. */
void tp_trace_chain(const tlspool_span *chain, size_t n)
{
	struct trace_store *t = current();
	size_t i;

	/* a second chain in one call replaces the first */
	for (i = 0; t != NULL && i < t->pub.nchain; i++)
		free((void *)t->chain[i].data);
	if (t != NULL)
		t->pub.nchain = 0;
	for (i = 0; t != NULL && i < n && i < 16; i++) {
		unsigned char *p = malloc(chain[i].len ? chain[i].len : 1);

		if (p == NULL)
			break;
		memcpy(p, chain[i].data, chain[i].len);
		t->chain[i].data = p;
		t->chain[i].len = chain[i].len;
		t->pub.nchain = i + 1;
	}
}

/* Hand the lookup and the matcher's result over to the trace (which then
 * owns them); without a trace they are freed. */
void tp_trace_keep(const char *owner, tlspool_dns_answer *dns,
                   tlspool_dane_result *dane)
{
	struct trace_store *t = current();

	if (t == NULL) {
		tlspool_dns_answer_free(dns);
		tlspool_dane_result_free(dane);
		return;
	}
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	t->pub.owner = t->owner;
	tlspool_dns_answer_free(t->dns); /* a second lookup replaces it */
	tlspool_dane_result_free(t->dane);
	t->dns = dns;
	t->pub.dns = dns;
	t->dane = dane;
	t->pub.dane = dane;
	validation_done(t);
}

/* The cache answered: no lookup, no matcher. */
void tp_trace_cached(const char *owner)
{
	struct trace_store *t = current();

	if (t == NULL)
		return;
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	t->pub.owner = t->owner;
	t->pub.from_cache = 1;
	validation_done(t);
}

/* The OPENPGPKEY matcher's result joins the trace (which owns it). */
void tp_trace_keep_openpgp(tlspool_openpgp_result *res)
{
	struct trace_store *t = current();

	if (t == NULL) {
		tlspool_openpgp_result_free(res);
		return;
	}
	tlspool_openpgp_result_free(t->openpgp);
	t->openpgp = res;
	t->pub.openpgp = res;
	validation_done(t);
}

/* The LDAP step joins the trace (which owns it). */
void tp_trace_keep_ldap(starttls_ldap_step *step)
{
	struct trace_store *t = current();

	if (t == NULL) {
		starttls_ldap_step_free(step);
		return;
	}
	starttls_ldap_step_free(t->ldap);
	t->ldap = step;
	t->pub.ldap = step;
	validation_done(t);
}
