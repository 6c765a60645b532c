#!/bin/sh
# pipeline_property.sh - the ordering property over random histories
# (issue 11): build/tools/histgen writes PROPERTY_HISTORIES (default 3000)
# generated change histories (Creates, Updates, same-time Update pairs with
# and without a post image versionnumber, whole-second stamps, Deletes,
# Restores, Associates/Disassociates), shuffled and partly duplicated; they
# go through build/hostemu to one handler writing Redis and PostgreSQL
# (CDC_TARGET=redis+sql, batches of 100, 4 invocations at once). Then, for
# every history, both replicas must equal its final state: every column
# (either value where two same-time Updates without a row version were the
# last writes, and then the record is marked for a re-read in Redis), the
# deleted flag, every link; a history without such a pair is never marked.
# PROPERTY_SEED picks the histories (default: a new seed each run, logged,
# so a failure can be replayed). make property runs 30,000 histories.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
[ -x "$BUILD/tools/histgen" ] || die "build first: make BUILD=$BUILD all"
pgdir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
start_postgres "$pgdir"
start_redis "$dir"

# 3000 in make check (about 20,000 messages; ~15 s of the test itself on
# a 2-core machine), 1000 under the sanitizers (several times slower);
# make property runs more
case "$BUILD" in */asan*) N=${PROPERTY_HISTORIES:-1000} ;; *) N=${PROPERTY_HISTORIES:-3000} ;; esac
SEED=${PROPERTY_SEED:-$(date +%s)}
log "seed $SEED (PROPERTY_SEED=$SEED replays it), $N histories"
"$BUILD/tools/histgen" "$TPL" "$dir/h" "$N" "$SEED" >"$dir/gen.out" || die "histgen failed"
log "$(cat "$dir/gen.out")"
M=$(count_msgs "$dir/h/msgs")

PL_ENV="--env CDC_TARGET=redis+sql --env SqlConnectionString=$PG_ODBC --env CDC_MAPPING_FILE=
--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_LOG_LEVEL=warn"
hostemu "$BUILD/app" prop --messages "$dir/h/msgs" --batch 100 --concurrency 4 --stop ||
  bad "hostemu exited $?: $(tail -3 "$dir/prop.err")"
settled prop "$M"
expect_eq "$(logs_sum prop poison)" 0 "no message was poison"

# Redis: every record as R|id|deleted|name|accountnumber|telephone1|fax and
# every link as L|id|lead|state (redis_lua.h: the p: field is version,
# annotations length, ':', annotations, JSON value)
redis-cli -p "$REDIS_PORT" --raw EVAL "
local out = {}
for _, k in ipairs(redis.call('KEYS', 'd365:{account:e*')) do
  local id = string.match(k, '{account:([^}]*)}')
  if string.find(k, ':rel:', 1, true) then
    local f = redis.call('HGETALL', k)
    for i = 1, #f, 2 do
      if string.sub(f[i], 1, 1) ~= '#' then
        out[#out + 1] = 'L|' .. id .. '|' .. string.sub(f[i], 6) .. '|' .. string.sub(f[i + 1], 46, 46)
      end
    end
  else
    local h = redis.call('HMGET', k, '_del', '_ver', 'p:name', 'p:accountnumber', 'p:telephone1', 'p:fax')
    local del = (h[1] and h[1] == h[2]) and '1' or '0'
    local line = 'R|' .. id .. '|' .. del
    for i = 3, 6 do
      local v = h[i]
      if del == '1' then line = line .. '|'
      elseif not v then line = line .. '|~'
      else
        local rest = string.sub(v, 46)
        local c = string.find(rest, ':', 1, true)
        local j = string.sub(rest, c + 1 + tonumber(string.sub(rest, 1, c - 1)))
        line = line .. '|' .. string.sub(j, 2, -2)
      end
    end
    out[#out + 1] = line
  end
end
return out" 0 >"$dir/redis.txt"
redis-cli -p "$REDIS_PORT" --raw ZRANGE d365:reread 0 -1 | sed 's/^account:/M|/' >"$dir/marks.txt"
pg_psql "SELECT 'R|' || accountid || '|' || CASE WHEN _cdc_deleted THEN '1||||' ELSE '0|' ||
    coalesce(name, '~') || '|' || coalesce(accountnumber, '~') || '|' || coalesce(telephone1, '~')
    || '|' || coalesce(fax, '~') END FROM account
  UNION ALL SELECT 'L|' || id1 || '|' || id2 || '|' || CASE WHEN _cdc_associated THEN '1' ELSE '0' END
    FROM accountleads_association" >"$dir/sql.txt" 2>&1

# check SINK FILE: every line of FILE against the expected state
check() {
  awk -F'|' -v sink="$1" -v marks="$dir/marks.txt" '
    FILENAME == marks { marked[$2] = 1; next }
    FILENAME ~ /expected$/ {
      if ($1 == "R") { want[$2] = $0; rec++ } else { link[$2 "|" $3] = $4; links++ }
      next
    }
    $1 == "R" {
      seen++
      if (!($2 in want)) { print sink ": unexpected record " $2; bad++; next }
      split(want[$2], w, "|")
      if ($3 != w[3]) { print sink ": " $2 " deleted=" $3 ", expected " w[3] " (" want[$2] ")"; bad++; next }
      for (i = 4; i <= 7; i++) {
        n = split(w[i], alt, "/"); ok = 0
        if (n == 0) { n = 1; alt[1] = "" }
        for (k = 1; k <= n; k++) if ($i == alt[k]) ok = 1
        if (!ok) { print sink ": " $2 " column " i - 3 " = \"" $i "\", expected \"" w[i] "\" (" want[$2] ")"; bad++ }
      }
      if (sink == "redis" && w[8] == "1" && !($2 in marked)) { print sink ": " $2 " not marked for a re-read (" want[$2] ")"; bad++ }
      if (sink == "redis" && w[8] == "0" && ($2 in marked)) { print sink ": " $2 " marked without a tie (" want[$2] ")"; bad++ }
      next
    }
    $1 == "L" {
      lseen++
      if (!(($2 "|" $3) in link)) { print sink ": unexpected link " $2 " " $3; bad++ }
      else if (link[$2 "|" $3] != $4) { print sink ": link " $2 " " $3 " = " $4 ", expected " link[$2 "|" $3]; bad++ }
      next
    }
    { print sink ": unreadable line: " $0; bad++ }
    END {
      if (seen != rec) { print sink ": " seen " records, expected " rec; bad++ }
      if (lseen != links) { print sink ": " lseen " links, expected " links; bad++ }
      print sink ": " seen " records, " lseen " links checked, " bad + 0 " differences"
      exit bad > 0
    }' "$dir/marks.txt" "$dir/h/expected" "$2" >"$dir/check_$1.txt"
  _rc=$?
  head -20 "$dir/check_$1.txt" | while IFS= read -r l; do log "$l"; done
  [ $_rc = 0 ] && ok "$1 replica equals the final state of every history" ||
    bad "$1 replica differs (seed $SEED)"
}
check redis "$dir/redis.txt"
check sql "$dir/sql.txt"
log "marked for a re-read: $(wc -l <"$dir/marks.txt"), ties counted: $(logs_sum prop ties)"

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish
