"""Text that an admin write stores must fit its column on every database the store runs on.

PostgreSQL refuses a ``VARCHAR(n)`` value longer than ``n`` characters and any text holding a
NUL character (``\\u0000``, which JSON allows); SQLite keeps both. Unchecked, the same admin
request was a 201 on SQLite and a 500 on PostgreSQL. So every admin text field (a model
entry's fields, a virtual key's name) goes through :func:`get_text` before it reaches the
store: at most its column's length, read from the schema (a migration that widens a column
widens the check), and no NUL. A name or id in a URL that could never have been stored is
answered as not found without asking the store (:func:`storable`).

JSON columns (trace and key ``metadata``, ``additional_config``, ``allowed_models``) are not
checked for NUL: PostgreSQL's ``json`` type keeps the ``\\u0000`` escape as it was written.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..gateway.store import schema
from .fields import bad, get_str


def column_chars(column: sa.Column[Any]) -> int | None:
    """The most characters ``column`` holds (None: unbounded text)."""
    length = getattr(column.type, "length", None)
    return length if isinstance(length, int) else None


#: A model entry's free-text fields and their columns' lengths.
ENTRY_TEXT_CHARS: dict[str, int | None] = {
    name: column_chars(schema.model_entries.c[name]) for name in ("identifier", "provider", "base_url", "api_key_env")}
#: A model entry's name: what callers ask for and a metrics label, so shorter than its column (255).
ENTRY_NAME_CHARS = 200
KEY_NAME_CHARS = column_chars(schema.virtual_keys.c.name)
KEY_ID_CHARS = column_chars(schema.virtual_keys.c.id)
TRACE_ID_CHARS = column_chars(schema.traces.c.id)
#: The same rule as a JSON Schema ``pattern`` (the OpenAPI document): no NUL anywhere.
NO_NUL_PATTERN = r"^[^\x00]*$"


def check_text(value: str, where: str, max_chars: int | None) -> str:
    """``value`` if a text column of ``max_chars`` characters keeps it, else a 400 naming ``where``.
    The message never repeats the value (it may be a provider key)."""
    if "\x00" in value:
        raise bad(where, "must not contain NUL characters (\\u0000): the store cannot keep them; remove them")
    if max_chars is not None and len(value) > max_chars:
        raise bad(where, f"must be at most {max_chars} characters (this one has {len(value)}); shorten it")
    return value


def get_text(body: dict[str, Any], key: str, max_chars: int | None, *, required: bool = False) -> str | None:
    """``body[key]``: a string (or null) that fits its column (see :func:`check_text`)."""
    value: str | None = get_str(body, key, "", required=required)
    return None if value is None else check_text(value, key, max_chars)


def storable(value: str, max_chars: int | None) -> bool:
    """Whether a name or id from a URL could be in a column of ``max_chars``: one that could
    not is simply not there (asking PostgreSQL about a NUL would fail, not answer)."""
    return "\x00" not in value and (max_chars is None or len(value) <= max_chars)
