/* t_oai.c - proto/oai.c: OpenAI moderation and chat-completions bodies into the protocol's
 * requests (accepted shapes, refused fields with the field named), and the answers turned
 * into moderation results, chat.completion and chat.completion.chunk objects. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "proto/oai.h"
#include "tap.h"

static const struct proto_limits lim = { 1 << 20, 16, 0, 0 };

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (j == NULL) {
		printf("Bail out! bad test JSON %s: %s\n", text, je.text);
		exit(1);
	}
	return j;
}

/* the text of message m, part k */
static int
part_is(const struct request *r, size_t m, size_t k, const char *want)
{
	return r->conv.n > m && r->conv.msg[m].n_parts > k &&
	    r->conv.msg[m].part_len[k] == strlen(want) &&
	    memcmp(r->conv.msg[m].parts[k], want, strlen(want)) == 0;
}

/* refused moderation bodies: the status and a piece of the message */
static const struct {
	const char *body, *want;
} mod_bad[] = {
	{ "[]", "the body must be a JSON object" },
	{ "{}", "input: missing" },
	{ "{\"input\": 3}", "input: expected a string, an array of strings or an array of text" },
	{ "{\"input\": []}", "input: an empty array" },
	{ "{\"input\": [\"a\", 2]}", "input[1]: expected a string" },
	{ "{\"input\": [\"a\", {\"type\": \"text\", \"text\": \"b\"}]}", "input[1]: expected a string" },
	{ "{\"input\": [{\"type\": \"text\", \"text\": \"b\"}, \"a\"]}", "input[1]: expected a string or a {" },
	{ "{\"input\": [{\"type\": \"image_url\", \"image_url\": {}}]}", "input[0].image_url.url: expected a data: URL" },
	{ "{\"input\": [{\"type\": \"text\"}]}", "input[0].text: expected a string" },
	{ "{\"input\": [{\"type\": \"text\", \"text\": 5}]}", "input[0].text: expected a string" },
	{ "{\"input\": \"a\", \"model\": 7}", "model: expected a model name" },
	{ "{\"input\": \"a\", \"guardd\": 1}", "guardd: expected an object" },
	{ "{\"input\": \"a\", \"guardd\": {\"polcy\": \"x\"}}", "guardd.polcy: unknown field" },
	{ "{\"input\": \"a\", \"guardd\": {\"deadline_ms\": 0}}", "deadline_ms: expected an integer" },
};

static void
test_mod(void)
{
	struct request *r;
	size_t n;
	struct oai_opts o;
	struct err e;
	json_t *b;

	b = parse("{\"input\": \"How do I bake bread?\", \"model\": \"rig-l3.gguf\"}");
	ok(oai_mod_parse(b, "", &lim, &r, &n, &o, &e) == PROTO_OK && n == 1, "a string is one input");
	ok(r[0].op == OP_CLASSIFY && r[0].conv.n == 1 && !r[0].conv.msg[0].assistant &&
	    part_is(&r[0], 0, 0, "How do I bake bread?"), "as one user message of the text");
	ok(o.model && strcmp(o.model, "rig-l3.gguf") == 0, "the model is read");
	ok(r[0].policy[0] == '\0', "no policy: the default");
	ok(r[0].id_len == 1 && r[0].id[0] == 0, "the id is 0 (msgpack)");
	oai_requests_free(r, n);
	json_decref(b);

	b = parse("{\"input\": [\"one\", \"two\", \"three\"]}");
	ok(oai_mod_parse(b, "strict", &lim, &r, &n, &o, &e) == PROTO_OK && n == 3,
	    "an array of strings is a batch");
	int good = 1;
	for (size_t i = 0; i < n; i++)
		good &= r[i].id_len == 1 && r[i].id[0] == i && strcmp(r[i].policy, "strict") == 0;
	ok(good, "ids 0..n-1, each under the policy");
	ok(part_is(&r[2], 0, 0, "three") && o.model == NULL, "in order; no model");
	oai_requests_free(r, n);
	json_decref(b);

	b = parse("{\"input\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", "
	    "\"text\": \"b\"}]}");
	ok(oai_mod_parse(b, "", &lim, &r, &n, &o, &e) == PROTO_OK && n == 1,
	    "an array of text parts is one input (as OpenAI reads it)");
	ok(r[0].conv.msg[0].n_parts == 2 && part_is(&r[0], 0, 1, "b"), "its parts are the message's");
	oai_requests_free(r, n);
	json_decref(b);

	b = parse("{\"input\": \"x\", \"guardd\": {\"policy\": \"p\", \"deadline_ms\": 250}}");
	ok(oai_mod_parse(b, "p", &lim, &r, &n, &o, &e) == PROTO_OK && r[0].deadline_ms == 250,
	    "guardd.deadline_ms is the request's deadline");
	oai_requests_free(r, n);
	json_decref(b);

	char big[4096];
	int k = snprintf(big, sizeof(big), "{\"input\": [");
	for (int i = 0; i <= OAI_MAX_INPUTS; i++)
		k += snprintf(big + k, sizeof(big) - (size_t)k, "%s\"t\"", i ? "," : "");
	snprintf(big + k, sizeof(big) - (size_t)k, "]}");
	b = parse(big);
	ok(oai_mod_parse(b, "", &lim, &r, &n, &o, &e) == PROTO_BAD_REQUEST && r == NULL &&
	    strstr(e.msg, "more than") != NULL, "more than %d inputs: refused (%s)", OAI_MAX_INPUTS,
	    e.msg);
	json_decref(b);

	for (size_t i = 0; i < sizeof(mod_bad) / sizeof(mod_bad[0]); i++) {
		b = parse(mod_bad[i].body);
		enum proto_status st = oai_mod_parse(b, "", &lim, &r, &n, &o, &e);
		ok(st == PROTO_BAD_REQUEST && r == NULL && n == 0 && o.code != NULL &&
		    strstr(e.msg, mod_bad[i].want) != NULL, "moderation %s: %s", mod_bad[i].body,
		    st == PROTO_OK ? "accepted" : e.msg);
		json_decref(b);
	}
}

static void
test_result(void)
{
	const char *codes[] = { "S1", "S9", "S14" };
	json_t *v = parse("{\"flagged\": true, \"decision\": \"block\", \"unsafe_score\": 0.9, "
	    "\"categories\": [\"S9\"], \"category_scores\": {\"S1\": 0.015625, \"S9\": "
	    "0.96123456789012345}, \"policy\": \"default\"}");
	json_t *res = oai_mod_result(v, codes, 3);
	json_t *c = json_object_get(res, "categories"), *s = json_object_get(res, "category_scores");

	ok(json_is_true(json_object_get(res, "flagged")), "flagged from the verdict");
	ok(json_object_size(c) == 3 && json_is_false(json_object_get(c, "S1")) &&
	    json_is_true(json_object_get(c, "S9")) && json_is_false(json_object_get(c, "S14")),
	    "categories: every code, true where it triggered");
	ok(json_real_value(json_object_get(s, "S9")) == 0.96123456789012345 &&
	    json_real_value(json_object_get(s, "S1")) == 0.015625, "scores copied bit for bit");
	ok(json_is_null(json_object_get(s, "S14")), "null where the guard computed none");
	ok(json_object_get(res, "guardd") == v, "guardd is the whole verdict");
	json_t *t = json_object_get(json_object_get(res, "category_applied_input_types"), "S14");
	ok(json_array_size(t) == 1 && strcmp(json_string_value(json_array_get(t, 0)), "text") == 0,
	    "category_applied_input_types: text");
	json_decref(res);
	json_decref(v);

	v = parse("{\"flagged\": false, \"categories\": [], \"category_scores\": {}}");
	res = oai_mod_result(v, codes, 3);
	ok(json_is_false(json_object_get(res, "flagged")) &&
	    json_object_size(json_object_get(res, "category_scores")) == 3, "a safe verdict: all codes");
	json_decref(res);
	json_decref(v);

	/* a code the verdict names that the list lacks (the policy changed meanwhile) */
	v = parse("{\"flagged\": true, \"categories\": [\"S20\"], \"category_scores\": {\"S21\": 0.5}}");
	res = oai_mod_result(v, codes, 1);
	c = json_object_get(res, "categories");
	ok(json_is_true(json_object_get(c, "S20")) && json_is_false(json_object_get(c, "S21")) &&
	    json_real_value(json_object_get(json_object_get(res, "category_scores"), "S21")) == 0.5,
	    "codes of the verdict beyond the list are kept");
	json_t *full = oai_mod_response("modr-1", "rig-l3.gguf", json_pack("[O]", res));
	char *txt = json_dumps(full, JSON_COMPACT | JSON_SORT_KEYS);
	const char *want = "{\"id\":\"modr-1\",\"model\":\"rig-l3.gguf\",\"results\":[{";
	ok(txt && strncmp(txt, want, strlen(want)) == 0,
	    "the response: id, model, results (%s)", txt ? txt : "NULL");
	free(txt);
	json_decref(full);
	json_decref(res);
	json_decref(v);
}

static const struct {
	const char *body, *want, *code;
} chat_bad[] = {
	{ "{}", "messages: missing", "bad_request" },
	{ "{\"messages\": 3}", "messages: expected an array", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", "n: only one choice", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{}]}", "tools: tool calling", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": \"required\"}", "tool_choice:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"functions\": [{}]}", "functions:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true}", "logprobs:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 2}", "top_logprobs:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": {\"type\": \"json_schema\"}}", "response_format:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logit_bias\": {\"5\": 1}}", "logit_bias:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"presence_penalty\": 0.5}", "presence_penalty:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"modalities\": [\"text\", \"audio\"]}", "modalities[1]", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"audio\": {}}", "audio:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"reasoning_effort\": \"low\"}", "reasoning_effort:", "unsupported_parameter" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": 1}", "stream: expected a boolean", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": -1}", "temperature:", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 0}", "max_tokens:", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5, \"max_completion_tokens\": 6}", "max_completion_tokens: differs", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop: at most", "bad_request" },
	{ "{\"messages\": [{\"role\": \"tool\", \"content\": \"hi\"}]}", "tool calling is not supported", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages[0].content[0].image_url: missing", "bad_request" },
	{ "{\"messages\": [{\"role\": \"assistant\", \"content\": \"hi\"}]}", "messages", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true, \"stream_options\": {\"include_usage\": 1}}", "stream_options:", "bad_request" },
	{ "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"model\": \"\"}", "model:", "bad_request" },
};

static void
test_chat(void)
{
	struct request r;
	struct oai_opts o;
	struct err e;
	json_t *b;

	b = parse("{\"model\": \"gen\", \"messages\": [{\"role\": \"developer\", \"content\": \"Be "
	    "brief.\"}, {\"role\": \"user\", \"content\": \"Tell me a story.\", \"name\": \"x\"}], "
	    "\"stream\": true, \"stream_options\": {\"include_usage\": true}, "
	    "\"max_completion_tokens\": 12, \"temperature\": 0, \"top_p\": 0.5, \"seed\": 7, "
	    "\"stop\": \"END\", \"n\": 1, \"tools\": [], \"logprobs\": false, \"user\": \"u\", "
	    "\"response_format\": {\"type\": \"text\"}, \"frequency_penalty\": 0, \"top_k\": 3}");
	ok(oai_chat_parse(b, "strict", &lim, &r, &o, &e) == PROTO_OK, "a full chat body is accepted (%s)",
	    e.msg);
	ok(r.op == OP_CHAT && r.chat.n == 2 && r.chat.msg[0].role == CHAT_SYSTEM,
	    "developer is read as system");
	ok(r.conv.n == 1 && part_is(&r, 0, 0, "Tell me a story."), "the guard sees the user turn");
	ok(o.stream && o.include_usage && r.copt.stream, "stream and include_usage");
	ok(r.copt.has_max_tokens && r.copt.max_tokens == 12, "max_completion_tokens is max_tokens");
	ok(r.copt.has_temperature && r.copt.temperature == 0 && r.copt.top_p == 0.5 &&
	    r.copt.has_seed && r.copt.seed == 7 && r.copt.top_k == 3, "sampling fields");
	ok(r.copt.n_stop == 1 && strcmp(r.copt.stop[0], "END") == 0, "stop as a string");
	ok(strcmp(r.policy, "strict") == 0 && strcmp(o.model, "gen") == 0, "policy and model");
	proto_request_free(&r);
	json_decref(b);

	b = parse("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream_options\": "
	    "{\"include_usage\": true}}");
	ok(oai_chat_parse(b, "", &lim, &r, &o, &e) == PROTO_OK && !o.stream && !o.include_usage &&
	    !r.copt.has_max_tokens, "stream_options without stream: no effect");
	proto_request_free(&r);
	json_decref(b);

	for (size_t i = 0; i < sizeof(chat_bad) / sizeof(chat_bad[0]); i++) {
		b = parse(chat_bad[i].body);
		enum proto_status st = oai_chat_parse(b, "", &lim, &r, &o, &e);
		ok(st == PROTO_BAD_REQUEST && o.code && strcmp(o.code, chat_bad[i].code) == 0 &&
		    strstr(e.msg, chat_bad[i].want) != NULL, "chat %s: %s (%s)", chat_bad[i].body,
		    st == PROTO_OK ? "accepted" : e.msg, o.code ? o.code : "no code");
		proto_request_free(&r);
		json_decref(b);
	}
}

static void
test_answers(void)
{
	struct oai_ids ids = { "chatcmpl-1", 1700000000, "gen" };
	json_t *a = parse("{\"text\": \"Once upon\", \"finish_reason\": \"stop\", "
	    "\"request_verdict\": {\"decision\": \"allow\"}, \"response_verdict\": {\"decision\": "
	    "\"allow\"}, \"usage\": {\"prompt_tokens\": 20, \"completion_tokens\": 5, "
	    "\"released_tokens\": 5}, \"checks\": 1}");
	json_t *o = oai_completion(&ids, a);
	json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
	json_t *u = json_object_get(o, "usage");

	ok(strcmp(json_string_value(json_object_get(o, "object")), "chat.completion") == 0 &&
	    strcmp(json_string_value(json_object_get(o, "id")), "chatcmpl-1") == 0 &&
	    json_integer_value(json_object_get(o, "created")) == 1700000000, "chat.completion ids");
	ok(strcmp(json_string_value(json_object_get(json_object_get(ch, "message"), "content")),
	    "Once upon") == 0 && strcmp(json_string_value(json_object_get(ch, "finish_reason")),
	    "stop") == 0, "the text, finish_reason stop");
	ok(json_integer_value(json_object_get(u, "total_tokens")) == 25, "usage with total_tokens");
	ok(json_object_get(json_object_get(o, "guardd"), "request_verdict") != NULL &&
	    json_integer_value(json_object_get(json_object_get(json_object_get(o, "guardd"),
	    "usage"), "released_tokens")) == 5, "the guardd extension");
	json_decref(o);

	o = oai_chunk(&ids, "Once", 4, 1);
	ch = json_array_get(json_object_get(o, "choices"), 0);
	ok(strcmp(json_string_value(json_object_get(o, "object")), "chat.completion.chunk") == 0 &&
	    strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")),
	    "assistant") == 0 && json_is_null(json_object_get(ch, "finish_reason")),
	    "the first chunk has the role");
	json_decref(o);
	o = oai_chunk(&ids, "a\0b", 3, 0);
	ch = json_array_get(json_object_get(o, "choices"), 0);
	ok(json_string_length(json_object_get(json_object_get(ch, "delta"), "content")) == 3 &&
	    json_object_get(json_object_get(ch, "delta"), "role") == NULL,
	    "later chunks: content only, NUL bytes kept");
	json_decref(o);
	o = oai_chunk_final(&ids, a);
	ch = json_array_get(json_object_get(o, "choices"), 0);
	ok(json_object_size(json_object_get(ch, "delta")) == 0 &&
	    strcmp(json_string_value(json_object_get(ch, "finish_reason")), "stop") == 0 &&
	    json_object_get(o, "guardd") && json_object_get(o, "usage"),
	    "the final chunk: empty delta, finish_reason, usage, guardd");
	json_decref(o);
	o = oai_chunk_usage(&ids, a);
	ok(json_array_size(json_object_get(o, "choices")) == 0 &&
	    json_integer_value(json_object_get(json_object_get(o, "usage"), "prompt_tokens")) == 20,
	    "include_usage's chunk: no choices, the usage");
	json_decref(o);
	json_decref(a);

	a = parse("{\"text\": \"Once upon\", \"finish_reason\": \"content_filter\", \"refusal\": "
	    "\"I can't help with that.\", \"usage\": {\"prompt_tokens\": 20, "
	    "\"completion_tokens\": 50, \"released_tokens\": 40}}");
	o = oai_completion(&ids, a);
	ch = json_array_get(json_object_get(o, "choices"), 0);
	ok(strcmp(json_string_value(json_object_get(json_object_get(ch, "message"), "content")),
	    "I can't help with that.") == 0 && strcmp(json_string_value(json_object_get(
	    json_object_get(ch, "message"), "refusal")), "I can't help with that.") == 0 &&
	    strcmp(json_string_value(json_object_get(ch, "finish_reason")), "content_filter") == 0,
	    "blocked: the refusal as content, content_filter");
	json_decref(o);
	o = oai_chunk_final(&ids, a);
	ch = json_array_get(json_object_get(o, "choices"), 0);
	ok(strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")),
	    "I can't help with that.") == 0 && strcmp(json_string_value(json_object_get(ch,
	    "finish_reason")), "content_filter") == 0, "blocked stream: the refusal ends it");
	json_decref(o);
	json_decref(a);
}

static void
test_model_id(void)
{
	static const struct {
		const char *path, *want;
		size_t n;
	} c[] = {
		{ "/m/rig-l3.gguf", "rig-l3.gguf", 64 }, { "/m/Llama-Guard-3-1B/", "Llama-Guard-3-1B", 64 },
		{ "x.gguf", "x.gguf", 64 }, { "/m/abcdef", "abc", 4 }, { "m/a//", "a", 64 }, { "", "", 8 },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		oai_model_id(c[i].path, out, c[i].n);
		ok(strcmp(out, c[i].want) == 0, "model id of '%s' is '%s' (%s)", c[i].path, c[i].want,
		    out);
	}
}

int
main(void)
{
	test_mod();
	test_result();
	test_chat();
	test_answers();
	test_model_id();
	return done_testing();
}
