/* The per-thread failure detail behind starttls_errstr(), and its class
 * behind starttls_errclass(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "lib.h"

static _Thread_local char detail[512];
static _Thread_local starttls_class last_class;

const char *starttls_errstr(void)
{
	return detail;
}

starttls_class starttls_errclass(void)
{
	return last_class;
}

const char *starttls_class_name(starttls_class cls)
{
	static const char *const names[] = {
	        [STARTTLS_OK] = "ok",
	        [STARTTLS_ERR_ARGUMENT] = "argument",
	        [STARTTLS_ERR_UNSUPPORTED] = "unsupported",
	        [STARTTLS_ERR_CONFIG] = "config",
	        [STARTTLS_ERR_NO_CREDENTIAL] = "no-credential",
	        [STARTTLS_ERR_ACCESS] = "access",
	        [STARTTLS_ERR_NAME_TOO_LONG] = "name-too-long",
	        [STARTTLS_ERR_CONNECTION] = "connection",
	        [STARTTLS_ERR_TIMEOUT] = "timeout",
	        [STARTTLS_ERR_TLS] = "tls",
	        [STARTTLS_ERR_PEER_REJECTED] = "peer-rejected",
	        [STARTTLS_ERR_DNS_BOGUS] = "dns-bogus",
	        [STARTTLS_ERR_DNS_FAILURE] = "dns-failure",
	        [STARTTLS_ERR_DNS_TIMEOUT] = "dns-timeout",
	        [STARTTLS_ERR_INSECURE] = "insecure",
	        [STARTTLS_ERR_NO_RECORDS] = "no-records",
	        [STARTTLS_ERR_NO_MATCH] = "no-match",
	        [STARTTLS_ERR_NO_PEER_CERT] = "no-peer-certificate",
	        [STARTTLS_ERR_NO_IDENTITY] = "no-identity",
	        [STARTTLS_ERR_REFUSED] = "refused",
	        [STARTTLS_ERR_RESOURCES] = "resources",
	        [STARTTLS_ERR_INTERNAL] = "internal",
	        [STARTTLS_ERR_DIRECTORY_UNREACHABLE] = "directory-unreachable",
	        [STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED] =
	                "directory-not-authenticated",
	        [STARTTLS_ERR_PRELUDE] = "prelude",
	};

	if ((unsigned)cls >= sizeof(names) / sizeof(names[0]) ||
	    names[cls] == NULL)
		return "unknown";
	return names[cls];
}

/* The class a bare errno stands for, where the caller names none. */
static starttls_class class_of_errno(int err)
{
	switch (err) {
	case 0:
		return STARTTLS_OK;
	case EINVAL:
		return STARTTLS_ERR_ARGUMENT;
	case EPROTONOSUPPORT:
		return STARTTLS_ERR_UNSUPPORTED;
	case ENOKEY:
		return STARTTLS_ERR_NO_CREDENTIAL;
	case EACCES:
		return STARTTLS_ERR_ACCESS;
	case ENAMETOOLONG:
		return STARTTLS_ERR_NAME_TOO_LONG;
	case ECONNRESET:
	case ECONNREFUSED:
	case EPIPE:
		return STARTTLS_ERR_CONNECTION;
	case ETIMEDOUT:
		return STARTTLS_ERR_TIMEOUT;
	case EPROTO:
		return STARTTLS_ERR_TLS;
	case EKEYREJECTED:
		return STARTTLS_ERR_NO_MATCH;
	case EPERM:
		return STARTTLS_ERR_REFUSED;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return STARTTLS_ERR_RESOURCES;
	}
	return STARTTLS_ERR_INTERNAL;
}

static int vfail(int err, starttls_class cls, const char *fmt, va_list ap)
{
	vsnprintf(detail, sizeof(detail), fmt, ap);
	last_class = cls;
	errno = err;
	return -1;
}

int tp_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, class_of_errno(err), fmt, ap);
	va_end(ap);
	return -1;
}

int tp_failc(int err, starttls_class cls, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, cls, fmt, ap);
	va_end(ap);
	return -1;
}

void tp_set_class(starttls_class cls)
{
	last_class = cls;
}

void tp_clear_error(void)
{
	detail[0] = '\0';
	last_class = STARTTLS_OK;
}
