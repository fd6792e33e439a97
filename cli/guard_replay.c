/* guard_replay.c - guard replay: re-decides logged verdicts under a new policy and reports
 * what flips, per direction and category. When the new policy shows the model the same
 * prompt, the logged scores and the categories the model named decide (no model run); where
 * the prompt differs, or a lowered threshold reaches answers whose categories were never
 * read, the items are re-run with the model on their logged content (log.content: full) or
 * the original input (--input), and without either it refuses rather than guesses. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/classifier.h"
#include "cli/cli.h"
#include "cli/guard_cli.h"
#include "cli/guard_replay.h"
#include "cli/guard_tools.h"
#include "core/model.h"
#include "policy/policy.h"
#include "policy/policy_diff.h"
#include "util/sha256.h"

#define REPLAY_USAGE "guard replay --policy new.yaml [--policy-old old.yaml] [-m model] " \
	"[--input file] [--skip-other] [--json] [--examples n] [--batch n] [-t threads] log"

struct ropts {
	const char *log, *policy, *policy_old, *model, *input;
	int json, skip_other;
	long examples, batch, threads;
};

static int
usage(void)
{
	fprintf(stderr, "usage: %s\n", REPLAY_USAGE);
	return EXIT_USAGE;
}

static struct policy *
load(const char *path)
{
	struct err e;
	struct policy *p = path == NULL || strcmp(path, ":default") == 0 ? policy_default() :
	    policy_load(path, &e);

	if (p == NULL)
		warnx_("%s", e.msg);
	return p;
}

/* Decides a logged verdict from its score and codes under p. 1 when it cannot: the
 * classifier would read a forced category line (score at or above p's lowest threshold
 * after a "safe" answer) that the log does not have. */
static int
decide(const struct policy *p, const struct rec *x, char *state, size_t cap,
    char codes_out[][8], int *n_out)
{
	struct verdict v;
	char codes[VERDICT_MAX_CODES][8];
	int nc;

	memset(&v, 0, sizeof(v));
	v.role = x->role;
	v.unsafe_score = x->score;
	v.spoof = x->spoof;
	enum parse_result pr = verdict_parse(x->raw, codes, VERDICT_MAX_CODES, &nc);
	if (!isfinite(x->score))
		verdict_fail(&v, p, "no score");
	else if (x->n_mc > 0)
		verdict_decide(&v, p, PARSE_UNSAFE, (char (*)[8])x->mc, x->n_mc);
	else if (pr == PARSE_SAFE && x->score >= policy_min_threshold(p, x->role))
		return 1;
	else
		verdict_decide(&v, p, pr, codes, nc);
	replay_state(state, cap, v.decision, v.flagged);
	*n_out = v.n_codes;
	memcpy(codes_out, v.codes, sizeof(v.codes[0]) * (size_t)v.n_codes);
	return 0;
}

static int
read_log(const char *path, struct rec **r, size_t *n)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = NULL, msg[256];
	size_t cap = 0, rcap = 0;
	ssize_t len;
	long no = 0;
	int rc = -1;

	if (f == NULL) {
		warnx_("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&buf, &cap, f)) >= 0) {
		no++;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		json_error_t je;
		json_t *o = json_loadb(buf, (size_t)len, JSON_REJECT_DUPLICATES, &je);
		if (o == NULL || !json_is_object(o)) {
			warnx_("%s:%ld: column %d: %s", path, no, o ? 1 : je.column, o ? "not a JSON object" : je.text);
			json_decref(o);
			goto out;
		}
		int pr = replay_parse_line(o, no, r, n, &rcap, msg, sizeof(msg));
		json_decref(o);
		if (pr == -1) {
			warnx_("%s:%ld: %s", path, no, msg);
			goto out;
		}
	}
	if (ferror(f)) {
		warnx_("%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* the hash guardd's log keeps with log.content: sha256 (daemon/request.c) */
static void
conv_sha(const struct conv *cv, char out[65])
{
	json_t *msgs = json_array();

	for (size_t i = 0; i < cv->n; i++) {
		const struct conv_msg *m = &cv->msg[i];
		json_t *parts = json_array();
		for (size_t k = 0; k < m->n_parts; k++)
			json_array_append_new(parts, json_stringn(m->parts[k], m->part_len[k]));
		json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", m->assistant ? "assistant" :
		    "user", "content", parts));
	}
	char *txt = json_dumps(msgs, JSON_COMPACT);
	sha256_hex(txt, strlen(txt), out);
	free(txt);
	json_decref(msgs);
}

static int
by_in_line(const void *a, const void *b)
{
	const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;

	return x->in_line < y->in_line ? -1 : x->in_line > y->in_line ? 1 : 0;
}

/* Gives one record the conversation of its --input line (parsed in l). */
static int
take_input(const char *path, struct line *l, struct rec *x)
{
	if (l->err[0] || x->slot >= l->n_cv) {
		warnx_("--input %s:%ld: %s", path, l->no, l->err[0] ? l->err :
		    "no response here for the logged response verdict");
		return -1;
	}
	char h[65];
	conv_sha(&l->cv[x->slot], h);
	if (x->csha[0] && strcmp(h, x->csha) != 0) {
		warnx_("--input %s:%ld does not match the log's line %ld (content_sha256 differs): "
		    "not the input of this log, or not in its order", path, l->no, x->line);
		return -1;
	}
	enum role role = l->cv[x->slot].n % 2 == 0 ? ROLE_RESPONSE : ROLE_REQUEST;
	if (role != x->role) {
		warnx_("--input %s:%ld: its last message is not the logged verdict's role (log line "
		    "%ld)", path, l->no, x->line);
		return -1;
	}
	x->cv = l->cv[x->slot];
	memset(&l->cv[x->slot], 0, sizeof(l->cv[x->slot]));
	x->have_cv = 1;
	replay_snip(x);
	return 0;
}

/* The conversations of the records to re-run that the log did not keep, from --input: the
 * records sorted by input line, the input read once beside them. */
static int
from_input(const char *path, struct rec *r, size_t n)
{
	struct rec **want = malloc(n * sizeof(*want));
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, nw = 0, k = 0;
	ssize_t len;
	long no = 0;
	int rc = -1;

	if (f == NULL || want == NULL) {
		warnx_("--input %s: %s", path, f ? "out of memory" : strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (r[i].need_run && !r[i].have_cv)
			want[nw++] = &r[i];
	qsort(want, nw, sizeof(*want), by_in_line);
	while (k < nw && (len = getline(&buf, &cap, f)) >= 0) {
		no++;
		if (want[k]->in_line != no)
			continue;
		struct line l;
		memset(&l, 0, sizeof(l));
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		l.no = no;
		if ((l.text = strndup(buf, (size_t)len)) == NULL) {
			warnx_("out of memory");
			goto out;
		}
		l.len = (size_t)len;
		line_parse(&l);
		for (; k < nw && want[k]->in_line == no; k++)
			if (take_input(path, &l, want[k]) == -1) {
				line_free(&l);
				goto out;
			}
		line_free(&l);
	}
	rc = 0;
out:
	free(buf);
	free(want);
	if (f)
		fclose(f);
	return rc;
}

/* Re-runs the records that need it under the new policy. */
static int
rerun(const struct ropts *o, const struct policy *p, struct rec *r, size_t n)
{
	struct model *m = open_model(o->model);
	struct classifier *c = NULL;
	int rc = -1;

	if (m == NULL)
		return -1;
	if ((c = new_classifier(m, p, o->threads, o->batch)) == NULL)
		goto out;
	size_t i = 0;
	while (i < n) {
		const struct conv *convs[64];
		struct rec *xs[64];
		struct verdict vs[64];
		size_t k = 0;
		for (; i < n && k < (size_t)o->batch; i++)
			if (r[i].need_run) {
				xs[k] = &r[i];
				convs[k++] = &r[i].cv;
			}
		if (k == 0)
			break;
		classifier_run(c, 0, convs, k, vs);
		for (size_t j = 0; j < k; j++) {
			replay_state(xs[j]->new_state, sizeof(xs[j]->new_state), vs[j].decision, vs[j].flagged);
			xs[j]->n_new = vs[j].n_codes;
			memcpy(xs[j]->new_codes, vs[j].codes, sizeof(vs[j].codes[0]) * (size_t)vs[j].n_codes);
			xs[j]->score = vs[j].unsafe_score;
			verdict_free(&vs[j]);
		}
	}
	rc = 0;
out:
	classifier_free(c);
	model_close(m);
	return rc;
}

int
cmd_replay(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "policy", required_argument, NULL, 'P' }, { "policy-old", required_argument, NULL, 'O' },
		{ "model", required_argument, NULL, 'm' }, { "input", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' }, { "examples", required_argument, NULL, 'x' },
		{ "batch", required_argument, NULL, 'b' }, { "threads", required_argument, NULL, 't' },
		{ "skip-other", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct ropts o = { .examples = 3, .batch = 4 };
	struct policy *old = NULL, *nw = NULL;
	struct rec *r = NULL;
	size_t n = 0;
	long n_run = 0, flips = 0;
	int c, rc = ST_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:t:h", lo, NULL)) != -1)
		switch (c) {
		case 'P': o.policy = optarg; break;
		case 'O': o.policy_old = optarg; break;
		case 'm': o.model = optarg; break;
		case 'i': o.input = optarg; break;
		case 'j': o.json = 1; break;
		case 'S': o.skip_other = 1; break;
		case 'x': if (parse_int("--examples", optarg, 0, 1000, &o.examples)) return EXIT_USAGE; break;
		case 'b': if (parse_int("--batch", optarg, 1, 64, &o.batch)) return EXIT_USAGE; break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &o.threads)) return EXIT_USAGE; break;
		case 'h': usage(); return EXIT_OK;
		default: return usage();
		}
	if (optind != argc - 1 || o.policy == NULL)
		return usage();
	o.log = argv[optind];
	if ((nw = load(o.policy)) == NULL || (old = load(o.policy_old)) == NULL ||
	    read_log(o.log, &r, &n) == -1)
		goto out;
	if (o.skip_other) {
		/* a daemon with several policies logs them all: keep the old policy's verdicts */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strcmp(r[i].phash, policy_hash(old)) == 0)
				r[k++] = r[i];
			else
				conv_free(&r[i].cv);
		if (k < n)
			fprintf(stderr, "guard replay: %zu verdicts under other policies skipped\n", n - k);
		n = k;
	}
	if (n == 0) {
		warnx_("%s: no verdicts%s", o.log, o.skip_other ? " under the old policy" : "");
		goto out;
	}
	int same[2] = { policy_same_prompt(old, nw, ROLE_REQUEST), policy_same_prompt(old, nw, ROLE_RESPONSE) };
	long no_content = 0, first_missing = 0;
	const char *why = NULL;
	for (size_t i = 0; i < n; i++) {
		struct rec *x = &r[i];
		char st[24];
		char cd[VERDICT_MAX_CODES][8];
		int nc;
		if (strcmp(x->phash, policy_hash(old)) != 0) {
			warnx_("%s:%ld: decided under policy %.12s, not %s (%.12s): give --policy-old the "
			    "policy the log was made with (or --skip-other)", o.log, x->line, x->phash[0] ? x->phash : "(none)",
			    o.policy_old ? o.policy_old : "the built-in default", policy_hash(old));
			goto out;
		}
		if (!same[x->role]) {
			x->need_run = 1;
			why = "the new policy changes the prompt the model sees";
		} else {
			/* the log must follow from its own scores under the old policy */
			int need = decide(old, x, st, sizeof(st), cd, &nc);
			if ((need && strncmp(x->old_state, "error", 5) != 0) || (!need && strcmp(st, x->old_state) != 0)) {
				warnx_("%s:%ld: logged %s, but its scores give %s under the old policy: the "
				    "line was edited, or not made by this version", o.log, x->line, x->old_state,
				    need ? "a re-run" : st);
				goto out;
			}
			if (decide(nw, x, x->new_state, sizeof(x->new_state), x->new_codes, &x->n_new)) {
				x->need_run = 1;
				if (why == NULL)
					why = "a lowered threshold reaches answers whose categories were never read";
			}
		}
		n_run += x->need_run;
	}
	if (n_run > 0 && o.input)
		if (from_input(o.input, r, n) == -1)
			goto out;
	for (size_t i = 0; i < n; i++)
		if (r[i].need_run && !r[i].have_cv && no_content++ == 0)
			first_missing = r[i].line;
	if (n_run > 0) {
		fprintf(stderr, "guard replay: %ld of %zu verdicts must be re-run with the model: %s\n",
		    n_run, n, why);
		if (no_content > 0) {
			warnx_("refusing to guess: %ld of them have no content (first: %s line %ld); "
			    "log with log.content: full, or give the original input with --input FILE",
			    no_content, o.log, first_missing);
			goto out;
		}
		if (o.model == NULL) {
			warnx_("refusing to guess: re-running needs the model (-m MODEL)");
			goto out;
		}
		if (rerun(&o, nw, r, n) == -1)
			goto out;
	} else
		fprintf(stderr, "guard replay: the new policy changes only thresholds or actions for "
		    "these verdicts: the logged scores decide, the model is not run\n");
	json_t *j = replay_report(o.log, old, nw, r, n, n_run, &flips);
	if (o.json) {
		char *s = json_dumps(j, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else
		replay_print_text(j, o.examples);
	json_decref(j);
	rc = flips > 0 ? 1 : 0;
out:
	for (size_t i = 0; i < n; i++)
		conv_free(&r[i].cv);
	free(r);
	policy_free(old);
	policy_free(nw);
	return rc;
}
