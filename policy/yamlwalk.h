/* yamlwalk.h - walking a libyaml document with errors that say file:line:column and the
 * key: shared by the policy loader and guardd's configuration loader. Both walk a table
 * of keys; this file knows YAML, not the tables. */
#ifndef GUARDD_YAMLWALK_H
#define GUARDD_YAMLWALK_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "util/err.h"

/* Anchors a document may define: libyaml looks anchors up by a linear scan, so a file of
 * many anchors costs quadratic time to load; configuration files need few if any. */
#define YW_MAX_ANCHORS 64

struct ywalk {
	const char *file;
	yaml_document_t d;
	struct err *e;
	int loaded;
	uint64_t seed;		/* of the duplicate-key hash (yamlwalk.c) */
};

/* "file:line:col: path: message" at node n (n may be NULL), returns -1 */
int yw_fail(struct ywalk *w, yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses text into w->d. Returns the root (NULL for an empty document) or sets *failed.
 * w->file and w->e must be set. */
yaml_node_t *yw_load(struct ywalk *w, const char *text, size_t len, int *failed);
void yw_free(struct ywalk *w);

/* Checks that m is a mapping whose keys are distinct plain strings (no NUL byte); path
 * names m in messages ("" for the document's root). Linear in the number of keys. */
int yw_check_mapping(struct ywalk *w, yaml_node_t *m, const char *path);

/* "a.b" (or "b" when a is empty) into out; a path too long is cut, which only shortens
 * a message. */
void yw_join(char *out, size_t n, const char *a, const char *b);

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

/* Iterates a mapping checked by yw_check_mapping: kn is the key's node, k its text, v the
 * value's node; the body may `return -1` and `continue`. */
#define YW_PAIRS(w, map, path, kn, k, v, body) do { \
	yaml_node_t *_m = (map); \
	if (yw_check_mapping(w, _m, path) == -1) \
		return -1; \
	for (yaml_node_pair_t *_p = _m->data.mapping.pairs.start; _p < _m->data.mapping.pairs.top; _p++) { \
		yaml_node_t *kn = yw_node(w, _p->key), *v = yw_node(w, _p->value); \
		const char *k = yw_scalar(kn); \
		(void)kn; \
		body \
	} \
} while (0)

#endif
