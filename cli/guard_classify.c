/* guard_classify.c - guard prompt, classify and filter: Llama Guard verdicts in-process. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "cli/cli.h"
#include "core/model.h"
#include "core/tok.h"
#include "policy/policy.h"

#include "cli/guard_cli.h"

static int
parse_copts(int argc, char **argv, const char *cmd, struct copts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "policy", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' }, { "ids", no_argument, NULL, 'i' },
		{ "annotate", no_argument, NULL, 'a' }, { "emit", required_argument, NULL, 'e' },
		{ "exit-zero", no_argument, NULL, 'z' }, { "threads", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' }, { "ctx", required_argument, NULL, 'c' },
		{ "no-cache", no_argument, NULL, 'N' }, { "socket", required_argument, NULL, 'S' },
		{ "image", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->batch = 4;
	o->n_ctx = 2048;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:t:h", lo, NULL)) != -1)
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'P': o->policy = optarg; break;
		case 'j': o->json = 1; break;
		case 'i': o->ids = 1; break;
		case 'a': o->annotate = 1; break;
		case 'e':
			if (strcmp(optarg, "safe") != 0 && strcmp(optarg, "unsafe") != 0) {
				warnx_("--emit: '%s' is not safe or unsafe", optarg);
				return -1;
			}
			o->emit = optarg;
			break;
		case 'z': o->exit_zero = 1; break;
		case 'N': o->no_cache = 1; break;
		case 'S': o->socket = optarg; break;
		case 'I':
			if (strcmp(cmd, "classify") != 0 || o->image != NULL) {
				warnx_("--image: one image, for classify");
				return -1;
			}
			o->image = optarg;
			break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &o->threads)) return -1; break;
		case 'b': if (parse_int("--batch", optarg, 1, 64, &o->batch)) return -1; break;
		case 'c': if (parse_int("--ctx", optarg, 256, 1 << 20, &o->n_ctx)) return -1; break;
		default: return -1;
		}
	(void)cmd;
	return 0;
}

static struct policy *
load_policy(const char *path)
{
	struct err e;
	struct policy *p = path ? policy_load(path, &e) : policy_default();

	if (p == NULL)
		warnx_("%s", e.msg);
	return p;
}

int
cmd_prompt(int argc, char **argv)
{
	struct copts o;
	struct conv cv;
	struct err e;
	struct buf text = { 0 };
	struct tokvec ids = { 0 };
	struct model *m = NULL;
	enum role role;
	size_t len;
	int rc = EXIT_BAD;

	if (prompt_wants_chat(argc, argv))
		return cmd_prompt_chat(argc, argv);
	if (parse_copts(argc, argv, "prompt", &o) == -1 || optind != argc || (o.ids && !o.model))
		return usage_of("prompt");
	struct policy *p = load_policy(o.policy);
	if (p == NULL)
		return EXIT_BAD;
	char *in = read_stdin(&len);
	if (in == NULL)
		goto out;
	if (conv_parse(&cv, in, len, &e) == -1) {
		warnx_("stdin: %s", e.msg);
		free(in);
		goto out;
	}
	free(in);
	if (o.model && (m = open_model(o.model)) == NULL)
		goto out_conv;
	const struct tok *t = m ? model_tok(m) : NULL;
	if (m && t == NULL) {
		warnx_("%s: the model has no tokenizer", o.model);
		goto out_conv;
	}
	/* the role decides the prefix: build the body first */
	struct buf btext = { 0 };
	struct tokvec bids = { 0 };
	if (prompt_body(&cv, t, &btext, &bids, &role, &e) == -1 ||
	    prompt_prefix(p, role, t, &text, &ids, &e) == -1) {
		warnx_("%s", e.msg);
		buf_free(&btext);
		tokvec_free(&bids);
		goto out_conv;
	}
	buf_add(&text, btext.p, btext.n);
	tokvec_append(&ids, bids.v, bids.n);
	buf_free(&btext);
	tokvec_free(&bids);
	if (o.ids) {
		for (size_t i = 0; i < ids.n; i++)
			printf("%s%d", i ? " " : "", ids.v[i]);
		printf("\n");
	} else
		fwrite(text.p, 1, text.n, stdout);
	rc = EXIT_OK;
out_conv:
	conv_free(&cv);
out:
	buf_free(&text);
	tokvec_free(&ids);
	model_close(m);
	policy_free(p);
	return rc;
}

static struct classifier *
open_classifier(const struct copts *o, struct model **mp, struct policy **pp)
{
	struct classifier_params cp = classifier_params_default();
	struct err e;
	struct classifier *c;

	if ((*pp = load_policy(o->policy)) == NULL)
		return NULL;
	if ((*mp = open_model(o->model)) == NULL) {
		policy_free(*pp);
		return NULL;
	}
	cp.n_threads = (int)o->threads;
	cp.max_batch = (int)o->batch;
	cp.n_ctx = (int)o->n_ctx;
	cp.prefix_cache = !o->no_cache;
	if ((c = classifier_new(*mp, &cp, &e)) == NULL || classifier_add_policy(c, *pp, &e) == -1) {
		warnx_("%s", e.msg);
		classifier_free(c);
		c = NULL;
		model_close(*mp);
		policy_free(*pp);
	}
	return c;
}

int
verdict_status(const json_t *v)
{
	const char *d = json_string_value(json_object_get(v, "decision"));

	if (d == NULL || strcmp(d, "error") == 0)
		return ST_ERROR;
	return json_is_true(json_object_get(v, "flagged")) ? ST_FLAGGED : ST_ALLOW;
}

void
verdict_print(const json_t *v, int as_json)
{
	if (as_json) {
		char *s = json_dumps(v, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		return;
	}
	const char *d = json_string_value(json_object_get(v, "decision"));
	json_t *x;
	size_t i;
	printf("%s%s\n", d ? d : "?", json_is_true(json_object_get(v, "flagged")) ? " (flagged)" : "");
	printf("role: %s\n", json_string_value(json_object_get(v, "role")));
	if (json_is_number(json_object_get(v, "unsafe_score")))
		printf("unsafe_score: %.4f\n", json_number_value(json_object_get(v, "unsafe_score")));
	json_array_foreach(json_object_get(v, "categories"), i, x)
		printf("category: %s\n", json_string_value(x));
	if (json_is_true(json_object_get(v, "structure_spoof"))) {
		printf("structure_spoof:");
		json_array_foreach(json_object_get(v, "spoof_reasons"), i, x)
			printf(" \"%s\"", json_string_value(x));
		printf("\n");
	}
	if (json_is_string(json_object_get(v, "error")))
		printf("error: %s\n", json_string_value(json_object_get(v, "error")));
}

int
cli_read_image(const char *path, struct conv_image *img)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		warnx_("--image %s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (n == 0 || n > (64L << 20) || (img->data = malloc((size_t)n)) == NULL ||
	    fread(img->data, 1, (size_t)n, f) != (size_t)n) {
		warnx_("--image %s: %s", path, n == 0 ? "an empty file" : n > (64L << 20) ?
		    "larger than 64 MiB" : "cannot read it");
		free(img->data);
		img->data = NULL;
		fclose(f);
		return -1;
	}
	fclose(f);
	img->len = (size_t)n;
	return 0;
}

int
cmd_classify(int argc, char **argv)
{
	struct copts o;
	struct conv cv;
	struct err e;
	struct model *m;
	struct policy *p;
	struct verdict v;

	if (parse_copts(argc, argv, "classify", &o) == -1 || argc - optind > 1 ||
	    (o.model == NULL) == (o.socket == NULL))
		return usage_of("classify");
	if (optind < argc) {
		if (conv_simple(&cv, argv[optind], strlen(argv[optind]), NULL, 0, &e) == -1) {
			warnx_("%s", e.msg);
			return ST_ERROR;
		}
	} else {
		size_t len;
		char *in = read_stdin(&len);
		if (in == NULL)
			return ST_ERROR;
		int rc = conv_parse(&cv, in, len, &e);
		free(in);
		if (rc == -1) {
			warnx_("stdin: %s", e.msg);
			return ST_ERROR;
		}
	}
	struct conv_image img = { 0 };
	if (o.image != NULL) {	/* an image part of the conversation's first message */
		if (cli_read_image(o.image, &img) == -1) {
			conv_free(&cv);
			return ST_ERROR;
		}
		cv.msg[0].n_images++;
		cv.img = &img;
		cv.n_img = 1;
	}
	if (o.socket) {	/* the image goes as a binary part of the request */
		int st = client_classify(o.socket, o.policy, &cv, o.json);
		conv_free(&cv);
		free(img.data);
		return st;
	}
	struct classifier *c = open_classifier(&o, &m, &p);
	if (c == NULL) {
		conv_free(&cv);
		free(img.data);
		return ST_ERROR;
	}
	const struct conv *list[1] = { &cv };
	classifier_run(c, 0, list, 1, &v);
	json_t *vj = verdict_to_json(&v, p, model_hash(m));
	verdict_print(vj, o.json);
	int st = verdict_status(vj);
	json_decref(vj);
	verdict_free(&v);
	conv_free(&cv);
	free(img.data);
	classifier_free(c);
	model_close(m);
	policy_free(p);
	return st;
}

/* --- filter --------------------------------------------------------------------------- */

void
line_parse(struct line *l)
{
	struct err e;
	json_error_t je;

	l->n_cv = 0;
	if (l->len > 0 && l->text[0] == '{') {
		json_t *o = json_loadb(l->text, l->len, JSON_REJECT_DUPLICATES, &je);
		if (o == NULL || !json_is_object(o)) {
			snprintf(l->err, sizeof(l->err), "JSON, column %d: %s", je.column,
			    o ? "not an object" : je.text);
			json_decref(o);
			return;
		}
		l->obj = o;
		json_t *pr = json_object_get(o, "prompt"), *rs = json_object_get(o, "response");
		json_t *tx = json_object_get(o, "text");
		int rc;
		if (json_object_get(o, "messages") != NULL)
			rc = conv_from_json(&l->cv[0], o, &e);
		else if (json_is_string(pr) && json_is_string(rs)) {
			rc = conv_simple(&l->cv[0], json_string_value(pr), json_string_length(pr), NULL, 0, &e);
			if (rc == 0)
				rc = conv_simple(&l->cv[1], json_string_value(pr), json_string_length(pr),
				    json_string_value(rs), json_string_length(rs), &e);
			l->pair = 1;
		} else if (json_is_string(pr))
			rc = conv_simple(&l->cv[0], json_string_value(pr), json_string_length(pr), NULL, 0, &e);
		else if (json_is_string(tx))
			rc = conv_simple(&l->cv[0], json_string_value(tx), json_string_length(tx), NULL, 0, &e);
		else {
			snprintf(l->err, sizeof(l->err), "expected \"messages\", \"prompt\" and \"response\", "
			    "or \"text\"");
			return;
		}
		if (rc == -1) {
			snprintf(l->err, sizeof(l->err), "%s", e.msg);
			if (l->pair)
				conv_free(&l->cv[0]);
			return;
		}
		l->n_cv = l->pair ? 2 : 1;
		return;
	}
	if (utf8_valid_prefix(l->text, l->len) != l->len) {
		snprintf(l->err, sizeof(l->err), "invalid UTF-8 at byte %zu",
		    utf8_valid_prefix(l->text, l->len));
		return;
	}
	if (conv_simple(&l->cv[0], l->text, l->len, NULL, 0, &e) == -1) {
		snprintf(l->err, sizeof(l->err), "%s", e.msg);
		return;
	}
	l->n_cv = 1;
}

static json_t *
error_verdict(const struct policy *p, long no, const char *msg)
{
	struct verdict v;

	memset(&v, 0, sizeof(v));
	v.unsafe_score = 0.0 / 0.0;
	verdict_fail(&v, p, "line %ld: %s", no, msg);
	return verdict_to_json(&v, p, "");
}

void
emit_line(struct line *l, const struct copts *o, const struct policy *p, struct tally *t)
{
	json_t *j = NULL;
	int flagged = 0, st = ST_ALLOW;
	const char *worst = "allow";
	static const char *const order[] = { "allow", "flag", "block", "error" };

	if (l->err[0]) {
		fprintf(stderr, "guard: stdin line %ld: %s\n", l->no, l->err);
		l->vj[0] = error_verdict(p, l->no, l->err);
		l->n_cv = 1;
		if (o->remote_hash) {
			json_object_set_new(l->vj[0], "policy", json_string(o->remote_policy));
			json_object_set_new(l->vj[0], "policy_hash", json_string(o->remote_hash));
			json_object_set_new(l->vj[0], "flagged", json_boolean(o->remote_flag_errors));
		}
	}
	for (int k = 0; k < l->n_cv; k++) {
		const char *d = json_string_value(json_object_get(l->vj[k], "decision"));
		flagged |= json_is_true(json_object_get(l->vj[k], "flagged"));
		if (verdict_status(l->vj[k]) > st)
			st = verdict_status(l->vj[k]);
		for (int a = 0; a < 4; a++)
			for (int b = 0; b < 4; b++)
				if (d && strcmp(d, order[a]) == 0 && strcmp(worst, order[b]) == 0 && a > b)
					worst = order[a];
	}
	t->lines++;
	if (strcmp(worst, "error") == 0) t->errors++;
	else if (strcmp(worst, "block") == 0) t->block++;
	else if (strcmp(worst, "flag") == 0) t->flag++;
	else t->allow++;
	if (st > t->status)
		t->status = st;
	if (o->emit) {
		if ((strcmp(o->emit, "unsafe") == 0) == (flagged != 0)) {
			fwrite(l->text, 1, l->len, stdout);
			fputc('\n', stdout);
		}
		return;
	}
	if (l->pair) {
		j = json_object();
		json_object_set(j, "request", l->vj[0]);
		json_object_set(j, "response", l->vj[1]);
		json_object_set_new(j, "flagged", json_boolean(flagged));
		json_object_set_new(j, "decision", json_string(worst));
	} else
		j = json_incref(l->vj[0]);
	if (o->annotate) {
		json_t *in = l->obj ? json_incref(l->obj) : json_object();
		if (l->obj == NULL) {
			json_t *tx = json_stringn(l->text, l->len);
			json_object_set_new(in, "text", tx ? tx : json_null());
		}
		json_object_set_new(in, "guard", j);
		j = in;
	} else
		json_object_set_new(j, "line", json_integer(l->no));
	char *s = json_dumps(j, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(j);
}

void
line_free(struct line *l)
{
	for (int k = 0; k < 2; k++) {
		conv_free(&l->cv[k]);
		json_decref(l->vj[k]);
	}
	json_decref(l->obj);
	free(l->text);
	memset(l, 0, sizeof(*l));
}

int
cmd_filter(int argc, char **argv)
{
	struct copts o;
	struct model *m;
	struct policy *p;
	struct tally t = { 0 };
	int batch;

	if (parse_copts(argc, argv, "filter", &o) == -1 || optind != argc ||
	    (o.model == NULL) == (o.socket == NULL))
		return usage_of("filter");
	if (o.socket) {
		struct policy *dp = policy_default();
		int st = client_filter(o.socket, o.policy, &o, dp);
		policy_free(dp);
		return st;
	}
	struct classifier *c = open_classifier(&o, &m, &p);
	if (c == NULL)
		return ST_ERROR;
	batch = classifier_max_batch(c);
	struct line *lines = calloc((size_t)batch, sizeof(*lines));
	/* a prompt/response line brings two conversations: room for one batch more */
	const struct conv **convs = calloc(2 * (size_t)batch, sizeof(*convs));
	struct verdict *vs = calloc(2 * (size_t)batch, sizeof(*vs));
	int tty = isatty(2);
	double t0 = now_s(), last = t0;
	long no = 0;
	char *buf = NULL;
	size_t cap = 0;
	int eof = 0;

	while (!eof) {
		int nl = 0, nconv = 0;
		/* gather lines until their conversations fill a batch */
		while (nl < batch && nconv < batch) {
			ssize_t r = getline(&buf, &cap, stdin);
			if (r < 0) {
				eof = 1;
				break;
			}
			struct line *l = &lines[nl];
			if (r > 0 && buf[r - 1] == '\n')
				r--;
			if (r > 0 && buf[r - 1] == '\r')
				r--;
			l->no = ++no;
			l->text = malloc((size_t)r + 1);
			memcpy(l->text, buf, (size_t)r);
			l->text[r] = '\0';
			l->len = (size_t)r;
			line_parse(l);
			nconv += l->n_cv;
			nl++;
			if (nconv >= batch)
				break;
		}
		/* run in slices of the classifier's batch size, results back to their lines */
		int k = 0;
		for (int i = 0; i < nl; i++)
			for (int j = 0; j < lines[i].n_cv; j++)
				convs[k++] = &lines[i].cv[j];
		for (int s = 0; s < k; s += batch) {
			int cnt = k - s < batch ? k - s : batch;
			classifier_run(c, 0, convs + s, (size_t)cnt, vs + s);
		}
		k = 0;
		for (int i = 0; i < nl; i++) {
			for (int j = 0; j < lines[i].n_cv; j++, k++) {
				lines[i].vj[j] = verdict_to_json(&vs[k], p, model_hash(m));
				verdict_free(&vs[k]);
			}
			emit_line(&lines[i], &o, p, &t);
			line_free(&lines[i]);
		}
		fflush(stdout);
		if (tty && now_s() - last >= 1.0) {
			last = now_s();
			fprintf(stderr, "\rguard filter: %ld lines, %.1f lines/s ", t.lines,
			    t.lines / (last - t0));
		}
	}
	double el = now_s() - t0;
	fprintf(stderr, "%sguard filter: %ld lines: %ld allowed, %ld flagged, %ld blocked, %ld "
	    "errors in %.2f s (%.2f lines/s)\n", tty ? "\r" : "", t.lines, t.allow, t.flag, t.block,
	    t.errors, el, el > 0 ? t.lines / el : 0.0);
	free(buf);
	free(lines);
	free(convs);
	free(vs);
	classifier_free(c);
	model_close(m);
	policy_free(p);
	return o.exit_zero ? EXIT_OK : t.status;
}
