/*
 * libFuzzer target: a message on tlspoold's socket (pool.h), which any
 * local user may send.  The input is one SOCK_SEQPACKET record, decoded
 * as the daemon decodes requests and the library decodes replies.  The
 * layout is fixed and every field is checked, so a message that decodes
 * must encode back to the same octets: nothing in it goes unread.  A
 * reply's trace (pool_trace.c) that passed the decoder is also loaded as
 * the library loads it, into this thread's starttls_last_trace().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char back[TP_POOL_MAX];
	struct tp_pool_msg m;
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
	if (m.type == TP_POOL_REPLY && m.u.reply.trace_len > 0) {
		/* checked by the decoder: loading cannot refuse it */
		if (tp_trace_reset() != 0 ||
		    tp_pool_trace_load(m.u.reply.trace, m.u.reply.trace_len) !=
		            0 ||
		    starttls_last_trace()->nchain > 16)
			abort();
	}
	tp_pool_msg_clear(&m);
	return 0;
}
