/* platform.c - what the handler runs on, in one line (platform.h). */
#include "common/platform.h"

#include <cjson/cJSON.h>
#include <gnu/libc-version.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <link.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#ifndef D365CDC_VERSION
#define D365CDC_VERSION "unknown"
#endif

const char *platform_handler_version(void)
{
  return D365CDC_VERSION;
}

struct lib_walk {
  struct buf *out;
  enum app_result r;
  int n;
};

static const char *base_name(const char *path)
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The shared objects the dynamic linker loaded (their names carry the
 * version: libhiredis.so.0.14, libodbc.so.2), with the directory they came
 * marked (app) when it is not a system directory: the zip's lib/. */
static int on_object(struct dl_phdr_info *info, size_t size, void *data)
{
  struct lib_walk *w = data;
  const char *name = info->dlpi_name;
  char real[PATH_MAX];
  (void)size;
  if (w->r != APP_OK || !name || !*name || strstr(name, "linux-vdso"))
    return 0;
  /* the file the soname link points at has the full version */
  if (realpath(name, real))
    name = real;
  w->r = buf_printf(w->out, "%s%s", w->n++ ? "," : "", base_name(name));
  if (w->r == APP_OK && strncmp(name, "/lib", 4) != 0 && strncmp(name, "/usr/", 5) != 0)
    w->r = buf_append_str(w->out, "(app)");
  return 0;
}

enum app_result platform_describe(struct buf *out)
{
  struct lib_walk w;
  APP_RETURN_IF_FAILED(buf_printf(
      out,
      "d365-cdc-handler %s; glibc %s; libmicrohttpd %s; %s; cJSON %s; hiredis %d.%d.%d (built "
      "with); loaded: ",
      D365CDC_VERSION, gnu_get_libc_version(), MHD_get_version(), OpenSSL_version(OPENSSL_VERSION),
      cJSON_Version(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH));
  w.out = out;
  w.r = APP_OK;
  w.n = 0;
  dl_iterate_phdr(on_object, &w);
  return w.r;
}
