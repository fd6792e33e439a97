/* cli_util.c - helpers shared by the guard subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/classifier.h"
#include "core/model.h"

static const struct {
	const char *cmd, *usage;
} usages[] = {
	{ "tokenize", "guard tokenize -m model [--special]" },
	{ "logits", "guard logits -m model --ids \"id ...\" [--image file ...] [-o file] [--top n] [-t threads]" },
	{ "generate", "guard generate -m model --ids \"id ...\" -n count [-t threads] [--temp t] "
	    "[--top-k k] [--top-p p] [--min-p p] [--repeat-penalty r] [--repeat-last-n n] "
	    "[--seed s]" },
	{ "bench", "guard bench -m model [-p tokens] [-n tokens] [-r runs] [-t threads] [--json]" },
	{ "prompt", "guard prompt [--policy file] [--ids -m model] < conversation.json\n"
	    "       guard prompt --chat [-m model] [--format llama3|llama2] [--date D] [--ids] < chat.json" },
	{ "classify", "guard classify -m model | --socket path [--policy file|name] [--json] "
	    "[--no-cache] [--image file] [-t threads] [text]" },
	{ "filter", "guard filter -m model | --socket path [--policy file|name] "
	    "[--annotate | --emit safe|unsafe] [--exit-zero] [--batch n] [-t threads] < lines" },
	{ "ping", "guard ping --socket path [--json]" },
	{ "stats", "guard stats --socket path [--json]" },
	{ "reload", "guard reload --socket path [--json]" },
	{ "chat", "guard chat -m generator --guard model | --socket path [--policy file|name] "
	    "[--system text] [--image file]... [--format llama3|llama2|llama3v] [--date d] [-n max] "
	    "[--temp t] [--top-k k] [--top-p p] [--min-p p] [--repeat-penalty r] [--seed s] "
	    "[--stop str]... "
	    "[--check-every n] [--ctx n] [-t threads] [--json] [text]" },
};

void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "guard: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

int
usage_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
		if (strcmp(cmd, usages[i].cmd) == 0)
			fprintf(stderr, "usage: %s\n", usages[i].usage);
	return EXIT_USAGE;
}

char *
read_stdin(size_t *len)
{
	struct buf b = { 0 };
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_add(&b, chunk, n) == -1) {
			warnx_("stdin: out of memory");
			buf_free(&b);
			return NULL;
		}
	if (ferror(stdin)) {
		warnx_("stdin: %s", strerror(errno));
		buf_free(&b);
		return NULL;
	}
	if (b.p == NULL && buf_add(&b, "", 0) == -1)
		return NULL;
	*len = b.n;
	return b.p;
}

int
parse_ids(const char *s, struct tokvec *out)
{
	const char *p = s;

	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno != 0 || v < 0 || v > INT32_MAX ||
		    (*end != '\0' && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
			int n = 0;
			while (p[n] && p[n] != ' ' && p[n] != ',' && n < 20)
				n++;
			warnx_("--ids: '%.*s' at offset %td is not a token id", n, p, p - s);
			return -1;
		}
		if (tokvec_push(out, (int32_t)v) == -1) {
			warnx_("out of memory");
			return -1;
		}
		p = end;
	}
	if (out->n == 0) {
		warnx_("--ids: no token ids given");
		return -1;
	}
	return 0;
}

int
parse_int(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		warnx_("%s: '%s' is not a number in [%ld, %ld]", opt, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

struct model *
open_model(const char *path)
{
	struct err e;
	struct model *m = model_open(path, &e);

	if (m == NULL)
		warnx_("%s", e.msg);
	return m;
}

struct classifier *
new_classifier(struct model *m, const struct policy *p, long threads, long batch)
{
	struct classifier_params cp = classifier_params_default();
	struct classifier *c;
	struct err e;

	cp.n_threads = (int)threads;
	cp.max_batch = (int)batch;
	if ((c = classifier_new(m, &cp, &e)) == NULL || classifier_add_policy(c, p, &e) == -1) {
		warnx_("%s", e.msg);
		classifier_free(c);
		return NULL;
	}
	return c;
}

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
