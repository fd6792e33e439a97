/* oai.h - OpenAI's HTTP API shapes (guardd-http(7)): moderation and chat-completions request
 * bodies translated into the protocol's one request schema (proto_request_from_json, so JSON
 * from HTTP and msgpack are validated by the same code), and the protocol's answers
 * (verdicts, chat deltas and chat answers) turned into OpenAI's moderation results,
 * chat.completion and chat.completion.chunk objects. Pure: no I/O, no daemon state. */
#ifndef GUARDD_OAI_H
#define GUARDD_OAI_H

#include <stddef.h>

#include "proto/proto.h"

struct json_t;

/* inputs of one moderation request (each one a classify request of the same batch) */
#define OAI_MAX_INPUTS 64

/* What a request body asks beyond the requests: the model it names and how to answer. */
struct oai_opts {
	const char *model;	/* the body's "model" (borrowed from it), NULL when absent */
	int stream;		/* chat: stream: true */
	int include_usage;	/* chat: stream_options.include_usage */
	const char *code;	/* on error: the OpenAI error code ("unsupported_parameter", ...) */
};

/* A moderation body {input: STRING | [STRING, ...] | [{type: "text", text}, ...], model?,
 * guardd?: {policy?}}: one classify request per input (an array of strings is a batch; an
 * array of text parts is one input, as OpenAI reads it), ids 0..n-1, each under policy ("":
 * the default). On PROTO_OK *out holds n requests for request_handle (each then belongs to
 * it; oai_requests_free frees whatever is left, give it zeroed slots for the ones handed
 * on). On error nothing is left allocated and e names the field ("input[3]: ..."). */
enum proto_status oai_mod_parse(const struct json_t *body, const char *policy,
    const struct proto_limits *l, struct request **out, size_t *n, struct oai_opts *o,
    struct err *e);
void oai_requests_free(struct request *r, size_t n);

/* One moderation result from a classify verdict (verdict_to_json's object): flagged,
 * categories (each code -> whether it triggered), category_scores (each code -> the guard's
 * score, bit for bit, or null where the guard computed none: a safe answer),
 * category_applied_input_types, and guardd (the whole verdict, a reference). codes: the
 * codes to report (the daemon gives those the policy shows the guard); a code the verdict
 * names or scores that is not among them is added. */
struct json_t *oai_mod_result(const struct json_t *verdict, const char *const *codes,
    size_t n_codes);
/* {id, model, results}: results is stolen. */
struct json_t *oai_mod_response(const char *id, const char *model, struct json_t *results);

/* A chat-completions body into one OP_CHAT request (id 0) under policy: messages (role
 * "developer" read as "system"), stream, max_tokens / max_completion_tokens, temperature,
 * top_p, seed, stop, and the llama.cpp extensions top_k, min_p, repeat_penalty. Fields OpenAI
 * has that guardd cannot honour (n > 1, tools, logprobs, response_format other than text,
 * penalties other than 0, ...) are refused naming the field (o->code
 * "unsupported_parameter"), never ignored. r needs proto_request_free either way. */
enum proto_status oai_chat_parse(const struct json_t *body, const char *policy,
    const struct proto_limits *l, struct request *r, struct oai_opts *o, struct err *e);

/* The fields every object of one completion repeats. */
struct oai_ids {
	const char *id;		/* "chatcmpl-..." */
	long long created;	/* Unix seconds */
	const char *model;
};

/* A chat.completion.chunk whose delta has the text (role: also "role": "assistant", as the
 * first chunk of a stream has). */
struct json_t *oai_chunk(const struct oai_ids *ids, const char *text, size_t len, int role);
/* The last chunk from the protocol's chat answer (answer_chat's object): finish_reason, the
 * refusal as the delta's content when blocked, usage, and the guardd extension
 * {request_verdict, response_verdict, checks, usage, refusal?}. */
struct json_t *oai_chunk_final(const struct oai_ids *ids, const struct json_t *answer);
/* stream_options.include_usage's closing chunk: no choices, the usage. */
struct json_t *oai_chunk_usage(const struct oai_ids *ids, const struct json_t *answer);
/* A chat.completion object from the chat answer: the released text, or the refusal when
 * blocked (also as message.refusal), finish_reason, usage and the guardd extension. */
struct json_t *oai_completion(const struct oai_ids *ids, const struct json_t *answer);

/* A model's id for /v1/models and the "model" fields: the last component of its path
 * ("/m/Llama-Guard-3-1B/" -> "Llama-Guard-3-1B"), cut to fit n. */
void oai_model_id(const char *path, char *out, size_t n);

#endif
