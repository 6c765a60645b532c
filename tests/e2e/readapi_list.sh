#!/bin/sh
# readapi_list.sh - lists served from declared indexes (issue 14) against a
# real redis-server: GET contacts?$filter=_parentcustomerid_value eq <id>
# with $select, $orderby, $top, $count=true and server-driven paging
# (Prefer: odata.maxpagesize, @odata.nextLink with an opaque $skiptoken),
# paging while writes continue (no row twice, none lost that did not move),
# a contact whose parent moved away (delivered out of order: not listed),
# and the 400 for a column without an index. function_app/mapping.json
# declares tables.contact.indexes ["parentcustomerid", "statecode"]. Data is
# written through the pipeline (hostemu deliveries).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
RCONN=127.0.0.1:$REDIS_PORT
APP=$(ra_app envelope false)

C0=6d81597f-2b4e-ef11-a317-000d3a2c9e1b # update_contact_partial.json
PARENT=b76b3f4b-2b4e-ef11-a317-000d3a2c9e1b # parentcustomerid in its post image
OTHER=5f1c7a2e-a89d-ef11-8a69-0000000000c9
T0=1731421270532
# contact FILE N PARENT TITLE TIME: a contact change whose post image has
# parentcustomerid PARENT
contact() {
  sed -e "s/$C0/6d81597f-2b4e-ef11-a317-00000000000$2/g" -e "s/$T0/$5/g" \
    -e "s/$PARENT/$3/g" -e "s/Head of Procurement/$4/g" \
    "$FIX/update_contact_partial.json" >"$T/$1"
  grep -q "$3" "$T/$1" || die "fixture: no parentcustomerid to replace in $1"
}
cid() { echo "6d81597f-2b4e-ef11-a317-00000000000$1"; }
contact c1.json 1 "$ACC" "t-c" $((T0 + 1000))
contact c2.json 2 "$ACC" "t-a" $((T0 + 1000))
contact c3.json 3 "$ACC" "t-e" $((T0 + 1000))
contact c4.json 4 "$ACC" "t-b" $((T0 + 1000))
contact c5.json 5 "$ACC" "t-d" $((T0 + 1000))
contact c6.json 6 "$OTHER" "t-f" $((T0 + 1000))
contact c7.json 7 "$ACC" "t-g" $((T0 + 1000))
contact c7moved.json 7 "$OTHER" "t-g" $((T0 + 2000))
log "deliveries: c7's move to another account first, then its older change, twice"
ra_deliver "$APP" "$T/c7moved.json" "$T/c1.json" "$T/c2.json" "$T/c3.json"
ra_deliver "$APP" "$T/c4.json" "$T/c5.json" "$T/c6.json" "$T/c7.json" "$T/c7.json" "$T/c1.json" \
  "$FIX/create_account.json"

ra_start "$APP"
F="\$filter=_parentcustomerid_value%20eq%20$ACC"

log "the contacts of an account, ordered, counted"
ra_get "$T/l1" "$API/contacts?$F&\$select=jobtitle&\$orderby=jobtitle&\$count=true"
ra_expect "list" "$T/l1" 200
b=$(ra_body "$T/l1")
expect_has "list context" "$b" '{"@odata.context":"http://localhost:7071/api/data/v9.2/$metadata#contacts(jobtitle)","@odata.count":5,"value":[{"@odata.etag":'
titles=$(echo "$b" | grep -o '"jobtitle":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
expect_eq "ordered by jobtitle, the moved contact left out" "$titles" "t-a t-b t-c t-d t-e "
expect_not "no nextLink" "$b" "nextLink"
[ -n "$(ra_header "$T/l1" x-cdc-freshness-ms)" ] || die "no x-cdc-freshness-ms on a list"

log "\$expand of the 1:N collection contact_customer_accounts, with nested options"
ra_get "$T/x1" "$API/accounts($ACC)?\$select=name&\$expand=contact_customer_accounts(\$select=jobtitle;\$orderby=jobtitle%20desc;\$top=3),primarycontactid(\$select=jobtitle)"
ra_expect "collection expand" "$T/x1" 200
b=$(ra_body "$T/x1")
expect_has "collection expand context" "$b" '#accounts(name,contact_customer_accounts(jobtitle),primarycontactid(jobtitle))/$entity"'
expect_has "collection expand" "$b" '"contact_customer_accounts":[{"@odata.etag":'
titles=$(echo "$b" | grep -o '"jobtitle":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
expect_eq "collection: ordered desc, top 3, the moved contact left out" "$titles" "t-e t-d t-c "
expect_has "lookup next to it" "$b" '"primarycontactid":null}'
ra_get "$T/x2" "$API/accounts($ACC)?\$expand=contact_customer_accounts(\$filter=jobtitle%20eq%20't-b')"
ra_expect "collection filter" "$T/x2" 200
expect_eq "collection filter" "$(ra_body "$T/x2" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4)" "$(cid 4)"
ra_get "$T/x3" "$API/accounts($ACC)?\$expand=primarycontactid(\$top=1)"
ra_expect "\$top on a lookup" "$T/x3" 400
ra_get "$T/x4" "$API/accounts($OTHER)?\$expand=contact_customer_accounts"
ra_expect "collection of an account the replica does not hold" "$T/x4" 404

log "descending and \$top"
ra_get "$T/l2" "$API/contacts?$F&\$select=jobtitle&\$orderby=jobtitle%20desc&\$top=2"
ra_expect "desc top" "$T/l2" 200
titles=$(ra_body "$T/l2" | grep -o '"jobtitle":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
expect_eq "desc top 2" "$titles" "t-e t-d "

log "server-driven paging while a write lands between pages"
ra_get "$T/p1" "$API/contacts?$F&\$select=jobtitle&\$orderby=jobtitle" --header "Prefer: odata.maxpagesize=2"
ra_expect "page 1" "$T/p1" 200
expect_eq "Preference-Applied" "$(ra_header "$T/p1" Preference-Applied)" "odata.maxpagesize=2"
b=$(ra_body "$T/p1")
all=$(echo "$b" | grep -o '"jobtitle":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
tok=$(echo "$b" | sed -n 's/.*"@odata.nextLink":"[^"]*\$skiptoken=\([0-9a-z]*\)".*/\1/p')
[ -n "$tok" ] || die "page 1 has no nextLink: $b"
expect_has "nextLink keeps the query" "$b" '"@odata.nextLink":"http://localhost:7071/api/data/v9.2/contacts?$filter=_parentcustomerid_value%20eq%20'"$ACC"'&$select=jobtitle&$orderby=jobtitle&$skiptoken='
# a new contact that sorts before the cursor, and one after it
contact c8.json 8 "$ACC" "t-0" $((T0 + 3000))
contact c9.json 9 "$ACC" "t-z" $((T0 + 3000))
ra_deliver "$APP" "$T/c8.json" "$T/c9.json"
pages=1
while [ -n "$tok" ]; do
  pages=$((pages + 1))
  ra_get "$T/p$pages" "$API/contacts?$F&\$select=jobtitle&\$orderby=jobtitle&\$skiptoken=$tok" \
    --header "Prefer: odata.maxpagesize=2"
  ra_expect "page $pages" "$T/p$pages" 200
  b=$(ra_body "$T/p$pages")
  all="$all$(echo "$b" | grep -o '"jobtitle":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')"
  tok=$(echo "$b" | sed -n 's/.*"@odata.nextLink":"[^"]*\$skiptoken=\([0-9a-z]*\)".*/\1/p')
  [ $pages -lt 10 ] || die "paging does not end"
done
expect_eq "every row once; the one written before the cursor not repeated" "$all" "t-a t-b t-c t-d t-e t-z "

log "a collection in key order reads \$top candidates first, more only when some do not pass"
# ids descending: 9, 8, then 7 (moved to another account: its index entry is stale), then 5
ra_get "$T/x5" "$API/accounts($ACC)?\$select=name&\$expand=contact_customer_accounts(\$select=jobtitle;\$orderby=contactid%20desc;\$top=3)"
ra_expect "collection by key" "$T/x5" 200
expect_eq "collection by key, desc, top 3, past a stale entry" \
  "$(ra_body "$T/x5" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')" \
  "$(cid 9) $(cid 8) $(cid 5) "

log "paging in key order (reads page + 1 candidates at a time) past a stale entry"
ra_get "$T/k1" "$API/contacts?$F&\$select=jobtitle" --header "Prefer: odata.maxpagesize=2"
ra_expect "key order page 1" "$T/k1" 200
b=$(ra_body "$T/k1")
all=$(echo "$b" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
tok=$(echo "$b" | sed -n 's/.*"@odata.nextLink":"[^"]*\$skiptoken=\([0-9a-z]*\)".*/\1/p')
pages=1
while [ -n "$tok" ]; do
  pages=$((pages + 1))
  ra_get "$T/k$pages" "$API/contacts?$F&\$select=jobtitle&\$skiptoken=$tok" \
    --header "Prefer: odata.maxpagesize=2"
  ra_expect "key order page $pages" "$T/k$pages" 200
  b=$(ra_body "$T/k$pages")
  all="$all$(echo "$b" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')"
  tok=$(echo "$b" | sed -n 's/.*"@odata.nextLink":"[^"]*\$skiptoken=\([0-9a-z]*\)".*/\1/p')
  [ $pages -lt 10 ] || die "paging does not end"
done
expect_eq "key order pages" "$all" "$(cid 1) $(cid 2) $(cid 3) $(cid 4) $(cid 5) $(cid 8) $(cid 9) "
expect_eq "key order: 4 pages" "$pages" 4

log "an unindexed column, no filter, bad options"
ra_get "$T/e1" "$API/contacts?\$filter=jobtitle%20eq%20'x'"
ra_expect "unindexed" "$T/e1" 400
expect_has "unindexed" "$(ra_body "$T/e1")" "'jobtitle' has no index"
expect_has "unindexed" "$(ra_body "$T/e1")" 'tables.contact.indexes'
ra_get "$T/e2" "$API/contacts"
ra_expect "no filter" "$T/e2" 501
for q in "$F%20or%20x%20eq%201" "$F&\$top=0" "$F&\$top=x" "$F&\$orderby=a,b" "$F&\$count=yes" \
  "$F&\$skiptoken=zz" "\$filter=_parentcustomerid_value%20eq%20'x" "$F&\$expand=x"; do
  ra_get "$T/e3" "$API/contacts?$q"
  ra_expect "bad list option $q" "$T/e3" 400
done
ra_get "$T/e4" "$API/contacts?$F&\$orderby=nosuchcolumn"
ra_expect "unknown orderby column" "$T/e4" 400

log "the index equals a rebuild: every listed contact holds the value, none that holds it is missing"
listed=$(ra_body "$T/l1" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4 | sort | tr '\n' ' ')
ra_get "$T/l3" "$API/contacts?$F"
listed=$(ra_body "$T/l3" | grep -o '"contactid":"[^"]*"' | cut -d'"' -f4 | sort | tr '\n' ' ')
want=""
for n in 1 2 3 4 5 6 7 8 9; do
  v=$(redis-cli -p "$REDIS_PORT" hget "d365:{contact:$(cid $n)}" p:_parentcustomerid_value | sed 's/.*"\([^"]*\)"$/\1/')
  [ "$v" = "$ACC" ] && want="$want$(cid $n) "
done
expect_eq "listed = records holding the value" "$listed" "$want"

ra_stop
ra_sanitizers
log "ok"
