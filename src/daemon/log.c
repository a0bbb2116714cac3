/* tlspoold's log: one line per event on stderr, which journald keeps. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tlspoold.h"

void lp_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "tlspoold: ");

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	n = (int)strlen(line);
	line[n++] = '\n';
	/* one write: lines of the threads never mix */
	if (write(2, line, (size_t)n) < 0)
		return;
}

const char *lp_who(const struct client *c, char *buf, size_t len)
{
	snprintf(buf, len, "uid=%u pid=%d", (unsigned)c->who.uid, (int)c->pid);
	return buf;
}
