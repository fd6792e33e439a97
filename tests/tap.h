/* tap.h - minimal TAP output for the C tests (run under prove). */
#ifndef GUARDD_TAP_H
#define GUARDD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_fail;

static inline int
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	char msg[2048];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	for (const char *c = msg; *c; c++)	/* one TAP line: escape newlines */
		if (*c == '\n')
			fputs("\\n", stdout);
		else
			putchar(*c);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_fail++;
	return cond;
}

static inline void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_fail ? 1 : 0;
}

static inline void
skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

/* ../shared next to the checkout (or $GUARDD_SHARED) */
static inline const char *
shared_dir(void)
{
	static char path[4096];
	const char *env = getenv("GUARDD_SHARED");
	FILE *fp;

	snprintf(path, sizeof(path), "%s", env ? env : "../shared");
	char probe[4200];
	snprintf(probe, sizeof(probe), "%s/reference/README.md", path);
	if ((fp = fopen(probe, "r")) == NULL)
		return NULL;
	fclose(fp);
	return path;
}

#endif
