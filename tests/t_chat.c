/* t_chat.c - the chat API: Python's str.strip() on Unicode white space, chats from JSON and
 * their errors (field paths), the date, the formats, end tokens, and a property over random
 * chats on the real tiny-l3 and tiny-l2 vocabularies: the ids chat_render gives equal the
 * tokenizer's ids of its own text with special tokens parsed (no message holds special-token
 * text), and text-only and ids-only renders agree with the joint one. */
#include <jansson.h>
#include <time.h>

#include "core/gguf.h"
#include "core/tok.h"
#include "generator/chat.h"
#include "util/utext.h"
#include "tap.h"

static void
trims(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", "" }, { "   ", "" }, { " a ", "a" }, { "\t\n\v\f\ra b\r\n", "a b" },
		{ "\x1c\x1d\x1e\x1fx\x1f", "x" },
		{ "\xc2\xa0\xe3\x80\x80h\xc3\xa9llo\xe2\x80\x83\n", "h\xc3\xa9llo" },
		{ "\xc2\x85x\xe2\x80\xa8\xe2\x80\xa9", "x" },
		{ "\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8ay\xe2\x80\xaf\xe2\x81\x9f", "y" },
		/* not white space for str.isspace(): zero-width space, BOM, U+180E */
		{ "\xe2\x80\x8bz\xef\xbb\xbf", "\xe2\x80\x8bz\xef\xbb\xbf" },
		{ "\xe1\xa0\x8e", "\xe1\xa0\x8e" },
		{ "a\xc2\xa0 b", "a\xc2\xa0 b" }, { "\xc3\xa9", "\xc3\xa9" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t a, n, k = strlen(cases[i].in);
		utext_trim(cases[i].in, k, &a, &n);
		ok(n == strlen(cases[i].want) && memcmp(cases[i].in + a, cases[i].want, n) == 0,
		    "utext_trim case %zu is str.strip()", i);
	}
}

static void
today(void)
{
	char got[16], want[32];
	time_t t0 = time(NULL);
	struct tm tm;

	chat_today(got);
	/* the test runs in the C locale (no setlocale): strftime's %b is English here */
	strftime(want, sizeof(want), "%d %b %Y", gmtime_r(&t0, &tm));
	if (strcmp(got, want) != 0) {	/* midnight passed between the two calls */
		chat_today(got);
		t0 = time(NULL);
		strftime(want, sizeof(want), "%d %b %Y", gmtime_r(&t0, &tm));
	}
	ok(strcmp(got, want) == 0, "chat_today: '%s' is today in UTC as %%d %%b %%Y ('%s')", got,
	    want);
}

static void
formats(void)
{
	enum chat_format f;

	ok(chat_format_parse("llama3", &f) == 0 && f == CHAT_FMT_LLAMA3 &&
	    strcmp(chat_format_name(f), "llama3") == 0, "llama3 parses and names back");
	ok(chat_format_parse("llama2", &f) == 0 && f == CHAT_FMT_LLAMA2 &&
	    strcmp(chat_format_name(f), "llama2") == 0, "llama2 parses and names back");
	ok(chat_format_parse("auto", &f) == 0 && f == CHAT_FMT_AUTO, "auto parses");
	ok(chat_format_parse("Llama3", &f) == -1 && chat_format_parse("", &f) == -1,
	    "other names are refused");
}

static void
json_errors(void)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"messages\":[]}", "messages: empty" },
		{ "{}", "messages: missing" },
		{ "{\"messages\":{}}", "messages: expected an array, got an object" },
		{ "\"x\"", "expected an object with \"messages\", got a string" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":null}",
		  "tools: tool calling is not supported" },
		{ "{\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}",
		  "messages[0].role: 'tool': tool calling is not supported" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\","
		  "\"content\":\"\",\"tool_calls\":[]}]}",
		  "messages[1].tool_calls: tool calling is not supported" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]}",
		  "messages[1].role: missing" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
		  "messages[0].content[0].text: missing" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}]}",
		  "messages[0].content[0].type: missing" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"text\":\"a\"}]}]}",
		  "messages[0].content[0].type: only \"text\" parts are supported" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":true}]}",
		  "messages[0].content: expected a string or a list of text parts, got a boolean" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"add_generation_prompt\":\"no\"}",
		  "add_generation_prompt: expected true or false, got a string" },
		{ "{\"messages\":[1]}", "messages[0]: expected an object, got a number" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"},"
		  "{\"role\":\"user\",\"content\":\"c\"}]}", "messages: 3 messages, more than the limit of 2" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t je;
		json_t *root = json_loads(cases[i].json, JSON_DECODE_ANY, &je);
		struct chat c;
		struct err e = { "" };
		int rc = root ? chat_from_json(&c, root, 2, &e) : 0;
		if (!ok(rc == -1 && strstr(e.msg, cases[i].want) != NULL, "chat_from_json error %zu: %s",
		    i, cases[i].want))
			diag("got: %s", e.msg);
		json_decref(root);
	}
}

static void
json_ok(void)
{
	const char *js = "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
	    "\"content\":[{\"type\":\"text\",\"text\":\" a\"},{\"type\":\"text\",\"text\":\"b \"}]},"
	    "{\"role\":\"assistant\",\"content\":\"x\"}],\"add_generation_prompt\":false,\"other\":1}";
	json_error_t je;
	json_t *root = json_loads(js, 0, &je);
	struct chat c;
	struct err e;
	struct buf t = { 0 };

	ok(chat_from_json(&c, root, 0, &e) == 0, "a chat with parts, a system message and other keys");
	ok(c.n == 3 && c.msg[0].role == CHAT_SYSTEM && c.msg[1].role == CHAT_USER &&
	    c.msg[2].role == CHAT_ASSISTANT, "its three roles");
	ok(c.msg[1].len == 4 && strcmp(c.msg[1].text, " ab ") == 0, "parts joined as given");
	ok(c.add_generation_prompt == 0, "add_generation_prompt false is read");
	ok(chat_render(&c, CHAT_FMT_LLAMA2, NULL, NULL, &t, NULL, &e) == 0 &&
	    strcmp(t.p, "<s>[INST] <<SYS>>\ns\n<</SYS>>\n\n ab [/INST] x </s>") == 0,
	    "Llama 2 text without a tokenizer");
	chat_free(&c);
	json_decref(root);
	buf_free(&t);
	root = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 0, &je);
	ok(chat_from_json(&c, root, 0, &e) == 0 && c.add_generation_prompt == 1,
	    "add_generation_prompt defaults to true");
	chat_free(&c);
	json_decref(root);
}

static void
render_errors(void)
{
	struct chat c;
	struct err e = { "" };
	struct buf t = { 0 };
	struct tokvec ids = { 0 };

	chat_init(&c);
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "1 Jan 2025", NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "empty") != NULL, "an empty chat: %s", e.msg);
	chat_add(&c, CHAT_USER, "u", 1, &e);
	ok(chat_render(&c, CHAT_FMT_AUTO, NULL, NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "tokenizer is needed") != NULL, "auto without a tokenizer: %s", e.msg);
	ok(chat_render(&c, CHAT_FMT_LLAMA3, NULL, NULL, NULL, &ids, &e) == -1 &&
	    strstr(e.msg, "tokenizer is needed") != NULL, "ids without a tokenizer");
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "", NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "date:") != NULL, "an empty date: %s", e.msg);
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "1 Jan\n2025", NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "date: byte 5") != NULL, "a newline in the date: %s", e.msg);
	chat_add(&c, CHAT_USER, "v", 1, &e);
	ok(chat_render(&c, CHAT_FMT_LLAMA2, NULL, NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "messages[1]: conversation roles must alternate") != NULL,
	    "Llama 2, user twice: %s", e.msg);
	t.n = 0;
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "1 Jan 2025", NULL, &t, NULL, &e) == 0 &&
	    strstr(t.p, "user<|end_header_id|>\n\nu<|eot_id|><|start_header_id|>user") != NULL,
	    "Llama 3, user twice: rendered as the template does");
	chat_add(&c, CHAT_SYSTEM, "s", 1, &e);
	c.add_generation_prompt = 0;
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "1 Jan 2025", NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "messages[2]: a system message may only come first") != NULL,
	    "Llama 3, a late system message: %s", e.msg);
	chat_free(&c);
	chat_init(&c);
	chat_add(&c, CHAT_USER, "\xff", 1, &e);
	ok(chat_render(&c, CHAT_FMT_LLAMA2, NULL, NULL, &t, NULL, &e) == -1 &&
	    strstr(e.msg, "messages[0].content: invalid UTF-8 at byte offset 0") != NULL,
	    "invalid UTF-8 from chat_add: %s", e.msg);
	chat_free(&c);
	buf_free(&t);
}

static uint64_t rng = 42;

static unsigned
rnd(unsigned n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)(rng >> 33) % n;
}

/* random text from pieces that never spell a special token */
static size_t
random_text(char *out)
{
	static const char *const pieces[] = {
		"a", "bc", "Hello", " ", "  ", "\n", "\n\n", "\t", "\xc2\xa0", "\xe3\x80\x80", "\xc3\xa9",
		"\xe4\xb8\xad", "\xf0\x9f\x99\x82", "[INST]", "[/INST]", "<<SYS>>", "<", "|", "s", "/",
		"!", "x y", "\xe2\x80\xa8", "123", "'s", "\r\n",
	};
	size_t n = 0, k = rnd(8);

	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
		memcpy(out + n, p, strlen(p));
		n += strlen(p);
	}
	out[n] = '\0';
	return n;
}

static int
same_ids(const struct tokvec *a, const struct tokvec *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

static void
property(const struct tok *t, enum chat_format f, const char *name)
{
	int bad = 0, runs = 300;

	ok(chat_format_of(t) == f, "%s: chat_format_of", name);
	for (int r = 0; r < runs; r++) {
		struct chat c;
		struct err e;
		struct buf text = { 0 }, text2 = { 0 };
		struct tokvec ids = { 0 }, ids2 = { 0 }, want = { 0 };
		char buf[256];
		size_t nm = 1 + rnd(6);
		chat_init(&c);
		if (rnd(2))
			chat_add(&c, CHAT_SYSTEM, buf, random_text(buf), &e);
		for (size_t k = 0; k < nm; k++) {
			enum chat_role role = f == CHAT_FMT_LLAMA2 ? (k % 2 ? CHAT_ASSISTANT : CHAT_USER) :
			    (rnd(2) ? CHAT_ASSISTANT : CHAT_USER);
			chat_add(&c, role, buf, random_text(buf), &e);
		}
		c.add_generation_prompt = c.msg[c.n - 1].role == CHAT_ASSISTANT ? 0 : (int)rnd(2);
		int rc = chat_render(&c, f, "7 Mar 2025", t, &text, &ids, &e);
		int rc2 = chat_render(&c, f, "7 Mar 2025", t, NULL, &ids2, &e) |
		    chat_render(&c, f, "7 Mar 2025", NULL, &text2, NULL, &e);
		int rc3 = rc ? -1 : tok_encode(t, text.p, text.n, 1, &want, &e);
		if (rc || rc2 || rc3 || !same_ids(&ids, &want) || !same_ids(&ids, &ids2) ||
		    text.n != text2.n || memcmp(text.p, text2.p, text.n) != 0) {
			if (bad++ == 0)
				diag("%s run %d: rc %d %d %d, %zu vs %zu ids: %s", name, r, rc, rc2, rc3,
				    ids.n, want.n, rc ? e.msg : text.p);
		}
		chat_free(&c);
		buf_free(&text);
		buf_free(&text2);
		tokvec_free(&ids);
		tokvec_free(&ids2);
		tokvec_free(&want);
	}
	ok(bad == 0, "%s: %d random chats: ids == tok_encode(text, special parsed); text-only and "
	    "ids-only renders agree (%d differ)", name, runs, bad);
}

static void
with_vocab(const char *env, enum chat_format f, const char *name)
{
	const char *path = getenv(env);
	struct gguf *g;
	struct tok *t;
	struct err e;
	int32_t end[8];

	if (path == NULL || (g = gguf_open(path, &e)) == NULL) {
		printf("ok %d # skip %s: no %s (make models)\n", ++tap_n, name, env);
		return;
	}
	if ((t = tok_load_gguf(g, &e)) == NULL) {
		ok(0, "%s: tokenizer of %s: %s", name, path, e.msg);
		gguf_close(g);
		return;
	}
	int n = chat_end_tokens(t, CHAT_FMT_AUTO, end);
	/* the reference vocabulary names 128008 <|reserved_special_token_4|> (Llama 3.0's
	 * names): end tokens are looked up by text, so it has two */
	if (f == CHAT_FMT_LLAMA3 && tok_special(t, "<|eom_id|>") < 0)
		ok(n == 2 && end[0] == 128001 && end[1] == 128009,
		    "%s: end tokens <|end_of_text|> <|eot_id|> (no <|eom_id|> in this vocabulary)",
		    name);
	else if (f == CHAT_FMT_LLAMA3)
		ok(n == 3 && end[0] == 128001 && end[1] == 128008 && end[2] == 128009,
		    "%s: end tokens <|end_of_text|> <|eom_id|> <|eot_id|>", name);
	else
		ok(n == 1 && end[0] == 2, "%s: end token </s> = 2", name);
	property(t, f, name);
	tok_free(t);
	gguf_close(g);
}

int
main(void)
{
	trims();
	today();
	formats();
	json_errors();
	json_ok();
	render_errors();
	with_vocab("GUARDD_L3_GGUF", CHAT_FMT_LLAMA3, "tiny-l3");
	with_vocab("GUARDD_L2_GGUF", CHAT_FMT_LLAMA2, "tiny-l2");
	return done_testing();
}
