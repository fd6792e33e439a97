/* spoof.h - does message text imitate the Llama Guard 3 prompt's scaffolding? The text is
 * folded first (look-alike characters to ASCII, invisible characters removed, every line
 * separator a newline, blanks around ':' '<' '>' '|' dropped) so obfuscated scaffolding is
 * found too. Folding is for detection only: the prompt always gets the text unchanged. */
#ifndef GUARDD_SPOOF_H
#define GUARDD_SPOOF_H

#include <stddef.h>

/* Folds n bytes of (possibly invalid) UTF-8 into out, which must hold n bytes; returns the
 * folded length (never more than n). Linear; invalid bytes become 0x7f, which no scaffold
 * string contains. The rules, in order, for each code point:
 *   - removed: zero-width and format characters (U+200B-U+200F, U+2060-U+206F, U+FEFF,
 *     U+00AD, U+034F, U+061C, U+180B-U+180F, bidi controls U+202A-U+202E, U+2066-U+2069,
 *     Hangul fillers), variation selectors, combining marks, tag begin/cancel;
 *   - newline: \n \r \v \f U+001C-U+001E U+0085 U+2028 U+2029;
 *   - blank: space, tab, U+001F, U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000;
 *   - ASCII: fullwidth forms U+FF01-U+FF5E, mathematical, enclosed and squared letters and
 *     digits, tag characters U+E0020-U+E007E, and Cyrillic, Greek, Armenian and Latin
 *     letters and brackets, bars and colons that Unicode lists as confusable with ASCII;
 *   - ASCII letters are lower-cased; anything else is kept as it is.
 * Blank runs become one space, and none is kept at a line's start or end or next to
 * ':' '<' '>' '|'. */
size_t spoof_fold(const char *s, size_t n, char *out);

/* Adds the scaffolding reasons found in one text to reasons[*nr .. max) (each reason once;
 * reasons are static strings). Returns -1 when out of memory (nothing added), else 0. */
int spoof_scan(const char *s, size_t n, const char **reasons, int *nr, int max);

#endif
