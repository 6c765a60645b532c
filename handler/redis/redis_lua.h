/* redis_lua.h - the server-side step that applies one change atomically.
 *
 * One script, loaded with SCRIPT LOAD on each new connection and called
 * with EVALSHA (reloaded on NOSCRIPT). Every call touches one key only
 * (KEYS[1]), so it is Redis Cluster-safe. docs/redis.md describes the
 * layout; the rules are the product's correctness rules (design.md).
 *
 * Record hash KEYS[1] = <prefix>:{<table>:<id>}
 *   p:<prop>  one field per property: the 45-digit version that wrote it,
 *             the byte length n of its annotations in decimal, ':', the
 *             annotations (n bytes, a JSON object; n = 0 when none), then
 *             the value as JSON text, e.g. <45 digits>0:"Contoso". The
 *             version is first and fixed-width, so the script reads only
 *             string.sub(x, 1, 45); the length makes the rest unambiguous
 *             whatever bytes the annotations or the value hold. Fields
 *             of the earlier two-field layout (v:<prop>, m:<prop>) are
 *             neither read nor removed here: redis_read refuses a record
 *             that has any (docs/redis.md).
 *   _ver      latest version applied (any op)      _op  its op time (ms)
 *   _floor    version of the latest full row or delete: a property that
 *             is absent is known absent as of _floor
 *   _del      version of the latest delete (deleted while _del >= _ver)
 *   _reread   version of the latest "re-read needed" marker
 * Relationship hash KEYS[1] = <prefix>:{<table>:<id>}:rel:<schema>
 *   <table>:<id> of the related record -> 45-digit version, '1'
 *   (associated) or '0' (disassociated), apply time (15-digit ms), entity set
 *   #cursor   where the pruning of old disassociations goes on (HSCAN
 *             cursor; readers skip fields that start with '#')
 *
 * ARGV: [1] mode  u = write properties, d = delete, r = re-read marker,
 *                 a = associate, x = disassociate
 *       [2] version (45 digits)   [3] op time ms   [4] TTL s (0: none)
 *       [5] u: '1' full row / '0';  d: tombstone TTL s (0: kept);  a/x: now (15-digit ms)
 *       [6] a/x: prune disassociations applied before this (ms; 0: none); else ""
 *       [7..] u: 'p:<prop>', its field value as above (pairs: the hash
 *                fields and values ready-made by the sink, so the script
 *                builds no strings)
 *             a/x: member, entity set (pairs)
 * Returns 1 when something changed, 0 when the change was stale or a
 * redelivery, plus 2 ('u', 'a', 'x') when a property or member it met was
 * written by a change that differs from this one only in the OperationId
 * hash (same time, row version and op rank): the order between the two was
 * decided by the hash, so the sink marks the record for a re-read
 * (docs/versioning.md "Ties").
 *
 * A new record (the key does not exist) takes a fast path for 'u': one
 * HSET of the ready-made fields straight from ARGV, no HMGET, no loop
 * (everything is newer than nothing). One field per property instead of
 * two (value, then version + annotations) halves what HSET and HMGET
 * handle (docs/performance.md has the figures).
 *
 * Redis 6.0 is the oldest server supported (Azure Cache for Redis offers
 * 6.0): nothing here may use a later command or option (no HRANDFIELD,
 * no EXPIRE NX); tests/unit/test_redis_lua.c checks the script for that.
 *
 * Versions are compared as three 15-digit chunks with tonumber (exact in
 * doubles): Lua's '<' on strings uses strcoll, which depends on the locale.
 * unpack() is limited by the Lua C stack (~8000), so long argument lists go
 * in chunks. */
#ifndef D365CDC_REDIS_LUA_H
#define D365CDC_REDIS_LUA_H

/* One literal longer than the 4095 bytes C99 promises; gcc and clang take
 * any length, and keeping the script in one piece keeps it readable. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
static const char redis_lua_apply[] =
    "local key = KEYS[1]\n"
    "local mode = ARGV[1]\n"
    "local ver = ARGV[2]\n"
    /* both carry a real row version (not a Create's 0 nor a Delete's
     * 2^64-1) and they differ: the row versions decide (the database's
     * own order); else time, row version, tie (docs/versioning.md) */
    "local function realrv(v)\n"
    "  local r = string.sub(v, 16, 35)\n"
    "  return r ~= '00000000000000000000' and r ~= '18446744073709551615'\n"
    "end\n"
    "local function newer(a, b)\n"
    "  if not b then return true end\n"
    "  if a == b then return false end\n"
    "  if #b ~= 45 then error('corrupt version text in ' .. key) end\n"
    "  if realrv(a) and realrv(b) and string.sub(a, 16, 35) ~= string.sub(b, 16, 35) then\n"
    "    local x, y = tonumber(string.sub(a, 16, 30)), tonumber(string.sub(b, 16, 30))\n"
    "    if x ~= y then return x > y end\n"
    "    return tonumber(string.sub(a, 31, 35)) > tonumber(string.sub(b, 31, 35))\n"
    "  end\n"
    "  for i = 1, 31, 15 do\n"
    "    local x = tonumber(string.sub(a, i, i + 14))\n"
    "    local y = tonumber(string.sub(b, i, i + 14))\n"
    "    if x ~= y then return x > y end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    /* nothing in the payloads ordered a and b: same time and op rank, and
     * the same row version or one side without one (only the OperationId
     * hash, or a row version against none, decided) */
    "local function tied(a, b)\n"
    "  if not b or a == b or string.sub(a, 1, 15) ~= string.sub(b, 1, 15) then return false end\n"
    "  local ra, rb, zero = string.sub(a, 16, 35), string.sub(b, 16, 35), string.rep('0', 20)\n"
    "  if ra ~= rb and ra ~= zero and rb ~= zero then return false end\n"
    "  return math.floor(tonumber(string.sub(a, 36, 45)) / 536870912) ==\n"
    "         math.floor(tonumber(string.sub(b, 36, 45)) / 536870912)\n"
    "end\n"
    "local function chunked(cmd, list, step)\n"
    "  local i, n = 1, #list\n"
    "  while i <= n do\n"
    "    local j = math.min(i + step - 1, n)\n"
    "    redis.call(cmd, key, unpack(list, i, j))\n"
    "    i = j + 1\n"
    "  end\n"
    "end\n"
    "local function hmget(fields)\n"
    "  if #fields <= 4000 then return redis.call('HMGET', key, unpack(fields)) end\n"
    "  local out, i = {}, 1\n"
    "  while i <= #fields do\n"
    "    local j = math.min(i + 3999, #fields)\n"
    "    local part = redis.call('HMGET', key, unpack(fields, i, j))\n"
    "    for k = 1, #part do out[#out + 1] = part[k] end\n"
    "    i = j + 1\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local function arm(ttl)\n"
    "  if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end\n"
    "end\n"
    /* remove properties older than ver whose p: field is not in keep */
    "local function drop_older(keep)\n"
    "  local pf = {}\n"
    "  for _, f in ipairs(redis.call('HKEYS', key)) do\n"
    "    if string.sub(f, 1, 2) == 'p:' and not (keep and keep[f]) then pf[#pf + 1] = f end\n"
    "  end\n"
    "  if #pf == 0 then return end\n"
    "  local ps = hmget(pf)\n"
    "  local del = {}\n"
    "  for i = 1, #pf do\n"
    "    if newer(ver, string.sub(ps[i], 1, 45)) then del[#del + 1] = pf[i] end\n"
    "  end\n"
    "  if #del > 0 then chunked('HDEL', del, 4000) end\n"
    "end\n"
    "if mode == 'u' then\n"
    "  local full = ARGV[5] == '1'\n"
    /* a new record: everything is newer than nothing, nothing to drop, no
     * TTL to remove; the pairs are HSET's field/value pairs as they
     * are (unpack() has a stack limit: long lists take the loop below) */
    "  if #ARGV <= 4006 and redis.call('EXISTS', key) == 0 then\n"
    "    if full then\n"
    "      redis.call('HSET', key, '_ver', ver, '_op', ARGV[3], '_floor', ver, unpack(ARGV, 7))\n"
    "    else\n"
    "      redis.call('HSET', key, '_ver', ver, '_op', ARGV[3], unpack(ARGV, 7))\n"
    "    end\n"
    "    local ttl = tonumber(ARGV[4])\n"
    "    if ttl > 0 then redis.call('EXPIRE', key, ttl) end\n"
    "    return 1\n"
    "  end\n"
    "  local n = (#ARGV - 6) / 2\n"
    "  local fields = {'_ver', '_floor', '_reread'}\n"
    "  for i = 1, n do fields[3 + i] = ARGV[5 + 2 * i] end\n"
    "  local cur = hmget(fields)\n"
    "  local floor = cur[2]\n"
    /* no _ver, _floor or _reread: the key does not exist yet, so there is
     * nothing to drop and no TTL to remove (two calls saved per create) */
    "  local fresh = not (cur[1] or cur[2] or cur[3])\n"
    "  local set, changed, tie = {}, false, false\n"
    "  local keep = full and {} or nil\n"
    "  for i = 1, n do\n"
    "    local b = 5 + 2 * i\n"
    "    if keep then keep[ARGV[b]] = true end\n"
    "    local m = cur[3 + i]\n"
    "    local old = m and string.sub(m, 1, 45) or floor\n"
    "    if tied(ver, old) then tie = true end\n"
    "    if newer(ver, old) then\n"
    "      local k = #set\n"
    "      set[k + 1] = ARGV[b]; set[k + 2] = ARGV[b + 1]\n"
    "      changed = true\n"
    "    end\n"
    "  end\n"
    "  if full and newer(ver, floor) then\n"
    "    if not fresh then drop_older(keep) end\n"
    "    set[#set + 1] = '_floor'; set[#set + 1] = ver\n"
    "    if cur[3] and newer(ver, cur[3]) then redis.call('HDEL', key, '_reread') end\n"
    "    changed = true\n"
    "  end\n"
    "  if newer(ver, cur[1]) then\n"
    "    local k = #set\n"
    "    set[k + 1] = '_ver'; set[k + 2] = ver; set[k + 3] = '_op'; set[k + 4] = ARGV[3]\n"
    "    changed = true\n"
    "  end\n"
    "  if not changed then return tie and 2 or 0 end\n"
    "  chunked('HSET', set, 4000)\n"
    "  local ttl = tonumber(ARGV[4])\n"
    "  if ttl > 0 or not fresh then arm(ttl) end\n"
    "  return tie and 3 or 1\n"
    "elseif mode == 'd' then\n"
    "  local cur = redis.call('HMGET', key, '_ver', '_floor', '_reread')\n"
    "  if not newer(ver, cur[2]) then return 0 end\n"
    "  drop_older(nil)\n"
    "  local set = {'_del', ver, '_floor', ver}\n"
    "  if cur[3] and newer(ver, cur[3]) then redis.call('HDEL', key, '_reread') end\n"
    "  local latest = newer(ver, cur[1])\n"
    "  if latest then set[5] = '_ver'; set[6] = ver; set[7] = '_op'; set[8] = ARGV[3] end\n"
    "  redis.call('HSET', key, unpack(set))\n"
    "  if latest then arm(tonumber(ARGV[5])) end\n"
    "  return 1\n"
    "elseif mode == 'r' then\n"
    "  local cur = redis.call('HMGET', key, '_reread', '_floor')\n"
    "  if not newer(ver, cur[1]) or not newer(ver, cur[2]) then return 0 end\n"
    "  redis.call('HSET', key, '_reread', ver)\n"
    "  local ttl = tonumber(ARGV[4])\n"
    "  if ttl > 0 and redis.call('TTL', key) == -1 then redis.call('EXPIRE', key, ttl) end\n"
    "  return 1\n"
    "elseif mode == 'a' or mode == 'x' then\n"
    "  local state = mode == 'a' and '1' or '0'\n"
    "  local now = ARGV[5]\n"
    "  local n = (#ARGV - 6) / 2\n"
    /* nothing to relate (the sink refuses such a document; a caller that
     * sends one anyway gets 0, not an HMGET without fields) */
    "  if n < 1 then return 0 end\n"
    "  local fields = {}\n"
    "  for i = 1, n do fields[i] = ARGV[5 + 2 * i] end\n"
    "  local cur = hmget(fields)\n"
    "  local set, tie = {}, false\n"
    "  for i = 1, n do\n"
    "    local c = cur[i]\n"
    "    if c and tied(ver, string.sub(c, 1, 45)) then tie = true end\n"
    "    if newer(ver, c and string.sub(c, 1, 45)) then\n"
    "      set[#set + 1] = fields[i]; set[#set + 1] = ver .. state .. now .. ARGV[6 + 2 * i]\n"
    "    end\n"
    "  end\n"
    "  if #set == 0 then return tie and 2 or 0 end\n"
    "  chunked('HSET', set, 4000)\n"
    /* forget disassociations older than the tombstone TTL, a page of
     * HSCAN per call from where the last call stopped, so the set does not
     * grow without bound */
    "  local before = tonumber(ARGV[6])\n"
    "  local at = redis.call('HGET', key, '#cursor') or '0'\n"
    "  local page = redis.call('HSCAN', key, at, 'COUNT', 16)\n"
    "  local items, del = page[2], {}\n"
    "  for i = 1, #items, 2 do\n"
    "    local f, v = items[i], items[i + 1]\n"
    "    if string.sub(f, 1, 1) ~= '#' and string.sub(v, 46, 46) == '0'\n"
    "       and tonumber(string.sub(v, 47, 61)) < before then\n"
    "      del[#del + 1] = f\n"
    "    end\n"
    "  end\n"
    "  if page[1] ~= '0' then redis.call('HSET', key, '#cursor', page[1])\n"
    "  elseif at ~= '0' then del[#del + 1] = '#cursor' end\n"
    "  if #del > 0 then chunked('HDEL', del, 4000) end\n"
    "  arm(tonumber(ARGV[4]))\n"
    "  return tie and 3 or 1\n"
    "end\n"
    "return redis.error_reply('ERR d365 apply script: unknown mode ' .. tostring(mode))\n";
#pragma GCC diagnostic pop

#endif
