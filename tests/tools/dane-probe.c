/*
 * dane-probe -- end-to-end check of lookup plus matcher, before the
 * starttls functions exist: a TLS handshake with a real server on
 * loopback takes the peer's chain, tlspool_dns_lookup() fetches the TLSA
 * RRset, tlspool_dane_match() decides, and the verdict and the trace are
 * printed.
 *
 *   dane-probe --config CONF --port PORT --name NAME [--tlsa-port P]
 *              [--trust CA.pem]
 *
 * Connects to 127.0.0.1:PORT with SNI NAME, looks up TLSA at
 * _P._tcp.NAME (P defaults to PORT) with the [dns] section of CONF, and
 * matches with NAME as the reference name.  Exit 0 authenticated, 4 not
 * authenticated, 1 usage or setup, 2 connection, 3 TLS.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include <tlspool/validate.h>

static int usage(void)
{
	fprintf(stderr,
	        "usage: dane-probe --config CONF --port PORT --name NAME "
	        "[--tlsa-port P] [--trust CA.pem]\n");
	return 1;
}

/* Handshake on 127.0.0.1:port and copy the peer's chain.  0 or exit code. */
static int fetch_chain(unsigned port, const char *name, tlspool_span *chain,
                       size_t *n, size_t max)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	const gnutls_datum_t *peers;
	struct sockaddr_in sa;
	unsigned np = 0, i;
	int fd, rv, code = 3;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("dane-probe: connect");
		if (fd >= 0)
			close(fd);
		return 2;
	}
	/* No certificate verification here: deciding is the matcher's job. */
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name)) < 0)
		goto done;
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 10000);
	do
		rv = gnutls_handshake(s);
	while (rv < 0 && !gnutls_error_is_fatal(rv));
	if (rv < 0) {
		fprintf(stderr, "dane-probe: handshake: %s\n",
		        gnutls_strerror(rv));
		goto done;
	}
	peers = gnutls_certificate_get_peers(s, &np);
	if (peers == NULL || np == 0) {
		fprintf(stderr, "dane-probe: the server sent no certificate\n");
		goto done;
	}
	for (i = 0; i < np && i < max; i++) {
		unsigned char *copy = malloc(peers[i].size);

		if (copy == NULL)
			goto done;
		memcpy(copy, peers[i].data, peers[i].size);
		chain[i].data = copy;
		chain[i].len = peers[i].size;
		*n = i + 1;
	}
	printf("chain: %u certificates\n", np);
	gnutls_bye(s, GNUTLS_SHUT_RDWR);
	code = 0;
done:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	close(fd);
	return code;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *name = NULL, *trustfile = NULL;
	unsigned port = 0, tlsa_port = 0;
	tlspool_span chain[16];
	size_t nchain = 0, i, ntlsa = 0;
	tlspool_dns_config *cfg = NULL;
	tlspool_dns *dns = NULL;
	tlspool_dns_answer *ans = NULL;
	tlspool_tlsa *tlsa = NULL;
	tlspool_trust *trust = NULL;
	tlspool_dane_input in;
	tlspool_dane_result *res = NULL;
	char owner[300], err[512];
	int code = 1, a;

	for (a = 1; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--config") == 0)
			conf = argv[a + 1];
		else if (strcmp(argv[a], "--port") == 0)
			port = (unsigned)atoi(argv[a + 1]);
		else if (strcmp(argv[a], "--tlsa-port") == 0)
			tlsa_port = (unsigned)atoi(argv[a + 1]);
		else if (strcmp(argv[a], "--name") == 0)
			name = argv[a + 1];
		else if (strcmp(argv[a], "--trust") == 0)
			trustfile = argv[a + 1];
		else
			return usage();
	}
	if (a != argc || conf == NULL || name == NULL || port == 0 ||
	    port > 65535)
		return usage();
	if (tlsa_port == 0)
		tlsa_port = port;

	code = fetch_chain(port, name, chain, &nchain, 16);
	if (code != 0)
		goto done;
	code = 1;
	if ((cfg = tlspool_dns_config_load(conf, err, sizeof(err))) == NULL ||
	    (dns = tlspool_dns_new(cfg, err, sizeof(err))) == NULL ||
	    tlspool_tlsa_owner(owner, sizeof(owner), tlsa_port, "tcp", name) <
	            0 ||
	    tlspool_dns_lookup(dns, owner, TLSPOOL_RR_TLSA, &ans, err,
	                       sizeof(err)) != 0) {
		fprintf(stderr, "dane-probe: %s\n", err);
		goto done;
	}
	if (trustfile != NULL &&
	    (trust = tlspool_trust_new_file(trustfile, err, sizeof(err))) ==
	            NULL) {
		fprintf(stderr, "dane-probe: %s\n", err);
		goto done;
	}
	printf("lookup: %s TLSA: %s%s%s, %zu records\n", owner,
	       tlspool_dns_verdict_name(ans->verdict),
	       ans->detail[0] ? ": " : "", ans->detail, ans->nrr);
	tlsa = calloc(ans->nrr + 1, sizeof(*tlsa));
	if (tlsa == NULL)
		goto done;
	for (i = 0; i < ans->nrr; i++) {
		const tlspool_rr *rr = &ans->rr[i];

		if (tlspool_tlsa_parse(rr->rdata, rr->rdlen, &tlsa[ntlsa]) ==
		    0) {
			ntlsa++;
		} else if (rr->rdlen >= 3) {
			/* Malformed: hand it over as is; the matcher calls
			 * it unusable (RFC 7671 section 4.1). */
			tlsa[ntlsa].usage = rr->rdata[0];
			tlsa[ntlsa].selector = rr->rdata[1];
			tlsa[ntlsa].mtype = rr->rdata[2];
			tlsa[ntlsa].data = rr->rdata + 3;
			tlsa[ntlsa].len = rr->rdlen - 3;
			ntlsa++;
		}
	}
	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = nchain;
	in.tlsa = tlsa;
	in.ntlsa = ntlsa;
	in.dns = ans->verdict;
	in.dns_detail = ans->detail;
	in.names = &name;
	in.nnames = 1;
	in.now = time(NULL);
	in.trust = trust;
	if (tlspool_dane_match(&in, &res, err, sizeof(err)) != 0) {
		fprintf(stderr, "dane-probe: %s\n", err);
		goto done;
	}
	for (i = 0; i < res->nsteps; i++) {
		const tlspool_dane_step *st = &res->steps[i];

		printf("record %zu: %u %u %u %s", st->index, st->usage,
		       st->selector, st->mtype,
		       tlspool_dane_outcome_name(st->outcome));
		if (st->depth >= 0)
			printf(" depth %d", st->depth);
		printf(": %s\n", st->reason);
	}
	printf("verdict: %s\n", tlspool_dane_verdict_name(res->verdict));
	printf("reason: %s\n", res->reason);
	printf("identity: %s\n", res->identity[0] ? res->identity : "-");
	if (res->verdict == TLSPOOL_DANE_AUTHENTICATED)
		printf("peer: %s\n", res->name);
	code = res->verdict == TLSPOOL_DANE_AUTHENTICATED ? 0 : 4;
done:
	tlspool_dane_result_free(res);
	tlspool_trust_free(trust);
	free(tlsa);
	tlspool_dns_answer_free(ans);
	tlspool_dns_free(dns);
	tlspool_dns_config_free(cfg);
	for (i = 0; i < nchain; i++)
		free((void *)chain[i].data);
	return code;
}
