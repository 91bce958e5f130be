"""The Lua scripts of the Redis backend: every multi-step state change runs atomically in Redis.

Each script is the shared prelude (key names and helpers) plus its own body. Keys are built
inside the scripts from the prefix (``ARGV[1]``) because most scripts find the topic of a
message only by reading its hash; see the package docstring for the layout. Times (``now``,
deadlines, due times) always come from the queue's clock, never from Redis's ``TIME``.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

PRELUDE = r"""
local P = ARGV[1]
local G = 'swarm'
local function mkey(id) return P .. ':q:m:' .. id end
local function tkey(t, s) return P .. ':q:t:' .. t .. ':' .. s end
local function skey(t, p) return P .. ':q:t:' .. t .. ':s:' .. p end
local TOPICS = P .. ':q:topics'

-- an entry id as a string that sorts like the id ("ms-seq", both parts zero-padded)
local function sortable(eid)
  local ms, seq = string.match(eid, '^(%d+)-(%d+)$')
  return string.rep('0', 16 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end

local function rq_member(eid, id) return sortable(eid) .. '|' .. id end

-- append a fresh entry for message `id` to the stream of priority `p`; returns its entry id
local known = {}
local function enqueue(t, p, id)
  local s = skey(t, p)
  if known[s] then
    return redis.call('XADD', s, '*', 'i', id)
  end
  local new = redis.call('EXISTS', s) == 0
  local eid = redis.call('XADD', s, '*', 'i', id)
  if new then
    redis.call('XGROUP', 'CREATE', s, G, '0')
    redis.call('ZADD', tkey(t, 'lv'), p, p)
  end
  known[s] = true
  return eid
end

-- forget a topic that holds nothing any more
local function gc_topic(t)
  if redis.call('EXISTS', tkey(t, 'lv'), tkey(t, 'dl'), tkey(t, 'ls'), tkey(t, 'rq'),
                tkey(t, 'dlq')) == 0 then
    redis.call('SREM', TOPICS, t)
  end
end

-- settle stream entry `eid`: out of the group's PEL, out of the stream, stream gone when empty
local function drop_entry(t, p, eid)
  local s = skey(t, p)
  redis.call('XACK', s, G, eid)
  redis.call('XDEL', s, eid)
  if redis.call('XLEN', s) == 0 then
    redis.call('DEL', s)
    redis.call('ZREM', tkey(t, 'lv'), p)
    known[s] = nil
    gc_topic(t)
  end
end

-- move a message to the topic's dead-letter stream, carrying its last error
local function kill(t, id, p, eid, a, err, body, k)
  if eid and eid ~= '' then drop_entry(t, p, eid) end
  redis.call('XADD', tkey(t, 'dlq'), '*', 'i', id, 'b', body, 'a', a, 'x', err, 'p', p,
             'k', k or '')
  redis.call('DEL', mkey(id))
end

-- wake up to `n` subscribers waiting on the topic (any process), if any is waiting
local function notify(t, n)
  if n <= 0 then return end
  local w = tkey(t, 'w')
  local ttl = redis.call('PTTL', w)
  if ttl > 0 then
    local bell = tkey(t, 'bell')
    local tokens = {}
    for i = 1, math.min(n, 64) do tokens[i] = '1' end
    redis.call('RPUSH', bell, unpack(tokens))
    redis.call('LTRIM', bell, -64, -1)
    redis.call('PEXPIRE', bell, ttl)
  end
end

-- make a leased/delayed message whose entry is still pending ready again, in its old place
local function requeue(t, id, p, eid)
  redis.call('ZADD', tkey(t, 'rq'), -tonumber(p), rq_member(eid, id))
  redis.call('HSET', mkey(id), 's', 'q')
end

-- due delayed messages become ready; expired leases become ready again, or dead
local function promote(t, now, dmax)
  local made = 0
  local dl = tkey(t, 'dl')
  local due = redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 500)
  if #due > 0 then
    redis.call('ZREM', dl, unpack(due))
    for _, id in ipairs(due) do
      local m = mkey(id)
      local f = redis.call('HMGET', m, 'p', 'e')
      if f[1] then
        if f[2] and f[2] ~= '' then
          requeue(t, id, f[1], f[2])
        else
          redis.call('HSET', m, 'e', enqueue(t, f[1], id), 's', 'r')
        end
        made = made + 1
      end
    end
  end
  local ls = tkey(t, 'ls')
  local expired = redis.call('ZRANGEBYSCORE', ls, '-inf', now, 'LIMIT', 0, 500)
  if #expired > 0 then
    redis.call('ZREM', ls, unpack(expired))
    for _, id in ipairs(expired) do
      local f = redis.call('HMGET', mkey(id), 'p', 'e', 'a', 'k', 'b')
      if f[1] then
        local a = tonumber(f[3]) or 0
        local mx = tonumber(f[4]) or dmax
        if a >= mx then
          kill(t, id, f[1], f[2], a,
               'lease expired without ack on attempt ' .. a .. ' of ' .. mx, f[5], f[4])
        else
          requeue(t, id, f[1], f[2])
          made = made + 1
        end
      end
    end
  end
  return made
end

-- the group's last-delivered-id on stream s
local function last_delivered(s)
  local groups = redis.call('XINFO', 'GROUPS', s)
  for _, g in ipairs(groups) do
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
"""

# ARGV: prefix, now, dedup_until, dedup_ms, then 8 per message:
#   topic, id, priority, envelope, due ('' = ready now), dedup key (''), max_attempts (''),
#   last_error ('')
# Returns {index, id, ...} for the messages whose dedup key was already taken.
PUBLISH = r"""
local now = tonumber(ARGV[2])
local until_ = ARGV[3]
local dedup_ms = tonumber(ARGV[4])
local out = {}
local ready = {}
local topics = {}
local i = 5
local n = 0
while i <= #ARGV do
  local t, id, p, body, due, dk, k, x = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local skip = false
  local ukey
  if dk ~= '' then
    ukey = P .. ':q:u:' .. dk
    local v = redis.call('GET', ukey)
    if v then
      local sep = string.find(v, '|', 1, true)
      if sep and tonumber(string.sub(v, 1, sep - 1)) > now then
        out[#out + 1] = n
        out[#out + 1] = string.sub(v, sep + 1)
        skip = true
      end
    end
  end
  if not skip then
    local m = mkey(id)
    if redis.call('EXISTS', m) == 0 then
      if ukey and dedup_ms > 0 then
        redis.call('SET', ukey, until_ .. '|' .. id, 'PX', dedup_ms)
      end
      local fields
      if due ~= '' then
        fields = {'t', t, 'p', p, 'b', body, 'e', '', 's', 'd'}
        redis.call('ZADD', tkey(t, 'dl'), due, id)
      else
        fields = {'t', t, 'p', p, 'b', body, 'e', enqueue(t, p, id), 's', 'r'}
        ready[t] = (ready[t] or 0) + 1
      end
      if k ~= '' then fields[#fields + 1] = 'k'; fields[#fields + 1] = k end
      if x ~= '' then fields[#fields + 1] = 'x'; fields[#fields + 1] = x end
      redis.call('HSET', m, unpack(fields))
      if not topics[t] then
        topics[t] = true
        redis.call('SADD', TOPICS, t)
      end
    end
  end
  i = i + 8
  n = n + 1
end
for t, count in pairs(ready) do notify(t, count) end
return out
"""

# ARGV: prefix, topic, consumer, now, lease deadline, batch size, default max_attempts,
#       waiter flag ms (0: the caller will not wait)
# Returns {next_due or '', id, envelope, attempts, last_error, ...}.
SUBSCRIBE = r"""
local t, consumer, now, deadline = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local need = tonumber(ARGV[6])
local dmax = tonumber(ARGV[7])
local wait_ms = tonumber(ARGV[8])
local wanted = need
promote(t, now, dmax)
local taken = {}
local levels = redis.call('ZREVRANGE', tkey(t, 'lv'), 0, -1)
if #levels > 0 then
  local rqk = tkey(t, 'rq')
  local rq = redis.call('ZRANGE', rqk, 0, need - 1, 'WITHSCORES')
  local ri = 1
  local done = {}
  for _, p in ipairs(levels) do
    if need <= 0 then break end
    local s = skey(t, p)
    local np = -tonumber(p)
    local claim = {}
    while need > 0 and ri < #rq do
      local sc = tonumber(rq[ri + 1])
      if sc > np then break end
      local member = rq[ri]
      done[#done + 1] = member
      ri = ri + 2
      if sc == np then
        local id = string.match(member, '|(.*)$')
        local eid = redis.call('HGET', mkey(id), 'e')
        if eid and eid ~= '' then
          claim[#claim + 1] = eid
          taken[#taken + 1] = id
          need = need - 1
        end
      end
    end
    if #claim > 0 then
      redis.call('XCLAIM', s, G, consumer, 0, unpack(claim))
    end
    if need > 0 then
      local r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', need, 'STREAMS', s, '>')
      if r then
        for _, e in ipairs(r[1][2]) do
          taken[#taken + 1] = e[2][2]
          need = need - 1
        end
      end
    end
  end
  if #done > 0 then redis.call('ZREM', rqk, unpack(done)) end
end
local out = {''}
if #taken > 0 then
  local leases = {}
  for _, id in ipairs(taken) do
    local m = mkey(id)
    local f = redis.call('HMGET', m, 'b', 'x', 'a')
    if f[1] then
      local a = (tonumber(f[3]) or 0) + 1
      redis.call('HSET', m, 'a', a, 's', 'l')
      out[#out + 1] = id
      out[#out + 1] = f[1]
      out[#out + 1] = a
      out[#out + 1] = f[2] or ''
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
    end
  end
  if #leases > 0 then redis.call('ZADD', tkey(t, 'ls'), unpack(leases)) end
  if #taken >= wanted then notify(t, 1) end
else
  local next_due
  local d = redis.call('ZRANGE', tkey(t, 'dl'), 0, 0, 'WITHSCORES')
  if d[2] then next_due = d[2] end
  local l = redis.call('ZRANGE', tkey(t, 'ls'), 0, 0, 'WITHSCORES')
  if l[2] and (not next_due or tonumber(l[2]) < tonumber(next_due)) then next_due = l[2] end
  out[1] = next_due or ''
  if wait_ms > 0 then redis.call('SET', tkey(t, 'w'), '1', 'PX', wait_ms) end
end
return out
"""

# ARGV: prefix, id, ...  Returns a string of '1' (settled now) / '0' (unknown) per id.
ACK = r"""
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local m = mkey(id)
  local f = redis.call('HMGET', m, 't', 'p', 'e', 's')
  if f[1] then
    local t, p, eid, s = f[1], f[2], f[3], f[4]
    if s == 'l' then
      redis.call('ZREM', tkey(t, 'ls'), id)
    elseif s == 'q' then
      redis.call('ZREM', tkey(t, 'rq'), rq_member(eid, id))
    elseif s == 'd' then
      redis.call('ZREM', tkey(t, 'dl'), id)
    end
    redis.call('DEL', m)
    if eid and eid ~= '' then drop_entry(t, p, eid) else gc_topic(t) end
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return table.concat(out)
"""

# ARGV: prefix, id, due ('' = ready now), has_error ('0'/'1'), error, default max_attempts
NACK = r"""
local id, due, has_err, err, dmax = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local m = mkey(id)
local f = redis.call('HMGET', m, 't', 'p', 'e', 's', 'a', 'k', 'x', 'b')
if not f[1] or f[4] ~= 'l' then return 'unknown' end
local t, p, eid = f[1], f[2], f[3]
redis.call('ZREM', tkey(t, 'ls'), id)
local x = f[7]
if has_err == '1' then
  x = err
  redis.call('HSET', m, 'x', err)
end
local a = tonumber(f[5]) or 0
local mx = tonumber(f[6]) or dmax
if a >= mx then
  kill(t, id, p, eid, a, x or 'nacked', f[8], f[6])
  return 'dead_lettered'
end
if due ~= '' then
  redis.call('ZADD', tkey(t, 'dl'), due, id)
  redis.call('HSET', m, 's', 'd')
else
  requeue(t, id, p, eid)
  notify(t, 1)
end
return 'requeued'
"""

# ARGV: prefix, id.  Returns 1 if the message was leased and is ready again.
RELEASE = r"""
local id = ARGV[2]
local m = mkey(id)
local f = redis.call('HMGET', m, 't', 'p', 'e', 's', 'a')
if not f[1] or f[4] ~= 'l' then return 0 end
redis.call('ZREM', tkey(f[1], 'ls'), id)
redis.call('HSET', m, 'a', math.max(0, (tonumber(f[5]) or 0) - 1))
requeue(f[1], id, f[2], f[3])
notify(f[1], 1)
return 1
"""

# ARGV: prefix, id, now, new deadline.  Returns 1 if the lease was live and is extended.
EXTEND = r"""
local id, now, deadline = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local f = redis.call('HMGET', mkey(id), 't', 's')
if not f[1] or f[2] ~= 'l' then return 0 end
local ls = tkey(f[1], 'ls')
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
for _, p in ipairs(redis.call('ZRANGE', tkey(t, 'lv'), 0, -1)) do
  local s = skey(t, p)
  ready = ready + redis.call('XLEN', s) - redis.call('XPENDING', s, G)[1]
end
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
# Returns {id, envelope, attempts, last_error, ...} of ready messages in delivery order.
PEEK = r"""
local t, limit = ARGV[2], tonumber(ARGV[5])
notify(t, promote(t, ARGV[3], tonumber(ARGV[4])))
local ids = {}
local need = limit
local rq = redis.call('ZRANGE', tkey(t, 'rq'), 0, need - 1, 'WITHSCORES')
local ri = 1
for _, p in ipairs(redis.call('ZREVRANGE', tkey(t, 'lv'), 0, -1)) do
  if need <= 0 then break end
  local np = -tonumber(p)
  while need > 0 and ri < #rq do
    local sc = tonumber(rq[ri + 1])
    if sc > np then break end
    if sc == np then
      ids[#ids + 1] = string.match(rq[ri], '|(.*)$')
      need = need - 1
    end
    ri = ri + 2
  end
  if need > 0 then
    local s = skey(t, p)
    for _, e in ipairs(redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', need)) do
      ids[#ids + 1] = e[2][2]
      need = need - 1
    end
  end
end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', mkey(id), 'b', 'a', 'x')
  if f[1] then
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = tonumber(f[2]) or 0
    out[#out + 1] = f[3] or ''
  end
end
return out
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
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  local id = f['i']
  if (all or wanted[id]) and redis.call('EXISTS', mkey(id)) == 0 then
    local fields = {'t', t, 'p', f['p'], 'b', f['b'], 'e', enqueue(t, f['p'], id), 's', 'r'}
    if f['k'] and f['k'] ~= '' then fields[#fields + 1] = 'k'; fields[#fields + 1] = f['k'] end
    if f['x'] and f['x'] ~= '' then fields[#fields + 1] = 'x'; fields[#fields + 1] = f['x'] end
    redis.call('HSET', mkey(id), unpack(fields))
    redis.call('XDEL', dlq, e[1])
    count = count + 1
  end
end
if count > 0 then
  redis.call('SADD', TOPICS, t)
  notify(t, count)
end
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

# ARGV: prefix, topic.  Deletes up to ~1000 ready and delayed messages per kind;
# returns {deleted, more (1/0)}.
PURGE = r"""
local t = ARGV[2]
local budget = 1000
local n = 0
local more = 0
local rqk = tkey(t, 'rq')
local items = redis.call('ZRANGE', rqk, 0, budget - 1)
if #items > 0 then
  redis.call('ZREM', rqk, unpack(items))
  if #items == budget then more = 1 end
  for _, member in ipairs(items) do
    local id = string.match(member, '|(.*)$')
    local f = redis.call('HMGET', mkey(id), 'p', 'e')
    redis.call('DEL', mkey(id))
    if f[1] and f[2] and f[2] ~= '' then drop_entry(t, f[1], f[2]) end
    n = n + 1
  end
end
local dl = tkey(t, 'dl')
items = redis.call('ZRANGE', dl, 0, budget - 1)
if #items > 0 then
  redis.call('ZREM', dl, unpack(items))
  if #items == budget then more = 1 end
  for _, id in ipairs(items) do
    local f = redis.call('HMGET', mkey(id), 'p', 'e')
    redis.call('DEL', mkey(id))
    if f[1] and f[2] and f[2] ~= '' then drop_entry(t, f[1], f[2]) end
    n = n + 1
  end
end
for _, p in ipairs(redis.call('ZRANGE', tkey(t, 'lv'), 0, -1)) do
  local s = skey(t, p)
  local entries = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', budget)
  if #entries == budget then more = 1 end
  for _, e in ipairs(entries) do
    redis.call('DEL', mkey(e[2][2]))
    redis.call('XDEL', s, e[1])
    n = n + 1
  end
  if #entries > 0 and redis.call('XLEN', s) == 0 then
    redis.call('DEL', s)
    redis.call('ZREM', tkey(t, 'lv'), p)
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
        if c[j] == 'name' then name = c[j + 1]
        elseif c[j] == 'pending' then pending = c[j + 1]
        elseif c[j] == 'idle' then idle = c[j + 1] end
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
