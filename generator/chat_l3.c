/* chat_l3.c - the Llama 3.2 Instruct prompt, byte for byte as its official chat template
 * (l32_template.txt) renders it without tools: a system block that is always there (knowledge
 * cutoff, today's date, then the system message trimmed), one header + trimmed text + eot per
 * message, and the assistant header when a generation is asked for. */
#include "generator/chat_int.h"

#include <string.h>

#include "util/utext.h"

#define BOT "<|begin_of_text|>"
#define SH "<|start_header_id|>"
#define EH "<|end_header_id|>"
#define EOT "<|eot_id|>"

/* header(role): start, the role as text, end */
static int
header(const struct tok *t, const char *role, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	if (chat_emit_special(t, SH, text, ids, e) ||
	    chat_emit_plain(t, role, strlen(role), text, ids, e) ||
	    chat_emit_special(t, EH, text, ids, e))
		return -1;
	return 0;
}

/* The text between <|end_header_id|> and <|eot_id|> is one piece, as the tokenizer of the
 * whole rendered text sees it: "\n\n" + head + the trimmed message. */
static int
body(const struct tok *t, const char *head, const struct chat_msg *m, struct buf *seg,
    struct buf *text, struct tokvec *ids, struct err *e)
{
	size_t a = 0, n = 0;

	seg->n = 0;
	if (m)
		utext_trim(m->text, m->len, &a, &n);
	if (buf_adds(seg, "\n\n") == -1 || buf_adds(seg, head) == -1 ||
	    (n && buf_add(seg, m->text + a, n) == -1))
		return err_set(e, "out of memory");
	if (chat_emit_plain(t, seg->p, seg->n, text, ids, e) ||
	    chat_emit_special(t, EOT, text, ids, e))
		return -1;
	return 0;
}

int
chat_render_l3(const struct chat *c, const char *date, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf seg = { 0 }, head = { 0 };
	size_t i = 0;
	int rc = -1;

	/* the template reads the roles freely; a system message anywhere but first would be
	 * rendered as a second system turn the model was not trained on */
	for (size_t k = 1; k < c->n; k++)
		if (c->msg[k].role == CHAT_SYSTEM)
			return err_set(e, "messages[%zu]: a system message may only come first", k);
	if (buf_printf(&head, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n",
	    date) == -1) {
		err_set(e, "out of memory");
		goto out;
	}
	if (chat_emit_special(t, BOT, text, ids, e) || header(t, "system", text, ids, e) ||
	    body(t, head.p, c->msg[0].role == CHAT_SYSTEM ? &c->msg[0] : NULL, &seg, text, ids,
	    e))
		goto out;
	if (c->msg[0].role == CHAT_SYSTEM)
		i = 1;
	for (; i < c->n; i++)
		if (header(t, chat_role_name(c->msg[i].role), text, ids, e) ||
		    body(t, "", &c->msg[i], &seg, text, ids, e))
			goto out;
	if (c->add_generation_prompt &&
	    (header(t, "assistant", text, ids, e) || chat_emit_plain(t, "\n\n", 2, text, ids, e)))
		goto out;
	rc = 0;
out:
	buf_free(&seg);
	buf_free(&head);
	return rc;
}
