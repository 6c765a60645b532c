#!/bin/sh
# readapi_expand.sh - $expand of single-valued navigation properties (issue
# 14) end to end against a real redis-server: the mapping's navigation
# section (function_app/mapping.json declares accounts' primarycontactid
# and contacts' parentcustomerid_account), nested $select, a lookup that
# is null or points at no replicated record (null), a related table the
# mapping does not accept (null, never its row), an unknown navigation
# property and bad nested options (400), the @odata.context of an
# expansion, the freshness of the oldest record returned, and the
# round trips (one for the record, one pipelined for every expansion,
# counted with redis-server's INFO commandstats). Data is written through
# the pipeline (hostemu deliveries).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
RCONN=127.0.0.1:$REDIS_PORT

CONTACT=6d81597f-2b4e-ef11-a317-000d3a2c9e1b # update_contact_partial.json
OWNER=1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d   # ownerid in create_account.json
ACC2=5f1c7a2e-a89d-ef11-8a69-0000000000a2    # an account whose contact is not replicated
LOST=77777777-2b4e-ef11-a317-000d3a2c9e1b

APP=$(ra_app envelope false)
# the account's ownerid reference becomes primarycontactid -> the contact
sed -e 's/"ownerid"/"primarycontactid"/g' -e "s/$OWNER/$CONTACT/g" \
  -e 's/"LogicalName":"systemuser"/"LogicalName":"contact"/g' \
  "$FIX/create_account.json" >"$T/acc1.json"
sed -e 's/"ownerid"/"primarycontactid"/g' -e "s/$OWNER/$LOST/g" -e "s/$ACC/$ACC2/g" \
  -e 's/"LogicalName":"systemuser"/"LogicalName":"contact"/g' \
  "$FIX/create_account.json" >"$T/acc2.json"
grep -q "\"primarycontactid\"" "$T/acc1.json" || die "fixture: no lookup to rename"
ra_deliver "$APP" "$T/acc1.json" "$T/acc2.json" "$FIX/update_contact_partial.json"
[ "$(redis-cli -p "$REDIS_PORT" hexists "d365:{account:$ACC}" "p:_primarycontactid_value")" = 1 ] ||
  die "the account has no _primarycontactid_value: $(redis-cli -p "$REDIS_PORT" hkeys "d365:{account:$ACC}")"

CTX=http://localhost:7071/api/data/v9.2/\$metadata
ra_start "$APP"

log "expand one lookup with a nested \$select"
ra_get "$T/x1" "$API/accounts($ACC)?\$select=name&\$expand=primarycontactid(\$select=jobtitle,telephone1)"
ra_expect "expand" "$T/x1" 200
b=$(ra_body "$T/x1")
expect_has "expand context" "$b" \
  '{"@odata.context":"'"$CTX"'#accounts(name,primarycontactid(jobtitle,telephone1))/$entity"'
expect_has "expand row" "$b" '"name":"Contoso Pharmaceuticals (Zürich)"'
expect_has "expanded record" "$b" ',"primarycontactid":{"@odata.etag":"W/\"'
expect_has "expanded record key" "$b" '"contactid":"'"$CONTACT"'"'
expect_has "expanded record column" "$b" '"jobtitle":'
expect_not "nested \$select leaves other columns out" "$b" '"modifiedon"'
# the contact's change (2024-11-12) is newer than the account's (2024-11-08):
# freshness is of the account, the oldest record in the answer
fr=$(ra_header "$T/x1" x-cdc-freshness-ms)
age=$(($(now_ms) - 1731053107412))
[ $((age - fr)) -ge 0 ] && [ $((age - fr)) -lt 600000 ] ||
  die "x-cdc-freshness-ms $fr is not the account's age $age"

log "expand without a nested \$select: every column of the related record"
ra_get "$T/x2" "$API/accounts($ACC)?\$select=name&\$expand=primarycontactid"
ra_expect "expand all columns" "$T/x2" 200
b=$(ra_body "$T/x2")
expect_has "expand all columns context" "$b" '#accounts(name,primarycontactid())/$entity"'
expect_has "expand all columns" "$b" '"telephone1":'

log "a lookup to a record the replica does not hold is null"
ra_get "$T/x3" "$API/accounts($ACC2)?\$select=name&\$expand=primarycontactid(\$select=jobtitle)"
ra_expect "expand missing" "$T/x3" 200
expect_has "expand missing" "$(ra_body "$T/x3")" ',"primarycontactid":null}'

log "the reverse lookup, contact -> account: null (the contact has no parentcustomerid)"
ra_get "$T/x4" "$API/contacts($CONTACT)?\$expand=parentcustomerid_account(\$select=name)"
ra_expect "reverse" "$T/x4" 200
expect_has "reverse" "$(ra_body "$T/x4")" ',"parentcustomerid_account":null}'

log "an unknown navigation property is 400 naming it and where to declare it"
ra_get "$T/x5" "$API/accounts($ACC)?\$expand=nosuchnav"
ra_expect "unknown navigation" "$T/x5" 400
expect_has "unknown navigation" "$(ra_body "$T/x5")" \
  "Could not find a property named 'nosuchnav' on type 'Microsoft.Dynamics.CRM.account'"
expect_has "unknown navigation" "$(ra_body "$T/x5")" "tables.account.navigation"

log "an unknown nested \$select column is 400"
ra_get "$T/x6" "$API/accounts($ACC)?\$expand=primarycontactid(\$select=nosuchcolumn)"
ra_expect "unknown nested column" "$T/x6" 400
expect_has "unknown nested column" "$(ra_body "$T/x6")" "'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'"

log "malformed \$expand options are 400"
for q in '$expand=' '$expand=primarycontactid(' '$expand=primarycontactid($top=1)' \
  '$expand=primarycontactid($select=a;$filter=x)' '$expand=a,,b' '$expand=a,a' \
  '$expand=primarycontactid($select=)' '$expand=na-me'; do
  ra_get "$T/bad" "$API/accounts($ACC)?$q"
  ra_expect "query $q" "$T/bad" 400
  expect_has "query $q" "$(ra_body "$T/bad")" '"code":"0x80060888"'
done
ra_get "$T/bad" "$API/accounts($ACC)/name?\$expand=primarycontactid"
ra_expect "expand on a property" "$T/bad" 400

log "round trips: one HGETALL for the record and one pipelined for the expansion"
redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
ra_get "$T/x7" "$API/accounts($ACC)?\$select=name&\$expand=primarycontactid(\$select=jobtitle)"
ra_expect "round trips" "$T/x7" 200
calls=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_hgetall:' |
  sed 's/^[^=]*=\([0-9]*\).*/\1/')
expect_eq "HGETALL calls for a record and one expansion" "$calls" 2

ra_stop
log "start-up refuses a navigation property to a table the mapping does not replicate"
cat >"$T/badmap.json" <<'EOF'
{"accept_tables": ["account"], "tables": {"account": {"navigation":
  {"primarycontactid": {"table": "contact", "lookup": "primarycontactid"}}}}}
EOF
HPORT=$(free_port)
(cd "$APP" && exec env FUNCTIONS_CUSTOMHANDLER_PORT="$HPORT" FUNCTIONS_APP_ROOT_PATH="$APP" \
  "RedisConnection=$RCONN" CDC_MAPPING_FILE="$T/badmap.json" ./handler) >"$T/badmap.log" 2>&1 &&
  die "the handler started with a navigation to an unreplicated table"
expect_has "bad navigation" "$(cat "$T/badmap.log")" \
  'tables.account.navigation.primarycontactid.table: table \"contact\" is not replicated'

ra_sanitizers
log "ok"
