/*
 * starttls_end(): how a relayed connection ended.  The relay (relay.c)
 * records it per connection, found by the st_dev/st_ino of the
 * application's end, and keeps the last 1024 ends after the connection
 * is gone.  A descriptor from tlspoold is asked of the daemon (pool.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lib.h"
#include "pool.h"
#include "relay.h"

int starttls_end(int fd, starttls_end_info *info)
{
	struct stat st;

	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (fstat(fd, &st) < 0)
		return -1; /* EBADF */
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	if (tp_relay_end_info(st.st_dev, st.st_ino, info) == 0)
		return 0;
	/* a connection that tlspoold relays: its daemon knows */
	return tp_pool_end(fd, info);
}
