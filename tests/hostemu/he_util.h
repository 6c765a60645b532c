/* he_util.h - small helpers of the host emulator: clocks, identifiers,
 * .NET-style date text, files.
 *
 * Nothing here allocates except he_file_read (caller frees). */
#ifndef D365CDC_HE_UTIL_H
#define D365CDC_HE_UTIL_H

#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* .NET ticks (100 ns) between 0001-01-01 and 1970-01-01. */
#define HE_TICKS_UNIX_EPOCH 621355968000000000LL
#define HE_NS_PER_MS        1000000LL

/* Monotonic clock in nanoseconds (for intervals and deadlines). */
int64_t he_now_ns(void);
/* Wall clock as 100 ns ticks since 1970-01-01 UTC (.NET DateTime precision). */
int64_t he_wall_ticks(void);

/* Seed the generator from getrandom(); call once at start. Not
 * cryptographic: identifiers only need to be unique. */
void he_rng_seed(void);
uint64_t he_rng_u64(void);

/* A random version-4 GUID in the .NET "D" format, lower case:
 * "0f8fad5b-d9cb-469f-a165-70867728950e" (36 chars + NUL). */
void he_guid(char out[37]);
/* The same 128 random bits as 32 lower-case hex digits (.NET "N" format,
 * what the Service Bus SDKs use for generated MessageIds). */
void he_guid_n(char out[33]);

/* Date text as the Functions host writes it. unix_ticks is 100 ns ticks
 * since 1970-01-01 UTC. Returns the length written into out (>= 40 bytes).
 *   HE_DATE_SECONDS        "2024-05-01T10:22:31"          (DateTime, Kind Unspecified,
 *                                                          after DateTime.Parse(ToString()))
 *   HE_DATE_SECONDS_OFFSET "2024-05-01T10:22:31+00:00"    (DateTimeOffset, same path)
 *   HE_DATE_FULL           "2024-05-01T10:22:31.123"      (Newtonsoft IsoDateFormat,
 *                                                          FFFFFFF: trailing zeros dropped)
 *   HE_DATE_FULL_Z         "2024-05-01T10:22:31.1234567Z" (DateTime Kind Utc)
 *   HE_DATE_FULL_OFFSET    "2024-05-01T10:22:31.123+00:00"(DateTimeOffset)
 *   HE_DATE_INVARIANT      "05/01/2024 10:22:31"          (DateTime.ToString(InvariantCulture)) */
enum he_date_fmt {
  HE_DATE_SECONDS,
  HE_DATE_SECONDS_OFFSET,
  HE_DATE_FULL,
  HE_DATE_FULL_Z,
  HE_DATE_FULL_OFFSET,
  HE_DATE_INVARIANT
};
size_t he_date_format(int64_t unix_ticks, enum he_date_fmt fmt, char out[48]);

/* Read a whole file (at most max bytes). *out is NUL-terminated and the
 * caller frees it with free(). Errors: APP_ERR_IO (open/read failed, text
 * names the path and errno), APP_ERR_LIMIT (larger than max). */
APP_NODISCARD enum app_result he_file_read(const char *path, size_t max, char **out,
                                           size_t *out_len, struct app_err *err);

/* Write data to path atomically enough for tests (create/truncate, 0644).
 * Errors: APP_ERR_IO. */
APP_NODISCARD enum app_result he_file_write(const char *path, const void *data, size_t len,
                                            struct app_err *err);

/* Create a directory and its parents (mode 0755); existing is fine.
 * Errors: APP_ERR_IO. */
APP_NODISCARD enum app_result he_mkdirs(const char *path, struct app_err *err);

/* Join dir and name with one '/' into out (caller frees with free()). */
char *he_path_join(const char *dir, const char *name);

/* Case-insensitive ASCII comparison helpers. */
bool he_streq_ci(const char *a, const char *b);
bool he_has_suffix_ci(const char *s, const char *suffix);

/* Parse a non-negative decimal integer in [min, max]; false on junk. */
bool he_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parse a .NET TimeSpan text "[d.]hh:mm:ss[.fffffff]" or "-1"-style
 * negative into milliseconds; false if it is not one. *out_ms < 0 means
 * "infinite" (negative TimeSpan such as "-00:00:01" or "-1"). */
bool he_parse_timespan_ms(const char *s, int64_t *out_ms);

#endif
