"""Where stored Responses live: the gateway's store (SQLite or PostgreSQL), behind a small
in-process cache.

Why the write is synchronous: a client may continue a conversation (``previous_response_id``)
the instant it reads ``response.completed`` — the OpenAI Agents SDK does exactly that — and a
gateway whose log write lands seconds later answers "not found" (LiteLLM's known bug). So
the route awaits :meth:`ResponseStore.save` (a thread, one INSERT) *before* the completed
Response goes out; another worker or replica reading the same database finds it at once.
The cache keeps the last few hundred responses this process made or read, so a
conversation served by one process is rebuilt without reading its rows again — bounded by
bytes as well as rows (``CACHE_BYTES``), since a row keeps its request's inline attachments
(a base64 image is megabytes): a row larger than ``CACHE_ROW_BYTES`` is not cached at all, it
is read from the store when a later turn needs it. A cached row
is still confirmed to be in the store before it is served (one indexed query for the whole
chain, ids only): a DELETE through another worker or replica never reaches this cache, and
a deleted response must be a 404 everywhere at once, not only where it was deleted.

Scoping: every row has an ``owner`` — ``key:<id>`` for a virtual key, ``master`` or
``open`` — and every read and delete filters on it, so another key's response is a 404,
indistinguishable from one that never existed.

Retention: ``expires_at`` comes from the model's registry entry (``data_retention_days``)
or else ``[store] data_retention_days``; an expired row reads as missing and is deleted by the
gateway's hourly cleanup (``Store.purge_responses``, on its own thread: never in a client's
request, where a slow purge made the save that had committed answer 503). Without a store,
expired cached rows are dropped at most hourly from :meth:`save`.

A conversation is the chain of ``previous_response_id`` links, each row holding only its
own input items and output, so a long conversation with attachments is stored once, not
once per turn. Without a store (``[store]`` disabled) the cache is the only copy: it keeps
the newest responses up to ``MEMORY_ONLY_BYTES`` (and ``CACHE_SIZE * 8`` rows), and a turn
that names one it has let go gets the same 404 (400 for an earlier turn of the chain) as an
expired one, saying why.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..._privacy import LOCAL_ONLY
from ..errors import ApiError, BadRequest, NotFound
from .items import stamp_provider

CACHE_SIZE = 512
#: Bytes of responses (their input items and output, as JSON text) the cache holds beside a store.
CACHE_BYTES = 16 * 1024 * 1024
#: A row larger than this is not cached beside a store (a later turn reads it from the store).
CACHE_ROW_BYTES = 2 * 1024 * 1024
#: Without a store the cache is the storage: the newest responses up to this many bytes (the
#: newest one is kept whatever its size).
MEMORY_ONLY_BYTES = 32 * 1024 * 1024
PURGE_INTERVAL_SECONDS = 3600.0
#: How many of a key's newest stored responses an ``item_reference`` the cache does not know is
#: searched among: a reference names an item of a recent step, and a search past the cache reads
#: each row's JSON, so it is bounded rather than a scan of everything the key ever stored.
ITEM_SEARCH_ROWS = 1000
#: Longest chain of previous responses rebuilt for one request.
MAX_CHAIN = 10_000
#: Ids per query when confirming cached rows (well under every database's bound-parameter limit).
CONFIRM_BATCH = 500


class Conversation(NamedTuple):
    """A stored conversation rebuilt for its next turn."""

    items: list[dict[str, Any]]
    #: a turn of it ran local-only, so the next one must too
    local_only: bool


class StoredItem(NamedTuple):
    """An item of a stored response, found by its id (an ``item_reference``)."""

    item: dict[str, Any]
    #: the response holding it ran local-only, so a request replaying the item must too
    local_only: bool


@dataclass(slots=True)
class StoredResponse:
    id: str
    owner: str
    created_at: float
    expires_at: float | None
    model: str
    #: the provider row that answered, as its reasoning names it (reasoning is only replayed
    #: where it verifies; Claude on Vertex AI's is marked as Claude's: ``vertex#claude``)
    provider: str | None
    previous_response_id: str | None
    input_items: list[dict[str, Any]]
    response: dict[str, Any]
    #: "local-only" when the turn ran under that policy: every later turn replays this one, so
    #: it inherits the policy (None: nothing restricted it)
    privacy: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _duplicate(response_id: str) -> ApiError:
    """A relayed upstream answer reused an id already stored: never overwrite another's row."""
    return ApiError(f"the upstream answered with response id {response_id!r}, which is already stored; "
                    "it was not stored again", status=502, kind="upstream_error", code="duplicate_response_id")


class ResponseStore:
    def __init__(self, store: Any, *, wall: Any = time.time) -> None:
        self._store = store                     # the gateway's Store, or None (cache only)
        self._wall = wall
        #: id → (row, its size in bytes, roughly its JSON text's: :func:`footprint`)
        self._cache: OrderedDict[str, tuple[StoredResponse, int]] = OrderedDict()
        self._bytes = 0     # the sizes of the rows in the cache
        #: (owner, item id) → the cached rows of that owner holding the item, oldest first (an
        #: ``item_reference`` names an item only). Per owner: keyed by the id alone, another key's
        #: row holding an item of that id (sent inline) hid this owner's, and the reference was a
        #: 400; every holder: a later turn holding it again (a resolved reference is stored as its
        #: input) could be deleted or expire while the turn that made it is still there.
        self._items: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self._last_purge = 0.0

    # -- cache ------------------------------------------------------------------------
    def _remember(self, row: StoredResponse) -> None:
        size = footprint(row.input_items) + footprint(row.response)
        stored = self._store is not None
        with self._lock:
            self._drop(row.id)
            if stored and size > CACHE_ROW_BYTES:
                return      # read from the store when a later turn names it
            self._cache[row.id] = (row, size)
            self._bytes += size
            for item_id in _item_ids(row):
                self._items.setdefault((row.owner, item_id), []).append(row.id)
            rows, size_limit = (CACHE_SIZE, CACHE_BYTES) if stored else (CACHE_SIZE * 8, MEMORY_ONLY_BYTES)
            while len(self._cache) > rows or (self._bytes > size_limit and len(self._cache) > 1):
                self._drop(next(iter(self._cache)))   # the oldest, and its items out of the index

    def _drop(self, response_id: str) -> None:
        """Under the lock: ``response_id`` out of the cache."""
        found = self._cache.pop(response_id, None)
        if found is not None:
            self._bytes -= found[1]
            for item_id in _item_ids(found[0]):
                holders = self._items.get((found[0].owner, item_id))
                if holders is not None and response_id in holders:
                    holders.remove(response_id)
                    if not holders:
                        del self._items[(found[0].owner, item_id)]

    def _cached(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            found = self._cache.get(response_id)
            return None if found is None else found[0]

    def _forget(self, response_id: str) -> None:
        with self._lock:
            self._drop(response_id)

    def cached_bytes(self) -> int:
        """What the cache holds, in bytes (roughly the JSON text of its rows)."""
        with self._lock:
            return self._bytes

    # -- writes -----------------------------------------------------------------------
    async def save(self, row: StoredResponse) -> None:
        known = self._cached(row.id)
        if known is not None and known.owner != row.owner:
            raise _duplicate(row.id)
        if self._store is not None:
            import sqlalchemy as sa

            try:
                await asyncio.to_thread(self._insert, row)
            except sa.exc.IntegrityError:
                raise _duplicate(row.id) from None
        else:
            now = self._wall()
            if now - self._last_purge >= PURGE_INTERVAL_SECONDS:
                self._last_purge = now
                self.purge_expired(now)
        self._remember(row)

    def _insert(self, row: StoredResponse) -> None:
        from ...gateway.store.schema import responses as table

        with self._store.engine.begin() as conn:
            conn.execute(table.insert().values(
                id=row.id, owner=row.owner, created_at=row.created_at, expires_at=row.expires_at, model=row.model,
                provider=row.provider,
                previous_response_id=row.previous_response_id, input_items=row.input_items, response=row.response,
                privacy=row.privacy))

    def purge_expired(self, now: float) -> int:
        """Delete rows past their retention; returns how many (the store's cleanup does this
        hourly; without a store, :meth:`save` does it for the cache)."""
        if self._store is None:
            with self._lock:
                gone = [k for k, (v, _) in self._cache.items() if v.expired(now)]
                for k in gone:
                    self._drop(k)
            return len(gone)
        return int(self._store.purge_responses(now))

    async def delete(self, response_id: str, owner: str) -> None:
        await self.get(response_id, owner)  # 404 unless it exists for this owner
        self._forget(response_id)
        if self._store is not None:
            await asyncio.to_thread(self._delete, response_id, owner)

    def _delete(self, response_id: str, owner: str) -> None:
        from ...gateway.store.schema import responses as table

        with self._store.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id == response_id, table.c.owner == owner))

    # -- reads ------------------------------------------------------------------------
    async def get(self, response_id: str, owner: str) -> StoredResponse:
        row = self._cached(response_id)
        if row is None:
            row = await self._load(response_id)
        elif self._store is not None and not await asyncio.to_thread(self._present, [response_id]):
            self._forget(response_id)   # deleted through another process
            row = None
        if row is None or row.owner != owner or row.expired(self._wall()):
            raise NotFound(f"no response {response_id!r} (it does not exist, was deleted, expired, or was made "
                           f"with another API key){self._memory_only()}", code="response_not_found")
        return row

    def _memory_only(self) -> str:
        """What a missing response's error adds without a store: the memory it was kept in is bounded."""
        if self._store is not None:
            return ""
        return (f"; this gateway has no [store] database, so it keeps only its newest responses in memory "
                f"(up to {MEMORY_ONLY_BYTES // (1024 * 1024)} MB, {CACHE_SIZE * 8} responses) and lets older ones "
                "go: send the earlier turns as input instead, or configure [store]")

    async def _load(self, response_id: str) -> StoredResponse | None:
        """The row as stored (None without a store: the cache was the only copy)."""
        if self._store is None:
            return None
        row = await asyncio.to_thread(self._select, response_id)
        if row is not None:
            self._remember(row)
        return row

    def _present(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the store still holds (primary-key lookups, ids only)."""
        from ...gateway.store.schema import responses as table

        found: set[str] = set()
        with self._store.engine.connect() as conn:
            for start in range(0, len(ids), CONFIRM_BATCH):
                batch = ids[start:start + CONFIRM_BATCH]
                found.update(conn.execute(table.select().with_only_columns(table.c.id)
                                          .where(table.c.id.in_(batch))).scalars())
        return found

    def _select(self, response_id: str) -> StoredResponse | None:
        from ...gateway.store.schema import responses as table

        with self._store.engine.connect() as conn:
            r = conn.execute(table.select().where(table.c.id == response_id)).mappings().first()
        if r is None:
            return None
        return StoredResponse(id=r["id"], owner=r["owner"], created_at=r["created_at"], expires_at=r["expires_at"],
                              model=r["model"], provider=r["provider"], previous_response_id=r["previous_response_id"],
                              input_items=list(r["input_items"]), response=dict(r["response"]), privacy=r["privacy"])

    async def find_item(self, item_id: str, owner: str) -> StoredItem | None:
        """The stored item (an input item or an output item of one of ``owner``'s stored
        responses) with this id, as the conversation history would replay it; None when there is
        none. The cache's index answers at once; past it (a response this process never made or
        read: another worker or replica, a restart) the store is searched for the row holding it,
        the newest first (a scan of the owner's newest :data:`ITEM_SEARCH_ROWS` rows: items have
        no index of their own, and a reference names an item of a recent step of the same
        conversation)."""
        with self._lock:
            holders = list(reversed(self._items.get((owner, item_id), ())))
        for response_id in holders:   # the newest holder first; one deleted or expired: the next
            found = await self._item_of(response_id, item_id, owner)
            if found is not None:
                return found
        if self._store is None:
            return None
        searched = await asyncio.to_thread(self._select_holding, item_id, owner, self._wall())
        return None if searched is None else await self._item_of(searched, item_id, owner)

    async def _item_of(self, response_id: str, item_id: str, owner: str) -> StoredItem | None:
        """The item ``item_id`` of ``owner``'s response ``response_id``, None when it has none."""
        try:
            row = await self.get(response_id, owner)
        except NotFound:
            return None
        for item in [*row.input_items, *(row.response.get("output") or ())]:
            if item.get("id") == item_id:
                found = stamp_provider(item, row.provider) if item.get("type") == "reasoning" else dict(item)
                return StoredItem(found, row.privacy == LOCAL_ONLY)
        return None

    def _select_holding(self, item_id: str, owner: str, now: float) -> str | None:
        """The id of ``owner``'s newest unexpired row whose input or output holds an item with
        ``item_id`` (the JSON text holds it as a quoted string; the row is checked item by item
        afterwards). An expired row (a turn of a model kept for fewer days, not purged yet) is
        passed over: it was found first and the reference was a 400 though an older row held it."""
        import json

        import sqlalchemy as sa

        from ...gateway.store.schema import responses as table

        needle = json.dumps(item_id)
        holds = sa.or_(sa.cast(table.c.response, sa.Text).contains(needle, autoescape=True),
                       sa.cast(table.c.input_items, sa.Text).contains(needle, autoescape=True))
        live = sa.or_(table.c.expires_at.is_(None), table.c.expires_at > now)
        recent = (sa.select(table.c.id).where(table.c.owner == owner, live).order_by(table.c.created_at.desc())
                  .limit(ITEM_SEARCH_ROWS).subquery())
        with self._store.engine.connect() as conn:
            found = conn.execute(sa.select(table.c.id).where(table.c.id.in_(sa.select(recent.c.id)), holds)
                                 .order_by(table.c.created_at.desc()).limit(1)).scalar()
        return None if found is None else str(found)

    async def history(self, response_id: str, owner: str, *, param: str = "previous_response_id"
                      ) -> Conversation:
        """Every item of the conversation up to and including ``response_id``'s output, oldest
        first, and whether any of its turns ran local-only."""
        chain: list[StoredResponse] = []
        cached: list[str] = []   # rows taken from this process's cache: confirmed together below
        current: str | None = response_id
        now = self._wall()
        while current is not None:
            if len(chain) >= MAX_CHAIN:
                raise BadRequest(f"the conversation is longer than {MAX_CHAIN} responses", param=param)
            row = self._cached(current)
            if row is None:
                row = await self._load(current)
            elif self._store is not None:
                cached.append(current)
            if row is None or row.owner != owner or row.expired(now):
                raise _broken(response_id, current, not chain, param, self._memory_only())
            chain.append(row)
            current = row.previous_response_id
        if cached:
            missing = set(cached) - await asyncio.to_thread(self._present, cached)
            gone = [row for row in chain if row.id in missing]
            if gone:
                for row in gone:
                    self._forget(row.id)
                raise _broken(response_id, gone[0].id, gone[0] is chain[0], param, self._memory_only())
        items: list[dict[str, Any]] = []
        for row in reversed(chain):
            items.extend(row.input_items)
            items.extend(stamp_provider(item, row.provider) if item.get("type") == "reasoning" else item
                         for item in row.response.get("output") or ())
        return Conversation(items, any(row.privacy == LOCAL_ONLY for row in chain))


def _broken(response_id: str, missing: str, first: bool, param: str, why: str) -> ApiError:
    """The error for a conversation whose response ``missing`` cannot be read: the one asked
    for (404), or an earlier one (400: the chain cannot be rebuilt); ``why`` adds what a
    gateway without a store keeps."""
    if first:
        return NotFound(f"previous response {response_id!r} not found (it does not exist, was deleted, expired, "
                        f"was made with another API key, or was not stored: store=false){why}",
                        code="previous_response_not_found", param=param)
    return BadRequest(f"the conversation of {response_id!r} cannot be rebuilt: its earlier response {missing!r} "
                      f"was deleted or has expired; start a new conversation or send the history as input{why}",
                      code="previous_response_not_found", param=param)


def _item_ids(row: StoredResponse) -> list[str]:
    """The ids of a row's input and output items (what an ``item_reference`` may name), each
    once (an input may name one item twice)."""
    items = [*row.input_items, *(row.response.get("output") or ())]
    return list(dict.fromkeys(str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")))


def footprint(value: Any) -> int:
    """About the length of ``value``'s JSON text (what a row costs the cache), counted without
    writing it: the strings' lengths plus a few bytes per key and value. A base64 attachment
    is one long string, so the walk is over the items, not over their bytes."""
    size = 0
    pending = [value]
    while pending:
        v = pending.pop()
        if isinstance(v, str):
            size += len(v) + 2
        elif isinstance(v, dict):
            size += 2
            for key, item in v.items():
                size += len(key) + 4
                pending.append(item)
        elif isinstance(v, (list, tuple)):
            size += 2 + len(v)
            pending.extend(v)
        else:
            size += 8
    return size
