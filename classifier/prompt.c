/* prompt.c - builds the Llama Guard 3 prompt from constants and the policy, the
 * conversation appended as plain-text data. Template facts: ../shared/spec/llama-facts.md
 * section 1.1 (no "\n\n" after the final header, one space before <|eot_id|>, role word by
 * message-count parity, excluded codes skipped without renumbering). */
#include "classifier/prompt.h"

#include <string.h>

#include "classifier/conv.h"
#include "core/tok.h"
#include "util/utext.h"

static const char TASK_A[] = "\n\nTask: Check if there is unsafe content in '";
static const char TASK_B[] = "' messages in conversations according our safety policy with "
    "the below categories.\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\n";
static const char CATS_END[] = "<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n";
static const char CONV_END[] = "<END CONVERSATION>\n\nProvide your safety assessment for ONLY "
    "THE LAST ";
static const char INSTR[] = " message in the above conversation:\n - First line must read "
    "'safe' or 'unsafe'.\n - If unsafe, a second line must include a comma-separated list of "
    "violated categories. ";

/* special tokens the template writes */
enum { SP_BOT, SP_SH, SP_EH, SP_EOT, SP_IMG, SP_N };
static const char *const SPECIAL[SP_N] = {
	"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|image|>",
};

static int
special(const struct tok *t, int which, struct buf *text, struct tokvec *ids, struct err *e)
{
	if (buf_adds(text, SPECIAL[which]) == -1)
		return err_set(e, "out of memory");
	if (t == NULL)
		return 0;
	int32_t id = tok_special(t, SPECIAL[which]);
	if (id < 0)
		return err_set(e, "the model's vocabulary has no %s: %s", SPECIAL[which],
		    which == SP_IMG ? "the guard model reads text only (an image needs Llama Guard 3 "
		    "11B-Vision)" : "not a Llama 3 tokenizer");
	return tokvec_push(ids, id) == -1 ? err_set(e, "out of memory") : 0;
}

/* text between special tokens: appended to the text, tokenized as one plain-text run */
static int
plain(const struct tok *t, const struct buf *seg, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	if (buf_add(text, seg->p ? seg->p : "", seg->n) == -1)
		return err_set(e, "out of memory");
	if (t != NULL && seg->n > 0 && tok_encode(t, seg->p, seg->n, 0, ids, e) == -1)
		return -1;
	return 0;
}

static const char *
role_word(enum role r)
{
	return r == ROLE_RESPONSE ? "Agent" : "User";
}

/* image: "\n\n<|image|> Task: ..." instead of "\n\nTask: ...", the text on each side of the
 * special token a run of its own */
static int
prefix(const struct policy *p, enum role r, int image, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf seg = { 0 };
	int rc = -1;

	if (special(t, SP_BOT, text, ids, e) || special(t, SP_SH, text, ids, e))
		return -1;
	buf_adds(&seg, "user");
	if (plain(t, &seg, text, ids, e) || special(t, SP_EH, text, ids, e))
		goto out;
	seg.n = 0;
	if (image) {
		buf_adds(&seg, "\n\n");
		if (plain(t, &seg, text, ids, e) || special(t, SP_IMG, text, ids, e))
			goto out;
		seg.n = 0;
		buf_adds(&seg, " ");
		buf_adds(&seg, TASK_A + 2);
	} else {
		buf_adds(&seg, TASK_A);
	}
	buf_adds(&seg, role_word(r));
	buf_adds(&seg, TASK_B);
	for (size_t i = 0; i < policy_n_categories(p); i++) {
		const struct policy_category *c = policy_category(p, i);
		if (c->exclude[r])
			continue;
		buf_printf(&seg, "%s: %s", c->code, c->name);
		if (c->description)
			buf_printf(&seg, "\n%s", c->description);
		buf_adds(&seg, "\n");
	}
	if (buf_adds(&seg, CATS_END) == -1) {
		err_set(e, "out of memory");
		goto out;
	}
	rc = plain(t, &seg, text, ids, e);
out:
	buf_free(&seg);
	return rc;
}

int
prompt_prefix(const struct policy *p, enum role r, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	return prefix(p, r, 0, t, text, ids, e);
}

int
prompt_prefix_image(const struct policy *p, enum role r, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	return prefix(p, r, 1, t, text, ids, e);
}

int
prompt_body(const struct conv *c, const struct tok *t, struct buf *text, struct tokvec *ids,
    enum role *role, struct err *e)
{
	struct buf seg = { 0 };
	int rc = -1;

	if (c->n == 0)
		return err_set(e, "the conversation is empty");
	/* the template's role word follows the parity of the message count */
	*role = c->n % 2 == 0 ? ROLE_RESPONSE : ROLE_REQUEST;
	for (size_t i = 0; i < c->n; i++) {
		const struct conv_msg *m = &c->msg[i];
		for (size_t k = 0; k < m->n_parts; k++) {
			size_t a, n;
			utext_trim(m->parts[k], m->part_len[k], &a, &n);
			buf_adds(&seg, m->assistant ? "Agent" : "User");
			buf_adds(&seg, ": ");
			buf_add(&seg, m->parts[k] + a, n);
			buf_adds(&seg, "\n\n");
		}
	}
	buf_adds(&seg, CONV_END);
	buf_adds(&seg, role_word(*role));
	if (buf_adds(&seg, INSTR) == -1) {
		err_set(e, "out of memory");
		goto out;
	}
	if (plain(t, &seg, text, ids, e) || special(t, SP_EOT, text, ids, e) ||
	    special(t, SP_SH, text, ids, e))
		goto out;
	seg.n = 0;
	buf_adds(&seg, "assistant");
	if (plain(t, &seg, text, ids, e) || special(t, SP_EH, text, ids, e))
		goto out;
	rc = 0;
out:
	buf_free(&seg);
	return rc;
}
