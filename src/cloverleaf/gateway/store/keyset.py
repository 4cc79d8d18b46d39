"""Keyset cursors for listings that page: a page continues after the row it ended on.

A listing ordered by ``(created_at, id)`` (calls newest first, virtual keys oldest first) is
cut into pages by naming the last row seen — never by OFFSET, which reads and drops every
earlier row, and shifts when rows arrive between two pages. The cursor is that row's
``created_at`` (``repr``, which a float reads back exactly) and its ``id``, as
``"<created_at>~<id>"``: the admin API's ``next`` and ``after``, and the dashboard's ``after``.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

#: One row's place in its listing: (created_at, id).
Place = tuple[float, str]


def cursor_of(created_at: float, row_id: str) -> str:
    """The cursor that continues after the row ``(created_at, row_id)``."""
    return f"{float(created_at)!r}~{row_id}"


def parse_cursor(cursor: str | None) -> Place | None:
    """The place a cursor names; None when it is not one (absent, or not of this shape)."""
    if not cursor:
        return None
    at, sep, row_id = cursor.partition("~")
    try:
        value = float(at)
    except ValueError:
        return None
    return (value, row_id) if sep and math.isfinite(value) and row_id else None


def past(created: Any, row_id: Any, place: Place, *, newest_first: bool) -> Any:
    """The condition a row meets when it comes after ``place`` in the listing's order. Written
    as a range on ``created`` (the indexes' second column) with the id only breaking ties, so
    an index on ``(..., created_at)`` serves it."""
    at, last = place
    if newest_first:
        return sa.and_(created <= at, sa.or_(created < at, row_id < last))
    return sa.and_(created >= at, sa.or_(created > at, row_id > last))


#: Index ranges merged by :func:`newest_of` in one statement; more (a model spelt in hundreds of
#: ways) are read as one ``IN`` list instead: right all the same, only not bounded by the page.
MAX_RANGES = 64


def newest_of(arms: list[Any], created: str, row_id: str, size: int) -> Any:
    """The ``size`` newest rows of several selects, each one filter an index serves (a call's
    target is one of several names, or its route is): each select reads at most ``size`` rows
    down its own index range, newest first, and only those are merged and ordered — where one
    ``target IN (...) ORDER BY created_at`` would read every call of every name, then sort them.
    Rows two selects share come once (``UNION``), so the selects name only plain columns."""
    def ordered(select: Any) -> Any:
        c = select.selected_columns
        return select.order_by(c[created].desc(), c[row_id].desc()).limit(size)

    if len(arms) == 1:
        return ordered(arms[0])
    merged = sa.union(*(sa.select(ordered(arm).subquery()) for arm in arms)).subquery()
    return sa.select(merged).order_by(merged.c[created].desc(), merged.c[row_id].desc()).limit(size)
