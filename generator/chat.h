/* chat.h - a chat for the generator and its prompt in the model's own chat format,
 * byte-identical to the official chat templates (../shared/spec/templates/l32_template.txt,
 * l2_template.txt). Structure comes only from constants here; message text is data and is
 * tokenized as plain text, so special-token text in a message is never a special token. */
#ifndef GUARDD_CHAT_H
#define GUARDD_CHAT_H

#include <stddef.h>
#include "util/buf.h"
#include "util/err.h"

struct json_t;
struct tok;

enum chat_role { CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT };

struct chat_msg {
	enum chat_role role;
	char *text;		/* as given (NUL-terminated copy; may hold NUL bytes: use len) */
	size_t len;
	/* image parts: the byte offset in text where each sits, in order (equal offsets for
	 * consecutive images); only the Llama 3.2 Vision format renders them */
	size_t *image_at;
	size_t n_images;
};

struct chat {
	struct chat_msg *msg;
	size_t n;
	int add_generation_prompt;	/* default 1 */
};

/* CHAT_FMT_AUTO: from the vocabulary (chat_format_of). */
enum chat_format { CHAT_FMT_AUTO, CHAT_FMT_LLAMA3, CHAT_FMT_LLAMA2, CHAT_FMT_LLAMA3V };

/* From {"messages": [{"role": "system"|"user"|"assistant", "content": STRING |
 * [{"type": "text", "text": STRING} | {"type": "image"}, ...]}, ...], "add_generation_prompt":
 * BOOL}: text parts are concatenated as given, image parts recorded at their place. A "tools" key (or a message with "tool_calls", or role
 * "tool"/"ipython") is an error: tool calling is not supported. Errors name the field path
 * ("messages[2].role: ..."). At most max_messages messages (0: no limit). Other keys are
 * ignored. The order of roles is checked by chat_render (it depends on the format). */
int chat_from_json(struct chat *c, const struct json_t *root, size_t max_messages,
    struct err *e);
/* Appends one message (a copy of text). */
int chat_add(struct chat *c, enum chat_role r, const char *text, size_t len, struct err *e);
/* Puts an image part at byte offset at (<= len, >= the previous image's) of the last message. */
int chat_add_image(struct chat *c, size_t at, struct err *e);
/* The number of image parts in the whole chat. */
size_t chat_n_images(const struct chat *c);
/* An empty chat with add_generation_prompt set, for chat_add. */
void chat_init(struct chat *c);
void chat_free(struct chat *c);
const char *chat_role_name(enum chat_role r);

/* Llama 3 byte-level BPE vocabulary -> LLAMA3, or LLAMA3V when it has <|image|> (Llama
 * 3.2-Vision); Llama 2 SentencePiece -> LLAMA2. */
enum chat_format chat_format_of(const struct tok *t);
const char *chat_format_name(enum chat_format f);
/* "llama3" | "llama3v" | "llama2" | "auto"; -1 for anything else. */
int chat_format_parse(const char *s, enum chat_format *f);

/* Renders the prompt: text (may be NULL) gets the template's exact output, ids (may be NULL)
 * the token ids (BOS included as the template writes it; special tokens only from the
 * structure); both are appended to. date is the "Today Date" of Llama 3 ("%d %b %Y", e.g.
 * "30 Nov 2026"; 1 to 32 printable ASCII characters, no '<'); NULL: today in UTC. Errors:
 * roles out of order for the format (Llama 2: strict user/assistant alternation after an
 * optional system message; Llama 3: a system message only first), an empty chat, a last
 * message from the assistant with add_generation_prompt, an image part in a format without
 * images. LLAMA3V (l32v_template.txt, the current Hub revision) renders each image part as
 * <|image|> in place and has no system block when there are images and no system message. */
int chat_render(const struct chat *c, enum chat_format f, const char *date,
    const struct tok *t, struct buf *text, struct tokvec *ids, struct err *e);
/* Today's date in UTC as the template wants it ("%d %b %Y" in the C locale). */
void chat_today(char out[16]);

/* The ids that end the assistant's turn: Llama 3 <|end_of_text|> 128001, <|eom_id|> 128008,
 * <|eot_id|> 128009 (looked up by text); Llama 2 </s> 2. Returns how many were written. */
int chat_end_tokens(const struct tok *t, enum chat_format f, int32_t out[8]);

#endif
