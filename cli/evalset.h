/* evalset.h - labelled evaluation sets for guard eval: OpenAI's moderation samples (JSONL with
 * label columns, gzip or plain), XSTest's CSV, and generic JSONL ({"text" | "messages",
 * "label": "safe" | "unsafe", "categories": [...]}). */
#ifndef GUARDD_EVALSET_H
#define GUARDD_EVALSET_H

#include <stddef.h>

#include "classifier/conv.h"
#include "util/err.h"

#define EVAL_MAX_CATS 16

struct eitem {
	long no;		/* line (JSONL) or the record's first line (CSV) */
	int label;		/* 1: unsafe */
	char *cats[EVAL_MAX_CATS];	/* the set's own categories of this item */
	int n_cats;
	struct conv cv;
	char key[65];		/* sha256 of the item's record as read: ties --out lines to items */
};

struct evalset {
	const char *kind;	/* "openai", "xstest" or "jsonl" */
	struct eitem *it;
	size_t n;
};

/* Loads a whole set. Errors name the file and line (and the field). */
int evalset_load(const char *path, struct evalset *s, struct err *e);
/* The same from bytes already read (uncompressed): CSV when csv is 1, else JSONL; name is
 * used in errors. */
struct buf;
int evalset_parse(const char *name, int csv, const struct buf *b, struct evalset *s,
    struct err *e);
void evalset_free(struct evalset *s);
/* The hazard code (S1-S14) a set category maps to, or NULL (see guard(1), EVAL SETS). */
const char *evalset_map(const char *kind, const char *cat);

#endif
