/* driver.c - runs a libFuzzer-style target without libFuzzer: every file of the corpus
 * directories given (in name order), then a deterministic stream of mutations of them (bit
 * flips, byte changes, truncations, insertions, splices), so `make check` fuzzes a little
 * on every run with plain gcc. Built with clang -fsanitize=fuzzer instead (make fuzz), the
 * same target runs under libFuzzer.
 * It reports what it did, and only that: the number of files replayed and of mutated inputs
 * executed. A crash (a signal, or an abort from a target's own check) is caught, named with
 * the input that caused it (and how to run that one alone), and the driver exits non-zero;
 * under ASan/UBSan a finding ends the process with the sanitizer's report and status.
 * Usage: fuzz_X [-n mutations] [-only K] DIR...   (-only K: run mutation K alone) */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 1024
#define MAX_LEN (1 << 19)

struct seed {
	uint8_t *p;
	size_t n;
	char *name;
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
/* what is running, for the crash report */
static volatile sig_atomic_t cur_mut = -1, cur_test = 1;	/* the TAP test running */
static const char *volatile cur_file;

static uint64_t
next(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void
say(const char *s)
{
	ssize_t w = write(1, s, strlen(s));

	(void)w;
}

/* async-signal-safe: a TAP failure naming the input, then the default action */
static void
on_crash(int sig)
{
	char num[24];
	int i = 23;
	long v = cur_mut;

	say(cur_test == 1 ? "not ok 1" : "not ok 2");
	say(" - the target crashed (signal ");
	num[i] = '\0';
	int s = sig;
	do { num[--i] = (char)('0' + s % 10); s /= 10; } while (s);
	say(num + i);
	if (v >= 0) {
		i = 23;
		do { num[--i] = (char)('0' + v % 10); v /= 10; } while (v);
		say(") on mutated input #");
		say(num + i);
		say(" (run it alone with -only ");
		say(num + i);
		say(")\n");
	} else {
		say(") on corpus file ");
		say(cur_file ? cur_file : "?");
		say("\n");
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
load(const char *path, struct seed *s)
{
	FILE *fp = fopen(path, "rb");

	if (fp == NULL)
		return -1;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	s->p = malloc((size_t)n + 1);
	s->n = fread(s->p, 1, (size_t)n, fp);
	s->name = strdup(path);
	fclose(fp);
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* the next mutated input in buf (the stream is the same on every run) */
static size_t
mutate(const struct seed *seeds, int ns, uint8_t *buf)
{
	const struct seed *s = &seeds[next() % (uint64_t)ns];
	size_t n = s->n < MAX_LEN ? s->n : MAX_LEN;

	memcpy(buf, s->p, n);
	int edits = 1 + (int)(next() % 4);
	for (int e = 0; e < edits; e++) {
		uint64_t r = next();
		switch (r % 6) {
		case 0: if (n) buf[(r >> 8) % n] ^= (uint8_t)(1u << ((r >> 40) % 8)); break;
		case 1: if (n) buf[(r >> 8) % n] = (uint8_t)(r >> 32); break;
		case 2: if (n) n = (r >> 8) % n; break;	/* truncate */
		case 3: {	/* insert a byte */
			size_t at = n ? (r >> 8) % (n + 1) : 0;
			if (n + 1 < 2 * MAX_LEN) {
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)(r >> 32);
				n++;
			}
			break;
		}
		case 4: if (n >= 4) {	/* an interesting 32-bit value */
			static const uint32_t v[] = { 0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff,
				0x80000000u, 0xffffffffu, 0x100 };
			uint32_t x = v[(r >> 8) % 10];
			memcpy(buf + (r >> 16) % (n - 3), &x, 4);
		}
			break;
		case 5: {	/* splice another seed's tail */
			const struct seed *o = &seeds[(r >> 8) % (uint64_t)ns];
			size_t at = n ? (r >> 16) % n : 0, from = o->n ? (r >> 32) % o->n : 0;
			size_t k = o->n - from;
			if (at + k > MAX_LEN)
				k = MAX_LEN - at;
			memcpy(buf + at, o->p + from, k);
			n = at + k;
			break;
		}
		}
	}
	return n;
}

int
main(int argc, char **argv)
{
	static struct seed seeds[MAX_SEEDS];
	int ns = 0, nmut = 2000, skipped = 0;
	long only = -1;

	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGFPE, on_crash);
	signal(SIGILL, on_crash);
	signal(SIGABRT, on_crash);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			nmut = atoi(argv[++i]);
			continue;
		}
		if (strcmp(argv[i], "-only") == 0 && i + 1 < argc) {
			only = atol(argv[++i]);
			continue;
		}
		struct dirent **de;
		int nd = scandir(argv[i], &de, NULL, by_name);
		if (nd < 0) {
			printf("not ok 1 - %s: cannot read the corpus directory\n1..1\n", argv[i]);
			return 1;
		}
		for (int k = 0; k < nd; k++) {
			char path[4096];
			if (de[k]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], de[k]->d_name);
				if (ns == MAX_SEEDS)
					skipped++;
				else if (load(path, &seeds[ns]) == 0)
					ns++;
			}
			free(de[k]);
		}
		free(de);
	}
	if (ns == 0) {
		printf("not ok 1 - no corpus files\n1..1\n");
		return 1;
	}
	if (only < 0) {
		for (int i = 0; i < ns; i++) {
			cur_file = seeds[i].name;
			LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].n);
		}
		printf("ok 1 - replayed the %d corpus files, each ran to its end%s\n", ns,
		    skipped ? " (more than 1024: the rest not replayed)" : "");
		fflush(stdout);
	}
	cur_test = only < 0 ? 2 : 1;
	uint8_t *buf = malloc(2 * MAX_LEN);
	long done = 0;
	for (long m = 0; m < nmut && (only < 0 || m <= only); m++) {
		size_t n = mutate(seeds, ns, buf);
		if (only >= 0 && m != only)
			continue;
		/* an exact-size copy, so ASan sees any read past the input's end */
		uint8_t *in = malloc(n ? n : 1);
		memcpy(in, buf, n);
		cur_mut = m;
		LLVMFuzzerTestOneInput(in, n);
		cur_mut = -1;
		free(in);
		done++;
	}
	if (only >= 0)
		printf("ok 1 - mutated input #%ld ran to its end\n1..1\n", only);
	else
		printf("ok 2 - %ld mutated inputs executed, each ran to its end\n1..2\n", done);
	free(buf);
	for (int i = 0; i < ns; i++) {
		free(seeds[i].p);
		free(seeds[i].name);
	}
	return 0;
}
