/* t_imgpart.c - image parts in requests: util/b64.c's decoder, msgpack binary parts and
 * base64 data through the one schema (proto/imgpart.c), OpenAI image_url data URLs in
 * moderation inputs and chat messages, and each refusal naming the message and part. */
#include <jansson.h>
#include <msgpack.h>
#include <string.h>

#include "proto/imgpart.h"
#include "proto/oai.h"
#include "util/b64.h"
#include "tap.h"

static const struct proto_limits lim = { 1 << 20, 16, 64, 2 };

/* a PNG's first bytes, base64 (any bytes do here: images are decoded where read) */
static const unsigned char raw[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 1, 0xff };
#define RAW64 "iVBORw0KGgoAAf8="

static void
b64_cases(void)
{
	static const struct { const char *in, *out; } good[] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" }, { "Zg", "f" },
		{ "Zm9vYmE", "fooba" }, { "Zm9vYmFy", "foobar" }, { "+/+/", "\xfb\xff\xbf" },
	};
	static const struct { const char *in, *want; } bad[] = {
		{ "Zm9v YmFy", "invalid character ' ' at offset 4" },
		{ "Zm9v\nYmFy", "invalid byte 0x0a at offset 4" },
		{ "Zm=v", "invalid character '=' at offset 2" },
		{ "Z===", "invalid character '=' at offset 1" },
		{ "Zg=", "does not end a group of four" },
		{ "Zm9=", "non-zero padding bits" },
		{ "Zh==", "non-zero padding bits" },
		{ "Zm9vY===", "invalid character '=' at offset 5" },
		{ "Zm9vY", "a final group of one character" },
		{ "-_==", "invalid character '-' at offset 0" },
	};
	unsigned char out[64];
	size_t len;
	struct err e;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = b64_decode(good[i].in, strlen(good[i].in), out, &len, &e);
		ok(rc == 0 && len == strlen(good[i].out) && memcmp(out, good[i].out, len) == 0 &&
		    len <= b64_decoded_max(strlen(good[i].in)), "b64: '%s' decodes (%s)", good[i].in,
		    rc ? e.msg : "ok");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = b64_decode(bad[i].in, strlen(bad[i].in), out, &len, &e);
		ok(rc == -1 && strstr(e.msg, bad[i].want) != NULL, "b64: '%s' refused: %s",
		    bad[i].in, rc ? e.msg : "accepted");
	}
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL) {
		printf("Bail out! bad test JSON %s: %s\n", text, je.text);
		exit(1);
	}
	return j;
}

static int
has_raw(const struct request *r, size_t k)
{
	return r->n_img > k && r->img[k].len == sizeof(raw) &&
	    memcmp(r->img[k].data, raw, sizeof(raw)) == 0;
}

/* a classify request packed as msgpack, the user's content: text, bin image (data_kind 0),
 * base64 string (1), or an int (2); then text */
static enum proto_status
mp_classify(int data_kind, const char *key, struct request *r, struct err *e)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define S(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
	msgpack_pack_map(&pk, 2);
	S("op"); S("classify");
	S("messages");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	S("role"); S("user");
	S("content");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 2);
	S("type"); S("image");
	S(key);
	if (data_kind == 0) {
		msgpack_pack_bin(&pk, sizeof(raw));
		msgpack_pack_bin_body(&pk, raw, sizeof(raw));
	} else if (data_kind == 1)
		S(RAW64);
	else
		msgpack_pack_int(&pk, 7);
	msgpack_pack_map(&pk, 2);
	S("type"); S("text");
	S("text"); S("what is this?");
#undef S
	enum proto_status st = proto_decode_msgpack((const unsigned char *)sb.data, sb.size, &lim,
	    r, e);
	msgpack_sbuffer_destroy(&sb);
	return st;
}

static void
msgpack_cases(void)
{
	struct request r;
	struct err e;
	enum proto_status st;

	st = mp_classify(0, "data", &r, &e);
	ok(st == PROTO_OK && r.n_img == 1 && has_raw(&r, 0) && conv_n_images(&r.conv) == 1 &&
	    r.conv.msg[0].n_parts == 1, "msgpack: a bin image part is taken, the text kept (%s)",
	    st ? e.msg : "ok");
	proto_request_free(&r);
	st = mp_classify(1, "data", &r, &e);
	ok(st == PROTO_OK && has_raw(&r, 0), "msgpack: base64 text data is decoded too (%s)",
	    st ? e.msg : "ok");
	proto_request_free(&r);
	st = mp_classify(2, "data", &r, &e);
	ok(st == PROTO_BAD_REQUEST && strstr(e.msg, "messages[0].content[0].data: expected "
	    "binary") != NULL, "msgpack: an int as data refused: %s", e.msg);
	proto_request_free(&r);
	st = mp_classify(0, "blob", &r, &e);
	ok(st == PROTO_BAD_REQUEST && strstr(e.msg, "messages[0].content[0].blob: binary values are "
	    "not accepted") != NULL, "msgpack: bin anywhere but data refused: %s", e.msg);
	proto_request_free(&r);
}

/* JSON classify bodies: the status and a piece of the error */
static const struct {
	const char *body;
	enum proto_status st;
	const char *want;
} json_bad[] = {
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]}",
	  PROTO_BAD_REQUEST, "messages[0].content[0].data: missing" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"assistant\",\"content\":\"yo\"},{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
	  "\"https://example.com/cat.png\"}}]}]}",
	  PROTO_BAD_REQUEST, "messages[2].content[1].image_url.url: remote image URLs are not fetched" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:text/plain;base64," RAW64 "\"}}]}]}",
	  PROTO_BAD_REQUEST, "media type must be image/" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png," RAW64 "\"}}]}]}",
	  PROTO_BAD_REQUEST, "must be base64" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO*w0K\"}}]}]}",
	  PROTO_BAD_REQUEST, "messages[0].content[0].image_url.url: base64: invalid character '*' "
	  "at offset 4" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64," RAW64 "\","
	  "\"detail\":\"huge\"}}]}]}",
	  PROTO_BAD_REQUEST, "image_url.detail: expected" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,\"}}]}]}",
	  PROTO_BAD_REQUEST, "an empty image" },
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
	  "\"data\":\"" RAW64 "\"},{\"type\":\"image\",\"data\":\"" RAW64 "\"},{\"type\":\"image\","
	  "\"data\":\"" RAW64 "\"}]}]}",
	  PROTO_TOO_LARGE, "messages[0].content[2].data: more than 2 images in the request" },
	/* 88 base64 characters: 66 bytes, over the test's 64 */
	{ "{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
	  "\"data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	  "AAAAAAAA\"}]}]}",
	  PROTO_TOO_LARGE, "more than limits.max_image_bytes (64)" },
};

static void
json_cases(void)
{
	struct request r;
	struct err e;

	for (size_t i = 0; i < sizeof(json_bad) / sizeof(json_bad[0]); i++) {
		json_t *o = parse(json_bad[i].body);
		enum proto_status st = proto_request_from_json(o, &lim, &r, &e);
		ok(st == json_bad[i].st && strstr(e.msg, json_bad[i].want) != NULL && r.n_img <= 2,
		    "json %zu refused (%s): %s", i, proto_status_code(st), st ? e.msg : "accepted");
		proto_request_free(&r);
		json_decref(o);
	}
	/* 86 characters with padding: 64 bytes, exactly the limit */
	json_t *o = parse("{\"op\":\"classify\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"image\",\"data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAA==\"},{\"type\":\"image_url\",\"image_url\":\"data:image/jpeg;base64,"
	    RAW64 "\"}]}]}");
	enum proto_status st = proto_request_from_json(o, &lim, &r, &e);
	ok(st == PROTO_OK && r.n_img == 2 && r.img[0].len == 64 && has_raw(&r, 1) &&
	    conv_n_images(&r.conv) == 2, "json: an image of exactly max_image_bytes and an "
	    "image_url string, in order (%s)", st ? e.msg : "ok");
	proto_request_free(&r);
	json_decref(o);
}

static void
oai_cases(void)
{
	struct request *r = NULL, cr;
	size_t n = 0;
	struct oai_opts o;
	struct err e;
	json_t *b;
	enum proto_status st;

	b = parse("{\"input\":[{\"type\":\"text\",\"text\":\"is this ok?\"},{\"type\":\"image_url\","
	    "\"image_url\":{\"url\":\"data:image/png;base64," RAW64 "\"}}]}");
	st = oai_mod_parse(b, "", &lim, &r, &n, &o, &e);
	ok(st == PROTO_OK && n == 1 && has_raw(&r[0], 0) && conv_n_images(&r[0].conv) == 1,
	    "moderation: an image_url input part is taken (%s)", st ? e.msg : "ok");
	oai_requests_free(r, n);
	json_decref(b);
	b = parse("{\"input\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"http://example.com/x.png\"}}]}");
	st = oai_mod_parse(b, "", &lim, &r, &n, &o, &e);
	ok(st == PROTO_BAD_REQUEST && strstr(e.msg, "input[0].image_url.url: remote image URLs") !=
	    NULL, "moderation: a remote URL refused, the input part named: %s", e.msg);
	json_decref(b);
	b = parse("{\"input\":[{\"type\":\"audio\"}]}");
	st = oai_mod_parse(b, "", &lim, &r, &n, &o, &e);
	ok(st == PROTO_BAD_REQUEST && strstr(e.msg, "input[0].type: only \"text\" and "
	    "\"image_url\"") != NULL, "moderation: other part types refused: %s", e.msg);
	json_decref(b);
	b = parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"describe\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
	    RAW64 "\"}}]}]}");
	st = oai_chat_parse(b, "", &lim, &cr, &o, &e);
	ok(st == PROTO_OK && has_raw(&cr, 0) && chat_n_images(&cr.chat) == 1,
	    "chat: an image_url part is taken, in the chat's messages (%s)", st ? e.msg : "ok");
	proto_request_free(&cr);
	json_decref(b);
}

int
main(void)
{
	b64_cases();
	msgpack_cases();
	json_cases();
	oai_cases();
	return done_testing();
}
