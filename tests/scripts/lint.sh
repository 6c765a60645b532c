#!/bin/sh
# lint.sh - banned functions (curl checksrc style) and a few project rules.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
rc=0
files=$(find handler -name '*.[ch]' | sort)
# unbounded or locale/thread-unsafe calls we never want in the handler
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok|cJSON_GetErrorPtr|system|popen|rand|localtime|gmtime|asctime|ctime)[[:space:]]*\('
if grep -nE "$banned" $files; then
  echo "lint: banned function used (see above)" >&2
  rc=1
fi
# names owned by our dependencies must not be defined by us (hiredis owns
# redisCamelCase, REDIS_*, sds*, hi_*; our snake_case redis_* modules are fine)
if grep -nE '^(static[[:space:]]+)?[a-z_ ]*[[:space:]*](redis[A-Z]|REDIS_|MHD_|curl_|cJSON_|sds[a-z]|hi_)[A-Za-z_]*[[:space:]]*\([^;]*$' $files | grep -v '^\s*//' ; then
  echo "lint: function defined with a dependency's prefix (see above)" >&2
  rc=1
fi
# every header has an include guard
for h in $(find handler -name '*.h' | sort); do
  grep -q '#ifndef D365CDC_' "$h" || { echo "lint: $h lacks a D365CDC_ include guard" >&2; rc=1; }
done
[ $rc = 0 ] && echo "lint: ok"
exit $rc
