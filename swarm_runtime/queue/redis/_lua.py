"""The Lua scripts of the Redis backend: every multi-step state change runs atomically in Redis.

Each script is the shared prelude (key names and helpers) plus its own body. Keys are built
inside the scripts from the prefix (``ARGV[1]``) because most scripts learn a message's topic
only from the id index; see the package docstring for the layout. Times (``now``,
deadlines, due times) always come from the queue's clock, never from Redis's ``TIME``.

The hot paths touch as few keys per message as possible: a publish is XADD + HSETNX on the
index, a first delivery costs nothing per message beyond the batch's XREADGROUP and one
ZADD of all the leases, and an ack is one HMGET and one HDEL for the whole batch plus
XACK / XTRIM per stream.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

PRELUDE = r"""
local P = ARGV[1]
local G = 'swarm'
local IX = P .. ':q:ix'
local TOPICS = P .. ':q:topics'
local function mkey(id) return P .. ':q:m:' .. id end
local function tkey(t, s) return P .. ':q:t:' .. t .. ':' .. s end
local function skey(t, p) return P .. ':q:t:' .. t .. ':s:' .. p end

-- the id index: message id -> "ENTRY|PRIORITY|TOPIC" (ENTRY '' until first enqueued)
local function ixval(eid, p, t) return eid .. '|' .. p .. '|' .. t end
local function ixparse(v) return string.match(v, '^([^|]*)|([^|]*)|(.*)$') end

-- an entry id as a string that sorts like the id ("ms-seq", both parts zero-padded)
local function sortable(eid)
  local ms, seq = string.match(eid, '^(%d+)-(%d+)$')
  return string.rep('0', 16 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end

-- members of the ready-again set: "SORTABLE-ENTRY|ID"
local function rq_member(eid, id) return sortable(eid) .. '|' .. id end
local function rq_parse(member)
  local ms, seq, id = string.match(member, '^0*(%d+)-0*(%d+)|(.*)$')
  return ms .. '-' .. seq, id
end

-- a message as JSON: its envelope plus attempts and last error
local function as_json(body, a, x)
  local err = 'null'
  if x then err = cjson.encode(x) end
  return string.sub(body, 1, -2) .. ',"attempts":' .. a .. ',"last_error":' .. err .. '}'
end

-- fields of a stream entry (a flat list) as a table
local function fields(raw)
  local f = {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  return f
end

local function entry_fields(s, eid)
  local r = redis.call('XRANGE', s, eid, eid)
  if #r == 0 then return nil end
  return fields(r[1][2])
end

-- append an entry for message `id` to the stream of priority `p`; returns its entry id
local known = {}
local function add_entry(t, p, id, body, k, x)
  local s = skey(t, p)
  local plain = not x and (not k or k == '')
  if plain and known[s] then return redis.call('XADD', s, '*', 'i', id, 'b', body) end
  local args = {'XADD', s, '*', 'i', id, 'b', body}
  if k and k ~= '' then args[#args + 1] = 'k'; args[#args + 1] = k end
  if x then args[#args + 1] = 'x'; args[#args + 1] = x end
  if known[s] then return redis.call(unpack(args)) end
  local new = redis.call('EXISTS', s) == 0
  local eid = redis.call(unpack(args))
  if new then
    redis.call('XGROUP', 'CREATE', s, G, '0')
    redis.call('ZADD', tkey(t, 'lv'), p, p)
  end
  known[s] = true
  return eid
end

-- count of never-delivered entries per priority level (lag is not reliable after deletes)
local function fresh_add(t, p, n)
  if n ~= 0 then redis.call('HINCRBY', tkey(t, 'fr'), p, n) end
end

-- forget a topic that holds nothing any more
local function gc_topic(t)
  if redis.call('EXISTS', tkey(t, 'lv'), tkey(t, 'dl'), tkey(t, 'ls'), tkey(t, 'rq'),
                tkey(t, 'dlq'), tkey(t, 'fr')) == 0 then
    redis.call('SREM', TOPICS, t)
  end
end

local function drop_stream_if_empty(t, p, s)
  if redis.call('XLEN', s) == 0 then
    redis.call('DEL', s)
    redis.call('ZREM', tkey(t, 'lv'), p)
    redis.call('HDEL', tkey(t, 'fr'), p)
    known[s] = nil
    gc_topic(t)
  end
end

-- settle one stream entry: out of the group's PEL and out of the stream
local function drop_entry(t, p, eid)
  local s = skey(t, p)
  redis.call('XACK', s, G, eid)
  redis.call('XDEL', s, eid)
  drop_stream_if_empty(t, p, s)
end

-- the group's last-delivered-id on stream s
local function last_delivered(s)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
    local name, ld
    for i = 1, #g, 2 do
      if g[i] == 'name' then
        name = g[i + 1]
      elseif g[i] == 'last-delivered-id' then
        ld = g[i + 1]
      end
    end
    if name == G then return ld end
  end
  return '0-0'
end

-- settle acked entries of one stream. Everything older than the oldest pending entry is
-- settled and goes with one XTRIM; acked entries the trim cannot reach yet are deleted one
-- by one only once such garbage passes 4096 entries, and never-delivered entries at once.
-- The stream goes when empty.
local function settle(t, p, eids)
  local s = skey(t, p)
  local acked = redis.call('XACK', s, G, unpack(eids))
  fresh_add(t, p, acked - #eids)  -- the others were never delivered
  local pending = redis.call('XPENDING', s, G)
  local ld = last_delivered(s)
  local fresh = tonumber(redis.call('HGET', tkey(t, 'fr'), p)) or 0
  local floor
  if pending[1] > 0 then
    floor = pending[2]
  else
    local ms, seq = string.match(ld, '^(%d+)-(%d+)$')
    floor = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
  end
  local late = redis.call('XLEN', s) - pending[1] - fresh > 4096
  if late or acked < #eids then
    local low, top = sortable(floor), sortable(ld)
    local del = {}
    for _, eid in ipairs(eids) do
      local key = sortable(eid)
      if key > top or (late and key >= low) then del[#del + 1] = eid end
    end
    if #del > 0 then redis.call('XDEL', s, unpack(del)) end
  end
  redis.call('XTRIM', s, 'MINID', floor)
  drop_stream_if_empty(t, p, s)
end

-- move a message to the topic's dead-letter stream, carrying its last error
local function kill(t, id, p, eid, a, err, f)
  f = f or {}
  redis.call('XADD', tkey(t, 'dlq'), '*', 'i', id, 'b', f['b'] or '{}', 'a', a, 'x', err,
             'p', p, 'k', f['k'] or '')
  if eid ~= '' then drop_entry(t, p, eid) end
  redis.call('HDEL', IX, id)
  redis.call('DEL', mkey(id))
end

-- wake up to `n` subscribers waiting on the topic (any process), if any is waiting
local function notify(t, n)
  if n <= 0 then return end
  local ttl = redis.call('PTTL', tkey(t, 'w'))
  if ttl > 0 then
    local bell = tkey(t, 'bell')
    local tokens = {}
    for i = 1, math.min(n, 64) do tokens[i] = '1' end
    redis.call('RPUSH', bell, unpack(tokens))
    redis.call('LTRIM', bell, -64, -1)
    redis.call('PEXPIRE', bell, ttl)
  end
end

-- make a message whose entry is still pending ready again, in its old place
local function requeue(t, id, p, eid)
  redis.call('ZADD', tkey(t, 'rq'), -tonumber(p), rq_member(eid, id))
end

-- attempts of a message that has been delivered (1 unless it was delivered again)
local function attempts(id)
  return tonumber(redis.call('HGET', mkey(id), 'a')) or 1
end

-- due delayed messages become ready; expired leases become ready again, or dead
local function promote(t, now, dmax)
  local made = 0
  local dl = tkey(t, 'dl')
  local due = redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 500)
  if #due > 0 then
    redis.call('ZREM', dl, unpack(due))
    for _, id in ipairs(due) do
      local v = redis.call('HGET', IX, id)
      if v then
        local eid, p = ixparse(v)
        if eid ~= '' then
          requeue(t, id, p, eid)
        else
          local m = mkey(id)
          local ex = redis.call('HMGET', m, 'b', 'k', 'x')
          local new = add_entry(t, p, id, ex[1] or '{}', ex[2], ex[3] or nil)
          fresh_add(t, p, 1)
          redis.call('HSET', IX, id, ixval(new, p, t))
          redis.call('DEL', m)
        end
        made = made + 1
      end
    end
  end
  local ls = tkey(t, 'ls')
  local expired = redis.call('ZRANGEBYSCORE', ls, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 500)
  if #expired > 0 then
    -- by deadline, then publish order (as the memory backend does)
    local items, ids = {}, {}
    for i = 1, #expired, 2 do
      local id = expired[i]
      local v = redis.call('HGET', IX, id)
      ids[#ids + 1] = id
      if v then
        local eid, p = ixparse(v)
        items[#items + 1] = {tonumber(expired[i + 1]), sortable(eid), id, eid, p}
      end
    end
    redis.call('ZREM', ls, unpack(ids))
    table.sort(items, function(x, y)
      if x[1] ~= y[1] then return x[1] < y[1] end
      return x[2] < y[2]
    end)
    for _, item in ipairs(items) do
      local id, eid, p = item[3], item[4], item[5]
      local a = attempts(id)
      local f = entry_fields(skey(t, p), eid)
      local mx = tonumber(f and f['k']) or dmax
      if a >= mx then
        kill(t, id, p, eid, a, 'lease expired without ack on attempt ' .. a .. ' of ' .. mx, f)
      else
        requeue(t, id, p, eid)
        made = made + 1
      end
    end
  end
  return made
end
"""

# ARGV: prefix, now, dedup_until, dedup_ms, meta, envelope...
#   meta: JSON [[topic, id, priority, due ('' = ready now), dedup key, max_attempts,
#   last_error], ...] (strings; '' for none, last_error null for none), one per envelope.
# Returns {index, id, ...} for the messages whose dedup key was already taken. A message
# whose id is already queued is not stored again.
PUBLISH = r"""
local now = tonumber(ARGV[2])
local until_ = ARGV[3]
local dedup_ms = tonumber(ARGV[4])
local meta = cjson.decode(ARGV[5])
local ids = {}
for n, r in ipairs(meta) do ids[n] = r[2] end
local have = redis.call('HMGET', IX, unpack(ids))
local out, index = {}, {}
local ready, topics, seen, added = {}, {}, {}, {}
for n, r in ipairs(meta) do
  local t, id, p, due, dk, k, x = r[1], r[2], r[3], r[4], r[5], r[6], r[7]
  if x == cjson.null then x = nil end
  local skip = have[n] or seen[id]
  local ukey
  if dk ~= '' and not skip then
    ukey = P .. ':q:u:' .. dk
    local v = redis.call('GET', ukey)
    if v then
      local sep = string.find(v, '|', 1, true)
      if sep and tonumber(string.sub(v, 1, sep - 1)) > now then
        out[#out + 1] = n - 1
        out[#out + 1] = string.sub(v, sep + 1)
        skip = true
      end
    end
  end
  if not skip then
    seen[id] = true
    local body = ARGV[5 + n]
    local eid = ''
    if due ~= '' then
      local ex = {'b', body}
      if k ~= '' then ex[#ex + 1] = 'k'; ex[#ex + 1] = k end
      if x then ex[#ex + 1] = 'x'; ex[#ex + 1] = x end
      redis.call('HSET', mkey(id), unpack(ex))
      redis.call('ZADD', tkey(t, 'dl'), due, id)
      ready[t] = ready[t] or 0  -- waiters learn the new due time
    else
      eid = add_entry(t, p, id, body, k, x)
      ready[t] = (ready[t] or 0) + 1
      local key = t .. '|' .. p
      local c = added[key]
      if not c then
        c = {t, p, 0}
        added[key] = c
      end
      c[3] = c[3] + 1
    end
    index[#index + 1] = id
    index[#index + 1] = eid .. '|' .. p .. '|' .. t
    if ukey and dedup_ms > 0 then
      redis.call('SET', ukey, until_ .. '|' .. id, 'PX', dedup_ms)
    end
    if not topics[t] then
      topics[t] = true
      redis.call('SADD', TOPICS, t)
    end
  end
end
if #index > 0 then redis.call('HSET', IX, unpack(index)) end
for _, c in pairs(added) do fresh_add(c[1], c[2], c[3]) end
for t, count in pairs(ready) do notify(t, math.max(count, 1)) end
return out
"""

# ARGV: prefix, topic, consumer, now, lease deadline, batch size, default max_attempts,
#       waiter flag ms (0: the caller will not wait)
# Returns {next_due or '', the leased messages' envelopes joined by ',', JSON [[index,
# attempts, last_error], ...] for those not on their first attempt or carrying an error}.
SUBSCRIBE = r"""
local t, consumer, now, deadline = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local need = tonumber(ARGV[6])
local dmax = tonumber(ARGV[7])
local wait_ms = tonumber(ARGV[8])
local wanted = need
promote(t, now, dmax)
local bodies, leases, unusual = {}, {}, {}
-- most deliveries are first deliveries without an error: only the others are described
local function emit(id, body, a, x)
  bodies[#bodies + 1] = body
  leases[#leases + 1] = deadline
  leases[#leases + 1] = id
  if a ~= 1 or x then unusual[#unusual + 1] = {#bodies - 1, a, x or cjson.null} end
end
local levels = redis.call('ZREVRANGE', tkey(t, 'lv'), 0, -1)
if #levels > 0 then
  local rqk = tkey(t, 'rq')
  local rq = {}
  if redis.call('EXISTS', rqk) == 1 then
    rq = redis.call('ZRANGE', rqk, 0, need - 1, 'WITHSCORES')
  end
  local ri = 1
  local done = {}
  for _, p in ipairs(levels) do
    if need <= 0 then break end
    local s = skey(t, p)
    local np = -tonumber(p)
    local claim, claim_ids = {}, {}
    while need > 0 and ri < #rq do
      local sc = tonumber(rq[ri + 1])
      if sc > np then break end
      local member = rq[ri]
      done[#done + 1] = member
      ri = ri + 2
      if sc == np then
        local eid, id = rq_parse(member)
        claim[#claim + 1] = eid
        claim_ids[#claim_ids + 1] = id
        need = need - 1
      end
    end
    if #claim > 0 then
      local byeid = {}
      for _, e in ipairs(redis.call('XCLAIM', s, G, consumer, 0, unpack(claim))) do
        if e[2] then byeid[e[1]] = e[2] end
      end
      for j, eid in ipairs(claim) do
        local raw = byeid[eid]
        if raw then
          local id = claim_ids[j]
          local m = mkey(id)
          local ex = redis.call('HMGET', m, 'a', 'x')
          local a = (tonumber(ex[1]) or 1) + 1
          redis.call('HSET', m, 'a', a)
          emit(id, raw[4], a, ex[2] or fields(raw)['x'])
        end
      end
    end
    if need > 0 then
      local r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', need, 'STREAMS', s, '>')
      if r then
        local entries = r[1][2]
        for _, e in ipairs(entries) do
          local raw = e[2]
          local x
          if #raw > 4 then x = fields(raw)['x'] end
          emit(raw[2], raw[4], 1, x)
        end
        need = need - #entries
        fresh_add(t, p, -#entries)
      end
    end
  end
  if #done > 0 then redis.call('ZREM', rqk, unpack(done)) end
end
if #bodies > 0 then
  redis.call('ZADD', tkey(t, 'ls'), unpack(leases))
  if #bodies >= wanted then notify(t, 1) end
  local extra = ''
  if #unusual > 0 then extra = cjson.encode(unusual) end
  return {'', table.concat(bodies, ','), extra}
end
local next_due = ''
local d = redis.call('ZRANGE', tkey(t, 'dl'), 0, 0, 'WITHSCORES')
if d[2] then next_due = d[2] end
local l = redis.call('ZRANGE', tkey(t, 'ls'), 0, 0, 'WITHSCORES')
if l[2] and (next_due == '' or tonumber(l[2]) < tonumber(next_due)) then next_due = l[2] end
if wait_ms > 0 then redis.call('SET', tkey(t, 'w'), '1', 'PX', wait_ms) end
return {next_due, '', ''}
"""

# ARGV: prefix, JSON array of ids.  Returns a string of '1' (settled now) / '0' (unknown)
# per id.
ACK = r"""
local ids = cjson.decode(ARGV[2])
local vals = redis.call('HMGET', IX, unpack(ids))
local out = {}
local seen, found, extras = {}, {}, {}
local topics, streams = {}, {}
for i, id in ipairs(ids) do
  local v = vals[i]
  if v and not seen[id] then
    seen[id] = true
    local eid, p, t = ixparse(v)
    found[#found + 1] = id
    extras[#extras + 1] = mkey(id)
    local g = topics[t]
    if not g then
      g = {ids = {}, eids = {}, eid_ids = {}}
      topics[t] = g
    end
    g.ids[#g.ids + 1] = id
    if eid ~= '' then
      g.eids[#g.eids + 1] = eid
      g.eid_ids[#g.eid_ids + 1] = id
      local key = skey(t, p)
      local sg = streams[key]
      if not sg then
        sg = {t, p, {}}
        streams[key] = sg
      end
      sg[3][#sg[3] + 1] = eid
    end
    out[i] = '1'
  else
    out[i] = '0'
  end
end
if #found > 0 then
  redis.call('HDEL', IX, unpack(found))
  redis.call('DEL', unpack(extras))
  for t, g in pairs(topics) do
    redis.call('ZREM', tkey(t, 'ls'), unpack(g.ids))
    local dl = tkey(t, 'dl')
    if redis.call('EXISTS', dl) == 1 then redis.call('ZREM', dl, unpack(g.ids)) end
    local rqk = tkey(t, 'rq')
    if #g.eids > 0 and redis.call('EXISTS', rqk) == 1 then
      local members = {}
      for j, eid in ipairs(g.eids) do members[j] = rq_member(eid, g.eid_ids[j]) end
      redis.call('ZREM', rqk, unpack(members))
    end
  end
  for _, sg in pairs(streams) do settle(sg[1], sg[2], sg[3]) end
  for t in pairs(topics) do gc_topic(t) end
end
return table.concat(out)
"""

# ARGV: prefix, JSON array of ids, due ('' = ready now), has_error ('0'/'1'), error,
# default max_attempts, dead ('1': dead-letter them whatever their attempts).  Returns a
# string of 'r' (requeued) / 'd' (dead-lettered) / 'u' (not leased: unknown) per id, in
# order; an id repeated in the list is no longer leased the second time.
NACK = r"""
local ids = cjson.decode(ARGV[2])
local due, has_err, err, dmax = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local dead = ARGV[7] == '1'
local out = {}
local woken = {}
for i, id in ipairs(ids) do
  out[i] = 'u'
  local v = redis.call('HGET', IX, id)
  if v then
    local eid, p, t = ixparse(v)
    if redis.call('ZREM', tkey(t, 'ls'), id) == 1 then
      local m = mkey(id)
      local ex = redis.call('HMGET', m, 'a', 'x')
      local a = tonumber(ex[1]) or 1
      local x = ex[2]
      if has_err == '1' then x = err end
      local f = entry_fields(skey(t, p), eid)
      if not x and f then x = f['x'] end
      if dead then
        kill(t, id, p, eid, a, x or 'dead-lettered', f)
        out[i] = 'd'
      elseif a >= (tonumber(f and f['k']) or dmax) then
        kill(t, id, p, eid, a, x or 'nacked', f)
        out[i] = 'd'
      else
        if has_err == '1' then redis.call('HSET', m, 'x', err) end
        if due ~= '' then
          redis.call('ZADD', tkey(t, 'dl'), due, id)
        else
          requeue(t, id, p, eid)
        end
        woken[t] = (woken[t] or 0) + 1
        out[i] = 'r'
      end
    end
  end
end
-- a waiter takes each requeued message, or learns when it falls due
for t, n in pairs(woken) do notify(t, n) end
return table.concat(out)
"""

# ARGV: prefix, ids...  Hands leased messages back without counting the attempt; returns
# '1' (was leased, is ready again) or '0' per id.
RELEASE = r"""
local out = {}
local woken = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HGET', IX, id)
  out[i - 1] = '0'
  if v then
    local eid, p, t = ixparse(v)
    if redis.call('ZREM', tkey(t, 'ls'), id) == 1 then
      redis.call('HSET', mkey(id), 'a', math.max(0, attempts(id) - 1))
      requeue(t, id, p, eid)
      woken[t] = (woken[t] or 0) + 1
      out[i - 1] = '1'
    end
  end
end
for t, n in pairs(woken) do notify(t, n) end
return table.concat(out)
"""

# ARGV: prefix, id, now, new deadline.  Returns 1 if the lease was live and is extended.
EXTEND = r"""
local id, now, deadline = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local v = redis.call('HGET', IX, id)
if not v then return 0 end
local _, _, t = ixparse(v)
local ls = tkey(t, 'ls')
local cur = redis.call('ZSCORE', ls, id)
if not cur or tonumber(cur) <= now then return 0 end
redis.call('ZADD', ls, 'XX', deadline, id)
return 1
"""

# ARGV: prefix, topic, now, default max_attempts.  Returns {ready, delayed, leased, dead}.
STATS = r"""
local t = ARGV[2]
notify(t, promote(t, ARGV[3], tonumber(ARGV[4])))
local ready = redis.call('ZCARD', tkey(t, 'rq'))
for _, n in ipairs(redis.call('HVALS', tkey(t, 'fr'))) do ready = ready + tonumber(n) end
return {ready, redis.call('ZCARD', tkey(t, 'dl')), redis.call('ZCARD', tkey(t, 'ls')),
        redis.call('XLEN', tkey(t, 'dlq'))}
"""

# ARGV: prefix.  Returns the topics that hold anything (and forgets the others).
TOPICS = r"""
local out = {}
for _, t in ipairs(redis.call('SMEMBERS', TOPICS)) do
  gc_topic(t)
  if redis.call('SISMEMBER', TOPICS, t) == 1 then out[#out + 1] = t end
end
return out
"""

# ARGV: prefix, topic, now, default max_attempts, limit.
# Returns a JSON array of the ready messages in delivery order.
PEEK = r"""
local t, limit = ARGV[2], tonumber(ARGV[5])
notify(t, promote(t, ARGV[3], tonumber(ARGV[4])))
local msgs = {}
local need = limit
local rq = redis.call('ZRANGE', tkey(t, 'rq'), 0, need - 1, 'WITHSCORES')
local ri = 1
for _, p in ipairs(redis.call('ZREVRANGE', tkey(t, 'lv'), 0, -1)) do
  if need <= 0 then break end
  local s = skey(t, p)
  local np = -tonumber(p)
  while need > 0 and ri < #rq do
    local sc = tonumber(rq[ri + 1])
    if sc > np then break end
    if sc == np then
      local eid, id = rq_parse(rq[ri])
      local f = entry_fields(s, eid)
      if f then
        local ex = redis.call('HMGET', mkey(id), 'a', 'x')
        msgs[#msgs + 1] = as_json(f['b'], tonumber(ex[1]) or 1, ex[2] or f['x'])
        need = need - 1
      end
    end
    ri = ri + 2
  end
  if need > 0 then
    for _, e in ipairs(redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', need)) do
      local f = fields(e[2])
      msgs[#msgs + 1] = as_json(f['b'], 0, f['x'])
      need = need - 1
    end
  end
end
return '[' .. table.concat(msgs, ',') .. ']'
"""

# ARGV: prefix, topic, start (exclusive entry id or '-'), all ('1'/'0'), ids...
# Returns {replayed, next start or ''} (1000 dead letters looked at per call).
REPLAY = r"""
local t, start, all = ARGV[2], ARGV[3], ARGV[4] == '1'
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local dlq = tkey(t, 'dlq')
local from = start
if start ~= '-' then from = '(' .. start end
local entries = redis.call('XRANGE', dlq, from, '+', 'COUNT', 1000)
local count = 0
for _, e in ipairs(entries) do
  local f = fields(e[2])
  local id = f['i']
  if (all or wanted[id]) and redis.call('HEXISTS', IX, id) == 0 then
    local x = f['x']
    if x == '' then x = nil end
    local eid = add_entry(t, f['p'], id, f['b'], f['k'], x)
    fresh_add(t, f['p'], 1)
    redis.call('HSET', IX, id, ixval(eid, f['p'], t))
    redis.call('XDEL', dlq, e[1])
    count = count + 1
  end
end
if count > 0 then
  redis.call('SADD', TOPICS, t)
  notify(t, count)
  if redis.call('XLEN', dlq) == 0 then redis.call('DEL', dlq) end
end
gc_topic(t)
local nxt = ''
if #entries == 1000 then nxt = entries[#entries][1] end
return {count, nxt}
"""

# ARGV: prefix, topic.  Returns the number of dead letters deleted.
PURGE_DEAD = r"""
local t = ARGV[2]
local dlq = tkey(t, 'dlq')
local n = redis.call('XLEN', dlq)
redis.call('DEL', dlq)
gc_topic(t)
return n
"""

# ARGV: prefix, topic.  Deletes up to ~1000 ready and delayed messages of each kind;
# returns {deleted, more (1/0)}.
PURGE = r"""
local t = ARGV[2]
local budget = 1000
local n = 0
local more = 0
local function forget(id)
  local v = redis.call('HGET', IX, id)
  redis.call('HDEL', IX, id)
  redis.call('DEL', mkey(id))
  n = n + 1
  if v then
    local eid, p = ixparse(v)
    if eid ~= '' then drop_entry(t, p, eid) end
  end
end
local rqk = tkey(t, 'rq')
local items = redis.call('ZRANGE', rqk, 0, budget - 1)
if #items > 0 then
  redis.call('ZREM', rqk, unpack(items))
  if #items == budget then more = 1 end
  for _, member in ipairs(items) do
    local _, id = rq_parse(member)
    forget(id)
  end
end
local dl = tkey(t, 'dl')
items = redis.call('ZRANGE', dl, 0, budget - 1)
if #items > 0 then
  redis.call('ZREM', dl, unpack(items))
  if #items == budget then more = 1 end
  for _, id in ipairs(items) do forget(id) end
end
for _, p in ipairs(redis.call('ZRANGE', tkey(t, 'lv'), 0, -1)) do
  local s = skey(t, p)
  local entries = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', budget)
  if #entries == budget then more = 1 end
  if #entries > 0 then
    local ids, eids, keys = {}, {}, {}
    for j, e in ipairs(entries) do
      eids[j] = e[1]
      ids[j] = e[2][2]
      keys[j] = mkey(e[2][2])
    end
    redis.call('HDEL', IX, unpack(ids))
    redis.call('DEL', unpack(keys))
    redis.call('XDEL', s, unpack(eids))
    fresh_add(t, p, -#entries)
    n = n + #entries
    drop_stream_if_empty(t, p, s)
  end
end
gc_topic(t)
return {n, more}
"""

# ARGV: prefix, consumer, topics...  Deletes this consumer (and consumers idle for an hour)
# from the topics' groups when they hold no pending entries.
CLEANUP = r"""
local me = ARGV[2]
for i = 3, #ARGV do
  local t = ARGV[i]
  for _, p in ipairs(redis.call('ZRANGE', tkey(t, 'lv'), 0, -1)) do
    local s = skey(t, p)
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', s, G)) do
      local name, pending, idle
      for j = 1, #c, 2 do
        if c[j] == 'name' then
          name = c[j + 1]
        elseif c[j] == 'pending' then
          pending = c[j + 1]
        elseif c[j] == 'idle' then
          idle = c[j + 1]
        end
      end
      if pending == 0 and (name == me or (idle or 0) > 3600000) then
        redis.call('XGROUP', 'DELCONSUMER', s, G, name)
      end
    end
  end
end
return 0
"""

SCRIPTS: dict[str, str] = {
    name: PRELUDE + body
    for name, body in {
        "publish": PUBLISH,
        "subscribe": SUBSCRIBE,
        "ack": ACK,
        "nack": NACK,
        "release": RELEASE,
        "extend": EXTEND,
        "stats": STATS,
        "topics": TOPICS,
        "peek": PEEK,
        "replay": REPLAY,
        "purge_dead": PURGE_DEAD,
        "purge": PURGE,
        "cleanup": CLEANUP,
    }.items()
}
