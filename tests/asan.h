/* asan.h - UNDER_ASAN: 1 when this test binary is built with AddressSanitizer (make
 * check-asan). The tests that repeat one computation over many cases scale it down there:
 * the sanitizers look for memory errors, and one case per code path finds them, while the
 * plain make check keeps every case. Each scale-down prints "# ASan: ..." naming what it
 * left out, and asserts everything on what it ran. */
#ifndef TESTS_ASAN_H
#define TESTS_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#endif
