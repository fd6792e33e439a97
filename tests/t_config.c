/* t_config.c - guardd.yaml through config_load: the example file, the table's defaults,
 * every key of config_keys with good and bad values, absolute paths whatever -c was, and
 * one broken file per failure mode, each expecting its message (file:line:column, key). */
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "tap.h"

static char top[PATH_MAX];	/* the real temporary directory; the tests run in it */

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static struct config *
load_text(const char *text, struct err *e)
{
	write_file("c.yaml", text);
	return config_load("c.yaml", e);
}

#define BASE "listen: s.sock\nmodel: m.gguf\n"

/* One broken file per failure mode; line numbers count BASE's two lines. */
static const struct {
	const char *yaml, *want, *what;
} bads[] = {
	{ BASE "limits: {max_queue: 0}\n", "c.yaml:3:21: limits.max_queue: 0 is outside [1, 1048576]", "a limit below its range" },
	{ BASE "limits:\n  idle_timeout_ms: 9\n", "c.yaml:4:20: limits.idle_timeout_ms: 9 is outside [10, 86400000]",
	  "idle_timeout_ms below 10 ms" },
	{ BASE "limits:\n  max_inflight: 65537\n", "c.yaml:4:17: limits.max_inflight: 65537 is outside [1, 65536]",
	  "max_inflight too large" },
	{ BASE "limits:\n  output_high_water: 0\n", "limits.output_high_water: 0 is outside [1, 1073741824]",
	  "output_high_water 0" },
	{ BASE "threads: many\n", "c.yaml:3:10: threads: 'many' is not a number", "a word for a number" },
	{ BASE "threads: 0x10\n", "threads: '0x10' is not a number", "hexadecimal" },
	{ BASE "threads: 99999999999999999999\n", "threads: '99999999999999999999' is not a number", "an overflowing number" },
	{ BASE "batch: [4]\n", "c.yaml:3:8: batch: expected a number", "a list for a number" },
	{ BASE "socket_mode: 0999\n", "socket_mode: '0999' is not an octal mode", "a non-octal mode" },
	{ BASE "socket_mode: 01000\n", "c.yaml:3:14: socket_mode: 01000 is outside [0, 0777]", "a mode too large" },
	{ BASE "log: {content: some}\n", "c.yaml:3:16: log.content: 'some' is not one of none, sha256, full",
	  "an unknown log content" },
	{ BASE "log: {content: [none]}\n", "c.yaml:3:16: log.content: expected one of none, sha256, full", "a list for an enum" },
	{ BASE "log: {path: ''}\n", "c.yaml:3:13: log.path: expected a non-empty string", "an empty path" },
	{ BASE "user: \"a\\0b\"\n", "c.yaml:3:7: user: contains a NUL byte", "a NUL in a value" },
	{ BASE "modle: typo\n", "c.yaml:3:1: modle: unknown key 'modle' (listen, socket_mode, socket_group, user, "
	  "model, policy, policies, threads, batch, context, log, limits, allow_uids, allow_gids, control_uids, "
	  "control_gids, restart, generator, http, stream, cache, upstream)", "an unknown key, listing the valid ones" },
	{ BASE "http: {listen: [8080]}\n", "c.yaml:3:16: http.listen: the TCP listener '8080' needs "
	  "http.keys_file (or http.auth: none)", "a TCP listener without keys" },
	{ BASE "http: {listen: ['1.2.3.4:99999'], auth: none}\n", "c.yaml:3:17: http.listen: '1.2.3.4:99999' "
	  "is not a socket path (absolute) or host:port with a port in [1, 65535]", "a port out of range" },
	{ BASE "http: {listen: ['::1:80'], auth: none}\n", "c.yaml:3:17: http.listen: '::1:80': write an "
	  "IPv6 address in brackets", "IPv6 without brackets" },
	{ BASE "http: {listen: [/a.sock, /a.sock]}\n", "c.yaml:3:26: http.listen: '/a.sock' is listed twice",
	  "a listener twice" },
	{ BASE "http: {listen: /a.sock}\n", "c.yaml:3:16: http.listen: expected a list", "a listener not in a list" },
	{ BASE "http: {auth: maybe}\n", "c.yaml:3:14: http.auth: 'maybe' is not one of keys, none", "an unknown auth" },
	{ BASE "limits: {max_qeue: 5}\n", "c.yaml:3:10: limits.max_qeue: unknown key 'max_qeue' (max_request_bytes, "
	  "max_messages, max_image_bytes, max_images, max_queue, deadline_ms, max_connections, drain_ms, idle_timeout_ms, read_timeout_ms, "
	  "write_timeout_ms, max_inflight, output_high_water)", "an unknown limit" },
	{ BASE "limits.max_queue: 5\n", "c.yaml:3:1: limits.max_queue: unknown key 'limits.max_queue' (listen,",
	  "a dotted key is one name, not a path into limits" },
	{ BASE "log: {path: x, rotate: daily}\n", "c.yaml:3:16: log.rotate: unknown key 'rotate' (path, content)",
	  "an unknown log key" },
	{ BASE "restart: {min_ms: 100, max: 5}\n", "restart.max: unknown key 'max' (min_ms, max_ms)",
	  "an unknown restart key" },
	{ BASE "limits: 5\n", "c.yaml:3:9: limits: expected a mapping", "a number for a section" },
	{ BASE "restart:\n  min_ms: 500\n  max_ms: 200\n",
	  "c.yaml:5:11: restart.max_ms: 200 is less than restart.min_ms (500)", "restart.max_ms below min_ms" },
	{ BASE "restart:\n  min_ms: 20000\n", "c.yaml:4:11: restart.min_ms: 20000 is more than restart.max_ms (10000 by default)",
	  "restart.min_ms above the default max_ms" },
	{ BASE "restart: {min_ms: 0}\n", "restart.min_ms: 0 is outside [1, 60000]", "restart.min_ms 0" },
	{ BASE "allow_uids: 1000\n", "c.yaml:3:13: allow_uids: expected a list of numeric ids", "a number for a list" },
	{ BASE "control_uids: [0, -1]\n", "c.yaml:3:19: control_uids: -1 is outside [0, 2147483647]", "a negative uid" },
	{ BASE "control_gids: [root]\n", "c.yaml:3:16: control_gids: 'root' is not a number", "a group name for a gid" },
	{ BASE "control_gids: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,"
	  "32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65]\n",
	  "control_gids: more than 64 ids", "65 gids" },
	{ BASE "policies: {default: x.yaml}\n", "c.yaml:3:12: policies.default: 'default' is the name of 'policy'",
	  "a named policy called default" },
	{ BASE "policies: [a.yaml]\n", "c.yaml:3:11: policies: expected a mapping", "a list of policies" },
	{ BASE "policies: {a: 1.yaml, b: 2.yaml, c: 3.yaml, d: 4.yaml, e: 5.yaml, f: 6.yaml, g: 7.yaml, h: 8.yaml, "
	  "i: 9.yaml, j: 10.yaml, k: 11.yaml, l: 12.yaml, m: 13.yaml, n: 14.yaml, o: 15.yaml, p: 16.yaml}\n",
	  "policies.p: more than 15 named policies", "16 named policies" },
	{ BASE "listen: t.sock\n", "c.yaml:3:1: listen: duplicate key 'listen' (first on line 1)", "a duplicate key" },
	{ BASE "limits:\n  max_queue: 5\n  max_queue: 6\n", "c.yaml:5:3: limits.max_queue: duplicate key 'max_queue' "
	  "(first on line 4)", "a duplicate limit" },
	{ BASE "limits: {}\nlimits: {}\n", "c.yaml:4:1: limits: duplicate key 'limits' (first on line 3)",
	  "a duplicate section" },
	{ BASE "policies:\n  a: x.yaml\n  a: y.yaml\n", "c.yaml:5:3: policies.a: duplicate key 'a' (first on line 4)",
	  "a duplicate policy name" },
	{ BASE "\"mo\\0del\": x\n", "c.yaml:3:1: mo: a key must not contain a NUL byte", "a NUL in a key" },
	{ BASE "? [a]\n: 1\n", "c.yaml:3:3: keys must be plain strings", "a list as a key" },
	{ "model: m.gguf\n", "c.yaml: 'listen' is required (the Unix socket clients connect to)", "no listen" },
	{ "listen: s.sock\n", "c.yaml: 'model' is required", "no model" },
	{ "", "c.yaml: 'listen' is required", "an empty file" },
	{ "# only a comment\n", "c.yaml: 'listen' is required", "a file of comments" },
	{ "- listen\n", "c.yaml:1:1: expected a mapping", "a list for the document" },
	{ BASE "generator: {model: g.gguf, date: 31 Foo 2026}\n", "c.yaml:3:34: generator.date: "
	  "'31 Foo 2026' is not a date", "a date that is not %d %b %Y" },
	{ BASE "generator: {temperature: warm}\n", "c.yaml:3:26: generator.temperature: 'warm' is "
	  "not a number", "a temperature that is not a number" },
	{ BASE "listen: [\n", "c.yaml:4:1: YAML:", "broken YAML" },
	{ BASE "---\nlisten: x\n", "c.yaml:3:1: YAML: more than one document", "a second document" },
	{ "listen: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaa.sock\nmodel: m\n", "c.yaml:1:9: listen: '/run/aaaa", "a socket path longer than 107 bytes" },
};

/* the value of a key in c, as text */
static void
field_text(const struct config *c, const struct config_key *k, char *buf, size_t n)
{
	const char *p = (const char *)c + k->off;

	switch (k->type) {
	case CONFIG_INT: case CONFIG_ENUM: snprintf(buf, n, "%d", *(const int *)(const void *)p); break;
	case CONFIG_SIZE: snprintf(buf, n, "%zu", *(const size_t *)(const void *)p); break;
	case CONFIG_MODE: snprintf(buf, n, "%04o", *(const unsigned *)(const void *)p); break;
	case CONFIG_STRING: case CONFIG_PATH: snprintf(buf, n, "%s", *(char *const *)(const void *)p ?
	    *(char *const *)(const void *)p : "(null)"); break;
	case CONFIG_IDS: {
		int count = *(const int *)(const void *)((const char *)c + k->n_off);
		size_t used = (size_t)snprintf(buf, n, "%d:", count);
		for (int i = 0; i < count && used < n; i++)
			used += (size_t)snprintf(buf + used, n - used, " %u", ((const unsigned *)(const void *)p)[i]);
		break;
	}
	case CONFIG_LISTEN: {
		int count = *(const int *)(const void *)((const char *)c + k->n_off);
		size_t used = (size_t)snprintf(buf, n, "%d:", count);
		for (int i = 0; i < count && used < n; i++)
			used += (size_t)snprintf(buf + used, n - used, " %s", ((char *const *)(const void *)p)[i]);
		break;
	}
	case CONFIG_POLICIES: snprintf(buf, n, "%d", c->n_policies); break;
	case CONFIG_LONG: snprintf(buf, n, "%ld", *(const long *)(const void *)p); break;
	case CONFIG_MILLI: snprintf(buf, n, "%g", *(const double *)(const void *)p); break;
	}
}

/* "limits.max_queue: 5" as nested YAML after BASE */
static void
doc_with(char *out, size_t n, const char *path, const char *value)
{
	const char *dot = strchr(path, '.');

	if (dot)	/* restart.max_ms down to 1 needs min_ms below it */
		snprintf(out, n, "%s%.*s:\n%s  %s: %s\n", BASE, (int)(dot - path), path,
		    strcmp(path, "restart.max_ms") == 0 ? "  min_ms: 1\n" : "", dot + 1, value);
	else
		snprintf(out, n, "%s%s: %s\n", strcmp(path, "listen") == 0 || strcmp(path, "model") == 0 ?
		    strcmp(path, "listen") == 0 ? "model: m.gguf\n" : "listen: s.sock\n" : BASE, path, value);
}

/* k set to v, just outside its range (above: past the maximum; a LONG_MAX maximum's
 * "above" overflows, no number), is refused with the range named exactly */
static void
out_of_range(const struct config_key *k, const char *v, int above)
{
	char doc[512], range[128];
	struct err e;

	if (k->type == CONFIG_MILLI)
		snprintf(range, sizeof(range), "%s: %s is outside [%g, %g]", k->path, v,
		    (double)k->min / 1000, (double)k->max / 1000);
	else if (above && k->max == LONG_MAX)
		snprintf(range, sizeof(range), "%s: '%s' is not a number", k->path, v);
	else
		snprintf(range, sizeof(range), "%s: %s is outside [%ld, %ld]", k->path, v, k->min,
		    k->max);
	doc_with(doc, sizeof(doc), k->path, v);
	struct config *c = load_text(doc, &e);
	ok(c == NULL && strstr(e.msg, range), "%s: %s is refused (%s)", k->path, v, e.msg);
	config_free(c);
}

/* every key: a good value is stored, a bad one refused with the key named, ranges exact */
static void
test_table(void)
{
	char doc[512], got[512], want[512];
	struct err e;

	for (const struct config_key *k = config_keys; k->path; k++) {
		const char *good = NULL, *expect = NULL;
		char lo[32], hi[32], below[32], above[32];
		switch (k->type) {
		case CONFIG_STRING: good = "nobody"; expect = "nobody"; break;
		case CONFIG_PATH: good = "sub/x.y"; snprintf(want, sizeof(want), "%.400s/sub/x.y", top); expect = want; break;
		case CONFIG_INT: case CONFIG_SIZE: case CONFIG_LONG:
			snprintf(lo, sizeof(lo), "%ld", k->min);
			snprintf(hi, sizeof(hi), "%ld", k->max);
			snprintf(below, sizeof(below), "%ld", k->min - 1);
			if (k->max < LONG_MAX)
				snprintf(above, sizeof(above), "%ld", k->max + 1);
			else
				snprintf(above, sizeof(above), "%s", "9223372036854775808");
			good = hi;
			expect = hi;
			break;
		case CONFIG_MILLI:
			snprintf(lo, sizeof(lo), "%g", (double)k->min / 1000);
			snprintf(hi, sizeof(hi), "%g", (double)k->max / 1000);
			snprintf(below, sizeof(below), "%g", (double)k->min / 1000 - 0.5);
			snprintf(above, sizeof(above), "%g", (double)k->max / 1000 + 0.5);
			good = hi;
			expect = hi;
			break;
		case CONFIG_MODE: good = "0640"; expect = "0640"; break;
		case CONFIG_ENUM: good = k->choices[1]; expect = "1"; break;
		case CONFIG_IDS: good = "[0, 1000, 2147483647]"; expect = "3: 0 1000 2147483647"; break;
		case CONFIG_POLICIES: good = "{a: a.yaml, b: /b.yaml}"; expect = "3"; break;
		case CONFIG_LISTEN:
			good = "[/a.sock, ./b.sock]";
			snprintf(want, sizeof(want), "2: /a.sock %.400s/b.sock", top);
			expect = want;
			break;
		}
		if (strcmp(k->path, "restart.min_ms") == 0)	/* max_ms must stay above it */
			good = expect = "10000";
		if (strcmp(k->path, "generator.date") == 0)	/* checked as a date */
			good = expect = "30 Nov 2026";
		if (strcmp(k->path, "upstream.url") == 0)	/* checked as a URL */
			good = expect = "https://h.example:8443/v1";
		doc_with(doc, sizeof(doc), k->path, good);
		struct config *c = config_load((write_file("c.yaml", doc), "c.yaml"), &e);
		if (c)
			field_text(c, k, got, sizeof(got));
		ok(c && strcmp(got, expect) == 0, "%s: '%s' read as %s (%s)", k->path, good, c ? got : "-", c ? "" : e.msg);
		config_free(c);
		doc_with(doc, sizeof(doc), k->path, "[[nested]]");
		c = load_text(doc, &e);
		char named[128];
		snprintf(named, sizeof(named), "%s: ", k->path);
		ok(c == NULL && strstr(e.msg, named) && strstr(e.msg, "c.yaml:"), "%s: a nested list refused, named (%s)",
		    k->path, e.msg);
		config_free(c);
		if (k->type != CONFIG_INT && k->type != CONFIG_SIZE && k->type != CONFIG_LONG &&
		    k->type != CONFIG_MILLI)
			continue;
		doc_with(doc, sizeof(doc), k->path, lo);
		c = load_text(doc, &e);
		ok(c != NULL, "%s: its minimum %s is accepted (%s)", k->path, lo, c ? "" : e.msg);
		config_free(c);
		out_of_range(k, below, 0);
		out_of_range(k, above, 1);
	}
}

/* the defaults: the table's, and the values guardd documents */
static void
test_defaults(void)
{
	struct err e;
	struct config *c = load_text(BASE, &e);
	char got[512], def[64];

	if (!ok(c != NULL, "a minimal file loads (%s)", c ? "" : e.msg))
		return;
	for (const struct config_key *k = config_keys; k->path; k++) {
		field_text(c, k, got, sizeof(got));
		if (config_key_default(k, def, sizeof(def)) == NULL)
			ok(k->type == CONFIG_POLICIES ? strcmp(got, "1") == 0 :
			    k->type == CONFIG_IDS || k->type == CONFIG_LISTEN ?
			    strcmp(got, "0:") == 0 : (k->flags & CONFIG_REQUIRED) || strcmp(got, "(null)") == 0,
			    "%s: %s (%s)", k->path, k->flags & CONFIG_REQUIRED ? "required" : "unset by default", got);
		else if (k->type == CONFIG_ENUM)
			ok(strcmp(k->choices[atoi(got)], def) == 0, "%s: default %s", k->path, def);
		else
			ok(strcmp(got, def) == 0, "%s: default %s (%s)", k->path, def, got);
	}
	ok(c->idle_timeout_ms == 60000 && c->read_timeout_ms == 10000 && c->write_timeout_ms == 30000 &&
	    c->max_inflight == 32 && c->output_high_water == 1 << 20 && c->restart_min_ms == 100 &&
	    c->restart_max_ms == 10000 && c->n_control_uid == 0 && c->n_control_gid == 0,
	    "the hardening defaults of api.md");
	ok(c->socket_mode == 0660 && c->batch == 4 && c->context == 2048 && c->max_request_bytes == 1 << 20 &&
	    c->max_messages == 64 && c->max_queue == 256 && c->deadline_ms == 30000 && c->max_connections == 256 &&
	    c->drain_ms == 10000 && c->threads == 0 && c->log_content == LOG_CONTENT_NONE && c->log_path == NULL &&
	    c->user == NULL && c->n_policies == 1 && strcmp(c->policy[0].name, "default") == 0 &&
	    c->policy[0].path == NULL, "the other defaults, unchanged");
	config_free(c);
}

static int
mkdirs(const char *path)
{
	return mkdir(path, 0700) == 0 ? 0 : -1;
}

/* -c relative to another working directory: every path absolute, from the file's real
 * directory, and none of the files need exist */
static void
test_paths(void)
{
	char want[PATH_MAX + 64];
	struct err e;

	if (mkdirs("etc") || mkdirs("etc/sub") || mkdirs("elsewhere") || symlink("etc", "link") != 0) {
		ok(0, "cannot make the test directories");
		return;
	}
	write_file("etc/g.yaml", "listen: run/g.sock\nmodel: ../models/m.gguf\npolicy: p.yaml\n"
	    "policies: {strict: sub/strict.yaml, abs: /srv/abs.yaml}\nlog: {path: ./v.jsonl}\n");
	if (chdir("elsewhere") != 0) {
		ok(0, "chdir");
		return;
	}
	const char *ways[] = { "../etc/g.yaml", "../link/g.yaml", "./../etc/sub/../g.yaml" };
	for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		struct config *c = config_load(ways[i], &e);
		if (!ok(c != NULL, "-c %s from another directory loads (%s)", ways[i], c ? "" : e.msg))
			continue;
		snprintf(want, sizeof(want), "%s/etc/g.yaml", top);
		ok(strcmp(c->path, want) == 0, "-c %s: config->path %s", ways[i], c->path);
		snprintf(want, sizeof(want), "%s/etc/run/g.sock", top);
		ok(strcmp(c->listen, want) == 0, "-c %s: listen %s", ways[i], c->listen);
		snprintf(want, sizeof(want), "%s/etc/../models/m.gguf", top);
		ok(strcmp(c->model, want) == 0, "-c %s: model %s (need not exist)", ways[i], c->model);
		snprintf(want, sizeof(want), "%s/etc/p.yaml", top);
		ok(strcmp(c->policy[0].path, want) == 0, "-c %s: policy %s", ways[i], c->policy[0].path);
		snprintf(want, sizeof(want), "%s/etc/sub/strict.yaml", top);
		ok(c->n_policies == 3 && strcmp(c->policy[1].name, "strict") == 0 && strcmp(c->policy[1].path, want) == 0 &&
		    strcmp(c->policy[2].path, "/srv/abs.yaml") == 0, "-c %s: named policies %s, %s", ways[i],
		    c->policy[1].path, c->policy[2].path);
		snprintf(want, sizeof(want), "%s/etc/./v.jsonl", top);
		ok(strcmp(c->log_path, want) == 0, "-c %s: log.path %s", ways[i], c->log_path);
		config_free(c);
	}
	if (chdir("../etc") != 0) {
		ok(0, "chdir");
		return;
	}
	struct config *c = config_load("g.yaml", &e);
	snprintf(want, sizeof(want), "%s/etc/g.yaml", top);
	ok(c && strcmp(c->path, want) == 0 && c->listen[0] == '/', "-c g.yaml in its own directory: %s",
	    c ? c->path : e.msg);
	config_free(c);
	if (chdir(top) != 0)
		ok(0, "chdir");
	c = config_load("missing/g.yaml", &e);
	ok(c == NULL && strstr(e.msg, "missing/g.yaml"), "a missing file is named (%s)", e.msg);
}

/* etc/guardd.yaml with every commented-out setting ("# key: value") turned on */
static void
test_examples(const char *etc)
{
	char line[1024], path[] = "/tmp/t_config.ex.XXXXXX";
	FILE *in = fopen(etc, "r"), *out;
	int fd = mkstemp(path), on = 0;
	struct err e;

	if (in == NULL || fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		ok(0, "cannot copy %s", etc);
		return;
	}
	while (fgets(line, sizeof(line), in)) {
		size_t sp = strspn(line, " "), at = 0, w = 0;
		if (line[sp] == '#' && line[sp + 1] == ' ') {
			at = sp + 2 + strspn(line + sp + 2, " ");
			w = strspn(line + at, "abcdefghijklmnopqrstuvwxyz_");
		}
		if (w > 0 && line[at + w] == ':' && (line[at + w + 1] == ' ' || line[at + w + 1] == '\n')) {
			memmove(line + sp, line + sp + 2, strlen(line + sp + 2) + 1);
			on++;
		}
		fputs(line, out);
	}
	fclose(in);
	fclose(out);
	struct config *c = config_load(path, &e);
	ok(c != NULL && on >= 12, "etc/guardd.yaml with its %d commented settings on loads (%s)", on, c ? "" : e.msg);
	if (c)
		ok(c->n_policies == 2 && strcmp(c->policy[1].name, "strict") == 0 && c->socket_group &&
		    c->idle_timeout_ms == 60000 && c->max_inflight == 32 && c->n_control_uid == 1 &&
		    c->n_allow_gid == 1 && c->restart_min_ms == 100 && c->restart_max_ms == 10000,
		    "and has them: policies, socket_group, limits, control and allow lists, restart");
	config_free(c);
	unlink(path);
}

int
main(int argc, char **argv)
{
	char etc[PATH_MAX], tmpl[] = "/tmp/t_config.XXXXXX";
	struct err e;

	(void)argc;
	(void)argv;
	/* the example file as shipped, read from the source tree */
	if (realpath("etc/guardd.yaml", etc) == NULL)
		skip_all("etc/guardd.yaml not found: run from the source tree");
	struct config *c = config_load("etc/guardd.yaml", &e);
	if (ok(c != NULL, "etc/guardd.yaml loads (%s)", c ? "" : e.msg)) {
		ok(strcmp(c->listen, "/run/guardd/guardd.sock") == 0 && strcmp(c->user, "guardd") == 0 &&
		    strcmp(c->policy[0].path, "/etc/guardd/policy.yaml") == 0 && c->socket_mode == 0660,
		    "etc/guardd.yaml: listen, user, policy, socket_mode");
		ok(strcmp(c->path, etc) == 0, "etc/guardd.yaml: config->path is absolute (%s)", c->path);
		config_free(c);
	}
	test_examples(etc);
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, top) == NULL || chdir(top) != 0) {
		printf("Bail out! no temporary directory\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		c = load_text(bads[i].yaml, &e);
		ok(c == NULL && strstr(e.msg, bads[i].want) != NULL, "refuses %s: '%s' (%s)", bads[i].what, bads[i].want,
		    c ? "loaded" : e.msg);
		config_free(c);
	}
	test_defaults();
	test_table();
	test_paths();

	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (chdir("/") != 0 || system(cmd) != 0)
		diag("could not remove %s", top);
	return done_testing();
}
