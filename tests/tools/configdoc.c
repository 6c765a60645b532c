/* configdoc.c - print the app settings table (handler/common/config.c) as Markdown.
 * docs/configuration.md embeds this output between markers; the test
 * tests/e2e/docs_config.sh fails when the two drift apart. */
#include "common/buf.h"
#include "common/config.h"

#include <stdio.h>

int main(void)
{
  struct buf b;
  buf_init(&b, 0);
  if (config_doc_table(&b) != APP_OK) {
    fprintf(stderr, "configdoc: out of memory\n");
    return 1;
  }
  fwrite(b.data, 1, b.len, stdout);
  buf_cleanup(&b);
  return 0;
}
