"""The ledger's Lua scripts (Redis). Every key a script touches is passed in KEYS and carries the call's
studio as hash tag, so each script runs on one Redis Cluster slot.

Numbers in Lua are doubles: every value kept here stays an integer below 2^53 (times in ms, tokens,
money in micro-USD with a separate 1e-12 remainder), and every division is done in Python with exact
integers before the call.

Key layout (S: studio id; <scope>: "studio:<id>" or "token:<id>"):
  city:{S}:rate:<scope>           hash c (calls in flight)
  city:{S}:log:<scope>            zset call_id → admission time (ms, Redis TIME): the scope's sliding log,
                                  every call admitted in the last 60 s (scopes with rpm or tpm)
  city:{S}:logtokens:<scope>      hash call_id → tokens held in the window (lowered at settle), and
                                  used → their sum; entries leave with the log's (trimmed together)
  city:{S}:budget:<scope>:<month> hash micro (settled micro-USD), pico (remainder 1e-12 USD), held (reserved micro-USD)
  city:{S}:call:<call_id>         hash proc, at, month, cost, tokens, state (reserved|settled), record (JSON),
                                  plan (JSON: the keys and limits settle needs), held (budget indexes held)
  city:{S}:open                   zset call_id → reserve time (ms): the calls not yet written
A log and its tokens hash expire together, 60 s after their newest entry: then nothing in them counts.
"""

# KEYS: call, open, rate keys (n), budget keys (n), log keys (n), log tokens keys (n).
# ARGV: proc, month, cost, tokens, record, n, budget_expire_at_ms, plan, then per scope one string of 4
#   numbers (fewer arguments: each costs the client more to encode than the script to split):
#   "rpm tpm concurrency budget"; rpm, tpm 0: no limit; concurrency, budget -1: none.
# A call is admitted only if, with it, every scope's log (trimmed to the last 60 s) holds at most rpm
# calls and tpm tokens. Trimming a refused call's logs changes nothing that counts.
# Returns {"ok", "calls tokens reset_ms …" per scope (with the call), tight} (tight 1: the call took a
# scope's last concurrency slot, or another call like it would not fit a scope's TPM or budget until this
# one settles), {"rate", i, wait_requests_ms,
# wait_tokens_ms, calls, tokens, reset_ms} (the scope that keeps the call out longest; wait 0: that
# unit fits), {"conc", i}, {"budget", i, spent, held}, {"rebuild", i} (budget counter missing) or
# {"duplicate"}.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local n = tonumber(ARGV[6])
local cost = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cid = string.sub(KEYS[1], string.find(KEYS[1], ':call:', 1, true) + 6)
local edge = now - 60000
local tight = 0
local function trim(log, logt)
  local used = tonumber(redis.call('HGET', logt, 'used')) or 0
  local trimmed = false
  while true do
    local gone = redis.call('ZRANGEBYSCORE', log, '-inf', edge, 'LIMIT', 0, 500)
    if #gone == 0 then break end
    local v = redis.call('HMGET', logt, unpack(gone))
    for j = 1, #gone do used = used - (tonumber(v[j]) or 0) end
    redis.call('HDEL', logt, unpack(gone))
    redis.call('ZREM', log, unpack(gone))
    trimmed = true
    if #gone < 500 then break end
  end
  local count = redis.call('ZCARD', log)
  if count == 0 then
    if used ~= 0 then redis.call('DEL', logt) end
    used = 0
  elseif trimmed then
    redis.call('HSET', logt, 'used', used)
  end
  return count, used
end
local function newest(log, count)
  if count == 0 then return 0 end
  local e = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  return tonumber(e[2]) + 60000 - now
end
local function wait_tokens(log, logt, used, L)
  local need = used + tokens - L
  if need <= 0 then return 0 end
  local start = 0
  while true do
    local e = redis.call('ZRANGE', log, start, start + 99, 'WITHSCORES')
    if #e == 0 then return -1 end
    local ids = {}
    for j = 1, #e, 2 do ids[#ids + 1] = e[j] end
    local v = redis.call('HMGET', logt, unpack(ids))
    for j = 1, #ids do
      need = need - (tonumber(v[j]) or 0)
      if need <= 0 then return tonumber(e[2 * j]) + 60000 - now end
    end
    start = start + 100
  end
end
local P = {}
for i = 1, n do
  local p = {}
  for v in string.gmatch(ARGV[8 + i], '%S+') do p[#p + 1] = tonumber(v) end
  P[i] = p
end
local W = {}
local refusal = nil
for i = 1, n do
  local rpm, tpm = P[i][1], P[i][2]
  if rpm > 0 or tpm > 0 then
    local log, logt = KEYS[2 + 2 * n + i], KEYS[2 + 3 * n + i]
    local count, used = trim(log, logt)
    local wr, wt = 0, 0
    if rpm > 0 and count >= rpm then
      local e = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
      wr = tonumber(e[2]) + 60000 - now
    end
    if tpm > 0 then
      wt = wait_tokens(log, logt, used, tpm)
      if wt < 0 then wt = newest(log, count) end
    end
    local wait = math.max(wr, wt)
    if wait > 0 and (refusal == nil or wait > refusal[1]) then
      refusal = {wait, i, wr, wt, count, used, newest(log, count)}
    end
    W[i] = {count, used}
    if tpm > 0 and used + 2 * tokens > tpm then tight = 1 end
  end
end
if refusal then
  return {'rate', refusal[2], refusal[3], refusal[4], refusal[5], refusal[6], refusal[7]}
end
local c = {}
for i = 1, n do
  local conc = P[i][3]
  if conc >= 0 then
    c[i] = tonumber(redis.call('HGET', KEYS[2 + i], 'c')) or 0
    if c[i] + 1 > conc then return {'conc', i} end
    if c[i] + 1 >= conc then tight = 1 end
  end
end
local held = {}
for i = 1, n do
  local budget = P[i][4]
  local v = redis.call('HMGET', KEYS[2 + n + i], 'micro', 'pico', 'held')
  if v[1] then
    if budget >= 0 then
      local spent = tonumber(v[1])
      if (tonumber(v[2]) or 0) > 0 then spent = spent + 1 end
      local h = tonumber(v[3]) or 0
      if spent + h + cost > budget then return {'budget', i, spent, h} end
      if spent + h + 2 * cost > budget then tight = 1 end
    end
    held[#held + 1] = i
  elseif budget >= 0 then
    return {'rebuild', i}
  end
end
local out = {}
for i = 1, n do
  local w = W[i]
  if w then
    local log, logt = KEYS[2 + 2 * n + i], KEYS[2 + 3 * n + i]
    redis.call('ZADD', log, now, cid)
    redis.call('PEXPIRE', log, 60000)
    if tokens > 0 then redis.call('HSET', logt, cid, tokens, 'used', w[2] + tokens) end
    if tokens > 0 or w[2] > 0 then redis.call('PEXPIRE', logt, 60000) end
    out[#out + 1] = w[1] + 1; out[#out + 1] = w[2] + tokens; out[#out + 1] = 60000
  else
    out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  end
  if P[i][3] >= 0 then
    redis.call('HINCRBY', KEYS[2 + i], 'c', 1)
    redis.call('PERSIST', KEYS[2 + i])
  end
end
for _, i in ipairs(held) do
  redis.call('HINCRBY', KEYS[2 + n + i], 'held', cost)
  redis.call('PEXPIREAT', KEYS[2 + n + i], ARGV[7])
end
redis.call('HSET', KEYS[1], 'proc', ARGV[1], 'at', now, 'month', ARGV[2], 'cost', ARGV[3], 'tokens', ARGV[4],
  'state', 'reserved', 'record', ARGV[5], 'plan', ARGV[8], 'held', table.concat(held, ','))
redis.call('ZADD', KEYS[2], now, cid)
return {'ok', table.concat(out, ' '), tight}
"""

# KEYS: call, open, rate keys (n), budget keys (n), log keys (n), log tokens keys (n).
# ARGV: cost_micro (-1: the reserved estimate), cost_pico, record ("": keep the reservation's), n,
#   then per scope one string "tpm refund 0 took_concurrency": refund, the tokens the call gives back
#   (its log entry, while still in the window, is lowered by as much); took 0/1. The first and third
#   fields are not read (the shape the keeper's reaper sends, "tpm 0 0 took", settles with no refund).
# Returns {1, record} settled now, {0, ""} already settled, {-1, ""} no such reservation.
SETTLE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, ''} end
if state ~= 'reserved' then return {0, ''} end
local n = tonumber(ARGV[4])
local cid = string.sub(KEYS[1], string.find(KEYS[1], ':call:', 1, true) + 6)
local reserved = tonumber(redis.call('HGET', KEYS[1], 'cost'))
local cm, cp = tonumber(ARGV[1]), tonumber(ARGV[2])
if cm < 0 then cm, cp = reserved, 0 end
for i = 1, n do
  local p = {}
  for v in string.gmatch(ARGV[4 + i], '%S+') do p[#p + 1] = tonumber(v) end
  local refund, conc = p[2], p[4]
  local key = KEYS[2 + i]
  if refund > 0 then
    local logt = KEYS[2 + 3 * n + i]
    local v = redis.call('HMGET', logt, cid, 'used')
    local had = tonumber(v[1])
    if had then
      local back = math.min(had, refund)
      redis.call('HSET', logt, cid, had - back, 'used', tonumber(v[2]) - back)
    end
  end
  if conc == 1 then
    local c = redis.call('HINCRBY', key, 'c', -1)
    if c <= 0 then
      redis.call('HSET', key, 'c', 0)
      redis.call('PEXPIRE', key, 120000)
    end
  end
end
local held = redis.call('HGET', KEYS[1], 'held') or ''
for idx in string.gmatch(held, '%d+') do
  local key = KEYS[2 + n + tonumber(idx)]
  if redis.call('EXISTS', key) == 1 then
    -- 0 - reserved, not -reserved: Lua's -0 reaches Redis as "-0", which HINCRBY refuses (a free call's cost is 0)
    if redis.call('HINCRBY', key, 'held', 0 - reserved) < 0 then redis.call('HSET', key, 'held', 0) end
    local pico = redis.call('HINCRBY', key, 'pico', cp)
    local carry = 0
    if pico >= 1000000 then
      redis.call('HINCRBY', key, 'pico', -1000000)
      carry = 1
    end
    redis.call('HINCRBY', key, 'micro', cm + carry)
  end
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'record', ARGV[3]) end
redis.call('HSET', KEYS[1], 'state', 'settled')
return {1, redis.call('HGET', KEYS[1], 'record')}
"""

# KEYS: budget key. ARGV: micro, pico. Initializes a missing counter (rebuilt from the database).
INIT_BUDGET = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'micro', ARGV[1], 'pico', ARGV[2], 'held', 0)
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

# KEYS: open, then the call keys of one studio's calls (n). ARGV: their call ids (n). Drops each settled
# call whose record is written; a reserved one stays. One script per studio and batch of records (the
# usage writer's), not one per call.
FORGET = """
for i = 1, #ARGV do
  local key = KEYS[i + 1]
  local state = redis.call('HGET', key, 'state')
  if state == 'settled' then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], ARGV[i])
  elseif not state then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 0
"""

# KEYS: the refund's marker (city:{S}:refund:<call_id>), then the budget keys of the refunded call's
# scopes for the month it was billed in. ARGV: -micro, -pico (the refund, negated in Python: Lua's -0
# would reach Redis as "-0", which HINCRBY refuses), marker_expire_at_ms.
# Lowers each existing counter's settled spend by the refund, once per marker: a retry after a lost
# answer changes nothing. Never below zero (the counter holds the refunded charge, so only a counter
# that lost it meanwhile could go there). The marker is set last, so a script that failed midway is
# retried. A missing counter is left missing: its rebuild reads the refund's usage record, written
# before this runs. Returns 1 refunded now, 0 refunded before.
REFUND = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local borrow = 0
    if redis.call('HINCRBY', KEYS[i], 'pico', ARGV[2]) < 0 then
      redis.call('HINCRBY', KEYS[i], 'pico', 1000000)
      borrow = 1
    end
    if redis.call('HINCRBY', KEYS[i], 'micro', tonumber(ARGV[1]) - borrow) < 0 then
      redis.call('HSET', KEYS[i], 'micro', 0, 'pico', 0)
    end
  end
end
redis.call('SET', KEYS[1], 1, 'PXAT', ARGV[3])
return 1
"""
