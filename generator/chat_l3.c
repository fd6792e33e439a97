/* chat_l3.c - the Llama 3.2 Instruct prompt, byte for byte as its official chat template
 * (l32_template.txt) renders it without tools: a system block that is always there (knowledge
 * cutoff, today's date, then the system message trimmed), one header + trimmed text + eot per
 * message, and the assistant header when a generation is asked for. The pieces chat_l3v.c
 * shares (chat_int.h: chat_l3_*) are here. */
#include "generator/chat_int.h"

#include <string.h>

#include "util/utext.h"

#define BOT "<|begin_of_text|>"
#define SH "<|start_header_id|>"
#define EH "<|end_header_id|>"
#define EOT "<|eot_id|>"

int
chat_l3_header(const struct tok *t, const char *role, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	if (chat_emit_special(t, SH, text, ids, e) ||
	    chat_emit_plain(t, role, strlen(role), text, ids, e) ||
	    chat_emit_special(t, EH, text, ids, e))
		return -1;
	return 0;
}

int
chat_l3_check(const struct chat *c, struct err *e)
{
	/* the template reads the roles freely; a system message anywhere but first would be
	 * rendered as a second system turn the model was not trained on */
	for (size_t k = 1; k < c->n; k++)
		if (c->msg[k].role == CHAT_SYSTEM)
			return err_set(e, "messages[%zu]: a system message may only come first", k);
	return 0;
}

/* The text between <|end_header_id|> and <|eot_id|> is one piece, as the tokenizer of the
 * whole rendered text sees it: "\n\n" + head + the trimmed message (m may be NULL). */
static int
body(const struct tok *t, const char *head, const struct chat_msg *m, struct buf *seg,
    struct buf *text, struct tokvec *ids, struct err *e)
{
	size_t a = 0, n = 0;

	seg->n = 0;
	if (m)
		utext_trim(m->text, m->len, &a, &n);
	if (buf_printf(seg, "\n\n%s", head) == -1 || (n && buf_add(seg, m->text + a, n) == -1))
		return err_set(e, "out of memory");
	return chat_l3_eot(t, seg, text, ids, e);
}

int
chat_l3_eot(const struct tok *t, const struct buf *seg, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	if (chat_emit_plain(t, seg->p, seg->n, text, ids, e) ||
	    chat_emit_special(t, EOT, text, ids, e))
		return -1;
	return 0;
}

int
chat_l3_system(const struct tok *t, const char *date, const struct chat_msg *sys,
    struct buf *seg, struct buf *text, struct tokvec *ids, struct err *e)
{
	struct buf head = { 0 };
	int rc = -1;

	if (buf_printf(&head, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n", date) == -1)
		err_set(e, "out of memory");
	else if (chat_l3_header(t, "system", text, ids, e) == 0 &&
	    body(t, head.p, sys, seg, text, ids, e) == 0)
		rc = 0;
	buf_free(&head);
	return rc;
}

int
chat_l3_turns(const struct chat *c, size_t first, const struct tok *t, chat_l3_body_fn *body,
    struct buf *seg, struct buf *text, struct tokvec *ids, struct err *e)
{
	for (size_t i = first; i < c->n; i++)
		if (chat_l3_header(t, chat_role_name(c->msg[i].role), text, ids, e) ||
		    body(t, &c->msg[i], seg, text, ids, e))
			return -1;
	if (c->add_generation_prompt && (chat_l3_header(t, "assistant", text, ids, e) ||
	    chat_emit_plain(t, "\n\n", 2, text, ids, e)))
		return -1;
	return 0;
}

/* a message's body in the text render: trimmed, nothing before it */
static int
msg_body(const struct tok *t, const struct chat_msg *m, struct buf *seg, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	return body(t, "", m, seg, text, ids, e);
}

int
chat_render_l3(const struct chat *c, const char *date, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf seg = { 0 };
	size_t i = c->n && c->msg[0].role == CHAT_SYSTEM ? 1 : 0;
	int rc = -1;

	if (chat_l3_check(c, e) || chat_emit_special(t, BOT, text, ids, e) ||
	    chat_l3_system(t, date, i ? &c->msg[0] : NULL, &seg, text, ids, e))
		goto out;
	if (chat_l3_turns(c, i, t, msg_body, &seg, text, ids, e))
		goto out;
	rc = 0;
out:
	buf_free(&seg);
	return rc;
}
