/* arena.c - bump allocator with a ceiling. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
  struct arena_chunk *next;
  size_t seq;  /* creation number, for arena_rewind */
  size_t size; /* usable bytes in data[] */
  size_t off;  /* next free byte */
  max_align_t data[];
};

#define ARENA_ALIGN         (sizeof(max_align_t) < 16 ? sizeof(max_align_t) : 16)
#define ARENA_DEFAULT_CHUNK (16 * 1024)

void arena_init(struct arena *a, size_t max)
{
  a->head = NULL;
  a->used = 0;
  a->max = max;
  a->chunk_size = ARENA_DEFAULT_CHUNK;
  a->mallocs = 0;
  a->seq = 0;
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
  struct arena_chunk *c, *keep = NULL, *next;

  /* keep the largest chunk: a reused arena then serves the next message of
   * the same size without a malloc */
  for (c = a->head; c; c = c->next)
    if (!keep || c->size > keep->size)
      keep = c;
  for (c = a->head; c; c = next) {
    next = c->next;
    if (c != keep)
      free(c);
  }
  a->head = keep;
  a->used = 0;
  if (keep) {
    keep->off = 0;
    keep->next = NULL;
    a->used = sizeof *keep + keep->size;
  }
}

void arena_mark(const struct arena *a, struct arena_mark *out)
{
  out->head = a->head;
  out->off = a->head ? a->head->off : 0;
  out->used = a->used;
  out->seq = a->seq;
}

void arena_rewind(struct arena *a, const struct arena_mark *m)
{
  struct arena_chunk **pp = &a->head, *c;

  /* unlink and free every chunk made after the mark, wherever it sits */
  while ((c = *pp) != NULL) {
    if (c->seq >= m->seq) {
      *pp = c->next;
      free(c);
    } else {
      pp = &c->next;
    }
  }
  a->head = m->head;
  if (a->head)
    a->head->off = m->off;
  a->used = m->used;
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
  c->seq = a->seq++;
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
