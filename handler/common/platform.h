/* platform.h - what the handler runs on: the C library, the versions of the
 * libraries it uses (as loaded, not as compiled, where the library can say)
 * and every shared object loaded, on one line. Logged at start-up and
 * printed by `handler --version`, so that a user of a plan without a
 * console (Consumption, Flex Consumption) reads the image's glibc from the
 * log instead of guessing. */
#ifndef D365CDC_PLATFORM_H
#define D365CDC_PLATFORM_H

#include "common/buf.h"
#include "common/result.h"

/* The handler's own version (git describe at build time, or "unknown"). */
const char *platform_handler_version(void);

/* Append "d365-cdc-handler V; glibc X; libmicrohttpd X; OpenSSL X; cJSON X;
 * hiredis X (built with); loaded: a.so.N,b.so.N(app),..." to out.
 *   APP_ERR_NOMEM  out reached its cap */
APP_NODISCARD enum app_result platform_describe(struct buf *out);

#endif
