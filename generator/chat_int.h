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

int chat_render_l3(const struct chat *c, const char *date, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e);
int chat_render_l3v(const struct chat *c, const char *date, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e);
int chat_render_l2(const struct chat *c, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e);

#endif
