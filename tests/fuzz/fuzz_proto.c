/* fuzz_proto.c - guardd's framing and request decoder on arbitrary bytes: what the daemon
 * does with each read. */
#include <stdint.h>

#include "proto/mp.h"
#include "classifier/prompt.h"
#include "proto/proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, len;
	struct err e;

	while (off < size) {
		enum mp_frame f = mp_frame_len(data + off, size - off, 65536, &len);
		if (f != MP_FRAME_OK)
			break;
		struct request r;
		if (proto_decode(data + off, len, 64, &r, &e) == 0 && r.op == OP_CLASSIFY) {
			struct buf t = { 0 };
			struct tokvec ids = { 0 };
			enum role role;
			prompt_body(&r.conv, NULL, &t, &ids, &role, &e);
			buf_free(&t);
		}
		proto_request_free(&r);
		off += len;
	}
	return 0;
}
