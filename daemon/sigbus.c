/* sigbus.c - see sigbus.h. */
#include "daemon/sigbus.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RANGES 64

static struct { uintptr_t lo, hi; } ranges[MAX_RANGES];
static int n_ranges;
static atomic_int tripped;

static void
handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, page = (uintptr_t)sysconf(_SC_PAGESIZE);

	(void)uc;
	for (int i = 0; i < n_ranges; i++)
		if (a >= ranges[i].lo && a < ranges[i].hi) {
			uintptr_t from = a & ~(page - 1);
			if (mmap((void *)from, ranges[i].hi - from, PROT_READ, MAP_PRIVATE |
			    MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
				atomic_store(&tripped, 1);
				return;	/* the read is retried, now on zeros */
			}
			break;
		}
	/* not ours (or the remap failed): die as we would have */
	signal(sig, SIG_DFL);
	raise(sig);
}

int
sigbus_guard(const char *path)
{
	char real[4096], line[4096 + 128];
	struct sigaction sa;
	FILE *fp;

	/* /proc/self/maps names files by their canonical path */
	if (realpath(path, real) == NULL || (fp = fopen("/proc/self/maps", "r")) == NULL)
		return -1;
	path = real;
	size_t plen = strlen(path);
	while (fgets(line, sizeof(line), fp) && n_ranges < MAX_RANGES) {
		unsigned long lo, hi;
		int off = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || off == 0)
			continue;
		char *name = line + off;
		name[strcspn(name, "\n")] = '\0';
		/* the file itself, or a file inside the model directory */
		if (strncmp(name, path, plen) == 0 && (name[plen] == '\0' || name[plen] == '/' ||
		    path[plen - 1] == '/')) {
			ranges[n_ranges].lo = lo;
			ranges[n_ranges].hi = hi;
			n_ranges++;
		}
	}
	fclose(fp);
	if (n_ranges == 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL);
}

int
sigbus_tripped(void)
{
	return atomic_load(&tripped);
}
