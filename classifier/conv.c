/* conv.c - conversations from JSON or plain text, validated like the official template. */
#include "classifier/conv.h"
#include "util/jsonkind.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
add_part(struct conv_msg *m, const char *s, size_t n, struct err *e)
{
	char **np = realloc(m->parts, (m->n_parts + 1) * sizeof(*np));
	size_t *nl = realloc(m->part_len, (m->n_parts + 1) * sizeof(*nl));

	if (np)
		m->parts = np;
	if (nl)
		m->part_len = nl;
	if (np == NULL || nl == NULL)
		return err_set(e, "out of memory");
	if ((m->parts[m->n_parts] = malloc(n + 1)) == NULL)
		return err_set(e, "out of memory");
	memcpy(m->parts[m->n_parts], s, n);
	m->parts[m->n_parts][n] = '\0';
	m->part_len[m->n_parts++] = n;
	return 0;
}

/* one text part: {"type": "text", "text": STRING}; or {"type": "image"} when images are taken */
static int
add_json_part(struct conv_msg *m, const json_t *p, size_t i, size_t k, int images,
    struct err *e)
{
	const json_t *type, *text;

	if (!json_is_object(p))
		return err_set(e, "messages[%zu].content[%zu]: expected an object, got %s", i, k,
		    json_kind(p));
	if ((type = json_object_get(p, "type")) == NULL)
		return err_set(e, "messages[%zu].content[%zu].type: missing", i, k);
	if (images && json_is_string(type) && json_string_length(type) == 5 &&
	    strcmp(json_string_value(type), "image") == 0) {
		m->n_images++;
		return 0;
	}
	if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
	    json_string_length(type) != 4)
		return err_set(e, "messages[%zu].content[%zu].type: only \"text\" parts are "
		    "supported (Llama Guard 3 1B reads text only)", i, k);
	if ((text = json_object_get(p, "text")) == NULL)
		return err_set(e, "messages[%zu].content[%zu].text: missing", i, k);
	if (!json_is_string(text))
		return err_set(e, "messages[%zu].content[%zu].text: expected a string, got %s", i, k,
		    json_kind(text));
	return add_part(m, json_string_value(text), json_string_length(text), e);
}

static int
from_json(struct conv *c, const json_t *root, size_t max_messages, size_t max_images,
    struct err *e)
{
	const json_t *msgs;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(root))
		return err_set(e, "expected an object with 'messages', got %s", json_kind(root));
	if ((msgs = json_object_get(root, "messages")) == NULL)
		return err_set(e, "messages: missing");
	if (!json_is_array(msgs))
		return err_set(e, "messages: expected an array, got %s", json_kind(msgs));
	size_t n = json_array_size(msgs);
	if (n == 0)
		return err_set(e, "messages: empty");
	if (n > max_messages)
		return err_set(e, "messages: %zu messages, the limit is %zu", n, max_messages);
	if ((c->msg = calloc(n, sizeof(*c->msg))) == NULL)
		return err_set(e, "out of memory");
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(msgs, i), *role, *content;
		if (!json_is_object(m)) {
			err_set(e, "messages[%zu]: expected an object, got %s", i, json_kind(m));
			goto fail;
		}
		if ((role = json_object_get(m, "role")) == NULL || !json_is_string(role)) {
			err_set(e, "messages[%zu].role: %s%s", i, role ? "expected a string, got " :
			    "missing", role ? json_kind(role) : "");
			goto fail;
		}
		const char *rs = json_string_value(role);
		size_t rn = json_string_length(role);
		if (!(rn == 4 && strcmp(rs, "user") == 0) && !(rn == 9 && strcmp(rs, "assistant") == 0)) {
			err_set(e, "messages[%zu].role: '%.32s' (Llama Guard assesses 'user' and "
			    "'assistant' messages)", i, rs);
			goto fail;
		}
		c->msg[i].assistant = rs[0] == 'a';
		if (c->msg[i].assistant != (int)(i % 2)) {
			err_set(e, "messages[%zu]: conversation roles must alternate "
			    "user/assistant/user/assistant/...", i);
			goto fail;
		}
		if ((content = json_object_get(m, "content")) == NULL) {
			err_set(e, "messages[%zu].content: missing", i);
			goto fail;
		}
		if (json_is_string(content)) {
			if (add_part(&c->msg[i], json_string_value(content), json_string_length(content), e))
				goto fail;
		} else if (json_is_array(content)) {
			for (size_t k = 0; k < json_array_size(content); k++)
				if (add_json_part(&c->msg[i], json_array_get(content, k), i, k,
				    max_images > 0, e) == -1)
					goto fail;
			if (conv_n_images(c) > max_images) {
				err_set(e, "messages[%zu].content: more than %zu images in the "
				    "conversation", i, max_images);
				goto fail;
			}
		} else {
			err_set(e, "messages[%zu].content: expected a string or a list of text parts, "
			    "got %s", i, json_kind(content));
			goto fail;
		}
	}
	return 0;
fail:
	conv_free(c);
	return -1;
}

int
conv_from_json_max(struct conv *c, const json_t *root, size_t max_messages, struct err *e)
{
	return from_json(c, root, max_messages, 0, e);
}

int
conv_from_json_vision(struct conv *c, const json_t *root, size_t max_messages,
    size_t max_images, struct err *e)
{
	return from_json(c, root, max_messages, max_images, e);
}

size_t
conv_n_images(const struct conv *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += c->msg[i].n_images;
	return n;
}

int
conv_from_json(struct conv *c, const json_t *root, struct err *e)
{
	return conv_from_json_max(c, root, SIZE_MAX, e);
}

/* The path of the object being read at byte pos of JSON text (for a duplicate key, which
 * jansson reports just after the key): one linear pass over the structure. */
static void
json_path_at(const char *t, size_t n, size_t pos, char *out, size_t cap)
{
	enum { DEPTH = 32 };
	struct frame {
		int array;
		size_t idx;
		const char *key;
		size_t klen;
	} st[DEPTH];
	int depth = 0, want_key = 0;
	size_t i = 0, o = 0;

	for (; i < n && i < pos; i++) {
		char ch = t[i];
		if (ch == '"') {
			size_t a = ++i;
			while (i < n && t[i] != '"')
				i += t[i] == '\\' ? 2 : 1;
			if (want_key && depth > 0 && depth <= DEPTH) {
				st[depth - 1].key = t + a;
				st[depth - 1].klen = (i < n ? i : n) - a;
			}
			want_key = 0;
		} else if (ch == '{' || ch == '[') {
			if (depth < DEPTH)
				st[depth] = (struct frame){ ch == '[', 0, NULL, 0 };
			depth++;
			want_key = ch == '{';
		} else if (ch == '}' || ch == ']') {
			depth -= depth > 0;
			want_key = 0;
		} else if (ch == ',' && depth > 0 && depth <= DEPTH) {
			if (st[depth - 1].array)
				st[depth - 1].idx++;
			else
				want_key = 1;
		}
	}
	out[0] = '\0';
	/* the innermost object holds the duplicate: its own key is not part of the path */
	for (int d = 0; d + 1 < depth && d < DEPTH && o + 1 < cap; d++) {
		int w;
		if (st[d].array)
			w = snprintf(out + o, cap - o, "[%zu]", st[d].idx);
		else
			w = snprintf(out + o, cap - o, "%s%.*s", o ? "." : "",
			    (int)(st[d].klen > 40 ? 40 : st[d].klen), st[d].key ? st[d].key : "?");
		o += w > 0 ? (size_t)w : 0;
	}
	if (depth > DEPTH && o + 5 < cap)
		snprintf(out + o, cap - o, "...");
	if (out[0] == '\0')
		snprintf(out, cap, "the top level");
}

int
conv_json_load(const char *text, size_t len, json_t **out, struct err *e)
{
	json_error_t je;
	char path[256];

	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (*out != NULL)
		return 0;
	if (strstr(je.text, "duplicate object key") != NULL) {
		json_path_at(text, len, je.position > 0 ? (size_t)je.position : 0, path, sizeof(path));
		return err_set(e, "JSON, line %d column %d: %s: %s (a key may appear once)", je.line,
		    je.column, path, je.text);
	}
	return err_set(e, "JSON, line %d column %d: %s", je.line, je.column, je.text);
}

int
conv_parse(struct conv *c, const char *text, size_t len, struct err *e)
{
	json_t *root;
	int rc;

	memset(c, 0, sizeof(*c));
	if (conv_json_load(text, len, &root, e) == -1)
		return -1;
	rc = conv_from_json(c, root, e);
	json_decref(root);
	return rc;
}

int
conv_simple(struct conv *c, const char *prompt, size_t plen, const char *response, size_t rlen,
    struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->n = response ? 2 : 1;
	if ((c->msg = calloc(c->n, sizeof(*c->msg))) == NULL)
		return err_set(e, "out of memory");
	if (add_part(&c->msg[0], prompt, plen, e) == -1)
		goto fail;
	if (response) {
		c->msg[1].assistant = 1;
		if (add_part(&c->msg[1], response, rlen, e) == -1)
			goto fail;
	}
	return 0;
fail:
	conv_free(c);
	return -1;
}

void
conv_free(struct conv *c)
{
	for (size_t i = 0; c->msg && i < c->n; i++) {
		for (size_t k = 0; k < c->msg[i].n_parts; k++)
			free(c->msg[i].parts[k]);
		free(c->msg[i].parts);
		free(c->msg[i].part_len);
	}
	free(c->msg);
	memset(c, 0, sizeof(*c));
}

int
conv_add_msg(struct conv *c, struct err *e)
{
	struct conv_msg *m = realloc(c->msg, (c->n + 1) * sizeof(*m));

	if (m == NULL)
		return err_set(e, "out of memory");
	c->msg = m;
	memset(&c->msg[c->n++], 0, sizeof(*m));
	return 0;
}

int
conv_add_part(struct conv *c, const char *text, size_t len, struct err *e)
{
	if (c->n == 0)
		return err_set(e, "no message to add text to");
	return add_part(&c->msg[c->n - 1], text, len, e);
}

int
conv_check(const struct conv *c, struct err *e)
{
	if (c->n == 0)
		return err_set(e, "'messages' is empty");
	for (size_t i = 0; i < c->n; i++)
		if (c->msg[i].assistant != (int)(i % 2))
			return err_set(e, "messages[%zu]: conversation roles must alternate "
			    "user/assistant/user/assistant/...", i);
	return 0;
}
