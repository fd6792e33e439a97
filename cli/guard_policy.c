/* guard_policy.c - guard policy check | diff | show: validate policy files (errors with
 * file:line:column), show the effective difference between two policies per category and
 * direction, and print a resolved policy with every default applied and the exact category
 * block the model sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "classifier/prompt.h"
#include "cli/cli.h"
#include "cli/guard_tools.h"
#include "policy/policy.h"
#include "policy/policy_diff.h"

#define POLICY_USAGE "guard policy check file...\n" \
	"       guard policy diff [--json] old new\n" \
	"       guard policy show [--json] [file]\n" \
	"       (a file named :default is the built-in policy)"

static int
usage(void)
{
	fprintf(stderr, "usage: %s\n", POLICY_USAGE);
	return EXIT_USAGE;
}

static struct policy *
load(const char *path)
{
	struct err e;
	struct policy *p = strcmp(path, ":default") == 0 ? policy_default() : policy_load(path, &e);

	if (p == NULL)
		warnx_("%s", e.msg);
	return p;
}

static int
check(int argc, char **argv)
{
	int rc = EXIT_OK;

	if (argc < 1)
		return usage();
	for (int i = 0; i < argc; i++) {
		struct policy *p = load(argv[i]);
		if (p == NULL) {
			rc = EXIT_BAD;
			continue;
		}
		printf("%s: ok: policy %s, %zu categories, hash %s\n", argv[i], policy_name(p),
		    policy_n_categories(p), policy_hash(p));
		policy_free(p);
	}
	return rc;
}

static const char *
role_label(int r)
{
	return r < 0 ? "both" : r == ROLE_RESPONSE ? "assistant" : "user";
}

static int
diff(int argc, char **argv, int as_json)
{
	struct pchange *ch = NULL;
	size_t n = 0;
	struct err e;
	int rc = EXIT_USAGE;

	if (argc != 2)
		return usage();
	struct policy *a = load(argv[0]), *b = a ? load(argv[1]) : NULL;
	if (a == NULL || b == NULL) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (policy_diff(a, b, &ch, &n, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	int same[2] = { policy_same_prompt(a, b, ROLE_REQUEST), policy_same_prompt(a, b, ROLE_RESPONSE) };
	if (as_json) {
		json_t *o = json_object(), *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s, s:s, s:b, s:s}", "kind",
			    pchange_kind_name(ch[i].kind), "code", ch[i].code[0] ? ch[i].code : NULL, "role",
			    role_label(ch[i].role), "from", ch[i].from, "to", ch[i].to, "prompt", ch[i].prompt,
			    "direction", ch[i].stricter > 0 ? "stricter" : ch[i].stricter < 0 ? "looser" : "neutral"));
		json_object_set_new(o, "old", json_string(argv[0]));
		json_object_set_new(o, "new", json_string(argv[1]));
		json_object_set_new(o, "old_hash", json_string(policy_hash(a)));
		json_object_set_new(o, "new_hash", json_string(policy_hash(b)));
		json_object_set_new(o, "changes", arr);
		json_object_set_new(o, "prompt_changes", json_pack("{s:b, s:b}", "user", !same[0],
		    "assistant", !same[1]));
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		printf("--- %s (%.12s)\n+++ %s (%.12s)\n", argv[0], policy_hash(a), argv[1], policy_hash(b));
		for (size_t i = 0; i < n; i++) {
			const struct pchange *c = &ch[i];
			printf("%-4s %-9s %-15s %s -> %s", c->code[0] ? c->code : "-", role_label(c->role),
			    pchange_kind_name(c->kind), c->from[0] ? c->from : "(none)",
			    c->to[0] ? c->to : "(none)");
			if (c->stricter)
				printf("  [%s]", c->stricter > 0 ? "stricter" : "looser");
			if (c->prompt)
				printf("  [prompt]");
			printf("\n");
		}
		if (n == 0)
			printf("no effective difference\n");
		for (int r = 0; r < 2; r++)
			printf("prompt for %s messages: %s\n", role_label(r), same[r] ? "the same "
			    "(logged scores still apply: guard replay needs no model)" : "changes "
			    "(logged verdicts must be re-run: guard replay needs their content)");
	}
	rc = n == 0 ? EXIT_OK : EXIT_BAD;
out:
	free(ch);
	policy_free(a);
	policy_free(b);
	return rc;
}

/* the part of the role's prompt that lists the categories, markers included */
static int
category_block(const struct policy *p, enum role r, struct buf *out)
{
	struct buf text = { 0 };
	struct err e;
	static const char B[] = "<BEGIN UNSAFE CONTENT CATEGORIES>", E[] = "<END UNSAFE CONTENT CATEGORIES>";

	if (prompt_prefix(p, r, NULL, &text, NULL, &e) == -1) {
		warnx_("%s", e.msg);
		buf_free(&text);
		return -1;
	}
	const char *a = strstr(text.p, B), *z = a ? strstr(a, E) : NULL;
	if (z == NULL) {
		warnx_("the prompt has no category block");
		buf_free(&text);
		return -1;
	}
	buf_add(out, a, (size_t)(z - a) + sizeof(E) - 1);
	buf_free(&text);
	return 0;
}

static int
show(int argc, char **argv, int as_json)
{
	struct buf blk[2] = { { 0 }, { 0 } };
	int rc = EXIT_BAD;

	if (argc > 1)
		return usage();
	struct policy *p = load(argc ? argv[0] : ":default");
	if (p == NULL)
		return EXIT_BAD;
	if (category_block(p, ROLE_REQUEST, &blk[0]) == -1 || category_block(p, ROLE_RESPONSE, &blk[1]) == -1)
		goto out;
	if (as_json) {
		json_t *o = json_object(), *cats = json_array();
		json_object_set_new(o, "name", json_string(policy_name(p)));
		json_object_set_new(o, "hash", json_string(policy_hash(p)));
		json_object_set_new(o, "on_error", json_pack("{s:s, s:s}", "user",
		    action_name(policy_on_error_for(p, ROLE_REQUEST)), "assistant",
		    action_name(policy_on_error_for(p, ROLE_RESPONSE))));
		json_object_set_new(o, "structure_spoof", json_string(action_name(policy_spoof_action(p))));
		json_object_set_new(o, "refusal", json_string(policy_refusal(p)));
		for (size_t i = 0; i < policy_n_categories(p); i++) {
			const struct policy_category *c = policy_category(p, i);
			json_t *x = json_pack("{s:s, s:s, s:s?, s:b}", "code", c->code, "name", c->name,
			    "description", c->description, "custom", c->custom);
			for (int r = 0; r < 2; r++)
				json_object_set_new(x, role_label(r), json_pack("{s:b, s:f, s:s}", "shown",
				    !c->exclude[r], "threshold", (double)c->threshold[r], "action",
				    action_name(c->action[r])));
			json_array_append_new(cats, x);
		}
		json_object_set_new(o, "categories", cats);
		json_object_set_new(o, "prompt_categories", json_pack("{s:s, s:s}", "user", blk[0].p,
		    "assistant", blk[1].p));
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		printf("name: %s\nhash: %s\non_error: user %s, assistant %s\nstructure_spoof: %s\n"
		    "refusal: %s\n\n", policy_name(p), policy_hash(p),
		    action_name(policy_on_error_for(p, ROLE_REQUEST)),
		    action_name(policy_on_error_for(p, ROLE_RESPONSE)),
		    action_name(policy_spoof_action(p)), policy_refusal(p));
		printf("%-5s %-32s %-26s %s\n", "code", "name", "user: shown threshold action",
		    "assistant: shown threshold action");
		for (size_t i = 0; i < policy_n_categories(p); i++) {
			const struct policy_category *c = policy_category(p, i);
			printf("%-5s %-32.32s", c->code, c->name);
			for (int r = 0; r < 2; r++)
				printf(" %-8s %-9.4g %-7s ", c->exclude[r] ? "excluded" : "shown",
				    (double)c->threshold[r], action_name(c->action[r]));
			printf("%s\n", c->custom ? "(custom)" : "");
		}
		for (int r = 0; r < 2; r++)
			printf("\nthe categories the model sees for %s messages:\n%s\n", role_label(r), blk[r].p);
	}
	rc = EXIT_OK;
out:
	buf_free(&blk[0]);
	buf_free(&blk[1]);
	policy_free(p);
	return rc;
}

int
cmd_policy(int argc, char **argv)
{
	int as_json = 0;

	if (argc < 2)
		return usage();
	const char *sub = argv[1];
	argc -= 2;
	argv += 2;
	if (argc > 0 && strcmp(argv[0], "--json") == 0) {
		as_json = 1;
		argc--;
		argv++;
	}
	if (strcmp(sub, "check") == 0 && !as_json)
		return check(argc, argv);
	if (strcmp(sub, "diff") == 0)
		return diff(argc, argv, as_json);
	if (strcmp(sub, "show") == 0)
		return show(argc, argv, as_json);
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		usage();
		return EXIT_OK;
	}
	return usage();
}
