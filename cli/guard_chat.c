/* guard_chat.c - guard chat: a chat answer from a generator, moderated by Llama Guard on both
 * sides. The options and the one-shot session are here, with the in-process pipeline: the
 * request is classified first; the answer is generated with its text held back, and every
 * check_every tokens (and at the end) the guard checks the whole answer so far; only text a
 * check allowed is written out, so a blocked answer never shows a byte of the window that
 * was blocked. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "classifier/verdict.h"
#include "cli/cli.h"
#include "cli/guard_chat.h"
#include "core/mllama.h"
#include "core/model.h"
#include "core/pool.h"
#include "generator/chat.h"
#include "generator/gen.h"
#include "policy/policy.h"
#include "proto/proto.h"
#include "util/err.h"

/* --- options ---------------------------------------------------------------------------- */

enum {
	O_GUARD = 256, O_POLICY, O_DATE, O_FORMAT, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REPEAT,
	O_SEED, O_STOP, O_CHECK, O_SYSTEM, O_JSON, O_SOCKET, O_CTX, O_IMAGE
};

static int
parse_num(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= min && v <= max)) {
		warnx_("%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* a sampling option in [min, max], and that it was given */
static int
set_float(const char *opt, const char *s, double min, double max, float *out, int *given)
{
	double d;

	if (parse_num(opt, s, min, max, &d))
		return -1;
	*out = (float)d;
	*given = 1;
	return 0;
}

/* -1 after a message */
static int
parse_chat_opts(int argc, char **argv, struct chat_cli_opts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "guard", required_argument, NULL, O_GUARD },
		{ "policy", required_argument, NULL, O_POLICY }, { "date", required_argument, NULL, O_DATE },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "max-tokens", required_argument, NULL, 'n' }, { "temp", required_argument, NULL, O_TEMP },
		{ "top-k", required_argument, NULL, O_TOPK }, { "top-p", required_argument, NULL, O_TOPP },
		{ "min-p", required_argument, NULL, O_MINP },
		{ "repeat-penalty", required_argument, NULL, O_REPEAT },
		{ "seed", required_argument, NULL, O_SEED }, { "stop", required_argument, NULL, O_STOP },
		{ "check-every", required_argument, NULL, O_CHECK },
		{ "system", required_argument, NULL, O_SYSTEM }, { "json", no_argument, NULL, O_JSON },
		{ "threads", required_argument, NULL, 't' }, { "socket", required_argument, NULL, O_SOCKET },
		{ "ctx", required_argument, NULL, O_CTX }, { "help", no_argument, NULL, 'h' },
		{ "image", required_argument, NULL, O_IMAGE },
		{ NULL, 0, NULL, 0 },
	};
	const char *local_only = NULL;
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->sp = sampler_params_default();
	o->max_tokens = 512;
	o->check_every = 16;
	o->n_ctx = 4096;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:n:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; local_only = "-m"; break;
		case O_GUARD: o->guard = optarg; local_only = "--guard"; break;
		case O_POLICY: o->policy = optarg; break;
		case O_DATE:
			if (strlen(optarg) == 0 || strlen(optarg) > 32 || strchr(optarg, '\n')) {
				warnx_("--date: '%s' is not a date like \"30 Nov 2026\"", optarg);
				return -1;
			}
			o->date = optarg;
			local_only = "--date";
			break;
		case O_FORMAT:
			if (chat_format_parse(optarg, &o->fmt) == -1) {
				warnx_("--format: '%s' is not llama3, llama3v, llama2 or auto", optarg);
				return -1;
			}
			local_only = "--format";
			break;
		case 'n':
			if (parse_int("-n", optarg, 0, 1 << 20, &o->max_tokens))
				return -1;
			o->set_max = 1;
			break;
		case O_TEMP:
			if (set_float("--temp", optarg, 0, 100, &o->sp.temperature, &o->set_temp))
				return -1;
			break;
		case O_TOPK:
			if (parse_int("--top-k", optarg, 0, 1 << 20, &v))
				return -1;
			o->sp.top_k = (int)v;
			o->set_top_k = 1;
			break;
		case O_TOPP:
			if (set_float("--top-p", optarg, 0, 1, &o->sp.top_p, &o->set_top_p))
				return -1;
			break;
		case O_MINP:
			if (set_float("--min-p", optarg, 0, 1, &o->sp.min_p, &o->set_min_p))
				return -1;
			break;
		case O_REPEAT:
			if (set_float("--repeat-penalty", optarg, 0, 100, &o->sp.repeat_penalty,
			    &o->set_repeat))
				return -1;
			break;
		case O_SEED:
			if (parse_int("--seed", optarg, 0, INT32_MAX, &v))
				return -1;
			o->sp.seed = (uint64_t)v;
			o->set_seed = 1;
			break;
		case O_STOP:
			if (o->n_stop == CHAT_MAX_STOP) {
				warnx_("--stop: at most %d stop strings", CHAT_MAX_STOP);
				return -1;
			}
			if (strlen(optarg) == 0 || strlen(optarg) > CHAT_MAX_STOP_LEN) {
				warnx_("--stop: '%s' is not 1 to %d bytes", optarg, CHAT_MAX_STOP_LEN);
				return -1;
			}
			o->stop[o->n_stop++] = optarg;
			break;
		case O_CHECK:
			if (parse_int("--check-every", optarg, 1, 4096, &o->check_every))
				return -1;
			local_only = "--check-every";
			break;
		case O_SYSTEM: o->system = optarg; break;
		case O_IMAGE:
			if (o->n_image == CHAT_MAX_IMAGES) {
				warnx_("--image: at most %d images", CHAT_MAX_IMAGES);
				return -1;
			}
			o->image[o->n_image++] = optarg;
			break;
		case O_JSON: o->json = 1; break;
		case 't':
			if (parse_int("-t", optarg, 0, 1024, &o->threads))
				return -1;
			local_only = "-t";
			break;
		case O_SOCKET: o->socket = optarg; break;
		case O_CTX:
			if (parse_int("--ctx", optarg, 256, 1 << 20, &o->n_ctx))
				return -1;
			local_only = "--ctx";
			break;
		default: return -1;
		}
	}
	if (o->socket && local_only) {
		warnx_("%s: not with --socket (guardd has its own models and settings)", local_only);
		return -1;
	}
	if (!o->socket && (o->model == NULL || o->guard == NULL)) {
		warnx_("chat needs -m GENERATOR and --guard LLAMA_GUARD, or --socket PATH");
		return -1;
	}
	if (argc - optind > 1) {
		warnx_("one message at most (quote it)");
		return -1;
	}
	return 0;
}

/* --- results ---------------------------------------------------------------------------- */

void
chat_result_free(struct chat_result *r)
{
	buf_free(&r->text);
	free(r->refusal);
	json_decref(r->request_verdict);
	json_decref(r->response_verdict);
	json_decref(r->raw);
	memset(r, 0, sizeof(*r));
}

json_t *
chat_result_json(const struct chat_result *r)
{
	if (r->raw)	/* guardd's own answer, as received */
		return json_incref(r->raw);
	json_t *o = json_object(), *u = json_object();
	json_t *t = json_stringn(r->text.p ? r->text.p : "", r->text.n);

	json_object_set_new(o, "text", t ? t : json_string(""));
	json_object_set_new(o, "finish_reason", json_string(r->finish ? r->finish : "stop"));
	if (r->refusal)
		json_object_set_new(o, "refusal", json_string(r->refusal));
	json_object_set(o, "request_verdict", r->request_verdict ? r->request_verdict : json_null());
	json_object_set(o, "response_verdict", r->response_verdict ? r->response_verdict : json_null());
	json_object_set_new(u, "prompt_tokens", json_integer(r->prompt_tokens));
	json_object_set_new(u, "completion_tokens", json_integer(r->completion_tokens));
	json_object_set_new(o, "usage", u);
	json_object_set_new(o, "checks", json_integer(r->checks));
	return o;
}

void
chat_print_end(const struct chat_result *r, int status, FILE *out)
{
	if (r->text.n > 0 && r->text.p[r->text.n - 1] != '\n')
		fputc('\n', out);
	if (status == CHAT_BLOCKED)
		fprintf(out, "%s\n", r->refusal ? r->refusal : "");
	fflush(out);
}

static void
summary_part(struct buf *b, const char *what, const json_t *v)
{
	const char *d = json_string_value(json_object_get(v, "decision"));
	json_t *s = json_object_get(v, "unsafe_score"), *x;
	size_t i;

	if (v == NULL || json_is_null(v)) {
		buf_printf(b, "%s -", what);
		return;
	}
	buf_printf(b, "%s %s", what, d ? d : "?");
	if (json_is_number(s))
		buf_printf(b, " %.2f", json_number_value(s));
	json_array_foreach(json_object_get(v, "categories"), i, x)
		buf_printf(b, "%s%s", i ? "," : " ", json_string_value(x) ? json_string_value(x) : "?");
}

void
chat_print_summary(const struct chat_result *r)
{
	struct buf b = { 0 };

	summary_part(&b, "request", r->request_verdict);
	buf_adds(&b, " | ");
	summary_part(&b, "response", r->response_verdict);
	buf_printf(&b, " | %ld tokens, %ld check%s", r->completion_tokens, r->checks,
	    r->checks == 1 ? "" : "s");
	fprintf(stderr, "[%s]\n", b.p ? b.p : "");
	buf_free(&b);
}

/* --- the in-process pipeline ------------------------------------------------------------ */

struct local {
	struct chat_backend b;
	const struct chat_cli_opts *o;
	struct model *gm, *lg;
	struct policy *p;
	struct pool *pool;
	struct classifier *c;
	struct generator *g;
	enum chat_format fmt;
	int32_t end[8];
	int n_end;
};

/* The guard's view of the chat (proto_chat_conv: its user and assistant turns; a system
 * message is the operator's instruction to the generator, not something a user said), with
 * the --image bytes for its image parts, and the answer so far as the assistant's message
 * unless answer is NULL. */
static int
guard_conv(const struct local *l, const struct chat *ch, const char *answer, size_t len,
    struct conv *cv, struct err *e)
{
	if (proto_chat_conv(ch, cv, e) == -1)
		return -1;
	cv->img = l->o->img;
	cv->n_img = chat_n_images(ch);
	if (answer == NULL)
		return 0;
	if (conv_add_msg(cv, e) == 0) {
		cv->msg[cv->n - 1].assistant = 1;
		if (conv_add_part(cv, answer, len, e) == 0)
			return 0;
	}
	conv_free(cv);
	return -1;
}

/* blocked: the policy's block action, or a failed check whose on_error blocks (said on
 * stderr, so a failure is not mistaken for a judgement) */
static int
blocks(const struct verdict *v, const char *what)
{
	if (v->decision == DECISION_ERROR)
		warnx_("the guard's check of the %s failed: %s (on_error: %s)", what, v->error,
		    v->flagged ? "block" : "let it through");
	return v->decision == DECISION_BLOCK || (v->decision == DECISION_ERROR && v->flagged);
}

/* the turn ends refused: content_filter, and the policy's refusal in place of an answer */
static void
refuse(const struct local *l, struct chat_result *r)
{
	r->finish = "content_filter";
	r->refusal = strdup(policy_refusal(l->p));
}

/* Keeps v, as JSON, in *into (replacing what was there) and frees it; 1 when it blocks the
 * what ("request", "answer"), the turn then refused */
static int
judge(const struct local *l, struct verdict *v, const char *what, json_t **into,
    struct chat_result *r)
{
	int blocked = blocks(v, what);

	json_decref(*into);
	*into = verdict_to_json(v, l->p, model_hash(l->lg));
	verdict_free(v);
	if (blocked)
		refuse(l, r);
	return blocked;
}

/* the generation, with the --image bytes for the prompt's <|image|> tokens */
static int
start(struct local *l, const struct tokvec *ids, size_t n_img, const struct gen_params *gp,
    struct err *e)
{
	struct gen_image img[CHAT_MAX_IMAGES];

	for (size_t i = 0; i < n_img && i < CHAT_MAX_IMAGES; i++)
		img[i] = (struct gen_image){ l->o->img[i].data, l->o->img[i].len };
	return generator_start_images(l->g, ids->v, ids->n, img,
	    n_img < CHAT_MAX_IMAGES ? n_img : CHAT_MAX_IMAGES, gp, e);
}

/* A check of the answer so far: on the stream, or whole with the images */
static int
check(struct local *l, const struct chat *ch, struct guard_stream *gs, const char *t,
    size_t len, struct verdict *v)
{
	struct conv cv;
	struct err e;

	if (gs != NULL) {
		const char *resp[1] = { t };
		size_t rlen[1] = { len };
		classifier_stream_check(l->c, &gs, resp, rlen, 1, v);
		return 0;
	}
	if (guard_conv(l, ch, t, len, &cv, &e) == -1) {
		warnx_("%s", e.msg);
		return -1;
	}
	const struct conv *list[1] = { &cv };
	classifier_run(l->c, 0, list, 1, v);
	conv_free(&cv);
	return 0;
}

static int
local_turn(struct chat_backend *b, const struct chat *ch, FILE *out, struct chat_result *r)
{
	struct local *l = (struct local *)b;
	struct conv cv = { 0 };
	struct tokvec ids = { 0 };
	struct guard_stream *gs = NULL;
	struct verdict v;
	struct err e;
	int slot = -1, st = CHAT_ERROR;

	memset(r, 0, sizeof(*r));
	r->finish = "stop";
	if (chat_render(ch, l->fmt, l->o->date, model_tok(l->gm), NULL, &ids, &e) == -1 ||
	    guard_conv(l, ch, NULL, 0, &cv, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	r->prompt_tokens = (long)ids.n;
	const struct conv *list[1] = { &cv };
	classifier_run(l->c, 0, list, 1, &v);
	if (judge(l, &v, "request", &r->request_verdict, r)) {
		st = CHAT_BLOCKED;
		goto out;
	}
	struct gen_params gp = {
		.sp = l->o->sp, .max_tokens = (int)l->o->max_tokens, .stop = l->o->stop,
		.n_stop = l->o->n_stop, .end = l->end, .n_end = l->n_end,
	};
	if (cv.n_img > 0 && model_image_token(l->lg) < 0) {
		/* fail closed: the answer to an image cannot be judged without it */
		warnx_("%s reads text only: an answer about an image cannot be checked (an image "
		    "needs Llama Guard 3 11B-Vision)", l->o->guard);
		refuse(l, r);
		st = CHAT_BLOCKED;
		goto out;
	}
	/* an image chat is checked whole each time (its positions after <|image|> depend on
	 * the image), a text one on a stream that re-evaluates only what is new */
	if ((cv.n_img == 0 && (gs = classifier_stream_open(l->c, 0, &cv, &e)) == NULL) ||
	    (slot = start(l, &ids, cv.n_img, &gp, &e)) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	size_t released = 0;
	long next = l->o->check_every;
	for (;;) {
		if (generator_step(l->g, &e) == -1) {
			warnx_("generation: %s", e.msg);
			goto out;
		}
		enum gen_finish f = generator_finish(l->g, slot);
		long n = generator_n_generated(l->g, slot);
		if (f == GEN_ERROR) {
			warnx_("generation failed after %ld tokens", n);
			goto out;
		}
		if (f == GEN_RUNNING && n < next)
			continue;
		while (next <= n)
			next += l->o->check_every;
		size_t len;
		const char *t = generator_text(l->g, slot, &len);
		if (len > released) {	/* new text: the guard judges all of it so far */
			if (check(l, ch, gs, t, len, &v) == -1)
				goto out;
			r->checks++;
			if (judge(l, &v, "answer", &r->response_verdict, r)) {
				st = CHAT_BLOCKED;
				goto out;
			}
			if (buf_add(&r->text, t + released, len - released) == -1) {
				warnx_("out of memory");
				goto out;
			}
			if (out) {
				fwrite(t + released, 1, len - released, out);
				fflush(out);
			}
			released = len;
		}
		if (f != GEN_RUNNING) {
			r->finish = f == GEN_LENGTH ? "length" : "stop";
			st = CHAT_ANSWERED;
			break;
		}
	}
out:
	if (slot >= 0) {
		r->completion_tokens = generator_n_generated(l->g, slot);
		generator_end(l->g, slot);
	}
	if (gs)
		classifier_stream_close(l->c, gs);
	conv_free(&cv);
	tokvec_free(&ids);
	return st;
}

static void
local_free(struct chat_backend *b)
{
	struct local *l = (struct local *)b;

	if (l == NULL)
		return;
	generator_free(l->g);
	classifier_free(l->c);
	pool_free(l->pool);
	policy_free(l->p);
	model_close(l->gm);
	model_close(l->lg);
	free(l);
}

struct chat_backend *
chat_local_new(const struct chat_cli_opts *o)
{
	struct local *l = calloc(1, sizeof(*l));
	struct err e;

	if (l == NULL) {
		warnx_("out of memory");
		return NULL;
	}
	l->b.turn = local_turn;
	l->b.free = local_free;
	l->o = o;
	if ((l->p = o->policy ? policy_load(o->policy, &e) : policy_default()) == NULL) {
		warnx_("%s", o->policy ? e.msg : "out of memory");
		goto fail;
	}
	if ((l->gm = open_model(o->model)) == NULL || (l->lg = open_model(o->guard)) == NULL)
		goto fail;
	const struct tok *t = model_tok(l->gm);
	if (t == NULL) {
		warnx_("%s: the generator has no tokenizer", o->model);
		goto fail;
	}
	l->fmt = o->fmt == CHAT_FMT_AUTO ? chat_format_of(t) : o->fmt;
	l->n_end = chat_end_tokens(t, l->fmt, l->end);
	/* the guard and the generator take turns: one set of threads serves both */
	if ((l->pool = pool_new(o->threads > 0 ? (int)o->threads : pool_default_threads())) == NULL) {
		warnx_("cannot start the worker threads");
		goto fail;
	}
	struct classifier_params cp = classifier_params_default();
	cp.max_batch = 1;
	cp.max_streams = 1;
	cp.n_ctx = (int)o->n_ctx;
	cp.pool = l->pool;
	struct generator_params gp = { .n_ctx = (int)o->n_ctx, .n_seq = 1, .pool = l->pool };
	if ((l->c = classifier_new(l->lg, &cp, &e)) == NULL ||
	    classifier_add_policy(l->c, l->p, &e) == -1 ||
	    (l->g = generator_new(l->gm, &gp, &e)) == NULL) {
		warnx_("%s", e.msg);
		goto fail;
	}
	return &l->b;
fail:
	local_free(&l->b);
	return NULL;
}

/* --- the command ------------------------------------------------------------------------ */

/* The message from the command line, or all of stdin; -1 after a message. */
int
chat_add_cli_images(struct chat *ch, const struct chat_cli_opts *o)
{
	struct err e;

	if (chat_n_images(ch) > 0)
		return 0;
	for (size_t i = 0; i < o->n_image; i++)
		if (chat_add_image(ch, 0, &e) == -1) {
			warnx_("--image: %s", e.msg);
			return -1;
		}
	return 0;
}

/* --image files, read once: the bytes go to the guard, the generator or guardd as they are */
static int
read_images(struct chat_cli_opts *o)
{
	if (o->n_image == 0)
		return 0;
	if ((o->img = calloc(o->n_image, sizeof(*o->img))) == NULL) {
		warnx_("out of memory");
		return -1;
	}
	for (size_t i = 0; i < o->n_image; i++)
		if (cli_read_image(o->image[i], &o->img[i]) == -1)
			return -1;
	return 0;
}

static void
free_images(struct chat_cli_opts *o)
{
	for (size_t i = 0; o->img != NULL && i < o->n_image; i++)
		free(o->img[i].data);
	free(o->img);
	o->img = NULL;
}

static int
one_message(struct chat *ch, const struct chat_cli_opts *o, int argc, char **argv)
{
	struct err e;
	size_t len;
	char *text = optind < argc ? strdup(argv[optind]) : read_stdin(&len);
	const char *where = optind < argc ? "the message" : "stdin";

	if (text == NULL)
		return -1;
	if (optind < argc)
		len = strlen(text);
	if (utf8_valid_prefix(text, len) != len) {
		warnx_("%s: invalid UTF-8 at byte %zu", where, utf8_valid_prefix(text, len));
		free(text);
		return -1;
	}
	int rc = chat_add(ch, CHAT_USER, text, len, &e);
	if (rc == -1)
		warnx_("%s", e.msg);
	free(text);
	return rc == 0 ? chat_add_cli_images(ch, o) : -1;
}

int
cmd_chat(int argc, char **argv)
{
	struct chat_cli_opts o;
	struct chat ch = { .add_generation_prompt = 1 };
	struct chat_result r;
	struct err e;
	int st = CHAT_ERROR;

	if (parse_chat_opts(argc, argv, &o) == -1) {
		usage_of("chat");
		return CHAT_ERROR;
	}
	int interactive = optind == argc && isatty(0);
	if (o.system && chat_add(&ch, CHAT_SYSTEM, o.system, strlen(o.system), &e) == -1) {
		warnx_("--system: %s", e.msg);
		return CHAT_ERROR;
	}
	if (read_images(&o) == -1 || (!interactive && one_message(&ch, &o, argc, argv) == -1))
		goto out;
	struct chat_backend *b = o.socket ? chat_sock_new(&o) : chat_local_new(&o);
	if (b == NULL)
		goto out;
	if (interactive)
		st = chat_tty(b, &o);
	else {
		st = b->turn(b, &ch, o.json ? NULL : stdout, &r);
		if (st != CHAT_ERROR) {
			if (o.json) {
				json_t *j = chat_result_json(&r);
				char *s = json_dumps(j, JSON_COMPACT);
				printf("%s\n", s);
				free(s);
				json_decref(j);
			} else
				chat_print_end(&r, st, stdout);
		}
		chat_result_free(&r);
	}
	b->free(b);
out:
	free_images(&o);
	chat_free(&ch);
	return st;
}
