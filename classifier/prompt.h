/* prompt.h - the Llama Guard 3 1B (and 11B-Vision) prompt, byte-identical to the official chat template's
 * render. Structure comes only from constants here; message text is appended as data and
 * tokenized as plain text, so it can never add or remove a special token. */
#ifndef GUARDD_PROMPT_H
#define GUARDD_PROMPT_H

#include "util/buf.h"
#include "util/err.h"
#include "policy/policy.h"

struct conv;
struct tok;

/* Everything up to and including "<BEGIN CONVERSATION>\n\n": fixed for a (policy, role). */
int prompt_prefix(const struct policy *p, enum role r, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e);

/* Llama Guard 3 11B-Vision with an image in the conversation: the same with "<|image|> " right
 * after the first header (lg11bv_template.txt; image parts are otherwise ignored). The
 * vocabulary must have <|image|>. */
int prompt_prefix_image(const struct policy *p, enum role r, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e);

/* The rest: the conversation, the instructions and the assistant header. The role assessed
 * is the last message's. t may be NULL for text only. */
int prompt_body(const struct conv *c, const struct tok *t, struct buf *text, struct tokvec *ids,
    enum role *role, struct err *e);

/* Does message text imitate the prompt's scaffolding (after folding look-alikes, see
 * classifier/spoof.h)? Fills up to `max` short reasons; implemented in spoof.c. */
int prompt_spoof(const struct conv *c, const char **reasons, int max);

#endif
