/* chat_l3v.c - the Llama 3.2 Vision Instruct prompt, byte for byte as its chat template (the
 * current Hub revision, ../shared/spec/templates/l32v_template.txt) renders it without tools:
 * content parts in order, each image part as <|image|> in its place, message text untrimmed; the
 * system block (cutoff, date, the trimmed system message) only when the user gave a system
 * message or the chat has no image. (The older revision refused system + image; this one is
 * pinned.) */
#include "generator/chat_int.h"

#define BOT "<|begin_of_text|>"
#define IMG "<|image|>"

/* "\n\n", then the text cut at each image: every piece between special tokens is tokenized
 * on its own, as the tokenizer splits the rendered text at special tokens first. */
static int
parts(const struct tok *t, const struct chat_msg *m, struct buf *seg, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	size_t at = 0;

	seg->n = 0;
	if (buf_adds(seg, "\n\n") == -1)
		return err_set(e, "out of memory");
	for (size_t k = 0; k < m->n_images; k++) {
		if (buf_add(seg, m->text + at, m->image_at[k] - at) == -1)
			return err_set(e, "out of memory");
		if (chat_emit_plain(t, seg->p, seg->n, text, ids, e) ||
		    chat_emit_special(t, IMG, text, ids, e))
			return -1;
		seg->n = 0;
		at = m->image_at[k];
	}
	if (buf_add(seg, m->text + at, m->len - at) == -1)
		return err_set(e, "out of memory");
	return chat_l3_eot(t, seg, text, ids, e);
}

int
chat_render_l3v(const struct chat *c, const char *date, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf seg = { 0 };
	int has_system = c->msg[0].role == CHAT_SYSTEM, rc = -1;
	size_t first = has_system ? 1 : 0, n_img = 0;

	if (chat_l3_check(c, e))
		return -1;
	if (has_system && c->msg[0].n_images)
		return err_set(e, "messages[0]: a system message cannot hold an image");
	for (size_t k = first; k < c->n; k++)
		n_img += c->msg[k].n_images;
	if (chat_emit_special(t, BOT, text, ids, e))
		goto out;
	if ((has_system || n_img == 0) &&
	    chat_l3_system(t, date, has_system ? &c->msg[0] : NULL, &seg, text, ids, e))
		goto out;
	if (chat_l3_turns(c, first, t, parts, &seg, text, ids, e))
		goto out;
	rc = 0;
out:
	buf_free(&seg);
	return rc;
}
