#!/bin/sh
# pipeline_dataverse.sh - the replica under what Dataverse really does
# (issue 11), each case through build/hostemu -> the handler -> a private
# redis-server and PostgreSQL:
#   ties: two Updates of one column in the same second without a row
#     version are applied deterministically, the record is marked for a
#     re-read (<prefix>:reread) and counted (ties= in the answer's Logs,
#     order_ties in the metrics); with a post image versionnumber the later
#     one wins in either order and nothing is marked;
#   nested: a Depth 2 Update of its parent's row is applied and marked;
#   restore: Create, Delete, Restore (post image), Update of telephone1:
#     every column of the post image is back (Redis and SQL); a Restore
#     and an Update with a higher versionnumber stamped before it, in one
#     batch: the Update's value stays (Redis and SQL);
#   tombstones: kept without expiry by default; with
#     CDC_TOMBSTONE_TTL_SECONDS a change older than the horizon is poison;
#   one bad message in a batch: an Associate with RelatedEntities [] (Redis)
#     and one whose relationship name is too long for PostgreSQL (SQL) are
#     poison, the Create next to them is written, the invocation succeeds;
#   one column rule: an Update older than a newer full row sets a column the
#     row did not list: neither Redis nor SQL keeps it.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
pgdir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
start_postgres "$pgdir"
start_redis "$dir"
log "PostgreSQL on $PG_SOCKDIR port $PG_PORT, Redis on $REDIS_PORT"

T=1731000000000
IDP=c0000000-0000-4000-8000-0000000000
LEAD=b0000000-0000-4000-8000-000000000001
NS='__type":"Entity:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts'
# post_image ID ATTRS: a PostEntityImages member with those Attributes
post_image() {
  printf '"PostEntityImages":[{"key":"PostImage","value":{"Attributes":[%s],"EntityState":null,"FormattedValues":[],"Id":"%s","KeyAttributes":[],"LogicalName":"account","RelatedEntities":[],"RowVersion":null}}]' "$2" "$1"
}
kv() { printf '{"key":"%s","value":%s}' "$1" "$2"; }
# upd_vn OUT ID TS COL VAL VERSIONNUMBER: an Update with a post image versionnumber
upd_vn() {
  _fill account_update "$1" "$2" "$3" -e "s|@COL@|$4|g" -e "s|@VAL@|$5|g" \
    -e "s|\"PostEntityImages\":\[\]|$(post_image "$2" "$(kv "$4" "\"$5\""),$(kv versionnumber "$6")")|"
}
# restore OUT ID TS [ATTRS]: a Restore (with a post image of ATTRS when given)
restore() {
  if [ $# -ge 4 ]; then
    _fill account_update "$1" "$2" "$3" -e "s|@COL@|name|g" -e "s|@VAL@|x|g" \
      -e 's|"MessageName":"Update"|"MessageName":"Restore"|' \
      -e "s|\"PostEntityImages\":\[\]|$(post_image "$2" "$4")|"
  else
    _fill account_update "$1" "$2" "$3" -e "s|@COL@|name|g" -e "s|@VAL@|x|g" \
      -e 's|"MessageName":"Update"|"MessageName":"Restore"|'
  fi
}
phone() { redis-cli -p "$REDIS_PORT" --raw HGET "d365:{account:$1}" p:telephone1 | prop_values; }
in_reread() { redis-cli -p "$REDIS_PORT" ZSCORE d365:reread "account:$1"; }
A=/api/data/v9.2/accounts
BASE_ENV="--env CDC_MAPPING_FILE= --env RedisConnection=127.0.0.1:$REDIS_PORT"

# ---- ties, nested changes ------------------------------------------------------
m=$dir/ties
mkdir -p "$m"
TIE=${IDP}01 VNA=${IDP}02 VNB=${IDP}03 NEST=${IDP}04
msg_create "$m/01" "$TIE" $((T + 1000)) "Tie" N-T P0 1
msg_update "$m/02" "$TIE" $((T + 5000)) telephone1 "first"
msg_update "$m/03" "$TIE" $((T + 5000)) telephone1 "second"
# the same second with versionnumber: B1 (older, 100) delivered after B2 (101)
for r in VNA VNB; do
  eval "rid=\$$r"
  msg_create "$m/04_$r" "$rid" $((T + 1000)) "$r" "N-$r" P0 1
done
upd_vn "$m/05_VNA" "$VNA" $((T + 5000)) telephone1 "vn100" 100
upd_vn "$m/06_VNA" "$VNA" $((T + 5000)) telephone1 "vn101" 101
upd_vn "$m/06_VNB" "$VNB" $((T + 5000)) telephone1 "vn101" 101
upd_vn "$m/07_VNB" "$VNB" $((T + 5000)) telephone1 "vn100" 100
# clock skew: the database wrote SKB after SKA (versionnumber 301 > 300),
# but SKB's server stamped it half a second earlier: the row versions decide
SK=${IDP}05
msg_create "$m/07_SK" "$SK" $((T + 1000)) "SK" N-SK P0 1
upd_vn "$m/07_SKB" "$SK" $((T + 5500)) telephone1 "db-later" 301
upd_vn "$m/07_SKA" "$SK" $((T + 6000)) telephone1 "db-earlier" 300
# Associate and Disassociate of one pair in the same second: a tie too
RT=${IDP}06
msg_create "$m/07_RT" "$RT" $((T + 1000)) "RT" N-RT P0 1
msg_relate "$m/07_RTa" "$RT" $((T + 7000)) Associate "$LEAD"
msg_relate "$m/07_RTb" "$RT" $((T + 7000)) Disassociate "$LEAD"
msg_create "$m/08" "$NEST" $((T + 1000)) "Nest" N-N P0 1
msg_update "$m/09" "$NEST" $((T + 4000)) telephone1 "by plug-in"
sed -i -e 's|"Depth":1|"Depth":2|' -e "s|\"ParentContext\":null|\"ParentContext\":{\"Depth\":1,\"MessageName\":\"Update\",\"PrimaryEntityId\":\"$NEST\",\"PrimaryEntityName\":\"account\"}|" "$m/09"
PL_ENV="--env CDC_TARGET=redis $BASE_ENV"
hostemu "$BUILD/app" ties --messages "$m" --batch 1 --concurrency 1 --stop || bad "ties: hostemu exited $?"
settled ties "$(count_msgs "$m")"
expect_eq "$(in_reread "$TIE")" "$((T + 5000))" "same second, no row version: marked for a re-read"
expect_eq "$(logs_sum ties ties)" 3 "ties: counted (two ties and the nested change)"
expect_eq "$(in_reread "$RT")" "$((T + 7000))" "Associate/Disassociate of one pair in the same second: marked"
expect_eq "$(phone "$VNA")/$(phone "$VNB")" '"vn101"/"vn101"' "same second with versionnumber: the later wins in both orders"
expect_eq "$(in_reread "$VNA")$(in_reread "$VNB")" "" "versionnumber: nothing marked"
expect_eq "$(phone "$SK")" '"db-later"' "clock skew: versionnumber on both sides decides (Redis)"
expect_eq "$(phone "$NEST")" '"by plug-in"' "nested change applied"
expect_eq "$(in_reread "$NEST")" "$((T + 4000))" "nested change on its parent's row: marked for a re-read"

m=$dir/skew
mkdir -p "$m"
cp "$dir/ties/07_SK" "$dir/ties/07_SKB" "$dir/ties/07_SKA" "$m/"
PL_ENV="--env CDC_TARGET=sql --env SqlConnectionString=$PG_ODBC $BASE_ENV"
hostemu "$BUILD/app" skew --messages "$m" --batch 1 --concurrency 1 --stop || bad "skew: hostemu exited $?"
expect_eq "$(pg_psql "SELECT telephone1 FROM account WHERE accountid = '$SK'" 2>&1)" "db-later" "clock skew: versionnumber on both sides decides (SQL)"
pg_psql "DROP TABLE IF EXISTS account" >/dev/null

# ---- restore --------------------------------------------------------------------
m=$dir/restore
mkdir -p "$m"
RS=${IDP}11 RN=${IDP}12
for r in RS RN; do
  eval "rid=\$$r"
  msg_create "$m/01_$r" "$rid" $((T + 1000)) "$r v1" "N-$r" P1 100
  msg_delete "$m/02_$r" "$rid" $((T + 2000))
done
restore "$m/03_RS" "$RS" $((T + 3000)) \
  "$(kv name '"RS back"'),$(kv accountnumber '"N-RS"'),$(kv telephone1 '"P1"'),$(kv accountid "\"$RS\""),$(kv versionnumber 900)"
restore "$m/03_RN" "$RN" $((T + 3000))
for r in RS RN; do
  eval "rid=\$$r"
  msg_update "$m/04_$r" "$rid" $((T + 4000)) telephone1 "P4"
done
for tgt in redis sql; do
  PL_ENV="--env CDC_TARGET=$tgt --env SqlConnectionString=$PG_ODBC $BASE_ENV"
  hostemu "$BUILD/app" "restore_$tgt" --messages "$m" --batch 1 --concurrency 1 --stop || bad "restore $tgt: hostemu exited $?"
  settled "restore_$tgt" "$(count_msgs "$m")"
done
expect_read "$BUILD/app" "$A($RS)?\$select=name,accountnumber,telephone1" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name,accountnumber,telephone1)/\$entity\",\"accountid\":\"$RS\",\"accountnumber\":\"N-RS\",\"name\":\"RS back\",\"telephone1\":\"P4\"}" \
  $BASE_ENV
expect_eq "$(pg_psql "SELECT name || '|' || accountnumber || '|' || telephone1 || '|' || _cdc_deleted FROM account WHERE accountid = '$RS'")" \
  "RS back|N-RS|P4|false" "sql: restored row with its post image, then the update"
expect_eq "$(in_reread "$RN")" "$((T + 3000))" "restore without a post image: marked for a re-read"
pg_psql "DROP TABLE IF EXISTS account, _cdc_poison" >/dev/null

# a Restore (post image versionnumber 901) and an Update the database wrote
# after it (902) but stamped 100 ms before it, in one batch: the Update's
# column wins by row version in both sinks (property test seed 1796602503:
# the SQL batch's full-row fill compared the texts and reset the column)
m=$dir/restore_skew
mkdir -p "$m"
RK=${IDP}13
msg_create "$m/01" "$RK" $((T + 1000)) "RK v1" N-RK P1 100
msg_delete "$m/02" "$RK" $((T + 2000))
restore "$m/03" "$RK" $((T + 3000)) \
  "$(kv name '"RK back"'),$(kv accountnumber '"N-RK"'),$(kv telephone1 '"P1"'),$(kv accountid "\"$RK\""),$(kv versionnumber 901)"
upd_vn "$m/04" "$RK" $((T + 2900)) telephone1 "P-skew" 902
for tgt in redis sql; do
  PL_ENV="--env CDC_TARGET=$tgt --env SqlConnectionString=$PG_ODBC $BASE_ENV"
  hostemu "$BUILD/app" "restore_skew_$tgt" --messages "$m" --batch 10 --concurrency 1 --stop ||
    bad "restore_skew $tgt: hostemu exited $?"
  settled "restore_skew_$tgt" "$(count_msgs "$m")"
done
expect_eq "$(phone "$RK")" '"P-skew"' "restore and a later-by-row-version update in one batch (Redis)"
expect_eq "$(pg_psql "SELECT name || '|' || accountnumber || '|' || coalesce(telephone1, 'NULL') || '|' || _cdc_deleted FROM account WHERE accountid = '$RK'")" \
  "RK back|N-RK|P-skew|false" "sql: restore and a later-by-row-version update in one batch"
pg_psql "DROP TABLE IF EXISTS account, _cdc_poison" >/dev/null

# ---- tombstones -------------------------------------------------------------------
m=$dir/tomb
mkdir -p "$m"
TB=${IDP}21
msg_create "$m/01" "$TB" $((T + 1000)) "TB" N-TB P1 1
msg_delete "$m/02" "$TB" $((T + 2000))
PL_ENV="--env CDC_TARGET=redis $BASE_ENV"
hostemu "$BUILD/app" tomb --messages "$m" --batch 1 --concurrency 1 --stop || bad "tomb: hostemu exited $?"
expect_eq "$(redis-cli -p "$REDIS_PORT" TTL "d365:{account:$TB}")" -1 "tombstone without expiry by default"
m2=$dir/tomb_old
mkdir -p "$m2"
msg_create "$m2/01" "${IDP}22" $((T + 1000)) "old" N-O P1 1
PL_ENV="--env CDC_TARGET=redis --env CDC_TOMBSTONE_TTL_SECONDS=60 $BASE_ENV"
hostemu "$BUILD/app" tomb_old --messages "$m2" --batch 1 --concurrency 1 --stop || bad "tomb_old: hostemu exited $?"
settled tomb_old 1
expect_eq "$(redis-cli -p "$REDIS_PORT" EXISTS "d365:{account:${IDP}22}")" 0 "TTL set: a change older than the horizon is not applied"
case "$(redis-cli -p "$REDIS_PORT" --raw XREVRANGE d365:poison + - COUNT 1)" in
*"older than the tombstone retention"*) ok "TTL set: ... and is poison with the reason" ;;
*) bad "TTL set: no poison record with the reason: $(redis-cli -p "$REDIS_PORT" --raw XREVRANGE d365:poison + - COUNT 1 | tr '\n' ' ' | cut -c1-300)" ;;
esac

# ---- one bad message in a batch ---------------------------------------------------------
m=$dir/batch
mkdir -p "$m"
BG=${IDP}31 BR=${IDP}32
msg_create "$m/01" "$BG" $((T + 1000)) "Good" N-G P1 1
msg_relate "$m/02" "$BR" $((T + 1000)) Associate "$LEAD"
sed -i 's|"key":"RelatedEntities","value":\[{[^}]*}\]|"key":"RelatedEntities","value":[]|' "$m/02"
sidecar "$m/02" bad-empty-related
redis-cli -p "$REDIS_PORT" DEL d365:poison >/dev/null
PL_ENV="--env CDC_TARGET=redis $BASE_ENV"
hostemu "$BUILD/app" batch --messages "$m" --batch 10 --concurrency 1 --stop || bad "batch: hostemu exited $?"
settled batch 2
expect_eq "$(redis-cli -p "$REDIS_PORT" EXISTS "d365:{account:$BG}")" 1 "redis: the good Create of the batch is written"
expect_eq "$(redis-cli -p "$REDIS_PORT" XLEN d365:poison)" 1 "redis: the Associate without related records is poison"
# a message the server refuses for its own key (WRONGTYPE: something else
# wrote a string there): that message is poison, the batch goes on
m=$dir/batch_wt
mkdir -p "$m"
WG=${IDP}33 WT=${IDP}34
redis-cli -p "$REDIS_PORT" SET "d365:{account:$WT}" "not a hash" >/dev/null
msg_create "$m/01" "$WG" $((T + 1000)) "Good too" N-G P1 1
msg_update "$m/02" "$WT" $((T + 1000)) telephone1 "x"
sidecar "$m/02" bad-wrongtype
hostemu "$BUILD/app" batch_wt --messages "$m" --batch 10 --concurrency 1 --stop || bad "batch_wt: hostemu exited $?"
settled batch_wt 2
expect_eq "$(redis-cli -p "$REDIS_PORT" EXISTS "d365:{account:$WG}")" 1 "redis: the Create next to a refused message is written"
case "$(redis-cli -p "$REDIS_PORT" --raw XREVRANGE d365:poison + - COUNT 1)" in
*bad-wrongtype*WRONGTYPE*|*WRONGTYPE*bad-wrongtype*) ok "redis: the message Redis refused (WRONGTYPE) is poison with the reason" ;;
*) bad "redis: no poison record for the refused message: $(redis-cli -p "$REDIS_PORT" --raw XREVRANGE d365:poison + - COUNT 1 | tr '\n' ' ' | cut -c1-300)" ;;
esac

m=$dir/batch_sql
mkdir -p "$m"
# 59 characters: a table name PostgreSQL takes (63); a link table has no
# tombstone table, so no "__tombstone" suffix counts against it. 70: too
# long for a PostgreSQL table name, so that message alone is poison.
LONG=new_account_lead_relationship_with_a_very_long_name_x59ch
TOOLONG=new_account_lead_relationship_with_a_name_far_too_long_for_postgres_70
msg_create "$m/01" "$BG" $((T + 1000)) "Good" N-G P1 1
msg_relate "$m/02" "$BR" $((T + 1000)) Associate "$LEAD"
sed -i "s|accountleads_association|$LONG|g" "$m/02"
msg_relate "$m/03" "$BR" $((T + 1000)) Associate "$LEAD"
sed -i "s|accountleads_association|$TOOLONG|g" "$m/03"
sidecar "$m/03" bad-long-relationship
PL_ENV="--env CDC_TARGET=sql --env CDC_SQL_DELETE=hard --env SqlConnectionString=$PG_ODBC $BASE_ENV"
hostemu "$BUILD/app" batch_sql --messages "$m" --batch 10 --concurrency 1 --stop || bad "batch sql: hostemu exited $?"
settled batch_sql 3
expect_eq "$(pg_psql "SELECT name FROM account WHERE accountid = '$BG'" 2>&1)" "Good" "sql: the good Create of the batch is written"
expect_eq "$(pg_psql "SELECT id1 || '|' || id2 || '|' || _cdc_associated FROM $LONG" 2>&1)" "$BR|$LEAD|true" "sql: a 59-character relationship is a link table (no tombstone suffix)"
expect_eq "$(pg_psql "SELECT poison_key FROM _cdc_poison" 2>&1)" "bad-long-relationship" "sql: the Associate whose relationship name is too long for PostgreSQL is poison"
case "$(pg_psql "SELECT reason FROM _cdc_poison" 2>&1)" in
*"relationship name"*"too long"*"63"*) ok "sql: the poison reason names the relationship and the limit" ;;
*) bad "sql: poison reason: $(pg_psql "SELECT reason FROM _cdc_poison" 2>&1)" ;;
esac
pg_psql "DROP TABLE IF EXISTS account, account__tombstone, $LONG, _cdc_poison" >/dev/null

# a value the database refuses at execution time (a NUL character: text in
# PostgreSQL cannot hold one): the batch is written again one document per
# transaction, the refused message is poison, the others are written
m=$dir/batch_nul
mkdir -p "$m"
NG=${IDP}35 NB=${IDP}36
msg_create "$m/01" "$NG" $((T + 1000)) "Good" N-G P1 1
msg_create "$m/02" "$NB" $((T + 1000)) "Nul" N-B P1 1
sed -i 's|"value":"Nul"|"value":"a\\u0000b"|' "$m/02"
sidecar "$m/02" bad-nul
PL_ENV="--env CDC_TARGET=sql --env SqlConnectionString=$PG_ODBC $BASE_ENV"
hostemu "$BUILD/app" batch_nul --messages "$m" --batch 10 --concurrency 1 --stop || bad "batch_nul: hostemu exited $?"
settled batch_nul 2
expect_eq "$(pg_psql "SELECT name FROM account WHERE accountid IN ('$NG', '$NB')" 2>&1)" "Good" "sql: the message next to a refused value is written"
case "$(pg_psql "SELECT poison_key || ' ' || reason FROM _cdc_poison" 2>&1)" in
"bad-nul sql (refused): "*SQLSTATE*) ok "sql: the message whose value the database refused is poison with the reason" ;;
*) bad "sql: refused value: $(pg_psql "SELECT poison_key || ' ' || reason FROM _cdc_poison" 2>&1 | cut -c1-300)" ;;
esac
pg_psql "DROP TABLE IF EXISTS account, _cdc_poison" >/dev/null

# ---- one column rule, both sinks -----------------------------------------------------
m=$dir/cols
mkdir -p "$m"
CR=${IDP}41
msg_create "$m/01" "$CR" $((T + 2000)) "CR" N-CR P1 1
msg_update "$m/02" "$CR" $((T + 1000)) fax "old fax"
msg_update "$m/03" "$CR" $((T + 3000)) telephone1 "newer"
PL_ENV="--env CDC_TARGET=redis+sql --env CDC_SQL_SCHEMA=evolve --env SqlConnectionString=$PG_ODBC $BASE_ENV"
hostemu "$BUILD/app" cols --messages "$m" --batch 1 --concurrency 1 --stop || bad "cols: hostemu exited $?"
settled cols 3
r_fax=$(redis-cli -p "$REDIS_PORT" --raw HGET "d365:{account:$CR}" p:fax | prop_values)
s_fax=$(pg_psql "SELECT coalesce(fax, 'null') FROM account WHERE accountid = '$CR'" 2>&1)
expect_eq "redis=${r_fax:-absent} sql=$s_fax" "redis=absent sql=null" "an Update older than the full row: neither sink keeps its new column"

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish
