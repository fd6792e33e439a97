/* chat.c - a chat for the generator: building it (from JSON or message by message), the
 * checks every format shares, and the format of a vocabulary. The renders themselves are in
 * chat_l3.c and chat_l2.c. */
#include "generator/chat_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tok.h"
#include "util/jsonkind.h"

void
chat_init(struct chat *c)
{
	memset(c, 0, sizeof(*c));
	c->add_generation_prompt = 1;
}

const char *
chat_role_name(enum chat_role r)
{
	switch (r) {
	case CHAT_SYSTEM: return "system";
	case CHAT_USER: return "user";
	case CHAT_ASSISTANT: return "assistant";
	}
	return "?";
}

int
chat_add(struct chat *c, enum chat_role r, const char *text, size_t len, struct err *e)
{
	struct chat_msg *nm;
	char *copy;

	if (r != CHAT_SYSTEM && r != CHAT_USER && r != CHAT_ASSISTANT)
		return err_set(e, "messages[%zu]: unknown role %d", c->n, (int)r);
	if (c->n >= ((size_t)-1) / sizeof(*nm) - 1 || len == (size_t)-1)
		return err_set(e, "out of memory");
	if ((copy = malloc(len + 1)) == NULL)
		return err_set(e, "out of memory");
	if ((nm = realloc(c->msg, (c->n + 1) * sizeof(*nm))) == NULL) {
		free(copy);
		return err_set(e, "out of memory");
	}
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	c->msg = nm;
	c->msg[c->n].role = r;
	c->msg[c->n].text = copy;
	c->msg[c->n].len = len;
	c->msg[c->n].image_at = NULL;
	c->msg[c->n].n_images = 0;
	c->n++;
	return 0;
}

int
chat_add_image(struct chat *c, size_t at, struct err *e)
{
	struct chat_msg *m;
	size_t *na;

	if (c->n == 0)
		return err_set(e, "an image part needs a message to go in");
	m = &c->msg[c->n - 1];
	if (at > m->len || (m->n_images && at < m->image_at[m->n_images - 1]))
		return err_set(e, "messages[%zu]: image part at byte %zu is out of order", c->n - 1, at);
	if (m->n_images >= ((size_t)-1) / sizeof(size_t) - 1 ||
	    (na = realloc(m->image_at, (m->n_images + 1) * sizeof(size_t))) == NULL)
		return err_set(e, "out of memory");
	m->image_at = na;
	m->image_at[m->n_images++] = at;
	return 0;
}

size_t
chat_n_images(const struct chat *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += c->msg[i].n_images;
	return n;
}

void
chat_free(struct chat *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->msg[i].text);
		free(c->msg[i].image_at);
	}
	free(c->msg);
	c->msg = NULL;
	c->n = 0;
}

static int
role_from_json(const json_t *m, size_t i, enum chat_role *r, struct err *e)
{
	const json_t *v = json_object_get(m, "role");
	const char *s;

	if (v == NULL)
		return err_set(e, "messages[%zu].role: missing", i);
	if (!json_is_string(v))
		return err_set(e, "messages[%zu].role: expected a string, got %s", i, json_kind(v));
	s = json_string_value(v);
	if (strcmp(s, "system") == 0)
		*r = CHAT_SYSTEM;
	else if (strcmp(s, "user") == 0)
		*r = CHAT_USER;
	else if (strcmp(s, "assistant") == 0)
		*r = CHAT_ASSISTANT;
	else if (strcmp(s, "tool") == 0 || strcmp(s, "ipython") == 0)
		return err_set(e, "messages[%zu].role: '%s': tool calling is not supported", i, s);
	else
		return err_set(e, "messages[%zu].role: '%.64s' is not system, user or assistant", i, s);
	/* a role string with a NUL inside would compare equal above */
	if (json_string_length(v) != strlen(s))
		return err_set(e, "messages[%zu].role: holds a NUL character", i);
	return 0;
}

/* the content: a string, or text parts concatenated as given and image parts' offsets in
 * that text (images: up to 64 offsets, *n_img of them) */
#define CHAT_MAX_IMAGES_PER_MSG 64
static int
content_from_json(const json_t *m, size_t i, struct buf *out, size_t *img, size_t *n_img,
    struct err *e)
{
	const json_t *v = json_object_get(m, "content"), *p;
	size_t k;

	if (v == NULL)
		return err_set(e, "messages[%zu].content: missing", i);
	if (json_is_string(v)) {
		if (buf_add(out, json_string_value(v), json_string_length(v)) == -1)
			return err_set(e, "out of memory");
		return 0;
	}
	if (!json_is_array(v))
		return err_set(e, "messages[%zu].content: expected a string or a list of text parts, "
		    "got %s", i, json_kind(v));
	json_array_foreach(v, k, p) {
		const json_t *type, *text;
		if (!json_is_object(p))
			return err_set(e, "messages[%zu].content[%zu]: expected an object, got %s", i,
			    k, json_kind(p));
		if ((type = json_object_get(p, "type")) == NULL)
			return err_set(e, "messages[%zu].content[%zu].type: missing", i, k);
		if (json_is_string(type) && json_string_length(type) == 5 &&
		    strcmp(json_string_value(type), "image") == 0) {
			if (*n_img >= CHAT_MAX_IMAGES_PER_MSG)
				return err_set(e, "messages[%zu].content[%zu]: more than %d images in "
				    "one message", i, k, CHAT_MAX_IMAGES_PER_MSG);
			img[(*n_img)++] = out->n;
			continue;
		}
		if (!json_is_string(type) || json_string_length(type) != 4 ||
		    strcmp(json_string_value(type), "text") != 0)
			return err_set(e, "messages[%zu].content[%zu].type: only \"text\" parts are "
			    "supported (and \"image\" for a vision model)", i, k);
		if ((text = json_object_get(p, "text")) == NULL)
			return err_set(e, "messages[%zu].content[%zu].text: missing", i, k);
		if (!json_is_string(text))
			return err_set(e, "messages[%zu].content[%zu].text: expected a string, got %s",
			    i, k, json_kind(text));
		if (buf_add(out, json_string_value(text), json_string_length(text)) == -1)
			return err_set(e, "out of memory");
	}
	return 0;
}

static int
from_json(struct chat *c, const json_t *root, size_t max_messages, struct err *e)
{
	const json_t *msgs, *agp, *m;
	struct buf text = { 0 };
	enum chat_role r = CHAT_USER;
	size_t i, img[CHAT_MAX_IMAGES_PER_MSG], n_img;

	if (!json_is_object(root))
		return err_set(e, "expected an object with \"messages\", got %s", json_kind(root));
	if (json_object_get(root, "tools") != NULL)
		return err_set(e, "tools: tool calling is not supported");
	if ((agp = json_object_get(root, "add_generation_prompt")) != NULL) {
		if (!json_is_boolean(agp))
			return err_set(e, "add_generation_prompt: expected true or false, got %s",
			    json_kind(agp));
		c->add_generation_prompt = json_is_true(agp);
	}
	if ((msgs = json_object_get(root, "messages")) == NULL)
		return err_set(e, "messages: missing");
	if (!json_is_array(msgs))
		return err_set(e, "messages: expected an array, got %s", json_kind(msgs));
	if (json_array_size(msgs) == 0)
		return err_set(e, "messages: empty (a chat needs a message)");
	if (max_messages && json_array_size(msgs) > max_messages)
		return err_set(e, "messages: %zu messages, more than the limit of %zu",
		    json_array_size(msgs), max_messages);
	json_array_foreach(msgs, i, m) {
		if (!json_is_object(m)) {
			err_set(e, "messages[%zu]: expected an object, got %s", i, json_kind(m));
			goto fail;
		}
		if (json_object_get(m, "tool_calls") != NULL) {
			err_set(e, "messages[%zu].tool_calls: tool calling is not supported", i);
			goto fail;
		}
		text.n = 0;
		n_img = 0;
		if (role_from_json(m, i, &r, e) == -1 ||
		    content_from_json(m, i, &text, img, &n_img, e) == -1 ||
		    chat_add(c, r, text.p ? text.p : "", text.n, e) == -1)
			goto fail;
		for (size_t k = 0; k < n_img; k++)
			if (chat_add_image(c, img[k], e) == -1)
				goto fail;
	}
	buf_free(&text);
	return 0;
fail:
	buf_free(&text);
	return -1;
}

int
chat_from_json(struct chat *c, const json_t *root, size_t max_messages, struct err *e)
{
	chat_init(c);
	if (from_json(c, root, max_messages, e) == -1) {
		chat_free(c);
		return -1;
	}
	return 0;
}

enum chat_format
chat_format_of(const struct tok *t)
{
	if (tok_kind(t) == TOK_SPM)
		return CHAT_FMT_LLAMA2;
	return tok_special(t, "<|image|>") >= 0 ? CHAT_FMT_LLAMA3V : CHAT_FMT_LLAMA3;
}

const char *
chat_format_name(enum chat_format f)
{
	switch (f) {
	case CHAT_FMT_LLAMA3: return "llama3";
	case CHAT_FMT_LLAMA2: return "llama2";
	case CHAT_FMT_LLAMA3V: return "llama3v";
	default: return "auto";
	}
}

int
chat_format_parse(const char *s, enum chat_format *f)
{
	if (strcmp(s, "llama3") == 0)
		*f = CHAT_FMT_LLAMA3;
	else if (strcmp(s, "llama2") == 0)
		*f = CHAT_FMT_LLAMA2;
	else if (strcmp(s, "llama3v") == 0)
		*f = CHAT_FMT_LLAMA3V;
	else if (strcmp(s, "auto") == 0)
		*f = CHAT_FMT_AUTO;
	else
		return -1;
	return 0;
}

void
chat_today(char out[16])
{
	/* by hand, not strftime: %b follows LC_TIME and the template wants English */
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
		"Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		memcpy(out, "01 Jan 1970", 12);
		return;
	}
	out[0] = (char)('0' + tm.tm_mday / 10);
	out[1] = (char)('0' + tm.tm_mday % 10);
	out[2] = ' ';
	memcpy(out + 3, mon[tm.tm_mon], 3);
	out[6] = ' ';
	int y = tm.tm_year + 1900;
	for (int k = 10; k >= 7; k--, y /= 10)
		out[k] = (char)('0' + y % 10);
	out[11] = '\0';
}

int
chat_end_tokens(const struct tok *t, enum chat_format f, int32_t out[8])
{
	static const char *const l3[] = { "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>" };
	int n = 0;

	if (f == CHAT_FMT_AUTO)
		f = chat_format_of(t);
	if (f == CHAT_FMT_LLAMA2) {
		if (tok_eos(t) >= 0)
			out[n++] = tok_eos(t);
		return n;
	}
	for (size_t i = 0; i < sizeof(l3) / sizeof(l3[0]); i++) {
		int32_t id = tok_special(t, l3[i]);
		if (id >= 0)
			out[n++] = id;
	}
	return n;
}

int
chat_emit_special(const struct tok *t, const char *sp, struct buf *text, struct tokvec *ids,
    struct err *e)
{
	if (text && buf_adds(text, sp) == -1)
		return err_set(e, "out of memory");
	if (ids) {
		int32_t id = tok_special(t, sp);
		if (id < 0)
			return err_set(e, "the vocabulary has no special token %s (is the chat format "
			    "the model's?)", sp);
		if (tokvec_push(ids, id) == -1)
			return err_set(e, "out of memory");
	}
	return 0;
}

int
chat_emit_plain(const struct tok *t, const char *s, size_t n, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	if (text && n && buf_add(text, s, n) == -1)
		return err_set(e, "out of memory");
	if (ids && n && tok_encode(t, s, n, 0, ids, e) == -1)
		return -1;
	return 0;
}

/* The date becomes prompt text: keep it to the printable ASCII a date is written with. */
static int
check_date(const char *d, struct err *e)
{
	size_t n = strlen(d);

	if (n == 0 || n > 32)
		return err_set(e, "date: '%.40s' must be 1 to 32 characters (e.g. \"30 Nov 2026\")", d);
	for (size_t i = 0; i < n; i++)
		if (d[i] < 0x20 || d[i] > 0x7e || d[i] == '<')
			return err_set(e, "date: byte %zu is not a printable ASCII character (or is '<')",
			    i);
	return 0;
}

int
chat_render(const struct chat *c, enum chat_format f, const char *date, const struct tok *t,
    struct buf *text, struct tokvec *ids, struct err *e)
{
	char today[16];

	if (c->n == 0)
		return err_set(e, "messages: the chat is empty");
	if (t == NULL && (ids || f == CHAT_FMT_AUTO))
		return err_set(e, "a tokenizer is needed for token ids or to choose the chat format");
	if (f == CHAT_FMT_AUTO)
		f = chat_format_of(t);
	if (c->add_generation_prompt && c->msg[c->n - 1].role == CHAT_ASSISTANT)
		return err_set(e, "messages[%zu]: the last message is the assistant's and "
		    "add_generation_prompt is set (nothing left to generate)", c->n - 1);
	for (size_t i = 0; i < c->n; i++)
		if (utf8_valid_prefix(c->msg[i].text, c->msg[i].len) != c->msg[i].len)
			return err_set(e, "messages[%zu].content: invalid UTF-8 at byte offset %zu", i,
			    utf8_valid_prefix(c->msg[i].text, c->msg[i].len));
	if (f != CHAT_FMT_LLAMA3V)
		for (size_t i = 0; i < c->n; i++)
			if (c->msg[i].n_images)
				return err_set(e, "messages[%zu]: an image part, but the %s chat format "
				    "(a text-only model) takes no images", i, chat_format_name(f));
	if (f == CHAT_FMT_LLAMA2)
		return chat_render_l2(c, t, text, ids, e);
	if (f != CHAT_FMT_LLAMA3 && f != CHAT_FMT_LLAMA3V)
		return err_set(e, "unknown chat format %d", (int)f);
	if (date == NULL) {
		chat_today(today);
		date = today;
	}
	if (check_date(date, e) == -1)
		return -1;
	if (f == CHAT_FMT_LLAMA3V)
		return chat_render_l3v(c, date, t, text, ids, e);
	return chat_render_l3(c, date, t, text, ids, e);
}
