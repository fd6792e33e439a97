/* conv.h - a conversation to assess: alternating user/assistant messages of text parts. */
#ifndef GUARDD_CONV_H
#define GUARDD_CONV_H

#include <stddef.h>
#include "util/err.h"

struct json_t;

struct conv_msg {
	int assistant;		/* 0: user, 1: assistant */
	char **parts;		/* text parts as given (trimmed when rendered) */
	size_t *part_len;
	size_t n_parts;
	size_t n_images;	/* image parts (conv_from_json_vision only): counted, not rendered */
};

/* an image part's bytes (PNG or JPEG) */
struct conv_image {
	unsigned char *data;
	size_t len;
};

struct conv {
	struct conv_msg *msg;
	size_t n;
	/* the image parts' bytes in order, when the caller has them (borrowed: proto's request
	 * owns them; conv_free leaves them); n_img is 0 otherwise */
	const struct conv_image *img;
	size_t n_img;
};

/* From {"messages": [{"role": "user"|"assistant", "content": STRING | [{"type": "text",
 * "text": STRING}, ...]}, ...]}. Checks roles alternate starting with the user, as the
 * official template does. Errors name the field path ("messages[3].content[1].text: ...").
 * Other keys are ignored. */
int conv_from_json(struct conv *c, const struct json_t *root, struct err *e);
/* The same with at most max_messages messages (conv_from_json: no limit). */
int conv_from_json_max(struct conv *c, const struct json_t *root, size_t max_messages,
    struct err *e);
/* conv_from_json_max that also takes {"type": "image"} parts (Llama Guard 3 11B-Vision: the
 * prompt then gets one <|image|>, see prompt_prefix_image; the parts are otherwise ignored, as
 * the template ignores them). At most max_images image parts in the whole conversation. */
int conv_from_json_vision(struct conv *c, const struct json_t *root, size_t max_messages,
    size_t max_images, struct err *e);
/* The number of image parts in the conversation. */
size_t conv_n_images(const struct conv *c);
/* Parses JSON text, refusing duplicate keys at every depth; errors name the line, column and
 * (for a duplicate) the path of the object and the key. Release *out with json_decref. */
int conv_json_load(const char *text, size_t len, struct json_t **out, struct err *e);
/* conv_json_load, then conv_from_json. */
int conv_parse(struct conv *c, const char *text, size_t len, struct err *e);
/* One user message, or user + assistant when response != NULL. */
int conv_simple(struct conv *c, const char *prompt, size_t plen, const char *response,
    size_t rlen, struct err *e);
/* Incremental construction: a new message (role set by the caller), then its text parts;
 * conv_check validates the roles as conv_from_json does. */
int conv_add_msg(struct conv *c, struct err *e);
int conv_add_part(struct conv *c, const char *text, size_t len, struct err *e);
int conv_check(const struct conv *c, struct err *e);
void conv_free(struct conv *c);

#endif
