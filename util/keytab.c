/* keytab.c - lookups in a table of dotted key paths, by a linear walk: the tables are a
 * few dozen entries, read when a file is loaded. */
#include "util/keytab.h"

#include <stdio.h>
#include <string.h>

/* the path of entry i (NULL: the end) */
static const char *
path_at(struct keytab t, size_t i)
{
	return *(const char *const *)(const void *)((const char *)t.base + i * t.size);
}

const void *
keytab_find(struct keytab t, const char *path)
{
	const char *p;

	for (size_t i = 0; (p = path_at(t, i)) != NULL; i++)
		if (strcmp(p, path) == 0)
			return (const char *)t.base + i * t.size;
	return NULL;
}

int
keytab_is_level(struct keytab t, const char *path)
{
	size_t n = strlen(path);
	const char *p;

	for (size_t i = 0; (p = path_at(t, i)) != NULL; i++)
		if (strncmp(p, path, n) == 0 && p[n] == '.')
			return 1;
	return 0;
}

void
keytab_level_keys(struct keytab t, const char *level, char *out, size_t n)
{
	size_t ll = strlen(level), used = 0;
	const char *p;

	out[0] = '\0';
	for (size_t i = 0; (p = path_at(t, i)) != NULL && used < n; i++) {
		if (ll && (strncmp(p, level, ll) != 0 || p[ll] != '.'))
			continue;
		size_t at = ll ? ll + 1 : 0, len = strcspn(p + at, ".");
		int dup = 0;
		/* a name shared by several keys ("limits" of limits.a, limits.b) is listed once */
		for (size_t j = 0; j < i && !dup; j++) {
			const char *o = path_at(t, j);
			dup = strncmp(o, p, at + len) == 0 && (o[at + len] == '.' || o[at + len] == '\0');
		}
		if (!dup)
			used += (size_t)snprintf(out + used, n - used, "%s%.*s", used ? ", " : "", (int)len,
			    p + at);
	}
}
