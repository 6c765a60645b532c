/* test_redis_sink_timeout.c - a pipeline's timeout grows with its size
 * (redis_sink_pipeline_timeout_ms, issue 17 item 3): a 60 MB batch must
 * not be cut off by the syncTimeout meant for one small command. */
#include "redis/redis_sink.h"
#include "check.h"

int main(void)
{
  TEST_CASE("a small pipeline: syncTimeout");
  CHECK_INTEQ(redis_sink_pipeline_timeout_ms(5000, 0, 0), 5000);
  CHECK_INTEQ(redis_sink_pipeline_timeout_ms(5000, 3000, 1), 5000);

  TEST_CASE("bytes at 10 MB/s and 0.1 ms per command on top");
  CHECK_INTEQ(redis_sink_pipeline_timeout_ms(5000, 62u * 1000 * 1000, 45), 5000 + 6200 + 4);
  CHECK_INTEQ(redis_sink_pipeline_timeout_ms(1000, 3u * 1000 * 1000, 1000), 1000 + 300 + 100);

  TEST_CASE("the largest body the handler takes (64 MiB) stays well inside a minute");
  CHECK(redis_sink_pipeline_timeout_ms(5000, 64u << 20, 64u << 10) < 60000);
  return check_report("test_redis_sink_timeout");
}
