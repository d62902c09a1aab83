"""The ledger's Lua scripts (Redis). Every key a script touches is passed in KEYS and carries the call's
studio as hash tag, so each script runs on one Redis Cluster slot.

Numbers in Lua are doubles: every value kept here stays an integer below 2^53 (times in ms, money in
micro-USD with a separate 1e-12 remainder, GCRA remainders in 1/L ms), and every division is done in
Python with exact integers before the call.

Key layout (S: studio id; <scope>: "studio:<id>" or "token:<id>"):
  city:{S}:rate:<scope>           hash rt,rf (RPM GCRA clock: ms, remainder in 1/L ms), tt,tf (TPM), c (calls in flight)
  city:{S}:budget:<scope>:<month> hash micro (settled micro-USD), pico (remainder 1e-12 USD), held (reserved micro-USD)
  city:{S}:call:<call_id>         hash proc, at, month, cost, tokens, state (reserved|settled), record (JSON),
                                  plan (JSON: the keys and limits settle needs), held (budget indexes held)
  city:{S}:open                   zset call_id → reserve time (ms): the calls not yet written
"""

# KEYS: call, open, rate keys (n), budget keys (n).
# ARGV: proc, month, cost, tokens, record, n, budget_expire_at_ms, plan, then per scope one string of 8
#   numbers (fewer arguments: each costs the client more to encode than the script to split):
#   "rpm_L rpm_q rpm_r tpm_L tpm_q tpm_r concurrency budget"; L 0: no limit; concurrency, budget -1: none.
# Returns {"ok", "rpm_ahead rpm_frac tpm_ahead tpm_frac …" per scope}, {"rpm"|"tpm", i, wait_ms, ahead, frac},
# {"conc", i}, {"budget", i, spent, held}, {"rebuild", i} (budget counter missing) or {"duplicate"}.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local n = tonumber(ARGV[6])
local cost = tonumber(ARGV[3])
local function take(tat, frac, q, r, L)
  if tat == nil or tat < now then tat = now; frac = 0 end
  tat = tat + q; frac = frac + r
  if frac >= L then frac = frac - L; tat = tat + 1 end
  return tat, frac
end
local function over(tat, frac)
  local ahead = tat - now
  return ahead > 60000 or (ahead == 60000 and frac > 0)
end
local function ahead_of(tat, frac)
  if tat == nil or tat < now then return 0, 0 end
  return tat - now, frac
end
local P = {}
for i = 1, n do
  local p = {}
  for v in string.gmatch(ARGV[8 + i], '%S+') do p[#p + 1] = tonumber(v) end
  P[i] = p
end
local state = {}
local out = {}
for i = 1, n do
  local p = P[i]
  local rpmL, tpmL = p[1], p[4]
  local conc = p[7]
  local s = {}
  if rpmL > 0 or tpmL > 0 or conc >= 0 then
    local v = redis.call('HMGET', KEYS[2 + i], 'rt', 'rf', 'tt', 'tf', 'c')
    s.rt, s.rf, s.tt, s.tf = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]), tonumber(v[4]) or 0
    s.c = tonumber(v[5]) or 0
    if rpmL > 0 then
      local nt, nf = take(s.rt, s.rf, p[2], p[3], rpmL)
      if over(nt, nf) then
        local ah, fr = ahead_of(s.rt, s.rf)
        local wait = nt - 60000 - now
        if nf > 0 then wait = wait + 1 end
        return {'rpm', i, wait, ah, fr}
      end
      s.rt, s.rf = nt, nf
    end
    if tpmL > 0 then
      local nt, nf = take(s.tt, s.tf, p[5], p[6], tpmL)
      if over(nt, nf) then
        local ah, fr = ahead_of(s.tt, s.tf)
        local wait = nt - 60000 - now
        if nf > 0 then wait = wait + 1 end
        return {'tpm', i, wait, ah, fr}
      end
      s.tt, s.tf = nt, nf
    end
    if conc >= 0 and s.c + 1 > conc then return {'conc', i} end
  end
  state[i] = s
  local ra, rf = ahead_of(s.rt, s.rf)
  local ta, tf = ahead_of(s.tt, s.tf)
  out[#out + 1] = ra; out[#out + 1] = rf; out[#out + 1] = ta; out[#out + 1] = tf
end
local held = {}
for i = 1, n do
  local budget = P[i][8]
  local v = redis.call('HMGET', KEYS[2 + n + i], 'micro', 'pico', 'held')
  if v[1] then
    if budget >= 0 then
      local spent = tonumber(v[1])
      if (tonumber(v[2]) or 0) > 0 then spent = spent + 1 end
      local h = tonumber(v[3]) or 0
      if spent + h + cost > budget then return {'budget', i, spent, h} end
    end
    held[#held + 1] = i
  elseif budget >= 0 then
    return {'rebuild', i}
  end
end
for i = 1, n do
  local rpmL, tpmL, conc = P[i][1], P[i][4], P[i][7]
  local s = state[i]
  local key = KEYS[2 + i]
  if rpmL > 0 then redis.call('HSET', key, 'rt', s.rt, 'rf', s.rf) end
  if tpmL > 0 then redis.call('HSET', key, 'tt', s.tt, 'tf', s.tf) end
  if conc >= 0 then s.c = redis.call('HINCRBY', key, 'c', 1) end
  if rpmL > 0 or tpmL > 0 or conc >= 0 then
    if s.c > 0 then
      redis.call('PERSIST', key)
    else
      local ttl = 0
      if s.rt and s.rt - now > ttl then ttl = s.rt - now end
      if s.tt and s.tt - now > ttl then ttl = s.tt - now end
      redis.call('PEXPIRE', key, ttl + 60000)
    end
  end
end
for _, i in ipairs(held) do
  redis.call('HINCRBY', KEYS[2 + n + i], 'held', cost)
  redis.call('PEXPIREAT', KEYS[2 + n + i], ARGV[7])
end
redis.call('HSET', KEYS[1], 'proc', ARGV[1], 'at', now, 'month', ARGV[2], 'cost', ARGV[3], 'tokens', ARGV[4],
  'state', 'reserved', 'record', ARGV[5], 'plan', ARGV[8], 'held', table.concat(held, ','))
redis.call('ZADD', KEYS[2], now, string.sub(KEYS[1], string.find(KEYS[1], ':call:') + 6))
return {'ok', table.concat(out, ' ')}
"""

# KEYS: call, open, rate keys (n), budget keys (n).
# ARGV: cost_micro (-1: the reserved estimate), cost_pico, record ("": keep the reservation's), n,
#   then per scope one string "tpm_L refund_q refund_r took_concurrency" (tpm_L 0: none; took 0/1).
# Returns {1, record} settled now, {0, ""} already settled, {-1, ""} no such reservation.
SETTLE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, ''} end
if state ~= 'reserved' then return {0, ''} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[4])
local reserved = tonumber(redis.call('HGET', KEYS[1], 'cost'))
local cm, cp = tonumber(ARGV[1]), tonumber(ARGV[2])
if cm < 0 then cm, cp = reserved, 0 end
for i = 1, n do
  local p = {}
  for v in string.gmatch(ARGV[4 + i], '%S+') do p[#p + 1] = tonumber(v) end
  local L, q, r, conc = p[1], p[2], p[3], p[4]
  local key = KEYS[2 + i]
  if L > 0 and (q > 0 or r > 0) then
    local v = redis.call('HMGET', key, 'tt', 'tf')
    local tt, tf = tonumber(v[1]), tonumber(v[2]) or 0
    if tt then
      tt = tt - q; tf = tf - r
      if tf < 0 then tf = tf + L; tt = tt - 1 end
      if tt < now then tt = now; tf = 0 end
      redis.call('HSET', key, 'tt', tt, 'tf', tf)
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
    if redis.call('HINCRBY', key, 'held', -reserved) < 0 then redis.call('HSET', key, 'held', 0) end
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

# KEYS: call, open. ARGV: call_id. Drops a settled call whose record is written; a reserved one stays.
FORGET = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'settled' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
if not state then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
"""
