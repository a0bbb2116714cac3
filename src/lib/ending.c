/* starttls_end(): how a relayed connection ended (see relay.c). */
#include <errno.h>
#include <string.h>

#include "lib.h"

int starttls_end(int fd, starttls_end_info *info)
{
	(void)fd;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	errno = ENOENT; /* filled in by the relay: work in progress */
	return -1;
}
