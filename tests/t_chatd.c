/* t_chatd.c - guardd hosting a chat model: the chat op through real daemons on private
 * sockets, read with a raw socket reader.
 *   - no generator configured: chat is `unsupported`, classify still works;
 *   - bad chats (tools, roles, stop strings) are bad_request naming the field;
 *   - a rigged generator whose greedy answer says " bomb" after ~40 tokens, under the rigged
 *     guard that flags " bomb": not one byte of the window holding it reaches the socket,
 *     the stream ends content_filter with the refusal; a request saying " bomb" generates
 *     nothing;
 *   - the final response verdict is bit-identical to classify on the full conversation;
 *   - a noise guard: on_error allow streams the whole answer, response on_error block
 *     releases nothing, on_error block generates nothing;
 *   - 4 clients at once get the texts they get alone (greedy); classify answers keep
 *     coming while chats run; a client that vanishes mid-stream frees its sequence;
 *   - both models are mapped once; the verdict log records both verdicts.
 *   t_chatd GUARDD RIG_GUARD NOISE_GUARD GEN RIG_GEN SAFE_GEN MKMODEL [L2_GEN] */
#include <pthread.h>
#include <sys/socket.h>

#include "dharness.h"
#include "proto/proto.h"

static const char *rig, *noise, *gen, *riggen, *safegen, *mkmodel;

/* one request built from JSON, sent as msgpack */
static int
send_json(struct cl *c, const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	msgpack_sbuffer sb;
	int rc;

	if (j == NULL) {
		diag("bad test JSON: %s: %s", text, je.text);
		return -1;
	}
	msgpack_sbuffer_init(&sb);
	proto_pack_json(&sb, j);
	rc = cl_send(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
	return rc;
}

/* a chat's whole answer: the deltas' text, the final message, the raw bytes received */
struct answer {
	char *deltas;
	size_t n_deltas_bytes;
	int n_deltas;
	json_t *final;		/* {id, ok, chat: {...}} or an error */
	int order_ok;		/* every delta came before the final, with the right id */
};

static void
answer_free(struct answer *a)
{
	free(a->deltas);
	json_decref(a->final);
	memset(a, 0, sizeof(*a));
}

static int
recv_answer(struct cl *c, long id, struct answer *a, double limit)
{
	memset(a, 0, sizeof(*a));
	a->order_ok = 1;
	a->deltas = calloc(1, 1);
	for (;;) {
		json_t *r = cl_recv(c, limit);
		if (r == NULL)
			return -1;
		if (json_integer_value(json_object_get(r, "id")) != id)
			a->order_ok = 0;
		json_t *d = json_object_get(r, "delta");
		if (d != NULL) {
			const char *t = json_string_value(json_object_get(d, "text"));
			size_t n = t ? json_string_length(json_object_get(d, "text")) : 0;
			a->deltas = realloc(a->deltas, a->n_deltas_bytes + n + 1);
			memcpy(a->deltas + a->n_deltas_bytes, t, n);
			a->n_deltas_bytes += n;
			a->deltas[a->n_deltas_bytes] = '\0';
			a->n_deltas++;
			json_decref(r);
			continue;
		}
		a->final = r;
		return 0;
	}
}

static json_t *
chatf(const struct answer *a, const char *path)
{
	return jpath(json_object_get(a->final, "chat"), path);
}

static const char *
chat_text(const struct answer *a)
{
	const char *t = json_string_value(chatf(a, "text"));
	return t ? t : "";
}

static const char *
finish_reason(const struct answer *a)
{
	const char *t = json_string_value(chatf(a, "finish_reason"));
	return t ? t : (err_code(a->final) ? err_code(a->final) : "?");
}

/* one chat on its own connection */
static int
chat_once(const char *sock, const char *req, long id, struct answer *a)
{
	struct cl c;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	if (cl_open(&c, sock) == -1)
		return -1;
	if (send_json(&c, req) == 0)
		rc = recv_answer(&c, id, a, 120);
	cl_close(&c);
	return rc;
}

/* the output of a command (first line kept whole; at most n-1 bytes) */
static int
run_cmd(const char *cmd, char *out, size_t n)
{
	FILE *fp = popen(cmd, "r");
	size_t k;

	if (fp == NULL)
		return -1;
	k = fread(out, 1, n - 1, fp);
	out[k] = '\0';
	return pclose(fp) == 0 ? 0 : -1;
}

/* --- 1. no generator -------------------------------------------------------------------- */

static void
test_unsupported(void)
{
	struct daemon_t d;
	struct answer a;

	char extra[600];
	snprintf(extra, sizeof(extra), "model: %s\n", rig);
	if (start(&d, "nogen", extra) == -1) {
		ok(0, "guardd without a generator starts");
		return;
	}
	chat_once(d.sock, "{\"id\": 1, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", "
	    "\"content\": \"hi\"}]}", 1, &a);
	ok(is_err(a.final, "unsupported") && strstr(err_msg(a.final), "generator.model"),
	    "no generator.model: chat is 'unsupported' naming the key (%s: %s)",
	    err_code(a.final) ? err_code(a.final) : "?", err_msg(a.final));
	answer_free(&a);
	json_t *st = request(d.sock, "stats");
	ok(st && jpath(st, "stats.chat") == NULL && jpath(st, "stats.requests.chat") &&
	    json_integer_value(jpath(st, "stats.requests.chat")) == 1,
	    "stats: the chat request counted, no chat section without a generator");
	json_decref(st);
	stop(&d);
}

/* --- 2. bad chats ------------------------------------------------------------------------ */

static void
test_bad(const char *sock)
{
	static const struct { const char *req, *want, *why; } cases[] = {
		{ "{\"id\": 2, \"op\": \"chat\"}", "messages", "no messages" },
		{ "{\"id\": 2, \"op\": \"chat\", \"tools\": [{\"type\": \"function\"}], \"messages\": "
		  "[{\"role\": \"user\", \"content\": \"hi\"}]}", "tools", "tools" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
		  "{\"role\": \"assistant\", \"content\": \"yo\"}]}", "last message",
		  "the assistant spoke last" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"system\", \"content\": "
		  "\"be nice\"}]}", "messages", "only a system message" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
		  " \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "stop", "five stop strings" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
		  " \"temperature\": -1}", "temperature", "a negative temperature" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
		  " \"max_tokens\": 0}", "max_tokens", "max_tokens 0" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
		  " \"stream\": 1}", "stream", "stream not a boolean" },
		{ "{\"id\": 2, \"op\": \"chat\", \"messages\": [{\"role\": \"tool\", \"content\": \"{}\"}]}",
		  "messages[0]", "a tool message" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct answer a;
		chat_once(sock, cases[i].req, 2, &a);
		ok(is_err(a.final, "bad_request") && strstr(err_msg(a.final), cases[i].want),
		    "bad chat (%s): bad_request naming '%s' (%s)", cases[i].why, cases[i].want,
		    err_msg(a.final));
		answer_free(&a);
	}
	ok(pong(sock), "the daemon still serves after the bad chats");
}

/* --- 3. the rigged generator: nothing unsafe leaves ---------------------------------------- */

/* the chain the rigged generator says, one token's text per line (mkmodel prints it as a
 * JSON array of strings) */
static json_t *
chain_tokens(const char *spec)
{
	char cmd[600], out[16384];

	snprintf(cmd, sizeof(cmd), "%s %s chain-json", mkmodel, spec);
	if (run_cmd(cmd, out, sizeof(out)) == -1)
		return NULL;
	return json_loads(out, 0, NULL);
}

/* all raw bytes a connection receives until the final answer, and the answer */
/* the whole msgpack messages in raw[0..n), as a JSON array (a cut one at the end is left out) */
static json_t *
decode_all(const char *raw, size_t n)
{
	json_t *all = json_array();
	msgpack_unpacker up;
	msgpack_unpacked r;

	msgpack_unpacker_init(&up, n + 16);
	memcpy(msgpack_unpacker_buffer(&up), raw, n);
	msgpack_unpacker_buffer_consumed(&up, n);
	msgpack_unpacked_init(&r);
	while (msgpack_unpacker_next(&up, &r) == MSGPACK_UNPACK_SUCCESS)
		json_array_append_new(all, obj_json(&r.data));
	msgpack_unpacked_destroy(&r);
	msgpack_unpacker_destroy(&up);
	return all;
}

static void
test_rigged(void)
{
	struct daemon_t d;
	char extra[1200];
	json_t *chain = chain_tokens("rig-gen-l3");
	size_t bomb = 0, nchain = json_array_size(chain);

	for (size_t i = 0; i < nchain; i++)
		if (strcmp(json_string_value(json_array_get(chain, i)), " bomb") == 0)
			bomb = i;
	if (chain == NULL || bomb == 0) {
		ok(0, "mkmodel rig-gen-l3 chain lists the rigged answer with ' bomb' in it");
		json_decref(chain);
		return;
	}
	snprintf(extra, sizeof(extra), "model: %s\ngenerator: {model: %s, temperature: 0, "
	    "max_tokens: 200, date: 30 Nov 2026}\nstream: {check_every: 16}\n", rig, riggen);
	if (start(&d, "rigged", extra) == -1) {
		ok(0, "guardd with the rigged generator starts");
		json_decref(chain);
		return;
	}
	/* the released text must be exactly the chain's tokens before the window holding
	 * " bomb": whole windows of 16 tokens, each judged before it was sent */
	char want[8192] = "";
	size_t windows = bomb / 16;
	for (size_t i = 0; i < windows * 16; i++)
		strcat(want, json_string_value(json_array_get(chain, i)));
	char full[8192] = "";
	for (size_t i = 0; i < nchain; i++)
		strcat(full, json_string_value(json_array_get(chain, i)));

	/* a raw reader: every byte the socket delivers is kept and searched */
	struct cl c;
	if (cl_open(&c, d.sock) == -1) {
		ok(0, "connect");
		stop(&d);
		json_decref(chain);
		return;
	}
	send_json(&c, "{\"id\": 7, \"op\": \"chat\", \"stream\": true, \"messages\": [{\"role\": "
	    "\"user\", \"content\": \"Tell me about pasta.\"}]}");
	char raw[1 << 16];
	size_t nraw = 0;
	int got_final = 0;
	for (double t0 = now(); now() - t0 < 120 && !got_final && nraw < sizeof(raw);) {
		struct pollfd pf = { c.fd, POLLIN, 0 };
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		ssize_t n = recv(c.fd, raw + nraw, sizeof(raw) - nraw, 0);
		if (n <= 0)
			break;
		nraw += (size_t)n;
		/* decode what has come so far: is the final message there? */
		json_t *all = decode_all(raw, nraw), *j;
		size_t i;
		json_array_foreach(all, i, j)
			if (json_object_get(j, "chat") || json_object_get(j, "error"))
				got_final = 1;
		json_decref(all);
	}
	int leaked = memmem(raw, nraw, "bomb", 4) != NULL;
	/* the window holding " bomb": its first token's text must not be there either */
	const char *win0 = json_string_value(json_array_get(chain, windows * 16));
	ok(got_final && !leaked, "rigged generator, streamed: %zu bytes on the socket, none of "
	    "them 'bomb' (%s)", nraw, got_final ? "final answer received" : "no final answer");
	/* the same bytes, decoded */
	struct answer a;
	memset(&a, 0, sizeof(a));
	a.deltas = calloc(1, 1);
	{
		json_t *all = decode_all(raw, nraw), *j;
		size_t i;
		json_array_foreach(all, i, j) {
			json_t *dt = json_object_get(j, "delta");
			if (dt) {
				const char *t = json_string_value(json_object_get(dt, "text"));
				size_t n = strlen(t ? t : "");
				a.deltas = realloc(a.deltas, a.n_deltas_bytes + n + 1);
				memcpy(a.deltas + a.n_deltas_bytes, t ? t : "", n + 1);
				a.n_deltas_bytes += n;
				a.n_deltas++;
			} else {
				json_decref(a.final);
				a.final = json_incref(j);
			}
		}
		json_decref(all);
	}
	ok(strcmp(finish_reason(&a), "content_filter") == 0 && json_is_string(chatf(&a, "refusal")) &&
	    strlen(json_string_value(chatf(&a, "refusal"))) > 0,
	    "the stream ends content_filter with the refusal ('%s')", finish_reason(&a));
	ok(strcmp(a.deltas, want) == 0 && strcmp(chat_text(&a), want) == 0,
	    "released: exactly the %zu windows of 16 tokens before the one holding ' bomb' (token "
	    "%zu): %zu bytes in %d deltas = the final text", windows, bomb, strlen(want), a.n_deltas);
	ok(win0 && (strlen(want) == 0 || strstr(a.deltas, full + strlen(want)) == NULL),
	    "not one token of the blocked window ('%s'...) was sent", win0 ? win0 : "?");
	ok(sstr(chatf(&a, "response_verdict.decision"), "block") &&
	    sstr(chatf(&a, "request_verdict.decision"), "allow"),
	    "verdicts: request allow, response block");
	json_int_t gen_tokens = json_integer_value(chatf(&a, "usage.completion_tokens"));
	ok(gen_tokens >= (json_int_t)bomb && gen_tokens <= (json_int_t)(windows + 1) * 16,
	    "generation stopped at the check that blocked: %lld tokens generated (bomb at %zu)",
	    (long long)gen_tokens, bomb);
	answer_free(&a);
	cl_close(&c);

	/* a request that says " bomb" is refused before anything is generated */
	chat_once(d.sock, "{\"id\": 8, \"op\": \"chat\", \"stream\": true, \"messages\": [{\"role\": "
	    "\"user\", \"content\": \"how do I make a bomb\"}]}", 8, &a);
	ok(strcmp(finish_reason(&a), "content_filter") == 0 && a.n_deltas == 0 &&
	    strcmp(chat_text(&a), "") == 0 && json_is_null(chatf(&a, "response_verdict")) &&
	    json_integer_value(chatf(&a, "usage.completion_tokens")) == 0 &&
	    sstr(chatf(&a, "request_verdict.decision"), "block"),
	    "a request with ' bomb': content_filter, no delta, nothing generated (%s)",
	    finish_reason(&a));
	answer_free(&a);
	/* the log has both chats, with both verdicts and the token counts */
	stop(&d);
	FILE *fp = fopen(d.log, "r");
	char line[65536];
	int chats = 0, good = 0;
	while (fp && fgets(line, sizeof(line), fp)) {
		json_t *j = json_loads(line, 0, NULL);
		if (sstr(json_object_get(j, "op"), "chat")) {
			chats++;
			good += json_object_get(j, "request_verdict") && json_object_get(j, "response_verdict") &&
			    json_object_get(j, "finish_reason") && json_is_integer(json_object_get(j,
			    "tokens_generated")) && json_is_integer(json_object_get(j, "tokens_released"));
		}
		json_decref(j);
	}
	if (fp)
		fclose(fp);
	ok(chats == 2 && good == 2, "verdict log: %d chat lines with both verdicts, finish_reason, "
	    "tokens generated and released (%d complete)", chats, good);
	json_decref(chain);
}

/* the control: the same rig without " bomb" streams its whole answer */
static void
test_rigged_safe(void)
{
	struct daemon_t d;
	char extra[1200], full[8192] = "";
	json_t *chain = chain_tokens("rig-gen-safe-l3");
	struct answer a;

	for (size_t i = 0; i < json_array_size(chain); i++)
		strcat(full, json_string_value(json_array_get(chain, i)));
	snprintf(extra, sizeof(extra), "model: %s\ngenerator: {model: %s, temperature: 0, "
	    "max_tokens: 200}\nstream: {check_every: 16}\n", rig, safegen);
	if (chain == NULL || start(&d, "rigsafe", extra) == -1) {
		ok(0, "guardd with the safe rigged generator starts");
		json_decref(chain);
		return;
	}
	chat_once(d.sock, "{\"id\": 9, \"op\": \"chat\", \"stream\": true, \"messages\": "
	    "[{\"role\": \"user\", \"content\": \"Tell me about pasta.\"}]}", 9, &a);
	ok(strcmp(finish_reason(&a), "stop") == 0 && strcmp(a.deltas ? a.deltas : "", full) == 0 &&
	    strcmp(chat_text(&a), full) == 0 && a.n_deltas >= 2,
	    "the safe rig: its whole answer (%zu bytes) streamed in %d deltas, finish %s",
	    strlen(full), a.n_deltas, finish_reason(&a));
	answer_free(&a);
	stop(&d);
	json_decref(chain);
}

/* --- 4. bit-identical final verdict; noise guard on_error ---------------------------------- */

static const char GREEDY_REQ[] = "{\"id\": %d, \"op\": \"chat\", \"stream\": %s, \"max_tokens\": %d, "
    "\"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]}";

static void
test_identical(const char *sock)
{
	char req[1024];
	struct answer a;

	snprintf(req, sizeof(req), GREEDY_REQ, 11, "true", 40, "Name a fruit.");
	chat_once(sock, req, 11, &a);
	const char *text = chat_text(&a);
	ok(strcmp(a.deltas ? a.deltas : "", text) == 0 && chatf(&a, "response_verdict") &&
	    !json_is_null(chatf(&a, "response_verdict")),
	    "greedy chat: %d deltas add up to the final text (%zu bytes), %lld checks", a.n_deltas,
	    strlen(text), (long long)json_integer_value(chatf(&a, "checks")));
	/* classify the same conversation: the same score to the last bit */
	json_t *conv = json_pack("{s:i, s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "id", 12, "op", "classify",
	    "messages", "role", "user", "content", "Name a fruit.", "role", "assistant", "content",
	    text);
	char *ct = json_dumps(conv, 0);
	struct cl c;
	json_t *r = NULL;
	if (cl_open(&c, sock) == 0) {
		send_json(&c, ct);
		r = cl_recv(&c, 60);
		cl_close(&c);
	}
	json_t *v1 = chatf(&a, "response_verdict"), *v2 = json_object_get(r, "verdict");
	double s1 = json_real_value(json_object_get(v1, "unsafe_score"));
	double s2 = json_real_value(json_object_get(v2, "unsafe_score"));
	ok(v2 && memcmp(&s1, &s2, sizeof(double)) == 0 && json_equal(json_object_get(v1, "decision"),
	    json_object_get(v2, "decision")) && json_equal(json_object_get(v1, "raw"),
	    json_object_get(v2, "raw")) && json_equal(json_object_get(v1, "category_scores"),
	    json_object_get(v2, "category_scores")),
	    "the last response check equals classify of the full conversation bit for bit "
	    "(unsafe_score %.17g vs %.17g)", s1, s2);
	json_decref(r);
	free(ct);
	json_decref(conv);
	answer_free(&a);
}

static void
test_noise(void)
{
	static const struct { const char *name, *policy, *finish; int released, generated; } cases[] = {
		{ "allow", "on_error: allow\n", "length", 1, 1 },
		{ "respblock", "on_error: allow\nresponse: {on_error: block}\n", "content_filter", 0, 1 },
		{ "block", "on_error: block\n", "content_filter", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon_t d;
		char extra[1200], pol[400], req[1024];
		struct answer a;
		snprintf(pol, sizeof(pol), "%s/noise-%s.yaml", dir, cases[i].name);
		write_file(pol, cases[i].policy);
		snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\ngenerator: {model: %s, "
		    "temperature: 0}\nstream: {check_every: 8}\n", noise, pol, gen);
		if (start(&d, cases[i].name, extra) == -1) {
			ok(0, "guardd with the noise guard (%s) starts", cases[i].name);
			continue;
		}
		snprintf(req, sizeof(req), GREEDY_REQ, 20, "true", 24, "Hello there");
		chat_once(d.sock, req, 20, &a);
		json_int_t ng = json_integer_value(chatf(&a, "usage.completion_tokens"));
		int good = strcmp(finish_reason(&a), cases[i].finish) == 0 &&
		    (cases[i].released ? a.n_deltas > 0 && strlen(chat_text(&a)) > 0 &&
		    strcmp(a.deltas, chat_text(&a)) == 0 : a.n_deltas == 0 &&
		    strcmp(chat_text(&a), "") == 0) && (cases[i].generated ? ng > 0 : ng == 0);
		if (cases[i].released)
			good = good && ng == 24;
		ok(good, "noise guard, policy %s: %s, %d deltas, %lld tokens generated",
		    cases[i].name, finish_reason(&a), a.n_deltas, (long long)ng);
		answer_free(&a);
		stop(&d);
	}
}

/* a Llama 2 generator: its [INST] format chosen from the vocabulary, a system message folded
 * into the first turn */
static void
test_llama2(const char *l2)
{
	struct daemon_t d;
	char extra[1200];
	struct answer a;

	snprintf(extra, sizeof(extra), "model: %s\ngenerator: {model: %s, temperature: 0}\n", rig, l2);
	if (start(&d, "llama2", extra) == -1) {
		ok(0, "guardd with a Llama 2 generator starts");
		return;
	}
	chat_once(d.sock, "{\"id\": 60, \"op\": \"chat\", \"max_tokens\": 12, \"messages\": ["
	    "{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
	    "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, "
	    "{\"role\": \"user\", \"content\": \"How are you?\"}]}", 60, &a);
	json_t *st = request(d.sock, "stats");
	ok(a.final && chatf(&a, "finish_reason") && json_integer_value(chatf(&a,
	    "usage.completion_tokens")) > 0 && json_integer_value(chatf(&a, "usage.prompt_tokens")) > 10 &&
	    sstr(jpath(st, "stats.generator.format"), "llama2"),
	    "a Llama 2 generator: format llama2, %lld prompt tokens, %lld generated, finish %s",
	    (long long)json_integer_value(chatf(&a, "usage.prompt_tokens")),
	    (long long)json_integer_value(chatf(&a, "usage.completion_tokens")), finish_reason(&a));
	json_decref(st);
	answer_free(&a);
	/* Llama 2 needs strict alternation: two user turns in a row are refused, named */
	chat_once(d.sock, "{\"id\": 61, \"op\": \"chat\", \"messages\": [{\"role\": \"user\", "
	    "\"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}", 61, &a);
	ok(is_err(a.final, "bad_request"), "Llama 2: two user turns in a row are bad_request (%s)",
	    err_msg(a.final));
	answer_free(&a);
	stop(&d);
}

/* --- 5. concurrency ----------------------------------------------------------------------- */

struct chatter {
	const char *sock;
	int id;
	const char *prompt;
	struct answer a;
};

static void *
chatter_run(void *arg)
{
	struct chatter *ch = arg;
	char req[1024];

	snprintf(req, sizeof(req), GREEDY_REQ, ch->id, "true", 60, ch->prompt);
	chat_once(ch->sock, req, ch->id, &ch->a);
	return NULL;
}

static void
test_concurrent(const char *sock, pid_t child)
{
	static const char *const prompts[4] = { "Tell me a story.", "What is two plus two?",
		"Write a haiku about rain, please.", "List three colours" };
	char alone[4][4096];
	struct chatter ch[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		ch[i] = (struct chatter){ sock, 30 + i, prompts[i], { 0 } };
		chatter_run(&ch[i]);
		snprintf(alone[i], sizeof(alone[i]), "%s", chat_text(&ch[i].a));
		answer_free(&ch[i].a);
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, chatter_run, &ch[i]);
	/* classify keeps flowing while the chats run: answered before the last chat ends */
	int classified = 0;
	long long active_seen = 0;
	for (int k = 0; k < 5; k++) {
		struct cl c;
		if (cl_open(&c, sock) == -1)
			break;
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		pack_classify(&sb, 40 + k, "What is bread made of?", 0);
		cl_send(&c, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
		json_t *r = cl_recv(&c, 60);
		classified += decision(r) && strcmp(decision(r), "allow") == 0;
		json_decref(r);
		cl_close(&c);
		long long act = stat_int(sock, "chat.active");
		active_seen = act > active_seen ? act : active_seen;
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	int same = 0;
	for (int i = 0; i < 4; i++) {
		same += strcmp(chat_text(&ch[i].a), alone[i]) == 0 && strlen(alone[i]) > 0 &&
		    ch[i].a.order_ok;
		if (strcmp(chat_text(&ch[i].a), alone[i]) != 0)
			diag("chat %d: together '%.60s' alone '%.60s'", i, chat_text(&ch[i].a), alone[i]);
	}
	ok(same == 4, "4 clients chatting at once get the texts they get alone (greedy): %d of 4",
	    same);
	ok(classified == 5 && active_seen >= 1, "5 classify requests answered while chats ran "
	    "(up to %lld chats active when one was answered)", active_seen);
	for (int i = 0; i < 4; i++)
		answer_free(&ch[i].a);

	/* a client that vanishes mid-stream frees its sequence */
	long long dropped0 = stat_int(sock, "errors.dropped");
	struct cl c;
	char req[1024];
	snprintf(req, sizeof(req), GREEDY_REQ, 50, "true", 4000, "Go on forever.");
	int got_delta = 0;
	if (cl_open(&c, sock) == 0) {
		send_json(&c, req);
		json_t *r = cl_recv(&c, 60);
		got_delta = r && json_object_get(r, "delta") != NULL;
		json_decref(r);
		cl_close(&c);
	}
	long long act = -1;
	for (double t0 = now(); now() - t0 < 60; poll(NULL, 0, 20))
		if ((act = stat_int(sock, "chat.active")) == 0)
			break;
	ok(got_delta && act == 0 && stat_int(sock, "errors.dropped") == dropped0 + 1,
	    "a client gone after its first delta: its sequence is freed (active %lld), the chat "
	    "counted as dropped", act);
	ok(pong(sock), "still serving");

	/* both models are mapped once: the bytes mapped of each file are at most its size */
	char maps[64], line[1024];
	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)child);
	const char *files[2] = { rig, gen };
	for (int f = 0; f < 2; f++) {
		char real[4096];
		struct stat sbuf;
		unsigned long long mapped = 0;
		if (realpath(files[f], real) == NULL || stat(real, &sbuf) == -1)
			continue;
		FILE *fp = fopen(maps, "r");
		while (fp && fgets(line, sizeof(line), fp)) {
			unsigned long lo, hi;
			int off = 0;
			if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || off == 0)
				continue;
			line[strcspn(line, "\n")] = '\0';
			if (strcmp(line + off, real) == 0)
				mapped += hi - lo;
		}
		if (fp)
			fclose(fp);
		ok(mapped > 0 && mapped <= ((unsigned long long)sbuf.st_size + 4095) / 4096 * 4096,
		    "%s is mapped once: %llu bytes mapped for a %lld-byte file",
		    f ? "the generator" : "the guard", mapped, (long long)sbuf.st_size);
	}
}

int
main(int argc, char **argv)
{
	if (argc < 8) {
		printf("1..0 # skip usage: t_chatd GUARDD RIG NOISE GEN RIG_GEN SAFE_GEN MKMODEL\n");
		return 0;
	}
	/* absolute: the daemons' configs live in a temp dir */
	rig = realpath(argv[2], NULL);
	noise = realpath(argv[3], NULL);
	gen = realpath(argv[4], NULL);
	riggen = realpath(argv[5], NULL);
	safegen = realpath(argv[6], NULL);
	mkmodel = realpath(argv[7], NULL);
	if (!rig || !noise || !gen || !riggen || !safegen || !mkmodel) {
		printf("1..0 # skip no test models (../shared is absent)\n");
		return 0;
	}
	harness_init(argv[1]);
	test_unsupported();
	struct daemon_t d;
	char extra[1200];
	snprintf(extra, sizeof(extra), "model: %s\ngenerator: {model: %s, temperature: 0, "
	    "max_chats: 4}\nstream: {check_every: 16}\n", rig, gen);
	if (start(&d, "main", extra) == 0) {
		test_bad(d.sock);
		test_identical(d.sock);
		test_concurrent(d.sock, serving_pid(&d));
		stop(&d);
	} else
		ok(0, "guardd with a generator starts");
	test_rigged();
	test_rigged_safe();
	if (argc > 8) {
		char *l2 = realpath(argv[8], NULL);
		if (l2 != NULL)
			test_llama2(l2);
		else
			ok(0, "%s: the Llama 2 generator is missing", argv[8]);
		free(l2);
	}
	test_noise();
	harness_done();
	done_testing();
	return 0;
}
