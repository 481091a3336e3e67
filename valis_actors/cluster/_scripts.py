"""The Lua scripts: each check-and-act of cluster mode runs atomically inside Redis.

Epochs are kept as Redis integers and compared as their decimal strings, never as
Lua numbers (doubles), so large epochs stay exact.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "APPEND_TURNS",
    "BREAKER_FAILURE",
    "BREAKER_READ",
    "BREAKER_SUCCESS",
    "COMPARE_AND_DELETE",
    "FORGET_TURNS",
    "IDEMPOTENCY_ABANDON",
    "IDEMPOTENCY_COMPLETE",
    "PROBE",
    "RENEW",
]

# KEYS: lease, epoch. ARGV: token, ttl ms, epoch floor, epoch retention ms.
# A missing epoch counter starts at Redis's clock in microseconds, so epochs keep
# growing across a Redis restart that lost them (unless Redis's clock steps back).
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local epoch
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.rep('0', 6 - #t[2]) .. t[2])
end
epoch = redis.call('INCR', KEYS[2])
if epoch <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[3])
  epoch = redis.call('INCR', KEYS[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, tostring(redis.call('GET', KEYS[2]))}
"""

# KEYS: lease, epoch. ARGV: token, ttl ms, epoch retention ms. 1 renewed, 0 not ours.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: key. ARGV: token. 1 deleted, 0 not ours (expired, or someone else's).
COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: epoch, persona index, then one list per persona written.
# ARGV: epoch, max stored per list, then (list index in KEYS, persona id, turn json) triples.
# Returns {1} stored, or {0, current epoch or false} rejected (nothing written).
APPEND_TURNS = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return {0, current} end
local touched = {}
for i = 3, #ARGV, 3 do
  local k = KEYS[tonumber(ARGV[i])]
  redis.call('RPUSH', k, ARGV[i + 2])
  redis.call('SADD', KEYS[2], ARGV[i + 1])
  touched[k] = true
end
for k, _ in pairs(touched) do redis.call('LTRIM', k, -tonumber(ARGV[2]), -1) end
return {1}
"""

# KEYS: persona index. ARGV: list key prefix. Returns the number of turns deleted.
FORGET_TURNS = """
local n = 0
for _, persona in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. persona
  n = n + redis.call('LLEN', k)
  redis.call('DEL', k)
end
redis.call('DEL', KEYS[1])
return n
"""

# KEYS: open, tripped, fails, probe. ARGV: threshold, cooldown ms, failure window ms, probe?.
# Returns {opened now (0/1), open pttl, failures}.
BREAKER_FAILURE = """
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[4])
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  redis.call('SET', KEYS[2], '1')
  redis.call('DEL', KEYS[3])
  return {1, tonumber(ARGV[2]), 0}
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 or redis.call('EXISTS', KEYS[2]) == 1 then return {0, pttl, 0} end
local fails = redis.call('INCR', KEYS[3])
if fails == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
if fails >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  redis.call('SET', KEYS[2], '1')
  redis.call('DEL', KEYS[3])
  return {1, tonumber(ARGV[2]), fails}
end
return {0, -2, fails}
"""

# KEYS: open, tripped, fails, probe. ARGV: probe?. A probe's success closes the circuit.
BREAKER_SUCCESS = """
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: open, tripped, fails, probe. Returns {open pttl, tripped, failures, probe pttl}.
BREAKER_READ = """
return {redis.call('PTTL', KEYS[1]), redis.call('EXISTS', KEYS[2]),
        tonumber(redis.call('GET', KEYS[3]) or '0'), redis.call('PTTL', KEYS[4])}
"""

# KEYS: open, tripped, probe. ARGV: token, probe ttl ms.
# Returns {verdict, open pttl}: 1 permit granted, 0 refused, 2 closed (go, no probe).
PROBE = """
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then return {0, pttl} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {2, -2} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, -2} end
return {0, -2}
"""

# KEYS: record. ARGV: token, record json, ttl ms. 1 completed, 0 not ours (expired or taken over).
IDEMPOTENCY_COMPLETE = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, rec = pcall(cjson.decode, cur)
if not ok or rec['token'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: record. ARGV: token. Deletes a pending record if it is still this claim's.
IDEMPOTENCY_ABANDON = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, rec = pcall(cjson.decode, cur)
if not ok or rec['token'] ~= ARGV[1] or rec['state'] ~= 'pending' then return 0 end
return redis.call('DEL', KEYS[1])
"""
