/* arena.h - a bump allocator for everything one invocation decodes.
 *
 * Decoding a message allocates many small nodes that all die together when
 * the invocation ends. An arena makes that a handful of malloc calls and one
 * free, and its ceiling bounds the memory one request can take: past it,
 * arena_alloc returns NULL and the caller reports APP_ERR_LIMIT. */
#ifndef D365CDC_ARENA_H
#define D365CDC_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
  struct arena_chunk *head; /* current chunk; older chunks follow */
  size_t used;              /* bytes handed out plus chunk overhead */
  size_t max;               /* ceiling for used; 0 means unbounded */
  size_t chunk_size;        /* default size of a new chunk */
  size_t mallocs;           /* chunks allocated since init (for stats) */
  size_t seq;               /* chunks created so far (numbers them for arena_rewind) */
};

/* A point in an arena's life to go back to (arena_mark / arena_rewind). */
struct arena_mark {
  struct arena_chunk *head;
  size_t off;
  size_t used;
  size_t seq;
};

/* Initialise an arena whose total size may not pass max bytes (0: no cap). */
void arena_init(struct arena *a, size_t max);
/* Free every chunk. NULL-safe; the arena may be reused after arena_init. */
void arena_cleanup(struct arena *a);
/* Free everything but keep the largest chunk for reuse. */
void arena_reset(struct arena *a);

/* Remember the current fill level. */
void arena_mark(const struct arena *a, struct arena_mark *out);
/* Give back everything allocated since the mark (chunks made since are
 * freed): pointers handed out after the mark become invalid, those before
 * stay valid. Marks taken after this one are invalid. */
void arena_rewind(struct arena *a, const struct arena_mark *m);

/* n bytes aligned for any type, or NULL when the ceiling or malloc fails.
 * Valid until arena_reset/arena_cleanup. */
void *arena_alloc(struct arena *a, size_t n);
/* Copy of s[0..n) plus a NUL terminator, or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
