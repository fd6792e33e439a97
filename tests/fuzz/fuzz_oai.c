/* fuzz_oai.c - what the HTTP routes do with a body: JSON text (duplicate keys refused) read
 * as a moderation body and as a chat-completions body, and the same value read as a verdict
 * and as a chat answer by the answer builders. Checks: an accepted body gives the requests it
 * promises (1..OAI_MAX_INPUTS classify requests with ids 0..n-1, or one chat), a refused one
 * names an error code and leaves nothing allocated, and every answer is serialisable JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/oai.h"

static void
serialisable(json_t *j)
{
	char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (t == NULL)
		abort();	/* an answer the route could not send */
	free(t);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_limits l = { 65536, 64, 0, 0 };
	struct oai_opts o;
	struct request *rs, r;
	struct err e;
	size_t n;
	json_error_t je;
	json_t *b = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &je);

	if (b == NULL)
		return 0;
	if (oai_mod_parse(b, "p", &l, &rs, &n, &o, &e) == PROTO_OK) {
		if (n == 0 || n > OAI_MAX_INPUTS || rs == NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			if (rs[i].op != OP_CLASSIFY || rs[i].conv.n != 1 || rs[i].id_len != 1 ||
			    rs[i].id[0] != i || strcmp(rs[i].policy, "p") != 0)
				abort();
		oai_requests_free(rs, n);
	} else if (rs != NULL || n != 0 || o.code == NULL || e.msg[0] == '\0')
		abort();
	enum proto_status st = oai_chat_parse(b, "", &l, &r, &o, &e);
	if (st == PROTO_OK && (r.op != OP_CHAT || r.chat.n == 0 || r.conv.n == 0))
		abort();
	if (st != PROTO_OK && o.code == NULL)
		abort();
	proto_request_free(&r);
	if (json_is_object(b)) {
		const char *codes[] = { "S1", "S2" };
		struct oai_ids ids = { "chatcmpl-x", 1, "m" };
		json_t *res = oai_mod_result(b, codes, 2);
		serialisable(oai_mod_response("modr-x", "m", json_pack("[O]", res)));
		json_decref(res);
		serialisable(oai_completion(&ids, b));
		serialisable(oai_chunk_final(&ids, b));
		serialisable(oai_chunk_usage(&ids, b));
	}
	json_decref(b);
	return 0;
}
