/* spoof.c - structure-spoof detection: message text folded to a canonical form (see
 * spoof.h), then searched for the Llama Guard 3 template's scaffold strings. Linear in the
 * text: one folding pass, then memmem (two-way, linear) per scaffold string and one pass
 * over the lines. Look-alike tables follow Unicode's NFKC and confusables.txt for the
 * characters that can pass for the scaffolding's ASCII. */
#include "classifier/spoof.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"

enum { F_DROP = -1, F_NL = -2, F_BLANK = -3, F_KEEP = -4, F_BAD = 0x7f };

/* Decodes one UTF-8 sequence of at most n bytes: its length, or 0 when invalid
 * (truncated, overlong, surrogate, beyond U+10FFFF). */
static size_t
utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		k = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4, c &= 0x07, min = 0x10000;
	} else
		return 0;
	if (n < k)
		return 0;
	for (size_t j = 1; j < k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[j] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return k;
}

/* single code points that pass for ASCII (sorted) */
static const struct {
	uint32_t cp;
	char to;
} LOOK[] = {
	{ 0x0130, 'i' }, { 0x0131, 'i' }, { 0x01c0, '|' }, { 0x0237, 'j' }, { 0x0251, 'a' },
	{ 0x0261, 'g' }, { 0x02c2, '<' }, { 0x02c3, '>' }, { 0x02d0, ':' },
	/* Greek */
	{ 0x0391, 'a' }, { 0x0392, 'b' }, { 0x0395, 'e' }, { 0x0396, 'z' }, { 0x0397, 'h' },
	{ 0x0399, 'i' }, { 0x039a, 'k' }, { 0x039c, 'm' }, { 0x039d, 'n' }, { 0x039f, 'o' },
	{ 0x03a1, 'p' }, { 0x03a4, 't' }, { 0x03a5, 'y' }, { 0x03a7, 'x' }, { 0x03b9, 'i' },
	{ 0x03ba, 'k' }, { 0x03bd, 'v' }, { 0x03bf, 'o' }, { 0x03c1, 'p' }, { 0x03c5, 'u' },
	{ 0x03c7, 'x' }, { 0x03f2, 'c' }, { 0x03f3, 'j' },
	/* Cyrillic */
	{ 0x0405, 's' }, { 0x0406, 'i' }, { 0x0408, 'j' }, { 0x0410, 'a' }, { 0x0412, 'b' },
	{ 0x0415, 'e' }, { 0x041a, 'k' }, { 0x041c, 'm' }, { 0x041d, 'h' }, { 0x041e, 'o' },
	{ 0x0420, 'p' }, { 0x0421, 'c' }, { 0x0422, 't' }, { 0x0423, 'y' }, { 0x0425, 'x' },
	{ 0x0430, 'a' }, { 0x0435, 'e' }, { 0x043e, 'o' }, { 0x0440, 'p' }, { 0x0441, 'c' },
	{ 0x0443, 'y' }, { 0x0445, 'x' }, { 0x0455, 's' }, { 0x0456, 'i' }, { 0x0458, 'j' },
	{ 0x04ae, 'y' }, { 0x04af, 'y' }, { 0x04ba, 'h' }, { 0x04bb, 'h' }, { 0x04c0, 'l' },
	{ 0x0501, 'd' }, { 0x051b, 'q' }, { 0x051d, 'w' },
	/* Armenian, Hebrew, Devanagari, Canadian syllabics, runic */
	{ 0x0570, 'h' }, { 0x0578, 'n' }, { 0x057d, 'u' }, { 0x0585, 'o' }, { 0x0589, ':' },
	{ 0x05c0, '|' }, { 0x05c3, ':' }, { 0x0964, '|' }, { 0x1433, '>' }, { 0x1438, '<' },
	{ 0x16ec, ':' },
	/* quotation marks, letterlike symbols, math, box drawing, CJK brackets */
	{ 0x2039, '<' }, { 0x203a, '>' }, { 0x2102, 'c' }, { 0x210a, 'g' }, { 0x210b, 'h' },
	{ 0x210c, 'h' }, { 0x210d, 'h' }, { 0x210e, 'h' }, { 0x2110, 'i' }, { 0x2111, 'i' },
	{ 0x2112, 'l' }, { 0x2113, 'l' }, { 0x2115, 'n' }, { 0x2119, 'p' }, { 0x211a, 'q' },
	{ 0x211b, 'r' }, { 0x211c, 'r' }, { 0x211d, 'r' }, { 0x2124, 'z' }, { 0x2128, 'z' },
	{ 0x212a, 'k' }, { 0x212c, 'b' }, { 0x212d, 'c' }, { 0x212f, 'e' }, { 0x2130, 'e' },
	{ 0x2131, 'f' }, { 0x2133, 'm' }, { 0x2134, 'o' }, { 0x2139, 'i' }, { 0x2223, '|' },
	{ 0x2236, ':' }, { 0x2329, '<' }, { 0x232a, '>' }, { 0x23d0, '|' }, { 0x2502, '|' },
	{ 0x2758, '|' }, { 0x276e, '<' }, { 0x276f, '>' }, { 0x27e8, '<' }, { 0x27e9, '>' },
	{ 0x3008, '<' }, { 0x3009, '>' }, { 0xa789, ':' }, { 0xfe13, ':' }, { 0xfe4d, '_' },
	{ 0xfe4e, '_' }, { 0xfe4f, '_' }, { 0xfe55, ':' }, { 0xfe64, '<' }, { 0xfe65, '>' },
	{ 0xffe8, '|' },
};

/* ranges removed before matching: invisible or combining */
static const uint32_t DROP[][2] = {
	{ 0x00ad, 0x00ad }, { 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x061c, 0x061c },
	{ 0x115f, 0x1160 }, { 0x17b4, 0x17b5 }, { 0x180b, 0x180f }, { 0x1ab0, 0x1aff },
	{ 0x1dc0, 0x1dff }, { 0x200b, 0x200f }, { 0x202a, 0x202e }, { 0x2060, 0x206f },
	{ 0x20d0, 0x20ff }, { 0x3164, 0x3164 }, { 0xfe00, 0xfe0f }, { 0xfe20, 0xfe2f },
	{ 0xfeff, 0xfeff }, { 0xffa0, 0xffa0 }, { 0xfff9, 0xfffb }, { 0x1bca0, 0x1bca3 },
	{ 0x1d173, 0x1d17a }, { 0xe0000, 0xe001f }, { 0xe007f, 0xe0fff },
};

static int
ascii_fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* a letter of a run of 26 capitals followed by 26 small letters */
static int
letter52(uint32_t off)
{
	off %= 52;
	return off < 26 ? 'a' + (int)off : 'a' + (int)off - 26;
}

/* What a code point folds to: an ASCII byte, or F_DROP, F_NL, F_BLANK, F_KEEP. */
static int
fold_cp(uint32_t cp)
{
	if (cp < 0x80) {
		if (cp == '\n' || cp == '\v' || cp == '\f' || cp == '\r' || (cp >= 0x1c && cp <= 0x1e))
			return F_NL;
		if (cp == ' ' || cp == '\t' || cp == 0x1f)
			return F_BLANK;
		if (cp < 0x20 || cp == 0x7f)
			return F_DROP;	/* other control characters show nothing */
		return ascii_fold((int)cp);
	}
	if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
		return F_NL;
	if (cp < 0xa0)
		return F_DROP;	/* C1 controls */
	if (cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f ||
	    cp == 0x205f || cp == 0x3000)
		return F_BLANK;
	if (cp >= 0xff01 && cp <= 0xff5e)	/* fullwidth ASCII */
		return ascii_fold((int)(cp - 0xfee0));
	if (cp >= 0xe0020 && cp <= 0xe007e)	/* tag characters: invisible ASCII */
		return fold_cp(cp - 0xe0000);
	if (cp >= 0x1d400 && cp <= 0x1d6a3)	/* mathematical letters: 13 styles of A-Z a-z */
		return letter52(cp - 0x1d400);
	if (cp >= 0x1d7ce && cp <= 0x1d7ff)	/* mathematical digits: 5 styles of 0-9 */
		return '0' + (int)((cp - 0x1d7ce) % 10);
	if (cp >= 0x24b6 && cp <= 0x24e9)	/* circled letters */
		return letter52(cp - 0x24b6);
	if ((cp >= 0x1f130 && cp <= 0x1f149) || (cp >= 0x1f150 && cp <= 0x1f169) ||
	    (cp >= 0x1f170 && cp <= 0x1f189))	/* squared and negative letters */
		return 'a' + (int)((cp - 0x1f130) % 0x20);
	if (cp >= 0x1f1e6 && cp <= 0x1f1ff)	/* regional indicators */
		return 'a' + (int)(cp - 0x1f1e6);
	for (size_t i = 0; i < sizeof(DROP) / sizeof(DROP[0]); i++)
		if (cp >= DROP[i][0] && cp <= DROP[i][1])
			return F_DROP;
	size_t lo = 0, hi = sizeof(LOOK) / sizeof(LOOK[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (LOOK[mid].cp == cp)
			return LOOK[mid].to;
		if (LOOK[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return F_KEEP;
}

/* no blank is kept next to these */
static int
tight(char c)
{
	return c == '<' || c == '>' || c == '|' || c == ':' || c == '\n';
}

size_t
spoof_fold(const char *s, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;
	int blank = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = utf8_decode(p + i, n - i, &cp);
		int f = k == 0 ? F_BAD : fold_cp(cp);
		size_t at = i;
		i += k == 0 ? 1 : k;
		if (f == F_DROP)
			continue;
		if (f == F_BLANK) {
			blank = 1;
			continue;
		}
		if (f == F_NL) {
			out[o++] = '\n';	/* a line's trailing blanks are dropped */
			blank = 0;
			continue;
		}
		/* one space for a blank run, charged to its first byte: out never outgrows s */
		char c = f == F_KEEP ? (char)p[at] : (char)f;
		if (blank && o > 0 && !tight(out[o - 1]) && !tight(c))
			out[o++] = ' ';
		blank = 0;
		if (f == F_KEEP) {
			memcpy(out + o, p + at, k);
			o += k;
		} else
			out[o++] = c;
	}
	return o;
}

/* scaffold strings found anywhere (their text is the reason) */
static const char *const TAGS[] = {
	"<BEGIN CONVERSATION>", "<END CONVERSATION>", "<BEGIN UNSAFE CONTENT CATEGORIES>",
	"<END UNSAFE CONTENT CATEGORIES>", "Task: Check if there is unsafe content",
	"Provide your safety assessment", "First line must read", "list of violated categories",
	"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
	"<|eom_id|>", "<|end_of_text|>", "<|python_tag|>", "<|finetune_right_pad_id|>",
	"<|reserved_special_token",
};
/* reasons for lines */
static const char R_USER[] = "User:", R_AGENT[] = "Agent:", R_CAT[] = "S<n>:",
    R_SAFE[] = "safe", R_UNSAFE[] = "unsafe", R_OOM[] = "not checked: out of memory";

static void
add(const char *r, const char **reasons, int *nr, int max)
{
	for (int i = 0; i < *nr; i++)
		if (reasons[i] == r)
			return;
	if (*nr < max)
		reasons[(*nr)++] = r;
}

static int
starts(const char *s, size_t n, const char *what)
{
	size_t k = strlen(what);

	return n >= k && memcmp(s, what, k) == 0;
}

/* a folded line (no leading blank): conversation lines, category lines, answers */
static void
scan_line(const char *s, size_t n, const char **reasons, int *nr, int max)
{
	if (starts(s, n, "user:"))
		add(R_USER, reasons, nr, max);
	if (starts(s, n, "agent:"))
		add(R_AGENT, reasons, nr, max);
	if (n >= 3 && s[0] == 's' && s[1] >= '0' && s[1] <= '9') {
		size_t d = 1;
		while (d < n && s[d] >= '0' && s[d] <= '9')
			d++;
		if (d < n && s[d] == ':')
			add(R_CAT, reasons, nr, max);
	}
	if (n == 4 && memcmp(s, "safe", 4) == 0)
		add(R_SAFE, reasons, nr, max);
	if (n == 6 && memcmp(s, "unsafe", 6) == 0)
		add(R_UNSAFE, reasons, nr, max);
}

int
spoof_scan(const char *s, size_t n, const char **reasons, int *nr, int max)
{
	char *f = malloc(n ? n : 1), tag[64];

	if (f == NULL)
		return -1;
	size_t fn = spoof_fold(s, n, f);
	for (size_t t = 0; t < sizeof(TAGS) / sizeof(TAGS[0]); t++) {
		size_t tn = spoof_fold(TAGS[t], strlen(TAGS[t]), tag);	/* < 64: constants */
		if (memmem(f, fn, tag, tn) != NULL)
			add(TAGS[t], reasons, nr, max);
	}
	for (size_t a = 0; a <= fn;) {
		const char *nl = memchr(f + a, '\n', fn - a);
		size_t b = nl ? (size_t)(nl - f) : fn;
		scan_line(f + a, b - a, reasons, nr, max);
		a = b + 1;
	}
	free(f);
	return 0;
}

int
prompt_spoof(const struct conv *c, const char **reasons, int max)
{
	int n = 0;

	for (size_t i = 0; i < c->n; i++)
		for (size_t k = 0; k < c->msg[i].n_parts; k++)
			if (spoof_scan(c->msg[i].parts[k], c->msg[i].part_len[k], reasons, &n, max) == -1)
				add(R_OOM, reasons, &n, max);	/* unchecked is reported, not passed */
	return n;
}
