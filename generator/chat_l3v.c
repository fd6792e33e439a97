/* chat_l3v.c - the Llama 3.2 Vision Instruct prompt, byte for byte as its chat template (the
 * current Hub revision, ../shared/spec/templates/l32v_template.txt) renders it without tools:
 * content parts in order, each image part as <|image|> in its place, message text untrimmed; the
 * system block (cutoff, date, the trimmed system message) only when the user gave a system
 * message or the chat has no image. (The older revision refused system + image; this one is
 * pinned.) */
#include "generator/chat_int.h"

#include <string.h>

#include "util/utext.h"

#define BOT "<|begin_of_text|>"
#define SH "<|start_header_id|>"
#define EH "<|end_header_id|>"
#define EOT "<|eot_id|>"
#define IMG "<|image|>"

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
	if (chat_emit_plain(t, seg->p, seg->n, text, ids, e) ||
	    chat_emit_special(t, EOT, text, ids, e))
		return -1;
	return 0;
}

int
chat_render_l3v(const struct chat *c, const char *date, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf seg = { 0 };
	int has_system = c->msg[0].role == CHAT_SYSTEM, rc = -1;
	size_t first = has_system ? 1 : 0, n_img = 0;

	for (size_t k = 1; k < c->n; k++)
		if (c->msg[k].role == CHAT_SYSTEM)
			return err_set(e, "messages[%zu]: a system message may only come first", k);
	if (has_system && c->msg[0].n_images)
		return err_set(e, "messages[0]: a system message cannot hold an image");
	for (size_t k = first; k < c->n; k++)
		n_img += c->msg[k].n_images;
	if (chat_emit_special(t, BOT, text, ids, e))
		goto out;
	if (has_system || n_img == 0) {
		size_t a = 0, n = 0;

		if (has_system)
			utext_trim(c->msg[0].text, c->msg[0].len, &a, &n);
		if (buf_printf(&seg, "\n\nCutting Knowledge Date: December 2023\nToday Date: %s\n\n",
		    date) == -1 || (n && buf_add(&seg, c->msg[0].text + a, n) == -1)) {
			err_set(e, "out of memory");
			goto out;
		}
		if (header(t, "system", text, ids, e) ||
		    chat_emit_plain(t, seg.p, seg.n, text, ids, e) ||
		    chat_emit_special(t, EOT, text, ids, e))
			goto out;
	}
	for (size_t i = first; i < c->n; i++)
		if (header(t, chat_role_name(c->msg[i].role), text, ids, e) ||
		    parts(t, &c->msg[i], &seg, text, ids, e))
			goto out;
	if (c->add_generation_prompt &&
	    (header(t, "assistant", text, ids, e) || chat_emit_plain(t, "\n\n", 2, text, ids, e)))
		goto out;
	rc = 0;
out:
	buf_free(&seg);
	return rc;
}
