/* arena.c - bump allocator with a ceiling. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
  struct arena_chunk *next;
  size_t size; /* usable bytes in data[] */
  size_t off;  /* next free byte */
  max_align_t data[];
};

#define ARENA_ALIGN (sizeof(max_align_t) < 16 ? sizeof(max_align_t) : 16)
#define ARENA_DEFAULT_CHUNK (16 * 1024)

void arena_init(struct arena *a, size_t max)
{
  a->head = NULL;
  a->used = 0;
  a->max = max;
  a->chunk_size = ARENA_DEFAULT_CHUNK;
  a->mallocs = 0;
}

void arena_cleanup(struct arena *a)
{
  struct arena_chunk *c, *next;
  if (!a)
    return;
  for (c = a->head; c; c = next) {
    next = c->next;
    free(c);
  }
  a->head = NULL;
  a->used = 0;
}

void arena_reset(struct arena *a)
{
  struct arena_chunk *c, *last = NULL, *next;

  /* keep the oldest chunk (usually the default size) */
  for (c = a->head; c; c = next) {
    next = c->next;
    if (!next)
      last = c;
    else
      free(c);
  }
  a->head = last;
  a->used = 0;
  if (last) {
    last->off = 0;
    last->next = NULL;
    a->used = sizeof *last + last->size;
  }
}

void *arena_alloc(struct arena *a, size_t n)
{
  struct arena_chunk *c = a->head;
  size_t off, size;

  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (c) {
    off = c->off;
    if (n <= c->size - off) {
      c->off = off + n;
      return (char *)c->data + off;
    }
  }
  size = n > a->chunk_size / 4 ? n : a->chunk_size;
  if (a->max && (size + sizeof *c > a->max || a->used > a->max - size - sizeof *c))
    return NULL;
  c = malloc(sizeof *c + size);
  if (!c)
    return NULL;
  a->mallocs++;
  c->size = size;
  a->used += sizeof *c + size;
  if (size == n && a->head) {
    /* a big one-off block: keep the current chunk in front so its free
     * space is still used */
    c->off = n;
    c->next = a->head->next;
    a->head->next = c;
    return c->data;
  }
  c->off = n;
  c->next = a->head;
  a->head = c;
  /* grow the default chunk size so big messages need few mallocs */
  if (a->chunk_size < 1024 * 1024)
    a->chunk_size *= 2;
  return c->data;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
  char *p = arena_alloc(a, n + 1);
  if (!p)
    return NULL;
  if (n)
    memcpy(p, s, n);
  p[n] = '\0';
  return p;
}
