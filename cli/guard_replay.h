/* guard_replay.h - what guard replay's reader, decider and report share. */
#ifndef GUARDD_GUARD_REPLAY_H
#define GUARDD_GUARD_REPLAY_H

#include <jansson.h>

#include "classifier/conv.h"
#include "classifier/verdict.h"

/* One logged verdict and what the new policy makes of it. */
struct rec {
	long line;		/* in the log */
	long in_line;		/* its line in the original input (--input) */
	int slot;		/* 0: the line's (request) conversation, 1: the response's */
	enum role role;
	double score;
	char raw[256];
	int spoof;
	char phash[65];		/* the policy it was decided under */
	char csha[65];		/* the line's content_sha256 (log.content: sha256), or "" */
	char mc[VERDICT_MAX_CODES][8];	/* the codes the model named */
	int n_mc;
	char old_state[24], new_state[24];	/* "allow", "flag", "block", "error(block)"... */
	char old_codes[VERDICT_MAX_CODES][8], new_codes[VERDICT_MAX_CODES][8];
	int n_old, n_new;
	int need_run;		/* the logged scores do not decide it under the new policy */
	const char *why;	/* ... because */
	int have_cv;
	struct conv cv;
	char snippet[64];	/* the assessed message's start, when the log has it */
};

/* The state name of a verdict: its decision, and for an error what on_error made of it. */
void replay_state(char *out, size_t cap, enum decision d, int flagged);
/* The start of the assessed message of x->cv, for examples. */
void replay_snip(struct rec *x);
/* Reads the verdicts of one log line (a guardd log line, a guard filter or guard eval --out
 * line). Appends to *r; -1 with a message naming the field. */
int replay_parse_line(json_t *o, long line, struct rec **r, size_t *n, size_t *cap,
    char *msg, size_t msgcap);

/* The report object (guard_replay_report.c): counts, flips per direction with their
 * categories, and every flipped verdict; *flips gets their number. */
json_t *replay_report(const char *log, const struct policy *old, const struct policy *nw,
    struct rec *r, size_t n, long n_run, long *flips);
void replay_print_text(const json_t *j, long examples);

#endif
