/* chat_l2.c - the Llama 2 chat prompt, byte for byte as its official chat template
 * (l2_template.txt) renders it: an optional system message folded into the first user
 * message as <<SYS>> ... <</SYS>>, each user turn "<s>[INST] text [/INST]" and each answer
 * " text </s>", texts stripped as Python's str.strip() does. */
#include "generator/chat_int.h"

#include "util/utext.h"

#define BOS "<s>"
#define EOS "</s>"

/* strict alternation after an optional system message, as the template's check (which names
 * no message; ours does) */
static int
check_roles(const struct chat *c, size_t first, struct err *e)
{
	if (first >= c->n)
		return err_set(e, "messages: no user message after the system message");
	for (size_t i = first; i < c->n; i++) {
		enum chat_role want = (i - first) % 2 == 0 ? CHAT_USER : CHAT_ASSISTANT;
		if (c->msg[i].role != want)
			return err_set(e, "messages[%zu]: conversation roles must alternate "
			    "user/assistant/user/assistant/... after an optional system message "
			    "(got '%s', want '%s')", i, chat_role_name(c->msg[i].role),
			    chat_role_name(want));
	}
	return 0;
}

/* appends strip(s) */
static int
add_stripped(struct buf *b, const char *s, size_t n, struct err *e)
{
	size_t a, k;

	utext_trim(s, n, &a, &k);
	if (k && buf_add(b, s + a, k) == -1)
		return err_set(e, "out of memory");
	return 0;
}

int
chat_render_l2(const struct chat *c, const struct tok *t, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	struct buf seg = { 0 }, content = { 0 };
	const struct chat_msg *sys = c->msg[0].role == CHAT_SYSTEM ? &c->msg[0] : NULL;
	size_t first = sys ? 1 : 0;
	int rc = -1;

	if (check_roles(c, first, e) == -1)
		return -1;
	/* Between <s> and </s> the text is one piece for the tokenizer ("[INST] u [/INST] a "),
	 * as the whole rendered text is split only at special tokens. */
	for (size_t i = first; i < c->n; i += 2) {
		const struct chat_msg *u = &c->msg[i];
		content.n = 0;
		if (i == first && sys) {
			if (buf_adds(&content, "<<SYS>>\n") == -1 ||
			    (sys->len && buf_add(&content, sys->text, sys->len) == -1) ||
			    buf_adds(&content, "\n<</SYS>>\n\n") == -1) {
				err_set(e, "out of memory");
				goto out;
			}
		}
		if (u->len && buf_add(&content, u->text, u->len) == -1) {
			err_set(e, "out of memory");
			goto out;
		}
		seg.n = 0;
		if (buf_adds(&seg, "[INST] ") == -1 ||
		    add_stripped(&seg, content.p ? content.p : "", content.n, e) == -1 ||
		    buf_adds(&seg, " [/INST]") == -1)
			goto oom;
		if (i + 1 < c->n) {
			const struct chat_msg *a = &c->msg[i + 1];
			if (buf_adds(&seg, " ") == -1 || add_stripped(&seg, a->text, a->len, e) == -1 ||
			    buf_adds(&seg, " ") == -1)
				goto oom;
		}
		if (chat_emit_special(t, BOS, text, ids, e) ||
		    chat_emit_plain(t, seg.p, seg.n, text, ids, e))
			goto out;
		if (i + 1 < c->n && chat_emit_special(t, EOS, text, ids, e))
			goto out;
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory");
out:
	buf_free(&seg);
	buf_free(&content);
	return rc;
}
