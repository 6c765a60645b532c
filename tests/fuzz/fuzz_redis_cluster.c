/* fuzz_redis_cluster - libFuzzer over what the Redis Cluster client parses
 * from the network or from its own pipelines: RESP commands (which key a
 * command routes by), MOVED/ASK error texts, and CLUSTER SHARDS / CLUSTER
 * SLOTS replies (the input read as RESP by hiredis, as off the wire).
 * Invariants (abort on violation): a command's length is within the input
 * and its slot in -1..16383; a redirection's slot and port are in range
 * and its host fits; every parsed range is within 0..16383 with lo <= hi,
 * a non-empty host and a port in 1..65535. */
#include "redis/redis_cluster.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* hiredis 0.14 allocates an array for the element count a reply declares
 * before any element arrives; a count far beyond the input is that
 * allocation, not our parser, so such inputs skip the reader */
static bool huge_count(const char *p, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) {
    size_t v = 0, k = i + 1;
    if (p[i] != '*' && p[i] != '$' && p[i] != '%' && p[i] != '~' && p[i] != '>')
      continue;
    while (k < n && p[k] >= '0' && p[k] <= '9' && v <= 1000000)
      v = v * 10 + (size_t)(p[k++] - '0');
    if (v > 1000000 || v > 64 * n)
      return true;
  }
  return false;
}

static void check_topology(const struct rcl_topology *t)
{
  size_t i;
  for (i = 0; i < t->n; i++) {
    const struct rcl_range *r = &t->ranges[i];
    if (r->lo < 0 || r->hi >= RCL_SLOTS || r->lo > r->hi || !r->host[0] || r->port < 1 ||
        r->port > 65535 || strlen(r->host) >= sizeof r->host)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data;
  size_t used = 0;
  int slot = 0;
  {
    /* commands, one after the other */
    size_t off = 0;
    while (off < size && redis_cluster_cmd_slot(p + off, size - off, &used, &slot)) {
      if (used == 0 || used > size - off || slot < -1 || slot >= RCL_SLOTS)
        abort();
      off += used;
    }
  }
  {
    bool ask;
    int port = 0;
    char host[64];
    if (redis_cluster_redirect(p, size, &ask, &slot, host, sizeof host, &port) &&
        (slot < 0 || slot >= RCL_SLOTS || port < 1 || port > 65535 || strlen(host) >= sizeof host))
      abort();
  }
  (void)redis_cluster_key_slot(p, size);
  {
    redisReader *rd = huge_count(p, size) ? NULL : redisReaderCreate();
    void *reply = NULL;
    if (rd) {
      redisReaderFeed(rd, p, size);
      if (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
        struct rcl_topology t;
        struct app_err err;
        if (redis_cluster_parse_shards(reply, size & 1, "seed", &t, &err) == APP_OK) {
          check_topology(&t);
          redis_cluster_topology_free(&t);
        }
        if (redis_cluster_parse_slots(reply, "seed", &t, &err) == APP_OK) {
          check_topology(&t);
          redis_cluster_topology_free(&t);
        }
        freeReplyObject(reply);
      }
      redisReaderFree(rd);
    }
  }
  return 0;
}
