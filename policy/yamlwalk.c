/* yamlwalk.c - loading a YAML document with libyaml and checking its mappings: errors
 * carry file:line:column; work stays linear in the input (a bounded number of anchors,
 * duplicate keys found with a hash set). */
#include "policy/yamlwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int
yw_fail(struct ywalk *w, yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(w->e, "%s:%zu:%zu: %s%s%s", w->file, n ? n->start_mark.line + 1 : 0,
	    n ? n->start_mark.column + 1 : 0, path, *path ? ": " : "", msg);
}

void
yw_join(char *out, size_t n, const char *a, const char *b)
{
	if (snprintf(out, n, "%s%s%s", a, *a ? "." : "", b) >= (int)n)
		out[n - 1] = '\0';
}

static int
parser_fail(struct ywalk *w, yaml_parser_t *p, const char *text, size_t len)
{
	size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;

	if (p->error == YAML_READER_ERROR) {
		/* the reader (bad UTF-8, control characters) gives a byte offset, no mark:
		 * count lines and characters up to it, as the marks do */
		size_t end = p->problem_offset < len ? p->problem_offset : len;
		line = col = 1;
		for (size_t i = 0; i < end; i++)
			if (text[i] == '\n')
				line++, col = 1;
			else if (((unsigned char)text[i] & 0xc0) != 0x80)
				col++;
		return err_set(w->e, "%s:%zu:%zu: YAML: %s (byte offset %zu)", w->file, line, col,
		    p->problem ? p->problem : "unreadable input", p->problem_offset);
	}
	return err_set(w->e, "%s:%zu:%zu: YAML: %s", w->file, line, col,
	    p->problem ? p->problem : "syntax error");
}

static const yaml_char_t *
event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT: return ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT: return ev->data.mapping_start.anchor;
	default: return NULL;
	}
}

/* One pass over the events before libyaml builds the document: it refuses what the
 * loader would take quadratic time over (many anchors) or silently drop (a second
 * document). */
static int
prescan(struct ywalk *w, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int anchors = 0, docs = 0, rc = 0;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = parser_fail(w, &p, text, len);
			break;
		}
		yaml_mark_t at = ev.start_mark;
		yaml_event_type_t t = ev.type;
		if (event_anchor(&ev) != NULL && ++anchors > YW_MAX_ANCHORS)
			rc = err_set(w->e, "%s:%zu:%zu: YAML: more than %d anchors", w->file, at.line + 1,
			    at.column + 1, YW_MAX_ANCHORS);
		else if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			rc = err_set(w->e, "%s:%zu:%zu: YAML: more than one document", w->file,
			    at.line + 1, at.column + 1);
		yaml_event_delete(&ev);
		if (rc == -1 || t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

yaml_node_t *
yw_load(struct ywalk *w, const char *text, size_t len, int *failed)
{
	yaml_parser_t parser;

	*failed = 1;
	if (getrandom(&w->seed, sizeof(w->seed), GRND_NONBLOCK) != (ssize_t)sizeof(w->seed))
		w->seed = (uint64_t)(uintptr_t)w ^ (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	if (prescan(w, text, len) == -1)
		return NULL;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &w->d)) {
		parser_fail(w, &parser, text, len);
		yaml_parser_delete(&parser);
		return NULL;
	}
	yaml_parser_delete(&parser);
	*failed = 0;
	w->loaded = 1;
	return yaml_document_get_root_node(&w->d);
}

void
yw_free(struct ywalk *w)
{
	if (w->loaded)
		yaml_document_delete(&w->d);
	w->loaded = 0;
}

/* Polynomial hashing modulo 2^61 - 1 at a random point: two different keys of length
 * at most L collide with probability at most L / 2^61 whatever the file, so nobody can
 * write keys that make the set quadratic. */
#define P61 ((1ull << 61) - 1)

static uint64_t
mulmod61(uint64_t a, uint64_t b)
{
	unsigned __int128 z = (unsigned __int128)a * b;
	uint64_t s = ((uint64_t)z & P61) + (uint64_t)(z >> 61);

	s = (s & P61) + (s >> 61);
	return s >= P61 ? s - P61 : s;
}

static uint64_t
key_hash(uint64_t r, const unsigned char *s, size_t n)
{
	uint64_t h = 0;

	for (size_t i = 0; i < n; i++) {
		h = mulmod61(h, r) + s[i] + 1;
		if (h >= P61)
			h -= P61;
	}
	return h;
}

int
yw_check_mapping(struct ywalk *w, yaml_node_t *m, const char *path)
{
	if (m == NULL || m->type != YAML_MAPPING_NODE)
		return yw_fail(w, m, path, "expected a mapping");
	size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start), cap = 16;
	while (cap < 2 * n)
		cap <<= 1;
	int small[16], *slot = cap <= 16 ? small : malloc(cap * sizeof(*slot));
	uint64_t r = w->seed % (P61 - 1) + 1;
	int rc = 0;

	if (slot == NULL)
		return yw_fail(w, m, path, "out of memory");
	memset(slot, 0xff, cap * sizeof(*slot));	/* -1: empty */
	for (size_t i = 0; i < n && rc == 0; i++) {
		yaml_node_t *kn = yw_node(w, m->data.mapping.pairs.start[i].key);
		const char *k = yw_scalar(kn);
		char kp[256];

		if (k == NULL) {
			rc = yw_fail(w, kn, path, "keys must be plain strings");
			break;
		}
		size_t len = kn->data.scalar.length;
		yw_join(kp, sizeof(kp), path, k);
		if (strlen(k) != len) {
			rc = yw_fail(w, kn, kp, "a key must not contain a NUL byte");
			break;
		}
		size_t j = key_hash(r, (const unsigned char *)k, len) & (cap - 1);
		for (; slot[j] >= 0; j = (j + 1) & (cap - 1)) {
			yaml_node_t *o = yw_node(w, m->data.mapping.pairs.start[slot[j]].key);
			if (o->data.scalar.length == len && memcmp(o->data.scalar.value, k, len) == 0) {
				rc = yw_fail(w, kn, kp, "duplicate key '%s' (first on line %zu)", k,
				    o->start_mark.line + 1);
				break;
			}
		}
		slot[j] = (int)i;
	}
	if (slot != small)
		free(slot);
	return rc;
}
