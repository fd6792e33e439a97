/* gen.h - generation on the core: several sequences decoded together, one forward pass per
 * step for all of them, each with its own sampler, stop tokens, stop strings and limits.
 * One generator is one worker: call it from one thread at a time. */
#ifndef GUARDD_GEN_H
#define GUARDD_GEN_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"
#include "core/sample.h"

struct generator;
struct model;
struct pool;

struct generator_params {
	int n_ctx;		/* positions per sequence: prompt + answer (0: 4096) */
	int n_seq;		/* sequences that can run at once (0: 4) */
	int n_threads;		/* 0: all CPUs */
	struct pool *pool;	/* NULL: its own; else borrowed (see ctx_params) */
	int prefill_chunk;	/* prompt tokens fed per step for one new sequence (0: 256),
				   so a long prompt does not stall the others' decoding */
};

struct gen_params {
	struct sampler_params sp;	/* temperature <= 0: greedy */
	int max_tokens;			/* <= 0: until a stop or the context is full */
	const char *const *stop;	/* stop strings (copied by gen_start) */
	size_t n_stop;
	const int32_t *end;		/* end-of-turn token ids (copied), e.g. chat_end_tokens */
	int n_end;
};

/* An image for a sequence of a Llama 3.2-Vision model: its PNG or JPEG bytes (borrowed for
 * the call). */
struct gen_image {
	const void *data;
	size_t len;
};

enum gen_finish { GEN_RUNNING, GEN_STOP, GEN_LENGTH, GEN_ERROR };

struct generator *generator_new(const struct model *m, const struct generator_params *p,
    struct err *e);
void generator_free(struct generator *g);
int generator_n_seq(const struct generator *g);
int generator_n_ctx(const struct generator *g);

/* Starts a sequence on the prompt ids; returns its slot (0 .. n_seq-1) or -1 (no free slot:
 * "all N sequences are busy"; a prompt that leaves no room to answer: "the prompt is N
 * tokens; the context holds M"). Nothing runs until generator_step. */
int generator_start(struct generator *g, const int32_t *prompt, size_t n,
    const struct gen_params *p, struct err *e);
/* generator_start with images for the prompt's <|image|> tokens, in order (as many images as
 * tokens, else an error counting both; a text-only model takes none). Each image is decoded,
 * preprocessed and encoded by the vision tower here, before the call returns (the costly
 * part: its tiles through the tower), and attached to the sequence, so every prefill chunk
 * finds it; errors name the image ("image 2: ..."). The slot's images go with it. */
int generator_start_images(struct generator *g, const int32_t *prompt, size_t n,
    const struct gen_image *img, size_t n_img, const struct gen_params *p, struct err *e);
/* One forward pass for every running sequence (prefill chunks of new ones and one token for
 * each decoding one), then samples. Returns how many sequences are still running, or -1 on
 * an engine error (then every running sequence finishes with GEN_ERROR and e says why). */
int generator_step(struct generator *g, struct err *e);
/* The answer so far that can no longer change: complete UTF-8 characters only, without a tail
 * that could still become a stop string, and cut before a stop string that matched. End
 * tokens are never part of it. Valid until the next step or end. */
const char *generator_text(const struct generator *g, int slot, size_t *len);
enum gen_finish generator_finish(const struct generator *g, int slot);
/* Tokens generated (end token excluded) and prompt tokens. */
int generator_n_generated(const struct generator *g, int slot);
int generator_n_prompt(const struct generator *g, int slot);
/* The generated ids (end token excluded). */
const int32_t *generator_ids(const struct generator *g, int slot, size_t *n);
/* Frees the slot (running or finished): a client left or the guard stopped it. */
void generator_end(struct generator *g, int slot);
int generator_running(const struct generator *g);
/* Called between layers; non-zero stops the step with "cancelled" (sequences unchanged). */
void generator_set_cancel(struct generator *g, int (*cb)(void *), void *arg);
const char *gen_finish_name(enum gen_finish f);	/* "running", "stop", "length", "error" */

#endif
