/* fuzz_imgpart.c - image parts of requests: the bytes as base64 text (util/b64.c), and as
 * the URL of an OpenAI image_url part, bare and behind "data:image/png;base64,", through the
 * request schema (proto/imgpart.c). Checks: a decoded image never exceeds the bound or the
 * limit, an accepted request holds exactly one image that the conversation counts, and a
 * refusal names the part. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imgpart.h"
#include "util/b64.h"

static void
as_url(const char *url, size_t n)
{
	struct proto_limits l = { 65536, 8, 512, 2 };
	struct request r;
	struct err e;
	json_t *u = json_stringn(url, n);

	if (u == NULL)
		return;	/* not UTF-8: JSON cannot carry it */
	json_t *o = json_pack("{s:s, s:[{s:s, s:[{s:s, s:{s:o}}]}]}", "op", "classify",
	    "messages", "role", "user", "content", "type", "image_url", "image_url", "url", u);
	if (o == NULL)
		abort();
	enum proto_status st = proto_request_from_json(o, &l, &r, &e);
	if (st == PROTO_OK && (r.n_img != 1 || r.img[0].len > 512 || conv_n_images(&r.conv) != 1))
		abort();
	if (st != PROTO_OK && strncmp(e.msg, "messages[0].content[0].image_url", 32) != 0)
		abort();
	proto_request_free(&r);
	json_decref(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char pre[] = "data:image/png;base64,";
	size_t cap = b64_decoded_max(size), len;
	unsigned char *out = malloc(cap ? cap : 1);
	char *url = malloc(sizeof(pre) + size);
	struct err e;

	if (out == NULL || url == NULL)
		abort();
	if (b64_decode((const char *)data, size, out, &len, &e) == 0 && len > cap)
		abort();
	as_url((const char *)data, size);
	memcpy(url, pre, sizeof(pre) - 1);
	memcpy(url + sizeof(pre) - 1, data, size);
	as_url(url, sizeof(pre) - 1 + size);
	free(url);
	free(out);
	return 0;
}
