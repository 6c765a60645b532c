/* mapping.h - the mapping configuration and the per-change verdict.
 *
 * One JSON file (docs/mapping.md), read once at start-up with cJSON and
 * validated strictly: an unknown key, a wrong type or a contradiction
 * (keep and drop overlapping, a rename onto another column, hash masking
 * without a salt...) fails start-up with a message naming the file and the
 * JSON path, e.g.
 *   mapping.json: tables.account.mask.emailaddress1: expected "hash" or "redact", got "md5"
 *
 * The loaded struct map_config is immutable and shared by all threads.
 * map_change decides whether a change is wanted (table, message, echo,
 * relationship filters) and, if so, maps it into a document (docmap.h). */
#ifndef D365CDC_MAPPING_H
#define D365CDC_MAPPING_H

#include "common/arena.h"
#include "common/config.h"
#include "map/doc.h"
#include "common/result.h"

#include <stddef.h>
#include <stdint.h>

/* The largest mapping file accepted. */
#define MAP_MAX_FILE_BYTES (4u * 1024u * 1024u)
/* The shortest salt accepted for "hash" masking, in bytes. */
#define MAP_MIN_SALT_BYTES 16
/* Longest table, column, property or entity set name. */
#define MAP_MAX_NAME 128
/* Most alternate keys per table, and columns per key. */
#define MAP_MAX_KEYS        10
#define MAP_MAX_KEY_COLUMNS 5
/* Largest ttl_seconds (ten years). */
#define MAP_MAX_TTL_SECONDS 315360000

struct map_config;

/* Parse and validate a mapping file held in memory. name_for_errors
 * prefixes every message (e.g. "mapping.json"). lookup reads app settings
 * (NULL: getenv); it is called only for the setting named by "salt_setting"
 * and only when a column uses "hash" masking.
 * Returns APP_OK and *out (caller frees with map_config_free), or
 * APP_ERR_CONFIG with a message naming the file, the JSON path and what was
 * wrong (never the salt). */
APP_NODISCARD enum app_result map_config_parse(const char *text, size_t len,
                                               const char *name_for_errors, config_lookup_fn lookup,
                                               struct map_config **out, struct app_err *err);

/* Read and parse the file at path (errors are prefixed with path).
 * Returns APP_OK, APP_ERR_CONFIG (invalid, empty, larger than
 * MAP_MAX_FILE_BYTES) or APP_ERR_IO (cannot open or read it). */
APP_NODISCARD enum app_result map_config_load(const char *path, config_lookup_fn lookup,
                                              struct map_config **out, struct app_err *err);

/* The built-in defaults: every table, the default messages, every column
 * (same as the file {"tables": {"*": {}}}). Caller frees with map_config_free. */
APP_NODISCARD enum app_result map_config_default(struct map_config **out, struct app_err *err);

/* Load what the app settings say: CDC_MAPPING_FILE (relative paths are
 * resolved against FUNCTIONS_APP_ROOT_PATH, or the working directory when
 * that is empty); when it is empty, mapping.json in the app root if that
 * file exists, else the built-in defaults. A file named explicitly that
 * does not exist is an error (APP_ERR_IO). Same results as map_config_load. */
APP_NODISCARD enum app_result map_config_load_settings(const struct app_config *settings,
                                                       config_lookup_fn lookup,
                                                       struct map_config **out,
                                                       struct app_err *err);

/* Where the configuration came from: the file path, or "built-in defaults".
 * Borrowed, valid until map_config_free. */
const char *map_config_source(const struct map_config *cfg);

/* Free everything (the salt copy is wiped first). NULL-safe. */
void map_config_free(struct map_config *cfg);

enum map_verdict {
  MAP_ACCEPT = 0,
  MAP_SKIP_TABLE,       /* table not accepted (not listed and no "*", or skip_tables) */
  MAP_SKIP_MESSAGE,     /* message not in the table's "messages" */
  MAP_SKIP_ECHO,        /* written by a suppressed user or user agent */
  MAP_SKIP_RELATIONSHIP /* Associate/Disassociate of a relationship not kept */
};

/* Short stable name: "accept", "skip-table", "skip-message", "skip-echo",
 * "skip-relationship". Never NULL. */
const char *map_verdict_str(enum map_verdict v);

/* Decide about one change and map it. Checks run in this order: table,
 * message, echo, relationship; the first that fails gives the verdict.
 * Returns:
 *   APP_OK         *out_verdict set; when MAP_ACCEPT, *out is filled (its
 *                  memory is in a and borrowed from *ch, see docmap.h)
 *   APP_ERR_INPUT  poison: the change fails validation (no table or id,
 *                  Associate without a relationship, a required column
 *                  missing or null, ...); err names the table, record and
 *                  column
 *   APP_ERR_LIMIT  the arena ceiling was reached
 *   APP_ERR_NOMEM  hashing failed in OpenSSL */
APP_NODISCARD enum app_result map_change(const struct map_config *cfg, struct arena *a,
                                         const struct cdc_change *ch, enum map_verdict *out_verdict,
                                         struct doc *out, struct app_err *err);

/* What the configuration says about one table, whether or not it is
 * listed (unlisted tables get the "*" settings and computed names).
 * Strings are borrowed from cfg or allocated in a. */
struct map_table_info {
  bool accepted; /* changes of this table are mapped (listed, or "*" applies) */
  const char *entity_set;
  const char *key_name;
  const char *sql_table;
  int64_t ttl_seconds;
  /* Web API $select for a snapshot: the key, versionnumber, modifiedon and
   * the kept columns ("lookups" columns as _<name>_value); NULL when every
   * column is kept (no $select). */
  const char *select;
};

/* Returns APP_OK, APP_ERR_INPUT (table is not a logical name) or
 * APP_ERR_LIMIT (arena). */
APP_NODISCARD enum app_result map_table_info(const struct map_config *cfg, struct arena *a,
                                             const char *table, struct map_table_info *out,
                                             struct app_err *err);

/* The table whose entity set is entity_set: a listed table with that
 * "entity_set", else the accepted table whose default plural it is
 * ("opportunities" -> "opportunity", "addresses" -> "address").
 * Writes the logical name to out (outsz bytes). Returns APP_OK or
 * APP_ERR_NOTFOUND (no accepted table has that entity set). */
APP_NODISCARD enum app_result map_table_for_entity_set(const struct map_config *cfg,
                                                       const char *entity_set, char *out,
                                                       size_t outsz);

/* A single-valued navigation property (tables.<t>.navigation.<name>):
 * $expand=<name> reads the record of table `table` whose id is in the
 * lookup column `lookup` (the Web API property `property`, "_<lookup>_value"). */
struct map_nav {
  bool collection;      /* 1:N ("referencing"): records of table whose lookup names this one */
  const char *name;     /* e.g. "primarycontactid" */
  const char *table;    /* target table, e.g. "contact"; accepted by the mapping */
  const char *lookup;   /* lookup column logical name, e.g. "primarycontactid"; for a
                           collection the related table's referencing column */
  const char *property; /* "_primarycontactid_value" (on the related table for a collection) */
};

/* The navigation property `name` of a listed table (case-sensitive, as
 * Dataverse). Returns APP_OK (*out borrowed from cfg) or APP_ERR_NOTFOUND. */
APP_NODISCARD enum app_result map_navigation(const struct map_config *cfg, const char *table,
                                             const char *name, struct map_nav *out);

/* The alternate key of a listed table made of exactly the columns cols
 * (in any order; tables.<t>.keys). APP_OK (*out borrowed from cfg) or
 * APP_ERR_NOTFOUND. */
APP_NODISCARD enum app_result map_altkey(const struct map_config *cfg, const char *table,
                                         const char *const *cols, size_t ncols,
                                         const struct doc_altkey **out);

/* The index (tables.<t>.indexes, or a single-column alternate key) on
 * column (a logical name: "parentcustomerid" for the lookup property
 * _parentcustomerid_value). APP_OK or APP_ERR_NOTFOUND. */
APP_NODISCARD enum app_result map_index(const struct map_config *cfg, const char *table,
                                        const char *column, const struct doc_altkey **out);

/* The default Web API entity set of a logical name, by the English rules
 * Dataverse uses for standard tables: consonant + "y" -> "ies"
 * (opportunity -> opportunities), "s", "x", "z", "ch", "sh" -> + "es"
 * (address -> addresses), else + "s" (account -> accounts). Writes to out
 * (outsz bytes, NUL-terminated); returns the length, or 0 when it does
 * not fit. */
size_t map_default_entity_set(const char *logical_name, char *out, size_t outsz);

#endif
