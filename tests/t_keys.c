/* t_keys.c - the key tables and their manuals agree: every key of config_keys is an item
 * of guardd.yaml(5) that states its default, every key of policy_keys one of
 * guard-policy(5), and every key a manual documents is in its table; and the lookups both
 * loaders make in their tables (util/keytab.h) on a table of their own. */
#include <ctype.h>

#include "daemon/config.h"
#include "policy/policy.h"
#include "util/keytab.h"
#include "tap.h"

#define MAX_ITEMS 128

/* A manual's key items: ".It Ic name" lines, nested by .Bl/.El into dotted paths, each
 * with its own text (up to the next .It, .Bl or .El). */
struct item {
	char path[128];
	char text[2048];
};

static int
read_items(const char *file, struct item *items, int max)
{
	FILE *fp = fopen(file, "r");
	char line[1024], *stack[16] = { 0 }, names[16][64];
	int depth = 0, n = 0;
	struct item *cur = NULL;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, ".Bl", 3) == 0 || strncmp(line, ".El", 3) == 0) {
			depth += line[1] == 'B' ? 1 : -1;
			if (depth < 0 || depth >= 16)
				break;
			stack[depth] = NULL;
			cur = NULL;
		} else if (strncmp(line, ".It", 3) == 0) {
			cur = NULL;
			stack[depth] = NULL;
			if (strncmp(line, ".It Ic ", 7) != 0 || depth < 1)
				continue;
			snprintf(names[depth], sizeof(names[depth]), "%.*s", (int)strcspn(line + 7, " "), line + 7);
			stack[depth] = names[depth];
			char path[128] = "";
			int whole = 1;
			for (int d = 1; d <= depth; d++) {
				if (stack[d] == NULL) {
					whole = 0;
					break;
				}
				size_t used = strlen(path);
				snprintf(path + used, sizeof(path) - used, "%s%s", used ? "." : "", stack[d]);
			}
			if (!whole || n == max)
				continue;
			cur = &items[n++];
			snprintf(cur->path, sizeof(cur->path), "%s", path);
			snprintf(cur->text, sizeof(cur->text), "%s", line + 7 + strlen(names[depth]));
		} else if (cur != NULL) {
			size_t used = strlen(cur->text);
			snprintf(cur->text + used, sizeof(cur->text) - used, " %s", line);
		}
	}
	fclose(fp);
	return n;
}

static const struct item *
find_item(const struct item *items, int n, const char *path)
{
	for (int i = 0; i < n; i++)
		if (strcmp(items[i].path, path) == 0)
			return &items[i];
	return NULL;
}

/* whether text says "default" and has word as a word of its own */
static int
states_default(const char *text, const char *word)
{
	size_t n = strlen(word);

	if (strstr(text, "efault") == NULL)
		return 0;
	for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
		if ((p == text || (!isalnum((unsigned char)p[-1]) && p[-1] != '_')) &&
		    !isalnum((unsigned char)p[n]) && p[n] != '_')
			return 1;
	return 0;
}

/* a table path as the manual nests it: CODE levels are the list of one category */
static void
man_path(const char *path, char *out, size_t n)
{
	size_t used = 0;

	out[0] = '\0';
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, ".");
		if (!(len == 4 && strncmp(p, "CODE", 4) == 0) && used < n)
			used += (size_t)snprintf(out + used, n - used, "%s%.*s", used ? "." : "", (int)len, p);
		p += len + (p[len] == '.');
	}
}

/* whether path is a key of a table (given as man paths) or a level above some */
static int
in_table(const char *path, char keys[][128], int nkeys)
{
	size_t n = strlen(path);

	for (int i = 0; i < nkeys; i++)
		if (strncmp(keys[i], path, n) == 0 && (keys[i][n] == '\0' || keys[i][n] == '.'))
			return 1;
	return 0;
}

static void
check(const char *man, char keys[][128], const char *const *defs, int nkeys, const char *table)
{
	static struct item items[MAX_ITEMS];
	int n = read_items(man, items, MAX_ITEMS);

	if (!ok(n > 0, "%s: %d key items read", man, n))
		return;
	for (int i = 0; i < nkeys; i++) {
		const struct item *it = find_item(items, n, keys[i]);
		if (!ok(it != NULL, "%s documents %s", man, keys[i]) || defs[i] == NULL)
			continue;
		ok(states_default(it->text, defs[i]), "%s: %s states its default %s", man, keys[i], defs[i]);
	}
	for (int i = 0; i < n; i++)
		ok(in_table(items[i].path, keys, nkeys), "%s: %s is in %s", man, items[i].path, table);
}

/* a table shaped like the loaders': the path first, then fields of its own */
struct tkey {
	const char *path;
	int id;
};

static void
keytab_cases(void)
{
	static const struct tkey tab[] = {
		{ "name", 1 }, { "limits.a", 2 }, { "limits.b", 3 }, { "limits.deep.c", 4 },
		{ "log.path", 5 }, { "limitsx", 6 }, { NULL, 0 },
	};
	struct keytab t = KEYTAB(tab);
	const struct tkey *k;
	char out[64];

	k = keytab_find(t, "limits.b");
	ok(k != NULL && k->id == 3, "keytab_find: limits.b is entry 3 (%d)", k ? k->id : -1);
	ok(keytab_find(t, "limits") == NULL, "keytab_find: a level is no key");
	ok(keytab_find(t, "limits.") == NULL && keytab_find(t, "") == NULL,
	    "keytab_find: no key for a prefix or the empty path");
	ok(keytab_is_level(t, "limits") && keytab_is_level(t, "limits.deep"),
	    "keytab_is_level: limits and limits.deep have keys under them");
	ok(!keytab_is_level(t, "name") && !keytab_is_level(t, "limit") && !keytab_is_level(t, "nope"),
	    "keytab_is_level: not a key, a part of a name, or an absent name");
	keytab_level_keys(t, "", out, sizeof(out));
	ok(strcmp(out, "name, limits, log, limitsx") == 0, "level_keys of the top, each name once: '%s'",
	    out);
	keytab_level_keys(t, "limits", out, sizeof(out));
	ok(strcmp(out, "a, b, deep") == 0, "level_keys of limits: '%s'", out);
	keytab_level_keys(t, "nope", out, sizeof(out));
	ok(strcmp(out, "") == 0, "level_keys of an absent level is empty: '%s'", out);
	keytab_level_keys(t, "", out, 10);
	ok(strcmp(out, "name, lim") == 0, "level_keys cut to fit 10 bytes: '%s'", out);
}

int
main(void)
{
	static char keys[MAX_ITEMS][128], defbuf[MAX_ITEMS][64];
	const char *defs[MAX_ITEMS];
	int n = 0;

	for (const struct config_key *k = config_keys; k->path && n < MAX_ITEMS; k++, n++) {
		snprintf(keys[n], sizeof(keys[n]), "%s", k->path);
		defs[n] = config_key_default(k, defbuf[n], sizeof(defbuf[n]));
	}
	check("man/guardd.yaml.5", keys, defs, n, "config_keys");
	n = 0;
	for (const struct policy_key *k = policy_keys; k->path && n < MAX_ITEMS; k++, n++) {
		man_path(k->path, keys[n], sizeof(keys[n]));
		defs[n] = k->def;
	}
	check("man/guard-policy.5", keys, defs, n, "policy_keys");
	keytab_cases();
	return done_testing();
}
