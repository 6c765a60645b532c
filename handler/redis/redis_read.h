/* redis_read.h - read records and relationships written by redis_sink.
 *
 * For the read API: one record is one round trip (HGETALL of its hash);
 * a relationship is one round trip for the member list and one more,
 * pipelined, for all the members' records. Everything returned lives in
 * the caller's arena (copied out of the replies), so its ceiling bounds
 * what one read may take. No retries: a read that fails is answered as
 * unavailable and the client retries. */
#ifndef D365CDC_REDIS_READ_H
#define D365CDC_REDIS_READ_H

#include "common/arena.h"
#include "map/doc.h"
#include "redis/redis_mux.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum redis_record_state {
  RREC_ABSENT = 0, /* never written, expired, or only a re-read marker */
  RREC_LIVE,
  RREC_DELETED /* a tombstone: the latest change applied was a Delete */
};

/* One stored property. */
struct redis_read_prop {
  const char *name;
  const char *json; /* value as JSON text, exactly as written */
  size_t json_len;
  const struct doc_annotation *ann; /* e.g. FormattedValue; nann may be 0 */
  size_t nann;
  char version_text[CDC_VERSION_TEXT_LEN + 1]; /* the change that wrote it */
};

struct redis_record {
  const char *table; /* as asked */
  const char *id;
  enum redis_record_state state;
  char version_text[CDC_VERSION_TEXT_LEN + 1];    /* latest change applied; "" when none */
  int64_t op_time_ms;                             /* its OperationCreatedOn; 0 when none */
  char deleted_version[CDC_VERSION_TEXT_LEN + 1]; /* latest Delete; "" when none */
  bool needs_reread;                              /* a truncated change was seen */
  char reread_version[CDC_VERSION_TEXT_LEN + 1];  /* its version; "" when none */
  const struct redis_read_prop *props;            /* sorted by name (strcmp) */
  size_t nprops;
};

/* deadline_ms: sink_now_ms() clock; 0 means now + syncTimeout. */

/* Read one record in one round trip. Results:
 *   APP_OK           *out filled (state RREC_ABSENT when there is nothing)
 *   APP_ERR_INPUT    table or id cannot be a key (redis_sink_name_ok)
 *   APP_ERR_LIMIT    the arena ceiling was reached
 *   APP_ERR_REDIS    an error reply (e.g. WRONGTYPE: the key holds something
 *                    else), malformed stored data (the message names the
 *                    record and, for a p: field, the property), a record in
 *                    the earlier v:/m: layout (docs/redis.md), or the
 *                    connection broke
 *   APP_ERR_TIMEOUT, APP_ERR_TLS: as redis_pool_acquire / redis_conn_exchange
 * Strings in *out live in arena a. */
APP_NODISCARD enum app_result redis_read_record(struct redis_mux *mux, const char *prefix,
                                                struct arena *a, const char *table, const char *id,
                                                int64_t deadline_ms, struct redis_record *out,
                                                struct app_err *err);

/* Read n records (refs[i].table, refs[i].id) in one pipelined round trip
 * into out[0..n). Same results as redis_read_record. */
APP_NODISCARD enum app_result redis_read_records(struct redis_mux *mux, const char *prefix,
                                                 struct arena *a, const struct doc_related *refs,
                                                 size_t n, int64_t deadline_ms,
                                                 struct redis_record *out, struct app_err *err);

/* The records currently related to (table, id) through relationship (its
 * schema name), in one round trip: *out_members (arena a) gets table, id
 * and entity set of each associated member, sorted by table then id;
 * disassociated members are left out. Same results as redis_read_record. */
APP_NODISCARD enum app_result redis_read_related(struct redis_mux *mux, const char *prefix,
                                                 struct arena *a, const char *table, const char *id,
                                                 const char *relationship, int64_t deadline_ms,
                                                 struct doc_related **out_members, size_t *out_n,
                                                 struct app_err *err);

/* Up to max members of the set at key (SRANDMEMBER key max: all of them
 * when the set has at most max), in one round trip; an absent key is an
 * empty set. For alternate-key indexes (map/altkey.h). Same results as
 * redis_read_record (APP_ERR_REDIS also when key holds something else). */
APP_NODISCARD enum app_result redis_read_set(struct redis_mux *mux, struct arena *a,
                                             const char *key, size_t key_len, size_t max,
                                             int64_t deadline_ms, const char ***out_members,
                                             size_t *out_n, struct app_err *err);

/* The record (table, id) and up to max members of each set set_keys[i]
 * (index sets, map/altkey.h), in one pipelined round trip: for $expand of
 * collections, whose index keys are known from the id. members[i] and
 * nmembers[i] (arrays of nsets) are filled. Same results as
 * redis_read_record. */
APP_NODISCARD enum app_result
redis_read_record_sets(struct redis_mux *mux, const char *prefix, struct arena *a,
                       const char *table, const char *id, const char *const *set_keys, size_t nsets,
                       size_t max, int64_t deadline_ms, struct redis_record *out,
                       const char ***members, size_t *nmembers, struct app_err *err);

#endif
