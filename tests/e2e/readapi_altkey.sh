#!/bin/sh
# readapi_altkey.sh - alternate keys (issue 14) end to end against a real
# redis-server: accounts(accountnumber='...') with the key declared in
# function_app/mapping.json (tables.account.keys.ak_accountnumber), data
# written through the pipeline (hostemu deliveries). Covers: a lookup by
# key, a key that moves (old value 404, new value the record) delivered in
# order, reversed and duplicated, a stale change never pointing the key at
# the wrong record, a value taken over by another record, a delete, two
# records holding one value (409 as Dataverse's DuplicateRecordEntityKey),
# accountid=<guid>, undeclared and malformed keys (400), and after all
# deliveries the indexes equal a rebuild from the records (every live
# record is found by its own value, every index entry that answers names
# a record holding that value).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
RCONN=127.0.0.1:$REDIS_PORT
APP=$(ra_app envelope false)

A1=5f1c7a2e-a89d-ef11-8a69-0000000000b1
A2=5f1c7a2e-a89d-ef11-8a69-0000000000b2
A3=5f1c7a2e-a89d-ef11-8a69-0000000000b3
T0=1731053107412

# mk FILE ID TIME ACCOUNTNUMBER MESSAGE: an account change from the Create fixture
mk() {
  sed -e "s/$ACC/$2/g" -e "s/$T0/$3/g" -e "s/CP-10042/$4/g" \
    -e "s/\"MessageName\":\"Create\"/\"MessageName\":\"$5\"/g" "$FIX/create_account.json" >"$T/$1"
  grep -q "\"$4\"" "$T/$1" || die "fixture: accountnumber not replaced in $1"
}
# del FILE ID TIME: a Delete of ID
del() {
  sed -e "s/$DELETED/$2/g" -e "s/1732095931877/$3/g" -e "s/1732095931000/$3/g" \
    "$FIX/delete_account.json" >"$T/$1"
}
mk c1.json "$A1" $((T0 + 1000)) K-OLD Create
mk u1.json "$A1" $((T0 + 2000)) K-NEW Update
mk u1stale.json "$A1" $((T0 + 1500)) K-STALE Update
mk c2.json "$A2" $((T0 + 1000)) K-X Create
mk u2.json "$A2" $((T0 + 3000)) K-OLD Update # A2 takes A1's old value
mk c3.json "$A3" $((T0 + 1000)) K-DEL Create
del d3.json "$A3" $((T0 + 5000))

log "deliveries out of order and twice: the newest change last, first, and again"
ra_deliver "$APP" "$T/u1.json" "$T/u2.json"
ra_deliver "$APP" "$T/c1.json" "$T/c2.json" "$T/u1stale.json" "$T/c3.json"
ra_deliver "$APP" "$T/d3.json" "$T/u1.json" "$T/c3.json" "$T/c1.json" "$T/u1stale.json"

ra_start "$APP"
get() { ra_get "$T/$1" "$API/accounts($2)${3:-}"; }

log "the moved key answers for its new value"
get k1 "accountnumber='K-NEW'" "?\$select=accountnumber"
ra_expect "new value" "$T/k1" 200
b=$(ra_body "$T/k1")
expect_has "new value" "$b" '"accountid":"'"$A1"'"'
expect_has "new value" "$b" '"accountnumber":"K-NEW"'
expect_has "new value context" "$b" '#accounts(accountnumber)/$entity"'
expect_eq "new value etag header" "$(ra_header "$T/k1" ETag)" \
  "W/\"$(redis-cli -p "$REDIS_PORT" hget "d365:{account:$A1}" _ver)\""

log "a value taken over by another record names that record, never the old one"
get k2 "accountnumber='K-OLD'"
ra_expect "taken over" "$T/k2" 200
expect_has "taken over" "$(ra_body "$T/k2")" '"accountid":"'"$A2"'"'

log "the stale change's value and a value nobody holds any more are 404"
for v in K-STALE K-X K-DEL NOPE; do
  get k3 "accountnumber='$v'"
  ra_expect "value $v" "$T/k3" 404 \
    '{"error":{"code":"0x80040217","message":"A record with the specified key values does not exist in account entity"}}'
done

log "two records holding one value answer 409"
mk c4.json 5f1c7a2e-a89d-ef11-8a69-0000000000b4 $((T0 + 1000)) K-NEW Create
ra_deliver "$APP" "$T/c4.json"
get k4 "accountnumber='K-NEW'"
ra_expect "duplicate" "$T/k4" 409
expect_has "duplicate" "$(ra_body "$T/k4")" '"code":"0x80060892"'

log "accountid=<guid> is the primary key"
get k5 "accountid=$A2" "?\$select=accountnumber"
ra_expect "accountid=" "$T/k5" 200
expect_has "accountid=" "$(ra_body "$T/k5")" '"accountnumber":"K-OLD"'

log "undeclared and malformed keys are 400"
get k6 "name='x'"
ra_expect "undeclared key" "$T/k6" 400
expect_has "undeclared key" "$(ra_body "$T/k6")" "tables.account.keys"
for k in "accountnumber='x" "accountnumber=x" "accountnumber='a',accountnumber='b'" "=1" \
  "accountnumber='a'x"; do
  get k7 "$k"
  ra_expect "malformed key $k" "$T/k7" 400
done
get k8 "accountnumber='it''s'"
ra_expect "quoted quote" "$T/k8" 404

log "the index equals a rebuild from the records"
for id in "$A1" "$A2" 5f1c7a2e-a89d-ef11-8a69-0000000000b4; do
  v=$(redis-cli -p "$REDIS_PORT" hget "d365:{account:$id}" p:accountnumber | sed 's/.*"\([^"]*\)"$/\1/')
  [ -n "$v" ] || die "record $id has no accountnumber"
  ok=0
  for m in $(redis-cli -p "$REDIS_PORT" smembers "d365:akey:account:ak_accountnumber:s$v"); do
    [ "$m" = "$id" ] && ok=1
  done
  expect_eq "index of $v lists $id" "$ok" 1
done
# every index entry that answers names a live record holding the value
for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'd365:akey:account:ak_accountnumber:*'); do
  v=${k#d365:akey:account:ak_accountnumber:s}
  n=0
  for m in $(redis-cli -p "$REDIS_PORT" smembers "$k"); do
    cur=$(redis-cli -p "$REDIS_PORT" hget "d365:{account:$m}" p:accountnumber | sed 's/.*"\([^"]*\)"$/\1/')
    dl=$(redis-cli -p "$REDIS_PORT" hget "d365:{account:$m}" _del)
    ver=$(redis-cli -p "$REDIS_PORT" hget "d365:{account:$m}" _ver)
    live=1
    # deleted while _del >= _ver (45-digit strings: compared as text)
    if [ -n "$dl" ] && [ "$(printf '%s\n%s\n' "$dl" "$ver" | sort | tail -1)" = "$dl" ]; then live=0; fi
    [ "$cur" = "$v" ] && [ $live = 1 ] && n=$((n + 1))
  done
  get k9 "accountnumber='$v'"
  case $n in
  0) ra_expect "rebuild $v" "$T/k9" 404 ;;
  1) ra_expect "rebuild $v" "$T/k9" 200 ;;
  *) ra_expect "rebuild $v" "$T/k9" 409 ;;
  esac
done

ra_stop
ra_sanitizers
log "ok"
