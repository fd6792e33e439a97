/* classifier_int.h - the classifier's state, and the answer machinery (answer.c) shared by
 * the batch path (classifier.c: classifier_run) and the incremental response checks
 * (stream.c), so that both read the model's answer by the very same code. */
#ifndef GUARDD_CLASSIFIER_INT_H
#define GUARDD_CLASSIFIER_INT_H

#include <stdint.h>

#include "classifier/classifier.h"
#include "util/buf.h"

struct convcache;
struct ctx;
struct tok;

#define MAX_ANSWER 24		/* tokens of the model's answer */
#define MAX_ITEMS 64		/* conversations of one batch, streams of one check */

/* the answer's tokens, looked up by text in the model's vocabulary (Llama 3: 271, 19193,
 * 39257, 198, 50) */
enum { T_NN, T_SAFE, T_UNSAFE, T_NL, T_S, T_N };

/* a policy and its prefix caches */
struct slot {
	const struct policy *pol;
	unsigned gen;				/* unique per build: streams see swaps */
	struct tokvec prefix[2];		/* per role */
	struct kv_snapshot *snap[2];		/* NULL without the prefix cache */
	int32_t *num_tok;			/* per policy category: the token of its number */
};

struct classifier {
	const struct model *m;
	const struct tok *tok;
	struct classifier_params p;
	/* sequences 0 .. max_batch-1: one per conversation of a batch; then one per stream */
	struct ctx *work;
	struct slot *slots;
	int n_slots;
	unsigned next_gen;
	int32_t eot;
	int32_t t[T_N];		/* ids of the answer tokens */
	int32_t forced[3];	/* "unsafe\nS" */
	struct guard_stream **streams;	/* max_streams; NULL: free */
	/* the conversation cache (convcache.h; NULL: none) and, per role, the closing part every
	 * body of that role ends with before the model's "\n\n" (empty: unknown, nothing is
	 * stored) */
	struct convcache *cc;
	struct tokvec cc_close[2];
	struct mllama_cache *imc;	/* images encoded lately (vision.c; NULL until one) */
	/* batch scratch */
	struct tokvec *body;
	int32_t *btok, *bseq;
	uint8_t *bwant;
	int (*cancel)(void *);
	void *cancel_arg;
};

/* One conversation on its way through the model. The caller fills seq, pol, num_tok and
 * feed (the tokens to append to the sequence, ending with the "\n\n" the model writes
 * first) and sets active; an inactive item's verdict is already final (an error). */
struct item {
	int active;		/* in the batch and still decoding */
	int seq;
	const struct policy *pol;
	const int32_t *num_tok;
	const int32_t *feed;
	size_t n_feed;
	/* set by classifier_answer */
	struct tokvec ans;	/* answer tokens after "\n\n" */
	int cats_at;		/* answer already went through "unsafe\nS" */
	int base_len;		/* sequence length after "\n\n" */
	int forced;		/* the category line was forced */
	int32_t next;
};

double classifier_now_ms(void);
/* A conversation with an image (vision.c): body (prompt_body's tokens) becomes the whole
 * image prompt for the role, seq is cleared and gets the image attached. Not cached. */
int classifier_image_prompt(struct classifier *c, const struct policy *pol, enum role role,
    int seq, const struct conv *conv, struct tokvec *body, struct err *e);
/* A verdict ready for a check under pol: no answer yet, the structure-spoof reasons of
 * conv. */
void classifier_verdict_init(struct verdict *v, const struct policy *pol, const struct conv *conv);
/* One prefill of every active item's feed (packed into n_batch batches), unsafe_score, the
 * greedy answer, the forced category line where needed, and the decision: out[i] becomes
 * item i's verdict. n <= MAX_ITEMS; t0 is when the request started. Each item's sequence
 * ends after its answer (the caller may truncate it). */
void classifier_answer(struct classifier *c, struct item *it, size_t n, struct verdict *out,
    double t0);
/* The prompt's body for conv, with the model's "\n\n" appended: ids replaces *body. */
int classifier_body(struct classifier *c, const struct conv *conv, struct tokvec *body,
    enum role *role, struct err *e);

/* convcache.c: the closing parts of both roles (cc_close), once at classifier_new; and the
 * length of the conversation part of a whole prompt t[0..n) (policy prefix + body) of a
 * role: what a later prompt may share, all but the closing part and the model's "\n\n"
 * (0 when the prompt does not end as expected: nothing to keep) */
int classifier_closing_init(struct classifier *c, struct err *e);
size_t classifier_conv_part(const struct classifier *c, enum role r, const int32_t *t, size_t n);

/* stream.c: the streams' table (once, at classifier_new); its release, with any stream
 * still open (classifier_free) */
int classifier_streams_init(struct classifier *c, struct err *e);
void classifier_streams_free(struct classifier *c);

#endif
