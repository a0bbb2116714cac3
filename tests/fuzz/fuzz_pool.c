/*
 * libFuzzer target: a message on tlspoold's socket (pool.h), which any
 * local user may send.  The input is one SOCK_SEQPACKET record, decoded
 * as the daemon decodes requests and the library decodes replies.  The
 * layout is fixed and every field is checked, so a message that decodes
 * must encode back to the same octets: nothing in it goes unread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tp_pool_msg m;
	unsigned char back[TP_POOL_MAX];
	char why[160];
	size_t n;

	if (tp_pool_decode(data, size, &m, why, sizeof(why)) != 0) {
		if (memchr(why, '\0', sizeof(why)) == NULL || why[0] == '\0')
			abort(); /* a refusal always says why */
		return 0;
	}
	(void)tp_pool_carries_fd(&m);
	n = tp_pool_encode(&m, back, sizeof(back));
	if (n != size || memcmp(back, data, size) != 0)
		abort();
	return 0;
}
