/* t_verdict.c - reading Llama Guard's answer and applying the policy to it. */
#include <math.h>

#include "classifier/verdict.h"
#include "policy/policy.h"
#include "tap.h"

static struct verdict
decide(const struct policy *p, enum role r, double score, const char *raw)
{
	struct verdict v;
	char codes[VERDICT_MAX_CODES][8];
	int n;

	memset(&v, 0, sizeof(v));
	v.role = r;
	v.unsafe_score = score;
	enum parse_result pr = verdict_parse(raw, codes, VERDICT_MAX_CODES, &n);
	verdict_decide(&v, p, pr, codes, n);
	return v;
}

int
main(void)
{
	char codes[VERDICT_MAX_CODES][8];
	int n;
	struct err e;

	ok(verdict_parse("safe", codes, 32, &n) == PARSE_SAFE, "'safe'");
	ok(verdict_parse("\n\nsafe\n", codes, 32, &n) == PARSE_SAFE, "'safe' with white space around");
	ok(verdict_parse("unsafe\nS1", codes, 32, &n) == PARSE_UNSAFE && n == 1 && strcmp(codes[0], "S1") == 0,
	    "'unsafe\\nS1'");
	ok(verdict_parse("unsafe\nS1,S10", codes, 32, &n) == PARSE_UNSAFE && n == 2 &&
	    strcmp(codes[1], "S10") == 0, "'unsafe\\nS1,S10'");
	ok(verdict_parse("unsafe\nS2, S14 ", codes, 32, &n) == PARSE_UNSAFE && n == 2 &&
	    strcmp(codes[1], "S14") == 0, "codes are trimmed");
	const char *bad[] = { "", "Safe", "safe and sound", "unsafe", "unsafe\n", "unsafe\nS", "unsafe\nX1",
		"unsafe\nS1,", "unsafe\nS1\nS2", "unsafe\nS01", "unsafe\nS12345", "I cannot help", "unsafe S1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(verdict_parse(bad[i], codes, 32, &n) == PARSE_MALFORMED, "malformed: '%s'", bad[i]);

	struct policy *d = policy_default();
	struct verdict v = decide(d, ROLE_REQUEST, 0.01, "safe");
	ok(v.decision == DECISION_ALLOW && !v.flagged && v.n_codes == 0, "safe -> allow");
	v = decide(d, ROLE_REQUEST, 0.97, "unsafe\nS1,S10");
	ok(v.decision == DECISION_BLOCK && v.flagged && v.n_codes == 2, "unsafe S1,S10 at 0.97 -> block both");
	v = decide(d, ROLE_REQUEST, 0.45, "unsafe\nS1");
	ok(v.decision == DECISION_ALLOW && v.n_codes == 0 && v.n_model_codes == 1,
	    "unsafe below the threshold -> allow, the model's code still reported");
	v = decide(d, ROLE_REQUEST, 0.9, "I refuse");
	ok(v.decision == DECISION_ERROR && v.flagged && strstr(v.error, "not 'safe'"),
	    "malformed -> error, flagged when on_error is block");
	v = decide(d, ROLE_REQUEST, 0.9, "unsafe\nS15");
	ok(v.decision == DECISION_ERROR && strstr(v.error, "S15"), "a code not in the policy -> error naming it");

	const char *y = "on_error: allow\ncategories:\n  S6: {exclude: true}\n  S10: {threshold: 0.3}\n"
	    "  S12: {action: flag}\nresponse: {categories: {S12: {action: block}}}\n"
	    "structure_spoof: {action: flag}\n";
	struct policy *p = policy_parse(y, strlen(y), "p.yaml", &e);
	ok(p != NULL, "test policy parses");
	v = decide(p, ROLE_REQUEST, 0.35, "unsafe\nS10");
	ok(v.decision == DECISION_BLOCK && v.n_codes == 1, "S10 triggers at 0.35 (threshold 0.3)");
	v = decide(p, ROLE_REQUEST, 0.35, "unsafe\nS1,S10");
	ok(v.decision == DECISION_BLOCK && v.n_codes == 1 && strcmp(v.codes[0], "S10") == 0,
	    "S1 does not trigger at 0.35, S10 does");
	v = decide(p, ROLE_REQUEST, 0.8, "unsafe\nS12");
	ok(v.decision == DECISION_FLAG && v.flagged, "S12 in a request -> flag");
	v = decide(p, ROLE_RESPONSE, 0.8, "unsafe\nS12");
	ok(v.decision == DECISION_BLOCK, "S12 in a response -> block");
	v = decide(p, ROLE_REQUEST, 0.8, "unsafe\nS6");
	ok(v.decision == DECISION_ERROR && !v.flagged, "an excluded code -> error, allowed by on_error: allow");
	v = decide(p, ROLE_REQUEST, 0.8, "unsafe\nS12,S1");
	ok(v.decision == DECISION_BLOCK, "the strongest action wins (flag + block -> block)");
	memset(&v, 0, sizeof(v));
	v.spoof = 1;
	v.unsafe_score = 0.01;
	verdict_decide(&v, p, PARSE_SAFE, codes, 0);
	ok(v.decision == DECISION_FLAG, "a structure spoof takes its policy action");
	v.spoof = 1;
	verdict_decide(&v, d, PARSE_SAFE, codes, 0);
	ok(v.decision == DECISION_ALLOW, "by default a spoof is only reported");
	policy_free(p);
	policy_free(d);
	return done_testing();
}
