/* conv.c - conversations from JSON or plain text, validated like the official template. */
#include "classifier/conv.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES 4096

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

int
conv_from_json(struct conv *c, const json_t *root, struct err *e)
{
	json_t *msgs = json_object_get(root, "messages");

	memset(c, 0, sizeof(*c));
	if (!json_is_array(msgs))
		return err_set(e, "'messages' must be an array");
	size_t n = json_array_size(msgs);
	if (n == 0)
		return err_set(e, "'messages' is empty");
	if (n > MAX_MESSAGES)
		return err_set(e, "'messages' has %zu entries (at most %d)", n, MAX_MESSAGES);
	if ((c->msg = calloc(n, sizeof(*c->msg))) == NULL)
		return err_set(e, "out of memory");
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_array_get(msgs, i), *content;
		const char *role = json_string_value(json_object_get(m, "role"));
		if (!json_is_object(m))
			goto bad_obj;
		if (role == NULL) {
			err_set(e, "messages[%zu].role: missing or not a string", i);
			goto fail;
		}
		if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
			err_set(e, "messages[%zu].role: '%.32s' (Llama Guard assesses 'user' and "
			    "'assistant' messages)", i, role);
			goto fail;
		}
		c->msg[i].assistant = role[0] == 'a';
		if (c->msg[i].assistant != (int)(i % 2)) {
			err_set(e, "messages[%zu]: conversation roles must alternate "
			    "user/assistant/user/assistant/...", i);
			goto fail;
		}
		content = json_object_get(m, "content");
		if (json_is_string(content)) {
			if (add_part(&c->msg[i], json_string_value(content), json_string_length(content), e))
				goto fail;
		} else if (json_is_array(content)) {
			for (size_t k = 0; k < json_array_size(content); k++) {
				json_t *p = json_array_get(content, k);
				const char *type = json_string_value(json_object_get(p, "type"));
				json_t *text = json_object_get(p, "text");
				if (type == NULL || strcmp(type, "text") != 0) {
					err_set(e, "messages[%zu].content[%zu]: only {\"type\": \"text\"} parts are "
					    "supported (Llama Guard 3 1B reads text only)", i, k);
					goto fail;
				}
				if (!json_is_string(text)) {
					err_set(e, "messages[%zu].content[%zu].text: missing or not a string", i, k);
					goto fail;
				}
				if (add_part(&c->msg[i], json_string_value(text), json_string_length(text), e))
					goto fail;
			}
		} else {
			err_set(e, "messages[%zu].content: must be a string or a list of text parts", i);
			goto fail;
		}
		continue;
bad_obj:
		err_set(e, "messages[%zu]: not an object", i);
		goto fail;
	}
	return 0;
fail:
	conv_free(c);
	return -1;
}

int
conv_parse(struct conv *c, const char *text, size_t len, struct err *e)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	int rc;

	memset(c, 0, sizeof(*c));
	if (root == NULL)
		return err_set(e, "JSON, line %d column %d: %s", je.line, je.column, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(e, "expected a JSON object with 'messages'");
	}
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
