/* guard_replay_read.c - guard replay's reader: finds the verdicts in one log line, whatever
 * wrote it (guardd's verdict log: a classify verdict, or a chat's request_verdict and
 * response_verdict; guard filter's output: a verdict, or a prompt/response pair;
 * guard filter --annotate: the "guard" field; guard eval --out: "verdict"), and takes the
 * conversation from the line when the log kept it (log.content: full). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/guard_replay.h"
#include "util/buf.h"

void
replay_state(char *out, size_t cap, enum decision d, int flagged)
{
	if (d == DECISION_ERROR)
		snprintf(out, cap, "error(%s)", flagged ? "block" : "allow");
	else
		snprintf(out, cap, "%s", decision_name(d));
}

static int
decision_of(const char *s, enum decision *d)
{
	for (int k = DECISION_ALLOW; k <= DECISION_ERROR; k++)
		if (strcmp(s, decision_name((enum decision)k)) == 0) {
			*d = (enum decision)k;
			return 0;
		}
	return -1;
}

static int
codes_of(const json_t *a, char out[][8], int *n)
{
	json_t *x;
	size_t i;

	*n = 0;
	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, x) {
		const char *s = json_string_value(x);
		if (s == NULL || strlen(s) >= 8 || *n == VERDICT_MAX_CODES)
			return -1;
		strcpy(out[(*n)++], s);
	}
	return 0;
}

static void
snip(char *dst, size_t cap, const struct conv *cv)
{
	const struct conv_msg *m = &cv->msg[cv->n - 1];
	size_t k = 0;

	for (size_t p = 0; p < m->n_parts && k + 1 < cap; p++)
		for (size_t i = 0; i < m->part_len[p] && k + 1 < cap; i++) {
			unsigned char c = (unsigned char)m->parts[p][i];
			/* stop before a UTF-8 sequence that would not fit */
			if (c >= 0x80 && k + (size_t)utf8_len(c) + 1 > cap)
				goto done;
			dst[k++] = c == '\n' || c == '\t' ? ' ' : (char)c;
		}
done:
	dst[k] = '\0';
}

void
replay_snip(struct rec *x)
{
	snip(x->snippet, sizeof(x->snippet), &x->cv);
}

/* The logged conversation of a line (content: full: "messages" with each content a string
 * or an array of text parts), for slot 0, or with the chat's logged "response" for slot 1. */
static int
content_of(json_t *o, int slot, struct conv *cv)
{
	json_t *msgs = json_object_get(o, "messages"), *m;
	struct err e;
	size_t i;

	memset(cv, 0, sizeof(*cv));
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return -1;
	json_array_foreach(msgs, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));
		json_t *c = json_object_get(m, "content"), *part;
		size_t k;
		if (role == NULL || conv_add_msg(cv, &e) == -1)
			goto bad;
		cv->msg[cv->n - 1].assistant = strcmp(role, "assistant") == 0;
		if (json_is_string(c)) {
			if (conv_add_part(cv, json_string_value(c), json_string_length(c), &e) == -1)
				goto bad;
			continue;
		}
		if (!json_is_array(c))
			goto bad;
		json_array_foreach(c, k, part) {
			json_t *t = json_is_object(part) ? json_object_get(part, "text") : part;
			if (!json_is_string(t) ||
			    conv_add_part(cv, json_string_value(t), json_string_length(t), &e) == -1)
				goto bad;
		}
	}
	if (slot == 1) {
		json_t *resp = json_object_get(o, "response");
		if (!json_is_string(resp) || conv_add_msg(cv, &e) == -1)
			goto bad;
		cv->msg[cv->n - 1].assistant = 1;
		if (conv_add_part(cv, json_string_value(resp), json_string_length(resp), &e) == -1)
			goto bad;
	}
	if (conv_check(cv, &e) == -1)
		goto bad;
	return 0;
bad:
	conv_free(cv);
	return -1;
}

static int
add_rec(json_t *line_obj, const json_t *v, long line, int slot, struct rec **r, size_t *n,
    size_t *cap, char *msg, size_t msgcap)
{
	const char *role = json_string_value(json_object_get(v, "role"));
	const char *dec = json_string_value(json_object_get(v, "decision"));
	const json_t *sc = json_object_get(v, "unsafe_score");
	const char *raw = json_string_value(json_object_get(v, "raw"));
	enum decision d;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct rec *nr = realloc(*r, nc * sizeof(*nr));
		if (nr == NULL) {
			snprintf(msg, msgcap, "out of memory");
			return -1;
		}
		*r = nr;
		*cap = nc;
	}
	struct rec *x = &(*r)[*n];
	memset(x, 0, sizeof(*x));
	x->line = line;
	x->slot = slot;
	json_t *ln = json_object_get(line_obj, "line");
	x->in_line = json_is_integer(ln) && json_integer_value(ln) > 0 ? (long)json_integer_value(ln) : line;
	if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
		snprintf(msg, msgcap, "role: expected \"user\" or \"assistant\"");
		return -1;
	}
	x->role = strcmp(role, "assistant") == 0 ? ROLE_RESPONSE : ROLE_REQUEST;
	if (dec == NULL || decision_of(dec, &d) == -1) {
		snprintf(msg, msgcap, "decision: expected allow, flag, block or error");
		return -1;
	}
	replay_state(x->old_state, sizeof(x->old_state), d, json_is_true(json_object_get(v, "flagged")));
	if (sc != NULL && !json_is_null(sc) && !json_is_number(sc)) {
		snprintf(msg, msgcap, "unsafe_score: expected a number or null");
		return -1;
	}
	x->score = json_is_number(sc) ? json_number_value(sc) : NAN;
	if (raw == NULL || strlen(raw) >= sizeof(x->raw)) {
		snprintf(msg, msgcap, "raw: expected the model's answer, a string of at most %zu bytes",
		    sizeof(x->raw) - 1);
		return -1;
	}
	strcpy(x->raw, raw);
	const char *cs = json_string_value(json_object_get(line_obj, "content_sha256"));
	snprintf(x->csha, sizeof(x->csha), "%s", cs && slot == 0 ? cs : "");
	const char *ph = json_string_value(json_object_get(v, "policy_hash"));
	snprintf(x->phash, sizeof(x->phash), "%s", ph ? ph : "");
	x->spoof = json_is_true(json_object_get(v, "structure_spoof"));
	if (codes_of(json_object_get(v, "model_categories"), x->mc, &x->n_mc) == -1 ||
	    codes_of(json_object_get(v, "categories"), x->old_codes, &x->n_old) == -1) {
		snprintf(msg, msgcap, "categories, model_categories: expected arrays of at most %d codes",
		    VERDICT_MAX_CODES);
		return -1;
	}
	if (content_of(line_obj, slot, &x->cv) == 0) {
		x->have_cv = 1;
		replay_snip(x);
	}
	(*n)++;
	return 0;
}

int
replay_parse_line(json_t *o, long line, struct rec **r, size_t *n, size_t *cap, char *msg,
    size_t msgcap)
{
	json_t *g = json_object_get(o, "guard");
	json_t *rq = json_object_get(o, "request_verdict"), *rs = json_object_get(o, "response_verdict");
	json_t *pq = json_object_get(o, "request"), *ps = json_object_get(o, "response");
	json_t *ev = json_object_get(o, "verdict");

	if (json_is_object(g)) {
		/* --annotate: the input object with the filter's output under "guard" */
		pq = json_object_get(g, "request");
		ps = json_object_get(g, "response");
		if (json_is_object(pq) && json_is_object(ps))
			return add_rec(o, pq, line, 0, r, n, cap, msg, msgcap) == -1 ? -1 :
			    add_rec(o, ps, line, 1, r, n, cap, msg, msgcap);
		return add_rec(o, g, line, 0, r, n, cap, msg, msgcap);
	}
	if (json_is_object(rq)) {
		if (add_rec(o, rq, line, 0, r, n, cap, msg, msgcap) == -1)
			return -1;
		return json_is_object(rs) ? add_rec(o, rs, line, 1, r, n, cap, msg, msgcap) : 0;
	}
	if (json_is_object(pq) && json_is_object(ps))
		return add_rec(o, pq, line, 0, r, n, cap, msg, msgcap) == -1 ? -1 :
		    add_rec(o, ps, line, 1, r, n, cap, msg, msgcap);
	if (json_is_object(ev))
		return add_rec(o, ev, line, 0, r, n, cap, msg, msgcap);
	if (json_object_get(o, "decision") != NULL)
		return add_rec(o, o, line, 0, r, n, cap, msg, msgcap);
	snprintf(msg, msgcap, "no verdict (expected a guardd log line, guard filter or guard eval "
	    "--out output)");
	return -1;
}
