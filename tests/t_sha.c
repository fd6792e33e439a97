/* t_sha.c - SHA-256: the SHA-extension and portable code paths agree with each other and with
 * sha256sum, for every length around the block and padding boundaries and for a large
 * buffer fed in uneven pieces. */
#include <unistd.h>

#include "util/sha256.h"
#include "tap.h"

static void
hex_of(const unsigned char *p, size_t n, size_t piece, char out[65])
{
	struct sha256 s;
	unsigned char d[32];

	sha256_init(&s);
	for (size_t i = 0; i < n; i += piece)
		sha256_update(&s, p + i, n - i < piece ? n - i : piece);
	sha256_final(&s, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int
main(void)
{
	enum { BIG = 3 << 20 };
	unsigned char *buf = malloc(BIG);
	char a[65], b[65], want[65] = "", path[] = "/tmp/guardd-sha-XXXXXX", cmd[100];
	uint32_t x = 1;

	for (size_t i = 0; i < BIG; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
	int ni = sha256_force_portable(0);
	diag("SHA extensions %s on this CPU", ni ? "available" : "not available");
	int same = 1;
	for (size_t n = 0; n <= 300; n++) {
		sha256_force_portable(0);
		hex_of(buf, n, 1000, a);
		sha256_force_portable(1);
		hex_of(buf, n, 7, b);
		same &= strcmp(a, b) == 0;
	}
	ok(same, "lengths 0-300: both code paths, whole and in 7-byte pieces, agree");
	sha256_hex("abc", 3, a);
	ok(strcmp(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	    "FIPS 180-4 example 'abc'");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, buf, BIG) != BIG) {
		printf("Bail out! cannot write %s\n", path);
		return 1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	FILE *fp = popen(cmd, "r");
	if (fp == NULL || fscanf(fp, "%64s", want) != 1)
		want[0] = '\0';
	if (fp)
		pclose(fp);
	unlink(path);
	sha256_force_portable(0);
	hex_of(buf, BIG, 1 << 20, a);
	sha256_force_portable(1);
	hex_of(buf, BIG, 4099, b);
	ok(strlen(want) == 64 && strcmp(a, want) == 0 && strcmp(b, want) == 0,
	    "3 MiB: both paths give sha256sum's digest (%.16s...)", want);
	free(buf);
	return done_testing();
}
