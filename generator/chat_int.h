/* chat_int.h - what the chat renderers share: emitting structure and text in step, so the
 * prompt text and its ids always come from the same pieces. */
#ifndef GUARDD_CHAT_INT_H
#define GUARDD_CHAT_INT_H

#include "generator/chat.h"

/* Appends a special token of the structure: its text to text, its id (looked up by text) to
 * ids. Either may be NULL; t is needed only for ids. */
int chat_emit_special(const struct tok *t, const char *sp, struct buf *text, struct tokvec *ids,
    struct err *e);
/* Appends plain text (tokenized with special-token parsing off: it is data). */
int chat_emit_plain(const struct tok *t, const char *s, size_t n, struct buf *text,
    struct tokvec *ids, struct err *e);

/* The pieces of the Llama 3.2 prompts (chat_l3.c), shared by its text and vision renders:
 * a message header (start, the role as text, end); the check that a system message comes
 * only first; the system block (header, cutoff, date, sys's trimmed text (sys may be NULL),
 * eot; seg is scratch); the turns: from message first on, each one's header and body (the
 * renderer's: the text after the header, eot included; seg is scratch), then the assistant
 * header and "\n\n" when a generation is asked for. */
int chat_l3_header(const struct tok *t, const char *role, struct buf *text, struct tokvec *ids,
    struct err *e);
int chat_l3_check(const struct chat *c, struct err *e);
int chat_l3_system(const struct tok *t, const char *date, const struct chat_msg *sys,
    struct buf *seg, struct buf *text, struct tokvec *ids, struct err *e);
/* The end of a message's body: seg's text as one plain piece, then <|eot_id|>. */
int chat_l3_eot(const struct tok *t, const struct buf *seg, struct buf *text,
    struct tokvec *ids, struct err *e);
typedef int chat_l3_body_fn(const struct tok *t, const struct chat_msg *m, struct buf *seg,
    struct buf *text, struct tokvec *ids, struct err *e);
int chat_l3_turns(const struct chat *c, size_t first, const struct tok *t, chat_l3_body_fn *body,
    struct buf *seg, struct buf *text, struct tokvec *ids, struct err *e);

int chat_render_l3(const struct chat *c, const char *date, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e);
int chat_render_l3v(const struct chat *c, const char *date, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e);
int chat_render_l2(const struct chat *c, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e);

#endif
