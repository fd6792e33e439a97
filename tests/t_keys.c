/* t_keys.c - the key tables and their manuals agree: every key of config_keys is an item
 * of guardd.yaml(5) that states its default, every key of policy_keys one of
 * guard-policy(5), and every key a manual documents is in its table. */
#include <ctype.h>

#include "daemon/config.h"
#include "policy/policy.h"
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
	return done_testing();
}
