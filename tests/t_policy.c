/* t_policy.c - policy files good and bad: resolution of defaults and overrides, the content
 * hash, and errors that name file:line:column and the key. */
#include <math.h>

#include "policy/policy.h"
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

static const struct policy_category *
cat(const struct policy *p, const char *code)
{
	int k = policy_find(p, code);

	return k < 0 ? NULL : policy_category(p, (size_t)k);
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

	bad("categories:\n  S10: {threshold: 1.7}\n", "p.yaml:2:20: categories.S10.threshold: 1.7 is outside [0, 1]",
	    "a threshold outside [0, 1]");
	bad("name: x\nbogus: 1\n", "p.yaml:2:8: bogus: unknown key", "an unknown top-level key");
	bad("categories:\n  S3: {colour: red}\n", "p.yaml:2:16: categories.S3.colour: unknown key", "an unknown category key");
	bad("categories:\n  X9: {exclude: true}\n", "p.yaml:2:7: categories.X9: 'X9' is not a category code",
	    "a bad code");
	bad("categories:\n  S0: {name: z}\n", "'S0' is not a category code", "code S0");
	bad("categories:\n  S20: {threshold: 0.2}\n", "categories.S20: a custom category needs a name",
	    "a custom code without a name");
	bad("default: {action: destroy}\n", "p.yaml:1:19: default.action: 'destroy' is not one of block, flag, allow",
	    "an unknown action");
	bad("on_error: flag\n", "on_error: 'flag' is not one of block, allow", "on_error flag");
	bad("default: {threshold: high}\n", "default.threshold: 'high' is not a number", "a non-number");
	bad("categories:\n  S1: {exclude: maybe}\n", "categories.S1.exclude: 'maybe' is not true or false", "a non-bool");
	bad("categories: [S1, S2]\n", "p.yaml:1:13: categories: expected a mapping", "a list for a mapping");
	bad("name: [a]\n", "name: expected a string", "a list for a string");
	bad("categories:\n  S1: {name: \"two\\nlines\"}\n", "categories.S1.name: must be one line", "a two-line name");
	bad("request: {categories: {S40: {threshold: 0.1}}}\n", "request.categories.S40: unknown category",
	    "a role override of an undefined code");
	bad("name: a\nname: b\n", "p.yaml:2:1: policy: duplicate key 'name'", "a duplicate key");
	bad("name: [unclosed\n", "p.yaml:2:1: YAML:", "broken YAML syntax");
	bad("categories:\n  S1: {exclude: true}\n  S2: {exclude: true}\n  S3: {exclude: true}\n  S4: {exclude: true}\n"
	    "  S5: {exclude: true}\n  S6: {exclude: true}\n  S7: {exclude: true}\n  S8: {exclude: true}\n"
	    "  S9: {exclude: true}\n  S10: {exclude: true}\n  S11: {exclude: true}\n  S12: {exclude: true}\n"
	    "  S13: {exclude: true}\n", "every category is excluded", "excluding everything");
	struct err e2 = { "" };
	ok(policy_load("/nonexistent/policy.yaml", &e2) == NULL && strstr(e2.msg, "/nonexistent/policy.yaml"),
	    "a missing file names the path (%s)", e2.msg);
	/* every key of the loader's table is documented in guard-policy(5) */
	FILE *fp = fopen("man/guard-policy.5", "r");
	char man[65536] = "";
	size_t mn = fp ? fread(man, 1, sizeof(man) - 1, fp) : 0;
	man[mn] = '\0';
	if (fp)
		fclose(fp);
	for (const struct policy_key *k = policy_keys; k->path; k++) {
		const char *last = strrchr(k->path, '.');
		last = last ? last + 1 : k->path;
		if (strchr(last, '{'))
			continue;
		char want[64];
		snprintf(want, sizeof(want), "Ic %s", last);
		ok(strstr(man, want) != NULL, "guard-policy.5 documents '%s'", k->path);
	}
	policy_free(p);
	policy_free(d);
	return done_testing();
}
