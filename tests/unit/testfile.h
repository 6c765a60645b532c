/* testfile.h - read a whole file for the tests and tools (header-only).
 *
 * test_read_file: the file's bytes with a NUL after them (fixtures are
 * text, and parsers that want a C string get one), length in *out_len.
 * NULL when it cannot be opened or read; the caller frees with free(). */
#ifndef D365CDC_TESTFILE_H
#define D365CDC_TESTFILE_H

#include <stdio.h>
#include <stdlib.h>

static inline char *test_read_file(const char *path, size_t *out_len)
{
  FILE *f = fopen(path, "rb");
  char *data = NULL;
  long n;
  if (!f)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    } else if (data) {
      data[n] = '\0';
      *out_len = (size_t)n;
    }
  }
  fclose(f);
  return data;
}

#endif
