/* Shared scaffolding for the Check unit tests. */
#ifndef TLSPOOL_TESTUTIL_H
#define TLSPOOL_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
