/* t_proto.c - the wire layer: the incremental framer (every msgpack type, every split point,
 * linear scanning, bad bytes at their offset, oversized frames refused early), the msgpack
 * to JSON decoder (duplicate keys, UTF-8, ranges, binary/ext, depth), the one request schema
 * on msgpack and JSON inputs, error codes as values. */
#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/mp.h"
#include "proto/mpjson.h"
#include "proto/proto.h"
#include "tap.h"

/* ---- byte building ---- */

struct bytes {
	unsigned char *p;
	size_t n, cap;
};

static void
put(struct bytes *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
put1(struct bytes *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void
putbe(struct bytes *b, uint64_t v, int k)
{
	for (int i = k - 1; i >= 0; i--)
		put1(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void
putfill(struct bytes *b, unsigned char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(b, &c, 1);
}

/* a header byte, a big-endian length of k bytes, then n filler bytes */
static void
put_sized(struct bytes *b, unsigned head, int k, size_t n, unsigned char fill)
{
	put1(b, head);
	putbe(b, n, k);
	putfill(b, fill, n);
}

#define NFRAMES 64
static struct bytes frames[NFRAMES];
static const char *frame_name[NFRAMES];
static int nframes;

static struct bytes *
frame(const char *name)
{
	frame_name[nframes] = name;
	return &frames[nframes++];
}

/* one frame per msgpack type and length form, plus nested ones */
static void
make_frames(void)
{
	struct bytes *b;

	put1(frame("positive fixint"), 0x05);
	put1(frame("negative fixint"), 0xe3);
	put1(frame("nil"), 0xc0);
	put1(frame("false"), 0xc2);
	put1(frame("true"), 0xc3);
	b = frame("uint8"); put1(b, 0xcc); putbe(b, 200, 1);
	b = frame("uint16"); put1(b, 0xcd); putbe(b, 60000, 2);
	b = frame("uint32"); put1(b, 0xce); putbe(b, 4000000000u, 4);
	b = frame("uint64"); put1(b, 0xcf); putbe(b, UINT64_MAX, 8);
	b = frame("int8"); put1(b, 0xd0); putbe(b, 0x80, 1);
	b = frame("int16"); put1(b, 0xd1); putbe(b, 0x8000, 2);
	b = frame("int32"); put1(b, 0xd2); putbe(b, 0x80000000u, 4);
	b = frame("int64"); put1(b, 0xd3); putbe(b, 0x8000000000000000ull, 8);
	b = frame("float32"); put1(b, 0xca); putbe(b, 0x3f800000, 4);
	b = frame("float64"); put1(b, 0xcb); putbe(b, 0x3ff0000000000000ull, 8);
	b = frame("fixstr"); put1(b, 0xa5); put(b, "hello", 5);
	put1(frame("empty fixstr"), 0xa0);
	put_sized(frame("str8"), 0xd9, 1, 40, 'x');
	put_sized(frame("str16"), 0xda, 2, 300, 'y');
	put_sized(frame("str32"), 0xdb, 4, 70000, 'z');
	put_sized(frame("bin8"), 0xc4, 1, 3, 0);
	put_sized(frame("bin16"), 0xc5, 2, 256, 1);
	put_sized(frame("bin32"), 0xc6, 4, 0, 2);
	for (int k = 0; k < 5; k++) {
		static const char *const names[] = { "fixext1", "fixext2", "fixext4", "fixext8",
			"fixext16" };
		b = frame(names[k]);
		put1(b, 0xd4 + (unsigned)k);
		put1(b, 7);	/* type */
		putfill(b, 0xc1, (size_t)1 << k);	/* payload bytes are not values */
	}
	b = frame("ext8"); put1(b, 0xc7); putbe(b, 3, 1); put1(b, 1); putfill(b, 0xc1, 3);
	b = frame("ext16"); put1(b, 0xc8); putbe(b, 0, 2); put1(b, 1);
	b = frame("ext32"); put1(b, 0xc9); putbe(b, 5, 4); put1(b, 0xff); putfill(b, 0xc1, 5);
	b = frame("fixarray"); put1(b, 0x93); put1(b, 1); put1(b, 0xc0); put1(b, 0xa1); put1(b, 'a');
	put1(frame("empty fixarray"), 0x90);
	b = frame("array16"); put1(b, 0xdc); putbe(b, 3, 2); put1(b, 1); put1(b, 2); put1(b, 3);
	b = frame("array32"); put1(b, 0xdd); putbe(b, 2, 4); put1(b, 0xc3); put1(b, 0x90);
	b = frame("fixmap"); put1(b, 0x82); put1(b, 0xa1); put1(b, 'k'); put1(b, 1);
	put1(b, 0xa1); put1(b, 'l'); put1(b, 0x80);
	put1(frame("empty fixmap"), 0x80);
	b = frame("map16"); put1(b, 0xde); putbe(b, 1, 2); put1(b, 0xa1); put1(b, 'k');
	put_sized(b, 0xd9, 1, 10, 'v');
	b = frame("map32"); put1(b, 0xdf); putbe(b, 1, 4); put1(b, 0x01); put1(b, 0x02);
	b = frame("nested 32 deep");
	for (int i = 0; i < MP_MAX_DEPTH; i++)
		put1(b, 0x91);
	put1(b, 0x2a);
	b = frame("a request with a bin and an ext inside");
	put1(b, 0x83);
	put1(b, 0xa2); put(b, "id", 2); put1(b, 0xcd); putbe(b, 300, 2);
	put1(b, 0xa1); put1(b, 'b'); put_sized(b, 0xc4, 1, 20, 0xc1);
	put1(b, 0xa1); put1(b, 'x'); put1(b, 0x92); put1(b, 0xd6); put1(b, 1); putfill(b, 0xdb, 4);
	put1(b, 0x90);
}

/* one frame fed in chunks of the sizes drawn by `chunk`; 1 when it ends where it should */
static int
feed_chunks(const struct bytes *b, size_t max, size_t (*chunk)(size_t at, void *), void *arg,
    uint64_t *scanned)
{
	struct mp_framer f;
	size_t at = 0;

	mp_framer_init(&f, max);
	while (at < b->n) {
		size_t k = chunk(at, arg), used;
		if (k > b->n - at)
			k = b->n - at;
		enum mp_frame r = mp_framer_feed(&f, b->p + at, k, &used);
		at += used;
		if (r == MP_FRAME_OK) {
			*scanned = mp_framer_scanned(&f);
			return at == b->n && mp_framer_length(&f) == b->n;
		}
		if (r != MP_FRAME_MORE || used != k)
			return 0;
	}
	return 0;
}

static size_t
chunk_split(size_t at, void *arg)
{
	size_t s = *(size_t *)arg;

	return at < s ? s - at : SIZE_MAX;
}

static size_t
chunk_one(size_t at, void *arg)
{
	(void)at;
	(void)arg;
	return 1;
}

static size_t
chunk_random(size_t at, void *arg)
{
	uint64_t *s = arg;

	(void)at;
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return 1 + (size_t)((*s >> 33) % 97);
}

static void
test_framer_types(void)
{
	for (int i = 0; i < nframes; i++) {
		struct bytes *b = &frames[i];
		struct mp_framer f;
		size_t used, len = 0;
		uint64_t sc = 0;

		mp_framer_init(&f, 1 << 20);
		enum mp_frame r = mp_framer_feed(&f, b->p, b->n, &used);
		ok(r == MP_FRAME_OK && used == b->n && mp_framer_length(&f) == b->n &&
		    mp_framer_scanned(&f) == b->n &&
		    mp_frame_len(b->p, b->n, 1 << 20, &len) == MP_FRAME_OK && len == b->n,
		    "framer, %s: one frame of %zu bytes in one feed (the old framer agrees)",
		    frame_name[i], b->n);
		int all = 1;
		for (size_t s = 1; s < b->n && all && b->n < 1000; s++)
			all = feed_chunks(b, 1 << 20, chunk_split, &s, &sc) && sc == b->n;
		if (b->n < 1000)
			ok(all, "framer, %s: split at each of its %zu points, the same frame", frame_name[i],
			    b->n - 1);
		ok(feed_chunks(b, 1 << 20, chunk_one, NULL, &sc) && sc == b->n,
		    "framer, %s: byte by byte, the same frame; %llu bytes scanned", frame_name[i],
		    (unsigned long long)sc);
		uint64_t seed = 42 + (uint64_t)i;
		all = 1;
		for (int t = 0; t < 20 && all; t++)
			all = feed_chunks(b, 1 << 20, chunk_random, &seed, &sc) && sc == b->n;
		ok(all, "framer, %s: 20 random chunkings, the same frame", frame_name[i]);
	}
}

/* frames back to back in one stream: each found in turn, whatever the chunking */
static void
test_framer_stream(void)
{
	struct bytes all = { 0 };
	size_t ends[NFRAMES];

	for (int i = 0; i < nframes; i++) {
		put(&all, frames[i].p, frames[i].n);
		ends[i] = all.n;
	}
	for (int mode = 0; mode < 3; mode++) {
		struct mp_framer f;
		size_t at = 0, start = 0;
		int got = 0, good = 1;
		uint64_t seed = 7;
		mp_framer_init(&f, 1 << 20);
		while (at < all.n && good) {
			size_t k = mode == 0 ? all.n - at : mode == 1 ? 1 : chunk_random(at, &seed), used;
			if (k > all.n - at)
				k = all.n - at;
			while (k > 0 && good) {
				enum mp_frame r = mp_framer_feed(&f, all.p + at, k, &used);
				at += used;
				k -= used;
				if (r == MP_FRAME_OK) {
					good = got < nframes && at == ends[got] &&
					    mp_framer_length(&f) == ends[got] - start;
					got++;
					start = at;
					mp_framer_reset(&f);
				} else if (r != MP_FRAME_MORE)
					good = 0;
			}
		}
		ok(good && got == nframes && mp_framer_scanned(&f) == all.n,
		    "framer: %d frames back to back (%zu bytes, %s): each found at its end; "
		    "scanned %llu == bytes fed", nframes, all.n,
		    mode == 0 ? "one feed" : mode == 1 ? "byte by byte" : "random chunks",
		    (unsigned long long)mp_framer_scanned(&f));
	}
	free(all.p);
}

/* the quadratic case the daemon used to have: a 1 MB request trickling in 64-byte writes */
static void
test_framer_linear(void)
{
	struct bytes b = { 0 };
	struct mp_framer f;
	size_t at = 0, used;
	enum mp_frame r = MP_FRAME_MORE;

	/* {messages: [{role: user, content: "..."} x 4000], op: classify}: ~1 MB of headers */
	put1(&b, 0x82);
	put1(&b, 0xa8); put(&b, "messages", 8);
	put1(&b, 0xdc); putbe(&b, 4000, 2);
	for (int i = 0; i < 4000; i++) {
		put1(&b, 0x82);
		put1(&b, 0xa4); put(&b, "role", 4);
		put1(&b, 0xa4); put(&b, "user", 4);
		put1(&b, 0xa7); put(&b, "content", 7);
		put_sized(&b, 0xda, 2, 230, 'q');
	}
	put1(&b, 0xa2); put(&b, "op", 2);
	put1(&b, 0xa8); put(&b, "classify", 8);
	mp_framer_init(&f, 2 << 20);
	while (at < b.n && (r = mp_framer_feed(&f, b.p + at, b.n - at < 64 ? b.n - at : 64, &used)) ==
	    MP_FRAME_MORE)
		at += used;
	at += r == MP_FRAME_OK ? used : 0;
	ok(r == MP_FRAME_OK && at == b.n && mp_framer_scanned(&f) == b.n,
	    "framer: a %zu-byte request in 64-byte pieces: complete, %llu bytes scanned (linear)",
	    b.n, (unsigned long long)mp_framer_scanned(&f));
	free(b.p);
}

/* invalid bytes: MP_FRAME_BAD, with the offending byte's offset in the chunk and the frame */
static void
test_framer_bad(void)
{
	struct bytes b = { 0 };
	struct mp_framer f;
	size_t used;

	put1(&b, 0x94); put1(&b, 1); put1(&b, 0xa2); put(&b, "ab", 2); put1(&b, 0xc1); put1(&b, 2);
	mp_framer_init(&f, 1000);
	ok(mp_framer_feed(&f, b.p, b.n, &used) == MP_FRAME_BAD && used == 5 &&
	    mp_framer_offset(&f) == 5, "framer: 0xc1 at byte 5: BAD, offset 5 (used %zu, offset %zu)",
	    used, mp_framer_offset(&f));
	ok(mp_framer_feed(&f, b.p, 1, &used) == MP_FRAME_BAD && used == 0,
	    "framer: stays BAD until reset, consuming nothing");
	int all = 1;
	for (size_t s = 1; s < b.n && all; s++) {
		mp_framer_init(&f, 1000);
		enum mp_frame r = mp_framer_feed(&f, b.p, s, &used);
		if (s <= 5)
			all = r == MP_FRAME_MORE && used == s &&
			    mp_framer_feed(&f, b.p + s, b.n - s, &used) == MP_FRAME_BAD && used == 5 - s;
		else
			all = r == MP_FRAME_BAD && used == 5;
		all = all && mp_framer_offset(&f) == 5;
	}
	ok(all, "framer: split anywhere, the bad byte is at its offset in the chunk and in the frame");
	free(b.p);
	b = (struct bytes){ 0 };
	for (int i = 0; i < MP_MAX_DEPTH + 1; i++)
		put1(&b, 0x91);
	put1(&b, 0x01);
	mp_framer_init(&f, 1000);
	ok(mp_framer_feed(&f, b.p, b.n, &used) == MP_FRAME_BAD && used == MP_MAX_DEPTH &&
	    mp_framer_offset(&f) == MP_MAX_DEPTH,
	    "framer: %d nested arrays: BAD at the one too deep (byte %d)", MP_MAX_DEPTH + 1,
	    MP_MAX_DEPTH);
	free(b.p);
}

/* oversized frames are refused as soon as the declared size is read */
static void
test_framer_big(void)
{
	struct mp_framer f;
	size_t used;
	unsigned char p[16];
	const size_t max = 100;

	/* a str32 of 1000 bytes, fed byte by byte: BIG at its 5th byte, no payload needed */
	unsigned char s32[] = { 0xdb, 0, 0, 0x03, 0xe8 };
	enum mp_frame r = MP_FRAME_MORE;
	size_t k = 0;
	mp_framer_init(&f, max);
	while (k < sizeof(s32) && (r = mp_framer_feed(&f, s32 + k, 1, &used)) == MP_FRAME_MORE)
		k++;
	ok(r == MP_FRAME_BIG && k == 4 && used == 0 && mp_framer_offset(&f) == 4,
	    "framer: a 1000-byte str32 with max 100: BIG at its length's last byte, before the payload");
	/* an array32 announcing 4 billion elements */
	unsigned char a32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	mp_framer_init(&f, max);
	ok(mp_framer_feed(&f, a32, sizeof(a32), &used) == MP_FRAME_BIG && used == 4,
	    "framer: an array32 of 4294967295 elements: BIG from its header");
	/* elements announced but not sent count: 60 nils pending, then a 50-byte string */
	struct bytes b = { 0 };
	put1(&b, 0xdc); putbe(&b, 61, 2);
	put_sized(&b, 0xd9, 1, 50, 'x');
	mp_framer_init(&f, max);
	ok(mp_framer_feed(&f, b.p, b.n, &used) == MP_FRAME_BIG && used == 4 &&
	    mp_framer_offset(&f) == 4,
	    "framer: 60 more elements still announced + a 50-byte string > 100: BIG at the string's "
	    "header");
	free(b.p);
	/* exactly max is fine, one more is not */
	for (int extra = 0; extra < 2; extra++) {
		b = (struct bytes){ 0 };
		put_sized(&b, 0xd9, 1, max - 2 + (size_t)extra, 'x');
		mp_framer_init(&f, max);
		r = mp_framer_feed(&f, b.p, b.n, &used);
		ok(extra ? r == MP_FRAME_BIG : (r == MP_FRAME_OK && mp_framer_length(&f) == max),
		    "framer: a frame of %zu bytes with max %zu: %s", b.n, max, extra ? "BIG" : "OK");
		free(b.p);
	}
	(void)p;
}

/* ---- msgpack -> JSON ---- */

static void
pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* a msg {role, content} */
static void
pk_msg(msgpack_packer *pk, const char *role, const char *content)
{
	msgpack_pack_map(pk, 2);
	pk_str(pk, "role");
	pk_str(pk, role);
	pk_str(pk, "content");
	pk_str(pk, content);
}

static const char *
decode_err(const msgpack_sbuffer *sb, struct err *e)
{
	json_t *j = mpjson_decode((const unsigned char *)sb->data, sb->size, e);

	if (j != NULL) {
		json_decref(j);
		return NULL;
	}
	return e->msg;
}

static int
has(const char *s, const char *want)
{
	return s != NULL && strstr(s, want) != NULL;
}

static void
test_mpjson(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct err e;
	char want[128];
	size_t at;
	const char *m;

	/* two messages arrays */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pk_str(&pk, "op"); pk_str(&pk, "classify");
	pk_str(&pk, "messages"); msgpack_pack_array(&pk, 1); pk_msg(&pk, "user", "hi");
	at = sb.size;
	pk_str(&pk, "messages"); msgpack_pack_array(&pk, 1); pk_msg(&pk, "assistant", "yo");
	snprintf(want, sizeof(want), "messages: duplicate key at byte %zu", at);
	m = decode_err(&sb, &e);
	ok(has(m, want), "mpjson: two 'messages' arrays: '%s' (want '%s')", m ? m : "accepted", want);
	msgpack_sbuffer_destroy(&sb);

	/* a duplicate deep inside */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pk_str(&pk, "op"); pk_str(&pk, "classify");
	pk_str(&pk, "messages"); msgpack_pack_array(&pk, 2); pk_msg(&pk, "user", "hi");
	msgpack_pack_map(&pk, 3);
	pk_str(&pk, "role"); pk_str(&pk, "assistant");
	pk_str(&pk, "content"); msgpack_pack_array(&pk, 1); msgpack_pack_map(&pk, 3);
	pk_str(&pk, "type"); pk_str(&pk, "text"); pk_str(&pk, "text"); pk_str(&pk, "a");
	at = sb.size;
	pk_str(&pk, "text"); pk_str(&pk, "b");
	pk_str(&pk, "role"); pk_str(&pk, "user");
	snprintf(want, sizeof(want), "messages[1].content[0].text: duplicate key at byte %zu", at);
	m = decode_err(&sb, &e);
	ok(has(m, want), "mpjson: a repeated key in a content part: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);

	/* invalid UTF-8, at its byte */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pk_str(&pk, "policy");
	msgpack_pack_str(&pk, 4);
	at = sb.size + 2;
	msgpack_pack_str_body(&pk, "ab\xc3(", 4);
	snprintf(want, sizeof(want), "policy: invalid UTF-8 at byte %zu", at);
	m = decode_err(&sb, &e);
	ok(has(m, want), "mpjson: invalid UTF-8 in a value: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str(&pk, 2);
	msgpack_pack_str_body(&pk, "\xff" "a", 2);
	msgpack_pack_nil(&pk);
	m = decode_err(&sb, &e);
	ok(has(m, "invalid UTF-8 at byte 2"), "mpjson: invalid UTF-8 in a key: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);

	/* a key with a NUL byte (JSON text read by jansson cannot carry one) */
	unsigned char nulkey[] = { 0x81, 0xa3, 'a', 0, 'b', 0xc0 };
	json_t *jn = mpjson_decode(nulkey, sizeof(nulkey), &e);
	ok(jn == NULL && has(e.msg, "a key with a NUL byte at byte 1"), "mpjson: a key with a NUL byte: '%s'",
	    jn ? "accepted" : e.msg);
	json_decref(jn);

	/* a map key that is not a string */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_nil(&pk);
	m = decode_err(&sb, &e);
	ok(has(m, "map keys must be strings at byte 1"), "mpjson: an integer key: '%s'",
	    m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);

	/* integers at the edges of int64 */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, INT64_MAX);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_double(&pk, 0.5);
	json_t *j = mpjson_decode((const unsigned char *)sb.data, sb.size, &e);
	ok(j && json_integer_value(json_array_get(j, 0)) == INT64_MAX &&
	    json_integer_value(json_array_get(j, 1)) == INT64_MIN &&
	    json_real_value(json_array_get(j, 2)) == 0.5,
	    "mpjson: INT64_MAX, INT64_MIN and a float decode exactly");
	json_decref(j);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pk_str(&pk, "deadline_ms");
	msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
	m = decode_err(&sb, &e);
	ok(has(m, "deadline_ms: integer 9223372036854775808 is out of range (int64) at byte 13"),
	    "mpjson: 2^63: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);

	/* binary and extension values */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pk_str(&pk, "x");
	msgpack_pack_bin(&pk, 2);
	msgpack_pack_bin_body(&pk, "ab", 2);
	m = decode_err(&sb, &e);
	ok(has(m, "x: binary values are not accepted"), "mpjson: bin: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_ext(&pk, 4, 1);
	msgpack_pack_ext_body(&pk, "abcd", 4);
	m = decode_err(&sb, &e);
	ok(has(m, "[0]: extension values are not accepted at byte 1"), "mpjson: ext: '%s'",
	    m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);

	/* depth, truncation, trailing bytes, counts larger than the bytes */
	struct bytes b = { 0 };
	for (int i = 0; i < MP_MAX_DEPTH + 2; i++)
		put1(&b, 0x91);
	put1(&b, 0x01);
	j = mpjson_decode(b.p, b.n, &e);
	ok(j == NULL && has(e.msg, "nested deeper than"), "mpjson: %d nested arrays: '%s'",
	    MP_MAX_DEPTH + 2, j ? "accepted" : e.msg);
	json_decref(j);
	free(b.p);
	unsigned char tr[] = { 0x92, 0xcd, 0x01 };
	j = mpjson_decode(tr, sizeof(tr), &e);
	ok(j == NULL && has(e.msg, "[0]: truncated integer at byte 1"), "mpjson: a truncated uint16: '%s'",
	    j ? "accepted" : e.msg);
	json_decref(j);
	unsigned char tr2[] = { 0x93, 0x01, 0x02 };
	j = mpjson_decode(tr2, sizeof(tr2), &e);
	ok(j == NULL && has(e.msg, "array of 3 elements, only 2 bytes left at byte 0"),
	    "mpjson: an array announcing more elements than bytes: '%s'", j ? "accepted" : e.msg);
	json_decref(j);
	unsigned char tail[] = { 0x01, 0x02 };
	j = mpjson_decode(tail, sizeof(tail), &e);
	ok(j == NULL && has(e.msg, "1 bytes after the object at byte 1"), "mpjson: trailing bytes: '%s'",
	    j ? "accepted" : e.msg);
	json_decref(j);
	unsigned char huge[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xc0 };
	j = mpjson_decode(huge, sizeof(huge), &e);
	ok(j == NULL && has(e.msg, "map of 4294967295 entries, only 2 bytes left"),
	    "mpjson: a map32 announcing 4 billion entries: refused before allocating: '%s'",
	    j ? "accepted" : e.msg);
	json_decref(j);
	unsigned char nan[] = { 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0 };
	j = mpjson_decode(nan, sizeof(nan), &e);
	ok(j == NULL && has(e.msg, "finite"), "mpjson: NaN: '%s'", j ? "accepted" : e.msg);
	json_decref(j);

	/* a map of 20000 distinct keys decodes, and one repeated at the end is found */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 20001);
	char k[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		pk_str(&pk, k);
		msgpack_pack_int(&pk, i);
	}
	at = sb.size;
	pk_str(&pk, "k12345");
	msgpack_pack_nil(&pk);
	snprintf(want, sizeof(want), "k12345: duplicate key at byte %zu", at);
	m = decode_err(&sb, &e);
	ok(has(m, want), "mpjson: 20000 keys then a repeat of one: '%s'", m ? m : "accepted");
	msgpack_sbuffer_destroy(&sb);
}

/* ---- the request schema ---- */

static enum proto_status
decode(const msgpack_sbuffer *sb, int max_messages, struct request *r, struct err *e)
{
	struct proto_limits l = { 1 << 20, max_messages, 0, 0 };

	return proto_decode_msgpack((const unsigned char *)sb->data, sb->size, &l, r, e);
}

static void
test_request(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct request r;
	struct err e;
	enum proto_status st;

	/* a full request, an unknown field skipped, the id's bytes kept as sent (uint16 form) */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	pk_str(&pk, "id");
	const unsigned char id16[] = { 0xcd, 0x00, 0x07 };
	msgpack_sbuffer_write(&sb, (const char *)id16, 3);
	pk_str(&pk, "op"); pk_str(&pk, "classify");
	pk_str(&pk, "future"); msgpack_pack_array(&pk, 2); msgpack_pack_nil(&pk); msgpack_pack_true(&pk);
	pk_str(&pk, "policy"); pk_str(&pk, "strict");
	pk_str(&pk, "deadline_ms"); msgpack_pack_int(&pk, 250);
	pk_str(&pk, "messages"); msgpack_pack_array(&pk, 2);
	pk_msg(&pk, "user", "hi");
	msgpack_pack_map(&pk, 2);
	pk_str(&pk, "role"); pk_str(&pk, "assistant");
	pk_str(&pk, "content"); msgpack_pack_array(&pk, 2);
	for (int i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 2);
		pk_str(&pk, "type"); pk_str(&pk, "text");
		pk_str(&pk, "text"); pk_str(&pk, i ? "there" : "hello");
	}
	st = decode(&sb, 8, &r, &e);
	ok(st == PROTO_OK && r.op == OP_CLASSIFY && strcmp(r.policy, "strict") == 0 &&
	    r.deadline_ms == 250 && r.conv.n == 2 && !r.conv.msg[0].assistant &&
	    r.conv.msg[1].assistant && r.conv.msg[1].n_parts == 2 &&
	    strcmp(r.conv.msg[1].parts[1], "there") == 0 && r.id_len == 3 &&
	    memcmp(r.id, id16, 3) == 0,
	    "request: a classify with every field and an unknown one: decoded, id bytes kept (%s)",
	    st == PROTO_OK ? "ok" : e.msg);
	json_t *idj = proto_id_json(&r);
	ok(json_integer_value(idj) == 7, "request: proto_id_json gives the id back (7)");
	json_decref(idj);
	proto_request_free(&r);

	/* the same request as JSON text through the same schema */
	const char *js = "{\"id\": 7, \"op\": \"classify\", \"future\": [null, true], \"policy\": "
	    "\"strict\", \"deadline_ms\": 250, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
	    "{\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"hello\"}, "
	    "{\"type\": \"text\", \"text\": \"there\"}]}]}";
	json_error_t je;
	json_t *o = json_loads(js, JSON_REJECT_DUPLICATES, &je);
	struct proto_limits l = { 1 << 20, 8, 0, 0 };
	st = proto_request_from_json(o, &l, &r, &e);
	idj = proto_id_json(&r);
	ok(st == PROTO_OK && r.op == OP_CLASSIFY && strcmp(r.policy, "strict") == 0 &&
	    r.deadline_ms == 250 && r.conv.n == 2 && r.conv.msg[1].n_parts == 2 &&
	    strcmp(r.conv.msg[1].parts[0], "hello") == 0 && json_integer_value(idj) == 7,
	    "request: the same request from JSON: the same fields and id");
	json_decref(idj);
	proto_request_free(&r);
	json_decref(o);
	msgpack_sbuffer_destroy(&sb);

	/* JSON ids: string and null round-trip; a float id is refused */
	o = json_loads("{\"id\": \"req-9\", \"op\": \"ping\"}", 0, &je);
	st = proto_request_from_json(o, &l, &r, &e);
	idj = proto_id_json(&r);
	ok(st == PROTO_OK && r.op == OP_PING && json_is_string(idj) &&
	    strcmp(json_string_value(idj), "req-9") == 0, "request: a JSON string id is kept");
	json_decref(idj);
	json_decref(o);
	o = json_loads("{\"id\": 1.5, \"op\": \"ping\"}", 0, &je);
	st = proto_request_from_json(o, &l, &r, &e);
	ok(st == PROTO_BAD_REQUEST && has(e.msg, "id: expected an integer, a string or nil, got a float"),
	    "request: a float id: '%s'", e.msg);
	json_decref(o);

	/* errors carry the id; duplicate policy keys; unknown ops as a status */
	struct { const char *what; const char *json_body; enum proto_status want; const char *msg; }
	cases[] = {
		{ "an unknown op", "\"op\": \"explode\"", PROTO_UNKNOWN_OP, "op: unknown operation 'explode'" },
		{ "no op", "\"policy\": \"a\"", PROTO_BAD_REQUEST, "op: missing" },
		{ "an op that is not a string", "\"op\": 3", PROTO_BAD_REQUEST, "op: expected a string" },
		{ "classify without messages", "\"op\": \"classify\"", PROTO_BAD_REQUEST,
			"messages: required by classify" },
		{ "messages not an array", "\"op\": \"classify\", \"messages\": {}", PROTO_BAD_REQUEST,
			"messages: expected an array, got" },
		{ "more messages than the limit", "\"op\": \"classify\", \"messages\": [{\"role\": "
			"\"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, "
			"{\"role\": \"user\", \"content\": \"c\"}]", PROTO_BAD_REQUEST,
			"messages: 3 messages, the limit is 2" },
		{ "roles that do not alternate", "\"op\": \"classify\", \"messages\": [{\"role\": "
			"\"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]",
			PROTO_BAD_REQUEST, "alternate" },
		{ "an empty policy name", "\"op\": \"ping\", \"policy\": \"\"", PROTO_BAD_REQUEST,
			"policy: a name of 1 to 63 bytes" },
		{ "a deadline of 0", "\"op\": \"ping\", \"deadline_ms\": 0", PROTO_BAD_REQUEST,
			"deadline_ms: expected an integer in [1, 3600000]" },
		{ "an array id", "\"op\": \"ping\", \"id\": [1]", PROTO_BAD_REQUEST,
			"id: expected an integer, a string or nil, got an array" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text), "{%s}", cases[i].json_body);
		o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
		/* msgpack: the id first (so the error carries it), then the fields */
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		int has_id = json_object_get(o, "id") != NULL;
		msgpack_pack_map(&pk, json_object_size(o) + !has_id);
		if (!has_id) {
			pk_str(&pk, "id");
			pk_str(&pk, "x1");
		}
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v) {
			pk_str(&pk, k);
			proto_pack_json(&sb, v);
		}
		struct err e2;
		struct request r2;
		enum proto_status s1 = decode(&sb, 2, &r, &e);
		enum proto_status s2 = proto_request_from_json(o, &(struct proto_limits){ 1 << 20, 2, 0, 0 },
		    &r2, &e2);
		ok(s1 == cases[i].want && s2 == cases[i].want && has(e.msg, cases[i].msg) &&
		    strcmp(e.msg, e2.msg) == 0 && (has_id || (r.id_len == 3 && memcmp(r.id, "\xa2x1", 3) == 0)),
		    "request, %s: %s from msgpack and JSON alike: '%s'%s", cases[i].what,
		    proto_status_code(cases[i].want), e.msg, has_id ? "" : "; the error carries the id");
		proto_request_free(&r);
		proto_request_free(&r2);
		msgpack_sbuffer_destroy(&sb);
		json_decref(o);
	}

	/* a repeated policy no longer merges: refused, with the id */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pk_str(&pk, "id"); msgpack_pack_int(&pk, 5);
	pk_str(&pk, "op"); pk_str(&pk, "ping");
	pk_str(&pk, "policy"); pk_str(&pk, "str");
	pk_str(&pk, "policy"); pk_str(&pk, "ict");
	st = decode(&sb, 8, &r, &e);
	ok(st == PROTO_BAD_REQUEST && has(e.msg, "policy: duplicate key at byte") && r.id_len == 1 &&
	    r.id[0] == 5, "request: two 'policy' keys: bad_request '%s', the error carries id 5", e.msg);
	proto_request_free(&r);
	msgpack_sbuffer_destroy(&sb);

	/* a request that is not a map; bigger than the limit */
	unsigned char arr[] = { 0x90 };
	struct proto_limits small = { 10, 8, 0, 0 };
	st = proto_decode_msgpack(arr, 1, &small, &r, &e);
	ok(st == PROTO_BAD_REQUEST && has(e.msg, "a request must be a map, got an array"),
	    "request: an array: '%s'", e.msg);
	unsigned char big[12] = { 0xab };
	st = proto_decode_msgpack(big, sizeof(big), &small, &r, &e);
	ok(st == PROTO_TOO_LARGE, "request: 12 bytes with a limit of 10: too_large ('%s')", e.msg);
}

/* ---- status codes, error frames ---- */

static void
test_status(void)
{
	static const char *const want[] = { "ok", "bad_request", "too_large", "unknown_op",
		"unknown_policy", "busy", "timeout", "shutting_down", "forbidden",
		"too_many_connections", "reload_failed", "internal", "unsupported" };
	int good = PROTO_N_STATUS == (int)(sizeof(want) / sizeof(want[0]));

	for (int s = 0; s < PROTO_N_STATUS && good; s++)
		good = strcmp(proto_status_code((enum proto_status)s), want[s]) == 0;
	ok(good && strcmp(proto_status_code(PROTO_N_STATUS), "internal") == 0,
	    "proto_status_code: the %d stable wire strings; out of range: internal", PROTO_N_STATUS);

	struct request r;
	memset(&r, 0, sizeof(r));
	r.id[0] = 0x09;
	r.id_len = 1;
	msgpack_sbuffer a;
	msgpack_sbuffer_init(&a);
	proto_error(&a, &r, PROTO_BUSY, "full");
	struct err e;
	json_t *j = mpjson_decode((const unsigned char *)a.data, a.size, &e);
	json_t *er = json_object_get(j, "error");
	ok(j && json_object_size(j) == 3 && json_integer_value(json_object_get(j, "id")) == 9 &&
	    json_is_false(json_object_get(j, "ok")) &&
	    strcmp(json_string_value(json_object_get(er, "code")), "busy") == 0 &&
	    strcmp(json_string_value(json_object_get(er, "message")), "full") == 0,
	    "proto_error: {id: 9, ok: false, error: {code: busy, message: full}}");
	json_decref(j);
	msgpack_sbuffer_destroy(&a);
}

int
main(void)
{
	make_frames();
	test_framer_types();
	test_framer_stream();
	test_framer_linear();
	test_framer_bad();
	test_framer_big();
	test_mpjson();
	test_request();
	test_status();
	for (int i = 0; i < nframes; i++)
		free(frames[i].p);
	return done_testing();
}
