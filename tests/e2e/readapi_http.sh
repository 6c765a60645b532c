#!/bin/sh
# readapi_http.sh - the read API end to end, in both call styles the host
# can use (the default envelope: Data.req in, Outputs.res out; and
# forwarded raw requests, enableForwardingHttpRequest): every status code
# (200, 204, 304, 400, 404, 501), $select and the schema set (a known
# column the record lacks is null, an unknown one 400, also after a
# restart), ETag / If-None-Match, the annotations filter, N:N relationship
# reads, property reads, the freshness header, function keys ignored, and
# the metrics function (JSON and Prometheus). The data is written through
# the pipeline: the fixtures are delivered with hostemu to a private
# redis-server.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
RCONN=127.0.0.1:$REDIS_PORT
log "redis on port $REDIS_PORT"

ENV_APP=$(ra_app envelope false)
FWD_APP=$(ra_app forward true)

# A copy of create_account.json for a new record whose change happened
# 1.5 s ago (OperationCreatedOn rewritten), for the freshness header; and
# associate.json aimed at the created account, so relationship reads find
# a record that is replicated.
FRESH=9d0c6a11-0000-4000-8000-00000000f00d
FRESH_OP=$(($(now_ms) - 1500))
sed -e "s/1731053107412/$FRESH_OP/g" -e "s/$ACC/$FRESH/g" -e "s/CP-10042/CP-FRESH/g" \
  "$FIX/create_account.json" >"$T/fresh_account.json"
sed -e "s/$ASSOC/$ACC/g" "$FIX/associate.json" >"$T/associate_live.json"

log "writing through the pipeline: the fixtures delivered by hostemu"
ra_deliver "$ENV_APP" "$FIX/create_account.json" "$FIX/setstate.json" "$FIX/delete_account.json" \
  "$FIX/associate.json" "$FIX/update_contact_partial.json" \
  "$FIX/update_with_money_optionset_multiselect_lookup_dates.json" "$T/associate_live.json" \
  "$T/fresh_account.json"
[ "$(redis-cli -p "$REDIS_PORT" exists "d365:{account:$ACC}")" = 1 ] || die "nothing was written"

CTX=http://localhost:7071/api/data/v9.2/\$metadata
ETAG_JSON='"@odata.etag":"W/\"'$ACC_VER'\""'
NAME='"name":"Contoso Pharmaceuticals (Zürich)"'
ERR_SYNTAX='{"error":{"code":"0x80060888","message":'

check_style() {
  style=$1
  o=$T/$style
  mkdir -p "$o"

  log "$style: GET a record"
  ra_get "$o/rec" "$API/accounts($ACC)" --verbose
  case $style in
  envelope) expect_has "call style" "$(cat "$o/rec.err")" "(httpTrigger, default envelope)" ;;
  forward) expect_has "call style" "$(cat "$o/rec.err")" "(httpTrigger, forwarded)" ;;
  esac
  ra_expect "$style record" "$o/rec" 200
  b=$(ra_body "$o/rec")
  expect_has "$style record" "$b" '{"@odata.context":"'"$CTX"'#accounts/$entity",'"$ETAG_JSON"
  expect_has "$style record" "$b" "$NAME"
  expect_has "$style record" "$b" '"exchangerate":1.0000000000,'
  expect_not "$style record without Prefer" "$b" "@OData.Community"
  expect_eq "$style ETag" "$(ra_header "$o/rec" ETag)" "W/\"$ACC_VER\""
  expect_eq "$style OData-Version" "$(ra_header "$o/rec" OData-Version)" 4.0
  expect_eq "$style Content-Type" "$(ra_header "$o/rec" Content-Type)" \
    "application/json; odata.metadata=minimal"
  expect_eq "$style x-cdc-version" "$(ra_header "$o/rec" x-cdc-version)" "$ACC_VER"
  fresh=$(ra_header "$o/rec" x-cdc-freshness-ms)
  age=$(($(now_ms) - 1731053107412))
  [ $((age - fresh)) -ge 0 ] && [ $((age - fresh)) -lt 600000 ] ||
    die "$style: x-cdc-freshness-ms $fresh is not now - OperationCreatedOn ($age)"

  log "$style: freshness of a change made 1.5 s ago"
  ra_get "$o/fresh" "$API/accounts($FRESH)?\$select=name"
  ra_expect "$style fresh" "$o/fresh" 200
  fresh=$(ra_header "$o/fresh" x-cdc-freshness-ms)
  [ "$fresh" -ge 1500 ] && [ "$fresh" -lt 600000 ] ||
    die "$style: x-cdc-freshness-ms $fresh for a change made 1500 ms before the test began"

  log "$style: \$select and the annotations filter"
  ra_get "$o/sel" "$API/accounts($ACC)?\$select=name,revenue"
  ra_expect "$style \$select" "$o/sel" 200 \
    '{"@odata.context":"'"$CTX"'#accounts(name,revenue)/$entity",'"$ETAG_JSON"',"accountid":"'"$ACC"'",'"$NAME"',"revenue":2500000}'
  ra_get "$o/ann" "$API/accounts($ACC)?\$select=name,revenue,_ownerid_value" \
    --header 'Prefer: odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
  ra_expect "$style FormattedValue only" "$o/ann" 200 \
    '{"@odata.context":"'"$CTX"'#accounts(name,revenue,_ownerid_value)/$entity",'"$ETAG_JSON"',"_ownerid_value":"1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d","accountid":"'"$ACC"'",'"$NAME"',"revenue@OData.Community.Display.V1.FormattedValue":"€2,500,000.00","revenue":2500000}'
  expect_eq "$style Preference-Applied" "$(ra_header "$o/ann" Preference-Applied)" \
    'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
  ra_get "$o/all" "$API/accounts($ACC)?\$select=_ownerid_value" \
    --header 'Prefer: return=representation, odata.include-annotations="*"'
  ra_expect "$style all annotations" "$o/all" 200 \
    '{"@odata.context":"'"$CTX"'#accounts(_ownerid_value)/$entity",'"$ETAG_JSON"',"_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"systemuser","_ownerid_value":"1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d","accountid":"'"$ACC"'"}'

  log "$style: a known column the record lacks is null; an unknown one is 400"
  ra_get "$o/null" "$API/accounts($SETSTATE)?\$select=name,statecode"
  ra_expect "$style known, absent" "$o/null" 200 \
    '{"@odata.context":"'"$CTX"'#accounts(name,statecode)/$entity","@odata.etag":"W/\"001732518912918000000000000000000001796477784\"","accountid":"'"$SETSTATE"'","statecode":1,"name":null}'
  ra_get "$o/unknown" "$API/accounts($SETSTATE)?\$select=name,nosuchcolumn"
  ra_expect "$style unknown column" "$o/unknown" 400 \
    '{"error":{"code":"0x0","message":"Could not find a property named '"'nosuchcolumn'"' on type '"'Microsoft.Dynamics.CRM.account'"'."}}'
  expect_eq "$style 400 OData-Version" "$(ra_header "$o/unknown" OData-Version)" 4.0
  ra_get "$o/case" "$API/accounts($ACC)?\$select=Name"
  ra_expect "$style column names are case-sensitive" "$o/case" 400

  log "$style: If-None-Match"
  ra_get "$o/304" "$API/accounts($ACC)?\$select=name" --header "If-None-Match: W/\"$ACC_VER\""
  ra_expect "$style matching etag" "$o/304" 304 ""
  expect_eq "$style 304 ETag" "$(ra_header "$o/304" ETag)" "W/\"$ACC_VER\""
  ra_get "$o/200" "$API/accounts($ACC)?\$select=name" --header 'If-None-Match: W/"1"'
  ra_expect "$style other etag" "$o/200" 200

  log "$style: absent and deleted records"
  ra_get "$o/absent" "$API/accounts($ABSENT)"
  ra_expect "$style absent" "$o/absent" 404 \
    '{"error":{"code":"0x80040217","message":"Entity '"'account'"' With Id = '"$ABSENT"' Does Not Exist"}}'
  ra_get "$o/deleted" "$API/accounts($DELETED)?\$select=name"
  ra_expect "$style deleted" "$o/deleted" 404 \
    '{"error":{"code":"0x80040217","message":"Entity '"'account'"' With Id = '"$DELETED"' Does Not Exist"}}'

  log "$style: malformed ids, query options and paths"
  ra_get "$o/badid" "$API/accounts(123)"
  ra_expect "$style malformed id" "$o/badid" 400 \
    "$ERR_SYNTAX"'"Bad Request - Error in query syntax: '"'123'"' is not a GUID"}}'
  ra_get "$o/altkey" "$API/accounts(accountnumber='CP-10042')?\$select=name"
  ra_expect "$style alternate key" "$o/altkey" 200
  expect_has "$style alternate key" "$(ra_body "$o/altkey")" "$NAME"
  ra_get "$o/altkey" "$API/accounts(name='x')"
  ra_expect "$style undeclared alternate key" "$o/altkey" 400
  expect_has "$style undeclared alternate key" "$(ra_body "$o/altkey")" "tables.account.keys"
  for q in '$top=1' '$expand=primarycontactid($top=1)' '$filter=name%20eq%20%27x%27' '$select=' \
    '$select=na-me' '$bogus=1'; do
    ra_get "$o/badq" "$API/accounts($ACC)?$q"
    ra_expect "$style query $q" "$o/badq" 400
    expect_has "$style query $q" "$(ra_body "$o/badq")" "$ERR_SYNTAX"
  done
  ra_get "$o/set" "$API/Accounts($ACC)"
  ra_expect "$style unknown entity set" "$o/set" 404 \
    '{"error":{"code":"0x8006088a","message":"Resource not found for the segment '"'Accounts'"'."}}'
  ra_get "$o/list" "$API/accounts"
  ra_expect "$style listing" "$o/list" 501
  ra_get "$o/seg" "$API/accounts($ACC)/name/\$value"
  ra_expect "$style segment after a property" "$o/seg" 400

  log "$style: function keys (code=, x-functions-key) are the host's business"
  ra_get "$o/key" "$API/accounts($ACC)?\$select=name&code=s3cr3t-key%3D%3D" \
    --header 'x-functions-key: s3cr3t-header'
  ra_expect "$style with a function key" "$o/key" 200

  log "$style: N:N relationships"
  ra_get "$o/rel" "$API/accounts($ASSOC)/accountleads_association"
  ra_expect "$style relationship of a record that is not replicated" "$o/rel" 200 \
    '{"@odata.context":"'"$CTX"'#leads","value":[{"leadid":"'"$LEAD1"'"},{"leadid":"'"$LEAD2"'"}]}'
  ra_get "$o/rel2" "$API/leads($LEAD1)/accountleads_association?\$select=name"
  ra_expect "$style relationship with a replicated member" "$o/rel2" 200 \
    '{"@odata.context":"'"$CTX"'#accounts(name)","value":[{"accountid":"'"$ASSOC"'"},{'"$ETAG_JSON"',"accountid":"'"$ACC"'",'"$NAME"'}]}'
  ra_get "$o/rel3" "$API/leads($LEAD1)/accountleads_association?\$select=nosuchcolumn"
  ra_expect "$style relationship, unknown column" "$o/rel3" 400
  ra_get "$o/rel4" "$API/accounts($SETSTATE)/accountleads_association"
  ra_expect "$style relationship without members" "$o/rel4" 200 \
    '{"@odata.context":"'"$CTX"'#accountleads_association","value":[]}'
  ra_get "$o/rel5" "$API/accounts($ABSENT)/accountleads_association"
  ra_expect "$style relationship of an absent record" "$o/rel5" 404
  ra_get "$o/rel6" "$API/accounts($DELETED)/accountleads_association"
  ra_expect "$style relationship of a deleted record" "$o/rel6" 404

  log "$style: a property of a record"
  ra_get "$o/prop" "$API/accounts($ACC)/name"
  ra_expect "$style property" "$o/prop" 200 \
    '{"@odata.context":"'"$CTX"'#accounts('"$ACC"')/name","value":"Contoso Pharmaceuticals (Zürich)"}'
  ra_get "$o/propnull" "$API/accounts($ACC)/_modifiedonbehalfby_value"
  ra_expect "$style null property" "$o/propnull" 204 ""
  ra_get "$o/propabsent" "$API/accounts($SETSTATE)/name"
  ra_expect "$style known property the record lacks" "$o/propabsent" 204 ""
  ra_get "$o/propkey" "$API/accounts($SETSTATE)/accountid"
  ra_expect "$style the key of a record no change listed it for" "$o/propkey" 200 \
    '{"@odata.context":"'"$CTX"'#accounts('"$SETSTATE"')/accountid","value":"'"$SETSTATE"'"}'

  log "$style: @odata.context takes the scheme from X-Forwarded-Proto (App Service front end)"
  ra_get "$o/https" "$API/accounts($ACC)?\$select=name" --header 'X-Forwarded-Proto: https'
  ra_expect "$style https" "$o/https" 200
  expect_has "$style https" "$(ra_body "$o/https")" \
    '{"@odata.context":"https://localhost:7071/api/data/v9.2/$metadata#accounts(name)/$entity"'

  log "$style: metrics, JSON and Prometheus"
  ra_get "$o/metrics" /api/cdc/metrics
  ra_expect "$style metrics" "$o/metrics" 200
  expect_eq "$style metrics Content-Type" "$(ra_header "$o/metrics" Content-Type)" application/json
  m=$(ra_body "$o/metrics")
  expect_has "$style metrics" "$m" '"reads_not_modified":1,'
  # 5xx: the one 501 (listing) of this handler's life
  expect_has "$style metrics" "$m" '"reads_failed":1,'
  reads=$(echo "$m" | tr ',{}' '\n\n\n' | grep '^"reads":' | cut -d: -f2)
  [ "$reads" -ge 30 ] || die "$style: metrics count $reads reads"
  nf=$(echo "$m" | tr ',{}' '\n\n\n' | grep '^"reads_not_found":' | cut -d: -f2)
  [ "$nf" -ge 5 ] || die "$style: metrics count $nf reads answered 404"
  ra_get "$o/prom" "/api/cdc/metrics?format=prometheus"
  ra_expect "$style Prometheus" "$o/prom" 200
  expect_has "$style Prometheus Content-Type" "$(ra_header "$o/prom" Content-Type)" "text/plain; version=0.0.4"
  p=$(ra_body "$o/prom" | tr -d '\r')
  expect_has "$style Prometheus" "$p" "# TYPE d365cdc_reads_total counter"
  expect_has "$style Prometheus" "$p" "d365cdc_reads_not_modified_total 1"
  echo "$p" | grep -q "^d365cdc_reads_total [0-9][0-9]*$" || die "$style: no reads_total sample"
}

check_restart() {
  style=$1
  log "$style: after a restart the schema set still decides (nothing in memory)"
  ra_stop
  ra_start "$HAPP"
  o=$T/$style
  ra_get "$o/r-null" "$API/accounts($SETSTATE)?\$select=name"
  ra_expect "$style restarted, known column" "$o/r-null" 200
  expect_has "$style restarted, known column" "$(ra_body "$o/r-null")" '"name":null}'
  ra_get "$o/r-unknown" "$API/accounts($SETSTATE)?\$select=nosuchcolumn"
  ra_expect "$style restarted, unknown column" "$o/r-unknown" 400
}

ra_start "$ENV_APP"
check_style envelope
log "envelope: a repeated query option is 400"
ra_get "$T/dup" "$API/accounts($ACC)?\$select=name&\$select=revenue"
ra_expect "envelope repeated \$select" "$T/dup" 400
expect_has "envelope repeated \$select" "$(ra_body "$T/dup")" "specified more than once"
check_restart envelope
ra_stop

ra_start "$FWD_APP"
check_style forward
log "forward: the host merges a repeated option into one (name,revenue)"
ra_get "$T/dup" "$API/accounts($ACC)?\$select=name&\$select=revenue"
ra_expect "forward repeated \$select" "$T/dup" 200
expect_has "forward repeated \$select" "$(ra_body "$T/dup")" '#accounts(name,revenue)/$entity'
check_restart forward
ra_stop

if grep -q "s3cr3t" "$T/handler.log"; then die "a function key reached the handler's log"; fi
ra_sanitizers
log "ok"
