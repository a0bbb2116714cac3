/*
 * Certificates for the DANE and identity tests, made at test time by
 * tests/tools/mkcerts.sh (certtool) in a temporary directory.  Call
 * tp_certs_make() in main() before the suite runs (forked tests inherit
 * the loaded files) and tp_certs_free() after it.
 */
#ifndef TLSPOOL_TEST_CERTS_H
#define TLSPOOL_TEST_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tlspool/dane.h>

#define TP_MAX_CERTFILES 48

static char tp_certdir[64];
static struct {
	char name[48];
	tlspool_span span;
} tp_certfiles[TP_MAX_CERTFILES];

/* Make the certificates; exits the test program if that fails. */
static inline void tp_certs_make(void)
{
	char cmd[256];

	snprintf(tp_certdir, sizeof(tp_certdir), "/tmp/tlspool-certs.XXXXXX");
	if (mkdtemp(tp_certdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(cmd, sizeof(cmd), "tests/tools/mkcerts.sh %s", tp_certdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed (run from the source tree)\n", cmd);
		exit(1);
	}
}

static inline void tp_certs_free(void)
{
	char cmd[128];
	size_t i;

	for (i = 0; i < TP_MAX_CERTFILES; i++)
		free((void *)tp_certfiles[i].span.data);
	memset(tp_certfiles, 0, sizeof(tp_certfiles));
	if (tp_certdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tp_certdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tp_certdir);
	}
}

/* The path of a file in the certificate directory. */
static inline const char *tp_certpath(const char *file)
{
	static char path[160];

	snprintf(path, sizeof(path), "%s/%s", tp_certdir, file);
	return path;
}

/* The bytes of FILE ("www.der", "rawkey.spki"), loaded once. */
static inline const tlspool_span *tp_file(const char *file)
{
	FILE *f;
	long n;
	unsigned char *buf;
	size_t i;

	for (i = 0; i < TP_MAX_CERTFILES && tp_certfiles[i].name[0]; i++)
		if (strcmp(tp_certfiles[i].name, file) == 0)
			return &tp_certfiles[i].span;
	if (i == TP_MAX_CERTFILES || (f = fopen(tp_certpath(file), "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL || n <= 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	snprintf(tp_certfiles[i].name, sizeof(tp_certfiles[i].name), "%s", file);
	tp_certfiles[i].span.data = buf;
	tp_certfiles[i].span.len = (size_t)n;
	return &tp_certfiles[i].span;
}

/* The DER certificate NAME (NAME.der), or the raw key for "rawkey" and
 * the bare keys "root.spki" etc. */
static inline const tlspool_span *tp_cert(const char *name)
{
	char file[48];

	if (strchr(name, '.') != NULL)
		snprintf(file, sizeof(file), "%s", name);
	else if (strcmp(name, "rawkey") == 0)
		snprintf(file, sizeof(file), "rawkey.spki");
	else
		snprintf(file, sizeof(file), "%s.der", name);
	return tp_file(file);
}

#endif
