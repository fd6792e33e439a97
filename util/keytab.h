/* keytab.h - lookups in a table of dotted key paths ("limits.max_queue"): guardd's
 * configuration keys and the policy's keys are each an array of structs whose first member
 * is the path (const char *), ended by an entry with a NULL path. This file knows paths,
 * not what the tables' other fields mean. */
#ifndef GUARDD_KEYTAB_H
#define GUARDD_KEYTAB_H

#include <stddef.h>

struct keytab {
	const void *base;	/* the first entry: its first member is const char *path */
	size_t size;		/* one entry's size */
};

/* the view of an array of such structs */
#define KEYTAB(arr) ((struct keytab){ (arr), sizeof((arr)[0]) })

/* The entry whose path is path, or NULL. */
const void *keytab_find(struct keytab t, const char *path);

/* Whether the table has keys under path ("limits" for "limits.max_queue"). */
int keytab_is_level(struct keytab t, const char *path);

/* The distinct names directly under level ("" for the top), in table order, for messages:
 * "threshold, action, categories"; cut to fit n bytes. */
void keytab_level_keys(struct keytab t, const char *level, char *out, size_t n);

#endif
