#!/bin/sh
# docs_config.sh - docs/configuration.md lists exactly the settings of
# handler/common/config.c, with their defaults (the table between the markers is
# the output of build/tools/configdoc).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
d=$(tmpdir)
[ -x "$BUILD/tools/configdoc" ] || die "build/tools/configdoc is not built"
"$BUILD/tools/configdoc" >"$d/want"
sed -n '/<!-- settings:begin -->/,/<!-- settings:end -->/p' "$ROOT/docs/configuration.md" |
  sed '1d;$d' >"$d/have"
if ! cmp -s "$d/want" "$d/have"; then
  diff -u "$d/have" "$d/want" >&2
  die "docs/configuration.md is out of date: paste the output of build/tools/configdoc between the markers"
fi
echo "docs/configuration.md matches the settings table ($(grep -c '^| `' "$d/want") settings)"
