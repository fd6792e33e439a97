/* driver.c - runs a libFuzzer-style target without libFuzzer: every file of the corpus
 * directories given, then a deterministic stream of mutations of them (bit flips, byte
 * changes, truncations, insertions, splices), so `make check` fuzzes a little on every run
 * with plain gcc. Built with clang -fsanitize=fuzzer instead (make fuzz), the same target
 * runs under libFuzzer. Usage: fuzz_X [-n mutations] DIR... */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seed {
	uint8_t *p;
	size_t n;
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t
next(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
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
	fclose(fp);
	return 0;
}

int
main(int argc, char **argv)
{
	struct seed seeds[512];
	int ns = 0, nmut = 2000, files = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			nmut = atoi(argv[++i]);
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL && ns < 512) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (load(path, &seeds[ns]) == 0) {
				LLVMFuzzerTestOneInput(seeds[ns].p, seeds[ns].n);
				ns++;
				files++;
			}
		}
		if (d)
			closedir(d);
	}
	if (ns == 0) {
		printf("not ok 1 - no corpus files\n1..1\n");
		return 1;
	}
	printf("ok 1 - replayed %d corpus files\n", files);
	uint8_t *buf = malloc(1 << 20);
	for (int m = 0; m < nmut; m++) {
		struct seed *s = &seeds[next() % (uint64_t)ns];
		size_t n = s->n < (1 << 19) ? s->n : (1 << 19);
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
				if (n + 1 < (1 << 20)) {
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
				struct seed *o = &seeds[(r >> 8) % (uint64_t)ns];
				size_t at = n ? (r >> 16) % n : 0, from = o->n ? (r >> 32) % o->n : 0;
				size_t k = o->n - from;
				if (at + k > (1 << 19))
					k = (1 << 19) - at;
				memcpy(buf + at, o->p + from, k);
				n = at + k;
				break;
			}
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("ok 2 - %d mutated inputs, no crash\n1..2\n", nmut);
	free(buf);
	for (int i = 0; i < ns; i++)
		free(seeds[i].p);
	return 0;
}
