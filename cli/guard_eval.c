/* guard_eval.c - guard eval: runs a labelled set through the classifier under a policy, in
 * batches, keeping each verdict in --out as it goes (a rerun skips the items already there),
 * and reports precision, recall, F1, FPR, AUPRC, the threshold for a target FPR, per-category
 * counts and latency; guard eval --scores computes the same metrics from "label score"
 * lines. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "cli/cli.h"
#include "cli/guard_eval.h"
#include "cli/svgplot.h"
#include "core/model.h"
#include "policy/policy.h"

#define EVAL_USAGE "guard eval -m model [--policy file] [--out file] [--fpr rate] [--json] " \
	"[--plot file.svg] [--batch n] [-t threads] set\n" \
	"       guard eval --scores file [--threshold t] [--fpr rate] [--json] [--plot file.svg]"

struct eopts {
	const char *model, *policy, *out, *plot, *scores;
	int json;
	double fpr, threshold;
	long batch, threads;
};

static int
usage(void)
{
	fprintf(stderr, "usage: %s\n", EVAL_USAGE);
	return EXIT_USAGE;
}

static int
parse_double(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !(*out >= 0.0 && *out <= 1.0)) {
		warnx_("%s: '%s' is not a number in [0, 1]", opt, s);
		return -1;
	}
	return 0;
}

/* --scores: "LABEL SCORE" per line, LABEL 0/1 or safe/unsafe; flagged is SCORE >= t */
static int
read_scores(const char *path, double t, struct mitem **out, size_t *n)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, nn = 0, ic = 0;
	struct mitem *it = NULL;
	long no = 0;
	int rc = -1;

	if (f == NULL) {
		warnx_("%s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		char lab[16], extra;
		double s;
		no++;
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%15s %lf %c", lab, &s, &extra) != 2 || !isfinite(s)) {
			warnx_("%s:%ld: expected a label and a score", path, no);
			goto out;
		}
		int l = strcmp(lab, "1") == 0 || strcmp(lab, "unsafe") == 0 ? 1 :
		    strcmp(lab, "0") == 0 || strcmp(lab, "safe") == 0 ? 0 : -1;
		if (l < 0) {
			warnx_("%s:%ld: label '%s' is not 0, 1, safe or unsafe", path, no, lab);
			goto out;
		}
		if (nn == ic) {
			ic = ic ? ic * 2 : 256;
			struct mitem *ni = realloc(it, ic * sizeof(*it));
			if (ni == NULL) {
				warnx_("out of memory");
				goto out;
			}
			it = ni;
		}
		it[nn].label = l;
		it[nn].score = s;
		it[nn].pred = s >= t;
		nn++;
	}
	if (ferror(f)) {
		warnx_("%s: read error", path);
		goto out;
	}
	if (nn == 0) {
		warnx_("%s: no scores", path);
		goto out;
	}
	rc = 0;
out:
	if (f != stdin)
		fclose(f);
	free(line);
	if (rc == 0) {
		*out = it;
		*n = nn;
	} else
		free(it);
	return rc;
}

static int
emit(json_t *r, const struct eopts *o, const struct mcurve *c, const struct mitem *it, size_t n,
    const char *title)
{
	struct err e;

	if (o->plot && svgplot_write(o->plot, title, c, it, n, &e) == -1) {
		warnx_("--plot: %s", e.msg);
		return EXIT_BAD;
	}
	if (o->json) {
		char *s = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17));
		printf("%s\n", s);
		free(s);
	} else
		eval_print_text(r, stdout);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
}

static int
eval_scores(const struct eopts *o)
{
	struct mitem *it;
	struct mcurve c;
	size_t n;

	if (read_scores(o->scores, o->threshold, &it, &n) == -1)
		return EXIT_BAD;
	json_t *r = eval_metrics_json(it, n, o->fpr, &c);
	if (r == NULL) {
		free(it);
		warnx_("out of memory");
		return EXIT_BAD;
	}
	json_object_set_new(r, "items", json_integer((json_int_t)n));
	json_object_set_new(r, "threshold", json_real(o->threshold));
	int rc = emit(r, o, &c, it, n, o->scores);
	json_decref(r);
	metrics_curve_free(&c);
	free(it);
	return rc;
}

/* --- resume --------------------------------------------------------------------------- */

static long
find_item(const struct evalset *s, long no)
{
	size_t a = 0, b = s->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (s->it[m].no < no)
			a = m + 1;
		else
			b = m;
	}
	return a < s->n && s->it[a].no == no ? (long)a : -1;
}

/* Reads the verdicts an earlier run kept, checks they belong to this set, model and policy,
 * cuts off a last line a kill left unfinished, and opens the file for appending. */
static FILE *
resume(const char *path, const struct evalset *s, const char *model, const char *phash,
    json_t **v, long *done)
{
	FILE *f = fopen(path, "r+");
	char *line = NULL;
	size_t cap = 0;
	long no = 0, good = 0;
	ssize_t r;

	*done = 0;
	if (f == NULL && errno == ENOENT)
		return fopen(path, "w");
	if (f == NULL) {
		warnx_("--out %s: %s", path, strerror(errno));
		return NULL;
	}
	while ((r = getline(&line, &cap, f)) >= 0) {
		no++;
		if (r == 0 || line[r - 1] != '\n')
			break;	/* cut short by a kill: done again */
		json_error_t je;
		json_t *o = json_loadb(line, (size_t)r, 0, &je);
		json_t *vd = json_object_get(o, "verdict");
		long k = find_item(s, (long)json_integer_value(json_object_get(o, "item")));
		const char *key = json_string_value(json_object_get(o, "key"));
		const char *msg = NULL;
		if (o == NULL)
			msg = je.text;
		else if (!json_is_object(vd) || key == NULL)
			msg = "expected {\"item\", \"key\", \"verdict\"}";
		else if (k < 0 || strcmp(key, s->it[k].key) != 0)
			msg = "not an item of this set (another set, or it changed?)";
		else if (v[k] != NULL)
			msg = "a second verdict for one item";
		else if (!json_is_string(json_object_get(vd, "policy_hash")) ||
		    strcmp(json_string_value(json_object_get(vd, "policy_hash")), phash) != 0)
			msg = "made under another policy (use a new --out)";
		else if (!json_is_string(json_object_get(vd, "model")) ||
		    strcmp(json_string_value(json_object_get(vd, "model")), model) != 0)
			msg = "made with another model (use a new --out)";
		if (msg) {
			warnx_("--out %s:%ld: %s", path, no, msg);
			json_decref(o);
			free(line);
			fclose(f);
			return NULL;
		}
		v[k] = json_incref(vd);
		json_decref(o);
		good = ftell(f);
		(*done)++;
	}
	free(line);
	if (ftruncate(fileno(f), good) == -1 || fseek(f, good, SEEK_SET) == -1) {
		warnx_("--out %s: %s", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	return f;
}

/* --- the run -------------------------------------------------------------------------- */

static int
run(const struct eopts *o, const char *set_path)
{
	struct evalset s;
	struct err e;
	struct policy *p = NULL;
	struct model *m = NULL;
	struct classifier *c = NULL;
	json_t **v = NULL;
	FILE *out = NULL;
	long done = 0, ran = 0;
	int rc = EXIT_BAD;

	if (evalset_load(set_path, &s, &e) == -1) {
		warnx_("%s", e.msg);
		return EXIT_BAD;
	}
	if ((p = o->policy ? policy_load(o->policy, &e) : policy_default()) == NULL) {
		warnx_("%s", e.msg);
		goto out;
	}
	if ((m = open_model(o->model)) == NULL)
		goto out;
	if ((v = calloc(s.n, sizeof(*v))) == NULL) {
		warnx_("out of memory");
		goto out;
	}
	if (o->out && (out = resume(o->out, &s, model_hash(m), policy_hash(p), v, &done)) == NULL)
		goto out;
	if (o->out && done > 0)
		fprintf(stderr, "guard eval: %ld of %zu items already in %s\n", done, s.n, o->out);
	double t0 = now_s(), last = t0;
	int tty = isatty(2);
	if ((size_t)done < s.n && (c = new_classifier(m, p, o->threads, o->batch)) == NULL)
		goto out;
	size_t i = 0;
	while (i < s.n) {
		const struct conv *convs[64];
		size_t idx[64], k = 0;
		struct verdict vs[64];
		for (; i < s.n && k < (size_t)o->batch; i++)
			if (v[i] == NULL) {
				idx[k] = i;
				convs[k++] = &s.it[i].cv;
			}
		if (k == 0)
			break;
		classifier_run(c, 0, convs, k, vs);
		for (size_t j = 0; j < k; j++) {
			v[idx[j]] = verdict_to_json(&vs[j], p, model_hash(m));
			verdict_free(&vs[j]);
			if (out) {
				json_t *rec = json_pack("{s:I, s:s, s:s, s:O}", "item", (json_int_t)s.it[idx[j]].no,
				    "key", s.it[idx[j]].key, "label", s.it[idx[j]].label ? "unsafe" : "safe",
				    "verdict", v[idx[j]]);
				char *txt = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(17));
				fprintf(out, "%s\n", txt);
				free(txt);
				json_decref(rec);
			}
		}
		ran += (long)k;
		/* whole batches reach the file: a kill loses at most the batch in flight */
		if (out && fflush(out) != 0) {
			warnx_("--out %s: %s", o->out, strerror(errno));
			goto out;
		}
		if (tty && now_s() - last >= 0.5) {
			last = now_s();
			fprintf(stderr, "\rguard eval: %ld/%zu items, %.1f items/s ", done + ran, s.n,
			    ran / (last - t0));
		}
	}
	double secs = now_s() - t0;
	fprintf(stderr, "%sguard eval: %zu items (%ld this run, %.2f s)\n", tty ? "\r" : "", s.n, ran,
	    secs);

	/* the metrics over the items with a verdict; errors are counted apart */
	struct mitem *it = calloc(s.n, sizeof(*it));
	double *lat = calloc(s.n, sizeof(*lat));
	size_t n = 0, nl = 0;
	if (it == NULL || lat == NULL) {
		free(it);
		free(lat);
		warnx_("out of memory");
		goto out;
	}
	long errors = 0, unsafe = 0;
	for (size_t j = 0; j < s.n; j++) {
		const char *d = json_string_value(json_object_get(v[j], "decision"));
		json_t *sc = json_object_get(v[j], "unsafe_score");
		unsafe += s.it[j].label;
		if (d == NULL || strcmp(d, "error") == 0 || !json_is_number(sc)) {
			errors++;
			continue;
		}
		it[n].label = s.it[j].label;
		it[n].pred = json_is_true(json_object_get(v[j], "flagged"));
		it[n].score = json_number_value(sc);
		n++;
		json_t *tt = json_object_get(json_object_get(v[j], "timings"), "total");
		if (json_is_number(tt))
			lat[nl++] = json_number_value(tt);
	}
	struct mcurve cv;
	json_t *r = eval_metrics_json(it, n, o->fpr, &cv);
	if (r == NULL) {
		free(it);
		free(lat);
		warnx_("out of memory");
		goto out;
	}
	json_object_set_new(r, "set", json_string(set_path));
	json_object_set_new(r, "kind", json_string(s.kind));
	json_object_set_new(r, "items", json_integer((json_int_t)s.n));
	json_object_set_new(r, "unsafe", json_integer(unsafe));
	json_object_set_new(r, "evaluated", json_integer((json_int_t)n));
	json_object_set_new(r, "errors", json_integer(errors));
	json_object_set_new(r, "resumed", json_integer(done));
	json_object_set_new(r, "model", json_string(model_hash(m)));
	json_object_set_new(r, "policy", json_string(policy_name(p)));
	json_object_set_new(r, "policy_hash", json_string(policy_hash(p)));
	double p50 = metrics_percentile(lat, nl, 50), p95 = metrics_percentile(lat, nl, 95);
	json_object_set_new(r, "latency_ms", json_pack("{s:o, s:o}", "p50",
	    isfinite(p50) ? json_real(p50) : json_null(), "p95", isfinite(p95) ? json_real(p95) : json_null()));
	json_object_set_new(r, "categories", eval_categories_json(&s, v));
	rc = emit(r, o, &cv, it, n, set_path);
	json_decref(r);
	metrics_curve_free(&cv);
	free(it);
	free(lat);
out:
	if (out && fclose(out) != 0 && rc == EXIT_OK) {
		warnx_("--out %s: %s", o->out, strerror(errno));
		rc = EXIT_BAD;
	}
	for (size_t j = 0; v && j < s.n; j++)
		json_decref(v[j]);
	free(v);
	classifier_free(c);
	model_close(m);
	policy_free(p);
	evalset_free(&s);
	return rc;
}

int
cmd_eval(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "policy", required_argument, NULL, 'P' },
		{ "out", required_argument, NULL, 'o' }, { "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' }, { "fpr", required_argument, NULL, 'f' },
		{ "scores", required_argument, NULL, 's' }, { "threshold", required_argument, NULL, 'T' },
		{ "batch", required_argument, NULL, 'b' }, { "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct eopts o = { .fpr = 0.05, .threshold = 0.5, .batch = 4 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:t:o:h", lo, NULL)) != -1)
		switch (c) {
		case 'm': o.model = optarg; break;
		case 'P': o.policy = optarg; break;
		case 'o': o.out = optarg; break;
		case 'j': o.json = 1; break;
		case 'p': o.plot = optarg; break;
		case 's': o.scores = optarg; break;
		case 'f': if (parse_double("--fpr", optarg, &o.fpr)) return EXIT_USAGE; break;
		case 'T': if (parse_double("--threshold", optarg, &o.threshold)) return EXIT_USAGE; break;
		case 'b': if (parse_int("--batch", optarg, 1, 64, &o.batch)) return EXIT_USAGE; break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &o.threads)) return EXIT_USAGE; break;
		case 'h': usage(); return EXIT_OK;
		default: return usage();
		}
	if (o.scores)
		return optind == argc && !o.model && !o.out ? eval_scores(&o) : usage();
	if (optind != argc - 1 || o.model == NULL)
		return usage();
	return run(&o, argv[optind]);
}
