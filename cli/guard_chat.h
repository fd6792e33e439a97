/* guard_chat.h - what guard chat's parts share: the options, the result of one turn, and a
 * backend that runs a turn either in-process (guard_chat.c) or through guardd's chat op
 * (guard_chat_sock.c), so the one-shot and interactive sessions (guard_chat_tty.c) print
 * the same way whichever runs it. */
#ifndef GUARDD_GUARD_CHAT_H
#define GUARDD_GUARD_CHAT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "core/sample.h"
#include "generator/chat.h"
#include "util/buf.h"

/* exit statuses of guard chat (issue 8): answered, blocked by the guard, anything else */
enum { CHAT_ANSWERED = 0, CHAT_BLOCKED = 1, CHAT_ERROR = 2 };

#define CHAT_MAX_STOP 4		/* as the chat op: at most 4 stop strings of 64 bytes */
#define CHAT_MAX_STOP_LEN 64
#define CHAT_MAX_IMAGES 4	/* as guardd's default limits.max_images */

struct conv_image;

struct chat_cli_opts {
	const char *model, *guard, *policy, *date, *socket, *system;
	enum chat_format fmt;
	struct sampler_params sp;
	long max_tokens;	/* 0: until a stop or the context is full */
	const char *stop[CHAT_MAX_STOP];
	size_t n_stop;
	long check_every, threads, n_ctx;
	int json;
	const char *image[CHAT_MAX_IMAGES];	/* --image files: parts of the first user message */
	size_t n_image;
	struct conv_image *img;		/* their bytes, read once by cmd_chat */
	/* which sampling options were given (the socket sends only those, so guardd's
	 * configured defaults apply to the rest) */
	int set_temp, set_top_k, set_top_p, set_min_p, set_repeat, set_seed, set_max;
};

/* One turn's outcome, the same from both backends. */
struct chat_result {
	struct buf text;		/* released text (what was streamed) */
	const char *finish;		/* "stop" | "length" | "content_filter" (static) */
	char *refusal;			/* content_filter: the policy's refusal */
	json_t *request_verdict;	/* verdict objects as verdict_to_json / guardd give them */
	json_t *response_verdict;	/* NULL: nothing was generated */
	long prompt_tokens, completion_tokens, checks;
	json_t *raw;			/* socket: guardd's chat object as received */
};

struct chat_backend {
	/* Runs one turn on the chat (its last message is the user's). Released text is written
	 * to out as it is released (out may be NULL). Returns CHAT_ANSWERED, CHAT_BLOCKED, or
	 * CHAT_ERROR with the reason printed. r is filled in every case (chat_result_free). */
	int (*turn)(struct chat_backend *b, const struct chat *c, FILE *out, struct chat_result *r);
	void (*free)(struct chat_backend *b);
};

/* NULL with the reason printed. */
struct chat_backend *chat_local_new(const struct chat_cli_opts *o);
struct chat_backend *chat_sock_new(const struct chat_cli_opts *o);

void chat_result_free(struct chat_result *r);
/* {text, finish_reason, refusal?, request_verdict, response_verdict, usage, checks} */
json_t *chat_result_json(const struct chat_result *r);
/* After streamed text: ends its line, then the refusal of a blocked turn on a line. */
void chat_print_end(const struct chat_result *r, int status, FILE *out);
/* "[request allow 0.02 | response allow 0.01 | 34 tokens, 3 checks]" on stderr. */
void chat_print_summary(const struct chat_result *r);

/* Puts the --image parts before the text of the chat's last message (the first user
 * message: Llama 3.2 Vision's single-turn image), unless the chat has them already; -1
 * after a message. */
int chat_add_cli_images(struct chat *ch, const struct chat_cli_opts *o);

/* The interactive session (guard_chat_tty.c): exit status. */
int chat_tty(struct chat_backend *b, const struct chat_cli_opts *o);

#endif
