/* benchutil.h - what the benchmark tools share (header-only): a clock in
 * microseconds and the comparison for sorting samples to take medians. */
#ifndef D365CDC_BENCHUTIL_H
#define D365CDC_BENCHUTIL_H

#include <time.h>

/* clock: CLOCK_MONOTONIC for wall time, CLOCK_THREAD_CPUTIME_ID for the
 * calling thread's CPU time */
static inline double bench_us(clockid_t clock)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* qsort comparison of doubles, ascending */
static inline int bench_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#endif
