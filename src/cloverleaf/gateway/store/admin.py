"""The server's tables: virtual keys and the model registry, as simple CRUD.

The store never sees a plaintext secret: a key is stored as its hash (the server hashes),
a provider key as opaque encrypted text (the server encrypts). Reads return dataclasses
from ``records.py``.

Every change to the key table bumps its row in ``change_counters`` in the same transaction:
servers cache keys in every worker and read that one number once a second to know when to
drop their cache (``server/keys.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from . import schema
from .keyset import Place, past
from .records import ModelEntryRow, VirtualKeyRow
from .spend import dialect_insert

_KEY_FIELDS = {f.name for f in fields(VirtualKeyRow)}
_ENTRY_FIELDS = {f.name for f in fields(ModelEntryRow)}


class AdminTables:
    engine: sa.Engine
    wall: Callable[[], float]

    # -- virtual keys ------------------------------------------------------------------
    def create_virtual_key(self, key: VirtualKeyRow) -> VirtualKeyRow:
        if not key.created_at:
            key.created_at = self.wall()
        with self.engine.begin() as conn:
            conn.execute(schema.virtual_keys.insert().values(**_key_row(key)))
            _bump(conn, KEYS_COUNTER)
        return key

    def change_counter(self, name: str) -> int:
        """How many changes the table ``name`` has seen (0 before the first)."""
        c = schema.change_counters
        with self.engine.connect() as conn:
            version = conn.execute(sa.select(c.c.version).where(c.c.name == name)).scalar()
        return int(version or 0)

    def get_virtual_key(self, key_id: str) -> VirtualKeyRow | None:
        k = schema.virtual_keys
        return self._one_key(k.c.id == key_id)

    def find_virtual_key(self, secret_hash: str) -> VirtualKeyRow | None:
        """The key whose secret hashes to ``secret_hash`` (the server's auth lookup)."""
        return self._one_key(schema.virtual_keys.c.secret_hash == secret_hash)

    def list_virtual_keys(self, *, include_revoked: bool = True, after: Place | None = None,
                          limit: int | None = None, newest_first: bool = False,
                          budgeted: bool = False) -> list[VirtualKeyRow]:
        """The keys, oldest first (``created_at``, then ``id``; ``newest_first`` the other way, as
        the dashboard pages them), only those with a budget if ``budgeted``; ``after`` (a
        :mod:`.keyset` place) and ``limit`` give one page."""
        k = schema.virtual_keys
        order = (k.c.created_at.desc(), k.c.id.desc()) if newest_first else (k.c.created_at, k.c.id)
        query = sa.select(k).order_by(*order).limit(limit)
        if not include_revoked:
            query = query.where(k.c.revoked_at.is_(None))
        if budgeted:
            query = query.where(k.c.budget.isnot(None))
        if after is not None:
            query = query.where(past(k.c.created_at, k.c.id, after, newest_first=newest_first))
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(query).mappings()]

    def update_virtual_key(self, key_id: str, **changes: Any) -> VirtualKeyRow | None:
        bad = set(changes) - (_KEY_FIELDS - {"id"})
        if bad:
            raise ValueError(f"unknown virtual key field(s) {sorted(bad)}")
        k = schema.virtual_keys
        with self.engine.begin() as conn:
            if changes:
                conn.execute(k.update().where(k.c.id == key_id).values(**changes))
                _bump(conn, KEYS_COUNTER)
        return self.get_virtual_key(key_id)

    def revoke_virtual_key(self, key_id: str, at: float | None = None) -> bool:
        k = schema.virtual_keys
        with self.engine.begin() as conn:
            n = conn.execute(k.update().where(k.c.id == key_id, k.c.revoked_at.is_(None))
                             .values(revoked_at=self.wall() if at is None else at)).rowcount
            _bump(conn, KEYS_COUNTER)
        return bool(n)

    def delete_virtual_key(self, key_id: str) -> bool:
        k = schema.virtual_keys
        with self.engine.begin() as conn:
            gone = bool(conn.execute(k.delete().where(k.c.id == key_id)).rowcount)
            _bump(conn, KEYS_COUNTER)
            return gone

    def add_key_spend(self, key_id: str, amount: float) -> None:
        k = schema.virtual_keys
        with self.engine.begin() as conn:
            conn.execute(k.update().where(k.c.id == key_id).values(spent=k.c.spent + amount))

    def _one_key(self, condition: Any) -> VirtualKeyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.virtual_keys).where(condition)).mappings().first()
        return _key(row) if row else None

    # -- model entries -----------------------------------------------------------------
    def create_model_entry(self, entry: ModelEntryRow) -> ModelEntryRow | None:
        """Insert the entry named ``entry.name``; None when one of that name exists. The insert
        itself decides (the primary key refuses a second row), not a look beforehand, so of
        several callers creating one name at once exactly one gets the entry and none
        overwrites another's."""
        m = schema.model_entries
        entry.created_at = entry.updated_at = self.wall()
        try:
            with self.engine.begin() as conn:
                conn.execute(m.insert().values(**{f: getattr(entry, f) for f in _ENTRY_FIELDS}))
        except sa.exc.IntegrityError:
            if self.get_model_entry(entry.name) is None:
                raise            # not the name: some other constraint, a bug to hear about
            return None
        return entry

    def upsert_model_entry(self, entry: ModelEntryRow) -> ModelEntryRow:
        """Insert or replace the entry named ``entry.name`` (a replaced entry keeps its
        ``created_at``). One statement (``ON CONFLICT DO UPDATE``), so two callers writing one
        new name at once both succeed, the later one's values kept."""
        m = schema.model_entries
        now = self.wall()
        entry.updated_at = now
        entry.created_at = entry.created_at or now
        values = {f: getattr(entry, f) for f in _ENTRY_FIELDS}
        with self.engine.begin() as conn:
            insert = dialect_insert(conn.dialect.name)(m).values(**values)
            changed = {f: insert.excluded[f] for f in values if f not in ("name", "created_at")}
            conn.execute(insert.on_conflict_do_update(index_elements=[m.c.name], set_=changed))
            entry.created_at = conn.execute(sa.select(m.c.created_at).where(m.c.name == entry.name)).scalar_one()
        return entry

    def get_model_entry(self, name: str) -> ModelEntryRow | None:
        m = schema.model_entries
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(m).where(m.c.name == name)).mappings().first()
        return ModelEntryRow(**_clean(row)) if row else None

    def list_model_entries(self) -> list[ModelEntryRow]:
        m = schema.model_entries
        with self.engine.connect() as conn:
            return [ModelEntryRow(**_clean(r)) for r in conn.execute(sa.select(m).order_by(m.c.name)).mappings()]

    def delete_model_entry(self, name: str) -> bool:
        m = schema.model_entries
        with self.engine.begin() as conn:
            return bool(conn.execute(m.delete().where(m.c.name == name)).rowcount)


KEYS_COUNTER = "virtual_keys"


def _bump(conn: sa.Connection, name: str) -> None:
    c = schema.change_counters
    if conn.execute(c.update().where(c.c.name == name).values(version=c.c.version + 1)).rowcount == 0:
        conn.execute(dialect_insert(conn.dialect.name)(c).values(name=name, version=1)
                     .on_conflict_do_update(index_elements=[c.c.name], set_={"version": c.c.version + 1}))


def _key_row(key: VirtualKeyRow) -> dict[str, Any]:
    row = {f: getattr(key, f) for f in _KEY_FIELDS}
    row["allowed_models"] = list(key.allowed_models)
    row["metadata"] = dict(key.metadata)
    return row


def _key(row: Any) -> VirtualKeyRow:
    data = _clean(row)
    data["allowed_models"] = list(data.get("allowed_models") or [])
    data["metadata"] = dict(data.get("metadata") or {})
    return VirtualKeyRow(**data)


def _clean(row: Any) -> dict[str, Any]:
    data = dict(row)
    for name in ("additional_config", "metadata"):
        if name in data and data[name] is None:
            data[name] = {}
    if "is_public" in data:
        data["is_public"] = bool(data["is_public"])
    return data
