/* t_conv.c - conversations from JSON: every accepted shape, every error naming its field
 * path, duplicate keys refused at every depth (the path of the object and the key named),
 * the message limit of conv_from_json_max, and hostile JSON (deep nesting, NUL, huge
 * counts) answered with an error, never a crash.
 *   t_conv */
#include <jansson.h>

#include "classifier/conv.h"
#include "tap.h"

static const struct {
	const char *json;
	const char *want;	/* NULL: accepted; else a substring of the error */
} CASES[] = {
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
	  "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":\"c\"}]}", NULL },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":\"bob\"}],\"extra\":1}", NULL },
	/* structure errors, each naming the field */
	{ "[1,2]", "expected an object with 'messages', got an array" },
	{ "{}", "messages: missing" },
	{ "{\"messages\":{}}", "messages: expected an array, got an object" },
	{ "{\"messages\":[]}", "messages: empty" },
	{ "{\"messages\":[7]}", "messages[0]: expected an object, got a number" },
	{ "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role: missing" },
	{ "{\"messages\":[{\"role\":1,\"content\":\"x\"}]}", "messages[0].role: expected a string, got a number" },
	{ "{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages[0].role: 'system'" },
	{ "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}", "messages[0]: conversation roles must alternate" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
	  "messages[1]: conversation roles must alternate" },
	{ "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content: missing" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content: expected a string or a list of text parts, got null" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":[\"x\"]}]}", "messages[0].content[0]: expected an object, got a string" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}", "messages[0].content[0].type: missing" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"url\":\"u\"}]}]}",
	  "messages[0].content[0].type: only \"text\" parts" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":"
	  "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":false}]}]}",
	  "messages[1].content[1].text: expected a string, got a boolean" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"},"
	  "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\"},"
	  "{\"type\":\"text\"}]}]}", "messages[3].content[0].text: missing" },
	/* duplicate keys at every depth: the object's path and the key */
	{ "{\"messages\":[],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
	  "the top level: duplicate object key near '\"messages\"'" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"role\":\"user\"}]}",
	  "messages[0]: duplicate object key near '\"role\"'" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\","
	  "\"content\":\"c\"}]}", "messages[1]: duplicate object key near '\"content\"'" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
	  "{\"type\":\"text\",\"text\":\"b\",\"text\":\"c\"}]}]}",
	  "messages[0].content[1]: duplicate object key near '\"text\"'" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"x\":1,\"x\":2}]}",
	  "messages[0]: duplicate object key near '\"x\"'" },
	{ "{\"meta\":{\"a\":[{},{\"b\":{\"c\":1,\"c\":1}}]},\"messages\":[]}",
	  "meta.a[1].b: duplicate object key near '\"c\"'" },
	{ "{\"k\\\"ey\":{\"a\":1,\"a\":1}}", "k\\\"ey: duplicate object key" },
	{ "{\"a\":\"}{,[\",\"b\":{\"c\":1,\"c\":2}}", "b: duplicate object key" },
	/* hostile JSON */
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "\\u0000 is not allowed" },
	{ "{\"messages\":[{\"role\":\"us\\u0000er\",\"content\":\"x\"}]}", "\\u0000 is not allowed" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "JSON, line 1" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}", "JSON, line 1" },
	{ "", "JSON, line" },
};

int
main(void)
{
	struct conv c;
	struct err e;

	for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
		int rc = conv_parse(&c, CASES[i].json, strlen(CASES[i].json), &e);
		if (CASES[i].want == NULL)
			ok(rc == 0 && c.n > 0, "case %zu accepted (%s)", i, rc ? e.msg : "");
		else
			ok(rc == -1 && strstr(e.msg, CASES[i].want) != NULL && c.msg == NULL,
			    "case %zu: '%s' (%s)", i, CASES[i].want, rc ? e.msg : "accepted");
		if (rc == 0)
			conv_free(&c);
	}

	/* parts kept as given, NUL-free lengths */
	const char *two = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"  a \"},"
	    "{\"type\":\"text\",\"text\":\"\\u00e9\"}]},{\"role\":\"assistant\",\"content\":\"b\"}]}";
	ok(conv_parse(&c, two, strlen(two), &e) == 0 && c.n == 2 && c.msg[0].n_parts == 2 &&
	    c.msg[0].part_len[0] == 4 && strcmp(c.msg[0].parts[0], "  a ") == 0 &&
	    strcmp(c.msg[0].parts[1], "\xc3\xa9") == 0 && c.msg[1].assistant && !c.msg[0].assistant,
	    "parts, roles and text kept exactly");
	conv_free(&c);

	/* the message limit */
	json_t *root = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "messages", "role", "user",
	    "content", "a", "role", "assistant", "content", "b", "role", "user", "content", "c");
	ok(conv_from_json_max(&c, root, 3, &e) == 0 && c.n == 3, "3 messages under a limit of 3");
	conv_free(&c);
	ok(conv_from_json_max(&c, root, 2, &e) == -1 && strstr(e.msg, "messages: 3 messages, the limit is 2") &&
	    c.msg == NULL, "3 messages over a limit of 2 (%s)", e.msg);
	ok(conv_from_json(&c, root, &e) == 0 && c.n == 3, "conv_from_json: no limit");
	conv_free(&c);
	json_decref(root);

	/* many messages: no built-in cap in conv_from_json */
	json_t *msgs = json_array();
	for (int i = 0; i < 10000; i++)
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", i % 2 ? "assistant" : "user",
		    "content", "x"));
	root = json_pack("{s:o}", "messages", msgs);
	ok(conv_from_json(&c, root, &e) == 0 && c.n == 10000, "10000 messages decoded");
	conv_free(&c);
	ok(conv_from_json_max(&c, root, 4096, &e) == -1 && strstr(e.msg, "10000 messages, the limit is 4096"),
	    "and refused over a limit of 4096");
	json_decref(root);

	/* deep nesting: jansson's depth limit, a clear error */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 32);
	size_t o = 0;
	o += (size_t)sprintf(deep, "{\"messages\":");
	for (size_t i = 0; i < depth; i++)
		deep[o++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	ok(conv_parse(&c, deep, o, &e) == -1 && strstr(e.msg, "JSON"), "100000 nested arrays: refused (%.60s)",
	    e.msg);
	/* a duplicate below deep nesting: the path is cut, not overflowed */
	o = (size_t)sprintf(deep, "{\"messages\":");
	for (size_t i = 0; i < 100; i++)
		o += (size_t)sprintf(deep + o, "{\"k\":");
	o += (size_t)sprintf(deep + o, "{\"d\":1,\"d\":2}");
	for (size_t i = 0; i < 101; i++)
		deep[o++] = '}';
	ok(conv_parse(&c, deep, o, &e) == -1 && strstr(e.msg, "duplicate object key") && strstr(e.msg, "..."),
	    "a duplicate 100 objects deep: named, the path cut (%.80s...)", e.msg);
	free(deep);
	return done_testing();
}
