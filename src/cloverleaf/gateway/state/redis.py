"""Gateway state shared through Redis, so workers and replicas share one set of limits.

With :class:`~cloverleaf.gateway.state.memory.MemoryState` every server worker enforces
the full rpm/tpm limit on its own and keeps its own breakers: four workers allow four
times the limit and each must see five failures before it stops calling a dead target.
:class:`RedisState` keeps that state in one Redis instead: ``[state] url = "redis://..."``.

Each method is one atomic round trip: a Lua script (``redis_scripts.py``; loaded once and
called by SHA with EVALSHA) or a single read command. There is never a read followed by a
write from Python, so concurrent callers in any number of processes cannot both see room
in a bucket and both take it. The scripts follow ``window.py`` and ``breaker.py`` step for
step; the shared contract suite (``tests/gateway/test_state_contract.py``) runs the same
behaviour tests against both backends.

Times are the caller's ``now`` and Redis' clock is never read, so a manual clock drives
this backend exactly as it drives the memory one. Processes that share a Redis must
therefore share a time base: ``time.monotonic()`` is shared by the processes of one host
(the default SystemClock), not by different hosts.

One ``redis.asyncio`` client per event loop: the gateway uses its state both from the
caller's loop and from the sync Client's private loop thread, and asyncio connections
belong to the loop that opened them. Secrets in the URL (a password) never appear in
reprs or errors.

A Redis Cluster is named ``redis+cluster://`` (``rediss+cluster://``): the client is then
redis-py's ``RedisCluster``, and every key carries the prefix as its hash tag, so each script's
keys share one slot (``gateway/redis_cluster.py`` says why that layout and what it costs). Its
connections are bounded per node and a full pool fails at once instead of waiting, so calls
queue for one here, as the single-node pool makes them. A plain URL that reaches a Cluster node
is refused by :meth:`RedisState.ping` (server start-up, ``cloverleaf doctor``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..._errors import ConfigError, StateUnavailable
from ..breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot, opening_cooldown
from ..redis_cluster import (
    REDIS_PREFIXES,
    cluster_hint,
    cluster_url,
    one_slot_prefix,
    open_cluster,
    refuse_cluster_node,
)
from .base import (
    LATENCY_ALPHA,
    Admission,
    AnyBucket,
    AttemptAdmission,
    AttemptAsk,
    Bucket,
    Grant,
    Hold,
    StateBackend,
    flatten,
)
from .redis_scripts import SCRIPTS

DEFAULT_PREFIX = "cloverleaf:"
#: Breaker and latency hashes expire after this long without a write.
DEFAULT_IDLE_TTL_SECONDS = 86_400.0
#: A window list lives this long past the moment its newest reservation's tokens come back.
WINDOW_SLACK_MS = 60_000
#: Connections per event loop (``?max_connections=`` in the URL overrides), and how long a
#: call waits for a free one before failing.
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_POOL_TIMEOUT_SECONDS = 20.0
#: An open budget reservation whose process died is given back after this long.
RESERVATION_TTL_SECONDS = 3600.0
#: Breakers the shared hash holds before those that no longer matter are let go (as many as
#: MemoryState's ``MAX_TRACKED``): callers allowed "provider/*" name a new target with every model
#: name they try, and one that fails once while its upstream is down would otherwise stay for good.
MAX_BREAKERS = 10_000
#: Latency averages the shared hash holds before a new target's empties it (MemoryState's too).
MAX_LATENCIES = 10_000
#: Window key names kept built per process: as many as the router keeps resolutions (each model
#: name a caller tries brings its target's windows; a name not called for a while is rebuilt).
MAX_KEY_NAMES = 4096


class RedisState(StateBackend):
    """Rate-limit windows, breakers and latency averages in one Redis, shared by every
    process that uses the same URL and prefix."""

    shared = True

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX,
                 idle_ttl_seconds: float = DEFAULT_IDLE_TTL_SECONDS, **client_options: Any) -> None:
        try:
            import redis.asyncio as aioredis
            import redis.exceptions as redis_errors
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the Redis state backend needs the redis package: "
                              "pip install 'cloverleaf[redis]'") from exc
        url, query_prefix = _split_prefix(url)
        self._where = _redacted(url)
        self._cluster_url = cluster_url(url, "[state]")
        self._url = self._cluster_url or url
        self._prefix = prefix if query_prefix is None else query_prefix
        if self._cluster_url is not None:   # one slot for every key a script touches
            self._prefix = one_slot_prefix(self._prefix)
        self._mode_checked = self._cluster_url is not None
        # a Cluster's per-node pool fails when full: callers queue at this loop's gate instead
        self._gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = (
            None if self._cluster_url is None else {})
        self._idle_ttl_ms = int(idle_ttl_seconds * 1000)
        # a bounded pool that makes a burst of callers queue for a connection rather than fail
        self._options = {"decode_responses": True, "max_connections": DEFAULT_MAX_CONNECTIONS,
                         "timeout": DEFAULT_POOL_TIMEOUT_SECONDS, **client_options}
        self._aioredis = aioredis
        self._errors = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ResponseError,
                        redis_errors.RedisClusterException, redis_errors.ClusterError)
        # A client that never connects: it only computes each script's SHA once. Every call
        # names the client of its own event loop; EVALSHA loads a script the server lacks.
        template = aioredis.Redis(decode_responses=True)
        self._scripts = {name: template.register_script(source) for name, source in SCRIPTS.items()}
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        self._breakers_key = f"{self._prefix}circuits"
        # the hash, the sets of when its failing and open breakers stop mattering, its scan cursor
        self._circuit_keys = [self._breakers_key, f"{self._prefix}circuits:failing",
                              f"{self._prefix}circuits:open", f"{self._prefix}circuits:scan"]
        self._latency_key = f"{self._prefix}latency"
        # bucket/budget key -> Redis key(s), built once per key rather than once per call
        self._window_keys: dict[str, tuple[str, str]] = {}
        self._budget_keys: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"RedisState({self._where!r}, prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        """What every key of this backend starts with (on a Cluster: the prefix as a hash tag)."""
        return self._prefix

    @property
    def location(self) -> str:
        return self._where

    # -- plumbing ---------------------------------------------------------------------
    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for stale in [other for other in self._clients if other.is_closed()]:
                    del self._clients[stale]
                if self._gates is None:
                    pool = self._aioredis.BlockingConnectionPool.from_url(self._url, **self._options)
                    client = self._aioredis.Redis.from_pool(pool)
                else:
                    options = {k: v for k, v in self._options.items() if k != "timeout"}
                    client = open_cluster(self._url, **options)
                    for stale in [other for other in self._gates if other.is_closed()]:
                        del self._gates[stale]
                    self._gates[loop] = asyncio.Semaphore(options["max_connections"])
                self._clients[loop] = client
            return client

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            if self._gates is None:
                return await self._scripts[script](keys=list(keys), args=list(args), client=self._client())
            client = self._client()
            async with self._gates[asyncio.get_running_loop()]:
                return await self._scripts[script](keys=list(keys), args=list(args), client=client)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    async def _command(self, name: str, *args: Any) -> Any:
        """One plain command (a read) on this loop's client, queued at the gate on a Cluster."""
        try:
            client = self._client()
            if self._gates is None:
                return await getattr(client, name)(*args)
            async with self._gates[asyncio.get_running_loop()]:
                return await getattr(client, name)(*args)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    async def ping(self) -> None:
        """Whether Redis answers; a plain URL that reaches a Cluster node is a ConfigError."""
        try:
            client = self._client()
            await client.ping()
            if not self._mode_checked:
                await refuse_cluster_node(client, self._where, "[state]")
                self._mode_checked = True
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> StateUnavailable:
        advice = cluster_hint(exc) or "; check that Redis is running and [state] url is right"
        return StateUnavailable(f"the Redis state backend at {self._where} failed ({type(exc).__name__}: "
                                f"{_first_line(exc)}){advice}")

    def _window_key(self, bucket_key: str) -> tuple[str, str]:
        """A bucket's window list and its hash (see ``redis_scripts.py``)."""
        found = self._window_keys.get(bucket_key)
        if found is None:
            if len(self._window_keys) >= MAX_KEY_NAMES:
                self._window_keys.clear()
            found = self._window_keys[bucket_key] = (f"{self._prefix}w:{bucket_key}", f"{self._prefix}wm:{bucket_key}")
        return found

    def _budget_key(self, hold_key: str) -> tuple[str, str]:
        found = self._budget_keys.get(hold_key)
        if found is None:
            if len(self._budget_keys) > 100_000:
                self._budget_keys.clear()
            found = self._budget_keys[hold_key] = (f"{self._prefix}b:{hold_key}", f"{self._prefix}r:{hold_key}")
        return found

    def _breaker_ttl_ms(self, policy: BreakerPolicy) -> int:
        # never shorter than an open breaker needs to be remembered
        return max(self._idle_ttl_ms, int((policy.cooldown_seconds + policy.probe_timeout_seconds) * 2000))

    # -- rolling windows --------------------------------------------------------------
    async def take(self, buckets: Sequence[AnyBucket], now: float, max_wait: float, window: float = 60.0) -> Grant:
        # two-lane buckets (base.Lanes) as the windows they stand for: the scripts and keys are the same
        buckets = flatten(buckets)
        ticket_id = uuid.uuid4().hex
        if not buckets:
            return Grant(True, 0.0, json.dumps([ticket_id, [], []]), None, now)
        keys: list[str] = []
        args: list[str] = [_num(now), _num(max_wait), _num(window), ticket_id, str(WINDOW_SLACK_MS)]
        for b in buckets:
            keys += self._window_key(b.key)
            args += [_num(b.limit), _num(b.amount), _num(b.max_wait)]
        reply = await self._run("take", keys, args)
        granted, wait, limiting = bool(reply[0]), float(reply[1]), int(reply[2])
        limiting_key = buckets[limiting - 1].key if limiting else None
        if not granted:
            return Grant(False, wait, None, limiting_key)
        ticket = json.dumps([ticket_id, [b.key for b in buckets], [int(i) for i in reply[4:]]], separators=(",", ":"))
        return Grant(True, wait, ticket, limiting_key, float(reply[3]))

    async def settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        ticket_id, entries = _parse_ticket(ticket)
        if entries:
            keys: list[str] = []
            args = [ticket_id]
            for key, index in entries:
                keys += self._window_key(key)
                args += [str(index), _num(amounts[key]) if key in amounts else ""]
            await self._run("settle", keys, args)

    async def release(self, ticket: str) -> None:
        ticket_id, entries = _parse_ticket(ticket)
        if entries:
            keys: list[str] = []
            args = [ticket_id]
            for key, index in entries:
                keys += self._window_key(key)
                args += [str(index), "0"]
            await self._run("settle", keys, args)

    # -- one call's admission --------------------------------------------------------
    async def admit(self, buckets: Sequence[AnyBucket], holds: Sequence[Hold], now: float, max_wait: float,
                    window: float = 60.0, attempt: AttemptAsk | None = None) -> Admission:
        # two-lane buckets (base.Lanes) as the windows they stand for: the scripts and keys are the same
        buckets = flatten(buckets)
        attempt_buckets = flatten(attempt.buckets) if attempt is not None else []
        ticket_id = uuid.uuid4().hex
        keys: list[str] = []
        args: list[str] = [_num(now), _num(max_wait), _num(window), ticket_id, str(WINDOW_SLACK_MS),
                           str(len(buckets)), str(len(holds)), _num(RESERVATION_TTL_SECONDS)]
        for b in buckets:
            keys += self._window_key(b.key)
            args += [_num(b.limit), _num(b.amount), _num(b.max_wait)]
        amounts = []
        for h in holds:
            keys += self._budget_key(h.key)
            amount = _num(h.amount)
            amounts.append(amount)
            args += [_num(h.limit), amount]
        call_keys = len(keys)
        attempt_id = ticket_id + "a"
        if attempt is None:
            args.append("-1")
        else:
            policy = attempt.policy
            keys += self._circuit_keys
            args += [str(len(attempt_buckets)), attempt.key, "1" if policy.enabled else "0",
                     _num(policy.cooldown_seconds), _num(policy.probe_timeout_seconds),
                     str(self._breaker_ttl_ms(policy)), _num(attempt.max_wait), attempt_id, str(MAX_BREAKERS)]
            for b in attempt_buckets:
                keys += self._window_key(b.key)
                args += [_num(b.limit), _num(b.amount), _num(b.max_wait)]
        reply = await self._run("admit", keys, args)
        status = int(reply[0])
        if status == 1:
            index = int(reply[2])
            nb = len(buckets)
            ticket = _CallTicket(ticket_id, keys[:call_keys], [b.key for b in buckets], reply[5:5 + nb], amounts)
            first = None if attempt is None else _attempt_admission(attempt_buckets, attempt_id, reply[5 + nb:])
            return Admission(True, float(reply[1]), ticket, buckets[index - 1].key if index else None,
                             attempt=first)
        if status == 0:
            return Admission(False, float(reply[1]), None, buckets[int(reply[2]) - 1].key)
        if status == 2:
            return Admission(False, 0.0, None, holds[int(reply[2]) - 1].key, float(reply[3]), float(reply[4]))
        return Admission(False, unseeded=tuple(holds[int(i) - 1].key for i in reply[5:]))

    async def close(self, ticket: object, amounts: Mapping[str, float] | None, cost: float,
                    costs: Sequence[float] | None = None) -> None:
        if not isinstance(ticket, _CallTicket) or ticket.closed:
            return
        ticket.closed = True
        args = [ticket.id, str(len(ticket.buckets)), str(len(ticket.holds)), "" if costs is not None else _num(cost)]
        for key, index in zip(ticket.buckets, ticket.indices, strict=True):
            if amounts is None:
                amount = "0"
            else:
                amount = _num(amounts[key]) if key in amounts else ""
            args += [str(index), amount]
        args += _holds_args(ticket.holds, costs)
        await self._run("close", ticket.keys, args)

    async def finish(self, ticket: object, amounts: Mapping[str, float], cost: float, attempt_ticket: str | None,
                     attempt_amounts: Mapping[str, float], target: str, now: float, policy: BreakerPolicy,
                     latency_ms: float, costs: Sequence[float] | None = None) -> None:
        keys: list[str] = []
        if isinstance(ticket, _CallTicket) and not ticket.closed:
            ticket.closed = True
            keys += ticket.keys
            args = [ticket.id, str(len(ticket.buckets)), str(len(ticket.holds)),
                    "" if costs is not None else _num(cost)]
            for key, index in zip(ticket.buckets, ticket.indices, strict=True):
                args += [str(index), _num(amounts[key]) if key in amounts else ""]
            args += _holds_args(ticket.holds, costs)
        else:
            args = ["", "0", "0", "0"]
        attempt_id, entries = _parse_ticket(attempt_ticket) if attempt_ticket is not None else ("", [])
        args += [attempt_id, str(len(entries))]
        for key, index in entries:
            keys += self._window_key(key)
            args += [str(index), _num(attempt_amounts[key]) if key in attempt_amounts else ""]
        keys += [self._breakers_key, self._latency_key]
        args += [target, str(self._breaker_ttl_ms(policy)), _num(latency_ms), _num(LATENCY_ALPHA), str(self._idle_ttl_ms),
                 str(MAX_LATENCIES)]
        await self._run("finish", keys, args)

    async def budget_seed(self, key: str, spent: float) -> None:
        await self._run("budget_seed", [self._budget_key(key)[0]], [_num(spent), str(_budget_ttl_ms(key))])

    async def budget_raise(self, key: str, spent: float) -> None:
        await self._run("budget_raise", [self._budget_key(key)[0]], [_num(spent), str(_budget_ttl_ms(key))])

    async def budget_usage(self, key: str) -> tuple[float, float] | None:
        spent, reserved = await self._command("hmget", self._budget_key(key)[0], ["spent", "reserved"])
        return None if spent is None else (float(spent), float(reserved or 0.0))

    async def usage(self, key: str, now: float, window: float = 60.0) -> float:
        return float(await self._run("usage", [self._window_key(key)[0]], [_num(now), _num(window)]))

    # -- circuit breakers -------------------------------------------------------------
    async def breaker_acquire(self, key: str, now: float, policy: BreakerPolicy) -> BreakerDecision:
        allowed, probe, retry_after = await self._run("breaker_acquire", self._circuit_keys, [
            key, _num(now), "1" if policy.enabled else "0", str(policy.failure_threshold),
            _num(policy.cooldown_seconds), _num(policy.probe_timeout_seconds), str(self._breaker_ttl_ms(policy)),
            str(MAX_BREAKERS)])
        return BreakerDecision(bool(allowed), bool(probe), float(retry_after) if retry_after != "" else None)

    async def breaker_record(self, key: str, ok: bool, now: float, policy: BreakerPolicy,
                             error: str | None = None, probe: bool = False,
                             retry_after: float | None = None) -> BreakerSnapshot:
        cooldown = opening_cooldown(retry_after, policy)
        encoded = await self._run("breaker_record", self._circuit_keys, [
            key, "1" if ok else "0", _num(now), str(policy.failure_threshold), str(self._breaker_ttl_ms(policy)),
            "0" if error is None else "1", error or "", "1" if probe and policy.enabled else "0",
            "" if cooldown is None else _num(cooldown), _num(policy.cooldown_seconds),
            _num(policy.probe_timeout_seconds), str(MAX_BREAKERS)])
        return _decode_breaker(encoded)

    async def breaker_abandon(self, key: str) -> None:
        await self._run("breaker_abandon", [self._breakers_key], [key])

    async def breaker_snapshots(self) -> dict[str, BreakerSnapshot]:
        raw = await self._command("hgetall", self._breakers_key)
        return {key: _decode_breaker(value) for key, value in raw.items()}

    # -- latency averages -------------------------------------------------------------
    async def record_latency(self, key: str, latency_ms: float, alpha: float = LATENCY_ALPHA) -> None:
        await self._run("record_latency", [self._latency_key],
                        [key, _num(latency_ms), _num(alpha), str(self._idle_ttl_ms), str(MAX_LATENCIES)])

    async def latencies(self, keys: Sequence[str]) -> dict[str, float]:
        if not keys:
            return {}
        values = await self._command("hmget", self._latency_key, list(keys))
        return {k: float(v) for k, v in zip(keys, values, strict=True) if v is not None}

    # -- housekeeping -----------------------------------------------------------------
    async def clear(self) -> None:
        """Delete every key under this prefix (tests, and an operator's reset)."""
        client = self._client()
        try:
            batch: list[str] = []
            async for key in client.scan_iter(match=_glob_escape(self._prefix) + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    async def aclose(self) -> None:
        """Close this loop's connections; a client of another loop is closed on that loop if
        it still runs, and dropped if it has ended."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        with self._lock:
            clients, self._clients = self._clients, {}
        for loop, client in clients.items():
            if loop is current:
                await client.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
                await asyncio.wrap_future(future)


def open_redis_state(url: str, prefix: str | None = None) -> RedisState:
    """``[state] url = "redis://..."`` (or ``rediss://`` for TLS; ``redis+cluster://`` and
    ``rediss+cluster://`` for a Redis Cluster); the prefix comes from ``[state] prefix`` or a
    ``?prefix=`` query parameter, default ``cloverleaf:``."""
    if not url.startswith(REDIS_PREFIXES):
        raise ConfigError(f"[state] url must start with redis://, rediss:// or redis+cluster://, got {_redacted(url)!r}")
    return RedisState(url) if prefix is None else RedisState(url, prefix=prefix)


# -- encoding helpers -----------------------------------------------------------------
def _attempt_admission(buckets: list[Bucket], ticket_id: str, reply: list[Any]) -> AttemptAdmission:
    """The first attempt's admission from the script's reply (``buckets``: its buckets, flattened)."""
    allowed, probe, retry_after = bool(reply[0]), bool(reply[1]), reply[2]
    decision = BreakerDecision(allowed, probe, float(retry_after) if retry_after != "" else None)
    if not allowed:
        return AttemptAdmission(decision)
    granted, wait, limiting = bool(reply[3]), float(reply[4]), int(reply[5])
    limiting_key = buckets[limiting - 1].key if limiting else None
    if not granted:
        return AttemptAdmission(decision, Grant(False, wait, None, limiting_key))
    if not buckets:
        return AttemptAdmission(decision, Grant(True, wait, None, None, float(reply[6])))
    ticket = json.dumps([ticket_id, [b.key for b in buckets], [int(i) for i in reply[7:]]],
                        separators=(",", ":"))
    return AttemptAdmission(decision, Grant(True, wait, ticket, limiting_key, float(reply[6])))


def _holds_args(holds: list[str], costs: Sequence[float] | None) -> list[str]:
    """A ticket's holds as CLOSE and FINISH take them: each reserved amount (as admitted),
    followed by its own cost when the call's holds are charged differently (``costs``; the
    script's cost argument is then blank)."""
    if costs is None:
        return holds
    out: list[str] = []
    for amount, cost in zip(holds, costs, strict=True):
        out += [amount, _num(cost)]
    return out


def _budget_ttl_ms(key: str) -> int:
    """An idle budget counter's lifetime: a day's for a few days, a month's for two
    months, a ``total`` one for ever (0)."""
    period = key.rpartition("|")[2]
    if len(period) == 10:      # 2025-01-31
        return 3 * 86_400_000
    if len(period) == 7:       # 2025-01
        return 62 * 86_400_000
    return 0



def _num(x: float) -> str:
    """A number as text Lua's tonumber reads back to the same double (repr round-trips)."""
    x = float(x)
    if x != x:
        raise ValueError("NaN is not a valid state value")
    return repr(x)  # 'inf' and '-inf' are understood by the scripts


class _CallTicket:
    """What one :meth:`RedisState.admit` took: the keys it touched, its buckets' entries
    (bucket key and absolute index) and its holds' amounts as sent."""

    __slots__ = ("id", "keys", "buckets", "indices", "holds", "closed")

    def __init__(self, ticket_id: str, keys: list[str], buckets: list[str], indices: list[Any],
                 holds: list[str]) -> None:
        self.id = ticket_id
        self.keys = keys
        self.buckets = buckets
        self.indices = indices
        self.holds = holds
        self.closed = False


def _parse_ticket(ticket: str) -> tuple[str, list[tuple[str, int]]]:
    try:
        ticket_id, keys, indices = json.loads(ticket)
        return str(ticket_id), [(str(k), int(i)) for k, i in zip(keys, indices, strict=True)]
    except (ValueError, TypeError):
        return "", []  # not one of ours: nothing to settle, as MemoryState ignores unknown tickets


def _decode_breaker(encoded: str) -> BreakerSnapshot:
    state, failures, opened, probe, cooldown, has_error, error = encoded.split("|", 6)
    return BreakerSnapshot(
        state=state,  # type: ignore[arg-type]
        consecutive_failures=int(failures),
        opened_at=float(opened) if opened else None,
        probe_started_at=float(probe) if probe else None,
        last_error=error if has_error == "1" else None,
        cooldown_seconds=float(cooldown) if cooldown else None,
    )


def _split_prefix(url: str) -> tuple[str, str | None]:
    """Take ``prefix=`` out of the URL's query (redis-py would refuse an unknown option)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), None)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return urlunsplit(parts._replace(query=""))
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc, query=""))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
