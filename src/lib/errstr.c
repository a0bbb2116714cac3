/* The per-thread failure detail behind starttls_errstr(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "lib.h"

static _Thread_local char detail[512];

const char *starttls_errstr(void)
{
	return detail;
}

int tp_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

void tp_clear_error(void)
{
	detail[0] = '\0';
}
