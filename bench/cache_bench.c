/*
 * make bench: the cost of one peer validation from a warm cache and from
 * DNS, measured in one run against the served zones.  Each path does
 * what starttls's dane_check() does for it:
 *   DNS:   the TLSA lookup (DNSSEC validated by getdns) and the DANE
 *          matcher over the certificate;
 *   cache: the SHA2-256 of the certificate's SPKI and the cache lookup,
 *          in memory and in an LMDB file.
 *   cache_bench CERT.der OWNER REFNAME LMDBPATH [ROUNDS]
 * with TLSPOOL_CONFIG naming the zones' configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "runtime.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int online(tlspool_dns *dns, const tlspool_span *cert, const char *owner,
                  const char *ref)
{
	tlspool_dns_answer *ans = NULL;
	tlspool_dane_result *res = NULL;
	tlspool_tlsa tlsa[16];
	tlspool_dane_input in;
	char err[256];
	size_t i, n = 0;
	int ok;

	if (tlspool_dns_lookup(dns, owner, TLSPOOL_RR_TLSA, &ans, err,
	                       sizeof(err)) != 0)
		return 0;
	for (i = 0; i < ans->nrr && n < 16; i++)
		if (tlspool_tlsa_parse(ans->rr[i].rdata, ans->rr[i].rdlen,
		                       &tlsa[n]) == 0)
			n++;
	memset(&in, 0, sizeof(in));
	in.chain = cert;
	in.nchain = 1;
	in.tlsa = tlsa;
	in.ntlsa = n;
	in.dns = ans->verdict;
	in.names = &ref;
	in.nnames = 1;
	in.now = time(NULL);
	ok = tlspool_dane_match(&in, &res, err, sizeof(err)) == 0 &&
	     res->verdict == TLSPOOL_DANE_AUTHENTICATED;
	tlspool_dane_result_free(res);
	tlspool_dns_answer_free(ans);
	return ok;
}

static int cached(tp_cache *c, const tlspool_span *cert, const char *owner,
                  const char *ref)
{
	struct tp_cache_key k;
	tlspool_x509_info x;
	char note[256] = "";

	if (tlspool_x509_describe(cert, &x) != 0)
		return 0;
	memset(&k, 0, sizeof(k));
	k.kind = TP_CACHE_AUTHN;
	k.a = ref;
	k.b = owner;
	k.type = TLSPOOL_RR_TLSA;
	memcpy(k.digest, x.spki_sha256, 32);
	return tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)) ==
	       TP_CACHE_PASS;
}

static void fill(tp_cache *c, const tlspool_span *cert, const char *owner,
                 const char *ref)
{
	struct tp_cache_key k;
	tlspool_x509_info x;
	char note[256] = "";

	tlspool_x509_describe(cert, &x);
	memset(&k, 0, sizeof(k));
	k.kind = TP_CACHE_AUTHN;
	k.a = ref;
	k.b = owner;
	k.type = TLSPOOL_RR_TLSA;
	memcpy(k.digest, x.spki_sha256, 32);
	if (tp_cache_put(c, &k, TP_CACHE_PASS, time(NULL) + 600, time(NULL),
	                 note, sizeof(note)) != 0)
		fprintf(stderr, "cache_bench: %s\n", note);
}

int main(int argc, char **argv)
{
	static unsigned char der[65536];
	char err[512];
	tlspool_span cert;
	struct tp_runtime *rt;
	tlspool_dns *dns;
	tp_cache *mem, *lmdb;
	int rounds = argc > 5 ? atoi(argv[5]) : 200, cache_rounds, bad = 0;
	double t0, t_dns, t_mem, t_lmdb;
	FILE *fp;

	if (argc < 5 || (fp = fopen(argv[1], "rb")) == NULL) {
		fprintf(stderr, "usage: cache_bench CERT.der OWNER REFNAME "
		                "LMDB [ROUNDS]\n");
		return 1;
	}
	cert.data = der;
	cert.len = fread(der, 1, sizeof(der), fp);
	fclose(fp);
	rt = tp_runtime_acquire(err, sizeof(err));
	if (rt == NULL ||
	    (dns = tp_runtime_resolver(rt, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cache_bench: %s\n", err);
		return 1;
	}
	mem = tp_cache_new(NULL, 3600);
	lmdb = tp_cache_new(argv[4], 3600);
	if (!online(dns, &cert, argv[2], argv[3])) {
		fprintf(stderr,
		        "cache_bench: %s does not authenticate online\n",
		        argv[2]);
		return 1;
	}
	fill(mem, &cert, argv[2], argv[3]);
	fill(lmdb, &cert, argv[2], argv[3]);
	cache_rounds = rounds * 100;
	/* side by side: DNS, memory, LMDB, in one run */
	t0 = now_us();
	for (int i = 0; i < rounds; i++)
		bad += !online(dns, &cert, argv[2], argv[3]);
	t_dns = (now_us() - t0) / rounds;
	t0 = now_us();
	for (int i = 0; i < cache_rounds; i++)
		bad += !cached(mem, &cert, argv[2], argv[3]);
	t_mem = (now_us() - t0) / cache_rounds;
	t0 = now_us();
	for (int i = 0; i < cache_rounds; i++)
		bad += !cached(lmdb, &cert, argv[2], argv[3]);
	t_lmdb = (now_us() - t0) / cache_rounds;
	printf("validation from DNS (lookup + DANE match): %9.1f us  (%d "
	       "rounds)\n",
	       t_dns, rounds);
	printf("validation from a warm memory cache:       %9.2f us  (%d "
	       "rounds)\n",
	       t_mem, cache_rounds);
	printf("validation from a warm LMDB cache:         %9.2f us  (%d "
	       "rounds)\n",
	       t_lmdb, cache_rounds);
	printf("ratio DNS/memory cache: %.0f   DNS/LMDB cache: %.0f\n",
	       t_dns / t_mem, t_dns / t_lmdb);
	printf("target: warm-cache validation under 50 us: %s\n",
	       t_mem < 50 && t_lmdb < 50 ? "met" : "NOT met");
	/* With [cache] backend = redis (bench/fleet.sh): the same from the
	 * configured Redis, against LMDB measured just before. */
	if (rt->cfg->cache_backend == TP_CACHE_REDIS) {
		tp_cache *redis = tp_runtime_cache(rt);
		int redis_rounds = rounds * 10;
		double t_redis;

		fill(redis, &cert, argv[2], argv[3]);
		t0 = now_us();
		for (int i = 0; i < redis_rounds; i++)
			bad += !cached(redis, &cert, argv[2], argv[3]);
		t_redis = (now_us() - t0) / redis_rounds;
		printf("validation from a warm Redis cache:        %9.2f us  "
		       "(%d rounds, %s)\n",
		       t_redis, redis_rounds, tp_cache_describe(redis));
		printf("ratio Redis/LMDB: %.1f   DNS/Redis: %.0f\n",
		       t_redis / t_lmdb, t_dns / t_redis);
		printf("target: warm validation from Redis within 3x of LMDB: "
		       "%s\n",
		       t_redis <= 3 * t_lmdb ? "met" : "NOT met");
	}
	tp_cache_free(mem);
	tp_cache_free(lmdb);
	tp_runtime_release(rt);
	if (bad) {
		fprintf(stderr, "cache_bench: %d validations failed\n", bad);
		return 1;
	}
	return 0;
}
