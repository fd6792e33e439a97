/* guard_cli.h - what guard's classify and filter share with their socket clients. */
#ifndef GUARDD_GUARD_CLI_H
#define GUARDD_GUARD_CLI_H

#include <jansson.h>
#include <stddef.h>

#include "classifier/conv.h"
#include "util/err.h"

struct policy;

/* grep-like statuses of classify and filter */
enum { ST_ALLOW = 0, ST_FLAGGED = 1, ST_ERROR = 2 };

struct copts {
	const char *model, *policy, *socket, *emit;
	const char *image;	/* classify --image: a PNG or JPEG with the conversation */
	int json, ids, annotate, exit_zero, no_cache;
	long threads, batch, n_ctx;
	/* socket mode: the daemon's policy, for the error verdicts of malformed lines */
	const char *remote_policy, *remote_hash;
	int remote_flag_errors;
};

struct line {
	long no;
	char *text;
	size_t len;
	json_t *obj;		/* the input object, for --annotate (NULL for plain text) */
	int pair;		/* {"prompt", "response"}: two verdicts */
	struct conv cv[2];
	int n_cv;
	char err[sizeof(((struct err *)0)->msg)];	/* malformed input */
	json_t *vj[2];		/* the verdicts */
};

struct tally {
	long lines, allow, flag, block, errors;
	int status;
};

/* Parses one input line of guard filter into conversations (or an error). */
void line_parse(struct line *l);
void line_free(struct line *l);
/* Writes one line's output (verdicts in l->vj) and counts it. */
void emit_line(struct line *l, const struct copts *o, const struct policy *p, struct tally *t);
int verdict_status(const json_t *v);
void verdict_print(const json_t *v, int as_json);

/* guard_client.c: the same through guardd's socket */
int client_classify(const char *sock, const char *policy, const struct conv *cv, int as_json);
int client_filter(const char *sock, const char *policy, const struct copts *o,
    const struct policy *p);

#endif
