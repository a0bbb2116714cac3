/* Shared scaffolding for the Check unit tests. */
#ifndef TLSPOOL_TESTUTIL_H
#define TLSPOOL_TESTUTIL_H

#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Run one suite; exit status 0 only when every test passed. */
static inline int tp_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The directory of the served test zones (tests/run sets it).  A test
 * that needs it fails, rather than skips, when it is missing. */
static inline const char *tp_zones_dir(void)
{
	const char *d = getenv("TLSPOOL_ZONES_DIR");

	ck_assert_msg(d != NULL && d[0] != '\0',
	              "TLSPOOL_ZONES_DIR is not set: run through tests/run");
	return d;
}

/* Counters of a TCP socket that glibc's struct tcp_info stops before
 * (Linux 4.6): segments received, and those of them that carried data.
 * The kernel's struct goes on with four 64-bit counters, then these. */
struct tp_tcp_counts {
	unsigned segs_in, data_segs_in;
};

static inline struct tp_tcp_counts tp_tcp_counts(int fd)
{
	struct {
		struct tcp_info base;
		uint64_t pacing, max_pacing, bytes_acked, bytes_received;
		uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in;
	} ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	ck_assert_uint_ge(len, sizeof(ti));
	return (struct tp_tcp_counts){ti.segs_in, ti.data_segs_in};
}

#endif
