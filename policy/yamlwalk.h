/* yamlwalk.h - walking a libyaml document with errors that say file:line:column and the
 * key: shared by the policy loader and guardd's configuration loader. */
#ifndef GUARDD_YAMLWALK_H
#define GUARDD_YAMLWALK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "util/err.h"

struct ywalk {
	const char *file;
	yaml_document_t d;
	struct err *e;
	int loaded;
};

static inline int yw_fail(struct ywalk *w, yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "file:line:col: path: message", returns -1 */
static inline int
yw_fail(struct ywalk *w, yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(w->e, "%s:%zu:%zu: %s: %s", w->file, n ? n->start_mark.line + 1 : 0,
	    n ? n->start_mark.column + 1 : 0, path, msg);
}

static inline const char *
yw_scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static inline yaml_node_t *
yw_node(struct ywalk *w, int id)
{
	return yaml_document_get_node(&w->d, id);
}

/* Parses text into w->d. Returns the root (NULL for an empty document) or sets *failed. */
static inline yaml_node_t *
yw_load(struct ywalk *w, const char *text, size_t len, int *failed)
{
	yaml_parser_t parser;

	*failed = 0;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &w->d)) {
		err_set(w->e, "%s:%zu:%zu: YAML: %s", w->file, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
		yaml_parser_delete(&parser);
		*failed = 1;
		return NULL;
	}
	yaml_parser_delete(&parser);
	w->loaded = 1;
	return yaml_document_get_root_node(&w->d);
}

static inline void
yw_free(struct ywalk *w)
{
	if (w->loaded)
		yaml_document_delete(&w->d);
	w->loaded = 0;
}

/* Iterates a mapping's pairs (k: the key's text, v: the value node), rejecting
 * non-mappings, non-scalar keys and duplicate keys; `return -1` on an error. */
#define YW_PAIRS(w, map, what, k, v, body) do { \
	yaml_node_t *_m = (map); \
	if (_m == NULL || _m->type != YAML_MAPPING_NODE) \
		return yw_fail(w, _m, what, "expected a mapping"); \
	for (yaml_node_pair_t *_p = _m->data.mapping.pairs.start; _p < _m->data.mapping.pairs.top; _p++) { \
		yaml_node_t *_k = yw_node(w, _p->key), *v = yw_node(w, _p->value); \
		const char *k = yw_scalar(_k); \
		if (k == NULL) \
			return yw_fail(w, _k, what, "keys must be plain strings"); \
		for (yaml_node_pair_t *_q = _m->data.mapping.pairs.start; _q < _p; _q++) { \
			const char *_o = yw_scalar(yw_node(w, _q->key)); \
			if (_o && strcmp(_o, k) == 0) \
				return yw_fail(w, _k, what, "duplicate key '%s'", k); \
		} \
		body \
	} \
} while (0)

#endif
