/* ctx.h - an inference context: the KV cache of several sequences, scratch buffers and the
 * threads of one worker. Runs batches of tokens through a shared, read-only model. */
#ifndef GUARDD_CTX_H
#define GUARDD_CTX_H

#include <stdint.h>
#include "util/err.h"

struct ctx;
struct model;
struct pool;

struct ctx_params {
	int n_ctx;		/* positions per sequence */
	int n_seq;		/* independent sequences in the cache */
	int n_batch;		/* tokens per forward pass (longer inputs are split) */
	int n_outputs;		/* logit rows one ctx_decode may return */
	int n_threads;		/* 0: all CPUs available to the process */
	struct pool *pool;	/* NULL: the context starts its own; else borrowed (must outlive
				   the context, used by one context at a time), n_threads ignored */
};

struct ctx_params ctx_params_default(void);

struct ctx *ctx_new(const struct model *m, const struct ctx_params *p, struct err *e);
void ctx_free(struct ctx *c);

/* A batch appends tokens to sequences. Tokens of one sequence must be contiguous in the
 * batch; each goes to the next position of its sequence. want_logits may be NULL (none). */
struct batch {
	int n;
	const int32_t *tokens;
	const int32_t *seq;
	const uint8_t *want_logits;
};

/* Runs the batch. On success the i-th requested row is ctx_logits(c, i). On failure
 * (bad ids, full sequence, cancellation) the sequences are left as they were. */
int ctx_decode(struct ctx *c, const struct batch *b, struct err *e);
/* Appends n tokens to one sequence in n_batch chunks; logits of the last token only. */
int ctx_eval(struct ctx *c, int seq, const int32_t *tokens, int n, struct err *e);
const float *ctx_logits(const struct ctx *c, int i);
int ctx_n_vocab(const struct ctx *c);

int ctx_seq_len(const struct ctx *c, int seq);
void ctx_seq_clear(struct ctx *c, int seq);
/* Makes dst's first n positions a copy of src's (a cached prefix); dst's length becomes n. */
int ctx_seq_copy(struct ctx *c, int src, int dst, int n, struct err *e);
/* Keeps the first n positions of seq (n <= its length): later tokens go to position n. */
int ctx_seq_truncate(struct ctx *c, int seq, int n, struct err *e);
/* Copies the first n positions of sequence src of ctx a into sequence dst of ctx b (same
 * model and n_ctx large enough): a policy prefix computed once, reused by every worker. */
int ctx_seq_copy_from(struct ctx *b, int dst, const struct ctx *a, int src, int n,
    struct err *e);

/* A saved prefix: the keys and values of the first n positions of one sequence, every layer,
 * in a compact buffer (no context, no threads). A policy prefix is computed once in a work
 * context, saved, and restored into any sequence of a context of the same model; restoring
 * copies the exact floats, so the cached path stays bit-identical to evaluating the prefix. */
struct kv_snapshot;

struct kv_snapshot *ctx_snapshot_save(const struct ctx *c, int seq, int n, struct err *e);
/* Makes seq a copy of the snapshot; its length becomes the snapshot's. */
int ctx_snapshot_restore(struct ctx *c, int seq, const struct kv_snapshot *s, struct err *e);
/* The same for positions that may attend to images (Llama 3.2-Vision): the images their
 * <|image|> tokens took are saved too (their cross-attention keys and values), and
 * ctx_snapshot_restore brings them back with the positions, bit for bit as evaluating them
 * again with the images attached. ctx_snapshot_save refuses such positions. */
struct kv_snapshot *ctx_snapshot_save_images(const struct ctx *c, int seq, int n,
    struct err *e);
/* A snapshot of positions [from, to) of seq only (the part of a conversation after its
 * policy prefix), and its restore: appended to a sequence that holds exactly `from`
 * positions (the same ones, or the keys would belong to another text), up to position `to`
 * (at most from + its length). */
struct kv_snapshot *ctx_snapshot_save_range(const struct ctx *c, int seq, int from, int to,
    struct err *e);
int ctx_snapshot_append(struct ctx *c, int seq, const struct kv_snapshot *s, int to,
    struct err *e);
int kv_snapshot_len(const struct kv_snapshot *s);
size_t kv_snapshot_bytes(const struct kv_snapshot *s);
void kv_snapshot_free(struct kv_snapshot *s);

/* Called between layers; a non-zero return stops ctx_decode with "cancelled". */
void ctx_set_cancel(struct ctx *c, int (*cb)(void *), void *arg);
int ctx_n_threads(const struct ctx *c);
const struct ctx_params *ctx_params(const struct ctx *c);

#endif
