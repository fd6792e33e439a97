/* evalset.c - reads the evaluation sets guard eval accepts: a whole file (gzip read through
 * zlib, plain files pass through it unchanged), then one record per line (JSONL) or per CSV
 * record (RFC 4180 quoting, newlines inside quotes). */
#include "cli/evalset.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/buf.h"
#include "util/sha256.h"

#define EVAL_MAX_BYTES (1L << 30)

/* OpenAI's label columns, with the hazard code each one maps to (approximate: OpenAI's
 * taxonomy is not MLCommons'; HR, harassment, has no single code) */
static const struct {
	const char *col, *code;
} openai_cols[] = {
	{ "S", "S12" }, { "H", "S10" }, { "V", "S1" }, { "HR", NULL },
	{ "SH", "S11" }, { "S3", "S4" }, { "H2", "S10" }, { "V2", "S1" },
};
#define N_OPENAI (sizeof(openai_cols) / sizeof(openai_cols[0]))

const char *
evalset_map(const char *kind, const char *cat)
{
	if (strcmp(kind, "openai") == 0) {
		for (size_t i = 0; i < N_OPENAI; i++)
			if (strcmp(openai_cols[i].col, cat) == 0)
				return openai_cols[i].code;
		return NULL;
	}
	/* generic sets may label with the codes themselves */
	if (strcmp(kind, "jsonl") == 0 && cat[0] == 'S' && cat[1] >= '1' && cat[1] <= '9' &&
	    strspn(cat + 1, "0123456789") == strlen(cat + 1) && strlen(cat) <= 4)
		return cat;
	return NULL;
}

static int
read_all(const char *path, struct buf *b, struct err *e)
{
	gzFile f = gzopen(path, "rb");
	char chunk[65536];
	int n;

	if (f == NULL)
		return err_set(e, "%s: cannot open", path);
	while ((n = gzread(f, chunk, sizeof(chunk))) > 0) {
		if (b->n + (size_t)n > EVAL_MAX_BYTES) {
			gzclose(f);
			return err_set(e, "%s: larger than %ld bytes", path, EVAL_MAX_BYTES);
		}
		if (buf_add(b, chunk, (size_t)n) == -1) {
			gzclose(f);
			return err_set(e, "%s: out of memory", path);
		}
	}
	if (n < 0) {
		int zr;
		const char *m = gzerror(f, &zr);
		err_set(e, "%s: %s", path, m);
		gzclose(f);
		return -1;
	}
	gzclose(f);
	return 0;
}

static int
add_item(struct evalset *s, size_t *cap, struct eitem **out)
{
	if (s->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct eitem *ni = realloc(s->it, nc * sizeof(*ni));
		if (ni == NULL)
			return -1;
		s->it = ni;
		*cap = nc;
	}
	*out = &s->it[s->n];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int
add_cat(struct eitem *it, const char *c, size_t len)
{
	if (it->n_cats == EVAL_MAX_CATS)
		return 0;	/* more are not counted: documented limit */
	if ((it->cats[it->n_cats] = strndup(c, len)) == NULL)
		return -1;
	it->n_cats++;
	return 0;
}

static void
item_free(struct eitem *it)
{
	for (int i = 0; i < it->n_cats; i++)
		free(it->cats[i]);
	conv_free(&it->cv);
}

/* One JSONL line: the OpenAI samples or the generic form. */
static int
jsonl_item(struct evalset *s, struct eitem *it, const char *p, size_t len, struct err *e)
{
	json_t *o;
	const char *kind;
	int rc = -1;

	if (conv_json_load(p, len, &o, e) == -1)
		return -1;
	if (!json_is_object(o)) {
		json_decref(o);
		return err_set(e, "not a JSON object");
	}
	json_t *label = json_object_get(o, "label"), *text = json_object_get(o, "text");
	json_t *prompt = json_object_get(o, "prompt");
	if (label != NULL) {
		kind = "jsonl";
		const char *l = json_string_value(label);
		if (l == NULL || (strcmp(l, "safe") != 0 && strcmp(l, "unsafe") != 0)) {
			err_set(e, "label: expected \"safe\" or \"unsafe\"");
			goto out;
		}
		it->label = strcmp(l, "unsafe") == 0;
		json_t *cats = json_object_get(o, "categories"), *c;
		size_t i;
		if (cats != NULL && !json_is_array(cats)) {
			err_set(e, "categories: expected an array of strings");
			goto out;
		}
		json_array_foreach(cats, i, c) {
			if (!json_is_string(c)) {
				err_set(e, "categories[%zu]: expected a string", i);
				goto out;
			}
			if (add_cat(it, json_string_value(c), json_string_length(c)) == -1) {
				err_set(e, "out of memory");
				goto out;
			}
		}
		if (json_object_get(o, "messages") != NULL) {
			if (conv_from_json(&it->cv, o, e) == -1)
				goto out;
		} else if (json_is_string(text) || json_is_string(prompt)) {
			json_t *t = json_is_string(text) ? text : prompt;
			if (conv_simple(&it->cv, json_string_value(t), json_string_length(t), NULL, 0, e) == -1)
				goto out;
		} else {
			err_set(e, "expected \"text\" or \"messages\"");
			goto out;
		}
	} else {
		kind = "openai";
		if (!json_is_string(prompt)) {
			err_set(e, "expected \"prompt\" and label columns (or \"label\" and \"text\")");
			goto out;
		}
		int any = 0;
		for (size_t i = 0; i < N_OPENAI; i++) {
			json_t *v = json_object_get(o, openai_cols[i].col);
			if (v == NULL)
				continue;	/* the samples leave out columns nobody labelled */
			any = 1;
			if (!json_is_integer(v) || (json_integer_value(v) != 0 && json_integer_value(v) != 1)) {
				err_set(e, "%s: expected 0 or 1", openai_cols[i].col);
				goto out;
			}
			if (json_integer_value(v) == 1) {
				it->label = 1;
				if (add_cat(it, openai_cols[i].col, strlen(openai_cols[i].col)) == -1) {
					err_set(e, "out of memory");
					goto out;
				}
			}
		}
		if (!any) {
			err_set(e, "no label column (S, H, V, HR, SH, S3, H2, V2) and no \"label\"");
			goto out;
		}
		if (conv_simple(&it->cv, json_string_value(prompt), json_string_length(prompt), NULL, 0,
		    e) == -1)
			goto out;
	}
	if (s->kind == NULL)
		s->kind = kind;
	else if (strcmp(s->kind, kind) != 0) {
		err_set(e, "a %s record in a %s set", kind, s->kind);
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static int
load_jsonl(const char *path, const struct buf *b, struct evalset *s, struct err *e)
{
	size_t cap = 0, pos = 0;
	long no = 0;

	while (pos < b->n) {
		const char *p = b->p + pos, *nl = memchr(p, '\n', b->n - pos);
		size_t len = nl ? (size_t)(nl - p) : b->n - pos;
		pos += len + (nl != NULL);
		no++;
		size_t t = len;
		while (t > 0 && (p[t - 1] == '\r' || p[t - 1] == ' ' || p[t - 1] == '\t'))
			t--;
		if (t == 0)
			continue;	/* blank lines are no items */
		struct eitem *it;
		if (add_item(s, &cap, &it) == -1)
			return err_set(e, "%s: out of memory", path);
		it->no = no;
		if (jsonl_item(s, it, p, t, e) == -1) {
			item_free(it);
			return err_prefix(e, "%s:%ld", path, no);
		}
		sha256_hex(p, t, it->key);
		s->n++;
	}
	return 0;
}

/* One CSV record from *pos into fields (NUL-terminated copies in f); counts lines. */
static int
csv_record(const struct buf *b, size_t *pos, long *line, struct buf f[], int max, int *nf,
    struct err *e)
{
	size_t i = *pos;
	int n = 0;

	for (;;) {
		if (n == max)
			return err_set(e, "more than %d fields", max);
		f[n].n = 0;
		buf_add(&f[n], "", 0);
		if (i < b->n && b->p[i] == '"') {
			long start = *line;
			i++;
			for (;;) {
				if (i >= b->n)
					return err_set(e, "the quoted field opened on line %ld never closes", start);
				if (b->p[i] == '"') {
					if (i + 1 < b->n && b->p[i + 1] == '"') {
						buf_add(&f[n], "\"", 1);
						i += 2;
						continue;
					}
					i++;
					break;
				}
				if (b->p[i] == '\n')
					(*line)++;
				buf_add(&f[n], b->p + i, 1);
				i++;
			}
			if (i < b->n && b->p[i] != ',' && b->p[i] != '\n' && b->p[i] != '\r')
				return err_set(e, "text after a closing quote");
		} else {
			size_t a = i;
			while (i < b->n && b->p[i] != ',' && b->p[i] != '\n' && b->p[i] != '\r') {
				if (b->p[i] == '"')
					return err_set(e, "a quote inside an unquoted field");
				i++;
			}
			buf_add(&f[n], b->p + a, i - a);
		}
		n++;
		if (i < b->n && b->p[i] == ',') {
			i++;
			continue;
		}
		if (i < b->n && b->p[i] == '\r')
			i++;
		if (i < b->n && b->p[i] == '\n')
			i++;
		else if (i < b->n)
			return err_set(e, "a bare carriage return");
		(*line)++;
		break;
	}
	*pos = i;
	*nf = n;
	return 0;
}

#define CSV_MAX 32

static int
load_csv(const char *path, const struct buf *b, struct evalset *s, struct err *e)
{
	struct buf f[CSV_MAX];
	int nf, nh, c_prompt = -1, c_label = -1, c_type = -1, rc = -1;
	size_t pos = 0, cap = 0;
	long line = 1, start;

	memset(f, 0, sizeof(f));
	s->kind = "xstest";
	if (csv_record(b, &pos, &line, f, CSV_MAX, &nh, e) == -1) {
		err_prefix(e, "%s:1", path);
		goto out;
	}
	for (int i = 0; i < nh; i++) {
		if (strcmp(f[i].p, "prompt") == 0) c_prompt = i;
		else if (strcmp(f[i].p, "label") == 0) c_label = i;
		else if (strcmp(f[i].p, "type") == 0) c_type = i;
	}
	if (c_prompt < 0 || c_label < 0) {
		err_set(e, "%s:1: the header needs columns \"prompt\" and \"label\"", path);
		goto out;
	}
	while (pos < b->n) {
		start = line;
		size_t a = pos;
		if (csv_record(b, &pos, &line, f, CSV_MAX, &nf, e) == -1) {
			err_prefix(e, "%s:%ld", path, start);
			goto out;
		}
		if (nf == 1 && f[0].n == 0)
			continue;	/* a blank line */
		if (nf != nh) {
			err_set(e, "%s:%ld: %d fields, the header has %d", path, start, nf, nh);
			goto out;
		}
		struct eitem *it;
		if (add_item(s, &cap, &it) == -1) {
			err_set(e, "%s: out of memory", path);
			goto out;
		}
		it->no = start;
		const char *l = f[c_label].p;
		if (strcmp(l, "safe") != 0 && strcmp(l, "unsafe") != 0) {
			err_set(e, "%s:%ld: label: expected safe or unsafe, not \"%.40s\"", path, start, l);
			goto out;
		}
		it->label = strcmp(l, "unsafe") == 0;
		if (utf8_valid_prefix(f[c_prompt].p, f[c_prompt].n) != f[c_prompt].n) {
			err_set(e, "%s:%ld: prompt: invalid UTF-8", path, start);
			goto out;
		}
		if ((c_type >= 0 && f[c_type].n > 0 && add_cat(it, f[c_type].p, f[c_type].n) == -1) ||
		    conv_simple(&it->cv, f[c_prompt].p, f[c_prompt].n, NULL, 0, e) == -1) {
			item_free(it);
			err_prefix(e, "%s:%ld: prompt", path, start);
			goto out;
		}
		sha256_hex(b->p + a, pos - a, it->key);
		s->n++;
	}
	rc = 0;
out:
	for (int i = 0; i < CSV_MAX; i++)
		buf_free(&f[i]);
	return rc;
}

int
evalset_load(const char *path, struct evalset *s, struct err *e)
{
	struct buf b = { 0 };
	size_t pl = strlen(path);
	int rc;

	memset(s, 0, sizeof(*s));
	if (read_all(path, &b, e) == -1)
		return -1;
	rc = evalset_parse(path, pl >= 4 && strcmp(path + pl - 4, ".csv") == 0, &b, s, e);
	buf_free(&b);
	return rc;
}

int
evalset_parse(const char *name, int csv, const struct buf *b, struct evalset *s, struct err *e)
{
	int rc;

	memset(s, 0, sizeof(*s));
	if (b->n == 0)
		return err_set(e, "%s: empty", name);
	rc = csv ? load_csv(name, b, s, e) : load_jsonl(name, b, s, e);
	if (rc == 0 && s->n == 0)
		rc = err_set(e, "%s: no items", name);
	if (rc == -1)
		evalset_free(s);
	return rc;
}

void
evalset_free(struct evalset *s)
{
	for (size_t i = 0; i < s->n; i++)
		item_free(&s->it[i]);
	free(s->it);
	memset(s, 0, sizeof(*s));
}
