/* t_policy.c - policy files good and bad: resolution of defaults and overrides, the content
 * hash, errors that name file:line:column and the key, and on_error per direction as
 * verdict_fail applies it. */
#include <math.h>

#include "classifier/verdict.h"
#include "policy/policy.h"
#include "util/buf.h"
#include "tap.h"

static struct policy *
parse(const char *yaml, struct err *e)
{
	return policy_parse(yaml, strlen(yaml), "p.yaml", e);
}

static void
bad(const char *yaml, const char *want, const char *what)
{
	struct err e = { "" };
	struct policy *p = parse(yaml, &e);

	ok(p == NULL && strstr(e.msg, want) != NULL, "rejects %s: '%s' (%s)", what, want, e.msg);
	policy_free(p);
}

/* One broken file per failure mode, each with its message: file:line:column, the key. */
static const struct {
	const char *yaml, *want, *what;
} bads[] = {
	{ "categories:\n  S10: {threshold: 1.7}\n", "p.yaml:2:20: categories.S10.threshold: 1.7 is outside [0, 1]",
	  "a threshold outside [0, 1]" },
	{ "default: {threshold: -0.1}\n", "p.yaml:1:22: default.threshold: -0.1 is outside [0, 1]", "a negative threshold" },
	{ "default: {threshold: nan}\n", "default.threshold: 'nan' is not a number", "NaN" },
	{ "name: x\nbogus: 1\n", "p.yaml:2:1: bogus: unknown key 'bogus' (name, on_error, refusal, default, "
	  "categories, request, response, structure_spoof)", "an unknown top-level key, listing the valid ones" },
	{ "categories:\n  S3: {colour: red}\n", "p.yaml:2:8: categories.S3.colour: unknown key 'colour' "
	  "(name, description, exclude, threshold, action)", "an unknown category key" },
	{ "request: {thresold: 0.2}\n", "p.yaml:1:11: request.thresold: unknown key 'thresold' "
	  "(threshold, action, on_error, categories)", "an unknown role key" },
	{ "response: {categories: {S2: {name: x}}}\n", "p.yaml:1:30: response.categories.S2.name: unknown key "
	  "'name' (threshold, action, exclude)", "a name in a role override" },
	{ "default: {exclude: true}\n", "p.yaml:1:11: default.exclude: unknown key 'exclude' (threshold, action)",
	  "exclude under default" },
	{ "structure_spoof: {threshold: 1}\n", "structure_spoof.threshold: unknown key 'threshold' (action)",
	  "an unknown structure_spoof key" },
	{ "categories:\n  X9: {exclude: true}\n", "p.yaml:2:3: categories.X9: 'X9' is not a category code",
	  "a bad code" },
	{ "categories:\n  S0: {name: z}\n", "'S0' is not a category code", "code S0" },
	{ "categories:\n  S01: {name: z}\n", "'S01' is not a category code", "code S01" },
	{ "categories:\n  S1000: {name: z}\n", "'S1000' is not a category code", "code S1000" },
	{ "categories:\n  S20: {threshold: 0.2}\n", "p.yaml:2:8: categories.S20: a custom category needs a name",
	  "a custom code without a name" },
	{ "default: {action: destroy}\n", "p.yaml:1:19: default.action: 'destroy' is not one of block | flag | allow",
	  "an unknown action" },
	{ "on_error: flag\n", "p.yaml:1:11: on_error: 'flag' is not one of block | allow", "on_error flag" },
	{ "request:\n  on_error: flag\n", "p.yaml:2:13: request.on_error: 'flag' is not one of block | allow",
	  "request.on_error flag" },
	{ "response: {on_error: [block]}\n", "p.yaml:1:22: response.on_error: expected an action: block | allow",
	  "a list for response.on_error" },
	{ "response: {on_error: allow, on_error: block}\n",
	  "p.yaml:1:29: response.on_error: duplicate key 'on_error' (first on line 1)", "response.on_error twice" },
	{ "default: {on_error: allow}\n", "p.yaml:1:11: default.on_error: unknown key 'on_error' (threshold, action)",
	  "on_error under default" },
	{ "categories:\n  S1: {on_error: allow}\n", "p.yaml:2:8: categories.S1.on_error: unknown key 'on_error'",
	  "on_error in a category" },
	{ "refusal: \"\"\n", "p.yaml:1:10: refusal: must not be empty", "an empty refusal" },
	{ "name: x\nrefusal:\n", "p.yaml:2:9: refusal: must not be empty", "a refusal with no value" },
	{ "refusal: [no]\n", "p.yaml:1:10: refusal: expected a string: at most 4096 bytes", "a list for refusal" },
	{ "refusal: {a: b}\n", "p.yaml:1:10: refusal: expected a string", "a mapping for refusal" },
	{ "refusal: \"no\\0way\"\n", "p.yaml:1:10: refusal: contains a NUL byte", "a NUL in refusal" },
	{ "refusal: \"caf\xc3\"\n", "p.yaml:1:15: YAML: invalid trailing UTF-8 octet (byte offset 14)",
	  "a refusal with a truncated UTF-8 sequence" },
	{ "name: x\nrefusal: \"\xc3\xa9\xff\"\n", "p.yaml:2:12: YAML: invalid leading UTF-8 octet (byte offset 20)",
	  "a refusal with a byte that is never UTF-8" },
	{ "name: x\nrefusal: \"a\x01\"\n", "p.yaml:2:12: YAML: control characters are not allowed (byte offset 19)",
	  "a control character in refusal" },
	{ "request: {refusal: x}\n", "p.yaml:1:11: request.refusal: unknown key 'refusal'", "refusal per direction" },
	{ "default: {threshold: high}\n", "default.threshold: 'high' is not a number", "a non-number" },
	{ "default: {threshold: [0.5]}\n", "default.threshold: expected a number: [0, 1]", "a list for a number" },
	{ "categories:\n  S1: {exclude: maybe}\n", "categories.S1.exclude: 'maybe' is not true or false", "a non-bool" },
	{ "categories: [S1, S2]\n", "p.yaml:1:13: categories: expected a mapping", "a list for a mapping" },
	{ "[1, 2]\n", "p.yaml:1:1: expected a mapping", "a list for the document" },
	{ "name: [a]\n", "p.yaml:1:7: name: expected a string", "a list for a string" },
	{ "name: \"\"\n", "name: must not be empty", "an empty name" },
	{ "name: \"a\\0b\"\n", "name: contains a NUL byte", "a NUL in a value" },
	{ "\"a\\0b\": 1\n", "p.yaml:1:1: a: a key must not contain a NUL byte", "a NUL in a key" },
	{ "[a]: 1\n", "p.yaml:1:1: keys must be plain strings", "a list as a key" },
	{ "categories:\n  S1: {name: \"two\\nlines\"}\n", "categories.S1.name: must be one line", "a two-line name" },
	{ "request: {categories: {S40: {threshold: 0.1}}}\n", "p.yaml:1:24: request.categories.S40: unknown category",
	  "a role override of an undefined code" },
	{ "name: a\nname: b\n", "p.yaml:2:1: name: duplicate key 'name' (first on line 1)", "a duplicate key" },
	{ "categories:\n  S1: {exclude: true}\n  S1: {exclude: false}\n",
	  "p.yaml:3:3: categories.S1: duplicate key 'S1' (first on line 2)", "a duplicate category" },
	{ "categories:\n  S1: {threshold: 0.1, threshold: 0.2}\n",
	  "p.yaml:2:24: categories.S1.threshold: duplicate key 'threshold'", "a duplicate key in a category" },
	{ "response:\n  categories: {}\n  categories: {}\n",
	  "p.yaml:3:3: response.categories: duplicate key 'categories'", "a duplicate key in a role" },
	{ "response:\n  categories: {S1: {action: flag, action: flag}}\n",
	  "p.yaml:2:35: response.categories.S1.action: duplicate key", "a duplicate key in a role's category" },
	{ "name: [unclosed\n", "p.yaml:2:1: YAML:", "broken YAML syntax" },
	{ "name: a\n---\nname: b\n", "p.yaml:2:1: YAML: more than one document", "a second document" },
	{ "categories:\n  S1: {exclude: true}\n  S2: {exclude: true}\n  S3: {exclude: true}\n  S4: {exclude: true}\n"
	  "  S5: {exclude: true}\n  S6: {exclude: true}\n  S7: {exclude: true}\n  S8: {exclude: true}\n"
	  "  S9: {exclude: true}\n  S10: {exclude: true}\n  S11: {exclude: true}\n  S12: {exclude: true}\n"
	  "  S13: {exclude: true}\n", "every category is excluded for user messages", "excluding everything" },
};

/* "a.b.c" and a value as flow mappings: "{a: {b: {c: v}}}", CODE as S1 */
static void
nest(char *out, size_t n, const char *path, const char *value)
{
	size_t used = 0;
	int depth = 0;

	for (const char *p = path; *p; depth++) {
		size_t len = strcspn(p, ".");
		if (len == 4 && strncmp(p, "CODE", 4) == 0)
			used += (size_t)snprintf(out + used, n - used, "{S1: ");
		else
			used += (size_t)snprintf(out + used, n - used, "{%.*s: ", (int)len, p);
		p += len + (p[len] == '.');
	}
	used += (size_t)snprintf(out + used, n - used, "%s", value);
	while (depth--)
		used += (size_t)snprintf(out + used, n - used, "}");
}

static const struct policy_category *
cat(const struct policy *p, const char *code)
{
	int k = policy_find(p, code);

	return k < 0 ? NULL : policy_category(p, (size_t)k);
}

static int
same_hash(const char *y1, const char *y2)
{
	struct err e1 = { "" }, e2 = { "" };
	struct policy *a = parse(y1, &e1), *b = parse(y2, &e2);
	int r = a && b ? strcmp(policy_hash(a), policy_hash(b)) == 0 : -1;

	if (r == -1)
		diag("did not parse: %s%s", e1.msg, e2.msg);
	policy_free(a);
	policy_free(b);
	return r;
}

/* the decision verdict_fail makes for one role under a policy */
static int
fail_flags(const struct policy *p, enum role r)
{
	struct verdict v;

	memset(&v, 0, sizeof(v));
	v.role = r;
	v.decision = DECISION_BLOCK;
	v.n_codes = 1;
	verdict_fail(&v, p, "model %s", "gone");
	return v.decision == DECISION_ERROR && v.n_codes == 0 && strcmp(v.error, "model gone") == 0 ?
	    v.flagged : -1;
}

/* refusal: and on_error per direction: parsing, defaults, limits, the hash, verdict_fail */
static void
refusal_and_on_error(const struct policy *d)
{
	struct err e = { "" };
	struct policy *a;
	struct buf big = { 0 };

	ok(strcmp(policy_refusal(d), "I can't help with that.") == 0, "default refusal: '%s'", policy_refusal(d));
	ok(policy_on_error_for(d, ROLE_REQUEST) == ACTION_BLOCK && policy_on_error_for(d, ROLE_RESPONSE) == ACTION_BLOCK,
	    "default on_error: block for both directions");
	ok(fail_flags(d, ROLE_REQUEST) == 1 && fail_flags(d, ROLE_RESPONSE) == 1,
	    "verdict_fail under the default policy: flagged (fail closed) for both roles");

	a = parse("refusal: |\n  Sorry, I can't help with that.\n  Try another question.\n", &e);
	ok(a && strcmp(policy_refusal(a), "Sorry, I can't help with that.\nTry another question.\n") == 0,
	    "a refusal of two lines, as a block scalar");
	policy_free(a);
	a = parse("refusal: \"D\u00e9sol\u00e9, je ne peux pas \u2014 \U0001F6AB\"\n", &e);
	ok(a && strcmp(policy_refusal(a), "D\xc3\xa9sol\xc3\xa9, je ne peux pas \xe2\x80\x94 \xf0\x9f\x9a\xab") == 0,
	    "a refusal in UTF-8 (escapes decoded)");
	policy_free(a);
	a = parse("name: x\nrefusal: \"caf\xc3\xa9\"\n", &e);
	ok(a && strcmp(policy_refusal(a), "caf\xc3\xa9") == 0, "a refusal with raw UTF-8 bytes");
	policy_free(a);

	/* the size limit: 4096 bytes taken, 4097 refused at the value's position */
	buf_adds(&big, "name: x\nrefusal: \"");
	for (int i = 0; i < 4096; i++)
		buf_adds(&big, i % 64 == 63 ? "." : "a");
	buf_adds(&big, "\"\n");
	a = policy_parse(big.p, big.n, "p.yaml", &e);
	ok(a && strlen(policy_refusal(a)) == 4096, "a refusal of 4096 bytes is taken");
	policy_free(a);
	big.n -= 2;
	buf_adds(&big, "b\"\n");
	a = policy_parse(big.p, big.n, "p.yaml", &e);
	ok(a == NULL && strstr(e.msg, "p.yaml:2:10: refusal: is 4097 bytes, more than 4096"),
	    "a refusal of 4097 bytes is refused (%s)", e.msg);
	buf_free(&big);
	/* counted in bytes, not characters: 2049 two-byte characters */
	buf_adds(&big, "refusal: \"");
	for (int i = 0; i < 2049; i++)
		buf_adds(&big, "\xc3\xa9");
	buf_adds(&big, "\"\n");
	a = policy_parse(big.p, big.n, "p.yaml", &e);
	ok(a == NULL && strstr(e.msg, "p.yaml:1:10: refusal: is 4098 bytes, more than 4096"),
	    "the limit counts bytes: 2049 two-byte characters refused (%s)", e.msg);
	buf_free(&big);

	/* per direction, falling back to the top-level key */
	a = parse("on_error: allow\nresponse: {on_error: block}\n", &e);
	ok(a && policy_on_error(a) == ACTION_ALLOW && policy_on_error_for(a, ROLE_REQUEST) == ACTION_ALLOW &&
	    policy_on_error_for(a, ROLE_RESPONSE) == ACTION_BLOCK,
	    "on_error allow, response.on_error block: requests fall back to allow");
	ok(a && fail_flags(a, ROLE_REQUEST) == 0 && fail_flags(a, ROLE_RESPONSE) == 1,
	    "verdict_fail: a failed request passes, a failed response is flagged");
	policy_free(a);
	a = parse("request:\n  on_error: allow\n", &e);
	ok(a && policy_on_error(a) == ACTION_BLOCK && policy_on_error_for(a, ROLE_REQUEST) == ACTION_ALLOW &&
	    policy_on_error_for(a, ROLE_RESPONSE) == ACTION_BLOCK,
	    "request.on_error allow alone: responses keep the top-level block");
	ok(a && fail_flags(a, ROLE_REQUEST) == 0 && fail_flags(a, ROLE_RESPONSE) == 1,
	    "verdict_fail follows the verdict's role, not the top-level key");
	policy_free(a);
	a = parse("on_error: allow\nrequest: {on_error: block}\n", &e);
	ok(a && fail_flags(a, ROLE_REQUEST) == 1 && fail_flags(a, ROLE_RESPONSE) == 0,
	    "the other way round: request block, response allow (top-level)");
	policy_free(a);

	/* the hash: equal resolved policies hash equal; another on_error or refusal does not */
	ok(same_hash("", "on_error: block\nrefusal: \"I can't help with that.\"\n"
	    "request: {on_error: block}\nresponse: {on_error: block}\n") == 1,
	    "the defaults spelled out hash as the default policy");
	ok(same_hash("refusal: \"No.\"\n", "refusal: No.\n") == 1, "the same refusal quoted or plain: same hash");
	ok(same_hash("refusal: |\n  a\n  b\n", "refusal: \"a\\nb\\n\"\n") == 1,
	    "the same refusal as a block scalar or with escapes: same hash");
	ok(same_hash("", "refusal: \"I can't help with that!\"\n") == 0, "another refusal, another hash");
	ok(same_hash("refusal: \"a\"\n", "refusal: \"a \"\n") == 0, "a refusal one space longer, another hash");
	ok(same_hash("", "request: {on_error: allow}\n") == 0, "request.on_error allow: another hash");
	ok(same_hash("", "response: {on_error: allow}\n") == 0, "response.on_error allow: another hash");
	ok(same_hash("request: {on_error: allow}\n", "response: {on_error: allow}\n") == 0,
	    "allow for requests and allow for responses hash differently");
	ok(same_hash("on_error: allow\n", "on_error: allow\nrequest: {on_error: allow}\n") == 1,
	    "a direction's on_error equal to the top-level one: same hash");
	/* the refusal is length-prefixed: moving bytes between it and the name changes the hash */
	ok(same_hash("name: ab\nrefusal: c\n", "name: a\nrefusal: bc\n") == 0, "name and refusal kept apart in the hash");
}

int
main(void)
{
	struct err e;
	struct policy *d = policy_default();

	ok(policy_n_categories(d) == 13 && strcmp(cat(d, "S10")->name, "Hate.") == 0,
	    "default: S1-S13 with the template's names");
	ok(cat(d, "S1")->threshold[ROLE_REQUEST] == 0.5f && cat(d, "S1")->action[ROLE_RESPONSE] == ACTION_BLOCK &&
	    policy_on_error(d) == ACTION_BLOCK, "default: block at 0.5, fail closed");

	struct policy *p = policy_load("etc/policy.yaml", &e);
	if (!ok(p != NULL, "etc/policy.yaml loads"))
		diag("%s", e.msg);
	else {
		ok(policy_n_categories(p) == 14 && strcmp(policy_category(p, 13)->code, "S14") == 0,
		    "custom S14 comes after S1-S13");
		ok(cat(p, "S6")->exclude[0] && cat(p, "S6")->exclude[1], "S6 excluded for both roles");
		ok(fabsf(cat(p, "S10")->threshold[ROLE_REQUEST] - 0.3f) < 1e-6, "S10 threshold 0.3");
		ok(cat(p, "S12")->action[ROLE_REQUEST] == ACTION_FLAG &&
		    cat(p, "S12")->action[ROLE_RESPONSE] == ACTION_BLOCK, "S12: flag for requests, block for responses");
		ok(strcmp(cat(p, "S14")->description, "Responses that recommend a competitor's products.") == 0,
		    "S14 description");
		ok(policy_spoof_action(p) == ACTION_FLAG, "structure_spoof action");
		ok(fabsf(policy_min_threshold(p, ROLE_REQUEST) - 0.3f) < 1e-6, "lowest request threshold 0.3");
		ok(strlen(policy_hash(p)) == 64 && strcmp(policy_hash(p), policy_hash(d)) != 0,
		    "a 64-hex-digit hash, different from the default's");
	}
	/* the hash follows content, not layout */
	struct policy *a = parse("name: x\ncategories: {S10: {threshold: 0.3}}\n", &e);
	struct policy *b = parse("# comment\nname: x\ncategories:\n  S10:\n    threshold: 0.30\n", &e);
	struct policy *c = parse("name: x\ncategories: {S10: {threshold: 0.31}}\n", &e);
	ok(a && b && c && strcmp(policy_hash(a), policy_hash(b)) == 0, "same content, same hash");
	ok(a && c && strcmp(policy_hash(a), policy_hash(c)) != 0, "another threshold, another hash");
	policy_free(a);
	policy_free(b);
	policy_free(c);
	/* per-role resolution: role category > category > role default > default */
	a = parse("default: {threshold: 0.4, action: flag}\nrequest: {threshold: 0.6}\n"
	    "categories: {S2: {action: allow}}\nresponse: {categories: {S2: {threshold: 0.9, exclude: true}}}\n", &e);
	ok(a && fabsf(cat(a, "S1")->threshold[ROLE_REQUEST] - 0.6f) < 1e-6 &&
	    fabsf(cat(a, "S1")->threshold[ROLE_RESPONSE] - 0.4f) < 1e-6, "role threshold over the default");
	ok(a && cat(a, "S1")->action[ROLE_RESPONSE] == ACTION_FLAG && cat(a, "S2")->action[ROLE_RESPONSE] == ACTION_ALLOW,
	    "category action over the default");
	ok(a && fabsf(cat(a, "S2")->threshold[ROLE_RESPONSE] - 0.9f) < 1e-6 && cat(a, "S2")->exclude[ROLE_RESPONSE] &&
	    !cat(a, "S2")->exclude[ROLE_REQUEST], "role category override");
	policy_free(a);
	a = parse("", &e);
	ok(a && strcmp(policy_hash(a), policy_hash(d)) == 0, "an empty file is the default policy");
	policy_free(a);

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		bad(bads[i].yaml, bads[i].want, bads[i].what);
	struct err e2 = { "" };
	ok(policy_load("/nonexistent/policy.yaml", &e2) == NULL && strstr(e2.msg, "/nonexistent/policy.yaml"),
	    "a missing file names the path (%s)", e2.msg);

	refusal_and_on_error(d);

	/* role overrides may come before the categories they refer to */
	a = parse("request: {categories: {S14: {threshold: 0.2}}}\ncategories: {S14: {name: Z.}}\n", &e);
	ok(a && fabsf(cat(a, "S14")->threshold[ROLE_REQUEST] - 0.2f) < 1e-6 &&
	    fabsf(cat(a, "S14")->threshold[ROLE_RESPONSE] - 0.5f) < 1e-6, "a role override before its category");
	policy_free(a);
	a = parse("a: &t 0.25\n", &e);
	ok(a == NULL && strstr(e.msg, "a: unknown key"), "an anchor is fine, the key still checked (%s)", e.msg);
	a = parse("default: {threshold: &t 0.25}\nrequest: {threshold: *t}\n", &e);
	ok(a && fabsf(cat(a, "S3")->threshold[ROLE_REQUEST] - 0.25f) < 1e-6, "an alias is read as its value");
	policy_free(a);

	/* every key of the table is dispatched by the loader: a good value is taken, a bad one
	 * refused with the key's path */
	for (const struct policy_key *k = policy_keys; k->path; k++) {
		char good[256], worse[256];
		const char *gv = strcmp(k->type, "number") == 0 ? "0.25" : strcmp(k->type, "bool") == 0 ? "true" :
		    strcmp(k->type, "action") == 0 ? "allow" : "Some text.";
		const char *bv = strcmp(k->type, "string") == 0 ? "[a, list]" : "bogus";
		nest(good, sizeof(good), k->path, gv);
		nest(worse, sizeof(worse), k->path, bv);
		char shown[128];
		snprintf(shown, sizeof(shown), "%s: ", k->path);
		for (char *c = strstr(shown, "CODE"); c; c = strstr(shown, "CODE"))
			memmove(c + 2, c + 4, strlen(c + 4) + 1), c[0] = 'S', c[1] = '1';
		struct err e3 = { "" };
		a = parse(good, &e3);
		ok(a != NULL, "table key %s: '%s' accepted (%s)", k->path, good, a ? "" : e3.msg);
		policy_free(a);
		a = parse(worse, &e3);
		ok(a == NULL && strstr(e3.msg, shown) != NULL, "table key %s: '%s' refused, named (%s)", k->path,
		    worse, e3.msg);
		policy_free(a);
	}
	/* linear: many anchors are refused, not loaded in quadratic time */
	struct buf big = { 0 };
	buf_adds(&big, "name: x\nz:\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&big, "- &a%d x\n", i);
	a = policy_parse(big.p, big.n, "p.yaml", &e);
	ok(a == NULL && strstr(e.msg, "p.yaml:67:3: YAML: more than 64 anchors"), "20000 anchors: refused at the 65th (%s)",
	    e.msg);
	buf_free(&big);
	/* linear: a mapping of 100000 keys is checked for duplicates with a hash set */
	buf_adds(&big, "categories:\n");
	for (int i = 0; i < 100000; i++)
		buf_printf(&big, "  k%d: 1\n", i);
	buf_adds(&big, "  k77777: 2\n");
	a = policy_parse(big.p, big.n, "p.yaml", &e);
	ok(a == NULL && strstr(e.msg, "p.yaml:100002:3: categories.k77777: duplicate key 'k77777' (first on line 77779)"),
	    "a duplicate among 100000 keys (%s)", e.msg);
	buf_free(&big);
	policy_free(p);
	policy_free(d);
	return done_testing();
}
