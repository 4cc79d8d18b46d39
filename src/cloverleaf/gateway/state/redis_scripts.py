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
  ``P wm:<bucket>``: its hash ``{total, base}`` (the list's sum, and the absolute index of its
  first entry: a ticket carries its entries' indices, so settling finds them without a scan).
  Both live one window past the newest reservation, so an idle bucket disappears.
- ``P circuits``: a hash, target →
  ``"<state>|<failures>|<opened_at>|<probe_started_at>|<cooldown>|<has_error>|<error>"`` (``cooldown``:
  this opening's, when ``Retry-After`` made it shorter than the policy's; blank otherwise). The
  hash was ``P breakers`` before the cooldown field: a new name, so replicas of both versions
  in one rolling upgrade never read each other's records (breakers are short-lived state).
  ``P circuits:failing`` and ``P circuits:open``: sorted sets, target → when its breaker stops
  mattering (failing-but-closed: a cooldown after its last failure; open: its cooldown's end;
  half-open: its probe's timeout), kept by every script that writes a breaker that is not clean;
  ``P circuits:scan``: an HSCAN cursor over the hash. Together they bound the hash as
  ``MemoryState`` bounds its table (``breakers_trim``): a target never seen behaves as one whose
  breaker no longer matters, so once the hash holds the cap, each write that may add a target first
  lets a few such records go — a page at a time, never a walk of the whole hash. The records keep
  their format, so replicas of the version before these sets read them, and theirs (in no set)
  are judged by their own fields when met.
- ``P latency``: a hash, target → moving average (ms); a new target finding it full (the cap is
  an argument) empties it first, as ``MemoryState`` does: averages only steer routing, which
  relearns them.
- ``P b:<scope>|<period>``: a hash ``{spent, reserved}`` — one budget counter (dollars), seeded
  from the store's ledger when absent (``budget_seed``), raised to it when a budget starts to
  apply to earlier spend (``budget_raise``); idle TTL per period (none for ``total``).
- ``P r:<scope>|<period>``: a sorted set of that counter's open reservations,
  ``"<ticket>|<amount>"`` scored by their expiry: a reservation whose process died (kill -9)
  is given back by the next admission after ``RESERVATION_TTL`` instead of holding the budget
  for ever — also once Redis has expired the set itself (``hold_sweep``).

The two hashes (and the breakers' sets and cursor) get an idle TTL renewed on every write.
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

-- A rolling window is two keys: the list of admissions "<at>|<amount>|<ticket>" in time order,
-- and its hash {total = the sum of the list's amounts, base = the absolute index of its first
-- entry}. The total makes an admission O(1) however busy the window (only one that must wait
-- walks the list); the base lets a ticket find its entry by position instead of by a scan.
local function window_open(list, meta, now, window)
  local saved = redis.call('HMGET', meta, 'total', 'base')
  local total, base = num(saved[1] or '0'), tonumber(saved[2] or '0')
  local dropped = 0
  local s = redis.call('LINDEX', list, 0)
  while s do
    local t, a = parse_entry(s)
    if t + window > now then break end
    redis.call('LPOP', list)          -- its tokens have come back
    total = total - a
    dropped = dropped + 1
    s = redis.call('LINDEX', list, 0)
  end
  local dirty = dropped > 0
  if not s and total ~= 0 then total, dirty = 0, true end   -- empty: no rounding drift survives
  if dirty then
    base = base + dropped
    redis.call('HSET', meta, 'total', fmt(total), 'base', base)
  end
  return total, base
end

-- window.earliest: when amount may go (>= now; now if it fits now) and where it is logged
-- (>= that and >= the newest admission, so the list stays in time order)
local function window_earliest(list, total, limit, amount, now, window)
  local base = now
  local last = redis.call('LINDEX', list, -1)
  if last then
    local t = parse_entry(last)
    if t > base then base = t end
  end
  if total + amount <= limit then return now, base end
  local remaining = total
  for _, s in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local t, a = parse_entry(s)
    remaining = remaining - a
    if remaining + amount <= limit + 1e-9 then
      local at = math.max(base, t + window)
      return at, at
    end
  end
  return base, base
end

-- window.earliest over several buckets (MemoryState._earliest): bucket i's list and hash are
-- KEYS[k + 2i - 1] and KEYS[k + 2i], its (limit, amount, max_wait) ARGV[a + 3i - 2],
-- ARGV[a + 3i - 1] and ARGV[a + 3i]; the call goes no earlier than go and is logged no earlier
-- than at. Returns go, at, the index of the bucket that set the wait (0: none), per bucket its
-- amount and its list's base index, and the index of the first bucket that alone would make the
-- call wait longer than its own max_wait past go (0: none) with its wait from now. (A first
-- attempt's buckets only count the wait they add to the call's own, as MemoryState's.)
local function buckets_earliest(k, a, nb, now, window, go, at)
  local after = go
  local limiting, amounts, bases, over, over_wait = 0, {}, {}, 0, 0
  for i = 1, nb do
    local list, meta = KEYS[k + 2 * i - 1], KEYS[k + 2 * i]
    local limit = num(ARGV[a + 3 * i - 2])
    local amount = math.min(num(ARGV[a + 3 * i - 1]), limit)
    amounts[i] = amount
    local total, base = window_open(list, meta, now, window)
    bases[i] = base
    local fits, place = window_earliest(list, total, limit, amount, now, window)
    if fits > go then go, limiting = fits, i end
    if place > at then at = place end
    if over == 0 and fits - after > num(ARGV[a + 3 * i]) then over, over_wait = i, fits - now end
  end
  return go, at, limiting, amounts, bases, over, over_wait
end

-- append an admission; returns its absolute index
local function window_push(list, meta, base, at, amount, ticket, ttl_ms)
  local n = redis.call('RPUSH', list, fmt(at) .. '|' .. fmt(amount) .. '|' .. ticket)
  redis.call('HINCRBYFLOAT', meta, 'total', fmt(amount))
  redis.call('HSET', meta, 'base', base)
  redis.call('PEXPIRE', list, ttl_ms)
  redis.call('PEXPIRE', meta, ttl_ms)
  return base + n - 1
end

-- close the admission at absolute index idx if it is still this ticket's: its amount becomes
-- amount_text ('' keeps it); an entry already pruned, or gone with its list, is left alone
local function window_settle(list, meta, idx, ticket, amount_text)
  local base = tonumber(redis.call('HGET', meta, 'base') or '0')
  local pos = tonumber(idx) - base
  if pos < 0 then return end
  local s = redis.call('LINDEX', list, pos)
  if not s then return end
  local at, old, owner = parse_entry(s)
  if owner ~= ticket then return end
  local new = old
  if amount_text ~= '' then new = math.max(0, num(amount_text)) end
  redis.call('LSET', list, pos, fmt(at) .. '|' .. fmt(new) .. '|')
  if new ~= old then redis.call('HINCRBYFLOAT', meta, 'total', fmt(new - old)) end
end

local function window_ttl(at, now, window, slack_ms)
  -- an integer in text: Lua would print a large number in exponent form, which PEXPIRE refuses
  return string.format('%d', math.min(math.ceil((at - now + window) * 1000) + slack_ms, 1e12))
end

-- A budget hold: ``hash`` is its counter {spent, reserved}, ``set`` its open reservations
-- "<ticket>|<amount>" scored by their expiry. ``reserved`` is the sum of the set's entries,
-- and the two change together in every script.

-- Give back the reservations of processes that died (kill -9) and return the counter's
-- reserved amount after it: the set's entries past their expiry; and, when the set itself is
-- gone, whatever the counter still holds. Why the second: the set expires (Redis TTL)
-- RESERVATION_TTL + slack after the admission that added its newest entry, so when Redis
-- drops it every entry in it had expired — but a counter keeps its ``reserved`` (a ``total``
-- one has no TTL), and with no entries left to sweep it would hold them for ever. An absent
-- set therefore means "nothing reserved", the only state consistent with it.
local function hold_sweep(hash, set, now, reserved)
  local stale = redis.call('ZRANGEBYSCORE', set, '-inf', now)
  if #stale > 0 then
    local back = 0
    for _, member in ipairs(stale) do back = back + num(string.match(member, '|(.*)$')) end
    redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    reserved = num(redis.call('HINCRBYFLOAT', hash, 'reserved', fmt(-back)))
    if reserved >= 1e-9 then return reserved end
  elseif reserved == 0 or redis.call('EXISTS', set) == 1 then
    return reserved
  end
  redis.call('HSET', hash, 'reserved', '0')
  return 0
end

-- Close one hold of a call: ``cost`` (text) becomes spend whenever the counter exists, and the
-- reservation comes off ``reserved`` only if it is still open. A reservation can be gone while
-- its call ran: Redis came back empty and the counter was seeded again from the ledger, which
-- lacks this call (its spend reaches the ledger only after this script), or it expired and was
-- swept. Dropping the cost then would let the budget be spent twice. Closing is exactly once:
-- the Python side marks a ticket closed before it sends this (``RedisState.close``/``finish``).
local function hold_close(hash, set, ticket, amount, cost)
  local open = redis.call('ZREM', set, ticket .. '|' .. amount) == 1
  if redis.call('EXISTS', hash) == 0 then return end   -- seeded from the ledger when next needed
  if open then
    local left = num(redis.call('HINCRBYFLOAT', hash, 'reserved', fmt(-num(amount))))
    if left < 1e-9 then redis.call('HSET', hash, 'reserved', '0') end
  end
  if num(cost) ~= 0 then redis.call('HINCRBYFLOAT', hash, 'spent', cost) end
end

-- Close every hold of a call (CLOSE, FINISH): its holds' arguments start at ARGV[5 + 2 * nb],
-- one per hold (the reserved amount, as admitted) when ``cost`` is the cost of each, two (the
-- amount, then its own cost) when ``cost`` is ''. Returns how many arguments they took.
local function close_holds(nb, nh, ticket, cost)
  local first, per = 4 + 2 * nb, 1
  if cost == '' then per = 2 end
  for h = 1, nh do
    local at = first + per * (h - 1) + 1
    local charged = cost
    if per == 2 then charged = ARGV[at + 1] end
    hold_close(KEYS[2 * nb + 2 * h - 1], KEYS[2 * nb + 2 * h], ticket, ARGV[at], charged)
  end
  return per * nh
end

local function decode_breaker(raw)
  local state, failures, opened, probe, cooldown, has_error, err =
    string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not state or not tonumber(failures) then return nil end   -- not a record: as if never written
  local b = {state = state, failures = tonumber(failures)}
  if opened ~= '' then b.opened = num(opened) end
  if probe ~= '' then b.probe = num(probe) end
  if cooldown ~= '' then b.cooldown = num(cooldown) end
  if has_error == '1' then b.error = err end
  return b
end

local function load_breaker(hash, field)
  local raw = redis.call('HGET', hash, field)
  if not raw then return nil end
  return decode_breaker(raw)
end

local function closed_breaker()
  return {state = 'closed', failures = 0}
end

local function encode_breaker(b)
  local opened, probe, cooldown, has_error = '', '', '', '0'
  if b.opened ~= nil then opened = fmt(b.opened) end
  if b.probe ~= nil then probe = fmt(b.probe) end
  if b.cooldown ~= nil then cooldown = fmt(b.cooldown) end
  if b.error ~= nil then has_error = '1' end
  return b.state .. '|' .. b.failures .. '|' .. opened .. '|' .. probe .. '|' .. cooldown .. '|' .. has_error
    .. '|' .. (b.error or '')
end

local function save_breaker(hash, field, b, ttl_ms)  -- ttl_ms: integer text, or nil to keep the TTL
  local encoded = encode_breaker(b)
  redis.call('HSET', hash, field, encoded)
  if ttl_ms then redis.call('PEXPIRE', hash, ttl_ms) end
  return encoded
end

-- The breakers hash is bounded as MemoryState's table is (``_forget_breakers``): ``c`` names it
-- (c.hash), the sorted sets of when each breaker that is not clean stops mattering — c.failing
-- (closed with failures) and c.open (open, half-open) —, the HSCAN cursor of c.hash (c.scan),
-- the cap (c.cap) and the keys' idle TTL (c.ttl, integer text). A clean closed record is in no
-- set (a healthy call writes nothing more): it may go whenever the hash is full.
local BREAKER_SWEEP = 8   -- records looked at, and at most let go, per step of one write

local function circuits(first_key, cap, ttl_ms)
  return {hash = KEYS[first_key], failing = KEYS[first_key + 1], open = KEYS[first_key + 2],
          scan = KEYS[first_key + 3], cap = tonumber(cap), ttl = ttl_ms}
end

-- memory._stale_at: when a breaker that is not clean stops mattering
local function breaker_until(b, now, cooldown, probe_timeout)
  if b.state == 'open' then return (b.opened or now) + (b.cooldown or cooldown) end
  if b.state == 'half_open' then return (b.probe or now) + probe_timeout end
  return now + cooldown
end

local function breaker_track(c, field, b, until_at)
  local into, out = c.open, c.failing
  if b.state == 'closed' then into, out = c.failing, c.open end
  redis.call('ZADD', into, fmt(until_at), field)
  redis.call('ZREM', out, field)
  redis.call('PEXPIRE', into, c.ttl)
end

local function breaker_forget(c, field)
  redis.call('ZREM', c.failing, field)
  redis.call('ZREM', c.open, field)
  return redis.call('HDEL', c.hash, field)
end

-- Before a write that may add ``field``, once the hash holds c.cap records: let go of the records
-- a target never seen would behave the same as, in bounded steps — first those whose time has
-- passed (either set, soonest first), then a page of the hash in turn (clean ones go; one no set
-- knows, written by an older replica, is judged by its own fields: it goes, or is tracked), and
-- if the hash is still full, those nearest to mattering no more, failing-but-closed before open.
-- ``field`` itself is never let go here: the write that follows decides about it.
local function breakers_trim(c, field, now, cooldown, probe_timeout)
  local held = redis.call('HLEN', c.hash)
  if held < c.cap then return end
  for _, set in ipairs({c.failing, c.open}) do
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', fmt(now), 'LIMIT', 0, BREAKER_SWEEP)) do
      if m ~= field then held = held - breaker_forget(c, m) end
    end
  end
  if held < c.cap then return end
  local page = redis.call('HSCAN', c.hash, redis.call('GET', c.scan) or '0', 'COUNT', BREAKER_SWEEP)
  redis.call('SET', c.scan, page[1], 'PX', c.ttl)
  local records = page[2]
  for i = 1, #records, 2 do
    local m = records[i]
    if m ~= field then
      local b = decode_breaker(records[i + 1])
      local drop = b == nil or (b.state == 'closed' and b.failures == 0)
      if not drop and not redis.call('ZSCORE', c.failing, m) and not redis.call('ZSCORE', c.open, m) then
        local until_at = breaker_until(b, now, cooldown, probe_timeout)
        if until_at > now then breaker_track(c, m, b, until_at) else drop = true end
      end
      if drop then held = held - breaker_forget(c, m) end
    end
  end
  local tries = 2 * BREAKER_SWEEP
  for _, set in ipairs({c.failing, c.open}) do
    while held >= c.cap and tries > 0 do
      tries = tries - 1
      local first = redis.call('ZRANGE', set, 0, 1)
      local m = first[1]
      if m == field then m = first[2] end
      if not m then break end
      held = held - breaker_forget(c, m)
    end
  end
end

-- a new target's average finding the latency hash full (cap: integer text) empties it first
local function latency_keep_room(latency, old, cap)
  if not old and redis.call('HLEN', latency) >= tonumber(cap) then redis.call('DEL', latency) end
end

-- breaker.on_acquire, saved; returns allowed 0/1, probe 0/1, retry_after ('' when none)
local function breaker_take(c, field, now, enabled, cooldown, probe_timeout)
  breakers_trim(c, field, now, cooldown, probe_timeout)
  local hash = c.hash
  local b = load_breaker(hash, field) or closed_breaker()
  local allowed, probe, retry_after = 1, 0, ''
  if enabled and b.state ~= 'closed' then
    if b.state == 'open' then
      local remaining = b.opened + (b.cooldown or cooldown) - now
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
  save_breaker(hash, field, b, c.ttl)
  if probe == 1 then breaker_track(c, field, b, breaker_until(b, now, cooldown, probe_timeout)) end
  return allowed, probe, retry_after
end
"""

# KEYS: per bucket its window list and its hash.
# ARGV: now, max_wait, window, ticket, slack_ms, then (limit, amount, max_wait) per bucket.
# Returns {granted 0/1, wait, index of the limiting bucket (0: none; refused: the bucket that
# refused), at (when granted), then the absolute index of each bucket's new entry}.
TAKE = _PRELUDE + r"""
local now, max_wait, window = num(ARGV[1]), num(ARGV[2]), num(ARGV[3])
local ticket, slack_ms = ARGV[4], ARGV[5]
local nb = #KEYS / 2
local go, at, limiting, amounts, bases, over, over_wait = buckets_earliest(0, 5, nb, now, window, now, now)
local wait = go - now
if wait > max_wait then return {0, fmt(wait), limiting} end
if over > 0 then return {0, fmt(over_wait), over} end
local ttl_ms = window_ttl(at, now, window, slack_ms)
local out = {1, fmt(wait), limiting, fmt(at)}
for i = 1, nb do
  out[4 + i] = window_push(KEYS[2 * i - 1], KEYS[2 * i], bases[i], at, amounts[i], ticket, ttl_ms)
end
return out
"""

# KEYS: per bucket its window list and its hash.
# ARGV: ticket, then per bucket (absolute index, real amount or '' to keep the reserved one).
# Closes the reservation; a closed or expired one is left alone.
SETTLE = _PRELUDE + r"""
for i = 1, #KEYS / 2 do
  window_settle(KEYS[2 * i - 1], KEYS[2 * i], ARGV[2 * i], ARGV[1], ARGV[2 * i + 1])
end
return 1
"""

# One call's admission: its rate-limit buckets and its budget holds, all or nothing.
# KEYS: per bucket its window list and hash, then per hold its counter hash and reservations set.
# Then, optionally, the first attempt: KEYS continue with the breakers' four keys (the hash, its
# failing and open sets, its scan cursor: ``circuits``) and per attempt bucket its window list and hash.
# ARGV: now, max_wait, window, ticket, slack_ms, nb, nh, reservation_ttl, then (limit, amount,
# max_wait) per bucket, then (limit, amount) per hold, then na (-1: no attempt) and for an
# attempt: target, enabled 0/1, cooldown, probe_timeout, breaker_ttl_ms, attempt max_wait,
# attempt ticket, breakers cap, then (limit, amount, max_wait) per attempt bucket.
# Returns {status, wait, index, spent, reserved, ...}: status 1 granted (the absolute indices of
# the buckets' entries follow, then for an attempt: allowed, probe, retry_after, granted, wait,
# limiting index, at, and the attempt entries' indices), 0 refused by bucket ``index``, 2
# refused by hold ``index`` (with its spent and reserved), 3 unseeded (the indices of the
# holds whose counter is absent follow; nothing was taken).
ADMIT = _PRELUDE + r"""
local now, max_wait, window = num(ARGV[1]), num(ARGV[2]), num(ARGV[3])
local ticket, slack_ms = ARGV[4], ARGV[5]
local nb, nh, res_ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), num(ARGV[8])
local hold_base = 8 + 3 * nb
local unseeded = {}
for h = 1, nh do
  if redis.call('EXISTS', KEYS[2 * nb + 2 * h - 1]) == 0 then unseeded[#unseeded + 1] = h end
end
if #unseeded > 0 then return {3, '0', 0, '0', '0', unpack(unseeded)} end
local go, at, limiting, amounts, bases, over, over_wait = buckets_earliest(0, 8, nb, now, window, now, now)
local wait = go - now
if wait > max_wait then return {0, fmt(wait), limiting, '0', '0'} end
if over > 0 then return {0, fmt(over_wait), over, '0', '0'} end
for h = 1, nh do
  local hash, set = KEYS[2 * nb + 2 * h - 1], KEYS[2 * nb + 2 * h]
  local counter = redis.call('HMGET', hash, 'spent', 'reserved')
  local spent = num(counter[1] or '0')
  local reserved = hold_sweep(hash, set, now, num(counter[2] or '0'))
  local limit, amount = num(ARGV[hold_base + 2 * h - 1]), num(ARGV[hold_base + 2 * h])
  if spent + reserved + amount > limit + 1e-12 then return {2, '0', h, fmt(spent), fmt(reserved)} end
end
local out = {1, fmt(wait), limiting, '0', '0'}
if nb > 0 then
  local ttl_ms = window_ttl(at, now, window, slack_ms)
  for i = 1, nb do
    out[5 + i] = window_push(KEYS[2 * i - 1], KEYS[2 * i], bases[i], at, amounts[i], ticket, ttl_ms)
  end
end
local set_ttl = string.format('%d', math.ceil(res_ttl * 1000) + slack_ms)
for h = 1, nh do
  local hash, set = KEYS[2 * nb + 2 * h - 1], KEYS[2 * nb + 2 * h]
  local amount = ARGV[hold_base + 2 * h]
  redis.call('HINCRBYFLOAT', hash, 'reserved', amount)
  redis.call('ZADD', set, fmt(now + res_ttl), ticket .. '|' .. amount)
  redis.call('PEXPIRE', set, set_ttl)
end
-- the first attempt: its breaker, then its buckets, placed no earlier than the call's own
local a = hold_base + 2 * nh + 1
local na = tonumber(ARGV[a])
if na >= 0 then
  local c, k = circuits(2 * nb + 2 * nh + 1, ARGV[a + 8], ARGV[a + 5]), 2 * nb + 2 * nh + 4
  local hash = c.hash
  local allowed, probe, retry_after = breaker_take(c, ARGV[a + 1], now, ARGV[a + 2] == '1',
                                                   num(ARGV[a + 3]), num(ARGV[a + 4]))
  local n = #out
  out[n + 1], out[n + 2], out[n + 3] = allowed, probe, retry_after
  if allowed == 1 then
    local a_max_wait, a_ticket = num(ARGV[a + 6]), ARGV[a + 7]
    local a_go, a_at, a_limiting, a_amounts, a_bases, a_over, a_over_wait =
      buckets_earliest(k, a + 8, na, now, window, go, at)
    local a_wait = a_go - now
    local refused = a_go - go > a_max_wait   -- only the wait it adds to the call's own
    if not refused and a_over > 0 then refused, a_wait, a_limiting = true, a_over_wait, a_over end
    if refused then
      out[n + 4], out[n + 5], out[n + 6], out[n + 7] = 0, fmt(a_wait), a_limiting, '0'
      if probe == 1 then          -- breaker.on_abandon: the probe slot was not used
        local b = load_breaker(hash, ARGV[a + 1])
        b.probe = nil
        save_breaker(hash, ARGV[a + 1], b, nil)
      end
    else
      out[n + 4], out[n + 5], out[n + 6], out[n + 7] = 1, fmt(a_wait), a_limiting, fmt(a_at)
      if na > 0 then
        local ttl_ms = window_ttl(a_at, now, window, slack_ms)
        for i = 1, na do
          out[n + 7 + i] = window_push(KEYS[k + 2 * i - 1], KEYS[k + 2 * i], a_bases[i], a_at, a_amounts[i],
                                       a_ticket, ttl_ms)
        end
      end
    end
  end
end
return out
"""

# Closes an ADMIT ticket. KEYS: as ADMIT's. ARGV: ticket, nb, nh, cost, then per bucket
# (absolute index, real amount or '' to keep the reserved one), then per hold the reserved
# amount (as text, as admitted) — followed by that hold's own cost when ``cost`` is '' (a
# model budget whose model did not answer the call is charged 0, the call's other budgets its
# cost: ``close_holds``). Each hold: see hold_close (the cost is spent even when the
# reservation is gone).
CLOSE = _PRELUDE + r"""
local ticket, nb, nh, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = 1, nb do
  window_settle(KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 + 2 * i], ticket, ARGV[4 + 2 * i])
end
close_holds(nb, nh, ticket, cost)
return 1
"""

# A successful call's whole settlement (CLOSE, SETTLE, BREAKER_RECORD ok, RECORD_LATENCY).
# KEYS: as CLOSE's, then per attempt bucket its window list and hash, then the breakers and
# latency hashes. ARGV: as CLOSE's (ticket '' when the call took nothing; per-hold costs too), then the attempt
# ticket, na, per attempt bucket (absolute index, amount or ''), then target, breaker_ttl_ms,
# latency_ms, alpha, latency_ttl_ms, latency cap.
FINISH = _PRELUDE + r"""
local ticket, nb, nh, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = 1, nb do
  window_settle(KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 + 2 * i], ticket, ARGV[4 + 2 * i])
end
local a = 5 + 2 * nb + close_holds(nb, nh, ticket, cost)
local a_ticket, na = ARGV[a], tonumber(ARGV[a + 1])
local k = 2 * nb + 2 * nh
for i = 1, na do
  window_settle(KEYS[k + 2 * i - 1], KEYS[k + 2 * i], ARGV[a + 2 * i], a_ticket, ARGV[a + 1 + 2 * i])
end
local t = a + 2 + 2 * na
local breakers, latency = KEYS[k + 2 * na + 1], KEYS[k + 2 * na + 2]
local target = ARGV[t]
save_breaker(breakers, target, closed_breaker(), ARGV[t + 1])
local sample, alpha = num(ARGV[t + 2]), num(ARGV[t + 3])
local old = redis.call('HGET', latency, target)
local average = sample
if old then average = alpha * sample + (1 - alpha) * num(old) end
latency_keep_room(latency, old, ARGV[t + 5])
redis.call('HSET', latency, target, fmt(average))
redis.call('PEXPIRE', latency, ARGV[t + 4])
return 1
"""

# KEYS: a budget counter hash. ARGV: spent, ttl_ms ('0': none). Creates it unless it exists.
BUDGET_SEED = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'reserved', '0')
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: a budget counter hash. ARGV: spent, ttl_ms ('0': none). Raises its spent to at least
# ``spent``, creating it when absent (reserved 0); its reservations stay. Returns the new spent.
BUDGET_RAISE = _PRELUDE + r"""
local spent = num(ARGV[1])
local held = redis.call('HGET', KEYS[1], 'spent')
if held == false then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'reserved', '0')
elseif num(held) < spent then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1])
else
  spent = num(held)
end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return fmt(spent)
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

# KEYS: the breakers' four keys (``circuits``). ARGV: target, now, enabled 0/1, failure_threshold,
# cooldown, probe_timeout, ttl_ms, cap. Returns {allowed 0/1, probe 0/1, retry_after or ''}
# (breaker.on_acquire).
BREAKER_ACQUIRE = _PRELUDE + r"""
local allowed, probe, retry_after = breaker_take(circuits(1, ARGV[8], ARGV[7]), ARGV[1], num(ARGV[2]),
                                                 ARGV[3] == '1', num(ARGV[5]), num(ARGV[6]))
return {allowed, probe, retry_after}
"""

# KEYS: the breakers' four keys (``circuits``). ARGV: target, ok 0/1, now, failure_threshold,
# ttl_ms, has_error 0/1, error, probe 0/1, the cooldown of an opening (breaker.opening_cooldown;
# '' for the policy's), the policy's cooldown, probe_timeout, cap. Returns the new encoded record
# (breaker.on_result).
BREAKER_RECORD = _PRELUDE + r"""
local now, threshold = num(ARGV[3]), num(ARGV[4])
local c, policy_cooldown, probe_timeout = circuits(1, ARGV[12], ARGV[5]), num(ARGV[10]), num(ARGV[11])
breakers_trim(c, ARGV[1], now, policy_cooldown, probe_timeout)
local cooldown = nil
if ARGV[9] ~= '' then cooldown = num(ARGV[9]) end
local err = nil
if ARGV[6] == '1' then err = ARGV[7] end
local b = load_breaker(KEYS[1], ARGV[1]) or closed_breaker()
if ARGV[2] == '1' then
  b = closed_breaker()
elseif b.state == 'half_open' or ARGV[8] == '1' then
  b = {state = 'open', failures = b.failures + 1, opened = now, cooldown = cooldown, error = err}
else
  local failures = b.failures + 1
  if b.state == 'closed' and failures >= threshold then
    b = {state = 'open', failures = failures, opened = now, cooldown = cooldown, error = err}
  else
    b.failures, b.error = failures, err
  end
end
local encoded = save_breaker(KEYS[1], ARGV[1], b, ARGV[5])
if ARGV[2] ~= '1' then breaker_track(c, ARGV[1], b, breaker_until(b, now, policy_cooldown, probe_timeout)) end
return encoded
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

# KEYS: latency hash. ARGV: target, latency_ms, alpha, ttl_ms, cap. Returns the new average.
RECORD_LATENCY = _PRELUDE + r"""
local latency, alpha = num(ARGV[2]), num(ARGV[3])
local old = redis.call('HGET', KEYS[1], ARGV[1])
local average = latency
if old then average = alpha * latency + (1 - alpha) * num(old) end
latency_keep_room(KEYS[1], old, ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], fmt(average))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return fmt(average)
"""

SCRIPTS: dict[str, str] = {
    "take": TAKE,
    "admit": ADMIT,
    "close": CLOSE,
    "finish": FINISH,
    "budget_seed": BUDGET_SEED,
    "budget_raise": BUDGET_RAISE,
    "settle": SETTLE,
    "usage": USAGE,
    "breaker_acquire": BREAKER_ACQUIRE,
    "breaker_record": BREAKER_RECORD,
    "breaker_abandon": BREAKER_ABANDON,
    "record_latency": RECORD_LATENCY,
}
