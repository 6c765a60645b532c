/* sink.c - small helpers shared by the sinks. */
#include "map/sink.h"

#include <time.h>

int64_t sink_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cancelled;

void sink_cancel_all(void)
{
  __atomic_store_n(&cancelled, 1, __ATOMIC_RELEASE);
}

bool sink_cancelled(void)
{
  return __atomic_load_n(&cancelled, __ATOMIC_ACQUIRE) != 0;
}

bool sink_sleep_ms(int64_t ms)
{
  while (ms > 0) {
    int64_t slice = ms > 50 ? 50 : ms;
    struct timespec ts;
    if (sink_cancelled())
      return false;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)slice * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {
    }
    ms -= slice;
  }
  return !sink_cancelled();
}
