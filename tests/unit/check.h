/* check.h - the test framework: a failure counter and a few macros.
 *
 * CHECK(cond) records a failure with file:line and goes on; the test binary
 * exits 1 if any check failed (check_report). Exit 77 means "skipped". */
#ifndef D365CDC_CHECK_H
#define D365CDC_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;
static const char *check_case = "";

#define TEST_CASE(name) (check_case = (name))

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    check_count++;                                                                                 \
    if (!(cond)) {                                                                                 \
      check_failures++;                                                                            \
      fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, check_case, #cond);             \
    }                                                                                              \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
  do {                                                                                             \
    check_count++;                                                                                 \
    if (!(cond)) {                                                                                 \
      check_failures++;                                                                            \
      fprintf(stderr, "FAIL %s:%d [%s]: %s: ", __FILE__, __LINE__, check_case, #cond);             \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

#define CHECK_STREQ(a, b)                                                                          \
  do {                                                                                             \
    const char *check_a_ = (a), *check_b_ = (b);                                                   \
    check_count++;                                                                                 \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                               \
      check_failures++;                                                                            \
      fprintf(stderr, "FAIL %s:%d [%s]: %s == %s\n  got:      %s\n  expected: %s\n", __FILE__,     \
              __LINE__, check_case, #a, #b, check_a_ ? check_a_ : "(null)",                        \
              check_b_ ? check_b_ : "(null)");                                                     \
    }                                                                                              \
  } while (0)

#define CHECK_INTEQ(a, b)                                                                          \
  do {                                                                                             \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                \
    check_count++;                                                                                 \
    if (check_a_ != check_b_) {                                                                    \
      check_failures++;                                                                            \
      fprintf(stderr, "FAIL %s:%d [%s]: %s == %s (got %lld, expected %lld)\n", __FILE__, __LINE__, \
              check_case, #a, #b, check_a_, check_b_);                                             \
    }                                                                                              \
  } while (0)

/* contains: haystack has needle as a substring */
#define CHECK_CONTAINS(hay, needle)                                                                \
  do {                                                                                             \
    const char *check_h_ = (hay), *check_n_ = (needle);                                            \
    check_count++;                                                                                 \
    if (!check_h_ || !strstr(check_h_, check_n_)) {                                                \
      check_failures++;                                                                            \
      fprintf(stderr, "FAIL %s:%d [%s]: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,     \
              check_case, check_h_ ? check_h_ : "(null)", check_n_);                               \
    }                                                                                              \
  } while (0)

static inline int check_report(const char *suite)
{
  fprintf(stderr, "%s: %d checks, %d failed\n", suite, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
