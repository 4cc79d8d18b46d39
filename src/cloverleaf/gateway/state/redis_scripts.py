"""The Lua scripts behind :class:`~cloverleaf.gateway.state.redis.RedisState`, one per operation.

Redis runs a script atomically, so each script is the Redis twin of one locked method of
``MemoryState``, with the same arithmetic in the same order (``window.py`` and
``breaker.py`` are the specification; the shared contract suite holds both to it). Lua's
numbers are IEEE doubles like Python's floats, and every number crosses the wire as text
that round-trips exactly (``repr`` from Python, ``%.17g`` from Lua), so both backends
compute the same waits and the same reservation times to the last bit. No script reads
Redis' own clock: times come in as ``now`` from the gateway's clock.

Storage, under the configured prefix ``P``:

- ``P w:<bucket>``: a list, one entry per admission in time order, ``"<at>|<amount>|<ticket>"``;
  settling or releasing rewrites the amount and blanks the ticket (a closed reservation).
  Its TTL is one window past the newest reservation, so an idle bucket disappears.
- ``P breakers``: a hash, target → ``"<state>|<failures>|<opened_at>|<probe_started_at>|<has_error>|<error>"``.
- ``P latency``: a hash, target → moving average (ms).

The two hashes get an idle TTL renewed on every write.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_PRELUDE = r"""
local function num(s)
  if s == 'inf' then return math.huge end
  if s == '-inf' then return -math.huge end
  return tonumber(s)
end

local function fmt(x)
  if x == math.huge then return 'inf' end
  if x == -math.huge then return '-inf' end
  return string.format('%.17g', x)
end

local function parse_entry(s)
  local at, amount, ticket = string.match(s, '^([^|]*)|([^|]*)|(.*)$')
  return num(at), num(amount), ticket
end

local function load_breaker(hash, field)
  local raw = redis.call('HGET', hash, field)
  if not raw then return nil end
  local state, failures, opened, probe, has_error, err =
    string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local b = {state = state, failures = tonumber(failures)}
  if opened ~= '' then b.opened = num(opened) end
  if probe ~= '' then b.probe = num(probe) end
  if has_error == '1' then b.error = err end
  return b
end

local function closed_breaker()
  return {state = 'closed', failures = 0}
end

local function encode_breaker(b)
  local opened, probe, has_error = '', '', '0'
  if b.opened ~= nil then opened = fmt(b.opened) end
  if b.probe ~= nil then probe = fmt(b.probe) end
  if b.error ~= nil then has_error = '1' end
  return b.state .. '|' .. b.failures .. '|' .. opened .. '|' .. probe .. '|' .. has_error .. '|' .. (b.error or '')
end

local function save_breaker(hash, field, b, ttl_ms)  -- ttl_ms: integer text, or nil to keep the TTL
  local encoded = encode_breaker(b)
  redis.call('HSET', hash, field, encoded)
  if ttl_ms then redis.call('PEXPIRE', hash, ttl_ms) end
  return encoded
end
"""

# KEYS: one window list per bucket.
# ARGV: now, max_wait, window, ticket, slack_ms, then (limit, amount) per bucket.
# Returns {granted 0/1, wait, index of the limiting bucket (0: none), at (when granted)}.
TAKE = _PRELUDE + r"""
local now, max_wait, window = num(ARGV[1]), num(ARGV[2]), num(ARGV[3])
local ticket, slack_ms = ARGV[4], ARGV[5]
local at, limiting = now, 0
local amounts = {}
for i, key in ipairs(KEYS) do
  local limit = num(ARGV[4 + 2 * i])
  local amount = math.min(num(ARGV[5 + 2 * i]), limit)
  amounts[i] = amount
  -- prune: admissions whose tokens have come back leave from the front
  local raw = redis.call('LRANGE', key, 0, -1)
  local ats, sizes, dropped = {}, {}, 0
  for _, s in ipairs(raw) do
    local t, n = parse_entry(s)
    if #ats == 0 and t + window <= now then
      dropped = dropped + 1
    else
      ats[#ats + 1] = t
      sizes[#sizes + 1] = n
    end
  end
  if dropped > 0 then redis.call('LTRIM', key, dropped, -1) end
  -- the earliest time this amount fits (window.earliest)
  local base = now
  if #ats > 0 then base = math.max(now, ats[#ats]) end
  local remaining = 0
  for j = 1, #sizes do remaining = remaining + sizes[j] end
  local fits = base
  if not (remaining + amount <= limit) then
    for j = 1, #sizes do
      remaining = remaining - sizes[j]
      if remaining + amount <= limit + 1e-9 then
        fits = math.max(base, ats[j] + window)
        break
      end
    end
  end
  if fits > at then at, limiting = fits, i end
end
local wait = at - now
if wait > max_wait then return {0, fmt(wait), limiting} end
-- an integer in text: Lua would print a large number in exponent form, which PEXPIRE refuses
local ttl_ms = string.format('%d', math.min(math.ceil((at - now + window) * 1000) + slack_ms, 1e12))
for i, key in ipairs(KEYS) do
  redis.call('RPUSH', key, fmt(at) .. '|' .. fmt(amounts[i]) .. '|' .. ticket)
  redis.call('PEXPIRE', key, ttl_ms)
end
return {1, fmt(wait), limiting, fmt(at)}
"""

# KEYS: the window lists the reservation took from.
# ARGV: ticket, then per key the real amount, or '' to keep the reserved one.
# Closes the reservation; a closed or expired one is left alone.
SETTLE = _PRELUDE + r"""
local suffix = '|' .. ARGV[1]
for i, key in ipairs(KEYS) do
  local raw = redis.call('LRANGE', key, 0, -1)
  for j = #raw, 1, -1 do
    local s = raw[j]
    if string.sub(s, -#suffix) == suffix then
      local at, amount = parse_entry(s)
      if ARGV[1 + i] ~= '' then amount = math.max(0, num(ARGV[1 + i])) end
      redis.call('LSET', key, j - 1, fmt(at) .. '|' .. fmt(amount) .. '|')
      break
    end
  end
end
return 1
"""

# KEYS: one window list. ARGV: now, window. Returns the amount admitted in (now - window, now].
USAGE = _PRELUDE + r"""
local now, window = num(ARGV[1]), num(ARGV[2])
local total = 0
for _, s in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local at, amount = parse_entry(s)
  if now - window < at and at <= now then total = total + amount end
end
return fmt(total)
"""

# KEYS: breakers hash. ARGV: target, now, enabled 0/1, failure_threshold, cooldown,
# probe_timeout, ttl_ms. Returns {allowed 0/1, probe 0/1, retry_after or ''} (breaker.on_acquire).
BREAKER_ACQUIRE = _PRELUDE + r"""
local now, enabled = num(ARGV[2]), ARGV[3] == '1'
local cooldown, probe_timeout = num(ARGV[5]), num(ARGV[6])
local b = load_breaker(KEYS[1], ARGV[1]) or closed_breaker()
local allowed, probe, retry_after = 1, 0, ''
if enabled and b.state ~= 'closed' then
  if b.state == 'open' then
    local remaining = b.opened + cooldown - now
    if remaining > 0 then
      allowed, retry_after = 0, fmt(remaining)
    else
      b.state, b.probe, probe = 'half_open', now, 1
    end
  else
    local started = b.probe
    if started ~= nil and now - started < probe_timeout then
      allowed, retry_after = 0, fmt(started + probe_timeout - now)
    else
      b.probe, probe = now, 1
    end
  end
end
save_breaker(KEYS[1], ARGV[1], b, ARGV[7])
return {allowed, probe, retry_after}
"""

# KEYS: breakers hash. ARGV: target, ok 0/1, now, failure_threshold, ttl_ms, has_error 0/1,
# error. Returns the new encoded record (breaker.on_result).
BREAKER_RECORD = _PRELUDE + r"""
local now, threshold = num(ARGV[3]), num(ARGV[4])
local err = nil
if ARGV[6] == '1' then err = ARGV[7] end
local b = load_breaker(KEYS[1], ARGV[1]) or closed_breaker()
if ARGV[2] == '1' then
  b = closed_breaker()
elseif b.state == 'half_open' then
  b = {state = 'open', failures = b.failures + 1, opened = now, error = err}
else
  local failures = b.failures + 1
  if b.state == 'closed' and failures >= threshold then
    b = {state = 'open', failures = failures, opened = now, error = err}
  else
    b.failures, b.error = failures, err
  end
end
return save_breaker(KEYS[1], ARGV[1], b, ARGV[5])
"""

# KEYS: breakers hash. ARGV: target. Frees a half-open probe slot (breaker.on_abandon).
BREAKER_ABANDON = _PRELUDE + r"""
local b = load_breaker(KEYS[1], ARGV[1])
if b ~= nil and b.state == 'half_open' then
  b.probe = nil
  save_breaker(KEYS[1], ARGV[1], b, nil)
end
return 1
"""

# KEYS: latency hash. ARGV: target, latency_ms, alpha, ttl_ms. Returns the new average.
RECORD_LATENCY = _PRELUDE + r"""
local latency, alpha = num(ARGV[2]), num(ARGV[3])
local old = redis.call('HGET', KEYS[1], ARGV[1])
local average = latency
if old then average = alpha * latency + (1 - alpha) * num(old) end
redis.call('HSET', KEYS[1], ARGV[1], fmt(average))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return fmt(average)
"""

SCRIPTS: dict[str, str] = {
    "take": TAKE,
    "settle": SETTLE,
    "usage": USAGE,
    "breaker_acquire": BREAKER_ACQUIRE,
    "breaker_record": BREAKER_RECORD,
    "breaker_abandon": BREAKER_ABANDON,
    "record_latency": RECORD_LATENCY,
}
